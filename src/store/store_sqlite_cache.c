/*
 * store_sqlite_cache.c: the writer connection's cache of what a purchase
 * reads (store_sqlite_cache.h): two open-addressing tables (linear
 * probing), cards by number and accounts by id, each entry stamped with the
 * table's generation so that a clear is one increment. An entry that must
 * no longer be trusted keeps its slot (so probe chains stay whole) and is
 * marked stale; the next read of it misses and refills it in place.
 */
#include "store_sqlite_cache.h"

#include <stdlib.h>
#include <string.h>

enum {
    CARD_NUMBER_MAX = 40,     /* longer numbers are not cached (always read) */
    SLOTS_FIRST = 1u << 12,   /* each table's first size */
    SLOTS_MAX = 1u << 22,     /* past 70 % of this, a table clears instead of growing */
    JOURNAL_MAX = 16,         /* accounts applied to in one savepoint */
};

typedef struct card_slot {
    uint32_t gen;  /* the table's generation when filled: otherwise empty */
    bool valid;    /* false: stale, read again */
    int8_t may_burn; /* -1 unknown */
    bool registered;
    int32_t state;
    int64_t account_id;
    uint64_t hash;
    char number[CARD_NUMBER_MAX];
} card_slot;

typedef struct account_slot {
    uint32_t gen;
    bool valid;
    bool rules_known;
    int64_t id;
    int64_t balance, debt, purchases, spend_minor;
    kp_account_rules rules;
    uint32_t n_lots, cap_lots;
    kp_lot *lots; /* kept across generations, reused by the slot's next account */
} account_slot;

struct sqlite_cache {
    uint32_t gen; /* starts at 1: calloc'd slots (gen 0) are empty */
    card_slot *cards;
    size_t n_card_slots, n_cards;
    account_slot *accounts;
    size_t n_account_slots, n_accounts;
    size_t lots_bytes;
    int64_t journal[JOURNAL_MAX];
    size_t n_journal;
    bool journal_full;
    sqlite_cache_stats st;
};

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static uint64_t hash_str(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    return mix64(h);
}

sqlite_cache *store_sqlite_cache_new(void)
{
    sqlite_cache *c = calloc(1, sizeof *c);
    if (c == NULL) return NULL;
    c->gen = 1;
    c->cards = calloc(SLOTS_FIRST, sizeof *c->cards);
    c->accounts = calloc(SLOTS_FIRST, sizeof *c->accounts);
    if (c->cards == NULL || c->accounts == NULL) {
        store_sqlite_cache_free(c);
        return NULL;
    }
    c->n_card_slots = c->n_account_slots = SLOTS_FIRST;
    return c;
}

void store_sqlite_cache_free(sqlite_cache *c)
{
    if (c == NULL) return;
    if (c->accounts)
        for (size_t i = 0; i < c->n_account_slots; i++) free(c->accounts[i].lots);
    free(c->accounts);
    free(c->cards);
    free(c);
}

void store_sqlite_cache_clear(sqlite_cache *c)
{
    c->gen++;
    if (c->gen == 0) { /* wrapped: old stamps could match again */
        for (size_t i = 0; i < c->n_card_slots; i++) c->cards[i].gen = 0;
        for (size_t i = 0; i < c->n_account_slots; i++) c->accounts[i].gen = 0;
        c->gen = 1;
    }
    c->n_cards = c->n_accounts = 0;
    c->n_journal = 0;
    c->journal_full = false;
    c->st.clears++;
}

void store_sqlite_cache_stats(const sqlite_cache *c, sqlite_cache_stats *out)
{
    *out = c->st;
    out->cards = c->n_cards;
    out->accounts = c->n_accounts;
    out->bytes = sizeof *c + c->n_card_slots * sizeof *c->cards +
                 c->n_account_slots * sizeof *c->accounts + c->lots_bytes;
}

/* ------------------------------------------------------------------ cards */

static card_slot *card_find(sqlite_cache *c, const char *number, size_t len, uint64_t h)
{
    size_t mask = c->n_card_slots - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        card_slot *s = &c->cards[i];
        if (s->gen != c->gen) return NULL;
        if (s->hash == h && strncmp(s->number, number, len + 1) == 0) return s;
    }
}

bool store_sqlite_cache_card(sqlite_cache *c, const char *number, kp_card *out, int *may_burn)
{
    size_t len = strlen(number);
    if (len >= CARD_NUMBER_MAX) return false;
    card_slot *s = card_find(c, number, len, hash_str(number, len));
    if (s == NULL || !s->valid) {
        c->st.card_misses++;
        return false;
    }
    c->st.card_hits++;
    memcpy(out->number, number, len + 1);
    out->account_id = s->account_id;
    out->state = (kp_card_state)s->state;
    out->registered = s->registered;
    *may_burn = s->may_burn;
    return true;
}

/* Doubles the cards' table, or clears it at its largest. */
static void cards_grow(sqlite_cache *c)
{
    size_t n = c->n_card_slots * 2;
    card_slot *t = n <= SLOTS_MAX ? calloc(n, sizeof *t) : NULL;
    if (t == NULL) {
        store_sqlite_cache_clear(c);
        return;
    }
    for (size_t i = 0; i < c->n_card_slots; i++) {
        card_slot *s = &c->cards[i];
        if (s->gen != c->gen) continue;
        size_t j = s->hash & (n - 1);
        while (t[j].gen == c->gen) j = (j + 1) & (n - 1);
        t[j] = *s;
    }
    free(c->cards);
    c->cards = t;
    c->n_card_slots = n;
}

void store_sqlite_cache_card_put(sqlite_cache *c, const kp_card *card, int may_burn)
{
    size_t len = strlen(card->number);
    if (len >= CARD_NUMBER_MAX) return;
    uint64_t h = hash_str(card->number, len);
    card_slot *s = card_find(c, card->number, len, h);
    if (s == NULL) {
        if ((c->n_cards + 1) * 10 > c->n_card_slots * 7) cards_grow(c);
        size_t mask = c->n_card_slots - 1, i = h & mask;
        while (c->cards[i].gen == c->gen) i = (i + 1) & mask;
        s = &c->cards[i];
        s->gen = c->gen;
        s->hash = h;
        memcpy(s->number, card->number, len + 1);
        c->n_cards++;
    }
    s->valid = true;
    s->account_id = card->account_id;
    s->state = (int32_t)card->state;
    s->registered = card->registered;
    s->may_burn = (int8_t)may_burn;
}

void store_sqlite_cache_card_may_burn(sqlite_cache *c, const char *number, bool may_burn)
{
    size_t len = strlen(number);
    if (len >= CARD_NUMBER_MAX) return;
    card_slot *s = card_find(c, number, len, hash_str(number, len));
    if (s && s->valid) s->may_burn = may_burn ? 1 : 0;
}

void store_sqlite_cache_card_evict(sqlite_cache *c, const char *number)
{
    size_t len = strlen(number);
    if (len >= CARD_NUMBER_MAX) return;
    card_slot *s = card_find(c, number, len, hash_str(number, len));
    if (s && s->valid) {
        s->valid = false;
        c->st.evictions++;
    }
}

/* --------------------------------------------------------------- accounts */

static account_slot *account_find(sqlite_cache *c, int64_t id)
{
    size_t mask = c->n_account_slots - 1;
    for (size_t i = mix64((uint64_t)id) & mask;; i = (i + 1) & mask) {
        account_slot *s = &c->accounts[i];
        if (s->gen != c->gen) return NULL;
        if (s->id == id) return s;
    }
}

bool store_sqlite_cache_account(sqlite_cache *c, int64_t id, kp_account *out,
                                kp_account_rules *rules, bool *rules_known)
{
    account_slot *s = account_find(c, id);
    if (s == NULL || !s->valid) {
        c->st.account_misses++;
        return false;
    }
    c->st.account_hits++;
    out->id = id;
    out->balance = s->balance;
    out->debt = s->debt;
    out->purchases = s->purchases;
    out->spend_minor = s->spend_minor;
    out->registered = false;
    out->n_lots = s->n_lots;
    if (s->n_lots) memcpy(out->lots, s->lots, s->n_lots * sizeof *s->lots);
    *rules_known = s->rules_known;
    if (s->rules_known) *rules = s->rules;
    return true;
}

static void accounts_grow(sqlite_cache *c)
{
    size_t n = c->n_account_slots * 2;
    account_slot *t = n <= SLOTS_MAX ? calloc(n, sizeof *t) : NULL;
    if (t == NULL) {
        store_sqlite_cache_clear(c);
        return;
    }
    for (size_t i = 0; i < c->n_account_slots; i++) {
        account_slot *s = &c->accounts[i];
        if (s->gen != c->gen) {
            c->lots_bytes -= (size_t)s->cap_lots * sizeof *s->lots;
            free(s->lots);
            continue;
        }
        size_t j = mix64((uint64_t)s->id) & (n - 1);
        while (t[j].gen == c->gen) j = (j + 1) & (n - 1);
        t[j] = *s;
    }
    free(c->accounts);
    c->accounts = t;
    c->n_account_slots = n;
}

/* Room for n lots in s; false (and the slot stale) when memory fails. */
static bool lots_room(sqlite_cache *c, account_slot *s, size_t n)
{
    if (n <= s->cap_lots) return true;
    size_t cap = s->cap_lots ? s->cap_lots * 2 : 1;
    while (cap < n) cap *= 2;
    kp_lot *l = realloc(s->lots, cap * sizeof *l);
    if (l == NULL) {
        s->valid = false;
        return false;
    }
    c->lots_bytes += (cap - s->cap_lots) * sizeof *l;
    s->lots = l;
    s->cap_lots = (uint32_t)cap;
    return true;
}

/* The slot of account id, made (stale) when absent. */
static account_slot *account_slot_of(sqlite_cache *c, int64_t id)
{
    account_slot *s = account_find(c, id);
    if (s) return s;
    if ((c->n_accounts + 1) * 10 > c->n_account_slots * 7) accounts_grow(c);
    size_t mask = c->n_account_slots - 1, i = mix64((uint64_t)id) & mask;
    while (c->accounts[i].gen == c->gen) i = (i + 1) & mask;
    s = &c->accounts[i];
    s->gen = c->gen;
    s->id = id;
    s->valid = false;
    s->n_lots = 0;
    c->n_accounts++;
    return s;
}

bool store_sqlite_cache_room(const sqlite_cache *c)
{
    return (c->n_cards + 1) * 10 <= SLOTS_MAX * 7 && (c->n_accounts + 1) * 10 <= SLOTS_MAX * 7;
}

void store_sqlite_cache_account_bare(sqlite_cache *c, int64_t id, int64_t balance, int64_t debt,
                                     int64_t purchases, int64_t spend_minor)
{
    if (id <= 0) return;
    account_slot *s = account_slot_of(c, id);
    s->balance = balance;
    s->debt = debt;
    s->purchases = purchases;
    s->spend_minor = spend_minor;
    s->n_lots = 0;
    memset(&s->rules, 0, sizeof s->rules);
    s->rules_known = true;
    s->valid = true;
}

void store_sqlite_cache_lot_add(sqlite_cache *c, int64_t account_id, const kp_lot *lot)
{
    account_slot *s = account_find(c, account_id);
    if (s == NULL || !s->valid) return;
    if (s->n_lots == KP_LOTS_MAX || !lots_room(c, s, s->n_lots + 1)) {
        s->valid = false;
        return;
    }
    s->lots[s->n_lots++] = *lot;
}

void store_sqlite_cache_account_put(sqlite_cache *c, const kp_account *a,
                                    const kp_account_rules *rules)
{
    if (a->id <= 0) return;
    account_slot *s = account_slot_of(c, a->id);
    s->valid = false;
    if (!lots_room(c, s, a->n_lots)) return;
    s->balance = a->balance;
    s->debt = a->debt;
    s->purchases = a->purchases;
    s->spend_minor = a->spend_minor;
    s->n_lots = (uint32_t)a->n_lots;
    if (a->n_lots) memcpy(s->lots, a->lots, a->n_lots * sizeof *s->lots);
    s->rules_known = rules != NULL;
    if (rules) s->rules = *rules;
    s->valid = true;
}

void store_sqlite_cache_account_rules(sqlite_cache *c, int64_t id, const kp_account_rules *rules)
{
    account_slot *s = account_find(c, id);
    if (s == NULL || !s->valid) return;
    s->rules = *rules;
    s->rules_known = true;
}

void store_sqlite_cache_account_evict(sqlite_cache *c, int64_t id)
{
    account_slot *s = account_find(c, id);
    if (s && s->valid) {
        s->valid = false;
        c->st.evictions++;
    }
}

static kp_lot *lot_of(account_slot *s, int64_t id)
{
    for (uint32_t i = 0; i < s->n_lots; i++)
        if (s->lots[i].id == id) return &s->lots[i];
    return NULL;
}

/* Lots in the order account_load() reads them: expires_at, then id. */
static int lot_cmp(const void *x, const void *y)
{
    const kp_lot *a = x, *b = y;
    if (a->expires_at != b->expires_at) return a->expires_at < b->expires_at ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

static void journal_note(sqlite_cache *c, int64_t id)
{
    for (size_t i = 0; i < c->n_journal; i++)
        if (c->journal[i] == id) return;
    if (c->n_journal < JOURNAL_MAX) c->journal[c->n_journal++] = id;
    else c->journal_full = true;
}

void store_sqlite_cache_apply(sqlite_cache *c, const kp_ledger_plan *plan, int64_t new_lot_id,
                              kp_time now)
{
    account_slot *s = account_find(c, plan->account_id);
    if (s == NULL || !s->valid) return;
    journal_note(c, plan->account_id);
    c->st.applied++;
    bool ok = !plan->lots_merge;
    for (size_t i = 0; ok && i < plan->n_changes; i++) {
        kp_lot *l = lot_of(s, plan->changes[i].lot_id);
        if (l == NULL) ok = false;
        else l->remaining += plan->changes[i].delta;
    }
    if (ok && plan->has_new_lot) {
        const kp_lot *n = &plan->new_lot;
        if (n->id) {
            kp_lot *l = lot_of(s, n->id);
            if (l == NULL) {
                ok = false;
            } else {
                l->amount += n->amount;
                l->remaining += n->amount;
                if (n->active_from > l->active_from) l->active_from = n->active_from;
                if (n->expires_at > l->expires_at) l->expires_at = n->expires_at;
            }
        } else if (new_lot_id <= 0 || !lots_room(c, s, s->n_lots + 1)) {
            ok = false;
        } else {
            kp_lot *l = &s->lots[s->n_lots++];
            memset(l, 0, sizeof *l);
            l->id = new_lot_id;
            memcpy(l->kind, n->kind, strnlen(n->kind, sizeof l->kind - 1));
            l->amount = l->remaining = n->amount;
            l->earned_at = n->earned_at ? n->earned_at : now;
            l->active_from = n->active_from;
            l->expires_at = n->expires_at;
            memcpy(l->partner, n->partner, strnlen(n->partner, sizeof l->partner - 1));
        }
    }
    if (!ok) {
        s->valid = false;
        c->st.evictions++;
        return;
    }
    uint32_t kept = 0;
    for (uint32_t i = 0; i < s->n_lots; i++)
        if (s->lots[i].remaining > 0) s->lots[kept++] = s->lots[i];
    s->n_lots = kept;
    if (kept > KP_LOTS_MAX) { /* account_load() would refuse it: let it */
        s->valid = false;
        c->st.evictions++;
        return;
    }
    if (kept > 1) qsort(s->lots, kept, sizeof *s->lots, lot_cmp);
    s->balance = plan->balance_after;
    s->debt = plan->debt_after;
    s->purchases += plan->purchases_delta;
    s->spend_minor += plan->spend_delta_minor;
}

void store_sqlite_cache_savepoint(sqlite_cache *c)
{
    c->n_journal = 0;
    c->journal_full = false;
}

void store_sqlite_cache_rollback_to(sqlite_cache *c)
{
    if (c->journal_full) {
        store_sqlite_cache_clear(c);
        return;
    }
    for (size_t i = 0; i < c->n_journal; i++) store_sqlite_cache_account_evict(c, c->journal[i]);
    c->n_journal = 0;
}
