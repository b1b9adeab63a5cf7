/*
 * http_floor.c: what libmicrohttpd itself costs per request on this machine,
 * with nothing behind it: every POST is answered with the same 1.4 KB JSON.
 * Run by bench/http_floor.sh, which drives it with bench/loadgen and reads
 * its CPU time from /proc; the figures are in bench/README.md.
 *
 *     http_floor PORT direct          answer in the access handler
 *     http_floor PORT suspend [US]    suspend each request; a second thread
 *                                     resumes the waiting ones every US
 *                                     microseconds (default 0: at once), as
 *                                     the server resumes a group once durable
 *
 * Both use the server's MHD configuration: an epoll thread pool of 4.
 * It listens on 127.0.0.1 only and runs until SIGINT or SIGTERM.
 */
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

enum {
    ANSWER_BYTES = 1400, /* about a purchase's answer */
    WAITING_MAX = 4096,  /* suspended requests at once (bounded by connections) */
    THREADS = 4,
};

static char answer[ANSWER_BYTES];
static bool suspend_mode;
static long resume_every_us;

/* Requests suspended and not yet resumed. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static struct MHD_Connection *waiting[WAITING_MAX];
static size_t n_waiting;

typedef struct request {
    bool suspended;
} request;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **con_cls)
{
    (void)cls, (void)url, (void)method, (void)version, (void)data;
    if (*con_cls == NULL) {
        request *r = calloc(1, sizeof *r);
        if (r == NULL) return MHD_NO;
        *con_cls = r;
        return MHD_YES;
    }
    request *r = *con_cls;
    if (*size) { /* the body: read and dropped */
        *size = 0;
        return MHD_YES;
    }
    if (suspend_mode && !r->suspended) {
        pthread_mutex_lock(&lock);
        bool room = n_waiting < WAITING_MAX;
        if (room) {
            r->suspended = true;
            MHD_suspend_connection(conn);
            waiting[n_waiting++] = conn;
            pthread_cond_signal(&wake);
        }
        pthread_mutex_unlock(&lock);
        if (room) return MHD_YES;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(sizeof answer, answer, MHD_RESPMEM_PERSISTENT);
    if (resp == NULL) return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "application/json");
    enum MHD_Result rc = MHD_queue_response(conn, 201, resp);
    MHD_destroy_response(resp);
    return rc;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)conn, (void)toe;
    free(*con_cls);
    *con_cls = NULL;
}

/* Resumes every waiting request, a group at a time, like the server's syncer. */
static void *resumer(void *arg)
{
    (void)arg;
    static struct MHD_Connection *group[WAITING_MAX];
    for (;;) {
        pthread_mutex_lock(&lock);
        while (n_waiting == 0) pthread_cond_wait(&wake, &lock);
        pthread_mutex_unlock(&lock);
        if (resume_every_us > 0) {
            struct timespec ts = {resume_every_us / 1000000, (resume_every_us % 1000000) * 1000};
            nanosleep(&ts, NULL);
        }
        pthread_mutex_lock(&lock);
        size_t n = n_waiting;
        memcpy(group, waiting, n * sizeof group[0]);
        n_waiting = 0;
        pthread_mutex_unlock(&lock);
        for (size_t i = 0; i < n; i++) MHD_resume_connection(group[i]);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 3 || (strcmp(argv[2], "direct") != 0 && strcmp(argv[2], "suspend") != 0)) {
        fprintf(stderr, "usage: http_floor PORT direct|suspend [RESUME_EVERY_US]\n");
        return 2;
    }
    int port = atoi(argv[1]);
    if (port < 1 || port > 65535) {
        fprintf(stderr, "http_floor: PORT must be 1..65535\n");
        return 2;
    }
    suspend_mode = strcmp(argv[2], "suspend") == 0;
    resume_every_us = argc > 3 ? atol(argv[3]) : 0;
    if (resume_every_us < 0 || resume_every_us > 1000000) {
        fprintf(stderr, "http_floor: RESUME_EVERY_US must be 0..1000000\n");
        return 2;
    }
    memset(answer, 'x', sizeof answer);
    memcpy(answer, "{\"a\":\"", 6);
    memcpy(answer + sizeof answer - 2, "\"}", 2);

    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    pthread_t thread;
    if (suspend_mode && pthread_create(&thread, NULL, resumer, NULL) != 0) return 1;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME,
        (uint16_t)port, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&addr, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)THREADS,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)2048, MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "http_floor: cannot listen on 127.0.0.1:%d\n", port);
        return 1;
    }
    int sig = 0;
    sigwait(&stop, &sig);
    /* The resumer may still hold suspended connections; the process ends
     * here, which closes them. */
    _exit(0);
}
