/*
 * store_sqlite_triggers.h: the SQLite side of kp_triggers_ops (triggers.h):
 * account rule state, tier changes, events, grant keys, the scheduler's
 * state and runs. Lives beside store_sqlite.c on the same connection; its
 * tables are created at open when missing, so a database made before them
 * gains them on its next open.
 */
#ifndef KOPILKA_STORE_SQLITE_TRIGGERS_H
#define KOPILKA_STORE_SQLITE_TRIGGERS_H

#include <sqlite3.h>

#include <kopilka/store.h>

typedef struct sqlite_triggers sqlite_triggers;

/* Creates the tables when missing and prepares the statements on `db`.
 * Failures are described in last_error (the store's buffer, which must
 * outlive *out). */
kp_err store_sqlite_triggers_open(sqlite3 *db, char *last_error, size_t last_error_size,
                                  sqlite_triggers **out);
void store_sqlite_triggers_close(sqlite_triggers *t);

extern const kp_triggers_ops store_sqlite_triggers_ops;

/* Defined in store_sqlite.c: the triggers half of a SQLite store. */
sqlite_triggers *store_sqlite_triggers_of(kp_store *s);

#endif
