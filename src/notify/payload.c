/*
 * payload.c: the figures an event carries, written as its JSON payload (kp_notify_payload).
 */
