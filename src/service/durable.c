/*
 * durable.c: purchases and returns as redo records, the server writer's
 * kp_group_ops.log() (store.h; SQLite keeps them in its operation log,
 * oplog.h), and their replay: a backend's recovery hands back the records
 * the database does not hold yet, and they run through the same service
 * functions that answered them, each answer checked to come out byte for
 * byte as it was given. For a log damaged in its middle, what `kopilka
 * recover --accept-loss` reports (and with --salvage applies) of each
 * readable record after the damage.
 *
 * A record: format version, type, the time and program version the
 * operation ran with, the store, a BLAKE2b of the answer, then the request
 * (integers little-endian, strings as a 16-bit length and bytes).
 *
 * Format 2 adds what a till may say beyond format 1: a purchase's flags
 * byte after its time (1 = an offline upload, 2 = the card was found by
 * phone; the record holds that card, so replay never looks the phone up
 * again; 4 = the request named the receipt's currency, whose code follows
 * the flags), a return's program version (its time is bounded by it) and its
 * original store. Format 1 records are still read, and replayed as the
 * binary that wrote them answered (log_format1 in service.h).
 */
#include "service.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { FORMAT = 2, FORMAT_1 = 1, REC_PURCHASE = 1, REC_RETURN = 2, ANSWER_HASH = 16 };

/* ------------------------------------------------------------------ encode */

static void put_u8(kp_buf *b, uint8_t v) { kp_buf_append(b, &v, 1); }
static void put_i64(kp_buf *b, int64_t v) { kp_buf_append(b, &v, 8); }
/* A string of at most `cap` - 1 bytes (the size of the array it is in). */
static void put_str_in(kp_buf *b, const char *s, size_t cap)
{
    size_t n = strnlen(s, cap - 1);
    uint16_t len = (uint16_t)n;
    kp_buf_append(b, &len, 2);
    kp_buf_append(b, s, n);
}
static void put_str(kp_buf *b, const char *s) { put_str_in(b, s, KP_STR_MAX); }

static void answer_hash(const kp_buf *answer, uint8_t out[ANSWER_HASH])
{
    crypto_generichash(out, ANSWER_HASH, (const unsigned char *)answer->data, answer->len, NULL, 0);
}

static void put_head(kp_buf *b, uint8_t type, kp_time now, int64_t program_version,
                     const char *store, const kp_buf *answer)
{
    kp_buf_reset(b);
    put_u8(b, FORMAT);
    put_u8(b, type);
    put_i64(b, now);
    put_i64(b, program_version);
    put_str(b, store);
    uint8_t hash[ANSWER_HASH];
    answer_hash(answer, hash);
    kp_buf_append(b, hash, sizeof hash);
}

kp_err kp_durable_purchase(kp_buf *b, const char *store, const kp_purchase_req *r, kp_time now,
                           int64_t program_version, const kp_buf *answer)
{
    put_head(b, REC_PURCHASE, now, program_version, store, answer);
    put_str(b, r->card);
    put_str(b, r->receipt);
    put_u8(b, r->at_given);
    put_i64(b, r->at);
    put_u8(b, (uint8_t)((r->offline ? 1 : 0) | (r->by_phone ? 2 : 0) | (r->currency[0] ? 4 : 0)));
    if (r->currency[0]) put_str_in(b, r->currency, sizeof r->currency);
    put_i64(b, r->basket.burn_request);
    put_i64(b, (int64_t)r->basket.n_lines);
    for (size_t i = 0; i < r->basket.n_lines; i++) {
        const kp_line *l = &r->basket.lines[i];
        put_str(b, l->sku);
        put_str(b, l->category);
        put_i64(b, l->amount_minor);
        put_i64(b, l->qty);
        put_u8(b, l->promo);
    }
    return b->failed ? KP_ERR_NOMEM : KP_OK;
}

kp_err kp_durable_return(kp_buf *b, const char *store, const kp_return_req *r, kp_time now,
                         int64_t program_version, const kp_buf *answer)
{
    put_head(b, REC_RETURN, now, program_version, store, answer);
    put_str(b, r->card);
    put_str(b, r->receipt);
    put_str(b, r->original_receipt);
    put_str(b, r->original_store);
    put_u8(b, r->at_given);
    put_i64(b, r->at);
    put_u8(b, r->request.whole);
    put_i64(b, (int64_t)r->request.n_lines);
    for (size_t i = 0; i < r->request.n_lines; i++) {
        put_str(b, r->request.lines[i].sku);
        put_i64(b, r->request.lines[i].qty);
    }
    return b->failed ? KP_ERR_NOMEM : KP_OK;
}

/* ------------------------------------------------------------------ decode */

typedef struct reader {
    const uint8_t *p, *end;
    bool bad;
} reader;

static bool take(reader *r, void *out, size_t n)
{
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = true;
        memset(out, 0, n);
        return false;
    }
    memcpy(out, r->p, n);
    r->p += n;
    return true;
}

static uint8_t get_u8(reader *r) { uint8_t v; take(r, &v, 1); return v; }
static int64_t get_i64(reader *r) { int64_t v; take(r, &v, 8); return v; }
static void get_str(reader *r, char out[KP_STR_MAX])
{
    uint16_t n;
    out[0] = '\0';
    if (!take(r, &n, 2)) return;
    if (n >= KP_STR_MAX) {
        r->bad = true;
        return;
    }
    if (take(r, out, n)) out[n] = '\0';
}

/* The lines count of a record, bounded before any loop uses it. */
static size_t get_count(reader *r)
{
    int64_t n = get_i64(r);
    if (n < 0 || n > KP_LINES_MAX) {
        r->bad = true;
        return 0;
    }
    return (size_t)n;
}

/* ------------------------------------------------------------------ replay */

struct kp_durable_replay {
    kp_scratch *sc;
    kp_buf out;
    kp_program *program; /* the version last used, kept between records */
    kp_purchase_req purchase;
    kp_return_req ret;
};

kp_durable_replay *kp_durable_replay_new(void)
{
    kp_durable_replay *c = calloc(1, sizeof *c);
    if (c == NULL) return NULL;
    if ((c->sc = kp_scratch_new()) == NULL) {
        free(c);
        return NULL;
    }
    kp_buf_init(&c->out, 64 * 1024 * 1024);
    return c;
}

void kp_durable_replay_free(kp_durable_replay *c)
{
    if (c == NULL) return;
    kp_buf_release(&c->out);
    free(c->program);
    kp_scratch_free(c->sc);
    free(c);
}

/* Makes c->program the program of `version`, kept between records. */
static kp_err program_of(kp_durable_replay *c, kp_store *st, int64_t version, kp_error *e)
{
    if (c->program != NULL && c->program->version == version) return KP_OK;
    if (c->program == NULL && (c->program = malloc(sizeof *c->program)) == NULL)
        return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    kp_err err = kp_service_program_get(st, version, c->program, e);
    if (err) {
        free(c->program);
        c->program = NULL;
    }
    return err;
}

/* Decodes a record and runs it through the service. *same says whether the
 * answer hashes to the one given before the stop; *replayed whether the
 * database already held the operation. */
static kp_err apply_record(kp_durable_replay *c, kp_store *st, const uint8_t *data, size_t len,
                           bool *same, bool *replayed, kp_error *e)
{
    *same = false;
    *replayed = false;
    reader r = {data, data + len, false};
    uint8_t format = get_u8(&r), type = get_u8(&r);
    kp_time now = get_i64(&r);
    int64_t version = get_i64(&r);
    char store[KP_STR_MAX];
    get_str(&r, store);
    uint8_t hash[ANSWER_HASH];
    take(&r, hash, sizeof hash);
    if (r.bad || (format != FORMAT && format != FORMAT_1) ||
        (type != REC_PURCHASE && type != REC_RETURN))
        return kp_error_set(e, KP_ERR_INTERNAL, "oplog", "the record is of an unknown format %u/%u",
                            format, type);
    kp_err err;
    kp_buf_reset(&c->out);
    if (type == REC_PURCHASE) {
        kp_purchase_req *q = &c->purchase;
        memset(q, 0, sizeof *q);
        get_str(&r, q->card);
        get_str(&r, q->receipt);
        q->at_given = get_u8(&r) != 0;
        q->at = get_i64(&r);
        q->log_format1 = format == FORMAT_1;
        if (format >= 2) {
            uint8_t flags = get_u8(&r);
            q->offline = (flags & 1) != 0;
            q->by_phone = (flags & 2) != 0;
            if (flags & 4) {
                char code[KP_STR_MAX];
                get_str(&r, code);
                if (strlen(code) != 3) r.bad = true;
                else memcpy(q->currency, code, 4);
            }
        }
        q->basket.burn_request = get_i64(&r);
        q->basket.n_lines = get_count(&r);
        for (size_t i = 0; i < q->basket.n_lines && !r.bad; i++) {
            kp_line *l = &q->basket.lines[i];
            get_str(&r, l->sku);
            get_str(&r, l->category);
            l->amount_minor = get_i64(&r);
            l->qty = get_i64(&r);
            l->promo = get_u8(&r) != 0;
        }
        if (r.bad || r.p != r.end)
            return kp_error_set(e, KP_ERR_INTERNAL, "oplog", "the record is malformed");
        if ((err = program_of(c, st, version, e))) return err;
        err = kp_service_purchase(st, c->program, store, q, now, c->sc, &c->out, replayed, e);
    } else {
        kp_return_req *q = &c->ret;
        memset(q, 0, sizeof *q);
        get_str(&r, q->card);
        get_str(&r, q->receipt);
        get_str(&r, q->original_receipt);
        if (format >= 2) get_str(&r, q->original_store);
        q->log_format1 = format == FORMAT_1;
        q->at_given = get_u8(&r) != 0;
        q->at = get_i64(&r);
        q->request.whole = get_u8(&r) != 0;
        q->request.n_lines = get_count(&r);
        for (size_t i = 0; i < q->request.n_lines && !r.bad; i++) {
            get_str(&r, q->request.lines[i].sku);
            q->request.lines[i].qty = get_i64(&r);
        }
        if (r.bad || r.p != r.end)
            return kp_error_set(e, KP_ERR_INTERNAL, "oplog", "the record is malformed");
        /* A format 1 return (version 0) ran with no bound on its time. */
        if (version != 0 && (err = program_of(c, st, version, e))) return err;
        err = kp_service_return(st, version != 0 ? c->program : NULL, store, q, now, c->sc,
                                &c->out, replayed, e);
    }
    if (err) return err;
    uint8_t again[ANSWER_HASH];
    answer_hash(&c->out, again);
    *same = sodium_memcmp(again, hash, sizeof hash) == 0;
    return KP_OK;
}

kp_err kp_durable_redo(void *ctx, kp_store *st, const void *record, size_t len, kp_error *e)
{
    bool same, replayed;
    kp_err err = apply_record(ctx, st, record, len, &same, &replayed, e);
    if (err) return err;
    if (replayed || !same)
        return kp_error_set(e, KP_ERR_INTERNAL, "oplog",
                            "replaying it gave another answer than the one given before the "
                            "stop; this binary prices differently from the one that wrote the "
                            "log: recover with that version");
    return KP_OK;
}

/* Decodes what a till would need to send a lost record again (its kind,
 * store, card and receipt) and, salvaging, applies it in a savepoint of its
 * own: one that fails (a return of the purchase that cannot be read, say)
 * is rolled back alone and stays lost. */
kp_err kp_durable_lost(void *arg, kp_store *st, uint64_t seq, const void *record, size_t len,
                       kp_error *e)
{
    kp_durable_lost_ctx *c = arg;
    const uint8_t *data = record;
    const char *outcome = "lost";
    kp_error why = {0};
    if (c->salvage) {
        bool same, replayed;
        kp_err err = st->ops->savepoint(st);
        if (err) return kp_error_set(e, err, "database", "%s", st->last_error);
        err = apply_record(c->salvage, st, data, len, &same, &replayed, &why);
        if (err == KP_OK && replayed) {
            outcome = "already in the database";
        } else if (err == KP_OK) {
            outcome = same ? "salvaged: the same answer as the till was given"
                           : "salvaged: another answer than the till was given (the lost "
                             "record before it changed the balance)";
            c->salvaged++;
        } else {
            outcome = why.message;
        }
        kp_err end = err ? st->ops->rollback_to(st) : st->ops->release(st);
        if (end) return kp_error_set(e, end, "database", "%s", st->last_error);
        if (err == KP_ERR_NOMEM || err == KP_ERR_IO) return kp_error_set(e, err, "", "%s", outcome);
    }
    reader r = {data, data + len, false};
    uint8_t format = get_u8(&r), type = get_u8(&r);
    get_i64(&r);
    get_i64(&r);
    char store[KP_STR_MAX], card[KP_STR_MAX], receipt[KP_STR_MAX];
    get_str(&r, store);
    uint8_t hash[ANSWER_HASH];
    take(&r, hash, sizeof hash);
    get_str(&r, card);
    get_str(&r, receipt);
    bool known = !r.bad && (format == FORMAT || format == FORMAT_1) &&
                 (type == REC_PURCHASE || type == REC_RETURN);
    c->report(c->report_ctx, seq, known ? (type == REC_PURCHASE ? "purchase" : "return") : "unknown",
              known ? store : "", known ? card : "", known ? receipt : "", outcome);
    return KP_OK;
}

kp_err kp_service_open(const char *location, bool create, kp_store **out, kp_error *e)
{
    kp_err err = kp_store_open(location, create, out, e);
    if (err) return err;
    const kp_group_ops *g = (*out)->ops->group;
    if (g == NULL) return KP_OK;
    /* Opening the server's group writer recovers what a crash left (the
     * operation log of SQLite); then it is let go. */
    kp_durable_replay *replay = kp_durable_replay_new();
    size_t applied = 0;
    err = replay ? g->open(*out, location, kp_durable_redo, replay, &applied, e)
                 : kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    kp_durable_replay_free(replay);
    if (err == KP_ERR_BUSY) return KP_OK; /* a running server owns it and recovered */
    if (err) {
        kp_store_close(*out);
        *out = NULL;
        return err;
    }
    g->close(*out);
    if (applied)
        fprintf(stderr, "kopilka: recovered %zu operations from the operation log\n", applied);
    return KP_OK;
}
