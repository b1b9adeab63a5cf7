/*
 * test_settle_store.c: the contract suite of the settlement storage seam
 * (kopilka/coalition.h, kp_store_ops.settle), run against every backend
 * (KOPILKA_TEST_STORE=pg: PostgreSQL; else SQLite), through the seam only:
 * an operation's entries read back in the order put, with the period and
 * op_id the store sets; none written for n = 0 or a bad entry; a scan by
 * period and party in (op_id, order) order across pages; the state, a
 * close that numbers the statements and never reuses a number, periods
 * closed in order only, an entry of a closed period moved to the first
 * open one; and, on PostgreSQL, a close that waits for a booking under way.
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
#include <time.h>

#include <kopilka/coalition.h>
#include <kopilka/store.h>

#define T0 ((kp_time)1793000000) /* 2026-10-27 */

typedef struct fx {
    char location[FIXTURE_LOCATION_MAX];
    kp_store *s;
    const kp_settle_ops *o;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    fixture_location(f->location, "settle");
    kp_error e = {0};
    if (kp_store_open(f->location, true, &f->s, &e) != KP_OK) {
        fprintf(stderr, "cannot open %s: %s\n", f->location, e.message);
        return -1;
    }
    f->o = f->s->ops->settle;
    *state = f;
    return f->o ? 0 : -1;
}

static int teardown(void **state)
{
    fx *f = *state;
    kp_store_close(f->s);
    fixture_remove(f->location);
    free(f);
    return 0;
}

static kp_settle_entry entry(kp_settle_kind kind, const char *payer, const char *payee,
                             int64_t points, int64_t amount)
{
    kp_settle_entry e;
    memset(&e, 0, sizeof e);
    e.kind = kind;
    snprintf(e.currency, sizeof e.currency, "RUB");
    snprintf(e.payer, sizeof e.payer, "%s", payer);
    snprintf(e.payee, sizeof e.payee, "%s", payee);
    e.points = points;
    e.amount_minor = amount;
    return e;
}

static void test_put_and_read_back(void **state)
{
    fx *f = *state;
    kp_settle_entry in[4] = {
        entry(KP_SETTLE_ISSUE, "fuel", "fuel", 120, 0),
        entry(KP_SETTLE_BURN, "wash", "fuel", 50, 5000),
        entry(KP_SETTLE_FEE, "fuel", "", 0, 50),
        entry(KP_SETTLE_PROMO, "cafe", "fuel", -7, -700),
    };
    in[1].op_id = 999; /* the store sets op_id, booked_at and period */
    assert_int_equal(f->o->entries_put(f->s, 41, T0, 202610, in, 4), KP_OK);
    kp_settle_entry out[4];
    size_t n = 99;
    assert_int_equal(f->o->entries_of_op(f->s, 41, out, 4, &n), KP_OK);
    assert_int_equal(n, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(out[i].op_id, 41);
        assert_int_equal(out[i].booked_at, T0);
        assert_int_equal(out[i].period, 202610);
        assert_int_equal(out[i].kind, in[i].kind);
        assert_string_equal(out[i].currency, "RUB");
        assert_string_equal(out[i].payer, in[i].payer);
        assert_string_equal(out[i].payee, in[i].payee);
        assert_int_equal(out[i].points, in[i].points);
        assert_int_equal(out[i].amount_minor, in[i].amount_minor);
    }
    /* More than asked for: the count, KP_ERR_LIMIT. */
    assert_int_equal(f->o->entries_of_op(f->s, 41, out, 2, &n), KP_ERR_LIMIT);
    assert_int_equal(n, 4);
    /* None: KP_OK, 0. */
    assert_int_equal(f->o->entries_of_op(f->s, 42, out, 4, &n), KP_OK);
    assert_int_equal(n, 0);
    /* A second put for the same operation comes after the first's. */
    kp_settle_entry more = entry(KP_SETTLE_EXPIRE, "fuel", "", 3, 90);
    assert_int_equal(f->o->entries_put(f->s, 41, T0 + 1, 202610, &more, 1), KP_OK);
    kp_settle_entry five[5];
    assert_int_equal(f->o->entries_of_op(f->s, 41, five, 5, &n), KP_OK);
    assert_int_equal(n, 5);
    assert_int_equal(five[4].kind, KP_SETTLE_EXPIRE);
    assert_int_equal(five[4].booked_at, T0 + 1);
}

static void test_bad_entries_write_nothing(void **state)
{
    fx *f = *state;
    kp_settle_entry e[2] = {entry(KP_SETTLE_ISSUE, "fuel", "fuel", 1, 0),
                            entry(KP_SETTLE_BURN, "", "fuel", 1, 100)};
    assert_int_equal(f->o->entries_put(f->s, 7, T0, 202610, e, 0), KP_OK);
    e[1].kind = (kp_settle_kind)9;
    assert_int_equal(f->o->entries_put(f->s, 7, T0, 202610, e, 2), KP_ERR_INVALID);
    e[1].kind = KP_SETTLE_BURN;
    e[1].currency[0] = '\0';
    assert_int_equal(f->o->entries_put(f->s, 7, T0, 202610, e, 2), KP_ERR_INVALID);
    snprintf(e[1].currency, sizeof e[1].currency, "KZT");
    e[1].amount_minor = INT64_MAX;
    assert_int_equal(f->o->entries_put(f->s, 7, T0, 202610, e, 2), KP_ERR_INVALID);
    e[1].amount_minor = 100;
    assert_int_equal(f->o->entries_put(f->s, 7, T0, 202613, e, 2), KP_ERR_INVALID);
    kp_settle_entry out[2];
    size_t n = 9;
    assert_int_equal(f->o->entries_of_op(f->s, 7, out, 2, &n), KP_OK);
    assert_int_equal(n, 0);
}

typedef struct seen {
    size_t n, stop_at;
    int64_t ops[8192];
    int32_t periods[8192];
} seen;

static bool see(void *ctx, const kp_settle_entry *e)
{
    seen *s = ctx;
    if (s->n < 8192) {
        s->ops[s->n] = e->op_id;
        s->periods[s->n] = e->period;
    }
    s->n++;
    return s->stop_at == 0 || s->n < s->stop_at;
}

static void test_scan_by_period_and_party(void **state)
{
    fx *f = *state;
    kp_settle_entry a[2] = {entry(KP_SETTLE_ISSUE, "fuel", "fuel", 10, 0),
                            entry(KP_SETTLE_BURN, "wash", "", 5, 500)};
    kp_settle_entry b = entry(KP_SETTLE_BURN, "cafe", "wash", 3, 300);
    assert_int_equal(f->o->entries_put(f->s, 30, T0, 202611, a, 2), KP_OK);
    assert_int_equal(f->o->entries_put(f->s, 20, T0, 202610, &b, 1), KP_OK);
    assert_int_equal(f->o->entries_put(f->s, 10, T0, 202611, &b, 1), KP_OK);
    seen *sn = calloc(1, sizeof *sn);
    assert_int_equal(f->o->entries_scan(f->s, 0, NULL, see, sn), KP_OK);
    assert_int_equal(sn->n, 4);
    assert_int_equal(sn->ops[0], 10);
    assert_int_equal(sn->ops[1], 20);
    assert_int_equal(sn->ops[2], 30);
    memset(sn, 0, sizeof *sn);
    assert_int_equal(f->o->entries_scan(f->s, 202611, NULL, see, sn), KP_OK);
    assert_int_equal(sn->n, 3);
    memset(sn, 0, sizeof *sn);
    assert_int_equal(f->o->entries_scan(f->s, 202611, "wash", see, sn), KP_OK);
    assert_int_equal(sn->n, 2); /* op 10 as payee, op 30's burn as payer */
    memset(sn, 0, sizeof *sn);
    assert_int_equal(f->o->entries_scan(f->s, 0, "", see, sn), KP_OK);
    assert_int_equal(sn->n, 1); /* the operator */
    memset(sn, 0, sizeof *sn);
    sn->stop_at = 2;
    assert_int_equal(f->o->entries_scan(f->s, 0, NULL, see, sn), KP_OK);
    assert_int_equal(sn->n, 2);
    /* Past one page of the scan (4096): every entry once, in order. */
    kp_settle_entry many[8];
    for (int i = 0; i < 8; i++) many[i] = entry(KP_SETTLE_ISSUE, "fuel", "fuel", i + 1, 0);
    assert_int_equal(f->s->ops->begin(f->s), KP_OK);
    for (int64_t op = 1000; op < 1000 + 700; op++)
        assert_int_equal(f->o->entries_put(f->s, op, T0, 202612, many, 8), KP_OK);
    assert_int_equal(f->s->ops->commit(f->s), KP_OK);
    memset(sn, 0, sizeof *sn);
    assert_int_equal(f->o->entries_scan(f->s, 202612, NULL, see, sn), KP_OK);
    assert_int_equal(sn->n, 5600);
    for (size_t i = 1; i < sn->n; i++) assert_true(sn->ops[i] >= sn->ops[i - 1]);
    assert_int_equal(sn->ops[5599], 1699);
    free(sn);
}

static kp_settle_statement_row statement(const char *party, const char *body)
{
    kp_settle_statement_row r;
    memset(&r, 0, sizeof r);
    snprintf(r.party, sizeof r.party, "%s", party);
    snprintf(r.currency, sizeof r.currency, "RUB");
    r.body = (char *)body;
    return r;
}

static void test_close_numbers_and_moves(void **state)
{
    fx *f = *state;
    kp_settle_state st;
    assert_int_equal(f->o->state_get(f->s, false, &st), KP_OK);
    assert_int_equal(st.closed_through, 0);
    assert_int_equal(st.next_number, 1);
    kp_settle_entry e = entry(KP_SETTLE_BURN, "wash", "fuel", 4, 400);
    assert_int_equal(f->o->entries_put(f->s, 1, T0, 202609, &e, 1), KP_OK);
    assert_int_equal(f->o->entries_put(f->s, 2, T0, 202610, &e, 1), KP_OK);
    int32_t open[4];
    size_t n = 0;
    assert_int_equal(f->o->open_periods(f->s, open, 4, &n), KP_OK);
    assert_int_equal(n, 2);
    assert_int_equal(open[0], 202609);
    assert_int_equal(open[1], 202610);

    kp_settle_period_row p = {.period = 202609, .closed_at = T0 + 10, .matrix = "{\"m\":1}"};
    snprintf(p.closed_by, sizeof p.closed_by, "cli:root");
    kp_settle_statement_row s3[3] = {statement("", "{\"a\":1}"), statement("fuel", "{\"b\":2}"),
                                     statement("wash", "{\"c\":«3»}")};
    assert_int_equal(f->s->ops->begin(f->s), KP_OK);
    assert_int_equal(f->o->state_get(f->s, true, &st), KP_OK);
    assert_int_equal(f->o->period_close(f->s, &p, s3, 3), KP_OK);
    assert_int_equal(f->s->ops->commit(f->s), KP_OK);
    assert_int_equal(p.first_number, 1);
    assert_int_equal(p.statements, 3);
    assert_int_equal(s3[2].number, 3);
    assert_int_equal(s3[2].period, 202609);
    assert_int_equal(f->o->state_get(f->s, false, &st), KP_OK);
    assert_int_equal(st.closed_through, 202609);
    assert_int_equal(st.next_number, 4);

    /* Closed already, or not after the last closed: refused. */
    kp_settle_period_row again = p;
    again.matrix = "{}";
    assert_int_equal(f->o->period_close(f->s, &again, s3, 1), KP_ERR_CONFLICT);
    again.period = 202608;
    assert_int_equal(f->o->period_close(f->s, &again, s3, 1), KP_ERR_CONFLICT);
    again.period = 202699;
    assert_int_equal(f->o->period_close(f->s, &again, s3, 1), KP_ERR_INVALID);

    /* An entry of a closed period lands in the first open one. */
    assert_int_equal(f->o->entries_put(f->s, 3, T0, 202608, &e, 1), KP_OK);
    kp_settle_entry got;
    assert_int_equal(f->o->entries_of_op(f->s, 3, &got, 1, &n), KP_OK);
    assert_int_equal(got.period, 202610);

    /* A close rolled back takes no number. */
    kp_settle_period_row dec = {.period = 202610, .closed_at = T0 + 20, .matrix = "{}"};
    assert_int_equal(f->s->ops->begin(f->s), KP_OK);
    assert_int_equal(f->o->state_get(f->s, true, &st), KP_OK);
    assert_int_equal(f->o->period_close(f->s, &dec, s3, 2), KP_OK);
    assert_int_equal(f->s->ops->rollback(f->s), KP_OK);
    assert_int_equal(f->o->state_get(f->s, false, &st), KP_OK);
    assert_int_equal(st.closed_through, 202609);
    assert_int_equal(st.next_number, 4);
    /* December to January. */
    dec.period = 202612;
    assert_int_equal(f->o->period_close(f->s, &dec, s3, 1), KP_OK);
    assert_int_equal(s3[0].number, 4);
    assert_int_equal(f->o->entries_put(f->s, 4, T0, 202612, &e, 1), KP_OK);
    assert_int_equal(f->o->entries_of_op(f->s, 4, &got, 1, &n), KP_OK);
    assert_int_equal(got.period, 202701);
    assert_int_equal(f->o->open_periods(f->s, open, 4, &n), KP_OK);
    assert_int_equal(n, 1);
    assert_int_equal(open[0], 202701);

    /* Read back: the period with its matrix, the list newest first, the
     * statements by number and by period. */
    kp_settle_period_row pr;
    assert_int_equal(f->o->period_get(f->s, 202609, &pr), KP_OK);
    assert_int_equal(pr.closed_at, T0 + 10);
    assert_string_equal(pr.closed_by, "cli:root");
    assert_int_equal(pr.first_number, 1);
    assert_int_equal(pr.statements, 3);
    assert_string_equal(pr.matrix, "{\"m\":1}");
    kp_settle_period_row_release(&pr);
    assert_int_equal(f->o->period_get(f->s, 202610, &pr), KP_ERR_NOT_FOUND);
    kp_settle_period_row list[4];
    assert_int_equal(f->o->periods_list(f->s, 0, list, 4, &n), KP_OK);
    assert_int_equal(n, 2);
    assert_int_equal(list[0].period, 202612);
    assert_null(list[0].matrix);
    assert_int_equal(f->o->periods_list(f->s, 202612, list, 4, &n), KP_OK);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].period, 202609);
    kp_settle_statement_row one;
    assert_int_equal(f->o->statement_get(f->s, 3, &one), KP_OK);
    assert_string_equal(one.party, "wash");
    assert_string_equal(one.body, "{\"c\":«3»}");
    assert_int_equal(one.period, 202609);
    kp_settle_statement_row_release(&one);
    assert_int_equal(f->o->statement_get(f->s, 5, &one), KP_ERR_NOT_FOUND);
    kp_settle_statement_row rows[4];
    assert_int_equal(f->o->statements_of(f->s, 202609, rows, 4, &n), KP_OK);
    assert_int_equal(n, 3);
    assert_string_equal(rows[0].party, "");
    assert_int_equal(rows[1].number, 2);
    for (size_t i = 0; i < n; i++) kp_settle_statement_row_release(&rows[i]);
    assert_int_equal(f->o->statements_of(f->s, 202610, rows, 4, &n), KP_OK);
    assert_int_equal(n, 0);
}

/* ---- PostgreSQL: a close waits for a booking under way */

typedef struct closer {
    const char *location;
    volatile int done;
    kp_err err;
    kp_settle_state st;
} closer;

static void *close_thread(void *arg)
{
    closer *c = arg;
    kp_store *s = NULL;
    kp_error e = {0};
    c->err = kp_store_open(c->location, false, &s, &e);
    if (c->err == KP_OK) c->err = s->ops->begin(s);
    if (c->err == KP_OK) c->err = s->ops->settle->state_get(s, true, &c->st);
    c->done = 1;
    if (c->err == KP_OK) {
        kp_settle_period_row p = {.period = 202610, .closed_at = T0, .matrix = "{}"};
        c->err = s->ops->settle->period_close(s, &p, NULL, 0);
        if (c->err == KP_OK) c->err = s->ops->commit(s);
    }
    kp_store_close(s);
    return NULL;
}

static void test_close_waits_for_booking(void **state)
{
    fx *f = *state;
    if (!fixture_is_pg()) {
        printf("NOTE sqlite: one writer at a time; no lock to wait for\n");
        return;
    }
    kp_settle_entry e = entry(KP_SETTLE_ISSUE, "fuel", "fuel", 1, 0);
    assert_int_equal(f->s->ops->begin(f->s), KP_OK);
    assert_int_equal(f->o->entries_put(f->s, 1, T0, 202610, &e, 1), KP_OK);
    closer c = {.location = f->location};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, close_thread, &c), 0);
    struct timespec ms300 = {0, 300 * 1000 * 1000};
    nanosleep(&ms300, NULL);
    assert_int_equal(c.done, 0); /* waits for the booking's FOR SHARE */
    assert_int_equal(f->s->ops->commit(f->s), KP_OK);
    pthread_join(t, NULL);
    assert_int_equal(c.err, KP_OK);
    /* The booking was in 202610 and is in it: closed with it. A booking
     * after the close lands in 202611. */
    assert_int_equal(f->o->entries_put(f->s, 2, T0, 202610, &e, 1), KP_OK);
    kp_settle_entry got;
    size_t n = 0;
    assert_int_equal(f->o->entries_of_op(f->s, 2, &got, 1, &n), KP_OK);
    assert_int_equal(got.period, 202611);
}

int main(void)
{
    printf("settle store contract on %s\n", fixture_is_pg() ? "PostgreSQL" : "SQLite");
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_put_and_read_back),
        T(test_bad_entries_write_nothing),
        T(test_scan_by_period_and_party),
        T(test_close_numbers_and_moves),
        T(test_close_waits_for_booking),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
