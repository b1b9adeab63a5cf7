/*
 * http_error.h: the one mapping from a library error to an HTTP answer.
 * Every route answers a failed operation with kp_http_error_answer(): the
 * status and the stable "code" of the body come from one table keyed by
 * (kp_err, kp_reason) in http_error.c, documented in docs/api.md "Errors".
 * An error without a reason (plain kp_error_set()) gets its kp_err's
 * generic code, so a new error needs no change here.
 */
#ifndef KOPILKA_HTTP_ERROR_H
#define KOPILKA_HTTP_ERROR_H

#include <kopilka/kopilka.h>

#include "core/buf.h"

struct kp_field_errors;

/* The status and code of (err, reason): the reason's own when the table has
 * one for that err, else the err's generic one; 500 "internal" for a value
 * out of range. Never fails. */
void kp_http_error_of(kp_err err, kp_reason reason, unsigned *status, const char **code);

/* Writes {"error": {"code", "message", "field"?, "fields"?}} for e (fe may be
 * NULL: the list of every field a form got wrong) and returns the status. */
unsigned kp_http_error_answer(kp_buf *out, const kp_error *e, const struct kp_field_errors *fe);

/* Writes {"error": {...}} with a status and code chosen by the caller, for
 * answers that come from no operation: no such route (404 "not_found"),
 * method not allowed (405), body too large (413), no credentials (401).
 * Returns status. */
unsigned kp_http_error(kp_buf *out, unsigned status, const char *code, const kp_error *e);

#endif
