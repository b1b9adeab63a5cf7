/*
 * kopilka.h: the common part of Kopilka's public API: error codes, the
 * error detail a user sees, the limits every input is checked against, and
 * the time type.
 *
 * Every function of the library returns a kp_err (KP_OK = 0). Functions that
 * can fail because of user input also fill a kp_error with the field that was
 * wrong and a sentence saying what is allowed.
 */
#ifndef KOPILKA_H
#define KOPILKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum kp_err {
    KP_OK = 0,
    KP_ERR_INVALID,      /* bad input: a field is missing, wrong, out of range */
    KP_ERR_NOT_FOUND,    /* no such card, receipt, program, terminal */
    KP_ERR_CONFLICT,     /* an idempotency key reused with another body */
    KP_ERR_LIMIT,        /* a documented limit was exceeded */
    KP_ERR_OVERFLOW,     /* a sum of money or points would overflow */
    KP_ERR_NOMEM,        /* out of memory */
    KP_ERR_IO,           /* storage failed (disk full, I/O error, corrupt) */
    KP_ERR_BUSY,         /* storage locked by another process */
    KP_ERR_UNAUTHORIZED, /* no or bad credentials */
    KP_ERR_INTERNAL,     /* a bug: an invariant did not hold */
    KP_ERR_FORBIDDEN,    /* authenticated, but the role may not do this */
    KP_ERR__COUNT
} kp_err;

/* Returns the stable, lowercase name of an error code ("invalid", ...). */
const char *kp_err_name(kp_err err);

/* Why an error happened, where the kp_err alone is too coarse for a caller
 * that must tell cases apart (the server answers each with its own code,
 * docs/api.md "Errors"). Most errors have none (KP_REASON_NONE): the kp_err
 * says enough. A reason never replaces the kp_err: it refines it. */
typedef enum kp_reason {
    KP_REASON_NONE = 0,
    KP_REASON_BAD_JSON,         /* INVALID: the body is not a JSON object at all */
    KP_REASON_UNKNOWN_CARD,     /* NOT_FOUND: no such card, or it cannot be used */
    KP_REASON_UNKNOWN_RECEIPT,  /* NOT_FOUND: the original purchase of a return */
    KP_REASON_RECEIPT_CONFLICT, /* CONFLICT: a receipt reused for another request */
    KP_REASON_EVENT_CONFLICT,   /* CONFLICT: an event id reused with another body */
    KP_REASON_PHONE_IN_USE,     /* CONFLICT: another customer has the phone */
    KP_REASON_EMAIL_IN_USE,     /* CONFLICT: another customer has the e-mail */
    KP_REASON_CARD_CONFLICT,    /* CONFLICT: the card's state forbids the operation */
    KP_REASON_KEY_CONFLICT,     /* CONFLICT: an idempotency or key file already used */
    KP_REASON_LOGIN_IN_USE,     /* CONFLICT: a staff login that exists already */
    KP_REASON_UNKNOWN_PHONE,    /* NOT_FOUND: no customer with an active card has the phone */
    KP_REASON_AMBIGUOUS_PHONE,  /* CONFLICT: the phone's customer has cards on several accounts */
    KP_REASON_OUT_OF_STOCK,     /* CONFLICT: a catalog item has too few left at the store */
    KP_REASON_NOT_ENOUGH_POINTS, /* LIMIT: the account cannot pay a catalog order's points */
    KP_REASON__COUNT
} kp_reason;

/* Returns the stable, lowercase name of a reason ("unknown_card", ...). */
const char *kp_reason_name(kp_reason reason);

/* What a user is told when an operation fails. */
typedef struct kp_error {
    kp_err code;
    kp_reason reason;  /* KP_REASON_NONE unless set by kp_error_setr() */
    char field[64];    /* JSON path of the offending field, "" if none */
    char message[256]; /* one sentence: what was wrong, what is allowed */
} kp_error;

/* Fills *e (when e is not NULL, reason KP_REASON_NONE) and returns code, so
 * callers can `return kp_error_set(e, KP_ERR_INVALID, "lines[0].amount", "...")`. */
kp_err kp_error_set(kp_error *e, kp_err code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The same with a reason. */
kp_err kp_error_setr(kp_error *e, kp_err code, kp_reason reason, const char *field, const char *fmt,
                     ...) __attribute__((format(printf, 5, 6)));
void kp_error_clear(kp_error *e);

/* Limits. Past any of them an operation fails with a clear error. */
enum {
    KP_STR_MAX = 257,            /* sku, category, receipt, card: up to 256 bytes + NUL */
    KP_LINES_MAX = 200,          /* lines per basket */
    KP_RULES_MAX = 128,          /* rules per program */
    KP_EXPLAIN_MAX = 2 * KP_RULES_MAX + 8,
    KP_LOTS_MAX = 512,           /* open lots of one account: the ledger never opens more
                                  * (a credit joins a lot at the cap, ledger.h) */
    KP_BODY_MAX = 1024 * 1024,   /* request body bytes */
    KP_JSON_DEPTH_MAX = 16,
    KP_BATCH_MAX = 1024,         /* operations per group commit */
    KP_QUEUE_MAX = 8192,         /* operations waiting for the writer */
};

#define KP_QTY_MAX 100000
#define KP_AMOUNT_MAX 10000000000000LL /* 10^13 minor units per line */

/* Time: seconds since the Unix epoch, UTC. KP_TIME_NEVER = no expiry. */
typedef int64_t kp_time;
#define KP_TIME_NEVER INT64_MAX

#endif
