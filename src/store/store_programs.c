/*
 * store_programs.c: the messages of program versions' refusals, shared by
 * both backends (store_programs.h).
 */
#include "store/store_programs.h"

#include <stdio.h>

#include <kopilka/clock.h>

void store_program_conflict(kp_store *s, int64_t version, kp_time activates_at)
{
    char at[32];
    kp_time_format(activates_at, at, sizeof at);
    snprintf(s->last_error, sizeof s->last_error,
             "version %lld is scheduled for %s, at or after this version's activation, which "
             "would keep it from ever running: cancel it first, or activate this version before "
             "it",
             (long long)version, at);
}

kp_err store_program_uncancellable(kp_store *s, const kp_program_version *row)
{
    char at[32];
    if (row->cancelled_at) {
        kp_time_format(row->cancelled_at, at, sizeof at);
        snprintf(s->last_error, sizeof s->last_error, "version %lld was cancelled at %s already",
                 (long long)row->version, at);
    } else if (row->activates_at == 0) {
        kp_time_format(row->loaded_at, at, sizeof at);
        snprintf(s->last_error, sizeof s->last_error,
                 "version %lld took effect when it was loaded (%s): only a version that has "
                 "not taken effect can be cancelled",
                 (long long)row->version, at);
    } else {
        kp_time_format(row->activates_at, at, sizeof at);
        snprintf(s->last_error, sizeof s->last_error,
                 "version %lld took effect at %s: only a version that has not taken effect can "
                 "be cancelled",
                 (long long)row->version, at);
    }
    return KP_ERR_CONFLICT;
}
