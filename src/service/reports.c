/*
 * reports.c: the back office's reports (docs/api.md "Reports",
 * docs/analytics.md "Reports"): the period checked as the dashboard's, the
 * store's figures read in one snapshot on the caller's connection (a
 * reader for the server, kp_store_ops.report), and the ratios built on
 * them with the running program's point value. Typed in and out: the
 * route writes JSON or CSV.
 */
#include "people_int.h"
#include "currency.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopilka/clock.h>
#include <kopilka/coalition.h>
#include <kopilka/program.h>

/* num / den in ten-thousandths, rounded half up; 0 when den <= 0 or num
 * < 0; saturated at INT32_MAX. */
static int32_t share_bp(int64_t num, int64_t den)
{
    if (den <= 0 || num < 0) return 0;
    __int128 v = ((__int128)num * 10000 + den / 2) / den;
    return v > INT32_MAX ? INT32_MAX : (int32_t)v;
}

kp_err kp_points_report_read(kp_office *o, const char *from, const char *to, const char *store,
                             const char *currency, kp_points_report *out, kp_error *e)
{
    memset(out, 0, sizeof *out);
    kp_err err = kp_report_period_read(o, from, to, store, &out->period, e);
    if (err) return err;
    /* One currency at a time: its accounts' points, at its point value. */
    const char *own = o->program ? o->program->currency : "";
    const char *cur = currency && currency[0] ? currency : own;
    if (cur[0] && !(o->program && kp_service_currency_accepted(o->program, cur)))
        return kp_error_set(e, KP_ERR_INVALID, "currency",
                            "must be a currency the program accepts (its own is %s), got \"%s\"",
                            own[0] ? own : "not set: no program is loaded", cur);
    snprintf(out->currency, sizeof out->currency, "%s", cur);
    kp_report_query q = {
        .from = out->period.from_at,
        .to = out->period.to_at,
        .utc_offset_minutes = out->period.utc_offset_minutes,
        .store = out->period.store,
        .currency = strcmp(cur, own) == 0 ? "" : cur,
    };
    kp_report_points *f = &out->figures;
    if ((err = o->st->ops->report->points(o->st, &q, f))) return people_storage(o->st, err, e);
    out->minor_per_point = o->program ? kp_program_minor_per_point(o->program, cur) : 0;
    if (__builtin_mul_overflow(f->outstanding, out->minor_per_point, &out->liability_minor) ||
        __builtin_mul_overflow(f->burnt, out->minor_per_point, &out->cost_minor))
        return kp_error_set(e, KP_ERR_OVERFLOW, "",
                            "a sum of the points report does not fit in 64 bits");
    int64_t settled;
    if (__builtin_add_overflow(f->expired, f->burnt, &settled))
        return kp_error_set(e, KP_ERR_OVERFLOW, "",
                            "a sum of the points report does not fit in 64 bits");
    out->breakage_bp = share_bp(f->expired, settled);
    out->redemption_bp = share_bp(f->burnt, f->issued);
    out->cost_share_bp = share_bp(out->cost_minor, f->members_revenue_minor);
    if (__builtin_add_overflow(f->members_revenue_minor, f->nonmembers_revenue_minor,
                               &out->total_revenue_minor))
        return kp_error_set(e, KP_ERR_OVERFLOW, "",
                            "a sum of the points report does not fit in 64 bits");
    out->cost_share_total_bp = share_bp(out->cost_minor, out->total_revenue_minor);
    out->cost_per_retained_minor =
        f->retained > 0 && out->cost_minor >= 0
            ? (int64_t)(((__int128)out->cost_minor + f->retained / 2) / f->retained)
            : 0;
    return KP_OK;
}

/* num / den rounded half up, 0 when den <= 0 or num < 0. */
static int64_t div_half_up(int64_t num, int64_t den)
{
    if (den <= 0 || num < 0) return 0;
    return (int64_t)(((__int128)num + den / 2) / den);
}

kp_err kp_members_report_read(kp_office *o, const char *from, const char *to, const char *store,
                              const char *tier, kp_members_report *out, kp_error *e)
{
    memset(out, 0, sizeof *out);
    kp_err err = kp_report_period_read(o, from, to, store, &out->period, e);
    if (err) return err;
    if (tier && strlen(tier) >= KP_STR_MAX)
        return kp_error_set(e, KP_ERR_INVALID, "tier",
                            "must be a tier's name of at most %d bytes", KP_STR_MAX - 1);
    snprintf(out->tier, sizeof out->tier, "%s", tier ? tier : "");
    /* "The last 12 months": from the same day a year before the day after
     * `to`, as the dashboard's active members. */
    kp_time since_day = kp_time_add_months(out->period.end_day, -12);
    int y, m, d;
    kp_time_to_civil(since_day, &y, &m, &d);
    snprintf(out->recent_since, sizeof out->recent_since, "%04d-%02d-%02d", y, m, d);
    kp_report_members_query q = {
        .period =
            {
                .from = out->period.from_at,
                .to = out->period.to_at,
                .utc_offset_minutes = out->period.utc_offset_minutes,
                .store = out->period.store,
            },
        .tier = out->tier,
        .recent_since = since_day - (kp_time)out->period.utc_offset_minutes * 60,
    };
    kp_report_members *f = &out->figures;
    if ((err = o->st->ops->report->members(o->st, &q, f))) return people_storage(o->st, err, e);
    if (__builtin_add_overflow(f->member_revenue_minor, f->nonmember_revenue_minor,
                               &out->total_revenue_minor) ||
        __builtin_add_overflow(f->member_receipts, f->nonmember_receipts, &out->total_receipts))
        return kp_error_set(e, KP_ERR_OVERFLOW, "",
                            "a sum of the members report does not fit in 64 bits");
    out->member_average_minor = div_half_up(f->member_revenue_minor, f->member_receipts);
    out->nonmember_average_minor = div_half_up(f->nonmember_revenue_minor, f->nonmember_receipts);
    /* (mrev / mcnt) / (nrev / ncnt) = mrev * ncnt / (mcnt * nrev), exact. */
    __int128 num = (__int128)f->member_revenue_minor * f->nonmember_receipts * 10000,
             den = (__int128)f->member_receipts * f->nonmember_revenue_minor;
    if (den > 0 && num >= 0) {
        __int128 v = (num + den / 2) / den;
        out->average_ratio_bp = v > INT32_MAX ? INT32_MAX : (int32_t)v;
    }
    out->top_share_bp = share_bp(f->top_revenue_minor, f->followed_revenue_minor);
    out->followed_receipts_bp = share_bp(f->followed_receipts, f->nonmember_receipts);
    out->followed_revenue_bp = share_bp(f->followed_revenue_minor, f->nonmember_revenue_minor);
    out->idle_share_bp = share_bp(f->idle_members, f->members);
    out->idle_revenue_bp = share_bp(f->idle_revenue_minor, f->member_revenue_minor);
    out->recent_share_bp = share_bp(f->members_recent, f->members_before);
    return KP_OK;
}

/* ---- the customers report */

/* What the members' stream fills: the RFM set, and the first failure's
 * sentence. */
typedef struct customers_ctx {
    kp_rfm_set set;
    kp_time to;
    char why[160];
    /* When kept (kp_rfm_accounts): each member's account, in set order. */
    bool keep_accounts;
    int64_t *accounts;
    size_t cap_accounts;
} customers_ctx;

static kp_err customers_member(void *ctx, const kp_report_member *m)
{
    customers_ctx *c = ctx;
    int64_t days = m->last_at < c->to ? (c->to - m->last_at) / KP_DAY_SECONDS : 0;
    kp_rfm_member r = {
        .monetary = m->spend_minor,
        .frequency = m->receipts > INT32_MAX ? INT32_MAX : (int32_t)m->receipts,
        .recency_days = days > INT32_MAX ? INT32_MAX : (int32_t)days,
    };
    kp_err err = kp_rfm_set_add(&c->set, r);
    if (err == KP_OK && c->keep_accounts) {
        if (c->set.n > c->cap_accounts) {
            size_t cap = c->set.cap;
            int64_t *grown = realloc(c->accounts, cap * sizeof *grown);
            if (grown == NULL) {
                c->set.n--;
                err = KP_ERR_NOMEM;
            } else {
                c->accounts = grown;
                c->cap_accounts = cap;
            }
        }
        if (err == KP_OK) c->accounts[c->set.n - 1] = m->account_id;
    }
    if (err == KP_ERR_LIMIT)
        snprintf(c->why, sizeof c->why,
                 "more than %zu members bought in the period, the most RFM scores at once "
                 "(16 bytes a member): ask for a shorter period, one store or one tier",
                 c->set.limit ? c->set.limit : (size_t)KP_RFM_MEMBERS_DEFAULT_LIMIT);
    else if (err == KP_ERR_NOMEM)
        snprintf(c->why, sizeof c->why, "out of memory scoring %zu members", c->set.n);
    return err;
}

/* The window in months from its text: 1..KP_CUSTOMERS_WINDOW_MAX. */
static kp_err window_arg(const char *text, int *months, kp_error *e)
{
    *months = KP_CUSTOMERS_WINDOW_DEFAULT;
    if (text == NULL || text[0] == '\0') return KP_OK;
    int v = 0;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9' || v > KP_CUSTOMERS_WINDOW_MAX)
            return kp_error_set(e, KP_ERR_INVALID, "window",
                                "must be a whole number of months from 1 to %d, got %.20s",
                                KP_CUSTOMERS_WINDOW_MAX, text);
        v = v * 10 + (*p - '0');
    }
    if (v < 1 || v > KP_CUSTOMERS_WINDOW_MAX)
        return kp_error_set(e, KP_ERR_INVALID, "window",
                            "must be a whole number of months from 1 to %d, got %.20s",
                            KP_CUSTOMERS_WINDOW_MAX, text);
    *months = v;
    return KP_OK;
}

/* The tier's index in the running program, -1 for none or unknown. */
static int tier_rank(const kp_program *p, const char *name)
{
    int at = -1;
    if (p && name && name[0] && kp_program_tier(p, name, &at) == NULL) at = -2;
    return at;
}

static kp_err customers_tier_arg(const kp_program *p, const char *tier, kp_error *e)
{
    if (tier == NULL || tier[0] == '\0') return KP_OK;
    if (p && kp_program_tier(p, tier, NULL)) return KP_OK;
    char names[KP_TIERS_MAX * (KP_TIER_NAME_MAX + 2)] = "";
    size_t len = 0;
    for (size_t i = 0; p && i < p->n_tiers && len < sizeof names; i++)
        len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", i ? ", " : "",
                                p->tiers[i].name);
    if (names[0] == '\0')
        return kp_error_set(e, KP_ERR_INVALID, "tier",
                            "the running program has no tiers: leave tier out");
    return kp_error_set(e, KP_ERR_INVALID, "tier",
                        "must be one of the running program's tiers (%s), got %.40s", names, tier);
}

static bool sum_into(int64_t *to, int64_t v) { return !__builtin_add_overflow(*to, v, to); }

kp_err kp_customers_report_read(kp_office *o, const char *from, const char *to, const char *store,
                                const char *tier, const char *window, kp_customers_report *out,
                                kp_error *e)
{
    memset(out, 0, sizeof *out);
    kp_err err = kp_report_period_read(o, from, to, store, &out->period, e);
    if (err) return err;
    if ((err = window_arg(window, &out->window_months, e))) return err;
    if (tier && strlen(tier) >= KP_TIER_NAME_MAX)
        return kp_error_set(e, KP_ERR_INVALID, "tier", "must be a tier's name of at most %d bytes",
                            KP_TIER_NAME_MAX - 1);
    if ((err = customers_tier_arg(o->program, tier, e))) return err;
    snprintf(out->tier, sizeof out->tier, "%s", tier ? tier : "");
    kp_customers_query q = {
        .period =
            {
                .from = out->period.from_at,
                .to = out->period.to_at,
                .utc_offset_minutes = out->period.utc_offset_minutes,
                .store = out->period.store,
            },
        .tier = out->tier,
        .window = out->window_months * KP_CUSTOMERS_MONTH_SECONDS,
    };
    customers_ctx *c = calloc(1, sizeof *c);
    if (c == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    c->to = out->period.to_at;
    kp_report_customers *f = &out->figures;
    err = o->st->ops->report->customers(o->st, &q, f, customers_member, c);
    if (err) {
        if (c->why[0]) kp_error_set(e, err, err == KP_ERR_LIMIT ? "from" : "", "%s", c->why);
        else people_storage(o->st, err, e);
        kp_rfm_set_release(&c->set);
        free(c);
        return err;
    }
    /* Months of the cohorts. */
    int y, m, d;
    kp_time_to_civil(out->period.from_day, &y, &m, &d);
    for (size_t i = 0; i < f->n_months; i++) {
        int my, mm, md;
        kp_time_to_civil(kp_time_add_months(kp_time_from_civil(y, m, 1), (int)i), &my, &mm, &md);
        snprintf(out->months[i], sizeof out->months[i], "%04d-%02d", my, mm);
    }
    /* Moves up and down by the program's order. */
    for (size_t i = 0; i < f->n_moves; i++) {
        int a = tier_rank(o->program, f->moves[i].from), b = tier_rank(o->program, f->moves[i].to);
        int8_t dir = a < -1 || b < -1 || a == b ? 0 : b > a ? 1 : -1;
        out->move_direction[i] = dir;
        if (dir > 0) out->moves_up += f->moves[i].moves;
        if (dir < 0) out->moves_down += f->moves[i].moves;
    }
    /* RFM: cut, then score every member once. */
    kp_rfm_cut(&c->set, &out->cutoffs);
    bool ok = true;
    for (size_t i = 0; ok && i < c->set.n; i++) {
        const kp_rfm_member *mb = &c->set.members[i];
        kp_rfm_score s = kp_rfm_score_of(&out->cutoffs, mb);
        kp_customers_segment *g = &out->segments[kp_rfm_segment_of(s.r, s.f)];
        out->grid[s.r - 1][s.f - 1]++;
        g->members++;
        ok = sum_into(&g->revenue_minor, mb->monetary) && sum_into(&g->recency_days, mb->recency_days) &&
             sum_into(&g->receipts, mb->frequency);
    }
    kp_rfm_set_release(&c->set);
    free(c);
    if (!ok)
        return kp_error_set(e, KP_ERR_OVERFLOW, "",
                            "a sum of the customers report does not fit in 64 bits");
    return KP_OK;
}

/* ---- RFM classes for segments (marketing.c's `rfm` criterion) */

static int cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

kp_err kp_rfm_accounts(kp_office *o, int64_t days, uint32_t mask, int64_t **accounts, size_t *n,
                       kp_error *e)
{
    *accounts = NULL;
    *n = 0;
    /* The customers report's period: `days` whole days on the program's
     * clock that end with today (kp_report_period_read's arithmetic). */
    int32_t offset_minutes = o->program ? o->program->utc_offset_minutes : 0;
    int64_t offset = (int64_t)offset_minutes * 60;
    int ty, tm, td;
    kp_time_to_civil(o->now + offset, &ty, &tm, &td);
    kp_time end_day = kp_time_from_civil(ty, tm, td) + KP_DAY_SECONDS;
    kp_customers_query q = {
        .period =
            {
                .from = end_day - days * KP_DAY_SECONDS - offset,
                .to = end_day - offset,
                .utc_offset_minutes = offset_minutes,
                .store = "",
            },
        .tier = "",
        .window = KP_CUSTOMERS_WINDOW_DEFAULT * KP_CUSTOMERS_MONTH_SECONDS,
    };
    customers_ctx *c = calloc(1, sizeof *c);
    kp_report_customers *f = calloc(1, sizeof *f);
    if (c == NULL || f == NULL) {
        free(c);
        free(f);
        return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    }
    c->to = q.period.to;
    c->keep_accounts = true;
    kp_err err = o->st->ops->report->customers(o->st, &q, f, customers_member, c);
    free(f);
    if (err) {
        if (c->why[0]) kp_error_set(e, err, err == KP_ERR_LIMIT ? "filter.rfm.period_days" : "", "%s", c->why);
        else people_storage(o->st, err, e);
    }
    /* The cut reorders its set: cut a copy, score the members in order. */
    kp_rfm_set copy = {0};
    if (err == KP_OK && c->set.n) {
        copy.members = malloc(c->set.n * sizeof *copy.members);
        if (copy.members == NULL) err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
        else {
            memcpy(copy.members, c->set.members, c->set.n * sizeof *copy.members);
            copy.n = copy.cap = c->set.n;
        }
    }
    if (err == KP_OK) {
        kp_rfm_cutoffs cut;
        kp_rfm_cut(&copy, &cut);
        size_t kept = 0;
        for (size_t i = 0; i < c->set.n; i++) {
            kp_rfm_score sc = kp_rfm_score_of(&cut, &c->set.members[i]);
            if (c->accounts[i] > 0 && (mask & (1u << kp_rfm_segment_of(sc.r, sc.f))))
                c->accounts[kept++] = c->accounts[i];
        }
        qsort(c->accounts, kept, sizeof *c->accounts, cmp_id);
        *accounts = c->accounts;
        *n = kept;
        c->accounts = NULL;
    }
    kp_rfm_set_release(&copy);
    kp_rfm_set_release(&c->set);
    free(c->accounts);
    free(c);
    return err;
}
