/*
 * reports.c: the back office's reports (docs/api.md "Reports",
 * docs/analytics.md "Reports"): the period checked as the dashboard's, the
 * store's figures read in one snapshot on the caller's connection (a
 * reader for the server, kp_store_ops.report), and the ratios built on
 * them with the running program's point value. Typed in and out: the
 * route writes JSON or CSV.
 */
#include "people_int.h"

#include <string.h>

/* num / den in ten-thousandths, rounded half up; 0 when den <= 0 or num
 * < 0; saturated at INT32_MAX. */
static int32_t share_bp(int64_t num, int64_t den)
{
    if (den <= 0 || num < 0) return 0;
    __int128 v = ((__int128)num * 10000 + den / 2) / den;
    return v > INT32_MAX ? INT32_MAX : (int32_t)v;
}

kp_err kp_points_report_read(kp_office *o, const char *from, const char *to, const char *store,
                             kp_points_report *out, kp_error *e)
{
    memset(out, 0, sizeof *out);
    kp_err err = kp_report_period_read(o, from, to, store, &out->period, e);
    if (err) return err;
    kp_report_query q = {
        .from = out->period.from_at,
        .to = out->period.to_at,
        .utc_offset_minutes = out->period.utc_offset_minutes,
        .store = out->period.store,
    };
    kp_report_points *f = &out->figures;
    if ((err = o->st->ops->report->points(o->st, &q, f))) return people_storage(o->st, err, e);
    out->minor_per_point = o->program ? o->program->minor_per_point : 0;
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
