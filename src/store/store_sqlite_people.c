/*
 * store_sqlite_people.c: kp_people_ops over SQLite (people.h). Customers are
 * stored sealed (the store never sees a plaintext) with their blind indexes;
 * card details, events and batches sit beside store_sqlite.c's `cards`
 * table; staff, sessions (token hashes only), the hash-chained audit log
 * (UPDATE and DELETE refused by triggers) and families.
 *
 * Statements are prepared once per connection, as in store_sqlite.c; the
 * schema is created when the `people_schema` meta key is missing, or brought
 * from version 1 (audit entries without MACs) to 2 and from 2 (no family
 * invitations) to 3, so opening an up-to-date database writes nothing.
 */
#include "store_sqlite_people.h"
#include "store_report.h"
#include "store_sqlite_int.h"
#include "store_invariants.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PEOPLE_SCHEMA_VERSION = 4 };

/* The family invitations (version 3). */
#define INVITATIONS_SQL                                                                            \
    "CREATE TABLE IF NOT EXISTS family_invitations (id INTEGER PRIMARY KEY,"                       \
    "  family_id INTEGER NOT NULL, inviter_id INTEGER NOT NULL,"                                   \
    "  phone_ix BLOB NOT NULL, phone BLOB, state INTEGER NOT NULL, invitee_id INTEGER,"            \
    "  created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, answered_at INTEGER);"            \
    "CREATE INDEX IF NOT EXISTS family_invitations_phone ON family_invitations(phone_ix, id);"     \
    "CREATE INDEX IF NOT EXISTS family_invitations_family ON family_invitations(family_id, id);"   \
    "CREATE INDEX IF NOT EXISTS family_invitations_inviter ON family_invitations(inviter_id);"

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS customers (id INTEGER PRIMARY KEY,"
    "  account_id INTEGER NOT NULL, state INTEGER NOT NULL DEFAULT 0,"
    "  name BLOB, phone BLOB, email BLOB, birthday BLOB, attributes BLOB,"
    "  phone_ix BLOB UNIQUE, email_ix BLOB UNIQUE,"
    "  receipt TEXT, consent_at INTEGER, consent_version TEXT, external_id TEXT UNIQUE,"
    "  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, erased_at INTEGER);"
    "CREATE INDEX IF NOT EXISTS customers_account ON customers(account_id);"
    "CREATE TABLE IF NOT EXISTS customer_name_ix (ix BLOB NOT NULL, customer_id INTEGER NOT NULL,"
    "  PRIMARY KEY (ix, customer_id)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS customer_name_ix_customer ON customer_name_ix(customer_id);"
    "CREATE TABLE IF NOT EXISTS card_info (number TEXT PRIMARY KEY, batch_id INTEGER,"
    "  customer_id INTEGER, may_burn INTEGER NOT NULL DEFAULT 1, reason TEXT,"
    "  replaced_by TEXT) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS card_info_customer ON card_info(customer_id)"
    "  WHERE customer_id IS NOT NULL;"
    "CREATE INDEX IF NOT EXISTS card_info_batch ON card_info(batch_id, number)"
    "  WHERE batch_id IS NOT NULL;"
    "CREATE TABLE IF NOT EXISTS card_batches (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    "  count INTEGER NOT NULL, created_at INTEGER NOT NULL, actor TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS card_events (id INTEGER PRIMARY KEY, card TEXT NOT NULL,"
    "  at INTEGER NOT NULL, from_state INTEGER NOT NULL, to_state INTEGER NOT NULL,"
    "  actor TEXT NOT NULL, reason TEXT NOT NULL, other_card TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS card_events_card ON card_events(card, id);"
    "CREATE TABLE IF NOT EXISTS staff (id INTEGER PRIMARY KEY, login TEXT NOT NULL UNIQUE,"
    "  role INTEGER NOT NULL, password_hash TEXT NOT NULL, active INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL, partner TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE IF NOT EXISTS sessions (token_hash BLOB PRIMARY KEY,"
    "  staff_id INTEGER NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL)"
    "  WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS sessions_staff ON sessions(staff_id);"
    "CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY, at INTEGER NOT NULL,"
    "  actor TEXT NOT NULL, role TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL,"
    "  detail TEXT NOT NULL, prev_hash BLOB NOT NULL, hash BLOB NOT NULL, mac BLOB);"
    "CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit"
    "  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;"
    "CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit"
    "  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;"
    "CREATE TABLE IF NOT EXISTS families (id INTEGER PRIMARY KEY,"
    "  owner_id INTEGER NOT NULL UNIQUE, account_id INTEGER NOT NULL, created_at INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS family_members (customer_id INTEGER PRIMARY KEY,"
    "  family_id INTEGER NOT NULL, may_spend INTEGER NOT NULL, own_account_id INTEGER NOT NULL,"
    "  joined_at INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS family_members_family ON family_members(family_id);"
    INVITATIONS_SQL
    "INSERT OR IGNORE INTO sys_accounts(id, code) VALUES (-6, 'program:transfer');"
    "INSERT OR IGNORE INTO meta(key, value) VALUES ('people_schema', '4');";

/* Version 1 had no MAC on audit entries. */
static const char migrate_1_2_sql[] =
    "ALTER TABLE audit ADD COLUMN mac BLOB;"
    "UPDATE meta SET value = '2' WHERE key = 'people_schema';";

/* Version 2 had no family invitations. */
static const char migrate_2_3_sql[] =
    INVITATIONS_SQL "UPDATE meta SET value = '3' WHERE key = 'people_schema';";

/* Version 3 had no partner staff (PostgreSQL's migration 15); the column
 * is added when missing (schema_update). */
static const char migrate_3_4_sql[] = "UPDATE meta SET value = '4' WHERE key = 'people_schema';";

/* True when `table` has a column `column`. */
static bool has_column(sqlite3 *db, const char *table, const char *column)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2", -1, &st,
                           NULL) != SQLITE_OK)
        return false;
    sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, column, -1, SQLITE_STATIC);
    bool has = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return has;
}

#define INVITATION_INSERT_COLS                                                                     \
    "family_id, inviter_id, phone_ix, phone, state, invitee_id, created_at, expires_at, "          \
    "answered_at"
#define INVITATION_COLS "id, " INVITATION_INSERT_COLS

#define CUSTOMER_COLS                                                                              \
    "id, account_id, state, name, phone, email, birthday, attributes, phone_ix, email_ix, "        \
    "receipt, consent_at, consent_version, external_id, created_at, updated_at, erased_at"

#define CARD_COLS                                                                                  \
    "c.number, c.account_id, c.state, c.registered, COALESCE(i.batch_id, 0), "                     \
    "COALESCE(i.customer_id, 0), COALESCE(i.may_burn, 1), COALESCE(i.reason, ''), "                \
    "COALESCE(i.replaced_by, '')"

#define STAFF_COLS "id, login, role, active, password_hash, created_at, partner"
#define AUDIT_COLS "seq, at, actor, role, action, target, detail, prev_hash, hash, mac"

enum {
    P_CUSTOMER_INSERT,
    P_CUSTOMER_UPDATE,
    P_CUSTOMER_GET,
    P_CUSTOMER_BY_PHONE,
    P_CUSTOMER_BY_EMAIL,
    P_CUSTOMER_BY_EXTERNAL,
    P_CUSTOMERS_OF_ACCOUNT,
    P_CUSTOMERS_ALL,
    P_NAME_IX_DELETE,
    P_NAME_IX_INSERT,
    P_BIRTHDAY_FORGET,
    P_CARD_INFO_GET,
    P_CARD_UPDATE,
    P_CARD_INFO_PUT,
    P_CARDS_OF_CUSTOMER,
    P_EVENT_INSERT,
    P_EVENTS,
    P_BATCH_INSERT,
    P_BATCH_GET,
    P_BATCH_BY_NAME,
    P_BATCH_CARDS,
    P_BALANCES,
    P_ACCOUNT_EMPTY,
    P_ACCOUNT_INSERT,
    P_STAFF_INSERT,
    P_STAFF_UPDATE,
    P_STAFF_GET,
    P_STAFF_BY_LOGIN,
    P_STAFF_LIST,
    P_SESSION_INSERT,
    P_SESSION_FIND,
    P_SESSION_DELETE,
    P_SESSIONS_DELETE_STAFF,
    P_AUDIT_HEAD,
    P_AUDIT_INSERT,
    P_AUDIT_LIST,
    P_AUDIT_LIST_DESC,
    P_FAMILY_INSERT,
    P_FAMILY_GET,
    P_FAMILY_BY_OWNER,
    P_MEMBER_PUT,
    P_MEMBER_GET,
    P_MEMBER_DELETE,
    P_MEMBERS,
    P_OPS_POINTS_SINCE,
    P_HISTORY_CARDS,
    P_OPS_OF_STORE,
    P_OPS_OF_PREFIX,
    P_OP_RESPONSE,
    P_INVITATION_INSERT,
    P_INVITATION_GET,
    P_INVITATION_UPDATE,
    P_INVITATIONS_OF_FAMILY,
    P_INVITATIONS_TO_PHONE,
    P_INVITATIONS_FORGET,
    P__COUNT
};

static const char *const queries[P__COUNT] = {
    [P_CUSTOMER_INSERT] =
        "INSERT INTO customers(account_id, state, name, phone, email, birthday, attributes, "
        "phone_ix, email_ix, receipt, consent_at, consent_version, external_id, "
        "created_at, updated_at, erased_at) "
        "VALUES (?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17)",
    [P_CUSTOMER_UPDATE] =
        "UPDATE customers SET account_id=?2, state=?3, name=?4, phone=?5, email=?6, birthday=?7, "
        "attributes=?8, phone_ix=?9, email_ix=?10, receipt=?11, consent_at=?12, "
        "consent_version=?13, external_id=?14, created_at=?15, updated_at=?16, erased_at=?17 "
        "WHERE id=?1",
    [P_CUSTOMER_GET] = "SELECT " CUSTOMER_COLS " FROM customers WHERE id = ?1",
    [P_CUSTOMER_BY_PHONE] = "SELECT id FROM customers WHERE phone_ix = ?1",
    [P_CUSTOMER_BY_EMAIL] = "SELECT id FROM customers WHERE email_ix = ?1",
    [P_CUSTOMER_BY_EXTERNAL] = "SELECT id FROM customers WHERE external_id = ?1",
    [P_CUSTOMERS_OF_ACCOUNT] =
        "SELECT id FROM customers WHERE account_id = ?1 ORDER BY id LIMIT ?2",
    [P_CUSTOMERS_ALL] = "SELECT " CUSTOMER_COLS " FROM customers ORDER BY id",
    [P_NAME_IX_DELETE] = "DELETE FROM customer_name_ix WHERE customer_id = ?1",
    [P_NAME_IX_INSERT] = "INSERT OR IGNORE INTO customer_name_ix(ix, customer_id) VALUES (?1, ?2)",
    [P_BIRTHDAY_FORGET] = "DELETE FROM account_birthdays WHERE account_id = ?1",
    [P_CARD_INFO_GET] = "SELECT " CARD_COLS " FROM cards c LEFT JOIN card_info i "
                        "ON i.number = c.number WHERE c.number = ?1",
    [P_CARD_UPDATE] = "UPDATE cards SET account_id = ?2, state = ?3, registered = ?4 "
                      "WHERE number = ?1",
    [P_CARD_INFO_PUT] = "INSERT OR REPLACE INTO card_info(number, batch_id, customer_id, may_burn, "
                        "reason, replaced_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [P_CARDS_OF_CUSTOMER] = "SELECT " CARD_COLS " FROM card_info i JOIN cards c "
                            "ON c.number = i.number WHERE i.customer_id = ?1 "
                            "ORDER BY c.created_at, c.number LIMIT ?2",
    [P_EVENT_INSERT] = "INSERT INTO card_events(card, at, from_state, to_state, actor, reason, "
                       "other_card) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [P_EVENTS] = "SELECT id, card, at, from_state, to_state, actor, reason, other_card "
                 "FROM card_events WHERE card = ?1 ORDER BY id LIMIT ?2",
    [P_BATCH_INSERT] = "INSERT INTO card_batches(name, count, created_at, actor) "
                       "VALUES (?1, ?2, ?3, ?4)",
    [P_BATCH_GET] = "SELECT id, name, count, created_at, actor FROM card_batches WHERE id = ?1",
    [P_BATCH_BY_NAME] = "SELECT id, name, count, created_at, actor FROM card_batches "
                        "WHERE name = ?1",
    [P_BATCH_CARDS] = "SELECT " CARD_COLS " FROM card_info i JOIN cards c ON c.number = i.number "
                      "WHERE i.batch_id = ?1 ORDER BY c.number",
    [P_BALANCES] = "SELECT " CARD_COLS ", a.balance, a.debt FROM cards c "
                   "JOIN accounts a ON a.id = c.account_id "
                   "LEFT JOIN card_info i ON i.number = c.number ORDER BY c.number",
    [P_ACCOUNT_EMPTY] = "SELECT (SELECT balance = 0 AND debt = 0 FROM accounts WHERE id = ?1) "
                        "AND NOT EXISTS (SELECT 1 FROM ops WHERE account_id = ?1) "
                        "AND NOT EXISTS (SELECT 1 FROM lots WHERE account_id = ?1)",
    [P_ACCOUNT_INSERT] = "INSERT INTO accounts(created_at) VALUES (?1)",
    [P_STAFF_INSERT] = "INSERT INTO staff(login, role, active, password_hash, created_at, "
                       "partner) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [P_STAFF_UPDATE] = "UPDATE staff SET role = ?2, active = ?3, password_hash = ?4, "
                       "partner = ?5 WHERE id = ?1",
    [P_STAFF_GET] = "SELECT " STAFF_COLS " FROM staff WHERE id = ?1",
    [P_STAFF_BY_LOGIN] = "SELECT " STAFF_COLS " FROM staff WHERE login = ?1",
    [P_STAFF_LIST] = "SELECT " STAFF_COLS " FROM staff ORDER BY id LIMIT ?1",
    [P_SESSION_INSERT] = "INSERT INTO sessions(token_hash, staff_id, created_at, expires_at) "
                         "VALUES (?1, ?2, ?3, ?4)",
    [P_SESSION_FIND] = "SELECT s.expires_at, t.id, t.login, t.role, t.active, t.password_hash, "
                       "t.created_at, t.partner FROM sessions s JOIN staff t ON t.id = s.staff_id "
                       "WHERE s.token_hash = ?1 AND s.expires_at > ?2 AND t.active = 1",
    [P_SESSION_DELETE] = "DELETE FROM sessions WHERE token_hash = ?1",
    [P_SESSIONS_DELETE_STAFF] = "DELETE FROM sessions WHERE staff_id = ?1",
    [P_AUDIT_HEAD] = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
    [P_AUDIT_INSERT] = "INSERT INTO audit(seq, at, actor, role, action, target, detail, "
                       "prev_hash, hash, mac) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    /* Both bounds of seq are a range of the rowid, so a page deep in the log
     * reads only its rows; the other criteria are NULL when not given. */
    [P_AUDIT_LIST] = "SELECT " AUDIT_COLS " FROM audit WHERE seq > ?1 AND seq < ?2 "
                     "AND (?3 IS NULL OR actor = ?3) "
                     "AND (?4 IS NULL OR substr(action, 1, length(?4)) = ?4) "
                     "AND (?5 IS NULL OR target = ?5) AND (?6 IS NULL OR at >= ?6) "
                     "AND (?7 IS NULL OR at < ?7) ORDER BY seq LIMIT ?8",
    [P_AUDIT_LIST_DESC] = "SELECT " AUDIT_COLS " FROM audit WHERE seq > ?1 AND seq < ?2 "
                          "AND (?3 IS NULL OR actor = ?3) "
                          "AND (?4 IS NULL OR substr(action, 1, length(?4)) = ?4) "
                          "AND (?5 IS NULL OR target = ?5) AND (?6 IS NULL OR at >= ?6) "
                          "AND (?7 IS NULL OR at < ?7) ORDER BY seq DESC LIMIT ?8",
    [P_FAMILY_INSERT] =
        "INSERT INTO families(owner_id, account_id, created_at) VALUES (?1, ?2, ?3)",
    [P_FAMILY_GET] = "SELECT id, owner_id, account_id, created_at FROM families WHERE id = ?1",
    [P_FAMILY_BY_OWNER] = "SELECT id, owner_id, account_id, created_at FROM families "
                          "WHERE owner_id = ?1",
    [P_MEMBER_PUT] = "INSERT OR REPLACE INTO family_members(customer_id, family_id, may_spend, "
                     "own_account_id, joined_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    [P_MEMBER_GET] = "SELECT customer_id, family_id, may_spend, own_account_id, joined_at "
                     "FROM family_members WHERE customer_id = ?1",
    [P_MEMBER_DELETE] = "DELETE FROM family_members WHERE customer_id = ?1",
    [P_MEMBERS] = "SELECT customer_id, family_id, may_spend, own_account_id, joined_at "
                  "FROM family_members WHERE family_id = ?1 ORDER BY joined_at, customer_id "
                  "LIMIT ?2",
    [P_OPS_POINTS_SINCE] = "SELECT COALESCE(SUM(points), 0) FROM ops WHERE account_id = ?1 "
                           "AND type = ?2 AND store = ?3 AND at >= ?4",
    [P_OP_RESPONSE] = "UPDATE ops SET response = ?3 WHERE store = ?1 AND receipt = ?2",
    [P_INVITATION_INSERT] = "INSERT INTO family_invitations(" INVITATION_INSERT_COLS ") "
                            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [P_INVITATION_GET] = "SELECT " INVITATION_COLS " FROM family_invitations WHERE id = ?1",
    [P_INVITATION_UPDATE] = "UPDATE family_invitations SET state = ?2, invitee_id = ?3, "
                            "answered_at = ?4 WHERE id = ?1",
    [P_INVITATIONS_OF_FAMILY] = "SELECT " INVITATION_COLS " FROM family_invitations "
                                "WHERE family_id = ?1 AND state = 0 AND expires_at > ?2 "
                                "ORDER BY id DESC LIMIT ?3",
    [P_INVITATIONS_TO_PHONE] = "SELECT " INVITATION_COLS " FROM family_invitations "
                               "WHERE phone_ix = ?1 AND state = 0 AND expires_at > ?2 "
                               "ORDER BY id DESC LIMIT ?3",
    [P_INVITATIONS_FORGET] = "DELETE FROM family_invitations WHERE inviter_id = ?1 "
                             "OR phone_ix = ?2",
    [P_HISTORY_CARDS] = "SELECT id, type, card, COALESCE(store, ''), COALESCE(receipt, ''), at, "
                        "points, amount, earned, burned FROM ops WHERE account_id = ?1 "
                        "AND (?2 = 0 OR id < ?2) ORDER BY id DESC LIMIT ?3",
    /* ops_of_stores: ranges of ops_receipt's (store, receipt) index. */
    [P_OPS_OF_STORE] = "SELECT id, type, card, store, receipt, at, points, amount, earned, "
                       "burned FROM ops WHERE store = ?1 AND receipt IS NOT NULL AND id < ?2 "
                       "AND at >= ?3 AND at < ?4 ORDER BY id DESC LIMIT ?5",
    [P_OPS_OF_PREFIX] = "SELECT id, type, card, store, receipt, at, points, amount, earned, "
                        "burned FROM ops WHERE store >= ?1 AND store < ?1 || char(1114111) "
                        "AND receipt IS NOT NULL AND id < ?2 AND at >= ?3 AND at < ?4 "
                        "ORDER BY id DESC LIMIT ?5",
};

struct sqlite_people {
    sqlite3 *db;
    char *last_error;
    size_t last_error_size;
    sqlite3_stmt *stmt[P__COUNT];
};

static kp_err fail(sqlite_people *p, int rc)
{
    return store_sqlite_fail(p->db, p->last_error, p->last_error_size, rc);
}

static sqlite3_stmt *q(sqlite_people *p, int id) { return store_sqlite_fresh(p->stmt[id]); }

static kp_err run(sqlite_people *p, sqlite3_stmt *st)
{
    return store_sqlite_run(p->db, p->last_error, p->last_error_size, st);
}

/* Steps a statement that returns at most one row: KP_OK with a row,
 * KP_ERR_NOT_FOUND without. The caller reads the row, then resets. */
static kp_err one(sqlite_people *p, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) return KP_OK;
    kp_err err = rc == SQLITE_DONE ? KP_ERR_NOT_FOUND : fail(p, rc);
    sqlite3_reset(st);
    return err;
}

static kp_err done(sqlite_people *p, sqlite3_stmt *st, int rc)
{
    kp_err err = (rc == SQLITE_DONE || rc == SQLITE_ROW) ? KP_OK : fail(p, rc);
    sqlite3_reset(st);
    return err;
}

static void text(char *out, size_t size, sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(out, size, "%s", t ? (const char *)t : "");
}

static void blob(uint8_t *out, size_t cap, size_t *len, sqlite3_stmt *st, int col)
{
    int n = sqlite3_column_bytes(st, col);
    const void *b = sqlite3_column_blob(st, col);
    *len = 0;
    if (b == NULL || n <= 0 || (size_t)n > cap) return;
    memcpy(out, b, (size_t)n);
    *len = (size_t)n;
}

static bool blob32(uint8_t out[32], sqlite3_stmt *st, int col)
{
    if (sqlite3_column_bytes(st, col) != 32) return false;
    memcpy(out, sqlite3_column_blob(st, col), 32);
    return true;
}

static void bind_blob(sqlite3_stmt *st, int i, const void *data, size_t len)
{
    if (len) sqlite3_bind_blob(st, i, data, (int)len, SQLITE_STATIC);
}

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *s)
{
    if (s[0]) sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

static sqlite_people *P(kp_store *s)
{
    return store_sqlite_people_of(s);
}

/* ------------------------------------------------------------- customers */

static void bind_customer(sqlite3_stmt *st, const kp_customer_row *r)
{
    if (r->id) sqlite3_bind_int64(st, 1, r->id);
    sqlite3_bind_int64(st, 2, r->account_id);
    sqlite3_bind_int(st, 3, (int)r->state);
    bind_blob(st, 4, r->name.data, r->name.len);
    bind_blob(st, 5, r->phone.data, r->phone.len);
    bind_blob(st, 6, r->email.data, r->email.len);
    bind_blob(st, 7, r->birthday.data, r->birthday.len);
    bind_blob(st, 8, r->attributes, r->attributes_len);
    if (r->has_phone_ix) sqlite3_bind_blob(st, 9, r->phone_ix, 32, SQLITE_STATIC);
    if (r->has_email_ix) sqlite3_bind_blob(st, 10, r->email_ix, 32, SQLITE_STATIC);
    bind_text_or_null(st, 11, r->receipt);
    if (r->consent_at) sqlite3_bind_int64(st, 12, r->consent_at);
    bind_text_or_null(st, 13, r->consent_version);
    bind_text_or_null(st, 14, r->external_id);
    sqlite3_bind_int64(st, 15, r->created_at);
    sqlite3_bind_int64(st, 16, r->updated_at);
    if (r->erased_at) sqlite3_bind_int64(st, 17, r->erased_at);
}

static void read_customer(sqlite3_stmt *st, kp_customer_row *r)
{
    memset(r, 0, sizeof *r);
    r->id = sqlite3_column_int64(st, 0);
    r->account_id = sqlite3_column_int64(st, 1);
    r->state = (kp_customer_state)sqlite3_column_int(st, 2);
    blob(r->name.data, sizeof r->name.data, &r->name.len, st, 3);
    blob(r->phone.data, sizeof r->phone.data, &r->phone.len, st, 4);
    blob(r->email.data, sizeof r->email.data, &r->email.len, st, 5);
    blob(r->birthday.data, sizeof r->birthday.data, &r->birthday.len, st, 6);
    blob(r->attributes, sizeof r->attributes, &r->attributes_len, st, 7);
    r->has_phone_ix = blob32(r->phone_ix, st, 8);
    r->has_email_ix = blob32(r->email_ix, st, 9);
    text(r->receipt, sizeof r->receipt, st, 10);
    r->consent_at = sqlite3_column_int64(st, 11);
    text(r->consent_version, sizeof r->consent_version, st, 12);
    text(r->external_id, sizeof r->external_id, st, 13);
    r->created_at = sqlite3_column_int64(st, 14);
    r->updated_at = sqlite3_column_int64(st, 15);
    r->erased_at = sqlite3_column_int64(st, 16);
}

static kp_err write_name_ix(sqlite_people *p, const kp_customer_row *r)
{
    sqlite3_stmt *st = q(p, P_NAME_IX_DELETE);
    sqlite3_bind_int64(st, 1, r->id);
    kp_err err = run(p, st);
    for (size_t i = 0; i < r->n_name_ix && err == KP_OK; i++) {
        st = q(p, P_NAME_IX_INSERT);
        sqlite3_bind_blob(st, 1, r->name_ix[i], 32, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, r->id);
        err = run(p, st);
    }
    return err;
}

static kp_err sp_customer_insert(kp_store *s, kp_customer_row *row)
{
    sqlite_people *p = P(s);
    int64_t id = row->id;
    row->id = 0;
    sqlite3_stmt *st = q(p, P_CUSTOMER_INSERT);
    bind_customer(st, row);
    row->id = id;
    kp_err err = run(p, st);
    if (err) return err;
    row->id = sqlite3_last_insert_rowid(p->db);
    return write_name_ix(p, row);
}

static kp_err sp_customer_update(kp_store *s, const kp_customer_row *row)
{
    sqlite_people *p = P(s);
    sqlite3_stmt *st = q(p, P_CUSTOMER_UPDATE);
    bind_customer(st, row);
    kp_err err = run(p, st);
    if (err == KP_OK && sqlite3_changes(p->db) != 1) return KP_ERR_NOT_FOUND;
    return err ? err : write_name_ix(p, row);
}

static kp_err sp_customer_get(kp_store *s, int64_t id, kp_customer_row *out)
{
    sqlite_people *p = P(s);
    sqlite3_stmt *st = q(p, P_CUSTOMER_GET);
    sqlite3_bind_int64(st, 1, id);
    kp_err err = one(p, st);
    if (err) return err;
    read_customer(st, out);
    sqlite3_reset(st);
    return KP_OK;
}

static kp_err find_id(sqlite_people *p, sqlite3_stmt *st, int64_t *id)
{
    kp_err err = one(p, st);
    if (err) return err;
    *id = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return KP_OK;
}

static kp_err sp_customer_by_index(kp_store *s, kp_contact contact, const uint8_t ix[32],
                                   int64_t *id)
{
    sqlite_people *p = P(s);
    sqlite3_stmt *st =
        q(p, contact == KP_CONTACT_EMAIL ? P_CUSTOMER_BY_EMAIL : P_CUSTOMER_BY_PHONE);
    sqlite3_bind_blob(st, 1, ix, 32, SQLITE_STATIC);
    return find_id(p, st, id);
}

static kp_err sp_customer_by_external(kp_store *s, const char *external_id, int64_t *id)
{
    sqlite_people *p = P(s);
    sqlite3_stmt *st = q(p, P_CUSTOMER_BY_EXTERNAL);
    sqlite3_bind_text(st, 1, external_id, -1, SQLITE_STATIC);
    return find_id(p, st, id);
}

static kp_err sp_customers_by_name(kp_store *s, const uint8_t (*ix)[32], size_t n_ix, int64_t *ids,
                                   size_t limit, size_t *n)
{
    sqlite_people *p = P(s);
    *n = 0;
    if (n_ix == 0 || n_ix > KP_NAME_WORDS_MAX) return KP_ERR_INVALID;
    char marks[2 * KP_NAME_WORDS_MAX + 1];
    size_t pos = 0;
    for (size_t i = 0; i < n_ix; i++) {
        if (i) marks[pos++] = ',';
        marks[pos++] = '?';
    }
    marks[pos] = '\0';
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT customer_id FROM customer_name_ix WHERE ix IN (%s) GROUP BY customer_id "
             "HAVING COUNT(*) = ? ORDER BY customer_id LIMIT ?",
             marks);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(p->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) return fail(p, rc);
    for (size_t i = 0; i < n_ix; i++) sqlite3_bind_blob(st, (int)i + 1, ix[i], 32, SQLITE_STATIC);
    sqlite3_bind_int64(st, (int)n_ix + 1, (sqlite3_int64)n_ix);
    sqlite3_bind_int64(st, (int)n_ix + 2, (sqlite3_int64)limit);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < limit)
        ids[(*n)++] = sqlite3_column_int64(st, 0);
    kp_err err = (rc == SQLITE_DONE || rc == SQLITE_ROW) ? KP_OK : fail(p, rc);
    sqlite3_finalize(st);
    return err;
}

static kp_err sp_customers_of_account(kp_store *s, int64_t account_id, int64_t *ids, size_t limit,
                                      size_t *n)
{
    sqlite_people *p = P(s);
    *n = 0;
    sqlite3_stmt *st = q(p, P_CUSTOMERS_OF_ACCOUNT);
    sqlite3_bind_int64(st, 1, account_id);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < limit)
        ids[(*n)++] = sqlite3_column_int64(st, 0);
    return done(p, st, rc);
}

static kp_err sp_customers_each(kp_store *s, bool (*fn)(void *ctx, const kp_customer_row *row),
                                void *ctx)
{
    sqlite_people *p = P(s);
    kp_customer_row *row = malloc(sizeof *row);
    if (row == NULL) return KP_ERR_NOMEM;
    sqlite3_stmt *st = q(p, P_CUSTOMERS_ALL);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        read_customer(st, row);
        if (!fn(ctx, row)) break;
    }
    free(row);
    return done(p, st, rc);
}

static kp_err sp_birthday_forget(kp_store *s, int64_t account_id)
{
    sqlite_people *p = P(s);
    sqlite3_stmt *st = q(p, P_BIRTHDAY_FORGET);
    sqlite3_bind_int64(st, 1, account_id);
    return run(p, st);
}

/* ----------------------------------------------------------------- cards */

static void read_card(sqlite3_stmt *st, kp_card_info *c)
{
    memset(c, 0, sizeof *c);
    text(c->number, sizeof c->number, st, 0);
    c->account_id = sqlite3_column_int64(st, 1);
    c->state = (kp_card_state)sqlite3_column_int(st, 2);
    c->registered = sqlite3_column_int(st, 3) != 0;
    c->batch_id = sqlite3_column_int64(st, 4);
    c->customer_id = sqlite3_column_int64(st, 5);
    c->may_burn = sqlite3_column_int(st, 6) != 0;
    text(c->reason, sizeof c->reason, st, 7);
    text(c->replaced_by, sizeof c->replaced_by, st, 8);
}

static kp_err sp_card_info_get(kp_store *s, const char *number, kp_card_info *out)
{
    sqlite_people *p = P(s);
    sqlite3_stmt *st = q(p, P_CARD_INFO_GET);
    sqlite3_bind_text(st, 1, number, -1, SQLITE_STATIC);
    kp_err err = one(p, st);
    if (err) return err;
    read_card(st, out);
    sqlite3_reset(st);
    return KP_OK;
}

static kp_err sp_card_info_put(kp_store *s, const kp_card_info *c, kp_time now)
{
    sqlite_people *p = P(s);
    (void)now;
    sqlite3_stmt *st = q(p, P_CARD_UPDATE);
    sqlite3_bind_text(st, 1, c->number, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, c->account_id);
    sqlite3_bind_int(st, 3, (int)c->state);
    sqlite3_bind_int(st, 4, c->registered ? 1 : 0);
    kp_err err = run(p, st);
    if (err) return err;
    if (sqlite3_changes(p->db) != 1) return KP_ERR_NOT_FOUND;
    st = q(p, P_CARD_INFO_PUT);
    sqlite3_bind_text(st, 1, c->number, -1, SQLITE_STATIC);
    if (c->batch_id) sqlite3_bind_int64(st, 2, c->batch_id);
    if (c->customer_id) sqlite3_bind_int64(st, 3, c->customer_id);
    sqlite3_bind_int(st, 4, c->may_burn ? 1 : 0);
    bind_text_or_null(st, 5, c->reason);
    bind_text_or_null(st, 6, c->replaced_by);
    return run(p, st);
}

static kp_err sp_cards_of_customer(kp_store *s, int64_t customer_id, kp_card_info *out,
                                   size_t limit, size_t *n)
{
    sqlite_people *p = P(s);
    *n = 0;
    sqlite3_stmt *st = q(p, P_CARDS_OF_CUSTOMER);
    sqlite3_bind_int64(st, 1, customer_id);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < limit) read_card(st, &out[(*n)++]);
    return done(p, st, rc);
}

static kp_err sp_card_event_insert(kp_store *s, kp_card_event *ev)
{
    sqlite_people *p = P(s);
    sqlite3_stmt *st = q(p, P_EVENT_INSERT);
    sqlite3_bind_text(st, 1, ev->card, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, ev->at);
    sqlite3_bind_int(st, 3, (int)ev->from_state);
    sqlite3_bind_int(st, 4, (int)ev->to_state);
    sqlite3_bind_text(st, 5, ev->actor, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, ev->reason, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, ev->other_card, -1, SQLITE_STATIC);
    kp_err err = run(p, st);
    if (err == KP_OK) ev->id = sqlite3_last_insert_rowid(p->db);
    return err;
}

static kp_err sp_card_events(kp_store *s, const char *number, kp_card_event *out, size_t limit,
                             size_t *n)
{
    sqlite_people *p = P(s);
    *n = 0;
    sqlite3_stmt *st = q(p, P_EVENTS);
    sqlite3_bind_text(st, 1, number, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < limit) {
        kp_card_event *ev = &out[(*n)++];
        ev->id = sqlite3_column_int64(st, 0);
        text(ev->card, sizeof ev->card, st, 1);
        ev->at = sqlite3_column_int64(st, 2);
        ev->from_state = (kp_card_state)sqlite3_column_int(st, 3);
        ev->to_state = (kp_card_state)sqlite3_column_int(st, 4);
        text(ev->actor, sizeof ev->actor, st, 5);
        text(ev->reason, sizeof ev->reason, st, 6);
        text(ev->other_card, sizeof ev->other_card, st, 7);
    }
    return done(p, st, rc);
}

static kp_err sp_batch_insert(kp_store *s, kp_card_batch *b)
{
    sqlite_people *p = P(s);
    sqlite3_stmt *st = q(p, P_BATCH_INSERT);
    sqlite3_bind_text(st, 1, b->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, b->count);
    sqlite3_bind_int64(st, 3, b->created_at);
    sqlite3_bind_text(st, 4, b->actor, -1, SQLITE_STATIC);
    kp_err err = run(p, st);
    if (err == KP_OK) b->id = sqlite3_last_insert_rowid(p->db);
    return err;
}

static kp_err sp_batch_get(kp_store *s, int64_t id, const char *name, kp_card_batch *out)
{
    sqlite_people *p = P(s);
    sqlite3_stmt *st = q(p, id ? P_BATCH_GET : P_BATCH_BY_NAME);
    if (id)
        sqlite3_bind_int64(st, 1, id);
    else
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    kp_err err = one(p, st);
    if (err) return err;
    out->id = sqlite3_column_int64(st, 0);
    text(out->name, sizeof out->name, st, 1);
    out->count = sqlite3_column_int64(st, 2);
    out->created_at = sqlite3_column_int64(st, 3);
    text(out->actor, sizeof out->actor, st, 4);
    sqlite3_reset(st);
    return KP_OK;
}

static kp_err sp_batch_cards_each(kp_store *s, int64_t batch_id,
                                  bool (*fn)(void *ctx, const kp_card_info *card), void *ctx)
{
    sqlite_people *p = P(s);
    sqlite3_stmt *st = q(p, P_BATCH_CARDS);
    sqlite3_bind_int64(st, 1, batch_id);
    kp_card_info c;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        read_card(st, &c);
        if (!fn(ctx, &c)) break;
    }
    return done(p, st, rc);
}

static kp_err sp_balances_each(kp_store *s, bool (*fn)(void *ctx, const kp_balance_row *row),
                               void *ctx)
{
    sqlite_people *p = P(s);
    sqlite3_stmt *st = q(p, P_BALANCES);
    kp_card_info c;
    kp_balance_row r;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        read_card(st, &c);
        memset(&r, 0, sizeof r);
        memcpy(r.card, c.number, sizeof r.card);
        r.state = c.state;
        r.registered = c.registered;
        r.account_id = c.account_id;
        r.customer_id = c.customer_id;
        r.balance = sqlite3_column_int64(st, 9);
        r.debt = sqlite3_column_int64(st, 10);
        if (!fn(ctx, &r)) break;
    }
    return done(p, st, rc);
}

static kp_err sp_account_is_empty(kp_store *s, int64_t account_id, bool *empty)
{
    sqlite_people *p = P(s);
    sqlite3_stmt *st = q(p, P_ACCOUNT_EMPTY);
    sqlite3_bind_int64(st, 1, account_id);
    kp_err err = one(p, st);
    if (err) return err;
    *empty = sqlite3_column_int(st, 0) != 0;
    sqlite3_reset(st);
    return KP_OK;
}

static kp_err sp_account_create(kp_store *s, kp_time now, int64_t *id)
{
    sqlite_people *p = P(s);
    sqlite3_stmt *st = q(p, P_ACCOUNT_INSERT);
    sqlite3_bind_int64(st, 1, now);
    kp_err err = run(p, st);
    if (err == KP_OK) *id = sqlite3_last_insert_rowid(p->db);
    return err;
}

/* ----------------------------------------------------------------- staff */

static void read_staff(sqlite3_stmt *st, int col, kp_staff *out)
{
    memset(out, 0, sizeof *out);
    out->id = sqlite3_column_int64(st, col);
    text(out->login, sizeof out->login, st, col + 1);
    out->role = (kp_role)sqlite3_column_int(st, col + 2);
    out->active = sqlite3_column_int(st, col + 3) != 0;
    text(out->password_hash, sizeof out->password_hash, st, col + 4);
    out->created_at = sqlite3_column_int64(st, col + 5);
    text(out->partner, sizeof out->partner, st, col + 6);
}

static kp_err sp_staff_insert(kp_store *s, kp_staff *staff)
{
    sqlite_people *p = P(s);
    sqlite3_stmt *st = q(p, P_STAFF_INSERT);
    sqlite3_bind_text(st, 1, staff->login, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, (int)staff->role);
    sqlite3_bind_int(st, 3, staff->active ? 1 : 0);
    sqlite3_bind_text(st, 4, staff->password_hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, staff->created_at);
    sqlite3_bind_text(st, 6, staff->partner, -1, SQLITE_STATIC);
    kp_err err = run(p, st);
    if (err == KP_OK) staff->id = sqlite3_last_insert_rowid(p->db);
    return err;
}

static kp_err sp_staff_update(kp_store *s, const kp_staff *staff)
{
    sqlite_people *p = P(s);
    sqlite3_stmt *st = q(p, P_STAFF_UPDATE);
    sqlite3_bind_int64(st, 1, staff->id);
    sqlite3_bind_int(st, 2, (int)staff->role);
    sqlite3_bind_int(st, 3, staff->active ? 1 : 0);
    sqlite3_bind_text(st, 4, staff->password_hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, staff->partner, -1, SQLITE_STATIC);
    kp_err err = run(p, st);
    if (err == KP_OK && sqlite3_changes(p->db) != 1) return KP_ERR_NOT_FOUND;
    return err;
}

static kp_err sp_staff_get(kp_store *s, int64_t id, const char *login, kp_staff *out)
{
    sqlite_people *p = P(s);
    sqlite3_stmt *st = q(p, id ? P_STAFF_GET : P_STAFF_BY_LOGIN);
    if (id)
        sqlite3_bind_int64(st, 1, id);
    else
        sqlite3_bind_text(st, 1, login, -1, SQLITE_STATIC);
    kp_err err = one(p, st);
    if (err) return err;
    read_staff(st, 0, out);
    sqlite3_reset(st);
    return KP_OK;
}

static kp_err sp_staff_list(kp_store *s, kp_staff *out, size_t limit, size_t *n)
{
    sqlite_people *p = P(s);
    *n = 0;
    sqlite3_stmt *st = q(p, P_STAFF_LIST);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)limit);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < limit) read_staff(st, 0, &out[(*n)++]);
    return done(p, st, rc);
}

static kp_err sp_session_insert(kp_store *s, const uint8_t token_hash[32], int64_t staff_id,
                                kp_time now, kp_time expires_at)
{
    sqlite_people *p = P(s);
    sqlite3_stmt *st = q(p, P_SESSION_INSERT);
    sqlite3_bind_blob(st, 1, token_hash, 32, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, staff_id);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int64(st, 4, expires_at);
    return run(p, st);
}

static kp_err sp_session_find(kp_store *s, const uint8_t token_hash[32], kp_time now, kp_staff *out,
                              kp_time *expires_at)
{
    sqlite_people *p = P(s);
    sqlite3_stmt *st = q(p, P_SESSION_FIND);
    sqlite3_bind_blob(st, 1, token_hash, 32, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now);
    kp_err err = one(p, st);
    if (err) return err;
    *expires_at = sqlite3_column_int64(st, 0);
    read_staff(st, 1, out);
    sqlite3_reset(st);
    return KP_OK;
}

static kp_err sp_session_delete(kp_store *s, const uint8_t token_hash[32])
{
    sqlite_people *p = P(s);
    sqlite3_stmt *st = q(p, P_SESSION_DELETE);
    sqlite3_bind_blob(st, 1, token_hash, 32, SQLITE_STATIC);
    return run(p, st);
}

static kp_err sp_sessions_delete_staff(kp_store *s, int64_t staff_id)
{
    sqlite_people *p = P(s);
    sqlite3_stmt *st = q(p, P_SESSIONS_DELETE_STAFF);
    sqlite3_bind_int64(st, 1, staff_id);
    return run(p, st);
}

/* ----------------------------------------------------------------- audit */

static void read_audit(sqlite3_stmt *st, kp_audit_entry *a)
{
    memset(a, 0, sizeof *a);
    a->seq = sqlite3_column_int64(st, 0);
    a->at = sqlite3_column_int64(st, 1);
    text(a->actor, sizeof a->actor, st, 2);
    text(a->role, sizeof a->role, st, 3);
    text(a->action, sizeof a->action, st, 4);
    text(a->target, sizeof a->target, st, 5);
    text(a->detail, sizeof a->detail, st, 6);
    blob32(a->prev_hash, st, 7);
    blob32(a->hash, st, 8);
    a->has_mac = sqlite3_column_type(st, 9) == SQLITE_BLOB && sqlite3_column_bytes(st, 9) == 32;
    if (a->has_mac) blob32(a->mac, st, 9);
}

static kp_err sp_audit_append(kp_store *s, kp_audit_entry *entry)
{
    sqlite_people *p = P(s);
    sqlite3_stmt *st = q(p, P_AUDIT_HEAD);
    int64_t seq = 0;
    memset(entry->prev_hash, 0, 32);
    kp_err err = one(p, st);
    if (err == KP_OK) {
        seq = sqlite3_column_int64(st, 0);
        blob32(entry->prev_hash, st, 1);
        sqlite3_reset(st);
    } else if (err != KP_ERR_NOT_FOUND) {
        return err;
    }
    entry->seq = seq + 1;
    kp_audit_hash(entry->prev_hash, entry, entry->hash);
    entry->has_mac = entry->mac_key != NULL;
    if (entry->has_mac) kp_audit_mac(entry->mac_key, entry->hash, entry->mac);
    st = q(p, P_AUDIT_INSERT);
    sqlite3_bind_int64(st, 1, entry->seq);
    sqlite3_bind_int64(st, 2, entry->at);
    sqlite3_bind_text(st, 3, entry->actor, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, entry->role, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, entry->action, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, entry->target, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, entry->detail, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 8, entry->prev_hash, 32, SQLITE_STATIC);
    sqlite3_bind_blob(st, 9, entry->hash, 32, SQLITE_STATIC);
    if (entry->has_mac) sqlite3_bind_blob(st, 10, entry->mac, 32, SQLITE_STATIC);
    else sqlite3_bind_null(st, 10);
    return run(p, st);
}

static void bind_filter_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s && s[0]) sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

static kp_err sp_audit_list(kp_store *s, const kp_audit_filter *filter, kp_audit_entry *out,
                            size_t limit, size_t *n)
{
    sqlite_people *p = P(s);
    *n = 0;
    kp_audit_filter all = {0};
    const kp_audit_filter *f = filter ? filter : &all;
    sqlite3_stmt *st = q(p, f->newest_first ? P_AUDIT_LIST_DESC : P_AUDIT_LIST);
    sqlite3_bind_int64(st, 1, f->after_seq);
    sqlite3_bind_int64(st, 2, f->before_seq > 0 ? f->before_seq : INT64_MAX);
    bind_filter_text(st, 3, f->actor);
    bind_filter_text(st, 4, f->action);
    bind_filter_text(st, 5, f->target);
    if (f->from) sqlite3_bind_int64(st, 6, f->from);
    if (f->to) sqlite3_bind_int64(st, 7, f->to);
    sqlite3_bind_int64(st, 8, (sqlite3_int64)limit);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < limit) read_audit(st, &out[(*n)++]);
    return done(p, st, rc);
}

/* --------------------------------------------------------------- reports */

/* Binds the named parameter ("$1") where the statement has it. */
static void bind_named_int(sqlite3_stmt *st, const char *name, int64_t v)
{
    int i = sqlite3_bind_parameter_index(st, name);
    if (i > 0) sqlite3_bind_int64(st, i, v);
}

static void bind_named_text(sqlite3_stmt *st, const char *name, const char *v)
{
    int i = sqlite3_bind_parameter_index(st, name);
    if (i > 0) sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
}

/* Outside a transaction, one read transaction for a report's queries
 * (*own then true): a commit between two of them would otherwise show in
 * one figure and not in another. */
static kp_err snapshot_begin(sqlite_people *p, bool *own)
{
    *own = sqlite3_get_autocommit(p->db) != 0;
    int rc = *own ? sqlite3_exec(p->db, "BEGIN", NULL, NULL, NULL) : SQLITE_OK;
    if (rc != SQLITE_OK) *own = false;
    return rc == SQLITE_OK ? KP_OK : fail(p, rc);
}

static void snapshot_end(sqlite_people *p, bool own, kp_err err)
{
    if (own) sqlite3_exec(p->db, err == KP_OK ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
}

/* Runs one of store_report.h's queries and folds each row into d. */
static kp_err report_part(sqlite_people *p, const kp_dashboard_query *dq,
                          store_dashboard_part part, kp_dashboard *d)
{
    const store_dashboard_sql *q = &store_dashboard_queries[part];
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(p->db, q->sql, -1, &st, NULL);
    if (rc != SQLITE_OK) return fail(p, rc);
    int64_t ints[3];
    store_dashboard_params(dq, part, ints);
    char name[16];
    for (int i = 0; i < q->n_ints; i++) {
        snprintf(name, sizeof name, "$%d", i + 1);
        bind_named_int(st, name, ints[i]);
    }
    if (q->has_store) {
        snprintf(name, sizeof name, "$%d", q->n_ints + 1);
        bind_named_text(st, name, store_dashboard_store(dq));
    }
    kp_err err = KP_OK;
    while (err == KP_OK && (rc = sqlite3_step(st)) == SQLITE_ROW)
        err = store_dashboard_fold(d, part, sqlite3_column_int64(st, 0),
                                   sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2),
                                   p->last_error, p->last_error_size);
    if (err == KP_OK && rc != SQLITE_DONE) err = fail(p, rc);
    sqlite3_finalize(st);
    return err;
}

static kp_err sp_dashboard(kp_store *s, const kp_dashboard_query *dq, kp_dashboard *out)
{
    sqlite_people *p = P(s);
    memset(out, 0, sizeof *out);
    bool own;
    kp_err err = snapshot_begin(p, &own);
    for (int part = 0; err == KP_OK && part < STORE_DASHBOARD_PARTS; part++)
        err = report_part(p, dq, (store_dashboard_part)part, out);
    snapshot_end(p, own, err);
    if (err) memset(out, 0, sizeof *out);
    return err;
}

/* Parameter $(i + 1) of a report's query: `text` when not NULL, else v. */
static void bind_param(sqlite3_stmt *st, int i, const char *text, int64_t v)
{
    char name[16];
    snprintf(name, sizeof name, "$%d", i + 1);
    if (text)
        bind_named_text(st, name, text);
    else
        bind_named_int(st, name, v);
}

/* Binds $1, $2, ... of a report's query, one a letter of `params`, each
 * value from param(q, letter): text when it returns one, else *v. */
static void bind_letters(sqlite3_stmt *st, const char *params,
                         const char *(*param)(const void *q, char p, int64_t *v), const void *q)
{
    char name[16];
    for (int i = 0; params[i]; i++) {
        int64_t v;
        const char *text = param(q, params[i], &v);
        snprintf(name, sizeof name, "$%d", i + 1);
        if (text)
            bind_named_text(st, name, text);
        else
            bind_named_int(st, name, v);
    }
}

static const char *points_param(const void *q, char p, int64_t *v)
{
    return store_points_param(q, p, v);
}

static const char *customers_param(const void *q, char p, int64_t *v)
{
    return store_customers_param(q, p, v);
}

/* One query of the points report (store_report.h), folded into r. */
static kp_err points_part(sqlite_people *p, const kp_report_query *rq, store_points_part part,
                          kp_report_points *r)
{
    const store_points_sql *q = &store_points_queries[part];
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(p->db, q->sql, -1, &st, NULL);
    if (rc != SQLITE_OK) return fail(p, rc);
    bind_letters(st, q->params, points_param, rq);
    kp_err err = KP_OK;
    while (err == KP_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *text = sqlite3_column_text(st, 0);
        err = store_points_fold(r, part, text ? (const char *)text : "",
                                sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2),
                                sqlite3_column_int64(st, 3), p->last_error, p->last_error_size);
    }
    if (err == KP_OK && rc != SQLITE_DONE) err = fail(p, rc);
    sqlite3_finalize(st);
    return err;
}

static kp_err sr_points(kp_store *s, const kp_report_query *q, kp_report_points *out)
{
    sqlite_people *p = P(s);
    memset(out, 0, sizeof *out);
    bool own;
    kp_err err = snapshot_begin(p, &own);
    for (int part = 0; err == KP_OK && part < STORE_POINTS_PARTS; part++)
        err = points_part(p, q, (store_points_part)part, out);
    snapshot_end(p, own, err);
    if (err) memset(out, 0, sizeof *out);
    return err;
}

/* One query of the members report (store_report.h): its one row folded
 * into r. */
static kp_err members_part(sqlite_people *p, const kp_report_members_query *mq,
                           store_members_part part, kp_report_members *r)
{
    const store_points_sql *q = &store_members_queries[part];
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(p->db, q->sql, -1, &st, NULL);
    if (rc != SQLITE_OK) return fail(p, rc);
    for (int i = 0; q->params[i]; i++) {
        int64_t v;
        const char *text = store_members_param(mq, q->params[i], &v);
        bind_param(st, i, text, v);
    }
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        int64_t v[STORE_MEMBERS_COLS] = {0};
        int n = sqlite3_column_count(st);
        for (int i = 0; i < n && i < STORE_MEMBERS_COLS; i++) v[i] = sqlite3_column_int64(st, i);
        store_members_fold(r, part, v);
        rc = sqlite3_step(st);
    }
    kp_err err = rc == SQLITE_DONE ? KP_OK : fail(p, rc);
    sqlite3_finalize(st);
    return err;
}


/* One query of the customers report (store_report.h): each row folded
 * into r, or, for the members, handed to fn as it is read. */
static kp_err customers_part(sqlite_people *p, const kp_customers_query *cq,
                             store_customers_part part, kp_report_customers *r,
                             kp_report_member_fn fn, void *ctx)
{
    const store_customers_sql *q = &store_customers_queries[part];
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(p->db, q->sql, -1, &st, NULL);
    if (rc != SQLITE_OK) return fail(p, rc);
    bind_letters(st, q->params, customers_param, cq);
    kp_err err = KP_OK;
    while (err == KP_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *t1 = sqlite3_column_text(st, 0);
        const unsigned char *t2 = sqlite3_column_text(st, 1);
        int64_t v[6];
        for (int i = 0; i < 6; i++) v[i] = sqlite3_column_int64(st, 2 + i);
        if (part == STORE_CUSTOMERS_MEMBERS)
            err = store_customers_member(t1 ? (const char *)t1 : "", v, fn, ctx);
        else
            err = store_customers_fold(cq, r, part, t1 ? (const char *)t1 : "",
                                       t2 ? (const char *)t2 : "", v, p->last_error,
                                       p->last_error_size);
    }
    if (err == KP_OK && rc != SQLITE_DONE) err = fail(p, rc);
    sqlite3_finalize(st);
    return err;
}

/* The connection's temp_store (0 default, 1 file, 2 memory), -1 when it
 * cannot be read. */
static int temp_store_get(sqlite3 *db)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "PRAGMA temp_store", -1, &st, NULL) != SQLITE_OK) return -1;
    int v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);
    return v;
}

static void temp_store_set(sqlite3 *db, int v)
{
    char sql[32];
    snprintf(sql, sizeof sql, "PRAGMA temp_store=%d", v);
    sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* Outside a transaction the report's sorts and groupings go to temporary
 * files for its run (temp_store=FILE: past the page cache they spill to
 * disk) instead of the connection's memory, so a history of tens of
 * millions of receipts needs no more memory than a small one. */
static kp_err sr_members(kp_store *s, const kp_report_members_query *q, kp_report_members *out)
{
    sqlite_people *p = P(s);
    memset(out, 0, sizeof *out);
    int temp = sqlite3_get_autocommit(p->db) ? temp_store_get(p->db) : -1;
    if (temp >= 0) temp_store_set(p->db, 1);
    bool own;
    kp_err err = snapshot_begin(p, &own);
    for (int part = 0; err == KP_OK && part < STORE_MEMBERS_PARTS; part++)
        err = members_part(p, q, (store_members_part)part, out);
    snapshot_end(p, own, err);
    if (temp >= 0) temp_store_set(p->db, temp);
    if (err) memset(out, 0, sizeof *out);
    return err;
}

static kp_err sr_customers(kp_store *s, const kp_customers_query *q, kp_report_customers *out,
                           kp_report_member_fn fn, void *ctx)
{
    sqlite_people *p = P(s);
    memset(out, 0, sizeof *out);
    /* The connection keeps temporary tables in memory (store_sqlite.c);
     * this report's (its grouped members, the receipts it joins) go to
     * temporary files instead, so its memory does not grow with the
     * members. Only outside a transaction: the pragma cannot change
     * inside one. */
    bool files = sqlite3_get_autocommit(p->db) != 0 &&
                 sqlite3_exec(p->db, "PRAGMA temp_store=FILE", NULL, NULL, NULL) == SQLITE_OK;
    bool own;
    kp_err err = snapshot_begin(p, &own);
    for (int part = 0; err == KP_OK && part < STORE_CUSTOMERS_PARTS; part++)
        err = customers_part(p, q, (store_customers_part)part, out, fn, ctx);
    snapshot_end(p, own, err);
    if (files) sqlite3_exec(p->db, "PRAGMA temp_store=MEMORY", NULL, NULL, NULL);
    if (err) memset(out, 0, sizeof *out);
    return err;
}

const kp_report_ops store_sqlite_report_ops = {
    .points = sr_points,
    .members = sr_members,
    .customers = sr_customers,
};

kp_err store_sqlite_people_verify(sqlite_people *p, void (*report)(void *ctx, const char *line),
                                  void *ctx, int64_t *problems)
{
    sqlite3_stmt *st;
    int rc =
        sqlite3_prepare_v2(p->db, "SELECT " AUDIT_COLS " FROM audit ORDER BY seq", -1, &st, NULL);
    if (rc != SQLITE_OK) return fail(p, rc);
    store_audit_walk w = {0};
    kp_audit_entry a;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        read_audit(st, &a);
        store_audit_step(&w, &a, report, ctx, problems);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? KP_OK : fail(p, rc);
}

/* -------------------------------------------------------------- families */

static kp_err sp_family_insert(kp_store *s, kp_family *f)
{
    sqlite_people *p = P(s);
    sqlite3_stmt *st = q(p, P_FAMILY_INSERT);
    sqlite3_bind_int64(st, 1, f->owner_id);
    sqlite3_bind_int64(st, 2, f->account_id);
    sqlite3_bind_int64(st, 3, f->created_at);
    kp_err err = run(p, st);
    if (err == KP_OK) f->id = sqlite3_last_insert_rowid(p->db);
    return err;
}

static kp_err sp_family_get(kp_store *s, int64_t id, int64_t owner_id, kp_family *out)
{
    sqlite_people *p = P(s);
    sqlite3_stmt *st = q(p, id ? P_FAMILY_GET : P_FAMILY_BY_OWNER);
    sqlite3_bind_int64(st, 1, id ? id : owner_id);
    kp_err err = one(p, st);
    if (err) return err;
    out->id = sqlite3_column_int64(st, 0);
    out->owner_id = sqlite3_column_int64(st, 1);
    out->account_id = sqlite3_column_int64(st, 2);
    out->created_at = sqlite3_column_int64(st, 3);
    sqlite3_reset(st);
    return KP_OK;
}

static void read_member(sqlite3_stmt *st, kp_family_member *m)
{
    m->customer_id = sqlite3_column_int64(st, 0);
    m->family_id = sqlite3_column_int64(st, 1);
    m->may_spend = sqlite3_column_int(st, 2) != 0;
    m->own_account_id = sqlite3_column_int64(st, 3);
    m->joined_at = sqlite3_column_int64(st, 4);
}

static kp_err sp_member_put(kp_store *s, const kp_family_member *m)
{
    sqlite_people *p = P(s);
    sqlite3_stmt *st = q(p, P_MEMBER_PUT);
    sqlite3_bind_int64(st, 1, m->customer_id);
    sqlite3_bind_int64(st, 2, m->family_id);
    sqlite3_bind_int(st, 3, m->may_spend ? 1 : 0);
    sqlite3_bind_int64(st, 4, m->own_account_id);
    sqlite3_bind_int64(st, 5, m->joined_at);
    return run(p, st);
}

static kp_err sp_member_get(kp_store *s, int64_t customer_id, kp_family_member *out)
{
    sqlite_people *p = P(s);
    sqlite3_stmt *st = q(p, P_MEMBER_GET);
    sqlite3_bind_int64(st, 1, customer_id);
    kp_err err = one(p, st);
    if (err) return err;
    read_member(st, out);
    sqlite3_reset(st);
    return KP_OK;
}

static kp_err sp_member_delete(kp_store *s, int64_t customer_id)
{
    sqlite_people *p = P(s);
    sqlite3_stmt *st = q(p, P_MEMBER_DELETE);
    sqlite3_bind_int64(st, 1, customer_id);
    return run(p, st);
}

static kp_err sp_members_of_family(kp_store *s, int64_t family_id, kp_family_member *out,
                                   size_t limit, size_t *n)
{
    sqlite_people *p = P(s);
    *n = 0;
    sqlite3_stmt *st = q(p, P_MEMBERS);
    sqlite3_bind_int64(st, 1, family_id);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < limit) read_member(st, &out[(*n)++]);
    return done(p, st, rc);
}

/* --------------------------------------------------------- invitations */

static void read_invitation(sqlite3_stmt *st, kp_family_invitation *inv)
{
    memset(inv, 0, sizeof *inv);
    inv->id = sqlite3_column_int64(st, 0);
    inv->family_id = sqlite3_column_int64(st, 1);
    inv->inviter_id = sqlite3_column_int64(st, 2);
    blob32(inv->phone_ix, st, 3);
    blob(inv->phone.data, sizeof inv->phone.data, &inv->phone.len, st, 4);
    inv->state = (kp_invitation_state)sqlite3_column_int(st, 5);
    inv->invitee_id = sqlite3_column_int64(st, 6);
    inv->created_at = sqlite3_column_int64(st, 7);
    inv->expires_at = sqlite3_column_int64(st, 8);
    inv->answered_at = sqlite3_column_int64(st, 9);
}

static kp_err sp_invitation_insert(kp_store *s, kp_family_invitation *inv)
{
    sqlite_people *p = P(s);
    sqlite3_stmt *st = q(p, P_INVITATION_INSERT);
    sqlite3_bind_int64(st, 1, inv->family_id);
    sqlite3_bind_int64(st, 2, inv->inviter_id);
    sqlite3_bind_blob(st, 3, inv->phone_ix, 32, SQLITE_STATIC);
    bind_blob(st, 4, inv->phone.data, inv->phone.len);
    sqlite3_bind_int(st, 5, (int)inv->state);
    if (inv->invitee_id) sqlite3_bind_int64(st, 6, inv->invitee_id);
    sqlite3_bind_int64(st, 7, inv->created_at);
    sqlite3_bind_int64(st, 8, inv->expires_at);
    if (inv->answered_at) sqlite3_bind_int64(st, 9, inv->answered_at);
    kp_err err = run(p, st);
    if (err == KP_OK) inv->id = sqlite3_last_insert_rowid(p->db);
    return err;
}

static kp_err sp_invitation_get(kp_store *s, int64_t id, kp_family_invitation *out)
{
    sqlite_people *p = P(s);
    sqlite3_stmt *st = q(p, P_INVITATION_GET);
    sqlite3_bind_int64(st, 1, id);
    kp_err err = one(p, st);
    if (err) return err;
    read_invitation(st, out);
    sqlite3_reset(st);
    return KP_OK;
}

static kp_err sp_invitation_update(kp_store *s, const kp_family_invitation *inv)
{
    sqlite_people *p = P(s);
    sqlite3_stmt *st = q(p, P_INVITATION_UPDATE);
    sqlite3_bind_int64(st, 1, inv->id);
    sqlite3_bind_int(st, 2, (int)inv->state);
    if (inv->invitee_id) sqlite3_bind_int64(st, 3, inv->invitee_id);
    if (inv->answered_at) sqlite3_bind_int64(st, 4, inv->answered_at);
    kp_err err = run(p, st);
    if (err == KP_OK && sqlite3_changes(p->db) == 0) err = KP_ERR_NOT_FOUND;
    return err;
}

static kp_err sp_invitations_pending(kp_store *s, int64_t family_id, const uint8_t *phone_ix,
                                     kp_time now, kp_family_invitation *out, size_t limit,
                                     size_t *n)
{
    sqlite_people *p = P(s);
    *n = 0;
    sqlite3_stmt *st = q(p, phone_ix ? P_INVITATIONS_TO_PHONE : P_INVITATIONS_OF_FAMILY);
    if (phone_ix)
        sqlite3_bind_blob(st, 1, phone_ix, 32, SQLITE_STATIC);
    else
        sqlite3_bind_int64(st, 1, family_id);
    sqlite3_bind_int64(st, 2, now);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)limit);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < limit) read_invitation(st, &out[(*n)++]);
    return done(p, st, rc);
}

static kp_err sp_invitations_forget(kp_store *s, int64_t inviter_id, const uint8_t *phone_ix)
{
    sqlite_people *p = P(s);
    sqlite3_stmt *st = q(p, P_INVITATIONS_FORGET);
    sqlite3_bind_int64(st, 1, inviter_id);
    if (phone_ix) sqlite3_bind_blob(st, 2, phone_ix, 32, SQLITE_STATIC);
    return run(p, st);
}

/* ------------------------------------------------------------ operations */

static kp_err sp_ops_points_since(kp_store *s, int64_t account_id, kp_op_type type,
                                  const char *store, kp_time since, int64_t *sum)
{
    sqlite_people *p = P(s);
    sqlite3_stmt *st = q(p, P_OPS_POINTS_SINCE);
    sqlite3_bind_int64(st, 1, account_id);
    sqlite3_bind_int(st, 2, (int)type);
    sqlite3_bind_text(st, 3, store, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, since);
    kp_err err = one(p, st);
    if (err) return err;
    *sum = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return KP_OK;
}

static kp_err sp_op_response_set(kp_store *s, const char *store, const char *receipt,
                                 const char *response)
{
    sqlite_people *p = P(s);
    sqlite3_stmt *st = q(p, P_OP_RESPONSE);
    sqlite3_bind_text(st, 1, store, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, receipt, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, response, -1, SQLITE_STATIC);
    kp_err err = run(p, st);
    if (err == KP_OK && sqlite3_changes(p->db) != 1) return KP_ERR_NOT_FOUND;
    return err;
}

static kp_err read_history(sqlite_people *p, sqlite3_stmt *st, kp_history_entry *out,
                           size_t limit, size_t *n)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < limit) {
        kp_history_entry *h = &out[(*n)++];
        h->op_id = sqlite3_column_int64(st, 0);
        h->type = (kp_op_type)sqlite3_column_int(st, 1);
        text(h->card, sizeof h->card, st, 2);
        text(h->store, sizeof h->store, st, 3);
        text(h->receipt, sizeof h->receipt, st, 4);
        h->at = sqlite3_column_int64(st, 5);
        h->points = sqlite3_column_int64(st, 6);
        h->amount_minor = sqlite3_column_int64(st, 7);
        h->earned = sqlite3_column_int64(st, 8);
        h->burned = sqlite3_column_int64(st, 9);
    }
    return done(p, st, rc);
}

static kp_err sp_history_cards(kp_store *s, int64_t account_id, int64_t before,
                               kp_history_entry *out, size_t limit, size_t *n)
{
    sqlite_people *p = P(s);
    *n = 0;
    sqlite3_stmt *st = q(p, P_HISTORY_CARDS);
    sqlite3_bind_int64(st, 1, account_id);
    sqlite3_bind_int64(st, 2, before);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)limit);
    return read_history(p, st, out, limit, n);
}

static kp_err sp_ops_of_stores(kp_store *s, const char *prefix, bool exact, int64_t before,
                               kp_time from, kp_time to, kp_history_entry *out, size_t limit,
                               size_t *n)
{
    sqlite_people *p = P(s);
    *n = 0;
    sqlite3_stmt *st = q(p, exact ? P_OPS_OF_STORE : P_OPS_OF_PREFIX);
    sqlite3_bind_text(st, 1, prefix, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, before > 0 ? before : INT64_MAX);
    sqlite3_bind_int64(st, 3, from);
    sqlite3_bind_int64(st, 4, to);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)limit);
    return read_history(p, st, out, limit, n);
}

/* sealed_count (store_sealed_count_sql) reads the outbox's tables too,
 * which store_sqlite_notify.c creates after this part has opened: prepared
 * when called (init and migrate call it once), not with the rest. */
static kp_err sp_sealed_count(kp_store *s, int64_t *n)
{
    sqlite_people *p = P(s);
    *n = 0;
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(p->db, store_sealed_count_sql, -1, &st, NULL);
    if (rc != SQLITE_OK) return fail(p, rc);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *n = sqlite3_column_int64(st, 0);
    kp_err err = (rc == SQLITE_ROW || rc == SQLITE_DONE) ? KP_OK : fail(p, rc);
    sqlite3_finalize(st);
    return err;
}

/* ------------------------------------------------------------------ open */

const kp_people_ops store_sqlite_people_ops = {
    .customer_insert = sp_customer_insert,
    .customer_update = sp_customer_update,
    .customer_get = sp_customer_get,
    .customer_by_index = sp_customer_by_index,
    .customer_by_external = sp_customer_by_external,
    .customers_by_name = sp_customers_by_name,
    .customers_of_account = sp_customers_of_account,
    .customers_each = sp_customers_each,
    .card_info_get = sp_card_info_get,
    .card_info_put = sp_card_info_put,
    .cards_of_customer = sp_cards_of_customer,
    .card_event_insert = sp_card_event_insert,
    .card_events = sp_card_events,
    .batch_insert = sp_batch_insert,
    .batch_get = sp_batch_get,
    .batch_cards_each = sp_batch_cards_each,
    .balances_each = sp_balances_each,
    .account_is_empty = sp_account_is_empty,
    .account_create = sp_account_create,
    .birthday_forget = sp_birthday_forget,
    .staff_insert = sp_staff_insert,
    .staff_update = sp_staff_update,
    .staff_get = sp_staff_get,
    .staff_list = sp_staff_list,
    .session_insert = sp_session_insert,
    .session_find = sp_session_find,
    .session_delete = sp_session_delete,
    .sessions_delete_staff = sp_sessions_delete_staff,
    .audit_append = sp_audit_append,
    .audit_list = sp_audit_list,
    .family_insert = sp_family_insert,
    .family_get = sp_family_get,
    .member_put = sp_member_put,
    .member_get = sp_member_get,
    .member_delete = sp_member_delete,
    .members_of_family = sp_members_of_family,
    .invitation_insert = sp_invitation_insert,
    .invitation_get = sp_invitation_get,
    .invitation_update = sp_invitation_update,
    .invitations_pending = sp_invitations_pending,
    .invitations_forget = sp_invitations_forget,
    .ops_points_since = sp_ops_points_since,
    .op_response_set = sp_op_response_set,
    .history_cards = sp_history_cards,
    .ops_of_stores = sp_ops_of_stores,
    .sealed_count = sp_sealed_count,
    .dashboard = sp_dashboard,
};

/* The people_schema version of the database: 0 when it has none yet. */
static int schema_version(sqlite3 *db)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'people_schema'", -1, &st,
                           NULL) != SQLITE_OK)
        return 0;
    int v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    return v;
}

/* Creates the schema or brings it to the current version, in one
 * transaction: two processes opening an old database at once do not
 * interleave their DDL, and the second finds the work done. */
static int schema_update(sqlite3 *db)
{
    int rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK) return rc;
    int v = schema_version(db);
    if (v == 0) rc = sqlite3_exec(db, schema_sql, NULL, NULL, NULL);
    if (v == 1) rc = sqlite3_exec(db, migrate_1_2_sql, NULL, NULL, NULL);
    if (rc == SQLITE_OK && (v == 1 || v == 2))
        rc = sqlite3_exec(db, migrate_2_3_sql, NULL, NULL, NULL);
    if (rc == SQLITE_OK && v >= 1 && v <= 3 && !has_column(db, "staff", "partner"))
        rc = sqlite3_exec(db, "ALTER TABLE staff ADD COLUMN partner TEXT NOT NULL DEFAULT ''",
                          NULL, NULL, NULL);
    if (rc == SQLITE_OK && v >= 1 && v <= 3)
        rc = sqlite3_exec(db, migrate_3_4_sql, NULL, NULL, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK && !sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

kp_err store_sqlite_people_open(sqlite3 *db, char *last_error, size_t last_error_size,
                                sqlite_people **out)
{
    *out = NULL;
    sqlite_people *p = calloc(1, sizeof *p);
    if (p == NULL) return KP_ERR_NOMEM;
    p->db = db;
    p->last_error = last_error;
    p->last_error_size = last_error_size;
    kp_err err = KP_OK;
    if (schema_version(db) != PEOPLE_SCHEMA_VERSION) {
        int rc = schema_update(db);
        if (rc != SQLITE_OK) {
            err = fail(p, rc);
            goto out;
        }
    }
    for (int i = 0; i < P__COUNT; i++) {
        int rc =
            sqlite3_prepare_v3(db, queries[i], -1, SQLITE_PREPARE_PERSISTENT, &p->stmt[i], NULL);
        if (rc != SQLITE_OK) {
            err = fail(p, rc);
            goto out;
        }
    }
    *out = p;
out:
    if (err) store_sqlite_people_close(p);
    return err;
}

void store_sqlite_people_close(sqlite_people *p)
{
    if (p == NULL) return;
    for (int i = 0; i < P__COUNT; i++) sqlite3_finalize(p->stmt[i]);
    free(p);
}
