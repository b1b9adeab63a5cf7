/*
 * engine.h: prices a basket under a program for one account at one instant.
 *
 * kp_engine_price() is pure: the same program, account state, basket and time
 * give the same result. It writes nothing; quotes, purchases, simulations and
 * tests all call it. It allocates nothing: every array is bounded (see the
 * limits in kopilka.h) and lives in the caller's structs or on the stack.
 * A program compiled once (kp_engine_compile, kp_price_opts.index) prices
 * the same quotes several times faster: the server and the simulation
 * compile every program they hold (kp_program.compiled).
 *
 * Order of work on a basket (docs/rules.md says the same, with examples):
 *  0. joining: under a join_min_purchase rule a card with no purchase yet
 *     joins only with a basket of at least the minimum; otherwise nothing
 *     is discounted, burnt or earned (quote.joined = false);
 *  1. discounts: each line gets the largest rate among the discount rules
 *     that apply to it (fixed, cumulative by accumulated spend, the
 *     customer's individual rate, the tier's discount): discounts never add;
 *  2. burn: points are taken from lots earliest expiry first; each lot's
 *     kind may pay a pot (the lines of one burn_limit scope) up to its own
 *     cap, and all kinds together at most the largest cap of the pot;
 *     min balance and the balance spendable now clamp the request;
 *  3. earn: each line's money part (amount - discount - paid with points)
 *     earns at the one earn rule that fits it best (a promotional window over
 *     a standing rule, then a category over the basket, a tier, a store),
 *     its rate from the rule's ladder by receipt amount, times the tier's
 *     multiplier; then the first-purchase minimum and the annual spend bonus.
 */
#ifndef KOPILKA_ENGINE_H
#define KOPILKA_ENGINE_H

#include "kopilka.h"
#include "program.h"

typedef struct kp_line {
    char sku[KP_STR_MAX];
    char category[KP_STR_MAX];
    int64_t amount_minor; /* total of the line, >= 0 */
    int64_t qty;          /* >= 1 */
    bool promo;           /* promotional: cannot be paid with points */
} kp_line;

typedef struct kp_basket {
    size_t n_lines;
    int64_t burn_request; /* points the customer asks to spend, >= 0 */
    kp_line lines[KP_LINES_MAX];
} kp_basket;

typedef struct kp_lot {
    int64_t id;            /* 0 for a lot not stored yet */
    char kind[16];         /* "regular", "premium", ... */
    int64_t amount;
    int64_t remaining;     /* 0..amount */
    kp_time earned_at;
    kp_time active_from;   /* spendable from */
    kp_time expires_at;    /* KP_TIME_NEVER = never */
    /* The issuer (coalition.h): the partner whose store issued the lot or
     * who funded it; "" = the operator. Lots of different issuers never
     * join or merge. */
    char partner[KP_PARTNER_CODE_MAX];
} kp_lot;

/* What the engine needs to know of an account. */
typedef struct kp_account {
    int64_t id;
    int64_t balance;       /* = sum(lots.remaining) - debt */
    int64_t debt;          /* points owed after a return clawed back spent points */
    int64_t purchases;     /* purchases so far */
    int64_t spend_minor;   /* accumulated spend (returns lower it) */
    bool registered;
    /* Rule state of the account (the store's account_rules): */
    char tier[KP_TIER_NAME_MAX]; /* current tier, "" = none */
    bool has_personal_discount;
    int32_t personal_discount_bp; /* individual discount rate (seed 003) */
    int64_t year_spend_minor; /* spend of this calendar year before this purchase */
    size_t n_lots;
    kp_lot lots[KP_LOTS_MAX]; /* open lots (remaining > 0), burn order */
} kp_account;

typedef struct kp_line_result {
    int64_t discount_minor;
    int64_t points_minor;  /* part of the line paid with points, minor units */
    int64_t paid_minor;    /* amount - discount - points_minor */
    int64_t earned;        /* points this line earned */
    /* Which rules priced the line (for attributing a return's take-back;
     * not stored with a purchase): the earn rule, an index in
     * program->rules, -1 = none; the discount's source, an index in
     * program->rules, program->n_rules = the account's tier, -1 = none. */
    int16_t earn_rule;
    int16_t discount_rule;
} kp_line_result;

enum { KP_EXPLAIN_TEXT_MAX = 192 };

typedef struct kp_explain {
    char rule[48];
    kp_rule_kind kind;
    int64_t base_minor;    /* what the rate applied to */
    int32_t rate_bp;
    int64_t points;        /* points earned, or the cap of a burn limit */
    int64_t discount_minor; /* the discount a discount rule gave */
    char text[KP_EXPLAIN_TEXT_MAX]; /* one sentence a cashier can read */
    /* The sentence as the engine recorded it (engine.c): its form (0 =
     * text is written), the rule (index in program->rules) or tier (in
     * program->tiers) it names, and one further figure. A quote priced
     * with kp_price_opts.defer_text leaves text "" for kp_quote_render. */
    uint8_t form;
    int16_t src;
    int64_t arg;
} kp_explain;

typedef struct kp_lot_take {
    int64_t lot_id;
    int64_t points;
} kp_lot_take;

typedef struct kp_quote {
    int64_t amount_minor;
    int64_t discount_minor;
    int64_t points_minor;  /* money value of the points burnt */
    int64_t paid_minor;
    int64_t burn_request;
    int64_t burned;
    int64_t earned;
    int64_t balance_before;
    int64_t balance_after;
    char burn_limited_by[192]; /* "" when the whole request was granted */
    bool joined;           /* false: the join condition refused this purchase */
    int tier_index;        /* the account's tier in program->tiers, -1 = none */
    size_t n_lines;
    kp_line_result lines[KP_LINES_MAX];
    size_t n_explain;
    kp_explain explain[KP_EXPLAIN_MAX];
    size_t n_takes;
    kp_lot_take takes[KP_LOTS_MAX];
} kp_quote;

/* Validates a basket against the limits: amounts in range, totals without
 * overflow, qty in range. Fills e->field with "lines[i].amount" etc. */
kp_err kp_basket_validate(const kp_basket *basket, kp_error *e);

/* A program compiled for pricing (kp_engine_compile): its rules indexed by
 * kind and by category, so that a quote looks only at the rules that can
 * apply to each line, and a list of the rules whose store, partner or
 * currency must be checked where the basket is priced (every other rule
 * fits everywhere). It narrows the candidates only: each candidate still
 * passes every check a scan would make (kind, category, window, tier,
 * store, partner, currency, registration), so a quote priced with it is
 * byte for byte the quote priced without it (tests/unit/test_engine_index.c
 * compares them on random programs). Plain data, caller-owned like the
 * program (about 55 KB), valid while the program it was compiled from
 * stays where it is and unchanged. */
enum {
    KP_INDEX_GROUPS = 3, /* per-line rule groups: discounts, burn limits, earn */
    KP_BURN_KINDS = 8,   /* point kinds the burn is resolved ahead for */
};
typedef struct kp_engine_index {
    const kp_program *program; /* compiled from: another program's index is ignored */
    size_t n_rules;
    size_t n_cats; /* distinct non-empty categories the rules name: ids 1..n_cats */
    const char *cat_name[KP_RULES_MAX + 1];  /* by id, into program->rules[].category */
    uint32_t cat_hash[KP_RULES_MAX + 1];
    uint8_t cat_slot[2 * KP_RULES_MAX];      /* open addressing by hash: id, 0 = empty */
    uint8_t rule_cat[KP_RULES_MAX];          /* 0 = every line */
    size_t n_scoped;
    uint8_t scoped[KP_RULES_MAX]; /* rules with a store, partner or currency (kp_rule_scoped) */
    /* Per group: the group's rules naming category id c (c = 0: the
     * basket-wide ones), pool[g][start..+len); earn rules most specific
     * first (ties in rule order), the others in rule order. A line's
     * candidates are its category's and the basket-wide ones. */
    uint16_t start[KP_INDEX_GROUPS][KP_RULES_MAX + 1];
    uint8_t len[KP_INDEX_GROUPS][KP_RULES_MAX + 1];
    uint8_t pool[KP_INDEX_GROUPS][KP_RULES_MAX];
    /* Per group: every rule of the group, in rule order. */
    uint8_t n_all[KP_INDEX_GROUPS];
    uint8_t all[KP_INDEX_GROUPS][KP_RULES_MAX];
    /* Per kind (kp_rule_kind, 1..KP_RULE_GRANT): its rules in rule order. */
    uint8_t n_kind[KP_RULE_GRANT + 1];
    uint8_t kind[KP_RULE_GRANT + 1][KP_RULES_MAX];
    /* The fixed parts of each rule's explanation (a burn limit's head; an
     * earn rule's head and middle, for a rule without a ladder). */
    uint8_t text_len[KP_RULES_MAX][2];
    char text[KP_RULES_MAX][2][KP_EXPLAIN_TEXT_MAX];
    /* The burn resolved ahead, for a quote where no burn_limit rule is off
     * (its store, partner or currency does not fit: the engine then
     * resolves it per quote as a scan does); burn_static false = always
     * per quote (more point kinds than KP_BURN_KINDS). Each burn_limit
     * rule's pot (the pot's first rule); each category id's pot for its
     * non-promo lines (-1 = none); the point kinds the burn_limit rules
     * name; per pot and kind the rule that caps it (-1 = that kind cannot
     * pay the pot; the last column: every kind not named). */
    bool burn_static;
    uint8_t n_burn_kinds;
    const char *burn_kind[KP_BURN_KINDS]; /* into program->rules[].point_kind */
    int16_t burn_head[KP_RULES_MAX];
    int16_t cat_pot[KP_RULES_MAX + 1];
    int16_t burn_slot[KP_RULES_MAX][KP_BURN_KINDS + 1];
} kp_engine_index;

/* Compiles `program` into *out (both caller-owned; out is overwritten). */
void kp_engine_compile(const kp_program *program, kp_engine_index *out);

/* Where and how a basket is priced, beyond the basket itself. */
typedef struct kp_price_opts {
    const char *store; /* the till's store, for per-store and partners' rules; NULL = none */
    int64_t burn_max;  /* a ceiling on the burn (the script's), -1 = none */
    /* The receipt's currency (ISO 4217; NULL or "" = the program's own):
     * rules naming another currency do not apply, and a point is worth
     * kp_program_minor_per_point() of it. KP_ERR_INVALID on "currency"
     * when the program does not accept it. */
    const char *currency;
    /* Price as if no partner-funded promotion (a rule with at_partner)
     * existed: what the store's partner alone would give (coalition.h). */
    bool no_partner_promos;
    /* The program compiled (kp_engine_compile); NULL, or an index of another
     * program, = every rule is scanned. The answer is the same either way. */
    const kp_engine_index *index;
    /* Leave the explanations' sentences unwritten (text ""; every figure,
     * rule and kind is set): for callers that read only the figures (the
     * simulation, a coalition's second pricing, the bench), or that render
     * later with kp_quote_render. false = written, as always. */
    bool defer_text;
} kp_price_opts;

/* Prices `basket` for `account` under `program` at `now` into *out.
 * Returns KP_ERR_INVALID/KP_ERR_OVERFLOW for a bad basket; out is zeroed first.
 * KP_ERR_INTERNAL when the priced figures do not add up (paid + points +
 * discount = amount, no line paid below zero): checked in every build. */
kp_err kp_engine_price(const kp_program *program, const kp_account *account,
                       const kp_basket *basket, kp_time now, kp_quote *out, kp_error *e);
/* The same with options (opts NULL = none). */
kp_err kp_engine_price_opts(const kp_program *program, const kp_account *account,
                            const kp_basket *basket, const kp_price_opts *opts, kp_time now,
                            kp_quote *out, kp_error *e);

/* Writes the sentences a quote priced with defer_text left unwritten:
 * byte for byte what the engine writes without defer_text. `program` is the
 * one the quote was priced under; `index` its compiled form or NULL (the
 * same text either way, the compiled one faster). Idempotent. */
void kp_quote_render(const kp_program *program, const kp_engine_index *index, kp_quote *q);

/* Replaces the points a priced quote earns with `earned` (>= 0), spread over
 * the lines by what each paid in money, with an explanation of kind `kind`
 * from `rule` saying `why`. The script hook uses it. */
void kp_quote_set_earned(kp_quote *q, int64_t earned, kp_rule_kind kind, const char *rule,
                         const char *why);

/* Spendable points of an account at `now` (active, unexpired lots, less debt). */
int64_t kp_account_spendable(const kp_account *account, kp_time now);

#endif
