/*
 * service.h: the operations a till performs (quote, purchase, return, card
 * lookup), written once over the store interface, the engine and the
 * ledger. The HTTP server and the CLI are thin layers over these; nothing
 * here knows HTTP. Answers are written as JSON into a kp_buf.
 *
 * Purchases and returns must run inside a store transaction the caller opens
 * (the server's writer wraps each one in a savepoint of a group commit).
 */
#ifndef KOPILKA_SERVICE_H
#define KOPILKA_SERVICE_H

#include <kopilka/clock.h>
#include <kopilka/store.h>

#include "core/buf.h"

enum { KP_TILL_PHONE_TEXT_MAX = 64 }; /* bytes of a phone as a till typed it */

/* A quote or a purchase. The customer is named by `card`, or by `phone`
 * (when the program's till.identify_by_phone allows it): the card is found
 * (kp_till_card_by_phone; for a purchase kp_till_purchase_by_phone, in the
 * writer) before the service runs, written to `card` with by_phone set, so
 * everything after (pricing, the stored operation, the operation log) sees
 * a card. */
typedef struct kp_purchase_req {
    char card[KP_STR_MAX];
    char phone[KP_TILL_PHONE_TEXT_MAX]; /* as sent; "" when the card was given */
    bool by_phone;                      /* card was found from phone */
    char receipt[KP_STR_MAX];
    bool at_given;
    kp_time at;
    bool offline; /* an offline till's later upload: "at" may lie up to till.offline_days back */
    /* Set only by the replay of an operation-log record of format 1 (from a
     * binary before the till's clock was bounded): its `at` is not checked,
     * so recovery after an upgrade answers as the old binary did. */
    bool log_format1;
    /* The receipt's currency as the request names it (ISO 4217), "" = not
     * named: the store's pattern's, else the program's (currency.h). */
    char currency[4];
    kp_basket basket;
} kp_purchase_req;

typedef struct kp_return_req {
    char card[KP_STR_MAX];
    char receipt[KP_STR_MAX];
    char original_receipt[KP_STR_MAX];
    char original_store[KP_STR_MAX]; /* the purchase's store; "" = the return's own store */
    bool at_given;
    kp_time at;
    /* Format 1 operation-log replay (see kp_purchase_req): `at` unchecked
     * and the answer without "original_store", as that binary wrote it. */
    bool log_format1;
    /* The currency the till says the purchase was in ("" = not said):
     * refused when it is not the purchase's; the return goes to the
     * purchase's own account either way. */
    char currency[4];
    kp_return_request request;
} kp_return_req;

/* Per-thread working memory for one operation at a time: the big structs
 * live here, allocated once, so the hot path allocates nothing large. */
typedef struct kp_scratch {
    kp_account account;
    kp_quote quote;
    kp_ledger_plan plan;
    kp_purchase_record record;
    kp_return_result ret;
    kp_history_item history[50];
    kp_buf detail;
    kp_buf answer;              /* a purchase's stored answer (service.c) */
    kp_buf notify;              /* the payload of an operation's notification event */
    kp_purchase_req replay_req; /* a purchase rebuilt to render its answer again */
    struct kp_script_cache *script; /* this thread's Lua state (src/script), NULL until used */
    /* A ceiling on the next pricing's burn from what the card may do
     * (kp_till_limits in till.c), -1 = none; kp_service_price consumes it. */
    int64_t till_burn_max;
    /* The receipt's currency being priced: "" = the program's own
     * (currency.h); kp_service_price passes it to the engine. */
    char currency[4];
    /* Price without writing the explanations' sentences (engine.h,
     * kp_price_opts.defer_text): set by the simulation, which reads only
     * their rules and figures. */
    bool defer_text;
} kp_scratch;

/* The lines (with their results and returned quantities) and lot takes of
 * a purchase's stored detail (kp_op_row.detail). KP_ERR_INTERNAL when it is
 * not one. */
kp_err kp_service_detail_read(const char *text, kp_purchase_record *r);

kp_scratch *kp_scratch_new(void);
void kp_scratch_free(kp_scratch *s);

/* Reads a request body that must be a JSON object: nesting over
 * KP_JSON_DEPTH_MAX, invalid JSON and non-objects are KP_ERR_INVALID with an
 * empty field (answered as bad_json). `flags` adds jansson decoding flags.
 * The caller owns the result (json_decref). Declared with an opaque type so
 * this header needs no jansson. */
struct json_t;
struct json_t *kp_json_body_load(const char *body, size_t len, size_t flags, kp_error *e);

/* Parsers of request bodies (service_json.c). Every error names the field. */
kp_err kp_purchase_req_parse(const char *body, size_t len, bool receipt_required,
                             kp_purchase_req *out, kp_error *e);
kp_err kp_return_req_parse(const char *body, size_t len, kp_return_req *out, kp_error *e);
/* {"card": "..."} or {"phone": "..."} into out->card / out->phone. */
kp_err kp_identify_req_parse(const char *body, size_t len, kp_purchase_req *out, kp_error *e);

/* Quote: what the basket would get now. Writes nothing. */
kp_err kp_service_quote(kp_store *st, const kp_program *program, const char *store,
                        const kp_purchase_req *req, kp_time now, kp_scratch *sc, kp_buf *out,
                        kp_error *e);

/* The back office's sandbox quote (POST /v1/admin/programs/sandbox): the
 * basket priced under `program` as kp_service_quote prices it (the same
 * engine, script and till limits, the same answer), at req's "at" or `now`
 * (any instant: no till's clock applies), for req->card's account as stored
 * (balance, lots, tier, counters), or, when req->card is "", for a blank
 * registered account holding `balance` points (0 to KP_SANDBOX_BALANCE_MAX)
 * of the program's purchase kind, spendable and never expiring. Reads
 * only: writes nothing, whatever the program's script does. */
#define KP_SANDBOX_BALANCE_MAX 1000000000000LL
kp_err kp_service_sandbox(kp_store *st, const kp_program *program, const char *store,
                          const kp_purchase_req *req, int64_t balance, kp_time now,
                          kp_scratch *sc, kp_buf *out, kp_error *e);

/* Purchase: idempotent by (store, receipt). *replayed is set when the answer
 * is the stored one of an earlier identical request. KP_ERR_CONFLICT when
 * the receipt was used with another body. */
kp_err kp_service_purchase(kp_store *st, const kp_program *program, const char *store,
                           const kp_purchase_req *req, kp_time now, kp_scratch *sc, kp_buf *out,
                           bool *replayed, kp_error *e);

/* Return: idempotent by (store, receipt) of the return's own store; the
 * purchase may have been made at any store of the program (original_store).
 * `program` bounds the return's "at" (till.clock_skew_minutes); NULL: no
 * bound (no program loaded). */
kp_err kp_service_return(kp_store *st, const kp_program *program, const char *store,
                         const kp_return_req *req, kp_time now, kp_scratch *sc, kp_buf *out,
                         bool *replayed, kp_error *e);

/* ---- what a till may say (till.c) */

/* Checks a till's "at" against the server's `now` under the program's
 * till section: within now ± clock_skew, or for an offline upload from
 * offline_days back to now + clock_skew. KP_ERR_INVALID on field "at" (or
 * "offline") saying what is allowed. */
/* A purchase without a card or phone (till_sale.c): an anonymous sale in
 * the sales history, touching no account; kp_service_purchase calls it. */
kp_err kp_service_sale_anonymous(kp_store *st, const kp_program *program, const char *store,
                                 const kp_purchase_req *req, kp_time now, kp_buf *out,
                                 bool *replayed, kp_error *e);
kp_err kp_till_check_at(const kp_program *program, bool at_given, kp_time at, bool offline,
                        kp_time now, kp_error *e);

struct kp_pii;
/* The card a till means by a phone number: the program must allow it
 * (KP_ERR_FORBIDDEN), the number is normalised as customer search does
 * (KP_ERR_INVALID), one customer has it (KP_ERR_NOT_FOUND) and that customer
 * has active cards on one account (KP_ERR_NOT_FOUND: none; KP_ERR_CONFLICT:
 * several accounts). Every error is on field "phone" and never repeats the
 * number. `pii` NULL (no key file) finds nobody. */
kp_err kp_till_card_by_phone(kp_store *st, const struct kp_pii *pii, const kp_program *program,
                             const char *phone, char card[KP_STR_MAX], kp_error *e);
/* A purchase that names its customer by phone: fills req->card and sets
 * req->by_phone, inside the transaction that runs the purchase (the
 * server's writer). A retry of a receipt the store already holds takes the
 * card of that operation, without looking the phone up again, so it gets
 * its first answer even if the phone's cards changed since. Does nothing
 * when req->phone is empty. */
kp_err kp_till_purchase_by_phone(kp_store *st, const struct kp_pii *pii,
                                 const kp_program *program, const char *store,
                                 kp_purchase_req *req, kp_error *e);

/* Appends `,"lots":[{"kind","amount","remaining","earned_at","active_from",
 * "expires_at"}]` (the account's open lots; a time that never comes is null)
 * to out: GET /v1/cards/{number} and GET /v1/admin/cards/{number} share it. */
void kp_service_lots_json(kp_buf *out, const kp_account *a);

/* Why an operation of an account's history moved its points, as a JSON
 * array written into out (appended): a purchase's explain list as the
 * till got it (rule, kind, base, rate, points, text), and for the other
 * types items of the same shape saying what happened (a return's points
 * taken back and given back, a grant's rule, an adjustment's reason, a
 * transfer, an expiry, an opening balance). `store` and `receipt` are the
 * operation's (kp_history_entry); reads only. */
kp_err kp_service_explain(kp_store *st, kp_op_type type, const char *store, const char *receipt,
                          int64_t points, kp_scratch *sc, kp_buf *out, kp_error *e);
/* The card's balance, lots and recent history. */
kp_err kp_service_card(kp_store *st, const char *number, kp_time now, kp_scratch *sc, kp_buf *out,
                       kp_error *e);
/* The same, with the account's tier and its privileges under `program`
 * (NULL: without them). */
kp_err kp_service_card_program(kp_store *st, const kp_program *program, const char *number,
                               kp_time now, kp_scratch *sc, kp_buf *out, kp_error *e);

/* POST /v1/identify: kp_service_card_program for req->card, beginning with
 * "identified_by":"phone" when req->by_phone. */
kp_err kp_service_identify(kp_store *st, const kp_program *program, const kp_purchase_req *req,
                           kp_time now, kp_scratch *sc, kp_buf *out, kp_error *e);

/* ---- durability: purchases and returns as redo records (durable.c) */
/* Writes the record of a purchase or return that produced `answer` into b
 * (reset first): what the writer gives kp_group_ops.log() and a backend's
 * recovery hands back to kp_durable_redo(). KP_ERR_NOMEM when b is full. */
kp_err kp_durable_purchase(kp_buf *b, const char *store, const kp_purchase_req *r, kp_time now,
                           int64_t program_version, const kp_buf *answer);
kp_err kp_durable_return(kp_buf *b, const char *store, const kp_return_req *r, kp_time now,
                         int64_t program_version, const kp_buf *answer);
/* What replaying records keeps between them (the program versions used, the
 * answer buffer). NULL when out of memory. */
typedef struct kp_durable_replay kp_durable_replay;
kp_durable_replay *kp_durable_replay_new(void);
void kp_durable_replay_free(kp_durable_replay *replay);
/* A kp_redo_fn (store.h), ctx a kp_durable_replay: runs the record through
 * the service at the time and program version it ran with, and fails
 * (KP_ERR_INTERNAL, field "oplog") unless the answer is the one given. */
kp_err kp_durable_redo(void *ctx, kp_store *st, const void *record, size_t len, kp_error *e);
/* For a damaged log (`kopilka recover --accept-loss`, `backup`): for each
 * readable record after the damage, report(ctx, seq, kind, store, card,
 * receipt, outcome), kind "purchase", "return" or "unknown". With salvage
 * set, the record is also applied, at the time and program version it ran
 * with, in its own savepoint; outcome says how it went ("lost" without
 * salvage, else "salvaged: ...", "already in the database" or why it
 * failed). */
typedef void (*kp_durable_lost_fn)(void *ctx, uint64_t seq, const char *kind, const char *store,
                                   const char *card, const char *receipt, const char *outcome);
typedef struct kp_durable_lost_ctx {
    kp_durable_replay *salvage; /* NULL: only report */
    kp_durable_lost_fn report;
    void *report_ctx;
    size_t salvaged;            /* out: records salvaged */
} kp_durable_lost_ctx;
/* The SQLite backend's lost-record callback (store_sqlite_lost_fn), ctx a
 * kp_durable_lost_ctx. */
kp_err kp_durable_lost(void *ctx, kp_store *st, uint64_t seq, const void *record, size_t len,
                       kp_error *e);
/* kp_store_open for the CLI: also recovers what a server that stopped
 * uncleanly left (kp_group_ops.open with kp_durable_redo), unless a running
 * server holds the database's writer lock. */
kp_err kp_service_open(const char *location, bool create, kp_store **out, kp_error *e);

/* Administration shared by the CLI and the server. */
/* Checks a program file as a load does: the file (kp_program_parse_each),
 * its script (compiled in a sandbox, when its section has no error), its
 * "customers" and "notifications" sections. report(ctx, error) for every
 * error found (report may be NULL), *e the first; *out is the program read
 * (with fields in error at their defaults when it fails). */
kp_err kp_service_program_check(const char *json, size_t len, kp_program *out,
                                kp_program_error_fn report, void *ctx, kp_error *e);
/* Checks the file (kp_service_program_check, with report) and stores it as
 * a new version (program_insert) with `meta`'s loaded_at, loaded_by and
 * activates_at (the caller checked its range) and name ("" = the program's
 * own). KP_ERR_CONFLICT on field "activates_at" when a scheduled version
 * would never run because of it. */
kp_err kp_service_program_insert(kp_store *st, const char *json, size_t len,
                                 const kp_program_version *meta, int64_t *version,
                                 kp_program_error_fn report, void *ctx, kp_error *e);
/* kp_service_program_insert at once, loaded by "cli" at the system clock. */
kp_err kp_service_program_load(kp_store *st, const char *json, size_t len, int64_t *version,
                               kp_error *e);
/* Reads program `version` into *out; 0: the version running at `at`. */
kp_err kp_service_program_running(kp_store *st, int64_t version, kp_time at, kp_program *out,
                                  kp_error *e);
/* kp_service_program_running at the system clock's now. */
kp_err kp_service_program_get(kp_store *st, int64_t version, kp_program *out, kp_error *e);
/* Creates a terminal of `store`; writes its new API key (NUL-terminated) to key_out[65]. */
kp_err kp_service_terminal_add(kp_store *st, const char *store, char key_out[65], kp_error *e);
/* Looks a terminal up by its API key. */
kp_err kp_service_terminal_auth(kp_store *st, const char *key, kp_terminal *out);
void kp_service_key_hash(const char *key, uint8_t hash[32]);
/* Issues `count` new cards, calling emit(ctx, number) for each, in the
 * caller's transaction. */
kp_err kp_service_cards_issue(kp_store *st, int64_t count, kp_time now,
                              void (*emit)(void *ctx, const char *number), void *ctx, kp_error *e);
struct kp_chunks;
/* The same in chunks (chunks.h): the caller has begun `ch`; after each card
 * (emitted first) the chunk may commit. ch NULL: as kp_service_cards_issue. */
kp_err kp_service_cards_issue_chunks(kp_store *st, int64_t count, kp_time now,
                                     void (*emit)(void *ctx, const char *number), void *ctx,
                                     struct kp_chunks *ch, kp_error *e);

#endif
