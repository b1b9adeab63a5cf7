/*
 * store_pg_currency.c: a card's accounts per currency on PostgreSQL
 * (kp_store_ops.account_currency and account_currencies, store.h;
 * docs/coalition.md "Currencies"), and the schema migration that makes
 * accounts.currency and the link table account_currencies.
 */
#include "store_currency.h"
#include "store_pg_int.h"

#include <stdio.h>

const char store_pg_currency_schema[] =
    "ALTER TABLE accounts ADD COLUMN IF NOT EXISTS currency TEXT NOT NULL DEFAULT '';"
    "CREATE TABLE IF NOT EXISTS account_currencies (account_id BIGINT NOT NULL,"
    "  currency TEXT COLLATE \"C\" NOT NULL, sub_account_id BIGINT NOT NULL UNIQUE,"
    "  PRIMARY KEY (account_id, currency));";

static pg_stmt q_link_find = {"SELECT sub_account_id FROM account_currencies "
                              "WHERE account_id = $1 AND currency = $2", 2, 0};
/* The own account's row, locked inside a transaction: one writer makes the
 * currency account, the other then finds it. */
static pg_stmt q_own_lock = {"SELECT currency = '' FROM accounts WHERE id = $1 FOR UPDATE", 1, 0};
static pg_stmt q_own_get = {"SELECT currency = '' FROM accounts WHERE id = $1", 1, 0};
/* The account and its link in one statement: both or neither. */
static pg_stmt q_link_create = {
    "WITH a AS (INSERT INTO accounts(created_at, currency) VALUES ($3, $2) RETURNING id) "
    "INSERT INTO account_currencies(account_id, currency, sub_account_id) "
    "SELECT $1, $2, id FROM a RETURNING sub_account_id", 3, 0};
static pg_stmt q_list = {
    "SELECT c.currency, c.sub_account_id, a.balance FROM account_currencies c "
    "JOIN accounts a ON a.id = c.sub_account_id WHERE c.account_id = $1 "
    "ORDER BY c.currency LIMIT $2", 2, 0};

static pg_stmt q_owner = {
    "SELECT account_id, currency FROM account_currencies WHERE sub_account_id = $1", 1, 0};

/* One int64 of a statement's first row: KP_ERR_NOT_FOUND for no row. */
static kp_err one_int(pg_store *s, pg_stmt *stmt, const pg_params *p, int64_t *out)
{
    PGresult *r;
    kp_err err = pg_run(s, stmt, p, &r);
    if (err) return err;
    if (PQntuples(r) == 0) err = KP_ERR_NOT_FOUND;
    else *out = pg_int(r, 0, 0);
    PQclear(r);
    return err;
}

static kp_err link_find(pg_store *s, int64_t account_id, const char *currency, int64_t *sub_id)
{
    pg_params p = {0};
    pg_p_int(&p, account_id);
    pg_p_text(&p, currency);
    return one_int(s, &q_link_find, &p, sub_id);
}

kp_err store_pg_account_currency(kp_store *b, int64_t account_id, const char *currency,
                                 kp_time now, int64_t *sub_id)
{
    pg_store *s = (pg_store *)b;
    if (!store_currency_code_ok(currency)) {
        snprintf(b->last_error, sizeof b->last_error,
                 "currency \"%s\" is not an ISO 4217 code (three capital letters)",
                 currency ? currency : "");
        return KP_ERR_INVALID;
    }
    kp_err err = link_find(s, account_id, currency, sub_id);
    if (err != KP_ERR_NOT_FOUND) return err;
    pg_params p = {0};
    pg_p_int(&p, account_id);
    int64_t own;
    err = one_int(s, s->in_txn ? &q_own_lock : &q_own_get, &p, &own);
    if (err == KP_ERR_NOT_FOUND) {
        snprintf(b->last_error, sizeof b->last_error, "no account %lld", (long long)account_id);
        return err;
    }
    if (err) return err;
    if (!own) {
        snprintf(b->last_error, sizeof b->last_error,
                 "account %lld is a currency account, not a card's own", (long long)account_id);
        return KP_ERR_INVALID;
    }
    /* Another writer may have made it while this one waited for the lock. */
    err = link_find(s, account_id, currency, sub_id);
    if (err != KP_ERR_NOT_FOUND) return err;
    pg_params c = {0};
    pg_p_int(&c, account_id);
    pg_p_text(&c, currency);
    pg_p_int(&c, now);
    return one_int(s, &q_link_create, &c, sub_id);
}

kp_err store_pg_account_currencies(kp_store *b, int64_t account_id, kp_currency_account *out,
                                   size_t limit, size_t *n)
{
    pg_store *s = (pg_store *)b;
    *n = 0;
    pg_params p = {0};
    pg_p_int(&p, account_id);
    pg_p_int(&p, (int64_t)limit);
    PGresult *r;
    kp_err err = pg_run(s, &q_list, &p, &r);
    if (err) return err;
    for (int i = 0; i < PQntuples(r) && *n < limit; i++) {
        kp_currency_account *a = &out[(*n)++];
        pg_text(r, i, 0, a->currency, sizeof a->currency);
        a->account_id = pg_int(r, i, 1);
        a->balance = pg_int(r, i, 2);
    }
    PQclear(r);
    return KP_OK;
}

kp_err store_pg_account_owner(kp_store *b, int64_t account_id, int64_t *own_id, char currency[4])
{
    pg_store *s = (pg_store *)b;
    *own_id = account_id;
    currency[0] = '\0';
    pg_params p = {0};
    pg_p_int(&p, account_id);
    PGresult *r;
    kp_err err = pg_run(s, &q_owner, &p, &r);
    if (err) return err;
    if (PQntuples(r) > 0) {
        *own_id = pg_int(r, 0, 0);
        pg_text(r, 0, 1, currency, 4);
    }
    PQclear(r);
    return KP_OK;
}
