/*
 * programs.c: program versions in the back office (programs.h): checking a
 * file with all its errors, loading it at once or from a date, the states
 * of the versions, reading one, cancelling a scheduled one.
 */
#include "programs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopilka/clock.h>

#include "people_int.h"

const char *kp_program_state_name(kp_program_state state)
{
    switch (state) {
    case KP_PROGRAM_PAST: return "past";
    case KP_PROGRAM_RUNNING: return "running";
    case KP_PROGRAM_SCHEDULED: return "scheduled";
    case KP_PROGRAM_CANCELLED: return "cancelled";
    }
    return "unknown";
}

kp_program_state kp_program_state_of(const kp_program_version *v, int64_t running, kp_time now)
{
    if (v->cancelled_at) return KP_PROGRAM_CANCELLED;
    if (v->version == running) return KP_PROGRAM_RUNNING;
    if (v->activates_at > now && v->version > running) return KP_PROGRAM_SCHEDULED;
    return KP_PROGRAM_PAST;
}

kp_err kp_program_activation_check(kp_time activates_at, kp_time now, kp_error *e)
{
    if (activates_at == 0) return KP_OK;
    if (activates_at >= now + KP_PROGRAM_NOTICE_SECONDS &&
        activates_at <= now + KP_PROGRAM_AHEAD_SECONDS_MAX)
        return KP_OK;
    char from[32], to[32];
    kp_time_format(now + KP_PROGRAM_NOTICE_SECONDS, from, sizeof from);
    kp_time_format(now + KP_PROGRAM_AHEAD_SECONDS_MAX, to, sizeof to);
    return kp_error_set(e, KP_ERR_INVALID, "activates_at",
                        "%s: must be from %s (%d seconds from now) to %s, or absent to activate "
                        "at once",
                        activates_at < now ? "is in the past" : "is out of range", from,
                        (int)KP_PROGRAM_NOTICE_SECONDS, to);
}

/* kp_program_error_fn: one error of the file into the form's list. */
static void field_error(void *ctx, const kp_error *error)
{
    people_field_error(ctx, NULL, error->code, error->field, error->message);
}

/* Says in the first error how many more there are, so a reader of `error`
 * alone knows the file has more to fix. */
static kp_err summarize(const kp_field_errors *fe, kp_err err, kp_error *e)
{
    size_t total = fe ? fe->n + fe->more : 0;
    if (err && total > 1) {
        char field[sizeof e->field], first[sizeof e->message];
        snprintf(field, sizeof field, "%s", e->field);
        snprintf(first, sizeof first, "%s", e->message);
        kp_error_set(e, err, field, "%s (and %zu more errors%s)", first, total - 1,
                     fe->more ? "; the first ones are listed" : ", each in fields");
    }
    return err;
}

kp_err kp_program_validate(const char *json, size_t len, kp_program *out, kp_field_errors *fe,
                           kp_error *e)
{
    kp_err err = kp_service_program_check(json, len, out, fe ? field_error : NULL, fe, e);
    return summarize(fe, err, e);
}

kp_err kp_program_load(kp_office *o, const char *json, size_t len, const char *name,
                       const char *source, kp_time activates_at, int64_t *version,
                       kp_field_errors *fe, kp_error *e)
{
    *version = 0;
    kp_err err = kp_office_require(o, KP_PERM_PROGRAM_MANAGE, e);
    if (err) return err;
    if ((err = kp_program_activation_check(activates_at, o->now, e))) {
        people_field_error(fe, NULL, err, e->field, e->message);
        return err;
    }
    if (strlen(name) >= sizeof((kp_program_version *)0)->name)
        return kp_error_set(e, KP_ERR_INVALID, "name", "must be at most %zu bytes",
                            sizeof((kp_program_version *)0)->name - 1);
    kp_program_version meta;
    memset(&meta, 0, sizeof meta);
    snprintf(meta.name, sizeof meta.name, "%s", name);
    snprintf(meta.loaded_by, sizeof meta.loaded_by, "%s", o->actor.name);
    meta.loaded_at = o->now;
    meta.activates_at = activates_at;
    err =
        kp_service_program_insert(o->st, json, len, &meta, version, fe ? field_error : NULL, fe, e);
    if (err) return summarize(fe, err, e);
    char target[48], at[32] = "now";
    snprintf(target, sizeof target, "program:%lld", (long long)*version);
    if (activates_at) kp_time_format(activates_at, at, sizeof at);
    if ((err = kp_office_audit(o, "program.load", target, "%s activates=%s", source, at)))
        return people_storage(o->st, err, e);
    return KP_OK;
}

/* The row of version `version`, KP_ERR_NOT_FOUND on field "version". */
static kp_err version_row(kp_office *o, int64_t version, kp_program_version *row, kp_error *e)
{
    size_t n = 0;
    kp_err err = version > 0 && version < INT64_MAX
                     ? o->st->ops->program_list(o->st, version + 1, row, 1, &n)
                     : KP_OK;
    if (err) return people_storage(o->st, err, e);
    if (n == 0 || row->version != version)
        return kp_error_set(e, KP_ERR_NOT_FOUND, "version", "there is no program version %lld",
                            (long long)version);
    return KP_OK;
}

kp_err kp_program_cancel(kp_office *o, int64_t version, kp_program_version *row, kp_error *e)
{
    kp_err err = kp_office_require(o, KP_PERM_PROGRAM_MANAGE, e);
    if (err || (err = version_row(o, version, row, e))) return err;
    if (row->cancelled_at == 0 && row->activates_at > o->now &&
        row->activates_at < o->now + KP_PROGRAM_NOTICE_SECONDS) {
        char at[32];
        kp_time_format(row->activates_at, at, sizeof at);
        return kp_error_set(e, KP_ERR_CONFLICT, "version",
                            "version %lld takes effect at %s, in less than %d seconds: too late "
                            "to cancel (every server has it ready); load the program you want "
                            "instead once it has",
                            (long long)version, at, (int)KP_PROGRAM_NOTICE_SECONDS);
    }
    err = o->st->ops->program_cancel(o->st, version, o->now);
    if (err == KP_ERR_CONFLICT) return kp_error_set(e, err, "version", "%s", o->st->last_error);
    if (err == KP_ERR_NOT_FOUND)
        return kp_error_set(e, err, "version", "there is no program version %lld",
                            (long long)version);
    if (err) return people_storage(o->st, err, e);
    row->cancelled_at = o->now;
    char target[48], at[32];
    snprintf(target, sizeof target, "program:%lld", (long long)version);
    kp_time_format(row->activates_at, at, sizeof at);
    if ((err = kp_office_audit(o, "program.cancel", target, "activates=%s", at)))
        return people_storage(o->st, err, e);
    return KP_OK;
}

/* The version running at o->now (0: none). */
static kp_err running_version(kp_office *o, int64_t *running, kp_error *e)
{
    kp_program_version next;
    kp_err err = o->st->ops->program_schedule(o->st, o->now, running, &next);
    return err ? people_storage(o->st, err, e) : KP_OK;
}

kp_err kp_program_versions(kp_office *o, int64_t before, kp_program_version *rows, size_t limit,
                           size_t *n, int64_t *running, kp_error *e)
{
    *n = 0;
    *running = 0;
    kp_err err = kp_office_require(o, KP_PERM_PROGRAM_READ, e);
    if (err) return err;
    if (limit < 1 || limit > KP_PROGRAM_VERSIONS_PAGE_MAX)
        return kp_error_set(e, KP_ERR_INVALID, "limit", "must be from 1 to %d",
                            (int)KP_PROGRAM_VERSIONS_PAGE_MAX);
    if (before < 0) return kp_error_set(e, KP_ERR_INVALID, "before", "must be a version number");
    if ((err = running_version(o, running, e))) return err;
    err = o->st->ops->program_list(o->st, before, rows, limit, n);
    return err ? people_storage(o->st, err, e) : KP_OK;
}

kp_err kp_program_version_get(kp_office *o, int64_t version, kp_program_version *row,
                              int64_t *running, char **json, kp_error *e)
{
    *json = NULL;
    kp_err err = kp_office_require(o, KP_PERM_PROGRAM_READ, e);
    if (err || (err = running_version(o, running, e))) return err;
    if (version == 0 && *running == 0)
        return kp_error_set(e, KP_ERR_NOT_FOUND, "version", "no program version runs now");
    if ((err = version_row(o, version ? version : *running, row, e))) return err;
    int64_t got = 0;
    err = o->st->ops->program_get(o->st, row->version, 0, json, &got);
    if (err == KP_ERR_NOT_FOUND)
        return kp_error_set(e, err, "version", "there is no program version %lld",
                            (long long)row->version);
    return err ? people_storage(o->st, err, e) : KP_OK;
}
