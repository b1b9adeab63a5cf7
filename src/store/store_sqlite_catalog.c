/*
 * store_sqlite_catalog.c: kp_catalog_ops over SQLite (kopilka/catalog.h):
 * the rewards catalog's items, their images (BLOBs), their stock per store
 * (never below 0: a CHECK, and a take is one conditional UPDATE) and the
 * orders, unique by their idempotency key when they have one. Statements
 * are prepared once at open.
 */
#include "store_sqlite_catalog.h"
#include "store_sqlite_int.h"

#include <stdlib.h>
#include <string.h>

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS catalog_items (id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
    "  description TEXT NOT NULL, kind TEXT NOT NULL, price INTEGER NOT NULL CHECK (price > 0),"
    "  copay_minor INTEGER NOT NULL CHECK (copay_minor >= 0), unlimited INTEGER NOT NULL,"
    "  active INTEGER NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS catalog_images (item_id INTEGER PRIMARY KEY, type TEXT NOT NULL,"
    "  data BLOB NOT NULL, etag TEXT NOT NULL, updated_at INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS catalog_stock (item_id INTEGER NOT NULL, store TEXT NOT NULL,"
    "  qty INTEGER NOT NULL CHECK (qty >= 0), PRIMARY KEY (item_id, store)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS catalog_orders (id INTEGER PRIMARY KEY,"
    "  item_id INTEGER NOT NULL, item_name TEXT NOT NULL, account_id INTEGER NOT NULL,"
    "  customer_id INTEGER NOT NULL, card TEXT NOT NULL, store TEXT NOT NULL,"
    "  qty INTEGER NOT NULL CHECK (qty >= 1), kind TEXT NOT NULL, points INTEGER NOT NULL,"
    "  copay_minor INTEGER NOT NULL, state INTEGER NOT NULL, source TEXT NOT NULL,"
    "  idem TEXT NOT NULL, request_hash BLOB, actor TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);"
    "CREATE UNIQUE INDEX IF NOT EXISTS catalog_orders_idem ON catalog_orders(idem) "
    "  WHERE idem <> '';"
    "CREATE INDEX IF NOT EXISTS catalog_orders_account ON catalog_orders(account_id, id);";

#define ITEM_COLS                                                                                  \
    "i.id, i.name, i.description, i.kind, i.price, i.copay_minor, i.unlimited, i.active,"         \
    " i.created_at, i.updated_at, EXISTS (SELECT 1 FROM catalog_images g WHERE g.item_id = i.id)"
#define ORDER_COLS                                                                                 \
    "id, item_id, item_name, account_id, customer_id, card, store, qty, kind, points,"            \
    " copay_minor, state, source, idem, request_hash, actor, created_at, updated_at"

enum {
    S_ITEM_INSERT,
    S_ITEM_UPDATE,
    S_ITEM_GET,
    S_ITEM_LIST,
    S_IMAGE_PUT,
    S_IMAGE_GET,
    S_STOCK_SET,
    S_STOCK_LIST,
    S_STOCK_TAKE,
    S_STOCK_LEFT,
    S_STOCK_GIVE,
    S_ORDER_INSERT,
    S_ORDER_GET,
    S_ORDER_KEY,
    S_ORDER_LIST,
    S_ORDER_MOVE,
    S__COUNT
};

static const char *const queries[S__COUNT] = {
    [S_ITEM_INSERT] = "INSERT INTO catalog_items(name, description, kind, price, copay_minor,"
                      " unlimited, active, created_at, updated_at)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
    [S_ITEM_UPDATE] = "UPDATE catalog_items SET name = ?1, description = ?2, kind = ?3,"
                      " price = ?4, copay_minor = ?5, unlimited = ?6, active = ?7,"
                      " updated_at = ?8 WHERE id = ?9",
    [S_ITEM_GET] = "SELECT " ITEM_COLS " FROM catalog_items i WHERE i.id = ?1",
    [S_ITEM_LIST] = "SELECT " ITEM_COLS " FROM catalog_items i WHERE i.id > ?1"
                    " AND (?2 = 0 OR i.active = 1) ORDER BY i.id LIMIT ?3",
    [S_IMAGE_PUT] = "INSERT INTO catalog_images(item_id, type, data, etag, updated_at)"
                    " SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM catalog_items"
                    " WHERE id = ?1) ON CONFLICT(item_id) DO UPDATE SET type = excluded.type,"
                    " data = excluded.data, etag = excluded.etag, updated_at = excluded.updated_at",
    [S_IMAGE_GET] = "SELECT type, data, etag FROM catalog_images WHERE item_id = ?1",
    [S_STOCK_SET] = "INSERT INTO catalog_stock(item_id, store, qty) SELECT ?1, ?2, ?3"
                    " WHERE EXISTS (SELECT 1 FROM catalog_items WHERE id = ?1)"
                    " ON CONFLICT(item_id, store) DO UPDATE SET qty = excluded.qty",
    [S_STOCK_LIST] = "SELECT store, qty FROM catalog_stock WHERE item_id = ?1 ORDER BY store"
                     " LIMIT ?2",
    [S_STOCK_TAKE] = "UPDATE catalog_stock SET qty = qty - ?3 WHERE item_id = ?1 AND store = ?2"
                     " AND qty >= ?3 RETURNING qty",
    [S_STOCK_LEFT] = "SELECT qty FROM catalog_stock WHERE item_id = ?1 AND store = ?2",
    [S_STOCK_GIVE] = "INSERT INTO catalog_stock(item_id, store, qty) VALUES (?1, ?2, ?3)"
                     " ON CONFLICT(item_id, store) DO UPDATE SET qty = qty + excluded.qty",
    [S_ORDER_INSERT] = "INSERT INTO catalog_orders(item_id, item_name, account_id, customer_id,"
                       " card, store, qty, kind, points, copay_minor, state, source, idem,"
                       " request_hash, actor, created_at, updated_at)"
                       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,"
                       " ?15, ?16, ?17)",
    [S_ORDER_GET] = "SELECT " ORDER_COLS " FROM catalog_orders WHERE id = ?1",
    [S_ORDER_KEY] = "SELECT " ORDER_COLS " FROM catalog_orders WHERE idem = ?1 AND idem <> ''",
    [S_ORDER_LIST] = "SELECT " ORDER_COLS " FROM catalog_orders WHERE (?1 = 0 OR account_id = ?1)"
                     " AND (?2 = 0 OR item_id = ?2) AND (?3 = '' OR store = ?3)"
                      " AND (?4 = 0 OR state = ?4) AND (?5 = 0 OR id < ?5)"
                     " AND (?7 = 0 OR customer_id = ?7) ORDER BY id DESC LIMIT ?6",
    [S_ORDER_MOVE] = "UPDATE catalog_orders SET state = ?3, updated_at = ?4 WHERE id = ?1"
                     " AND state = ?2",
};

struct sqlite_catalog {
    sqlite3 *db;
    char *last_error;
    size_t last_error_size;
    sqlite3_stmt *stmt[S__COUNT];
};

static kp_err fail(sqlite_catalog *t, int rc)
{
    return store_sqlite_fail(t->db, t->last_error, t->last_error_size, rc);
}

static sqlite3_stmt *q(kp_store *s, sqlite_catalog **t, int id)
{
    *t = store_sqlite_catalog_of(s);
    return store_sqlite_fresh((*t)->stmt[id]);
}

static kp_err run(sqlite_catalog *t, sqlite3_stmt *st)
{
    return store_sqlite_run(t->db, t->last_error, t->last_error_size, st);
}

static void text(sqlite3_stmt *st, int col, char *out, size_t size)
{
    store_sqlite_copy_text(out, size, sqlite3_column_text(st, col));
}

static void item_read(sqlite3_stmt *st, kp_catalog_item *it)
{
    memset(it, 0, sizeof *it);
    it->id = sqlite3_column_int64(st, 0);
    text(st, 1, it->name, sizeof it->name);
    text(st, 2, it->description, sizeof it->description);
    text(st, 3, it->kind, sizeof it->kind);
    it->price = sqlite3_column_int64(st, 4);
    it->copay_minor = sqlite3_column_int64(st, 5);
    it->unlimited = sqlite3_column_int(st, 6) != 0;
    it->active = sqlite3_column_int(st, 7) != 0;
    it->created_at = sqlite3_column_int64(st, 8);
    it->updated_at = sqlite3_column_int64(st, 9);
    it->has_image = sqlite3_column_int(st, 10) != 0;
}

static void order_read(sqlite3_stmt *st, kp_catalog_order *o)
{
    memset(o, 0, sizeof *o);
    o->id = sqlite3_column_int64(st, 0);
    o->item_id = sqlite3_column_int64(st, 1);
    text(st, 2, o->item_name, sizeof o->item_name);
    o->account_id = sqlite3_column_int64(st, 3);
    o->customer_id = sqlite3_column_int64(st, 4);
    text(st, 5, o->card, sizeof o->card);
    text(st, 6, o->store, sizeof o->store);
    o->qty = sqlite3_column_int64(st, 7);
    text(st, 8, o->kind, sizeof o->kind);
    o->points = sqlite3_column_int64(st, 9);
    o->copay_minor = sqlite3_column_int64(st, 10);
    o->state = (kp_order_state)sqlite3_column_int(st, 11);
    text(st, 12, o->source, sizeof o->source);
    text(st, 13, o->key, sizeof o->key);
    if (sqlite3_column_bytes(st, 14) == 16) memcpy(o->request_hash, sqlite3_column_blob(st, 14), 16);
    text(st, 15, o->by, sizeof o->by);
    o->created_at = sqlite3_column_int64(st, 16);
    o->updated_at = sqlite3_column_int64(st, 17);
}

static kp_err item_put(kp_store *s, kp_catalog_item *it, kp_time now)
{
    sqlite_catalog *t;
    sqlite3_stmt *st = q(s, &t, it->id ? S_ITEM_UPDATE : S_ITEM_INSERT);
    sqlite3_bind_text(st, 1, it->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, it->description, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, it->kind, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, it->price);
    sqlite3_bind_int64(st, 5, it->copay_minor);
    sqlite3_bind_int(st, 6, it->unlimited);
    sqlite3_bind_int(st, 7, it->active);
    sqlite3_bind_int64(st, 8, now);
    if (it->id) sqlite3_bind_int64(st, 9, it->id);
    kp_err err = run(t, st);
    if (err) return err;
    if (it->id == 0) {
        it->id = sqlite3_last_insert_rowid(t->db);
        it->created_at = now;
    } else if (sqlite3_changes(t->db) == 0) {
        return KP_ERR_NOT_FOUND;
    }
    it->updated_at = now;
    return KP_OK;
}

static kp_err item_get(kp_store *s, int64_t id, kp_catalog_item *out)
{
    sqlite_catalog *t;
    sqlite3_stmt *st = q(s, &t, S_ITEM_GET);
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    kp_err err = rc == SQLITE_ROW ? KP_OK : rc == SQLITE_DONE ? KP_ERR_NOT_FOUND : fail(t, rc);
    if (err == KP_OK) item_read(st, out);
    sqlite3_reset(st);
    return err;
}

static kp_err item_list(kp_store *s, int64_t after, bool active_only, kp_catalog_item *out,
                        size_t limit, size_t *n)
{
    sqlite_catalog *t;
    sqlite3_stmt *st = q(s, &t, S_ITEM_LIST);
    sqlite3_bind_int64(st, 1, after);
    sqlite3_bind_int(st, 2, active_only);
    sqlite3_bind_int64(st, 3, (int64_t)limit);
    *n = 0;
    int rc;
    while (*n < limit && (rc = sqlite3_step(st)) == SQLITE_ROW) item_read(st, &out[(*n)++]);
    kp_err err = (*n == limit || rc == SQLITE_DONE) ? KP_OK : fail(t, rc);
    if (err) *n = 0;
    sqlite3_reset(st);
    return err;
}

static kp_err image_put(kp_store *s, int64_t item_id, const char *type, const void *data,
                        size_t len, const char *etag, kp_time now)
{
    sqlite_catalog *t;
    sqlite3_stmt *st = q(s, &t, S_IMAGE_PUT);
    sqlite3_bind_int64(st, 1, item_id);
    sqlite3_bind_text(st, 2, type, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, data, (int)len, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, etag, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, now);
    kp_err err = run(t, st);
    if (err == KP_OK && sqlite3_changes(t->db) == 0) err = KP_ERR_NOT_FOUND;
    return err;
}

static kp_err image_get(kp_store *s, int64_t item_id, char type[32], void **data, size_t *len,
                        char etag[40])
{
    sqlite_catalog *t;
    sqlite3_stmt *st = q(s, &t, S_IMAGE_GET);
    sqlite3_bind_int64(st, 1, item_id);
    int rc = sqlite3_step(st);
    kp_err err = rc == SQLITE_ROW ? KP_OK : rc == SQLITE_DONE ? KP_ERR_NOT_FOUND : fail(t, rc);
    if (err == KP_OK) {
        size_t n = (size_t)sqlite3_column_bytes(st, 1);
        void *p = malloc(n ? n : 1);
        if (p == NULL) {
            err = KP_ERR_NOMEM;
        } else {
            if (n) memcpy(p, sqlite3_column_blob(st, 1), n);
            text(st, 0, type, 32);
            text(st, 2, etag, 40);
            *data = p;
            *len = n;
        }
    }
    sqlite3_reset(st);
    return err;
}

static kp_err stock_set(kp_store *s, int64_t item_id, const char *store, int64_t qty)
{
    if (qty < 0 || store[0] == '\0') {
        snprintf(s->last_error, sizeof s->last_error, "a stock needs a store and qty >= 0");
        return KP_ERR_INVALID;
    }
    sqlite_catalog *t;
    sqlite3_stmt *st = q(s, &t, S_STOCK_SET);
    sqlite3_bind_int64(st, 1, item_id);
    sqlite3_bind_text(st, 2, store, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, qty);
    kp_err err = run(t, st);
    if (err == KP_OK && sqlite3_changes(t->db) == 0) err = KP_ERR_NOT_FOUND;
    return err;
}

static kp_err stock_list(kp_store *s, int64_t item_id, kp_catalog_stock *out, size_t limit,
                         size_t *n)
{
    sqlite_catalog *t;
    sqlite3_stmt *st = q(s, &t, S_STOCK_LIST);
    sqlite3_bind_int64(st, 1, item_id);
    sqlite3_bind_int64(st, 2, (int64_t)limit);
    *n = 0;
    int rc;
    while (*n < limit && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        text(st, 0, out[*n].store, sizeof out[*n].store);
        out[(*n)++].qty = sqlite3_column_int64(st, 1);
    }
    kp_err err = (*n == limit || rc == SQLITE_DONE) ? KP_OK : fail(t, rc);
    if (err) *n = 0;
    sqlite3_reset(st);
    return err;
}

static kp_err stock_take(kp_store *s, int64_t item_id, const char *store, int64_t qty,
                         int64_t *left)
{
    sqlite_catalog *t;
    sqlite3_stmt *st = q(s, &t, S_STOCK_TAKE);
    sqlite3_bind_int64(st, 1, item_id);
    sqlite3_bind_text(st, 2, store, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, qty);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *left = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        return KP_OK;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return fail(t, rc);
    st = q(s, &t, S_STOCK_LEFT);
    sqlite3_bind_int64(st, 1, item_id);
    sqlite3_bind_text(st, 2, store, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    kp_err err = rc == SQLITE_ROW ? KP_ERR_CONFLICT : rc == SQLITE_DONE ? KP_ERR_NOT_FOUND : fail(t, rc);
    if (rc == SQLITE_ROW) *left = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return err;
}

static kp_err stock_give(kp_store *s, int64_t item_id, const char *store, int64_t qty)
{
    sqlite_catalog *t;
    sqlite3_stmt *st = q(s, &t, S_STOCK_GIVE);
    sqlite3_bind_int64(st, 1, item_id);
    sqlite3_bind_text(st, 2, store, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, qty);
    return run(t, st);
}

static kp_err order_insert(kp_store *s, kp_catalog_order *o)
{
    sqlite_catalog *t;
    sqlite3_stmt *st = q(s, &t, S_ORDER_INSERT);
    sqlite3_bind_int64(st, 1, o->item_id);
    sqlite3_bind_text(st, 2, o->item_name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, o->account_id);
    sqlite3_bind_int64(st, 4, o->customer_id);
    sqlite3_bind_text(st, 5, o->card, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, o->store, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, o->qty);
    sqlite3_bind_text(st, 8, o->kind, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 9, o->points);
    sqlite3_bind_int64(st, 10, o->copay_minor);
    sqlite3_bind_int(st, 11, (int)o->state);
    sqlite3_bind_text(st, 12, o->source, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 13, o->key, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 14, o->request_hash, 16, SQLITE_STATIC);
    sqlite3_bind_text(st, 15, o->by, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 16, o->created_at);
    sqlite3_bind_int64(st, 17, o->updated_at);
    kp_err err = run(t, st);
    if (err == KP_OK) o->id = sqlite3_last_insert_rowid(t->db);
    return err;
}

static kp_err order_one(kp_store *s, int which, int64_t id, const char *key, kp_catalog_order *out)
{
    sqlite_catalog *t;
    sqlite3_stmt *st = q(s, &t, which);
    if (key) sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    else sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    kp_err err = rc == SQLITE_ROW ? KP_OK : rc == SQLITE_DONE ? KP_ERR_NOT_FOUND : fail(t, rc);
    if (err == KP_OK) order_read(st, out);
    sqlite3_reset(st);
    return err;
}

static kp_err order_get(kp_store *s, int64_t id, kp_catalog_order *out)
{
    return order_one(s, S_ORDER_GET, id, NULL, out);
}

static kp_err order_find_key(kp_store *s, const char *key, kp_catalog_order *out)
{
    return order_one(s, S_ORDER_KEY, 0, key, out);
}

static kp_err order_list(kp_store *s, const kp_order_filter *f, int64_t before,
                         kp_catalog_order *out, size_t limit, size_t *n)
{
    sqlite_catalog *t;
    sqlite3_stmt *st = q(s, &t, S_ORDER_LIST);
    sqlite3_bind_int64(st, 1, f->account_id);
    sqlite3_bind_int64(st, 2, f->item_id);
    sqlite3_bind_text(st, 3, f->store, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, (int)f->state);
    sqlite3_bind_int64(st, 5, before);
    sqlite3_bind_int64(st, 6, (int64_t)limit);
    sqlite3_bind_int64(st, 7, f->customer_id);
    *n = 0;
    int rc;
    while (*n < limit && (rc = sqlite3_step(st)) == SQLITE_ROW) order_read(st, &out[(*n)++]);
    kp_err err = (*n == limit || rc == SQLITE_DONE) ? KP_OK : fail(t, rc);
    if (err) *n = 0;
    sqlite3_reset(st);
    return err;
}

static kp_err order_move(kp_store *s, int64_t id, kp_order_state from, kp_order_state to,
                         kp_time now)
{
    sqlite_catalog *t;
    sqlite3_stmt *st = q(s, &t, S_ORDER_MOVE);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, (int)from);
    sqlite3_bind_int(st, 3, (int)to);
    sqlite3_bind_int64(st, 4, now);
    kp_err err = run(t, st);
    if (err || sqlite3_changes(t->db) > 0) return err;
    kp_catalog_order o;
    err = order_get(s, id, &o);
    return err ? err : KP_ERR_CONFLICT;
}

kp_err store_sqlite_catalog_open(sqlite3 *db, char *last_error, size_t last_error_size,
                                 sqlite_catalog **out)
{
    *out = NULL;
    sqlite_catalog *t = calloc(1, sizeof *t);
    if (t == NULL) return KP_ERR_NOMEM;
    t->db = db;
    t->last_error = last_error;
    t->last_error_size = last_error_size;
    int rc = sqlite3_exec(db, schema_sql, NULL, NULL, NULL);
    rc = store_sqlite_prepare_all(db, rc, queries, S__COUNT, t->stmt);
    if (rc != SQLITE_OK) {
        kp_err err = fail(t, rc);
        store_sqlite_catalog_close(t);
        return err;
    }
    *out = t;
    return KP_OK;
}

void store_sqlite_catalog_close(sqlite_catalog *t)
{
    if (t == NULL) return;
    store_sqlite_finalize_all(t->stmt, S__COUNT);
    free(t);
}

const kp_catalog_ops store_sqlite_catalog_ops = {
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
