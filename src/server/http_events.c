/*
 * http_events.c: POST /v1/events (docs/api.md): an external event for a
 * card (registration, a survey answered, a partner club card shown, a
 * custom event with a value such as annual mileage). The program's grant
 * rules on the event's type decide what it earns, and its event_sources
 * which credential kind (a till's terminal key, a partner's or the back
 * office's staff session) may send the type at all: 403 otherwise.
 * Idempotent by the event id within the terminal's store ("#office" for the
 * back office). Runs on the writer like a purchase.
 */
#include "server.h"

#include <string.h>

#include "service/service_rules.h"

typedef struct event_call {
    kp_event_from from;
    const char *store;
    const kp_event_req *req;
    kp_time now;
} event_call;

static kp_err run_event(void *ctx, kp_store *st, const kp_program *program, kp_scratch *sc,
                        kp_buf *out, bool *replayed, kp_error *e)
{
    const event_call *c = ctx;
    if (program == NULL)
        return kp_error_set(e, KP_ERR_NOT_FOUND, "program", "no program is loaded");
    return kp_service_event(st, program, c->from, c->store, c->req, c->now, sc, out, replayed, e);
}

unsigned kp_http_route_events(kp_server *srv, kp_event_from from, const char *store,
                              const char *body, size_t len, kp_buf *out)
{
    static _Thread_local kp_event_req req;
    kp_job job;
    memset(&job, 0, sizeof job);
    if (kp_event_req_parse(body, len, &req, &job.error))
        return kp_http_error_answer(out, &job.error, NULL);
    event_call call = {
        .from = from, .store = store, .req = &req, .now = kp_clock_now(&srv->config.clock)};
    job.type = KP_JOB_CALL;
    job.call = run_event;
    job.ctx = &call;
    job.store = store;
    job.out = out;
    job.now = call.now;
    /* Sized here so the writer never reallocates another thread's buffer. */
    kp_buf_reserve(out, 128 * 1024);
    kp_writer_submit(srv->writer, &job);
    if (job.err) return kp_http_error_answer(out, &job.error, NULL);
    return job.replayed ? 200 : 201;
}
