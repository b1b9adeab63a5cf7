/*
 * store_pg_notify.c: the outbox's storage on PostgreSQL (kopilka/notify.h).
 */
