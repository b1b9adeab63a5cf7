/*
 * writer.c: group commit. One thread owns the database's write connection.
 * Request threads queue jobs and wait; the writer takes every waiting job (up
 * to KP_BATCH_MAX), runs each in its own savepoint inside one transaction,
 * commits once (one fsync for the whole batch) and only then wakes the
 * requesters. A job that fails rolls back alone; a commit that fails fails
 * the whole batch, and no requester is told "done" for an unwritten purchase.
 *
 * Also here: the program cache and the reader pool.
 */
#define _GNU_SOURCE /* pthread_setname_np */
#include "server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---------------------------------------------------------------- programs */

struct kp_programs {
    pthread_mutex_t lock;
    kp_program *current;
    size_t n_old;
    kp_program *old[64];
};

kp_programs *kp_programs_new(void)
{
    kp_programs *p = calloc(1, sizeof *p);
    if (p) pthread_mutex_init(&p->lock, NULL);
    return p;
}

void kp_programs_free(kp_programs *p)
{
    if (p == NULL) return;
    for (size_t i = 0; i < p->n_old; i++) free(p->old[i]);
    free(p->current);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

const kp_program *kp_programs_current(kp_programs *p)
{
    pthread_mutex_lock(&p->lock);
    const kp_program *c = p->current;
    pthread_mutex_unlock(&p->lock);
    return c;
}

kp_err kp_programs_refresh(kp_programs *p, kp_store *st, kp_error *e)
{
    char *json = NULL;
    int64_t version = 0;
    kp_err err = st->ops->program_get(st, 0, &json, &version);
    if (err == KP_ERR_NOT_FOUND) return KP_OK;
    if (err) return kp_error_set(e, err, "", "cannot read the program: %s", st->last_error);
    const kp_program *cur = kp_programs_current(p);
    if (cur && cur->version == version) {
        free(json);
        return KP_OK;
    }
    kp_program *next = malloc(sizeof *next);
    if (next == NULL) {
        free(json);
        return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    }
    err = kp_program_parse(json, strlen(json), next, e);
    free(json);
    if (err) {
        free(next);
        return err;
    }
    next->version = version;
    pthread_mutex_lock(&p->lock);
    if (p->current) {
        if (p->n_old == sizeof p->old / sizeof p->old[0]) {
            /* Bounded: the oldest superseded version is freed; requests
             * finish within seconds, long before 64 further loads. */
            free(p->old[0]);
            memmove(p->old, p->old + 1, (p->n_old - 1) * sizeof p->old[0]);
            p->n_old--;
        }
        p->old[p->n_old++] = p->current;
    }
    p->current = next;
    pthread_mutex_unlock(&p->lock);
    return KP_OK;
}

/* ------------------------------------------------------------------ writer */

struct kp_writer {
    kp_store *store;
    kp_scratch *scratch;
    kp_programs *programs;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;   /* jobs arrived, or stop */
    pthread_cond_t wake_checkpointer;
    kp_job *head, *tail;
    size_t queued;
    bool stop;
    pthread_t checkpointer;
    kp_store *checkpoint_store;
    /* Committed batches waiting for the journal to reach the disk. The
     * syncer thread fsyncs and answers them while the writer goes on with
     * the next batch: commit and fsync overlap (pipelined group commit). */
    pthread_t syncer;
    pthread_cond_t wake_syncer;
    kp_job *sync_head, *sync_tail;
    bool syncer_running;
    uint64_t syncs;
    kp_time program_checked_ns;
    /* statistics, printed when the writer stops (only the writer writes them) */
    uint64_t batches, jobs, exec_ns, commit_ns;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void job_fail(kp_job *job, kp_err err, const char *msg)
{
    job->err = err;
    kp_error_set(&job->error, err, "", "%s", msg);
    kp_buf_reset(job->out);
}

static void run_job(kp_writer *w, kp_job *job)
{
    kp_store *st = w->store;
    const kp_program *program = kp_programs_current(w->programs);
    if (job->type == KP_JOB_PURCHASE && program == NULL) {
        job_fail(job, KP_ERR_NOT_FOUND, "no program is loaded");
        return;
    }
    kp_err err = st->ops->savepoint(st);
    if (err) {
        job_fail(job, err, "storage failed");
        return;
    }
    if (job->type == KP_JOB_PURCHASE)
        err = kp_service_purchase(st, program, job->store, job->purchase, job->now, w->scratch,
                                  job->out, &job->replayed, &job->error);
    else if (job->type == KP_JOB_CALL)
        err = job->call(job->ctx, st, program, w->scratch, job->out, &job->replayed, &job->error);
    else
        err = kp_service_return(st, job->store, job->ret, job->now, w->scratch, job->out,
                                &job->replayed, &job->error);
    job->err = err;
    kp_err end = err ? st->ops->rollback_to(st) : st->ops->release(st);
    if (end) job_fail(job, end, "storage failed");
}

/* Marks a list of jobs done and wakes each requester. Called with w->lock. */
static void complete_locked(kp_job *list)
{
    for (kp_job *j = list, *next; j; j = next) {
        next = j->next;
        j->done = true;
        pthread_cond_signal(j->wake);
    }
}

static void *syncer_main(void *arg)
{
    kp_writer *w = arg;
    pthread_setname_np(pthread_self(), "kp-syncer");
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (w->sync_head == NULL && !w->stop) pthread_cond_wait(&w->wake_syncer, &w->lock);
        if (w->sync_head == NULL && w->stop) break;
        kp_job *list = w->sync_head;
        w->sync_head = w->sync_tail = NULL;
        pthread_mutex_unlock(&w->lock);
        kp_err err = w->store->ops->sync_journal(w->store);
        w->syncs++;
        if (err) {
            fprintf(stderr, "kopilka: %s; answering 503 (retries replay safely)\n",
                    w->store->last_error);
            for (kp_job *j = list; j; j = j->next)
                if (j->err == KP_OK)
                    job_fail(j, KP_ERR_IO, "storage could not confirm the write; retry with "
                                           "the same receipt");
        }
        pthread_mutex_lock(&w->lock);
        complete_locked(list);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

static void *writer_main(void *arg)
{
    kp_writer *w = arg;
    pthread_setname_np(pthread_self(), "kp-writer");
    for (;;) {
        pthread_mutex_lock(&w->lock);
        while (w->head == NULL && !w->stop) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&w->wake, &w->lock, &ts);
            if (w->head == NULL && !w->stop) break; /* idle: refresh the program */
        }
        if (w->head == NULL && w->stop) {
            pthread_mutex_unlock(&w->lock);
            break;
        }
        kp_job *batch = w->head;
        kp_job *last = batch;
        size_t n = batch ? 1 : 0;
        while (last && last->next && n < KP_BATCH_MAX) {
            last = last->next;
            n++;
        }
        if (batch) {
            w->head = last->next;
            if (w->head == NULL) w->tail = NULL;
            last->next = NULL;
            w->queued -= n;
        }
        pthread_mutex_unlock(&w->lock);

        /* A new program version is picked up within a second (or at once
         * when idle), without a query per batch. */
        uint64_t t_now = now_ns();
        if (batch == NULL || t_now - (uint64_t)w->program_checked_ns > 1000000000u) {
            kp_error e;
            kp_programs_refresh(w->programs, w->store, &e);
            w->program_checked_ns = (kp_time)t_now;
        }
        if (batch == NULL) continue;

        uint64_t t0 = now_ns(), t1 = t0;
        kp_err err = w->store->ops->begin(w->store);
        if (err == KP_OK) {
            for (kp_job *j = batch; j; j = j->next) run_job(w, j);
            t1 = now_ns();
            err = w->store->ops->commit(w->store);
            if (err) w->store->ops->rollback(w->store);
        }
        w->batches++;
        w->jobs += n;
        w->exec_ns += t1 - t0;
        w->commit_ns += now_ns() - t1;
        if (err) {
            fprintf(stderr, "kopilka: a batch of %zu operations failed to commit: %s\n", n,
                    w->store->last_error);
            for (kp_job *j = batch; j; j = j->next)
                if (j->err == KP_OK) job_fail(j, KP_ERR_IO, "storage failed; nothing was written");
        }
        /* Wake exactly the requesters of this batch, each on its own
         * condition (a broadcast would wake every waiting thread): at once
         * when it failed, after the journal sync when it committed. */
        pthread_mutex_lock(&w->lock);
        if (err || !w->syncer_running) {
            complete_locked(batch);
        } else {
            if (w->sync_tail) w->sync_tail->next = batch;
            else w->sync_head = batch;
            w->sync_tail = last;
            pthread_cond_signal(&w->wake_syncer);
        }
        pthread_mutex_unlock(&w->lock);
    }
    return NULL;
}

/* Checkpoints the journal every 200 ms from its own connection, so the
 * random page writes of checkpoints overlap the writer's work instead of
 * landing inside a commit. */
static void *checkpointer_main(void *arg)
{
    kp_writer *w = arg;
    pthread_setname_np(pthread_self(), "kp-checkpoint");
    pthread_mutex_lock(&w->lock);
    while (!w->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&w->wake_checkpointer, &w->lock, &ts);
        if (w->stop) break;
        pthread_mutex_unlock(&w->lock);
        if (w->checkpoint_store->ops->checkpoint(w->checkpoint_store) != KP_OK)
            fprintf(stderr, "kopilka: checkpoint failed: %s\n", w->checkpoint_store->last_error);
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

kp_err kp_writer_start(const char *db_path, kp_programs *programs, kp_writer **out, kp_error *e)
{
    *out = NULL;
    kp_writer *w = calloc(1, sizeof *w);
    if (w == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    kp_err err = kp_store_open(db_path, false, &w->store, e);
    if (err) {
        free(w);
        return err;
    }
    w->scratch = kp_scratch_new();
    w->programs = programs;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
    pthread_cond_init(&w->wake_checkpointer, NULL);
    pthread_cond_init(&w->wake_syncer, NULL);
    if ((err = kp_programs_refresh(programs, w->store, e))) goto fail;
    if ((err = kp_store_open(db_path, false, &w->checkpoint_store, e))) goto fail;
    /* Commits are made durable by the syncer thread; a backend without
     * deferred sync keeps durable commits (synchronous=FULL). */
    if (w->store->ops->defer_sync && w->store->ops->defer_sync(w->store) == KP_OK) {
        if (pthread_create(&w->syncer, NULL, syncer_main, w) != 0) {
            err = kp_error_set(e, KP_ERR_NOMEM, "", "cannot start the sync thread");
            goto fail;
        }
        w->syncer_running = true;
    }
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
        err = kp_error_set(e, KP_ERR_NOMEM, "", "cannot start the writer thread");
        goto fail;
    }
    if (pthread_create(&w->checkpointer, NULL, checkpointer_main, w) != 0) {
        fprintf(stderr, "kopilka: cannot start the checkpoint thread; commits will checkpoint\n");
        kp_store_close(w->checkpoint_store);
        w->checkpoint_store = NULL;
    }
    *out = w;
    return KP_OK;
fail:
    if (w->syncer_running) {
        pthread_mutex_lock(&w->lock);
        w->stop = true;
        pthread_cond_signal(&w->wake_syncer);
        pthread_mutex_unlock(&w->lock);
        pthread_join(w->syncer, NULL);
    }
    kp_store_close(w->checkpoint_store);
    kp_store_close(w->store);
    kp_scratch_free(w->scratch);
    free(w);
    return err;
}

/* Each request thread waits on its own condition variable, made once. */
static _Thread_local pthread_cond_t tl_wake;
static _Thread_local bool tl_wake_ready;

void kp_writer_submit(kp_writer *w, kp_job *job)
{
    if (!tl_wake_ready) {
        pthread_cond_init(&tl_wake, NULL);
        tl_wake_ready = true;
    }
    job->wake = &tl_wake;
    job->done = false;
    job->next = NULL;
    job->err = KP_OK;
    job->replayed = false;
    pthread_mutex_lock(&w->lock);
    if (w->queued >= KP_QUEUE_MAX || w->stop) {
        pthread_mutex_unlock(&w->lock);
        job_fail(job, KP_ERR_BUSY, "the server is overloaded; retry with the same receipt");
        return;
    }
    if (w->tail) w->tail->next = job;
    else w->head = job;
    w->tail = job;
    w->queued++;
    pthread_cond_signal(&w->wake);
    while (!job->done) pthread_cond_wait(job->wake, &w->lock);
    pthread_mutex_unlock(&w->lock);
}

void kp_writer_stop(kp_writer *w)
{
    if (w == NULL) return;
    pthread_mutex_lock(&w->lock);
    w->stop = true;
    pthread_cond_signal(&w->wake);
    pthread_cond_signal(&w->wake_checkpointer);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    if (w->syncer_running) {
        pthread_mutex_lock(&w->lock);
        pthread_cond_signal(&w->wake_syncer);
        pthread_mutex_unlock(&w->lock);
        pthread_join(w->syncer, NULL);
    }
    if (w->checkpoint_store) {
        pthread_join(w->checkpointer, NULL);
        kp_store_close(w->checkpoint_store);
    }
    if (w->batches)
        fprintf(stderr,
                "kopilka: writer: %llu operations in %llu group commits (%.1f a commit), "
                "%.1f us of work per operation, %.2f ms per commit, %llu journal syncs\n",
                (unsigned long long)w->jobs, (unsigned long long)w->batches,
                (double)w->jobs / (double)w->batches,
                w->jobs ? (double)w->exec_ns / 1e3 / (double)w->jobs : 0.0,
                (double)w->commit_ns / 1e6 / (double)w->batches, (unsigned long long)w->syncs);
    kp_store_close(w->store);
    kp_scratch_free(w->scratch);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->wake);
    pthread_cond_destroy(&w->wake_checkpointer);
    pthread_cond_destroy(&w->wake_syncer);
    free(w);
}

/* ------------------------------------------------------------------ readers */

struct kp_reader_pool {
    pthread_mutex_t lock;
    pthread_cond_t freed;
    int n;
    int n_free;
    kp_reader *free_list[64];
    kp_reader readers[64];
};

kp_err kp_reader_pool_new(const char *db_path, int n, kp_reader_pool **out, kp_error *e)
{
    *out = NULL;
    if (n < 1) n = 1;
    if (n > 64) n = 64;
    kp_reader_pool *p = calloc(1, sizeof *p);
    if (p == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->freed, NULL);
    for (int i = 0; i < n; i++) {
        kp_err err = kp_store_open(db_path, false, &p->readers[i].store, e);
        if (err) {
            kp_reader_pool_free(p);
            return err;
        }
        p->readers[i].scratch = kp_scratch_new();
        p->n++;
        p->free_list[p->n_free++] = &p->readers[i];
    }
    *out = p;
    return KP_OK;
}

kp_reader *kp_reader_acquire(kp_reader_pool *p)
{
    pthread_mutex_lock(&p->lock);
    while (p->n_free == 0) pthread_cond_wait(&p->freed, &p->lock);
    kp_reader *r = p->free_list[--p->n_free];
    pthread_mutex_unlock(&p->lock);
    return r;
}

void kp_reader_release(kp_reader_pool *p, kp_reader *r)
{
    pthread_mutex_lock(&p->lock);
    p->free_list[p->n_free++] = r;
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->lock);
}

void kp_reader_pool_free(kp_reader_pool *p)
{
    if (p == NULL) return;
    for (int i = 0; i < p->n; i++) {
        kp_store_close(p->readers[i].store);
        kp_scratch_free(p->readers[i].scratch);
    }
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->freed);
    free(p);
}
