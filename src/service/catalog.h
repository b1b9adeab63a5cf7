/*
 * catalog.h: the rewards catalog's operations (docs/marketing.md,
 * "Rewards catalog"), written once over the store (kopilka/catalog.h) and
 * the ledger: items and their stock and images (catalog.manage), orders
 * from a customer's cabinet (their own cards), a till (its terminal's
 * store, the rights a till already has) and the back office
 * (catalog.manage), and an order's life: ordered -> ready -> handed_over,
 * or cancelled before it is handed over.
 *
 * An order takes its stock (kp_catalog_ops.stock_take, never below 0) and
 * its points (one ledger operation, KP_OP_REWARD) in the caller's
 * transaction, or neither; a cancellation gives both back (stock_give and
 * a KP_OP_REWARD_CANCEL operation). Every change writes an audit entry in
 * the same transaction. Writes run inside a store transaction the caller
 * opens (the server's writer). Answers are JSON into a kp_buf.
 */
#ifndef KOPILKA_SERVICE_CATALOG_H
#define KOPILKA_SERVICE_CATALOG_H

#include <kopilka/catalog.h>

#include "people.h"

/* Who asks, beyond the actor: where an order comes from. */
typedef struct kp_catalog_caller {
    const char *source;  /* "cabinet", "till", "office" */
    const char *store;   /* a till: its terminal's store (orders there only); else NULL */
} kp_catalog_caller;

/* POST /v1/admin/catalog/items (id 0) or PATCH .../items/{id}: {"name",
 * "description", "kind", "price", "copay", "unlimited", "active"}; a
 * creation needs name and price, a change takes any of them. Answers the
 * item. catalog.manage. */
kp_err kp_catalog_item_save(kp_office *o, int64_t id, const char *body, size_t len, kp_buf *out,
                            kp_field_errors *fe, kp_error *e);
/* PUT .../items/{id}/stock: {"stock": [{"store", "qty"}]}: sets each
 * store's stock. Answers the item. catalog.manage. */
kp_err kp_catalog_stock_put(kp_office *o, int64_t id, const char *body, size_t len, kp_buf *out,
                            kp_error *e);
/* PUT .../items/{id}/image: the body is the image, `type` its
 * Content-Type: image/png, image/jpeg or image/webp, at most
 * KP_CATALOG_IMAGE_MAX bytes, whose first bytes must be of that type.
 * catalog.manage. */
kp_err kp_catalog_image_put(kp_office *o, int64_t id, const char *type, const void *data,
                            size_t len, kp_buf *out, kp_error *e);
/* The items: every one with `all` (catalog.manage), else the active ones
 * (anyone: a customer, a till, staff), each with its stock by store (a
 * till's actor: only its store's). */
kp_err kp_catalog_items_json(kp_office *o, bool all, const kp_catalog_caller *c, kp_buf *out,
                             kp_error *e);

/* An order: {"card", "item_id", "store", "qty" (default 1), "key"}. A
 * till's store is its terminal's ("store" may be absent or must be it); a
 * customer orders for a card of their own. Idempotent by "key" (scoped to
 * the customer, the till's store or the back office): the same request
 * again answers the order as it is now with "replayed": true
 * (*replayed), another one under the key is 409 key_conflict. 409
 * out_of_stock, 422 not_enough_points. */
kp_err kp_catalog_order_create(kp_office *o, const kp_catalog_caller *c, const char *body, size_t len,
                               kp_buf *out, bool *replayed, kp_error *e);
/* Orders, newest first: a customer's own; a till's at its store; the back
 * office's all. Filters "state", "store", "card" (its account's), before,
 * limit as the query gives them ("" = none). */
kp_err kp_catalog_orders_json(kp_office *o, const kp_catalog_caller *c, const char *state,
                              const char *store, const char *card, int64_t before, int64_t limit,
                              kp_buf *out, kp_error *e);
/* Moves order `id` to `to`: ready (back office), handed_over (a till at
 * its store, the back office) or cancelled (the customer while it is
 * ordered; a till at its store and the back office before it is handed
 * over), giving stock and points back on a cancellation. */
kp_err kp_catalog_order_move(kp_office *o, const kp_catalog_caller *c, int64_t id,
                             kp_order_state to, kp_buf *out, kp_error *e);

/* The media type an image's first bytes show (PNG, JPEG, WebP), or NULL. */
const char *kp_catalog_image_sniff(const void *data, size_t len);

#endif
