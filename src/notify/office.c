/*
 * office.c: the back office's notification operations: messages, endpoints, templates, preferences, login codes.
 */
