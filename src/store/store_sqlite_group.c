/*
 * store_sqlite_group.c: SQLite's group commit (kp_group_ops, store.h).
 *
 * Committing the database for every group of purchases writes every page a
 * purchase touched (accounts, lots, indexes: about 25 KiB a purchase). So
 * the database transaction stays open across groups instead, and a group of
 * purchases and returns is made durable by its records in the operation log
 * (oplog.h): one pwrite per group here in end(), one fdatasync for all the
 * groups written meanwhile in sync(), on the writer's syncer thread. Such a
 * group is "soft": its work is durable but other connections do not see it.
 *
 * The database commits ("hard", which publishes the work) when the writer
 * asks (a reader's barrier, idleness, stop), at a job that has no record,
 * every COMMIT_EVERY_NS and before the transaction holds TXN_OPS_MAX logged
 * jobs. The commit stores in meta.oplog_seq the last log record whose work
 * it holds. Commits run with synchronous=NORMAL: they return once the WAL
 * frames are written, and sync() fdatasyncs the WAL, so the writer's next
 * group overlaps the sync. open() replays through the caller's redo the
 * records a crash left past the mark, before anything else touches the
 * database.
 *
 * Opened without redo (a CLI's long job beside a running server) a
 * connection has no log: every group is a database commit whose WAL sync is
 * deferred to sync() in the same way.
 */
#include "store_sqlite_group.h"
#include "store_sqlite.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <kopilka/oplog.h>

enum {
    COMMIT_EVERY_NS = 500 * 1000 * 1000, /* a database commit at least this often */
    COMMIT_IDLE_NS = 2 * 1000 * 1000,    /* ... and after this long without work */
    TXN_OPS_MAX = 200000,                /* ... and before the transaction grows past this */
};

/* The meta key of the last log record whose work the database holds. */
static const char MARK[] = "oplog_seq";

struct sqlite_group {
    kp_oplog *log;          /* NULL: every group commits the database */
    /* the writer's thread only */
    bool txn_open;
    uint64_t txn_start_ns;
    size_t txn_records;     /* logged records in the open transaction */
    size_t group_records;   /* records the open group queued */
    bool group_unlogged;    /* a job of the open group has no record */
    bool cache_filled;      /* the writer's cache was offered its preload */
    /* sync()'s thread only */
    char wal_path[4096];
    int wal_fd;             /* -1 until the first sync */
    /* handed from end() to sync() under `lock` */
    pthread_mutex_t lock;
    uint64_t ticket;        /* groups ended */
    uint64_t durable_ticket; /* groups made durable */
    unsigned sync_files;    /* log files written since the last sync */
    bool sync_wal;          /* a database commit waits for its sync */
    uint64_t sync_wal_seq;  /* the log record that commit covers */
    uint64_t durable_seq;   /* last log record whose work is durable in the database */
    /* alone(): the database's data version at the previous call */
    int64_t data_version;
    bool data_version_known;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void store_sqlite_group_free(sqlite_group *g)
{
    if (g == NULL) return;
    kp_oplog_close(g->log);
    if (g->wal_fd >= 0) close(g->wal_fd);
    pthread_mutex_destroy(&g->lock);
    free(g);
}

/* ------------------------------------------------------------------ recovery */

/* Opens the log of the database at `path`, keyed with its identity, taking
 * the log's lock. */
static kp_err log_open(kp_store *s, const char *path, kp_oplog **log, kp_error *e)
{
    uint8_t id[16];
    kp_err err = s->ops->identity(s, id);
    if (err)
        return kp_error_set(e, err, "database", "cannot read the database's identity: %s",
                            s->last_error);
    return kp_oplog_open(path, id, log, e);
}

typedef struct replay_ctx {
    kp_store *s;
    const store_sqlite_recovery *r;
    size_t redone;
} replay_ctx;

/* Says where a record that failed was: "operation-log record N: why". */
static kp_err record_failed(kp_err err, uint64_t seq, kp_error *e)
{
    if (e == NULL) return err;
    char why[sizeof e->message];
    snprintf(why, sizeof why, "%s", e->message);
    kp_error_set(e, err, e->field[0] ? e->field : "oplog", "operation-log record %llu: %s",
                 (unsigned long long)seq, why);
    return err;
}

static kp_err redo_one(void *arg, uint64_t seq, const uint8_t *data, size_t len, kp_error *e)
{
    replay_ctx *c = arg;
    kp_err err = c->r->redo(c->r->redo_ctx, c->s, data, len, e);
    if (err) return record_failed(err, seq, e);
    c->redone++;
    return KP_OK;
}

static kp_err lost_one(void *arg, uint64_t seq, const uint8_t *data, size_t len, kp_error *e)
{
    replay_ctx *c = arg;
    return c->r->lost(c->r->lost_ctx, c->s, seq, data, len, e);
}

/* Replays `log` into the database in one transaction: the records past the
 * mark through r->redo; with r->lost, past damage, the readable records
 * after it through r->lost, and the log is emptied once the database holds
 * the rest. The commit is durable (the connection is at synchronous=FULL).
 * *last: the last record the database accounts for (the log writes after
 * it). */
static kp_err replay_log(kp_store *s, kp_oplog *log, store_sqlite_recovery *r, uint64_t *last,
                         kp_error *e)
{
    r->redone = 0;
    memset(&r->damage, 0, sizeof r->damage);
    r->explanation[0] = '\0';
    int64_t mark = 0;
    kp_err err = s->ops->begin(s);
    if (err == KP_OK) err = store_sqlite_meta_int_get(s, MARK, &mark);
    if (err) {
        kp_error_set(e, err, "database", "cannot read the operation-log mark: %s",
                     s->last_error);
        s->ops->rollback(s);
        return err;
    }
    replay_ctx c = {s, r, 0};
    *last = (uint64_t)mark;
    err = kp_oplog_replay(log, (uint64_t)mark, redo_one, &c, last, e);
    bool dropped = false;
    const kp_oplog_damage *d = kp_oplog_damage_get(log);
    if (err == KP_ERR_IO && d->first_lost != 0) {
        r->damage = *d;
        kp_oplog_damage_explain(log, r->explanation, sizeof r->explanation);
        if (r->lost) {
            err = kp_oplog_each_lost(log, lost_one, &c, e);
            /* Every record up to the last readable one is dealt with:
             * applied, or listed and dropped with the log below. */
            if (err == KP_OK) {
                dropped = true;
                *last = d->last_lost;
            }
        }
    }
    if (err == KP_OK && *last != (uint64_t)mark &&
        (err = store_sqlite_meta_int_set(s, MARK, (int64_t)*last)))
        kp_error_set(e, err, "database", "cannot write the operation-log mark: %s",
                     s->last_error);
    if (err == KP_OK && (err = s->ops->commit(s)))
        kp_error_set(e, err, "database", "cannot commit the recovery: %s", s->last_error);
    if (err) s->ops->rollback(s);
    /* The dropped records must never be read again; the commit that
     * accounts for them is durable, so the log can go. */
    if (err == KP_OK && dropped) err = kp_oplog_clear(log, e);
    r->redone = c.redone;
    return err;
}

kp_err store_sqlite_recover(const char *path, store_sqlite_recovery *r, kp_error *e)
{
    kp_store *s = NULL;
    kp_oplog *log = NULL;
    uint64_t last = 0;
    kp_err err = store_sqlite_open(path, false, &s, e);
    if (err == KP_OK) err = log_open(s, path, &log, e);
    if (err == KP_OK) err = replay_log(s, log, r, &last, e);
    kp_oplog_close(log);
    kp_store_close(s);
    return err;
}

/* ------------------------------------------------------------------ groups */

/* With synchronous=NORMAL a WAL commit writes its frames but does not fsync;
 * sync() fdatasyncs the WAL file. SQLite's recovery replays WAL frames up to
 * the last valid commit, so once the fdatasync returns, every transaction
 * committed before it survives a crash or power loss. */
static kp_err defer_sync(kp_store *s, sqlite_group *g, kp_error *e)
{
    sqlite3 *db = store_sqlite_db(s);
    if (sqlite3_exec(db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL) != SQLITE_OK)
        return kp_error_set(e, KP_ERR_IO, "database", "cannot defer the journal's sync: %s",
                            sqlite3_errmsg(db));
    const char *main_path = sqlite3_db_filename(db, "main");
    int n = snprintf(g->wal_path, sizeof g->wal_path, "%s-wal", main_path ? main_path : "");
    if (n < 0 || (size_t)n >= sizeof g->wal_path)
        return kp_error_set(e, KP_ERR_INVALID, "database", "the database path is too long");
    return KP_OK;
}

static kp_err g_open(kp_store *s, const char *location, kp_redo_fn redo, void *redo_ctx,
                     size_t *recovered, kp_error *e)
{
    sqlite_group **slot = store_sqlite_group_slot(s);
    if (recovered) *recovered = 0;
    if (*slot)
        return kp_error_set(e, KP_ERR_INTERNAL, "", "this connection is a group writer already");
    sqlite_group *g = calloc(1, sizeof *g);
    if (g == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    g->wal_fd = -1;
    pthread_mutex_init(&g->lock, NULL);
    kp_err err = KP_OK;
    if (redo) {
        /* The log first: what a crash left in it goes into the database
         * before anything else reads or writes, with a durable commit. Its
         * lock keeps a second server (or a CLI's recovery) off. */
        store_sqlite_recovery r = {.redo = redo, .redo_ctx = redo_ctx};
        uint64_t last = 0;
        err = log_open(s, location, &g->log, e);
        if (err == KP_OK) err = replay_log(s, g->log, &r, &last, e);
        if (err == KP_OK) kp_oplog_start(g->log, last);
        if (recovered) *recovered = r.redone;
        /* Several sentences for the operator, more than a kp_error holds:
         * every command and the server say them the same way. */
        if (r.explanation[0]) fprintf(stderr, "kopilka: %s\n", r.explanation);
    }
    if (err == KP_OK) err = defer_sync(s, g, e);
    /* The server's writer keeps what purchases read in memory
     * (store_sqlite_cache.h); KOPILKA_WRITER_CACHE=0 turns it off. */
    const char *cache = getenv("KOPILKA_WRITER_CACHE");
    if (err == KP_OK && redo && !(cache && strcmp(cache, "0") == 0) &&
        store_sqlite_cache_enable(s) != KP_OK)
        err = kp_error_set(e, KP_ERR_NOMEM, "", "cannot make the writer's cache: %s",
                           s->last_error);
    if (err) {
        sqlite3_exec(store_sqlite_db(s), "PRAGMA synchronous=FULL", NULL, NULL, NULL);
        store_sqlite_group_free(g);
        return err;
    }
    *slot = g;
    return KP_OK;
}

static sqlite_group *group_of(kp_store *s) { return *store_sqlite_group_slot(s); }

static kp_err g_begin(kp_store *s)
{
    sqlite_group *g = group_of(s);
    g->group_records = 0;
    g->group_unlogged = false;
    if (g->txn_open) return KP_OK;
    if (!g->cache_filled && g->log) {
        /* The first group of the server's writer: what the tills read goes
         * into memory first (KOPILKA_WRITER_CACHE=lazy: as it is read). */
        g->cache_filled = true;
        const char *mode = getenv("KOPILKA_WRITER_CACHE");
        if (!(mode && strcmp(mode, "lazy") == 0) && store_sqlite_cache_preload(s) != KP_OK)
            fprintf(stderr, "kopilka: writer cache: not filled at start (%s); it fills as "
                            "purchases read\n", s->last_error);
    }
    kp_err err = s->ops->begin(s);
    if (err) return err;
    g->txn_open = true;
    g->txn_start_ns = now_ns();
    g->txn_records = 0;
    return KP_OK;
}

static kp_err g_log(kp_store *s, const void *record, size_t len)
{
    sqlite_group *g = group_of(s);
    if (g->log == NULL) return KP_OK; /* every group commits */
    if (record == NULL) {
        g->group_unlogged = true;
        return KP_OK;
    }
    kp_error e;
    if (kp_oplog_add(g->log, record, len, &e) != KP_OK) {
        g->group_unlogged = true;
        return KP_ERR_LIMIT;
    }
    g->group_records++;
    return KP_OK;
}

/* Commits the open transaction, marking every log record written so far as
 * held by the database, and hands the WAL's sync to sync(). */
static kp_err hard_commit(kp_store *s, sqlite_group *g, uint64_t *ticket)
{
    uint64_t seq = g->log ? kp_oplog_seq(g->log) : 0;
    kp_err err = KP_OK;
    if (g->log) {
        kp_oplog_discard(g->log); /* this group's records: its work is in the commit */
        err = store_sqlite_meta_int_set(s, MARK, (int64_t)seq);
    }
    if (err == KP_OK) err = s->ops->commit(s);
    if (err) s->ops->rollback(s);
    bool had_soft = g->txn_records > 0;
    g->txn_open = false;
    g->txn_records = 0;
    pthread_mutex_lock(&g->lock);
    *ticket = ++g->ticket;
    if (err == KP_OK) {
        g->sync_wal = true;
        g->sync_wal_seq = seq;
    }
    uint64_t durable = g->durable_seq;
    pthread_mutex_unlock(&g->lock);
    if (err == KP_OK) {
        if (g->log) kp_oplog_commit_point(g->log, durable);
        return KP_OK;
    }
    if (had_soft) {
        /* Acknowledged groups were only in this transaction and the log. */
        char why[sizeof s->last_error];
        snprintf(why, sizeof why, "%s", s->last_error);
        snprintf(s->last_error, sizeof s->last_error,
                 "a database commit failed (%.150s); acknowledged work is in the operation "
                 "log and a restart recovers it", why);
        return KP_ERR_IO;
    }
    /* Only this group is lost: the connection goes on. */
    return err == KP_ERR_IO ? KP_ERR_BUSY : err;
}

static kp_err g_end(kp_store *s, bool publish, uint64_t *ticket, bool *published)
{
    sqlite_group *g = group_of(s);
    *published = false;
    *ticket = 0;
    uint64_t t = now_ns();
    bool hard = publish || g->log == NULL || g->group_unlogged ||
                g->txn_records + g->group_records > TXN_OPS_MAX ||
                t - g->txn_start_ns > COMMIT_EVERY_NS;
    if (hard) {
        kp_err err = hard_commit(s, g, ticket);
        *published = err == KP_OK;
        return err;
    }
    unsigned files = 0;
    uint64_t seq = 0;
    kp_error e;
    kp_err err = kp_oplog_write(g->log, &files, &seq, &e);
    if (err) {
        /* Earlier groups' work is acknowledged and only in the log and this
         * transaction: roll back; the next open() replays the log. */
        kp_oplog_discard(g->log);
        s->ops->rollback(s);
        g->txn_open = false;
        snprintf(s->last_error, sizeof s->last_error, "%s", e.message);
        return KP_ERR_IO;
    }
    g->txn_records += g->group_records;
    pthread_mutex_lock(&g->lock);
    *ticket = ++g->ticket;
    g->sync_files |= files;
    pthread_mutex_unlock(&g->lock);
    return KP_OK;
}

/* fdatasync of the WAL, reopened when the file was replaced (a new inode);
 * a sync of any descriptor of the file flushes the file. */
static kp_err sync_wal(sqlite_group *g, kp_error *e)
{
    struct stat by_path, by_fd;
    if (stat(g->wal_path, &by_path) != 0)
        return kp_error_set(e, KP_ERR_IO, "database", "cannot find the journal %s: %s",
                            g->wal_path, strerror(errno));
    if (g->wal_fd >= 0 && (fstat(g->wal_fd, &by_fd) != 0 || by_fd.st_ino != by_path.st_ino)) {
        close(g->wal_fd);
        g->wal_fd = -1;
    }
    if (g->wal_fd < 0) g->wal_fd = open(g->wal_path, O_RDONLY | O_CLOEXEC);
    if (g->wal_fd < 0 || fdatasync(g->wal_fd) != 0)
        return kp_error_set(e, KP_ERR_IO, "database", "cannot sync the journal %s: %s",
                            g->wal_path, strerror(errno));
    return KP_OK;
}

static kp_err g_sync(kp_store *s, uint64_t ticket, kp_error *e)
{
    sqlite_group *g = group_of(s);
    pthread_mutex_lock(&g->lock);
    if (ticket <= g->durable_ticket) {
        pthread_mutex_unlock(&g->lock);
        return KP_OK;
    }
    /* Everything taken was written before this point: one sync of each
     * file covers it all. */
    uint64_t upto = g->ticket;
    bool wal = g->sync_wal;
    uint64_t wal_seq = g->sync_wal_seq;
    unsigned files = g->sync_files;
    g->sync_wal = false;
    g->sync_files = 0;
    pthread_mutex_unlock(&g->lock);
    kp_err err = wal ? sync_wal(g, e) : KP_OK;
    if (err == KP_OK && files) err = kp_oplog_sync(g->log, files, e);
    if (err) return err;
    pthread_mutex_lock(&g->lock);
    if (upto > g->durable_ticket) g->durable_ticket = upto;
    if (wal && wal_seq > g->durable_seq) g->durable_seq = wal_seq;
    pthread_mutex_unlock(&g->lock);
    return KP_OK;
}

/* Copies committed work from the WAL into the database file without
 * blocking the writer (a passive checkpoint: it stops at pages a reader
 * still needs), so the random page writes of checkpoints overlap the
 * writer's work instead of landing inside a commit. */
static kp_err g_upkeep(kp_store *s)
{
    sqlite3 *db = store_sqlite_db(s);
    int rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    if (rc == SQLITE_OK || rc == SQLITE_BUSY) return KP_OK;
    snprintf(s->last_error, sizeof s->last_error, "%s", sqlite3_errmsg(db));
    return KP_ERR_IO;
}

/* PRAGMA data_version changes when another connection commits (never for
 * this connection's own commits). */
static bool g_alone(kp_store *s)
{
    sqlite_group *g = group_of(s);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(store_sqlite_db(s), "PRAGMA data_version", -1, &st, NULL) != SQLITE_OK)
        return false;
    bool known = sqlite3_step(st) == SQLITE_ROW;
    int64_t v = known ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    bool alone = known && g->data_version_known && v == g->data_version;
    g->data_version = v;
    g->data_version_known = known;
    return alone;
}

static void g_close(kp_store *s)
{
    sqlite_group **slot = store_sqlite_group_slot(s);
    sqlite_group *g = *slot;
    if (g == NULL) return;
    /* Unpublished work is dropped as a crash drops it (the log keeps it). */
    if (g->txn_open) s->ops->rollback(s);
    sqlite_cache_stats cs;
    memset(&cs, 0, sizeof cs);
    store_sqlite_cache_disable(s, &cs);
    if (cs.clears + cs.card_hits + cs.card_misses > 0)
        fprintf(stderr,
                "kopilka: writer cache: cards %llu hits, %llu misses; accounts %llu hits, "
                "%llu misses; %llu purchases followed, %llu evictions, %llu clears; "
                "%zu cards and %zu accounts held in %zu KiB\n",
                (unsigned long long)cs.card_hits, (unsigned long long)cs.card_misses,
                (unsigned long long)cs.account_hits, (unsigned long long)cs.account_misses,
                (unsigned long long)cs.applied, (unsigned long long)cs.evictions,
                (unsigned long long)cs.clears, cs.cards, cs.accounts, cs.bytes / 1024);
    sqlite3_exec(store_sqlite_db(s), "PRAGMA synchronous=FULL", NULL, NULL, NULL);
    store_sqlite_group_free(g);
    *slot = NULL;
}

const kp_group_ops store_sqlite_group_ops = {
    .writers = 1,
    .publish_idle_ns = COMMIT_IDLE_NS,
    .open = g_open,
    .begin = g_begin,
    .log = g_log,
    .end = g_end,
    .sync = g_sync,
    .upkeep = g_upkeep,
    .alone = g_alone,
    .close = g_close,
};
