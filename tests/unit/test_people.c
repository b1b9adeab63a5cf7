/*
 * test_people.c: the back office over a real store (fixture.h): personal data
 * sealed at rest (a copied database file holds no plaintext), normalisation,
 * roles, registration with per-field errors and conflicts, the card
 * lifecycle (block, replace: the balance moves, the old number is dead),
 * the unregistered-card policy at the till, families, transfers keeping
 * expiry and limits, the audit chain detecting tampering, and CSV import
 * (every bad row reported, all or nothing, a re-run changes nothing).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fixture.h"
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kopilka/clock.h>

#include "service/people.h"

static const char program_json[] =
    "{\"name\":\"people\",\"rules\":["
    "{\"id\":\"labor\",\"kind\":\"earn_percent\",\"category\":\"labor\",\"percent\":10}],"
    "\"customers\":{\"unregistered\":{\"earn\":true,\"burn\":false},"
    "\"transfers\":{\"max_points\":500,\"daily_max_points\":700,\"kinds\":[\"regular\"]},"
    "\"consent_version\":\"v1\","
    "\"attributes\":[{\"name\":\"car_model\",\"type\":\"string\",\"max_length\":40},"
    "{\"name\":\"mileage\",\"type\":\"integer\",\"min\":0,\"max\":2000000}]}}";

#define NOW 1780000000 /* 2026-05-28 */

typedef struct fx {
    char path[FIXTURE_LOCATION_MAX]; /* the store's location (fixture.h) */
    kp_store *st;
    kp_pii *pii;
    kp_program program;
    kp_scratch *sc;
    kp_buf out;
    char cards[6][KP_STR_MAX];
    kp_actor actor;
} fx;

static void keep_numbers(void *ctx, const char *number)
{
    fx *f = ctx;
    for (int i = 0; i < 6; i++)
        if (f->cards[i][0] == '\0') {
            snprintf(f->cards[i], KP_STR_MAX, "%s", number);
            return;
        }
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    fixture_location(f->path, "people");
    kp_error e = {0};
    assert_int_equal(kp_store_open(f->path, true, &f->st, &e), KP_OK);
    uint8_t master[32];
    for (int i = 0; i < 32; i++) master[i] = (uint8_t)(i * 7 + 1);
    assert_int_equal(kp_pii_from_bytes(master, &f->pii), KP_OK);
    int64_t v;
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(kp_service_program_load(f->st, program_json, strlen(program_json), &v, &e),
                     KP_OK);
    assert_int_equal(kp_service_cards_issue(f->st, 6, NOW - 1000, keep_numbers, f, &e), KP_OK);
    assert_int_equal(f->st->ops->commit(f->st), KP_OK);
    assert_int_equal(kp_service_program_get(f->st, 0, &f->program, &e), KP_OK);
    f->sc = kp_scratch_new();
    kp_buf_init(&f->out, 8 << 20);
    f->actor.kind = KP_ACTOR_STAFF;
    f->actor.role = KP_ROLE_ADMIN;
    snprintf(f->actor.name, sizeof f->actor.name, "staff:test");
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

static void office(fx *f, kp_office *o, kp_role role, kp_time now)
{
    kp_actor a = f->actor;
    a.role = role;
    kp_office_init(o, f->st, f->pii, &f->program, now, &a, f->sc);
}

/* Runs one back-office write in its own transaction, as the writer would. */
typedef kp_err (*office_fn)(kp_office *o, const char *body, size_t len, kp_buf *out,
                            kp_field_errors *fe, kp_error *e);

static kp_err in_tx(fx *f, kp_err err)
{
    if (err)
        f->st->ops->rollback(f->st);
    else
        assert_int_equal(f->st->ops->commit(f->st), KP_OK);
    return err;
}

static kp_err reg(fx *f, const char *body, kp_field_errors *fe, kp_error *e)
{
    kp_office o;
    office(f, &o, KP_ROLE_CALL_CENTRE, NOW);
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    return in_tx(f, kp_customer_register(&o, body, strlen(body), &f->out, fe, e));
}

static void register_card(fx *f, int card, const char *name, const char *phone)
{
    char body[1024];
    snprintf(body, sizeof body,
             "{\"card\":\"%s\",\"full_name\":\"%s\",\"phone\":\"%s\","
             "\"consent\":{\"given\":true,\"text_version\":\"v1\"}}",
             f->cards[card], name, phone);
    kp_error e = {0};
    kp_field_errors fe = {0};
    assert_int_equal(reg(f, body, &fe, &e), KP_OK);
}

static void noop_report(void *ctx, const char *line)
{
    (void)ctx;
    (void)line;
}

static int64_t problems(fx *f)
{
    int64_t n = -1;
    assert_int_equal(f->st->ops->verify(f->st, noop_report, NULL, &n), KP_OK);
    return n;
}

static int64_t balance_of(fx *f, int card)
{
    kp_card c;
    assert_int_equal(f->st->ops->card_find(f->st, f->cards[card], &c), KP_OK);
    assert_int_equal(f->st->ops->account_load(f->st, c.account_id, &f->sc->account), KP_OK);
    return f->sc->account.balance;
}

static void adjust(fx *f, kp_role role, int card, int64_t points, const char *key, kp_err want)
{
    char body[1024];
    snprintf(body, sizeof body,
             "{\"card\":\"%s\",\"points\":%lld,\"reason\":\"test\",\"key\":\"%s\"}", f->cards[card],
             (long long)points, key);
    kp_office o;
    office(f, &o, role, NOW);
    kp_error e = {0};
    bool replayed;
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(in_tx(f, kp_adjust(&o, body, strlen(body), &f->out, &replayed, &e)), want);
}

/* ---- crypto, normalisation, roles */

static void test_sealed_value_opens_only_with_its_key_and_field(void **state)
{
    fx *f = *state;
    uint8_t sealed[128], other_master[32] = {9};
    size_t len = 0;
    char out[64];
    assert_int_equal(
        kp_pii_seal(f->pii, KP_PII_PHONE, "+380501234567", 13, sealed, sizeof sealed, &len), KP_OK);
    assert_int_equal(len, 13 + KP_PII_OVERHEAD);
    assert_int_equal(kp_pii_open(f->pii, KP_PII_PHONE, sealed, len, out, sizeof out, NULL), KP_OK);
    assert_string_equal(out, "+380501234567");
    assert_int_equal(kp_pii_open(f->pii, KP_PII_NAME, sealed, len, out, sizeof out, NULL),
                     KP_ERR_INVALID);
    kp_pii *other;
    assert_int_equal(kp_pii_from_bytes(other_master, &other), KP_OK);
    assert_int_equal(kp_pii_open(other, KP_PII_PHONE, sealed, len, out, sizeof out, NULL),
                     KP_ERR_INVALID);
    uint8_t a[32], b[32], c[32];
    kp_pii_index(f->pii, KP_PII_PHONE, "+380501234567", a);
    kp_pii_index(f->pii, KP_PII_PHONE, "+380501234567", b);
    kp_pii_index(other, KP_PII_PHONE, "+380501234567", c);
    assert_memory_equal(a, b, 32);
    assert_memory_not_equal(a, c, 32);
    kp_pii_free(other);
}

static void test_normalisation_of_phone_email_name(void **state)
{
    (void)state;
    char phone[KP_PHONE_MAX + 1], email[KP_EMAIL_MAX + 1], name[KP_NAME_MAX + 1];
    const char *why;
    assert_true(kp_norm_phone("+380 (50) 123-45-67", phone, &why));
    assert_string_equal(phone, "+380501234567");
    assert_false(kp_norm_phone("12345", phone, &why));
    assert_false(kp_norm_phone("+38050abc4567", phone, &why));
    assert_true(kp_norm_email("  Ivan.P@Example.COM ", email, &why));
    assert_string_equal(email, "ivan.p@example.com");
    assert_false(kp_norm_email("ivan@", email, &why));
    assert_false(kp_norm_email("a@b@c.d", email, &why));
    assert_true(kp_norm_name("  Іван   ПЕТРЕНКО ", name, &why));
    assert_string_equal(name, "Іван ПЕТРЕНКО");
    char words[KP_NAME_WORDS_MAX][KP_NAME_MAX + 1];
    assert_int_equal(kp_name_words(name, words), 2);
    assert_string_equal(words[0], "іван");
    assert_string_equal(words[1], "петренко");
    int y, m, d;
    assert_true(kp_parse_date("2000-02-29", &y, &m, &d, &why));
    assert_false(kp_parse_date("2001-02-29", &y, &m, &d, &why));
}

static void test_each_role_is_denied_what_it_may_not_do(void **state)
{
    (void)state;
    assert_true(kp_role_may(KP_ROLE_CASHIER, KP_PERM_CUSTOMER_REGISTER));
    assert_false(kp_role_may(KP_ROLE_CASHIER, KP_PERM_CUSTOMER_READ));
    assert_false(kp_role_may(KP_ROLE_CASHIER, KP_PERM_ADJUST));
    assert_false(kp_role_may(KP_ROLE_CALL_CENTRE, KP_PERM_CUSTOMER_ERASE));
    assert_false(kp_role_may(KP_ROLE_CALL_CENTRE, KP_PERM_STAFF));
    assert_false(kp_role_may(KP_ROLE_MANAGER, KP_PERM_STAFF));
    assert_false(kp_role_may(KP_ROLE_MANAGER, KP_PERM_AUDIT_READ));
    assert_false(kp_role_may(KP_ROLE_MARKETER, KP_PERM_CUSTOMER_READ));
    assert_false(kp_role_may(KP_ROLE_MARKETER, KP_PERM_EXPORT_CUSTOMERS));
    assert_false(kp_role_may(KP_ROLE_AUDITOR, KP_PERM_ADJUST));
    assert_false(kp_role_may(KP_ROLE_AUDITOR, KP_PERM_CUSTOMER_EDIT));
    for (int p = 1; p < KP_PERM__COUNT; p++) assert_false(kp_role_may(KP_ROLE_PARTNER, p));
    assert_true(kp_role_may(KP_ROLE_AUDITOR, KP_PERM_AUDIT_READ));
    assert_int_equal(kp_role_adjust_limit(KP_ROLE_CASHIER), 0);
    assert_int_equal(kp_role_adjust_limit(KP_ROLE_CALL_CENTRE), 1000);
}

/* ---- registration */

static void test_registration_reports_every_bad_field(void **state)
{
    fx *f = *state;
    kp_error e = {0};
    kp_field_errors fe = {0};
    const char *body =
        "{\"card\":\"\",\"full_name\":\"\",\"phone\":\"12\",\"email\":\"x@\","
        "\"birthday\":\"2090-01-01\",\"consent\":{\"given\":false,"
        "\"text_version\":\"v0\"},\"attributes\":{\"mileage\":-5,\"color\":\"red\"}}";
    assert_int_equal(reg(f, body, &fe, &e), KP_ERR_INVALID);
    const char *want[] = {"card",
                          "full_name",
                          "phone",
                          "email",
                          "birthday",
                          "consent.given",
                          "consent.text_version",
                          "attributes.mileage",
                          "attributes.color"};
    assert_int_equal(fe.n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < fe.n; i++) {
        bool found = false;
        for (size_t k = 0; k < fe.n; k++) found |= strcmp(fe.items[k].field, want[i]) == 0;
        assert_true(found);
    }
}

static void test_registration_marks_the_card_and_a_taken_phone_conflicts(void **state)
{
    fx *f = *state;
    register_card(f, 0, "Ivan Petrenko", "+380501234567");
    kp_card c;
    assert_int_equal(f->st->ops->card_find(f->st, f->cards[0], &c), KP_OK);
    assert_true(c.registered);
    assert_int_equal(c.state, KP_CARD_ACTIVE);
    char body[1024];
    kp_error e = {0};
    kp_field_errors fe = {0};
    snprintf(body, sizeof body,
             "{\"card\":\"%s\",\"full_name\":\"Other\",\"phone\":\"+380 50 123 45 67\","
             "\"consent\":{\"given\":true,\"text_version\":\"v1\"}}",
             f->cards[1]);
    assert_int_equal(reg(f, body, &fe, &e), KP_ERR_CONFLICT);
    assert_string_equal(e.field, "phone");
    snprintf(body, sizeof body,
             "{\"card\":\"%s\",\"full_name\":\"Again\",\"phone\":\"+380509999999\","
             "\"consent\":{\"given\":true,\"text_version\":\"v1\"}}",
             f->cards[0]);
    kp_error_clear(&e);
    assert_int_equal(reg(f, body, &fe, &e), KP_ERR_CONFLICT);
    assert_string_equal(e.field, "card");
}

static bool file_contains(const char *path, const char *needle)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) return false;
    static char buf[8 << 20];
    size_t n = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    return memmem(buf, n, needle, strlen(needle)) != NULL;
}

/* Whether `needle` is anywhere in what the store keeps: SQLite's file and
 * journal (the journal checkpointed into the file first), or any row of
 * any of Kopilka's PostgreSQL tables, read as text. */
static bool store_contains(const fx *f, const char *needle)
{
    if (fixture_is_pg()) {
        char sql[512];
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND "
                 "query_to_xml(format('SELECT * FROM %%I.%%I', schemaname, tablename), "
                 "true, false, '')::text LIKE '%%%s%%'",
                 needle);
        return fixture_query_int64(f->path, sql) > 0;
    }
    assert_int_equal(fixture_exec(f->path, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, 0), 0);
    char wal[FIXTURE_LOCATION_MAX + 8];
    snprintf(wal, sizeof wal, "%s-wal", f->path);
    return file_contains(f->path, needle) || file_contains(wal, needle);
}

static void test_a_copied_database_holds_no_personal_data(void **state)
{
    fx *f = *state;
    char body[1024];
    snprintf(body, sizeof body,
             "{\"card\":\"%s\",\"full_name\":\"Zinaida Kvitka\",\"phone\":\"+380671112233\","
             "\"email\":\"zina.kvitka@example.org\",\"birthday\":\"1979-03-08\","
             "\"consent\":{\"given\":true,\"text_version\":\"v1\"},"
             "\"attributes\":{\"car_model\":\"Skoda Octavia\"}}",
             f->cards[2]);
    kp_error e = {0};
    kp_field_errors fe = {0};
    assert_int_equal(reg(f, body, &fe, &e), KP_OK);
    assert_non_null(strstr(f->out.data, "Zinaida Kvitka"));
    const char *secrets[] = {"Zinaida",     "Kvitka",     "380671112233", "0671112233",
                             "zina.kvitka", "1979-03-08", "Skoda"};
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++)
        assert_false(store_contains(f, secrets[i]));
    /* The check itself finds what is there in the clear. */
    assert_true(store_contains(f, f->cards[2]));
}

static void test_search_by_phone_email_name_and_card(void **state)
{
    fx *f = *state;
    register_card(f, 0, "Ivan Petrenko", "+380501234567");
    register_card(f, 1, "Olga Petrenko", "+380501234568");
    kp_office o;
    office(f, &o, KP_ROLE_CALL_CENTRE, NOW);
    kp_error e = {0};
    const char *queries[] = {"{\"name\":\"PETRENKO\"}", "{\"name\":\"olga petrenko\"}",
                             "{\"phone\":\"+380-50-123-45-67\"}"};
    size_t want[] = {2, 1, 1};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(f->st->ops->begin(f->st), KP_OK);
        assert_int_equal(
            in_tx(f, kp_customer_search(&o, queries[i], strlen(queries[i]), &f->out, &e)), KP_OK);
        size_t n = 0;
        for (const char *p = f->out.data; (p = strstr(p, "\"full_name\"")); p++) n++;
        assert_int_equal(n, want[i]);
    }
    char q[1024];
    snprintf(q, sizeof q, "{\"card\":\"%s\"}", f->cards[1]);
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(in_tx(f, kp_customer_search(&o, q, strlen(q), &f->out, &e)), KP_OK);
    assert_non_null(strstr(f->out.data, "Olga Petrenko"));
    office(f, &o, KP_ROLE_CASHIER, NOW);
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(in_tx(f, kp_customer_search(&o, q, strlen(q), &f->out, &e)), KP_ERR_FORBIDDEN);
}

static void test_erase_removes_personal_data_and_keeps_the_ledger(void **state)
{
    fx *f = *state;
    register_card(f, 0, "Ivan Petrenko", "+380501234567");
    adjust(f, KP_ROLE_MANAGER, 0, 250, "A1", KP_OK);
    kp_office o;
    office(f, &o, KP_ROLE_MANAGER, NOW);
    kp_error e = {0};
    const char *body = "{\"reason\":\"customer's request of 2026-05-28\"}";
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(in_tx(f, kp_customer_erase(&o, 1, body, strlen(body), &f->out, &e)), KP_OK);
    assert_null(strstr(f->out.data, "Petrenko"));
    assert_non_null(strstr(f->out.data, "\"state\":\"erased\""));
    kp_customer_row *row = malloc(sizeof *row);
    assert_int_equal(f->st->ops->people->customer_get(f->st, 1, row), KP_OK);
    assert_int_equal(row->name.len + row->phone.len + row->email.len, 0);
    assert_false(row->has_phone_ix);
    free(row);
    kp_card c;
    assert_int_equal(f->st->ops->card_find(f->st, f->cards[0], &c), KP_OK);
    assert_int_equal(c.state, KP_CARD_BLOCKED);
    assert_int_equal(balance_of(f, 0), 250);
    assert_int_equal(problems(f), 0);
    /* The phone is free again. */
    register_card(f, 1, "Someone Else", "+380501234567");
}

/* ---- cards */

static void test_replacement_moves_balance_and_history_and_kills_the_old_number(void **state)
{
    fx *f = *state;
    register_card(f, 0, "Ivan Petrenko", "+380501234567");
    adjust(f, KP_ROLE_MANAGER, 0, 1234, "A1", KP_OK);
    kp_office o;
    office(f, &o, KP_ROLE_CALL_CENTRE, NOW);
    kp_error e = {0};
    const char *block = "{\"reason\":\"lost\"}";
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(in_tx(f, kp_card_block(&o, f->cards[0], block, strlen(block), &f->out, &e)),
                     KP_OK);
    char body[1024];
    snprintf(body, sizeof body, "{\"reason\":\"lost\",\"new_card\":\"%s\"}", f->cards[3]);
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(in_tx(f, kp_card_replace(&o, f->cards[0], body, strlen(body), &f->out, &e)),
                     KP_OK);
    assert_int_equal(balance_of(f, 3), 1234);
    kp_card c;
    assert_int_equal(f->st->ops->card_find(f->st, f->cards[3], &c), KP_OK);
    assert_true(c.registered);
    assert_int_equal(c.state, KP_CARD_ACTIVE);
    /* The old number cannot buy, and cannot be unblocked or replaced again. */
    kp_purchase_req *req = calloc(1, sizeof *req);
    snprintf(req->card, sizeof req->card, "%s", f->cards[0]);
    snprintf(req->receipt, sizeof req->receipt, "R1");
    req->basket.n_lines = 1;
    snprintf(req->basket.lines[0].sku, KP_STR_MAX, "x");
    req->basket.lines[0].amount_minor = 10000;
    req->basket.lines[0].qty = 1;
    bool replayed;
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(in_tx(f, kp_service_purchase(f->st, &f->program, "s", req, NOW, f->sc, &f->out,
                                                  &replayed, &e)),
                     KP_ERR_NOT_FOUND);
    free(req);
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(in_tx(f, kp_card_unblock(&o, f->cards[0], "", 0, &f->out, &e)),
                     KP_ERR_CONFLICT);
    /* The history moved with the account. */
    kp_history_entry h[8];
    size_t n = 0;
    assert_int_equal(f->st->ops->people->history_cards(f->st, c.account_id, 0, h, 8, &n), KP_OK);
    assert_int_equal(n, 1);
    assert_int_equal(h[0].points, 1234);
    kp_card_event ev[8];
    assert_int_equal(f->st->ops->people->card_events(f->st, f->cards[0], ev, 8, &n), KP_OK);
    assert_int_equal(n, 3); /* registered, blocked, replaced */
    assert_int_equal(ev[2].to_state, KP_CARD_REPLACED);
    assert_string_equal(ev[2].other_card, f->cards[3]);
    assert_string_equal(ev[2].actor, "staff:test");
    assert_int_equal(problems(f), 0);
}

static void test_unregistered_card_earns_but_may_not_burn_under_seed_003_policy(void **state)
{
    fx *f = *state;
    adjust(f, KP_ROLE_ADMIN, 4, 100, "A1", KP_OK);
    kp_purchase_req *req = calloc(1, sizeof *req);
    snprintf(req->card, sizeof req->card, "%s", f->cards[4]);
    snprintf(req->receipt, sizeof req->receipt, "R1");
    req->basket.burn_request = 50;
    req->basket.n_lines = 1;
    snprintf(req->basket.lines[0].sku, KP_STR_MAX, "oil");
    snprintf(req->basket.lines[0].category, KP_STR_MAX, "labor");
    req->basket.lines[0].amount_minor = 100000;
    req->basket.lines[0].qty = 1;
    kp_error e = {0};
    assert_int_equal(kp_service_quote(f->st, &f->program, "s", req, NOW, f->sc, &f->out, &e),
                     KP_OK);
    assert_int_equal(f->sc->quote.burned, 0);
    assert_int_equal(f->sc->quote.earned, 100);
    assert_non_null(strstr(f->sc->quote.burn_limited_by, "not registered"));
    register_card(f, 4, "Now Registered", "+380500000004");
    assert_int_equal(kp_service_quote(f->st, &f->program, "s", req, NOW, f->sc, &f->out, &e),
                     KP_OK);
    assert_int_equal(f->sc->quote.burned, 50);
    free(req);
}

static void test_unregistered_card_earns_nothing_when_the_program_says_so(void **state)
{
    fx *f = *state;
    const char *strict = "{\"name\":\"strict\",\"rules\":[{\"id\":\"labor\",\"kind\":"
                         "\"earn_percent\",\"category\":\"labor\",\"percent\":10}],"
                         "\"customers\":{\"unregistered\":{\"earn\":false,\"burn\":false}}}";
    kp_error e = {0};
    int64_t v;
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(kp_service_program_load(f->st, strict, strlen(strict), &v, &e), KP_OK);
    assert_int_equal(f->st->ops->commit(f->st), KP_OK);
    assert_int_equal(kp_service_program_get(f->st, 0, &f->program, &e), KP_OK);
    kp_purchase_req *req = calloc(1, sizeof *req);
    snprintf(req->card, sizeof req->card, "%s", f->cards[5]);
    req->basket.n_lines = 1;
    snprintf(req->basket.lines[0].sku, KP_STR_MAX, "oil");
    snprintf(req->basket.lines[0].category, KP_STR_MAX, "labor");
    req->basket.lines[0].amount_minor = 100000;
    req->basket.lines[0].qty = 1;
    assert_int_equal(kp_service_quote(f->st, &f->program, "s", req, NOW, f->sc, &f->out, &e),
                     KP_OK);
    assert_int_equal(f->sc->quote.earned, 0);
    assert_int_equal(f->sc->quote.lines[0].earned, 0);
    assert_non_null(strstr(f->out.data, "customers.unregistered"));
    /* A typo in the section fails the load. */
    const char *typo = "{\"name\":\"t\",\"rules\":[],\"customers\":{\"unregisterd\":{}}}";
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(kp_service_program_load(f->st, typo, strlen(typo), &v, &e), KP_ERR_INVALID);
    f->st->ops->rollback(f->st);
    assert_string_equal(e.field, "customers.unregisterd");
    free(req);
}

/* ---- adjustments, transfers, families */

static void test_adjustment_limited_by_role_and_idempotent(void **state)
{
    fx *f = *state;
    adjust(f, KP_ROLE_CASHIER, 0, 10, "A0", KP_ERR_FORBIDDEN);
    adjust(f, KP_ROLE_CALL_CENTRE, 0, 1001, "A1", KP_ERR_FORBIDDEN);
    adjust(f, KP_ROLE_CALL_CENTRE, 0, 1000, "A2", KP_OK);
    adjust(f, KP_ROLE_CALL_CENTRE, 0, 1000, "A2", KP_OK); /* replayed */
    adjust(f, KP_ROLE_CALL_CENTRE, 0, 999, "A2", KP_ERR_CONFLICT);
    adjust(f, KP_ROLE_MANAGER, 0, -300, "A3", KP_OK);
    adjust(f, KP_ROLE_MANAGER, 0, -5000, "A4", KP_ERR_INVALID);
    assert_int_equal(balance_of(f, 0), 700);
    assert_int_equal(problems(f), 0);
}

static kp_err transfer(fx *f, int from, int to, int64_t points, const char *key, kp_time now,
                       kp_error *e)
{
    char body[1024];
    snprintf(body, sizeof body,
             "{\"from_card\":\"%s\",\"to_card\":\"%s\",\"points\":%lld,\"key\":\"%s\"}",
             f->cards[from], f->cards[to], (long long)points, key);
    kp_office o;
    office(f, &o, KP_ROLE_CALL_CENTRE, now);
    bool replayed;
    kp_error_clear(e);
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    return in_tx(f, kp_transfer(&o, body, strlen(body), &f->out, &replayed, e));
}

static void test_transfer_keeps_expiry_respects_limits_and_is_idempotent(void **state)
{
    fx *f = *state;
    register_card(f, 0, "Giver", "+380500000001");
    register_card(f, 1, "Taker", "+380500000002");
    /* 600 points expiring at NOW + 30 days: a grant-like lot via an
     * opening balance with an expiry. */
    kp_card c;
    assert_int_equal(f->st->ops->card_find(f->st, f->cards[0], &c), KP_OK);
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(f->st->ops->account_load(f->st, c.account_id, &f->sc->account), KP_OK);
    kp_lot lot = {.kind = "regular",
                  .earned_at = NOW,
                  .active_from = NOW,
                  .expires_at = NOW + 30 * KP_DAY_SECONDS};
    kp_error e = {0};
    assert_int_equal(kp_ledger_plan_move(&f->sc->account, KP_OP_OPENING, KP_SYS_OPENING, 900, &lot,
                                         NOW, &f->sc->plan, &e),
                     KP_OK);
    kp_op_row row = {.type = KP_OP_OPENING, .account_id = c.account_id, .at = NOW, .points = 900};
    snprintf(row.card, sizeof row.card, "%s", f->cards[0]);
    assert_int_equal(f->st->ops->op_insert(f->st, &row), KP_OK);
    assert_int_equal(f->st->ops->plan_apply(f->st, row.id, &f->sc->plan, NOW), KP_OK);
    assert_int_equal(f->st->ops->commit(f->st), KP_OK);

    assert_int_equal(transfer(f, 0, 1, 501, "T0", NOW, &e), KP_ERR_INVALID); /* per transfer */
    assert_int_equal(transfer(f, 0, 1, 400, "T1", NOW, &e), KP_OK);
    assert_int_equal(transfer(f, 0, 1, 400, "T1", NOW, &e), KP_OK); /* replay */
    assert_int_equal(transfer(f, 0, 1, 300, "T1", NOW, &e), KP_ERR_CONFLICT);
    assert_int_equal(transfer(f, 0, 1, 400, "T2", NOW, &e), KP_ERR_INVALID); /* daily 700 */
    assert_string_equal(e.field, "points");
    assert_int_equal(transfer(f, 0, 1, 300, "T3", NOW + 10, &e), KP_OK);
    assert_int_equal(balance_of(f, 0), 200);
    assert_int_equal(balance_of(f, 1), 700);
    assert_int_equal(f->sc->account.n_lots, 2); /* one lot per transfer */
    for (size_t i = 0; i < f->sc->account.n_lots; i++)
        assert_int_equal(f->sc->account.lots[i].expires_at, NOW + 30 * KP_DAY_SECONDS);
    /* Both histories show it. */
    kp_history_entry h[4];
    size_t n = 0;
    assert_int_equal(f->st->ops->people->history_cards(f->st, c.account_id, 0, h, 4, &n), KP_OK);
    assert_int_equal(h[0].type, KP_OP_TRANSFER);
    assert_int_equal(h[0].points, -300);
    assert_int_equal(problems(f), 0);
}

static void test_family_pools_points_and_the_owner_decides_who_spends(void **state)
{
    fx *f = *state;
    register_card(f, 0, "Owner", "+380500000001");
    register_card(f, 1, "Member", "+380500000002");
    adjust(f, KP_ROLE_ADMIN, 1, 300, "A1", KP_OK);
    kp_office o;
    office(f, &o, KP_ROLE_CALL_CENTRE, NOW);
    kp_error e = {0};
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(in_tx(f, kp_family_create(&o, "{\"owner\":1}", 11, &f->out, &e)), KP_OK);
    const char *join = "{\"customer\":2,\"may_spend\":false}";
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(in_tx(f, kp_family_join(&o, 1, join, strlen(join), &f->out, &e)), KP_OK);
    assert_int_equal(balance_of(f, 0), 300);
    assert_int_equal(balance_of(f, 1), 300); /* the same pot */
    kp_card owner_card, member_card;
    assert_int_equal(f->st->ops->card_find(f->st, f->cards[0], &owner_card), KP_OK);
    assert_int_equal(f->st->ops->card_find(f->st, f->cards[1], &member_card), KP_OK);
    assert_int_equal(owner_card.account_id, member_card.account_id);
    /* The member's burn is refused at the till; the owner's is not. */
    kp_purchase_req *req = calloc(1, sizeof *req);
    snprintf(req->card, sizeof req->card, "%s", f->cards[1]);
    req->basket.burn_request = 100;
    req->basket.n_lines = 1;
    snprintf(req->basket.lines[0].sku, KP_STR_MAX, "x");
    snprintf(req->basket.lines[0].category, KP_STR_MAX, "labor");
    req->basket.lines[0].amount_minor = 100000;
    req->basket.lines[0].qty = 1;
    assert_int_equal(kp_service_quote(f->st, &f->program, "s", req, NOW, f->sc, &f->out, &e),
                     KP_OK);
    assert_int_equal(f->sc->quote.burned, 0);
    assert_int_equal(f->sc->quote.earned, 100);
    const char *allow = "{\"may_spend\":true}";
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(in_tx(f, kp_family_set(&o, 1, 2, allow, strlen(allow), &f->out, &e)), KP_OK);
    assert_int_equal(kp_service_quote(f->st, &f->program, "s", req, NOW, f->sc, &f->out, &e),
                     KP_OK);
    assert_int_equal(f->sc->quote.burned, 100);
    free(req);
    /* Leaving: the member's card is theirs again, the pot stays. */
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(in_tx(f, kp_family_leave(&o, 1, 2, &f->out, &e)), KP_OK);
    assert_int_equal(balance_of(f, 1), 0);
    assert_int_equal(balance_of(f, 0), 300);
    assert_int_equal(problems(f), 0);
}

/* A customer's own session (kp_actor.customer_id) reaches only what is
 * theirs: another's record, card, family is as unknown as none, and the
 * operations over many customers refuse it. */
static void test_a_customers_session_touches_only_their_own(void **state)
{
    fx *f = *state;
    register_card(f, 0, "Owner", "+380500000001");
    register_card(f, 1, "Other", "+380500000002");
    kp_office staff, self;
    office(f, &staff, KP_ROLE_ADMIN, NOW);
    kp_actor me = {.kind = KP_ACTOR_CUSTOMER, .customer_id = 2};
    snprintf(me.name, sizeof me.name, "customer:2");
    kp_office_init(&self, f->st, f->pii, &f->program, NOW, &me, f->sc);
    kp_error e = {0};
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(in_tx(f, kp_family_create(&staff, "{\"owner\":1}", 11, &f->out, &e)), KP_OK);
    assert_int_equal(kp_customer_get(&self, 2, &f->out, &e), KP_OK);
    assert_int_equal(kp_customer_get(&self, 1, &f->out, &e), KP_ERR_NOT_FOUND);
    assert_string_equal(e.field, "customer");
    assert_int_equal(kp_customer_history(&self, 1, 0, 10, &f->out, &e), KP_ERR_NOT_FOUND);
    assert_int_equal(kp_family_get(&self, 1, &f->out, &e), KP_ERR_NOT_FOUND);
    assert_int_equal(kp_customer_search(&self, "{\"name\":\"owner\"}", 16, &f->out, &e),
                     KP_ERR_FORBIDDEN);
    const char *why = "{\"reason\":\"x\"}";
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(in_tx(f, kp_card_block(&self, f->cards[0], why, strlen(why), &f->out, &e)),
                     KP_ERR_NOT_FOUND);
    assert_int_equal(e.code, KP_ERR_NOT_FOUND);
    assert_int_equal(kp_card_picture(&self, KP_BARCODE_QR, false, f->cards[0], &f->out, &e),
                     KP_ERR_NOT_FOUND);
    assert_int_equal(kp_card_picture(&self, KP_BARCODE_QR, false, f->cards[1], &f->out, &e),
                     KP_OK);
    char body[640];
    snprintf(body, sizeof body, "{\"from_card\":\"%s\",\"to_card\":\"%s\",\"points\":1,"
             "\"key\":\"k\"}", f->cards[0], f->cards[1]);
    bool replayed = false;
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(in_tx(f, kp_transfer(&self, body, strlen(body), &f->out, &replayed, &e)),
                     KP_ERR_NOT_FOUND); /* only ever from a card of one's own */
    assert_string_equal(e.field, "from_card");
    const char *join = "{\"customer\":2}";
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(in_tx(f, kp_family_join(&self, 1, join, strlen(join), &f->out, &e)),
                     KP_ERR_FORBIDDEN);
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(in_tx(f, kp_family_leave(&self, 1, 1, &f->out, &e)), KP_ERR_NOT_FOUND);
    /* A staff member's office is as before. */
    assert_int_equal(kp_customer_get(&staff, 1, &f->out, &e), KP_OK);
}

/* ---- the audit chain */

/* SQL that removes the audit table's append-only guard, as someone with
 * write access to the database could (the schema's triggers). */
static const char *audit_unguard(void)
{
    return fixture_is_pg() ? "ALTER TABLE audit DISABLE TRIGGER USER"
                           : "DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete";
}

static void test_audit_chain_detects_a_changed_and_a_deleted_entry(void **state)
{
    fx *f = *state;
    register_card(f, 0, "Ivan", "+380500000001");
    adjust(f, KP_ROLE_MANAGER, 0, 100, "A1", KP_OK);
    adjust(f, KP_ROLE_MANAGER, 0, 200, "A2", KP_OK);
    assert_int_equal(problems(f), 0);
    /* Append-only: the database itself refuses a change... */
    assert_int_not_equal(
        fixture_exec(f->path, "UPDATE audit SET detail = 'x' WHERE seq = 2", NULL, 0), 0);
    assert_int_not_equal(fixture_exec(f->path, "DELETE FROM audit WHERE seq = 2", NULL, 0), 0);
    /* ...and when someone removes that guard, verify still finds it. */
    assert_int_equal(fixture_exec(f->path, audit_unguard(), NULL, 0), 0);
    assert_int_equal(fixture_exec(f->path,
                                  "UPDATE audit SET detail = 'card=x points=1 reason=none' "
                                  "WHERE seq = 2",
                                  NULL, 0),
                     0);
    assert_int_equal(problems(f), 1);
    assert_int_equal(fixture_exec(f->path, "DELETE FROM audit WHERE seq = 2", NULL, 0), 0);
    assert_true(problems(f) >= 1);
}

static int64_t mac_problems(fx *f, int64_t *checked, int64_t *without)
{
    int64_t n = 0;
    assert_int_equal(
        kp_audit_check_macs(f->st, f->pii, noop_report, NULL, &n, checked, without), KP_OK);
    return n;
}

/* One audit row as rewrite_chain() reads it. */
static void audit_row(kp_audit_entry *a, const char *const col[7])
{
    memset(a, 0, sizeof *a);
    a->seq = strtoll(col[0], NULL, 10);
    a->at = strtoll(col[1], NULL, 10);
    snprintf(a->actor, sizeof a->actor, "%s", col[2]);
    snprintf(a->role, sizeof a->role, "%s", col[3]);
    snprintf(a->action, sizeof a->action, "%s", col[4]);
    snprintf(a->target, sizeof a->target, "%s", col[5]);
    snprintf(a->detail, sizeof a->detail, "%s", col[6]);
}

static const char rewrite_select[] = "SELECT seq, at, actor, role, action, target, detail, "
                                     "prev_hash FROM audit WHERE seq >= %lld ORDER BY seq";

/* rewrite_chain() on PostgreSQL: the same, hashes as hex through libpq. */
static void rewrite_chain_pg(const char *location, int64_t from)
{
    PGconn *c = fixture_pg_connect(location);
    char sql[256];
    snprintf(sql, sizeof sql, rewrite_select, (long long)from);
    /* Binary results: prev_hash comes back as its 32 bytes; the numbers
     * are read from a text copy of the row instead. */
    PGresult *r = PQexecParams(c, sql, 0, NULL, NULL, NULL, NULL, 1);
    PGresult *t = PQexec(c, sql);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQresultStatus(t), PGRES_TUPLES_OK);
    uint8_t prev[32];
    assert_int_equal(PQgetlength(r, 0, 7), 32);
    memcpy(prev, PQgetvalue(r, 0, 7), 32);
    for (int i = 0; i < PQntuples(t); i++) {
        const char *col[7];
        for (int k = 0; k < 7; k++) col[k] = PQgetvalue(t, i, k);
        kp_audit_entry a;
        audit_row(&a, col);
        kp_audit_hash(prev, &a, a.hash);
        char seq[24];
        snprintf(seq, sizeof seq, "%lld", (long long)a.seq);
        const char *values[3] = {(const char *)prev, (const char *)a.hash, seq};
        const int lengths[3] = {32, 32, 0};
        const int formats[3] = {1, 1, 0};
        PGresult *u = PQexecParams(c, "UPDATE audit SET prev_hash = $1, hash = $2 WHERE seq = $3",
                                   3, NULL, values, lengths, formats, 0);
        if (PQresultStatus(u) != PGRES_COMMAND_OK) fail_msg("%s", PQerrorMessage(c));
        PQclear(u);
        memcpy(prev, a.hash, 32);
    }
    PQclear(r);
    PQclear(t);
    PQfinish(c);
}

/* Rewrites the chain from entry `from` on as someone with the database but
 * without the key file would: every hash made valid again. */
static void rewrite_chain(const char *location, int64_t from)
{
    if (fixture_is_pg()) {
        rewrite_chain_pg(location, from);
        return;
    }
    sqlite3 *db;
    assert_int_equal(sqlite3_open(location, &db), SQLITE_OK);
    char sql[256];
    snprintf(sql, sizeof sql, rewrite_select, (long long)from);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    uint8_t prev[32];
    bool first = true;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *col[7];
        for (int k = 0; k < 7; k++) col[k] = (const char *)sqlite3_column_text(st, k);
        kp_audit_entry a;
        audit_row(&a, col);
        if (first) memcpy(prev, sqlite3_column_blob(st, 7), 32);
        first = false;
        kp_audit_hash(prev, &a, a.hash);
        sqlite3_stmt *up;
        assert_int_equal(sqlite3_prepare_v2(db,
                                            "UPDATE audit SET prev_hash = ?1, hash = ?2 "
                                            "WHERE seq = ?3",
                                            -1, &up, NULL),
                         SQLITE_OK);
        sqlite3_bind_blob(up, 1, prev, 32, SQLITE_TRANSIENT);
        sqlite3_bind_blob(up, 2, a.hash, 32, SQLITE_TRANSIENT);
        sqlite3_bind_int64(up, 3, a.seq);
        assert_int_equal(sqlite3_step(up), SQLITE_DONE);
        sqlite3_finalize(up);
        memcpy(prev, a.hash, 32);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void test_audit_macs_detect_a_rewritten_chain(void **state)
{
    fx *f = *state;
    register_card(f, 0, "Ivan", "+380500000001");
    adjust(f, KP_ROLE_MANAGER, 0, 100, "A1", KP_OK);
    adjust(f, KP_ROLE_MANAGER, 0, 200, "A2", KP_OK);
    int64_t checked = 0, without = 0;
    assert_int_equal(mac_problems(f, &checked, &without), 0);
    assert_true(checked >= 3);
    assert_int_equal(without, 0);
    /* Change an entry and make the whole chain after it valid again: the
     * chain alone no longer shows it, the MACs do. */
    assert_int_equal(fixture_exec(f->path, audit_unguard(), NULL, 0), 0);
    assert_int_equal(fixture_exec(f->path,
                                  "UPDATE audit SET detail = 'card=x points=1 reason=none' "
                                  "WHERE seq = 2",
                                  NULL, 0),
                     0);
    rewrite_chain(f->path, 2);
    assert_int_equal(problems(f), 0);
    assert_true(mac_problems(f, &checked, &without) >= 1);
}

static void append_unsigned(fx *f, const char *action)
{
    kp_audit_entry a;
    memset(&a, 0, sizeof a);
    snprintf(a.actor, sizeof a.actor, "cli");
    snprintf(a.action, sizeof a.action, "%s", action);
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(f->st->ops->people->audit_append(f->st, &a), KP_OK);
    assert_int_equal(f->st->ops->commit(f->st), KP_OK);
}

static void test_audit_entry_without_a_mac_after_macs_is_a_problem(void **state)
{
    fx *f = *state;
    adjust(f, KP_ROLE_MANAGER, 0, 100, "A1", KP_OK);
    append_unsigned(f, "ledger.adjust"); /* by someone without the key file */
    int64_t checked = 0, without = 0;
    assert_int_equal(problems(f), 0);
    assert_int_equal(mac_problems(f, &checked, &without), 1);
}

static void test_audit_of_a_database_from_before_macs(void **state)
{
    FIXTURE_SQLITE_ONLY("people_schema 1 is an SQLite schema from before MACs; PostgreSQL's "
                        "schema had the mac column from its first version");
    fx *f = *state;
    /* A database of people_schema 1: an entry, and no mac column. */
    append_unsigned(f, "old.entry");
    kp_store_close(f->st);
    assert_int_equal(fixture_exec(f->path,
                                  "ALTER TABLE audit DROP COLUMN mac;"
                                  "UPDATE meta SET value = '1' WHERE key = 'people_schema';",
                                  NULL, 0),
                     0);
    /* Opened again, it gains the column, keeps the old entry, and new
     * entries carry MACs. */
    kp_error e = {0};
    assert_int_equal(kp_store_open(f->path, false, &f->st, &e), KP_OK);
    adjust(f, KP_ROLE_MANAGER, 0, 100, "A1", KP_OK);
    int64_t checked = 0, without = 0;
    assert_int_equal(problems(f), 0);
    assert_int_equal(mac_problems(f, &checked, &without), 0);
    assert_true(checked >= 1);
    assert_int_equal(without, 1);
}

/* ---- import */

static void write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

typedef struct lines {
    int n;
    char text[16][256];
} lines;

static void keep_line(void *ctx, const kp_import_problem *problem)
{
    lines *l = ctx;
    if (l->n < 16) snprintf(l->text[l->n++], sizeof l->text[0], "%s", problem->text);
}

static kp_err import(fx *f, const kp_import_files *files, lines *bad, kp_import_stats *stats)
{
    kp_office o;
    office(f, &o, KP_ROLE_ADMIN, NOW);
    o.actor.kind = KP_ACTOR_CLI;
    kp_error e = {0};
    memset(bad, 0, sizeof *bad);
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    return in_tx(f, kp_import(&o, files, keep_line, bad, stats, &e));
}

/* A file of this test's own in /tmp (the store may not be a file). */
static void scratch_file(char *out, size_t size, const char *name)
{
    snprintf(out, size, "/tmp/kp-test-people-%d.%s", (int)getpid(), name);
}

static void test_import_reports_every_bad_row_and_writes_nothing(void **state)
{
    fx *f = *state;
    char cards[80], customers[80], balances[80];
    scratch_file(cards, sizeof cards, "cards.csv");
    scratch_file(customers, sizeof customers, "customers.csv");
    scratch_file(balances, sizeof balances, "balances.csv");
    write_text(cards, "number,state,batch\nOLD-1,issued,legacy\nOLD-2,active,legacy\n"
                      "OLD-1,issued,legacy\nbad number!,issued,\n");
    write_text(customers, "external_id,cards,full_name,phone,email,consent_version,attr.mileage\n"
                          "c1,OLD-1,Ivan Petrenko,+380501111111,ivan@example.com,v1,1000\n"
                          "c2,OLD-9,Olga,+380501111111,,v1,lots\n");
    write_text(balances, "card,points,expires_at\nOLD-1,500,\nOLD-2,-5,\n");
    kp_import_files files = {.customers = {customers}, .cards = {cards}, .balances = {balances}};
    lines bad;
    kp_import_stats stats;
    assert_int_equal(import(f, &files, &bad, &stats), KP_ERR_INVALID);
    const char *want[] = {".cards.csv:4: number: card OLD-1 is listed twice",
                          ".cards.csv:5: number:",
                          ".customers.csv:3: phone:",
                          ".customers.csv:3: attr.mileage:",
                          ".customers.csv:3: cards: card OLD-9",
                          ".balances.csv:3: points:"};
    if (bad.n != 6)
        for (int k = 0; k < bad.n; k++) fprintf(stderr, "  %s\n", bad.text[k]);
    assert_int_equal(bad.n, 6);
    for (size_t i = 0; i < 6; i++) {
        bool found = false;
        for (int k = 0; k < bad.n; k++) found |= strstr(bad.text[k], want[i]) != NULL;
        if (!found) fail_msg("missing report %s", want[i]);
    }
    kp_card c;
    assert_int_equal(f->st->ops->card_find(f->st, "OLD-1", &c), KP_ERR_NOT_FOUND);
    unlink(cards);
    unlink(customers);
    unlink(balances);
}

static void test_import_then_rerun_changes_nothing_and_verify_holds(void **state)
{
    fx *f = *state;
    char cards[80], customers[80], balances[80];
    scratch_file(cards, sizeof cards, "cards.csv");
    scratch_file(customers, sizeof customers, "customers.csv");
    scratch_file(balances, sizeof balances, "balances.csv");
    write_text(cards,
               "number,state,batch\nOLD-1,issued,legacy\nOLD-2,issued,legacy\nOLD-3,blocked,\n");
    write_text(customers, "external_id,cards,full_name,phone,email,birthday,consent_version,"
                          "attr.car_model\n"
                          "c1,OLD-1;OLD-2,\"Petrenko, Ivan\",+380501111111,ivan@example.com,"
                          "1980-01-02,v1,Kia Rio\n");
    write_text(balances,
               "card,points,kind,expires_at\nOLD-1,500,,\nOLD-1,250,,2027-01-01T00:00:00Z\n"
               "OLD-3,40,,\n");
    kp_import_files files = {.customers = {customers}, .cards = {cards}, .balances = {balances}};
    lines bad;
    kp_import_stats stats;
    assert_int_equal(import(f, &files, &bad, &stats), KP_OK);
    assert_int_equal(stats.cards_created, 3);
    assert_int_equal(stats.customers_created, 1);
    assert_int_equal(stats.balances_posted, 3);
    kp_card c1, c2;
    assert_int_equal(f->st->ops->card_find(f->st, "OLD-1", &c1), KP_OK);
    assert_int_equal(f->st->ops->card_find(f->st, "OLD-2", &c2), KP_OK);
    assert_int_equal(c1.account_id, c2.account_id);
    assert_true(c1.registered);
    assert_int_equal(f->st->ops->account_load(f->st, c1.account_id, &f->sc->account), KP_OK);
    assert_int_equal(f->sc->account.balance, 750);
    assert_int_equal(problems(f), 0);

    assert_int_equal(import(f, &files, &bad, &stats), KP_OK);
    assert_int_equal(stats.cards_created + stats.customers_created + stats.balances_posted, 0);
    assert_int_equal(stats.cards_unchanged, 3);
    assert_int_equal(stats.customers_unchanged, 1);
    assert_int_equal(stats.balances_unchanged, 3);
    assert_int_equal(f->st->ops->account_load(f->st, c1.account_id, &f->sc->account), KP_OK);
    assert_int_equal(f->sc->account.balance, 750);
    /* The same key with another figure is a bad row, not a second posting. */
    write_text(balances, "card,points\nOLD-1,501\n");
    kp_import_files only = {.balances = {balances}};
    assert_int_equal(import(f, &only, &bad, &stats), KP_ERR_INVALID);
    assert_int_equal(bad.n, 1);
    assert_int_equal(problems(f), 0);
    unlink(cards);
    unlink(customers);
    unlink(balances);
}

/* The HTTP route's way in: a file's bytes in memory, checked and counted
 * without a write (a dry run), each problem with its line, field and
 * message apart; then imported for real from the same bytes. */
typedef struct problems_kept {
    int n;
    int64_t line[8];
    char field[8][32], message[8][160];
} problems_kept;

static void keep_problem(void *ctx, const kp_import_problem *problem)
{
    problems_kept *k = ctx;
    if (k->n == 8) return;
    k->line[k->n] = problem->line;
    snprintf(k->field[k->n], sizeof k->field[0], "%s", problem->field);
    snprintf(k->message[k->n], sizeof k->message[0], "%s", problem->message);
    k->n++;
}

static void test_import_from_memory_dry_run_counts_and_writes_nothing(void **state)
{
    fx *f = *state;
    kp_office o;
    office(f, &o, KP_ROLE_ADMIN, NOW);
    kp_error e = {0};
    kp_import_stats stats;
    problems_kept kept = {0};
    static const char bad_csv[] = "number,state\nMEM-1,issued\nMEM-2,lost\n\nMEM-1,issued\n";
    kp_import_files files = {.cards = {"cards.csv", bad_csv, sizeof bad_csv - 1}, .dry_run = true};
    assert_int_equal(kp_import(&o, &files, keep_problem, &kept, &stats, &e), KP_ERR_INVALID);
    assert_int_equal(stats.bad_rows, 2);
    assert_int_equal(kept.n, 2);
    assert_int_equal(kept.line[0], 3);
    assert_string_equal(kept.field[0], "state");
    assert_string_equal(kept.message[0], "must be issued, active or blocked");
    assert_int_equal(kept.line[1], 5);
    assert_string_equal(kept.field[1], "number");
    assert_string_equal(kept.message[1], "card MEM-1 is listed twice");

    static const char good_csv[] = "number,state\nMEM-1,issued\nMEM-2,blocked\n";
    files.cards = (kp_import_file){"cards.csv", good_csv, sizeof good_csv - 1};
    memset(&kept, 0, sizeof kept);
    assert_int_equal(kp_import(&o, &files, keep_problem, &kept, &stats, &e), KP_OK);
    assert_int_equal(stats.rows, 2);
    assert_int_equal(stats.cards_created, 2);
    kp_card c;
    assert_int_equal(f->st->ops->card_find(f->st, "MEM-1", &c), KP_ERR_NOT_FOUND);
    kp_audit_entry a[4];
    size_t n = 0;
    assert_int_equal(f->st->ops->people->audit_list(f->st, NULL, a, 4, &n), KP_OK);
    assert_int_equal(n, 0);

    files.dry_run = false;
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(in_tx(f, kp_import(&o, &files, keep_problem, &kept, &stats, &e)), KP_OK);
    assert_int_equal(stats.cards_created, 2);
    assert_int_equal(f->st->ops->card_find(f->st, "MEM-1", &c), KP_OK);
    files.dry_run = true;
    assert_int_equal(kp_import(&o, &files, keep_problem, &kept, &stats, &e), KP_OK);
    assert_int_equal(stats.cards_created, 0);
    assert_int_equal(stats.cards_unchanged, 2);
    assert_int_equal(kept.n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sealed_value_opens_only_with_its_key_and_field, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_normalisation_of_phone_email_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_each_role_is_denied_what_it_may_not_do, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_registration_reports_every_bad_field, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_registration_marks_the_card_and_a_taken_phone_conflicts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_copied_database_holds_no_personal_data, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_search_by_phone_email_name_and_card, setup, teardown),
        cmocka_unit_test_setup_teardown(test_erase_removes_personal_data_and_keeps_the_ledger,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_replacement_moves_balance_and_history_and_kills_the_old_number, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_unregistered_card_earns_but_may_not_burn_under_seed_003_policy, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_unregistered_card_earns_nothing_when_the_program_says_so, setup, teardown),
        cmocka_unit_test_setup_teardown(test_adjustment_limited_by_role_and_idempotent, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_transfer_keeps_expiry_respects_limits_and_is_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_customers_session_touches_only_their_own, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_family_pools_points_and_the_owner_decides_who_spends,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_macs_detect_a_rewritten_chain, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_audit_entry_without_a_mac_after_macs_is_a_problem,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_of_a_database_from_before_macs, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_audit_chain_detects_a_changed_and_a_deleted_entry,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_import_reports_every_bad_row_and_writes_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_import_then_rerun_changes_nothing_and_verify_holds,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_import_from_memory_dry_run_counts_and_writes_nothing,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
