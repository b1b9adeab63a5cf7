/*
 * service_birthdays.c: whose birthday is it? The scheduler's birthday job
 * asks a kp_birthday_finder; this one looks the blind index of "MM-DD" up
 * in the store (kp_triggers_ops.birthday_accounts), with the key file beside
 * the database. The date itself is never stored: only the keyed hash of its
 * month and day, so a copied database does not tell anyone's birthday.
 */
#include "service_rules.h"
#include <kopilka/card_number.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/pii.h"

struct kp_birthdays {
    char key_path[4096];
    kp_pii *pii; /* loaded on first use */
    kp_birthday_finder finder;
};

static kp_err find(void *ctx, kp_store *st, int month, int day, int64_t after, int64_t *ids,
                   size_t limit, size_t *n)
{
    kp_birthdays *b = ctx;
    *n = 0;
    if (b->pii == NULL) {
        kp_error e = {0};
        if (access(b->key_path, F_OK) != 0) return KP_OK; /* no key: no birthday recorded */
        kp_err err = kp_pii_load(b->key_path, &b->pii, &e);
        if (err) {
            snprintf(st->last_error, sizeof st->last_error, "%s", e.message);
            return err;
        }
    }
    uint8_t ix[KP_PII_INDEX_BYTES];
    kp_pii_birthday_index(b->pii, month, day, ix);
    return st->ops->triggers->birthday_accounts(st, ix, after, ids, limit, n);
}

kp_err kp_birthdays_open(const char *db_path, kp_birthdays **out, kp_error *e)
{
    *out = NULL;
    kp_birthdays *b = calloc(1, sizeof *b);
    if (b == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    if (!kp_pii_key_path(db_path, b->key_path, sizeof b->key_path)) {
        free(b);
        return kp_error_set(e, KP_ERR_INVALID, "database", "the database path is too long");
    }
    b->finder.find = find;
    b->finder.ctx = b;
    *out = b;
    return KP_OK;
}

const kp_birthday_finder *kp_birthdays_finder(kp_birthdays *b)
{
    return b ? &b->finder : NULL;
}

void kp_birthdays_free(kp_birthdays *b)
{
    if (b == NULL) return;
    kp_pii_free(b->pii);
    free(b);
}

kp_err kp_service_birthday_set(kp_store *st, const char *db_path, const char *number, int month,
                               int day, kp_error *e)
{
    static const int days[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (month < 1 || month > 12 || day < 1 || day > days[month])
        return kp_error_set(e, KP_ERR_INVALID, "date", "is not a day of the year");
    kp_card card;
    kp_err err = kp_card_number_check(number, "card", e);
    if (err) return err;
    err = st->ops->card_find(st, number, &card);
    if (err == KP_ERR_NOT_FOUND)
        return kp_error_set(e, err, "card", "no card with number %s", number);
    if (err) return kp_error_set(e, err, "", "storage failed: %s", st->last_error);
    char key_path[4096];
    if (!kp_pii_key_path(db_path, key_path, sizeof key_path))
        return kp_error_set(e, KP_ERR_INVALID, "database", "the database path is too long");
    if (access(key_path, F_OK) != 0 && (err = kp_pii_create(key_path, e)) && err != KP_ERR_CONFLICT)
        return err;
    kp_pii *pii = NULL;
    if ((err = kp_pii_load(key_path, &pii, e))) return err;
    uint8_t ix[KP_PII_INDEX_BYTES];
    kp_pii_birthday_index(pii, month, day, ix);
    kp_pii_free(pii);
    if ((err = st->ops->triggers->birthday_set(st, card.account_id, ix)))
        return kp_error_set(e, err, "", "storage failed: %s", st->last_error);
    return KP_OK;
}
