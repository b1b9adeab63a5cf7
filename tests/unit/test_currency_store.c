/*
 * test_currency_store.c: the contract of a card's accounts per currency in
 * the storage seam (kp_store_ops.account_currency, account_currencies and
 * history's currency, store.h; docs/coalition.md "Currencies"), run against
 * every backend (KOPILKA_TEST_STORE=pg: PostgreSQL; else SQLite), through
 * the seam only: made once and found after, listed in currency order with
 * their balances, their owner found (account_owner), refused for a bad code, an unknown account or a currency
 * account; undone with its transaction; a currency account's operations in
 * its card's history with their currency; verify still clean.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fixture.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopilka/store.h>

#define T0 ((kp_time)1780000000)

typedef struct fx {
    char location[FIXTURE_LOCATION_MAX];
    kp_store *s;
    int64_t own, other;
} fx;

#define OK(s, call)                                                                             \
    do {                                                                                        \
        kp_err err_ = (call);                                                                   \
        if (err_ != KP_OK) fail_msg("%s: %d (%s)", #call, (int)err_, (s)->last_error);          \
    } while (0)

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    fixture_location(f->location, "currency");
    kp_error e = {0};
    if (kp_store_open(f->location, true, &f->s, &e) != KP_OK) {
        fprintf(stderr, "cannot open %s: %s\n", f->location, e.message);
        return -1;
    }
    if (f->s->ops->card_create(f->s, "2000000000017", KP_CARD_ACTIVE, T0, &f->own) != KP_OK ||
        f->s->ops->card_create(f->s, "2000000000024", KP_CARD_ACTIVE, T0, &f->other) != KP_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    kp_store_close(f->s);
    fixture_remove(f->location);
    free(f);
    return 0;
}

static size_t list(fx *f, int64_t account, kp_currency_account *out)
{
    size_t n = 99;
    OK(f->s, f->s->ops->account_currencies(f->s, account, out, KP_CURRENCY_ACCOUNTS_MAX, &n));
    return n;
}

static void test_made_once_then_found(void **state)
{
    fx *f = *state;
    kp_store *s = f->s;
    kp_currency_account got[KP_CURRENCY_ACCOUNTS_MAX];
    assert_int_equal(list(f, f->own, got), 0);
    int64_t kzt = 0, again = 0, uah = 0;
    OK(s, s->ops->account_currency(s, f->own, "KZT", T0, &kzt));
    assert_true(kzt > 0 && kzt != f->own && kzt != f->other);
    OK(s, s->ops->account_currency(s, f->own, "KZT", T0 + 5, &again));
    assert_int_equal(again, kzt);
    OK(s, s->ops->account_currency(s, f->own, "UAH", T0, &uah));
    assert_true(uah != kzt);
    /* In currency order, each its own account, empty. */
    assert_int_equal(list(f, f->own, got), 2);
    assert_string_equal(got[0].currency, "KZT");
    assert_int_equal(got[0].account_id, kzt);
    assert_string_equal(got[1].currency, "UAH");
    assert_int_equal(got[1].account_id, uah);
    assert_int_equal(got[0].balance, 0);
    /* Another card's accounts are its own; a currency account has none. */
    assert_int_equal(list(f, f->other, got), 0);
    assert_int_equal(list(f, kzt, got), 0);
    int64_t other_kzt = 0;
    OK(s, s->ops->account_currency(s, f->other, "KZT", T0, &other_kzt));
    assert_true(other_kzt != kzt);
    /* Whose they are. */
    int64_t owner = 0;
    char code[4] = "x";
    OK(s, s->ops->account_owner(s, kzt, &owner, code));
    assert_int_equal(owner, f->own);
    assert_string_equal(code, "KZT");
    OK(s, s->ops->account_owner(s, f->own, &owner, code));
    assert_int_equal(owner, f->own);
    assert_string_equal(code, "");
    OK(s, s->ops->account_owner(s, 999999, &owner, code));
    assert_int_equal(owner, 999999);
    /* A currency account loads as any account. */
    kp_account *a = malloc(sizeof *a);
    OK(s, s->ops->account_load(s, kzt, a));
    assert_int_equal(a->id, kzt);
    assert_int_equal(a->balance, 0);
    assert_int_equal(a->n_lots, 0);
    free(a);
    /* limit */
    size_t n = 9;
    OK(s, s->ops->account_currencies(s, f->own, got, 1, &n));
    assert_int_equal(n, 1);
    assert_string_equal(got[0].currency, "KZT");
}

static void test_refusals(void **state)
{
    fx *f = *state;
    kp_store *s = f->s;
    int64_t id = 0;
    assert_int_equal(s->ops->account_currency(s, f->own, "kzt", T0, &id), KP_ERR_INVALID);
    assert_int_equal(s->ops->account_currency(s, f->own, "KZTT", T0, &id), KP_ERR_INVALID);
    assert_int_equal(s->ops->account_currency(s, f->own, "", T0, &id), KP_ERR_INVALID);
    assert_non_null(strstr(s->last_error, "ISO 4217"));
    assert_int_equal(s->ops->account_currency(s, 999999, "KZT", T0, &id), KP_ERR_NOT_FOUND);
    int64_t kzt = 0;
    OK(s, s->ops->account_currency(s, f->own, "KZT", T0, &kzt));
    /* A currency account has no currency accounts of its own. */
    assert_int_equal(s->ops->account_currency(s, kzt, "UAH", T0, &id), KP_ERR_INVALID);
    kp_currency_account got[KP_CURRENCY_ACCOUNTS_MAX];
    assert_int_equal(list(f, f->own, got), 1);
}

static void test_undone_with_its_transaction(void **state)
{
    fx *f = *state;
    kp_store *s = f->s;
    int64_t id = 0;
    OK(s, s->ops->begin(s));
    OK(s, s->ops->account_currency(s, f->own, "KZT", T0, &id));
    OK(s, s->ops->rollback(s));
    kp_currency_account got[KP_CURRENCY_ACCOUNTS_MAX];
    assert_int_equal(list(f, f->own, got), 0);
    /* Inside a savepoint too. */
    OK(s, s->ops->begin(s));
    OK(s, s->ops->savepoint(s));
    OK(s, s->ops->account_currency(s, f->own, "KZT", T0, &id));
    OK(s, s->ops->rollback_to(s));
    int64_t kept = 0;
    OK(s, s->ops->account_currency(s, f->own, "UAH", T0, &kept));
    OK(s, s->ops->commit(s));
    assert_int_equal(list(f, f->own, got), 1);
    assert_string_equal(got[0].currency, "UAH");
}

static void history_op(fx *f, int64_t account, const char *receipt, int64_t points)
{
    kp_op_row row;
    memset(&row, 0, sizeof row);
    row.type = KP_OP_PURCHASE;
    row.account_id = account;
    snprintf(row.card, sizeof row.card, "2000000000017");
    snprintf(row.store, sizeof row.store, "KZ-1");
    snprintf(row.receipt, sizeof row.receipt, "%s", receipt);
    row.program_version = 1;
    row.at = T0;
    row.paid_minor = 0;
    /* No plan goes with it (verify would want its postings): the figures
     * say nothing; `amount` tells the operations apart. */
    row.amount_minor = points;
    OK(f->s, f->s->ops->op_insert(f->s, &row));
}

static void noop_report(void *ctx, const char *line)
{
    (void)ctx;
    fprintf(stderr, "verify: %s\n", line);
}

static void test_history_says_each_currency(void **state)
{
    fx *f = *state;
    kp_store *s = f->s;
    int64_t kzt = 0, other_kzt = 0;
    OK(s, s->ops->account_currency(s, f->own, "KZT", T0, &kzt));
    OK(s, s->ops->account_currency(s, f->other, "KZT", T0, &other_kzt));
    history_op(f, f->own, "R-1", 100);
    history_op(f, kzt, "K-1", 20);
    history_op(f, other_kzt, "K-2", 7); /* another card's: not in this history */
    kp_history_item items[8];
    size_t n = 0;
    OK(s, s->ops->history(s, f->own, items, 8, &n));
    assert_int_equal(n, 2);
    assert_string_equal(items[0].receipt, "K-1");
    assert_string_equal(items[0].currency, "KZT");
    assert_int_equal(items[0].amount_minor, 20);
    assert_string_equal(items[1].receipt, "R-1");
    assert_string_equal(items[1].currency, "");
    OK(s, s->ops->history(s, f->other, items, 8, &n));
    assert_int_equal(n, 1);
    assert_string_equal(items[0].currency, "KZT");
    /* The ledger's invariants hold with accounts that have no card. */
    int64_t problems = -1;
    OK(s, s->ops->verify(s, noop_report, NULL, &problems));
    assert_int_equal(problems, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_made_once_then_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_undone_with_its_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history_says_each_currency, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
