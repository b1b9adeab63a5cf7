/*
 * server.h: the HTTP server's internals, shared by its files: the writer
 * (group commit), the reader pool, the program cache and the routes.
 */
#ifndef KOPILKA_SERVER_H
#define KOPILKA_SERVER_H

#include <pthread.h>

#include "http_error.h"
#include "metrics.h"
#include "service/service.h"

typedef struct kp_server_config {
    const char *db_path;
    const char *host;  /* "127.0.0.1" */
    unsigned port;
    kp_clock clock;    /* fixed = 0: the real clock */
    int readers;       /* read connections for quotes and lookups */
    int http_threads;  /* event-loop threads answering HTTP (1..64); 0 = 4 */
    int tick_seconds;  /* the scheduler wakes this often (scheduler.c); 0 = no scheduler */
    /* Slow clients (server.c): a connection must deliver each whole request
     * within request_timeout_s of being opened or of its previous answer;
     * MHD closes one idle for idle_timeout_s; an address may hold at most
     * connections_per_address connections. 0 = the default (30, 60, 256). */
    int request_timeout_s;
    int idle_timeout_s;
    int connections_per_address;
    /* The access log (access_log.h): "off", "stderr" or a file; NULL = stderr. */
    const char *access_log;
    /* Who may read GET /metrics (metrics.h): "local" (NULL), "on" or "off". */
    const char *metrics;
    /* The notification channels (`--notify FILE`, kp_notify_config_load);
     * NULL: the defaults (webhooks only, e-mail and SMS not configured). */
    const struct kp_notify_config *notify;
    /* `--trust-proxy`: the client's address is the last one of the
     * request's X-Forwarded-For (which a proxy in front, nginx, appends),
     * not the connection's peer (kp_http_client_address). */
    bool trust_proxy;
} kp_server_config;

/* Runs the server until SIGINT or SIGTERM. Returns 0 on a clean stop. */
int kp_server_run(const kp_server_config *config);

/* ---- programs: the writer refreshes the running one; everyone reads it. */
/* The program cache. A reload makes a new version current; a superseded
 * version is freed when the last request holding it lets go (a count of
 * holders per version), so a request never sees its program freed however
 * many reloads happen meanwhile, and the cache holds at most one old version
 * per request in flight. A version scheduled from a date (docs/rules.md,
 * "Program versions") is read ahead and takes over at its instant on the
 * cache's clock, in every thread, without a query. */
typedef struct kp_programs kp_programs;
/* `clock` (borrowed; it outlives the cache) says when a scheduled version
 * takes over: the server's --now, or the real clock. */
kp_programs *kp_programs_new(const kp_clock *clock);
/* Frees every version; nobody may hold one any more. */
void kp_programs_free(kp_programs *p);
/* Reads from the store which version runs now and which one is scheduled
 * next, and loads what changed. The writer calls it within a second of any
 * change (another server's load too); a route that loaded or cancelled a
 * version calls it at once on a reader. Refreshes are serialized. */
kp_err kp_programs_refresh(kp_programs *p, kp_store *st, kp_error *e);
/* The current program, or NULL when none is loaded, without a hold: for
 * the writer (valid until its own next refresh) and for a test of whether
 * any is loaded. Any other use takes kp_programs_hold(). */
const kp_program *kp_programs_current(kp_programs *p);
/* The current program with a hold on it (NULL when none is loaded): it stays
 * valid, whatever reloads happen, until kp_programs_drop(). */
const kp_program *kp_programs_hold(kp_programs *p);
/* Lets go of a program from kp_programs_hold(); NULL is ignored. */
void kp_programs_drop(kp_programs *p, const kp_program *program);

/* ---- the writer (writer.c): writer threads, each with a connection of its
 * own (kp_group_ops.writers of the store, store.h), run queued jobs in
 * groups: each job in a savepoint, the group made durable the backend's way
 * (kp_group_ops), and every job answered only once its group is durable. */
typedef enum kp_job_type { KP_JOB_PURCHASE = 1, KP_JOB_RETURN, KP_JOB_CALL } kp_job_type;

typedef struct kp_job {
    kp_job_type type;
    const char *store;
    /* A purchase naming its customer by phone gets its card filled in by
     * the writer (kp_till_purchase_by_phone, with pii), so it is not const. */
    kp_purchase_req *purchase;
    const struct kp_pii *pii;
    const kp_return_req *ret;
    /* KP_JOB_CALL: any other write (events, the scheduler's ticks), run with
     * the writer's connection in the job's savepoint; program may be NULL. */
    kp_err (*call)(void *ctx, kp_store *st, const kp_program *program, kp_scratch *sc,
                   kp_buf *out, bool *replayed, kp_error *e);
    void *ctx;
    kp_time now;
    /* results, valid once done */
    kp_err err;
    kp_error error;
    bool replayed;
    kp_buf *out;
    bool done;
    pthread_cond_t *wake; /* the submitting thread's own condition */
    /* Set for kp_writer_enqueue(): called once, from a writer-side thread and
     * without the writer's lock, when the job is done (durable or failed).
     * The writer does not touch the job after the call. */
    void (*on_done)(struct kp_job *job);
    /* KP_JOB_CALL only: the job's writes need not be durable before it is
     * answered (the outbox's bookkeeping: dispatch, claims, settles). It
     * writes no redo record and makes its group commit nothing of its
     * own: its work lands with the group's next commit (SQLite: the next
     * publish, at most 500 ms later; PostgreSQL: every group commits), and
     * a crash before that loses it, which the outbox tolerates (events
     * are dispatched again under the same keys; a message whose outcome
     * was lost is sent again, as one in flight). */
    bool lazy;
    void *owner;          /* for on_done */
    struct kp_job *next;
} kp_job;

typedef struct kp_writer kp_writer;
/* Opens the writer connections on the database at `location` (a file's
 * start-up quick check first), recovers what a crash left (kp_group_ops.open)
 * and loads the program cache. */
kp_err kp_writer_start(const char *location, kp_programs *programs, kp_writer **out, kp_error *e);
/* Queues the job and waits until its group is durable (or failed). */
void kp_writer_submit(kp_writer *w, kp_job *job);
/* Queues the job without waiting; job->on_done must be set. False when the
 * queue refused it (full, or stopping): job->err says why, and on_done will
 * not be called. */
bool kp_writer_enqueue(kp_writer *w, kp_job *job);
void kp_writer_stop(kp_writer *w);
/* True once storage failed under acknowledged work (a sync, or an end()
 * that lost the connection or logged work: kp_group_ops.end's KP_ERR_IO):
 * writes are refused and reads would see a database without acknowledged
 * work, until a restart recovers it. The first failure's reason goes to
 * reason (may be NULL). */
bool kp_writer_failed(kp_writer *w, char *reason, size_t size);
/* The writer's counters and its queue's depth now, for /metrics. */
void kp_writer_stats_get(kp_writer *w, kp_writer_stats *out);
/* Returns once every write acknowledged so far is visible to other
 * connections of the database: asks the writers to publish the groups
 * they left unpublished (kp_group_ops.end) and waits for it. */
void kp_writer_barrier(kp_writer *w);

/* ---- readers: a fixed pool of read connections with their scratch. */
typedef struct kp_reader {
    kp_store *store;
    kp_scratch *scratch;
} kp_reader;

typedef struct kp_reader_pool kp_reader_pool;
enum { KP_READERS_MAX = 64 };
/* Opens n read connections; n outside 1..KP_READERS_MAX is refused
 * (KP_ERR_INVALID, field "readers"), never clamped. */
kp_err kp_reader_pool_new(const char *db_path, int n, kp_reader_pool **out, kp_error *e);
/* Readers acquired from now on first wait for the writer's barrier, so a
 * lookup sees every purchase answered before it. */
void kp_reader_pool_follow(kp_reader_pool *pool, kp_writer *w);
kp_reader *kp_reader_acquire(kp_reader_pool *pool);
void kp_reader_release(kp_reader_pool *pool, kp_reader *r);
void kp_reader_pool_free(kp_reader_pool *pool);

/* ---- routes (http_pos.c) */
typedef struct kp_server kp_server;

/* A connection's purchase or return while the writer commits it: the parsed
 * request, its store and the writer's job. It must outlive the request's
 * handler call, so the HTTP layer keeps one per connection (server.c) and
 * reuses it for each of the connection's requests, one at a time. Zeroed
 * by the owner; the request struct is allocated on first use and freed by
 * kp_http_write_release(). */
typedef struct kp_http_write {
    kp_job job;
    char store[KP_STR_MAX];
    union kp_http_write_req {
        kp_purchase_req purchase;
        kp_return_req ret;
    } *req;
} kp_http_write;

/* Frees what kp_http_handle() allocated in w (not w itself). */
void kp_http_write_release(kp_http_write *w);

/* The status of a write that kp_http_handle() left in answer->job, once the
 * job is done or the queue refused it; on failure, writes the error body into
 * the job's output. */
unsigned kp_http_write_status(kp_http_write *w);

typedef struct kp_http_answer {
    unsigned status;
    kp_buf *body;             /* JSON, unless content_type says otherwise */
    const char *content_type; /* NULL = application/json */
    /* In: the connection's write slot (required for POST /v1/purchases and
     * /v1/returns). */
    kp_http_write *write;
    /* Out: set instead of status when the request became a writer's job
     * (&write->job): the caller queues it (kp_writer_enqueue() with on_done
     * and owner set, or kp_writer_submit()) and answers
     * kp_http_write_status() once it is done. The writer fills body, which
     * has been reserved so it never reallocates. */
    kp_job *job;
    /* Out: seconds for a Retry-After header (a 429 or 503); 0 = none. */
    int64_t retry_after;
    /* Out: a Content-Disposition header ("attachment; filename=..."), a
     * string constant; NULL = none. */
    const char *disposition;
    /* Out, when not NULL (KP_STR_MAX bytes): the store of the terminal key
     * that authenticated the request, for the access log; left as is
     * otherwise. */
    char *store;
    /* Out: a Set-Cookie header's value ("" = none): a page's login or
     * logout (http_people.c). */
    char set_cookie[400];
    /* Out: an ETag header's value ("" = none) and a Cache-Control one
     * (NULL = none): a cached file served from the database (a catalog
     * item's image, http_catalog.c). */
    char etag[40];
    const char *cache_control;
} kp_http_answer;

struct kp_server {
    kp_server_config config;
    kp_programs *programs;
    kp_writer *writer;
    kp_reader_pool *readers;
    struct kp_keyring *keys; /* terminal keys (keyring.h) */
    struct kp_pii *pii; /* the personal-data key (DB.key); NULL when missing */
    char pii_problem[256]; /* why pii is NULL, for /health ("" when loaded) */
    kp_metrics *metrics; /* counters for GET /metrics (metrics.h) */
    struct kp_login_limits *login_limits; /* failed logins counted (login_limit.h) */
    struct kp_notifier *notifier; /* the outbox's threads (notifier.c); NULL until started */
    struct kp_scheduler *scheduler; /* scheduler.c; NULL without one (--tick 0) */
};

/* The value of the query argument `name` of the request this thread is
 * answering ("?after=10"), or NULL. */
const char *kp_http_arg(const char *name);

/* The value of the request header `name` (any case) of the request this
 * thread is answering on the office lane, or NULL. */
const char *kp_http_header(const char *name);

/* The address of the client of the request this thread is answering on the
 * office lane, as text ("192.0.2.7", "2001:db8::1"): the connection's peer,
 * or with `serve --trust-proxy` the last address of X-Forwarded-For when it
 * has a valid one. "" when not known. Valid until the request is answered. */
const char *kp_http_client_address(void);

/* The largest request body a route takes: KP_BODY_MAX, except
 * KP_IMPORT_BODY_MAX for POST /v1/admin/imports (a CSV file). Past it the
 * answer is 413 too_large, the body unread. */
enum { KP_IMPORT_BODY_MAX = 32 * 1024 * 1024 };
size_t kp_http_body_max(const char *method, const char *url);
/* ---- the pages (http_pages.c, web_assets.h): "/", "/till", "/office" and
 * "/assets/...", embedded from web/ at build time. */
struct kp_web_asset;
extern const char kp_page_csp[]; /* their Content-Security-Policy */
/* True when url is a page's or an asset's path (served or not). */
bool kp_http_is_page(const char *url);
/* The embedded file at url ("/till/" is "/till"), or NULL. */
const struct kp_web_asset *kp_http_page_find(const char *url);
/* How many files are embedded (0 in a -DKOPILKA_WEB=OFF build). */
size_t kp_http_pages_count(void);
/* True when an Accept-Encoding header takes gzip. */
bool kp_http_accepts_gzip(const char *accept_encoding);

/* The back office's routes (http_people.c): /v1/admin/..., /v1/customers,
 * /v1/transfers and the card pictures. False when the URL is not theirs. */
bool kp_http_people_handle(kp_server *srv, const char *method, const char *url,
                           const char *auth, const char *body, size_t body_len,
                           bool body_too_large, kp_http_answer *answer);

/* Handles one request. `auth` is the Authorization header (or NULL). Writes
 * the status and JSON body into *answer; for a valid purchase or return it
 * leaves the job to queue in answer->job instead (see kp_http_answer).
 * Every other route blocks the calling thread until it is answered (a write
 * until it is durable). */
void kp_http_handle(kp_server *srv, const char *method, const char *url, const char *auth,
                    const char *body, size_t body_len, bool body_too_large, kp_http_answer *answer);

/* ---- the scheduler (scheduler.c): a thread that runs due time-driven
 * work (expiry, birthdays, tenure, tier reviews) through the writer, at
 * start and every interval_seconds. birthdays may be NULL. */
struct kp_birthday_finder;
typedef struct kp_scheduler kp_scheduler;
kp_err kp_scheduler_start(kp_server *srv, int interval_seconds,
                          const struct kp_birthday_finder *birthdays, kp_scheduler **out,
                          kp_error *e);
void kp_scheduler_stop(kp_scheduler *s);
/* Wakes the scheduler now (a campaign started); NULL is ignored. */
void kp_scheduler_wake(kp_scheduler *s);

/* ---- the notifier (notifier.c): empties the outbox. A dispatch thread
 * turns pending events into messages (kp_notify_dispatch_pass) every
 * 150 ms, and at once (at most every 100 ms) after a purchase or return
 * (kp_notifier_poke); each configured channel (e-mail and SMS with a key
 * file and --notify, webhooks unless the file turns them off) has its
 * `concurrency` delivery threads sharing the channel's rate, which send
 * them (kp_notify_deliver_pass). Each thread has its own read connection;
 * every write is a lazy KP_JOB_CALL job on the writer. */
struct kp_notify_config;
typedef struct kp_notifier kp_notifier;
/* config NULL: the defaults. Needs srv's writer, programs, pii, metrics. */
kp_err kp_notifier_start(kp_server *srv, const struct kp_notify_config *config,
                         kp_notifier **out, kp_error *e);
/* A write that may have made events has committed: dispatch soon. Cheap
 * (an atomic load when the dispatcher is busy); any thread; NULL ignored. */
void kp_notifier_poke(kp_notifier *n);
/* Asks every thread to stop and joins them: sends in flight finish or time
 * out, messages claimed but not sent are handed back. Before the writer
 * stops. NULL ignored. */
void kp_notifier_stop(kp_notifier *n);
/* For /metrics: the latest outbox figures (refreshed by the dispatch
 * thread at most once a second while scraped; false when none yet) and
 * asks for a fresh one. */
bool kp_notifier_outbox(kp_notifier *n, struct kp_outbox_stats *out);

/* POST /v1/events (http_events.c), dispatched by http_pos.c: `from` is the
 * kind of credential it came with, `store` its idempotency scope. */
unsigned kp_http_route_events(kp_server *srv, kp_event_from from, const char *store,
                              const char *body, size_t len, kp_buf *out);

/* GET /live, /ready and /health (http_health.c): true when the URL was one
 * of them and *answer is filled. */
bool kp_http_health(kp_server *srv, const char *url, kp_http_answer *answer);

/* GET /v1/openapi.json (http_openapi.c): true when the URL was it and
 * *answer is filled (the description compiled into the binary). */
bool kp_http_openapi(const char *method, const char *url, kp_http_answer *answer);

#endif
