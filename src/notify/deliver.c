/*
 * deliver.c: the delivery pass: claim due messages, send them, settle each (backoff, dead letter, rate).
 */
