/*
 * test_store_pg_triggers.c: what the PostgreSQL side of kp_triggers_ops
 * (src/store/store_pg_triggers.c) must do beyond the contract suite, with
 * two connections standing for two servers on one database:
 *  - a scheduled job is held by one server at a time: the other's
 *    job_state_get answers KP_ERR_BUSY at once, its transaction stays
 *    usable, and once the first commits it reads what the first wrote; a
 *    tick on the second server skips the job and grants nothing twice;
 *  - an event or grant key another server stored first is KP_ERR_BUSY with
 *    a sentence (the writer runs the job again and replays);
 *  - accounts_created_on gives SQLite's answer for the same accounts, over
 *    month ends, leap days, offsets east and west, and values at the edges
 *    of what SQLite can read as a date.
 * PostgreSQL only: the plain entry skips, test_store_pg_triggers_pg runs it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopilka/clock.h>

#include "service/service_rules.h"

static const char program_json[] =
    "{\"name\":\"t\",\"rules\":[{\"id\":\"tenure-10\",\"kind\":\"grant\",\"on\":\"tenure\","
    "\"points\":10,\"per_year\":true}]}";

typedef struct fx {
    char location[FIXTURE_LOCATION_MAX];
    kp_store *a, *b; /* two servers */
} fx;

static kp_time at(const char *text)
{
    kp_time t = 0;
    assert_true(kp_time_parse(text, &t));
    return t;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    fixture_location(f->location, "pg-triggers");
    kp_error e = {0};
    if (kp_store_open(f->location, true, &f->a, &e) != KP_OK) fail_msg("open: %s", e.message);
    if (kp_store_open(f->location, false, &f->b, &e) != KP_OK) fail_msg("open: %s", e.message);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    kp_store_close(f->a);
    kp_store_close(f->b);
    fixture_remove(f->location);
    free(f);
    return 0;
}

/* ---- a job, one server at a time */

static void test_a_job_is_held_by_one_server_until_its_transaction_ends(void **state)
{
    fx *f = *state;
    const kp_triggers_ops *t = f->a->ops->triggers;
    kp_time done;
    int64_t cursor;
    assert_int_equal(f->a->ops->begin(f->a), KP_OK);
    assert_int_equal(t->job_state_get(f->a, "tenure", &done, &cursor), KP_ERR_NOT_FOUND);
    assert_int_equal(f->b->ops->begin(f->b), KP_OK);
    assert_int_equal(t->job_state_get(f->b, "tenure", &done, &cursor), KP_ERR_BUSY);
    assert_non_null(strstr(f->b->last_error, "another server"));
    /* The refusal failed no statement: B goes on with another job. */
    assert_int_equal(t->job_state_get(f->b, "birthday", &done, &cursor), KP_ERR_NOT_FOUND);
    assert_int_equal(t->job_state_set(f->b, "birthday", 50, 0), KP_OK);
    /* The same server asks again within its transaction: still its own. */
    assert_int_equal(t->job_state_get(f->a, "tenure", &done, &cursor), KP_ERR_NOT_FOUND);
    assert_int_equal(t->job_state_set(f->a, "tenure", 100, 7), KP_OK);
    assert_int_equal(f->a->ops->commit(f->a), KP_OK);
    /* In the transaction it had open all along, B now reads A's state. */
    assert_int_equal(t->job_state_get(f->b, "tenure", &done, &cursor), KP_OK);
    assert_int_equal(done, 100);
    assert_int_equal(cursor, 7);
    assert_int_equal(f->b->ops->commit(f->b), KP_OK);
    /* B's commit let both go. */
    assert_int_equal(f->a->ops->begin(f->a), KP_OK);
    assert_int_equal(t->job_state_get(f->a, "birthday", &done, &cursor), KP_OK);
    assert_int_equal(done, 50);
    assert_int_equal(t->job_state_get(f->a, "tenure", &done, &cursor), KP_OK);
    assert_int_equal(f->a->ops->rollback(f->a), KP_OK);
}

static void test_a_job_taken_in_a_rolled_back_savepoint_is_let_go(void **state)
{
    fx *f = *state;
    const kp_triggers_ops *t = f->a->ops->triggers;
    kp_time done;
    int64_t cursor;
    assert_int_equal(f->a->ops->begin(f->a), KP_OK);
    assert_int_equal(f->a->ops->savepoint(f->a), KP_OK);
    assert_int_equal(t->job_state_get(f->a, "tier_review", &done, &cursor), KP_ERR_NOT_FOUND);
    assert_int_equal(f->a->ops->rollback_to(f->a), KP_OK);
    /* A's transaction goes on, but the job went with the savepoint. */
    assert_int_equal(f->b->ops->begin(f->b), KP_OK);
    assert_int_equal(t->job_state_get(f->b, "tier_review", &done, &cursor), KP_ERR_NOT_FOUND);
    assert_int_equal(t->job_state_get(f->a, "tier_review", &done, &cursor), KP_ERR_BUSY);
    assert_int_equal(f->b->ops->rollback(f->b), KP_OK);
    assert_int_equal(f->a->ops->rollback(f->a), KP_OK);
}

/* job_hold: held by one server across its transactions until released
 * (or its connection ends), apart from job_state_get's lock of the name. */
static void test_a_held_job_is_held_across_transactions_until_released(void **state)
{
    fx *f = *state;
    const kp_triggers_ops *t = f->a->ops->triggers;
    bool held = false;
    kp_time done;
    int64_t cursor;
    assert_int_equal(t->job_hold(f->a, "campaign-start:7", &held), KP_OK);
    assert_true(held);
    assert_int_equal(t->job_hold(f->b, "campaign-start:7", &held), KP_OK);
    assert_false(held);
    /* A transaction of A's comes and goes: still held. */
    assert_int_equal(f->a->ops->begin(f->a), KP_OK);
    assert_int_equal(f->a->ops->commit(f->a), KP_OK);
    assert_int_equal(t->job_hold(f->b, "campaign-start:7", &held), KP_OK);
    assert_false(held);
    /* The same name's transaction lock is another lock. */
    assert_int_equal(f->b->ops->begin(f->b), KP_OK);
    assert_int_equal(t->job_state_get(f->b, "campaign-start:7", &done, &cursor),
                     KP_ERR_NOT_FOUND);
    assert_int_equal(f->b->ops->rollback(f->b), KP_OK);
    t->job_release(f->a, "campaign-start:7");
    assert_int_equal(t->job_hold(f->b, "campaign-start:7", &held), KP_OK);
    assert_true(held);
    t->job_release(f->b, "campaign-start:7");
}

/* One tick step on `st` at `now`, committed. */
static kp_tick_report tick(kp_store *st, const kp_program *p, kp_scratch *sc, kp_time now,
                           bool commit)
{
    kp_tick_report r;
    memset(&r, 0, sizeof r);
    kp_error e = {0};
    assert_int_equal(st->ops->begin(st), KP_OK);
    if (kp_service_tick(st, p, NULL, now, 1000, sc, &r, &e) != KP_OK)
        fail_msg("tick: %s", e.message);
    if (commit) assert_int_equal(st->ops->commit(st), KP_OK);
    return r;
}

static void keep(void *ctx, const char *number)
{
    (void)ctx;
    (void)number;
}

static void test_a_tick_on_a_second_server_skips_the_job_the_first_is_running(void **state)
{
    fx *f = *state;
    kp_error e = {0};
    int64_t v;
    assert_int_equal(f->a->ops->begin(f->a), KP_OK);
    assert_int_equal(kp_service_program_load(f->a, program_json, strlen(program_json), &v, &e),
                     KP_OK);
    assert_int_equal(kp_service_cards_issue(f->a, 3, at("2025-06-10T12:00:00Z"), keep, NULL, &e),
                     KP_OK);
    assert_int_equal(f->a->ops->commit(f->a), KP_OK);
    static kp_program p;
    assert_int_equal(kp_service_program_get(f->a, 0, &p, &e), KP_OK);
    kp_scratch *sa = kp_scratch_new(), *sb = kp_scratch_new();

    kp_tick_report r = tick(f->a, &p, sa, at("2026-06-09T12:00:00Z"), true);
    assert_int_equal(r.runs, 1); /* the job starts with that day */
    /* The anniversary: A works on it and has not committed yet. */
    r = tick(f->a, &p, sa, at("2026-06-10T12:00:00Z"), false);
    assert_int_equal(r.tenure_grants, 3);
    assert_int_equal(r.busy, 0);
    kp_tick_report rb = tick(f->b, &p, sb, at("2026-06-10T12:00:30Z"), true);
    /* Busy: the tenure job, and the expiry reminders A's tick also holds. */
    assert_int_equal(rb.busy, 2);
    assert_int_equal(rb.tenure_grants, 0);
    assert_int_equal(rb.runs, 0);
    assert_false(rb.more);
    assert_int_equal(f->a->ops->commit(f->a), KP_OK);
    /* B's next wake-up: the day is done. */
    rb = tick(f->b, &p, sb, at("2026-06-10T12:01:00Z"), true);
    assert_int_equal(rb.busy, 0);
    assert_int_equal(rb.tenure_grants, 0);
    assert_int_equal(rb.runs, 0);

    kp_job_run runs[8];
    size_t n = 0;
    assert_int_equal(f->b->ops->triggers->job_runs(f->b, runs, 8, &n), KP_OK);
    assert_int_equal(n, 2);
    assert_string_equal(runs[0].job, "tenure");
    assert_int_equal(runs[0].due_at, at("2026-06-10T00:00:00Z"));
    assert_int_equal(runs[0].items, 3);
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM ops WHERE type = %d", (int)KP_OP_GRANT);
    assert_int_equal(fixture_query_int64(f->location, sql), 3);
    assert_int_equal(fixture_query_int64(f->location, "SELECT COALESCE(SUM(balance), 0) FROM "
                                                      "accounts WHERE id > 0"),
                     30);
    kp_scratch_free(sa);
    kp_scratch_free(sb);
}

/* ---- rows another server stored first */

static void test_an_event_another_server_stored_first_is_busy(void **state)
{
    fx *f = *state;
    const kp_triggers_ops *t = f->a->ops->triggers;
    kp_event_row row;
    memset(&row, 0, sizeof row);
    snprintf(row.store, sizeof row.store, "s1");
    snprintf(row.id, sizeof row.id, "ev-1");
    snprintf(row.type, sizeof row.type, "survey");
    row.account_id = 1;
    row.at = 1000;
    row.response = (char *)"{\"points\":5}";
    assert_int_equal(f->b->ops->begin(f->b), KP_OK);
    kp_event_row seen;
    assert_int_equal(t->event_find(f->b, "s1", "ev-1", &seen), KP_ERR_NOT_FOUND);
    assert_int_equal(f->a->ops->begin(f->a), KP_OK);
    assert_int_equal(t->event_insert(f->a, &row), KP_OK);
    assert_int_equal(f->a->ops->commit(f->a), KP_OK);
    assert_int_equal(t->event_insert(f->b, &row), KP_ERR_BUSY);
    assert_non_null(strstr(f->b->last_error, "another server stored the same event"));
    assert_int_equal(f->b->ops->rollback(f->b), KP_OK);
    /* The retry finds it. */
    assert_int_equal(t->event_find(f->b, "s1", "ev-1", &seen), KP_OK);
    assert_string_equal(seen.response, "{\"points\":5}");
    kp_event_row_release(&seen);
}

static void test_a_grant_key_another_server_stored_first_is_busy(void **state)
{
    fx *f = *state;
    const kp_triggers_ops *t = f->a->ops->triggers;
    int64_t op_id = 0;
    assert_int_equal(f->b->ops->begin(f->b), KP_OK);
    assert_int_equal(t->grant_key_find(f->b, "bd/7/2026", &op_id), KP_ERR_NOT_FOUND);
    assert_int_equal(f->a->ops->begin(f->a), KP_OK);
    assert_int_equal(t->grant_key_insert(f->a, "bd/7/2026", 41, 1000), KP_OK);
    assert_int_equal(f->a->ops->commit(f->a), KP_OK);
    assert_int_equal(t->grant_key_insert(f->b, "bd/7/2026", 42, 1000), KP_ERR_BUSY);
    assert_non_null(strstr(f->b->last_error, "another server stored the same grant"));
    assert_int_equal(f->b->ops->rollback(f->b), KP_OK);
    assert_int_equal(t->grant_key_find(f->b, "bd/7/2026", &op_id), KP_OK);
    assert_int_equal(op_id, 41);
}

/* ---- accounts_created_on against SQLite */

enum { CREATED_MAX = 4096, PAGE = 7 };

/* created_at values: around the start of chosen days of many years (month
 * ends, leap days, the new year) at offsets that cross the day in the
 * program calendars tested, and values at the edges of SQLite's dates. */
static size_t created_values(int64_t *out)
{
    static const int days[][2] = {{1, 1},  {2, 28}, {2, 29}, {3, 1},  {4, 30},
                                  {5, 1},  {6, 30}, {7, 1},  {12, 31}};
    static const int64_t deltas[] = {-50401, -43200, -3601, -1, 0, 1, 3599, 50400};
    size_t n = 0;
    for (int y = 2007; y <= 2030; y++)
        for (size_t d = 0; d < sizeof days / sizeof days[0]; d++) {
            if (days[d][0] == 2 && days[d][1] == 29 && !(y % 4 == 0 && (y % 100 || y % 400 == 0)))
                continue;
            kp_time start = kp_time_from_civil(y, days[d][0], days[d][1]);
            for (size_t k = 0; k < sizeof deltas / sizeof deltas[0]; k++) {
                assert_true(n < CREATED_MAX - 16);
                out[n++] = start + deltas[k];
            }
        }
    static const int64_t edges[] = {-210866760001LL, -210866760000LL, -210866759999LL,
                                    -62135596801LL,  -1,              253402300799LL,
                                    253402300800LL,  INT64_MAX - 5,   INT64_MIN + 5,
                                    951782400,       4107542400LL};
    for (size_t k = 0; k < sizeof edges / sizeof edges[0]; k++) out[n++] = edges[k];
    assert_true(n <= CREATED_MAX);
    return n;
}

/* Inserts accounts 1..n with those created_at values, in one statement
 * that both SQLite and PostgreSQL read. */
static char *accounts_sql(const int64_t *created, size_t n)
{
    size_t size = 64 + n * 48;
    char *sql = malloc(size);
    size_t used = (size_t)snprintf(sql, size, "INSERT INTO accounts(id, created_at) VALUES ");
    for (size_t i = 0; i < n; i++)
        used += (size_t)snprintf(sql + used, size - used, "%s(%zu, %lld)", i ? "," : "", i + 1,
                                 (long long)created[i]);
    assert_true(used < size);
    return sql;
}

/* All the accounts of (month, day) on st, page by page. */
static size_t created_on_all(kp_store *st, int month, int day, int32_t offset, kp_time before,
                             int64_t *ids, kp_time *created)
{
    size_t total = 0;
    int64_t after = 0;
    for (;;) {
        size_t n = 0;
        kp_err err = st->ops->triggers->accounts_created_on(st, month, day, offset, before, after,
                                                            ids + total, created + total, PAGE,
                                                            &n);
        if (err) fail_msg("accounts_created_on: %s", st->last_error);
        total += n;
        assert_true(total <= CREATED_MAX);
        if (n < PAGE) return total;
        after = ids[total - 1];
    }
}

static void test_accounts_created_on_answers_as_sqlite_does(void **state)
{
    fx *f = *state;
    static int64_t created[CREATED_MAX];
    size_t n_created = created_values(created);
    char sqlite_path[FIXTURE_LOCATION_MAX];
    snprintf(sqlite_path, sizeof sqlite_path, "/tmp/kp-test-pg-triggers-%d.db", (int)getpid());
    fixture_remove_db(sqlite_path);
    kp_store *lite = NULL;
    kp_error e = {0};
    if (kp_store_open(sqlite_path, true, &lite, &e) != KP_OK) fail_msg("open: %s", e.message);
    char *sql = accounts_sql(created, n_created);
    char *why = NULL;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(sqlite_path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_exec(db, sql, NULL, NULL, &why) != SQLITE_OK) fail_msg("sqlite: %s", why);
    sqlite3_close(db);
    char pg_why[256];
    if (fixture_exec(f->location, sql, pg_why, sizeof pg_why) != 0) fail_msg("pg: %s", pg_why);
    free(sql);

    static const int32_t offsets[] = {0, 180, -300, 840, 345, -1};
    static const int extra[][2] = {{0, 0}, {13, 1}, {112, 1}, {2, 30}, {-1, 5}, {6, 131}};
    static int64_t ids_pg[CREATED_MAX], ids_lite[CREATED_MAX];
    static kp_time at_pg[CREATED_MAX], at_lite[CREATED_MAX];
    size_t compared = 0, matched_utc = 0;
    for (size_t o = 0; o < sizeof offsets / sizeof offsets[0]; o++)
        for (int before_i = 0; before_i < (o < 2 ? 2 : 1); before_i++) {
            kp_time before = before_i ? at("2020-03-01T00:00:00Z") : INT64_MAX;
            for (int q = 0; q < 12 * 31 + (int)(sizeof extra / sizeof extra[0]); q++) {
                int month = q < 12 * 31 ? q / 31 + 1 : extra[q - 12 * 31][0];
                int day = q < 12 * 31 ? q % 31 + 1 : extra[q - 12 * 31][1];
                size_t n_pg =
                    created_on_all(f->a, month, day, offsets[o], before, ids_pg, at_pg);
                size_t n_lite =
                    created_on_all(lite, month, day, offsets[o], before, ids_lite, at_lite);
                if (n_pg != n_lite)
                    fail_msg("%02d-%02d offset %d before %lld: %zu accounts on PostgreSQL, %zu "
                             "on SQLite",
                             month, day, offsets[o], (long long)before, n_pg, n_lite);
                for (size_t i = 0; i < n_pg; i++) {
                    if (ids_pg[i] != ids_lite[i] || at_pg[i] != at_lite[i])
                        fail_msg("%02d-%02d offset %d: account %lld (%lld) on PostgreSQL, %lld "
                                 "(%lld) on SQLite",
                                 month, day, offsets[o], (long long)ids_pg[i],
                                 (long long)at_pg[i], (long long)ids_lite[i],
                                 (long long)at_lite[i]);
                }
                compared++;
                if (offsets[o] == 0 && before == INT64_MAX) matched_utc += n_pg;
            }
        }
    /* Not vacuous: in UTC every account SQLite can date was found once;
     * the four it cannot (before Julian day 0, after 9999, the two
     * extremes of int64) never. */
    assert_int_equal(matched_utc, n_created - 4);
    assert_true(compared > 2500);
    kp_store_close(lite);
    fixture_remove_db(sqlite_path);
}

int main(void)
{
    if (!fixture_is_pg()) {
        fprintf(stderr, "skipped: PostgreSQL only (test_store_pg_triggers_pg runs it)\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_a_job_is_held_by_one_server_until_its_transaction_ends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_held_job_is_held_across_transactions_until_released,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_job_taken_in_a_rolled_back_savepoint_is_let_go,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_tick_on_a_second_server_skips_the_job_the_first_is_running, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_event_another_server_stored_first_is_busy, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_grant_key_another_server_stored_first_is_busy,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_accounts_created_on_answers_as_sqlite_does, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
