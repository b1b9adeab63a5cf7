/*
 * store_sqlite_verify.h: the ledger's invariants (the first
 * STORE_INVARIANTS_LEDGER of store_invariants.h, the same rows and the
 * same sentences) checked by the SQLite backend in C over one streaming
 * pass per table, two threads on two read connections: what makes
 * `kopilka verify` of 100 million postings take seconds, not hours of
 * SQL GROUP BYs that sort (bench/README.md "At scale").
 */
#ifndef KOPILKA_STORE_SQLITE_VERIFY_H
#define KOPILKA_STORE_SQLITE_VERIFY_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include <kopilka/kopilka.h>

/* PRAGMA quick_check (full: integrity_check) of `db`, up to 100 rows:
 * each problem it names is one line "the database file is damaged: ..."
 * to report(ctx, line) and counted in *problems; a file too damaged to
 * check is one such line. Returns SQLite's code: SQLITE_DONE when the
 * check ran (whatever it found). */
int store_sqlite_file_check(sqlite3 *db, bool full, void (*report)(void *ctx, const char *line),
                            void *ctx, int64_t *problems);

/* Checks store_invariants[0 .. STORE_INVARIANTS_LEDGER) on `db` (the
 * store's connection; a second read-only connection to the same file, on
 * the VFS `vfs`, reads lots and accounts beside it when both see the same
 * ledger and `db` has no transaction of its own open). Each broken row is
 * reported as that invariant's SQL would report it, in the same order,
 * through report(ctx, line) while *problems is below
 * STORE_INVARIANT_LINES_MAX, and counted in *problems. Where the data
 * does not fit the pass (postings not in operation order, account ids too
 * sparse for arrays) the invariant's own SQL runs instead.
 *
 * With `file_check`, store_sqlite_file_check() runs too, beside the pass
 * on a connection of its own (after it on `db` if none opens): if it
 * finds the file damaged, only its lines are reported and *file_ok is
 * false; otherwise *file_ok is true (also when `file_check` is false).
 * Errors: the message in err[errsize]. */
kp_err store_sqlite_verify_ledger(sqlite3 *db, const char *vfs, bool file_check, char *err,
                                  size_t errsize, void (*report)(void *ctx, const char *line),
                                  void *ctx, int64_t *problems, bool *file_ok);

#endif
