/*
 * marketing.c: segments and campaigns (marketing.h, docs/marketing.md
 * "Segments and campaigns"): the filter grammar and its evaluation, the
 * campaigns' drafts, previews, start and run, and their results.
 *
 * A filter is evaluated in two parts: the store's scan (kp_segment_query:
 * tier, spend, visits, recency, stores, card state, consent) and, for the
 * customers it finds, what only the key file can read: attributes and
 * birthdays, opened here one customer at a time.
 *
 * A run grants each member in its own right: a KP_OP_GRANT operation whose
 * receipt is the grant key "campaign/<id>/<customer>" (grant_keys makes it
 * once), the message event "campaign:#<id>:<customer>" (the outbox makes it
 * once), and the member's outcome, all in the step's transaction: a crash
 * loses a whole step or nothing, and the next step picks up the members
 * still pending.
 */
#include "marketing.h"
#include "people_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopilka/clock.h>
#include <kopilka/ledger.h>
#include <kopilka/notify.h>
#include <kopilka/rfm.h>

#include "notify/office.h"
#include "service_rules.h"
#include "settle_book.h"

enum { SEG_ATTRS_MAX = 8, SEG_IN_MAX = 16, SEG_NAMES_MAX = 32, SCAN_PAGE = 512 };

typedef struct seg_attr {
    char name[KP_ATTR_NAME_MAX];
    kp_attr_type type;
    size_t n_in;
    char in[SEG_IN_MAX][128]; /* string: one of these */
    bool has_min, has_max;    /* integer: bounds, inclusive */
    int64_t min, max;
    char from[11], to[11]; /* date: bounds, inclusive, "" = open */
    int is;                /* boolean: -1 any, 0 false, 1 true */
} seg_attr;

/* A parsed filter; the instants follow from it at evaluation (seg_query). */
typedef struct seg_filter {
    kp_segment_query q;
    int64_t period_days; /* > 0: the last N days; else [from, to) */
    kp_time from, to;
    int64_t rec_min, rec_max; /* days since the last purchase, -1 = open */
    uint32_t months;          /* birthday months, bit 1 << month; 0 = any */
    size_t n_attrs;
    seg_attr attrs[SEG_ATTRS_MAX];
    uint32_t rfm_mask; /* RFM segments, bit 1 << kp_rfm_segment; 0 = any */
    int64_t rfm_days;  /* the period they are scored over, days ending today */
} seg_filter;

/* The longest RFM period: 36 months of the customers report at the least. */
enum { SEG_RFM_DAYS_MAX = 1095 };

static const char *const FILTER_KEYS[] = {"tier",         "period",         "spend",  "visits",
                                          "recency_days", "birthday_month", "stores", "card_state",
                                          "consent",      "attributes",     "rfm",    NULL};

static kp_err storage(kp_office *o, kp_err err, kp_error *e)
{
    return people_storage(o->st, err, e);
}

static const kp_marketing_ops *mk(const kp_office *o)
{
    return o->st->ops->marketing;
}

/* ------------------------------------------------------------ the grammar */

static kp_err keys_check(json_t *obj, const char *field, const char *const *allowed, kp_error *e)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        bool ok = false;
        for (size_t i = 0; allowed[i] && !ok; i++) ok = strcmp(allowed[i], key) == 0;
        if (!ok) {
            char list[256] = "";
            size_t n = 0;
            for (size_t i = 0; allowed[i]; i++)
                n += (size_t)snprintf(list + n, n < sizeof list ? sizeof list - n : 0, "%s%s",
                                      i ? ", " : "", allowed[i]);
            return kp_error_set(e, KP_ERR_INVALID, field, "has no member \"%.40s\": allowed are %s",
                                key, list);
        }
    }
    return KP_OK;
}

/* {"min": n, "max": n}, each optional, lo <= n <= hi, min <= max. */
static kp_err range(json_t *v, const char *field, int64_t lo, int64_t hi, bool *has_min,
                    int64_t *min, bool *has_max, int64_t *max, kp_error *e)
{
    static const char *const keys[] = {"min", "max", NULL};
    char f[96];
    *has_min = *has_max = false;
    if (!json_is_object(v) || json_object_size(v) == 0)
        return kp_error_set(e, KP_ERR_INVALID, field,
                            "must be an object {\"min\": n, \"max\": n} (either may be left out), "
                            "whole numbers from %lld to %lld",
                            (long long)lo, (long long)hi);
    kp_err err = keys_check(v, field, keys, e);
    bool *has[2] = {has_min, has_max};
    int64_t *out[2] = {min, max};
    for (int i = 0; err == KP_OK && i < 2; i++) {
        json_t *x = json_object_get(v, keys[i]);
        *has[i] = x != NULL && !json_is_null(x);
        if (!*has[i]) continue;
        snprintf(f, sizeof f, "%s.%s", field, keys[i]);
        if (!json_is_integer(x) || json_integer_value(x) < lo || json_integer_value(x) > hi)
            return kp_error_set(e, KP_ERR_INVALID, f, "must be a whole number from %lld to %lld",
                                (long long)lo, (long long)hi);
        *out[i] = json_integer_value(x);
    }
    if (err == KP_OK && *has_min && *has_max && *min > *max)
        err = kp_error_set(e, KP_ERR_INVALID, field, "has min %lld over max %lld", (long long)*min,
                           (long long)*max);
    return err;
}

/* An array of 1..SEG_NAMES_MAX names as ",a,b,"; `check` says whether each
 * is allowed (NULL: any without a comma) and `allowed` names them. */
static kp_err names(json_t *v, const char *field, char *list, size_t cap,
                    bool (*check)(void *ctx, const char *name), void *ctx, const char *allowed,
                    kp_error *e)
{
    if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > SEG_NAMES_MAX)
        return kp_error_set(e, KP_ERR_INVALID, field, "must be an array of 1 to %d names: %s",
                            SEG_NAMES_MAX, allowed);
    size_t n = (size_t)snprintf(list, cap, ",");
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *x = json_array_get(v, i);
        const char *s = json_string_value(x);
        char f[96];
        snprintf(f, sizeof f, "%s[%zu]", field, i);
        if (s == NULL || strchr(s, ',') || strlen(s) > 100 || (check && !check(ctx, s)))
            return kp_error_set(e, KP_ERR_INVALID, f, "must be one of: %s", allowed);
        int w = snprintf(list + n, cap - n, "%s,", s);
        if (w < 0 || (size_t)w >= cap - n)
            return kp_error_set(e, KP_ERR_LIMIT, field, "names more than fit in %zu bytes", cap);
        n += (size_t)w;
    }
    return KP_OK;
}

static bool tier_ok(void *ctx, const char *name)
{
    const kp_program *p = ctx;
    if (strcmp(name, "none") == 0) return true;
    return p && kp_program_tier(p, name, NULL) != NULL;
}

static bool date_ok(const char *s, int *y, int *m, int *d)
{
    const char *why;
    return s && strlen(s) == 10 && kp_parse_date(s, y, m, d, &why);
}

/* The program's day `s` ("YYYY-MM-DD") at 00:00 on its clock. */
static kp_time day_start(const kp_office *o, int y, int m, int d)
{
    int32_t off = o->program ? o->program->utc_offset_minutes : 0;
    return kp_time_from_civil(y, m, d) - (kp_time)off * 60;
}

static kp_err parse_period(kp_office *o, json_t *v, seg_filter *f, kp_error *e)
{
    static const char *const keys[] = {"days", "from", "to", NULL};
    const char *msg = "must be {\"days\": N} (the last N days, 1 to 3660) or {\"from\": "
                      "\"YYYY-MM-DD\", \"to\": \"YYYY-MM-DD\"} (both days included)";
    if (!json_is_object(v)) return kp_error_set(e, KP_ERR_INVALID, "filter.period", "%s", msg);
    kp_err err = keys_check(v, "filter.period", keys, e);
    if (err) return err;
    json_t *days = json_object_get(v, "days");
    if (days) {
        if (json_object_size(v) != 1 || !json_is_integer(days) || json_integer_value(days) < 1 ||
            json_integer_value(days) > 3660)
            return kp_error_set(e, KP_ERR_INVALID, "filter.period.days", "%s", msg);
        f->period_days = json_integer_value(days);
        return KP_OK;
    }
    int y, m, d, y2, m2, d2;
    const char *from = json_string_value(json_object_get(v, "from"));
    const char *to = json_string_value(json_object_get(v, "to"));
    if (!date_ok(from, &y, &m, &d))
        return kp_error_set(e, KP_ERR_INVALID, "filter.period.from", "%s", msg);
    if (!date_ok(to, &y2, &m2, &d2))
        return kp_error_set(e, KP_ERR_INVALID, "filter.period.to", "%s", msg);
    f->period_days = 0;
    f->from = day_start(o, y, m, d);
    f->to = day_start(o, y2, m2, d2) + KP_DAY_SECONDS;
    if (f->to <= f->from)
        return kp_error_set(e, KP_ERR_INVALID, "filter.period.to", "must not be before from");
    return KP_OK;
}

static const kp_attr_decl *attr_decl(const kp_office *o, const char *name)
{
    for (size_t i = 0; i < o->policy->n_attributes; i++)
        if (strcmp(o->policy->attributes[i].name, name) == 0) return &o->policy->attributes[i];
    return NULL;
}

static kp_err parse_attr(kp_office *o, const char *name, json_t *v, seg_attr *a, kp_error *e)
{
    char field[96];
    snprintf(field, sizeof field, "filter.attributes.%.48s", name);
    const kp_attr_decl *d = attr_decl(o, name);
    if (d == NULL) {
        char list[512] = "";
        size_t n = 0;
        for (size_t i = 0; i < o->policy->n_attributes; i++)
            n += (size_t)snprintf(list + n, n < sizeof list ? sizeof list - n : 0, "%s%s",
                                  i ? ", " : "", o->policy->attributes[i].name);
        return kp_error_set(e, KP_ERR_INVALID, field,
                            "is not an attribute the program declares (its \"customers\" "
                            "section): declared are %s",
                            n ? list : "none");
    }
    memset(a, 0, sizeof *a);
    snprintf(a->name, sizeof a->name, "%s", name);
    a->type = d->type;
    a->is = -1;
    if (!json_is_object(v))
        return kp_error_set(e, KP_ERR_INVALID, field, "must be an object (a %s attribute: %s)",
                            kp_attr_type_name(d->type),
                            d->type == KP_ATTR_STRING    ? "{\"in\": [\"...\"]}"
                            : d->type == KP_ATTR_INTEGER ? "{\"min\": n, \"max\": n}"
                            : d->type == KP_ATTR_DATE    ? "{\"from\": \"YYYY-MM-DD\", \"to\": ...}"
                                                         : "{\"is\": true}");
    kp_err err = KP_OK;
    switch (d->type) {
    case KP_ATTR_STRING: {
        static const char *const keys[] = {"in", NULL};
        if ((err = keys_check(v, field, keys, e))) return err;
        json_t *in = json_object_get(v, "in");
        char f[112];
        snprintf(f, sizeof f, "%s.in", field);
        if (!json_is_array(in) || json_array_size(in) == 0 || json_array_size(in) > SEG_IN_MAX)
            return kp_error_set(e, KP_ERR_INVALID, f, "must be an array of 1 to %d texts",
                                SEG_IN_MAX);
        for (size_t i = 0; i < json_array_size(in); i++) {
            const char *s = json_string_value(json_array_get(in, i));
            if (s == NULL || strlen(s) >= sizeof a->in[0])
                return kp_error_set(e, KP_ERR_INVALID, f,
                                    "item %zu must be a text of at most "
                                    "127 bytes",
                                    i);
            snprintf(a->in[a->n_in++], sizeof a->in[0], "%s", s);
        }
        return KP_OK;
    }
    case KP_ATTR_INTEGER:
        return range(v, field, INT64_MIN / 2, INT64_MAX / 2, &a->has_min, &a->min, &a->has_max,
                     &a->max, e);
    case KP_ATTR_DATE: {
        static const char *const keys[] = {"from", "to", NULL};
        if ((err = keys_check(v, field, keys, e))) return err;
        const char *parts[2] = {"from", "to"};
        char *outs[2] = {a->from, a->to};
        for (int i = 0; i < 2; i++) {
            json_t *x = json_object_get(v, parts[i]);
            if (x == NULL) continue;
            int y, m, dd;
            char f[112];
            snprintf(f, sizeof f, "%s.%s", field, parts[i]);
            if (!date_ok(json_string_value(x), &y, &m, &dd))
                return kp_error_set(e, KP_ERR_INVALID, f, "must be a date \"YYYY-MM-DD\"");
            snprintf(outs[i], 11, "%s", json_string_value(x));
        }
        if (!a->from[0] && !a->to[0])
            return kp_error_set(e, KP_ERR_INVALID, field, "needs \"from\" or \"to\" (or both)");
        return KP_OK;
    }
    case KP_ATTR_BOOLEAN: {
        static const char *const keys[] = {"is", NULL};
        if ((err = keys_check(v, field, keys, e))) return err;
        json_t *x = json_object_get(v, "is");
        if (!json_is_boolean(x))
            return kp_error_set(e, KP_ERR_INVALID, field,
                                "must be {\"is\": true} or {\"is\": false}");
        a->is = json_is_true(x) ? 1 : 0;
        return KP_OK;
    }
    }
    return kp_error_set(e, KP_ERR_INTERNAL, field, "unknown attribute type");
}

/* The `rfm` member: {"segments": [names], "period_days": N}. */
static kp_err parse_rfm(json_t *v, seg_filter *f, kp_error *e)
{
    char allowed[256] = "";
    size_t len = 0;
    for (int s = 0; s < KP_RFM_SEGMENTS && len < sizeof allowed; s++)
        len += (size_t)snprintf(allowed + len, sizeof allowed - len, "%s%s", s ? ", " : "",
                                kp_rfm_segment_name((kp_rfm_segment)s));
    static const char *const keys[] = {"segments", "period_days", NULL};
    if (!json_is_object(v))
        return kp_error_set(e, KP_ERR_INVALID, "filter.rfm",
                            "must be an object: {\"segments\": [names], \"period_days\": N}");
    kp_err err = keys_check(v, "filter.rfm", keys, e);
    if (err) return err;
    json_t *segs = json_object_get(v, "segments");
    if (!json_is_array(segs) || json_array_size(segs) == 0 ||
        json_array_size(segs) > KP_RFM_SEGMENTS)
        return kp_error_set(e, KP_ERR_INVALID, "filter.rfm.segments",
                            "must be an array of 1 to %d RFM segments: %s", KP_RFM_SEGMENTS,
                            allowed);
    for (size_t i = 0; i < json_array_size(segs); i++) {
        const char *name = json_string_value(json_array_get(segs, i));
        kp_rfm_segment sg = kp_rfm_segment_parse(name);
        if (sg == KP_RFM_SEGMENTS)
            return kp_error_set(e, KP_ERR_INVALID, "filter.rfm.segments",
                                "item %zu (%.40s) is not an RFM segment; allowed: %s", i,
                                name ? name : "not a string", allowed);
        f->rfm_mask |= 1u << sg;
    }
    f->rfm_days = 365;
    json_t *days = json_object_get(v, "period_days");
    if (days) {
        if (!json_is_integer(days) || json_integer_value(days) < 1 ||
            json_integer_value(days) > SEG_RFM_DAYS_MAX)
            return kp_error_set(e, KP_ERR_INVALID, "filter.rfm.period_days",
                                "must be a whole number of days from 1 to %d (default 365)",
                                SEG_RFM_DAYS_MAX);
        f->rfm_days = json_integer_value(days);
    }
    return KP_OK;
}

/* Parses a filter object (docs/marketing.md, "The filter"). */
static kp_err filter_parse(kp_office *o, json_t *root, seg_filter *f, kp_error *e)
{
    memset(f, 0, sizeof *f);
    kp_segment_query_any(&f->q);
    f->period_days = 365;
    f->rec_min = f->rec_max = -1;
    if (!json_is_object(root))
        return kp_error_set(e, KP_ERR_INVALID, "filter",
                            "is required: an object of criteria, all of which a customer meets "
                            "({} = every customer)");
    kp_err err = keys_check(root, "filter", FILTER_KEYS, e);
    json_t *v;
    if (err == KP_OK && (v = json_object_get(root, "tier"))) {
        char allowed[512] = "none";
        size_t n = 4;
        for (size_t i = 0; o->program && i < o->program->n_tiers; i++)
            n += (size_t)snprintf(allowed + n, n < sizeof allowed ? sizeof allowed - n : 0, ", %s",
                                  o->program->tiers[i].name);
        err = names(v, "filter.tier", f->q.tiers, sizeof f->q.tiers, tier_ok, (void *)o->program,
                    allowed, e);
        /* "none" is the tier of a customer without one: the name "". */
        char *none = strstr(f->q.tiers, ",none,");
        if (err == KP_OK && none) memmove(none + 1, none + 5, strlen(none + 5) + 1);
    }
    if (err == KP_OK && (v = json_object_get(root, "period"))) err = parse_period(o, v, f, e);
    bool h1 = false, h2 = false;
    if (err == KP_OK && (v = json_object_get(root, "spend"))) {
        int64_t lo = INT64_MIN, hi = INT64_MAX;
        err = range(v, "filter.spend", -1000000000000000LL, 1000000000000000LL, &h1, &lo, &h2, &hi,
                    e);
        f->q.spend_min = h1 ? lo : INT64_MIN;
        f->q.spend_max = h2 ? hi : INT64_MAX;
    }
    if (err == KP_OK && (v = json_object_get(root, "visits"))) {
        int64_t lo = 0, hi = INT64_MAX;
        err = range(v, "filter.visits", 0, 1000000000, &h1, &lo, &h2, &hi, e);
        f->q.visits_min = h1 ? lo : 0;
        f->q.visits_max = h2 ? hi : INT64_MAX;
    }
    if (err == KP_OK && (v = json_object_get(root, "recency_days"))) {
        int64_t lo = 0, hi = 0;
        err = range(v, "filter.recency_days", 0, 36600, &h1, &lo, &h2, &hi, e);
        f->rec_min = h1 ? lo : -1;
        f->rec_max = h2 ? hi : -1;
    }
    if (err == KP_OK && (v = json_object_get(root, "birthday_month"))) {
        if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > 12)
            err = kp_error_set(e, KP_ERR_INVALID, "filter.birthday_month",
                               "must be an array of months, 1 (January) to 12");
        for (size_t i = 0; err == KP_OK && i < json_array_size(v); i++) {
            json_t *x = json_array_get(v, i);
            if (!json_is_integer(x) || json_integer_value(x) < 1 || json_integer_value(x) > 12)
                err = kp_error_set(e, KP_ERR_INVALID, "filter.birthday_month",
                                   "item %zu must be a month, 1 (January) to 12", i);
            else
                f->months |= 1u << json_integer_value(x);
        }
    }
    if (err == KP_OK && (v = json_object_get(root, "stores")))
        err = names(v, "filter.stores", f->q.stores, sizeof f->q.stores, NULL, NULL,
                    "store names (without commas)", e);
    if (err == KP_OK && (v = json_object_get(root, "card_state"))) {
        char list[128];
        err = names(v, "filter.card_state", list, sizeof list, NULL, NULL,
                    "issued, active, blocked, replaced", e);
        for (int st = KP_CARD_ISSUED; err == KP_OK && st <= KP_CARD_REPLACED; st++) {
            char word[32];
            snprintf(word, sizeof word, ",%s,", kp_card_state_name((kp_card_state)st));
            if (strstr(list, word)) f->q.card_states |= 1u << st;
        }
        if (err == KP_OK && f->q.card_states == 0)
            err = kp_error_set(e, KP_ERR_INVALID, "filter.card_state",
                               "must name states: issued, active, blocked, replaced");
        /* A name not among them. */
        for (size_t i = 0; err == KP_OK && i < json_array_size(v); i++) {
            const char *s = json_string_value(json_array_get(v, i));
            bool known = false;
            for (int st = KP_CARD_ISSUED; st <= KP_CARD_REPLACED; st++)
                known |= strcmp(s, kp_card_state_name((kp_card_state)st)) == 0;
            if (!known)
                err = kp_error_set(e, KP_ERR_INVALID, "filter.card_state",
                                   "item %zu must be one of: issued, active, blocked, replaced", i);
        }
    }
    if (err == KP_OK && (v = json_object_get(root, "consent"))) {
        const char *msg = "must be \"any\" (marketing consent given, by e-mail or SMS) or an "
                          "array of channels: email, sms";
        if (json_is_string(v) && strcmp(json_string_value(v), "any") == 0) {
            f->q.consent_channels = (1u << KP_CHANNEL_EMAIL) | (1u << KP_CHANNEL_SMS);
        } else if (json_is_array(v) && json_array_size(v) > 0 && json_array_size(v) <= 2) {
            for (size_t i = 0; err == KP_OK && i < json_array_size(v); i++) {
                const char *s = json_string_value(json_array_get(v, i));
                if (s && strcmp(s, "email") == 0)
                    f->q.consent_channels |= 1u << KP_CHANNEL_EMAIL;
                else if (s && strcmp(s, "sms") == 0)
                    f->q.consent_channels |= 1u << KP_CHANNEL_SMS;
                else
                    err = kp_error_set(e, KP_ERR_INVALID, "filter.consent", "%s", msg);
            }
        } else {
            err = kp_error_set(e, KP_ERR_INVALID, "filter.consent", "%s", msg);
        }
    }
    if (err == KP_OK && (v = json_object_get(root, "attributes"))) {
        if (!json_is_object(v) || json_object_size(v) == 0 || json_object_size(v) > SEG_ATTRS_MAX) {
            err = kp_error_set(e, KP_ERR_INVALID, "filter.attributes",
                               "must be an object of 1 to %d attributes, each with its condition",
                               SEG_ATTRS_MAX);
        } else {
            const char *key;
            json_t *x;
            json_object_foreach(v, key, x)
            {
                if (err) break;
                err = parse_attr(o, key, x, &f->attrs[f->n_attrs++], e);
            }
        }
    }
    if (err == KP_OK && (v = json_object_get(root, "rfm"))) err = parse_rfm(v, f, e);
    return err;
}

/* The filter's instants at `now`. */
static void filter_at(const seg_filter *f, kp_time now, kp_segment_query *q)
{
    *q = f->q;
    if (f->period_days > 0) {
        q->to = now;
        q->from = now - f->period_days * KP_DAY_SECONDS;
    } else {
        q->from = f->from;
        q->to = f->to;
    }
    if (f->rec_min >= 0) q->last_before = now - f->rec_min * KP_DAY_SECONDS;
    if (f->rec_max >= 0) q->last_after = now - f->rec_max * KP_DAY_SECONDS;
}

/* ----------------------------------------------------------- evaluation */

typedef kp_err (*hit_fn)(void *ctx, const kp_segment_hit *h, kp_error *e);

typedef struct seg_result {
    int64_t count;
    size_t n_sample;
    int64_t sample[KP_SEGMENT_SAMPLE];
} seg_result;

static bool attr_match(const seg_attr *a, json_t *attrs)
{
    json_t *v = json_object_get(attrs, a->name);
    if (v == NULL || json_is_null(v)) return false;
    switch (a->type) {
    case KP_ATTR_STRING:
        for (size_t i = 0; json_is_string(v) && i < a->n_in; i++)
            if (strcmp(json_string_value(v), a->in[i]) == 0) return true;
        return false;
    case KP_ATTR_INTEGER:
        return json_is_integer(v) && (!a->has_min || json_integer_value(v) >= a->min) &&
               (!a->has_max || json_integer_value(v) <= a->max);
    case KP_ATTR_DATE:
        return json_is_string(v) && (!a->from[0] || strcmp(json_string_value(v), a->from) >= 0) &&
               (!a->to[0] || strcmp(json_string_value(v), a->to) <= 0);
    case KP_ATTR_BOOLEAN: return json_is_boolean(v) && (json_is_true(v) ? 1 : 0) == a->is;
    }
    return false;
}

/* What the key file must open: the birthday month and the attributes. */
static kp_err sealed_match(kp_office *o, const seg_filter *f, int64_t customer_id,
                           kp_customer_row *row, bool *ok, kp_error *e)
{
    *ok = false;
    kp_err err = o->st->ops->people->customer_get(o->st, customer_id, row);
    if (err == KP_ERR_NOT_FOUND) return KP_OK;
    if (err) return storage(o, err, e);
    if (f->months) {
        char bd[16] = "";
        if (row->birthday.len == 0) return KP_OK;
        if (kp_pii_open(o->pii, KP_PII_BIRTHDAY, row->birthday.data, row->birthday.len, bd,
                        sizeof bd, NULL) != KP_OK)
            return kp_error_set(e, KP_ERR_IO, "key",
                                "customer %lld's birthday cannot be opened with the key file",
                                (long long)customer_id);
        int month = strlen(bd) >= 7 ? (bd[5] - '0') * 10 + (bd[6] - '0') : 0;
        if (month < 1 || month > 12 || !(f->months & (1u << month))) return KP_OK;
    }
    if (f->n_attrs) {
        static _Thread_local char text[KP_ATTRS_JSON_MAX + 1];
        text[0] = '\0';
        if (row->attributes_len &&
            kp_pii_open(o->pii, KP_PII_ATTRIBUTES, row->attributes, row->attributes_len, text,
                        sizeof text, NULL) != KP_OK)
            return kp_error_set(e, KP_ERR_IO, "key",
                                "customer %lld's attributes cannot be opened with the key file",
                                (long long)customer_id);
        json_t *attrs = text[0] ? json_loads(text, 0, NULL) : json_object();
        bool all = attrs != NULL;
        for (size_t i = 0; all && i < f->n_attrs; i++) all = attr_match(&f->attrs[i], attrs);
        json_decref(attrs);
        if (!all) return KP_OK;
    }
    *ok = true;
    return KP_OK;
}

static int cmp_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Every customer the filter finds at o->now, in id order: counted, the
 * first KP_SEGMENT_SAMPLE kept, each handed to each(ctx, hit) when given. */
static kp_err seg_run(kp_office *o, const seg_filter *f, hit_fn each, void *ctx, seg_result *res,
                      kp_error *e)
{
    memset(res, 0, sizeof *res);
    bool sealed = f->months || f->n_attrs;
    kp_err err = sealed ? people_need_key(o, e) : KP_OK;
    if (err) return err;
    kp_segment_query q;
    filter_at(f, o->now, &q);
    /* RFM: the accounts in the named segments, scored once by the
     * customers report's code (reports.c) in the store's read. */
    int64_t *rfm = NULL;
    size_t n_rfm = 0;
    if (f->rfm_mask && (err = kp_rfm_accounts(o, f->rfm_days, f->rfm_mask, &rfm, &n_rfm, e)))
        return err;
    kp_segment_hit *hits = malloc(SCAN_PAGE * sizeof *hits);
    kp_customer_row *row = sealed ? malloc(sizeof *row) : NULL;
    if (hits == NULL || (sealed && row == NULL))
        err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    int64_t after = 0;
    for (;;) {
        size_t n = 0;
        if (err || (err = mk(o)->segment_scan(o->st, &q, after, hits, SCAN_PAGE, &n))) {
            if (err && e->message[0] == '\0') err = storage(o, err, e);
            break;
        }
        for (size_t i = 0; err == KP_OK && i < n; i++) {
            bool ok = true;
            if (f->rfm_mask)
                ok = n_rfm && bsearch(&hits[i].account_id, rfm, n_rfm, sizeof *rfm, cmp_id);
            if (ok && sealed) err = sealed_match(o, f, hits[i].customer_id, row, &ok, e);
            if (err || !ok) continue;
            if (res->count >= KP_CAMPAIGN_MEMBERS_MAX && each) {
                err = kp_error_set(e, KP_ERR_LIMIT, "segment",
                                   "finds more than %d customers, more than one campaign may "
                                   "reach: narrow the filter",
                                   KP_CAMPAIGN_MEMBERS_MAX);
                break;
            }
            res->count++;
            if (res->n_sample < KP_SEGMENT_SAMPLE)
                res->sample[res->n_sample++] = hits[i].customer_id;
            if (each) err = each(ctx, &hits[i], e);
        }
        if (err || n < SCAN_PAGE) break;
        after = hits[n - 1].customer_id;
    }
    free(hits);
    free(row);
    free(rfm);
    return err;
}

/* ,"count":n,"sample":[{"customer":id}]: ids only, so the live count
 * reads no personal data (a marketer has no customer.read). */
static kp_err result_json(kp_office *o, const seg_result *r, kp_buf *out, kp_error *e)
{
    (void)o;
    (void)e;
    kp_buf_json_kv_i64(out, "count", r->count, true);
    kp_buf_puts(out, ",\"sample\":[");
    for (size_t i = 0; i < r->n_sample; i++)
        kp_buf_printf(out, "%s{\"customer\":%lld}", i ? "," : "", (long long)r->sample[i]);
    kp_buf_puts(out, "]");
    return KP_OK;
}

/* ------------------------------------------------------------- segments */

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= KP_SEGMENT_NAME_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20) return false;
    return true;
}

/* The filter member of root, parsed, and its canonical text. */
static kp_err filter_member(kp_office *o, json_t *root, seg_filter *f, char *text, size_t cap,
                            kp_error *e)
{
    json_t *v = json_object_get(root, "filter");
    kp_err err = filter_parse(o, v, f, e);
    if (err) return err;
    char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
    if (s == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    if (strlen(s) >= cap)
        err = kp_error_set(e, KP_ERR_LIMIT, "filter", "is over %zu bytes", cap - 1);
    else
        snprintf(text, cap, "%s", s);
    free(s);
    return err;
}

static kp_err segment_load(kp_office *o, int64_t id, kp_segment *g, kp_error *e)
{
    kp_err err = mk(o)->segment_get(o->st, id, g);
    if (err == KP_ERR_NOT_FOUND)
        return kp_error_set(e, KP_ERR_NOT_FOUND, "segment", "no segment has id %lld",
                            (long long)id);
    return err ? storage(o, err, e) : KP_OK;
}

static void segment_json(const kp_segment *g, kp_buf *out)
{
    kp_buf_puts(out, "{");
    kp_buf_json_kv_i64(out, "id", g->id, false);
    kp_buf_json_kv_str(out, "name", g->name, true);
    kp_buf_puts(out, ",\"filter\":");
    kp_buf_puts(out, g->filter[0] ? g->filter : "{}");
    people_time_kv(out, "created_at", g->created_at);
    people_time_kv(out, "updated_at", g->updated_at);
    kp_buf_json_kv_str(out, "actor", g->actor, true);
}

kp_err kp_segment_preview(kp_office *o, const char *body, size_t len, kp_buf *out, kp_error *e)
{
    static const char *const keys[] = {"filter", NULL};
    kp_err err = kp_office_require_back_office(o, KP_PERM_CAMPAIGN_MANAGE, e);
    if (err) return err;
    json_t *root = people_json_load(body, len, e);
    if (root == NULL) return e->code ? e->code : KP_ERR_INVALID;
    seg_filter *f = malloc(sizeof *f);
    seg_result *r = malloc(sizeof *r);
    char *text = malloc(KP_SEGMENT_FILTER_MAX);
    if (!f || !r || !text) err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    if (err == KP_OK) err = keys_check(root, "body", keys, e);
    if (err == KP_OK) err = filter_member(o, root, f, text, KP_SEGMENT_FILTER_MAX, e);
    if (err == KP_OK) err = seg_run(o, f, NULL, NULL, r, e);
    if (err == KP_OK) {
        kp_buf_reset(out);
        kp_buf_puts(out, "{\"filter\":");
        kp_buf_puts(out, text);
        err = result_json(o, r, out, e);
        kp_buf_puts(out, "}");
    }
    json_decref(root);
    free(f), free(r), free(text);
    return err;
}

/* Creates (id 0) or rewrites a segment from a body. */
static kp_err segment_put(kp_office *o, int64_t id, const char *body, size_t len, kp_buf *out,
                          kp_error *e)
{
    static const char *const keys[] = {"name", "filter", NULL};
    kp_err err = kp_office_require_back_office(o, KP_PERM_CAMPAIGN_MANAGE, e);
    if (err) return err;
    json_t *root = people_json_load(body, len, e);
    if (root == NULL) return e->code ? e->code : KP_ERR_INVALID;
    kp_segment *g = calloc(1, sizeof *g);
    seg_filter *f = malloc(sizeof *f);
    seg_result *r = malloc(sizeof *r);
    if (!g || !f || !r) err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    if (err == KP_OK) err = keys_check(root, "body", keys, e);
    if (err == KP_OK && id) {
        err = segment_load(o, id, g, e);
    }
    json_t *name = json_object_get(root, "name");
    if (err == KP_OK && (name || id == 0)) {
        if (!json_is_string(name) || !name_ok(json_string_value(name)))
            err = kp_error_set(e, KP_ERR_INVALID, "name",
                               "is required: a text of 1 to %d bytes, unique among segments",
                               KP_SEGMENT_NAME_MAX - 1);
        else
            snprintf(g->name, sizeof g->name, "%s", json_string_value(name));
    }
    if (err == KP_OK && (json_object_get(root, "filter") || id == 0))
        err = filter_member(o, root, f, g->filter, sizeof g->filter, e);
    else if (err == KP_OK) {
        json_t *old = json_loads(g->filter, 0, NULL);
        err = filter_parse(o, old, f, e);
        json_decref(old);
    }
    if (err == KP_OK) {
        g->updated_at = o->now;
        snprintf(g->actor, sizeof g->actor, "%s", o->actor.name);
        if (id == 0) {
            g->created_at = o->now;
            err = mk(o)->segment_insert(o->st, g);
        } else {
            err = mk(o)->segment_update(o->st, g);
        }
        if (err == KP_ERR_CONFLICT)
            err = kp_error_set(e, KP_ERR_CONFLICT, "name", "another segment is named \"%s\"",
                               g->name);
        else if (err)
            err = storage(o, err, e);
    }
    if (err == KP_OK) err = seg_run(o, f, NULL, NULL, r, e);
    if (err == KP_OK) {
        char target[48];
        snprintf(target, sizeof target, "segment:%lld", (long long)g->id);
        err = kp_office_audit(o, id ? "segment.update" : "segment.create", target, "count=%lld",
                              (long long)r->count);
        if (err) err = storage(o, err, e);
    }
    if (err == KP_OK) {
        kp_buf_reset(out);
        segment_json(g, out);
        err = result_json(o, r, out, e);
        kp_buf_puts(out, "}");
    }
    json_decref(root);
    free(g), free(f), free(r);
    return err;
}

kp_err kp_segment_create(kp_office *o, const char *body, size_t len, kp_buf *out, kp_error *e)
{
    return segment_put(o, 0, body, len, out, e);
}

kp_err kp_segment_update(kp_office *o, int64_t id, const char *body, size_t len, kp_buf *out,
                         kp_error *e)
{
    return segment_put(o, id, body, len, out, e);
}

kp_err kp_segment_delete(kp_office *o, int64_t id, kp_buf *out, kp_error *e)
{
    kp_err err = kp_office_require_back_office(o, KP_PERM_CAMPAIGN_MANAGE, e);
    if (err) return err;
    err = mk(o)->segment_delete(o->st, id);
    if (err == KP_ERR_NOT_FOUND)
        return kp_error_set(e, KP_ERR_NOT_FOUND, "segment", "no segment has id %lld",
                            (long long)id);
    if (err) return storage(o, err, e);
    char target[48];
    snprintf(target, sizeof target, "segment:%lld", (long long)id);
    if ((err = kp_office_audit(o, "segment.delete", target, "deleted"))) return storage(o, err, e);
    kp_buf_reset(out);
    kp_buf_printf(out, "{\"id\":%lld,\"deleted\":true}", (long long)id);
    return KP_OK;
}

kp_err kp_segment_show(kp_office *o, int64_t id, kp_buf *out, kp_error *e)
{
    kp_err err = kp_office_require_back_office(o, KP_PERM_CAMPAIGN_MANAGE, e);
    if (err) return err;
    kp_segment *g = malloc(sizeof *g);
    seg_filter *f = malloc(sizeof *f);
    seg_result *r = malloc(sizeof *r);
    if (!g || !f || !r) err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    if (err == KP_OK) {
        err = segment_load(o, id, g, e);
    }
    if (err == KP_OK) {
        json_t *v = json_loads(g->filter, 0, NULL);
        err = filter_parse(o, v, f, e);
        json_decref(v);
    }
    if (err == KP_OK) err = seg_run(o, f, NULL, NULL, r, e);
    if (err == KP_OK) {
        kp_buf_reset(out);
        segment_json(g, out);
        err = result_json(o, r, out, e);
        kp_buf_puts(out, "}");
    }
    free(g), free(f), free(r);
    return err;
}

kp_err kp_segments_list(kp_office *o, kp_buf *out, kp_error *e)
{
    enum { LIST_MAX = 500 };
    kp_err err = kp_office_require_back_office(o, KP_PERM_CAMPAIGN_MANAGE, e);
    if (err) return err;
    kp_segment *gs = malloc(LIST_MAX * sizeof *gs);
    if (gs == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    size_t n = 0;
    if ((err = mk(o)->segment_list(o->st, gs, LIST_MAX, &n))) {
        free(gs);
        return storage(o, err, e);
    }
    kp_buf_reset(out);
    kp_buf_puts(out, "{\"segments\":[");
    for (size_t i = 0; i < n; i++) {
        if (i) kp_buf_puts(out, ",");
        segment_json(&gs[i], out);
        kp_buf_puts(out, "}");
    }
    kp_buf_puts(out, "]}");
    free(gs);
    return KP_OK;
}

/* ------------------------------------------------------------ campaigns */

bool kp_campaign_is_control(int64_t campaign_id, int64_t customer_id, int32_t control_bp)
{
    if (control_bp <= 0) return false;
    /* splitmix64 of the pair: fixed, documented, no state. */
    uint64_t x = (uint64_t)campaign_id * 0x9E3779B97F4A7C15ull ^ (uint64_t)customer_id;
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    x ^= x >> 31;
    return (int32_t)(x % 10000) < control_bp;
}

static kp_err campaign_load(kp_office *o, int64_t id, kp_campaign *c, kp_error *e)
{
    kp_err err = mk(o)->campaign_get(o->st, id, c);
    if (err == KP_ERR_NOT_FOUND)
        return kp_error_set(e, KP_ERR_NOT_FOUND, "campaign", "no campaign has id %lld",
                            (long long)id);
    return err ? storage(o, err, e) : KP_OK;
}

/* Whether c grants points: a fixed amount or by a program rule. */
static bool has_grant(const kp_campaign *c)
{
    return c->points > 0 || c->rule[0] != '\0';
}

/* The grant rule `id` of program p that a campaign may name: a grant rule
 * on "campaign"; NULL with e naming `field` and what is allowed. */
static const kp_rule *campaign_rule(const kp_program *p, const char *id, const char *field,
                                    kp_error *e)
{
    char list[256] = "";
    size_t n = 0;
    for (size_t i = 0; p && i < p->n_rules; i++) {
        const kp_rule *r = &p->rules[i];
        if (r->kind != KP_RULE_GRANT || strcmp(r->on, "campaign") != 0) continue;
        if (strcmp(r->id, id) == 0) return r;
        n += (size_t)snprintf(list + n, n < sizeof list ? sizeof list - n : 0, "%s%s",
                              n ? ", " : "", r->id);
    }
    const kp_rule *other = NULL;
    for (size_t i = 0; p && i < p->n_rules && !other; i++)
        if (strcmp(p->rules[i].id, id) == 0) other = &p->rules[i];
    kp_error_set(e, KP_ERR_INVALID, field,
                 "%s%s%s: must name a grant rule on \"campaign\" of the running program (%s)",
                 other ? "rule " : "no rule has id \"", id,
                 other ? (other->kind == KP_RULE_GRANT ? " is a grant on another event"
                                                       : " is not a grant rule")
                       : "\"",
                 n ? list : "it has none: add one with \"kind\": \"grant\", \"on\": \"campaign\"");
    return NULL;
}

/* The program whose rule grants campaign c's points: the version its
 * start pinned (or, before the start, the running one). *owned is the
 * copy to free when it is not o->program. */
static kp_err campaign_program(kp_office *o, const kp_campaign *c, const kp_program **p,
                               kp_program **owned, kp_error *e)
{
    *owned = NULL;
    *p = o->program;
    if (c->program_version == 0 || (o->program && o->program->version == c->program_version)) {
        if (*p == NULL)
            return kp_error_set(e, KP_ERR_CONFLICT, "grant.rule", "no program is loaded");
        return KP_OK;
    }
    kp_program *copy = malloc(sizeof *copy);
    if (copy == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    kp_err err = kp_service_program_running(o->st, c->program_version, 0, copy, e);
    if (err) {
        free(copy);
        return err;
    }
    *owned = copy;
    *p = copy;
    return KP_OK;
}

/* What rule r of program p gives the member with account `account`, through
 * the program's own grant code (kp_grant_prepare): the member's figures
 * read at `at` (the campaign's start, so a resumed run computes the same
 * spend), the lot valid from `now`. *amount 0 (with `why`) when it gives
 * nothing. */
static kp_err rule_points(kp_office *o, const kp_program *p, const kp_rule *r, int64_t account,
                          kp_time at, kp_grant_plan *gp, char *why, size_t why_size, kp_error *e)
{
    kp_grant_ctx g = {.card = "", .store = "", .event_id = "", .token = "", .at = at};
    kp_err err = kp_grant_member_figures(o->st, p, r, account, &g, e);
    if (err) return err;
    if (!kp_grant_prepare(p, r, account, &g, gp, why, why_size) || gp->overflow) {
        gp->amount = 0;
        return KP_OK;
    }
    gp->lot.earned_at = o->now;
    kp_validity_apply(&r->validity, o->now, &gp->lot.active_from, &gp->lot.expires_at);
    if (kp_program_is_coalition(p))
        snprintf(gp->lot.partner, sizeof gp->lot.partner, "%s", r->partner);
    return KP_OK;
}

static const char *const LANGS[] = {"ru", "en", NULL};

/* The message member: {"subject": {lang: text}, "text": {...}, "html":
 * {...}}, each part compiled as a campaign template; canonical text into
 * c->message. */
static kp_err message_parse(json_t *m, kp_campaign *c, kp_error *e)
{
    static const char *const parts[] = {"subject", "text", "html", NULL};
    if (m == NULL || json_is_null(m)) {
        c->message[0] = '\0';
        return KP_OK;
    }
    if (!json_is_object(m))
        return kp_error_set(e, KP_ERR_INVALID, "message",
                            "must be {\"text\": {\"ru\": \"...\", \"en\": \"...\"}, \"subject\": "
                            "{...}, \"html\": {...}} (text required; ru, en), or null");
    kp_err err = keys_check(m, "message", parts, e);
    for (size_t p = 0; err == KP_OK && parts[p]; p++) {
        json_t *v = json_object_get(m, parts[p]);
        char field[32];
        snprintf(field, sizeof field, "message.%s", parts[p]);
        if (v && (!json_is_object(v) || (err = keys_check(v, field, LANGS, e))))
            err = err ? err
                      : kp_error_set(e, KP_ERR_INVALID, field,
                                     "must be an object by language: "
                                     "ru, en");
    }
    json_t *text = json_object_get(m, "text");
    if (err == KP_OK && (text == NULL || json_object_size(text) == 0))
        err = kp_error_set(e, KP_ERR_INVALID, "message.text",
                           "is required: the SMS and the e-mail's plain text, by language "
                           "({\"ru\": \"...\", \"en\": \"...\"})");
    for (size_t l = 0; err == KP_OK && LANGS[l]; l++) {
        const char *s[3];
        for (int p = 0; p < 3; p++) {
            json_t *x = json_object_get(json_object_get(m, parts[p]), LANGS[l]);
            s[p] = json_string_value(x);
            if (x && s[p] == NULL)
                return kp_error_set(e, KP_ERR_INVALID, "message", "%s.%s must be a text", parts[p],
                                    LANGS[l]);
        }
        if (s[1] == NULL && (s[0] || s[2]))
            return kp_error_set(e, KP_ERR_INVALID, "message.text",
                                "needs language %s too (its subject or html is given)", LANGS[l]);
        if (s[1] == NULL) continue;
        if (s[0] == NULL || s[0][0] == '\0')
            return kp_error_set(e, KP_ERR_INVALID, "message.subject",
                                "is required in %s too: the e-mail's subject, by language",
                                LANGS[l]);
        kp_error te = {0};
        if (kp_office_template_check(KP_NOTIFY_CAMPAIGN, KP_CHANNEL_EMAIL, s[0], s[1], s[2], &te) !=
            KP_OK) {
            char field[64];
            snprintf(field, sizeof field, "message.%.40s.%s", te.field[0] ? te.field : "text",
                     LANGS[l]);
            return kp_error_set(e, KP_ERR_INVALID, field, "%s", te.message);
        }
    }
    char *s = err ? NULL : json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS);
    if (err == KP_OK && s == NULL) err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    if (err == KP_OK && strlen(s) >= sizeof c->message)
        err = kp_error_set(e, KP_ERR_LIMIT, "message", "is over %zu bytes", sizeof c->message - 1);
    if (err == KP_OK) snprintf(c->message, sizeof c->message, "%s", s);
    free(s);
    return err;
}

static kp_err campaign_fields(kp_office *o, json_t *root, kp_campaign *c, bool create, kp_error *e)
{
    static const char *const keys[] = {"name",          "segment", "grant",        "budget",
                                       "control_share", "message", "every_months", NULL};
    static const char *const gkeys[] = {"kind", "points", "validity_days", "rule", NULL};
    kp_err err = keys_check(root, "body", keys, e);
    json_t *v;
    if (err == KP_OK && ((v = json_object_get(root, "name")) || create)) {
        if (!json_is_string(v) || !name_ok(json_string_value(v)))
            err = kp_error_set(e, KP_ERR_INVALID, "name", "is required: a text of 1 to %d bytes",
                               KP_SEGMENT_NAME_MAX - 1);
        else
            snprintf(c->name, sizeof c->name, "%s", json_string_value(v));
    }
    if (err == KP_OK && ((v = json_object_get(root, "segment")) || create)) {
        kp_segment g;
        if (!json_is_integer(v) || json_integer_value(v) <= 0)
            err = kp_error_set(e, KP_ERR_INVALID, "segment", "is required: a segment's id");
        else if (mk(o)->segment_get(o->st, json_integer_value(v), &g) != KP_OK)
            err = kp_error_set(e, KP_ERR_INVALID, "segment", "no segment has id %lld",
                               (long long)json_integer_value(v));
        else
            c->segment_id = g.id;
    }
    if (err == KP_OK && (v = json_object_get(root, "grant")) && !json_is_null(v)) {
        if (!json_is_object(v))
            err = kp_error_set(e, KP_ERR_INVALID, "grant",
                               "must be {\"kind\": \"premium\", \"points\": 500, "
                               "\"validity_days\": 30} or null (a message only)");
        if (err == KP_OK) err = keys_check(v, "grant", gkeys, e);
        json_t *rv = err == KP_OK ? json_object_get(v, "rule") : NULL;
        if (rv) {
            const char *both = json_object_get(v, "points")          ? "grant.points"
                               : json_object_get(v, "kind")          ? "grant.kind"
                               : json_object_get(v, "validity_days") ? "grant.validity_days"
                                                                     : NULL;
            const kp_rule *ru = NULL;
            if (both)
                err = kp_error_set(e, KP_ERR_INVALID, both,
                                   "give either a rule ({\"rule\": \"<id>\"}: the rule gives "
                                   "kind, points and validity) or kind, points and "
                                   "validity_days, not both");
            else if (!json_is_string(rv) || json_string_length(rv) == 0 ||
                     json_string_length(rv) >= sizeof c->rule)
                err = kp_error_set(e, KP_ERR_INVALID, "grant.rule",
                                   "must be the id of a grant rule on \"campaign\", 1 to %zu "
                                   "bytes",
                                   sizeof c->rule - 1);
            else if ((ru = campaign_rule(o->program, json_string_value(rv), "grant.rule", e)) ==
                     NULL)
                err = KP_ERR_INVALID;
            if (err == KP_OK) {
                snprintf(c->rule, sizeof c->rule, "%s", ru->id);
                snprintf(c->kind, sizeof c->kind, "%s", ru->point_kind);
                c->points = 0;
                c->validity_days = 0;
            }
        } else if (err == KP_OK) {
            c->rule[0] = '\0';
            const char *kind = json_string_value(json_object_get(v, "kind"));
            if (err == KP_OK && kind == NULL && o->program) kind = o->program->point_kind;
            if (err == KP_OK && (kind == NULL || o->program == NULL ||
                                 (kp_program_kind(o->program, kind) == NULL &&
                                  strcmp(kind, o->program->point_kind) != 0))) {
                char list[256] = "";
                size_t n = 0;
                for (size_t i = 0; o->program && i < o->program->n_kinds; i++)
                    n += (size_t)snprintf(list + n, n < sizeof list ? sizeof list - n : 0, "%s%s",
                                          i ? ", " : "", o->program->kinds[i].name);
                err = kp_error_set(
                    e, KP_ERR_INVALID, "grant.kind",
                    "must be a point kind of the running program: %s",
                    n ? list : (o->program ? o->program->point_kind : "(no program loaded)"));
            }
            if (err == KP_OK) snprintf(c->kind, sizeof c->kind, "%s", kind);
            json_t *p = json_object_get(v, "points");
            if (err == KP_OK && (!json_is_integer(p) || json_integer_value(p) < 1 ||
                                 json_integer_value(p) > 1000000000))
                err = kp_error_set(e, KP_ERR_INVALID, "grant.points",
                                   "is required: whole points per customer, 1 to 1000000000");
            if (err == KP_OK) c->points = json_integer_value(p);
            json_t *d = json_object_get(v, "validity_days");
            if (err == KP_OK && d &&
                (!json_is_integer(d) || json_integer_value(d) < 0 || json_integer_value(d) > 3660))
                err = kp_error_set(e, KP_ERR_INVALID, "grant.validity_days",
                                   "must be whole days, 1 to 3660, or 0 (the kind's own validity)");
            if (err == KP_OK) c->validity_days = d ? (int32_t)json_integer_value(d) : 0;
        }
    } else if (err == KP_OK && v) {
        c->points = 0;
        c->kind[0] = '\0';
        c->rule[0] = '\0';
    }
    if (err == KP_OK && (v = json_object_get(root, "budget"))) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) > 1000000000000000LL)
            err = kp_error_set(e, KP_ERR_INVALID, "budget",
                               "must be whole points in all, or 0 for no cap");
        else
            c->budget = json_integer_value(v);
    }
    if (err == KP_OK && (v = json_object_get(root, "control_share"))) {
        double x = json_number_value(v);
        if (!json_is_number(v) || x < 0 || x > 0.9)
            err = kp_error_set(e, KP_ERR_INVALID, "control_share",
                               "must be the share held out as a control group, 0 to 0.9 "
                               "(0.1 = 10 %%)");
        else
            c->control_bp = (int32_t)llround(x * 10000);
    }
    if (err == KP_OK && (v = json_object_get(root, "every_months"))) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 12)
            err = kp_error_set(e, KP_ERR_INVALID, "every_months",
                               "must be 0 (once) or 1 to 12: a new run that many months after "
                               "each start");
        else
            c->every_months = (int32_t)json_integer_value(v);
    }
    if (err == KP_OK && ((v = json_object_get(root, "message")) || create))
        err = message_parse(v, c, e);
    if (err == KP_OK && !has_grant(c) && c->message[0] == '\0')
        err = kp_error_set(e, KP_ERR_INVALID, "grant",
                           "a campaign needs a grant, a message, or both");
    return err;
}

static void campaign_json(const kp_campaign *c, kp_buf *out)
{
    kp_buf_puts(out, "{");
    kp_buf_json_kv_i64(out, "id", c->id, false);
    kp_buf_json_kv_str(out, "name", c->name, true);
    kp_buf_json_kv_i64(out, "segment", c->segment_id, true);
    kp_buf_json_kv_str(out, "state", kp_campaign_state_name(c->state), true);
    if (c->rule[0]) {
        /* The rule gives kind, points and validity; program_version: the
         * version the start pinned (0 before the start). */
        kp_buf_puts(out, ",\"grant\":{");
        kp_buf_json_kv_str(out, "rule", c->rule, false);
        kp_buf_json_kv_str(out, "kind", c->kind, true);
        kp_buf_json_kv_i64(out, "program_version", c->program_version, true);
        kp_buf_puts(out, "}");
    } else if (c->points) {
        kp_buf_puts(out, ",\"grant\":{");
        kp_buf_json_kv_str(out, "kind", c->kind, false);
        kp_buf_json_kv_i64(out, "points", c->points, true);
        kp_buf_json_kv_i64(out, "validity_days", c->validity_days, true);
        kp_buf_puts(out, "}");
    } else {
        kp_buf_puts(out, ",\"grant\":null");
    }
    kp_buf_json_kv_i64(out, "budget", c->budget, true);
    kp_buf_printf(out, ",\"control_share\":%d.%04d", (int)(c->control_bp / 10000),
                  (int)(c->control_bp % 10000));
    kp_buf_puts(out, ",\"message\":");
    kp_buf_puts(out, c->message[0] ? c->message : "null");
    kp_buf_json_kv_i64(out, "every_months", c->every_months, true);
    kp_buf_json_kv_i64(out, "parent", c->parent_id, true);
    people_time_kv(out, "start_at", c->start_at);
    people_time_kv(out, "created_at", c->created_at);
    people_time_kv(out, "started_at", c->started_at);
    people_time_kv(out, "finished_at", c->finished_at);
    kp_buf_json_kv_str(out, "actor", c->actor, true);
    kp_buf_json_kv_str(out, "note", c->note, true);
    kp_buf_json_kv_i64(out, "granted", c->granted, true);
    kp_buf_puts(out, ",\"filter\":");
    kp_buf_puts(out, c->filter[0] ? c->filter : "null");
}

static void progress_json(const kp_campaign_stats *s, kp_buf *out)
{
    static const char *const names[5] = {"pending", "granted", "budget", "control", "skipped"};
    kp_buf_puts(out, ",\"progress\":{");
    kp_buf_json_kv_i64(out, "members", s->members, false);
    for (int i = 0; i < 5; i++) kp_buf_json_kv_i64(out, names[i], s->by_state[i], true);
    kp_buf_json_kv_i64(out, "points", s->points, true);
    kp_buf_json_kv_i64(out, "messages_sent", s->messages_sent, true);
    kp_buf_json_kv_i64(out, "messages_pending", s->messages_pending, true);
    kp_buf_puts(out, "}");
}

static kp_err campaign_put(kp_office *o, int64_t id, const char *body, size_t len, kp_buf *out,
                           kp_error *e)
{
    kp_err err = kp_office_require_back_office(o, KP_PERM_CAMPAIGN_MANAGE, e);
    if (err) return err;
    json_t *root = people_json_load(body, len, e);
    if (root == NULL) return e->code ? e->code : KP_ERR_INVALID;
    kp_campaign *c = calloc(1, sizeof *c);
    if (c == NULL) err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    if (err == KP_OK && id) {
        err = campaign_load(o, id, c, e);
        if (err == KP_OK && c->state != KP_CAMPAIGN_DRAFT)
            err = kp_error_set(e, KP_ERR_CONFLICT, "campaign",
                               "is %s: only a draft may change (cancel it and make another)",
                               kp_campaign_state_name(c->state));
    }
    if (err == KP_OK) err = campaign_fields(o, root, c, id == 0, e);
    if (err == KP_OK) {
        snprintf(c->actor, sizeof c->actor, "%s", o->actor.name);
        if (id == 0) {
            c->created_at = o->now;
            c->state = KP_CAMPAIGN_DRAFT;
            err = mk(o)->campaign_insert(o->st, c);
        } else {
            err = mk(o)->campaign_update(o->st, c);
        }
        if (err) err = storage(o, err, e);
    }
    if (err == KP_OK) {
        char target[48];
        snprintf(target, sizeof target, "campaign:%lld", (long long)c->id);
        err = kp_office_audit(o, id ? "campaign.update" : "campaign.create", target,
                              "segment=%lld points=%lld kind=%s budget=%lld%s%s",
                              (long long)c->segment_id, (long long)c->points, c->kind,
                              (long long)c->budget, c->rule[0] ? " rule=" : "", c->rule);
        if (err) err = storage(o, err, e);
    }
    if (err == KP_OK) {
        kp_buf_reset(out);
        campaign_json(c, out);
        kp_buf_puts(out, "}");
    }
    json_decref(root);
    free(c);
    return err;
}

kp_err kp_campaign_create(kp_office *o, const char *body, size_t len, kp_buf *out, kp_error *e)
{
    return campaign_put(o, 0, body, len, out, e);
}

kp_err kp_campaign_update(kp_office *o, int64_t id, const char *body, size_t len, kp_buf *out,
                          kp_error *e)
{
    return campaign_put(o, id, body, len, out, e);
}

kp_err kp_campaign_show(kp_office *o, int64_t id, kp_buf *out, kp_error *e)
{
    kp_err err = kp_office_require_back_office(o, KP_PERM_CAMPAIGN_MANAGE, e);
    if (err) return err;
    kp_campaign *c = malloc(sizeof *c);
    kp_campaign_stats s;
    if (c == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    err = campaign_load(o, id, c, e);
    if (err == KP_OK && (err = mk(o)->campaign_stats(o->st, c, 0, &s))) err = storage(o, err, e);
    if (err == KP_OK) {
        kp_buf_reset(out);
        campaign_json(c, out);
        progress_json(&s, out);
        kp_buf_puts(out, "}");
    }
    free(c);
    return err;
}

kp_err kp_campaigns_list(kp_office *o, kp_buf *out, kp_error *e)
{
    enum { LIST_MAX = 200 };
    kp_err err = kp_office_require_back_office(o, KP_PERM_CAMPAIGN_MANAGE, e);
    if (err) return err;
    kp_campaign *cs = malloc(LIST_MAX * sizeof *cs);
    if (cs == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    size_t n = 0;
    if ((err = mk(o)->campaign_list(o->st, 0, cs, LIST_MAX, &n))) {
        free(cs);
        return storage(o, err, e);
    }
    kp_buf_reset(out);
    kp_buf_puts(out, "{\"campaigns\":[");
    for (size_t i = 0; i < n; i++) {
        if (i) kp_buf_puts(out, ",");
        campaign_json(&cs[i], out);
        kp_buf_puts(out, "}");
    }
    kp_buf_puts(out, "]}");
    free(cs);
    return KP_OK;
}

/* The segment's filter, parsed at o->now. */
static kp_err campaign_filter(kp_office *o, const kp_campaign *c, seg_filter *f, char *text,
                              size_t cap, kp_error *e)
{
    kp_segment g;
    kp_err err = mk(o)->segment_get(o->st, c->segment_id, &g);
    if (err == KP_ERR_NOT_FOUND)
        return kp_error_set(e, KP_ERR_NOT_FOUND, "segment",
                            "campaign %lld's segment %lld was deleted", (long long)c->id,
                            (long long)c->segment_id);
    if (err) return storage(o, err, e);
    json_t *v = json_loads(g.filter, 0, NULL);
    err = filter_parse(o, v, f, e);
    json_decref(v);
    if (text) snprintf(text, cap, "%s", g.filter);
    return err;
}

typedef struct control_count {
    kp_office *o;
    const kp_campaign *c;
    int64_t control;
    /* A grant by a rule: each targeted member's points, in the run's order
     * (customer id), through the run's own computation (rule_points). */
    const kp_program *p;
    const kp_rule *rule;
    kp_time at;
    int64_t *amounts;
    size_t n, cap;
    char why[192]; /* why the first member given 0 got 0 */
} control_count;

static kp_err count_control(void *ctx, const kp_segment_hit *h, kp_error *e)
{
    control_count *cc = ctx;
    if (kp_campaign_is_control(cc->c->id, h->customer_id, cc->c->control_bp)) {
        cc->control++;
        return KP_OK;
    }
    if (cc->rule == NULL) return KP_OK;
    kp_grant_plan gp;
    char why[192] = "";
    kp_err err =
        rule_points(cc->o, cc->p, cc->rule, h->account_id, cc->at, &gp, why, sizeof why, e);
    if (err) return err;
    if (gp.amount == 0 && cc->why[0] == '\0') snprintf(cc->why, sizeof cc->why, "%s", why);
    if (cc->n == cc->cap) {
        size_t cap = cc->cap ? cc->cap * 2 : 1024;
        int64_t *a = realloc(cc->amounts, cap * sizeof *a);
        if (a == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
        cc->amounts = a;
        cc->cap = cap;
    }
    cc->amounts[cc->n++] = gp.amount;
    return KP_OK;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

kp_err kp_campaign_preview(kp_office *o, int64_t id, kp_buf *out, kp_error *e)
{
    kp_err err = kp_office_require_back_office(o, KP_PERM_CAMPAIGN_MANAGE, e);
    if (err) return err;
    kp_campaign *c = malloc(sizeof *c);
    seg_filter *f = malloc(sizeof *f);
    seg_result *r = malloc(sizeof *r);
    kp_buf part;
    kp_buf_init(&part, 512 * 1024);
    if (!c || !f || !r) err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    if (err == KP_OK) err = campaign_load(o, id, c, e);
    if (err == KP_OK) err = campaign_filter(o, c, f, NULL, 0, e);
    control_count cc;
    memset(&cc, 0, sizeof cc);
    cc.o = o;
    cc.c = c;
    const kp_program *gprog = NULL;
    kp_program *owned = NULL;
    if (err == KP_OK && c->rule[0]) {
        err = campaign_program(o, c, &gprog, &owned, e);
        if (err == KP_OK && (cc.rule = campaign_rule(gprog, c->rule, "grant.rule", e)) == NULL)
            err = KP_ERR_INVALID;
        cc.p = gprog;
        cc.at = c->started_at ? c->started_at : o->now;
    }
    if (err == KP_OK) err = seg_run(o, f, count_control, &cc, r, e);
    if (err == KP_OK) {
        int64_t targeted = r->count - cc.control;
        int64_t grants = targeted;
        if (c->points && c->budget && c->budget / c->points < grants)
            grants = c->budget / c->points;
        int64_t points = grants * c->points;
        /* By a rule: the run's walk in customer order, each member's
         * amount granted while it fits the budget (0: skipped). */
        int64_t zero = 0, over = 0, gmin = 0, gmax = 0, median = 0;
        if (cc.rule) {
            grants = 0;
            points = 0;
            size_t k = 0;
            for (size_t i = 0; i < cc.n; i++) {
                int64_t a = cc.amounts[i];
                if (a == 0) {
                    zero++;
                } else if (c->budget && points + a > c->budget) {
                    over++;
                } else {
                    points += a;
                    grants++;
                    cc.amounts[k++] = a;
                }
            }
            qsort(cc.amounts, k, sizeof *cc.amounts, cmp_i64);
            if (k) {
                gmin = cc.amounts[0];
                gmax = cc.amounts[k - 1];
                median =
                    k % 2 ? cc.amounts[k / 2] : (cc.amounts[k / 2 - 1] + cc.amounts[k / 2]) / 2;
            }
        }
        int64_t mpp = gprog ? gprog->minor_per_point : o->program ? o->program->minor_per_point : 0;
        kp_buf_reset(out);
        kp_buf_puts(out, "{");
        kp_buf_json_kv_i64(out, "campaign", c->id, false);
        err = result_json(o, r, out, e);
        kp_buf_json_kv_i64(out, "control", cc.control, true);
        kp_buf_json_kv_i64(out, "targeted", targeted, true);
        kp_buf_json_kv_i64(out, "grants", has_grant(c) ? grants : 0, true);
        kp_buf_json_kv_i64(out, "over_budget",
                           cc.rule     ? over
                           : c->points ? targeted - grants
                                       : 0,
                           true);
        if (cc.rule) {
            /* The distribution of the amounts granted (rounded down median
             * of an even count: the mean of the middle two). */
            kp_buf_puts(out, ",\"distribution\":{");
            kp_buf_json_kv_str(out, "rule", cc.rule->id, false);
            kp_buf_json_kv_i64(out, "program_version", gprog->version, true);
            kp_buf_json_kv_i64(out, "members", grants, true);
            kp_buf_json_kv_i64(out, "min", gmin, true);
            kp_buf_json_kv_i64(out, "median", median, true);
            kp_buf_json_kv_i64(out, "max", gmax, true);
            kp_buf_json_kv_i64(out, "zero", zero, true);
            kp_buf_json_kv_str(out, "zero_why", cc.why, true);
            kp_buf_puts(out, "}");
        }
        kp_buf_json_kv_i64(out, "points", points, true);
        kp_buf_json_kv_i64(out, "minor_per_point", mpp, true);
        kp_buf_json_kv_i64(out, "cost_minor", points * mpp, true);
        kp_buf_json_kv_str(out, "currency", o->program ? o->program->currency : "", true);
        /* What the program's burn limits say of the kind granted. */
        kp_buf_puts(out, ",\"limits\":[");
        size_t nl = 0;
        for (size_t i = 0; has_grant(c) && o->program && i < o->program->n_rules; i++) {
            const kp_rule *ru = &o->program->rules[i];
            if (ru->kind != KP_RULE_BURN_LIMIT) continue;
            if (ru->point_kind[0] && strcmp(ru->point_kind, c->kind) != 0) continue;
            kp_buf_puts(out, nl++ ? ",{" : "{");
            kp_buf_json_kv_str(out, "rule", ru->id, false);
            kp_buf_json_kv_str(out, "category", ru->category, true);
            kp_buf_printf(out, ",\"max_share\":%d.%04d", (int)(ru->rate_bp / 10000),
                          (int)(ru->rate_bp % 10000));
            kp_buf_puts(out, "}");
        }
        kp_buf_puts(out, "],\"messages\":[");
        json_t *m = c->message[0] ? json_loads(c->message, 0, NULL) : NULL;
        size_t nm = 0;
        for (size_t l = 0; err == KP_OK && m && LANGS[l]; l++) {
            const char *text =
                json_string_value(json_object_get(json_object_get(m, "text"), LANGS[l]));
            if (text == NULL) continue;
            const char *subject =
                json_string_value(json_object_get(json_object_get(m, "subject"), LANGS[l]));
            const char *html =
                json_string_value(json_object_get(json_object_get(m, "html"), LANGS[l]));
            kp_channel chans[2] = {KP_CHANNEL_EMAIL, KP_CHANNEL_SMS};
            for (int ch = 0; err == KP_OK && ch < 2; ch++) {
                bool sms = chans[ch] == KP_CHANNEL_SMS;
                err = kp_office_template_preview(o, KP_NOTIFY_CAMPAIGN, chans[ch], LANGS[l],
                                                 sms || !subject ? NULL : subject, text,
                                                 sms || !html ? NULL : html, &part, e);
                if (err == KP_OK) {
                    if (nm++) kp_buf_puts(out, ",");
                    kp_buf_append(out, part.data, part.len);
                }
            }
        }
        json_decref(m);
        kp_buf_puts(out, "]}");
    }
    kp_buf_release(&part);
    free(cc.amounts);
    free(owned);
    free(c), free(f), free(r);
    return err;
}

kp_err kp_campaign_start(kp_office *o, int64_t id, const char *body, size_t len, kp_buf *out,
                         kp_error *e)
{
    static const char *const keys[] = {"at", NULL};
    kp_err err = kp_office_require_back_office(o, KP_PERM_CAMPAIGN_MANAGE, e);
    if (err) return err;
    json_t *root = people_json_load(body, len, e);
    if (root == NULL) return e->code ? e->code : KP_ERR_INVALID;
    kp_campaign *c = malloc(sizeof *c);
    if (c == NULL) err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    if (err == KP_OK) err = keys_check(root, "body", keys, e);
    if (err == KP_OK) err = campaign_load(o, id, c, e);
    if (err == KP_OK && c->state != KP_CAMPAIGN_DRAFT)
        err = kp_error_set(e, KP_ERR_CONFLICT, "campaign", "is %s already: only a draft starts",
                           kp_campaign_state_name(c->state));
    kp_time at = o->now;
    json_t *v = json_object_get(root, "at");
    if (err == KP_OK && v && !json_is_null(v) &&
        (!json_is_string(v) || !kp_time_parse(json_string_value(v), &at)))
        err = kp_error_set(e, KP_ERR_INVALID, "at",
                           "must be a time (RFC 3339, \"2027-03-01T09:00:00+03:00\"), or absent "
                           "for now");
    if (err == KP_OK) {
        kp_segment g;
        kp_err ge = mk(o)->segment_get(o->st, c->segment_id, &g);
        if (ge == KP_ERR_NOT_FOUND)
            err = kp_error_set(e, KP_ERR_CONFLICT, "segment", "segment %lld was deleted",
                               (long long)c->segment_id);
        else if (ge)
            err = storage(o, ge, e);
    }
    if (err == KP_OK) {
        c->state = KP_CAMPAIGN_SCHEDULED;
        c->start_at = at < o->now ? o->now : at;
        if ((err = mk(o)->campaign_update(o->st, c))) err = storage(o, err, e);
    }
    if (err == KP_OK) {
        char target[48], ts[32];
        snprintf(target, sizeof target, "campaign:%lld", (long long)c->id);
        kp_time_format(c->start_at, ts, sizeof ts);
        if ((err = kp_office_audit(o, "campaign.start", target, "at=%s", ts)))
            err = storage(o, err, e);
    }
    if (err == KP_OK) {
        kp_buf_reset(out);
        campaign_json(c, out);
        kp_buf_puts(out, "}");
    }
    json_decref(root);
    free(c);
    return err;
}

kp_err kp_campaign_cancel(kp_office *o, int64_t id, kp_buf *out, kp_error *e)
{
    kp_err err = kp_office_require_back_office(o, KP_PERM_CAMPAIGN_MANAGE, e);
    if (err) return err;
    kp_campaign *c = malloc(sizeof *c);
    if (c == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    err = campaign_load(o, id, c, e);
    if (err == KP_OK && (c->state == KP_CAMPAIGN_DONE || c->state == KP_CAMPAIGN_CANCELLED))
        err = kp_error_set(e, KP_ERR_CONFLICT, "campaign", "is %s already",
                           kp_campaign_state_name(c->state));
    if (err == KP_OK) {
        c->state = KP_CAMPAIGN_CANCELLED;
        c->finished_at = o->now;
        snprintf(c->note, sizeof c->note, "cancelled by %s", o->actor.name);
        if ((err = mk(o)->campaign_update(o->st, c))) err = storage(o, err, e);
    }
    if (err == KP_OK) {
        char target[48];
        snprintf(target, sizeof target, "campaign:%lld", (long long)c->id);
        if ((err = kp_office_audit(o, "campaign.cancel", target, "granted=%lld",
                                   (long long)c->granted)))
            err = storage(o, err, e);
    }
    if (err == KP_OK) {
        kp_buf_reset(out);
        campaign_json(c, out);
        kp_buf_puts(out, "}");
    }
    free(c);
    return err;
}

kp_err kp_campaign_results(kp_office *o, int64_t id, int64_t window_days, kp_buf *out, kp_error *e)
{
    kp_err err = kp_office_require_back_office(o, KP_PERM_CAMPAIGN_MANAGE, e);
    if (err) return err;
    if (window_days < 1 || window_days > 366)
        return kp_error_set(e, KP_ERR_INVALID, "window_days",
                            "must be whole days before and after the start, 1 to 366");
    kp_campaign *c = malloc(sizeof *c);
    kp_campaign_stats s;
    if (c == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    err = campaign_load(o, id, c, e);
    if (err == KP_OK && (err = mk(o)->campaign_stats(o->st, c, window_days * KP_DAY_SECONDS, &s)))
        err = storage(o, err, e);
    if (err == KP_OK) {
        int64_t groups[2] = {s.members - s.by_state[KP_MEMBER_CONTROL],
                             s.by_state[KP_MEMBER_CONTROL]};
        static const char *const names[2] = {"targeted", "control"};
        kp_buf_reset(out);
        kp_buf_puts(out, "{");
        kp_buf_json_kv_i64(out, "campaign", c->id, false);
        kp_buf_json_kv_str(out, "state", kp_campaign_state_name(c->state), true);
        people_time_kv(out, "started_at", c->started_at);
        kp_buf_json_kv_i64(out, "window_days", window_days, true);
        kp_buf_json_kv_i64(out, "grants", s.by_state[KP_MEMBER_GRANTED], true);
        kp_buf_json_kv_i64(out, "points", s.points, true);
        /* Used = spent + expired; expired: what the expiry took from the
         * campaign's lots (lots.expired; 0 for expiries before the column). */
        kp_buf_json_kv_i64(out, "points_used", s.used, true);
        kp_buf_json_kv_i64(out, "points_spent", s.used - s.expired, true);
        kp_buf_json_kv_i64(out, "points_expired", s.expired, true);
        kp_buf_json_kv_i64(out, "messages_sent", s.messages_sent, true);
        kp_buf_json_kv_i64(out, "messages_pending", s.messages_pending, true);
        for (int g = 0; g < 2; g++) {
            kp_buf_puts(out, ",");
            kp_buf_json_key(out, names[g]);
            kp_buf_puts(out, "{");
            kp_buf_json_kv_i64(out, "customers", groups[g], false);
            kp_buf_json_kv_i64(out, "revenue_before_minor", s.revenue_before[g], true);
            kp_buf_json_kv_i64(out, "revenue_after_minor", s.revenue_after[g], true);
            /* Per customer, rounded down: comparable across group sizes. */
            kp_buf_json_kv_i64(out, "per_customer_before_minor",
                               groups[g] ? s.revenue_before[g] / groups[g] : 0, true);
            kp_buf_json_kv_i64(out, "per_customer_after_minor",
                               groups[g] ? s.revenue_after[g] / groups[g] : 0, true);
            kp_buf_puts(out, "}");
        }
        kp_buf_puts(out, "}");
    }
    free(c);
    return err;
}

/* ------------------------------------------------------------------ run */

typedef struct snapshot {
    kp_office *o;
    const kp_campaign *c;
    kp_campaign_member batch[256];
    size_t n;
} snapshot;

static kp_err snapshot_flush(snapshot *s, kp_error *e)
{
    kp_err err = s->n ? mk(s->o)->members_add(s->o->st, s->c->id, s->batch, s->n) : KP_OK;
    s->n = 0;
    return err ? storage(s->o, err, e) : KP_OK;
}

static kp_err snapshot_hit(void *ctx, const kp_segment_hit *h, kp_error *e)
{
    snapshot *s = ctx;
    kp_campaign_member *m = &s->batch[s->n++];
    memset(m, 0, sizeof *m);
    m->customer_id = h->customer_id;
    m->account_id = h->account_id;
    m->state = kp_campaign_is_control(s->c->id, h->customer_id, s->c->control_bp)
                   ? KP_MEMBER_CONTROL
                   : KP_MEMBER_PENDING;
    return s->n == sizeof s->batch / sizeof s->batch[0] ? snapshot_flush(s, e) : KP_OK;
}

/* A campaign whose segment is gone or whose filter no longer holds: not
 * started, saying why. */
static kp_err campaign_refuse(kp_office *o, kp_campaign *c, const char *why, kp_error *e)
{
    c->state = KP_CAMPAIGN_CANCELLED;
    c->finished_at = o->now;
    snprintf(c->note, sizeof c->note, "not started: %.240s", why);
    kp_err err = mk(o)->campaign_update(o->st, c);
    return err ? storage(o, err, e) : KP_OK;
}

/* The members of a list prepared outside the writer, written in batches. */
static kp_err start_write(kp_office *o, const kp_campaign *c, const kp_campaign_list *start,
                          kp_error *e)
{
    enum { BATCH = 1024 };
    for (size_t at = 0; at < start->n; at += BATCH) {
        size_t n = start->n - at < BATCH ? start->n - at : BATCH;
        kp_err err = mk(o)->members_add(o->st, c->id, start->members + at, n);
        if (err) return storage(o, err, e);
    }
    return KP_OK;
}

static kp_err campaign_started(kp_office *o, kp_campaign *c, long long members, bool reader,
                               kp_error *e);

/* The start: the list taken (evaluated here, or prepared on a reader), the
 * next run of a recurring one scheduled. */
static kp_err campaign_begin(kp_office *o, kp_campaign *c, const kp_campaign_list *start,
                             kp_error *e)
{
    if (start) {
        if (start->refused) return campaign_refuse(o, c, start->why, e);
        snprintf(c->filter, sizeof c->filter, "%s", start->filter);
    }
    seg_filter *f = start ? NULL : malloc(sizeof *f);
    seg_result *r = start ? NULL : malloc(sizeof *r);
    snapshot *s = start ? NULL : malloc(sizeof *s);
    kp_err err = (!start && (!f || !r || !s))
                     ? kp_error_set(e, KP_ERR_NOMEM, "", "out of memory")
                     : KP_OK;
    if (err == KP_OK && start) err = start_write(o, c, start, e);
    if (err == KP_OK && !start && c->state == KP_CAMPAIGN_STARTING) {
        /* A start in chunks cut short, evaluated here now: its part of a
         * list goes first. */
        size_t gone;
        if ((err = mk(o)->members_delete(o->st, c->id, SIZE_MAX, &gone))) err = storage(o, err, e);
    }
    if (err == KP_OK && !start) {
        err = campaign_filter(o, c, f, c->filter, sizeof c->filter, e);
        if (err == KP_ERR_NOT_FOUND || err == KP_ERR_INVALID) {
            /* Its segment is gone, or its filter no longer holds (a tier
             * or an attribute the running program dropped): nothing to
             * run, and it says why rather than failing at every tick. */
            char why[320];
            snprintf(why, sizeof why, "%.60s%s%.240s", e->field, e->field[0] ? ": " : "",
                     e->message);
            memset(e, 0, sizeof *e);
            free(f), free(r), free(s);
            return campaign_refuse(o, c, why, e);
        }
    }
    if (err == KP_OK && !start) {
        s->o = o;
        s->c = c;
        s->n = 0;
        err = seg_run(o, f, snapshot_hit, s, r, e);
        if (err == KP_OK) err = snapshot_flush(s, e);
    }
    if (err == KP_OK)
        err = campaign_started(o, c, start ? (long long)start->n : (long long)r->count,
                               start != NULL, e);
    free(f), free(r), free(s);
    return err;
}

/* The list written: the campaign RUNNING, the next run of a recurring one
 * scheduled, the audit entry (which says where the segment was evaluated:
 * "reader", the scheduler's read connection, or "writer"). */
static kp_err campaign_started(kp_office *o, kp_campaign *c, long long members, bool reader,
                               kp_error *e)
{
    if (c->rule[0]) {
        /* The program version whose rule grants it, pinned: a resumed run,
         * or one under a newer program, grants the same amounts. */
        kp_error why;
        memset(&why, 0, sizeof why);
        if (campaign_rule(o->program, c->rule, "grant.rule", &why) == NULL) {
            char text[320];
            snprintf(text, sizeof text, "%.60s: %.250s", why.field, why.message);
            return campaign_refuse(o, c, text, e);
        }
        c->program_version = o->program->version;
    }
    c->state = KP_CAMPAIGN_RUNNING;
    c->started_at = o->now;
    kp_err err = mk(o)->campaign_update(o->st, c);
    if (err) err = storage(o, err, e);
    if (err == KP_OK && c->every_months > 0) {
        kp_campaign *next = malloc(sizeof *next);
        if (next == NULL) err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
        if (err == KP_OK) {
            *next = *c;
            next->id = 0;
            next->filter[0] = next->note[0] = '\0';
            next->state = KP_CAMPAIGN_SCHEDULED;
            next->granted = 0;
            next->program_version = 0; /* each run pins its own */
            next->started_at = next->finished_at = 0;
            next->created_at = o->now;
            next->parent_id = c->parent_id ? c->parent_id : c->id;
            /* The first of its months after now: a server down for months
             * runs the missed month once, not every one of them. */
            int k = 1;
            next->start_at = kp_time_add_months(c->start_at, c->every_months);
            while (next->start_at <= o->now && k < 1200)
                next->start_at = kp_time_add_months(c->start_at, c->every_months * ++k);
            if ((err = mk(o)->campaign_insert(o->st, next))) err = storage(o, err, e);
        }
        free(next);
    }
    if (err == KP_OK) {
        char target[48];
        snprintf(target, sizeof target, "campaign:%lld", (long long)c->id);
        if ((err = kp_office_audit(o, "campaign.run", target, "members=%lld evaluated=%s", members,
                                   reader ? "reader" : "writer")))
            err = storage(o, err, e);
    }
    return err;
}

/* The grant of one member: a KP_OP_GRANT of `points` into `rule_lot` (a
 * grant by rule `rule`: the lot kp_grant_prepare made) or, with no rule,
 * of c->points of c->kind valid c->validity_days, its receipt the grant
 * key, in the caller's transaction. *op_id is the operation (an earlier
 * one when the key was used already). */
static kp_err member_grant(kp_office *o, const kp_campaign *c, const kp_campaign_member *m,
                           const kp_rule *rule, int64_t points, const kp_lot *rule_lot,
                           int64_t *op_id, kp_error *e)
{
    char key[96];
    snprintf(key, sizeof key, "campaign/%lld/%lld", (long long)c->id, (long long)m->customer_id);
    const kp_triggers_ops *t = o->st->ops->triggers;
    kp_err err = t->grant_key_find(o->st, key, op_id);
    if (err == KP_OK) return KP_OK;
    if (err != KP_ERR_NOT_FOUND) return storage(o, err, e);
    kp_scratch *sc = o->sc;
    if ((err = o->st->ops->account_load(o->st, m->account_id, &sc->account)))
        return storage(o, err, e);
    kp_lot lot;
    memset(&lot, 0, sizeof lot);
    if (rule) {
        lot = *rule_lot;
    } else {
        people_credit_lot(o, c->kind, &lot);
        if (c->validity_days > 0)
            lot.expires_at = o->now + (kp_time)c->validity_days * KP_DAY_SECONDS;
    }
    if ((err = kp_ledger_plan_move(&sc->account, KP_OP_GRANT, KP_SYS_ISSUED, points, &lot, o->now,
                                   &sc->plan, e)))
        return err;
    char text[200];
    if (rule)
        snprintf(text, sizeof text, "campaign %lld (%.60s): rule %s on campaign: %lld %s points",
                 (long long)c->id, c->name, rule->id, (long long)points, lot.kind);
    else
        snprintf(text, sizeof text, "campaign %lld (%.60s): %lld %s points", (long long)c->id,
                 c->name, (long long)points, c->kind);
    kp_op_row row;
    memset(&row, 0, sizeof row);
    row.type = KP_OP_GRANT;
    row.account_id = m->account_id;
    snprintf(row.receipt, sizeof row.receipt, "%s", key);
    row.program_version = rule ? c->program_version : o->program ? o->program->version : 0;
    row.at = o->now;
    row.earned = points;
    row.points = points;
    row.detail = text;
    if ((err = o->st->ops->op_insert(o->st, &row))) return storage(o, err, e);
    if ((err = o->st->ops->plan_apply(o->st, row.id, &sc->plan, o->now))) return storage(o, err, e);
    /* The operator funds a campaign's grant (coalition.h); a rule naming a
     * partner, that partner, as the program's own grants. */
    if (o->program && (err = kp_book_credit(o->st, o->program, rule ? lot.partner : KP_OPERATOR,
                                            points, row.id, o->now, e)))
        return err;
    if ((err = t->grant_key_insert(o->st, key, row.id, o->now))) return storage(o, err, e);
    *op_id = row.id;
    return KP_OK;
}

/* The texts of the campaign's message as the outbox's payload. */
static char *message_payload(const kp_campaign *c)
{
    json_t *m = json_loads(c->message, 0, NULL);
    if (m == NULL) return NULL;
    char name[32];
    snprintf(name, sizeof name, "#%lld", (long long)c->id);
    json_object_set_new(m, "name", json_string(name));
    static const char *const parts[] = {"subject", "text", "html"};
    for (int i = 0; i < 3; i++)
        if (json_object_get(m, parts[i]) == NULL) json_object_set_new(m, parts[i], json_object());
    char *s = json_dumps(m, JSON_COMPACT);
    json_decref(m);
    return s;
}

static kp_err campaign_grant_step(kp_office *o, kp_campaign *c, size_t step, bool *more,
                                  kp_error *e)
{
    kp_campaign_member *ms = malloc(step * sizeof *ms);
    kp_customer_row *row = malloc(sizeof *row);
    char *payload = NULL;
    size_t n = 0;
    kp_err err = (!ms || !row) ? kp_error_set(e, KP_ERR_NOMEM, "", "out of memory") : KP_OK;
    if (err == KP_OK &&
        (err = mk(o)->members_list(o->st, c->id, KP_MEMBER_PENDING, 0, ms, step, &n)))
        err = storage(o, err, e);
    if (err == KP_OK && n == 0) {
        c->state = KP_CAMPAIGN_DONE;
        c->finished_at = o->now;
        if ((err = mk(o)->campaign_update(o->st, c))) err = storage(o, err, e);
        char target[48];
        snprintf(target, sizeof target, "campaign:%lld", (long long)c->id);
        if (err == KP_OK && (err = kp_office_audit(o, "campaign.done", target, "granted=%lld %s",
                                                   (long long)c->granted, c->note)))
            err = storage(o, err, e);
        free(ms), free(row);
        return err;
    }
    if (err == KP_OK && c->message[0] && (payload = message_payload(c)) == NULL)
        err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    /* A grant by a rule: the rule of the version the start pinned. */
    const kp_program *gprog = NULL;
    kp_program *owned = NULL;
    const kp_rule *rule = NULL;
    if (err == KP_OK && c->rule[0]) {
        err = campaign_program(o, c, &gprog, &owned, e);
        if (err == KP_OK && (rule = campaign_rule(gprog, c->rule, "grant.rule", e)) == NULL)
            err = KP_ERR_INVALID;
    }
    int64_t budget_stopped = 0;
    char zero_why[192] = "";
    for (size_t i = 0; err == KP_OK && i < n; i++) {
        kp_campaign_member *m = &ms[i];
        kp_err ge = o->st->ops->people->customer_get(o->st, m->customer_id, row);
        if (ge && ge != KP_ERR_NOT_FOUND) {
            err = storage(o, ge, e);
            break;
        }
        int64_t amount = c->points;
        kp_grant_plan gp;
        memset(&gp, 0, sizeof gp);
        char why[192] = "";
        bool gone = ge == KP_ERR_NOT_FOUND || row->state == KP_CUSTOMER_ERASED;
        /* By a rule: the member's amount, their figures read as at the
         * start (the account now: a family joined since moved it). */
        if (!gone && rule &&
            (err = rule_points(o, gprog, rule, row->account_id, c->started_at, &gp, why, sizeof why,
                               e)))
            break;
        if (!gone && rule) amount = gp.amount;
        if (gone || (rule && amount == 0)) {
            m->state = KP_MEMBER_SKIPPED;
            if (!gone && zero_why[0] == '\0') snprintf(zero_why, sizeof zero_why, "%s", why);
        } else if (has_grant(c) && c->budget && c->granted + amount > c->budget) {
            m->state = KP_MEMBER_BUDGET;
            budget_stopped++;
        } else {
            /* The account now: a family joined since the list moved it. */
            m->account_id = row->account_id;
            if (has_grant(c)) err = member_grant(o, c, m, rule, amount, &gp.lot, &m->op_id, e);
            if (err == KP_OK && payload) {
                char key[KP_NOTIFY_KEY_MAX];
                bool queued;
                snprintf(key, sizeof key, "campaign:#%lld:%lld", (long long)c->id,
                         (long long)m->customer_id);
                err = kp_office_campaign_event(o, key, m->account_id, m->customer_id, payload,
                                               &queued, e);
            }
            m->state = KP_MEMBER_GRANTED;
            m->points = amount;
            c->granted += amount;
        }
        if (err == KP_OK && (err = mk(o)->member_settle(o->st, c->id, m))) err = storage(o, err, e);
    }
    if (err == KP_OK && budget_stopped && c->note[0] == '\0')
        snprintf(c->note, sizeof c->note,
                 "budget of %lld points reached: the rest of the list was not granted",
                 (long long)c->budget);
    /* A member the rule gives 0 is skipped: the note says why (the first). */
    if (err == KP_OK && zero_why[0] && c->note[0] == '\0')
        snprintf(c->note, sizeof c->note, "members given 0 points were skipped: %.200s", zero_why);
    if (err == KP_OK && (err = mk(o)->campaign_update(o->st, c))) err = storage(o, err, e);
    free(owned);
    free(payload);
    free(ms), free(row);
    *more = err == KP_OK;
    return err;
}

kp_err kp_campaign_step(kp_office *o, int64_t id, size_t step, bool *more, kp_error *e)
{
    return kp_campaign_step_with(o, id, step, NULL, more, e);
}

/* The prepared list's members: grown as the segment's run finds them. */
static kp_err start_hit(void *ctx, const kp_segment_hit *h, kp_error *e)
{
    kp_campaign_list *s = ((void **)ctx)[0];
    const kp_campaign *c = ((void **)ctx)[1];
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        kp_campaign_member *m = realloc(s->members, cap * sizeof *m);
        if (m == NULL)
            return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory for %zu members of campaign %lld",
                                s->n, (long long)c->id);
        s->members = m;
        s->cap = cap;
    }
    kp_campaign_member *m = &s->members[s->n++];
    memset(m, 0, sizeof *m);
    m->customer_id = h->customer_id;
    m->account_id = h->account_id;
    m->state = kp_campaign_is_control(c->id, h->customer_id, c->control_bp) ? KP_MEMBER_CONTROL
                                                                          : KP_MEMBER_PENDING;
    return KP_OK;
}

void kp_campaign_list_free(kp_campaign_list *s)
{
    if (s == NULL) return;
    free(s->members);
    free(s);
}

kp_err kp_campaign_prepare(kp_office *o, int64_t id, kp_campaign_list **out, kp_error *e)
{
    *out = NULL;
    kp_campaign *c = malloc(sizeof *c);
    kp_campaign_list *s = calloc(1, sizeof *s);
    seg_filter *f = malloc(sizeof *f);
    seg_result *r = malloc(sizeof *r);
    kp_err err = (!c || !s || !f || !r) ? kp_error_set(e, KP_ERR_NOMEM, "", "out of memory")
                                        : campaign_load(o, id, c, e);
    bool due = err == KP_OK && ((c->state == KP_CAMPAIGN_SCHEDULED && c->start_at <= o->now) ||
                                c->state == KP_CAMPAIGN_STARTING);
    if (due) {
        s->id = id;
        err = campaign_filter(o, c, f, s->filter, sizeof s->filter, e);
        if (err == KP_ERR_NOT_FOUND || err == KP_ERR_INVALID) {
            s->refused = true;
            snprintf(s->why, sizeof s->why, "%.60s%s%.240s", e->field, e->field[0] ? ": " : "",
                     e->message);
            memset(e, 0, sizeof *e);
            err = KP_OK;
        } else if (err == KP_OK) {
            void *ctx[2] = {s, c};
            err = seg_run(o, f, start_hit, ctx, r, e);
        }
    }
    free(c), free(f), free(r);
    if (err == KP_OK && due) {
        *out = s;
        return KP_OK;
    }
    kp_campaign_list_free(s);
    return err;
}

kp_err kp_campaign_step_with(kp_office *o, int64_t id, size_t step, const kp_campaign_list *start,
                             bool *more, kp_error *e)
{
    if (step == 0 || step > KP_CAMPAIGN_STEP_MAX) step = KP_CAMPAIGN_STEP;
    *more = false;
    /* On PostgreSQL, one server at a time works on a campaign (the
     * scheduler's advisory lock of its job); another skips it. */
    char job[48];
    kp_time done_until;
    int64_t cursor;
    snprintf(job, sizeof job, "campaign:%lld", (long long)id);
    kp_err err = o->st->ops->triggers->job_state_get(o->st, job, &done_until, &cursor);
    if (err == KP_ERR_BUSY) return KP_OK;
    if (err && err != KP_ERR_NOT_FOUND) return storage(o, err, e);
    kp_campaign *c = malloc(sizeof *c);
    if (c == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    err = campaign_load(o, id, c, e);
    if (err == KP_OK && ((c->state == KP_CAMPAIGN_SCHEDULED && c->start_at <= o->now) ||
                         c->state == KP_CAMPAIGN_STARTING)) {
        /* (A STARTING one here: its start in chunks was cut short and its
         * list could not be prepared again on a reader.) */
        err = campaign_begin(
            o, c, start && start->id == id && c->state == KP_CAMPAIGN_SCHEDULED ? start : NULL, e);
        *more = err == KP_OK && c->state == KP_CAMPAIGN_RUNNING;
    } else if (err == KP_OK && c->state == KP_CAMPAIGN_RUNNING) {
        err = campaign_grant_step(o, c, step, more, e);
    }
    free(c);
    return err;
}

kp_err kp_campaign_start_chunk(kp_office *o, const kp_campaign_list *start, size_t chunk,
                               const kp_campaign_start_pos *at, kp_campaign_start_pos *next,
                               bool *more, kp_error *e)
{
    *more = false;
    *next = *at;
    if (chunk == 0) chunk = start->n ? start->n : 1;
    char job[48];
    kp_time done_until;
    int64_t cursor;
    snprintf(job, sizeof job, "campaign:%lld", (long long)start->id);
    const kp_triggers_ops *t = o->st->ops->triggers;
    kp_err err = t->job_state_get(o->st, job, &done_until, &cursor);
    if (err == KP_ERR_BUSY) return KP_OK;
    if (err && err != KP_ERR_NOT_FOUND) return storage(o, err, e);
    kp_campaign *c = malloc(sizeof *c);
    if (c == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    err = campaign_load(o, start->id, c, e);
    if (err == KP_OK && !at->begun) {
        bool due = (c->state == KP_CAMPAIGN_SCHEDULED && c->start_at <= o->now) ||
                   c->state == KP_CAMPAIGN_STARTING;
        size_t gone = 0;
        if (!due) {
            /* cancelled, or started by another server: nothing to do */
        } else if (start->refused) {
            err = campaign_refuse(o, c, start->why, e);
        } else if ((err = mk(o)->members_delete(o->st, c->id, chunk, &gone))) {
            err = storage(o, err, e);
        } else if (gone == chunk) {
            /* What a start cut short left: removed a chunk a job. */
            c->state = KP_CAMPAIGN_STARTING;
            if ((err = mk(o)->campaign_update(o->st, c))) err = storage(o, err, e);
            *more = err == KP_OK;
        } else {
            next->begun = true;
            next->written = 0;
            next->attempt = cursor + 1;
            c->state = KP_CAMPAIGN_STARTING;
            snprintf(c->filter, sizeof c->filter, "%s", start->filter);
            if ((err = t->job_state_set(o->st, job, done_until, next->attempt)))
                err = storage(o, err, e);
        }
        if (err || !next->begun) {
            free(c);
            return err;
        }
    } else if (err == KP_OK && (c->state != KP_CAMPAIGN_STARTING || cursor != at->attempt)) {
        /* Cancelled, or another attempt took over: this one stops. */
        free(c);
        return KP_OK;
    }
    size_t n = start->n - next->written < chunk ? start->n - next->written : chunk;
    if (err == KP_OK && n > 0 &&
        (err = mk(o)->members_add(o->st, c->id, start->members + next->written, n)))
        err = storage(o, err, e);
    if (err == KP_OK) {
        next->written += n;
        if (next->written < start->n) {
            if ((err = mk(o)->campaign_update(o->st, c))) err = storage(o, err, e);
            *more = err == KP_OK;
        } else {
            err = campaign_started(o, c, (long long)start->n, true, e);
            /* the grants follow: kp_campaign_step */
            *more = false;
        }
    }
    free(c);
    return err;
}
