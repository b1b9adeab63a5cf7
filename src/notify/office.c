/*
 * office.c: the back office's and the customers' notification operations
 * (office.h): messages (list, view, retry, replay), webhook endpoints with
 * their sealed secrets, templates (compiled before they are stored,
 * previewed with sample figures), customers' preferences and marketing
 * consent, unsubscribe links and SMS stop replies, one-time login codes and
 * customers' sessions, and campaigns. Over the store's notify and people
 * operations; the HTTP layer is src/server/http_notify.c.
 */
#include "notify/office.h"

#include <ctype.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "crypto/pii.h"
#include "service/people_int.h"

static const kp_notify_ops *nops(const kp_office *o) { return o->st->ops->notify; }

/* ,"key":["email","sms"] for a bit set of channels. */
static void channels_kv(kp_buf *out, const char *key, uint32_t set)
{
    kp_buf_puts(out, ",");
    kp_buf_json_key(out, key);
    kp_buf_puts(out, "[");
    bool first = true;
    for (int c = 1; c < KP_CHANNEL__COUNT; c++) {
        if (!(set & (1u << c))) continue;
        if (!first) kp_buf_puts(out, ",");
        first = false;
        kp_buf_json_str(out, kp_channel_name((kp_channel)c));
    }
    kp_buf_puts(out, "]");
}

static uint32_t marketing_kinds(void)
{
    uint32_t k = 0;
    for (int i = 1; i < KP_NOTIFY__COUNT; i++)
        if (kp_notify_marketing((kp_notify_kind)i)) k |= 1u << i;
    return k;
}

static kp_err storage(const kp_office *o, kp_err err, kp_error *e)
{
    return people_storage(o->st, err, e);
}

/* ------------------------------------------------------------ messages */

static void message_json(kp_buf *out, const kp_message *m)
{
    kp_buf_puts(out, "{");
    /* 0: a delivery not written yet (pending_webhooks). */
    if (m->id) kp_buf_json_kv_i64(out, "id", m->id, false);
    else kp_buf_puts(out, "\"id\":null");
    kp_buf_json_kv_str(out, "key", m->key, true);
    kp_buf_json_kv_i64(out, "event_id", m->event_id, true);
    kp_buf_json_kv_str(out, "kind", kp_notify_kind_name(m->kind), true);
    kp_buf_json_kv_str(out, "channel", kp_channel_name(m->channel), true);
    if (m->customer_id) kp_buf_json_kv_i64(out, "customer", m->customer_id, true);
    else kp_buf_puts(out, ",\"customer\":null");
    if (m->endpoint_id) kp_buf_json_kv_i64(out, "endpoint", m->endpoint_id, true);
    else kp_buf_puts(out, ",\"endpoint\":null");
    kp_buf_json_kv_str(out, "state", kp_message_state_name(m->state), true);
    kp_buf_json_kv_i64(out, "attempts", m->attempts, true);
    people_time_kv(out, "created_at", m->created_at);
    people_time_kv(out, "next_attempt_at", m->state == KP_MSG_PENDING ? m->next_at : 0);
    people_time_kv(out, "sent_at", m->sent_at);
    if (m->provider_id[0]) kp_buf_json_kv_str(out, "provider_id", m->provider_id, true);
    else kp_buf_puts(out, ",\"provider_id\":null");
    if (m->last_error[0]) kp_buf_json_kv_str(out, "last_error", m->last_error, true);
    else kp_buf_puts(out, ",\"last_error\":null");
}

enum { PENDING_EVENTS_READ = 64 }; /* pending events a list derives deliveries of */

/* The webhook deliveries of pending events matching f, into out (at most
 * cap): not written yet (kp_office_messages). */
static kp_err pending_webhooks(kp_office *o, const kp_message_filter *f, kp_message *out,
                               size_t cap, size_t *n)
{
    *n = 0;
    if (cap == 0 || f->customer_id || (f->state != -1 && f->state != KP_MSG_PENDING) ||
        (f->channel && f->channel != KP_CHANNEL_WEBHOOK))
        return KP_OK;
    kp_webhook_endpoint *eps = NULL;
    size_t n_eps = 0;
    kp_error ignored;
    kp_err err = kp_notify_endpoints_read(o->st, &eps, &n_eps, &ignored);
    if (err) return err;
    kp_notify_event *evs = calloc(PENDING_EVENTS_READ, sizeof *evs);
    size_t n_evs = 0;
    err = evs ? nops(o)->events_pending(o->st, 0, evs, PENDING_EVENTS_READ, &n_evs)
              : KP_ERR_NOMEM;
    for (size_t i = 0; err == KP_OK && i < n_evs; i++) {
        const kp_notify_event *ev = &evs[i];
        if (f->event_id && ev->id != f->event_id) continue;
        for (size_t j = 0; j < n_eps && *n < cap; j++) {
            const kp_webhook_endpoint *ep = &eps[j];
            if (!ep->active || (ep->kinds && !(ep->kinds & (1u << ev->kind)))) continue;
            if (f->endpoint_id && ep->id != f->endpoint_id) continue;
            kp_message *m = &out[(*n)++];
            memset(m, 0, sizeof *m);
            snprintf(m->key, sizeof m->key, "%lld/webhook/%lld", (long long)ev->id,
                     (long long)ep->id);
            m->event_id = ev->id;
            m->kind = ev->kind;
            m->channel = KP_CHANNEL_WEBHOOK;
            m->endpoint_id = ep->id;
            m->state = KP_MSG_PENDING;
            m->created_at = m->next_at = ev->at;
        }
    }
    for (size_t i = 0; evs && i < n_evs; i++) kp_notify_event_release(&evs[i]);
    free(evs);
    free(eps);
    return err;
}

kp_err kp_office_messages(kp_office *o, const kp_message_filter *f, bool webhooks_pending,
                          int64_t before, int64_t limit, kp_buf *out, kp_error *e)
{
    kp_err err = kp_office_require(o, KP_PERM_NOTIFY_READ, e);
    if (err == KP_OK && f->customer_id) err = kp_office_require(o, KP_PERM_CUSTOMER_READ, e);
    if (err) return err;
    if (limit < 1 || limit > KP_MESSAGES_PAGE_MAX)
        return kp_error_set(e, KP_ERR_INVALID, "limit", "must be from 1 to %d",
                            KP_MESSAGES_PAGE_MAX);
    if (before < 0) return kp_error_set(e, KP_ERR_INVALID, "before", "must be a message id >= 0");
    kp_message *list = calloc((size_t)limit, sizeof *list);
    if (list == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    size_t n = 0, derived = 0;
    if (webhooks_pending && before == 0)
        err = pending_webhooks(o, f, list, (size_t)limit / 2, &derived);
    if (err == KP_OK)
        err = nops(o)->messages_list(o->st, f, before, list + derived, (size_t)limit - derived,
                                     &n);
    if (err == KP_OK) {
        kp_buf_reset(out);
        kp_buf_puts(out, "{\"messages\":[");
        for (size_t i = 0; i < derived + n; i++) {
            if (i) kp_buf_puts(out, ",");
            message_json(out, &list[i]);
            kp_buf_puts(out, "}");
        }
        kp_buf_puts(out, "]");
        /* A full page may have more after it; a short one is the last. */
        if (n > 0 && derived + n == (size_t)limit)
            kp_buf_json_kv_i64(out, "next_before", list[derived + n - 1].id, true);
        else kp_buf_puts(out, ",\"next_before\":null");
        kp_buf_puts(out, "}");
    } else {
        err = storage(o, err, e);
    }
    for (size_t i = 0; i < derived + n; i++) kp_message_release(&list[i]);
    free(list);
    return err;
}

static kp_err message_load(kp_office *o, int64_t id, kp_message *m, kp_error *e)
{
    memset(m, 0, sizeof *m);
    kp_err err = nops(o)->message_get(o->st, id, m);
    if (err == KP_ERR_NOT_FOUND) return kp_error_set(e, err, "message", "no such message");
    return err ? storage(o, err, e) : KP_OK;
}

static void str_or_null(kp_buf *out, const char *key, const char *v)
{
    if (v && v[0]) {
        kp_buf_json_kv_str(out, key, v, true);
    } else {
        kp_buf_puts(out, ",");
        kp_buf_json_key(out, key);
        kp_buf_puts(out, "null");
    }
}

kp_err kp_office_message(kp_office *o, const kp_notify_env *env, int64_t id, kp_buf *out,
                         bool *opened, kp_error *e)
{
    *opened = false;
    kp_err err = kp_office_require(o, KP_PERM_NOTIFY_READ, e);
    if (err) return err;
    kp_message m;
    if ((err = message_load(o, id, &m, e))) return err;
    kp_error ignore;
    bool may_open = m.sealed_len > 0 && o->pii &&
                    kp_office_require(o, KP_PERM_CUSTOMER_READ, &ignore) == KP_OK;
    kp_buf_reset(out);
    message_json(out, &m);
    if (may_open) {
        kp_outgoing og;
        memset(&og, 0, sizeof og);
        kp_error oe;
        if (kp_notify_open(env, &m, &og, &oe) == KP_OK) {
            *opened = true;
            kp_buf_puts(out, ",\"content\":{");
            kp_buf_json_kv_str(out, "to", og.to, false);
            str_or_null(out, "subject", og.subject);
            str_or_null(out, "text", og.text);
            str_or_null(out, "html", og.html);
            str_or_null(out, "body", og.body);
            str_or_null(out, "unsubscribe_url", og.unsubscribe_url);
            kp_buf_puts(out, "}");
        } else {
            kp_buf_puts(out, ",\"content\":null");
            kp_buf_json_kv_str(out, "content_problem", oe.message, true);
        }
        kp_outgoing_release(&og);
    } else {
        kp_buf_puts(out, ",\"content\":null");
        if (m.sealed_len == 0)
            kp_buf_json_kv_str(out, "content_problem", "erased with the customer's data", true);
    }
    kp_buf_puts(out, "}");
    kp_message_release(&m);
    return KP_OK;
}

kp_err kp_office_message_retry(kp_office *o, int64_t id, kp_buf *out, kp_error *e)
{
    kp_err err = kp_office_require(o, KP_PERM_NOTIFY_MANAGE, e);
    if (err) return err;
    kp_message m;
    if ((err = message_load(o, id, &m, e))) return err;
    const char *action = NULL;
    if (m.state == KP_MSG_DEAD) action = "message.retry";
    else if (m.state == KP_MSG_SENT && m.channel == KP_CHANNEL_WEBHOOK) action = "message.replay";
    kp_message_state state = m.state;
    kp_channel channel = m.channel;
    kp_message_release(&m);
    if (action == NULL) {
        if (state == KP_MSG_PENDING)
            return kp_error_set(e, KP_ERR_CONFLICT, "message",
                                "the message is pending: it is tried again by itself (see "
                                "next_attempt_at); only a dead message is retried");
        if (state == KP_MSG_SENT)
            return kp_error_set(e, KP_ERR_CONFLICT, "message",
                                "the %s was sent already and is not sent twice; only a webhook "
                                "delivery is replayed", kp_channel_name(channel));
        return kp_error_set(e, KP_ERR_CONFLICT, "message",
                            "the message was cancelled (the customer unsubscribed or was "
                            "erased) and is not sent");
    }
    err = nops(o)->message_retry(o->st, id, o->now);
    if (err == KP_OK) {
        char target[48];
        snprintf(target, sizeof target, "message:%lld", (long long)id);
        err = kp_office_audit(o, action, target, "channel=%s", kp_channel_name(channel));
    }
    if (err) return storage(o, err, e);
    if ((err = message_load(o, id, &m, e))) return err;
    kp_buf_reset(out);
    message_json(out, &m);
    kp_buf_json_kv_str(out, "done", action + 8, true);
    kp_buf_puts(out, "}");
    kp_message_release(&m);
    return KP_OK;
}

/* ------------------------------------------------------------ endpoints */

bool kp_endpoint_url_ok(const char *url, const char **why)
{
    size_t len = strlen(url);
    size_t scheme = strncmp(url, "https://", 8) == 0 ? 8 : strncmp(url, "http://", 7) == 0 ? 7 : 0;
    if (scheme == 0) {
        *why = "must be an http:// or https:// URL (allowed: http, https)";
        return false;
    }
    if (len >= KP_URL_MAX) {
        *why = "is too long (at most 511 bytes)";
        return false;
    }
    if (url[scheme] == '\0' || url[scheme] == '/' || url[scheme] == ':') {
        *why = "must name a host after the scheme (https://crm.example.com/hooks/kopilka)";
        return false;
    }
    for (const unsigned char *p = (const unsigned char *)url; *p; p++)
        if (*p <= ' ' || *p == 0x7f) {
            *why = "must not hold spaces or control characters";
            return false;
        }
    return true;
}

static void endpoint_json(kp_buf *out, const kp_webhook_endpoint *ep, const char *secret)
{
    kp_buf_puts(out, "{");
    kp_buf_json_kv_i64(out, "id", ep->id, false);
    kp_buf_json_kv_str(out, "url", ep->url, true);
    kp_buf_json_kv_str(out, "description", ep->description, true);
    kp_buf_puts(out, ",\"kinds\":[");
    bool first = true;
    for (int k = 1; k < KP_NOTIFY__COUNT; k++) {
        if (ep->kinds && !(ep->kinds & (1u << k))) continue;
        if (!first) kp_buf_puts(out, ",");
        first = false;
        kp_buf_json_str(out, kp_notify_kind_name((kp_notify_kind)k));
    }
    kp_buf_puts(out, "]");
    kp_buf_puts(out, ep->kinds ? ",\"every_kind\":false" : ",\"every_kind\":true");
    kp_buf_puts(out, ep->active ? ",\"active\":true" : ",\"active\":false");
    people_time_kv(out, "created_at", ep->created_at);
    people_time_kv(out, "updated_at", ep->updated_at);
    if (secret) kp_buf_json_kv_str(out, "secret", secret, true);
    kp_buf_puts(out, "}");
}

kp_err kp_office_endpoints(kp_office *o, kp_buf *out, kp_error *e)
{
    kp_err err = kp_office_require(o, KP_PERM_NOTIFY_READ, e);
    if (err) return err;
    kp_webhook_endpoint *list = calloc(KP_ENDPOINTS_MAX, sizeof *list);
    if (list == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    size_t n = 0;
    err = nops(o)->endpoints_list(o->st, list, KP_ENDPOINTS_MAX, &n);
    if (err == KP_OK) {
        kp_buf_reset(out);
        kp_buf_puts(out, "{\"endpoints\":[");
        for (size_t i = 0; i < n; i++) {
            if (i) kp_buf_puts(out, ",");
            endpoint_json(out, &list[i], NULL);
        }
        kp_buf_puts(out, "]}");
    } else {
        err = storage(o, err, e);
    }
    free(list);
    return err;
}

static kp_err endpoint_load(kp_office *o, int64_t id, kp_webhook_endpoint *ep, kp_error *e)
{
    memset(ep, 0, sizeof *ep);
    kp_err err = nops(o)->endpoint_get(o->st, id, ep);
    if (err == KP_ERR_NOT_FOUND)
        return kp_error_set(e, err, "endpoint", "no such webhook endpoint");
    return err ? storage(o, err, e) : KP_OK;
}

kp_err kp_office_endpoint(kp_office *o, int64_t id, kp_buf *out, kp_error *e)
{
    kp_err err = kp_office_require(o, KP_PERM_NOTIFY_READ, e);
    kp_webhook_endpoint ep;
    if (err || (err = endpoint_load(o, id, &ep, e))) return err;
    kp_buf_reset(out);
    endpoint_json(out, &ep, NULL);
    return KP_OK;
}

/* A new secret into secret (at least 80 bytes), sealed into ep. */
static kp_err endpoint_new_secret(kp_office *o, kp_webhook_endpoint *ep, char *secret, size_t size,
                                  kp_error *e)
{
    kp_webhook_secret_new(secret, size);
    size_t len = 0;
    kp_err err = kp_pii_seal(o->pii, KP_PII_SECRET, secret, strlen(secret), ep->secret.data,
                             sizeof ep->secret.data, &len);
    if (err) return kp_error_set(e, err, "", "the secret could not be sealed");
    ep->secret.len = len;
    return KP_OK;
}

static kp_err endpoint_apply(const kp_endpoint_req *req, kp_webhook_endpoint *ep, kp_error *e)
{
    const char *why;
    if (req->has_url) {
        if (!kp_endpoint_url_ok(req->url, &why)) return kp_error_set(e, KP_ERR_INVALID, "url", "%s", why);
        snprintf(ep->url, sizeof ep->url, "%s", req->url);
    }
    if (req->has_description) snprintf(ep->description, sizeof ep->description, "%s", req->description);
    if (req->has_kinds) ep->kinds = req->kinds;
    if (req->has_active) ep->active = req->active;
    return KP_OK;
}

kp_err kp_office_endpoint_create(kp_office *o, const kp_endpoint_req *req, kp_buf *out,
                                 kp_error *e)
{
    kp_err err = kp_office_require(o, KP_PERM_NOTIFY_MANAGE, e);
    if (err == KP_OK) err = people_need_key(o, e);
    if (err) return err;
    if (!req->has_url)
        return kp_error_set(e, KP_ERR_INVALID, "url",
                            "is required: where to POST the deliveries (http:// or https://)");
    kp_webhook_endpoint ep;
    memset(&ep, 0, sizeof ep);
    ep.active = true;
    if ((err = endpoint_apply(req, &ep, e))) return err;
    size_t n = 0;
    kp_webhook_endpoint *list = calloc(KP_ENDPOINTS_MAX, sizeof *list);
    if (list == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    err = nops(o)->endpoints_list(o->st, list, KP_ENDPOINTS_MAX, &n);
    free(list);
    if (err) return storage(o, err, e);
    if (n >= KP_ENDPOINTS_MAX)
        return kp_error_set(e, KP_ERR_LIMIT, "", "a database holds at most %d webhook endpoints; "
                            "make one inactive and reuse it with PATCH", KP_ENDPOINTS_MAX);
    char secret[96];
    if ((err = endpoint_new_secret(o, &ep, secret, sizeof secret, e))) return err;
    ep.created_at = ep.updated_at = o->now;
    err = nops(o)->endpoint_insert(o->st, &ep);
    if (err == KP_OK) {
        char target[48];
        snprintf(target, sizeof target, "endpoint:%lld", (long long)ep.id);
        err = kp_office_audit(o, "webhook.create", target, "kinds=%s", ep.kinds ? "some" : "all");
    }
    if (err == KP_OK) {
        kp_buf_reset(out);
        endpoint_json(out, &ep, secret);
    }
    sodium_memzero(secret, sizeof secret);
    return err ? storage(o, err, e) : KP_OK;
}

kp_err kp_office_endpoint_update(kp_office *o, int64_t id, const kp_endpoint_req *req, kp_buf *out,
                                 kp_error *e)
{
    kp_err err = kp_office_require(o, KP_PERM_NOTIFY_MANAGE, e);
    kp_webhook_endpoint ep;
    if (err || (err = endpoint_load(o, id, &ep, e))) return err;
    if ((err = endpoint_apply(req, &ep, e))) return err;
    ep.updated_at = o->now;
    err = nops(o)->endpoint_update(o->st, &ep);
    if (err == KP_OK) {
        char target[48];
        snprintf(target, sizeof target, "endpoint:%lld", (long long)id);
        err = kp_office_audit(o, "webhook.edit", target, "active=%s%s%s", ep.active ? "yes" : "no",
                              req->has_url ? " url" : "", req->has_kinds ? " kinds" : "");
    }
    if (err) return storage(o, err, e);
    kp_buf_reset(out);
    endpoint_json(out, &ep, NULL);
    return KP_OK;
}

kp_err kp_office_endpoint_rotate(kp_office *o, int64_t id, kp_buf *out, kp_error *e)
{
    kp_err err = kp_office_require(o, KP_PERM_NOTIFY_MANAGE, e);
    if (err == KP_OK) err = people_need_key(o, e);
    kp_webhook_endpoint ep;
    if (err || (err = endpoint_load(o, id, &ep, e))) return err;
    char secret[96];
    if ((err = endpoint_new_secret(o, &ep, secret, sizeof secret, e))) return err;
    ep.updated_at = o->now;
    err = nops(o)->endpoint_update(o->st, &ep);
    if (err == KP_OK) {
        char target[48];
        snprintf(target, sizeof target, "endpoint:%lld", (long long)id);
        err = kp_office_audit(o, "webhook.rotate", target, "%s", "");
    }
    if (err == KP_OK) {
        kp_buf_reset(out);
        endpoint_json(out, &ep, secret);
    }
    sodium_memzero(secret, sizeof secret);
    return err ? storage(o, err, e) : KP_OK;
}

/* ------------------------------------------------------------ templates */

static const char *const builtin_languages[] = {"ru", "en"};
static const kp_channel template_channels[] = {KP_CHANNEL_EMAIL, KP_CHANNEL_SMS};

static void template_head(kp_buf *out, kp_notify_kind kind, kp_channel channel,
                          const char *language, const char *source)
{
    kp_buf_puts(out, "{");
    kp_buf_json_kv_str(out, "kind", kp_notify_kind_name(kind), false);
    kp_buf_json_kv_str(out, "channel", kp_channel_name(channel), true);
    kp_buf_json_kv_str(out, "language", language, true);
    kp_buf_json_kv_str(out, "source", source, true);
}

kp_err kp_office_templates(kp_office *o, kp_buf *out, kp_error *e)
{
    kp_err err = kp_office_require(o, KP_PERM_NOTIFY_READ, e);
    if (err) return err;
    kp_template_row *rows = calloc(KP_TEMPLATES_STORED_MAX, sizeof *rows);
    if (rows == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    size_t n = 0;
    err = nops(o)->templates_list(o->st, rows, KP_TEMPLATES_STORED_MAX, &n);
    if (err) {
        free(rows);
        return storage(o, err, e);
    }
    kp_buf_reset(out);
    kp_buf_puts(out, "{\"templates\":[");
    bool first = true;
    for (int k = 1; k < KP_NOTIFY__COUNT; k++)
        for (size_t c = 0; c < 2; c++) {
            kp_channel ch = template_channels[c];
            /* The built-in languages, then any other a stored one has. */
            for (size_t l = 0; l < 2; l++) {
                const char *lang = builtin_languages[l];
                const kp_template_row *stored = NULL;
                for (size_t i = 0; i < n && !stored; i++)
                    if (rows[i].kind == (kp_notify_kind)k && rows[i].channel == ch &&
                        strcmp(rows[i].language, lang) == 0)
                        stored = &rows[i];
                bool builtin = kp_template_builtin((kp_notify_kind)k, ch, lang) != NULL;
                if (!stored && !builtin) continue;
                if (!first) kp_buf_puts(out, ",");
                first = false;
                template_head(out, (kp_notify_kind)k, ch, lang, stored ? "stored" : "builtin");
                kp_buf_puts(out, builtin ? ",\"builtin\":true" : ",\"builtin\":false");
                people_time_kv(out, "updated_at", stored ? stored->updated_at : 0);
                kp_buf_puts(out, "}");
            }
            for (size_t i = 0; i < n; i++) {
                if (rows[i].kind != (kp_notify_kind)k || rows[i].channel != ch ||
                    strcmp(rows[i].language, "ru") == 0 || strcmp(rows[i].language, "en") == 0)
                    continue;
                if (!first) kp_buf_puts(out, ",");
                first = false;
                template_head(out, rows[i].kind, ch, rows[i].language, "stored");
                kp_buf_puts(out, ",\"builtin\":false");
                people_time_kv(out, "updated_at", rows[i].updated_at);
                kp_buf_puts(out, "}");
            }
        }
    kp_buf_puts(out, "]}");
    for (size_t i = 0; i < n; i++) kp_template_row_release(&rows[i]);
    free(rows);
    return KP_OK;
}

kp_err kp_office_template(kp_office *o, kp_notify_kind kind, kp_channel channel,
                          const char *language, kp_buf *out, kp_error *e)
{
    kp_err err = kp_office_require(o, KP_PERM_NOTIFY_READ, e);
    if (err) return err;
    kp_template_row row;
    memset(&row, 0, sizeof row);
    err = nops(o)->template_get(o->st, kind, channel, language, &row);
    const kp_template_text *b = kp_template_builtin(kind, channel, language);
    if (err == KP_ERR_NOT_FOUND && b == NULL)
        return kp_error_set(e, KP_ERR_NOT_FOUND, "template",
                            "no template for %s by %s in %s: neither stored nor built in (PUT one)",
                            kp_notify_kind_name(kind), kp_channel_name(channel), language);
    if (err && err != KP_ERR_NOT_FOUND) return storage(o, err, e);
    bool stored = err == KP_OK;
    kp_buf_reset(out);
    template_head(out, kind, channel, language, stored ? "stored" : "builtin");
    kp_buf_json_kv_str(out, "subject", stored ? row.subject : b->subject ? b->subject : "", true);
    kp_buf_json_kv_str(out, "text", stored ? row.text : b->text ? b->text : "", true);
    kp_buf_json_kv_str(out, "html", stored ? row.html : b->html ? b->html : "", true);
    people_time_kv(out, "updated_at", stored ? row.updated_at : 0);
    if (stored) kp_buf_json_kv_str(out, "actor", row.actor, true);
    kp_buf_puts(out, ",\"fields\":[");
    const char *const *fields = kp_template_fields(kind);
    for (size_t i = 0; fields && fields[i]; i++) {
        if (i) kp_buf_puts(out, ",");
        kp_buf_json_str(out, fields[i]);
    }
    kp_buf_puts(out, "]}");
    if (stored) kp_template_row_release(&row);
    return KP_OK;
}

static kp_err compile_part(kp_notify_kind kind, const char *text, const char *field,
                           kp_template **t, kp_error *e)
{
    *t = NULL;
    if (text == NULL || text[0] == '\0') return KP_OK;
    return kp_template_compile(kind, text, field, t, e);
}

kp_err kp_office_template_check(kp_notify_kind kind, kp_channel channel, const char *subject,
                                const char *text, const char *html, kp_error *e)
{
    if (channel != KP_CHANNEL_EMAIL && channel != KP_CHANNEL_SMS)
        return kp_error_set(e, KP_ERR_INVALID, "channel",
                            "templates are for email or sms (a webhook sends the figures as JSON)");
    if (text == NULL || text[0] == '\0')
        return kp_error_set(e, KP_ERR_INVALID, "text", "is required: the message's plain text");
    if (channel == KP_CHANNEL_SMS && ((subject && subject[0]) || (html && html[0])))
        return kp_error_set(e, KP_ERR_INVALID, subject && subject[0] ? "subject" : "html",
                            "an SMS has only a text (no subject, no html)");
    if (channel == KP_CHANNEL_EMAIL && (subject == NULL || subject[0] == '\0'))
        return kp_error_set(e, KP_ERR_INVALID, "subject", "is required for an e-mail");
    const char *parts[3] = {subject, text, html};
    const char *names[3] = {"subject", "text", "html"};
    for (size_t i = 0; i < 3; i++) {
        kp_template *t;
        kp_err err = compile_part(kind, parts[i], names[i], &t, e);
        kp_template_free(t);
        if (err) return err;
    }
    return KP_OK;
}

static bool language_ok(const char *l)
{
    size_t n = strlen(l);
    if (n < 2 || n >= KP_LANGUAGE_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if (!((l[i] >= 'a' && l[i] <= 'z') || (l[i] == '-' && i > 0 && i + 1 < n))) return false;
    return true;
}

static kp_err language_check(const char *l, const char *field, kp_error *e)
{
    if (language_ok(l)) return KP_OK;
    return kp_error_set(e, KP_ERR_INVALID, field,
                        "must be a language code of 2 to 7 lowercase letters (\"ru\", \"en\")");
}

kp_err kp_office_template_put(kp_office *o, kp_template_row *t, kp_buf *out, kp_error *e)
{
    kp_err err = kp_office_require(o, KP_PERM_NOTIFY_MANAGE, e);
    if (err || (err = language_check(t->language, "language", e)) ||
        (err = kp_office_template_check(t->kind, t->channel, t->subject, t->text, t->html, e)))
        return err;
    t->updated_at = o->now;
    snprintf(t->actor, sizeof t->actor, "%s", o->actor.name);
    err = nops(o)->template_put(o->st, t);
    if (err == KP_OK) {
        char target[64];
        snprintf(target, sizeof target, "template:%s/%s/%s", kp_notify_kind_name(t->kind),
                 kp_channel_name(t->channel), t->language);
        err = kp_office_audit(o, "template.put", target, "bytes=%zu",
                              strlen(t->subject) + strlen(t->text) + strlen(t->html));
    }
    if (err) return storage(o, err, e);
    return kp_office_template(o, t->kind, t->channel, t->language, out, e);
}

kp_err kp_office_template_delete(kp_office *o, kp_notify_kind kind, kp_channel channel,
                                 const char *language, kp_buf *out, kp_error *e)
{
    kp_err err = kp_office_require(o, KP_PERM_NOTIFY_MANAGE, e);
    if (err) return err;
    kp_template_row row;
    memset(&row, 0, sizeof row);
    err = nops(o)->template_get(o->st, kind, channel, language, &row);
    if (err == KP_ERR_NOT_FOUND)
        return kp_error_set(e, err, "template",
                            "no stored template for %s by %s in %s (a built-in one cannot be "
                            "deleted)", kp_notify_kind_name(kind), kp_channel_name(channel),
                            language);
    if (err) return storage(o, err, e);
    kp_template_row_release(&row);
    err = nops(o)->template_delete(o->st, kind, channel, language);
    if (err == KP_OK) {
        char target[64];
        snprintf(target, sizeof target, "template:%s/%s/%s", kp_notify_kind_name(kind),
                 kp_channel_name(channel), language);
        err = kp_office_audit(o, "template.delete", target, "%s", "");
    }
    if (err) return storage(o, err, e);
    kp_buf_reset(out);
    template_head(out, kind, channel, language, "deleted");
    kp_buf_puts(out, kp_template_builtin(kind, channel, language) ? ",\"builtin\":true}"
                                                                   : ",\"builtin\":false}");
    return KP_OK;
}

/* Sample figures for a preview: a purchase that earned 1 560 points. */
static kp_err sample_vars(kp_office *o, kp_notify_kind kind, const char *language, kp_vars *vars,
                          kp_error *e)
{
    kp_notify_figures f;
    memset(&f, 0, sizeof f);
    f.earned = 1560;
    f.burnt = kind == KP_NOTIFY_BURNT ? 500 : 0;
    f.points = f.earned - f.burnt;
    f.balance = 4426;
    f.has_balance = true;
    f.n_kinds = 1;
    snprintf(f.by_kind[0].kind, sizeof f.by_kind[0].kind, "regular");
    f.by_kind[0].points = 4426;
    f.expiry_points = 2000;
    f.expiry_at = o->now + 30 * KP_DAY_SECONDS;
    f.amount_minor = 1234550;
    snprintf(f.currency, sizeof f.currency, "RUB");
    snprintf(f.store, sizeof f.store, "main");
    snprintf(f.receipt, sizeof f.receipt, "R-1001");
    snprintf(f.tier, sizeof f.tier, "gold");
    snprintf(f.tier_before, sizeof f.tier_before, "silver");
    snprintf(f.other_card, sizeof f.other_card, "2000000000024");
    snprintf(f.reason, sizeof f.reason, "lost");
    snprintf(f.rule, sizeof f.rule, "birthday");
    snprintf(f.item, sizeof f.item, "%s", strcmp(language, "ru") == 0 ? "Термокружка" : "Travel mug");
    f.order_id = 1042;
    f.qty = 1;
    kp_buf payload;
    kp_buf_init(&payload, 64 * 1024);
    kp_err err = kp_notify_payload(&f, &payload);
    json_t *root = NULL;
    if (err == KP_OK) root = json_loadb(payload.data, payload.len, 0, NULL);
    kp_buf_release(&payload);
    if (root == NULL) return kp_error_set(e, err ? err : KP_ERR_INTERNAL, "", "sample figures failed");
    kp_notify_event ev;
    memset(&ev, 0, sizeof ev);
    ev.id = 1;
    snprintf(ev.key, sizeof ev.key, "preview");
    ev.kind = kind;
    ev.account_id = 1;
    ev.customer_id = 1;
    snprintf(ev.card, sizeof ev.card, "2000000000017");
    ev.op_id = 1;
    ev.at = o->now;
    memset(vars, 0, sizeof *vars);
    err = kp_vars_from_event(&ev, root, language, strcmp(language, "ru") == 0 ? "Анна" : "Anna",
                             o->program ? o->program->name : "Kopilka", vars, e);
    json_decref(root);
    if (err) return err;
    if (kp_vars_get(vars, "code") == NULL) kp_vars_set(vars, "code", "123456");
    if (kp_vars_get(vars, "unsubscribe_url") == NULL)
        kp_vars_set(vars, "unsubscribe_url", "https://loyalty.example/v1/unsubscribe/SAMPLE");
    return KP_OK;
}

static kp_err render_part(kp_office *o, kp_notify_kind kind, const char *text, const char *field,
                          const kp_vars *vars, bool html, kp_buf *out, kp_error *e)
{
    kp_template *t;
    kp_err err = compile_part(kind, text, field, &t, e);
    if (err) return err;
    kp_buf_puts(out, ",");
    kp_buf_json_key(out, field);
    if (t == NULL) {
        kp_buf_puts(out, "null");
        return KP_OK;
    }
    kp_buf part;
    kp_buf_init(&part, 256 * 1024);
    err = kp_template_render(t, vars, html, &part);
    kp_template_free(t);
    if (err == KP_OK) {
        kp_buf_append(&part, "", 1);
        kp_buf_json_str(out, part.data);
    }
    kp_buf_release(&part);
    (void)o;
    return err ? kp_error_set(e, err, field, "the rendered text is over 256 KiB") : KP_OK;
}

kp_err kp_office_template_preview(kp_office *o, kp_notify_kind kind, kp_channel channel,
                                  const char *language, const char *subject, const char *text,
                                  const char *html, kp_buf *out, kp_error *e)
{
    kp_err err = kp_office_require(o, KP_PERM_NOTIFY_READ, e);
    if (err || (err = language_check(language, "language", e))) return err;
    kp_template_row row;
    memset(&row, 0, sizeof row);
    bool stored = false;
    if (text == NULL) {
        /* The template in use: stored, else built in. */
        err = nops(o)->template_get(o->st, kind, channel, language, &row);
        if (err == KP_OK) {
            stored = true;
            subject = row.subject, text = row.text, html = row.html;
        } else if (err == KP_ERR_NOT_FOUND) {
            const kp_template_text *b = kp_template_builtin(kind, channel, language);
            if (b == NULL)
                return kp_error_set(e, KP_ERR_NOT_FOUND, "template",
                                    "no template for %s by %s in %s to preview: give the texts",
                                    kp_notify_kind_name(kind), kp_channel_name(channel),
                                    language);
            subject = b->subject, text = b->text, html = b->html;
        } else {
            return storage(o, err, e);
        }
    } else if ((err = kp_office_template_check(kind, channel, subject, text, html, e))) {
        return err;
    }
    kp_vars *vars = malloc(sizeof *vars);
    if (vars == NULL) err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    else err = sample_vars(o, kind, language, vars, e);
    if (err == KP_OK) {
        kp_buf_reset(out);
        template_head(out, kind, channel, language, "preview");
        err = render_part(o, kind, subject, "subject", vars, false, out, e);
        if (err == KP_OK) err = render_part(o, kind, text, "text", vars, false, out, e);
        if (err == KP_OK) err = render_part(o, kind, html, "html", vars, true, out, e);
        kp_buf_puts(out, "}");
    }
    free(vars);
    if (stored) kp_template_row_release(&row);
    return err;
}

/* ---------------------------------------------------------- preferences */

kp_err kp_utc_offset_parse(const char *text, int32_t *minutes, kp_error *e)
{
    if (strcmp(text, "Z") == 0) {
        *minutes = 0;
        return KP_OK;
    }
    bool ok = strlen(text) == 6 && (text[0] == '+' || text[0] == '-') && text[3] == ':';
    for (int i = 1; ok && i < 6; i++)
        if (i != 3 && !isdigit((unsigned char)text[i])) ok = false;
    int h = ok ? (text[1] - '0') * 10 + (text[2] - '0') : 0;
    int m = ok ? (text[4] - '0') * 10 + (text[5] - '0') : 0;
    if (!ok || m > 59 || h * 60 + m > 14 * 60)
        return kp_error_set(e, KP_ERR_INVALID, "utc_offset",
                            "must be an offset from UTC as \"+03:00\", \"-05:30\" or \"Z\" "
                            "(-14:00 to +14:00), or null");
    *minutes = (text[0] == '-' ? -1 : 1) * (h * 60 + m);
    return KP_OK;
}

static kp_err customer_live(kp_office *o, int64_t id, kp_customer_row *row, kp_error *e)
{
    kp_err err = o->st->ops->people->customer_get(o->st, id, row);
    if (err == KP_ERR_NOT_FOUND) return kp_error_set(e, err, "customer", "no such customer");
    if (err) return storage(o, err, e);
    if (row->state == KP_CUSTOMER_ERASED)
        return kp_error_set(e, KP_ERR_NOT_FOUND, "customer",
                            "the customer was erased: nothing is sent to them");
    return KP_OK;
}

/* The stored preferences, else the policy's defaults (*stored false). */
static kp_err prefs_load(kp_office *o, int64_t customer_id, kp_notify_prefs *p, bool *stored,
                         kp_error *e)
{
    memset(p, 0, sizeof *p);
    kp_err err = nops(o)->prefs_get(o->st, customer_id, p);
    *stored = err == KP_OK;
    if (err == KP_ERR_NOT_FOUND) {
        const kp_notify_policy *pol = kp_notify_policy_of(o->st, o->program);
        memset(p, 0, sizeof *p);
        p->customer_id = customer_id;
        p->transactional = pol->transactional_default;
        p->marketing = pol->marketing_default;
        err = KP_OK;
    }
    return err ? storage(o, err, e) : KP_OK;
}

static void prefs_members(kp_office *o, const kp_notify_prefs *p, bool stored, kp_buf *out)
{
    const kp_notify_policy *pol = kp_notify_policy_of(o->st, o->program);
    kp_buf_json_kv_i64(out, "customer", p->customer_id, false);
    kp_buf_json_kv_str(out, "language", p->language[0] ? p->language : pol->language, true);
    if (p->has_utc_offset) {
        int32_t m = p->utc_offset_minutes, a = m < 0 ? -m : m;
        char text[24];
        snprintf(text, sizeof text, "%c%02d:%02d", m < 0 ? '-' : '+', (int)(a / 60), (int)(a % 60));
        kp_buf_json_kv_str(out, "utc_offset", text, true);
    } else {
        kp_buf_puts(out, ",\"utc_offset\":null");
    }
    channels_kv(out, "transactional", p->transactional);
    channels_kv(out, "marketing", p->marketing);
    kp_buf_puts(out, ",\"marketing_consent\":{");
    kp_buf_puts(out, p->marketing_consent_at ? "\"given\":true" : "\"given\":false");
    str_or_null(out, "version", p->marketing_consent_at ? p->marketing_consent_version : "");
    people_time_kv(out, "at", p->marketing_consent_at);
    kp_buf_puts(out, "}");
    kp_buf_puts(out, stored ? ",\"stored\":true" : ",\"stored\":false");
    people_time_kv(out, "updated_at", stored ? p->updated_at : 0);
}

kp_err kp_prefs_json(kp_office *o, int64_t customer_id, kp_buf *out, kp_error *e)
{
    kp_notify_prefs p;
    bool stored;
    kp_err err = prefs_load(o, customer_id, &p, &stored, e);
    if (err == KP_OK) prefs_members(o, &p, stored, out);
    return err;
}

kp_err kp_office_prefs(kp_office *o, int64_t customer_id, kp_buf *out, kp_error *e)
{
    kp_err err = kp_office_require_customer(o, KP_PERM_CUSTOMER_READ, customer_id, e);
    kp_customer_row *row = malloc(sizeof *row);
    if (err == KP_OK && row == NULL) err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    if (err == KP_OK) err = customer_live(o, customer_id, row, e);
    free(row);
    if (err) return err;
    kp_buf_reset(out);
    kp_buf_puts(out, "{");
    err = kp_prefs_json(o, customer_id, out, e);
    kp_buf_puts(out, "}");
    return err;
}

/* Stores p and cancels the pending marketing messages of the channels in
 * `off`; audits with `action` and `why`. */
static kp_err prefs_store(kp_office *o, kp_notify_prefs *p, uint32_t off, const char *action,
                          const char *why, int64_t *cancelled, kp_error *e)
{
    *cancelled = 0;
    p->updated_at = o->now;
    kp_err err = nops(o)->prefs_put(o->st, p);
    if (err == KP_OK && off)
        err = nops(o)->messages_cancel(o->st, p->customer_id, off, marketing_kinds(), cancelled);
    if (err == KP_OK) {
        char target[48];
        snprintf(target, sizeof target, "customer:%lld", (long long)p->customer_id);
        err = kp_office_audit(o, action, target, "%s cancelled=%lld", why, (long long)*cancelled);
    }
    return err ? storage(o, err, e) : KP_OK;
}

kp_err kp_office_prefs_put(kp_office *o, int64_t customer_id, const kp_prefs_req *req, kp_buf *out,
                           kp_error *e)
{
    kp_err err = kp_office_require_customer(o, KP_PERM_CUSTOMER_EDIT, customer_id, e);
    kp_customer_row *row = malloc(sizeof *row);
    if (err == KP_OK && row == NULL) err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    if (err == KP_OK) err = customer_live(o, customer_id, row, e);
    free(row);
    if (err) return err;
    if (req->has_language && req->language[0] &&
        (err = language_check(req->language, "language", e)))
        return err;
    if (req->has_consent && req->consent_given && req->consent_version[0] == '\0')
        return kp_error_set(e, KP_ERR_INVALID, "marketing_consent.version",
                            "is required when consent is given: the version of the text the "
                            "customer agreed to (\"2027-01\")");
    kp_notify_prefs p;
    bool stored;
    if ((err = prefs_load(o, customer_id, &p, &stored, e))) return err;
    uint32_t before = p.marketing_consent_at ? p.marketing : 0;
    if (req->has_language) snprintf(p.language, sizeof p.language, "%s", req->language);
    if (req->has_utc_offset) {
        p.has_utc_offset = !req->clear_utc_offset;
        p.utc_offset_minutes = req->clear_utc_offset ? 0 : req->utc_offset_minutes;
    }
    if (req->has_transactional) p.transactional = req->transactional;
    if (req->has_marketing) p.marketing = req->marketing;
    const char *why = "prefs";
    if (req->has_consent) {
        if (req->consent_given) {
            if (!p.marketing_consent_at ||
                strcmp(p.marketing_consent_version, req->consent_version) != 0) {
                p.marketing_consent_at = o->now;
                why = "consent=given";
            }
            snprintf(p.marketing_consent_version, sizeof p.marketing_consent_version, "%s",
                     req->consent_version);
        } else {
            if (p.marketing_consent_at) why = "consent=withdrawn";
            p.marketing_consent_at = 0;
            p.marketing_consent_version[0] = '\0';
        }
    }
    uint32_t after = p.marketing_consent_at ? p.marketing : 0;
    int64_t cancelled;
    if ((err = prefs_store(o, &p, before & ~after, "notify.prefs", why, &cancelled, e)))
        return err;
    kp_buf_reset(out);
    kp_buf_puts(out, "{");
    prefs_members(o, &p, true, out);
    kp_buf_json_kv_i64(out, "cancelled", cancelled, true);
    kp_buf_puts(out, "}");
    return KP_OK;
}

/* --------------------------------------------- unsubscribe, SMS replies */

/* Takes `channel` off the customer's marketing. */
static kp_err marketing_off(kp_office *o, int64_t customer_id, kp_channel channel,
                            const char *why, int64_t *cancelled, kp_error *e)
{
    kp_notify_prefs p;
    bool stored;
    kp_err err = prefs_load(o, customer_id, &p, &stored, e);
    if (err) return err;
    p.marketing &= ~(1u << channel);
    return prefs_store(o, &p, 1u << channel, "notify.unsubscribe", why, cancelled, e);
}

kp_err kp_office_unsubscribe(kp_office *o, const kp_notify_env *env, const char *token,
                             kp_channel *channel, int64_t *cancelled, kp_error *e)
{
    int64_t customer_id = 0;
    *cancelled = 0;
    if (!kp_unsubscribe_check(env, token, &customer_id, channel) || customer_id <= 0)
        return kp_error_set(e, KP_ERR_NOT_FOUND, "token",
                            "this unsubscribe link is not valid: copy the whole link from the "
                            "message");
    kp_customer_row *row = malloc(sizeof *row);
    if (row == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    kp_err err = customer_live(o, customer_id, row, e);
    free(row);
    if (err) return err;
    kp_office_act_as_customer(o, customer_id);
    char why[32];
    snprintf(why, sizeof why, "link channel=%s", kp_channel_name(*channel));
    return marketing_off(o, customer_id, *channel, why, cancelled, e);
}

/* Upper-cases ASCII letters and the Russian alphabet (а..я, ё) of the
 * UTF-8 text s[0..n) in place; every other byte stays. Each letter keeps
 * its length (two bytes for Cyrillic in either case). */
static void fold_upper(char *s, size_t n)
{
    unsigned char *u = (unsigned char *)s;
    for (size_t i = 0; i < n; i++) {
        if (u[i] >= 'a' && u[i] <= 'z') {
            u[i] = (unsigned char)(u[i] - 'a' + 'A');
        } else if (i + 1 < n && u[i] == 0xD0 && u[i + 1] >= 0xB0 && u[i + 1] <= 0xBF) {
            u[++i] -= 0x20; /* а..п U+0430..043F -> А..П U+0410..041F */
        } else if (i + 1 < n && u[i] == 0xD1 && u[i + 1] >= 0x80 && u[i + 1] <= 0x8F) {
            u[i] = 0xD0; /* р..я U+0440..044F -> Р..Я U+0420..042F */
            u[++i] += 0x20;
        } else if (i + 1 < n && u[i] == 0xD1 && u[i + 1] == 0x91) {
            u[i] = 0xD0; /* ё U+0451 -> Ё U+0401 */
            u[++i] = 0x81;
        }
    }
}

bool kp_sms_is_stop(const char *text)
{
    static const char *const words[] = {"STOP", "СТОП", "ОТПИСКА", "UNSUBSCRIBE", NULL};
    /* Trim spaces and punctuation (ASCII) around the word. */
    const char *a = text;
    while (*a && (isspace((unsigned char)*a) || ispunct((unsigned char)*a))) a++;
    size_t n = strlen(a);
    while (n && (isspace((unsigned char)a[n - 1]) || ispunct((unsigned char)a[n - 1]))) n--;
    if (n == 0 || n > 32) return false;
    char w[40];
    memcpy(w, a, n);
    w[n] = '\0';
    fold_upper(w, n);
    for (size_t i = 0; words[i]; i++)
        if (strcmp(w, words[i]) == 0) return true;
    return false;
}

kp_err kp_office_sms_inbound(kp_office *o, const char *from, const char *text, bool *acted,
                             kp_error *e)
{
    *acted = false;
    if (!kp_sms_is_stop(text)) return KP_OK;
    int64_t customer_id;
    uint8_t ix[32];
    kp_err err = kp_office_customer_by_contact(o, KP_CHANNEL_SMS, from, &customer_id, ix, e);
    if (err == KP_ERR_NOT_FOUND) return KP_OK; /* nobody's phone: nothing to stop */
    if (err) return err;
    kp_office_act_as_customer(o, customer_id);
    int64_t cancelled;
    err = marketing_off(o, customer_id, KP_CHANNEL_SMS, "sms-reply channel=sms", &cancelled, e);
    *acted = err == KP_OK;
    return err;
}

/* ------------------------------------------------------------- login */

kp_err kp_office_customer_by_contact(kp_office *o, kp_channel channel, const char *contact,
                                     int64_t *customer_id, uint8_t contact_ix[32], kp_error *e)
{
    kp_err err = people_need_key(o, e);
    if (err) return err;
    const char *why;
    if (channel == KP_CHANNEL_SMS) {
        char norm[KP_PHONE_MAX + 1];
        if (!kp_norm_phone_in(contact, kp_phone_region_of(o->program), norm, &why))
            return kp_error_set(e, KP_ERR_INVALID, "phone", "%s", why);
        kp_pii_index(o->pii, KP_PII_PHONE, norm, contact_ix);
    } else {
        char norm[KP_EMAIL_MAX + 1];
        if (!kp_norm_email(contact, norm, &why))
            return kp_error_set(e, KP_ERR_INVALID, "email", "%s", why);
        kp_pii_index(o->pii, KP_PII_EMAIL, norm, contact_ix);
    }
    err = o->st->ops->people->customer_by_index(
        o->st, channel == KP_CHANNEL_SMS ? KP_CONTACT_PHONE : KP_CONTACT_EMAIL, contact_ix,
        customer_id);
    if (err == KP_ERR_NOT_FOUND) return kp_error_set(e, err, "customer", "no such customer");
    return err ? storage(o, err, e) : KP_OK;
}

/* The keyed hash of a customer's code: bound to the customer. */
static void code_hash(const kp_office *o, int64_t customer_id, const char *code, uint8_t out[32])
{
    char text[48];
    snprintf(text, sizeof text, "%lld:%s", (long long)customer_id, code);
    kp_pii_index(o->pii, KP_PII_LOGIN_CODE, text, out);
    sodium_memzero(text, sizeof text);
}

/* Writes an event whose payload is sealed (a login code, a campaign). */
static kp_err sealed_event(kp_office *o, kp_notify_kind kind, const char *key, int64_t account_id,
                           int64_t customer_id, const char *payload, int64_t *event_id,
                           kp_error *e)
{
    size_t len = strlen(payload), cap = len + KP_PII_OVERHEAD, sealed_len = 0;
    uint8_t *sealed = malloc(cap);
    if (sealed == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    kp_err err = kp_pii_seal(o->pii, KP_PII_MESSAGE, payload, len, sealed, cap, &sealed_len);
    if (err) {
        free(sealed);
        return kp_error_set(e, err, "", "the payload could not be sealed");
    }
    kp_notify_event ev;
    memset(&ev, 0, sizeof ev);
    snprintf(ev.key, sizeof ev.key, "%s", key);
    ev.kind = kind;
    ev.account_id = account_id;
    ev.customer_id = customer_id;
    ev.at = o->now;
    ev.sealed = true;
    ev.payload = sealed;
    ev.payload_len = sealed_len;
    err = nops(o)->event_insert(o->st, &ev);
    free(sealed);
    *event_id = ev.id;
    return err ? storage(o, err, e) : KP_OK;
}

kp_err kp_office_campaign_event(kp_office *o, const char *key, int64_t account_id,
                                int64_t customer_id, const char *payload, bool *queued,
                                kp_error *e)
{
    int64_t event_id = 0;
    kp_err err = people_need_key(o, e);
    if (err == KP_OK)
        err = sealed_event(o, KP_NOTIFY_CAMPAIGN, key, account_id, customer_id, payload,
                           &event_id, e);
    *queued = err == KP_OK && event_id != 0;
    return err;
}

kp_err kp_office_login_code(kp_office *o, int64_t customer_id, kp_channel channel, kp_error *e)
{
    kp_err err = people_need_key(o, e);
    if (err) return err;
    kp_customer_row *row = malloc(sizeof *row);
    if (row == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    if ((err = customer_live(o, customer_id, row, e))) {
        free(row);
        return err;
    }
    const kp_notify_policy *pol = kp_notify_policy_of(o->st, o->program);
    char code[KP_LOGIN_CODE_DIGITS + 1];
    snprintf(code, sizeof code, "%06u", (unsigned)randombytes_uniform(1000000));
    uint8_t hash[32];
    code_hash(o, customer_id, code, hash);
    err = nops(o)->login_code_put(o->st, customer_id, hash,
                                  o->now + pol->login_code_ttl_seconds, o->now);
    if (err) err = storage(o, err, e);
    if (err == KP_OK) {
        char payload[96], key[KP_NOTIFY_KEY_MAX], nonce[17];
        uint8_t r[8];
        randombytes_buf(r, sizeof r);
        sodium_bin2hex(nonce, sizeof nonce, r, sizeof r);
        snprintf(payload, sizeof payload, "{\"code\":\"%s\",\"channel\":\"%s\"}", code,
                 kp_channel_name(channel));
        snprintf(key, sizeof key, "login:%lld:%s", (long long)customer_id, nonce);
        int64_t event_id;
        err = sealed_event(o, KP_NOTIFY_LOGIN_CODE, key, row->account_id, row->id, payload,
                           &event_id, e);
        sodium_memzero(payload, sizeof payload);
    }
    sodium_memzero(code, sizeof code);
    free(row);
    if (err) return err;
    kp_office_act_as_customer(o, customer_id);
    char target[48];
    snprintf(target, sizeof target, "customer:%lld", (long long)customer_id);
    err = kp_office_audit(o, "login.code", target, "channel=%s", kp_channel_name(channel));
    return err ? storage(o, err, e) : KP_OK;
}

kp_err kp_office_login(kp_office *o, int64_t customer_id, const char *code,
                       char token[KP_CUSTOMER_TOKEN_LEN + 1], kp_time *expires_at, kp_error *e)
{
    kp_err err = people_need_key(o, e);
    if (err) return err;
    const kp_notify_policy *pol = kp_notify_policy_of(o->st, o->program);
    uint8_t hash[32];
    code_hash(o, customer_id, code, hash);
    bool ok = false;
    err = nops(o)->login_code_check(o->st, customer_id, hash, o->now, pol->login_code_attempts,
                                    &ok);
    if (err && err != KP_ERR_NOT_FOUND) return storage(o, err, e);
    kp_office_act_as_customer(o, customer_id);
    char target[48];
    snprintf(target, sizeof target, "customer:%lld", (long long)customer_id);
    if (!ok) {
        /* The attempt is counted by the store; the caller keeps this write
         * (it answers 401 from a successful job). */
        err = kp_office_audit(o, "login.failed", target, "%s", "");
        if (err) return storage(o, err, e);
        return kp_error_set(e, KP_ERR_UNAUTHORIZED, "code",
                            "the code is wrong, expired or used up: ask for a new one at POST "
                            "/v1/login/code");
    }
    return kp_office_session_start(o, customer_id, token, expires_at, e);
}

kp_err kp_office_session_start(kp_office *o, int64_t customer_id,
                               char token[KP_CUSTOMER_TOKEN_LEN + 1], kp_time *expires_at,
                               kp_error *e)
{
    kp_office_act_as_customer(o, customer_id);
    uint8_t raw[32], token_hash[32];
    randombytes_buf(raw, sizeof raw);
    memcpy(token, "kpc_", 4);
    sodium_bin2hex(token + 4, 65, raw, sizeof raw);
    sodium_memzero(raw, sizeof raw);
    kp_token_hash(token, token_hash);
    *expires_at = o->now + KP_CUSTOMER_SESSION_TTL_SECONDS;
    kp_err err =
        nops(o)->customer_session_insert(o->st, token_hash, customer_id, o->now, *expires_at);
    char target[48];
    snprintf(target, sizeof target, "customer:%lld", (long long)customer_id);
    if (err == KP_OK) err = kp_office_audit(o, "login", target, "%s", "");
    return err ? storage(o, err, e) : KP_OK;
}

/* ------------------------------------------------------------- sign-up */

int64_t kp_signup_code_key(const uint8_t phone_ix[32])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | phone_ix[i];
    return -(int64_t)(v >> 2) - 1;
}

kp_err kp_office_signup_code(kp_office *o, const char *phone, const uint8_t phone_ix[32],
                             kp_error *e)
{
    kp_err err = people_need_key(o, e);
    if (err) return err;
    const kp_notify_policy *pol = kp_notify_policy_of(o->st, o->program);
    int64_t key_id = kp_signup_code_key(phone_ix);
    char code[KP_LOGIN_CODE_DIGITS + 1];
    snprintf(code, sizeof code, "%06u", (unsigned)randombytes_uniform(1000000));
    uint8_t hash[32];
    code_hash(o, key_id, code, hash);
    err = nops(o)->login_code_put(o->st, key_id, hash, o->now + pol->login_code_ttl_seconds,
                                  o->now);
    if (err) err = storage(o, err, e);
    if (err == KP_OK) {
        /* Nobody's yet: the phone travels (sealed) with the code. */
        char payload[160], key[KP_NOTIFY_KEY_MAX], nonce[17];
        uint8_t r[8];
        randombytes_buf(r, sizeof r);
        sodium_bin2hex(nonce, sizeof nonce, r, sizeof r);
        snprintf(payload, sizeof payload, "{\"code\":\"%s\",\"channel\":\"sms\",\"to\":\"%s\"}",
                 code, phone);
        snprintf(key, sizeof key, "signup:%s", nonce);
        int64_t event_id;
        err = sealed_event(o, KP_NOTIFY_LOGIN_CODE, key, 0, 0, payload, &event_id, e);
        sodium_memzero(payload, sizeof payload);
    }
    sodium_memzero(code, sizeof code);
    if (err) return err;
    err = kp_office_audit(o, "signup.code", "signup", "channel=sms");
    return err ? storage(o, err, e) : KP_OK;
}

kp_err kp_office_signup_check(kp_office *o, const uint8_t phone_ix[32], const char *code,
                              kp_error *e)
{
    kp_err err = people_need_key(o, e);
    if (err) return err;
    const kp_notify_policy *pol = kp_notify_policy_of(o->st, o->program);
    int64_t key_id = kp_signup_code_key(phone_ix);
    uint8_t hash[32];
    code_hash(o, key_id, code, hash);
    bool ok = false;
    err = nops(o)->login_code_check(o->st, key_id, hash, o->now, pol->login_code_attempts, &ok);
    if (err && err != KP_ERR_NOT_FOUND) return storage(o, err, e);
    if (ok) return KP_OK;
    if ((err = kp_office_audit(o, "signup.failed", "signup", "%s", "")))
        return storage(o, err, e);
    return kp_error_set(e, KP_ERR_UNAUTHORIZED, "code",
                        "the code is wrong, expired or used up: ask for a new one at POST "
                        "/v1/login/code with \"purpose\": \"signup\"");
}

static bool customer_token_shape(const char *token)
{
    if (strncmp(token, "kpc_", 4) != 0 || strlen(token) != KP_CUSTOMER_TOKEN_LEN) return false;
    for (const char *p = token + 4; *p; p++)
        if (!isxdigit((unsigned char)*p)) return false;
    return true;
}

kp_err kp_customer_session(kp_store *st, const char *token, kp_time now, int64_t *customer_id,
                           kp_time *expires_at)
{
    if (!customer_token_shape(token)) return KP_ERR_UNAUTHORIZED;
    uint8_t hash[32];
    kp_token_hash(token, hash);
    kp_err err = st->ops->notify->customer_session_find(st, hash, now, customer_id, expires_at);
    return err == KP_ERR_NOT_FOUND ? KP_ERR_UNAUTHORIZED : err;
}

kp_err kp_customer_logout(kp_store *st, const char *token, kp_error *e)
{
    uint8_t hash[32];
    kp_token_hash(token, hash);
    kp_err err = st->ops->notify->customer_session_delete(st, hash);
    return err ? kp_error_set(e, err, "", "storage failed: %s", st->last_error) : KP_OK;
}

/* ,"profile": the customer's record as staff read it (kp_customer_get). */
static kp_err me_profile(kp_office *o, int64_t customer_id, kp_buf *out, kp_error *e)
{
    kp_buf one;
    kp_buf_init(&one, 64 * 1024);
    kp_err err = kp_customer_get(o, customer_id, &one, e);
    if (err == KP_OK) {
        kp_buf_puts(out, ",\"profile\":");
        kp_buf_append(out, one.data, one.len);
    }
    kp_buf_release(&one);
    return err;
}

/* ,"transfers": what the program lets a customer give, or null. */
static void me_transfers(const kp_people_policy *p, kp_buf *out)
{
    if (!p->transfers.enabled) {
        kp_buf_puts(out, ",\"transfers\":null");
        return;
    }
    kp_buf_puts(out, ",\"transfers\":{");
    kp_buf_json_kv_i64(out, "max_points", p->transfers.max_points, false);
    kp_buf_json_kv_i64(out, "daily_max_points", p->transfers.daily_max_points, true);
    kp_buf_puts(out, ",\"kinds\":[");
    for (size_t i = 0; i < p->transfers.n_kinds; i++) {
        if (i) kp_buf_puts(out, ",");
        kp_buf_json_str(out, p->transfers.kinds[i]);
    }
    kp_buf_puts(out, "]}");
}

kp_err kp_office_me(kp_office *o, int64_t customer_id, kp_time expires_at, kp_buf *out,
                    kp_error *e)
{
    kp_card_info *cards = NULL;
    size_t n = 0;
    kp_err err = people_cards_all(o->st, customer_id, &cards, &n, e);
    if (err) return err;
    kp_buf card;
    kp_buf_init(&card, 256 * 1024);
    kp_buf_reset(out);
    kp_buf_puts(out, "{");
    kp_buf_json_kv_i64(out, "customer", customer_id, false);
    people_time_kv(out, "session_expires_at", expires_at);
    kp_buf_puts(out, ",\"cards\":[");
    bool first = true;
    for (size_t i = 0; i < n && err == KP_OK; i++) {
        if (cards[i].state == KP_CARD_REPLACED) continue;
        kp_buf_reset(&card);
        err = kp_service_card_program(o->st, o->program, cards[i].number, o->now, o->sc, &card, e);
        if (err) break;
        if (!first) kp_buf_puts(out, ",");
        first = false;
        kp_buf_append(out, card.data, card.len);
    }
    kp_buf_release(&card);
    free(cards);
    if (err) return err;
    kp_buf_puts(out, "],\"notifications\":{");
    err = kp_prefs_json(o, customer_id, out, e);
    kp_buf_puts(out, "}");
    if (err == KP_OK) err = me_profile(o, customer_id, out, e);
    if (err == KP_OK) me_transfers(o->policy, out);
    kp_buf_puts(out, "}");
    return err;
}

/* ---------------------------------------------------- the code limiter */

enum { LIMITER_SLOTS = 4096, LIMIT_PER_HOUR = 5, LIMIT_GAP_SECONDS = 60 };

struct kp_login_limiter {
    pthread_mutex_t lock;
    struct {
        uint8_t ix[32];
        kp_time at[LIMIT_PER_HOUR]; /* the last codes' times, 0 = none */
    } slot[LIMITER_SLOTS];
};

kp_login_limiter *kp_login_limiter_new(void)
{
    kp_login_limiter *l = calloc(1, sizeof *l);
    if (l) pthread_mutex_init(&l->lock, NULL);
    return l;
}

void kp_login_limiter_free(kp_login_limiter *l)
{
    if (l == NULL) return;
    pthread_mutex_destroy(&l->lock);
    free(l);
}

bool kp_login_limiter_take(kp_login_limiter *l, const uint8_t ix[32], kp_time now,
                           int64_t *retry_after)
{
    *retry_after = 0;
    pthread_mutex_lock(&l->lock);
    /* The contact's slot (by the first bytes of its index), else a free or
     * stale one nearby (linear probing over 8 slots). */
    size_t home = ((size_t)ix[0] << 8 | ix[1]) % LIMITER_SLOTS, pick = LIMITER_SLOTS;
    for (size_t k = 0; k < 8; k++) {
        size_t i = (home + k) % LIMITER_SLOTS;
        if (memcmp(l->slot[i].ix, ix, 32) == 0) {
            pick = i;
            break;
        }
        bool stale = true;
        for (int j = 0; j < LIMIT_PER_HOUR; j++)
            if (l->slot[i].at[j] > now - 3600) stale = false;
        if (stale && pick == LIMITER_SLOTS) pick = i;
    }
    bool ok = pick != LIMITER_SLOTS;
    if (!ok) *retry_after = LIMIT_GAP_SECONDS; /* the table is full near it: refused */
    if (ok && memcmp(l->slot[pick].ix, ix, 32) != 0) {
        memcpy(l->slot[pick].ix, ix, 32);
        memset(l->slot[pick].at, 0, sizeof l->slot[pick].at);
    }
    if (ok) {
        kp_time *at = l->slot[pick].at, last = 0, oldest = KP_TIME_NEVER;
        int live = 0, oldest_j = 0;
        for (int j = 0; j < LIMIT_PER_HOUR; j++) {
            if (at[j] > last) last = at[j];
            if (at[j] > now - 3600) live++;
            if (at[j] < oldest) oldest = at[j], oldest_j = j;
        }
        if (last && now - last < LIMIT_GAP_SECONDS) {
            ok = false;
            *retry_after = LIMIT_GAP_SECONDS - (now - last);
        } else if (live >= LIMIT_PER_HOUR) {
            ok = false;
            *retry_after = oldest + 3600 - now;
        } else {
            at[oldest_j] = now;
        }
    }
    pthread_mutex_unlock(&l->lock);
    if (!ok && *retry_after < 1) *retry_after = 1;
    return ok;
}

/* ------------------------------------------------------------ campaigns */

static bool campaign_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63) return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return false;
    return true;
}

kp_err kp_office_campaign(kp_office *o, const kp_campaign_req *req, kp_buf *out, kp_error *e)
{
    kp_err err = kp_office_require(o, KP_PERM_NOTIFY_MANAGE, e);
    if (err == KP_OK) err = people_need_key(o, e);
    if (err) return err;
    if (!campaign_name_ok(req->name))
        return kp_error_set(e, KP_ERR_INVALID, "name",
                            "is required: 1 to 63 letters, digits, '-', '_' or '.' (it keys "
                            "the campaign: the same name never reaches a customer twice)");
    if (req->n_customers == 0 || req->n_customers > KP_CAMPAIGN_CUSTOMERS_MAX)
        return kp_error_set(e, KP_ERR_INVALID, "customers",
                            "must list 1 to %d customer ids (send a larger segment in parts)",
                            KP_CAMPAIGN_CUSTOMERS_MAX);
    if (req->n_languages == 0)
        return kp_error_set(e, KP_ERR_INVALID, "text",
                            "is required: the text by language ({\"ru\": \"...\", \"en\": ...})");
    /* Compiled first: a template error names its part and language. */
    json_t *subject = json_object(), *text = json_object(), *html = json_object();
    for (size_t i = 0; i < req->n_languages && err == KP_OK; i++) {
        const char *lang = req->texts[i].language;
        const char *parts[3] = {req->texts[i].subject, req->texts[i].text, req->texts[i].html};
        const char *names[3] = {"subject", "text", "html"};
        json_t *objs[3] = {subject, text, html};
        if ((err = language_check(lang, "text", e))) break;
        if (parts[1] == NULL || parts[1][0] == '\0') {
            err = kp_error_set(e, KP_ERR_INVALID, "text", "is required for language %s "
                               "(the SMS and the e-mail's plain text)", lang);
            break;
        }
        for (size_t p = 0; p < 3 && err == KP_OK; p++) {
            char field[32];
            snprintf(field, sizeof field, "%s.%s", names[p], lang);
            kp_template *t;
            err = compile_part(KP_NOTIFY_CAMPAIGN, parts[p], field, &t, e);
            kp_template_free(t);
            if (err == KP_OK && parts[p] && parts[p][0])
                json_object_set_new(objs[p], lang, json_string(parts[p]));
        }
    }
    char *payload = NULL;
    if (err == KP_OK) {
        json_t *root = json_pack("{s:s, s:O, s:O, s:O}", "name", req->name, "subject", subject,
                                 "text", text, "html", html);
        payload = root ? json_dumps(root, JSON_COMPACT) : NULL;
        json_decref(root);
        if (payload == NULL) err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    }
    json_decref(subject), json_decref(text), json_decref(html);
    int64_t queued = 0, already = 0, skipped = 0;
    kp_customer_row *row = malloc(sizeof *row);
    if (err == KP_OK && row == NULL) err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    for (size_t i = 0; i < req->n_customers && err == KP_OK; i++) {
        err = o->st->ops->people->customer_get(o->st, req->customers[i], row);
        if (err == KP_ERR_NOT_FOUND) {
            char field[32];
            snprintf(field, sizeof field, "customers[%zu]", i);
            err = kp_error_set(e, KP_ERR_INVALID, field, "no customer has id %lld",
                               (long long)req->customers[i]);
            break;
        }
        if (err) {
            err = storage(o, err, e);
            break;
        }
        if (row->state == KP_CUSTOMER_ERASED) {
            skipped++;
            continue;
        }
        char key[KP_NOTIFY_KEY_MAX];
        snprintf(key, sizeof key, "campaign:%s:%lld", req->name, (long long)row->id);
        int64_t event_id = 0;
        err = sealed_event(o, KP_NOTIFY_CAMPAIGN, key, row->account_id, row->id, payload,
                           &event_id, e);
        if (err == KP_OK) {
            if (event_id) queued++;
            else already++;
        }
    }
    free(row);
    if (payload) {
        sodium_memzero(payload, strlen(payload));
        free(payload);
    }
    if (err) return err;
    char target[80];
    snprintf(target, sizeof target, "campaign:%s", req->name);
    err = kp_office_audit(o, "campaign.queue", target, "customers=%zu queued=%lld already=%lld "
                          "erased=%lld", req->n_customers, (long long)queued, (long long)already,
                          (long long)skipped);
    if (err) return storage(o, err, e);
    kp_buf_reset(out);
    kp_buf_puts(out, "{");
    kp_buf_json_kv_str(out, "campaign", req->name, false);
    kp_buf_json_kv_i64(out, "queued", queued, true);
    kp_buf_json_kv_i64(out, "already", already, true);
    kp_buf_json_kv_i64(out, "erased", skipped, true);
    kp_buf_puts(out, "}");
    return KP_OK;
}
