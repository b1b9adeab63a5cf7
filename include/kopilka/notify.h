/*
 * notify.h: the outbox, as the store keeps it (kp_store_ops.notify):
 * notification events written in the same transaction as the change that
 * causes them, the messages and webhook deliveries made from them, the
 * customers' notification preferences, message templates, webhook
 * endpoints and one-time login codes. docs/notifications.md tells the
 * whole story; src/notify/ renders, plans and delivers.
 *
 * The life of a notification:
 *
 *   1. A change (a purchase, a return, a grant, a card blocked...) calls
 *      event_insert() inside its own transaction: nothing is sent for work
 *      that rolls back, nothing is lost once it commits. The event's key
 *      names its cause ("op:123"): a second insert of the key is ignored.
 *   2. The dispatcher reads events_pending(), decides who gets what
 *      (preferences, templates, endpoints) and calls event_dispatch() with
 *      the messages: they are stored and the event marked dispatched in one
 *      write. A message's key derives from its event's id and its channel
 *      (and endpoint): the same event never makes two messages of a kind.
 *   3. The delivery worker takes due messages with messages_claim() (a
 *      lease, so two workers never send one message at the same time),
 *      sends them, and records each outcome with messages_settle().
 *
 * The general contract of store.h holds (errors, transactions, lists,
 * ownership). Sealed blobs (a message's recipient and text, a webhook
 * secret) are the caller's, sealed with the database's key file
 * (src/crypto/pii.h): a store never sees them in the clear. None of these
 * pointers is NULL.
 */
#ifndef KOPILKA_NOTIFY_H
#define KOPILKA_NOTIFY_H

#include "people.h"

/* What happened. The names (kp_notify_kind_name) are the API's and the
 * webhooks' event types, and name the templates. */
typedef enum kp_notify_kind {
    KP_NOTIFY_EARNED = 1,     /* a purchase earned points and burnt none */
    KP_NOTIFY_BURNT,          /* a purchase burnt points (and may have earned) */
    KP_NOTIFY_RETURNED,       /* a return took points back or gave them back */
    KP_NOTIFY_EXPIRING,       /* points will expire in N days (a reminder) */
    KP_NOTIFY_EXPIRED,        /* points expired */
    KP_NOTIFY_BIRTHDAY,       /* a birthday grant */
    KP_NOTIFY_GRANTED,        /* any other grant of a rule (an event, tenure...) */
    KP_NOTIFY_ADJUSTED,       /* a manual adjustment by staff */
    KP_NOTIFY_WELCOME,        /* a card was registered to a customer */
    KP_NOTIFY_TIER,           /* the tier changed */
    KP_NOTIFY_TRANSFER_IN,    /* points came from another customer */
    KP_NOTIFY_TRANSFER_OUT,   /* points went to another customer */
    KP_NOTIFY_CARD_BLOCKED,   /* a card was blocked */
    KP_NOTIFY_CARD_REPLACED,  /* a card was replaced by another */
    KP_NOTIFY_LOGIN_CODE,     /* a one-time code to log in to the cabinet */
    KP_NOTIFY_CAMPAIGN,       /* a marketer's message to a segment */
    KP_NOTIFY_FAMILY_INVITE,  /* a family's owner invited the customer to join it */
    KP_NOTIFY_ORDER_PLACED,   /* a rewards catalog order was placed (points taken) */
    KP_NOTIFY_ORDER_READY,    /* the order is ready to collect at its store */
    KP_NOTIFY_ORDER_CANCELLED, /* the order was cancelled (points given back) */
    KP_NOTIFY__COUNT
} kp_notify_kind;

/* "earned", "burnt", "returned", "expiring", "expired", "birthday",
 * "granted", "adjusted", "welcome", "tier", "transfer_in", "transfer_out",
 * "card_blocked", "card_replaced", "login_code", "campaign", "family_invite",
 * "order_placed", "order_ready", "order_cancelled";
 * NULL when out
 * of range. */
const char *kp_notify_kind_name(kp_notify_kind kind);
bool kp_notify_kind_parse(const char *name, kp_notify_kind *out);

typedef enum kp_channel {
    KP_CHANNEL_EMAIL = 1,
    KP_CHANNEL_SMS,
    KP_CHANNEL_WEBHOOK,
    KP_CHANNEL__COUNT
} kp_channel;
const char *kp_channel_name(kp_channel channel); /* "email", "sms", "webhook" */
bool kp_channel_parse(const char *name, kp_channel *out);

typedef enum kp_message_state {
    KP_MSG_PENDING = 0, /* waiting for its next attempt (next_at) */
    KP_MSG_SENT = 1,    /* the provider accepted it */
    KP_MSG_DEAD = 2,    /* attempts ran out, or the provider refused it for good */
    KP_MSG_CANCELLED = 3, /* not to be sent any more (unsubscribed, erased) */
} kp_message_state;
const char *kp_message_state_name(kp_message_state state); /* "pending", "sent", "dead", "cancelled" */
bool kp_message_state_parse(const char *name, kp_message_state *out);

enum {
    KP_NOTIFY_KEY_MAX = 160,   /* bytes of an event's or a message's key, with NUL */
    KP_NOTIFY_ERROR_MAX = 256, /* a delivery's last error, with NUL */
    KP_PROVIDER_ID_MAX = 128,  /* the provider's id of a sent message, with NUL */
    KP_LANGUAGE_MAX = 8,       /* "ru", "en", with NUL */
    KP_URL_MAX = 512,
    KP_CONSENT_TEXT_MAX = 64,
};

/* One notification event: a fact to tell somebody about. */
typedef struct kp_notify_event {
    int64_t id;                      /* set by event_insert() (0 when it was a duplicate) */
    char key[KP_NOTIFY_KEY_MAX];     /* unique: "op:123", "card-event:7", "tier:12:<at>", ... */
    kp_notify_kind kind;
    int64_t account_id;              /* 0 = none */
    int64_t customer_id;             /* 0 = the holder of `card`, found when dispatched */
    char card[KP_STR_MAX];           /* "" = none */
    int64_t op_id;                   /* the ledger operation, 0 = none */
    kp_time at;                      /* when it happened */
    /* The figures, a JSON object (src/notify/payload.c writes it): as
     * written by event_insert (the caller's), malloc'd by events_pending.
     * With `sealed` it is sealed (KP_PII_MESSAGE), because it holds a
     * secret or personal data (a login code, a campaign's text). */
    bool sealed;
    uint8_t *payload;
    size_t payload_len;
} kp_notify_event;
void kp_notify_event_release(kp_notify_event *ev);

/* One message or webhook delivery. */
typedef struct kp_message {
    int64_t id;
    char key[KP_NOTIFY_KEY_MAX]; /* unique: "<event id>/<channel>" or "<event id>/webhook/<endpoint id>" */
    int64_t event_id;
    kp_notify_kind kind;
    kp_channel channel;
    int64_t customer_id;   /* 0 for a webhook */
    int64_t endpoint_id;   /* a webhook's endpoint, else 0 */
    kp_message_state state;
    int32_t attempts;      /* attempts made so far */
    kp_time created_at;
    kp_time next_at;       /* pending: not before this (backoff, quiet hours) */
    kp_time lease_until;   /* claimed by a worker until then; 0 = not claimed */
    kp_time sent_at;       /* 0 until sent */
    char provider_id[KP_PROVIDER_ID_MAX];
    char last_error[KP_NOTIFY_ERROR_MAX];
    /* The recipient and the text, sealed (KP_PII_MESSAGE) by the caller as
     * one blob (src/notify/ knows its layout). As given to event_dispatch;
     * malloc'd by the reads (kp_message_release frees it). */
    uint8_t *sealed;
    size_t sealed_len;
} kp_message;
void kp_message_release(kp_message *m);

/* The outcome of one attempt, for messages_settle(). */
typedef struct kp_message_result {
    int64_t id;
    kp_message_state state; /* PENDING (try again at next_at), SENT or DEAD */
    int32_t attempts;
    kp_time next_at;
    kp_time sent_at;
    char provider_id[KP_PROVIDER_ID_MAX];
    char last_error[KP_NOTIFY_ERROR_MAX];
} kp_message_result;

/* Which messages messages_list() gives: 0 / -1 / "" = any. */
typedef struct kp_message_filter {
    int64_t customer_id;
    int64_t endpoint_id;
    int64_t event_id;
    int state;              /* a kp_message_state, or -1 */
    kp_channel channel;     /* 0 = any */
} kp_message_filter;

/* How the outbox stands, for /metrics and the back office. */
typedef struct kp_outbox_stats {
    int64_t events_pending;          /* not dispatched yet */
    kp_time oldest_event_at;         /* 0 when none */
    int64_t by_state[4][KP_CHANNEL__COUNT]; /* messages by state and channel */
    kp_time oldest_pending_at;       /* created_at of the oldest pending message, 0 when none */
} kp_outbox_stats;

/* A customer's preferences. Channels are bit sets: 1u << KP_CHANNEL_EMAIL,
 * 1u << KP_CHANNEL_SMS. A customer with no row has the program's defaults
 * (prefs_get: KP_ERR_NOT_FOUND). */
typedef struct kp_notify_prefs {
    int64_t customer_id;
    char language[KP_LANGUAGE_MAX];  /* "" = the program's */
    bool has_utc_offset;             /* the customer's time zone, for quiet hours */
    int32_t utc_offset_minutes;
    uint32_t transactional;          /* channels for earn, burn, expiry, card... */
    uint32_t marketing;              /* channels for campaigns and greetings */
    kp_time marketing_consent_at;    /* 0 = no consent to marketing */
    char marketing_consent_version[KP_CONSENT_TEXT_MAX];
    kp_time updated_at;
} kp_notify_prefs;

/* A template stored in the database, overriding the built-in one of its
 * kind, channel and language. Texts are NUL-terminated, malloc'd by the
 * reads (kp_template_row_release). */
typedef struct kp_template_row {
    kp_notify_kind kind;
    kp_channel channel;
    char language[KP_LANGUAGE_MAX];
    char *subject;  /* e-mail only; "" otherwise */
    char *text;     /* plain text (the SMS, the e-mail's text part) */
    char *html;     /* e-mail only; "" = made from text */
    kp_time updated_at;
    char actor[96];
} kp_template_row;
void kp_template_row_release(kp_template_row *t);

/* A webhook endpoint: where the company's CRM or 1C listens. */
typedef struct kp_webhook_endpoint {
    int64_t id;
    char url[KP_URL_MAX];
    char description[KP_STR_MAX];
    uint32_t kinds;         /* bit (1u << kind) per subscribed kind; 0 = every kind */
    bool active;
    kp_sealed secret;       /* sealed (KP_PII_SECRET) "whsec_..." */
    kp_time created_at;
    kp_time updated_at;
} kp_webhook_endpoint;

/* One account with points that will expire in a window (reminders). */
typedef struct kp_expiring_row {
    int64_t account_id;
    int64_t points;         /* left in the lots expiring in the window */
    kp_time first_at;       /* the earliest of those lots' expiry */
} kp_expiring_row;

typedef struct kp_notify_ops {
    /* ---- events */
    /* (write) Stores the event; sets ev->id. A key stored already is KP_OK
     * with ev->id 0 and nothing written (the same cause never makes two
     * events). KP_ERR_BUSY as op_insert's (another writer's uncommitted
     * insert of the key). KP_ERR_INVALID for an empty key. */
    kp_err (*event_insert)(kp_store *s, kp_notify_event *ev);
    /* Events not dispatched yet, after id `after`, in id order. Each
     * payload is malloc'd with a NUL past payload_len (a JSON payload reads
     * as a string); kp_notify_event_release frees it. */
    kp_err (*events_pending)(kp_store *s, int64_t after, kp_notify_event *out, size_t limit,
                             size_t *n);
    /* (write) Stores the messages made of event `event_id` (created_at =
     * now; a message whose key is stored already is skipped) and marks
     * the event dispatched; n may be 0 (nobody to tell). An event
     * dispatched already is KP_OK and writes nothing; KP_ERR_NOT_FOUND for
     * no such event. Sets each message's id (0 for a skipped one). */
    kp_err (*event_dispatch)(kp_store *s, int64_t event_id, kp_message *msgs, size_t n,
                             kp_time now);

    /* ---- messages */
    /* (write) Takes up to `limit` pending messages due at `now` (next_at <=
     * now) that no worker holds (lease_until < now), oldest next_at first,
     * optionally of one channel (0 = any), and leases them until
     * lease_until. Fills out (sealed blobs malloc'd), in that order. One
     * write: two claims never return one message while its lease runs. */
    kp_err (*messages_claim)(kp_store *s, kp_time now, kp_time lease_until, kp_channel channel,
                             kp_message *out, size_t limit, size_t *n);
    /* (write) Records attempts' outcomes and drops their leases. An
     * unknown id is skipped. A message cancelled while it was in flight
     * (messages_cancel, messages_erase) stays cancelled unless the result
     * is SENT (then that is the truth). */
    kp_err (*messages_settle)(kp_store *s, const kp_message_result *results, size_t n);
    /* The message `id`. KP_ERR_NOT_FOUND. */
    kp_err (*message_get)(kp_store *s, int64_t id, kp_message *out);
    /* Messages matching the filter with id < before (0 = from the newest),
     * newest first. */
    kp_err (*messages_list)(kp_store *s, const kp_message_filter *f, int64_t before,
                            kp_message *out, size_t limit, size_t *n);
    /* (write) Makes message `id` pending again, due at `now`, with its
     * attempts reset and lease dropped (a retry of a dead one, a replay of
     * a sent webhook). KP_ERR_NOT_FOUND; KP_ERR_CONFLICT for a message
     * erased (messages_erase: nothing left to send). */
    kp_err (*message_retry)(kp_store *s, int64_t id, kp_time now);
    /* (write) Cancels the customer's pending messages of the channels in
     * `channels` (bit set) whose kind is in `kinds` (bit set, 0 = all):
     * unsubscribed, erased. Sets *n to how many. */
    kp_err (*messages_cancel)(kp_store *s, int64_t customer_id, uint32_t channels, uint32_t kinds,
                              int64_t *n);
    /* (write) Erasure: drops the sealed text of every message of the
     * customer (the rows, their states and times stay for the record) and
     * cancels those pending. Sets *n to how many messages. The reads then
     * give sealed NULL, sealed_len 0. */
    kp_err (*messages_erase)(kp_store *s, int64_t customer_id, int64_t *n);
    kp_err (*outbox_stats)(kp_store *s, kp_outbox_stats *out);

    /* ---- preferences */
    /* KP_ERR_NOT_FOUND: none stored (the program's defaults apply). */
    kp_err (*prefs_get)(kp_store *s, int64_t customer_id, kp_notify_prefs *out);
    /* (write) Creates or replaces them. */
    kp_err (*prefs_put)(kp_store *s, const kp_notify_prefs *prefs);

    /* ---- templates */
    /* KP_ERR_NOT_FOUND: none stored (the built-in one applies). */
    kp_err (*template_get)(kp_store *s, kp_notify_kind kind, kp_channel channel,
                           const char *language, kp_template_row *out);
    /* (write) Creates or replaces it. */
    kp_err (*template_put)(kp_store *s, const kp_template_row *t);
    /* (write) Removes it (the built-in one applies again); none is KP_OK. */
    kp_err (*template_delete)(kp_store *s, kp_notify_kind kind, kp_channel channel,
                              const char *language);
    /* Every stored template, by kind, channel, language. */
    kp_err (*templates_list)(kp_store *s, kp_template_row *out, size_t limit, size_t *n);

    /* ---- webhook endpoints */
    /* (write) Sets ep->id. */
    kp_err (*endpoint_insert)(kp_store *s, kp_webhook_endpoint *ep);
    /* (write) Rewrites ep->id's row. KP_ERR_NOT_FOUND. */
    kp_err (*endpoint_update)(kp_store *s, const kp_webhook_endpoint *ep);
    kp_err (*endpoint_get)(kp_store *s, int64_t id, kp_webhook_endpoint *out);
    /* Endpoints in id order, active or not. */
    kp_err (*endpoints_list)(kp_store *s, kp_webhook_endpoint *out, size_t limit, size_t *n);

    /* ---- one-time login codes: only a keyed hash of the code is kept */
    /* (write) Replaces the customer's code: its hash, expiry, attempts 0. */
    kp_err (*login_code_put)(kp_store *s, int64_t customer_id, const uint8_t hash[32],
                             kp_time expires_at, kp_time now);
    /* (write) Checks a code's hash for the customer at `now`: *ok when it
     * matches a code not expired and tried fewer than max_attempts times
     * (the code is then used up); a wrong one counts an attempt.
     * KP_ERR_NOT_FOUND when the customer has no live code: none, used,
     * expired (expires_at <= now) or tried max_attempts times already. */
    kp_err (*login_code_check)(kp_store *s, int64_t customer_id, const uint8_t hash[32],
                               kp_time now, int32_t max_attempts, bool *ok);

    /* ---- customers' sessions (the cabinet), by the hash of the token */
    /* (write) KP_ERR_CONFLICT for a hash stored already. */
    kp_err (*customer_session_insert)(kp_store *s, const uint8_t token_hash[32],
                                      int64_t customer_id, kp_time now, kp_time expires_at);
    /* The customer of a session that expires after `now`. KP_ERR_NOT_FOUND. */
    kp_err (*customer_session_find)(kp_store *s, const uint8_t token_hash[32], kp_time now,
                                    int64_t *customer_id, kp_time *expires_at);
    /* (write) Ends a session; an unknown one is KP_OK. */
    kp_err (*customer_session_delete)(kp_store *s, const uint8_t token_hash[32]);
    /* (write) Ends every session of the customer (erased); none is KP_OK. */
    kp_err (*customer_sessions_end)(kp_store *s, int64_t customer_id);

    /* ---- reminders */
    /* Accounts after id `after`, in id order, holding open lots with
     * points left that expire in [from, to), with how many points. */
    kp_err (*expiring_between)(kp_store *s, kp_time from, kp_time to, int64_t after,
                               kp_expiring_row *out, size_t limit, size_t *n);
} kp_notify_ops;

#endif
