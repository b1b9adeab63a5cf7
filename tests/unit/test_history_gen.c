/* test_history_gen.c: the synthetic sales history (src/service/history_gen.c):
 * the same seed gives the same bytes, another seed others; the counts of rows,
 * receipts, returns and cards; the four figures measured; refused params. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/history_gen.h"

typedef struct out {
    char *sales, *cards;
    size_t sales_n, cards_n;
    kp_history_stats st;
} out;

static void generate(const kp_history_params *p, out *o)
{
    FILE *s = open_memstream(&o->sales, &o->sales_n);
    FILE *c = open_memstream(&o->cards, &o->cards_n);
    assert_non_null(s);
    assert_non_null(c);
    kp_error e = {0};
    assert_int_equal(kp_history_generate(p, s, c, NULL, NULL, &o->st, &e), KP_OK);
    fclose(s);
    fclose(c);
}

static void release(out *o)
{
    free(o->sales);
    free(o->cards);
}

static size_t count_lines(const char *text, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += text[i] == '\n';
    return k;
}

static size_t count_word(const char *text, const char *word)
{
    size_t k = 0;
    for (const char *at = strstr(text, word); at; at = strstr(at + 1, word)) k++;
    return k;
}

static void small(kp_history_params *p, uint64_t seed)
{
    kp_history_defaults(p);
    p->seed = seed;
    p->members = 400;
    p->non_members = 600;
}

static void test_same_seed_same_bytes(void **state)
{
    (void)state;
    kp_history_params p;
    small(&p, 11);
    out a = {0}, b = {0};
    generate(&p, &a);
    generate(&p, &b);
    assert_int_equal(a.sales_n, b.sales_n);
    assert_memory_equal(a.sales, b.sales, a.sales_n);
    assert_int_equal(a.cards_n, b.cards_n);
    assert_memory_equal(a.cards, b.cards, a.cards_n);
    release(&a);
    release(&b);
}

static void test_other_seed_other_bytes(void **state)
{
    (void)state;
    kp_history_params p;
    small(&p, 11);
    out a = {0}, b = {0};
    generate(&p, &a);
    p.seed = 12;
    generate(&p, &b);
    assert_true(a.sales_n != b.sales_n || memcmp(a.sales, b.sales, a.sales_n) != 0);
    release(&a);
    release(&b);
}

static void test_counts_and_figures(void **state)
{
    (void)state;
    kp_history_params p;
    small(&p, 5);
    p.returns = 0.05;
    out o = {0};
    generate(&p, &o);
    assert_int_equal(count_lines(o.sales, o.sales_n), o.st.rows + 1);
    assert_int_equal(count_word(o.sales, ",return,"), o.st.returns);
    assert_true(o.st.rows >= o.st.receipts + o.st.returns);
    assert_true(o.st.rows <= 5 * o.st.receipts + o.st.returns);
    /* receipts: idle members 1, others 2..6; non-members 1..6 */
    assert_true(o.st.receipts >= 148 + 252 * 2 + 600);
    assert_true(o.st.receipts <= 148 + 252 * 6 + 600 * 6);
    double r = (double)o.st.returns / (double)o.st.receipts;
    assert_true(r > 0.045 && r < 0.0505);
    assert_int_equal(o.st.cards, 400);
    assert_int_equal(count_lines(o.cards, o.cards_n), 401);
    assert_true(strncmp(o.cards, "number,state\nHG-00000001,active\n", 32) == 0);
    assert_true(strncmp(o.sales, "at,store,receipt,card,kind,sku,category,amount,qty,customer\n",
                        60) == 0);
    assert_true(o.st.member_ratio > 2.6 * 0.995 && o.st.member_ratio < 2.6 * 1.005);
    assert_true(o.st.top_revenue > 0.245 && o.st.top_revenue < 0.255);
    assert_true(o.st.idle_share > 0.365 && o.st.idle_share < 0.375);
    assert_true(o.st.idle_revenue > 0.055 && o.st.idle_revenue < 0.065);
    assert_true(o.st.recent_share > 0.695 && o.st.recent_share < 0.705);
    release(&o);
}

static void test_refused_params(void **state)
{
    (void)state;
    static const struct {
        const char *field;
        int64_t members;
        int months, start_month, start_day, stores;
        double returns;
    } cases[] = {
        {"--months", 400, 12, 1, 1, 3, 0.02},   {"--start", 400, 24, 2, 30, 3, 0.02},
        {"--returns", 400, 24, 1, 1, 3, 0.6},   {"--stores", 400, 24, 1, 1, 0, 0.02},
        {"--members", 9, 24, 1, 1, 3, 0.02},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kp_history_params p;
        kp_error e = {0};
        small(&p, 1);
        p.members = cases[i].members;
        p.months = cases[i].months;
        p.start_month = cases[i].start_month;
        p.start_day = cases[i].start_day;
        p.stores = cases[i].stores;
        p.returns = cases[i].returns;
        assert_int_equal(kp_history_check(&p, &e), KP_ERR_INVALID);
        assert_string_equal(e.field, cases[i].field);
    }
    kp_history_params p;
    kp_error e = {0};
    small(&p, 1);
    assert_int_equal(kp_history_check(&p, &e), KP_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_seed_same_bytes),
        cmocka_unit_test(test_other_seed_other_bytes),
        cmocka_unit_test(test_counts_and_figures),
        cmocka_unit_test(test_refused_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
