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

typedef struct kp_purchase_req {
    char card[KP_STR_MAX];
    char receipt[KP_STR_MAX];
    bool at_given;
    kp_time at;
    kp_basket basket;
} kp_purchase_req;

typedef struct kp_return_req {
    char card[KP_STR_MAX];
    char receipt[KP_STR_MAX];
    char original_receipt[KP_STR_MAX];
    bool at_given;
    kp_time at;
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
    kp_purchase_req replay_req; /* a purchase rebuilt to render its answer again */
    struct kp_script_cache *script; /* this thread's Lua state (src/script), NULL until used */
    /* A ceiling on the next pricing's burn from what the card may do
     * (kp_till_limits in till.c), -1 = none; kp_service_price consumes it. */
    int64_t till_burn_max;
} kp_scratch;

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

/* Quote: what the basket would get now. Writes nothing. */
kp_err kp_service_quote(kp_store *st, const kp_program *program, const char *store,
                        const kp_purchase_req *req, kp_time now, kp_scratch *sc, kp_buf *out,
                        kp_error *e);

/* Purchase: idempotent by (store, receipt). *replayed is set when the answer
 * is the stored one of an earlier identical request. KP_ERR_CONFLICT when
 * the receipt was used with another body. */
kp_err kp_service_purchase(kp_store *st, const kp_program *program, const char *store,
                           const kp_purchase_req *req, kp_time now, kp_scratch *sc, kp_buf *out,
                           bool *replayed, kp_error *e);

kp_err kp_service_return(kp_store *st, const char *store, const kp_return_req *req, kp_time now,
                         kp_scratch *sc, kp_buf *out, bool *replayed, kp_error *e);

/* The card's balance, lots and recent history. */
kp_err kp_service_card(kp_store *st, const char *number, kp_time now, kp_scratch *sc, kp_buf *out,
                       kp_error *e);
/* The same, with the account's tier and its privileges under `program`
 * (NULL: without them). */
kp_err kp_service_card_program(kp_store *st, const kp_program *program, const char *number,
                               kp_time now, kp_scratch *sc, kp_buf *out, kp_error *e);

/* ---- durability through the operation log (durable.c, oplog.h) */
struct kp_oplog;
/* Appends the record of a purchase or return that produced `answer` to b. */
kp_err kp_durable_purchase(kp_buf *b, const char *store, const kp_purchase_req *r, kp_time now,
                           int64_t program_version, const kp_buf *answer);
kp_err kp_durable_return(kp_buf *b, const char *store, const kp_return_req *r, kp_time now,
                         const kp_buf *answer);
/* Replays into the database, in one transaction, every log record past its
 * mark, checking each answer; then the log writes after the last one. */
kp_err kp_durable_recover(kp_store *st, struct kp_oplog *log, size_t *applied, kp_error *e);
/* Opens the database's operation log (taking its lock) and recovers.
 * KP_ERR_BUSY when another process (a running server) owns the log. */
kp_err kp_durable_open_log(kp_store *st, const char *db_path, struct kp_oplog **log,
                           size_t *applied, kp_error *e);
/* kp_store_open for the CLI: also replays the operation log left by a
 * server that stopped uncleanly, unless a running server owns it. */
kp_err kp_service_open(const char *db_path, bool create, kp_store **out, kp_error *e);

/* Administration shared by the CLI and the server. */
kp_err kp_service_program_load(kp_store *st, const char *json, size_t len, int64_t *version,
                               kp_error *e);
/* Loads the program of `version` (0 = latest) into *out. */
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
