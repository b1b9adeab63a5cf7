/*
 * store_sqlite_draws.h: the SQLite side of kp_draws_ops (kopilka/draws.h),
 * the table `draws`. Lives beside store_sqlite.c on the same connection;
 * the table is created at open when missing, so a database made before it
 * gains it on its next open.
 */
#ifndef KOPILKA_STORE_SQLITE_DRAWS_H
#define KOPILKA_STORE_SQLITE_DRAWS_H

#include <sqlite3.h>

#include <kopilka/draws.h>
#include <kopilka/store.h>

typedef struct sqlite_draws sqlite_draws;

/* Creates the table when missing and prepares its statements on `db`.
 * Failures are described in last_error (the store's buffer, which must
 * outlive *out). */
kp_err store_sqlite_draws_open(sqlite3 *db, char *last_error, size_t last_error_size,
                               sqlite_draws **out);
void store_sqlite_draws_close(sqlite_draws *t);

extern const kp_draws_ops store_sqlite_draws_ops;

/* Defined in store_sqlite.c: the draws part of a SQLite store. */
sqlite_draws *store_sqlite_draws_of(kp_store *s);

#endif
