/*
 * test_phone.c: data that people type. Phone numbers in every way a Russian
 * or Ukrainian customer types them come out in one E.164 form, by the
 * program's country (libphonenumber behind src/service/phone.h); bad ones
 * are refused with a sentence that says what is wrong. The program's
 * "country" field and its default. Card numbers with a wrong check digit.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopilka/card_number.h>
#include <kopilka/program.h>

#include "service/people.h"
#include "service/phone.h"

/* Normalises `typed` in `region` and checks the E.164 result. */
static void expect_phone(const char *typed, const char *region, const char *want)
{
    char out[KP_PHONE_MAX + 1];
    const char *why = NULL;
    bool ok = kp_norm_phone_in(typed, region, out, &why);
    if (!ok) fail_msg("\"%s\" in %s refused: %s", typed, region, why);
    assert_string_equal(out, want);
}

/* Normalises `typed` in `region`, expects a refusal whose sentence holds `why_part`. */
static void expect_refused(const char *typed, const char *region, const char *why_part)
{
    char out[KP_PHONE_MAX + 1] = "x";
    const char *why = NULL;
    bool ok = kp_norm_phone_in(typed, region, out, &why);
    if (ok) fail_msg("\"%s\" in %s accepted as %s", typed, region, out);
    assert_string_equal(out, "");
    assert_non_null(why);
    if (strstr(why, why_part) == NULL)
        fail_msg("\"%s\": why \"%s\" lacks \"%s\"", typed, why, why_part);
}

static void test_russian_number_in_every_typed_form_is_one_e164(void **state)
{
    (void)state;
    const char *forms[] = {"8 916 765-43-21", "8(916)7654321",   "+7 916 765 43 21",
                           "916 765-43-21",   "79167654321",     "+79167654321",
                           "8-916-765-43-21", "+7 (916) 765-43-21", " 8 (916) 765.43.21 "};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++)
        expect_phone(forms[i], "RU", "+79167654321");
    /* A Moscow landline and a free-phone number are numbers too. */
    expect_phone("8 (495) 123-45-67", "RU", "+74951234567");
    expect_phone("8 800 555 35 35", "RU", "+78005553535");
}

static void test_ukrainian_number_under_country_ua(void **state)
{
    (void)state;
    expect_phone("+380 50 123 4567", "UA", "+380501234567");
    expect_phone("050 123 4567", "UA", "+380501234567");
    expect_phone("+380 (50) 123-45-67", "UA", "+380501234567");
    /* A number with + is the same whatever the program's country. */
    expect_phone("+380 50 123 4567", "RU", "+380501234567");
    expect_phone("+7 916 765 43 21", "UA", "+79167654321");
    /* Without + a number belongs to the program's country: 050... is not Russian. */
    expect_refused("050 123 4567", "RU", "");
}

static void test_bad_numbers_are_refused_with_a_reason(void **state)
{
    (void)state;
    expect_refused("12345", "RU", "digits");
    expect_refused("8 916 765", "RU", "number of digits");
    expect_refused("8 916 765 43 21 99", "RU", "digits");
    expect_refused("+38050abc4567", "UA", "may hold only digits, a leading +");
    expect_refused("8 916 765-43-21 x12", "RU", "may hold only digits");
    expect_refused("", "RU", "");
    expect_refused("   ", "RU", "");
    expect_refused("+999 123 456 789", "RU", "unknown country code");
    /* Right length, but no such Russian operator code (+7 0xx). */
    expect_refused("+7 016 765 43 21", "RU", "");
    char longer[200];
    memset(longer, '1', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    expect_refused(longer, "RU", "too long");
}

static void test_without_a_country_a_number_needs_a_plus(void **state)
{
    (void)state;
    expect_phone("+7 916 765 43 21", "", "+79167654321");
    expect_refused("8 916 765-43-21", "", "must start with + and the country code");
}

static void test_old_name_uses_the_default_country(void **state)
{
    (void)state;
    char out[KP_PHONE_MAX + 1];
    const char *why;
    assert_true(kp_norm_phone("8 916 765-43-21", out, &why));
    assert_string_equal(out, "+79167654321");
    assert_string_equal(kp_phone_region_of(NULL), "RU");
}

static kp_err parse(const char *json, kp_program *p, kp_error *e)
{
    kp_error_clear(e);
    return kp_program_parse(json, strlen(json), p, e);
}

static void test_program_country_field_and_its_default(void **state)
{
    (void)state;
    static kp_program program;
    kp_program *p = &program;
    kp_error e;
    assert_int_equal(parse("{\"name\":\"a\",\"rules\":[]}", p, &e), KP_OK);
    assert_string_equal(p->country, "RU");
    assert_string_equal(kp_phone_region_of(p), "RU");
    assert_int_equal(parse("{\"name\":\"a\",\"rules\":[],\"currency\":\"UAH\"}", p, &e), KP_OK);
    assert_string_equal(p->country, "UA");
    assert_int_equal(parse("{\"name\":\"a\",\"rules\":[],\"currency\":\"KZT\"}", p, &e), KP_OK);
    assert_string_equal(p->country, "KZ");
    assert_int_equal(parse("{\"name\":\"a\",\"rules\":[],\"currency\":\"EUR\"}", p, &e), KP_OK);
    assert_string_equal(p->country, "RU");
    assert_int_equal(parse("{\"name\":\"a\",\"rules\":[],\"currency\":\"RUB\",\"country\":\"UA\"}", p, &e),
                     KP_OK);
    assert_string_equal(p->country, "UA");
    assert_int_equal(parse("{\"name\":\"a\",\"rules\":[],\"country\":\"\"}", p, &e), KP_OK);
    assert_string_equal(p->country, "");
    const char *bad[] = {"\"XX\"", "\"ru\"", "\"RUS\"", "7", "null"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char json[96];
        snprintf(json, sizeof json, "{\"name\":\"a\",\"rules\":[],\"country\":%s}", bad[i]);
        assert_int_equal(parse(json, p, &e), KP_ERR_INVALID);
        assert_string_equal(e.field, "country");
        assert_non_null(strstr(e.message, "two-letter ISO 3166 country code"));
    }
}

static void test_region_known(void **state)
{
    (void)state;
    assert_true(kp_phone_region_known("RU"));
    assert_true(kp_phone_region_known("UA"));
    assert_false(kp_phone_region_known("ZZ"));
    assert_false(kp_phone_region_known("R"));
    assert_false(kp_phone_region_known(NULL));
}

static void test_card_number_with_a_wrong_check_digit_says_so(void **state)
{
    (void)state;
    kp_error e;
    kp_error_clear(&e);
    assert_int_equal(kp_card_number_check("2000000000008", "card", &e), KP_OK);
    assert_int_equal(kp_card_number_check("2000000000009", "card", &e), KP_ERR_INVALID);
    assert_string_equal(e.field, "card");
    assert_non_null(strstr(e.message, "2000000000009 has a wrong check digit"));
    /* Two neighbouring digits swapped. */
    kp_error_clear(&e);
    assert_int_equal(kp_card_number_check("2000000000080", "new_card", &e), KP_ERR_INVALID);
    assert_string_equal(e.field, "new_card");
    /* Old numbers of other forms are looked up as they are. */
    kp_error_clear(&e);
    assert_int_equal(kp_card_number_check("OLD0000001", "card", &e), KP_OK);
    assert_int_equal(kp_card_number_check("12345", "card", &e), KP_OK);
    assert_int_equal(kp_card_number_check("200000000000-9", "card", &e), KP_OK);
    assert_int_equal(e.code, KP_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_russian_number_in_every_typed_form_is_one_e164),
        cmocka_unit_test(test_ukrainian_number_under_country_ua),
        cmocka_unit_test(test_bad_numbers_are_refused_with_a_reason),
        cmocka_unit_test(test_without_a_country_a_number_needs_a_plus),
        cmocka_unit_test(test_old_name_uses_the_default_country),
        cmocka_unit_test(test_program_country_field_and_its_default),
        cmocka_unit_test(test_region_known),
        cmocka_unit_test(test_card_number_with_a_wrong_check_digit_says_so),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
