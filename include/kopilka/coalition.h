/*
 * coalition.h: partners of a coalition program, their funding, and the
 * settlement between them (docs/coalition.md).
 *
 * Who the partners are, which stores are theirs, their fees and their
 * share of breakage are written in the program file (kp_program.partners,
 * program.h), so they are versioned, validated and explained like every
 * rule, and a purchase's funding is a pure function of the program, the
 * account, the basket and the time, as its pricing is.
 *
 * Funding follows the lots: every lot carries its issuer (kp_lot.partner:
 * the partner whose store issued it, or who funded the grant; "" is the
 * operator). Points burnt at a store of partner R from a lot issued by I
 * are a debt of I to R at the value of a point in the receipt's currency;
 * points that expire release I's liability, of which the operator takes
 * its share of breakage; a partner-funded promotion at another partner's
 * store pays that store's partner the points it added; operator fees are
 * owed per operation and per point issued. Each of these is a settlement
 * entry (kp_settle_entry), written in the same transaction as the ledger
 * operation that causes it, so the two never disagree.
 *
 * Entries are grouped into monthly periods by the time they were booked
 * (never by the purchase's own date: an offline purchase or a late return
 * lands in the period open when it is written). A period is closed once its
 * month has ended; its statements are then numbered and immutable, and a
 * later correction lands in the next period.
 *
 * The kp_settle_* functions here are pure (src/core/settle.c); the store
 * keeps entries, periods and statements (kp_settle_ops below).
 */
#ifndef KOPILKA_COALITION_H
#define KOPILKA_COALITION_H

#include "kopilka.h"
#include "ledger.h"
#include "program.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The operator of the coalition, as a party of entries: the empty code.
 * Lots of a program without partners, grants without a funding partner,
 * adjustments and opening balances are the operator's. */
#define KP_OPERATOR ""

typedef enum kp_settle_kind {
    /* points issued by `payer` (a purchase's earn at its store, a grant it
     * funds); payee = payer; amount 0: a liability, not a payment */
    KP_SETTLE_ISSUE = 1,
    /* points of lots issued by `payer` burnt at a store of `payee`; amount =
     * points x value when payer != payee, else 0 */
    KP_SETTLE_BURN = 2,
    /* points of lots issued by `payer` expired; payee = operator; amount =
     * the operator's share of their value (partner's breakage_to_operator) */
    KP_SETTLE_EXPIRE = 3,
    /* a partner-funded promotion: `payer` (the funder) pays `payee` (the
     * store's partner, the lot's issuer) for the points its rules added */
    KP_SETTLE_PROMO = 4,
    /* operator fee: payer = the partner, payee = operator; per operation
     * (points 0) or per point issued (points = the points) */
    KP_SETTLE_FEE = 5,
} kp_settle_kind;

const char *kp_settle_kind_name(kp_settle_kind kind);

enum { KP_SETTLE_ENTRIES_MAX = 2 * KP_LOTS_MAX + 8 }; /* entries of one operation */

/* One settlement entry. A return books negative points and amounts on the
 * kinds of the purchase it reverses, so sums over a period are net. */
typedef struct kp_settle_entry {
    int64_t op_id;                    /* the ledger operation (set by the store) */
    kp_time booked_at;                /* the server's time of writing */
    int32_t period;                   /* yyyymm in the program's calendar (set by the store) */
    char currency[4];                 /* the receipt's currency: ISO 4217 */
    kp_settle_kind kind;
    char payer[KP_PARTNER_CODE_MAX];  /* "" = operator */
    char payee[KP_PARTNER_CODE_MAX];
    int64_t points;                   /* signed */
    int64_t amount_minor;             /* signed; owed by payer to payee */
} kp_settle_entry;

typedef struct kp_settle_plan {
    size_t n;
    kp_settle_entry entries[KP_SETTLE_ENTRIES_MAX];
} kp_settle_plan;

/* The partner whose store `store` is, by the program's store patterns
 * (first match in file order; "WASH-*" matches any code starting "WASH-"),
 * or KP_OPERATOR. Never NULL. */
const char *kp_program_partner_of_store(const kp_program *p, const char *store);

/* The currency a store pattern fixes for `store`'s receipts (partners'
 * patterns first, then the program's "stores"), or "" when none does. */
const char *kp_program_store_currency(const kp_program *p, const char *store);

/* True when `rule` may apply to a receipt at `store` (of `store_partner`,
 * kp_program_partner_of_store) in `currency` ("" = the program's own): its
 * store, its partner (or at_partner) and its currency fit. Kind, window,
 * category and tier are the engine's to check. */
bool kp_rule_fits_store(const kp_program *p, const kp_rule *rule, const char *store,
                        const char *store_partner, const char *currency);

/* The partner named `code`, or NULL. */
const kp_partner *kp_program_partner(const kp_program *p, const char *code);

/* True when the program has partners: only then are entries written (a
 * program without partners writes none and costs the till nothing). */
bool kp_program_is_coalition(const kp_program *p);

/* Minor units of `currency` one point is worth: the currency's own
 * minor_per_point, or the program's for its base currency; 0 when the
 * program does not accept `currency`. */
int64_t kp_program_minor_per_point(const kp_program *p, const char *currency);

/* ---- planning entries (pure; src/core/settle.c) */

/* A purchase at `store` in `currency`: ISSUE of the earned points by the
 * store's partner; PROMO from each funder of a partner-funded rule that
 * applied (the points it added over what the basket earns without such
 * rules: `earned_without_promos`, priced by the caller with
 * kp_price_opts.no_partner_promos); BURN per issuer of the lots taken
 * (`account` holds the lots before the purchase, `quote->takes` what was
 * taken); FEE per operation and per point of the store's partner.
 * An empty plan for a program without partners. */
kp_err kp_settle_purchase(const kp_program *p, const char *store, const char *currency,
                          const kp_account *account, const kp_quote *quote,
                          int64_t earned_without_promos, kp_settle_plan *out, kp_error *e);

/* A return: the entries of the purchase (`original`, n of them) scaled by
 * what the return reverses (earned_reversed of the purchase's earned,
 * burned_refunded of its burned), negated, split so each kind's points add
 * up exactly (largest remainder). Per-operation fees are not given back. */
kp_err kp_settle_return(const kp_settle_entry *original, size_t n, int64_t earned,
                        int64_t earned_reversed, int64_t burned, int64_t burned_refunded,
                        kp_settle_plan *out, kp_error *e);

/* An expiry plan of `account` (plan from kp_ledger_plan_expire): EXPIRE
 * per issuer of the lots it expires. */
kp_err kp_settle_expire(const kp_program *p, const char *currency, const kp_account *account,
                        const kp_ledger_plan *plan, kp_settle_plan *out, kp_error *e);

/* A credit of `points` funded by `partner` (a grant, a cashback): ISSUE
 * and the per-point FEE. */
kp_err kp_settle_credit(const kp_program *p, const char *partner, const char *currency,
                        int64_t points, kp_settle_plan *out, kp_error *e);

/* The period (yyyymm) of an instant in a calendar `utc_offset_minutes`
 * from UTC. */
int32_t kp_settle_period_of(kp_time at, int32_t utc_offset_minutes);

/* ---- the store (kp_store_ops.settle; src/store/store_settle*.c) */

typedef struct kp_store kp_store;

/* Called for each entry of a scan; false stops it (the scan returns KP_OK). */
typedef bool (*kp_settle_entry_fn)(void *ctx, const kp_settle_entry *entry);

typedef struct kp_settle_ops {
    /* (write, in the caller's transaction: the operation's own) Adds the n
     * entries of operation `op_id`, booked at `booked_at` in `period`
     * (kp_settle_period_of), setting their op_id, booked_at and period: a
     * period that is closed books into the first open one after it. On
     * PostgreSQL it locks the settlement state row FOR SHARE first, so a
     * close waits for it and it for a close. n = 0 writes nothing and takes
     * no lock. KP_ERR_INVALID when an entry's points or amount are out of
     * range, its kind unknown, or its currency empty. */
    kp_err (*entries_put)(kp_store *s, int64_t op_id, kp_time booked_at, int32_t period,
                          const kp_settle_entry *entries, size_t n);
    /* The entries of operation `op_id`, in the order they were put, up to
     * max of them into out; *n their count (which may exceed max: then
     * KP_ERR_LIMIT). KP_OK with *n = 0 for none. */
    kp_err (*entries_of_op)(kp_store *s, int64_t op_id, kp_settle_entry *out, size_t max,
                            size_t *n);
    /* Every entry of `period` (0 = every period), of `partner` as payer or
     * payee (NULL = any), in (op_id, order put) order. */
    kp_err (*entries_scan)(kp_store *s, int32_t period, const char *partner,
                           kp_settle_entry_fn fn, void *ctx);
} kp_settle_ops;

#endif
