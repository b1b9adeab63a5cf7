/*
 * writer.c: group commit. Writer threads, each with a connection of its own
 * (one for SQLite, several for PostgreSQL: kp_group_ops.writers), take the
 * waiting jobs from one queue (up to KP_BATCH_MAX at a time) and run them as
 * a group of the store's kp_group_ops (store.h), each job in its own
 * savepoint: begin, the jobs, log() of each purchase's and return's redo
 * record, end(). How the group becomes durable is the backend's business
 * (SQLite: its operation log and a transaction open across groups); the
 * writer only keeps the rule that nobody is told "done" before the group's
 * ticket is synced, by the syncer thread when the backend has sync(). A job
 * that fails rolls back alone; one that meets a concurrent writer
 * (KP_ERR_BUSY) runs again, at most JOB_RETRIES times. A reader's barrier,
 * idleness and stop publish groups left unpublished. A failed log write or
 * sync refuses writes until a restart recovers (docs/architecture.md).
 *
 * Also here: the program cache and the reader pool.
 */
#define _GNU_SOURCE /* pthread_setname_np */
#include "server.h"

#include <assert.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <kopilka/engine.h>

/* ---------------------------------------------------------------- programs */

/* A version of the program, compiled for pricing (program.compiled points
 * at index), and how many requests hold it. `program` comes first so a
 * held `const kp_program *` leads back to its entry. */
typedef struct program_entry {
    kp_program program;
    kp_engine_index index;
    int holds;
    struct program_entry *next; /* superseded versions still held */
} program_entry;

struct kp_programs {
    pthread_mutex_t lock;
    pthread_mutex_t refresh_lock; /* one refresh at a time */
    const kp_clock *clock;
    program_entry *current;
    /* The version that takes over at next_at, read ahead of its time so
     * that every thread switches to it at that instant without a query
     * (NULL: none scheduled). Never held while it waits. */
    program_entry *next;
    kp_time next_at;
    program_entry *old; /* superseded, each with holds > 0 */
};

kp_programs *kp_programs_new(const kp_clock *clock)
{
    kp_programs *p = calloc(1, sizeof *p);
    if (p == NULL) return NULL;
    pthread_mutex_init(&p->lock, NULL);
    pthread_mutex_init(&p->refresh_lock, NULL);
    p->clock = clock;
    return p;
}

void kp_programs_free(kp_programs *p)
{
    if (p == NULL) return;
    for (program_entry *o = p->old, *next; o; o = next) {
        next = o->next;
        free(o);
    }
    free(p->current);
    free(p->next);
    pthread_mutex_destroy(&p->refresh_lock);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* A superseded version goes when nobody holds it, else at its last drop. */
static void retire_locked(kp_programs *p, program_entry *entry)
{
    if (entry == NULL) return;
    if (entry->holds > 0) {
        entry->next = p->old; /* freed by the last kp_programs_drop() */
        p->old = entry;
    } else {
        free(entry);
    }
}

/* The scheduled version takes over once its time has come. */
static void promote_locked(kp_programs *p)
{
    if (p->next == NULL || kp_clock_now(p->clock) < p->next_at) return;
    retire_locked(p, p->current);
    p->current = p->next;
    p->next = NULL;
    p->next_at = 0;
}

const kp_program *kp_programs_current(kp_programs *p)
{
    pthread_mutex_lock(&p->lock);
    promote_locked(p);
    const kp_program *c = p->current ? &p->current->program : NULL;
    pthread_mutex_unlock(&p->lock);
    return c;
}

const kp_program *kp_programs_hold(kp_programs *p)
{
    pthread_mutex_lock(&p->lock);
    promote_locked(p);
    const kp_program *c = NULL;
    if (p->current) {
        p->current->holds++;
        c = &p->current->program;
    }
    pthread_mutex_unlock(&p->lock);
    return c;
}

void kp_programs_drop(kp_programs *p, const kp_program *program)
{
    if (program == NULL) return;
    program_entry *entry = (program_entry *)program;
    pthread_mutex_lock(&p->lock);
    assert(entry->holds > 0);
    if (--entry->holds == 0 && entry != p->current) {
        program_entry **link = &p->old;
        while (*link != entry) link = &(*link)->next;
        *link = entry->next;
        free(entry);
    }
    pthread_mutex_unlock(&p->lock);
}

/* Reads and parses version `version` into a new entry (NULL with e set). */
static program_entry *entry_load(kp_store *st, int64_t version, kp_error *e)
{
    char *json = NULL;
    int64_t got = 0;
    kp_err err = st->ops->program_get(st, version, 0, &json, &got);
    if (err) {
        kp_error_set(e, err, "", "cannot read program version %lld: %s", (long long)version,
                     st->last_error);
        return NULL;
    }
    program_entry *entry = calloc(1, sizeof *entry);
    if (entry == NULL) kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    if (entry && kp_program_parse(json, strlen(json), &entry->program, e) != KP_OK) {
        free(entry);
        entry = NULL;
    }
    free(json);
    if (entry) {
        entry->program.version = version;
        kp_engine_compile(&entry->program, &entry->index);
        entry->program.compiled = &entry->index;
    }
    return entry;
}

kp_err kp_programs_refresh(kp_programs *p, kp_store *st, kp_error *e)
{
    pthread_mutex_lock(&p->refresh_lock);
    int64_t running = 0;
    kp_program_version next;
    kp_err err = st->ops->program_schedule(st, kp_clock_now(p->clock), &running, &next);
    if (err) {
        kp_error_set(e, err, "", "cannot read the program: %s", st->last_error);
        goto out;
    }
    pthread_mutex_lock(&p->lock);
    promote_locked(p);
    int64_t have = p->current ? p->current->program.version : 0;
    int64_t have_next = p->next ? p->next->program.version : 0;
    pthread_mutex_unlock(&p->lock);
    /* No version runs yet (none loaded): nothing to serve, nothing to read
     * ahead either; a version of the future is read when it is next. */
    program_entry *cur = running && running != have ? entry_load(st, running, e) : NULL;
    program_entry *ahead =
        next.version && next.version != have_next ? entry_load(st, next.version, e) : NULL;
    if ((running && running != have && cur == NULL) ||
        (next.version && next.version != have_next && ahead == NULL)) {
        free(cur);
        free(ahead);
        err = e->code ? e->code : KP_ERR_INTERNAL;
        goto out;
    }
    pthread_mutex_lock(&p->lock);
    if (cur) {
        retire_locked(p, p->current);
        p->current = cur;
    }
    if (ahead || next.version == 0) {
        free(p->next); /* a version waiting is never held */
        p->next = ahead;
        p->next_at = ahead ? next.activates_at : 0;
    }
    promote_locked(p);
    pthread_mutex_unlock(&p->lock);
out:
    pthread_mutex_unlock(&p->refresh_lock);
    return err;
}

/* ------------------------------------------------------------------ writer */

enum {
    WRITERS_MAX = 32,     /* writer connections a backend may ask for */
    JOB_RETRIES = 3,      /* a job that met a concurrent writer runs again at most this often */
    RECORD_MAX = 1 << 20, /* a larger redo record is not encoded: log(NULL) instead */
    UPKEEP_EVERY_NS = 200 * 1000 * 1000,
};

/* One writer connection and its thread. */
typedef struct writer_conn {
    kp_writer *w;
    int index;              /* connection 0 also refreshes the program cache */
    kp_store *store;
    kp_scratch *scratch;
    kp_buf record;          /* the redo record being encoded */
    pthread_t thread;
    bool running;           /* its thread was started */
    bool grouped;           /* kp_group_ops.open() succeeded on it */
    uint64_t program_checked_ns;
    /* under w->lock */
    uint64_t unpublished_since; /* w->unpublished_seq when its oldest unpublished
                                 * group ended; 0: every group is published */
    uint64_t ended_ticket;      /* the last ticket handed to the syncer */
    uint64_t synced_ticket;     /* the last ticket sync() reached */
} writer_conn;

struct kp_writer {
    const kp_group_ops *group; /* NULL: each group is begin() ... commit() */
    kp_programs *programs;
    int n_conns;
    writer_conn conns[WRITERS_MAX];
    pthread_mutex_t lock;
    pthread_cond_t wake;       /* jobs arrived, a publish was asked, or stop */
    kp_job *head, *tail;
    size_t queued;
    bool stop;
    /* Ended groups waiting for kp_group_ops.sync(): the syncer thread makes
     * each connection's latest ticket durable and answers the jobs while
     * the writers go on with the next groups (pipelined group commit). */
    pthread_t syncer;
    bool syncer_running;
    bool syncer_stop;          /* set once the writers are gone */
    pthread_cond_t wake_syncer;
    kp_job *sync_head, *sync_tail;
    /* kp_group_ops.upkeep() every 200 ms on a connection of its own */
    pthread_t upkeeper;
    bool upkeeper_running;
    kp_store *upkeep_store;
    pthread_cond_t wake_upkeeper;
    /* SQLite's quick check of a file too large to check before serving
     * (check_database), on a connection of its own beside the tills. */
    pthread_t checker;
    bool checker_running;
    kp_store *check_store;
    char *check_path;          /* the file it checks, for its sentences */
    /* The readers' barrier waits for groups ended but not published. */
    uint64_t unpublished_seq;  /* counts connections turning unpublished */
    bool publish_asked;        /* a reader waits for them */
    pthread_cond_t published;  /* broadcast when a connection publishes or fails */
    bool failed;               /* acknowledged work may be missing from the
                                * database: writes are refused until a restart
                                * recovers it */
    char failed_reason[256];   /* the first failure, for /health */
    atomic_bool failed_seen;   /* `failed`, read without the lock by every
                                * lookup and quote (kp_writer_failed) */
    /* statistics, printed when the writer stops; read by
     * kp_writer_stats_get() for /metrics */
    _Atomic uint64_t batches, jobs, hard_commits, log_bytes, syncs;
    _Atomic uint64_t exec_ns, commit_ns, soft_batches;
    kp_histogram group_sizes; /* jobs per batch */
};

/* Buckets of the group size histogram: powers of two up to KP_BATCH_MAX. */
static const uint64_t group_size_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The CLOCK_REALTIME deadline `ns` from now, for pthread_cond_timedwait. */
static struct timespec deadline_in(uint64_t ns)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ns / 1000000000u);
    ts.tv_nsec += (long)(ns % 1000000000u);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* Enters the failed state (called with w->lock), keeping the first reason. */
static void fail_locked(kp_writer *w, const char *reason)
{
    if (!w->failed) snprintf(w->failed_reason, sizeof w->failed_reason, "%.255s", reason);
    w->failed = true;
    atomic_store(&w->failed_seen, true);
}

/* What a till is told when storage failed under its purchase or return:
 * whether it was written is not known (a fully written log record replays
 * at the next start; a commit may have reached the journal), so the till
 * sends the same receipt again, which is safe (docs/api.md). */
static const char OUTCOME_UNKNOWN[] =
    "storage failed while this was being written: its outcome is not known; send the same "
    "receipt again once the server is back (a receipt is never applied twice: the answer is "
    "the first one if it was written, a new one if not)";

static void job_fail(kp_job *job, kp_err err, const char *msg)
{
    job->err = err;
    kp_error_set(&job->error, err, "", "%s", msg);
    kp_buf_reset(job->out);
}

static kp_err run_job_once(writer_conn *c, kp_job *job, const kp_program *program)
{
    kp_store *st = c->store;
    if (job->type == KP_JOB_PURCHASE) {
        /* Resolved here, not on an HTTP thread: the writer sees its own
         * unpublished work and no reader has to wait for a publish. */
        kp_err err = kp_till_purchase_by_phone(st, job->pii, program, job->store, job->purchase,
                                               &job->error);
        if (err) return err;
        return kp_service_purchase(st, program, job->store, job->purchase, job->now, c->scratch,
                                   job->out, &job->replayed, &job->error);
    }
    if (job->type == KP_JOB_CALL)
        return job->call(job->ctx, st, program, c->scratch, job->out, &job->replayed,
                         &job->error);
    return kp_service_return(st, program, job->store, job->ret, job->now, c->scratch, job->out,
                             &job->replayed, &job->error);
}

/* Runs a job in its own savepoint. KP_ERR_BUSY (a deadlock, a serialization
 * failure, the same receipt inserted by another writer at once) rolls it
 * back to its savepoint and runs it again, at most JOB_RETRIES times. */
static void run_job(writer_conn *c, kp_job *job, const kp_program *program)
{
    kp_store *st = c->store;
    if (job->type == KP_JOB_PURCHASE && program == NULL) {
        job_fail(job, KP_ERR_NOT_FOUND, "no program is loaded");
        return;
    }
    for (int retry = 0;; retry++) {
        kp_err err = st->ops->savepoint(st);
        if (err) {
            job_fail(job, err, "storage failed");
            return;
        }
        err = run_job_once(c, job, program);
        job->err = err;
        kp_err end = err ? st->ops->rollback_to(st) : st->ops->release(st);
        if (end) {
            job_fail(job, end, "storage failed");
            return;
        }
        if (err != KP_ERR_BUSY) return;
        if (retry == JOB_RETRIES) {
            char msg[256];
            snprintf(msg, sizeof msg,
                     "the database refused this write %d times because concurrent writes held "
                     "what it needed (a deadlock, a serialization failure, or the same receipt "
                     "at another server at once); nothing of it was written: send it again",
                     JOB_RETRIES + 1);
            job_fail(job, KP_ERR_BUSY, msg);
            return;
        }
        kp_buf_reset(job->out);
        job->replayed = false;
        kp_error_clear(&job->error);
    }
}

/* Hands a successful job's redo record to the group's log: a purchase's or
 * a return's; any other write has none (record NULL). */
static void log_job(writer_conn *c, const kp_job *job, const kp_program *program)
{
    kp_err err = KP_ERR_INVALID;
    if (job->type == KP_JOB_PURCHASE)
        err = kp_durable_purchase(&c->record, job->store, job->purchase, job->now,
                                  program->version, job->out);
    else if (job->type == KP_JOB_RETURN)
        err = kp_durable_return(&c->record, job->store, job->ret, job->now,
                                program ? program->version : 0, job->out);
    const void *record = err == KP_OK ? c->record.data : NULL;
    size_t len = err == KP_OK ? c->record.len : 0;
    if (c->w->group->log(c->store, record, len) == KP_OK) c->w->log_bytes += len;
}

/* Marks a list of jobs done and wakes each waiting requester. Called with
 * w->lock. Jobs with a callback are returned (linked by next) for
 * finish_async() to call once the lock is released. */
static kp_job *complete_locked(kp_job *list)
{
    kp_job *async = NULL;
    for (kp_job *j = list, *next; j; j = next) {
        next = j->next;
        if (j->on_done) {
            j->next = async;
            async = j;
        } else {
            j->done = true;
            pthread_cond_signal(j->wake);
        }
    }
    return async;
}

static void finish_async(kp_job *list)
{
    for (kp_job *j = list, *next; j; j = next) {
        next = j->next;
        j->done = true;
        j->on_done(j); /* may free or reuse j */
    }
}

static bool unpublished_upto_locked(const kp_writer *w, uint64_t seq)
{
    for (int i = 0; i < w->n_conns; i++)
        if (w->conns[i].unpublished_since && w->conns[i].unpublished_since <= seq) return true;
    return false;
}

/* After end() on c: the readers' barrier and the failed state. Called
 * with w->lock. */
static void group_ended_locked(writer_conn *c, kp_err err, bool published)
{
    kp_writer *w = c->w;
    if (err == KP_OK && !published) {
        if (c->unpublished_since == 0) c->unpublished_since = ++w->unpublished_seq;
        return;
    }
    /* Published, or rolled back: nothing of this connection waits. */
    c->unpublished_since = 0;
    if (err == KP_ERR_IO && w->group) fail_locked(w, c->store->last_error);
    if (!unpublished_upto_locked(w, UINT64_MAX)) w->publish_asked = false;
    pthread_cond_broadcast(&w->published);
}

/* Hands c's ended groups up to `ticket` to the syncer. Called with w->lock. */
static void to_syncer_locked(writer_conn *c, uint64_t ticket, kp_job *first, kp_job *last)
{
    kp_writer *w = c->w;
    if (ticket > c->ended_ticket) c->ended_ticket = ticket;
    if (first) {
        if (w->sync_tail) w->sync_tail->next = first;
        else w->sync_head = first;
        w->sync_tail = last;
    }
    pthread_cond_signal(&w->wake_syncer);
}

static kp_err begin_group(writer_conn *c)
{
    kp_store *st = c->store;
    return c->w->group ? c->w->group->begin(st) : st->ops->begin(st);
}

static kp_err end_group(writer_conn *c, bool publish, uint64_t *ticket, bool *published)
{
    kp_store *st = c->store;
    *ticket = 0;
    *published = true;
    if (c->w->group) return c->w->group->end(st, publish, ticket, published);
    kp_err err = st->ops->commit(st);
    if (err) st->ops->rollback(st);
    return err;
}

/* Publishes c's unpublished groups: an empty group ended with publish. */
static void publish(writer_conn *c)
{
    kp_writer *w = c->w;
    uint64_t ticket = 0;
    bool published = false;
    kp_err err = begin_group(c);
    if (err == KP_OK) {
        err = end_group(c, true, &ticket, &published);
        if (err)
            fprintf(stderr, "kopilka: publishing the writer's work failed: %s%s\n",
                    c->store->last_error,
                    err == KP_ERR_IO ? "; writes are refused until a restart recovers it" : "");
        else
            w->hard_commits++;
    }
    pthread_mutex_lock(&w->lock);
    group_ended_locked(c, err, published || err != KP_OK);
    if (err == KP_OK && w->syncer_running) to_syncer_locked(c, ticket, NULL, NULL);
    pthread_mutex_unlock(&w->lock);
}

/* Runs a batch as one group on c and hands its jobs to the syncer (or
 * answers them at once when the group is durable or failed). */
static void run_group(writer_conn *c, kp_job *batch, kp_job *last, size_t n, bool publish)
{
    kp_writer *w = c->w;
    const kp_program *program = kp_programs_hold(w->programs);
    uint64_t t0 = now_ns(), t1 = t0, ticket = 0;
    bool published = false, ended = false;
    kp_err err = begin_group(c);
    if (err == KP_OK) {
        bool logs = w->group && w->group->log;
        for (kp_job *j = batch; j; j = j->next) {
            run_job(c, j, program);
            if (logs && j->err == KP_OK && !j->replayed && !j->lazy) log_job(c, j, program);
        }
        t1 = now_ns();
        err = end_group(c, publish, &ticket, &published);
        ended = true;
    }
    kp_programs_drop(w->programs, program);
    w->batches++;
    w->jobs += n;
    kp_histogram_observe(&w->group_sizes, n);
    w->exec_ns += t1 - t0;
    w->commit_ns += now_ns() - t1;
    if (err == KP_OK && published) w->hard_commits++;
    if (err == KP_OK && !published) w->soft_batches++;
    if (err) {
        fprintf(stderr, "kopilka: a batch of %zu operations failed to commit: %s%s\n", n,
                c->store->last_error,
                ended && err == KP_ERR_IO && w->group
                    ? "; writes are refused until a restart recovers the acknowledged work"
                    : "");
        for (kp_job *j = batch; j; j = j->next)
            if (j->err == KP_OK) job_fail(j, KP_ERR_IO, OUTCOME_UNKNOWN);
    }
    /* Wake exactly the requesters of this batch, each on its own condition
     * (a broadcast would wake every waiting thread): at once when it failed
     * or is durable already, after the sync otherwise. */
    pthread_mutex_lock(&w->lock);
    if (ended) group_ended_locked(c, err, published);
    kp_job *async = NULL;
    if (err || !w->syncer_running) async = complete_locked(batch);
    else to_syncer_locked(c, ticket, batch, last);
    pthread_mutex_unlock(&w->lock);
    finish_async(async);
}

static void *writer_main(void *arg)
{
    writer_conn *c = arg;
    kp_writer *w = c->w;
    char name[16];
    if (c->index == 0) snprintf(name, sizeof name, "kp-writer");
    else snprintf(name, sizeof name, "kp-writer-%d", c->index);
    pthread_setname_np(pthread_self(), name);
    uint64_t idle_ns = w->group ? w->group->publish_idle_ns : 0;
    for (;;) {
        pthread_mutex_lock(&w->lock);
        bool idle = false;
        while (w->head == NULL && !w->stop && !(w->publish_asked && c->unpublished_since)) {
            struct timespec ts =
                deadline_in(c->unpublished_since && idle_ns ? idle_ns : 1000000000u);
            pthread_cond_timedwait(&w->wake, &w->lock, &ts);
            if (w->head == NULL && !w->stop && !(w->publish_asked && c->unpublished_since)) {
                idle = true; /* publish; refresh the program */
                break;
            }
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
        bool dirty = c->unpublished_since != 0;
        bool asked = w->publish_asked && dirty, stopping = w->stop, failed = w->failed;
        pthread_mutex_unlock(&w->lock);

        /* A new program version is picked up within a second (or at once
         * when idle), without a query per batch. */
        uint64_t t_now = now_ns();
        if (c->index == 0 && (batch == NULL || t_now - c->program_checked_ns > 1000000000u)) {
            kp_error e;
            kp_programs_refresh(w->programs, c->store, &e);
            c->program_checked_ns = t_now;
        }
        if (batch == NULL) {
            if (dirty && (asked || idle || stopping)) publish(c);
            if (stopping) break;
            continue;
        }
        if (failed) {
            for (kp_job *j = batch; j; j = j->next)
                job_fail(j, KP_ERR_IO, "storage failed earlier, so this was not run (nothing of "
                                       "it was written); the server must be restarted to "
                                       "recover: then send the same receipt again");
            pthread_mutex_lock(&w->lock);
            kp_job *async = complete_locked(batch);
            pthread_mutex_unlock(&w->lock);
            finish_async(async);
            continue;
        }
        run_group(c, batch, last, n, asked || stopping);
    }
    return NULL;
}

static bool sync_pending_locked(const kp_writer *w)
{
    for (int i = 0; i < w->n_conns; i++)
        if (w->conns[i].ended_ticket > w->conns[i].synced_ticket) return true;
    return false;
}

static void *syncer_main(void *arg)
{
    kp_writer *w = arg;
    pthread_setname_np(pthread_self(), "kp-syncer");
    uint64_t want[WRITERS_MAX];
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (w->sync_head == NULL && !sync_pending_locked(w) && !w->syncer_stop)
            pthread_cond_wait(&w->wake_syncer, &w->lock);
        if (w->sync_head == NULL && !sync_pending_locked(w)) break; /* stopping */
        kp_job *list = w->sync_head;
        w->sync_head = w->sync_tail = NULL;
        for (int i = 0; i < w->n_conns; i++) want[i] = w->conns[i].ended_ticket;
        pthread_mutex_unlock(&w->lock);
        /* Every job taken belongs to a group ended before this point: one
         * sync of each connection covers them all. */
        kp_err err = KP_OK;
        kp_error e = {0};
        for (int i = 0; i < w->n_conns && err == KP_OK; i++)
            if (want[i] > w->conns[i].synced_ticket)
                err = w->group->sync(w->conns[i].store, want[i], &e);
        w->syncs++;
        if (err) {
            fprintf(stderr, "kopilka: %s; answering 503 (retries replay safely)\n", e.message);
            for (kp_job *j = list; j; j = j->next)
                if (j->err == KP_OK) job_fail(j, KP_ERR_IO, OUTCOME_UNKNOWN);
        }
        pthread_mutex_lock(&w->lock);
        /* After a failure too: what it covered is of unknown outcome, and
         * the writer refuses work from now on. */
        for (int i = 0; i < w->n_conns; i++)
            if (want[i] > w->conns[i].synced_ticket) w->conns[i].synced_ticket = want[i];
        if (err) fail_locked(w, e.message);
        kp_job *async = complete_locked(list);
        if (async) {
            pthread_mutex_unlock(&w->lock);
            finish_async(async);
            pthread_mutex_lock(&w->lock);
        }
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

static void *upkeeper_main(void *arg)
{
    kp_writer *w = arg;
    pthread_setname_np(pthread_self(), "kp-upkeep");
    pthread_mutex_lock(&w->lock);
    while (!w->stop) {
        struct timespec ts = deadline_in(UPKEEP_EVERY_NS);
        pthread_cond_timedwait(&w->wake_upkeeper, &w->lock, &ts);
        if (w->stop) break;
        pthread_mutex_unlock(&w->lock);
        if (w->group->upkeep(w->upkeep_store) != KP_OK)
            fprintf(stderr, "kopilka: the store's upkeep (SQLite: a checkpoint) failed: %s\n",
                    w->upkeep_store->last_error);
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

bool kp_writer_failed(kp_writer *w, char *reason, size_t size)
{
    /* The common answer without the lock every purchase takes. */
    if (!atomic_load(&w->failed_seen)) return false;
    pthread_mutex_lock(&w->lock);
    bool failed = w->failed;
    if (failed && reason) snprintf(reason, size, "%s", w->failed_reason);
    pthread_mutex_unlock(&w->lock);
    return failed;
}

void kp_writer_stats_get(kp_writer *w, kp_writer_stats *out)
{
    out->groups = w->batches;
    out->jobs = w->jobs;
    out->database_commits = w->hard_commits;
    out->log_syncs = w->syncs;
    out->log_bytes = w->log_bytes;
    out->group_sizes = &w->group_sizes;
    pthread_mutex_lock(&w->lock);
    out->queued = w->queued;
    out->failed = w->failed;
    pthread_mutex_unlock(&w->lock);
}

void kp_writer_barrier(kp_writer *w)
{
    pthread_mutex_lock(&w->lock);
    uint64_t target = w->unpublished_seq;
    /* Bounded: each round trip is one publish by a writer; a failed or
     * stopping writer ends the wait. */
    while (unpublished_upto_locked(w, target) && !w->failed && !w->stop) {
        w->publish_asked = true;
        pthread_cond_broadcast(&w->wake);
        pthread_cond_wait(&w->published, &w->lock);
    }
    pthread_mutex_unlock(&w->lock);
}

static void first_problem(void *ctx, const char *line)
{
    char *first = ctx;
    if (first[0] == '\0') snprintf(first, 256, "%s", line);
}

/* The largest file checked before the server takes any work (bytes;
 * KOPILKA_FILE_CHECK_AT_START_MAX overrides it). SQLite's quick check reads
 * every page, about 5 to 10 s a gigabyte on the 2-core machine (a 4.1 GB
 * ledger: 21 to 43 s), so a start would grow with the file without bound;
 * a larger file is checked beside the tills instead (checker_main). */
#define FILE_CHECK_AT_START_MAX (1024LL * 1024 * 1024)

static long long file_check_at_start_max(void)
{
    const char *v = getenv("KOPILKA_FILE_CHECK_AT_START_MAX");
    if (v == NULL || v[0] == '\0') return FILE_CHECK_AT_START_MAX;
    char *end = NULL;
    long long n = strtoll(v, &end, 10);
    if (end == v || *end != '\0' || n < 0) {
        fprintf(stderr, "kopilka: KOPILKA_FILE_CHECK_AT_START_MAX=%s is not a number of bytes "
                        "(0 or more); %lld is used\n",
                v, FILE_CHECK_AT_START_MAX);
        return FILE_CHECK_AT_START_MAX;
    }
    return n;
}

/* The sentence of a damaged file, for the log and the failed state. */
static void damaged(const char *db_path, int64_t problems, const char *first, const char *when)
{
    fprintf(stderr, "kopilka: %s failed SQLite's quick check (problems: %lld; the first: %s)%s. "
                    "Run `kopilka verify %s --full` for the list, then restore the database "
                    "from its last good backup (docs/architecture.md, \"A damaged database\")\n",
            db_path, (long long)problems, first, when, db_path);
}

/* The quick check of a file too large to check at start, on its own
 * connection while the tills are served: a damaged file puts the writer in
 * the failed state (every write refused, /ready and /health 503 with the
 * reason), as a failed sync does. A stop interrupts it. */
static void *checker_main(void *arg)
{
    kp_writer *w = arg;
    pthread_setname_np(pthread_self(), "kp-filecheck");
    char first[256] = "";
    int64_t problems = 0;
    uint64_t t0 = now_ns();
    kp_err err = w->check_store->ops->integrity(w->check_store, false, first_problem, first,
                                                &problems);
    pthread_mutex_lock(&w->lock);
    bool stopping = w->stop;
    pthread_mutex_unlock(&w->lock);
    if (stopping && (err || problems == 0)) {
        fprintf(stderr, "kopilka: the quick check of the database file was cut short by the "
                        "stop; the next start checks it again\n");
        return NULL;
    }
    if (err) {
        fprintf(stderr, "kopilka: the quick check of the database file could not run: %s\n",
                w->check_store->last_error);
        return NULL;
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    if (problems == 0) {
        fprintf(stderr, "kopilka: %s passed SQLite's quick check (%.1f s, beside the tills)\n",
                w->check_path, secs);
        return NULL;
    }
    damaged(w->check_path, problems, first, " while serving; writes are refused now");
    char reason[256];
    snprintf(reason, sizeof reason,
             "the database file is damaged (problems found by SQLite's quick check: %lld; "
             "the first: %.120s)",
             (long long)problems, first);
    pthread_mutex_lock(&w->lock);
    fail_locked(w, reason);
    pthread_cond_broadcast(&w->published);
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

/* SQLite's quick check of the whole file before the server takes any work:
 * a database with damaged pages is refused at start, not found out by the
 * purchase that reads the bad page. A file larger than
 * FILE_CHECK_AT_START_MAX is checked beside the tills instead: *later is
 * set, and kp_writer_start starts checker_main. */
static kp_err check_database(kp_store *st, const char *db_path, bool *later, kp_error *e)
{
    /* Databases made before Kopilka created them 0600 may be readable by
     * others: say so (changing the mode could break a backup user's access). */
    struct stat sb;
    if (stat(db_path, &sb) == 0 && (sb.st_mode & 077) != 0)
        fprintf(stderr, "kopilka: warning: %s is readable or writable by others (mode %04o) "
                        "though it holds password hashes, the audit log and balances: "
                        "chmod 600 it and its -wal and -shm files\n",
                db_path, (unsigned)(sb.st_mode & 07777));
    long long max = file_check_at_start_max();
    *later = false;
    if (stat(db_path, &sb) == 0 && (long long)sb.st_size > max) {
        fprintf(stderr, "kopilka: %s is %.1f GB, more than the %.1f GB checked before serving: "
                        "SQLite's quick check of it runs beside the tills\n",
                db_path, (double)sb.st_size / 1e9, (double)max / 1e9);
        *later = true;
        return KP_OK;
    }
    char first[256] = "";
    int64_t problems = 0;
    kp_err err = st->ops->integrity(st, false, first_problem, first, &problems);
    if (err)
        return kp_error_set(e, err, "database", "cannot check %s: %s", db_path, st->last_error);
    if (problems == 0) return KP_OK;
    damaged(db_path, problems, first, "; not started, nothing was changed");
    return kp_error_set(e, KP_ERR_IO, "database",
                        "the database file is damaged (problems found by SQLite's quick "
                        "check: %lld); not started", (long long)problems);
}

/* Prepares writer connection i (its store already open when i is 0) and
 * makes it a group writer, recovering through `replay`. */
static kp_err conn_open(kp_writer *w, int i, const char *location, kp_durable_replay *replay,
                        kp_error *e)
{
    writer_conn *c = &w->conns[i];
    c->w = w;
    c->index = i;
    w->n_conns = i + 1;
    kp_err err = c->store ? KP_OK : kp_store_open(location, false, &c->store, e);
    if (err) return err;
    kp_buf_init(&c->record, RECORD_MAX);
    if ((c->scratch = kp_scratch_new()) == NULL)
        return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    if (w->group == NULL) return KP_OK;
    size_t recovered = 0;
    if ((err = w->group->open(c->store, location, kp_durable_redo, replay, &recovered, e)))
        return err;
    c->grouped = true;
    if (recovered)
        fprintf(stderr, "kopilka: recovered %zu operations from the operation log\n", recovered);
    return KP_OK;
}

/* Stops and joins whatever threads run: the writers first (each publishes
 * its work), then the syncer (which syncs that last work), then upkeep. */
static void threads_join(kp_writer *w)
{
    pthread_mutex_lock(&w->lock);
    w->stop = true;
    pthread_cond_broadcast(&w->wake);
    pthread_cond_signal(&w->wake_upkeeper);
    pthread_mutex_unlock(&w->lock);
    for (int i = 0; i < w->n_conns; i++)
        if (w->conns[i].running) pthread_join(w->conns[i].thread, NULL);
    if (w->syncer_running) {
        pthread_mutex_lock(&w->lock);
        w->syncer_stop = true;
        pthread_cond_signal(&w->wake_syncer);
        pthread_mutex_unlock(&w->lock);
        pthread_join(w->syncer, NULL);
    }
    if (w->upkeeper_running) pthread_join(w->upkeeper, NULL);
    if (w->checker_running) {
        /* A check of a large file may have minutes to go: cut it short. */
        if (w->check_store->ops->interrupt) w->check_store->ops->interrupt(w->check_store);
        pthread_join(w->checker, NULL);
        w->checker_running = false;
    }
}

static void writer_free(kp_writer *w)
{
    for (int i = 0; i < w->n_conns; i++) {
        writer_conn *c = &w->conns[i];
        if (c->grouped) w->group->close(c->store);
        kp_store_close(c->store);
        kp_scratch_free(c->scratch);
        kp_buf_release(&c->record);
    }
    kp_store_close(w->upkeep_store);
    kp_store_close(w->check_store);
    free(w->check_path);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->wake);
    pthread_cond_destroy(&w->wake_syncer);
    pthread_cond_destroy(&w->wake_upkeeper);
    pthread_cond_destroy(&w->published);
    free(w);
}

kp_err kp_writer_start(const char *location, kp_programs *programs, kp_writer **out, kp_error *e)
{
    *out = NULL;
    kp_writer *w = calloc(1, sizeof *w);
    if (w == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    w->programs = programs;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
    pthread_cond_init(&w->wake_syncer, NULL);
    pthread_cond_init(&w->wake_upkeeper, NULL);
    pthread_cond_init(&w->published, NULL);
    kp_histogram_init(&w->group_sizes, group_size_bounds,
                      sizeof group_size_bounds / sizeof group_size_bounds[0]);
    kp_durable_replay *replay = NULL;
    kp_err err = kp_store_open(location, false, &w->conns[0].store, e);
    w->n_conns = 1;
    bool check_later = false;
    if (err == KP_OK && kp_store_is_file(location))
        err = check_database(w->conns[0].store, location, &check_later, e);
    if (err) goto fail;
    w->group = w->conns[0].store->ops->group;
    int n = w->group ? w->group->writers : 1;
    if (n < 1 || n > WRITERS_MAX) {
        err = kp_error_set(e, KP_ERR_INVALID, "database",
                           "the store asks for %d writer connections; 1 to %d are allowed", n,
                           WRITERS_MAX);
        goto fail;
    }
    /* Connection 0 first: what a crash left goes into the database before
     * anything else reads or writes it. */
    if ((replay = kp_durable_replay_new()) == NULL) {
        err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
        goto fail;
    }
    for (int i = 0; i < n && err == KP_OK; i++) err = conn_open(w, i, location, replay, e);
    kp_durable_replay_free(replay);
    if (err || (err = kp_programs_refresh(programs, w->conns[0].store, e))) goto fail;
    if (w->group && w->group->sync) {
        if (pthread_create(&w->syncer, NULL, syncer_main, w) != 0) {
            err = kp_error_set(e, KP_ERR_NOMEM, "", "cannot start the sync thread");
            goto fail;
        }
        w->syncer_running = true;
    }
    for (int i = 0; i < n; i++) {
        if (pthread_create(&w->conns[i].thread, NULL, writer_main, &w->conns[i]) != 0) {
            err = kp_error_set(e, KP_ERR_NOMEM, "", "cannot start a writer thread");
            goto fail;
        }
        w->conns[i].running = true;
    }
    if (w->group && w->group->upkeep) {
        if (kp_store_open(location, false, &w->upkeep_store, e) != KP_OK ||
            pthread_create(&w->upkeeper, NULL, upkeeper_main, w) != 0)
            fprintf(stderr, "kopilka: cannot start the upkeep thread (SQLite: checkpoints "
                            "then happen inside commits)\n");
        else
            w->upkeeper_running = true;
    }
    if (check_later) {
        /* After recovery: the check reads what the log's replay wrote. */
        if ((w->check_path = strdup(location)) == NULL ||
            kp_store_open(location, false, &w->check_store, e) != KP_OK ||
            pthread_create(&w->checker, NULL, checker_main, w) != 0) {
            err = kp_error_set(e, KP_ERR_NOMEM, "", "cannot start the file check's thread");
            goto fail;
        }
        w->checker_running = true;
    }
    *out = w;
    return KP_OK;
fail:
    threads_join(w);
    writer_free(w);
    return err;
}

/* Each request thread waits on its own condition variable, made once. */
static _Thread_local pthread_cond_t tl_wake;
static _Thread_local bool tl_wake_ready;

/* Appends the job to the queue; false (and the job failed) when the queue is
 * full or the writer stops. Called with w->lock. */
static bool queue_locked(kp_writer *w, kp_job *job)
{
    job->done = false;
    job->next = NULL;
    job->err = KP_OK;
    job->replayed = false;
    if (w->queued >= KP_QUEUE_MAX || w->stop) {
        job_fail(job, KP_ERR_BUSY, "the server is overloaded; retry with the same receipt");
        return false;
    }
    if (w->tail) w->tail->next = job;
    else w->head = job;
    w->tail = job;
    w->queued++;
    pthread_cond_signal(&w->wake);
    return true;
}

void kp_writer_submit(kp_writer *w, kp_job *job)
{
    if (!tl_wake_ready) {
        pthread_cond_init(&tl_wake, NULL);
        tl_wake_ready = true;
    }
    job->wake = &tl_wake;
    job->on_done = NULL;
    pthread_mutex_lock(&w->lock);
    if (queue_locked(w, job))
        while (!job->done) pthread_cond_wait(job->wake, &w->lock);
    pthread_mutex_unlock(&w->lock);
}

bool kp_writer_enqueue(kp_writer *w, kp_job *job)
{
    assert(job->on_done != NULL);
    job->wake = NULL;
    pthread_mutex_lock(&w->lock);
    bool queued = queue_locked(w, job);
    pthread_mutex_unlock(&w->lock);
    return queued;
}

void kp_writer_stop(kp_writer *w)
{
    if (w == NULL) return;
    threads_join(w);
    uint64_t batches = w->batches, jobs = w->jobs;
    if (batches)
        fprintf(stderr,
                "kopilka: writer: %llu operations in %llu group commits (%.1f a commit), "
                "%.1f us of work per operation, %.2f ms per commit, %llu syncs; "
                "%llu batches in the operation log, %llu database commits\n",
                (unsigned long long)jobs, (unsigned long long)batches,
                (double)jobs / (double)batches,
                jobs ? (double)w->exec_ns / 1e3 / (double)jobs : 0.0,
                (double)w->commit_ns / 1e6 / (double)batches, (unsigned long long)w->syncs,
                (unsigned long long)w->soft_batches, (unsigned long long)w->hard_commits);
    writer_free(w);
}

/* ------------------------------------------------------------------ readers */

struct kp_reader_pool {
    kp_writer *writer; /* readers wait for its acknowledged work (barrier) */
    pthread_mutex_t lock;
    pthread_cond_t freed;
    int n;
    int n_free;
    kp_reader *free_list[KP_READERS_MAX];
    kp_reader readers[KP_READERS_MAX];
};

kp_err kp_reader_pool_new(const char *db_path, int n, kp_reader_pool **out, kp_error *e)
{
    *out = NULL;
    if (n < 1 || n > KP_READERS_MAX)
        return kp_error_set(e, KP_ERR_INVALID, "readers",
                            "the read connections must be from 1 to %d, got %d", KP_READERS_MAX, n);
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

void kp_reader_pool_follow(kp_reader_pool *p, kp_writer *w) { p->writer = w; }

kp_reader *kp_reader_acquire(kp_reader_pool *p)
{
    if (p->writer) kp_writer_barrier(p->writer);
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
