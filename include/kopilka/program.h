/*
 * program.h: a loyalty program, as the engine sees it. A program is written
 * as a JSON file (docs/rules.md); kp_program_parse() validates it and turns
 * it into this plain struct, which can be copied: its one pointer,
 * `compiled`, is an index the engine ignores in a copy (engine.h).
 * Loading a program file into a database creates a new immutable version;
 * every purchase records the version that priced it.
 *
 * The rule kinds, what each field means and how rules combine on one basket
 * are described in docs/rules.md; the comments here are the short form.
 */
#ifndef KOPILKA_PROGRAM_H
#define KOPILKA_PROGRAM_H

#include "kopilka.h"
#include "money.h"

enum {
    KP_POINT_KINDS_MAX = 8,     /* kinds of points a program defines */
    KP_RATE_STEPS_MAX = 8,      /* steps of one rate ladder */
    KP_TIERS_MAX = 8,           /* tiers (levels) of a program */
    KP_TIER_PRIVILEGES_MAX = 8, /* non-money privileges of one tier */
    KP_PRIVILEGE_NAME_MAX = 64, /* bytes of a privilege's name, with the NUL */
    KP_TIER_NAME_MAX = 32,
    KP_KIND_NAME_MAX = 16, /* = sizeof kp_lot.kind */
    KP_EVENT_TYPE_MAX = 32,
    KP_SCRIPT_MAX = 16384, /* bytes of a program's Lua script */
    KP_SCRIPT_FN_MAX = 48,
    KP_EVENT_SOURCES_MAX = 32, /* event types a program accepts from outside */
    KP_PARTNERS_MAX = 32,       /* partners of a coalition program (coalition.h) */
    KP_PARTNER_CODE_MAX = 24,   /* bytes of a partner's code, with the NUL */
    KP_STORE_PATTERNS_MAX = 32, /* store patterns of one partner, or of the program */
    KP_STORE_PATTERN_MAX = 64,  /* bytes of one pattern, with the NUL */
    KP_CURRENCIES_MAX = 8,      /* currencies a program accepts besides its own */
};

/* Stores by code: "WASH-7" is that store, "WASH-*" every store whose code
 * starts with "WASH-", "*" every store. A pattern may fix the currency of
 * its stores' receipts (docs/coalition.md, "Currencies"). */
typedef struct kp_store_pattern {
    char match[KP_STORE_PATTERN_MAX];
    char currency[4]; /* "" = not fixed */
} kp_store_pattern;

/* A partner of a coalition program: its stores, and what it pays the
 * operator (docs/coalition.md, "Funding"). Fees are owed in the receipt's
 * currency. */
typedef struct kp_partner {
    char code[KP_PARTNER_CODE_MAX]; /* [a-z0-9_-], unique; never "" (the operator) */
    char name[128];
    size_t n_stores;
    kp_store_pattern stores[KP_STORE_PATTERNS_MAX];
    int64_t fee_per_operation_minor; /* per purchase at its stores */
    int32_t fee_per_point_bp;        /* per point it issues, a share of the point's value */
    int32_t breakage_to_operator_bp; /* the operator's share of its expired points' value */
    /* A co-branded bank card's bank: cashback on card spend anywhere,
     * credited as points it funds (docs/coalition.md, "Co-branded card"). */
    bool bank;
    int32_t cashback_bp;                     /* of a card transaction's amount */
    char cashback_kind[KP_KIND_NAME_MAX];    /* the point kind credited */
} kp_partner;

/* A currency the program accepts besides its own, and a point's value in it. */
typedef struct kp_currency_def {
    char code[4];
    int64_t minor_per_point;
} kp_currency_def;

/* The kinds of credential an outside event may come with (a bit set). The
 * scheduler and `kopilka tick` are not outside sources: time-driven grants
 * never pass through this check. */
typedef enum kp_event_from {
    KP_FROM_TILL = 1,        /* a terminal key of a store */
    KP_FROM_PARTNER = 2,     /* a partner system's key */
    KP_FROM_BACK_OFFICE = 4, /* a staff session */
} kp_event_from;

/* One event type an outside source may send (POST /v1/events). */
typedef struct kp_event_source {
    char type[KP_EVENT_TYPE_MAX];
    unsigned from; /* kp_event_from bits, never 0 */
} kp_event_source;

/* What a till may say about time and about who the customer is
 * (docs/rules.md, "Till"). */
typedef struct kp_till_policy {
    int64_t clock_skew_seconds; /* a till's "at" within now ± this */
    int64_t offline_days;       /* "offline": true purchases dated up to this far back; 0 = none */
    bool identify_by_phone;     /* a till may name the customer by phone instead of a card */
} kp_till_policy;

/* Defaults of the "till" section: 5 minutes, 3 days, no phone. */
enum { KP_TILL_SKEW_SECONDS_DEFAULT = 300, KP_TILL_OFFLINE_DAYS_DEFAULT = 3 };

typedef enum kp_rule_kind {
    KP_RULE_EARN_PERCENT = 1,    /* earn a percentage (or a ladder by receipt amount) */
    KP_RULE_FIRST_PURCHASE_MIN,  /* the first purchase earns at least `points` */
    KP_RULE_BURN_LIMIT,          /* points (of one kind, or all) pay at most rate_bp of a scope */
    KP_RULE_BURN_MIN_BALANCE,    /* points are spent only from a spendable balance >= points */
    KP_RULE_DISCOUNT_FIXED,      /* a discount of rate_bp on every line in scope */
    KP_RULE_DISCOUNT_CUMULATIVE, /* a discount by accumulated spend (steps), individual from N */
    KP_RULE_JOIN_MIN_PURCHASE,   /* a card joins with a first purchase of at least amount_minor */
    KP_RULE_ANNUAL_SPEND_BONUS, /* `points` when the calendar year's spend goes over amount_minor */
    KP_RULE_GRANT,              /* `points` on an event: registration, birthday, tenure, ... */
    /* Kinds that only appear in explanations, never in a program file. */
    KP_RULE_TIER,   /* a tier's earn multiplier or discount */
    KP_RULE_SCRIPT, /* the program's script changed the earn or the burn */
} kp_rule_kind;

/* How long points stay: spendable after a pending period, and expiring a
 * period after they were earned, on a fixed instant, or never. At most one
 * of ttl_days, ttl_months, expires_on is set; none = never expire. */
typedef struct kp_validity {
    int64_t pending_days;
    int64_t ttl_days;
    int32_t ttl_months;
    kp_time expires_on; /* 0 = none */
} kp_validity;

typedef struct kp_point_kind {
    char name[KP_KIND_NAME_MAX];
    kp_validity validity;
} kp_point_kind;

/* One step of a ladder: from `min_minor` (receipt amount, or accumulated
 * spend) up, the rate is rate_bp. Steps are strictly increasing. */
typedef struct kp_rate_step {
    int64_t min_minor;
    int32_t rate_bp;
} kp_rate_step;

/* How often a grant can be given to one customer. */
typedef enum kp_grant_once {
    KP_ONCE_CUSTOMER = 1, /* once ever */
    KP_ONCE_YEAR,         /* once per calendar year (birthday, tenure) */
    KP_ONCE_EVENT,        /* for every distinct event */
} kp_grant_once;

typedef struct kp_rule {
    char id[48]; /* unique within the program, shown in explanations */
    kp_rule_kind kind;
    char category[KP_STR_MAX];         /* "" = every line */
    char store[KP_STR_MAX];            /* earn, discounts: only at this store ("" = every store) */
    /* Coalition (docs/coalition.md): the partner funding the rule ("" =
     * the partner of the store where it applies); the rule applies only
     * at `partner`'s stores, or at `at_partner`'s when that is set (a
     * promotion `partner` pays at another partner's stores). */
    char partner[KP_PARTNER_CODE_MAX];
    char at_partner[KP_PARTNER_CODE_MAX];
    char currency[4];                  /* only for receipts in this currency ("" = any) */
    char tier[KP_TIER_NAME_MAX];       /* earn: only for customers of this tier ("" = all) */
    char point_kind[KP_KIND_NAME_MAX]; /* burn_limit: the kind capped ("" = every kind);
                                        * grant: the kind granted */
    int32_t rate_bp;                   /* earn_percent, burn_limit, discount_fixed */
    int64_t points;       /* first_purchase_min, burn_min_balance, annual bonus, grant */
    int64_t amount_minor; /* join: minimum purchase; annual bonus: threshold;
                           * discount_cumulative: individual rate from (0 = none) */
    kp_time starts_at;    /* promotional window [starts_at, ends_at); 0 = open */
    kp_time ends_at;
    size_t n_steps; /* earn_percent by receipt amount; discount_cumulative by spend */
    kp_rate_step steps[KP_RATE_STEPS_MAX];
    bool registered_only; /* discounts: a card that is not registered gets none */
    /* grant */
    char on[KP_EVENT_TYPE_MAX]; /* the event type that triggers it */
    bool has_value_over;
    int64_t value_over; /* the event's value must be greater than this */
    kp_grant_once once;
    bool unique_token; /* the event's token (a partner card number) is accepted
                        * once across the whole program */
    bool per_year;     /* tenure: points times the full years */
    /* A grant on "campaign" (docs/rules.md): points that depend on the
     * member. points_by_tier: tier_points[i] for a member of tier i when
     * tier_points_set[i], else `points` (0 when the rule gives none).
     * percent_of_spend: spend_bp of the member's purchases less returns
     * over the last spend_days days, in points at the program's rate,
     * rounded down, at most points_max (0 = no cap). */
    bool has_tier_points;
    bool tier_points_set[KP_TIERS_MAX];
    int64_t tier_points[KP_TIERS_MAX];
    int32_t spend_bp; /* 0 = not by spend */
    int32_t spend_days;
    int64_t points_max;
    bool has_validity; /* grant: overrides the granted kind's validity */
    kp_validity validity;
} kp_rule;

typedef struct kp_tier {
    char name[KP_TIER_NAME_MAX];
    int64_t min_spend_minor;      /* rolling spend over the window to qualify */
    int32_t earn_multiplier_x100; /* 100 = x1, 150 = x1.5 */
    int32_t discount_bp;
    size_t n_privileges;
    char privileges[KP_TIER_PRIVILEGES_MAX][KP_PRIVILEGE_NAME_MAX];
} kp_tier;

typedef enum kp_downgrade {
    KP_DOWNGRADE_TO_QUALIFIED = 0, /* a review sets the tier the spend qualifies for */
    KP_DOWNGRADE_ONE_LEVEL,        /* ... but goes down at most one level per review */
    KP_DOWNGRADE_NEVER,            /* tiers only go up */
} kp_downgrade;

/* The country of phones typed without + when a program names none and its
 * currency does not tell (docs/rules.md, "country"). */
#define KP_PHONE_REGION_DEFAULT "RU"

typedef struct kp_program {
    int64_t version; /* set by the store; 0 until loaded */
    char name[128];
    char currency[4];                  /* ISO 4217, "RUB" */
    char country[3]; /* ISO 3166 code of phones typed without +: "RU"; "" = + required */
    int64_t minor_per_point;           /* minor units one point pays: 100 = 1 point per rouble */
    kp_rounding rounding;              /* of earned points and of discounts; burn caps round down */
    int32_t utc_offset_minutes;        /* the program's calendar (birthdays, years, reviews) */
    char point_kind[KP_KIND_NAME_MAX]; /* kind of the points purchases earn: "regular" */
    kp_validity earn_validity;         /* of the points purchases earn */
    size_t n_kinds;
    kp_point_kind kinds[KP_POINT_KINDS_MAX];
    size_t n_rules;
    kp_rule rules[KP_RULES_MAX];
    /* tiers: ordered by min_spend_minor, lowest first */
    size_t n_tiers;
    kp_tier tiers[KP_TIERS_MAX];
    int64_t tier_window_days;   /* rolling spend window */
    int32_t tier_review_months; /* a review on the 1st of every N-th month; 0 = no reviews */
    kp_downgrade tier_downgrade;
    /* script hook (src/script): Lua 5.4 source and the functions it names */
    char script_earn[KP_SCRIPT_FN_MAX]; /* "" = none */
    char script_burn[KP_SCRIPT_FN_MAX];
    int64_t script_instructions_max;
    int64_t script_memory_max_bytes;
    char script[KP_SCRIPT_MAX];
    /* outside event sources: declared, or by default every grant's event
     * type that is not time-driven or internal, from a till or the back
     * office (kp_program_event_from) */
    bool event_sources_declared;
    size_t n_event_sources;
    kp_event_source event_sources[KP_EVENT_SOURCES_MAX];
    kp_till_policy till;
    /* Coalition and currencies (coalition.h, docs/coalition.md). */
    size_t n_partners;
    kp_partner partners[KP_PARTNERS_MAX];
    size_t n_store_currencies; /* the program's own stores' currencies ("stores") */
    kp_store_pattern store_currencies[KP_STORE_PATTERNS_MAX];
    size_t n_currencies;       /* accepted besides `currency` */
    kp_currency_def currencies[KP_CURRENCIES_MAX];
    bool rules_per_currency;   /* "currency_rules": "separate": every earn, discount
                                * and burn rule names its currency */
    /* Not of the file: the program compiled for pricing (engine.h,
     * kp_engine_compile), kept next to it by its owner (the server's program
     * cache); NULL = none, every rule is scanned. The engine ignores an
     * index compiled from another program (a copy of this one included). */
    const struct kp_engine_index *compiled;
} kp_program;

/* Parses and validates a program file's text. On failure returns
 * KP_ERR_INVALID (or KP_ERR_LIMIT past a limit) with e->field naming the
 * rule and field ("rules[2].percent") of the first error and *out left
 * zeroed. `out` is caller-owned (it is large: keep it off small stacks). */
kp_err kp_program_parse(const char *json, size_t len, kp_program *out, kp_error *e);

/* Called once for each error a program file has, in the order of the file;
 * `error` is valid only during the call. */
typedef void (*kp_program_error_fn)(void *ctx, const kp_error *error);

/* kp_program_parse, reporting every error of the file rather than the first
 * only: a field in error keeps its default and the parse goes on, so one
 * pass names them all (an error that makes the rest of its object
 * meaningless, such as a rule that is not an object, skips that object).
 * report(ctx, error) for each (report may be NULL); *e is the first. On
 * failure *out holds what could be read, each field in error at its
 * default (kp_program_parse zeroes it). */
kp_err kp_program_parse_each(const char *json, size_t len, kp_program *out,
                             kp_program_error_fn report, void *ctx, kp_error *e);

const char *kp_rule_kind_name(kp_rule_kind kind);
const char *kp_grant_once_name(kp_grant_once once);
const char *kp_downgrade_name(kp_downgrade d);
const char *kp_event_from_name(kp_event_from from);

/* True for the event types only the server itself raises: the time-driven
 * grants (birthday, tenure) and registration. No outside source may send
 * them. */
bool kp_event_type_internal(const char *type);

/* The credential kinds (kp_event_from bits) that may send event `type` to
 * the program; 0 when no outside source may. */
unsigned kp_program_event_from(const kp_program *p, const char *type);

/* ---- lookups and calendar helpers (src/core/program.c; pure) */

/* The point kind named `name`, or NULL when the program does not define it
 * (its points then never expire and have no pending period). */
const kp_point_kind *kp_program_kind(const kp_program *p, const char *name);

/* The tier named `name`, its index in *index (may be NULL); NULL if none. */
const kp_tier *kp_program_tier(const kp_program *p, const char *name, int *index);

/* The highest tier whose min_spend_minor <= spend, or -1. */
int kp_program_tier_for_spend(const kp_program *p, int64_t spend_minor);

/* The instants from which points earned at `at` under validity `v` are
 * spendable, and at which they expire (KP_TIME_NEVER = never). */
void kp_validity_apply(const kp_validity *v, kp_time at, kp_time *active_from, kp_time *expires_at);

/* True when the rule's window contains `now` (a rule with no window always). */
bool kp_rule_active(const kp_rule *r, kp_time now);

/* The rate of a ladder for `amount`: the last step with min_minor <= amount,
 * or -1 when the amount is below the first step. */
int32_t kp_steps_rate(const kp_rate_step *steps, size_t n, int64_t amount);

/* The program's calendar: the local date of `t`, and the instant a local
 * date starts (00:00 local). Years are 1970..9999; month 1..12. */
void kp_program_date(const kp_program *p, kp_time t, int *year, int *month, int *day);
kp_time kp_program_date_start(const kp_program *p, int year, int month, int day);

#endif
