/*
 * chunks.c: a long job's writes in transactions of bounded length, so the
 * server's writer gets the database's write lock between them (chunks.h).
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
}

kp_err kp_chunks_begin(kp_chunks *ch, kp_error *e)
{
    if (ch->open) return KP_OK;
    kp_err err = ch->st->ops->begin(ch->st);
    if (err) return store_failed(ch, err, e);
    ch->open = true;
    ch->began_ns = mono_ns();
    return KP_OK;
}

static kp_err commit_chunk(kp_chunks *ch, kp_error *e)
{
    kp_err err = ch->st->ops->commit(ch->st);
    ch->open = false;
    if (err) {
        ch->st->ops->rollback(ch->st);
        return store_failed(ch, err, e);
    }
    uint64_t held = mono_ns() - ch->began_ns;
    if (held > ch->hold_ns_max) ch->hold_ns_max = held;
    ch->commits++;
    ch->done += ch->pending;
    ch->pending = 0;
    if (ch->committed) ch->committed(ch->ctx, ch->done, ch->total);
    return KP_OK;
}

kp_err kp_chunks_step(kp_chunks *ch, int64_t rows, kp_error *e)
{
    ch->pending += rows;
    if (ch->pending < KP_CHUNK_ROWS_MAX && mono_ns() - ch->began_ns < KP_CHUNK_BUDGET_NS)
        return KP_OK;
    kp_err err = commit_chunk(ch, e);
    if (err) return err;
    /* A writer waiting for the lock polls every half millisecond
     * (store_sqlite.c); beginning again at once would take the lock before
     * it looks. */
    struct timespec pause = {0, KP_CHUNK_PAUSE_NS};
    nanosleep(&pause, NULL);
    return kp_chunks_begin(ch, e);
}

kp_err kp_chunks_end(kp_chunks *ch, kp_err err, kp_error *e)
{
    if (!ch->open) return err;
    if (err) {
        ch->st->ops->rollback(ch->st);
        ch->open = false;
        ch->pending = 0;
        return err;
    }
    return commit_chunk(ch, e);
}
