/*
 * test_oplog.c: the operation log (oplog.h) and recovery from it
 * (durable.c): records come back in order and byte for byte; a torn or
 * corrupted record ends the chain; records of another database are not
 * read; the lock keeps a second owner out; the chain follows the switch
 * between the two files and survives overwriting; and purchases that were
 * only in the log when the "server" died are replayed into the database
 * with the answers they were given, while a record whose replay answers
 * differently stops recovery without changing anything.
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

#include <kopilka/oplog.h>

#include "group_writer.h"
#include "service/service.h"

static const uint8_t key_a[16] = {1, 2, 3};
static const uint8_t key_b[16] = {9, 9, 9};

typedef struct fx {
    char db[64];
    char file[2][80];
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    snprintf(f->db, sizeof f->db, "/tmp/kp-test-oplog-%d.db", (int)getpid());
    for (int i = 0; i < 2; i++) {
        snprintf(f->file[i], sizeof f->file[i], "%s.oplog-%d", f->db, i);
        unlink(f->file[i]);
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    for (int i = 0; i < 2; i++) unlink(f->file[i]);
    fixture_remove_db(f->db);
    free(f);
    return 0;
}

typedef struct seen {
    uint64_t seqs[4096];
    char payload[4096][32];
    size_t n;
} seen;

static kp_err collect(void *ctx, uint64_t seq, const uint8_t *data, size_t len, kp_error *e)
{
    (void)e;
    seen *s = ctx;
    assert_true(s->n < 4096);
    assert_true(len < 32);
    s->seqs[s->n] = seq;
    memcpy(s->payload[s->n], data, len);
    s->payload[s->n][len] = '\0';
    s->n++;
    return KP_OK;
}

/* Adds records "r<first>".."r<last>" and writes them as one group. */
static void write_group(kp_oplog *log, int first, int last)
{
    kp_error e;
    for (int i = first; i <= last; i++) {
        char text[32];
        int n = snprintf(text, sizeof text, "r%d", i);
        assert_int_equal(kp_oplog_add(log, text, (size_t)n, &e), KP_OK);
    }
    unsigned files = 0;
    uint64_t seq = 0;
    assert_int_equal(kp_oplog_write(log, &files, &seq, &e), KP_OK);
    assert_int_equal(seq, (uint64_t)last);
    assert_int_equal(kp_oplog_sync(log, files, &e), KP_OK);
}

static seen *replay_all(const char *db, const uint8_t *key, uint64_t after, uint64_t *last)
{
    kp_oplog *log = NULL;
    kp_error e;
    assert_int_equal(kp_oplog_open(db, key, &log, &e), KP_OK);
    seen *s = calloc(1, sizeof *s);
    assert_int_equal(kp_oplog_replay(log, after, collect, s, last, &e), KP_OK);
    kp_oplog_close(log);
    return s;
}

static void records_come_back_in_order(void **state)
{
    fx *f = *state;
    kp_oplog *log = NULL;
    kp_error e;
    assert_int_equal(kp_oplog_open(f->db, key_a, &log, &e), KP_OK);
    kp_oplog_start(log, 0);
    write_group(log, 1, 3);
    write_group(log, 4, 10);
    kp_oplog_close(log);

    uint64_t last = 0;
    seen *s = replay_all(f->db, key_a, 0, &last);
    assert_int_equal(last, 10);
    assert_int_equal(s->n, 10);
    for (size_t i = 0; i < s->n; i++) {
        char want[32];
        snprintf(want, sizeof want, "r%zu", i + 1);
        assert_int_equal(s->seqs[i], i + 1);
        assert_string_equal(s->payload[i], want);
    }
    free(s);
    /* Only what is past the database's mark. */
    s = replay_all(f->db, key_a, 7, &last);
    assert_int_equal(s->n, 3);
    assert_int_equal(s->seqs[0], 8);
    assert_int_equal(last, 10);
    free(s);
    /* Another database's key reads nothing. */
    s = replay_all(f->db, key_b, 0, &last);
    assert_int_equal(s->n, 0);
    assert_int_equal(last, 0);
    free(s);
}

static void a_corrupt_record_ends_the_chain(void **state)
{
    fx *f = *state;
    kp_oplog *log = NULL;
    kp_error e;
    assert_int_equal(kp_oplog_open(f->db, key_a, &log, &e), KP_OK);
    kp_oplog_start(log, 0);
    write_group(log, 1, 5);
    kp_oplog_close(log);
    /* Each record here is 32 bytes of header and 8 of payload: flip a
     * payload byte of the last one (damage in the middle, with readable
     * records after it, is test_durability.c's). */
    int fd = open(f->file[0], O_RDWR);
    assert_true(fd >= 0);
    char c = 'X';
    assert_int_equal(pwrite(fd, &c, 1, 4 * 40 + 32), 1);
    close(fd);
    uint64_t last = 0;
    seen *s = replay_all(f->db, key_a, 0, &last);
    assert_int_equal(s->n, 4);
    assert_int_equal(last, 4);
    free(s);
    /* A torn tail: the file cut in the middle of the second record. */
    assert_int_equal(truncate(f->file[0], 40 + 20), 0);
    s = replay_all(f->db, key_a, 0, &last);
    assert_int_equal(s->n, 1);
    free(s);
}

static void one_owner_at_a_time(void **state)
{
    fx *f = *state;
    kp_oplog *a = NULL, *b = NULL;
    kp_error e;
    assert_int_equal(kp_oplog_open(f->db, key_a, &a, &e), KP_OK);
    assert_int_equal(kp_oplog_open(f->db, key_a, &b, &e), KP_ERR_BUSY);
    assert_null(b);
    assert_non_null(strstr(e.message, "in use"));
    kp_oplog_close(a);
    assert_int_equal(kp_oplog_open(f->db, key_a, &b, &e), KP_OK);
    kp_oplog_close(b);
}

static void the_chain_follows_the_switch_and_survives_overwriting(void **state)
{
    fx *f = *state;
    kp_oplog *log = NULL;
    kp_error e;
    assert_int_equal(kp_oplog_open(f->db, key_a, &log, &e), KP_OK);
    kp_oplog_set_switch_bytes(log, 100); /* switch at every commit point */
    kp_oplog_start(log, 0);
    write_group(log, 1, 4);              /* file 0 */
    kp_oplog_commit_point(log, 0);       /* file 1 is empty: switch */
    write_group(log, 5, 9);              /* file 1 */
    /* File 0 holds up to 4: it may not be reused before 4 is durable. */
    kp_oplog_commit_point(log, 3);
    write_group(log, 10, 11);            /* still file 1 */
    uint64_t last = 0;
    seen *s = calloc(1, sizeof *s);
    assert_int_equal(kp_oplog_replay(log, 2, collect, s, &last, &e), KP_OK);
    assert_int_equal(s->n, 9);
    assert_int_equal(s->seqs[0], 3);
    assert_int_equal(last, 11);
    free(s);
    kp_oplog_commit_point(log, 4);       /* now file 0 is reused from its start */
    write_group(log, 12, 12);            /* one short record over the old r1 */
    kp_oplog_close(log);

    /* From 4 on: 5..11 from file 1, then 12 from file 0; the rest of file 0
     * (old records 2..4) is not read as part of the chain. */
    s = replay_all(f->db, key_a, 4, &last);
    assert_int_equal(s->n, 8);
    for (size_t i = 0; i < s->n; i++) assert_int_equal(s->seqs[i], 5 + i);
    assert_string_equal(s->payload[7], "r12");
    assert_int_equal(last, 12);
    free(s);
}

/* ---- recovery through the service */

static const char program_json[] =
    "{\"name\":\"t\",\"rules\":[{\"id\":\"earn\",\"kind\":\"earn_percent\",\"percent\":5}]}";

static const kp_time test_now = 1767225600LL * 1000000000LL;

static const kp_purchase_req *purchase_req(const char *card, const char *receipt, int64_t amount,
                                           int64_t burn)
{
    char body[256];
    snprintf(body, sizeof body,
             "{\"card\":\"%s\",\"receipt\":\"%s\",\"burn\":%lld,\"lines\":[{\"sku\":\"a\","
             "\"amount\":%lld}]}",
             card, receipt, (long long)burn, (long long)amount);
    static kp_purchase_req req;
    kp_error e = {0};
    assert_int_equal(kp_purchase_req_parse(body, strlen(body), true, &req, &e), KP_OK);
    return &req;
}

static void purchase(kp_store *st, const kp_program *p, group_writer *w, const char *card,
                     const char *receipt, int64_t amount, int64_t burn, kp_buf *answer,
                     kp_scratch *sc)
{
    const kp_purchase_req *req = purchase_req(card, receipt, amount, burn);
    kp_error e = {0};
    bool replayed = true;
    kp_time now = test_now;
    assert_int_equal(kp_service_purchase(st, p, "s1", req, now, sc, answer, &replayed, &e),
                     KP_OK);
    assert_false(replayed);
    kp_buf rec;
    kp_buf_init(&rec, 1 << 20);
    assert_int_equal(kp_durable_purchase(&rec, "s1", req, now, p->version, answer), KP_OK);
    group_writer_log(w, &rec);
    kp_buf_release(&rec);
}

static void emit_card(void *ctx, const char *number) { snprintf(ctx, KP_STR_MAX, "%s", number); }

static void purchases_only_in_the_log_are_replayed(void **state)
{
    fx *f = *state;
    kp_store *st = NULL;
    kp_error e = {0};
    int64_t version = 0;
    char card[KP_STR_MAX] = "";
    assert_int_equal(kp_service_open(f->db, true, &st, &e), KP_OK);
    assert_int_equal(kp_service_program_load(st, program_json, strlen(program_json), &version, &e),
                     KP_OK);
    assert_int_equal(kp_service_cards_issue(st, 1, 0, emit_card, card, &e), KP_OK);
    kp_program *p = malloc(sizeof *p);
    assert_int_equal(kp_service_program_get(st, 0, p, &e), KP_OK);
    kp_scratch *sc = kp_scratch_new();

    /* The server: its group writer open, a transaction open across two
     * groups, the records durable, then a crash before the database commit. */
    group_writer w;
    group_writer_open(&w, st, f->db);
    assert_int_equal(w.recovered, 0);
    kp_buf a1, a2;
    kp_buf_init(&a1, 1 << 20);
    kp_buf_init(&a2, 1 << 20);
    group_writer_begin(&w);
    purchase(st, p, &w, card, "R-1", 100000, 0, &a1, sc);   /* earns 50 */
    group_writer_end_durable(&w);
    group_writer_begin(&w);
    purchase(st, p, &w, card, "R-2", 60000, 20, &a2, sc);   /* burns 20 */
    group_writer_end_durable(&w);
    group_writer_close(&w); /* the crash loses the transaction */
    kp_store_close(st);

    /* Reopening (as the CLI or the server does) replays both. */
    assert_int_equal(kp_service_open(f->db, false, &st, &e), KP_OK);
    kp_op_row row;
    assert_int_equal(st->ops->op_find(st, "s1", "R-2", &row), KP_OK);
    assert_int_equal(row.burned, 20);
    kp_op_row_release(&row);
    kp_buf out;
    kp_buf_init(&out, 1 << 20);
    /* A retry of R-2 is answered with the answer given before the crash,
     * rendered again from what the replay stored. */
    bool replayed = false;
    assert_int_equal(kp_service_purchase(st, p, "s1", purchase_req(card, "R-2", 60000, 20),
                                         test_now + 1000, sc, &out, &replayed, &e),
                     KP_OK);
    assert_true(replayed);
    assert_true(strncmp(out.data, "{\"replayed\":true,", 17) == 0);
    assert_string_equal(out.data + 17, a2.data + 1);
    assert_int_equal(kp_service_card(st, card, 0, sc, &out, &e), KP_OK);
    assert_non_null(strstr(out.data, "\"balance\":59")); /* 50, then -20 and +29 */
    /* A second recovery finds nothing left to do. */
    group_writer_open(&w, st, f->db);
    assert_int_equal(w.recovered, 0);

    /* A record whose replay answers differently (here: its answer hash
     * does not match) stops recovery and changes nothing. */
    kp_buf fake;
    kp_buf_init(&fake, 1 << 20);
    kp_buf_puts(&fake, "{\"not\":\"the answer\"}");
    static kp_purchase_req req;
    const char *body = "{\"card\":\"C\",\"receipt\":\"R-3\",\"lines\":[{\"sku\":\"a\",\"amount\":100}]}";
    assert_int_equal(kp_purchase_req_parse(body, strlen(body), true, &req, &e), KP_OK);
    snprintf(req.card, sizeof req.card, "%s", card);
    kp_buf rec;
    kp_buf_init(&rec, 1 << 20);
    assert_int_equal(kp_durable_purchase(&rec, "s1", &req, 0, p->version, &fake), KP_OK);
    group_writer_begin(&w);
    group_writer_log(&w, &rec);
    group_writer_end_durable(&w);
    group_writer_close(&w);
    kp_store_close(st);
    assert_int_equal(kp_service_open(f->db, false, &st, &e), KP_ERR_INTERNAL);
    assert_non_null(strstr(e.message, "operation-log record 3: replaying it gave another answer"));
    assert_int_equal(kp_store_open(f->db, false, &st, &e), KP_OK);
    assert_int_equal(st->ops->op_find(st, "s1", "R-3", &row), KP_ERR_NOT_FOUND);

    kp_store_close(st);
    kp_buf_release(&rec);
    kp_buf_release(&fake);
    kp_buf_release(&out);
    kp_buf_release(&a1);
    kp_buf_release(&a2);
    kp_scratch_free(sc);
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(records_come_back_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(a_corrupt_record_ends_the_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(one_owner_at_a_time, setup, teardown),
        cmocka_unit_test_setup_teardown(the_chain_follows_the_switch_and_survives_overwriting,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(purchases_only_in_the_log_are_replayed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
