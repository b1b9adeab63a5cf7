/*
 * draws.c: prize draws (draws.h, docs/marketing.md "Prize draws"): the
 * procedure that draws the winners, creating a draw (seed, seal,
 * commitment), closing it (entries from the ledger, anonymised, frozen),
 * its JSON for the office, the public and the cabinet, and the
 * verification of a published JSON.
 *
 * The store keeps three texts of this file's own format (draws.h):
 *   prizes   "<count>\t<name>\n" a prize, in order;
 *   entries  "<id> <count>\n" a participant, sorted by id;
 *   winners  "<slot> <id>\n" a slot that has a winner, in slot order.
 */
#include "draws.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "people_int.h"

/* ------------------------------------------------------------ procedure */

void kp_draw_entries_digest(const kp_draw_entry *entries, size_t n, char out[65])
{
    crypto_hash_sha256_state h;
    crypto_hash_sha256_init(&h);
    for (size_t i = 0; i < n; i++) {
        char line[KP_DRAW_ID_HEX + 32];
        int len = snprintf(line, sizeof line, "%s:%lld\n", entries[i].id,
                           (long long)entries[i].count);
        crypto_hash_sha256_update(&h, (const uint8_t *)line, (unsigned long long)len);
    }
    uint8_t d[32];
    crypto_hash_sha256_final(&h, d);
    sodium_bin2hex(out, 65, d, sizeof d);
}

/* The ticket of slot k: a number uniform in [0, total) from
 * HMAC-SHA256(seed, "kopilka-draw-v1/<digest>/<k>/<j>") for j = 0, 1, ...:
 * the first 8 bytes big-endian as x, accepted when x < 2^64 - (2^64 mod
 * total) (so every remainder is equally likely), then x mod total. */
static uint64_t ticket(const uint8_t seed[32], const char *digest, int64_t k, uint64_t total)
{
    uint64_t rem = (uint64_t)(-total) % total; /* 2^64 mod total */
    for (uint64_t j = 0;; j++) {
        char msg[160];
        int len = snprintf(msg, sizeof msg, KP_DRAW_PROCEDURE "/%s/%lld/%llu", digest,
                           (long long)k, (unsigned long long)j);
        uint8_t mac[crypto_auth_hmacsha256_BYTES];
        crypto_auth_hmacsha256_state st;
        crypto_auth_hmacsha256_init(&st, seed, 32);
        crypto_auth_hmacsha256_update(&st, (const uint8_t *)msg, (unsigned long long)len);
        crypto_auth_hmacsha256_final(&st, mac);
        uint64_t x = 0;
        for (int b = 0; b < 8; b++) x = x << 8 | mac[b];
        if (rem == 0 || x < (uint64_t)0 - rem) return x % total;
    }
}

kp_err kp_draw_winners(const uint8_t seed[32], const kp_draw_entry *entries, size_t n,
                       const kp_draw_prize *prizes, size_t n_prizes, kp_draw_winner *out,
                       size_t *n_out, kp_error *e)
{
    *n_out = 0;
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (entries[i].count < 1)
            return kp_error_set(e, KP_ERR_INVALID, "entries", "entry %zu (%s) has count %lld, "
                                "must be at least 1", i, entries[i].id,
                                (long long)entries[i].count);
        if (i > 0 && strcmp(entries[i - 1].id, entries[i].id) >= 0)
            return kp_error_set(e, KP_ERR_INVALID, "entries",
                                "entry %zu (%s) is not after entry %zu (%s): ids must be unique "
                                "and in ascending order", i, entries[i].id, i - 1,
                                entries[i - 1].id);
        if (__builtin_add_overflow(total, (uint64_t)entries[i].count, &total) ||
            total > INT64_MAX)
            return kp_error_set(e, KP_ERR_OVERFLOW, "entries", "the entries' sum does not fit");
    }
    int64_t slots = 0;
    for (size_t p = 0; p < n_prizes; p++) {
        if (prizes[p].count < 1 || prizes[p].count > KP_DRAW_SLOTS_MAX)
            return kp_error_set(e, KP_ERR_INVALID, "prizes", "prize %zu has count %lld, must be "
                                "from 1 to %d", p, (long long)prizes[p].count, KP_DRAW_SLOTS_MAX);
        slots += prizes[p].count;
    }
    if (slots > KP_DRAW_SLOTS_MAX)
        return kp_error_set(e, KP_ERR_INVALID, "prizes", "the prizes count %lld winners, at "
                            "most %d are allowed", (long long)slots, KP_DRAW_SLOTS_MAX);
    char digest[65];
    kp_draw_entries_digest(entries, n, digest);
    bool *won = calloc(n ? n : 1, sizeof *won);
    if (won == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    int64_t k = 0;
    for (size_t p = 0; p < n_prizes; p++)
        for (int64_t c = 0; c < prizes[p].count; c++, k++) {
            if (total == 0) continue;
            uint64_t r = ticket(seed, digest, k, total);
            size_t i = 0;
            for (;; i++) {
                if (won[i]) continue;
                if (r < (uint64_t)entries[i].count) break;
                r -= (uint64_t)entries[i].count;
            }
            won[i] = true;
            total -= (uint64_t)entries[i].count;
            kp_draw_winner *w = &out[(*n_out)++];
            w->slot = k;
            w->prize = p;
            snprintf(w->id, sizeof w->id, "%s", entries[i].id);
        }
    free(won);
    return KP_OK;
}

/* ------------------------------------------------------------ the texts */

static bool prizes_text(const kp_draw_prize *prizes, size_t n, kp_buf *b)
{
    for (size_t i = 0; i < n; i++)
        if (!kp_buf_printf(b, "%lld\t%s\n", (long long)prizes[i].count, prizes[i].name))
            return false;
    return true;
}

/* Reads the prizes text into out[KP_DRAW_PRIZES_MAX]; false when malformed. */
static bool prizes_read(const char *text, kp_draw_prize *out, size_t *n)
{
    *n = 0;
    for (const char *p = text; p && *p;) {
        const char *nl = strchr(p, '\n'), *tab = strchr(p, '\t');
        if (nl == NULL || tab == NULL || tab > nl || *n >= KP_DRAW_PRIZES_MAX) return false;
        char *end;
        long long c = strtoll(p, &end, 10);
        if (end != tab) return false;
        out[*n].count = c;
        snprintf(out[*n].name, sizeof out[*n].name, "%.*s", (int)(nl - tab - 1), tab + 1);
        ++*n;
        p = nl + 1;
    }
    return true;
}

/* Reads the entries text into a malloc'd array (*out, NULL when none). */
static bool entries_read(const char *text, kp_draw_entry **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    size_t cap = 0;
    for (const char *p = text; p && *p;) {
        const char *nl = strchr(p, '\n'), *sp = strchr(p, ' ');
        if (nl == NULL || sp == NULL || sp > nl || sp - p >= KP_DRAW_ID_HEX) goto bad;
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            kp_draw_entry *grown = realloc(*out, cap * sizeof **out);
            if (grown == NULL) goto bad;
            *out = grown;
        }
        kp_draw_entry *x = &(*out)[(*n)++];
        snprintf(x->id, sizeof x->id, "%.*s", (int)(sp - p), p);
        char *end;
        x->count = strtoll(sp + 1, &end, 10);
        if (end != nl) goto bad;
        p = nl + 1;
    }
    return true;
bad:
    free(*out);
    *out = NULL;
    *n = 0;
    return false;
}

/* ------------------------------------------------------------ JSON out */

static void time_kv(kp_buf *b, const char *key, kp_time t)
{
    char s[32];
    kp_time_format(t, s, sizeof s);
    kp_buf_json_kv_str(b, key, s, true);
}

static void str_or_null(kp_buf *b, const char *key, const char *v)
{
    if (v[0]) {
        kp_buf_json_kv_str(b, key, v, true);
    } else {
        kp_buf_puts(b, ",");
        kp_buf_json_key(b, key);
        kp_buf_puts(b, "null");
    }
}

/* The fields every view of a draw shows, without the braces. */
static void draw_head(kp_buf *b, const kp_draw *d, const kp_draw_prize *prizes, size_t n_prizes)
{
    kp_buf_json_kv_i64(b, "id", d->id, false);
    kp_buf_json_kv_str(b, "name", d->name, true);
    time_kv(b, "from", d->from);
    time_kv(b, "to", d->to);
    kp_buf_puts(b, ",\"rule\":{");
    kp_buf_json_kv_str(b, "kind", d->rule == KP_DRAW_PER_SPEND ? "spend" : "visit", false);
    if (d->rule == KP_DRAW_PER_SPEND) kp_buf_json_kv_i64(b, "per_minor", d->per_minor, true);
    str_or_null(b, "store", d->store);
    str_or_null(b, "tier", d->tier);
    kp_buf_puts(b, "},\"prizes\":[");
    for (size_t i = 0; i < n_prizes; i++) {
        kp_buf_puts(b, i ? ",{" : "{");
        kp_buf_json_kv_str(b, "name", prizes[i].name, false);
        kp_buf_json_kv_i64(b, "count", prizes[i].count, true);
        kp_buf_puts(b, "}");
    }
    kp_buf_puts(b, "]");
    kp_buf_json_kv_str(b, "procedure", KP_DRAW_PROCEDURE, true);
    kp_buf_json_kv_str(b, "commitment", d->commitment, true);
    kp_buf_json_kv_str(b, "state", d->closed_at ? "closed" : "open", true);
    if (d->closed_at) time_kv(b, "closed_at", d->closed_at);
}

/* The public JSON of a draw read with its texts. */
static kp_err public_json(const kp_draw *d, kp_buf *b, kp_error *e)
{
    kp_draw_prize prizes[KP_DRAW_PRIZES_MAX];
    size_t n_prizes;
    if (!prizes_read(d->prizes, prizes, &n_prizes))
        return kp_error_set(e, KP_ERR_INTERNAL, "", "draw %lld: its prizes are malformed",
                            (long long)d->id);
    kp_buf_reset(b);
    kp_buf_puts(b, "{");
    draw_head(b, d, prizes, n_prizes);
    if (d->closed_at) {
        kp_draw_entry *entries;
        size_t n;
        if (!entries_read(d->entries, &entries, &n))
            return kp_error_set(e, KP_ERR_INTERNAL, "", "draw %lld: its entries are malformed",
                                (long long)d->id);
        kp_buf_json_kv_str(b, "seed", d->seed, true);
        int64_t total = 0;
        kp_buf_puts(b, ",\"entries\":[");
        for (size_t i = 0; i < n; i++) {
            kp_buf_puts(b, i ? ",{" : "{");
            kp_buf_json_kv_str(b, "id", entries[i].id, false);
            kp_buf_json_kv_i64(b, "count", entries[i].count, true);
            kp_buf_puts(b, "}");
            if (__builtin_add_overflow(total, entries[i].count, &total)) total = INT64_MAX;
        }
        kp_buf_puts(b, "]");
        kp_buf_json_kv_i64(b, "total_entries", total, true);
        char digest[65];
        kp_draw_entries_digest(entries, n, digest);
        kp_buf_json_kv_str(b, "entries_digest", digest, true);
        free(entries);
        kp_buf_puts(b, ",\"winners\":[");
        bool first = true;
        for (const char *p = d->winners; p && *p;) {
            const char *nl = strchr(p, '\n'), *sp = strchr(p, ' ');
            if (nl == NULL || sp == NULL || sp > nl) break;
            long long slot = strtoll(p, NULL, 10);
            /* the prize of the slot: prizes in order, each count times */
            const char *prize = "";
            long long k = slot;
            for (size_t i = 0; i < n_prizes; i++) {
                if (k < prizes[i].count) {
                    prize = prizes[i].name;
                    break;
                }
                k -= prizes[i].count;
            }
            char id[KP_DRAW_ID_HEX];
            snprintf(id, sizeof id, "%.*s", (int)(nl - sp - 1), sp + 1); /* cut to 16 */
            kp_buf_puts(b, first ? "{" : ",{");
            first = false;
            kp_buf_json_kv_i64(b, "slot", slot, false);
            kp_buf_json_kv_str(b, "prize", prize, true);
            kp_buf_json_kv_str(b, "id", id, true);
            kp_buf_puts(b, "}");
            p = nl + 1;
        }
        kp_buf_puts(b, "]");
    }
    kp_buf_puts(b, "}");
    if (b->failed) return kp_error_set(e, KP_ERR_LIMIT, "", "the draw's answer is too large");
    return KP_OK;
}

/* The office's JSON of a draw (the list, a creation): the head and who. */
static void office_json(const kp_draw *d, kp_buf *b)
{
    kp_draw_prize prizes[KP_DRAW_PRIZES_MAX];
    size_t n_prizes = 0;
    prizes_read(d->prizes, prizes, &n_prizes);
    kp_buf_puts(b, "{");
    draw_head(b, d, prizes, n_prizes);
    time_kv(b, "created_at", d->created_at);
    kp_buf_json_kv_str(b, "created_by", d->created_by, true);
    if (d->closed_at) kp_buf_json_kv_str(b, "closed_by", d->closed_by, true);
    kp_buf_puts(b, "}");
}

/* ------------------------------------------------------------ creating */

kp_err kp_draw_create(kp_office *o, const kp_draw_spec *spec, kp_buf *out, kp_error *e)
{
    kp_err err = kp_office_require(o, KP_PERM_DRAW_MANAGE, e);
    if (err) return err;
    if ((err = people_need_key(o, e))) return err;
    kp_draw d;
    memset(&d, 0, sizeof d);
    if (spec->name[0] == '\0')
        return kp_error_set(e, KP_ERR_INVALID, "name", "is required: the draw's name as "
                            "customers will see it");
    snprintf(d.name, sizeof d.name, "%s", spec->name);
    if (!kp_time_parse(spec->from, &d.from))
        return kp_error_set(e, KP_ERR_INVALID, "from", "must be a time in RFC 3339 "
                            "(2026-12-01T00:00:00+03:00), got \"%.40s\"", spec->from);
    if (!kp_time_parse(spec->to, &d.to))
        return kp_error_set(e, KP_ERR_INVALID, "to", "must be a time in RFC 3339 "
                            "(2027-01-01T00:00:00+03:00), got \"%.40s\"", spec->to);
    if (d.to <= d.from)
        return kp_error_set(e, KP_ERR_INVALID, "to", "must be after from: the period is "
                            "[from, to)");
    if (strcmp(spec->rule, "spend") == 0) {
        d.rule = KP_DRAW_PER_SPEND;
        if (spec->per_minor <= 0)
            return kp_error_set(e, KP_ERR_INVALID, "rule.per_minor",
                                "must be a whole number of minor units > 0 (one entry per "
                                "that much spent), got %lld", (long long)spec->per_minor);
        d.per_minor = spec->per_minor;
    } else if (strcmp(spec->rule, "visit") == 0) {
        d.rule = KP_DRAW_PER_VISIT;
    } else {
        return kp_error_set(e, KP_ERR_INVALID, "rule.kind", "must be spend (one entry per "
                            "per_minor spent) or visit (one per receipt), got \"%.20s\"",
                            spec->rule);
    }
    snprintf(d.store, sizeof d.store, "%s", spec->store);
    snprintf(d.tier, sizeof d.tier, "%s", spec->tier);
    if (d.tier[0] && o->program && kp_program_tier(o->program, d.tier, NULL) == NULL)
        return kp_error_set(e, KP_ERR_INVALID, "rule.tier", "the running program has no tier "
                            "\"%.60s\"", d.tier);
    if (spec->n_prizes == 0 || spec->n_prizes > KP_DRAW_PRIZES_MAX)
        return kp_error_set(e, KP_ERR_INVALID, "prizes", "must list 1 to %d prizes, in the "
                            "order they are drawn", KP_DRAW_PRIZES_MAX);
    int64_t slots = 0;
    for (size_t i = 0; i < spec->n_prizes; i++) {
        char field[48];
        if (spec->prizes[i].name[0] == '\0' || strpbrk(spec->prizes[i].name, "\t\n")) {
            snprintf(field, sizeof field, "prizes[%zu].name", i);
            return kp_error_set(e, KP_ERR_INVALID, field, "is required, on one line");
        }
        if (spec->prizes[i].count < 1 || spec->prizes[i].count > KP_DRAW_SLOTS_MAX) {
            snprintf(field, sizeof field, "prizes[%zu].count", i);
            return kp_error_set(e, KP_ERR_INVALID, field, "must be from 1 to %d, got %lld",
                                KP_DRAW_SLOTS_MAX, (long long)spec->prizes[i].count);
        }
        slots += spec->prizes[i].count;
    }
    if (slots > KP_DRAW_SLOTS_MAX)
        return kp_error_set(e, KP_ERR_INVALID, "prizes", "count %lld winners together, at most "
                            "%d are allowed", (long long)slots, KP_DRAW_SLOTS_MAX);
    /* The seed: drawn now, sealed for the store, its hash published. */
    uint8_t seed[32], hash[32], sealed[32 + KP_PII_OVERHEAD];
    size_t sealed_len;
    randombytes_buf(seed, sizeof seed);
    crypto_hash_sha256(hash, seed, sizeof seed);
    err = kp_pii_seal(o->pii, KP_PII_DRAW_SEED, seed, sizeof seed, sealed, sizeof sealed,
                      &sealed_len);
    sodium_memzero(seed, sizeof seed);
    if (err) return kp_error_set(e, err, "", "cannot seal the draw's seed");
    sodium_bin2hex(d.commitment, sizeof d.commitment, hash, sizeof hash);
    sodium_bin2hex(d.sealed_seed, sizeof d.sealed_seed, sealed, sealed_len);
    d.created_at = o->now;
    snprintf(d.created_by, sizeof d.created_by, "%s", o->actor.name);
    kp_buf text;
    kp_buf_init(&text, 1 << 20);
    if (!prizes_text(spec->prizes, spec->n_prizes, &text) || !kp_buf_puts(&text, "")) {
        kp_buf_release(&text);
        return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    }
    d.prizes = text.data ? text.data : (char *)"";
    err = o->st->ops->draws->draw_insert(o->st, &d);
    if (err == KP_OK) {
        char target[32];
        snprintf(target, sizeof target, "draw:%lld", (long long)d.id);
        err = kp_office_audit(o, "draw.create", target, "commitment=%s", d.commitment);
        if (err) {
            kp_buf_release(&text);
            return kp_error_set(e, err, "", "cannot audit the draw: %s", o->st->last_error);
        }
        kp_buf_reset(out);
        office_json(&d, out);
    } else {
        err = people_storage(o->st, err, e);
    }
    kp_buf_release(&text);
    return err;
}

kp_err kp_draw_create_json(kp_office *o, const char *body, size_t len, kp_buf *out, kp_error *e)
{
    json_t *root = people_json_load(body, len, e);
    if (root == NULL) return e->code;
    static const char *const keys[] = {"name", "from", "to", "rule", "prizes", NULL};
    static const char *const rule_keys[] = {"kind", "per_minor", "store", "tier", NULL};
    kp_draw_spec *s = calloc(1, sizeof *s);
    kp_err err = s ? people_json_keys(root, keys, e) : kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    if (!err) err = people_json_str(root, "name", true, s->name, sizeof s->name - 1, e);
    if (!err) err = people_json_str(root, "from", true, s->from, sizeof s->from - 1, e);
    if (!err) err = people_json_str(root, "to", true, s->to, sizeof s->to - 1, e);
    json_t *rule = json_object_get(root, "rule");
    if (!err && !json_is_object(rule))
        err = kp_error_set(e, KP_ERR_INVALID, "rule", "is required: an object {kind: spend or "
                           "visit, per_minor, store, tier}");
    if (!err) {
        err = people_json_keys(rule, rule_keys, e);
        if (err) snprintf(e->field, sizeof e->field, "rule");
    }
    if (!err) err = people_json_str(rule, "kind", true, s->rule, sizeof s->rule - 1, e);
    if (!err) err = people_json_int(rule, "per_minor", false, 1, INT64_MAX / 2, &s->per_minor, e);
    if (!err) err = people_json_str(rule, "store", false, s->store, sizeof s->store - 1, e);
    if (!err) err = people_json_str(rule, "tier", false, s->tier, sizeof s->tier - 1, e);
    if (err && strncmp(e->field, "rule", 4) != 0 && json_is_object(rule) &&
        (strcmp(e->field, "kind") == 0 || strcmp(e->field, "per_minor") == 0 ||
         strcmp(e->field, "store") == 0 || strcmp(e->field, "tier") == 0)) {
        char f[16];
        snprintf(f, sizeof f, "%.10s", e->field);
        snprintf(e->field, sizeof e->field, "rule.%s", f);
    }
    json_t *prizes = json_object_get(root, "prizes");
    if (!err && (!json_is_array(prizes) || json_array_size(prizes) == 0 ||
                 json_array_size(prizes) > KP_DRAW_PRIZES_MAX))
        err = kp_error_set(e, KP_ERR_INVALID, "prizes", "must be an array of 1 to %d "
                           "{name, count}, in the order they are drawn", KP_DRAW_PRIZES_MAX);
    for (size_t i = 0; !err && i < json_array_size(prizes); i++) {
        json_t *p = json_array_get(prizes, i);
        json_t *name = json_object_get(p, "name"), *count = json_object_get(p, "count");
        char field[48];
        if (!json_is_object(p) || !json_is_string(name) ||
            json_string_length(name) >= sizeof s->prizes[i].name) {
            snprintf(field, sizeof field, "prizes[%zu].name", i);
            err = kp_error_set(e, KP_ERR_INVALID, field, "must be a text of at most %d bytes",
                               KP_STR_MAX - 1);
        } else if (!json_is_integer(count)) {
            snprintf(field, sizeof field, "prizes[%zu].count", i);
            err = kp_error_set(e, KP_ERR_INVALID, field, "must be a whole number from 1 to %d",
                               KP_DRAW_SLOTS_MAX);
        } else {
            snprintf(s->prizes[i].name, sizeof s->prizes[i].name, "%s", json_string_value(name));
            s->prizes[i].count = json_integer_value(count);
            s->n_prizes = i + 1;
        }
    }
    if (!err) {
        if (s->rule[0] == '\0') snprintf(s->rule, sizeof s->rule, "spend");
        err = kp_draw_create(o, s, out, e);
    }
    free(s);
    json_decref(root);
    return err;
}

/* ------------------------------------------------------------ closing */

/* A purchase of the period, as the entries count it. */
typedef struct buy {
    int64_t op_id, account_id;
    int64_t left; /* its amount less what returns in the period took back */
} buy;

typedef struct scan_ctx {
    const kp_draw *d;
    buy *buys;
    size_t n, cap;
    /* returns: (original op id, amount) */
    int64_t (*rets)[2];
    size_t n_rets, cap_rets;
    bool nomem;
} scan_ctx;

static bool scan_op(void *ctx, const kp_op_row *row)
{
    scan_ctx *c = ctx;
    if (row->account_id <= 0) return true;
    if (row->type == KP_OP_PURCHASE) {
        if (c->d->store[0] && strcmp(row->store, c->d->store) != 0) return true;
        if (c->n == c->cap) {
            size_t cap = c->cap ? c->cap * 2 : 1024;
            buy *g = realloc(c->buys, cap * sizeof *g);
            if (g == NULL) return !(c->nomem = true);
            c->buys = g;
            c->cap = cap;
        }
        c->buys[c->n++] = (buy){row->id, row->account_id, row->amount_minor};
    } else if (row->type == KP_OP_RETURN && row->original_op_id > 0) {
        if (c->n_rets == c->cap_rets) {
            size_t cap = c->cap_rets ? c->cap_rets * 2 : 256;
            int64_t(*g)[2] = realloc(c->rets, cap * sizeof *g);
            if (g == NULL) return !(c->nomem = true);
            c->rets = g;
            c->cap_rets = cap;
        }
        int64_t a = row->amount_minor < 0 ? -row->amount_minor : row->amount_minor;
        c->rets[c->n_rets][0] = row->original_op_id;
        c->rets[c->n_rets][1] = a;
        c->n_rets++;
    }
    return true;
}

static int cmp_buy_op(const void *a, const void *b)
{
    int64_t x = ((const buy *)a)->op_id, y = ((const buy *)b)->op_id;
    return (x > y) - (x < y);
}

static int cmp_buy_account(const void *a, const void *b)
{
    const buy *x = a, *y = b;
    if (x->account_id != y->account_id) return (x->account_id > y->account_id) - (x->account_id < y->account_id);
    return (x->op_id > y->op_id) - (x->op_id < y->op_id);
}

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const kp_draw_entry *)a)->id, ((const kp_draw_entry *)b)->id);
}

/* The anonymised id of an account in draw `draw_id`: the first 8 bytes of
 * HMAC-SHA256(key, "account:<id>"), hex, where key is the key file's MAC
 * of "draw:<draw id>" (never published: without it an id names nobody). */
static void anon_id(const kp_pii *pii, int64_t draw_id, int64_t account_id,
                    char out[KP_DRAW_ID_HEX])
{
    char text[48];
    int len = snprintf(text, sizeof text, "draw:%lld", (long long)draw_id);
    uint8_t key[KP_PII_INDEX_BYTES];
    kp_pii_mac(pii, KP_PII_DRAW_ANON, text, (size_t)len, key);
    len = snprintf(text, sizeof text, "account:%lld", (long long)account_id);
    uint8_t mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, sizeof key);
    crypto_auth_hmacsha256_update(&st, (const uint8_t *)text, (unsigned long long)len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2hex(out, KP_DRAW_ID_HEX, mac, 8);
    sodium_memzero(key, sizeof key);
}

/* The entries of d from the ledger (a read): sorted by anonymised id. */
static kp_err entries_compute(kp_office *o, const kp_draw *d, kp_draw_entry **out, size_t *n,
                              kp_error *e)
{
    *out = NULL;
    *n = 0;
    scan_ctx c = {.d = d};
    kp_err err = o->st->ops->ops_scan(o->st, d->from, d->to, scan_op, &c);
    if (err == KP_OK && c.nomem) err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    else if (err) err = people_storage(o->st, err, e);
    if (err) goto done;
    /* returns of the period's purchases take their amounts back */
    if (c.n > 0) qsort(c.buys, c.n, sizeof *c.buys, cmp_buy_op);
    for (size_t i = 0; i < c.n_rets && c.n > 0; i++) {
        buy key = {.op_id = c.rets[i][0]};
        buy *b = bsearch(&key, c.buys, c.n, sizeof *c.buys, cmp_buy_op);
        if (b) b->left -= c.rets[i][1];
    }
    if (c.n > 0) qsort(c.buys, c.n, sizeof *c.buys, cmp_buy_account);
    kp_draw_entry *entries = calloc(c.n ? c.n : 1, sizeof *entries);
    if (entries == NULL) {
        err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
        goto done;
    }
    for (size_t i = 0; i < c.n && err == KP_OK;) {
        int64_t account = c.buys[i].account_id, spend = 0, visits = 0;
        for (; i < c.n && c.buys[i].account_id == account; i++) {
            if (c.buys[i].left > 0) {
                if (__builtin_add_overflow(spend, c.buys[i].left, &spend)) spend = INT64_MAX;
                visits++;
            }
        }
        int64_t count = d->rule == KP_DRAW_PER_SPEND ? spend / d->per_minor : visits;
        if (count < 1) continue;
        if (d->tier[0]) {
            kp_account_rules rules;
            if ((err = o->st->ops->triggers->account_rules_get(o->st, account, &rules))) {
                err = people_storage(o->st, err, e);
                break;
            }
            if (strcmp(rules.tier, d->tier) != 0) continue;
        }
        anon_id(o->pii, d->id, account, entries[*n].id);
        entries[(*n)++].count = count;
    }
    if (err == KP_OK) {
        qsort(entries, *n, sizeof *entries, cmp_entry);
        for (size_t i = 1; i < *n && err == KP_OK; i++)
            if (strcmp(entries[i - 1].id, entries[i].id) == 0)
                err = kp_error_set(e, KP_ERR_INTERNAL, "", "two participants of draw %lld have "
                                   "one anonymised id", (long long)d->id);
    }
    if (err) {
        free(entries);
        *n = 0;
    } else {
        *out = entries;
    }
done:
    free(c.buys);
    free(c.rets);
    return err;
}

void kp_draw_closing_release(kp_draw_closing *c)
{
    kp_buf_release(&c->text);
    sodium_memzero(c->seed_hex, sizeof c->seed_hex);
    memset(c, 0, sizeof *c);
}

kp_err kp_draw_close_read(kp_office *o, int64_t id, kp_draw_closing *cl, kp_buf *out,
                          kp_error *e)
{
    memset(cl, 0, sizeof *cl);
    kp_buf_init(&cl->text, (size_t)1 << 30);
    kp_err err = kp_office_require(o, KP_PERM_DRAW_MANAGE, e);
    if (err) return err;
    if ((err = people_need_key(o, e))) return err;
    kp_draw d;
    err = o->st->ops->draws->draw_get(o->st, id, &d);
    if (err == KP_ERR_NOT_FOUND)
        return kp_error_set(e, err, "id", "no draw %lld", (long long)id);
    if (err) return people_storage(o->st, err, e);
    kp_draw_entry *entries = NULL;
    kp_draw_winner *winners = NULL;
    if (d.closed_at) {
        cl->closed = true;
        err = public_json(&d, out, e);
        goto out;
    }
    if (o->now < d.to) {
        char to[32];
        kp_time_format(d.to, to, sizeof to);
        err = kp_error_set(e, KP_ERR_CONFLICT, "to", "the draw's period ends at %s: it can be "
                           "closed from then on", to);
        goto out;
    }
    uint8_t sealed[32 + KP_PII_OVERHEAD];
    size_t sealed_len;
    char seed[33];
    if (sodium_hex2bin(sealed, sizeof sealed, d.sealed_seed, strlen(d.sealed_seed), NULL,
                       &sealed_len, NULL) != 0 ||
        kp_pii_open(o->pii, KP_PII_DRAW_SEED, sealed, sealed_len, seed, sizeof seed, NULL) !=
            KP_OK) {
        err = kp_error_set(e, KP_ERR_INVALID, "key", "the seed of draw %lld cannot be opened "
                           "with this key file: is it the database's own?", (long long)id);
        goto out;
    }
    size_t n = 0, n_winners = 0;
    kp_draw_prize prizes[KP_DRAW_PRIZES_MAX];
    size_t n_prizes;
    if (!prizes_read(d.prizes, prizes, &n_prizes)) {
        err = kp_error_set(e, KP_ERR_INTERNAL, "", "draw %lld: its prizes are malformed",
                           (long long)id);
        goto out_seed;
    }
    if ((err = entries_compute(o, &d, &entries, &n, e))) goto out_seed;
    winners = calloc(KP_DRAW_SLOTS_MAX, sizeof *winners);
    if (winners == NULL) {
        err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
        goto out_seed;
    }
    err = kp_draw_winners((const uint8_t *)seed, entries, n, prizes, n_prizes, winners,
                          &n_winners, e);
    if (err) goto out_seed;
    /* the texts: entries, then winners, in one buffer split by a NUL */
    for (size_t i = 0; i < n; i++)
        kp_buf_printf(&cl->text, "%s %lld\n", entries[i].id, (long long)entries[i].count);
    kp_buf_append(&cl->text, "", 1);
    cl->split = cl->text.len;
    for (size_t i = 0; i < n_winners; i++)
        kp_buf_printf(&cl->text, "%lld %s\n", (long long)winners[i].slot, winners[i].id);
    kp_buf_append(&cl->text, "", 1);
    if (cl->text.failed) {
        err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
        goto out_seed;
    }
    cl->n = n;
    cl->n_winners = n_winners;
    sodium_bin2hex(cl->seed_hex, sizeof cl->seed_hex, (const uint8_t *)seed, 32);
    cl->ready = true;
out_seed:
    sodium_memzero(seed, sizeof seed);
out:
    kp_draw_release(&d);
    free(entries);
    free(winners);
    return err;
}

kp_err kp_draw_close_write(kp_office *o, int64_t id, kp_draw_closing *cl, kp_buf *out,
                           bool *replayed, kp_error *e)
{
    *replayed = false;
    kp_err err = kp_office_require(o, KP_PERM_DRAW_MANAGE, e);
    if (err) return err;
    if (!cl->ready)
        return kp_error_set(e, KP_ERR_INTERNAL, "", "draw %lld: nothing read to close with",
                            (long long)id);
    kp_draw d;
    err = o->st->ops->draws->draw_get(o->st, id, &d);
    if (err == KP_ERR_NOT_FOUND)
        return kp_error_set(e, err, "id", "no draw %lld", (long long)id);
    if (err) return people_storage(o->st, err, e);
    if (d.closed_at) {
        /* Closed meanwhile (another close, another server): its frozen
         * result, never a second one. */
        *replayed = true;
        err = public_json(&d, out, e);
        kp_draw_release(&d);
        return err;
    }
    kp_draw c = d;
    c.prizes = NULL;
    c.closed_at = o->now;
    snprintf(c.closed_by, sizeof c.closed_by, "%s", o->actor.name);
    snprintf(c.seed, sizeof c.seed, "%s", cl->seed_hex);
    c.entries = cl->text.data;
    c.winners = cl->text.data + cl->split;
    err = o->st->ops->draws->draw_close(o->st, id, &c);
    if (err == KP_ERR_CONFLICT) {
        /* Closed by a concurrent writer (PostgreSQL's several writers, or
         * another server) after our read: its result, read again. */
        kp_draw now;
        if ((err = o->st->ops->draws->draw_get(o->st, id, &now))) {
            err = people_storage(o->st, err, e);
            goto out;
        }
        *replayed = true;
        err = public_json(&now, out, e);
        kp_draw_release(&now);
        goto out;
    }
    if (err) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    char target[32];
    snprintf(target, sizeof target, "draw:%lld", (long long)id);
    if ((err = kp_office_audit(o, "draw.close", target, "entries=%zu winners=%zu", cl->n,
                               cl->n_winners))) {
        err = kp_error_set(e, err, "", "cannot audit the draw: %s", o->st->last_error);
        goto out;
    }
    c.prizes = d.prizes;
    err = public_json(&c, out, e);
out:
    sodium_memzero(c.seed, sizeof c.seed);
    kp_draw_release(&d);
    return err;
}

kp_err kp_draw_close(kp_office *o, int64_t id, kp_buf *out, bool *replayed, kp_error *e)
{
    *replayed = false;
    kp_draw_closing cl;
    kp_err err = kp_draw_close_read(o, id, &cl, out, e);
    if (err == KP_OK && cl.closed) *replayed = true;
    else if (err == KP_OK) err = kp_draw_close_write(o, id, &cl, out, replayed, e);
    kp_draw_closing_release(&cl);
    return err;
}

/* ------------------------------------------------------------ reading */

kp_err kp_draw_list(kp_office *o, int64_t before, kp_buf *out, kp_error *e)
{
    kp_err err = kp_office_require(o, KP_PERM_DRAW_MANAGE, e);
    if (err) return err;
    kp_draw *items = calloc(KP_DRAW_LIST_MAX, sizeof *items);
    if (items == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    size_t n;
    if ((err = o->st->ops->draws->draw_list(o->st, before, items, KP_DRAW_LIST_MAX, &n))) {
        free(items);
        return people_storage(o->st, err, e);
    }
    kp_buf_reset(out);
    kp_buf_puts(out, "{\"draws\":[");
    for (size_t i = 0; i < n; i++) {
        if (i) kp_buf_puts(out, ",");
        office_json(&items[i], out);
        kp_draw_release(&items[i]);
    }
    kp_buf_puts(out, "]}");
    free(items);
    return KP_OK;
}

kp_err kp_draw_public(kp_office *o, int64_t id, kp_buf *out, kp_error *e)
{
    kp_draw d;
    kp_err err = o->st->ops->draws->draw_get(o->st, id, &d);
    if (err == KP_ERR_NOT_FOUND) return kp_error_set(e, err, "id", "no draw %lld", (long long)id);
    if (err) return people_storage(o->st, err, e);
    err = public_json(&d, out, e);
    kp_draw_release(&d);
    return err;
}

kp_err kp_draw_mine(kp_office *o, int64_t customer_id, kp_buf *out, kp_error *e)
{
    kp_err err = kp_office_require_customer(o, KP_PERM_CUSTOMER_READ, customer_id, e);
    if (err) return err;
    if ((err = people_need_key(o, e))) return err;
    kp_customer_row *row = calloc(1, sizeof *row);
    kp_draw *items = calloc(KP_DRAW_LIST_MAX, sizeof *items);
    size_t n = 0;
    if (row == NULL || items == NULL) {
        err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
        goto out;
    }
    if ((err = o->st->ops->people->customer_get(o->st, customer_id, row))) {
        err = err == KP_ERR_NOT_FOUND ? kp_error_set(e, err, "customer", "no customer %lld",
                                                     (long long)customer_id)
                                      : people_storage(o->st, err, e);
        goto out;
    }
    if ((err = o->st->ops->draws->draw_list(o->st, 0, items, KP_DRAW_LIST_MAX, &n))) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    kp_buf_reset(out);
    kp_buf_puts(out, "{\"draws\":[");
    for (size_t i = 0; i < n && err == KP_OK; i++) {
        const kp_draw *d = &items[i];
        kp_draw_prize prizes[KP_DRAW_PRIZES_MAX];
        size_t n_prizes = 0;
        prizes_read(d->prizes, prizes, &n_prizes);
        if (i) kp_buf_puts(out, ",");
        kp_buf_puts(out, "{");
        draw_head(out, d, prizes, n_prizes);
        kp_buf_puts(out, ",\"me\":");
        if (!d->closed_at) {
            kp_buf_puts(out, "null}");
            continue;
        }
        kp_draw full;
        if ((err = o->st->ops->draws->draw_get(o->st, d->id, &full))) {
            err = people_storage(o->st, err, e);
            break;
        }
        char me[KP_DRAW_ID_HEX];
        anon_id(o->pii, d->id, row->account_id, me);
        int64_t count = 0;
        kp_draw_entry *entries;
        size_t ne;
        if (entries_read(full.entries, &entries, &ne) && ne > 0) {
            kp_draw_entry key;
            snprintf(key.id, sizeof key.id, "%s", me);
            kp_draw_entry *hit = bsearch(&key, entries, ne, sizeof *entries, cmp_entry);
            if (hit) count = hit->count;
            free(entries);
        }
        const char *prize = NULL;
        for (const char *p = full.winners; p && *p && prize == NULL;) {
            const char *nl = strchr(p, '\n'), *sp = strchr(p, ' ');
            if (nl == NULL || sp == NULL) break;
            if ((size_t)(nl - sp - 1) == strlen(me) && memcmp(sp + 1, me, strlen(me)) == 0) {
                long long k = strtoll(p, NULL, 10);
                for (size_t j = 0; j < n_prizes && prize == NULL; j++) {
                    if (k < prizes[j].count) prize = prizes[j].name;
                    else k -= prizes[j].count;
                }
            }
            p = nl + 1;
        }
        if (count == 0) {
            kp_buf_puts(out, "null}");
        } else {
            kp_buf_puts(out, "{");
            kp_buf_json_kv_str(out, "id", me, false);
            kp_buf_json_kv_i64(out, "entries", count, true);
            if (prize) kp_buf_json_kv_str(out, "prize", prize, true);
            else kp_buf_puts(out, ",\"prize\":null");
            kp_buf_puts(out, "}}");
        }
        kp_draw_release(&full);
    }
    kp_buf_puts(out, "]}");
out:
    for (size_t i = 0; i < n; i++) kp_draw_release(&items[i]);
    free(items);
    free(row);
    return err;
}

/* ------------------------------------------------------------ verifying */

typedef struct verify_out {
    void (*report)(void *ctx, const char *line);
    void *ctx;
    int problems;
} verify_out;

static void problem(verify_out *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(verify_out *v, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    v->problems++;
    if (v->report) v->report(v->ctx, line);
}

static const char *jstr(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

int kp_draw_verify_text(const char *text, size_t len, void (*report)(void *ctx, const char *line),
                        void *ctx, kp_error *e)
{
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(root)) {
        json_decref(root);
        kp_error_set(e, KP_ERR_INVALID, "file", "not a JSON object (line %d: %s)", je.line,
                     je.text);
        return -1;
    }
    verify_out v = {report, ctx, 0};
    int result = -1;
    kp_draw_entry *entries = NULL;
    kp_draw_winner *winners = NULL;
    if (strcmp(jstr(root, "state"), "closed") != 0) {
        kp_error_set(e, KP_ERR_INVALID, "state", "the draw is not closed: its seed, entries and "
                     "winners are published when it is");
        goto out;
    }
    if (strcmp(jstr(root, "procedure"), KP_DRAW_PROCEDURE) != 0) {
        kp_error_set(e, KP_ERR_INVALID, "procedure", "is \"%.40s\", this kopilka knows "
                     KP_DRAW_PROCEDURE, jstr(root, "procedure"));
        goto out;
    }
    /* the commitment */
    uint8_t seed[32], hash[32];
    size_t seed_len = 0;
    const char *seed_hex = jstr(root, "seed");
    if (strlen(seed_hex) != 64 ||
        sodium_hex2bin(seed, sizeof seed, seed_hex, 64, NULL, &seed_len, NULL) != 0 ||
        seed_len != 32) {
        kp_error_set(e, KP_ERR_INVALID, "seed", "must be 64 hex digits");
        goto out;
    }
    crypto_hash_sha256(hash, seed, sizeof seed);
    char commitment[65];
    sodium_bin2hex(commitment, sizeof commitment, hash, sizeof hash);
    if (strcmp(commitment, jstr(root, "commitment")) != 0)
        problem(&v, "commitment: SHA-256 of the seed is %s, the file says %.64s", commitment,
                jstr(root, "commitment"));
    /* the prizes */
    kp_draw_prize prizes[KP_DRAW_PRIZES_MAX];
    size_t n_prizes = 0;
    json_t *jp = json_object_get(root, "prizes");
    if (!json_is_array(jp) || json_array_size(jp) == 0 || json_array_size(jp) > KP_DRAW_PRIZES_MAX) {
        kp_error_set(e, KP_ERR_INVALID, "prizes", "must be an array of 1 to %d prizes",
                     KP_DRAW_PRIZES_MAX);
        goto out;
    }
    for (size_t i = 0; i < json_array_size(jp); i++) {
        json_t *p = json_array_get(jp, i);
        snprintf(prizes[i].name, sizeof prizes[i].name, "%s", jstr(p, "name"));
        prizes[i].count = json_integer_value(json_object_get(p, "count"));
        n_prizes++;
    }
    /* the entries */
    json_t *je_arr = json_object_get(root, "entries");
    if (!json_is_array(je_arr)) {
        kp_error_set(e, KP_ERR_INVALID, "entries", "must be an array of {id, count}");
        goto out;
    }
    size_t n = json_array_size(je_arr);
    entries = calloc(n ? n : 1, sizeof *entries);
    winners = calloc(KP_DRAW_SLOTS_MAX, sizeof *winners);
    if (entries == NULL || winners == NULL) {
        kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
        goto out;
    }
    int64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_array_get(je_arr, i);
        const char *id = jstr(x, "id");
        json_t *count = json_object_get(x, "count");
        if (id[0] == '\0' || strlen(id) >= KP_DRAW_ID_HEX || !json_is_integer(count)) {
            kp_error_set(e, KP_ERR_INVALID, "entries", "entry %zu must be {id: up to 16 "
                         "characters, count: a whole number}", i);
            goto out;
        }
        snprintf(entries[i].id, sizeof entries[i].id, "%s", id);
        entries[i].count = json_integer_value(count);
        if (entries[i].count < 1) problem(&v, "entries: entry %zu (%s) has count %lld, below 1",
                                          i, id, (long long)entries[i].count);
        else if (__builtin_add_overflow(total, entries[i].count, &total)) total = INT64_MAX;
        if (i > 0 && strcmp(entries[i - 1].id, id) >= 0)
            problem(&v, "entries: entry %zu (%s) is not after entry %zu (%s) in id order", i, id,
                    i - 1, entries[i - 1].id);
    }
    json_t *jt = json_object_get(root, "total_entries");
    if (!json_is_integer(jt) || json_integer_value(jt) != total)
        problem(&v, "total_entries: the entries sum to %lld, the file says %lld",
                (long long)total, (long long)json_integer_value(jt));
    char digest[65];
    kp_draw_entries_digest(entries, n, digest);
    if (strcmp(digest, jstr(root, "entries_digest")) != 0)
        problem(&v, "entries_digest: the entries hash to %s, the file says %.64s", digest,
                jstr(root, "entries_digest"));
    if (v.problems > 0) {
        /* entries not in order cannot be drawn over: sort a copy to show
         * what the winners would be; the problems above already fail it */
        qsort(entries, n, sizeof *entries, cmp_entry);
    }
    size_t n_winners = 0;
    kp_error we = {0};
    if (kp_draw_winners(seed, entries, n, prizes, n_prizes, winners, &n_winners, &we)) {
        problem(&v, "winners: cannot be drawn: %s: %s", we.field, we.message);
    } else {
        json_t *jw = json_object_get(root, "winners");
        size_t fw = json_is_array(jw) ? json_array_size(jw) : 0;
        if (!json_is_array(jw) || fw != n_winners)
            problem(&v, "winners: the procedure draws %zu, the file lists %zu", n_winners, fw);
        for (size_t i = 0; i < n_winners && i < fw; i++) {
            json_t *w = json_array_get(jw, i);
            long long slot = json_integer_value(json_object_get(w, "slot"));
            if (slot != winners[i].slot || strcmp(jstr(w, "id"), winners[i].id) != 0 ||
                strcmp(jstr(w, "prize"), prizes[winners[i].prize].name) != 0)
                problem(&v, "winners: slot %lld (%s) goes to %s by the procedure, the file says "
                        "slot %lld (%.60s) to %.20s", (long long)winners[i].slot,
                        prizes[winners[i].prize].name, winners[i].id, slot,
                        jstr(w, "prize"), jstr(w, "id"));
        }
    }
    result = v.problems;
out:
    free(entries);
    free(winners);
    json_decref(root);
    return result;
}
