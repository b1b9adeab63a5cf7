/*
 * oplog.h: the operation log, the durable record of purchases and returns
 * between two commits of the database.
 *
 * Why it exists: committing the database for every group of purchases
 * writes every page a purchase touched (accounts, lots, indexes: about
 * 25 KiB a purchase on SQLite). The server instead keeps one database
 * transaction open across many groups and makes each group durable by
 * appending its operations here (a few hundred bytes each) and fsyncing
 * that. The database commit (every half second or so) then writes each
 * touched page once for thousands of purchases. After a crash the records
 * past the last database commit are replayed through the same service code
 * (deterministic: same program version, state, basket and time give the
 * same answer, and replay checks that it does).
 *
 * Files: DB.oplog-0 and DB.oplog-1 beside the database. Records go to one
 * file until a database commit finds it over KP_OPLOG_SWITCH_BYTES; then to
 * the other one from its start, overwriting records that are all older than
 * a durable database commit. Overwriting in place (no truncation) keeps
 * fdatasync free of metadata updates.
 *
 * A record: magic, payload length, sequence number (1, 2, ... with no
 * gap), a BLAKE2b of the three and the payload keyed with the database's
 * identity, the payload, padding
 * to 8 bytes. Replay reads every record with a good hash from both files
 * (looking at every 8th byte past a damaged stretch) and applies those
 * numbered after the database's mark, in order, up to the first number
 * missing. Older records behind the newest ones (a reused file) are numbered
 * at or below the mark and are not read. A torn write at a crash leaves no
 * readable record numbered after the missing one, so the log simply ends
 * there; a readable record numbered after it means the log is damaged in
 * its middle (a flipped bit, a lost sector): replay then stops with
 * KP_ERR_IO and kp_oplog_damage_get() says which numbers would be lost,
 * instead of losing acknowledged operations without a word.
 *
 * Threads: one writer thread calls add/write/commit_point; another thread
 * may call sync() at the same time (it only fdatasyncs descriptors).
 */
#ifndef KOPILKA_OPLOG_H
#define KOPILKA_OPLOG_H

#include <stddef.h>
#include <stdint.h>

#include "kopilka.h"

enum {
    KP_OPLOG_RECORD_MAX = 1 << 20,          /* payload bytes */
    KP_OPLOG_SWITCH_BYTES = 32 << 20,       /* switch files past this size */
    KP_OPLOG_PENDING_MAX = 64 << 20,        /* bytes buffered between writes */
};

typedef struct kp_oplog kp_oplog;

/* Opens or creates DB.oplog-0 and DB.oplog-1 and takes an exclusive lock on
 * them (flock): one process at a time owns the log. KP_ERR_BUSY when
 * another process (a running server) holds it. */
/* `key` (the database's identity) keys the records' hashes, so records
 * written for another database at the same path are not read. */
kp_err kp_oplog_open(const char *db_path, const uint8_t key[16], kp_oplog **out, kp_error *e);
void kp_oplog_close(kp_oplog *log);

/* Calls fn for every record with a sequence number above `after`, in order,
 * until the chain ends. *last is the last sequence number seen (or `after`).
 * An error of fn stops the replay and is returned. KP_ERR_IO (field
 * "oplog") when readable records are numbered past the end of the chain:
 * the log is damaged in its middle (see kp_oplog_damage_get()); the
 * records before the damage have been handed to fn. */
typedef kp_err (*kp_oplog_fn)(void *ctx, uint64_t seq, const uint8_t *data, size_t len,
                              kp_error *e);
kp_err kp_oplog_replay(kp_oplog *log, uint64_t after, kp_oplog_fn fn, void *ctx, uint64_t *last,
                       kp_error *e);

/* Damage found by the last kp_oplog_replay() (which then returned
 * KP_ERR_IO after applying the records before it); all zero when none. */
typedef struct kp_oplog_damage {
    uint64_t first_lost; /* the record that cannot be read: *last + 1 */
    uint64_t last_lost;  /* the highest number of a readable record after it */
    size_t readable;     /* readable records numbered after first_lost */
    int file;            /* where record first_lost should be: file 0 or 1 and */
    uint64_t offset;     /* byte offset; file is -1 when unknown */
} kp_oplog_damage;
const kp_oplog_damage *kp_oplog_damage_get(const kp_oplog *log);
/* Writes the operator's explanation of the damage and the way forward
 * (several sentences naming the files and the numbers) into buf. */
void kp_oplog_damage_explain(const kp_oplog *log, char *buf, size_t size);
/* Calls fn, in order, for every readable record numbered after the last
 * damage's first_lost (the operations that accepting the loss drops). */
kp_err kp_oplog_each_lost(kp_oplog *log, kp_oplog_fn fn, void *ctx, kp_error *e);
/* Empties both files (ftruncate, fsync): only once every record worth
 * keeping is durable in the database, as recovery that accepts a loss
 * does, so that dropped records are never replayed later. */
kp_err kp_oplog_clear(kp_oplog *log, kp_error *e);

/* Starts writing after `seq`, into file 0 from its start. Every record on
 * disk must already be durable in the database. */
void kp_oplog_start(kp_oplog *log, uint64_t seq);

/* Queues one record in memory (no system call). */
kp_err kp_oplog_add(kp_oplog *log, const void *data, size_t len, kp_error *e);
/* Drops the queued records (their work is committed to the database). */
void kp_oplog_discard(kp_oplog *log);
/* Numbers the queued records and writes them (one pwrite). Returns the mask
 * of files written (bit 0: file 0, bit 1: file 1) for sync(); *last_seq is
 * the last sequence number used. */
kp_err kp_oplog_write(kp_oplog *log, unsigned *files, uint64_t *last_seq, kp_error *e);
/* fdatasync of the files in the mask. */
kp_err kp_oplog_sync(kp_oplog *log, unsigned files, kp_error *e);
/* The last sequence number written (0 before any). */
uint64_t kp_oplog_seq(const kp_oplog *log);

/* Called at a database commit covering every record up to `seq`, once the
 * commit covering `durable_seq` is on stable storage: may switch files when
 * the current one is large and every record in the other file is at most
 * durable_seq. */
void kp_oplog_commit_point(kp_oplog *log, uint64_t durable_seq);
/* Changes the switching size (tests; default KP_OPLOG_SWITCH_BYTES). */
void kp_oplog_set_switch_bytes(kp_oplog *log, uint64_t bytes);

#endif
