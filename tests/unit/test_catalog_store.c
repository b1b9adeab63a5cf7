/*
 * test_catalog_store.c: the contract suite of the rewards catalog's
 * storage seam (kopilka/catalog.h, kp_store_ops.catalog), run against
 * every backend (KOPILKA_TEST_STORE=pg: PostgreSQL; else SQLite), through
 * the seam only: items added, changed and listed; an image put, replaced
 * and read; stock set, taken (never below 0, a refusal saying what is
 * left), given back; orders stored, found by key (a key once), listed by
 * filter, moved only from the state the caller saw; stock taken by many
 * connections at once never going below 0. Also the ledger's plans of an
 * order's points and their cancellation (kp_ledger_plan_reward*).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fixture.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopilka/catalog.h>
#include <kopilka/ledger.h>
#include <kopilka/store.h>

#define T0 ((kp_time)1780000000)

typedef struct fx {
    char location[FIXTURE_LOCATION_MAX];
    kp_store *s;
    const kp_catalog_ops *o;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    fixture_location(f->location, "catalog");
    kp_error e = {0};
    if (kp_store_open(f->location, true, &f->s, &e) != KP_OK) {
        fprintf(stderr, "cannot open %s: %s\n", f->location, e.message);
        return -1;
    }
    f->o = f->s->ops->catalog;
    *state = f;
    if (f->o == NULL) {
        fprintf(stderr, "the store has no catalog operations (kp_store_ops.catalog NULL)\n");
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    kp_store_close(f->s);
    fixture_remove(f->location);
    free(f);
    return 0;
}

static int64_t add_item(fx *f, const char *name, int64_t price, bool unlimited)
{
    kp_catalog_item it;
    memset(&it, 0, sizeof it);
    snprintf(it.name, sizeof it.name, "%s", name);
    snprintf(it.kind, sizeof it.kind, "regular");
    it.price = price;
    it.unlimited = unlimited;
    it.active = true;
    assert_int_equal(f->o->item_put(f->s, &it, T0), KP_OK);
    assert_true(it.id > 0);
    return it.id;
}

static void test_items_and_images(void **state)
{
    fx *f = *state;
    int64_t a = add_item(f, "Mug \"red\", 'x'", 200, false);
    int64_t b = add_item(f, "Car wash", 100, true);
    kp_catalog_item it;
    assert_int_equal(f->o->item_get(f->s, a, &it), KP_OK);
    assert_string_equal(it.name, "Mug \"red\", 'x'");
    assert_int_equal(it.price, 200);
    assert_false(it.has_image);
    assert_int_equal(it.created_at, T0);
    it.active = false;
    it.copay_minor = 990;
    assert_int_equal(f->o->item_put(f->s, &it, T0 + 5), KP_OK);
    assert_int_equal(f->o->item_get(f->s, a, &it), KP_OK);
    assert_int_equal(it.copay_minor, 990);
    assert_false(it.active);
    assert_int_equal(it.created_at, T0);
    assert_int_equal(it.updated_at, T0 + 5);
    kp_catalog_item missing = it;
    missing.id = 999;
    assert_int_equal(f->o->item_put(f->s, &missing, T0), KP_ERR_NOT_FOUND);
    assert_int_equal(f->o->item_get(f->s, 999, &it), KP_ERR_NOT_FOUND);

    kp_catalog_item list[4];
    size_t n = 0;
    assert_int_equal(f->o->item_list(f->s, 0, false, list, 4, &n), KP_OK);
    assert_int_equal(n, 2);
    assert_int_equal(list[0].id, a);
    assert_int_equal(f->o->item_list(f->s, 0, true, list, 4, &n), KP_OK);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].id, b);
    assert_true(list[0].unlimited);
    assert_int_equal(f->o->item_list(f->s, a, false, list, 1, &n), KP_OK);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].id, b);

    /* An image with every byte value, replaced by another. */
    uint8_t img[1024];
    for (size_t i = 0; i < sizeof img; i++) img[i] = (uint8_t)i;
    assert_int_equal(f->o->image_put(f->s, a, "image/png", img, sizeof img, "e1", T0), KP_OK);
    assert_int_equal(f->o->image_put(f->s, 999, "image/png", img, 8, "e1", T0), KP_ERR_NOT_FOUND);
    char type[32], etag[40];
    void *data = NULL;
    size_t len = 0;
    assert_int_equal(f->o->image_get(f->s, a, type, &data, &len, etag), KP_OK);
    assert_int_equal(len, sizeof img);
    assert_memory_equal(data, img, sizeof img);
    assert_string_equal(type, "image/png");
    assert_string_equal(etag, "e1");
    free(data);
    assert_int_equal(f->o->image_put(f->s, a, "image/webp", img + 1, 10, "e2", T0), KP_OK);
    assert_int_equal(f->o->image_get(f->s, a, type, &data, &len, etag), KP_OK);
    assert_int_equal(len, 10);
    assert_memory_equal(data, img + 1, 10);
    assert_string_equal(etag, "e2");
    free(data);
    assert_int_equal(f->o->image_get(f->s, b, type, &data, &len, etag), KP_ERR_NOT_FOUND);
    assert_int_equal(f->o->item_get(f->s, a, &it), KP_OK);
    assert_true(it.has_image);
}

static void test_stock(void **state)
{
    fx *f = *state;
    int64_t a = add_item(f, "Mug", 200, false);
    assert_int_equal(f->o->stock_set(f->s, a, "main", 2), KP_OK);
    assert_int_equal(f->o->stock_set(f->s, a, "north", 0), KP_OK);
    assert_int_equal(f->o->stock_set(f->s, a, "main", -1), KP_ERR_INVALID);
    assert_int_equal(f->o->stock_set(f->s, a, "", 1), KP_ERR_INVALID);
    assert_int_equal(f->o->stock_set(f->s, 999, "main", 1), KP_ERR_NOT_FOUND);
    int64_t left = -1;
    assert_int_equal(f->o->stock_take(f->s, a, "main", 2, &left), KP_OK);
    assert_int_equal(left, 0);
    left = -1;
    assert_int_equal(f->o->stock_take(f->s, a, "main", 1, &left), KP_ERR_CONFLICT);
    assert_int_equal(left, 0);
    assert_int_equal(f->o->stock_take(f->s, a, "south", 1, &left), KP_ERR_NOT_FOUND);
    assert_int_equal(f->o->stock_give(f->s, a, "main", 3), KP_OK);
    assert_int_equal(f->o->stock_give(f->s, a, "south", 1), KP_OK);
    kp_catalog_stock st[8];
    size_t n = 0;
    assert_int_equal(f->o->stock_list(f->s, a, st, 8, &n), KP_OK);
    assert_int_equal(n, 3);
    assert_string_equal(st[0].store, "main");
    assert_int_equal(st[0].qty, 3);
    assert_string_equal(st[1].store, "north");
    assert_int_equal(st[1].qty, 0);
    assert_string_equal(st[2].store, "south");
    assert_int_equal(st[2].qty, 1);
    /* A take inside a transaction rolled back leaves the stock as it was. */
    assert_int_equal(f->s->ops->begin(f->s), KP_OK);
    assert_int_equal(f->o->stock_take(f->s, a, "main", 3, &left), KP_OK);
    assert_int_equal(f->s->ops->rollback(f->s), KP_OK);
    assert_int_equal(f->o->stock_list(f->s, a, st, 8, &n), KP_OK);
    assert_int_equal(st[0].qty, 3);
}

static kp_catalog_order order_of(int64_t item, int64_t account, int64_t customer, const char *store,
                                 const char *key)
{
    kp_catalog_order o;
    memset(&o, 0, sizeof o);
    o.item_id = item;
    snprintf(o.item_name, sizeof o.item_name, "Mug");
    o.account_id = account;
    o.customer_id = customer;
    snprintf(o.card, sizeof o.card, "card-%lld", (long long)account);
    snprintf(o.store, sizeof o.store, "%s", store);
    o.qty = 1;
    snprintf(o.kind, sizeof o.kind, "regular");
    o.points = 200;
    o.state = KP_ORDER_ORDERED;
    snprintf(o.source, sizeof o.source, "till");
    snprintf(o.key, sizeof o.key, "%s", key);
    memset(o.request_hash, 0xab, 16);
    snprintf(o.by, sizeof o.by, "terminal:%s", store);
    o.created_at = o.updated_at = T0;
    return o;
}

static void test_orders(void **state)
{
    fx *f = *state;
    int64_t a = add_item(f, "Mug", 200, false);
    kp_catalog_order o1 = order_of(a, 10, 1, "main", "t:main:k1");
    kp_catalog_order o2 = order_of(a, 11, 2, "north", "");
    kp_catalog_order o3 = order_of(a, 10, 1, "north", "");
    assert_int_equal(f->o->order_insert(f->s, &o1), KP_OK);
    assert_int_equal(f->o->order_insert(f->s, &o2), KP_OK);
    assert_int_equal(f->o->order_insert(f->s, &o3), KP_OK); /* "" is no key: no clash */
    kp_catalog_order dup = order_of(a, 12, 3, "main", "t:main:k1");
    assert_int_equal(f->o->order_insert(f->s, &dup), KP_ERR_CONFLICT);
    kp_catalog_order got;
    assert_int_equal(f->o->order_find_key(f->s, "t:main:k1", &got), KP_OK);
    assert_int_equal(got.id, o1.id);
    assert_memory_equal(got.request_hash, o1.request_hash, 16);
    assert_string_equal(got.by, "terminal:main");
    assert_int_equal(f->o->order_find_key(f->s, "nope", &got), KP_ERR_NOT_FOUND);
    assert_int_equal(f->o->order_find_key(f->s, "", &got), KP_ERR_NOT_FOUND);
    assert_int_equal(f->o->order_get(f->s, o2.id, &got), KP_OK);
    assert_string_equal(got.store, "north");
    assert_int_equal(got.state, KP_ORDER_ORDERED);

    kp_catalog_order list[8];
    size_t n = 0;
    kp_order_filter fl = {0};
    assert_int_equal(f->o->order_list(f->s, &fl, 0, list, 8, &n), KP_OK);
    assert_int_equal(n, 3);
    assert_int_equal(list[0].id, o3.id); /* newest first */
    fl.customer_id = 1;
    assert_int_equal(f->o->order_list(f->s, &fl, 0, list, 8, &n), KP_OK);
    assert_int_equal(n, 2);
    snprintf(fl.store, sizeof fl.store, "north");
    assert_int_equal(f->o->order_list(f->s, &fl, 0, list, 8, &n), KP_OK);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].id, o3.id);
    memset(&fl, 0, sizeof fl);
    assert_int_equal(f->o->order_list(f->s, &fl, o3.id, list, 1, &n), KP_OK);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].id, o2.id);

    assert_int_equal(f->o->order_move(f->s, o1.id, KP_ORDER_ORDERED, KP_ORDER_READY, T0 + 9),
                     KP_OK);
    /* A move from a state the order is no longer in is refused. */
    assert_int_equal(f->o->order_move(f->s, o1.id, KP_ORDER_ORDERED, KP_ORDER_CANCELLED, T0 + 9),
                     KP_ERR_CONFLICT);
    assert_int_equal(f->o->order_move(f->s, 999, KP_ORDER_ORDERED, KP_ORDER_READY, T0),
                     KP_ERR_NOT_FOUND);
    assert_int_equal(f->o->order_get(f->s, o1.id, &got), KP_OK);
    assert_int_equal(got.state, KP_ORDER_READY);
    assert_int_equal(got.updated_at, T0 + 9);
    fl.state = KP_ORDER_READY;
    assert_int_equal(f->o->order_list(f->s, &fl, 0, list, 8, &n), KP_OK);
    assert_int_equal(n, 1);
}

/* Many connections take the last items at once, each in its own
 * transaction: exactly as many takes succeed as there were items. */
enum { TAKERS = 8, ITEMS_LEFT = 3 };
typedef struct taker {
    const char *location;
    int64_t item;
    int ok, refused;
} taker;

static void *take_one(void *arg)
{
    taker *t = arg;
    kp_store *s = NULL;
    kp_error e = {0};
    if (kp_store_open(t->location, false, &s, &e) != KP_OK) return NULL;
    for (int attempt = 0; attempt < 50; attempt++) {
        kp_err err = s->ops->begin(s);
        int64_t left = 0;
        if (err == KP_OK) err = s->ops->catalog->stock_take(s, t->item, "main", 1, &left);
        if (err == KP_OK) err = s->ops->commit(s);
        if (err == KP_OK) {
            t->ok = 1;
            break;
        }
        s->ops->rollback(s);
        if (err == KP_ERR_CONFLICT) {
            t->refused = 1;
            break;
        }
        usleep(2000); /* KP_ERR_BUSY: run it again */
    }
    kp_store_close(s);
    return NULL;
}

static void test_concurrent_takes(void **state)
{
    fx *f = *state;
    int64_t a = add_item(f, "Mug", 200, false);
    assert_int_equal(f->o->stock_set(f->s, a, "main", ITEMS_LEFT), KP_OK);
    taker t[TAKERS];
    pthread_t th[TAKERS];
    for (int i = 0; i < TAKERS; i++) {
        t[i] = (taker){f->location, a, 0, 0};
        assert_int_equal(pthread_create(&th[i], NULL, take_one, &t[i]), 0);
    }
    int ok = 0, refused = 0;
    for (int i = 0; i < TAKERS; i++) {
        pthread_join(th[i], NULL);
        ok += t[i].ok;
        refused += t[i].refused;
    }
    assert_int_equal(ok, ITEMS_LEFT);
    assert_int_equal(refused, TAKERS - ITEMS_LEFT);
    kp_catalog_stock st[2];
    size_t n = 0;
    assert_int_equal(f->o->stock_list(f->s, a, st, 2, &n), KP_OK);
    assert_int_equal(n, 1);
    assert_int_equal(st[0].qty, 0);
}

/* ---- the ledger's plans of an order's points */

static kp_account account_with(void)
{
    kp_account a;
    memset(&a, 0, sizeof a);
    a.id = 7;
    a.registered = true;
    /* burn order: regular expiring soon, premium, regular never, pending */
    a.lots[0] = (kp_lot){1, "regular", 100, 100, T0 - 10, T0 - 10, T0 + 100, ""};
    a.lots[1] = (kp_lot){2, "premium", 500, 500, T0 - 10, T0 - 10, T0 + 200, ""};
    a.lots[2] = (kp_lot){3, "regular", 300, 300, T0 - 10, T0 - 10, KP_TIME_NEVER, ""};
    a.lots[3] = (kp_lot){4, "regular", 50, 50, T0, T0 + 1000, KP_TIME_NEVER, ""};
    a.n_lots = 4;
    a.balance = 950;
    return a;
}

static void test_ledger_reward_plans(void **state)
{
    (void)state;
    kp_account a = account_with();
    kp_ledger_plan plan;
    kp_lot_take takes[KP_LOTS_MAX];
    size_t n = 0;
    kp_error e = {0};
    /* Regular points only, spendable now: 400 (the pending 50 not). */
    assert_int_equal(kp_ledger_plan_reward(&a, "regular", 401, T0, &plan, takes, &n, &e),
                     KP_ERR_LIMIT);
    assert_string_equal(e.field, "points");
    assert_non_null(strstr(e.message, "400"));
    assert_int_equal(kp_ledger_plan_reward(&a, "regular", 150, T0, &plan, takes, &n, &e), KP_OK);
    assert_int_equal(plan.type, KP_OP_REWARD);
    assert_int_equal(n, 2);
    assert_int_equal(takes[0].lot_id, 1);
    assert_int_equal(takes[0].points, 100);
    assert_int_equal(takes[1].lot_id, 3);
    assert_int_equal(takes[1].points, 50);
    assert_int_equal(plan.balance_after, 800);
    assert_int_equal(plan.n_postings, 2);
    assert_int_equal(plan.postings[1].account, KP_SYS_REDEEMED);
    assert_int_equal(plan.postings[1].points, 150);
    /* Any kind: the premium lot comes second in burn order. */
    assert_int_equal(kp_ledger_plan_reward(&a, "", 700, T0, &plan, takes, &n, &e), KP_OK);
    assert_int_equal(n, 3);
    assert_int_equal(takes[1].lot_id, 2);
    /* An expired lot pays nothing. */
    assert_int_equal(kp_ledger_plan_reward(&a, "regular", 350, T0 + 150, &plan, takes, &n, &e),
                     KP_ERR_LIMIT);
    /* Debt counts: the balance, not the lots, bounds what may be spent. */
    a.debt = 900;
    a.balance = 50;
    assert_int_equal(kp_ledger_plan_reward(&a, "", 60, T0, &plan, takes, &n, &e), KP_ERR_LIMIT);

    /* The cancellation: the points back to the lots they came from, debt
     * repaid first. */
    a = account_with();
    kp_lot_take back[2] = {{1, 100}, {3, 50}};
    a.lots[0].remaining = 0;
    a.lots[2].remaining = 250;
    a.balance = 800;
    assert_int_equal(kp_ledger_plan_reward_cancel(&a, back, 2, T0, &plan, &e), KP_OK);
    assert_int_equal(plan.type, KP_OP_REWARD_CANCEL);
    assert_int_equal(plan.balance_after, 950);
    assert_int_equal(plan.n_changes, 2);
    assert_int_equal(plan.changes[0].lot_id, 3);
    assert_int_equal(plan.changes[0].delta, 50);
    assert_int_equal(plan.changes[1].lot_id, 1);
    assert_int_equal(plan.changes[1].delta, 100);
    a.debt = 120;
    a.balance = 680;
    assert_int_equal(kp_ledger_plan_reward_cancel(&a, back, 2, T0, &plan, &e), KP_OK);
    assert_int_equal(plan.debt_after, 0);
    assert_int_equal(plan.balance_after, 830);
    assert_int_equal(plan.n_changes, 1); /* 50 + 70 repaid the debt, 30 to lot 1 */
    assert_int_equal(plan.changes[0].lot_id, 1);
    assert_int_equal(plan.changes[0].delta, 30);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_items_and_images, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_orders, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_takes, setup, teardown),
        cmocka_unit_test(test_ledger_reward_plans),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
