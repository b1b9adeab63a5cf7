/*
 * http_people.c: the dispatcher of the back office's routes (docs/api.md,
 * "Back office"): finds the route in the tables of http_admin.c,
 * http_customers.c, http_notify.c, http_self.c and http_programs.c,
 * authenticates the caller (a staff session token "kps_...", a customer's
 * "kpc_...", or a terminal key "kp_..." where a till may call), and runs
 * the operation on a reader or through the writer. Personal data never reaches
 * a log from here: errors name fields, not values.
 */
#include "http_people.h"
#include "keyring.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "crypto/pii.h"
#include "notify/office.h"

#include <jansson.h>
#include <sodium.h>

/* ---- errors */

static unsigned simple(kp_buf *out, kp_err code, const char *message)
{
    kp_error e;
    kp_error_set(&e, code, "", "%s", message);
    return kp_http_error_answer(out, &e, NULL);
}

int64_t http_param_id(const char *text)
{
    char *end;
    long long v = strtoll(text, &end, 10);
    if (end == text || *end != '\0' || v <= 0) return 0;
    return v;
}

int64_t http_query_int(const char *name, int64_t dflt)
{
    const char *v = kp_http_arg(name);
    if (v == NULL || v[0] == '\0') return dflt;
    char *end;
    long long x = strtoll(v, &end, 10);
    return *end == '\0' && x >= 0 ? x : -1;
}

kp_err http_history_page(int64_t *before, int64_t *limit, kp_error *e)
{
    *before = http_query_int("before", 0);
    *limit = http_query_int("limit", KP_HISTORY_PAGE_MAX);
    if (*before < 0)
        return kp_error_set(e, KP_ERR_INVALID, "before",
                            "must be an operation id (a whole number >= 0): the next_before of "
                            "the page before");
    if (*limit < 1 || *limit > KP_HISTORY_PAGE_MAX)
        return kp_error_set(e, KP_ERR_INVALID, "limit", "must be a whole number from 1 to %d",
                            KP_HISTORY_PAGE_MAX);
    return KP_OK;
}

json_t *http_body_object(const http_request *r, const char *const *allowed, kp_error *e)
{
    json_t *root = r->body_len == 0 ? json_object() : kp_json_body_load(r->body, r->body_len, 0, e);
    if (root == NULL) return NULL;
    if (!json_is_object(root)) {
        json_decref(root);
        kp_error_set(e, KP_ERR_INVALID, "", "the body must be a JSON object");
        return NULL;
    }
    if (http_keys_check(root, "", allowed, e)) {
        json_decref(root);
        return NULL;
    }
    return root;
}

kp_err http_keys_check(json_t *obj, const char *prefix, const char *const *allowed, kp_error *e)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        bool ok = false;
        for (size_t i = 0; allowed[i] && !ok; i++) ok = strcmp(key, allowed[i]) == 0;
        if (!ok) {
            char names[256] = "", field[sizeof e->field];
            for (size_t i = 0, at = 0; allowed[i] && at < sizeof names; i++)
                at += (size_t)snprintf(names + at, sizeof names - at, "%s%s", i ? ", " : "",
                                       allowed[i]);
            snprintf(field, sizeof field, "%s%s", prefix, key);
            return kp_error_set(e, KP_ERR_INVALID, field, "unknown field (allowed: %s)", names);
        }
    }
    return KP_OK;
}

/* ---- running operations */

typedef struct office_call {
    const http_request *r;
    http_office_fn fn;
    void *arg;
    kp_field_errors *fe;
} office_call;

static kp_err run_office(void *ctx, kp_store *st, const kp_program *program, kp_scratch *sc,
                         kp_buf *out, bool *replayed, kp_error *e)
{
    office_call *c = ctx;
    kp_office o;
    kp_office_init(&o, st, c->r->srv->pii, program, c->r->now,
                   c->r->caller ? &c->r->caller->actor : NULL, sc);
    return c->fn(&o, c->r, c->arg, out, replayed, c->fe, e);
}

unsigned http_office_write(const http_request *r, http_office_fn fn, void *arg, unsigned ok_status,
                           kp_http_answer *a)
{
    kp_field_errors fe = {0};
    office_call call = {.r = r, .fn = fn, .arg = arg, .fe = &fe};
    kp_job job;
    memset(&job, 0, sizeof job);
    job.type = KP_JOB_CALL;
    job.call = run_office;
    job.ctx = &call;
    job.out = a->body;
    job.now = r->now;
    /* Sized here so the writer never reallocates another thread's buffer. */
    kp_buf_reserve(a->body, 256 * 1024);
    kp_writer_submit(r->srv->writer, &job);
    if (job.err) return kp_http_error_answer(a->body, &job.error, &fe);
    return job.replayed ? 200 : ok_status;
}

unsigned http_office_read(const http_request *r, http_office_fn fn, void *arg, kp_http_answer *a)
{
    kp_field_errors fe = {0};
    kp_error e = {0};
    bool replayed = false;
    kp_reader *rd = kp_reader_acquire(r->srv->readers);
    const kp_program *program = kp_programs_hold(r->srv->programs);
    kp_office o;
    kp_office_init(&o, rd->store, r->srv->pii, program, r->now,
                   r->caller ? &r->caller->actor : NULL, rd->scratch);
    kp_err err = fn(&o, r, arg, a->body, &replayed, &fe, &e);
    kp_programs_drop(r->srv->programs, program);
    kp_reader_release(r->srv->readers, rd);
    return err ? kp_http_error_answer(a->body, &e, &fe) : 200;
}

static kp_err do_audit_note(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                            bool *replayed, kp_field_errors *fe, kp_error *e)
{
    const http_audit_note *n = arg;
    kp_err err = kp_office_audit(o, n->action, n->target, "%s", n->detail);
    return err ? people_storage(o->st, err, e) : KP_OK;
}

unsigned http_audited(const http_request *r, http_audit_note *note, kp_http_answer *a)
{
    kp_buf scratch;
    kp_buf_init(&scratch, 64 * 1024);
    kp_http_answer side = {.status = 500, .body = &scratch};
    unsigned status = http_office_write(r, do_audit_note, note, 200, &side);
    if (status != 200) {
        kp_buf_reset(a->body);
        kp_buf_append(a->body, scratch.data, scratch.len);
    }
    kp_buf_release(&scratch);
    return status;
}

/* ---- authentication */

static kp_err authenticate(kp_server *srv, const char *header, kp_time now, http_caller *c)
{
    memset(c, 0, sizeof *c);
    if (header == NULL || strncmp(header, "Bearer ", 7) != 0) return KP_ERR_UNAUTHORIZED;
    const char *token = header + 7;
    size_t n = strlen(token);
    if (n == 0 || n > 128) return KP_ERR_UNAUTHORIZED;
    kp_err err;
    if (strncmp(token, "kpc_", 4) == 0) {
        /* A customer's session: only HTTP_CUSTOMER routes take it. */
        int64_t customer_id = 0;
        kp_reader *rd = kp_reader_acquire(srv->readers);
        err = kp_customer_session(rd->store, token, now, &customer_id, &c->expires_at);
        kp_reader_release(srv->readers, rd);
        if (err == KP_OK) {
            c->customer_id = customer_id;
            c->actor.kind = KP_ACTOR_CUSTOMER;
            c->actor.customer_id = customer_id;
            snprintf(c->actor.name, sizeof c->actor.name, "customer:%lld", (long long)customer_id);
            snprintf(c->token, sizeof c->token, "%s", token);
        }
    } else if (strncmp(token, "kps_", 4) == 0) {
        kp_staff staff;
        kp_reader *rd = kp_reader_acquire(srv->readers);
        err = kp_session_check(rd->store, token, now, &staff, &c->expires_at);
        kp_reader_release(srv->readers, rd);
        if (err == KP_OK) {
            c->is_staff = true;
            c->actor.kind = KP_ACTOR_STAFF;
            c->actor.role = staff.role;
            c->actor.staff_id = staff.id;
            snprintf(c->actor.partner, sizeof c->actor.partner, "%s", staff.partner);
            snprintf(c->actor.name, sizeof c->actor.name, "staff:%s", staff.login);
            snprintf(c->token, sizeof c->token, "%s", token);
        }
    } else {
        /* The keyring takes a reader of its own when it must. */
        kp_terminal t;
        err = kp_keyring_check(srv->keys, token, now, &t) ? KP_OK : KP_ERR_UNAUTHORIZED;
        if (err == KP_OK) {
            c->actor.kind = KP_ACTOR_TERMINAL;
            snprintf(c->actor.name, sizeof c->actor.name, "terminal:%.80s", t.store);
        }
    }
    return err == KP_ERR_NOT_FOUND ? KP_ERR_UNAUTHORIZED : err;
}

/* ---- matching */

/* The routes of a partner's staff (http_partner.c). */
#define PARTNER_PREFIX "/v1/partner/"

/* True when url matches pattern; the {} segments are copied to params. */
static bool match(const char *pattern, const char *url, char params[][KP_STR_MAX])
{
    size_t n = 0;
    while (*pattern && *url) {
        if (pattern[0] == '{' && pattern[1] == '}') {
            const char *end = url;
            while (*end && *end != '/') end++;
            size_t len = (size_t)(end - url);
            if (len == 0 || len >= KP_STR_MAX || n == HTTP_PARAMS_MAX) return false;
            /* a picture's extension ends the segment: "{}" then ".svg" */
            const char *after = pattern + 2;
            if (*after == '.') {
                const char *dot = url;
                while (dot < end && *dot != '.') dot++;
                len = (size_t)(dot - url);
                end = dot;
                if (len == 0) return false;
            }
            memcpy(params[n], url, len);
            params[n][len] = '\0';
            n++;
            url = end;
            pattern = after;
            continue;
        }
        if (*pattern != *url) return false;
        pattern++;
        url++;
    }
    return *pattern == '\0' && *url == '\0';
}

static bool is_people_url(const char *url)
{
    static const char *const notify_prefixes[] = {"/v1/customers/", "/v1/unsubscribe/",
                                                  "/v1/me/"};
    static const char *const notify_paths[] = {"/v1/sms/inbound", "/v1/login/code", "/v1/login",
                                               "/v1/me",          "/v1/logout",     "/v1/signup"};
    for (size_t i = 0; i < sizeof notify_prefixes / sizeof notify_prefixes[0]; i++)
        if (strncmp(url, notify_prefixes[i], strlen(notify_prefixes[i])) == 0) return true;
    for (size_t i = 0; i < sizeof notify_paths / sizeof notify_paths[0]; i++)
        if (strcmp(url, notify_paths[i]) == 0) return true;
    if (strncmp(url, "/v1/admin/", 10) == 0) return true;
    if (strcmp(url, "/v1/customers") == 0 || strcmp(url, "/v1/transfers") == 0) return true;
    if (strncmp(url, "/v1/catalog", 11) == 0 || strncmp(url, "/v1/orders", 10) == 0) return true;
    if (strncmp(url, "/v1/draws/", 10) == 0) return true; /* a draw's public answer */
    if (strncmp(url, PARTNER_PREFIX, strlen(PARTNER_PREFIX)) == 0) return true;
    if (strncmp(url, "/v1/cards/", 10) == 0) {
        size_t n = strlen(url);
        static const char *const pictures[] = {"/barcode.svg", "/barcode.png", "/qr.svg",
                                               "/qr.png"};
        for (size_t i = 0; i < 4; i++) {
            size_t k = strlen(pictures[i]);
            if (n > k && strcmp(url + n - k, pictures[i]) == 0) return true;
        }
    }
    return false;
}

size_t kp_http_body_max(const char *method, const char *url)
{
    if (strcmp(method, "POST") == 0 && strcmp(url, "/v1/admin/imports") == 0)
        return KP_IMPORT_BODY_MAX;
    return KP_BODY_MAX;
}

/* ---- cookie sessions (the pages)
 *
 * A page logs in with the header `X-Kopilka-Session: cookie`: the session's
 * token then goes into an HttpOnly, SameSite=Strict cookie (Secure behind
 * TLS) instead of the answer, which carries `csrf` in its place. A request
 * without Authorization is authenticated by the cookie its route takes
 * (kp_customer on a customer's routes, kp_staff elsewhere); one that is,
 * and is not a GET or HEAD, must carry `X-CSRF-Token` equal to its
 * session's csrf, a hash of the token no other site can compute. Any
 * request that is not a GET or HEAD and carries an Origin of another host
 * is refused too (a second line against cross-site requests). */

enum { CSRF_HEX = 32 };

static const char *const login_routes[] = {"/v1/admin/login", "/v1/login", "/v1/signup"};
static const char *const logout_routes[] = {"/v1/admin/logout", "/v1/logout", "/v1/me/erase"};
static const char *const me_routes[] = {"/v1/admin/me", "/v1/me"};

static bool url_in(const char *url, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(url, list[i]) == 0) return true;
    return false;
}
#define URL_IN(url, list) url_in(url, list, sizeof list / sizeof list[0])

/* Partner isolation (docs/coalition.md, "Partner staff and isolation"): a
 * session of a "partner" staff member reaches its partner's routes and its
 * own session's, nothing else of the back office, whatever permissions a
 * route checks. (POST /v1/events, outside these tables, takes it as a
 * partner system, as the program's event_sources allow: http_pos.c.) */
static const char *const partner_session_routes[] = {"/v1/admin/me", "/v1/admin/logout"};

static bool partner_may(const char *url)
{
    return strncmp(url, PARTNER_PREFIX, strlen(PARTNER_PREFIX)) == 0 ||
           URL_IN(url, partner_session_routes);
}

/* The csrf of a session token: 32 hex digits of BLAKE2b over it. */
static void csrf_of(const char *token, char out[CSRF_HEX + 1])
{
    static const unsigned char context[] = "kopilka csrf v1";
    unsigned char h[CSRF_HEX / 2];
    crypto_generichash(h, sizeof h, (const unsigned char *)token, strlen(token), context,
                       sizeof context - 1);
    sodium_bin2hex(out, CSRF_HEX + 1, h, sizeof h);
}

/* The value of cookie `name` in a Cookie header, into out; false when
 * absent, empty or longer than cap - 1. */
static bool cookie_value(const char *header, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    const char *p = header;
    while (p && *p) {
        while (*p == ' ' || *p == ';') p++;
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > n && strncmp(p, name, n) == 0 && p[n] == '=') {
            size_t v = len - n - 1;
            if (v == 0 || v >= cap) return false;
            memcpy(out, p + n + 1, v);
            out[v] = '\0';
            return true;
        }
        p = end;
    }
    return false;
}

static bool behind_tls(void)
{
    const char *proto = kp_http_header("X-Forwarded-Proto");
    return proto && strcmp(proto, "https") == 0;
}

static const char *cookie_name(bool customer)
{
    return customer ? "kp_customer" : "kp_staff";
}

/* True when an Origin header names another host than the Host header. */
static bool cross_site(void)
{
    const char *origin = kp_http_header("Origin");
    if (origin == NULL) return false;
    const char *host = kp_http_header("Host");
    const char *o = strstr(origin, "://");
    if (host == NULL || o == NULL) return true; /* "null" or garbage */
    return strcasecmp(o + 3, host) != 0;
}

static unsigned refuse(kp_buf *out, const char *field, const char *message)
{
    kp_error e;
    kp_error_set(&e, KP_ERR_FORBIDDEN, field, "%s", message);
    return kp_http_error_answer(out, &e, NULL);
}

/* After a login by a page: the token into the cookie, csrf into the answer. */
static void session_to_cookie(kp_http_answer *a, bool customer, kp_time now)
{
    json_t *root = json_loadb(a->body->data, a->body->len, 0, NULL);
    const char *token = json_string_value(json_object_get(root, "token"));
    kp_time expires = 0;
    if (token == NULL || strlen(token) > 128 ||
        !kp_time_parse(json_string_value(json_object_get(root, "expires_at")), &expires)) {
        json_decref(root);
        return;
    }
    char csrf[CSRF_HEX + 1];
    csrf_of(token, csrf);
    snprintf(a->set_cookie, sizeof a->set_cookie,
             "%s=%s; Path=/; Max-Age=%lld; HttpOnly; SameSite=Strict%s", cookie_name(customer),
             token, (long long)(expires > now ? expires - now : 0),
             behind_tls() ? "; Secure" : "");
    json_object_del(root, "token");
    json_object_set_new(root, "csrf", json_string(csrf));
    char *text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (text == NULL) {
        a->set_cookie[0] = '\0';
        return;
    }
    kp_buf_reset(a->body);
    kp_buf_puts(a->body, text);
    free(text);
}

/* A "me" answer of a cookie session gains its csrf. */
static void add_csrf(kp_http_answer *a, const char *token)
{
    json_t *root = json_loadb(a->body->data, a->body->len, 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return;
    }
    char csrf[CSRF_HEX + 1];
    csrf_of(token, csrf);
    json_object_set_new(root, "csrf", json_string(csrf));
    char *text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (text == NULL) return;
    kp_buf_reset(a->body);
    kp_buf_puts(a->body, text);
    free(text);
}

bool kp_http_people_handle(kp_server *srv, const char *method, const char *url, const char *auth,
                           const char *body, size_t body_len, bool body_too_large,
                           kp_http_answer *answer)
{
    if (!is_people_url(url)) return false;
    kp_buf *out = answer->body;
    static _Thread_local http_request req;
    memset(&req, 0, sizeof req);
    const http_route *route = NULL;
    bool path_known = false;
    const struct {
        const http_route *routes;
        size_t n;
    } tables[] = {{http_admin_routes, http_admin_routes_count},
                  {http_customer_routes, http_customer_routes_count},
                  {http_notify_routes, http_notify_routes_count},
                  {http_self_routes, http_self_routes_count},
                  {http_program_routes, http_program_routes_count},
                  {http_simulate_routes, http_simulate_routes_count},
                  {http_office_routes, http_office_routes_count},
                  {http_reports_routes, http_reports_routes_count},
                  {http_marketing_routes, http_marketing_routes_count},
                  {http_catalog_routes, http_catalog_routes_count},
                  {http_draws_routes, http_draws_routes_count},
                  {http_settlement_routes, http_settlement_routes_count},
                  {http_partner_routes, http_partner_routes_count}};
    for (size_t t = 0; t < sizeof tables / sizeof tables[0] && route == NULL; t++)
        for (size_t i = 0; i < tables[t].n && route == NULL; i++)
            if (match(tables[t].routes[i].pattern, url, req.params)) {
                path_known = true;
                if (strcmp(tables[t].routes[i].method, method) == 0) route = &tables[t].routes[i];
            }
    if (route == NULL) {
        if (path_known) {
            kp_buf_reset(out);
            kp_buf_puts(out, "{\"error\":{\"code\":\"method_not_allowed\",\"message\":"
                             "\"this route does not take this method; see docs/api.md\"}}");
            answer->status = 405;
        } else {
            answer->status = simple(out, KP_ERR_NOT_FOUND, "no such route; see docs/api.md");
        }
        return true;
    }
    req.srv = srv;
    req.now = kp_clock_now(&srv->config.clock);
    req.client = kp_http_client_address();
    bool safe_method = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (!safe_method && cross_site()) {
        answer->status = refuse(out, "Origin", "a cross-site request is refused: its Origin "
                                "is not this server's host");
        return true;
    }
    static _Thread_local http_caller caller;
    bool by_cookie = false;
    if (route->access != HTTP_PUBLIC) {
        static _Thread_local char cookie_auth[160];
        const char *cookies = auth == NULL ? kp_http_header("Cookie") : NULL;
        char token[136];
        if (cookies && cookie_value(cookies, cookie_name(route->access == HTTP_CUSTOMER), token,
                                    sizeof token)) {
            snprintf(cookie_auth, sizeof cookie_auth, "Bearer %s", token);
            auth = cookie_auth;
            by_cookie = true;
        }
        kp_err err = authenticate(srv, auth, req.now, &caller);
        bool customer = caller.customer_id != 0;
        if (err == KP_OK && route->access == HTTP_STAFF && !caller.is_staff) err = KP_ERR_FORBIDDEN;
        if (err == KP_OK && route->access == HTTP_STAFF_OR_TERMINAL && customer)
            err = KP_ERR_FORBIDDEN;
        if (err == KP_OK && route->access == HTTP_CUSTOMER && !customer)
            err = KP_ERR_FORBIDDEN;
        if (err) {
            answer->status =
                err == KP_ERR_FORBIDDEN
                    ? simple(out, KP_ERR_FORBIDDEN,
                             route->access == HTTP_CUSTOMER
                                 ? "this route is for a customer's session: log in at POST "
                                   "/v1/login"
                                 : "this route is for staff: log in at POST /v1/admin/login")
                : err == KP_ERR_UNAUTHORIZED
                    ? simple(out, KP_ERR_UNAUTHORIZED,
                             route->access == HTTP_STAFF
                                 ? "send Authorization: Bearer TOKEN with a staff session "
                                   "token from POST /v1/admin/login"
                             : route->access == HTTP_CUSTOMER
                                 ? "send Authorization: Bearer TOKEN with a customer's "
                                   "session token from POST /v1/login"
                                 : "send Authorization: Bearer with a staff session token or "
                                   "a terminal key")
                    : simple(out, err, "storage failed");
            return true;
        }
        if (by_cookie && !safe_method) {
            const char *sent = kp_http_header("X-CSRF-Token");
            char csrf[CSRF_HEX + 1];
            csrf_of(caller.token, csrf);
            if (sent == NULL || strlen(sent) != CSRF_HEX || sodium_memcmp(sent, csrf, CSRF_HEX)) {
                answer->status = refuse(out, "X-CSRF-Token", "a request authenticated by the "
                                        "session cookie must carry X-CSRF-Token with the csrf "
                                        "its login (or GET of \"me\") answered");
                return true;
            }
        }
        if (caller.is_staff && caller.actor.role == KP_ROLE_PARTNER && !partner_may(url)) {
            kp_error e;
            kp_error_set(&e, KP_ERR_FORBIDDEN, "", "a partner's session (partner %s) may use "
                         "only the " PARTNER_PREFIX "... routes, GET /v1/admin/me and POST "
                         "/v1/admin/logout; this route is the operator's back office",
                         caller.actor.partner);
            answer->status = kp_http_error_answer(out, &e, NULL);
            return true;
        }
        req.caller = &caller;
    } else {
        /* Nobody authenticated: an anonymous customer, allowed nothing of
         * the back office (a NULL actor would be the command line's). */
        memset(&caller, 0, sizeof caller);
        caller.actor.kind = KP_ACTOR_CUSTOMER;
        snprintf(caller.actor.name, sizeof caller.actor.name, "anonymous");
        req.caller = &caller;
    }
    if (body_too_large) {
        kp_error e;
        kp_error_set(&e, KP_ERR_LIMIT, "", "the body is over the limit of %zu bytes",
                     kp_http_body_max(method, url));
        kp_http_error(out, 413, "too_large", &e);
        answer->status = 413;
        return true;
    }
    req.body = body;
    req.body_len = body_len;
    answer->status = route->fn(&req, answer);
    bool ok = answer->status == 200 || answer->status == 201;
    if (ok && URL_IN(url, login_routes)) {
        const char *mode = kp_http_header("X-Kopilka-Session");
        if (mode && strcmp(mode, "cookie") == 0)
            session_to_cookie(answer, strcmp(url, "/v1/admin/login") != 0, req.now);
    } else if (ok && by_cookie && URL_IN(url, logout_routes)) {
        snprintf(answer->set_cookie, sizeof answer->set_cookie,
                 "%s=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict%s",
                 cookie_name(route->access == HTTP_CUSTOMER), behind_tls() ? "; Secure" : "");
    } else if (ok && by_cookie && strcmp(method, "GET") == 0 && URL_IN(url, me_routes)) {
        add_csrf(answer, caller.token);
    }
    return true;
}
