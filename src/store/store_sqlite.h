/* store_sqlite.h: the SQLite backend of kp_store (store.h), and what only a
 * SQLite database has: recovery of its operation log with the loss of a
 * damaged stretch accepted (`kopilka recover`, `kopilka backup`). */
#ifndef KOPILKA_STORE_SQLITE_H
#define KOPILKA_STORE_SQLITE_H

#include <kopilka/oplog.h>
#include <kopilka/store.h>

/* Opens (and with `create`, creates) a SQLite database at `path` in WAL mode
 * with synchronous=FULL: a committed transaction survives a crash. */
kp_err store_sqlite_open(const char *path, bool create, kp_store **out, kp_error *e);

/* Called by store_sqlite_recover() for each readable record numbered after
 * the damage (oplog.h), in order, inside the recovery's transaction on `s`
 * (a caller that salvages applies the record in a savepoint of its own).
 * An error stops the recovery, which then changes nothing. */
typedef kp_err (*store_sqlite_lost_fn)(void *ctx, kp_store *s, uint64_t seq,
                                        const void *record, size_t len, kp_error *e);

typedef struct store_sqlite_recovery {
    /* in */
    kp_redo_fn redo;              /* applies each record before any damage */
    void *redo_ctx;
    store_sqlite_lost_fn lost;    /* NULL: damage stops the recovery (KP_ERR_IO) */
    void *lost_ctx;
    /* out */
    size_t redone;                /* records applied through redo */
    kp_oplog_damage damage;       /* what was damaged; all zero when nothing */
    char explanation[2048];       /* for the operator when damaged, else "" */
} store_sqlite_recovery;

/* Replays the operation log of the database at `path` (an existing file)
 * into it, taking the log's lock for the time (KP_ERR_BUSY while a server
 * runs on it). With r->lost, damage in the middle of the log does not stop
 * it: the records before the damage are applied, r->lost is called for each
 * readable one after it, the database commits durably and the log is
 * emptied, so the dropped records are never read again. Without r->lost a
 * damaged log fails with KP_ERR_IO (field "oplog"), r->damage and
 * r->explanation say what and how to go on, and nothing is changed. */
kp_err store_sqlite_recover(const char *path, store_sqlite_recovery *r, kp_error *e);

#endif
