/*
 * store_backup.c: the online copy of a database and its operation log
 * (store_backup.h says why in this order).
 */
#include "store_backup.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { LOG_FILES = 2, PATH_MAX_BYTES = 4096, STEP_PAUSE_US = 1000 };

kp_err store_backup_copy_file(const char *from, const char *to, const char *field, kp_error *e)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        if (errno == ENOENT) return KP_OK;
        return kp_error_set(e, KP_ERR_IO, field, "cannot read %s: %s", from, strerror(errno));
    }
    int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0) {
        kp_error_set(e, KP_ERR_IO, field, "cannot create %s: %s", to, strerror(errno));
        close(in);
        return KP_ERR_IO;
    }
    kp_err err = KP_OK;
    char chunk[1 << 16];
    for (;;) {
        ssize_t n = read(in, chunk, sizeof chunk);
        if (n == 0) break;
        if (n < 0) {
            if (errno == EINTR) continue;
            err = kp_error_set(e, KP_ERR_IO, field, "cannot read %s: %s", from, strerror(errno));
            break;
        }
        for (ssize_t done = 0; done < n;) {
            ssize_t w = write(out, chunk + done, (size_t)(n - done));
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) {
                err = kp_error_set(e, KP_ERR_IO, field, "cannot write %s: %s", to,
                                   strerror(errno));
                break;
            }
            done += w;
        }
        if (err) break;
    }
    if (err == KP_OK && fsync(out) != 0)
        err = kp_error_set(e, KP_ERR_IO, field, "cannot sync %s: %s", to, strerror(errno));
    close(out);
    close(in);
    return err;
}

static void log_path(char *out, size_t size, const char *db_path, int i)
{
    snprintf(out, size, "%s.oplog-%d", db_path, i);
}

/* Removes a partial copy. */
void store_backup_remove(const char *out_path)
{
    char path[PATH_MAX_BYTES + 16];
    unlink(out_path);
    const char *suffixes[] = {"-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        snprintf(path, sizeof path, "%s%s", out_path, suffixes[i]);
        unlink(path);
    }
    for (int i = 0; i < LOG_FILES; i++) {
        log_path(path, sizeof path, out_path, i);
        unlink(path);
    }
}

/* Copies the pages of db_path into out_path in one snapshot. */
static kp_err copy_pages(const char *db_path, const char *out_path, int pages_per_step, kp_error *e)
{
    sqlite3 *src = NULL, *dst = NULL;
    sqlite3_backup *b = NULL;
    kp_err err = KP_OK;
    if (sqlite3_open_v2(db_path, &src, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        err = kp_error_set(e, KP_ERR_IO, "database", "cannot open %s: %s", db_path,
                           src ? sqlite3_errmsg(src) : "out of memory");
        goto out;
    }
    sqlite3_busy_timeout(src, 10000);
    /* One read transaction across every step: the snapshot stays the same
     * (the backup would otherwise restart whenever the server commits). */
    if (sqlite3_exec(src, "BEGIN; SELECT count(*) FROM sqlite_schema;", NULL, NULL, NULL) !=
        SQLITE_OK) {
        err = kp_error_set(e, KP_ERR_IO, "database", "cannot read %s: %s", db_path,
                           sqlite3_errmsg(src));
        goto out;
    }
    /* Created 0600 before SQLite opens it: the copy holds password hashes,
     * the audit log and balances from its first page (O_EXCL: never one
     * that appeared since the check for an existing OUT). */
    int fd = open(out_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        err = kp_error_set(e, KP_ERR_IO, "backup", "cannot create %s: %s", out_path,
                           strerror(errno));
        goto out;
    }
    close(fd);
    if (sqlite3_open_v2(out_path, &dst, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        err = kp_error_set(e, KP_ERR_IO, "backup", "cannot create %s: %s", out_path,
                           dst ? sqlite3_errmsg(dst) : "out of memory");
        goto out;
    }
    b = sqlite3_backup_init(dst, "main", src, "main");
    if (b == NULL) {
        err =
            kp_error_set(e, KP_ERR_IO, "backup", "cannot start the copy: %s", sqlite3_errmsg(dst));
        goto out;
    }
    int rc;
    struct timespec pause = {0, STEP_PAUSE_US * 1000};
    while ((rc = sqlite3_backup_step(b, pages_per_step)) == SQLITE_OK || rc == SQLITE_BUSY ||
           rc == SQLITE_LOCKED)
        nanosleep(&pause, NULL);
    if (rc != SQLITE_DONE)
        err = kp_error_set(e, KP_ERR_IO, "backup", "the copy failed: %s", sqlite3_errstr(rc));
out:
    if (b && sqlite3_backup_finish(b) != SQLITE_OK && err == KP_OK)
        err = kp_error_set(e, KP_ERR_IO, "backup", "the copy failed: %s", sqlite3_errmsg(dst));
    if (src) sqlite3_exec(src, "COMMIT", NULL, NULL, NULL);
    if (dst && sqlite3_close(dst) != SQLITE_OK && err == KP_OK)
        err = kp_error_set(e, KP_ERR_IO, "backup", "cannot close %s", out_path);
    sqlite3_close(src);
    return err;
}

kp_err store_backup_copy(const char *db_path, const char *out_path, int pages_per_step, kp_error *e)
{
    if (strlen(db_path) >= PATH_MAX_BYTES || strlen(out_path) >= PATH_MAX_BYTES)
        return kp_error_set(e, KP_ERR_INVALID, "backup", "a path is over %d bytes", PATH_MAX_BYTES);
    if (access(out_path, F_OK) == 0)
        return kp_error_set(e, KP_ERR_CONFLICT, "OUT",
                            "%s already exists; a backup never overwrites a file", out_path);
    char from[PATH_MAX_BYTES + 16], to[PATH_MAX_BYTES + 16];
    for (int i = 0; i < LOG_FILES; i++) {
        log_path(to, sizeof to, out_path, i);
        if (access(to, F_OK) == 0)
            return kp_error_set(e, KP_ERR_CONFLICT, "OUT",
                                "%s already exists; a backup never overwrites a file", to);
    }
    kp_err err = KP_OK;
    for (int i = 0; i < LOG_FILES && err == KP_OK; i++) {
        log_path(from, sizeof from, db_path, i);
        log_path(to, sizeof to, out_path, i);
        err = store_backup_copy_file(from, to, "backup", e);
    }
    if (err == KP_OK) err = copy_pages(db_path, out_path, pages_per_step, e);
    if (err == KP_OK) chmod(out_path, 0600);
    if (err) store_backup_remove(out_path);
    return err;
}
