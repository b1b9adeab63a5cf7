/*
 * store_sqlite_triggers.c: kp_triggers_ops over SQLite. Every statement is
 * prepared once at open, as in store_sqlite.c. None of these run on the
 * purchase path of a program without tiers, individual discounts or an
 * annual bonus; with them, a purchase adds one primary-key read
 * (account_rules) and, for the annual bonus, one scan of the account's
 * operations.
 */
#include "store_sqlite_triggers.h"
#include "store_sqlite_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS account_rules (account_id INTEGER PRIMARY KEY,"
    "  tier TEXT NOT NULL DEFAULT '', tier_since INTEGER NOT NULL DEFAULT 0,"
    "  personal_discount_bp INTEGER);"
    "CREATE TABLE IF NOT EXISTS tier_changes (id INTEGER PRIMARY KEY,"
    "  account_id INTEGER NOT NULL, at INTEGER NOT NULL, from_tier TEXT NOT NULL,"
    "  to_tier TEXT NOT NULL, spend INTEGER NOT NULL, reason TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS events (store TEXT NOT NULL, id TEXT NOT NULL,"
    "  type TEXT NOT NULL, account_id INTEGER NOT NULL, request_hash BLOB NOT NULL,"
    "  at INTEGER NOT NULL, response TEXT NOT NULL, PRIMARY KEY (store, id)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS grant_keys (key TEXT PRIMARY KEY, op_id INTEGER NOT NULL,"
    "  at INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS job_state (job TEXT PRIMARY KEY, done_until INTEGER NOT NULL,"
    "  cursor INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS job_runs (id INTEGER PRIMARY KEY, job TEXT NOT NULL,"
    "  due_at INTEGER NOT NULL, ran_at INTEGER NOT NULL, items INTEGER NOT NULL,"
    "  detail TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS account_birthdays (account_id INTEGER PRIMARY KEY,"
    "  month_day_ix BLOB NOT NULL);"
    "CREATE INDEX IF NOT EXISTS account_birthdays_ix ON account_birthdays(month_day_ix, "
    "account_id);";

enum {
    T_RULES_GET,
    T_TIER_SET,
    T_TIER_LOG,
    T_DISCOUNT_SET,
    T_SPEND_BETWEEN,
    T_REVIEW_PAGE,
    T_EXPIRING,
    T_CREATED_ON,
    T_EVENT_FIND,
    T_EVENT_INSERT,
    T_KEY_FIND,
    T_KEY_INSERT,
    T_STATE_GET,
    T_STATE_SET,
    T_RUN_INSERT,
    T_RUNS,
    T_BIRTHDAY_SET,
    T_BIRTHDAY_ACCOUNTS,
    T__COUNT
};

/* Purchases (1) and returns (2): ops.amount is the receipt amount, negative
 * for a return. */
#define SPEND_OPS "type IN (1, 2)"

static const char *const queries[T__COUNT] = {
    [T_RULES_GET] = "SELECT tier, tier_since, personal_discount_bp FROM account_rules "
                    "WHERE account_id = ?1",
    [T_TIER_SET] = "INSERT INTO account_rules(account_id, tier, tier_since) VALUES (?1, ?2, ?3) "
                   "ON CONFLICT(account_id) DO UPDATE SET tier = ?2, tier_since = ?3",
    [T_TIER_LOG] = "INSERT INTO tier_changes(account_id, at, from_tier, to_tier, spend, reason) "
                   "VALUES (?1, ?2, COALESCE((SELECT tier FROM account_rules WHERE "
                   "account_id = ?1), ''), ?3, ?4, ?5)",
    [T_DISCOUNT_SET] =
        "INSERT INTO account_rules(account_id, personal_discount_bp) VALUES (?1, ?2) "
        "ON CONFLICT(account_id) DO UPDATE SET personal_discount_bp = ?2",
    [T_SPEND_BETWEEN] =
        "SELECT COALESCE(SUM(amount), 0) FROM ops WHERE account_id = ?1 AND " SPEND_OPS
        " AND at >= ?2 AND at < ?3",
    [T_REVIEW_PAGE] = "SELECT a.id, (SELECT COALESCE(SUM(o.amount), 0) FROM ops o WHERE "
                      "o.account_id = a.id AND o." SPEND_OPS " AND o.at >= ?2 AND o.at < ?3), "
                      "COALESCE(r.tier, '') FROM accounts a LEFT JOIN account_rules r ON "
                      "r.account_id = a.id WHERE a.id > ?1 ORDER BY a.id LIMIT ?4",
    [T_EXPIRING] = "SELECT DISTINCT account_id FROM lots WHERE remaining > 0 AND expires_at <= ?1 "
                   "ORDER BY account_id LIMIT ?2",
    [T_CREATED_ON] = "SELECT id, created_at FROM accounts WHERE id > ?1 AND created_at < ?2 AND "
                     "strftime('%m-%d', created_at + ?3, 'unixepoch') = ?4 ORDER BY id LIMIT ?5",
    [T_EVENT_FIND] = "SELECT type, account_id, request_hash, at, response FROM events "
                     "WHERE store = ?1 AND id = ?2",
    [T_EVENT_INSERT] =
        "INSERT INTO events(store, id, type, account_id, request_hash, at, response) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [T_KEY_FIND] = "SELECT op_id FROM grant_keys WHERE key = ?1",
    [T_KEY_INSERT] = "INSERT INTO grant_keys(key, op_id, at) VALUES (?1, ?2, ?3)",
    [T_STATE_GET] = "SELECT done_until, cursor FROM job_state WHERE job = ?1",
    [T_STATE_SET] = "INSERT INTO job_state(job, done_until, cursor) VALUES (?1, ?2, ?3) "
                    "ON CONFLICT(job) DO UPDATE SET done_until = ?2, cursor = ?3",
    [T_RUN_INSERT] = "INSERT INTO job_runs(job, due_at, ran_at, items, detail) "
                     "VALUES (?1, ?2, ?3, ?4, ?5)",
    [T_RUNS] = "SELECT id, job, due_at, ran_at, items, detail FROM job_runs "
               "ORDER BY id DESC LIMIT ?1",
    [T_BIRTHDAY_SET] = "INSERT INTO account_birthdays(account_id, month_day_ix) VALUES (?1, ?2) "
                       "ON CONFLICT(account_id) DO UPDATE SET month_day_ix = ?2",
    [T_BIRTHDAY_ACCOUNTS] = "SELECT account_id FROM account_birthdays WHERE month_day_ix = ?1 "
                            "AND account_id > ?2 ORDER BY account_id LIMIT ?3",
};

struct sqlite_triggers {
    sqlite3 *db;
    char *last_error;
    size_t last_error_size;
    sqlite3_stmt *stmt[T__COUNT];
};

static kp_err fail(sqlite_triggers *t, int rc)
{
    return store_sqlite_fail(t->db, t->last_error, t->last_error_size, rc);
}

static sqlite3_stmt *q(sqlite_triggers *t, int id) { return store_sqlite_fresh(t->stmt[id]); }

static kp_err run(sqlite_triggers *t, sqlite3_stmt *st)
{
    return store_sqlite_run(t->db, t->last_error, t->last_error_size, st);
}


static sqlite_triggers *T(kp_store *s)
{
    return store_sqlite_triggers_of(s);
}

void kp_event_row_release(kp_event_row *row)
{
    free(row->response);
    row->response = NULL;
}

kp_err store_sqlite_triggers_open(sqlite3 *db, char *last_error, size_t last_error_size,
                                  sqlite_triggers **out)
{
    *out = NULL;
    sqlite_triggers *t = calloc(1, sizeof *t);
    if (t == NULL) return KP_ERR_NOMEM;
    t->db = db;
    t->last_error = last_error;
    t->last_error_size = last_error_size;
    int rc = sqlite3_exec(db, schema_sql, NULL, NULL, NULL);
    for (int i = 0; i < T__COUNT && rc == SQLITE_OK; i++)
        rc = sqlite3_prepare_v3(db, queries[i], -1, SQLITE_PREPARE_PERSISTENT, &t->stmt[i], NULL);
    if (rc != SQLITE_OK) {
        kp_err err = fail(t, rc);
        store_sqlite_triggers_close(t);
        return err;
    }
    *out = t;
    return KP_OK;
}

void store_sqlite_triggers_close(sqlite_triggers *t)
{
    if (t == NULL) return;
    for (int i = 0; i < T__COUNT; i++) sqlite3_finalize(t->stmt[i]);
    free(t);
}

/* ---- account rule state */

static kp_err t_rules_get(kp_store *s, int64_t account_id, kp_account_rules *out)
{
    sqlite_triggers *t = T(s);
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = q(t, T_RULES_GET);
    sqlite3_bind_int64(st, 1, account_id);
    int rc = sqlite3_step(st);
    kp_err err = KP_OK;
    if (rc == SQLITE_ROW) {
        store_sqlite_copy_text(out->tier, sizeof out->tier, sqlite3_column_text(st, 0));
        out->tier_since = sqlite3_column_int64(st, 1);
        out->has_personal_discount = sqlite3_column_type(st, 2) != SQLITE_NULL;
        out->personal_discount_bp = sqlite3_column_int(st, 2);
    } else if (rc != SQLITE_DONE) {
        err = fail(t, rc);
    }
    sqlite3_reset(st);
    return err;
}

static kp_err t_tier_set(kp_store *s, int64_t account_id, const char *tier, int64_t spend_minor,
                         kp_time at, const char *reason)
{
    sqlite_triggers *t = T(s);
    sqlite3_stmt *st = q(t, T_TIER_LOG);
    sqlite3_bind_int64(st, 1, account_id);
    sqlite3_bind_int64(st, 2, at);
    sqlite3_bind_text(st, 3, tier, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, spend_minor);
    sqlite3_bind_text(st, 5, reason, -1, SQLITE_STATIC);
    kp_err err = run(t, st);
    if (err) return err;
    st = q(t, T_TIER_SET);
    sqlite3_bind_int64(st, 1, account_id);
    sqlite3_bind_text(st, 2, tier, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, at);
    return run(t, st);
}

static kp_err t_discount_set(kp_store *s, int64_t account_id, bool has, int32_t bp)
{
    sqlite_triggers *t = T(s);
    sqlite3_stmt *st = q(t, T_DISCOUNT_SET);
    sqlite3_bind_int64(st, 1, account_id);
    if (has) sqlite3_bind_int(st, 2, bp);
    return run(t, st);
}

static kp_err t_spend_between(kp_store *s, int64_t account_id, kp_time from, kp_time to,
                              int64_t *sum)
{
    sqlite_triggers *t = T(s);
    *sum = 0;
    sqlite3_stmt *st = q(t, T_SPEND_BETWEEN);
    sqlite3_bind_int64(st, 1, account_id);
    sqlite3_bind_int64(st, 2, from);
    sqlite3_bind_int64(st, 3, to);
    int rc = sqlite3_step(st);
    kp_err err = KP_OK;
    if (rc == SQLITE_ROW)
        *sum = sqlite3_column_int64(st, 0);
    else
        err = fail(t, rc);
    sqlite3_reset(st);
    return err;
}

static kp_err t_review_page(kp_store *s, int64_t after, kp_time from, kp_time to,
                            kp_review_row *out, size_t limit, size_t *n)
{
    sqlite_triggers *t = T(s);
    *n = 0;
    sqlite3_stmt *st = q(t, T_REVIEW_PAGE);
    sqlite3_bind_int64(st, 1, after);
    sqlite3_bind_int64(st, 2, from);
    sqlite3_bind_int64(st, 3, to);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)limit);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < limit) {
        kp_review_row *r = &out[(*n)++];
        r->account_id = sqlite3_column_int64(st, 0);
        r->spend_minor = sqlite3_column_int64(st, 1);
        store_sqlite_copy_text(r->tier, sizeof r->tier, sqlite3_column_text(st, 2));
    }
    kp_err err = (rc == SQLITE_DONE || rc == SQLITE_ROW) ? KP_OK : fail(t, rc);
    sqlite3_reset(st);
    return err;
}

static kp_err t_expiring(kp_store *s, kp_time now, int64_t *ids, size_t limit, size_t *n)
{
    sqlite_triggers *t = T(s);
    *n = 0;
    sqlite3_stmt *st = q(t, T_EXPIRING);
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < limit)
        ids[(*n)++] = sqlite3_column_int64(st, 0);
    kp_err err = (rc == SQLITE_DONE || rc == SQLITE_ROW) ? KP_OK : fail(t, rc);
    sqlite3_reset(st);
    return err;
}

static kp_err t_created_on(kp_store *s, int month, int day, int32_t offset_minutes, kp_time before,
                           int64_t after, int64_t *ids, kp_time *created_at, size_t limit,
                           size_t *n)
{
    sqlite_triggers *t = T(s);
    *n = 0;
    char md[8];
    snprintf(md, sizeof md, "%02d-%02d", month % 100, day % 100);
    sqlite3_stmt *st = q(t, T_CREATED_ON);
    sqlite3_bind_int64(st, 1, after);
    sqlite3_bind_int64(st, 2, before);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)offset_minutes * 60);
    sqlite3_bind_text(st, 4, md, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)limit);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < limit) {
        ids[*n] = sqlite3_column_int64(st, 0);
        created_at[*n] = sqlite3_column_int64(st, 1);
        (*n)++;
    }
    kp_err err = (rc == SQLITE_DONE || rc == SQLITE_ROW) ? KP_OK : fail(t, rc);
    sqlite3_reset(st);
    return err;
}

/* ---- events */

static kp_err t_event_find(kp_store *s, const char *store, const char *id, kp_event_row *out)
{
    sqlite_triggers *t = T(s);
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = q(t, T_EVENT_FIND);
    sqlite3_bind_text(st, 1, store, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    kp_err err = KP_OK;
    if (rc == SQLITE_ROW) {
        store_sqlite_copy_text(out->store, sizeof out->store, (const unsigned char *)store);
        store_sqlite_copy_text(out->id, sizeof out->id, (const unsigned char *)id);
        store_sqlite_copy_text(out->type, sizeof out->type, sqlite3_column_text(st, 0));
        out->account_id = sqlite3_column_int64(st, 1);
        if (sqlite3_column_bytes(st, 2) == 16)
            memcpy(out->request_hash, sqlite3_column_blob(st, 2), 16);
        out->at = sqlite3_column_int64(st, 3);
        const unsigned char *resp = sqlite3_column_text(st, 4);
        out->response = strdup(resp ? (const char *)resp : "{}");
        if (out->response == NULL) err = KP_ERR_NOMEM;
    } else {
        err = rc == SQLITE_DONE ? KP_ERR_NOT_FOUND : fail(t, rc);
    }
    sqlite3_reset(st);
    return err;
}

static kp_err t_event_insert(kp_store *s, const kp_event_row *row)
{
    sqlite_triggers *t = T(s);
    sqlite3_stmt *st = q(t, T_EVENT_INSERT);
    sqlite3_bind_text(st, 1, row->store, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, row->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, row->type, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, row->account_id);
    sqlite3_bind_blob(st, 5, row->request_hash, 16, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, row->at);
    sqlite3_bind_text(st, 7, row->response ? row->response : "{}", -1, SQLITE_STATIC);
    return run(t, st);
}

/* ---- grant keys */

static kp_err t_key_find(kp_store *s, const char *key, int64_t *op_id)
{
    sqlite_triggers *t = T(s);
    sqlite3_stmt *st = q(t, T_KEY_FIND);
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    kp_err err = KP_OK;
    if (rc == SQLITE_ROW)
        *op_id = sqlite3_column_int64(st, 0);
    else
        err = rc == SQLITE_DONE ? KP_ERR_NOT_FOUND : fail(t, rc);
    sqlite3_reset(st);
    return err;
}

static kp_err t_key_insert(kp_store *s, const char *key, int64_t op_id, kp_time at)
{
    sqlite_triggers *t = T(s);
    sqlite3_stmt *st = q(t, T_KEY_INSERT);
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, op_id);
    sqlite3_bind_int64(st, 3, at);
    return run(t, st);
}

/* ---- scheduler */

static kp_err t_state_get(kp_store *s, const char *job, kp_time *done_until, int64_t *cursor)
{
    sqlite_triggers *t = T(s);
    *done_until = 0;
    *cursor = 0;
    sqlite3_stmt *st = q(t, T_STATE_GET);
    sqlite3_bind_text(st, 1, job, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    kp_err err = KP_OK;
    if (rc == SQLITE_ROW) {
        *done_until = sqlite3_column_int64(st, 0);
        *cursor = sqlite3_column_int64(st, 1);
    } else {
        err = rc == SQLITE_DONE ? KP_ERR_NOT_FOUND : fail(t, rc);
    }
    sqlite3_reset(st);
    return err;
}

static kp_err t_state_set(kp_store *s, const char *job, kp_time done_until, int64_t cursor)
{
    sqlite_triggers *t = T(s);
    sqlite3_stmt *st = q(t, T_STATE_SET);
    sqlite3_bind_text(st, 1, job, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, done_until);
    sqlite3_bind_int64(st, 3, cursor);
    return run(t, st);
}

static kp_err t_run_insert(kp_store *s, const kp_job_run *r)
{
    sqlite_triggers *t = T(s);
    sqlite3_stmt *st = q(t, T_RUN_INSERT);
    sqlite3_bind_text(st, 1, r->job, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, r->due_at);
    sqlite3_bind_int64(st, 3, r->ran_at);
    sqlite3_bind_int64(st, 4, r->items);
    sqlite3_bind_text(st, 5, r->detail, -1, SQLITE_STATIC);
    return run(t, st);
}

static kp_err t_runs(kp_store *s, kp_job_run *out, size_t limit, size_t *n)
{
    sqlite_triggers *t = T(s);
    *n = 0;
    sqlite3_stmt *st = q(t, T_RUNS);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)limit);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < limit) {
        kp_job_run *r = &out[(*n)++];
        r->id = sqlite3_column_int64(st, 0);
        store_sqlite_copy_text(r->job, sizeof r->job, sqlite3_column_text(st, 1));
        r->due_at = sqlite3_column_int64(st, 2);
        r->ran_at = sqlite3_column_int64(st, 3);
        r->items = sqlite3_column_int64(st, 4);
        store_sqlite_copy_text(r->detail, sizeof r->detail, sqlite3_column_text(st, 5));
    }
    kp_err err = (rc == SQLITE_DONE || rc == SQLITE_ROW) ? KP_OK : fail(t, rc);
    sqlite3_reset(st);
    return err;
}

/* ---- birthdays */

static kp_err t_birthday_set(kp_store *s, int64_t account_id, const uint8_t ix[32])
{
    sqlite_triggers *t = T(s);
    sqlite3_stmt *st = q(t, T_BIRTHDAY_SET);
    sqlite3_bind_int64(st, 1, account_id);
    sqlite3_bind_blob(st, 2, ix, 32, SQLITE_STATIC);
    return run(t, st);
}

static kp_err t_birthday_accounts(kp_store *s, const uint8_t ix[32], int64_t after, int64_t *ids,
                                  size_t limit, size_t *n)
{
    sqlite_triggers *t = T(s);
    *n = 0;
    sqlite3_stmt *st = q(t, T_BIRTHDAY_ACCOUNTS);
    sqlite3_bind_blob(st, 1, ix, 32, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, after);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)limit);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < limit)
        ids[(*n)++] = sqlite3_column_int64(st, 0);
    kp_err err = (rc == SQLITE_DONE || rc == SQLITE_ROW) ? KP_OK : fail(t, rc);
    sqlite3_reset(st);
    return err;
}

/* One server a database: nothing to hold against. */
static kp_err t_hold(kp_store *s, const char *job, bool *held)
{
    (void)s;
    (void)job;
    *held = true;
    return KP_OK;
}

static void t_release(kp_store *s, const char *job)
{
    (void)s;
    (void)job;
}

const kp_triggers_ops store_sqlite_triggers_ops = {
    .account_rules_get = t_rules_get,
    .account_tier_set = t_tier_set,
    .account_discount_set = t_discount_set,
    .account_spend_between = t_spend_between,
    .review_page = t_review_page,
    .accounts_expiring = t_expiring,
    .accounts_created_on = t_created_on,
    .event_find = t_event_find,
    .event_insert = t_event_insert,
    .grant_key_find = t_key_find,
    .grant_key_insert = t_key_insert,
    .job_state_get = t_state_get,
    .job_state_set = t_state_set,
    .job_hold = t_hold,
    .job_release = t_release,
    .job_run_insert = t_run_insert,
    .job_runs = t_runs,
    .birthday_set = t_birthday_set,
    .birthday_accounts = t_birthday_accounts,
};
