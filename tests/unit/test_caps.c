/*
 * test_caps.c: no silent caps, money invariants, one error map.
 *  - an account with more lots than KP_LOTS_MAX: every point stays visible
 *    and spendable (credits join lots at the cap), and a database holding
 *    more open lots than that is refused, never cut short, until
 *    `kopilka lots merge` (kp_store_ops.lots_merge) repairs it;
 *  - a ledger plan that does not balance is refused by kp_ledger_plan_check()
 *    and by the store (test_caps_ndebug.c proves the same under NDEBUG);
 *  - the program cache keeps a version a request holds through 70 reloads;
 *  - the reader pool refuses a count out of range instead of clamping it;
 *  - the error map answers every kp_err and every reason.
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

#include "server/http_error.h"
#include "server/server.h"
#include "service/service.h"
#include "service/service_rules.h"

static const char program_json[] =
    "{\"name\":\"caps\",\"point_kinds\":[{\"name\":\"promo\",\"ttl_months\":3}],"
    "\"rules\":[{\"id\":\"labor\",\"kind\":\"earn_percent\",\"category\":\"labor\","
    "\"percent\":4}]}";

enum { DAY = 86400, T0 = 1790000000 };

typedef struct fx {
    char path[FIXTURE_LOCATION_MAX]; /* the store's location (fixture.h) */
    kp_store *st;
    kp_scratch *sc;
    char card[KP_STR_MAX];
    int64_t account_id;
} fx;

static void keep_number(void *ctx, const char *number)
{
    snprintf(ctx, KP_STR_MAX, "%s", number);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    fixture_location(f->path, "caps");
    kp_error e = {0};
    assert_int_equal(kp_store_open(f->path, true, &f->st, &e), KP_OK);
    int64_t v;
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(kp_service_program_load(f->st, program_json, strlen(program_json), &v, &e),
                     KP_OK);
    assert_int_equal(kp_service_cards_issue(f->st, 1, T0, keep_number, f->card, &e), KP_OK);
    assert_int_equal(f->st->ops->commit(f->st), KP_OK);
    kp_card card;
    assert_int_equal(f->st->ops->card_find(f->st, f->card, &card), KP_OK);
    f->account_id = card.account_id;
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

/* Moves `points` into (> 0, a promo lot expiring at `expires_at`) or out of
 * (< 0) the card's account as one grant, the way the service does. */
static kp_err move(fx *f, int64_t points, kp_time expires_at, kp_error *e)
{
    kp_account *a = &f->sc->account;
    kp_err err = f->st->ops->account_load(f->st, f->account_id, a);
    if (err) return err;
    kp_lot lot = {0};
    snprintf(lot.kind, sizeof lot.kind, "promo");
    lot.earned_at = T0;
    lot.active_from = T0;
    lot.expires_at = expires_at;
    if ((err = kp_ledger_plan_move(a, KP_OP_GRANT, KP_SYS_ISSUED, points, &lot, T0 + DAY,
                                   &f->sc->plan, e)))
        return err;
    kp_op_row row;
    memset(&row, 0, sizeof row);
    row.type = KP_OP_GRANT;
    row.account_id = f->account_id;
    snprintf(row.card, sizeof row.card, "%s", f->card);
    row.at = T0 + DAY;
    row.points = points;
    if ((err = f->st->ops->op_insert(f->st, &row))) return err;
    return f->st->ops->plan_apply(f->st, row.id, &f->sc->plan, T0 + DAY);
}

static void count_problem(void *ctx, const char *line)
{
    (void)line;
    ++*(int *)ctx;
}

/* 600 promo grants of 10 points, each expiring a day after the one before:
 * the account holds KP_LOTS_MAX lots, all 6000 points in them, later grants
 * joined to the lot nearest in expiry (keeping the later expiry); one debit
 * of all 6000 succeeds; verify finds nothing wrong. Before: 600 lots, of
 * which a load saw 512 (5120 points) and the debit was refused. */
static void test_600_lots_every_point_visible_and_spendable(void **state)
{
    fx *f = *state;
    kp_error e = {0};
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    for (int i = 0; i < 600; i++)
        assert_int_equal(move(f, 10, T0 + (kp_time)(100 + i) * DAY, &e), KP_OK);
    assert_int_equal(f->st->ops->commit(f->st), KP_OK);

    kp_account *a = &f->sc->account;
    assert_int_equal(f->st->ops->account_load(f->st, f->account_id, a), KP_OK);
    assert_int_equal(a->balance, 6000);
    assert_int_equal(a->n_lots, KP_LOTS_MAX);
    int64_t sum = 0;
    for (size_t i = 0; i < a->n_lots; i++) sum += a->lots[i].remaining;
    assert_int_equal(sum, 6000);
    /* The first 512 grants opened a lot each, with their own expiry; the 88
     * after them joined the 512th lot, whose expiry is now the latest's. */
    assert_int_equal(a->lots[0].expires_at, T0 + 100 * (kp_time)DAY);
    assert_int_equal(a->lots[510].remaining, 10);
    assert_int_equal(a->lots[510].expires_at, T0 + (kp_time)(100 + 510) * DAY);
    assert_int_equal(a->lots[511].remaining, 10 + 10 * 88);
    assert_int_equal(a->lots[511].expires_at, T0 + (kp_time)(100 + 599) * DAY);
    assert_int_equal(kp_account_spendable(a, T0 + DAY), 6000);

    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(move(f, -6000, 0, &e), KP_OK);
    assert_int_equal(f->st->ops->commit(f->st), KP_OK);
    assert_int_equal(f->st->ops->account_load(f->st, f->account_id, a), KP_OK);
    assert_int_equal(a->balance, 0);
    assert_int_equal(a->n_lots, 0);
    int problems_lines = 0;
    int64_t problems = -1;
    assert_int_equal(f->st->ops->verify(f->st, count_problem, &problems_lines, &problems), KP_OK);
    assert_int_equal(problems, 0);
}

/* The 600 grants all expire: one expiry takes every one of the 6000
 * points (before, a load saw 512 lots: 5120 expired, 880 stayed). */
static void test_600_lots_expire_whole(void **state)
{
    fx *f = *state;
    kp_error e = {0};
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    for (int i = 0; i < 600; i++)
        assert_int_equal(move(f, 10, T0 + (kp_time)(100 + i) * DAY, &e), KP_OK);
    assert_int_equal(f->st->ops->commit(f->st), KP_OK);
    kp_program program;
    assert_int_equal(kp_service_program_get(f->st, 0, &program, &e), KP_OK);
    kp_tick_report rep;
    memset(&rep, 0, sizeof rep);
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    kp_err err = kp_service_expire(f->st, &program, T0 + 1000 * (kp_time)DAY, &f->account_id, 1,
                                   f->sc, &rep, &e);
    if (err) fail_msg("expire: %s", e.message);
    assert_int_equal(f->st->ops->commit(f->st), KP_OK);
    assert_int_equal(rep.expired_points, 6000);
    assert_int_equal(rep.expired_accounts, 1);
    kp_account *a = &f->sc->account;
    assert_int_equal(f->st->ops->account_load(f->st, f->account_id, a), KP_OK);
    assert_int_equal(a->balance, 0);
    assert_int_equal(a->n_lots, 0);
    int lines = 0;
    int64_t problems = -1;
    assert_int_equal(f->st->ops->verify(f->st, count_problem, &lines, &problems), KP_OK);
    assert_int_equal(problems, 0);
}

/* A credit at the cap never joins a lot of another kind or pending state.
 * With KP_LOTS_MAX spendable promo lots open, a purchase whose earn is
 * pending (pending_days) goes through (before: refused with KP_ERR_LIMIT,
 * the cashier could not sell): the nearest pair of spendable lots merges in
 * the same transaction (the earlier into the later, the later expiry kept),
 * the pending points get a lot of their own and are not spendable before
 * their day, the account stays at KP_LOTS_MAX lots and loads. */
static void test_pending_earn_at_a_cap_of_spendable_lots_goes_through(void **state)
{
    fx *f = *state;
    kp_error e = {0};
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    for (int i = 0; i < KP_LOTS_MAX; i++)
        assert_int_equal(move(f, 1, T0 + (kp_time)(100 + i) * DAY, &e), KP_OK);
    assert_int_equal(f->st->ops->commit(f->st), KP_OK);
    kp_account *a = &f->sc->account;
    assert_int_equal(f->st->ops->account_load(f->st, f->account_id, a), KP_OK);
    assert_int_equal(a->n_lots, KP_LOTS_MAX);

    /* The pending credit as a grant: planned, no longer refused. */
    kp_lot pending = {0};
    snprintf(pending.kind, sizeof pending.kind, "promo");
    pending.active_from = T0 + 30 * DAY; /* not spendable yet at T0 + 1 day */
    pending.expires_at = T0 + 200 * DAY;
    assert_int_equal(
        kp_ledger_plan_move(a, KP_OP_GRANT, KP_SYS_ISSUED, 5, &pending, T0 + DAY, &f->sc->plan, &e),
        KP_OK);
    assert_true(f->sc->plan.lots_merge);

    /* And a purchase whose earn is pending 14 days, applied. */
    kp_program program;
    assert_int_equal(kp_service_program_get(f->st, 0, &program, &e), KP_OK);
    snprintf(program.point_kind, sizeof program.point_kind, "promo");
    program.earn_validity.pending_days = 14;
    program.earn_validity.ttl_days = 365;
    program.earn_validity.ttl_months = 0;
    program.earn_validity.expires_on = 0;
    kp_quote *quote = calloc(1, sizeof *quote);
    assert_non_null(quote);
    quote->amount_minor = 12500;
    quote->earned = 5;
    quote->joined = true;
    kp_time now = T0 + DAY;
    assert_int_equal(kp_ledger_plan_purchase(&program, a, NULL, quote, now, &f->sc->plan), KP_OK);
    free(quote);
    assert_true(f->sc->plan.lots_merge);
    assert_int_equal(f->sc->plan.new_lot.id, 0); /* a lot of its own */
    kp_op_row row;
    memset(&row, 0, sizeof row);
    row.type = KP_OP_PURCHASE;
    row.account_id = f->account_id;
    snprintf(row.card, sizeof row.card, "%s", f->card);
    row.at = now;
    row.earned = 5;
    row.points = 5;
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(f->st->ops->op_insert(f->st, &row), KP_OK);
    assert_int_equal(f->st->ops->plan_apply(f->st, row.id, &f->sc->plan, now), KP_OK);
    assert_int_equal(f->st->ops->commit(f->st), KP_OK);

    assert_int_equal(f->st->ops->account_load(f->st, f->account_id, a), KP_OK);
    assert_int_equal(a->n_lots, KP_LOTS_MAX);
    assert_int_equal(a->balance, KP_LOTS_MAX + 5);
    int64_t sum = 0;
    for (size_t i = 0; i < a->n_lots; i++) sum += a->lots[i].remaining;
    assert_int_equal(sum, KP_LOTS_MAX + 5);
    /* All gaps are a day: the earliest pair merged, the later expiry kept. */
    assert_int_equal(a->lots[0].remaining, 2);
    assert_int_equal(a->lots[0].expires_at, T0 + 101 * (kp_time)DAY);
    /* The pending points: not spendable before their 14 days, then they are. */
    assert_int_equal(kp_account_spendable(a, now), KP_LOTS_MAX);
    assert_int_equal(kp_account_spendable(a, now + 14 * DAY - 1), KP_LOTS_MAX);
    assert_int_equal(kp_account_spendable(a, now + 14 * DAY), KP_LOTS_MAX + 5);
    int lines = 0;
    int64_t problems = -1;
    assert_int_equal(f->st->ops->verify(f->st, count_problem, &lines, &problems), KP_OK);
    assert_int_equal(problems, 0);
}

/* The truly impossible case is still refused, with a sentence: KP_LOTS_MAX
 * open lots each of a different kind, so a pending promo credit has none to
 * join and no pair of lots may merge to make room. */
static void test_credit_at_the_cap_with_nothing_to_join_or_merge_is_refused(void **state)
{
    fx *f = *state;
    kp_account *a = &f->sc->account;
    memset(a, 0, sizeof *a);
    a->id = f->account_id;
    for (int i = 0; i < KP_LOTS_MAX; i++) {
        kp_lot *l = &a->lots[i];
        l->id = i + 1;
        snprintf(l->kind, sizeof l->kind, "k%d", i);
        l->amount = l->remaining = 1;
        l->active_from = T0;
        l->expires_at = T0 + (kp_time)(100 + i) * DAY;
    }
    a->n_lots = KP_LOTS_MAX;
    a->balance = KP_LOTS_MAX;
    kp_lot pending = {0};
    snprintf(pending.kind, sizeof pending.kind, "promo");
    pending.active_from = T0 + 30 * DAY;
    pending.expires_at = T0 + 200 * DAY;
    kp_error e = {0};
    assert_int_equal(
        kp_ledger_plan_move(a, KP_OP_GRANT, KP_SYS_ISSUED, 5, &pending, T0 + DAY, &f->sc->plan, &e),
        KP_ERR_LIMIT);
    assert_non_null(strstr(e.message, "512 open lots"));
    assert_non_null(strstr(e.message, "different kind or pending state"));
}

/* A return refunds burnt points to the lot they came from; that lot was
 * spent to 0 and the account is at KP_LOTS_MAX open lots again. Before,
 * the lot reopened as the 513th and every later load of the account was
 * refused until `kopilka lots merge`. Now the nearest pair merges in the
 * same transaction: the account loads with KP_LOTS_MAX lots, the balance is
 * exact, the refunded point keeps its expiry (merged into the next lot, the
 * later expiry kept) and verify finds nothing wrong. */
static void test_return_reopening_a_spent_lot_at_the_cap_stays_loadable(void **state)
{
    fx *f = *state;
    kp_error e = {0};
    kp_account *a = &f->sc->account;
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    for (int i = 0; i < KP_LOTS_MAX; i++)
        assert_int_equal(move(f, 1, T0 + (kp_time)(100 + i) * DAY, &e), KP_OK);
    assert_int_equal(f->st->ops->commit(f->st), KP_OK);
    assert_int_equal(f->st->ops->account_load(f->st, f->account_id, a), KP_OK);
    int64_t spent_lot = a->lots[0].id; /* the earliest expiry: burnt first */
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(move(f, -1, 0, &e), KP_OK); /* spends it to 0: 511 open */
    assert_int_equal(move(f, 1, T0 + 2000 * (kp_time)DAY, &e), KP_OK); /* 512 again */
    assert_int_equal(f->st->ops->commit(f->st), KP_OK);
    assert_int_equal(f->st->ops->account_load(f->st, f->account_id, a), KP_OK);
    assert_int_equal(a->n_lots, KP_LOTS_MAX);
    assert_int_equal(a->balance, KP_LOTS_MAX);

    /* The purchase that burnt that point: one line, 1 point burnt. */
    kp_purchase_record *rec = &f->sc->record;
    memset(rec, 0, sizeof *rec);
    rec->op_id = 1;
    rec->account_id = f->account_id;
    rec->burned = 1;
    rec->points_minor = 100;
    rec->n_lines = 1;
    snprintf(rec->lines[0].line.sku, sizeof rec->lines[0].line.sku, "tea");
    rec->lines[0].line.qty = 1;
    rec->lines[0].line.amount_minor = 1000;
    rec->lines[0].result.points_minor = 100;
    rec->n_takes = 1;
    rec->takes[0] = (kp_lot_take){spent_lot, 1};
    kp_return_request *req = calloc(1, sizeof *req);
    kp_return_result *res = calloc(1, sizeof *res);
    assert_non_null(req);
    assert_non_null(res);
    req->whole = true;
    kp_time now = T0 + 2 * DAY;
    assert_int_equal(kp_ledger_plan_return(a, rec, req, res, now, &f->sc->plan, &e), KP_OK);
    assert_int_equal(res->burned_refunded, 1);
    assert_true(f->sc->plan.lots_merge);
    free(req);
    free(res);
    kp_op_row row;
    memset(&row, 0, sizeof row);
    row.type = KP_OP_RETURN;
    row.account_id = f->account_id;
    snprintf(row.card, sizeof row.card, "%s", f->card);
    row.at = now;
    row.burned = -1;
    row.points = 1;
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(f->st->ops->op_insert(f->st, &row), KP_OK);
    assert_int_equal(f->st->ops->plan_apply(f->st, row.id, &f->sc->plan, now), KP_OK);
    assert_int_equal(f->st->ops->commit(f->st), KP_OK);

    assert_int_equal(f->st->ops->account_load(f->st, f->account_id, a), KP_OK);
    assert_int_equal(a->n_lots, KP_LOTS_MAX);
    assert_int_equal(a->balance, KP_LOTS_MAX + 1);
    int64_t sum = 0;
    for (size_t i = 0; i < a->n_lots; i++) sum += a->lots[i].remaining;
    assert_int_equal(sum, KP_LOTS_MAX + 1);
    assert_int_equal(a->lots[0].remaining, 2);
    assert_int_equal(a->lots[0].expires_at, T0 + 101 * (kp_time)DAY);
    assert_int_equal(kp_account_spendable(a, now), KP_LOTS_MAX + 1);
    int lines = 0;
    int64_t problems = -1;
    assert_int_equal(f->st->ops->verify(f->st, count_problem, &lines, &problems), KP_OK);
    assert_int_equal(problems, 0);
}

static void report_merge(void *ctx, int64_t account_id, size_t before, size_t after)
{
    int64_t *seen = ctx;
    seen[0] = account_id;
    seen[1] = (int64_t)before;
    seen[2] = (int64_t)after;
}

/* A database with more open lots than KP_LOTS_MAX (written by an older
 * version, or by hand) is refused loudly; before, a load cut it to 512. */
static void test_load_of_more_lots_than_the_cap_is_refused(void **state)
{
    fx *f = *state;
    char sql[512];
    snprintf(sql, sizeof sql,
             "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 600) "
             "INSERT INTO lots(account_id, kind, amount, remaining, earned_at, active_from, "
             "expires_at, op_id) SELECT %lld, 'promo', 1, 1, %d, %d, %d + i, 1 FROM n",
             (long long)f->account_id, T0, T0, T0);
    char why[512];
    if (fixture_exec(f->path, sql, why, sizeof why) != 0) fail_msg("insert: %s", why);
    kp_account *a = &f->sc->account;
    assert_int_equal(f->st->ops->account_load(f->st, f->account_id, a), KP_ERR_LIMIT);
    assert_int_equal(a->n_lots, 0);
    assert_non_null(strstr(f->st->last_error, "more than 512 open lots"));
    assert_non_null(strstr(f->st->last_error, "kopilka lots merge"));

    /* The way out: `kopilka lots merge` brings it to 512 lots, all 600
     * points kept, the latest expiry kept. */
    int64_t seen[3] = {0};
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(f->st->ops->lots_merge(f->st, KP_LOTS_MAX, T0, report_merge, seen), KP_OK);
    assert_int_equal(f->st->ops->commit(f->st), KP_OK);
    assert_int_equal(seen[0], f->account_id);
    assert_int_equal(seen[1], 600);
    assert_int_equal(seen[2], KP_LOTS_MAX);
    assert_int_equal(f->st->ops->account_load(f->st, f->account_id, a), KP_OK);
    assert_int_equal(a->n_lots, KP_LOTS_MAX);
    int64_t sum = 0;
    for (size_t i = 0; i < a->n_lots; i++) sum += a->lots[i].remaining;
    assert_int_equal(sum, 600);
    assert_int_equal(a->lots[KP_LOTS_MAX - 1].expires_at, T0 + 600);
    /* All gaps are equal (a second): the earliest pairs merge first, so the
     * first 89 lots became one expiring with the 89th. */
    assert_int_equal(a->lots[0].expires_at, T0 + 89);
    assert_int_equal(a->lots[0].remaining, 89);
    assert_int_equal(a->lots[1].expires_at, T0 + 90);
}

/* The merge planner keeps kinds and pending states apart, joins the nearest
 * expiries first and keeps the later expiry and start. */
static void test_merge_plan_nearest_same_kind_later_expiry(void **state)
{
    (void)state;
    kp_lot lots[5] = {
        {.id = 1, .kind = "promo", .amount = 5, .remaining = 5, .expires_at = 100},
        {.id = 2, .kind = "regular", .amount = 7, .remaining = 7, .expires_at = 101},
        {.id = 3, .kind = "promo", .amount = 3, .remaining = 2, .expires_at = 150},
        {.id = 4,
         .kind = "promo",
         .amount = 4,
         .remaining = 4,
         .active_from = 90,
         .expires_at = 151},
        {.id = 5, .kind = "promo", .amount = 1, .remaining = 1, .expires_at = 160},
    };
    size_t n = 5;
    kp_lot_merge merges[5];
    /* At 50, lot 4 is pending: it may not join 3 or 5. 3 (150) and 5 (160)
     * are nearest, then 1 (100) and 5 (now 160). */
    assert_int_equal(kp_lots_merge_plan(lots, &n, 3, 50, merges), 2);
    assert_int_equal(n, 3);
    assert_int_equal(merges[0].from_id, 3);
    assert_int_equal(merges[0].into_id, 5);
    assert_int_equal(merges[0].points, 2);
    assert_int_equal(merges[1].from_id, 1);
    assert_int_equal(merges[1].into_id, 5);
    assert_int_equal(merges[1].expires_at, 160);
    assert_int_equal(lots[0].id, 2);
    assert_int_equal(lots[1].id, 4);
    assert_int_equal(lots[2].id, 5);
    assert_int_equal(lots[2].remaining, 8);
    /* Nothing more can merge: three kinds-and-states, three lots. */
    assert_int_equal(kp_lots_merge_plan(lots, &n, 1, 50, merges), 0);
    assert_int_equal(n, 3);
}

/* The money invariants hold in this build, and the store checks again
 * before it writes: an unbalanced plan is refused with KP_ERR_INTERNAL and
 * the invariant's name, and nothing reaches the disk. */
static void test_unbalanced_plan_is_refused_by_ledger_and_store(void **state)
{
    fx *f = *state;
    kp_ledger_plan *plan = &f->sc->plan;
    memset(plan, 0, sizeof *plan);
    plan->type = KP_OP_GRANT;
    plan->account_id = f->account_id;
    plan->n_postings = 2;
    plan->postings[0] = (kp_posting){f->account_id, 5};
    plan->postings[1] = (kp_posting){KP_SYS_ISSUED, -4};
    plan->balance_after = 5;
    kp_error e = {0};
    assert_int_equal(kp_ledger_plan_check(plan, &e), KP_ERR_INTERNAL);
    assert_non_null(strstr(e.message, "sum to zero"));
    plan->postings[1].points = -5;
    plan->debt_after = -1;
    assert_int_equal(kp_ledger_plan_check(plan, &e), KP_ERR_INTERNAL);
    assert_non_null(strstr(e.message, "debt is never negative"));
    plan->debt_after = 0;
    plan->postings[0].points = INT64_MAX;
    plan->postings[1].points = INT64_MAX;
    assert_int_equal(kp_ledger_plan_check(plan, &e), KP_ERR_INTERNAL);
    assert_non_null(strstr(e.message, "overflow"));

    plan->postings[0].points = 5;
    plan->postings[1].points = -4;
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(f->st->ops->plan_apply(f->st, 1, plan, T0), KP_ERR_INTERNAL);
    assert_non_null(strstr(f->st->last_error, "sum to zero"));
    assert_int_equal(f->st->ops->rollback(f->st), KP_OK);
    kp_account *a = &f->sc->account;
    assert_int_equal(f->st->ops->account_load(f->st, f->account_id, a), KP_OK);
    assert_int_equal(a->balance, 0);
}

/* A request holds version 1; 70 reloads happen meanwhile (more than the 64
 * old versions the cache used to keep): version 1 is still whole (ASan
 * would see a read of freed memory), and dropping it frees it. */
static void test_program_held_through_70_reloads(void **state)
{
    fx *f = *state;
    kp_error e = {0};
    kp_programs *programs = kp_programs_new(NULL);
    assert_non_null(programs);
    assert_int_equal(kp_programs_refresh(programs, f->st, &e), KP_OK);
    const kp_program *held = kp_programs_hold(programs);
    assert_non_null(held);
    int64_t first = held->version;
    const kp_program *second_holder = kp_programs_hold(programs);
    assert_ptr_equal(second_holder, held);
    for (int i = 0; i < 70; i++) {
        int64_t v;
        assert_int_equal(f->st->ops->begin(f->st), KP_OK);
        assert_int_equal(kp_service_program_load(f->st, program_json, strlen(program_json), &v, &e),
                         KP_OK);
        assert_int_equal(f->st->ops->commit(f->st), KP_OK);
        assert_int_equal(kp_programs_refresh(programs, f->st, &e), KP_OK);
        assert_int_equal(kp_programs_current(programs)->version, v);
    }
    assert_int_equal(held->version, first);
    assert_string_equal(held->name, "caps");
    assert_int_equal(held->n_rules, 1);
    assert_string_equal(held->rules[0].id, "labor");
    kp_programs_drop(programs, second_holder);
    assert_string_equal(held->name, "caps"); /* one holder left: still there */
    kp_programs_drop(programs, held);
    const kp_program *now = kp_programs_hold(programs);
    assert_int_equal(now->version, first + 70);
    kp_programs_drop(programs, now);
    kp_programs_free(programs);
}

/* 0 and 65 read connections are refused with the field and the range;
 * before, they were clamped to 1 and 64 without a word. */
static void test_reader_pool_out_of_range_is_refused(void **state)
{
    fx *f = *state;
    kp_reader_pool *pool = (kp_reader_pool *)&pool;
    kp_error e = {0};
    assert_int_equal(kp_reader_pool_new(f->path, 0, &pool, &e), KP_ERR_INVALID);
    assert_null(pool);
    assert_string_equal(e.field, "readers");
    assert_string_equal(e.message, "the read connections must be from 1 to 64, got 0");
    assert_int_equal(kp_reader_pool_new(f->path, KP_READERS_MAX + 1, &pool, &e), KP_ERR_INVALID);
    assert_string_equal(e.message, "the read connections must be from 1 to 64, got 65");
    assert_int_equal(kp_reader_pool_new(f->path, 2, &pool, &e), KP_OK);
    kp_reader *r = kp_reader_acquire(pool);
    assert_non_null(r);
    kp_reader_release(pool, r);
    kp_reader_pool_free(pool);
}

/* Every kp_err has its own generic answer (500 only for INTERNAL), every
 * reason refines exactly its kp_err, and a reason met with another kp_err
 * falls back to that kp_err's generic answer. */
static void test_error_map_covers_every_kp_err_and_reason(void **state)
{
    (void)state;
    static const struct {
        kp_err err;
        unsigned status;
        const char *code;
    } generic[] = {
        {KP_ERR_INVALID, 400, "bad_field"},
        {KP_ERR_NOT_FOUND, 404, "not_found"},
        {KP_ERR_CONFLICT, 409, "conflict"},
        {KP_ERR_LIMIT, 400, "bad_field"},
        {KP_ERR_OVERFLOW, 400, "bad_field"},
        {KP_ERR_NOMEM, 503, "unavailable"},
        {KP_ERR_IO, 503, "unavailable"},
        {KP_ERR_BUSY, 503, "unavailable"},
        {KP_ERR_UNAUTHORIZED, 401, "unauthorized"},
        {KP_ERR_INTERNAL, 500, "internal"},
        {KP_ERR_FORBIDDEN, 403, "forbidden"},
    };
    assert_int_equal(sizeof generic / sizeof generic[0], KP_ERR__COUNT - 1);
    for (size_t i = 0; i < sizeof generic / sizeof generic[0]; i++) {
        unsigned status;
        const char *code;
        kp_http_error_of(generic[i].err, KP_REASON_NONE, &status, &code);
        assert_int_equal(status, generic[i].status);
        assert_string_equal(code, generic[i].code);
        assert_string_not_equal(kp_err_name(generic[i].err), "unknown");
    }
    static const struct {
        kp_reason reason;
        kp_err err;
        unsigned status;
    } refined[] = {
        {KP_REASON_BAD_JSON, KP_ERR_INVALID, 400},
        {KP_REASON_UNKNOWN_CARD, KP_ERR_NOT_FOUND, 404},
        {KP_REASON_UNKNOWN_RECEIPT, KP_ERR_NOT_FOUND, 404},
        {KP_REASON_RECEIPT_CONFLICT, KP_ERR_CONFLICT, 409},
        {KP_REASON_EVENT_CONFLICT, KP_ERR_CONFLICT, 409},
        {KP_REASON_PHONE_IN_USE, KP_ERR_CONFLICT, 409},
        {KP_REASON_EMAIL_IN_USE, KP_ERR_CONFLICT, 409},
        {KP_REASON_CARD_CONFLICT, KP_ERR_CONFLICT, 409},
        {KP_REASON_KEY_CONFLICT, KP_ERR_CONFLICT, 409},
        {KP_REASON_LOGIN_IN_USE, KP_ERR_CONFLICT, 409},
        {KP_REASON_UNKNOWN_PHONE, KP_ERR_NOT_FOUND, 404},
        {KP_REASON_AMBIGUOUS_PHONE, KP_ERR_CONFLICT, 409},
        {KP_REASON_OUT_OF_STOCK, KP_ERR_CONFLICT, 409},
        {KP_REASON_NOT_ENOUGH_POINTS, KP_ERR_LIMIT, 422},
    };
    assert_int_equal(sizeof refined / sizeof refined[0], KP_REASON__COUNT - 1);
    for (size_t i = 0; i < sizeof refined / sizeof refined[0]; i++) {
        unsigned status;
        const char *code;
        kp_http_error_of(refined[i].err, refined[i].reason, &status, &code);
        assert_int_equal(status, refined[i].status);
        assert_string_equal(code, kp_reason_name(refined[i].reason));
        kp_http_error_of(KP_ERR_IO, refined[i].reason, &status, &code);
        assert_int_equal(status, 503);
        assert_string_equal(code, "unavailable");
    }
    unsigned status;
    const char *code;
    kp_http_error_of(KP_OK, KP_REASON_NONE, &status, &code);
    assert_int_equal(status, 500);
    kp_http_error_of(KP_ERR__COUNT, KP_REASON_NONE, &status, &code);
    assert_string_equal(code, "internal");

    /* A plain kp_error_set() has no reason; the answer names the field. */
    kp_error e;
    kp_error_setr(&e, KP_ERR_NOT_FOUND, KP_REASON_UNKNOWN_CARD, "card", "no card");
    kp_error_set(&e, KP_ERR_CONFLICT, "name", "the batch name %s is taken", "spring");
    assert_int_equal(e.reason, KP_REASON_NONE);
    kp_buf out;
    kp_buf_init(&out, 4096);
    assert_int_equal(kp_http_error_answer(&out, &e, NULL), 409);
    assert_string_equal(out.data, "{\"error\":{\"code\":\"conflict\",\"message\":\"the batch "
                                  "name spring is taken\",\"field\":\"name\"}}");
    kp_error_setr(&e, KP_ERR_CONFLICT, KP_REASON_PHONE_IN_USE, "phone", "in use");
    assert_int_equal(kp_http_error_answer(&out, &e, NULL), 409);
    assert_string_equal(out.data, "{\"error\":{\"code\":\"phone_in_use\",\"message\":\"in use\","
                                  "\"field\":\"phone\"}}");
    kp_buf_release(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_600_lots_every_point_visible_and_spendable, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_600_lots_expire_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_earn_at_a_cap_of_spendable_lots_goes_through,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_credit_at_the_cap_with_nothing_to_join_or_merge_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_return_reopening_a_spent_lot_at_the_cap_stays_loadable,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_of_more_lots_than_the_cap_is_refused, setup,
                                        teardown),
        cmocka_unit_test(test_merge_plan_nearest_same_kind_later_expiry),
        cmocka_unit_test_setup_teardown(test_unbalanced_plan_is_refused_by_ledger_and_store, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_program_held_through_70_reloads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_pool_out_of_range_is_refused, setup, teardown),
        cmocka_unit_test(test_error_map_covers_every_kp_err_and_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
