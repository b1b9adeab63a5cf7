/* test_notify_office.c: the small parsers and the limiter behind the
 * notification routes (src/notify/office.h): the SMS STOP-word check (the
 * four words in any case, Cyrillic folded, spaces and punctuation around),
 * the UTC-offset parser (forms, bounds, junk refused naming "utc_offset")
 * and the login-code limiter (per contact: one a minute, five an hour, a
 * full table refuses). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "notify/office.h"

#define NOW ((kp_time)1780000000)

/* ------------------------------------------------------------ STOP words */

static void test_stop_words_in_any_case_with_space_and_punctuation(void **state)
{
    (void)state;
    static const char *const yes[] = {
        "STOP",        "stop",      "Stop",          "sToP",     "UNSUBSCRIBE", "unsubscribe",
        "Unsubscribe", "СТОП",      "стоп",          "Стоп",     "сТоП",        "стоП",
        "ОТПИСКА",     "отписка",   "Отписка",       "оТПИСКА",  "  STOP  ",    "\tстоп\r\n",
        "STOP!",       "\"Stop.\"", "...отписка!!!", " (СТОП) ", NULL};
    for (size_t i = 0; yes[i]; i++) {
        if (!kp_sms_is_stop(yes[i])) fail_msg("\"%s\" should be a stop word", yes[i]);
    }
    static const char *const no[] = {
        "", "   ", "!!!", "STO", "STOPS", "stop please", "please stop", "S T O P", "СТОПА", "стопп",
        "отпис", "UNSUBSCRIB", "UNSUBSCRIBE ME", "ОТПИСКА СТОП", "STOP\xD0",
        /* Latin look-alikes are not the Cyrillic word: "CTOП" with a Latin C, T, O. */
        "CTOП", "Hello", "1234", NULL};
    for (size_t i = 0; no[i]; i++) {
        if (kp_sms_is_stop(no[i])) fail_msg("\"%s\" should not be a stop word", no[i]);
    }
    /* Longer than a word can be, with the word in it: not a stop. */
    char long_text[64];
    memset(long_text, ' ', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    memcpy(long_text + 10, "STOP", 4);
    assert_true(kp_sms_is_stop(long_text)); /* spaces around are trimmed */
    memcpy(long_text + 20, "STOP", 4);
    assert_false(kp_sms_is_stop(long_text));
}

/* ------------------------------------------------------------ UTC offset */

static void test_utc_offsets_parse_within_bounds(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int32_t minutes;
    } ok[] = {{"+03:00", 180}, {"-05:30", -330}, {"Z", 0},         {"+00:00", 0},
              {"-00:00", 0},   {"+14:00", 840},  {"-14:00", -840}, {"+05:45", 345},
              {"+13:59", 839}, {"-09:30", -570}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int32_t m = 12345;
        kp_error e = {0};
        if (kp_utc_offset_parse(ok[i].text, &m, &e) != KP_OK)
            fail_msg("\"%s\" refused: %s: %s", ok[i].text, e.field, e.message);
        if (m != ok[i].minutes) fail_msg("\"%s\" gave %d, want %d", ok[i].text, m, ok[i].minutes);
    }
}

static void test_utc_offset_junk_is_refused_naming_the_field(void **state)
{
    (void)state;
    static const char *const bad[] = {"",        "z",       "UTC",     "+3:00",
                                      "03:00",   "+0300",   "+03:0",   "+03:000",
                                      "+03:60",  "+14:01",  "-14:30",  "+15:00",
                                      "+99:99",  " +03:00", "+03:00 ", "+03.00",
                                      "+0a:00",  "+03:0b",  "++3:00",  "−03:00" /* U+2212 */,
                                      "+03:00Z", "+03",     NULL};
    for (size_t i = 0; bad[i]; i++) {
        int32_t m = 777;
        kp_error e = {0};
        kp_err err = kp_utc_offset_parse(bad[i], &m, &e);
        if (err != KP_ERR_INVALID)
            fail_msg("\"%s\" gave %s, want invalid", bad[i], kp_err_name(err));
        assert_int_equal(m, 777); /* left as it was */
        assert_string_equal(e.field, "utc_offset");
        assert_non_null(strstr(e.message, "\"+03:00\""));
        assert_non_null(strstr(e.message, "-14:00 to +14:00"));
    }
}

/* ---------------------------------------------------- the code limiter */

static void ix_of(uint8_t ix[32], uint8_t a, uint8_t b, uint8_t tail)
{
    memset(ix, tail, 32);
    ix[0] = a;
    ix[1] = b;
}

static void test_limiter_allows_one_a_minute_per_contact(void **state)
{
    (void)state;
    kp_login_limiter *l = kp_login_limiter_new();
    assert_non_null(l);
    uint8_t anna[32], boris[32];
    ix_of(anna, 1, 2, 0xaa);
    ix_of(boris, 1, 3, 0xbb);
    int64_t retry = -1;
    assert_true(kp_login_limiter_take(l, anna, NOW, &retry));
    assert_int_equal(retry, 0);
    /* Within the minute: refused, told when. */
    assert_false(kp_login_limiter_take(l, anna, NOW + 1, &retry));
    assert_int_equal(retry, 59);
    assert_false(kp_login_limiter_take(l, anna, NOW + 59, &retry));
    assert_int_equal(retry, 1);
    /* Another contact is not held up by the first. */
    assert_true(kp_login_limiter_take(l, boris, NOW + 1, &retry));
    /* A refusal is not counted: the minute runs from the code that went. */
    assert_true(kp_login_limiter_take(l, anna, NOW + 60, &retry));
    assert_int_equal(retry, 0);
    kp_login_limiter_free(l);
}

static void test_limiter_allows_five_an_hour_per_contact(void **state)
{
    (void)state;
    kp_login_limiter *l = kp_login_limiter_new();
    uint8_t ix[32];
    ix_of(ix, 9, 9, 0x11);
    int64_t retry = -1;
    for (int i = 0; i < 5; i++) {
        if (!kp_login_limiter_take(l, ix, NOW + i * 60, &retry))
            fail_msg("code %d of the hour refused (retry after %lld)", i + 1, (long long)retry);
    }
    /* The sixth within the hour: refused until the first is an hour old. */
    assert_false(kp_login_limiter_take(l, ix, NOW + 300, &retry));
    assert_int_equal(retry, 3300);
    assert_false(kp_login_limiter_take(l, ix, NOW + 3599, &retry));
    assert_int_equal(retry, 1);
    assert_true(kp_login_limiter_take(l, ix, NOW + 3600, &retry));
    /* The minute between codes holds as before. */
    assert_false(kp_login_limiter_take(l, ix, NOW + 3630, &retry));
    assert_int_equal(retry, 30);
    assert_true(kp_login_limiter_take(l, ix, NOW + 3660, &retry));
    /* An hour of quiet: five again. */
    for (int i = 0; i < 5; i++)
        assert_true(kp_login_limiter_take(l, ix, NOW + 3 * 3600 + i * 60, &retry));
    assert_false(kp_login_limiter_take(l, ix, NOW + 3 * 3600 + 5 * 60, &retry));
    kp_login_limiter_free(l);
}

/* Contacts whose indexes begin alike share a neighbourhood of the table:
 * when it is full of live contacts a new one is refused (never another's
 * count taken over), and a stale slot is reused. */
static void test_limiter_refuses_when_the_table_is_full_and_reuses_stale_slots(void **state)
{
    (void)state;
    kp_login_limiter *l = kp_login_limiter_new();
    uint8_t ix[32];
    int64_t retry = -1;
    int taken = 0;
    for (int i = 0; i < 32; i++) {
        ix_of(ix, 7, 7, (uint8_t)i);
        if (kp_login_limiter_take(l, ix, NOW, &retry))
            taken++;
        else
            assert_true(retry >= 1);
    }
    assert_int_equal(taken, 8); /* the 8 slots probed from their common home */
    /* Each of those taken is still held to its own minute. */
    ix_of(ix, 7, 7, 0);
    assert_false(kp_login_limiter_take(l, ix, NOW + 30, &retry));
    assert_int_equal(retry, 30);
    /* An hour later the slots are stale: a new contact of that
     * neighbourhood gets one. */
    ix_of(ix, 7, 7, 0xee);
    assert_true(kp_login_limiter_take(l, ix, NOW + 3601, &retry));
    kp_login_limiter_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stop_words_in_any_case_with_space_and_punctuation),
        cmocka_unit_test(test_utc_offsets_parse_within_bounds),
        cmocka_unit_test(test_utc_offset_junk_is_refused_naming_the_field),
        cmocka_unit_test(test_limiter_allows_one_a_minute_per_contact),
        cmocka_unit_test(test_limiter_allows_five_an_hour_per_contact),
        cmocka_unit_test(test_limiter_refuses_when_the_table_is_full_and_reuses_stale_slots),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
