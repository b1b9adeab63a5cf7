/*
 * store_sqlite.c: the SQLite backend. One kp_store is one sqlite3 connection
 * with every statement prepared once at open (the hot path never compiles
 * SQL). WAL journal with synchronous=FULL: a commit returns only after the
 * WAL is fsync'ed, so an answered purchase survives `kill -9` and power loss.
 *
 * Invariants are also enforced by the schema (CHECK constraints on lots and
 * debt), so a bug upstream fails the operation instead of corrupting data.
 */
/* The pre-update hook (the writer's cache watches every row change): in
 * Debian's libsqlite3, declared by sqlite3.h only with this. */
#define SQLITE_ENABLE_PREUPDATE_HOOK 1
#include "store_sqlite.h"
#include "store_currency.h"
#include "store_sqlite_int.h"
#include "store_invariants.h"
#include "store_sqlite_verify.h"
#include "store_sqlite_vfs.h"
#include "store_sqlite_people.h"
#include "store_sqlite_triggers.h"
#include "store_sqlite_notify.h"
#include "store_sqlite_sales.h"
#include "store_sqlite_catalog.h"
#include "store_marketing.h"
#include "store_settle.h"
#include "store_sqlite_draws.h"
#include "store_sqlite_group.h"
#include "store_programs.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <kopilka/clock.h>
#include <sodium.h>

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS programs (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
    "  json TEXT NOT NULL, loaded_at INTEGER NOT NULL, loaded_by TEXT NOT NULL DEFAULT '',"
    "  activates_at INTEGER, cancelled_at INTEGER);"
    "CREATE TABLE IF NOT EXISTS terminals (id INTEGER PRIMARY KEY, store TEXT NOT NULL,"
    "  key_hash BLOB NOT NULL UNIQUE, created_at INTEGER NOT NULL, rotated_at INTEGER,"
    "  last_used_at INTEGER, revoked_at INTEGER);"
    "CREATE TABLE IF NOT EXISTS accounts (id INTEGER PRIMARY KEY,"
    "  balance INTEGER NOT NULL DEFAULT 0, debt INTEGER NOT NULL DEFAULT 0 CHECK (debt >= 0),"
    "  purchases INTEGER NOT NULL DEFAULT 0, spend INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS cards (number TEXT PRIMARY KEY, account_id INTEGER NOT NULL,"
    "  state INTEGER NOT NULL, registered INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS cards_account ON cards(account_id);"
    "CREATE TABLE IF NOT EXISTS lots (id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL,"
    "  kind TEXT NOT NULL, amount INTEGER NOT NULL CHECK (amount > 0),"
    "  remaining INTEGER NOT NULL CHECK (remaining >= 0 AND remaining <= amount),"
    "  earned_at INTEGER NOT NULL, active_from INTEGER NOT NULL, expires_at INTEGER NOT NULL,"
    "  op_id INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS lots_open ON lots(account_id, expires_at, id) WHERE remaining > 0;"
    "CREATE TABLE IF NOT EXISTS ops (id INTEGER PRIMARY KEY, type INTEGER NOT NULL,"
    "  account_id INTEGER NOT NULL, card TEXT NOT NULL, store TEXT, receipt TEXT,"
    "  request_hash BLOB, program_version INTEGER NOT NULL, at INTEGER NOT NULL,"
    "  amount INTEGER NOT NULL, paid INTEGER NOT NULL, earned INTEGER NOT NULL,"
    "  burned INTEGER NOT NULL, points INTEGER NOT NULL, original_op_id INTEGER,"
    "  detail TEXT, response TEXT);"
    "CREATE UNIQUE INDEX IF NOT EXISTS ops_receipt ON ops(store, receipt) WHERE receipt IS NOT NULL;"
    "CREATE INDEX IF NOT EXISTS ops_account ON ops(account_id, id);"
    "CREATE TABLE IF NOT EXISTS postings (op_id INTEGER NOT NULL, account_id INTEGER NOT NULL,"
    "  points INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS sys_accounts (id INTEGER PRIMARY KEY, code TEXT NOT NULL,"
    "  balance INTEGER NOT NULL DEFAULT 0);"
    "INSERT OR IGNORE INTO sys_accounts(id, code) VALUES (-1,'program:issued'),"
    "  (-2,'program:redeemed'), (-3,'program:expired'), (-4,'program:adjustment'),"
    "  (-5,'program:opening');"
    "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '1');";

enum {
    Q_BEGIN, Q_COMMIT, Q_ROLLBACK, Q_SAVEPOINT, Q_RELEASE, Q_ROLLBACK_TO,
    Q_PROGRAM_INSERT, Q_PROGRAM_CONFLICT, Q_PROGRAM_GET, Q_PROGRAM_RUNNING, Q_PROGRAM_LIST,
    Q_PROGRAM_NEXT, Q_PROGRAM_ROW, Q_PROGRAM_CANCEL,
    Q_TERMINAL_INSERT, Q_TERMINAL_FIND, Q_TERMINAL_LIST, Q_TERMINAL_GET, Q_TERMINAL_REVOKE,
    Q_TERMINAL_ROTATE, Q_TERMINAL_TOUCH, Q_TERMINAL_GEN_BUMP,
    Q_ACCOUNT_INSERT, Q_CARD_INSERT, Q_CARD_FIND,
    Q_ACCOUNT_GET, Q_LOTS_OPEN,
    Q_OP_FIND, Q_OP_INSERT, Q_OP_SET_DETAIL,
    Q_POSTING_INSERT, Q_POSTING_INSERT2, Q_SYS_UPDATE, Q_LOT_CHANGE, Q_LOT_EXPIRE, Q_LOT_MERGE, Q_LOT_INSERT, Q_ACCOUNT_UPDATE,
    Q_HISTORY, Q_META_GET, Q_META_SET,
    Q__COUNT
};

/* A terminal row as kp_terminal holds it (terminal_row() reads it). */
#define TERMINAL_COLUMNS                                                                        \
    "id, store, created_at, coalesce(rotated_at, 0), coalesce(last_used_at, 0), "              \
    "coalesce(revoked_at, 0)"

/* A program row as kp_program_version holds it (program_row() reads it). */
#define PROGRAM_COLUMNS                                                                         \
    "version, name, loaded_by, loaded_at, coalesce(activates_at, 0), coalesce(cancelled_at, 0)"
/* The versions that have started at ?1: the running one is the highest. */
#define PROGRAM_STARTED "cancelled_at IS NULL AND (activates_at IS NULL OR activates_at <= ?1)"
/* Versions a new one activating at coalesce(?5, ?3) would keep from running. */
#define PROGRAM_CONFLICT "cancelled_at IS NULL AND activates_at >= coalesce(?5, ?3)"
#define PROGRAM_CONFLICTS "SELECT 1 FROM programs WHERE " PROGRAM_CONFLICT

static const char *const queries[Q__COUNT] = {
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_SAVEPOINT] = "SAVEPOINT op",
    [Q_RELEASE] = "RELEASE op",
    [Q_ROLLBACK_TO] = "ROLLBACK TO op",
    /* A version that activates at or after the new one's activation
     * would never run: the insert does nothing then (program_insert). */
    [Q_PROGRAM_INSERT] = "INSERT INTO programs(name, json, loaded_at, loaded_by, activates_at) "
                         "SELECT ?1, ?2, ?3, ?4, ?5 WHERE NOT EXISTS (" PROGRAM_CONFLICTS ")",
    [Q_PROGRAM_CONFLICT] = "SELECT version, activates_at FROM programs WHERE " PROGRAM_CONFLICT
                           " ORDER BY version LIMIT 1",
    [Q_PROGRAM_GET] = "SELECT version, json FROM programs WHERE version = ?1",
    [Q_PROGRAM_RUNNING] = "SELECT version, json FROM programs WHERE " PROGRAM_STARTED
                          " ORDER BY version DESC LIMIT 1",
    [Q_PROGRAM_LIST] = "SELECT " PROGRAM_COLUMNS " FROM programs WHERE ?1 = 0 OR version < ?1 "
                       "ORDER BY version DESC LIMIT ?2",
    [Q_PROGRAM_NEXT] = "SELECT " PROGRAM_COLUMNS " FROM programs WHERE cancelled_at IS NULL "
                       "AND activates_at > ?1 AND version > ?2 "
                       "ORDER BY activates_at, version DESC LIMIT 1",
    [Q_PROGRAM_ROW] = "SELECT " PROGRAM_COLUMNS " FROM programs WHERE version = ?1",
    [Q_PROGRAM_CANCEL] = "UPDATE programs SET cancelled_at = ?2 WHERE version = ?1 "
                         "AND cancelled_at IS NULL AND activates_at > ?2",
    [Q_TERMINAL_INSERT] = "INSERT INTO terminals(store, key_hash, created_at) VALUES (?1, ?2, ?3)",
    [Q_TERMINAL_FIND] = "SELECT " TERMINAL_COLUMNS " FROM terminals "
                        "WHERE key_hash = ?1 AND revoked_at IS NULL",
    [Q_TERMINAL_LIST] = "SELECT " TERMINAL_COLUMNS " FROM terminals WHERE id > ?1 "
                        "ORDER BY id LIMIT ?2",
    [Q_TERMINAL_GET] = "SELECT " TERMINAL_COLUMNS " FROM terminals WHERE id = ?1",
    [Q_TERMINAL_REVOKE] = "UPDATE terminals SET revoked_at = ?2 WHERE id = ?1",
    [Q_TERMINAL_ROTATE] = "UPDATE terminals SET key_hash = ?2, rotated_at = ?3 WHERE id = ?1",
    [Q_TERMINAL_TOUCH] = "UPDATE terminals SET last_used_at = ?2 WHERE id = ?1 "
                         "AND (last_used_at IS NULL OR last_used_at < ?2)",
    [Q_TERMINAL_GEN_BUMP] = "INSERT INTO meta(key, value) VALUES ('terminals_generation', '1') "
                            "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
    [Q_ACCOUNT_INSERT] = "INSERT INTO accounts(created_at) VALUES (?1)",
    [Q_CARD_INSERT] =
        "INSERT INTO cards(number, account_id, state, created_at) VALUES (?1, ?2, ?3, ?4)",
    [Q_CARD_FIND] = "SELECT account_id, state, registered FROM cards WHERE number = ?1",
    [Q_ACCOUNT_GET] = "SELECT balance, debt, purchases, spend FROM accounts WHERE id = ?1",
    [Q_LOTS_OPEN] = "SELECT id, kind, amount, remaining, earned_at, active_from, expires_at, "
                    "partner FROM lots WHERE account_id = ?1 AND remaining > 0 "
                    "ORDER BY expires_at, id LIMIT ?2",
    [Q_OP_FIND] = "SELECT id, type, account_id, card, program_version, at, amount, paid, earned, "
                  "burned, points, original_op_id, request_hash, detail, response "
                  "FROM ops WHERE store = ?1 AND receipt = ?2",
    [Q_OP_INSERT] =
        "INSERT INTO ops(type, account_id, card, store, receipt, request_hash, "
        "program_version, at, amount, paid, earned, burned, points, original_op_id, "
        "detail, response) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16)",
    [Q_OP_SET_DETAIL] = "UPDATE ops SET detail = ?2 WHERE id = ?1",
    [Q_POSTING_INSERT] = "INSERT INTO postings(op_id, account_id, points) VALUES (?1, ?2, ?3)",
    [Q_POSTING_INSERT2] = "INSERT INTO postings(op_id, account_id, points) "
                          "VALUES (?1, ?2, ?3), (?1, ?4, ?5)",
    [Q_SYS_UPDATE] = "UPDATE sys_accounts SET balance = balance + ?2 WHERE id = ?1",
    [Q_LOT_CHANGE] = "UPDATE lots SET remaining = remaining + ?2 WHERE id = ?1 AND account_id = ?3",
    /* An expiry's lot change also keeps what it took (lots.expired): only
     * the expiry's plan uses it, never a purchase. */
    [Q_LOT_EXPIRE] = "UPDATE lots SET remaining = remaining + ?2, expired = expired - ?2 "
                     "WHERE id = ?1 AND account_id = ?3",
    [Q_LOT_MERGE] = "UPDATE lots SET amount = amount + ?2, remaining = remaining + ?2 + ?4, "
                    "active_from = max(active_from, ?5), expires_at = max(expires_at, ?6) "
                    "WHERE id = ?1 AND account_id = ?3",
    [Q_LOT_INSERT] =
        "INSERT INTO lots(account_id, kind, amount, remaining, earned_at, active_from, "
        "expires_at, op_id, partner) VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6, ?7, ?8)",
    [Q_ACCOUNT_UPDATE] = "UPDATE accounts SET balance = ?2, debt = ?3, purchases = purchases + ?4, "
                         "spend = spend + ?5 WHERE id = ?1",
    /* The card's own account's operations and its currency accounts'. */
    [Q_HISTORY] = "SELECT o.id, o.type, coalesce(o.store,''), coalesce(o.receipt,''), o.at, "
                  "o.points, o.amount, coalesce(c.currency, '') FROM ops o "
                  "LEFT JOIN account_currencies c ON c.sub_account_id = o.account_id "
                  "WHERE o.account_id = ?1 OR o.account_id IN (SELECT sub_account_id "
                  "FROM account_currencies WHERE account_id = ?1) ORDER BY o.id DESC LIMIT ?2",
    [Q_META_GET] = "SELECT value FROM meta WHERE key = ?1",
    [Q_META_SET] = "INSERT INTO meta(key, value) VALUES (?1, ?2) "
                   "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
};

typedef struct sqlite_store {
    kp_store base;
    sqlite3 *db;
    sqlite3_stmt *stmt[Q__COUNT];
    bool file_checked;       /* an integrity check of this connection found the
                              * file whole: verify need not read it again */
    /* System accounts are touched by every operation; their deltas are
     * summed in memory and written once per transaction, at commit, instead
     * of one UPDATE of the same hot row per posting. `sys_saved` is the
     * state at the last savepoint, restored by rollback_to. */
    int64_t sys_pending[1 - KP_SYS__MIN];
    int64_t sys_saved[1 - KP_SYS__MIN];
    sqlite_triggers *triggers; /* store_sqlite_triggers.c */
    sqlite_people *people;     /* store_sqlite_people.c */
    sqlite_notify *notify;     /* store_sqlite_notify.c */
    sqlite_sales *sales;       /* store_sqlite_sales.c */
    sqlite_catalog *catalog;   /* store_sqlite_catalog.c */
    sqlite_draws *draws;       /* store_sqlite_draws.c */
    struct sqlite_settle *settle; /* store_sqlite_settle.c: its statements, made at first use */
    sqlite_group *group;       /* store_sqlite_group.c: set while a group writer */
    /* The writer's cache of what a purchase reads (store_sqlite_cache.h),
     * NULL unless enabled. A pre-update hook sees every row this
     * connection changes: one of a table the cache holds, outside a
     * purchase's own op_insert_apply (`cache_applying`, which the cache
     * follows from the plan), evicts what that row is about.
     * `data_version` is PRAGMA data_version at the last begin(): another
     * connection's commit (a CLI beside the server) moves it, and the
     * cache is dropped. */
    sqlite_cache *cache;
    bool cache_applying;
    int64_t data_version;
    sqlite3_stmt *data_version_stmt;
    kp_account *cache_check; /* KOPILKA_CACHE_CHECK=1: every hit read again and compared */
    int64_t last_lot_id;     /* the lot plan_apply inserted last */
} sqlite_store;

sqlite_people *store_sqlite_people_of(kp_store *s)
{
    return ((sqlite_store *)s)->people;
}

sqlite_notify *store_sqlite_notify_of(kp_store *s)
{
    return ((sqlite_store *)s)->notify;
}

sqlite_sales *store_sqlite_sales_of(kp_store *s)
{
    return ((sqlite_store *)s)->sales;
}

sqlite_catalog *store_sqlite_catalog_of(kp_store *s)
{
    return ((sqlite_store *)s)->catalog;
}

sqlite_draws *store_sqlite_draws_of(kp_store *s)
{
    return ((sqlite_store *)s)->draws;
}

struct sqlite_settle **store_sqlite_settle_slot(kp_store *s)
{
    return &((sqlite_store *)s)->settle;
}

sqlite_triggers *store_sqlite_triggers_of(kp_store *s)
{
    return ((sqlite_store *)s)->triggers;
}

sqlite_group **store_sqlite_group_slot(kp_store *s) { return &((sqlite_store *)s)->group; }

sqlite3 *store_sqlite_db(kp_store *s) { return ((sqlite_store *)s)->db; }

static kp_err fail(sqlite_store *s, int rc)
{
    return store_sqlite_fail(s->db, s->base.last_error, sizeof s->base.last_error, rc);
}

static sqlite3_stmt *q(sqlite_store *s, int id) { return store_sqlite_fresh(s->stmt[id]); }

static kp_err run(sqlite_store *s, sqlite3_stmt *st)
{
    return store_sqlite_run(s->db, s->base.last_error, sizeof s->base.last_error, st);
}


static char *dup_text(const unsigned char *text)
{
    return text ? strdup((const char *)text) : NULL;
}

static void s_close(kp_store *base)
{
    sqlite_store *s = (sqlite_store *)base;
    store_sqlite_cache_disable(base, NULL);
    for (int i = 0; i < Q__COUNT; i++) sqlite3_finalize(s->stmt[i]);
    store_sqlite_triggers_close(s->triggers);
    store_sqlite_people_close(s->people);
    store_sqlite_notify_close(s->notify);
    store_sqlite_sales_close(s->sales);
    store_sqlite_catalog_close(s->catalog);
    store_sqlite_draws_close(s->draws);
    store_sqlite_settle_close(s->settle);
    store_sqlite_group_free(s->group);
    sqlite3_close(s->db);
    free(s);
}

static kp_err s_begin(kp_store *b)
{
    sqlite_store *s = (sqlite_store *)b;
    /* Refused before anything is touched: the open transaction's pending
     * system-account postings must survive a mistaken second begin(). */
    if (!sqlite3_get_autocommit(s->db)) {
        snprintf(s->base.last_error, sizeof s->base.last_error,
                 "begin() inside an open transaction");
        return KP_ERR_INTERNAL;
    }
    memset(s->sys_pending, 0, sizeof s->sys_pending);
    kp_err err = run(s, q(s, Q_BEGIN));
    if (err == KP_OK && s->cache) {
        /* BEGIN IMMEDIATE took the write lock and a snapshot: a commit by
         * another connection since our last transaction shows here. */
        int64_t v = s->data_version;
        if (sqlite3_step(s->data_version_stmt) == SQLITE_ROW)
            v = sqlite3_column_int64(s->data_version_stmt, 0);
        else
            store_sqlite_cache_clear(s->cache);
        sqlite3_reset(s->data_version_stmt);
        if (v != s->data_version) store_sqlite_cache_clear(s->cache);
        s->data_version = v;
    }
    return err;
}

static kp_err sys_flush(sqlite_store *s)
{
    for (int64_t id = -1; id >= KP_SYS__MIN; id--) {
        int64_t *delta = &s->sys_pending[-id];
        if (*delta == 0) continue;
        sqlite3_stmt *st = q(s, Q_SYS_UPDATE);
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, *delta);
        kp_err err = run(s, st);
        if (err) return err;
        *delta = 0;
    }
    return KP_OK;
}

static kp_err s_commit(kp_store *b)
{
    sqlite_store *s = (sqlite_store *)b;
    kp_err err = sys_flush(s);
    return err ? err : run(s, q(s, Q_COMMIT));
}

static kp_err s_savepoint(kp_store *b)
{
    sqlite_store *s = (sqlite_store *)b;
    memcpy(s->sys_saved, s->sys_pending, sizeof s->sys_saved);
    if (s->cache) store_sqlite_cache_savepoint(s->cache);
    return run(s, q(s, Q_SAVEPOINT));
}
static kp_err s_release(kp_store *b) { sqlite_store *s = (sqlite_store *)b; return run(s, q(s, Q_RELEASE)); }

static kp_err s_rollback(kp_store *b)
{
    sqlite_store *s = (sqlite_store *)b;
    memset(s->sys_pending, 0, sizeof s->sys_pending);
    if (s->cache) store_sqlite_cache_clear(s->cache);
    if (sqlite3_get_autocommit(s->db)) return KP_OK; /* SQLite already rolled back */
    return run(s, q(s, Q_ROLLBACK));
}

static kp_err s_rollback_to(kp_store *b)
{
    sqlite_store *s = (sqlite_store *)b;
    memcpy(s->sys_pending, s->sys_saved, sizeof s->sys_pending);
    if (s->cache) store_sqlite_cache_rollback_to(s->cache);
    kp_err err = run(s, q(s, Q_ROLLBACK_TO));
    if (err == KP_OK) err = run(s, q(s, Q_RELEASE));
    return err;
}

static kp_err s_program_insert(kp_store *b, const char *json, const kp_program_version *meta,
                               int64_t *version)
{
    sqlite_store *s = (sqlite_store *)b;
    sqlite3_stmt *st = q(s, Q_PROGRAM_INSERT);
    sqlite3_bind_text(st, 1, meta->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, json, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, meta->loaded_at);
    sqlite3_bind_text(st, 4, meta->loaded_by, -1, SQLITE_STATIC);
    if (meta->activates_at) sqlite3_bind_int64(st, 5, meta->activates_at);
    else sqlite3_bind_null(st, 5);
    kp_err err = run(s, st);
    if (err) return err;
    if (sqlite3_changes(s->db) == 1) {
        *version = sqlite3_last_insert_rowid(s->db);
        return KP_OK;
    }
    /* One statement: nothing came between the check and the insert. */
    st = q(s, Q_PROGRAM_CONFLICT);
    sqlite3_bind_int64(st, 3, meta->loaded_at);
    if (meta->activates_at) sqlite3_bind_int64(st, 5, meta->activates_at);
    else sqlite3_bind_null(st, 5);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        store_program_conflict(b, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1));
        err = KP_ERR_CONFLICT;
    } else {
        err = rc == SQLITE_DONE ? KP_ERR_INTERNAL : fail(s, rc);
        if (rc == SQLITE_DONE)
            snprintf(s->base.last_error, sizeof s->base.last_error,
                     "the program version was not inserted, and no version conflicts with it");
    }
    sqlite3_reset(st);
    return err;
}

static kp_err s_program_get(kp_store *b, int64_t version, kp_time at, char **json,
                            int64_t *version_out)
{
    sqlite_store *s = (sqlite_store *)b;
    *json = NULL;
    sqlite3_stmt *st = q(s, version ? Q_PROGRAM_GET : Q_PROGRAM_RUNNING);
    sqlite3_bind_int64(st, 1, version ? version : at);
    int rc = sqlite3_step(st);
    kp_err err = KP_OK;
    if (rc == SQLITE_ROW) {
        *version_out = sqlite3_column_int64(st, 0);
        *json = dup_text(sqlite3_column_text(st, 1));
        if (*json == NULL) err = KP_ERR_NOMEM;
    } else {
        err = rc == SQLITE_DONE ? KP_ERR_NOT_FOUND : fail(s, rc);
    }
    sqlite3_reset(st);
    return err;
}

static void program_row(sqlite3_stmt *st, kp_program_version *out)
{
    memset(out, 0, sizeof *out);
    out->version = sqlite3_column_int64(st, 0);
    const unsigned char *name = sqlite3_column_text(st, 1);
    const unsigned char *by = sqlite3_column_text(st, 2);
    snprintf(out->name, sizeof out->name, "%s", name ? (const char *)name : "");
    snprintf(out->loaded_by, sizeof out->loaded_by, "%s", by ? (const char *)by : "");
    out->loaded_at = sqlite3_column_int64(st, 3);
    out->activates_at = sqlite3_column_int64(st, 4);
    out->cancelled_at = sqlite3_column_int64(st, 5);
}

static kp_err s_program_list(kp_store *b, int64_t before, kp_program_version *out, size_t limit,
                             size_t *n)
{
    sqlite_store *s = (sqlite_store *)b;
    *n = 0;
    sqlite3_stmt *st = q(s, Q_PROGRAM_LIST);
    sqlite3_bind_int64(st, 1, before);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
    int rc;
    while (*n < limit && (rc = sqlite3_step(st)) == SQLITE_ROW) program_row(st, &out[(*n)++]);
    kp_err err = *n == limit || rc == SQLITE_DONE ? KP_OK : fail(s, rc);
    if (err) *n = 0;
    sqlite3_reset(st);
    return err;
}

static kp_err s_program_schedule(kp_store *b, kp_time at, int64_t *running,
                                 kp_program_version *next)
{
    sqlite_store *s = (sqlite_store *)b;
    *running = 0;
    memset(next, 0, sizeof *next);
    sqlite3_stmt *st = q(s, Q_PROGRAM_RUNNING);
    sqlite3_bind_int64(st, 1, at);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *running = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return fail(s, rc);
    st = q(s, Q_PROGRAM_NEXT);
    sqlite3_bind_int64(st, 1, at);
    sqlite3_bind_int64(st, 2, *running);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) program_row(st, next);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        *running = 0;
        return fail(s, rc);
    }
    return KP_OK;
}

static kp_err s_program_cancel(kp_store *b, int64_t version, kp_time now)
{
    sqlite_store *s = (sqlite_store *)b;
    sqlite3_stmt *st = q(s, Q_PROGRAM_CANCEL);
    sqlite3_bind_int64(st, 1, version);
    sqlite3_bind_int64(st, 2, now);
    kp_err err = run(s, st);
    if (err || sqlite3_changes(s->db) == 1) return err;
    st = q(s, Q_PROGRAM_ROW);
    sqlite3_bind_int64(st, 1, version);
    int rc = sqlite3_step(st);
    kp_program_version row;
    if (rc == SQLITE_ROW) program_row(st, &row);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) return KP_ERR_NOT_FOUND;
    if (rc != SQLITE_ROW) return fail(s, rc);
    return store_program_uncancellable(b, &row);
}

static kp_err s_terminal_insert(kp_store *b, const char *store, const uint8_t key_hash[32],
                                int64_t *id)
{
    sqlite_store *s = (sqlite_store *)b;
    sqlite3_stmt *st = q(s, Q_TERMINAL_INSERT);
    sqlite3_bind_text(st, 1, store, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, key_hash, 32, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, kp_clock_now(NULL));
    kp_err err = run(s, st);
    if (err == KP_OK) *id = sqlite3_last_insert_rowid(s->db);
    return err;
}

static void terminal_row(sqlite3_stmt *st, kp_terminal *out)
{
    memset(out, 0, sizeof *out);
    out->id = sqlite3_column_int64(st, 0);
    store_sqlite_copy_text(out->store, sizeof out->store, sqlite3_column_text(st, 1));
    out->created_at = sqlite3_column_int64(st, 2);
    out->rotated_at = sqlite3_column_int64(st, 3);
    out->last_used_at = sqlite3_column_int64(st, 4);
    out->revoked_at = sqlite3_column_int64(st, 5);
}

static kp_err s_terminal_find(kp_store *b, const uint8_t key_hash[32], kp_terminal *out)
{
    sqlite_store *s = (sqlite_store *)b;
    sqlite3_stmt *st = q(s, Q_TERMINAL_FIND);
    sqlite3_bind_blob(st, 1, key_hash, 32, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    kp_err err = KP_OK;
    if (rc == SQLITE_ROW)
        terminal_row(st, out);
    else
        err = rc == SQLITE_DONE ? KP_ERR_NOT_FOUND : fail(s, rc);
    sqlite3_reset(st);
    return err;
}

static kp_err s_terminal_get(kp_store *b, int64_t id, kp_terminal *out)
{
    sqlite_store *s = (sqlite_store *)b;
    sqlite3_stmt *st = q(s, Q_TERMINAL_GET);
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    kp_err err = KP_OK;
    if (rc == SQLITE_ROW)
        terminal_row(st, out);
    else
        err = rc == SQLITE_DONE ? KP_ERR_NOT_FOUND : fail(s, rc);
    sqlite3_reset(st);
    return err;
}

static kp_err s_terminal_list(kp_store *b, int64_t after_id, kp_terminal *out, size_t limit,
                              size_t *n)
{
    sqlite_store *s = (sqlite_store *)b;
    *n = 0;
    sqlite3_stmt *st = q(s, Q_TERMINAL_LIST);
    sqlite3_bind_int64(st, 1, after_id);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < limit) terminal_row(st, &out[(*n)++]);
    kp_err err = rc == SQLITE_DONE || rc == SQLITE_ROW ? KP_OK : fail(s, rc);
    sqlite3_reset(st);
    return err;
}

/* Revokes (new_hash NULL) or rotates the key of terminal `id`, and bumps
 * the generation that running servers poll (kp_store_ops.terminal_generation). */
static kp_err s_terminal_change(kp_store *b, int64_t id, const uint8_t *new_hash, kp_time now)
{
    sqlite_store *s = (sqlite_store *)b;
    sqlite3_stmt *st = q(s, new_hash ? Q_TERMINAL_ROTATE : Q_TERMINAL_REVOKE);
    sqlite3_bind_int64(st, 1, id);
    if (new_hash) {
        sqlite3_bind_blob(st, 2, new_hash, 32, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, now);
    } else {
        sqlite3_bind_int64(st, 2, now);
    }
    kp_err err = run(s, st);
    if (err == KP_OK && sqlite3_changes(s->db) == 0) return KP_ERR_NOT_FOUND;
    return err ? err : run(s, q(s, Q_TERMINAL_GEN_BUMP));
}

static kp_err s_terminal_touch(kp_store *b, int64_t id, kp_time used_at)
{
    sqlite_store *s = (sqlite_store *)b;
    sqlite3_stmt *st = q(s, Q_TERMINAL_TOUCH);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, used_at);
    return run(s, st);
}

static kp_err s_terminal_generation(kp_store *b, int64_t *generation)
{
    return store_sqlite_meta_int_get(b, "terminals_generation", generation);
}

static kp_err s_card_create(kp_store *b, const char *number, kp_card_state state, kp_time now,
                            int64_t *account_id)
{
    sqlite_store *s = (sqlite_store *)b;
    sqlite3_stmt *st = q(s, Q_ACCOUNT_INSERT);
    sqlite3_bind_int64(st, 1, now);
    kp_err err = run(s, st);
    if (err != KP_OK) return err;
    *account_id = sqlite3_last_insert_rowid(s->db);
    st = q(s, Q_CARD_INSERT);
    sqlite3_bind_text(st, 1, number, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, *account_id);
    sqlite3_bind_int(st, 3, (int)state);
    sqlite3_bind_int64(st, 4, now);
    return run(s, st);
}

static kp_err s_card_find(kp_store *b, const char *number, kp_card *out)
{
    sqlite_store *s = (sqlite_store *)b;
    sqlite3_stmt *st = q(s, Q_CARD_FIND);
    sqlite3_bind_text(st, 1, number, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    kp_err err = KP_OK;
    if (rc == SQLITE_ROW) {
        store_sqlite_copy_text(out->number, sizeof out->number, (const unsigned char *)number);
        out->account_id = sqlite3_column_int64(st, 0);
        out->state = (kp_card_state)sqlite3_column_int(st, 1);
        out->registered = sqlite3_column_int(st, 2) != 0;
    } else {
        err = rc == SQLITE_DONE ? KP_ERR_NOT_FOUND : fail(s, rc);
    }
    sqlite3_reset(st);
    return err;
}

static kp_err s_account_load(kp_store *b, int64_t account_id, kp_account *out)
{
    sqlite_store *s = (sqlite_store *)b;
    sqlite3_stmt *st = q(s, Q_ACCOUNT_GET);
    sqlite3_bind_int64(st, 1, account_id);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        kp_err err = rc == SQLITE_DONE ? KP_ERR_NOT_FOUND : fail(s, rc);
        sqlite3_reset(st);
        return err;
    }
    out->id = account_id;
    out->balance = sqlite3_column_int64(st, 0);
    out->debt = sqlite3_column_int64(st, 1);
    out->purchases = sqlite3_column_int64(st, 2);
    out->spend_minor = sqlite3_column_int64(st, 3);
    out->registered = false;
    out->n_lots = 0;
    sqlite3_reset(st);
    st = q(s, Q_LOTS_OPEN);
    sqlite3_bind_int64(st, 1, account_id);
    sqlite3_bind_int64(st, 2, KP_LOTS_MAX + 1); /* one more: to refuse, never to cut short */
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (out->n_lots == KP_LOTS_MAX) {
            /* The ledger never opens more (a credit joins a lot at the cap):
             * such an account comes from elsewhere, and an operation on part
             * of its lots would burn, expire or claw back the wrong points. */
            sqlite3_reset(st);
            out->n_lots = 0;
            snprintf(s->base.last_error, sizeof s->base.last_error,
                     "account %lld has more than %d open lots, more than one operation may "
                     "see; `kopilka lots merge DB` merges them",
                     (long long)account_id, KP_LOTS_MAX);
            return KP_ERR_LIMIT;
        }
        kp_lot *l = &out->lots[out->n_lots++];
        l->id = sqlite3_column_int64(st, 0);
        store_sqlite_copy_text(l->kind, sizeof l->kind, sqlite3_column_text(st, 1));
        l->amount = sqlite3_column_int64(st, 2);
        l->remaining = sqlite3_column_int64(st, 3);
        l->earned_at = sqlite3_column_int64(st, 4);
        l->active_from = sqlite3_column_int64(st, 5);
        l->expires_at = sqlite3_column_int64(st, 6);
        store_sqlite_copy_text(l->partner, sizeof l->partner, sqlite3_column_text(st, 7));
    }
    kp_err err = (rc == SQLITE_DONE || rc == SQLITE_ROW) ? KP_OK : fail(s, rc);
    sqlite3_reset(st);
    return err;
}

static kp_err s_op_find(kp_store *b, const char *store, const char *receipt, kp_op_row *out)
{
    sqlite_store *s = (sqlite_store *)b;
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = q(s, Q_OP_FIND);
    sqlite3_bind_text(st, 1, store, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, receipt, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    kp_err err = KP_OK;
    if (rc == SQLITE_ROW) {
        out->id = sqlite3_column_int64(st, 0);
        out->type = (kp_op_type)sqlite3_column_int(st, 1);
        out->account_id = sqlite3_column_int64(st, 2);
        store_sqlite_copy_text(out->card, sizeof out->card, sqlite3_column_text(st, 3));
        store_sqlite_copy_text(out->store, sizeof out->store, (const unsigned char *)store);
        store_sqlite_copy_text(out->receipt, sizeof out->receipt, (const unsigned char *)receipt);
        out->program_version = sqlite3_column_int64(st, 4);
        out->at = sqlite3_column_int64(st, 5);
        out->amount_minor = sqlite3_column_int64(st, 6);
        out->paid_minor = sqlite3_column_int64(st, 7);
        out->earned = sqlite3_column_int64(st, 8);
        out->burned = sqlite3_column_int64(st, 9);
        out->points = sqlite3_column_int64(st, 10);
        out->original_op_id = sqlite3_column_int64(st, 11);
        if (sqlite3_column_bytes(st, 12) == 16)
            memcpy(out->request_hash, sqlite3_column_blob(st, 12), 16);
        out->detail = dup_text(sqlite3_column_text(st, 13));
        out->response = dup_text(sqlite3_column_text(st, 14));
    } else {
        err = rc == SQLITE_DONE ? KP_ERR_NOT_FOUND : fail(s, rc);
    }
    sqlite3_reset(st);
    return err;
}

static kp_err s_ops_scan(kp_store *b, kp_time from, kp_time to,
                         bool (*fn)(void *ctx, const kp_op_row *row), void *ctx)
{
    sqlite_store *s = (sqlite_store *)b;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(
        s->db,
        "SELECT id, type, account_id, card, coalesce(store,''), coalesce(receipt,''), "
        "program_version, at, amount, paid, earned, burned, points, "
        "coalesce(original_op_id, 0), detail, response FROM ops "
        "WHERE type IN (1, 2) AND at >= ?1 AND (?2 = 0 OR at < ?2) ORDER BY at, id",
        -1, &st, NULL);
    if (rc != SQLITE_OK) return fail(s, rc);
    sqlite3_bind_int64(st, 1, from);
    sqlite3_bind_int64(st, 2, to);
    kp_op_row *row = calloc(1, sizeof *row);
    if (!row) {
        sqlite3_finalize(st);
        return KP_ERR_NOMEM;
    }
    kp_err err = KP_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        row->id = sqlite3_column_int64(st, 0);
        row->type = (kp_op_type)sqlite3_column_int(st, 1);
        row->account_id = sqlite3_column_int64(st, 2);
        store_sqlite_copy_text(row->card, sizeof row->card, sqlite3_column_text(st, 3));
        store_sqlite_copy_text(row->store, sizeof row->store, sqlite3_column_text(st, 4));
        store_sqlite_copy_text(row->receipt, sizeof row->receipt, sqlite3_column_text(st, 5));
        row->program_version = sqlite3_column_int64(st, 6);
        row->at = sqlite3_column_int64(st, 7);
        row->amount_minor = sqlite3_column_int64(st, 8);
        row->paid_minor = sqlite3_column_int64(st, 9);
        row->earned = sqlite3_column_int64(st, 10);
        row->burned = sqlite3_column_int64(st, 11);
        row->points = sqlite3_column_int64(st, 12);
        row->original_op_id = sqlite3_column_int64(st, 13);
        row->detail = (char *)sqlite3_column_text(st, 14);
        row->response = (char *)sqlite3_column_text(st, 15);
        if (!fn(ctx, row)) break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) err = fail(s, rc);
    sqlite3_finalize(st);
    free(row);
    return err;
}

static kp_err s_op_insert(kp_store *b, kp_op_row *row)
{
    sqlite_store *s = (sqlite_store *)b;
    sqlite3_stmt *st = q(s, Q_OP_INSERT);
    sqlite3_bind_int(st, 1, (int)row->type);
    sqlite3_bind_int64(st, 2, row->account_id);
    sqlite3_bind_text(st, 3, row->card, -1, SQLITE_STATIC);
    if (row->receipt[0]) {
        sqlite3_bind_text(st, 4, row->store, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, row->receipt, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 6, row->request_hash, 16, SQLITE_STATIC);
    }
    sqlite3_bind_int64(st, 7, row->program_version);
    sqlite3_bind_int64(st, 8, row->at);
    sqlite3_bind_int64(st, 9, row->amount_minor);
    sqlite3_bind_int64(st, 10, row->paid_minor);
    sqlite3_bind_int64(st, 11, row->earned);
    sqlite3_bind_int64(st, 12, row->burned);
    sqlite3_bind_int64(st, 13, row->points);
    if (row->original_op_id) sqlite3_bind_int64(st, 14, row->original_op_id);
    if (row->detail) sqlite3_bind_text(st, 15, row->detail, -1, SQLITE_STATIC);
    if (row->response) sqlite3_bind_text(st, 16, row->response, -1, SQLITE_STATIC);
    kp_err err = run(s, st);
    if (err != KP_OK) return err;
    row->id = sqlite3_last_insert_rowid(s->db);
    if (row->notify == NULL) return KP_OK;
    /* The operation's notification event, in the same transaction. */
    row->notify->op_id = row->id;
    snprintf(row->notify->key, sizeof row->notify->key, "op:%lld", (long long)row->id);
    return store_sqlite_notify_ops.event_insert(b, row->notify);
}

static kp_err s_op_set_detail(kp_store *b, int64_t op_id, const char *detail)
{
    sqlite_store *s = (sqlite_store *)b;
    sqlite3_stmt *st = q(s, Q_OP_SET_DETAIL);
    sqlite3_bind_int64(st, 1, op_id);
    sqlite3_bind_text(st, 2, detail, -1, SQLITE_STATIC);
    kp_err err = run(s, st);
    if (err == KP_OK && sqlite3_changes(s->db) == 0) {
        snprintf(s->base.last_error, sizeof s->base.last_error, "no operation %lld",
                 (long long)op_id);
        return KP_ERR_NOT_FOUND;
    }
    return err;
}

static kp_err merge_account_lots(sqlite_store *s, int64_t account_id, size_t max, kp_time now,
                                 size_t *before, size_t *after);

static kp_err s_plan_apply(kp_store *b, int64_t op_id, const kp_ledger_plan *plan, kp_time now)
{
    sqlite_store *s = (sqlite_store *)b;
    /* The last gate before the disk, in every build: a plan that does not
     * balance is never written, whoever built it. */
    kp_error check;
    kp_err err = kp_ledger_plan_check(plan, &check);
    if (err) {
        snprintf(s->base.last_error, sizeof s->base.last_error, "%s", check.message);
        return err;
    }
    /* Postings go in pairs (customer, system account): one statement a pair. */
    for (size_t i = 0; i < plan->n_postings && err == KP_OK;) {
        const kp_posting *p = &plan->postings[i];
        sqlite3_stmt *st;
        if (i + 1 < plan->n_postings) {
            st = q(s, Q_POSTING_INSERT2);
            sqlite3_bind_int64(st, 4, p[1].account);
            sqlite3_bind_int64(st, 5, p[1].points);
        } else {
            st = q(s, Q_POSTING_INSERT);
        }
        sqlite3_bind_int64(st, 1, op_id);
        sqlite3_bind_int64(st, 2, p[0].account);
        sqlite3_bind_int64(st, 3, p[0].points);
        err = run(s, st);
        size_t n = i + 1 < plan->n_postings ? 2 : 1;
        for (size_t k = 0; k < n; k++) {
            int64_t account = plan->postings[i + k].account;
            if (account < 0) {
                if (account < KP_SYS__MIN) {
                    snprintf(s->base.last_error, sizeof s->base.last_error,
                             "unknown system account %lld", (long long)account);
                    return KP_ERR_INTERNAL;
                }
                s->sys_pending[-account] += plan->postings[i + k].points;
            }
        }
        i += n;
    }
    /* A purchase usually burns from and earns into the same merged lot: that
     * lot's change is folded into the merge, one UPDATE instead of two. */
    int64_t merge_id = plan->has_new_lot ? plan->new_lot.id : 0, merge_change = 0;
    for (size_t i = 0; i < plan->n_changes && err == KP_OK; i++) {
        if (merge_id != 0 && plan->changes[i].lot_id == merge_id) {
            merge_change += plan->changes[i].delta;
            continue;
        }
        sqlite3_stmt *st = q(s, plan->type == KP_OP_EXPIRE ? Q_LOT_EXPIRE : Q_LOT_CHANGE);
        sqlite3_bind_int64(st, 1, plan->changes[i].lot_id);
        sqlite3_bind_int64(st, 2, plan->changes[i].delta);
        sqlite3_bind_int64(st, 3, plan->account_id);
        err = run(s, st);
        if (err == KP_OK && sqlite3_changes(s->db) != 1) {
            snprintf(s->base.last_error, sizeof s->base.last_error,
                     "lot %lld of account %lld not found", (long long)plan->changes[i].lot_id,
                     (long long)plan->account_id);
            err = KP_ERR_INTERNAL;
        }
    }
    if (err == KP_OK && plan->has_new_lot) {
        const kp_lot *l = &plan->new_lot;
        sqlite3_stmt *st;
        if (l->id) {
            st = q(s, Q_LOT_MERGE);
            sqlite3_bind_int64(st, 1, l->id);
            sqlite3_bind_int64(st, 2, l->amount);
            sqlite3_bind_int64(st, 3, plan->account_id);
            sqlite3_bind_int64(st, 4, merge_change);
            sqlite3_bind_int64(st, 5, l->active_from);
            sqlite3_bind_int64(st, 6, l->expires_at);
        } else {
            st = q(s, Q_LOT_INSERT);
            s->last_lot_id = 0;
            sqlite3_bind_int64(st, 1, plan->account_id);
            sqlite3_bind_text(st, 2, l->kind, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 3, l->amount);
            sqlite3_bind_int64(st, 4, l->earned_at ? l->earned_at : now);
            sqlite3_bind_int64(st, 5, l->active_from);
            sqlite3_bind_int64(st, 6, l->expires_at);
            sqlite3_bind_int64(st, 7, op_id);
            sqlite3_bind_text(st, 8, l->partner, -1, SQLITE_STATIC);
        }
        err = run(s, st);
        if (err == KP_OK && l->id == 0) s->last_lot_id = sqlite3_last_insert_rowid(s->db);
        if (err == KP_OK && sqlite3_changes(s->db) != 1) {
            snprintf(s->base.last_error, sizeof s->base.last_error,
                     "lot %lld of account %lld not found", (long long)l->id,
                     (long long)plan->account_id);
            err = KP_ERR_INTERNAL;
        }
    }
    /* Only a plan that would leave the account over KP_LOTS_MAX open lots
     * asks for this (the ledger sets it at the cap): the nearest pairs
     * merge back down to it here, in the operation's transaction. */
    if (err == KP_OK && plan->lots_merge) {
        size_t before = 0, after = 0;
        err = merge_account_lots(s, plan->account_id, KP_LOTS_MAX, plan->lots_merge_at, &before,
                                 &after);
        if (err == KP_OK && after > KP_LOTS_MAX) {
            snprintf(s->base.last_error, sizeof s->base.last_error,
                     "the operation would leave account %lld with %zu open lots, more than %d, "
                     "and they are of too many kinds and pending states to merge",
                     (long long)plan->account_id, after, KP_LOTS_MAX);
            err = KP_ERR_LIMIT;
        }
    }
    if (err == KP_OK) {
        sqlite3_stmt *st = q(s, Q_ACCOUNT_UPDATE);
        sqlite3_bind_int64(st, 1, plan->account_id);
        sqlite3_bind_int64(st, 2, plan->balance_after);
        sqlite3_bind_int64(st, 3, plan->debt_after);
        sqlite3_bind_int64(st, 4, plan->purchases_delta);
        sqlite3_bind_int64(st, 5, plan->spend_delta_minor);
        err = run(s, st);
        if (err == KP_OK && sqlite3_changes(s->db) == 0) {
            /* The caller rolls back to its savepoint: the postings written
             * above go with it. */
            snprintf(s->base.last_error, sizeof s->base.last_error,
                     "plan_apply: account %lld does not exist", (long long)plan->account_id);
            err = KP_ERR_INTERNAL;
        }
    }
    /* Outside a transaction nothing would reach commit(): write now. */
    if (err == KP_OK && sqlite3_get_autocommit(s->db)) err = sys_flush(s);
    return err;
}

static kp_err s_history(kp_store *b, int64_t account_id, kp_history_item *items, size_t limit,
                        size_t *n)
{
    sqlite_store *s = (sqlite_store *)b;
    *n = 0;
    sqlite3_stmt *st = q(s, Q_HISTORY);
    sqlite3_bind_int64(st, 1, account_id);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < limit) {
        kp_history_item *h = &items[(*n)++];
        h->op_id = sqlite3_column_int64(st, 0);
        h->type = (kp_op_type)sqlite3_column_int(st, 1);
        store_sqlite_copy_text(h->store, sizeof h->store, sqlite3_column_text(st, 2));
        store_sqlite_copy_text(h->receipt, sizeof h->receipt, sqlite3_column_text(st, 3));
        h->at = sqlite3_column_int64(st, 4);
        h->points = sqlite3_column_int64(st, 5);
        h->amount_minor = sqlite3_column_int64(st, 6);
        store_sqlite_copy_text(h->currency, sizeof h->currency, sqlite3_column_text(st, 7));
    }
    kp_err err = (rc == SQLITE_DONE || rc == SQLITE_ROW) ? KP_OK : fail(s, rc);
    sqlite3_reset(st);
    return err;
}

/* SQLite's own check of the file: quick_check reads every page and record
 * (time grows with the file's size, about as a full read of it);
 * integrity_check also checks that every index matches its table (more
 * time again: each index entry is looked up). Each row it gives that is
 * not "ok" is a problem. SQLITE_CORRUPT or SQLITE_NOTADB while checking is
 * one problem too: the check could not even read the file. */
static kp_err s_integrity(kp_store *b, bool full, void (*report)(void *ctx, const char *line),
                          void *ctx, int64_t *problems)
{
    sqlite_store *s = (sqlite_store *)b;
    *problems = 0;
    int rc = store_sqlite_file_check(s->db, full, report, ctx, problems);
    if (rc == SQLITE_DONE && *problems == 0) s->file_checked = true;
    return rc == SQLITE_DONE ? KP_OK : fail(s, rc);
}

/* sqlite3_interrupt is the one call SQLite allows from another thread. */
static void s_interrupt(kp_store *b) { sqlite3_interrupt(((sqlite_store *)b)->db); }

/* Merges the open lots of one account down to `max` with
 * kp_lots_merge_plan() at `now`: reads them whole (however many), applies
 * each merge. *before and *after are the open lots before and after; *after
 * stays above `max` when no more of them may merge. */
static kp_err merge_account_lots(sqlite_store *s, int64_t account_id, size_t max, kp_time now,
                                 size_t *before, size_t *after)
{
    sqlite3_stmt *lots = NULL, *into = NULL, *from = NULL;
    kp_lot *all = NULL;
    kp_lot_merge *merges = NULL;
    size_t cap = 0, got = 0;
    kp_err err = KP_OK;
    int rc;
    if ((rc = sqlite3_prepare_v2(s->db,
                                 "SELECT id, kind, amount, remaining, earned_at, active_from, "
                                 "expires_at, partner FROM lots WHERE account_id = ?1 "
                                 "AND remaining > 0 ORDER BY expires_at, id",
                                 -1, &lots, NULL)) ||
        (rc =
             sqlite3_prepare_v2(s->db,
                                "UPDATE lots SET amount = amount + ?2, remaining = remaining + ?2, "
                                "active_from = ?3, expires_at = ?4 WHERE id = ?1",
                                -1, &into, NULL)) ||
        (rc = sqlite3_prepare_v2(s->db, "UPDATE lots SET remaining = 0 WHERE id = ?1", -1, &from,
                                 NULL))) {
        err = fail(s, rc);
        goto out;
    }
    sqlite3_bind_int64(lots, 1, account_id);
    while ((rc = sqlite3_step(lots)) == SQLITE_ROW) {
        if (got == cap) {
            size_t more = cap ? 2 * cap : KP_LOTS_MAX + 1;
            kp_lot *a = realloc(all, more * sizeof *all);
            if (a == NULL) {
                snprintf(s->base.last_error, sizeof s->base.last_error, "out of memory");
                err = KP_ERR_NOMEM;
                goto out;
            }
            all = a;
            cap = more;
        }
        kp_lot *l = &all[got++];
        l->id = sqlite3_column_int64(lots, 0);
        store_sqlite_copy_text(l->kind, sizeof l->kind, sqlite3_column_text(lots, 1));
        l->amount = sqlite3_column_int64(lots, 2);
        l->remaining = sqlite3_column_int64(lots, 3);
        l->earned_at = sqlite3_column_int64(lots, 4);
        l->active_from = sqlite3_column_int64(lots, 5);
        l->expires_at = sqlite3_column_int64(lots, 6);
        store_sqlite_copy_text(l->partner, sizeof l->partner, sqlite3_column_text(lots, 7));
    }
    if (rc != SQLITE_DONE) {
        err = fail(s, rc);
        goto out;
    }
    size_t left = got;
    if (got > max) {
        if ((merges = malloc((got - max) * sizeof *merges)) == NULL) {
            snprintf(s->base.last_error, sizeof s->base.last_error, "out of memory");
            err = KP_ERR_NOMEM;
            goto out;
        }
        size_t n_merges = kp_lots_merge_plan(all, &left, max, now, merges);
        for (size_t m = 0; m < n_merges && err == KP_OK; m++) {
            sqlite3_bind_int64(into, 1, merges[m].into_id);
            sqlite3_bind_int64(into, 2, merges[m].points);
            sqlite3_bind_int64(into, 3, merges[m].active_from);
            sqlite3_bind_int64(into, 4, merges[m].expires_at);
            sqlite3_bind_int64(from, 1, merges[m].from_id);
            if ((err = run(s, into)) == KP_OK) err = run(s, from);
        }
    }
    *before = got;
    *after = left;
out:
    sqlite3_finalize(lots);
    sqlite3_finalize(into);
    sqlite3_finalize(from);
    free(all);
    free(merges);
    return err;
}

/* kp_store_ops.lots_merge: finds the accounts over `max` open lots and
 * merges each one's with merge_account_lots(). */
static kp_err
s_lots_merge(kp_store *b, size_t max, kp_time now,
             void (*report)(void *ctx, int64_t account_id, size_t before, size_t after), void *ctx)
{
    sqlite_store *s = (sqlite_store *)b;
    sqlite3_stmt *over = NULL;
    kp_err err = KP_OK;
    int rc = sqlite3_prepare_v2(s->db,
                                "SELECT account_id, count(*) FROM lots WHERE remaining > 0 "
                                "GROUP BY account_id HAVING count(*) > ?1 ORDER BY account_id",
                                -1, &over, NULL);
    if (rc != SQLITE_OK) return fail(s, rc);
    sqlite3_bind_int64(over, 1, (sqlite3_int64)max);
    while (err == KP_OK && (rc = sqlite3_step(over)) == SQLITE_ROW) {
        int64_t account_id = sqlite3_column_int64(over, 0);
        size_t before = 0, after = 0;
        err = merge_account_lots(s, account_id, max, now, &before, &after);
        if (err == KP_OK && report) report(ctx, account_id, before, after);
    }
    if (err == KP_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) err = fail(s, rc);
    sqlite3_finalize(over);
    return err;
}

static kp_err s_verify(kp_store *b, void (*report)(void *ctx, const char *line), void *ctx,
                       int64_t *problems)
{
    sqlite_store *s = (sqlite_store *)b;
    /* The file first (unless this connection just checked it, as `verify
     * --full` does with integrity_check): the ledger's checks cannot read a
     * damaged file. */
    *problems = 0;
    bool file_ok = s->file_checked;
    kp_err err = store_sqlite_verify_ledger(s->db, store_sqlite_vfs(), !s->file_checked,
                                            s->base.last_error, sizeof s->base.last_error,
                                            report, ctx, problems, &file_ok);
    if (file_ok) s->file_checked = true;
    if (err || !file_ok) return err; /* a damaged file: its lines only */
    int rc;
    for (size_t c = STORE_INVARIANTS_LEDGER; c < store_invariants_count; c++) {
        sqlite3_stmt *st;
        rc = sqlite3_prepare_v2(s->db, store_invariants[c].sql, -1, &st, NULL);
        if (rc != SQLITE_OK) return fail(s, rc);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            char line[256];
            snprintf(line, sizeof line, store_invariants[c].what,
                     (long long)sqlite3_column_int64(st, 0), (long long)sqlite3_column_int64(st, 1));
            if (*problems < STORE_INVARIANT_LINES_MAX) report(ctx, line);
            (*problems)++;
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE) return fail(s, rc);
    }
    return store_sqlite_people_verify(s->people, report, ctx, problems);
}

/* A random identity made once per database: the operation log is keyed
 * with it, so log files left beside a re-created database are ignored. */
static kp_err s_identity(kp_store *b, uint8_t id[16])
{
    sqlite_store *s = (sqlite_store *)b;
    sqlite3_stmt *st = q(s, Q_META_GET);
    sqlite3_bind_text(st, 1, "db_id", -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    bool found = rc == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 32;
    if (found) sodium_hex2bin(id, 16, (const char *)sqlite3_column_text(st, 0), 32, NULL, NULL, NULL);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return fail(s, rc);
    if (found) return KP_OK;
    char hex[33];
    randombytes_buf(id, 16);
    sodium_bin2hex(hex, sizeof hex, id, 16);
    st = q(s, Q_META_SET);
    sqlite3_bind_text(st, 1, "db_id", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, hex, -1, SQLITE_TRANSIENT);
    return run(s, st);
}

kp_err store_sqlite_meta_int_get(kp_store *b, const char *key, int64_t *value)
{
    sqlite_store *s = (sqlite_store *)b;
    sqlite3_stmt *st = q(s, Q_META_GET);
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *value = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? KP_OK : fail(s, rc);
}

kp_err store_sqlite_meta_int_set(kp_store *b, const char *key, int64_t value)
{
    sqlite_store *s = (sqlite_store *)b;
    sqlite3_stmt *st = q(s, Q_META_SET);
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, value);
    return run(s, st);
}

/* KOPILKA_CACHE_CHECK: a hit that differs from what SQLite holds is a bug
 * of the cache; say what differs and stop rather than price on it. */
static void cache_check_account(sqlite_store *s, const kp_account *hit)
{
    kp_account *db = s->cache_check;
    if (s_account_load(&s->base, hit->id, db) != KP_OK) db->id = -1;
    bool same = db->id == hit->id && db->balance == hit->balance && db->debt == hit->debt &&
                db->purchases == hit->purchases && db->spend_minor == hit->spend_minor &&
                db->n_lots == hit->n_lots;
    for (size_t i = 0; same && i < hit->n_lots; i++) {
        const kp_lot *a = &db->lots[i], *b = &hit->lots[i];
        same = a->id == b->id && strcmp(a->kind, b->kind) == 0 && a->amount == b->amount &&
               a->remaining == b->remaining && a->earned_at == b->earned_at &&
               a->active_from == b->active_from && a->expires_at == b->expires_at &&
               strcmp(a->partner, b->partner) == 0;
    }
    if (same) return;
    fprintf(stderr,
            "kopilka: writer cache: account %lld differs from the database (balance %lld/%lld, "
            "debt %lld/%lld, purchases %lld/%lld, spend %lld/%lld, lots %zu/%zu)\n",
            (long long)hit->id, (long long)hit->balance, (long long)db->balance,
            (long long)hit->debt, (long long)db->debt, (long long)hit->purchases,
            (long long)db->purchases, (long long)hit->spend_minor, (long long)db->spend_minor,
            hit->n_lots, db->n_lots);
    abort();
}

static void cache_check_card(sqlite_store *s, const kp_card *hit, int may_burn,
                             const kp_account_rules *rules, bool rules_known)
{
    kp_card db;
    bool same = s_card_find(&s->base, hit->number, &db) == KP_OK &&
                db.account_id == hit->account_id && db.state == hit->state &&
                db.registered == hit->registered;
    if (same && may_burn >= 0) {
        kp_card_info info;
        kp_err err = store_sqlite_people_ops.card_info_get(&s->base, hit->number, &info);
        same = err == KP_OK ? info.may_burn == (may_burn == 1)
                            : err == KP_ERR_NOT_FOUND && may_burn == 1;
    }
    if (same && rules_known) {
        kp_account_rules r;
        same = store_sqlite_triggers_ops.account_rules_get(&s->base, hit->account_id, &r) ==
                   KP_OK &&
               strcmp(r.tier, rules->tier) == 0 && r.tier_since == rules->tier_since &&
               r.has_personal_discount == rules->has_personal_discount &&
               r.personal_discount_bp == rules->personal_discount_bp;
    }
    if (same) return;
    fprintf(stderr, "kopilka: writer cache: card %s (or its card info, or its account's rule "
                    "state) differs from the database\n", hit->number);
    abort();
}

/* till_load's card, account, rule state and may_burn from the writer's
 * cache, each read from SQLite on a miss and kept. */
static kp_err till_load_cached(sqlite_store *s, const char *card, unsigned want,
                               kp_account *account, kp_till_read *out)
{
    kp_store *b = &s->base;
    sqlite_cache *c = s->cache;
    int may_burn = -1;
    kp_err err;
    if (store_sqlite_cache_card(c, card, &out->card, &may_burn)) {
        out->card_found = true;
    } else {
        if ((err = s_card_find(b, card, &out->card)) == KP_ERR_NOT_FOUND) return KP_OK;
        if (err) return err;
        out->card_found = true;
        store_sqlite_cache_card_put(c, &out->card, -1);
    }
    if (out->card.state == KP_CARD_BLOCKED || out->card.state == KP_CARD_REPLACED) return KP_OK;
    bool rules_known = false;
    if (store_sqlite_cache_account(c, out->card.account_id, account, &out->rules, &rules_known)) {
        out->account = KP_OK;
        if (s->cache_check) cache_check_account(s, account);
    } else {
        out->account = s_account_load(b, out->card.account_id, account);
        if (out->account == KP_ERR_NOT_FOUND || out->account == KP_ERR_LIMIT) return KP_OK;
        if (out->account) return out->account;
        store_sqlite_cache_account_put(c, account, NULL);
    }
    if ((want & KP_TILL_RULES) && !rules_known) {
        if ((err = store_sqlite_triggers_ops.account_rules_get(b, account->id, &out->rules)))
            return err;
        store_sqlite_cache_account_rules(c, account->id, &out->rules);
        rules_known = true;
    }
    if (!(want & KP_TILL_RULES)) memset(&out->rules, 0, sizeof out->rules);
    if ((want & KP_TILL_MAY_BURN) && may_burn < 0) {
        kp_card_info info;
        err = store_sqlite_people_ops.card_info_get(b, card, &info);
        if (err == KP_OK) may_burn = info.may_burn;
        else if (err == KP_ERR_NOT_FOUND) may_burn = 1;
        else return err;
        store_sqlite_cache_card_may_burn(c, card, may_burn == 1);
    }
    if (want & KP_TILL_MAY_BURN) out->may_burn = may_burn == 1;
    if (s->cache_check) cache_check_card(s, &out->card, may_burn, &out->rules, rules_known);
    return KP_OK;
}

/* A purchase's reads, each of the existing queries in turn and only those
 * the answer needs: an embedded database has no round trips to save. The
 * writer's cache, when enabled, answers all but the receipt's two. */
static kp_err s_till_load(kp_store *b, const char *store, const char *receipt, const char *card,
                          unsigned want, kp_account *account, kp_till_read *out)
{
    sqlite_store *s = (sqlite_store *)b;
    memset(out, 0, sizeof *out);
    out->account = KP_ERR_NOT_FOUND;
    out->may_burn = true;
    kp_err err = s_op_find(b, store, receipt, &out->op);
    if (err == KP_OK) {
        out->op_found = true;
        return KP_OK;
    }
    if (err != KP_ERR_NOT_FOUND) return err;
    if ((err = store_sqlite_sales_anonymous(b, store, receipt, &out->anonymous_sale_id)))
        return err;
    if (s->cache) return till_load_cached(s, card, want, account, out);
    if ((err = s_card_find(b, card, &out->card)) == KP_ERR_NOT_FOUND) return KP_OK;
    if (err) return err;
    out->card_found = true;
    if (out->card.state == KP_CARD_BLOCKED || out->card.state == KP_CARD_REPLACED) return KP_OK;
    out->account = s_account_load(b, out->card.account_id, account);
    if (out->account == KP_ERR_NOT_FOUND || out->account == KP_ERR_LIMIT) return KP_OK;
    if (out->account) return out->account;
    if ((want & KP_TILL_RULES) &&
        (err = store_sqlite_triggers_ops.account_rules_get(b, account->id, &out->rules)))
        return err;
    if (want & KP_TILL_MAY_BURN) {
        kp_card_info info;
        err = store_sqlite_people_ops.card_info_get(b, card, &info);
        if (err == KP_OK) out->may_burn = info.may_burn;
        else if (err != KP_ERR_NOT_FOUND) return err;
    }
    return KP_OK;
}

static kp_err s_op_insert_apply(kp_store *b, kp_op_row *row, const kp_ledger_plan *plan,
                                kp_time now)
{
    sqlite_store *s = (sqlite_store *)b;
    s->cache_applying = s->cache != NULL;
    kp_err err = s_op_insert(b, row);
    if (err == KP_OK) err = s_plan_apply(b, row->id, plan, now);
    s->cache_applying = false;
    /* The rows written are the plan's: the cache follows it. A failure
     * leaves part of them written until the job rolls back to its
     * savepoint, which puts back what the cache holds. */
    if (err == KP_OK && s->cache) store_sqlite_cache_apply(s->cache, plan, s->last_lot_id, now);
    return err;
}

/* Every row change on the writer's connection: one of a table the cache
 * holds, not the purchase's own (followed from its plan), evicts what the
 * row is about (its account, its card), old and new values both. */
static void cache_row_changed(void *arg, sqlite3 *db, int op, const char *schema,
                              const char *table, sqlite3_int64 key, sqlite3_int64 new_key)
{
    sqlite_store *s = arg;
    (void)schema;
    if (s->cache == NULL || s->cache_applying) return;
    int column = -1; /* the column naming the account, or -2: the card's number */
    if (strcmp(table, "accounts") == 0) {
        store_sqlite_cache_account_evict(s->cache, key);
        store_sqlite_cache_account_evict(s->cache, new_key);
        return;
    }
    if (strcmp(table, "lots") == 0) column = 1;
    else if (strcmp(table, "account_rules") == 0) column = 0;
    else if (strcmp(table, "cards") == 0 || strcmp(table, "card_info") == 0) column = -2;
    else return;
    for (int side = 0; side < 2; side++) {
        if (side == 0 && op == SQLITE_INSERT) continue;
        if (side == 1 && op == SQLITE_DELETE) continue;
        sqlite3_value *v = NULL;
        int rc = side == 0 ? sqlite3_preupdate_old(db, column < 0 ? 0 : column, &v)
                           : sqlite3_preupdate_new(db, column < 0 ? 0 : column, &v);
        if (rc != SQLITE_OK || v == NULL) {
            store_sqlite_cache_clear(s->cache);
            return;
        }
        if (column >= 0) {
            store_sqlite_cache_account_evict(s->cache, sqlite3_value_int64(v));
        } else {
            const unsigned char *number = sqlite3_value_text(v);
            if (number == NULL) store_sqlite_cache_clear(s->cache);
            else store_sqlite_cache_card_evict(s->cache, (const char *)number);
        }
    }
}

static void cache_rolled_back(void *arg)
{
    sqlite_store *s = arg;
    if (s->cache) store_sqlite_cache_clear(s->cache);
}

/* Runs one of preload's scans: row(s, st) for each row. */
static kp_err preload_scan(sqlite_store *s, const char *sql,
                           bool (*row)(sqlite_store *s, sqlite3_stmt *st))
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) return fail(s, rc);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (!row(s, st)) break;
    kp_err err = rc == SQLITE_ROW || rc == SQLITE_DONE ? KP_OK : fail(s, rc);
    sqlite3_finalize(st);
    return err;
}

static bool preload_card(sqlite_store *s, sqlite3_stmt *st)
{
    if (!store_sqlite_cache_room(s->cache)) return false;
    kp_card c;
    store_sqlite_copy_text(c.number, sizeof c.number, sqlite3_column_text(st, 0));
    c.account_id = sqlite3_column_int64(st, 1);
    c.state = (kp_card_state)sqlite3_column_int(st, 2);
    c.registered = sqlite3_column_int(st, 3) != 0;
    store_sqlite_cache_card_put(s->cache, &c, sqlite3_column_int(st, 4) != 0);
    return true;
}

static bool preload_account(sqlite_store *s, sqlite3_stmt *st)
{
    if (!store_sqlite_cache_room(s->cache)) return false;
    store_sqlite_cache_account_bare(s->cache, sqlite3_column_int64(st, 0),
                                    sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2),
                                    sqlite3_column_int64(st, 3), sqlite3_column_int64(st, 4));
    return true;
}

static bool preload_rules(sqlite_store *s, sqlite3_stmt *st)
{
    kp_account_rules r;
    memset(&r, 0, sizeof r);
    store_sqlite_copy_text(r.tier, sizeof r.tier, sqlite3_column_text(st, 1));
    r.tier_since = sqlite3_column_int64(st, 2);
    r.has_personal_discount = sqlite3_column_type(st, 3) != SQLITE_NULL;
    r.personal_discount_bp = sqlite3_column_int(st, 3);
    store_sqlite_cache_account_rules(s->cache, sqlite3_column_int64(st, 0), &r);
    return true;
}

static bool preload_lot(sqlite_store *s, sqlite3_stmt *st)
{
    kp_lot l;
    memset(&l, 0, sizeof l);
    l.id = sqlite3_column_int64(st, 1);
    store_sqlite_copy_text(l.kind, sizeof l.kind, sqlite3_column_text(st, 2));
    l.amount = sqlite3_column_int64(st, 3);
    l.remaining = sqlite3_column_int64(st, 4);
    l.earned_at = sqlite3_column_int64(st, 5);
    l.active_from = sqlite3_column_int64(st, 6);
    l.expires_at = sqlite3_column_int64(st, 7);
    store_sqlite_copy_text(l.partner, sizeof l.partner, sqlite3_column_text(st, 8));
    store_sqlite_cache_lot_add(s->cache, sqlite3_column_int64(st, 0), &l);
    return true;
}

/* Fills the cache with every card and account (as far as it holds), in
 * one snapshot, reading the data version in it: the server starts with
 * its tills' state in memory. The queries give what card_find,
 * card_info_get, account_load and account_rules_get give, row for row. */
static kp_err cache_preload(sqlite_store *s)
{
    kp_err err = run(s, q(s, Q_BEGIN)); /* its snapshot is the data version read */
    if (err) return err;
    if (sqlite3_step(s->data_version_stmt) == SQLITE_ROW)
        s->data_version = sqlite3_column_int64(s->data_version_stmt, 0);
    sqlite3_reset(s->data_version_stmt);
    err = preload_scan(s,
                       "SELECT c.number, c.account_id, c.state, c.registered, "
                       "COALESCE(i.may_burn, 1) FROM cards c "
                       "LEFT JOIN card_info i ON i.number = c.number",
                       preload_card);
    if (err == KP_OK)
        err = preload_scan(s, "SELECT id, balance, debt, purchases, spend FROM accounts", preload_account);
    if (err == KP_OK)
        err = preload_scan(s,
                           "SELECT account_id, tier, tier_since, personal_discount_bp "
                           "FROM account_rules",
                           preload_rules);
    if (err == KP_OK)
        err = preload_scan(s,
                           "SELECT account_id, id, kind, amount, remaining, earned_at, "
                           "active_from, expires_at, partner FROM lots WHERE remaining > 0 "
                           "ORDER BY account_id, expires_at, id",
                           preload_lot);
    kp_err end = run(s, q(s, Q_COMMIT));
    return err ? err : end;
}

kp_err store_sqlite_cache_enable(kp_store *b)
{
    sqlite_store *s = (sqlite_store *)b;
    if (s->cache) return KP_OK;
    const char *check = getenv("KOPILKA_CACHE_CHECK");
    if (check && strcmp(check, "1") == 0 && (s->cache_check = malloc(sizeof *s->cache_check)) == NULL)
        return KP_ERR_NOMEM;
    if (sqlite3_prepare_v2(s->db, "PRAGMA data_version", -1, &s->data_version_stmt, NULL) !=
        SQLITE_OK) {
        free(s->cache_check);
        s->cache_check = NULL;
        return fail(s, sqlite3_errcode(s->db));
    }
    if ((s->cache = store_sqlite_cache_new()) == NULL) {
        sqlite3_finalize(s->data_version_stmt);
        s->data_version_stmt = NULL;
        free(s->cache_check);
        s->cache_check = NULL;
        return KP_ERR_NOMEM;
    }
    if (sqlite3_step(s->data_version_stmt) == SQLITE_ROW)
        s->data_version = sqlite3_column_int64(s->data_version_stmt, 0);
    sqlite3_reset(s->data_version_stmt);
    sqlite3_rollback_hook(s->db, cache_rolled_back, s);
    sqlite3_preupdate_hook(s->db, cache_row_changed, s);
    return KP_OK;
}

static double ms_between(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

kp_err store_sqlite_cache_preload(kp_store *b)
{
    sqlite_store *s = (sqlite_store *)b;
    if (s->cache == NULL) return KP_OK;
    struct timespec w0, w1, c0, c1;
    clock_gettime(CLOCK_MONOTONIC, &w0);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
    kp_err err = cache_preload(s);
    if (err) {
        store_sqlite_cache_clear(s->cache);
        return err;
    }
    clock_gettime(CLOCK_MONOTONIC, &w1);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
    sqlite_cache_stats cs;
    store_sqlite_cache_stats(s->cache, &cs);
    fprintf(stderr,
            "kopilka: writer cache: %zu cards and %zu accounts read in %.0f ms (%.0f ms of CPU), "
            "%zu KiB\n",
            cs.cards, cs.accounts, ms_between(&w0, &w1), ms_between(&c0, &c1), cs.bytes / 1024);
    return KP_OK;
}

void store_sqlite_cache_disable(kp_store *b, sqlite_cache_stats *stats)
{
    sqlite_store *s = (sqlite_store *)b;
    if (s->cache == NULL) return;
    if (stats) store_sqlite_cache_stats(s->cache, stats);
    sqlite3_rollback_hook(s->db, NULL, NULL);
    sqlite3_preupdate_hook(s->db, NULL, NULL);
    store_sqlite_cache_free(s->cache);
    s->cache = NULL;
    sqlite3_finalize(s->data_version_stmt);
    s->data_version_stmt = NULL;
    free(s->cache_check);
    s->cache_check = NULL;
}

static const kp_store_ops sqlite_ops = {
    .close = s_close,
    .begin = s_begin,
    .commit = s_commit,
    .rollback = s_rollback,
    .savepoint = s_savepoint,
    .release = s_release,
    .rollback_to = s_rollback_to,
    .program_insert = s_program_insert,
    .program_get = s_program_get,
    .program_list = s_program_list,
    .program_schedule = s_program_schedule,
    .program_cancel = s_program_cancel,
    .terminal_insert = s_terminal_insert,
    .terminal_find = s_terminal_find,
    .terminal_get = s_terminal_get,
    .terminal_list = s_terminal_list,
    .terminal_change = s_terminal_change,
    .terminal_touch = s_terminal_touch,
    .terminal_generation = s_terminal_generation,
    .card_create = s_card_create,
    .card_find = s_card_find,
    .account_load = s_account_load,
    .op_find = s_op_find,
    .op_insert = s_op_insert,
    .op_set_detail = s_op_set_detail,
    .plan_apply = s_plan_apply,
    .till_load = s_till_load,
    .op_insert_apply = s_op_insert_apply,
    .lots_merge = s_lots_merge,
    .history = s_history,
    .account_currency = store_sqlite_account_currency,
    .account_currencies = store_sqlite_account_currencies,
    .account_owner = store_sqlite_account_owner,
    .ops_scan = s_ops_scan,
    .verify = s_verify,
    .integrity = s_integrity,
    .interrupt = s_interrupt,
    .identity = s_identity,
    .triggers = &store_sqlite_triggers_ops,
    .people = &store_sqlite_people_ops,
    .notify = &store_sqlite_notify_ops,
    .sales = &store_sqlite_sales_ops,
    .catalog = &store_sqlite_catalog_ops,
    .draws = &store_sqlite_draws_ops,
    .report = &store_sqlite_report_ops,
    .settle = &store_sqlite_settle_ops,
    .marketing = &store_sqlite_marketing_ops,
    .group = &store_sqlite_group_ops,
};

enum {
    BUSY_WAIT_MS = 10000, /* how long a connection waits for another's lock */
    BUSY_POLL_US = 500,   /* ... trying again this often */
};

/* Waits for a lock another connection holds, trying again every half
 * millisecond for up to BUSY_WAIT_MS. SQLite's own busy_timeout backs off
 * to 100 ms between tries; a server under continuous load keeps its write
 * transaction open for up to 500 ms and leaves the lock free only for a
 * moment between two (src/server/writer.c), so a CLI write polling that
 * slowly almost never got in and failed after 10 s. Polling this often it
 * gets in within a commit or two (measured at full benchmark load: 0.03 to
 * 0.3 s for `terminal add`). */
static int busy_wait(void *arg, int tries)
{
    (void)arg;
    if ((int64_t)tries * BUSY_POLL_US >= (int64_t)BUSY_WAIT_MS * 1000) return 0;
    struct timespec ts = {0, BUSY_POLL_US * 1000L};
    nanosleep(&ts, NULL);
    return 1;
}

/* Columns added to a table after databases were made with it: added once,
 * in one transaction (the meta key `key` at `version` says it is done),
 * before the statements that read them are prepared. Opening an up-to-date
 * database writes nothing. `columns` are "name TYPE ..." definitions. */
static int columns_update(sqlite3 *db, const char *key, int version, const char *table,
                          const char *const *columns, size_t n)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = ?1", -1, &st, NULL);
    if (rc != SQLITE_OK) return rc;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    bool current = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) >= version;
    sqlite3_finalize(st);
    if (current) return SQLITE_OK;
    if ((rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL)) != SQLITE_OK) return rc;
    bool has[8] = {false};
    assert(n <= sizeof has / sizeof has[0]);
    rc = sqlite3_prepare_v2(db, "SELECT name FROM pragma_table_info(?1)", -1, &st, NULL);
    if (rc == SQLITE_OK) sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
    while (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        for (size_t i = 0; i < n; i++)
            if (strncmp(name, columns[i], strcspn(columns[i], " ")) == 0 &&
                strlen(name) == strcspn(columns[i], " "))
                has[i] = true;
    }
    if (rc == SQLITE_OK) sqlite3_finalize(st);
    for (size_t i = 0; i < n && rc == SQLITE_OK; i++) {
        if (has[i]) continue;
        char sql[160];
        snprintf(sql, sizeof sql, "ALTER TABLE %s ADD COLUMN %s", table, columns[i]);
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    }
    if (rc == SQLITE_OK) {
        char sql[160];
        snprintf(sql, sizeof sql,
                 "INSERT INTO meta(key, value) VALUES ('%s', '%d') "
                 "ON CONFLICT(key) DO UPDATE SET value = excluded.value;"
                 "COMMIT",
                 key, version);
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK && !sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* Databases made before terminal keys could be revoked have a terminals
 * table without rotated_at, last_used_at and revoked_at; those made before
 * program versions could be scheduled have a programs table without
 * loaded_by, activates_at and cancelled_at. */
static int schema_columns_update(sqlite3 *db)
{
    static const char *const terminals[] = {"rotated_at INTEGER", "last_used_at INTEGER",
                                            "revoked_at INTEGER"};
    static const char *const programs[] = {"loaded_by TEXT NOT NULL DEFAULT ''",
                                           "activates_at INTEGER", "cancelled_at INTEGER"};
    /* lots.partner: the lot's issuer (coalition.h; "" = the operator);
     * lots.expired: what the expiry took from the lot (0 for the expiries
     * before the column: they were not recorded per lot). */
    static const char *const lots[] = {"partner TEXT NOT NULL DEFAULT ''",
                                       "expired INTEGER NOT NULL DEFAULT 0"};
    /* A card's accounts per currency (store_sqlite_currency.c). */
    static const char *const accounts[] = {"currency TEXT NOT NULL DEFAULT ''"};
    int rc = columns_update(db, "terminals_schema", 2, "terminals", terminals, 3);
    if (rc == SQLITE_OK) rc = columns_update(db, "programs_schema", 2, "programs", programs, 3);
    if (rc == SQLITE_OK) rc = columns_update(db, "lots_schema", 3, "lots", lots, 2);
    if (rc == SQLITE_OK) rc = columns_update(db, "accounts_schema", 2, "accounts", accounts, 1);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, store_sqlite_currency_schema, NULL, NULL, NULL);
    return rc;
}

/* Says why the database cannot be written when the file or its folder is
 * read-only (SQLite would open the file read-only, or fail with "unable to
 * open database file" or "attempt to write a readonly database" later). */
static kp_err check_writable(const char *path, kp_error *e)
{
    if (access(path, F_OK) == 0 && access(path, W_OK) != 0 &&
        (errno == EACCES || errno == EPERM || errno == EROFS))
        return kp_error_set(e, KP_ERR_IO, "database",
                            "%s is read-only (%s): the server and every command write to it; "
                            "make it writable by this user, or work on a copy",
                            path, strerror(errno));
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (slash == NULL) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    if (access(dir, W_OK) != 0 && (errno == EACCES || errno == EPERM || errno == EROFS))
        return kp_error_set(e, KP_ERR_IO, "database",
                            "the folder %s is read-only (%s): the database's journal (-wal, "
                            "-shm) and operation log (.oplog-0, .oplog-1) are created beside "
                            "it; make the folder writable by this user",
                            dir, strerror(errno));
    return KP_OK;
}

/* A file SQLite cannot read at open (a page of the schema or of a table
 * read at open is damaged): said as the quick check says it, with what to
 * do. False when rc is another failure. */
static bool open_damaged(sqlite3 *db, const char *path, kp_error *e)
{
    int code = sqlite3_errcode(db) & 0xff;
    if (code != SQLITE_CORRUPT && code != SQLITE_NOTADB) return false;
    kp_error_set(e, KP_ERR_IO, "database",
                 "the database file is damaged: SQLite could not read %s at open (%s); nothing "
                 "was changed. Run `kopilka verify %s --full` for the list, then restore the "
                 "database from its last good backup (docs/architecture.md, \"A damaged "
                 "database\")",
                 path, sqlite3_errmsg(db), path);
    return true;
}

kp_err store_sqlite_open(const char *path, bool create, kp_store **out, kp_error *e)
{
    *out = NULL;
    if (!create && access(path, F_OK) != 0)
        return kp_error_set(e, KP_ERR_NOT_FOUND, "database",
                            "no database at %s (create one with `kopilka init`)", path);
    kp_err err = check_writable(path, e);
    if (err) return err;
    /* The file holds password hashes, the audit log and balances: readable
     * by its owner only, like the key file and the operation log. SQLite
     * gives the journal files (-wal, -shm) the database file's mode. */
    if (create) {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
            return kp_error_set(e, KP_ERR_IO, "database", "cannot create %s: %s", path,
                                strerror(errno));
        close(fd);
    }
    sqlite_store *s = calloc(1, sizeof *s);
    if (s == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    s->base.ops = &sqlite_ops;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    int rc = sqlite3_open_v2(path, &s->db, flags, store_sqlite_vfs());
    if (rc != SQLITE_OK) {
        err = kp_error_set(e, KP_ERR_IO, "database", "cannot open %s: %s", path,
                           s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto out;
    }
    if (sqlite3_db_readonly(s->db, "main") == 1) {
        err = kp_error_set(e, KP_ERR_IO, "database",
                           "%s is read-only: SQLite could open it for reading only; make it "
                           "writable by this user, or work on a copy", path);
        goto out;
    }
    sqlite3_busy_handler(s->db, busy_wait, NULL);
    /* WAL lets readers (quotes, card lookups) run beside the writer;
     * synchronous=FULL fsyncs the WAL at every commit: durability first,
     * speed from group commit, not from weaker syncing. */
    /* The server checkpoints from a thread of its own (kp_group_ops.upkeep),
     * so commits do not pay for copying pages into the database file; the
     * large auto-checkpoint threshold only bounds the journal if it lags. */
    rc = sqlite3_exec(s->db,
                      "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF;"
                      "PRAGMA cache_size=-65536; PRAGMA temp_store=MEMORY; PRAGMA wal_autocheckpoint=50000;",
                      NULL, NULL, NULL);
    if (rc == SQLITE_OK && create) rc = sqlite3_exec(s->db, schema_sql, NULL, NULL, NULL);
    if (rc == SQLITE_OK) rc = schema_columns_update(s->db);
    if (rc != SQLITE_OK) {
        err = open_damaged(s->db, path, e) ? KP_ERR_IO
                                            : kp_error_set(e, KP_ERR_IO, "database",
                                                           "cannot prepare %s: %s", path,
                                                           sqlite3_errmsg(s->db));
        goto out;
    }
    for (int i = 0; i < Q__COUNT; i++) {
        rc = sqlite3_prepare_v3(s->db, queries[i], -1, SQLITE_PREPARE_PERSISTENT, &s->stmt[i], NULL);
        if (rc != SQLITE_OK) {
            err = open_damaged(s->db, path, e)
                      ? KP_ERR_IO
                      : kp_error_set(e, KP_ERR_IO, "database",
                                     "%s is not a Kopilka database (%s)", path,
                                     sqlite3_errmsg(s->db));
            goto out;
        }
    }
    if (store_sqlite_triggers_open(s->db, s->base.last_error, sizeof s->base.last_error,
                                   &s->triggers) != KP_OK) {
        err = kp_error_set(e, KP_ERR_IO, "database", "cannot prepare the rules tables of %s: %s",
                           path, s->base.last_error);
        goto out;
    }
    if (store_sqlite_people_open(s->db, s->base.last_error, sizeof s->base.last_error,
                                 &s->people) != KP_OK) {
        err = kp_error_set(e, KP_ERR_IO, "database",
                           "cannot prepare the customers tables of %s: %s", path,
                           s->base.last_error);
        goto out;
    }
    if (store_sqlite_notify_open(s->db, s->base.last_error, sizeof s->base.last_error,
                                 &s->notify) != KP_OK) {
        err = kp_error_set(e, KP_ERR_IO, "database",
                           "cannot prepare the notification tables of %s: %s", path,
                           s->base.last_error);
        goto out;
    }
    if (store_sqlite_sales_open(s->db, s->base.last_error, sizeof s->base.last_error,
                                &s->sales) != KP_OK) {
        err = kp_error_set(e, KP_ERR_IO, "database", "cannot prepare the sales tables of %s: %s",
                           path, s->base.last_error);
        goto out;
    }
    if (store_sqlite_marketing_open(s->db) != SQLITE_OK) {
        err = kp_error_set(e, KP_ERR_IO, "database",
                           "cannot make the segments and campaigns tables of %s: %s", path,
                           sqlite3_errmsg(s->db));
        goto out;
    }
    if (sqlite3_exec(s->db, store_sqlite_settle_schema, NULL, NULL, NULL) != SQLITE_OK) {
        err = kp_error_set(e, KP_ERR_IO, "database",
                           "cannot make the settlement tables of %s: %s", path,
                           sqlite3_errmsg(s->db));
        goto out;
    }
    if (store_sqlite_catalog_open(s->db, s->base.last_error, sizeof s->base.last_error,
                                  &s->catalog) != KP_OK) {
        err = kp_error_set(e, KP_ERR_IO, "database",
                           "cannot prepare the catalog tables of %s: %s", path,
                           s->base.last_error);
        goto out;
    }
    if (store_sqlite_draws_open(s->db, s->base.last_error, sizeof s->base.last_error,
                                &s->draws) != KP_OK) {
        err = kp_error_set(e, KP_ERR_IO, "database", "cannot prepare the draws table of %s: %s",
                           path, s->base.last_error);
        goto out;
    }
    *out = &s->base;
out:
    if (err != KP_OK) s_close(&s->base);
    return err;
}
