/*
 * test_partner_store.c: the store's side of a coalition's partner staff
 * (include/kopilka/people.h) on both backends (fixture.h): a staff member's
 * partner kept, changed and carried by its sessions, and ops_of_stores:
 * a store's or a prefix's operations with a receipt, in a period, newest
 * first, paged by id, never a store outside the prefix.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fixture.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopilka/people.h>

#define NOW 1780000000 /* 2026-05-28 */

typedef struct fx {
    char path[FIXTURE_LOCATION_MAX];
    kp_store *st;
    int64_t account;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    fixture_location(f->path, "partner_store");
    kp_error e = {0};
    assert_int_equal(kp_store_open(f->path, true, &f->st, &e), KP_OK);
    assert_int_equal(f->st->ops->people->account_create(f->st, NOW, &f->account), KP_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    kp_store_close(f->st);
    fixture_remove(f->path);
    free(f);
    return 0;
}

static void staff_kept(fx *f, kp_staff *s, const char *partner)
{
    kp_staff got;
    assert_int_equal(f->st->ops->people->staff_get(f->st, s->id, NULL, &got), KP_OK);
    assert_string_equal(got.partner, partner);
    assert_int_equal(f->st->ops->people->staff_get(f->st, 0, s->login, &got), KP_OK);
    assert_string_equal(got.partner, partner);
}

static void test_a_staff_members_partner_is_kept_and_carried_by_sessions(void **state)
{
    fx *f = *state;
    kp_staff s, plain;
    memset(&s, 0, sizeof s);
    snprintf(s.login, sizeof s.login, "washer");
    s.role = KP_ROLE_PARTNER;
    s.active = true;
    snprintf(s.password_hash, sizeof s.password_hash, "x");
    snprintf(s.partner, sizeof s.partner, "wash");
    s.created_at = NOW;
    plain = s;
    snprintf(plain.login, sizeof plain.login, "anna");
    plain.role = KP_ROLE_ADMIN;
    plain.partner[0] = '\0';
    assert_int_equal(f->st->ops->people->staff_insert(f->st, &s), KP_OK);
    assert_int_equal(f->st->ops->people->staff_insert(f->st, &plain), KP_OK);
    staff_kept(f, &s, "wash");
    staff_kept(f, &plain, "");
    uint8_t token[32] = {7};
    assert_int_equal(f->st->ops->people->session_insert(f->st, token, s.id, NOW, NOW + 3600),
                     KP_OK);
    kp_staff by_session;
    kp_time expires;
    assert_int_equal(f->st->ops->people->session_find(f->st, token, NOW, &by_session, &expires),
                     KP_OK);
    assert_string_equal(by_session.partner, "wash");
    snprintf(s.partner, sizeof s.partner, "fuel_2");
    assert_int_equal(f->st->ops->people->staff_update(f->st, &s), KP_OK);
    staff_kept(f, &s, "fuel_2");
    kp_staff list[4];
    size_t n = 0;
    assert_int_equal(f->st->ops->people->staff_list(f->st, list, 4, &n), KP_OK);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].partner, "fuel_2");
    assert_string_equal(list[1].partner, "");
}

static void test_a_database_from_before_partner_staff_gains_the_column(void **state)
{
    FIXTURE_SQLITE_ONLY("people_schema 3 is SQLite's; PostgreSQL adds the column in migration 15");
    fx *f = *state;
    kp_store_close(f->st);
    assert_int_equal(fixture_exec(f->path,
                                  "ALTER TABLE staff DROP COLUMN partner;"
                                  "UPDATE meta SET value = '3' WHERE key = 'people_schema';",
                                  NULL, 0),
                     0);
    kp_error e = {0};
    assert_int_equal(kp_store_open(f->path, false, &f->st, &e), KP_OK);
    assert_int_equal(fixture_query_int64(f->path, "SELECT value FROM meta WHERE key = "
                                                  "'people_schema'"),
                     4);
    kp_staff s;
    memset(&s, 0, sizeof s);
    snprintf(s.login, sizeof s.login, "washer");
    s.role = KP_ROLE_PARTNER;
    snprintf(s.password_hash, sizeof s.password_hash, "x");
    snprintf(s.partner, sizeof s.partner, "wash");
    assert_int_equal(f->st->ops->people->staff_insert(f->st, &s), KP_OK);
    staff_kept(f, &s, "wash");
}

/* An operation at `store` (receipt "" = none) at NOW + minutes. */
static int64_t op(fx *f, const char *store, const char *receipt, int minutes)
{
    kp_op_row row;
    memset(&row, 0, sizeof row);
    row.type = KP_OP_PURCHASE;
    row.account_id = f->account;
    snprintf(row.card, sizeof row.card, "2000000000017");
    snprintf(row.store, sizeof row.store, "%s", store);
    snprintf(row.receipt, sizeof row.receipt, "%s", receipt);
    row.at = NOW + minutes * 60;
    row.amount_minor = 1000 + minutes;
    assert_int_equal(f->st->ops->op_insert(f->st, &row), KP_OK);
    return row.id;
}

static size_t stores_of(fx *f, const char *prefix, bool exact, int64_t before, kp_time from,
                        kp_time to, size_t limit, const char **want, size_t n_want)
{
    kp_history_entry got[16];
    size_t n = 99;
    assert_int_equal(
        f->st->ops->people->ops_of_stores(f->st, prefix, exact, before, from, to, got, limit, &n),
        KP_OK);
    assert_int_equal(n, n_want);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(got[i].receipt, want[i]);
        assert_int_equal(got[i].type, KP_OP_PURCHASE);
        assert_string_equal(got[i].card, "2000000000017");
    }
    return n ? (size_t)got[n - 1].op_id : 0;
}

#define WANT(...)                                                                                  \
    (const char *[]){__VA_ARGS__}, sizeof((const char *[]){__VA_ARGS__}) / sizeof(char *)

static void test_ops_of_stores_reads_a_store_or_a_prefix_newest_first(void **state)
{
    fx *f = *state;
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    op(f, "FUEL-1", "a", 1);
    op(f, "FUEL-10", "b", 2);
    op(f, "FUEL2", "c", 3); /* not under "FUEL-" */
    op(f, "FUEL-", "d", 4); /* the prefix itself is a store code under it */
    op(f, "WASH-1", "e", 5);
    op(f, "FUEL-1", "", 6); /* no receipt: not a till's */
    op(f, "#office", "g", 7);
    op(f, "FUEL-1", "h", 8);
    op(f, "FUEL-\xc3\xa9", "i", 9); /* a code in UTF-8 after "FUEL-" */
    op(f, "FUEL.", "j", 10);        /* '.' sorts right after '-': outside */
    assert_int_equal(f->st->ops->commit(f->st), KP_OK);
    const kp_time all_from = NOW, all_to = NOW + 3600;
    stores_of(f, "FUEL-", false, 0, all_from, all_to, 16, WANT("i", "h", "d", "b", "a"));
    stores_of(f, "FUEL-1", true, 0, all_from, all_to, 16, WANT("h", "a"));
    stores_of(f, "FUEL-1", false, 0, all_from, all_to, 16, WANT("h", "b", "a"));
    stores_of(f, "WASH-", false, 0, all_from, all_to, 16, WANT("e"));
    stores_of(f, "CAFE-", false, 0, all_from, all_to, 16, NULL, 0);
    stores_of(f, "", false, 0, all_from, all_to, 16,
              WANT("j", "i", "h", "g", "e", "d", "c", "b", "a"));
    /* Pages by id, newest first. */
    int64_t last = (int64_t)stores_of(f, "FUEL-", false, 0, all_from, all_to, 2, WANT("i", "h"));
    last = (int64_t)stores_of(f, "FUEL-", false, last, all_from, all_to, 2, WANT("d", "b"));
    stores_of(f, "FUEL-", false, last, all_from, all_to, 2, WANT("a"));
    /* The period: from <= at < to. */
    stores_of(f, "FUEL-", false, 0, NOW + 2 * 60, NOW + 8 * 60, 16, WANT("d", "b"));
    stores_of(f, "FUEL-", false, 0, NOW + 9 * 60, NOW + 9 * 60 + 1, 16, WANT("i"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_a_staff_members_partner_is_kept_and_carried_by_sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ops_of_stores_reads_a_store_or_a_prefix_newest_first,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_database_from_before_partner_staff_gains_the_column,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
