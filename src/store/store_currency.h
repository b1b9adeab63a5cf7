/*
 * store_currency.h: a card's accounts per currency, in both backends
 * (store_sqlite_currency.c, store_pg_currency.c): their schema and the
 * kp_store_ops.account_currency / account_currencies implementations.
 */
#ifndef KOPILKA_STORE_CURRENCY_H
#define KOPILKA_STORE_CURRENCY_H

#include <stdbool.h>
#include <string.h>

#include <kopilka/store.h>

/* Three capital letters (ISO 4217's form; which codes exist is the
 * program's business). */
static inline bool store_currency_code_ok(const char *c)
{
    if (c == NULL || strlen(c) != 3) return false;
    for (int i = 0; i < 3; i++)
        if (c[i] < 'A' || c[i] > 'Z') return false;
    return true;
}

/* SQLite: the link table, made at every open (accounts.currency is added
 * by store_sqlite.c's column update). */
extern const char store_sqlite_currency_schema[];
kp_err store_sqlite_account_currency(kp_store *s, int64_t account_id, const char *currency,
                                     kp_time now, int64_t *sub_id);
kp_err store_sqlite_account_currencies(kp_store *s, int64_t account_id, kp_currency_account *out,
                                       size_t limit, size_t *n);
kp_err store_sqlite_account_owner(kp_store *s, int64_t account_id, int64_t *own_id,
                                  char currency[4]);

/* PostgreSQL: migration 14's text. */
extern const char store_pg_currency_schema[];
kp_err store_pg_account_currency(kp_store *s, int64_t account_id, const char *currency,
                                 kp_time now, int64_t *sub_id);
kp_err store_pg_account_currencies(kp_store *s, int64_t account_id, kp_currency_account *out,
                                   size_t limit, size_t *n);
kp_err store_pg_account_owner(kp_store *s, int64_t account_id, int64_t *own_id, char currency[4]);

#endif
