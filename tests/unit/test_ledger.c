/*
 * test_ledger.c: the ledger through the service over a real store (SQLite,
 * or PostgreSQL with KOPILKA_TEST_STORE=pg, see fixture.h): purchases, returns (whole, by line, after the points were spent), debt
 * repaid by later earnings, idempotency, and `verify` finding tampering.
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
#include <unistd.h>

#include "service/service.h"

static const char case1[] =
    "{\"name\":\"case1\",\"rules\":["
    "{\"id\":\"labor\",\"kind\":\"earn_percent\",\"category\":\"labor\",\"percent\":4},"
    "{\"id\":\"parts\",\"kind\":\"earn_percent\",\"category\":\"parts\",\"percent\":12},"
    "{\"id\":\"first\",\"kind\":\"first_purchase_min\",\"points\":1000},"
    "{\"id\":\"cap\",\"kind\":\"burn_limit\",\"category\":\"labor\",\"percent\":10}]}";

typedef struct fx {
    char path[FIXTURE_LOCATION_MAX]; /* the store's location (fixture.h) */
    kp_store *st;
    kp_program program;
    kp_scratch *sc;
    kp_buf out;
    char card[KP_STR_MAX];
    kp_purchase_req req;
    kp_return_req ret;
} fx;

static void keep_number(void *ctx, const char *number) { snprintf(ctx, KP_STR_MAX, "%s", number); }

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    fixture_location(f->path, "ledger");
    kp_error e = {0};
    assert_int_equal(kp_store_open(f->path, true, &f->st, &e), KP_OK);
    int64_t v;
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(kp_service_program_load(f->st, case1, strlen(case1), &v, &e), KP_OK);
    assert_int_equal(kp_service_cards_issue(f->st, 1, 1000, keep_number, f->card, &e), KP_OK);
    assert_int_equal(f->st->ops->commit(f->st), KP_OK);
    assert_int_equal(kp_service_program_get(f->st, 0, &f->program, &e), KP_OK);
    f->sc = kp_scratch_new();
    kp_buf_init(&f->out, 1 << 20);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    kp_store_close(f->st);
    kp_scratch_free(f->sc);
    kp_buf_release(&f->out);
    fixture_remove(f->path);
    free(f);
    return 0;
}

static void noop_report(void *ctx, const char *line) { (void)ctx; (void)line; }

static int64_t problems(fx *f)
{
    int64_t n = -1;
    assert_int_equal(f->st->ops->verify(f->st, noop_report, NULL, &n), KP_OK);
    return n;
}

static kp_err purchase(fx *f, const char *receipt, int64_t labor, int64_t parts, int64_t burn,
                       bool *replayed, kp_error *e)
{
    memset(&f->req, 0, sizeof f->req);
    snprintf(f->req.card, sizeof f->req.card, "%s", f->card);
    snprintf(f->req.receipt, sizeof f->req.receipt, "%s", receipt);
    f->req.basket.burn_request = burn;
    kp_line *l = &f->req.basket.lines[f->req.basket.n_lines++];
    snprintf(l->sku, sizeof l->sku, "work");
    snprintf(l->category, sizeof l->category, "labor");
    l->amount_minor = labor;
    l->qty = 1;
    if (parts) {
        l = &f->req.basket.lines[f->req.basket.n_lines++];
        snprintf(l->sku, sizeof l->sku, "part");
        snprintf(l->category, sizeof l->category, "parts");
        l->amount_minor = parts;
        l->qty = 2;
    }
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    kp_err err = kp_service_purchase(f->st, &f->program, "s1", &f->req, 5000, f->sc, &f->out,
                                     replayed, e);
    if (err) f->st->ops->rollback(f->st);
    else assert_int_equal(f->st->ops->commit(f->st), KP_OK);
    return err;
}

static kp_err do_return(fx *f, const char *receipt, const char *original, const char *sku,
                        int64_t qty, kp_error *e)
{
    memset(&f->ret, 0, sizeof f->ret);
    snprintf(f->ret.card, sizeof f->ret.card, "%s", f->card);
    snprintf(f->ret.receipt, sizeof f->ret.receipt, "%s", receipt);
    snprintf(f->ret.original_receipt, sizeof f->ret.original_receipt, "%s", original);
    if (sku == NULL) {
        f->ret.request.whole = true;
    } else {
        f->ret.request.n_lines = 1;
        snprintf(f->ret.request.lines[0].sku, KP_STR_MAX, "%s", sku);
        f->ret.request.lines[0].qty = qty;
    }
    bool replayed;
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    kp_err err = kp_service_return(f->st, NULL, "s1", &f->ret, 6000, f->sc, &f->out, &replayed, e);
    if (err) f->st->ops->rollback(f->st);
    else assert_int_equal(f->st->ops->commit(f->st), KP_OK);
    return err;
}

static int64_t balance(fx *f)
{
    kp_card c;
    assert_int_equal(f->st->ops->card_find(f->st, f->card, &c), KP_OK);
    assert_int_equal(f->st->ops->account_load(f->st, c.account_id, &f->sc->account), KP_OK);
    return f->sc->account.balance;
}

static void test_purchase_then_whole_return_restores_everything(void **state)
{
    fx *f = *state;
    kp_error e = {0};
    bool replayed;
    assert_int_equal(purchase(f, "R1", 500000, 200000, 0, &replayed, &e), KP_OK);
    assert_int_equal(balance(f), 1000);
    assert_int_equal(purchase(f, "R2", 2000000, 0, 5000, &replayed, &e), KP_OK);
    assert_int_equal(balance(f), 760);
    assert_int_equal(do_return(f, "RET2", "R2", NULL, 0, &e), KP_OK);
    assert_int_equal(f->sc->ret.earned_reversed, 760);
    assert_int_equal(f->sc->ret.burned_refunded, 1000);
    assert_int_equal(balance(f), 1000);
    assert_int_equal(f->sc->account.spend_minor, 700000);
    assert_int_equal(problems(f), 0);
    /* nothing is left to return */
    assert_int_equal(do_return(f, "RET2b", "R2", NULL, 0, &e), KP_ERR_INVALID);
}

static void test_return_after_burn_goes_negative_and_later_earnings_repay(void **state)
{
    fx *f = *state;
    kp_error e = {0};
    bool replayed;
    assert_int_equal(purchase(f, "R1", 500000, 200000, 0, &replayed, &e), KP_OK); /* +1000 */
    /* 100 000.00 of labour, 1000 points burnt: 4 % of 99 000.00 = 3960 */
    assert_int_equal(purchase(f, "R2", 10000000, 0, 1000, &replayed, &e), KP_OK);
    assert_int_equal(balance(f), 3960);
    /* 40 000.00 of labour, all 3960 burnt (cap 4000): 4 % of 36 040.00 = 1441 */
    assert_int_equal(purchase(f, "R3", 4000000, 0, 3960, &replayed, &e), KP_OK);
    assert_int_equal(balance(f), 1441);
    /* Returning R2 refunds its 1000 burnt points and claws back its 3960:
     * 1441 + 1000 - 3960 = -1519, owed as debt. */
    assert_int_equal(do_return(f, "X2", "R2", NULL, 0, &e), KP_OK);
    assert_int_equal(f->sc->ret.burned_refunded, 1000);
    assert_int_equal(f->sc->ret.earned_reversed, 3960);
    assert_int_equal(balance(f), -1519);
    assert_int_equal(f->sc->account.debt, 1519);
    assert_int_equal(f->sc->account.n_lots, 0);
    assert_int_equal(problems(f), 0);
    /* 4 % of 50 000.00 = 2000: 1519 repay the debt, 481 remain. */
    assert_int_equal(purchase(f, "R4", 5000000, 0, 0, &replayed, &e), KP_OK);
    assert_int_equal(balance(f), 481);
    assert_int_equal(f->sc->account.debt, 0);
    assert_int_equal(problems(f), 0);
}

static void test_partial_return_by_line_and_qty(void **state)
{
    fx *f = *state;
    kp_error e = {0};
    bool replayed;
    assert_int_equal(purchase(f, "R1", 100000, 0, 0, &replayed, &e), KP_OK);
    /* second visit: labour 10000.00 (400) + 2 parts 5000.00 (600) */
    assert_int_equal(purchase(f, "R2", 1000000, 500000, 0, &replayed, &e), KP_OK);
    assert_int_equal(balance(f), 1000 + 1000);
    assert_int_equal(do_return(f, "X1", "R2", "part", 1, &e), KP_OK);
    assert_int_equal(f->sc->ret.earned_reversed, 300);
    assert_int_equal(do_return(f, "X2", "R2", "part", 1, &e), KP_OK);
    assert_int_equal(f->sc->ret.earned_reversed, 300);
    assert_int_equal(do_return(f, "X3", "R2", "part", 1, &e), KP_ERR_INVALID);
    assert_string_equal(e.field, "lines[0].qty");
    assert_int_equal(do_return(f, "X4", "R2", "nope", 0, &e), KP_ERR_INVALID);
    assert_string_equal(e.field, "lines[0].sku");
    assert_int_equal(balance(f), 1400);
    assert_int_equal(problems(f), 0);
}

static void test_retry_replays_and_different_body_conflicts(void **state)
{
    fx *f = *state;
    kp_error e = {0};
    bool replayed = false;
    assert_int_equal(purchase(f, "R1", 500000, 0, 0, &replayed, &e), KP_OK);
    assert_false(replayed);
    assert_int_equal(purchase(f, "R1", 500000, 0, 0, &replayed, &e), KP_OK);
    assert_true(replayed);
    assert_non_null(strstr(f->out.data, "\"replayed\":true"));
    assert_int_equal(balance(f), 1000);
    assert_int_equal(purchase(f, "R1", 600000, 0, 0, &replayed, &e), KP_ERR_CONFLICT);
    assert_int_equal(balance(f), 1000);
}

static void test_verify_detects_a_tampered_balance(void **state)
{
    fx *f = *state;
    kp_error e = {0};
    bool replayed;
    assert_int_equal(purchase(f, "R1", 500000, 0, 0, &replayed, &e), KP_OK);
    assert_int_equal(problems(f), 0);
    assert_int_equal(fixture_exec(f->path, "UPDATE accounts SET balance = balance + 5", NULL, 0), 0);
    assert_true(problems(f) >= 2);
}

/* A retry is answered by rendering the stored figures again: byte for byte
 * the first answer, also when the script's note holds a tab, a newline and
 * a backslash, after a return of the purchase, and after a newer program
 * version (another currency) was loaded. */
static void test_replay_renders_the_first_answer_exactly(void **state)
{
    fx *f = *state;
    kp_error e = {0};
    static const char scripted[] =
        "{\"name\":\"s\",\"currency\":\"EUR\",\"rules\":["
        "{\"id\":\"e10\",\"kind\":\"earn_percent\",\"percent\":10},"
        "{\"id\":\"cap\",\"kind\":\"burn_limit\",\"category\":\"labor\",\"percent\":10}],"
        "\"script\":{\"source\":\"function earn(b) return b.earned * 2, "
        "'tab\\\\there, new\\\\nline, back\\\\\\\\slash' end\",\"earn\":\"earn\"}}";
    int64_t v;
    assert_int_equal(kp_service_program_load(f->st, scripted, strlen(scripted), &v, &e), KP_OK);
    assert_int_equal(kp_service_program_get(f->st, 0, &f->program, &e), KP_OK);
    bool replayed = true;
    assert_int_equal(purchase(f, "R1", 500000, 100000, 0, &replayed, &e), KP_OK);
    assert_false(replayed);
    assert_int_equal(purchase(f, "R2", 500000, 0, 700, &replayed, &e), KP_OK);
    assert_non_null(strstr(f->out.data, "tab\\there, new\\nline, back\\\\slash"));
    char *first = strdup(f->out.data);
    assert_non_null(strstr(first, "\"burn_limited_by\":\"rule cap"));
    assert_int_equal(do_return(f, "X1", "R2", "work", 1, &e), KP_OK);
    static const char other[] = "{\"name\":\"o\",\"currency\":\"USD\",\"rules\":[]}";
    assert_int_equal(kp_service_program_load(f->st, other, strlen(other), &v, &e), KP_OK);
    assert_int_equal(kp_service_program_get(f->st, 0, &f->program, &e), KP_OK);
    assert_int_equal(purchase(f, "R2", 500000, 0, 700, &replayed, &e), KP_OK);
    assert_true(replayed);
    assert_true(strncmp(f->out.data, "{\"replayed\":true,", 17) == 0);
    assert_string_equal(f->out.data + 17, first + 1);
    free(first);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_purchase_then_whole_return_restores_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_return_after_burn_goes_negative_and_later_earnings_repay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partial_return_by_line_and_qty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_replays_and_different_body_conflicts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_detects_a_tampered_balance, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_renders_the_first_answer_exactly, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
