/*
 * service_rules.h: the service side of the program rules: pricing a basket
 * with the account's rule state and the program's script, the tier a till
 * shows, one-time grants and external events, the individual discount, and
 * the time-driven work (expiry, birthdays, tenure, tier reviews) that the
 * server's scheduler and `kopilka tick` run.
 *
 * Like service.h, nothing here knows HTTP; answers are JSON into a kp_buf;
 * writes run inside a transaction the caller opened.
 */
#ifndef KOPILKA_SERVICE_RULES_H
#define KOPILKA_SERVICE_RULES_H

#include "service.h"

/* ---- pricing */

/* Fills the rule state of sc->account the program uses (tier, individual
 * discount, this calendar year's spend before `at`). Call after
 * account_load. `rules`: the account's rule state already read (till_load
 * with KP_TILL_RULES), or NULL to read it here. */
kp_err kp_service_account_rules(kp_store *st, const kp_program *program, kp_time at,
                                kp_account *account, const kp_account_rules *rules,
                                kp_error *e);
/* Whether the program prices with the accounts' rule state (tiers, a
 * cumulative discount): what kp_service_account_rules() reads. */
bool kp_service_uses_rule_state(const kp_program *program);

/* Prices req's basket for sc->account (loaded, with its rule state) into
 * sc->quote: the script's burn ceiling, the engine, the script's earn. A
 * failing script leaves the declarative result and says so in the
 * explanation. */
kp_err kp_service_price(const kp_program *program, const char *store, const kp_purchase_req *req,
                        kp_time at, kp_scratch *sc, kp_error *e);

/* Writes ,"tier":{name, earn_multiplier, discount, privileges} (or null)
 * for tier `index` of the program. */
void kp_service_tier_json(kp_buf *b, const kp_program *program, int index);

/* ---- events and grants */

/* The circumstances of a grant: who, why, when. */
typedef struct kp_grant_ctx {
    const char *card;     /* for the operation row; "" when not known */
    const char *store;    /* the event's store; "" for the scheduler */
    const char *event_id; /* "" for the scheduler */
    const char *token;    /* a partner card number, ...; "" = none */
    bool has_value;
    int64_t value;
    int64_t years; /* tenure: full years as a customer */
    kp_time at;    /* earned at, and the year of a once-a-year grant */
    /* A campaign's member (a rule on "campaign" whose points depend on
     * them): their tier (index, -1 = none) and spend over the rule's
     * spend_days before `at` (kp_grant_member_figures). */
    bool member;
    int tier;
    int64_t spend_minor;
} kp_grant_ctx;

enum { KP_GRANT_KEY_MAX = 200 };

/* What a grant rule would give: its once-keys, the points and the lot. */
typedef struct kp_grant_plan {
    char keys[2][KP_GRANT_KEY_MAX];
    size_t n_keys;
    int64_t amount;
    bool overflow; /* points x years overflow: refused by the caller */
    kp_lot lot;    /* kind, earned_at, active_from, expires_at */
} kp_grant_plan;

/* The pure part of a grant, shared by kp_service_grant and the economic
 * model's replay (simulate.c): whether rule `rule` can give anything in
 * context g (false, with `why`, when it needs a value or a token the context
 * lacks), its once-keys for account_id, its points (times the years for a
 * per_year rule) and the lot they go to. Whether a key is used already is
 * the caller's to check. */
bool kp_grant_prepare(const kp_program *program, const kp_rule *rule, int64_t account_id,
                      const kp_grant_ctx *g, kp_grant_plan *out, char *why, size_t why_size);

/* Whether grant rule `rule`'s points depend on the member (points_by_tier,
 * percent_of_spend: a rule on "campaign"). */
bool kp_grant_rule_by_member(const kp_rule *rule);

/* Fills g's member figures for account `account_id` as rule `rule` needs
 * them, read as the engine and the tier review read them: the tier from
 * the account's rule state (account_rules_get), the spend as purchases
 * less returns over the rule's spend_days days before g->at
 * (account_spend_between). Sets g->member. */
kp_err kp_grant_member_figures(kp_store *st, const kp_program *program, const kp_rule *rule,
                               int64_t account_id, kp_grant_ctx *g, kp_error *e);

/* Gives grant rule `rule` to account `account_id` when the context meets
 * it and its once-keys (per customer, year, event, token) are still free:
 * a KP_OP_GRANT operation, a lot of the rule's kind and validity, and the
 * keys, in the caller's transaction. *points is what was given (0 when
 * refused) and `why` says what happened or why not. */
kp_err kp_service_grant(kp_store *st, const kp_program *program, const kp_rule *rule,
                        int64_t account_id, const kp_grant_ctx *g, kp_scratch *sc, int64_t *points,
                        kp_time *expires_at, char *why, size_t why_size, kp_error *e);

/* Applies every grant rule of `program` on event `type` to the account, and
 * appends ,"granted":[...],"refused":[...] to out; *total is the points
 * given. Registration (customers) and events call it. */
kp_err kp_service_trigger(kp_store *st, const kp_program *program, int64_t account_id,
                          const char *type, const kp_grant_ctx *g, kp_scratch *sc, kp_buf *out,
                          int64_t *total, kp_error *e);

typedef struct kp_event_req {
    char id[KP_STR_MAX]; /* idempotency key within the store */
    char card[KP_STR_MAX];
    char type[KP_EVENT_TYPE_MAX];
    bool has_value;
    int64_t value;          /* mileage, survey score, ... */
    char token[KP_STR_MAX]; /* a partner card number, an old card number */
    bool at_given;
    kp_time at;
} kp_event_req;

kp_err kp_event_req_parse(const char *body, size_t len, kp_event_req *out, kp_error *e);

/* Applies an outside event sent with a credential of kind `from`: every
 * grant rule `on` its type that the event meets and that was not given
 * before (per customer, year, token) credits its points. KP_ERR_FORBIDDEN
 * (field "type") when the program does not let `from` send this type
 * (kp_program_event_from), KP_ERR_INVALID (field "at") outside the till's
 * clock window (kp_till_check_at). Idempotent by (store, id): a retry
 * answers the first answer, *replayed set; another body under the same id
 * is KP_ERR_CONFLICT. */
kp_err kp_service_event(kp_store *st, const kp_program *program, kp_event_from from,
                        const char *store, const kp_event_req *req, kp_time now, kp_scratch *sc,
                        kp_buf *out, bool *replayed, kp_error *e);

/* Sets (has = true) or removes the individual discount of a card's account. */
kp_err kp_service_discount_set(kp_store *st, const char *card, bool has, int32_t bp, kp_error *e);

/* ---- time-driven work */

/* The tier review's pure parts, shared by the scheduler's tier_review job
 * and the economic model's replay (simulate.c), so both move accounts
 * between tiers the same way. The review instants are the 1st of every
 * month whose index (year * 12 + month - 1) is a multiple of the program's
 * tier_review_months, 00:00 in the program's calendar (program->n_tiers > 0
 * and tier_review_months > 0). */
/* The latest review instant at or before t. */
kp_time kp_tier_review_at_or_before(const kp_program *program, kp_time t);
/* The first review instant after the review month holding t. */
kp_time kp_tier_review_next(const kp_program *program, kp_time t);
/* The tier (index, -1 = none) after a review of an account in tier
 * `current` whose spend over the window qualifies for `qualified`
 * (kp_program_tier_for_spend): the qualified one, limited by the program's
 * downgrade rule. */
int kp_tier_reviewed(const kp_program *program, int current, int qualified);

/* The jobs, in the order a tick runs them. */
#define KP_JOBS "expiry, birthday, tenure, tier_review, remind_expiry"

typedef struct kp_tick_report {
    int64_t expired_accounts, expired_points;
    int64_t birthday_grants, tenure_grants, tier_changes;
    int64_t reminders; /* EXPIRING notifications written */
    int64_t runs;   /* job runs recorded */
    int64_t busy;   /* jobs skipped: another server is running them now */
    bool more;      /* work is left: call again */
    char note[256]; /* e.g. why birthdays were skipped */
} kp_tick_report;

/* Finds the accounts whose customer's birthday is (month, day): personal
 * data is sealed (customers, src/crypto), so the caller that holds the key
 * provides this. Accounts after id `after`, in id order. */
typedef struct kp_birthday_finder {
    kp_err (*find)(void *ctx, kp_store *st, int month, int day, int64_t after, int64_t *ids,
                   size_t limit, size_t *n);
    void *ctx;
} kp_birthday_finder;

/* The finder of a database: birthdays are stored as the blind index of
 * "MM-DD" (src/crypto/pii.h) under the key file beside the database
 * (DB.key), read when first needed. Without a key file no birthday can have
 * been recorded, and the finder finds none. */
typedef struct kp_birthdays kp_birthdays;
kp_err kp_birthdays_open(const char *db_path, kp_birthdays **out, kp_error *e);
const kp_birthday_finder *kp_birthdays_finder(kp_birthdays *b);
void kp_birthdays_free(kp_birthdays *b);


typedef struct kp_tick_opts {
    const kp_birthday_finder *birthdays; /* NULL: birthday grants wait (noted) */
    /* The caller finds the accounts with expired lots itself (on a read
     * connection, so the scan never holds up the writer) and hands them to
     * kp_service_expire(). */
    bool skip_expiry;
} kp_tick_opts;

/* Runs due time-driven work at `now`, at most `budget` accounts of it, in
 * one transaction the caller opened; each due item exactly once (its state
 * commits with its effects), missed items caught up in order. opts may be
 * NULL. Adds to *report; report->more says whether to call again. A job
 * whose state another server holds (job_state_get: KP_ERR_BUSY) is skipped
 * with nothing written and counted in report->busy; not an error. */
kp_err kp_service_tick(kp_store *st, const kp_program *program, const kp_tick_opts *opts,
                       kp_time now, int64_t budget, kp_scratch *sc, kp_tick_report *report,
                       kp_error *e);

/* Expires what is due at `now` in the lots of accounts ids[0..n) (found
 * with kp_triggers_ops.accounts_expiring): one KP_OP_EXPIRE operation per
 * account (per KP_LOTS_MAX of its lots), its points to program:expired, and
 * a recorded run. */
kp_err kp_service_expire(kp_store *st, const kp_program *program, kp_time now, const int64_t *ids,
                         size_t n, kp_scratch *sc, kp_tick_report *report, kp_error *e);

#endif
