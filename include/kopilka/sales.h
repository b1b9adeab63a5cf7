/*
 * sales.h: the sales history, as the store keeps it (kp_store_ops.sales):
 * every receipt of the shops, with a card or without one, for the
 * analytics and the economic model (docs/analytics.md). It comes from three
 * places: a till's purchase without a card (POST /v1/purchases with no
 * `card`: recorded here, touching no account), `kopilka import DB --sales
 * FILE.csv` (a 1C or POS export, or `kopilka history generate`), and, for
 * purchases with a card, the ledger's own operations (reports read those
 * from the ops table; nothing is written twice).
 *
 * A sale is identified by (store, receipt, kind): putting the same one
 * again is skipped and counted, so an import can be re-run. Amounts are
 * minor units; a return's amount is positive and its kind says it is a
 * return. Lines carry the category and amount the engine would see.
 *
 * The general contract of store.h holds (errors, transactions, callbacks'
 * pointers valid only during the call). None of these pointers is NULL.
 */
#ifndef KOPILKA_SALES_H
#define KOPILKA_SALES_H

#include "kopilka.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kp_store kp_store;

typedef enum kp_sale_kind {
    KP_SALE_PURCHASE = 1,
    KP_SALE_RETURN = 2,
} kp_sale_kind;

typedef enum kp_sale_source {
    KP_SALE_TILL = 1,   /* a till's purchase without a card */
    KP_SALE_IMPORT = 2, /* kopilka import --sales, POST /v1/admin/imports?kind=sales */
} kp_sale_source;

enum { KP_SALE_LINES_MAX = 200 }; /* as a basket's */

typedef struct kp_sale_line {
    char sku[KP_STR_MAX];      /* may be "" in an import */
    char category[KP_STR_MAX]; /* "" when the export has none */
    int64_t amount;            /* the line's total, minor units, >= 0 */
    int64_t qty;               /* >= 1 */
} kp_sale_line;

typedef struct kp_sale {
    int64_t id;                /* set by the store (sales_scan); ignored by sales_put */
    kp_time at;
    char store[KP_STR_MAX];
    char receipt[KP_STR_MAX];
    char card[KP_STR_MAX];     /* "" = a sale without a card (a non-member's) */
    /* The shop's own key of the customer, card or not (1C's counterparty
     * code, a VIN, a client number; never a raw phone or name): "" when
     * unknown. It lets reports follow a customer without a card (the top
     * non-members) and a member before they joined. */
    char customer[KP_STR_MAX];
    kp_sale_kind kind;
    kp_sale_source source;
    int64_t amount;            /* sum of the lines' amounts */
    size_t n_lines;
    const kp_sale_line *lines; /* n_lines of them */
} kp_sale;

/* Called for each sale of a scan, in (at, id) order; false stops the scan
 * (which then returns KP_OK). */
typedef bool (*kp_sale_fn)(void *ctx, const kp_sale *sale);

typedef struct kp_sales_ops {
    /* (write, in the caller's transaction) Adds n sales with their lines.
     * A sale whose (store, receipt, kind) the store holds is left as it is
     * and counted in *skipped (whatever its content: an import that is
     * run again changes nothing); the others are counted in *inserted.
     * KP_ERR_INVALID (nothing written) when a sale has no store or
     * receipt, no lines or more than KP_SALE_LINES_MAX, or its amount is
     * not the sum of its lines. */
    kp_err (*sales_put)(kp_store *s, const kp_sale *sales, size_t n, int64_t *inserted,
                        int64_t *skipped);
    /* (read) Every sale with from <= at < to (to = 0: no end), of `store`
     * when not "" (else every store), in (at, id) order, with its lines. */
    kp_err (*sales_scan)(kp_store *s, kp_time from, kp_time to, const char *store, kp_sale_fn fn,
                         void *ctx);
    /* (read) The sale (store, receipt, kind) into *out, its lines into
     * lines[KP_SALE_LINES_MAX] (out->lines points there); KP_ERR_NOT_FOUND
     * when there is none. A till's sale without a card reads it to answer
     * a retry (the same receipt sent again). */
    kp_err (*sale_get)(kp_store *s, const char *store, const char *receipt, kp_sale_kind kind,
                       kp_sale *out, kp_sale_line *lines);
    /* (read) How many sales there are, the first's and the last's time (0
     * when none). */
    kp_err (*sales_span)(kp_store *s, int64_t *count, kp_time *first, kp_time *last);
} kp_sales_ops;

#endif
