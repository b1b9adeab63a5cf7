/*
 * server.c: the HTTP plumbing over libmicrohttpd, as an event loop: a pool
 * of config.http_threads threads (MHD's internal thread pool, epoll), each
 * serving many keep-alive connections (the norm at tills). Each request's
 * body is collected up to KP_BODY_MAX, then handed to kp_http_handle().
 *
 * Purchases and returns do not block their thread. kp_http_handle() parses
 * the request into a writer's job and leaves it to us: we suspend the
 * connection (MHD then leaves it alone) and queue the job. When its group
 * commit is durable, or it failed, the writer's side calls on_write_done(),
 * which resumes the connection; MHD calls on_request() again, and the answer
 * is sent from the job. A thread thus never sleeps on a commit, and there is
 * no thread per connection to wake.
 *
 * Every other route (quotes, card lookups, events, the back office) runs
 * synchronously in the event-loop thread and blocks it, with the other
 * connections it serves, while it waits for a reader or for the writer.
 * They are few next to purchases and the pool has several threads, so that
 * is acceptable; kp_http_arg() works because they run on the calling thread.
 *
 * Each connection has one conn_ctx, made when MHD accepts it
 * (MHD_OPTION_NOTIFY_CONNECTION) and freed when it closes, reused by its
 * requests one at a time: the body, the answer buffer and the write slot
 * (the parsed request and the job, which must outlive the handler call).
 * While the writer holds the job the context is not freed: the later of
 * the close and on_write_done() frees it.
 *
 * Stopping (MHD requires no connection to be suspended when it stops): no
 * new connections (MHD_quiesce_daemon); new purchases on open connections
 * are then submitted synchronously instead of suspended; we wait until
 * every suspended connection has been resumed, which the still running
 * writer does as it drains its queue; then MHD stops (its threads finish
 * their handler calls first), then the scheduler and the writer.
 */
#include "server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/pii.h"

enum {
    HTTP_THREADS_DEFAULT = 4,
    ANSWER_MAX = 64 * 1024 * 1024, /* bytes of one answer (exports are the largest) */
    /* A connection keeps its buffers between requests up to this size;
     * larger ones (a big export or upload) are freed at the next request. */
    KEEP_BUFFER_MAX = 64 * 1024,
};

/* The state shared by the event-loop threads and the writer's callbacks. */
typedef struct http_daemon {
    kp_server *srv;
    pthread_mutex_t lock;
    pthread_cond_t resumed;  /* n_suspended went down */
    size_t n_suspended;      /* connections suspended on a job not yet done */
    bool stopping;           /* no more suspending: writes are submitted */
} http_daemon;

/* One connection's state, reused by its requests (one at a time). */
typedef struct conn_ctx {
    http_daemon *hd;
    struct MHD_Connection *conn;
    /* the current request */
    kp_buf body;
    bool too_large;
    bool queued; /* its job went to the writer: answer from it once resumed */
    kp_buf out;  /* the answer; handed to MHD when sent */
    kp_http_write write;
    /* Between the event loop and the writer's callback. */
    pthread_mutex_t lock;
    bool in_writer; /* the writer holds write.job; on_write_done() is to come */
    bool closed;    /* MHD closed the connection */
} conn_ctx;

/* The connection this thread is answering, for kp_http_arg(). */
static _Thread_local struct MHD_Connection *tl_connection;

const char *kp_http_arg(const char *name)
{
    return tl_connection ? MHD_lookup_connection_value(tl_connection, MHD_GET_ARGUMENT_KIND, name)
                         : NULL;
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
}

static bool conn_ctx_in_writer(conn_ctx *c)
{
    pthread_mutex_lock(&c->lock);
    bool busy = c->in_writer;
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

/* The job's on_done: from the writer or the syncer thread, once the job is
 * durable or failed. Resumes the connection, or frees the context when the
 * connection closed meanwhile. */
static void on_write_done(kp_job *job)
{
    conn_ctx *c = job->owner;
    http_daemon *hd = c->hd;
    pthread_mutex_lock(&c->lock);
    c->in_writer = false;
    bool closed = c->closed;
    /* Under c->lock, so the connection cannot close (and the context be
     * freed) between the test and the call. */
    if (!closed) MHD_resume_connection(c->conn);
    pthread_mutex_unlock(&c->lock);
    if (closed) conn_ctx_free(c);
    suspended_done(hd);
}

static enum MHD_Result send_answer(struct MHD_Connection *conn, unsigned status, kp_buf *body,
                                   const char *content_type)
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
    enum MHD_Result r = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
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
        return send_answer(conn, kp_http_write_status(&c->write), &c->out, NULL);
    }
    job->on_done = on_write_done;
    job->owner = c;
    pthread_mutex_lock(&c->lock);
    c->in_writer = true;
    pthread_mutex_unlock(&c->lock);
    c->queued = true;
    MHD_suspend_connection(conn);
    if (!kp_writer_enqueue(hd->srv->writer, job)) {
        /* Refused (queue full): on_write_done() will not run. Resume at
         * once; the next call answers the job's error (503). */
        pthread_mutex_lock(&c->lock);
        c->in_writer = false;
        pthread_mutex_unlock(&c->lock);
        MHD_resume_connection(conn);
        suspended_done(hd);
    }
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    http_daemon *hd = cls;
    conn_ctx *c = *con_cls;
    if (c == NULL) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        c = info ? info->socket_context : NULL;
        /* No context (out of memory at accept), or, which MHD does not do,
         * a new request while the writer still holds the last one's job. */
        if (c == NULL || conn_ctx_in_writer(c)) return MHD_NO;
        conn_ctx_start_request(c);
        *con_cls = c;
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > KP_BODY_MAX) c->too_large = true;
        if (!c->too_large) return MHD_YES;
    }
    if (c->queued) {
        /* Called again after the resume: the job is done (or was refused). */
        if (conn_ctx_in_writer(c)) return MHD_YES;
        c->queued = false;
        return send_answer(conn, kp_http_write_status(&c->write), &c->out, NULL);
    }
    if (*upload_data_size > 0) {
        if (!c->too_large && !kp_buf_append(&c->body, upload_data, *upload_data_size))
            c->too_large = true;
        *upload_data_size = 0;
        return MHD_YES;
    }
    kp_http_answer answer = {.status = 500, .body = &c->out, .write = &c->write};
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    tl_connection = conn;
    kp_http_handle(hd->srv, method, url, auth, c->body.data ? c->body.data : "", c->body.len,
                   c->too_large, &answer);
    tl_connection = NULL;
    if (answer.job) return start_write(c, conn);
    return send_answer(conn, answer.status, &c->out, answer.content_type);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    /* The context belongs to the connection (on_connection frees it); the
     * next request resets it. */
    *con_cls = NULL;
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
        *socket_context = c;
        return;
    }
    conn_ctx *c = *socket_context;
    if (c == NULL) return;
    *socket_context = NULL;
    pthread_mutex_lock(&c->lock);
    c->closed = true;
    bool busy = c->in_writer;
    pthread_mutex_unlock(&c->lock);
    if (!busy) conn_ctx_free(c); /* else on_write_done() frees it */
}

/* Makes sure no connection stays suspended: from now on writes are
 * submitted synchronously, and this waits until the writer has resumed every
 * connection suspended before. */
static void drain_suspended(http_daemon *hd)
{
    pthread_mutex_lock(&hd->lock);
    hd->stopping = true;
    while (hd->n_suspended > 0) pthread_cond_wait(&hd->resumed, &hd->lock);
    pthread_mutex_unlock(&hd->lock);
}

int kp_server_run(const kp_server_config *config)
{
    int rc = 1;
    kp_error e = {0};
    kp_server *srv = calloc(1, sizeof *srv);
    if (srv == NULL) return 1;
    srv->config = *config;
    pthread_rwlock_init(&srv->auth_lock, NULL);
    http_daemon hd = {.srv = srv};
    pthread_mutex_init(&hd.lock, NULL);
    pthread_cond_init(&hd.resumed, NULL);
    struct MHD_Daemon *d = NULL;
    kp_scheduler *scheduler = NULL;

    /* Block the stop signals in every thread; the main thread waits for them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    srv->programs = kp_programs_new();
    if (srv->programs == NULL) goto out;
    if (kp_writer_start(config->db_path, srv->programs, &srv->writer, &e)) goto fail;
    if (kp_reader_pool_new(config->db_path, config->readers, &srv->readers, &e)) goto fail;
    kp_reader_pool_follow(srv->readers, srv->writer); /* lookups see every answered write */
    char key_path[4096];
    kp_error key_error = {0};
    if (kp_pii_key_path(config->db_path, key_path, sizeof key_path) &&
        kp_pii_load(key_path, &srv->pii, &key_error) != KP_OK)
        fprintf(stderr, "kopilka: warning: %s; customers' personal data cannot be stored or "
                        "read until it is there\n", key_error.message);
    if (config->tick_seconds > 0 &&
        kp_scheduler_start(srv, config->tick_seconds, NULL, &scheduler, &e))
        goto fail;
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
    unsigned threads = config->http_threads > 0 ? (unsigned)config->http_threads
                                                : HTTP_THREADS_DEFAULT;
    d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                             MHD_ALLOW_SUSPEND_RESUME,
                         (uint16_t)config->port, NULL, NULL, on_request, &hd,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                         MHD_OPTION_THREAD_POOL_SIZE, threads,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, &hd,
                         MHD_OPTION_NOTIFY_CONNECTION, on_connection, &hd,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned)2048,
                         MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
                         MHD_OPTION_END);
    if (d == NULL) {
        kp_error_set(&e, KP_ERR_IO, "listen", "cannot listen on %s:%u (in use?)", config->host,
                     config->port);
        goto fail;
    }
    fprintf(stderr, "kopilka: serving %s on http://%s:%u (%u HTTP threads)\n", config->db_path,
            config->host, config->port, threads);
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
    kp_scheduler_stop(scheduler);
    kp_writer_stop(srv->writer);
    kp_reader_pool_free(srv->readers);
    kp_programs_free(srv->programs);
    kp_pii_free(srv->pii);
    pthread_rwlock_destroy(&srv->auth_lock);
    pthread_cond_destroy(&hd.resumed);
    pthread_mutex_destroy(&hd.lock);
    free(srv);
    return rc;
}
