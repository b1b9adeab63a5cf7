/*
 * check.h: invariant checks that stay on in release builds. `assert` vanishes
 * under NDEBUG; the checks that guard money must not, so they use these.
 *
 * Two flavours, chosen by what the caller can do about a broken invariant:
 *  - KP_CHECK(cond, name, e) returns KP_ERR_INTERNAL from the enclosing
 *    function (filling *e) when `cond` is false. Used where a caller can
 *    refuse the one operation cleanly: a ledger plan that does not balance is
 *    never applied, its transaction rolls back, the server goes on serving
 *    every other till. This is the flavour for the ledger's plans.
 *  - KP_CHECK_ABORT(cond, name) logs and aborts. Used only where there is no
 *    error path and going on would hand out a wrong amount: kp_muldiv()
 *    returns the amount itself. An abort loses nothing acknowledged (the
 *    operation log keeps every answered write); a wrong amount would.
 * Both write one line to stderr naming the invariant, file and line.
 */
#ifndef KOPILKA_CHECK_H
#define KOPILKA_CHECK_H

#include "kopilka.h"

/* Logs "kopilka: invariant failed: NAME (FILE:LINE)" to stderr and aborts. */
_Noreturn void kp_check_abort(const char *name, const char *file, int line);

/* Logs the same line, fills *e (when not NULL) with KP_ERR_INTERNAL and a
 * message naming the invariant, and returns KP_ERR_INTERNAL. */
kp_err kp_check_fail(kp_error *e, const char *name, const char *file, int line);

#define KP_CHECK(cond, name, e)                                                                    \
    do {                                                                                           \
        if (__builtin_expect(!(cond), 0)) return kp_check_fail((e), (name), __FILE__, __LINE__);   \
    } while (0)

#define KP_CHECK_ABORT(cond, name)                                                                 \
    do {                                                                                           \
        if (__builtin_expect(!(cond), 0)) kp_check_abort((name), __FILE__, __LINE__);              \
    } while (0)

#endif
