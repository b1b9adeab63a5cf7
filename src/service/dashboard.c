/*
 * dashboard.c: the back office's dashboard (docs/api.md, "Dashboard"): the
 * period asked for, checked and turned into instants of the program's
 * clock, the store's figures for it (kp_people_ops.dashboard, read on the
 * caller's connection, a reader for the server), every month of the period
 * filled in, and the programme's liability priced with the running
 * program. Typed in and out: the route writes the JSON.
 */
#include "people_int.h"

#include <stdio.h>
#include <string.h>

#include <kopilka/clock.h>

/* Parses `text` (NULL or "" = absent) as a date into *y, *m, *d; `field`
 * names it in the error. */
static kp_err date_arg(const char *text, const char *field, int *y, int *m, int *d, kp_error *e)
{
    const char *why;
    if (!kp_parse_date(text, y, m, d, &why))
        return kp_error_set(e, KP_ERR_INVALID, field, "%s, got %.40s", why, text);
    return KP_OK;
}

kp_err kp_report_period_read(kp_office *o, const char *from, const char *to, const char *store,
                             kp_report_period *out, kp_error *e)
{
    memset(out, 0, sizeof *out);
    kp_err err = kp_office_require(o, KP_PERM_REPORT_READ, e);
    return err ? err : kp_period_read(o, from, to, store, out, e);
}

kp_err kp_period_read(const kp_office *o, const char *from, const char *to, const char *store,
                      kp_report_period *out, kp_error *e)
{
    memset(out, 0, sizeof *out);
    kp_err err;
    int32_t offset_minutes = o->program ? o->program->utc_offset_minutes : 0;
    int64_t offset = (int64_t)offset_minutes * 60;
    /* Today on the program's clock, for the defaults. */
    int ty, tm, td;
    kp_time_to_civil(o->now + offset, &ty, &tm, &td);
    int fy, fm, fd;
    if (to && to[0]) {
        if ((err = date_arg(to, "to", &ty, &tm, &td, e))) return err;
    }
    if (from && from[0]) {
        if ((err = date_arg(from, "from", &fy, &fm, &fd, e))) return err;
    } else {
        /* The twelve calendar months that end with to's. */
        kp_time first =
            kp_time_add_months(kp_time_from_civil(ty, tm, 1), -(KP_DASHBOARD_MONTHS_DEFAULT - 1));
        kp_time_to_civil(first, &fy, &fm, &fd);
    }
    if (store && strlen(store) >= KP_STR_MAX)
        return kp_error_set(e, KP_ERR_INVALID, "store",
                            "must be a store's name of at most %d bytes", KP_STR_MAX - 1);
    kp_time from_day = kp_time_from_civil(fy, fm, fd), to_day = kp_time_from_civil(ty, tm, td);
    if (to_day < from_day)
        return kp_error_set(e, KP_ERR_INVALID, "to", "must not be before from (%04d-%02d-%02d)", fy,
                            fm, fd);
    /* The period ends at the end of `to`; at most 36 months after from. */
    kp_time end_day = to_day + KP_DAY_SECONDS;
    if (end_day > kp_time_add_months(from_day, KP_DASHBOARD_PERIOD_MONTHS_MAX))
        return kp_error_set(e, KP_ERR_LIMIT, "from",
                            "the period from %04d-%02d-%02d to %04d-%02d-%02d is longer than "
                            "%d months, the most one report covers: ask for a later from",
                            fy, fm, fd, ty, tm, td, KP_DASHBOARD_PERIOD_MONTHS_MAX);
    snprintf(out->from, sizeof out->from, "%04d-%02d-%02d", fy, fm, fd);
    snprintf(out->to, sizeof out->to, "%04d-%02d-%02d", ty, tm, td);
    snprintf(out->store, sizeof out->store, "%s", store ? store : "");
    out->from_day = from_day;
    out->end_day = end_day;
    out->utc_offset_minutes = offset_minutes;
    out->from_at = from_day - offset;
    out->to_at = end_day - offset;
    return KP_OK;
}

kp_err kp_dashboard_read(kp_office *o, const char *from, const char *to, const char *store,
                         kp_dashboard_report *out, kp_error *e)
{
    memset(out, 0, sizeof *out);
    kp_report_period pd;
    kp_err err = kp_report_period_read(o, from, to, store, &pd, e);
    if (err) return err;
    int64_t offset = (int64_t)pd.utc_offset_minutes * 60;
    kp_time end_day = pd.end_day;
    int fy, fm, fd;
    kp_time_to_civil(pd.from_day, &fy, &fm, &fd);
    snprintf(out->from, sizeof out->from, "%s", pd.from);
    snprintf(out->to, sizeof out->to, "%s", pd.to);
    snprintf(out->store, sizeof out->store, "%s", pd.store);
    kp_dashboard_query q = {
        .from = pd.from_at,
        .to = pd.to_at,
        .active_since = kp_time_add_months(end_day, -KP_DASHBOARD_ACTIVE_MONTHS) - offset,
        .utc_offset_minutes = pd.utc_offset_minutes,
        .store = out->store,
    };
    kp_dashboard *d = &out->figures;
    if ((err = o->st->ops->people->dashboard(o->st, &q, d))) return people_storage(o->st, err, e);
    /* Every month of the period, in order, those without figures as zeros. */
    kp_dashboard_month given[KP_DASHBOARD_MONTHS_MAX];
    size_t n_given = d->n_months;
    memcpy(given, d->months, n_given * sizeof given[0]);
    d->n_months = 0;
    for (kp_time m = kp_time_from_civil(fy, fm, 1);
         m < end_day && d->n_months < KP_DASHBOARD_MONTHS_MAX; m = kp_time_add_months(m, 1)) {
        int y, mo, dd;
        kp_time_to_civil(m, &y, &mo, &dd);
        kp_dashboard_month *slot = &d->months[d->n_months++];
        memset(slot, 0, sizeof *slot);
        snprintf(slot->month, sizeof slot->month, "%04d-%02d", y, mo);
        for (size_t i = 0; i < n_given; i++)
            if (strcmp(given[i].month, slot->month) == 0) *slot = given[i];
    }
    out->minor_per_point = o->program ? o->program->minor_per_point : 0;
    if (__builtin_mul_overflow(d->outstanding, out->minor_per_point, &out->liability_minor))
        return kp_error_set(e, KP_ERR_OVERFLOW, "", "the liability does not fit in 64 bits");
    /* The share in ten-thousandths, rounded half up. */
    out->active_share_bp =
        d->members ? (int32_t)((d->members_active * 10000 + d->members / 2) / d->members) : 0;
    return KP_OK;
}
