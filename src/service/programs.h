/*
 * programs.h: program versions in the back office (docs/api.md, "Program
 * versions"; docs/rules.md, "Program versions"): checking a file with every
 * error it has, loading it at once or from a date, listing the versions with
 * their states, reading one, cancelling a scheduled one. Each operation runs
 * for an actor (people.h's kp_office): program.read to see, program.manage
 * to change; a load and a cancellation are audited in their transaction.
 * Typed in and out: the HTTP routes (src/server/http_programs.c) and the CLI
 * (src/cli/cmd_programs.c) render the answers.
 */
#ifndef KOPILKA_SERVICE_PROGRAMS_H
#define KOPILKA_SERVICE_PROGRAMS_H

#include "people.h"

enum {
    /* A scheduled activation, and a cancellation, at least this far ahead:
     * every server re-reads the schedule within a second, so all of them
     * switch at the same instant (server.h, kp_programs_refresh). */
    KP_PROGRAM_NOTICE_SECONDS = 5,
    /* The furthest activation accepted: ten years ahead. */
    KP_PROGRAM_AHEAD_SECONDS_MAX = 3653 * 86400,
    /* Versions one page of a list holds at most. */
    KP_PROGRAM_VERSIONS_PAGE_MAX = 500,
};

/* Where a version stands at an instant. */
typedef enum kp_program_state {
    KP_PROGRAM_PAST = 0,  /* it ran and another took over (or never will run) */
    KP_PROGRAM_RUNNING,   /* operations run with it now */
    KP_PROGRAM_SCHEDULED, /* it takes over at its activates_at */
    KP_PROGRAM_CANCELLED, /* cancelled before it took effect */
} kp_program_state;

/* "past", "running", "scheduled", "cancelled". */
const char *kp_program_state_name(kp_program_state state);
/* The state of `v` at `now` when version `running` runs. */
kp_program_state kp_program_state_of(const kp_program_version *v, int64_t running, kp_time now);

/* Checks an activation time: 0 (at once) or from now +
 * KP_PROGRAM_NOTICE_SECONDS to now + KP_PROGRAM_AHEAD_SECONDS_MAX;
 * KP_ERR_INVALID on field "activates_at" naming the allowed range. */
kp_err kp_program_activation_check(kp_time activates_at, kp_time now, kp_error *e);

/* Checks a program file as a load does (kp_service_program_check): every
 * error goes to fe (when not NULL; past KP_FIELD_ERRORS_MAX counted in
 * fe->more) with its path inside the file, and the first to *e (its message
 * then says how many more there are). `out`: the program read. */
kp_err kp_program_validate(const char *json, size_t len, kp_program *out, kp_field_errors *fe,
                           kp_error *e);

/* Loads a program file as a new version (program.manage): activates_at 0 =
 * at once, else checked by kp_program_activation_check against o->now;
 * `name` "" = the program's own; `source` says where it came from in the
 * audit entry ("file=case1.json", "api"). Errors as kp_program_validate, or
 * KP_ERR_CONFLICT on field "activates_at" (it would keep a scheduled version
 * from running). Audited "program.load" on target "program:<version>". */
kp_err kp_program_load(kp_office *o, const char *json, size_t len, const char *name,
                       const char *source, kp_time activates_at, int64_t *version,
                       kp_field_errors *fe, kp_error *e);

/* Cancels a scheduled version (program.manage). KP_ERR_NOT_FOUND on field
 * "version"; KP_ERR_CONFLICT when it took effect, is cancelled already, or
 * takes effect within KP_PROGRAM_NOTICE_SECONDS. Audited "program.cancel".
 * *row: the version as it now stands. */
kp_err kp_program_cancel(kp_office *o, int64_t version, kp_program_version *row, kp_error *e);

/* A page of versions below `before` (0 = from the newest), newest first, at
 * most `limit` (1 to KP_PROGRAM_VERSIONS_PAGE_MAX), and the version running
 * at o->now in *running (0: none). program.read. */
kp_err kp_program_versions(kp_office *o, int64_t before, kp_program_version *rows, size_t limit,
                           size_t *n, int64_t *running, kp_error *e);

/* Version `version` (0: the one running at o->now): its row, the running
 * version in *running, and the stored file's text in *json (malloc'd, the
 * caller frees it). KP_ERR_NOT_FOUND on field "version". program.read. */
kp_err kp_program_version_get(kp_office *o, int64_t version, kp_program_version *row,
                              int64_t *running, char **json, kp_error *e);

#endif
