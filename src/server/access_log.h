/*
 * access_log.h: the server's access log, one JSON line a request (time,
 * method, route, status, latency_us, store, request_id), and the request
 * ids it shares with the answers' X-Request-Id header.
 *
 * What never goes in: bodies, query strings, phones, names, card numbers.
 * A URL's path is logged as its route: each segment that is not one of the
 * fixed words of a route becomes "{}" (/v1/cards/2000000000018 is logged as
 * /v1/cards/{}, /v1/admin/customers/17/history as
 * /v1/admin/customers/{}/history), so card numbers and customer ids never
 * reach the log.
 *
 * Cost on the till path: a line is formatted on the answering thread's
 * stack and written with one write(2) (lines are far below PIPE_BUF, so
 * lines of concurrent threads never interleave); no lock, no allocation.
 */
#ifndef KOPILKA_ACCESS_LOG_H
#define KOPILKA_ACCESS_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    KP_REQUEST_ID_MAX = 64,   /* bytes of a request id, without the NUL */
    KP_ACCESS_ROUTE_MAX = 160 /* bytes of a logged route, with the NUL */
};

/* Opens the log's target: "off" (*fd = -1), "stderr" (*fd = 2) or a file
 * path, opened to append (created with mode 0640). False with a message in
 * problem when the file cannot be opened. */
bool kp_access_log_open(const char *target, int *fd, char *problem, size_t problem_size);
/* Closes what kp_access_log_open() opened (not stderr). */
void kp_access_log_close(int fd);

/* Writes url's route (see above) into out. */
void kp_access_route(const char *url, char *out, size_t size);

/* True when a client's X-Request-Id can be used as is: 1 to
 * KP_REQUEST_ID_MAX bytes of letters, digits and . _ : - */
bool kp_request_id_valid(const char *id);
/* A new request id (16 hex digits): a random per-thread prefix and a
 * per-thread counter, so threads never share state to make one. */
void kp_request_id_new(char out[KP_REQUEST_ID_MAX + 1]);

/* One request as logged. store is "" when no terminal key authenticated it. */
typedef struct kp_access_entry {
    const char *method;
    const char *url; /* logged as its route */
    unsigned status;
    int64_t latency_us; /* from the request's headers received to its answer queued */
    const char *store;
    const char *request_id;
} kp_access_entry;

/* Writes the entry as one JSON line to fd (nothing when fd < 0). */
void kp_access_log_write(int fd, const kp_access_entry *entry);

/* Writes one JSON line about the server's connections (not a request), such
 * as a connection refused by a limit: {"time":...,"event":event,"detail":...}. */
void kp_access_log_event(int fd, const char *event, const char *detail);

#endif
