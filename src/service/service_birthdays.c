/*
 * service_birthdays.c: whose birthday is it? The scheduler's birthday job
 * asks a kp_birthday_finder; this one looks the blind index of "MM-DD" up
 * in the store (kp_triggers_ops.birthday_accounts), with the key file beside
 * the database. The date itself is never stored: only the keyed hash of its
 * month and day, so a copied database does not tell anyone's birthday.
 * Also `kopilka birthday set` (kp_birthday_set), which writes through the
 * customer record when the card has one.
 */
#include "service_rules.h"
#include "people_int.h"
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
    /* No key file (for PostgreSQL, $KOPILKA_KEY_FILE unset) is no birthday
     * recorded, as find() treats a missing file; the server says at start
     * that the key is missing. */
    kp_error ke;
    kp_err err = kp_pii_key_locate(db_path, b->key_path, sizeof b->key_path, &ke);
    if (err != KP_OK && err != KP_ERR_NOT_FOUND) {
        free(b);
        return kp_error_set(e, err, ke.field, "%s", ke.message);
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

kp_err kp_birthday_set(kp_office *o, const char *number, const char *date, int64_t *customer_id,
                       kp_error *e)
{
    *customer_id = 0;
    kp_err err = kp_office_require_back_office(o, KP_PERM_CUSTOMER_EDIT, e);
    if (err == KP_OK) err = people_need_key(o, e);
    if (err) return err;
    int year, month, day;
    const char *why = NULL;
    char today[11];
    people_day_format(o->now, today);
    if (!kp_parse_date(date, &year, &month, &day, &why))
        return kp_error_set(e, KP_ERR_INVALID, "date", "%s, got %s", why, date);
    if (strcmp(date, today) > 0)
        return kp_error_set(e, KP_ERR_INVALID, "date",
                            "must not be in the future (today is %s), got %s", today, date);
    kp_card_info card;
    err = o->st->ops->people->card_info_get(o->st, number, &card);
    if (err == KP_ERR_NOT_FOUND)
        return kp_card_unknown(number, "card", e);
    if (err) return people_storage(o->st, err, e);
    if (card.customer_id) {
        *customer_id = card.customer_id;
        char body[64];
        snprintf(body, sizeof body, "{\"birthday\":\"%s\"}", date);
        kp_buf out;
        kp_buf_init(&out, 1 << 20);
        kp_field_errors fe = {0};
        err = kp_customer_update(o, card.customer_id, body, strlen(body), &out, &fe, e);
        kp_buf_release(&out);
        return err;
    }
    uint8_t ix[KP_PII_INDEX_BYTES];
    kp_pii_birthday_index(o->pii, month, day, ix);
    if ((err = o->st->ops->triggers->birthday_set(o->st, card.account_id, ix)))
        return people_storage(o->st, err, e);
    char target[48];
    snprintf(target, sizeof target, "account:%lld", (long long)card.account_id);
    if ((err = kp_office_audit(o, "birthday.set", target,
                               "card=%s (no customer record yet: the month-day index only)",
                               number)))
        return people_storage(o->st, err, e);
    return KP_OK;
}
