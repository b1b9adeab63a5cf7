/*
 * catalog.c: the rewards catalog (catalog.h): items, stock and images for
 * the back office, orders from the cabinet, the till and the back office,
 * and an order's states. An order's points are one ledger operation
 * (KP_OP_REWARD, store "#catalog", receipt "order:<id>", the lots it took
 * in its detail); a cancellation gives them back to those lots as another
 * (KP_OP_REWARD_CANCEL, receipt "order:<id>:cancel"). The customer hears
 * of an order placed, ready and cancelled (order_placed, order_ready,
 * order_cancelled: docs/notifications.md), the event written beside the
 * change in the same transaction.
 */
#include "catalog.h"
#include "people_int.h"
#include "currency.h"
#include "notify/notify.h"
#include "settle_book.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopilka/card_number.h>

static const char CATALOG_STORE[] = "#catalog";

const char *kp_order_state_name(kp_order_state state)
{
    switch (state) {
    case KP_ORDER_ORDERED: return "ordered";
    case KP_ORDER_READY: return "ready";
    case KP_ORDER_HANDED_OVER: return "handed_over";
    case KP_ORDER_CANCELLED: return "cancelled";
    }
    return "unknown";
}

bool kp_order_state_parse(const char *text, kp_order_state *out)
{
    for (int s = KP_ORDER_ORDERED; s <= KP_ORDER_CANCELLED; s++)
        if (strcmp(text, kp_order_state_name((kp_order_state)s)) == 0) {
            *out = (kp_order_state)s;
            return true;
        }
    return false;
}

const char *kp_catalog_image_sniff(const void *data, size_t len)
{
    const uint8_t *b = data;
    if (len >= 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0) return "image/png";
    if (len >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) return "image/jpeg";
    if (len >= 12 && memcmp(b, "RIFF", 4) == 0 && memcmp(b + 8, "WEBP", 4) == 0)
        return "image/webp";
    return NULL;
}

/* ---- telling the customer */

/* The order's event, key "catalog-order:<id>:<state>": its item, number,
 * quantity (when more than one), store and points; with `plan` (the
 * ledger change just planned on o->sc->account) the balance after it.
 * `op_id` is the ledger operation (0: none). */
static kp_err order_notify(kp_office *o, kp_notify_kind kind, const kp_catalog_order *ord,
                           const kp_ledger_plan *plan, int64_t op_id, kp_error *e)
{
    kp_notify_figures f;
    memset(&f, 0, sizeof f);
    if (plan) kp_notify_figures_after(&o->sc->account, plan, o->now, &f);
    f.points = ord->points;
    f.order_id = ord->id;
    f.qty = ord->qty > 1 ? ord->qty : 0;
    snprintf(f.item, sizeof f.item, "%s", ord->item_name);
    snprintf(f.store, sizeof f.store, "%s", ord->store);
    char key[KP_NOTIFY_KEY_MAX];
    snprintf(key, sizeof key, "catalog-order:%lld:%s", (long long)ord->id,
             kp_order_state_name(ord->state));
    return kp_notify_emit(o->st, kind, key, ord->account_id, ord->customer_id, ord->card, op_id,
                          o->now, &f, e);
}

/* ---- who may do what */

static bool is_till(const kp_catalog_caller *c)
{
    return c->store != NULL;
}

/* catalog.manage for staff and the command line; a till and a customer
 * are refused (they order, and a till hands over, through their own
 * checks). */
static kp_err require_manage(kp_office *o, kp_error *e)
{
    return kp_office_require_back_office(o, KP_PERM_CATALOG_MANAGE, e);
}

/* Ordering or reading orders: a customer's session (their own), a till
 * (card.read, which every till has), or catalog.manage. */
static kp_err require_order(kp_office *o, const kp_catalog_caller *c, kp_error *e)
{
    if (kp_office_is_self(o)) return KP_OK;
    if (o->actor.kind == KP_ACTOR_CUSTOMER)
        return kp_error_set(e, KP_ERR_FORBIDDEN, "", "log in to order from the catalog");
    if (is_till(c)) return kp_office_require(o, KP_PERM_CARD_READ, e);
    return require_manage(o, e);
}

/* ---- answers */

static void item_json(kp_office *o, const kp_catalog_item *it, const kp_catalog_caller *c,
                      kp_buf *out)
{
    kp_buf_puts(out, "{");
    kp_buf_json_kv_i64(out, "id", it->id, false);
    kp_buf_json_kv_str(out, "name", it->name, true);
    kp_buf_json_kv_str(out, "description", it->description, true);
    kp_buf_json_kv_str(out, "kind", it->kind, true);
    kp_buf_json_kv_i64(out, "price", it->price, true);
    kp_buf_json_kv_i64(out, "copay", it->copay_minor, true);
    kp_buf_printf(out, ",\"unlimited\":%s,\"active\":%s", it->unlimited ? "true" : "false",
                  it->active ? "true" : "false");
    if (it->has_image)
        kp_buf_printf(out, ",\"image\":\"/v1/catalog/items/%lld/image?v=%lld\"",
                      (long long)it->id, (long long)it->updated_at);
    else
        kp_buf_puts(out, ",\"image\":null");
    kp_buf_puts(out, ",\"stock\":[");
    kp_catalog_stock stock[KP_CATALOG_STORES_MAX];
    size_t n = 0;
    int64_t available = 0;
    if (!it->unlimited &&
        o->st->ops->catalog->stock_list(o->st, it->id, stock, KP_CATALOG_STORES_MAX, &n) != KP_OK)
        n = 0;
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (c && is_till(c) && strcmp(stock[i].store, c->store) != 0) continue;
        kp_buf_puts(out, first ? "{" : ",{");
        first = false;
        kp_buf_json_kv_str(out, "store", stock[i].store, false);
        kp_buf_json_kv_i64(out, "qty", stock[i].qty, true);
        kp_buf_puts(out, "}");
        available += stock[i].qty;
    }
    kp_buf_puts(out, "]");
    if (it->unlimited) kp_buf_puts(out, ",\"available\":null");
    else kp_buf_json_kv_i64(out, "available", available, true);
    people_time_kv(out, "created_at", it->created_at);
    people_time_kv(out, "updated_at", it->updated_at);
    kp_buf_puts(out, "}");
}

static void order_json(const kp_catalog_order *r, kp_buf *out)
{
    kp_buf_puts(out, "{");
    kp_buf_json_kv_i64(out, "id", r->id, false);
    kp_buf_json_kv_i64(out, "item_id", r->item_id, true);
    kp_buf_json_kv_str(out, "item_name", r->item_name, true);
    kp_buf_json_kv_str(out, "card", r->card, true);
    kp_buf_json_kv_str(out, "store", r->store, true);
    kp_buf_json_kv_i64(out, "qty", r->qty, true);
    kp_buf_json_kv_str(out, "kind", r->kind, true);
    kp_buf_json_kv_i64(out, "points", r->points, true);
    kp_buf_json_kv_i64(out, "copay", r->copay_minor, true);
    kp_buf_json_kv_str(out, "state", kp_order_state_name(r->state), true);
    kp_buf_json_kv_str(out, "source", r->source, true);
    kp_buf_json_kv_str(out, "by", r->by, true);
    people_time_kv(out, "created_at", r->created_at);
    people_time_kv(out, "updated_at", r->updated_at);
}

static kp_err answer_order(const kp_catalog_order *r, bool replayed, int64_t balance,
                           kp_buf *out, kp_error *e)
{
    kp_buf_reset(out);
    order_json(r, out);
    if (balance >= 0) kp_buf_json_kv_i64(out, "balance", balance, true);
    if (replayed) kp_buf_puts(out, ",\"replayed\":true");
    kp_buf_puts(out, "}");
    return out->failed ? kp_error_set(e, KP_ERR_NOMEM, "", "the answer is too large") : KP_OK;
}

static kp_err item_load(kp_office *o, int64_t id, kp_catalog_item *it, const char *field,
                        kp_error *e)
{
    kp_err err = o->st->ops->catalog->item_get(o->st, id, it);
    if (err == KP_ERR_NOT_FOUND)
        return kp_error_set(e, err, field, "no catalog item %lld", (long long)id);
    return err ? people_storage(o->st, err, e) : KP_OK;
}

/* ---- items */

kp_err kp_catalog_item_save(kp_office *o, int64_t id, const char *body, size_t len, kp_buf *out,
                            kp_field_errors *fe, kp_error *e)
{
    (void)fe;
    kp_err err = require_manage(o, e);
    if (err) return err;
    json_t *root = people_json_load(body, len, e);
    if (root == NULL) return KP_ERR_INVALID;
    static const char *const keys[] = {"name", "description", "kind", "price", "copay",
                                       "unlimited", "active", NULL};
    kp_catalog_item it;
    memset(&it, 0, sizeof it);
    it.active = true;
    if (id && (err = item_load(o, id, &it, "id", e))) goto out;
    char name[KP_CATALOG_NAME_MAX] = "", kind[16] = "";
    int64_t price = it.price, copay = it.copay_minor;
    bool b;
    bool present;
    if ((err = people_json_keys(root, keys, e))) goto out;
    if ((err = people_json_str(root, "name", id == 0, name, sizeof name - 1, e))) goto out;
    if (name[0]) snprintf(it.name, sizeof it.name, "%s", name);
    if (json_object_get(root, "description") &&
        (err = people_json_str(root, "description", false, it.description,
                               sizeof it.description - 1, e)))
        goto out;
    if (json_object_get(root, "kind")) {
        if ((err = people_json_str(root, "kind", false, kind, sizeof kind - 1, e))) goto out;
        if (kind[0] && o->program && kp_program_kind(o->program, kind) == NULL) {
            err = kp_error_set(e, KP_ERR_INVALID, "kind",
                               "the program has no point kind \"%s\" (its purchase kind is "
                               "\"%s\"; \"\" = any kind)",
                               kind, o->program->point_kind);
            goto out;
        }
        snprintf(it.kind, sizeof it.kind, "%s", kind);
    } else if (id == 0 && o->program) {
        snprintf(it.kind, sizeof it.kind, "%s", o->program->point_kind);
    }
    if ((err = people_json_int(root, "price", id == 0, 1, 1000000000, &price, e)) ||
        (err = people_json_int(root, "copay", false, 0, 100000000000LL, &copay, e)))
        goto out;
    it.price = price;
    it.copay_minor = copay;
    b = it.unlimited;
    if ((err = people_json_bool(root, "unlimited", &b, &present, e))) goto out;
    it.unlimited = b;
    b = it.active;
    if ((err = people_json_bool(root, "active", &b, &present, e))) goto out;
    it.active = b;
    if (it.name[0] == '\0') {
        err = kp_error_set(e, KP_ERR_INVALID, "name", "must not be empty");
        goto out;
    }
    if ((err = o->st->ops->catalog->item_put(o->st, &it, o->now))) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    char target[48];
    snprintf(target, sizeof target, "catalog_item:%lld", (long long)it.id);
    if ((err = kp_office_audit(o, id ? "catalog.item_change" : "catalog.item_add", target,
                               "price=%lld kind=%s copay=%lld active=%d unlimited=%d",
                               (long long)it.price, it.kind, (long long)it.copay_minor,
                               it.active, it.unlimited))) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    if ((err = item_load(o, it.id, &it, "id", e))) goto out;
    kp_buf_reset(out);
    item_json(o, &it, NULL, out);
out:
    json_decref(root);
    return err;
}

kp_err kp_catalog_stock_put(kp_office *o, int64_t id, const char *body, size_t len, kp_buf *out,
                            kp_error *e)
{
    kp_err err = require_manage(o, e);
    if (err) return err;
    kp_catalog_item it;
    if ((err = item_load(o, id, &it, "id", e))) return err;
    if (it.unlimited)
        return kp_error_set(e, KP_ERR_INVALID, "stock",
                            "item %lld is unlimited (a service): it has no stock", (long long)id);
    json_t *root = people_json_load(body, len, e);
    if (root == NULL) return KP_ERR_INVALID;
    static const char *const keys[] = {"stock", NULL};
    static const char *const row_keys[] = {"store", "qty", NULL};
    json_t *list = json_object_get(root, "stock");
    if ((err = people_json_keys(root, keys, e))) goto out;
    if (!json_is_array(list) || json_array_size(list) == 0 ||
        json_array_size(list) > KP_CATALOG_STORES_MAX) {
        err = kp_error_set(e, KP_ERR_INVALID, "stock",
                           "must be a list of 1 to %d {\"store\", \"qty\"}", KP_CATALOG_STORES_MAX);
        goto out;
    }
    size_t i;
    json_t *row;
    json_array_foreach(list, i, row)
    {
        char field[sizeof e->field + 32], store[KP_STR_MAX];
        int64_t qty = 0;
        if (!json_is_object(row)) {
            snprintf(field, sizeof field, "stock[%zu]", i);
            err = kp_error_set(e, KP_ERR_INVALID, field, "must be {\"store\", \"qty\"}");
            goto out;
        }
        if ((err = people_json_keys(row, row_keys, e)) ||
            (err = people_json_str(row, "store", true, store, sizeof store - 1, e)) ||
            (err = people_json_int(row, "qty", true, 0, 1000000000, &qty, e))) {
            snprintf(field, sizeof field, "stock[%zu].%s", i, e->field);
            snprintf(e->field, sizeof e->field, "%.*s", (int)sizeof e->field - 1, field);
            goto out;
        }
        if (store[0] == '#') {
            snprintf(field, sizeof field, "stock[%zu].store", i);
            err = kp_error_set(e, KP_ERR_INVALID, field, "a store's name does not start with #");
            goto out;
        }
        if ((err = o->st->ops->catalog->stock_set(o->st, id, store, qty))) {
            err = people_storage(o->st, err, e);
            goto out;
        }
        char target[48];
        snprintf(target, sizeof target, "catalog_item:%lld", (long long)id);
        if ((err = kp_office_audit(o, "catalog.stock", target, "store=%s qty=%lld", store,
                                   (long long)qty))) {
            err = people_storage(o->st, err, e);
            goto out;
        }
    }
    kp_buf_reset(out);
    item_json(o, &it, NULL, out);
out:
    json_decref(root);
    return err;
}

kp_err kp_catalog_image_put(kp_office *o, int64_t id, const char *type, const void *data,
                            size_t len, kp_buf *out, kp_error *e)
{
    kp_err err = require_manage(o, e);
    if (err) return err;
    kp_catalog_item it;
    if ((err = item_load(o, id, &it, "id", e))) return err;
    char declared[32];
    snprintf(declared, sizeof declared, "%.*s", (int)strcspn(type ? type : "", "; "),
             type ? type : "");
    if (strcmp(declared, "image/png") && strcmp(declared, "image/jpeg") &&
        strcmp(declared, "image/webp"))
        return kp_error_set(e, KP_ERR_INVALID, "Content-Type",
                            "an image is image/png, image/jpeg or image/webp, not \"%s\"",
                            declared);
    if (len == 0 || len > KP_CATALOG_IMAGE_MAX)
        return kp_error_set(e, KP_ERR_LIMIT, "image",
                            "an image is 1 byte to %d KiB, this one is %zu bytes",
                            KP_CATALOG_IMAGE_MAX / 1024, len);
    const char *seen = kp_catalog_image_sniff(data, len);
    if (seen == NULL || strcmp(seen, declared) != 0)
        return kp_error_set(e, KP_ERR_INVALID, "image",
                            "the bytes are not a %s file (they look like %s)", declared,
                            seen ? seen : "none of PNG, JPEG and WebP");
    uint8_t h[16];
    crypto_generichash(h, sizeof h, data, len, NULL, 0);
    char etag[40];
    sodium_bin2hex(etag, 33, h, sizeof h);
    if ((err = o->st->ops->catalog->image_put(o->st, id, declared, data, len, etag, o->now)) ||
        (err = o->st->ops->catalog->item_put(o->st, &it, o->now)))
        return people_storage(o->st, err, e);
    char target[48];
    snprintf(target, sizeof target, "catalog_item:%lld", (long long)id);
    if ((err = kp_office_audit(o, "catalog.image", target, "type=%s bytes=%zu", declared, len)))
        return people_storage(o->st, err, e);
    if ((err = item_load(o, id, &it, "id", e))) return err;
    kp_buf_reset(out);
    item_json(o, &it, NULL, out);
    return KP_OK;
}

kp_err kp_catalog_items_json(kp_office *o, bool all, const kp_catalog_caller *c, kp_buf *out,
                             kp_error *e)
{
    kp_err err;
    if (all && (err = require_manage(o, e))) return err;
    kp_catalog_item *items = malloc(KP_CATALOG_PAGE_MAX * sizeof *items);
    if (items == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    kp_buf_reset(out);
    kp_buf_puts(out, "{\"items\":[");
    int64_t after = 0;
    bool first = true;
    for (;;) {
        size_t n = 0;
        if ((err = o->st->ops->catalog->item_list(o->st, after, !all, items, KP_CATALOG_PAGE_MAX,
                                                  &n))) {
            free(items);
            return people_storage(o->st, err, e);
        }
        for (size_t i = 0; i < n; i++) {
            if (!first) kp_buf_puts(out, ",");
            first = false;
            item_json(o, &items[i], c, out);
        }
        if (n < KP_CATALOG_PAGE_MAX) break;
        after = items[n - 1].id;
    }
    free(items);
    kp_buf_puts(out, "]");
    if (c && is_till(c)) kp_buf_json_kv_str(out, "store", c->store, true);
    kp_buf_puts(out, "}");
    return out->failed ? kp_error_set(e, KP_ERR_NOMEM, "", "the answer is too large") : KP_OK;
}

/* ---- orders */

static void order_hash(const char *card, int64_t item_id, const char *store, int64_t qty,
                       uint8_t out[16])
{
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, 16);
    crypto_generichash_update(&h, (const uint8_t *)"order", 6);
    crypto_generichash_update(&h, (const uint8_t *)card, strlen(card) + 1);
    crypto_generichash_update(&h, (const uint8_t *)&item_id, sizeof item_id);
    crypto_generichash_update(&h, (const uint8_t *)store, strlen(store) + 1);
    crypto_generichash_update(&h, (const uint8_t *)&qty, sizeof qty);
    crypto_generichash_final(&h, out, 16);
}

/* The lots an order's points came from, in its operation's detail:
 * "order <id> takes <lot>:<points>,...". */
static void takes_write(int64_t order_id, const kp_lot_take *takes, size_t n, kp_buf *b)
{
    kp_buf_reset(b);
    kp_buf_printf(b, "order %lld takes ", (long long)order_id);
    for (size_t i = 0; i < n; i++)
        kp_buf_printf(b, "%s%lld:%lld", i ? "," : "", (long long)takes[i].lot_id,
                      (long long)takes[i].points);
}

static kp_err takes_read(const char *detail, kp_lot_take *takes, size_t *n, kp_error *e)
{
    *n = 0;
    const char *p = detail ? strstr(detail, " takes ") : NULL;
    if (p == NULL)
        return kp_error_set(e, KP_ERR_INTERNAL, "", "an order's operation has no lots in its detail");
    p += 7;
    while (*p && *n < KP_LOTS_MAX) {
        char *end;
        long long lot = strtoll(p, &end, 10);
        if (end == p || *end != ':')
            return kp_error_set(e, KP_ERR_INTERNAL, "", "an order's lots cannot be read");
        p = end + 1;
        long long pts = strtoll(p, &end, 10);
        if (end == p) return kp_error_set(e, KP_ERR_INTERNAL, "", "an order's lots cannot be read");
        takes[(*n)++] = (kp_lot_take){lot, pts};
        p = *end == ',' ? end + 1 : end;
    }
    return KP_OK;
}

static kp_err out_of_stock(const kp_catalog_item *it, const char *store, int64_t left,
                           int64_t qty, kp_error *e)
{
    return kp_error_setr(e, KP_ERR_CONFLICT, KP_REASON_OUT_OF_STOCK, "item_id",
                         "catalog item %lld (%s) has %lld left at store %s, %lld ordered",
                         (long long)it->id, it->name, (long long)left, store, (long long)qty);
}

static void key_scope(kp_office *o, const kp_catalog_caller *c, const char *key, char *out,
                      size_t size)
{
    if (kp_office_is_self(o))
        snprintf(out, size, "c%lld:%s", (long long)o->actor.customer_id, key);
    else if (is_till(c))
        snprintf(out, size, "t:%s:%s", c->store, key);
    else
        snprintf(out, size, "o:%s", key);
}

kp_err kp_catalog_order_create(kp_office *o, const kp_catalog_caller *c, const char *body, size_t len,
                               kp_buf *out, bool *replayed, kp_error *e)
{
    *replayed = false;
    kp_err err = require_order(o, c, e);
    if (err) return err;
    json_t *root = people_json_load(body, len, e);
    if (root == NULL) return KP_ERR_INVALID;
    static const char *const keys[] = {"card", "item_id", "store", "qty", "key", "currency", NULL};
    char card[KP_STR_MAX], store[KP_STR_MAX] = "", key[KP_STR_MAX - 40];
    int64_t item_id = 0, qty = 1;
    kp_catalog_order ord;
    memset(&ord, 0, sizeof ord);
    if ((err = people_json_keys(root, keys, e)) ||
        (err = kp_service_own_currency_only(root, o->program, "catalog orders", e)) ||
        (err = people_json_str(root, "card", true, card, KP_STR_MAX - 1, e)) ||
        (err = people_json_int(root, "item_id", true, 1, INT64_MAX, &item_id, e)) ||
        (err = people_json_str(root, "store", !is_till(c), store, KP_STR_MAX - 1, e)) ||
        (err = people_json_int(root, "qty", false, 1, 100, &qty, e)) ||
        (err = people_json_str(root, "key", true, key, sizeof key - 1, e)))
        goto out;
    if (store[0] == '#') {
        err = kp_error_set(e, KP_ERR_INVALID, "store", "a store's name does not start with #");
        goto out;
    }
    if (is_till(c)) {
        if (store[0] && strcmp(store, c->store) != 0) {
            err = kp_error_set(e, KP_ERR_FORBIDDEN, "store",
                               "a till orders at its own store (%s)", c->store);
            goto out;
        }
        snprintf(store, sizeof store, "%s", c->store);
    }
    uint8_t hash[16];
    order_hash(card, item_id, store, qty, hash);
    key_scope(o, c, key, ord.key, sizeof ord.key);
    kp_catalog_order prior;
    err = o->st->ops->catalog->order_find_key(o->st, ord.key, &prior);
    if (err == KP_OK) {
        if (memcmp(prior.request_hash, hash, 16) == 0) {
            *replayed = true;
            err = answer_order(&prior, true, -1, out, e);
        } else {
            err = kp_error_setr(e, KP_ERR_CONFLICT, KP_REASON_KEY_CONFLICT, "key",
                                "order key %s was already used for another order", key);
        }
        goto out;
    }
    if (err != KP_ERR_NOT_FOUND) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    kp_card_info ci;
    if ((err = people_card_account(o, card, &ci, e))) goto out;
    if (kp_office_is_self(o) && ci.customer_id != o->actor.customer_id) {
        err = kp_card_unknown(card, "card", e);
        goto out;
    }
    if (!ci.may_burn) {
        err = kp_error_set(e, KP_ERR_FORBIDDEN, "card",
                           "the family's owner has not allowed this card to spend its points");
        goto out;
    }
    kp_catalog_item it;
    if ((err = item_load(o, item_id, &it, "item_id", e))) goto out;
    if (!it.active) {
        err = kp_error_set(e, KP_ERR_CONFLICT, "item_id",
                           "catalog item %lld (%s) is not offered now", (long long)item_id,
                           it.name);
        goto out;
    }
    /* Too few left is said before too few points (the take below is what
     * counts under concurrent orders; this read only orders the refusals). */
    if (!it.unlimited) {
        kp_catalog_stock stock[KP_CATALOG_STORES_MAX];
        size_t n = 0;
        if ((err = o->st->ops->catalog->stock_list(o->st, item_id, stock, KP_CATALOG_STORES_MAX,
                                                   &n))) {
            err = people_storage(o->st, err, e);
            goto out;
        }
        for (size_t i = 0; i < n; i++)
            if (strcmp(stock[i].store, store) == 0 && stock[i].qty < qty) {
                err = out_of_stock(&it, store, stock[i].qty, qty, e);
                goto out;
            }
    }
    kp_account *a = &o->sc->account;
    if ((err = o->st->ops->account_load(o->st, ci.account_id, a))) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    int64_t points = it.price * qty;
    static _Thread_local kp_lot_take takes[KP_LOTS_MAX];
    size_t n_takes = 0;
    err = kp_ledger_plan_reward(a, it.kind, points, o->now, &o->sc->plan, takes, &n_takes, e);
    if (err == KP_ERR_LIMIT && strcmp(e->field, "points") == 0) e->reason = KP_REASON_NOT_ENOUGH_POINTS;
    if (err) goto out;
    if (!it.unlimited) {
        int64_t left = 0;
        err = o->st->ops->catalog->stock_take(o->st, item_id, store, qty, &left);
        if (err == KP_ERR_CONFLICT) {
            err = out_of_stock(&it, store, left, qty, e);
            goto out;
        }
        if (err == KP_ERR_NOT_FOUND) {
            err = kp_error_setr(e, KP_ERR_CONFLICT, KP_REASON_OUT_OF_STOCK, "store",
                                "catalog item %lld (%s) is not stocked at store %s",
                                (long long)item_id, it.name, store);
            goto out;
        }
        if (err) {
            err = people_storage(o->st, err, e);
            goto out;
        }
    }
    ord.item_id = item_id;
    snprintf(ord.item_name, sizeof ord.item_name, "%s", it.name);
    ord.account_id = ci.account_id;
    ord.customer_id = ci.customer_id;
    snprintf(ord.card, sizeof ord.card, "%s", card);
    snprintf(ord.store, sizeof ord.store, "%s", store);
    ord.qty = qty;
    snprintf(ord.kind, sizeof ord.kind, "%s", it.kind);
    ord.points = points;
    ord.copay_minor = it.copay_minor * qty;
    ord.state = KP_ORDER_ORDERED;
    snprintf(ord.source, sizeof ord.source, "%s", c->source);
    memcpy(ord.request_hash, hash, 16);
    snprintf(ord.by, sizeof ord.by, "%s", o->actor.name);
    ord.created_at = ord.updated_at = o->now;
    if ((err = o->st->ops->catalog->order_insert(o->st, &ord))) {
        /* The same key stored by another server meanwhile: run it again,
         * which then answers that order (the writer retries KP_ERR_BUSY). */
        if (err == KP_ERR_CONFLICT) err = KP_ERR_BUSY;
        err = people_storage(o->st, err, e);
        goto out;
    }
    kp_buf detail;
    kp_buf_init(&detail, 64 * 1024);
    takes_write(ord.id, takes, n_takes, &detail);
    kp_op_row row;
    memset(&row, 0, sizeof row);
    row.type = KP_OP_REWARD;
    row.account_id = ci.account_id;
    snprintf(row.card, sizeof row.card, "%s", card);
    snprintf(row.store, sizeof row.store, "%s", CATALOG_STORE);
    snprintf(row.receipt, sizeof row.receipt, "order:%lld", (long long)ord.id);
    memcpy(row.request_hash, hash, 16);
    row.program_version = o->program ? o->program->version : 0;
    row.at = o->now;
    row.burned = points;
    row.points = -points;
    row.detail = detail.failed ? NULL : detail.data;
    if (detail.failed) err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    else if ((err = o->st->ops->op_insert(o->st, &row)) ||
             (err = o->st->ops->plan_apply(o->st, row.id, &o->sc->plan, o->now)))
        err = people_storage(o->st, err, e);
    /* Burnt at the operator, from each issuer's lots (coalition.h). */
    else if (o->program)
        err = kp_book_burn(o->st, o->program, KP_OPERATOR, a, takes, n_takes, row.id, o->now, e);
    kp_buf_release(&detail);
    if (err) goto out;
    char target[48];
    snprintf(target, sizeof target, "catalog_order:%lld", (long long)ord.id);
    if ((err = kp_office_audit(o, "catalog.order", target,
                               "item=%lld qty=%lld store=%s points=%lld op=%lld source=%s",
                               (long long)item_id, (long long)qty, store, (long long)points,
                               (long long)row.id, c->source))) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    if ((err = order_notify(o, KP_NOTIFY_ORDER_PLACED, &ord, &o->sc->plan, row.id, e))) goto out;
    err = answer_order(&ord, false, o->sc->plan.balance_after, out, e);
out:
    json_decref(root);
    return err;
}

kp_err kp_catalog_orders_json(kp_office *o, const kp_catalog_caller *c, const char *state,
                              const char *store, const char *card, int64_t before, int64_t limit,
                              kp_buf *out, kp_error *e)
{
    kp_err err = require_order(o, c, e);
    if (err) return err;
    kp_order_filter f;
    memset(&f, 0, sizeof f);
    if (state && state[0] && !kp_order_state_parse(state, &f.state))
        return kp_error_set(e, KP_ERR_INVALID, "state",
                            "must be ordered, ready, handed_over or cancelled");
    if (kp_office_is_self(o)) f.customer_id = o->actor.customer_id;
    if (is_till(c)) snprintf(f.store, sizeof f.store, "%s", c->store);
    else if (store && store[0]) snprintf(f.store, sizeof f.store, "%s", store);
    if (card && card[0]) {
        kp_card_info ci;
        err = o->st->ops->people->card_info_get(o->st, card, &ci);
        if (err == KP_ERR_NOT_FOUND || (err == KP_OK && kp_office_is_self(o) &&
                                        ci.customer_id != o->actor.customer_id))
            return kp_card_unknown(card, "card", e);
        if (err) return people_storage(o->st, err, e);
        f.account_id = ci.account_id;
    }
    if (limit < 1 || limit > KP_CATALOG_PAGE_MAX)
        return kp_error_set(e, KP_ERR_INVALID, "limit", "must be a whole number from 1 to %d",
                            KP_CATALOG_PAGE_MAX);
    if (before < 0)
        return kp_error_set(e, KP_ERR_INVALID, "before",
                            "must be an order id: the next_before of the page before");
    kp_catalog_order *rows = malloc((size_t)limit * sizeof *rows);
    if (rows == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    size_t n = 0;
    if ((err = o->st->ops->catalog->order_list(o->st, &f, before, rows, (size_t)limit, &n))) {
        free(rows);
        return people_storage(o->st, err, e);
    }
    kp_buf_reset(out);
    kp_buf_puts(out, "{\"orders\":[");
    for (size_t i = 0; i < n; i++) {
        if (i) kp_buf_puts(out, ",");
        order_json(&rows[i], out);
        kp_buf_puts(out, "}");
    }
    kp_buf_puts(out, "]");
    if (n == (size_t)limit) kp_buf_json_kv_i64(out, "next_before", rows[n - 1].id, true);
    else kp_buf_puts(out, ",\"next_before\":null");
    kp_buf_puts(out, "}");
    free(rows);
    return out->failed ? kp_error_set(e, KP_ERR_NOMEM, "", "the answer is too large") : KP_OK;
}

/* Gives an order's points back: KP_OP_REWARD_CANCEL to the lots its
 * KP_OP_REWARD took. Sets *balance and *op_id (o->sc->plan is the change). */
static kp_err points_back(kp_office *o, const kp_catalog_order *ord, int64_t *balance,
                          int64_t *op_id, kp_error *e)
{
    kp_op_row paid;
    char receipt[KP_STR_MAX];
    snprintf(receipt, sizeof receipt, "order:%lld", (long long)ord->id);
    kp_err err = o->st->ops->op_find(o->st, CATALOG_STORE, receipt, &paid);
    if (err == KP_ERR_NOT_FOUND)
        return kp_error_set(e, KP_ERR_INTERNAL, "", "order %lld has no ledger operation",
                            (long long)ord->id);
    if (err) return people_storage(o->st, err, e);
    static _Thread_local kp_lot_take takes[KP_LOTS_MAX];
    size_t n = 0;
    err = takes_read(paid.detail, takes, &n, e);
    int64_t paid_id = paid.id;
    kp_op_row_release(&paid);
    if (err) return err;
    kp_account *a = &o->sc->account;
    if ((err = o->st->ops->account_load(o->st, ord->account_id, a)))
        return people_storage(o->st, err, e);
    if ((err = kp_ledger_plan_reward_cancel(a, takes, n, o->now, &o->sc->plan, e))) return err;
    kp_op_row row;
    memset(&row, 0, sizeof row);
    row.type = KP_OP_REWARD_CANCEL;
    row.account_id = ord->account_id;
    snprintf(row.card, sizeof row.card, "%s", ord->card);
    snprintf(row.store, sizeof row.store, "%s", CATALOG_STORE);
    snprintf(row.receipt, sizeof row.receipt, "order:%lld:cancel", (long long)ord->id);
    row.program_version = o->program ? o->program->version : 0;
    row.at = o->now;
    row.points = ord->points;
    char detail[64];
    snprintf(detail, sizeof detail, "order %lld cancelled", (long long)ord->id);
    row.detail = detail;
    if ((err = o->st->ops->op_insert(o->st, &row)) ||
        (err = o->st->ops->plan_apply(o->st, row.id, &o->sc->plan, o->now)))
        return people_storage(o->st, err, e);
    /* The order's entries booked back (coalition.h). */
    if (o->program && (err = kp_book_negate(o->st, o->program, paid_id, row.id, o->now, e)))
        return err;
    *balance = o->sc->plan.balance_after;
    *op_id = row.id;
    return KP_OK;
}

kp_err kp_catalog_order_move(kp_office *o, const kp_catalog_caller *c, int64_t id,
                             kp_order_state to, kp_buf *out, kp_error *e)
{
    kp_err err = require_order(o, c, e);
    if (err) return err;
    kp_catalog_order ord;
    err = o->st->ops->catalog->order_get(o->st, id, &ord);
    /* A customer sees only their own orders, a till only its store's:
     * any other is as unknown as an id never made. */
    if (err == KP_OK && ((kp_office_is_self(o) && ord.customer_id != o->actor.customer_id) ||
                         (is_till(c) && strcmp(ord.store, c->store) != 0)))
        err = KP_ERR_NOT_FOUND;
    if (err == KP_ERR_NOT_FOUND) return kp_error_set(e, err, "id", "no order %lld", (long long)id);
    if (err) return people_storage(o->st, err, e);
    kp_order_state from = ord.state;
    const char *why = NULL;
    switch (to) {
    case KP_ORDER_READY:
        if (kp_office_is_self(o)) why = "a customer cannot mark an order ready";
        else if (from != KP_ORDER_ORDERED) why = "only an ordered order becomes ready";
        break;
    case KP_ORDER_HANDED_OVER:
        if (kp_office_is_self(o)) why = "an order is handed over at the store";
        else if (from != KP_ORDER_ORDERED && from != KP_ORDER_READY)
            why = "only an ordered or ready order can be handed over";
        break;
    case KP_ORDER_CANCELLED:
        if (kp_office_is_self(o) && from != KP_ORDER_ORDERED)
            why = "a customer may cancel an order only while it is ordered; ask the store";
        else if (from != KP_ORDER_ORDERED && from != KP_ORDER_READY)
            why = "an order handed over or cancelled already cannot be cancelled";
        break;
    default: why = "no such state"; break;
    }
    if (why)
        return kp_error_set(e, KP_ERR_CONFLICT, "state", "order %lld is %s: %s", (long long)id,
                            kp_order_state_name(from), why);
    err = o->st->ops->catalog->order_move(o->st, id, from, to, o->now);
    if (err == KP_ERR_CONFLICT)
        return kp_error_set(e, err, "state", "order %lld changed meanwhile; read it again",
                            (long long)id);
    if (err) return people_storage(o->st, err, e);
    int64_t balance = -1, op_id = 0;
    if (to == KP_ORDER_CANCELLED) {
        if ((err = points_back(o, &ord, &balance, &op_id, e))) return err;
        kp_catalog_item it;
        bool limited = o->st->ops->catalog->item_get(o->st, ord.item_id, &it) == KP_OK &&
                       !it.unlimited;
        if (limited && (err = o->st->ops->catalog->stock_give(o->st, ord.item_id, ord.store,
                                                               ord.qty)))
            return people_storage(o->st, err, e);
    }
    char target[48];
    snprintf(target, sizeof target, "catalog_order:%lld", (long long)id);
    if ((err = kp_office_audit(o, "catalog.order_state", target, "from=%s to=%s",
                               kp_order_state_name(from), kp_order_state_name(to))))
        return people_storage(o->st, err, e);
    ord.state = to;
    ord.updated_at = o->now;
    if (to == KP_ORDER_READY || to == KP_ORDER_CANCELLED) {
        kp_notify_kind kind = to == KP_ORDER_READY ? KP_NOTIFY_ORDER_READY : KP_NOTIFY_ORDER_CANCELLED;
        if ((err = order_notify(o, kind, &ord, to == KP_ORDER_CANCELLED ? &o->sc->plan : NULL,
                                op_id, e)))
            return err;
    }
    return answer_order(&ord, false, balance, out, e);
}
