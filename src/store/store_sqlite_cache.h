/* store_sqlite_cache.h: the SQLite writer connection's cache of what a
 * purchase reads (cards, accounts with their open lots and rule state, a
 * card's may_burn), kept behind the storage seam: store_sqlite.c fills it
 * on a miss, updates it from the purchase's own ledger plan and drops it
 * whenever anything else may have changed those rows (docs/architecture.md
 * "The writer's cache"). Owned by the writer thread; no locking. */
#ifndef KOPILKA_STORE_SQLITE_CACHE_H
#define KOPILKA_STORE_SQLITE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kopilka/ledger.h>
#include <kopilka/store.h>
#include <kopilka/triggers.h>

typedef struct sqlite_cache sqlite_cache;

/* What the cache counted, for the server's closing line. */
typedef struct sqlite_cache_stats {
    uint64_t card_hits, card_misses, account_hits, account_misses;
    uint64_t clears, evictions, applied;
    size_t cards, accounts; /* entries held now */
    size_t bytes;           /* memory held now, tables and lots */
} sqlite_cache_stats;

sqlite_cache *store_sqlite_cache_new(void);
void store_sqlite_cache_free(sqlite_cache *c);
/* Drops everything (O(1): the tables' generation moves on). */
void store_sqlite_cache_clear(sqlite_cache *c);
void store_sqlite_cache_stats(const sqlite_cache *c, sqlite_cache_stats *out);

/* The card `number` as card_find() gives it: true on a hit. *may_burn is
 * -1 when card_info's may_burn was not read yet, else 0 or 1. */
bool store_sqlite_cache_card(sqlite_cache *c, const char *number, kp_card *out, int *may_burn);
/* Keeps the card as read (may_burn -1: not known). */
void store_sqlite_cache_card_put(sqlite_cache *c, const kp_card *card, int may_burn);
void store_sqlite_cache_card_may_burn(sqlite_cache *c, const char *number, bool may_burn);
void store_sqlite_cache_card_evict(sqlite_cache *c, const char *number);

/* The account as account_load() gives it (registered false): true on a
 * hit. *rules_known says whether *rules holds account_rules_get()'s answer. */
bool store_sqlite_cache_account(sqlite_cache *c, int64_t id, kp_account *out,
                                kp_account_rules *rules, bool *rules_known);
/* Keeps the account as account_load() read it (rules NULL: not known). */
void store_sqlite_cache_account_put(sqlite_cache *c, const kp_account *a,
                                    const kp_account_rules *rules);
void store_sqlite_cache_account_rules(sqlite_cache *c, int64_t id, const kp_account_rules *rules);
void store_sqlite_cache_account_evict(sqlite_cache *c, int64_t id);
/* Applies a ledger plan the store has just written (plan_apply's rows) to
 * the cached account, as account_load() would read it afterwards:
 * balance, debt, counters, lot changes, the new lot (id new_lot_id, earned
 * at `now` unless the lot says) or the lot it joined; lots spent to 0
 * leave, the rest ordered by (expires_at, id). A plan the cache cannot
 * follow (a merge of lots, a lot it does not hold, past KP_LOTS_MAX) evicts
 * the account instead. Noted for rollback_to(). */
void store_sqlite_cache_apply(sqlite_cache *c, const kp_ledger_plan *plan, int64_t new_lot_id,
                              kp_time now);
/* Filling at start (store_sqlite.c's preload): whether both tables take
 * one more entry without growing past their largest (which would clear
 * them); an account put with no lots and rule state known as none
 * (account_rules_get()'s zeros), then its open lots in burn order and its
 * rule state. A lot past KP_LOTS_MAX evicts the account (account_load()
 * refuses it). */
bool store_sqlite_cache_room(const sqlite_cache *c);
void store_sqlite_cache_account_bare(sqlite_cache *c, int64_t id, int64_t balance, int64_t debt,
                                     int64_t purchases, int64_t spend_minor);
void store_sqlite_cache_lot_add(sqlite_cache *c, int64_t account_id, const kp_lot *lot);

/* A job's savepoint: the accounts applied to since are evicted by
 * rollback_to (their rows go back to the savepoint's). */
void store_sqlite_cache_savepoint(sqlite_cache *c);
void store_sqlite_cache_rollback_to(sqlite_cache *c);

#endif
