/*
 * test_notify_store.c: the contract suite of the outbox's storage seam
 * (kopilka/notify.h, kp_store_ops.notify), run against every backend
 * (KOPILKA_TEST_STORE=pg: PostgreSQL; else SQLite). Every operation is
 * driven through the seam only, no SQL: events (duplicate keys, the
 * transaction they belong to, paging), dispatch (idempotent, message keys
 * unique), claims and their leases (two claims never share a message while
 * it is leased, also across connections; an expired lease is claimable),
 * settle, retry, cancel, erase, statistics, preferences, templates,
 * webhook endpoints, login codes, customers' sessions, expiry reminders,
 * and op_insert / op_insert_apply with and without row->notify. The cost
 * of an event on the till path is printed (TIMING lines), never asserted.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fixture.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <kopilka/clock.h>
#include <kopilka/notify.h>
#include <kopilka/store.h>

#define NOW ((kp_time)1780000000) /* 2026-05-28T20:26:40Z */
#define DAY ((kp_time)KP_DAY_SECONDS)

/* -------------------------------------------------------------- fixture */

typedef struct fx {
    char location[FIXTURE_LOCATION_MAX];
    kp_store *s;
    const kp_store_ops *o;
    const kp_notify_ops *n;
    kp_account *acct;     /* 30 kB: not on the stack */
    kp_ledger_plan *plan;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    f->acct = calloc(1, sizeof *f->acct);
    f->plan = calloc(1, sizeof *f->plan);
    fixture_location(f->location, "notify");
    kp_error e = {0};
    kp_err err = kp_store_open(f->location, true, &f->s, &e);
    if (err) {
        fprintf(stderr, "cannot open %s: %s\n", f->location, e.message);
        return -1;
    }
    f->o = f->s->ops;
    f->n = f->o->notify;
    *state = f;
    if (f->n == NULL) { /* a failure of each test, not a crash of them all */
        fprintf(stderr, "the %s store has no notify operations (kp_store_ops.notify NULL)\n",
                fixture_is_pg() ? "PostgreSQL" : "SQLite");
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    kp_store_close(f->s);
    fixture_remove(f->location);
    free(f->acct);
    free(f->plan);
    free(f);
    return 0;
}

static kp_store *second(fx *f)
{
    kp_store *s2 = NULL;
    kp_error e = {0};
    kp_err err = kp_store_open(f->location, false, &s2, &e);
    if (err) print_error("second connection: %s\n", e.message);
    assert_int_equal(err, KP_OK);
    return s2;
}

#define EXPECT(s, call, want) expect_((s), (call), (want), #call, __FILE__, __LINE__)
#define OK(s, call) EXPECT(s, call, KP_OK)

static void expect_(kp_store *s, kp_err got, kp_err want, const char *what, const char *file,
                    int line)
{
    if (got == want) return;
    print_error("%s:%d: %s returned %s, want %s (last_error: %s)\n", file, line, what,
                kp_err_name(got), kp_err_name(want), s->last_error);
    _fail(file, line);
}

static void begin(fx *f) { OK(f->s, f->o->begin(f->s)); }
static void commit(fx *f) { OK(f->s, f->o->commit(f->s)); }

/* An event of `kind` under `key` with a JSON payload; returns its id. */
static int64_t event(fx *f, const char *key, kp_notify_kind kind, int64_t account_id,
                     const char *payload)
{
    kp_notify_event ev;
    memset(&ev, 0, sizeof ev);
    snprintf(ev.key, sizeof ev.key, "%s", key);
    ev.kind = kind;
    ev.account_id = account_id;
    snprintf(ev.card, sizeof ev.card, "card-%lld", (long long)account_id);
    ev.at = NOW;
    ev.payload = (uint8_t *)payload;
    ev.payload_len = strlen(payload);
    OK(f->s, f->n->event_insert(f->s, &ev));
    return ev.id;
}

/* A message for dispatch (sealed text "sealed:<key>"); the caller's buffer
 * `sealed` must outlive the dispatch. */
static void message(kp_message *m, char *sealed, size_t sealed_size, int64_t event_id,
                    kp_channel channel, int64_t customer_id, int64_t endpoint_id, kp_time next_at)
{
    memset(m, 0, sizeof *m);
    if (channel == KP_CHANNEL_WEBHOOK)
        snprintf(m->key, sizeof m->key, "%lld/webhook/%lld", (long long)event_id,
                 (long long)endpoint_id);
    else
        snprintf(m->key, sizeof m->key, "%lld/%s", (long long)event_id, kp_channel_name(channel));
    m->kind = KP_NOTIFY_EARNED;
    m->channel = channel;
    m->customer_id = customer_id;
    m->endpoint_id = endpoint_id;
    m->state = KP_MSG_PENDING;
    m->next_at = next_at;
    snprintf(sealed, sealed_size, "sealed:%s", m->key);
    m->sealed = (uint8_t *)sealed;
    m->sealed_len = strlen(sealed);
}

/* A new event with one message of `channel` for `customer` due at
 * next_at; returns the message's id. */
static int64_t one_message(fx *f, const char *key, kp_channel channel, int64_t customer,
                           int64_t endpoint, kp_time next_at)
{
    int64_t ev = event(f, key, KP_NOTIFY_EARNED, 1, "{}");
    assert_true(ev > 0);
    kp_message m;
    char sealed[KP_NOTIFY_KEY_MAX + 16];
    message(&m, sealed, sizeof sealed, ev, channel, customer, endpoint, next_at);
    OK(f->s, f->n->event_dispatch(f->s, ev, &m, 1, NOW));
    assert_true(m.id > 0);
    return m.id;
}

static kp_message get(fx *f, int64_t id)
{
    kp_message m;
    OK(f->s, f->n->message_get(f->s, id, &m));
    return m;
}

static size_t pending_events(fx *f, kp_notify_event *out, size_t limit)
{
    size_t n = 0;
    OK(f->s, f->n->events_pending(f->s, 0, out, limit, &n));
    return n;
}

static void release_events(kp_notify_event *ev, size_t n)
{
    for (size_t i = 0; i < n; i++) kp_notify_event_release(&ev[i]);
}

static void release_messages(kp_message *m, size_t n)
{
    for (size_t i = 0; i < n; i++) kp_message_release(&m[i]);
}

static void verify_report(void *ctx, const char *line)
{
    (void)ctx;
    print_error("verify: %s\n", line);
}

static void assert_verifies_clean(fx *f)
{
    int64_t problems = -1;
    OK(f->s, f->o->verify(f->s, verify_report, NULL, &problems));
    assert_int_equal(problems, 0);
}

/* Loads account a into f->acct and plans in f->plan `points` credited
 * from the system account `source` into a new lot of `kind` (with `merge`,
 * into the account's first open lot when it has one). */
static void plan_earn(fx *f, int64_t a, kp_op_type type, int64_t source, int64_t points,
                      const char *kind, kp_time at, kp_time expires_at, bool merge)
{
    OK(f->s, f->o->account_load(f->s, a, f->acct));
    kp_ledger_plan *p = f->plan;
    memset(p, 0, sizeof *p);
    p->type = type;
    p->account_id = a;
    p->n_postings = 2;
    p->postings[0] = (kp_posting){a, points};
    p->postings[1] = (kp_posting){source, -points};
    p->has_new_lot = true;
    if (merge && f->acct->n_lots) p->new_lot.id = f->acct->lots[0].id;
    snprintf(p->new_lot.kind, sizeof p->new_lot.kind, "%s", kind);
    p->new_lot.amount = p->new_lot.remaining = points;
    p->new_lot.earned_at = p->new_lot.active_from = at;
    p->new_lot.expires_at = expires_at;
    p->balance_after = f->acct->balance + points;
}

/* A new account (its card "C-<tag>") with `points` in one lot expiring at
 * expires_at; returns the account. */
static int64_t account_with_lot(fx *f, const char *tag, int64_t points, kp_time expires_at)
{
    char number[64];
    snprintf(number, sizeof number, "C-%s", tag);
    int64_t a = 0;
    OK(f->s, f->o->card_create(f->s, number, KP_CARD_ISSUED, NOW - 100 * DAY, &a));
    if (points) {
        plan_earn(f, a, KP_OP_ADJUST, KP_SYS_ADJUSTMENT, points, "regular", NOW - 100 * DAY,
                  expires_at, false);
        kp_op_row row;
        memset(&row, 0, sizeof row);
        row.type = KP_OP_ADJUST;
        row.account_id = a;
        snprintf(row.card, sizeof row.card, "%s", number);
        row.program_version = 1;
        row.at = NOW - 100 * DAY;
        row.points = row.earned = points;
        OK(f->s, f->o->op_insert_apply(f->s, &row, f->plan, NOW - 100 * DAY));
    }
    return a;
}

/* ---------------------------------------------------------------- tests */

static void test_every_operation_is_there(void **state)
{
    fx *f = *state;
    const kp_notify_ops *n = f->n;
    assert_non_null(n);
    const void *ops[] = {
        n->event_insert, n->events_pending, n->event_dispatch, n->messages_claim,
        n->messages_settle, n->message_get, n->messages_list, n->message_retry,
        n->messages_cancel, n->messages_erase, n->outbox_stats, n->prefs_get, n->prefs_put,
        n->template_get, n->template_put, n->template_delete, n->templates_list,
        n->endpoint_insert, n->endpoint_update, n->endpoint_get, n->endpoints_list,
        n->login_code_put, n->login_code_check, n->customer_session_insert,
        n->customer_session_find, n->customer_session_delete, n->customer_sessions_end,
        n->expiring_between,
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) assert_non_null(ops[i]);
}

static void test_events_are_stored_once_per_key_and_read_in_id_order(void **state)
{
    fx *f = *state;
    int64_t a = event(f, "op:1", KP_NOTIFY_EARNED, 11, "{\"earned\":5}");
    int64_t b = event(f, "card-event:7", KP_NOTIFY_CARD_BLOCKED, 12, "{}");
    assert_true(a > 0);
    assert_true(b > a);
    /* The same cause again: KP_OK, id 0, nothing written. */
    assert_int_equal(event(f, "op:1", KP_NOTIFY_BURNT, 99, "{\"other\":1}"), 0);

    /* A sealed payload with bytes JSON never has, and an empty one. */
    kp_notify_event ev;
    memset(&ev, 0, sizeof ev);
    snprintf(ev.key, sizeof ev.key, "login:5:1");
    ev.kind = KP_NOTIFY_LOGIN_CODE;
    ev.customer_id = 5;
    ev.op_id = 0;
    ev.at = NOW + 1;
    ev.sealed = true;
    uint8_t blob[] = {0, 1, 2, 0xff, 0, 7};
    ev.payload = blob;
    ev.payload_len = sizeof blob;
    OK(f->s, f->n->event_insert(f->s, &ev));
    int64_t c = ev.id;
    assert_true(c > b);
    memset(&ev, 0, sizeof ev);
    snprintf(ev.key, sizeof ev.key, "tier:12:%lld", (long long)NOW);
    ev.kind = KP_NOTIFY_TIER;
    ev.account_id = 12;
    ev.at = NOW + 2;
    OK(f->s, f->n->event_insert(f->s, &ev));
    int64_t d = ev.id;
    assert_true(d > c);

    kp_notify_event got[8];
    size_t n = pending_events(f, got, 8);
    assert_int_equal(n, 4);
    assert_int_equal(got[0].id, a);
    assert_string_equal(got[0].key, "op:1");
    assert_int_equal(got[0].kind, KP_NOTIFY_EARNED); /* the first insert's, not the duplicate's */
    assert_int_equal(got[0].account_id, 11);
    assert_string_equal(got[0].card, "card-11");
    assert_int_equal(got[0].at, NOW);
    assert_false(got[0].sealed);
    assert_int_equal(got[0].payload_len, strlen("{\"earned\":5}"));
    assert_memory_equal(got[0].payload, "{\"earned\":5}", got[0].payload_len);
    assert_int_equal(got[1].id, b);
    assert_int_equal(got[1].kind, KP_NOTIFY_CARD_BLOCKED);
    assert_int_equal(got[2].id, c);
    assert_true(got[2].sealed);
    assert_int_equal(got[2].customer_id, 5);
    assert_int_equal(got[2].payload_len, sizeof blob);
    assert_memory_equal(got[2].payload, blob, sizeof blob);
    assert_int_equal(got[3].id, d);
    assert_int_equal(got[3].payload_len, 0);
    release_events(got, n);

    /* Pages by id, exclusive; a limit is kept. */
    OK(f->s, f->n->events_pending(f->s, a, got, 2, &n));
    assert_int_equal(n, 2);
    assert_int_equal(got[0].id, b);
    assert_int_equal(got[1].id, c);
    release_events(got, n);
    OK(f->s, f->n->events_pending(f->s, d, got, 8, &n));
    assert_int_equal(n, 0);
}

static void test_an_event_belongs_to_its_transaction(void **state)
{
    fx *f = *state;
    begin(f);
    assert_true(event(f, "op:rolled-back", KP_NOTIFY_EARNED, 1, "{}") > 0);
    OK(f->s, f->o->rollback(f->s));
    kp_notify_event got[4];
    assert_int_equal(pending_events(f, got, 4), 0);

    /* A savepoint rolled back takes its event with it; the transaction's
     * other work stays. */
    begin(f);
    int64_t kept = event(f, "op:kept", KP_NOTIFY_EARNED, 1, "{}");
    OK(f->s, f->o->savepoint(f->s));
    assert_true(event(f, "op:undone", KP_NOTIFY_EARNED, 1, "{}") > 0);
    OK(f->s, f->o->rollback_to(f->s));
    commit(f);
    size_t n = pending_events(f, got, 4);
    assert_int_equal(n, 1);
    assert_int_equal(got[0].id, kept);
    release_events(got, n);
    /* The key rolled back is free again. */
    assert_true(event(f, "op:undone", KP_NOTIFY_EARNED, 1, "{}") > 0);
}

static void test_dispatch_stores_messages_once_and_marks_the_event(void **state)
{
    fx *f = *state;
    int64_t ev = event(f, "op:10", KP_NOTIFY_EARNED, 3, "{}");
    int64_t other = event(f, "op:11", KP_NOTIFY_EARNED, 3, "{}");
    kp_message m[3];
    char sealed[3][KP_NOTIFY_KEY_MAX + 16];
    message(&m[0], sealed[0], sizeof sealed[0], ev, KP_CHANNEL_EMAIL, 7, 0, NOW);
    message(&m[1], sealed[1], sizeof sealed[1], ev, KP_CHANNEL_SMS, 7, 0, NOW + 3600);
    message(&m[2], sealed[2], sizeof sealed[2], ev, KP_CHANNEL_WEBHOOK, 0, 4, NOW);
    OK(f->s, f->n->event_dispatch(f->s, ev, m, 3, NOW + 5));
    for (int i = 0; i < 3; i++) assert_true(m[i].id > 0);
    assert_true(m[0].id != m[1].id && m[1].id != m[2].id);

    kp_notify_event pend[4];
    size_t n = pending_events(f, pend, 4);
    assert_int_equal(n, 1); /* only `other` */
    assert_int_equal(pend[0].id, other);
    release_events(pend, n);

    kp_message got = get(f, m[1].id);
    assert_string_equal(got.key, m[1].key);
    assert_int_equal(got.event_id, ev);
    assert_int_equal(got.kind, KP_NOTIFY_EARNED);
    assert_int_equal(got.channel, KP_CHANNEL_SMS);
    assert_int_equal(got.customer_id, 7);
    assert_int_equal(got.endpoint_id, 0);
    assert_int_equal(got.state, KP_MSG_PENDING);
    assert_int_equal(got.attempts, 0);
    assert_int_equal(got.created_at, NOW + 5);
    assert_int_equal(got.next_at, NOW + 3600);
    assert_int_equal(got.lease_until, 0);
    assert_int_equal(got.sent_at, 0);
    assert_string_equal(got.provider_id, "");
    assert_string_equal(got.last_error, "");
    assert_int_equal(got.sealed_len, strlen(sealed[1]));
    assert_memory_equal(got.sealed, sealed[1], got.sealed_len);
    kp_message_release(&got);
    got = get(f, m[2].id);
    assert_int_equal(got.endpoint_id, 4);
    assert_int_equal(got.channel, KP_CHANNEL_WEBHOOK);
    kp_message_release(&got);

    /* Dispatched already: KP_OK, nothing written, ids 0. */
    kp_message again[1];
    char s2[KP_NOTIFY_KEY_MAX + 16];
    message(&again[0], s2, sizeof s2, ev, KP_CHANNEL_EMAIL, 7, 0, NOW);
    snprintf(again[0].key, sizeof again[0].key, "%lld/other", (long long)ev);
    OK(f->s, f->n->event_dispatch(f->s, ev, again, 1, NOW + 9));
    assert_int_equal(again[0].id, 0);
    kp_message_filter all = {.state = -1};
    kp_message list[8];
    OK(f->s, f->n->messages_list(f->s, &all, 0, list, 8, &n));
    assert_int_equal(n, 3);
    release_messages(list, n);

    /* A message whose key is stored already is skipped; the rest is
     * stored and the event marked. */
    kp_message two[2];
    char s3[2][KP_NOTIFY_KEY_MAX + 16];
    message(&two[0], s3[0], sizeof s3[0], other, KP_CHANNEL_EMAIL, 7, 0, NOW);
    snprintf(two[0].key, sizeof two[0].key, "%s", m[0].key); /* taken */
    message(&two[1], s3[1], sizeof s3[1], other, KP_CHANNEL_SMS, 7, 0, NOW);
    OK(f->s, f->n->event_dispatch(f->s, other, two, 2, NOW));
    assert_int_equal(two[0].id, 0);
    assert_true(two[1].id > 0);
    assert_int_equal(pending_events(f, pend, 4), 0);

    /* Nobody to tell: the event is marked all the same. */
    int64_t lonely = event(f, "op:12", KP_NOTIFY_EARNED, 3, "{}");
    OK(f->s, f->n->event_dispatch(f->s, lonely, NULL, 0, NOW));
    assert_int_equal(pending_events(f, pend, 4), 0);

    /* No such event. */
    EXPECT(f->s, f->n->event_dispatch(f->s, lonely + 1000, two, 0, NOW), KP_ERR_NOT_FOUND);
    EXPECT(f->s, f->n->message_get(f->s, two[1].id + 1000, &got), KP_ERR_NOT_FOUND);

    /* Inside the caller's transaction: rolled back with it. */
    int64_t late = event(f, "op:13", KP_NOTIFY_EARNED, 3, "{}");
    begin(f);
    message(&two[0], s3[0], sizeof s3[0], late, KP_CHANNEL_EMAIL, 7, 0, NOW);
    OK(f->s, f->n->event_dispatch(f->s, late, two, 1, NOW));
    assert_true(two[0].id > 0);
    OK(f->s, f->o->rollback(f->s));
    assert_int_equal(pending_events(f, pend, 4), 1);
    release_events(pend, 1);
    EXPECT(f->s, f->n->message_get(f->s, two[0].id, &got), KP_ERR_NOT_FOUND);
}

static void test_claims_lease_due_messages_oldest_first(void **state)
{
    fx *f = *state;
    int64_t late = one_message(f, "op:1", KP_CHANNEL_EMAIL, 1, 0, NOW - 10);
    int64_t early = one_message(f, "op:2", KP_CHANNEL_SMS, 1, 0, NOW - 50);
    int64_t hook = one_message(f, "op:3", KP_CHANNEL_WEBHOOK, 0, 9, NOW - 30);
    int64_t future = one_message(f, "op:4", KP_CHANNEL_EMAIL, 1, 0, NOW + 60);
    int64_t now_due = one_message(f, "op:5", KP_CHANNEL_EMAIL, 2, 0, NOW);

    kp_message got[8];
    size_t n;
    OK(f->s, f->n->messages_claim(f->s, NOW, NOW + 120, 0, got, 2, &n));
    assert_int_equal(n, 2); /* the limit */
    assert_int_equal(got[0].id, early);
    assert_int_equal(got[1].id, hook);
    assert_int_equal(got[0].lease_until, NOW + 120);
    assert_int_equal(got[0].sealed_len, strlen("sealed:") + strlen(got[0].key));
    release_messages(got, n);

    /* Leased ones are not given again; not-yet-due ones are not given. */
    OK(f->s, f->n->messages_claim(f->s, NOW, NOW + 120, 0, got, 8, &n));
    assert_int_equal(n, 2);
    assert_int_equal(got[0].id, late);
    assert_int_equal(got[1].id, now_due);
    release_messages(got, n);
    OK(f->s, f->n->messages_claim(f->s, NOW + 100, NOW + 200, 0, got, 8, &n));
    assert_int_equal(n, 1); /* `future` is due now; the rest still leased */
    assert_int_equal(got[0].id, future);
    release_messages(got, n);
    kp_message m = get(f, early);
    assert_int_equal(m.lease_until, NOW + 120);
    kp_message_release(&m);

    /* A lease that ran out (lease_until < now) is claimable again. */
    OK(f->s, f->n->messages_claim(f->s, NOW + 120, NOW + 300, 0, got, 8, &n));
    assert_int_equal(n, 0); /* lease_until == now: still held */
    OK(f->s, f->n->messages_claim(f->s, NOW + 121, NOW + 300, KP_CHANNEL_EMAIL, got, 8, &n));
    assert_int_equal(n, 2); /* of one channel */
    assert_int_equal(got[0].id, late);
    assert_int_equal(got[1].id, now_due);
    release_messages(got, n);
    OK(f->s, f->n->messages_claim(f->s, NOW + 121, NOW + 300, 0, got, 8, &n));
    assert_int_equal(n, 2);
    assert_int_equal(got[0].id, early);
    assert_int_equal(got[1].id, hook);
    release_messages(got, n);
    OK(f->s, f->n->messages_claim(f->s, NOW + 121, NOW + 300, 0, got, 0, &n));
    assert_int_equal(n, 0);
}

static void test_two_connections_never_claim_the_same_message(void **state)
{
    fx *f = *state;
    enum { MSGS = 40 };
    for (int i = 0; i < MSGS; i++) {
        char key[32];
        snprintf(key, sizeof key, "op:%d", i + 1);
        one_message(f, key, i % 2 ? KP_CHANNEL_EMAIL : KP_CHANNEL_SMS, 1, 0, NOW - i);
    }
    kp_store *s2 = second(f);
    int64_t seen[MSGS];
    size_t n_seen = 0;
    for (int round = 0; round < 8; round++) {
        kp_store *s = round % 2 ? s2 : f->s;
        kp_message got[7];
        size_t n;
        OK(s, s->ops->notify->messages_claim(s, NOW, NOW + 60, 0, got, 7, &n));
        for (size_t i = 0; i < n; i++) {
            for (size_t j = 0; j < n_seen; j++) assert_int_not_equal(seen[j], got[i].id);
            assert_true(n_seen < MSGS);
            seen[n_seen++] = got[i].id;
        }
        release_messages(got, n);
    }
    assert_int_equal(n_seen, MSGS);
    kp_store_close(s2);
}

static void test_settle_records_outcomes_and_drops_leases(void **state)
{
    fx *f = *state;
    int64_t a = one_message(f, "op:1", KP_CHANNEL_EMAIL, 1, 0, NOW);
    int64_t b = one_message(f, "op:2", KP_CHANNEL_SMS, 1, 0, NOW);
    int64_t c = one_message(f, "op:3", KP_CHANNEL_WEBHOOK, 0, 2, NOW);
    kp_message got[4];
    size_t n;
    OK(f->s, f->n->messages_claim(f->s, NOW, NOW + 60, 0, got, 4, &n));
    assert_int_equal(n, 3);
    release_messages(got, n);

    kp_message_result r[4];
    memset(r, 0, sizeof r);
    r[0] = (kp_message_result){.id = a, .state = KP_MSG_SENT, .attempts = 1, .next_at = NOW,
                               .sent_at = NOW + 1};
    snprintf(r[0].provider_id, sizeof r[0].provider_id, "<a@mail>");
    r[1] = (kp_message_result){.id = b, .state = KP_MSG_PENDING, .attempts = 1,
                               .next_at = NOW + 30};
    snprintf(r[1].last_error, sizeof r[1].last_error, "gateway: 429 Too Many Requests");
    r[2] = (kp_message_result){.id = c, .state = KP_MSG_DEAD, .attempts = 8, .next_at = NOW};
    snprintf(r[2].last_error, sizeof r[2].last_error, "410 Gone");
    r[3] = (kp_message_result){.id = c + 1000, .state = KP_MSG_SENT}; /* unknown: skipped */
    OK(f->s, f->n->messages_settle(f->s, r, 4));

    kp_message m = get(f, a);
    assert_int_equal(m.state, KP_MSG_SENT);
    assert_int_equal(m.attempts, 1);
    assert_int_equal(m.sent_at, NOW + 1);
    assert_int_equal(m.lease_until, 0);
    assert_string_equal(m.provider_id, "<a@mail>");
    kp_message_release(&m);
    m = get(f, b);
    assert_int_equal(m.state, KP_MSG_PENDING);
    assert_int_equal(m.attempts, 1);
    assert_int_equal(m.next_at, NOW + 30);
    assert_int_equal(m.lease_until, 0);
    assert_string_equal(m.last_error, "gateway: 429 Too Many Requests");
    kp_message_release(&m);
    m = get(f, c);
    assert_int_equal(m.state, KP_MSG_DEAD);
    assert_int_equal(m.attempts, 8);
    assert_string_equal(m.last_error, "410 Gone");
    kp_message_release(&m);

    /* The pending one comes back at its next_at, not before; sent and
     * dead ones never. */
    OK(f->s, f->n->messages_claim(f->s, NOW + 29, NOW + 90, 0, got, 4, &n));
    assert_int_equal(n, 0);
    OK(f->s, f->n->messages_claim(f->s, NOW + 30, NOW + 90, 0, got, 4, &n));
    assert_int_equal(n, 1);
    assert_int_equal(got[0].id, b);
    assert_int_equal(got[0].attempts, 1);
    release_messages(got, n);
    OK(f->s, f->n->messages_settle(f->s, r, 0));
}

static void test_retry_makes_a_message_pending_again(void **state)
{
    fx *f = *state;
    int64_t a = one_message(f, "op:1", KP_CHANNEL_WEBHOOK, 0, 3, NOW);
    kp_message_result r = {.id = a, .state = KP_MSG_DEAD, .attempts = 8, .next_at = NOW};
    snprintf(r.last_error, sizeof r.last_error, "500");
    OK(f->s, f->n->messages_settle(f->s, &r, 1));
    OK(f->s, f->n->message_retry(f->s, a, NOW + 500));
    kp_message m = get(f, a);
    assert_int_equal(m.state, KP_MSG_PENDING);
    assert_int_equal(m.attempts, 0);
    assert_int_equal(m.next_at, NOW + 500);
    assert_int_equal(m.lease_until, 0);
    kp_message_release(&m);
    kp_message got[2];
    size_t n;
    OK(f->s, f->n->messages_claim(f->s, NOW + 500, NOW + 560, 0, got, 2, &n));
    assert_int_equal(n, 1);
    release_messages(got, n);
    /* A leased one: the lease is dropped. */
    OK(f->s, f->n->message_retry(f->s, a, NOW + 501));
    OK(f->s, f->n->messages_claim(f->s, NOW + 501, NOW + 560, 0, got, 2, &n));
    assert_int_equal(n, 1);
    release_messages(got, n);
    EXPECT(f->s, f->n->message_retry(f->s, a + 1000, NOW), KP_ERR_NOT_FOUND);
}

static void test_cancel_takes_a_customers_pending_messages_of_channels_and_kinds(void **state)
{
    fx *f = *state;
    int64_t email = one_message(f, "op:1", KP_CHANNEL_EMAIL, 1, 0, NOW);
    int64_t sms = one_message(f, "op:2", KP_CHANNEL_SMS, 1, 0, NOW);
    int64_t sent = one_message(f, "op:3", KP_CHANNEL_EMAIL, 1, 0, NOW);
    int64_t others = one_message(f, "op:4", KP_CHANNEL_EMAIL, 2, 0, NOW);
    kp_message_result r = {.id = sent, .state = KP_MSG_SENT, .attempts = 1, .sent_at = NOW};
    OK(f->s, f->n->messages_settle(f->s, &r, 1));

    int64_t n = -1;
    /* A kind none of them is: nothing. */
    OK(f->s, f->n->messages_cancel(f->s, 1, 1u << KP_CHANNEL_EMAIL | 1u << KP_CHANNEL_SMS,
                                   1u << KP_NOTIFY_CAMPAIGN, &n));
    assert_int_equal(n, 0);
    OK(f->s, f->n->messages_cancel(f->s, 1, 1u << KP_CHANNEL_EMAIL, 1u << KP_NOTIFY_EARNED, &n));
    assert_int_equal(n, 1);
    kp_message m = get(f, email);
    assert_int_equal(m.state, KP_MSG_CANCELLED);
    kp_message_release(&m);
    m = get(f, sms);
    assert_int_equal(m.state, KP_MSG_PENDING);
    kp_message_release(&m);
    m = get(f, sent);
    assert_int_equal(m.state, KP_MSG_SENT);
    kp_message_release(&m);
    OK(f->s, f->n->messages_cancel(f->s, 1, 1u << KP_CHANNEL_SMS, 0, &n));
    assert_int_equal(n, 1);
    m = get(f, others);
    assert_int_equal(m.state, KP_MSG_PENDING);
    kp_message_release(&m);
    /* Cancelled ones are never claimed. */
    kp_message got[4];
    size_t k;
    OK(f->s, f->n->messages_claim(f->s, NOW, NOW + 60, 0, got, 4, &k));
    assert_int_equal(k, 1);
    assert_int_equal(got[0].id, others);
    release_messages(got, k);
    /* A failed attempt settled after the cancel leaves it cancelled. */
    OK(f->s, f->n->messages_cancel(f->s, 2, 1u << KP_CHANNEL_EMAIL, 0, &n));
    assert_int_equal(n, 1);
    r = (kp_message_result){.id = others, .state = KP_MSG_PENDING, .attempts = 1,
                            .next_at = NOW + 30};
    OK(f->s, f->n->messages_settle(f->s, &r, 1));
    m = get(f, others);
    assert_int_equal(m.state, KP_MSG_CANCELLED);
    kp_message_release(&m);
}

static void test_erase_drops_a_customers_texts_and_cancels_the_pending(void **state)
{
    fx *f = *state;
    int64_t pending = one_message(f, "op:1", KP_CHANNEL_EMAIL, 1, 0, NOW);
    int64_t sent = one_message(f, "op:2", KP_CHANNEL_SMS, 1, 0, NOW);
    int64_t other = one_message(f, "op:3", KP_CHANNEL_EMAIL, 2, 0, NOW);
    kp_message_result r = {.id = sent, .state = KP_MSG_SENT, .attempts = 1, .sent_at = NOW + 1};
    OK(f->s, f->n->messages_settle(f->s, &r, 1));
    int64_t n = -1;
    OK(f->s, f->n->messages_erase(f->s, 1, &n));
    assert_int_equal(n, 2);
    kp_message m = get(f, pending);
    assert_int_equal(m.state, KP_MSG_CANCELLED);
    assert_int_equal(m.sealed_len, 0);
    assert_int_equal(m.created_at, NOW); /* the record stays */
    kp_message_release(&m);
    m = get(f, sent);
    assert_int_equal(m.state, KP_MSG_SENT);
    assert_int_equal(m.sent_at, NOW + 1);
    assert_int_equal(m.sealed_len, 0);
    kp_message_release(&m);
    m = get(f, other);
    assert_int_equal(m.state, KP_MSG_PENDING);
    assert_true(m.sealed_len > 0);
    kp_message_release(&m);
    /* Nothing to send again. */
    EXPECT(f->s, f->n->message_retry(f->s, sent, NOW + 5), KP_ERR_CONFLICT);
    OK(f->s, f->n->messages_erase(f->s, 77, &n));
    assert_int_equal(n, 0);
}

static void test_messages_list_filters_newest_first_and_pages(void **state)
{
    fx *f = *state;
    int64_t e1 = one_message(f, "op:1", KP_CHANNEL_EMAIL, 1, 0, NOW);
    int64_t s1 = one_message(f, "op:2", KP_CHANNEL_SMS, 1, 0, NOW);
    int64_t e2 = one_message(f, "op:3", KP_CHANNEL_EMAIL, 2, 0, NOW);
    int64_t w1 = one_message(f, "op:4", KP_CHANNEL_WEBHOOK, 0, 5, NOW);
    int64_t w2 = one_message(f, "op:5", KP_CHANNEL_WEBHOOK, 0, 6, NOW);
    kp_message_result r = {.id = s1, .state = KP_MSG_DEAD, .attempts = 8};
    OK(f->s, f->n->messages_settle(f->s, &r, 1));
    kp_message got[8];
    size_t n;
#define LIST(filter, before, ...)                                                                  \
    do {                                                                                           \
        kp_message_filter fl = filter;                                                             \
        const int64_t want[] = {__VA_ARGS__};                                                      \
        OK(f->s, f->n->messages_list(f->s, &fl, before, got, 8, &n));                              \
        assert_int_equal(n, sizeof want / sizeof want[0] - 1);                                     \
        for (size_t i = 0; i < n; i++) assert_int_equal(got[i].id, want[i + 1]);                   \
        release_messages(got, n);                                                                  \
    } while (0)
    LIST(((kp_message_filter){.state = -1}), 0, 0, w2, w1, e2, s1, e1);
    LIST(((kp_message_filter){.state = -1}), w1, 0, e2, s1, e1);
    LIST(((kp_message_filter){.customer_id = 1, .state = -1}), 0, 0, s1, e1);
    LIST(((kp_message_filter){.customer_id = 1, .state = KP_MSG_PENDING}), 0, 0, e1);
    LIST(((kp_message_filter){.state = KP_MSG_DEAD}), 0, 0, s1);
    LIST(((kp_message_filter){.state = -1, .channel = KP_CHANNEL_EMAIL}), 0, 0, e2, e1);
    LIST(((kp_message_filter){.endpoint_id = 6, .state = -1}), 0, 0, w2);
    kp_message m = get(f, w1);
    int64_t ev = m.event_id;
    kp_message_release(&m);
    LIST(((kp_message_filter){.event_id = ev, .state = -1}), 0, 0, w1);
    LIST(((kp_message_filter){.customer_id = 9, .state = -1}), 0, 0);
#undef LIST
    /* The limit is kept. */
    kp_message_filter all = {.state = -1};
    OK(f->s, f->n->messages_list(f->s, &all, 0, got, 2, &n));
    assert_int_equal(n, 2);
    assert_int_equal(got[0].id, w2);
    release_messages(got, n);
}

static void test_outbox_stats_count_events_and_messages(void **state)
{
    fx *f = *state;
    kp_outbox_stats st;
    OK(f->s, f->n->outbox_stats(f->s, &st));
    assert_int_equal(st.events_pending, 0);
    assert_int_equal(st.oldest_event_at, 0);
    assert_int_equal(st.oldest_pending_at, 0);
    one_message(f, "op:1", KP_CHANNEL_EMAIL, 1, 0, NOW);
    int64_t b = one_message(f, "op:2", KP_CHANNEL_EMAIL, 1, 0, NOW);
    one_message(f, "op:3", KP_CHANNEL_WEBHOOK, 0, 1, NOW);
    kp_notify_event ev;
    memset(&ev, 0, sizeof ev);
    snprintf(ev.key, sizeof ev.key, "op:4");
    ev.kind = KP_NOTIFY_BURNT;
    ev.at = NOW - 40;
    OK(f->s, f->n->event_insert(f->s, &ev));
    kp_message_result r = {.id = b, .state = KP_MSG_SENT, .attempts = 1, .sent_at = NOW};
    OK(f->s, f->n->messages_settle(f->s, &r, 1));
    OK(f->s, f->n->outbox_stats(f->s, &st));
    assert_int_equal(st.events_pending, 1);
    assert_int_equal(st.oldest_event_at, NOW - 40);
    assert_int_equal(st.by_state[KP_MSG_PENDING][KP_CHANNEL_EMAIL], 1);
    assert_int_equal(st.by_state[KP_MSG_SENT][KP_CHANNEL_EMAIL], 1);
    assert_int_equal(st.by_state[KP_MSG_PENDING][KP_CHANNEL_WEBHOOK], 1);
    assert_int_equal(st.by_state[KP_MSG_PENDING][KP_CHANNEL_SMS], 0);
    assert_int_equal(st.by_state[KP_MSG_DEAD][KP_CHANNEL_EMAIL], 0);
    assert_int_equal(st.oldest_pending_at, NOW);
}

static void test_prefs_round_trip_and_replace(void **state)
{
    fx *f = *state;
    kp_notify_prefs p;
    EXPECT(f->s, f->n->prefs_get(f->s, 4, &p), KP_ERR_NOT_FOUND);
    kp_notify_prefs w = {.customer_id = 4, .has_utc_offset = true, .utc_offset_minutes = -330,
                         .transactional = 1u << KP_CHANNEL_SMS,
                         .marketing = 1u << KP_CHANNEL_EMAIL | 1u << KP_CHANNEL_SMS,
                         .marketing_consent_at = NOW - 5, .updated_at = NOW};
    snprintf(w.language, sizeof w.language, "en");
    snprintf(w.marketing_consent_version, sizeof w.marketing_consent_version, "2026-05");
    OK(f->s, f->n->prefs_put(f->s, &w));
    OK(f->s, f->n->prefs_get(f->s, 4, &p));
    assert_int_equal(p.customer_id, 4);
    assert_string_equal(p.language, "en");
    assert_true(p.has_utc_offset);
    assert_int_equal(p.utc_offset_minutes, -330);
    assert_int_equal(p.transactional, 1u << KP_CHANNEL_SMS);
    assert_int_equal(p.marketing, 1u << KP_CHANNEL_EMAIL | 1u << KP_CHANNEL_SMS);
    assert_int_equal(p.marketing_consent_at, NOW - 5);
    assert_string_equal(p.marketing_consent_version, "2026-05");
    assert_int_equal(p.updated_at, NOW);
    /* Replaced whole: no offset, no consent, no channels. */
    kp_notify_prefs w2 = {.customer_id = 4, .updated_at = NOW + 1};
    OK(f->s, f->n->prefs_put(f->s, &w2));
    OK(f->s, f->n->prefs_get(f->s, 4, &p));
    assert_string_equal(p.language, "");
    assert_false(p.has_utc_offset);
    assert_int_equal(p.transactional, 0);
    assert_int_equal(p.marketing, 0);
    assert_int_equal(p.marketing_consent_at, 0);
    assert_string_equal(p.marketing_consent_version, "");
    assert_int_equal(p.updated_at, NOW + 1);
    EXPECT(f->s, f->n->prefs_get(f->s, 5, &p), KP_ERR_NOT_FOUND);
}

static void template_put(fx *f, kp_notify_kind kind, kp_channel channel, const char *language,
                         const char *text)
{
    kp_template_row t = {.kind = kind, .channel = channel, .updated_at = NOW};
    snprintf(t.language, sizeof t.language, "%s", language);
    snprintf(t.actor, sizeof t.actor, "admin");
    t.subject = channel == KP_CHANNEL_EMAIL ? "Subject {{points}}" : "";
    t.text = (char *)text;
    t.html = channel == KP_CHANNEL_EMAIL ? "<p>{{points}}</p>" : "";
    OK(f->s, f->n->template_put(f->s, &t));
}

static void test_templates_round_trip_list_and_delete(void **state)
{
    fx *f = *state;
    kp_template_row t;
    EXPECT(f->s, f->n->template_get(f->s, KP_NOTIFY_EARNED, KP_CHANNEL_SMS, "ru", &t),
           KP_ERR_NOT_FOUND);
    template_put(f, KP_NOTIFY_EARNED, KP_CHANNEL_SMS, "ru", "+{{points}}");
    template_put(f, KP_NOTIFY_EARNED, KP_CHANNEL_EMAIL, "ru", "Earned {{points}}");
    template_put(f, KP_NOTIFY_EARNED, KP_CHANNEL_SMS, "en", "+{{points}} pts");
    template_put(f, KP_NOTIFY_WELCOME, KP_CHANNEL_SMS, "en", "Welcome");
    OK(f->s, f->n->template_get(f->s, KP_NOTIFY_EARNED, KP_CHANNEL_EMAIL, "ru", &t));
    assert_int_equal(t.kind, KP_NOTIFY_EARNED);
    assert_int_equal(t.channel, KP_CHANNEL_EMAIL);
    assert_string_equal(t.language, "ru");
    assert_string_equal(t.subject, "Subject {{points}}");
    assert_string_equal(t.text, "Earned {{points}}");
    assert_string_equal(t.html, "<p>{{points}}</p>");
    assert_int_equal(t.updated_at, NOW);
    assert_string_equal(t.actor, "admin");
    kp_template_row_release(&t);
    /* Replaced. */
    template_put(f, KP_NOTIFY_EARNED, KP_CHANNEL_SMS, "ru", "Plus {{points}}");
    OK(f->s, f->n->template_get(f->s, KP_NOTIFY_EARNED, KP_CHANNEL_SMS, "ru", &t));
    assert_string_equal(t.text, "Plus {{points}}");
    assert_string_equal(t.subject, "");
    kp_template_row_release(&t);

    kp_template_row list[8];
    size_t n;
    OK(f->s, f->n->templates_list(f->s, list, 8, &n));
    assert_int_equal(n, 4); /* by kind, channel, language */
    assert_true(list[0].kind == KP_NOTIFY_EARNED && list[0].channel == KP_CHANNEL_EMAIL);
    assert_true(list[1].channel == KP_CHANNEL_SMS && strcmp(list[1].language, "en") == 0);
    assert_true(list[2].channel == KP_CHANNEL_SMS && strcmp(list[2].language, "ru") == 0);
    assert_int_equal(list[3].kind, KP_NOTIFY_WELCOME);
    for (size_t i = 0; i < n; i++) kp_template_row_release(&list[i]);
    OK(f->s, f->n->templates_list(f->s, list, 1, &n));
    assert_int_equal(n, 1);
    kp_template_row_release(&list[0]);

    OK(f->s, f->n->template_delete(f->s, KP_NOTIFY_EARNED, KP_CHANNEL_SMS, "ru"));
    EXPECT(f->s, f->n->template_get(f->s, KP_NOTIFY_EARNED, KP_CHANNEL_SMS, "ru", &t),
           KP_ERR_NOT_FOUND);
    OK(f->s, f->n->template_delete(f->s, KP_NOTIFY_EARNED, KP_CHANNEL_SMS, "ru")); /* none: OK */
    OK(f->s, f->n->templates_list(f->s, list, 8, &n));
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) kp_template_row_release(&list[i]);
}

static void test_endpoints_round_trip_update_and_list(void **state)
{
    fx *f = *state;
    kp_webhook_endpoint ep = {.kinds = 1u << KP_NOTIFY_EARNED | 1u << KP_NOTIFY_BURNT,
                              .active = true, .created_at = NOW, .updated_at = NOW};
    snprintf(ep.url, sizeof ep.url, "https://crm.example/hooks/kopilka");
    snprintf(ep.description, sizeof ep.description, "CRM");
    ep.secret.len = 60;
    for (size_t i = 0; i < ep.secret.len; i++) ep.secret.data[i] = (uint8_t)(i * 7);
    OK(f->s, f->n->endpoint_insert(f->s, &ep));
    assert_true(ep.id > 0);
    kp_webhook_endpoint all = {.active = false, .created_at = NOW + 1, .updated_at = NOW + 1};
    snprintf(all.url, sizeof all.url, "http://1c.local/in");
    all.secret.len = 1;
    OK(f->s, f->n->endpoint_insert(f->s, &all));
    assert_true(all.id > ep.id);

    kp_webhook_endpoint got;
    OK(f->s, f->n->endpoint_get(f->s, ep.id, &got));
    assert_int_equal(got.id, ep.id);
    assert_string_equal(got.url, ep.url);
    assert_string_equal(got.description, "CRM");
    assert_int_equal(got.kinds, ep.kinds);
    assert_true(got.active);
    assert_int_equal(got.secret.len, 60);
    assert_memory_equal(got.secret.data, ep.secret.data, 60);
    assert_int_equal(got.created_at, NOW);

    ep.active = false;
    ep.kinds = 0;
    ep.updated_at = NOW + 9;
    ep.secret.len = 3;
    snprintf(ep.url, sizeof ep.url, "https://crm.example/v2");
    OK(f->s, f->n->endpoint_update(f->s, &ep));
    OK(f->s, f->n->endpoint_get(f->s, ep.id, &got));
    assert_false(got.active);
    assert_int_equal(got.kinds, 0);
    assert_string_equal(got.url, "https://crm.example/v2");
    assert_int_equal(got.secret.len, 3);
    assert_int_equal(got.updated_at, NOW + 9);
    assert_int_equal(got.created_at, NOW);

    kp_webhook_endpoint list[4];
    size_t n;
    OK(f->s, f->n->endpoints_list(f->s, list, 4, &n));
    assert_int_equal(n, 2);
    assert_int_equal(list[0].id, ep.id);
    assert_int_equal(list[1].id, all.id);
    assert_false(list[1].active);
    OK(f->s, f->n->endpoints_list(f->s, list, 1, &n));
    assert_int_equal(n, 1);

    kp_webhook_endpoint missing = ep;
    missing.id = all.id + 100;
    EXPECT(f->s, f->n->endpoint_update(f->s, &missing), KP_ERR_NOT_FOUND);
    EXPECT(f->s, f->n->endpoint_get(f->s, missing.id, &got), KP_ERR_NOT_FOUND);
}

static void test_login_codes_count_attempts_expire_and_are_used_once(void **state)
{
    fx *f = *state;
    uint8_t right[32], wrong[32], other[32];
    memset(right, 0xa1, sizeof right);
    memset(wrong, 0x5c, sizeof wrong);
    memset(other, 0x33, sizeof other);
    bool ok = true;
    EXPECT(f->s, f->n->login_code_check(f->s, 8, right, NOW, 5, &ok), KP_ERR_NOT_FOUND);

    OK(f->s, f->n->login_code_put(f->s, 8, right, NOW + 300, NOW));
    OK(f->s, f->n->login_code_check(f->s, 8, wrong, NOW + 1, 3, &ok));
    assert_false(ok);
    OK(f->s, f->n->login_code_check(f->s, 8, right, NOW + 2, 3, &ok));
    assert_true(ok);
    /* Used up. */
    EXPECT(f->s, f->n->login_code_check(f->s, 8, right, NOW + 3, 3, &ok), KP_ERR_NOT_FOUND);

    /* Attempts run out: the right code no longer opens. */
    OK(f->s, f->n->login_code_put(f->s, 8, right, NOW + 300, NOW));
    for (int i = 0; i < 3; i++) {
        OK(f->s, f->n->login_code_check(f->s, 8, wrong, NOW + 1, 3, &ok));
        assert_false(ok);
    }
    EXPECT(f->s, f->n->login_code_check(f->s, 8, right, NOW + 2, 3, &ok), KP_ERR_NOT_FOUND);
    /* A new code replaces it, attempts back to 0. */
    OK(f->s, f->n->login_code_put(f->s, 8, other, NOW + 300, NOW + 10));
    OK(f->s, f->n->login_code_check(f->s, 8, wrong, NOW + 11, 3, &ok));
    assert_false(ok);
    OK(f->s, f->n->login_code_check(f->s, 8, right, NOW + 11, 3, &ok)); /* the old code */
    assert_false(ok);
    OK(f->s, f->n->login_code_check(f->s, 8, other, NOW + 12, 3, &ok));
    assert_true(ok);

    /* Expired at expires_at. */
    OK(f->s, f->n->login_code_put(f->s, 9, right, NOW + 300, NOW));
    EXPECT(f->s, f->n->login_code_check(f->s, 9, right, NOW + 300, 5, &ok), KP_ERR_NOT_FOUND);
    OK(f->s, f->n->login_code_check(f->s, 9, right, NOW + 299, 5, &ok));
    assert_true(ok);

    /* Inside a transaction, a miss counts when it commits. */
    OK(f->s, f->n->login_code_put(f->s, 10, right, NOW + 300, NOW));
    begin(f);
    OK(f->s, f->n->login_code_check(f->s, 10, wrong, NOW, 2, &ok));
    assert_false(ok);
    commit(f);
    OK(f->s, f->n->login_code_check(f->s, 10, wrong, NOW, 2, &ok));
    EXPECT(f->s, f->n->login_code_check(f->s, 10, right, NOW, 2, &ok), KP_ERR_NOT_FOUND);
}

static void test_customer_sessions_insert_find_expire_delete(void **state)
{
    fx *f = *state;
    uint8_t a[32], b[32];
    memset(a, 1, sizeof a);
    memset(b, 2, sizeof b);
    int64_t customer = 0;
    kp_time expires = 0;
    EXPECT(f->s, f->n->customer_session_find(f->s, a, NOW, &customer, &expires),
           KP_ERR_NOT_FOUND);
    OK(f->s, f->n->customer_session_insert(f->s, a, 42, NOW, NOW + 3600));
    OK(f->s, f->n->customer_session_insert(f->s, b, 43, NOW, NOW + 60));
    EXPECT(f->s, f->n->customer_session_insert(f->s, a, 44, NOW, NOW + 3600), KP_ERR_CONFLICT);
    OK(f->s, f->n->customer_session_find(f->s, a, NOW + 10, &customer, &expires));
    assert_int_equal(customer, 42);
    assert_int_equal(expires, NOW + 3600);
    EXPECT(f->s, f->n->customer_session_find(f->s, b, NOW + 60, &customer, &expires),
           KP_ERR_NOT_FOUND);
    OK(f->s, f->n->customer_session_find(f->s, b, NOW + 59, &customer, &expires));
    assert_int_equal(customer, 43);
    OK(f->s, f->n->customer_session_delete(f->s, a));
    EXPECT(f->s, f->n->customer_session_find(f->s, a, NOW + 10, &customer, &expires),
           KP_ERR_NOT_FOUND);
    OK(f->s, f->n->customer_session_delete(f->s, a)); /* unknown: OK */
    /* An erased customer's sessions all end; another's stay. */
    uint8_t c[32];
    memset(c, 3, sizeof c);
    OK(f->s, f->n->customer_session_insert(f->s, a, 43, NOW, NOW + 3600));
    OK(f->s, f->n->customer_session_insert(f->s, c, 45, NOW, NOW + 3600));
    OK(f->s, f->n->customer_sessions_end(f->s, 43));
    EXPECT(f->s, f->n->customer_session_find(f->s, a, NOW + 10, &customer, &expires),
           KP_ERR_NOT_FOUND);
    EXPECT(f->s, f->n->customer_session_find(f->s, b, NOW + 10, &customer, &expires),
           KP_ERR_NOT_FOUND);
    OK(f->s, f->n->customer_session_find(f->s, c, NOW + 10, &customer, &expires));
    assert_int_equal(customer, 45);
    OK(f->s, f->n->customer_sessions_end(f->s, 43)); /* none left: OK */
}

static void test_expiring_between_sums_open_lots_in_the_window(void **state)
{
    fx *f = *state;
    begin(f);
    int64_t a = account_with_lot(f, "a", 100, NOW + 5 * DAY);
    int64_t b = account_with_lot(f, "b", 40, NOW + 7 * DAY); /* at `to`: outside */
    int64_t c = account_with_lot(f, "c", 30, NOW + 2 * DAY);
    int64_t d = account_with_lot(f, "d", 20, KP_TIME_NEVER);
    int64_t e = account_with_lot(f, "e", 0, 0); /* no lots at all */
    int64_t g = account_with_lot(f, "g", 10, NOW + 1 * DAY); /* at `from`: inside */
    commit(f);
    (void)d;
    (void)e;
    /* A second lot of `a`, earlier, in the window. */
    begin(f);
    plan_earn(f, a, KP_OP_ADJUST, KP_SYS_ADJUSTMENT, 15, "bonus", NOW, NOW + 3 * DAY, false);
    kp_ledger_plan *p = f->plan;
    kp_op_row row;
    memset(&row, 0, sizeof row);
    row.type = KP_OP_ADJUST;
    row.account_id = a;
    snprintf(row.card, sizeof row.card, "C-a");
    row.program_version = 1;
    row.at = NOW;
    row.points = row.earned = 15;
    OK(f->s, f->o->op_insert_apply(f->s, &row, p, NOW));
    commit(f);

    kp_expiring_row got[8];
    size_t n;
    OK(f->s, f->n->expiring_between(f->s, NOW + 1 * DAY, NOW + 7 * DAY, 0, got, 8, &n));
    assert_int_equal(n, 3);
    assert_int_equal(got[0].account_id, a);
    assert_int_equal(got[0].points, 115);
    assert_int_equal(got[0].first_at, NOW + 3 * DAY);
    assert_int_equal(got[1].account_id, c);
    assert_int_equal(got[1].points, 30);
    assert_int_equal(got[2].account_id, g);
    assert_int_equal(got[2].first_at, NOW + 1 * DAY);
    /* Pages by account, exclusive; the limit is kept. */
    OK(f->s, f->n->expiring_between(f->s, NOW + 1 * DAY, NOW + 7 * DAY, a, got, 1, &n));
    assert_int_equal(n, 1);
    assert_int_equal(got[0].account_id, c);
    OK(f->s, f->n->expiring_between(f->s, NOW + 7 * DAY, NOW + 8 * DAY, 0, got, 8, &n));
    assert_int_equal(n, 1);
    assert_int_equal(got[0].account_id, b);
    OK(f->s, f->n->expiring_between(f->s, NOW + 8 * DAY, NOW + 9 * DAY, 0, got, 8, &n));
    assert_int_equal(n, 0);
}

/* An operation row of a purchase on account a. */
static void purchase_row(kp_op_row *row, int64_t a, const char *receipt)
{
    memset(row, 0, sizeof *row);
    row->type = KP_OP_PURCHASE;
    row->account_id = a;
    snprintf(row->card, sizeof row->card, "C-p");
    snprintf(row->store, sizeof row->store, "shop");
    snprintf(row->receipt, sizeof row->receipt, "%s", receipt);
    row->program_version = 1;
    row->at = NOW;
    row->amount_minor = row->paid_minor = 1000;
}

static void test_op_insert_writes_the_operations_event(void **state)
{
    fx *f = *state;
    begin(f);
    int64_t a = account_with_lot(f, "p", 0, 0);
    commit(f);

    /* Without an event: none written. */
    kp_op_row row;
    purchase_row(&row, a, "r-0");
    OK(f->s, f->o->op_insert(f->s, &row));
    kp_notify_event got[4];
    assert_int_equal(pending_events(f, got, 4), 0);

    /* op_insert with one: key "op:<id>", op_id the operation's. */
    kp_notify_event ev;
    memset(&ev, 0, sizeof ev);
    snprintf(ev.key, sizeof ev.key, "ignored");
    ev.kind = KP_NOTIFY_EARNED;
    ev.account_id = a;
    snprintf(ev.card, sizeof ev.card, "C-p");
    ev.at = NOW;
    ev.payload = (uint8_t *)"{\"earned\":12}";
    ev.payload_len = strlen("{\"earned\":12}");
    purchase_row(&row, a, "r-1");
    row.notify = &ev;
    begin(f);
    OK(f->s, f->o->op_insert(f->s, &row));
    commit(f);
    assert_true(ev.id > 0);
    assert_int_equal(ev.op_id, row.id);
    char want[32];
    snprintf(want, sizeof want, "op:%lld", (long long)row.id);
    assert_string_equal(ev.key, want);
    size_t n = pending_events(f, got, 4);
    assert_int_equal(n, 1);
    assert_int_equal(got[0].id, ev.id);
    assert_string_equal(got[0].key, want);
    assert_int_equal(got[0].op_id, row.id);
    assert_int_equal(got[0].account_id, a);
    assert_memory_equal(got[0].payload, "{\"earned\":12}", got[0].payload_len);
    release_events(got, n);

    /* op_insert_apply with one, in a savepoint rolled back: neither stays. */
    plan_earn(f, a, KP_OP_PURCHASE, KP_SYS_ISSUED, 12, "regular", NOW, NOW + 365 * DAY, false);
    kp_ledger_plan *p = f->plan;
    purchase_row(&row, a, "r-2");
    row.points = row.earned = 12;
    memset(&ev, 0, sizeof ev);
    ev.kind = KP_NOTIFY_EARNED;
    ev.account_id = a;
    ev.at = NOW;
    row.notify = &ev;
    begin(f);
    OK(f->s, f->o->savepoint(f->s));
    OK(f->s, f->o->op_insert_apply(f->s, &row, p, NOW));
    assert_true(ev.id > 0);
    OK(f->s, f->o->rollback_to(f->s));
    commit(f);
    assert_int_equal(pending_events(f, got, 4), 1);
    release_events(got, 1);

    /* ... and kept. */
    begin(f);
    OK(f->s, f->o->op_insert_apply(f->s, &row, p, NOW));
    commit(f);
    assert_true(ev.id > 0);
    assert_int_equal(ev.op_id, row.id);
    n = pending_events(f, got, 4);
    assert_int_equal(n, 2);
    assert_int_equal(got[1].id, ev.id);
    assert_int_equal(got[1].op_id, row.id);
    release_events(got, n);
    OK(f->s, f->o->account_load(f->s, a, f->acct));
    assert_int_equal(f->acct->balance, 12);

    /* A database with outbox rows still verifies. */
    kp_message m;
    char sealed[KP_NOTIFY_KEY_MAX + 16];
    message(&m, sealed, sizeof sealed, ev.id, KP_CHANNEL_EMAIL, 1, 0, NOW);
    OK(f->s, f->n->event_dispatch(f->s, ev.id, &m, 1, NOW));
    assert_verifies_clean(f);
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* What an event costs a purchase: op_insert_apply of an earning purchase,
 * groups of 100 per transaction as the server's writer runs them, without
 * and with row->notify. Printed, not asserted (the machine decides). */
static void test_timing_of_an_event_on_the_till_path(void **state)
{
    fx *f = *state;
    enum { ROUNDS = 3, PURCHASES = 1000, GROUP = 100 };
    begin(f);
    int64_t a = account_with_lot(f, "t", 0, 0);
    commit(f);
    static const char payload[] =
        "{\"earned\":12,\"burnt\":0,\"balance\":1200,\"amount_minor\":100000,\"store\":\"shop\"}";
    double best[2] = {1e9, 1e9};
    int serial = 0;
    for (int round = 0; round < ROUNDS; round++) {
        for (int with = 0; with < 2; with++) {
            struct timespec t0;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            for (int i = 0; i < PURCHASES; i++) {
                if (i % GROUP == 0) begin(f);
                /* Into the one lot: the account stays one row of lots. */
                plan_earn(f, a, KP_OP_PURCHASE, KP_SYS_ISSUED, 12, "regular", NOW, KP_TIME_NEVER,
                          true);
                kp_ledger_plan *p = f->plan;
                kp_op_row row;
                char receipt[32];
                snprintf(receipt, sizeof receipt, "t-%d", ++serial);
                purchase_row(&row, a, receipt);
                row.points = row.earned = 12;
                kp_notify_event ev;
                memset(&ev, 0, sizeof ev);
                ev.kind = KP_NOTIFY_EARNED;
                ev.account_id = a;
                snprintf(ev.card, sizeof ev.card, "C-t");
                ev.at = NOW;
                ev.payload = (uint8_t *)payload;
                ev.payload_len = sizeof payload - 1;
                row.notify = with ? &ev : NULL;
                OK(f->s, f->o->op_insert_apply(f->s, &row, p, NOW));
                if (i % GROUP == GROUP - 1) commit(f);
            }
            double s = seconds_since(&t0);
            if (s < best[with]) best[with] = s;
        }
    }
    printf("TIMING %s: %d purchases (op_insert_apply + account_load, %d per transaction), "
           "best of %d: without an event %.1f us each, with one %.1f us each (+%.1f us)\n",
           fixture_is_pg() ? "pg" : "sqlite", PURCHASES, GROUP, ROUNDS,
           best[0] * 1e6 / PURCHASES, best[1] * 1e6 / PURCHASES,
           (best[1] - best[0]) * 1e6 / PURCHASES);
    kp_outbox_stats st;
    OK(f->s, f->n->outbox_stats(f->s, &st));
    assert_int_equal(st.events_pending, ROUNDS * PURCHASES);
}

/* A database made before the outbox gains its tables at the next open. */
static void test_an_older_database_gains_the_outbox_tables(void **state)
{
    fx *f = *state;
    FIXTURE_SQLITE_ONLY("drops SQLite tables to make a file of an older version");
    kp_store_close(f->s);
    f->s = NULL;
    char why[256] = "";
    int rc = fixture_exec(f->location,
                          "DROP TABLE notify_events; DROP TABLE messages; DROP TABLE notify_prefs;"
                          "DROP TABLE notify_templates; DROP TABLE webhook_endpoints;"
                          "DROP TABLE login_codes; DROP TABLE customer_sessions;"
                          "DELETE FROM meta WHERE key = 'notify_schema';",
                          why, sizeof why);
    if (rc) print_error("%s\n", why);
    assert_int_equal(rc, 0);
    kp_error e = {0};
    kp_err err = kp_store_open(f->location, false, &f->s, &e);
    if (err) print_error("reopen: %s\n", e.message);
    assert_int_equal(err, KP_OK);
    f->o = f->s->ops;
    f->n = f->o->notify;
    assert_int_equal(fixture_query_int64(f->location,
                                         "SELECT value FROM meta WHERE key = 'notify_schema'"),
                     1);
    assert_true(event(f, "op:1", KP_NOTIFY_EARNED, 1, "{}") > 0);
    one_message(f, "op:2", KP_CHANNEL_SMS, 1, 0, NOW);
    assert_verifies_clean(f);
}

/* people->sealed_count counts the outbox's values a new key file could
 * not open or check (kp_people_ops.sealed_count): an event with a sealed
 * payload, a message's sealed text until it is erased, a webhook
 * endpoint's sealed secret, a login code's keyed hash; not a customer's
 * session (an unkeyed hash), not an event without sealed data. A database
 * holding only these never gets a fresh key from init or migrate. */
static void test_sealed_count_counts_the_outboxs_sealed_values(void **state)
{
    fx *f = *state;
    const kp_people_ops *p = f->o->people;
    int64_t n = -1;
    OK(f->s, p->sealed_count(f->s, &n));
    assert_int_equal(n, 0);

    event(f, "op:1", KP_NOTIFY_EARNED, 1, "{}"); /* sealed = false */
    OK(f->s, p->sealed_count(f->s, &n));
    assert_int_equal(n, 0);
    kp_notify_event ev;
    memset(&ev, 0, sizeof ev);
    snprintf(ev.key, sizeof ev.key, "login:1");
    ev.kind = KP_NOTIFY_LOGIN_CODE;
    ev.customer_id = 7;
    ev.at = NOW;
    ev.sealed = true;
    ev.payload = (uint8_t *)"sealed bytes";
    ev.payload_len = 12;
    OK(f->s, f->n->event_insert(f->s, &ev));
    OK(f->s, p->sealed_count(f->s, &n));
    assert_int_equal(n, 1);

    one_message(f, "op:2", KP_CHANNEL_SMS, 7, 0, NOW); /* its event is not sealed */
    OK(f->s, p->sealed_count(f->s, &n));
    assert_int_equal(n, 2);

    kp_webhook_endpoint ep = {.active = true, .created_at = NOW, .updated_at = NOW};
    snprintf(ep.url, sizeof ep.url, "https://crm.example/hooks");
    ep.secret.len = 40;
    memset(ep.secret.data, 0x42, ep.secret.len);
    OK(f->s, f->n->endpoint_insert(f->s, &ep));
    OK(f->s, p->sealed_count(f->s, &n));
    assert_int_equal(n, 3);

    uint8_t hash[32];
    memset(hash, 0xa1, sizeof hash);
    OK(f->s, f->n->login_code_put(f->s, 7, hash, NOW + 300, NOW));
    OK(f->s, p->sealed_count(f->s, &n));
    assert_int_equal(n, 4);

    memset(hash, 0x5c, sizeof hash);
    OK(f->s, f->n->customer_session_insert(f->s, hash, 7, NOW, NOW + 3600));
    OK(f->s, p->sealed_count(f->s, &n));
    assert_int_equal(n, 4);

    /* Erasure drops the message's text: nothing of it left to open. */
    int64_t erased = 0;
    OK(f->s, f->n->messages_erase(f->s, 7, &erased));
    assert_int_equal(erased, 1);
    OK(f->s, p->sealed_count(f->s, &n));
    assert_int_equal(n, 3);
}

/* verify states the outbox's invariants (store_invariants.c): a row
 * broken by hand is reported, each in its own words, on every backend. */
typedef struct verify_lines {
    char text[8][256];
    int n;
} verify_lines;

static void collect_line(void *ctx, const char *line)
{
    verify_lines *l = ctx;
    if (l->n < 8) snprintf(l->text[l->n++], sizeof l->text[0], "%s", line);
}

/* Breaks the store with `sql` (printf format, one id), then expects verify
 * to report exactly one problem whose line is `want`; `undo` mends it. */
static void expect_reported(fx *f, const char *sql, const char *undo, long long id,
                            const char *want)
{
    char stmt[256], why[256] = "";
    snprintf(stmt, sizeof stmt, sql, id);
    if (fixture_exec(f->location, stmt, why, sizeof why)) fail_msg("%s: %s", stmt, why);
    verify_lines l = {.n = 0};
    int64_t problems = -1;
    OK(f->s, f->o->verify(f->s, collect_line, &l, &problems));
    if (problems != 1 || l.n != 1 || strcmp(l.text[0], want) != 0)
        fail_msg("after %s: %lld problem(s), first \"%s\"; want \"%s\"", stmt,
                 (long long)problems, l.n ? l.text[0] : "", want);
    snprintf(stmt, sizeof stmt, undo, id);
    if (fixture_exec(f->location, stmt, why, sizeof why)) fail_msg("%s: %s", stmt, why);
    assert_verifies_clean(f);
}

static void test_verify_reports_a_broken_outbox_row(void **state)
{
    fx *f = *state;
    int64_t id = one_message(f, "op:1", KP_CHANNEL_SMS, 3, 0, NOW);
    kp_message_result r = {.id = id, .state = KP_MSG_SENT, .attempts = 1, .sent_at = NOW};
    OK(f->s, f->n->messages_settle(f->s, &r, 1));
    kp_message m = get(f, id);
    long long ev = (long long)m.event_id;
    kp_message_release(&m);
    assert_verifies_clean(f);
    char want[256];

    snprintf(want, sizeof want, "message %lld: sent, but its sent_at is 0", (long long)id);
    expect_reported(f, "UPDATE messages SET sent_at = 0 WHERE id = %lld",
                    "UPDATE messages SET sent_at = 1780000000 WHERE id = %lld", (long long)id,
                    want);

    snprintf(want, sizeof want, "message %lld: its event %lld does not exist", (long long)id,
             ev + 1000);
    expect_reported(f, "UPDATE messages SET event_id = event_id + 1000 WHERE id = %lld",
                    "UPDATE messages SET event_id = event_id - 1000 WHERE id = %lld",
                    (long long)id, want);

    snprintf(want, sizeof want,
             "message %lld: its event %lld is not marked dispatched, yet the dispatch wrote it",
             (long long)id, ev);
    expect_reported(f, "UPDATE notify_events SET dispatched_at = NULL WHERE id = %lld",
                    "UPDATE notify_events SET dispatched_at = 1780000000 WHERE id = %lld", ev,
                    want);

    if (!fixture_is_pg()) { /* SQLite can be told to skip its CHECKs; PostgreSQL cannot */
        snprintf(want, sizeof want,
                 "message %lld: state 7 is not one of pending, sent, dead, cancelled (0..3)",
                 (long long)id);
        expect_reported(f,
                        "PRAGMA ignore_check_constraints = ON; "
                        "UPDATE messages SET state = 7 WHERE id = %lld",
                        "PRAGMA ignore_check_constraints = ON; "
                        "UPDATE messages SET state = 1 WHERE id = %lld",
                        (long long)id, want);
    }
}

/* ------------------------------------------------------------------ main */

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_every_operation_is_there),
        T(test_events_are_stored_once_per_key_and_read_in_id_order),
        T(test_an_event_belongs_to_its_transaction),
        T(test_dispatch_stores_messages_once_and_marks_the_event),
        T(test_claims_lease_due_messages_oldest_first),
        T(test_two_connections_never_claim_the_same_message),
        T(test_settle_records_outcomes_and_drops_leases),
        T(test_retry_makes_a_message_pending_again),
        T(test_cancel_takes_a_customers_pending_messages_of_channels_and_kinds),
        T(test_erase_drops_a_customers_texts_and_cancels_the_pending),
        T(test_messages_list_filters_newest_first_and_pages),
        T(test_outbox_stats_count_events_and_messages),
        T(test_prefs_round_trip_and_replace),
        T(test_templates_round_trip_list_and_delete),
        T(test_endpoints_round_trip_update_and_list),
        T(test_login_codes_count_attempts_expire_and_are_used_once),
        T(test_customer_sessions_insert_find_expire_delete),
        T(test_expiring_between_sums_open_lots_in_the_window),
        T(test_op_insert_writes_the_operations_event),
        T(test_timing_of_an_event_on_the_till_path),
        T(test_an_older_database_gains_the_outbox_tables),
        T(test_sealed_count_counts_the_outboxs_sealed_values),
        T(test_verify_reports_a_broken_outbox_row),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
