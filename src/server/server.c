/*
 * server.c: the HTTP plumbing over libmicrohttpd, as an event loop: a pool
 * of config.http_threads threads (MHD's internal thread pool, epoll), each
 * serving many keep-alive connections (the norm at tills). Each request's
 * body is collected up to its route's limit (kp_http_body_max: KP_BODY_MAX,
 * 32 MiB for a CSV import), then handed to kp_http_handle().
 *
 * Purchases and returns do not block their thread. kp_http_handle() parses
 * the request into a writer's job and leaves it to us: we suspend the
 * connection (MHD then leaves it alone) and queue the job. When its group
 * commit is durable, or it failed, the writer's side calls on_write_done(),
 * which resumes the connection; MHD calls on_request() again, and the answer
 * is sent from the job. A thread thus never sleeps on a commit, and there is
 * no thread per connection to wake.
 *
 * Every other route (quotes, card lookups, events, the back office, imports
 * and exports) runs on the office lane: a few threads of their own, with the
 * connection suspended meanwhile, the same way. Those routes wait for a
 * reader or the writer, and an import or an export can take seconds; run in
 * an event-loop thread they would stall every till that thread serves. The
 * request's query arguments are copied into the connection's context before
 * it is suspended, so kp_http_arg() never touches MHD from another thread.
 * Only /live, /ready, /health, /metrics and the purchase and return routes
 * (whose work goes to the writer) are answered in the event loop itself.
 *
 * Each connection has one conn_ctx, made when MHD accepts it
 * (MHD_OPTION_NOTIFY_CONNECTION) and freed when it closes, reused by its
 * requests one at a time: the body, the answer buffer and the write slot
 * (the parsed request and the job, which must outlive the handler call).
 * While the writer or the office lane holds the request the context is not
 * freed: the later of the close and release_to_loop() frees it.
 *
 * Stopping (MHD requires no connection to be suspended when it stops): no
 * new connections (MHD_quiesce_daemon); new requests on open connections
 * are then answered on their event-loop thread instead of suspended; we
 * wait until every suspended connection has been resumed, which the still
 * running writer and office lane do as they drain their queues, and until
 * those resumed answers have gone out (for at most ANSWER_WAIT_S); then MHD
 * stops (its threads finish their handler calls first), then the office
 * lane, the scheduler, the notifier (notifier.c: its sends in flight finish
 * or time out, and it settles through the writer) and the writer.
 *
 * Slow clients. A client that trickles its request (a header line every
 * few seconds) would hold a connection slot for as long as MHD's idle
 * timeout allows per byte, that is forever; some 2 048 of them lock every
 * till out. So each connection has a deadline for its whole request: set
 * when it opens and when its previous answer has gone out, cleared once
 * the request has fully arrived (config.request_timeout_s). The deadline
 * thread ("kp-deadline") looks at the open connections a few times a
 * second and shuts down the socket of each one past its deadline; MHD then
 * sees the end of the connection and closes it. An address may hold at
 * most config.connections_per_address connections: one more is answered
 * 503 too_many_connections at once and closed, and the access log says so.
 * These are done here rather than with MHD's own per-IP limit, which
 * closes the connection without a word. The list of open connections is
 * touched when a connection opens or closes and by the deadline thread,
 * never per request: a request only stores its deadline (an atomic).
 *
 * Every answer carries X-Request-Id (the client's, when it sent a usable
 * one, else a new one), is written to the access log (access_log.h) and is
 * counted for /metrics (metrics.h: atomic adds, no lock).
 */
#define _GNU_SOURCE /* pthread_setname_np */
#include "server.h"
#include "web_assets.h"
#include "keyring.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "access_log.h"
#include "crypto/pii.h"
#include "login_limit.h"
#include "notify/notify.h"

#ifndef KOPILKA_VERSION
#define KOPILKA_VERSION "unknown"
#endif

enum {
    HTTP_THREADS_DEFAULT = 4,
    CONNECTIONS_MAX = 2048, /* MHD's limit; also bounds the office lane's queue */
    OFFICE_THREADS = 4,     /* threads of the office lane */
    ARGS_MAX = 32,          /* query arguments kept per request */
    ANSWER_WAIT_S = 5,      /* at stop: how long resumed answers may take to go out */
    ANSWER_MAX = 64 * 1024 * 1024, /* bytes of one answer (exports are the largest) */
    /* A connection keeps its buffers between requests up to this size;
     * larger ones (a big export or upload) are freed at the next request. */
    KEEP_BUFFER_MAX = 64 * 1024,
    REQUEST_TIMEOUT_S_DEFAULT = 30,  /* a whole request must arrive within this */
    IDLE_TIMEOUT_S_DEFAULT = 60,     /* MHD closes a connection idle this long */
    PER_ADDRESS_DEFAULT = 256,       /* connections one client address may hold */
    DEADLINE_SCAN_MS = 250,          /* how often the deadline thread looks */
    REFUSED_GRACE_MS = 1000,         /* a refused connection's time to read its 503 */
};

struct conn_ctx;

/* The office lane: a ring of suspended connections whose request waits for
 * an office thread. Each connection has at most one request in flight and
 * MHD accepts at most CONNECTIONS_MAX, so the ring cannot overflow. */
typedef struct office_lane {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct conn_ctx *ring[CONNECTIONS_MAX];
    size_t head, n;
    bool stop;
    pthread_t threads[OFFICE_THREADS];
    size_t n_threads;
} office_lane;

/* The state shared by the event-loop threads, the writer's callbacks and
 * the office lane. */
typedef struct http_daemon {
    kp_server *srv;
    pthread_mutex_t lock;
    pthread_cond_t resumed;  /* n_suspended went down */
    size_t n_suspended;      /* connections suspended on work not yet done */
    /* Resumed with their answer not yet sent: counted without the lock, as
     * every purchase passes here twice; only a stop waits on it (polling). */
    atomic_size_t n_answering;
    bool stopping;           /* no more suspending: work runs on the caller's thread */
    office_lane office;
    int access_log;          /* the access log's descriptor; -1 = off */
    /* The open connections, for the per-address limit and the deadlines. */
    pthread_mutex_t conns_lock;
    pthread_cond_t conns_wake; /* the deadline thread's sleep; signalled to stop */
    struct conn_ctx *conns;  /* a doubly linked list */
    bool conns_stop;
    pthread_t deadline_thread;
    bool deadline_started;
    int64_t request_timeout_ms;
    unsigned per_address;
} http_daemon;

/* A request's query arguments, copied out of MHD (kp_http_arg). */
typedef struct http_args {
    size_t n;
    const char *name[ARGS_MAX];
    const char *value[ARGS_MAX];
} http_args;

/* One connection's state, reused by its requests (one at a time). */
typedef struct conn_ctx {
    http_daemon *hd;
    struct MHD_Connection *conn;
    /* the current request */
    kp_buf body;
    bool too_large;
    bool queued; /* its job went to the writer: answer from it once resumed */
    bool office; /* it went to the office lane: answer `answer` once resumed */
    bool resumed; /* counted in n_answering until the request completes */
    kp_buf out;  /* the answer; handed to MHD when sent */
    kp_http_write write;
    /* For the office lane: the request (MHD keeps these strings while the
     * request lasts) and its answer's status. */
    const char *method, *url, *auth;
    http_args args;
    http_args headers;
    kp_http_answer answer;
    /* Between the event loop and the thread that holds the request. */
    pthread_mutex_t lock;
    /* Another thread holds the request: the writer (write.job) or the
     * office lane; release_to_loop() is to come. */
    bool held;
    bool closed;    /* MHD closed the connection */
    /* For the access log and the X-Request-Id header. */
    struct timespec started; /* the request's headers arrived */
    char request_id[KP_REQUEST_ID_MAX + 1];
    char store[KP_STR_MAX];
    size_t body_max;  /* the route's body limit (kp_http_body_max) */
    char client[INET6_ADDRSTRLEN]; /* kp_http_client_address() of the request */
    /* For the slow-client limits (in hd->conns, under hd->conns_lock). */
    struct conn_ctx *prev, *next;
    int fd;
    uint32_t address;       /* IPv4, network order */
    bool refused;           /* over the per-address limit: answered 503 */
    bool shut;              /* the deadline thread shut its socket down */
    /* Monotonic ms by which the current request must have arrived; 0 while
     * none is expected (it is being answered). */
    _Atomic int64_t deadline_ms;
} conn_ctx;

static int64_t monotonic_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* The query arguments, headers and client of the request this thread is
 * answering. */
static _Thread_local const http_args *tl_args;
static _Thread_local const http_args *tl_headers;
static _Thread_local const char *tl_client;

const char *kp_http_arg(const char *name)
{
    for (size_t i = 0; tl_args && i < tl_args->n; i++)
        if (strcmp(tl_args->name[i], name) == 0) return tl_args->value[i];
    return NULL;
}

const char *kp_http_header(const char *name)
{
    for (size_t i = 0; tl_headers && i < tl_headers->n; i++)
        if (strcasecmp(tl_headers->name[i], name) == 0) return tl_headers->value[i];
    return NULL;
}

const char *kp_http_client_address(void)
{
    return tl_client ? tl_client : "";
}

/* The last address of the request's last X-Forwarded-For header (the one
 * the proxy in front appended; the ones before it are the client's own
 * word), written canonical into out; false when there is none or it is
 * not an IPv4 or IPv6 address. */
static bool forwarded_for(const http_args *headers, char out[INET6_ADDRSTRLEN])
{
    const char *value = NULL;
    for (size_t i = 0; i < headers->n; i++)
        if (headers->value[i] && strcasecmp(headers->name[i], "X-Forwarded-For") == 0)
            value = headers->value[i];
    if (value == NULL) return false;
    const char *start = strrchr(value, ',');
    start = start ? start + 1 : value;
    while (*start == ' ' || *start == '\t') start++;
    size_t n = strlen(start);
    while (n > 0 && (start[n - 1] == ' ' || start[n - 1] == '\t')) n--;
    char text[INET6_ADDRSTRLEN];
    if (n == 0 || n >= sizeof text) return false;
    memcpy(text, start, n);
    text[n] = '\0';
    unsigned char addr[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, text, addr) == 1)
        return inet_ntop(AF_INET, addr, out, INET6_ADDRSTRLEN) != NULL;
    if (inet_pton(AF_INET6, text, addr) == 1)
        return inet_ntop(AF_INET6, addr, out, INET6_ADDRSTRLEN) != NULL;
    return false;
}

/* The request's client address into c->client (kp_http_client_address). */
static void client_address(conn_ctx *c)
{
    c->client[0] = '\0';
    if (c->hd->srv->config.trust_proxy && forwarded_for(&c->headers, c->client)) return;
    if (c->address == 0 || inet_ntop(AF_INET, &c->address, c->client, sizeof c->client) == NULL)
        c->client[0] = '\0';
}

static enum MHD_Result keep_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *value)
{
    (void)kind;
    http_args *a = cls;
    if (a->n == ARGS_MAX) return MHD_NO; /* the rest are ignored */
    a->name[a->n] = key;
    a->value[a->n] = value; /* NULL for "?name" without "=": as MHD answers */
    a->n++;
    return MHD_YES;
}

static void conn_ctx_free(conn_ctx *c)
{
    kp_buf_release(&c->body);
    kp_buf_release(&c->out);
    kp_http_write_release(&c->write);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* Resets the context for a new request; keeps modest buffers allocated. */
static void conn_ctx_start_request(conn_ctx *c)
{
    if (c->body.cap > KEEP_BUFFER_MAX) kp_buf_release(&c->body);
    if (c->out.cap > KEEP_BUFFER_MAX) kp_buf_release(&c->out);
    if (c->body.max == 0) kp_buf_init(&c->body, KP_BODY_MAX + 1);
    if (c->out.max == 0) kp_buf_init(&c->out, ANSWER_MAX);
    kp_buf_reset(&c->body);
    kp_buf_reset(&c->out);
    c->too_large = false;
    c->queued = false;
    c->office = false;
    c->answer.retry_after = 0;
    c->answer.disposition = NULL;
    c->answer.set_cookie[0] = '\0';
    c->answer.etag[0] = '\0';
    c->answer.cache_control = NULL;
}

static bool conn_ctx_held(conn_ctx *c)
{
    pthread_mutex_lock(&c->lock);
    bool busy = c->held;
    pthread_mutex_unlock(&c->lock);
    return busy;
}

/* One suspended connection fewer (it was resumed). */
static void suspended_done(http_daemon *hd)
{
    pthread_mutex_lock(&hd->lock);
    hd->n_suspended--;
    if (hd->n_suspended == 0) pthread_cond_broadcast(&hd->resumed);
    pthread_mutex_unlock(&hd->lock);
}

/* Hands a suspended request back to its connection, from the thread that
 * held it (the writer's side, the office lane): resumes the connection, or
 * frees the context when the connection closed meanwhile. The test and the
 * resume are under c->lock, so the connection cannot close (and free the
 * context) between them; after the unlock c is not touched, since a resumed
 * connection may answer, close and free it at once. */
static void release_to_loop(conn_ctx *c)
{
    http_daemon *hd = c->hd;
    pthread_mutex_lock(&c->lock);
    c->held = false;
    bool closed = c->closed;
    if (!closed) {
        atomic_fetch_add(&hd->n_answering, 1);
        c->resumed = true;
        MHD_resume_connection(c->conn);
    }
    pthread_mutex_unlock(&c->lock);
    if (closed) conn_ctx_free(c);
    suspended_done(hd);
}

/* The job's on_done: from the writer or the syncer thread, once the job is
 * durable or failed. */
/* A purchase or return is durable: its answer can go, and the notifier may
 * have an event to dispatch. */
static void on_write_done(kp_job *job)
{
    conn_ctx *c = job->owner;
    kp_notifier *notifier = c->hd->srv->notifier;
    bool ok = job->err == KP_OK;
    release_to_loop(c);
    if (ok) kp_notifier_poke(notifier);
}

static enum MHD_Result queue_answer(conn_ctx *c, struct MHD_Connection *conn, unsigned status,
                                    struct MHD_Response *resp);

/* Queues the answer of c's request, with its X-Request-Id, and logs it. */
static enum MHD_Result send_answer(conn_ctx *c, struct MHD_Connection *conn, unsigned status,
                                   kp_buf *body, const char *content_type)
{
    size_t len = body->len;
    char *data = kp_buf_steal(body);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(data);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type",
                            content_type ? content_type : "application/json");
    if (c->answer.set_cookie[0]) {
        MHD_add_response_header(resp, "Set-Cookie", c->answer.set_cookie);
        MHD_add_response_header(resp, "Cache-Control", "no-store");
    } else if (c->answer.cache_control) {
        MHD_add_response_header(resp, "Cache-Control", c->answer.cache_control);
    }
    if (c->answer.etag[0]) MHD_add_response_header(resp, "ETag", c->answer.etag);
    return queue_answer(c, conn, status, resp);
}

/* Queues resp with the request's X-Request-Id and Retry-After, logs the
 * request and counts it. */
static enum MHD_Result queue_answer(conn_ctx *c, struct MHD_Connection *conn, unsigned status,
                                    struct MHD_Response *resp)
{
    MHD_add_response_header(resp, "X-Request-Id", c->request_id);
    if (c->answer.disposition)
        MHD_add_response_header(resp, "Content-Disposition", c->answer.disposition);
    if (c->answer.retry_after > 0) {
        char seconds[24];
        snprintf(seconds, sizeof seconds, "%lld", (long long)c->answer.retry_after);
        MHD_add_response_header(resp, "Retry-After", seconds);
    }
    enum MHD_Result r = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    int64_t latency_us = (int64_t)(now.tv_sec - c->started.tv_sec) * 1000000 +
                         (now.tv_nsec - c->started.tv_nsec) / 1000;
    kp_metrics_request(c->hd->srv->metrics, c->method ? c->method : "", c->url ? c->url : "",
                       status, latency_us);
    if (c->hd->access_log >= 0) {
        kp_access_entry entry = {
            .method = c->method ? c->method : "",
            .url = c->url ? c->url : "",
            .status = status,
            .latency_us = latency_us,
            .store = c->store,
            .request_id = c->request_id,
        };
        kp_access_log_write(c->hd->access_log, &entry);
    }
    return r;
}

/* Queues the write kp_http_handle() left in c->write.job without blocking
 * this thread: suspends the connection first, since on_write_done() may run
 * on another thread before this returns. While stopping, submits it and
 * answers at once instead. */
static enum MHD_Result start_write(conn_ctx *c, struct MHD_Connection *conn)
{
    http_daemon *hd = c->hd;
    kp_job *job = &c->write.job;
    pthread_mutex_lock(&hd->lock);
    bool suspend = !hd->stopping;
    if (suspend) hd->n_suspended++;
    pthread_mutex_unlock(&hd->lock);
    if (!suspend) {
        kp_writer_submit(hd->srv->writer, job);
        return send_answer(c, conn, kp_http_write_status(&c->write), &c->out, NULL);
    }
    job->on_done = on_write_done;
    job->owner = c;
    pthread_mutex_lock(&c->lock);
    c->held = true;
    pthread_mutex_unlock(&c->lock);
    c->queued = true;
    MHD_suspend_connection(conn);
    if (!kp_writer_enqueue(hd->srv->writer, job)) {
        /* Refused (queue full): on_write_done() will not run. Resume at
         * once; the next call answers the job's error (503). */
        pthread_mutex_lock(&c->lock);
        c->held = false;
        pthread_mutex_unlock(&c->lock);
        MHD_resume_connection(conn);
        suspended_done(hd);
    }
    return MHD_YES;
}

/* Answers the request in c on the calling thread into c->answer. A write
 * that kp_http_handle() leaves as a job (only purchases and returns do) is
 * submitted and waited for here. */
static void handle_here(conn_ctx *c)
{
    http_daemon *hd = c->hd;
    c->answer = (kp_http_answer){
        .status = 500, .body = &c->out, .write = &c->write, .store = c->store};
    client_address(c);
    tl_args = &c->args;
    tl_headers = &c->headers;
    tl_client = c->client;
    kp_http_handle(hd->srv, c->method, c->url, c->auth, c->body.data ? c->body.data : "",
                   c->body.len, c->too_large, &c->answer);
    tl_args = NULL;
    tl_headers = NULL;
    tl_client = NULL;
    if (c->answer.job) {
        kp_writer_submit(hd->srv->writer, c->answer.job);
        c->answer.status = kp_http_write_status(&c->write);
        c->answer.job = NULL;
    }
}

static void *office_main(void *arg)
{
    office_lane *lane = arg;
    pthread_setname_np(pthread_self(), "kp-office");
    for (;;) {
        pthread_mutex_lock(&lane->lock);
        while (lane->n == 0 && !lane->stop) pthread_cond_wait(&lane->wake, &lane->lock);
        if (lane->n == 0) {
            pthread_mutex_unlock(&lane->lock);
            return NULL;
        }
        conn_ctx *c = lane->ring[lane->head];
        lane->head = (lane->head + 1) % CONNECTIONS_MAX;
        lane->n--;
        pthread_mutex_unlock(&lane->lock);
        handle_here(c);
        release_to_loop(c);
    }
}

static bool office_start(office_lane *lane)
{
    pthread_mutex_init(&lane->lock, NULL);
    pthread_cond_init(&lane->wake, NULL);
    for (; lane->n_threads < OFFICE_THREADS; lane->n_threads++)
        if (pthread_create(&lane->threads[lane->n_threads], NULL, office_main, lane) != 0)
            return false;
    return true;
}

/* Stops the lane once its queue is empty (after MHD stopped: nothing new). */
static void office_stop(office_lane *lane)
{
    pthread_mutex_lock(&lane->lock);
    lane->stop = true;
    pthread_cond_broadcast(&lane->wake);
    pthread_mutex_unlock(&lane->lock);
    for (size_t i = 0; i < lane->n_threads; i++) pthread_join(lane->threads[i], NULL);
    pthread_cond_destroy(&lane->wake);
    pthread_mutex_destroy(&lane->lock);
}

/* Sends the request in c to the office lane, suspending the connection.
 * While stopping, or if the lane were full (it cannot be: see office_lane),
 * answers it on this thread instead. */
static enum MHD_Result start_office(conn_ctx *c, struct MHD_Connection *conn)
{
    http_daemon *hd = c->hd;
    c->args.n = 0;
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, keep_arg, &c->args);
    c->headers.n = 0;
    MHD_get_connection_values(conn, MHD_HEADER_KIND, keep_arg, &c->headers);
    pthread_mutex_lock(&hd->lock);
    bool suspend = !hd->stopping;
    if (suspend) hd->n_suspended++;
    pthread_mutex_unlock(&hd->lock);
    office_lane *lane = &hd->office;
    bool queued = false;
    if (suspend) {
        /* Suspended before an office thread can see it: it may resume the
         * connection as soon as the lock is released. */
        pthread_mutex_lock(&lane->lock);
        if (lane->n < CONNECTIONS_MAX) {
            pthread_mutex_lock(&c->lock);
            c->held = true;
            pthread_mutex_unlock(&c->lock);
            c->office = true;
            MHD_suspend_connection(conn);
            lane->ring[(lane->head + lane->n) % CONNECTIONS_MAX] = c;
            lane->n++;
            pthread_cond_signal(&lane->wake);
            queued = true;
        }
        pthread_mutex_unlock(&lane->lock);
        if (!queued) suspended_done(hd);
    }
    if (queued) return MHD_YES;
    handle_here(c);
    return send_answer(c, conn, c->answer.status, &c->out, c->answer.content_type);
}

/* GET /metrics (metrics.h), answered in the event loop so a scrape works
 * while the office lane is busy with an export: it reads counters, takes
 * the writer's, the office lane's and the program cache's locks for a
 * moment each and stats four files. */
static enum MHD_Result answer_metrics(conn_ctx *c, struct MHD_Connection *conn)
{
    http_daemon *hd = c->hd;
    kp_server *srv = hd->srv;
    kp_metrics_access access = kp_metrics_access_of(srv->metrics);
    kp_error e;
    unsigned status = 0;
    if (access == KP_METRICS_OFF) {
        kp_error_set(&e, KP_ERR_NOT_FOUND, "", "metrics are off on this server (kopilka serve "
                     "--metrics off); start it with --metrics local or on to serve them");
        status = kp_http_error(&c->out, 404, "not_found", &e);
    } else if (access == KP_METRICS_LOCAL && (ntohl(c->address) >> 24) != 127) {
        kp_error_set(&e, KP_ERR_FORBIDDEN, "", "GET /metrics is served to loopback clients only "
                     "(kopilka serve --metrics local); start the server with --metrics on to "
                     "let another host scrape it");
        status = kp_http_error(&c->out, 403, "forbidden", &e);
    } else if (strcmp(c->method, "GET") != 0) {
        kp_error_set(&e, KP_ERR_INVALID, "", "use GET for this route");
        status = kp_http_error(&c->out, 405, "method_not_allowed", &e);
    }
    if (status) return send_answer(c, conn, status, &c->out, NULL);
    kp_metrics_sample sample = {.db_path = srv->config.db_path, .version = KOPILKA_VERSION};
    kp_writer_stats_get(srv->writer, &sample.writer);
    pthread_mutex_lock(&hd->office.lock);
    sample.office_queued = hd->office.n;
    pthread_mutex_unlock(&hd->office.lock);
    const kp_program *program = kp_programs_hold(srv->programs);
    sample.program_version = program ? program->version : 0;
    kp_programs_drop(srv->programs, program);
    kp_outbox_stats outbox;
    if (kp_notifier_outbox(srv->notifier, &outbox)) sample.outbox = &outbox;
    sample.now = kp_clock_now(&srv->config.clock);
    kp_metrics_write(srv->metrics, &sample, &c->out);
    if (c->out.failed) {
        kp_buf_reset(&c->out);
        kp_error_set(&e, KP_ERR_NOMEM, "", "out of memory while writing the metrics");
        return send_answer(c, conn, kp_http_error(&c->out, 503, "unavailable", &e), &c->out,
                           NULL);
    }
    return send_answer(c, conn, 200, &c->out, "text/plain; version=0.0.4; charset=utf-8");
}

/* A page or one of its files (http_pages.c), from memory: GET and HEAD,
 * gzip when the browser takes it, 304 when its ETag matches. */
static enum MHD_Result answer_page(conn_ctx *c, struct MHD_Connection *conn, const char *method)
{
    kp_error e;
    unsigned status = 0;
    const kp_web_asset *f = kp_http_page_find(c->url);
    if (f == NULL) {
        if (kp_http_pages_count() == 0)
            kp_error_set(&e, KP_ERR_NOT_FOUND, "", "this kopilka was built without its pages "
                         "(cmake -DKOPILKA_WEB=OFF); build it with Node.js to serve them");
        else
            kp_error_set(&e, KP_ERR_NOT_FOUND, "", "no such page or file: the pages are /, "
                         "/till and /office");
        status = kp_http_error(&c->out, 404, "not_found", &e);
    } else if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        kp_error_set(&e, KP_ERR_INVALID, "", "pages take GET (and HEAD) only");
        status = kp_http_error(&c->out, 405, "method_not_allowed", &e);
    }
    if (status) return send_answer(c, conn, status, &c->out, NULL);
    const char *inm = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "If-None-Match");
    bool fresh = inm && strstr(inm, f->etag) != NULL;
    bool gz = !fresh && f->gz &&
              kp_http_accepts_gzip(
                  MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept-Encoding"));
    struct MHD_Response *resp =
        fresh ? MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT)
        : gz  ? MHD_create_response_from_buffer(f->gz_len, (void *)f->gz, MHD_RESPMEM_PERSISTENT)
              : MHD_create_response_from_buffer(f->len, (void *)f->data, MHD_RESPMEM_PERSISTENT);
    if (resp == NULL) return MHD_NO;
    if (!fresh) MHD_add_response_header(resp, "Content-Type", f->type);
    if (gz) MHD_add_response_header(resp, "Content-Encoding", "gzip");
    if (f->gz) MHD_add_response_header(resp, "Vary", "Accept-Encoding");
    MHD_add_response_header(resp, "ETag", f->etag);
    MHD_add_response_header(resp, "Cache-Control",
                            f->immutable ? "public, max-age=31536000, immutable" : "no-cache");
    MHD_add_response_header(resp, "Content-Security-Policy", kp_page_csp);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "same-origin");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Cross-Origin-Opener-Policy", "same-origin");
    MHD_add_response_header(resp, "Permissions-Policy", "camera=(), microphone=(), geolocation=()");
    return queue_answer(c, conn, fresh ? 304 : 200, resp);
}

static bool answered_in_loop(const char *url)
{
    return strcmp(url, "/v1/purchases") == 0 || strcmp(url, "/v1/returns") == 0 ||
           strcmp(url, "/health") == 0 || strcmp(url, "/live") == 0 ||
           strcmp(url, "/ready") == 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    (void)version;
    http_daemon *hd = cls;
    conn_ctx *c = *con_cls;
    if (c == NULL) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        c = info ? info->socket_context : NULL;
        /* No context (out of memory at accept), or, which MHD does not do,
         * a new request while the writer still holds the last one's job. */
        if (c == NULL || c->refused || conn_ctx_held(c)) return MHD_NO;
        conn_ctx_start_request(c);
        *con_cls = c;
        clock_gettime(CLOCK_MONOTONIC, &c->started);
        c->method = method;
        c->url = url;
        c->store[0] = '\0';
        const char *rid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
        if (rid && kp_request_id_valid(rid))
            memcpy(c->request_id, rid, strlen(rid) + 1);
        else
            kp_request_id_new(c->request_id);
        /* The route's limit: a CSV import may bring 32 MiB, the rest 1 MiB. */
        c->body_max = kp_http_body_max(method, url);
        c->body.max = c->body_max + 1;
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > c->body_max) c->too_large = true;
        if (!c->too_large) return MHD_YES;
    }
    if (c->queued || c->office) {
        /* Called again after the resume: the work is done (or was refused). */
        if (conn_ctx_held(c)) return MHD_YES;
        if (c->office) {
            c->office = false;
            return send_answer(c, conn, c->answer.status, &c->out, c->answer.content_type);
        }
        c->queued = false;
        return send_answer(c, conn, kp_http_write_status(&c->write), &c->out, NULL);
    }
    if (*upload_data_size > 0) {
        if (!c->too_large && !kp_buf_append(&c->body, upload_data, *upload_data_size))
            c->too_large = true;
        *upload_data_size = 0;
        return MHD_YES;
    }
    /* The whole request has arrived: no deadline until its answer is out. */
    atomic_store_explicit(&c->deadline_ms, 0, memory_order_relaxed);
    c->auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (strcmp(url, "/metrics") == 0) return answer_metrics(c, conn);
    if (kp_http_is_page(url)) return answer_page(c, conn, method);
    if (!answered_in_loop(url)) return start_office(c, conn);
    kp_http_answer answer = {
        .status = 500, .body = &c->out, .write = &c->write, .store = c->store};
    kp_http_handle(hd->srv, method, url, c->auth, c->body.data ? c->body.data : "", c->body.len,
                   c->too_large, &answer);
    if (answer.job) return start_write(c, conn);
    return send_answer(c, conn, answer.status, &c->out, answer.content_type);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)conn, (void)toe;
    /* The context belongs to the connection (on_connection frees it); the
     * next request resets it. A resumed request's answer is now sent, or
     * the connection is gone. */
    conn_ctx *c = *con_cls;
    *con_cls = NULL;
    if (c == NULL) return;
    http_daemon *hd = cls;
    /* The next request must arrive in time too. */
    atomic_store_explicit(&c->deadline_ms, monotonic_ms() + hd->request_timeout_ms,
                          memory_order_relaxed);
    if (!c->resumed) return;
    c->resumed = false;
    atomic_fetch_sub(&hd->n_answering, 1);
}

/* Answers a connection over the per-address limit with a 503 of its own
 * (MHD has read nothing yet, so the socket is ours to write) and ends the
 * sending side; the deadline thread closes it if the client does not. */
static void refuse_connection(http_daemon *hd, conn_ctx *c)
{
    char body[320], answer[640];
    int body_len = snprintf(body, sizeof body,
                            "{\"error\":{\"code\":\"too_many_connections\",\"message\":\"this "
                            "address already has %u connections open, the limit of `kopilka "
                            "serve --connections-per-address`; reuse or close one\"}}",
                            hd->per_address);
    int len = snprintf(answer, sizeof answer,
                       "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                       "Connection: close\r\nRetry-After: 1\r\nContent-Length: %d\r\n\r\n%s",
                       body_len, body);
    if (c->fd >= 0) {
        ssize_t w;
        do w = send(c->fd, answer, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT);
        while (w < 0 && errno == EINTR);
        shutdown(c->fd, SHUT_WR);
    }
    char detail[160];
    snprintf(detail, sizeof detail,
             "refused a connection: its address already has %u open (--connections-per-address)",
             hd->per_address);
    kp_access_log_event(hd->access_log, "connection_refused", detail);
}

/* Adds c to the open connections, or marks it refused when its address is
 * at the limit. */
static void conns_add(http_daemon *hd, conn_ctx *c)
{
    int64_t now = monotonic_ms();
    pthread_mutex_lock(&hd->conns_lock);
    unsigned same = 0;
    for (conn_ctx *o = hd->conns; o && c->address != 0; o = o->next)
        if (o->address == c->address && !o->refused) same++;
    c->refused = same >= hd->per_address;
    atomic_store(&c->deadline_ms, now + (c->refused ? REFUSED_GRACE_MS : hd->request_timeout_ms));
    c->next = hd->conns;
    if (hd->conns) hd->conns->prev = c;
    hd->conns = c;
    pthread_mutex_unlock(&hd->conns_lock);
    kp_metrics_connection_opened(hd->srv->metrics);
    if (c->refused) {
        kp_metrics_connection_refused(hd->srv->metrics);
        refuse_connection(hd, c);
    }
}

static void conns_remove(http_daemon *hd, conn_ctx *c)
{
    pthread_mutex_lock(&hd->conns_lock);
    if (c->prev) c->prev->next = c->next;
    else hd->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
    pthread_mutex_unlock(&hd->conns_lock);
    kp_metrics_connection_closed(hd->srv->metrics);
}

/* The deadline thread: shuts down the sockets of connections whose request
 * has not arrived by its deadline. MHD closes a connection (and tells
 * on_connection, which takes conns_lock) before it closes its socket, so a
 * descriptor seen here under the lock is still that connection's. */
static void *deadline_main(void *arg)
{
    http_daemon *hd = arg;
    pthread_setname_np(pthread_self(), "kp-deadline");
    pthread_mutex_lock(&hd->conns_lock);
    while (!hd->conns_stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += DEADLINE_SCAN_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&hd->conns_wake, &hd->conns_lock, &until);
        int64_t now = monotonic_ms();
        unsigned closed = 0;
        for (conn_ctx *c = hd->conns; c; c = c->next) {
            int64_t deadline = atomic_load_explicit(&c->deadline_ms, memory_order_relaxed);
            if (c->shut || deadline == 0 || now < deadline || c->fd < 0) continue;
            shutdown(c->fd, SHUT_RDWR);
            c->shut = true;
            if (!c->refused) closed++;
        }
        if (closed) {
            kp_metrics_connections_timed_out(hd->srv->metrics, closed);
            char detail[160];
            snprintf(detail, sizeof detail,
                     "closed %u connection(s) that sent no whole request within %lld s "
                     "(--request-timeout)", closed, (long long)(hd->request_timeout_ms / 1000));
            pthread_mutex_unlock(&hd->conns_lock);
            kp_access_log_event(hd->access_log, "request_timeout", detail);
            pthread_mutex_lock(&hd->conns_lock);
        }
    }
    pthread_mutex_unlock(&hd->conns_lock);
    return NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        conn_ctx *c = calloc(1, sizeof *c);
        if (c == NULL) return; /* on_request refuses the connection's requests */
        c->hd = cls;
        c->conn = conn;
        pthread_mutex_init(&c->lock, NULL);
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        c->fd = info ? info->connect_fd : -1;
        info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (info && info->client_addr && info->client_addr->sa_family == AF_INET)
            c->address = ((const struct sockaddr_in *)info->client_addr)->sin_addr.s_addr;
        conns_add(c->hd, c);
        *socket_context = c;
        return;
    }
    conn_ctx *c = *socket_context;
    if (c == NULL) return;
    *socket_context = NULL;
    conns_remove(c->hd, c);
    pthread_mutex_lock(&c->lock);
    c->closed = true;
    bool busy = c->held;
    pthread_mutex_unlock(&c->lock);
    if (!busy) conn_ctx_free(c); /* else release_to_loop() frees it */
}

/* Makes sure no connection stays suspended: from now on work runs on the
 * event-loop thread that received it, and this waits until the writer and
 * the office lane have resumed every connection suspended before; then, for
 * at most ANSWER_WAIT_S, until those resumed connections have sent their
 * answers (MHD_stop_daemon would close them unsent). */
static void drain_suspended(http_daemon *hd)
{
    pthread_mutex_lock(&hd->lock);
    hd->stopping = true;
    while (hd->n_suspended > 0) pthread_cond_wait(&hd->resumed, &hd->lock);
    pthread_mutex_unlock(&hd->lock);
    struct timespec tick = {0, 1000 * 1000};
    for (int ms = 0; ms < ANSWER_WAIT_S * 1000 && atomic_load(&hd->n_answering) > 0; ms++)
        nanosleep(&tick, NULL);
}

int kp_server_run(const kp_server_config *config)
{
    int rc = 1;
    kp_error e = {0};
    kp_server *srv = calloc(1, sizeof *srv);
    if (srv == NULL) return 1;
    srv->config = *config;
    http_daemon hd = {.srv = srv, .access_log = -1};
    pthread_mutex_init(&hd.lock, NULL);
    pthread_cond_init(&hd.resumed, NULL);
    pthread_mutex_init(&hd.conns_lock, NULL);
    pthread_cond_init(&hd.conns_wake, NULL);
    hd.request_timeout_ms = 1000LL * (config->request_timeout_s > 0 ? config->request_timeout_s
                                                                    : REQUEST_TIMEOUT_S_DEFAULT);
    hd.per_address = config->connections_per_address > 0
                         ? (unsigned)config->connections_per_address
                         : PER_ADDRESS_DEFAULT;
    unsigned idle_timeout_s = config->idle_timeout_s > 0 ? (unsigned)config->idle_timeout_s
                                                         : IDLE_TIMEOUT_S_DEFAULT;
    struct MHD_Daemon *d = NULL;
    kp_scheduler *scheduler = NULL;

    /* Block the stop signals in every thread; the main thread waits for them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* Over a file-size limit (ulimit -f) a write then fails with EFBIG, as
     * on a full disk, and is handled as such, instead of killing us. */
    signal(SIGXFSZ, SIG_IGN);

    kp_metrics_access metrics_access;
    if (!kp_metrics_access_parse(config->metrics, &metrics_access)) {
        kp_error_set(&e, KP_ERR_INVALID, "metrics", "must be local, on or off, got %s",
                     config->metrics);
        goto fail;
    }
    if ((srv->metrics = kp_metrics_new(metrics_access)) == NULL) goto out;
    srv->programs = kp_programs_new(&srv->config.clock);
    if (srv->programs == NULL) goto out;
    if (kp_writer_start(config->db_path, srv->programs, &srv->writer, &e)) goto fail;
    if (kp_reader_pool_new(config->db_path, config->readers, &srv->readers, &e)) goto fail;
    kp_reader_pool_follow(srv->readers, srv->writer); /* lookups see every answered write */
    char key_path[4096];
    kp_error key_error = {0};
    if (kp_pii_key_locate(config->db_path, key_path, sizeof key_path, &key_error) == KP_OK)
        kp_pii_load(key_path, &srv->pii, &key_error);
    if (srv->pii == NULL) {
        snprintf(srv->pii_problem, sizeof srv->pii_problem, "%s", key_error.message);
        fprintf(stderr, "kopilka: warning: %s; customers' personal data cannot be stored or "
                        "read until it is there\n", key_error.message);
    }
    if (kp_keyring_start(srv, &srv->keys, &e)) goto fail;
    if ((srv->login_limits = kp_login_limits_new()) == NULL) {
        kp_error_set(&e, KP_ERR_NOMEM, "", "out of memory for the login limits");
        goto fail;
    }
    if (config->tick_seconds > 0 &&
        kp_scheduler_start(srv, config->tick_seconds, NULL, &scheduler, &e))
        goto fail;
    srv->scheduler = scheduler;
    if (kp_notifier_start(srv, config->notify, &srv->notifier, &e)) goto fail;
    if (kp_programs_current(srv->programs) == NULL)
        fprintf(stderr, "kopilka: warning: no program loaded; purchases will fail until "
                        "`kopilka program load`\n");

    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)config->port);
    if (inet_pton(AF_INET, config->host, &addr.sin_addr) != 1) {
        kp_error_set(&e, KP_ERR_INVALID, "listen", "%s is not an IPv4 address", config->host);
        goto fail;
    }
    char problem[300];
    if (!kp_access_log_open(config->access_log ? config->access_log : "stderr", &hd.access_log,
                            problem, sizeof problem)) {
        kp_error_set(&e, KP_ERR_IO, "", "%s", problem);
        goto fail;
    }
    if (pthread_create(&hd.deadline_thread, NULL, deadline_main, &hd) != 0) {
        kp_error_set(&e, KP_ERR_NOMEM, "", "cannot start the deadline thread");
        goto fail;
    }
    hd.deadline_started = true;
    if (!office_start(&hd.office)) {
        kp_error_set(&e, KP_ERR_NOMEM, "", "cannot start the office lane's threads");
        goto fail;
    }
    unsigned threads = config->http_threads > 0 ? (unsigned)config->http_threads
                                                : HTTP_THREADS_DEFAULT;
    d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                             MHD_ALLOW_SUSPEND_RESUME,
                         (uint16_t)config->port, NULL, NULL, on_request, &hd,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                         MHD_OPTION_THREAD_POOL_SIZE, threads,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, &hd,
                         MHD_OPTION_NOTIFY_CONNECTION, on_connection, &hd,
                         MHD_OPTION_CONNECTION_TIMEOUT, idle_timeout_s,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTIONS_MAX,
                         MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
                         MHD_OPTION_END);
    if (d == NULL) {
        kp_error_set(&e, KP_ERR_IO, "listen", "cannot listen on %s:%u (in use?)", config->host,
                     config->port);
        goto fail;
    }
    fprintf(stderr, "kopilka: serving %s on http://%s:%u (%u HTTP threads; a request must "
                    "arrive within %lld s, idle connections close after %u s, at most %u "
                    "connections an address; access log: %s)\n",
            config->db_path, config->host, config->port, threads,
            (long long)(hd.request_timeout_ms / 1000), idle_timeout_s, hd.per_address,
            config->access_log ? config->access_log : "stderr");
    int sig = 0;
    sigwait(&stop, &sig);
    fprintf(stderr, "kopilka: stopping (signal %d)\n", sig);
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "kopilka: %s%s%s\n", e.field, e.field[0] ? ": " : "", e.message);
out:
    if (d) {
        /* The order matters: see the top of this file. */
        MHD_socket listen_fd = MHD_quiesce_daemon(d);
        drain_suspended(&hd);
        MHD_stop_daemon(d);
        if (listen_fd != MHD_INVALID_SOCKET) close(listen_fd);
    }
    if (hd.office.n_threads) office_stop(&hd.office);
    if (hd.deadline_started) {
        pthread_mutex_lock(&hd.conns_lock);
        hd.conns_stop = true;
        pthread_cond_signal(&hd.conns_wake);
        pthread_mutex_unlock(&hd.conns_lock);
        pthread_join(hd.deadline_thread, NULL);
    }
    kp_access_log_close(hd.access_log);
    srv->scheduler = NULL;
    kp_scheduler_stop(scheduler);
    kp_notifier_stop(srv->notifier); /* settles through the writer */
    srv->notifier = NULL;
    kp_keyring_stop(srv->keys); /* writes "last used" through the writer */
    kp_writer_stop(srv->writer);
    kp_reader_pool_free(srv->readers);
    kp_programs_free(srv->programs);
    kp_pii_free(srv->pii);
    kp_metrics_free(srv->metrics);
    kp_login_limits_free(srv->login_limits);
    pthread_cond_destroy(&hd.resumed);
    pthread_mutex_destroy(&hd.lock);
    pthread_cond_destroy(&hd.conns_wake);
    pthread_mutex_destroy(&hd.conns_lock);
    free(srv);
    return rc;
}
