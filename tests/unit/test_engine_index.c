/* test_engine_index.c: the compiled engine (kp_engine_compile, issue 16)
 * gives the very quote the scanning engine gives. Thousands of random
 * programs (every rule kind; categories, windows, ladders, tiers, stores,
 * partners, partner-funded promotions, currencies, point kinds) are priced
 * against random baskets, accounts, stores, currencies and instants, once
 * with no index and once compiled, and the two quotes are compared field
 * by field, explanations and burn notes included; and a third time with
 * the explanations' sentences deferred (kp_price_opts.defer_text), which
 * kp_quote_render must write byte for byte as the engine would. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopilka/engine.h>
#include <kopilka/program.h>

/* A small deterministic generator (xorshift64*): the same runs every time. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

/* 0..n-1 */
static int pick(int n) { return (int)(rnd() % (uint64_t)n); }

static bool chance(int percent) { return pick(100) < percent; }

typedef struct out {
    char *p;
    size_t len, size;
} out;

static void put(out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->p + o->len, o->size - o->len, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < o->size - o->len);
    o->len += (size_t)n;
}

/* The last is long enough that explanations naming it are cut at the
 * text's end (KP_EXPLAIN_TEXT_MAX). */
#define LONG_CATEGORY                                                                              \
    "a-category-named-at-length-so-that-every-sentence-about-it-runs-past-the-end-of-the-"        \
    "explanation-text-and-is-cut-there-exactly-as-the-scanning-engine-cuts-it-0123456789-"         \
    "0123456789"
static const char *const categories[] = {"c0", "c1", "c2", "c3", "c4",
                                         "c5", "c6", "c7", LONG_CATEGORY};
#define N_CATS 9
static const char *const dates[] = {"2024-06-01", "2025-01-01", "2025-07-01", "2026-01-01",
                                    "2027-01-01"};

static void maybe_category(out *o)
{
    if (chance(65)) put(o, ",\"category\":\"%s\"", categories[pick(N_CATS)]);
}

static void maybe_window(out *o)
{
    if (!chance(30)) return;
    int a = pick(5), b = pick(5);
    if (a > b) {
        int t = a;
        a = b;
        b = t;
    }
    if (a == b || chance(25)) {
        put(o, chance(50) ? ",\"starts\":\"%s\"" : ",\"ends\":\"%s\"", dates[a]);
        return;
    }
    put(o, ",\"starts\":\"%s\",\"ends\":\"%s\"", dates[a], dates[b]);
}

/* Where a rule applies: a store, a partner, a partner-funded promotion at
 * another partner's stores, a currency. */
static void maybe_where(out *o, bool store_allowed, bool promo_allowed)
{
    if (store_allowed && chance(15)) put(o, ",\"store\":\"%s\"", chance(50) ? "main" : "FUEL-1");
    int w = pick(100);
    if (w < 12) put(o, ",\"partner\":\"%s\"", chance(50) ? "fuel" : "wash");
    else if (w < 18 && promo_allowed) put(o, ",\"partner\":\"fuel\",\"at_partner\":\"wash\"");
    if (chance(10)) put(o, ",\"currency\":\"%s\"", chance(50) ? "KZT" : "RUB");
}

static void percent(out *o)
{
    static const char *const p[] = {"0", "1", "2.5", "3", "5", "7.25", "10", "12", "30", "100"};
    put(o, ",\"percent\":\"%s\"", p[pick(10)]);
}

static void rule(out *o, int i)
{
    put(o, "%s{\"id\":\"r%d\"", i ? "," : "", i);
    switch (pick(12)) {
    case 0:
    case 1:
    case 2:
    case 3:
        put(o, ",\"kind\":\"earn_percent\"");
        maybe_category(o);
        if (chance(20)) put(o, ",\"tier\":\"%s\"", chance(50) ? "Gold" : "Silver");
        maybe_window(o);
        maybe_where(o, true, true);
        if (chance(25))
            put(o, ",\"steps\":[{\"min_amount\":%d,\"percent\":2},{\"min_amount\":%d,"
                   "\"percent\":\"4.5\"}]",
                pick(3) * 1000, 20000 + pick(5) * 20000);
        else
            percent(o);
        break;
    case 4:
    case 5:
        put(o, ",\"kind\":\"burn_limit\"");
        maybe_category(o);
        if (chance(50)) put(o, ",\"point_kind\":\"%s\"", chance(50) ? "regular" : "premium");
        if (chance(10)) put(o, ",\"partner\":\"%s\"", chance(50) ? "fuel" : "wash");
        if (chance(8)) put(o, ",\"currency\":\"KZT\"");
        percent(o);
        break;
    case 6:
    case 7:
        put(o, ",\"kind\":\"discount_fixed\"");
        maybe_category(o);
        maybe_window(o);
        maybe_where(o, true, false);
        if (chance(30)) put(o, ",\"registered_only\":true");
        percent(o);
        break;
    case 8:
        put(o, ",\"kind\":\"discount_cumulative\"");
        maybe_category(o);
        if (chance(30)) put(o, ",\"registered_only\":true");
        if (chance(30)) put(o, ",\"individual_from\":%d", 1 + pick(4) * 50000);
        put(o, ",\"steps\":[{\"min_spend\":%d,\"percent\":3},{\"min_spend\":%d,\"percent\":5}]",
            pick(3) * 50000, 200000 + pick(3) * 100000);
        break;
    case 9:
        switch (pick(4)) {
        case 0: put(o, ",\"kind\":\"first_purchase_min\",\"points\":%d", 1 + pick(2000)); break;
        case 1: put(o, ",\"kind\":\"burn_min_balance\",\"points\":%d", 1 + pick(3000)); break;
        case 2: put(o, ",\"kind\":\"join_min_purchase\",\"amount\":%d", 1 + pick(50000)); break;
        default:
            put(o, ",\"kind\":\"annual_spend_bonus\",\"spend_over\":%d,\"points\":%d",
                pick(400000), 1 + pick(500));
        }
        if (chance(10)) put(o, ",\"currency\":\"KZT\"");
        break;
    default:
        put(o, ",\"kind\":\"grant\",\"on\":\"survey\",\"points\":5");
        break;
    }
    put(o, "}");
}

static void random_program(out *o)
{
    o->len = 0;
    put(o, "{\"name\":\"random\",\"currency\":\"RUB\",\"minor_per_point\":%d,"
           "\"rounding\":\"%s\","
           "\"currencies\":[{\"code\":\"KZT\",\"minor_per_point\":%d}],"
           "\"partners\":[{\"code\":\"fuel\",\"name\":\"Fuel\",\"stores\":[\"FUEL-*\"]},"
           "{\"code\":\"wash\",\"name\":\"Wash\",\"stores\":[\"WASH-*\"]}],"
           "\"point_kinds\":[{\"name\":\"regular\"},{\"name\":\"premium\",\"ttl_months\":3}],",
        chance(70) ? 100 : 1 + pick(300), chance(34) ? "down" : chance(50) ? "half_up" : "up",
        1 + pick(900));
    if (chance(60))
        put(o, "\"tiers\":{\"levels\":[{\"name\":\"Silver\",\"min_spend\":0},"
               "{\"name\":\"Gold\",\"min_spend\":100000,\"earn_multiplier\":\"%s\","
               "\"discount_percent\":%d}]},",
            chance(50) ? "1.5" : "2", pick(4));
    put(o, "\"rules\":[");
    int n = chance(20) ? pick(4) : 1 + pick(chance(30) ? 120 : 40);
    for (int i = 0; i < n; i++) rule(o, i);
    put(o, "]}");
}

static void random_account(kp_account *a)
{
    memset(a, 0, sizeof *a);
    a->id = 1;
    a->purchases = chance(30) ? 0 : pick(50);
    a->spend_minor = pick(6) * 100000 + pick(1000);
    a->registered = chance(70);
    static const char *const tiers[] = {"", "Silver", "Gold", "Bronze"};
    snprintf(a->tier, sizeof a->tier, "%s", tiers[pick(4)]);
    a->has_personal_discount = chance(30);
    a->personal_discount_bp = pick(1500);
    a->year_spend_minor = pick(400000);
    a->n_lots = (size_t)pick(20);
    static const char *const kinds[] = {"regular", "premium", "bonus"};
    kp_time expires = 1700000000;
    for (size_t i = 0; i < a->n_lots; i++) {
        kp_lot *l = &a->lots[i];
        l->id = (int64_t)i + 1;
        snprintf(l->kind, sizeof l->kind, "%s", kinds[pick(chance(80) ? 2 : 3)]);
        l->amount = 1 + pick(3000);
        l->remaining = chance(90) ? 1 + pick((int)l->amount) : 0;
        l->active_from = chance(90) ? 0 : 1800000000;
        if (expires != KP_TIME_NEVER) { /* the burn order: earliest expiry first */
            expires += pick(30000000);
            if (chance(15)) expires = KP_TIME_NEVER;
        }
        l->expires_at = expires;
        a->balance += l->remaining;
    }
    a->debt = chance(10) ? pick(500) : 0;
    a->balance -= a->debt;
}

static void random_basket(kp_basket *b)
{
    memset(b, 0, sizeof *b);
    b->n_lines = (size_t)(1 + pick(chance(10) ? 60 : 25));
    for (size_t i = 0; i < b->n_lines; i++) {
        kp_line *l = &b->lines[i];
        snprintf(l->sku, sizeof l->sku, "sku%zu", i);
        int c = pick(N_CATS + 2);
        snprintf(l->category, sizeof l->category, "%s",
                 c < N_CATS ? categories[c] : c == N_CATS ? "" : "elsewhere");
        l->amount_minor = chance(5) ? 0 : 1 + pick(50000);
        l->qty = 1 + pick(3);
        l->promo = chance(15);
    }
    b->burn_request = chance(30) ? 0 : pick(8000);
}

/* Field by field, so a difference names what differs. */
static void assert_same(const kp_quote *a, const kp_quote *b, const char *program, int trial)
{
    char where[1 << 14];
    snprintf(where, sizeof where, "trial %d of program %s", trial, program);
#define SAME(f)                                                                                    \
    do {                                                                                           \
        if ((a)->f != (b)->f) fail_msg("%s: %s differs: %lld vs %lld", where, #f,                \
                                       (long long)(a)->f, (long long)(b)->f);                      \
    } while (0)
#define SAME_STR(f)                                                                                \
    do {                                                                                           \
        if (strcmp((a)->f, (b)->f) != 0)                                                           \
            fail_msg("%s: %s differs: \"%s\" vs \"%s\"", where, #f, (a)->f, (b)->f);               \
    } while (0)
    SAME(amount_minor);
    SAME(discount_minor);
    SAME(points_minor);
    SAME(paid_minor);
    SAME(burn_request);
    SAME(burned);
    SAME(earned);
    SAME(balance_before);
    SAME(balance_after);
    SAME_STR(burn_limited_by);
    SAME(joined);
    SAME(tier_index);
    SAME(n_lines);
    SAME(n_explain);
    SAME(n_takes);
    for (size_t i = 0; i < a->n_lines; i++) {
        SAME(lines[i].discount_minor);
        SAME(lines[i].points_minor);
        SAME(lines[i].paid_minor);
        SAME(lines[i].earned);
        SAME(lines[i].earn_rule);
        SAME(lines[i].discount_rule);
    }
    for (size_t i = 0; i < a->n_explain; i++) {
        SAME_STR(explain[i].rule);
        SAME(explain[i].kind);
        SAME(explain[i].base_minor);
        SAME(explain[i].rate_bp);
        SAME(explain[i].points);
        SAME(explain[i].discount_minor);
        SAME_STR(explain[i].text);
        SAME(explain[i].form);
        SAME(explain[i].src);
        SAME(explain[i].arg);
    }
    for (size_t i = 0; i < a->n_takes; i++) {
        SAME(takes[i].lot_id);
        SAME(takes[i].points);
    }
#undef SAME
#undef SAME_STR
}

typedef struct fixture {
    kp_program program;
    kp_engine_index index;
    kp_account account;
    kp_basket basket;
    kp_quote scan, compiled, deferred;
    char json[1 << 16];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

static void test_compiled_prices_as_the_scan(void **state)
{
    fixture *f = *state;
    out o = {f->json, 0, sizeof f->json};
    static const char *const stores[] = {NULL, "main", "FUEL-1", "WASH-2", "other"};
    static const char *const currencies[] = {NULL, "", "RUB", "KZT", "USD"};
    int programs = 0, quotes = 0, refused = 0, with_explain = 0, with_burn = 0, deferred = 0;
    for (int attempt = 0; programs < 3000 && attempt < 20000; attempt++) {
        random_program(&o);
        kp_error e = {0};
        if (kp_program_parse(f->json, o.len, &f->program, &e) != KP_OK) continue;
        programs++;
        kp_engine_compile(&f->program, &f->index);
        for (int trial = 0; trial < 8; trial++) {
            random_account(&f->account);
            random_basket(&f->basket);
            kp_price_opts opts = {.store = stores[pick(5)],
                                  .burn_max = chance(15) ? pick(3000) : -1,
                                  .currency = currencies[pick(5)],
                                  .no_partner_promos = chance(20)};
            kp_time now = 1704067200 + (kp_time)pick(4 * 365) * 86400 + pick(86400);
            kp_error e1 = {0}, e2 = {0};
            kp_err r1 = kp_engine_price_opts(&f->program, &f->account, &f->basket, &opts, now,
                                             &f->scan, &e1);
            opts.index = &f->index;
            kp_err r2 = kp_engine_price_opts(&f->program, &f->account, &f->basket, &opts, now,
                                             &f->compiled, &e2);
            assert_int_equal(r1, r2);
            if (r1 != KP_OK) {
                assert_string_equal(e1.field, e2.field);
                assert_string_equal(e1.message, e2.message);
                refused++;
                continue;
            }
            assert_same(&f->scan, &f->compiled, f->json, trial);
            /* Priced with the sentences deferred (compiled or not), then
             * rendered (with the index or without): the same quote. */
            kp_error e3 = {0};
            opts.defer_text = true;
            if (chance(50)) opts.index = NULL;
            assert_int_equal(kp_engine_price_opts(&f->program, &f->account, &f->basket, &opts, now,
                                                  &f->deferred, &e3),
                             KP_OK);
            for (size_t i = 0; i < f->deferred.n_explain; i++) {
                assert_int_not_equal(f->deferred.explain[i].form, 0);
                assert_string_equal(f->deferred.explain[i].text, "");
                deferred++;
            }
            kp_quote_render(&f->program, chance(50) ? &f->index : NULL, &f->deferred);
            assert_same(&f->scan, &f->deferred, f->json, trial);
            kp_quote_render(&f->program, &f->index, &f->deferred); /* idempotent */
            assert_same(&f->scan, &f->deferred, f->json, trial);
            quotes++;
            with_explain += f->scan.n_explain > 2;
            with_burn += f->scan.burned > 0;
        }
    }
    /* The generator must reach what it is meant to: enough programs that
     * parse, and quotes that explain and burn, not only refusals. */
    assert_int_equal(programs, 3000);
    assert_true(quotes > 15000);
    assert_true(with_explain > 3000);
    assert_true(with_burn > 1000);
    assert_true(deferred > 20000);
    print_message("%d programs, %d quotes compared (%d refused alike), %d sentences deferred\n",
                  programs, quotes, refused, deferred);
}

/* An index compiled from another program (or a copy of this one) is not
 * used: the quote is the scan's. */
static void test_index_of_another_program_is_ignored(void **state)
{
    fixture *f = *state;
    static const char a[] = "{\"name\":\"a\",\"rules\":[{\"id\":\"e\",\"kind\":\"earn_percent\","
                            "\"category\":\"c0\",\"percent\":10}]}";
    static const char b[] = "{\"name\":\"b\",\"rules\":[{\"id\":\"x\",\"kind\":\"earn_percent\","
                            "\"percent\":1},{\"id\":\"y\",\"kind\":\"earn_percent\","
                            "\"category\":\"c1\",\"percent\":50}]}";
    kp_error e = {0};
    kp_program *other = calloc(1, sizeof *other);
    assert_non_null(other);
    assert_int_equal(kp_program_parse(b, strlen(b), other, &e), KP_OK);
    kp_engine_compile(other, &f->index);
    assert_int_equal(kp_program_parse(a, strlen(a), &f->program, &e), KP_OK);
    memset(&f->basket, 0, sizeof f->basket);
    f->basket.n_lines = 1;
    snprintf(f->basket.lines[0].sku, sizeof f->basket.lines[0].sku, "s");
    snprintf(f->basket.lines[0].category, sizeof f->basket.lines[0].category, "c0");
    f->basket.lines[0].amount_minor = 10000;
    f->basket.lines[0].qty = 1;
    memset(&f->account, 0, sizeof f->account);
    kp_price_opts opts = {.burn_max = -1, .index = &f->index};
    assert_int_equal(
        kp_engine_price_opts(&f->program, &f->account, &f->basket, &opts, 0, &f->compiled, &e),
        KP_OK);
    assert_int_equal(f->compiled.earned, 10); /* a's 10 % of 100.00 */
    assert_int_equal(f->compiled.lines[0].earn_rule, 0);
    free(other);
}

/* The burn resolved ahead (kp_engine_index.burn_static) holds for up to
 * KP_BURN_KINDS point kinds named by burn_limit rules; with more the
 * compiled engine resolves it per quote. Both, and kinds no rule names,
 * price as the scan does (kinds set in memory: a program defines at most
 * 8, and the engine does not check them). */
static void test_burn_kinds_beyond_the_table(void **state)
{
    fixture *f = *state;
    int burns = 0;
    for (int n_kinds = 7; n_kinds <= 10; n_kinds++) {
        out o = {f->json, 0, sizeof f->json};
        /* Two kinds a category (c0..c4), renamed below; one rule for every
         * category and kind; one for a partner's stores. */
        put(&o, "{\"name\":\"k\",\"point_kinds\":[{\"name\":\"regular\"},{\"name\":\"premium\"}],"
                "\"partners\":[{\"code\":\"fuel\",\"name\":\"Fuel\",\"stores\":[\"FUEL-*\"]}],"
                "\"rules\":[");
        for (int i = 0; i < 10; i++)
            put(&o, "{\"id\":\"b%d\",\"kind\":\"burn_limit\",\"category\":\"c%d\","
                    "\"point_kind\":\"%s\",\"percent\":%d},",
                i, i / 2, i % 2 ? "premium" : "regular", 10 + 8 * i);
        put(&o, "{\"id\":\"all\",\"kind\":\"burn_limit\",\"percent\":15},"
                "{\"id\":\"s\",\"kind\":\"burn_limit\",\"category\":\"c6\",\"partner\":\"fuel\","
                "\"percent\":90}]}");
        kp_error e = {0};
        if (kp_program_parse(f->json, o.len, &f->program, &e) != KP_OK)
            fail_msg("%s: %s", e.field, e.message);
        for (int i = 0; i < 10; i++)
            snprintf(f->program.rules[i].point_kind, sizeof f->program.rules[i].point_kind, "k%d",
                     i % n_kinds);
        kp_engine_compile(&f->program, &f->index);
        assert_int_equal(f->index.burn_static, n_kinds <= KP_BURN_KINDS);
        for (int trial = 0; trial < 400; trial++) {
            memset(&f->account, 0, sizeof f->account);
            for (int l = 0; l < 12; l++) {
                kp_lot *lot = &f->account.lots[f->account.n_lots++];
                lot->id = l + 1;
                int k = pick(n_kinds + 2); /* and two kinds no rule names */
                if (k < n_kinds) snprintf(lot->kind, sizeof lot->kind, "k%d", k);
                else snprintf(lot->kind, sizeof lot->kind, "%s", k == n_kinds ? "bonus" : "");
                lot->amount = lot->remaining = 1 + pick(400);
                lot->expires_at = KP_TIME_NEVER;
                f->account.balance += lot->remaining;
            }
            memset(&f->basket, 0, sizeof f->basket);
            for (int i = 0; i < 8; i++) {
                kp_line *l = &f->basket.lines[f->basket.n_lines++];
                snprintf(l->sku, sizeof l->sku, "s%d", i);
                snprintf(l->category, sizeof l->category, "c%d", pick(8));
                l->amount_minor = pick(50000);
                l->qty = 1;
                l->promo = chance(10);
            }
            f->basket.burn_request = pick(3000);
            kp_price_opts opts = {.store = chance(50) ? "FUEL-1" : "main", .burn_max = -1};
            kp_error e1 = {0}, e2 = {0};
            assert_int_equal(kp_engine_price_opts(&f->program, &f->account, &f->basket, &opts, 0,
                                                  &f->scan, &e1),
                             KP_OK);
            opts.index = &f->index;
            assert_int_equal(kp_engine_price_opts(&f->program, &f->account, &f->basket, &opts, 0,
                                                  &f->compiled, &e2),
                             KP_OK);
            assert_same(&f->scan, &f->compiled, f->json, trial);
            burns += f->scan.n_takes > 1;
        }
    }
    assert_true(burns > 800); /* most quotes take points from several lots */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_compiled_prices_as_the_scan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_of_another_program_is_ignored, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_burn_kinds_beyond_the_table, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
