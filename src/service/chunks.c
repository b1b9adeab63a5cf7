/*
 * chunks.c: a long job's writes in transactions of bounded length, so the
 * server's writer gets the database's write lock between them (chunks.h).
 * Each chunk is a group of the store's kp_group_ops (store.h) when the
 * backend has them: its commit publishes at once, and its sync is deferred
 * (SQLite: the WAL's fdatasync, outside the lock).
 */
#include "chunks.h"

#include <string.h>
#include <time.h>

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static kp_err store_failed(kp_chunks *ch, kp_err err, kp_error *e)
{
    return kp_error_set(e, err, "database", "%s", ch->st->last_error);
}

void kp_chunks_init(kp_chunks *ch, kp_store *st, int64_t total, kp_chunks_committed_fn committed,
                    void *ctx)
{
    memset(ch, 0, sizeof *ch);
    ch->st = st;
    ch->total = total;
    ch->committed = committed;
    ch->ctx = ctx;
    ch->budget_ns = KP_CHUNK_BUDGET_NS;
    ch->alone_since_ns = mono_ns(); /* a second alone counts from here at the earliest */
}

kp_err kp_chunks_begin(kp_chunks *ch, kp_error *e)
{
    if (ch->open) return KP_OK;
    const kp_group_ops *g = ch->st->ops->group;
    if (!ch->grouped && g) {
        kp_err err = g->open(ch->st, NULL, NULL, NULL, NULL, e);
        if (err) return err;
        ch->grouped = true;
        ch->deferred = g->sync != NULL;
    }
    kp_err err = ch->grouped ? g->begin(ch->st) : ch->st->ops->begin(ch->st);
    if (err) return store_failed(ch, err, e);
    ch->open = true;
    /* Longer chunks while nobody else writes; short again at once when
     * someone did (chunks.h). */
    uint64_t now = mono_ns();
    if (ch->budget_ns == 0 || !ch->grouped || g->alone == NULL || !g->alone(ch->st)) {
        ch->budget_ns = KP_CHUNK_BUDGET_NS;
        ch->alone_since_ns = now;
    } else if (now - ch->alone_since_ns >= KP_CHUNK_ALONE_AFTER_NS) {
        ch->budget_ns = ch->budget_ns < KP_CHUNK_BUDGET_ALONE_NS / 2 ? ch->budget_ns * 2
                                                                     : KP_CHUNK_BUDGET_ALONE_NS;
    }
    ch->began_ns = now;
    if (ch->synced_ns == 0) ch->synced_ns = ch->began_ns;
    return KP_OK;
}

/* Makes the committed chunks durable and reports them. */
static kp_err sync_chunks(kp_chunks *ch, kp_error *e)
{
    const kp_group_ops *g = ch->st->ops->group;
    if (ch->deferred) {
        kp_err err = g->sync(ch->st, ch->ticket, e);
        if (err) return err;
    }
    /* The backend's upkeep now, with the lock free (SQLite: copy the
     * journal into the database rather than let the automatic checkpoint
     * run inside a later commit once the journal is long), as the server's
     * upkeep thread does. */
    if (ch->grouped && g->upkeep) g->upkeep(ch->st);
    ch->synced_ns = mono_ns();
    ch->done += ch->unsynced;
    ch->unsynced = 0;
    if (ch->committed) ch->committed(ch->ctx, ch->done, ch->total);
    return KP_OK;
}

/* Commits the open chunk; syncs the journal (with the lock already
 * released, as the server's writer does, so a slow disk does not lengthen
 * the tills' wait) at the last chunk and every KP_CHUNK_SYNC_EVERY_NS. */
static kp_err commit_chunk(kp_chunks *ch, bool last, kp_error *e)
{
    kp_err err;
    if (ch->grouped) {
        bool published = false;
        err = ch->st->ops->group->end(ch->st, true, &ch->ticket, &published);
    } else {
        err = ch->st->ops->commit(ch->st);
        if (err) ch->st->ops->rollback(ch->st);
    }
    ch->open = false;
    if (err) {
        ch->pending = 0;
        return store_failed(ch, err, e);
    }
    ch->released_ns = mono_ns();
    uint64_t held = ch->released_ns - ch->began_ns;
    if (held > ch->hold_ns_max) ch->hold_ns_max = held;
    ch->commits++;
    ch->unsynced += ch->pending;
    ch->pending = 0;
    if (last || !ch->deferred || ch->released_ns - ch->synced_ns >= KP_CHUNK_SYNC_EVERY_NS)
        return sync_chunks(ch, e);
    return KP_OK;
}

kp_err kp_chunks_step(kp_chunks *ch, int64_t rows, kp_error *e)
{
    ch->pending += rows;
    if (ch->pending < KP_CHUNK_ROWS_MAX && mono_ns() - ch->began_ns < ch->budget_ns)
        return KP_OK;
    kp_err err = commit_chunk(ch, false, e);
    if (err) return err;
    /* A writer waiting for the lock polls every half millisecond
     * (store_sqlite.c); beginning again at once would take the lock before
     * it looks. A sync of the journal counts towards the pause. */
    uint64_t free_ns = mono_ns() - ch->released_ns;
    if (free_ns < KP_CHUNK_PAUSE_NS) {
        struct timespec pause = {0, (long)(KP_CHUNK_PAUSE_NS - free_ns)};
        nanosleep(&pause, NULL);
    }
    return kp_chunks_begin(ch, e);
}

kp_err kp_chunks_end(kp_chunks *ch, kp_err err, kp_error *e)
{
    if (err == KP_OK && ch->open) {
        err = commit_chunk(ch, true, e);
    } else if (err == KP_OK) {
        if (ch->unsynced) err = sync_chunks(ch, e);
    } else if (ch->unsynced) {
        /* The chunks committed before the failure stay: make them durable
         * and report them (the job's error is the one returned). */
        kp_error ignored = {0};
        sync_chunks(ch, &ignored);
    }
    if (ch->grouped) {
        /* Drops the chunk still open after a failure, as rollback would. */
        ch->st->ops->group->close(ch->st);
        ch->grouped = ch->deferred = false;
    } else if (ch->open) {
        ch->st->ops->rollback(ch->st);
    }
    ch->open = false;
    ch->pending = 0;
    return err;
}
