/*
 * http_self.c: the customer's own API (docs/api.md, "The customer's own API
 * (the cabinet)"): signing up from the website's form with a phone's
 * one-time code, and, with a customer's session ("kpc_..."), their
 * history, personal data, notification preferences, cards (block, barcode
 * and QR), family (create, invite, answer, who may spend, remove), transfers,
 * the export of their data and their erasure.
 *
 * Every route here acts on the session's own customer only, through the
 * operations staff use (src/service, src/notify/office.h) with the customer
 * as the actor ("customer:<id>", audited so): those refuse anything that is
 * not the customer's own as unknown (404), never saying whether it exists.
 * http_people.c authenticates (HTTP_CUSTOMER) and dispatches.
 */
#include "http_people.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "notify/office.h"

/* The session's customer. */
static int64_t self_id(const http_request *r)
{
    return r->caller->customer_id;
}

/* A route that takes no body: none, or {}. */
static kp_err no_body(const http_request *r, kp_error *e)
{
    if (r->body_len == 0 || (r->body_len == 2 && memcmp(r->body, "{}", 2) == 0)) return KP_OK;
    return kp_error_set(e, KP_ERR_INVALID, "", "this route takes no body (or {})");
}

/* Runs op(o, ...) with a body made here (a JSON text of the service's own
 * shape), freeing it after. */
static kp_err with_json(json_t *body,
                        kp_err (*op)(kp_office *, const char *, size_t, void *, kp_buf *,
                                     kp_error *),
                        kp_office *o, void *arg, kp_buf *out, kp_error *e)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    kp_err err = op(o, text, strlen(text), arg, out, e);
    free(text);
    return err;
}

/* ---- sign-up (public) */

typedef struct signup_call {
    char phone[64];
    char code[16];
    uint8_t ix[32];
    bool marketing;
    char version[64];
    json_t *registration; /* the body kp_customer_register takes */
    char token[KP_CUSTOMER_TOKEN_LEN + 1];
    kp_time expires_at;
    int64_t customer_id;
    bool failed;
    kp_error failure;
} signup_call;

/* The form's body into c: the registration's fields as POST /v1/customers
 * takes them, the code, and the consent {"rules": true, "marketing",
 * "version"}. */
static kp_err signup_parse(const http_request *r, signup_call *c, kp_error *e)
{
    static const char *const keys[] = {"phone",   "code",     "card",    "full_name", "email",
                                       "receipt", "birthday", "consent", NULL};
    json_t *root = http_body_object(r, keys, e);
    if (root == NULL) return KP_ERR_INVALID;
    kp_err err = KP_OK;
    json_t *phone = json_object_get(root, "phone"), *code = json_object_get(root, "code");
    json_t *consent = json_object_get(root, "consent");
    if (!json_is_string(phone) || json_string_length(phone) == 0 ||
        json_string_length(phone) >= sizeof c->phone) {
        err = kp_error_set(e, KP_ERR_INVALID, "phone",
                           "is required: the phone the code was sent to (a string)");
        goto out;
    }
    snprintf(c->phone, sizeof c->phone, "%s", json_string_value(phone));
    bool digits = json_is_string(code) && json_string_length(code) == KP_LOGIN_CODE_DIGITS;
    for (size_t i = 0; digits && i < KP_LOGIN_CODE_DIGITS; i++)
        digits = json_string_value(code)[i] >= '0' && json_string_value(code)[i] <= '9';
    if (!digits) {
        err = kp_error_set(e, KP_ERR_INVALID, "code",
                           "must be the %d digits sent to the phone (POST /v1/login/code with "
                           "\"purpose\": \"signup\")",
                           KP_LOGIN_CODE_DIGITS);
        goto out;
    }
    snprintf(c->code, sizeof c->code, "%s", json_string_value(code));
    if (!json_is_object(consent)) {
        err = kp_error_set(e, KP_ERR_INVALID, "consent",
                           "is required: {\"rules\": true, \"marketing\": true|false, "
                           "\"version\": \"<the texts' version>\"}");
        goto out;
    }
    static const char *const consent_keys[] = {"rules", "marketing", "version", NULL};
    if ((err = http_keys_check(consent, "consent.", consent_keys, e))) goto out;
    json_t *rules = json_object_get(consent, "rules");
    json_t *marketing = json_object_get(consent, "marketing");
    json_t *version = json_object_get(consent, "version");
    if (!json_is_true(rules)) {
        err = kp_error_set(e, KP_ERR_INVALID, "consent.rules",
                           "must be true: the program's rules and the processing of personal "
                           "data are accepted to register");
        goto out;
    }
    if (marketing && !json_is_boolean(marketing)) {
        err = kp_error_set(e, KP_ERR_INVALID, "consent.marketing", "must be true or false");
        goto out;
    }
    if (!json_is_string(version) || json_string_length(version) == 0 ||
        json_string_length(version) >= sizeof c->version) {
        err = kp_error_set(e, KP_ERR_INVALID, "consent.version",
                           "is required: the version of the texts shown (1 to %zu bytes)",
                           sizeof c->version - 1);
        goto out;
    }
    c->marketing = json_is_true(marketing);
    snprintf(c->version, sizeof c->version, "%s", json_string_value(version));
    /* The registration: the form's fields, the consent in its words. */
    c->registration = json_deep_copy(root);
    if (c->registration == NULL) {
        err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
        goto out;
    }
    json_object_del(c->registration, "code");
    json_object_set_new(c->registration, "consent",
                        json_pack("{s:b,s:s}", "given", 1, "text_version", c->version));
out:
    json_decref(root);
    return err;
}

static kp_err do_signup_lookup(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                               bool *replayed, kp_field_errors *fe, kp_error *e)
{
    signup_call *c = arg;
    kp_err err =
        kp_office_customer_by_contact(o, KP_CHANNEL_SMS, c->phone, &c->customer_id, c->ix, e);
    if (err == KP_ERR_NOT_FOUND) c->customer_id = 0;
    return err == KP_ERR_NOT_FOUND ? KP_OK : err;
}

static kp_err register_op(kp_office *o, const char *body, size_t len, void *arg, kp_buf *out,
                          kp_error *e)
{
    return kp_customer_register(o, body, len, out, arg, e);
}

static kp_err do_signup(kp_office *o, const http_request *r, void *arg, kp_buf *out, bool *replayed,
                        kp_field_errors *fe, kp_error *e)
{
    signup_call *c = arg;
    kp_err err = kp_office_signup_check(o, c->ix, c->code, e);
    if (err == KP_ERR_UNAUTHORIZED) {
        /* Committed all the same: the wrong attempt counts. */
        c->failed = true;
        c->failure = *e;
        return KP_OK;
    }
    if (err) return err;
    /* The phone is proved: the sign-up registers, and from then on is the
     * new customer (kp_customer_register). */
    memset(&o->actor, 0, sizeof o->actor);
    o->actor.kind = KP_ACTOR_CUSTOMER;
    o->actor.signup = true;
    snprintf(o->actor.name, sizeof o->actor.name, "signup");
    json_t *body = c->registration;
    c->registration = NULL;
    if ((err = with_json(body, register_op, o, fe, out, e))) return err;
    c->customer_id = o->actor.customer_id;
    if (c->marketing) {
        kp_prefs_req p;
        memset(&p, 0, sizeof p);
        p.has_consent = true;
        p.consent_given = true;
        snprintf(p.consent_version, sizeof p.consent_version, "%s", c->version);
        if ((err = kp_office_prefs_put(o, c->customer_id, &p, out, e))) return err;
    }
    if ((err = kp_office_session_start(o, c->customer_id, c->token, &c->expires_at, e))) return err;
    http_customer_session_json(out, c->token, c->expires_at, c->customer_id);
    return KP_OK;
}

static unsigned route_signup(const http_request *r, kp_http_answer *a)
{
    signup_call c;
    memset(&c, 0, sizeof c);
    kp_error e = {0};
    unsigned status;
    if (signup_parse(r, &c, &e)) {
        status = kp_http_error_answer(a->body, &e, NULL);
        goto out;
    }
    /* A code is checked here as at POST /v1/login: a wrong one counts
     * against the address (docs/api.md, "Login limits"). */
    if (!http_login_address_take(r, a, &status)) goto out;
    if ((status = http_office_read(r, do_signup_lookup, &c, a)) != 200) {
        http_login_address_give_back(r);
        goto out;
    }
    if (c.customer_id) {
        /* No sign-up code was ever sent to a customer's phone: the same
         * answer as a wrong code, so nobody learns whose phone it is. */
        kp_error_set(&e, KP_ERR_UNAUTHORIZED, "code",
                     "the code is wrong, expired or used up: ask for a new one at POST "
                     "/v1/login/code with \"purpose\": \"signup\"");
        status = kp_http_error_answer(a->body, &e, NULL);
        goto out;
    }
    status = http_office_write(r, do_signup, &c, 201, a);
    if (status == 201 && c.failed)
        status = kp_http_error_answer(a->body, &c.failure, NULL);
    else
        http_login_address_give_back(r);
out:
    sodium_memzero(c.token, sizeof c.token);
    json_decref(c.registration);
    return status;
}

/* ---- history, personal data, preferences */

static kp_err do_history(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                         bool *replayed, kp_field_errors *fe, kp_error *e)
{
    int64_t before, limit;
    kp_err err = http_history_page(&before, &limit, e);
    return err ? err : kp_customer_history(o, self_id(r), before, limit, out, e);
}

static unsigned route_history(const http_request *r, kp_http_answer *a)
{
    return http_office_read(r, do_history, NULL, a);
}

static kp_err do_edit(kp_office *o, const http_request *r, void *arg, kp_buf *out, bool *replayed,
                      kp_field_errors *fe, kp_error *e)
{
    return kp_customer_update(o, self_id(r), r->body, r->body_len, out, fe, e);
}

static unsigned route_edit(const http_request *r, kp_http_answer *a)
{
    return http_office_write(r, do_edit, NULL, 200, a);
}

static kp_err do_prefs(kp_office *o, const http_request *r, void *arg, kp_buf *out, bool *replayed,
                       kp_field_errors *fe, kp_error *e)
{
    kp_prefs_req req;
    kp_err err = http_prefs_parse(r, &req, e);
    return err ? err : kp_office_prefs_put(o, self_id(r), &req, out, e);
}

static unsigned route_prefs(const http_request *r, kp_http_answer *a)
{
    return http_office_write(r, do_prefs, NULL, 200, a);
}

/* ---- cards */

static kp_err block_op(kp_office *o, const char *body, size_t len, void *arg, kp_buf *out,
                       kp_error *e)
{
    return kp_card_block(o, arg, body, len, out, e);
}

static kp_err do_block(kp_office *o, const http_request *r, void *arg, kp_buf *out, bool *replayed,
                       kp_field_errors *fe, kp_error *e)
{
    static const char *const keys[] = {"reason", NULL};
    json_t *root = http_body_object(r, keys, e);
    if (root == NULL) return KP_ERR_INVALID;
    json_t *reason = json_object_get(root, "reason");
    if (reason && !json_is_null(reason) && !json_is_string(reason)) {
        json_decref(root);
        return kp_error_set(e, KP_ERR_INVALID, "reason", "must be a string (or left out)");
    }
    if (!json_is_string(reason) || json_string_length(reason) == 0)
        json_object_set_new(root, "reason", json_string("lost: blocked by the customer"));
    kp_err err = with_json(root, block_op, o, (void *)r->params[0], out, e);
    if (err) return err;
    /* The card's new state, not its back-office detail (staff names). */
    kp_buf_reset(out);
    kp_buf_puts(out, "{");
    kp_buf_json_kv_str(out, "card", r->params[0], false);
    kp_buf_json_kv_str(out, "state", "blocked", true);
    kp_buf_puts(out, "}");
    return KP_OK;
}

static unsigned route_block(const http_request *r, kp_http_answer *a)
{
    return http_office_write(r, do_block, NULL, 200, a);
}

/* ---- family */

typedef enum family_verb {
    FAMILY_GET,
    FAMILY_CREATE,
    FAMILY_INVITE,
    FAMILY_INVITATIONS,
    FAMILY_ACCEPT,
    FAMILY_DECLINE,
    FAMILY_SET,
    FAMILY_REMOVE,
} family_verb;

static kp_err create_op(kp_office *o, const char *body, size_t len, void *arg, kp_buf *out,
                        kp_error *e)
{
    return kp_family_create(o, body, len, out, e);
}

static kp_err do_family(kp_office *o, const http_request *r, void *arg, kp_buf *out, bool *replayed,
                        kp_field_errors *fe, kp_error *e)
{
    family_verb verb = *(const family_verb *)arg;
    int64_t family = 0, id = 0;
    kp_err err = KP_OK;
    switch (verb) {
    case FAMILY_CREATE:
        if ((err = no_body(r, e))) return err;
        return with_json(json_pack("{s:I}", "owner", (json_int_t)self_id(r)), create_op, o, NULL,
                         out, e);
    case FAMILY_INVITE: {
        static const char *const keys[] = {"phone", NULL};
        json_t *root = http_body_object(r, keys, e);
        if (root == NULL) return KP_ERR_INVALID;
        json_t *phone = json_object_get(root, "phone");
        if (!json_is_string(phone) || json_string_length(phone) == 0)
            err = kp_error_set(e, KP_ERR_INVALID, "phone",
                               "is required: the phone of the one you invite (a string)");
        else
            err = kp_family_invite(o, json_string_value(phone), out, replayed, e);
        json_decref(root);
        return err;
    }
    case FAMILY_INVITATIONS: return kp_family_invitations(o, out, e);
    case FAMILY_ACCEPT:
    case FAMILY_DECLINE:
        if ((err = no_body(r, e))) return err;
        if ((id = http_param_id(r->params[0])) == 0)
            return kp_error_set(e, KP_ERR_NOT_FOUND, "invitation", "no such invitation");
        return kp_family_invitation_answer(o, id, verb == FAMILY_ACCEPT, out, e);
    default: break;
    }
    if ((err = kp_family_of_customer(o, self_id(r), &family, e))) return err;
    if (verb == FAMILY_GET) return kp_family_get(o, family, out, e);
    if ((id = http_param_id(r->params[0])) == 0)
        return kp_error_set(e, KP_ERR_NOT_FOUND, "customer", "no such family member");
    if (verb == FAMILY_SET) return kp_family_set(o, family, id, r->body, r->body_len, out, e);
    if ((err = no_body(r, e))) return err;
    return kp_family_leave(o, family, id, out, e);
}

static unsigned route_family(const http_request *r, kp_http_answer *a, family_verb verb)
{
    if (verb == FAMILY_GET || verb == FAMILY_INVITATIONS)
        return http_office_read(r, do_family, &verb, a);
    unsigned ok = verb == FAMILY_CREATE || verb == FAMILY_INVITE ? 201 : 200;
    return http_office_write(r, do_family, &verb, ok, a);
}

static unsigned route_family_get(const http_request *r, kp_http_answer *a)
{
    return route_family(r, a, FAMILY_GET);
}

static unsigned route_family_create(const http_request *r, kp_http_answer *a)
{
    return route_family(r, a, FAMILY_CREATE);
}

static unsigned route_invite(const http_request *r, kp_http_answer *a)
{
    return route_family(r, a, FAMILY_INVITE);
}

static unsigned route_invitations(const http_request *r, kp_http_answer *a)
{
    return route_family(r, a, FAMILY_INVITATIONS);
}

static unsigned route_accept(const http_request *r, kp_http_answer *a)
{
    return route_family(r, a, FAMILY_ACCEPT);
}

static unsigned route_decline(const http_request *r, kp_http_answer *a)
{
    return route_family(r, a, FAMILY_DECLINE);
}

static unsigned route_member_set(const http_request *r, kp_http_answer *a)
{
    return route_family(r, a, FAMILY_SET);
}

static unsigned route_member_remove(const http_request *r, kp_http_answer *a)
{
    return route_family(r, a, FAMILY_REMOVE);
}

/* ---- transfers */

static kp_err do_transfer(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                          bool *replayed, kp_field_errors *fe, kp_error *e)
{
    return kp_transfer_from_self(o, r->body, r->body_len, out, replayed, e);
}

static unsigned route_transfer(const http_request *r, kp_http_answer *a)
{
    return http_office_write(r, do_transfer, NULL, 201, a);
}

/* ---- export and erasure */

static kp_err do_export(kp_office *o, const http_request *r, void *arg, kp_buf *out, bool *replayed,
                        kp_field_errors *fe, kp_error *e)
{
    kp_notify_env env;
    kp_notify_env_init(&env, o->st, o->pii, o->program, r->srv->config.notify);
    return kp_office_export(o, &env, self_id(r), out, e);
}

/* Read on a reader (an export can be large), then audited as the
 * back office's exports are: no export goes out unaudited. */
static unsigned route_export(const http_request *r, kp_http_answer *a)
{
    unsigned status = http_office_read(r, do_export, NULL, a);
    if (status != 200) return status;
    http_audit_note note = {.action = "customer.export"};
    snprintf(note.target, sizeof note.target, "customer:%lld", (long long)self_id(r));
    snprintf(note.detail, sizeof note.detail, "bytes=%zu", a->body->len);
    if ((status = http_audited(r, &note, a)) == 200)
        a->disposition = "attachment; filename=\"kopilka-my-data.json\"";
    return status;
}

static kp_err erase_op(kp_office *o, const char *body, size_t len, void *arg, kp_buf *out,
                       kp_error *e)
{
    return kp_customer_erase(o, *(const int64_t *)arg, body, len, out, e);
}

static kp_err do_erase(kp_office *o, const http_request *r, void *arg, kp_buf *out, bool *replayed,
                       kp_field_errors *fe, kp_error *e)
{
    static const char *const keys[] = {"confirm", NULL};
    json_t *root = http_body_object(r, keys, e);
    if (root == NULL) return KP_ERR_INVALID;
    json_t *confirm = json_object_get(root, "confirm");
    bool ok = json_is_string(confirm) && strcmp(json_string_value(confirm), "ERASE") == 0;
    json_decref(root);
    if (!ok)
        return kp_error_set(e, KP_ERR_INVALID, "confirm",
                            "must be \"ERASE\": erasing removes your personal data, blocks "
                            "your cards and forfeits your points, and cannot be undone");
    int64_t id = self_id(r);
    kp_err err = with_json(json_pack("{s:s}", "reason", "the customer's own request (cabinet)"),
                           erase_op, o, &id, out, e);
    if (err) return err;
    kp_buf_reset(out);
    kp_buf_printf(out, "{\"erased\":true,\"customer\":%lld}", (long long)id);
    return KP_OK;
}

static unsigned route_erase(const http_request *r, kp_http_answer *a)
{
    return http_office_write(r, do_erase, NULL, 200, a);
}

const http_route http_self_routes[] = {
    {"POST", "/v1/signup", HTTP_PUBLIC, route_signup},
    {"GET", "/v1/me/history", HTTP_CUSTOMER, route_history},
    {"PATCH", "/v1/me", HTTP_CUSTOMER, route_edit},
    {"PUT", "/v1/me/notifications", HTTP_CUSTOMER, route_prefs},
    {"POST", "/v1/me/cards/{}/block", HTTP_CUSTOMER, route_block},
    /* The back office's pictures: kp_card_picture draws only one's own. */
    {"GET", "/v1/me/cards/{}/barcode.svg", HTTP_CUSTOMER, http_route_barcode_svg},
    {"GET", "/v1/me/cards/{}/qr.svg", HTTP_CUSTOMER, http_route_qr_svg},
    {"GET", "/v1/me/family", HTTP_CUSTOMER, route_family_get},
    {"POST", "/v1/me/family", HTTP_CUSTOMER, route_family_create},
    {"GET", "/v1/me/family/invitations", HTTP_CUSTOMER, route_invitations},
    {"POST", "/v1/me/family/invitations", HTTP_CUSTOMER, route_invite},
    {"POST", "/v1/me/family/invitations/{}/accept", HTTP_CUSTOMER, route_accept},
    {"POST", "/v1/me/family/invitations/{}/decline", HTTP_CUSTOMER, route_decline},
    {"PATCH", "/v1/me/family/members/{}", HTTP_CUSTOMER, route_member_set},
    {"POST", "/v1/me/family/members/{}/remove", HTTP_CUSTOMER, route_member_remove},
    {"POST", "/v1/me/transfers", HTTP_CUSTOMER, route_transfer},
    {"GET", "/v1/me/export", HTTP_CUSTOMER, route_export},
    {"POST", "/v1/me/erase", HTTP_CUSTOMER, route_erase},
};
const size_t http_self_routes_count = sizeof http_self_routes / sizeof http_self_routes[0];
