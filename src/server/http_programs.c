/*
 * http_programs.c: the program versions' routes (docs/api.md, "Program
 * versions"): the list with each version's state, one version's file,
 * checking a file with every error named, the difference against a loaded
 * version, the sandbox quote, loading a version at once or from a date, and
 * cancelling a scheduled one. Bodies are read here into the typed
 * operations of src/service/programs.h; http_people.c authenticates and
 * dispatches. A load or a cancellation refreshes this server's program
 * cache at once; other servers of the database follow within a second.
 */
#include "http_people.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <kopilka/clock.h>

#include "program/program_diff.h"
#include "service/programs.h"
#include "service/service_rules.h"

/* ---- reading bodies */

/* The body's "program": a JSON object (absent: *program NULL, an error when
 * required). */
static kp_err program_member(json_t *root, bool required, json_t **program, kp_error *e)
{
    *program = json_object_get(root, "program");
    if (*program == NULL && !required) return KP_OK;
    if (!json_is_object(*program)) {
        *program = NULL;
        return kp_error_set(e, KP_ERR_INVALID, "program",
                            "is required: the program file, as a JSON object (docs/rules.md)");
    }
    return KP_OK;
}

/* A program object's text, as it is stored (malloc'd; NULL: no memory). */
static char *program_text(json_t *program)
{
    return json_dumps(program, JSON_INDENT(2));
}

/* A version number in a body member or the path; 0 when absent. */
static kp_err version_member(json_t *root, const char *key, int64_t *version, kp_error *e)
{
    json_t *v = json_object_get(root, key);
    *version = 0;
    if (v == NULL || json_is_null(v)) return KP_OK;
    if (!json_is_integer(v) || json_integer_value(v) <= 0)
        return kp_error_set(e, KP_ERR_INVALID, key, "must be a program version (1, 2, ...)");
    *version = json_integer_value(v);
    return KP_OK;
}

/* ---- answers */

static void time_or_null(kp_buf *out, const char *key, kp_time t)
{
    people_time_kv(out, key, t);
}

static void version_fields(kp_buf *out, const kp_program_version *v, int64_t running, kp_time now)
{
    kp_buf_json_kv_i64(out, "version", v->version, false);
    kp_buf_json_kv_str(out, "name", v->name, true);
    time_or_null(out, "loaded_at", v->loaded_at);
    kp_buf_json_kv_str(out, "loaded_by", v->loaded_by, true);
    time_or_null(out, "activates_at", v->activates_at);
    time_or_null(out, "cancelled_at", v->cancelled_at);
    kp_buf_json_kv_str(out, "state", kp_program_state_name(kp_program_state_of(v, running, now)),
                       true);
}

static void running_field(kp_buf *out, int64_t running, bool comma)
{
    if (comma) kp_buf_puts(out, ",");
    kp_buf_json_key(out, "running");
    if (running)
        kp_buf_printf(out, "%lld", (long long)running);
    else
        kp_buf_puts(out, "null");
}

/* Appends a JSON value, compact. */
static kp_err put_json(kp_buf *out, json_t *value, kp_error *e)
{
    char *text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    kp_buf_puts(out, text);
    free(text);
    return out->failed ? kp_error_set(e, KP_ERR_NOMEM, "", "the answer is too large") : KP_OK;
}

/* ---- GET /v1/admin/programs?before=V&limit=N */

static kp_err do_list(kp_office *o, const http_request *r, void *arg, kp_buf *out, bool *replayed,
                      kp_field_errors *fe, kp_error *e)
{
    int64_t before = http_query_int("before", 0), limit = http_query_int("limit", 100);
    if (before < 0) return kp_error_set(e, KP_ERR_INVALID, "before", "must be a version number");
    if (limit < 1 || limit > KP_PROGRAM_VERSIONS_PAGE_MAX)
        return kp_error_set(e, KP_ERR_INVALID, "limit", "must be from 1 to %d",
                            (int)KP_PROGRAM_VERSIONS_PAGE_MAX);
    kp_program_version *rows = calloc((size_t)limit, sizeof *rows);
    if (rows == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    size_t n = 0;
    int64_t running = 0;
    kp_err err = kp_program_versions(o, before, rows, (size_t)limit, &n, &running, e);
    if (err == KP_OK) {
        kp_buf_reset(out);
        kp_buf_puts(out, "{");
        running_field(out, running, false);
        kp_buf_puts(out, ",\"versions\":[");
        for (size_t i = 0; i < n; i++) {
            kp_buf_puts(out, i ? ",{" : "{");
            version_fields(out, &rows[i], running, o->now);
            kp_buf_puts(out, "}");
        }
        kp_buf_puts(out, "]}");
    }
    free(rows);
    return err;
}

static unsigned route_list(const http_request *r, kp_http_answer *a)
{
    return http_office_read(r, do_list, NULL, a);
}

/* ---- GET /v1/admin/programs/{version} */

static kp_err do_get(kp_office *o, const http_request *r, void *arg, kp_buf *out, bool *replayed,
                     kp_field_errors *fe, kp_error *e)
{
    int64_t version = http_param_id(r->params[0]);
    if (version == 0) return kp_error_set(e, KP_ERR_NOT_FOUND, "version", "no such version");
    kp_program_version row;
    int64_t running = 0;
    char *text = NULL;
    kp_err err = kp_program_version_get(o, version, &row, &running, &text, e);
    if (err) return err;
    json_t *program = json_loads(text, 0, NULL);
    free(text);
    if (program == NULL)
        return kp_error_set(e, KP_ERR_INTERNAL, "", "the stored file of version %lld is not JSON",
                            (long long)version);
    kp_buf_reset(out);
    kp_buf_puts(out, "{");
    version_fields(out, &row, running, o->now);
    kp_buf_puts(out, ",\"program\":");
    err = put_json(out, program, e);
    kp_buf_puts(out, "}");
    json_decref(program);
    return err;
}

static unsigned route_get(const http_request *r, kp_http_answer *a)
{
    return http_office_read(r, do_get, NULL, a);
}

/* ---- the changes against a loaded version (validate, diff) */

/* Writes "against", "changes_total" and "changes" (after a comma when
 * `comma`) of `program` against version `against` (0: the running one; none
 * running: against {}, every member added). */
static kp_err changes_json(kp_office *o, json_t *program, int64_t against, bool comma, kp_buf *out,
                           kp_error *e)
{
    kp_program_version row;
    int64_t running = 0;
    char *text = NULL;
    kp_err err = kp_program_version_get(o, against, &row, &running, &text, e);
    if (err == KP_ERR_NOT_FOUND && against == 0) {
        kp_error_clear(e);
        row.version = 0;
        err = KP_OK;
    }
    if (err) return err;
    json_t *from = text ? json_loads(text, 0, NULL) : json_object();
    free(text);
    json_t *changes = json_array();
    size_t total = 0;
    if (from == NULL || changes == NULL)
        err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    else if ((err = program_diff(from, program, PROGRAM_CHANGES_MAX, changes, &total)))
        kp_error_set(e, err, "", "out of memory");
    if (err == KP_OK) {
        if (comma) kp_buf_puts(out, ",");
        kp_buf_puts(out, "\"against\":");
        if (row.version)
            kp_buf_printf(out, "%lld", (long long)row.version);
        else
            kp_buf_puts(out, "null");
        kp_buf_json_kv_i64(out, "changes_total", (int64_t)total, true);
        kp_buf_puts(out, ",\"changes\":");
        err = put_json(out, changes, e);
    }
    json_decref(from);
    json_decref(changes);
    return err;
}

/* A body of a program route, read and its keys checked; *program set when
 * the body has one. */
typedef struct program_body {
    json_t *root;
    json_t *program;
} program_body;

static kp_err body_read(const http_request *r, const char *const *keys, bool program_required,
                        program_body *b, kp_error *e)
{
    memset(b, 0, sizeof *b);
    b->root = http_body_object(r, keys, e);
    if (b->root == NULL) return e->code;
    return program_member(b->root, program_required, &b->program, e);
}

/* Checks `program` with every error into fe. */
static kp_err check_program(json_t *program, kp_program *parsed, kp_field_errors *fe, kp_error *e)
{
    char *text = program_text(program);
    kp_err err = text ? kp_program_validate(text, strlen(text), parsed, fe, e)
                      : kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    free(text);
    return err;
}

static kp_err do_validate(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                          bool *replayed, kp_field_errors *fe, kp_error *e)
{
    static const char *const keys[] = {"program", NULL};
    program_body b = {0};
    kp_program *parsed = NULL;
    kp_err err = kp_office_require(o, KP_PERM_PROGRAM_READ, e);
    if (err == KP_OK) err = body_read(r, keys, true, &b, e);
    if (err == KP_OK && (parsed = malloc(sizeof *parsed)) == NULL)
        err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    if (err == KP_OK) err = check_program(b.program, parsed, fe, e);
    if (err == KP_OK) {
        kp_buf_reset(out);
        kp_buf_puts(out, "{\"valid\":true");
        err = changes_json(o, b.program, 0, true, out, e);
        kp_buf_puts(out, "}");
    }
    free(parsed);
    json_decref(b.root);
    return err;
}

static unsigned route_validate(const http_request *r, kp_http_answer *a)
{
    return http_office_read(r, do_validate, NULL, a);
}

static kp_err do_diff(kp_office *o, const http_request *r, void *arg, kp_buf *out, bool *replayed,
                      kp_field_errors *fe, kp_error *e)
{
    static const char *const keys[] = {"program", "against", NULL};
    kp_err err = kp_office_require(o, KP_PERM_PROGRAM_READ, e);
    program_body b = {0};
    int64_t against = 0;
    if (err == KP_OK) err = body_read(r, keys, true, &b, e);
    if (err == KP_OK) err = version_member(b.root, "against", &against, e);
    if (err == KP_OK) {
        kp_buf_reset(out);
        kp_buf_puts(out, "{");
        err = changes_json(o, b.program, against, false, out, e);
        kp_buf_puts(out, "}");
    }
    json_decref(b.root);
    return err;
}

static unsigned route_diff(const http_request *r, kp_http_answer *a)
{
    return http_office_read(r, do_diff, NULL, a);
}

/* ---- POST /v1/admin/programs/sandbox */

/* The sandbox's basket as POST /v1/quote reads it: the body's card (or a
 * stand-in, blanked after), burn, at and lines, through the quote's own
 * parser, so every error reads as a quote's. */
static kp_err sandbox_request(json_t *root, kp_purchase_req *req, int64_t *balance, kp_error *e)
{
    json_t *card = json_object_get(root, "card"), *bal = json_object_get(root, "balance");
    bool has_card = card && !json_is_null(card), has_balance = bal && !json_is_null(bal);
    *balance = 0;
    if (has_card && has_balance)
        return kp_error_set(e, KP_ERR_INVALID, "balance",
                            "give a card (its real balance is used) or a balance (a blank "
                            "account), not both");
    if (has_balance) {
        if (!json_is_integer(bal) || json_integer_value(bal) < 0 ||
            json_integer_value(bal) > KP_SANDBOX_BALANCE_MAX)
            return kp_error_set(e, KP_ERR_INVALID, "balance", "must be an integer from 0 to %lld",
                                (long long)KP_SANDBOX_BALANCE_MAX);
        *balance = json_integer_value(bal);
    }
    json_t *quote = json_object();
    if (quote == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    static const char *const copied[] = {"burn", "at", "lines"};
    for (size_t i = 0; i < sizeof copied / sizeof copied[0]; i++) {
        json_t *v = json_object_get(root, copied[i]);
        if (v) json_object_set(quote, copied[i], v);
    }
    json_object_set_new(quote, "card", has_card ? json_incref(card) : json_string("sandbox"));
    char *text = json_dumps(quote, JSON_COMPACT);
    json_decref(quote);
    kp_err err = text ? kp_purchase_req_parse(text, strlen(text), false, req, e)
                      : kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    free(text);
    if (err == KP_OK && !has_card) req->card[0] = '\0';
    return err;
}

static kp_err do_sandbox(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                         bool *replayed, kp_field_errors *fe, kp_error *e)
{
    static const char *const keys[] = {"program", "card",  "balance", "burn",
                                       "at",      "lines", "store",   NULL};
    program_body b = {0};
    kp_purchase_req *req = malloc(sizeof *req);
    kp_program *draft = NULL;
    int64_t balance = 0;
    char store[KP_STR_MAX] = "";
    kp_err err = req ? kp_office_require(o, KP_PERM_PROGRAM_READ, e)
                     : kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    if (err == KP_OK) err = body_read(r, keys, false, &b, e);
    if (err == KP_OK) {
        json_t *s = json_object_get(b.root, "store");
        if (s && !(json_is_string(s) && json_string_length(s) < KP_STR_MAX))
            err = kp_error_set(e, KP_ERR_INVALID, "store",
                               "must be a store's name of up to %d "
                               "bytes (rules limited to a store apply only there)",
                               KP_STR_MAX - 1);
        else if (s)
            snprintf(store, sizeof store, "%s", json_string_value(s));
    }
    if (err == KP_OK) err = sandbox_request(b.root, req, &balance, e);
    const kp_program *program = o->program;
    if (err == KP_OK && b.program) {
        /* A draft: checked as a load would check it, priced as version 0. */
        if ((draft = malloc(sizeof *draft)) == NULL)
            err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
        else if ((err = check_program(b.program, draft, fe, e)) == KP_OK)
            program = draft;
    } else if (err == KP_OK && program == NULL) {
        err = kp_error_set(e, KP_ERR_NOT_FOUND, "program",
                           "no program version runs now: send one in \"program\"");
    }
    if (err == KP_OK)
        err = kp_service_sandbox(o->st, program, store, req, balance, o->now, o->sc, out, e);
    free(draft);
    free(req);
    json_decref(b.root);
    return err;
}

static unsigned route_sandbox(const http_request *r, kp_http_answer *a)
{
    return http_office_read(r, do_sandbox, NULL, a);
}

/* ---- POST /v1/admin/programs, POST /v1/admin/programs/{version}/cancel */

typedef struct load_call {
    char *text; /* the program's file as stored */
    char name[128];
    kp_time activates_at; /* 0: at once */
    int64_t version;      /* out */
} load_call;

/* The body of a load, read on the request's thread: the file is checked
 * here (every error named) so the writer never waits on a bad one. */
static kp_err do_load_check(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                            bool *replayed, kp_field_errors *fe, kp_error *e)
{
    static const char *const keys[] = {"program", "name", "activates_at", NULL};
    load_call *c = arg;
    program_body b = {0};
    kp_program *parsed = NULL;
    kp_err err = kp_office_require(o, KP_PERM_PROGRAM_MANAGE, e);
    if (err == KP_OK) err = body_read(r, keys, true, &b, e);
    json_t *name = b.root ? json_object_get(b.root, "name") : NULL;
    json_t *at = b.root ? json_object_get(b.root, "activates_at") : NULL;
    if (err == KP_OK && name && !json_is_null(name)) {
        if (!json_is_string(name) || json_string_length(name) >= sizeof c->name)
            err = kp_error_set(e, KP_ERR_INVALID, "name",
                               "must be a string of at most %zu bytes (absent: the program's "
                               "own name)",
                               sizeof c->name - 1);
        else
            snprintf(c->name, sizeof c->name, "%s", json_string_value(name));
    }
    if (err == KP_OK && at && !json_is_null(at)) {
        if (!json_is_string(at) || !kp_time_parse(json_string_value(at), &c->activates_at))
            err = kp_error_set(e, KP_ERR_INVALID, "activates_at",
                               "must be an RFC 3339 time like \"2027-01-01T00:00:00+03:00\", or "
                               "absent to activate at once");
        else
            err = kp_program_activation_check(c->activates_at, o->now, e);
    }
    if (err == KP_OK && (parsed = malloc(sizeof *parsed)) == NULL)
        err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    if (err == KP_OK) err = check_program(b.program, parsed, fe, e);
    if (err == KP_OK && (c->text = program_text(b.program)) == NULL)
        err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    free(parsed);
    json_decref(b.root);
    return err;
}

static kp_err do_load(kp_office *o, const http_request *r, void *arg, kp_buf *out, bool *replayed,
                      kp_field_errors *fe, kp_error *e)
{
    load_call *c = arg;
    kp_err err = kp_program_load(o, c->text, strlen(c->text), c->name, "api", c->activates_at,
                                 &c->version, fe, e);
    if (err) return err;
    kp_buf_reset(out);
    kp_buf_puts(out, "{");
    kp_buf_json_kv_i64(out, "version", c->version, false);
    kp_buf_json_kv_str(out, "state", c->activates_at ? "scheduled" : "running", true);
    time_or_null(out, "activates_at", c->activates_at);
    kp_buf_puts(out, "}");
    return KP_OK;
}

/* This server's cache takes a loaded or cancelled version at once. */
static void programs_refresh(const http_request *r)
{
    kp_error e = {0};
    kp_reader *rd = kp_reader_acquire(r->srv->readers);
    if (kp_programs_refresh(r->srv->programs, rd->store, &e))
        fprintf(stderr,
                "kopilka: the program cache was not refreshed: %s (it is within a "
                "second)\n",
                e.message);
    kp_reader_release(r->srv->readers, rd);
}

static unsigned route_load(const http_request *r, kp_http_answer *a)
{
    load_call c;
    memset(&c, 0, sizeof c);
    unsigned status = http_office_read(r, do_load_check, &c, a);
    if (status == 200) status = http_office_write(r, do_load, &c, 201, a);
    free(c.text);
    if (status == 201) programs_refresh(r);
    return status;
}

static kp_err do_cancel(kp_office *o, const http_request *r, void *arg, kp_buf *out, bool *replayed,
                        kp_field_errors *fe, kp_error *e)
{
    int64_t version = http_param_id(r->params[0]);
    if (version == 0) return kp_error_set(e, KP_ERR_NOT_FOUND, "version", "no such version");
    if (r->body_len > 0 && !(r->body_len == 2 && memcmp(r->body, "{}", 2) == 0))
        return kp_error_set(e, KP_ERR_INVALID, "", "this route takes no body (or {})");
    kp_program_version row;
    kp_err err = kp_program_cancel(o, version, &row, e);
    if (err) return err;
    kp_buf_reset(out);
    kp_buf_puts(out, "{");
    version_fields(out, &row, 0, o->now);
    kp_buf_puts(out, "}");
    return KP_OK;
}

static unsigned route_cancel(const http_request *r, kp_http_answer *a)
{
    unsigned status = http_office_write(r, do_cancel, NULL, 200, a);
    if (status == 200) programs_refresh(r);
    return status;
}

const http_route http_program_routes[] = {
    {"GET", "/v1/admin/programs", HTTP_STAFF, route_list},
    {"POST", "/v1/admin/programs", HTTP_STAFF, route_load},
    {"POST", "/v1/admin/programs/validate", HTTP_STAFF, route_validate},
    {"POST", "/v1/admin/programs/diff", HTTP_STAFF, route_diff},
    {"POST", "/v1/admin/programs/sandbox", HTTP_STAFF, route_sandbox},
    {"GET", "/v1/admin/programs/{}", HTTP_STAFF, route_get},
    {"POST", "/v1/admin/programs/{}/cancel", HTTP_STAFF, route_cancel},
};
const size_t http_program_routes_count = sizeof http_program_routes / sizeof http_program_routes[0];
