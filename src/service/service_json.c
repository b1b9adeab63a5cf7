/*
 * service_json.c: parses POS request bodies (docs/api.md) into the service's
 * structs. Every refusal names the field and says what is allowed. Numbers
 * must be JSON integers: money never travels as floating point.
 */
#include "service.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include <kopilka/clock.h>

/* Refuses nesting deeper than KP_JSON_DEPTH_MAX before the parser sees it,
 * so a hostile body cannot make the parser recurse thousands of levels. */
static bool depth_ok(const char *s, size_t len)
{
    int depth = 0;
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\') i++;
            else if (c == '"') in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            if (++depth > KP_JSON_DEPTH_MAX) return false;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return true;
}

/* Set while re-reading a body whose integer overflowed the parser: every
 * integer then arrives as a real, and get_int() finds the field to blame. */
static _Thread_local bool lenient_ints;

json_t *kp_json_body_load(const char *body, size_t len, size_t flags, kp_error *e)
{
    if (!depth_ok(body, len)) {
        kp_error_setr(e, KP_ERR_INVALID, KP_REASON_BAD_JSON, "",
                      "JSON is nested deeper than %d levels", KP_JSON_DEPTH_MAX);
        return NULL;
    }
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES | flags, &jerr);
    if (root == NULL) {
        kp_error_setr(e, KP_ERR_INVALID, KP_REASON_BAD_JSON, "",
                      "not valid JSON at line %d column %d: %s", jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        kp_error_setr(e, KP_ERR_INVALID, KP_REASON_BAD_JSON, "", "the body must be a JSON object");
        json_decref(root);
        return NULL;
    }
    return root;
}

static json_t *load(const char *body, size_t len, kp_error *e)
{
    lenient_ints = false;
    json_t *root = kp_json_body_load(body, len, 0, e);
    if (root == NULL && strstr(e->message, "too big") != NULL) {
        /* Valid JSON with a number past 64 bits: read it again with integers
         * as reals, so the error can name the field instead of "bad JSON". */
        root = kp_json_body_load(body, len, JSON_DECODE_INT_AS_REAL, e);
        lenient_ints = root != NULL;
    }
    return root;
}


static kp_err get_str(json_t *obj, const char *key, const char *field, bool required, char *out,
                      kp_error *e)
{
    json_t *v = json_object_get(obj, key);
    out[0] = '\0';
    if (v == NULL || json_is_null(v)) {
        if (required) return kp_error_set(e, KP_ERR_INVALID, field, "is required (a string)");
        return KP_OK;
    }
    if (!json_is_string(v)) return kp_error_set(e, KP_ERR_INVALID, field, "must be a string");
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (n >= KP_STR_MAX)
        return kp_error_set(e, KP_ERR_INVALID, field, "must be at most %d bytes, got %zu",
                            KP_STR_MAX - 1, n);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20)
            return kp_error_set(e, KP_ERR_INVALID, field, "must not contain control characters");
    if (required && n == 0) return kp_error_set(e, KP_ERR_INVALID, field, "must not be empty");
    memcpy(out, s, n + 1);
    return KP_OK;
}

static kp_err get_int(json_t *obj, const char *key, const char *field, bool required,
                      int64_t min, int64_t max, int64_t dflt, int64_t *out, kp_error *e)
{
    json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v)) {
        if (required)
            return kp_error_set(e, KP_ERR_INVALID, field, "is required (an integer from %lld to %lld)",
                                (long long)min, (long long)max);
        *out = dflt;
        return KP_OK;
    }
    if (lenient_ints && json_is_real(v)) {
        /* Exact below 2^53; anything larger is out of every range here. */
        double d = json_real_value(v);
        if (d >= -9007199254740992.0 && d <= 9007199254740992.0 && d == (double)(int64_t)d &&
            (int64_t)d >= min && (int64_t)d <= max) {
            *out = (int64_t)d;
            return KP_OK;
        }
        return kp_error_set(e, KP_ERR_INVALID, field, "must be an integer from %lld to %lld",
                            (long long)min, (long long)max);
    }
    if (!json_is_integer(v))
        return kp_error_set(e, KP_ERR_INVALID, field,
                            "must be an integer from %lld to %lld (minor units, no decimals)",
                            (long long)min, (long long)max);
    json_int_t x = json_integer_value(v);
    if (x < min || x > max)
        return kp_error_set(e, KP_ERR_INVALID, field, "must be from %lld to %lld, got %lld",
                            (long long)min, (long long)max, (long long)x);
    *out = x;
    return KP_OK;
}

static kp_err get_at(json_t *obj, bool *given, kp_time *at, kp_error *e)
{
    json_t *v = json_object_get(obj, "at");
    *given = false;
    if (v == NULL || json_is_null(v)) return KP_OK;
    if (!json_is_string(v) || !kp_time_parse(json_string_value(v), at))
        return kp_error_set(e, KP_ERR_INVALID, "at",
                            "must be an RFC 3339 time like \"2026-11-23T10:00:00Z\"");
    *given = true;
    return KP_OK;
}

/* The optional "currency" of a receipt: an ISO 4217 code ("" when absent);
 * whether the program accepts it is the service's to say (currency.h). */
static kp_err get_currency(json_t *obj, char out[4], kp_error *e)
{
    out[0] = '\0';
    json_t *v = json_object_get(obj, "currency");
    if (v == NULL || json_is_null(v)) return KP_OK;
    const char *c = json_is_string(v) ? json_string_value(v) : "";
    bool ok = strlen(c) == 3;
    for (size_t i = 0; ok && i < 3; i++) ok = c[i] >= 'A' && c[i] <= 'Z';
    if (!ok)
        return kp_error_set(e, KP_ERR_INVALID, "currency",
                            "must be an ISO 4217 code of three capital letters, like \"KZT\"");
    memcpy(out, c, 4);
    return KP_OK;
}

static kp_err check_keys(json_t *obj, const char *const *allowed, const char *prefix, kp_error *e)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        bool ok = false;
        for (size_t i = 0; allowed[i] && !ok; i++) ok = strcmp(key, allowed[i]) == 0;
        if (!ok) {
            char field[64];
            snprintf(field, sizeof field, "%s%.40s", prefix, key);
            return kp_error_set(e, KP_ERR_INVALID, field, "unknown field");
        }
    }
    return KP_OK;
}

/* "card" or "phone": exactly one names the customer. A purchase
 * (`anonymous`) may have neither: a sale without a card, card "". */
static kp_err get_customer(json_t *root, bool anonymous, kp_purchase_req *out, kp_error *e)
{
    json_t *phone = json_object_get(root, "phone");
    json_t *card = json_object_get(root, "card");
    if (anonymous && (phone == NULL || json_is_null(phone)) && (card == NULL || json_is_null(card))) {
        out->card[0] = '\0';
        return KP_OK;
    }
    if (phone == NULL || json_is_null(phone))
        return get_str(root, "card", "card", true, out->card, e);
    if (card && !json_is_null(card))
        return kp_error_set(e, KP_ERR_INVALID, "phone", "give the card or the phone, not both");
    if (!json_is_string(phone) || json_string_length(phone) == 0 ||
        json_string_length(phone) >= sizeof out->phone)
        return kp_error_set(e, KP_ERR_INVALID, "phone",
                            "must be a phone number of 1 to %zu bytes, like \"8 916 765-43-21\"",
                            sizeof out->phone - 1);
    snprintf(out->phone, sizeof out->phone, "%s", json_string_value(phone));
    out->card[0] = '\0';
    return KP_OK;
}

kp_err kp_purchase_req_parse(const char *body, size_t len, bool receipt_required,
                             kp_purchase_req *out, kp_error *e)
{
    out->basket.n_lines = 0;
    out->currency[0] = '\0';
    out->phone[0] = '\0';
    out->by_phone = false;
    out->offline = false;
    out->log_format1 = false;
    json_t *root = load(body, len, e);
    if (root == NULL) return KP_ERR_INVALID;
    kp_err err;
    static const char *const keys[] = {"card", "phone", "receipt", "at",   "burn",
                                       "lines", "offline", "currency", NULL};
    static const char *const line_keys[] = {"sku", "category", "amount", "qty", "promo", "name", NULL};
    if ((err = check_keys(root, keys, "", e))) goto out;
    if ((err = get_customer(root, receipt_required, out, e))) goto out;
    if ((err = get_str(root, "receipt", "receipt", receipt_required, out->receipt, e))) goto out;
    if ((err = get_at(root, &out->at_given, &out->at, e))) goto out;
    if ((err = get_currency(root, out->currency, e))) goto out;
    json_t *offline = json_object_get(root, "offline");
    if (offline && !json_is_null(offline)) {
        if (!json_is_boolean(offline)) {
            err = kp_error_set(e, KP_ERR_INVALID, "offline", "must be true or false");
            goto out;
        }
        out->offline = json_is_true(offline);
        if (out->offline && !receipt_required) {
            err = kp_error_set(e, KP_ERR_INVALID, "offline",
                               "a quote is asked while the till is online: only purchases are "
                               "uploaded offline");
            goto out;
        }
    }
    if ((err = get_int(root, "burn", "burn", false, 0, INT64_MAX / 4, 0, &out->basket.burn_request,
                       e)))
        goto out;
    json_t *lines = json_object_get(root, "lines");
    if (!json_is_array(lines) || json_array_size(lines) == 0) {
        err = kp_error_set(e, KP_ERR_INVALID, "lines", "is required: a non-empty array of lines");
        goto out;
    }
    if (json_array_size(lines) > KP_LINES_MAX) {
        err = kp_error_set(e, KP_ERR_INVALID, "lines", "at most %d lines are allowed, got %zu",
                           KP_LINES_MAX, json_array_size(lines));
        goto out;
    }
    for (size_t i = 0; i < json_array_size(lines); i++) {
        json_t *l = json_array_get(lines, i);
        kp_line *line = &out->basket.lines[i];
        char f[64], prefix[32];
        snprintf(prefix, sizeof prefix, "lines[%zu].", i);
        if (!json_is_object(l)) {
            snprintf(f, sizeof f, "lines[%zu]", i);
            err = kp_error_set(e, KP_ERR_INVALID, f, "must be an object");
            goto out;
        }
        if ((err = check_keys(l, line_keys, prefix, e))) goto out;
        snprintf(f, sizeof f, "lines[%zu].sku", i);
        if ((err = get_str(l, "sku", f, true, line->sku, e))) goto out;
        snprintf(f, sizeof f, "lines[%zu].category", i);
        if ((err = get_str(l, "category", f, false, line->category, e))) goto out;
        snprintf(f, sizeof f, "lines[%zu].amount", i);
        if ((err = get_int(l, "amount", f, true, 0, KP_AMOUNT_MAX, 0, &line->amount_minor, e)))
            goto out;
        snprintf(f, sizeof f, "lines[%zu].qty", i);
        if ((err = get_int(l, "qty", f, false, 1, KP_QTY_MAX, 1, &line->qty, e))) goto out;
        json_t *promo = json_object_get(l, "promo");
        if (promo && !json_is_boolean(promo) && !json_is_null(promo)) {
            snprintf(f, sizeof f, "lines[%zu].promo", i);
            err = kp_error_set(e, KP_ERR_INVALID, f, "must be true or false");
            goto out;
        }
        line->promo = promo && json_is_true(promo);
        out->basket.n_lines = i + 1;
    }
    err = kp_basket_validate(&out->basket, e);
out:
    if (err == KP_OK && lenient_ints)
        err = kp_error_setr(e, KP_ERR_INVALID, KP_REASON_BAD_JSON, "",
                            "a number is too large for 64 bits");
    json_decref(root);
    return err;
}

kp_err kp_identify_req_parse(const char *body, size_t len, kp_purchase_req *out, kp_error *e)
{
    out->card[0] = '\0';
    out->phone[0] = '\0';
    out->by_phone = false;
    json_t *root = load(body, len, e);
    if (root == NULL) return KP_ERR_INVALID;
    static const char *const keys[] = {"card", "phone", NULL};
    kp_err err = check_keys(root, keys, "", e);
    if (err == KP_OK) err = get_customer(root, false, out, e);
    json_decref(root);
    return err;
}

kp_err kp_return_req_parse(const char *body, size_t len, kp_return_req *out, kp_error *e)
{
    out->request.n_lines = 0;
    out->request.whole = false;
    out->log_format1 = false;
    out->currency[0] = '\0';
    json_t *root = load(body, len, e);
    if (root == NULL) return KP_ERR_INVALID;
    kp_err err;
    static const char *const keys[] = {
        "card", "receipt", "original_receipt", "original_store", "at", "lines", "currency", NULL};
    static const char *const line_keys[] = {"sku", "qty", "amount", "category", NULL};
    if ((err = check_keys(root, keys, "", e))) goto out;
    if ((err = get_str(root, "card", "card", true, out->card, e))) goto out;
    if ((err = get_str(root, "receipt", "receipt", true, out->receipt, e))) goto out;
    if ((err = get_str(root, "original_receipt", "original_receipt", true, out->original_receipt,
                       e)))
        goto out;
    if ((err = get_str(root, "original_store", "original_store", false, out->original_store, e)))
        goto out;
    if ((err = get_at(root, &out->at_given, &out->at, e))) goto out;
    if ((err = get_currency(root, out->currency, e))) goto out;
    json_t *lines = json_object_get(root, "lines");
    if (lines == NULL || json_is_null(lines)) {
        out->request.whole = true;
        goto out;
    }
    if (!json_is_array(lines) || json_array_size(lines) == 0 ||
        json_array_size(lines) > KP_LINES_MAX) {
        err = kp_error_set(e, KP_ERR_INVALID, "lines",
                           "must be an array of 1 to %d lines, or omitted for the whole purchase",
                           KP_LINES_MAX);
        goto out;
    }
    for (size_t i = 0; i < json_array_size(lines); i++) {
        json_t *l = json_array_get(lines, i);
        char f[64], prefix[32];
        snprintf(prefix, sizeof prefix, "lines[%zu].", i);
        if (!json_is_object(l)) {
            snprintf(f, sizeof f, "lines[%zu]", i);
            err = kp_error_set(e, KP_ERR_INVALID, f, "must be an object");
            goto out;
        }
        if ((err = check_keys(l, line_keys, prefix, e))) goto out;
        snprintf(f, sizeof f, "lines[%zu].sku", i);
        if ((err = get_str(l, "sku", f, true, out->request.lines[i].sku, e))) goto out;
        snprintf(f, sizeof f, "lines[%zu].qty", i);
        if ((err = get_int(l, "qty", f, false, 1, KP_QTY_MAX, 0, &out->request.lines[i].qty, e)))
            goto out;
        out->request.n_lines = i + 1;
    }
out:
    if (err == KP_OK && lenient_ints)
        err = kp_error_setr(e, KP_ERR_INVALID, KP_REASON_BAD_JSON, "",
                            "a number is too large for 64 bits");
    json_decref(root);
    return err;
}
