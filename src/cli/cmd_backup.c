/*
 * cmd_backup.c: `kopilka backup DB OUT`: an online, consistent copy of a
 * database, which a server may be serving and writing meanwhile, with its
 * key file; then the copy is checked as `kopilka verify` does.
 *
 * What a consistent copy needs: the database's pages as of one moment, and
 * every purchase or return the server acknowledged before the backup began.
 * The server acknowledges those once they are in its operation log
 * (DB.oplog-0/-1), and commits them to the database only every half second
 * or so; so the log is copied first, the pages after it (in one snapshot,
 * src/store/store_backup.h), and opening the copy replays the log records
 * the snapshot lacks, exactly as after a crash. The copy's log files are
 * then removed: OUT holds everything, OUT.key is its key file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "crypto/pii.h"
#include "service/service.h"
#include "store/store_backup.h"
#include "store/store_pg.h"
#include "store/store_sqlite.h"

enum { PAGES_PER_STEP = 256, PATH_BYTES = 4096 };

/* Copies the key file `from` to `to` (a new file, mode 0600). */
static bool copy_key(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb");
    if (in == NULL) {
        fprintf(stderr,
                "kopilka backup: warning: no key file %s (%s); customers' personal "
                "data in the copy can be read only with the original key\n",
                from, strerror(errno));
        return true;
    }
    int fd = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    FILE *out = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (out == NULL) {
        fprintf(stderr, "kopilka backup: cannot create %s: %s\n", to, strerror(errno));
        if (fd >= 0) close(fd);
        fclose(in);
        return false;
    }
    char chunk[4096];
    size_t n;
    bool ok = true;
    while ((n = fread(chunk, 1, sizeof chunk, in)) > 0) ok = ok && fwrite(chunk, 1, n, out) == n;
    ok = ok && !ferror(in) && fflush(out) == 0 && fsync(fd) == 0;
    ok = fclose(out) == 0 && ok;
    fclose(in);
    if (!ok) fprintf(stderr, "kopilka backup: cannot write %s\n", to);
    return ok;
}

/* Counts the log records the copy leaves out (kp_durable_lost_fn). */
static void count_late(void *ctx, uint64_t seq, const char *kind, const char *store,
                       const char *card, const char *receipt, const char *outcome)
{
    (void)seq, (void)kind, (void)store, (void)card, (void)receipt, (void)outcome;
    (*(size_t *)ctx)++;
}

int cmd_backup(int argc, char **argv)
{
    static const char *const opts[] = {NULL};
    if (!cli_check_options(argc, argv, opts, "backup")) return 2;
    const char *db = cli_positional(argc, argv, 0);
    const char *out = cli_positional(argc, argv, 1);
    if (db == NULL || out == NULL) {
        fprintf(stderr, "usage: kopilka backup DB OUT\n");
        return 2;
    }
    if (store_pg_location(db) || store_pg_location(out)) {
        fprintf(stderr,
                "kopilka backup: copies a SQLite database file; a PostgreSQL database is backed "
                "up with PostgreSQL's own tools: pg_dump (a logical copy) or pg_basebackup with "
                "WAL archiving (to a point in time), as docs/deploy.md describes; keep a copy "
                "of its key file ($KOPILKA_KEY_FILE) apart from those backups\n");
        return 2;
    }
    char db_key[PATH_BYTES], out_key[PATH_BYTES];
    if (!kp_pii_key_path(db, db_key, sizeof db_key) ||
        !kp_pii_key_path(out, out_key, sizeof out_key)) {
        fprintf(stderr, "kopilka backup: a path is over %d bytes\n", PATH_BYTES - 8);
        return 2;
    }
    if (access(db, F_OK) != 0) {
        fprintf(stderr, "kopilka backup: DB: %s does not exist\n", db);
        return 1;
    }
    if (access(out_key, F_OK) == 0) {
        fprintf(stderr,
                "kopilka backup: OUT: %s already exists; a backup never overwrites a "
                "file\n",
                out_key);
        return 1;
    }
    kp_error e = {0};
    if (store_backup_copy(db, out, PAGES_PER_STEP, &e) != KP_OK) {
        fprintf(stderr, "kopilka backup: %s%s%s\n", e.field, e.field[0] ? ": " : "", e.message);
        return 1;
    }
    /* Opening the copy replays the acknowledged operations its snapshot
     * lacks; then its log files are spent. The log was copied while the
     * server may have been writing it: a record being written then reads
     * as damage, with records after it. Those were all written after the
     * backup began, so not acknowledged before it: the copy leaves them
     * out (and says so) rather than fail. */
    size_t late = 0;
    kp_durable_lost_ctx lost = {.report = count_late, .report_ctx = &late};
    store_sqlite_recovery r = {.redo = kp_durable_redo, .lost = kp_durable_lost,
                               .lost_ctx = &lost};
    kp_err err = (r.redo_ctx = kp_durable_replay_new()) == NULL
                     ? kp_error_set(&e, KP_ERR_NOMEM, "", "out of memory")
                     : store_sqlite_recover(out, &r, &e);
    kp_durable_replay_free(r.redo_ctx);
    kp_oplog_damage damage = r.damage;
    if (err) {
        fprintf(stderr, "kopilka backup: the copy %s does not open: %s; it was removed\n", out,
                e.message);
        store_backup_remove(out);
        return 1;
    }
    if (damage.first_lost)
        printf("backup: operations %llu to %llu were being written during the copy (after it "
               "began); the copy holds everything acknowledged before\n",
               (unsigned long long)damage.first_lost, (unsigned long long)damage.last_lost);
    if (!copy_key(db_key, out_key)) {
        store_backup_remove(out);
        return 1;
    }
    printf("backup %s -> %s%s\n", db, out,
           access(out_key, F_OK) == 0 ? " (key file copied too)" : "");
    fflush(stdout);
    char *verify_argv[] = {(char *)out};
    int rc = cmd_verify(1, verify_argv);
    /* The copy's log files hold nothing the copy lacks now. */
    for (int i = 0; i < 2; i++) {
        char path[PATH_BYTES + 16];
        snprintf(path, sizeof path, "%s.oplog-%d", out, i);
        unlink(path);
    }
    return rc;
}
