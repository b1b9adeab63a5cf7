/*
 * test_customers_store.c: the store's customers report (kp_report_ops.customers,
 * include/kopilka/report.h) through the seam, on every backend
 * (KOPILKA_TEST_STORE=pg: PostgreSQL; else SQLite): members streamed one
 * call each past a page of PostgreSQL's cursor (10 000 rows), a callback's
 * failure returned as it is and the figures zeroed, cohorts of unknown
 * cards by their first receipt, and the month numbers of the SQL against
 * store_month_number() at month and year boundaries.
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

#include <kopilka/clock.h>
#include <kopilka/report.h>
#include <kopilka/sales.h>
#include <kopilka/store.h>

#include "store/store_report.h"

/* 2026-01-01 00:00 UTC; the program's clock at +03:00. */
#define JAN ((kp_time)1767225600)
#define OFFSET_MIN 180
enum { CARDS = 10050 };

typedef struct fx {
    char location[FIXTURE_LOCATION_MAX];
    kp_store *s;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    fixture_location(f->location, "customers");
    kp_error e = {0};
    if (kp_store_open(f->location, true, &f->s, &e) != KP_OK) {
        fprintf(stderr, "cannot open %s: %s\n", f->location, e.message);
        return -1;
    }
    *state = f;
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

static kp_sale_line LINE = {"sku", "cat", 0, 1};

/* Card i buys once in January (day i % 28) and, when i % 3 == 0, again in
 * March; amounts 100 + i. */
static void load(fx *f)
{
    enum { CHUNK = 1000 };
    kp_sale *v = calloc(CHUNK, sizeof *v);
    kp_sale_line *lines = calloc(CHUNK, sizeof *lines);
    size_t n = 0;
    int receipt = 0;
    for (int i = 0; i < CARDS; i++) {
        for (int k = 0; k < (i % 3 == 0 ? 2 : 1); k++) {
            kp_sale *x = &v[n];
            memset(x, 0, sizeof *x);
            x->at = JAN + (kp_time)(i % 28) * 86400 + 43200 + (k ? 59 * 86400 : 0);
            snprintf(x->store, sizeof x->store, "%s", "main");
            snprintf(x->receipt, sizeof x->receipt, "R-%d", receipt++);
            snprintf(x->card, sizeof x->card, "U-%05d", i);
            x->kind = KP_SALE_PURCHASE;
            x->source = KP_SALE_IMPORT;
            lines[n] = LINE;
            lines[n].amount = 100 + i;
            x->lines = &lines[n];
            x->n_lines = 1;
            x->amount = 100 + i;
            if (++n == CHUNK) {
                int64_t ins, skip;
                assert_int_equal(f->s->ops->begin(f->s), KP_OK);
                assert_int_equal(f->s->ops->sales->sales_put(f->s, v, n, &ins, &skip), KP_OK);
                assert_int_equal(f->s->ops->commit(f->s), KP_OK);
                n = 0;
            }
        }
    }
    if (n) {
        int64_t ins, skip;
        assert_int_equal(f->s->ops->begin(f->s), KP_OK);
        assert_int_equal(f->s->ops->sales->sales_put(f->s, v, n, &ins, &skip), KP_OK);
        assert_int_equal(f->s->ops->commit(f->s), KP_OK);
    }
    free(v);
    free(lines);
}

typedef struct count {
    int64_t members, receipts, spend, stop_at;
} count;

static kp_err counted(void *ctx, const kp_report_member *m)
{
    count *c = ctx;
    c->members++;
    c->receipts += m->receipts;
    c->spend += m->spend_minor;
    assert_int_equal(m->account_id, 0); /* unknown cards: the card is the member */
    assert_int_equal(strncmp(m->card, "U-", 2), 0);
    if (c->stop_at && c->members == c->stop_at) return KP_ERR_NOMEM;
    return KP_OK;
}

static kp_customers_query query(kp_time from, kp_time to)
{
    kp_customers_query q = {
        .period = {.from = from, .to = to, .utc_offset_minutes = OFFSET_MIN, .store = ""},
        .tier = "",
        .window = 30 * 86400,
    };
    return q;
}

static void test_members_stream_past_a_page(void **state)
{
    fx *f = *state;
    load(f);
    kp_report_customers *r = calloc(1, sizeof *r);
    /* The period from 2026-01-01 00:00 +03:00 to 2026-04-01 00:00 +03:00. */
    kp_customers_query q = query(JAN - 3 * 3600, JAN + (31 + 28 + 31) * 86400 - 3 * 3600);
    count c = {0};
    assert_int_equal(f->s->ops->report->customers(f->s, &q, r, counted, &c), KP_OK);
    int64_t twice = (CARDS + 2) / 3, spend = 0;
    for (int i = 0; i < CARDS; i++) spend += (100 + i) * (i % 3 == 0 ? 2 : 1);
    assert_int_equal(c.members, CARDS);
    assert_int_equal(c.receipts, CARDS + twice);
    assert_int_equal(c.spend, spend);
    /* Cohorts: everyone joined in January (their first receipt), all active
     * then; those with a second receipt active in March (month 2). */
    assert_int_equal(r->n_months, 3);
    assert_int_equal(r->cohort[0], CARDS);
    assert_int_equal(r->cohort[1] + r->cohort[2], 0);
    assert_int_equal(r->active[0][0], CARDS);
    assert_int_equal(r->active[0][1], 0);
    assert_int_equal(r->active[0][2], twice);
    /* Nobody has a customer key: nobody followed; joined by 1 March with
     * 30 days after: all. */
    assert_int_equal(r->ba_members, CARDS);
    assert_int_equal(r->ba_followed, 0);

    /* A callback's failure stops the read, is returned, and zeroes *out. */
    count stop = {.stop_at = 10001};
    assert_int_equal(f->s->ops->report->customers(f->s, &q, r, counted, &stop), KP_ERR_NOMEM);
    assert_int_equal(stop.members, 10001);
    assert_int_equal(r->cohort[0], 0);
    assert_int_equal(r->n_months, 0);
    /* The store is usable after it (the snapshot ended). */
    count again = {0};
    assert_int_equal(f->s->ops->report->customers(f->s, &q, r, counted, &again), KP_OK);
    assert_int_equal(again.members, CARDS);
    free(r);
}

/* The C month number against the calendar at +03:00 across a year's end,
 * February of a leap year, and 2100 (not a leap year). */
static void test_month_numbers(void **state)
{
    (void)state;
    int64_t off = OFFSET_MIN * 60;
    int64_t prev = store_month_number(kp_time_from_civil(1999, 12, 1) - off, off);
    for (int y = 2000; y <= 2101; y++)
        for (int m = 1; m <= 12; m++) {
            kp_time first = kp_time_from_civil(y, m, 1) - off;
            int64_t n = store_month_number(first, off);
            assert_int_equal(n, prev + 1);
            /* The last second of the month before is in the month before. */
            assert_int_equal(store_month_number(first - 1, off), prev);
            prev = n;
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_members_stream_past_a_page, setup, teardown),
        cmocka_unit_test(test_month_numbers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
