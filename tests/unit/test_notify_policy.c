/* test_notify_policy.c: the program's "notifications" section (defaults,
 * each field's error), urgency, quiet hours (within a day, across
 * midnight, the customer's offset or the program's) and retry backoff. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include <kopilka/clock.h>

#include "notify/notify.h"

#define EMAIL (1u << KP_CHANNEL_EMAIL)
#define SMS (1u << KP_CHANNEL_SMS)

static kp_err parse(const char *json, kp_notify_policy *p, kp_error *e)
{
    memset(e, 0, sizeof *e);
    return kp_notify_policy_parse(json, strlen(json), p, e);
}

static void test_defaults_and_a_full_section(void **state)
{
    (void)state;
    kp_notify_policy p;
    kp_error e;
    assert_int_equal(parse("{\"name\":\"x\"}", &p, &e), KP_OK);
    assert_string_equal(p.language, "ru");
    assert_int_equal(p.remind_days, 7);
    assert_int_equal(p.quiet_from_minute, 21 * 60);
    assert_int_equal(p.quiet_to_minute, 9 * 60);
    assert_int_equal(p.transactional_default, EMAIL | SMS);
    assert_int_equal(p.marketing_default, 0);
    assert_true(p.kinds & (1u << KP_NOTIFY_CAMPAIGN));
    assert_true(p.kinds & (1u << KP_NOTIFY_EARNED));
    assert_int_equal(p.login_code_ttl_seconds, 300);
    assert_int_equal(p.login_code_attempts, 5);

    assert_int_equal(parse("{\"notifications\":{\"language\":\"en\",\"remind_days\":3,"
                           "\"quiet_hours\":{\"from\":\"22:30\",\"to\":\"08:00\"},"
                           "\"channels\":{\"transactional\":[\"sms\"],\"marketing\":[\"email\"]},"
                           "\"kinds\":[\"earned\",\"login_code\"],"
                           "\"login_code\":{\"ttl_seconds\":600,\"attempts\":3}}}",
                           &p, &e),
                     KP_OK);
    assert_string_equal(p.language, "en");
    assert_int_equal(p.remind_days, 3);
    assert_int_equal(p.quiet_from_minute, 22 * 60 + 30);
    assert_int_equal(p.quiet_to_minute, 8 * 60);
    assert_int_equal(p.transactional_default, SMS);
    assert_int_equal(p.marketing_default, EMAIL);
    assert_int_equal(p.kinds, (1u << KP_NOTIFY_EARNED) | (1u << KP_NOTIFY_LOGIN_CODE));
    assert_int_equal(p.login_code_ttl_seconds, 600);
    assert_int_equal(p.login_code_attempts, 3);
}

static void test_each_field_error_names_it(void **state)
{
    (void)state;
    static const struct {
        const char *section, *field, *says;
    } cases[] = {
        {"[]", "notifications", "object"},
        {"{\"langauge\":\"ru\"}", "notifications.langauge", "allowed: language"},
        {"{\"language\":\"de\"}", "notifications.language", "\"ru\" or \"en\""},
        {"{\"remind_days\":-1}", "notifications.remind_days", "from 0 to 365"},
        {"{\"remind_days\":\"7\"}", "notifications.remind_days", "integer"},
        {"{\"quiet_hours\":\"21-9\"}", "notifications.quiet_hours", "object"},
        {"{\"quiet_hours\":{\"from\":\"24:00\",\"to\":\"09:00\"}}",
         "notifications.quiet_hours.from", "HH:MM"},
        {"{\"quiet_hours\":{\"from\":\"21:00\"}}", "notifications.quiet_hours.to", "required"},
        {"{\"quiet_hours\":{\"from\":\"21:00\",\"to\":\"9:00\"}}",
         "notifications.quiet_hours.to", "HH:MM"},
        {"{\"quiet_hours\":{\"from\":\"21:00\",\"to\":\"09:00\",\"tz\":3}}",
         "notifications.quiet_hours.tz", "allowed: from, to"},
        {"{\"channels\":{\"transactional\":\"email\"}}", "notifications.channels.transactional",
         "array"},
        {"{\"channels\":{\"marketing\":[\"email\",\"pigeon\"]}}",
         "notifications.channels.marketing[1]", "\"email\" or \"sms\""},
        {"{\"channels\":{\"marketing\":[\"webhook\"]}}", "notifications.channels.marketing[0]",
         "\"email\" or \"sms\""},
        {"{\"channels\":{\"transactional\":[\"sms\",\"sms\"]}}",
         "notifications.channels.transactional[1]", "twice"},
        {"{\"channels\":{\"push\":[]}}", "notifications.channels.push", "allowed"},
        {"{\"kinds\":[\"earned\",\"earnt\"]}", "notifications.kinds[1]", "allowed: earned"},
        {"{\"kinds\":\"earned\"}", "notifications.kinds", "array"},
        {"{\"login_code\":{\"ttl_seconds\":5}}", "notifications.login_code.ttl_seconds",
         "from 30 to 3600"},
        {"{\"login_code\":{\"attempts\":0}}", "notifications.login_code.attempts", "from 1 to 20"},
        {"{\"login_code\":{\"tries\":3}}", "notifications.login_code.tries", "allowed"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char json[512];
        snprintf(json, sizeof json, "{\"notifications\":%s}", cases[i].section);
        kp_notify_policy p;
        kp_error e;
        assert_int_equal(parse(json, &p, &e), KP_ERR_INVALID);
        if (strcmp(e.field, cases[i].field) != 0 || strstr(e.message, cases[i].says) == NULL)
            fail_msg("%s: got %s: %s", cases[i].section, e.field, e.message);
        assert_int_equal(p.remind_days, 7); /* the defaults on failure */
    }
}

static void test_urgent_and_marketing_kinds(void **state)
{
    (void)state;
    assert_true(kp_notify_urgent(KP_NOTIFY_LOGIN_CODE));
    assert_true(kp_notify_urgent(KP_NOTIFY_CARD_BLOCKED));
    assert_true(kp_notify_urgent(KP_NOTIFY_BURNT));
    assert_false(kp_notify_urgent(KP_NOTIFY_EARNED));
    assert_false(kp_notify_urgent(KP_NOTIFY_CAMPAIGN));
    assert_true(kp_notify_marketing(KP_NOTIFY_CAMPAIGN));
    assert_true(kp_notify_marketing(KP_NOTIFY_BIRTHDAY));
    assert_false(kp_notify_marketing(KP_NOTIFY_EARNED));
    assert_false(kp_notify_marketing(KP_NOTIFY_LOGIN_CODE));
}

static kp_time at(const char *s)
{
    kp_time t;
    assert_true(kp_time_parse(s, &t));
    return t;
}

static void test_quiet_hours_wrap_midnight(void **state)
{
    (void)state;
    kp_notify_policy p;
    kp_notify_policy_default(&p); /* 21:00 to 09:00 */
    /* Program at UTC+3, no preferences. 12:00 Moscow: not quiet. */
    assert_int_equal(kp_notify_quiet_next(&p, NULL, 180, at("2027-03-01T09:00:00Z")),
                     at("2027-03-01T09:00:00Z"));
    /* 22:00 Moscow: next 09:00 Moscow = 06:00Z the next day. */
    assert_int_equal(kp_notify_quiet_next(&p, NULL, 180, at("2027-03-01T19:00:00Z")),
                     at("2027-03-02T06:00:00Z"));
    /* 02:00 Moscow (after midnight): 09:00 the same local day. */
    assert_int_equal(kp_notify_quiet_next(&p, NULL, 180, at("2027-03-01T23:00:00Z")),
                     at("2027-03-02T06:00:00Z"));
    /* The edges: 21:00 is quiet, 09:00 is not. */
    assert_int_equal(kp_notify_quiet_next(&p, NULL, 180, at("2027-03-01T18:00:00Z")),
                     at("2027-03-02T06:00:00Z"));
    assert_int_equal(kp_notify_quiet_next(&p, NULL, 180, at("2027-03-02T06:00:00Z")),
                     at("2027-03-02T06:00:00Z"));
    /* The customer's offset wins: Vladivostok (UTC+10) at 09:00Z is 19:00. */
    kp_notify_prefs prefs = {.has_utc_offset = true, .utc_offset_minutes = 600};
    assert_int_equal(kp_notify_quiet_next(&p, &prefs, 180, at("2027-03-01T09:00:00Z")),
                     at("2027-03-01T09:00:00Z"));
    /* ... and 12:00Z is 22:00 there: until 09:00 local = 23:00Z. */
    assert_int_equal(kp_notify_quiet_next(&p, &prefs, 180, at("2027-03-01T12:00:00Z")),
                     at("2027-03-01T23:00:00Z"));
    /* A negative offset (UTC-5): 03:00Z is 22:00 the day before. */
    prefs.utc_offset_minutes = -300;
    assert_int_equal(kp_notify_quiet_next(&p, &prefs, 180, at("2027-03-02T03:00:00Z")),
                     at("2027-03-02T14:00:00Z"));
    /* Preferences without an offset: the program's. */
    prefs.has_utc_offset = false;
    assert_int_equal(kp_notify_quiet_next(&p, &prefs, 0, at("2027-03-01T22:00:00Z")),
                     at("2027-03-02T09:00:00Z"));
}

static void test_quiet_hours_within_a_day_and_none(void **state)
{
    (void)state;
    kp_notify_policy p;
    kp_notify_policy_default(&p);
    p.quiet_from_minute = 13 * 60; /* a siesta, 13:00 to 15:00 */
    p.quiet_to_minute = 15 * 60;
    assert_int_equal(kp_notify_quiet_next(&p, NULL, 0, at("2027-03-01T14:30:00Z")),
                     at("2027-03-01T15:00:00Z"));
    assert_int_equal(kp_notify_quiet_next(&p, NULL, 0, at("2027-03-01T23:30:00Z")),
                     at("2027-03-01T23:30:00Z"));
    p.quiet_to_minute = p.quiet_from_minute; /* none */
    assert_int_equal(kp_notify_quiet_next(&p, NULL, 0, at("2027-03-01T13:30:00Z")),
                     at("2027-03-01T13:30:00Z"));
}

static void test_backoff_bounds_growth_and_retry_after(void **state)
{
    (void)state;
    kp_retry_policy r = {.max_attempts = 8, .base_seconds = 30, .max_seconds = 3600};
    const kp_time now = 1000000;
    /* The bounds: [d/2, d], d = 30 * 2^(n-1) up to 3600. */
    for (int32_t n = 1; n <= 12; n++) {
        int64_t d = 30;
        for (int32_t i = 1; i < n; i++) d = d * 2 > 3600 ? 3600 : d * 2;
        assert_int_equal(kp_notify_backoff(&r, n, 0, 0, now), now + d / 2);
        assert_int_equal(kp_notify_backoff(&r, n, 0, UINT32_MAX, now), now + d);
    }
    /* For one random value the delay never shrinks as attempts grow. */
    static const uint32_t rnds[] = {0, 1, 12345, 0x7fffffff, 0xdeadbeef, UINT32_MAX};
    for (size_t k = 0; k < sizeof rnds / sizeof rnds[0]; k++) {
        kp_time prev = now;
        for (int32_t n = 1; n <= 40; n++) {
            kp_time t = kp_notify_backoff(&r, n, 0, rnds[k], now);
            assert_true(t >= prev);
            assert_true(t <= now + 3600);
            prev = t;
        }
    }
    /* The jitter spreads: different random values give different times. */
    kp_time a = kp_notify_backoff(&r, 5, 0, 0x10000000u, now);
    kp_time b = kp_notify_backoff(&r, 5, 0, 0xC0000000u, now);
    assert_true(b > a);
    assert_true(a >= now + 240 && b <= now + 480);
    /* The provider's Retry-After is a floor, not a ceiling. */
    assert_int_equal(kp_notify_backoff(&r, 1, 7200, 0, now), now + 7200);
    assert_int_equal(kp_notify_backoff(&r, 1, 5, UINT32_MAX, now), now + 30);
    /* A huge attempt count does not overflow. */
    assert_int_equal(kp_notify_backoff(&r, INT32_MAX, 0, UINT32_MAX, now), now + 3600);
    /* Zeros: the documented defaults. */
    kp_retry_policy z = {0};
    assert_int_equal(kp_notify_backoff(&z, 1, 0, UINT32_MAX, now), now + 30);
}

static void test_policy_of_without_program_is_the_default(void **state)
{
    (void)state;
    const kp_notify_policy *p = kp_notify_policy_of(NULL, NULL);
    assert_non_null(p);
    assert_string_equal(p->language, "ru");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_a_full_section),
        cmocka_unit_test(test_each_field_error_names_it),
        cmocka_unit_test(test_urgent_and_marketing_kinds),
        cmocka_unit_test(test_quiet_hours_wrap_midnight),
        cmocka_unit_test(test_quiet_hours_within_a_day_and_none),
        cmocka_unit_test(test_backoff_bounds_growth_and_retry_after),
        cmocka_unit_test(test_policy_of_without_program_is_the_default),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
