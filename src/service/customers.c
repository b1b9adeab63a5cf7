/*
 * customers.c: registering a card to a customer (web form, call centre,
 * till), finding, editing and erasing customers. Personal data is validated
 * and normalised here, sealed with the key (pii.h) and only then handed to
 * the store; blind indexes let the call centre find a customer by phone,
 * e-mail or a word of the name without the store ever seeing them.
 */
#include "people_int.h"
#include "currency.h"
#include "service_rules.h"
#include "notify/notify.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopilka/card_number.h>
#include <kopilka/clock.h>

/* A request's customer fields, validated and normalised. */
typedef struct customer_input {
    bool has_card, has_name, has_phone, has_email, has_birthday, has_receipt, has_consent,
        has_attributes;
    char card[KP_STR_MAX];
    char name[KP_NAME_MAX + 1];
    char phone[KP_PHONE_MAX + 1];
    char email[KP_EMAIL_MAX + 1]; /* "" with has_email: remove */
    char birthday[11];            /* "" with has_birthday: remove */
    int birthday_month, birthday_day;
    char receipt[KP_STR_MAX];
    kp_time consent_at;
    char consent_version[64];
    json_t *attributes; /* borrowed from the request */
} customer_input;

static void field_error(kp_field_errors *fe, kp_error *e, const char *field, const char *msg)
{
    people_field_error(fe, e, KP_ERR_INVALID, field, msg);
}

/* Reads a string member for validation; false (with an error) when it is
 * present but not a string. *present says whether it was given. */
static bool str_member(json_t *root, const char *key, bool *present, const char **value,
                       kp_field_errors *fe, kp_error *e)
{
    json_t *v = json_object_get(root, key);
    *present = v != NULL;
    *value = NULL;
    if (v == NULL || json_is_null(v)) return true;
    if (!json_is_string(v)) {
        field_error(fe, e, key, "must be a string");
        return false;
    }
    *value = json_string_value(v);
    return true;
}

static void check_attributes(const kp_people_policy *p, json_t *attrs, kp_field_errors *fe,
                             kp_error *e)
{
    const char *key;
    json_t *v;
    char field[96], msg[192];
    json_object_foreach(attrs, key, v)
    {
        const kp_attr_decl *d = NULL;
        for (size_t i = 0; i < p->n_attributes && !d; i++)
            if (strcmp(p->attributes[i].name, key) == 0) d = &p->attributes[i];
        snprintf(field, sizeof field, "attributes.%.60s", key);
        if (d == NULL) {
            char list[128] = "";
            size_t n = 0;
            for (size_t i = 0; i < p->n_attributes && n < sizeof list - 50; i++)
                n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "",
                                      p->attributes[i].name);
            snprintf(msg, sizeof msg, "is not an attribute of this program (declared: %.120s)",
                     n ? list : "none");
            field_error(fe, e, field, msg);
            continue;
        }
        switch (d->type) {
        case KP_ATTR_STRING: {
            size_t len = json_is_string(v) ? json_string_length(v) : 0;
            bool ctl = false;
            for (size_t i = 0; json_is_string(v) && i < len; i++)
                ctl |= (unsigned char)json_string_value(v)[i] < 0x20;
            if (!json_is_string(v) || ctl || (int64_t)len < d->min || (int64_t)len > d->max) {
                snprintf(msg, sizeof msg, "must be a string of %lld to %lld bytes",
                         (long long)d->min, (long long)d->max);
                field_error(fe, e, field, msg);
            }
            break;
        }
        case KP_ATTR_INTEGER:
            if (!json_is_integer(v) || json_integer_value(v) < d->min ||
                json_integer_value(v) > d->max) {
                snprintf(msg, sizeof msg, "must be an integer from %lld to %lld", (long long)d->min,
                         (long long)d->max);
                field_error(fe, e, field, msg);
            }
            break;
        case KP_ATTR_DATE: {
            int y, m, dd;
            const char *why;
            if (!json_is_string(v) || !kp_parse_date(json_string_value(v), &y, &m, &dd, &why))
                field_error(fe, e, field, "must be a date YYYY-MM-DD");
            break;
        }
        case KP_ATTR_BOOLEAN:
            if (!json_is_boolean(v)) field_error(fe, e, field, "must be true or false");
            break;
        }
    }
    for (size_t i = 0; i < p->n_attributes; i++)
        if (p->attributes[i].required && json_object_get(attrs, p->attributes[i].name) == NULL) {
            snprintf(field, sizeof field, "attributes.%s", p->attributes[i].name);
            field_error(fe, e, field, "is required by the program");
        }
}

/* Reads and checks the customer fields of a request body. `registering`:
 * card, full_name, phone and consent are required. */
static void parse_input(kp_office *o, json_t *root, bool registering, customer_input *in,
                        kp_field_errors *fe, kp_error *e)
{
    memset(in, 0, sizeof *in);
    static const char *const keys[] = {"card",    "full_name", "phone",      "email", "birthday",
                                       "receipt", "consent",   "attributes", NULL};
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        bool ok = false;
        for (size_t i = 0; keys[i] && !ok; i++) ok = strcmp(key, keys[i]) == 0;
        if (!ok || (!registering && strcmp(key, "card") == 0)) {
            char field[64];
            snprintf(field, sizeof field, "%.60s", key);
            field_error(fe, e, field, registering ? "unknown field" : "cannot be changed here");
        }
    }
    const char *s, *why;
    bool present;
    if (registering && str_member(root, "card", &present, &s, fe, e)) {
        if (s == NULL || s[0] == '\0')
            field_error(fe, e, "card", "is required (the card number)");
        else if (strlen(s) >= KP_STR_MAX)
            field_error(fe, e, "card", "is too long");
        else {
            snprintf(in->card, sizeof in->card, "%s", s);
            in->has_card = true;
        }
    }
    if (str_member(root, "full_name", &present, &s, fe, e)) {
        if (s == NULL) {
            if (registering || present) field_error(fe, e, "full_name", "is required");
        } else if (!kp_norm_name(s, in->name, &why)) {
            field_error(fe, e, "full_name", why);
        } else {
            in->has_name = true;
        }
    }
    if (str_member(root, "phone", &present, &s, fe, e)) {
        if (s == NULL) {
            if (registering || present) field_error(fe, e, "phone", "is required");
        } else if (!kp_norm_phone_in(s, kp_phone_region_of(o->program), in->phone, &why)) {
            field_error(fe, e, "phone", why);
        } else {
            in->has_phone = true;
        }
    }
    if (str_member(root, "email", &present, &s, fe, e) && present) {
        in->has_email = true;
        if (s && s[0] && !kp_norm_email(s, in->email, &why)) field_error(fe, e, "email", why);
    }
    if (str_member(root, "birthday", &present, &s, fe, e) && present) {
        in->has_birthday = true;
        int y;
        char today[11];
        people_day_format(o->now, today);
        if (s && s[0]) {
            if (!kp_parse_date(s, &y, &in->birthday_month, &in->birthday_day, &why))
                field_error(fe, e, "birthday", why);
            else if (strcmp(s, today) > 0)
                field_error(fe, e, "birthday", "must not be in the future");
            else
                snprintf(in->birthday, sizeof in->birthday, "%s", s);
        }
    }
    if (str_member(root, "receipt", &present, &s, fe, e) && s) {
        if (strlen(s) >= KP_STR_MAX)
            field_error(fe, e, "receipt", "is too long");
        else {
            snprintf(in->receipt, sizeof in->receipt, "%s", s);
            in->has_receipt = true;
        }
    }
    json_t *c = json_object_get(root, "consent");
    if (c == NULL || json_is_null(c)) {
        if (registering)
            field_error(fe, e, "consent",
                        "is required: {\"given\": true, \"text_version\": \"...\"}, the "
                        "customer's consent to the processing of personal data");
    } else if (!json_is_object(c)) {
        field_error(fe, e, "consent", "must be an object {\"given\", \"text_version\", \"at\"}");
    } else {
        json_t *given = json_object_get(c, "given");
        json_t *version = json_object_get(c, "text_version");
        json_t *at = json_object_get(c, "at");
        bool ok = true;
        if (!json_is_true(given)) {
            field_error(fe, e, "consent.given",
                        "must be true: personal data is kept only with consent");
            ok = false;
        }
        if (!json_is_string(version) || json_string_length(version) == 0 ||
            json_string_length(version) >= sizeof in->consent_version) {
            field_error(fe, e, "consent.text_version",
                        "is required: the version of the consent text shown (1 to 63 bytes)");
            ok = false;
        } else if (o->policy->consent_version[0] &&
                   strcmp(json_string_value(version), o->policy->consent_version) != 0) {
            char msg[160];
            snprintf(msg, sizeof msg, "must be the current consent text, version \"%s\"",
                     o->policy->consent_version);
            field_error(fe, e, "consent.text_version", msg);
            ok = false;
        }
        in->consent_at = o->now;
        if (at && !json_is_null(at) &&
            (!json_is_string(at) || !kp_time_parse(json_string_value(at), &in->consent_at) ||
             in->consent_at > o->now + 300)) {
            field_error(fe, e, "consent.at", "must be an RFC 3339 time, not in the future");
            ok = false;
        }
        const char *ck;
        json_t *cv;
        json_object_foreach(c, ck, cv)
        {
            if (strcmp(ck, "given") && strcmp(ck, "text_version") && strcmp(ck, "at")) {
                char field[64];
                snprintf(field, sizeof field, "consent.%.50s", ck);
                field_error(fe, e, field, "unknown field");
                ok = false;
            }
        }
        if (ok) {
            in->has_consent = true;
            snprintf(in->consent_version, sizeof in->consent_version, "%s",
                     json_string_value(version));
        }
    }
    json_t *a = json_object_get(root, "attributes");
    if (a && !json_is_null(a)) {
        if (!json_is_object(a))
            field_error(fe, e, "attributes", "must be an object");
        else {
            in->attributes = a;
            in->has_attributes = true;
        }
    }
}

/* ---- sealing */

static kp_err seal(const kp_office *o, kp_pii_field field, const char *value, kp_sealed *out)
{
    out->len = 0;
    if (value == NULL || value[0] == '\0') return KP_OK;
    return kp_pii_seal(o->pii, field, value, strlen(value), out->data, sizeof out->data, &out->len);
}

/* Seals the given personal fields into row and refreshes their indexes. */
static kp_err seal_input(kp_office *o, const customer_input *in, const char *attributes_json,
                         kp_customer_row *row)
{
    kp_err err = KP_OK;
    if (in->has_name) {
        err = seal(o, KP_PII_NAME, in->name, &row->name);
        char words[KP_NAME_WORDS_MAX][KP_NAME_MAX + 1];
        row->n_name_ix = kp_name_words(in->name, words);
        for (size_t i = 0; i < row->n_name_ix; i++)
            kp_pii_index(o->pii, KP_PII_NAME_WORD, words[i], row->name_ix[i]);
    }
    if (err == KP_OK && in->has_phone) {
        err = seal(o, KP_PII_PHONE, in->phone, &row->phone);
        kp_pii_index(o->pii, KP_PII_PHONE, in->phone, row->phone_ix);
        row->has_phone_ix = true;
    }
    if (err == KP_OK && in->has_email) {
        err = seal(o, KP_PII_EMAIL, in->email, &row->email);
        row->has_email_ix = in->email[0] != '\0';
        if (row->has_email_ix) kp_pii_index(o->pii, KP_PII_EMAIL, in->email, row->email_ix);
    }
    if (err == KP_OK && in->has_birthday)
        err = seal(o, KP_PII_BIRTHDAY, in->birthday, &row->birthday);
    if (err == KP_OK && attributes_json) {
        row->attributes_len = 0;
        if (strcmp(attributes_json, "{}") != 0)
            err = kp_pii_seal(o->pii, KP_PII_ATTRIBUTES, attributes_json, strlen(attributes_json),
                              row->attributes, sizeof row->attributes, &row->attributes_len);
    }
    if (in->has_receipt) snprintf(row->receipt, sizeof row->receipt, "%s", in->receipt);
    if (in->has_consent) {
        row->consent_at = in->consent_at;
        snprintf(row->consent_version, sizeof row->consent_version, "%s", in->consent_version);
    }
    return err;
}

/* The phone and e-mail of `in` must not belong to another customer. */
static kp_err check_contacts(kp_office *o, const kp_customer_row *row, const customer_input *in,
                             int64_t self, kp_error *e)
{
    const kp_people_ops *pp = o->st->ops->people;
    int64_t other = 0;
    kp_err err;
    if (in->has_phone) {
        err = pp->customer_by_index(o->st, KP_CONTACT_PHONE, row->phone_ix, &other);
        if (err == KP_OK && other != self)
            return kp_error_setr(e, KP_ERR_CONFLICT, KP_REASON_PHONE_IN_USE, "phone",
                                 "this phone number is already registered to another customer "
                                 "(find them by phone, or add this card to them)");
        if (err != KP_OK && err != KP_ERR_NOT_FOUND) return people_storage(o->st, err, e);
    }
    if (in->has_email && row->has_email_ix) {
        err = pp->customer_by_index(o->st, KP_CONTACT_EMAIL, row->email_ix, &other);
        if (err == KP_OK && other != self)
            return kp_error_setr(e, KP_ERR_CONFLICT, KP_REASON_EMAIL_IN_USE, "email",
                                 "this e-mail address is already registered to another customer");
        if (err != KP_OK && err != KP_ERR_NOT_FOUND) return people_storage(o->st, err, e);
    }
    return KP_OK;
}

static kp_err set_birthday_index(kp_office *o, const customer_input *in, int64_t account_id,
                                 kp_error *e)
{
    if (!in->has_birthday) return KP_OK;
    kp_err err;
    if (in->birthday[0] == '\0') {
        err = o->st->ops->people->birthday_forget(o->st, account_id);
    } else {
        uint8_t ix[KP_PII_INDEX_BYTES];
        kp_pii_birthday_index(o->pii, in->birthday_month, in->birthday_day, ix);
        err = o->st->ops->triggers->birthday_set(o->st, account_id, ix);
    }
    return err ? people_storage(o->st, err, e) : KP_OK;
}

/* ---- answers */

static bool open_field(const kp_office *o, kp_pii_field field, const uint8_t *data, size_t len,
                       char *out, size_t cap)
{
    out[0] = '\0';
    if (len == 0) return true;
    return kp_pii_open(o->pii, field, data, len, out, cap, NULL) == KP_OK;
}

static void str_or_null(kp_buf *b, const char *key, const char *value)
{
    kp_buf_puts(b, ",");
    kp_buf_json_key(b, key);
    if (value[0])
        kp_buf_json_str(b, value);
    else
        kp_buf_puts(b, "null");
}

kp_err kp_customer_json(kp_office *o, const kp_customer_row *row, kp_buf *out, kp_error *e)
{
    kp_err err = people_need_key(o, e);
    if (err) return err;
    char name[KP_NAME_MAX + 1], phone[KP_PHONE_MAX + 1], email[KP_EMAIL_MAX + 1], birthday[16];
    static _Thread_local char attrs[KP_ATTRS_JSON_MAX + 1];
    if (!open_field(o, KP_PII_NAME, row->name.data, row->name.len, name, sizeof name) ||
        !open_field(o, KP_PII_PHONE, row->phone.data, row->phone.len, phone, sizeof phone) ||
        !open_field(o, KP_PII_EMAIL, row->email.data, row->email.len, email, sizeof email) ||
        !open_field(o, KP_PII_BIRTHDAY, row->birthday.data, row->birthday.len, birthday,
                    sizeof birthday) ||
        !open_field(o, KP_PII_ATTRIBUTES, row->attributes, row->attributes_len, attrs,
                    sizeof attrs))
        return kp_error_set(e, KP_ERR_IO, "key",
                            "customer %lld's personal data cannot be opened with the key file "
                            "DB.key: it was sealed with another key (the key file replaced, or "
                            "taken from another database?); put back the key file it was "
                            "written with",
                            (long long)row->id);
    kp_buf_puts(out, "{");
    kp_buf_json_kv_i64(out, "id", row->id, false);
    kp_buf_json_kv_i64(out, "account_id", row->account_id, true);
    kp_buf_json_kv_str(out, "state", row->state == KP_CUSTOMER_ERASED ? "erased" : "active", true);
    str_or_null(out, "full_name", name);
    str_or_null(out, "phone", phone);
    str_or_null(out, "email", email);
    str_or_null(out, "birthday", birthday);
    str_or_null(out, "receipt", row->receipt);
    str_or_null(out, "external_id", row->external_id);
    kp_buf_puts(out, ",\"consent\":");
    if (row->consent_version[0]) {
        kp_buf_puts(out, "{\"given\":true");
        kp_buf_json_kv_str(out, "text_version", row->consent_version, true);
        people_time_kv(out, "at", row->consent_at);
        kp_buf_puts(out, "}");
    } else {
        kp_buf_puts(out, "null");
    }
    kp_buf_puts(out, ",\"attributes\":");
    kp_buf_puts(out, attrs[0] ? attrs : "{}");

    kp_card_info *cards;
    size_t n_cards = 0;
    if ((err = people_cards_all(o->st, row->id, &cards, &n_cards, e))) return err;
    kp_buf_puts(out, ",\"cards\":[");
    for (size_t i = 0; i < n_cards; i++) {
        kp_buf_puts(out, i ? ",{" : "{");
        kp_buf_json_kv_str(out, "number", cards[i].number, false);
        kp_buf_json_kv_str(out, "state", kp_card_state_name(cards[i].state), true);
        kp_buf_puts(out, cards[i].may_burn ? ",\"may_spend\":true" : ",\"may_spend\":false");
        kp_buf_puts(out, "}");
    }
    free(cards);
    kp_buf_puts(out, "]");
    if (o->sc &&
        (err = o->st->ops->account_load(o->st, row->account_id, &o->sc->account)) == KP_OK) {
        kp_buf_json_kv_i64(out, "balance", o->sc->account.balance, true);
        kp_buf_json_kv_i64(out, "available", kp_account_spendable(&o->sc->account, o->now), true);
        if ((err = kp_service_balances_json(o->st, o->program ? o->program->currency : "",
                                            &o->sc->account, o->now, out, e)))
            return err;
    } else if (o->sc && err != KP_ERR_NOT_FOUND) {
        return people_storage(o->st, err, e);
    }
    kp_family_member m;
    err = o->st->ops->people->member_get(o->st, row->id, &m);
    kp_buf_puts(out, ",\"family\":");
    if (err == KP_OK) {
        kp_family f;
        kp_err ferr = o->st->ops->people->family_get(o->st, m.family_id, 0, &f);
        kp_buf_puts(out, "{");
        kp_buf_json_kv_i64(out, "id", m.family_id, false);
        kp_buf_puts(out, ferr == KP_OK && f.owner_id == row->id ? ",\"owner\":true"
                                                                : ",\"owner\":false");
        kp_buf_puts(out, m.may_spend ? ",\"may_spend\":true}" : ",\"may_spend\":false}");
    } else if (err == KP_ERR_NOT_FOUND) {
        kp_buf_puts(out, "null");
    } else {
        return people_storage(o->st, err, e);
    }
    people_time_kv(out, "created_at", row->created_at);
    people_time_kv(out, "updated_at", row->updated_at);
    people_time_kv(out, "erased_at", row->erased_at);
    kp_buf_puts(out, "}");
    return out->failed ? kp_error_set(e, KP_ERR_NOMEM, "", "the answer is too large") : KP_OK;
}

/* ---- registration */

/* Canonical JSON of an attributes object (sorted keys, compact). */
static char *attributes_text(json_t *attrs)
{
    return json_dumps(attrs, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
}

/* WELCOME for a card registered to a new customer, key "welcome:<customer
 * id>", after the registration's grants: the balance they made. */
static kp_err welcome_notify(kp_office *o, const kp_customer_row *row, const char *card,
                             kp_error *e)
{
    kp_notify_figures f;
    memset(&f, 0, sizeof f);
    if (o->sc) {
        kp_err err = o->st->ops->account_load(o->st, row->account_id, &o->sc->account);
        if (err) return people_storage(o->st, err, e);
        kp_notify_figures_after(&o->sc->account, NULL, o->now, &f);
    }
    char key[KP_NOTIFY_KEY_MAX];
    snprintf(key, sizeof key, "welcome:%lld", (long long)row->id);
    return kp_notify_emit(o->st, KP_NOTIFY_WELCOME, key, row->account_id, row->id, card, 0, o->now,
                          &f, e);
}

kp_err kp_customer_register(kp_office *o, const char *body, size_t len, kp_buf *out,
                            kp_field_errors *fe, kp_error *e)
{
    kp_err err = kp_office_require(o, KP_PERM_CUSTOMER_REGISTER, e);
    if (err == KP_OK) err = people_need_key(o, e);
    if (err) return err;
    json_t *root = people_json_load(body, len, e);
    if (root == NULL) return KP_ERR_INVALID;
    customer_input in;
    kp_customer_row *row = calloc(1, sizeof *row);
    char *attrs = NULL;
    if (row == NULL) {
        err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
        goto out;
    }
    kp_error_clear(e);
    parse_input(o, root, true, &in, fe, e);
    json_t *no_attrs = json_object();
    check_attributes(o->policy, in.has_attributes ? in.attributes : no_attrs, fe, e);
    json_decref(no_attrs);
    if (e->code != KP_OK) {
        err = e->code;
        goto out;
    }
    const kp_people_ops *pp = o->st->ops->people;
    kp_card_info card;
    err = pp->card_info_get(o->st, in.card, &card);
    if (err == KP_ERR_NOT_FOUND) {
        err = kp_card_unknown(in.card, "card", e);
        goto out;
    }
    if (err) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    if (card.state == KP_CARD_BLOCKED || card.state == KP_CARD_REPLACED) {
        err = kp_error_setr(e, KP_ERR_CONFLICT, KP_REASON_CARD_CONFLICT, "card",
                            "card %s is %s and cannot be registered", in.card,
                            kp_card_state_name(card.state));
        goto out;
    }
    if (card.registered || card.customer_id) {
        err = kp_error_setr(e, KP_ERR_CONFLICT, KP_REASON_CARD_CONFLICT, "card",
                            "card %s is already registered to a customer", in.card);
        goto out;
    }

    if (in.has_attributes) {
        attrs = attributes_text(in.attributes);
    } else {
        json_t *none = json_object();
        attrs = attributes_text(none);
        json_decref(none);
    }
    if (attrs == NULL || strlen(attrs) > KP_ATTRS_JSON_MAX) {
        err = kp_error_set(e, KP_ERR_INVALID, "attributes", "must be at most %d bytes as JSON",
                           KP_ATTRS_JSON_MAX);
        goto out;
    }
    row->account_id = card.account_id;
    row->state = KP_CUSTOMER_ACTIVE;
    row->created_at = row->updated_at = o->now;
    if ((err = seal_input(o, &in, attrs, row))) {
        err = kp_error_set(e, err, "", "personal data could not be sealed");
        goto out;
    }
    if ((err = check_contacts(o, row, &in, 0, e))) goto out;
    if ((err = pp->customer_insert(o->st, row))) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    /* A sign-up is the customer from here on: the card's event and the
     * audit entry name them ("customer:<id>"). */
    if (o->actor.kind == KP_ACTOR_CUSTOMER && o->actor.signup)
        kp_office_act_as_customer(o, row->id);
    kp_card_state from = card.state;
    card.state = KP_CARD_ACTIVE;
    card.registered = true;
    card.customer_id = row->id;
    if ((err = pp->card_info_put(o->st, &card, o->now))) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    if ((err = kp_card_event_record(o, card.number, from, KP_CARD_ACTIVE, "registered", "", e)))
        goto out;
    /* The record is the one source of truth of the birthday from now on: an
     * index `kopilka birthday set` left on the fresh card is replaced, or
     * dropped when the registration gives no birthday. */
    customer_input birthday_only = {.has_birthday = true};
    if (in.has_birthday) birthday_only = in;
    if ((err = set_birthday_index(o, &birthday_only, row->account_id, e))) goto out;
    /* The program's "registration" grants (a welcome bonus), in the same
     * transaction; their once-keys keep them to one per customer. */
    kp_buf granted;
    kp_buf_init(&granted, 64 * 1024);
    if (o->program && o->sc) {
        kp_grant_ctx g = {.card = card.number, .store = "", .event_id = "", .token = "",
                          .at = o->now};
        int64_t total = 0;
        err = kp_service_trigger(o->st, o->program, row->account_id, "registration", &g, o->sc,
                                 &granted, &total, e);
        if (err) {
            kp_buf_release(&granted);
            goto out;
        }
    }
    if ((err = welcome_notify(o, row, card.number, e))) {
        kp_buf_release(&granted);
        goto out;
    }
    char target[48];
    snprintf(target, sizeof target, "customer:%lld", (long long)row->id);
    if ((err = kp_office_audit(o, "customer.register", target, "card=%s consent_version=%s",
                               card.number, in.consent_version))) {
        kp_buf_release(&granted);
        err = people_storage(o->st, err, e);
        goto out;
    }
    kp_buf_reset(out);
    err = kp_customer_json(o, row, out, e);
    if (err == KP_OK && granted.len > 0 && out->len > 0 && out->data[out->len - 1] == '}') {
        out->len--; /* the answer object stays open for the grants */
        kp_buf_append(out, granted.data, granted.len);
        kp_buf_puts(out, "}");
    }
    kp_buf_release(&granted);
out:
    free(attrs);
    free(row);
    json_decref(root);
    return err;
}

static kp_err load_customer(kp_office *o, int64_t id, kp_customer_row *row, kp_error *e)
{
    kp_err err = o->st->ops->people->customer_get(o->st, id, row);
    if (err == KP_ERR_NOT_FOUND)
        return kp_error_set(e, KP_ERR_NOT_FOUND, "customer", "no customer %lld", (long long)id);
    return err ? people_storage(o->st, err, e) : KP_OK;
}

kp_err kp_customer_get(kp_office *o, int64_t id, kp_buf *out, kp_error *e)
{
    kp_err err = kp_office_require_customer(o, KP_PERM_CUSTOMER_READ, id, e);
    if (err) return err;
    kp_customer_row *row = malloc(sizeof *row);
    if (row == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    if ((err = load_customer(o, id, row, e)) == KP_OK) {
        kp_buf_reset(out);
        err = kp_customer_json(o, row, out, e);
    }
    free(row);
    return err;
}

/* ---- search */

kp_err kp_customer_search(kp_office *o, const char *body, size_t len, kp_buf *out, kp_error *e)
{
    kp_err err = kp_office_require_back_office(o, KP_PERM_CUSTOMER_READ, e);
    if (err == KP_OK) err = people_need_key(o, e);
    if (err) return err;
    json_t *root = people_json_load(body, len, e);
    if (root == NULL) return KP_ERR_INVALID;
    static const char *const keys[] = {"card", "phone", "email", "name", NULL};
    char card[KP_STR_MAX], phone[64], email[KP_EMAIL_MAX + 1], name[KP_NAME_MAX + 1];
    const kp_people_ops *pp = o->st->ops->people;
    int64_t ids[50];
    size_t n = 0;
    const char *by = "";
    kp_customer_row *row = NULL;
    if ((err = people_json_keys(root, keys, e)) ||
        (err = people_json_str(root, "card", false, card, KP_STR_MAX - 1, e)) ||
        (err = people_json_str(root, "phone", false, phone, 63, e)) ||
        (err = people_json_str(root, "email", false, email, KP_EMAIL_MAX, e)) ||
        (err = people_json_str(root, "name", false, name, KP_NAME_MAX, e)))
        goto out;
    int given = (card[0] != 0) + (phone[0] != 0) + (email[0] != 0) + (name[0] != 0);
    if (given != 1) {
        err = kp_error_set(e, KP_ERR_INVALID, "",
                           "give exactly one of card, phone, email, name to search by");
        goto out;
    }
    const char *why;
    if (card[0]) {
        by = "card";
        kp_card_info c;
        err = pp->card_info_get(o->st, card, &c);
        /* Not found: say so when the number's check digit is wrong. */
        if (err == KP_ERR_NOT_FOUND && kp_card_number_check(card, "card", e)) {
            err = KP_ERR_INVALID;
            goto out;
        }
        if (err == KP_OK && c.customer_id)
            ids[n++] = c.customer_id;
        else if (err == KP_OK)
            err = pp->customers_of_account(o->st, c.account_id, ids, 50, &n);
        if (err == KP_ERR_NOT_FOUND) err = KP_OK;
    } else if (phone[0]) {
        by = "phone";
        char norm[KP_PHONE_MAX + 1];
        uint8_t ix[32];
        if (!kp_norm_phone_in(phone, kp_phone_region_of(o->program), norm, &why)) {
            err = kp_error_set(e, KP_ERR_INVALID, "phone", "%s", why);
            goto out;
        }
        kp_pii_index(o->pii, KP_PII_PHONE, norm, ix);
        err = pp->customer_by_index(o->st, KP_CONTACT_PHONE, ix, &ids[0]);
        if (err == KP_OK)
            n = 1;
        else if (err == KP_ERR_NOT_FOUND)
            err = KP_OK;
    } else if (email[0]) {
        by = "email";
        char norm[KP_EMAIL_MAX + 1];
        uint8_t ix[32];
        if (!kp_norm_email(email, norm, &why)) {
            err = kp_error_set(e, KP_ERR_INVALID, "email", "%s", why);
            goto out;
        }
        kp_pii_index(o->pii, KP_PII_EMAIL, norm, ix);
        err = pp->customer_by_index(o->st, KP_CONTACT_EMAIL, ix, &ids[0]);
        if (err == KP_OK)
            n = 1;
        else if (err == KP_ERR_NOT_FOUND)
            err = KP_OK;
    } else {
        by = "name";
        char norm[KP_NAME_MAX + 1];
        char words[KP_NAME_WORDS_MAX][KP_NAME_MAX + 1];
        uint8_t ix[KP_NAME_WORDS_MAX][32];
        if (!kp_norm_name(name, norm, &why)) {
            err = kp_error_set(e, KP_ERR_INVALID, "name", "%s", why);
            goto out;
        }
        size_t nw = kp_name_words(norm, words);
        for (size_t i = 0; i < nw; i++) kp_pii_index(o->pii, KP_PII_NAME_WORD, words[i], ix[i]);
        err = nw ? pp->customers_by_name(o->st, (const uint8_t(*)[32])ix, nw, ids, 50, &n) : KP_OK;
    }
    if (err) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    row = malloc(sizeof *row);
    if (row == NULL) {
        err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
        goto out;
    }
    kp_buf_reset(out);
    kp_buf_puts(out, "{\"customers\":[");
    size_t shown = 0;
    for (size_t i = 0; i < n && err == KP_OK; i++) {
        if ((err = load_customer(o, ids[i], row, e))) break;
        if (row->state == KP_CUSTOMER_ERASED) continue;
        if (shown++) kp_buf_puts(out, ",");
        err = kp_customer_json(o, row, out, e);
    }
    kp_buf_puts(out, "]}");
    if (err == KP_OK &&
        (err = kp_office_audit(o, "customer.search", "customers", "by=%s results=%zu", by, shown)))
        err = people_storage(o->st, err, e);
out:
    free(row);
    json_decref(root);
    return err;
}

/* ---- edit */

/* What a customer may change of themselves in the cabinet: the name, the
 * e-mail, and the birthday while none is set (it drives the birthday
 * grants, so a set one is corrected by staff); the phone is the login and
 * is changed by staff too. Every refusal names its field. */
static kp_err self_edit_check(json_t *root, const kp_customer_row *row, kp_field_errors *fe,
                              kp_error *e)
{
    const char *key;
    json_t *v;
    kp_error_clear(e);
    json_object_foreach(root, key, v)
    {
        char field[64];
        snprintf(field, sizeof field, "%.60s", key);
        if (strcmp(key, "phone") == 0)
            people_field_error(fe, e, KP_ERR_INVALID, "phone",
                               "cannot be changed here: it is how you log in; call the shop to "
                               "change it");
        else if (strcmp(key, "birthday") == 0 && row->birthday.len > 0)
            people_field_error(fe, e, KP_ERR_INVALID, "birthday",
                               "is set already and cannot be changed here: it decides the "
                               "birthday bonuses; call the shop to correct it");
        else if (strcmp(key, "full_name") && strcmp(key, "email") && strcmp(key, "birthday"))
            people_field_error(fe, e, KP_ERR_INVALID, field,
                               "cannot be changed here (allowed: full_name, email, birthday)");
    }
    return e->code;
}

kp_err kp_customer_update(kp_office *o, int64_t id, const char *body, size_t len, kp_buf *out,
                          kp_field_errors *fe, kp_error *e)
{
    kp_err err = kp_office_require_customer(o, KP_PERM_CUSTOMER_EDIT, id, e);
    if (err == KP_OK) err = people_need_key(o, e);
    if (err) return err;
    json_t *root = people_json_load(body, len, e);
    if (root == NULL) return KP_ERR_INVALID;
    kp_customer_row *row = malloc(sizeof *row);
    char *attrs_text = NULL;
    json_t *merged = NULL;
    if (row == NULL) {
        err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
        goto out;
    }
    if ((err = load_customer(o, id, row, e))) goto out;
    if (row->state == KP_CUSTOMER_ERASED) {
        err = kp_error_set(e, KP_ERR_CONFLICT, "customer",
                           "customer %lld was erased; register the card again instead",
                           (long long)id);
        goto out;
    }
    if (kp_office_is_self(o) && (err = self_edit_check(root, row, fe, e))) goto out;
    customer_input in;
    kp_error_clear(e);
    parse_input(o, root, false, &in, fe, e);
    if (in.has_attributes || json_object_get(root, "attributes")) {
        /* Attributes merge: a key with a value sets it, null removes it. */
        char current[KP_ATTRS_JSON_MAX + 1];
        if (!open_field(o, KP_PII_ATTRIBUTES, row->attributes, row->attributes_len, current,
                        sizeof current)) {
            err = kp_error_set(e, KP_ERR_IO, "key",
                               "customer %lld's attributes cannot be opened with the key file "
                               "DB.key: it was sealed with another key; put back the key file "
                               "it was written with",
                               (long long)id);
            goto out;
        }
        merged = current[0] ? json_loads(current, 0, NULL) : json_object();
        if (merged == NULL) merged = json_object();
        if (in.has_attributes) {
            const char *k;
            json_t *v;
            json_object_foreach(in.attributes, k, v)
            {
                if (json_is_null(v))
                    json_object_del(merged, k);
                else
                    json_object_set(merged, k, v);
            }
        }
        check_attributes(o->policy, merged, fe, e);
        attrs_text = attributes_text(merged);
    }
    if (e->code != KP_OK) {
        err = e->code;
        goto out;
    }
    if (attrs_text && strlen(attrs_text) > KP_ATTRS_JSON_MAX) {
        err = kp_error_set(e, KP_ERR_INVALID, "attributes", "must be at most %d bytes as JSON",
                           KP_ATTRS_JSON_MAX);
        goto out;
    }
    if (!in.has_name) {
        /* The store rewrites the name's index with every update (a row read
         * back has none): index the stored name again, or an edit of the
         * phone alone would make the customer unfindable by name. */
        char name[KP_NAME_MAX + 1], words[KP_NAME_WORDS_MAX][KP_NAME_MAX + 1];
        if (!open_field(o, KP_PII_NAME, row->name.data, row->name.len, name, sizeof name)) {
            err = kp_error_set(e, KP_ERR_INTERNAL, "key", "the name cannot be opened");
            goto out;
        }
        row->n_name_ix = kp_name_words(name, words);
        for (size_t i = 0; i < row->n_name_ix; i++)
            kp_pii_index(o->pii, KP_PII_NAME_WORD, words[i], row->name_ix[i]);
        sodium_memzero(name, sizeof name);
    }
    if ((err = seal_input(o, &in, attrs_text, row))) {
        err = kp_error_set(e, err, "", "personal data could not be sealed");
        goto out;
    }
    if ((err = check_contacts(o, row, &in, row->id, e))) goto out;
    row->updated_at = o->now;
    if ((err = o->st->ops->people->customer_update(o->st, row))) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    if ((err = set_birthday_index(o, &in, row->account_id, e))) goto out;
    char fields[160] = "";
    size_t n = 0;
    const char *names[] = {"full_name", "phone",   "email",     "birthday",
                           "receipt",   "consent", "attributes"};
    bool given[] = {in.has_name,    in.has_phone,   in.has_email,      in.has_birthday,
                    in.has_receipt, in.has_consent, attrs_text != NULL};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (given[i])
            n += (size_t)snprintf(fields + n, sizeof fields - n, "%s%s", n ? "," : "", names[i]);
    char target[48];
    snprintf(target, sizeof target, "customer:%lld", (long long)id);
    if ((err = kp_office_audit(o, "customer.edit", target, "fields=%s", fields))) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    kp_buf_reset(out);
    err = kp_customer_json(o, row, out, e);
out:
    free(attrs_text);
    json_decref(merged);
    free(row);
    json_decref(root);
    return err;
}

/* ---- erase */

kp_err kp_customer_erase(kp_office *o, int64_t id, const char *body, size_t len, kp_buf *out,
                         kp_error *e)
{
    kp_err err = kp_office_require_customer(o, KP_PERM_CUSTOMER_ERASE, id, e);
    if (err) return err;
    json_t *root = people_json_load(body, len, e);
    if (root == NULL) return KP_ERR_INVALID;
    static const char *const keys[] = {"reason", NULL};
    char reason[KP_REASON_MAX];
    kp_customer_row *row = malloc(sizeof *row);
    kp_card_info *cards = NULL;
    const kp_people_ops *pp = o->st->ops->people;
    if (row == NULL) {
        err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
        goto out;
    }
    if ((err = people_json_keys(root, keys, e)) ||
        (err = people_json_str(root, "reason", true, reason, KP_REASON_MAX - 1, e)) ||
        (err = load_customer(o, id, row, e)))
        goto out;
    if (row->state == KP_CUSTOMER_ERASED) {
        err = kp_error_set(e, KP_ERR_CONFLICT, "customer", "customer %lld is already erased",
                           (long long)id);
        goto out;
    }
    if ((err = people_family_detach(o, id, e))) goto out;
    if ((err = load_customer(o, id, row, e))) goto out; /* the account may have changed */
    /* Every card, however many: an erase that left one active would keep
     * the customer usable after they asked to be forgotten. */
    size_t n_cards = 0;
    if ((err = people_cards_all(o->st, id, &cards, &n_cards, e))) goto out;
    for (size_t i = 0; i < n_cards; i++) {
        kp_card_info *c = &cards[i];
        if (c->state == KP_CARD_BLOCKED || c->state == KP_CARD_REPLACED) continue;
        kp_card_state from = c->state;
        c->state = KP_CARD_BLOCKED;
        snprintf(c->reason, sizeof c->reason, "customer erased");
        if ((err = pp->card_info_put(o->st, c, o->now))) {
            err = people_storage(o->st, err, e);
            goto out;
        }
        if ((err = kp_card_event_record(o, c->number, from, KP_CARD_BLOCKED, "customer erased", "",
                                        e)))
            goto out;
    }
    /* The invitations they made, and those to their phone, go too: they
     * hold a phone and its index. */
    if ((err = pp->invitations_forget(o->st, id, row->has_phone_ix ? row->phone_ix : NULL))) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    int64_t account_id = row->account_id;
    kp_time created = row->created_at, consent_at = row->consent_at;
    char consent_version[64];
    snprintf(consent_version, sizeof consent_version, "%s", row->consent_version);
    memset(row, 0, sizeof *row);
    row->id = id;
    row->account_id = account_id;
    row->state = KP_CUSTOMER_ERASED;
    row->created_at = created;
    row->updated_at = row->erased_at = o->now;
    /* The consent record (when, which text) is kept as proof; it holds no
     * personal data. */
    row->consent_at = consent_at;
    snprintf(row->consent_version, sizeof row->consent_version, "%s", consent_version);
    /* The outbox forgets them too: the texts of their messages are
     * dropped, those not sent yet cancelled. */
    int64_t messages = 0;
    /* Their cabinet closes: every session of theirs ends with the erase. */
    if ((err = pp->customer_update(o->st, row)) || (err = pp->birthday_forget(o->st, account_id)) ||
        (err = o->st->ops->notify->messages_erase(o->st, id, &messages)) ||
        (err = o->st->ops->notify->customer_sessions_end(o->st, id))) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    char target[48];
    snprintf(target, sizeof target, "customer:%lld", (long long)id);
    if ((err = kp_office_audit(o, "customer.erase", target,
                               "cards_blocked=%zu messages_erased=%lld reason=%s", n_cards,
                               (long long)messages, reason))) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    kp_buf_reset(out);
    err = kp_customer_json(o, row, out, e);
out:
    free(cards);
    free(row);
    json_decref(root);
    return err;
}

/* ---- more cards for one customer */

kp_err kp_customer_add_card(kp_office *o, int64_t id, const char *body, size_t len, kp_buf *out,
                            kp_error *e)
{
    kp_err err = kp_office_require_customer(o, KP_PERM_CUSTOMER_EDIT, id, e);
    if (err) return err;
    json_t *root = people_json_load(body, len, e);
    if (root == NULL) return KP_ERR_INVALID;
    static const char *const keys[] = {"card", NULL};
    char number[KP_STR_MAX];
    const kp_people_ops *pp = o->st->ops->people;
    kp_customer_row *row = malloc(sizeof *row);
    if (row == NULL) {
        err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
        goto out;
    }
    if ((err = people_json_keys(root, keys, e)) ||
        (err = people_json_str(root, "card", true, number, KP_STR_MAX - 1, e)) ||
        (err = load_customer(o, id, row, e)))
        goto out;
    if (row->state == KP_CUSTOMER_ERASED) {
        err =
            kp_error_set(e, KP_ERR_CONFLICT, "customer", "customer %lld was erased", (long long)id);
        goto out;
    }
    kp_card_info card;
    bool empty = false;
    err = pp->card_info_get(o->st, number, &card);
    if (err == KP_ERR_NOT_FOUND) {
        err =
            kp_card_unknown(number, "card", e);
        goto out;
    }
    if (err == KP_OK) err = pp->account_is_empty(o->st, card.account_id, &empty);
    if (err) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    if (card.state != KP_CARD_ISSUED || card.registered || card.customer_id || !empty) {
        err = kp_error_setr(e, KP_ERR_CONFLICT, KP_REASON_CARD_CONFLICT, "card",
                            "card %s is not a fresh card (it is %s%s); only an issued, unused "
                            "card can be added",
                            number, kp_card_state_name(card.state),
                            empty ? "" : " and has operations");
        goto out;
    }
    card.account_id = row->account_id;
    card.state = KP_CARD_ACTIVE;
    card.registered = true;
    card.customer_id = id;
    if ((err = pp->card_info_put(o->st, &card, o->now))) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    if ((err = kp_card_event_record(o, number, KP_CARD_ISSUED, KP_CARD_ACTIVE,
                                    "added to a customer", "", e)))
        goto out;
    char target[48];
    snprintf(target, sizeof target, "customer:%lld", (long long)id);
    if ((err = kp_office_audit(o, "customer.add_card", target, "card=%s", number))) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    kp_buf_reset(out);
    err = kp_customer_json(o, row, out, e);
out:
    free(row);
    json_decref(root);
    return err;
}

/* ---- history with who and why */

kp_err people_history_items(kp_office *o, int64_t account_id, int64_t before, size_t limit,
                            bool comma, kp_buf *out, size_t *n, int64_t *last_op_id, kp_error *e)
{
    *n = 0;
    *last_op_id = 0;
    kp_history_entry *h = calloc(limit, sizeof *h);
    if (h == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    kp_err err = o->st->ops->people->history_cards(o->st, account_id, before, h, limit, n);
    if (err) err = people_storage(o->st, err, e);
    for (size_t i = 0; i < *n && err == KP_OK; i++) {
        kp_card_info c;
        int64_t who = 0;
        if (h[i].card[0] && o->st->ops->people->card_info_get(o->st, h[i].card, &c) == KP_OK)
            who = c.customer_id;
        kp_buf_puts(out, comma || i ? ",{" : "{");
        kp_buf_json_kv_i64(out, "op_id", h[i].op_id, false);
        kp_buf_json_kv_str(out, "type", kp_op_type_name(h[i].type), true);
        kp_buf_json_kv_str(out, "card", h[i].card, true);
        kp_buf_puts(out, ",\"customer\":");
        if (who)
            kp_buf_i64(out, who);
        else
            kp_buf_puts(out, "null");
        kp_buf_json_kv_str(out, "store", h[i].store, true);
        kp_buf_json_kv_str(out, "receipt", h[i].receipt, true);
        people_time_kv(out, "at", h[i].at);
        kp_buf_json_kv_i64(out, "points", h[i].points, true);
        kp_buf_json_kv_i64(out, "earned", h[i].earned, true);
        kp_buf_json_kv_i64(out, "spent", h[i].burned, true);
        kp_buf_json_kv_i64(out, "amount", h[i].amount_minor, true);
        kp_buf_puts(out, ",\"explain\":");
        err = kp_service_explain(o->st, h[i].type, h[i].store, h[i].receipt, h[i].points, o->sc,
                                 out, e);
        kp_buf_puts(out, "}");
        *last_op_id = h[i].op_id;
    }
    free(h);
    if (err == KP_OK && out->failed)
        err = kp_error_set(e, KP_ERR_NOMEM, "", "the answer is too large");
    return err;
}

kp_err kp_customer_history(kp_office *o, int64_t id, int64_t before, int64_t limit, kp_buf *out,
                           kp_error *e)
{
    kp_err err = kp_office_require_customer(o, KP_PERM_CUSTOMER_READ, id, e);
    if (err) return err;
    if (before < 0)
        return kp_error_set(e, KP_ERR_INVALID, "before", "must be an operation id (>= 0)");
    if (limit < 1 || limit > KP_HISTORY_PAGE_MAX)
        return kp_error_set(e, KP_ERR_INVALID, "limit", "must be from 1 to %d",
                            KP_HISTORY_PAGE_MAX);
    kp_customer_row *row = malloc(sizeof *row);
    if (row == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    size_t n = 0;
    int64_t last = 0;
    if ((err = load_customer(o, id, row, e)) == KP_OK) {
        kp_buf_reset(out);
        kp_buf_puts(out, "{");
        kp_buf_json_kv_i64(out, "customer", id, false);
        kp_buf_json_kv_i64(out, "account_id", row->account_id, true);
        kp_buf_puts(out, ",\"history\":[");
        err = people_history_items(o, row->account_id, before, (size_t)limit, false, out, &n,
                                   &last, e);
        /* A full page may have more after it; a short one is the last. */
        kp_buf_puts(out, "],\"next_before\":");
        if (n == (size_t)limit && n > 0)
            kp_buf_i64(out, last);
        else
            kp_buf_puts(out, "null");
        kp_buf_puts(out, "}");
    }
    free(row);
    return err;
}
