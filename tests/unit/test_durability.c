/*
 * test_durability.c: the operation log tells a torn tail from damage in
 * its middle (oplog.h), and recovery refuses the damage instead of losing
 * acknowledged operations without a word (durable.c): a record that
 * cannot be read with readable records numbered after it stops replay with
 * the numbers that would be lost; a torn tail and damage in records the
 * database already holds do not; recovery that accepts the loss keeps the
 * operations before the damage, lists the lost receipts and empties the log.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <kopilka/oplog.h>

#include <sqlite3.h>

#include "group_writer.h"
#include "service/service.h"
#include "store/store_sqlite.h"

static const uint8_t key[16] = {4, 5, 6};

typedef struct fx {
    char db[64];
    char file[2][80];
} fx;

static void remove_all(const fx *f)
{
    const char *suffix[] = {"", "-wal", "-shm", ".key", ".oplog-0", ".oplog-1"};
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        char p[96];
        snprintf(p, sizeof p, "%s%s", f->db, suffix[i]);
        unlink(p);
    }
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    snprintf(f->db, sizeof f->db, "/tmp/kp-test-durability-%d.db", (int)getpid());
    for (int i = 0; i < 2; i++) snprintf(f->file[i], sizeof f->file[i], "%s.oplog-%d", f->db, i);
    remove_all(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    remove_all(f);
    free(f);
    return 0;
}

typedef struct seen {
    uint64_t seqs[256];
    size_t n;
} seen;

static kp_err collect(void *ctx, uint64_t seq, const uint8_t *data, size_t len, kp_error *e)
{
    (void)data;
    (void)len;
    (void)e;
    seen *s = ctx;
    assert_true(s->n < 256);
    s->seqs[s->n++] = seq;
    return KP_OK;
}

/* Adds records "r<first>".."r<last>" (each 32 bytes of header and 8 of
 * payload on disk) and writes them as one group. */
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
    assert_int_equal(kp_oplog_sync(log, files, &e), KP_OK);
}

static void flip(const char *path, off_t at)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    unsigned char c;
    assert_int_equal(pread(fd, &c, 1, at), 1);
    c ^= 0x10;
    assert_int_equal(pwrite(fd, &c, 1, at), 1);
    close(fd);
}

static void ten_records(const fx *f)
{
    kp_oplog *log = NULL;
    kp_error e;
    assert_int_equal(kp_oplog_open(f->db, key, &log, &e), KP_OK);
    kp_oplog_start(log, 0);
    write_group(log, 1, 3);
    write_group(log, 4, 10);
    kp_oplog_close(log);
}

static void damage_in_the_middle_stops_replay_with_the_lost_numbers(void **state)
{
    fx *f = *state;
    ten_records(f);
    flip(f->file[0], 3 * 40 + 33); /* a payload bit of record 4 */
    kp_oplog *log = NULL;
    kp_error e = {0};
    assert_int_equal(kp_oplog_open(f->db, key, &log, &e), KP_OK);
    seen s = {0};
    uint64_t last = 99;
    assert_int_equal(kp_oplog_replay(log, 0, collect, &s, &last, &e), KP_ERR_IO);
    assert_int_equal(s.n, 3); /* 1..3 were handed out before the damage */
    assert_int_equal(last, 3);
    assert_string_equal(e.message, "the operation log is damaged: record 4 cannot be read, yet "
                                   "6 later records up to 10 can; nothing was changed (see "
                                   "`kopilka recover --help`)");
    const kp_oplog_damage *d = kp_oplog_damage_get(log);
    assert_int_equal(d->first_lost, 4);
    assert_int_equal(d->last_lost, 10);
    assert_int_equal(d->readable, 6);
    assert_int_equal(d->file, 0);
    assert_int_equal(d->offset, 3 * 40);
    char why[2048];
    kp_oplog_damage_explain(log, why, sizeof why);
    assert_non_null(strstr(why, "acknowledged operations 4 to 10"));
    assert_non_null(strstr(why, "kopilka recover /tmp/kp-test-durability-"));
    assert_non_null(strstr(why, "--accept-loss"));
    /* The lost ones can be listed: 5..10 (4 itself cannot be read). */
    seen lost = {0};
    assert_int_equal(kp_oplog_each_lost(log, collect, &lost, &e), KP_OK);
    assert_int_equal(lost.n, 6);
    assert_int_equal(lost.seqs[0], 5);
    assert_int_equal(lost.seqs[5], 10);
    kp_oplog_close(log);
}

static void a_damaged_header_is_damage_too(void **state)
{
    fx *f = *state;
    ten_records(f);
    flip(f->file[0], 6 * 40 + 8); /* the sequence number of record 7 */
    kp_oplog *log = NULL;
    kp_error e = {0};
    assert_int_equal(kp_oplog_open(f->db, key, &log, &e), KP_OK);
    seen s = {0};
    uint64_t last = 0;
    assert_int_equal(kp_oplog_replay(log, 2, collect, &s, &last, &e), KP_ERR_IO);
    assert_int_equal(s.n, 4); /* 3..6 */
    assert_int_equal(kp_oplog_damage_get(log)->first_lost, 7);
    assert_int_equal(kp_oplog_damage_get(log)->readable, 3);
    kp_oplog_close(log);
}

static void a_torn_tail_ends_the_log_quietly(void **state)
{
    fx *f = *state;
    ten_records(f);
    assert_int_equal(truncate(f->file[0], 6 * 40 + 20), 0); /* cut inside record 7 */
    kp_oplog *log = NULL;
    kp_error e = {0};
    assert_int_equal(kp_oplog_open(f->db, key, &log, &e), KP_OK);
    seen s = {0};
    uint64_t last = 0;
    assert_int_equal(kp_oplog_replay(log, 0, collect, &s, &last, &e), KP_OK);
    assert_int_equal(s.n, 6);
    assert_int_equal(last, 6);
    assert_int_equal(kp_oplog_damage_get(log)->first_lost, 0);
    kp_oplog_close(log);
}

static void damage_the_database_already_holds_is_not_read(void **state)
{
    fx *f = *state;
    ten_records(f);
    flip(f->file[0], 1 * 40 + 33); /* record 2; the database's mark is 5 */
    kp_oplog *log = NULL;
    kp_error e = {0};
    assert_int_equal(kp_oplog_open(f->db, key, &log, &e), KP_OK);
    seen s = {0};
    uint64_t last = 0;
    assert_int_equal(kp_oplog_replay(log, 5, collect, &s, &last, &e), KP_OK);
    assert_int_equal(s.n, 5);
    assert_int_equal(s.seqs[0], 6);
    assert_int_equal(last, 10);
    kp_oplog_close(log);
}

static void damage_before_a_file_switch_is_found_in_the_other_file(void **state)
{
    fx *f = *state;
    kp_oplog *log = NULL;
    kp_error e = {0};
    assert_int_equal(kp_oplog_open(f->db, key, &log, &e), KP_OK);
    kp_oplog_set_switch_bytes(log, 100);
    kp_oplog_start(log, 0);
    write_group(log, 1, 4);        /* file 0 */
    kp_oplog_commit_point(log, 0); /* switch */
    write_group(log, 5, 9);        /* file 1 */
    kp_oplog_close(log);
    /* The last record of file 0 is damaged: file 0 alone looks torn, but
     * file 1 goes on from 5. */
    flip(f->file[0], 3 * 40 + 33);
    assert_int_equal(kp_oplog_open(f->db, key, &log, &e), KP_OK);
    seen s = {0};
    uint64_t last = 0;
    assert_int_equal(kp_oplog_replay(log, 0, collect, &s, &last, &e), KP_ERR_IO);
    assert_int_equal(last, 3);
    assert_int_equal(kp_oplog_damage_get(log)->first_lost, 4);
    assert_int_equal(kp_oplog_damage_get(log)->last_lost, 9);
    assert_int_equal(kp_oplog_damage_get(log)->readable, 5);
    kp_oplog_close(log);
}

/* ---- through the service: refusing, then accepting the loss */

static const char program_json[] =
    "{\"name\":\"t\",\"rules\":[{\"id\":\"earn\",\"kind\":\"earn_percent\",\"percent\":5}]}";

static const kp_time test_now = 1767225600LL * 1000000000LL;

static void emit_card(void *ctx, const char *number) { snprintf(ctx, KP_STR_MAX, "%s", number); }

typedef struct lost_list {
    char lines[16][1024];
    size_t n;
} lost_list;

static void report_lost(void *ctx, uint64_t seq, const char *kind, const char *store,
                        const char *card, const char *receipt, const char *outcome)
{
    lost_list *l = ctx;
    assert_true(l->n < 16);
    snprintf(l->lines[l->n++], sizeof l->lines[0], "%llu %s %s %s %s: %.40s",
             (unsigned long long)seq, kind, store, card, receipt, outcome);
}

/* Five purchases of 100.00 on one card (5 %: 500 points each) only in the
 * log, as a server that died before committing leaves them; then a bit of
 * the third record flipped. Returns the card. */
static void five_purchases_the_third_damaged(fx *f, char card[KP_STR_MAX]);

static void five_purchases_the_third_damaged(fx *f, char card[KP_STR_MAX])
{
    kp_store *st = NULL;
    kp_error e = {0};
    int64_t version = 0;
    assert_int_equal(kp_service_open(f->db, true, &st, &e), KP_OK);
    assert_int_equal(kp_service_program_load(st, program_json, strlen(program_json), &version, &e),
                     KP_OK);
    assert_int_equal(kp_service_cards_issue(st, 1, 0, emit_card, card, &e), KP_OK);
    kp_program *p = malloc(sizeof *p);
    assert_int_equal(kp_service_program_get(st, 0, p, &e), KP_OK);
    kp_scratch *sc = kp_scratch_new();
    group_writer w;
    group_writer_open(&w, st, f->db);

    /* Five purchases only in the log (the server died before committing
     * the database); each record's offset is noted. */
    off_t at[5];
    kp_buf answer, rec;
    kp_buf_init(&answer, 1 << 20);
    kp_buf_init(&rec, 1 << 20);
    off_t off = 0;
    for (int i = 0; i < 5; i++) {
        char body[512];
        snprintf(body, sizeof body,
                 "{\"card\":\"%s\",\"receipt\":\"R-%d\",\"lines\":[{\"sku\":\"a\","
                 "\"amount\":10000}]}",
                 card, i + 1);
        static kp_purchase_req req;
        assert_int_equal(kp_purchase_req_parse(body, strlen(body), true, &req, &e), KP_OK);
        bool replayed = false;
        group_writer_begin(&w);
        assert_int_equal(
            kp_service_purchase(st, p, "s1", &req, test_now, sc, &answer, &replayed, &e), KP_OK);
        assert_int_equal(kp_durable_purchase(&rec, "s1", &req, test_now, p->version, &answer),
                         KP_OK);
        group_writer_log(&w, &rec);
        at[i] = off;
        off += (off_t)(32 + ((rec.len + 7) & ~(size_t)7));
        group_writer_end_durable(&w); /* one record, one write */
    }
    group_writer_close(&w); /* the server dies before publishing */
    kp_store_close(st);
    flip(f->file[0], at[2] + 40); /* inside the record of R-3 */
    kp_buf_release(&answer);
    kp_buf_release(&rec);
    kp_scratch_free(sc);
    free(p);
}

/* meta.oplog_seq, read by a connection of its own. */
static uint64_t mark_of(const char *db)
{
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(h, "SELECT value FROM meta WHERE key = 'oplog_seq'", -1,
                                        &st, NULL),
                     SQLITE_OK);
    uint64_t mark = sqlite3_step(st) == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    sqlite3_close(h);
    return mark;
}

/* `kopilka recover --accept-loss [--salvage]` as cmd_recover.c runs it. */
static kp_err recover_accepting_loss(const char *db, bool salvage, lost_list *lost,
                                     store_sqlite_recovery *r, size_t *salvaged, kp_error *e)
{
    kp_durable_lost_ctx c = {.report = report_lost, .report_ctx = lost};
    if (salvage) c.salvage = kp_durable_replay_new();
    *r = (store_sqlite_recovery){.redo = kp_durable_redo, .redo_ctx = kp_durable_replay_new(),
                                 .lost = kp_durable_lost, .lost_ctx = &c};
    kp_err err = store_sqlite_recover(db, r, e);
    kp_durable_replay_free(r->redo_ctx);
    kp_durable_replay_free(c.salvage);
    *salvaged = c.salvaged;
    return err;
}

static void recovery_refuses_damage_then_accepts_the_loss_on_request(void **state)
{
    fx *f = *state;
    char card[KP_STR_MAX] = "";
    five_purchases_the_third_damaged(f, card);
    kp_store *st = NULL;
    kp_error e = {0};

    /* Every opening refuses, and changes nothing. */
    assert_int_equal(kp_service_open(f->db, false, &st, &e), KP_ERR_IO);
    assert_string_equal(e.field, "oplog");
    assert_non_null(strstr(e.message, "record 3 cannot be read, yet 2 later records up to 5"));
    assert_int_equal(kp_store_open(f->db, false, &st, &e), KP_OK);
    kp_op_row row;
    assert_int_equal(st->ops->op_find(st, "s1", "R-1", &row), KP_ERR_NOT_FOUND);
    assert_int_equal(mark_of(f->db), 0);

    /* Accepting the loss keeps, lists. */
    lost_list lost = {0};
    store_sqlite_recovery r;
    size_t salvaged = 99;
    assert_int_equal(recover_accepting_loss(f->db, false, &lost, &r, &salvaged, &e), KP_OK);
    assert_int_equal(r.redone, 2);
    assert_int_equal(salvaged, 0);
    assert_int_equal(r.damage.first_lost, 3);
    assert_int_equal(r.damage.last_lost, 5);
    assert_non_null(strstr(r.explanation, "acknowledged operations 3 to 5"));
    assert_int_equal(lost.n, 2);
    char want[1024];
    snprintf(want, sizeof want, "4 purchase s1 %s R-4: lost", card);
    assert_string_equal(lost.lines[0], want);
    snprintf(want, sizeof want, "5 purchase s1 %s R-5: lost", card);
    assert_string_equal(lost.lines[1], want);
    assert_int_equal(st->ops->op_find(st, "s1", "R-2", &row), KP_OK);
    kp_op_row_release(&row);
    assert_int_equal(st->ops->op_find(st, "s1", "R-4", &row), KP_ERR_NOT_FOUND);
    /* Every record up to the last readable one is accounted for: kept, or
     * listed and dropped with the emptied log. */
    assert_int_equal(mark_of(f->db), 5);
    kp_store_close(st);
    /* The log is empty: the dropped records are never read again. */
    struct stat sb;
    assert_int_equal(stat(f->file[0], &sb), 0);
    assert_int_equal(sb.st_size, 0);
    assert_int_equal(kp_service_open(f->db, false, &st, &e), KP_OK);
    kp_store_close(st);

}


static void salvage_applies_the_readable_records_after_the_damage(void **state)
{
    fx *f = *state;
    char card[KP_STR_MAX] = "";
    five_purchases_the_third_damaged(f, card);
    kp_store *st = NULL;
    kp_error e = {0};
    lost_list lost = {0};
    store_sqlite_recovery r;
    size_t salvaged = 0;
    assert_int_equal(recover_accepting_loss(f->db, true, &lost, &r, &salvaged, &e), KP_OK);
    assert_int_equal(r.redone, 2);
    assert_int_equal(salvaged, 2);
    assert_int_equal(lost.n, 2);
    assert_int_equal(kp_store_open(f->db, false, &st, &e), KP_OK);
    /* ran at their own time; their balances lack R-3's 500
     * points, so the answers differ from what the till printed. */
    char want[1024];
    snprintf(want, sizeof want, "4 purchase s1 %s R-4: salvaged: another answer than the till w",
             card);
    assert_string_equal(lost.lines[0], want);
    kp_op_row row;
    assert_int_equal(st->ops->op_find(st, "s1", "R-5", &row), KP_OK);
    kp_op_row_release(&row);
    assert_int_equal(st->ops->op_find(st, "s1", "R-3", &row), KP_ERR_NOT_FOUND);
    assert_int_equal(mark_of(f->db), 5);
    kp_store_close(st);
    assert_int_equal(kp_service_open(f->db, false, &st, &e), KP_OK);
    kp_store_close(st);
}

/* ---- the database file */

typedef struct lines {
    char first[512];
    int64_t n;
} lines;

static void note(void *ctx, const char *line)
{
    lines *l = ctx;
    if (l->n++ == 0) snprintf(l->first, sizeof l->first, "%s", line);
}

static void the_database_is_created_for_its_owner_only(void **state)
{
    fx *f = *state;
    kp_store *st = NULL;
    kp_error e = {0};
    mode_t old = umask(022);
    assert_int_equal(kp_store_open(f->db, true, &st, &e), KP_OK);
    umask(old);
    struct stat sb;
    assert_int_equal(stat(f->db, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    kp_store_close(st);
}

static void the_quick_check_finds_damaged_pages(void **state)
{
    fx *f = *state;
    kp_store *st = NULL;
    kp_error e = {0};
    int64_t version = 0;
    char card[KP_STR_MAX];
    assert_int_equal(kp_service_open(f->db, true, &st, &e), KP_OK);
    assert_int_equal(kp_service_program_load(st, program_json, strlen(program_json), &version, &e),
                     KP_OK);
    assert_int_equal(kp_service_cards_issue(st, 3000, 0, emit_card, card, &e), KP_OK);
    lines l = {0};
    assert_int_equal(st->ops->integrity(st, false, note, &l, &l.n), KP_OK);
    assert_int_equal(l.n, 0);
    kp_store_close(st);
    struct stat sb;
    assert_int_equal(stat(f->db, &sb), 0);
    int fd = open(f->db, O_RDWR);
    assert_true(fd >= 0);
    char junk[2000];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (char)(i * 7919 % 251);
    /* Garbage over the middle of eight pages from three quarters into the
     * file, among the cards' pages (one page might be free, and a free
     * page is not checked; nor is the unused middle of an empty table's
     * page, and the schema's empty tables fill the file's middle). */
    off_t middle = (off_t)(sb.st_size / 4096 * 3 / 4) * 4096;
    for (off_t page = middle; page < middle + 8 * 4096; page += 4096)
        assert_int_equal(pwrite(fd, junk, sizeof junk, page + 100), (ssize_t)sizeof junk);
    close(fd);

    assert_int_equal(kp_store_open(f->db, false, &st, &e), KP_OK);
    for (int full = 0; full < 2; full++) {
        memset(&l, 0, sizeof l);
        int64_t problems = 0;
        assert_int_equal(st->ops->integrity(st, full, note, &l, &problems), KP_OK);
        assert_true(problems > 0);
        assert_int_equal(problems, l.n);
        assert_true(strncmp(l.first, "the database file is damaged: ", 30) == 0);
    }
    /* verify reports the damage as problems instead of checking a ledger
     * it cannot read. */
    memset(&l, 0, sizeof l);
    int64_t problems = 0;
    assert_int_equal(st->ops->verify(st, note, &l, &problems), KP_OK);
    assert_true(problems > 0);
    assert_true(strncmp(l.first, "the database file is damaged: ", 30) == 0);
    kp_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(damage_in_the_middle_stops_replay_with_the_lost_numbers,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(a_damaged_header_is_damage_too, setup, teardown),
        cmocka_unit_test_setup_teardown(a_torn_tail_ends_the_log_quietly, setup, teardown),
        cmocka_unit_test_setup_teardown(damage_the_database_already_holds_is_not_read, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(damage_before_a_file_switch_is_found_in_the_other_file,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(recovery_refuses_damage_then_accepts_the_loss_on_request,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(salvage_applies_the_readable_records_after_the_damage,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(the_database_is_created_for_its_owner_only, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(the_quick_check_finds_damaged_pages, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
