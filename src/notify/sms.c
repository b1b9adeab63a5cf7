/*
 * sms.c: SMS through an HTTP gateway configured by URL, auth, body template
 * and success rule (config.c reads them; docs/notifications.md, "SMS
 * gateway"). {{to}}, {{text}}, {{id}}, {{sender}}, {{username}} and
 * {{password}} are filled in escaped for where they stand: percent-encoded
 * in the URL and in a form body, JSON-escaped in a JSON body.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "notify/send_int.h"

typedef enum sms_escape { SMS_PERCENT, SMS_JSON, SMS_HEADER } sms_escape;

enum { SMS_REQUEST_MAX = 16 * 1024 };

static void put_escaped(kp_buf *out, const char *value, sms_escape how)
{
    static const char hex[] = "0123456789ABCDEF";
    if (how == SMS_HEADER) {
        kp_buf_puts(out, value);
        return;
    }
    if (how == SMS_JSON) {
        size_t at = out->len;
        kp_buf_json_str(out, value);
        /* Drop the quotes kp_buf_json_str adds: the template has its own. */
        if (!out->failed && out->len >= at + 2) {
            memmove(out->data + at, out->data + at + 1, out->len - at - 2);
            out->len -= 2;
            out->data[out->len] = '\0';
        }
        return;
    }
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        unsigned char c = *p;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            kp_buf_append(out, p, 1);
        } else {
            char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
            kp_buf_append(out, esc, 3);
        }
    }
}

/* Fills a template's substitutions (config.c accepted only known ones). */
static bool expand(const kp_sender *s, const kp_outgoing *o, const char *tpl, sms_escape how,
                   kp_buf *out)
{
    const struct {
        const char *name, *value;
    } vars[] = {
        {"to", o->to},
        {"text", o->text ? o->text : ""},
        {"id", o->m->key},
        {"sender", s->cfg.sms.sender},
        {"username", s->cfg.sms.username},
        {"password", s->cfg.sms.password},
    };
    kp_buf_reset(out);
    const char *p = tpl;
    for (;;) {
        const char *at = strstr(p, "{{");
        const char *end = at ? strstr(at + 2, "}}") : NULL;
        if (end == NULL) {
            kp_buf_puts(out, p);
            break;
        }
        kp_buf_append(out, p, (size_t)(at - p));
        size_t len = (size_t)(end - at - 2);
        bool done = false;
        for (size_t i = 0; i < sizeof vars / sizeof vars[0] && !done; i++) {
            if (strlen(vars[i].name) == len && memcmp(at + 2, vars[i].name, len) == 0) {
                put_escaped(out, vars[i].value, how);
                done = true;
            }
        }
        if (!done) kp_buf_append(out, at, len + 4);
        p = end + 2;
    }
    if (out->data == NULL) kp_buf_puts(out, "");
    return !out->failed;
}

/* The value at a dotted path ("sms.0.id") of a JSON answer, as text;
 * false when absent or null. */
static bool json_path_text(json_t *root, const char *path, char *out, size_t out_size)
{
    char part[64];
    json_t *v = root;
    const char *p = path;
    while (v && *p) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        if (len >= sizeof part) return false;
        memcpy(part, p, len);
        part[len] = '\0';
        if (json_is_object(v)) {
            v = json_object_get(v, part);
        } else if (json_is_array(v)) {
            char *end;
            unsigned long long i = strtoull(part, &end, 10);
            v = (*end == '\0' && len > 0) ? json_array_get(v, (size_t)i) : NULL;
        } else {
            v = NULL;
        }
        p += len + (dot ? 1 : 0);
    }
    if (v == NULL || json_is_null(v)) return false;
    if (json_is_string(v))
        snprintf(out, out_size, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(out, out_size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_real(v))
        snprintf(out, out_size, "%.17g", json_real_value(v));
    else if (json_is_boolean(v))
        snprintf(out, out_size, "%s", json_is_true(v) ? "true" : "false");
    else
        snprintf(out, out_size, "(object)");
    return true;
}

/* A 2xx answer: does it pass the success rule? Sets r. */
static void judge_answer(kp_sender *s, long status, kp_send_result *r)
{
    const char *field = s->cfg.sms.success_field, *want = s->cfg.sms.success_value;
    const char *id_field = s->cfg.sms.provider_id_field;
    json_t *root = NULL;
    if (field[0] || id_field[0]) {
        root = json_loadb(s->answer.data ? s->answer.data : "", s->answer.len, 0, NULL);
        if (root == NULL && field[0]) {
            send_fail(r, false, "HTTP %ld but the answer is not JSON (sms.success.field %s)",
                      status, field);
            return;
        }
    }
    if (field[0]) {
        char got[128];
        bool present = json_path_text(root, field, got, sizeof got);
        if (!present || (want[0] && strcmp(got, want) != 0) ||
            (!want[0] && strcmp(got, "false") == 0)) {
            if (!present)
                send_fail(r, false, "HTTP %ld but the answer has no %s (sms.success.field)", status,
                          field);
            else
                send_fail(r, false, "HTTP %ld but %s is \"%.64s\", not \"%s\" (sms.success)",
                          status, field, got, want[0] ? want : "present");
            json_decref(root);
            return;
        }
    }
    r->ok = true;
    if (id_field[0] && root) json_path_text(root, id_field, r->provider_id, sizeof r->provider_id);
    json_decref(root);
}

void send_sms(kp_sender *s, const kp_outgoing *o, kp_send_result *r)
{
    const kp_notify_config *c = &s->cfg;
    char type[sizeof c->sms.content_type];
    for (size_t i = 0; i < sizeof type; i++)
        type[i] = (char)tolower((unsigned char)c->sms.content_type[i]);
    bool json = strstr(type, "json") != NULL;
    kp_buf url, body, line;
    kp_buf_init(&url, KP_URL_MAX * 4);
    kp_buf_init(&body, SMS_REQUEST_MAX);
    kp_buf_init(&line, 1024);
    struct curl_slist *h = NULL;
    char userpwd[sizeof c->sms.username + sizeof c->sms.password + 1] = "";
    if (!expand(s, o, c->sms.url, SMS_PERCENT, &url) ||
        !expand(s, o, c->sms.body, json ? SMS_JSON : SMS_PERCENT, &body)) {
        send_fail(r, true, "the request is longer than %d bytes with this text", SMS_REQUEST_MAX);
        goto out;
    }
    bool ok = true;
    if (strcmp(c->sms.method, "POST") == 0)
        ok = send_header(&h, "Content-Type: %s", c->sms.content_type) && send_header(&h, "Expect:");
    for (size_t i = 0; ok && i < c->sms.n_headers; i++)
        ok = expand(s, o, c->sms.headers[i], SMS_HEADER, &line) &&
             strpbrk(line.data, "\r\n") == NULL && send_header(&h, "%s", line.data);
    if (!ok) {
        send_fail(r, true, "a header of sms.headers cannot be made (too long or a line break)");
        goto out;
    }
    if (c->sms.basic_auth)
        snprintf(userpwd, sizeof userpwd, "%s:%s", c->sms.username, c->sms.password);
    long status = 0;
    CURLcode rc = send_http(s, c->sms.method, url.data, h, body.data, body.len,
                            c->sms.basic_auth ? userpwd : NULL, c->sms.timeout_seconds, &status);
    if (rc == CURLE_OK && status >= 200 && status < 300)
        judge_answer(s, status, r);
    else
        send_http_fail(s, rc, status, true, r);
out:
    curl_slist_free_all(h);
    kp_buf_release(&url);
    kp_buf_release(&body);
    kp_buf_release(&line);
    explicit_bzero(userpwd, sizeof userpwd);
}
