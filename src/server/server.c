/*
 * server.c: the HTTP plumbing over libmicrohttpd. A thread per connection
 * (keep-alive connections are the norm at tills): each request's body is
 * collected up to KP_BODY_MAX, then handed to kp_http_handle(). Writes block
 * their connection's thread until their group commit is durable.
 */
#include "server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/pii.h"

typedef struct request_ctx {
    kp_buf body;
    bool too_large;
} request_ctx;

/* The connection this thread is answering, for kp_http_arg(). */
static _Thread_local struct MHD_Connection *tl_connection;

const char *kp_http_arg(const char *name)
{
    return tl_connection ? MHD_lookup_connection_value(tl_connection, MHD_GET_ARGUMENT_KIND, name)
                         : NULL;
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

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    kp_server *srv = cls;
    request_ctx *ctx = *con_cls;
    if (ctx == NULL) {
        ctx = calloc(1, sizeof *ctx);
        if (ctx == NULL) return MHD_NO;
        kp_buf_init(&ctx->body, KP_BODY_MAX + 1);
        *con_cls = ctx;
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > KP_BODY_MAX) ctx->too_large = true;
        if (!ctx->too_large) return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (!ctx->too_large && !kp_buf_append(&ctx->body, upload_data, *upload_data_size))
            ctx->too_large = true;
        *upload_data_size = 0;
        return MHD_YES;
    }
    kp_buf out;
    kp_buf_init(&out, 64 * 1024 * 1024);
    kp_http_answer answer = {.status = 500, .body = &out};
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    tl_connection = conn;
    kp_http_handle(srv, method, url, auth, ctx->body.data ? ctx->body.data : "", ctx->body.len,
                   ctx->too_large, &answer);
    tl_connection = NULL;
    enum MHD_Result r = send_answer(conn, answer.status, &out, answer.content_type);
    kp_buf_release(&out);
    return r;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    request_ctx *ctx = *con_cls;
    if (ctx == NULL) return;
    kp_buf_release(&ctx->body);
    free(ctx);
    *con_cls = NULL;
}

int kp_server_run(const kp_server_config *config)
{
    int rc = 1;
    kp_error e = {0};
    kp_server *srv = calloc(1, sizeof *srv);
    if (srv == NULL) return 1;
    srv->config = *config;
    pthread_rwlock_init(&srv->auth_lock, NULL);
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
    d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD,
                         (uint16_t)config->port, NULL, NULL, on_request, srv,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned)2048,
                         MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
                         MHD_OPTION_END);
    if (d == NULL) {
        kp_error_set(&e, KP_ERR_IO, "listen", "cannot listen on %s:%u (in use?)", config->host,
                     config->port);
        goto fail;
    }
    fprintf(stderr, "kopilka: serving %s on http://%s:%u\n", config->db_path, config->host,
            config->port);
    int sig = 0;
    sigwait(&stop, &sig);
    fprintf(stderr, "kopilka: stopping (signal %d)\n", sig);
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "kopilka: %s%s%s\n", e.field, e.field[0] ? ": " : "", e.message);
out:
    if (d) MHD_stop_daemon(d);
    kp_scheduler_stop(scheduler);
    kp_writer_stop(srv->writer);
    kp_reader_pool_free(srv->readers);
    kp_programs_free(srv->programs);
    kp_pii_free(srv->pii);
    pthread_rwlock_destroy(&srv->auth_lock);
    free(srv);
    return rc;
}
