/*
 * notify.h: notifications above the store (kopilka/notify.h keeps the
 * outbox): the program's "notifications" section, when a message may go
 * (quiet hours, backoff), templates and their figures, the channels'
 * configuration, the dispatcher that turns events into messages, and the
 * delivery pass that sends them. Nothing here knows HTTP routes; the
 * senders use libcurl. docs/notifications.md is the user's story.
 *
 * Files: kinds.c (names), payload.c (the figures an event carries),
 * policy.c (program section, urgency, quiet hours, backoff),
 * template.c + templates_default.c (templates), config.c (channels file),
 * smtp.c, sms.c, webhook.c (senders), dispatch.c (events -> messages),
 * deliver.c (claim, send, settle), emit.c (what the service layer calls
 * to write an event), office.c (the back office's notification routes'
 * service functions).
 */
#ifndef KOPILKA_NOTIFY_NOTIFY_H
#define KOPILKA_NOTIFY_NOTIFY_H

#include <kopilka/ledger.h>
#include <kopilka/notify.h>
#include <kopilka/program.h>

#include <pthread.h>

#include "core/buf.h"

struct kp_pii;
struct json_t;

/* ------------------------------------------------------------- policy.c */

/* The program's optional "notifications" section (docs/rules.md,
 * "Notifications"); every field has a default. */
typedef struct kp_notify_policy {
    char language[KP_LANGUAGE_MAX]; /* the default language: "ru" */
    int32_t remind_days;            /* expiry reminder this many days before; 0 = none; default 7 */
    int32_t quiet_from_minute;      /* quiet hours in the customer's day, [from, to): */
    int32_t quiet_to_minute;        /* default 21:00 to 09:00; equal = none */
    /* Channels a customer without preferences receives (bit sets of
     * 1u << kp_channel): transactional default email|sms, marketing 0
     * (marketing needs consent). */
    uint32_t transactional_default;
    uint32_t marketing_default;
    /* Kinds that go to customers at all, bit (1u << kind); default: all. */
    uint32_t kinds;
    int32_t login_code_ttl_seconds; /* default 300 */
    int32_t login_code_attempts;    /* default 5 */
} kp_notify_policy;

void kp_notify_policy_default(kp_notify_policy *out);
/* Reads the "notifications" object of a program file's text (absent: the
 * defaults). Errors name the field ("notifications.quiet_hours.from"). */
kp_err kp_notify_policy_parse(const char *json, size_t len, kp_notify_policy *out, kp_error *e);

/* The section of `program` (parsed once per version and kept, as
 * kp_people_policy_of does); NULL program: the defaults. Never NULL. */
const kp_notify_policy *kp_notify_policy_of(kp_store *st, const kp_program *program);

/* Urgent kinds ignore quiet hours (a login code, a blocked card, points
 * burnt: the customer must know at once). */
bool kp_notify_urgent(kp_notify_kind kind);
/* Marketing kinds need consent and the marketing channels (campaign,
 * birthday greeting); the rest are transactional. */
bool kp_notify_marketing(kp_notify_kind kind);
/* The earliest time at or after `now` outside the quiet hours of the
 * customer's day (prefs' offset, else the program's utc_offset_minutes).
 * prefs may be NULL. */
kp_time kp_notify_quiet_next(const kp_notify_policy *p, const kp_notify_prefs *prefs,
                             int32_t program_offset_minutes, kp_time now);

/* Retries: exponential backoff with full jitter. */
typedef struct kp_retry_policy {
    int32_t max_attempts; /* then dead; default 8 */
    int32_t base_seconds; /* default 30 */
    int32_t max_seconds;  /* default 3600 */
} kp_retry_policy;
/* When attempt number `attempts` (1 = the first failed) may be followed:
 * now + a random delay in [d/2, d], d = min(max, base * 2^(attempts-1));
 * at least retry_after when the provider said so (0 = not said). `rnd` is
 * a uniform random 32-bit value (the caller's, so tests are
 * deterministic). */
kp_time kp_notify_backoff(const kp_retry_policy *r, int32_t attempts, int64_t retry_after,
                          uint32_t rnd, kp_time now);

/* ------------------------------------------------------------ payload.c */

/* The figures of an event, written as its payload (a JSON object) by the
 * code that emits it. Fields not known are left 0 / "" and not written. */
typedef struct kp_notify_figures {
    int64_t earned, burnt;        /* points of the operation */
    int64_t points;               /* net change of the balance */
    int64_t balance;              /* after it */
    bool has_balance;
    size_t n_kinds;               /* the balance by kind of points */
    struct { char kind[16]; int64_t points; } by_kind[8];
    int64_t expiry_points;        /* the next expiry: how many points */
    kp_time expiry_at;            /* and when (0: nothing expires) */
    int64_t amount_minor;         /* the receipt's amount */
    char currency[4];
    char store[KP_STR_MAX];
    char receipt[KP_STR_MAX];
    char tier[32], tier_before[32];
    char other_card[KP_STR_MAX];  /* a transfer's other side, a replacement card */
    char reason[KP_REASON_MAX];   /* a block's or an adjustment's reason */
    char rule[64];                /* the rule of a grant */
    char item[128];               /* a catalog order: the item's name, */
    int64_t order_id;             /* the order's number */
    int64_t qty;                  /* and how many */
} kp_notify_figures;

/* Writes the figures as a JSON object into out (reset first). */
kp_err kp_notify_payload(const kp_notify_figures *f, kp_buf *out);

/* --------------------------------------------------------------- emit.c */

/* Writes the event into st's open transaction (notify->event_insert): the
 * service layer calls it beside the change that causes it. `key` names the
 * cause uniquely ("op:123"). Figures may be NULL. Errors are the store's
 * (the caller's operation fails with them: no change without its event). */
kp_err kp_notify_emit(kp_store *st, kp_notify_kind kind, const char *key, int64_t account_id,
                      int64_t customer_id, const char *card, int64_t op_id, kp_time at,
                      const kp_notify_figures *f, kp_error *e);

/* Fills *ev (zeroed first) for event_insert() or kp_op_row.notify: the
 * figures are written into `payload` (reset first) and ev->payload points
 * into it, so `payload` must outlive the store call. key may be NULL for
 * kp_op_row.notify (the store names it "op:<id>"). KP_ERR_INVALID for a
 * key too long, KP_ERR_NOMEM when the payload does not fit. */
kp_err kp_notify_event_fill(kp_notify_event *ev, kp_notify_kind kind, const char *key,
                            int64_t account_id, int64_t customer_id, const char *card,
                            int64_t op_id, kp_time at, const kp_notify_figures *f,
                            kp_buf *payload, kp_error *e);

/* The figures of account `a` after ledger plan `plan` (NULL: as loaded),
 * computed in memory: has_balance and balance (the plan's balance_after),
 * the balance by kind of points (sum of the open lots' remaining points,
 * kinds in order of first appearance) and the next expiry (the earliest
 * expires_at after `now` among lots with points left, and the points of
 * the lots expiring then). A plan's lots_merge (an account at KP_LOTS_MAX
 * lots) is not simulated: the merged lots' points are the same, their
 * expiry may be later than shown. A plan that refills lots `a` does not
 * hold (a return refunding spent lots) gives the balance only. Other
 * fields are left as they are. */
void kp_notify_figures_after(const kp_account *a, const kp_ledger_plan *plan, kp_time now,
                             kp_notify_figures *f);

/* ----------------------------------------------------------- template.c */

/* A template: text with {{field}} substitutions and {{#field}}...{{/field}}
 * sections shown only when the field is set (not "" and not "0"),
 * {{^field}}...{{/field}} only when it is not. The
 * fields a kind offers are listed by kp_template_fields(); a template
 * naming any other is refused when loaded. */
typedef struct kp_template kp_template;
/* Compiles `text` for `kind`: KP_ERR_INVALID on field `field` naming the
 * unknown field or the unbalanced section and where (line, column). */
kp_err kp_template_compile(kp_notify_kind kind, const char *text, const char *field,
                           kp_template **out, kp_error *e);
void kp_template_free(kp_template *t);
/* The fields a kind's templates may use, NULL-terminated. */
const char *const *kp_template_fields(kp_notify_kind kind);

/* Values for rendering: name -> text, already formatted for the language. */
typedef struct kp_vars {
    size_t n;
    struct { const char *name; char value[512]; } v[48];
} kp_vars;
/* Sets (or replaces) a field's value. False, and nothing set, for a name
 * no template can use (not a field of any kind) or a value of 512 bytes or
 * more: nothing is cut short. */
bool kp_vars_set(kp_vars *vars, const char *name, const char *value);
/* NULL when not set. */
const char *kp_vars_get(const kp_vars *vars, const char *name);
/* Fills vars from an event: its payload's figures formatted in `language`
 * ("1 560", "1 March 2027" / "1 марта 2027"), the card, the customer's
 * first name (may be ""), the program's name. */
kp_err kp_vars_from_event(const kp_notify_event *ev, const struct json_t *payload,
                          const char *language, const char *first_name, const char *program_name,
                          kp_vars *vars, kp_error *e);
/* The same with the customer's calendar (dates are that day there) and the
 * currency of amounts when the payload names none (the program's). */
kp_err kp_vars_from_event_in(const kp_notify_event *ev, const struct json_t *payload,
                             const char *language, int32_t utc_offset_minutes,
                             const char *currency, const char *first_name,
                             const char *program_name, kp_vars *vars, kp_error *e);
/* Formatting for a language ("ru": "1 560" with U+00A0, "1 марта 2027",
 * "1 234,50 ₽"; any other: "1,560", "1 March 2027", "RUB 1,234.50"). A
 * date is the calendar day at utc_offset_minutes. */
void kp_notify_format_number(int64_t v, const char *language, char *out, size_t size);
void kp_notify_format_date(kp_time t, int32_t utc_offset_minutes, const char *language, char *out,
                           size_t size);
void kp_notify_format_money(int64_t minor, const char *currency, const char *language, char *out,
                            size_t size);
/* html: escape values for HTML. KP_ERR_LIMIT when out fills up. */
kp_err kp_template_render(const kp_template *t, const kp_vars *vars, bool html, kp_buf *out);

/* The built-in template of a kind, channel and language (subject, text,
 * html; "" where none), NULL when Kopilka has none for that language. */
typedef struct kp_template_text {
    const char *subject, *text, *html;
} kp_template_text;
const kp_template_text *kp_template_builtin(kp_notify_kind kind, kp_channel channel,
                                            const char *language);

/* ------------------------------------------------------------- config.c */

/* The channels, from the file given to `kopilka serve --notify FILE` or
 * `kopilka deliver` (docs/notifications.md, "Channels"). A channel not
 * configured sends nothing and gets no messages. */
typedef struct kp_notify_config {
    struct {
        bool on;
        char url[KP_URL_MAX];      /* smtp://host:port or smtps:// */
        int starttls;              /* 0 off, 1 try, 2 required */
        char username[128], password[256];
        char from[256];            /* "Kopilka <noreply@example.com>" */
        char reply_to[256];
        double rate_per_second;    /* 0 = unlimited */
        int timeout_seconds;
        int concurrency;           /* delivery workers sharing the rate; KP_CONCURRENCY_* */
    } email;
    struct {
        bool on;
        char profile[32];          /* "generic", "smsru", "smsc" ... */
        char url[KP_URL_MAX];      /* may hold {{to}}, {{text}}, {{id}} (URL-escaped) */
        char method[8];            /* "POST" or "GET" */
        char content_type[64];
        char body[1024];           /* template of the request body */
        size_t n_headers;
        char headers[8][256];      /* "Authorization: Bearer ..." */
        char username[128], password[256]; /* {{username}}, {{password}} */
        bool basic_auth;           /* send username:password as HTTP basic auth */
        /* Success: the HTTP status is 2xx and, when set, the JSON body's
         * success_field (a dotted path) equals success_value, or, with
         * success_value "", is present and neither null nor false;
         * provider_id_field (a dotted path) names the provider's id of
         * the message in the answer. */
        char success_field[64], success_value[64], provider_id_field[64];
        char sender[64];           /* the sender name, {{sender}} */
        double rate_per_second;
        int timeout_seconds;
        int concurrency;
        char inbound_token[128];   /* replies forwarded to /v1/sms/inbound must carry it */
    } sms;
    struct {
        bool on;                   /* webhooks are always available; off disables them */
        double rate_per_second;
        int timeout_seconds;
        int concurrency;
    } webhook;
    kp_retry_policy retry;
    char public_url[KP_URL_MAX];   /* where unsubscribe links point: https://loyalty.example */
} kp_notify_config;

/* "concurrency" of a channel: how many messages it sends at once (delivery
 * workers, each with its own connection, sharing the channel's
 * rate_per_second); the defaults, and the limit (a file asking outside
 * 1..KP_CONCURRENCY_MAX is refused). */
enum {
    KP_CONCURRENCY_EMAIL = 4,
    KP_CONCURRENCY_SMS = 8,
    KP_CONCURRENCY_WEBHOOK = 8,
    KP_CONCURRENCY_MAX = 64,
};

void kp_notify_config_default(kp_notify_config *out);
/* Reads the JSON file at path; secrets may come from the environment
 * ("password_env": "NAME"). Errors name the field. */
kp_err kp_notify_config_load(const char *path, kp_notify_config *out, kp_error *e);

/* ----------------------------------------------- smtp.c, sms.c, webhook.c */

/* A message opened for sending. */
typedef struct kp_outgoing {
    const kp_message *m;
    char to[KP_EMAIL_MAX + 1];     /* an e-mail address or an E.164 phone; "" for a webhook */
    char *subject, *text, *html;   /* malloc'd */
    char *body;                    /* a webhook's JSON body, malloc'd */
    char unsubscribe_url[KP_URL_MAX];
} kp_outgoing;
void kp_outgoing_release(kp_outgoing *o);

typedef struct kp_send_result {
    bool ok;
    bool permanent;      /* a failure no retry can fix (a bad address) */
    int64_t retry_after; /* seconds the provider asked to wait, 0 = not said */
    char provider_id[KP_PROVIDER_ID_MAX];
    char error[KP_NOTIFY_ERROR_MAX];
} kp_send_result;

/* A sender keeps its curl handle (and connection) between messages; one
 * per thread. */
typedef struct kp_sender kp_sender;
kp_sender *kp_sender_new(const kp_notify_config *cfg, kp_channel channel);
void kp_sender_free(kp_sender *s);
/* Sends one message (the webhook's endpoint and its opened secret for a
 * webhook, else NULL). Never blocks past the channel's timeout. */
void kp_sender_send(kp_sender *s, const kp_outgoing *o, const kp_webhook_endpoint *ep,
                    const char *secret, kp_time now, kp_send_result *r);

/* Standard Webhooks: the signature header's value "v1,<base64>" of
 * HMAC-SHA256 over "<id>.<timestamp>.<body>" with the secret "whsec_<base64
 * key>". KP_ERR_INVALID for a malformed secret. */
kp_err kp_webhook_sign(const char *secret, const char *id, kp_time timestamp, const char *body,
                       size_t body_len, char *out, size_t out_size);
/* A new secret "whsec_" + base64 of 24 random bytes into out (at least 64). */
void kp_webhook_secret_new(char *out, size_t out_size);

/* ----------------------------------------------------------- dispatch.c */

/* What the dispatcher and the deliverer need. */
typedef struct kp_notify_env {
    const struct kp_pii *pii;          /* NULL: personal data cannot be read, only webhooks go */
    const kp_program *program;         /* NULL: none loaded (defaults) */
    const kp_notify_policy *policy;
    const kp_notify_config *config;
    /* A secret for unsubscribe links, derived from the key file. */
    uint8_t link_key[32];
    bool has_link_key;
    /* The webhook endpoints, read once by a caller that plans many events
     * (a dispatch pass reads them once a page); NULL: kp_notify_plan reads
     * them for each event. */
    const kp_webhook_endpoint *endpoints;
    size_t n_endpoints;
} kp_notify_env;

/* Plans the messages of one event: who gets it, on which channels,
 * rendered with the templates (the store's, else the built-in ones) and
 * sealed; plus one delivery per subscribed active webhook endpoint. Reads
 * st (customer, preferences, templates, endpoints); writes nothing. Fills
 * out[0..*n) (sealed blobs malloc'd: kp_message_release). An event nobody
 * is to hear of gives *n = 0. */
kp_err kp_notify_plan(kp_store *st, const kp_notify_env *env, const kp_notify_event *ev,
                      kp_time now, kp_message *out, size_t cap, size_t *n, kp_error *e);

/* The webhook endpoints (active or not) into *out, malloc'd (free()), for
 * kp_notify_env.endpoints. */
kp_err kp_notify_endpoints_read(kp_store *st, kp_webhook_endpoint **out, size_t *n,
                                kp_error *e);

/* Opens a claimed message for sending: the recipient and texts (or the
 * webhook's body). */
kp_err kp_notify_open(const kp_notify_env *env, const kp_message *m, kp_outgoing *out,
                      kp_error *e);

/* The unsubscribe link's token for a customer and channel (and the check
 * of one): base64url of the customer id, the channel and a MAC. */
void kp_unsubscribe_token(const kp_notify_env *env, int64_t customer_id, kp_channel channel,
                          char *out, size_t out_size);
bool kp_unsubscribe_check(const kp_notify_env *env, const char *token, int64_t *customer_id,
                          kp_channel *channel);

/* ------------------------------------------------------------ deliver.c */

/* One event's planned messages, for kp_notify_io.dispatch_batch. */
typedef struct kp_dispatch_item {
    int64_t event_id;
    kp_message *msgs;
    size_t n;
} kp_dispatch_item;

/* How the delivery pass writes: straight to a store (the CLI,
 * kp_notify_io_store), or through the server's writer (notifier.c). Each
 * runs its store calls in a transaction of its own and returns its error. */
typedef struct kp_notify_io {
    void *ctx;
    kp_err (*dispatch)(void *ctx, int64_t event_id, kp_message *msgs, size_t n, kp_time now,
                       kp_error *e);
    /* May be NULL (then dispatch is called per event): event_dispatch of
     * every item in one transaction, so a pass of many events costs one
     * commit, not one each. */
    kp_err (*dispatch_batch)(void *ctx, kp_dispatch_item *items, size_t n, kp_time now,
                             kp_error *e);
    kp_err (*claim)(void *ctx, kp_time now, kp_time lease_until, kp_channel channel,
                    kp_message *out, size_t limit, size_t *n, kp_error *e);
    kp_err (*settle)(void *ctx, const kp_message_result *r, size_t n, kp_error *e);
    /* May be NULL. True asks a delivery pass to stop early: messages not
     * yet sent are handed back (pending, due at once, attempts unchanged)
     * and sends in flight finish or time out first. */
    bool (*stopping)(void *ctx);
    /* May be NULL. A problem a person should hear of that does not stop
     * the pass (an event that cannot be planned), in words. */
    void (*note)(void *ctx, const char *text);

    /* First attempts without a row (the server's notifier; the CLI leaves
     * these NULL). A planned event whose every message is a webhook due
     * now is offered to direct(): true when the io took it (it moved the
     * messages out: item->n is then 0) and will send each once and write
     * them, in the state their first attempt left them, with the event's
     * dispatch (event_dispatch) afterwards; the event stays pending in the
     * store meanwhile, so a crash re-plans it (same keys) and re-sends
     * only what was in flight. False: written as usual. */
    bool (*direct)(void *ctx, kp_dispatch_item *item, kp_time now);
    /* May be NULL. Events the io holds (offered to direct() and not yet
     * written): a dispatch pass skips them. */
    bool (*in_flight)(void *ctx, int64_t event_id);
    /* May be NULL (0). The id after which a dispatch pass reads pending
     * events: the io's cursor past what it holds or wrote. */
    int64_t (*resume_after)(void *ctx);
    /* The messages direct() took, for the channel's delivery workers: up
     * to `limit` copies into out (the sealed blobs stay the io's: do not
     * release them) and a token each for direct_done(). */
    size_t (*direct_take)(void *ctx, kp_channel channel, kp_message *out, void **tokens,
                          size_t limit);
    /* The outcome of a taken message's first attempt (or its hand-back,
     * untried: PENDING, attempts unchanged). */
    void (*direct_done)(void *ctx, void *token, const kp_message_result *r);
} kp_notify_io;

/* An io straight on `st` (the CLI): each call is begin, the store call(s),
 * commit (rollback on failure). Store errors are put into e with the
 * store's last_error. stopping and note are left NULL for the caller. */
void kp_notify_io_store(kp_notify_io *io, kp_store *st);

/* Fills env for `config` and the database's key `pii` (may be NULL): the
 * program and its notification policy (read on st), and link_key, the MAC
 * key of unsubscribe links derived from the key file (kp_pii_mac,
 * KP_PII_LINK, over "kopilka unsubscribe links"), so the server, the CLI
 * and the back office make and check the same links. program may be
 * NULL. */
void kp_notify_env_init(kp_notify_env *env, kp_store *st, const struct kp_pii *pii,
                        const kp_program *program, const kp_notify_config *config);

/* Counters of a delivery worker, for /metrics and `kopilka deliver`. */
typedef struct kp_deliver_stats {
    uint64_t dispatched_events;
    uint64_t planned_messages;           /* messages the dispatched events made */
    uint64_t unplanned_events;           /* events that could not be planned (io->note says why) */
    uint64_t sent[KP_CHANNEL__COUNT];
    uint64_t failed[KP_CHANNEL__COUNT];  /* attempts that failed */
    uint64_t dead[KP_CHANNEL__COUNT];
    uint64_t handed_back[KP_CHANNEL__COUNT]; /* claimed, not attempted (stop, lease running out) */
    uint64_t direct_events;              /* of dispatched_events, those taken by io->direct */
    int64_t last_event_id;               /* a dispatch pass: the last event of its pages written */
} kp_deliver_stats;

/* One dispatch pass: plans every pending event (read on `rd`) and writes
 * each through io->dispatch. *n events done. */
kp_err kp_notify_dispatch_pass(kp_store *rd, const kp_notify_env *env, const kp_notify_io *io,
                               kp_time now, size_t *n, kp_deliver_stats *stats, kp_error *e);

/* A token bucket per channel (rate_per_second of the config), shared by
 * the channel's delivery workers: kp_rate_take holds its mutex. */
typedef struct kp_rate {
    double rate, tokens, burst;
    uint64_t last_ns;
    int workers;          /* how many passes share it at once (kp_rate_share); 1 */
    pthread_mutex_t lock;
} kp_rate;
void kp_rate_init(kp_rate *r, double per_second);
void kp_rate_release(kp_rate *r);
/* Tells the bucket that `workers` (1..KP_CONCURRENCY_MAX) delivery passes
 * take from it at once: each pass then claims and leases for its share of
 * the rate. Call before the workers start. */
void kp_rate_share(kp_rate *r, int workers);
/* Nanoseconds to wait before the next send (0: go now, and a token was
 * taken). Thread-safe. */
uint64_t kp_rate_take(kp_rate *r, uint64_t now_ns);

/* One delivery pass of a channel: claims due messages, opens, sends
 * (honouring `rate`), settles each with its outcome (sent, retry at
 * backoff, dead). `rd` reads endpoints. *n messages attempted. Several
 * passes of one channel may run at once in threads of their own (each its
 * own rd, sender and io), sharing `rate` (kp_rate_share): the leases keep
 * them from claiming the same message.
 *
 * A pass claims at most KP_DELIVER_BATCH / rate->workers messages (at
 * least KP_DELIVER_BATCH_MIN; fewer when the rate is low: about two
 * seconds' worth of the pass's share of it), so a burst of due messages is
 * spread over the workers; leased for twice the channel's timeout
 * plus the time the pass's share of the rate needs for the batch; a message whose turn comes
 * too late to finish before the lease ends is handed back, so a lease never
 * runs out under a live worker. Outcomes are settled every
 * KP_SETTLE_BATCH messages or 250 ms, and at the end: a crash re-sends at
 * most the messages attempted since the last settle (the provider gets
 * the message's key as its idempotency key).
 *
 * Outcomes: accepted -> SENT (provider id kept); refused -> attempts + 1,
 * DEAD when the provider said it is permanent or attempts reached
 * retry.max_attempts, else PENDING at kp_notify_backoff() (random jitter).
 * A webhook whose endpoint is gone or inactive is DEAD at once with that
 * reason (not cancelled: the back office can retry it once the endpoint is
 * active again); a message that cannot be opened (another key file) is
 * DEAD too. last_error says why in words. */
enum { KP_DELIVER_BATCH = 64, KP_DELIVER_BATCH_MIN = 8, KP_SETTLE_BATCH = 32 };
kp_err kp_notify_deliver_pass(kp_store *rd, const kp_notify_env *env, const kp_notify_io *io,
                              kp_sender *sender, kp_channel channel, kp_rate *rate,
                              kp_time now, size_t *n, kp_deliver_stats *stats, kp_error *e);

/* The first attempts io->direct() took for `channel`: takes up to the
 * pass's share of KP_DELIVER_BATCH (io->direct_take), sends each as
 * kp_notify_deliver_pass does (rate, outcomes) and hands each outcome to
 * io->direct_done(); on a stop the untried ones go back untried. *n
 * messages taken. A no-op without io->direct_take. */
kp_err kp_notify_deliver_direct(kp_store *rd, const kp_notify_env *env, const kp_notify_io *io,
                                kp_sender *sender, kp_channel channel, kp_rate *rate,
                                kp_time now, size_t *n, kp_deliver_stats *stats, kp_error *e);

#endif
