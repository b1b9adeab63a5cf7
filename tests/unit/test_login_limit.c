/*
 * test_login_limit.c: the login limits' counter (src/server/login_limit.h):
 * a key refused once it holds `limit` attempts within the window, with the
 * seconds until the oldest leaves it; the first refusal of a run told
 * apart; attempts given back and cleared; keys apart from one another; the
 * window sliding; and a full table making room by the longest-untried key,
 * never refusing a newcomer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>

#include "server/login_limit.h"

#define T0 ((kp_time)1790000000)

static void test_the_limit_refuses_with_the_time_until_the_oldest_leaves(void **state)
{
    (void)state;
    kp_attempts *a = kp_attempts_new(3, 900);
    int64_t retry;
    bool first;
    for (int i = 0; i < 3; i++)
        assert_true(kp_attempts_take(a, "anna", T0 + i * 10, &retry, &first));
    assert_false(kp_attempts_take(a, "anna", T0 + 100, &retry, &first));
    assert_int_equal(retry, 800); /* the attempt at T0 leaves at T0 + 900 */
    assert_true(first);
    assert_false(kp_attempts_take(a, "anna", T0 + 200, &retry, &first));
    assert_int_equal(retry, 700);
    assert_false(first); /* only the first refusal of the run is to be audited */
    /* Another key is counted apart. */
    assert_true(kp_attempts_take(a, "olga", T0 + 200, &retry, &first));
    /* The window slides: the oldest has left at T0 + 900. */
    assert_true(kp_attempts_take(a, "anna", T0 + 900, &retry, &first));
    assert_false(kp_attempts_take(a, "anna", T0 + 901, &retry, &first));
    assert_int_equal(retry, 9);
    assert_true(first);
    kp_attempts_free(a);
}

static void test_given_back_and_cleared_attempts_do_not_count(void **state)
{
    (void)state;
    kp_attempts *a = kp_attempts_new(2, 900);
    int64_t retry;
    bool first;
    for (int i = 0; i < 10; i++) {
        assert_true(kp_attempts_take(a, "10.0.0.1", T0, &retry, &first));
        kp_attempts_give_back(a, "10.0.0.1");
    }
    assert_true(kp_attempts_take(a, "10.0.0.1", T0, &retry, &first));
    assert_true(kp_attempts_take(a, "10.0.0.1", T0, &retry, &first));
    assert_false(kp_attempts_take(a, "10.0.0.1", T0, &retry, &first));
    assert_int_equal(retry, 900);
    kp_attempts_clear(a, "10.0.0.1");
    assert_true(kp_attempts_take(a, "10.0.0.1", T0, &retry, &first));
    /* An empty key (an address not known) is never limited. */
    for (int i = 0; i < 10; i++) assert_true(kp_attempts_take(a, "", T0, &retry, &first));
    kp_attempts_free(a);
}

static void test_a_full_table_makes_room_and_never_refuses_a_newcomer(void **state)
{
    (void)state;
    kp_attempts *a = kp_attempts_new(1, 900);
    int64_t retry;
    bool first;
    char key[32];
    /* Many more keys than the table holds, each at its limit. */
    for (int i = 0; i < 20000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        assert_true(kp_attempts_take(a, key, T0 + i, &retry, &first));
    }
    /* The latest keys are still counted; a new one gets in. */
    assert_false(kp_attempts_take(a, "k19999", T0 + 20000, &retry, &first));
    assert_true(kp_attempts_take(a, "newcomer", T0 + 20000, &retry, &first));
    kp_attempts_free(a);
}

static void test_bad_arguments_make_no_counter(void **state)
{
    (void)state;
    assert_null(kp_attempts_new(0, 900));
    assert_null(kp_attempts_new(KP_ATTEMPTS_LIMIT_MAX + 1, 900));
    assert_null(kp_attempts_new(5, 0));
    kp_login_limits *l = kp_login_limits_new();
    assert_non_null(l);
    kp_login_limits_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_limit_refuses_with_the_time_until_the_oldest_leaves),
        cmocka_unit_test(test_given_back_and_cleared_attempts_do_not_count),
        cmocka_unit_test(test_a_full_table_makes_room_and_never_refuses_a_newcomer),
        cmocka_unit_test(test_bad_arguments_make_no_counter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
