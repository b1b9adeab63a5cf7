/*
 * metrics.c: the server's metrics and their Prometheus text format
 * (metrics.h says what is counted, how cheaply, and who may read it).
 */
#include "metrics.h"

#include <kopilka/notify.h>
#include <kopilka/store.h>
#include <stddef.h>

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "access_log.h"

/* The routes counted under their own label: the API's routes as the access
 * log writes them (docs/api.md). The till's routes come first, as they are
 * looked up most. Index 0 is "other": any path not in the list. */
static const char *const routes[] = {
    "other",
    "/v1/purchases", /* 1 to 3: looked up first, as they are (route_index) */
    "/v1/returns",
    "/v1/quote",
    "/v1/cards/{}",
    "/v1/identify",
    "/v1/events",
    "/live",
    "/ready",
    "/health",
    "/metrics",
    "/v1/openapi.json",
    "/v1/customers",
    "/v1/transfers",
    "/v1/cards/{}/barcode.svg",
    "/v1/cards/{}/barcode.png",
    "/v1/cards/{}/qr.svg",
    "/v1/cards/{}/qr.png",
    "/v1/admin/login",
    "/v1/admin/logout",
    "/v1/admin/me",
    "/v1/admin/staff",
    "/v1/admin/staff/{}",
    "/v1/admin/audit",
    "/v1/admin/adjustments",
    "/v1/admin/card-batches",
    "/v1/admin/card-batches/{}/cards.csv",
    "/v1/admin/cards/{}",
    "/v1/admin/cards/{}/block",
    "/v1/admin/cards/{}/unblock",
    "/v1/admin/cards/{}/replace",
    "/v1/admin/cards/{}/discount",
    "/v1/admin/terminals",
    "/v1/admin/terminals/{}/revoke",
    "/v1/admin/terminals/{}/rotate",
    "/v1/admin/export/customers.csv",
    "/v1/admin/export/balances.csv",
    "/v1/admin/customers/search",
    "/v1/admin/customers/{}",
    "/v1/admin/customers/{}/erase",
    "/v1/admin/customers/{}/cards",
    "/v1/admin/customers/{}/history",
    "/v1/admin/families",
    "/v1/admin/families/{}",
    "/v1/admin/families/{}/members",
    "/v1/admin/families/{}/members/{}",
    "/v1/admin/families/{}/members/{}/leave",
    "/v1/signup", /* the customer's own API (http_self.c) */
    "/v1/me",
    "/v1/me/history",
    "/v1/me/notifications",
    "/v1/me/cards/{}/block",
    "/v1/me/cards/{}/barcode.svg",
    "/v1/me/cards/{}/qr.svg",
    "/v1/me/family",
    "/v1/me/family/invitations",
    "/v1/me/family/invitations/{}/accept",
    "/v1/me/family/invitations/{}/decline",
    "/v1/me/family/members/{}",
    "/v1/me/family/members/{}/remove",
    "/v1/me/transfers",
    "/v1/me/export",
    "/v1/me/erase",
    "/v1/admin/programs",
    "/v1/admin/programs/{}",
    "/v1/admin/programs/validate",
    "/v1/admin/programs/diff",
    "/v1/admin/programs/sandbox",
    "/v1/admin/programs/{}/cancel",
    "/v1/admin/simulations",
    "/v1/admin/simulations/{}",
    "/v1/admin/dashboard",
    "/v1/admin/imports",
    "/v1/admin/reports/points",
    "/v1/admin/reports/members",
    "/v1/admin/segments", /* segments and campaigns (http_marketing.c) */
    "/v1/admin/segments/preview",
    "/v1/admin/segments/{}",
    "/v1/admin/campaigns",
    "/v1/admin/campaigns/{}",
    "/v1/admin/campaigns/{}/preview",
    "/v1/admin/campaigns/{}/start",
    "/v1/admin/campaigns/{}/cancel",
    "/v1/admin/campaigns/{}/results",
    "/v1/catalog", /* the rewards catalog (http_catalog.c) */
    "/v1/catalog/items/{}/image",
    "/v1/admin/catalog/items",
    "/v1/admin/catalog/items/{}",
    "/v1/admin/catalog/items/{}/stock",
    "/v1/admin/catalog/items/{}/image",
    "/v1/orders",
    "/v1/orders/{}/ready",
    "/v1/orders/{}/hand-over",
    "/v1/orders/{}/cancel",
    "/v1/me/catalog",
    "/v1/me/orders",
    "/v1/me/orders/{}/cancel",
    "/v1/draws/{}", /* prize draws (http_draws.c) */
    "/v1/admin/draws",
    "/v1/admin/draws/{}/close",
    "/v1/me/draws",
    "/v1/admin/reports/customers",
    "/v1/partner/me", /* a partner's staff (http_partner.c) */
    "/v1/partner/operations",
    "/v1/partner/rules",
    "/v1/partner/card-transactions",
    "/v1/partner/statements",
    "/v1/partner/statements/{}",
    "/v1/admin/settlement/periods", /* coalition settlement (http_settlement.c) */
    "/v1/admin/settlement/periods/{}",
    "/v1/admin/settlement/periods/{}/close",
    "/v1/admin/settlement/statements/{}",
};
enum { ROUTES = sizeof routes / sizeof routes[0] };

/* Methods; the last is "other". */
static const char *const methods[] = {"GET", "POST", "PATCH",   "DELETE",
                                      "PUT", "HEAD", "OPTIONS", "other"};
enum { METHODS = sizeof methods / sizeof methods[0] };

/* Statuses the server and libmicrohttpd send; any other counts as "other". */
static const unsigned statuses[] = {200, 201, 204, 400, 401, 403, 404, 405, 406, 409, 410,
                                    411, 413, 414, 415, 422, 429, 431, 500, 501, 503, 505};
enum { STATUSES = sizeof statuses / sizeof statuses[0] + 1 };

/* Request latency buckets, in microseconds: 0.5 ms (a quote from memory)
 * to 10 s (beyond it a till has given up). */
static const uint64_t latency_bounds_us[] = {500,     1000,    2500,    5000,    10000,
                                             25000,   50000,   100000,  250000,  500000,
                                             1000000, 2500000, 5000000, 10000000};

static const char *const job_names[KP_METRICS_JOBS] = {"expire", "tick"};

struct kp_metrics {
    kp_metrics_access access;
    time_t started;
    _Atomic uint64_t requests[ROUTES][METHODS][STATUSES];
    kp_histogram latency[ROUTES];
    _Atomic int64_t connections_open;
    _Atomic uint64_t connections_opened, connections_refused, connections_timed_out;
    _Atomic uint64_t scheduler_runs[KP_METRICS_JOBS][2]; /* [job][ok] */
    _Atomic uint64_t outbox_sent[KP_METRICS_CHANNELS], outbox_failed[KP_METRICS_CHANNELS],
        outbox_dead[KP_METRICS_CHANNELS], outbox_dispatched;
};

void kp_histogram_init(kp_histogram *h, const uint64_t *bounds, size_t n_bounds)
{
    assert(n_bounds <= KP_HISTOGRAM_BOUNDS_MAX && "histogram: too many buckets");
    h->bounds = bounds;
    h->n_bounds = n_bounds;
    for (size_t i = 0; i <= KP_HISTOGRAM_BOUNDS_MAX; i++) atomic_init(&h->counts[i], 0);
    atomic_init(&h->sum, 0);
}

void kp_histogram_observe(kp_histogram *h, uint64_t value)
{
    size_t i = 0;
    while (i < h->n_bounds && value > h->bounds[i]) i++;
    atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum, value, memory_order_relaxed);
}

/* Writes value/scale as a decimal without trailing zeros ("0.0005", "10"). */
static void put_scaled(kp_buf *out, uint64_t value, uint64_t scale)
{
    if (scale <= 1) {
        kp_buf_printf(out, "%llu", (unsigned long long)value);
        return;
    }
    char frac[32];
    int digits = 0;
    for (uint64_t s = scale; s > 1 && digits < 19; s /= 10) digits++;
    snprintf(frac, sizeof frac, "%0*llu", digits, (unsigned long long)(value % scale));
    size_t n = strlen(frac);
    while (n > 0 && frac[n - 1] == '0') frac[--n] = '\0';
    kp_buf_printf(out, "%llu%s%s", (unsigned long long)(value / scale), n ? "." : "", frac);
}

void kp_histogram_write(kp_buf *out, const char *name, const char *labels, const kp_histogram *h,
                        uint64_t scale)
{
    const char *comma = labels[0] ? "," : "";
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= h->n_bounds; i++) {
        cumulative += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
        kp_buf_printf(out, "%s_bucket{%s%sle=\"", name, labels, comma);
        if (i < h->n_bounds)
            put_scaled(out, h->bounds[i], scale);
        else
            kp_buf_puts(out, "+Inf");
        kp_buf_printf(out, "\"} %llu\n", (unsigned long long)cumulative);
    }
    kp_buf_printf(out, "%s_sum%s%s%s ", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "");
    put_scaled(out, atomic_load_explicit(&h->sum, memory_order_relaxed), scale);
    kp_buf_printf(out, "\n%s_count%s%s%s %llu\n", name, labels[0] ? "{" : "", labels,
                  labels[0] ? "}" : "", (unsigned long long)cumulative);
}

bool kp_metrics_access_parse(const char *text, kp_metrics_access *out)
{
    if (text == NULL || strcmp(text, "local") == 0)
        *out = KP_METRICS_LOCAL;
    else if (strcmp(text, "on") == 0)
        *out = KP_METRICS_ON;
    else if (strcmp(text, "off") == 0)
        *out = KP_METRICS_OFF;
    else
        return false;
    return true;
}

kp_metrics *kp_metrics_new(kp_metrics_access access)
{
    kp_metrics *m = calloc(1, sizeof *m); /* zero is every atomic's start */
    if (m == NULL) return NULL;
    m->access = access;
    m->started = time(NULL);
    for (size_t r = 0; r < ROUTES; r++)
        kp_histogram_init(&m->latency[r], latency_bounds_us,
                          sizeof latency_bounds_us / sizeof latency_bounds_us[0]);
    return m;
}

void kp_metrics_free(kp_metrics *m)
{
    free(m);
}

kp_metrics_access kp_metrics_access_of(const kp_metrics *m)
{
    return m->access;
}

static size_t route_index(const char *url)
{
    /* The till's fixed routes match as they are, without the pattern's
     * work: 18 ns a purchase instead of 150 (measured in a loop, one thread). */
    for (size_t i = 1; i <= 3; i++)
        if (strcmp(url, routes[i]) == 0) return i;
    char route[KP_ACCESS_ROUTE_MAX];
    kp_access_route(url, route, sizeof route);
    for (size_t i = 1; i < ROUTES; i++)
        if (strcmp(route, routes[i]) == 0) return i;
    return 0;
}

const char *kp_metrics_route_label(const char *url)
{
    return routes[route_index(url)];
}

void kp_metrics_request(kp_metrics *m, const char *method, const char *url, unsigned status,
                        int64_t latency_us)
{
    size_t r = route_index(url), k = METHODS - 1, s = STATUSES - 1;
    for (size_t i = 0; i + 1 < METHODS; i++)
        if (strcmp(method, methods[i]) == 0) {
            k = i;
            break;
        }
    for (size_t i = 0; i + 1 < STATUSES; i++)
        if (statuses[i] == status) {
            s = i;
            break;
        }
    atomic_fetch_add_explicit(&m->requests[r][k][s], 1, memory_order_relaxed);
    kp_histogram_observe(&m->latency[r], latency_us > 0 ? (uint64_t)latency_us : 0);
}

void kp_metrics_connection_opened(kp_metrics *m)
{
    atomic_fetch_add_explicit(&m->connections_open, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->connections_opened, 1, memory_order_relaxed);
}

void kp_metrics_connection_closed(kp_metrics *m)
{
    atomic_fetch_sub_explicit(&m->connections_open, 1, memory_order_relaxed);
}

void kp_metrics_connection_refused(kp_metrics *m)
{
    atomic_fetch_add_explicit(&m->connections_refused, 1, memory_order_relaxed);
}

void kp_metrics_connections_timed_out(kp_metrics *m, unsigned n)
{
    atomic_fetch_add_explicit(&m->connections_timed_out, n, memory_order_relaxed);
}

void kp_metrics_scheduler_run(kp_metrics *m, kp_metrics_job job, bool ok)
{
    assert(job < KP_METRICS_JOBS);
    atomic_fetch_add_explicit(&m->scheduler_runs[job][ok ? 1 : 0], 1, memory_order_relaxed);
}

void kp_metrics_outbox_delivered(kp_metrics *m, int channel, uint64_t sent, uint64_t failed,
                                 uint64_t dead)
{
    assert(channel > 0 && channel < KP_METRICS_CHANNELS);
    atomic_fetch_add_explicit(&m->outbox_sent[channel], sent, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->outbox_failed[channel], failed, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->outbox_dead[channel], dead, memory_order_relaxed);
}

void kp_metrics_outbox_dispatched(kp_metrics *m, uint64_t events)
{
    atomic_fetch_add_explicit(&m->outbox_dispatched, events, memory_order_relaxed);
}

/* HELP and TYPE lines of a metric. */
static void head(kp_buf *out, const char *name, const char *type, const char *help)
{
    kp_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void gauge(kp_buf *out, const char *name, const char *help, long long value)
{
    head(out, name, "gauge", help);
    kp_buf_printf(out, "%s %lld\n", name, value);
}

static void counter(kp_buf *out, const char *name, const char *help, uint64_t value)
{
    head(out, name, "counter", help);
    kp_buf_printf(out, "%s %llu\n", name, (unsigned long long)value);
}

/* A file's size in bytes; 0 when it does not exist. */
static long long file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long long)sb.st_size : 0;
}

static void write_requests(const kp_metrics *m, kp_buf *out)
{
    head(out, "kopilka_http_requests_total", "counter",
         "HTTP requests answered, by route pattern, method and status.");
    for (size_t r = 0; r < ROUTES; r++)
        for (size_t k = 0; k < METHODS; k++)
            for (size_t s = 0; s < STATUSES; s++) {
                uint64_t n = atomic_load_explicit(&m->requests[r][k][s], memory_order_relaxed);
                if (n == 0) continue;
                kp_buf_printf(out,
                              "kopilka_http_requests_total{route=\"%s\",method=\"%s\","
                              "status=\"",
                              routes[r], methods[k]);
                if (s + 1 < STATUSES)
                    kp_buf_printf(out, "%u", statuses[s]);
                else
                    kp_buf_puts(out, "other");
                kp_buf_printf(out, "\"} %llu\n", (unsigned long long)n);
            }
    head(out, "kopilka_http_request_duration_seconds", "histogram",
         "Time from a request's headers received to its answer queued, by route pattern.");
    for (size_t r = 0; r < ROUTES; r++) {
        const kp_histogram *h = &m->latency[r];
        bool seen = false;
        for (size_t i = 0; i <= h->n_bounds && !seen; i++)
            seen = atomic_load_explicit(&h->counts[i], memory_order_relaxed) > 0;
        if (!seen) continue;
        char labels[KP_ACCESS_ROUTE_MAX + 16];
        snprintf(labels, sizeof labels, "route=\"%s\"", routes[r]);
        kp_histogram_write(out, "kopilka_http_request_duration_seconds", labels, h, 1000000);
    }
}

/* The scheduler's runs by job and outcome. */
static void write_scheduler(const kp_metrics *m, kp_buf *out)
{
    head(out, "kopilka_scheduler_runs_total", "counter",
         "Jobs of the scheduler (expiry, the other clock-driven work), by outcome.");
    for (size_t j = 0; j < KP_METRICS_JOBS; j++)
        for (int ok = 1; ok >= 0; ok--)
            kp_buf_printf(out, "kopilka_scheduler_runs_total{job=\"%s\",outcome=\"%s\"} %llu\n",
                          job_names[j], ok ? "ok" : "error",
                          (unsigned long long)atomic_load_explicit(&m->scheduler_runs[j][ok],
                                                                   memory_order_relaxed));
}

/* The outbox: delivery counters by channel, and (when sampled) its depth
 * by channel and state, events pending and the oldest ages. */
static void write_outbox(const kp_metrics *m, const kp_metrics_sample *s, kp_buf *out)
{
    static const struct {
        const char *name, *help;
        size_t offset;
    } counters[] = {
        {"kopilka_outbox_sent_total", "Messages the providers accepted, by channel.",
         offsetof(kp_metrics, outbox_sent)},
        {"kopilka_outbox_failed_total",
         "Delivery attempts that failed (to be retried, or given up), by channel.",
         offsetof(kp_metrics, outbox_failed)},
        {"kopilka_outbox_dead_total",
         "Messages given up (attempts ran out, or refused for good), by channel.",
         offsetof(kp_metrics, outbox_dead)},
    };
    for (size_t i = 0; i < sizeof counters / sizeof counters[0]; i++) {
        head(out, counters[i].name, "counter", counters[i].help);
        const _Atomic uint64_t *v =
            (const _Atomic uint64_t *)((const char *)m + counters[i].offset);
        for (int c = 1; c < KP_METRICS_CHANNELS; c++)
            kp_buf_printf(out, "%s{channel=\"%s\"} %llu\n", counters[i].name, kp_channel_name(c),
                          (unsigned long long)atomic_load_explicit(&v[c], memory_order_relaxed));
    }
    counter(out, "kopilka_outbox_events_dispatched_total",
            "Notification events turned into messages (or found to need none).",
            atomic_load_explicit(&m->outbox_dispatched, memory_order_relaxed));
    const kp_outbox_stats *o = s->outbox;
    if (o == NULL) return;
    head(out, "kopilka_outbox_messages", "gauge",
         "Messages in the outbox now, by channel and state (sampled at most once a second).");
    for (int st = 0; st < 4; st++)
        for (int c = 1; c < KP_CHANNEL__COUNT; c++)
            kp_buf_printf(out, "kopilka_outbox_messages{channel=\"%s\",state=\"%s\"} %lld\n",
                          kp_channel_name(c), kp_message_state_name(st),
                          (long long)o->by_state[st][c]);
    gauge(out, "kopilka_outbox_events_pending",
          "Notification events not yet turned into messages.", (long long)o->events_pending);
    gauge(out, "kopilka_outbox_oldest_pending_message_age_seconds",
          "Age of the oldest pending message (0: none).",
          o->oldest_pending_at ? (long long)(s->now - o->oldest_pending_at) : 0);
    gauge(out, "kopilka_outbox_oldest_pending_event_age_seconds",
          "Age of the oldest event not yet dispatched (0: none).",
          o->oldest_event_at ? (long long)(s->now - o->oldest_event_at) : 0);
}

void kp_metrics_write(const kp_metrics *m, const kp_metrics_sample *s, kp_buf *out)
{
    head(out, "kopilka_build_info", "gauge", "The running build; the value is always 1.");
    kp_buf_printf(out, "kopilka_build_info{version=\"%s\"} 1\n", s->version);
    gauge(out, "kopilka_process_start_time_seconds",
          "When the server started, in seconds since the Unix epoch.", (long long)m->started);
    gauge(out, "kopilka_program_version",
          "The loyalty program's version the server runs (0: none is loaded).",
          (long long)s->program_version);
    gauge(out, "kopilka_storage_failed",
          "1 when storage failed and writes are refused until a restart, else 0.",
          s->writer.failed ? 1 : 0);
    write_requests(m, out);
    write_outbox(m, s, out);

    gauge(out, "kopilka_http_connections_open", "HTTP connections open now.",
          (long long)atomic_load_explicit(&m->connections_open, memory_order_relaxed));
    counter(out, "kopilka_http_connections_total", "HTTP connections accepted.",
            atomic_load_explicit(&m->connections_opened, memory_order_relaxed));
    counter(out, "kopilka_http_connections_refused_total",
            "Connections refused (503) by the per-address limit (--connections-per-address).",
            atomic_load_explicit(&m->connections_refused, memory_order_relaxed));
    counter(out, "kopilka_http_connections_timed_out_total",
            "Connections closed because a whole request did not arrive in time "
            "(--request-timeout).",
            atomic_load_explicit(&m->connections_timed_out, memory_order_relaxed));
    gauge(out, "kopilka_office_queue_depth",
          "Back-office requests waiting for an office thread now.", (long long)s->office_queued);

    const kp_writer_stats *w = &s->writer;
    counter(out, "kopilka_writer_groups_total", "Group commits the writer made.", w->groups);
    counter(out, "kopilka_writer_jobs_total", "Writes (purchases, returns, other jobs) run.",
            w->jobs);
    if (w->group_sizes) {
        head(out, "kopilka_writer_group_size", "histogram", "Writes per group commit.");
        kp_histogram_write(out, "kopilka_writer_group_size", "", w->group_sizes, 1);
    }
    gauge(out, "kopilka_writer_queue_depth", "Writes waiting for the writer now.",
          (long long)w->queued);
    counter(out, "kopilka_database_commits_total", "Commits of the database transaction.",
            w->database_commits);
    counter(out, "kopilka_oplog_syncs_total",
            "Sync rounds (fdatasync) of the operation log and the database journal.", w->log_syncs);
    counter(out, "kopilka_oplog_written_bytes_total",
            "Bytes of operations appended to the operation log.", w->log_bytes);

    /* A database server's own size is its to report (pg_database_size, a
     * PostgreSQL exporter); these series are of the SQLite files. */
    if (!kp_store_is_file(s->db_path)) {
        write_scheduler(m, out);
        return;
    }
    char path[4096 + 16];
    snprintf(path, sizeof path, "%s.oplog-0", s->db_path);
    long long oplog = file_size(path);
    snprintf(path, sizeof path, "%s.oplog-1", s->db_path);
    oplog += file_size(path);
    gauge(out, "kopilka_oplog_size_bytes", "Size of the operation log's two files.", oplog);
    gauge(out, "kopilka_database_size_bytes", "Size of the database file.", file_size(s->db_path));
    snprintf(path, sizeof path, "%s-wal", s->db_path);
    gauge(out, "kopilka_database_wal_size_bytes", "Size of the database's write-ahead log.",
          file_size(path));

    write_scheduler(m, out);
}
