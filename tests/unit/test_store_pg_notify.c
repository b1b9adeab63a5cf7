/*
 * test_store_pg_notify.c: what the PostgreSQL side of the outbox
 * (src/store/store_pg_notify.c) must do beyond the contract suite, with
 * two connections standing for two servers on one database:
 *  - two servers claiming at once never take one message twice, and a
 *    claim skips the rows another's open transaction holds, without
 *    waiting for it;
 *  - an event key another writer inserted and has not committed: the
 *    second insert waits, then says "stored already" (id 0) or, when the
 *    first rolled back, stores it; never two events of one cause;
 *  - two dispatchers of one event make its messages once;
 *  - an operation's event (kp_op_row.notify) is written in the operation's
 *    own round trip, by op_insert and op_insert_apply alike;
 *  - a database made before the outbox (schema version 1) gains its tables
 *    when a newer kopilka opens it.
 * PostgreSQL only: the plain entry skips, test_store_pg_notify_pg runs it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fixture.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopilka/notify.h>

#include "store/store_pg_int.h"

#define NOW 1767225600 /* 2026-01-01 */

typedef struct fx {
    char location[FIXTURE_LOCATION_MAX];
    kp_store *a, *b; /* two servers */
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    fixture_location(f->location, "notify-pg");
    kp_error e = {0};
    if (kp_store_open(f->location, true, &f->a, &e) != KP_OK) fail_msg("open: %s", e.message);
    if (kp_store_open(f->location, false, &f->b, &e) != KP_OK) fail_msg("open: %s", e.message);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    kp_store_close(f->a);
    kp_store_close(f->b);
    fixture_remove(f->location);
    free(f);
    return 0;
}

#define OK(st, call)                                                                           \
    do {                                                                                       \
        kp_err err_ = (call);                                                                  \
        if (err_ != KP_OK) fail_msg("%s: %d: %s", #call, (int)err_, (st)->last_error);         \
    } while (0)

static kp_notify_event event(const char *key)
{
    kp_notify_event ev;
    memset(&ev, 0, sizeof ev);
    snprintf(ev.key, sizeof ev.key, "%s", key);
    ev.kind = KP_NOTIFY_EARNED;
    ev.account_id = 7;
    snprintf(ev.card, sizeof ev.card, "C-7");
    ev.at = NOW;
    ev.payload = (uint8_t *)"{\"earned\":10}";
    ev.payload_len = strlen("{\"earned\":10}");
    return ev;
}

/* An event with `n` pending SMS messages due at NOW, one per customer. */
static int64_t event_with_messages(kp_store *st, const char *key, size_t n)
{
    kp_notify_event ev = event(key);
    OK(st, st->ops->notify->event_insert(st, &ev));
    assert_true(ev.id > 0);
    kp_message *msgs = calloc(n ? n : 1, sizeof *msgs);
    for (size_t i = 0; i < n; i++) {
        snprintf(msgs[i].key, sizeof msgs[i].key, "%lld/sms/%zu", (long long)ev.id, i);
        msgs[i].event_id = ev.id;
        msgs[i].kind = ev.kind;
        msgs[i].channel = KP_CHANNEL_SMS;
        msgs[i].customer_id = (int64_t)i + 1;
        msgs[i].next_at = NOW;
        msgs[i].sealed = (uint8_t *)"sealed";
        msgs[i].sealed_len = 6;
    }
    OK(st, st->ops->notify->event_dispatch(st, ev.id, msgs, n, NOW));
    for (size_t i = 0; i < n; i++) assert_true(msgs[i].id > 0);
    free(msgs);
    return ev.id;
}

/* ---- claims */

enum { MESSAGES = 300, CLAIM_BATCH = 7 };

typedef struct claimer {
    kp_store *st;
    int64_t ids[MESSAGES];
    size_t n;
    kp_err err;
    char why[256];
} claimer;

/* Claims batches until none is left, each in a transaction of its own. */
static void *claim_all(void *arg)
{
    claimer *c = arg;
    kp_message got[CLAIM_BATCH];
    for (;;) {
        size_t n = 0;
        kp_err err = c->st->ops->begin(c->st);
        if (err == KP_OK)
            err = c->st->ops->notify->messages_claim(c->st, NOW, NOW + 60, 0, got, CLAIM_BATCH,
                                                     &n);
        if (err == KP_OK) err = c->st->ops->commit(c->st);
        else c->st->ops->rollback(c->st);
        if (err) {
            c->err = err;
            snprintf(c->why, sizeof c->why, "%s", c->st->last_error);
            return NULL;
        }
        for (size_t i = 0; i < n; i++) {
            if (c->n < MESSAGES) c->ids[c->n] = got[i].id;
            c->n++;
            kp_message_release(&got[i]);
        }
        if (n == 0) return NULL;
    }
}

static void test_two_servers_claiming_at_once_never_take_one_message_twice(void **state)
{
    fx *f = *state;
    event_with_messages(f->a, "claims", MESSAGES);
    claimer ca = {.st = f->a}, cb = {.st = f->b};
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, claim_all, &ca), 0);
    assert_int_equal(pthread_create(&tb, NULL, claim_all, &cb), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    if (ca.err) fail_msg("server A: %s", ca.why);
    if (cb.err) fail_msg("server B: %s", cb.why);
    assert_int_equal(ca.n + cb.n, MESSAGES);
    static bool seen[MESSAGES + 1];
    memset(seen, 0, sizeof seen);
    claimer *both[] = {&ca, &cb};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < both[k]->n; i++) {
            int64_t id = both[k]->ids[i];
            assert_true(id >= 1 && id <= MESSAGES);
            if (seen[id]) fail_msg("message %lld claimed twice", (long long)id);
            seen[id] = true;
        }
    print_message("claimed %zu on A, %zu on B\n", ca.n, cb.n);
}

static void test_a_claim_skips_what_another_open_transaction_holds(void **state)
{
    fx *f = *state;
    event_with_messages(f->a, "skip", 10);
    kp_message a[10], b[10];
    size_t na = 0, nb = 0;
    OK(f->a, f->a->ops->begin(f->a));
    OK(f->a, f->a->ops->notify->messages_claim(f->a, NOW, NOW + 60, KP_CHANNEL_SMS, a, 4, &na));
    assert_int_equal(na, 4);
    /* Oldest first: the same next_at, so id order. */
    for (size_t i = 1; i < na; i++) assert_true(a[i].id > a[i - 1].id);
    assert_int_equal(a[0].lease_until, NOW + 60);
    assert_int_equal(a[0].sealed_len, 6);
    assert_memory_equal(a[0].sealed, "sealed", 6);
    /* A has not committed: B takes the other six at once. */
    OK(f->b, f->b->ops->notify->messages_claim(f->b, NOW, NOW + 60, 0, b, 10, &nb));
    assert_int_equal(nb, 6);
    for (size_t i = 0; i < nb; i++)
        for (size_t j = 0; j < na; j++) assert_true(b[i].id != a[j].id);
    OK(f->a, f->a->ops->commit(f->a));
    /* A's leases hold after its commit: nothing left for B. */
    size_t again = 0;
    OK(f->b, f->b->ops->notify->messages_claim(f->b, NOW + 1, NOW + 60, 0, b + nb, 4, &again));
    assert_int_equal(again, 0);
    /* Once they run out, B takes A's four. */
    OK(f->b, f->b->ops->notify->messages_claim(f->b, NOW + 61, NOW + 120, 0, b + nb, 4, &again));
    assert_int_equal(again, 4);
    for (size_t i = 0; i < na; i++) kp_message_release(&a[i]);
    for (size_t i = 0; i < nb + again; i++) kp_message_release(&b[i]);
}

/* ---- a key another writer has not committed */

typedef struct inserter {
    kp_store *st;
    kp_notify_event ev;
    kp_err err;
} inserter;

static void *insert_one(void *arg)
{
    inserter *in = arg;
    in->err = in->st->ops->notify->event_insert(in->st, &in->ev);
    return NULL;
}

static int64_t events_named(fx *f, const char *key)
{
    kp_notify_event evs[16];
    size_t n = 0;
    OK(f->a, f->a->ops->notify->events_pending(f->a, 0, evs, 16, &n));
    int64_t count = 0;
    for (size_t i = 0; i < n; i++) {
        count += strcmp(evs[i].key, key) == 0;
        kp_notify_event_release(&evs[i]);
    }
    return count;
}

static void run_concurrent_insert(fx *f, const char *key, bool commit_first)
{
    kp_notify_event ev = event(key);
    OK(f->a, f->a->ops->begin(f->a));
    OK(f->a, f->a->ops->notify->event_insert(f->a, &ev));
    assert_true(ev.id > 0);
    inserter in = {.st = f->b, .ev = event(key)};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, insert_one, &in), 0);
    usleep(200 * 1000); /* B is waiting on A's row by now */
    if (commit_first) OK(f->a, f->a->ops->commit(f->a));
    else OK(f->a, f->a->ops->rollback(f->a));
    pthread_join(t, NULL);
    if (in.err) fail_msg("the second insert: %d: %s", (int)in.err, f->b->last_error);
    if (commit_first) assert_int_equal(in.ev.id, 0); /* stored already */
    else assert_true(in.ev.id > ev.id);              /* A's rolled back: B's is the one */
    assert_int_equal(events_named(f, key), 1);
}

static void test_a_key_another_writer_has_not_committed_is_stored_once(void **state)
{
    fx *f = *state;
    run_concurrent_insert(f, "tier:12:1", true);
    run_concurrent_insert(f, "tier:13:1", false);
}

/* ---- two dispatchers of one event */

typedef struct dispatcher {
    kp_store *st;
    int64_t event_id;
    kp_message msgs[2];
    kp_err err;
} dispatcher;

static void dispatcher_init(dispatcher *d, kp_store *st, int64_t event_id)
{
    memset(d, 0, sizeof *d);
    d->st = st;
    d->event_id = event_id;
    for (int i = 0; i < 2; i++) {
        snprintf(d->msgs[i].key, sizeof d->msgs[i].key, "%lld/%s", (long long)event_id,
                 i ? "sms" : "email");
        d->msgs[i].event_id = event_id;
        d->msgs[i].kind = KP_NOTIFY_EARNED;
        d->msgs[i].channel = i ? KP_CHANNEL_SMS : KP_CHANNEL_EMAIL;
        d->msgs[i].customer_id = 5;
        d->msgs[i].next_at = NOW;
    }
}

static void *dispatch_one(void *arg)
{
    dispatcher *d = arg;
    d->err = d->st->ops->notify->event_dispatch(d->st, d->event_id, d->msgs, 2, NOW);
    return NULL;
}

static void test_two_dispatchers_of_one_event_make_its_messages_once(void **state)
{
    fx *f = *state;
    kp_notify_event ev = event("op:dispatch");
    OK(f->a, f->a->ops->notify->event_insert(f->a, &ev));
    dispatcher da, db;
    dispatcher_init(&da, f->a, ev.id);
    dispatcher_init(&db, f->b, ev.id);
    OK(f->a, f->a->ops->begin(f->a));
    dispatch_one(&da);
    OK(f->a, da.err);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, dispatch_one, &db), 0);
    usleep(200 * 1000);
    OK(f->a, f->a->ops->commit(f->a));
    pthread_join(t, NULL);
    OK(f->b, db.err);
    assert_true(da.msgs[0].id > 0 && da.msgs[1].id > 0);
    assert_int_equal(db.msgs[0].id, 0);
    assert_int_equal(db.msgs[1].id, 0);
    kp_message got[4];
    size_t n = 0;
    kp_message_filter all = {.state = -1};
    OK(f->a, f->a->ops->notify->messages_list(f->a, &all, 0, got, 4, &n));
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++) kp_message_release(&got[i]);
    assert_int_equal(events_named(f, "op:dispatch"), 0); /* dispatched */
}

/* ---- an operation's event in the operation's round trip */

static kp_op_row op_row(int64_t account_id, const char *receipt)
{
    kp_op_row row;
    memset(&row, 0, sizeof row);
    row.type = KP_OP_ADJUST;
    row.account_id = account_id;
    snprintf(row.card, sizeof row.card, "C-op");
    snprintf(row.store, sizeof row.store, "s");
    snprintf(row.receipt, sizeof row.receipt, "%s", receipt);
    row.program_version = 1;
    row.at = NOW;
    row.points = row.earned = 5;
    return row;
}

static void plan_credit(kp_ledger_plan *p, int64_t account_id, int64_t balance, int64_t points)
{
    memset(p, 0, sizeof *p);
    p->type = KP_OP_ADJUST;
    p->account_id = account_id;
    p->n_postings = 2;
    p->postings[0] = (kp_posting){account_id, points};
    p->postings[1] = (kp_posting){KP_SYS_ADJUSTMENT, -points};
    p->has_new_lot = true;
    snprintf(p->new_lot.kind, sizeof p->new_lot.kind, "regular");
    p->new_lot.amount = p->new_lot.remaining = points;
    p->new_lot.earned_at = p->new_lot.active_from = NOW;
    p->new_lot.expires_at = NOW + 86400 * 365;
    p->balance_after = balance + points;
}

/* Round trips of op_insert_apply (op_insert when plan is NULL) in an open
 * transaction whose BEGIN was sent already, with or without an event. */
static uint64_t trips_of(kp_store *st, kp_op_row *row, kp_ledger_plan *plan)
{
    uint64_t before = pg_round_trips();
    OK(st, plan ? st->ops->op_insert_apply(st, row, plan, NOW) : st->ops->op_insert(st, row));
    return pg_round_trips() - before;
}

static void test_an_operations_event_costs_no_round_trip(void **state)
{
    fx *f = *state;
    kp_store *st = f->a;
    int64_t account = 0;
    OK(st, st->ops->card_create(st, "C-op", KP_CARD_ISSUED, NOW, &account));
    kp_ledger_plan *plan = calloc(1, sizeof *plan);
    int64_t balance = 0;
    char receipt[32];
    /* Each shape runs twice first: its statements prepared on the
     * connection, as a server's are after its first purchases. */
    for (int round = 0; round < 3; round++) {
        for (int with_plan = 0; with_plan < 2; with_plan++) {
            uint64_t trips[2];
            for (int with_event = 0; with_event < 2; with_event++) {
                snprintf(receipt, sizeof receipt, "r-%d-%d-%d", round, with_plan, with_event);
                kp_op_row row = op_row(account, receipt);
                kp_notify_event ev = event("ignored: the store names it");
                if (with_event) row.notify = &ev;
                if (with_plan) plan_credit(plan, account, balance, 5);
                OK(st, st->ops->begin(st));
                OK(st, pg_flush((pg_store *)st)); /* BEGIN out of the count */
                trips[with_event] = trips_of(st, &row, with_plan ? plan : NULL);
                OK(st, st->ops->commit(st));
                if (with_plan) balance += 5;
                if (with_event) {
                    char key[32];
                    snprintf(key, sizeof key, "op:%lld", (long long)row.id);
                    assert_string_equal(ev.key, key);
                    assert_int_equal(ev.op_id, row.id);
                    assert_true(ev.id > 0);
                    kp_notify_event got[64];
                    size_t n = 0;
                    OK(st, st->ops->notify->events_pending(st, ev.id - 1, got, 64, &n));
                    assert_true(n >= 1);
                    assert_int_equal(got[0].id, ev.id);
                    assert_string_equal(got[0].key, key);
                    assert_int_equal(got[0].op_id, row.id);
                    assert_int_equal(got[0].payload_len, ev.payload_len);
                    assert_memory_equal(got[0].payload, ev.payload, ev.payload_len);
                    for (size_t i = 0; i < n; i++) kp_notify_event_release(&got[i]);
                }
            }
            if (round == 2) {
                assert_int_equal(trips[0], 1);
                assert_int_equal(trips[1], 1);
            }
        }
    }
    /* A refused operation writes no event either. */
    kp_op_row dup = op_row(account, "r-0-0-0");
    kp_notify_event ev = event("x");
    dup.notify = &ev;
    assert_int_not_equal(st->ops->op_insert(st, &dup), KP_OK);
    kp_notify_event got[64];
    size_t n = 0;
    OK(st, st->ops->notify->events_pending(st, 0, got, 64, &n));
    assert_int_equal(n, 6); /* three rounds, with and without a plan */
    for (size_t i = 0; i < n; i++) kp_notify_event_release(&got[i]);
    free(plan);
}

/* ---- a database made before the outbox */

static void test_a_database_of_schema_1_gains_the_outbox_on_open(void **state)
{
    fx *f = *state;
    kp_store_close(f->b);
    f->b = NULL;
    kp_store_close(f->a);
    f->a = NULL;
    /* Back to what migration 1 left: no outbox tables, version 1. */
    PGconn *c = fixture_pg_connect(f->location);
    PGresult *r = PQexec(c, "BEGIN; DROP TABLE notify_events, messages, notify_prefs, "
                            "notify_templates, webhook_endpoints, login_codes, "
                            "customer_sessions; DELETE FROM kopilka_schema WHERE version > 1; "
                            "COMMIT");
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    kp_error e = {0};
    if (kp_store_open(f->location, false, &f->a, &e) != KP_OK) fail_msg("open: %s", e.message);
    if (kp_store_open(f->location, false, &f->b, &e) != KP_OK) fail_msg("open: %s", e.message);
    r = PQexec(c, "SELECT max(version) FROM kopilka_schema");
    /* and on to the latest: 15 (partner staff) */
    assert_string_equal(PQgetvalue(r, 0, 0), "16");
    PQclear(r);
    PQfinish(c);
    int64_t event_id = event_with_messages(f->a, "after-upgrade", 2);
    kp_message m;
    OK(f->b, f->b->ops->notify->message_get(f->b, 1, &m));
    assert_int_equal(m.event_id, event_id);
    kp_message_release(&m);
}

int main(void)
{
    if (!fixture_is_pg()) {
        fprintf(stderr, "skipped: PostgreSQL only (test_store_pg_notify_pg runs it)\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_two_servers_claiming_at_once_never_take_one_message_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_claim_skips_what_another_open_transaction_holds,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_key_another_writer_has_not_committed_is_stored_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_dispatchers_of_one_event_make_its_messages_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_operations_event_costs_no_round_trip, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_database_of_schema_1_gains_the_outbox_on_open,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
