/*
 * http_pos.c: the POS routes of /v1 (docs/api.md): authentication by
 * terminal key, then quote, purchase, return and card lookup. Each route is
 * one function registered in the table below; none of them knows MHD.
 * Purchases and returns can be left to the caller as a writer's job
 * (kp_http_answer.job), so the HTTP layer need not block a thread on them.
 */
#include "server.h"
#include "keyring.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/people.h"

static unsigned simple_error(kp_buf *out, unsigned status, const char *code, const char *field,
                             const char *message)
{
    kp_error e;
    kp_error_set(&e, KP_ERR_INVALID, field, "%s", message);
    return kp_http_error(out, status, code, &e);
}

/* Finds the store of a terminal key that is not revoked (keyring.h: from
 * memory on the hot path, its use noted there, not written per request). */
static bool authenticate(kp_server *srv, const char *header, char *store)
{
    if (header == NULL || strncmp(header, "Bearer ", 7) != 0) return false;
    kp_terminal t;
    if (!kp_keyring_check(srv->keys, header + 7, kp_clock_now(&srv->config.clock), &t))
        return false;
    memcpy(store, t.store, KP_STR_MAX);
    return true;
}

/* Request structs are large (200 lines). A quote runs to its end on the
 * calling thread, so each thread keeps one; a write keeps its own in the
 * connection's kp_http_write, since it may outlive the handler call. */
static _Thread_local kp_purchase_req tl_purchase;

/* A request that names the customer by phone: finds the card on a reader
 * (till.c) and writes it into req, so the service, the stored operation and
 * the operation log see a card. */
static kp_err identify(kp_server *srv, kp_reader *r, const kp_program *program,
                       kp_purchase_req *req, kp_error *e)
{
    if (req->phone[0] == '\0') return KP_OK;
    kp_err err = kp_till_card_by_phone(r->store, srv->pii, program, req->phone, req->card, e);
    if (err == KP_OK) req->by_phone = true;
    return err;
}

static unsigned route_quote(kp_server *srv, const char *store, const char *body, size_t len,
                            kp_buf *out)
{
    kp_error e = {0};
    kp_purchase_req *req = &tl_purchase;
    if (kp_purchase_req_parse(body, len, false, req, &e))
        return kp_http_error_answer(out, &e, NULL);
    const kp_program *program = kp_programs_hold(srv->programs);
    if (program == NULL) return simple_error(out, 503, "unavailable", "", "no program is loaded");
    kp_reader *r = kp_reader_acquire(srv->readers);
    kp_err err = identify(srv, r, program, req, &e);
    if (err == KP_OK)
        err = kp_service_quote(r->store, program, store, req, kp_clock_now(&srv->config.clock),
                               r->scratch, out, &e);
    kp_reader_release(srv->readers, r);
    kp_programs_drop(srv->programs, program);
    return err ? kp_http_error_answer(out, &e, NULL) : 200;
}

void kp_http_write_release(kp_http_write *w)
{
    free(w->req);
    w->req = NULL;
}

unsigned kp_http_write_status(kp_http_write *w)
{
    if (w->job.err) return kp_http_error_answer(w->job.out, &w->job.error, NULL);
    return w->job.replayed ? 200 : 201;
}

/* POST /v1/purchases and /v1/returns: parses the body into the connection's
 * write slot and leaves the writer's job in answer->job for the caller to
 * queue (status 0), or answers a request that is not valid. */
static unsigned route_write(kp_server *srv, kp_job_type type, const char *store, const char *body,
                            size_t len, kp_http_answer *answer)
{
    kp_buf *out = answer->body;
    kp_http_write *w = answer->write;
    assert(w != NULL);
    if (w->req == NULL && (w->req = malloc(sizeof *w->req)) == NULL)
        return simple_error(out, 503, "unavailable", "", "out of memory");
    kp_job *job = &w->job;
    memset(job, 0, sizeof *job);
    memcpy(w->store, store, KP_STR_MAX);
    job->type = type;
    job->store = w->store;
    job->out = out;
    job->now = kp_clock_now(&srv->config.clock);
    kp_err err;
    size_t n_lines;
    if (type == KP_JOB_PURCHASE) {
        err = kp_purchase_req_parse(body, len, true, &w->req->purchase, &job->error);
        if (err) return kp_http_error_answer(out, &job->error, NULL);
        job->purchase = &w->req->purchase; /* a phone is resolved by the writer */
        job->pii = srv->pii;
        n_lines = w->req->purchase.basket.n_lines;
    } else {
        err = kp_return_req_parse(body, len, &w->req->ret, &job->error);
        job->ret = &w->req->ret;
        n_lines = w->req->ret.request.n_lines;
    }
    if (err) return kp_http_error_answer(out, &job->error, NULL);
    /* Sized here so the writer thread never reallocates (and never frees
     * into another thread's arena) while building the answer. */
    kp_buf_reserve(out, 4096 + 512 * n_lines);
    answer->job = job;
    return 0;
}

/* POST /v1/identify {"phone": "..."} (or {"card": "..."}): what GET
 * /v1/cards/{number} answers, for a customer who forgot the card. */
static unsigned route_identify(kp_server *srv, const char *store, const char *body, size_t len,
                               kp_buf *out)
{
    (void)store;
    kp_error e = {0};
    kp_purchase_req *req = &tl_purchase;
    kp_err err = kp_identify_req_parse(body, len, req, &e);
    if (err) return kp_http_error_answer(out, &e, NULL);
    const kp_program *program = kp_programs_hold(srv->programs);
    if (program == NULL) return simple_error(out, 503, "unavailable", "", "no program is loaded");
    kp_reader *r = kp_reader_acquire(srv->readers);
    if ((err = identify(srv, r, program, req, &e)) == KP_OK)
        err = kp_service_identify(r->store, program, req, kp_clock_now(&srv->config.clock),
                                  r->scratch, out, &e);
    kp_programs_drop(srv->programs, program);
    kp_reader_release(srv->readers, r);
    return err ? kp_http_error_answer(out, &e, NULL) : 200;
}

static unsigned route_card(kp_server *srv, const char *number, kp_buf *out)
{
    kp_error e = {0};
    if (number[0] == '\0' || strlen(number) >= KP_STR_MAX || strchr(number, '/'))
        return simple_error(out, 404, "unknown_card", "card", "no such card");
    kp_reader *r = kp_reader_acquire(srv->readers);
    const kp_program *program = kp_programs_hold(srv->programs);
    kp_err err = kp_service_card_program(r->store, program, number,
                                         kp_clock_now(&srv->config.clock), r->scratch, out, &e);
    kp_programs_drop(srv->programs, program);
    kp_reader_release(srv->readers, r);
    return err ? kp_http_error_answer(out, &e, NULL) : 200;
}

typedef unsigned (*post_route)(kp_server *, const char *store, const char *body, size_t len,
                               kp_buf *out);

/* The kind and scope of a staff session sending an event: a partner's
 * staff is a partner system, anyone else but an auditor the back office.
 * Their events are idempotent within "#office" or "#partner:LOGIN". */
static kp_err staff_event_source(kp_server *srv, const char *token, char *store,
                                 kp_event_from *from)
{
    kp_reader *r = kp_reader_acquire(srv->readers);
    kp_staff staff;
    kp_time expires_at;
    kp_err err =
        kp_session_check(r->store, token, kp_clock_now(&srv->config.clock), &staff, &expires_at);
    kp_reader_release(srv->readers, r);
    if (err) return KP_ERR_UNAUTHORIZED;
    if (staff.role == KP_ROLE_AUDITOR) return KP_ERR_FORBIDDEN;
    if (staff.role == KP_ROLE_PARTNER) {
        *from = KP_FROM_PARTNER;
        snprintf(store, KP_STR_MAX, "#partner:%s", staff.login);
    } else {
        *from = KP_FROM_BACK_OFFICE;
        snprintf(store, KP_STR_MAX, "#office");
    }
    return KP_OK;
}

/* A route has either a handler or a write type (route_write); /v1/events
 * has neither: it takes a terminal key or a staff session (see below). */
static const struct {
    const char *path;
    post_route handler;
    kp_job_type write;
} post_routes[] = {
    {"/v1/quote", route_quote, 0},
    {"/v1/purchases", NULL, KP_JOB_PURCHASE},
    {"/v1/returns", NULL, KP_JOB_RETURN},
    {"/v1/identify", route_identify, 0},
    {"/v1/events", NULL, 0},
};

void kp_http_handle(kp_server *srv, const char *method, const char *url, const char *auth,
                    const char *body, size_t body_len, bool body_too_large, kp_http_answer *answer)
{
    kp_buf *out = answer->body;
    bool is_get = strcmp(method, "GET") == 0, is_post = strcmp(method, "POST") == 0;
    if (kp_http_health(srv, url, answer)) return;
    if (kp_http_openapi(method, url, answer)) return;
    /* Once storage failed, the readers' view lacks acknowledged work (it
     * was rolled back, to be recovered from the log at the next start):
     * every route says so rather than answer from it. Purchases and
     * returns are refused by the writer with their own message. */
    char why[256];
    bool write_route = strcmp(url, "/v1/purchases") == 0 || strcmp(url, "/v1/returns") == 0;
    if (!write_route && srv->writer && kp_writer_failed(srv->writer, why, sizeof why)) {
        kp_error e;
        kp_error_set(&e, KP_ERR_IO, "", "the server is degraded: storage failed (%.120s), so "
                     "its data may lack acknowledged operations until a restart recovers them",
                     why);
        answer->status = kp_http_error(out, 503, "unavailable", &e);
        return;
    }
    if (kp_http_people_handle(srv, method, url, auth, body, body_len, body_too_large, answer))
        return;
    post_route post = NULL;
    kp_job_type write = 0;
    bool events = strcmp(url, "/v1/events") == 0;
    for (size_t i = 0; i < sizeof post_routes / sizeof post_routes[0]; i++)
        if (strcmp(url, post_routes[i].path) == 0) {
            post = post_routes[i].handler;
            write = post_routes[i].write;
        }
    bool is_post_route = post != NULL || write != 0 || events;
    bool card_route = strncmp(url, "/v1/cards/", 10) == 0;
    if (!is_post_route && !card_route) {
        answer->status = simple_error(out, 404, "not_found", "", "no such route; see docs/api.md");
        return;
    }
    if ((is_post_route && !is_post) || (card_route && !is_get)) {
        answer->status = simple_error(out, 405, "method_not_allowed", "",
                                      is_post_route ? "use POST for this route"
                                                    : "use GET for this route");
        return;
    }
    char store[KP_STR_MAX];
    kp_event_from from = KP_FROM_TILL;
    if (events && auth && strncmp(auth, "Bearer kps_", 11) == 0) {
        kp_err err = staff_event_source(srv, auth + 7, store, &from);
        if (err) {
            answer->status =
                err == KP_ERR_FORBIDDEN
                    ? simple_error(out, 403, "forbidden", "",
                                   "an auditor's session may not send events")
                    : simple_error(out, 401, "unauthorized", "",
                                   "the staff session is unknown or expired: log in at POST "
                                   "/v1/admin/login");
            return;
        }
    } else if (!authenticate(srv, auth, store)) {
        answer->status = simple_error(out, 401, "unauthorized", "",
                                      "send Authorization: Bearer KEY with a terminal key "
                                      "from `kopilka terminal add`");
        return;
    }
    if (answer->store) memcpy(answer->store, store, KP_STR_MAX);
    if (body_too_large) {
        char msg[96];
        snprintf(msg, sizeof msg, "the body is over the limit of %d bytes", KP_BODY_MAX);
        answer->status = simple_error(out, 413, "too_large", "", msg);
        return;
    }
    if (card_route) answer->status = route_card(srv, url + 10, out);
    else if (write) answer->status = route_write(srv, write, store, body, body_len, answer);
    else if (events) answer->status = kp_http_route_events(srv, from, store, body, body_len, out);
    else answer->status = post(srv, store, body, body_len, out);
}
