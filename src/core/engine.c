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

static void t_str(text *t, const char *s)
{
    size_t n = strlen(s);
    if (n >= t->left) n = t->left - 1;
    memcpy(t->p, s, n);
    t->p += n;
    t->left -= n;
    *t->p = '\0';
}

static void t_u64(text *t, uint64_t v, int min_digits)
{
    char d[24];
    int n = 0;
    do {
        d[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v || n < min_digits);
    char out[24];
    for (int i = 0; i < n; i++) out[i] = d[n - 1 - i];
    out[n] = '\0';
    t_str(t, out);
}

static void t_i64(text *t, int64_t v)
{
    if (v < 0) t_str(t, "-");
    t_u64(t, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v, 1);
}

/* As kp_money_format: "1234.56". */
static void t_money(text *t, int64_t minor)
{
    if (minor < 0) t_str(t, "-");
    uint64_t v = minor < 0 ? (uint64_t)0 - (uint64_t)minor : (uint64_t)minor;
    t_u64(t, v / 100, 1);
    t_str(t, ".");
    t_u64(t, v % 100, 2);
}

/* As kp_percent_format without the sign: "12", "12.5", "12.25". */
static void t_decimal(text *t, int32_t hundredths)
{
    t_u64(t, (uint64_t)(hundredths / 100), 1);
    if (hundredths % 100 == 0) return;
    t_str(t, ".");
    if (hundredths % 10 == 0)
        t_u64(t, (uint64_t)(hundredths % 100 / 10), 1);
    else
        t_u64(t, (uint64_t)(hundredths % 100), 2);
}

static void t_rate(text *t, int32_t bp)
{
    t_decimal(t, bp);
    t_str(t, "%");
}

static kp_explain *explain_add(kp_quote *q, const char *rule, kp_rule_kind kind)
{
    assert(q->n_explain < KP_EXPLAIN_MAX);
    kp_explain *x = &q->explain[q->n_explain++];
    memset(x, 0, sizeof *x);
    if (rule) {
        text t = text_at(x->rule, sizeof x->rule);
        t_str(&t, rule);
    }
    x->kind = kind;
    return x;
}

static const char *category_label(const char *category)
{
    return category[0] ? category : "the basket";
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
        int64_t upto = kp_muldiv(total, cum, weight_sum, KP_ROUND_DOWN);
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
 * they are partner-funded promotions and the caller asked for none), and
 * what a point is worth in the receipt's currency. */
typedef struct scope {
    uint8_t off[KP_RULES_MAX];
    int64_t mpp;
} scope;

/* The discount rule (or the tier, as source n_rules) that gives line `l`
 * its largest rate; -1 when none does. */
static int discount_source(const kp_program *p, const scope *sc, const kp_account *a,
                           const kp_tier *tier, const kp_line *l, kp_time now, int32_t *rate_out)
{
    int best = -1;
    int32_t best_rate = 0;
    for (size_t r = 0; r < p->n_rules; r++) {
        const kp_rule *rule = &p->rules[r];
        if (rule->kind != KP_RULE_DISCOUNT_FIXED && rule->kind != KP_RULE_DISCOUNT_CUMULATIVE)
            continue;
        if (sc->off[r]) continue;
        if (rule->category[0] && strcmp(rule->category, l->category) != 0) continue;
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
    if (tier && tier->discount_bp > best_rate) {
        best = (int)p->n_rules;
        best_rate = tier->discount_bp;
    }
    *rate_out = best_rate;
    return best;
}

static void explain_discount(kp_quote *q, const kp_program *p, const kp_account *a,
                             const kp_tier *tier, int source, int64_t base, int32_t rate,
                             int64_t discount)
{
    kp_explain *x;
    text t;
    if (source == (int)p->n_rules) {
        x = explain_add(q, tier->name, KP_RULE_TIER);
        t = text_at(x->text, sizeof x->text);
        t_str(&t, "tier ");
        t_str(&t, tier->name);
        t_str(&t, ": ");
        t_rate(&t, rate);
        t_str(&t, " discount on ");
    } else {
        const kp_rule *rule = &p->rules[source];
        x = explain_add(q, rule->id, rule->kind);
        t = text_at(x->text, sizeof x->text);
        if (rule->kind == KP_RULE_DISCOUNT_FIXED) {
            t_rate(&t, rate);
            t_str(&t, " discount on ");
            t_str(&t, category_label(rule->category));
            t_str(&t, " ");
        } else {
            bool individual = false;
            cumulative_rate(rule, a, &individual);
            if (individual) t_str(&t, "individual ");
            t_rate(&t, rate);
            t_str(&t, " discount for an accumulated spend of ");
            t_money(&t, a->spend_minor);
            t_str(&t, ": ");
            t_rate(&t, rate);
            t_str(&t, " of ");
        }
    }
    t_money(&t, base);
    t_str(&t, " = ");
    t_money(&t, discount);
    x->base_minor = base;
    x->rate_bp = rate;
    x->discount_minor = discount;
}

/* Step 1: fills disc[i] and the quote's discount, with explanations. */
static void price_discounts(const kp_program *p, const scope *sc, const kp_account *a,
                            const kp_tier *tier, const kp_basket *b, kp_time now, kp_quote *q,
                            int64_t *disc, int *src)
{
    const size_t n = b->n_lines;
    int32_t rate_of_src[KP_RULES_MAX + 1];
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        int32_t rate = 0;
        disc[i] = 0;
        src[i] = discount_source(p, sc, a, tier, &b->lines[i], now, &rate);
        if (src[i] >= 0) {
            rate_of_src[src[i]] = rate;
            any = true;
        }
    }
    /* Tell the cashier why a registered-only discount was not given. */
    if (!a->registered) {
        for (size_t r = 0; r < p->n_rules; r++) {
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
            snprintf(x->text, sizeof x->text,
                     "the card is not registered: no discount (register it to get one)");
        }
    }
    if (!any) return;
    for (int s = 0; s <= (int)p->n_rules; s++) {
        int64_t cum = 0, given = 0;
        bool used = false;
        for (size_t i = 0; i < n; i++) {
            if (src[i] != s) continue;
            used = true;
            cum += b->lines[i].amount_minor;
            int64_t upto = kp_muldiv(cum, rate_of_src[s], 10000, p->rounding);
            disc[i] = upto - given;
            given = upto;
        }
        if (!used) continue;
        q->discount_minor += given;
        explain_discount(q, p, a, tier, s, cum, rate_of_src[s], given);
    }
}

/* ------------------------------------------------------------------ burn */

/* The pot of a line: the first burn_limit rule naming its category, else
 * the first basket-wide one; -1 = not payable with points. With no
 * burn_limit rule at all every non-promo line is in POT_ALL. */
static int burn_pot_for(const kp_program *p, const scope *sc, const kp_line *line,
                        bool any_burn_rule)
{
    if (line->promo) return -1;
    if (!any_burn_rule) return POT_ALL;
    int basket_wide = -1;
    for (size_t r = 0; r < p->n_rules; r++) {
        const kp_rule *rule = &p->rules[r];
        if (rule->kind != KP_RULE_BURN_LIMIT || sc->off[r]) continue;
        if (rule->category[0] == '\0') {
            if (basket_wide < 0) basket_wide = (int)r;
        } else if (strcmp(rule->category, line->category) == 0) {
            return (int)r;
        }
    }
    return basket_wide;
}

/* The pot (its first rule) a burn_limit rule belongs to. */
static int pot_head(const kp_program *p, const scope *sc, size_t r)
{
    for (size_t j = 0; j < r; j++)
        if (p->rules[j].kind == KP_RULE_BURN_LIMIT && !sc->off[j] &&
            strcmp(p->rules[j].category, p->rules[r].category) == 0)
            return (int)j;
    return (int)r;
}

/* The rule that caps points of `kind` in pot `head`: the pot's rule for
 * that kind, else its rule for every kind; -1 = that kind cannot pay it. */
static int slot_for(const kp_program *p, const scope *sc, int head, const char *kind)
{
    if (head == POT_ALL) return POT_ALL;
    int any = -1;
    const char *category = p->rules[head].category;
    for (size_t r = (size_t)head; r < p->n_rules; r++) {
        const kp_rule *rule = &p->rules[r];
        if (rule->kind != KP_RULE_BURN_LIMIT || sc->off[r] || strcmp(rule->category, category) != 0)
            continue;
        if (strcmp(rule->point_kind, kind) == 0) return (int)r;
        if (rule->point_kind[0] == '\0' && any < 0) any = (int)r;
    }
    return any;
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
static void burn_limited_by_caps(const kp_program *p, const scope *sc, const burn_state *bs,
                                 kp_quote *q, bool any_burn_rule, const char *kind)
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
        int s = slot_for(p, sc, h, kind);
        if (s < 0) continue;
        if (fallback < 0) fallback = s;
        if (bs->pot_base[h] == 0) continue;
        if (bs->rule_used[s] >= bs->rule_cap[s]) {
            chosen = s;
        } else {
            for (size_t r = (size_t)h; r < p->n_rules; r++)
                if (p->rules[r].kind == KP_RULE_BURN_LIMIT && !sc->off[r] && bs->head[r] == h &&
                    bs->rule_cap[r] == bs->pot_cap[h]) {
                    chosen = (int)r;
                    break;
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
    char rate[16], kind_label[24] = "";
    kp_percent_format(rule->rate_bp, rate, sizeof rate);
    if (rule->point_kind[0]) snprintf(kind_label, sizeof kind_label, "%s ", rule->point_kind);
    snprintf(q->burn_limited_by, sizeof q->burn_limited_by,
             "rule %s: %spoints pay at most %s of %s (%lld points on this basket)", rule->id,
             kind_label, rate, category_label(rule->category), (long long)bs->rule_cap[chosen]);
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
    for (size_t r = 0; r < p->n_rules; r++) {
        if (sc->off[r]) continue;
        if (p->rules[r].kind == KP_RULE_BURN_LIMIT) any_burn_rule = true;
        if (p->rules[r].kind == KP_RULE_BURN_MIN_BALANCE && min_balance == NULL)
            min_balance = &p->rules[r];
    }
    bs.n_heads = 0;
    for (size_t r = 0; r < p->n_rules; r++) {
        bs.pot_base[r] = bs.pot_cap[r] = bs.pot_used[r] = bs.rule_cap[r] = bs.rule_used[r] = 0;
        bs.head[r] = -1;
        if (p->rules[r].kind != KP_RULE_BURN_LIMIT || sc->off[r]) continue;
        bs.head[r] = pot_head(p, sc, r);
        if (bs.head[r] == (int)r) bs.heads[bs.n_heads++] = (int)r;
    }
    bs.pot_base[POT_ALL] = bs.pot_cap[POT_ALL] = bs.pot_used[POT_ALL] = 0;
    bs.rule_cap[POT_ALL] = bs.rule_used[POT_ALL] = 0;
    if (!any_burn_rule) bs.heads[bs.n_heads++] = POT_ALL;
    for (size_t i = 0; i < n; i++) {
        points_minor[i] = 0;
        bs.pot[i] = burn_pot_for(p, sc, &b->lines[i], any_burn_rule);
        if (bs.pot[i] >= 0) bs.pot_base[bs.pot[i]] += net[i];
    }
    for (size_t r = 0; r < p->n_rules; r++) {
        if (p->rules[r].kind != KP_RULE_BURN_LIMIT || sc->off[r]) continue;
        int h = bs.head[r];
        bs.rule_cap[r] = kp_muldiv(bs.pot_base[h], p->rules[r].rate_bp, 10000 * mpp, KP_ROUND_DOWN);
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
    for (size_t i = 0; i < a->n_lots && (need > 0 || left_kind == NULL); i++) {
        const kp_lot *lot = &a->lots[i];
        if (i > 0) assert(a->lots[i - 1].expires_at <= lot->expires_at);
        if (!lot_spendable(lot, now)) continue;
        int64_t avail = lot->remaining, taken = 0;
        for (size_t k = 0; k < bs.n_heads && need > 0 && avail > 0; k++) {
            int h = bs.heads[k];
            if (bs.pot_base[h] == 0) continue;
            int s = slot_for(p, sc, h, lot->kind);
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
        else if (q->burned == spendable)
            snprintf(q->burn_limited_by, sizeof q->burn_limited_by,
                     "balance: %lld points spendable now", (long long)spendable);
        else
            burn_limited_by_caps(p, sc, &bs, q, any_burn_rule, left_kind ? left_kind : "");
    }

    for (size_t k = 0; k < bs.n_heads; k++) {
        int h = bs.heads[k];
        distribute(net, bs.pot, h, n, bs.pot_used[h] * mpp, points_minor);
    }
    if (!any_burn_rule || b->burn_request == 0) return;
    for (size_t r = 0; r < p->n_rules; r++) {
        const kp_rule *rule = &p->rules[r];
        if (rule->kind != KP_RULE_BURN_LIMIT || sc->off[r] || bs.pot_base[bs.head[r]] == 0)
            continue;
        kp_explain *x = explain_add(q, rule->id, rule->kind);
        x->base_minor = bs.pot_base[bs.head[r]];
        x->rate_bp = rule->rate_bp;
        x->points = bs.rule_cap[r];
        text t = text_at(x->text, sizeof x->text);
        if (rule->point_kind[0]) {
            t_str(&t, rule->point_kind);
            t_str(&t, " ");
        }
        t_str(&t, "points may pay ");
        t_rate(&t, rule->rate_bp);
        t_str(&t, " of ");
        t_str(&t, category_label(rule->category));
        t_str(&t, " ");
        t_money(&t, x->base_minor);
        t_str(&t, ": at most ");
        t_i64(&t, bs.rule_cap[r]);
        t_str(&t, " points");
    }
}

/* ------------------------------------------------------------------ earn */

/* The earn rule for a line: of the rules active now that fit the line, its
 * store and the account's tier, the most specific: a promotional window
 * beats a standing rule, then a category beats the basket, a tier beats
 * every tier, a store beats every store; ties go to the first. -1 = none. */
static int earn_rule_for(const kp_program *p, const scope *sc, const kp_line *line,
                         const char *tier, kp_time now)
{
    int best = -1, best_score = -1;
    for (size_t r = 0; r < p->n_rules; r++) {
        const kp_rule *rule = &p->rules[r];
        if (rule->kind != KP_RULE_EARN_PERCENT || sc->off[r] || !kp_rule_active(rule, now))
            continue;
        if (rule->category[0] && strcmp(rule->category, line->category) != 0) continue;
        if (rule->tier[0] && strcmp(rule->tier, tier) != 0) continue;
        /* A store, or a partner's stores, are more specific than every store. */
        int score = ((rule->starts_at || rule->ends_at) ? 8 : 0) + (rule->category[0] ? 4 : 0) +
                    (rule->tier[0] ? 2 : 0) + (rule->store[0] || rule->partner[0] ? 1 : 0);
        if (score > best_score) {
            best = (int)r;
            best_score = score;
        }
    }
    return best;
}

static void explain_earn(kp_quote *q, const kp_rule *rule, int32_t rate, int64_t base,
                         int64_t points)
{
    kp_explain *x = explain_add(q, rule->id, rule->kind);
    x->base_minor = base;
    x->rate_bp = rate;
    x->points = points;
    text t = text_at(x->text, sizeof x->text);
    t_rate(&t, rate);
    if (rule->n_steps) {
        int64_t from = rule->steps[0].min_minor;
        for (size_t s = 0; s < rule->n_steps; s++)
            if (rule->steps[s].rate_bp == rate) from = rule->steps[s].min_minor;
        t_str(&t, " (receipts from ");
        t_money(&t, from);
        t_str(&t, ")");
    } else if (rule->ends_at) {
        char until[32];
        kp_time_format(rule->ends_at, until, sizeof until);
        until[10] = '\0';
        t_str(&t, " (promotion until ");
        t_str(&t, until);
        t_str(&t, ")");
    } else if (rule->starts_at) {
        t_str(&t, " (promotion)");
    }
    t_str(&t, " of ");
    t_money(&t, base);
    t_str(&t, " paid for ");
    t_str(&t, category_label(rule->category));
    t_str(&t, " = ");
    t_i64(&t, points);
    t_str(&t, " points");
}

/* Step 3: fills earned[i] and the quote's earn, with explanations. */
static kp_err price_earn(const kp_program *p, const scope *sc, const kp_account *a,
                         const kp_tier *tier, const kp_basket *b, const int64_t *paid, kp_time now,
                         kp_quote *q, int64_t *earned, int *rule_of, kp_error *e)
{
    const size_t n = b->n_lines;
    const int64_t mpp = sc->mpp;
    const int64_t mult = tier ? tier->earn_multiplier_x100 : 100;
    for (size_t i = 0; i < n; i++) {
        earned[i] = 0;
        rule_of[i] = earn_rule_for(p, sc, &b->lines[i], a->tier, now);
    }
    int64_t tier_extra = 0;
    bool any = false;
    for (size_t r = 0; r < p->n_rules; r++) {
        const kp_rule *rule = &p->rules[r];
        if (rule->kind != KP_RULE_EARN_PERCENT) continue;
        int32_t rate = rule->rate_bp;
        if (rule->n_steps) {
            rate = kp_steps_rate(rule->steps, rule->n_steps, q->amount_minor);
            if (rate < 0) rate = 0;
        }
        int64_t cum = 0, given = 0;
        bool used = false;
        for (size_t i = 0; i < n; i++) {
            if (rule_of[i] != (int)r) continue;
            used = true;
            cum += paid[i];
            int64_t upto = kp_muldiv(cum, (int64_t)rate * mult, 10000 * 100 * mpp, p->rounding);
            earned[i] += upto - given;
            given = upto;
        }
        if (!used) continue;
        any = true;
        int64_t plain = kp_muldiv(cum, rate, 10000 * mpp, p->rounding);
        tier_extra += given - plain;
        if (!kp_add_checked(&q->earned, given))
            return kp_error_set(e, KP_ERR_OVERFLOW, "lines", "the points earned overflow");
        explain_earn(q, rule, rate, cum, plain);
    }
    if (any && tier && mult != 100) {
        kp_explain *x = explain_add(q, tier->name, KP_RULE_TIER);
        x->base_minor = q->paid_minor;
        x->points = tier_extra;
        text t = text_at(x->text, sizeof x->text);
        t_str(&t, "tier ");
        t_str(&t, tier->name);
        t_str(&t, " earns x");
        t_decimal(&t, (int32_t)mult);
        t_str(&t, tier_extra >= 0 ? ": +" : ": ");
        t_i64(&t, tier_extra);
        t_str(&t, " points");
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
    for (size_t r = 0; r < p->n_rules && first_min == NULL; r++)
        if (p->rules[r].kind == KP_RULE_FIRST_PURCHASE_MIN && !sc->off[r]) first_min = &p->rules[r];
    if (first_min && a->purchases == 0 && q->paid_minor > 0 && q->earned < first_min->points) {
        int64_t bump = first_min->points - q->earned;
        add_bonus(paid, n, bump, earned);
        kp_explain *x = explain_add(q, first_min->id, first_min->kind);
        x->base_minor = q->paid_minor;
        x->points = bump;
        snprintf(x->text, sizeof x->text,
                 "first purchase earns at least %lld points: %lld added to the %lld earned",
                 (long long)first_min->points, (long long)bump, (long long)q->earned);
        q->earned += bump;
    }
    /* Receipt amounts, as the store sums the year's purchases (ops.amount). */
    int64_t spend_now = q->amount_minor;
    for (size_t r = 0; r < p->n_rules; r++) {
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
        char thr[32], spent[32];
        kp_money_format(rule->amount_minor, thr, sizeof thr);
        kp_money_format(after, spent, sizeof spent);
        x->base_minor = after;
        x->points = rule->points;
        snprintf(x->text, sizeof x->text,
                 "this year's purchases passed %s (now %s): a bonus of %lld points", thr, spent,
                 (long long)rule->points);
    }
    return KP_OK;
}

/* ------------------------------------------------------------------ price */

static void refuse_join(const kp_program *p, const kp_rule *join, const kp_basket *b, kp_quote *q)
{
    char min[32], amount[32];
    kp_money_format(join->amount_minor, min, sizeof min);
    kp_money_format(q->amount_minor, amount, sizeof amount);
    q->joined = false;
    kp_explain *x = explain_add(q, join->id, join->kind);
    x->base_minor = q->amount_minor;
    snprintf(x->text, sizeof x->text,
             "a card joins the program with a purchase of %s or more; this one is %s: "
             "no discount, no points",
             min, amount);
    if (b->burn_request > 0)
        snprintf(q->burn_limited_by, sizeof q->burn_limited_by,
                 "rule %s: the card has not joined the program yet", join->id);
    for (size_t i = 0; i < b->n_lines; i++) {
        q->lines[i].discount_minor = q->lines[i].points_minor = q->lines[i].earned = 0;
        q->lines[i].paid_minor = b->lines[i].amount_minor;
        q->lines[i].earn_rule = q->lines[i].discount_rule = -1;
    }
    q->paid_minor = q->amount_minor;
    (void)p;
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
    for (size_t r = 0; r < program->n_rules; r++) {
        const kp_rule *rule = &program->rules[r];
        sc.off[r] = !kp_rule_fits_store(program, rule, store, store_partner, currency) ||
                    (no_promos && rule->at_partner[0]);
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

    for (size_t r = 0; r < program->n_rules; r++) {
        const kp_rule *join = &program->rules[r];
        if (join->kind != KP_RULE_JOIN_MIN_PURCHASE || sc.off[r]) continue;
        if (account->purchases == 0 && q->amount_minor < join->amount_minor) {
            refuse_join(program, join, basket, q);
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
