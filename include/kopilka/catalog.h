/*
 * catalog.h: the rewards catalog as the store keeps it
 * (kp_store_ops.catalog): items (gifts and services priced in points of
 * one kind, with an optional co-payment in money), each item's image,
 * its stock per store, and the customers' orders with their state
 * (docs/marketing.md, "Rewards catalog").
 *
 * The points of an order are never here: they leave the account as a
 * ledger operation of the order (KP_OP_REWARD, store "#catalog", receipt
 * "order:<id>") and come back as another (KP_OP_REWARD_CANCEL, receipt
 * "order:<id>:cancel"), written by the service in the same transaction as
 * the order's stock and state (src/service/catalog.c).
 *
 * The general contract of store.h holds (errors, transactions, callbacks'
 * pointers valid only during the call, out-parameters set only on KP_OK).
 * None of these pointers is NULL unless its operation says so.
 */
#ifndef KOPILKA_CATALOG_H
#define KOPILKA_CATALOG_H

#include "kopilka.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kp_store kp_store;

enum {
    KP_CATALOG_NAME_MAX = 128,  /* bytes of an item's name, NUL included */
    KP_CATALOG_TEXT_MAX = 1024, /* bytes of its description, NUL included */
    KP_CATALOG_IMAGE_MAX = 512 * 1024, /* bytes of an image */
    KP_CATALOG_PAGE_MAX = 200,  /* items or orders one list gives */
    KP_CATALOG_STORES_MAX = 64, /* stores an item's stock lists */
};

typedef struct kp_catalog_item {
    int64_t id;                          /* set by the store (item_put with id 0) */
    char name[KP_CATALOG_NAME_MAX];
    char description[KP_CATALOG_TEXT_MAX];
    char kind[16];                       /* the point kind that pays ("" = any kind) */
    int64_t price;                       /* points, > 0 */
    int64_t copay_minor;                 /* money paid at hand-over, minor units, >= 0 */
    bool unlimited;                      /* a service: no stock, any store */
    bool active;                         /* offered (an inactive one takes no orders) */
    bool has_image;                      /* read only: an image is stored */
    kp_time created_at, updated_at;
} kp_catalog_item;

typedef struct kp_catalog_stock {
    char store[KP_STR_MAX];
    int64_t qty; /* >= 0: what is left to order at the store */
} kp_catalog_stock;

typedef enum kp_order_state {
    KP_ORDER_ORDERED = 1,
    KP_ORDER_READY = 2,
    KP_ORDER_HANDED_OVER = 3,
    KP_ORDER_CANCELLED = 4,
} kp_order_state;
const char *kp_order_state_name(kp_order_state state);
/* "ordered", "ready", "handed_over", "cancelled"; false when unknown. */
bool kp_order_state_parse(const char *text, kp_order_state *out);

typedef struct kp_catalog_order {
    int64_t id;                     /* set by order_insert */
    int64_t item_id;
    char item_name[KP_CATALOG_NAME_MAX]; /* as it was when ordered */
    int64_t account_id;
    int64_t customer_id;            /* 0: an unregistered card */
    char card[KP_STR_MAX];
    char store[KP_STR_MAX];         /* where it is handed over */
    int64_t qty;                    /* >= 1 */
    char kind[16];                  /* as the item's */
    int64_t points;                 /* price x qty */
    int64_t copay_minor;            /* copay x qty */
    kp_order_state state;
    char source[16];                /* "cabinet", "till", "office" */
    char key[KP_STR_MAX];           /* the idempotency key, scoped ("" = none) */
    uint8_t request_hash[16];       /* of the request that made it */
    char by[96];                    /* the actor that ordered */
    kp_time created_at, updated_at;
} kp_catalog_order;

/* Which orders order_list gives: every field 0 or "" matches all. */
typedef struct kp_order_filter {
    int64_t customer_id;
    int64_t account_id;
    int64_t item_id;
    char store[KP_STR_MAX];
    kp_order_state state;
} kp_order_filter;

typedef struct kp_catalog_ops {
    /* (write) Adds the item (item->id 0: sets it, created_at = updated_at
     * = now) or replaces every field of item->id but its image and
     * created_at (updated_at = now). KP_ERR_NOT_FOUND: no such id. */
    kp_err (*item_put)(kp_store *s, kp_catalog_item *item, kp_time now);
    /* The item `id` (has_image set). KP_ERR_NOT_FOUND. */
    kp_err (*item_get)(kp_store *s, int64_t id, kp_catalog_item *out);
    /* Items with id > after, in id order, at most `limit`; only active
     * ones when active_only. */
    kp_err (*item_list)(kp_store *s, int64_t after, bool active_only, kp_catalog_item *out,
                        size_t limit, size_t *n);
    /* (write) The item's image, replacing any: `type` its media type,
     * len bytes (1..KP_CATALOG_IMAGE_MAX, the caller checked the type and
     * size), `etag` (NUL-terminated, < 40 bytes) names its content.
     * KP_ERR_NOT_FOUND: no such item. */
    kp_err (*image_put)(kp_store *s, int64_t item_id, const char *type, const void *data,
                        size_t len, const char *etag, kp_time now);
    /* The item's image: type[32], *data (malloc'd, the caller frees it),
     * *len, etag[40]. KP_ERR_NOT_FOUND: no item or no image. */
    kp_err (*image_get)(kp_store *s, int64_t item_id, char type[32], void **data, size_t *len,
                        char etag[40]);
    /* (write) Sets the stock of item_id at `store` to qty (>= 0), adding
     * the store to the item's list when new. KP_ERR_NOT_FOUND: no such
     * item; KP_ERR_INVALID: qty < 0 or store "". */
    kp_err (*stock_set)(kp_store *s, int64_t item_id, const char *store, int64_t qty);
    /* The item's stock, by store name, at most `limit` stores. */
    kp_err (*stock_list)(kp_store *s, int64_t item_id, kp_catalog_stock *out, size_t limit,
                         size_t *n);
    /* (write) Takes qty (>= 1) of item_id at `store` in one step that
     * concurrent takes on other connections cannot interleave: the stock
     * never goes below 0. KP_ERR_CONFLICT (nothing taken, *left the stock
     * there) when fewer than qty are left; KP_ERR_NOT_FOUND when the item
     * has no stock at the store. *left: the stock after. */
    kp_err (*stock_take)(kp_store *s, int64_t item_id, const char *store, int64_t qty,
                         int64_t *left);
    /* (write) Gives qty (>= 1) back to item_id at `store` (a cancelled
     * order), adding the store when it was removed meanwhile. */
    kp_err (*stock_give)(kp_store *s, int64_t item_id, const char *store, int64_t qty);
    /* (write) Stores the order (created_at and updated_at as given), sets
     * order->id. KP_ERR_CONFLICT when an order holds its non-empty key
     * (KP_ERR_BUSY: another connection's uncommitted one, as op_insert). */
    kp_err (*order_insert)(kp_store *s, kp_catalog_order *order);
    /* The order `id`. KP_ERR_NOT_FOUND. */
    kp_err (*order_get)(kp_store *s, int64_t id, kp_catalog_order *out);
    /* The order stored under `key` (not ""). KP_ERR_NOT_FOUND. */
    kp_err (*order_find_key)(kp_store *s, const char *key, kp_catalog_order *out);
    /* Orders matching `filter` with id < before (0 = from the newest),
     * newest first, at most `limit`. */
    kp_err (*order_list)(kp_store *s, const kp_order_filter *filter, int64_t before,
                         kp_catalog_order *out, size_t limit, size_t *n);
    /* (write) Moves order `id` from state `from` to `to` (updated_at =
     * now) in one step: KP_ERR_CONFLICT when its state is not `from` (a
     * concurrent change won), KP_ERR_NOT_FOUND when there is no such
     * order. Which moves are allowed is the service's to say. */
    kp_err (*order_move)(kp_store *s, int64_t id, kp_order_state from, kp_order_state to,
                         kp_time now);
} kp_catalog_ops;

#endif
