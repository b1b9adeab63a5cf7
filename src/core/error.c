/* error.c: error names and the user-facing error detail. */
#include <kopilka/kopilka.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const err_names[KP_ERR__COUNT] = {
    [KP_OK] = "ok",
    [KP_ERR_INVALID] = "invalid",
    [KP_ERR_NOT_FOUND] = "not_found",
    [KP_ERR_CONFLICT] = "conflict",
    [KP_ERR_LIMIT] = "limit",
    [KP_ERR_OVERFLOW] = "overflow",
    [KP_ERR_NOMEM] = "nomem",
    [KP_ERR_IO] = "io",
    [KP_ERR_BUSY] = "busy",
    [KP_ERR_UNAUTHORIZED] = "unauthorized",
    [KP_ERR_INTERNAL] = "internal",
    [KP_ERR_FORBIDDEN] = "forbidden",
};

const char *kp_err_name(kp_err err)
{
    if ((int)err < 0 || err >= KP_ERR__COUNT) return "unknown";
    return err_names[err];
}

static const char *const reason_names[KP_REASON__COUNT] = {
    [KP_REASON_NONE] = "none",
    [KP_REASON_BAD_JSON] = "bad_json",
    [KP_REASON_UNKNOWN_CARD] = "unknown_card",
    [KP_REASON_UNKNOWN_RECEIPT] = "unknown_receipt",
    [KP_REASON_RECEIPT_CONFLICT] = "receipt_conflict",
    [KP_REASON_EVENT_CONFLICT] = "event_conflict",
    [KP_REASON_PHONE_IN_USE] = "phone_in_use",
    [KP_REASON_EMAIL_IN_USE] = "email_in_use",
    [KP_REASON_CARD_CONFLICT] = "card_conflict",
    [KP_REASON_KEY_CONFLICT] = "key_conflict",
    [KP_REASON_LOGIN_IN_USE] = "login_in_use",
    [KP_REASON_UNKNOWN_PHONE] = "unknown_phone",
    [KP_REASON_AMBIGUOUS_PHONE] = "ambiguous_phone",
    [KP_REASON_OUT_OF_STOCK] = "out_of_stock",
    [KP_REASON_NOT_ENOUGH_POINTS] = "not_enough_points",
};

const char *kp_reason_name(kp_reason reason)
{
    if ((int)reason < 0 || reason >= KP_REASON__COUNT) return "unknown";
    return reason_names[reason];
}

__attribute__((format(printf, 5, 0))) static kp_err error_vset(kp_error *e, kp_err code,
                                                               kp_reason reason, const char *field,
                                                               const char *fmt, va_list ap)
{
    if (e == NULL) return code;
    e->code = code;
    e->reason = reason;
    snprintf(e->field, sizeof e->field, "%s", field ? field : "");
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    return code;
}

kp_err kp_error_set(kp_error *e, kp_err code, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_vset(e, code, KP_REASON_NONE, field, fmt, ap);
    va_end(ap);
    return code;
}

kp_err kp_error_setr(kp_error *e, kp_err code, kp_reason reason, const char *field, const char *fmt,
                     ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_vset(e, code, reason, field, fmt, ap);
    va_end(ap);
    return code;
}

void kp_error_clear(kp_error *e)
{
    if (e) memset(e, 0, sizeof *e);
}
