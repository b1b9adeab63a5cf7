/*
 * http_admin.c: the back office's staff-side routes (docs/api.md, "Back
 * office"): login and sessions, staff accounts, the audit log, manual
 * adjustments, card batches and a card's lifecycle, a card's individual
 * discount, terminal keys (list, add, revoke, rotate), CSV exports, and the
 * card pictures (barcode, QR). Each route is one function in the table at
 * the end; http_people.c authenticates and dispatches.
 */
#include "http_people.h"
#include <kopilka/card_number.h>
#include <kopilka/clock.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/pii.h"
#include "keyring.h"
#include "login_limit.h"

#include <jansson.h>
#include <kopilka/money.h>

/* ---- login, logout, me */

typedef struct login_call {
    kp_staff staff;
    char token[69];
    kp_time expires_at;
    bool failed;
    const char *why; /* the failure's audit detail ("" for a wrong password) */
} login_call;

static kp_err do_login(kp_office *o, const http_request *r, void *arg, kp_buf *out, bool *replayed,
                       kp_field_errors *fe, kp_error *e)
{
    login_call *c = arg;
    o->actor.kind = KP_ACTOR_STAFF;
    o->actor.role = c->staff.role;
    o->actor.staff_id = c->staff.id;
    snprintf(o->actor.name, sizeof o->actor.name, "staff:%s", c->staff.login);
    if (c->failed) {
        /* Recorded so the auditor sees password guessing; the login is
         * only kept when it looks like one. */
        bool plain = c->staff.login[0] != '\0';
        for (const char *p = c->staff.login; *p && plain; p++)
            plain = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' ||
                    *p == '_' || *p == '-';
        o->actor.kind = KP_ACTOR_CLI;
        snprintf(o->actor.name, sizeof o->actor.name, "anonymous");
        char target[KP_LOGIN_MAX + 8];
        snprintf(target, sizeof target, "staff:%s", plain ? c->staff.login : "?");
        kp_err err = kp_office_audit(o, "staff.login_failed", target, "%s", c->why ? c->why : "");
        return err ? kp_error_set(e, err, "", "storage failed") : KP_OK;
    }
    kp_err err = kp_session_start(o, &c->staff, c->token, &c->expires_at, e);
    if (err) return err;
    kp_buf_reset(out);
    kp_buf_puts(out, "{");
    kp_buf_json_kv_str(out, "token", c->token, false);
    people_time_kv(out, "expires_at", c->expires_at);
    kp_buf_json_kv_str(out, "login", c->staff.login, true);
    kp_buf_json_kv_str(out, "role", kp_role_name(c->staff.role), true);
    if (c->staff.partner[0]) kp_buf_json_kv_str(out, "partner", c->staff.partner, true);
    else kp_buf_puts(out, ",\"partner\":null");
    kp_buf_puts(out, "}");
    return KP_OK;
}

/* The login the body names, for its limit ("" when it names none: the
 * check below then refuses the body). */
static void login_named(const http_request *r, char login[KP_LOGIN_MAX])
{
    login[0] = '\0';
    json_t *root = json_loadb(r->body, r->body_len, 0, NULL);
    json_t *v = json_is_object(root) ? json_object_get(root, "login") : NULL;
    if (json_is_string(v) && json_string_length(v) < KP_LOGIN_MAX)
        snprintf(login, KP_LOGIN_MAX, "%s", json_string_value(v));
    json_decref(root);
}

/* 429 rate_limited for a login refused by its limits (docs/api.md, "Login
 * limits"): the login's (per_login) or the address's; the first refusal of
 * a run is audited as a failed login. */
static unsigned login_refused(const http_request *r, login_call *c, bool per_login,
                              int64_t retry_after, bool audit, kp_http_answer *a)
{
    int most = per_login ? KP_LOGIN_FAILURES_PER_ACCOUNT : KP_LOGIN_FAILURES_PER_ADDRESS;
    const char *whose = per_login ? "for this login" : "from this address";
    char why[160];
    snprintf(why, sizeof why, "rate_limited: %d failed attempts %s within %d minutes", most,
             whose, KP_LOGIN_WINDOW_S / 60);
    if (audit) {
        c->failed = true;
        c->why = why;
        kp_buf scratch;
        kp_buf_init(&scratch, 64 * 1024);
        kp_http_answer side = {.status = 500, .body = &scratch};
        http_office_write(r, do_login, c, 200, &side);
        kp_buf_release(&scratch);
    }
    kp_error e;
    kp_error_set(&e, KP_ERR_LIMIT, per_login ? "login" : "",
                 "too many failed logins %s: at most %d in %d minutes; try again in %lld seconds",
                 whose, most, KP_LOGIN_WINDOW_S / 60, (long long)retry_after);
    a->retry_after = retry_after;
    return kp_http_error(a->body, 429, "rate_limited", &e);
}

static unsigned route_login(const http_request *r, kp_http_answer *a)
{
    login_call c;
    memset(&c, 0, sizeof c);
    kp_error e = {0};
    /* Each attempt is taken from the address's and the login's allowance
     * before the password is checked, and given back unless it failed. */
    kp_login_limits *limits = r->srv->login_limits;
    char login[KP_LOGIN_MAX];
    login_named(r, login);
    snprintf(c.staff.login, sizeof c.staff.login, "%s", login);
    int64_t retry_after;
    bool first;
    if (!kp_attempts_take(limits->staff_address, r->client, r->now, &retry_after, &first))
        return login_refused(r, &c, false, retry_after, first, a);
    if (!kp_attempts_take(limits->staff_login, login, r->now, &retry_after, &first)) {
        kp_attempts_give_back(limits->staff_address, r->client);
        return login_refused(r, &c, true, retry_after, first, a);
    }
    /* Argon2id runs here, on the request's thread, never on the writer. */
    kp_reader *rd = kp_reader_acquire(r->srv->readers);
    kp_err err = kp_staff_check_password(rd->store, r->body, r->body_len, &c.staff, &e);
    kp_reader_release(r->srv->readers, rd);
    if (err == KP_ERR_UNAUTHORIZED) {
        c.failed = true;
        http_office_write(r, do_login, &c, 200, a);
        return kp_http_error_answer(a->body, &e, NULL);
    }
    /* Not a wrong password (a good one, or a body refused before any
     * check): nothing counts against the address; a good one clears the
     * login's count. */
    kp_attempts_give_back(limits->staff_address, r->client);
    if (err == KP_OK)
        kp_attempts_clear(limits->staff_login, login);
    else
        kp_attempts_give_back(limits->staff_login, login);
    if (err) return kp_http_error_answer(a->body, &e, NULL);
    unsigned status = http_office_write(r, do_login, &c, 200, a);
    memset(c.token, 0, sizeof c.token);
    return status;
}

static kp_err do_logout(kp_office *o, const http_request *r, void *arg, kp_buf *out, bool *replayed,
                        kp_field_errors *fe, kp_error *e)
{
    kp_err err = kp_session_end(o, r->caller->token, e);
    if (err) return err;
    kp_buf_reset(out);
    kp_buf_puts(out, "{\"logged_out\":true}");
    return KP_OK;
}

static unsigned route_logout(const http_request *r, kp_http_answer *a)
{
    return http_office_write(r, do_logout, NULL, 200, a);
}

static unsigned route_me(const http_request *r, kp_http_answer *a)
{
    kp_buf *out = a->body;
    const kp_actor *ac = &r->caller->actor;
    kp_buf_reset(out);
    kp_buf_puts(out, "{");
    kp_buf_json_kv_str(out, "login", ac->name + 6, false);
    kp_buf_json_kv_str(out, "role", kp_role_name(ac->role), true);
    if (ac->partner[0]) kp_buf_json_kv_str(out, "partner", ac->partner, true);
    else kp_buf_puts(out, ",\"partner\":null");
    people_time_kv(out, "expires_at", r->caller->expires_at);
    kp_buf_puts(out, ",\"permissions\":[");
    bool first = true;
    for (int p = 1; p < KP_PERM__COUNT; p++) {
        if (!kp_role_may(ac->role, (kp_permission)p)) continue;
        if (!first) kp_buf_puts(out, ",");
        first = false;
        kp_buf_json_str(out, kp_permission_name((kp_permission)p));
    }
    kp_buf_puts(out, "]");
    kp_buf_json_kv_i64(out, "adjust_limit", kp_role_adjust_limit(ac->role), true);
    kp_buf_puts(out, "}");
    return 200;
}

/* ---- staff */

static kp_err do_staff_list(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                            bool *replayed, kp_field_errors *fe, kp_error *e)
{
    return kp_staff_list_json(o, out, e);
}

static kp_err do_staff_add(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                           bool *replayed, kp_field_errors *fe, kp_error *e)
{
    return kp_staff_add_http(o, r->body, r->body_len, out, e);
}

static kp_err do_staff_update(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                              bool *replayed, kp_field_errors *fe, kp_error *e)
{
    int64_t id = http_param_id(r->params[0]);
    if (id == 0) return kp_error_set(e, KP_ERR_NOT_FOUND, "staff", "no such staff member");
    return kp_staff_update_http(o, id, r->body, r->body_len, out, e);
}

static unsigned route_staff_list(const http_request *r, kp_http_answer *a)
{
    return http_office_read(r, do_staff_list, NULL, a);
}

static unsigned route_staff_add(const http_request *r, kp_http_answer *a)
{
    return http_office_write(r, do_staff_add, NULL, 201, a);
}

static unsigned route_staff_update(const http_request *r, kp_http_answer *a)
{
    return http_office_write(r, do_staff_update, NULL, 200, a);
}

/* ---- audit */

/* A text argument of the audit filter: NULL when absent or empty; refused
 * past `max` bytes. */
static kp_err audit_text_arg(const char *name, size_t max, const char **out, kp_error *e)
{
    const char *v = kp_http_arg(name);
    *out = v && v[0] ? v : NULL;
    if (*out && strlen(*out) >= max)
        return kp_error_set(e, KP_ERR_INVALID, name, "must be at most %zu bytes", max - 1);
    return KP_OK;
}

static kp_err audit_time_arg(const char *name, kp_time *out, kp_error *e)
{
    const char *v = kp_http_arg(name);
    *out = 0;
    if (v == NULL || v[0] == '\0') return KP_OK;
    if (!kp_time_parse(v, out) || *out <= 0)
        return kp_error_set(e, KP_ERR_INVALID, name,
                            "must be an RFC 3339 time (2026-10-01T00:00:00Z or with an offset)");
    return KP_OK;
}

/* ?after=&before=&order=&limit=&actor=&action=&target=&from=&to= into a
 * filter the store applies in its query. */
static kp_err audit_filter_args(kp_audit_filter *f, int64_t *limit, kp_error *e)
{
    memset(f, 0, sizeof *f);
    f->after_seq = http_query_int("after", 0);
    f->before_seq = http_query_int("before", 0);
    *limit = http_query_int("limit", 100);
    if (f->after_seq < 0)
        return kp_error_set(e, KP_ERR_INVALID, "after", "must be an entry number >= 0");
    if (f->before_seq < 0)
        return kp_error_set(e, KP_ERR_INVALID, "before", "must be an entry number >= 1");
    if (*limit < 1 || *limit > KP_AUDIT_PAGE_MAX)
        return kp_error_set(e, KP_ERR_INVALID, "limit", "must be from 1 to %d", KP_AUDIT_PAGE_MAX);
    const char *order = kp_http_arg("order");
    if (order == NULL || order[0] == '\0')
        f->newest_first = f->before_seq > 0; /* paging back with before */
    else if (strcmp(order, "desc") == 0)
        f->newest_first = true;
    else if (strcmp(order, "asc") != 0)
        return kp_error_set(e, KP_ERR_INVALID, "order",
                            "must be asc (oldest first, the default) or desc (newest first)");
    kp_audit_entry probe;
    kp_err err;
    if ((err = audit_text_arg("actor", sizeof probe.actor, &f->actor, e)) ||
        (err = audit_text_arg("action", sizeof probe.action, &f->action, e)) ||
        (err = audit_text_arg("target", sizeof probe.target, &f->target, e)) ||
        (err = audit_time_arg("from", &f->from, e)) || (err = audit_time_arg("to", &f->to, e)))
        return err;
    if (f->from && f->to && f->to <= f->from)
        return kp_error_set(e, KP_ERR_INVALID, "to", "must be after from");
    return KP_OK;
}

static kp_err do_audit(kp_office *o, const http_request *r, void *arg, kp_buf *out, bool *replayed,
                       kp_field_errors *fe, kp_error *e)
{
    kp_audit_filter f;
    int64_t limit;
    kp_err err = kp_office_require(o, KP_PERM_AUDIT_READ, e);
    if (err == KP_OK) err = audit_filter_args(&f, &limit, e);
    if (err) return err;
    return kp_audit_json(o, &f, limit, out, e);
}

static unsigned route_audit(const http_request *r, kp_http_answer *a)
{
    return http_office_read(r, do_audit, NULL, a);
}

/* ---- adjustments */

static kp_err do_adjust(kp_office *o, const http_request *r, void *arg, kp_buf *out, bool *replayed,
                        kp_field_errors *fe, kp_error *e)
{
    return kp_adjust(o, r->body, r->body_len, out, replayed, e);
}

static unsigned route_adjust(const http_request *r, kp_http_answer *a)
{
    return http_office_write(r, do_adjust, NULL, 201, a);
}

/* ---- cards */

static kp_err do_batch(kp_office *o, const http_request *r, void *arg, kp_buf *out, bool *replayed,
                       kp_field_errors *fe, kp_error *e)
{
    return kp_cards_batch_http(o, r->body, r->body_len, out, e);
}

static unsigned route_batch(const http_request *r, kp_http_answer *a)
{
    kp_buf_reserve(a->body, 512 * 1024);
    return http_office_write(r, do_batch, NULL, 201, a);
}

/* An audit entry for a read done on a reader (exports): one small job. */
static kp_err do_batch_csv(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                           bool *replayed, kp_field_errors *fe, kp_error *e)
{
    int64_t id = http_param_id(r->params[0]);
    if (id == 0) return kp_error_set(e, KP_ERR_NOT_FOUND, "batch", "no such batch of cards");
    return kp_cards_batch_csv(o, id, NULL, out, NULL, e);
}

static unsigned route_batch_csv(const http_request *r, kp_http_answer *a)
{
    unsigned status = http_office_read(r, do_batch_csv, NULL, a);
    if (status != 200) return status;
    http_audit_note note = {.action = "card.export"};
    snprintf(note.target, sizeof note.target, "batch:%lld", (long long)http_param_id(r->params[0]));
    if ((status = http_audited(r, &note, a)) == 200) a->content_type = "text/csv; charset=utf-8";
    return status;
}

static kp_err do_card(kp_office *o, const http_request *r, void *arg, kp_buf *out, bool *replayed,
                      kp_field_errors *fe, kp_error *e)
{
    return kp_card_detail(o, r->params[0], out, e);
}

static unsigned route_card(const http_request *r, kp_http_answer *a)
{
    return http_office_read(r, do_card, NULL, a);
}

typedef kp_err (*card_op)(kp_office *o, const char *number, const char *body, size_t len,
                          kp_buf *out, kp_error *e);

static kp_err do_card_op(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                         bool *replayed, kp_field_errors *fe, kp_error *e)
{
    card_op op = *(card_op *)arg;
    return op(o, r->params[0], r->body, r->body_len, out, e);
}

static unsigned route_block(const http_request *r, kp_http_answer *a)
{
    card_op op = kp_card_block;
    return http_office_write(r, do_card_op, &op, 200, a);
}

static unsigned route_unblock(const http_request *r, kp_http_answer *a)
{
    card_op op = kp_card_unblock;
    return http_office_write(r, do_card_op, &op, 200, a);
}

static unsigned route_replace(const http_request *r, kp_http_answer *a)
{
    card_op op = kp_card_replace;
    return http_office_write(r, do_card_op, &op, 200, a);
}

/* ---- request bodies of the routes below: parsed here, typed for the service */

/* ---- a card's individual discount (seed 003) */

typedef struct discount_call {
    bool has;
    int32_t bp;
} discount_call;

static kp_err do_discount(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                          bool *replayed, kp_field_errors *fe, kp_error *e)
{
    const discount_call *d = arg;
    kp_err err = kp_discount_set(o, r->params[0], d->has, d->bp, e);
    if (err) return err;
    char rate[16];
    kp_percent_format(d->bp, rate, sizeof rate);
    kp_buf_reset(out);
    kp_buf_puts(out, "{");
    kp_buf_json_kv_str(out, "card", r->params[0], false);
    if (d->has)
        kp_buf_json_kv_str(out, "personal_discount", rate, true);
    else
        kp_buf_puts(out, ",\"personal_discount\":null");
    kp_buf_puts(out, "}");
    return KP_OK;
}

/* POST {"percent": "7.5"} (a string, at most 2 decimals, or an integer). */
static unsigned route_discount_set(const http_request *r, kp_http_answer *a)
{
    discount_call d = {.has = true};
    kp_error e = {0};
    static const char *const keys[] = {"percent", NULL};
    json_t *root = http_body_object(r, keys, &e);
    if (root == NULL) return kp_http_error_answer(a->body, &e, NULL);
    json_t *v = json_object_get(root, "percent");
    kp_err err = KP_OK;
    char text[32] = "";
    if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= 100)
        snprintf(text, sizeof text, "%lld", (long long)json_integer_value(v));
    else if (json_is_string(v) && json_string_length(v) < sizeof text)
        snprintf(text, sizeof text, "%s", json_string_value(v));
    if (!kp_percent_parse(text, &d.bp) || d.bp < 0 || d.bp > 10000)
        err = kp_error_set(&e, KP_ERR_INVALID, "percent",
                           "is required: a percentage from 0 to 100 with at most 2 decimals, "
                           "as a string (\"7.5\") or an integer");
    json_decref(root);
    if (err) return kp_http_error_answer(a->body, &e, NULL);
    return http_office_write(r, do_discount, &d, 200, a);
}

static unsigned route_discount_clear(const http_request *r, kp_http_answer *a)
{
    discount_call d = {.has = false};
    return http_office_write(r, do_discount, &d, 200, a);
}

/* ---- terminal keys */

static void terminal_json(kp_buf *out, const kp_terminal *t, const char *key)
{
    kp_buf_puts(out, "{");
    kp_buf_json_kv_i64(out, "id", t->id, false);
    kp_buf_json_kv_str(out, "store", t->store, true);
    kp_buf_json_kv_str(out, "state", t->revoked_at ? "revoked" : "active", true);
    people_time_kv(out, "created_at", t->created_at);
    people_time_kv(out, "rotated_at", t->rotated_at);
    people_time_kv(out, "last_used_at", t->last_used_at);
    people_time_kv(out, "revoked_at", t->revoked_at);
    if (key) kp_buf_json_kv_str(out, "key", key, true);
    kp_buf_puts(out, "}");
}

static kp_err do_terminals(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                           bool *replayed, kp_field_errors *fe, kp_error *e)
{
    int64_t after = http_query_int("after", 0), limit = http_query_int("limit", 100);
    if (after < 0) return kp_error_set(e, KP_ERR_INVALID, "after", "must be a terminal id >= 0");
    if (limit < 1 || limit > KP_TERMINALS_PAGE_MAX)
        return kp_error_set(e, KP_ERR_INVALID, "limit", "must be from 1 to %d",
                            KP_TERMINALS_PAGE_MAX);
    kp_terminal *list = calloc((size_t)limit, sizeof *list);
    if (list == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    size_t n = 0;
    kp_err err = kp_terminal_list(o, after, list, (size_t)limit, &n, e);
    if (err == KP_OK) {
        kp_buf_reset(out);
        kp_buf_puts(out, "{\"terminals\":[");
        for (size_t i = 0; i < n; i++) {
            if (i) kp_buf_puts(out, ",");
            terminal_json(out, &list[i], NULL);
        }
        kp_buf_puts(out, "]");
        kp_buf_json_kv_i64(out, "next_after", n ? list[n - 1].id : after, true);
        kp_buf_puts(out, "}");
    }
    free(list);
    return err;
}

static unsigned route_terminals(const http_request *r, kp_http_answer *a)
{
    return http_office_read(r, do_terminals, NULL, a);
}

typedef enum terminal_verb { TERMINAL_ADD, TERMINAL_REVOKE, TERMINAL_ROTATE } terminal_verb;

static kp_err do_terminal(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                          bool *replayed, kp_field_errors *fe, kp_error *e)
{
    terminal_verb verb = *(const terminal_verb *)arg;
    kp_terminal t;
    char key[65] = "";
    kp_err err;
    if (verb == TERMINAL_ADD) {
        static const char *const keys[] = {"store", NULL};
        json_t *root = http_body_object(r, keys, e);
        if (root == NULL) return KP_ERR_INVALID;
        json_t *store = json_object_get(root, "store");
        if (!json_is_string(store))
            err = kp_error_set(e, KP_ERR_INVALID, "store",
                               "is required: the name of the terminal's store (a string of 1 "
                               "to %d bytes)", KP_STR_MAX - 1);
        else
            err = kp_terminal_add(o, json_string_value(store), key, &t, e);
        json_decref(root);
    } else {
        int64_t id = http_param_id(r->params[0]);
        if (id == 0) return kp_error_set(e, KP_ERR_NOT_FOUND, "terminal", "no such terminal");
        if (r->body_len > 0 && !(r->body_len == 2 && memcmp(r->body, "{}", 2) == 0))
            return kp_error_set(e, KP_ERR_INVALID, "", "this route takes no body (or {})");
        err = verb == TERMINAL_REVOKE ? kp_terminal_revoke(o, id, &t, e)
                                      : kp_terminal_rotate(o, id, key, &t, e);
    }
    if (err) return err;
    kp_buf_reset(out);
    terminal_json(out, &t, key[0] ? key : NULL);
    memset(key, 0, sizeof key);
    return KP_OK;
}

static unsigned route_terminal(const http_request *r, kp_http_answer *a, terminal_verb verb)
{
    unsigned status = http_office_write(r, do_terminal, &verb, verb == TERMINAL_ADD ? 201 : 200, a);
    /* The old key is refused by this server from its next request on. */
    if (status == 200) kp_keyring_forget(r->srv->keys);
    return status;
}

static unsigned route_terminal_add(const http_request *r, kp_http_answer *a)
{
    return route_terminal(r, a, TERMINAL_ADD);
}

static unsigned route_terminal_revoke(const http_request *r, kp_http_answer *a)
{
    return route_terminal(r, a, TERMINAL_REVOKE);
}

static unsigned route_terminal_rotate(const http_request *r, kp_http_answer *a)
{
    return route_terminal(r, a, TERMINAL_ROTATE);
}

/* ---- exports */

static bool to_buf(void *ctx, const char *data, size_t len)
{
    return kp_buf_append(ctx, data, len);
}

typedef struct export_call {
    bool customers;
    int64_t rows;
} export_call;

static kp_err do_export(kp_office *o, const http_request *r, void *arg, kp_buf *out, bool *replayed,
                        kp_field_errors *fe, kp_error *e)
{
    export_call *x = arg;
    kp_buf_reset(out);
    return x->customers ? kp_export_customers(o, to_buf, out, &x->rows, e)
                        : kp_export_balances(o, to_buf, out, &x->rows, e);
}

/* Read on a reader (never stalling the till's group commits), then audited. */
static unsigned route_export(const http_request *r, kp_http_answer *a, bool customers)
{
    export_call x = {.customers = customers};
    unsigned status = http_office_read(r, do_export, &x, a);
    if (status != 200) return status;
    http_audit_note note = {.action = customers ? "export.customers" : "export.balances"};
    snprintf(note.target, sizeof note.target, "%s", customers ? "customers" : "balances");
    snprintf(note.detail, sizeof note.detail, "rows=%lld", (long long)x.rows);
    if ((status = http_audited(r, &note, a)) == 200) a->content_type = "text/csv; charset=utf-8";
    return status;
}

static unsigned route_export_customers(const http_request *r, kp_http_answer *a)
{
    return route_export(r, a, true);
}

static unsigned route_export_balances(const http_request *r, kp_http_answer *a)
{
    return route_export(r, a, false);
}

/* ---- pictures */

typedef struct picture {
    kp_barcode_kind kind;
    bool png;
} picture;

static kp_err do_picture(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                         bool *replayed, kp_field_errors *fe, kp_error *e)
{
    const picture *p = arg;
    return kp_card_picture(o, p->kind, p->png, r->params[0], out, e);
}

static unsigned route_picture(const http_request *r, kp_http_answer *a, kp_barcode_kind kind,
                              bool png)
{
    picture p = {kind, png};
    unsigned status = http_office_read(r, do_picture, &p, a);
    if (status == 200) a->content_type = png ? "image/png" : "image/svg+xml";
    return status;
}

unsigned http_route_barcode_svg(const http_request *r, kp_http_answer *a)
{
    return route_picture(r, a, KP_BARCODE_CODE128, false);
}

static unsigned route_barcode_png(const http_request *r, kp_http_answer *a)
{
    return route_picture(r, a, KP_BARCODE_CODE128, true);
}

unsigned http_route_qr_svg(const http_request *r, kp_http_answer *a)
{
    return route_picture(r, a, KP_BARCODE_QR, false);
}

static unsigned route_qr_png(const http_request *r, kp_http_answer *a)
{
    return route_picture(r, a, KP_BARCODE_QR, true);
}

const http_route http_admin_routes[] = {
    {"POST", "/v1/admin/login", HTTP_PUBLIC, route_login},
    {"POST", "/v1/admin/logout", HTTP_STAFF, route_logout},
    {"GET", "/v1/admin/me", HTTP_STAFF, route_me},
    {"GET", "/v1/admin/staff", HTTP_STAFF, route_staff_list},
    {"POST", "/v1/admin/staff", HTTP_STAFF, route_staff_add},
    {"PATCH", "/v1/admin/staff/{}", HTTP_STAFF, route_staff_update},
    {"GET", "/v1/admin/audit", HTTP_STAFF, route_audit},
    {"POST", "/v1/admin/adjustments", HTTP_STAFF, route_adjust},
    {"POST", "/v1/admin/card-batches", HTTP_STAFF, route_batch},
    {"GET", "/v1/admin/card-batches/{}/cards.csv", HTTP_STAFF, route_batch_csv},
    {"GET", "/v1/admin/cards/{}", HTTP_STAFF, route_card},
    {"POST", "/v1/admin/cards/{}/block", HTTP_STAFF, route_block},
    {"POST", "/v1/admin/cards/{}/unblock", HTTP_STAFF, route_unblock},
    {"POST", "/v1/admin/cards/{}/replace", HTTP_STAFF, route_replace},
    {"POST", "/v1/admin/cards/{}/discount", HTTP_STAFF, route_discount_set},
    {"DELETE", "/v1/admin/cards/{}/discount", HTTP_STAFF, route_discount_clear},
    {"GET", "/v1/admin/terminals", HTTP_STAFF, route_terminals},
    {"POST", "/v1/admin/terminals", HTTP_STAFF, route_terminal_add},
    {"POST", "/v1/admin/terminals/{}/revoke", HTTP_STAFF, route_terminal_revoke},
    {"POST", "/v1/admin/terminals/{}/rotate", HTTP_STAFF, route_terminal_rotate},
    {"GET", "/v1/admin/export/customers.csv", HTTP_STAFF, route_export_customers},
    {"GET", "/v1/admin/export/balances.csv", HTTP_STAFF, route_export_balances},
    {"GET", "/v1/cards/{}/barcode.svg", HTTP_STAFF_OR_TERMINAL, http_route_barcode_svg},
    {"GET", "/v1/cards/{}/barcode.png", HTTP_STAFF_OR_TERMINAL, route_barcode_png},
    {"GET", "/v1/cards/{}/qr.svg", HTTP_STAFF_OR_TERMINAL, http_route_qr_svg},
    {"GET", "/v1/cards/{}/qr.png", HTTP_STAFF_OR_TERMINAL, route_qr_png},
};
const size_t http_admin_routes_count = sizeof http_admin_routes / sizeof http_admin_routes[0];
