/*
 * store_sqlite_notify.c: the outbox's storage on SQLite (kopilka/notify.h).
 */
