/*
 * test_settle.c: the settlement entries of coalition operations
 * (src/core/settle.c), each figure computed by hand in the comments, and
 * the ledger keeping lots of different issuers apart (src/core/ledger.c).
 * Programs are built field by field: partners fuel (FUEL-*; 0.50 per
 * purchase, 2.5% per point, 33.33% of breakage), wash (WASH-*), cafe
 * (CAFE-*); a point is worth 100 kopecks, or 500 tiyn in KZT.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <kopilka/coalition.h>
#include <kopilka/ledger.h>

static kp_program program;
static kp_account account;
static kp_quote quote;
static kp_settle_plan plan;

static void partner(const char *code, const char *pattern)
{
    kp_partner *p = &program.partners[program.n_partners++];
    memset(p, 0, sizeof *p);
    snprintf(p->code, sizeof p->code, "%s", code);
    snprintf(p->stores[0].match, sizeof p->stores[0].match, "%s", pattern);
    p->n_stores = 1;
}

static int setup(void **state)
{
    (void)state;
    memset(&program, 0, sizeof program);
    snprintf(program.currency, sizeof program.currency, "RUB");
    program.minor_per_point = 100;
    snprintf(program.point_kind, sizeof program.point_kind, "regular");
    partner("fuel", "FUEL-*");
    program.partners[0].fee_per_operation_minor = 50;
    program.partners[0].fee_per_point_bp = 250;
    program.partners[0].breakage_to_operator_bp = 3333;
    partner("wash", "WASH-*");
    partner("cafe", "CAFE-*");
    snprintf(program.currencies[0].code, sizeof program.currencies[0].code, "KZT");
    program.currencies[0].minor_per_point = 500;
    program.n_currencies = 1;
    /* rules[0]: fuel pays 10% at the cafe (a partner-funded promotion) */
    kp_rule *r = &program.rules[program.n_rules++];
    memset(r, 0, sizeof *r);
    snprintf(r->id, sizeof r->id, "fuel-pays-at-cafe");
    r->kind = KP_RULE_EARN_PERCENT;
    snprintf(r->partner, sizeof r->partner, "fuel");
    snprintf(r->at_partner, sizeof r->at_partner, "cafe");
    memset(&account, 0, sizeof account);
    account.id = 1;
    memset(&quote, 0, sizeof quote);
    return 0;
}

static void lot(int64_t id, const char *issuer, int64_t remaining, kp_time expires_at)
{
    kp_lot *l = &account.lots[account.n_lots++];
    memset(l, 0, sizeof *l);
    l->id = id;
    snprintf(l->kind, sizeof l->kind, "regular");
    snprintf(l->partner, sizeof l->partner, "%s", issuer);
    l->amount = l->remaining = remaining;
    l->expires_at = expires_at;
    account.balance += remaining;
}

static void take(int64_t lot_id, int64_t points)
{
    quote.takes[quote.n_takes++] = (kp_lot_take){lot_id, points};
    quote.burned += points;
}

static void entry_is(size_t i, kp_settle_kind kind, const char *payer, const char *payee,
                     int64_t points, int64_t amount, const char *currency)
{
    assert_true(i < plan.n);
    const kp_settle_entry *x = &plan.entries[i];
    assert_string_equal(kp_settle_kind_name(x->kind), kp_settle_kind_name(kind));
    assert_string_equal(x->payer, payer);
    assert_string_equal(x->payee, payee);
    assert_int_equal(x->points, points);
    assert_int_equal(x->amount_minor, amount);
    assert_string_equal(x->currency, currency);
}

static void test_kind_names(void **state)
{
    (void)state;
    assert_string_equal(kp_settle_kind_name(KP_SETTLE_ISSUE), "issue");
    assert_string_equal(kp_settle_kind_name(KP_SETTLE_BURN), "burn");
    assert_string_equal(kp_settle_kind_name(KP_SETTLE_EXPIRE), "expire");
    assert_string_equal(kp_settle_kind_name(KP_SETTLE_PROMO), "promo");
    assert_string_equal(kp_settle_kind_name(KP_SETTLE_FEE), "fee");
}

/* Without partners: no entry at all. */
static void test_no_partners_no_entries(void **state)
{
    (void)state;
    program.n_partners = 0;
    lot(1, "", 50, KP_TIME_NEVER);
    take(1, 20);
    quote.earned = 7;
    assert_int_equal(kp_settle_purchase(&program, "MAIN", "RUB", &account, &quote, 7, &plan, NULL),
                     KP_OK);
    assert_int_equal(plan.n, 0);
    assert_int_equal(kp_settle_credit(&program, "", "RUB", 5, &plan, NULL), KP_OK);
    assert_int_equal(plan.n, 0);
}

/* Earning 40 at the wash: the wash issues 40, owes nothing yet. */
static void test_issue_at_wash(void **state)
{
    (void)state;
    quote.earned = 40;
    assert_int_equal(kp_settle_purchase(&program, "WASH-1", "", &account, &quote, 40, &plan, NULL),
                     KP_OK);
    assert_int_equal(plan.n, 1);
    entry_is(0, KP_SETTLE_ISSUE, "wash", "wash", 40, 0, "RUB");
}

/* At the cafe: 30 points of the wash's (I != R: 30 x 100 = 3000 owed to
 * the cafe), 10 of the cafe's own (I = R: 0), 5 of the operator's (500);
 * 20 earned, of which fuel's promotion added 8 (20 - 12): fuel pays the
 * cafe 800. The cafe has no fees. */
static void test_burn_across_issuers_and_promo(void **state)
{
    (void)state;
    lot(1, "wash", 30, 100);
    lot(2, "cafe", 10, 200);
    lot(3, "", 50, KP_TIME_NEVER);
    take(1, 30);
    take(2, 10);
    take(3, 5);
    quote.earned = 20;
    quote.n_lines = 2;
    quote.lines[0].earn_rule = -1;
    quote.lines[1].earn_rule = 0;
    quote.lines[1].earned = 14;
    assert_int_equal(
        kp_settle_purchase(&program, "CAFE-7", "RUB", &account, &quote, 12, &plan, NULL), KP_OK);
    assert_int_equal(plan.n, 5);
    entry_is(0, KP_SETTLE_ISSUE, "cafe", "cafe", 20, 0, "RUB");
    entry_is(1, KP_SETTLE_PROMO, "fuel", "cafe", 8, 800, "RUB");
    entry_is(2, KP_SETTLE_BURN, "wash", "cafe", 30, 3000, "RUB");
    entry_is(3, KP_SETTLE_BURN, "cafe", "cafe", 10, 0, "RUB");
    entry_is(4, KP_SETTLE_BURN, "", "cafe", 5, 500, "RUB");
}

/* Two takes from lots of one issuer make one entry; at the operator's own
 * store the operator is the payee. In KZT a point is 500. */
static void test_burn_groups_by_issuer_kzt(void **state)
{
    (void)state;
    lot(1, "wash", 3, 100);
    lot(2, "fuel", 4, 150);
    lot(3, "wash", 6, 200);
    take(1, 3);
    take(2, 4);
    take(3, 6);
    assert_int_equal(kp_settle_purchase(&program, "MAIN", "KZT", &account, &quote, 0, &plan, NULL),
                     KP_OK);
    assert_int_equal(plan.n, 2);
    entry_is(0, KP_SETTLE_BURN, "wash", "", 9, 4500, "KZT");
    entry_is(1, KP_SETTLE_BURN, "fuel", "", 4, 2000, "KZT");
    /* a currency the program does not take is refused */
    kp_error e = {0};
    assert_int_equal(kp_settle_purchase(&program, "MAIN", "USD", &account, &quote, 0, &plan, &e),
                     KP_ERR_INVALID);
    assert_string_equal(e.field, "currency");
}

/* At the fuel chain: 37 earned; 0.50 per purchase; 2.5% per point:
 * 37 x 100 x 0.025 = 92.5, half up 93. */
static void test_fees(void **state)
{
    (void)state;
    quote.earned = 37;
    assert_int_equal(
        kp_settle_purchase(&program, "FUEL-2", "RUB", &account, &quote, 37, &plan, NULL), KP_OK);
    assert_int_equal(plan.n, 3);
    entry_is(0, KP_SETTLE_ISSUE, "fuel", "fuel", 37, 0, "RUB");
    entry_is(1, KP_SETTLE_FEE, "fuel", "", 0, 50, "RUB");
    entry_is(2, KP_SETTLE_FEE, "fuel", "", 37, 93, "RUB");
    /* a purchase earning nothing still owes the per-operation fee */
    quote.earned = 0;
    assert_int_equal(
        kp_settle_purchase(&program, "FUEL-2", "RUB", &account, &quote, 0, &plan, NULL), KP_OK);
    assert_int_equal(plan.n, 1);
    entry_is(0, KP_SETTLE_FEE, "fuel", "", 0, 50, "RUB");
}

/* The cafe purchase above returned in part: 7 of its 20 earned points and
 * 16 of its 45 burnt ones. Issue -7. Promo 8 x 7/20 = 2.8: -2 (-200).
 * Burn 16 split 30:10:5: quotas 10.667, 3.556, 1.778 = 10 + 3 + 1 = 14,
 * the 2 left to the largest remainders (.778 operator, .667 wash): wash
 * -11 (-1100), cafe -3 (0), operator -2 (-200). */
static void test_return_largest_remainder(void **state)
{
    (void)state;
    kp_settle_entry orig[5];
    memset(orig, 0, sizeof orig);
    const struct {
        kp_settle_kind k;
        const char *payer, *payee;
        int64_t pts, amt;
    } o[] = {{KP_SETTLE_ISSUE, "cafe", "cafe", 20, 0},
             {KP_SETTLE_PROMO, "fuel", "cafe", 8, 800},
             {KP_SETTLE_BURN, "wash", "cafe", 30, 3000},
             {KP_SETTLE_BURN, "cafe", "cafe", 10, 0},
             {KP_SETTLE_BURN, "", "cafe", 5, 500}};
    for (size_t i = 0; i < 5; i++) {
        orig[i].kind = o[i].k;
        snprintf(orig[i].currency, sizeof orig[i].currency, "RUB");
        snprintf(orig[i].payer, sizeof orig[i].payer, "%s", o[i].payer);
        snprintf(orig[i].payee, sizeof orig[i].payee, "%s", o[i].payee);
        orig[i].points = o[i].pts;
        orig[i].amount_minor = o[i].amt;
    }
    assert_int_equal(kp_settle_return(orig, 5, 20, 7, 45, 16, &plan, NULL), KP_OK);
    assert_int_equal(plan.n, 5);
    entry_is(0, KP_SETTLE_ISSUE, "cafe", "cafe", -7, 0, "RUB");
    entry_is(1, KP_SETTLE_PROMO, "fuel", "cafe", -2, -200, "RUB");
    entry_is(2, KP_SETTLE_BURN, "wash", "cafe", -11, -1100, "RUB");
    entry_is(3, KP_SETTLE_BURN, "cafe", "cafe", -3, 0, "RUB");
    entry_is(4, KP_SETTLE_BURN, "", "cafe", -2, -200, "RUB");

    /* The rest in a second return (13 earned, 29 burnt): the two returns
     * add up to the purchase negated, point for point and kopeck for
     * kopeck. At 20/20, 45/45: promo -8; less -2 before: -6 (-600). Burn
     * all: -30 -10 -5, less -11 -3 -2: -19 (-1900), -7, -3 (-300). */
    assert_int_equal(kp_settle_return_step(orig, 5, 20, 7, 20, 45, 16, 45, &plan, NULL), KP_OK);
    assert_int_equal(plan.n, 5);
    entry_is(0, KP_SETTLE_ISSUE, "cafe", "cafe", -13, 0, "RUB");
    entry_is(1, KP_SETTLE_PROMO, "fuel", "cafe", -6, -600, "RUB");
    entry_is(2, KP_SETTLE_BURN, "wash", "cafe", -19, -1900, "RUB");
    entry_is(3, KP_SETTLE_BURN, "cafe", "cafe", -7, 0, "RUB");
    entry_is(4, KP_SETTLE_BURN, "", "cafe", -3, -300, "RUB");

    /* More than the purchase is refused. */
    kp_error e = {0};
    assert_int_equal(kp_settle_return(orig, 5, 20, 21, 45, 0, &plan, &e), KP_ERR_INVALID);
}

/* The fuel purchase returned: 10 of 37 earned. The per-operation fee stays;
 * the per-point fee: 10 points, 93 x 10/37 = 25.1, half up -25. */
static void test_return_fees(void **state)
{
    (void)state;
    quote.earned = 37;
    assert_int_equal(
        kp_settle_purchase(&program, "FUEL-2", "RUB", &account, &quote, 37, &plan, NULL), KP_OK);
    kp_settle_entry orig[3];
    memcpy(orig, plan.entries, sizeof orig);
    assert_int_equal(kp_settle_return(orig, 3, 37, 10, 0, 0, &plan, NULL), KP_OK);
    assert_int_equal(plan.n, 2);
    entry_is(0, KP_SETTLE_ISSUE, "fuel", "fuel", -10, 0, "RUB");
    entry_is(1, KP_SETTLE_FEE, "fuel", "", -10, -25, "RUB");
}

/* Expiry of lots of fuel (100 + 3), the wash (40) and the operator (7),
 * and a fuel lot not yet due: fuel 103 points, the operator's share
 * 103 x 100 x 33.33% = 3432.99, half up 3433; the wash 40 (no share: 0);
 * the operator's own 7 (0). */
static void test_expire_breakage(void **state)
{
    (void)state;
    lot(1, "fuel", 100, 10);
    lot(2, "wash", 40, 20);
    lot(3, "", 7, 30);
    lot(4, "fuel", 3, 40);
    lot(5, "fuel", 9, 1000);
    kp_ledger_plan lp;
    int64_t expired = 0;
    assert_int_equal(kp_ledger_plan_expire(&account, 50, &lp, &expired), KP_OK);
    assert_int_equal(expired, 150);
    assert_int_equal(kp_settle_expire(&program, "RUB", &account, &lp, &plan, NULL), KP_OK);
    assert_int_equal(plan.n, 3);
    entry_is(0, KP_SETTLE_EXPIRE, "fuel", "", 103, 3433, "RUB");
    entry_is(1, KP_SETTLE_EXPIRE, "wash", "", 40, 0, "RUB");
    entry_is(2, KP_SETTLE_EXPIRE, "", "", 7, 0, "RUB");
}

/* A grant fuel funds: 15 points, fee 15 x 100 x 2.5% = 37.5, half up 38.
 * The operator's own grant: an issue, no fee. An unknown funder is refused. */
static void test_credit(void **state)
{
    (void)state;
    assert_int_equal(kp_settle_credit(&program, "fuel", "RUB", 15, &plan, NULL), KP_OK);
    assert_int_equal(plan.n, 2);
    entry_is(0, KP_SETTLE_ISSUE, "fuel", "fuel", 15, 0, "RUB");
    entry_is(1, KP_SETTLE_FEE, "fuel", "", 15, 38, "RUB");
    assert_int_equal(kp_settle_credit(&program, "", "RUB", 15, &plan, NULL), KP_OK);
    assert_int_equal(plan.n, 1);
    entry_is(0, KP_SETTLE_ISSUE, "", "", 15, 0, "RUB");
    kp_error e = {0};
    assert_int_equal(kp_settle_credit(&program, "bank", "RUB", 15, &plan, &e), KP_ERR_INVALID);
    assert_string_equal(e.field, "partner");
}

/* A rewards order at the operator: burns per issuer, payee the operator. */
static void test_burn_at_operator(void **state)
{
    (void)state;
    lot(1, "cafe", 10, 100);
    lot(2, "", 10, 200);
    kp_lot_take takes[2] = {{1, 4}, {2, 6}};
    assert_int_equal(kp_settle_burn(&program, "", "RUB", &account, takes, 2, &plan, NULL), KP_OK);
    assert_int_equal(plan.n, 2);
    entry_is(0, KP_SETTLE_BURN, "cafe", "", 4, 400, "RUB");
    entry_is(1, KP_SETTLE_BURN, "", "", 6, 0, "RUB");
}

/* Ledger: a credit joins only an open lot of its own issuer. */
static void test_credit_joins_own_issuer_only(void **state)
{
    (void)state;
    lot(11, "wash", 10, KP_TIME_NEVER);
    kp_ledger_plan lp;
    quote.earned = 5;
    assert_int_equal(
        kp_ledger_plan_purchase_issued(&program, &account, NULL, &quote, "cafe", 100, &lp), KP_OK);
    assert_true(lp.has_new_lot);
    assert_int_equal(lp.new_lot.id, 0);
    assert_string_equal(lp.new_lot.partner, "cafe");
    assert_int_equal(
        kp_ledger_plan_purchase_issued(&program, &account, NULL, &quote, "wash", 100, &lp), KP_OK);
    assert_int_equal(lp.new_lot.id, 11);
    assert_string_equal(lp.new_lot.partner, "wash");
    /* the operator's purchase (kp_ledger_plan_purchase) issues "" lots */
    assert_int_equal(kp_ledger_plan_purchase(&program, &account, NULL, &quote, 100, &lp), KP_OK);
    assert_int_equal(lp.new_lot.id, 0);
    assert_string_equal(lp.new_lot.partner, "");
}

/* Ledger: merging lots down to a cap keeps issuers apart. */
static void test_merge_keeps_issuers_apart(void **state)
{
    (void)state;
    lot(1, "wash", 10, 100);
    lot(2, "cafe", 10, 110);
    lot(3, "wash", 10, 120);
    kp_lot_merge merges[3];
    size_t n = account.n_lots;
    /* down to 2: the only pair that may merge is 1 and 3 (wash) */
    assert_int_equal(kp_lots_merge_plan(account.lots, &n, 2, 0, merges), 1);
    assert_int_equal(merges[0].from_id, 1);
    assert_int_equal(merges[0].into_id, 3);
    /* down to 1: cafe and wash never merge */
    assert_int_equal(kp_lots_merge_plan(account.lots, &n, 1, 0, merges), 0);
    assert_int_equal(n, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_kind_names, setup),
        cmocka_unit_test_setup(test_no_partners_no_entries, setup),
        cmocka_unit_test_setup(test_issue_at_wash, setup),
        cmocka_unit_test_setup(test_burn_across_issuers_and_promo, setup),
        cmocka_unit_test_setup(test_burn_groups_by_issuer_kzt, setup),
        cmocka_unit_test_setup(test_fees, setup),
        cmocka_unit_test_setup(test_return_largest_remainder, setup),
        cmocka_unit_test_setup(test_return_fees, setup),
        cmocka_unit_test_setup(test_expire_breakage, setup),
        cmocka_unit_test_setup(test_credit, setup),
        cmocka_unit_test_setup(test_burn_at_operator, setup),
        cmocka_unit_test_setup(test_credit_joins_own_issuer_only, setup),
        cmocka_unit_test_setup(test_merge_keeps_issuers_apart, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
