/* test_coalition.c: a coalition program file read (partners, store
 * patterns, fees, a bank, currencies) and refused where it is wrong; whose
 * store a store is; and the engine applying partners' rules, partner-funded
 * promotions and currency rules only where they belong, pricing points at
 * the receipt currency's value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopilka/coalition.h>
#include <kopilka/engine.h>
#include <kopilka/program.h>

static const char coalition[] =
    "{\"name\":\"coalition\",\"currency\":\"RUB\",\"minor_per_point\":100,"
    "\"currencies\":[{\"code\":\"KZT\",\"minor_per_point\":500}],"
    "\"stores\":[{\"match\":\"KZ-*\",\"currency\":\"KZT\"}],"
    "\"partners\":["
    " {\"code\":\"fuel\",\"name\":\"Fuel\",\"stores\":[\"FUEL-*\",{\"match\":\"KZF-*\",\"currency\":\"KZT\"}],"
    "  \"fees\":{\"per_operation\":50,\"per_point_percent\":\"2.5\"},\"breakage_to_operator\":\"30\"},"
    " {\"code\":\"wash\",\"name\":\"Wash\",\"stores\":[\"WASH-*\",\"FUEL-7\"]},"
    " {\"code\":\"cafe\",\"name\":\"Cafe\",\"stores\":[\"CAFE-1\"]},"
    " {\"code\":\"bank\",\"name\":\"Bank\",\"bank\":{\"cashback_percent\":\"1.5\"}}],"
    "\"rules\":["
    " {\"id\":\"base\",\"kind\":\"earn_percent\",\"percent\":1},"
    " {\"id\":\"wash-5\",\"kind\":\"earn_percent\",\"percent\":5,\"partner\":\"wash\"},"
    " {\"id\":\"fuel-at-cafe\",\"kind\":\"earn_percent\",\"percent\":10,\"partner\":\"fuel\","
    "  \"at_partner\":\"cafe\"},"
    " {\"id\":\"kzt-2\",\"kind\":\"earn_percent\",\"category\":\"food\",\"percent\":2,"
    "  \"currency\":\"KZT\"},"
    " {\"id\":\"fuel-no-burn\",\"kind\":\"burn_limit\",\"percent\":0,\"partner\":\"fuel\"}]}";

typedef struct fixture {
    kp_program program;
    kp_account account;
    kp_basket basket;
    kp_quote quote;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    kp_error e = {0};
    assert_int_equal(kp_program_parse(coalition, strlen(coalition), &f->program, &e), KP_OK);
    f->account.id = 1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

static void line(kp_basket *b, const char *category, int64_t amount)
{
    kp_line *l = &b->lines[b->n_lines++];
    memset(l, 0, sizeof *l);
    snprintf(l->sku, sizeof l->sku, "sku%zu", b->n_lines);
    snprintf(l->category, sizeof l->category, "%s", category);
    l->amount_minor = amount;
    l->qty = 1;
}

/* Earned points of one line of `amount` in `category` at `store`. */
static int64_t earn_at(fixture *f, const char *store, const char *currency, const char *category,
                       int64_t amount, bool no_promos)
{
    memset(&f->basket, 0, sizeof f->basket);
    line(&f->basket, category, amount);
    kp_price_opts o = {.store = store, .burn_max = -1, .currency = currency,
                       .no_partner_promos = no_promos};
    kp_error e = {0};
    assert_int_equal(kp_engine_price_opts(&f->program, &f->account, &f->basket, &o, 0, &f->quote,
                                          &e),
                     KP_OK);
    return f->quote.earned;
}

static void test_parse(void **state)
{
    fixture *f = *state;
    const kp_program *p = &f->program;
    assert_int_equal(p->n_partners, 4);
    assert_string_equal(p->partners[0].code, "fuel");
    assert_int_equal(p->partners[0].n_stores, 2);
    assert_string_equal(p->partners[0].stores[1].currency, "KZT");
    assert_int_equal(p->partners[0].fee_per_operation_minor, 50);
    assert_int_equal(p->partners[0].fee_per_point_bp, 250);
    assert_int_equal(p->partners[0].breakage_to_operator_bp, 3000);
    assert_true(p->partners[3].bank);
    assert_int_equal(p->partners[3].cashback_bp, 150);
    assert_string_equal(p->partners[3].cashback_kind, "regular"); /* the program's earn kind */
    assert_int_equal(kp_program_minor_per_point(p, "KZT"), 500);
    assert_int_equal(kp_program_minor_per_point(p, "RUB"), 100);
    assert_int_equal(kp_program_minor_per_point(p, ""), 100);
    assert_int_equal(kp_program_minor_per_point(p, "UAH"), 0);
    assert_true(kp_program_is_coalition(p));
    assert_string_equal(p->rules[2].at_partner, "cafe");
    assert_string_equal(p->rules[3].currency, "KZT");
}

static void test_stores(void **state)
{
    fixture *f = *state;
    const kp_program *p = &f->program;
    assert_string_equal(kp_program_partner_of_store(p, "FUEL-12"), "fuel");
    assert_string_equal(kp_program_partner_of_store(p, "FUEL-7"), "fuel"); /* the first match */
    assert_string_equal(kp_program_partner_of_store(p, "WASH-1"), "wash");
    assert_string_equal(kp_program_partner_of_store(p, "CAFE-1"), "cafe");
    assert_string_equal(kp_program_partner_of_store(p, "CAFE-12"), KP_OPERATOR); /* exact only */
    assert_string_equal(kp_program_partner_of_store(p, "HQ"), KP_OPERATOR);
    assert_string_equal(kp_program_store_currency(p, "KZF-3"), "KZT");
    assert_string_equal(kp_program_store_currency(p, "KZ-ALM"), "KZT");
    assert_string_equal(kp_program_store_currency(p, "FUEL-1"), "");
    assert_int_equal(kp_settle_period_of(1764547199, 0), 202511);   /* 2025-11-30T23:59:59Z */
    assert_int_equal(kp_settle_period_of(1764547199, 180), 202512); /* 02:59 on Dec 1 at +3 */
}

static void test_engine_partners(void **state)
{
    fixture *f = *state;
    /* 1 000.00 roubles: 1 % at the operator's and fuel's stores, the wash's own 5 % at its stores. */
    assert_int_equal(earn_at(f, "HQ", NULL, "", 100000, false), 10);
    assert_int_equal(earn_at(f, "FUEL-1", NULL, "", 100000, false), 10);
    assert_int_equal(earn_at(f, "WASH-2", NULL, "", 100000, false), 50);
    /* Fuel's promotion applies at the cafe only, and not when asked for none. */
    assert_int_equal(earn_at(f, "CAFE-1", NULL, "", 100000, false), 100);
    assert_int_equal(earn_at(f, "CAFE-1", NULL, "", 100000, true), 10);
    assert_int_equal(earn_at(f, "WASH-2", NULL, "", 100000, true), 50);
}

static void test_engine_currency(void **state)
{
    fixture *f = *state;
    /* 1 000.00 tenge at 5 tenge a point: 1 % = 1 000 tenge-minor... = 2 points; the
     * KZT food rule (2 %) applies to tenge receipts only. */
    assert_int_equal(earn_at(f, "KZ-1", "KZT", "", 100000, false), 2);
    assert_int_equal(earn_at(f, "KZ-1", "KZT", "food", 100000, false), 4);
    assert_int_equal(earn_at(f, "HQ", "RUB", "food", 100000, false), 10);
    memset(&f->basket, 0, sizeof f->basket);
    line(&f->basket, "", 100);
    kp_price_opts o = {.store = "HQ", .burn_max = -1, .currency = "UAH"};
    kp_error e = {0};
    assert_int_equal(kp_engine_price_opts(&f->program, &f->account, &f->basket, &o, 0, &f->quote,
                                          &e),
                     KP_ERR_INVALID);
    assert_string_equal(e.field, "currency");
}

static void test_engine_burn_limit(void **state)
{
    fixture *f = *state;
    kp_lot *l = &f->account.lots[f->account.n_lots++];
    memset(l, 0, sizeof *l);
    l->id = 1;
    snprintf(l->kind, sizeof l->kind, "regular");
    l->amount = l->remaining = 1000;
    l->expires_at = KP_TIME_NEVER;
    f->account.balance = 1000;
    kp_error e = {0};
    for (int at_fuel = 0; at_fuel < 2; at_fuel++) {
        memset(&f->basket, 0, sizeof f->basket);
        line(&f->basket, "", 100000);
        f->basket.burn_request = 500;
        kp_price_opts o = {.store = at_fuel ? "FUEL-1" : "WASH-1", .burn_max = -1};
        assert_int_equal(kp_engine_price_opts(&f->program, &f->account, &f->basket, &o, 0,
                                              &f->quote, &e),
                         KP_OK);
        /* Fuel lets no point pay at its stores; elsewhere no rule limits. */
        assert_int_equal(f->quote.burned, at_fuel ? 0 : 500);
    }
}

/* One refused file: its first error names `field`. */
static void refused(const char *partners, const char *rules, const char *extra, const char *field)
{
    char text[4096];
    snprintf(text, sizeof text, "{\"name\":\"x\",%s\"partners\":%s,\"rules\":%s}", extra, partners,
             rules);
    kp_program *p = calloc(1, sizeof *p);
    kp_error e = {0};
    assert_int_not_equal(kp_program_parse(text, strlen(text), p, &e), KP_OK);
    free(p);
    if (strcmp(e.field, field) != 0) fail_msg("%s: got %s: %s", field, e.field, e.message);
}

static void test_refused(void **state)
{
    (void)state;
    const char *two = "[{\"code\":\"a\",\"name\":\"A\",\"stores\":[\"A-*\"]},"
                      "{\"code\":\"b\",\"name\":\"B\"}]";
    refused("[{\"code\":\"A B\",\"name\":\"x\"}]", "[]", "", "partners[0].code");
    refused("[{\"code\":\"a\",\"name\":\"x\"},{\"code\":\"a\",\"name\":\"y\"}]", "[]", "",
            "partners[1].code");
    refused("[{\"code\":\"a\",\"name\":\"x\",\"stores\":[\"A*B\"]}]", "[]", "",
            "partners[0].stores[0]");
    refused("[{\"code\":\"a\",\"name\":\"x\",\"stores\":[{\"match\":\"A-*\",\"currency\":\"KZT\"}]}]",
            "[]", "", "partners[0].stores[0].currency");
    refused("[{\"code\":\"a\",\"name\":\"x\",\"fees\":{\"per_point\":1}}]", "[]", "",
            "partners[0].fees.per_point");
    refused(two, "[{\"id\":\"r\",\"kind\":\"earn_percent\",\"percent\":1,\"partner\":\"c\"}]", "",
            "rules[0].partner");
    refused(two, "[{\"id\":\"r\",\"kind\":\"earn_percent\",\"percent\":1,\"at_partner\":\"b\"}]",
            "", "rules[0].at_partner");
    refused(two,
            "[{\"id\":\"r\",\"kind\":\"earn_percent\",\"percent\":1,\"partner\":\"a\","
            "\"at_partner\":\"a\"}]",
            "", "rules[0].at_partner");
    refused(two,
            "[{\"id\":\"r\",\"kind\":\"burn_limit\",\"percent\":1,\"partner\":\"b\","
            "\"at_partner\":\"a\"}]",
            "", "rules[0].at_partner"); /* promotions are earn rules only */
    refused(two, "[{\"id\":\"r\",\"kind\":\"earn_percent\",\"percent\":1}]",
            "\"currencies\":[{\"code\":\"KZT\",\"minor_per_point\":500}],"
            "\"currency_rules\":\"separate\",",
            "rules[0].currency");
    refused(two, "[]", "\"currencies\":[{\"code\":\"RUB\",\"minor_per_point\":500}],",
            "currencies[0].code");
    refused(two, "[]", "\"stores\":[\"KZ-*\"],", "stores[0].currency");
    refused("[{\"code\":\"bank\",\"name\":\"B\",\"bank\":{\"cashback_percent\":1,"
            "\"point_kind\":\"gold\"}}]",
            "[]", "", "partners[0].bank.point_kind");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_parse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stores, setup, teardown),
        cmocka_unit_test_setup_teardown(test_engine_partners, setup, teardown),
        cmocka_unit_test_setup_teardown(test_engine_currency, setup, teardown),
        cmocka_unit_test_setup_teardown(test_engine_burn_limit, setup, teardown),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
