/*
 * keyring.c: terminal keys in memory (keyring.h).
 *
 * A till sends its key with every request, so the store of a key is cached:
 * one BLAKE2b hash and a scan of at most KEYRING_CAP hashes under a read
 * lock; a key not cached is read on the keyring's own connection. A revocation or rotation commits a new "terminal generation" in the
 * database in the same transaction (kp_store_ops.terminal_change). Once per
 * KP_KEYRING_POLL_NS, one request thread (the one that wins a compare-and-
 * swap and the poll lock; the others never wait) reads the generation on
 * the keyring's own connection (so a poll never waits for a reader busy
 * with quotes), and when it moved, the cache is emptied: the next request of
 * every key reads its row again, and a revoked one finds none. Polling by
 * time, not per request, keeps the cost at most about a thousand small
 * reads a second whatever the load; the price is that a key revoked by
 * another process may pass for up to a millisecond more. A revocation
 * made through this server empties the cache itself (kp_keyring_forget).
 *
 * "Last used" is an atomic second in the cache entry, written only when the
 * second changes. A thread wakes every KP_KEYRING_FLUSH_SECONDS and hands
 * the writer one job raising last_used_at of the terminals used since; an
 * emptied cache first moves its unwritten times to a bounded pending list
 * (past PENDING_CAP terminals a time waits for the key's next use).
 */
#include "keyring.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
    KEYRING_CAP = 1024, /* keys cached; past it the cache starts over */
    PENDING_CAP = 1024, /* unwritten "last used" times of forgotten keys */
};

typedef struct entry {
    uint8_t hash[32];
    int64_t id;
    char store[KP_STR_MAX];
    _Atomic kp_time used_at;
    kp_time flushed_at; /* written by the flusher under the read lock (one flusher
                           at a time), read when emptying under the write lock */
} entry;

typedef struct usage {
    int64_t id;
    kp_time at;
} usage;

struct kp_keyring {
    kp_server *srv;
    pthread_rwlock_t lock; /* entries, n, epoch */
    size_t n;
    uint64_t epoch; /* grows at each emptying: a lookup begun before does not refill */
    entry entries[KEYRING_CAP];
    _Atomic int64_t generation;
    _Atomic int64_t polled_ns;
    pthread_mutex_t poll_lock; /* the poll connection, one user at a time */
    kp_store *poll;            /* reads the terminal generation */

    pthread_mutex_t pending_lock;
    size_t n_pending;
    usage pending[PENDING_CAP];

    pthread_mutex_t flush_lock; /* one flush at a time; taken before `lock` */
    usage flushing[KEYRING_CAP + PENDING_CAP]; /* the flush's list, under flush_lock */
    pthread_mutex_t wake_lock;
    pthread_cond_t wake;
    bool stop;
    pthread_t thread;
};

static int64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void pending_add(kp_keyring *k, int64_t id, kp_time at)
{
    pthread_mutex_lock(&k->pending_lock);
    size_t i = 0;
    while (i < k->n_pending && k->pending[i].id != id) i++;
    if (i < k->n_pending) {
        if (k->pending[i].at < at) k->pending[i].at = at;
    } else if (k->n_pending < PENDING_CAP) {
        k->pending[k->n_pending++] = (usage){id, at};
    }
    pthread_mutex_unlock(&k->pending_lock);
}

/* Empties the cache; the caller holds the write lock. */
static void empty_locked(kp_keyring *k)
{
    for (size_t i = 0; i < k->n; i++) {
        kp_time used = atomic_load_explicit(&k->entries[i].used_at, memory_order_relaxed);
        if (used > k->entries[i].flushed_at) pending_add(k, k->entries[i].id, used);
    }
    k->n = 0;
    k->epoch++;
}

void kp_keyring_forget(kp_keyring *k)
{
    pthread_rwlock_wrlock(&k->lock);
    empty_locked(k);
    pthread_rwlock_unlock(&k->lock);
}

/* Empties the cache when the database's terminal generation moved; at most
 * once per KP_KEYRING_POLL_NS, by one thread. */
static void poll_generation(kp_keyring *k)
{
    int64_t now = monotonic_ns();
    int64_t last = atomic_load_explicit(&k->polled_ns, memory_order_relaxed);
    if (now - last < KP_KEYRING_POLL_NS) return;
    if (!atomic_compare_exchange_strong(&k->polled_ns, &last, now)) return;
    if (pthread_mutex_trylock(&k->poll_lock) != 0) return; /* the last poll is still on */
    int64_t generation = 0;
    kp_err err = k->poll->ops->terminal_generation(k->poll, &generation);
    pthread_mutex_unlock(&k->poll_lock);
    if (err || generation == atomic_load(&k->generation)) return;
    pthread_rwlock_wrlock(&k->lock);
    empty_locked(k);
    atomic_store(&k->generation, generation);
    pthread_rwlock_unlock(&k->lock);
}

bool kp_keyring_check(kp_keyring *k, const char *key, kp_time now, kp_terminal *out)
{
    size_t len = strlen(key);
    if (len == 0 || len > 128) return false;
    uint8_t hash[32];
    kp_service_key_hash(key, hash);
    poll_generation(k);
    bool found = false;
    pthread_rwlock_rdlock(&k->lock);
    uint64_t epoch = k->epoch;
    for (size_t i = 0; i < k->n && !found; i++) {
        entry *en = &k->entries[i];
        if (memcmp(en->hash, hash, 32) != 0) continue;
        found = true;
        out->id = en->id;
        memcpy(out->store, en->store, KP_STR_MAX);
        if (atomic_load_explicit(&en->used_at, memory_order_relaxed) < now)
            atomic_store_explicit(&en->used_at, now, memory_order_relaxed);
    }
    pthread_rwlock_unlock(&k->lock);
    if (found) return true;

    /* A miss reads the row on the keyring's own connection, not a reader's:
     * a reader first makes the writer commit its open transaction (so that
     * lookups see every answered purchase), and an unknown key, which any
     * client can send, must not force a commit. Terminal rows are written
     * by jobs the writer commits at once, or by other processes, so this
     * connection sees them without that barrier. */
    kp_terminal t;
    pthread_mutex_lock(&k->poll_lock);
    kp_err err = k->poll->ops->terminal_find(k->poll, hash, &t);
    pthread_mutex_unlock(&k->poll_lock);
    if (err != KP_OK) return false;
    out->id = t.id;
    memcpy(out->store, t.store, KP_STR_MAX);
    pthread_rwlock_wrlock(&k->lock);
    /* Emptied since the row was read: it may be the row of a key revoked
     * meanwhile, so it is not cached (the next request reads it again). */
    if (k->epoch == epoch) {
        if (k->n == KEYRING_CAP) empty_locked(k);
        entry *en = &k->entries[k->n++];
        memcpy(en->hash, hash, 32);
        en->id = t.id;
        memcpy(en->store, t.store, KP_STR_MAX);
        atomic_store_explicit(&en->used_at, now, memory_order_relaxed);
        en->flushed_at = t.last_used_at;
    } else {
        pending_add(k, t.id, now);
    }
    pthread_rwlock_unlock(&k->lock);
    return true;
}

/* ---- writing "last used" */

typedef struct flush_call {
    usage *items;
    size_t n;
} flush_call;

static kp_err run_flush(void *ctx, kp_store *st, const kp_program *program, kp_scratch *sc,
                        kp_buf *out, bool *replayed, kp_error *e)
{
    (void)program, (void)sc, (void)out, (void)replayed;
    flush_call *c = ctx;
    for (size_t i = 0; i < c->n; i++) {
        kp_err err = st->ops->terminal_touch(st, c->items[i].id, c->items[i].at);
        if (err) return kp_error_set(e, err, "", "storage failed: %s", st->last_error);
    }
    return KP_OK;
}

static void flush(kp_keyring *k)
{
    usage *items = k->flushing;
    size_t n = 0;
    pthread_mutex_lock(&k->flush_lock);
    pthread_rwlock_rdlock(&k->lock);
    for (size_t i = 0; i < k->n; i++) {
        kp_time used = atomic_load_explicit(&k->entries[i].used_at, memory_order_relaxed);
        if (used <= k->entries[i].flushed_at) continue;
        items[n++] = (usage){k->entries[i].id, used};
        k->entries[i].flushed_at = used;
    }
    pthread_rwlock_unlock(&k->lock);
    pthread_mutex_lock(&k->pending_lock);
    for (size_t i = 0; i < k->n_pending; i++) items[n++] = k->pending[i];
    k->n_pending = 0;
    pthread_mutex_unlock(&k->pending_lock);
    if (n > 0) {
        flush_call call = {items, n};
        kp_buf out;
        kp_buf_init(&out, 4096);
        kp_buf_reserve(&out, 256);
        kp_job job;
        memset(&job, 0, sizeof job);
        job.type = KP_JOB_CALL;
        job.store = "";
        job.call = run_flush;
        job.ctx = &call;
        job.out = &out;
        job.now = kp_clock_now(&k->srv->config.clock);
        kp_writer_submit(k->srv->writer, &job);
        if (job.err)
            fprintf(stderr, "kopilka: terminal keys: \"last used\" not written: %s\n",
                    job.error.message);
        kp_buf_release(&out);
    }
    pthread_mutex_unlock(&k->flush_lock);
}

static void *flush_main(void *arg)
{
    kp_keyring *k = arg;
    pthread_mutex_lock(&k->wake_lock);
    while (!k->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += KP_KEYRING_FLUSH_SECONDS;
        while (!k->stop)
            if (pthread_cond_timedwait(&k->wake, &k->wake_lock, &until) == ETIMEDOUT) break;
        if (k->stop) break;
        pthread_mutex_unlock(&k->wake_lock);
        flush(k);
        pthread_mutex_lock(&k->wake_lock);
    }
    pthread_mutex_unlock(&k->wake_lock);
    return NULL;
}

/* Closes the poll connection and frees k with its locks (no thread runs). */
static void keyring_free(kp_keyring *k)
{
    if (k->poll) kp_store_close(k->poll);
    pthread_mutex_destroy(&k->poll_lock);
    pthread_rwlock_destroy(&k->lock);
    pthread_mutex_destroy(&k->pending_lock);
    pthread_mutex_destroy(&k->flush_lock);
    pthread_mutex_destroy(&k->wake_lock);
    pthread_cond_destroy(&k->wake);
    free(k);
}

kp_err kp_keyring_start(kp_server *srv, kp_keyring **out, kp_error *e)
{
    *out = NULL;
    kp_keyring *k = calloc(1, sizeof *k);
    if (k == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    k->srv = srv;
    pthread_rwlock_init(&k->lock, NULL);
    pthread_mutex_init(&k->pending_lock, NULL);
    pthread_mutex_init(&k->flush_lock, NULL);
    pthread_mutex_init(&k->wake_lock, NULL);
    pthread_cond_init(&k->wake, NULL);
    pthread_mutex_init(&k->poll_lock, NULL);
    /* The generation now: keys cached from here on are checked against it. */
    int64_t generation = 0;
    kp_err err = kp_store_open(srv->config.db_path, false, &k->poll, e);
    if (err == KP_OK && (err = k->poll->ops->terminal_generation(k->poll, &generation)))
        kp_error_set(e, err, "database", "%s", k->poll->last_error);
    atomic_store(&k->generation, generation);
    atomic_store(&k->polled_ns, monotonic_ns());
    if (err == KP_OK && pthread_create(&k->thread, NULL, flush_main, k) != 0)
        err = kp_error_set(e, KP_ERR_NOMEM, "", "cannot start the terminal keys' thread");
    if (err) {
        keyring_free(k);
        return err;
    }
    *out = k;
    return KP_OK;
}

void kp_keyring_stop(kp_keyring *k)
{
    if (k == NULL) return;
    pthread_mutex_lock(&k->wake_lock);
    k->stop = true;
    pthread_cond_signal(&k->wake);
    pthread_mutex_unlock(&k->wake_lock);
    pthread_join(k->thread, NULL);
    flush(k);
    keyring_free(k);
}
