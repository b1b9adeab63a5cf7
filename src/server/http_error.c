/*
 * http_error.c: the table from (kp_err, kp_reason) to HTTP status and code,
 * for every route (http_error.h). The first part gives each kp_err its
 * generic answer; the second refines it for the reasons a client must tell
 * apart. docs/api.md "Errors" lists the same table; the unit test
 * test_caps.c checks that every kp_err and every reason has an entry.
 */
#include "http_error.h"

#include "service/people.h"

typedef struct error_answer {
    unsigned status;
    const char *code;
} error_answer;

/* Every kp_err but KP_OK: what an error without a reason answers. */
static const error_answer by_err[KP_ERR__COUNT] = {
    [KP_ERR_INVALID] = {400, "bad_field"},
    [KP_ERR_NOT_FOUND] = {404, "not_found"},
    [KP_ERR_CONFLICT] = {409, "conflict"},
    [KP_ERR_LIMIT] = {400, "bad_field"},
    [KP_ERR_OVERFLOW] = {400, "bad_field"},
    [KP_ERR_NOMEM] = {503, "unavailable"},
    [KP_ERR_IO] = {503, "unavailable"},
    [KP_ERR_BUSY] = {503, "unavailable"},
    [KP_ERR_UNAUTHORIZED] = {401, "unauthorized"},
    [KP_ERR_INTERNAL] = {500, "internal"},
    [KP_ERR_FORBIDDEN] = {403, "forbidden"},
};

/* Every reason but KP_REASON_NONE: the kp_err it refines and its answer. A
 * reason met with another kp_err (an I/O failure while looking up a card)
 * answers that kp_err's generic code. */
static const struct {
    kp_err err;
    error_answer answer;
} by_reason[KP_REASON__COUNT] = {
    [KP_REASON_BAD_JSON] = {KP_ERR_INVALID, {400, "bad_json"}},
    [KP_REASON_UNKNOWN_CARD] = {KP_ERR_NOT_FOUND, {404, "unknown_card"}},
    [KP_REASON_UNKNOWN_RECEIPT] = {KP_ERR_NOT_FOUND, {404, "unknown_receipt"}},
    [KP_REASON_RECEIPT_CONFLICT] = {KP_ERR_CONFLICT, {409, "receipt_conflict"}},
    [KP_REASON_EVENT_CONFLICT] = {KP_ERR_CONFLICT, {409, "event_conflict"}},
    [KP_REASON_PHONE_IN_USE] = {KP_ERR_CONFLICT, {409, "phone_in_use"}},
    [KP_REASON_EMAIL_IN_USE] = {KP_ERR_CONFLICT, {409, "email_in_use"}},
    [KP_REASON_CARD_CONFLICT] = {KP_ERR_CONFLICT, {409, "card_conflict"}},
    [KP_REASON_KEY_CONFLICT] = {KP_ERR_CONFLICT, {409, "key_conflict"}},
    [KP_REASON_LOGIN_IN_USE] = {KP_ERR_CONFLICT, {409, "login_in_use"}},
    [KP_REASON_UNKNOWN_PHONE] = {KP_ERR_NOT_FOUND, {404, "unknown_phone"}},
    [KP_REASON_AMBIGUOUS_PHONE] = {KP_ERR_CONFLICT, {409, "ambiguous_phone"}},
    [KP_REASON_OUT_OF_STOCK] = {KP_ERR_CONFLICT, {409, "out_of_stock"}},
    [KP_REASON_NOT_ENOUGH_POINTS] = {KP_ERR_LIMIT, {422, "not_enough_points"}},
};

void kp_http_error_of(kp_err err, kp_reason reason, unsigned *status, const char **code)
{
    *status = 500;
    *code = "internal";
    if ((int)err <= KP_OK || err >= KP_ERR__COUNT || by_err[err].code == NULL) return;
    *status = by_err[err].status;
    *code = by_err[err].code;
    if ((int)reason > KP_REASON_NONE && reason < KP_REASON__COUNT && by_reason[reason].err == err &&
        by_reason[reason].answer.code != NULL) {
        *status = by_reason[reason].answer.status;
        *code = by_reason[reason].answer.code;
    }
}

static void error_body(kp_buf *out, const char *code, const kp_error *e, const kp_field_errors *fe)
{
    kp_buf_reset(out);
    kp_buf_puts(out, "{\"error\":{");
    kp_buf_json_kv_str(out, "code", code, false);
    kp_buf_json_kv_str(out, "message", e->message, true);
    if (e->field[0]) kp_buf_json_kv_str(out, "field", e->field, true);
    if (fe && fe->n > 0) {
        kp_buf_puts(out, ",\"fields\":[");
        for (size_t i = 0; i < fe->n; i++) {
            kp_buf_puts(out, i ? ",{" : "{");
            kp_buf_json_kv_str(out, "field", fe->items[i].field, false);
            kp_buf_json_kv_str(out, "message", fe->items[i].message, true);
            kp_buf_puts(out, "}");
        }
        kp_buf_puts(out, "]");
    }
    kp_buf_puts(out, "}}");
}

unsigned kp_http_error_answer(kp_buf *out, const kp_error *e, const kp_field_errors *fe)
{
    unsigned status;
    const char *code;
    kp_http_error_of(e->code, e->reason, &status, &code);
    error_body(out, code, e, fe);
    return status;
}

unsigned kp_http_error(kp_buf *out, unsigned status, const char *code, const kp_error *e)
{
    error_body(out, code, e, NULL);
    return status;
}
