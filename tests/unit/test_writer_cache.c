/*
 * test_writer_cache.c: the SQLite writer's cache on its own
 * (src/store/store_sqlite_cache.c): a ledger plan followed as account_load()
 * would read the account afterwards (lots in burn order, spent lots gone,
 * a joined lot, a new lot), what it cannot follow evicted, a job's
 * rollback to its savepoint, clears, and tables that grow. The cache in
 * the server against every other writer: tests/integration/
 * test_writer_cache.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store/store_sqlite_cache.h"

static kp_account *account_new(int64_t id)
{
    kp_account *a = calloc(1, sizeof *a);
    assert_non_null(a);
    a->id = id;
    return a;
}

static void lot_set(kp_lot *l, int64_t id, int64_t remaining, kp_time expires)
{
    memset(l, 0, sizeof *l);
    l->id = id;
    snprintf(l->kind, sizeof l->kind, "regular");
    l->amount = l->remaining = remaining;
    l->earned_at = l->active_from = 100;
    l->expires_at = expires;
}

static void a_plan_is_followed_as_the_database_reads_it_after(void **state)
{
    (void)state;
    sqlite_cache *c = store_sqlite_cache_new();
    assert_non_null(c);
    kp_account *a = account_new(7);
    a->balance = 300;
    a->purchases = 2;
    a->spend_minor = 5000;
    a->n_lots = 3;
    lot_set(&a->lots[0], 11, 100, 1000);
    lot_set(&a->lots[1], 12, 100, 2000);
    lot_set(&a->lots[2], 13, 100, 3000);
    store_sqlite_cache_account_put(c, a, NULL);

    /* Burns lot 11 whole and 30 of lot 12, joins 50 into lot 13 whose
     * expiry moves past lot 12's... */
    kp_ledger_plan *p = calloc(1, sizeof *p);
    assert_non_null(p);
    p->account_id = 7;
    p->n_changes = 2;
    p->changes[0].lot_id = 11;
    p->changes[0].delta = -100;
    p->changes[1].lot_id = 12;
    p->changes[1].delta = -30;
    p->has_new_lot = true;
    lot_set(&p->new_lot, 13, 50, 1500);
    p->new_lot.active_from = 200;
    p->balance_after = 220;
    p->purchases_delta = 1;
    p->spend_delta_minor = 700;
    store_sqlite_cache_apply(c, p, 0, 500);

    kp_account *got = account_new(0);
    kp_account_rules rules;
    bool known = true;
    assert_true(store_sqlite_cache_account(c, 7, got, &rules, &known));
    assert_false(known);
    assert_int_equal(got->balance, 220);
    assert_int_equal(got->purchases, 3);
    assert_int_equal(got->spend_minor, 5700);
    /* ...so 11 is gone, 12 (70 left, expires 2000) then 13 (3000: the
     * later expiry of the two is kept). */
    assert_int_equal(got->n_lots, 2);
    assert_int_equal(got->lots[0].id, 12);
    assert_int_equal(got->lots[0].remaining, 70);
    assert_int_equal(got->lots[1].id, 13);
    assert_int_equal(got->lots[1].amount, 150);
    assert_int_equal(got->lots[1].remaining, 150);
    assert_int_equal(got->lots[1].active_from, 200);
    assert_int_equal(got->lots[1].expires_at, 3000);

    /* A new lot takes the id SQLite gave it and sorts by expiry, then id. */
    memset(p, 0, sizeof *p);
    p->account_id = 7;
    p->has_new_lot = true;
    lot_set(&p->new_lot, 0, 40, 2000);
    p->new_lot.earned_at = 0;
    p->balance_after = 260;
    store_sqlite_cache_apply(c, p, 99, 600);
    assert_true(store_sqlite_cache_account(c, 7, got, &rules, &known));
    assert_int_equal(got->n_lots, 3);
    assert_int_equal(got->lots[1].id, 99);
    assert_int_equal(got->lots[1].earned_at, 600);
    assert_string_equal(got->lots[1].kind, "regular");
    assert_int_equal(got->lots[2].id, 13);

    /* A lot it does not hold, or a merge of lots: evicted, read again. */
    memset(p, 0, sizeof *p);
    p->account_id = 7;
    p->n_changes = 1;
    p->changes[0].lot_id = 555;
    p->changes[0].delta = -1;
    store_sqlite_cache_apply(c, p, 0, 700);
    assert_false(store_sqlite_cache_account(c, 7, got, &rules, &known));
    store_sqlite_cache_account_put(c, a, NULL);
    memset(p, 0, sizeof *p);
    p->account_id = 7;
    p->lots_merge = true;
    store_sqlite_cache_apply(c, p, 0, 700);
    assert_false(store_sqlite_cache_account(c, 7, got, &rules, &known));

    free(p);
    free(got);
    free(a);
    store_sqlite_cache_free(c);
}

static void a_rollback_to_the_savepoint_evicts_what_the_job_applied(void **state)
{
    (void)state;
    sqlite_cache *c = store_sqlite_cache_new();
    kp_account *a = account_new(1), *got = account_new(0);
    store_sqlite_cache_account_put(c, a, NULL);
    a->id = 2;
    store_sqlite_cache_account_put(c, a, NULL);
    kp_ledger_plan *p = calloc(1, sizeof *p);
    p->account_id = 1;
    p->balance_after = 5;
    kp_account_rules rules;
    bool known;

    store_sqlite_cache_savepoint(c);
    store_sqlite_cache_apply(c, p, 0, 1);
    store_sqlite_cache_savepoint(c); /* the next job: released, kept */
    p->account_id = 2;
    store_sqlite_cache_apply(c, p, 0, 1);
    store_sqlite_cache_rollback_to(c);
    assert_true(store_sqlite_cache_account(c, 1, got, &rules, &known));
    assert_int_equal(got->balance, 5);
    assert_false(store_sqlite_cache_account(c, 2, got, &rules, &known));

    /* A clear drops everything at once. */
    kp_card card = {.number = "2000000000017", .account_id = 1};
    store_sqlite_cache_card_put(c, &card, 1);
    kp_card out;
    int may_burn = -1;
    assert_true(store_sqlite_cache_card(c, "2000000000017", &out, &may_burn));
    assert_int_equal(may_burn, 1);
    store_sqlite_cache_card_evict(c, "2000000000017");
    assert_false(store_sqlite_cache_card(c, "2000000000017", &out, &may_burn));
    store_sqlite_cache_card_put(c, &card, -1);
    store_sqlite_cache_clear(c);
    assert_false(store_sqlite_cache_card(c, "2000000000017", &out, &may_burn));
    assert_false(store_sqlite_cache_account(c, 1, got, &rules, &known));
    free(p);
    free(a);
    free(got);
    store_sqlite_cache_free(c);
}

static void tables_grow_and_keep_every_entry(void **state)
{
    (void)state;
    sqlite_cache *c = store_sqlite_cache_new();
    kp_account *a = account_new(0);
    enum { N = 20000 };
    for (int i = 1; i <= N; i++) {
        kp_card card;
        memset(&card, 0, sizeof card);
        snprintf(card.number, sizeof card.number, "77%011d", i);
        card.account_id = i;
        store_sqlite_cache_card_put(c, &card, i % 2);
        store_sqlite_cache_account_bare(c, i, i * 10, 0, i, 0);
        kp_lot l;
        lot_set(&l, 100000 + i, i, 5000);
        store_sqlite_cache_lot_add(c, i, &l);
    }
    sqlite_cache_stats st;
    store_sqlite_cache_stats(c, &st);
    assert_int_equal(st.cards, N);
    assert_int_equal(st.accounts, N);
    for (int i = 1; i <= N; i += 997) {
        char number[32];
        snprintf(number, sizeof number, "77%011d", i);
        kp_card out;
        int may_burn;
        assert_true(store_sqlite_cache_card(c, number, &out, &may_burn));
        assert_int_equal(out.account_id, i);
        assert_int_equal(may_burn, i % 2);
        kp_account_rules rules;
        bool known = false;
        assert_true(store_sqlite_cache_account(c, i, a, &rules, &known));
        assert_true(known); /* preloaded: no rule state row means none */
        assert_int_equal(a->balance, i * 10);
        assert_int_equal(a->n_lots, 1);
        assert_int_equal(a->lots[0].remaining, i);
    }
    free(a);
    store_sqlite_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_plan_is_followed_as_the_database_reads_it_after),
        cmocka_unit_test(a_rollback_to_the_savepoint_evicts_what_the_job_applied),
        cmocka_unit_test(tables_grow_and_keep_every_entry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
