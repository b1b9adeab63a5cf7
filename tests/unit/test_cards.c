/*
 * test_cards.c: long jobs in chunks (src/service/chunks.h) over a real
 * store (SQLite, or PostgreSQL with KOPILKA_TEST_STORE=pg, see fixture.h):
 * the write lock is free each time the job reports progress
 * (another connection writes at once), a job reports exactly the rows it
 * made durable, a job that fails keeps its committed chunks and loses
 * only the open one, and a job alone makes its chunks longer until another
 * connection commits.
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
#include <time.h>
#include <unistd.h>

#include "service/chunks.h"
#include "service/service.h"

#define NOW 1780000000 /* 2026-05-28 */

typedef struct fx {
    char path[FIXTURE_LOCATION_MAX]; /* the store's location (fixture.h) */
    kp_store *st;    /* the job's connection */
    kp_store *other; /* another writer, as the server's would be */
    int64_t reports, last_done, other_writes;
    double other_wait_ms_max;
    bool armed; /* other_writes_once writes at the next report */
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    fixture_location(f->path, "cards");
    kp_error e = {0};
    assert_int_equal(kp_store_open(f->path, true, &f->st, &e), KP_OK);
    assert_int_equal(kp_store_open(f->path, false, &f->other, &e), KP_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    kp_store_close(f->st);
    kp_store_close(f->other);
    fixture_remove(f->path);
    free(f);
    return 0;
}

static int64_t count_rows(const fx *f, const char *table)
{
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    return fixture_query_int64(f->path, sql);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Progress callback: the other connection writes a terminal; with the lock
 * held by the job it would wait (up to the store's 10 s) instead. */
static void other_writes(void *ctx, int64_t done, int64_t total)
{
    fx *f = ctx;
    (void)total;
    assert_true(done >= f->last_done);
    f->last_done = done;
    f->reports++;
    double t0 = now_ms();
    assert_int_equal(f->other->ops->begin(f->other), KP_OK);
    double waited = now_ms() - t0;
    if (waited > f->other_wait_ms_max) f->other_wait_ms_max = waited;
    char store[32], key[65];
    snprintf(store, sizeof store, "other-%lld", (long long)f->reports);
    kp_error e = {0};
    assert_int_equal(kp_service_terminal_add(f->other, store, key, &e), KP_OK);
    assert_int_equal(f->other->ops->commit(f->other), KP_OK);
    f->other_writes++;
}

static void no_emit(void *ctx, const char *number)
{
    (void)ctx;
    (void)number;
}

static void test_chunked_issue_leaves_the_lock_free_at_each_report(void **state)
{
    fx *f = *state;
    kp_error e = {0};
    kp_chunks ch;
    kp_chunks_init(&ch, f->st, 30000, other_writes, f);
    assert_int_equal(kp_chunks_begin(&ch, &e), KP_OK);
    kp_err err = kp_service_cards_issue_chunks(f->st, 30000, NOW, no_emit, NULL, &ch, &e);
    assert_int_equal(kp_chunks_end(&ch, err, &e), KP_OK);
    assert_int_equal(ch.done, 30000);
    assert_int_equal(f->last_done, 30000);
    assert_true(ch.commits >= 2); /* at most KP_CHUNK_ROWS_MAX rows a chunk */
    assert_true(f->reports >= 2);
    assert_int_equal(f->other_writes, f->reports);
    assert_true(f->other_wait_ms_max < 1000.0); /* free at once, not after the job */
    assert_int_equal(count_rows(f, "cards"), 30000);
    assert_int_equal(count_rows(f, "terminals"), f->other_writes);
}

static void count_report(void *ctx, int64_t done, int64_t total)
{
    fx *f = ctx;
    (void)total;
    f->reports++;
    f->last_done = done;
}

static void test_a_failed_job_keeps_its_committed_chunks_and_loses_the_open_one(void **state)
{
    fx *f = *state;
    kp_error e = {0};
    kp_chunks ch;
    kp_chunks_init(&ch, f->st, 0, count_report, f);
    assert_int_equal(kp_chunks_begin(&ch, &e), KP_OK);
    kp_err err = KP_OK;
    const int64_t rows = KP_CHUNK_ROWS_MAX + 7;
    for (int64_t i = 0; i < rows && err == KP_OK; i++) {
        char store[32], key[65];
        snprintf(store, sizeof store, "s%lld", (long long)i);
        err = kp_service_terminal_add(f->st, store, key, &e);
        if (err == KP_OK) err = kp_chunks_step(&ch, 1, &e);
    }
    assert_int_equal(err, KP_OK);
    /* One more row in the open chunk, which the failure must lose. */
    char key[65];
    assert_int_equal(kp_service_terminal_add(f->st, "lost", key, &e), KP_OK);
    int64_t committed = ch.done + ch.unsynced;
    assert_true(committed > 0 && committed <= rows); /* a chunk holds at most ROWS_MAX */
    assert_true(ch.commits >= 2);
    /* The job fails: the open chunk is rolled back, the rest is synced and
     * reported. */
    kp_error fe = {0};
    kp_error_set(&fe, KP_ERR_INVALID, "file", "a bad row");
    assert_int_equal(kp_chunks_end(&ch, KP_ERR_INVALID, &fe), KP_ERR_INVALID);
    assert_string_equal(fe.message, "a bad row");
    assert_int_equal(ch.done, committed);
    assert_int_equal(f->last_done, committed);
    assert_int_equal(count_rows(f, "terminals"), committed);
}

static kp_err no_redo(void *ctx, kp_store *s, const void *record, size_t len, kp_error *e)
{
    (void)ctx, (void)s, (void)record, (void)len;
    return kp_error_set(e, KP_ERR_INTERNAL, "oplog", "nothing to redo in this test");
}

/* Progress callback: once armed, the other connection commits one write
 * (the job's lock is free at every report). */
static void other_writes_once(void *ctx, int64_t done, int64_t total)
{
    fx *f = ctx;
    (void)total;
    f->last_done = done;
    if (!f->armed || f->other_writes > 0) return;
    kp_error e = {0};
    char key[65];
    /* PostgreSQL tells a server by its serving lock: the other connection
     * becomes one (its group writer, with a redo it never needs). */
    if (fixture_is_pg())
        assert_int_equal(f->other->ops->group->open(f->other, f->path, no_redo, NULL, NULL, &e),
                         KP_OK);
    assert_int_equal(f->other->ops->begin(f->other), KP_OK);
    assert_int_equal(kp_service_terminal_add(f->other, "other", key, &e), KP_OK);
    assert_int_equal(f->other->ops->commit(f->other), KP_OK);
    f->other_writes++;
}

/* Writes one row of about 0.2 ms and steps the job. */
static void job_row(fx *f, kp_chunks *ch, int64_t i)
{
    kp_error e = {0};
    char store[32], key[65];
    snprintf(store, sizeof store, "g%lld", (long long)i);
    assert_int_equal(kp_service_terminal_add(f->st, store, key, &e), KP_OK);
    struct timespec work = {0, 200 * 1000};
    nanosleep(&work, NULL);
    assert_int_equal(kp_chunks_step(ch, 1, &e), KP_OK);
    assert_true(ch->budget_ns >= KP_CHUNK_BUDGET_NS && ch->budget_ns <= KP_CHUNK_BUDGET_ALONE_NS);
}

static void test_a_job_alone_grows_its_chunks_and_shrinks_them_when_another_commits(void **state)
{
    fx *f = *state;
    kp_error e = {0};
    kp_chunks ch;
    kp_chunks_init(&ch, f->st, 0, other_writes_once, f);
    assert_int_equal(kp_chunks_begin(&ch, &e), KP_OK);
    assert_int_equal(ch.budget_ns, KP_CHUNK_BUDGET_NS);
    const kp_group_ops *g = f->st->ops->group;
    uint64_t grown = 0;
    double t0 = now_ms(), grown_at = 0;
    int64_t i = 0;
    while (now_ms() - t0 < 6000.0 && grown <= KP_CHUNK_BUDGET_NS * 4) {
        job_row(f, &ch, i++);
        if (ch.budget_ns > grown) grown = ch.budget_ns;
        if (grown > KP_CHUNK_BUDGET_NS && grown_at == 0) grown_at = now_ms() - t0;
    }
    if (g == NULL || g->alone == NULL) {
        /* A backend that cannot tell keeps the short chunks. */
        assert_int_equal(grown, KP_CHUNK_BUDGET_NS);
        assert_int_equal(kp_chunks_end(&ch, KP_OK, &e), KP_OK);
        return;
    }
    assert_true(grown > KP_CHUNK_BUDGET_NS * 4);
    /* not before a second alone (less the moment between the job's begin
     * and t0) */
    assert_true(grown_at >= KP_CHUNK_ALONE_AFTER_NS / 1e6 - 50.0);
    /* Another connection commits at the next report: the chunk after it is
     * short again. */
    f->armed = true;
    while (f->other_writes == 0 && now_ms() - t0 < 12000.0) job_row(f, &ch, i++);
    assert_int_equal(f->other_writes, 1);
    assert_int_equal(ch.budget_ns, KP_CHUNK_BUDGET_NS);
    assert_int_equal(kp_chunks_end(&ch, KP_OK, &e), KP_OK);
    if (fixture_is_pg()) f->other->ops->group->close(f->other);
    assert_int_equal(count_rows(f, "terminals"), i + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_chunked_issue_leaves_the_lock_free_at_each_report,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_failed_job_keeps_its_committed_chunks_and_loses_the_open_one, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_job_alone_grows_its_chunks_and_shrinks_them_when_another_commits, setup,
            teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
