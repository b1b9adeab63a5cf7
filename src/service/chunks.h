/*
 * chunks.h: long CLI jobs (issuing a million cards, importing a hundred
 * thousand customers) that write while `kopilka serve` runs on the same
 * database, without stalling its tills.
 *
 * SQLite has one write lock. The server's writer takes it for every group
 * of purchases (docs/architecture.md); a CLI job that held it for the whole
 * job made every till wait for the job, and past the writer's 10 s busy
 * wait answer 503. A kp_chunks cuts a job into transactions of bounded
 * length instead: the job calls kp_chunks_step() after each row, which
 * commits once the open transaction has worked KP_CHUNK_BUDGET_NS (or
 * holds KP_CHUNK_ROWS_MAX rows), syncs the journal with the lock already
 * released (each chunk is a group of the store's kp_group_ops, opened
 * without redo, as the server's writer uses it: ended with publish, synced
 * every KP_CHUNK_SYNC_EVERY_NS and at the end, not at every chunk), leaves
 * the lock free for at least KP_CHUNK_PAUSE_NS so a waiting writer gets
 * it, and begins the next.
 * So a till waits at most about one chunk (a few milliseconds), and the
 * job runs at nearly its full speed when nobody else writes.
 *
 * Nobody else writing for KP_CHUNK_ALONE_AFTER_NS (the store's
 * kp_group_ops.alone: no other connection committed since the chunk
 * before), each chunk may work twice as long as the one before, up to
 * KP_CHUNK_BUDGET_ALONE_NS (tills that buy even once a second keep the
 * chunks short); the first commit of anyone else (a server's writer,
 * another job) brings the budget back to KP_CHUNK_BUDGET_NS at the next
 * chunk. Each commit rewrites the random index pages its rows touched, so
 * longer chunks write less (an import of customers: about 20 % less CPU
 * with 200 ms, 40 % with 1 s). The price: a till's first purchase after a
 * silence may wait up to one long chunk; the next ones, one short chunk
 * (bench/README.md, "Importing customers").
 *
 * Each sync reports progress to the caller (rows durable so far, of the
 * total) through `committed`, so a CLI prints a progress line and anything
 * it must only show for durable work (the numbers of issued cards). The
 * service layer never prints.
 *
 * A job in chunks is not all or nothing: what was committed stays when the
 * job fails or is killed. Each job says what it promises then (cards
 * issued so far exist; an import re-run completes, docs/import.md).
 */
#ifndef KOPILKA_CHUNKS_H
#define KOPILKA_CHUNKS_H

#include <stdbool.h>
#include <stdint.h>

#include <kopilka/kopilka.h>
#include <kopilka/store.h>

enum {
    KP_CHUNK_BUDGET_NS = 5 * 1000 * 1000,       /* work in one transaction before its commit */
    KP_CHUNK_BUDGET_ALONE_NS = 200 * 1000 * 1000, /* ... at most, while nobody else writes */
    KP_CHUNK_ALONE_AFTER_NS = 1000 * 1000 * 1000, /* ... for this long */
    KP_CHUNK_ROWS_MAX = 20000,                  /* ... and at most this many rows */
    KP_CHUNK_PAUSE_NS = 1000 * 1000,            /* the lock left free between two chunks */
    KP_CHUNK_SYNC_EVERY_NS = 250 * 1000 * 1000, /* committed chunks made durable this often */
};

/* Called when committed chunks became durable: `done` rows of `total`. */
typedef void (*kp_chunks_committed_fn)(void *ctx, int64_t done, int64_t total);

typedef struct kp_chunks {
    kp_store *st;
    int64_t total;        /* rows the job expects (for progress; may be 0) */
    int64_t done;         /* rows committed and durable (reported) */
    int64_t unsynced;     /* rows committed, their journal not yet synced */
    int64_t pending;      /* rows in the open transaction */
    uint64_t began_ns;    /* when the open transaction began (CLOCK_MONOTONIC) */
    uint64_t released_ns; /* when the last commit let the lock go */
    uint64_t synced_ns;   /* when the journal was last synced */
    uint64_t hold_ns_max; /* the longest a chunk held the lock: begin to commit */
    uint64_t budget_ns;   /* of the open chunk: KP_CHUNK_BUDGET_NS, more while alone */
    uint64_t alone_since_ns; /* nobody else has committed since then */
    int64_t commits;
    bool open;
    bool grouped;     /* the connection is a group writer (kp_group_ops) */
    bool deferred;    /* ... whose commits are made durable by sync() */
    uint64_t ticket;  /* of the last chunk committed, for sync() */
    kp_chunks_committed_fn committed;
    void *ctx;
} kp_chunks;

/* Prepares *ch; begins nothing. `committed` may be NULL. */
void kp_chunks_init(kp_chunks *ch, kp_store *st, int64_t total, kp_chunks_committed_fn committed,
                    void *ctx);
/* Begins the first transaction (waiting for the lock as any write does). */
kp_err kp_chunks_begin(kp_chunks *ch, kp_error *e);
/* Counts `rows` written in the open transaction; commits it and begins the
 * next when the chunk's budget is spent. */
kp_err kp_chunks_step(kp_chunks *ch, int64_t rows, kp_error *e);
/* Ends the job: commits the open transaction when err is KP_OK, rolls it
 * back otherwise; either way the chunks committed are synced and reported
 * (a failed job keeps them), and the connection is an ordinary one again.
 * Returns err, or the commit's error. Calling it again does nothing. */
kp_err kp_chunks_end(kp_chunks *ch, kp_err err, kp_error *e);

#endif
