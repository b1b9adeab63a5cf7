/*
 * writer.c: group commit. One thread owns the database's write connection.
 * Request handlers queue jobs; the writer takes every waiting job (up to
 * KP_BATCH_MAX) and runs each in its own savepoint of a transaction that
 * stays open across batches. A batch of purchases and returns is made
 * durable by its operation-log records (oplog.h: one pwrite, then the
 * syncer's fdatasync); any other write, a reader's barrier, idleness, stop
 * or COMMIT_EVERY_NS commit the database itself (docs/architecture.md). No
 * requester is told "done" before its batch is on disk; a job that fails
 * rolls back alone; a failed log write or sync refuses writes until a
 * restart recovers from the log.
 *
 * Also here: the program cache and the reader pool.
 */
#define _GNU_SOURCE /* pthread_setname_np */
#include "server.h"

#include <kopilka/oplog.h>

#include <assert.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* ---------------------------------------------------------------- programs */

/* A version of the program and how many requests hold it. `program` comes
 * first so a held `const kp_program *` leads back to its entry. */
typedef struct program_entry {
    kp_program program;
    int holds;
    struct program_entry *next; /* superseded versions still held */
} program_entry;

struct kp_programs {
    pthread_mutex_t lock;
    program_entry *current;
    program_entry *old; /* superseded, each with holds > 0 */
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
    for (program_entry *o = p->old, *next; o; o = next) {
        next = o->next;
        free(o);
    }
    free(p->current);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

const kp_program *kp_programs_current(kp_programs *p)
{
    pthread_mutex_lock(&p->lock);
    const kp_program *c = p->current ? &p->current->program : NULL;
    pthread_mutex_unlock(&p->lock);
    return c;
}

const kp_program *kp_programs_hold(kp_programs *p)
{
    pthread_mutex_lock(&p->lock);
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
    program_entry *next = calloc(1, sizeof *next);
    if (next == NULL) {
        free(json);
        return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    }
    err = kp_program_parse(json, strlen(json), &next->program, e);
    free(json);
    if (err) {
        free(next);
        return err;
    }
    next->program.version = version;
    pthread_mutex_lock(&p->lock);
    program_entry *prev = p->current;
    p->current = next;
    if (prev && prev->holds > 0) {
        prev->next = p->old; /* freed by the last kp_programs_drop() */
        p->old = prev;
    } else {
        free(prev);
    }
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
    _Atomic uint64_t syncs; /* read by kp_writer_stats_get() */
    kp_time program_checked_ns;
    /* The operation log (oplog.h; NULL: every batch commits the database).
     * Batches of purchases and returns are "soft": their records are
     * appended to the log and fsynced there, while the database
     * transaction stays open across batches; a "hard" commit of the
     * database ends it every COMMIT_EVERY_NS, at a write that is not a
     * purchase or return, when a reader needs to see the work, when idle,
     * and at stop. */
    kp_oplog *log;
    kp_buf record;             /* the record being encoded */
    bool txn_open;
    uint64_t txn_start_ns;
    size_t txn_ops;            /* soft operations in the open transaction */
    /* under lock */
    unsigned sync_files;       /* log files written since the last sync */
    bool sync_wal;             /* a database commit waits for its sync */
    uint64_t sync_wal_seq;     /* the log record that commit covers */
    uint64_t open_seq;         /* last log record in the open transaction */
    uint64_t committed_seq;    /* last log record whose work readers see */
    uint64_t durable_seq;      /* last log record whose work is durable in the database */
    bool commit_asked;         /* a reader waits for the open transaction */
    bool failed;               /* acknowledged work may be missing from the
                                * database: writes are refused until a restart
                                * recovers it from the log */
    char failed_reason[256];   /* the first failure, for /health */
    atomic_bool failed_seen;   /* `failed`, read without the lock by every
                                * lookup and quote (kp_writer_failed) */
    pthread_cond_t committed;  /* broadcast at each database commit */
    /* statistics, printed when the writer stops (only the writer writes
     * them); the atomic ones are read by kp_writer_stats_get() for /metrics */
    _Atomic uint64_t batches, jobs, hard_commits, log_bytes;
    uint64_t exec_ns, commit_ns, soft_batches;
    kp_histogram group_sizes; /* jobs per batch */
};

/* Buckets of the group size histogram: powers of two up to KP_BATCH_MAX. */
static const uint64_t group_size_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};

enum {
    COMMIT_EVERY_NS = 500 * 1000 * 1000, /* a hard commit at least this often */
    COMMIT_IDLE_NS = 2 * 1000 * 1000,    /* ... and after this long without work */
    TXN_OPS_MAX = 200000,                /* ... and before the transaction grows past this */
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
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
    if (job->type == KP_JOB_PURCHASE) {
        /* Resolved here, not on an HTTP thread: the writer sees its own
         * uncommitted work and no reader has to wait for a commit. */
        err = kp_till_purchase_by_phone(st, job->pii, program, job->store, job->purchase,
                                         &job->error);
        if (err == KP_OK)
            err = kp_service_purchase(st, program, job->store, job->purchase, job->now,
                                      w->scratch, job->out, &job->replayed, &job->error);
    }
    else if (job->type == KP_JOB_CALL)
        err = job->call(job->ctx, st, program, w->scratch, job->out, &job->replayed, &job->error);
    else
        err = kp_service_return(st, program, job->store, job->ret, job->now, w->scratch,
                                job->out, &job->replayed, &job->error);
    job->err = err;
    kp_err end = err ? st->ops->rollback_to(st) : st->ops->release(st);
    if (end) job_fail(job, end, "storage failed");
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

static void *syncer_main(void *arg)
{
    kp_writer *w = arg;
    pthread_setname_np(pthread_self(), "kp-syncer");
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (w->sync_head == NULL && !w->sync_wal && !w->sync_files && !w->stop)
            pthread_cond_wait(&w->wake_syncer, &w->lock);
        if (w->sync_head == NULL && !w->sync_wal && !w->sync_files && w->stop) break;
        kp_job *list = w->sync_head;
        w->sync_head = w->sync_tail = NULL;
        bool wal = w->sync_wal;
        uint64_t wal_seq = w->sync_wal_seq;
        unsigned files = w->sync_files;
        w->sync_wal = false;
        w->sync_files = 0;
        pthread_mutex_unlock(&w->lock);
        /* Everything taken was written before this point: one sync of each
         * file covers it all. */
        kp_err err = KP_OK;
        kp_error e = {0};
        if (wal) {
            err = w->store->ops->sync_journal(w->store);
            if (err) kp_error_set(&e, err, "", "%s", w->store->last_error);
        }
        if (err == KP_OK && files) err = kp_oplog_sync(w->log, files, &e);
        w->syncs++;
        if (err) {
            fprintf(stderr, "kopilka: %s; answering 503 (retries replay safely)\n", e.message);
            for (kp_job *j = list; j; j = j->next)
                if (j->err == KP_OK) job_fail(j, KP_ERR_IO, OUTCOME_UNKNOWN);
        }
        pthread_mutex_lock(&w->lock);
        if (err) fail_locked(w, e.message);
        else if (wal && wal_seq > w->durable_seq) w->durable_seq = wal_seq;
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

/* Appends a successful purchase's or return's record to the log's queue.
 * False when it cannot: the batch then commits the database instead. */
static bool journal_job(kp_writer *w, const kp_job *job)
{
    kp_err err;
    if (job->type == KP_JOB_PURCHASE) {
        const kp_program *program = kp_programs_current(w->programs);
        err = kp_durable_purchase(&w->record, job->store, job->purchase, job->now,
                                  program->version, job->out);
    } else if (job->type == KP_JOB_RETURN) {
        const kp_program *program = kp_programs_current(w->programs);
        err = kp_durable_return(&w->record, job->store, job->ret, job->now,
                                program ? program->version : 0, job->out);
    } else {
        return false;
    }
    kp_error e;
    if (err != KP_OK || kp_oplog_add(w->log, w->record.data, w->record.len, &e) != KP_OK)
        return false;
    w->log_bytes += w->record.len;
    return true;
}

/* Commits the open transaction, marking every log record written so far as
 * held by the database, and queues the batch for the journal's sync. */
static kp_err hard_commit(kp_writer *w)
{
    kp_store *st = w->store;
    uint64_t seq = w->log ? kp_oplog_seq(w->log) : 0;
    if (w->log) kp_oplog_discard(w->log);
    kp_err err = w->log ? st->ops->oplog_mark_set(st, seq) : KP_OK;
    if (err == KP_OK) err = st->ops->commit(st);
    if (err) st->ops->rollback(st);
    bool had_soft = w->txn_ops > 0;
    w->txn_open = false;
    w->txn_ops = 0;
    w->hard_commits++;
    pthread_mutex_lock(&w->lock);
    if (err == KP_OK) {
        w->committed_seq = seq;
        w->sync_wal = true;
        w->sync_wal_seq = seq;
    } else if (had_soft) {
        char reason[256];
        snprintf(reason, sizeof reason, "a database commit failed: %.200s", st->last_error);
        fail_locked(w, reason);
    }
    w->commit_asked = false;
    pthread_cond_broadcast(&w->committed);
    uint64_t durable = w->durable_seq;
    pthread_mutex_unlock(&w->lock);
    if (err == KP_OK && w->log) kp_oplog_commit_point(w->log, durable);
    if (err && had_soft)
        fprintf(stderr, "kopilka: a database commit failed (%s); acknowledged work is in the "
                        "operation log: writes are refused until a restart recovers it\n",
                st->last_error);
    return err;
}

static void *writer_main(void *arg)
{
    kp_writer *w = arg;
    pthread_setname_np(pthread_self(), "kp-writer");
    for (;;) {
        pthread_mutex_lock(&w->lock);
        bool idle = false;
        while (w->head == NULL && !w->stop && !w->commit_asked) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            if (w->txn_open) {
                ts.tv_nsec += COMMIT_IDLE_NS;
                if (ts.tv_nsec >= 1000000000L) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000L;
                }
            } else {
                ts.tv_sec += 1;
            }
            pthread_cond_timedwait(&w->wake, &w->lock, &ts);
            if (w->head == NULL && !w->stop && !w->commit_asked) {
                idle = true; /* commit an open transaction; refresh the program */
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
        bool asked = w->commit_asked, stopping = w->stop, failed = w->failed;
        pthread_mutex_unlock(&w->lock);

        /* A new program version is picked up within a second (or at once
         * when idle), without a query per batch. */
        uint64_t t_now = now_ns();
        if (batch == NULL || t_now - (uint64_t)w->program_checked_ns > 1000000000u) {
            kp_error e;
            kp_programs_refresh(w->programs, w->store, &e);
            w->program_checked_ns = (kp_time)t_now;
        }
        if (batch == NULL) {
            if (w->txn_open && (asked || idle || stopping)) {
                hard_commit(w);
                pthread_mutex_lock(&w->lock);
                pthread_cond_signal(&w->wake_syncer);
                pthread_mutex_unlock(&w->lock);
            }
            if (stopping && !w->txn_open) break;
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

        uint64_t t0 = now_ns(), t1 = t0;
        kp_err err = KP_OK;
        if (!w->txn_open) {
            err = w->store->ops->begin(w->store);
            if (err == KP_OK) {
                w->txn_open = true;
                w->txn_start_ns = t0;
            }
        }
        bool hard = w->log == NULL || asked || stopping;
        if (err == KP_OK) {
            for (kp_job *j = batch; j; j = j->next) {
                run_job(w, j);
                if (j->err == KP_OK && !j->replayed && !hard && !journal_job(w, j)) hard = true;
            }
            t1 = now_ns();
            hard = hard || w->txn_ops + n > TXN_OPS_MAX || t1 - w->txn_start_ns > COMMIT_EVERY_NS;
            unsigned files = 0;
            uint64_t seq = 0;
            if (hard) {
                err = hard_commit(w);
            } else {
                kp_error e;
                err = kp_oplog_write(w->log, &files, &seq, &e);
                if (err) {
                    /* Earlier batches' work is acknowledged and only in the
                     * log and this transaction: roll back and refuse writes
                     * until a restart replays the log. */
                    fprintf(stderr, "kopilka: %s; writes are refused until a restart\n",
                            e.message);
                    kp_oplog_discard(w->log);
                    w->store->ops->rollback(w->store);
                    w->txn_open = false;
                    pthread_mutex_lock(&w->lock);
                    fail_locked(w, e.message);
                    pthread_cond_broadcast(&w->committed);
                    pthread_mutex_unlock(&w->lock);
                } else {
                    w->txn_ops += n;
                    w->soft_batches++;
                    pthread_mutex_lock(&w->lock);
                    w->sync_files |= files;
                    if (files) w->open_seq = seq;
                    pthread_mutex_unlock(&w->lock);
                }
            }
        }
        w->batches++;
        w->jobs += n;
        kp_histogram_observe(&w->group_sizes, n);
        w->exec_ns += t1 - t0;
        w->commit_ns += now_ns() - t1;
        if (err) {
            fprintf(stderr, "kopilka: a batch of %zu operations failed to commit: %s\n", n,
                    w->store->last_error);
            for (kp_job *j = batch; j; j = j->next)
                if (j->err == KP_OK) job_fail(j, KP_ERR_IO, OUTCOME_UNKNOWN);
        }
        /* Wake exactly the requesters of this batch, each on its own
         * condition (a broadcast would wake every waiting thread): at once
         * when it failed, after the sync when it was written. */
        pthread_mutex_lock(&w->lock);
        kp_job *async = NULL;
        if (err || !w->syncer_running) {
            async = complete_locked(batch);
        } else {
            if (w->sync_tail) w->sync_tail->next = batch;
            else w->sync_head = batch;
            w->sync_tail = last;
            pthread_cond_signal(&w->wake_syncer);
        }
        pthread_mutex_unlock(&w->lock);
        finish_async(async);
    }
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
    uint64_t target = w->open_seq;
    /* Bounded: each round trip is one commit of the writer, which resets
     * commit_asked; a failed or stopping writer ends the wait. */
    while (w->committed_seq < target && !w->failed && !w->stop) {
        w->commit_asked = true;
        pthread_cond_signal(&w->wake);
        pthread_cond_wait(&w->committed, &w->lock);
    }
    pthread_mutex_unlock(&w->lock);
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

static void first_problem(void *ctx, const char *line)
{
    char *first = ctx;
    if (first[0] == '\0') snprintf(first, 256, "%s", line);
}

/* SQLite's quick check of the whole file before the server takes any work:
 * a database with damaged pages is refused at start, not found out by the
 * purchase that reads the bad page. */
static kp_err check_database(kp_store *st, const char *db_path, kp_error *e)
{
    /* Databases made before Kopilka created them 0600 may be readable by
     * others: say so (changing the mode could break a backup user's access). */
    struct stat sb;
    if (stat(db_path, &sb) == 0 && (sb.st_mode & 077) != 0)
        fprintf(stderr, "kopilka: warning: %s is readable or writable by others (mode %04o) "
                        "though it holds password hashes, the audit log and balances: "
                        "chmod 600 it and its -wal and -shm files\n",
                db_path, (unsigned)(sb.st_mode & 07777));
    char first[256] = "";
    int64_t problems = 0;
    kp_err err = st->ops->integrity(st, false, first_problem, first, &problems);
    if (err)
        return kp_error_set(e, err, "database", "cannot check %s: %s", db_path, st->last_error);
    if (problems == 0) return KP_OK;
    fprintf(stderr, "kopilka: %s failed SQLite's quick check (problems: %lld; the first: %s). "
                    "Not started; nothing was changed. Run `kopilka verify %s --full` for the "
                    "list, then restore the database from its last good backup "
                    "(docs/architecture.md, \"A damaged database\")\n",
            db_path, (long long)problems, first, db_path);
    return kp_error_set(e, KP_ERR_IO, "database",
                        "the database file is damaged (problems found by SQLite's quick "
                        "check: %lld); not started", (long long)problems);
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
    if ((err = check_database(w->store, db_path, e))) {
        kp_store_close(w->store);
        free(w);
        return err;
    }
    w->scratch = kp_scratch_new();
    w->programs = programs;
    kp_histogram_init(&w->group_sizes, group_size_bounds,
                      sizeof group_size_bounds / sizeof group_size_bounds[0]);
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
    pthread_cond_init(&w->wake_checkpointer, NULL);
    pthread_cond_init(&w->wake_syncer, NULL);
    pthread_cond_init(&w->committed, NULL);
    kp_buf_init(&w->record, KP_OPLOG_RECORD_MAX);
    /* The log first: what a crash left in it goes into the database before
     * anything else reads or writes, with a durable commit. The lock on it
     * keeps a second server (or a CLI's recovery) off this database. */
    size_t recovered = 0;
    if ((err = kp_durable_open_log(w->store, db_path, &w->log, &recovered, e))) goto fail;
    if (recovered)
        fprintf(stderr, "kopilka: recovered %zu operations from the operation log\n", recovered);
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
    } else {
        /* Nobody would sync the log: every batch commits the database. */
        kp_oplog_close(w->log);
        w->log = NULL;
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
    kp_oplog_close(w->log);
    kp_buf_release(&w->record);
    kp_scratch_free(w->scratch);
    free(w);
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
                "%.1f us of work per operation, %.2f ms per commit, %llu syncs; "
                "%llu batches in the operation log, %llu database commits\n",
                (unsigned long long)w->jobs, (unsigned long long)w->batches,
                (double)w->jobs / (double)w->batches,
                w->jobs ? (double)w->exec_ns / 1e3 / (double)w->jobs : 0.0,
                (double)w->commit_ns / 1e6 / (double)w->batches, (unsigned long long)w->syncs,
                (unsigned long long)w->soft_batches, (unsigned long long)w->hard_commits);
    kp_store_close(w->store);
    kp_oplog_close(w->log);
    kp_buf_release(&w->record);
    kp_scratch_free(w->scratch);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->wake);
    pthread_cond_destroy(&w->wake_checkpointer);
    pthread_cond_destroy(&w->wake_syncer);
    pthread_cond_destroy(&w->committed);
    free(w);
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
