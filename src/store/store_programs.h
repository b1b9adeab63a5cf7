/*
 * store_programs.h: what both backends say when a program version cannot be
 * loaded or cancelled (kp_store_ops.program_insert and program_cancel), so
 * the two read alike.
 */
#ifndef KOPILKA_STORE_PROGRAMS_H
#define KOPILKA_STORE_PROGRAMS_H

#include <kopilka/store.h>

/* Writes into s->last_error why a new version may not be loaded: version
 * `version`, not cancelled, activates at `activates_at`, at or after it. */
void store_program_conflict(kp_store *s, int64_t version, kp_time activates_at);

/* Returns KP_ERR_CONFLICT with the reason in s->last_error: `row` took
 * effect or is cancelled already. */
kp_err store_program_uncancellable(kp_store *s, const kp_program_version *row);

#endif
