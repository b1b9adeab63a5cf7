/*
 * oplog.c: the operation log's files (include/kopilka/oplog.h): records
 * appended in memory, written with one pwrite per group, fdatasync'd by the
 * caller's sync thread, replayed after a crash.
 */
#define _GNU_SOURCE
#include <kopilka/oplog.h>

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

enum { HEADER = 32, MAGIC = 0x4c4f504b /* "KPOL" */, HASH = 16 };

struct kp_oplog {
    uint8_t key[16];
    int fd[2];
    char path[2][4096];
    int cur;              /* the file being written */
    uint64_t off;         /* where the next write goes in fd[cur] */
    uint64_t seq;         /* last sequence number written */
    uint64_t other_max;   /* last sequence number in the other file */
    uint64_t switch_bytes;
    /* records queued by add(): payloads with room for their headers */
    uint8_t *pending;
    size_t len, cap, n;
};

static void put_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put_u64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get_u64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static size_t padded(size_t len) { return (len + 7) & ~(size_t)7; }

/* BLAKE2b-128 of magic, length, sequence number and payload. */
static void record_hash(const kp_oplog *log, const uint8_t *header, const uint8_t *payload,
                        size_t len, uint8_t out[HASH])
{
    crypto_generichash_state h;
    crypto_generichash_init(&h, log->key, sizeof log->key, HASH);
    crypto_generichash_update(&h, header, 16);
    crypto_generichash_update(&h, payload, len);
    crypto_generichash_final(&h, out, HASH);
}

kp_err kp_oplog_open(const char *db_path, const uint8_t key[16], kp_oplog **out, kp_error *e)
{
    *out = NULL;
    if (sodium_init() < 0) return kp_error_set(e, KP_ERR_INTERNAL, "", "libsodium failed");
    kp_oplog *log = calloc(1, sizeof *log);
    if (log == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    log->fd[0] = log->fd[1] = -1;
    memcpy(log->key, key, sizeof log->key);
    log->switch_bytes = KP_OPLOG_SWITCH_BYTES;
    kp_err err = KP_OK;
    for (int i = 0; i < 2 && err == KP_OK; i++) {
        int n = snprintf(log->path[i], sizeof log->path[i], "%s.oplog-%d", db_path, i);
        if (n < 0 || (size_t)n >= sizeof log->path[i]) {
            err = kp_error_set(e, KP_ERR_INVALID, "database", "the database path is too long");
            break;
        }
        log->fd[i] = open(log->path[i], O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (log->fd[i] < 0) {
            err = kp_error_set(e, KP_ERR_IO, "database", "cannot open %s: %s", log->path[i],
                               strerror(errno));
            break;
        }
        /* The lock on file 0 is the ownership of the whole log. */
        if (i == 0 && flock(log->fd[0], LOCK_EX | LOCK_NB) != 0)
            err = errno == EWOULDBLOCK
                      ? kp_error_set(e, KP_ERR_BUSY, "database",
                                     "%s is in use by another process (a running `kopilka "
                                     "serve`?)", db_path)
                      : kp_error_set(e, KP_ERR_IO, "database", "cannot lock %s: %s",
                                     log->path[0], strerror(errno));
    }
    if (err) {
        kp_oplog_close(log);
        return err;
    }
    *out = log;
    return KP_OK;
}

void kp_oplog_close(kp_oplog *log)
{
    if (log == NULL) return;
    for (int i = 0; i < 2; i++)
        if (log->fd[i] >= 0) close(log->fd[i]); /* also drops the lock */
    free(log->pending);
    free(log);
}

/* ------------------------------------------------------------------ replay */

typedef struct chain {
    uint8_t *data;   /* the whole file */
    size_t size;
    uint64_t first;  /* sequence number of the first record, 0 if none */
    uint64_t last;
    size_t pos;      /* offset of the next record to hand out */
} chain;

/* Reads a file and finds its chain: valid records with consecutive numbers
 * from offset 0. */
static kp_err chain_load(const kp_oplog *log, int i, chain *c, kp_error *e)
{
    memset(c, 0, sizeof *c);
    const char *path = log->path[i];
    int fd = log->fd[i];
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        return kp_error_set(e, KP_ERR_IO, "", "cannot read %s: %s", path, strerror(errno));
    c->size = (size_t)sb.st_size;
    if (c->size == 0) return KP_OK;
    c->data = malloc(c->size);
    if (c->data == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    size_t got = 0;
    while (got < c->size) {
        ssize_t r = pread(fd, c->data + got, c->size - got, (off_t)got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0)
            return kp_error_set(e, KP_ERR_IO, "", "cannot read %s: %s", path,
                                r < 0 ? strerror(errno) : "short read");
        got += (size_t)r;
    }
    size_t off = 0;
    uint64_t prev = 0;
    while (off + HEADER <= c->size) {
        const uint8_t *h = c->data + off;
        uint32_t len = get_u32(h + 4);
        uint64_t seq = get_u64(h + 8);
        if (get_u32(h) != MAGIC || len == 0 || len > KP_OPLOG_RECORD_MAX ||
            padded(len) > c->size - off - HEADER || seq == 0 || (prev && seq != prev + 1))
            break;
        uint8_t hash[HASH];
        record_hash(log, h, h + HEADER, len, hash);
        if (sodium_memcmp(hash, h + 16, HASH) != 0) break;
        if (prev == 0) c->first = seq;
        c->last = prev = seq;
        off += HEADER + padded(len);
    }
    return KP_OK;
}

/* Moves c->pos to the record numbered `seq`; false if the chain lacks it. */
static bool chain_seek(chain *c, uint64_t seq)
{
    if (c->first == 0 || seq < c->first || seq > c->last) return false;
    size_t off = 0;
    for (uint64_t s = c->first; s < seq; s++) off += HEADER + padded(get_u32(c->data + off + 4));
    c->pos = off;
    return true;
}

kp_err kp_oplog_replay(kp_oplog *log, uint64_t after, kp_oplog_fn fn, void *ctx, uint64_t *last,
                       kp_error *e)
{
    *last = after;
    chain c[2];
    kp_err err = KP_OK;
    memset(c, 0, sizeof c);
    for (int i = 0; i < 2 && err == KP_OK; i++) err = chain_load(log, i, &c[i], e);
    /* Follow the numbers across the two files: the chain holding `next`,
     * to its end, then the other one. Bounded: each step consumes one
     * record of a finite file. */
    uint64_t next = after + 1;
    while (err == KP_OK) {
        int at = chain_seek(&c[0], next) ? 0 : chain_seek(&c[1], next) ? 1 : -1;
        if (at < 0) break;
        chain *ch = &c[at];
        while (err == KP_OK && next <= ch->last) {
            const uint8_t *h = ch->data + ch->pos;
            uint32_t len = get_u32(h + 4);
            assert(get_u64(h + 8) == next);
            err = fn(ctx, next, h + HEADER, len, e);
            if (err == KP_OK) *last = next++;
            ch->pos += HEADER + padded(len);
        }
    }
    free(c[0].data);
    free(c[1].data);
    return err;
}

/* ------------------------------------------------------------------ writing */

void kp_oplog_start(kp_oplog *log, uint64_t seq)
{
    log->cur = 0;
    log->off = 0;
    log->seq = seq;
    log->other_max = seq;
    log->len = log->n = 0;
}

uint64_t kp_oplog_seq(const kp_oplog *log) { return log->seq; }

kp_err kp_oplog_add(kp_oplog *log, const void *data, size_t len, kp_error *e)
{
    if (len == 0 || len > KP_OPLOG_RECORD_MAX)
        return kp_error_set(e, KP_ERR_LIMIT, "", "an operation of %zu bytes is over the log's "
                            "limit of %d", len, KP_OPLOG_RECORD_MAX);
    size_t need = HEADER + padded(len);
    if (log->len + need > log->cap) {
        if (log->len + need > KP_OPLOG_PENDING_MAX)
            return kp_error_set(e, KP_ERR_BUSY, "", "too many operations waiting for the log");
        size_t cap = log->cap ? log->cap : 256 * 1024;
        while (cap < log->len + need) cap *= 2;
        uint8_t *p = realloc(log->pending, cap);
        if (p == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
        log->pending = p;
        log->cap = cap;
    }
    uint8_t *h = log->pending + log->len;
    memset(h, 0, need);
    put_u32(h, MAGIC);
    put_u32(h + 4, (uint32_t)len);
    memcpy(h + HEADER, data, len);
    log->len += need;
    log->n++;
    return KP_OK;
}

void kp_oplog_discard(kp_oplog *log) { log->len = log->n = 0; }

kp_err kp_oplog_write(kp_oplog *log, unsigned *files, uint64_t *last_seq, kp_error *e)
{
    *files = 0;
    *last_seq = log->seq;
    if (log->n == 0) return KP_OK;
    /* Number and seal each record now that the group is final. */
    uint64_t seq = log->seq;
    for (size_t off = 0; off < log->len;) {
        uint8_t *h = log->pending + off;
        uint32_t len = get_u32(h + 4);
        put_u64(h + 8, ++seq);
        record_hash(log, h, h + HEADER, len, h + 16);
        off += HEADER + padded(len);
    }
    int fd = log->fd[log->cur];
    size_t done = 0;
    while (done < log->len) {
        ssize_t w = pwrite(fd, log->pending + done, log->len - done, (off_t)(log->off + done));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0)
            return kp_error_set(e, KP_ERR_IO, "", "cannot write %s: %s", log->path[log->cur],
                                w < 0 ? strerror(errno) : "no space");
        done += (size_t)w;
    }
    log->off += log->len;
    log->seq = seq;
    log->len = log->n = 0;
    *files = 1u << log->cur;
    *last_seq = seq;
    return KP_OK;
}

kp_err kp_oplog_sync(kp_oplog *log, unsigned files, kp_error *e)
{
    for (int i = 0; i < 2; i++)
        if ((files & (1u << i)) && fdatasync(log->fd[i]) != 0)
            return kp_error_set(e, KP_ERR_IO, "", "cannot sync %s: %s", log->path[i],
                                strerror(errno));
    return KP_OK;
}

void kp_oplog_commit_point(kp_oplog *log, uint64_t durable_seq)
{
    if (log->off < log->switch_bytes || log->other_max > durable_seq) return;
    /* Everything in the other file is durable in the database: reuse it. */
    log->other_max = log->seq;
    log->cur ^= 1;
    log->off = 0;
}

void kp_oplog_set_switch_bytes(kp_oplog *log, uint64_t bytes) { log->switch_bytes = bytes; }
