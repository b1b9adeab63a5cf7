/*
 * script.h: the program's script hook. A program may carry Lua 5.4 source
 * and name a function that adjusts the points a basket earns ("earn") and
 * one that lowers the points it may burn ("burn"), for logic the
 * declarative rules cannot say (docs/rules.md, "Script hook").
 *
 * The sandbox: only the base (without load, loadfile, dofile, require,
 * print, collectgarbage), string (without dump), table, math and utf8
 * libraries; source is loaded as text only, never bytecode; every call runs
 * under an instruction budget (lua_sethook count) and the state under a
 * memory cap (its own lua_Alloc). A script that fails, returns nonsense or
 * runs over is reported in `note` and the caller keeps the declarative
 * result.
 *
 * A kp_script_cache holds one Lua state per thread for the program it was
 * made for; it is rebuilt when the program changes and after any failure.
 * Ownership: the caller owns the cache pointer (NULL to start) and frees it
 * with kp_script_cache_free().
 */
#ifndef KOPILKA_SCRIPT_H
#define KOPILKA_SCRIPT_H

#include <kopilka/engine.h>

typedef struct kp_script_cache kp_script_cache;

void kp_script_cache_free(kp_script_cache *cache);

/* Calls the program's earn function with the priced basket; on KP_OK
 * *earned is what the basket should earn instead of quote->earned, and
 * `note` the script's explanation (or a default). On failure `note` says
 * what went wrong. */
kp_err kp_script_earn(kp_script_cache **cache, const kp_program *program, const kp_account *account,
                      const kp_basket *basket, const kp_quote *quote, kp_time at, int64_t *earned,
                      char *note, size_t note_size);

/* Calls the program's burn function; on KP_OK *max_burn is the most points
 * the basket may burn (the engine still applies every cap and the balance). */
kp_err kp_script_burn(kp_script_cache **cache, const kp_program *program, const kp_account *account,
                      const kp_basket *basket, const kp_quote *quote, kp_time at, int64_t *max_burn,
                      char *note, size_t note_size);

/* Loads the program's script in a fresh sandbox and reports a syntax error
 * or a failing top level (run at program load, so a broken script is
 * refused before it prices anything). */
kp_err kp_script_check(const kp_program *program, kp_error *e);

#endif
