/*
 * http_notify.c: the notification routes (docs/api.md, "Notifications"):
 * the outbox's messages (list, view, retry, replay), webhook endpoints,
 * templates (list, view, store, delete, preview), a customer's
 * preferences, campaigns; and the public ones: unsubscribe links (a small
 * page and RFC 8058 one-click), SMS replies forwarded by the gateway, the
 * cabinet's one-time login codes, its sessions and GET /v1/me. Requests
 * are parsed here into the typed operations of src/notify/office.h;
 * http_people.c authenticates and dispatches.
 */
#include "http_people.h"
#include "login_limit.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "notify/office.h"

/* ---- small parsers */

static kp_err path_id(const char *param, const char *what, int64_t *id, kp_error *e)
{
    *id = http_param_id(param);
    return *id ? KP_OK : kp_error_set(e, KP_ERR_NOT_FOUND, what, "no such %s", what);
}

/* An array of channel names into a bit set; `customer`: email and sms only. */
static kp_err channel_set(json_t *v, const char *field, bool customer, uint32_t *out, kp_error *e)
{
    *out = 0;
    if (!json_is_array(v))
        return kp_error_set(e, KP_ERR_INVALID, field, "must be an array of channel names "
                            "(allowed: email, sms)");
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x)
    {
        kp_channel c;
        if (!json_is_string(x) || !kp_channel_parse(json_string_value(x), &c) ||
            (customer && c == KP_CHANNEL_WEBHOOK))
            return kp_error_set(e, KP_ERR_INVALID, field, "item %zu is not a channel (allowed: "
                                "email, sms)", i);
        *out |= 1u << c;
    }
    return KP_OK;
}

static void kind_names(char *out, size_t size)
{
    size_t at = 0;
    out[0] = '\0';
    for (int k = 1; k < KP_NOTIFY__COUNT && at < size; k++)
        at += (size_t)snprintf(out + at, size - at, "%s%s", k > 1 ? ", " : "",
                               kp_notify_kind_name((kp_notify_kind)k));
}

static kp_err kind_parse(const char *name, const char *field, kp_notify_kind *kind, kp_error *e)
{
    if (kp_notify_kind_parse(name, kind)) return KP_OK;
    char names[512];
    kind_names(names, sizeof names);
    return kp_error_set(e, KP_ERR_INVALID, field, "is not a kind of notification (allowed: %s)",
                        names);
}

/* A string member: absent = not given; null = "" when nullable. */
static kp_err str_member(json_t *root, const char *key, bool nullable, char *out, size_t size,
                         bool *given, kp_error *e)
{
    json_t *v = json_object_get(root, key);
    *given = v != NULL;
    out[0] = '\0';
    if (v == NULL || (nullable && json_is_null(v))) return KP_OK;
    if (!json_is_string(v) || json_string_length(v) >= size)
        return kp_error_set(e, KP_ERR_INVALID, key, "must be a string of at most %zu bytes%s",
                            size - 1, nullable ? " (or null)" : "");
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return KP_OK;
}

/* A text member kept as jansson's string (valid while root lives). */
static kp_err text_member(json_t *root, const char *key, const char **out, kp_error *e)
{
    json_t *v = json_object_get(root, key);
    *out = NULL;
    if (v == NULL || json_is_null(v)) return KP_OK;
    if (!json_is_string(v)) return kp_error_set(e, KP_ERR_INVALID, key, "must be a string");
    *out = json_string_value(v);
    return KP_OK;
}

/* ---- messages */

typedef struct messages_query {
    kp_message_filter f;
    int64_t before, limit;
} messages_query;

static kp_err do_messages(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                          bool *replayed, kp_field_errors *fe, kp_error *e)
{
    const messages_query *q = arg;
    const kp_notify_config *cfg = r->srv->config.notify;
    bool webhooks = r->srv->notifier != NULL && (cfg == NULL || cfg->webhook.on);
    return kp_office_messages(o, &q->f, webhooks, q->before, q->limit, out, e);
}

static unsigned route_messages(const http_request *r, kp_http_answer *a)
{
    messages_query q = {.f = {.state = -1}};
    kp_error e = {0};
    const char *ids[] = {"customer", "endpoint", "event", "before"};
    int64_t *into[] = {&q.f.customer_id, &q.f.endpoint_id, &q.f.event_id, &q.before};
    for (size_t i = 0; i < 4; i++)
        if ((*into[i] = http_query_int(ids[i], 0)) < 0) {
            kp_error_set(&e, KP_ERR_INVALID, ids[i], "must be an id (a whole number >= 0)");
            return kp_http_error_answer(a->body, &e, NULL);
        }
    q.limit = http_query_int("limit", 50);
    const char *state = kp_http_arg("state"), *channel = kp_http_arg("channel");
    kp_message_state st;
    if (state && state[0]) {
        if (!kp_message_state_parse(state, &st)) {
            kp_error_set(&e, KP_ERR_INVALID, "state",
                         "is not a state (allowed: pending, sent, dead, cancelled)");
            return kp_http_error_answer(a->body, &e, NULL);
        }
        q.f.state = (int)st;
    }
    if (channel && channel[0] && !kp_channel_parse(channel, &q.f.channel)) {
        kp_error_set(&e, KP_ERR_INVALID, "channel", "is not a channel (allowed: email, sms, "
                     "webhook)");
        return kp_http_error_answer(a->body, &e, NULL);
    }
    return http_office_read(r, do_messages, &q, a);
}

static void notify_env(kp_office *o, const http_request *r, kp_notify_env *env)
{
    kp_notify_env_init(env, o->st, o->pii, o->program, r->srv->config.notify);
}

static kp_err do_message(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                         bool *replayed, kp_field_errors *fe, kp_error *e)
{
    int64_t id;
    kp_err err = path_id(r->params[0], "message", &id, e);
    if (err) return err;
    kp_notify_env env;
    notify_env(o, r, &env);
    bool opened = false;
    if ((err = kp_office_message(o, &env, id, out, &opened, e)) || !opened) return err;
    /* Its recipient and text were read: audited like a customer's record. */
    char target[48];
    snprintf(target, sizeof target, "message:%lld", (long long)id);
    err = kp_office_audit(o, "message.view", target, "%s", "");
    return err ? people_storage(o->st, err, e) : KP_OK;
}

static unsigned route_message(const http_request *r, kp_http_answer *a)
{
    return http_office_write(r, do_message, NULL, 200, a);
}

static kp_err do_retry(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                       bool *replayed, kp_field_errors *fe, kp_error *e)
{
    int64_t id;
    kp_err err = path_id(r->params[0], "message", &id, e);
    return err ? err : kp_office_message_retry(o, id, out, e);
}

static unsigned route_retry(const http_request *r, kp_http_answer *a)
{
    return http_office_write(r, do_retry, NULL, 200, a);
}

/* ---- webhook endpoints */

static kp_err endpoint_parse(const http_request *r, kp_endpoint_req *req, kp_error *e)
{
    static const char *const keys[] = {"url", "description", "kinds", "active", NULL};
    memset(req, 0, sizeof *req);
    json_t *root = http_body_object(r, keys, e);
    if (root == NULL) return KP_ERR_INVALID;
    kp_err err = str_member(root, "url", false, req->url, sizeof req->url, &req->has_url, e);
    if (err == KP_OK)
        err = str_member(root, "description", true, req->description, sizeof req->description,
                         &req->has_description, e);
    json_t *kinds = json_object_get(root, "kinds"), *active = json_object_get(root, "active");
    if (err == KP_OK && kinds) {
        req->has_kinds = true;
        size_t i;
        json_t *x;
        if (!json_is_array(kinds))
            err = kind_parse("", "kinds", &(kp_notify_kind){0}, e);
        else
            json_array_foreach(kinds, i, x)
            {
                kp_notify_kind k;
                char field[40];
                snprintf(field, sizeof field, "kinds[%zu]", i);
                if ((err = kind_parse(json_is_string(x) ? json_string_value(x) : "", field, &k,
                                      e)))
                    break;
                req->kinds |= 1u << k;
            }
    }
    if (err == KP_OK && active) {
        if (!json_is_boolean(active))
            err = kp_error_set(e, KP_ERR_INVALID, "active", "must be true or false");
        req->has_active = true;
        req->active = json_is_true(active);
    }
    json_decref(root);
    return err;
}

typedef enum endpoint_verb { EP_LIST, EP_GET, EP_CREATE, EP_UPDATE, EP_ROTATE } endpoint_verb;

static kp_err do_endpoint(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                          bool *replayed, kp_field_errors *fe, kp_error *e)
{
    endpoint_verb verb = *(const endpoint_verb *)arg;
    if (verb == EP_LIST) return kp_office_endpoints(o, out, e);
    kp_endpoint_req req;
    int64_t id = 0;
    kp_err err = KP_OK;
    if (verb != EP_CREATE) err = path_id(r->params[0], "endpoint", &id, e);
    if (err == KP_OK && (verb == EP_CREATE || verb == EP_UPDATE)) err = endpoint_parse(r, &req, e);
    if (err == KP_OK && verb == EP_ROTATE && r->body_len > 0 &&
        !(r->body_len == 2 && memcmp(r->body, "{}", 2) == 0))
        err = kp_error_set(e, KP_ERR_INVALID, "", "this route takes no body (or {})");
    if (err) return err;
    switch (verb) {
    case EP_GET: return kp_office_endpoint(o, id, out, e);
    case EP_CREATE: return kp_office_endpoint_create(o, &req, out, e);
    case EP_UPDATE: return kp_office_endpoint_update(o, id, &req, out, e);
    default: return kp_office_endpoint_rotate(o, id, out, e);
    }
}

static unsigned route_endpoints(const http_request *r, kp_http_answer *a)
{
    endpoint_verb v = EP_LIST;
    return http_office_read(r, do_endpoint, &v, a);
}

static unsigned route_endpoint(const http_request *r, kp_http_answer *a)
{
    endpoint_verb v = EP_GET;
    return http_office_read(r, do_endpoint, &v, a);
}

static unsigned route_endpoint_create(const http_request *r, kp_http_answer *a)
{
    endpoint_verb v = EP_CREATE;
    return http_office_write(r, do_endpoint, &v, 201, a);
}

static unsigned route_endpoint_update(const http_request *r, kp_http_answer *a)
{
    endpoint_verb v = EP_UPDATE;
    return http_office_write(r, do_endpoint, &v, 200, a);
}

static unsigned route_endpoint_rotate(const http_request *r, kp_http_answer *a)
{
    endpoint_verb v = EP_ROTATE;
    return http_office_write(r, do_endpoint, &v, 200, a);
}

/* ---- templates */

typedef enum template_verb { TPL_GET, TPL_PUT, TPL_DELETE, TPL_PREVIEW } template_verb;

static kp_err template_path(const http_request *r, kp_notify_kind *kind, kp_channel *channel,
                            kp_error *e)
{
    kp_err err = kind_parse(r->params[0], "kind", kind, e);
    if (err) return err;
    if (!kp_channel_parse(r->params[1], channel) || *channel == KP_CHANNEL_WEBHOOK)
        return kp_error_set(e, KP_ERR_INVALID, "channel", "is not a channel with templates "
                            "(allowed: email, sms)");
    if (strlen(r->params[2]) >= KP_LANGUAGE_MAX)
        return kp_error_set(e, KP_ERR_INVALID, "language",
                            "must be a language code of 2 to 7 lowercase letters (\"ru\", \"en\")");
    return KP_OK;
}

static kp_err do_template(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                          bool *replayed, kp_field_errors *fe, kp_error *e)
{
    template_verb verb = *(const template_verb *)arg;
    kp_notify_kind kind;
    kp_channel channel;
    kp_err err = template_path(r, &kind, &channel, e);
    if (err) return err;
    const char *lang = r->params[2];
    if (verb == TPL_GET) return kp_office_template(o, kind, channel, lang, out, e);
    if (verb == TPL_DELETE) return kp_office_template_delete(o, kind, channel, lang, out, e);
    static const char *const keys[] = {"subject", "text", "html", NULL};
    json_t *root = http_body_object(r, keys, e);
    if (root == NULL) return KP_ERR_INVALID;
    const char *subject, *text, *html;
    if ((err = text_member(root, "subject", &subject, e)) == KP_OK &&
        (err = text_member(root, "text", &text, e)) == KP_OK &&
        (err = text_member(root, "html", &html, e)) == KP_OK) {
        if (verb == TPL_PREVIEW) {
            err = kp_office_template_preview(o, kind, channel, lang, subject, text, html, out, e);
        } else {
            kp_template_row t;
            memset(&t, 0, sizeof t);
            t.kind = kind;
            t.channel = channel;
            snprintf(t.language, sizeof t.language, "%.7s", lang);
            t.subject = (char *)(subject ? subject : "");
            t.text = (char *)(text ? text : "");
            t.html = (char *)(html ? html : "");
            err = kp_office_template_put(o, &t, out, e);
        }
    }
    json_decref(root);
    return err;
}

static unsigned route_templates_list(const http_request *r, kp_http_answer *a);

static unsigned route_template_get(const http_request *r, kp_http_answer *a)
{
    template_verb v = TPL_GET;
    return http_office_read(r, do_template, &v, a);
}

static unsigned route_template_put(const http_request *r, kp_http_answer *a)
{
    template_verb v = TPL_PUT;
    return http_office_write(r, do_template, &v, 200, a);
}

static unsigned route_template_delete(const http_request *r, kp_http_answer *a)
{
    template_verb v = TPL_DELETE;
    return http_office_write(r, do_template, &v, 200, a);
}

static unsigned route_template_preview(const http_request *r, kp_http_answer *a)
{
    template_verb v = TPL_PREVIEW;
    return http_office_read(r, do_template, &v, a);
}

static kp_err do_templates(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                           bool *replayed, kp_field_errors *fe, kp_error *e)
{
    return kp_office_templates(o, out, e);
}

static unsigned route_templates_list(const http_request *r, kp_http_answer *a)
{
    return http_office_read(r, do_templates, NULL, a);
}

/* ---- a customer's preferences */

kp_err http_prefs_parse(const http_request *r, kp_prefs_req *req, kp_error *e)
{
    static const char *const keys[] = {"language", "utc_offset", "transactional", "marketing",
                                       "marketing_consent", NULL};
    memset(req, 0, sizeof *req);
    json_t *root = http_body_object(r, keys, e);
    if (root == NULL) return KP_ERR_INVALID;
    char offset[16];
    bool given;
    kp_err err = str_member(root, "language", true, req->language, sizeof req->language,
                            &req->has_language, e);
    if (err == KP_OK) err = str_member(root, "utc_offset", true, offset, sizeof offset, &given, e);
    if (err == KP_OK && given) {
        req->has_utc_offset = true;
        req->clear_utc_offset = offset[0] == '\0';
        if (!req->clear_utc_offset) err = kp_utc_offset_parse(offset, &req->utc_offset_minutes, e);
    }
    json_t *v;
    if (err == KP_OK && (v = json_object_get(root, "transactional"))) {
        req->has_transactional = true;
        err = channel_set(v, "transactional", true, &req->transactional, e);
    }
    if (err == KP_OK && (v = json_object_get(root, "marketing"))) {
        req->has_marketing = true;
        err = channel_set(v, "marketing", true, &req->marketing, e);
    }
    if (err == KP_OK && (v = json_object_get(root, "marketing_consent"))) {
        json_t *g = json_object_get(v, "given"), *ver = json_object_get(v, "version");
        req->has_consent = true;
        if (!json_is_object(v) || !json_is_boolean(g) || json_object_size(v) > 2 ||
            (json_object_size(v) == 2 && ver == NULL))
            err = kp_error_set(e, KP_ERR_INVALID, "marketing_consent",
                               "must be {\"given\": true|false, \"version\": \"<the consent "
                               "text's version>\"}");
        else if (ver && !json_is_null(ver) &&
                 (!json_is_string(ver) || json_string_length(ver) >= KP_CONSENT_TEXT_MAX))
            err = kp_error_set(e, KP_ERR_INVALID, "marketing_consent.version",
                               "must be a string of at most %d bytes", KP_CONSENT_TEXT_MAX - 1);
        if (err == KP_OK) {
            req->consent_given = json_is_true(g);
            if (json_is_string(ver))
                snprintf(req->consent_version, sizeof req->consent_version, "%s",
                         json_string_value(ver));
        }
    }
    json_decref(root);
    return err;
}

static kp_err do_prefs(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                       bool *replayed, kp_field_errors *fe, kp_error *e)
{
    int64_t id;
    kp_err err = path_id(r->params[0], "customer", &id, e);
    if (err) return err;
    if (arg == NULL) return kp_office_prefs(o, id, out, e);
    kp_prefs_req req;
    if ((err = http_prefs_parse(r, &req, e))) return err;
    return kp_office_prefs_put(o, id, &req, out, e);
}

static unsigned route_prefs_get(const http_request *r, kp_http_answer *a)
{
    return http_office_read(r, do_prefs, NULL, a);
}

static unsigned route_prefs_put(const http_request *r, kp_http_answer *a)
{
    static const int put = 1;
    return http_office_write(r, do_prefs, (void *)&put, 200, a);
}

/* ---- campaigns */

enum { CAMPAIGN_LANGUAGES_MAX = 4 };

static kp_err campaign_parse(json_t *root, kp_campaign_req *req, int64_t **ids, kp_error *e)
{
    bool given;
    kp_err err = str_member(root, "name", false, req->name, sizeof req->name, &given, e);
    if (err) return err;
    json_t *customers = json_object_get(root, "customers");
    if (!json_is_array(customers) || json_array_size(customers) == 0 ||
        json_array_size(customers) > KP_CAMPAIGN_CUSTOMERS_MAX)
        return kp_error_set(e, KP_ERR_INVALID, "customers",
                            "must be an array of 1 to %d customer ids", KP_CAMPAIGN_CUSTOMERS_MAX);
    *ids = calloc(json_array_size(customers), sizeof **ids);
    if (*ids == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    size_t i;
    json_t *x;
    json_array_foreach(customers, i, x)
    {
        if (!json_is_integer(x) || json_integer_value(x) <= 0)
            return kp_error_set(e, KP_ERR_INVALID, "customers", "item %zu is not a customer id", i);
        (*ids)[i] = json_integer_value(x);
    }
    req->customers = *ids;
    req->n_customers = json_array_size(customers);
    /* The languages: those of "text", and "subject"/"html" may only name them. */
    static const char *const parts[] = {"text", "subject", "html"};
    for (size_t p = 0; p < 3; p++) {
        json_t *obj = json_object_get(root, parts[p]), *v;
        const char *lang;
        if (obj == NULL && p > 0) continue;
        if (!json_is_object(obj) || (p == 0 && json_object_size(obj) == 0))
            return kp_error_set(e, KP_ERR_INVALID, parts[p],
                                "must be an object of texts by language ({\"ru\": \"...\", "
                                "\"en\": \"...\"})%s", p == 0 ? " with at least one" : "");
        json_object_foreach(obj, lang, v)
        {
            char field[48];
            snprintf(field, sizeof field, "%s.%.16s", parts[p], lang);
            if (!json_is_string(v))
                return kp_error_set(e, KP_ERR_INVALID, field, "must be a string");
            size_t l = 0;
            while (l < req->n_languages && strcmp(req->texts[l].language, lang) != 0) l++;
            if (l == req->n_languages) {
                if (p > 0)
                    return kp_error_set(e, KP_ERR_INVALID, field,
                                        "has no text in that language (give text.%.16s too)",
                                        lang);
                if (l == CAMPAIGN_LANGUAGES_MAX || strlen(lang) >= KP_LANGUAGE_MAX)
                    return kp_error_set(e, KP_ERR_INVALID, field,
                                        "at most %d languages of 2 to 7 letters",
                                        CAMPAIGN_LANGUAGES_MAX);
                snprintf(req->texts[l].language, KP_LANGUAGE_MAX, "%s", lang);
                req->n_languages++;
            }
            const char **slot = p == 0 ? &req->texts[l].text
                              : p == 1 ? &req->texts[l].subject
                                       : &req->texts[l].html;
            *slot = json_string_value(v);
        }
    }
    return KP_OK;
}

static kp_err do_campaign(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                          bool *replayed, kp_field_errors *fe, kp_error *e)
{
    static const char *const keys[] = {"name", "customers", "subject", "text", "html", NULL};
    json_t *root = http_body_object(r, keys, e);
    if (root == NULL) return KP_ERR_INVALID;
    kp_campaign_req req;
    memset(&req, 0, sizeof req);
    int64_t *ids = NULL;
    kp_err err = kp_office_require(o, KP_PERM_NOTIFY_MANAGE, e);
    if (err == KP_OK) err = campaign_parse(root, &req, &ids, e);
    if (err == KP_OK) err = kp_office_campaign(o, &req, out, e);
    free(ids);
    json_decref(root);
    return err;
}

static unsigned route_campaign(const http_request *r, kp_http_answer *a)
{
    /* A body naming a "segment" is a campaign that grants points
     * (http_marketing.c); one with "customers" a message to those. */
    json_t *probe = json_loadb(r->body, r->body_len, 0, NULL);
    bool segment = json_object_get(probe, "segment") != NULL;
    json_decref(probe);
    if (segment) return http_marketing_campaign_create(r, a);
    kp_buf_reserve(a->body, 64 * 1024);
    return http_office_write(r, do_campaign, NULL, 202, a);
}

/* ---- unsubscribe (public) */

static bool token_shape_ok(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > 200) return false;
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '='))
            return false;
    }
    return true;
}

/* Russian when the first language the client names is Russian. */
static bool wants_russian(void)
{
    const char *h = kp_http_header("Accept-Language");
    if (h == NULL) return false;
    while (*h == ' ') h++;
    return (h[0] == 'r' || h[0] == 'R') && (h[1] == 'u' || h[1] == 'U') &&
           (h[2] == '\0' || h[2] == '-' || h[2] == ',' || h[2] == ';');
}

static bool wants_html(void)
{
    const char *h = kp_http_header("Accept");
    return h && strstr(h, "text/html") != NULL;
}

typedef enum page_kind { PAGE_CONFIRM, PAGE_DONE, PAGE_INVALID } page_kind;

static unsigned unsubscribe_page(kp_http_answer *a, page_kind kind, const char *token,
                                 kp_channel channel, unsigned status)
{
    bool ru = wants_russian();
    const char *what = channel == KP_CHANNEL_SMS ? (ru ? "SMS-рассылки" : "marketing SMS")
                                                 : (ru ? "рассылки по e-mail" : "marketing e-mail");
    kp_buf *out = a->body;
    kp_buf_reset(out);
    kp_buf_printf(out, "<!doctype html>\n<html lang=\"%s\"><head><meta charset=\"utf-8\">"
                  "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                  "<title>%s</title></head><body style=\"font-family: sans-serif; max-width: "
                  "32em; margin: 2em auto; padding: 0 1em\">\n", ru ? "ru" : "en",
                  ru ? "Отписка" : "Unsubscribe");
    if (kind == PAGE_INVALID) {
        kp_buf_puts(out, ru ? "<h1>Ссылка недействительна</h1><p>Скопируйте ссылку из письма "
                              "целиком или ответьте на SMS словом СТОП.</p>"
                            : "<h1>This link is not valid</h1><p>Copy the whole link from the "
                              "message, or reply STOP to an SMS.</p>");
    } else if (kind == PAGE_DONE) {
        kp_buf_printf(out, ru ? "<h1>Вы отписаны</h1><p>Мы больше не пришлём вам %s. "
                                "Сообщения о баллах и операциях будут приходить как прежде.</p>"
                              : "<h1>You are unsubscribed</h1><p>We will send you no more %s. "
                                "Messages about your points and purchases still come.</p>",
                      what);
    } else {
        kp_buf_printf(out, ru ? "<h1>Отписаться?</h1><p>Вы больше не будете получать %s.</p>"
                              : "<h1>Unsubscribe?</h1><p>You will get no more %s.</p>",
                      what);
        kp_buf_printf(out, "<form method=\"post\" action=\"/v1/unsubscribe/%s\">"
                      "<input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">"
                      "<button type=\"submit\">%s</button></form>",
                      token, ru ? "Отписаться" : "Unsubscribe");
    }
    kp_buf_puts(out, "\n</body></html>\n");
    a->content_type = "text/html; charset=utf-8";
    return status;
}

static unsigned invalid_link(kp_http_answer *a)
{
    kp_error e;
    kp_error_set(&e, KP_ERR_NOT_FOUND, "token", "this unsubscribe link is not valid: copy the "
                 "whole link from the message");
    return kp_http_error_answer(a->body, &e, NULL);
}

static bool check_token(const http_request *r, kp_channel *channel)
{
    if (!token_shape_ok(r->params[0])) return false;
    kp_reader *rd = kp_reader_acquire(r->srv->readers);
    const kp_program *program = kp_programs_hold(r->srv->programs);
    kp_notify_env env;
    kp_notify_env_init(&env, rd->store, r->srv->pii, program, r->srv->config.notify);
    int64_t customer_id = 0;
    bool ok = r->srv->pii && kp_unsubscribe_check(&env, r->params[0], &customer_id, channel);
    kp_programs_drop(r->srv->programs, program);
    kp_reader_release(r->srv->readers, rd);
    return ok;
}

static unsigned route_unsubscribe_page(const http_request *r, kp_http_answer *a)
{
    kp_channel channel = KP_CHANNEL_EMAIL;
    if (check_token(r, &channel)) return unsubscribe_page(a, PAGE_CONFIRM, r->params[0], channel, 200);
    if (wants_html()) return unsubscribe_page(a, PAGE_INVALID, "", channel, 404);
    return invalid_link(a);
}

typedef struct unsubscribe_call {
    kp_channel channel;
    int64_t cancelled;
} unsubscribe_call;

static kp_err do_unsubscribe(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                             bool *replayed, kp_field_errors *fe, kp_error *e)
{
    unsubscribe_call *c = arg;
    kp_notify_env env;
    notify_env(o, r, &env);
    kp_err err = kp_office_unsubscribe(o, &env, r->params[0], &c->channel, &c->cancelled, e);
    if (err) return err;
    kp_buf_reset(out);
    kp_buf_puts(out, "{\"unsubscribed\":true");
    kp_buf_json_kv_str(out, "channel", kp_channel_name(c->channel), true);
    kp_buf_json_kv_i64(out, "cancelled", c->cancelled, true);
    kp_buf_puts(out, "}");
    return KP_OK;
}

static unsigned route_unsubscribe(const http_request *r, kp_http_answer *a)
{
    /* The page's button and a mail client's one-click (RFC 8058) send
     * "List-Unsubscribe=One-Click"; an empty body is taken too. */
    static const char one_click[] = "List-Unsubscribe=One-Click";
    if (r->body_len > 0 && !(r->body_len == sizeof one_click - 1 &&
                             memcmp(r->body, one_click, sizeof one_click - 1) == 0)) {
        kp_error e;
        kp_error_set(&e, KP_ERR_INVALID, "", "the body must be empty or "
                     "\"List-Unsubscribe=One-Click\" (RFC 8058)");
        return kp_http_error_answer(a->body, &e, NULL);
    }
    unsubscribe_call c = {0};
    bool html = wants_html();
    if (!token_shape_ok(r->params[0]) || r->srv->pii == NULL) {
        if (html) return unsubscribe_page(a, PAGE_INVALID, "", KP_CHANNEL_EMAIL, 404);
        return invalid_link(a);
    }
    unsigned status = http_office_write(r, do_unsubscribe, &c, 200, a);
    if (!html) return status;
    return unsubscribe_page(a, status == 200 ? PAGE_DONE : PAGE_INVALID, "", c.channel,
                            status == 200 ? 200 : status);
}

/* ---- SMS replies (public, with the gateway's token) */

/* Decodes one application/x-www-form-urlencoded value in place. */
static void form_decode(char *s)
{
    char *w = s;
    for (const char *p = s; *p; p++) {
        if (*p == '+') {
            *w++ = ' ';
        } else if (*p == '%' && p[1] && p[2]) {
            char hex[3] = {p[1], p[2], 0};
            char *end;
            long v = strtol(hex, &end, 16);
            if (*end == '\0' && v > 0) {
                *w++ = (char)v;
                p += 2;
            } else {
                *w++ = *p;
            }
        } else {
            *w++ = *p;
        }
    }
    *w = '\0';
}

/* The value of `name` in a form body into out ("" when absent). */
static void form_value(const char *body, size_t len, const char *name, char *out, size_t size)
{
    out[0] = '\0';
    size_t n = strlen(name);
    const char *p = body, *end = body + len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        if ((size_t)(stop - p) > n && memcmp(p, name, n) == 0 && p[n] == '=') {
            size_t v = (size_t)(stop - p) - n - 1;
            if (v >= size) v = size - 1;
            memcpy(out, p + n + 1, v);
            out[v] = '\0';
            form_decode(out);
            return;
        }
        p = stop + 1;
    }
}

typedef struct sms_reply {
    char from[64];
    char text[256];
    bool acted;
} sms_reply;

static kp_err do_sms_inbound(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                             bool *replayed, kp_field_errors *fe, kp_error *e)
{
    sms_reply *s = arg;
    kp_err err = kp_office_sms_inbound(o, s->from, s->text, &s->acted, e);
    if (err == KP_ERR_INVALID) err = KP_OK; /* a sender that is no phone: nothing to do */
    if (err) return err;
    kp_buf_reset(out);
    kp_buf_puts(out, s->acted ? "{\"stopped\":true}" : "{\"stopped\":false}");
    return KP_OK;
}

static unsigned route_sms_inbound(const http_request *r, kp_http_answer *a)
{
    kp_error e;
    const kp_notify_config *cfg = r->srv->config.notify;
    if (cfg == NULL || cfg->sms.inbound_token[0] == '\0') {
        kp_error_set(&e, KP_ERR_FORBIDDEN, "", "SMS replies are not taken: set sms.inbound_token "
                     "in the file of `kopilka serve --notify FILE`");
        return kp_http_error_answer(a->body, &e, NULL);
    }
    const char *token = kp_http_header("X-Kopilka-Token");
    if (token == NULL) token = kp_http_arg("token");
    size_t want = strlen(cfg->sms.inbound_token);
    if (token == NULL || strlen(token) != want ||
        sodium_memcmp(token, cfg->sms.inbound_token, want) != 0) {
        kp_error_set(&e, KP_ERR_UNAUTHORIZED, "token", "send the gateway's token (sms.inbound_"
                     "token) in the X-Kopilka-Token header or as ?token=");
        return kp_http_error_answer(a->body, &e, NULL);
    }
    sms_reply s;
    memset(&s, 0, sizeof s);
    if (r->body_len > 0 && r->body[0] == '{') {
        static const char *const keys[] = {"from", "text", NULL};
        json_t *root = http_body_object(r, keys, &e);
        if (root == NULL) return kp_http_error_answer(a->body, &e, NULL);
        bool given;
        kp_err err = str_member(root, "from", false, s.from, sizeof s.from, &given, &e);
        if (err == KP_OK) err = str_member(root, "text", false, s.text, sizeof s.text, &given, &e);
        json_decref(root);
        if (err) return kp_http_error_answer(a->body, &e, NULL);
    } else {
        form_value(r->body, r->body_len, "from", s.from, sizeof s.from);
        form_value(r->body, r->body_len, "text", s.text, sizeof s.text);
    }
    if (s.from[0] == '\0') {
        kp_error_set(&e, KP_ERR_INVALID, "from", "is required: the phone the reply came from");
        return kp_http_error_answer(a->body, &e, NULL);
    }
    return http_office_write(r, do_sms_inbound, &s, 200, a);
}

/* ---- the cabinet's login (public) */

static pthread_once_t limiter_once = PTHREAD_ONCE_INIT;
static kp_login_limiter *limiter;
static void limiter_make(void) { limiter = kp_login_limiter_new(); }

typedef struct login_call {
    kp_channel channel;
    char contact[KP_EMAIL_MAX + 1];
    char code[16];
    int64_t customer_id;
    uint8_t ix[32];
    char token[KP_CUSTOMER_TOKEN_LEN + 1];
    kp_time expires_at;
    bool failed;
    kp_error failure;
    bool signup; /* POST /v1/login/code with "purpose": "signup" */
} login_call;

/* {"phone"} or {"email"} (and "code" when `with_code`; "purpose" when
 * not). */
static kp_err login_parse(const http_request *r, bool with_code, login_call *c, kp_error *e)
{
    static const char *const keys_code[] = {"phone", "email", "code", "purpose", NULL};
    json_t *root = http_body_object(r, keys_code, e);
    if (root == NULL) return KP_ERR_INVALID;
    bool phone, email, code, purpose;
    char p[64], why[16];
    kp_err err = str_member(root, "phone", false, p, sizeof p, &phone, e);
    if (err == KP_OK)
        err = str_member(root, "email", false, c->contact, sizeof c->contact, &email, e);
    if (err == KP_OK) err = str_member(root, "code", false, c->code, sizeof c->code, &code, e);
    if (err == KP_OK) err = str_member(root, "purpose", false, why, sizeof why, &purpose, e);
    json_decref(root);
    if (err) return err;
    if (phone == email)
        return kp_error_set(e, KP_ERR_INVALID, "", "give exactly one of phone, email");
    if (phone) snprintf(c->contact, sizeof c->contact, "%s", p);
    c->channel = phone ? KP_CHANNEL_SMS : KP_CHANNEL_EMAIL;
    if (!with_code && code)
        return kp_error_set(e, KP_ERR_INVALID, "code",
                            "unknown field (allowed: phone, email, purpose)");
    if (with_code && purpose)
        return kp_error_set(e, KP_ERR_INVALID, "purpose",
                            "unknown field (allowed: phone, email, code)");
    if (purpose && strcmp(why, "login") != 0 && strcmp(why, "signup") != 0)
        return kp_error_set(e, KP_ERR_INVALID, "purpose",
                            "must be \"login\" (the default) or \"signup\"");
    c->signup = purpose && strcmp(why, "signup") == 0;
    if (c->signup && !phone)
        return kp_error_set(e, KP_ERR_INVALID, "phone",
                            "is required for a sign-up: the code goes by SMS to the phone you "
                            "register with");
    if (with_code) {
        bool digits = strlen(c->code) == KP_LOGIN_CODE_DIGITS;
        for (size_t i = 0; digits && c->code[i]; i++)
            digits = c->code[i] >= '0' && c->code[i] <= '9';
        if (!digits)
            return kp_error_set(e, KP_ERR_INVALID, "code", "must be the %d digits sent to you",
                                KP_LOGIN_CODE_DIGITS);
    }
    return KP_OK;
}

static kp_err do_lookup(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                        bool *replayed, kp_field_errors *fe, kp_error *e)
{
    login_call *c = arg;
    kp_err err = kp_office_customer_by_contact(o, c->channel, c->contact, &c->customer_id, c->ix, e);
    if (err == KP_ERR_NOT_FOUND) c->customer_id = 0;
    return err == KP_ERR_NOT_FOUND ? KP_OK : err;
}

static kp_err do_login_code(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                            bool *replayed, kp_field_errors *fe, kp_error *e)
{
    login_call *c = arg;
    if (!c->signup) return kp_office_login_code(o, c->customer_id, c->channel, e);
    char phone[KP_PHONE_MAX + 1];
    const char *why;
    if (!kp_norm_phone_in(c->contact, kp_phone_region_of(o->program), phone, &why))
        return kp_error_set(e, KP_ERR_INVALID, "phone", "%s", why);
    return kp_office_signup_code(o, phone, c->ix, e);
}

bool http_login_address_take(const http_request *r, kp_http_answer *a, unsigned *status)
{
    int64_t retry_after;
    bool first;
    if (kp_attempts_take(r->srv->login_limits->customer_address, r->client, r->now, &retry_after,
                         &first))
        return true;
    kp_error e;
    kp_error_set(&e, KP_ERR_LIMIT, "", "too many login attempts from this address: at most %d "
                 "in %d minutes; try again in %lld seconds", KP_LOGIN_FAILURES_PER_ADDRESS,
                 KP_LOGIN_WINDOW_S / 60, (long long)retry_after);
    a->retry_after = retry_after;
    *status = kp_http_error(a->body, 429, "rate_limited", &e);
    return false;
}

void http_login_address_give_back(const http_request *r)
{
    kp_attempts_give_back(r->srv->login_limits->customer_address, r->client);
}

static unsigned route_login_code(const http_request *r, kp_http_answer *a)
{
    login_call c;
    memset(&c, 0, sizeof c);
    kp_error e;
    if (login_parse(r, false, &c, &e)) return kp_http_error_answer(a->body, &e, NULL);
    /* Every code asked for counts against the address: each may send an
     * SMS, and whether the contact is a customer's is never told. */
    unsigned status;
    if (!http_login_address_take(r, a, &status)) return status;
    status = http_office_read(r, do_lookup, &c, a);
    if (status != 200) return status;
    /* Limited by the contact, known or not: the answer tells nothing of
     * whether it is a customer's. */
    pthread_once(&limiter_once, limiter_make);
    int64_t retry_after = 60;
    if (limiter == NULL || !kp_login_limiter_take(limiter, c.ix, r->now, &retry_after)) {
        kp_error_set(&e, KP_ERR_LIMIT, "", "too many codes asked for this contact: at most one "
                     "a minute and five an hour; try again in %lld seconds",
                     (long long)retry_after);
        a->retry_after = retry_after;
        return kp_http_error(a->body, 429, "rate_limited", &e);
    }
    /* A login code goes to a customer's contact, a sign-up's to a phone
     * that is nobody's yet; otherwise nothing goes, and the answer is the
     * same. */
    if (c.signup ? c.customer_id == 0 : c.customer_id != 0) {
        status = http_office_write(r, do_login_code, &c, 202, a);
        if (status != 202) return status;
    }
    kp_reader *rd = kp_reader_acquire(r->srv->readers);
    const kp_program *program = kp_programs_hold(r->srv->programs);
    int32_t ttl = kp_notify_policy_of(rd->store, program)->login_code_ttl_seconds;
    /* A sign-up's form shows the consent text of the version the program
     * asks for (public: the same for everyone). */
    char consent[sizeof ((kp_people_policy *)0)->consent_version];
    snprintf(consent, sizeof consent, "%s",
             kp_people_policy_of(rd->store, program)->consent_version);
    kp_programs_drop(r->srv->programs, program);
    kp_reader_release(r->srv->readers, rd);
    kp_buf_reset(a->body);
    kp_buf_puts(a->body, "{\"accepted\":true");
    kp_buf_json_kv_str(a->body, "channel", kp_channel_name(c.channel), true);
    kp_buf_json_kv_i64(a->body, "expires_in", ttl, true);
    if (c.signup) {
        kp_buf_puts(a->body, ",\"consent_version\":");
        if (consent[0])
            kp_buf_json_str(a->body, consent);
        else
            kp_buf_puts(a->body, "null");
    }
    kp_buf_puts(a->body, "}");
    return 202;
}

static kp_err do_login(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                       bool *replayed, kp_field_errors *fe, kp_error *e)
{
    login_call *c = arg;
    kp_err err = kp_office_login(o, c->customer_id, c->code, c->token, &c->expires_at, e);
    if (err == KP_ERR_UNAUTHORIZED) {
        /* Committed all the same: the wrong attempt counts. */
        c->failed = true;
        c->failure = *e;
        return KP_OK;
    }
    if (err) return err;
    http_customer_session_json(out, c->token, c->expires_at, c->customer_id);
    return KP_OK;
}

void http_customer_session_json(kp_buf *out, const char *token, kp_time expires_at,
                                int64_t customer_id)
{
    kp_buf_reset(out);
    kp_buf_puts(out, "{");
    kp_buf_json_kv_str(out, "token", token, false);
    people_time_kv(out, "expires_at", expires_at);
    kp_buf_json_kv_i64(out, "customer", customer_id, true);
    kp_buf_puts(out, "}");
}

static unsigned route_login(const http_request *r, kp_http_answer *a)
{
    login_call c;
    memset(&c, 0, sizeof c);
    kp_error e;
    if (login_parse(r, true, &c, &e)) return kp_http_error_answer(a->body, &e, NULL);
    /* A wrong code (or an unknown contact) stays counted against the
     * address; anything else is given back. */
    unsigned status;
    if (!http_login_address_take(r, a, &status)) return status;
    status = http_office_read(r, do_lookup, &c, a);
    if (status != 200) {
        http_login_address_give_back(r);
        return status;
    }
    if (c.customer_id == 0) {
        /* The same answer as a wrong code: nobody learns who is a customer. */
        kp_error_set(&e, KP_ERR_UNAUTHORIZED, "code", "the code is wrong, expired or used up: "
                     "ask for a new one at POST /v1/login/code");
        return kp_http_error_answer(a->body, &e, NULL);
    }
    status = http_office_write(r, do_login, &c, 200, a);
    sodium_memzero(c.token, sizeof c.token);
    if (status == 200 && c.failed) return kp_http_error_answer(a->body, &c.failure, NULL);
    http_login_address_give_back(r);
    return status;
}

static kp_err do_me(kp_office *o, const http_request *r, void *arg, kp_buf *out, bool *replayed,
                    kp_field_errors *fe, kp_error *e)
{
    return kp_office_me(o, r->caller->customer_id, r->caller->expires_at, out, e);
}

static unsigned route_me(const http_request *r, kp_http_answer *a)
{
    return http_office_read(r, do_me, NULL, a);
}

static kp_err do_logout(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                        bool *replayed, kp_field_errors *fe, kp_error *e)
{
    kp_err err = kp_customer_logout(o->st, r->caller->token, e);
    if (err) return err;
    kp_buf_reset(out);
    kp_buf_puts(out, "{\"logged_out\":true}");
    return KP_OK;
}

static unsigned route_logout(const http_request *r, kp_http_answer *a)
{
    return http_office_write(r, do_logout, NULL, 200, a);
}

const http_route http_notify_routes[] = {
    {"GET", "/v1/admin/messages", HTTP_STAFF, route_messages},
    {"GET", "/v1/admin/messages/{}", HTTP_STAFF, route_message},
    {"POST", "/v1/admin/messages/{}/retry", HTTP_STAFF, route_retry},
    {"GET", "/v1/admin/webhooks", HTTP_STAFF, route_endpoints},
    {"POST", "/v1/admin/webhooks", HTTP_STAFF, route_endpoint_create},
    {"GET", "/v1/admin/webhooks/{}", HTTP_STAFF, route_endpoint},
    {"PATCH", "/v1/admin/webhooks/{}", HTTP_STAFF, route_endpoint_update},
    {"POST", "/v1/admin/webhooks/{}/rotate", HTTP_STAFF, route_endpoint_rotate},
    {"GET", "/v1/admin/templates", HTTP_STAFF, route_templates_list},
    {"GET", "/v1/admin/templates/{}/{}/{}", HTTP_STAFF, route_template_get},
    {"PUT", "/v1/admin/templates/{}/{}/{}", HTTP_STAFF, route_template_put},
    {"DELETE", "/v1/admin/templates/{}/{}/{}", HTTP_STAFF, route_template_delete},
    {"POST", "/v1/admin/templates/{}/{}/{}/preview", HTTP_STAFF, route_template_preview},
    {"POST", "/v1/admin/campaigns", HTTP_STAFF, route_campaign},
    {"GET", "/v1/customers/{}/notifications", HTTP_STAFF, route_prefs_get},
    {"PUT", "/v1/customers/{}/notifications", HTTP_STAFF, route_prefs_put},
    {"GET", "/v1/unsubscribe/{}", HTTP_PUBLIC, route_unsubscribe_page},
    {"POST", "/v1/unsubscribe/{}", HTTP_PUBLIC, route_unsubscribe},
    {"POST", "/v1/sms/inbound", HTTP_PUBLIC, route_sms_inbound},
    {"POST", "/v1/login/code", HTTP_PUBLIC, route_login_code},
    {"POST", "/v1/login", HTTP_PUBLIC, route_login},
    {"GET", "/v1/me", HTTP_CUSTOMER, route_me},
    {"POST", "/v1/logout", HTTP_CUSTOMER, route_logout},
};
const size_t http_notify_routes_count = sizeof http_notify_routes / sizeof http_notify_routes[0];
