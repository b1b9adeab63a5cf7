/*
 * test_tick.c: the time-driven work over a real store (SQLite, or
 * PostgreSQL with KOPILKA_TEST_STORE=pg, see fixture.h): every due item
 * exactly once, missed days caught up in order, work split over bounded
 * steps, a rolled-back step repeated without a double grant, expiry to
 * program:expired, birthdays through the finder, and the ledger still
 * verifying after all of it.
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
#include <unistd.h>

#include <kopilka/clock.h>

#include "service/service_rules.h"

static const char program_json[] =
    "{\"name\":\"t\",\"point_kinds\":[{\"name\":\"premium\",\"ttl_months\":3}],"
    "\"rules\":[{\"id\":\"tenure-10\",\"kind\":\"grant\",\"on\":\"tenure\",\"points\":10,"
    "\"per_year\":true},{\"id\":\"bd-200\",\"kind\":\"grant\",\"on\":\"birthday\","
    "\"points\":200,\"point_kind\":\"premium\"}]}";

typedef struct fx {
    char path[FIXTURE_LOCATION_MAX]; /* the store's location (fixture.h) */
    kp_store *st;
    kp_program program;
    kp_scratch *sc;
    int64_t accounts[1000];
    size_t n_accounts;
} fx;

static kp_time at(const char *text)
{
    kp_time t = 0;
    assert_true(kp_time_parse(text, &t));
    return t;
}

static void keep(void *ctx, const char *number)
{
    fx *f = ctx;
    kp_card card;
    assert_int_equal(f->st->ops->card_find(f->st, number, &card), KP_OK);
    f->accounts[f->n_accounts++] = card.account_id;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    fixture_location(f->path, "tick");
    kp_error e = {0};
    assert_int_equal(kp_store_open(f->path, true, &f->st, &e), KP_OK);
    int64_t v;
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(kp_service_program_load(f->st, program_json, strlen(program_json), &v, &e),
                     KP_OK);
    assert_int_equal(f->st->ops->commit(f->st), KP_OK);
    assert_int_equal(kp_service_program_get(f->st, 0, &f->program, &e), KP_OK);
    f->sc = kp_scratch_new();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    kp_scratch_free(f->sc);
    kp_store_close(f->st);
    fixture_remove(f->path);
    free(f);
    return 0;
}

static void issue(fx *f, int count, kp_time when)
{
    kp_error e = {0};
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(kp_service_cards_issue(f->st, count, when, keep, f, &e), KP_OK);
    assert_int_equal(f->st->ops->commit(f->st), KP_OK);
}

/* Ticks at `now` in steps of `budget` until no work is left; returns the sum. */
static kp_tick_report tick(fx *f, kp_time now, int64_t budget, const kp_birthday_finder *bd)
{
    kp_tick_report total;
    memset(&total, 0, sizeof total);
    for (int i = 0; i < 10000; i++) {
        kp_tick_report r;
        memset(&r, 0, sizeof r);
        kp_error e = {0};
        assert_int_equal(f->st->ops->begin(f->st), KP_OK);
        kp_tick_opts opts = {.birthdays = bd};
        kp_err err = kp_service_tick(f->st, &f->program, &opts, now, budget, f->sc, &r, &e);
        if (err) fail_msg("tick: %s", e.message);
        assert_int_equal(f->st->ops->commit(f->st), KP_OK);
        total.tenure_grants += r.tenure_grants;
        total.birthday_grants += r.birthday_grants;
        total.expired_points += r.expired_points;
        total.expired_accounts += r.expired_accounts;
        total.runs += r.runs;
        if (!r.more) return total;
    }
    fail_msg("tick never finished");
    return total;
}

static int64_t balance(fx *f, int64_t account)
{
    assert_int_equal(f->st->ops->account_load(f->st, account, &f->sc->account), KP_OK);
    return f->sc->account.balance;
}

static void report(void *ctx, const char *line)
{
    (void)ctx;
    fail_msg("verify: %s", line);
}

static void verified(fx *f)
{
    int64_t problems = -1;
    assert_int_equal(f->st->ops->verify(f->st, report, NULL, &problems), KP_OK);
    assert_int_equal(problems, 0);
}

static void test_tenure_once_per_anniversary_with_catch_up(void **state)
{
    fx *f = *state;
    issue(f, 3, at("2025-06-10T12:00:00Z"));
    kp_tick_report r = tick(f, at("2026-06-01T12:00:00Z"), 1000, NULL);
    assert_int_equal(r.tenure_grants, 0);
    assert_int_equal(r.runs, 1); /* the job starts with today */
    /* Down for 20 days: the days are caught up in order, the anniversary
     * among them. */
    r = tick(f, at("2026-06-21T12:00:00Z"), 1000, NULL);
    assert_int_equal(r.runs, 20);
    assert_int_equal(r.tenure_grants, 3);
    assert_int_equal(balance(f, f->accounts[0]), 10);
    r = tick(f, at("2026-06-21T18:00:00Z"), 1000, NULL);
    assert_int_equal(r.runs, 0);
    assert_int_equal(r.tenure_grants, 0);
    r = tick(f, at("2027-06-11T00:00:00Z"), 1000, NULL);
    assert_int_equal(r.tenure_grants, 3);
    assert_int_equal(balance(f, f->accounts[2]), 10 + 20); /* two full years: 10 x 2 */
    verified(f);
}

static void test_a_big_day_is_split_over_steps_and_each_account_granted_once(void **state)
{
    fx *f = *state;
    issue(f, 700, at("2025-06-10T12:00:00Z"));
    tick(f, at("2026-06-09T12:00:00Z"), 1000, NULL);
    kp_tick_report r = tick(f, at("2026-06-10T12:00:00Z"), 64, NULL);
    assert_int_equal(r.tenure_grants, 700);
    for (size_t i = 0; i < f->n_accounts; i++) assert_int_equal(balance(f, f->accounts[i]), 10);
    verified(f);
}

static void test_a_rolled_back_step_is_done_again_once(void **state)
{
    fx *f = *state;
    issue(f, 5, at("2025-06-10T12:00:00Z"));
    tick(f, at("2026-06-09T12:00:00Z"), 1000, NULL);
    /* A crash mid-step: the work and the job's progress vanish together. */
    kp_tick_report r;
    memset(&r, 0, sizeof r);
    kp_error e = {0};
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(
        kp_service_tick(f->st, &f->program, NULL, at("2026-06-10T12:00:00Z"), 3, f->sc, &r, &e),
        KP_OK);
    assert_int_equal(r.tenure_grants, 3);
    assert_true(r.more);
    assert_int_equal(f->st->ops->rollback(f->st), KP_OK);
    assert_int_equal(balance(f, f->accounts[0]), 0);
    r = tick(f, at("2026-06-10T12:00:00Z"), 3, NULL);
    assert_int_equal(r.tenure_grants, 5);
    for (size_t i = 0; i < f->n_accounts; i++) assert_int_equal(balance(f, f->accounts[i]), 10);
    verified(f);
}

/* Birthdays come from the customers' sealed data through a finder; this
 * one says account 1 was born on 29 February and account 2 on 14 March. */
static kp_err find_birthdays(void *ctx, kp_store *st, int month, int day, int64_t after,
                             int64_t *ids, size_t limit, size_t *n)
{
    fx *f = ctx;
    (void)st;
    *n = 0;
    if (month == 2 && day == 29 && f->accounts[0] > after && limit > 0)
        ids[(*n)++] = f->accounts[0];
    if (month == 3 && day == 14 && f->accounts[1] > after && limit > 0)
        ids[(*n)++] = f->accounts[1];
    return KP_OK;
}

static void test_birthday_premium_points_and_their_expiry(void **state)
{
    fx *f = *state;
    issue(f, 2, at("2026-01-10T12:00:00Z"));
    kp_birthday_finder bd = {find_birthdays, f};
    tick(f, at("2027-02-20T12:00:00Z"), 1000, &bd);
    kp_tick_report r = tick(f, at("2027-03-14T12:00:00Z"), 1000, &bd);
    /* 2027 is not a leap year: 29 February is celebrated on 28 February. */
    assert_int_equal(r.birthday_grants, 2);
    assert_int_equal(balance(f, f->accounts[0]), 200);
    assert_int_equal(f->sc->account.lots[0].expires_at, at("2027-05-28T00:00:00Z"));
    assert_int_equal(balance(f, f->accounts[1]), 200);
    r = tick(f, at("2027-05-28T00:00:00Z"), 1000, &bd);
    assert_int_equal(r.expired_accounts, 1);
    assert_int_equal(r.expired_points, 200);
    assert_int_equal(balance(f, f->accounts[0]), 0);
    r = tick(f, at("2027-06-14T00:00:00Z"), 1000, &bd);
    assert_int_equal(r.expired_points, 200);
    assert_int_equal(balance(f, f->accounts[1]), 0);
    r = tick(f, at("2027-06-15T00:00:00Z"), 1000, &bd);
    assert_int_equal(r.expired_points, 0);
    verified(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_tenure_once_per_anniversary_with_catch_up),
        T(test_a_big_day_is_split_over_steps_and_each_account_granted_once),
        T(test_a_rolled_back_step_is_done_again_once),
        T(test_birthday_premium_points_and_their_expiry),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
