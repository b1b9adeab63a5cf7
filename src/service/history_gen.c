/*
 * history_gen.c: the synthetic sales history of `kopilka history generate`
 * (history_gen.h; docs/analytics.md "## Synthetic history").
 *
 * How the figures hold by construction: every customer first gets a class
 * (member idle / regular, recent or not; non-member top or rest) by exact
 * selection (k of n, each subset equally likely) and a number of receipts.
 * The receipts' count fixes each group's revenue (members' average receipt
 * = 2.6 x the non-members' 2500.00), the revenue is shared between the
 * classes in the seeds' proportions, within a class between customers, and
 * within a customer between receipts, by bounded random weights with
 * cumulative rounding (sums exact to the cent). The bounds keep the classes
 * apart: every top non-member spends more than every other one, and every
 * idle member's one receipt is below the members' average receipt. Dates
 * follow month and weekday seasonality; a recent member has a receipt in
 * the last 12 months, another none there. Returns (of the first line of an
 * earlier receipt, 1 to 14 days later) do not touch the figures, which are
 * measured on sales.
 *
 * Randomness: xoshiro256** seeded through splitmix64; doubles from the top
 * 53 bits; no libm, so the bytes depend only on the seed and the options.
 */
#include "service/history_gen.h"

#include <kopilka/clock.h>

#include <stdlib.h>
#include <string.h>

/* ---- the generator */

typedef struct rng {
    uint64_t s[4];
} rng;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void rng_seed(rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* [0, 1) */
static double rng_unit(rng *r)
{
    return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* [lo, hi) */
static double rng_range(rng *r, double lo, double hi)
{
    return lo + (hi - lo) * rng_unit(r);
}

/* 0..n-1 (n >= 1; the tiny bias of the modulo does not matter here) */
static int64_t rng_below(rng *r, int64_t n)
{
    return (int64_t)(rng_next(r) % (uint64_t)n);
}

static int64_t round_pos(double x)
{
    return (int64_t)(x + 0.5);
}

/* ---- dates: days since 1970-01-01 (clock.h's civil conversions) */

static int64_t days_from_civil(int y, int m, int d)
{
    return (int64_t)kp_time_from_civil(y, m, d) / 86400;
}

static void civil_from_days(int64_t day, int *y, int *m, int *d)
{
    kp_time_to_civil((kp_time)(day * 86400), y, m, d);
}

/* Whether y-m-d is a date of the calendar. */
static bool real_date(int y, int m, int d)
{
    int yy, mm, dd;
    if (m < 1 || m > 12 || d < 1 || d > 31) return false;
    civil_from_days(days_from_civil(y, m, d), &yy, &mm, &dd);
    return yy == y && mm == m && dd == d;
}

/* The day `months` after y-m-d (the day clamped to the month's end). */
static int64_t add_months(int y, int m, int d, int months)
{
    int64_t k = (int64_t)y * 12 + (m - 1) + months;
    return days_from_civil((int)(k / 12), (int)(k % 12) + 1, d);
}

/* Seasonality of an auto service: tyre changes in April and October to
 * November, a slow January to February; Saturdays busy, Sundays quiet. */
static const double MONTH_WEIGHT[12] = {0.75, 0.8, 1.0, 1.45, 1.15, 1.0,
                                        0.9,  0.9, 1.0, 1.45, 1.3,  1.0};
static const double WEEKDAY_WEIGHT[7] = {1.0, 1.0, 1.0, 1.05, 1.15, 1.3, 0.6}; /* Mon..Sun */
#define SEASON_MAX (1.45 * 1.3)

static int weekday(int64_t day) /* 0 = Monday */
{
    int64_t w = (day + 3) % 7; /* 1970-01-01 was a Thursday */
    return (int)(w < 0 ? w + 7 : w);
}

/* A day in [from, to) drawn by the seasonality; a time of day 08:00-20:59. */
static int64_t draw_time(rng *r, int64_t from, int64_t to)
{
    int64_t day = from;
    for (int tries = 0; tries < 64; tries++) {
        day = from + rng_below(r, to - from);
        int y, m, d;
        civil_from_days(day, &y, &m, &d);
        double w = MONTH_WEIGHT[m - 1] * WEEKDAY_WEIGHT[weekday(day)];
        if (rng_unit(r) * SEASON_MAX < w) break;
    }
    return day * 86400 + 8 * 3600 + rng_below(r, 13 * 3600);
}

/* ---- customers and receipts */

enum { CLASS_IDLE = 1, CLASS_REGULAR, CLASS_TOP, CLASS_REST };

typedef struct customer {
    int64_t spend;   /* cents */
    int64_t last_at; /* the last sale's time, seconds */
    int32_t n;       /* receipts */
    int16_t home;    /* home store, 0-based */
    uint8_t cls;
    uint8_t recent;
} customer;

typedef struct receipt {
    int64_t at;       /* seconds since 1970-01-01, in the program's time zone */
    int64_t sold_at;  /* the sale's time (a return's lines are the sale's) */
    int64_t amount;   /* the sale's total, cents (a return's: the sale's) */
    uint64_t lines;   /* the seed of its lines */
    uint32_t cust;    /* index: members first */
    uint16_t k;       /* the customer's k-th receipt, 1-based */
    uint16_t store;   /* 0-based */
    uint8_t is_return;
} receipt;

#define NON_MEMBER_AVERAGE 250000.0 /* cents */

void kp_history_defaults(kp_history_params *p)
{
    memset(p, 0, sizeof *p);
    p->seed = 1;
    p->members = 2000;
    p->non_members = 8000;
    p->months = 24;
    p->start_year = 2024;
    p->start_month = 1;
    p->start_day = 1;
    p->stores = 3;
    p->returns = 0.02;
}

kp_err kp_history_check(const kp_history_params *p, kp_error *e)
{
    if (p->members < 10 || p->members > KP_HISTORY_MEMBERS_MAX)
        return kp_error_set(e, KP_ERR_INVALID, "--members",
                            "--members is %lld: it is a whole number from 10 to %d",
                            (long long)p->members, KP_HISTORY_MEMBERS_MAX);
    if (p->non_members < 10 || p->non_members > KP_HISTORY_NON_MEMBERS_MAX)
        return kp_error_set(e, KP_ERR_INVALID, "--non-members",
                            "--non-members is %lld: it is a whole number from 10 to %d",
                            (long long)p->non_members, KP_HISTORY_NON_MEMBERS_MAX);
    if (p->months < 13 || p->months > KP_HISTORY_MONTHS_MAX)
        return kp_error_set(e, KP_ERR_INVALID, "--months",
                            "--months is %d: it is from 13 (the last 12 months and one "
                            "before them) to %d",
                            p->months, KP_HISTORY_MONTHS_MAX);
    if (p->start_year < 1971 || p->start_year > 9000 ||
        !real_date(p->start_year, p->start_month, p->start_day))
        return kp_error_set(e, KP_ERR_INVALID, "--start",
                            "--start is not a date: it is YYYY-MM-DD, from 1971 to 9000");
    if (p->stores < 1 || p->stores > KP_HISTORY_STORES_MAX)
        return kp_error_set(e, KP_ERR_INVALID, "--stores",
                            "--stores is %d: it is a whole number from 1 to %d", p->stores,
                            KP_HISTORY_STORES_MAX);
    if (!(p->returns >= 0 && p->returns <= 0.5))
        return kp_error_set(e, KP_ERR_INVALID, "--returns",
                            "--returns is a share of the receipts from 0 to 0.5 (0.02 = 2 %%)");
    return KP_OK;
}

/* Marks exactly k of the n customers [first, first+n) with cls (or, when
 * recent, their recent flag); every subset of k equally likely. */
static void select_exact(rng *r, customer *c, int64_t n, int64_t k, int cls, bool recent)
{
    for (int64_t i = 0; i < n; i++) {
        bool take = rng_below(r, n - i) < k;
        if (take) k--;
        if (recent)
            c[i].recent = take;
        else
            c[i].cls = (uint8_t)(take ? cls : 0);
    }
}

/* Shares `total` cents among the customers of class cls in [c, c+n) by
 * weights uniform in [lo, hi) times w_per_receipt ? n : 1. */
static void share_spend(rng *r, customer *c, int64_t n, int cls, double total, double lo,
                        double hi, bool per_receipt, double *scratch)
{
    double sum = 0;
    for (int64_t i = 0; i < n; i++) {
        scratch[i] = 0;
        if (c[i].cls != cls) continue;
        scratch[i] = rng_range(r, lo, hi) * (per_receipt ? c[i].n : 1);
        sum += scratch[i];
    }
    double cum = 0;
    int64_t given = 0;
    for (int64_t i = 0; i < n; i++) {
        if (c[i].cls != cls) continue;
        cum += scratch[i];
        int64_t upto = round_pos(total * (cum / sum));
        c[i].spend = upto - given;
        given = upto;
    }
}

typedef struct gen {
    const kp_history_params *p;
    rng r;
    customer *c;
    int64_t n_cust;
    receipt *rc;
    int64_t n_rc;
    int64_t start_day, cutoff_day, end_day;
} gen;

/* The customer's receipts: its spend split by weights in [0.5, 1.5). */
static void make_receipts(gen *g, uint32_t ci)
{
    customer *c = &g->c[ci];
    double w[64], sum = 0;
    int n = c->n;
    for (int k = 0; k < n; k++) sum += (w[k] = rng_range(&g->r, 0.5, 1.5));
    double cum = 0;
    int64_t given = 0;
    bool member = ci < (uint32_t)g->p->members;
    int64_t last = 0;
    for (int k = 0; k < n; k++) {
        receipt *x = &g->rc[g->n_rc++];
        cum += w[k];
        int64_t upto = k == n - 1 ? c->spend : round_pos((double)c->spend * (cum / sum));
        x->amount = upto - given;
        given = upto;
        x->cust = ci;
        x->k = (uint16_t)(k + 1);
        x->is_return = 0;
        x->lines = rng_next(&g->r);
        x->store = (uint16_t)(rng_unit(&g->r) < 0.8 ? c->home : rng_below(&g->r, g->p->stores));
        int64_t from = g->start_day, to = g->end_day;
        if (member && !c->recent) to = g->cutoff_day;
        if (member && c->recent && k == n - 1 && last < g->cutoff_day * 86400)
            from = g->cutoff_day; /* the last one in the last 12 months */
        x->at = x->sold_at = draw_time(&g->r, from, to);
        if (x->at > last) last = x->at;
    }
    c->last_at = last;
}

static int receipt_order(const void *a, const void *b)
{
    const receipt *x = a, *y = b;
    if (x->at != y->at) return x->at < y->at ? -1 : 1;
    if (x->cust != y->cust) return x->cust < y->cust ? -1 : 1;
    if (x->k != y->k) return x->k < y->k ? -1 : 1;
    return (int)x->is_return - (int)y->is_return;
}

static int spend_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x > y ? -1 : x < y;
}

/* ---- lines */

static const char *const CATEGORY[5] = {"labor", "parts", "oil", "tires", "wash"};
static const double CATEGORY_WEIGHT[5] = {0.35, 0.30, 0.12, 0.10, 0.13};

static int draw_category(rng *r, int month)
{
    double w[5], sum = 0;
    for (int i = 0; i < 5; i++) {
        w[i] = CATEGORY_WEIGHT[i];
        if (i == 3 && (month == 4 || month == 10 || month == 11)) w[i] *= 4; /* tyre season */
        if (i == 4 && (month <= 3 || month == 12)) w[i] *= 1.5;            /* winter salt */
        sum += w[i];
    }
    double u = rng_unit(r) * sum;
    for (int i = 0; i < 4; i++) {
        if (u < w[i]) return i;
        u -= w[i];
    }
    return 4;
}

typedef struct line {
    int category;
    int sku;
    int qty;
    int64_t amount;
} line;

/* The lines of receipt x (1 to 5, more for a bigger receipt); the same
 * every time (they come from x->lines). */
static int make_lines(const receipt *x, line out[5])
{
    rng r;
    rng_seed(&r, x->lines);
    double size = (double)x->amount / NON_MEMBER_AVERAGE;
    int n = 1 + (int)(rng_unit(&r) * (size > 4 ? 5 : 1 + size));
    if (n > 5) n = 5;
    int y, m, d;
    civil_from_days(x->sold_at / 86400, &y, &m, &d);
    double w[5], sum = 0;
    for (int i = 0; i < n; i++) {
        out[i].category = draw_category(&r, m);
        out[i].sku = 1 + (int)rng_below(&r, 120);
        out[i].qty = out[i].category == 1 || out[i].category == 2 ? 1 + (int)rng_below(&r, 4) : 1;
        sum += (w[i] = rng_range(&r, 0.3, 1.7));
    }
    double cum = 0;
    int64_t given = 0;
    for (int i = 0; i < n; i++) {
        cum += w[i];
        int64_t upto = i == n - 1 ? x->amount : round_pos((double)x->amount * (cum / sum));
        out[i].amount = upto - given;
        given = upto;
    }
    return n;
}

/* Writes the rows of x; returns how many. */
static int write_receipt(FILE *f, const gen *g, const receipt *x)
{
    line ln[5];
    int n = make_lines(x, ln);
    if (x->is_return) n = 1; /* a return gives back the first line */
    int y, m, d;
    int64_t day = x->at / 86400, s = x->at % 86400;
    civil_from_days(day, &y, &m, &d);
    bool member = x->cust < (uint32_t)g->p->members;
    long long id = member ? (long long)x->cust + 1 : (long long)(x->cust - g->p->members) + 1;
    char card[32] = "";
    if (member) snprintf(card, sizeof card, "HG-%08lld", id);
    for (int i = 0; i < n; i++)
        fprintf(f, "%04d-%02d-%02d %02d:%02d:%02d,store-%d,%c%08lld-%d,%s,%s,%s-%03d,%s,"
                   "%lld.%02lld,%d,%c%08lld\n",
                y, m, d, (int)(s / 3600), (int)(s / 60 % 60), (int)(s % 60), x->store + 1,
                member ? 'C' : 'N', id, x->k, card,
                x->is_return ? "return" : "sale", CATEGORY[ln[i].category], ln[i].sku,
                CATEGORY[ln[i].category], (long long)(ln[i].amount / 100),
                (long long)(ln[i].amount % 100), ln[i].qty, member ? 'C' : 'N', id);
    return n;
}

/* ---- the whole */

static void measure(const gen *g, kp_history_stats *st, int64_t *scratch)
{
    const kp_history_params *p = g->p;
    int64_t m_rev = 0, m_cnt = 0, n_rev = 0, n_cnt = 0;
    for (int64_t i = 0; i < g->n_cust; i++) {
        if (i < p->members) {
            m_rev += g->c[i].spend;
            m_cnt += g->c[i].n;
        } else {
            n_rev += g->c[i].spend;
            n_cnt += g->c[i].n;
        }
    }
    double m_avg = (double)m_rev / (double)m_cnt, n_avg = (double)n_rev / (double)n_cnt;
    st->member_ratio = m_avg / n_avg;
    int64_t idle = 0, idle_rev = 0, recent = 0;
    for (int64_t i = 0; i < p->members; i++) {
        const customer *c = &g->c[i];
        if (c->n == 1 && (double)c->spend <= m_avg) {
            idle++;
            idle_rev += c->spend;
        }
        if (c->last_at >= g->cutoff_day * 86400) recent++;
    }
    st->idle_share = (double)idle / (double)p->members;
    st->idle_revenue = (double)idle_rev / (double)m_rev;
    st->recent_share = (double)recent / (double)p->members;
    for (int64_t i = 0; i < p->non_members; i++) scratch[i] = g->c[p->members + i].spend;
    qsort(scratch, (size_t)p->non_members, sizeof *scratch, spend_desc);
    int64_t top = round_pos((double)p->non_members * KP_HISTORY_TOP_SHARE), top_rev = 0;
    for (int64_t i = 0; i < top; i++) top_rev += scratch[i];
    st->top_revenue = (double)top_rev / (double)n_rev;
}

kp_err kp_history_generate(const kp_history_params *p, FILE *sales, FILE *cards,
                           kp_history_progress_fn progress, void *progress_ctx,
                           kp_history_stats *stats, kp_error *e)
{
    kp_err err = kp_history_check(p, e);
    if (err != KP_OK) return err;
    memset(stats, 0, sizeof *stats);
    gen g = {.p = p};
    rng_seed(&g.r, p->seed);
    g.start_day = days_from_civil(p->start_year, p->start_month, p->start_day);
    g.end_day = add_months(p->start_year, p->start_month, p->start_day, p->months);
    g.cutoff_day = add_months(p->start_year, p->start_month, p->start_day, p->months - 12);
    g.n_cust = p->members + p->non_members;
    g.c = calloc((size_t)g.n_cust, sizeof *g.c);
    double *weights = malloc((size_t)g.n_cust * sizeof *weights);
    if (g.c == NULL || weights == NULL) {
        free(g.c);
        free(weights);
        return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory for %lld customers",
                            (long long)g.n_cust);
    }
    customer *mem = g.c, *non = g.c + p->members;
    int64_t n_members = p->members, n_non = p->non_members;

    /* classes and receipt counts */
    select_exact(&g.r, mem, n_members, round_pos((double)n_members * KP_HISTORY_IDLE_SHARE),
                 CLASS_IDLE, false);
    select_exact(&g.r, mem, n_members, round_pos((double)n_members * KP_HISTORY_RECENT_SHARE), 0,
                 true);
    select_exact(&g.r, non, n_non, round_pos((double)n_non * KP_HISTORY_TOP_SHARE), CLASS_TOP,
                 false);
    int64_t m_cnt = 0, n_cnt = 0;
    for (int64_t i = 0; i < g.n_cust; i++) {
        customer *c = &g.c[i];
        bool member = i < n_members;
        if (c->cls == 0) c->cls = member ? CLASS_REGULAR : CLASS_REST;
        switch (c->cls) {
        case CLASS_IDLE: c->n = 1; break;
        case CLASS_REGULAR: c->n = 2 + (int32_t)rng_below(&g.r, 5); break; /* 2..6 */
        case CLASS_TOP: c->n = 2 + (int32_t)rng_below(&g.r, 5); break;     /* 2..6 */
        default: c->n = 1 + (int32_t)rng_below(&g.r, 3); break;            /* 1..3 */
        }
        c->home = (int16_t)rng_below(&g.r, p->stores);
        if (member)
            m_cnt += c->n;
        else
            n_cnt += c->n;
    }

    /* revenue: by group, class, customer */
    double m_total = NON_MEMBER_AVERAGE * KP_HISTORY_MEMBER_RATIO * (double)m_cnt;
    double n_total = NON_MEMBER_AVERAGE * (double)n_cnt;
    share_spend(&g.r, mem, n_members, CLASS_IDLE, m_total * KP_HISTORY_IDLE_REVENUE, 0.6, 1.4,
                false, weights);
    share_spend(&g.r, mem, n_members, CLASS_REGULAR, m_total * (1 - KP_HISTORY_IDLE_REVENUE), 0.4,
                1.6, true, weights);
    share_spend(&g.r, non, n_non, CLASS_TOP, n_total * KP_HISTORY_TOP_REVENUE, 0.7, 1.3, false,
                weights);
    share_spend(&g.r, non, n_non, CLASS_REST, n_total * (1 - KP_HISTORY_TOP_REVENUE), 0.4, 1.6,
                false, weights);

    /* receipts, returns */
    int64_t n_sales = m_cnt + n_cnt;
    int64_t n_returns = round_pos((double)n_sales * p->returns);
    g.rc = malloc((size_t)(n_sales + n_returns) * sizeof *g.rc);
    if (g.rc == NULL) {
        free(g.c);
        free(weights);
        return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory for %lld receipts",
                            (long long)n_sales);
    }
    for (int64_t i = 0; i < g.n_cust; i++) make_receipts(&g, (uint32_t)i);
    int64_t want = n_returns, end_s = g.end_day * 86400;
    for (int64_t i = 0; i < n_sales && want > 0; i++) {
        bool take = rng_below(&g.r, n_sales - i) < want;
        if (!take) continue;
        want--;
        receipt *x = &g.rc[i];
        int64_t at = x->at + 86400 * (1 + rng_below(&g.r, 14)) + rng_below(&g.r, 4 * 3600);
        if (at >= end_s) at = end_s - 1;
        if (at <= x->at) continue; /* sold in the history's last second */
        receipt *ret = &g.rc[g.n_rc++];
        *ret = *x;
        ret->at = at;
        ret->is_return = 1;
    }
    qsort(g.rc, (size_t)g.n_rc, sizeof *g.rc, receipt_order);

    /* out */
    fputs("at,store,receipt,card,kind,sku,category,amount,qty,customer\n", sales);
    for (int64_t i = 0; i < g.n_rc; i++) {
        stats->rows += write_receipt(sales, &g, &g.rc[i]);
        if (progress && (i & 0xffff) == 0xffff) progress(progress_ctx, i + 1, g.n_rc);
    }
    if (progress) progress(progress_ctx, g.n_rc, g.n_rc);
    stats->receipts = n_sales;
    stats->returns = g.n_rc - n_sales;
    if (cards) {
        fputs("number,state\n", cards);
        for (int64_t i = 0; i < n_members; i++) fprintf(cards, "HG-%08lld,active\n", (long long)i + 1);
        stats->cards = n_members;
    }
    free(weights);
    int64_t *spends = malloc((size_t)n_non * sizeof *spends);
    if (spends == NULL) {
        free(g.c);
        free(g.rc);
        return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory for the figures");
    }
    measure(&g, stats, spends);
    free(spends);
    free(g.c);
    free(g.rc);
    if (ferror(sales) || (cards && ferror(cards)))
        return kp_error_set(e, KP_ERR_IO, "--out", "writing the CSV failed");
    return KP_OK;
}
