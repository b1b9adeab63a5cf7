/*
 * engine.c: prices a basket. Pure and allocation-free: the result depends only
 * on the program, the account state, the basket and `now`, and every array
 * is bounded by the limits in kopilka.h.
 *
 * Splitting an amount over lines uses cumulative rounding: line i gets
 * R(sum of lines 0..i) - R(sum of lines 0..i-1), so the parts always add up
 * to exactly R(total) and no point or kopeck is created or lost by rounding
 * per line.
 *
 * The order of work (joining, discounts, burn, earn) is in engine.h and
 * docs/rules.md; each step is one function here.
 */
#include <kopilka/engine.h>

#include <kopilka/coalition.h>

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include <kopilka/check.h>
#include <kopilka/clock.h>
#include <kopilka/money.h>

/* The burn pot of a program with no burn_limit rule: every non-promo line,
 * payable in full by every kind. */
#define POT_ALL KP_RULES_MAX

kp_err kp_basket_validate(const kp_basket *basket, kp_error *e)
{
    if (basket->n_lines == 0)
        return kp_error_set(e, KP_ERR_INVALID, "lines", "a basket needs at least one line");
    if (basket->n_lines > KP_LINES_MAX)
        return kp_error_set(e, KP_ERR_LIMIT, "lines", "at most %d lines are allowed, got %zu",
                            KP_LINES_MAX, basket->n_lines);
    if (basket->burn_request < 0)
        return kp_error_set(e, KP_ERR_INVALID, "burn", "must be >= 0, got %lld",
                            (long long)basket->burn_request);
    int64_t total = 0;
    for (size_t i = 0; i < basket->n_lines; i++) {
        const kp_line *l = &basket->lines[i];
        char field[64];
        if (l->sku[0] == '\0') {
            snprintf(field, sizeof field, "lines[%zu].sku", i);
            return kp_error_set(e, KP_ERR_INVALID, field, "must be a non-empty string");
        }
        if (l->amount_minor < 0 || l->amount_minor > KP_AMOUNT_MAX) {
            snprintf(field, sizeof field, "lines[%zu].amount", i);
            return kp_error_set(e, KP_ERR_INVALID, field,
                                "must be an integer number of minor units from 0 to %lld, got %lld",
                                (long long)KP_AMOUNT_MAX, (long long)l->amount_minor);
        }
        if (l->qty < 1 || l->qty > KP_QTY_MAX) {
            snprintf(field, sizeof field, "lines[%zu].qty", i);
            return kp_error_set(e, KP_ERR_INVALID, field, "must be from 1 to %d, got %lld",
                                KP_QTY_MAX, (long long)l->qty);
        }
        if (!kp_add_checked(&total, l->amount_minor))
            return kp_error_set(e, KP_ERR_OVERFLOW, "lines", "the basket total overflows");
    }
    return KP_OK;
}

static bool lot_spendable(const kp_lot *lot, kp_time now)
{
    return lot->remaining > 0 && lot->active_from <= now && lot->expires_at > now;
}

int64_t kp_account_spendable(const kp_account *account, kp_time now)
{
    int64_t sum = 0;
    for (size_t i = 0; i < account->n_lots; i++)
        if (lot_spendable(&account->lots[i], now)) sum += account->lots[i].remaining;
    sum -= account->debt;
    if (sum > account->balance) sum = account->balance;
    return sum > 0 ? sum : 0;
}

/* A bounded text builder for the explanations: every quote writes a dozen
 * sentences, and snprintf with money and rate formatting was half of the
 * engine's time; these append without parsing a format. The text is always
 * NUL-terminated and silently cut at the buffer's end. */
typedef struct text {
    char *p;
    size_t left; /* bytes left, including the NUL's */
} text;

static text text_at(char *buf, size_t size)
{
    assert(size > 0);
    buf[0] = '\0';
    return (text){buf, size};
}

/* Inlined, so that a literal's copy (n known when compiled) is a few moves. */
static inline __attribute__((always_inline)) void t_mem(text *t, const char *s, size_t n)
{
    if (n >= t->left) n = t->left - 1;
    memcpy(t->p, s, n);
    t->p += n;
    t->left -= n;
    *t->p = '\0';
}

/* strcmp(a, b) == 0 for the engine's short names, without a call. */
static inline bool str_eq(const char *a, const char *b)
{
    while (*a && *a == *b) {
        a++;
        b++;
    }
    return *a == *b;
}

static void t_str(text *t, const char *s) { t_mem(t, s, strlen(s)); }

/* A string literal, its length known at compile time. */
#define T_LIT(t, lit) t_mem((t), "" lit, sizeof(lit) - 1)

static void t_u64(text *t, uint64_t v, int min_digits)
{
    size_t n = 1;
    for (uint64_t x = v / 10; x; x /= 10) n++;
    if (n < (size_t)min_digits) n = (size_t)min_digits;
    if (n < t->left) { /* the digits straight into place, last first */
        for (size_t i = n; i > 0; i--, v /= 10) t->p[i - 1] = (char)('0' + v % 10);
        t->p += n;
        t->left -= n;
        *t->p = '\0';
        return;
    }
    char d[24];
    char *end = d + sizeof d, *b = end;
    do {
        *--b = (char)('0' + v % 10);
        v /= 10;
    } while (v || end - b < min_digits);
    t_mem(t, b, (size_t)(end - b));
}

static void t_i64(text *t, int64_t v)
{
    if (v < 0) T_LIT(t, "-");
    t_u64(t, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v, 1);
}

/* As kp_money_format: "1234.56". */
static void t_money(text *t, int64_t minor)
{
    if (minor < 0) T_LIT(t, "-");
    uint64_t v = minor < 0 ? (uint64_t)0 - (uint64_t)minor : (uint64_t)minor;
    t_u64(t, v / 100, 1);
    T_LIT(t, ".");
    t_u64(t, v % 100, 2);
}

/* As kp_percent_format without the sign: "12", "12.5", "12.25". */
static void t_decimal(text *t, int32_t hundredths)
{
    t_u64(t, (uint64_t)(hundredths / 100), 1);
    if (hundredths % 100 == 0) return;
    T_LIT(t, ".");
    if (hundredths % 10 == 0)
        t_u64(t, (uint64_t)(hundredths % 100 / 10), 1);
    else
        t_u64(t, (uint64_t)(hundredths % 100), 2);
}

static void t_rate(text *t, int32_t bp)
{
    t_decimal(t, bp);
    T_LIT(t, "%");
}

/* The sentences the engine writes (kp_explain.form): each is recorded
 * with its rule or tier and figures, and written by explain_render, at
 * once or, with defer_text, by kp_quote_render. */
enum {
    F_TEXT,       /* written as it was recorded (kp_quote_set_earned, a script's) */
    F_DISC_TIER,  /* a tier's discount: src = tier */
    F_DISC_FIXED, /* a fixed discount rule */
    F_DISC_CUM,   /* a cumulative discount: arg = the accumulated spend */
    F_DISC_INDIV, /* the same at the customer's individual rate */
    F_DISC_UNREG, /* a registered-only discount not given */
    F_BURN,       /* a burn limit's cap */
    F_EARN,       /* an earn rule's points */
    F_EARN_TIER,  /* a tier's multiplier: src = tier, arg = the multiplier x100 */
    F_FIRST,      /* the first-purchase minimum: arg = the points earned before it */
    F_ANNUAL,     /* the annual spend bonus */
    F_JOIN,       /* the join condition refused the purchase */
};

static kp_explain *explain_add(kp_quote *q, const char *rule, kp_rule_kind kind)
{
    assert(q->n_explain < KP_EXPLAIN_MAX);
    kp_explain *x = &q->explain[q->n_explain++];
    /* Every field is set; the text's bytes past its NUL are never read
     * (the stored and JSON forms are strings), so are not zeroed. */
    text t = text_at(x->rule, sizeof x->rule);
    if (rule) t_str(&t, rule);
    x->kind = kind;
    x->base_minor = 0;
    x->rate_bp = 0;
    x->points = 0;
    x->discount_minor = 0;
    x->text[0] = '\0';
    x->form = F_TEXT;
    x->src = -1;
    x->arg = 0;
    return x;
}

static const char *category_label(const char *category)
{
    return category[0] ? category : "the basket";
}

/* kp_muldiv, its 64-bit case inlined (the engine divides a few times per
 * line); anything else, refusals included, goes to kp_muldiv. */
static inline int64_t muldiv(int64_t value, int64_t num, int64_t den, kp_rounding rounding)
{
    int64_t p;
    if (value < 0 || num < 0 || den <= 0 || __builtin_mul_overflow(value, num, &p))
        return kp_muldiv(value, num, den, rounding);
    int64_t q = p / den, r = p % den;
    if (rounding == KP_ROUND_HALF_UP ? r >= den - r : rounding == KP_ROUND_UP && r != 0) q++;
    return q;
}

/* Distributes `total` over lines of `group` in proportion to weight[i] with
 * cumulative rounding down; adds each share into share[i]. With all weights
 * zero the first line of the group takes it all. */
static void distribute(const int64_t *weight, const int *group, int group_id, size_t n,
                       int64_t total, int64_t *share)
{
    int64_t weight_sum = 0;
    for (size_t i = 0; i < n; i++)
        if (group[i] == group_id) weight_sum += weight[i];
    if (total == 0) return;
    if (weight_sum == 0) {
        for (size_t i = 0; i < n; i++)
            if (group[i] == group_id) {
                share[i] += total;
                return;
            }
        return;
    }
    int64_t cum = 0, given = 0;
    for (size_t i = 0; i < n; i++) {
        if (group[i] != group_id) continue;
        cum += weight[i];
        int64_t upto = muldiv(total, cum, weight_sum, KP_ROUND_DOWN);
        share[i] += upto - given;
        given = upto;
    }
    KP_CHECK_ABORT(given == total, "engine: a distribution gives out exactly its total");
}

/* ------------------------------------------------------------- discounts */

/* The rate a cumulative discount rule gives this account now: the
 * individual rate from `individual_from` on when one is set, else the
 * ladder's step for the accumulated spend (0 below the first step). */
static int32_t cumulative_rate(const kp_rule *r, const kp_account *a, bool *individual)
{
    *individual = false;
    if (r->amount_minor > 0 && a->spend_minor >= r->amount_minor && a->has_personal_discount) {
        *individual = true;
        return a->personal_discount_bp;
    }
    int32_t rate = kp_steps_rate(r->steps, r->n_steps, a->spend_minor);
    return rate < 0 ? 0 : rate;
}

/* Where one pricing happens (kp_price_opts), resolved once: which rules
 * cannot apply there (their store, partner or currency does not fit, or
 * they are partner-funded promotions and the caller asked for none), what
 * a point is worth in the receipt's currency, and the compiled program
 * with each line's category id when there is one. */
typedef struct scope {
    uint8_t off[KP_RULES_MAX];
    int64_t mpp;
    const kp_engine_index *ix; /* NULL = scan every rule */
    uint8_t cat[KP_LINES_MAX]; /* with ix: each line's category id */
    bool defer; /* kp_price_opts.defer_text: explanations recorded, not written */
} scope;

/* ------------------------------------------------------------ candidates */

/* The rules a step looks at: with a compiled program the few that can
 * apply, in rule order; without, every rule. Every loop below goes
 * through these and makes all of its checks on each candidate, so the two
 * give the same answer (the index only skips rules those checks refuse). */
enum { G_DISCOUNT, G_BURN, G_EARN };

typedef struct cands {
    const uint8_t *r; /* NULL = 0..n-1 */
    size_t n;
} cands;

static inline size_t cand_at(cands c, size_t k) { return c.r ? c.r[k] : k; }

static int group_of(kp_rule_kind kind)
{
    switch (kind) {
    case KP_RULE_DISCOUNT_FIXED:
    case KP_RULE_DISCOUNT_CUMULATIVE: return G_DISCOUNT;
    case KP_RULE_BURN_LIMIT: return G_BURN;
    case KP_RULE_EARN_PERCENT: return G_EARN;
    default: return -1;
    }
}

/* With a compiled program: the rules of group g naming category id c, or
 * the basket-wide ones for c = 0 (earn rules most specific first, the
 * others in rule order). Without: every rule. */
static cands of_category(const kp_program *p, const scope *sc, int g, int c)
{
    if (!sc->ix) return (cands){NULL, p->n_rules};
    return (cands){&sc->ix->pool[g][sc->ix->start[g][c]], sc->ix->len[g][c]};
}

/* Of two partial results of a scan for the best rule (key: larger wins,
 * then the first in rule order; -1 = none, with key `none`), the one a
 * scan over both would keep. */
static int better_of(int a, int32_t ka, int b, int32_t kb, int32_t *key)
{
    bool take_a = b < 0 || (a >= 0 && (ka > kb || (ka == kb && a < b)));
    *key = take_a ? ka : kb;
    return take_a ? a : b;
}

/* How specific an earn rule is (earn_rule_for): a promotional window beats
 * a standing rule, then a category the basket, a tier every tier, a store
 * (or a partner's stores) every store. */
static int earn_score(const kp_rule *rule)
{
    return ((rule->starts_at || rule->ends_at) ? 8 : 0) + (rule->category[0] ? 4 : 0) +
           (rule->tier[0] ? 2 : 0) + (rule->store[0] || rule->partner[0] ? 1 : 0);
}

/* Every rule of group g. */
static cands of_group(const kp_program *p, const scope *sc, int g)
{
    if (!sc->ix) return (cands){NULL, p->n_rules};
    return (cands){sc->ix->all[g], sc->ix->n_all[g]};
}

/* Every rule of one kind. */
static cands of_kind(const kp_program *p, const scope *sc, kp_rule_kind kind)
{
    if (!sc->ix) return (cands){NULL, p->n_rules};
    return (cands){sc->ix->kind[kind], sc->ix->n_kind[kind]};
}

/* True when rule r (of category rule->category) may price line i. */
static inline bool category_fits(const scope *sc, size_t r, const kp_rule *rule, size_t i,
                                 const kp_line *l)
{
    if (sc->ix) return sc->ix->rule_cat[r] == 0 || sc->ix->rule_cat[r] == sc->cat[i];
    return rule->category[0] == '\0' || strcmp(rule->category, l->category) == 0;
}

/* True when rules r and j name the same category ("" included). */
static inline bool same_category(const kp_program *p, const scope *sc, size_t r, size_t j)
{
    if (sc->ix) return sc->ix->rule_cat[r] == sc->ix->rule_cat[j];
    return strcmp(p->rules[r].category, p->rules[j].category) == 0;
}

/* Lines grouped by the rule (or other source 0..n_src-1) that priced
 * them, each group in line order: first[s], then next[i]; -1 ends. */
typedef struct chains {
    int16_t first[KP_RULES_MAX + 1];
    int16_t last[KP_RULES_MAX + 1];
    int16_t next[KP_LINES_MAX];
} chains;

/* Every src[i] >= 0 is one of the candidates `c` or `extra` (-1 = none):
 * only theirs are cleared. */
static void chains_build(chains *ch, const int *src, size_t n, cands c, int extra)
{
    for (size_t k = 0; k < c.n; k++) ch->first[cand_at(c, k)] = -1;
    if (extra >= 0) ch->first[extra] = -1;
    for (size_t i = 0; i < n; i++) {
        int s = src[i];
        if (s < 0) continue;
        ch->next[i] = -1;
        if (ch->first[s] < 0) ch->first[s] = (int16_t)i;
        else ch->next[ch->last[s]] = (int16_t)i;
        ch->last[s] = (int16_t)i;
    }
}

/* Category ids of the compiled program: FNV-1a over the name, open
 * addressing in cat_slot. */
#define CAT_SLOTS (2 * KP_RULES_MAX)

static uint32_t cat_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
    return h;
}

static int cat_find(const kp_engine_index *x, const char *name, uint32_t h)
{
    for (size_t k = h % CAT_SLOTS; x->cat_slot[k]; k = (k + 1) % CAT_SLOTS) {
        int id = x->cat_slot[k];
        if (x->cat_hash[id] == h && str_eq(x->cat_name[id], name)) return id;
    }
    return 0;
}

/* The fixed parts of the explanations of a rule, written by the scan as
 * the explanation is, and by kp_engine_compile once for the compiled
 * program to copy. A burn limit's: "[kind ]points may pay 10% of cat ";
 * an earn rule's: "2.5%[ (receipts from 0.00)| (promotion until
 * 2099-01-01)| (promotion)] of ", then " paid for cat = ". */
static void burn_text_head(text *t, const kp_rule *rule)
{
    if (rule->point_kind[0]) {
        t_str(t, rule->point_kind);
        T_LIT(t, " ");
    }
    T_LIT(t, "points may pay ");
    t_rate(t, rule->rate_bp);
    T_LIT(t, " of ");
    t_str(t, category_label(rule->category));
    T_LIT(t, " ");
}

static void earn_text_head(text *t, const kp_rule *rule, int32_t rate)
{
    t_rate(t, rate);
    if (rule->n_steps) {
        int64_t from = rule->steps[0].min_minor;
        for (size_t s = 0; s < rule->n_steps; s++)
            if (rule->steps[s].rate_bp == rate) from = rule->steps[s].min_minor;
        T_LIT(t, " (receipts from ");
        t_money(t, from);
        T_LIT(t, ")");
    } else if (rule->ends_at) {
        /* The first 10 characters of kp_time_format(): years 0..9999 are
         * "%04d-%02d-%02d"; others go the long way. */
        int y, m, d;
        kp_time_to_civil(rule->ends_at, &y, &m, &d);
        T_LIT(t, " (promotion until ");
        if (y >= 0 && y <= 9999) {
            t_u64(t, (uint64_t)y, 4);
            T_LIT(t, "-");
            t_u64(t, (uint64_t)m, 2);
            T_LIT(t, "-");
            t_u64(t, (uint64_t)d, 2);
        } else {
            char until[32];
            kp_time_format(rule->ends_at, until, sizeof until);
            until[10] = '\0';
            t_str(t, until);
        }
        T_LIT(t, ")");
    } else if (rule->starts_at) {
        T_LIT(t, " (promotion)");
    }
    T_LIT(t, " of ");
}

static void earn_text_mid(text *t, const kp_rule *rule)
{
    T_LIT(t, " paid for ");
    t_str(t, category_label(rule->category));
    T_LIT(t, " = ");
}

/* Writes the sentence of explanation x from its form, rule or tier and
 * figures; ix (the compiled program, or NULL) only supplies fixed parts
 * written ahead: the same bytes either way. */
static inline __attribute__((always_inline)) void
explain_render(const kp_program *p, const kp_engine_index *ix, kp_explain *x)
{
    if (x->form == F_TEXT) return;
    text t = text_at(x->text, sizeof x->text);
    const bool of_tier = x->form == F_DISC_TIER || x->form == F_EARN_TIER;
    const kp_tier *tier = of_tier ? &p->tiers[x->src] : NULL;
    const kp_rule *rule = of_tier ? NULL : &p->rules[x->src];
    const size_t r = (size_t)x->src;
    switch (x->form) {
    case F_DISC_TIER:
    case F_DISC_FIXED:
    case F_DISC_CUM:
    case F_DISC_INDIV:
        if (x->form == F_DISC_TIER) {
            T_LIT(&t, "tier ");
            t_str(&t, tier->name);
            T_LIT(&t, ": ");
            t_rate(&t, x->rate_bp);
            T_LIT(&t, " discount on ");
        } else if (x->form == F_DISC_FIXED) {
            t_rate(&t, x->rate_bp);
            T_LIT(&t, " discount on ");
            t_str(&t, category_label(rule->category));
            T_LIT(&t, " ");
        } else {
            if (x->form == F_DISC_INDIV) T_LIT(&t, "individual ");
            t_rate(&t, x->rate_bp);
            T_LIT(&t, " discount for an accumulated spend of ");
            t_money(&t, x->arg);
            T_LIT(&t, ": ");
            t_rate(&t, x->rate_bp);
            T_LIT(&t, " of ");
        }
        t_money(&t, x->base_minor);
        T_LIT(&t, " = ");
        t_money(&t, x->discount_minor);
        return;
    case F_DISC_UNREG:
        T_LIT(&t, "the card is not registered: no discount (register it to get one)");
        return;
    case F_BURN:
        if (ix)
            t_mem(&t, ix->text[r][0], ix->text_len[r][0]);
        else
            burn_text_head(&t, rule);
        t_money(&t, x->base_minor);
        T_LIT(&t, ": at most ");
        t_i64(&t, x->points);
        T_LIT(&t, " points");
        return;
    case F_EARN:
        if (ix && !rule->n_steps) { /* compiled: the text's fixed parts */
            t_mem(&t, ix->text[r][0], ix->text_len[r][0]);
            t_money(&t, x->base_minor);
            t_mem(&t, ix->text[r][1], ix->text_len[r][1]);
        } else {
            earn_text_head(&t, rule, x->rate_bp);
            t_money(&t, x->base_minor);
            earn_text_mid(&t, rule);
        }
        t_i64(&t, x->points);
        T_LIT(&t, " points");
        return;
    case F_EARN_TIER:
        T_LIT(&t, "tier ");
        t_str(&t, tier->name);
        T_LIT(&t, " earns x");
        t_decimal(&t, (int32_t)x->arg);
        t_str(&t, x->points >= 0 ? ": +" : ": ");
        t_i64(&t, x->points);
        T_LIT(&t, " points");
        return;
    case F_FIRST:
        snprintf(x->text, sizeof x->text,
                 "first purchase earns at least %lld points: %lld added to the %lld earned",
                 (long long)rule->points, (long long)x->points, (long long)x->arg);
        return;
    case F_ANNUAL:
    case F_JOIN: { /* the rule's amount (a threshold, a minimum) and the base */
        char amount[32], base[32];
        kp_money_format(rule->amount_minor, amount, sizeof amount);
        kp_money_format(x->base_minor, base, sizeof base);
        if (x->form == F_ANNUAL)
            snprintf(x->text, sizeof x->text,
                     "this year's purchases passed %s (now %s): a bonus of %lld points", amount,
                     base, (long long)rule->points);
        else
            snprintf(x->text, sizeof x->text,
                     "a card joins the program with a purchase of %s or more; this one is %s: "
                     "no discount, no points",
                     amount, base);
        return;
    }
    default: KP_CHECK_ABORT(false, "engine: an explanation's form is known");
    }
}

/* An explanation recorded: written now unless the caller defers it. */
static inline __attribute__((always_inline)) void
explain_done(const kp_program *p, const scope *sc, kp_explain *x, int form, size_t src)
{
    x->form = (uint8_t)form;
    x->src = (int16_t)src;
    if (!sc->defer) explain_render(p, sc->ix, x);
}

void kp_quote_render(const kp_program *program, const kp_engine_index *index, kp_quote *q)
{
    if (index && (index->program != program || index->n_rules != program->n_rules)) index = NULL;
    for (size_t i = 0; i < q->n_explain; i++) explain_render(program, index, &q->explain[i]);
}

static void burn_compile(const kp_program *p, kp_engine_index *x);

void kp_engine_compile(const kp_program *p, kp_engine_index *x)
{
    memset(x, 0, sizeof *x);
    x->program = p;
    x->n_rules = p->n_rules;
    for (size_t r = 0; r < p->n_rules; r++) {
        const kp_rule *rule = &p->rules[r];
        if (kp_rule_scoped(rule)) x->scoped[x->n_scoped++] = (uint8_t)r;
        /* The explanations' fixed parts, cut where the explanation's text
         * would be (both are KP_EXPLAIN_TEXT_MAX bytes). */
        text t0 = text_at(x->text[r][0], sizeof x->text[r][0]);
        text t1 = text_at(x->text[r][1], sizeof x->text[r][1]);
        if (rule->kind == KP_RULE_BURN_LIMIT) burn_text_head(&t0, rule);
        if (rule->kind == KP_RULE_EARN_PERCENT && !rule->n_steps) {
            earn_text_head(&t0, rule, rule->rate_bp);
            earn_text_mid(&t1, rule);
        }
        x->text_len[r][0] = (uint8_t)(sizeof x->text[r][0] - t0.left);
        x->text_len[r][1] = (uint8_t)(sizeof x->text[r][1] - t1.left);
        if (rule->kind >= 1 && rule->kind <= KP_RULE_GRANT)
            x->kind[rule->kind][x->n_kind[rule->kind]++] = (uint8_t)r;
        int g = group_of(rule->kind);
        if (g >= 0) x->all[g][x->n_all[g]++] = (uint8_t)r;
        if (rule->category[0] == '\0') continue;
        uint32_t h = cat_hash(rule->category);
        int id = cat_find(x, rule->category, h);
        if (id == 0) {
            id = (int)++x->n_cats;
            x->cat_name[id] = rule->category;
            x->cat_hash[id] = h;
            size_t k = h % CAT_SLOTS;
            while (x->cat_slot[k]) k = (k + 1) % CAT_SLOTS;
            x->cat_slot[k] = (uint8_t)id;
        }
        x->rule_cat[r] = (uint8_t)id;
    }
    /* Each rule of a group goes in the list of its category exactly once. */
    for (int g = 0; g < KP_INDEX_GROUPS; g++) {
        size_t pos = 0;
        for (size_t c = 0; c <= x->n_cats; c++) {
            x->start[g][c] = (uint16_t)pos;
            for (size_t k = 0; k < x->n_all[g]; k++) {
                uint8_t r = x->all[g][k];
                if (x->rule_cat[r] != c) continue;
                uint8_t *list = &x->pool[g][x->start[g][c]];
                size_t at = pos - x->start[g][c];
                /* Earn rules by specificity, ties in rule order (insertion:
                 * a later rule goes after every rule as specific). */
                if (g == G_EARN)
                    while (at > 0 && earn_score(&p->rules[list[at - 1]]) < earn_score(&p->rules[r])) {
                        list[at] = list[at - 1];
                        at--;
                    }
                list[at] = r;
                pos++;
            }
            x->len[g][c] = (uint8_t)(pos - x->start[g][c]);
        }
    }
    burn_compile(p, x);
}

/* Among the candidates `c`, the discount rule that gives line `i` its
 * largest rate (the first in rule order of those); -1 when none gives more
 * than 0. */
static int discount_best(const kp_program *p, const scope *sc, const kp_account *a,
                         const kp_line *l, size_t i, kp_time now, cands c, int32_t *rate_out)
{
    int best = -1;
    int32_t best_rate = 0;
    for (size_t k = 0; k < c.n; k++) {
        size_t r = cand_at(c, k);
        const kp_rule *rule = &p->rules[r];
        if (rule->kind != KP_RULE_DISCOUNT_FIXED && rule->kind != KP_RULE_DISCOUNT_CUMULATIVE)
            continue;
        if (sc->off[r]) continue;
        if (!category_fits(sc, r, rule, i, l)) continue;
        if (rule->registered_only && !a->registered) continue;
        int32_t rate;
        if (rule->kind == KP_RULE_DISCOUNT_FIXED) {
            if (!kp_rule_active(rule, now)) continue;
            rate = rule->rate_bp;
        } else {
            bool individual;
            rate = cumulative_rate(rule, a, &individual);
        }
        if (rate > best_rate) {
            best = (int)r;
            best_rate = rate;
        }
    }
    *rate_out = best_rate;
    return best;
}

/* The tier's discount (source n_rules) when it is larger than the rules'. */
static int with_tier(const kp_program *p, const kp_tier *tier, int best, int32_t *rate)
{
    if (tier && tier->discount_bp > *rate) {
        *rate = tier->discount_bp;
        return (int)p->n_rules;
    }
    return best;
}

static void explain_discount(kp_quote *q, const kp_program *p, const scope *sc,
                             const kp_account *a, const kp_tier *tier, int source, int64_t base,
                             int32_t rate, int64_t discount)
{
    kp_explain *x;
    int form;
    size_t src = (size_t)source;
    if (source == (int)p->n_rules) {
        x = explain_add(q, tier->name, KP_RULE_TIER);
        form = F_DISC_TIER;
        src = (size_t)(tier - p->tiers);
    } else {
        const kp_rule *rule = &p->rules[source];
        x = explain_add(q, rule->id, rule->kind);
        form = F_DISC_FIXED;
        if (rule->kind != KP_RULE_DISCOUNT_FIXED) {
            bool individual = false;
            cumulative_rate(rule, a, &individual);
            form = individual ? F_DISC_INDIV : F_DISC_CUM;
            x->arg = a->spend_minor;
        }
    }
    x->base_minor = base;
    x->rate_bp = rate;
    x->discount_minor = discount;
    explain_done(p, sc, x, form, src);
}

/* Step 1: fills disc[i] and the quote's discount, with explanations. */
static void price_discounts(const kp_program *p, const scope *sc, const kp_account *a,
                            const kp_tier *tier, const kp_basket *b, kp_time now, kp_quote *q,
                            int64_t *disc, int *src)
{
    const size_t n = b->n_lines;
    int32_t rate_of_src[KP_RULES_MAX + 1];
    /* With a compiled program, lines of one category id share the answer:
     * the better of the basket-wide rules' (found once) and the category's
     * own rules'. */
    int memo_src[KP_RULES_MAX + 1];
    int32_t memo_rate[KP_RULES_MAX + 1];
    uint8_t known[KP_RULES_MAX + 1];
    int wide = -1;
    int32_t wide_rate = 0;
    if (sc->ix) {
        memset(known, 0, sc->ix->n_cats + 1);
        wide = discount_best(p, sc, a, &b->lines[0], 0, now, of_category(p, sc, G_DISCOUNT, 0),
                             &wide_rate);
    }
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        int32_t rate = 0;
        disc[i] = 0;
        if (sc->ix) {
            int c = sc->cat[i];
            if (!known[c]) {
                int32_t own_rate = 0;
                int own = c ? discount_best(p, sc, a, &b->lines[i], i, now,
                                            of_category(p, sc, G_DISCOUNT, c), &own_rate)
                            : -1;
                memo_src[c] = better_of(wide, wide_rate, own, own_rate, &memo_rate[c]);
                memo_src[c] = with_tier(p, tier, memo_src[c], &memo_rate[c]);
                known[c] = 1;
            }
            src[i] = memo_src[c];
            rate = memo_rate[c];
        } else {
            src[i] = discount_best(p, sc, a, &b->lines[i], i, now, of_category(p, sc, G_DISCOUNT, 0),
                                   &rate);
            src[i] = with_tier(p, tier, src[i], &rate);
        }
        if (src[i] >= 0) {
            rate_of_src[src[i]] = rate;
            any = true;
        }
    }
    /* Tell the cashier why a registered-only discount was not given. */
    if (!a->registered) {
        cands c = of_group(p, sc, G_DISCOUNT);
        for (size_t k = 0; k < c.n; k++) {
            size_t r = cand_at(c, k);
            const kp_rule *rule = &p->rules[r];
            bool individual;
            if (!rule->registered_only || sc->off[r]) continue;
            if (rule->kind == KP_RULE_DISCOUNT_CUMULATIVE &&
                cumulative_rate(rule, a, &individual) == 0)
                continue;
            if (rule->kind != KP_RULE_DISCOUNT_CUMULATIVE && rule->kind != KP_RULE_DISCOUNT_FIXED)
                continue;
            if (rule->kind == KP_RULE_DISCOUNT_FIXED && !kp_rule_active(rule, now)) continue;
            kp_explain *x = explain_add(q, rule->id, rule->kind);
            explain_done(p, sc, x, F_DISC_UNREG, r);
        }
    }
    if (!any) return;
    /* Each source in rule order (the tier last), its lines in line order. */
    chains ch;
    cands c = of_group(p, sc, G_DISCOUNT);
    chains_build(&ch, src, n, c, (int)p->n_rules);
    for (size_t k = 0; k <= c.n; k++) {
        size_t s = k < c.n ? cand_at(c, k) : p->n_rules;
        if (ch.first[s] < 0) continue;
        int64_t cum = 0, given = 0;
        for (int i = ch.first[s]; i >= 0; i = ch.next[i]) {
            cum += b->lines[i].amount_minor;
            int64_t upto = muldiv(cum, rate_of_src[s], 10000, p->rounding);
            disc[i] = upto - given;
            given = upto;
        }
        q->discount_minor += given;
        explain_discount(q, p, sc, a, tier, (int)s, cum, rate_of_src[s], given);
    }
}

/* ------------------------------------------------------------------ burn */

/* The pot of a line: the first burn_limit rule naming its category, else
 * the first basket-wide one; -1 = not payable with points. With no
 * burn_limit rule at all every non-promo line is in POT_ALL. */
static int burn_pot_for(const kp_program *p, const scope *sc, const kp_line *line, size_t i,
                        bool any_burn_rule)
{
    if (line->promo) return -1;
    if (!any_burn_rule) return POT_ALL;
    if (sc->ix) {
        /* The first of the category's own rules, else the first basket-wide. */
        for (int c = sc->cat[i];; c = 0) {
            cands own = of_category(p, sc, G_BURN, c);
            for (size_t k = 0; k < own.n; k++) {
                size_t r = cand_at(own, k);
                if (p->rules[r].kind == KP_RULE_BURN_LIMIT && !sc->off[r]) return (int)r;
            }
            if (c == 0) return -1;
        }
    }
    int basket_wide = -1;
    cands c = of_category(p, sc, G_BURN, 0);
    for (size_t k = 0; k < c.n; k++) {
        size_t r = cand_at(c, k);
        const kp_rule *rule = &p->rules[r];
        if (rule->kind != KP_RULE_BURN_LIMIT || sc->off[r]) continue;
        if (rule->category[0] == '\0') {
            if (basket_wide < 0) basket_wide = (int)r;
        } else if (category_fits(sc, r, rule, i, line)) {
            return (int)r;
        }
    }
    return basket_wide;
}

/* The pot (its first rule) a burn_limit rule belongs to. */
static int pot_head(const kp_program *p, const scope *sc, size_t r)
{
    cands c = of_group(p, sc, G_BURN);
    for (size_t k = 0; k < c.n; k++) {
        size_t j = cand_at(c, k);
        if (j >= r) break;
        if (p->rules[j].kind == KP_RULE_BURN_LIMIT && !sc->off[j] && same_category(p, sc, j, r))
            return (int)j;
    }
    return (int)r;
}

/* The rule that caps points of `kind` in pot `head`: the pot's rule for
 * that kind, else its rule for every kind; -1 = that kind cannot pay it. */
static int slot_for(const kp_program *p, const scope *sc, int head, const char *kind)
{
    if (head == POT_ALL) return POT_ALL;
    int any = -1;
    cands c = of_group(p, sc, G_BURN);
    /* A scan starts at the pot's rule, as the pot holds none before it. */
    for (size_t k = c.r ? 0 : (size_t)head; k < c.n; k++) {
        size_t r = cand_at(c, k);
        if (r < (size_t)head) continue;
        const kp_rule *rule = &p->rules[r];
        if (rule->kind != KP_RULE_BURN_LIMIT || sc->off[r] ||
            !same_category(p, sc, r, (size_t)head))
            continue;
        if (str_eq(rule->point_kind, kind)) return (int)r;
        if (rule->point_kind[0] == '\0' && any < 0) any = (int)r;
    }
    return any;
}

/* kp_engine_index's burn resolved ahead: pot_head, burn_pot_for and
 * slot_for as a quote where no burn_limit rule is off finds them. */
static void burn_compile(const kp_program *p, kp_engine_index *x)
{
    scope s0;
    memset(&s0, 0, sizeof s0); /* no rule off */
    s0.ix = x;
    x->burn_static = true;
    x->n_burn_kinds = 0;
    for (size_t k = 0; k < x->n_all[G_BURN]; k++) {
        const char *kind = p->rules[x->all[G_BURN][k]].point_kind;
        if (!kind[0]) continue;
        size_t j = 0;
        while (j < x->n_burn_kinds && !str_eq(x->burn_kind[j], kind)) j++;
        if (j < x->n_burn_kinds) continue;
        if (j == KP_BURN_KINDS) {
            x->burn_static = false;
            return;
        }
        x->burn_kind[x->n_burn_kinds++] = kind;
    }
    for (size_t k = 0; k < x->n_all[G_BURN]; k++) {
        size_t r = x->all[G_BURN][k];
        int h = pot_head(p, &s0, r);
        x->burn_head[r] = (int16_t)h;
        if (h != (int)r) continue;
        /* A kind no rule names is capped as "" is: by the pot's rule for
         * every kind. */
        for (size_t j = 0; j <= x->n_burn_kinds; j++)
            x->burn_slot[r][j] =
                (int16_t)slot_for(p, &s0, h, j < x->n_burn_kinds ? x->burn_kind[j] : "");
    }
    static const kp_line line; /* burn_pot_for reads only promo (false) and the id */
    for (size_t c = 0; c <= x->n_cats; c++) {
        s0.cat[0] = (uint8_t)c;
        x->cat_pot[c] = (int16_t)burn_pot_for(p, &s0, &line, 0, x->n_all[G_BURN] > 0);
    }
}

/* The burn resolved ahead when it holds for this quote (no burn_limit rule
 * off here), else NULL. */
static const kp_engine_index *burn_ahead(const kp_program *p, const scope *sc)
{
    if (!sc->ix || !sc->ix->burn_static) return NULL;
    for (size_t k = 0; k < sc->ix->n_all[G_BURN]; k++)
        if (sc->off[sc->ix->all[G_BURN][k]]) return NULL;
    return sc->ix;
}

/* Of the kinds resolved ahead, kind's column (the last: a kind no rule names). */
static size_t burn_kind_id(const kp_engine_index *bx, const char *kind)
{
    size_t k = 0;
    while (k < bx->n_burn_kinds && !str_eq(bx->burn_kind[k], kind)) k++;
    return k;
}

/* slot_for, from the burn resolved ahead when bx is set. */
static int slot_of(const kp_program *p, const scope *sc, const kp_engine_index *bx, int head,
                   const char *kind)
{
    if (!bx) return slot_for(p, sc, head, kind);
    if (head == POT_ALL) return POT_ALL;
    return bx->burn_slot[head][burn_kind_id(bx, kind)];
}

/* distribute() over the lines of one chain (chains): the same shares. */
static void distribute_chain(const int64_t *weight, const chains *ch, int s, int64_t total,
                             int64_t *share)
{
    if (total == 0) return;
    int64_t weight_sum = 0;
    for (int i = ch->first[s]; i >= 0; i = ch->next[i]) weight_sum += weight[i];
    if (weight_sum == 0) {
        if (ch->first[s] >= 0) share[ch->first[s]] += total;
        return;
    }
    int64_t cum = 0, given = 0;
    for (int i = ch->first[s]; i >= 0; i = ch->next[i]) {
        cum += weight[i];
        int64_t upto = muldiv(total, cum, weight_sum, KP_ROUND_DOWN);
        share[i] += upto - given;
        given = upto;
    }
    KP_CHECK_ABORT(given == total, "engine: a distribution gives out exactly its total");
}

typedef struct burn_state {
    int pot[KP_LINES_MAX];
    int64_t pot_base[KP_RULES_MAX + 1];
    int64_t pot_cap[KP_RULES_MAX + 1]; /* all kinds together: the largest rule cap */
    int64_t pot_used[KP_RULES_MAX + 1];
    int64_t rule_cap[KP_RULES_MAX + 1]; /* per burn_limit rule; POT_ALL for no rules */
    int64_t rule_used[KP_RULES_MAX + 1];
    int head[KP_RULES_MAX + 1];  /* pot of each burn_limit rule */
    int heads[KP_RULES_MAX + 1]; /* pots, in rule order */
    size_t n_heads;
} burn_state;

/* Says which cap stopped the burn, for the first kind of points left
 * unspent: that kind's own cap, or the pot's cap of all kinds together
 * (named by the rule that sets it, the pot's largest). */
static void burn_limited_by_caps(const kp_program *p, const scope *sc,
                                 const kp_engine_index *bx, const burn_state *bs, kp_quote *q,
                                 bool any_burn_rule, const char *kind)
{
    if (!any_burn_rule) {
        snprintf(q->burn_limited_by, sizeof q->burn_limited_by,
                 "points pay at most the non-promo part of the basket (%lld points)",
                 (long long)bs->pot_cap[POT_ALL]);
        return;
    }
    int chosen = -1, fallback = -1;
    for (size_t k = 0; k < bs->n_heads && chosen < 0; k++) {
        int h = bs->heads[k];
        int s = slot_of(p, sc, bx, h, kind);
        if (s < 0) continue;
        if (fallback < 0) fallback = s;
        if (bs->pot_base[h] == 0) continue;
        if (bs->rule_used[s] >= bs->rule_cap[s]) {
            chosen = s;
        } else {
            cands c = of_group(p, sc, G_BURN);
            for (size_t j = c.r ? 0 : (size_t)h; j < c.n; j++) {
                size_t r = cand_at(c, j);
                if (r < (size_t)h) continue;
                if (p->rules[r].kind == KP_RULE_BURN_LIMIT && !sc->off[r] && bs->head[r] == h &&
                    bs->rule_cap[r] == bs->pot_cap[h]) {
                    chosen = (int)r;
                    break;
                }
            }
        }
    }
    if (chosen < 0) chosen = fallback;
    if (chosen < 0) {
        snprintf(q->burn_limited_by, sizeof q->burn_limited_by,
                 "no burn_limit rule lets %s points pay for this basket", kind);
        return;
    }
    const kp_rule *rule = &p->rules[chosen];
    /* "rule %s: %spoints pay at most %s of %s (%lld points on this basket)" */
    text t = text_at(q->burn_limited_by, sizeof q->burn_limited_by);
    T_LIT(&t, "rule ");
    t_str(&t, rule->id);
    T_LIT(&t, ": ");
    if (rule->point_kind[0]) {
        t_str(&t, rule->point_kind);
        T_LIT(&t, " ");
    }
    T_LIT(&t, "points pay at most ");
    t_rate(&t, rule->rate_bp);
    T_LIT(&t, " of ");
    t_str(&t, category_label(rule->category));
    T_LIT(&t, " (");
    t_i64(&t, bs->rule_cap[chosen]);
    T_LIT(&t, " points on this basket)");
}

/* Step 2: fills points_minor[i], the takes and the quote's burn. */
static void price_burn(const kp_program *p, const scope *sc, const kp_account *a,
                       const kp_basket *b, const int64_t *net, int64_t burn_max, kp_time now,
                       kp_quote *q, int64_t *points_minor)
{
    burn_state bs;
    const size_t n = b->n_lines;
    const int64_t mpp = sc->mpp;
    bool any_burn_rule = false;
    const kp_rule *min_balance = NULL;
    const cands burn_rules = of_group(p, sc, G_BURN);
    const kp_engine_index *bx = burn_ahead(p, sc);
    for (size_t k = 0; k < burn_rules.n; k++) {
        size_t r = cand_at(burn_rules, k);
        if (!sc->off[r] && p->rules[r].kind == KP_RULE_BURN_LIMIT) any_burn_rule = true;
    }
    cands c = of_kind(p, sc, KP_RULE_BURN_MIN_BALANCE);
    for (size_t k = 0; k < c.n && min_balance == NULL; k++) {
        size_t r = cand_at(c, k);
        if (!sc->off[r] && p->rules[r].kind == KP_RULE_BURN_MIN_BALANCE) min_balance = &p->rules[r];
    }
    bs.n_heads = 0;
    /* Only the burn_limit rules' entries are ever read. */
    for (size_t k = 0; k < burn_rules.n; k++) {
        size_t r = cand_at(burn_rules, k);
        bs.pot_base[r] = bs.pot_cap[r] = bs.pot_used[r] = bs.rule_cap[r] = bs.rule_used[r] = 0;
        bs.head[r] = -1;
        if (p->rules[r].kind != KP_RULE_BURN_LIMIT || sc->off[r]) continue;
        bs.head[r] = bx ? bx->burn_head[r] : pot_head(p, sc, r);
        if (bs.head[r] == (int)r) bs.heads[bs.n_heads++] = (int)r;
    }
    bs.pot_base[POT_ALL] = bs.pot_cap[POT_ALL] = bs.pot_used[POT_ALL] = 0;
    bs.rule_cap[POT_ALL] = bs.rule_used[POT_ALL] = 0;
    if (!any_burn_rule) bs.heads[bs.n_heads++] = POT_ALL;
    /* With a compiled program, the non-promo lines of one category id
     * share a pot. */
    int memo_pot[KP_RULES_MAX + 1];
    uint8_t known[KP_RULES_MAX + 1];
    if (sc->ix) memset(known, 0, sc->ix->n_cats + 1);
    for (size_t i = 0; i < n; i++) {
        points_minor[i] = 0;
        const kp_line *l = &b->lines[i];
        if (sc->ix && !l->promo) {
            int cat = sc->cat[i];
            if (!known[cat]) {
                memo_pot[cat] = bx ? bx->cat_pot[cat] : burn_pot_for(p, sc, l, i, any_burn_rule);
                known[cat] = 1;
            }
            bs.pot[i] = memo_pot[cat];
        } else {
            bs.pot[i] = burn_pot_for(p, sc, l, i, any_burn_rule);
        }
        if (bs.pot[i] >= 0) bs.pot_base[bs.pot[i]] += net[i];
    }
    for (size_t k = 0; k < burn_rules.n; k++) {
        size_t r = cand_at(burn_rules, k);
        if (p->rules[r].kind != KP_RULE_BURN_LIMIT || sc->off[r]) continue;
        int h = bs.head[r];
        bs.rule_cap[r] = muldiv(bs.pot_base[h], p->rules[r].rate_bp, 10000 * mpp, KP_ROUND_DOWN);
        if (bs.rule_cap[r] > bs.pot_cap[h]) bs.pot_cap[h] = bs.rule_cap[r];
    }
    if (!any_burn_rule) bs.rule_cap[POT_ALL] = bs.pot_cap[POT_ALL] = bs.pot_base[POT_ALL] / mpp;

    int64_t spendable = kp_account_spendable(a, now);
    int64_t want = b->burn_request;
    if (burn_max >= 0 && want > burn_max) want = burn_max;
    bool min_blocked = min_balance && want > 0 && spendable < min_balance->points;
    if (min_blocked) want = 0;
    if (want > spendable) want = spendable;

    /* Take lots earliest expiry first; each lot pays the pots its kind may
     * pay, in rule order. The store loads lots in that order; the engine
     * checks rather than trusts it. */
    int64_t need = want;
    const char *left_kind = NULL; /* the first kind with points the caps left unspent */
    /* The slot of each pot for the first few kinds of lots met: lots of one
     * kind ask the same question. */
    enum { KINDS_MEMO = 4 };
    const char *kinds[KINDS_MEMO];
    size_t n_kinds = 0;
    int16_t slot_memo[KINDS_MEMO][KP_RULES_MAX + 1];
    /* A kind whose lot took nothing takes nothing from later lots either:
     * room only shrinks as lots are taken. */
    bool spent_out[KP_BURN_KINDS + 1 > KINDS_MEMO ? KP_BURN_KINDS + 1 : KINDS_MEMO];
    /* With the burn resolved ahead, lots are told apart by kind id (kinds
     * no rule names share the last: they pay the same slots). */
    if (bx)
        for (size_t k = 0; k <= bx->n_burn_kinds; k++) spent_out[k] = false;
    for (size_t i = 0; i < a->n_lots && (need > 0 || left_kind == NULL); i++) {
        const kp_lot *lot = &a->lots[i];
        if (i > 0) assert(a->lots[i - 1].expires_at <= lot->expires_at);
        if (!lot_spendable(lot, now)) continue;
        size_t kid = 0;
        bool memo = true;
        if (bx) {
            kid = burn_kind_id(bx, lot->kind);
        } else {
            while (kid < n_kinds && !str_eq(kinds[kid], lot->kind)) kid++;
            if (kid == n_kinds && n_kinds < KINDS_MEMO && sc->ix) {
                kinds[n_kinds++] = lot->kind;
                spent_out[kid] = false;
                for (size_t k = 0; k < bs.n_heads; k++) slot_memo[kid][k] = -2;
            }
            memo = kid < n_kinds;
        }
        if (memo && spent_out[kid] && left_kind != NULL) continue;
        int64_t avail = lot->remaining, taken = 0;
        for (size_t k = 0; k < bs.n_heads && need > 0 && avail > 0; k++) {
            int h = bs.heads[k];
            if (bs.pot_base[h] == 0) continue;
            int s;
            if (bx) {
                s = h == POT_ALL ? POT_ALL : bx->burn_slot[h][kid];
            } else if (kid < n_kinds) {
                if (slot_memo[kid][k] == -2) slot_memo[kid][k] = (int16_t)slot_for(p, sc, h, lot->kind);
                s = slot_memo[kid][k];
            } else {
                s = slot_for(p, sc, h, lot->kind);
            }
            if (s < 0) continue;
            int64_t room = bs.rule_cap[s] - bs.rule_used[s];
            if (bs.pot_cap[h] - bs.pot_used[h] < room) room = bs.pot_cap[h] - bs.pot_used[h];
            int64_t t = room < avail ? room : avail;
            if (t > need) t = need;
            if (t <= 0) continue;
            bs.rule_used[s] += t;
            bs.pot_used[h] += t;
            avail -= t;
            need -= t;
            taken += t;
        }
        if (avail > 0 && left_kind == NULL) left_kind = lot->kind;
        if (taken == 0 && memo) spent_out[kid] = true;
        if (taken > 0) {
            q->takes[q->n_takes].lot_id = lot->id;
            q->takes[q->n_takes].points = taken;
            q->n_takes++;
        }
    }
    q->burned = want - need;

    if (q->burned < b->burn_request) {
        if (min_blocked)
            snprintf(q->burn_limited_by, sizeof q->burn_limited_by,
                     "rule %s: points are spent only from a balance of %lld or more "
                     "(%lld spendable now)",
                     min_balance->id, (long long)min_balance->points, (long long)spendable);
        else if (burn_max >= 0 && q->burned == burn_max)
            snprintf(q->burn_limited_by, sizeof q->burn_limited_by,
                     "script: points may pay at most %lld points of this basket",
                     (long long)burn_max);
        else if (q->burned == spendable) {
            text t = text_at(q->burn_limited_by, sizeof q->burn_limited_by);
            T_LIT(&t, "balance: ");
            t_i64(&t, spendable);
            T_LIT(&t, " points spendable now");
        }
        else
            burn_limited_by_caps(p, sc, bx, &bs, q, any_burn_rule, left_kind ? left_kind : "");
    }

    /* Each pot's points over its lines, in line order: one pot walks the
     * basket (a plain loop is faster than a chain), several walk their
     * own lines. */
    if (bs.n_heads == 1) {
        distribute(net, bs.pot, bs.heads[0], n, bs.pot_used[bs.heads[0]] * mpp, points_minor);
    } else {
        chains pl;
        for (size_t k = 0; k < bs.n_heads; k++) pl.first[bs.heads[k]] = -1;
        for (size_t i = 0; i < n; i++) {
            int h = bs.pot[i];
            if (h < 0) continue;
            pl.next[i] = -1;
            if (pl.first[h] < 0) pl.first[h] = (int16_t)i;
            else pl.next[pl.last[h]] = (int16_t)i;
            pl.last[h] = (int16_t)i;
        }
        for (size_t k = 0; k < bs.n_heads; k++) {
            int h = bs.heads[k];
            distribute_chain(net, &pl, h, bs.pot_used[h] * mpp, points_minor);
        }
    }
    if (!any_burn_rule || b->burn_request == 0) return;
    for (size_t k = 0; k < burn_rules.n; k++) {
        size_t r = cand_at(burn_rules, k);
        const kp_rule *rule = &p->rules[r];
        if (rule->kind != KP_RULE_BURN_LIMIT || sc->off[r] || bs.pot_base[bs.head[r]] == 0)
            continue;
        kp_explain *x = explain_add(q, rule->id, rule->kind);
        x->base_minor = bs.pot_base[bs.head[r]];
        x->rate_bp = rule->rate_bp;
        x->points = bs.rule_cap[r];
        explain_done(p, sc, x, F_BURN, r);
    }
}

/* ------------------------------------------------------------------ earn */

/* The earn rule for a line: of the rules active now that fit the line, its
 * store and the account's tier, the most specific: a promotional window
 * beats a standing rule, then a category beats the basket, a tier beats
 * every tier, a store beats every store; ties go to the first. -1 = none. */
static int earn_best(const kp_program *p, const scope *sc, const kp_line *line, size_t i,
                     const char *tier, kp_time now, cands c, int32_t *score_out)
{
    int best = -1, best_score = -1;
    for (size_t k = 0; k < c.n; k++) {
        size_t r = cand_at(c, k);
        const kp_rule *rule = &p->rules[r];
        if (rule->kind != KP_RULE_EARN_PERCENT || sc->off[r] || !kp_rule_active(rule, now))
            continue;
        if (!category_fits(sc, r, rule, i, line)) continue;
        if (rule->tier[0] && !str_eq(rule->tier, tier)) continue;
        int score = earn_score(rule);
        if (score > best_score) {
            best = (int)r;
            best_score = score;
        }
        /* A compiled list is most specific first: the first that fits wins. */
        if (sc->ix) break;
    }
    *score_out = best_score;
    return best;
}

static int earn_rule_for(const kp_program *p, const scope *sc, const kp_line *line, size_t i,
                         const char *tier, kp_time now)
{
    int32_t score;
    return earn_best(p, sc, line, i, tier, now, of_category(p, sc, G_EARN, 0), &score);
}

static void explain_earn(kp_quote *q, const kp_program *p, const scope *sc, size_t r,
                         const kp_rule *rule, int32_t rate, int64_t base, int64_t points)
{
    kp_explain *x = explain_add(q, rule->id, rule->kind);
    x->base_minor = base;
    x->rate_bp = rate;
    x->points = points;
    explain_done(p, sc, x, F_EARN, r);
}

/* Step 3: fills earned[i] and the quote's earn, with explanations. */
static kp_err price_earn(const kp_program *p, const scope *sc, const kp_account *a,
                         const kp_tier *tier, const kp_basket *b, const int64_t *paid, kp_time now,
                         kp_quote *q, int64_t *earned, int *rule_of, kp_error *e)
{
    const size_t n = b->n_lines;
    const int64_t mpp = sc->mpp;
    const int64_t mult = tier ? tier->earn_multiplier_x100 : 100;
    /* With a compiled program, lines of one category id share the rule:
     * the better of the basket-wide rules' (found once) and the category's
     * own rules'. */
    int memo[KP_RULES_MAX + 1];
    uint8_t known[KP_RULES_MAX + 1];
    int wide = -1;
    int32_t wide_score = -1;
    if (sc->ix) {
        memset(known, 0, sc->ix->n_cats + 1);
        wide = earn_best(p, sc, &b->lines[0], 0, a->tier, now, of_category(p, sc, G_EARN, 0),
                         &wide_score);
    }
    for (size_t i = 0; i < n; i++) {
        earned[i] = 0;
        if (sc->ix) {
            int c = sc->cat[i];
            if (!known[c]) {
                int32_t own_score = -1, score;
                int own = c ? earn_best(p, sc, &b->lines[i], i, a->tier, now,
                                        of_category(p, sc, G_EARN, c), &own_score)
                            : -1;
                memo[c] = better_of(wide, wide_score, own, own_score, &score);
                known[c] = 1;
            }
            rule_of[i] = memo[c];
        } else {
            rule_of[i] = earn_rule_for(p, sc, &b->lines[i], i, a->tier, now);
        }
    }
    int64_t tier_extra = 0;
    bool any = false;
    /* Each rule that priced a line, in rule order; its lines in line order. */
    chains ch;
    cands c = of_group(p, sc, G_EARN);
    chains_build(&ch, rule_of, n, c, -1);
    for (size_t k = 0; k < c.n; k++) {
        size_t r = cand_at(c, k);
        const kp_rule *rule = &p->rules[r];
        if (rule->kind != KP_RULE_EARN_PERCENT || ch.first[r] < 0) continue;
        int32_t rate = rule->rate_bp;
        if (rule->n_steps) {
            rate = kp_steps_rate(rule->steps, rule->n_steps, q->amount_minor);
            if (rate < 0) rate = 0;
        }
        int64_t cum = 0, given = 0;
        bool used = false;
        for (int i = ch.first[r]; i >= 0; i = ch.next[i]) {
            used = true;
            cum += paid[i];
            int64_t upto = muldiv(cum, (int64_t)rate * mult, 10000 * 100 * mpp, p->rounding);
            earned[i] += upto - given;
            given = upto;
        }
        if (!used) continue;
        any = true;
        int64_t plain = muldiv(cum, rate, 10000 * mpp, p->rounding);
        tier_extra += given - plain;
        if (!kp_add_checked(&q->earned, given))
            return kp_error_set(e, KP_ERR_OVERFLOW, "lines", "the points earned overflow");
        explain_earn(q, p, sc, r, rule, rate, cum, plain);
    }
    if (any && tier && mult != 100) {
        kp_explain *x = explain_add(q, tier->name, KP_RULE_TIER);
        x->base_minor = q->paid_minor;
        x->points = tier_extra;
        x->arg = mult;
        explain_done(p, sc, x, F_EARN_TIER, (size_t)(tier - p->tiers));
    }
    return KP_OK;
}

/* Adds `bonus` points spread over the lines by what each paid in money. */
static void add_bonus(const int64_t *paid, size_t n, int64_t bonus, int64_t *earned)
{
    int all[KP_LINES_MAX];
    for (size_t i = 0; i < n; i++) all[i] = 0;
    distribute(paid, all, 0, n, bonus, earned);
}

/* Step 4: the first-purchase minimum and the annual spend bonus. */
static kp_err price_bonuses(const kp_program *p, const scope *sc, const kp_account *a,
                            const int64_t *paid, size_t n, kp_quote *q, int64_t *earned,
                            kp_error *e)
{
    const kp_rule *first_min = NULL;
    cands c = of_kind(p, sc, KP_RULE_FIRST_PURCHASE_MIN);
    for (size_t k = 0; k < c.n && first_min == NULL; k++) {
        size_t r = cand_at(c, k);
        if (p->rules[r].kind == KP_RULE_FIRST_PURCHASE_MIN && !sc->off[r]) first_min = &p->rules[r];
    }
    if (first_min && a->purchases == 0 && q->paid_minor > 0 && q->earned < first_min->points) {
        int64_t bump = first_min->points - q->earned;
        add_bonus(paid, n, bump, earned);
        kp_explain *x = explain_add(q, first_min->id, first_min->kind);
        x->base_minor = q->paid_minor;
        x->points = bump;
        x->arg = q->earned;
        explain_done(p, sc, x, F_FIRST, (size_t)(first_min - p->rules));
        q->earned += bump;
    }
    /* Receipt amounts, as the store sums the year's purchases (ops.amount). */
    int64_t spend_now = q->amount_minor;
    c = of_kind(p, sc, KP_RULE_ANNUAL_SPEND_BONUS);
    for (size_t k = 0; k < c.n; k++) {
        size_t r = cand_at(c, k);
        const kp_rule *rule = &p->rules[r];
        if (rule->kind != KP_RULE_ANNUAL_SPEND_BONUS || sc->off[r]) continue;
        int64_t before = a->year_spend_minor, after = before;
        if (!kp_add_checked(&after, spend_now))
            return kp_error_set(e, KP_ERR_OVERFLOW, "lines", "the year's spend overflows");
        if (before > rule->amount_minor || after <= rule->amount_minor) continue;
        add_bonus(paid, n, rule->points, earned);
        if (!kp_add_checked(&q->earned, rule->points))
            return kp_error_set(e, KP_ERR_OVERFLOW, "lines", "the points earned overflow");
        kp_explain *x = explain_add(q, rule->id, rule->kind);
        x->base_minor = after;
        x->points = rule->points;
        explain_done(p, sc, x, F_ANNUAL, r);
    }
    return KP_OK;
}

/* ------------------------------------------------------------------ price */

static void refuse_join(const kp_program *p, const scope *sc, const kp_rule *join,
                        const kp_basket *b, kp_quote *q)
{
    q->joined = false;
    kp_explain *x = explain_add(q, join->id, join->kind);
    x->base_minor = q->amount_minor;
    explain_done(p, sc, x, F_JOIN, (size_t)(join - p->rules));
    if (b->burn_request > 0)
        snprintf(q->burn_limited_by, sizeof q->burn_limited_by,
                 "rule %s: the card has not joined the program yet", join->id);
    for (size_t i = 0; i < b->n_lines; i++) {
        q->lines[i].discount_minor = q->lines[i].points_minor = q->lines[i].earned = 0;
        q->lines[i].paid_minor = b->lines[i].amount_minor;
        q->lines[i].earn_rule = q->lines[i].discount_rule = -1;
    }
    q->paid_minor = q->amount_minor;
}

kp_err kp_engine_price_opts(const kp_program *program, const kp_account *account,
                            const kp_basket *basket, const kp_price_opts *opts, kp_time now,
                            kp_quote *q, kp_error *e)
{
    /* Only the header is zeroed: the arrays are written before they are read
     * and are 90 KB, which would be waste on every quote. */
    memset(q, 0, offsetof(kp_quote, lines));
    q->n_explain = 0;
    q->n_takes = 0;
    q->joined = true;
    kp_err err = kp_basket_validate(basket, e);
    if (err != KP_OK) return err;
    KP_CHECK(program->minor_per_point > 0, "engine: a point is worth at least one minor unit", e);

    const char *store = opts && opts->store ? opts->store : "";
    const char *currency = opts && opts->currency ? opts->currency : "";
    const int64_t burn_max = opts ? opts->burn_max : -1;
    scope sc;
    sc.mpp = kp_program_minor_per_point(program, currency);
    if (sc.mpp <= 0)
        return kp_error_set(e, KP_ERR_INVALID, "currency",
                            "the program does not accept \"%s\" (its own currency is \"%s\")",
                            currency, program->currency);
    const char *store_partner = kp_program_partner_of_store(program, store);
    const bool no_promos = opts && opts->no_partner_promos;
    sc.ix = opts ? opts->index : NULL;
    sc.defer = opts && opts->defer_text;
    if (sc.ix && (sc.ix->program != program || sc.ix->n_rules != program->n_rules)) sc.ix = NULL;
    /* A rule that names no store, partner or currency fits everywhere: the
     * compiled program lists the others. */
    if (sc.ix) memset(sc.off, 0, program->n_rules);
    const size_t n_check = sc.ix ? sc.ix->n_scoped : program->n_rules;
    for (size_t k = 0; k < n_check; k++) {
        size_t r = sc.ix ? sc.ix->scoped[k] : k;
        const kp_rule *rule = &program->rules[r];
        sc.off[r] = !kp_rule_fits_store(program, rule, store, store_partner, currency) ||
                    (no_promos && rule->at_partner[0]);
    }
    if (sc.ix)
        for (size_t i = 0; i < basket->n_lines; i++) {
            const char *cat = basket->lines[i].category;
            sc.cat[i] = (uint8_t)cat_find(sc.ix, cat, cat_hash(cat));
        }
    const size_t n = basket->n_lines;
    const kp_tier *tier = kp_program_tier(program, account->tier, &q->tier_index);
    int64_t disc[KP_LINES_MAX], net[KP_LINES_MAX], points_minor[KP_LINES_MAX];
    int64_t paid[KP_LINES_MAX], earned[KP_LINES_MAX];
    int disc_src[KP_LINES_MAX], earn_src[KP_LINES_MAX];

    q->n_lines = n;
    q->burn_request = basket->burn_request;
    q->balance_before = account->balance;
    for (size_t i = 0; i < n; i++) q->amount_minor += basket->lines[i].amount_minor;

    cands joins = of_kind(program, &sc, KP_RULE_JOIN_MIN_PURCHASE);
    for (size_t k = 0; k < joins.n; k++) {
        size_t r = cand_at(joins, k);
        const kp_rule *join = &program->rules[r];
        if (join->kind != KP_RULE_JOIN_MIN_PURCHASE || sc.off[r]) continue;
        if (account->purchases == 0 && q->amount_minor < join->amount_minor) {
            refuse_join(program, &sc, join, basket, q);
            q->balance_after = account->balance;
            return KP_OK;
        }
        break;
    }

    price_discounts(program, &sc, account, tier, basket, now, q, disc, disc_src);
    for (size_t i = 0; i < n; i++) net[i] = basket->lines[i].amount_minor - disc[i];

    price_burn(program, &sc, account, basket, net, burn_max, now, q, points_minor);

    for (size_t i = 0; i < n; i++) {
        paid[i] = net[i] - points_minor[i];
        KP_CHECK(paid[i] >= 0, "engine: no line is paid below zero", e);
        q->points_minor += points_minor[i];
        q->paid_minor += paid[i];
    }
    if ((err = price_earn(program, &sc, account, tier, basket, paid, now, q, earned, earn_src, e)))
        return err;
    if ((err = price_bonuses(program, &sc, account, paid, n, q, earned, e))) return err;

    for (size_t i = 0; i < n; i++) {
        q->lines[i].discount_minor = disc[i];
        q->lines[i].points_minor = points_minor[i];
        q->lines[i].paid_minor = paid[i];
        q->lines[i].earned = earned[i];
        q->lines[i].earn_rule = (int16_t)earn_src[i];
        q->lines[i].discount_rule = (int16_t)disc_src[i];
    }
    q->balance_after = account->balance - q->burned;
    if (!kp_add_checked(&q->balance_after, q->earned))
        return kp_error_set(e, KP_ERR_OVERFLOW, "lines", "the balance would overflow");
    /* The money of a priced receipt adds up, in every build (check.h). */
    KP_CHECK(q->paid_minor + q->points_minor + q->discount_minor == q->amount_minor,
             "engine: paid + points + discount = the receipt's amount", e);
    KP_CHECK(q->burned >= 0 && q->earned >= 0,
             "engine: burned and earned points are never negative", e);
    return KP_OK;
}

kp_err kp_engine_price(const kp_program *program, const kp_account *account,
                       const kp_basket *basket, kp_time now, kp_quote *out, kp_error *e)
{
    return kp_engine_price_opts(program, account, basket, NULL, now, out, e);
}

void kp_quote_set_earned(kp_quote *q, int64_t earned, kp_rule_kind kind, const char *rule,
                         const char *why)
{
    KP_CHECK_ABORT(earned >= 0, "engine: earned points are never negative");
    int64_t paid[KP_LINES_MAX], share[KP_LINES_MAX];
    int all[KP_LINES_MAX];
    for (size_t i = 0; i < q->n_lines; i++) {
        paid[i] = q->lines[i].paid_minor;
        share[i] = 0;
        all[i] = 0;
    }
    distribute(paid, all, 0, q->n_lines, earned, share);
    for (size_t i = 0; i < q->n_lines; i++) q->lines[i].earned = share[i];
    kp_explain *x = explain_add(q, rule, kind);
    x->base_minor = q->paid_minor;
    x->points = earned - q->earned;
    snprintf(x->text, sizeof x->text, "%s", why);
    q->balance_after += earned - q->earned;
    q->earned = earned;
}
