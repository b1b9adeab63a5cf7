/*
 * emit.c: writing a notification event beside the change that causes it (kp_notify_emit).
 */
