/* test_rfm.c: RFM quintile scores, ties, the R x F segment map and its
 * names (include/kopilka/rfm.h), each against answers worked out by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include <kopilka/rfm.h>

static kp_rfm_member mem(int32_t days, int32_t receipts, int64_t spend)
{
    return (kp_rfm_member){.monetary = spend, .frequency = receipts, .recency_days = days};
}

/* Five members, each figure a permutation: every score 1..5 once. */
static void test_five_members_score_one_to_five(void **state)
{
    (void)state;
    kp_rfm_member in[5] = {mem(3, 9, 500), mem(40, 1, 100), mem(10, 4, 900), mem(200, 2, 300),
                           mem(90, 6, 700)};
    kp_rfm_set set = {0};
    for (int i = 0; i < 5; i++) assert_int_equal(kp_rfm_set_add(&set, in[i]), KP_OK);
    kp_rfm_cutoffs c;
    kp_rfm_cut(&set, &c);
    assert_int_equal(c.n, 5);
    /* Sorted best last: recency days 200 90 40 10 3 -> boundaries 200 90 40 10. */
    int64_t r[4] = {200, 90, 40, 10}, f[4] = {1, 2, 4, 6}, m[4] = {100, 300, 500, 700};
    assert_memory_equal(c.recency, r, sizeof r);
    assert_memory_equal(c.frequency, f, sizeof f);
    assert_memory_equal(c.monetary, m, sizeof m);
    int want[5][3] = {{5, 5, 3}, {3, 1, 1}, {4, 3, 5}, {1, 2, 2}, {2, 4, 4}};
    for (int i = 0; i < 5; i++) {
        kp_rfm_score s = kp_rfm_score_of(&c, &in[i]);
        assert_int_equal(s.r, want[i][0]);
        assert_int_equal(s.f, want[i][1]);
        assert_int_equal(s.m, want[i][2]);
    }
    kp_rfm_set_release(&set);
}

/* Ten members: two a fifth; equal values score alike and go down. */
static void test_tens_and_ties(void **state)
{
    (void)state;
    kp_rfm_set set = {0};
    /* Frequency: seven members with 1 receipt, then 2, 3, 8. */
    int32_t fr[10] = {1, 1, 1, 1, 1, 1, 1, 2, 3, 8};
    for (int i = 0; i < 10; i++)
        assert_int_equal(kp_rfm_set_add(&set, mem(i, fr[i], (i + 1) * 100)), KP_OK);
    kp_rfm_cutoffs c;
    kp_rfm_cut(&set, &c);
    /* Sorted frequencies 1 1 1 1 1 1 1 2 3 8: positions 1, 3, 5, 7 -> 1 1 1 2. */
    int64_t f[4] = {1, 1, 1, 2};
    assert_memory_equal(c.frequency, f, sizeof f);
    kp_rfm_member one = mem(0, 1, 0), two = mem(0, 2, 0), three = mem(0, 3, 0);
    assert_int_equal(kp_rfm_score_of(&c, &one).f, 1);
    assert_int_equal(kp_rfm_score_of(&c, &two).f, 4);
    assert_int_equal(kp_rfm_score_of(&c, &three).f, 5);
    /* Spend 100..1000: boundaries 200 400 600 800; 200 -> 1, 201 -> 2, 1000 -> 5. */
    int64_t m[4] = {200, 400, 600, 800};
    assert_memory_equal(c.monetary, m, sizeof m);
    kp_rfm_member a = mem(0, 1, 200), b = mem(0, 1, 201), z = mem(0, 1, 1000);
    assert_int_equal(kp_rfm_score_of(&c, &a).m, 1);
    assert_int_equal(kp_rfm_score_of(&c, &b).m, 2);
    assert_int_equal(kp_rfm_score_of(&c, &z).m, 5);
    /* Recency 0..9 days: the freshest two (0, 1) score 5, 8 and 9 score 1. */
    kp_rfm_member d0 = mem(0, 1, 0), d1 = mem(1, 1, 0), d2 = mem(2, 1, 0), d9 = mem(9, 1, 0);
    assert_int_equal(kp_rfm_score_of(&c, &d0).r, 5);
    assert_int_equal(kp_rfm_score_of(&c, &d1).r, 5);
    assert_int_equal(kp_rfm_score_of(&c, &d2).r, 4);
    assert_int_equal(kp_rfm_score_of(&c, &d9).r, 1);
    kp_rfm_set_release(&set);
}

static void test_empty_and_limit(void **state)
{
    (void)state;
    kp_rfm_set set = {.limit = 2};
    kp_rfm_cutoffs c;
    kp_rfm_cut(&set, &c);
    assert_int_equal(c.n, 0);
    kp_rfm_member x = mem(5, 5, 5);
    kp_rfm_score s = kp_rfm_score_of(&c, &x);
    assert_int_equal(s.r + s.f + s.m, 3);
    assert_int_equal(kp_rfm_set_add(&set, x), KP_OK);
    assert_int_equal(kp_rfm_set_add(&set, x), KP_OK);
    assert_int_equal(kp_rfm_set_add(&set, x), KP_ERR_LIMIT);
    assert_int_equal(set.n, 2);
    /* One member: every boundary is its own value, so it scores 1. */
    set.n = 1;
    kp_rfm_cut(&set, &c);
    s = kp_rfm_score_of(&c, &x);
    assert_int_equal(s.r * 100 + s.f * 10 + s.m, 111);
    kp_rfm_set_release(&set);
}

/* The whole map as docs/analytics.md's table draws it, R 5 down to 1. */
static void test_segment_map_and_names(void **state)
{
    (void)state;
    const char *table[5][5] = {
        {"new", "potential_loyalists", "potential_loyalists", "champions", "champions"},
        {"promising", "potential_loyalists", "potential_loyalists", "loyal", "loyal"},
        {"about_to_sleep", "about_to_sleep", "need_attention", "loyal", "loyal"},
        {"hibernating", "hibernating", "at_risk", "at_risk", "cant_lose"},
        {"lost", "lost", "at_risk", "at_risk", "cant_lose"},
    };
    int seen[KP_RFM_SEGMENTS] = {0};
    for (int r = 5; r >= 1; r--)
        for (int f = 1; f <= 5; f++) {
            kp_rfm_segment s = kp_rfm_segment_of(r, f);
            assert_string_equal(kp_rfm_segment_name(s), table[5 - r][f - 1]);
            assert_int_equal(kp_rfm_segment_parse(table[5 - r][f - 1]), s);
            seen[s]++;
        }
    for (int s = 0; s < KP_RFM_SEGMENTS; s++) assert_true(seen[s] > 0); /* all eleven used */
    assert_int_equal(kp_rfm_segment_of(0, 9), kp_rfm_segment_of(1, 5));
    assert_int_equal(kp_rfm_segment_parse("gold"), KP_RFM_SEGMENTS);
    assert_string_equal(kp_rfm_segment_name(KP_RFM_SEGMENTS), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_five_members_score_one_to_five),
        cmocka_unit_test(test_tens_and_ties),
        cmocka_unit_test(test_empty_and_limit),
        cmocka_unit_test(test_segment_map_and_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
