/* test_notify_send.c: the channels' senders against real servers on
 * loopback (tests/integration/fakes.py: aiosmtpd, an SMS gateway, a webhook
 * receiver that verifies signatures with its own code), the channels file's
 * errors, and a known answer of kp_webhook_sign. The Python and fakes.py
 * come from compile definitions (KOPILKA_FAKES_PYTHON, KOPILKA_FAKES_PY) or
 * argv[1] and argv[2]. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "notify/notify.h"

static const char *python = KOPILKA_FAKES_PYTHON;
static const char *fakes_py = KOPILKA_FAKES_PY;

/* One fake provider in its own process. */
typedef struct fake {
    pid_t pid;
    int port;
    char dir[64], port_file[96], log[96];
} fake;

static void fake_start(fake *f, const char *kind, const char *const *extra)
{
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/kp-fakes-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->port_file, sizeof f->port_file, "%s/port", f->dir);
    snprintf(f->log, sizeof f->log, "%s/log", f->dir);
    const char *argv[24] = {python, fakes_py, kind, "--port-file", f->port_file, "--log", f->log};
    size_t n = 7;
    for (size_t i = 0; extra && extra[i] && n < 23; i++) argv[n++] = extra[i];
    argv[n] = NULL;
    f->pid = fork();
    assert_true(f->pid >= 0);
    if (f->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* a failed test leaves no fake behind */
        execvp(python, (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) { /* 20 s for Python to start */
        FILE *pf = fopen(f->port_file, "r");
        if (pf) {
            int ok = fscanf(pf, "%d", &f->port); /* the fake writes it whole (rename) */
            fclose(pf);
            if (ok == 1) return;
        }
        int status;
        if (waitpid(f->pid, &status, WNOHANG) == f->pid)
            fail_msg("fakes.py %s exited (status %d): is python3-aiosmtpd installed "
                     "(scripts/deps.sh --test)?",
                     kind, status);
        usleep(100 * 1000);
    }
    fail_msg("fakes.py %s did not start", kind);
}

static void fake_stop(fake *f)
{
    kill(f->pid, SIGTERM);
    waitpid(f->pid, NULL, 0);
    unlink(f->port_file);
    unlink(f->log);
    rmdir(f->dir);
}

/* What the fake recorded: a JSON array of its log's lines. Waits up to 5
 * s for at least `want` of them (an SMTP server records after answering). */
static json_t *fake_log(const fake *f, size_t want)
{
    for (int i = 0;; i++) {
        json_t *all = json_array();
        FILE *lf = fopen(f->log, "r");
        char line[65536];
        while (lf && fgets(line, sizeof line, lf)) {
            json_t *item = json_loads(line, 0, NULL);
            assert_non_null(item);
            json_array_append_new(all, item);
        }
        if (lf) fclose(lf);
        if (json_array_size(all) >= want || i == 50) return all;
        json_decref(all);
        usleep(100 * 1000);
    }
}

static const char *jstr(json_t *o, const char *path)
{
    json_t *v = o;
    char part[64];
    for (const char *p = path; v && *p;) {
        size_t len = strcspn(p, ".");
        snprintf(part, sizeof part, "%.*s", (int)len, p);
        v = json_object_get(v, part);
        p += len + (p[len] == '.');
    }
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* An HTTP POST from the test itself (the fakes' control, a forged
 * webhook); returns the status. */
static long http_post(const char *url, const char *body, struct curl_slist *headers)
{
    CURL *c = curl_easy_init();
    assert_non_null(c);
    FILE *devnull = fopen("/dev/null", "w");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, devnull);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    fclose(devnull);
    return status;
}

static void fake_mode(const fake *f, const char *control_json)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/_control", f->port);
    assert_int_equal(http_post(url, control_json, NULL), 200);
}

/* A channels file from text; returns the load's result. */
static kp_err load_text(const char *json, kp_notify_config *c, kp_error *e)
{
    char path[] = "/tmp/kp-notify-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, json, strlen(json)), (ssize_t)strlen(json));
    close(fd);
    memset(e, 0, sizeof *e);
    kp_err err = kp_notify_config_load(path, c, e);
    unlink(path);
    return err;
}

static void expect_refused(const char *json, const char *field, const char *words)
{
    kp_notify_config c;
    kp_error e;
    assert_int_equal(load_text(json, &c, &e), KP_ERR_INVALID);
    if (strcmp(e.field, field) != 0)
        fail_msg("field %s, expected %s (%s)", e.field, field, e.message);
    if (strstr(e.message, words) == NULL) fail_msg("message \"%s\" lacks \"%s\"", e.message, words);
}

/* ---------------------------------------------------------------- config */

static void test_config_errors_name_the_field(void **state)
{
    (void)state;
    expect_refused(
        "{\"sms\":{\"url\":\"http://x\",\"success\":{\"field\":\"status\",\"colour\":1}}}",
        "sms.success.colour", "allowed: field, value");
    expect_refused("{\"sms\":{\"url\":\"http://x\",\"success\":{\"value\":\"OK\"}}}",
                   "sms.success.field", "dotted path");
    expect_refused("{\"sms\":{\"url\":\"http://x\",\"success\":{\"field\":7}}}",
                   "sms.success.field", "string");
    expect_refused("{\"email\":{\"url\":\"smtp://h\",\"from\":\"a@b\",\"starttls\":\"maybe\"}}",
                   "email.starttls", "\"off\", \"try\" or \"required\"");
    expect_refused("{\"email\":{\"url\":\"http://h\",\"from\":\"a@b\"}}", "email.url", "smtp://");
    expect_refused("{\"sms\":{\"profile\":\"beeline\"}}", "sms.profile",
                   "generic, smsru, smsc, twilio");
    expect_refused("{\"sms\":{}}", "sms.url", "required");
    expect_refused("{\"sms\":{\"url\":\"http://x/{{phone}}\"}}", "sms.url", "{{to}}");
    expect_refused("{\"sms\":{\"profile\":\"smsru\"}}", "sms.password", "required");
    expect_refused("{\"retry\":{\"max_attempts\":0}}", "retry.max_attempts", "from 1 to 100");
    expect_refused("{\"sms\":{\"url\":\"http://x\",\"inbound_token\":\"stop\"}}",
                   "sms.inbound_token", "at least 12 characters");
    expect_refused("{\"webhooks\":{\"enabled\":\"yes\"}}", "webhooks.enabled", "true or false");
    expect_refused("{\"emial\":{}}", "emial", "allowed: email, sms, webhooks, retry, public_url");
    expect_refused("{\"sms\":{\"url\":\"http://x\",\"headers\":[\"no colon\"]}}", "sms.headers[0]",
                   "Name: value");
    unsetenv("KP_TEST_NO_SUCH_VAR");
    expect_refused("{\"email\":{\"url\":\"smtp://h\",\"from\":\"a@b\",\"username\":\"u\","
                   "\"password_env\":\"KP_TEST_NO_SUCH_VAR\"}}",
                   "email.password_env", "KP_TEST_NO_SUCH_VAR is not set");
    expect_refused(
        "{\"sms\":{\"url\":\"http://x\",\"headers\":[\"A: {{env:KP_TEST_NO_SUCH_VAR}}\"]}}",
        "sms.headers[0]", "KP_TEST_NO_SUCH_VAR is not set");
}

/* Values that go into headers are one line: no file adds a header. */
static void test_config_refuses_line_breaks_in_header_values(void **state)
{
    (void)state;
    expect_refused("{\"email\":{\"url\":\"smtp://h\",\"from\":\"a@b\\r\\nBcc: x@evil\"}}",
                   "email.from", "one line");
    expect_refused("{\"email\":{\"url\":\"smtp://h\",\"from\":\"a@b\","
                   "\"reply_to\":\"r@b\\nX: y\"}}",
                   "email.reply_to", "one line");
    expect_refused("{\"public_url\":\"https://l.example\\r\\nX: y\"}", "public_url", "one line");
    expect_refused("{\"sms\":{\"url\":\"http://x\",\"sender\":\"Shop\\u0007\"}}", "sms.sender",
                   "one line");
    kp_notify_config c;
    kp_error e;
    assert_int_equal(load_text("{\"email\":{\"url\":\"smtp://h\",\"from\":\"Копилка <a@b>\"},"
                               "\"public_url\":\"https://l.example/\"}",
                               &c, &e),
                     KP_OK);
}

static void test_config_never_prints_a_secret(void **state)
{
    (void)state;
    kp_notify_config c;
    kp_error e;
    setenv("KP_TEST_TOKEN", "tok-very-secret", 1);
    /* Valid secrets, then an error further on: neither value is told. */
    assert_int_equal(
        load_text("{\"email\":{\"url\":\"smtp://h\",\"from\":\"a@b\",\"username\":\"u\","
                  "\"password\":\"pw-very-secret\"},"
                  "\"sms\":{\"url\":\"http://x\",\"headers\":[\"Authorization: Bearer "
                  "{{env:KP_TEST_TOKEN}}\"],\"method\":\"PUT\"}}",
                  &c, &e),
        KP_ERR_INVALID);
    assert_string_equal(e.field, "sms.method");
    assert_null(strstr(e.message, "very-secret"));
    assert_string_equal(c.email.password, ""); /* a refused file leaves no secret behind */
    expect_refused(
        "{\"email\":{\"url\":\"smtp://h\",\"from\":\"a@b\",\"password\":\"pw-very-secret\","
        "\"password_env\":\"KP_TEST_TOKEN\"}}",
        "email.password", "not both");
}

static void test_config_profiles_and_defaults(void **state)
{
    (void)state;
    kp_notify_config c;
    kp_error e;
    setenv("KP_TEST_TOKEN", "tok-1", 1);
    assert_int_equal(
        load_text("{\"email\":{\"url\":\"smtp://127.0.0.1:2525\",\"starttls\":\"off\","
                  "\"from\":\"Kopilka <noreply@example.com>\"},"
                  "\"sms\":{\"profile\":\"twilio\",\"username\":\"AC123\","
                  "\"password_env\":\"KP_TEST_TOKEN\",\"sender\":\"+15550001111\"},"
                  "\"retry\":{\"max_attempts\":3},\"public_url\":\"https://l.example\"}",
                  &c, &e),
        KP_OK);
    assert_true(c.email.on);
    assert_int_equal(c.email.starttls, 0);
    assert_true(c.sms.on);
    assert_string_equal(c.sms.url,
                        "https://api.twilio.com/2010-04-01/Accounts/{{username}}/Messages.json");
    assert_string_equal(c.sms.body, "To={{to}}&From={{sender}}&Body={{text}}");
    assert_true(c.sms.basic_auth);
    assert_string_equal(c.sms.password, "tok-1");
    assert_string_equal(c.sms.provider_id_field, "sid");
    assert_true(c.webhook.on);
    assert_int_equal(c.retry.max_attempts, 3);
    assert_int_equal(c.retry.base_seconds, 30);
    assert_string_equal(c.public_url, "https://l.example");

    assert_int_equal(load_text("{\"sms\":{\"profile\":\"smsru\",\"password\":\"api-1\"}}", &c, &e),
                     KP_OK);
    assert_string_equal(c.sms.url, "https://sms.ru/sms/send");
    assert_string_equal(c.sms.success_field, "status");
    assert_string_equal(c.sms.success_value, "OK");
    assert_false(c.sms.basic_auth);
    assert_false(c.email.on);
}

/* --------------------------------------------------------------- webhook */

static void test_webhook_sign_known_answer(void **state)
{
    (void)state;
    char sig[128];
    /* The Standard Webhooks specification's example, recomputed with
     * Python: base64.b64encode(hmac.new(base64.b64decode(
     * "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), b'msg_p5jXN8AQM9LWM0D4loKWxJek.'
     * b'1614265330.{"test": 2432232314}', hashlib.sha256).digest()). */
    const char *body = "{\"test\": 2432232314}";
    assert_int_equal(kp_webhook_sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                                     "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, strlen(body),
                                     sig, sizeof sig),
                     KP_OK);
    assert_string_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    /* A Kopilka-shaped one, key bytes 0..23, the same way in Python:
     * key = bytes(range(24)); hmac.new(key, b'42/webhook/7.1795000000.'
     * b'{"type":"earned","points":1560}', hashlib.sha256). */
    body = "{\"type\":\"earned\",\"points\":1560}";
    assert_int_equal(kp_webhook_sign("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX", "42/webhook/7",
                                     1795000000, body, strlen(body), sig, sizeof sig),
                     KP_OK);
    assert_string_equal(sig, "v1,/LesH4u4c6kf7jNV63VhcvG7OeVqScf7nmyuzwfsmdM=");
    assert_int_equal(kp_webhook_sign("AAECAwQF", "x", 1, "", 0, sig, sizeof sig), KP_ERR_INVALID);
    assert_int_equal(kp_webhook_sign("whsec_!!!", "x", 1, "", 0, sig, sizeof sig), KP_ERR_INVALID);

    char a[64], b[64];
    kp_webhook_secret_new(a, sizeof a);
    kp_webhook_secret_new(b, sizeof b);
    assert_int_equal(strncmp(a, "whsec_", 6), 0);
    assert_int_equal(strlen(a), 6 + 32); /* base64 of 24 bytes */
    assert_string_not_equal(a, b);
    assert_int_equal(kp_webhook_sign(a, "x", 1, "", 0, sig, sizeof sig), KP_OK);
}

static kp_message message(int64_t id, kp_channel channel, const char *key)
{
    kp_message m;
    memset(&m, 0, sizeof m);
    m.id = id;
    m.channel = channel;
    snprintf(m.key, sizeof m.key, "%s", key);
    return m;
}

static void test_webhook_signature_verified_by_the_receiver(void **state)
{
    (void)state;
    char secret[64], other[64];
    kp_webhook_secret_new(secret, sizeof secret);
    kp_webhook_secret_new(other, sizeof other);
    const char *extra[] = {"--secret", secret, NULL};
    fake f;
    fake_start(&f, "webhook", extra);
    kp_notify_config cfg;
    kp_notify_config_default(&cfg);
    kp_webhook_endpoint ep;
    memset(&ep, 0, sizeof ep);
    ep.id = 7;
    snprintf(ep.url, sizeof ep.url, "http://127.0.0.1:%d/hooks/kopilka", f.port);
    kp_message m = message(1, KP_CHANNEL_WEBHOOK, "42/webhook/7");
    kp_outgoing o = {.m = &m, .body = strdup("{\"type\":\"earned\",\"data\":{\"points\":1560}}")};
    kp_sender *s = kp_sender_new(&cfg, KP_CHANNEL_WEBHOOK);
    assert_non_null(s);
    kp_send_result r;
    kp_time now = (kp_time)time(NULL);
    kp_sender_send(s, &o, &ep, secret, now, &r);
    assert_true(r.ok);

    /* The wrong secret: the receiver refuses it (401, retried). */
    kp_sender_send(s, &o, &ep, other, now, &r);
    assert_false(r.ok);
    assert_false(r.permanent);
    assert_non_null(strstr(r.error, "401"));

    /* A body changed on the way, with the signature of the original. */
    char sig[128], line[3][200];
    assert_int_equal(
        kp_webhook_sign(secret, "43/webhook/7", now, o.body, strlen(o.body), sig, sizeof sig),
        KP_OK);
    snprintf(line[0], sizeof line[0], "webhook-id: 43/webhook/7");
    snprintf(line[1], sizeof line[1], "webhook-timestamp: %lld", (long long)now);
    snprintf(line[2], sizeof line[2], "webhook-signature: %s", sig);
    struct curl_slist *h = NULL;
    for (int i = 0; i < 3; i++) h = curl_slist_append(h, line[i]);
    h = curl_slist_append(h, "Content-Type: application/json");
    assert_int_equal(http_post(ep.url, "{\"type\":\"earned\",\"data\":{\"points\":999999}}", h),
                     401);
    curl_slist_free_all(h);

    /* 410 Gone is permanent. */
    fake_mode(&f, "{\"mode\":\"gone\"}");
    kp_sender_send(s, &o, &ep, secret, now, &r);
    assert_false(r.ok);
    assert_true(r.permanent);

    json_t *log = fake_log(&f, 4);
    assert_int_equal(json_array_size(log), 4);
    json_t *first = json_array_get(log, 0);
    assert_true(json_is_true(json_object_get(first, "valid")));
    assert_string_equal(jstr(first, "id"), "42/webhook/7");
    assert_string_equal(jstr(first, "body"), o.body);
    assert_string_equal(jstr(first, "headers.content-type"), "application/json");
    assert_false(json_is_true(json_object_get(json_array_get(log, 1), "valid")));
    json_t *forged = json_array_get(log, 2);
    assert_false(json_is_true(json_object_get(forged, "valid")));
    assert_string_equal(jstr(forged, "reason"), "no matching signature");
    assert_true(json_is_true(json_object_get(json_array_get(log, 3), "valid")));
    json_decref(log);
    kp_outgoing_release(&o);
    kp_sender_free(s);
    fake_stop(&f);
}

/* ----------------------------------------------------------------- email */

static void test_email_arrives_with_subject_parts_and_headers(void **state)
{
    (void)state;
    fake f;
    fake_start(&f, "smtp", NULL);
    kp_notify_config cfg;
    kp_notify_config_default(&cfg);
    cfg.email.on = true;
    snprintf(cfg.email.url, sizeof cfg.email.url, "smtp://127.0.0.1:%d", f.port);
    cfg.email.starttls = 0;
    snprintf(cfg.email.from, sizeof cfg.email.from, "Копилка <noreply@loyalty.example>");
    snprintf(cfg.email.reply_to, sizeof cfg.email.reply_to, "help@loyalty.example");
    const char *subject = "Начислено 1 560 баллов — баланс 4 426, из них 2 000 сгорят 1 марта";
    kp_message m = message(1, KP_CHANNEL_EMAIL, "42/email");
    kp_outgoing o = {.m = &m,
                     .subject = strdup(subject),
                     .text = strdup("Здравствуйте, Анна!\n+1 560 баллов.\n"),
                     .html = strdup("<p>Здравствуйте, <b>Анна</b>!</p>")};
    snprintf(o.to, sizeof o.to, "anna@example.org");
    snprintf(o.unsubscribe_url, sizeof o.unsubscribe_url,
             "https://loyalty.example/v1/unsubscribe?t=abc");
    kp_sender *s = kp_sender_new(&cfg, KP_CHANNEL_EMAIL);
    kp_send_result r;
    kp_sender_send(s, &o, NULL, NULL, 1795000000, &r);
    if (!r.ok) fail_msg("not sent: %s", r.error);
    assert_string_equal(r.provider_id, "<42/email@loyalty.example>");

    /* The same handle again (connection reuse), then refusals. */
    m = message(2, KP_CHANNEL_EMAIL, "43/email");
    kp_sender_send(s, &o, NULL, NULL, 1795000001, &r);
    assert_true(r.ok);
    snprintf(o.to, sizeof o.to, "reject@example.org");
    kp_sender_send(s, &o, NULL, NULL, 1795000002, &r);
    assert_false(r.ok);
    assert_true(r.permanent);
    assert_non_null(strstr(r.error, "550"));
    snprintf(o.to, sizeof o.to, "defer@example.org");
    kp_sender_send(s, &o, NULL, NULL, 1795000003, &r);
    assert_false(r.ok);
    assert_false(r.permanent);
    snprintf(o.to, sizeof o.to, "anna@example.org\r\nBcc: x@y");
    kp_sender_send(s, &o, NULL, NULL, 1795000003, &r);
    assert_false(r.ok);
    assert_true(r.permanent);

    json_t *log = fake_log(&f, 2);
    assert_int_equal(json_array_size(log), 2);
    json_t *mail = json_array_get(log, 0);
    assert_string_equal(jstr(mail, "subject"), subject);
    assert_non_null(strstr(jstr(mail, "raw_subject"), "=?UTF-8?B?"));
    assert_string_equal(jstr(mail, "text"), "Здравствуйте, Анна!\n+1 560 баллов.\n");
    assert_string_equal(jstr(mail, "html"), "<p>Здравствуйте, <b>Анна</b>!</p>");
    assert_string_equal(jstr(mail, "mail_from"), "noreply@loyalty.example");
    assert_string_equal(json_string_value(json_array_get(json_object_get(mail, "rcpt_tos"), 0)),
                        "anna@example.org");
    assert_string_equal(jstr(mail, "headers.message-id"), "<42/email@loyalty.example>");
    assert_string_equal(jstr(mail, "headers.from"), "Копилка <noreply@loyalty.example>");
    assert_string_equal(jstr(mail, "headers.reply-to"), "help@loyalty.example");
    assert_string_equal(jstr(mail, "headers.date"), "Wed, 18 Nov 2026 11:06:40 +0000");
    assert_string_equal(jstr(mail, "headers.list-unsubscribe"),
                        "<https://loyalty.example/v1/unsubscribe?t=abc>");
    assert_string_equal(jstr(mail, "headers.list-unsubscribe-post"), "List-Unsubscribe=One-Click");
    char *types = json_dumps(json_object_get(mail, "types"), JSON_COMPACT);
    assert_non_null(strstr(types, "\"multipart/alternative\",\"text/plain\",\"text/html\""));
    free(types);
    assert_string_equal(jstr(json_array_get(log, 1), "headers.message-id"),
                        "<43/email@loyalty.example>");
    json_decref(log);
    kp_outgoing_release(&o);
    kp_sender_free(s);
    fake_stop(&f);
}

/* ------------------------------------------------------------------- SMS */

static kp_sender *sms_sender(const fake *f, const char *extra_json, kp_notify_config *cfg)
{
    char text[2048];
    snprintf(
        text, sizeof text,
        "{\"sms\":{\"url\":\"http://127.0.0.1:%d/send\",\"sender\":\"Kopilka\","
        "\"timeout_seconds\":1,\"headers\":[\"Authorization: Bearer {{env:KP_TEST_TOKEN}}\"]%s}}",
        f->port, extra_json);
    kp_error e;
    setenv("KP_TEST_TOKEN", "tok-1", 1);
    if (load_text(text, cfg, &e)) fail_msg("%s: %s", e.field, e.message);
    kp_sender *s = kp_sender_new(cfg, KP_CHANNEL_SMS);
    assert_non_null(s);
    return s;
}

static void test_sms_generic_json_request_and_success_rule(void **state)
{
    (void)state;
    fake f;
    fake_start(&f, "sms", NULL);
    kp_notify_config cfg;
    kp_sender *s = sms_sender(&f,
                              ",\"success\":{\"field\":\"status\",\"value\":\"OK\"},"
                              "\"provider_id_field\":\"id\"",
                              &cfg);
    kp_message m = message(1, KP_CHANNEL_SMS, "42/sms");
    kp_outgoing o = {.m = &m, .text = strdup("+1 560 баллов, \"баланс\" 4 426\\n")};
    snprintf(o.to, sizeof o.to, "+79255070602");
    kp_send_result r;
    kp_sender_send(s, &o, NULL, NULL, 1795000000, &r);
    if (!r.ok) fail_msg("not sent: %s", r.error);
    assert_string_equal(r.provider_id, "gw-1");
    kp_sender_free(s);

    /* The answer's status is "OK", the rule wants "DONE": not sent. */
    s = sms_sender(&f, ",\"success\":{\"field\":\"status\",\"value\":\"DONE\"}", &cfg);
    kp_sender_send(s, &o, NULL, NULL, 1795000000, &r);
    assert_false(r.ok);
    assert_false(r.permanent);
    assert_non_null(strstr(r.error, "status"));
    kp_sender_free(s);

    json_t *log = fake_log(&f, 2);
    assert_int_equal(json_array_size(log), 2);
    json_t *req = json_array_get(log, 0);
    assert_string_equal(jstr(req, "fields.to"), "+79255070602");
    assert_string_equal(jstr(req, "fields.text"), o.text);
    assert_string_equal(jstr(req, "fields.id"), "42/sms");
    assert_string_equal(jstr(req, "fields.sender"), "Kopilka");
    assert_string_equal(jstr(req, "headers.authorization"), "Bearer tok-1");
    assert_string_equal(jstr(req, "headers.content-type"), "application/json");
    json_decref(log);
    kp_outgoing_release(&o);
    fake_stop(&f);
}

static void test_sms_form_body_of_a_profile(void **state)
{
    (void)state;
    fake f;
    fake_start(&f, "sms", NULL);
    kp_notify_config cfg;
    /* SMSC's form, sent to the fake: login/psw/phones/mes percent-encoded,
     * success when the answer has an "id". */
    kp_sender *s =
        sms_sender(&f, ",\"profile\":\"smsc\",\"username\":\"shop\",\"password\":\"p&w=1\"", &cfg);
    kp_message m = message(1, KP_CHANNEL_SMS, "42/sms");
    kp_outgoing o = {.m = &m, .text = strdup("Код 1234 & ещё+")};
    snprintf(o.to, sizeof o.to, "+79255070602");
    kp_send_result r;
    kp_sender_send(s, &o, NULL, NULL, 1795000000, &r);
    if (!r.ok) fail_msg("not sent: %s", r.error);
    assert_string_equal(r.provider_id, "gw-1");
    json_t *log = fake_log(&f, 1);
    json_t *req = json_array_get(log, 0);
    assert_string_equal(jstr(req, "fields.login"), "shop");
    assert_string_equal(jstr(req, "fields.psw"), "p&w=1");
    assert_string_equal(jstr(req, "fields.phones"), "+79255070602");
    assert_string_equal(jstr(req, "fields.mes"), "Код 1234 & ещё+");
    assert_string_equal(jstr(req, "fields.fmt"), "3");
    json_decref(log);
    kp_outgoing_release(&o);
    kp_sender_free(s);
    fake_stop(&f);
}

static void test_sms_failure_classes(void **state)
{
    (void)state;
    fake f;
    fake_start(&f, "sms", NULL);
    kp_notify_config cfg;
    kp_sender *s = sms_sender(&f, "", &cfg);
    kp_message m = message(1, KP_CHANNEL_SMS, "42/sms");
    kp_outgoing o = {.m = &m, .text = strdup("hi")};
    snprintf(o.to, sizeof o.to, "+79255070602");
    kp_send_result r;

    fake_mode(&f, "{\"mode\":\"ratelimit\",\"count\":1,\"retry_after\":7}");
    kp_sender_send(s, &o, NULL, NULL, 1795000000, &r);
    assert_false(r.ok);
    assert_false(r.permanent);
    assert_int_equal(r.retry_after, 7);
    kp_sender_send(s, &o, NULL, NULL, 1795000000, &r); /* the limit has passed */
    assert_true(r.ok);
    assert_int_equal(r.retry_after, 0);

    fake_mode(&f, "{\"mode\":\"fail\"}");
    kp_sender_send(s, &o, NULL, NULL, 1795000000, &r);
    assert_false(r.ok);
    assert_false(r.permanent);
    assert_non_null(strstr(r.error, "500"));

    fake_mode(&f, "{\"mode\":\"permanent\"}");
    kp_sender_send(s, &o, NULL, NULL, 1795000000, &r);
    assert_false(r.ok);
    assert_true(r.permanent);
    assert_non_null(strstr(r.error, "400"));

    /* The gateway answers after 3 s; the timeout is 1 s. */
    fake_mode(&f, "{\"mode\":\"timeout\",\"delay\":3}");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    kp_sender_send(s, &o, NULL, NULL, 1795000000, &r);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double elapsed = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_false(r.ok);
    assert_false(r.permanent);
    assert_true(elapsed < 2.0);
    assert_non_null(strstr(r.error, "imeout"));

    /* Nobody listening: temporary. */
    fake_stop(&f);
    kp_sender_send(s, &o, NULL, NULL, 1795000000, &r);
    assert_false(r.ok);
    assert_false(r.permanent);
    kp_outgoing_release(&o);
    kp_sender_free(s);
}

int main(int argc, char **argv)
{
    if (argc > 2) {
        python = argv[1];
        fakes_py = argv[2];
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_errors_name_the_field),
        cmocka_unit_test(test_config_refuses_line_breaks_in_header_values),
        cmocka_unit_test(test_config_never_prints_a_secret),
        cmocka_unit_test(test_config_profiles_and_defaults),
        cmocka_unit_test(test_webhook_sign_known_answer),
        cmocka_unit_test(test_webhook_signature_verified_by_the_receiver),
        cmocka_unit_test(test_email_arrives_with_subject_parts_and_headers),
        cmocka_unit_test(test_sms_generic_json_request_and_success_rule),
        cmocka_unit_test(test_sms_form_body_of_a_profile),
        cmocka_unit_test(test_sms_failure_classes),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
