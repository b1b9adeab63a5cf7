/*
 * loadgen.c - HTTP/1.1 load generator for Kopilka's POS API, closed loop or
 * at a fixed rate.
 *
 * Every connection is a simulated till: it keeps one keep-alive connection to
 * the server and has at most one `POST /v1/purchases` outstanding (no
 * pipelining). Closed loop (the default): when the answer arrives it records
 * the latency and sends the next purchase at once, so the rate is whatever
 * the server sustains. Open loop (`--rate R`): purchases are due at fixed
 * times, R a second over all connections (each thread a share in proportion
 * to its connections); a due purchase goes out on the first idle connection,
 * and its latency runs from the time it was due, not from when it could be
 * sent, so a server that falls behind shows its queue in the figures instead
 * of slowing the generator down (no "coordinated omission"). The body is the PostgreSQL peer's workload
 * (shared/peers/postgres/purchase.pgbench): a random card, a labour line of
 * 10000..2000000 minor units, a parts line of 0..5000000 and a burn request
 * of 0..500 points; the receipt number is unique per request
 * ("b<run-id>-<conn>-<n>"), so every 2xx is a new purchase.
 *
 * Depends on libc only (Linux: epoll, POSIX threads). Bounded by design: it
 * stops after --warmup + --seconds, never connects anywhere but loopback,
 * caps connections, response sizes and threads.
 *
 * Output (stdout), the four lines scripts parse being:
 *     purchases/s: N     2xx answers in the measured window / seconds
 *     p50 ms: X          latency of those 2xx answers (send start -> last byte;
 *     p99 ms: Y          with --rate, due time -> last byte)
 *     errors: N          non-2xx answers + transport failures, whole run
 * and before them `latency ms: p50 X  p99 Y  p99.9 Z  max W` (the same
 * samples). In closed loop the window holds the answers that arrived in it;
 * with --rate, the purchases that were due in it (answered up to
 * DRAIN_US after its end; one still unanswered then counts with its latency
 * so far, a lower bound, and is reported as late).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_rng.h"

/* Limits: everything the generator allocates or loops over has a cap. */
enum {
    CONNECTIONS_MAX = 4096,
    THREADS_MAX = 2,
    CARDS_MAX = 10 * 1000 * 1000,
    CARD_LEN_MAX = 64,
    KEY_LEN_MAX = 512,
    REQUEST_LEN_MAX = 2048,
    RESPONSE_HEAD_MAX = 64 * 1024,
    RESPONSE_LEN_MAX = 8 * 1024 * 1024,
    RECV_BUF_INITIAL = 16 * 1024,
    EVENTS_BATCH = 256,
    RECONNECT_DELAY_US = 10 * 1000,
    STATUS_CODES = 600,
    RATE_MAX = 1000 * 1000,
    DRAIN_US = 5 * 1000 * 1000, /* --rate: how long the window's last purchases may take */
};

/*
 * Latency histogram: one bucket per microsecond below one second, then one
 * bucket per millisecond up to a minute; slower answers land in the last one.
 */
enum {
    HIST_US_BUCKETS = 1000 * 1000,
    HIST_MS_BUCKETS = 60 * 1000,
    HIST_BUCKETS = HIST_US_BUCKETS + HIST_MS_BUCKETS,
};

/* Options as parsed from the command line. */
struct options {
    char host[64];
    struct sockaddr_storage addr;
    socklen_t addr_len;
    int port;
    const char *key;
    const char *cards_path;
    int connections;
    int threads;
    double seconds;
    double warmup;
    double rate;     /* purchases a second over all connections; 0 = closed loop */
    char run_id[32];
};

/* Cards read from --cards: one owned block of NUL-terminated strings. */
struct cards {
    char *text;
    const char **numbers;
    size_t count;
};

enum conn_state {
    CONN_CLOSED,     /* no socket; reconnects at reconnect_at_us */
    CONN_CONNECTING, /* non-blocking connect in progress */
    CONN_SENDING,    /* request partly written */
    CONN_RECEIVING,  /* request written, waiting for the whole answer */
    CONN_IDLE,       /* --rate: open, waiting for the next due purchase */
};

/* One simulated till. The buffers belong to the connection. */
struct conn {
    int id;
    int fd;
    enum conn_state state;
    uint64_t rng;
    uint64_t sequence;       /* requests sent so far: the receipt's <n> */
    char request[REQUEST_LEN_MAX];
    size_t request_len;
    size_t request_sent;
    int64_t request_start_us; /* when it was sent, or with --rate when it was due */
    bool idle_listed;         /* --rate: on the worker's idle stack */
    char *recv_buf;
    size_t recv_len;
    size_t recv_cap;
    size_t head_scan_from;   /* where to resume looking for CRLFCRLF */
    int64_t reconnect_at_us;
};

/* Counters of one thread, summed at the end. */
struct stats {
    uint64_t ok_measured;        /* 2xx inside the measured window */
    uint64_t responses_measured; /* all answers inside the window */
    uint64_t ok_total;
    uint64_t http_errors;        /* non-2xx answers, whole run */
    uint64_t transport_errors;   /* connect/reset/EOF/protocol, whole run */
    uint64_t server_closes;      /* "Connection: close" answers */
    uint64_t status[STATUS_CODES];
    uint32_t *hist;              /* HIST_BUCKETS counters, 2xx in window */
    uint64_t latency_count;      /* samples in hist (2xx, and late ones with --rate) */
    uint64_t late;               /* --rate: due in the window, unanswered at the drain's end */
    int64_t latency_us_max;
    uint64_t latency_us_sum;
    /* --rate: how late each purchase due in the window left (due -> first
     * byte sent): the generator's own queue and scheduling, apart from the
     * server's. HIST_BUCKETS counters. */
    uint32_t *lag_hist;
    uint64_t lag_count;
    int64_t lag_us_max;
};

struct worker {
    pthread_t thread;
    const struct options *opt;
    const struct cards *cards;
    struct conn *conns;
    int conn_count;
    int epoll_fd;
    int64_t measure_start_us;
    int64_t measure_end_us;
    /* --rate only: purchase k of this thread is due at origin + k * interval;
     * idle connections wait on a stack for the next one due. */
    double interval_us;
    int64_t origin_us;
    uint64_t next_slot;
    int64_t drain_end_us;
    struct conn **idle;
    int idle_count;
    struct stats stats;
    char failure[160];           /* set when the thread itself failed */
};

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void usage(FILE *out)
{
    fputs("usage: loadgen --key KEY --cards FILE [--host 127.0.0.1] [--port 8080]\n"
          "               [--connections 64] [--seconds 10] [--warmup 1]\n"
          "               [--threads 1] [--run-id ID] [--rate PER_SECOND]\n"
          "Sends POST /v1/purchases over keep-alive connections, one request\n"
          "in flight per connection, to a loopback address only: as fast as\n"
          "answers come back, or with --rate at that fixed rate, latency\n"
          "counted from each purchase's due time.\n",
          out);
}

/* Parses a whole decimal integer in [lo, hi]; false on anything else. */
static bool parse_long(const char *text, long lo, long hi, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static bool parse_double(const char *text, double lo, double hi, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !(v >= lo && v <= hi))
        return false;
    *out = v;
    return true;
}

/*
 * Accepts 127.0.0.0/8, ::1 or "localhost" and fills opt->addr; refuses every
 * other host, so the generator can never be pointed at someone else's server.
 */
static bool resolve_loopback(struct options *opt)
{
    const char *h = opt->host;
    if (strcmp(h, "localhost") == 0)
        h = "127.0.0.1";
    struct sockaddr_in *v4 = (struct sockaddr_in *)&opt->addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&opt->addr;
    memset(&opt->addr, 0, sizeof opt->addr);
    if (inet_pton(AF_INET, h, &v4->sin_addr) == 1) {
        if ((ntohl(v4->sin_addr.s_addr) >> 24) != 127)
            return false;
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)opt->port);
        opt->addr_len = sizeof *v4;
        return true;
    }
    if (inet_pton(AF_INET6, h, &v6->sin6_addr) == 1) {
        if (!IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr))
            return false;
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)opt->port);
        opt->addr_len = sizeof *v6;
        return true;
    }
    return false;
}

/* A token that can go into a header or a JSON string without escaping. */
static bool plain_token(const char *s, size_t len_max)
{
    size_t n = strlen(s);
    if (n == 0 || n > len_max)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == '"' || c == '\\')
            return false;
    }
    return true;
}

static bool parse_options(int argc, char **argv, struct options *opt)
{
    memset(opt, 0, sizeof *opt);
    snprintf(opt->host, sizeof opt->host, "127.0.0.1");
    opt->port = 8080;
    opt->connections = 64;
    opt->threads = 1;
    opt->seconds = 10;
    opt->warmup = 1;
    snprintf(opt->run_id, sizeof opt->run_id, "%lx%x",
             (unsigned long)time(NULL), (unsigned)getpid());

    for (int i = 1; i < argc; i++) {
        const char *name = argv[i];
        if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        /* Accept both "--name value" and "--name=value". */
        char name_buf[32];
        const char *value = NULL;
        const char *eq = strchr(name, '=');
        if (eq != NULL && (size_t)(eq - name) < sizeof name_buf) {
            memcpy(name_buf, name, (size_t)(eq - name));
            name_buf[eq - name] = '\0';
            name = name_buf;
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        }
        if (value == NULL) {
            fprintf(stderr, "loadgen: %s needs a value\n", name);
            return false;
        }
        long n = 0;
        if (strcmp(name, "--host") == 0) {
            if (strlen(value) >= sizeof opt->host) {
                fprintf(stderr, "loadgen: --host too long\n");
                return false;
            }
            snprintf(opt->host, sizeof opt->host, "%s", value);
        } else if (strcmp(name, "--port") == 0) {
            if (!parse_long(value, 1, 65535, &n)) {
                fprintf(stderr, "loadgen: --port must be 1..65535\n");
                return false;
            }
            opt->port = (int)n;
        } else if (strcmp(name, "--key") == 0) {
            opt->key = value;
        } else if (strcmp(name, "--cards") == 0) {
            opt->cards_path = value;
        } else if (strcmp(name, "--connections") == 0) {
            if (!parse_long(value, 1, CONNECTIONS_MAX, &n)) {
                fprintf(stderr, "loadgen: --connections must be 1..%d\n", CONNECTIONS_MAX);
                return false;
            }
            opt->connections = (int)n;
        } else if (strcmp(name, "--threads") == 0) {
            if (!parse_long(value, 1, THREADS_MAX, &n)) {
                fprintf(stderr, "loadgen: --threads must be 1..%d\n", THREADS_MAX);
                return false;
            }
            opt->threads = (int)n;
        } else if (strcmp(name, "--seconds") == 0) {
            if (!parse_double(value, 0.1, 3600, &opt->seconds)) {
                fprintf(stderr, "loadgen: --seconds must be 0.1..3600\n");
                return false;
            }
        } else if (strcmp(name, "--warmup") == 0) {
            if (!parse_double(value, 0, 600, &opt->warmup)) {
                fprintf(stderr, "loadgen: --warmup must be 0..600\n");
                return false;
            }
        } else if (strcmp(name, "--rate") == 0) {
            if (!parse_double(value, 0.1, RATE_MAX, &opt->rate)) {
                fprintf(stderr, "loadgen: --rate must be 0.1..%d purchases a second\n", RATE_MAX);
                return false;
            }
        } else if (strcmp(name, "--run-id") == 0) {
            if (!plain_token(value, sizeof opt->run_id - 1)) {
                fprintf(stderr, "loadgen: --run-id must be 1..%zu plain characters\n",
                        sizeof opt->run_id - 1);
                return false;
            }
            snprintf(opt->run_id, sizeof opt->run_id, "%s", value);
        } else {
            fprintf(stderr, "loadgen: unknown option %s\n", name);
            usage(stderr);
            return false;
        }
    }
    if (opt->key == NULL || opt->cards_path == NULL) {
        fprintf(stderr, "loadgen: --key and --cards are required\n");
        usage(stderr);
        return false;
    }
    if (!plain_token(opt->key, KEY_LEN_MAX)) {
        fprintf(stderr, "loadgen: --key must be 1..%d printable characters without spaces\n",
                KEY_LEN_MAX);
        return false;
    }
    if (!resolve_loopback(opt)) {
        fprintf(stderr, "loadgen: refusing host %s: only loopback (127.0.0.0/8, ::1, "
                        "localhost) is allowed\n", opt->host);
        return false;
    }
    if (opt->threads > opt->connections)
        opt->threads = opt->connections;
    return true;
}

/*
 * Reads one card number per line (blank lines and surrounding whitespace
 * ignored). On success the caller owns cards->text and cards->numbers.
 */
static bool cards_load(const char *path, struct cards *cards)
{
    memset(cards, 0, sizeof *cards);
    bool ok = false;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "loadgen: %s: %s\n", path, strerror(errno));
        return false;
    }
    size_t cap = 1 << 20, len = 0;
    char *text = malloc(cap);
    size_t count_cap = 1024;
    const char **numbers = malloc(count_cap * sizeof *numbers);
    if (text == NULL || numbers == NULL)
        goto out_of_memory;
    for (;;) {
        if (len + 1 >= cap) {
            if (cap >= (size_t)CARDS_MAX * (CARD_LEN_MAX + 2)) {
                fprintf(stderr, "loadgen: %s: file too large\n", path);
                goto out;
            }
            char *bigger = realloc(text, cap * 2);
            if (bigger == NULL)
                goto out_of_memory;
            text = bigger;
            cap *= 2;
        }
        size_t got = fread(text + len, 1, cap - len - 1, f);
        if (got == 0)
            break;
        len += got;
    }
    if (ferror(f)) {
        fprintf(stderr, "loadgen: %s: read error\n", path);
        goto out;
    }
    text[len] = '\0';
    /* Split into lines in place; numbers point into text. */
    size_t count = 0, line_no = 0;
    for (char *line = text; line < text + len;) {
        char *nl = memchr(line, '\n', (size_t)(text + len - line));
        char *end = nl != NULL ? nl : text + len;
        line_no++;
        char *next = nl != NULL ? nl + 1 : text + len;
        while (line < end && (*line == ' ' || *line == '\t' || *line == '\r'))
            line++;
        while (end > line && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
            end--;
        *end = '\0';
        if (end > line) {
            if (!plain_token(line, CARD_LEN_MAX)) {
                fprintf(stderr, "loadgen: %s:%zu: not a card number\n", path, line_no);
                goto out;
            }
            if (count == CARDS_MAX) {
                fprintf(stderr, "loadgen: %s: more than %d cards\n", path, CARDS_MAX);
                goto out;
            }
            if (count == count_cap) {
                const char **bigger = realloc(numbers, count_cap * 2 * sizeof *numbers);
                if (bigger == NULL)
                    goto out_of_memory;
                numbers = bigger;
                count_cap *= 2;
            }
            numbers[count++] = line;
        }
        line = next;
    }
    if (count == 0) {
        fprintf(stderr, "loadgen: %s: no card numbers\n", path);
        goto out;
    }
    cards->text = text;
    cards->numbers = numbers;
    cards->count = count;
    text = NULL;
    numbers = NULL;
    ok = true;
    goto out;
out_of_memory:
    fprintf(stderr, "loadgen: out of memory reading %s\n", path);
out:
    free(text);
    free(numbers);
    fclose(f);
    return ok;
}

/* The histogram bucket of a latency of `us` (>= 0). */
static size_t hist_bucket(int64_t us)
{
    size_t bucket = us < HIST_US_BUCKETS
        ? (size_t)us
        : HIST_US_BUCKETS + (size_t)((us - HIST_US_BUCKETS) / 1000);
    return bucket < HIST_BUCKETS ? bucket : HIST_BUCKETS - 1;
}

/* Writes the next purchase into c->request. */
static bool conn_build_request(struct worker *w, struct conn *c)
{
    const struct options *opt = w->opt;
    const char *card = w->cards->numbers[rng_next(&c->rng) % w->cards->count];
    uint64_t burn = rng_range(&c->rng, 0, 500);
    uint64_t labor = rng_range(&c->rng, 10000, 2000000);
    uint64_t parts = rng_range(&c->rng, 0, 5000000);
    char body[512];
    int body_len = snprintf(body, sizeof body,
        "{\"card\":\"%s\",\"receipt\":\"b%s-%d-%" PRIu64 "\",\"burn\":%" PRIu64 ","
        "\"lines\":[{\"sku\":\"L\",\"category\":\"labor\",\"amount\":%" PRIu64 "},"
        "{\"sku\":\"P\",\"category\":\"parts\",\"amount\":%" PRIu64 "}]}",
        card, opt->run_id, c->id, c->sequence, burn, labor, parts);
    if (body_len < 0 || (size_t)body_len >= sizeof body)
        return false;
    int len = snprintf(c->request, sizeof c->request,
        "POST /v1/purchases HTTP/1.1\r\n"
        "Host: %s:%d\r\n"
        "Authorization: Bearer %s\r\n"
        "Content-Type: application/json\r\n"
        "Content-Length: %d\r\n"
        "\r\n"
        "%s",
        opt->host, opt->port, opt->key, body_len, body);
    if (len < 0 || (size_t)len >= sizeof c->request)
        return false;
    c->sequence++;
    c->request_len = (size_t)len;
    c->request_sent = 0;
    return true;
}

static void conn_close(struct worker *w, struct conn *c, int64_t reconnect_delay_us)
{
    if (c->fd >= 0) {
        epoll_ctl(w->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->state = CONN_CLOSED;
    c->recv_len = 0;
    c->head_scan_from = 0;
    c->reconnect_at_us = now_us() + reconnect_delay_us;
}

/* A transport failure: counted as an error, the till reconnects shortly. */
static void conn_fail(struct worker *w, struct conn *c)
{
    w->stats.transport_errors++;
    conn_close(w, c, RECONNECT_DELAY_US);
}

static void conn_send(struct worker *w, struct conn *c)
{
    while (c->request_sent < c->request_len) {
        ssize_t n = send(c->fd, c->request + c->request_sent,
                         c->request_len - c->request_sent, MSG_NOSIGNAL);
        if (n > 0) {
            c->request_sent += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return; /* EPOLLOUT (edge-triggered) will call us again */
        conn_fail(w, c);
        return;
    }
    c->state = CONN_RECEIVING;
}

/* Starts the next request on an open connection; its latency will count
 * from `start_us` (now, or with --rate the time it was due). */
static void conn_start_request(struct worker *w, struct conn *c, int64_t start_us)
{
    if (!conn_build_request(w, c)) {
        snprintf(w->failure, sizeof w->failure, "request does not fit %d bytes",
                 REQUEST_LEN_MAX);
        conn_close(w, c, INT64_MAX / 2);
        return;
    }
    c->state = CONN_SENDING;
    c->request_start_us = start_us;
    if (w->stats.lag_hist != NULL && start_us >= w->measure_start_us &&
        start_us < w->measure_end_us) {
        int64_t lag = now_us() - start_us;
        if (lag < 0)
            lag = 0;
        w->stats.lag_hist[hist_bucket(lag)]++;
        w->stats.lag_count++;
        if (lag > w->stats.lag_us_max)
            w->stats.lag_us_max = lag;
    }
    conn_send(w, c);
}

/* When this thread's purchase number `slot` is due (--rate). */
static int64_t slot_due_us(const struct worker *w, uint64_t slot)
{
    return w->origin_us + (int64_t)((double)slot * w->interval_us);
}

/* --rate: sends every purchase that is due and within the window on idle
 * connections, oldest first; what finds no idle connection waits for one. */
static void rate_dispatch(struct worker *w, int64_t t)
{
    while (w->idle_count > 0) {
        int64_t due = slot_due_us(w, w->next_slot);
        if (due > t || due >= w->measure_end_us)
            return;
        struct conn *c = w->idle[--w->idle_count];
        c->idle_listed = false;
        if (c->state != CONN_IDLE)
            continue; /* closed since it was listed */
        w->next_slot++;
        conn_start_request(w, c, due);
    }
}

/* --rate: an open connection with nothing outstanding waits for the next
 * due purchase (sent at once if one is overdue). */
static void conn_make_idle(struct worker *w, struct conn *c)
{
    c->state = CONN_IDLE;
    if (!c->idle_listed) {
        c->idle_listed = true;
        w->idle[w->idle_count++] = c;
    }
    rate_dispatch(w, now_us());
}

/* An open connection is ready for a request: the next one at once in closed
 * loop, or the next due one with --rate. */
static void conn_ready(struct worker *w, struct conn *c)
{
    if (w->opt->rate > 0)
        conn_make_idle(w, c);
    else
        conn_start_request(w, c, now_us());
}

static void conn_open(struct worker *w, struct conn *c)
{
    const struct options *opt = w->opt;
    int fd = socket(opt->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        w->stats.transport_errors++;
        c->reconnect_at_us = now_us() + RECONNECT_DELAY_US;
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = fd;
    c->recv_len = 0;
    c->head_scan_from = 0;
    struct epoll_event ev = {
        .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
        .data.ptr = c,
    };
    if (epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        conn_fail(w, c);
        return;
    }
    int rc = connect(fd, (const struct sockaddr *)&opt->addr, opt->addr_len);
    if (rc == 0) {
        conn_ready(w, c);
    } else if (errno == EINPROGRESS) {
        c->state = CONN_CONNECTING;
    } else {
        conn_fail(w, c);
    }
}

/* Case-insensitive "does the header value contain this token". */
static bool value_has_token(const char *v, size_t n, const char *token)
{
    size_t t = strlen(token);
    for (size_t i = 0; i + t <= n; i++)
        if (strncasecmp(v + i, token, t) == 0)
            return true;
    return false;
}

/* Parses a chunked body starting at p; returns its length once complete,
 * 0 if more bytes are needed, -1 if malformed. */
static ssize_t chunked_length(const char *p, size_t avail)
{
    size_t pos = 0;
    for (;;) {
        const char *nl = memmem(p + pos, avail - pos, "\r\n", 2);
        if (nl == NULL)
            return avail - pos > 64 ? -1 : 0;
        size_t size = 0;
        const char *q = p + pos;
        int digits = 0;
        for (; q < nl; q++, digits++) {
            int d;
            if (*q >= '0' && *q <= '9') d = *q - '0';
            else if (*q >= 'a' && *q <= 'f') d = *q - 'a' + 10;
            else if (*q >= 'A' && *q <= 'F') d = *q - 'A' + 10;
            else break;
            if (size > RESPONSE_LEN_MAX)
                return -1;
            size = size * 16 + (size_t)d;
        }
        if (digits == 0)
            return -1;
        pos = (size_t)(nl - p) + 2;
        if (size == 0) {
            /* Trailers, then an empty line. */
            for (;;) {
                const char *end = memmem(p + pos, avail - pos, "\r\n", 2);
                if (end == NULL)
                    return 0;
                size_t line_len = (size_t)(end - (p + pos));
                pos += line_len + 2;
                if (line_len == 0)
                    return (ssize_t)pos;
            }
        }
        if (pos + size + 2 > avail)
            return 0;
        if (p[pos + size] != '\r' || p[pos + size + 1] != '\n')
            return -1;
        pos += size + 2;
    }
}

/* Result of looking at the receive buffer. */
struct response {
    int status;
    size_t length;      /* head + body */
    bool close_after;
};

/*
 * Returns 1 with *r filled when the buffer holds a whole answer, 0 if more
 * bytes are needed, -1 on a protocol error.
 */
static int parse_response(struct conn *c, struct response *r)
{
    const char *buf = c->recv_buf;
    size_t scan = c->head_scan_from > 3 ? c->head_scan_from - 3 : 0;
    const char *end = c->recv_len >= 4
        ? memmem(buf + scan, c->recv_len - scan, "\r\n\r\n", 4) : NULL;
    if (end == NULL) {
        c->head_scan_from = c->recv_len;
        return c->recv_len > RESPONSE_HEAD_MAX ? -1 : 0;
    }
    size_t head_len = (size_t)(end - buf) + 4;
    /* Status line: HTTP/1.x SP 3DIGIT SP reason */
    if (head_len < 12 || memcmp(buf, "HTTP/1.", 7) != 0 ||
        (buf[7] != '0' && buf[7] != '1') || buf[8] != ' ')
        return -1;
    int status = 0;
    for (int i = 9; i < 12; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            return -1;
        status = status * 10 + (buf[i] - '0');
    }
    if (status < 100 || status >= STATUS_CODES)
        return -1;
    bool http10 = buf[7] == '0';
    bool keep_alive = false, close_after = http10, chunked = false, have_length = false;
    size_t content_length = 0;
    const char *line = (const char *)memchr(buf, '\n', head_len) + 1;
    const char *head_end = buf + head_len - 2; /* the final empty line */
    while (line < head_end) {
        const char *eol = memmem(line, (size_t)(head_end - line) + 2, "\r\n", 2);
        if (eol == NULL)
            return -1;
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        if (colon == NULL)
            return -1;
        size_t name_len = (size_t)(colon - line);
        const char *v = colon + 1;
        while (v < eol && (*v == ' ' || *v == '\t'))
            v++;
        size_t v_len = (size_t)(eol - v);
        while (v_len > 0 && (v[v_len - 1] == ' ' || v[v_len - 1] == '\t'))
            v_len--;
        if (name_len == 14 && strncasecmp(line, "Content-Length", 14) == 0) {
            size_t n = 0;
            if (v_len == 0)
                return -1;
            for (size_t i = 0; i < v_len; i++) {
                if (v[i] < '0' || v[i] > '9' || n > RESPONSE_LEN_MAX)
                    return -1;
                n = n * 10 + (size_t)(v[i] - '0');
            }
            if (have_length && n != content_length)
                return -1;
            have_length = true;
            content_length = n;
        } else if (name_len == 17 && strncasecmp(line, "Transfer-Encoding", 17) == 0) {
            chunked = value_has_token(v, v_len, "chunked");
        } else if (name_len == 10 && strncasecmp(line, "Connection", 10) == 0) {
            if (value_has_token(v, v_len, "close"))
                close_after = true;
            if (value_has_token(v, v_len, "keep-alive"))
                keep_alive = true;
        }
        line = eol + 2;
    }
    if (http10 && keep_alive)
        close_after = false;
    size_t total;
    if (chunked) {
        ssize_t body = chunked_length(buf + head_len, c->recv_len - head_len);
        if (body < 0)
            return -1;
        if (body == 0)
            return c->recv_len > RESPONSE_LEN_MAX ? -1 : 0;
        total = head_len + (size_t)body;
    } else if (have_length) {
        if (content_length > RESPONSE_LEN_MAX)
            return -1;
        total = head_len + content_length;
    } else if (status < 200 || status == 204 || status == 304) {
        total = head_len;
    } else {
        return -1; /* body delimited by close: not keep-alive, not supported */
    }
    if (c->recv_len < total)
        return 0;
    r->status = status;
    r->length = total;
    r->close_after = close_after;
    return 1;
}

static void record_latency(struct stats *s, int64_t us)
{
    if (us < 0)
        us = 0;
    s->hist[hist_bucket(us)]++;
    s->latency_count++;
    s->latency_us_sum += (uint64_t)us;
    if (us > s->latency_us_max)
        s->latency_us_max = us;
}

/*
 * Consumes every whole answer in the buffer and starts the next request.
 * `peer_closed` says the server closed after the bytes in the buffer: the
 * answer still counts, and the till reconnects as after "Connection: close".
 */
static void conn_handle_input(struct worker *w, struct conn *c, bool peer_closed)
{
    for (;;) {
        struct response r;
        int rc = parse_response(c, &r);
        if (rc == 0)
            return;
        if (rc < 0 || c->state != CONN_RECEIVING) {
            /* Garbage, or an answer we did not ask for yet. A server may
             * answer early (e.g. 413) while we still send: accept that only
             * as a final answer with close. */
            if (rc > 0 && r.status >= 400 && r.close_after) {
                w->stats.http_errors++;
                w->stats.status[r.status]++;
                conn_close(w, c, RECONNECT_DELAY_US);
                return;
            }
            conn_fail(w, c);
            return;
        }
        int64_t t = now_us();
        bool rate = w->opt->rate > 0;
        /* Closed loop: answers that arrived in the window; --rate: purchases
         * that were due in it, whenever answered. */
        int64_t when = rate ? c->request_start_us : t;
        bool measured = when >= w->measure_start_us && when < w->measure_end_us;
        struct stats *s = &w->stats;
        s->status[r.status]++;
        if (r.status >= 100 && r.status < 200) {
            /* Interim answer: the final one follows on the same request. */
            memmove(c->recv_buf, c->recv_buf + r.length, c->recv_len - r.length);
            c->recv_len -= r.length;
            c->head_scan_from = 0;
            continue;
        }
        if (r.status >= 200 && r.status < 300) {
            s->ok_total++;
            if (measured) {
                s->ok_measured++;
                record_latency(s, t - c->request_start_us);
            }
        } else {
            s->http_errors++;
        }
        if (measured)
            s->responses_measured++;
        if (c->recv_len != r.length) {
            /* Bytes after the answer while nothing else is outstanding. */
            conn_fail(w, c);
            return;
        }
        c->recv_len = 0;
        c->head_scan_from = 0;
        int64_t open_until_us = rate ? w->drain_end_us : w->measure_end_us;
        if (r.close_after || peer_closed) {
            s->server_closes++;
            conn_close(w, c, 0);
            if (t < open_until_us)
                conn_open(w, c);
            return;
        }
        if (t >= open_until_us)
            conn_close(w, c, INT64_MAX / 2);
        else if (rate)
            conn_make_idle(w, c);
        else
            conn_start_request(w, c, now_us());
        return;
    }
}

/* Drains the socket (edge-triggered); false if the connection was closed. */
static bool conn_read(struct worker *w, struct conn *c)
{
    for (;;) {
        if (c->recv_len == c->recv_cap) {
            if (c->recv_cap >= RESPONSE_LEN_MAX + RESPONSE_HEAD_MAX) {
                conn_fail(w, c);
                return false;
            }
            size_t cap = c->recv_cap * 2;
            char *bigger = realloc(c->recv_buf, cap);
            if (bigger == NULL) {
                conn_fail(w, c);
                return false;
            }
            c->recv_buf = bigger;
            c->recv_cap = cap;
        }
        size_t room = c->recv_cap - c->recv_len;
        ssize_t n = recv(c->fd, c->recv_buf + c->recv_len, room, 0);
        if (n > 0) {
            c->recv_len += (size_t)n;
            /* A short read on a stream socket means it is drained (epoll(7)):
             * the next arrival, or the peer's FIN, raises a new edge. This
             * saves one recv() per answer. */
            if ((size_t)n < room)
                return true;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return true;
        /* EOF or reset. A whole answer that arrived first still counts; an
         * idle connection the server closes (keep-alive timeout) just
         * reconnects, as after "Connection: close". */
        if (n == 0 && c->recv_len == 0 && c->state == CONN_IDLE) {
            w->stats.server_closes++;
            conn_close(w, c, 0);
            return false;
        }
        if (n == 0 && c->recv_len > 0 && c->state == CONN_RECEIVING) {
            struct response r;
            if (parse_response(c, &r) == 1 && r.length == c->recv_len) {
                conn_handle_input(w, c, true);
                return false;
            }
        }
        conn_fail(w, c);
        return false;
    }
}

static void conn_event(struct worker *w, struct conn *c, uint32_t events)
{
    if (c->state == CONN_CONNECTING) {
        if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
            return;
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
            conn_fail(w, c);
            return;
        }
        conn_ready(w, c);
        if (c->fd < 0)
            return;
    } else if (c->state == CONN_SENDING && (events & EPOLLOUT)) {
        conn_send(w, c);
        if (c->fd < 0)
            return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        if (!conn_read(w, c))
            return;
        if (c->recv_len > 0)
            conn_handle_input(w, c, false);
    }
}

/* --rate: is anything of the window still to send or to answer? */
static bool rate_pending(const struct worker *w)
{
    if (slot_due_us(w, w->next_slot) < w->measure_end_us)
        return true;
    for (int i = 0; i < w->conn_count; i++)
        if (w->conns[i].state == CONN_SENDING || w->conns[i].state == CONN_RECEIVING)
            return true;
    return false;
}

/* --rate, at the drain's end: purchases due in the window and not answered
 * count as late, with the latency they have so far (a lower bound). */
static void rate_count_late(struct worker *w, int64_t t)
{
    for (int i = 0; i < w->conn_count; i++) {
        struct conn *c = &w->conns[i];
        if ((c->state == CONN_SENDING || c->state == CONN_RECEIVING) &&
            c->request_start_us >= w->measure_start_us &&
            c->request_start_us < w->measure_end_us) {
            w->stats.late++;
            record_latency(&w->stats, t - c->request_start_us);
        }
    }
    for (;; w->next_slot++) {
        int64_t due = slot_due_us(w, w->next_slot);
        if (due >= w->measure_end_us)
            break;
        if (due >= w->measure_start_us) {
            w->stats.late++;
            record_latency(&w->stats, t - due);
        }
    }
}

/* Waits for events until `wake_us` at the latest: to the microsecond with
 * --rate (a due purchase must not wait for the next millisecond). */
static int worker_wait(struct worker *w, struct epoll_event *events, int64_t wait_us)
{
    if (wait_us < 0)
        wait_us = 0;
    if (w->opt->rate > 0) {
        struct timespec ts = {
            .tv_sec = (time_t)(wait_us / 1000000),
            .tv_nsec = (long)(wait_us % 1000000) * 1000,
        };
        int n = epoll_pwait2(w->epoll_fd, events, EVENTS_BATCH, &ts, NULL);
        if (n >= 0 || errno != ENOSYS)
            return n;
    }
    int timeout_ms = (int)((wait_us + 999) / 1000);
    return epoll_wait(w->epoll_fd, events, EVENTS_BATCH, timeout_ms);
}

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    struct epoll_event events[EVENTS_BATCH];
    bool rate = w->opt->rate > 0;
    if (rate)
        prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL); /* wake when due, not 50 µs later */
    /* With --rate the connections stay open past the window until what was
     * due in it is answered, or DRAIN_US have passed. */
    int64_t end_us = rate ? w->drain_end_us : w->measure_end_us;
    for (int i = 0; i < w->conn_count; i++)
        conn_open(w, &w->conns[i]);
    for (;;) {
        int64_t t = now_us();
        if (t >= end_us || w->failure[0] != '\0')
            break;
        if (rate) {
            if (t >= w->measure_end_us && !rate_pending(w))
                break;
            rate_dispatch(w, t);
        }
        /* Reopen connections whose back-off is over; find the next one. */
        int64_t wake_us = end_us;
        if (rate && t < w->measure_end_us)
            wake_us = w->measure_end_us; /* then see whether anything is pending */
        if (rate && w->idle_count > 0) {
            int64_t due = slot_due_us(w, w->next_slot);
            if (due < w->measure_end_us && due < wake_us)
                wake_us = due;
        }
        for (int i = 0; i < w->conn_count; i++) {
            struct conn *c = &w->conns[i];
            if (c->state != CONN_CLOSED)
                continue;
            if (c->reconnect_at_us <= t)
                conn_open(w, c);
            if (c->state == CONN_CLOSED && c->reconnect_at_us < wake_us)
                wake_us = c->reconnect_at_us;
        }
        int n = worker_wait(w, events, wake_us - t);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            snprintf(w->failure, sizeof w->failure, "epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++)
            conn_event(w, events[i].data.ptr, events[i].events);
    }
    if (rate)
        rate_count_late(w, now_us());
    return NULL;
}

/* The smallest latency (µs) such that at least `fraction` of samples are at
 * or below it; -1 without samples. */
static int64_t percentile_us(const uint32_t *hist, uint64_t count, double fraction)
{
    if (count == 0)
        return -1;
    uint64_t rank = (uint64_t)(fraction * (double)count);
    if ((double)rank < fraction * (double)count)
        rank++;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        seen += hist[i];
        if (seen >= rank)
            return i < HIST_US_BUCKETS
                ? (int64_t)i
                : HIST_US_BUCKETS + (int64_t)(i - HIST_US_BUCKETS) * 1000;
    }
    return -1;
}

static double ms(int64_t us)
{
    return us < 0 ? 0.0 : (double)us / 1000.0;
}

int main(int argc, char **argv)
{
    struct options opt;
    if (!parse_options(argc, argv, &opt))
        return 2;
    struct cards cards;
    if (!cards_load(opt.cards_path, &cards))
        return 2;
    signal(SIGPIPE, SIG_IGN);

    int exit_code = 1;
    struct conn *conns = calloc((size_t)opt.connections, sizeof *conns);
    struct worker workers[THREADS_MAX];
    memset(workers, 0, sizeof workers);
    uint32_t *hist_total = calloc(HIST_BUCKETS, sizeof *hist_total);
    uint32_t *lag_total = calloc(HIST_BUCKETS, sizeof *lag_total);
    if (conns == NULL || hist_total == NULL || lag_total == NULL) {
        fprintf(stderr, "loadgen: out of memory\n");
        goto out;
    }
    uint64_t seed = (uint64_t)now_us() ^ ((uint64_t)getpid() << 32);
    for (int i = 0; i < opt.connections; i++) {
        struct conn *c = &conns[i];
        c->id = i;
        c->fd = -1;
        c->state = CONN_CLOSED;
        c->rng = (seed + (uint64_t)i * UINT64_C(0x9E3779B97F4A7C15)) | 1;
        c->recv_cap = RECV_BUF_INITIAL;
        c->recv_buf = malloc(c->recv_cap);
        if (c->recv_buf == NULL) {
            fprintf(stderr, "loadgen: out of memory\n");
            goto out;
        }
    }

    int64_t start = now_us();
    int64_t measure_start = start + (int64_t)(opt.warmup * 1e6);
    int64_t measure_end = measure_start + (int64_t)(opt.seconds * 1e6);
    int per = opt.connections / opt.threads, extra = opt.connections % opt.threads;
    int first = 0, started = 0;
    bool setup_ok = true;
    for (int t = 0; t < opt.threads; t++) {
        struct worker *w = &workers[t];
        w->opt = &opt;
        w->cards = &cards;
        w->conns = conns + first;
        w->conn_count = per + (t < extra ? 1 : 0);
        first += w->conn_count;
        w->measure_start_us = measure_start;
        w->measure_end_us = measure_end;
        if (opt.rate > 0) {
            /* This thread's share of the rate, in proportion to its
             * connections; its first purchase is due at the start. */
            double share = opt.rate * w->conn_count / opt.connections;
            w->interval_us = 1e6 / share;
            w->origin_us = start;
            w->drain_end_us = measure_end + DRAIN_US;
            w->idle = calloc((size_t)w->conn_count, sizeof *w->idle);
            w->stats.lag_hist = calloc(HIST_BUCKETS, sizeof *w->stats.lag_hist);
        }
        w->stats.hist = calloc(HIST_BUCKETS, sizeof *w->stats.hist);
        w->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (w->stats.hist == NULL || w->epoll_fd < 0 || (opt.rate > 0 && (w->idle == NULL || w->stats.lag_hist == NULL)) ||
            pthread_create(&w->thread, NULL, worker_run, w) != 0) {
            fprintf(stderr, "loadgen: cannot start thread %d\n", t);
            setup_ok = false;
            break;
        }
        started++;
    }
    for (int t = 0; t < started; t++)
        pthread_join(workers[t].thread, NULL);
    if (!setup_ok)
        goto out;

    struct stats sum;
    memset(&sum, 0, sizeof sum);
    for (int t = 0; t < opt.threads; t++) {
        struct stats *s = &workers[t].stats;
        if (workers[t].failure[0] != '\0')
            fprintf(stderr, "loadgen: thread %d: %s\n", t, workers[t].failure);
        sum.ok_measured += s->ok_measured;
        sum.responses_measured += s->responses_measured;
        sum.ok_total += s->ok_total;
        sum.http_errors += s->http_errors;
        sum.transport_errors += s->transport_errors;
        sum.server_closes += s->server_closes;
        sum.latency_us_sum += s->latency_us_sum;
        sum.latency_count += s->latency_count;
        sum.late += s->late;
        if (s->latency_us_max > sum.latency_us_max)
            sum.latency_us_max = s->latency_us_max;
        for (int i = 0; i < STATUS_CODES; i++)
            sum.status[i] += s->status[i];
        for (size_t i = 0; i < HIST_BUCKETS; i++)
            hist_total[i] += s->hist[i];
        if (s->lag_hist != NULL) {
            for (size_t i = 0; i < HIST_BUCKETS; i++)
                lag_total[i] += s->lag_hist[i];
            sum.lag_count += s->lag_count;
            if (s->lag_us_max > sum.lag_us_max)
                sum.lag_us_max = s->lag_us_max;
        }
    }
    int in_flight = 0;
    for (int i = 0; i < opt.connections; i++)
        if (conns[i].state == CONN_SENDING || conns[i].state == CONN_RECEIVING)
            in_flight++;

    printf("target: %s:%d  connections: %d  threads: %d  warmup s: %g  seconds: %g  run-id: %s\n",
           opt.host, opt.port, opt.connections, opt.threads, opt.warmup, opt.seconds,
           opt.run_id);
    printf("cards: %zu\n", cards.count);
    if (opt.rate > 0)
        printf("rate: %g/s due over the connections  late (due in the window, unanswered "
               "%d s after it; counted at their latency so far): %" PRIu64 "\n",
               opt.rate, DRAIN_US / 1000000, sum.late);
    printf("answers in window: %" PRIu64 "  (2xx: %" PRIu64 ")\n",
           sum.responses_measured, sum.ok_measured);
    printf("2xx whole run: %" PRIu64 "\n", sum.ok_total);
    for (int i = 100; i < STATUS_CODES; i++)
        if (sum.status[i] != 0)
            printf("status %d: %" PRIu64 "\n", i, sum.status[i]);
    printf("non-2xx answers: %" PRIu64 "  transport errors: %" PRIu64
           "  server closes: %" PRIu64 "  in flight at stop: %d\n",
           sum.http_errors, sum.transport_errors, sum.server_closes, in_flight);
    uint64_t n_lat = sum.latency_count;
    printf("mean ms: %.3f  p90 ms: %.3f  p99.9 ms: %.3f  max ms: %.3f\n",
           n_lat ? (double)sum.latency_us_sum / (double)n_lat / 1000.0 : 0.0,
           ms(percentile_us(hist_total, n_lat, 0.90)),
           ms(percentile_us(hist_total, n_lat, 0.999)),
           ms(sum.latency_us_max));
    printf("latency ms: p50 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  (%s)\n",
           ms(percentile_us(hist_total, n_lat, 0.50)),
           ms(percentile_us(hist_total, n_lat, 0.99)),
           ms(percentile_us(hist_total, n_lat, 0.999)), ms(sum.latency_us_max),
           opt.rate > 0 ? "from each purchase's due time" : "from each send");
    if (opt.rate > 0)
        printf("send lag ms: p50 %.3f  p99 %.3f  max %.3f  (due -> sent: the generator's "
               "own delay, part of the latency above)\n",
               ms(percentile_us(lag_total, sum.lag_count, 0.50)),
               ms(percentile_us(lag_total, sum.lag_count, 0.99)), ms(sum.lag_us_max));
    printf("purchases/s: %.0f\n", (double)sum.ok_measured / opt.seconds);
    printf("p50 ms: %.3f\n", ms(percentile_us(hist_total, n_lat, 0.50)));
    printf("p99 ms: %.3f\n", ms(percentile_us(hist_total, n_lat, 0.99)));
    printf("errors: %" PRIu64 "\n", sum.http_errors + sum.transport_errors);
    /* Its own CPU (user + system, the kernel's TCP work included) per 2xx
     * answer over the whole run: it shares the machine with the server. */
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0 && sum.ok_total > 0)
        printf("loadgen cpu us per answer: %.1f\n",
               ((double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
                (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec)) /
                   (double)sum.ok_total);
    fflush(stdout);
    exit_code = sum.ok_measured > 0 ? 0 : 1;
    if (exit_code != 0)
        fprintf(stderr, "loadgen: no successful purchase in the measured window\n");
out:
    for (int t = 0; t < THREADS_MAX; t++) {
        free(workers[t].stats.hist);
        free(workers[t].stats.lag_hist);
        free(workers[t].idle);
        if (workers[t].opt != NULL && workers[t].epoll_fd >= 0)
            close(workers[t].epoll_fd);
    }
    if (conns != NULL) {
        for (int i = 0; i < opt.connections; i++) {
            if (conns[i].fd >= 0)
                close(conns[i].fd);
            free(conns[i].recv_buf);
        }
    }
    free(conns);
    free(hist_total);
    free(lag_total);
    free(cards.text);
    free(cards.numbers);
    return exit_code;
}
