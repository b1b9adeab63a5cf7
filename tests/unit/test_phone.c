/*
 * test_phone.c: data that people type. Phone numbers in every way a Russian
 * or Ukrainian customer types them come out in one E.164 form, by the
 * program's country (libphonenumber behind src/service/phone.h); bad ones
 * are refused with a sentence that says what is wrong. The program's
 * "country" field and its default. Card numbers with a wrong check digit.
 * Phones stored before E.164 ("+" and the digits as typed) rewritten by
 * the migration, over a real store (SQLite, or
 * PostgreSQL with KOPILKA_TEST_STORE=pg, see fixture.h).
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
#include <unistd.h>

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
    const char *forms[] = {"8 916 765-43-21", "8(916)7654321",      "+7 916 765 43 21",
                           "916 765-43-21",   "79167654321",        "+79167654321",
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
    assert_int_equal(
        parse("{\"name\":\"a\",\"rules\":[],\"currency\":\"RUB\",\"country\":\"UA\"}", p, &e),
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

static void test_legacy_phone_read_again(void **state)
{
    (void)state;
    char out[KP_PHONE_MAX + 1];
    /* Typed the national way, stored as + and the digits: wrong before. */
    assert_true(kp_phone_from_legacy("+89167654321", "RU", out));
    assert_string_equal(out, "+79167654321");
    assert_true(kp_phone_from_legacy("+9167654321", "RU", out));
    assert_string_equal(out, "+79167654321");
    assert_true(kp_phone_from_legacy("+0501234567", "UA", out));
    assert_string_equal(out, "+380501234567");
    /* Typed with + or as 7...: E.164 already. */
    assert_true(kp_phone_from_legacy("+79167654321", "RU", out));
    assert_string_equal(out, "+79167654321");
    assert_true(kp_phone_from_legacy("+380501234567", "RU", out));
    assert_string_equal(out, "+380501234567");
    assert_false(kp_phone_from_legacy("+1234567890", "RU", out));
}

/* ---- the migration over a real store */

static const char program_json[] = "{\"name\":\"phones\",\"rules\":[]}";
#define NOW 1780000000 /* 2026-05-28 */

typedef struct fx {
    char path[FIXTURE_LOCATION_MAX]; /* the store's location (fixture.h) */
    kp_store *st;
    kp_pii *pii;
    kp_program program;
    kp_scratch *sc;
    kp_buf out;
    char cards[4][KP_STR_MAX];
    int n_cards;
    int reports;
} fx;

static void keep_number(void *ctx, const char *number)
{
    fx *f = ctx;
    snprintf(f->cards[f->n_cards++], KP_STR_MAX, "%s", number);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    fixture_location(f->path, "phone");
    kp_error e = {0};
    assert_int_equal(kp_store_open(f->path, true, &f->st, &e), KP_OK);
    uint8_t master[32];
    for (int i = 0; i < 32; i++) master[i] = (uint8_t)(i * 5 + 3);
    assert_int_equal(kp_pii_from_bytes(master, &f->pii), KP_OK);
    int64_t v;
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(kp_service_program_load(f->st, program_json, strlen(program_json), &v, &e),
                     KP_OK);
    assert_int_equal(kp_service_cards_issue(f->st, 4, NOW - 1000, keep_number, f, &e), KP_OK);
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
    kp_pii_free(f->pii);
    kp_scratch_free(f->sc);
    kp_buf_release(&f->out);
    fixture_remove(f->path);
    free(f);
    return 0;
}

static void office(fx *f, kp_office *o)
{
    kp_actor a;
    memset(&a, 0, sizeof a);
    a.kind = KP_ACTOR_CLI;
    snprintf(a.name, sizeof a.name, "cli:test");
    kp_office_init(o, f->st, f->pii, &f->program, NOW, &a, f->sc);
}

/* Registers card i to a new customer; returns the customer's id. */
static int64_t register_card(fx *f, int i, const char *name, const char *phone)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"card\":\"%s\",\"full_name\":\"%s\",\"phone\":\"%s\","
             "\"consent\":{\"given\":true,\"text_version\":\"v1\"}}",
             f->cards[i], name, phone);
    kp_office o;
    office(f, &o);
    kp_error e = {0};
    kp_field_errors fe = {0};
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(kp_customer_register(&o, body, strlen(body), &f->out, &fe, &e), KP_OK);
    assert_int_equal(f->st->ops->commit(f->st), KP_OK);
    kp_card_info c;
    assert_int_equal(f->st->ops->people->card_info_get(f->st, f->cards[i], &c), KP_OK);
    return c.customer_id;
}

/* Stores `phone` for customer id as the normalisation before E.164 did
 * (sealed and indexed as it is), keeping the name's index. */
static void store_legacy_phone(fx *f, int64_t id, const char *phone, const char *name)
{
    kp_customer_row *row = malloc(sizeof *row);
    assert_non_null(row);
    assert_int_equal(f->st->ops->people->customer_get(f->st, id, row), KP_OK);
    assert_int_equal(kp_pii_seal(f->pii, KP_PII_PHONE, phone, strlen(phone), row->phone.data,
                                 sizeof row->phone.data, &row->phone.len),
                     KP_OK);
    kp_pii_index(f->pii, KP_PII_PHONE, phone, row->phone_ix);
    char words[KP_NAME_WORDS_MAX][KP_NAME_MAX + 1];
    row->n_name_ix = kp_name_words(name, words);
    for (size_t i = 0; i < row->n_name_ix; i++)
        kp_pii_index(f->pii, KP_PII_NAME_WORD, words[i], row->name_ix[i]);
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(f->st->ops->people->customer_update(f->st, row), KP_OK);
    assert_int_equal(f->st->ops->commit(f->st), KP_OK);
    free(row);
}

/* The ids a search by {"<by>": "<term>"} finds, as "1,2" ("" for none). */
static void search(fx *f, const char *by, const char *term, char *ids, size_t cap)
{
    char body[256];
    snprintf(body, sizeof body, "{\"%s\":\"%s\"}", by, term);
    kp_office o;
    office(f, &o);
    kp_error e = {0};
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(kp_customer_search(&o, body, strlen(body), &f->out, &e), KP_OK);
    assert_int_equal(f->st->ops->commit(f->st), KP_OK);
    ids[0] = '\0';
    size_t n = 0;
    kp_buf_puts(&f->out, "");
    const char *p = f->out.data;
    while ((p = strstr(p, "{\"id\":")) != NULL) {
        p += 6;
        long long id = strtoll(p, NULL, 10);
        n += (size_t)snprintf(ids + n, cap - n, "%s%lld", n ? "," : "", id);
    }
}

static void count_report(void *ctx, const char *line)
{
    fx *f = ctx;
    (void)line;
    f->reports++;
}

static kp_err migrate(fx *f, bool dry_run, kp_phones_migration *m)
{
    kp_office o;
    office(f, &o);
    kp_error e = {0};
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    kp_err err = kp_customers_phones_migrate(&o, dry_run, count_report, f, m, &e);
    if (err || dry_run)
        f->st->ops->rollback(f->st);
    else
        assert_int_equal(f->st->ops->commit(f->st), KP_OK);
    return err;
}

static void test_migration_rewrites_phones_stored_before_e164(void **state)
{
    fx *f = *state;
    int64_t a = register_card(f, 0, "Petr Sidorov", "+7 916 765 43 21");
    int64_t b = register_card(f, 1, "Anna Sidorova", "+7 999 123 45 67");
    int64_t c = register_card(f, 2, "Oleg Dubov", "+7 903 000 00 01");
    int64_t d = register_card(f, 3, "Ivan Ivanov", "+7 903 000 00 02");
    /* As the old code stored "8 916 765-43-21", "8 999 123-45-67" (the
     * same number as b's: one person registered twice) and a number that
     * is none. */
    store_legacy_phone(f, a, "+89167654321", "Petr Sidorov");
    store_legacy_phone(f, c, "+89991234567", "Oleg Dubov");
    store_legacy_phone(f, d, "+1234567890", "Ivan Ivanov");
    char ids[64], want[64];
    search(f, "phone", "8 916 765-43-21", ids, sizeof ids);
    assert_string_equal(ids, ""); /* not found before the migration */

    kp_phones_migration m;
    assert_int_equal(migrate(f, true, &m), KP_OK);
    assert_int_equal(m.checked, 4);
    assert_int_equal(m.changed, 1);
    assert_int_equal(m.conflicts, 1);
    assert_int_equal(m.unreadable, 1);
    search(f, "phone", "8 916 765-43-21", ids, sizeof ids);
    assert_string_equal(ids, ""); /* a dry run writes nothing */

    f->reports = 0;
    assert_int_equal(migrate(f, false, &m), KP_OK);
    assert_int_equal(m.changed, 1);
    assert_int_equal(f->reports, 2); /* the conflict and the unreadable one */
    search(f, "phone", "8 916 765-43-21", ids, sizeof ids);
    snprintf(want, sizeof want, "%lld", (long long)a);
    assert_string_equal(ids, want);
    search(f, "phone", "+7 916 765 43 21", ids, sizeof ids);
    assert_string_equal(ids, want);
    search(f, "name", "Sidorov", ids, sizeof ids); /* the name's index is kept */
    assert_string_equal(ids, want);
    search(f, "phone", "8 999 123 45 67", ids, sizeof ids);
    snprintf(want, sizeof want, "%lld", (long long)b);
    assert_string_equal(ids, want);

    /* Again: nothing left to change. */
    assert_int_equal(migrate(f, false, &m), KP_OK);
    assert_int_equal(m.changed, 0);
    assert_int_equal(m.checked, 4);
}

/* "8 495 123-45-67" (Moscow) was stored "+84951234567", which is also a
 * valid Vietnamese number: the migration must not keep it silently. */
static void test_migration_leaves_a_phone_with_two_readings_and_says_so(void **state)
{
    fx *f = *state;
    int64_t a = register_card(f, 0, "Petr Sidorov", "+7 916 765 43 21");
    store_legacy_phone(f, a, "+84951234567", "Petr Sidorov");
    kp_phones_migration m;
    f->reports = 0;
    assert_int_equal(migrate(f, false, &m), KP_OK);
    assert_int_equal(m.checked, 1);
    assert_int_equal(m.ambiguous, 1);
    assert_int_equal(m.changed, 0);
    assert_int_equal(f->reports, 1);
    char ids[64];
    search(f, "phone", "+84951234567", ids, sizeof ids);
    char want[32];
    snprintf(want, sizeof want, "%lld", (long long)a);
    assert_string_equal(ids, want); /* left as it was */
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
        cmocka_unit_test(test_legacy_phone_read_again),
        cmocka_unit_test_setup_teardown(test_migration_rewrites_phones_stored_before_e164, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_migration_leaves_a_phone_with_two_readings_and_says_so, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
