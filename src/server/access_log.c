/*
 * access_log.c: the access log's lines and the request ids
 * (access_log.h says what is logged and what never is).
 */
#include "access_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

enum { LINE_MAX_BYTES = 1024 };

/* The fixed words of the routes (docs/api.md). A path segment that is not
 * one of them is logged as "{}". */
static const char *const route_words[] = {
    "v1",          "health",    "live",        "ready",         "metrics",      "openapi.json",
    "quote",       "purchases", "returns",     "events",        "cards",        "identify",
    "customers",   "transfers", "admin",       "login",         "logout",       "me",
    "staff",       "audit",     "adjustments", "card-batches",  "cards.csv",    "block",
    "unblock",     "replace",   "export",      "customers.csv", "balances.csv", "barcode.svg",
    "barcode.png", "qr.svg",    "qr.png",      "search",        "erase",        "history",
    "families",    "members",   "leave",       "terminals",     "revoke",       "rotate",
    "discount",    "birthday",  "import",      "messages",      "retry",        "webhooks",
    "templates",   "preview",   "notifications", "campaigns",   "unsubscribe",  "sms",
    "inbound",     "code",      "signup",      "family",        "invitations",  "accept",
    "decline",     "remove",
    "programs",    "validate",      "diff",         "sandbox",
    "cancel",      "dashboard",     "imports",      "reports",      "points",
    "simulations",
    "segments",    "start",         "results",
    "catalog",     "items",         "image",        "stock",        "orders",
    "hand-over",
    "draws",       "close",
    "partner",     "operations",    "rules",        "card-transactions",
    "settlement",  "periods",       "statements",
};

bool kp_access_log_open(const char *target, int *fd, char *problem, size_t problem_size)
{
    if (strcmp(target, "off") == 0) {
        *fd = -1;
        return true;
    }
    if (strcmp(target, "stderr") == 0) {
        *fd = STDERR_FILENO;
        return true;
    }
    *fd = open(target, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (*fd < 0) {
        snprintf(problem, problem_size, "--access-log: cannot open %s: %s", target,
                 strerror(errno));
        return false;
    }
    return true;
}

void kp_access_log_close(int fd)
{
    if (fd > STDERR_FILENO) close(fd);
}

static bool route_word(const char *segment, size_t n)
{
    for (size_t i = 0; i < sizeof route_words / sizeof route_words[0]; i++)
        if (strlen(route_words[i]) == n && memcmp(route_words[i], segment, n) == 0) return true;
    return false;
}

void kp_access_route(const char *url, char *out, size_t size)
{
    size_t len = 0;
    out[0] = '\0';
    const char *p = url;
    while (*p) {
        if (*p != '/') { /* a path that does not start with "/" */
            snprintf(out, size, "{}");
            return;
        }
        p++;
        size_t n = strcspn(p, "/");
        const char *piece = n == 0 || route_word(p, n) ? NULL : "{}";
        int w = piece ? snprintf(out + len, size - len, "/%s", piece)
                      : snprintf(out + len, size - len, "/%.*s", (int)n, p);
        if (w < 0 || (size_t)w >= size - len) { /* too long: cut at a whole segment */
            out[len] = '\0';
            return;
        }
        len += (size_t)w;
        p += n;
    }
    if (len == 0) snprintf(out, size, "/");
}

bool kp_request_id_valid(const char *id)
{
    size_t n = 0;
    for (; id[n]; n++) {
        char c = id[n];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == ':' || c == '-';
        if (!ok || n >= KP_REQUEST_ID_MAX) return false;
    }
    return n > 0;
}

void kp_request_id_new(char out[KP_REQUEST_ID_MAX + 1])
{
    static _Thread_local uint32_t prefix;
    static _Thread_local uint32_t counter;
    static _Thread_local bool seeded;
    if (!seeded) {
        if (getrandom(&prefix, sizeof prefix, 0) != (ssize_t)sizeof prefix)
            prefix = (uint32_t)time(NULL) ^ (uint32_t)(uintptr_t)&prefix;
        seeded = true;
    }
    snprintf(out, KP_REQUEST_ID_MAX + 1, "%08x%08x", prefix, ++counter);
}

/* Appends s as a JSON string's content (quotes and controls escaped). */
static size_t put_escaped(char *out, size_t len, size_t size, const char *s)
{
    for (; *s && len + 7 < size; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[len++] = '\\';
            out[len++] = (char)c;
        } else if (c < 0x20) {
            len += (size_t)snprintf(out + len, size - len, "\\u%04x", c);
        } else {
            out[len++] = (char)c;
        }
    }
    out[len] = '\0';
    return len;
}

/* Writes the time as RFC 3339 UTC with microseconds; returns its length. */
static size_t put_time(char *out, size_t size)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
    int w = snprintf(out + n, size - n, ".%06ldZ", now.tv_nsec / 1000);
    return n + (w > 0 ? (size_t)w : 0);
}

/* Writes the whole line with one write(2), retrying only on EINTR and on a
 * short write (which a pipe or file of lines this small does not do). */
static void write_line(int fd, const char *line, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, line, len);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return; /* a log that cannot be written does not stop the tills */
        line += w;
        len -= (size_t)w;
    }
}

void kp_access_log_write(int fd, const kp_access_entry *entry)
{
    if (fd < 0) return;
    char line[LINE_MAX_BYTES], route[KP_ACCESS_ROUTE_MAX], stamp[40];
    put_time(stamp, sizeof stamp);
    kp_access_route(entry->url, route, sizeof route);
    size_t len = (size_t)snprintf(line, sizeof line, "{\"time\":\"%s\",\"method\":\"", stamp);
    len = put_escaped(line, len, sizeof line - 200, entry->method);
    int w = snprintf(line + len, sizeof line - len,
                     "\",\"route\":\"%s\",\"status\":%u,\"latency_us\":%lld,\"store\":\"", route,
                     entry->status, (long long)entry->latency_us);
    len += w > 0 ? (size_t)w : 0;
    len = put_escaped(line, len, sizeof line - 100, entry->store ? entry->store : "");
    w = snprintf(line + len, sizeof line - len, "\",\"request_id\":\"%s\"}\n",
                 entry->request_id ? entry->request_id : "");
    len += w > 0 ? (size_t)w : 0;
    if (len >= sizeof line) len = sizeof line - 1;
    write_line(fd, line, len);
}

void kp_access_log_event(int fd, const char *event, const char *detail)
{
    if (fd < 0) return;
    char line[LINE_MAX_BYTES], stamp[40];
    put_time(stamp, sizeof stamp);
    size_t len = (size_t)snprintf(line, sizeof line, "{\"time\":\"%s\",\"event\":\"", stamp);
    len = put_escaped(line, len, sizeof line - 100, event);
    len += (size_t)snprintf(line + len, sizeof line - len, "\",\"detail\":\"");
    len = put_escaped(line, len, sizeof line - 8, detail);
    len += (size_t)snprintf(line + len, sizeof line - len, "\"}\n");
    if (len >= sizeof line) len = sizeof line - 1;
    write_line(fd, line, len);
}
