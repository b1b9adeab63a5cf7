/*
 * test_rules.c: the engine's rule kinds, each against exact figures: burn
 * caps of several point kinds on one basket, rate steps by receipt amount,
 * promotional windows, tier multipliers and discounts, the minimum balance
 * to burn, fixed and cumulative discounts (seed 003), the joining minimum
 * (seed 001), the annual spend bonus (seed 000), and the program file's
 * errors for the new kinds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopilka/clock.h>
#include <kopilka/engine.h>
#include <kopilka/program.h>

typedef struct fixture {
    kp_program program;
    kp_account account;
    kp_basket basket;
    kp_quote quote;
    kp_error e;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->account.id = 1;
    f->account.purchases = 5;
    f->account.registered = true;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

static void load(fixture *f, const char *json)
{
    kp_err err = kp_program_parse(json, strlen(json), &f->program, &f->e);
    if (err) fail_msg("program refused: %s: %s", f->e.field, f->e.message);
}

static void line(fixture *f, const char *sku, const char *category, int64_t amount)
{
    kp_line *l = &f->basket.lines[f->basket.n_lines++];
    memset(l, 0, sizeof *l);
    snprintf(l->sku, sizeof l->sku, "%s", sku);
    snprintf(l->category, sizeof l->category, "%s", category);
    l->amount_minor = amount;
    l->qty = 1;
}

static void lot(fixture *f, const char *kind, int64_t points, kp_time expires)
{
    kp_lot *l = &f->account.lots[f->account.n_lots++];
    memset(l, 0, sizeof *l);
    l->id = (int64_t)f->account.n_lots;
    snprintf(l->kind, sizeof l->kind, "%s", kind);
    l->amount = l->remaining = points;
    l->expires_at = expires;
    f->account.balance += points;
}

static void price_at(fixture *f, kp_time now)
{
    kp_err err = kp_engine_price(&f->program, &f->account, &f->basket, now, &f->quote, &f->e);
    if (err) fail_msg("price failed: %s: %s", f->e.field, f->e.message);
}

static const kp_explain *explained(const kp_quote *q, const char *rule)
{
    for (size_t i = 0; i < q->n_explain; i++)
        if (strcmp(q->explain[i].rule, rule) == 0) return &q->explain[i];
    return NULL;
}

#define NOW 1700000000 /* 2023-11-14 */
#define MONTHS3 (NOW + 90 * 86400)

/* Seed 004: regular points pay at most 10 % of labour, birthday premium
 * points at most 50 %. */
static const char kinds_program[] =
    "{\"name\":\"kinds\",\"point_kinds\":[{\"name\":\"regular\"},"
    "{\"name\":\"premium\",\"ttl_months\":3}],"
    "\"rules\":[{\"id\":\"labor-4\",\"kind\":\"earn_percent\",\"category\":\"labor\",\"percent\":4}"
    ","
    "{\"id\":\"regular-10\",\"kind\":\"burn_limit\",\"category\":\"labor\","
    "\"point_kind\":\"regular\",\"percent\":10},"
    "{\"id\":\"premium-50\",\"kind\":\"burn_limit\",\"category\":\"labor\","
    "\"point_kind\":\"premium\",\"percent\":50}]}";

static void test_premium_then_regular_each_within_its_own_cap(void **state)
{
    fixture *f = *state;
    load(f, kinds_program);
    lot(f, "premium", 2000, MONTHS3);
    lot(f, "regular", 5000, KP_TIME_NEVER);
    line(f, "work", "labor", 1000000); /* 10 000.00 of labour */
    f->basket.burn_request = 10000;
    price_at(f, NOW);
    /* premium pays its 2000 (cap 5000), regular its own cap of 1000. */
    assert_int_equal(f->quote.burned, 3000);
    assert_int_equal(f->quote.n_takes, 2);
    assert_int_equal(f->quote.takes[0].lot_id, 1);
    assert_int_equal(f->quote.takes[0].points, 2000);
    assert_int_equal(f->quote.takes[1].lot_id, 2);
    assert_int_equal(f->quote.takes[1].points, 1000);
    assert_int_equal(f->quote.lines[0].points_minor, 300000);
    assert_non_null(strstr(f->quote.burn_limited_by, "regular-10"));
    /* Earn on what was paid in money: 4 % of 7000.00. */
    assert_int_equal(f->quote.earned, 280);
}

static void test_kinds_together_pay_at_most_the_largest_cap(void **state)
{
    fixture *f = *state;
    load(f, kinds_program);
    lot(f, "premium", 8000, MONTHS3);
    lot(f, "regular", 5000, KP_TIME_NEVER);
    line(f, "work", "labor", 1000000);
    f->basket.burn_request = 10000;
    price_at(f, NOW);
    /* Premium fills the pot's 50 %; regular's 10 % does not add to it. */
    assert_int_equal(f->quote.burned, 5000);
    assert_int_equal(f->quote.n_takes, 1);
    assert_int_equal(f->quote.takes[0].points, 5000);
}

static void test_regular_alone_pays_ten_percent(void **state)
{
    fixture *f = *state;
    load(f, kinds_program);
    lot(f, "regular", 5000, KP_TIME_NEVER);
    line(f, "work", "labor", 1000000);
    line(f, "oil", "parts", 500000);
    f->basket.burn_request = 10000;
    price_at(f, NOW);
    assert_int_equal(f->quote.burned, 1000);
    assert_int_equal(f->quote.lines[1].points_minor, 0); /* parts: no rule, not payable */
    const kp_explain *x = explained(&f->quote, "premium-50");
    assert_non_null(x);
    assert_int_equal(x->points, 5000); /* the premium cap is still explained */
}

static void test_expired_premium_is_not_spent(void **state)
{
    fixture *f = *state;
    load(f, kinds_program);
    lot(f, "premium", 2000, NOW - 1);
    lot(f, "regular", 5000, KP_TIME_NEVER);
    line(f, "work", "labor", 1000000);
    f->basket.burn_request = 10000;
    price_at(f, NOW);
    assert_int_equal(f->quote.burned, 1000);
    assert_int_equal(f->quote.takes[0].lot_id, 2);
}

static void test_program_sets_premium_validity_from_kind(void **state)
{
    fixture *f = *state;
    load(f, kinds_program);
    const kp_point_kind *k = kp_program_kind(&f->program, "premium");
    assert_non_null(k);
    kp_time from, until;
    kp_time t;
    assert_true(kp_time_parse("2026-03-14T00:00:00Z", &t));
    kp_validity_apply(&k->validity, t, &from, &until);
    kp_time want;
    assert_true(kp_time_parse("2026-06-14T00:00:00Z", &want));
    assert_int_equal(from, t);
    assert_int_equal(until, want);
}

/* Seed 000: a bigger receipt earns a bigger rate. */
static void test_rate_steps_by_receipt_amount(void **state)
{
    fixture *f = *state;
    load(f, "{\"name\":\"steps\",\"rules\":[{\"id\":\"bigger\",\"kind\":\"earn_percent\","
            "\"steps\":[{\"min_amount\":0,\"percent\":3},{\"min_amount\":5000000,\"percent\":5},"
            "{\"min_amount\":10000000,\"percent\":\"7.5\"}]}]}");
    line(f, "a", "", 4999999);
    price_at(f, NOW);
    assert_int_equal(f->quote.earned, 1499); /* 3 % of 49 999.99 */
    f->basket.lines[0].amount_minor = 5000000;
    price_at(f, NOW);
    assert_int_equal(f->quote.earned, 2500); /* 5 % of 50 000.00 */
    assert_int_equal(f->quote.explain[0].rate_bp, 500);
    line(f, "b", "", 5000000);
    price_at(f, NOW);
    assert_int_equal(f->quote.earned, 7500); /* 7.5 % of 100 000.00 */
    assert_non_null(strstr(f->quote.explain[0].text, "receipts from 100000.00"));
}

/* Seed 001: 11 % normally, 30 % inside a promotional window. */
static void test_promotional_window_beats_the_standing_rate(void **state)
{
    fixture *f = *state;
    load(f, "{\"name\":\"gift\",\"rules\":["
            "{\"id\":\"base-11\",\"kind\":\"earn_percent\",\"percent\":11},"
            "{\"id\":\"promo-30\",\"kind\":\"earn_percent\",\"percent\":30,"
            "\"starts\":\"2026-12-20\",\"ends\":\"2026-12-25\"}]}");
    line(f, "vase", "gifts", 100000);
    kp_time t;
    assert_true(kp_time_parse("2026-12-19T23:59:59Z", &t));
    price_at(f, t);
    assert_int_equal(f->quote.earned, 110);
    assert_true(kp_time_parse("2026-12-20T00:00:00Z", &t));
    price_at(f, t);
    assert_int_equal(f->quote.earned, 300);
    assert_string_equal(f->quote.explain[0].rule, "promo-30");
    assert_true(kp_time_parse("2026-12-25T00:00:00Z", &t));
    price_at(f, t);
    assert_int_equal(f->quote.earned, 110);
}

static const char tiers_program[] =
    "{\"name\":\"tiers\",\"tiers\":{\"window_days\":365,\"levels\":["
    "{\"name\":\"Silver\",\"min_spend\":0},"
    "{\"name\":\"Gold\",\"min_spend\":10000000,\"earn_multiplier\":\"1.5\","
    "\"discount_percent\":5,\"privileges\":[\"personal master\",\"free diagnostics\"]}]},"
    "\"rules\":[{\"id\":\"base-4\",\"kind\":\"earn_percent\",\"percent\":4},"
    "{\"id\":\"fixed-3\",\"kind\":\"discount_fixed\",\"percent\":3}]}";

static void test_tier_multiplies_earn_and_its_discount_wins_when_larger(void **state)
{
    fixture *f = *state;
    load(f, tiers_program);
    snprintf(f->account.tier, sizeof f->account.tier, "Gold");
    line(f, "service", "labor", 1000000);
    price_at(f, NOW);
    assert_int_equal(f->quote.tier_index, 1);
    /* Gold's 5 % beats the 3 % everyone gets: discounts do not add. */
    assert_int_equal(f->quote.discount_minor, 50000);
    assert_int_equal(f->quote.lines[0].paid_minor, 950000);
    /* 4 % of 9500.00 = 380, x1.5 = 570. */
    assert_int_equal(f->quote.earned, 570);
    const kp_explain *x = explained(&f->quote, "Gold");
    assert_non_null(x);
    assert_int_equal(f->quote.explain[f->quote.n_explain - 1].points, 190);
    snprintf(f->account.tier, sizeof f->account.tier, "Silver");
    price_at(f, NOW);
    assert_int_equal(f->quote.discount_minor, 30000);
    assert_int_equal(f->quote.earned, 388); /* 4 % of 9700.00 */
}

static void test_min_balance_to_burn(void **state)
{
    fixture *f = *state;
    load(f, "{\"name\":\"m\",\"rules\":[{\"id\":\"min\",\"kind\":\"burn_min_balance\","
            "\"points\":500}]}");
    lot(f, "regular", 499, KP_TIME_NEVER);
    line(f, "a", "", 100000);
    f->basket.burn_request = 100;
    price_at(f, NOW);
    assert_int_equal(f->quote.burned, 0);
    assert_non_null(strstr(f->quote.burn_limited_by, "rule min"));
    lot(f, "regular", 1, KP_TIME_NEVER);
    price_at(f, NOW);
    assert_int_equal(f->quote.burned, 100);
}

/* Seed 003: 3 % from 5 000, 5 % from 15 000, 7 % from 25 000, an
 * individual rate from 100 000; unregistered cards get nothing. */
static const char cumulative_program[] =
    "{\"name\":\"cumulative\",\"rules\":[{\"id\":\"cumulative\",\"kind\":\"discount_cumulative\","
    "\"registered_only\":true,\"individual_from\":10000000,\"steps\":["
    "{\"min_spend\":500000,\"percent\":3},{\"min_spend\":1500000,\"percent\":5},"
    "{\"min_spend\":2500000,\"percent\":7}]}]}";

static void test_cumulative_discount_follows_accumulated_spend(void **state)
{
    fixture *f = *state;
    load(f, cumulative_program);
    line(f, "order", "", 1000000); /* an order of 10 000.00 */
    static const struct {
        int64_t spend;
        int64_t discount;
    } cases[] = {
        {0, 0},           {499999, 0},      {500000, 30000},   {1499999, 30000},
        {1500000, 50000}, {2500000, 70000}, {10000000, 70000},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        f->account.spend_minor = cases[i].spend;
        price_at(f, NOW);
        assert_int_equal(f->quote.discount_minor, cases[i].discount);
        assert_int_equal(f->quote.paid_minor, 1000000 - cases[i].discount);
    }
    f->account.has_personal_discount = true;
    f->account.personal_discount_bp = 1200;
    price_at(f, NOW);
    assert_int_equal(f->quote.discount_minor, 120000);
    assert_non_null(strstr(f->quote.explain[0].text, "individual"));
    f->account.spend_minor = 9999999; /* below 100 000: the ladder, not the individual rate */
    price_at(f, NOW);
    assert_int_equal(f->quote.discount_minor, 70000);
}

static void test_unregistered_card_gets_no_discount_and_is_told_why(void **state)
{
    fixture *f = *state;
    load(f, cumulative_program);
    f->account.registered = false;
    f->account.spend_minor = 3000000;
    line(f, "order", "", 1000000);
    price_at(f, NOW);
    assert_int_equal(f->quote.discount_minor, 0);
    const kp_explain *x = explained(&f->quote, "cumulative");
    assert_non_null(x);
    assert_non_null(strstr(x->text, "not registered"));
}

static void test_discount_split_over_lines_adds_up_and_points_earn_on_the_rest(void **state)
{
    fixture *f = *state;
    load(f, "{\"name\":\"d\",\"rules\":[{\"id\":\"d5\",\"kind\":\"discount_fixed\",\"percent\":5},"
            "{\"id\":\"e10\",\"kind\":\"earn_percent\",\"percent\":10}]}");
    for (int i = 0; i < 3; i++) line(f, "x", "", 3333);
    lot(f, "regular", 10, KP_TIME_NEVER);
    f->basket.burn_request = 10;
    price_at(f, NOW);
    /* 5 % of 99.99 = 4.9995 -> 4.99 (down); lines 1.66 + 1.67 + 1.66. */
    assert_int_equal(f->quote.discount_minor, 499);
    int64_t sum = 0;
    for (size_t i = 0; i < 3; i++) sum += f->quote.lines[i].discount_minor;
    assert_int_equal(sum, 499);
    /* 10 points pay 10.00; 10 % of (99.99 - 4.99 - 10.00) = 8.50 -> 8. */
    assert_int_equal(f->quote.burned, 10);
    assert_int_equal(f->quote.paid_minor, 9999 - 499 - 1000);
    assert_int_equal(f->quote.earned, 8);
}

/* Seed 001: the card is given from a purchase of 500 roubles. */
static void test_join_minimum_on_the_first_purchase_only(void **state)
{
    fixture *f = *state;
    load(f, "{\"name\":\"j\",\"rules\":[{\"id\":\"join-500\",\"kind\":\"join_min_purchase\","
            "\"amount\":50000},{\"id\":\"e11\",\"kind\":\"earn_percent\",\"percent\":11}]}");
    f->account.purchases = 0;
    line(f, "card", "", 49999);
    price_at(f, NOW);
    assert_false(f->quote.joined);
    assert_int_equal(f->quote.earned, 0);
    assert_int_equal(f->quote.paid_minor, 49999);
    assert_non_null(explained(&f->quote, "join-500"));
    f->basket.lines[0].amount_minor = 50000;
    price_at(f, NOW);
    assert_true(f->quote.joined);
    assert_int_equal(f->quote.earned, 55);
    f->account.purchases = 1;
    f->basket.lines[0].amount_minor = 10000;
    price_at(f, NOW);
    assert_true(f->quote.joined);
    assert_int_equal(f->quote.earned, 11);
}

/* Seed 000: passing 1000 (USD) of purchases in a year gives a bonus, once. */
static void test_annual_spend_bonus_when_the_year_passes_the_threshold(void **state)
{
    fixture *f = *state;
    load(f, "{\"name\":\"a\",\"currency\":\"USD\",\"rules\":[{\"id\":\"year-1000\","
            "\"kind\":\"annual_spend_bonus\",\"spend_over\":100000,\"points\":50}]}");
    line(f, "service", "", 20000);
    f->account.year_spend_minor = 90000;
    price_at(f, NOW);
    assert_int_equal(f->quote.earned, 50);
    assert_int_equal(f->quote.lines[0].earned, 50);
    f->account.year_spend_minor = 100001;
    price_at(f, NOW);
    assert_int_equal(f->quote.earned, 0);
    f->account.year_spend_minor = 70000;
    price_at(f, NOW);
    assert_int_equal(f->quote.earned, 0); /* 90 000 is not over 100 000 */
}

static void test_store_rule_beats_basket_rule_at_its_store(void **state)
{
    fixture *f = *state;
    load(f, "{\"name\":\"s\",\"rules\":[{\"id\":\"all\",\"kind\":\"earn_percent\",\"percent\":5},"
            "{\"id\":\"partner\",\"kind\":\"earn_percent\",\"store\":\"bank\",\"percent\":1}]}");
    line(f, "x", "", 100000);
    kp_price_opts opts = {.store = "bank", .burn_max = -1};
    assert_int_equal(
        kp_engine_price_opts(&f->program, &f->account, &f->basket, &opts, NOW, &f->quote, &f->e),
        KP_OK);
    assert_int_equal(f->quote.earned, 10);
    opts.store = "shop";
    assert_int_equal(
        kp_engine_price_opts(&f->program, &f->account, &f->basket, &opts, NOW, &f->quote, &f->e),
        KP_OK);
    assert_int_equal(f->quote.earned, 50);
}

static void refused(const char *json, const char *field)
{
    kp_program *p = malloc(sizeof *p);
    kp_error e;
    kp_err err = kp_program_parse(json, strlen(json), p, &e);
    free(p);
    if (err != KP_ERR_INVALID) fail_msg("accepted: %s", json);
    if (strcmp(e.field, field) != 0)
        fail_msg("field %s (%s), wanted %s", e.field, e.message, field);
}

static void test_new_rule_kinds_are_validated_with_the_field(void **state)
{
    (void)state;
    refused("{\"name\":\"x\",\"rules\":[{\"id\":\"a\",\"kind\":\"earn_percent\",\"steps\":["
            "{\"min_amount\":500,\"percent\":3},{\"min_amount\":100,\"percent\":5}]}]}",
            "rules[0].steps[1].min_amount");
    refused("{\"name\":\"x\",\"rules\":[{\"id\":\"a\",\"kind\":\"earn_percent\",\"percent\":3,"
            "\"steps\":[{\"min_amount\":0,\"percent\":3}]}]}",
            "rules[0].percent");
    refused("{\"name\":\"x\",\"rules\":[{\"id\":\"a\",\"kind\":\"burn_limit\",\"percent\":3,"
            "\"point_kind\":\"gold\"}]}",
            "rules[0].point_kind");
    refused("{\"name\":\"x\",\"rules\":[{\"id\":\"a\",\"kind\":\"earn_percent\",\"percent\":3,"
            "\"tier\":\"Gold\"}]}",
            "rules[0].tier");
    refused("{\"name\":\"x\",\"rules\":[{\"id\":\"a\",\"kind\":\"grant\",\"on\":\"birthday\","
            "\"points\":5,\"once\":\"weekly\"}]}",
            "rules[0].once");
    refused("{\"name\":\"x\",\"rules\":[{\"id\":\"a\",\"kind\":\"earn_percent\",\"percent\":3,"
            "\"starts\":\"2026-12-25\",\"ends\":\"2026-12-20\"}]}",
            "rules[0].ends");
    refused("{\"name\":\"x\",\"tiers\":{\"levels\":[{\"name\":\"A\",\"min_spend\":10},"
            "{\"name\":\"B\",\"min_spend\":5}]},\"rules\":[]}",
            "tiers.levels[1].min_spend");
    refused("{\"name\":\"x\",\"point_kinds\":[{\"name\":\"p\",\"ttl_days\":5,\"ttl_months\":1}],"
            "\"rules\":[]}",
            "point_kinds[0].ttl_days");
    refused("{\"name\":\"x\",\"rules\":[{\"id\":\"a\",\"kind\":\"burn_limit\",\"percent\":3},"
            "{\"id\":\"b\",\"kind\":\"burn_limit\",\"percent\":5}]}",
            "rules[1].category");
    refused("{\"name\":\"x\",\"rules\":[{\"id\":\"a\",\"kind\":\"discount_cumulative\","
            "\"steps\":[{\"min_spend\":1,\"percent\":\"3.333\"}]}]}",
            "rules[0].steps[0].percent");
}

static void test_grant_defaults(void **state)
{
    fixture *f = *state;
    load(f, "{\"name\":\"g\",\"utc_offset\":\"+03:00\",\"point_kinds\":[{\"name\":\"premium\","
            "\"ttl_months\":3}],\"rules\":[{\"id\":\"bd\",\"kind\":\"grant\",\"on\":\"birthday\","
            "\"points\":2000,\"point_kind\":\"premium\"},{\"id\":\"club\",\"kind\":\"grant\","
            "\"on\":\"partner_card\",\"points\":2000,\"unique_token\":true}]}");
    assert_int_equal(f->program.utc_offset_minutes, 180);
    assert_int_equal(f->program.rules[0].once, KP_ONCE_YEAR);
    assert_int_equal(f->program.rules[0].validity.ttl_months, 3);
    assert_int_equal(f->program.rules[1].once, KP_ONCE_CUSTOMER);
    assert_true(f->program.rules[1].unique_token);
    assert_string_equal(f->program.rules[1].point_kind, "regular");
    int y, m, d;
    kp_program_date(&f->program, 1700000000 - 3600 * 23, &y, &m, &d); /* 2023-11-13T22:13Z */
    assert_int_equal(d, 14);                                          /* 01:13 in +03:00 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_premium_then_regular_each_within_its_own_cap),
        T(test_kinds_together_pay_at_most_the_largest_cap),
        T(test_regular_alone_pays_ten_percent),
        T(test_expired_premium_is_not_spent),
        T(test_program_sets_premium_validity_from_kind),
        T(test_rate_steps_by_receipt_amount),
        T(test_promotional_window_beats_the_standing_rate),
        T(test_tier_multiplies_earn_and_its_discount_wins_when_larger),
        T(test_min_balance_to_burn),
        T(test_cumulative_discount_follows_accumulated_spend),
        T(test_unregistered_card_gets_no_discount_and_is_told_why),
        T(test_discount_split_over_lines_adds_up_and_points_earn_on_the_rest),
        T(test_join_minimum_on_the_first_purchase_only),
        T(test_annual_spend_bonus_when_the_year_passes_the_threshold),
        T(test_store_rule_beats_basket_rule_at_its_store),
        T(test_new_rule_kinds_are_validated_with_the_field),
        T(test_grant_defaults),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
