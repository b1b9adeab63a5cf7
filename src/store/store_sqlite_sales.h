/*
 * store_sqlite_sales.h: the SQLite side of kp_sales_ops (kopilka/sales.h),
 * the sales history's tables `sales` and `sale_lines`. Lives beside
 * store_sqlite.c on the same connection; its tables are created at open
 * when missing, so a database made before them gains them on its next open.
 */
#ifndef KOPILKA_STORE_SQLITE_SALES_H
#define KOPILKA_STORE_SQLITE_SALES_H

#include <sqlite3.h>

#include <kopilka/sales.h>
#include <kopilka/store.h>

typedef struct sqlite_sales sqlite_sales;

/* Creates the tables when missing and prepares their statements on `db`.
 * Failures are described in last_error (the store's buffer, which must
 * outlive *out). */
kp_err store_sqlite_sales_open(sqlite3 *db, char *last_error, size_t last_error_size,
                               sqlite_sales **out);
void store_sqlite_sales_close(sqlite_sales *t);

extern const kp_sales_ops store_sqlite_sales_ops;

/* The id of a till's sale without a card under (store, receipt) in *id, 0
 * when none (kp_till_read.anonymous_sale_id): read on a card purchase's
 * path, one indexed lookup. */
kp_err store_sqlite_sales_anonymous(kp_store *s, const char *store, const char *receipt,
                                    int64_t *id);

/* Defined in store_sqlite.c: the sales half of a SQLite store. */
sqlite_sales *store_sqlite_sales_of(kp_store *s);

#endif
