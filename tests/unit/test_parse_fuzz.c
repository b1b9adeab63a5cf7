/*
 * test_parse_fuzz.c: the request and program parsers against mutated input.
 * A seeded generator flips, inserts and deletes bytes of valid bodies; every
 * result must be KP_OK or a refusal with a message, never a crash (ASan and
 * UBSan watch) and never an accepted basket that breaks the limits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "service/service.h"

static const char *const seeds[] = {
    "{\"card\":\"2000000000017\",\"receipt\":\"R-1\",\"burn\":500,\"at\":\"2026-11-23T10:00:00Z\","
    "\"lines\":[{\"sku\":\"A\",\"category\":\"labor\",\"amount\":500000,\"qty\":2,\"promo\":false},"
    "{\"sku\":\"B\",\"category\":\"parts\",\"amount\":1}]}",
    "{\"card\":\"1\",\"receipt\":\"X\",\"original_receipt\":\"R-1\",\"lines\":[{\"sku\":\"A\",\"qty\":1}]}",
    "{\"name\":\"p\",\"currency\":\"RUB\",\"earn\":{\"ttl_days\":90},\"rules\":[{\"id\":\"a\",\"kind\":"
    "\"earn_percent\",\"category\":\"labor\",\"percent\":\"4.5\"},{\"id\":\"b\",\"kind\":"
    "\"burn_limit\",\"percent\":10}]}",
};

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static size_t mutate(const char *seed, char *out, size_t cap)
{
    size_t n = strlen(seed);
    memcpy(out, seed, n);
    static const char alphabet[] = "{}[]\":,0123456789-+.eE \\tnul\xff\x01";
    int edits = 1 + (int)(rng() % 6);
    for (int k = 0; k < edits; k++) {
        size_t at = n ? rng() % n : 0;
        switch (rng() % 4) {
        case 0: out[at] = alphabet[rng() % (sizeof alphabet - 1)]; break;
        case 1: /* delete */
            if (n > 1) {
                memmove(out + at, out + at + 1, n - at - 1);
                n--;
            }
            break;
        case 2: /* insert */
            if (n + 1 < cap) {
                memmove(out + at + 1, out + at, n - at);
                out[at] = alphabet[rng() % (sizeof alphabet - 1)];
                n++;
            }
            break;
        default: /* duplicate a slice: deep nesting, long strings, big numbers */
            if (n + 64 < cap) {
                size_t len = 1 + rng() % 32;
                if (at + len > n) len = n - at;
                memmove(out + at + len, out + at, n - at);
                n += len;
            }
        }
    }
    out[n] = '\0';
    return n;
}

static void test_parsers_survive_mutated_bodies(void **state)
{
    (void)state;
    kp_purchase_req *p = malloc(sizeof *p);
    kp_return_req *r = malloc(sizeof *r);
    kp_program *prog = malloc(sizeof *prog);
    char buf[4096];
    int accepted = 0, refused = 0;
    for (int i = 0; i < 30000; i++) {
        const char *seed = seeds[i % 3];
        size_t n = mutate(seed, buf, sizeof buf - 1);
        kp_error e = {0};
        kp_err err;
        if (i % 3 == 0) {
            err = kp_purchase_req_parse(buf, n, true, p, &e);
            if (err == KP_OK) {
                assert_true(p->basket.n_lines >= 1 && p->basket.n_lines <= KP_LINES_MAX);
                for (size_t k = 0; k < p->basket.n_lines; k++) {
                    assert_true(p->basket.lines[k].amount_minor >= 0);
                    assert_true(p->basket.lines[k].amount_minor <= KP_AMOUNT_MAX);
                }
            }
        } else if (i % 3 == 1) {
            err = kp_return_req_parse(buf, n, r, &e);
        } else {
            err = kp_program_parse(buf, n, prog, &e);
        }
        if (err == KP_OK) accepted++;
        else {
            refused++;
            assert_true(e.message[0] != '\0');
        }
    }
    /* Both outcomes happen: the mutations are neither all harmless nor all fatal. */
    assert_true(accepted > 100);
    assert_true(refused > 100);
    free(p);
    free(r);
    free(prog);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parsers_survive_mutated_bodies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
