/*
 * store_sqlite_catalog.h: the SQLite side of kp_catalog_ops
 * (kopilka/catalog.h), the rewards catalog's tables catalog_items,
 * catalog_images, catalog_stock and catalog_orders. Lives beside
 * store_sqlite.c on the same connection; its tables are created at open
 * when missing, so a database made before them gains them on its next open.
 */
#ifndef KOPILKA_STORE_SQLITE_CATALOG_H
#define KOPILKA_STORE_SQLITE_CATALOG_H

#include <sqlite3.h>

#include <kopilka/catalog.h>
#include <kopilka/store.h>

typedef struct sqlite_catalog sqlite_catalog;

/* Creates the tables when missing and prepares their statements on `db`.
 * Failures are described in last_error (the store's buffer, which must
 * outlive *out). */
kp_err store_sqlite_catalog_open(sqlite3 *db, char *last_error, size_t last_error_size,
                                 sqlite_catalog **out);
void store_sqlite_catalog_close(sqlite_catalog *t);

extern const kp_catalog_ops store_sqlite_catalog_ops;

/* Defined in store_sqlite.c: the catalog half of a SQLite store. */
sqlite_catalog *store_sqlite_catalog_of(kp_store *s);

#endif
