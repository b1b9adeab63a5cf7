/*
 * send_int.h: what the senders (smtp.c, sms.c, webhook.c) share: the
 * kp_sender itself (one libcurl easy handle, kept so its connection is
 * reused) and the HTTP helpers of sms.c and webhook.c. Internal to
 * src/notify/.
 */
#ifndef KOPILKA_NOTIFY_SEND_INT_H
#define KOPILKA_NOTIFY_SEND_INT_H

#include <curl/curl.h>

#include "notify/notify.h"

enum {
    SEND_ANSWER_MAX = 64 * 1024, /* bytes of a provider's answer kept; more fails the attempt */
};

struct kp_sender {
    kp_channel channel;
    kp_notify_config cfg; /* a copy: the caller's may go */
    CURL *curl;
    kp_buf answer;       /* the body of the last answer */
    int64_t retry_after; /* the last answer's Retry-After in seconds, 0 = none */
    kp_time now;         /* the attempt's time (Retry-After as a date) */
    char errbuf[CURL_ERROR_SIZE];
};

/* Sets r's error (truncated to fit) from a format. */
void send_fail(kp_send_result *r, bool permanent, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Appends one header line, formatted, to *list; false when it does not
 * fit 1023 bytes or memory ran out (*list is kept either way). */
bool send_header(struct curl_slist **list, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* One HTTP request on the sender's handle: method "POST" or "GET", body
 * (may be NULL for GET), headers (may be NULL), a basic-auth user:password
 * or NULL, within timeout_seconds. Fills s->answer, s->retry_after and
 * *status (0 when no answer came). */
CURLcode send_http(kp_sender *s, const char *method, const char *url, struct curl_slist *headers,
                   const char *body, size_t body_len, const char *userpwd, int timeout_seconds,
                   long *status);

/* The failure class of an HTTP attempt that was not a success: transport
 * errors, 408, 429 and 5xx are temporary; other statuses are temporary
 * unless permanent_4xx and 400 <= status < 500. Sets r (error, permanent,
 * retry_after). */
void send_http_fail(kp_sender *s, CURLcode rc, long status, bool permanent_4xx, kp_send_result *r);

void send_smtp(kp_sender *s, const kp_outgoing *o, kp_send_result *r);
void send_sms(kp_sender *s, const kp_outgoing *o, kp_send_result *r);
void send_webhook(kp_sender *s, const kp_outgoing *o, const kp_webhook_endpoint *ep,
                  const char *secret, kp_send_result *r);

#endif
