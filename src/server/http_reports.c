/*
 * http_reports.c: the back office's reports (docs/api.md "Reports",
 * docs/analytics.md "Reports"): each read on a reader in one snapshot,
 * never the writer, answered as JSON or, with format=csv, as CSV of one
 * figure a row (the points and customers reports: figure,kind,month,value
 * and figure,key,sub,value; the members report: figure,value). One
 * function a route, in the table at the end; http_people.c authenticates
 * and dispatches.
 */
#include "http_people.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The answer's form from `format`: false with *e set for another word. */
static bool wants_csv(const char *format, bool *csv, kp_error *e)
{
    *csv = format && strcmp(format, "csv") == 0;
    if (format == NULL || format[0] == '\0' || *csv || strcmp(format, "json") == 0) return true;
    kp_error_set(e, KP_ERR_INVALID, "format", "must be json or csv, got %.40s", format);
    return false;
}

/* A share in ten-thousandths as a decimal: 2500 -> 0.2500. */
static void put_share(kp_buf *out, int32_t bp)
{
    kp_buf_printf(out, "%d.%04d", (int)(bp / 10000), (int)(bp % 10000));
}

/* One CSV cell of text, always quoted, its quotes doubled. */
static void csv_text(kp_buf *out, const char *s)
{
    kp_buf_puts(out, "\"");
    for (const char *p = s; *p; p++) kp_buf_puts(out, *p == '"' ? "\"\"" : (char[]){*p, 0});
    kp_buf_puts(out, "\"");
}

/* A report's JSON opening: `{"from", "to", "store"` (null for every store). */
static void period_json(kp_buf *out, const kp_report_period *period)
{
    kp_buf_reset(out);
    kp_buf_puts(out, "{");
    kp_buf_json_kv_str(out, "from", period->from, false);
    kp_buf_json_kv_str(out, "to", period->to, true);
    if (period->store[0])
        kp_buf_json_kv_str(out, "store", period->store, true);
    else
        kp_buf_puts(out, ",\"store\":null");
}

/* ---- the points report */

static kp_err do_points(kp_office *o, const http_request *r, void *arg, kp_buf *out, bool *replayed,
                        kp_field_errors *fe, kp_error *e)
{
    kp_points_report *p = arg;
    return kp_points_report_read(o, kp_http_arg("from"), kp_http_arg("to"), kp_http_arg("store"),
                                 kp_http_arg("currency"), p, e);
}

static void points_json(kp_buf *out, const kp_points_report *p)
{
    const kp_report_points *f = &p->figures;
    period_json(out, &p->period);
    kp_buf_json_kv_str(out, "currency", p->currency, true);
    kp_buf_json_kv_i64(out, "issued", f->issued, true);
    kp_buf_json_kv_i64(out, "burnt", f->burnt, true);
    kp_buf_json_kv_i64(out, "expired", f->expired, true);
    kp_buf_json_kv_i64(out, "adjusted", f->adjusted, true);
    kp_buf_json_kv_i64(out, "outstanding", f->outstanding, true);
    kp_buf_json_kv_i64(out, "minor_per_point", p->minor_per_point, true);
    kp_buf_json_kv_i64(out, "liability_minor", p->liability_minor, true);
    kp_buf_puts(out, ",\"breakage_rate\":");
    put_share(out, p->breakage_bp);
    kp_buf_puts(out, ",\"redemption_rate\":");
    put_share(out, p->redemption_bp);
    kp_buf_json_kv_i64(out, "members_revenue_minor", f->members_revenue_minor, true);
    kp_buf_json_kv_i64(out, "cost_minor", p->cost_minor, true);
    kp_buf_puts(out, ",\"cost_share\":");
    put_share(out, p->cost_share_bp);
    kp_buf_json_kv_i64(out, "total_revenue_minor", p->total_revenue_minor, true);
    kp_buf_puts(out, ",\"cost_share_of_total\":");
    put_share(out, p->cost_share_total_bp);
    kp_buf_json_kv_i64(out, "buyers", f->buyers, true);
    kp_buf_json_kv_i64(out, "retained", f->retained, true);
    kp_buf_json_kv_i64(out, "cost_per_retained_minor", p->cost_per_retained_minor, true);
    kp_buf_puts(out, ",\"schedule\":[");
    for (size_t i = 0; i < f->n_schedule; i++) {
        const kp_report_schedule_row *row = &f->schedule[i];
        kp_buf_puts(out, i ? ",{" : "{");
        kp_buf_json_kv_str(out, "kind", row->kind, false);
        kp_buf_json_kv_str(out, "month", row->month, true);
        kp_buf_json_kv_i64(out, "points", row->points, true);
        kp_buf_json_kv_i64(out, "lots", row->lots, true);
        kp_buf_puts(out, "}");
    }
    kp_buf_puts(out, "]}");
}

static void csv_int(kp_buf *out, const char *figure, int64_t v)
{
    kp_buf_printf(out, "%s,,,%lld\r\n", figure, (long long)v);
}

static void csv_share(kp_buf *out, const char *figure, int32_t bp)
{
    kp_buf_printf(out, "%s,,,", figure);
    put_share(out, bp);
    kp_buf_puts(out, "\r\n");
}

static void points_csv(kp_buf *out, const kp_points_report *p)
{
    const kp_report_points *f = &p->figures;
    kp_buf_reset(out);
    kp_buf_puts(out, "figure,kind,month,value\r\n");
    csv_int(out, "issued", f->issued);
    csv_int(out, "burnt", f->burnt);
    csv_int(out, "expired", f->expired);
    csv_int(out, "adjusted", f->adjusted);
    csv_int(out, "outstanding", f->outstanding);
    csv_int(out, "minor_per_point", p->minor_per_point);
    csv_int(out, "liability_minor", p->liability_minor);
    csv_share(out, "breakage_rate", p->breakage_bp);
    csv_share(out, "redemption_rate", p->redemption_bp);
    csv_int(out, "members_revenue_minor", f->members_revenue_minor);
    csv_int(out, "cost_minor", p->cost_minor);
    csv_share(out, "cost_share", p->cost_share_bp);
    csv_int(out, "total_revenue_minor", p->total_revenue_minor);
    csv_share(out, "cost_share_of_total", p->cost_share_total_bp);
    csv_int(out, "buyers", f->buyers);
    csv_int(out, "retained", f->retained);
    csv_int(out, "cost_per_retained_minor", p->cost_per_retained_minor);
    for (size_t i = 0; i < f->n_schedule; i++) {
        kp_buf_puts(out, "schedule_points,");
        csv_text(out, f->schedule[i].kind);
        kp_buf_printf(out, ",%s,%lld\r\n", f->schedule[i].month, (long long)f->schedule[i].points);
    }
}

/* A report's route: its form from `format`, the report read by fn into a
 * zeroed `size` bytes on a reader (never the writer, whose groups the tills
 * wait for), then written as JSON or CSV. */
static unsigned report_route(const http_request *r, kp_http_answer *a, size_t size,
                             http_office_fn fn, void (*json)(kp_buf *, const void *),
                             void (*csv_form)(kp_buf *, const void *))
{
    kp_error e = {0};
    bool csv;
    if (!wants_csv(kp_http_arg("format"), &csv, &e)) return kp_http_error_answer(a->body, &e, NULL);
    void *p = calloc(1, size);
    if (p == NULL) {
        kp_error_set(&e, KP_ERR_NOMEM, "", "out of memory");
        return kp_http_error_answer(a->body, &e, NULL);
    }
    unsigned status = http_office_read(r, fn, p, a);
    if (status == 200) {
        if (csv) {
            csv_form(a->body, p);
            a->content_type = "text/csv; charset=utf-8";
        } else {
            json(a->body, p);
        }
    }
    free(p);
    return status;
}

static void points_json_any(kp_buf *out, const void *p) { points_json(out, p); }
static void points_csv_any(kp_buf *out, const void *p) { points_csv(out, p); }

static unsigned route_points(const http_request *r, kp_http_answer *a)
{
    return report_route(r, a, sizeof(kp_points_report), do_points, points_json_any,
                        points_csv_any);
}

/* ---- the members report */

static kp_err do_members(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                         bool *replayed, kp_field_errors *fe, kp_error *e)
{
    return kp_members_report_read(o, kp_http_arg("from"), kp_http_arg("to"), kp_http_arg("store"),
                                  kp_http_arg("tier"), arg, e);
}

/* The report's figures as (name, value, is a share) in one order, for the
 * JSON's flat part and the CSV alike. */
typedef struct members_figure {
    const char *name;
    int64_t v;
    bool share;
} members_figure;

static size_t members_figures(const kp_members_report *p, members_figure *fig)
{
    const kp_report_members *f = &p->figures;
    size_t n = 0;
#define FIG(nm, val, sh) fig[n++] = (members_figure){nm, (int64_t)(val), sh}
    FIG("average_receipt_ratio", p->average_ratio_bp, true);
    FIG("top_share", p->top_share_bp, true);
    FIG("idle_share", p->idle_share_bp, true);
    FIG("idle_revenue_share", p->idle_revenue_bp, true);
    FIG("recent_share", p->recent_share_bp, true);
    FIG("members", f->members, false);
    FIG("member_receipts", f->member_receipts, false);
    FIG("member_revenue_minor", f->member_revenue_minor, false);
    FIG("member_average_receipt_minor", p->member_average_minor, false);
    FIG("nonmember_receipts", f->nonmember_receipts, false);
    FIG("nonmember_revenue_minor", f->nonmember_revenue_minor, false);
    FIG("nonmember_average_receipt_minor", p->nonmember_average_minor, false);
    FIG("followed_receipts", f->followed_receipts, false);
    FIG("followed_revenue_minor", f->followed_revenue_minor, false);
    FIG("followed_customers", f->followed_customers, false);
    FIG("unfollowed_receipts", f->nonmember_receipts - f->followed_receipts, false);
    FIG("unfollowed_revenue_minor", f->nonmember_revenue_minor - f->followed_revenue_minor, false);
    FIG("followed_receipts_share", p->followed_receipts_bp, true);
    FIG("followed_revenue_share", p->followed_revenue_bp, true);
    FIG("top_customers", f->top_customers, false);
    FIG("top_revenue_minor", f->top_revenue_minor, false);
    FIG("top_threshold_minor", f->top_threshold_minor, false);
    FIG("idle_members", f->idle_members, false);
    FIG("idle_revenue_minor", f->idle_revenue_minor, false);
    FIG("members_before", f->members_before, false);
    FIG("members_recent", f->members_recent, false);
    FIG("total_receipts", p->total_receipts, false);
    FIG("total_revenue_minor", p->total_revenue_minor, false);
#undef FIG
    return n;
}

enum { MEMBERS_FIGURES_MAX = 32 };

static void members_json(kp_buf *out, const kp_members_report *p)
{
    period_json(out, &p->period);
    if (p->tier[0])
        kp_buf_json_kv_str(out, "tier", p->tier, true);
    else
        kp_buf_puts(out, ",\"tier\":null");
    kp_buf_json_kv_str(out, "recent_since", p->recent_since, true);
    kp_buf_puts(out, ",\"returns_subtracted\":false");
    members_figure fig[MEMBERS_FIGURES_MAX];
    size_t n = members_figures(p, fig);
    for (size_t i = 0; i < n; i++) {
        if (fig[i].share) {
            kp_buf_printf(out, ",\"%s\":", fig[i].name);
            put_share(out, (int32_t)fig[i].v);
        } else {
            kp_buf_json_kv_i64(out, fig[i].name, fig[i].v, true);
        }
    }
    kp_buf_puts(out, "}");
}

static void members_csv(kp_buf *out, const kp_members_report *p)
{
    kp_buf_reset(out);
    kp_buf_puts(out, "figure,value\r\n");
    members_figure fig[MEMBERS_FIGURES_MAX];
    size_t n = members_figures(p, fig);
    for (size_t i = 0; i < n; i++) {
        kp_buf_printf(out, "%s,", fig[i].name);
        if (fig[i].share)
            put_share(out, (int32_t)fig[i].v);
        else
            kp_buf_printf(out, "%lld", (long long)fig[i].v);
        kp_buf_puts(out, "\r\n");
    }
}

static void members_json_any(kp_buf *out, const void *p) { members_json(out, p); }
static void members_csv_any(kp_buf *out, const void *p) { members_csv(out, p); }

static unsigned route_members(const http_request *r, kp_http_answer *a)
{
    return report_route(r, a, sizeof(kp_members_report), do_members, members_json_any,
                        members_csv_any);
}

/* ---- the customers report */

/* num / den to two decimals, rounded half up: 1234 / 100 -> 12.34; 0 when
 * den <= 0. */
static void put_hundredths(kp_buf *out, int64_t num, int64_t den)
{
    if (den <= 0 || num < 0) {
        kp_buf_puts(out, "0");
        return;
    }
    __int128 v = ((__int128)num * 100 + den / 2) / den;
    kp_buf_printf(out, "%lld.%02lld", (long long)(v / 100), (long long)(v % 100));
}

/* num / den rounded half up to a whole number; 0 when den <= 0. */
static int64_t mean_whole(int64_t num, int64_t den)
{
    return den > 0 && num >= 0 ? (int64_t)(((__int128)num + den / 2) / den) : 0;
}

/* share_bp of reports.c, for the cohorts' shares. */
static int32_t ratio_bp(int64_t num, int64_t den)
{
    if (den <= 0 || num < 0) return 0;
    __int128 v = ((__int128)num * 10000 + den / 2) / den;
    return v > INT32_MAX ? INT32_MAX : (int32_t)v;
}

static const char *direction(int8_t d) { return d > 0 ? "up" : d < 0 ? "down" : "none"; }

static kp_err do_customers(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                           bool *replayed, kp_field_errors *fe, kp_error *e)
{
    kp_customers_report *c = arg;
    return kp_customers_report_read(o, kp_http_arg("from"), kp_http_arg("to"), kp_http_arg("store"),
                                    kp_http_arg("tier"), kp_http_arg("window"), c, e);
}

/* The months of cohort j from its month to the period's last. */
static size_t cohort_span(const kp_customers_report *c, size_t j)
{
    return c->figures.n_months - j;
}

static void customers_json(kp_buf *out, const kp_customers_report *c)
{
    const kp_report_customers *f = &c->figures;
    kp_buf_reset(out);
    kp_buf_puts(out, "{");
    kp_buf_json_kv_str(out, "from", c->period.from, false);
    kp_buf_json_kv_str(out, "to", c->period.to, true);
    if (c->period.store[0])
        kp_buf_json_kv_str(out, "store", c->period.store, true);
    else
        kp_buf_puts(out, ",\"store\":null");
    if (c->tier[0])
        kp_buf_json_kv_str(out, "tier", c->tier, true);
    else
        kp_buf_puts(out, ",\"tier\":null");
    /* tiers */
    kp_buf_puts(out, ",\"tiers\":{\"accounts\":[");
    for (size_t i = 0; i < f->n_tiers; i++) {
        kp_buf_puts(out, i ? ",{" : "{");
        kp_buf_json_kv_str(out, "tier", f->tiers[i].tier, false);
        kp_buf_json_kv_i64(out, "accounts", f->tiers[i].accounts, true);
        kp_buf_puts(out, "}");
    }
    kp_buf_puts(out, "],\"moves\":[");
    for (size_t i = 0; i < f->n_moves; i++) {
        kp_buf_puts(out, i ? ",{" : "{");
        kp_buf_json_kv_str(out, "from", f->moves[i].from, false);
        kp_buf_json_kv_str(out, "to", f->moves[i].to, true);
        kp_buf_json_kv_str(out, "direction", direction(c->move_direction[i]), true);
        kp_buf_json_kv_i64(out, "moves", f->moves[i].moves, true);
        kp_buf_puts(out, "}");
    }
    kp_buf_puts(out, "]");
    kp_buf_json_kv_i64(out, "up", c->moves_up, true);
    kp_buf_json_kv_i64(out, "down", c->moves_down, true);
    /* rfm */
    const kp_rfm_cutoffs *k = &c->cutoffs;
    kp_buf_puts(out, "},\"rfm\":{");
    kp_buf_json_kv_i64(out, "members", (int64_t)k->n, false);
    const char *names[3] = {"recency_days", "frequency", "monetary_minor"};
    const int64_t *cuts[3] = {k->recency, k->frequency, k->monetary};
    kp_buf_puts(out, ",\"cutoffs\":{");
    for (int i = 0; i < 3; i++) {
        kp_buf_printf(out, "%s\"%s\":[", i ? "," : "", names[i]);
        for (int b = 0; b < 4; b++) kp_buf_printf(out, "%s%lld", b ? "," : "", (long long)cuts[i][b]);
        kp_buf_puts(out, "]");
    }
    kp_buf_puts(out, "},\"segments\":[");
    for (int s = 0; s < KP_RFM_SEGMENTS; s++) {
        const kp_customers_segment *g = &c->segments[s];
        kp_buf_puts(out, s ? ",{" : "{");
        kp_buf_json_kv_str(out, "segment", kp_rfm_segment_name((kp_rfm_segment)s), false);
        kp_buf_json_kv_i64(out, "members", g->members, true);
        kp_buf_json_kv_i64(out, "revenue_minor", g->revenue_minor, true);
        kp_buf_puts(out, ",\"mean_recency_days\":");
        put_hundredths(out, g->recency_days, g->members);
        kp_buf_puts(out, ",\"mean_frequency\":");
        put_hundredths(out, g->receipts, g->members);
        kp_buf_json_kv_i64(out, "mean_monetary_minor", mean_whole(g->revenue_minor, g->members),
                           true);
        kp_buf_puts(out, "}");
    }
    /* grid[R - 1][F - 1], and the segment of each cell */
    kp_buf_puts(out, "],\"grid\":[");
    for (int r = 0; r < 5; r++) {
        kp_buf_puts(out, r ? ",[" : "[");
        for (int fq = 0; fq < 5; fq++)
            kp_buf_printf(out, "%s%lld", fq ? "," : "", (long long)c->grid[r][fq]);
        kp_buf_puts(out, "]");
    }
    kp_buf_puts(out, "],\"grid_segments\":[");
    for (int r = 0; r < 5; r++) {
        kp_buf_puts(out, r ? ",[" : "[");
        for (int fq = 0; fq < 5; fq++)
            kp_buf_printf(out, "%s\"%s\"", fq ? "," : "",
                          kp_rfm_segment_name(kp_rfm_segment_of(r + 1, fq + 1)));
        kp_buf_puts(out, "]");
    }
    /* cohorts */
    kp_buf_puts(out, "]},\"cohorts\":[");
    for (size_t j = 0; j < f->n_months; j++) {
        kp_buf_puts(out, j ? ",{" : "{");
        kp_buf_json_kv_str(out, "month", c->months[j], false);
        kp_buf_json_kv_i64(out, "members", f->cohort[j], true);
        kp_buf_puts(out, ",\"active\":[");
        for (size_t m = 0; m < cohort_span(c, j); m++)
            kp_buf_printf(out, "%s%lld", m ? "," : "", (long long)f->active[j][m]);
        kp_buf_puts(out, "],\"share\":[");
        for (size_t m = 0; m < cohort_span(c, j); m++) {
            if (m) kp_buf_puts(out, ",");
            put_share(out, ratio_bp(f->active[j][m], f->cohort[j]));
        }
        kp_buf_puts(out, "]}");
    }
    /* before and after joining */
    int64_t months = (int64_t)c->window_months * f->ba_followed;
    kp_buf_puts(out, "],\"before_after\":{");
    kp_buf_json_kv_i64(out, "window_months", c->window_months, false);
    kp_buf_json_kv_i64(out, "members", f->ba_members, true);
    kp_buf_json_kv_i64(out, "followed", f->ba_followed, true);
    const char *side[2] = {"before", "after"};
    int64_t n[2] = {f->before_receipts, f->after_receipts},
            sum[2] = {f->before_minor, f->after_minor};
    for (int i = 0; i < 2; i++) {
        kp_buf_printf(out, ",\"%s\":{", side[i]);
        kp_buf_json_kv_i64(out, "receipts", n[i], false);
        kp_buf_json_kv_i64(out, "amount_minor", sum[i], true);
        kp_buf_puts(out, ",\"receipts_per_month\":");
        put_hundredths(out, n[i], months);
        kp_buf_json_kv_i64(out, "average_receipt_minor", mean_whole(sum[i], n[i]), true);
        kp_buf_puts(out, "}");
    }
    kp_buf_puts(out, "}}");
}

static void customers_csv(kp_buf *out, const kp_customers_report *c)
{
    const kp_report_customers *f = &c->figures;
    kp_buf_reset(out);
    kp_buf_puts(out, "figure,key,sub,value\r\n");
    for (size_t i = 0; i < f->n_tiers; i++) {
        kp_buf_puts(out, "tier_accounts,");
        csv_text(out, f->tiers[i].tier);
        kp_buf_printf(out, ",,%lld\r\n", (long long)f->tiers[i].accounts);
    }
    for (size_t i = 0; i < f->n_moves; i++) {
        kp_buf_printf(out, "tier_move_%s,", direction(c->move_direction[i]));
        csv_text(out, f->moves[i].from);
        kp_buf_puts(out, ",");
        csv_text(out, f->moves[i].to);
        kp_buf_printf(out, ",%lld\r\n", (long long)f->moves[i].moves);
    }
    csv_int(out, "tier_moves_up", c->moves_up);
    csv_int(out, "tier_moves_down", c->moves_down);
    csv_int(out, "rfm_members", (int64_t)c->cutoffs.n);
    for (int s = 0; s < KP_RFM_SEGMENTS; s++) {
        const kp_customers_segment *g = &c->segments[s];
        const char *name = kp_rfm_segment_name((kp_rfm_segment)s);
        kp_buf_printf(out, "segment_members,%s,,%lld\r\n", name, (long long)g->members);
        kp_buf_printf(out, "segment_revenue_minor,%s,,%lld\r\n", name, (long long)g->revenue_minor);
        kp_buf_printf(out, "segment_mean_recency_days,%s,,", name);
        put_hundredths(out, g->recency_days, g->members);
        kp_buf_printf(out, "\r\nsegment_mean_frequency,%s,,", name);
        put_hundredths(out, g->receipts, g->members);
        kp_buf_printf(out, "\r\nsegment_mean_monetary_minor,%s,,%lld\r\n", name,
                      (long long)mean_whole(g->revenue_minor, g->members));
    }
    for (int r = 5; r >= 1; r--)
        for (int fq = 1; fq <= 5; fq++)
            kp_buf_printf(out, "rfm_grid,%d,%d,%lld\r\n", r, fq, (long long)c->grid[r - 1][fq - 1]);
    for (size_t j = 0; j < f->n_months; j++) {
        kp_buf_printf(out, "cohort_members,%s,,%lld\r\n", c->months[j], (long long)f->cohort[j]);
        for (size_t m = 0; m < cohort_span(c, j); m++) {
            kp_buf_printf(out, "cohort_active,%s,%zu,%lld\r\n", c->months[j], m,
                          (long long)f->active[j][m]);
            kp_buf_printf(out, "cohort_share,%s,%zu,", c->months[j], m);
            put_share(out, ratio_bp(f->active[j][m], f->cohort[j]));
            kp_buf_puts(out, "\r\n");
        }
    }
    int64_t months = (int64_t)c->window_months * f->ba_followed;
    csv_int(out, "window_months", c->window_months);
    csv_int(out, "before_after_members", f->ba_members);
    csv_int(out, "before_after_followed", f->ba_followed);
    const char *side[2] = {"before", "after"};
    int64_t n[2] = {f->before_receipts, f->after_receipts},
            sum[2] = {f->before_minor, f->after_minor};
    for (int i = 0; i < 2; i++) {
        kp_buf_printf(out, "%s_receipts,,,%lld\r\n", side[i], (long long)n[i]);
        kp_buf_printf(out, "%s_amount_minor,,,%lld\r\n", side[i], (long long)sum[i]);
        kp_buf_printf(out, "%s_receipts_per_month,,,", side[i]);
        put_hundredths(out, n[i], months);
        kp_buf_printf(out, "\r\n%s_average_receipt_minor,,,%lld\r\n", side[i],
                      (long long)mean_whole(sum[i], n[i]));
    }
}

static void customers_json_any(kp_buf *out, const void *c) { customers_json(out, c); }
static void customers_csv_any(kp_buf *out, const void *c) { customers_csv(out, c); }

static unsigned route_customers(const http_request *r, kp_http_answer *a)
{
    return report_route(r, a, sizeof(kp_customers_report), do_customers, customers_json_any,
                        customers_csv_any);
}

const http_route http_reports_routes[] = {
    {"GET", "/v1/admin/reports/points", HTTP_STAFF, route_points},
    {"GET", "/v1/admin/reports/members", HTTP_STAFF, route_members},
    {"GET", "/v1/admin/reports/customers", HTTP_STAFF, route_customers},
};
const size_t http_reports_routes_count = sizeof http_reports_routes / sizeof http_reports_routes[0];
