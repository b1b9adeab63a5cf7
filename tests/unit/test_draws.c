/*
 * test_draws.c: the prize draws' procedure on fixed vectors (docs/marketing.md
 * "Prize draws"): a known seed and entries give known winners, written out
 * here (computed apart, by the procedure as the document states it); the
 * rejection step of the ticket; refusals of entries out of order; and
 * kp_draw_verify_text() on a published JSON and on tampered copies.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/draws.h"

static const kp_draw_entry E5[5] = {{"0a00000000000001", 3}, {"1b00000000000002", 1},
                                    {"2c00000000000003", 5}, {"3d00000000000004", 2},
                                    {"4e00000000000005", 7}};
static const kp_draw_prize TV_MUGS[2] = {{"TV", 1}, {"Mug", 2}};

static void seed_of(uint8_t seed[32], int first, int step)
{
    for (int i = 0; i < 32; i++) seed[i] = (uint8_t)(first + i * step);
}

static void test_digest(void **state)
{
    char d[65];
    kp_draw_entries_digest(E5, 5, d);
    assert_string_equal(d, "eb1a74d462236cd3073fd3e839968d84a3806ab97c8423bbd5655d5bd09ddbac");
}

static void test_known_winners(void **state)
{
    uint8_t seed[32];
    seed_of(seed, 0, 1); /* 00 01 02 ... 1f */
    kp_draw_winner w[KP_DRAW_SLOTS_MAX];
    size_t n = 0;
    kp_error e = {0};
    assert_int_equal(kp_draw_winners(seed, E5, 5, TV_MUGS, 2, w, &n, &e), KP_OK);
    assert_int_equal(n, 3);
    assert_int_equal(w[0].slot, 0);
    assert_int_equal(w[0].prize, 0);
    assert_string_equal(w[0].id, "2c00000000000003");
    assert_int_equal(w[1].prize, 1);
    assert_string_equal(w[1].id, "4e00000000000005");
    assert_int_equal(w[2].slot, 2);
    assert_string_equal(w[2].id, "0a00000000000001");
    /* more slots than participants: each wins once, then the slots stay empty */
    kp_draw_prize ten = {"A", 10};
    assert_int_equal(kp_draw_winners(seed, E5, 5, &ten, 1, w, &n, &e), KP_OK);
    assert_int_equal(n, 5);
    static const char *const order[5] = {"2c00000000000003", "4e00000000000005",
                                         "0a00000000000001", "3d00000000000004",
                                         "1b00000000000002"};
    for (int i = 0; i < 5; i++) assert_string_equal(w[i].id, order[i]);
    /* one entry count changed: the digest changes every ticket */
    kp_draw_entry e2[5];
    memcpy(e2, E5, sizeof e2);
    e2[1].count = 2;
    assert_int_equal(kp_draw_winners(seed, e2, 5, TV_MUGS, 2, w, &n, &e), KP_OK);
    assert_string_equal(w[0].id, "4e00000000000005");
    assert_string_equal(w[1].id, "2c00000000000003");
    assert_string_equal(w[2].id, "1b00000000000002");
    /* no entries: no winners */
    assert_int_equal(kp_draw_winners(seed, E5, 0, TV_MUGS, 2, w, &n, &e), KP_OK);
    assert_int_equal(n, 0);
}

/* A total of 3 * 2^61 + 1 entries: about a quarter of the tickets are
 * rejected (2^64 mod total = 2^62 - 2). Seed 1e x 32 rejects slot 0's
 * first ticket, whose remainder would have given "a"; its second gives
 * "b". Seed 01 x 32 is accepted at once. */
static void test_rejection(void **state)
{
    const kp_draw_entry big[3] = {{"a", INT64_C(1) << 62}, {"b", INT64_C(1) << 61}, {"c", 1}};
    kp_draw_prize two = {"P", 2};
    uint8_t seed[32];
    kp_draw_winner w[KP_DRAW_SLOTS_MAX];
    size_t n = 0;
    kp_error e = {0};
    seed_of(seed, 0x1e, 0);
    assert_int_equal(kp_draw_winners(seed, big, 3, &two, 1, w, &n, &e), KP_OK);
    assert_int_equal(n, 2);
    assert_string_equal(w[0].id, "b");
    assert_string_equal(w[1].id, "a");
    seed_of(seed, 1, 0);
    assert_int_equal(kp_draw_winners(seed, big, 3, &two, 1, w, &n, &e), KP_OK);
    assert_string_equal(w[0].id, "b");
    assert_string_equal(w[1].id, "a");
    seed_of(seed, 2, 0);
    assert_int_equal(kp_draw_winners(seed, big, 3, &two, 1, w, &n, &e), KP_OK);
    assert_string_equal(w[0].id, "a");
    assert_string_equal(w[1].id, "b");
}

static void test_refusals(void **state)
{
    uint8_t seed[32] = {0};
    kp_draw_winner w[KP_DRAW_SLOTS_MAX];
    size_t n = 0;
    kp_error e = {0};
    kp_draw_entry bad[2] = {{"b", 1}, {"a", 1}};
    assert_int_equal(kp_draw_winners(seed, bad, 2, TV_MUGS, 2, w, &n, &e), KP_ERR_INVALID);
    assert_string_equal(e.field, "entries");
    kp_draw_entry dup[2] = {{"a", 1}, {"a", 2}};
    assert_int_equal(kp_draw_winners(seed, dup, 2, TV_MUGS, 2, w, &n, &e), KP_ERR_INVALID);
    kp_draw_entry zero[1] = {{"a", 0}};
    assert_int_equal(kp_draw_winners(seed, zero, 1, TV_MUGS, 2, w, &n, &e), KP_ERR_INVALID);
    kp_draw_prize many = {"X", KP_DRAW_SLOTS_MAX + 1};
    assert_int_equal(kp_draw_winners(seed, E5, 5, &many, 1, w, &n, &e), KP_ERR_INVALID);
    assert_string_equal(e.field, "prizes");
}

/* The published JSON of the fixed vector (seed 00..1f). */
static char *published(const char *seed_hex, const char *commitment, int64_t count1,
                       int64_t total, const char *digest, const char *winner0)
{
    char *s = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&s, &len);
    fprintf(f,
            "{\"id\":1,\"name\":\"New year\",\"procedure\":\"kopilka-draw-v1\","
            "\"state\":\"closed\",\"commitment\":\"%s\",\"seed\":\"%s\","
            "\"prizes\":[{\"name\":\"TV\",\"count\":1},{\"name\":\"Mug\",\"count\":2}],"
            "\"entries\":[{\"id\":\"0a00000000000001\",\"count\":3},"
            "{\"id\":\"1b00000000000002\",\"count\":%lld},"
            "{\"id\":\"2c00000000000003\",\"count\":5},{\"id\":\"3d00000000000004\",\"count\":2},"
            "{\"id\":\"4e00000000000005\",\"count\":7}],\"total_entries\":%lld,"
            "\"entries_digest\":\"%s\",\"winners\":["
            "{\"slot\":0,\"prize\":\"TV\",\"id\":\"%s\"},"
            "{\"slot\":1,\"prize\":\"Mug\",\"id\":\"4e00000000000005\"},"
            "{\"slot\":2,\"prize\":\"Mug\",\"id\":\"0a00000000000001\"}]}",
            commitment, seed_hex, (long long)count1, (long long)total, digest, winner0);
    fclose(f);
    return s;
}

typedef struct lines {
    int n;
    char text[8][512];
} lines;

static void keep(void *ctx, const char *line)
{
    lines *l = ctx;
    if (l->n < 8) snprintf(l->text[l->n], sizeof l->text[0], "%s", line);
    l->n++;
}

#define SEED "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define COMMIT "630dcd2966c4336691125448bbb25b4ff412a49c732db2c8abc1b8581bd710dd"
#define DIGEST "eb1a74d462236cd3073fd3e839968d84a3806ab97c8423bbd5655d5bd09ddbac"

static void test_verify(void **state)
{
    kp_error e = {0};
    lines l = {0};
    char *ok = published(SEED, COMMIT, 1, 18, DIGEST, "2c00000000000003");
    assert_int_equal(kp_draw_verify_text(ok, strlen(ok), keep, &l, &e), 0);
    free(ok);
    /* another seed: the commitment no longer matches (and the winners) */
    memset(&l, 0, sizeof l);
    char *seed = published("ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", COMMIT, 1, 18, DIGEST, "2c00000000000003");
    assert_true(kp_draw_verify_text(seed, strlen(seed), keep, &l, &e) >= 1);
    assert_non_null(strstr(l.text[0], "commitment"));
    free(seed);
    /* one entry's count changed: total, digest and winners say so */
    memset(&l, 0, sizeof l);
    char *count = published(SEED, COMMIT, 2, 18, DIGEST, "2c00000000000003");
    assert_true(kp_draw_verify_text(count, strlen(count), keep, &l, &e) >= 2);
    assert_non_null(strstr(l.text[0], "total_entries"));
    assert_non_null(strstr(l.text[1], "entries_digest"));
    free(count);
    /* another winner claimed */
    memset(&l, 0, sizeof l);
    char *win = published(SEED, COMMIT, 1, 18, DIGEST, "3d00000000000004");
    assert_int_equal(kp_draw_verify_text(win, strlen(win), keep, &l, &e), 1);
    assert_non_null(strstr(l.text[0], "slot 0"));
    free(win);
    /* not a draw */
    assert_int_equal(kp_draw_verify_text("[1]", 3, keep, &l, &e), -1);
}

int main(void)
{
    if (sodium_init() < 0) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digest),     cmocka_unit_test(test_known_winners),
        cmocka_unit_test(test_rejection),  cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_verify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
