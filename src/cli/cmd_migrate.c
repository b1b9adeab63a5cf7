/*
 * cmd_migrate.c: `kopilka migrate FROM.db postgresql://... [--key-out
 * FILE]`, moving an embedded database into PostgreSQL with everything in
 * it (src/store/store_migrate.h copies the tables).
 *
 * The order is what makes it all or nothing: the source must be at rest
 * (no server, nothing left in its operation log) and verify; the copy is
 * one PostgreSQL transaction, checked before its commit by the target's
 * own verify and by the totals of both sides; the key file is copied last
 * before the commit and removed again if the commit fails.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "crypto/pii.h"
#include "service/people.h"
#include "store/store_backup.h"
#include "store/store_migrate.h"
#include "store/store_pg_int.h"

enum { PATH_BYTES = 4096 };

static void print_problem(void *ctx, const char *line)
{
    fprintf(stderr, "  %s%s\n", ctx ? (const char *)ctx : "", line);
}

/* kp_redo_fn for the source's recovery: migrate never applies what the
 * operation log holds (that is `kopilka recover`'s work, with its report);
 * the first record found stops the recovery, which then changes nothing. */
static kp_err refuse_record(void *ctx, kp_store *s, const void *record, size_t len, kp_error *e)
{
    (void)s, (void)record, (void)len;
    const char *from = ctx;
    return kp_error_set(e, KP_ERR_CONFLICT, "FROM",
                        "%s's operation log holds operations not yet in the database (a "
                        "server stopped without closing it): run `kopilka recover %s`, then "
                        "migrate again",
                        from, from);
}

/* Makes st the writer of FROM for the whole migration (no server can start
 * on it meanwhile) when its operation log holds nothing the database lacks.
 * False after printing why. */
static bool source_at_rest(kp_store *st, const char *from)
{
    const kp_group_ops *g = st->ops->group;
    if (g == NULL) return true;
    kp_error e = {0};
    size_t recovered = 0;
    kp_err err = g->open(st, from, refuse_record, (void *)from, &recovered, &e);
    if (err == KP_OK) return true;
    if (err == KP_ERR_BUSY)
        fprintf(stderr, "kopilka migrate: FROM: %s: stop the server serving %s, then migrate\n",
                e.message, from);
    else if (err == KP_ERR_CONFLICT)
        fprintf(stderr, "kopilka migrate: FROM: %s\n", e.message);
    else
        fprintf(stderr, "kopilka migrate: FROM: %s%s%s; see `kopilka recover --help`\n", e.field,
                e.field[0] ? ": " : "", e.message);
    return false;
}

/* The source's key file, loaded when it is there. False after printing
 * why: it is missing while the database holds values sealed with it. */
static bool source_key(kp_store *st, const char *from, char *path, size_t size, kp_pii **pii)
{
    *pii = NULL;
    if (!kp_pii_key_path(from, path, size)) {
        fprintf(stderr, "kopilka migrate: FROM: the path is too long\n");
        return false;
    }
    kp_error e = {0};
    if (access(path, F_OK) == 0) {
        if (kp_pii_load(path, pii, &e) == KP_OK) return true;
        fprintf(stderr, "kopilka migrate: key: %s\n", e.message);
        return false;
    }
    int64_t sealed = 0;
    if (st->ops->people->sealed_count(st, &sealed) != KP_OK) {
        fprintf(stderr, "kopilka migrate: %s: %s\n", from, st->last_error);
        return false;
    }
    if (sealed == 0) {
        path[0] = '\0';
        return true;
    }
    fprintf(stderr,
            "kopilka migrate: key: the key file %s is missing, but %s holds %lld value(s) "
            "made with it (customers' personal data, birthday indexes, audit MACs, "
            "notifications' texts, webhook secrets, login codes), which the target could "
            "never open: restore it (mode 0600) first\n",
            path, from, (long long)sealed);
    return false;
}

/* verify as `kopilka verify` does it: the ledger, the audit chain and,
 * with the key, the audit MACs. Returns the problems, or -1 when the check
 * itself failed (printed). */
static int64_t verify_side(kp_store *st, const kp_pii *pii, const char *side)
{
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s: ", side);
    int64_t problems = 0, checked = 0, without = 0;
    kp_err err = st->ops->verify(st, print_problem, prefix, &problems);
    if (err == KP_OK && pii)
        err = kp_audit_check_macs(st, pii, print_problem, prefix, &problems, &checked,
                                  &without);
    if (err) {
        fprintf(stderr, "kopilka migrate: cannot verify the %s: %s\n", side, st->last_error);
        return -1;
    }
    return problems;
}

static void on_rows(void *ctx, int64_t done, int64_t total)
{
    (void)total; /* the bar was started with it */
    cli_progress_update(ctx, done);
}

static void on_table(void *ctx, const char *table, int64_t rows)
{
    (void)ctx;
    printf("%-20s %lld rows\n", table, (long long)rows);
    fflush(stdout);
}

int cmd_migrate(int argc, char **argv)
{
    static const char *const opts[] = {"--key-out", NULL};
    if (!cli_check_options(argc, argv, opts, "migrate")) return 2;
    const char *from = cli_positional(argc, argv, 0);
    const char *to = cli_positional(argc, argv, 1);
    const char *key_out = cli_option(argc, argv, "--key-out");
    if (from == NULL || to == NULL) {
        fprintf(stderr, "kopilka migrate: FROM.db and the target are required (see --help)\n");
        return 2;
    }
    if (!kp_store_is_file(from)) {
        fprintf(stderr, "kopilka migrate: FROM: must be the path of a SQLite database file, got "
                        "%s\n", from);
        return 2;
    }
    char shown_to[PATH_BYTES];
    pg_location_safe(to, shown_to, sizeof shown_to);
    if (!store_pg_location(to)) {
        fprintf(stderr,
                "kopilka migrate: TO: must be a postgresql:// location (a database made with "
                "CREATE DATABASE), got %s; to copy a SQLite file use `kopilka backup`\n",
                shown_to);
        return 2;
    }
    if (key_out && (key_out[0] == '\0' || access(key_out, F_OK) == 0)) {
        fprintf(stderr, "kopilka migrate: --key-out: %s%s; a key file is never overwritten: "
                        "name a new file\n",
                key_out, key_out[0] ? " exists" : "(empty)");
        return 2;
    }

    kp_error e = {0};
    kp_store *src = NULL;
    bool held = false;
    kp_pii *pii = NULL;
    kp_migrate *m = NULL;
    bool key_written = false;
    int rc = 1;
    char key_path[PATH_BYTES];
    if (kp_store_open(from, false, &src, &e)) {
        fprintf(stderr, "kopilka migrate: FROM: %s\n", e.message);
        return 1;
    }
    if (!(held = source_at_rest(src, from))) goto out;
    if (!source_key(src, from, key_path, sizeof key_path, &pii)) goto out;
    int64_t problems = verify_side(src, pii, "source");
    if (problems != 0) {
        if (problems > 0)
            fprintf(stderr,
                    "kopilka migrate: %s does not verify (%lld problem(s) above): nothing was "
                    "copied; see `kopilka verify %s`\n",
                    from, (long long)problems, from);
        goto out;
    }

    if (kp_migrate_open(from, to, &m, &e)) {
        fprintf(stderr, "kopilka migrate: %s%s%s\n", e.field, e.field[0] ? ": " : "",
                e.message);
        goto out;
    }
    cli_progress bar;
    int64_t all = 0;
    for (size_t i = 0; i < kp_migrate_tables(m); i++) all += kp_migrate_table_rows(m, i);
    cli_progress_start(&bar, "migrate", "rows", all);
    kp_migrate_progress progress = {on_rows, on_table, &bar};
    kp_err err = kp_migrate_copy(m, &progress, &e);
    cli_progress_end(&bar, err ? 0 : all, err == KP_OK);
    if (err) {
        fprintf(stderr, "kopilka migrate: %s%s%s; nothing was committed\n", e.field,
                e.field[0] ? ": " : "", e.message);
        goto out;
    }

    /* The copy as the target sees it, before anything is committed. */
    problems = verify_side(kp_migrate_target(m), pii, "target");
    if (problems != 0) {
        if (problems > 0)
            fprintf(stderr, "kopilka migrate: the copy does not verify in the target (%lld "
                            "problem(s) above): rolled back, nothing was committed\n",
                    (long long)problems);
        goto out;
    }
    kp_migrate_totals before, after;
    if (kp_migrate_totals_of(m, false, &before, &e) || kp_migrate_totals_of(m, true, &after, &e)) {
        fprintf(stderr, "kopilka migrate: %s; rolled back, nothing was committed\n", e.message);
        goto out;
    }
    int differ = kp_migrate_totals_compare(&before, &after, print_problem, "totals: ");
    if (differ) {
        fprintf(stderr, "kopilka migrate: %d total(s) differ between %s and the target (above): "
                        "rolled back, nothing was committed\n",
                differ, from);
        goto out;
    }

    if (key_out && key_path[0]) {
        if (store_backup_copy_file(key_path, key_out, "--key-out", &e)) {
            fprintf(stderr, "kopilka migrate: %s; rolled back, nothing was committed\n",
                    e.message);
            goto out;
        }
        key_written = true;
    }
    if (kp_migrate_commit(m, &e)) {
        fprintf(stderr, "kopilka migrate: %s; nothing was committed\n", e.message);
        goto out;
    }
    key_written = false; /* it stays: it belongs to the committed copy */
    printf("%s -> %s: %lld rows in %zu tables, committed; verify ok on both sides; totals "
           "match: %lld accounts, balances %lld, %lld operations, %lld lots, %lld customers, "
           "%lld audit entries (head %.16s%s)\n",
           from, shown_to, (long long)all, kp_migrate_tables(m), (long long)after.accounts,
           (long long)after.balance_sum, (long long)after.ops, (long long)after.lots,
           (long long)after.customers, (long long)after.audit,
           after.audit_head[0] ? after.audit_head : "none", after.audit_head[0] ? "..." : "");
    /* The server may run elsewhere than this command: the key's full path. */
    char key_shown[PATH_MAX];
    if (key_path[0] && realpath(key_out ? key_out : key_path, key_shown) == NULL)
        snprintf(key_shown, sizeof key_shown, "%s", key_out ? key_out : key_path);
    if (key_path[0] == '\0')
        printf("key: %s has no key file and nothing sealed: the first command on the target "
               "that needs one makes it where KOPILKA_KEY_FILE points\n",
               from);
    else
        printf("key: customers' personal data and the audit MACs need the key file %s: set "
               "KOPILKA_KEY_FILE=%s for `kopilka serve` and every command on %s; keep it "
               "(mode 0600) apart from the database's backups\n",
               key_shown, key_shown, shown_to);
    rc = 0;
out:
    if (key_written) unlink(key_out);
    kp_migrate_close(m);
    kp_pii_free(pii);
    if (held && src->ops->group) src->ops->group->close(src);
    kp_store_close(src);
    return rc;
}
