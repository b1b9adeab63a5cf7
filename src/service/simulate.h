/*
 * simulate.h: the economic model (docs/analytics.md, "The economic model").
 * A sales history (receipts with their lines, by card) is replayed through
 * the engine and the ledger planning a till's purchase and return use
 * (kp_engine_price_opts, kp_ledger_plan_purchase/_return/_expire), each
 * card's account kept in memory, under one program; the result is counted
 * month by month (points issued, burnt, expired, the liability, the cost as
 * a share of revenue) and rule by rule.
 *
 * The cards are partitioned across threads: a card's receipts stay in one
 * thread, in time order, so the result does not depend on the number of
 * threads. Nothing is allocated per receipt: the history is a few flat
 * arrays, each thread owns one account and one quote.
 */
#ifndef KOPILKA_SIMULATE_H
#define KOPILKA_SIMULATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <kopilka/engine.h>
#include <kopilka/ledger.h>

#include "service_rules.h"

#include "core/buf.h"

typedef struct kp_sim_history kp_sim_history;

kp_sim_history *kp_sim_history_new(void);
void kp_sim_history_free(kp_sim_history *h);
/* Receipts held. */
int64_t kp_sim_history_count(const kp_sim_history *h);

/* Adds one receipt: card "" = without a card; is_return: a return of the
 * purchase with the same store and receipt (its lines by sku); burn: the
 * points the history says it burnt (-1 = unknown). KP_ERR_INVALID / _NOMEM. */
kp_err kp_sim_history_add(kp_sim_history *h, kp_time at, const char *store, const char *receipt,
                          const char *card, bool is_return, const kp_line *lines, size_t n,
                          int64_t burn, kp_error *e);

/* What the history knows of a card's customer, for the scheduler's grants
 * (birthday and tenure): the birthday (month 1..12, day 1..31; 0, 0 =
 * unknown) and when the card's account was created (0 = unknown: tenure
 * then counts from the card's first receipt in the history). A card "" is
 * ignored. KP_ERR_INVALID / _NOMEM. */
kp_err kp_sim_history_card(kp_sim_history *h, const char *card, int birth_month, int birth_day,
                           kp_time joined_at, kp_error *e);

/* Reads the sales CSV (docs/analytics.md): header
 * at,store,receipt,card,kind,sku,category,amount,qty in any order, the rows
 * of one receipt consecutive. Times without an offset are in `program`'s
 * time zone. e->field names "line N: column". */
kp_err kp_sim_history_csv(kp_sim_history *h, FILE *f, const kp_program *program, kp_error *e);

/* Reads a database's history with from <= at < to (0 = no bound): the
 * ledger's purchases (their stored lines, and the points they burnt) and
 * returns (the lines their answer names), and the sales the store keeps
 * (kp_store_ops.sales, when the backend has them). The ledger's members
 * (cards of its purchases) get their accounts' creation and, through
 * `birthdays` (may be NULL: none known), their customers' birthdays
 * (kp_sim_history_card); imported sales' cards get neither. A read: the
 * caller may hold a read transaction for one snapshot. */
struct kp_store;
kp_err kp_sim_history_db(kp_sim_history *h, struct kp_store *st, kp_time from, kp_time to,
                         const kp_birthday_finder *birthdays, kp_error *e);

typedef struct kp_sim_month {
    int year, month;
    int64_t receipts;        /* purchases with a card */
    int64_t receipts_nocard; /* purchases without one */
    int64_t revenue_minor;   /* every purchase, less returns */
    int64_t member_revenue_minor;
    int64_t discount_minor; /* discounts given (less returned ones) */
    int64_t burnt_minor;    /* money paid with points (less refunded) */
    int64_t issued;         /* points earned (less clawed back by returns) */
    int64_t burnt;          /* points burnt (less refunded by returns) */
    int64_t expired;
    int64_t liability; /* points outstanding at the month's end */
} kp_sim_month;

/* What one rule gave, net of returns: a return takes a line's points back
 * from the rules that gave them (each its share) and its discount from the
 * rule that gave it. */
typedef struct kp_sim_rule {
    char rule[48];
    kp_rule_kind kind;
    int64_t points;                  /* earned by it, less taken back */
    int64_t discount_minor;          /* given by it, less taken back */
    int64_t points_returned;         /* taken back by returns */
    int64_t discount_returned_minor; /* taken back by returns */
} kp_sim_rule;

typedef struct kp_sim_result {
    int64_t receipts; /* replayed */
    int64_t cards;
    int64_t skipped; /* refused by the engine or the ledger (a bad basket) */
    /* Tier reviews (a program with tiers and tier_review_months): the
     * cards' tier changes, and the cards in each tier at the end
     * (tier_cards[0]: none, [i + 1]: program->tiers[i]). */
    int64_t tier_changes;
    int64_t tier_cards[KP_TIERS_MAX + 1];
    /* The scheduler's grants (a program with grant rules on "birthday" or
     * "tenure"): how many were given; the cards whose birthday the
     * history does not know (no birthday grant for them: imported cards,
     * a CSV history); the cards whose tenure counts from their first
     * receipt in the history, their joining being unknown. */
    int64_t birthday_grants, tenure_grants;
    int64_t cards_without_birthday, cards_joined_unknown;
    size_t n_tiers;
    char tier_names[KP_TIERS_MAX][KP_TIER_NAME_MAX];
    int64_t minor_per_point;
    size_t n_months;
    kp_sim_month *months;
    size_t n_rules;
    kp_sim_rule *rules; /* by points + discount (net of returns), most first */
    kp_sim_month total; /* liability: at the end */
} kp_sim_result;

void kp_sim_result_free(kp_sim_result *r);

typedef void (*kp_sim_progress_fn)(void *ctx, int64_t done, int64_t total);

typedef struct kp_sim_opts {
    int32_t redemption_bp;       /* 0..10000: the share of the allowed burn; -1 = the history's */
    kp_time from, to;            /* receipts with from <= at < to; 0 = no bound */
    int threads;                 /* >= 1 */
    kp_sim_progress_fn progress; /* called from the calling thread, may be NULL */
    void *progress_ctx;
} kp_sim_opts;

/* Replays `h` under `program`. Deterministic: the same history, program and
 * options give the same result whatever opts->threads. */
kp_err kp_sim_run(const kp_sim_history *h, const kp_program *program, const kp_sim_opts *opts,
                  kp_sim_result *out, kp_error *e);

/* {"candidate":{...},"baseline":{...}|null}: each {"receipts","cards",
 * "months":[...],"rules":[...],"total":{...}}. */
void kp_sim_json(kp_buf *b, const kp_sim_result *candidate, const kp_sim_result *baseline);
/* A text table of the same. */
void kp_sim_text(FILE *f, const kp_sim_result *candidate, const kp_sim_result *baseline);

/* Splits `line` (no newline) into fields in place: commas, "quoted" fields
 * with "" for a quote. Returns the number of fields, max + 1 when there are
 * more (the sales CSV here, a bank's card transactions in cobrand.c). */
size_t kp_csv_split(char *line, char **fields, size_t max);

#endif
