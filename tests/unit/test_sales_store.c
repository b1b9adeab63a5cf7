/*
 * test_sales_store.c: the contract suite of the sales history's storage
 * seam (kopilka/sales.h, kp_store_ops.sales), run against every backend
 * (KOPILKA_TEST_STORE=pg: PostgreSQL; else SQLite), through the seam only:
 * put and its skips by (store, receipt, kind), refusals that write
 * nothing, rollback, scan order, bounds and store filter, lines kept in
 * order with odd characters, a scan stopped early, sale_get, span.
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

#include <kopilka/sales.h>
#include <kopilka/store.h>

#define T0 ((kp_time)1780000000)

typedef struct fx {
    char location[FIXTURE_LOCATION_MAX];
    kp_store *s;
    const kp_sales_ops *o;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    fixture_location(f->location, "sales");
    kp_error e = {0};
    if (kp_store_open(f->location, true, &f->s, &e) != KP_OK) {
        fprintf(stderr, "cannot open %s: %s\n", f->location, e.message);
        return -1;
    }
    f->o = f->s->ops->sales;
    *state = f;
    if (f->o == NULL) {
        fprintf(stderr, "the store has no sales operations (kp_store_ops.sales NULL)\n");
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

static kp_sale_line L1[2] = {{"sku-1", "milk", 1250, 1}, {"sku-\"2\"", "bread, {x}\\", 350, 2}};
static kp_sale_line L2[1] = {{"", "", 999, 1}};

static kp_sale sale(kp_time at, const char *store, const char *receipt, const char *card,
                    kp_sale_kind kind, const kp_sale_line *lines, size_t n)
{
    kp_sale x;
    memset(&x, 0, sizeof x);
    x.at = at;
    snprintf(x.store, sizeof x.store, "%s", store);
    snprintf(x.receipt, sizeof x.receipt, "%s", receipt);
    snprintf(x.card, sizeof x.card, "%s", card);
    x.kind = kind;
    x.source = KP_SALE_IMPORT;
    x.n_lines = n;
    x.lines = lines;
    for (size_t i = 0; i < n; i++) x.amount += lines[i].amount;
    return x;
}

static kp_err put(fx *f, const kp_sale *v, size_t n, int64_t *ins, int64_t *skip)
{
    assert_int_equal(f->s->ops->begin(f->s), KP_OK);
    kp_err err = f->o->sales_put(f->s, v, n, ins, skip);
    if (err == KP_OK) assert_int_equal(f->s->ops->commit(f->s), KP_OK);
    else assert_int_equal(f->s->ops->rollback(f->s), KP_OK);
    return err;
}

typedef struct seen {
    int n, stop_at;
    kp_sale got[8];
    kp_sale_line lines[8][4];
} seen;

static bool collect(void *ctx, const kp_sale *x)
{
    seen *s = ctx;
    if (s->n < 8) {
        s->got[s->n] = *x;
        for (size_t i = 0; i < x->n_lines && i < 4; i++) s->lines[s->n][i] = x->lines[i];
        s->got[s->n].lines = s->lines[s->n];
    }
    s->n++;
    return s->stop_at == 0 || s->n < s->stop_at;
}

static int64_t span_count(fx *f)
{
    int64_t count = -1;
    kp_time first, last;
    assert_int_equal(f->o->sales_span(f->s, &count, &first, &last), KP_OK);
    return count;
}

static void test_put_skip_and_scan(void **state)
{
    fx *f = *state;
    kp_sale v[3] = {sale(T0 + 20, "S1", "r1", "", KP_SALE_PURCHASE, L1, 2),
                    sale(T0 + 10, "S2", "r1", "2000000000001", KP_SALE_PURCHASE, L2, 1),
                    sale(T0 + 30, "S1", "r1", "", KP_SALE_RETURN, L2, 1)};
    snprintf(v[0].customer, sizeof v[0].customer, "K-77 \"Ё\"");
    int64_t ins = -1, skip = -1;
    assert_int_equal(put(f, v, 3, &ins, &skip), KP_OK);
    assert_int_equal(ins, 3);
    assert_int_equal(skip, 0);
    /* The same again, one of them changed: all skipped, nothing changed. */
    v[0].at = T0 + 99;
    assert_int_equal(put(f, v, 3, &ins, &skip), KP_OK);
    assert_int_equal(ins, 0);
    assert_int_equal(skip, 3);

    seen s = {0};
    assert_int_equal(f->o->sales_scan(f->s, 0, 0, "", collect, &s), KP_OK);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.got[0].store, "S2");
    assert_string_equal(s.got[0].card, "2000000000001");
    assert_string_equal(s.got[0].customer, "");
    assert_int_equal(s.got[1].at, T0 + 20);
    assert_string_equal(s.got[1].customer, "K-77 \"Ё\"");
    assert_int_equal(s.got[1].amount, 1600);
    assert_int_equal(s.got[1].kind, KP_SALE_PURCHASE);
    assert_int_equal(s.got[1].source, KP_SALE_IMPORT);
    assert_int_equal(s.got[1].n_lines, 2);
    assert_string_equal(s.got[1].lines[1].sku, "sku-\"2\"");
    assert_string_equal(s.got[1].lines[1].category, "bread, {x}\\");
    assert_int_equal(s.got[1].lines[1].qty, 2);
    assert_int_equal(s.got[1].lines[0].amount, 1250);
    assert_int_equal(s.got[2].kind, KP_SALE_RETURN);
    assert_true(s.got[0].id > 0 && s.got[1].id != s.got[0].id);

    memset(&s, 0, sizeof s);
    assert_int_equal(f->o->sales_scan(f->s, T0 + 10, T0 + 30, "S1", collect, &s), KP_OK);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.got[0].at, T0 + 20);

    memset(&s, 0, sizeof s);
    s.stop_at = 1;
    assert_int_equal(f->o->sales_scan(f->s, 0, 0, "", collect, &s), KP_OK);
    assert_int_equal(s.n, 1);

    kp_sale got;
    kp_sale_line *lines = calloc(KP_SALE_LINES_MAX, sizeof *lines);
    assert_int_equal(f->o->sale_get(f->s, "S1", "r1", KP_SALE_PURCHASE, &got, lines), KP_OK);
    assert_int_equal(got.at, T0 + 20);
    assert_string_equal(got.customer, "K-77 \"Ё\"");
    assert_int_equal(got.n_lines, 2);
    assert_ptr_equal(got.lines, lines);
    assert_string_equal(lines[1].category, "bread, {x}\\");
    assert_int_equal(f->o->sale_get(f->s, "S1", "r1", KP_SALE_RETURN, &got, lines), KP_OK);
    assert_int_equal(got.amount, 999);
    assert_int_equal(f->o->sale_get(f->s, "S1", "r2", KP_SALE_PURCHASE, &got, lines),
                     KP_ERR_NOT_FOUND);
    assert_int_equal(f->o->sale_get(f->s, "S2", "r1", KP_SALE_RETURN, &got, lines),
                     KP_ERR_NOT_FOUND);
    free(lines);

    int64_t count;
    kp_time first, last;
    assert_int_equal(f->o->sales_span(f->s, &count, &first, &last), KP_OK);
    assert_int_equal(count, 3);
    assert_int_equal(first, T0 + 10);
    assert_int_equal(last, T0 + 30);
}

static void test_refusals_write_nothing(void **state)
{
    fx *f = *state;
    int64_t count = -1;
    kp_time first = -1, last = -1;
    assert_int_equal(f->o->sales_span(f->s, &count, &first, &last), KP_OK);
    assert_int_equal(count, 0);
    assert_int_equal(first, 0);
    assert_int_equal(last, 0);

    kp_sale good = sale(T0, "S1", "ok", "", KP_SALE_PURCHASE, L2, 1);
    kp_sale bad[4] = {sale(T0, "", "r", "", KP_SALE_PURCHASE, L2, 1),
                      sale(T0, "S1", "", "", KP_SALE_PURCHASE, L2, 1),
                      sale(T0, "S1", "r", "", KP_SALE_PURCHASE, L2, 0),
                      sale(T0, "S1", "r", "", KP_SALE_PURCHASE, L1, 2)};
    bad[3].amount += 1; /* not the sum of its lines */
    for (int i = 0; i < 4; i++) {
        kp_sale two[2] = {good, bad[i]};
        int64_t ins, skip;
        assert_int_equal(put(f, two, 2, &ins, &skip), KP_ERR_INVALID);
        assert_true(f->s->last_error[0] != '\0');
    }
    kp_sale many = sale(T0, "S1", "big", "", KP_SALE_PURCHASE, L2, 1);
    many.n_lines = KP_SALE_LINES_MAX + 1;
    int64_t ins, skip;
    assert_int_equal(put(f, &many, 1, &ins, &skip), KP_ERR_INVALID);
    assert_int_equal(span_count(f), 0);

    /* Rolled back: nothing stays. */
    assert_int_equal(f->s->ops->begin(f->s), KP_OK);
    assert_int_equal(f->o->sales_put(f->s, &good, 1, &ins, &skip), KP_OK);
    assert_int_equal(ins, 1);
    assert_int_equal(f->s->ops->rollback(f->s), KP_OK);
    assert_int_equal(span_count(f), 0);
}

static void test_many(void **state)
{
    fx *f = *state;
    enum { N = 3000 };
    kp_sale *v = calloc(N, sizeof *v);
    for (int i = 0; i < N; i++) {
        char r[32];
        snprintf(r, sizeof r, "r%d", i);
        v[i] = sale(T0 + (N - i), "S1", r, "", KP_SALE_PURCHASE, L1, 2);
    }
    int64_t ins, skip;
    assert_int_equal(put(f, v, N, &ins, &skip), KP_OK);
    assert_int_equal(ins, N);
    seen s = {0};
    assert_int_equal(f->o->sales_scan(f->s, 0, 0, "", collect, &s), KP_OK);
    assert_int_equal(s.n, N); /* more rows than one page of the PostgreSQL scan */
    assert_int_equal(s.got[0].at, T0 + 1);
    assert_int_equal(s.got[0].n_lines, 2);
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_skip_and_scan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals_write_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
