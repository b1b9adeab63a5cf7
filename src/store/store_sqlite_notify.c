/*
 * store_sqlite_notify.c: the outbox's storage on SQLite (kopilka/notify.h):
 * notification events (written on the till path, in the purchase's own
 * transaction), messages and webhook deliveries with their leases,
 * preferences, templates, webhook endpoints, one-time login codes and
 * customers' sessions; reminders read the ledger's `lots`.
 *
 * Statements are prepared once per connection, as in store_sqlite.c. The
 * tables are created in one transaction when the `notify_schema` meta key
 * is missing (a new database, or one made before the outbox), so opening an
 * up-to-date database writes nothing. Kinds, channels and states are stored
 * as their kopilka/notify.h numbers, with CHECKs on their ranges.
 *
 * An operation that writes more than one statement (event_dispatch,
 * messages_settle, login_code_check) is one write: its own BEGIN IMMEDIATE
 * ... COMMIT outside a transaction, a savepoint of its own inside the
 * caller's (the server's writer runs groups in one open transaction).
 */
#include "store_sqlite_notify.h"
#include "store_sqlite_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

/* Ranges the CHECKs hold: kinds and channels are bits of uint32_t sets
 * (kp_webhook_endpoint.kinds, kp_notify_prefs.transactional), states the
 * four of kp_message_state. */
static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS notify_events (id INTEGER PRIMARY KEY,"
    "  key TEXT NOT NULL UNIQUE, kind INTEGER NOT NULL CHECK (kind BETWEEN 1 AND 31),"
    "  account_id INTEGER NOT NULL DEFAULT 0, customer_id INTEGER NOT NULL DEFAULT 0,"
    "  card TEXT NOT NULL DEFAULT '', op_id INTEGER NOT NULL DEFAULT 0, at INTEGER NOT NULL,"
    "  sealed INTEGER NOT NULL DEFAULT 0 CHECK (sealed IN (0, 1)), payload BLOB NOT NULL,"
    "  dispatched_at INTEGER);"
    "CREATE INDEX IF NOT EXISTS notify_events_pending ON notify_events(id)"
    "  WHERE dispatched_at IS NULL;"
    "CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE,"
    "  event_id INTEGER NOT NULL, kind INTEGER NOT NULL CHECK (kind BETWEEN 1 AND 31),"
    "  channel INTEGER NOT NULL CHECK (channel BETWEEN 1 AND 31),"
    "  customer_id INTEGER NOT NULL DEFAULT 0, endpoint_id INTEGER NOT NULL DEFAULT 0,"
    "  state INTEGER NOT NULL DEFAULT 0 CHECK (state BETWEEN 0 AND 3),"
    "  attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),"
    "  created_at INTEGER NOT NULL, next_at INTEGER NOT NULL,"
    "  lease_until INTEGER NOT NULL DEFAULT 0, sent_at INTEGER NOT NULL DEFAULT 0,"
    "  provider_id TEXT NOT NULL DEFAULT '', last_error TEXT NOT NULL DEFAULT '',"
    "  sealed BLOB);"
    "CREATE INDEX IF NOT EXISTS messages_due ON messages(next_at) WHERE state = 0;"
    "CREATE INDEX IF NOT EXISTS messages_due_channel ON messages(channel, next_at)"
    "  WHERE state = 0;"
    "CREATE INDEX IF NOT EXISTS messages_customer ON messages(customer_id);"
    "CREATE INDEX IF NOT EXISTS messages_endpoint ON messages(endpoint_id);"
    "CREATE INDEX IF NOT EXISTS messages_event ON messages(event_id);"
    "CREATE TABLE IF NOT EXISTS notify_prefs (customer_id INTEGER PRIMARY KEY,"
    "  language TEXT NOT NULL DEFAULT '', utc_offset_minutes INTEGER,"
    "  transactional INTEGER NOT NULL, marketing INTEGER NOT NULL,"
    "  marketing_consent_at INTEGER NOT NULL DEFAULT 0,"
    "  marketing_consent_version TEXT NOT NULL DEFAULT '', updated_at INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS notify_templates ("
    "  kind INTEGER NOT NULL CHECK (kind BETWEEN 1 AND 31),"
    "  channel INTEGER NOT NULL CHECK (channel BETWEEN 1 AND 31), language TEXT NOT NULL,"
    "  subject TEXT NOT NULL, text TEXT NOT NULL, html TEXT NOT NULL,"
    "  updated_at INTEGER NOT NULL, actor TEXT NOT NULL,"
    "  PRIMARY KEY (kind, channel, language)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS webhook_endpoints (id INTEGER PRIMARY KEY, url TEXT NOT NULL,"
    "  description TEXT NOT NULL DEFAULT '', kinds INTEGER NOT NULL DEFAULT 0,"
    "  active INTEGER NOT NULL CHECK (active IN (0, 1)), secret BLOB NOT NULL,"
    "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS login_codes (customer_id INTEGER PRIMARY KEY,"
    "  hash BLOB NOT NULL, expires_at INTEGER NOT NULL,"
    "  attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0), created_at INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS customer_sessions (token_hash BLOB PRIMARY KEY,"
    "  customer_id INTEGER NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL)"
    "  WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS customer_sessions_customer ON customer_sessions(customer_id);"
    "INSERT OR IGNORE INTO meta(key, value) VALUES ('notify_schema', '1');";

#define EVENT_COLS "id, key, kind, account_id, customer_id, card, op_id, at, sealed, payload"
#define MESSAGE_COLS                                                                               \
    "id, key, event_id, kind, channel, customer_id, endpoint_id, state, attempts, created_at, "    \
    "next_at, lease_until, sent_at, provider_id, last_error, sealed"
#define PREFS_COLS                                                                                 \
    "customer_id, language, utc_offset_minutes, transactional, marketing, "                        \
    "marketing_consent_at, marketing_consent_version, updated_at"
#define TEMPLATE_COLS "kind, channel, language, subject, text, html, updated_at, actor"
#define ENDPOINT_COLS "id, url, description, kinds, active, secret, created_at, updated_at"

/* messages_list: one statement per index that can serve the filter, the
 * other fields tested row by row (a bound "?1 = 0 OR col = ?1" would keep
 * SQLite from using the index). */
#define LIST_SQL(customer, endpoint, event)                                                        \
    "SELECT " MESSAGE_COLS " FROM messages WHERE id < ?5 AND " customer " AND " endpoint          \
    " AND " event " AND (?4 < 0 OR state = ?4) AND (?6 = 0 OR channel = ?6) "                     \
    "ORDER BY id DESC LIMIT ?7"
#define ANY_CUSTOMER "(?1 = 0 OR customer_id = ?1)"
#define ANY_ENDPOINT "(?2 = 0 OR endpoint_id = ?2)"
#define ANY_EVENT "(?3 = 0 OR event_id = ?3)"

/* messages_claim: the due, unleased pending messages leased in the one
 * statement (a write of its own, or part of the caller's transaction). */
#define CLAIM_SQL(channel)                                                                         \
    "UPDATE messages SET lease_until = ?2 WHERE id IN (SELECT id FROM messages "                  \
    "WHERE state = 0 AND next_at <= ?1 AND lease_until < ?1" channel                              \
    " ORDER BY next_at, id LIMIT ?4) RETURNING " MESSAGE_COLS

enum {
    N_BEGIN,
    N_COMMIT,
    N_ROLLBACK,
    N_SAVEPOINT,
    N_RELEASE,
    N_ROLLBACK_TO,
    N_EVENT_INSERT,
    N_EVENTS_PENDING,
    N_EVENT_DISPATCHED,
    N_EVENT_MARK,
    N_MESSAGE_INSERT,
    N_CLAIM_ANY,
    N_CLAIM_CHANNEL,
    N_SETTLE,
    N_MESSAGE_GET,
    N_LIST_ALL,
    N_LIST_CUSTOMER,
    N_LIST_ENDPOINT,
    N_LIST_EVENT,
    N_RETRY,
    N_CANCEL,
    N_ERASE,
    N_STATS_EVENTS,
    N_STATS_MESSAGES,
    N_STATS_OLDEST,
    N_PREFS_GET,
    N_PREFS_PUT,
    N_TEMPLATE_GET,
    N_TEMPLATE_PUT,
    N_TEMPLATE_DELETE,
    N_TEMPLATES_LIST,
    N_ENDPOINT_INSERT,
    N_ENDPOINT_UPDATE,
    N_ENDPOINT_GET,
    N_ENDPOINTS_LIST,
    N_CODE_PUT,
    N_CODE_GET,
    N_CODE_USE,
    N_CODE_MISS,
    N_SESSION_INSERT,
    N_SESSION_FIND,
    N_SESSION_DELETE,
    N_SESSIONS_END,
    N_EXPIRING,
    N__COUNT
};

static const char *const queries[N__COUNT] = {
    [N_BEGIN] = "BEGIN IMMEDIATE",
    [N_COMMIT] = "COMMIT",
    [N_ROLLBACK] = "ROLLBACK",
    [N_SAVEPOINT] = "SAVEPOINT notify_write",
    [N_RELEASE] = "RELEASE notify_write",
    [N_ROLLBACK_TO] = "ROLLBACK TO notify_write",
    [N_EVENT_INSERT] =
        "INSERT INTO notify_events(key, kind, account_id, customer_id, card, op_id, at, sealed, "
        "payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT(key) DO NOTHING",
    [N_EVENTS_PENDING] = "SELECT " EVENT_COLS " FROM notify_events "
                         "WHERE dispatched_at IS NULL AND id > ?1 ORDER BY id LIMIT ?2",
    [N_EVENT_DISPATCHED] = "SELECT dispatched_at IS NOT NULL FROM notify_events WHERE id = ?1",
    [N_EVENT_MARK] = "UPDATE notify_events SET dispatched_at = ?2 WHERE id = ?1 "
                     "AND dispatched_at IS NULL",
    [N_MESSAGE_INSERT] =
        "INSERT INTO messages(key, event_id, kind, channel, customer_id, endpoint_id, state, "
        "attempts, created_at, next_at, sent_at, provider_id, last_error, sealed) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) "
        "ON CONFLICT(key) DO NOTHING",
    [N_CLAIM_ANY] = CLAIM_SQL(""),
    [N_CLAIM_CHANNEL] = CLAIM_SQL(" AND channel = ?3"),
    /* A message cancelled while in flight stays cancelled unless it was
     * sent after all (then it is the truth). */
    [N_SETTLE] = "UPDATE messages SET state = CASE WHEN state = 3 AND ?2 <> 1 THEN 3 ELSE ?2 END,"
                 " attempts = ?3, next_at = ?4, sent_at = ?5, provider_id = ?6, last_error = ?7,"
                 " lease_until = 0 WHERE id = ?1",
    [N_MESSAGE_GET] = "SELECT " MESSAGE_COLS " FROM messages WHERE id = ?1",
    [N_LIST_ALL] = LIST_SQL(ANY_CUSTOMER, ANY_ENDPOINT, ANY_EVENT),
    [N_LIST_CUSTOMER] = LIST_SQL("customer_id = ?1", ANY_ENDPOINT, ANY_EVENT),
    [N_LIST_ENDPOINT] = LIST_SQL(ANY_CUSTOMER, "endpoint_id = ?2", ANY_EVENT),
    [N_LIST_EVENT] = LIST_SQL(ANY_CUSTOMER, ANY_ENDPOINT, "event_id = ?3"),
    [N_RETRY] = "UPDATE messages SET state = 0, attempts = 0, next_at = ?2, lease_until = 0 "
                "WHERE id = ?1 AND sealed IS NOT NULL",
    [N_CANCEL] = "UPDATE messages SET state = 3, lease_until = 0 WHERE customer_id = ?1 "
                 "AND state = 0 AND (?2 >> channel) & 1 AND (?3 = 0 OR (?3 >> kind) & 1)",
    [N_ERASE] = "UPDATE messages SET sealed = NULL, "
                "state = CASE WHEN state = 0 THEN 3 ELSE state END WHERE customer_id = ?1",
    [N_STATS_EVENTS] = "SELECT count(*), coalesce(min(at), 0) FROM notify_events "
                       "WHERE dispatched_at IS NULL",
    [N_STATS_MESSAGES] = "SELECT state, channel, count(*) FROM messages GROUP BY state, channel",
    [N_STATS_OLDEST] = "SELECT coalesce(min(created_at), 0) FROM messages WHERE state = 0",
    [N_PREFS_GET] = "SELECT " PREFS_COLS " FROM notify_prefs WHERE customer_id = ?1",
    [N_PREFS_PUT] = "INSERT INTO notify_prefs(" PREFS_COLS ") VALUES (?1,?2,?3,?4,?5,?6,?7,?8) "
                    "ON CONFLICT(customer_id) DO UPDATE SET language = excluded.language, "
                    "utc_offset_minutes = excluded.utc_offset_minutes, "
                    "transactional = excluded.transactional, marketing = excluded.marketing, "
                    "marketing_consent_at = excluded.marketing_consent_at, "
                    "marketing_consent_version = excluded.marketing_consent_version, "
                    "updated_at = excluded.updated_at",
    [N_TEMPLATE_GET] = "SELECT " TEMPLATE_COLS " FROM notify_templates "
                       "WHERE kind = ?1 AND channel = ?2 AND language = ?3",
    [N_TEMPLATE_PUT] = "INSERT OR REPLACE INTO notify_templates(" TEMPLATE_COLS ") "
                       "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [N_TEMPLATE_DELETE] = "DELETE FROM notify_templates "
                          "WHERE kind = ?1 AND channel = ?2 AND language = ?3",
    [N_TEMPLATES_LIST] = "SELECT " TEMPLATE_COLS " FROM notify_templates "
                         "ORDER BY kind, channel, language LIMIT ?1",
    [N_ENDPOINT_INSERT] = "INSERT INTO webhook_endpoints(url, description, kinds, active, secret, "
                          "created_at, updated_at) VALUES (?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [N_ENDPOINT_UPDATE] = "UPDATE webhook_endpoints SET url = ?2, description = ?3, kinds = ?4, "
                          "active = ?5, secret = ?6, updated_at = ?8 WHERE id = ?1",
    [N_ENDPOINT_GET] = "SELECT " ENDPOINT_COLS " FROM webhook_endpoints WHERE id = ?1",
    [N_ENDPOINTS_LIST] = "SELECT " ENDPOINT_COLS " FROM webhook_endpoints ORDER BY id LIMIT ?1",
    [N_CODE_PUT] = "INSERT INTO login_codes(customer_id, hash, expires_at, attempts, created_at) "
                   "VALUES (?1, ?2, ?3, 0, ?4) ON CONFLICT(customer_id) DO UPDATE SET "
                   "hash = excluded.hash, expires_at = excluded.expires_at, attempts = 0, "
                   "created_at = excluded.created_at",
    [N_CODE_GET] = "SELECT hash, expires_at, attempts FROM login_codes WHERE customer_id = ?1",
    [N_CODE_USE] = "DELETE FROM login_codes WHERE customer_id = ?1",
    [N_CODE_MISS] = "UPDATE login_codes SET attempts = attempts + 1 WHERE customer_id = ?1",
    [N_SESSION_INSERT] = "INSERT INTO customer_sessions(token_hash, customer_id, created_at, "
                         "expires_at) VALUES (?1, ?2, ?3, ?4)",
    [N_SESSION_FIND] = "SELECT customer_id, expires_at FROM customer_sessions "
                       "WHERE token_hash = ?1 AND expires_at > ?2",
    [N_SESSION_DELETE] = "DELETE FROM customer_sessions WHERE token_hash = ?1",
    [N_SESSIONS_END] = "DELETE FROM customer_sessions WHERE customer_id = ?1",
    [N_EXPIRING] = "SELECT account_id, sum(remaining), min(expires_at) FROM lots "
                   "WHERE remaining > 0 AND expires_at >= ?1 AND expires_at < ?2 "
                   "AND account_id > ?3 GROUP BY account_id ORDER BY account_id LIMIT ?4",
};

struct sqlite_notify {
    sqlite3 *db;
    sqlite3_stmt *stmt[N__COUNT];
    char *last_error;
    size_t last_error_size;
};

static sqlite_notify *N(kp_store *s) { return store_sqlite_notify_of(s); }

static kp_err fail(sqlite_notify *n, int rc)
{
    return store_sqlite_fail(n->db, n->last_error, n->last_error_size, rc);
}

static sqlite3_stmt *q(sqlite_notify *n, int id) { return store_sqlite_fresh(n->stmt[id]); }

static kp_err run(sqlite_notify *n, sqlite3_stmt *st)
{
    return store_sqlite_run(n->db, n->last_error, n->last_error_size, st);
}

/* The end of a read that stepped rows: KP_OK when the last step was a row
 * or the end, else the failure; resets the statement. */
static kp_err done(sqlite_notify *n, sqlite3_stmt *st, int rc)
{
    kp_err err = rc == SQLITE_DONE || rc == SQLITE_ROW ? KP_OK : fail(n, rc);
    sqlite3_reset(st);
    return err;
}

static kp_err nomem(sqlite_notify *n)
{
    snprintf(n->last_error, n->last_error_size, "out of memory");
    return KP_ERR_NOMEM;
}

/* ---- one write of several statements */

/* Starts it: a transaction of its own when none is open, else a savepoint
 * in the caller's. *own says which. */
static kp_err write_begin(sqlite_notify *n, bool *own)
{
    *own = sqlite3_get_autocommit(n->db) != 0;
    return run(n, q(n, *own ? N_BEGIN : N_SAVEPOINT));
}

/* Ends it: kept when err is KP_OK (and the commit works), else undone.
 * Returns the write's result. */
static kp_err write_end(sqlite_notify *n, bool own, kp_err err)
{
    if (err == KP_OK) {
        err = run(n, q(n, own ? N_COMMIT : N_RELEASE));
        if (err == KP_OK) return KP_OK;
    }
    /* The failure's message stays in last_error: the undo's own results
     * are not reported over it. */
    if (own) {
        if (!sqlite3_get_autocommit(n->db)) sqlite3_step(q(n, N_ROLLBACK));
        sqlite3_reset(n->stmt[N_ROLLBACK]);
    } else {
        sqlite3_step(q(n, N_ROLLBACK_TO));
        sqlite3_reset(n->stmt[N_ROLLBACK_TO]);
        sqlite3_step(q(n, N_RELEASE));
        sqlite3_reset(n->stmt[N_RELEASE]);
    }
    return err;
}

/* ---- column helpers */

/* A malloc'd copy of a blob column, NUL-terminated past its length (a JSON
 * payload reads as a string); *data NULL for SQL NULL. */
static kp_err blob_dup(sqlite_notify *n, sqlite3_stmt *st, int col, uint8_t **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    if (sqlite3_column_type(st, col) == SQLITE_NULL) return KP_OK;
    const void *b = sqlite3_column_blob(st, col);
    size_t l = (size_t)sqlite3_column_bytes(st, col);
    uint8_t *copy = malloc(l + 1);
    if (copy == NULL) return nomem(n);
    if (l) memcpy(copy, b, l);
    copy[l] = 0;
    *data = copy;
    *len = l;
    return KP_OK;
}

static kp_err text_dup(sqlite_notify *n, sqlite3_stmt *st, int col, char **out)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    *out = strdup(t ? (const char *)t : "");
    return *out ? KP_OK : nomem(n);
}

/* Binds a caller's blob; an empty one is a zero-length blob, not NULL. */
static void bind_blob(sqlite3_stmt *st, int i, const void *data, size_t len)
{
    if (len == 0) sqlite3_bind_zeroblob(st, i, 0);
    else sqlite3_bind_blob64(st, i, data, (sqlite3_uint64)len, SQLITE_STATIC);
}

/* Reads one row of a statement into the caller's struct. */
typedef kp_err (*row_fn)(sqlite_notify *n, sqlite3_stmt *st, void *out);

/* Reads the rows `st` gives, at most limit, into out[] (items of `size`
 * bytes) with row(); steps through the rest (a RETURNING statement made
 * its changes at its first step, and completes at its last). On error
 * frees what it read with release (NULL: nothing to free) and sets *count
 * 0. */
static kp_err read_rows(sqlite_notify *n, sqlite3_stmt *st, void *out, size_t size, size_t limit,
                        row_fn row, void (*release)(void *item), size_t *count)
{
    int rc = SQLITE_DONE;
    kp_err err = KP_OK;
    size_t got = 0;
    while (err == KP_OK && got < limit && (rc = sqlite3_step(st)) == SQLITE_ROW)
        if ((err = row(n, st, (char *)out + got * size)) == KP_OK) got++;
    while (err == KP_OK && rc == SQLITE_ROW) rc = sqlite3_step(st);
    if (err == KP_OK) err = done(n, st, rc);
    else sqlite3_reset(st);
    if (err && release)
        for (size_t i = 0; i < got; i++) release((char *)out + i * size);
    *count = err ? 0 : got;
    return err;
}

/* Reads the one row `st` gives into out: KP_ERR_NOT_FOUND when none. */
static kp_err read_one(sqlite_notify *n, sqlite3_stmt *st, void *out, row_fn row,
                       void (*release)(void *item))
{
    size_t got = 0;
    kp_err err = read_rows(n, st, out, 0, 1, row, release, &got);
    return err == KP_OK && got == 0 ? KP_ERR_NOT_FOUND : err;
}

static void release_event(void *ev) { kp_notify_event_release(ev); }
static void release_message(void *m) { kp_message_release(m); }
static void release_template(void *t) { kp_template_row_release(t); }

/* ---- events */

static kp_err n_event_insert(kp_store *s, kp_notify_event *ev)
{
    sqlite_notify *n = N(s);
    if (ev->key[0] == '\0') {
        snprintf(n->last_error, n->last_error_size,
                 "a notification event needs a key (its cause, \"op:123\"): it was empty");
        return KP_ERR_INVALID;
    }
    sqlite3_stmt *st = q(n, N_EVENT_INSERT);
    sqlite3_bind_text(st, 1, ev->key, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, (int)ev->kind);
    sqlite3_bind_int64(st, 3, ev->account_id);
    sqlite3_bind_int64(st, 4, ev->customer_id);
    sqlite3_bind_text(st, 5, ev->card, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, ev->op_id);
    sqlite3_bind_int64(st, 7, ev->at);
    sqlite3_bind_int(st, 8, ev->sealed ? 1 : 0);
    bind_blob(st, 9, ev->payload, ev->payload_len);
    kp_err err = run(n, st);
    if (err == KP_OK) ev->id = sqlite3_changes(n->db) ? sqlite3_last_insert_rowid(n->db) : 0;
    return err;
}

static kp_err event_row(sqlite_notify *n, sqlite3_stmt *st, void *row)
{
    kp_notify_event *out = row;
    memset(out, 0, sizeof *out);
    out->id = sqlite3_column_int64(st, 0);
    store_sqlite_copy_text(out->key, sizeof out->key, sqlite3_column_text(st, 1));
    out->kind = (kp_notify_kind)sqlite3_column_int(st, 2);
    out->account_id = sqlite3_column_int64(st, 3);
    out->customer_id = sqlite3_column_int64(st, 4);
    store_sqlite_copy_text(out->card, sizeof out->card, sqlite3_column_text(st, 5));
    out->op_id = sqlite3_column_int64(st, 6);
    out->at = sqlite3_column_int64(st, 7);
    out->sealed = sqlite3_column_int(st, 8) != 0;
    return blob_dup(n, st, 9, &out->payload, &out->payload_len);
}

static kp_err n_events_pending(kp_store *s, int64_t after, kp_notify_event *out, size_t limit,
                               size_t *count)
{
    sqlite_notify *n = N(s);
    *count = 0;
    sqlite3_stmt *st = q(n, N_EVENTS_PENDING);
    sqlite3_bind_int64(st, 1, after);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
    return read_rows(n, st, out, sizeof *out, limit, event_row, release_event, count);
}

static kp_err dispatch_messages(sqlite_notify *n, int64_t event_id, kp_message *msgs, size_t count,
                                kp_time now)
{
    for (size_t i = 0; i < count; i++) msgs[i].id = 0;
    /* Marked first (the caller's savepoint holds both): one statement
     * where the event is pending, the usual case; a look only when not. */
    sqlite3_stmt *st = q(n, N_EVENT_MARK);
    sqlite3_bind_int64(st, 1, event_id);
    sqlite3_bind_int64(st, 2, now);
    kp_err err = run(n, st);
    if (err) return err;
    if (sqlite3_changes(n->db) == 0) {
        st = q(n, N_EVENT_DISPATCHED);
        sqlite3_bind_int64(st, 1, event_id);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) {
            sqlite3_reset(st);
            snprintf(n->last_error, n->last_error_size, "no notification event %lld",
                     (long long)event_id);
            return KP_ERR_NOT_FOUND;
        }
        return done(n, st, rc); /* dispatched already: nothing more */
    }
    for (size_t i = 0; i < count && err == KP_OK; i++) {
        kp_message *m = &msgs[i];
        m->event_id = event_id;
        m->created_at = now;
        m->lease_until = 0;
        st = q(n, N_MESSAGE_INSERT);
        sqlite3_bind_text(st, 1, m->key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, event_id);
        sqlite3_bind_int(st, 3, (int)m->kind);
        sqlite3_bind_int(st, 4, (int)m->channel);
        sqlite3_bind_int64(st, 5, m->customer_id);
        sqlite3_bind_int64(st, 6, m->endpoint_id);
        sqlite3_bind_int(st, 7, (int)m->state);
        sqlite3_bind_int(st, 8, m->attempts);
        sqlite3_bind_int64(st, 9, now);
        sqlite3_bind_int64(st, 10, m->next_at);
        sqlite3_bind_int64(st, 11, m->sent_at);
        sqlite3_bind_text(st, 12, m->provider_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 13, m->last_error, -1, SQLITE_STATIC);
        bind_blob(st, 14, m->sealed, m->sealed_len);
        if ((err = run(n, st)) == KP_OK && sqlite3_changes(n->db))
            m->id = sqlite3_last_insert_rowid(n->db);
    }
    return err;
}

static kp_err n_event_dispatch(kp_store *s, int64_t event_id, kp_message *msgs, size_t count,
                               kp_time now)
{
    sqlite_notify *n = N(s);
    bool own;
    kp_err err = write_begin(n, &own);
    if (err) return err;
    err = write_end(n, own, dispatch_messages(n, event_id, msgs, count, now));
    if (err)
        for (size_t i = 0; i < count; i++) msgs[i].id = 0;
    return err;
}

/* ---- messages */

static kp_err message_row(sqlite_notify *n, sqlite3_stmt *st, void *row)
{
    kp_message *out = row;
    memset(out, 0, sizeof *out);
    out->id = sqlite3_column_int64(st, 0);
    store_sqlite_copy_text(out->key, sizeof out->key, sqlite3_column_text(st, 1));
    out->event_id = sqlite3_column_int64(st, 2);
    out->kind = (kp_notify_kind)sqlite3_column_int(st, 3);
    out->channel = (kp_channel)sqlite3_column_int(st, 4);
    out->customer_id = sqlite3_column_int64(st, 5);
    out->endpoint_id = sqlite3_column_int64(st, 6);
    out->state = (kp_message_state)sqlite3_column_int(st, 7);
    out->attempts = sqlite3_column_int(st, 8);
    out->created_at = sqlite3_column_int64(st, 9);
    out->next_at = sqlite3_column_int64(st, 10);
    out->lease_until = sqlite3_column_int64(st, 11);
    out->sent_at = sqlite3_column_int64(st, 12);
    store_sqlite_copy_text(out->provider_id, sizeof out->provider_id, sqlite3_column_text(st, 13));
    store_sqlite_copy_text(out->last_error, sizeof out->last_error, sqlite3_column_text(st, 14));
    return blob_dup(n, st, 15, &out->sealed, &out->sealed_len);
}

static kp_err message_rows(sqlite_notify *n, sqlite3_stmt *st, kp_message *out, size_t limit,
                           size_t *count)
{
    return read_rows(n, st, out, sizeof *out, limit, message_row, release_message, count);
}

static int by_due(const void *a, const void *b)
{
    const kp_message *x = a, *y = b;
    if (x->next_at != y->next_at) return x->next_at < y->next_at ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

static kp_err n_messages_claim(kp_store *s, kp_time now, kp_time lease_until, kp_channel channel,
                               kp_message *out, size_t limit, size_t *count)
{
    sqlite_notify *n = N(s);
    *count = 0;
    if (limit == 0) return KP_OK;
    sqlite3_stmt *st = q(n, channel ? N_CLAIM_CHANNEL : N_CLAIM_ANY);
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, lease_until);
    if (channel) sqlite3_bind_int(st, 3, (int)channel);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)limit);
    kp_err err = message_rows(n, st, out, limit, count);
    /* RETURNING gives rows in no promised order. */
    if (err == KP_OK) qsort(out, *count, sizeof *out, by_due);
    return err;
}

static kp_err settle_all(sqlite_notify *n, const kp_message_result *results, size_t count)
{
    kp_err err = KP_OK;
    for (size_t i = 0; i < count && err == KP_OK; i++) {
        const kp_message_result *r = &results[i];
        sqlite3_stmt *st = q(n, N_SETTLE);
        sqlite3_bind_int64(st, 1, r->id);
        sqlite3_bind_int(st, 2, (int)r->state);
        sqlite3_bind_int(st, 3, r->attempts);
        sqlite3_bind_int64(st, 4, r->next_at);
        sqlite3_bind_int64(st, 5, r->sent_at);
        sqlite3_bind_text(st, 6, r->provider_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 7, r->last_error, -1, SQLITE_STATIC);
        err = run(n, st);
    }
    return err;
}

static kp_err n_messages_settle(kp_store *s, const kp_message_result *results, size_t count)
{
    sqlite_notify *n = N(s);
    if (count == 0) return KP_OK;
    bool own;
    kp_err err = write_begin(n, &own);
    return err ? err : write_end(n, own, settle_all(n, results, count));
}

static kp_err n_message_get(kp_store *s, int64_t id, kp_message *out)
{
    sqlite_notify *n = N(s);
    sqlite3_stmt *st = q(n, N_MESSAGE_GET);
    sqlite3_bind_int64(st, 1, id);
    kp_err err = read_one(n, st, out, message_row, release_message);
    if (err == KP_ERR_NOT_FOUND)
        snprintf(n->last_error, n->last_error_size, "no message %lld", (long long)id);
    return err;
}

static kp_err n_messages_list(kp_store *s, const kp_message_filter *f, int64_t before,
                              kp_message *out, size_t limit, size_t *count)
{
    sqlite_notify *n = N(s);
    int which = f->event_id      ? N_LIST_EVENT
                : f->endpoint_id ? N_LIST_ENDPOINT
                : f->customer_id ? N_LIST_CUSTOMER
                                 : N_LIST_ALL;
    sqlite3_stmt *st = q(n, which);
    sqlite3_bind_int64(st, 1, f->customer_id);
    sqlite3_bind_int64(st, 2, f->endpoint_id);
    sqlite3_bind_int64(st, 3, f->event_id);
    sqlite3_bind_int(st, 4, f->state);
    sqlite3_bind_int64(st, 5, before > 0 ? before : INT64_MAX);
    sqlite3_bind_int(st, 6, (int)f->channel);
    sqlite3_bind_int64(st, 7, (sqlite3_int64)limit);
    return message_rows(n, st, out, limit, count);
}

static kp_err n_message_retry(kp_store *s, int64_t id, kp_time now)
{
    sqlite_notify *n = N(s);
    sqlite3_stmt *st = q(n, N_RETRY);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, now);
    kp_err err = run(n, st);
    if (err || sqlite3_changes(n->db)) return err;
    /* Nothing changed: no such message, or one erased (nothing to send). */
    kp_message m;
    if ((err = n_message_get(s, id, &m)) != KP_OK) return err;
    kp_message_release(&m);
    snprintf(n->last_error, n->last_error_size,
             "message %lld was erased with its customer's data: there is nothing to send again",
             (long long)id);
    return KP_ERR_CONFLICT;
}

static kp_err n_messages_cancel(kp_store *s, int64_t customer_id, uint32_t channels,
                                uint32_t kinds, int64_t *count)
{
    sqlite_notify *n = N(s);
    sqlite3_stmt *st = q(n, N_CANCEL);
    sqlite3_bind_int64(st, 1, customer_id);
    sqlite3_bind_int64(st, 2, channels);
    sqlite3_bind_int64(st, 3, kinds);
    kp_err err = run(n, st);
    if (err == KP_OK) *count = sqlite3_changes(n->db);
    return err;
}

static kp_err n_messages_erase(kp_store *s, int64_t customer_id, int64_t *count)
{
    sqlite_notify *n = N(s);
    sqlite3_stmt *st = q(n, N_ERASE);
    sqlite3_bind_int64(st, 1, customer_id);
    kp_err err = run(n, st);
    if (err == KP_OK) *count = sqlite3_changes(n->db);
    return err;
}

static kp_err n_outbox_stats(kp_store *s, kp_outbox_stats *out)
{
    sqlite_notify *n = N(s);
    kp_outbox_stats r;
    memset(&r, 0, sizeof r);
    sqlite3_stmt *st = q(n, N_STATS_EVENTS);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        r.events_pending = sqlite3_column_int64(st, 0);
        r.oldest_event_at = sqlite3_column_int64(st, 1);
    }
    kp_err err = done(n, st, rc);
    if (err) return err;
    st = q(n, N_STATS_MESSAGES);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int state = sqlite3_column_int(st, 0), channel = sqlite3_column_int(st, 1);
        if (state < 0 || state >= 4 || channel <= 0 || channel >= KP_CHANNEL__COUNT) {
            sqlite3_reset(st);
            snprintf(n->last_error, n->last_error_size,
                     "messages hold state %d of channel %d, which this version does not know",
                     state, channel);
            return KP_ERR_INTERNAL;
        }
        r.by_state[state][channel] = sqlite3_column_int64(st, 2);
    }
    if ((err = done(n, st, rc))) return err;
    st = q(n, N_STATS_OLDEST);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) r.oldest_pending_at = sqlite3_column_int64(st, 0);
    if ((err = done(n, st, rc))) return err;
    *out = r;
    return KP_OK;
}

/* ---- preferences */

static kp_err n_prefs_get(kp_store *s, int64_t customer_id, kp_notify_prefs *out)
{
    sqlite_notify *n = N(s);
    sqlite3_stmt *st = q(n, N_PREFS_GET);
    sqlite3_bind_int64(st, 1, customer_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return KP_ERR_NOT_FOUND;
    }
    if (rc == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        out->customer_id = sqlite3_column_int64(st, 0);
        store_sqlite_copy_text(out->language, sizeof out->language, sqlite3_column_text(st, 1));
        out->has_utc_offset = sqlite3_column_type(st, 2) != SQLITE_NULL;
        out->utc_offset_minutes = sqlite3_column_int(st, 2);
        out->transactional = (uint32_t)sqlite3_column_int64(st, 3);
        out->marketing = (uint32_t)sqlite3_column_int64(st, 4);
        out->marketing_consent_at = sqlite3_column_int64(st, 5);
        store_sqlite_copy_text(out->marketing_consent_version,
                               sizeof out->marketing_consent_version, sqlite3_column_text(st, 6));
        out->updated_at = sqlite3_column_int64(st, 7);
    }
    return done(n, st, rc);
}

static kp_err n_prefs_put(kp_store *s, const kp_notify_prefs *p)
{
    sqlite_notify *n = N(s);
    sqlite3_stmt *st = q(n, N_PREFS_PUT);
    sqlite3_bind_int64(st, 1, p->customer_id);
    sqlite3_bind_text(st, 2, p->language, -1, SQLITE_STATIC);
    if (p->has_utc_offset) sqlite3_bind_int(st, 3, p->utc_offset_minutes);
    sqlite3_bind_int64(st, 4, p->transactional);
    sqlite3_bind_int64(st, 5, p->marketing);
    sqlite3_bind_int64(st, 6, p->marketing_consent_at);
    sqlite3_bind_text(st, 7, p->marketing_consent_version, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, p->updated_at);
    return run(n, st);
}

/* ---- templates */

static kp_err template_row(sqlite_notify *n, sqlite3_stmt *st, void *row)
{
    kp_template_row *out = row;
    memset(out, 0, sizeof *out);
    out->kind = (kp_notify_kind)sqlite3_column_int(st, 0);
    out->channel = (kp_channel)sqlite3_column_int(st, 1);
    store_sqlite_copy_text(out->language, sizeof out->language, sqlite3_column_text(st, 2));
    out->updated_at = sqlite3_column_int64(st, 6);
    store_sqlite_copy_text(out->actor, sizeof out->actor, sqlite3_column_text(st, 7));
    kp_err err = text_dup(n, st, 3, &out->subject);
    if (err == KP_OK) err = text_dup(n, st, 4, &out->text);
    if (err == KP_OK) err = text_dup(n, st, 5, &out->html);
    if (err) kp_template_row_release(out);
    return err;
}

static kp_err n_template_get(kp_store *s, kp_notify_kind kind, kp_channel channel,
                             const char *language, kp_template_row *out)
{
    sqlite_notify *n = N(s);
    sqlite3_stmt *st = q(n, N_TEMPLATE_GET);
    sqlite3_bind_int(st, 1, (int)kind);
    sqlite3_bind_int(st, 2, (int)channel);
    sqlite3_bind_text(st, 3, language, -1, SQLITE_STATIC);
    return read_one(n, st, out, template_row, release_template);
}

static kp_err n_template_put(kp_store *s, const kp_template_row *t)
{
    sqlite_notify *n = N(s);
    sqlite3_stmt *st = q(n, N_TEMPLATE_PUT);
    sqlite3_bind_int(st, 1, (int)t->kind);
    sqlite3_bind_int(st, 2, (int)t->channel);
    sqlite3_bind_text(st, 3, t->language, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, t->subject ? t->subject : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, t->text ? t->text : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, t->html ? t->html : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, t->updated_at);
    sqlite3_bind_text(st, 8, t->actor, -1, SQLITE_STATIC);
    return run(n, st);
}

static kp_err n_template_delete(kp_store *s, kp_notify_kind kind, kp_channel channel,
                                const char *language)
{
    sqlite_notify *n = N(s);
    sqlite3_stmt *st = q(n, N_TEMPLATE_DELETE);
    sqlite3_bind_int(st, 1, (int)kind);
    sqlite3_bind_int(st, 2, (int)channel);
    sqlite3_bind_text(st, 3, language, -1, SQLITE_STATIC);
    return run(n, st);
}

static kp_err n_templates_list(kp_store *s, kp_template_row *out, size_t limit, size_t *count)
{
    sqlite_notify *n = N(s);
    *count = 0;
    sqlite3_stmt *st = q(n, N_TEMPLATES_LIST);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)limit);
    return read_rows(n, st, out, sizeof *out, limit, template_row, release_template, count);
}

/* ---- webhook endpoints */

static kp_err endpoint_bind(sqlite_notify *n, sqlite3_stmt *st, const kp_webhook_endpoint *ep)
{
    if (ep->secret.len > sizeof ep->secret.data) {
        snprintf(n->last_error, n->last_error_size,
                 "webhook endpoint's sealed secret is %zu bytes, more than %zu", ep->secret.len,
                 sizeof ep->secret.data);
        return KP_ERR_INVALID;
    }
    sqlite3_bind_int64(st, 1, ep->id);
    sqlite3_bind_text(st, 2, ep->url, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, ep->description, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, ep->kinds);
    sqlite3_bind_int(st, 5, ep->active ? 1 : 0);
    bind_blob(st, 6, ep->secret.data, ep->secret.len);
    sqlite3_bind_int64(st, 7, ep->created_at);
    sqlite3_bind_int64(st, 8, ep->updated_at);
    return KP_OK;
}

static kp_err n_endpoint_insert(kp_store *s, kp_webhook_endpoint *ep)
{
    sqlite_notify *n = N(s);
    sqlite3_stmt *st = q(n, N_ENDPOINT_INSERT);
    kp_err err = endpoint_bind(n, st, ep);
    if (err == KP_OK) err = run(n, st);
    if (err == KP_OK) ep->id = sqlite3_last_insert_rowid(n->db);
    return err;
}

static kp_err n_endpoint_update(kp_store *s, const kp_webhook_endpoint *ep)
{
    sqlite_notify *n = N(s);
    sqlite3_stmt *st = q(n, N_ENDPOINT_UPDATE);
    kp_err err = endpoint_bind(n, st, ep);
    if (err == KP_OK) err = run(n, st);
    if (err == KP_OK && sqlite3_changes(n->db) == 0) {
        snprintf(n->last_error, n->last_error_size, "no webhook endpoint %lld",
                 (long long)ep->id);
        return KP_ERR_NOT_FOUND;
    }
    return err;
}

static kp_err endpoint_row(sqlite_notify *n, sqlite3_stmt *st, void *row)
{
    kp_webhook_endpoint *out = row;
    memset(out, 0, sizeof *out);
    out->id = sqlite3_column_int64(st, 0);
    store_sqlite_copy_text(out->url, sizeof out->url, sqlite3_column_text(st, 1));
    store_sqlite_copy_text(out->description, sizeof out->description, sqlite3_column_text(st, 2));
    out->kinds = (uint32_t)sqlite3_column_int64(st, 3);
    out->active = sqlite3_column_int(st, 4) != 0;
    size_t len = (size_t)sqlite3_column_bytes(st, 5);
    if (len > sizeof out->secret.data) {
        snprintf(n->last_error, n->last_error_size,
                 "webhook endpoint %lld: its stored secret is %zu bytes, more than %zu: the "
                 "row is damaged",
                 (long long)out->id, len, sizeof out->secret.data);
        return KP_ERR_IO;
    }
    if (len) memcpy(out->secret.data, sqlite3_column_blob(st, 5), len);
    out->secret.len = len;
    out->created_at = sqlite3_column_int64(st, 6);
    out->updated_at = sqlite3_column_int64(st, 7);
    return KP_OK;
}

static kp_err n_endpoint_get(kp_store *s, int64_t id, kp_webhook_endpoint *out)
{
    sqlite_notify *n = N(s);
    sqlite3_stmt *st = q(n, N_ENDPOINT_GET);
    sqlite3_bind_int64(st, 1, id);
    kp_err err = read_one(n, st, out, endpoint_row, NULL);
    if (err == KP_ERR_NOT_FOUND)
        snprintf(n->last_error, n->last_error_size, "no webhook endpoint %lld", (long long)id);
    return err;
}

static kp_err n_endpoints_list(kp_store *s, kp_webhook_endpoint *out, size_t limit,
                               size_t *count)
{
    sqlite_notify *n = N(s);
    *count = 0;
    sqlite3_stmt *st = q(n, N_ENDPOINTS_LIST);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)limit);
    return read_rows(n, st, out, sizeof *out, limit, endpoint_row, NULL, count);
}

/* ---- login codes */

static kp_err n_login_code_put(kp_store *s, int64_t customer_id, const uint8_t hash[32],
                               kp_time expires_at, kp_time now)
{
    sqlite_notify *n = N(s);
    sqlite3_stmt *st = q(n, N_CODE_PUT);
    sqlite3_bind_int64(st, 1, customer_id);
    sqlite3_bind_blob(st, 2, hash, 32, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, expires_at);
    sqlite3_bind_int64(st, 4, now);
    return run(n, st);
}

static kp_err code_check(sqlite_notify *n, int64_t customer_id, const uint8_t hash[32],
                         kp_time now, int32_t max_attempts, bool *ok)
{
    sqlite3_stmt *st = q(n, N_CODE_GET);
    sqlite3_bind_int64(st, 1, customer_id);
    int rc = sqlite3_step(st);
    bool live = false, match = false;
    if (rc == SQLITE_ROW) {
        live = sqlite3_column_int64(st, 1) > now && sqlite3_column_int64(st, 2) < max_attempts;
        /* Compared in constant time: how long a wrong code takes says
         * nothing of the right one. */
        match = sqlite3_column_bytes(st, 0) == 32 &&
                sodium_memcmp(sqlite3_column_blob(st, 0), hash, 32) == 0;
    }
    kp_err err = done(n, st, rc);
    if (err) return err;
    if (!live) {
        snprintf(n->last_error, n->last_error_size,
                 "customer %lld has no login code that is still valid", (long long)customer_id);
        return KP_ERR_NOT_FOUND;
    }
    st = q(n, match ? N_CODE_USE : N_CODE_MISS);
    sqlite3_bind_int64(st, 1, customer_id);
    if ((err = run(n, st)) == KP_OK) *ok = match;
    return err;
}

static kp_err n_login_code_check(kp_store *s, int64_t customer_id, const uint8_t hash[32],
                                 kp_time now, int32_t max_attempts, bool *ok)
{
    sqlite_notify *n = N(s);
    *ok = false;
    bool own;
    kp_err err = write_begin(n, &own);
    if (err) return err;
    /* A miss counts even though the answer is "no": the write is kept. */
    err = write_end(n, own, code_check(n, customer_id, hash, now, max_attempts, ok));
    if (err) *ok = false;
    return err;
}

/* ---- customers' sessions */

static kp_err n_session_insert(kp_store *s, const uint8_t token_hash[32], int64_t customer_id,
                               kp_time now, kp_time expires_at)
{
    sqlite_notify *n = N(s);
    sqlite3_stmt *st = q(n, N_SESSION_INSERT);
    sqlite3_bind_blob(st, 1, token_hash, 32, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, customer_id);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int64(st, 4, expires_at);
    return run(n, st);
}

static kp_err n_session_find(kp_store *s, const uint8_t token_hash[32], kp_time now,
                             int64_t *customer_id, kp_time *expires_at)
{
    sqlite_notify *n = N(s);
    sqlite3_stmt *st = q(n, N_SESSION_FIND);
    sqlite3_bind_blob(st, 1, token_hash, 32, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(st);
        return KP_ERR_NOT_FOUND;
    }
    if (rc == SQLITE_ROW) {
        *customer_id = sqlite3_column_int64(st, 0);
        *expires_at = sqlite3_column_int64(st, 1);
    }
    return done(n, st, rc);
}

static kp_err n_session_delete(kp_store *s, const uint8_t token_hash[32])
{
    sqlite_notify *n = N(s);
    sqlite3_stmt *st = q(n, N_SESSION_DELETE);
    sqlite3_bind_blob(st, 1, token_hash, 32, SQLITE_STATIC);
    return run(n, st);
}

static kp_err n_sessions_end(kp_store *s, int64_t customer_id)
{
    sqlite_notify *n = N(s);
    sqlite3_stmt *st = q(n, N_SESSIONS_END);
    sqlite3_bind_int64(st, 1, customer_id);
    return run(n, st);
}

/* ---- reminders */

static kp_err n_expiring_between(kp_store *s, kp_time from, kp_time to, int64_t after,
                                 kp_expiring_row *out, size_t limit, size_t *count)
{
    sqlite_notify *n = N(s);
    *count = 0;
    sqlite3_stmt *st = q(n, N_EXPIRING);
    sqlite3_bind_int64(st, 1, from);
    sqlite3_bind_int64(st, 2, to);
    sqlite3_bind_int64(st, 3, after);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)limit);
    int rc = SQLITE_DONE;
    size_t got = 0;
    while (got < limit && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        kp_expiring_row *r = &out[got++];
        r->account_id = sqlite3_column_int64(st, 0);
        r->points = sqlite3_column_int64(st, 1);
        r->first_at = sqlite3_column_int64(st, 2);
    }
    kp_err err = done(n, st, rc);
    if (err == KP_OK) *count = got;
    return err;
}

/* ---- open, close */

static bool schema_current(sqlite3 *db)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'notify_schema'", -1, &st,
                           NULL) != SQLITE_OK)
        return false;
    bool current = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) >= 1;
    sqlite3_finalize(st);
    return current;
}

/* Creates the tables in one transaction: two processes opening an older
 * database at once do not interleave their DDL (the second's CREATE ... IF
 * NOT EXISTS find the work done). */
static int schema_update(sqlite3 *db)
{
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, schema_sql, NULL, NULL, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK && !sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

kp_err store_sqlite_notify_open(sqlite3 *db, char *last_error, size_t last_error_size,
                                sqlite_notify **out)
{
    *out = NULL;
    sqlite_notify *n = calloc(1, sizeof *n);
    if (n == NULL) return KP_ERR_NOMEM;
    n->db = db;
    n->last_error = last_error;
    n->last_error_size = last_error_size;
    int rc = schema_current(db) ? SQLITE_OK : schema_update(db);
    for (int i = 0; i < N__COUNT && rc == SQLITE_OK; i++)
        rc = sqlite3_prepare_v3(db, queries[i], -1, SQLITE_PREPARE_PERSISTENT, &n->stmt[i], NULL);
    if (rc != SQLITE_OK) {
        kp_err err = fail(n, rc);
        store_sqlite_notify_close(n);
        return err;
    }
    *out = n;
    return KP_OK;
}

void store_sqlite_notify_close(sqlite_notify *n)
{
    if (n == NULL) return;
    for (int i = 0; i < N__COUNT; i++) sqlite3_finalize(n->stmt[i]);
    free(n);
}

const kp_notify_ops store_sqlite_notify_ops = {
    .event_insert = n_event_insert,
    .events_pending = n_events_pending,
    .event_dispatch = n_event_dispatch,
    .messages_claim = n_messages_claim,
    .messages_settle = n_messages_settle,
    .message_get = n_message_get,
    .messages_list = n_messages_list,
    .message_retry = n_message_retry,
    .messages_cancel = n_messages_cancel,
    .messages_erase = n_messages_erase,
    .outbox_stats = n_outbox_stats,
    .prefs_get = n_prefs_get,
    .prefs_put = n_prefs_put,
    .template_get = n_template_get,
    .template_put = n_template_put,
    .template_delete = n_template_delete,
    .templates_list = n_templates_list,
    .endpoint_insert = n_endpoint_insert,
    .endpoint_update = n_endpoint_update,
    .endpoint_get = n_endpoint_get,
    .endpoints_list = n_endpoints_list,
    .login_code_put = n_login_code_put,
    .login_code_check = n_login_code_check,
    .customer_session_insert = n_session_insert,
    .customer_session_find = n_session_find,
    .customer_session_delete = n_session_delete,
    .customer_sessions_end = n_sessions_end,
    .expiring_between = n_expiring_between,
};
