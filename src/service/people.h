/*
 * people.h: the back office, written once over the store, the ledger and the
 * personal-data key: customers (registration, search, edit, erase), cards
 * (batches, lifecycle, barcodes), staff (accounts, sessions, roles), manual
 * adjustments, the audit log, families, transfers, CSV import and export.
 * The HTTP routes (src/server/http_admin.c, http_customers.c) and the CLI
 * (src/cli/cmd_people.c) are thin layers over these.
 *
 * Every operation runs on behalf of an actor (a staff member, a till's
 * terminal, or the command line), checks the actor's role first, and writes
 * one audit entry in the same transaction as its change. Writes must run
 * inside a store transaction the caller opens (the server's writer wraps
 * each in a savepoint of a group commit). Answers are JSON written into a
 * kp_buf; personal data appears only in answers, never in errors, audit
 * details or logs.
 */
#ifndef KOPILKA_SERVICE_PEOPLE_H
#define KOPILKA_SERVICE_PEOPLE_H

#include <kopilka/people.h>
#include <kopilka/report.h>
#include <kopilka/rfm.h>

#include "crypto/pii.h"
#include "service.h"

typedef enum kp_actor_kind {
    KP_ACTOR_CLI = 0, /* the command line: the operator of the machine */
    KP_ACTOR_STAFF,
    KP_ACTOR_TERMINAL, /* a till or the web form's backend, by its API key */
    KP_ACTOR_CUSTOMER, /* the customer themselves: an unsubscribe link, an SMS reply, a
                        * cabinet session ("customer:<id>"); no back-office permission */
} kp_actor_kind;

typedef struct kp_actor {
    kp_actor_kind kind;
    char name[96];    /* "staff:anna", "terminal:main", "cli", "customer:12" */
    kp_role role;     /* staff only */
    int64_t staff_id; /* staff only */
    /* Staff of role "partner" only: the partner's code (kp_staff.partner);
     * such an actor reaches only its partner's data (src/service/partner.c). */
    char partner[KP_PARTNER_CODE_MAX];
    /* Customer only: whose account a cabinet session acts on (0 = an
     * anonymous customer: a link, an SMS reply). Such an actor holds the
     * self permissions (kp_office_require), and every operation it runs
     * checks that what it touches is that customer's own. */
    int64_t customer_id;
    /* Customer only: a sign-up whose phone a one-time code has proved
     * (POST /v1/signup): may register a card, and then acts as the new
     * customer (kp_customer_register). */
    bool signup;
} kp_actor;

/* Everything a back-office operation needs. */
typedef struct kp_office {
    kp_store *st;
    const kp_pii *pii;              /* NULL: no key file, personal data refused */
    const kp_program *program;      /* NULL: none loaded */
    const kp_people_policy *policy; /* never NULL (kp_office_init) */
    kp_time now;
    kp_actor actor;
    kp_scratch *sc;
} kp_office;

/* Fills o; policy from the program's "customers" section (cached). */
void kp_office_init(kp_office *o, kp_store *st, const kp_pii *pii, const kp_program *program,
                    kp_time now, const kp_actor *actor, kp_scratch *sc);

/* The "customers" section of `program` (parsed once per version and kept
 * until the process ends; bounded by program loads). NULL program: defaults. */
const kp_people_policy *kp_people_policy_of(kp_store *st, const kp_program *program);

/* Refuses (KP_ERR_FORBIDDEN) an actor whose role lacks `perm`. The CLI may
 * do everything; a terminal may register cards and read cards; a customer
 * with a session (actor.customer_id) holds the self permissions, on their
 * own account only: customer.read, customer.edit, customer.erase, card.read,
 * card.manage, family and transfer; a proved sign-up may register. */
kp_err kp_office_require(const kp_office *o, kp_permission perm, kp_error *e);
/* kp_office_require for an operation on customer `customer_id`: a
 * customer actor may only touch themselves; anyone else's id is
 * KP_ERR_NOT_FOUND ("customer"), as an unknown one is, so a session never
 * learns which ids exist. */
kp_err kp_office_require_customer(const kp_office *o, kp_permission perm, int64_t customer_id,
                                  kp_error *e);
/* kp_office_require for an operation over many customers or cards (a
 * search, a migration, a card by number nobody checked is theirs): a
 * customer actor is refused (KP_ERR_FORBIDDEN) whatever their self
 * permissions. */
kp_err kp_office_require_back_office(const kp_office *o, kp_permission perm, kp_error *e);
/* True when the actor is a customer's own session (kp_actor.customer_id). */
bool kp_office_is_self(const kp_office *o);
/* Makes the actor customer `customer_id` themselves ("customer:<id>"),
 * as an unsubscribe link, an SMS reply, a login and a sign-up do. */
void kp_office_act_as_customer(kp_office *o, int64_t customer_id);

/* Appends an audit entry for the actor. Never pass personal data. */
kp_err kp_office_audit(kp_office *o, const char *action, const char *target, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* kp_error for a storage failure ("storage failed: <the store's message>"). */
kp_err people_storage(kp_store *st, kp_err err, kp_error *e);
/* Writes ,"key":"time" into a JSON object (null for 0 or KP_TIME_NEVER). */
void people_time_kv(kp_buf *b, const char *key, kp_time t);

/* Every field a request got wrong, for a form to show them all at once:
 * the first KP_FIELD_ERRORS_MAX, and how many more there were. */
enum { KP_FIELD_ERRORS_MAX = 64 };
typedef struct kp_field_errors {
    size_t n;
    size_t more; /* errors found past the list */
    struct {
        char field[64];
        char message[256];
    } items[KP_FIELD_ERRORS_MAX];
} kp_field_errors;

/* ---- normalisation (people_norm.c). Each returns false with a message. */

/* A phone as people type it -> E.164, by libphonenumber (phone.h):
 * "8 916 765-43-21", "8(916)7654321", "916 765-43-21" and "+7 916 765 43 21"
 * are all "+79167654321" in region "RU"; "050 123 4567" is "+380501234567"
 * in "UA". Digits, a leading +, spaces, dashes, dots and parentheses only;
 * the number must be valid in its country (docs/api.md, "Phone numbers").
 * `region`: the ISO 3166 code numbers typed without + belong to; "" = every
 * number must start with +. Every path that stores or looks up a phone
 * (registration, edit, import, search, the till) must pass the same region
 * (kp_phone_region_of(program)): the blind index only finds equal strings. */
bool kp_norm_phone_in(const char *in, const char *region, char out[KP_PHONE_MAX + 1],
                      const char **why);
/* kp_norm_phone_in with KP_PHONE_REGION_DEFAULT: for callers with no
 * program (the default program's country). */
bool kp_norm_phone(const char *in, char out[KP_PHONE_MAX + 1], const char **why);
/* The region numbers typed without + belong to under `program` (its
 * "country"; NULL program: KP_PHONE_REGION_DEFAULT). */
const char *kp_phone_region_of(const kp_program *program);
/* Trimmed, lowercase ASCII letters; one @, a dot in the domain, no spaces. */
bool kp_norm_email(const char *in, char out[KP_EMAIL_MAX + 1], const char **why);
/* Trimmed, inner runs of spaces collapsed; 1..KP_NAME_MAX bytes of UTF-8
 * without control characters. */
bool kp_norm_name(const char *in, char out[KP_NAME_MAX + 1], const char **why);
/* The words of a normalised name, lowercased (ASCII, Cyrillic), for the
 * blind index; at most KP_NAME_WORDS_MAX, duplicates removed. */
size_t kp_name_words(const char *name, char words[KP_NAME_WORDS_MAX][KP_NAME_MAX + 1]);
/* "YYYY-MM-DD", a real day from 1900-01-01; *days = days since the epoch. */
bool kp_parse_date(const char *in, int *year, int *month, int *day, const char **why);

/* ---- customers (customers.c) */

/* POST /v1/customers: registers a card to a new customer (docs/api.md).
 * Field errors go to fe (all of them) and e (the first). KP_ERR_CONFLICT
 * with e->field "phone", "email" or "card" when taken. */
kp_err kp_customer_register(kp_office *o, const char *body, size_t len, kp_buf *out,
                            kp_field_errors *fe, kp_error *e);
kp_err kp_customer_get(kp_office *o, int64_t id, kp_buf *out, kp_error *e);
/* {"card"|"phone"|"email"|"name": "..."} -> {"customers": [...]} */
kp_err kp_customer_search(kp_office *o, const char *body, size_t len, kp_buf *out, kp_error *e);
kp_err kp_customer_update(kp_office *o, int64_t id, const char *body, size_t len, kp_buf *out,
                          kp_field_errors *fe, kp_error *e);
/* Removes the personal data; keeps the id, the cards (blocked) and the
 * ledger. {"reason": "..."} required. */
kp_err kp_customer_erase(kp_office *o, int64_t id, const char *body, size_t len, kp_buf *out,
                         kp_error *e);
/* Adds a fresh card to a customer's account: {"card": "..."}. */
kp_err kp_customer_add_card(kp_office *o, int64_t id, const char *body, size_t len, kp_buf *out,
                            kp_error *e);
/* The customer's account history, newest first: the operations with op
 * id < before (0 = from the newest), at most limit (1..KP_HISTORY_PAGE_MAX),
 * each with its card, the customer of that card and its explain list
 * (kp_service_explain); "next_before" pages on (null on the last page). */
enum { KP_HISTORY_PAGE_MAX = 100 };
kp_err kp_customer_history(kp_office *o, int64_t id, int64_t before, int64_t limit, kp_buf *out,
                           kp_error *e);
/* Writes the customer as JSON (personal data opened with the key). */
kp_err kp_customer_json(kp_office *o, const kp_customer_row *row, kp_buf *out, kp_error *e);

/* ---- phones stored before E.164 (customers_phones.c) */

typedef struct kp_phones_migration {
    int64_t checked;    /* customers with a phone (erased ones have none) */
    int64_t changed;    /* rewritten in E.164 (with dry_run: would be) */
    int64_t unreadable; /* no valid number either way: left, reported */
    int64_t conflicts;  /* the E.164 form is another customer's: left, reported */
    int64_t ambiguous;  /* valid both as stored (+...) and as typed in the country
                         * ("8 495 ..." once stored "+8495...", a valid Vietnamese
                         * number): left, reported, for a person to decide */
} kp_phones_migration;

/* The E.164 form of a phone stored by the normalisation before
 * libphonenumber ("+" and the digits as typed): as an international number
 * when it is a valid one, else as the digits typed in `region`. */
bool kp_phone_from_legacy(const char *stored, const char *region, char out[KP_PHONE_MAX + 1]);

/* Rewrites every stored phone that kp_phone_from_legacy reads differently,
 * in the program's country, with its blind index (`kopilka phones
 * migrate`); one audit entry with the counts. Each customer left as it was
 * is reported through report(ctx, line). dry_run: counts, writes nothing.
 * Run it inside a transaction the caller opens; running it again changes
 * nothing. */
kp_err kp_customers_phones_migrate(kp_office *o, bool dry_run,
                                   void (*report)(void *ctx, const char *line), void *ctx,
                                   kp_phones_migration *m, kp_error *e);

/* ---- cards (cards.c) */

/* Issues `count` cards (1..10 000 000) as batch `name` ("" = no batch),
 * calling emit(ctx, number) for each. *batch_id gets the batch's id. */
kp_err kp_cards_issue_batch(kp_office *o, const char *name, int64_t count,
                            void (*emit)(void *ctx, const char *number), void *ctx,
                            int64_t *batch_id, kp_error *e);
struct kp_chunks;
/* The same in chunks (chunks.h) for the CLI: the caller has begun `ch`;
 * the batch's row is written in the first chunk, its audit entry in the
 * last. A job cut short keeps the cards of its committed chunks (in the
 * batch, which still says `count`). */
kp_err kp_cards_issue_batch_chunks(kp_office *o, const char *name, int64_t count,
                                   void (*emit)(void *ctx, const char *number), void *ctx,
                                   struct kp_chunks *ch, int64_t *batch_id, kp_error *e);
/* Calls each(ctx, card) for every card of batch `name` in number order
 * (stops early when each returns false); *batch gets the batch. Only reads:
 * the CLI's export runs it outside any write transaction. */
kp_err kp_cards_batch_each(kp_office *o, const char *name,
                           bool (*each)(void *ctx, const kp_card_info *card), void *ctx,
                           kp_card_batch *batch, kp_error *e);
/* POST /v1/admin/card-batches {"name", "count"} (count up to 10 000: a
 * batch is written by the writer, between purchases; the CLI does more). */
kp_err kp_cards_batch_http(kp_office *o, const char *body, size_t len, kp_buf *out, kp_error *e);
/* The printer's CSV of a batch (by id, or name when id is 0). Only reads;
 * *batch_id_out (may be NULL) gets the batch's id for the caller's audit. */
kp_err kp_cards_batch_csv(kp_office *o, int64_t id, const char *name, kp_buf *out,
                          int64_t *batch_id_out, kp_error *e);
/* The card's state, holder, batch, events (no personal data). */
kp_err kp_card_detail(kp_office *o, const char *number, kp_buf *out, kp_error *e);
/* Lifecycle; each writes a card event and an audit entry. Bodies:
 * block {"reason"}, unblock {"reason"}, replace {"new_card"?, "reason"}. */
kp_err kp_card_block(kp_office *o, const char *number, const char *body, size_t len, kp_buf *out,
                     kp_error *e);
kp_err kp_card_unblock(kp_office *o, const char *number, const char *body, size_t len, kp_buf *out,
                       kp_error *e);
kp_err kp_card_replace(kp_office *o, const char *number, const char *body, size_t len, kp_buf *out,
                       kp_error *e);
/* Records a lifecycle event (cards.c; also used by customers.c). */
kp_err kp_card_event_record(kp_office *o, const char *number, kp_card_state from, kp_card_state to,
                            const char *reason, const char *other, kp_error *e);
/* The same, with the event's id in *id (a notification's key names it). */
kp_err kp_card_event_record_id(kp_office *o, const char *number, kp_card_state from,
                               kp_card_state to, const char *reason, const char *other,
                               int64_t *id, kp_error *e);

/* ---- barcodes (barcode.c, libzint) */
typedef enum kp_barcode_kind { KP_BARCODE_CODE128 = 1, KP_BARCODE_QR } kp_barcode_kind;
/* An SVG image of `number`, written into out. */
kp_err kp_barcode_svg(kp_barcode_kind kind, const char *number, kp_buf *out, kp_error *e);
/* A PNG image of `number`, written into out (binary). */
kp_err kp_barcode_png(kp_barcode_kind kind, const char *number, kp_buf *out, kp_error *e);
/* GET /v1/cards/{number}/barcode.svg and the like (card.read): the picture
 * of a card that exists (a customer's own session: of their own card). */
kp_err kp_card_picture(kp_office *o, kp_barcode_kind kind, bool png, const char *number,
                       kp_buf *out, kp_error *e);
/* Both pictures of one encoding (svg or png may be NULL): the batch
 * export draws each symbol once. */
kp_err kp_barcode_pictures(kp_barcode_kind kind, const char *number, kp_buf *svg, kp_buf *png,
                           kp_error *e);

/* ---- staff, sessions, adjustments, audit (staff.c) */

enum { KP_SESSION_TTL_SECONDS = 8 * 3600, KP_PASSWORD_MIN = 10, KP_PASSWORD_MAX = 128 };

/* Adds a staff member; the password is hashed here (Argon2id). `partner`
 * (NULL = "") binds a "partner" member to a partner of the running program:
 * required for that role, refused (field "partner") for any other. */
kp_err kp_staff_add(kp_office *o, const char *login, const char *role, const char *partner,
                    const char *password, int64_t *id, kp_error *e);
/* POST /v1/admin/staff {"login", "role", "partner"?, "password"}. */
kp_err kp_staff_add_http(kp_office *o, const char *body, size_t len, kp_buf *out, kp_error *e);
/* PATCH /v1/admin/staff/{id} {"role"?, "partner"?, "active"?, "password"?};
 * leaving the partner role unbinds the member. */
kp_err kp_staff_update_http(kp_office *o, int64_t id, const char *body, size_t len, kp_buf *out,
                            kp_error *e);
kp_err kp_staff_list_json(kp_office *o, kp_buf *out, kp_error *e);
/* Checks a login and password against the store (slow on purpose:
 * Argon2id; run it off the writer). *staff is the member on success; a
 * wrong login and a wrong password give the same KP_ERR_UNAUTHORIZED. */
kp_err kp_staff_check_password(kp_store *st, const char *body, size_t len, kp_staff *staff,
                               kp_error *e);
/* Starts a session for `staff` (a write): token_out[69] gets the token. */
kp_err kp_session_start(kp_office *o, const kp_staff *staff, char token_out[69],
                        kp_time *expires_at, kp_error *e);
/* The staff member of a session token ("kps_..."); KP_ERR_UNAUTHORIZED when
 * unknown, expired or disabled. */
kp_err kp_session_check(kp_store *st, const char *token, kp_time now, kp_staff *staff,
                        kp_time *expires_at);
kp_err kp_session_end(kp_office *o, const char *token, kp_error *e);
/* POST /v1/admin/adjustments {"card", "points", "reason", "key", "kind"?}. */
kp_err kp_adjust(kp_office *o, const char *body, size_t len, kp_buf *out, bool *replayed,
                 kp_error *e);
/* GET /v1/admin/audit: the entries `filter` selects (audit_list), at most
 * `limit` (1..KP_AUDIT_PAGE_MAX): {"entries": [...], "next_after"}, or
 * "next_before" when newest first. */
enum { KP_AUDIT_PAGE_MAX = 1000 };
kp_err kp_audit_json(kp_office *o, const kp_audit_filter *filter, int64_t limit, kp_buf *out,
                     kp_error *e);
/* Checks the audit log's MACs with the key file's audit key (`kopilka
 * verify`): each entry's MAC must match, and once one entry has a MAC every
 * later one must have one too (an entry without, after it, was written by
 * someone without the key). Entries before the first MAC (written before
 * MACs existed, or before the key file) are counted in *without_mac. One
 * line per problem goes to report(); *problems counts them. */
kp_err kp_audit_check_macs(kp_store *st, const kp_pii *pii,
                           void (*report)(void *ctx, const char *line), void *ctx,
                           int64_t *problems, int64_t *checked, int64_t *without_mac);

/* ---- families and transfers (family.c) */

/* POST /v1/admin/families {"owner": id}. */
kp_err kp_family_create(kp_office *o, const char *body, size_t len, kp_buf *out, kp_error *e);
kp_err kp_family_get(kp_office *o, int64_t id, kp_buf *out, kp_error *e);
/* POST /v1/admin/families/{id}/members {"customer": id, "may_spend": bool}. */
kp_err kp_family_join(kp_office *o, int64_t family_id, const char *body, size_t len, kp_buf *out,
                      kp_error *e);
/* PATCH /v1/admin/families/{id}/members/{customer} {"may_spend": bool}. */
kp_err kp_family_set(kp_office *o, int64_t family_id, int64_t customer_id, const char *body,
                     size_t len, kp_buf *out, kp_error *e);
/* POST /v1/admin/families/{id}/members/{customer}/leave. */
kp_err kp_family_leave(kp_office *o, int64_t family_id, int64_t customer_id, kp_buf *out,
                       kp_error *e);
/* ---- family invitations (family_invite.c): a customer's own session only */

enum {
    KP_INVITATION_TTL_SECONDS = 7 * 24 * 3600, /* an invitation waits a week for its answer */
    KP_FAMILY_INVITATIONS_MAX = 16,            /* pending ones per family, and per phone shown */
};
/* POST /v1/me/family/invitations {"phone"}: the family's owner invites a
 * phone (any form people type; normalised as at registration). The same
 * phone asked again while pending gives the same invitation (*replayed).
 * A customer holding the phone gets a family_invite notification. 409 when
 * the actor owns no family, 403 when they are a member, not the owner. */
kp_err kp_family_invite(kp_office *o, const char *phone, kp_buf *out, bool *replayed,
                        kp_error *e);
/* GET /v1/me/family/invitations: {"received": [pending ones to the actor's
 * phone, with the inviter's name], "sent": [an owner's pending ones, with
 * the phone]}. */
kp_err kp_family_invitations(kp_office *o, kp_buf *out, kp_error *e);
/* POST /v1/me/family/invitations/{id}/accept | decline: an invitation to
 * the actor's own phone (anyone else's is 404), pending and not expired
 * (409 otherwise). Accepting joins the family (its answer is the family,
 * may_spend false until the owner allows); declining answers the
 * invitation. */
kp_err kp_family_invitation_answer(kp_office *o, int64_t id, bool accept, kp_buf *out,
                                   kp_error *e);

/* POST /v1/transfers {"from_card", "to_card", "points", "key"}. */
kp_err kp_transfer(kp_office *o, const char *body, size_t len, kp_buf *out, bool *replayed,
                   kp_error *e);
/* POST /v1/me/transfers {"to_phone" | "to_card", "points", "key"}: a
 * customer's own session gives from their first active card, to the
 * first active card of the customer with that phone (or to the card),
 * through kp_transfer (the program's limits, idempotent by key). The
 * answer hides the receiver: {"key", "from_card", "to_card_last4",
 * "points", "balance", "lots"} ("replayed" on a retry). */
kp_err kp_transfer_from_self(kp_office *o, const char *body, size_t len, kp_buf *out,
                             bool *replayed, kp_error *e);
/* The family customer_id belongs to (a customer's own session: only
 * themselves); 404 "family" when none. */
kp_err kp_family_of_customer(kp_office *o, int64_t customer_id, int64_t *family_id, kp_error *e);

/* ---- the till (till.c): what a card may do beyond the program's rules */

/* Before pricing: sets sc->till_burn_max (0 when the card may not spend:
 * unregistered under a program that says so, or a family member the owner
 * has not allowed) and *no_earn (an unregistered card under a program that
 * gives it nothing). *why says which. `may_burn`: whether the card may
 * spend, already read (till_load with KP_TILL_MAY_BURN), or NULL to read it
 * here when it matters. */
kp_err kp_till_limits(kp_store *st, const kp_program *program, const kp_card *card,
                      const kp_basket *basket, const bool *may_burn, kp_scratch *sc,
                      bool *no_earn, const char **why);
/* After pricing: applies *no_earn and explains a limited burn. */
void kp_till_apply(kp_quote *q, bool burn_limited, bool no_earn, const char *why);

/* ---- the dashboard (dashboard.c) */

enum {
    KP_DASHBOARD_PERIOD_MONTHS_MAX = 36, /* the longest period one dashboard covers */
    KP_DASHBOARD_MONTHS_DEFAULT = 12,    /* without `from`: the 12 months ending with to's */
    KP_DASHBOARD_ACTIVE_MONTHS = 12,     /* an active member bought within this before `to` */
};

typedef struct kp_dashboard_report {
    char from[11], to[11]; /* the period, dates of the program's clock, both included */
    char store[KP_STR_MAX]; /* "" = every store */
    /* The store's figures, with every month of the period in months[]
     * (those without operations as zeros). */
    kp_dashboard figures;
    int32_t active_share_bp;  /* members_active / members, in 1/10000, rounded */
    int64_t minor_per_point;  /* of the running program (0 without one) */
    int64_t liability_minor;  /* outstanding x minor_per_point */
} kp_dashboard_report;

/* (report.read) The dashboard of the period from..to ("YYYY-MM-DD" on the
 * program's clock, both days included; `to` NULL = today, `from` NULL =
 * the first day of the 12 calendar months ending with to's), of the
 * operations recorded under `store` (NULL or "" = all). Reads on o->st
 * only (a reader, for the server). KP_ERR_INVALID naming "from" or "to"
 * for a bad date or to before from; KP_ERR_LIMIT naming "from" for a
 * period over KP_DASHBOARD_PERIOD_MONTHS_MAX months. */
kp_err kp_dashboard_read(kp_office *o, const char *from, const char *to, const char *store,
                         kp_dashboard_report *out, kp_error *e);

/* A report's period (dashboard.c): the dates asked for, checked, and their
 * instants on the program's clock. */
typedef struct kp_report_period {
    char from[11], to[11];  /* "YYYY-MM-DD", both days included */
    char store[KP_STR_MAX]; /* "" = every store */
    kp_time from_day, end_day; /* from's and the day after to's midnight, as UTC dates */
    kp_time from_at, to_at;    /* the period's instants: from_at <= at < to_at */
    int32_t utc_offset_minutes;
} kp_report_period;

/* (report.read) The period from..to as kp_dashboard_read() takes it (the
 * same defaults, errors and limit). */
kp_err kp_report_period_read(kp_office *o, const char *from, const char *to, const char *store,
                             kp_report_period *out, kp_error *e);
/* The same without a permission: for a caller that checked its own (a
 * partner's operations, src/service/partner.c). */
kp_err kp_period_read(const kp_office *o, const char *from, const char *to, const char *store,
                      kp_report_period *out, kp_error *e);

/* ---- reports (reports.c) */

/* The points report (docs/analytics.md "Reports"): the store's figures
 * (kp_report_ops.points) and the ratios built on them. Shares are in
 * ten-thousandths rounded half up, 0 when their denominator is 0. */
typedef struct kp_points_report {
    kp_report_period period;
    kp_report_points figures;
    char currency[4];              /* the report's currency ("" without a program) */
    int64_t minor_per_point;       /* of the running program in that currency (0 without one) */
    int64_t liability_minor;       /* outstanding x minor_per_point */
    int32_t breakage_bp;           /* expired / (expired + burnt) */
    int32_t redemption_bp;         /* burnt / issued */
    int64_t cost_minor;            /* burnt x minor_per_point: what the program gave away */
    int32_t cost_share_bp;         /* cost_minor / members_revenue_minor */
    int64_t cost_per_retained_minor; /* cost_minor / retained, rounded half up */
    /* members_revenue_minor + nonmembers_revenue_minor (the sales without
     * a card), and cost_minor's share of it. */
    int64_t total_revenue_minor;
    int32_t cost_share_total_bp;
} kp_points_report;

/* (report.read) The points report of the period (kp_report_period_read()'s
 * arguments and errors), read on o->st in one snapshot. */
/* `currency`: the accounts whose points count (NULL or "" = the program's
 * own currency); never a sum of two. KP_ERR_INVALID on "currency" for a
 * currency the program does not accept. */
kp_err kp_points_report_read(kp_office *o, const char *from, const char *to, const char *store,
                             const char *currency,
                             kp_points_report *out, kp_error *e);

/* The members report (docs/analytics.md "The members report"): the
 * store's sums (kp_report_ops.members) and the four figures built on them.
 * Shares and the ratio are in ten-thousandths rounded half up, 0 when
 * their denominator is 0. */
typedef struct kp_members_report {
    kp_report_period period;
    char tier[KP_STR_MAX];  /* "" = every member */
    char recent_since[11];  /* the first day of the 12 months that end with `to` */
    kp_report_members figures;
    int64_t total_revenue_minor, total_receipts; /* members' + non-members' */
    int64_t member_average_minor, nonmember_average_minor; /* rounded half up */
    int32_t average_ratio_bp;      /* (1) members' average receipt / non-members' */
    int32_t top_share_bp;          /* (2) top_revenue / followed_revenue */
    int32_t followed_receipts_bp;  /* followed_receipts / nonmember_receipts: coverage */
    int32_t followed_revenue_bp;   /* followed_revenue / nonmember_revenue */
    int32_t idle_share_bp;         /* (3) idle_members / members */
    int32_t idle_revenue_bp;       /*     idle_revenue / member_revenue */
    int32_t recent_share_bp;       /* (4) members_recent / members_before */
} kp_members_report;

/* (report.read) The members report of the period (kp_report_period_read()'s
 * arguments and errors) for the members of `tier` (NULL or "" = all;
 * KP_ERR_INVALID naming "tier" when too long), read on o->st in one
 * snapshot. */
kp_err kp_members_report_read(kp_office *o, const char *from, const char *to, const char *store,
                              const char *tier, kp_members_report *out, kp_error *e);
/* The customers report (docs/analytics.md "The customers report"): the
 * store's figures (kp_report_ops.customers) with the members who bought in
 * the period scored by RFM (rfm.h) and the tier moves given their
 * direction by the running program's tier order. */
enum { KP_CUSTOMERS_WINDOW_DEFAULT = 6, KP_CUSTOMERS_WINDOW_MAX = 24 };
/* A month of the before/after window: a twelfth of the Gregorian year
 * (30.436875 days), in seconds. */
#define KP_CUSTOMERS_MONTH_SECONDS ((int64_t)2629746)

typedef struct kp_customers_segment {
    int64_t members;
    int64_t revenue_minor;
    int64_t recency_days; /* the members' sums: the route divides by members */
    int64_t receipts;
} kp_customers_segment;

typedef struct kp_customers_report {
    kp_report_period period;
    char tier[KP_STR_MAX]; /* "" = every member */
    int window_months;     /* 1..KP_CUSTOMERS_WINDOW_MAX */
    kp_report_customers figures;
    /* Each move's direction by the program's tier order: 1 up, -1 down, 0
     * when either tier is not the running program's; and their counts. */
    int8_t move_direction[KP_REPORT_MOVES_MAX];
    int64_t moves_up, moves_down;
    /* "YYYY-MM" of each month of figures.n_months */
    char months[KP_REPORT_COHORT_MONTHS][8];
    /* RFM of the members who bought in the period */
    kp_rfm_cutoffs cutoffs;
    kp_customers_segment segments[KP_RFM_SEGMENTS];
    int64_t grid[5][5]; /* members by [R - 1][F - 1] */
} kp_customers_report;

/* (report.read) The customers report of the period (kp_report_period_read()'s
 * arguments and errors), `tier` ("" or NULL = every member; else one of the
 * running program's tiers) and `window` (months, "" or NULL = 6, else 1 to
 * 24), read on o->st in one snapshot. KP_ERR_LIMIT when more members bought
 * in the period than RFM scores at once (KP_RFM_MEMBERS_DEFAULT_LIMIT). */
kp_err kp_customers_report_read(kp_office *o, const char *from, const char *to, const char *store,
                                const char *tier, const char *window, kp_customers_report *out,
                                kp_error *e);

/* The accounts whose RFM segment is in `mask` (bit 1 << kp_rfm_segment),
 * scored as kp_customers_report_read() scores the members of the `days`
 * whole days on the program's clock that end with today (o->now), every
 * store and tier: the same store read, cut-offs and map. Sorted ascending
 * into *accounts (malloc'd, the caller frees), *n of them. Members known
 * only by a card (account 0) count for the cut-offs and are never listed.
 * Needs no permission: the caller's does (campaign.manage). */
kp_err kp_rfm_accounts(kp_office *o, int64_t days, uint32_t mask, int64_t **accounts, size_t *n,
                       kp_error *e);

/* ---- import and export (import.c) */

/* One file of an import: read from `path`, or, when `data` is set, from its
 * `len` bytes in memory (the HTTP route), `path` then only naming it in
 * reports ("cards.csv"). path NULL: no such file. */
typedef struct kp_import_file {
    const char *path;
    const char *data;
    size_t len;
} kp_import_file;

typedef struct kp_import_files {
    kp_import_file customers;
    kp_import_file cards;
    kp_import_file balances;
    /* Sales history (docs/import.md "Sales"): imported alone, written
     * through kp_store_ops.sales; receipts already there are skipped. */
    kp_import_file sales;
    /* Check every row and count what the import would do (created,
     * updated, unchanged), writing nothing, not even the audit entry. */
    bool dry_run;
} kp_import_files;

typedef struct kp_import_stats {
    int64_t rows; /* data rows read (blank ones not counted) */
    int64_t cards_created, cards_unchanged;
    int64_t customers_created, customers_unchanged;
    int64_t customers_updated; /* known customers re-imported with other personal data */
    int64_t balances_posted, balances_unchanged;
    int64_t sales_inserted, sales_unchanged; /* receipts (a row is a receipt's line) */
    int64_t bad_rows; /* problems found; the first KP_IMPORT_REPORT_MAX are reported */
} kp_import_stats;

enum { KP_IMPORT_REPORT_MAX = 1000 };

/* One problem of a file, as the check reports it. */
typedef struct kp_import_problem {
    const char *file;    /* the file's name ("customers.csv") */
    int64_t line;        /* 1 is the header row; a record spanning lines counts at its first */
    const char *field;   /* the column, "" for the row as a whole */
    const char *message; /* what is wrong, and what is allowed */
    const char *text;    /* the whole in one line: "customers.csv:17: phone: must have ..." */
} kp_import_problem;

/* Called for each of the first KP_IMPORT_REPORT_MAX problems; the problem
 * is valid during the call only. */
typedef void (*kp_import_report_fn)(void *ctx, const kp_import_problem *problem);

/* Validates every row of every file first, reporting each bad one through
 * report(ctx, problem); writes nothing unless all are good; then imports
 * all in the caller's transaction. Rows already imported are skipped, so
 * re-running a file changes nothing; a known customer whose personal data
 * differs is updated (stats->customers_updated, one audit entry each;
 * docs/import.md). KP_ERR_INVALID when any row is bad. */
kp_err kp_import(kp_office *o, const kp_import_files *files, kp_import_report_fn report,
                 void *ctx, kp_import_stats *stats, kp_error *e);
/* The same for the CLI, in chunks (chunks.h; `ch` initialised, not
 * begun): the check pass writes nothing (its reads run in chunks too), then
 * the rows are written in chunks, the audit entry in the last, which it
 * commits itself on success (the caller's kp_chunks_end then does nothing).
 * Not all or nothing once writing began: an interruption (a crash, kill,
 * a full disk) keeps the committed chunks, and running the same files
 * again completes the import (rows already written count as unchanged).
 * ch NULL: as kp_import(). A dry run (files->dry_run) only reads: give it
 * no chunks. */
struct kp_chunks;
kp_err kp_import_chunks(kp_office *o, const kp_import_files *files, kp_import_report_fn report,
                        void *ctx, struct kp_chunks *ch, kp_import_stats *stats, kp_error *e);
/* CSV exports; write(ctx, data, len) receives the file in pieces; *rows
 * gets the number of rows. They only read (so the server runs them on a
 * reader, off the writer); the caller audits them (`export.customers`,
 * `export.balances`) with kp_office_audit. */
kp_err kp_export_customers(kp_office *o, bool (*write)(void *ctx, const char *data, size_t len),
                           void *ctx, int64_t *rows, kp_error *e);
kp_err kp_export_balances(kp_office *o, bool (*write)(void *ctx, const char *data, size_t len),
                          void *ctx, int64_t *rows, kp_error *e);

/* ---- a birthday set from the command line (service_birthdays.c) */

/* Records `date` ("YYYY-MM-DD", not in the future) as the birthday of the
 * card's holder. One source of truth: a card with a customer record gets it
 * through kp_customer_update (sealed in the record, its month-day index
 * for the birthday grants, audited as customer.edit), exactly as PATCH
 * /v1/admin/customers/{id} does; a card nobody has registered yet gets the
 * index alone (audited as birthday.set) until it is registered: the
 * registration then sets or drops the index by its own birthday field. Needs the key (o->pii). *customer_id: the holder, 0 if
 * none. */
kp_err kp_birthday_set(kp_office *o, const char *card, const char *date, int64_t *customer_id,
                       kp_error *e);

/* ---- terminal keys and individual discounts (terminals.c) */

enum { KP_TERMINALS_PAGE_MAX = 1000 };

/* Adds a terminal of `store` (`terminals` permission) and writes its new key
 * ("kp_..." 51 bytes and a NUL) to key_out: the only time it is seen. */
kp_err kp_terminal_add(kp_office *o, const char *store, char key_out[65], kp_terminal *out,
                       kp_error *e);
/* Revokes terminal id: its key is refused from this transaction's commit
 * on (a running server polls the store's terminal generation). 404
 * "terminal" when there is none, 409 when it is revoked already. */
kp_err kp_terminal_revoke(kp_office *o, int64_t id, kp_terminal *out, kp_error *e);
/* Gives terminal id a new key (key_out, shown once); the old key is
 * refused as a revoked one is. Same errors as kp_terminal_revoke. */
kp_err kp_terminal_rotate(kp_office *o, int64_t id, char key_out[65], kp_terminal *out,
                          kp_error *e);
/* Terminals with id > after_id, at most limit (1..KP_TERMINALS_PAGE_MAX). */
kp_err kp_terminal_list(kp_office *o, int64_t after_id, kp_terminal *out, size_t limit, size_t *n,
                        kp_error *e);
/* Sets (has) or clears the individual discount of the card's account, bp in
 * hundredths of a percent (0..10000); `discount` permission; audited. */
kp_err kp_discount_set(kp_office *o, const char *card, bool has, int32_t bp, kp_error *e);

#endif
