/*
 * policy.c: the program's "notifications" section (docs/rules.md,
 * "Notifications"), which kinds are urgent or marketing, quiet hours in the
 * customer's day, and the retry backoff of a failed delivery.
 */
#include "notify/notify.h"
#include "program/program_section.h"
#include "program/program_fields.h"

#include <kopilka/clock.h>

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { CHANNEL_BITS = (1u << KP_CHANNEL_EMAIL) | (1u << KP_CHANNEL_SMS) };

void kp_notify_policy_default(kp_notify_policy *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->language, sizeof out->language, "ru");
    out->remind_days = 7;
    out->quiet_from_minute = 21 * 60;
    out->quiet_to_minute = 9 * 60;
    out->transactional_default = CHANNEL_BITS;
    out->marketing_default = 0;
    for (int k = 1; k < KP_NOTIFY__COUNT; k++) out->kinds |= 1u << k;
    out->login_code_ttl_seconds = 300;
    out->login_code_attempts = 5;
}

/* ---- parsing */

/* An integer member in [min, max], if present (program_get_int). */
static kp_err int_in(json_t *obj, const char *path, const char *key, int32_t min, int32_t max,
                     int32_t *out, kp_error *e)
{
    int64_t v = *out;
    kp_err err = program_get_int(obj, key, path, false, min, max, &v, e);
    if (err == KP_OK) *out = (int32_t)v;
    return err;
}

/* "HH:MM", 00:00 to 23:59, as minutes of the day. */
static kp_err clock_time(json_t *obj, const char *key, int32_t *minute, kp_error *e)
{
    json_t *v = json_object_get(obj, key);
    char field[64];
    snprintf(field, sizeof field, "notifications.quiet_hours.%s", key);
    const char *s = json_is_string(v) ? json_string_value(v) : "";
    bool ok = strlen(s) == 5 && s[2] == ':';
    for (int i = 0; ok && i < 5; i++)
        if (i != 2 && (s[i] < '0' || s[i] > '9')) ok = false;
    int h = ok ? (s[0] - '0') * 10 + (s[1] - '0') : 0;
    int m = ok ? (s[3] - '0') * 10 + (s[4] - '0') : 0;
    ok = ok && h < 24 && m < 60;
    if (!ok)
        return kp_error_set(e, KP_ERR_INVALID, field,
                            "is required: a time of day \"HH:MM\" from 00:00 to 23:59");
    *minute = h * 60 + m;
    return KP_OK;
}

static kp_err channel_list(json_t *obj, const char *key, uint32_t *out, kp_error *e)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL) return KP_OK;
    char field[64];
    snprintf(field, sizeof field, "notifications.channels.%s", key);
    if (!json_is_array(v))
        return kp_error_set(e, KP_ERR_INVALID, field,
                            "must be an array of channels: \"email\", \"sms\"");
    uint32_t bits = 0;
    size_t i;
    json_t *c;
    json_array_foreach(v, i, c)
    {
        kp_channel ch;
        if (!json_is_string(c) || !kp_channel_parse(json_string_value(c), &ch) ||
            ch == KP_CHANNEL_WEBHOOK) {
            snprintf(field, sizeof field, "notifications.channels.%s[%zu]", key, i);
            return kp_error_set(e, KP_ERR_INVALID, field,
                                "must be \"email\" or \"sms\" (webhooks follow their endpoints)");
        }
        if (bits & (1u << ch)) {
            snprintf(field, sizeof field, "notifications.channels.%s[%zu]", key, i);
            return kp_error_set(e, KP_ERR_INVALID, field, "\"%s\" is listed twice",
                                kp_channel_name(ch));
        }
        bits |= 1u << ch;
    }
    *out = bits;
    return KP_OK;
}

static kp_err kind_list(json_t *v, uint32_t *out, kp_error *e)
{
    if (!json_is_array(v))
        return kp_error_set(e, KP_ERR_INVALID, "notifications.kinds",
                            "must be an array of kinds (\"earned\", \"burnt\", ...)");
    uint32_t bits = 0;
    size_t i;
    json_t *k;
    json_array_foreach(v, i, k)
    {
        char field[64];
        snprintf(field, sizeof field, "notifications.kinds[%zu]", i);
        kp_notify_kind kind;
        if (!json_is_string(k) || !kp_notify_kind_parse(json_string_value(k), &kind)) {
            char list[400] = "";
            size_t used = 0;
            for (int j = 1; j < KP_NOTIFY__COUNT && used < sizeof list; j++)
                used += (size_t)snprintf(list + used, sizeof list - used, "%s%s",
                                         j > 1 ? ", " : "", kp_notify_kind_name((kp_notify_kind)j));
            return kp_error_set(e, KP_ERR_INVALID, field, "unknown kind; allowed: %s", list);
        }
        if (bits & (1u << kind))
            return kp_error_set(e, KP_ERR_INVALID, field, "\"%s\" is listed twice",
                                kp_notify_kind_name(kind));
        bits |= 1u << kind;
    }
    *out = bits;
    return KP_OK;
}

static kp_err parse_section(json_t *n, kp_notify_policy *p, kp_error *e)
{
    const char *path = "notifications";
    if (!json_is_object(n)) return kp_error_set(e, KP_ERR_INVALID, path, "must be an object");
    static const char *const keys[] = {"language", "remind_days", "quiet_hours", "channels",
                                       "kinds",    "login_code",  "note",        NULL};
    kp_err err = program_only_keys(n, keys, path, e);
    if (err) return err;

    json_t *lang = json_object_get(n, "language");
    if (lang) {
        const char *l = json_is_string(lang) ? json_string_value(lang) : "";
        if (strcmp(l, "ru") != 0 && strcmp(l, "en") != 0)
            return kp_error_set(e, KP_ERR_INVALID, "notifications.language",
                                "must be \"ru\" or \"en\"");
        snprintf(p->language, sizeof p->language, "%s", l);
    }
    if ((err = int_in(n, path, "remind_days", 0, 365, &p->remind_days, e))) return err;

    json_t *q = json_object_get(n, "quiet_hours");
    if (q) {
        if (!json_is_object(q))
            return kp_error_set(e, KP_ERR_INVALID, "notifications.quiet_hours",
                                "must be an object {\"from\": \"21:00\", \"to\": \"09:00\"} "
                                "(equal times: no quiet hours)");
        static const char *const qkeys[] = {"from", "to", "note", NULL};
        if ((err = program_only_keys(q, qkeys, "notifications.quiet_hours", e))) return err;
        if ((err = clock_time(q, "from", &p->quiet_from_minute, e))) return err;
        if ((err = clock_time(q, "to", &p->quiet_to_minute, e))) return err;
    }

    json_t *c = json_object_get(n, "channels");
    if (c) {
        if (!json_is_object(c))
            return kp_error_set(e, KP_ERR_INVALID, "notifications.channels",
                                "must be an object {\"transactional\": [...], \"marketing\": [...]}");
        static const char *const ckeys[] = {"transactional", "marketing", "note", NULL};
        if ((err = program_only_keys(c, ckeys, "notifications.channels", e))) return err;
        if ((err = channel_list(c, "transactional", &p->transactional_default, e))) return err;
        if ((err = channel_list(c, "marketing", &p->marketing_default, e))) return err;
    }

    json_t *k = json_object_get(n, "kinds");
    if (k && (err = kind_list(k, &p->kinds, e))) return err;

    json_t *lc = json_object_get(n, "login_code");
    if (lc) {
        const char *lpath = "notifications.login_code";
        if (!json_is_object(lc))
            return kp_error_set(e, KP_ERR_INVALID, lpath,
                                "must be an object {\"ttl_seconds\": 300, \"attempts\": 5}");
        static const char *const lkeys[] = {"ttl_seconds", "attempts", "note", NULL};
        if ((err = program_only_keys(lc, lkeys, lpath, e))) return err;
        if ((err = int_in(lc, lpath, "ttl_seconds", 30, 3600, &p->login_code_ttl_seconds, e)))
            return err;
        if ((err = int_in(lc, lpath, "attempts", 1, 20, &p->login_code_attempts, e))) return err;
    }
    return KP_OK;
}

kp_err kp_notify_policy_parse(const char *json, size_t len, kp_notify_policy *out, kp_error *e)
{
    kp_notify_policy_default(out);
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return kp_error_set(e, KP_ERR_INVALID, "", "not valid JSON at line %d: %s", jerr.line,
                            jerr.text);
    json_t *n = json_is_object(root) ? json_object_get(root, "notifications") : NULL;
    kp_err err = n ? parse_section(n, out, e) : KP_OK;
    json_decref(root);
    if (err) kp_notify_policy_default(out);
    return err;
}

/* ---- the section of a program version, parsed once (program_section.h) */

static kp_err parse_any(const char *json, size_t len, void *out, kp_error *e)
{
    return kp_notify_policy_parse(json, len, out, e);
}

static void defaults_any(void *out)
{
    kp_notify_policy_default(out);
}

static program_section_cache policies =
    PROGRAM_SECTION_CACHE(kp_notify_policy, parse_any, defaults_any);

const kp_notify_policy *kp_notify_policy_of(kp_store *st, const kp_program *program)
{
    return program_section_of(&policies, st, program);
}

/* ---- urgency, quiet hours, backoff */

bool kp_notify_urgent(kp_notify_kind kind)
{
    return kind == KP_NOTIFY_LOGIN_CODE || kind == KP_NOTIFY_CARD_BLOCKED ||
           kind == KP_NOTIFY_BURNT;
}

bool kp_notify_marketing(kp_notify_kind kind)
{
    return kind == KP_NOTIFY_CAMPAIGN || kind == KP_NOTIFY_BIRTHDAY;
}

kp_time kp_notify_quiet_next(const kp_notify_policy *p, const kp_notify_prefs *prefs,
                             int32_t program_offset_minutes, kp_time now)
{
    int64_t from = (int64_t)p->quiet_from_minute * 60, to = (int64_t)p->quiet_to_minute * 60;
    if (from == to) return now;
    int64_t offset = prefs && prefs->has_utc_offset ? prefs->utc_offset_minutes
                                                     : program_offset_minutes;
    /* Seconds since the customer's local midnight. */
    int64_t s = (now + offset * 60) % KP_DAY_SECONDS;
    if (s < 0) s += KP_DAY_SECONDS;
    if (from < to) /* quiet within one day: [from, to) */
        return s >= from && s < to ? now + (to - s) : now;
    /* Quiet across midnight: [from, 24:00) and [00:00, to). */
    if (s >= from) return now + (KP_DAY_SECONDS - s) + to;
    if (s < to) return now + (to - s);
    return now;
}

kp_time kp_notify_backoff(const kp_retry_policy *r, int32_t attempts, int64_t retry_after,
                          uint32_t rnd, kp_time now)
{
    int64_t base = r->base_seconds > 0 ? r->base_seconds : 30;
    int64_t max = r->max_seconds > 0 ? r->max_seconds : 3600;
    if (base > max) base = max;
    int64_t d = base;
    for (int32_t i = 1; i < attempts && d < max; i++) d *= 2; /* stops before overflow */
    if (d > max) d = max;
    /* Full jitter over the upper half: scaled, not taken modulo, so for one
     * rnd the delay grows with d. */
    int64_t delay = d / 2 + (int64_t)(((uint64_t)rnd * (uint64_t)(d - d / 2)) / UINT32_MAX);
    if (retry_after > delay) delay = retry_after;
    return now + delay;
}
