/*
 * draws.h: prize draws as the store keeps them (kp_store_ops.draws,
 * docs/marketing.md "Prize draws"). A draw has a name, a period [from, to),
 * an entry rule, prizes, and, from its creation, a commitment: the SHA-256
 * of a random seed that stays sealed (the key file, src/crypto/pii.c) until
 * the draw is closed. Closing freezes the entries (anonymised participants
 * and their entry counts), the seed in clear and the winners, once: a draw
 * is never closed twice and its commitment never changes.
 *
 * The store keeps the prizes, the entries and the winners as texts in the
 * service's own format (src/service/draws.c writes and reads them): it
 * neither parses nor checks them.
 *
 * The general contract of store.h holds (errors, transactions, lists,
 * ownership: the texts a read returns are malloc'd, freed with
 * kp_draw_release()). None of these pointers is NULL.
 */
#ifndef KOPILKA_DRAWS_H
#define KOPILKA_DRAWS_H

#include "kopilka.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kp_store kp_store;

typedef enum kp_draw_rule {
    KP_DRAW_PER_SPEND = 1, /* one entry per `per_minor` minor units spent, net of returns */
    KP_DRAW_PER_VISIT = 2, /* one entry per purchase (receipt) not wholly returned */
} kp_draw_rule;

enum {
    KP_DRAW_HEX = 65,          /* 64 hex digits and a NUL: a commitment, a seed */
    KP_DRAW_SEALED_HEX = 145,  /* the sealed seed in hex: (32 + 40) * 2 + NUL */
};

typedef struct kp_draw {
    int64_t id; /* set by draw_insert */
    char name[KP_STR_MAX];
    kp_time from, to; /* the period of the purchases that count: from <= at < to */
    kp_draw_rule rule;
    int64_t per_minor;     /* KP_DRAW_PER_SPEND: minor units an entry costs (> 0); else 0 */
    char store[KP_STR_MAX]; /* only purchases at this store count; "" = every store */
    char tier[KP_STR_MAX];  /* only accounts of this tier at closing; "" = any */
    char *prizes;           /* the service's text of the ordered prizes; never NULL in a write */
    char commitment[KP_DRAW_HEX];        /* SHA-256 of the seed, hex */
    char sealed_seed[KP_DRAW_SEALED_HEX]; /* the seed sealed with the key file, hex */
    kp_time created_at;
    char created_by[96]; /* the actor: "staff:anna", "cli" */
    /* Set by draw_close; 0, "" and NULL while the draw is open. */
    kp_time closed_at;
    char closed_by[96];
    char seed[KP_DRAW_HEX]; /* the seed in clear, hex */
    char *entries;          /* the service's text of the entries */
    char *winners;          /* the service's text of the winners */
} kp_draw;

/* Frees the texts of a draw a read filled (prizes, entries, winners) and
 * sets them to NULL; the struct itself is the caller's. */
void kp_draw_release(kp_draw *d);

typedef struct kp_draws_ops {
    /* (write) Adds an open draw: every field but id and the closing ones
     * (which are ignored); sets d->id (ids grow, from 1).
     * KP_ERR_INVALID when the name, the commitment or the sealed seed is
     * empty, or from >= to, or the rule is unknown, or per_minor is not > 0
     * for KP_DRAW_PER_SPEND. */
    kp_err (*draw_insert)(kp_store *s, kp_draw *d);
    /* (read) The draw `id` into *out (zeroed first), with its texts (the
     * caller frees them with kp_draw_release()); KP_ERR_NOT_FOUND when
     * there is none. */
    kp_err (*draw_get)(kp_store *s, int64_t id, kp_draw *out);
    /* (read) Draws with id < before (0 = from the newest), newest first, at
     * most `limit` into items[], *n set; each with its prizes, without its
     * entries and winners (NULL; closed_at and seed set). The caller frees
     * each with kp_draw_release(). */
    kp_err (*draw_list)(kp_store *s, int64_t before, kp_draw *items, size_t limit, size_t *n);
    /* (write) Closes the open draw `id`: sets closed_at, closed_by, seed,
     * entries and winners from d (its other fields are ignored), in one
     * statement. KP_ERR_NOT_FOUND when there is no such draw,
     * KP_ERR_CONFLICT (nothing changed) when it is closed already: a draw's
     * result is written once. */
    kp_err (*draw_close)(kp_store *s, int64_t id, const kp_draw *d);
} kp_draws_ops;

#endif
