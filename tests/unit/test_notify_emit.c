/*
 * test_notify_emit.c: every change that notifies writes exactly one event
 * in its own transaction (src/notify/emit.c and the service layer's calls),
 * over a real store (SQLite, or PostgreSQL with KOPILKA_TEST_STORE=pg, see
 * fixture.h): purchases (earned, burnt, neither), returns, expiry, grants
 * (birthday, registration), adjustments, transfers, registration's welcome,
 * tier changes, card block and replace, the daily expiry reminder; with
 * the right kind, key and figures (the payload's JSON); nothing for a
 * purchase rolled back to its savepoint, nothing more for an idempotent
 * retry, and the erasure of a customer's messages.
 */
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

#include "notify/notify.h"
#include "service/people.h"
#include "service/service_rules.h"

static const char program_json[] =
    "{\"name\":\"emit\",\"currency\":\"RUB\",\"minor_per_point\":100,"
    "\"point_kinds\":[{\"name\":\"regular\",\"ttl_days\":30},"
    "{\"name\":\"premium\",\"ttl_months\":3}],"
    "\"tiers\":{\"window_days\":365,\"review_months\":1,\"downgrade\":\"one_level\","
    "\"levels\":[{\"name\":\"Silver\",\"min_spend\":0},{\"name\":\"Gold\",\"min_spend\":"
    "100000000}]},"
    "\"rules\":[{\"id\":\"base\",\"kind\":\"earn_percent\",\"percent\":10},"
    "{\"id\":\"bd\",\"kind\":\"grant\",\"on\":\"birthday\",\"points\":200,"
    "\"point_kind\":\"premium\"},"
    "{\"id\":\"hello\",\"kind\":\"grant\",\"on\":\"registration\",\"points\":50}],"
    "\"customers\":{\"unregistered\":{\"earn\":true,\"burn\":true},"
    "\"transfers\":{\"max_points\":5000},\"consent_version\":\"v1\"},"
    "\"notifications\":{\"remind_days\":7}}";

#define NOW 1780000000 /* 2026-05-28T20:26:40Z */

typedef struct fx {
    char path[FIXTURE_LOCATION_MAX];
    kp_store *st;
    kp_pii *pii;
    kp_program program;
    kp_scratch *sc;
    kp_buf out;
    char cards[4][KP_STR_MAX];
    int64_t birthday_account; /* the birthday finder's answer, 0 = nobody */
} fx;

static void keep_numbers(void *ctx, const char *number)
{
    fx *f = ctx;
    for (int i = 0; i < 4; i++)
        if (f->cards[i][0] == '\0') {
            snprintf(f->cards[i], KP_STR_MAX, "%s", number);
            return;
        }
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    fixture_location(f->path, "notify_emit");
    kp_error e = {0};
    assert_int_equal(kp_store_open(f->path, true, &f->st, &e), KP_OK);
    uint8_t master[32];
    for (int i = 0; i < 32; i++) master[i] = (uint8_t)(i * 5 + 3);
    assert_int_equal(kp_pii_from_bytes(master, &f->pii), KP_OK);
    int64_t v;
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    if (kp_service_program_load(f->st, program_json, strlen(program_json), &v, &e))
        fail_msg("program: %s: %s", e.field, e.message);
    assert_int_equal(kp_service_cards_issue(f->st, 4, NOW - 1000, keep_numbers, f, &e), KP_OK);
    assert_int_equal(f->st->ops->commit(f->st), KP_OK);
    assert_int_equal(kp_service_program_get(f->st, 0, &f->program, &e), KP_OK);
    f->sc = kp_scratch_new();
    kp_buf_init(&f->out, 8 << 20);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    kp_store_close(f->st);
    kp_pii_free(f->pii);
    kp_scratch_free(f->sc);
    kp_buf_release(&f->out);
    fixture_remove(f->path);
    free(f);
    return 0;
}

/* ---- reading the events back */

typedef struct found {
    size_t n;
    kp_notify_event ev; /* the last one of the kind (payload malloc'd) */
    json_t *payload;
} found;

static void found_release(found *x)
{
    kp_notify_event_release(&x->ev);
    json_decref(x->payload);
    memset(x, 0, sizeof *x);
}

static size_t all_events(fx *f, kp_notify_event *evs, size_t cap)
{
    size_t n = 0;
    assert_int_equal(f->st->ops->notify->events_pending(f->st, 0, evs, cap, &n), KP_OK);
    assert_true(n < cap);
    return n;
}

/* The events of `kind` (all of them counted, the last kept). */
static found events_of(fx *f, kp_notify_kind kind)
{
    static kp_notify_event evs[256];
    size_t n = all_events(f, evs, 256);
    found x;
    memset(&x, 0, sizeof x);
    for (size_t i = 0; i < n; i++) {
        if (evs[i].kind == kind) {
            kp_notify_event_release(&x.ev);
            x.ev = evs[i];
            x.n++;
        } else {
            kp_notify_event_release(&evs[i]);
        }
    }
    if (x.n) {
        json_error_t je;
        x.payload = json_loadb((const char *)x.ev.payload, x.ev.payload_len, 0, &je);
        if (x.payload == NULL) fail_msg("payload is not JSON: %s", je.text);
        assert_true(json_is_object(x.payload));
        assert_false(x.ev.sealed);
    }
    return x;
}

static size_t count_of(fx *f, kp_notify_kind kind)
{
    found x = events_of(f, kind);
    size_t n = x.n;
    found_release(&x);
    return n;
}

static size_t count_all(fx *f)
{
    static kp_notify_event evs[256];
    size_t n = all_events(f, evs, 256);
    for (size_t i = 0; i < n; i++) kp_notify_event_release(&evs[i]);
    return n;
}

static int64_t num(const found *x, const char *key)
{
    json_t *v = json_object_get(x->payload, key);
    if (!json_is_integer(v)) fail_msg("payload has no integer %s", key);
    return json_integer_value(v);
}

static const char *str(const found *x, const char *key)
{
    json_t *v = json_object_get(x->payload, key);
    if (!json_is_string(v)) fail_msg("payload has no string %s", key);
    return json_string_value(v);
}

static bool has(const found *x, const char *key)
{
    return json_object_get(x->payload, key) != NULL;
}

static void key_is_op(const found *x)
{
    char want[64];
    assert_true(x->ev.op_id > 0);
    snprintf(want, sizeof want, "op:%lld", (long long)x->ev.op_id);
    assert_string_equal(x->ev.key, want);
}

/* ---- doing things */

static int64_t account_of(fx *f, int card)
{
    kp_card c;
    assert_int_equal(f->st->ops->card_find(f->st, f->cards[card], &c), KP_OK);
    return c.account_id;
}

static void buy_req(fx *f, int card, const char *receipt, int64_t amount, int64_t burn,
                    kp_purchase_req *req)
{
    char body[1024];
    snprintf(body, sizeof body,
             "{\"card\":\"%s\",\"receipt\":\"%s\",\"burn\":%lld,"
             "\"lines\":[{\"sku\":\"oil\",\"category\":\"parts\",\"amount\":%lld}]}",
             f->cards[card], receipt, (long long)burn, (long long)amount);
    kp_error e = {0};
    if (kp_purchase_req_parse(body, strlen(body), true, req, &e))
        fail_msg("purchase: %s: %s", e.field, e.message);
}

/* A purchase in its own transaction; *replayed as the service says. */
static void buy(fx *f, int card, const char *receipt, int64_t amount, int64_t burn, kp_time now,
                bool *replayed)
{
    static kp_purchase_req req;
    buy_req(f, card, receipt, amount, burn, &req);
    kp_error e = {0};
    bool r = false;
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    if (kp_service_purchase(f->st, &f->program, "s1", &req, now, f->sc, &f->out, &r, &e))
        fail_msg("purchase: %s: %s", e.field, e.message);
    assert_int_equal(f->st->ops->commit(f->st), KP_OK);
    if (replayed) *replayed = r;
}

static void office(fx *f, kp_office *o, kp_time now)
{
    kp_actor a = {.kind = KP_ACTOR_STAFF, .role = KP_ROLE_ADMIN};
    snprintf(a.name, sizeof a.name, "staff:test");
    kp_office_init(o, f->st, f->pii, &f->program, now, &a, f->sc);
}

static void done(fx *f, kp_err err, const kp_error *e)
{
    if (err) {
        f->st->ops->rollback(f->st);
        fail_msg("%s: %s", e->field, e->message);
    }
    assert_int_equal(f->st->ops->commit(f->st), KP_OK);
}

static int64_t register_card(fx *f, int card, const char *phone)
{
    char body[1024];
    snprintf(body, sizeof body,
             "{\"card\":\"%s\",\"full_name\":\"Anna\",\"phone\":\"%s\","
             "\"consent\":{\"given\":true,\"text_version\":\"v1\"}}",
             f->cards[card], phone);
    kp_office o;
    office(f, &o, NOW);
    kp_error e = {0};
    kp_field_errors fe = {0};
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    done(f, kp_customer_register(&o, body, strlen(body), &f->out, &fe, &e), &e);
    json_t *j = json_loadb(f->out.data, f->out.len, 0, NULL);
    assert_non_null(j);
    int64_t id = json_integer_value(json_object_get(j, "id"));
    json_decref(j);
    assert_true(id > 0);
    return id;
}

static kp_tick_report tick(fx *f, kp_time now)
{
    kp_tick_report total;
    memset(&total, 0, sizeof total);
    for (int i = 0; i < 100; i++) {
        kp_tick_report r;
        memset(&r, 0, sizeof r);
        kp_error e = {0};
        assert_int_equal(f->st->ops->begin(f->st), KP_OK);
        kp_err err = kp_service_tick(f->st, &f->program, NULL, now, 1000, f->sc, &r, &e);
        done(f, err, &e);
        total.reminders += r.reminders;
        total.tier_changes += r.tier_changes;
        total.expired_accounts += r.expired_accounts;
        if (!r.more) return total;
    }
    fail_msg("tick never finished");
    return total;
}

/* ---- purchases and returns */

static void test_purchase_earned_burnt_and_neither(void **state)
{
    fx *f = *state;
    buy(f, 0, "R1", 100000, 0, NOW, NULL); /* 1000.00: 100 points */
    found x = events_of(f, KP_NOTIFY_EARNED);
    assert_int_equal(x.n, 1);
    key_is_op(&x);
    assert_int_equal(x.ev.account_id, account_of(f, 0));
    assert_string_equal(x.ev.card, f->cards[0]);
    assert_int_equal(x.ev.at, NOW);
    assert_int_equal(num(&x, "earned"), 100);
    assert_false(has(&x, "burnt"));
    assert_int_equal(num(&x, "points"), 100);
    assert_int_equal(num(&x, "balance"), 100);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(x.payload, "balances"),
                                                        "regular")),
                     100);
    assert_int_equal(num(&x, "expiry_points"), 100);
    kp_time exp = 0;
    assert_true(kp_time_parse(str(&x, "expiry_at"), &exp));
    assert_int_equal(f->st->ops->account_load(f->st, account_of(f, 0), &f->sc->account), KP_OK);
    assert_int_equal(exp, f->sc->account.lots[0].expires_at); /* as stored */
    assert_int_equal(num(&x, "amount_minor"), 100000);
    assert_string_equal(str(&x, "currency"), "RUB");
    assert_string_equal(str(&x, "store"), "s1");
    assert_string_equal(str(&x, "receipt"), "R1");
    found_release(&x);

    /* Burning 30 (and earning on the rest): BURNT, not EARNED. */
    buy(f, 0, "R2", 10000, 30, NOW + 60, NULL);
    x = events_of(f, KP_NOTIFY_BURNT);
    assert_int_equal(x.n, 1);
    key_is_op(&x);
    assert_int_equal(num(&x, "burnt"), 30);
    int64_t earned = num(&x, "earned");
    assert_true(earned > 0);
    assert_int_equal(num(&x, "points"), earned - 30);
    assert_int_equal(num(&x, "balance"), 100 + earned - 30);
    found_release(&x);
    x = events_of(f, KP_NOTIFY_EARNED);
    assert_int_equal(x.n, 1);
    found_release(&x);

    /* 5.00 earns nothing, burns nothing: nobody is told. */
    size_t before = count_all(f);
    buy(f, 0, "R3", 500, 0, NOW + 120, NULL);
    assert_int_equal(count_all(f), before);
}

static void test_idempotent_retry_and_rolled_back_purchase_write_nothing_more(void **state)
{
    fx *f = *state;
    bool replayed = true;
    buy(f, 1, "R1", 100000, 0, NOW, &replayed);
    assert_false(replayed);
    buy(f, 1, "R1", 100000, 0, NOW + 5, &replayed);
    assert_true(replayed);
    found x = events_of(f, KP_NOTIFY_EARNED);
    assert_int_equal(x.n, 1);
    found_release(&x);

    /* The writer's savepoint rolled back: its event goes with it. */
    static kp_purchase_req req;
    buy_req(f, 1, "R2", 200000, 0, &req);
    kp_error e = {0};
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(f->st->ops->savepoint(f->st), KP_OK);
    assert_int_equal(kp_service_purchase(f->st, &f->program, "s1", &req, NOW + 10, f->sc, &f->out,
                                         &replayed, &e),
                     KP_OK);
    assert_int_equal(f->st->ops->rollback_to(f->st), KP_OK);
    assert_int_equal(f->st->ops->commit(f->st), KP_OK);
    x = events_of(f, KP_NOTIFY_EARNED);
    assert_int_equal(x.n, 1);
    found_release(&x);
    /* Run again for real: one more. */
    buy(f, 1, "R2", 200000, 0, NOW + 20, &replayed);
    x = events_of(f, KP_NOTIFY_EARNED);
    assert_int_equal(x.n, 2);
    assert_string_equal(str(&x, "receipt"), "R2");
    found_release(&x);
}

static void test_return_writes_returned(void **state)
{
    fx *f = *state;
    buy(f, 0, "R1", 100000, 0, NOW, NULL);
    char body[1024];
    snprintf(body, sizeof body,
             "{\"card\":\"%s\",\"receipt\":\"RET1\",\"original_receipt\":\"R1\"}", f->cards[0]);
    static kp_return_req ret;
    kp_error e = {0};
    assert_int_equal(kp_return_req_parse(body, strlen(body), &ret, &e), KP_OK);
    bool replayed;
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    done(f, kp_service_return(f->st, &f->program, "s1", &ret, NOW + 60, f->sc, &f->out, &replayed,
                              &e),
         &e);
    found x = events_of(f, KP_NOTIFY_RETURNED);
    assert_int_equal(x.n, 1);
    key_is_op(&x);
    assert_string_equal(x.ev.card, f->cards[0]);
    assert_int_equal(num(&x, "earned"), 100); /* taken back */
    assert_int_equal(num(&x, "points"), -100);
    assert_int_equal(num(&x, "balance"), 0);
    assert_string_equal(str(&x, "receipt"), "RET1");
    found_release(&x);
}

/* ---- back office */

static void test_registration_welcome_and_grant(void **state)
{
    fx *f = *state;
    int64_t id = register_card(f, 2, "+79161234567");
    found x = events_of(f, KP_NOTIFY_WELCOME);
    assert_int_equal(x.n, 1);
    char want[64];
    snprintf(want, sizeof want, "welcome:%lld", (long long)id);
    assert_string_equal(x.ev.key, want);
    assert_int_equal(x.ev.customer_id, id);
    assert_int_equal(x.ev.account_id, account_of(f, 2));
    assert_string_equal(x.ev.card, f->cards[2]);
    assert_int_equal(num(&x, "balance"), 50); /* after the registration's grant */
    found_release(&x);
    x = events_of(f, KP_NOTIFY_GRANTED);
    assert_int_equal(x.n, 1);
    key_is_op(&x);
    assert_string_equal(str(&x, "rule"), "hello");
    assert_int_equal(num(&x, "earned"), 50);
    assert_int_equal(num(&x, "balance"), 50);
    found_release(&x);
    assert_int_equal(count_of(f, KP_NOTIFY_BIRTHDAY), 0);
}

static void test_adjustment_and_transfer(void **state)
{
    fx *f = *state;
    register_card(f, 0, "+79161234501"); /* 50 points each from "hello" */
    register_card(f, 1, "+79161234502");
    char body[1024];
    snprintf(body, sizeof body,
             "{\"card\":\"%s\",\"points\":300,\"reason\":\"goodwill\",\"key\":\"A1\"}",
             f->cards[0]);
    kp_office o;
    office(f, &o, NOW);
    kp_error e = {0};
    bool replayed;
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    done(f, kp_adjust(&o, body, strlen(body), &f->out, &replayed, &e), &e);
    /* Its retry writes nothing more. */
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    done(f, kp_adjust(&o, body, strlen(body), &f->out, &replayed, &e), &e);
    assert_true(replayed);
    found x = events_of(f, KP_NOTIFY_ADJUSTED);
    assert_int_equal(x.n, 1);
    key_is_op(&x);
    assert_int_equal(num(&x, "points"), 300);
    assert_int_equal(num(&x, "balance"), 350);
    assert_string_equal(str(&x, "reason"), "goodwill");
    found_release(&x);

    snprintf(body, sizeof body,
             "{\"from_card\":\"%s\",\"to_card\":\"%s\",\"points\":120,\"key\":\"T1\"}",
             f->cards[0], f->cards[1]);
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    done(f, kp_transfer(&o, body, strlen(body), &f->out, &replayed, &e), &e);
    x = events_of(f, KP_NOTIFY_TRANSFER_OUT);
    assert_int_equal(x.n, 1);
    key_is_op(&x);
    assert_int_equal(x.ev.account_id, account_of(f, 0));
    assert_string_equal(x.ev.card, f->cards[0]);
    assert_int_equal(num(&x, "points"), -120);
    assert_int_equal(num(&x, "balance"), 230);
    assert_string_equal(str(&x, "other_card"), f->cards[1]);
    int64_t out_op = x.ev.op_id;
    found_release(&x);
    x = events_of(f, KP_NOTIFY_TRANSFER_IN);
    assert_int_equal(x.n, 1);
    key_is_op(&x);
    assert_true(x.ev.op_id != out_op);
    assert_int_equal(x.ev.account_id, account_of(f, 1));
    assert_int_equal(num(&x, "points"), 120);
    assert_int_equal(num(&x, "balance"), 170);
    assert_string_equal(str(&x, "other_card"), f->cards[0]);
    found_release(&x);
}

static void test_card_blocked_and_replaced(void **state)
{
    fx *f = *state;
    kp_office o;
    office(f, &o, NOW);
    kp_error e = {0};
    const char *block = "{\"reason\":\"lost\"}";
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    done(f, kp_card_block(&o, f->cards[0], block, strlen(block), &f->out, &e), &e);
    kp_card_event cev[8];
    size_t n = 0;
    assert_int_equal(f->st->ops->people->card_events(f->st, f->cards[0], cev, 8, &n), KP_OK);
    assert_true(n >= 1);
    found x = events_of(f, KP_NOTIFY_CARD_BLOCKED);
    assert_int_equal(x.n, 1);
    char want[64];
    snprintf(want, sizeof want, "card-event:%lld", (long long)cev[n - 1].id);
    assert_string_equal(x.ev.key, want);
    assert_string_equal(x.ev.card, f->cards[0]);
    assert_string_equal(str(&x, "reason"), "lost");
    found_release(&x);

    char body[1024];
    snprintf(body, sizeof body, "{\"reason\":\"lost\",\"new_card\":\"%s\"}", f->cards[3]);
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    done(f, kp_card_replace(&o, f->cards[0], body, strlen(body), &f->out, &e), &e);
    assert_int_equal(f->st->ops->people->card_events(f->st, f->cards[0], cev, 8, &n), KP_OK);
    x = events_of(f, KP_NOTIFY_CARD_REPLACED);
    assert_int_equal(x.n, 1);
    snprintf(want, sizeof want, "card-event:%lld", (long long)cev[n - 1].id);
    assert_string_equal(x.ev.key, want);
    assert_string_equal(str(&x, "other_card"), f->cards[3]);
    found_release(&x);
    assert_int_equal(count_of(f, KP_NOTIFY_CARD_BLOCKED), 1);
}

static void test_erasure_erases_the_customers_messages(void **state)
{
    fx *f = *state;
    int64_t id = register_card(f, 2, "+79161234568");
    found x = events_of(f, KP_NOTIFY_WELCOME);
    assert_int_equal(x.n, 1);
    kp_message m;
    memset(&m, 0, sizeof m);
    snprintf(m.key, sizeof m.key, "%lld/sms", (long long)x.ev.id);
    m.event_id = x.ev.id;
    m.kind = KP_NOTIFY_WELCOME;
    m.channel = KP_CHANNEL_SMS;
    m.customer_id = id;
    m.next_at = NOW;
    uint8_t blob[8] = "sealed!";
    m.sealed = blob;
    m.sealed_len = sizeof blob;
    assert_int_equal(f->st->ops->notify->event_dispatch(f->st, x.ev.id, &m, 1, NOW), KP_OK);
    assert_true(m.id > 0);
    found_release(&x);

    kp_office o;
    office(f, &o, NOW + 60);
    kp_error e = {0};
    const char *body = "{\"reason\":\"asked to be forgotten\"}";
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    done(f, kp_customer_erase(&o, id, body, strlen(body), &f->out, &e), &e);
    kp_message got;
    assert_int_equal(f->st->ops->notify->message_get(f->st, m.id, &got), KP_OK);
    assert_int_equal(got.state, KP_MSG_CANCELLED);
    assert_int_equal(got.sealed_len, 0);
    kp_message_release(&got);
}

/* ---- the scheduler */

static kp_err find_birthday(void *ctx, kp_store *st, int month, int day, int64_t after,
                            int64_t *ids, size_t limit, size_t *n)
{
    (void)st;
    (void)month;
    (void)day;
    fx *f = ctx;
    *n = 0;
    if (f->birthday_account > after && limit > 0) ids[(*n)++] = f->birthday_account;
    return KP_OK;
}

static void test_birthday_expiry_and_tier(void **state)
{
    fx *f = *state;
    f->birthday_account = account_of(f, 1);
    kp_birthday_finder bd = {find_birthday, f};
    kp_tick_opts opts = {.birthdays = &bd};
    kp_tick_report r;
    memset(&r, 0, sizeof r);
    kp_error e = {0};
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    done(f, kp_service_tick(f->st, &f->program, &opts, NOW, 1000, f->sc, &r, &e), &e);
    found x = events_of(f, KP_NOTIFY_BIRTHDAY);
    assert_int_equal(x.n, 1);
    key_is_op(&x);
    assert_int_equal(x.ev.account_id, account_of(f, 1));
    assert_string_equal(str(&x, "rule"), "bd");
    assert_int_equal(num(&x, "earned"), 200);
    assert_int_equal(num(&x, "balance"), 200);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(x.payload, "balances"),
                                                        "premium")),
                     200);
    found_release(&x);

    /* The first tier review gives every account its tier: one TIER each,
     * key "tier:<account>:<at>". */
    assert_true(r.tier_changes >= 1);
    static kp_notify_event evs[256];
    size_t n = all_events(f, evs, 256), tiers = 0;
    for (size_t i = 0; i < n; i++) {
        if (evs[i].kind == KP_NOTIFY_TIER) {
            char want[64];
            snprintf(want, sizeof want, "tier:%lld:%lld", (long long)evs[i].account_id,
                     (long long)evs[i].at);
            assert_string_equal(evs[i].key, want);
            assert_non_null(strstr((const char *)evs[i].payload, "\"tier\":\"Silver\""));
            tiers++;
        }
        kp_notify_event_release(&evs[i]);
    }
    assert_int_equal(tiers, (size_t)r.tier_changes);

    /* 31 days on, the purchase's points expire: EXPIRED with the balance. */
    buy(f, 0, "R1", 100000, 0, NOW, NULL);
    kp_tick_report t = tick(f, NOW + 31 * KP_DAY_SECONDS);
    assert_true(t.expired_accounts >= 1);
    x = events_of(f, KP_NOTIFY_EXPIRED);
    assert_int_equal(x.n, 1);
    key_is_op(&x);
    assert_int_equal(x.ev.account_id, account_of(f, 0));
    assert_int_equal(num(&x, "points"), -100);
    assert_int_equal(num(&x, "balance"), 0);
    found_release(&x);
}

static void test_expiry_reminder_once_per_day_and_account(void **state)
{
    fx *f = *state;
    buy(f, 0, "R1", 100000, 0, NOW, NULL);
    buy(f, 1, "R2", 50000, 0, NOW, NULL);
    int64_t acct = account_of(f, 0);
    assert_int_equal(f->st->ops->account_load(f->st, acct, &f->sc->account), KP_OK);
    kp_time expires = f->sc->account.lots[0].expires_at;
    kp_time day = expires - 7 * KP_DAY_SECONDS;

    /* A day before: nothing yet. */
    kp_tick_report r = tick(f, day - KP_DAY_SECONDS);
    assert_int_equal(r.reminders, 0);
    assert_int_equal(count_of(f, KP_NOTIFY_EXPIRING), 0);
    /* The day: both accounts, once; ticking again that day adds none. */
    r = tick(f, day);
    assert_int_equal(r.reminders, 2);
    r = tick(f, day + 3600);
    assert_int_equal(r.reminders, 0);
    static kp_notify_event evs[256];
    size_t n = all_events(f, evs, 256), reminders = 0;
    for (size_t i = 0; i < n; i++) {
        if (evs[i].kind == KP_NOTIFY_EXPIRING) {
            int y, m, d;
            kp_program_date(&f->program, expires, &y, &m, &d);
            char want[64];
            snprintf(want, sizeof want, "expiring:%lld:%04d-%02d-%02d",
                     (long long)evs[i].account_id, y, m, d);
            assert_string_equal(evs[i].key, want);
            if (evs[i].account_id == acct) {
                json_t *j = json_loadb((const char *)evs[i].payload, evs[i].payload_len, 0, NULL);
                assert_int_equal(json_integer_value(json_object_get(j, "expiry_points")), 100);
                assert_int_equal(json_integer_value(json_object_get(j, "balance")), 100);
                kp_time t = 0;
                assert_true(kp_time_parse(json_string_value(json_object_get(j, "expiry_at")), &t));
                assert_int_equal(t, expires);
                json_decref(j);
            }
            reminders++;
        }
        kp_notify_event_release(&evs[i]);
    }
    assert_int_equal(reminders, 2);
    /* The next days remind of nothing more for these points. */
    r = tick(f, day + KP_DAY_SECONDS);
    assert_int_equal(r.reminders, 0);
    assert_int_equal(count_of(f, KP_NOTIFY_EXPIRING), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_purchase_earned_burnt_and_neither, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_idempotent_retry_and_rolled_back_purchase_write_nothing_more, setup, teardown),
        cmocka_unit_test_setup_teardown(test_return_writes_returned, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registration_welcome_and_grant, setup, teardown),
        cmocka_unit_test_setup_teardown(test_adjustment_and_transfer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_card_blocked_and_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_erasure_erases_the_customers_messages, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_birthday_expiry_and_tier, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry_reminder_once_per_day_and_account, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
