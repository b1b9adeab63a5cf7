/*
 * store_pg_catalog.c: kp_catalog_ops over PostgreSQL (kopilka/catalog.h):
 * the tables catalog_items, catalog_images, catalog_stock and
 * catalog_orders (migration 8 of store_pg.c). A stock take is one
 * conditional UPDATE: under READ COMMITTED a concurrent take waits for the
 * row and re-checks `qty >= n` on what the first one left, so the stock
 * never goes below 0 (a CHECK says so too).
 */
#include "store_pg_int.h"

#include <kopilka/catalog.h>

#include <stdlib.h>
#include <string.h>

#define P(st) ((pg_store *)(st))

const char store_pg_catalog_schema[] =
    "CREATE TABLE IF NOT EXISTS catalog_items (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL,"
    "  description TEXT NOT NULL, kind TEXT NOT NULL, price BIGINT NOT NULL CHECK (price > 0),"
    "  copay_minor BIGINT NOT NULL CHECK (copay_minor >= 0), unlimited INTEGER NOT NULL,"
    "  active INTEGER NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS catalog_images (item_id BIGINT PRIMARY KEY, type TEXT NOT NULL,"
    "  data BYTEA NOT NULL, etag TEXT NOT NULL, updated_at BIGINT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS catalog_stock (item_id BIGINT NOT NULL, store TEXT NOT NULL,"
    "  qty BIGINT NOT NULL CHECK (qty >= 0), PRIMARY KEY (item_id, store));"
    "CREATE TABLE IF NOT EXISTS catalog_orders (id BIGSERIAL PRIMARY KEY,"
    "  item_id BIGINT NOT NULL, item_name TEXT NOT NULL, account_id BIGINT NOT NULL,"
    "  customer_id BIGINT NOT NULL, card TEXT NOT NULL, store TEXT NOT NULL,"
    "  qty BIGINT NOT NULL CHECK (qty >= 1), kind TEXT NOT NULL, points BIGINT NOT NULL,"
    "  copay_minor BIGINT NOT NULL, state INTEGER NOT NULL, source TEXT NOT NULL,"
    "  idem TEXT NOT NULL, request_hash BYTEA, actor TEXT NOT NULL,"
    "  created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);"
    "CREATE UNIQUE INDEX IF NOT EXISTS catalog_orders_idem ON catalog_orders(idem) "
    "  WHERE idem <> '';"
    "CREATE INDEX IF NOT EXISTS catalog_orders_account ON catalog_orders(account_id, id);";

#define ITEM_COLS                                                                                  \
    "i.id, i.name, i.description, i.kind, i.price, i.copay_minor, i.unlimited, i.active,"         \
    " i.created_at, i.updated_at,"                                                                 \
    " (EXISTS (SELECT 1 FROM catalog_images g WHERE g.item_id = i.id))::int"
#define ORDER_COLS                                                                                 \
    "id, item_id, item_name, account_id, customer_id, card, store, qty, kind, points,"            \
    " copay_minor, state, source, idem, request_hash, actor, created_at, updated_at"

static pg_stmt q_item_insert = {
    "INSERT INTO catalog_items(name, description, kind, price, copay_minor, unlimited, active,"
    " created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id",
    8, 0};
static pg_stmt q_item_update = {
    "UPDATE catalog_items SET name = $1, description = $2, kind = $3, price = $4,"
    " copay_minor = $5, unlimited = $6, active = $7, updated_at = $8 WHERE id = $9",
    9, 0};
static pg_stmt q_item_get = {"SELECT " ITEM_COLS " FROM catalog_items i WHERE i.id = $1", 1, 0};
static pg_stmt q_item_list = {"SELECT " ITEM_COLS " FROM catalog_items i WHERE i.id > $1"
                              " AND ($2 = 0 OR i.active = 1) ORDER BY i.id LIMIT $3",
                              3, 0};
static pg_stmt q_image_put = {
    "INSERT INTO catalog_images(item_id, type, data, etag, updated_at)"
    " SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM catalog_items WHERE id = $1)"
    " ON CONFLICT (item_id) DO UPDATE SET type = excluded.type, data = excluded.data,"
    " etag = excluded.etag, updated_at = excluded.updated_at",
    5, 0};
static pg_stmt q_image_get = {"SELECT type, data, etag FROM catalog_images WHERE item_id = $1", 1,
                              0};
static pg_stmt q_stock_set = {
    "INSERT INTO catalog_stock(item_id, store, qty) SELECT $1, $2, $3"
    " WHERE EXISTS (SELECT 1 FROM catalog_items WHERE id = $1)"
    " ON CONFLICT (item_id, store) DO UPDATE SET qty = excluded.qty",
    3, 0};
static pg_stmt q_stock_list = {
    "SELECT store, qty FROM catalog_stock WHERE item_id = $1 ORDER BY store LIMIT $2", 2, 0};
static pg_stmt q_stock_take = {"UPDATE catalog_stock SET qty = qty - $3 WHERE item_id = $1"
                               " AND store = $2 AND qty >= $3 RETURNING qty",
                               3, 0};
static pg_stmt q_stock_left = {"SELECT qty FROM catalog_stock WHERE item_id = $1 AND store = $2",
                               2, 0};
static pg_stmt q_stock_give = {
    "INSERT INTO catalog_stock(item_id, store, qty) VALUES ($1, $2, $3)"
    " ON CONFLICT (item_id, store) DO UPDATE SET qty = catalog_stock.qty + excluded.qty",
    3, 0};
static pg_stmt q_order_insert = {
    "INSERT INTO catalog_orders(item_id, item_name, account_id, customer_id, card, store, qty,"
    " kind, points, copay_minor, state, source, idem, request_hash, actor, created_at,"
    " updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,"
    " $16, $17) RETURNING id",
    17, 0};
static pg_stmt q_order_get = {"SELECT " ORDER_COLS " FROM catalog_orders WHERE id = $1", 1, 0};
static pg_stmt q_order_key = {
    "SELECT " ORDER_COLS " FROM catalog_orders WHERE idem = $1 AND idem <> ''", 1, 0};
static pg_stmt q_order_list = {
    "SELECT " ORDER_COLS " FROM catalog_orders WHERE ($1 = 0 OR account_id = $1)"
    " AND ($2 = 0 OR item_id = $2) AND ($3 = '' OR store = $3) AND ($4 = 0 OR state = $4)"
    " AND ($5 = 0 OR id < $5) AND ($7 = 0 OR customer_id = $7) ORDER BY id DESC LIMIT $6",
    7, 0};
static pg_stmt q_order_move = {
    "UPDATE catalog_orders SET state = $3, updated_at = $4 WHERE id = $1 AND state = $2", 4, 0};

static void item_read(const PGresult *r, int i, kp_catalog_item *it)
{
    memset(it, 0, sizeof *it);
    it->id = pg_int(r, i, 0);
    pg_text(r, i, 1, it->name, sizeof it->name);
    pg_text(r, i, 2, it->description, sizeof it->description);
    pg_text(r, i, 3, it->kind, sizeof it->kind);
    it->price = pg_int(r, i, 4);
    it->copay_minor = pg_int(r, i, 5);
    it->unlimited = pg_int(r, i, 6) != 0;
    it->active = pg_int(r, i, 7) != 0;
    it->created_at = pg_int(r, i, 8);
    it->updated_at = pg_int(r, i, 9);
    it->has_image = pg_int(r, i, 10) != 0;
}

static void order_read(const PGresult *r, int i, kp_catalog_order *o)
{
    memset(o, 0, sizeof *o);
    o->id = pg_int(r, i, 0);
    o->item_id = pg_int(r, i, 1);
    pg_text(r, i, 2, o->item_name, sizeof o->item_name);
    o->account_id = pg_int(r, i, 3);
    o->customer_id = pg_int(r, i, 4);
    pg_text(r, i, 5, o->card, sizeof o->card);
    pg_text(r, i, 6, o->store, sizeof o->store);
    o->qty = pg_int(r, i, 7);
    pg_text(r, i, 8, o->kind, sizeof o->kind);
    o->points = pg_int(r, i, 9);
    o->copay_minor = pg_int(r, i, 10);
    o->state = (kp_order_state)pg_int(r, i, 11);
    pg_text(r, i, 12, o->source, sizeof o->source);
    pg_text(r, i, 13, o->key, sizeof o->key);
    uint8_t h[16];
    if (pg_bytes(r, i, 14, h, sizeof h) == 16) memcpy(o->request_hash, h, 16);
    pg_text(r, i, 15, o->by, sizeof o->by);
    o->created_at = pg_int(r, i, 16);
    o->updated_at = pg_int(r, i, 17);
}

static kp_err item_put(kp_store *st, kp_catalog_item *it, kp_time now)
{
    pg_params p = {0};
    pg_p_text(&p, it->name);
    pg_p_text(&p, it->description);
    pg_p_text(&p, it->kind);
    pg_p_int(&p, it->price);
    pg_p_int(&p, it->copay_minor);
    pg_p_int(&p, it->unlimited);
    pg_p_int(&p, it->active);
    pg_p_int(&p, now);
    if (it->id) {
        pg_p_int(&p, it->id);
        kp_err err = pg_run_one(P(st), &q_item_update, &p);
        if (err == KP_OK) it->updated_at = now;
        return err;
    }
    PGresult *r;
    kp_err err = pg_run(P(st), &q_item_insert, &p, &r);
    if (err) return err;
    it->id = pg_int(r, 0, 0);
    it->created_at = it->updated_at = now;
    PQclear(r);
    return KP_OK;
}

static kp_err item_get(kp_store *st, int64_t id, kp_catalog_item *out)
{
    pg_params p = {0};
    pg_p_int(&p, id);
    PGresult *r;
    kp_err err = pg_run(P(st), &q_item_get, &p, &r);
    if (err) return err;
    if (PQntuples(r) == 0) err = KP_ERR_NOT_FOUND;
    else item_read(r, 0, out);
    PQclear(r);
    return err;
}

static kp_err item_list(kp_store *st, int64_t after, bool active_only, kp_catalog_item *out,
                        size_t limit, size_t *n)
{
    *n = 0;
    pg_params p = {0};
    pg_p_int(&p, after);
    pg_p_int(&p, active_only);
    pg_p_int(&p, (int64_t)limit);
    PGresult *r;
    kp_err err = pg_run(P(st), &q_item_list, &p, &r);
    if (err) return err;
    for (int i = 0; i < PQntuples(r) && *n < limit; i++) item_read(r, i, &out[(*n)++]);
    PQclear(r);
    return KP_OK;
}

static kp_err image_put(kp_store *st, int64_t item_id, const char *type, const void *data,
                        size_t len, const char *etag, kp_time now)
{
    pg_params p = {0};
    pg_p_int(&p, item_id);
    pg_p_text(&p, type);
    pg_p_bytes(&p, data, len);
    pg_p_text(&p, etag);
    pg_p_int(&p, now);
    return pg_run_one(P(st), &q_image_put, &p);
}

static kp_err image_get(kp_store *st, int64_t item_id, char type[32], void **data, size_t *len,
                        char etag[40])
{
    pg_params p = {0};
    pg_p_int(&p, item_id);
    PGresult *r;
    kp_err err = pg_run(P(st), &q_image_get, &p, &r);
    if (err) return err;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return KP_ERR_NOT_FOUND;
    }
    size_t cap = (size_t)PQgetlength(r, 0, 1) + 1; /* the text is longer than the bytes */
    void *buf = malloc(cap);
    if (buf == NULL) {
        PQclear(r);
        return KP_ERR_NOMEM;
    }
    size_t n = pg_bytes(r, 0, 1, buf, cap);
    if (n == (size_t)-1) {
        free(buf);
        PQclear(r);
        snprintf(st->last_error, sizeof st->last_error, "an image is not a readable bytea");
        return KP_ERR_IO;
    }
    pg_text(r, 0, 0, type, 32);
    pg_text(r, 0, 2, etag, 40);
    *data = buf;
    *len = n;
    PQclear(r);
    return KP_OK;
}

static kp_err stock_set(kp_store *st, int64_t item_id, const char *store, int64_t qty)
{
    if (qty < 0 || store[0] == '\0') {
        snprintf(st->last_error, sizeof st->last_error, "a stock needs a store and qty >= 0");
        return KP_ERR_INVALID;
    }
    pg_params p = {0};
    pg_p_int(&p, item_id);
    pg_p_text(&p, store);
    pg_p_int(&p, qty);
    return pg_run_one(P(st), &q_stock_set, &p);
}

static kp_err stock_list(kp_store *st, int64_t item_id, kp_catalog_stock *out, size_t limit,
                         size_t *n)
{
    *n = 0;
    pg_params p = {0};
    pg_p_int(&p, item_id);
    pg_p_int(&p, (int64_t)limit);
    PGresult *r;
    kp_err err = pg_run(P(st), &q_stock_list, &p, &r);
    if (err) return err;
    for (int i = 0; i < PQntuples(r) && *n < limit; i++) {
        pg_text(r, i, 0, out[*n].store, sizeof out[*n].store);
        out[(*n)++].qty = pg_int(r, i, 1);
    }
    PQclear(r);
    return KP_OK;
}

static kp_err stock_take(kp_store *st, int64_t item_id, const char *store, int64_t qty,
                         int64_t *left)
{
    pg_params p = {0};
    pg_p_int(&p, item_id);
    pg_p_text(&p, store);
    pg_p_int(&p, qty);
    PGresult *r;
    kp_err err = pg_run(P(st), &q_stock_take, &p, &r);
    if (err) return err;
    bool taken = PQntuples(r) == 1;
    if (taken) *left = pg_int(r, 0, 0);
    PQclear(r);
    if (taken) return KP_OK;
    pg_params p2 = {0};
    pg_p_int(&p2, item_id);
    pg_p_text(&p2, store);
    if ((err = pg_run(P(st), &q_stock_left, &p2, &r))) return err;
    err = PQntuples(r) == 1 ? KP_ERR_CONFLICT : KP_ERR_NOT_FOUND;
    if (err == KP_ERR_CONFLICT) *left = pg_int(r, 0, 0);
    PQclear(r);
    return err;
}

static kp_err stock_give(kp_store *st, int64_t item_id, const char *store, int64_t qty)
{
    pg_params p = {0};
    pg_p_int(&p, item_id);
    pg_p_text(&p, store);
    pg_p_int(&p, qty);
    return pg_run(P(st), &q_stock_give, &p, NULL);
}

static kp_err order_insert(kp_store *st, kp_catalog_order *o)
{
    pg_params p = {0};
    pg_p_int(&p, o->item_id);
    pg_p_text(&p, o->item_name);
    pg_p_int(&p, o->account_id);
    pg_p_int(&p, o->customer_id);
    pg_p_text(&p, o->card);
    pg_p_text(&p, o->store);
    pg_p_int(&p, o->qty);
    pg_p_text(&p, o->kind);
    pg_p_int(&p, o->points);
    pg_p_int(&p, o->copay_minor);
    pg_p_int(&p, o->state);
    pg_p_text(&p, o->source);
    pg_p_text(&p, o->key);
    pg_p_bytes(&p, o->request_hash, 16);
    pg_p_text(&p, o->by);
    pg_p_int(&p, o->created_at);
    pg_p_int(&p, o->updated_at);
    PGresult *r;
    kp_err err = pg_run(P(st), &q_order_insert, &p, &r);
    if (err) return err;
    o->id = pg_int(r, 0, 0);
    PQclear(r);
    return KP_OK;
}

static kp_err order_one(kp_store *st, pg_stmt *q, pg_params *p, kp_catalog_order *out)
{
    PGresult *r;
    kp_err err = pg_run(P(st), q, p, &r);
    if (err) return err;
    if (PQntuples(r) == 0) err = KP_ERR_NOT_FOUND;
    else order_read(r, 0, out);
    PQclear(r);
    return err;
}

static kp_err order_get(kp_store *st, int64_t id, kp_catalog_order *out)
{
    pg_params p = {0};
    pg_p_int(&p, id);
    return order_one(st, &q_order_get, &p, out);
}

static kp_err order_find_key(kp_store *st, const char *key, kp_catalog_order *out)
{
    pg_params p = {0};
    pg_p_text(&p, key);
    return order_one(st, &q_order_key, &p, out);
}

static kp_err order_list(kp_store *st, const kp_order_filter *f, int64_t before,
                         kp_catalog_order *out, size_t limit, size_t *n)
{
    *n = 0;
    pg_params p = {0};
    pg_p_int(&p, f->account_id);
    pg_p_int(&p, f->item_id);
    pg_p_text(&p, f->store);
    pg_p_int(&p, f->state);
    pg_p_int(&p, before);
    pg_p_int(&p, (int64_t)limit);
    pg_p_int(&p, f->customer_id);
    PGresult *r;
    kp_err err = pg_run(P(st), &q_order_list, &p, &r);
    if (err) return err;
    for (int i = 0; i < PQntuples(r) && *n < limit; i++) order_read(r, i, &out[(*n)++]);
    PQclear(r);
    return KP_OK;
}

static kp_err order_move(kp_store *st, int64_t id, kp_order_state from, kp_order_state to,
                         kp_time now)
{
    pg_params p = {0};
    pg_p_int(&p, id);
    pg_p_int(&p, from);
    pg_p_int(&p, to);
    pg_p_int(&p, now);
    kp_err err = pg_run_one(P(st), &q_order_move, &p);
    if (err != KP_ERR_NOT_FOUND) return err;
    kp_catalog_order o;
    err = order_get(st, id, &o);
    return err ? err : KP_ERR_CONFLICT;
}

const kp_catalog_ops store_pg_catalog_ops = {
    .item_put = item_put,
    .item_get = item_get,
    .item_list = item_list,
    .image_put = image_put,
    .image_get = image_get,
    .stock_set = stock_set,
    .stock_list = stock_list,
    .stock_take = stock_take,
    .stock_give = stock_give,
    .order_insert = order_insert,
    .order_get = order_get,
    .order_find_key = order_find_key,
    .order_list = order_list,
    .order_move = order_move,
};
