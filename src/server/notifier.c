/*
 * notifier.c: the server's notification threads: dispatch and delivery through the writer.
 */
