/* test_engine.c: the engine prices seed 004 case 1 baskets to the point. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include <kopilka/engine.h>
#include <kopilka/program.h>

static const char case1[] =
    "{\"name\":\"case1\",\"rules\":["
    "{\"id\":\"labor\",\"kind\":\"earn_percent\",\"category\":\"labor\",\"percent\":4},"
    "{\"id\":\"parts\",\"kind\":\"earn_percent\",\"category\":\"parts\",\"percent\":12},"
    "{\"id\":\"first\",\"kind\":\"first_purchase_min\",\"points\":1000},"
    "{\"id\":\"cap\",\"kind\":\"burn_limit\",\"category\":\"labor\",\"percent\":10}]}";

typedef struct fixture {
    kp_program program;
    kp_account account;
    kp_basket basket;
    kp_quote quote;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    kp_error e;
    assert_int_equal(kp_program_parse(case1, strlen(case1), &f->program, &e), KP_OK);
    f->account.id = 1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

static void add_line(kp_basket *b, const char *sku, const char *cat, int64_t amount, bool promo)
{
    kp_line *l = &b->lines[b->n_lines++];
    memset(l, 0, sizeof *l);
    strcpy(l->sku, sku); /* test-only: literals that fit */
    strcpy(l->category, cat);
    l->amount_minor = amount;
    l->qty = 1;
    l->promo = promo;
}

static void give_points(kp_account *a, int64_t points, kp_time expires)
{
    kp_lot *l = &a->lots[a->n_lots++];
    memset(l, 0, sizeof *l);
    l->id = (int64_t)a->n_lots;
    strcpy(l->kind, "regular");
    l->amount = l->remaining = points;
    l->expires_at = expires;
    a->balance += points;
}

static void test_first_visit_is_raised_to_1000(void **state)
{
    fixture *f = *state;
    add_line(&f->basket, "work", "labor", 500000, false);
    add_line(&f->basket, "part", "parts", 200000, false);
    kp_error e;
    assert_int_equal(kp_engine_price(&f->program, &f->account, &f->basket, 1000, &f->quote, &e), KP_OK);
    /* 4 % of 5000 = 200, 12 % of 2000 = 240: 440, raised to 1000. */
    assert_int_equal(f->quote.earned, 1000);
    assert_int_equal(f->quote.lines[0].earned + f->quote.lines[1].earned, 1000);
    assert_int_equal(f->quote.n_explain, 3);
    assert_int_equal(f->quote.explain[0].points, 200);
    assert_int_equal(f->quote.explain[1].points, 240);
    assert_int_equal(f->quote.explain[2].points, 560);
}

static void test_second_visit_burn_clamped_by_balance_earns_on_money(void **state)
{
    fixture *f = *state;
    f->account.purchases = 1;
    give_points(&f->account, 1000, KP_TIME_NEVER);
    add_line(&f->basket, "work", "labor", 2000000, false);
    f->basket.burn_request = 5000;
    kp_error e;
    assert_int_equal(kp_engine_price(&f->program, &f->account, &f->basket, 1000, &f->quote, &e), KP_OK);
    assert_int_equal(f->quote.burned, 1000);
    assert_int_equal(f->quote.lines[0].points_minor, 100000);
    assert_int_equal(f->quote.earned, 760); /* 4 % of 19 000.00 */
    assert_int_equal(f->quote.balance_after, 760);
    assert_non_null(strstr(f->quote.burn_limited_by, "balance"));
}

static void test_burn_cap_is_ten_percent_of_labor_and_parts_are_not_payable(void **state)
{
    fixture *f = *state;
    f->account.purchases = 3;
    give_points(&f->account, 100000, KP_TIME_NEVER);
    add_line(&f->basket, "work", "labor", 1234567, false);
    add_line(&f->basket, "part", "parts", 900000, false);
    f->basket.burn_request = 100000;
    kp_error e;
    assert_int_equal(kp_engine_price(&f->program, &f->account, &f->basket, 1000, &f->quote, &e), KP_OK);
    assert_int_equal(f->quote.burned, 1234); /* floor(10 % of 12 345.67) */
    assert_int_equal(f->quote.lines[1].points_minor, 0);
    assert_non_null(strstr(f->quote.burn_limited_by, "cap"));
    /* labour paid in money: 1234567 - 123400 = 1111167 -> 4 % = 444.47 -> 444; parts 12 % of 9000 = 1080 */
    assert_int_equal(f->quote.earned, 444 + 1080);
}

static void test_promo_lines_cannot_be_paid_with_points(void **state)
{
    fixture *f = *state;
    f->account.purchases = 1;
    give_points(&f->account, 5000, KP_TIME_NEVER);
    add_line(&f->basket, "promo-work", "labor", 1000000, true);
    f->basket.burn_request = 500;
    kp_error e;
    assert_int_equal(kp_engine_price(&f->program, &f->account, &f->basket, 1000, &f->quote, &e), KP_OK);
    assert_int_equal(f->quote.burned, 0);
    assert_int_equal(f->quote.earned, 400);
}

static void test_burn_takes_earliest_expiry_first_never_last(void **state)
{
    fixture *f = *state;
    f->account.purchases = 1;
    give_points(&f->account, 50, 5000);
    give_points(&f->account, 70, 9000);
    give_points(&f->account, 500, KP_TIME_NEVER);
    add_line(&f->basket, "work", "labor", 2000000, false);
    f->basket.burn_request = 100;
    kp_error e;
    assert_int_equal(kp_engine_price(&f->program, &f->account, &f->basket, 1000, &f->quote, &e), KP_OK);
    assert_int_equal(f->quote.n_takes, 2);
    assert_int_equal(f->quote.takes[0].lot_id, 1);
    assert_int_equal(f->quote.takes[0].points, 50);
    assert_int_equal(f->quote.takes[1].lot_id, 2);
    assert_int_equal(f->quote.takes[1].points, 50);
}

static void test_expired_and_pending_lots_are_not_spendable(void **state)
{
    fixture *f = *state;
    f->account.purchases = 1;
    give_points(&f->account, 50, 500); /* expired at 500 */
    give_points(&f->account, 70, KP_TIME_NEVER);
    f->account.lots[1].active_from = 2000; /* pending until 2000 */
    assert_int_equal(kp_account_spendable(&f->account, 1000), 0);
    assert_int_equal(kp_account_spendable(&f->account, 3000), 70);
}

static void test_zero_basket_earns_nothing_even_on_first_visit(void **state)
{
    fixture *f = *state;
    add_line(&f->basket, "free", "labor", 0, false);
    kp_error e;
    assert_int_equal(kp_engine_price(&f->program, &f->account, &f->basket, 1000, &f->quote, &e), KP_OK);
    assert_int_equal(f->quote.earned, 0);
}

static void test_bad_baskets_are_refused_with_the_field(void **state)
{
    fixture *f = *state;
    kp_error e;
    assert_int_equal(kp_engine_price(&f->program, &f->account, &f->basket, 1000, &f->quote, &e),
                     KP_ERR_INVALID);
    add_line(&f->basket, "x", "labor", -5, false);
    assert_int_equal(kp_engine_price(&f->program, &f->account, &f->basket, 1000, &f->quote, &e),
                     KP_ERR_INVALID);
    assert_string_equal(e.field, "lines[0].amount");
}

static void test_earned_points_split_over_lines_add_up_exactly(void **state)
{
    fixture *f = *state;
    f->account.purchases = 1;
    for (int i = 0; i < 7; i++) add_line(&f->basket, "p", "parts", 3333, false);
    kp_error e;
    assert_int_equal(kp_engine_price(&f->program, &f->account, &f->basket, 1000, &f->quote, &e), KP_OK);
    /* 12 % of 233.31 = 27.99 -> 27; no line alone reaches a point. */
    assert_int_equal(f->quote.earned, 27);
    int64_t sum = 0;
    for (size_t i = 0; i < 7; i++) sum += f->quote.lines[i].earned;
    assert_int_equal(sum, 27);
}

static void test_program_errors_name_rule_and_field(void **state)
{
    (void)state;
    kp_program *p = malloc(sizeof *p);
    kp_error e;
    const char *bad = "{\"name\":\"x\",\"rules\":[{\"id\":\"a\",\"kind\":\"earn_percent\",\"percent\":4.5}]}";
    assert_int_equal(kp_program_parse(bad, strlen(bad), p, &e), KP_ERR_INVALID);
    assert_string_equal(e.field, "rules[0].percent");
    const char *typo = "{\"name\":\"x\",\"rules\":[{\"id\":\"a\",\"kind\":\"earn_percnt\"}]}";
    assert_int_equal(kp_program_parse(typo, strlen(typo), p, &e), KP_ERR_INVALID);
    assert_string_equal(e.field, "rules[0].kind");
    const char *dup = "{\"name\":\"x\",\"rules\":[{\"id\":\"a\",\"kind\":\"first_purchase_min\",\"points\":1},"
                      "{\"id\":\"a\",\"kind\":\"first_purchase_min\",\"points\":1}]}";
    assert_int_equal(kp_program_parse(dup, strlen(dup), p, &e), KP_ERR_INVALID);
    assert_string_equal(e.field, "rules[1].id");
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_first_visit_is_raised_to_1000, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_visit_burn_clamped_by_balance_earns_on_money, setup, teardown),
        cmocka_unit_test_setup_teardown(test_burn_cap_is_ten_percent_of_labor_and_parts_are_not_payable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_promo_lines_cannot_be_paid_with_points, setup, teardown),
        cmocka_unit_test_setup_teardown(test_burn_takes_earliest_expiry_first_never_last, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expired_and_pending_lots_are_not_spendable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zero_basket_earns_nothing_even_on_first_visit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_baskets_are_refused_with_the_field, setup, teardown),
        cmocka_unit_test_setup_teardown(test_earned_points_split_over_lines_add_up_exactly, setup, teardown),
        cmocka_unit_test(test_program_errors_name_rule_and_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
