/* test_money.c: integer rates, rounding, percent parsing, time parsing, Luhn. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include <kopilka/card_number.h>
#include <kopilka/clock.h>
#include <kopilka/money.h>

static void test_muldiv_rounds_as_configured(void **state)
{
    (void)state;
    assert_int_equal(kp_muldiv(1999, 400, 10000 * 100, KP_ROUND_DOWN), 0);
    assert_int_equal(kp_muldiv(1000000, 400, 10000 * 100, KP_ROUND_DOWN), 400);
    assert_int_equal(kp_muldiv(1250, 1, 100, KP_ROUND_DOWN), 12);
    assert_int_equal(kp_muldiv(1250, 1, 100, KP_ROUND_HALF_UP), 13);
    assert_int_equal(kp_muldiv(1249, 1, 100, KP_ROUND_HALF_UP), 12);
    assert_int_equal(kp_muldiv(1201, 1, 100, KP_ROUND_UP), 13);
    assert_int_equal(kp_muldiv(1200, 1, 100, KP_ROUND_UP), 12);
}

static void test_muldiv_does_not_overflow_on_large_amounts(void **state)
{
    (void)state;
    /* 2*10^15 minor units at 60 %: the product passes 2^63 inside. */
    assert_int_equal(kp_muldiv(2000000000000000LL, 6000, 10000, KP_ROUND_DOWN), 1200000000000000LL);
}

static void test_percent_parse_accepts_two_decimals_only(void **state)
{
    (void)state;
    int32_t bp = 0;
    assert_true(kp_percent_parse("12", &bp));
    assert_int_equal(bp, 1200);
    assert_true(kp_percent_parse("12.5", &bp));
    assert_int_equal(bp, 1250);
    assert_true(kp_percent_parse("0.01", &bp));
    assert_int_equal(bp, 1);
    assert_false(kp_percent_parse("12.555", &bp));
    assert_false(kp_percent_parse("-1", &bp));
    assert_false(kp_percent_parse("1e2", &bp));
    assert_false(kp_percent_parse("", &bp));
    assert_false(kp_percent_parse("12.", &bp));
    char out[16];
    kp_percent_format(1250, out, sizeof out);
    assert_string_equal(out, "12.5%");
    kp_percent_format(400, out, sizeof out);
    assert_string_equal(out, "4%");
}

static void test_money_format(void **state)
{
    (void)state;
    char out[32];
    kp_money_format(1900000, out, sizeof out);
    assert_string_equal(out, "19000.00");
    kp_money_format(-5, out, sizeof out);
    assert_string_equal(out, "-0.05");
}

static void test_time_parse_and_format_round_trip(void **state)
{
    (void)state;
    kp_time t;
    assert_true(kp_time_parse("2026-11-23T10:00:00Z", &t));
    assert_int_equal(t, 1795428000);
    char out[32];
    kp_time_format(t, out, sizeof out);
    assert_string_equal(out, "2026-11-23T10:00:00Z");
    kp_time t2;
    assert_true(kp_time_parse("2026-11-23T13:00:00.123+03:00", &t2));
    assert_int_equal(t, t2);
    assert_false(kp_time_parse("2026-02-30T00:00:00Z", &t));
    assert_false(kp_time_parse("2026-11-23", &t));
    assert_false(kp_time_parse("2026-11-23T10:00:00", &t));
}

static void test_add_months_clamps_the_day(void **state)
{
    (void)state;
    kp_time t, want;
    assert_true(kp_time_parse("2026-01-31T12:00:00Z", &t));
    assert_true(kp_time_parse("2026-02-28T12:00:00Z", &want));
    assert_int_equal(kp_time_add_months(t, 1), want);
    assert_true(kp_time_parse("2026-04-30T12:00:00Z", &want));
    assert_int_equal(kp_time_add_months(t, 3), want);
}

static void test_card_numbers_carry_a_luhn_digit(void **state)
{
    (void)state;
    assert_true(kp_card_number_valid("79927398713")); /* the classic Luhn example */
    assert_false(kp_card_number_valid("79927398710"));
    assert_false(kp_card_number_valid("7992739871a"));
    for (int i = 0; i < 100; i++) {
        char n[KP_CARD_DIGITS + 1];
        kp_card_number_generate("20", n);
        assert_int_equal(strlen(n), KP_CARD_DIGITS);
        assert_true(kp_card_number_valid(n));
        /* a single changed digit is always caught */
        n[5] = n[5] == '9' ? '0' : (char)(n[5] + 1);
        assert_false(kp_card_number_valid(n));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_muldiv_rounds_as_configured),
        cmocka_unit_test(test_muldiv_does_not_overflow_on_large_amounts),
        cmocka_unit_test(test_percent_parse_accepts_two_decimals_only),
        cmocka_unit_test(test_money_format),
        cmocka_unit_test(test_time_parse_and_format_round_trip),
        cmocka_unit_test(test_add_months_clamps_the_day),
        cmocka_unit_test(test_card_numbers_carry_a_luhn_digit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
