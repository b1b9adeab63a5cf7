/*
 * store_sqlite_currency.c: a card's accounts per currency on SQLite
 * (kp_store_ops.account_currency and account_currencies, store.h;
 * docs/coalition.md "Currencies"). The schema: accounts.currency ("" = the
 * program's own) and the link table account_currencies, made at open
 * (store_sqlite.c).
 */
#include "store_currency.h"
#include "store_sqlite_group.h"
#include "store_sqlite_int.h"

#include <string.h>

const char store_sqlite_currency_schema[] =
    "CREATE TABLE IF NOT EXISTS account_currencies (account_id INTEGER NOT NULL,"
    "  currency TEXT NOT NULL, sub_account_id INTEGER NOT NULL UNIQUE,"
    "  PRIMARY KEY (account_id, currency)) WITHOUT ROWID;";

static kp_err prep(kp_store *s, const char *sql, sqlite3_stmt **st)
{
    sqlite3 *db = store_sqlite_db(s);
    int rc = sqlite3_prepare_v2(db, sql, -1, st, NULL);
    if (rc != SQLITE_OK) {
        *st = NULL;
        return store_sqlite_fail(db, s->last_error, sizeof s->last_error, rc);
    }
    return KP_OK;
}

/* One int64 of a one-row query with (id, text) parameters: KP_ERR_NOT_FOUND
 * for no row. */
static kp_err one_int(kp_store *s, const char *sql, int64_t id, const char *text, int64_t *out)
{
    sqlite3_stmt *st;
    kp_err err = prep(s, sql, &st);
    if (err) return err;
    sqlite3_bind_int64(st, 1, id);
    if (text) sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *out = sqlite3_column_int64(st, 0);
    else if (rc == SQLITE_DONE) err = KP_ERR_NOT_FOUND;
    else err = store_sqlite_fail(store_sqlite_db(s), s->last_error, sizeof s->last_error, rc);
    sqlite3_finalize(st);
    return err;
}

static kp_err exec_args(kp_store *s, const char *sql, int64_t a, const char *text, int64_t b,
                        int64_t *rowid)
{
    sqlite3_stmt *st;
    kp_err err = prep(s, sql, &st);
    if (err) return err;
    sqlite3_bind_int64(st, 1, a);
    sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, b);
    sqlite3 *db = store_sqlite_db(s);
    err = store_sqlite_run(db, s->last_error, sizeof s->last_error, st);
    if (err == KP_OK && rowid) *rowid = sqlite3_last_insert_rowid(db);
    sqlite3_finalize(st);
    return err;
}

kp_err store_sqlite_account_currency(kp_store *s, int64_t account_id, const char *currency,
                                     kp_time now, int64_t *sub_id)
{
    if (!store_currency_code_ok(currency)) {
        snprintf(s->last_error, sizeof s->last_error,
                 "currency \"%s\" is not an ISO 4217 code (three capital letters)",
                 currency ? currency : "");
        return KP_ERR_INVALID;
    }
    kp_err err = one_int(s,
                         "SELECT sub_account_id FROM account_currencies "
                         "WHERE account_id = ?1 AND currency = ?2",
                         account_id, currency, sub_id);
    if (err != KP_ERR_NOT_FOUND) return err;
    int64_t own;
    err = one_int(s, "SELECT currency = '' FROM accounts WHERE id = ?1", account_id, NULL, &own);
    if (err == KP_ERR_NOT_FOUND) {
        snprintf(s->last_error, sizeof s->last_error, "no account %lld", (long long)account_id);
        return err;
    }
    if (err) return err;
    if (!own) {
        snprintf(s->last_error, sizeof s->last_error,
                 "account %lld is a currency account, not a card's own", (long long)account_id);
        return KP_ERR_INVALID;
    }
    sqlite3 *db = store_sqlite_db(s);
    /* The account and its link land together, inside a transaction or not. */
    if (sqlite3_exec(db, "SAVEPOINT currency_account", NULL, NULL, NULL) != SQLITE_OK)
        return store_sqlite_fail(db, s->last_error, sizeof s->last_error, sqlite3_errcode(db));
    err = exec_args(s, "INSERT INTO accounts(created_at, currency) VALUES (?3, ?2)", account_id,
                    currency, now, sub_id);
    if (err == KP_OK)
        err = exec_args(s,
                        "INSERT INTO account_currencies(account_id, currency, sub_account_id) "
                        "VALUES (?1, ?2, ?3)",
                        account_id, currency, *sub_id, NULL);
    if (err == KP_OK) {
        if (sqlite3_exec(db, "RELEASE currency_account", NULL, NULL, NULL) != SQLITE_OK)
            err = store_sqlite_fail(db, s->last_error, sizeof s->last_error, sqlite3_errcode(db));
    } else {
        sqlite3_exec(db, "ROLLBACK TO currency_account; RELEASE currency_account", NULL, NULL,
                     NULL);
    }
    return err;
}

kp_err store_sqlite_account_currencies(kp_store *s, int64_t account_id, kp_currency_account *out,
                                       size_t limit, size_t *n)
{
    *n = 0;
    sqlite3_stmt *st;
    kp_err err = prep(s,
                      "SELECT c.currency, c.sub_account_id, a.balance FROM account_currencies c "
                      "JOIN accounts a ON a.id = c.sub_account_id WHERE c.account_id = ?1 "
                      "ORDER BY c.currency LIMIT ?2",
                      &st);
    if (err) return err;
    sqlite3_bind_int64(st, 1, account_id);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < limit) {
        kp_currency_account *c = &out[(*n)++];
        store_sqlite_copy_text(c->currency, sizeof c->currency, sqlite3_column_text(st, 0));
        c->account_id = sqlite3_column_int64(st, 1);
        c->balance = sqlite3_column_int64(st, 2);
    }
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        *n = 0;
        err = store_sqlite_fail(store_sqlite_db(s), s->last_error, sizeof s->last_error, rc);
    }
    sqlite3_finalize(st);
    return err;
}

kp_err store_sqlite_account_owner(kp_store *s, int64_t account_id, int64_t *own_id,
                                  char currency[4])
{
    *own_id = account_id;
    currency[0] = '\0';
    sqlite3_stmt *st;
    kp_err err = prep(s,
                      "SELECT account_id, currency FROM account_currencies "
                      "WHERE sub_account_id = ?1",
                      &st);
    if (err) return err;
    sqlite3_bind_int64(st, 1, account_id);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *own_id = sqlite3_column_int64(st, 0);
        store_sqlite_copy_text(currency, 4, sqlite3_column_text(st, 1));
    } else if (rc != SQLITE_DONE) {
        err = store_sqlite_fail(store_sqlite_db(s), s->last_error, sizeof s->last_error, rc);
    }
    sqlite3_finalize(st);
    return err;
}
