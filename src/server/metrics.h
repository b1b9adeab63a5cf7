/*
 * metrics.h: the server's counters, gauges and histograms, and GET /metrics
 * in the Prometheus text format (version 0.0.4), for the operators'
 * Prometheus (docs/api.md "Metrics" lists every series).
 *
 * Cost on the till path: a request adds to two arrays of atomic counters
 * (its route, method and status; its route's latency bucket, sum) with
 * relaxed atomic adds: no lock, no allocation, no system call. Its route is
 * the access log's pattern (/v1/cards/{}), looked up in a fixed table of
 * the API's routes; any other path counts as route "other", so the number
 * of series is bounded whatever clients send, and no card number, customer
 * id or query string ever becomes a label. Gauges that cost a system call
 * (file sizes) or a lock (queue depths) are read when /metrics is scraped,
 * never per request.
 *
 * Who may scrape (config "metrics", `kopilka serve --metrics`): "local"
 * (the default) answers clients connecting from a loopback address and 403
 * to others; "on" answers anyone (a scraper on another host, with the port
 * kept from the public by a firewall); "off" answers 404. The series carry
 * no personal data, but traffic figures are the retailer's business.
 */
#ifndef KOPILKA_METRICS_H
#define KOPILKA_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

enum {
    KP_HISTOGRAM_BOUNDS_MAX = 16,    /* finite buckets of a histogram; +Inf is added */
    KP_METRICS_ANSWER_MAX = 4 << 20, /* bytes of a scrape */
};

/* A histogram of non-negative integer observations (microseconds, jobs),
 * updated with atomic adds from any thread. `bounds` (ascending upper
 * bounds, n_bounds of them) is static and set once, before any thread
 * observes; counts[n_bounds] is the +Inf bucket. Counts are per bucket
 * (not cumulative); the writer makes them cumulative. */
typedef struct kp_histogram {
    const uint64_t *bounds;
    size_t n_bounds;
    _Atomic uint64_t counts[KP_HISTOGRAM_BOUNDS_MAX + 1];
    _Atomic uint64_t sum;
} kp_histogram;

/* Sets the bucket bounds (n_bounds <= KP_HISTOGRAM_BOUNDS_MAX, ascending)
 * and zeroes the counts. */
void kp_histogram_init(kp_histogram *h, const uint64_t *bounds, size_t n_bounds);
/* Counts one observation: one atomic add to its bucket, one to the sum. */
void kp_histogram_observe(kp_histogram *h, uint64_t value);

/* Writes the histogram's _bucket, _sum and _count samples (not its HELP and
 * TYPE lines) to out. labels: "" or one or more label pairs without braces
 * (route="/v1/quote"); scale: what the observations are divided by to be
 * printed in the metric's unit (1000000 for microseconds as seconds, 1 for
 * counts). The _count is the +Inf bucket's cumulative count. */
void kp_histogram_write(kp_buf *out, const char *name, const char *labels, const kp_histogram *h,
                        uint64_t scale);

/* Who may read /metrics (see the top of this file). */
typedef enum kp_metrics_access {
    KP_METRICS_LOCAL = 0,
    KP_METRICS_ON,
    KP_METRICS_OFF,
} kp_metrics_access;

/* Parses "local", "on" or "off" (NULL is "local"); false for anything else. */
bool kp_metrics_access_parse(const char *text, kp_metrics_access *out);

/* The clock-driven jobs of the scheduler (scheduler.c), by name. */
typedef enum kp_metrics_job {
    KP_METRICS_JOB_EXPIRE = 0,
    KP_METRICS_JOB_TICK,
    KP_METRICS_JOBS
} kp_metrics_job;

typedef struct kp_metrics kp_metrics;

/* A new set of metrics, all zero; NULL when out of memory. Freed by
 * kp_metrics_free() once no thread updates it any more. */
kp_metrics *kp_metrics_new(kp_metrics_access access);
void kp_metrics_free(kp_metrics *m);
kp_metrics_access kp_metrics_access_of(const kp_metrics *m);

/* Counts one answered request: its method, url (reduced to its route), the
 * status sent and the latency from its headers' arrival to its answer
 * queued. Any thread; lock-free. */
void kp_metrics_request(kp_metrics *m, const char *method, const char *url, unsigned status,
                        int64_t latency_us);

/* Connections: one opened (gauge up), one closed (gauge down), one refused
 * by the per-address limit, n closed by the request deadline. Any thread. */
void kp_metrics_connection_opened(kp_metrics *m);
void kp_metrics_connection_closed(kp_metrics *m);
void kp_metrics_connection_refused(kp_metrics *m);
void kp_metrics_connections_timed_out(kp_metrics *m, unsigned n);

/* One job of the scheduler handed to the writer, and whether it succeeded. */
void kp_metrics_scheduler_run(kp_metrics *m, kp_metrics_job job, bool ok);

/* The outbox's deliveries (notifier.c): outcomes of attempts on a channel
 * (a kp_channel, 1 .. KP_METRICS_CHANNELS - 1): sent, failed (each failed
 * attempt), dead (of those failed, the ones given up); and events
 * dispatched. Any thread; lock-free. */
enum { KP_METRICS_CHANNELS = 4 };
void kp_metrics_outbox_delivered(kp_metrics *m, int channel, uint64_t sent, uint64_t failed,
                                 uint64_t dead);
void kp_metrics_outbox_dispatched(kp_metrics *m, uint64_t events);

/* What the writer counted (writer.c, kp_writer_stats_get()). */
typedef struct kp_writer_stats {
    uint64_t groups;                 /* group commits (batches) */
    uint64_t jobs;                   /* jobs run in them */
    uint64_t database_commits;       /* commits of the database transaction */
    uint64_t log_syncs;              /* fdatasync rounds of the syncer */
    uint64_t log_bytes;              /* payload bytes appended to the operation log */
    size_t queued;                   /* jobs waiting now */
    bool failed;                     /* storage failed: writes are refused */
    const kp_histogram *group_sizes; /* jobs per group; owned by the writer */
} kp_writer_stats;

/* What the server samples when it is scraped. */
typedef struct kp_metrics_sample {
    kp_writer_stats writer;
    size_t office_queued;    /* requests waiting for an office thread */
    int64_t program_version; /* 0 when none is loaded */
    const char *db_path;     /* for the files' sizes (stat) */
    const char *version;     /* the program's build version */
    /* The outbox's figures (kopilka/notify.h), NULL when none are known
     * yet; ages are taken at `now`. */
    const struct kp_outbox_stats *outbox;
    int64_t now;
} kp_metrics_sample;

/* Writes every series as the Prometheus text format into out. */
void kp_metrics_write(const kp_metrics *m, const kp_metrics_sample *s, kp_buf *out);

/* The route label of url ("/v1/cards/{}", or "other"): exposed for tests. */
const char *kp_metrics_route_label(const char *url);

#endif
