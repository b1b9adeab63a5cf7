/*
 * office.h: the back office's and the customers' notification operations
 * (src/notify/office.c), typed, over the store; the HTTP routes
 * (src/server/http_notify.c) parse requests into these and answer what
 * they write. Each runs on behalf of a kp_office's actor (service/people.h):
 * it checks the permission first (notify.read, notify.manage, and
 * customer.read to see a message's recipient and text) and audits every
 * change with kp_office_audit, never with personal data in the detail.
 * Writes run inside the caller's transaction (the server's writer).
 * Answers are JSON objects written into `out` (reset first).
 */
#ifndef KOPILKA_NOTIFY_OFFICE_H
#define KOPILKA_NOTIFY_OFFICE_H

#include "notify/notify.h"
#include "service/people.h"

enum {
    KP_MESSAGES_PAGE_MAX = 500,    /* messages a list answers at most */
    KP_ENDPOINTS_MAX = 100,        /* webhook endpoints a database holds */
    KP_TEMPLATES_STORED_MAX = 512, /* stored templates (kinds x channels x languages) */
    KP_CAMPAIGN_CUSTOMERS_MAX = 10000, /* customers one campaign request names */
    KP_LOGIN_CODE_DIGITS = 6,
    KP_CUSTOMER_SESSION_TTL_SECONDS = 7 * 24 * 3600,
    KP_CUSTOMER_TOKEN_LEN = 68,    /* "kpc_" + 64 hex digits */
};

/* ---- messages (notify.read) */

/* Newest first, id < before (0 = from the newest), at most limit
 * (1..KP_MESSAGES_PAGE_MAX): {"messages":[...], "next_before"}. A filter on
 * a customer needs customer.read too. With `webhooks_pending` (the server
 * sends webhooks: their first attempt has no row yet, notifier.c), the
 * first page begins with the webhook deliveries of the pending events
 * (derived: each active endpoint subscribed to the event's kind; "id"
 * null, pending, 0 attempts), at most half the page, oldest event first. */
kp_err kp_office_messages(kp_office *o, const kp_message_filter *f, bool webhooks_pending,
                          int64_t before, int64_t limit,
                          kp_buf *out, kp_error *e);
/* One message: state, attempts, next attempt, last error, provider id; with
 * customer.read (and the key) also its recipient and texts, opened (the
 * caller then audits the read: *opened). */
kp_err kp_office_message(kp_office *o, const kp_notify_env *env, int64_t id, kp_buf *out,
                         bool *opened, kp_error *e);
/* (write, notify.manage) A dead message again, or a sent webhook delivery
 * replayed: pending, due now. A pending one is KP_ERR_CONFLICT, so is a
 * sent e-mail or SMS (it is not sent twice) and a cancelled one. */
kp_err kp_office_message_retry(kp_office *o, int64_t id, kp_buf *out, kp_error *e);

/* ---- webhook endpoints */

typedef struct kp_endpoint_req {
    bool has_url, has_description, has_kinds, has_active;
    char url[KP_URL_MAX];
    char description[KP_STR_MAX];
    uint32_t kinds; /* bit (1u << kind); 0 = every kind */
    bool active;
} kp_endpoint_req;

/* Checks a URL for an endpoint: http:// or https://, a host, no spaces or
 * control characters, shorter than KP_URL_MAX. */
bool kp_endpoint_url_ok(const char *url, const char **why);
kp_err kp_office_endpoints(kp_office *o, kp_buf *out, kp_error *e);
kp_err kp_office_endpoint(kp_office *o, int64_t id, kp_buf *out, kp_error *e);
/* (write, notify.manage) url required; answers the endpoint with its
 * secret ("whsec_...", sealed in the store: shown this once). */
kp_err kp_office_endpoint_create(kp_office *o, const kp_endpoint_req *req, kp_buf *out,
                                 kp_error *e);
kp_err kp_office_endpoint_update(kp_office *o, int64_t id, const kp_endpoint_req *req, kp_buf *out,
                                 kp_error *e);
/* (write, notify.manage) A new secret, shown once; the old one signs no more. */
kp_err kp_office_endpoint_rotate(kp_office *o, int64_t id, kp_buf *out, kp_error *e);

/* ---- templates */

/* Every kind x channel (email, sms) x language: the built-in ones and the
 * stored ones ("source": "stored" | "builtin"). */
kp_err kp_office_templates(kp_office *o, kp_buf *out, kp_error *e);
/* The template in use (stored, else built-in); KP_ERR_NOT_FOUND for none. */
kp_err kp_office_template(kp_office *o, kp_notify_kind kind, kp_channel channel,
                          const char *language, kp_buf *out, kp_error *e);
/* Compiles each part for its kind ("subject", "text", "html": the field
 * named, with line:column and the allowed fields); KP_ERR_INVALID. */
kp_err kp_office_template_check(kp_notify_kind kind, kp_channel channel, const char *subject,
                                const char *text, const char *html, kp_error *e);
/* (write, notify.manage) Compiled first; stored as t (actor and time set). */
kp_err kp_office_template_put(kp_office *o, kp_template_row *t, kp_buf *out, kp_error *e);
kp_err kp_office_template_delete(kp_office *o, kp_notify_kind kind, kp_channel channel,
                                 const char *language, kp_buf *out, kp_error *e);
/* Renders with sample figures: the given texts (NULL: the template in use). */
kp_err kp_office_template_preview(kp_office *o, kp_notify_kind kind, kp_channel channel,
                                  const char *language, const char *subject, const char *text,
                                  const char *html, kp_buf *out, kp_error *e);

/* ---- a customer's preferences (customer.read to see, customer.edit to change) */

typedef struct kp_prefs_req {
    bool has_language, has_utc_offset, has_transactional, has_marketing, has_consent;
    char language[KP_LANGUAGE_MAX];
    bool clear_utc_offset;            /* "utc_offset": null */
    int32_t utc_offset_minutes;
    uint32_t transactional, marketing; /* bit sets of 1u << kp_channel */
    bool consent_given;
    char consent_version[KP_CONSENT_TEXT_MAX];
} kp_prefs_req;

/* Parses "+03:00", "-05:30", "Z" into minutes (-14:00..+14:00, minutes
 * 00..59, two digits each). Anything else: KP_ERR_INVALID naming
 * "utc_offset" with the forms allowed. */
kp_err kp_utc_offset_parse(const char *text, int32_t *minutes, kp_error *e);
kp_err kp_office_prefs(kp_office *o, int64_t customer_id, kp_buf *out, kp_error *e);
/* (write) Withdrawing consent (or taking a channel off marketing) cancels
 * the pending marketing messages of those channels. */
kp_err kp_office_prefs_put(kp_office *o, int64_t customer_id, const kp_prefs_req *req, kp_buf *out,
                           kp_error *e);
/* The preferences in effect (stored, else the policy's defaults) as JSON
 * members (no braces), for the answer above and GET /v1/me. */
kp_err kp_prefs_json(kp_office *o, int64_t customer_id, kp_buf *out, kp_error *e);

/* ---- unsubscribe and SMS replies (public; the actor is the customer) */

/* (write) A valid link's channel taken off the customer's marketing, its
 * pending marketing messages cancelled. KP_ERR_NOT_FOUND for a token that
 * does not check. *channel gets the link's channel. */
kp_err kp_office_unsubscribe(kp_office *o, const kp_notify_env *env, const char *token,
                             kp_channel *channel, int64_t *cancelled, kp_error *e);
/* True for a reply that asks to stop: STOP, СТОП, ОТПИСКА, UNSUBSCRIBE in
 * any case (ASCII and Cyrillic letters folded, "сТоП" too), with ASCII
 * spaces and punctuation around; nothing else in the text. */
bool kp_sms_is_stop(const char *text);
/* (write) A reply from `from`: a stop word turns marketing SMS off for the
 * customer with that phone. *acted: it was a stop word from a known
 * customer. */
kp_err kp_office_sms_inbound(kp_office *o, const char *from, const char *text, bool *acted,
                             kp_error *e);

/* ---- the cabinet's login */

/* The customer with this phone or e-mail (normalised here; blind index).
 * KP_ERR_NOT_FOUND; KP_ERR_INVALID naming "phone" or "email". */
kp_err kp_office_customer_by_contact(kp_office *o, kp_channel channel, const char *contact,
                                     int64_t *customer_id, uint8_t contact_ix[32], kp_error *e);
/* (write) A new code for the customer: its keyed hash stored with the
 * policy's ttl, and a LOGIN_CODE event with the sealed payload
 * {"code","channel"}. */
kp_err kp_office_login_code(kp_office *o, int64_t customer_id, kp_channel channel, kp_error *e);
/* (write) Checks the code; right: a session "kpc_..." into token (stored
 * hashed), *expires_at. Wrong, expired or used up: KP_ERR_UNAUTHORIZED. */
kp_err kp_office_login(kp_office *o, int64_t customer_id, const char *code,
                       char token[KP_CUSTOMER_TOKEN_LEN + 1], kp_time *expires_at, kp_error *e);
/* (write) A session "kpc_..." for the customer into token (stored hashed)
 * and *expires_at; the actor becomes the customer, the login is audited.
 * What every way in (a login code, a sign-up) ends with. */
kp_err kp_office_session_start(kp_office *o, int64_t customer_id,
                               char token[KP_CUSTOMER_TOKEN_LEN + 1], kp_time *expires_at,
                               kp_error *e);

/* ---- the sign-up's code (a phone that is no customer's yet) */

/* The login-code slot of a sign-up (login_code_put's customer_id): a
 * negative number made from the phone's blind index, never a customer's
 * id, so the code is bound to that phone as a login code is to its
 * customer. */
int64_t kp_signup_code_key(const uint8_t phone_ix[32]);
/* (write) A new code for `phone` (E.164, its blind index phone_ix): its
 * keyed hash stored in the phone's slot with the policy's ttl, and a
 * LOGIN_CODE event with the sealed payload {"code","channel":"sms","to"}
 * and no customer (the dispatcher sends it to "to"). Audited as
 * signup.code, without the phone. */
kp_err kp_office_signup_code(kp_office *o, const char *phone, const uint8_t phone_ix[32],
                             kp_error *e);
/* (write) Checks a sign-up's code for the phone: right, the code is used
 * up; wrong, expired or used up: KP_ERR_UNAUTHORIZED (the attempt counted
 * and audited as signup.failed: the caller keeps the write). */
kp_err kp_office_signup_check(kp_office *o, const uint8_t phone_ix[32], const char *code,
                              kp_error *e);

/* The customer of a "kpc_..." token. KP_ERR_UNAUTHORIZED. */
kp_err kp_customer_session(kp_store *st, const char *token, kp_time now, int64_t *customer_id,
                           kp_time *expires_at);
kp_err kp_customer_logout(kp_store *st, const char *token, kp_error *e);
/* GET /v1/me: the customer's own record (as staff read it: "profile"),
 * cards with their balance, preferences, and the program's transfer limits
 * ("transfers", null when it allows none). */
kp_err kp_office_me(kp_office *o, int64_t customer_id, kp_time expires_at, kp_buf *out,
                    kp_error *e);

/* GET /v1/me/export (export.c): everything kept about the customer as one
 * JSON object: "customer" (as the back office sees it), "cards" with their
 * events (no staff names), "notifications" (preferences and consents),
 * "history" (every operation with its explain list), "invitations" (a
 * customer's own session), "messages" with their texts (a login code's
 * left out); "history_complete" / "messages_complete" false past the
 * export's bounds. customer.read on `customer_id`; reads only (the caller
 * audits it). */
kp_err kp_office_export(kp_office *o, const kp_notify_env *env, int64_t customer_id, kp_buf *out,
                        kp_error *e);

/* A per-contact limit of login codes (in the server's memory): at most
 * one a minute and five an hour for a contact's blind index. */
typedef struct kp_login_limiter kp_login_limiter;
kp_login_limiter *kp_login_limiter_new(void);
void kp_login_limiter_free(kp_login_limiter *l);
/* True and counted when a code may go now; false with *retry_after
 * seconds otherwise (also when the table of contacts is full). */
bool kp_login_limiter_take(kp_login_limiter *l, const uint8_t ix[32], kp_time now,
                           int64_t *retry_after);

/* ---- campaigns (notify.manage) */

typedef struct kp_campaign_req {
    char name[64];
    const int64_t *customers;
    size_t n_customers;
    size_t n_languages;
    struct {
        char language[KP_LANGUAGE_MAX];
        const char *subject, *text, *html; /* "" = none */
    } texts[4];
} kp_campaign_req;

/* (write) The texts compiled as campaign templates first (errors name
 * "subject.ru" ... with line:column); then one CAMPAIGN event per customer
 * (key "campaign:<name>:<id>", sealed payload with the texts; the
 * dispatcher applies consent). {"queued": n, "already": m}. */
kp_err kp_office_campaign(kp_office *o, const kp_campaign_req *req, kp_buf *out, kp_error *e);

/* (write) One CAMPAIGN event for a customer, for the campaigns that grant
 * points (src/service/marketing.c): `payload` is the texts as JSON,
 * {"name":..., "subject":{"ru":...}, "text":{...}, "html":{...}}, sealed
 * here; `key` names it ("campaign:#<id>:<customer>"). A key stored already
 * writes nothing and sets *queued false. The dispatcher applies consent. */
kp_err kp_office_campaign_event(kp_office *o, const char *key, int64_t account_id,
                                int64_t customer_id, const char *payload, bool *queued,
                                kp_error *e);

#endif
