/*
 * test_settlement.c: a coalition's statements (src/service/settlement.c,
 * docs/coalition.md "Periods and statements") from entries put through the
 * seam (kp_store_ops.settle), on every backend: each figure of each party's
 * statement exact for the entries of the design's table (issue, burn at
 * own and other stores, expiry with breakage, a promotion, fees, a
 * return), net positions that add up to zero, the matrix; the close (not
 * before the month's end, in order, numbered, idempotent, later entries in
 * the next period); verify clean, then catching a tampered entry and a
 * tampered statement.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fixture.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopilka/clock.h>
#include <kopilka/store.h>

#include "service/service.h"
#include "service/settlement.h"

static const char program_json[] =
    "{\"name\":\"coalition\",\"currency\":\"RUB\",\"utc_offset\":\"+03:00\","
    "\"currencies\":[{\"code\":\"KZT\",\"minor_per_point\":500}],"
    "\"partners\":[{\"code\":\"fuel\",\"name\":\"Fuel\",\"stores\":[\"FUEL-*\"]},"
    "{\"code\":\"wash\",\"name\":\"Wash\",\"stores\":[\"WASH-*\"]}],"
    "\"rules\":[{\"id\":\"earn\",\"kind\":\"earn_percent\",\"percent\":1}]}";

/* 2026-11-15T12:00:00Z */
#define NOV ((kp_time)1794744000)

typedef struct fx {
    char path[FIXTURE_LOCATION_MAX];
    kp_store *st;
    kp_program program;
    kp_scratch *sc;
    kp_buf out;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    fixture_location(f->path, "settlement");
    kp_error e = {0};
    assert_int_equal(kp_store_open(f->path, true, &f->st, &e), KP_OK);
    int64_t v;
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(kp_service_program_load(f->st, program_json, strlen(program_json), &v, &e),
                     KP_OK);
    assert_int_equal(f->st->ops->commit(f->st), KP_OK);
    assert_int_equal(kp_service_program_get(f->st, 0, &f->program, &e), KP_OK);
    assert_int_equal(f->program.n_partners, 2);
    assert_int_equal(f->program.utc_offset_minutes, 180);
    f->sc = kp_scratch_new();
    kp_buf_init(&f->out, 8 << 20);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    kp_store_close(f->st);
    kp_scratch_free(f->sc);
    kp_buf_release(&f->out);
    fixture_remove(f->path);
    free(f);
    return 0;
}

static void office(fx *f, kp_office *o, kp_role role, kp_time now)
{
    kp_actor a = {.kind = KP_ACTOR_STAFF, .role = role};
    snprintf(a.name, sizeof a.name, "staff:test");
    kp_office_init(o, f->st, NULL, &f->program, now, &a, f->sc);
}

static kp_settle_entry en(kp_settle_kind kind, const char *cur, const char *payer,
                          const char *payee, int64_t points, int64_t amount)
{
    kp_settle_entry e;
    memset(&e, 0, sizeof e);
    e.kind = kind;
    snprintf(e.currency, sizeof e.currency, "%s", cur);
    snprintf(e.payer, sizeof e.payer, "%s", payer);
    snprintf(e.payee, sizeof e.payee, "%s", payee);
    e.points = points;
    e.amount_minor = amount;
    return e;
}

static void put(fx *f, int64_t op, kp_time at, int32_t period, const kp_settle_entry *e, size_t n)
{
    assert_int_equal(f->st->ops->settle->entries_put(f->st, op, at, period, e, n), KP_OK);
}

/* The design's table, 1 point = 100 kopecks: a purchase at fuel (issue,
 * fees per operation and per point), fuel's points burnt at wash, wash's
 * and the operator's own burnt at the operator's store, fuel's points
 * expiring (30% breakage), a promotion funded by cafe at wash, a return of
 * half the first purchase, and an issue in tenge. */
static void put_table(fx *f, int32_t period, kp_time at)
{
    kp_settle_entry op1[3] = {en(KP_SETTLE_ISSUE, "RUB", "fuel", "fuel", 100, 0),
                              en(KP_SETTLE_FEE, "RUB", "fuel", "", 0, 50),
                              en(KP_SETTLE_FEE, "RUB", "fuel", "", 100, 200)};
    kp_settle_entry op2[2] = {en(KP_SETTLE_BURN, "RUB", "fuel", "wash", 30, 3000),
                              en(KP_SETTLE_ISSUE, "RUB", "wash", "wash", 20, 0)};
    kp_settle_entry op3[2] = {en(KP_SETTLE_BURN, "RUB", "wash", "", 10, 1000),
                              en(KP_SETTLE_BURN, "RUB", "", "", 5, 0)};
    kp_settle_entry op4 = en(KP_SETTLE_EXPIRE, "RUB", "fuel", "", 10, 300);
    kp_settle_entry op5 = en(KP_SETTLE_PROMO, "RUB", "cafe", "wash", 5, 500);
    kp_settle_entry op6[2] = {en(KP_SETTLE_ISSUE, "RUB", "fuel", "fuel", -50, 0),
                              en(KP_SETTLE_FEE, "RUB", "fuel", "", -50, -100)};
    kp_settle_entry op7 = en(KP_SETTLE_ISSUE, "KZT", "fuel", "fuel", 7, 0);
    put(f, 1, at, period, op1, 3);
    put(f, 2, at, period, op2, 2);
    put(f, 3, at, period, op3, 2);
    put(f, 4, at, period, &op4, 1);
    put(f, 5, at, period, &op5, 1);
    put(f, 6, at, period, op6, 2);
    put(f, 7, at, period, &op7, 1);
}

static json_t *statement_of(json_t *period, const char *party, const char *currency)
{
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(period, "statements"), i, s) {
        if (strcmp(json_string_value(json_object_get(s, "party")), party) == 0 &&
            strcmp(json_string_value(json_object_get(s, "currency")), currency) == 0)
            return s;
    }
    return NULL;
}

static int64_t fig(json_t *s, const char *key)
{
    json_t *v = json_object_get(s, key);
    if (!json_is_integer(v)) fail_msg("no figure %s", key);
    return (int64_t)json_integer_value(v);
}

static json_t *period_json(fx *f, int32_t period, kp_time now)
{
    kp_office o;
    office(f, &o, KP_ROLE_AUDITOR, now);
    kp_error e = {0};
    assert_int_equal(kp_settlement_period(&o, period, false, false, &f->out, &e), KP_OK);
    json_error_t je;
    json_t *j = json_loadb(f->out.data, f->out.len, 0, &je);
    if (j == NULL) fail_msg("not JSON: %s", je.text);
    return j;
}

static void test_figures_of_the_table(void **state)
{
    fx *f = *state;
    put_table(f, 202611, NOV);
    json_t *p = period_json(f, 202611, NOV + 86400);
    assert_string_equal(json_string_value(json_object_get(p, "state")), "open");
    assert_true(json_is_false(json_object_get(p, "closable"))); /* November has not ended */
    /* 4 parties in roubles (the operator, fuel, wash, and cafe of the
     * entries), 3 in tenge (the operator and the program's partners). */
    assert_int_equal(json_array_size(json_object_get(p, "statements")), 7);
    json_t *first = json_array_get(json_object_get(p, "statements"), 0);
    assert_string_equal(json_string_value(json_object_get(first, "party")), "operator");
    assert_string_equal(json_string_value(json_object_get(first, "currency")), "RUB");
    assert_true(json_is_null(json_object_get(first, "number")));

    json_t *fuel = statement_of(p, "fuel", "RUB");
    assert_non_null(fuel);
    assert_int_equal(fig(fuel, "entries"), 7);
    assert_int_equal(fig(fuel, "issued"), 50);
    assert_int_equal(fig(fuel, "own_burnt_elsewhere"), 30);
    assert_int_equal(fig(fuel, "own_burnt_elsewhere_minor"), 3000);
    assert_int_equal(fig(fuel, "expired"), 10);
    assert_int_equal(fig(fuel, "breakage_paid_minor"), 300);
    assert_int_equal(fig(fuel, "fees_paid_minor"), 150);
    assert_int_equal(fig(fuel, "owed_by_party_minor"), 3450);
    assert_int_equal(fig(fuel, "owed_to_party_minor"), 0);
    assert_int_equal(fig(fuel, "net_position_minor"), -3450);

    json_t *wash = statement_of(p, "wash", "RUB");
    assert_int_equal(fig(wash, "entries"), 4);
    assert_int_equal(fig(wash, "issued"), 20);
    assert_int_equal(fig(wash, "burnt_others_at_own_stores"), 30);
    assert_int_equal(fig(wash, "burnt_others_at_own_stores_minor"), 3000);
    assert_int_equal(fig(wash, "own_burnt_elsewhere"), 10);
    assert_int_equal(fig(wash, "own_burnt_elsewhere_minor"), 1000);
    assert_int_equal(fig(wash, "promotions_received"), 5);
    assert_int_equal(fig(wash, "promotions_received_minor"), 500);
    assert_int_equal(fig(wash, "net_position_minor"), 2500);

    json_t *op = statement_of(p, "operator", "RUB");
    assert_int_equal(fig(op, "entries"), 6);
    assert_int_equal(fig(op, "burnt_own_at_own_stores"), 5);
    assert_int_equal(fig(op, "burnt_others_at_own_stores"), 10);
    assert_int_equal(fig(op, "burnt_others_at_own_stores_minor"), 1000);
    assert_int_equal(fig(op, "breakage_received_minor"), 300);
    assert_int_equal(fig(op, "fees_received_minor"), 150);
    assert_int_equal(fig(op, "net_position_minor"), 1450);

    json_t *cafe = statement_of(p, "cafe", "RUB");
    assert_int_equal(fig(cafe, "promotions_paid"), 5);
    assert_int_equal(fig(cafe, "promotions_paid_minor"), 500);
    assert_int_equal(fig(cafe, "net_position_minor"), -500);
    /* Every kopeck owed is owed to someone. */
    size_t i;
    json_t *s;
    int64_t net = 0;
    json_array_foreach(json_object_get(p, "statements"), i, s) net += fig(s, "net_position_minor");
    assert_int_equal(net, 0);
    assert_int_equal(fig(statement_of(p, "fuel", "KZT"), "issued"), 7);
    assert_int_equal(fig(statement_of(p, "wash", "KZT"), "entries"), 0);

    /* The matrix: parties by code (the operator first); row owes column. */
    json_t *m = json_array_get(json_object_get(json_object_get(p, "matrix"), "currencies"), 0);
    assert_string_equal(json_string_value(json_object_get(m, "currency")), "RUB");
    json_t *parties = json_object_get(m, "parties"), *amounts = json_object_get(m, "amounts_minor");
    assert_int_equal(json_array_size(parties), 4);
    const char *want[4] = {"operator", "cafe", "fuel", "wash"};
    for (int k = 0; k < 4; k++)
        assert_string_equal(json_string_value(json_array_get(parties, k)), want[k]);
    int64_t cells[4][4] = {{0, 0, 0, 0}, {0, 0, 0, 500}, {450, 0, 0, 3000}, {1000, 0, 0, 0}};
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++)
            assert_int_equal(json_integer_value(json_array_get(json_array_get(amounts, r), c)),
                             cells[r][c]);
    json_decref(p);

    /* CSV: a header and one line per statement. */
    kp_office o;
    office(f, &o, KP_ROLE_MANAGER, NOV);
    kp_error e = {0};
    assert_int_equal(kp_settlement_period(&o, 202611, true, false, &f->out, &e), KP_OK);
    size_t lines = 0;
    for (size_t k = 0; k < f->out.len; k++) lines += f->out.data[k] == '\n';
    assert_int_equal(lines, 8);
    assert_int_equal(kp_settlement_period(&o, 202611, true, true, &f->out, &e), KP_OK);
    kp_buf_append(&f->out, "", 1);
    assert_non_null(strstr(f->out.data, "\"RUB\",\"fuel\",\"wash\",3000\r\n"));
    /* A cashier may not read it; a manager may not close. */
    office(f, &o, KP_ROLE_CASHIER, NOV);
    assert_int_equal(kp_settlement_periods(&o, &f->out, &e), KP_ERR_FORBIDDEN);
    office(f, &o, KP_ROLE_MANAGER, NOV + 40 * 86400);
    bool replayed;
    assert_int_equal(kp_settlement_close(&o, 202611, &f->out, &replayed, &e), KP_ERR_FORBIDDEN);
}

static kp_err close_period(fx *f, int32_t period, kp_time now, bool *replayed, kp_error *e)
{
    kp_office o;
    office(f, &o, KP_ROLE_ADMIN, now);
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    kp_err err = kp_settlement_close(&o, period, &f->out, replayed, e);
    if (err == KP_OK)
        assert_int_equal(f->st->ops->commit(f->st), KP_OK);
    else
        assert_int_equal(f->st->ops->rollback(f->st), KP_OK);
    return err;
}

typedef struct lines {
    int n;
    char last[512];
} lines;

static void keep(void *ctx, const char *line)
{
    lines *l = ctx;
    l->n++;
    snprintf(l->last, sizeof l->last, "%s", line);
}

static void test_close_in_order_and_verify(void **state)
{
    fx *f = *state;
    kp_settle_entry oct = en(KP_SETTLE_BURN, "RUB", "fuel", "wash", 1, 100);
    put(f, 100, NOV - 30 * 86400, 202610, &oct, 1);
    put_table(f, 202611, NOV);
    kp_error e = {0};
    bool replayed = false;
    /* 2026-11-30T21:00:00Z is December in +03:00: the end of November. */
    kp_time dec1 = kp_time_from_civil(2026, 12, 1) - 3 * 3600;
    assert_int_equal(close_period(f, 202611, dec1 - 1, &replayed, &e), KP_ERR_CONFLICT);
    assert_string_equal(e.field, "period");
    assert_int_equal(close_period(f, 202611, dec1, &replayed, &e), KP_ERR_CONFLICT);
    assert_non_null(strstr(e.message, "close 2026-10 first"));
    assert_int_equal(close_period(f, 202610, dec1, &replayed, &e), KP_OK);
    assert_false(replayed);
    assert_int_equal(close_period(f, 202611, dec1, &replayed, &e), KP_OK);
    assert_false(replayed);
    json_t *p = json_loadb(f->out.data, f->out.len, 0, NULL);
    assert_non_null(p);
    assert_string_equal(json_string_value(json_object_get(p, "state")), "closed");
    /* October: the operator, fuel and wash; November's 7 follow them. */
    assert_int_equal(json_integer_value(json_object_get(p, "first_number")), 4);
    assert_int_equal(fig(statement_of(p, "wash", "RUB"), "net_position_minor"), 2500);
    assert_int_equal(fig(statement_of(p, "fuel", "KZT"), "number"), 9);
    json_decref(p);
    /* Again: the same statements, replayed. */
    kp_buf first;
    kp_buf_init(&first, 8 << 20);
    kp_buf_append(&first, f->out.data, f->out.len);
    assert_int_equal(close_period(f, 202611, dec1 + 86400, &replayed, &e), KP_OK);
    assert_true(replayed);
    assert_int_equal(f->out.len, first.len);
    assert_memory_equal(f->out.data, first.data, first.len);
    kp_buf_release(&first);
    /* A late November entry lands in December; November does not change. */
    kp_settle_entry late = en(KP_SETTLE_BURN, "RUB", "wash", "fuel", 2, 200);
    put(f, 200, dec1 + 10, 202611, &late, 1);
    kp_settle_entry got;
    size_t n;
    assert_int_equal(f->st->ops->settle->entries_of_op(f->st, 200, &got, 1, &n), KP_OK);
    assert_int_equal(got.period, 202612);
    p = period_json(f, 202611, dec1 + 20);
    assert_int_equal(fig(statement_of(p, "wash", "RUB"), "net_position_minor"), 2500);
    json_decref(p);
    kp_settle_statement_row row;
    assert_int_equal(f->st->ops->settle->statement_get(f->st, 6, &row), KP_OK);
    assert_string_equal(row.party, "wash"); /* RUB: operator 4, fuel 5, wash 6, cafe 7; KZT 8.. */
    assert_string_equal(row.currency, "RUB");
    kp_settle_statement_row_release(&row);

    /* verify: clean, then a tampered entry, then a tampered statement. */
    lines l = {0};
    int64_t problems = 0;
    assert_int_equal(kp_settlement_verify(f->st, keep, &l, &problems), KP_OK);
    assert_int_equal(problems, 0);
    char why[256];
    assert_int_equal(fixture_exec(f->path,
                                  "UPDATE settle_entries SET amount_minor = 2999 "
                                  "WHERE op_id = 2 AND kind = 2",
                                  why, sizeof why),
                     0);
    assert_int_equal(kp_settlement_verify(f->st, keep, &l, &problems), KP_OK);
    /* fuel's and wash's statements and the matrix */
    assert_int_equal(problems, 3);
    assert_non_null(strstr(l.last, "2026-11"));
    assert_int_equal(fixture_exec(f->path,
                                  "UPDATE settle_entries SET amount_minor = 3000 "
                                  "WHERE op_id = 2 AND kind = 2",
                                  why, sizeof why),
                     0);
    assert_int_equal(fixture_exec(f->path,
                                  "UPDATE settle_statements SET body = REPLACE(body, "
                                  "'\"net_position_minor\":-500', '\"net_position_minor\":0') "
                                  "WHERE party = 'cafe'",
                                  why, sizeof why),
                     0);
    problems = 0;
    l.n = 0;
    assert_int_equal(kp_settlement_verify(f->st, keep, &l, &problems), KP_OK);
    assert_int_equal(problems, 1);
    assert_non_null(strstr(l.last, "(cafe, RUB)"));
}

int main(void)
{
    printf("settlement on %s\n", fixture_is_pg() ? "PostgreSQL" : "SQLite");
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_figures_of_the_table),
        T(test_close_in_order_and_verify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
