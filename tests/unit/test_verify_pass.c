/*
 * test_verify_pass.c: SQLite's verify checks the ledger's invariants in C
 * (src/store/store_sqlite_verify.c) instead of running their SQL; this
 * proves it finds exactly what the SQL finds, line for line and in the
 * same order, on a ledger made by purchases and then broken step by step
 * (balances, operations, postings, lots, debt, system accounts,
 * settlement entries, more problems than lines), also where it must fall
 * back to the SQL (postings out of operation order, a system account far
 * below the others, sparse account ids) and inside a caller's
 * transaction (one connection, no second reader). SQLite only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fixture.h"
#include "service/service.h"
#include "store/store_invariants.h"

static const char case1[] =
    "{\"name\":\"case1\",\"rules\":["
    "{\"id\":\"labor\",\"kind\":\"earn_percent\",\"category\":\"labor\",\"percent\":4},"
    "{\"id\":\"parts\",\"kind\":\"earn_percent\",\"category\":\"parts\",\"percent\":12},"
    "{\"id\":\"cap\",\"kind\":\"burn_limit\",\"category\":\"labor\",\"percent\":50}]}";

enum { CARDS = 6, LINES = 400 };

typedef struct lines {
    int n;
    char *text[LINES];
} lines;

typedef struct fx {
    char path[512];
    kp_store *st;
    char cards[CARDS][KP_STR_MAX];
    int ncards;
} fx;

static void keep_number(void *ctx, const char *number)
{
    fx *f = ctx;
    if (f->ncards < CARDS) snprintf(f->cards[f->ncards++], KP_STR_MAX, "%s", number);
}

static void collect(void *ctx, const char *line)
{
    lines *l = ctx;
    if (l->n < LINES) l->text[l->n++] = strdup(line);
}

static void lines_free(lines *l)
{
    for (int i = 0; i < l->n; i++) free(l->text[i]);
    l->n = 0;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    snprintf(f->path, sizeof f->path, "%s/kp-verify-pass-%d.db",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
    fixture_remove_db(f->path);
    kp_error e = {0};
    assert_int_equal(kp_store_open(f->path, true, &f->st, &e), KP_OK);
    int64_t v;
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(kp_service_program_load(f->st, case1, strlen(case1), &v, &e), KP_OK);
    assert_int_equal(kp_service_cards_issue(f->st, CARDS, 1000, keep_number, f, &e), KP_OK);
    kp_program program;
    assert_int_equal(kp_service_program_get(f->st, 0, &program, &e), KP_OK);
    kp_scratch *sc = kp_scratch_new();
    kp_buf out;
    kp_buf_init(&out, 1 << 16);
    /* Purchases on every card, some burning what earlier ones earned. */
    for (int i = 0; i < 60; i++) {
        char body[512];
        int n = snprintf(body, sizeof body,
                         "{\"card\":\"%s\",\"receipt\":\"r%d\",\"burn\":%d,\"lines\":["
                         "{\"sku\":\"L\",\"category\":\"labor\",\"amount\":%d},"
                         "{\"sku\":\"P\",\"category\":\"parts\",\"amount\":%d}]}",
                         f->cards[i % CARDS], i, (i % 3) * 150, 10000 + 7919 * i, 30000 * (i % 5));
        kp_purchase_req req;
        bool replayed = false;
        kp_buf_reset(&out);
        assert_int_equal(kp_purchase_req_parse(body, (size_t)n, true, &req, &e), KP_OK);
        assert_int_equal(kp_service_purchase(f->st, &program, "s1", &req, 1000 + i, sc, &out,
                                             &replayed, &e),
                         KP_OK);
    }
    assert_int_equal(f->st->ops->commit(f->st), KP_OK);
    kp_buf_release(&out);
    kp_scratch_free(sc);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    kp_store_close(f->st);
    fixture_remove_db(f->path);
    free(f);
    return 0;
}

/* What the invariants' own SQL reports, as the backend's verify used to:
 * each row one problem, lines while fewer than the cap. */
static int64_t by_sql(const char *path, lines *l)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    int64_t problems = 0;
    for (size_t c = 0; c < store_invariants_count; c++) {
        sqlite3_stmt *st;
        assert_int_equal(sqlite3_prepare_v2(db, store_invariants[c].sql, -1, &st, NULL), SQLITE_OK);
        while (sqlite3_step(st) == SQLITE_ROW) {
            char line[256];
            snprintf(line, sizeof line, store_invariants[c].what,
                     (long long)sqlite3_column_int64(st, 0), (long long)sqlite3_column_int64(st, 1));
            if (problems < STORE_INVARIANT_LINES_MAX) collect(l, line);
            problems++;
        }
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return problems;
}

/* verify() against by_sql(): the same count, the same lines in order.
 * Returns the count. In a transaction of the caller's when `in_tx`. */
static int64_t same_as_sql(fx *f, bool in_tx)
{
    lines want = {0}, got = {0};
    int64_t expected = by_sql(f->path, &want);
    int64_t problems = -1;
    if (in_tx) assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(f->st->ops->verify(f->st, collect, &got, &problems), KP_OK);
    if (in_tx) assert_int_equal(f->st->ops->rollback(f->st), KP_OK);
    for (int i = 0; i < got.n || i < want.n; i++)
        if (i >= got.n || i >= want.n || strcmp(got.text[i], want.text[i]) != 0)
            print_error("line %d: verify \"%s\", the SQL \"%s\"\n", i,
                        i < got.n ? got.text[i] : "(none)", i < want.n ? want.text[i] : "(none)");
    assert_int_equal(problems, expected);
    assert_int_equal(got.n, want.n);
    for (int i = 0; i < got.n; i++) assert_string_equal(got.text[i], want.text[i]);
    lines_free(&want);
    lines_free(&got);
    return expected;
}

static void tamper(fx *f, const char *sql)
{
    char why[256] = "";
    if (fixture_exec(f->path, sql, why, sizeof why) != 0) fail_msg("%s: %s", sql, why);
}

static void test_a_sound_ledger_has_no_problem(void **state)
{
    fx *f = *state;
    assert_int_equal(same_as_sql(f, false), 0);
    assert_int_equal(same_as_sql(f, true), 0);
}

static void test_each_break_is_found_as_the_sql_finds_it(void **state)
{
    fx *f = *state;
    static const char *const steps[] = {
        "UPDATE accounts SET balance = balance + 5 WHERE id = (SELECT min(id) FROM accounts)",
        "UPDATE ops SET points = points + 3 WHERE id = (SELECT max(id) FROM ops)",
        /* an operation with no postings that says it changed something */
        "INSERT INTO ops(type, account_id, card, program_version, at, amount, paid, earned, "
        "burned, points) VALUES (1, 1, 'x', 1, 0, 0, 0, 0, 0, 7)",
        "DELETE FROM postings WHERE rowid = (SELECT max(rowid) FROM postings WHERE account_id > 0)",
        "UPDATE sys_accounts SET balance = balance - 1 WHERE id = -2",
        "PRAGMA ignore_check_constraints = 1; UPDATE lots SET remaining = amount + 1 "
        "WHERE id = (SELECT min(id) FROM lots)",
        "PRAGMA ignore_check_constraints = 1; UPDATE accounts SET debt = -4 "
        "WHERE id = (SELECT max(id) FROM accounts)",
        /* settlement entries of an operation with postings, and of one without */
        "INSERT INTO settle_entries(op_id, seq, booked_at, period, currency, kind, payer, payee, "
        "points, amount_minor) VALUES ((SELECT min(op_id) FROM postings), 1, 0, 0, 'EUR', 1, "
        "'a', 'b', 9, 0), ((SELECT min(op_id) FROM postings), 2, 0, 0, 'EUR', 2, 'a', 'b', 4, 0), "
        "((SELECT max(id) FROM ops), 1, 0, 0, 'EUR', 3, 'a', 'b', 2, 0)",
        /* more problems than lines: 150 operations with no postings */
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 150) "
        "INSERT INTO ops(type, account_id, card, program_version, at, amount, paid, earned, "
        "burned, points) SELECT 1, 1, 'x', 1, 0, 0, 0, 0, 0, 1 FROM n",
    };
    int64_t before = 0;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        tamper(f, steps[i]);
        int64_t now = same_as_sql(f, false);
        assert_true(now > before); /* each step is found */
        before = now;
        assert_int_equal(same_as_sql(f, true), now);
    }
}

static void test_postings_out_of_operation_order_fall_back_to_sql(void **state)
{
    fx *f = *state;
    /* a posting of the first operation written last, balanced by another */
    tamper(f, "INSERT INTO postings(op_id, account_id, points) VALUES "
              "((SELECT min(op_id) FROM postings), (SELECT min(id) FROM accounts), 11)");
    assert_true(same_as_sql(f, false) >= 2);
    tamper(f, "INSERT INTO postings(op_id, account_id, points) VALUES "
              "((SELECT min(op_id) FROM postings), -1, -11)");
    assert_true(same_as_sql(f, false) >= 2);
    assert_true(same_as_sql(f, true) >= 2);
}

static void test_odd_ids_fall_back_to_sql(void **state)
{
    fx *f = *state;
    /* a system account far below the others, with a posting that is off */
    tamper(f, "INSERT INTO sys_accounts(id, code, balance) VALUES (-100000, 'far', 5);"
              "INSERT INTO postings(op_id, account_id, points) VALUES "
              "((SELECT max(op_id) FROM postings), -100000, 3)");
    assert_true(same_as_sql(f, false) >= 2);
    /* an account id far beyond the arrays */
    tamper(f, "INSERT INTO accounts(id, balance, debt, purchases, spend, created_at) "
              "VALUES (900000000000, 3, 0, 0, 0, 0)");
    assert_true(same_as_sql(f, false) >= 3);
    assert_true(same_as_sql(f, true) >= 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_sound_ledger_has_no_problem, setup, teardown),
        cmocka_unit_test_setup_teardown(test_each_break_is_found_as_the_sql_finds_it, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_postings_out_of_operation_order_fall_back_to_sql,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_odd_ids_fall_back_to_sql, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
