/*
 * cmd_deliver.c: kopilka deliver DB: dispatch and deliver the outbox from the command line.
 */
