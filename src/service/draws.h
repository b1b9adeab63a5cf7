/*
 * draws.h: prize draws anyone can verify (docs/marketing.md "Prize
 * draws"; seed 001: a draw whose mechanism is opaque breeds passivity).
 *
 * A draw is created with a random 32-byte seed, sealed with the key file
 * (src/crypto/pii.c) and kept in the store; its commitment, the SHA-256 of
 * the seed, is published at once. After the period, closing computes the
 * entries from the ledger's purchases and returns, anonymises the
 * participants (a keyed MAC of the account id with a per-draw key derived
 * from the key file: the published list names nobody), and draws the
 * winners by the procedure kp_draw_winners() implements, over the
 * published data alone; then seed, entries and winners are published and
 * never change. `kopilka draw verify` and the public page repeat the
 * procedure from the published JSON.
 *
 * The office operations check draw.manage and write one audit entry each;
 * the public answer and the verification need no permission.
 */
#ifndef KOPILKA_SERVICE_DRAWS_H
#define KOPILKA_SERVICE_DRAWS_H

#include <kopilka/draws.h>

#include "core/buf.h"
#include "people.h"

enum {
    KP_DRAW_PRIZES_MAX = 32,  /* prizes of one draw */
    KP_DRAW_SLOTS_MAX = 1000, /* winners of one draw (prizes' counts summed) */
    KP_DRAW_ID_HEX = 17,      /* an anonymised participant id: 16 hex digits and a NUL */
    KP_DRAW_LIST_MAX = 100,   /* draws one list answers */
};

/* The tag of the procedure (docs/marketing.md), published with each draw
 * and the prefix of every ticket's message. */
#define KP_DRAW_PROCEDURE "kopilka-draw-v1"

typedef struct kp_draw_prize {
    char name[KP_STR_MAX];
    int64_t count; /* >= 1 */
} kp_draw_prize;

/* One participant of a closed draw. */
typedef struct kp_draw_entry {
    char id[KP_DRAW_ID_HEX];
    int64_t count; /* >= 1 */
} kp_draw_entry;

/* One prize slot's winner: slots are the prizes in order, each repeated
 * count times, numbered from 0. */
typedef struct kp_draw_winner {
    int64_t slot;
    size_t prize; /* index into the prizes */
    char id[KP_DRAW_ID_HEX];
} kp_draw_winner;

/* What a new draw is made of; times RFC 3339, rule "spend" or "visit". */
typedef struct kp_draw_spec {
    char name[KP_STR_MAX];
    char from[64], to[64];
    char rule[16];
    int64_t per_minor; /* "spend": minor units an entry costs */
    char store[KP_STR_MAX];
    char tier[KP_STR_MAX];
    size_t n_prizes;
    kp_draw_prize prizes[KP_DRAW_PRIZES_MAX];
} kp_draw_spec;

/* The SHA-256 over the entries (sorted by id), as the procedure defines
 * it: each entry "<id>:<count>\n" in order; hex into out. */
void kp_draw_entries_digest(const kp_draw_entry *entries, size_t n, char out[65]);

/* The procedure: over entries sorted by id (strictly ascending, counts >=
 * 1), the prizes' slots in order, each slot's winner drawn from the
 * participants that have not won yet with a chance proportional to their
 * entries (docs/marketing.md gives every step). Fills out[] (room for
 * KP_DRAW_SLOTS_MAX) and *n_out: one a slot, fewer when the participants
 * run out. KP_ERR_INVALID naming the field when the entries are not in
 * order, a count is < 1 or the slots are too many; KP_ERR_OVERFLOW when the
 * entries' sum does not fit. */
kp_err kp_draw_winners(const uint8_t seed[32], const kp_draw_entry *entries, size_t n,
                       const kp_draw_prize *prizes, size_t n_prizes, kp_draw_winner *out,
                       size_t *n_out, kp_error *e);

/* (draw.manage) Creates a draw from spec: seed drawn, sealed, commitment
 * computed; writes the draw's office JSON into out. Needs the key file.
 * Errors name the field (name, from, to, rule.kind, rule.per_minor,
 * prizes[i].name, prizes[i].count). Runs in the caller's transaction. */
kp_err kp_draw_create(kp_office *o, const kp_draw_spec *spec, kp_buf *out, kp_error *e);
/* The same from a JSON body (POST /v1/admin/draws, docs/api.md). */
kp_err kp_draw_create_json(kp_office *o, const char *body, size_t len, kp_buf *out, kp_error *e);

/* (draw.manage) Closes draw `id` after its period: entries computed and
 * frozen, winners drawn, seed published; out gets the public JSON.
 * Idempotent: a closed draw answers its frozen result, *replayed set.
 * KP_ERR_CONFLICT (field "to") before the period's end. Needs the key file.
 * Runs in the caller's transaction. */
kp_err kp_draw_close(kp_office *o, int64_t id, kp_buf *out, bool *replayed, kp_error *e);

/* The close in two halves, so the server reads on a reader and writes
 * through the writer (src/server/http_draws.c): kp_draw_close_read()
 * checks the draw, opens its seed, reads the period's purchases and
 * returns (one statement: one snapshot) and the tiers, and computes the
 * entries and winners into *c (or, for a closed draw, answers its frozen
 * result into out with c->closed set); kp_draw_close_write() then freezes
 * them unless the draw was closed meanwhile, whose frozen result it
 * answers instead (*replayed). kp_draw_close() is both on one office.
 * Release c with kp_draw_closing_release() (its seed is wiped). */
typedef struct kp_draw_closing {
    bool closed, ready;
    kp_buf text;  /* entries, NUL, winners, NUL */
    size_t split; /* where the winners start */
    size_t n, n_winners;
    char seed_hex[65];
} kp_draw_closing;
kp_err kp_draw_close_read(kp_office *o, int64_t id, kp_draw_closing *c, kp_buf *out,
                          kp_error *e);
kp_err kp_draw_close_write(kp_office *o, int64_t id, kp_draw_closing *c, kp_buf *out,
                           bool *replayed, kp_error *e);
void kp_draw_closing_release(kp_draw_closing *c);

/* (draw.manage) Draws, newest first (id < before; 0 = from the newest),
 * at most KP_DRAW_LIST_MAX: {"draws":[...]} of office JSON. */
kp_err kp_draw_list(kp_office *o, int64_t before, kp_buf *out, kp_error *e);

/* (no permission) The public JSON of draw `id` (GET /v1/draws/{id}): what
 * anyone may see; KP_ERR_NOT_FOUND when there is none. */
kp_err kp_draw_public(kp_office *o, int64_t id, kp_buf *out, kp_error *e);

/* (the customer themselves) The draws as the customer sees them in the
 * cabinet: {"draws":[{id, name, from, to, state, commitment, "me":{id,
 * entries, prize}}]}, "me" null when not a participant of a closed draw. */
kp_err kp_draw_mine(kp_office *o, int64_t customer_id, kp_buf *out, kp_error *e);

/* Verifies the public JSON of a closed draw from itself alone: the
 * commitment against the seed, the entries' order, total and digest, and
 * the winners recomputed. report(ctx, line) for each mismatch (naming the
 * field and both values); returns how many. -1 when the text is not such a
 * JSON, with e saying why. */
int kp_draw_verify_text(const char *text, size_t len, void (*report)(void *ctx, const char *line),
                        void *ctx, kp_error *e);

#endif
