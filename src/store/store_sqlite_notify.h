/*
 * store_sqlite_notify.h: the SQLite side of kp_notify_ops (kopilka/notify.h):
 * the outbox's events and messages, preferences, templates, webhook
 * endpoints, login codes and customers' sessions. Lives beside
 * store_sqlite.c on the same connection; its tables are created at open
 * when missing, so a database made before them gains them on its next open.
 */
#ifndef KOPILKA_STORE_SQLITE_NOTIFY_H
#define KOPILKA_STORE_SQLITE_NOTIFY_H

#include <sqlite3.h>

#include <kopilka/notify.h>
#include <kopilka/store.h>

typedef struct sqlite_notify sqlite_notify;

/* Creates the outbox tables when missing (one transaction; the
 * `notify_schema` meta key says they are there) and prepares their
 * statements on `db`. Failures are described in last_error (the store's
 * buffer, which must outlive *out). */
kp_err store_sqlite_notify_open(sqlite3 *db, char *last_error, size_t last_error_size,
                                sqlite_notify **out);
void store_sqlite_notify_close(sqlite_notify *n);

extern const kp_notify_ops store_sqlite_notify_ops;

/* Defined in store_sqlite.c: the outbox half of a SQLite store. */
sqlite_notify *store_sqlite_notify_of(kp_store *s);

#endif
