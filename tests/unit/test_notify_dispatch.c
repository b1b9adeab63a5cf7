/*
 * test_notify_dispatch.c: kp_notify_plan on a real store (fixture.h): a
 * customer with a phone and an e-mail gets both, preferences narrow it,
 * marketing needs consent, quiet hours move next_at (not for urgent
 * kinds), webhook endpoints get their subscribed kinds without personal
 * data, an erased customer and a missing key file leave only webhooks,
 * login codes go where asked; then kp_notify_open gives back what was
 * planned, and unsubscribe tokens check.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fixture.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopilka/clock.h>

#include "crypto/pii.h"
#include "notify/notify.h"
#include "service/people.h"

static const char program_json[] =
    "{\"name\":\"Kopilka\",\"utc_offset\":\"+03:00\",\"rules\":[],"
    "\"customers\":{\"consent_version\":\"v1\"},"
    "\"notifications\":{\"language\":\"ru\",\"quiet_hours\":{\"from\":\"21:00\",\"to\":\"09:00\"}}}";

/* 2027-03-01T09:00:00Z = 12:00 in Moscow. */
#define NOON 1803891600
#define NIGHT (NOON + 11 * 3600) /* 23:00 Moscow */

typedef struct fx {
    char path[FIXTURE_LOCATION_MAX];
    kp_store *st;
    kp_pii *pii;
    kp_program program;
    kp_scratch *sc;
    kp_buf out;
    char cards[3][KP_STR_MAX];
    int64_t anna, petr; /* customers: anna has phone and e-mail; petr a phone */
    kp_notify_config cfg;
    kp_notify_env env;
    kp_message msgs[16];
    size_t n;
} fx;

static void keep_numbers(void *ctx, const char *number)
{
    fx *f = ctx;
    for (int i = 0; i < 3; i++)
        if (f->cards[i][0] == '\0') {
            snprintf(f->cards[i], KP_STR_MAX, "%s", number);
            return;
        }
}

static int64_t register_card(fx *f, int card, const char *extra)
{
    char body[1024];
    snprintf(body, sizeof body,
             "{\"card\":\"%s\",%s,\"consent\":{\"given\":true,\"text_version\":\"v1\"}}",
             f->cards[card], extra);
    kp_office o;
    kp_actor a = {.kind = KP_ACTOR_STAFF, .role = KP_ROLE_ADMIN};
    snprintf(a.name, sizeof a.name, "staff:test");
    kp_office_init(&o, f->st, f->pii, &f->program, NOON - 86400, &a, f->sc);
    kp_error e = {0};
    kp_field_errors fe = {0};
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(kp_customer_register(&o, body, strlen(body), &f->out, &fe, &e), KP_OK);
    assert_int_equal(f->st->ops->commit(f->st), KP_OK);
    kp_card_info info;
    assert_int_equal(f->st->ops->people->card_info_get(f->st, f->cards[card], &info), KP_OK);
    return info.customer_id;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    fixture_location(f->path, "notify_dispatch");
    kp_error e = {0};
    assert_int_equal(kp_store_open(f->path, true, &f->st, &e), KP_OK);
    uint8_t master[32];
    for (int i = 0; i < 32; i++) master[i] = (uint8_t)(i * 5 + 3);
    assert_int_equal(kp_pii_from_bytes(master, &f->pii), KP_OK);
    int64_t v;
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    if (kp_service_program_load(f->st, program_json, strlen(program_json), &v, &e) != KP_OK)
        fail_msg("program: %s: %s", e.field, e.message);
    assert_int_equal(kp_service_cards_issue(f->st, 3, NOON - 90000, keep_numbers, f, &e), KP_OK);
    assert_int_equal(f->st->ops->commit(f->st), KP_OK);
    assert_int_equal(kp_service_program_get(f->st, 0, &f->program, &e), KP_OK);
    f->sc = kp_scratch_new();
    kp_buf_init(&f->out, 1 << 20);
    f->anna = register_card(f, 0,
                            "\"full_name\":\"Иванова Анна Сергеевна\",\"phone\":\"+79161234567\","
                            "\"email\":\"anna@example.com\"");
    f->petr = register_card(f, 1, "\"full_name\":\"Petr\",\"phone\":\"+79167654321\"");
    memset(&f->cfg, 0, sizeof f->cfg);
    f->cfg.email.on = true;
    f->cfg.sms.on = true;
    f->cfg.webhook.on = true;
    snprintf(f->cfg.public_url, sizeof f->cfg.public_url, "https://loyalty.example/");
    f->env.pii = f->pii;
    f->env.program = &f->program;
    f->env.policy = kp_notify_policy_of(f->st, &f->program);
    f->env.config = &f->cfg;
    *state = f;
    return 0;
}

static void release(fx *f)
{
    for (size_t i = 0; i < f->n; i++) kp_message_release(&f->msgs[i]);
    f->n = 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    release(f);
    kp_store_close(f->st);
    kp_pii_free(f->pii);
    kp_scratch_free(f->sc);
    kp_buf_release(&f->out);
    fixture_remove(f->path);
    free(f);
    return 0;
}

/* Writes an event (payload sealed when `sealed`) and plans it at `now`. */
static kp_err plan_event(fx *f, kp_notify_kind kind, int card, const char *payload, bool sealed,
                         kp_time now)
{
    static int seq;
    release(f);
    kp_notify_event ev = {.kind = kind, .at = now, .op_id = 0};
    snprintf(ev.key, sizeof ev.key, "test:%d", ++seq);
    if (card >= 0) snprintf(ev.card, sizeof ev.card, "%s", f->cards[card]);
    kp_card c;
    if (card >= 0 && f->st->ops->card_find(f->st, ev.card, &c) == KP_OK) ev.account_id = c.account_id;
    uint8_t sealed_buf[2048];
    if (sealed) {
        assert_int_equal(kp_pii_seal(f->pii, KP_PII_MESSAGE, payload, strlen(payload), sealed_buf,
                                     sizeof sealed_buf, &ev.payload_len),
                         KP_OK);
        ev.payload = sealed_buf;
        ev.sealed = true;
    } else {
        ev.payload = (uint8_t *)payload;
        ev.payload_len = strlen(payload);
    }
    assert_int_equal(f->st->ops->notify->event_insert(f->st, &ev), KP_OK);
    assert_true(ev.id > 0);
    kp_error e = {0};
    kp_err err = kp_notify_plan(f->st, &f->env, &ev, now, f->msgs, 16, &f->n, &e);
    if (err) print_message("plan: %s: %s\n", e.field, e.message);
    return err;
}

static const kp_message *find(fx *f, kp_channel ch, int64_t endpoint)
{
    for (size_t i = 0; i < f->n; i++)
        if (f->msgs[i].channel == ch && f->msgs[i].endpoint_id == endpoint) return &f->msgs[i];
    return NULL;
}

static void open_msg(fx *f, const kp_message *m, kp_outgoing *o)
{
    kp_error e = {0};
    assert_int_equal(kp_notify_open(&f->env, m, o, &e), KP_OK);
}

static void free_out(kp_outgoing *o)
{
    free(o->subject);
    free(o->text);
    free(o->html);
    free(o->body);
    memset(o, 0, sizeof *o);
}

static const char EARNED[] =
    "{\"earned\":1560,\"points\":1560,\"balance\":4426,\"expiry_points\":2000,"
    "\"expiry_at\":\"2027-06-01T00:00:00Z\",\"store\":\"Main <1>\"}";

static void test_both_channels_rendered_and_sealed(void **state)
{
    fx *f = *state;
    assert_int_equal(plan_event(f, KP_NOTIFY_EARNED, 0, EARNED, false, NOON), KP_OK);
    assert_int_equal(f->n, 2);
    const kp_message *em = find(f, KP_CHANNEL_EMAIL, 0), *sms = find(f, KP_CHANNEL_SMS, 0);
    assert_non_null(em);
    assert_non_null(sms);
    char key[64];
    snprintf(key, sizeof key, "%lld/email", (long long)em->event_id);
    assert_string_equal(em->key, key);
    assert_int_equal(em->customer_id, f->anna);
    assert_int_equal(em->next_at, NOON);
    assert_int_equal(em->state, KP_MSG_PENDING);
    /* Sealed: no plaintext in the blob. */
    assert_null(memmem(em->sealed, em->sealed_len, "anna@", 5));
    kp_outgoing o;
    open_msg(f, em, &o);
    assert_string_equal(o.to, "anna@example.com");
    assert_non_null(strstr(o.subject, "1\xC2\xA0" "560"));
    assert_non_null(strstr(o.text, "Анна, здравствуйте!"));
    assert_non_null(strstr(o.text, "Main <1>"));
    assert_non_null(strstr(o.html, "Main &lt;1&gt;"));
    assert_non_null(strstr(o.text, "1 июня 2027"));
    assert_string_equal(o.unsubscribe_url, ""); /* transactional */
    free_out(&o);
    open_msg(f, sms, &o);
    assert_string_equal(o.to, "+79161234567");
    assert_string_equal(o.text, "Баллы: +1\xC2\xA0" "560, баланс 4\xC2\xA0" "426. 1 июня 2027 "
                                "сгорит 2\xC2\xA0" "000.");
    free_out(&o);
    /* The one with a phone only gets an SMS. */
    assert_int_equal(plan_event(f, KP_NOTIFY_EARNED, 1, EARNED, false, NOON), KP_OK);
    assert_int_equal(f->n, 1);
    assert_non_null(find(f, KP_CHANNEL_SMS, 0));
}

static void test_quiet_hours_and_urgency(void **state)
{
    fx *f = *state;
    assert_int_equal(plan_event(f, KP_NOTIFY_EARNED, 0, EARNED, false, NIGHT), KP_OK);
    assert_int_equal(f->n, 2);
    /* 23:00 Moscow: next 09:00 Moscow = 06:00Z the next day. */
    assert_int_equal(f->msgs[0].next_at, NOON - 3 * 3600 + 86400);
    assert_int_equal(f->msgs[1].next_at, NOON - 3 * 3600 + 86400);
    /* Burnt points are urgent: now. */
    assert_int_equal(plan_event(f, KP_NOTIFY_BURNT, 0, "{\"burnt\":100,\"balance\":4326}", false,
                                NIGHT),
                     KP_OK);
    assert_int_equal(f->n, 2);
    assert_int_equal(f->msgs[0].next_at, NIGHT);
    /* The customer's own time zone: UTC+10 (08:00 there at 22:00Z... 23:00
     * Moscow = 20:00Z = 06:00 in Vladivostok): quiet until 09:00 = 23:00Z. */
    kp_notify_prefs p = {.customer_id = f->anna, .has_utc_offset = true, .utc_offset_minutes = 600,
                         .transactional = 1u << KP_CHANNEL_SMS};
    assert_int_equal(f->st->ops->notify->prefs_put(f->st, &p), KP_OK);
    assert_int_equal(plan_event(f, KP_NOTIFY_EARNED, 0, EARNED, false, NIGHT), KP_OK);
    assert_int_equal(f->n, 1);
    assert_int_equal(f->msgs[0].next_at, NIGHT + 3 * 3600);
}

static void test_preferences_and_configuration_narrow_channels(void **state)
{
    fx *f = *state;
    kp_notify_prefs p = {.customer_id = f->anna, .transactional = 1u << KP_CHANNEL_EMAIL};
    snprintf(p.language, sizeof p.language, "en");
    assert_int_equal(f->st->ops->notify->prefs_put(f->st, &p), KP_OK);
    assert_int_equal(plan_event(f, KP_NOTIFY_EARNED, 0, EARNED, false, NOON), KP_OK);
    assert_int_equal(f->n, 1);
    kp_outgoing o;
    open_msg(f, &f->msgs[0], &o);
    assert_string_equal(o.subject, "You earned 1,560 points");
    assert_non_null(strstr(o.text, "Hello Анна,"));
    free_out(&o);
    /* E-mail not configured: nothing. */
    f->cfg.email.on = false;
    assert_int_equal(plan_event(f, KP_NOTIFY_EARNED, 0, EARNED, false, NOON), KP_OK);
    assert_int_equal(f->n, 0);
    f->cfg.email.on = true;
    /* Everything off. */
    p.transactional = 0;
    assert_int_equal(f->st->ops->notify->prefs_put(f->st, &p), KP_OK);
    assert_int_equal(plan_event(f, KP_NOTIFY_EARNED, 0, EARNED, false, NOON), KP_OK);
    assert_int_equal(f->n, 0);
    /* No configuration at all: no customer messages, webhooks still go. */
    f->env.config = NULL;
    assert_int_equal(plan_event(f, KP_NOTIFY_EARNED, 1, EARNED, false, NOON), KP_OK);
    assert_int_equal(f->n, 0);
    f->env.config = &f->cfg;
}

static void test_store_template_overrides_builtin(void **state)
{
    fx *f = *state;
    kp_template_row t = {.kind = KP_NOTIFY_EARNED, .channel = KP_CHANNEL_SMS};
    snprintf(t.language, sizeof t.language, "ru");
    t.subject = "";
    t.text = "Kopilka: +{{earned}} ({{card_last4}})";
    t.html = "";
    snprintf(t.actor, sizeof t.actor, "staff:test");
    assert_int_equal(f->st->ops->notify->template_put(f->st, &t), KP_OK);
    assert_int_equal(plan_event(f, KP_NOTIFY_EARNED, 1, EARNED, false, NOON), KP_OK);
    assert_int_equal(f->n, 1);
    kp_outgoing o;
    open_msg(f, &f->msgs[0], &o);
    char want[128];
    snprintf(want, sizeof want, "Kopilka: +1\xC2\xA0" "560 (%s)",
             f->cards[1] + strlen(f->cards[1]) - 4);
    assert_string_equal(o.text, want);
    free_out(&o);
}

static const char CAMPAIGN[] =
    "{\"subject\":{\"ru\":\"Скидки, {{first_name}}!\",\"en\":\"Sale, {{first_name}}!\"},"
    "\"text\":{\"ru\":\"Только до пятницы.\",\"en\":\"Until Friday.\"}}";

static void test_marketing_needs_consent(void **state)
{
    fx *f = *state;
    assert_int_equal(plan_event(f, KP_NOTIFY_CAMPAIGN, 0, CAMPAIGN, true, NOON), KP_OK);
    assert_int_equal(f->n, 0); /* no preferences: no consent */
    kp_notify_prefs p = {.customer_id = f->anna,
                         .transactional = 1u << KP_CHANNEL_SMS,
                         .marketing = 1u << KP_CHANNEL_EMAIL};
    assert_int_equal(f->st->ops->notify->prefs_put(f->st, &p), KP_OK);
    assert_int_equal(plan_event(f, KP_NOTIFY_CAMPAIGN, 0, CAMPAIGN, true, NOON), KP_OK);
    assert_int_equal(f->n, 0); /* channels chosen, consent not given */
    p.marketing_consent_at = NOON - 10;
    snprintf(p.marketing_consent_version, sizeof p.marketing_consent_version, "m1");
    assert_int_equal(f->st->ops->notify->prefs_put(f->st, &p), KP_OK);
    assert_int_equal(plan_event(f, KP_NOTIFY_CAMPAIGN, 0, CAMPAIGN, true, NOON), KP_OK);
    assert_int_equal(f->n, 1);
    assert_int_equal(f->msgs[0].channel, KP_CHANNEL_EMAIL);
    kp_outgoing o;
    open_msg(f, &f->msgs[0], &o);
    assert_string_equal(o.subject, "Скидки, Анна!");
    assert_non_null(strstr(o.text, "Только до пятницы."));
    assert_non_null(strstr(o.text, o.unsubscribe_url));
    const char *prefix = "https://loyalty.example/v1/unsubscribe/";
    assert_memory_equal(o.unsubscribe_url, prefix, strlen(prefix));
    int64_t who = 0;
    kp_channel ch = 0;
    const char *token = o.unsubscribe_url + strlen(prefix);
    assert_true(kp_unsubscribe_check(&f->env, token, &who, &ch));
    assert_int_equal(who, f->anna);
    assert_int_equal(ch, KP_CHANNEL_EMAIL);
    /* A changed token does not check. */
    char bad[sizeof o.unsubscribe_url];
    snprintf(bad, sizeof bad, "%s", token);
    bad[3] = bad[3] == 'A' ? 'B' : 'A';
    assert_false(kp_unsubscribe_check(&f->env, bad, &who, &ch));
    assert_false(kp_unsubscribe_check(&f->env, "", &who, &ch));
    free_out(&o);
    /* Not a word of the campaign in a webhook. */
    kp_webhook_endpoint ep = {.active = true};
    snprintf(ep.url, sizeof ep.url, "https://crm.example/hook");
    ep.secret.len = 1;
    assert_int_equal(f->st->ops->notify->endpoint_insert(f->st, &ep), KP_OK);
    assert_int_equal(plan_event(f, KP_NOTIFY_CAMPAIGN, 0, CAMPAIGN, true, NOON), KP_OK);
    const kp_message *wh = find(f, KP_CHANNEL_WEBHOOK, ep.id);
    assert_non_null(wh);
    open_msg(f, wh, &o);
    assert_null(strstr(o.body, "Friday"));
    assert_null(strstr(o.body, "пятницы"));
    free_out(&o);
}

static int64_t add_endpoint(fx *f, uint32_t kinds, bool active)
{
    kp_webhook_endpoint ep = {.kinds = kinds, .active = active};
    snprintf(ep.url, sizeof ep.url, "https://crm.example/%u", kinds);
    ep.secret.len = 4;
    memcpy(ep.secret.data, "abcd", 4);
    assert_int_equal(f->st->ops->notify->endpoint_insert(f->st, &ep), KP_OK);
    return ep.id;
}

static void test_webhooks_subscribed_only_without_personal_data(void **state)
{
    fx *f = *state;
    int64_t earned_only = add_endpoint(f, 1u << KP_NOTIFY_EARNED, true);
    int64_t all = add_endpoint(f, 0, true);
    int64_t inactive = add_endpoint(f, 0, false);
    int64_t burnt_only = add_endpoint(f, 1u << KP_NOTIFY_BURNT, true);
    assert_int_equal(plan_event(f, KP_NOTIFY_EARNED, 0, EARNED, false, NOON), KP_OK);
    assert_int_equal(f->n, 4); /* email, sms, two webhooks */
    assert_non_null(find(f, KP_CHANNEL_WEBHOOK, earned_only));
    assert_non_null(find(f, KP_CHANNEL_WEBHOOK, all));
    assert_null(find(f, KP_CHANNEL_WEBHOOK, inactive));
    assert_null(find(f, KP_CHANNEL_WEBHOOK, burnt_only));
    const kp_message *wh = find(f, KP_CHANNEL_WEBHOOK, all);
    char key[64];
    snprintf(key, sizeof key, "%lld/webhook/%lld", (long long)wh->event_id, (long long)all);
    assert_string_equal(wh->key, key);
    assert_int_equal(wh->customer_id, 0);
    assert_int_equal(wh->next_at, NOON);
    kp_outgoing o;
    open_msg(f, wh, &o);
    json_t *body = json_loads(o.body, 0, NULL);
    assert_non_null(body);
    assert_string_equal(json_string_value(json_object_get(body, "type")), "earned");
    assert_string_equal(json_string_value(json_object_get(body, "timestamp")),
                        "2027-03-01T09:00:00Z");
    json_t *data = json_object_get(body, "data");
    assert_int_equal(json_integer_value(json_object_get(data, "event_id")), wh->event_id);
    assert_int_equal(json_integer_value(json_object_get(data, "customer_id")), f->anna);
    assert_string_equal(json_string_value(json_object_get(data, "card")), f->cards[0]);
    assert_int_equal(json_integer_value(json_object_get(data, "earned")), 1560);
    json_decref(body);
    assert_null(strstr(o.body, "anna@"));
    assert_null(strstr(o.body, "7916"));
    assert_null(strstr(o.body, "Анна"));
    assert_string_equal(o.to, "");
    free_out(&o);
    /* Webhooks off in the configuration. */
    f->cfg.webhook.on = false;
    assert_int_equal(plan_event(f, KP_NOTIFY_EARNED, 0, EARNED, false, NOON), KP_OK);
    assert_int_equal(f->n, 2);
    f->cfg.webhook.on = true;

    /* Without the key file: webhooks only, and they open without it. */
    f->env.pii = NULL;
    assert_int_equal(plan_event(f, KP_NOTIFY_EARNED, 0, EARNED, false, NOON), KP_OK);
    assert_int_equal(f->n, 2);
    assert_null(find(f, KP_CHANNEL_EMAIL, 0));
    open_msg(f, find(f, KP_CHANNEL_WEBHOOK, all), &o);
    assert_non_null(strstr(o.body, "\"earned\""));
    free_out(&o);
    f->env.pii = f->pii;

    /* An erased customer: webhooks only. */
    kp_office off;
    kp_actor a = {.kind = KP_ACTOR_STAFF, .role = KP_ROLE_ADMIN};
    snprintf(a.name, sizeof a.name, "staff:test");
    kp_office_init(&off, f->st, f->pii, &f->program, NOON, &a, f->sc);
    kp_error e = {0};
    const char *why = "{\"reason\":\"asked\"}";
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(kp_customer_erase(&off, f->anna, why, strlen(why), &f->out, &e), KP_OK);
    assert_int_equal(f->st->ops->commit(f->st), KP_OK);
    assert_int_equal(plan_event(f, KP_NOTIFY_EARNED, 0, EARNED, false, NOON), KP_OK);
    assert_int_equal(f->n, 2);
    assert_null(find(f, KP_CHANNEL_EMAIL, 0));
    assert_null(find(f, KP_CHANNEL_SMS, 0));
}

static void test_login_code_goes_where_asked_at_once(void **state)
{
    fx *f = *state;
    kp_notify_prefs p = {.customer_id = f->anna}; /* every channel off */
    assert_int_equal(f->st->ops->notify->prefs_put(f->st, &p), KP_OK);
    assert_int_equal(plan_event(f, KP_NOTIFY_LOGIN_CODE, 0,
                                "{\"code\":\"482913\",\"channel\":\"sms\"}", true, NIGHT),
                     KP_OK);
    assert_int_equal(f->n, 1);
    assert_int_equal(f->msgs[0].channel, KP_CHANNEL_SMS);
    assert_int_equal(f->msgs[0].next_at, NIGHT);
    kp_outgoing o;
    open_msg(f, &f->msgs[0], &o);
    assert_string_equal(o.to, "+79161234567");
    assert_non_null(strstr(o.text, "482913"));
    free_out(&o);
    /* The sealed payload holds the code: the blob does not show it. */
    assert_null(memmem(f->msgs[0].sealed, f->msgs[0].sealed_len, "482913", 6));
    /* A webhook never carries the code. */
    int64_t all = add_endpoint(f, 0, true);
    assert_int_equal(plan_event(f, KP_NOTIFY_LOGIN_CODE, 0,
                                "{\"code\":\"111222\",\"channel\":\"email\"}", true, NIGHT),
                     KP_OK);
    assert_int_equal(f->n, 2);
    open_msg(f, find(f, KP_CHANNEL_EMAIL, 0), &o);
    assert_string_equal(o.to, "anna@example.com");
    assert_non_null(strstr(o.subject, "111222"));
    free_out(&o);
    open_msg(f, find(f, KP_CHANNEL_WEBHOOK, all), &o);
    assert_null(strstr(o.body, "111222"));
    free_out(&o);
}

static void test_event_by_account_reaches_its_customer(void **state)
{
    fx *f = *state;
    /* An event with only the account: its first customer. */
    release(f);
    kp_card c;
    assert_int_equal(f->st->ops->card_find(f->st, f->cards[1], &c), KP_OK);
    kp_notify_event ev = {.kind = KP_NOTIFY_EXPIRING, .account_id = c.account_id, .at = NOON};
    snprintf(ev.key, sizeof ev.key, "expiring:%lld", (long long)c.account_id);
    const char *pl = "{\"expiry_points\":300,\"expiry_at\":\"2027-03-08T00:00:00Z\",\"balance\":5}";
    ev.payload = (uint8_t *)pl;
    ev.payload_len = strlen(pl);
    assert_int_equal(f->st->ops->notify->event_insert(f->st, &ev), KP_OK);
    kp_error e = {0};
    assert_int_equal(kp_notify_plan(f->st, &f->env, &ev, NOON, f->msgs, 16, &f->n, &e), KP_OK);
    assert_int_equal(f->n, 1);
    assert_int_equal(f->msgs[0].customer_id, f->petr);
    kp_outgoing o;
    open_msg(f, &f->msgs[0], &o);
    assert_non_null(strstr(o.text, "8 марта 2027"));
    free_out(&o);
    /* A card nobody holds, no account: nobody (and no webhooks here). */
    assert_int_equal(plan_event(f, KP_NOTIFY_EARNED, 2, EARNED, false, NOON), KP_OK);
    assert_int_equal(f->n, 0);
    /* Too small an array is an error, not a cut plan. */
    ev.id = 0;
    snprintf(ev.key, sizeof ev.key, "expiring:again");
    assert_int_equal(f->st->ops->notify->event_insert(f->st, &ev), KP_OK);
    add_endpoint(f, 0, true);
    assert_int_equal(kp_notify_plan(f->st, &f->env, &ev, NOON, f->msgs, 1, &f->n, &e),
                     KP_ERR_LIMIT);
    assert_int_equal(f->n, 0);
}

static void test_program_load_refuses_a_bad_section(void **state)
{
    fx *f = *state;
    static const char bad[] = "{\"name\":\"x\",\"rules\":[],"
                              "\"notifications\":{\"quiet_hours\":{\"from\":\"25:00\","
                              "\"to\":\"09:00\"}}}";
    kp_error e = {0};
    int64_t v = 0;
    assert_int_equal(kp_service_program_load(f->st, bad, strlen(bad), &v, &e), KP_ERR_INVALID);
    assert_string_equal(e.field, "notifications.quiet_hours.from");
    assert_non_null(strstr(e.message, "HH:MM"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_both_channels_rendered_and_sealed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quiet_hours_and_urgency, setup, teardown),
        cmocka_unit_test_setup_teardown(test_preferences_and_configuration_narrow_channels, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_store_template_overrides_builtin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_marketing_needs_consent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_webhooks_subscribed_only_without_personal_data, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_login_code_goes_where_asked_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_by_account_reaches_its_customer, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_program_load_refuses_a_bad_section, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
