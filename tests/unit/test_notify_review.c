/* test_notify_review.c: cases found in the review of the notification code:
 * a delivery pass never sends a message cancelled (an unsubscribe, an
 * erasure) after it was claimed, and it stays cancelled once settled. On
 * SQLite and PostgreSQL (fixture.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "notify/notify.h"

#define NOW ((kp_time)1780000000)

enum { CUSTOMER = 7 };

/* The io straight on the store, whose claim lets a cancellation land right
 * after it: what an unsubscribe or an erasure does while the message
 * waits in a worker's hands. */
typedef struct racing_io {
    kp_notify_io inner;
    kp_store *st;
    bool erase; /* messages_erase, else messages_cancel */
} racing_io;

static kp_err racing_claim(void *ctx, kp_time now, kp_time lease_until, kp_channel channel,
                           kp_message *out, size_t limit, size_t *n, kp_error *e)
{
    racing_io *r = ctx;
    kp_err err = r->inner.claim(r->inner.ctx, now, lease_until, channel, out, limit, n, e);
    if (err) return err;
    int64_t gone = 0;
    err = r->erase ? r->st->ops->notify->messages_erase(r->st, CUSTOMER, &gone)
                   : r->st->ops->notify->messages_cancel(r->st, CUSTOMER,
                                                         1u << KP_CHANNEL_EMAIL, 0, &gone);
    assert_int_equal(err, KP_OK);
    assert_int_equal(gone, 1);
    return KP_OK;
}

static kp_err racing_settle(void *ctx, const kp_message_result *res, size_t n, kp_error *e)
{
    racing_io *r = ctx;
    return r->inner.settle(r->inner.ctx, res, n, e);
}

static void cancelled_after_the_claim(bool erase)
{
    char location[FIXTURE_LOCATION_MAX];
    fixture_location(location, "review");
    kp_store *st = NULL;
    kp_error e = {0};
    assert_int_equal(kp_store_open(location, true, &st, &e), KP_OK);
    const kp_notify_ops *n = st->ops->notify;

    /* One pending e-mail of the customer (its text is never opened here). */
    kp_notify_event ev;
    memset(&ev, 0, sizeof ev);
    snprintf(ev.key, sizeof ev.key, "review:1");
    ev.kind = KP_NOTIFY_CAMPAIGN;
    ev.customer_id = CUSTOMER;
    ev.at = NOW;
    ev.payload = (uint8_t *)"{}";
    ev.payload_len = 2;
    assert_int_equal(st->ops->begin(st), KP_OK);
    assert_int_equal(n->event_insert(st, &ev), KP_OK);
    assert_int_equal(st->ops->commit(st), KP_OK);
    uint8_t blob[64];
    memset(blob, 0x5a, sizeof blob);
    kp_message m;
    memset(&m, 0, sizeof m);
    snprintf(m.key, sizeof m.key, "%lld/email", (long long)ev.id);
    m.event_id = ev.id;
    m.kind = KP_NOTIFY_CAMPAIGN;
    m.channel = KP_CHANNEL_EMAIL;
    m.customer_id = CUSTOMER;
    m.created_at = m.next_at = NOW;
    m.sealed = blob;
    m.sealed_len = sizeof blob;
    assert_int_equal(n->event_dispatch(st, ev.id, &m, 1, NOW), KP_OK);
    assert_true(m.id > 0);

    kp_notify_config cfg;
    kp_notify_config_default(&cfg);
    kp_notify_env env;
    kp_notify_env_init(&env, st, NULL, NULL, &cfg);
    racing_io io = {.st = st, .erase = erase};
    kp_notify_io_store(&io.inner, st);
    kp_notify_io outer = {.ctx = &io, .claim = racing_claim, .settle = racing_settle};
    kp_sender *sender = kp_sender_new(&cfg, KP_CHANNEL_EMAIL);
    assert_non_null(sender);
    kp_rate rate;
    kp_rate_init(&rate, 0);
    kp_deliver_stats stats;
    memset(&stats, 0, sizeof stats);
    size_t tried = 99;
    assert_int_equal(kp_notify_deliver_pass(st, &env, &outer, sender, KP_CHANNEL_EMAIL, &rate,
                                            NOW, &tried, &stats, &e),
                     KP_OK);
    /* Not attempted: no send, no failure counted, no attempt recorded. */
    assert_int_equal(tried, 0);
    assert_int_equal(stats.sent[KP_CHANNEL_EMAIL], 0);
    assert_int_equal(stats.failed[KP_CHANNEL_EMAIL], 0);
    kp_message now;
    memset(&now, 0, sizeof now);
    assert_int_equal(n->message_get(st, m.id, &now), KP_OK);
    assert_int_equal(now.state, KP_MSG_CANCELLED);
    assert_int_equal(now.attempts, 0);
    assert_int_equal(now.lease_until, 0);
    kp_message_release(&now);

    kp_rate_release(&rate);
    kp_sender_free(sender);
    kp_store_close(st);
    fixture_remove(location);
}

static void test_a_message_cancelled_after_its_claim_is_not_sent(void **state)
{
    (void)state;
    cancelled_after_the_claim(false);
}

static void test_a_message_erased_after_its_claim_is_not_sent(void **state)
{
    (void)state;
    cancelled_after_the_claim(true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_message_cancelled_after_its_claim_is_not_sent),
        cmocka_unit_test(test_a_message_erased_after_its_claim_is_not_sent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
