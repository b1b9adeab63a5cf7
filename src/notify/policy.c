/*
 * policy.c: the program's notifications section, urgency, quiet hours and retry backoff.
 */
