/*
 * test_simulate.c: the economic model (src/service/simulate.c): a small
 * history whose totals are worked out by hand below; the same history
 * gives the same result with 1, 2 and 3 threads; and the replay of
 * purchases and returns made through the service on a real store (SQLite,
 * or PostgreSQL with KOPILKA_TEST_STORE=pg) reproduces the ledger's own
 * totals of points earned, burnt and expired.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fixture.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/service.h"
#include "service/service_rules.h"
#include "service/simulate.h"

/* 10% of every purchase, points live 30 days, at most half a line paid
 * with points. */
static const char prog_json[] =
    "{\"name\":\"sim\",\"currency\":\"RUB\",\"minor_per_point\":100,\"rounding\":\"down\","
    "\"utc_offset\":\"+00:00\",\"point_kinds\":[{\"name\":\"regular\",\"ttl_days\":30}],"
    "\"earn\":{\"point_kind\":\"regular\"},"
    "\"rules\":[{\"id\":\"earn-10\",\"kind\":\"earn_percent\",\"percent\":10}]}";

static const char csv[] = "at,store,receipt,card,kind,sku,category,amount,qty\n"
                          "2026-01-05 10:00,s1,r1,A,sale,x,c,1000.00,1\n"
                          "2026-01-10 10:00,s1,r2,A,,x,c,500,1\n"
                          "2026-01-20 10:00,s1,r3,B,sale,x,c,\"200,00\",\n"
                          "2026-01-25,s1,r4,,sale,x,c,300,1\n"
                          "2026-02-15T10:00:00Z,s1,r5,A,sale,x,c,100,1\n"
                          "2026-02-16 10:00,s1,r3,B,return,x,c,200,1\n";

static kp_program *program_of(const char *json)
{
    kp_program *p = malloc(sizeof *p);
    kp_error e = {0};
    assert_non_null(p);
    assert_int_equal(kp_program_parse(json, strlen(json), p, &e), KP_OK);
    return p;
}

static kp_sim_history *history_of(const char *text, const kp_program *p)
{
    kp_sim_history *h = kp_sim_history_new();
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    kp_error e = {0};
    assert_non_null(f);
    kp_err err = kp_sim_history_csv(h, f, p, &e);
    if (err) print_error("%s: %s\n", e.field, e.message);
    assert_int_equal(err, KP_OK);
    fclose(f);
    return h;
}

/* Replays h under p into *r, which must run with no receipt refused. */
static void replay(const kp_program *p, const kp_sim_history *h, int32_t redemption_bp,
                   int threads, kp_sim_result *r)
{
    kp_sim_opts o = {.redemption_bp = redemption_bp, .threads = threads};
    kp_error e = {0};
    kp_err err = kp_sim_run(h, p, &o, r, &e);
    if (err) print_error("%s: %s\n", e.field, e.message);
    assert_int_equal(err, KP_OK);
    assert_int_equal(r->skipped, 0);
}

/* By hand, redemption 0.5:
 *  r1 A 1000.00: earns 100 (lot 1, expires 02-04).
 *  r2 A 500.00: may burn all 100, burns half: 50 (50.00 paid with points);
 *     earns 10% of the 450.00 paid: 45 (lot 2, expires 02-09).
 *  r3 B 200.00: earns 20. r4 without a card: revenue only.
 *  January: revenue 2000.00, issued 165, burnt 50, liability 115.
 *  r5 A 100.00 on 02-15: lots 1 (50 left) and 2 (45) expired before it: 95;
 *     nothing to burn; earns 10.
 *  r3's return on 02-16: its 20 points clawed back, 200.00 less revenue.
 *  February: revenue -100.00, issued 10 - 20 = -10, expired 95, liability 10. */
static void test_by_hand(void **state)
{
    (void)state;
    kp_program *p = program_of(prog_json);
    kp_sim_history *h = history_of(csv, p);
    assert_int_equal(kp_sim_history_count(h), 6);
    kp_sim_opts o = {.redemption_bp = 5000, .threads = 2};
    kp_sim_result r;
    kp_error e = {0};
    assert_int_equal(kp_sim_run(h, p, &o, &r, &e), KP_OK);
    assert_int_equal(r.receipts, 6);
    assert_int_equal(r.cards, 2);
    assert_int_equal(r.skipped, 0);
    assert_int_equal(r.n_months, 2);
    const kp_sim_month *jan = &r.months[0], *feb = &r.months[1];
    assert_int_equal(jan->year * 100 + jan->month, 202601);
    assert_int_equal(jan->revenue_minor, 200000);
    assert_int_equal(jan->member_revenue_minor, 170000);
    assert_int_equal(jan->receipts, 3);
    assert_int_equal(jan->receipts_nocard, 1);
    assert_int_equal(jan->issued, 165);
    assert_int_equal(jan->burnt, 50);
    assert_int_equal(jan->burnt_minor, 5000);
    assert_int_equal(jan->expired, 0);
    assert_int_equal(jan->liability, 115);
    assert_int_equal(feb->revenue_minor, -10000);
    assert_int_equal(feb->issued, -10);
    assert_int_equal(feb->burnt, 0);
    assert_int_equal(feb->expired, 95);
    assert_int_equal(feb->liability, 10);
    assert_int_equal(r.total.issued, 155);
    assert_int_equal(r.total.liability, 10);
    assert_int_equal(r.n_rules, 1);
    assert_string_equal(r.rules[0].rule, "earn-10");
    /* 175 earned at purchases, less r3's 20 taken back by its return */
    assert_int_equal(r.rules[0].points, 155);
    assert_int_equal(r.rules[0].points_returned, 20);
    /* No redemption: nothing burnt, 100 + 50 + 20 + 10 earned. */
    kp_sim_result r0;
    o.redemption_bp = 0;
    assert_int_equal(kp_sim_run(h, p, &o, &r0, &e), KP_OK);
    assert_int_equal(r0.total.burnt, 0);
    assert_int_equal(r0.months[0].issued, 170);
    /* --to: only January. */
    kp_sim_result rj;
    o.to = kp_program_date_start(p, 2026, 2, 1);
    assert_int_equal(kp_sim_run(h, p, &o, &rj, &e), KP_OK);
    assert_int_equal(rj.receipts, 4);
    assert_int_equal(rj.n_months, 1);
    kp_sim_result_free(&rj);
    kp_sim_result_free(&r0);
    kp_sim_result_free(&r);
    kp_sim_history_free(h);
    free(p);
}

/* Earn 10 %; Gold from 1 000.00 over 30 days, earnings x2, reviewed on
 * the 1st of every month; `downgrade` as given. */
static const char tiers_fmt[] =
    "{\"name\":\"sim\",\"currency\":\"RUB\",\"minor_per_point\":100,\"rounding\":\"down\","
    "\"utc_offset\":\"+00:00\",\"point_kinds\":[{\"name\":\"regular\"}],"
    "\"earn\":{\"point_kind\":\"regular\"},"
    "\"tiers\":{\"window_days\":30,\"review_months\":1,\"downgrade\":\"%s\","
    "\"levels\":[{\"name\":\"Gold\",\"min_spend\":100000,\"earn_multiplier\":\"2\"}]},"
    "\"rules\":[{\"id\":\"earn-10\",\"kind\":\"earn_percent\",\"percent\":10}]}";

static const char tiers_csv[] = "at,store,receipt,card,kind,sku,category,amount,qty\n"
                                "2026-01-10 10:00,s1,r1,A,,x,c,1000.00,1\n"
                                "2026-01-15 10:00,s1,r2,B,,x,c,1200.00,1\n"
                                "2026-01-20 10:00,s1,r2,B,return,x,c,1200.00,1\n"
                                "2026-02-05 10:00,s1,r3,B,,x,c,100.00,1\n"
                                "2026-02-10 10:00,s1,r4,A,,x,c,500.00,1\n"
                                "2026-03-05 10:00,s1,r5,A,,x,c,200.00,1\n";

/* By hand, no burning:
 *  review 01-01 (the first of the period): nobody spent, nobody moves.
 *  A 01-10 1000.00: earns 100. B 01-15 1200.00: 120, returned 01-20: -120.
 *  review 02-01, spend of [01-02, 02-01): A 1000.00 -> Gold; B 0 (the
 *    return took its purchase back) stays none.
 *  B 02-05 100.00: 10. A 02-10 500.00 at Gold: 50 x 2 = 100.
 *  review 03-01, spend of [01-30, 03-01): A 500.00 -> none (to_qualified),
 *    stays Gold (never).
 *  A 03-05 200.00: 20 at none, 40 at Gold.
 *  Issued: 100 + 0 + 10 + 100 + 20 = 230 (250 never downgrading); tier
 *  changes 2 (1); at the end none 2, Gold 0 (none 1, Gold 1). */
static void test_tiers_by_hand(void **state)
{
    (void)state;
    static const struct {
        const char *downgrade;
        int64_t issued, changes, none, gold;
    } cases[] = {{"to_qualified", 230, 2, 2, 0}, {"never", 250, 1, 1, 1}};
    for (size_t c = 0; c < 2; c++) {
        char json[1024];
        snprintf(json, sizeof json, tiers_fmt, cases[c].downgrade);
        kp_program *p = program_of(json);
        kp_sim_history *h = history_of(tiers_csv, p);
        kp_sim_result r;
        replay(p, h, 0, 2, &r);
        assert_int_equal(r.total.issued, cases[c].issued);
        assert_int_equal(r.months[1].issued, 110);
        assert_int_equal(r.tier_changes, cases[c].changes);
        assert_int_equal(r.n_tiers, 1);
        assert_string_equal(r.tier_names[0], "Gold");
        assert_int_equal(r.tier_cards[0], cases[c].none);
        assert_int_equal(r.tier_cards[1], cases[c].gold);
        kp_sim_result_free(&r);
        kp_sim_history_free(h);
        free(p);
    }
}

/* Labor earns 5 %, parts 10 % and have 10 % off, a first purchase earns at
 * least 300 points. */
static const char rules_json[] =
    "{\"name\":\"sim\",\"currency\":\"RUB\",\"minor_per_point\":100,\"rounding\":\"down\","
    "\"utc_offset\":\"+00:00\",\"point_kinds\":[{\"name\":\"regular\"}],"
    "\"earn\":{\"point_kind\":\"regular\"},"
    "\"rules\":[{\"id\":\"labor\",\"kind\":\"earn_percent\",\"category\":\"labor\",\"percent\":5},"
    "{\"id\":\"parts\",\"kind\":\"earn_percent\",\"category\":\"parts\",\"percent\":10},"
    "{\"id\":\"parts-off\",\"kind\":\"discount_fixed\",\"category\":\"parts\",\"percent\":10},"
    "{\"id\":\"first\",\"kind\":\"first_purchase_min\",\"points\":300}]}";

static const char rules_csv[] = "at,store,receipt,card,kind,sku,category,amount,qty\n"
                                "2026-01-10 10:00,s1,r1,A,,work,labor,1000.00,1\n"
                                "2026-01-10 10:00,s1,r1,A,,pad,parts,2000.00,2\n"
                                "2026-01-12 10:00,s1,r1,A,return,pad,parts,1000.00,1\n";

/* By hand: r1's parts get 200.00 off; paid: labor 1000.00, parts 1800.00.
 * labor earns 50, parts 180; "first" adds 70 to reach 300, spread by what
 * the lines paid: labor 25, parts 45. Lines: labor 75, parts 225.
 * The return of one pad of two: the ledger takes back 225 / 2 = 112 points
 * and 100.00 of discount. The parts line got 180 from "parts" and
 * 70 x 1800 / 2800 = 45 from "first": 112 x 180 / 225 = 89 (89.6) and
 * 112 x 45 / 225 = 22 (22.4), the 1 left to the larger, "parts": 90.
 * Net: parts 180 - 90 = 90, first 70 - 22 = 48, labor 50 (untouched),
 * parts-off 200.00 - 100.00 = 100.00; 188 points = 300 - 112 issued. */
static void test_rules_net_of_returns(void **state)
{
    (void)state;
    kp_program *p = program_of(rules_json);
    kp_sim_history *h = history_of(rules_csv, p);
    kp_sim_result r;
    replay(p, h, 0, 1, &r);
    assert_int_equal(r.total.issued, 188);
    assert_int_equal(r.n_rules, 4);
    static const struct {
        const char *rule;
        int64_t points, returned, discount, discount_returned;
    } want[] = {{"parts-off", 0, 0, 10000, 10000},
                {"parts", 90, 90, 0, 0},
                {"labor", 50, 0, 0, 0},
                {"first", 48, 22, 0, 0}};
    int64_t sum = 0;
    for (size_t i = 0; i < 4; i++) { /* costliest first: 100.00 off, then by points */
        assert_string_equal(r.rules[i].rule, want[i].rule);
        assert_int_equal(r.rules[i].points, want[i].points);
        assert_int_equal(r.rules[i].points_returned, want[i].returned);
        assert_int_equal(r.rules[i].discount_minor, want[i].discount);
        assert_int_equal(r.rules[i].discount_returned_minor, want[i].discount_returned);
        sum += r.rules[i].points;
    }
    assert_int_equal(sum, r.total.issued);
    kp_sim_result_free(&r);
    kp_sim_history_free(h);
    free(p);
}

/* Earn 10 %, 500 points on the birthday, 100 a year of tenure. */
static const char grant_rules_json[] =
    "{\"name\":\"sim\",\"currency\":\"RUB\",\"minor_per_point\":100,\"rounding\":\"down\","
    "\"utc_offset\":\"+00:00\",\"point_kinds\":[{\"name\":\"regular\"}],"
    "\"earn\":{\"point_kind\":\"regular\"},"
    "\"rules\":[{\"id\":\"earn-10\",\"kind\":\"earn_percent\",\"percent\":10},"
    "{\"id\":\"bday\",\"kind\":\"grant\",\"on\":\"birthday\",\"points\":500},"
    "{\"id\":\"tenure\",\"kind\":\"grant\",\"on\":\"tenure\",\"points\":100,\"per_year\":true}]}";

static const char grant_csv[] = "at,store,receipt,card,kind,sku,category,amount,qty\n"
                                "2026-01-05 10:00,s1,r1,B,,x,c,100.00,1\n"
                                "2026-01-10 10:00,s1,r2,A,,x,c,100.00,1\n"
                                "2027-01-20 10:00,s1,r3,B,,x,c,100.00,1\n"
                                "2027-02-01 10:00,s1,r4,A,,x,c,100.00,1\n";

/* By hand: the CSV knows no birthday nor joining; A's birthday (20
 * January) is told, B's is not. Both count tenure from their first receipt.
 *  A: earns 10 + 10; birthdays 2026-01-20 and 2027-01-20: 2 x 500; first
 *     anniversary 2027-01-10: 100.
 *  B: earns 10 + 10; no birthday; first anniversary 2027-01-05: 100.
 *  Issued 1 240; January 2026: 10 + 500 + 10 = 520. */
static void test_grants_by_hand(void **state)
{
    (void)state;
    kp_program *p = program_of(grant_rules_json);
    kp_sim_history *h = history_of(grant_csv, p);
    kp_error e = {0};
    assert_int_equal(kp_sim_history_card(h, "A", 1, 20, 0, &e), KP_OK);
    assert_int_equal(kp_sim_history_card(h, "C", 13, 1, 0, &e), KP_ERR_INVALID);
    kp_sim_result r;
    replay(p, h, 0, 2, &r);
    assert_int_equal(r.total.issued, 1240);
    assert_int_equal(r.months[0].issued, 520);
    assert_int_equal(r.birthday_grants, 2);
    assert_int_equal(r.tenure_grants, 2);
    assert_int_equal(r.cards_without_birthday, 1);
    assert_int_equal(r.cards_joined_unknown, 2);
    assert_int_equal(r.n_rules, 3);
    assert_string_equal(r.rules[0].rule, "bday");
    assert_int_equal(r.rules[0].points, 1000);
    assert_string_equal(r.rules[1].rule, "tenure");
    assert_int_equal(r.rules[1].points, 200);
    assert_int_equal(r.rules[2].points, 40);
    kp_sim_result_free(&r);
    kp_sim_history_free(h);
    free(p);
}

static void test_csv_errors(void **state)
{
    (void)state;
    kp_program *p = program_of(prog_json);
    static const char *const bad[] = {
        "at,store,receipt,card,kind,sku,category,amount,qty\nnot a time,s1,r1,A,,x,c,1,1\n",
        "at,store,receipt,card,kind,sku,category,amount,qty\n2026-01-01,s1,r1,A,,x,c,-1,1\n",
        "at,store,receipt,card,kind,sku,category,amount,qty\n2026-01-01,s1,r1,A,,x,c,1.234,1\n",
        "at,store,receipt,card,kind,sku,category,amount,qty\n2026-01-01,s1,r1,A,gift,x,c,1,1\n",
        "at,store,receipt,card,kind,sku,category,amount,qty\n2026-01-01,s1,r1,A,,x,c,1,0\n",
        "at,store,card,amount\n2026-01-01,s1,A,1\n",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kp_sim_history *h = kp_sim_history_new();
        FILE *f = fmemopen((void *)bad[i], strlen(bad[i]) + 1, "r");
        kp_error e = {0};
        kp_err err = kp_sim_history_csv(h, f, p, &e);
        if (err != KP_ERR_INVALID) print_error("case %zu passed\n", i);
        assert_int_equal(err, KP_ERR_INVALID);
        assert_true(e.message[0] != '\0');
        fclose(f);
        kp_sim_history_free(h);
    }
    free(p);
}

static uint64_t lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

/* A bigger generated history gives the very same JSON with 1, 2, 3 threads. */
static void test_threads_same(void **state)
{
    (void)state;
    kp_program *p = program_of(prog_json);
    kp_sim_history *h = kp_sim_history_new();
    uint64_t s = 42;
    kp_time t = kp_program_date_start(p, 2026, 1, 1);
    kp_error e = {0};
    for (int i = 0; i < 5000; i++) {
        t += (kp_time)(lcg(&s) % 3600);
        char card[16] = "", receipt[16];
        if (lcg(&s) % 5) snprintf(card, sizeof card, "c%u", (unsigned)(lcg(&s) % 300));
        snprintf(receipt, sizeof receipt, "r%d", i);
        kp_line l[2];
        memset(l, 0, sizeof l);
        snprintf(l[0].sku, sizeof l[0].sku, "a");
        snprintf(l[0].category, sizeof l[0].category, "c");
        l[0].amount_minor = (int64_t)(lcg(&s) % 500000);
        l[0].qty = 1;
        l[1] = l[0];
        snprintf(l[1].sku, sizeof l[1].sku, "b");
        l[1].qty = 2;
        assert_int_equal(kp_sim_history_add(h, t, "s1", receipt, card, false, l, 2, -1, &e), KP_OK);
        if (card[0] && i % 17 == 0) /* a return of line b */
            assert_int_equal(
                kp_sim_history_add(h, t + 60, "s1", receipt, card, true, &l[1], 1, -1, &e), KP_OK);
    }
    char *first = NULL;
    for (int threads = 1; threads <= 3; threads++) {
        kp_sim_opts o = {.redemption_bp = 6000, .threads = threads};
        kp_sim_result r;
        assert_int_equal(kp_sim_run(h, p, &o, &r, &e), KP_OK);
        assert_true(r.total.expired > 0);
        assert_true(r.total.burnt > 0);
        kp_buf b;
        kp_buf_init(&b, 1 << 24);
        kp_sim_json(&b, &r, NULL);
        assert_false(b.failed);
        kp_buf_puts(&b, "");
        if (!first)
            first = kp_buf_steal(&b);
        else
            assert_string_equal(b.data, first);
        kp_buf_release(&b);
        kp_sim_result_free(&r);
    }
    free(first);
    kp_sim_history_free(h);
    free(p);
}

/* ---- the same purchases through the service, on a real store */

static const char real_json[] =
    "{\"name\":\"sim real\",\"currency\":\"RUB\",\"minor_per_point\":100,\"rounding\":\"down\","
    "\"utc_offset\":\"+03:00\",\"point_kinds\":[{\"name\":\"regular\",\"ttl_days\":20}],"
    "\"earn\":{\"point_kind\":\"regular\"},"
    "\"rules\":[{\"id\":\"labor\",\"kind\":\"earn_percent\",\"category\":\"labor\",\"percent\":5},"
    "{\"id\":\"parts\",\"kind\":\"earn_percent\",\"category\":\"parts\",\"percent\":12},"
    "{\"id\":\"first\",\"kind\":\"first_purchase_min\",\"points\":300},"
    "{\"id\":\"cap\",\"kind\":\"burn_limit\",\"category\":\"labor\",\"percent\":30}]}";

/* The same with tiers reviewed monthly over 30 days' spend: Silver from
 * 10 000.00 (earnings x1.5), Gold from 25 000.00 (x2 and 5 % off). The
 * purchases below (about 5 a month a card, 100 to 7 000 each) cross both
 * thresholds up and down. */
static const char tiered_json[] =
    "{\"name\":\"sim tiers\",\"currency\":\"RUB\",\"minor_per_point\":100,\"rounding\":\"down\","
    "\"utc_offset\":\"+03:00\",\"point_kinds\":[{\"name\":\"regular\",\"ttl_days\":20}],"
    "\"earn\":{\"point_kind\":\"regular\"},"
    "\"tiers\":{\"window_days\":30,\"review_months\":1,\"downgrade\":\"to_qualified\","
    "\"levels\":[{\"name\":\"Silver\",\"min_spend\":1200000,\"earn_multiplier\":\"1.5\"},"
    "{\"name\":\"Gold\",\"min_spend\":1600000,\"earn_multiplier\":\"2\",\"discount_percent\":5}]},"
    "\"rules\":[{\"id\":\"labor\",\"kind\":\"earn_percent\",\"category\":\"labor\",\"percent\":5},"
    "{\"id\":\"parts\",\"kind\":\"earn_percent\",\"category\":\"parts\",\"percent\":12},"
    "{\"id\":\"cap\",\"kind\":\"burn_limit\",\"category\":\"labor\",\"percent\":30}]}";

/* The same with the scheduler's grants: 500 points on the birthday, 100 a
 * year of tenure on each anniversary. */
static const char grants_json[] =
    "{\"name\":\"sim grants\",\"currency\":\"RUB\",\"minor_per_point\":100,\"rounding\":\"down\","
    "\"utc_offset\":\"+03:00\",\"point_kinds\":[{\"name\":\"regular\",\"ttl_days\":20}],"
    "\"earn\":{\"point_kind\":\"regular\"},"
    "\"rules\":[{\"id\":\"labor\",\"kind\":\"earn_percent\",\"category\":\"labor\",\"percent\":5},"
    "{\"id\":\"parts\",\"kind\":\"earn_percent\",\"category\":\"parts\",\"percent\":12},"
    "{\"id\":\"bday\",\"kind\":\"grant\",\"on\":\"birthday\",\"points\":500},"
    "{\"id\":\"tenure\",\"kind\":\"grant\",\"on\":\"tenure\",\"points\":100,\"per_year\":true},"
    "{\"id\":\"cap\",\"kind\":\"burn_limit\",\"category\":\"labor\",\"percent\":30}]}";

enum { N_CARDS = 4 };
static char cards[N_CARDS][KP_STR_MAX];
static int n_cards;

/* The customers' birthdays of the four cards (the third has none). */
static const int birth[N_CARDS][2] = {{3, 15}, {5, 20}, {0, 0}, {7, 4}};
static int64_t card_account[N_CARDS];

static kp_err test_birthdays(void *ctx, kp_store *st, int month, int day, int64_t after,
                             int64_t *ids, size_t limit, size_t *n)
{
    (void)ctx;
    (void)st;
    *n = 0;
    for (int64_t id = after + 1; id <= card_account[N_CARDS - 1] + 1; id++)
        for (int c = 0; c < N_CARDS && *n < limit; c++)
            if (card_account[c] == id && birth[c][0] == month && birth[c][1] == day)
                ids[(*n)++] = id;
    return KP_OK;
}
static const kp_birthday_finder finder = {test_birthdays, NULL};
static void keep_card(void *ctx, const char *number)
{
    (void)ctx;
    if (n_cards < N_CARDS) snprintf(cards[n_cards++], KP_STR_MAX, "%s", number);
}

static int64_t sys_sum(const char *loc, int account)
{
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT coalesce(sum(points), 0) FROM postings WHERE account_id = %d",
             account);
    return fixture_query_int64(loc, sql);
}

/* Purchases and returns through the service under program `json`, the
 * scheduler's tick before each; then the replay of the same history (as
 * the test built it, and as read back from the database) must give the
 * ledger's totals. With tiers, the replay's tier changes must be the
 * ledger's too. */
enum { TIERED = 1, GRANTS = 2 };

static void reproduce(const char *json, unsigned flags)
{
    bool tiered = flags & TIERED, grants = flags & GRANTS;
    char loc[FIXTURE_LOCATION_MAX];
    fixture_location(loc, "simulate");
    kp_store *st;
    kp_error e = {0};
    assert_int_equal(kp_store_open(loc, true, &st, &e), KP_OK);
    int64_t v;
    n_cards = 0;
    assert_int_equal(st->ops->begin(st), KP_OK);
    assert_int_equal(kp_service_program_load(st, json, strlen(json), &v, &e), KP_OK);
    kp_program *p = malloc(sizeof *p);
    assert_int_equal(kp_service_program_get(st, 0, p, &e), KP_OK);
    /* the accounts open 2025-04-10: their first anniversary is in the history */
    kp_time joined = kp_program_date_start(p, 2025, 4, 10) + 36000;
    assert_int_equal(kp_service_cards_issue(st, N_CARDS, joined, keep_card, NULL, &e), KP_OK);
    assert_int_equal(st->ops->commit(st), KP_OK);
    for (int c = 0; c < N_CARDS; c++) {
        kp_card card;
        assert_int_equal(st->ops->card_find(st, cards[c], &card), KP_OK);
        card_account[c] = card.account_id;
    }
    kp_tick_opts tick_opts = {.birthdays = &finder};
    kp_scratch *sc = kp_scratch_new();
    kp_buf out;
    kp_buf_init(&out, 1 << 20);
    kp_purchase_req *req = calloc(1, sizeof *req);
    kp_return_req *ret = calloc(1, sizeof *ret);
    kp_sim_history *h = kp_sim_history_new();
    uint64_t s = 7;
    kp_time t = kp_program_date_start(p, 2026, 3, 1);
    int64_t returned = 0;
    for (int i = 0; i < 120; i++) {
        t += 3600 + (kp_time)(lcg(&s) % (3 * 86400));
        /* what is due first, as the server's scheduler does */
        kp_tick_report rep;
        memset(&rep, 0, sizeof rep);
        assert_int_equal(st->ops->begin(st), KP_OK);
        assert_int_equal(kp_service_tick(st, p, &tick_opts, t, 100000, sc, &rep, &e), KP_OK);
        assert_int_equal(st->ops->commit(st), KP_OK);
        const char *card = cards[lcg(&s) % N_CARDS];
        memset(req, 0, sizeof *req);
        snprintf(req->card, sizeof req->card, "%s", card);
        snprintf(req->receipt, sizeof req->receipt, "r%d", i);
        kp_basket *b = &req->basket;
        b->burn_request = lcg(&s) % 3 ? 0 : (int64_t)(lcg(&s) % 400);
        kp_line *l = &b->lines[b->n_lines++];
        snprintf(l->sku, sizeof l->sku, "work");
        snprintf(l->category, sizeof l->category, "labor");
        l->amount_minor = 10000 + (int64_t)(lcg(&s) % 300000);
        l->qty = 1;
        l = &b->lines[b->n_lines++];
        snprintf(l->sku, sizeof l->sku, "part");
        snprintf(l->category, sizeof l->category, "parts");
        l->amount_minor = (int64_t)(lcg(&s) % 200000);
        l->qty = 2;
        bool replayed;
        assert_int_equal(st->ops->begin(st), KP_OK);
        kp_err err = kp_service_purchase(st, p, "s1", req, t, sc, &out, &replayed, &e);
        if (err) print_error("purchase %d: %s\n", i, e.message);
        assert_int_equal(err, KP_OK);
        assert_int_equal(st->ops->commit(st), KP_OK);
        assert_int_equal(kp_sim_history_add(h, t, "s1", req->receipt, card, false, b->lines,
                                            b->n_lines, sc->quote.burned, &e),
                         KP_OK);
        if (i % 7 == 3) { /* a part returned an hour later */
            kp_time rt = t + 3600;
            memset(ret, 0, sizeof *ret);
            snprintf(ret->card, sizeof ret->card, "%s", card);
            snprintf(ret->receipt, sizeof ret->receipt, "ret%d", i);
            snprintf(ret->original_receipt, sizeof ret->original_receipt, "r%d", i);
            ret->request.n_lines = 1;
            snprintf(ret->request.lines[0].sku, KP_STR_MAX, "part");
            ret->request.lines[0].qty = 1;
            assert_int_equal(st->ops->begin(st), KP_OK);
            err = kp_service_return(st, NULL, "s1", ret, rt, sc, &out, &replayed, &e);
            if (err) print_error("return %d: %s\n", i, e.message);
            assert_int_equal(err, KP_OK);
            assert_int_equal(st->ops->commit(st), KP_OK);
            kp_line part = b->lines[1];
            part.qty = 1;
            part.amount_minor = b->lines[1].amount_minor / 2;
            assert_int_equal(
                kp_sim_history_add(h, rt, "s1", req->receipt, card, true, &part, 1, -1, &e), KP_OK);
            returned++;
            t = rt;
        }
    }
    /* Everything due at the last receipt expires in both. */
    kp_tick_report rep;
    memset(&rep, 0, sizeof rep);
    assert_int_equal(st->ops->begin(st), KP_OK);
    assert_int_equal(kp_service_tick(st, p, &tick_opts, t, 100000, sc, &rep, &e), KP_OK);
    assert_int_equal(st->ops->commit(st), KP_OK);
    /* what the history knows of the customers */
    for (int c = 0; c < N_CARDS; c++)
        assert_int_equal(kp_sim_history_card(h, cards[c], birth[c][0], birth[c][1], joined, &e),
                         KP_OK);

    int64_t issued = -sys_sum(loc, KP_SYS_ISSUED), burnt = sys_sum(loc, KP_SYS_REDEEMED),
            expired = sys_sum(loc, KP_SYS_EXPIRED);
    assert_true(issued > 0 && burnt > 0 && expired > 0 && returned > 0);
    int64_t tier_changes = fixture_query_int64(loc, "SELECT count(*) FROM tier_changes");
    int64_t granted = fixture_query_int64(loc, "SELECT count(*) FROM ops WHERE type = 6");
    /* By hand: the history runs from 2026-03-01 into September, so 03-15,
     * 05-20 and 07-04 are birthdays in it (the third card has none) and
     * 04-10 is every card's first anniversary. */
    assert_int_equal(granted, grants ? 3 + 4 : 0);
    if (tiered) {
        /* moved up and down */
        assert_true(tier_changes >= 4);
        assert_true(fixture_query_int64(loc, "SELECT count(*) FROM tier_changes WHERE to_tier = "
                                             "'Silver' AND from_tier = 'Gold'") > 0);
        /* and the tiers mattered: a replay without them would miss */
        kp_program *flat = malloc(sizeof *flat);
        *flat = *p;
        flat->n_tiers = 0;
        kp_sim_opts o = {.redemption_bp = -1, .threads = 1};
        kp_sim_result r;
        assert_int_equal(kp_sim_run(h, flat, &o, &r, &e), KP_OK);
        assert_true(r.total.issued < issued);
        assert_int_equal(r.tier_changes, 0);
        kp_sim_result_free(&r);
        free(flat);
    }
    for (int threads = 1; threads <= 2; threads++) {
        kp_sim_opts o = {.redemption_bp = -1, .threads = threads};
        kp_sim_result r;
        assert_int_equal(kp_sim_run(h, p, &o, &r, &e), KP_OK);
        assert_int_equal(r.skipped, 0);
        assert_int_equal(r.total.issued, issued);
        assert_int_equal(r.total.burnt, burnt);
        assert_int_equal(r.total.expired, expired);
        assert_int_equal(r.total.liability, issued - burnt - expired);
        /* the rules' points, net of returns, are the points issued */
        int64_t sum = 0;
        for (size_t k = 0; k < r.n_rules; k++) sum += r.rules[k].points;
        assert_int_equal(sum, issued);
        /* the ledger reviews every account, so its changes are the cards' */
        assert_int_equal(r.tier_changes, tiered ? tier_changes : 0);
        assert_int_equal(r.birthday_grants, grants ? 3 : 0);
        assert_int_equal(r.tenure_grants, grants ? 4 : 0);
        assert_int_equal(r.cards_without_birthday, grants ? 1 : 0);
        assert_int_equal(r.cards_joined_unknown, 0);
        kp_sim_result_free(&r);
    }
    /* The same history read back from the database's ledger. */
    kp_sim_history *hd = kp_sim_history_new();
    assert_int_equal(kp_sim_history_db(hd, st, 0, 0, &finder, &e), KP_OK);
    assert_int_equal(kp_sim_history_count(hd), kp_sim_history_count(h));
    for (int threads = 1; threads <= 2; threads++) {
        kp_sim_opts o = {.redemption_bp = -1, .threads = threads};
        kp_sim_result r;
        assert_int_equal(kp_sim_run(hd, p, &o, &r, &e), KP_OK);
        assert_int_equal(r.skipped, 0);
        assert_int_equal(r.total.issued, issued);
        assert_int_equal(r.total.burnt, burnt);
        assert_int_equal(r.total.expired, expired);
        assert_int_equal(r.tier_changes, tiered ? tier_changes : 0);
        assert_int_equal(r.birthday_grants + r.tenure_grants, granted);
        assert_int_equal(r.cards_without_birthday, grants ? 1 : 0);
        kp_sim_result_free(&r);
    }
    kp_sim_history_free(hd);
    kp_sim_history_free(h);
    free(req);
    free(ret);
    free(p);
    kp_buf_release(&out);
    kp_scratch_free(sc);
    kp_store_close(st);
    fixture_remove(loc);
}

static void test_reproduces_ledger(void **state)
{
    (void)state;
    reproduce(real_json, 0);
}

/* A tiered candidate identical to the running program: the replay moves
 * its cards between tiers at the same reviews as the scheduler did, so it
 * prices each purchase at the tier the till did. */
static void test_reproduces_ledger_tiers(void **state)
{
    (void)state;
    reproduce(tiered_json, TIERED);
}

/* A candidate with birthday and tenure grants: the replay gives them on the
 * days the scheduler did, from the customers' birthdays and the accounts'
 * creation (the history built here is told them; the database's is read
 * from the ledger and the birthday finder). */
static void test_reproduces_ledger_grants(void **state)
{
    (void)state;
    reproduce(grants_json, GRANTS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_by_hand),
        cmocka_unit_test(test_tiers_by_hand),
        cmocka_unit_test(test_rules_net_of_returns),
        cmocka_unit_test(test_grants_by_hand),
        cmocka_unit_test(test_csv_errors),
        cmocka_unit_test(test_threads_same),
        cmocka_unit_test(test_reproduces_ledger),
        cmocka_unit_test(test_reproduces_ledger_tiers),
        cmocka_unit_test(test_reproduces_ledger_grants),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
