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
    out->cost_per_retained_minor =
        f->retained > 0 && out->cost_minor >= 0
            ? (int64_t)(((__int128)out->cost_minor + f->retained / 2) / f->retained)
            : 0;
    return KP_OK;
}
