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
    char db_path[4096];
    kp_oplog_damage damage; /* found by the last replay */
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
    snprintf(log->db_path, sizeof log->db_path, "%s", db_path);
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

/* A readable record found in one of the files. */
typedef struct found {
    uint64_t seq;
    uint64_t off;    /* of its header in its file */
    uint32_t len;    /* payload bytes */
    uint8_t file;
} found;

typedef struct scan {
    uint8_t *data[2]; /* the whole files */
    size_t size[2];
    found *rec;       /* readable records numbered above `after`, by number */
    size_t n, cap;
} scan;

static void scan_release(scan *s)
{
    free(s->data[0]);
    free(s->data[1]);
    free(s->rec);
    memset(s, 0, sizeof *s);
}

/* True when a whole record with a good hash starts at p (room bytes left). */
static bool record_valid(const kp_oplog *log, const uint8_t *p, size_t room)
{
    if (room < HEADER || get_u32(p) != MAGIC) return false;
    uint32_t len = get_u32(p + 4);
    if (len == 0 || len > KP_OPLOG_RECORD_MAX || padded(len) > room - HEADER ||
        get_u64(p + 8) == 0)
        return false;
    uint8_t hash[HASH];
    record_hash(log, p, p + HEADER, len, hash);
    return sodium_memcmp(hash, p + 16, HASH) == 0;
}

static int found_cmp(const void *a, const void *b)
{
    const found *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Reads both files and lists every readable record numbered above `after`.
 * Records are 8-byte aligned, so past a damaged stretch the scan looks for
 * the next record at every 8th byte: a record behind a damaged one is
 * found, not taken for the end of the log. Older records behind the
 * newest ones (a reused file) are numbered at most `after` and left out. */
static kp_err scan_load(const kp_oplog *log, uint64_t after, scan *s, kp_error *e)
{
    memset(s, 0, sizeof *s);
    for (int i = 0; i < 2; i++) {
        const char *path = log->path[i];
        int fd = log->fd[i];
        struct stat sb;
        if (fstat(fd, &sb) != 0)
            return kp_error_set(e, KP_ERR_IO, "oplog", "cannot read %s: %s", path,
                                strerror(errno));
        size_t size = (size_t)sb.st_size;
        if (size == 0) continue;
        uint8_t *data = malloc(size);
        if (data == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
        s->data[i] = data;
        s->size[i] = size;
        size_t got = 0;
        while (got < size) {
            ssize_t r = pread(fd, data + got, size - got, (off_t)got);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0)
                return kp_error_set(e, KP_ERR_IO, "oplog", "cannot read %s: %s", path,
                                    r < 0 ? strerror(errno) : "short read");
            got += (size_t)r;
        }
        /* Bounded: each step moves on by at least 8 bytes. */
        for (size_t off = 0; off + HEADER <= size;) {
            const uint8_t *h = data + off;
            if (!record_valid(log, h, size - off)) {
                off += 8;
                continue;
            }
            uint32_t len = get_u32(h + 4);
            uint64_t seq = get_u64(h + 8);
            if (seq > after) {
                if (s->n == s->cap) {
                    size_t cap = s->cap ? s->cap * 2 : 1024;
                    found *p = realloc(s->rec, cap * sizeof *p);
                    if (p == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
                    s->rec = p;
                    s->cap = cap;
                }
                s->rec[s->n++] = (found){seq, off, len, (uint8_t)i};
            }
            off += HEADER + padded(len);
        }
    }
    if (s->n > 1) qsort(s->rec, s->n, sizeof *s->rec, found_cmp);
    return KP_OK;
}

kp_err kp_oplog_replay(kp_oplog *log, uint64_t after, kp_oplog_fn fn, void *ctx, uint64_t *last,
                       kp_error *e)
{
    *last = after;
    memset(&log->damage, 0, sizeof log->damage);
    scan s;
    kp_err err = scan_load(log, after, &s, e);
    /* The chain: after + 1, after + 2, ... with no gap, from either file. */
    size_t i = 0;
    uint64_t next = after + 1;
    const found *prev = NULL;
    while (err == KP_OK && i < s.n) {
        const found *r = &s.rec[i];
        if (r->seq < next) { /* the same record twice: read once */
            i++;
            continue;
        }
        if (r->seq != next) break;
        err = fn(ctx, next, s.data[r->file] + r->off + HEADER, r->len, e);
        if (err) break;
        *last = next++;
        prev = r;
        i++;
    }
    /* What is left is numbered past a record that cannot be read: the log
     * is damaged in its middle, not torn at its end (a torn write leaves
     * nothing readable after it). */
    if (err == KP_OK && i < s.n) {
        kp_oplog_damage *d = &log->damage;
        d->first_lost = next;
        d->last_lost = s.rec[s.n - 1].seq;
        d->readable = 0;
        for (size_t j = i; j < s.n; j++)
            if (j == i || s.rec[j].seq != s.rec[j - 1].seq) d->readable++;
        d->file = prev ? prev->file : -1;
        d->offset = prev ? prev->off + HEADER + padded(prev->len) : 0;
        err = kp_error_set(e, KP_ERR_IO, "oplog",
                           "the operation log is damaged: record %llu cannot be read, yet %zu "
                           "later records up to %llu can; nothing was changed (see `kopilka "
                           "recover --help`)",
                           (unsigned long long)next, d->readable,
                           (unsigned long long)d->last_lost);
    }
    scan_release(&s);
    return err;
}

const kp_oplog_damage *kp_oplog_damage_get(const kp_oplog *log) { return &log->damage; }

void kp_oplog_damage_explain(const kp_oplog *log, char *buf, size_t size)
{
    const kp_oplog_damage *d = &log->damage;
    char where[2 * 4096 + 64];
    if (d->file >= 0)
        snprintf(where, sizeof where, "%s at byte %llu", log->path[d->file],
                 (unsigned long long)d->offset);
    else
        snprintf(where, sizeof where, "in neither %s nor %s", log->path[0], log->path[1]);
    unsigned long long first = d->first_lost, last = d->last_lost;
    snprintf(buf, size,
             "The operation log is damaged: record %llu cannot be read (%s), yet %zu later "
             "records up to %llu can. A torn write at a crash leaves nothing readable after "
             "it; this is damage in the middle of the log, and starting would silently lose "
             "the acknowledged operations %llu to %llu (after a power cut, the last of them "
             "may be a group written but never acknowledged). Nothing was changed.\n"
             "The way forward: keep a copy of %s and of its .oplog-0 and .oplog-1 files; then "
             "either put back an undamaged copy of the log files, or run\n"
             "  kopilka recover %s --accept-loss\n"
             "which keeps the operations up to %llu, drops %llu to %llu, lists the receipts "
             "of those it can still read (to be sent again by their tills: unknown receipts "
             "are priced anew) and empties the log (docs/architecture.md, \"Recovery\").",
             first, where, d->readable, last, first, last, log->db_path, log->db_path,
             first - 1, first, last);
}

kp_err kp_oplog_each_lost(kp_oplog *log, kp_oplog_fn fn, void *ctx, kp_error *e)
{
    const kp_oplog_damage *d = &log->damage;
    if (d->first_lost == 0) return KP_OK;
    scan s;
    kp_err err = scan_load(log, d->first_lost - 1, &s, e);
    for (size_t i = 0; err == KP_OK && i < s.n; i++) {
        const found *r = &s.rec[i];
        if (i > 0 && r->seq == s.rec[i - 1].seq) continue;
        err = fn(ctx, r->seq, s.data[r->file] + r->off + HEADER, r->len, e);
    }
    scan_release(&s);
    return err;
}

kp_err kp_oplog_clear(kp_oplog *log, kp_error *e)
{
    for (int i = 0; i < 2; i++)
        if (ftruncate(log->fd[i], 0) != 0 || fsync(log->fd[i]) != 0)
            return kp_error_set(e, KP_ERR_IO, "oplog", "cannot empty %s: %s", log->path[i],
                                strerror(errno));
    memset(&log->damage, 0, sizeof log->damage);
    return KP_OK;
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
