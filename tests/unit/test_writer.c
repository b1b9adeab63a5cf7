/*
 * test_writer.c: the server's writer over the storage seam (writer.c,
 * kp_group_ops in store.h), on SQLite or PostgreSQL (fixture.h):
 *  - a job that meets a concurrent writer (KP_ERR_BUSY) is rolled back to
 *    its savepoint and run again, and what the failed runs wrote is gone;
 *  - a job busy every time is answered with a sentence after its retries,
 *    and nothing of it stays;
 *  - a reader (through the barrier) sees every purchase answered before it,
 *    though the writer's groups were made durable in the log unpublished;
 *  - a writer stopped and started again finds every purchase in the
 *    database and nothing left to recover.
 */
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

#include "server/server.h"
#include "service/service.h"

static const char program_json[] =
    "{\"name\":\"t\",\"rules\":[{\"id\":\"earn\",\"kind\":\"earn_percent\",\"percent\":5}]}";

typedef struct fx {
    char path[FIXTURE_LOCATION_MAX]; /* the store's location (fixture.h) */
    char card[KP_STR_MAX];
    kp_programs *programs;
    kp_writer *w;
} fx;

static void keep_number(void *ctx, const char *number) { snprintf(ctx, KP_STR_MAX, "%s", number); }

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    fixture_location(f->path, "writer");
    kp_store *st = NULL;
    kp_error e = {0};
    int64_t version = 0;
    assert_int_equal(kp_service_open(f->path, true, &st, &e), KP_OK);
    assert_int_equal(kp_service_program_load(st, program_json, strlen(program_json), &version, &e),
                     KP_OK);
    assert_int_equal(kp_service_cards_issue(st, 1, 0, keep_number, f->card, &e), KP_OK);
    kp_store_close(st);
    f->programs = kp_programs_new(NULL);
    assert_int_equal(kp_writer_start(f->path, f->programs, &f->w, &e), KP_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    kp_writer_stop(f->w);
    kp_programs_free(f->programs);
    fixture_remove(f->path);
    free(f);
    return 0;
}

/* A KP_JOB_CALL that creates card "<prefix>-<run>" on each run and says
 * KP_ERR_BUSY on the first `busy_runs` runs. */
typedef struct busy_call {
    const char *prefix;
    int busy_runs;
    int runs;
} busy_call;

static kp_err busy_then_ok(void *ctx, kp_store *st, const kp_program *program, kp_scratch *sc,
                           kp_buf *out, bool *replayed, kp_error *e)
{
    (void)program, (void)sc, (void)replayed;
    busy_call *c = ctx;
    c->runs++;
    char number[32];
    snprintf(number, sizeof number, "%s-%d", c->prefix, c->runs);
    int64_t account = 0;
    kp_err err = st->ops->card_create(st, number, KP_CARD_ISSUED, 0, &account);
    if (err) return kp_error_set(e, err, "", "%s", st->last_error);
    kp_buf_puts(out, "written by this run");
    if (c->runs <= c->busy_runs)
        return kp_error_set(e, KP_ERR_BUSY, "", "a concurrent writer holds the row");
    return KP_OK;
}

static kp_job call_job(busy_call *c, kp_buf *out)
{
    kp_job job;
    memset(&job, 0, sizeof job);
    job.type = KP_JOB_CALL;
    job.call = busy_then_ok;
    job.ctx = c;
    job.out = out;
    return job;
}

/* Whether a connection that waits for the writer's published work sees card
 * `number`. */
static bool seen(fx *f, const char *number)
{
    kp_reader_pool *pool = NULL;
    kp_error e = {0};
    assert_int_equal(kp_reader_pool_new(f->path, 1, &pool, &e), KP_OK);
    kp_reader_pool_follow(pool, f->w);
    kp_reader *r = kp_reader_acquire(pool);
    kp_card card;
    kp_err err = r->store->ops->card_find(r->store, number, &card);
    assert_true(err == KP_OK || err == KP_ERR_NOT_FOUND);
    kp_reader_release(pool, r);
    kp_reader_pool_free(pool);
    return err == KP_OK;
}

static void a_busy_job_is_rolled_back_and_run_again(void **state)
{
    fx *f = *state;
    busy_call c = {"RETRY", 2, 0};
    kp_buf out;
    kp_buf_init(&out, 1 << 16);
    kp_job job = call_job(&c, &out);
    kp_writer_submit(f->w, &job);
    assert_int_equal(job.err, KP_OK);
    assert_int_equal(c.runs, 3);
    assert_string_equal(out.data, "written by this run"); /* once: the output starts afresh */
    assert_true(seen(f, "RETRY-3"));
    assert_false(seen(f, "RETRY-1"));
    assert_false(seen(f, "RETRY-2"));
    kp_buf_release(&out);
}

static void a_job_busy_every_time_is_refused_after_its_retries(void **state)
{
    fx *f = *state;
    busy_call c = {"ALWAYS", 1000, 0};
    kp_buf out;
    kp_buf_init(&out, 1 << 16);
    kp_job job = call_job(&c, &out);
    kp_writer_submit(f->w, &job);
    assert_int_equal(job.err, KP_ERR_BUSY);
    assert_int_equal(c.runs, 4);
    assert_non_null(strstr(job.error.message, "refused this write 4 times"));
    assert_non_null(strstr(job.error.message, "nothing of it was written"));
    assert_int_equal(out.len, 0);
    for (int run = 1; run <= 4; run++) {
        char number[32];
        snprintf(number, sizeof number, "ALWAYS-%d", run);
        assert_false(seen(f, number));
    }
    kp_buf_release(&out);
}

static kp_purchase_req *purchase_req(const char *card, const char *receipt)
{
    kp_purchase_req *req = calloc(1, sizeof *req);
    char body[2 * KP_STR_MAX + 128];
    snprintf(body, sizeof body,
             "{\"card\":\"%s\",\"receipt\":\"%s\",\"lines\":[{\"sku\":\"a\",\"amount\":10000}]}",
             card, receipt);
    kp_error e = {0};
    assert_int_equal(kp_purchase_req_parse(body, strlen(body), true, req, &e), KP_OK);
    return req;
}

static void purchase(fx *f, const char *receipt)
{
    kp_purchase_req *req = purchase_req(f->card, receipt);
    kp_buf out;
    kp_buf_init(&out, 1 << 20);
    kp_job job;
    memset(&job, 0, sizeof job);
    job.type = KP_JOB_PURCHASE;
    job.store = "s1";
    job.purchase = req;
    job.now = 1767225600;
    job.out = &out;
    kp_writer_submit(f->w, &job);
    assert_int_equal(job.err, KP_OK);
    assert_false(job.replayed);
    kp_buf_release(&out);
    free(req);
}

static int64_t count_receipts(kp_store *st, int n)
{
    int64_t found = 0;
    for (int i = 0; i < n; i++) {
        char receipt[32];
        snprintf(receipt, sizeof receipt, "R-%d", i);
        kp_op_row row;
        if (st->ops->op_find(st, "s1", receipt, &row) == KP_OK) {
            found++;
            kp_op_row_release(&row);
        }
    }
    return found;
}

static void readers_see_every_answered_purchase_and_a_restart_keeps_them(void **state)
{
    fx *f = *state;
    enum { N = 20 };
    for (int i = 0; i < N; i++) {
        char receipt[32];
        snprintf(receipt, sizeof receipt, "R-%d", i);
        purchase(f, receipt);
    }
    kp_reader_pool *pool = NULL;
    kp_error e = {0};
    assert_int_equal(kp_reader_pool_new(f->path, 1, &pool, &e), KP_OK);
    kp_reader_pool_follow(pool, f->w);
    kp_reader *r = kp_reader_acquire(pool);
    assert_int_equal(count_receipts(r->store, N), N);
    kp_reader_release(pool, r);
    kp_reader_pool_free(pool);

    kp_writer_stop(f->w);
    f->w = NULL;
    kp_store *st = NULL;
    assert_int_equal(kp_store_open(f->path, false, &st, &e), KP_OK);
    assert_int_equal(count_receipts(st, N), N);
    /* Nothing is left to redo: the stop published everything. */
    kp_durable_replay *replay = kp_durable_replay_new();
    size_t recovered = 99;
    assert_int_equal(st->ops->group->open(st, f->path, kp_durable_redo, replay, &recovered, &e),
                     KP_OK);
    assert_int_equal(recovered, 0);
    st->ops->group->close(st);
    kp_durable_replay_free(replay);
    kp_store_close(st);
    assert_int_equal(kp_writer_start(f->path, f->programs, &f->w, &e), KP_OK);
}

/* A lazy job (the outbox's bookkeeping) makes its group commit nothing of
 * its own: on SQLite a plain call job commits the database transaction, a
 * lazy one rides the next publish, and readers see it once published. */
static void a_lazy_job_forces_no_commit_of_its_own(void **state)
{
    fx *f = *state;
    kp_buf out;
    kp_buf_init(&out, 1 << 16);
    kp_writer_stats before, after;
    busy_call plain = {"PLAIN", 0, 0};
    kp_job job = call_job(&plain, &out);
    kp_writer_stats_get(f->w, &before);
    kp_writer_submit(f->w, &job);
    assert_int_equal(job.err, KP_OK);
    kp_writer_stats_get(f->w, &after);
    bool commits_count = kp_store_is_file(f->path); /* PostgreSQL: every group commits */
    if (commits_count) assert_true(after.database_commits > before.database_commits);

    busy_call lazy = {"LAZY", 0, 0};
    kp_buf_reset(&out);
    job = call_job(&lazy, &out);
    job.lazy = true;
    kp_writer_stats_get(f->w, &before);
    kp_writer_submit(f->w, &job);
    assert_int_equal(job.err, KP_OK);
    kp_writer_stats_get(f->w, &after);
    if (commits_count) assert_int_equal(after.database_commits, before.database_commits);
    assert_true(seen(f, "LAZY-1")); /* the barrier publishes it */
    kp_buf_release(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_busy_job_is_rolled_back_and_run_again, setup, teardown),
        cmocka_unit_test_setup_teardown(a_job_busy_every_time_is_refused_after_its_retries, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            readers_see_every_answered_purchase_and_a_restart_keeps_them, setup, teardown),
        cmocka_unit_test_setup_teardown(a_lazy_job_forces_no_commit_of_its_own, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
