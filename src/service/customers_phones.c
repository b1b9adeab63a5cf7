/*
 * customers_phones.c: bringing the phones of a database from before
 * libphonenumber to E.164 (`kopilka phones migrate`).
 *
 * Before, a phone was kept as "+" and the digits as typed: right for
 * numbers typed with + or as 7..., wrong for numbers typed the national way
 * ("8 916 765-43-21" became "+89167654321", "050 123 4567" "+0501234567").
 * Search now normalises what is typed to E.164, so those customers are not
 * found by phone until their stored phone is read again: first as the
 * international number it claims to be, and when that is not a valid
 * number, as the digits typed in the program's country. Each changed phone
 * is sealed again and its blind index rewritten; two customers whose old
 * spellings name one number keep theirs and are reported (one is a
 * duplicate a person must resolve).
 */
#include "people_int.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct id_list {
    int64_t *ids;
    size_t n, cap;
    bool nomem;
} id_list;

/* customers_each callback: the ids of customers with a phone. */
static bool collect(void *arg, const kp_customer_row *row)
{
    id_list *l = arg;
    if (row->state == KP_CUSTOMER_ERASED || row->phone.len == 0) return true;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 1024;
        int64_t *ids = realloc(l->ids, cap * sizeof *ids);
        if (ids == NULL) {
            l->nomem = true;
            return false;
        }
        l->ids = ids;
        l->cap = cap;
    }
    l->ids[l->n++] = row->id;
    return true;
}

bool kp_phone_from_legacy(const char *stored, const char *region, char out[KP_PHONE_MAX + 1])
{
    const char *why;
    if (kp_norm_phone_in(stored, region, out, &why)) return true;
    return stored[0] == '+' && kp_norm_phone_in(stored + 1, region, out, &why);
}

static void say(void (*report)(void *, const char *), void *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(void (*report)(void *, const char *), void *ctx, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (report) report(ctx, line);
}

/* Re-reads one customer's phone; counts it in *m. */
static kp_err migrate_one(kp_office *o, int64_t id, bool dry_run, kp_customer_row *row,
                          void (*report)(void *, const char *), void *ctx, kp_phones_migration *m,
                          kp_error *e)
{
    const kp_people_ops *pp = o->st->ops->people;
    kp_err err = pp->customer_get(o->st, id, row);
    if (err) return people_storage(o->st, err, e);
    char stored[KP_PHONE_MAX + 1] = "", fresh[KP_PHONE_MAX + 1];
    if (kp_pii_open(o->pii, KP_PII_PHONE, row->phone.data, row->phone.len, stored, sizeof stored,
                    NULL))
        return kp_error_set(e, KP_ERR_INTERNAL, "key",
                            "customer %lld's phone cannot be opened with this key", (long long)id);
    m->checked++;
    if (!kp_phone_from_legacy(stored, kp_phone_region_of(o->program), fresh)) {
        m->unreadable++;
        say(report, ctx,
            "customer %lld: the stored phone is no valid number, neither as it is nor typed "
            "in %s; left as it was (correct it with PATCH /v1/admin/customers/%lld)",
            (long long)id,
            kp_phone_region_of(o->program)[0] ? kp_phone_region_of(o->program) : "no country",
            (long long)id);
        goto out;
    }
    /* Stored "+" and digits: a number typed with its trunk prefix ("8 495
     * ...") may also be a valid international one. Two valid readings that
     * differ are not chosen between silently. */
    const char *region = kp_phone_region_of(o->program);
    char as_typed[KP_PHONE_MAX + 1];
    const char *why;
    if (stored[0] == '+' && region[0] && kp_norm_phone_in(stored + 1, region, as_typed, &why) &&
        strcmp(as_typed, fresh) != 0) {
        m->ambiguous++;
        say(report, ctx,
            "customer %lld: the stored phone is a valid number both as an international "
            "number and as typed in %s without +, and the two differ; left as it was (set the "
            "right one with PATCH /v1/admin/customers/%lld)",
            (long long)id, region, (long long)id);
        goto out;
    }
    if (strcmp(stored, fresh) == 0) goto out;
    uint8_t ix[KP_PII_INDEX_BYTES];
    kp_pii_index(o->pii, KP_PII_PHONE, fresh, ix);
    int64_t other = 0;
    err = pp->customer_by_index(o->st, KP_CONTACT_PHONE, ix, &other);
    if (err == KP_OK && other != id) {
        m->conflicts++;
        say(report, ctx,
            "customer %lld: the phone is customer %lld's too (one number registered twice, in "
            "two spellings); left as it was: keep one of them",
            (long long)id, (long long)other);
        goto out;
    }
    if (err != KP_OK && err != KP_ERR_NOT_FOUND) return people_storage(o->st, err, e);
    m->changed++;
    if (dry_run) goto out;
    if (kp_pii_seal(o->pii, KP_PII_PHONE, fresh, strlen(fresh), row->phone.data,
                    sizeof row->phone.data, &row->phone.len))
        return kp_error_set(e, KP_ERR_INTERNAL, "", "personal data could not be sealed");
    memcpy(row->phone_ix, ix, sizeof ix);
    row->has_phone_ix = true;
    /* The store rewrites the name's index with every update. */
    char name[KP_NAME_MAX + 1] = "", words[KP_NAME_WORDS_MAX][KP_NAME_MAX + 1];
    if (row->name.len &&
        kp_pii_open(o->pii, KP_PII_NAME, row->name.data, row->name.len, name, sizeof name, NULL))
        return kp_error_set(e, KP_ERR_INTERNAL, "key",
                            "customer %lld's name cannot be opened with this key", (long long)id);
    row->n_name_ix = name[0] ? kp_name_words(name, words) : 0;
    for (size_t i = 0; i < row->n_name_ix; i++)
        kp_pii_index(o->pii, KP_PII_NAME_WORD, words[i], row->name_ix[i]);
    sodium_memzero(name, sizeof name);
    row->updated_at = o->now;
    if ((err = pp->customer_update(o->st, row))) return people_storage(o->st, err, e);
out:
    sodium_memzero(stored, sizeof stored);
    return KP_OK;
}

kp_err kp_customers_phones_migrate(kp_office *o, bool dry_run,
                                   void (*report)(void *ctx, const char *line), void *ctx,
                                   kp_phones_migration *m, kp_error *e)
{
    memset(m, 0, sizeof *m);
    kp_err err = kp_office_require_back_office(o, KP_PERM_CUSTOMER_EDIT, e);
    if (err == KP_OK) err = people_need_key(o, e);
    if (err) return err;
    id_list l = {0};
    kp_customer_row *row = malloc(sizeof *row);
    if (row == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    err = o->st->ops->people->customers_each(o->st, collect, &l);
    if (err) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    if (l.nomem) {
        err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory listing the customers");
        goto out;
    }
    for (size_t i = 0; i < l.n && err == KP_OK; i++)
        err = migrate_one(o, l.ids[i], dry_run, row, report, ctx, m, e);
    if (err == KP_OK && !dry_run &&
        (err = kp_office_audit(o, "customer.phones_migrate", "customers",
                               "country=%s checked=%lld changed=%lld unreadable=%lld "
                               "conflicts=%lld",
                               kp_phone_region_of(o->program), (long long)m->checked,
                               (long long)m->changed, (long long)m->unreadable,
                               (long long)m->conflicts)))
        err = people_storage(o->st, err, e);
out:
    free(l.ids);
    free(row);
    return err;
}
