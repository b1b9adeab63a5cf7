/*
 * test_ops.c: the operations side: the access log's lines and routes (no
 * card number or customer id ever reaches the log), request ids, and the
 * online backup (store_backup.h): a copy taken while the "server" holds
 * purchases only in its operation log and an open transaction still holds
 * every one of them once opened.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fixture.h"
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/access_log.h"
#include "group_writer.h"
#include "service/service.h"
#include "store/store_backup.h"

static void route_of(const char *url, const char *want)
{
    char out[KP_ACCESS_ROUTE_MAX];
    kp_access_route(url, out, sizeof out);
    assert_string_equal(out, want);
}

static void routes_never_carry_card_numbers_or_ids(void **state)
{
    (void)state;
    route_of("/v1/purchases", "/v1/purchases");
    route_of("/health", "/health");
    route_of("/v1/cards/2000000000018", "/v1/cards/{}");
    route_of("/v1/cards/2000000000018/qr.png", "/v1/cards/{}/qr.png");
    route_of("/v1/admin/customers/17/history", "/v1/admin/customers/{}/history");
    route_of("/v1/admin/families/3/members/9/leave", "/v1/admin/families/{}/members/{}/leave");
    route_of("/v1/admin/staff/anna", "/v1/admin/staff/{}");
    route_of("/v1/admin/messages/12/retry", "/v1/admin/messages/{}/retry");
    route_of("/v1/unsubscribe/AAAAsecret", "/v1/unsubscribe/{}");
    route_of("/v1/sms/inbound", "/v1/sms/inbound");
    route_of("/v1/login/code", "/v1/login/code");
    route_of("/v1/admin/templates/earned/sms/en/preview", "/v1/admin/templates/{}/sms/{}/preview");
    route_of("/v1/admin/programs/12/cancel", "/v1/admin/programs/{}/cancel");
    route_of("/v1/admin/programs/sandbox", "/v1/admin/programs/sandbox");
    route_of("/v1/cards/", "/v1/cards/");
    route_of("/", "/");
    route_of("", "/");
    route_of("/%2Fetc%2Fpasswd", "/{}");
    route_of("/unknown/Ivanov/+79161234567", "/{}/{}/{}");
    route_of("no-slash", "{}");
    /* A path too long for the buffer is cut at a whole segment. */
    char url[600] = "";
    for (int i = 0; i < 80; i++) strcat(url, "/cards");
    char out[KP_ACCESS_ROUTE_MAX];
    kp_access_route(url, out, sizeof out);
    assert_true(strlen(out) < sizeof out);
    assert_int_equal(strlen(out) % 6, 0);
}

static void request_ids_are_checked_and_made_unique(void **state)
{
    (void)state;
    assert_true(kp_request_id_valid("abc-123"));
    assert_true(kp_request_id_valid("till-7.r1:2026_11"));
    char longest[KP_REQUEST_ID_MAX + 2];
    memset(longest, 'x', KP_REQUEST_ID_MAX);
    longest[KP_REQUEST_ID_MAX] = '\0';
    assert_true(kp_request_id_valid(longest));
    longest[KP_REQUEST_ID_MAX] = 'x';
    longest[KP_REQUEST_ID_MAX + 1] = '\0';
    assert_false(kp_request_id_valid(longest));
    assert_false(kp_request_id_valid(""));
    assert_false(kp_request_id_valid("has space"));
    assert_false(kp_request_id_valid("quote\""));
    assert_false(kp_request_id_valid("new\nline"));
    char a[KP_REQUEST_ID_MAX + 1], b[KP_REQUEST_ID_MAX + 1];
    kp_request_id_new(a);
    kp_request_id_new(b);
    assert_int_equal(strlen(a), 16);
    assert_true(kp_request_id_valid(a));
    assert_string_not_equal(a, b);
}

static void a_request_is_one_json_line(void **state)
{
    (void)state;
    char path[64];
    snprintf(path, sizeof path, "/tmp/kp-test-ops-log-%d", (int)getpid());
    char problem[200];
    int fd = -2;
    assert_false(kp_access_log_open("/nonexistent-dir/x", &fd, problem, sizeof problem));
    assert_non_null(strstr(problem, "--access-log: cannot open /nonexistent-dir/x"));
    assert_true(kp_access_log_open("off", &fd, problem, sizeof problem));
    assert_int_equal(fd, -1);
    kp_access_log_write(fd, &(kp_access_entry){.method = "GET", .url = "/"}); /* nothing */
    assert_true(kp_access_log_open(path, &fd, problem, sizeof problem));
    kp_access_entry entry = {.method = "POST",
                             .url = "/v1/cards/2000000000018",
                             .status = 201,
                             .latency_us = 1234,
                             .store = "a\"b\\c",
                             .request_id = "r-1"};
    kp_access_log_write(fd, &entry);
    kp_access_log_event(fd, "connection_refused", "limit 2");
    kp_access_log_close(fd);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[1024], line2[1024];
    assert_non_null(fgets(line, sizeof line, f));
    assert_non_null(fgets(line2, sizeof line2, f));
    assert_null(fgets(line2 + 512, 16, f));
    fclose(f);
    unlink(path);
    /* {"time":"YYYY-MM-DDTHH:MM:SS.uuuuuuZ", then the fields */
    assert_int_equal(strncmp(line, "{\"time\":\"", 9), 0);
    assert_int_equal(line[9 + 26], 'Z');
    assert_string_equal(line + 9 + 27,
                        "\",\"method\":\"POST\",\"route\":\"/v1/cards/{}\",\"status\":201,"
                        "\"latency_us\":1234,\"store\":\"a\\\"b\\\\c\",\"request_id\":\"r-1\"}\n");
    assert_string_equal(line2 + 9 + 27, "\",\"event\":\"connection_refused\",\"detail\":\"limit "
                                        "2\"}\n");
}

/* ---- backup */

static const char program_json[] =
    "{\"name\":\"t\",\"rules\":[{\"id\":\"earn\",\"kind\":\"earn_percent\",\"percent\":5}]}";
static const kp_time test_now = 1767225600LL * 1000000000LL;

static void emit_card(void *ctx, const char *number)
{
    snprintf(ctx, KP_STR_MAX, "%s", number);
}


/* A purchase run as the server's writer runs it: in the open transaction,
 * its record queued in the log. */
static void logged_purchase(kp_store *st, const kp_program *p, group_writer *w, const char *card,
                            const char *receipt, kp_scratch *sc)
{
    char body[256];
    snprintf(body, sizeof body,
             "{\"card\":\"%s\",\"receipt\":\"%s\",\"lines\":[{\"sku\":\"a\",\"amount\":100000}]}",
             card, receipt);
    static kp_purchase_req req;
    kp_error e = {0};
    assert_int_equal(kp_purchase_req_parse(body, strlen(body), true, &req, &e), KP_OK);
    kp_buf answer, rec;
    kp_buf_init(&answer, 1 << 20);
    kp_buf_init(&rec, 1 << 20);
    bool replayed = true;
    assert_int_equal(kp_service_purchase(st, p, "s1", &req, test_now, sc, &answer, &replayed, &e),
                     KP_OK);
    assert_false(replayed);
    assert_int_equal(kp_durable_purchase(&rec, "s1", &req, test_now, p->version, &answer), KP_OK);
    group_writer_log(w, &rec);
    kp_buf_release(&answer);
    kp_buf_release(&rec);
}

static void no_report(void *ctx, const char *line)
{
    (void)ctx;
    fail_msg("verify reported: %s", line);
}

static void a_backup_holds_purchases_only_in_the_log(void **state)
{
    (void)state;
    char db[64], out[64];
    snprintf(db, sizeof db, "/tmp/kp-test-ops-%d.db", (int)getpid());
    snprintf(out, sizeof out, "/tmp/kp-test-ops-%d-copy.db", (int)getpid());
    fixture_remove_db(db);
    fixture_remove_db(out);
    kp_store *st = NULL;
    kp_error e = {0};
    int64_t version = 0;
    char card[KP_STR_MAX] = "";
    assert_int_equal(kp_service_open(db, true, &st, &e), KP_OK);
    assert_int_equal(kp_service_program_load(st, program_json, strlen(program_json), &version, &e),
                     KP_OK);
    assert_int_equal(kp_service_cards_issue(st, 1, 0, emit_card, card, &e), KP_OK);
    kp_program *p = malloc(sizeof *p);
    assert_int_equal(kp_service_program_get(st, 0, p, &e), KP_OK);
    kp_scratch *sc = kp_scratch_new();

    /* The server, running: the log is its own, two purchases are durable
     * in it and acknowledged, and the database transaction holding them is
     * still open (not committed). */
    group_writer w;
    group_writer_open(&w, st, db);
    group_writer_begin(&w);
    logged_purchase(st, p, &w, card, "R-1", sc);
    logged_purchase(st, p, &w, card, "R-2", sc);
    group_writer_end_durable(&w);

    /* The backup meanwhile, then the copy opened as a restore would. */
    assert_int_equal(store_backup_copy(db, out, 4, &e), KP_OK);
    assert_int_equal(store_backup_copy(db, out, 4, &e), KP_ERR_CONFLICT); /* never overwrites */
    assert_non_null(strstr(e.message, "already exists"));
    kp_store *copy = NULL;
    assert_int_equal(kp_service_open(out, false, &copy, &e), KP_OK);
    kp_op_row row;
    assert_int_equal(copy->ops->op_find(copy, "s1", "R-1", &row), KP_OK);
    kp_op_row_release(&row);
    assert_int_equal(copy->ops->op_find(copy, "s1", "R-2", &row), KP_OK);
    assert_int_equal(row.earned, 50);
    kp_op_row_release(&row);
    int64_t problems = -1;
    assert_int_equal(copy->ops->verify(copy, no_report, NULL, &problems), KP_OK);
    assert_int_equal(problems, 0);
    kp_store_close(copy);

    /* The server goes on: it publishes; nothing changed for it. */
    group_writer_begin(&w);
    group_writer_publish(&w);
    assert_int_equal(st->ops->op_find(st, "s1", "R-2", &row), KP_OK);
    kp_op_row_release(&row);
    group_writer_close(&w);
    kp_store_close(st);
    kp_scratch_free(sc);
    free(p);
    fixture_remove_db(db);
    fixture_remove_db(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(routes_never_carry_card_numbers_or_ids),
        cmocka_unit_test(request_ids_are_checked_and_made_unique),
        cmocka_unit_test(a_request_is_one_json_line),
        cmocka_unit_test(a_backup_holds_purchases_only_in_the_log),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
