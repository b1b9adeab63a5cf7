/*
 * store_draws.h: what both backends' draws share (kopilka/draws.h): the
 * contract's checks of draw_insert, and the columns of the table `draws`
 * in the order both backends' reads select them. Defined in store_draws.c.
 */
#ifndef KOPILKA_STORE_DRAWS_H
#define KOPILKA_STORE_DRAWS_H

#include <kopilka/draws.h>
#include <kopilka/store.h>

/* The columns every read selects, in this order (store_draws.c's readers
 * follow it): id, name, from_at, to_at, rule, per_minor, store, tier,
 * prizes, commitment, sealed_seed, created_at, created_by, closed_at,
 * closed_by, seed; entries and winners follow when asked. */
#define STORE_DRAW_COLUMNS                                                                      \
    "id, name, from_at, to_at, rule, per_minor, store, tier, prizes, commitment, sealed_seed,"  \
    " created_at, created_by, closed_at, closed_by, seed"

/* KP_OK, or KP_ERR_INVALID with what is wrong in s->last_error. */
kp_err store_draw_check(kp_store *s, const kp_draw *d);

#endif
