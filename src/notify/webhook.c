/*
 * webhook.c: webhooks (Standard Webhooks signatures and the HTTP POST of a
 * delivery), and the kp_sender every channel shares: one libcurl easy
 * handle per sender, the HTTP request and its failure classes that sms.c
 * uses too, and the dispatch of kp_sender_send by channel.
 */
#include <ctype.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "notify/send_int.h"

enum { WEBHOOK_KEY_MAX = 64, RETRY_AFTER_MAX = 86400 };

/* ----------------------------------------------------------- signatures */

kp_err kp_webhook_sign(const char *secret, const char *id, kp_time timestamp, const char *body,
                       size_t body_len, char *out, size_t out_size)
{
    static const char prefix[] = "whsec_";
    if (out_size > 0) out[0] = '\0';
    if (strncmp(secret, prefix, sizeof prefix - 1) != 0) return KP_ERR_INVALID;
    const char *b64 = secret + sizeof prefix - 1;
    unsigned char key[WEBHOOK_KEY_MAX];
    size_t key_len = 0;
    if (sodium_base642bin(key, sizeof key, b64, strlen(b64), NULL, &key_len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        key_len == 0)
        return KP_ERR_INVALID;
    char ts[24];
    int ts_len = snprintf(ts, sizeof ts, "%" PRId64, (int64_t)timestamp);
    crypto_auth_hmacsha256_state st;
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_init(&st, key, key_len);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)id, strlen(id));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)ts, (size_t)ts_len);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, body_len);
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_memzero(key, sizeof key);
    size_t need = 3 + sodium_base64_ENCODED_LEN(sizeof mac, sodium_base64_VARIANT_ORIGINAL);
    if (out_size < need) return KP_ERR_LIMIT;
    memcpy(out, "v1,", 3);
    sodium_bin2base64(out + 3, out_size - 3, mac, sizeof mac, sodium_base64_VARIANT_ORIGINAL);
    return KP_OK;
}

void kp_webhook_secret_new(char *out, size_t out_size)
{
    unsigned char key[24];
    size_t need = 6 + sodium_base64_ENCODED_LEN(sizeof key, sodium_base64_VARIANT_ORIGINAL);
    if (out_size < need) abort(); /* a programmer's error: the header asks for 64 bytes */
    randombytes_buf(key, sizeof key);
    memcpy(out, "whsec_", 6);
    sodium_bin2base64(out + 6, out_size - 6, key, sizeof key, sodium_base64_VARIANT_ORIGINAL);
    sodium_memzero(key, sizeof key);
}

/* --------------------------------------------------------------- sender */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static bool curl_ready;

static void curl_start(void)
{
    curl_ready = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

kp_sender *kp_sender_new(const kp_notify_config *cfg, kp_channel channel)
{
    pthread_once(&curl_once, curl_start);
    if (!curl_ready || channel < KP_CHANNEL_EMAIL || channel >= KP_CHANNEL__COUNT) return NULL;
    kp_sender *s = calloc(1, sizeof *s);
    if (s == NULL) return NULL;
    s->channel = channel;
    s->cfg = *cfg;
    s->curl = curl_easy_init();
    if (s->curl == NULL) {
        free(s);
        return NULL;
    }
    kp_buf_init(&s->answer, SEND_ANSWER_MAX);
    return s;
}

void kp_sender_free(kp_sender *s)
{
    if (s == NULL) return;
    curl_easy_cleanup(s->curl);
    kp_buf_release(&s->answer);
    sodium_memzero(&s->cfg, sizeof s->cfg);
    free(s);
}

void kp_outgoing_release(kp_outgoing *o)
{
    if (o == NULL) return;
    free(o->subject);
    free(o->text);
    free(o->html);
    free(o->body);
    o->subject = o->text = o->html = o->body = NULL;
}

void send_fail(kp_send_result *r, bool permanent, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof r->error, fmt, ap);
    va_end(ap);
    r->ok = false;
    r->permanent = permanent;
}

void kp_sender_send(kp_sender *s, const kp_outgoing *o, const kp_webhook_endpoint *ep,
                    const char *secret, kp_time now, kp_send_result *r)
{
    memset(r, 0, sizeof *r);
    s->now = now;
    if (o->m->channel != s->channel) {
        send_fail(r, false, "a %s message given to the %s sender", kp_channel_name(o->m->channel),
                  kp_channel_name(s->channel));
        return;
    }
    if (s->channel == KP_CHANNEL_EMAIL && !s->cfg.email.on)
        send_fail(r, false, "e-mail is not configured (--notify)");
    else if (s->channel == KP_CHANNEL_EMAIL)
        send_smtp(s, o, r);
    else if (s->channel == KP_CHANNEL_SMS && !s->cfg.sms.on)
        send_fail(r, false, "sms is not configured (--notify)");
    else if (s->channel == KP_CHANNEL_SMS)
        send_sms(s, o, r);
    else if (!s->cfg.webhook.on)
        send_fail(r, false, "webhooks are disabled (webhooks.enabled)");
    else if (ep == NULL || secret == NULL)
        send_fail(r, false, "a webhook delivery without its endpoint");
    else
        send_webhook(s, o, ep, secret, r);
}

/* ----------------------------------------------------------------- HTTP */

bool send_header(struct curl_slist **list, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof line) return false;
    struct curl_slist *next = curl_slist_append(*list, line);
    if (next == NULL) return false;
    *list = next;
    return true;
}

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
    kp_sender *s = ctx;
    if (!kp_buf_append(&s->answer, data, size * n)) return 0; /* past the cap: fail loudly */
    return size * n;
}

/* Retry-After: delay-seconds or an HTTP-date (RFC 9110 10.2.3). */
static size_t on_header(char *data, size_t size, size_t n, void *ctx)
{
    kp_sender *s = ctx;
    size_t len = size * n;
    static const char name[] = "retry-after:";
    if (len > sizeof name - 1 && len < 200 && strncasecmp(data, name, sizeof name - 1) == 0) {
        char value[200];
        size_t v = sizeof name - 1;
        while (v < len && (data[v] == ' ' || data[v] == '\t')) v++;
        size_t m = 0;
        while (v < len && data[v] != '\r' && data[v] != '\n') value[m++] = data[v++];
        value[m] = '\0';
        char *end;
        long long secs = strtoll(value, &end, 10);
        if (m > 0 && *end == '\0' && isdigit((unsigned char)value[0])) {
            s->retry_after = secs;
        } else {
            time_t at = curl_getdate(value, NULL);
            if (at > 0) s->retry_after = (int64_t)at > s->now ? (int64_t)at - s->now : 0;
        }
        if (s->retry_after > RETRY_AFTER_MAX) s->retry_after = RETRY_AFTER_MAX;
        if (s->retry_after < 0) s->retry_after = 0;
    }
    return len;
}

CURLcode send_http(kp_sender *s, const char *method, const char *url, struct curl_slist *headers,
                   const char *body, size_t body_len, const char *userpwd, int timeout_seconds,
                   long *status)
{
    CURL *c = s->curl;
    kp_buf_reset(&s->answer);
    s->retry_after = 0;
    s->errbuf[0] = '\0';
    *status = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)timeout_seconds);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)timeout_seconds);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, s->errbuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "Kopilka");
    if (userpwd) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERPWD, userpwd);
    } else {
        curl_easy_setopt(c, CURLOPT_USERPWD, NULL);
    }
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
    }
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    /* The handle keeps pointers to these; none outlives the call. */
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);
    curl_easy_setopt(c, CURLOPT_USERPWD, NULL);
    return rc;
}

void send_http_fail(kp_sender *s, CURLcode rc, long status, bool permanent_4xx, kp_send_result *r)
{
    r->retry_after = s->retry_after;
    if (rc != CURLE_OK) {
        if (rc == CURLE_WRITE_ERROR && s->answer.failed) {
            send_fail(r, false, "the answer is longer than %d bytes", SEND_ANSWER_MAX);
            return;
        }
        send_fail(r, false, "%s%s%s", curl_easy_strerror(rc), s->errbuf[0] ? ": " : "", s->errbuf);
        return;
    }
    bool permanent =
        permanent_4xx && status >= 400 && status < 500 && status != 408 && status != 429;
    send_fail(r, permanent, "HTTP %ld%s", status,
              permanent ? " (refused for good)" : " (will retry)");
}

/* -------------------------------------------------------------- webhook */

void send_webhook(kp_sender *s, const kp_outgoing *o, const kp_webhook_endpoint *ep,
                  const char *secret, kp_send_result *r)
{
    const char *body = o->body ? o->body : "";
    size_t body_len = strlen(body);
    char signature[128];
    if (kp_webhook_sign(secret, o->m->key, s->now, body, body_len, signature, sizeof signature)) {
        send_fail(r, true, "the endpoint's secret is not \"whsec_\" + base64");
        return;
    }
    struct curl_slist *h = NULL;
    bool ok = send_header(&h, "Content-Type: application/json") &&
              send_header(&h, "webhook-id: %s", o->m->key) &&
              send_header(&h, "webhook-timestamp: %" PRId64, (int64_t)s->now) &&
              send_header(&h, "webhook-signature: %s", signature) && send_header(&h, "Expect:");
    if (!ok) {
        curl_slist_free_all(h);
        send_fail(r, false, "out of memory");
        return;
    }
    long status = 0;
    CURLcode rc = send_http(s, "POST", ep->url, h, body, body_len, NULL,
                            s->cfg.webhook.timeout_seconds, &status);
    curl_slist_free_all(h);
    if (rc == CURLE_OK && status >= 200 && status < 300) {
        r->ok = true;
        snprintf(r->provider_id, sizeof r->provider_id, "HTTP %ld", status);
        return;
    }
    send_http_fail(s, rc, status, false, r);
    /* 410 Gone: the receiver says the endpoint is no more. */
    if (rc == CURLE_OK && status == 410) {
        r->permanent = true;
        snprintf(r->error, sizeof r->error, "HTTP 410: the endpoint is gone");
    }
}
