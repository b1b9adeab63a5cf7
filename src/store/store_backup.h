/*
 * store_backup.h: an online copy of a database that a server may be using
 * (`kopilka backup`): its pages through SQLite's backup API, and its
 * operation log, so that the copy holds every acknowledged purchase.
 */
#ifndef KOPILKA_STORE_BACKUP_H
#define KOPILKA_STORE_BACKUP_H

#include <kopilka/kopilka.h>

/* Copies the database at db_path to out_path (which must not exist), and
 * its operation-log files DB.oplog-0/-1 to out_path.oplog-0/-1 (mode 0600).
 *
 * The order is what makes the copy whole: the log files are copied first,
 * then the pages are read in one snapshot. A purchase acknowledged before
 * the call is in the log copy (the server overwrites log records only once
 * they are committed to the database, and then they are in the snapshot,
 * which is taken later). Opening the copy (kp_service_open) replays the log
 * records past the snapshot's mark, as after a crash.
 *
 * The pages are copied pages_per_step at a time within one read
 * transaction held across the steps: the snapshot does not change, and in
 * WAL mode a reader never blocks the server's writer; between steps the
 * copy sleeps a little so the disk is shared with the tills.
 *
 * On failure the partial copy (out_path and its log files) is removed. */
kp_err store_backup_copy(const char *db_path, const char *out_path, int pages_per_step,
                         kp_error *e);
/* Copies the file at `from` to a new file at `to` (mode 0600, fsync'ed;
 * an existing `to` is refused, never overwritten). A missing source is not
 * an error (a database that never served has no log): the caller checks
 * first when it must exist. Errors name `field`. */
kp_err store_backup_copy_file(const char *from, const char *to, const char *field, kp_error *e);
/* Removes a copy: out_path, its journal files and its operation-log files. */
void store_backup_remove(const char *out_path);

#endif
