/*
 * config.c: the channels' configuration file (SMTP, SMS gateway, webhooks,
 * retries), read strictly: an unknown field, a wrong type or a value out of
 * range is refused with the field's path and what is allowed. Secrets come
 * from the file or the environment and never appear in an error.
 * docs/notifications.md, "Channels", is the user's description.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "notify/notify.h"
#include "program/program_fields.h"

enum { CONFIG_FILE_MAX = 64 * 1024 };

/* An SMS gateway's built-in settings: what `profile` fills before the
 * file's own keys apply (docs/notifications.md, "SMS profiles"). */
typedef struct sms_profile {
    const char *name;
    const char *url, *method, *content_type, *body;
    bool basic_auth;
    const char *success_field, *success_value, *provider_id_field;
} sms_profile;

static const sms_profile sms_profiles[] = {
    /* Any gateway: the file gives the url; a JSON body by default. */
    {"generic", "", "POST", "application/json",
     "{\"to\":\"{{to}}\",\"text\":\"{{text}}\",\"id\":\"{{id}}\",\"sender\":\"{{sender}}\"}", false,
     "", "", ""},
    /* sms.ru: api_id is the password; json=1 answers {"status":"OK",...}. */
    {"smsru", "https://sms.ru/sms/send", "POST", "application/x-www-form-urlencoded",
     "api_id={{password}}&to={{to}}&msg={{text}}&json=1", false, "status", "OK", ""},
    /* SMSC: login and psw; fmt=3 answers JSON, with "id" on success and
     * "error" otherwise. */
    {"smsc", "https://smsc.ru/sys/send.php", "POST", "application/x-www-form-urlencoded",
     "login={{username}}&psw={{password}}&phones={{to}}&mes={{text}}"
     "&fmt=3&charset=utf-8",
     false, "id", "", "id"},
    /* Twilio: the Account SID is the username, the auth token the
     * password (basic auth); 201 Created with the message's "sid". */
    {"twilio", "https://api.twilio.com/2010-04-01/Accounts/{{username}}/Messages.json", "POST",
     "application/x-www-form-urlencoded", "To={{to}}&From={{sender}}&Body={{text}}", true, "", "",
     "sid"},
};

/* The substitutions a gateway's url, body and headers may use. */
static const char *const sms_placeholders[] = {"to",       "text",     "id", "sender",
                                               "username", "password", NULL};

/* "<path>.<key>" into out (a kp_error.field); one too long for it ends in
 * "..." so the cut shows. */
/* An object member that must be an object when present; NULL when absent. */
static kp_err get_object(json_t *obj, const char *key, const char *path, json_t **out, kp_error *e)
{
    char field[64];
    program_field_name(field, sizeof field, path, key);
    *out = json_object_get(obj, key);
    if (*out && !json_is_object(*out))
        return kp_error_set(e, KP_ERR_INVALID, field, "must be an object");
    return KP_OK;
}

/* A string member into out (left as it is when absent). */
static kp_err get_string(json_t *obj, const char *key, const char *path, char *out, size_t out_size,
                         kp_error *e)
{
    char field[64];
    program_field_name(field, sizeof field, path, key);
    json_t *v = json_object_get(obj, key);
    if (v == NULL) return KP_OK;
    if (!json_is_string(v)) return kp_error_set(e, KP_ERR_INVALID, field, "must be a string");
    size_t len = json_string_length(v);
    if (len >= out_size)
        return kp_error_set(e, KP_ERR_INVALID, field, "is longer than %zu bytes", out_size - 1);
    if (strlen(json_string_value(v)) != len)
        return kp_error_set(e, KP_ERR_INVALID, field, "must not contain a NUL character");
    memcpy(out, json_string_value(v), len + 1);
    return KP_OK;
}

/* A secret: "<key>" in the file or "<key>_env" naming an environment
 * variable; not both. The value never appears in an error. */
static kp_err get_secret(json_t *obj, const char *key, const char *path, char *out, size_t out_size,
                         kp_error *e)
{
    char env_key[64], field[64], env_field[64];
    snprintf(env_key, sizeof env_key, "%s_env", key);
    program_field_name(field, sizeof field, path, key);
    program_field_name(env_field, sizeof env_field, path, env_key);
    json_t *env = json_object_get(obj, env_key);
    if (env && json_object_get(obj, key))
        return kp_error_set(e, KP_ERR_INVALID, field, "give either %s or %s_env, not both", key,
                            key);
    if (env == NULL) return get_string(obj, key, path, out, out_size, e);
    char name[128] = "";
    kp_err err = get_string(obj, env_key, path, name, sizeof name, e);
    if (err) return err;
    if (name[0] == '\0')
        return kp_error_set(e, KP_ERR_INVALID, env_field, "must name an environment variable");
    const char *value = getenv(name);
    if (value == NULL)
        return kp_error_set(e, KP_ERR_INVALID, env_field, "environment variable %s is not set",
                            name);
    if (strlen(value) >= out_size)
        return kp_error_set(e, KP_ERR_INVALID, env_field,
                            "environment variable %s is longer than %zu bytes", name, out_size - 1);
    memcpy(out, value, strlen(value) + 1);
    return KP_OK;
}

/* An integer in [lo, hi] into an int (left as it is when absent). */
static kp_err get_int(json_t *obj, const char *key, const char *path, int64_t lo, int64_t hi,
                      int *out, kp_error *e)
{
    int64_t v = *out;
    kp_err err = program_get_int(obj, key, path, false, lo, hi, &v, e);
    if (err == KP_OK) *out = (int)v;
    return err;
}

static kp_err get_rate(json_t *obj, const char *path, double *out, kp_error *e)
{
    char field[64];
    program_field_name(field, sizeof field, path, "rate_per_second");
    json_t *v = json_object_get(obj, "rate_per_second");
    if (v == NULL) return KP_OK;
    if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 100000)
        return kp_error_set(e, KP_ERR_INVALID, field,
                            "must be a number from 0 (no limit) to 100000");
    *out = json_number_value(v);
    return KP_OK;
}

/* How many delivery workers a channel runs at once. */
static kp_err get_concurrency(json_t *obj, const char *path, int *out, kp_error *e)
{
    char field[64];
    program_field_name(field, sizeof field, path, "concurrency");
    json_t *v = json_object_get(obj, "concurrency");
    if (v == NULL) return KP_OK;
    if (!json_is_integer(v) || json_integer_value(v) < 1 ||
        json_integer_value(v) > KP_CONCURRENCY_MAX)
        return kp_error_set(e, KP_ERR_INVALID, field,
                            "must be an integer from 1 to %d: the channel's delivery workers, "
                            "which share its rate_per_second", KP_CONCURRENCY_MAX);
    *out = (int)json_integer_value(v);
    return KP_OK;
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* A value that goes into a message's header (From, Reply-To, the
 * List-Unsubscribe link, an SMS sender): one line of printable text, so no
 * file can add a header of its own (CR LF) or a stray control byte. */
static kp_err one_line(const char *value, const char *field, kp_error *e)
{
    for (const unsigned char *p = (const unsigned char *)value; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return kp_error_set(e, KP_ERR_INVALID, field,
                                "must be one line without control characters (a line break "
                                "would start a header of its own)");
    return KP_OK;
}

/* Replaces every {{env:NAME}} in text (of size `size`) by the variable's
 * value, at load, so a missing variable is refused before anything is
 * sent. Values go in as they are (not escaped). */
static kp_err expand_env(char *text, size_t size, const char *field, kp_error *e)
{
    kp_buf out;
    kp_buf_init(&out, size);
    kp_err err = KP_OK;
    const char *p = text;
    for (;;) {
        const char *at = strstr(p, "{{env:");
        if (at == NULL) {
            kp_buf_puts(&out, p);
            break;
        }
        kp_buf_append(&out, p, (size_t)(at - p));
        const char *name = at + 6, *end = strstr(name, "}}");
        if (end == NULL || end == name || end - name >= 128) {
            err = kp_error_set(e, KP_ERR_INVALID, field,
                               "{{env:NAME}} must name an environment variable and end with }}");
            goto out;
        }
        char var[128];
        memcpy(var, name, (size_t)(end - name));
        var[end - name] = '\0';
        const char *value = getenv(var);
        if (value == NULL) {
            err = kp_error_set(e, KP_ERR_INVALID, field, "environment variable %s is not set", var);
            goto out;
        }
        kp_buf_puts(&out, value);
        p = end + 2;
    }
    if (out.failed || out.len >= size) {
        err = kp_error_set(e, KP_ERR_INVALID, field,
                           "is longer than %zu bytes once {{env:...}} is filled in", size - 1);
        goto out;
    }
    memcpy(text, out.data ? out.data : "", out.len);
    text[out.len] = '\0';
out:
    kp_buf_release(&out);
    return err;
}

/* Every {{name}} in a gateway's text must be one the sender fills in. */
static kp_err check_placeholders(const char *text, const char *field, kp_error *e)
{
    for (const char *p = strstr(text, "{{"); p; p = strstr(p + 2, "{{")) {
        const char *end = strstr(p + 2, "}}");
        size_t len = end ? (size_t)(end - p - 2) : 0;
        bool known = false;
        for (size_t i = 0; end && sms_placeholders[i]; i++)
            if (strlen(sms_placeholders[i]) == len && memcmp(p + 2, sms_placeholders[i], len) == 0)
                known = true;
        if (!known)
            return kp_error_set(e, KP_ERR_INVALID, field,
                                "unknown substitution at byte %zu; allowed: {{to}}, {{text}}, "
                                "{{id}}, {{sender}}, {{username}}, {{password}}, {{env:NAME}}",
                                (size_t)(p - text));
    }
    return KP_OK;
}

void kp_notify_config_default(kp_notify_config *out)
{
    memset(out, 0, sizeof *out);
    out->email.starttls = 1;
    out->email.rate_per_second = 10;
    out->email.timeout_seconds = 10;
    out->email.concurrency = KP_CONCURRENCY_EMAIL;
    snprintf(out->sms.profile, sizeof out->sms.profile, "generic");
    snprintf(out->sms.method, sizeof out->sms.method, "POST");
    out->sms.rate_per_second = 5;
    out->sms.timeout_seconds = 10;
    out->sms.concurrency = KP_CONCURRENCY_SMS;
    out->webhook.on = true;
    out->webhook.rate_per_second = 50;
    out->webhook.timeout_seconds = 10;
    out->webhook.concurrency = KP_CONCURRENCY_WEBHOOK;
    out->retry.max_attempts = 8;
    out->retry.base_seconds = 30;
    out->retry.max_seconds = 3600;
}

static kp_err load_email(json_t *o, kp_notify_config *c, kp_error *e)
{
    static const char *const keys[] = {
        "url",  "starttls", "username",        "password",        "password_env",
        "from", "reply_to", "rate_per_second", "timeout_seconds", "concurrency", NULL};
    kp_err err = program_only_keys(o, keys, "email", e);
    char starttls[16] = "try";
    if (!err) err = get_string(o, "url", "email", c->email.url, sizeof c->email.url, e);
    if (!err) err = get_string(o, "starttls", "email", starttls, sizeof starttls, e);
    if (!err)
        err = get_string(o, "username", "email", c->email.username, sizeof c->email.username, e);
    if (!err)
        err = get_secret(o, "password", "email", c->email.password, sizeof c->email.password, e);
    if (!err) err = get_string(o, "from", "email", c->email.from, sizeof c->email.from, e);
    if (!err)
        err = get_string(o, "reply_to", "email", c->email.reply_to, sizeof c->email.reply_to, e);
    if (!err) err = get_rate(o, "email", &c->email.rate_per_second, e);
    if (!err) err = get_int(o, "timeout_seconds", "email", 1, 300, &c->email.timeout_seconds, e);
    if (!err) err = get_concurrency(o, "email", &c->email.concurrency, e);
    if (err) return err;
    if (!starts_with(c->email.url, "smtp://") && !starts_with(c->email.url, "smtps://"))
        return kp_error_set(e, KP_ERR_INVALID, "email.url",
                            "is required: smtp://host:port or smtps://host:port");
    if (strcmp(starttls, "off") == 0)
        c->email.starttls = 0;
    else if (strcmp(starttls, "try") == 0)
        c->email.starttls = 1;
    else if (strcmp(starttls, "required") == 0)
        c->email.starttls = 2;
    else
        return kp_error_set(e, KP_ERR_INVALID, "email.starttls",
                            "must be \"off\", \"try\" or \"required\"");
    if ((err = one_line(c->email.from, "email.from", e)) ||
        (err = one_line(c->email.reply_to, "email.reply_to", e)))
        return err;
    if (strchr(c->email.from, '@') == NULL)
        return kp_error_set(e, KP_ERR_INVALID, "email.from",
                            "is required: an address, as \"Kopilka <noreply@example.com>\"");
    if (c->email.reply_to[0] && strchr(c->email.reply_to, '@') == NULL)
        return kp_error_set(e, KP_ERR_INVALID, "email.reply_to", "must be an e-mail address");
    if (c->email.password[0] && c->email.username[0] == '\0')
        return kp_error_set(e, KP_ERR_INVALID, "email.username",
                            "is required when a password is given");
    c->email.on = true;
    return KP_OK;
}

static kp_err load_sms_success(json_t *o, kp_notify_config *c, kp_error *e)
{
    static const char *const keys[] = {"field", "value", NULL};
    json_t *s;
    kp_err err = get_object(o, "success", "sms", &s, e);
    if (err || s == NULL) return err;
    if ((err = program_only_keys(s, keys, "sms.success", e))) return err;
    if (!json_object_get(s, "field"))
        return kp_error_set(e, KP_ERR_INVALID, "sms.success.field",
                            "is required: a dotted path into the gateway's JSON answer");
    c->sms.success_value[0] = '\0';
    err =
        get_string(s, "field", "sms.success", c->sms.success_field, sizeof c->sms.success_field, e);
    if (!err)
        err = get_string(s, "value", "sms.success", c->sms.success_value,
                         sizeof c->sms.success_value, e);
    if (err) return err;
    if (c->sms.success_field[0] == '\0')
        return kp_error_set(
            e, KP_ERR_INVALID, "sms.success.field",
            "must not be empty: a dotted path such as \"status\" or \"result.code\"");
    if (json_object_get(s, "value") && c->sms.success_value[0] == '\0')
        return kp_error_set(e, KP_ERR_INVALID, "sms.success.value",
                            "must not be empty; leave it out to require only that the field is "
                            "present");
    return KP_OK;
}

static kp_err load_sms_headers(json_t *o, kp_notify_config *c, kp_error *e)
{
    json_t *h = json_object_get(o, "headers");
    if (h == NULL) return KP_OK;
    size_t cap = sizeof c->sms.headers / sizeof c->sms.headers[0];
    if (!json_is_array(h) || json_array_size(h) > cap)
        return kp_error_set(e, KP_ERR_INVALID, "sms.headers",
                            "must be an array of at most %zu strings \"Name: value\"", cap);
    c->sms.n_headers = 0;
    for (size_t i = 0; i < json_array_size(h); i++) {
        char field[64];
        snprintf(field, sizeof field, "sms.headers[%zu]", i);
        json_t *v = json_array_get(h, i);
        const char *s = json_string_value(v);
        if (s == NULL || json_string_length(v) >= sizeof c->sms.headers[0] ||
            strlen(s) != json_string_length(v) || strchr(s, ':') == NULL || s[0] == ':' ||
            strpbrk(s, "\r\n"))
            return kp_error_set(e, KP_ERR_INVALID, field,
                                "must be one line \"Name: value\" of at most %zu bytes",
                                sizeof c->sms.headers[0] - 1);
        memcpy(c->sms.headers[i], s, strlen(s) + 1);
        kp_err err = expand_env(c->sms.headers[i], sizeof c->sms.headers[i], field, e);
        if (!err) err = check_placeholders(c->sms.headers[i], field, e);
        if (err) return err;
        c->sms.n_headers++;
    }
    return KP_OK;
}

static kp_err load_sms(json_t *o, kp_notify_config *c, kp_error *e)
{
    static const char *const keys[] = {"profile",
                                       "url",
                                       "method",
                                       "content_type",
                                       "body",
                                       "headers",
                                       "username",
                                       "username_env",
                                       "password",
                                       "password_env",
                                       "auth",
                                       "success",
                                       "provider_id_field",
                                       "sender",
                                       "rate_per_second",
                                       "timeout_seconds",
                                       "concurrency",
                                       "inbound_token",
                                       "inbound_token_env",
                                       NULL};
    kp_err err = program_only_keys(o, keys, "sms", e);
    if (!err) err = get_string(o, "profile", "sms", c->sms.profile, sizeof c->sms.profile, e);
    if (err) return err;
    const sms_profile *p = NULL;
    for (size_t i = 0; i < sizeof sms_profiles / sizeof sms_profiles[0]; i++)
        if (strcmp(c->sms.profile, sms_profiles[i].name) == 0) p = &sms_profiles[i];
    if (p == NULL)
        return kp_error_set(e, KP_ERR_INVALID, "sms.profile",
                            "unknown profile; allowed: generic, smsru, smsc, twilio");
    snprintf(c->sms.url, sizeof c->sms.url, "%s", p->url);
    snprintf(c->sms.method, sizeof c->sms.method, "%s", p->method);
    snprintf(c->sms.content_type, sizeof c->sms.content_type, "%s", p->content_type);
    snprintf(c->sms.body, sizeof c->sms.body, "%s", p->body);
    c->sms.basic_auth = p->basic_auth;
    snprintf(c->sms.success_field, sizeof c->sms.success_field, "%s", p->success_field);
    snprintf(c->sms.success_value, sizeof c->sms.success_value, "%s", p->success_value);
    snprintf(c->sms.provider_id_field, sizeof c->sms.provider_id_field, "%s", p->provider_id_field);

    char auth[16] = "";
    err = get_string(o, "url", "sms", c->sms.url, sizeof c->sms.url, e);
    if (!err) err = get_string(o, "method", "sms", c->sms.method, sizeof c->sms.method, e);
    if (!err)
        err = get_string(o, "content_type", "sms", c->sms.content_type, sizeof c->sms.content_type,
                         e);
    if (!err) err = get_string(o, "body", "sms", c->sms.body, sizeof c->sms.body, e);
    if (!err) err = load_sms_headers(o, c, e);
    if (!err) err = get_secret(o, "username", "sms", c->sms.username, sizeof c->sms.username, e);
    if (!err) err = get_secret(o, "password", "sms", c->sms.password, sizeof c->sms.password, e);
    if (!err) err = get_string(o, "auth", "sms", auth, sizeof auth, e);
    if (!err) err = load_sms_success(o, c, e);
    if (!err)
        err = get_string(o, "provider_id_field", "sms", c->sms.provider_id_field,
                         sizeof c->sms.provider_id_field, e);
    if (!err) err = get_string(o, "sender", "sms", c->sms.sender, sizeof c->sms.sender, e);
    if (!err) err = get_rate(o, "sms", &c->sms.rate_per_second, e);
    if (!err) err = get_int(o, "timeout_seconds", "sms", 1, 300, &c->sms.timeout_seconds, e);
    if (!err) err = get_concurrency(o, "sms", &c->sms.concurrency, e);
    if (!err)
        err = get_secret(o, "inbound_token", "sms", c->sms.inbound_token,
                         sizeof c->sms.inbound_token, e);
    /* Whoever knows it can turn customers' marketing SMS off: not a word
     * one guesses. */
    if (!err && c->sms.inbound_token[0] != '\0' && strlen(c->sms.inbound_token) < 12)
        err = kp_error_set(e, KP_ERR_INVALID, "sms.inbound_token",
                           "is too short: at least 12 characters (a random token)");
    if (!err) err = expand_env(c->sms.url, sizeof c->sms.url, "sms.url", e);
    if (!err) err = expand_env(c->sms.body, sizeof c->sms.body, "sms.body", e);
    if (!err) err = check_placeholders(c->sms.url, "sms.url", e);
    if (!err) err = check_placeholders(c->sms.body, "sms.body", e);
    if (!err) err = one_line(c->sms.sender, "sms.sender", e);
    if (err) return err;

    if (!starts_with(c->sms.url, "http://") && !starts_with(c->sms.url, "https://"))
        return kp_error_set(e, KP_ERR_INVALID, "sms.url",
                            "is required (the generic profile has none): http:// or https://");
    if (strcmp(c->sms.method, "POST") != 0 && strcmp(c->sms.method, "GET") != 0)
        return kp_error_set(e, KP_ERR_INVALID, "sms.method", "must be \"POST\" or \"GET\"");
    if (strcmp(c->sms.method, "GET") == 0 && json_object_get(o, "body") && c->sms.body[0] != '\0')
        return kp_error_set(e, KP_ERR_INVALID, "sms.body",
                            "must be empty with method GET (put the fields in the url)");
    if (strcmp(c->sms.method, "GET") == 0) c->sms.body[0] = '\0';
    if (strcmp(c->sms.method, "POST") == 0 && c->sms.content_type[0] == '\0')
        return kp_error_set(e, KP_ERR_INVALID, "sms.content_type",
                            "is required with POST, as \"application/json\" or "
                            "\"application/x-www-form-urlencoded\"");
    if (strpbrk(c->sms.content_type, "\r\n"))
        return kp_error_set(e, KP_ERR_INVALID, "sms.content_type", "must be one line");
    if (auth[0]) {
        if (strcmp(auth, "basic") == 0)
            c->sms.basic_auth = true;
        else if (strcmp(auth, "none") == 0)
            c->sms.basic_auth = false;
        else
            return kp_error_set(e, KP_ERR_INVALID, "sms.auth", "must be \"basic\" or \"none\"");
    } else if (p == &sms_profiles[0]) {
        c->sms.basic_auth = c->sms.username[0] != '\0' &&
                            strstr(c->sms.url, "{{username}}") == NULL &&
                            strstr(c->sms.body, "{{username}}") == NULL;
    }
    if (c->sms.basic_auth && c->sms.username[0] == '\0')
        return kp_error_set(e, KP_ERR_INVALID, "sms.username",
                            "is required with basic auth (profile %s)", c->sms.profile);
    bool uses_user = strstr(c->sms.url, "{{username}}") || strstr(c->sms.body, "{{username}}");
    bool uses_password = strstr(c->sms.url, "{{password}}") || strstr(c->sms.body, "{{password}}");
    if (uses_user && c->sms.username[0] == '\0')
        return kp_error_set(e, KP_ERR_INVALID, "sms.username",
                            "is required: profile %s puts it in the request", c->sms.profile);
    if (uses_password && c->sms.password[0] == '\0')
        return kp_error_set(e, KP_ERR_INVALID, "sms.password",
                            "is required (or password_env): profile %s puts it in the request",
                            c->sms.profile);
    bool uses_sender = strstr(c->sms.url, "{{sender}}") || strstr(c->sms.body, "{{sender}}");
    if (uses_sender && c->sms.sender[0] == '\0' && strcmp(c->sms.profile, "twilio") == 0)
        return kp_error_set(e, KP_ERR_INVALID, "sms.sender",
                            "is required with profile twilio: the From number");
    c->sms.on = true;
    return KP_OK;
}

static kp_err load_webhooks(json_t *o, kp_notify_config *c, kp_error *e)
{
    static const char *const keys[] = {"enabled", "rate_per_second", "timeout_seconds",
                                       "concurrency", NULL};
    kp_err err = program_only_keys(o, keys, "webhooks", e);
    if (!err) err = program_get_bool(o, "enabled", "webhooks", &c->webhook.on, e);
    if (!err) err = get_rate(o, "webhooks", &c->webhook.rate_per_second, e);
    if (!err)
        err = get_int(o, "timeout_seconds", "webhooks", 1, 300, &c->webhook.timeout_seconds, e);
    if (!err) err = get_concurrency(o, "webhooks", &c->webhook.concurrency, e);
    return err;
}

static kp_err load_retry(json_t *o, kp_notify_config *c, kp_error *e)
{
    static const char *const keys[] = {"max_attempts", "base_seconds", "max_seconds", NULL};
    kp_err err = program_only_keys(o, keys, "retry", e);
    if (!err) err = get_int(o, "max_attempts", "retry", 1, 100, &c->retry.max_attempts, e);
    if (!err) err = get_int(o, "base_seconds", "retry", 1, 86400, &c->retry.base_seconds, e);
    if (!err) err = get_int(o, "max_seconds", "retry", 1, 7 * 86400, &c->retry.max_seconds, e);
    if (!err && c->retry.max_seconds < c->retry.base_seconds)
        err = kp_error_set(e, KP_ERR_INVALID, "retry.max_seconds",
                           "must be at least retry.base_seconds (%d)", c->retry.base_seconds);
    return err;
}

kp_err kp_notify_config_load(const char *path, kp_notify_config *out, kp_error *e)
{
    static const char *const keys[] = {"email", "sms", "webhooks", "retry", "public_url", NULL};
    kp_notify_config_default(out);
    struct stat st;
    if (stat(path, &st) != 0)
        return kp_error_set(e, KP_ERR_INVALID, "notify", "cannot read %s: %s", path,
                            strerror(errno));
    if (st.st_size > CONFIG_FILE_MAX)
        return kp_error_set(e, KP_ERR_LIMIT, "notify", "%s is larger than %d bytes", path,
                            CONFIG_FILE_MAX);
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return kp_error_set(e, KP_ERR_INVALID, "notify", "%s: line %d, column %d: %s", path,
                            jerr.line, jerr.column, jerr.text);
    kp_err err = KP_OK;
    json_t *email, *sms, *webhooks, *retry;
    if (!json_is_object(root)) {
        err = kp_error_set(e, KP_ERR_INVALID, "notify", "%s must hold a JSON object", path);
        goto out;
    }
    if ((err = program_only_keys(root, keys, "", e))) goto out;
    if ((err = get_object(root, "email", "", &email, e))) goto out;
    if ((err = get_object(root, "sms", "", &sms, e))) goto out;
    if ((err = get_object(root, "webhooks", "", &webhooks, e))) goto out;
    if ((err = get_object(root, "retry", "", &retry, e))) goto out;
    if (email && (err = load_email(email, out, e))) goto out;
    if (sms && (err = load_sms(sms, out, e))) goto out;
    if (webhooks && (err = load_webhooks(webhooks, out, e))) goto out;
    if (retry && (err = load_retry(retry, out, e))) goto out;
    if ((err = get_string(root, "public_url", "", out->public_url, sizeof out->public_url, e)))
        goto out;
    if ((err = one_line(out->public_url, "public_url", e))) goto out;
    if (out->public_url[0] && !starts_with(out->public_url, "http://") &&
        !starts_with(out->public_url, "https://")) {
        err = kp_error_set(e, KP_ERR_INVALID, "public_url", "must start with http:// or https://");
        goto out;
    }
out:
    json_decref(root);
    if (err) {
        /* No secret outlives a refused file. */
        kp_notify_config defaults;
        kp_notify_config_default(&defaults);
        *out = defaults;
    }
    return err;
}
