/*
 * people_int.h: internals shared by the back-office files of src/service
 * (customers.c, cards.c, staff.c, family.c, import.c): reading request
 * bodies with jansson, and small answer helpers. Not part of people.h, so
 * the HTTP layer never sees jansson.
 */
#ifndef KOPILKA_PEOPLE_INT_H
#define KOPILKA_PEOPLE_INT_H

#include <jansson.h>

#include "people.h"

/* Parses a request body that must be a JSON object (depth-limited); NULL
 * with e set otherwise. An empty body is an empty object. */
json_t *people_json_load(const char *body, size_t len, kp_error *e);
/* Refuses a key not in `allowed` (NULL-terminated). */
kp_err people_json_keys(json_t *obj, const char *const *allowed, kp_error *e);
/* A string field: absent or null = "" (KP_OK unless required); otherwise at
 * most max bytes, no control characters. */
kp_err people_json_str(json_t *obj, const char *key, bool required, char *out, size_t max,
                       kp_error *e);
/* An integer field from min to max; *present says whether it was given. */
kp_err people_json_int(json_t *obj, const char *key, bool required, int64_t min, int64_t max,
                       int64_t *out, kp_error *e);
kp_err people_json_bool(json_t *obj, const char *key, bool *out, bool *present, kp_error *e);

/* Adds a field error to fe (when not NULL) and to e when it is the first. */
void people_field_error(kp_field_errors *fe, kp_error *e, kp_err code, const char *field,
                        const char *message);

/* Needs the key file; KP_ERR_IO with a clear message when it is missing. */
kp_err people_need_key(const kp_office *o, kp_error *e);

/* Writes the date of `days` since the epoch as "YYYY-MM-DD" into out[11]. */
void people_day_format(kp_time t, char out[11]);

/* The lot a credit of `kind` (NULL = the program's purchase kind) gets now:
 * active at once, expiring by the kind's validity. */
void people_credit_lot(const kp_office *o, const char *kind, kp_lot *lot);

/* Loads the account of a card that can move points (not blocked/replaced). */
kp_err people_card_account(kp_office *o, const char *number, kp_card_info *card, kp_error *e);

/* Every card of a customer, however many (no silent cap): *cards is
 * malloc'd (the caller frees it, also on failure it is NULL), *n their count.
 * KP_ERR_LIMIT past KP_CARDS_PER_CUSTOMER_MAX, which no real customer
 * reaches, rather than growth without a bound. */
enum { KP_CARDS_PER_CUSTOMER_MAX = 1 << 20 };

/* Members of one family, owner included; a join past it is refused. */
enum { KP_FAMILY_MEMBERS_MAX = 64 };
kp_err people_cards_all(kp_store *st, int64_t customer_id, kp_card_info **cards, size_t *n,
                        kp_error *e);

/* Adds customer cid to family family_id (family.c): their points move into
 * the pot, their cards point at it; answers the family. The caller has
 * checked who may ask (kp_family_join: staff; an accepted invitation: the
 * invitee). */
kp_err people_family_join(kp_office *o, int64_t family_id, int64_t cid, bool may_spend,
                          kp_buf *out, kp_error *e);

/* Appends the items of one page of an account's history (customers.c),
 * each as kp_customer_history gives them, with a comma before the first
 * when `comma`; *n gets how many, *last_op_id the last one's op id. */
kp_err people_history_items(kp_office *o, int64_t account_id, int64_t before, size_t limit,
                            bool comma, kp_buf *out, size_t *n, int64_t *last_op_id, kp_error *e);

/* Takes a customer out of their family before an erase (family.c): a
 * member leaves; an owner whose family has other members is refused
 * (KP_ERR_CONFLICT); an owner alone closes the family. */
kp_err people_family_detach(kp_office *o, int64_t customer_id, kp_error *e);

#endif
