/*
 * test_till.c: what a till may say (till.c, program "till" and
 * "event_sources"): the clock window's exact edges and the offline mode's
 * limit; the program file's defaults for a program that declares nothing;
 * and the operation log keeping what a till said (an offline upload, a card
 * found by phone, a return at another store) so that recovery answers
 * byte for byte as the server did; a log written before the clock was
 * bounded (format 1) still recovers after the upgrade.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kopilka/clock.h>
#include <sodium.h>

#include "group_writer.h"
#include "service/service.h"

static const kp_time MINUTE = 60;

static kp_time at(const char *text)
{
    kp_time t = 0;
    assert_true(kp_time_parse(text, &t));
    return t;
}

static kp_program *parse(const char *json)
{
    kp_program *p = calloc(1, sizeof *p);
    kp_error e = {0};
    assert_int_equal(kp_program_parse(json, strlen(json), p, &e), KP_OK);
    p->version = 7;
    return p;
}

static const char grants_json[] =
    "{\"name\":\"t\",\"rules\":["
    "{\"id\":\"bd\",\"kind\":\"grant\",\"on\":\"birthday\",\"points\":10},"
    "{\"id\":\"club\",\"kind\":\"grant\",\"on\":\"partner_card\",\"points\":10},"
    "{\"id\":\"reg\",\"kind\":\"grant\",\"on\":\"registration\",\"points\":10}]}";

static void a_program_that_declares_nothing_gets_the_defaults(void **state)
{
    (void)state;
    kp_program *p = parse(grants_json);
    assert_int_equal(p->till.clock_skew_seconds, 5 * MINUTE);
    assert_int_equal(p->till.offline_days, 3);
    assert_false(p->till.identify_by_phone);
    /* The grants' own types from a till or the back office; never the
     * server's own; a partner must be declared. */
    assert_int_equal(kp_program_event_from(p, "partner_card"), KP_FROM_TILL | KP_FROM_BACK_OFFICE);
    assert_int_equal(kp_program_event_from(p, "birthday"), 0);
    assert_int_equal(kp_program_event_from(p, "registration"), 0);
    assert_int_equal(kp_program_event_from(p, "survey"), 0);
    free(p);
}

static void declared_sources_replace_the_default(void **state)
{
    (void)state;
    kp_program *p = parse("{\"name\":\"t\",\"rules\":[{\"id\":\"club\",\"kind\":\"grant\","
                          "\"on\":\"partner_card\",\"points\":10}],"
                          "\"event_sources\":[{\"type\":\"survey\",\"from\":[\"partner\"]}],"
                          "\"till\":{\"clock_skew_minutes\":0,\"offline_days\":0}}");
    assert_int_equal(kp_program_event_from(p, "survey"), KP_FROM_PARTNER);
    assert_int_equal(kp_program_event_from(p, "partner_card"), 0);
    assert_int_equal(p->till.clock_skew_seconds, 0);
    free(p);
}

static void the_window_has_exact_edges(void **state)
{
    (void)state;
    kp_program *p = parse(grants_json);
    kp_time now = at("2026-11-25T10:00:00Z");
    kp_error e = {0};
    assert_int_equal(kp_till_check_at(p, false, 0, false, now, &e), KP_OK);
    assert_int_equal(kp_till_check_at(p, true, now - 5 * MINUTE, false, now, &e), KP_OK);
    assert_int_equal(kp_till_check_at(p, true, now + 5 * MINUTE, false, now, &e), KP_OK);
    assert_int_equal(kp_till_check_at(p, true, now - 5 * MINUTE - 1, false, now, &e),
                     KP_ERR_INVALID);
    assert_string_equal(e.field, "at");
    assert_non_null(strstr(e.message, "program version 7"));
    assert_int_equal(kp_till_check_at(p, true, now + 5 * MINUTE + 1, false, now, &e),
                     KP_ERR_INVALID);
    assert_non_null(strstr(e.message, "in the future"));
    /* Offline: 3 days (and the skew) back, never ahead. */
    kp_time back = 3 * KP_DAY_SECONDS + 5 * MINUTE;
    assert_int_equal(kp_till_check_at(p, true, now - back, true, now, &e), KP_OK);
    assert_int_equal(kp_till_check_at(p, true, now - back - 1, true, now, &e), KP_ERR_INVALID);
    assert_non_null(strstr(e.message, "till.offline_days = 3"));
    assert_int_equal(kp_till_check_at(p, true, now + 5 * MINUTE + 1, true, now, &e),
                     KP_ERR_INVALID);
    assert_int_equal(kp_till_check_at(p, false, 0, true, now, &e), KP_ERR_INVALID);
    p->till.offline_days = 0;
    assert_int_equal(kp_till_check_at(p, true, now, true, now, &e), KP_ERR_INVALID);
    assert_string_equal(e.field, "offline");
    free(p);
}

/* ---- the operation log */

typedef struct fx {
    char db[64];
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    snprintf(f->db, sizeof f->db, "/tmp/kp-test-till-%d.db", (int)getpid());
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    const char *suffixes[] = {"", "-wal", "-shm", ".key", ".oplog-0", ".oplog-1"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char p[96];
        snprintf(p, sizeof p, "%s%s", f->db, suffixes[i]);
        unlink(p);
    }
    free(f);
    return 0;
}

static const char program_json[] =
    "{\"name\":\"t\",\"rules\":[{\"id\":\"earn\",\"kind\":\"earn_percent\",\"percent\":5}]}";

static void emit_card(void *ctx, const char *number)
{
    snprintf(ctx, KP_STR_MAX, "%s", number);
}

static void what_a_till_said_is_replayed_from_the_log(void **state)
{
    fx *f = *state;
    kp_store *st = NULL;
    kp_error e = {0};
    int64_t version = 0;
    char card[KP_STR_MAX] = "";
    kp_time now = at("2026-11-25T10:00:00Z");
    assert_int_equal(kp_service_open(f->db, true, &st, &e), KP_OK);
    assert_int_equal(kp_service_program_load(st, program_json, strlen(program_json), &version, &e),
                     KP_OK);
    assert_int_equal(kp_service_cards_issue(st, 1, 0, emit_card, card, &e), KP_OK);
    kp_program *p = malloc(sizeof *p);
    assert_int_equal(kp_service_program_get(st, 0, p, &e), KP_OK);
    kp_scratch *sc = kp_scratch_new();

    static kp_purchase_req buy;
    char body[512];
    snprintf(body, sizeof body,
             "{\"card\":\"%s\",\"receipt\":\"R-1\",\"offline\":true,"
             "\"at\":\"2026-11-23T12:00:00Z\",\"lines\":[{\"sku\":\"a\",\"amount\":100000}]}",
             card);
    assert_int_equal(kp_purchase_req_parse(body, strlen(body), true, &buy, &e), KP_OK);
    buy.by_phone = true; /* as the server sets it after finding the card */
    static kp_return_req ret;
    const char *rbody = "{\"card\":\"C\",\"receipt\":\"RET-1\",\"original_receipt\":\"R-1\","
                        "\"original_store\":\"s1\"}";
    assert_int_equal(kp_return_req_parse(rbody, strlen(rbody), &ret, &e), KP_OK);
    snprintf(ret.card, sizeof ret.card, "%s", card);

    group_writer w;
    group_writer_open(&w, st, f->db);
    kp_buf a1, a2, rec;
    kp_buf_init(&a1, 1 << 20);
    kp_buf_init(&a2, 1 << 20);
    kp_buf_init(&rec, 1 << 20);
    bool replayed = true;
    group_writer_begin(&w);
    assert_int_equal(kp_service_purchase(st, p, "s1", &buy, now, sc, &a1, &replayed, &e), KP_OK);
    assert_non_null(strstr(a1.data, "\"identified_by\":\"phone\""));
    assert_non_null(strstr(a1.data, "\"offline\":true"));
    assert_int_equal(kp_durable_purchase(&rec, "s1", &buy, now, p->version, &a1), KP_OK);
    group_writer_log(&w, &rec);
    assert_int_equal(kp_service_return(st, p, "s2", &ret, now, sc, &a2, &replayed, &e), KP_OK);
    assert_non_null(strstr(a2.data, "\"original_store\":\"s1\",\"store\":\"s2\""));
    assert_int_equal(kp_durable_return(&rec, "s2", &ret, now, p->version, &a2), KP_OK);
    group_writer_log(&w, &rec);
    group_writer_end_durable(&w);
    group_writer_close(&w); /* the crash loses the transaction */
    kp_store_close(st);

    /* Recovery replays both (it checks each answer's hash); a retry of the
     * purchase renders the same answer from what the replay stored. */
    assert_int_equal(kp_service_open(f->db, false, &st, &e), KP_OK);
    kp_buf out;
    kp_buf_init(&out, 1 << 20);
    replayed = false;
    assert_int_equal(kp_service_purchase(st, p, "s1", &buy, now + 3600, sc, &out, &replayed, &e),
                     KP_OK);
    assert_true(replayed);
    assert_string_equal(out.data + strlen("{\"replayed\":true,"), a1.data + 1);
    assert_int_equal(kp_service_return(st, p, "s2", &ret, now, sc, &out, &replayed, &e), KP_OK);
    assert_true(replayed);
    assert_string_equal(out.data + strlen("{\"replayed\":true,"), a2.data + 1);

    kp_store_close(st);
    kp_buf_release(&out);
    kp_buf_release(&rec);
    kp_buf_release(&a1);
    kp_buf_release(&a2);
    kp_scratch_free(sc);
    free(p);
}

/* ---- format 1 records, written by hand as the binary before format 2 did */

static void put(kp_buf *b, const void *p, size_t n)
{
    kp_buf_append(b, p, n);
}
static void put_u8(kp_buf *b, uint8_t v)
{
    put(b, &v, 1);
}
static void put_i64(kp_buf *b, int64_t v)
{
    put(b, &v, 8);
}
static void put_str(kp_buf *b, const char *s)
{
    uint16_t n = (uint16_t)strlen(s);
    put(b, &n, 2);
    put(b, s, n);
}

static void put_head(kp_buf *b, uint8_t type, kp_time now, int64_t version, const char *store,
                     const kp_buf *answer)
{
    kp_buf_reset(b);
    put_u8(b, 1);
    put_u8(b, type);
    put_i64(b, now);
    put_i64(b, version);
    put_str(b, store);
    uint8_t h[16];
    crypto_generichash(h, sizeof h, (const unsigned char *)answer->data, answer->len, NULL, 0);
    put(b, h, sizeof h);
}

static void a_format_1_log_recovers_after_the_upgrade(void **state)
{
    fx *f = *state;
    kp_store *st = NULL;
    kp_error e = {0};
    int64_t version = 0;
    char card[KP_STR_MAX] = "";
    kp_time now = at("2026-11-25T10:00:00Z");
    assert_int_equal(kp_service_open(f->db, true, &st, &e), KP_OK);
    assert_int_equal(kp_service_program_load(st, program_json, strlen(program_json), &version, &e),
                     KP_OK);
    assert_int_equal(kp_service_cards_issue(st, 1, 0, emit_card, card, &e), KP_OK);
    kp_program *p = malloc(sizeof *p);
    assert_int_equal(kp_service_program_get(st, 0, p, &e), KP_OK);
    kp_scratch *sc = kp_scratch_new();

    /* A purchase dated 2020, as the old binary accepted it, and its return. */
    static kp_purchase_req buy;
    char body[512];
    snprintf(body, sizeof body,
             "{\"card\":\"%s\",\"receipt\":\"R-1\",\"at\":\"2020-03-01T10:00:00Z\","
             "\"lines\":[{\"sku\":\"a\",\"amount\":100000}]}",
             card);
    assert_int_equal(kp_purchase_req_parse(body, strlen(body), true, &buy, &e), KP_OK);
    static kp_return_req ret;
    const char *rbody = "{\"card\":\"C\",\"receipt\":\"RET-1\",\"original_receipt\":\"R-1\"}";
    assert_int_equal(kp_return_req_parse(rbody, strlen(rbody), &ret, &e), KP_OK);
    snprintf(ret.card, sizeof ret.card, "%s", card);

    /* Today that purchase is refused; as a format 1 record it is not. */
    kp_buf a1, a2, rec;
    kp_buf_init(&a1, 1 << 20);
    kp_buf_init(&a2, 1 << 20);
    kp_buf_init(&rec, 1 << 20);
    bool replayed = false;
    assert_int_equal(st->ops->begin(st), KP_OK);
    assert_int_equal(kp_service_purchase(st, p, "s1", &buy, now, sc, &a1, &replayed, &e),
                     KP_ERR_INVALID);
    assert_string_equal(e.field, "at");
    buy.log_format1 = ret.log_format1 = true;
    assert_int_equal(kp_service_purchase(st, p, "s1", &buy, now, sc, &a1, &replayed, &e), KP_OK);
    assert_int_equal(kp_service_return(st, NULL, "s1", &ret, now, sc, &a2, &replayed, &e), KP_OK);
    assert_null(strstr(a2.data, "original_store")); /* the answer as format 1's binary gave it */
    assert_int_equal(st->ops->rollback(st), KP_OK);

    group_writer w;
    group_writer_open(&w, st, f->db);
    group_writer_begin(&w);
    put_head(&rec, 1, now, p->version, "s1", &a1);
    put_str(&rec, buy.card);
    put_str(&rec, buy.receipt);
    put_u8(&rec, buy.at_given);
    put_i64(&rec, buy.at);
    put_i64(&rec, 0);
    put_i64(&rec, 1);
    put_str(&rec, "a");
    put_str(&rec, "");
    put_i64(&rec, 100000);
    put_i64(&rec, 1);
    put_u8(&rec, 0);
    group_writer_log(&w, &rec);
    put_head(&rec, 2, now, 0, "s1", &a2);
    put_str(&rec, ret.card);
    put_str(&rec, ret.receipt);
    put_str(&rec, ret.original_receipt);
    put_u8(&rec, 0);
    put_i64(&rec, 0);
    put_u8(&rec, 1);
    put_i64(&rec, 0);
    group_writer_log(&w, &rec);
    group_writer_end_durable(&w);
    group_writer_close(&w);
    kp_store_close(st);

    assert_int_equal(kp_service_open(f->db, false, &st, &e), KP_OK);
    kp_op_row row;
    assert_int_equal(st->ops->op_find(st, "s1", "R-1", &row), KP_OK);
    assert_int_equal(row.at, buy.at);
    kp_op_row_release(&row);
    assert_int_equal(st->ops->op_find(st, "s1", "RET-1", &row), KP_OK);
    assert_int_equal(row.earned, -50);
    kp_op_row_release(&row);

    kp_store_close(st);
    kp_buf_release(&rec);
    kp_buf_release(&a1);
    kp_buf_release(&a2);
    kp_scratch_free(sc);
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_program_that_declares_nothing_gets_the_defaults),
        cmocka_unit_test(declared_sources_replace_the_default),
        cmocka_unit_test(the_window_has_exact_edges),
        cmocka_unit_test_setup_teardown(what_a_till_said_is_replayed_from_the_log, setup, teardown),
        cmocka_unit_test_setup_teardown(a_format_1_log_recovers_after_the_upgrade, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
