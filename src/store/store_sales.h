/*
 * store_sales.h: what both backends' sales_put share (kopilka/sales.h):
 * the contract's checks, made on every sale before anything is written.
 * Defined in store_sqlite_sales.c.
 */
#ifndef KOPILKA_STORE_SALES_H
#define KOPILKA_STORE_SALES_H

#include <kopilka/sales.h>
#include <kopilka/store.h>

/* KP_OK, or KP_ERR_INVALID with the first bad sale described in
 * s->last_error. */
kp_err store_sales_check(kp_store *s, const kp_sale *sales, size_t n);

#endif
