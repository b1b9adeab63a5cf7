/*
 * test_script.c: the Lua script hook. A script adjusts earn and lowers burn;
 * the sandbox has no io, os, require, load or string.dump; a script that
 * loops forever, eats memory, fails or returns nonsense is reported and the
 * declarative result is kept; a broken script is refused at load.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "script/script.h"
#include "service/service_rules.h"

typedef struct fixture {
    kp_program program;
    kp_purchase_req req;
    kp_scratch *sc;
    kp_error e;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->sc = kp_scratch_new();
    f->sc->account.id = 1;
    f->sc->account.purchases = 3;
    kp_line *l = &f->req.basket.lines[f->req.basket.n_lines++];
    snprintf(l->sku, sizeof l->sku, "work");
    snprintf(l->category, sizeof l->category, "labor");
    l->amount_minor = 1000000;
    l->qty = 1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    kp_scratch_free(f->sc);
    free(f);
    return 0;
}

/* A program of 10 % earned, with `script` (JSON string body) naming
 * functions earn/burn as given. */
static kp_err load(fixture *f, const char *script, const char *fns)
{
    char json[4096];
    snprintf(
        json, sizeof json,
        "{\"name\":\"s\",\"rules\":[{\"id\":\"e10\",\"kind\":\"earn_percent\",\"percent\":10}],"
        "\"script\":{\"source\":\"%s\",%s,\"instructions_max\":20000,\"memory_max_kb\":256}}",
        script, fns);
    kp_err err = kp_program_parse(json, strlen(json), &f->program, &f->e);
    if (err == KP_OK) err = kp_script_check(&f->program, &f->e);
    return err;
}

static const kp_explain *script_note(const kp_quote *q)
{
    for (size_t i = 0; i < q->n_explain; i++)
        if (q->explain[i].kind == KP_RULE_SCRIPT) return &q->explain[i];
    return NULL;
}

static void test_script_doubles_earn_with_its_reason(void **state)
{
    fixture *f = *state;
    assert_int_equal(
        load(f, "function earn(b) return b.earned * 2, 'double on '..b.lines[1].category end",
             "\"earn\":\"earn\""),
        KP_OK);
    assert_int_equal(kp_service_price(&f->program, "main", &f->req, 1000, f->sc, &f->e), KP_OK);
    assert_int_equal(f->sc->quote.earned, 2000);
    assert_int_equal(f->sc->quote.lines[0].earned, 2000);
    assert_int_equal(f->sc->quote.balance_after, 2000);
    const kp_explain *x = script_note(&f->sc->quote);
    assert_non_null(x);
    assert_int_equal(x->points, 1000);
    assert_string_equal(x->text, "script earn: double on labor");
    /* The state is reused for the next basket. */
    assert_int_equal(kp_service_price(&f->program, "main", &f->req, 1000, f->sc, &f->e), KP_OK);
    assert_int_equal(f->sc->quote.earned, 2000);
}

static void test_script_lowers_the_burn(void **state)
{
    fixture *f = *state;
    kp_lot *l = &f->sc->account.lots[f->sc->account.n_lots++];
    memset(l, 0, sizeof *l);
    l->id = 7;
    snprintf(l->kind, sizeof l->kind, "regular");
    l->amount = l->remaining = 500;
    l->expires_at = KP_TIME_NEVER;
    f->sc->account.balance = 500;
    f->req.basket.burn_request = 400;
    assert_int_equal(load(f,
                          "function burn(b) if b.account.balance < 1000 then return 50 end "
                          "return b.burned end",
                          "\"burn\":\"burn\""),
                     KP_OK);
    assert_int_equal(kp_service_price(&f->program, "main", &f->req, 1000, f->sc, &f->e), KP_OK);
    assert_int_equal(f->sc->quote.burned, 50);
    assert_non_null(strstr(f->sc->quote.burn_limited_by, "script"));
    assert_int_equal(f->sc->quote.earned, 995); /* 10 % of 9950.00 */
}

static void declarative_kept(fixture *f, const char *why)
{
    assert_int_equal(kp_service_price(&f->program, "main", &f->req, 1000, f->sc, &f->e), KP_OK);
    assert_int_equal(f->sc->quote.earned, 1000);
    const kp_explain *x = script_note(&f->sc->quote);
    assert_non_null(x);
    if (strstr(x->text, why) == NULL) fail_msg("note \"%s\" does not say \"%s\"", x->text, why);
    assert_non_null(strstr(x->text, "rules' result is kept"));
}

static void test_endless_loop_runs_over_its_budget(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, "function earn(b) while true do end end", "\"earn\":\"earn\""), KP_OK);
    declarative_kept(f, "instruction budget");
    declarative_kept(f, "instruction budget"); /* and again, on a fresh state */
    /* Catching the budget's error does not buy more time. */
    assert_int_equal(load(f,
                          "function earn(b) while true do pcall(function() "
                          "while true do end end) end end",
                          "\"earn\":\"earn\""),
                     KP_OK);
    declarative_kept(f, "instruction budget");
}

static void test_memory_hog_hits_the_cap(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f,
                          "function earn(b) local t = {} for i = 1, 100000 do "
                          "t[i] = string.rep('x', 64) .. i end return 1 end",
                          "\"earn\":\"earn\""),
                     KP_OK);
    f->program.script_instructions_max = 100000000;
    declarative_kept(f, "memory");
}

static void test_sandbox_has_no_io_os_require_load_or_dump(void **state)
{
    fixture *f = *state;
    static const char *const escapes[] = {
        "function earn(b) return io.open('/etc/passwd') end",
        "function earn(b) os.exit(1) end",
        "function earn(b) return require('os') end",
        "function earn(b) return load('return 1')() end",
        "function earn(b) return dofile('/etc/passwd') end",
        "function earn(b) return string.dump(earn) end",
        "function earn(b) return math.random(10) end",
    };
    for (size_t i = 0; i < sizeof escapes / sizeof escapes[0]; i++) {
        assert_int_equal(load(f, escapes[i], "\"earn\":\"earn\""), KP_OK);
        declarative_kept(f, "failed");
    }
}

static void test_nonsense_results_are_refused(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, "function earn(b) return -5 end", "\"earn\":\"earn\""), KP_OK);
    declarative_kept(f, "whole number");
    assert_int_equal(load(f, "function earn(b) return 'lots' end", "\"earn\":\"earn\""), KP_OK);
    declarative_kept(f, "whole number");
    assert_int_equal(load(f, "function earn(b) return 1.5 end", "\"earn\":\"earn\""), KP_OK);
    declarative_kept(f, "whole number");
}

static void test_broken_scripts_are_refused_at_load(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, "function earn(b) return end end", "\"earn\":\"earn\""),
                     KP_ERR_INVALID);
    assert_string_equal(f->e.field, "script.source");
    assert_int_equal(load(f, "function other(b) return 1 end", "\"earn\":\"earn\""),
                     KP_ERR_INVALID);
    assert_string_equal(f->e.field, "script.earn");
    /* Bytecode is never loaded: only text. */
    assert_int_equal(load(f, "\\u001bLua", "\"earn\":\"earn\""), KP_ERR_INVALID);
    assert_string_equal(f->e.field, "script.source");
    /* A top level that never ends is refused by the budget too. */
    assert_int_equal(load(f, "while true do end", "\"earn\":\"earn\""), KP_ERR_INVALID);
    assert_non_null(strstr(f->e.message, "budget"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_script_doubles_earn_with_its_reason),       T(test_script_lowers_the_burn),
        T(test_endless_loop_runs_over_its_budget),         T(test_memory_hog_hits_the_cap),
        T(test_sandbox_has_no_io_os_require_load_or_dump), T(test_nonsense_results_are_refused),
        T(test_broken_scripts_are_refused_at_load),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
