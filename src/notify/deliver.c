/*
 * deliver.c: the delivery pass: claim due messages, send them, settle each
 * (backoff, dead letter, rate); the dispatch pass that turns pending events
 * into messages; the token bucket; and the io straight on a store that the
 * CLI uses. The server's io (through its writer) is in
 * src/server/notifier.c. Contracts: src/notify/notify.h.
 */
#include "notify.h"

#include <errno.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto/pii.h"

enum {
    EVENTS_PAGE = 64,      /* events read and dispatched per transaction */
    PLAN_CAP = 2 + 256,    /* messages one event may make: e-mail, SMS, endpoints */
    SETTLE_EVERY_MS = 250, /* settle at least this often while sending */
    SECRET_MAX = 256,      /* an opened webhook secret */
    TIMEOUT_DEFAULT_S = 10,
};

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

/* ------------------------------------------------------------- env */

void kp_notify_env_init(kp_notify_env *env, kp_store *st, const struct kp_pii *pii,
                        const kp_program *program, const kp_notify_config *config)
{
    static const char LINK_CONTEXT[] = "kopilka unsubscribe links";
    memset(env, 0, sizeof *env);
    env->pii = pii;
    env->program = program;
    env->policy = kp_notify_policy_of(st, program);
    env->config = config;
    if (pii) {
        kp_pii_mac(pii, KP_PII_LINK, LINK_CONTEXT, sizeof LINK_CONTEXT - 1, env->link_key);
        env->has_link_key = true;
    }
}

/* ------------------------------------------------------------ rate */

void kp_rate_init(kp_rate *r, double per_second)
{
    /* A burst of one: sends are spaced 1/rate apart, so no window of a
     * second ever holds more than the rate (providers count per second). */
    r->rate = per_second > 0 ? per_second : 0;
    r->burst = 1;
    r->tokens = 1;
    r->last_ns = 0;
    r->workers = 1;
    pthread_mutex_init(&r->lock, NULL);
}

void kp_rate_release(kp_rate *r)
{
    pthread_mutex_destroy(&r->lock);
}

void kp_rate_share(kp_rate *r, int workers)
{
    r->workers = workers < 1 ? 1 : workers;
}

static uint64_t rate_take_locked(kp_rate *r, uint64_t now_ns)
{
    if (r->last_ns != 0 && now_ns > r->last_ns) {
        r->tokens += (double)(now_ns - r->last_ns) * r->rate / 1e9;
        if (r->tokens > r->burst) r->tokens = r->burst;
    }
    if (r->last_ns == 0 || now_ns > r->last_ns) r->last_ns = now_ns;
    if (r->tokens >= 1) {
        r->tokens -= 1;
        return 0;
    }
    uint64_t wait = (uint64_t)((1 - r->tokens) / r->rate * 1e9);
    return wait > 0 ? wait : 1;
}

uint64_t kp_rate_take(kp_rate *r, uint64_t now_ns)
{
    if (r->rate <= 0) return 0;
    pthread_mutex_lock(&r->lock);
    uint64_t wait = rate_take_locked(r, now_ns);
    pthread_mutex_unlock(&r->lock);
    return wait;
}

/* -------------------------------------------------------- dispatch */

static void note(const kp_notify_io *io, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(const kp_notify_io *io, const char *fmt, ...)
{
    if (io->note == NULL) return;
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    io->note(io->ctx, text);
}

/* Writes the planned items: in one transaction when the io can, else one
 * event at a time. */
static kp_err write_items(const kp_notify_io *io, kp_dispatch_item *items, size_t n, kp_time now,
                          kp_error *e)
{
    if (n == 0) return KP_OK;
    if (io->dispatch_batch) return io->dispatch_batch(io->ctx, items, n, now, e);
    for (size_t i = 0; i < n; i++) {
        kp_err err = io->dispatch(io->ctx, items[i].event_id, items[i].msgs, items[i].n, now, e);
        if (err) return err;
    }
    return KP_OK;
}

/* A planning failure that is the event's own (its data), so planning it
 * again would fail again: it is dispatched with no message and reported.
 * Anything else (storage, memory) stops the pass; the event stays pending. */
static bool plan_error_is_permanent(kp_err err)
{
    return err == KP_ERR_INVALID || err == KP_ERR_NOT_FOUND || err == KP_ERR_LIMIT ||
           err == KP_ERR_OVERFLOW;
}

/* Whether an item may go straight to its first attempt (io->direct):
 * some messages, every one a webhook due at `now` (an e-mail or SMS has a
 * customer's contact and may be cancelled or erased before it goes, so it
 * is written first, as it always was). */
static bool all_due_webhooks(const kp_dispatch_item *it, kp_time now)
{
    if (it->n == 0) return false;
    for (size_t i = 0; i < it->n; i++)
        if (it->msgs[i].channel != KP_CHANNEL_WEBHOOK || it->msgs[i].next_at > now) return false;
    return true;
}

kp_err kp_notify_dispatch_pass(kp_store *rd, const kp_notify_env *env, const kp_notify_io *io,
                               kp_time now, size_t *n, kp_deliver_stats *stats, kp_error *e)
{
    *n = 0;
    kp_err err = KP_OK;
    kp_notify_event *events = calloc(EVENTS_PAGE, sizeof *events);
    kp_dispatch_item *items = calloc(EVENTS_PAGE, sizeof *items);
    /* An event is planned into scratch (room for the most it may make) and
     * its messages kept in pool, grown as needed: a page's messages take
     * what they need, not EVENTS_PAGE times PLAN_CAP (megabytes of fresh
     * pages to fault in and unmap at every pass). */
    kp_message *scratch = malloc(PLAN_CAP * sizeof *scratch); /* plan fills what it makes */
    kp_message *pool = NULL;
    size_t pool_used = 0, pool_cap = 0, offs[EVENTS_PAGE];
    size_t n_events = 0, n_items = 0;
    if (events == NULL || items == NULL || scratch == NULL) {
        err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory for a dispatch pass");
        goto out;
    }
    int64_t after = io->resume_after ? io->resume_after(io->ctx) : 0;
    for (;;) {
        n_events = 0;
        n_items = 0;
        if ((err = rd->ops->notify->events_pending(rd, after, events, EVENTS_PAGE, &n_events))) {
            kp_error_set(e, err, "database", "reading pending events: %s", rd->last_error);
            goto out;
        }
        /* The page's events share one read of the webhook endpoints. */
        kp_notify_env page_env = *env;
        kp_webhook_endpoint *endpoints = NULL;
        if (n_events > 0 && (!env->config || env->config->webhook.on)) {
            if ((err = kp_notify_endpoints_read(rd, &endpoints, &page_env.n_endpoints, e)))
                goto out;
            page_env.endpoints = endpoints;
        }
        for (size_t i = 0; i < n_events; i++) {
            kp_notify_event *ev = &events[i];
            if (io->in_flight && io->in_flight(io->ctx, ev->id)) continue; /* the io's */
            kp_dispatch_item *it = &items[n_items];
            it->event_id = ev->id;
            it->msgs = scratch;
            it->n = 0;
            kp_error pe = {0};
            kp_err perr = kp_notify_plan(rd, &page_env, ev, now, it->msgs, PLAN_CAP, &it->n, &pe);
            if (perr && !plan_error_is_permanent(perr)) {
                err = perr;
                *e = pe;
                free(endpoints);
                goto out;
            }
            if (perr) {
                for (size_t j = 0; j < it->n; j++) kp_message_release(&it->msgs[j]);
                it->n = 0;
                stats->unplanned_events++;
                note(io, "event %lld (%s, %s) could not be planned, so nobody is told of it: "
                         "%s%s%s",
                     (long long)ev->id, kp_notify_kind_name(ev->kind) ? kp_notify_kind_name(ev->kind) : "?",
                     ev->key, pe.field, pe.field[0] ? ": " : "", pe.message);
            }
            if (perr == KP_OK && io->direct && all_due_webhooks(it, now)) {
                size_t made = it->n;
                if (io->direct(io->ctx, it, now)) {
                    stats->planned_messages += made;
                    stats->dispatched_events++;
                    stats->direct_events++;
                    (*n)++;
                    continue; /* the io's now: not written here */
                }
            }
            if (pool_used + it->n > pool_cap) {
                size_t cap = pool_cap * 2 > pool_used + it->n ? pool_cap * 2 : pool_used + it->n;
                if (cap < EVENTS_PAGE) cap = EVENTS_PAGE;
                kp_message *grown = realloc(pool, cap * sizeof *pool);
                if (grown == NULL) {
                    for (size_t j = 0; j < it->n; j++) kp_message_release(&scratch[j]);
                    err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory for a dispatch pass");
                    free(endpoints);
                    goto out;
                }
                pool = grown;
                pool_cap = cap;
            }
            if (it->n) memcpy(pool + pool_used, scratch, it->n * sizeof *pool);
            offs[n_items] = pool_used;
            pool_used += it->n;
            n_items++;
        }
        free(endpoints);
        for (size_t i = 0; i < n_items; i++) items[i].msgs = pool ? pool + offs[i] : scratch;
        if ((err = write_items(io, items, n_items, now, e))) goto out;
        if (n_events > 0 && events[n_events - 1].id > stats->last_event_id)
            stats->last_event_id = events[n_events - 1].id;
        for (size_t i = 0; i < n_items; i++) {
            stats->planned_messages += items[i].n;
            for (size_t j = 0; j < items[i].n; j++) kp_message_release(&items[i].msgs[j]);
            items[i].n = 0;
        }
        pool_used = 0;
        stats->dispatched_events += n_items;
        *n += n_items;
        for (size_t i = 0; i < n_events; i++) kp_notify_event_release(&events[i]);
        if (n_events < EVENTS_PAGE) {
            n_events = 0;
            break;
        }
        after = events[n_events - 1].id;
        n_events = 0;
    }
out:
    for (size_t i = 0; items && i < n_items; i++)
        for (size_t j = 0; pool && j < items[i].n; j++) kp_message_release(&pool[offs[i] + j]);
    for (size_t i = 0; events && i < n_events; i++) kp_notify_event_release(&events[i]);
    free(pool);
    free(scratch);
    free(items);
    free(events);
    return err;
}

/* --------------------------------------------------------- deliver */

static int channel_timeout(const kp_notify_config *c, kp_channel channel)
{
    int t = channel == KP_CHANNEL_EMAIL ? c->email.timeout_seconds
            : channel == KP_CHANNEL_SMS ? c->sms.timeout_seconds
                                        : c->webhook.timeout_seconds;
    return t > 0 ? t : TIMEOUT_DEFAULT_S;
}

/* The outcome of a failed attempt: dead or another try later. */
static void failed(const kp_notify_env *env, const kp_message *m, kp_message_result *r,
                   bool permanent, int64_t retry_after, const char *why, kp_time t)
{
    const kp_retry_policy *retry = &env->config->retry;
    /* last_error is a column of KP_NOTIFY_ERROR_MAX bytes: a longer reason
     * is kept to its start (the precision says so to the compiler). */
    enum { KEEP = sizeof r->last_error - 1, KEEP_AFTER_PREFIX = sizeof r->last_error - 40 };
    r->attempts = m->attempts + 1;
    if (permanent) {
        r->state = KP_MSG_DEAD;
        snprintf(r->last_error, sizeof r->last_error, "%.*s", (int)KEEP, why);
    } else if (retry->max_attempts > 0 && r->attempts >= retry->max_attempts) {
        r->state = KP_MSG_DEAD;
        snprintf(r->last_error, sizeof r->last_error, "gave up after %d attempts: %.*s",
                 (int)r->attempts, (int)KEEP_AFTER_PREFIX, why);
    } else {
        r->state = KP_MSG_PENDING;
        r->next_at = kp_notify_backoff(retry, r->attempts, retry_after, randombytes_random(), t);
        snprintf(r->last_error, sizeof r->last_error, "%.*s", (int)KEEP, why);
    }
}

/* A webhook's endpoint and its opened secret. False with r filled when the
 * message cannot go. */
static bool webhook_target(kp_store *rd, const kp_notify_env *env, const kp_message *m,
                           kp_webhook_endpoint *ep, char *secret, kp_message_result *r, kp_time t)
{
    char why[512];
    kp_err err = rd->ops->notify->endpoint_get(rd, m->endpoint_id, ep);
    if (err == KP_ERR_NOT_FOUND) {
        snprintf(why, sizeof why, "webhook endpoint %lld no longer exists", (long long)m->endpoint_id);
        failed(env, m, r, true, 0, why, t);
        return false;
    }
    if (err) {
        snprintf(why, sizeof why, "reading webhook endpoint %lld failed: %.180s",
                 (long long)m->endpoint_id, rd->last_error);
        failed(env, m, r, false, 0, why, t);
        return false;
    }
    if (!ep->active) {
        snprintf(why, sizeof why, "webhook endpoint %lld is inactive (turned off in the back "
                 "office); retry this delivery once it is active again", (long long)m->endpoint_id);
        failed(env, m, r, true, 0, why, t);
        return false;
    }
    if (env->pii == NULL) {
        failed(env, m, r, false, 0, "the database's key file is not loaded, so the endpoint's "
                                    "signing secret cannot be opened", t);
        return false;
    }
    size_t len = 0;
    if (kp_pii_open(env->pii, KP_PII_SECRET, ep->secret.data, ep->secret.len, secret, SECRET_MAX,
                    &len) != KP_OK) {
        snprintf(why, sizeof why, "the signing secret of webhook endpoint %lld cannot be opened "
                 "with this key file (sealed with another key?)", (long long)m->endpoint_id);
        failed(env, m, r, true, 0, why, t);
        return false;
    }
    return true;
}

/* Is m still pending as claimed? A message cancelled or erased after the
 * claim (an unsubscribe, an erasure, while it waited for the rate) is not
 * sent: the store keeps it cancelled when it is settled. A failed read
 * sends it, as before this check. */
static bool still_pending(kp_store *rd, const kp_message *m)
{
    kp_message now;
    memset(&now, 0, sizeof now);
    kp_err err = rd->ops->notify->message_get(rd, m->id, &now);
    bool pending = err != KP_OK || (now.state == KP_MSG_PENDING && now.sealed_len > 0);
    kp_message_release(&now);
    return pending;
}

/* A pass's last webhook endpoint and its opened secret: a pass's messages
 * mostly go to one endpoint, read (and its secret opened) once a pass, at
 * most ENDPOINT_FRESH_NS ago (an endpoint turned off or given a new secret
 * is seen within that). */
enum { ENDPOINT_FRESH_NS = 1000000000 };
typedef struct endpoint_cache {
    bool has;
    uint64_t read_ns;
    kp_webhook_endpoint ep;
    char secret[SECRET_MAX];
} endpoint_cache;

static void endpoint_cache_drop(endpoint_cache *c)
{
    sodium_memzero(c->secret, sizeof c->secret);
    c->has = false;
}

/* One attempt at message m: r gets its outcome. */
static void attempt(kp_store *rd, const kp_notify_env *env, kp_sender *sender, const kp_message *m,
                    kp_time t, kp_message_result *r, kp_deliver_stats *stats, endpoint_cache *cache)
{
    kp_webhook_endpoint ep;
    char secret[SECRET_MAX] = "";
    kp_outgoing o;
    memset(&o, 0, sizeof o);
    memset(r, 0, sizeof *r);
    r->id = m->id;
    bool webhook = m->channel == KP_CHANNEL_WEBHOOK;
    if (webhook && cache->has && cache->ep.id == m->endpoint_id &&
        mono_ns() - cache->read_ns < ENDPOINT_FRESH_NS) {
        ep = cache->ep;
        memcpy(secret, cache->secret, sizeof secret);
    } else if (webhook) {
        if (!webhook_target(rd, env, m, &ep, secret, r, t)) goto out;
        cache->ep = ep;
        memcpy(cache->secret, secret, sizeof secret);
        cache->has = true;
        cache->read_ns = mono_ns();
    }
    kp_error oe = {0};
    if (kp_notify_open(env, m, &o, &oe) != KP_OK) {
        char why[512];
        snprintf(why, sizeof why, "the message cannot be opened for sending: %.60s%s%.160s",
                 oe.field, oe.field[0] ? ": " : "", oe.message);
        failed(env, m, r, true, 0, why, t);
        goto out;
    }
    kp_send_result sr;
    memset(&sr, 0, sizeof sr);
    kp_sender_send(sender, &o, webhook ? &ep : NULL, webhook ? secret : NULL, t, &sr);
    if (sr.ok) {
        r->state = KP_MSG_SENT;
        r->attempts = m->attempts + 1;
        r->sent_at = t;
        memcpy(r->provider_id, sr.provider_id, sizeof r->provider_id);
        r->provider_id[sizeof r->provider_id - 1] = '\0';
    } else {
        failed(env, m, r, sr.permanent, sr.retry_after,
               sr.error[0] ? sr.error : "the provider refused it without saying why", t);
    }
out:
    sodium_memzero(secret, sizeof secret);
    kp_outgoing_release(&o);
    if (r->state == KP_MSG_SENT) stats->sent[m->channel]++;
    else {
        stats->failed[m->channel]++;
        if (r->state == KP_MSG_DEAD) stats->dead[m->channel]++;
    }
}

static kp_err settle(const kp_notify_io *io, kp_message_result *results, size_t *n, kp_error *e)
{
    if (*n == 0) return KP_OK;
    kp_err err = io->settle(io->ctx, results, *n, e);
    if (err == KP_OK) *n = 0;
    return err;
}

/* Waits for the rate's next token; a stop cuts the wait short. True when
 * the pass is to stop. */
static bool wait_rate(const kp_notify_io *io, kp_rate *rate)
{
    bool stop = io->stopping && io->stopping(io->ctx);
    for (uint64_t wait; !stop && (wait = kp_rate_take(rate, mono_ns())) > 0;) {
        sleep_ns(wait < 50000000u ? wait : 50000000u);
        stop = io->stopping && io->stopping(io->ctx);
    }
    return stop;
}

kp_err kp_notify_deliver_pass(kp_store *rd, const kp_notify_env *env, const kp_notify_io *io,
                              kp_sender *sender, kp_channel channel, kp_rate *rate,
                              kp_time now, size_t *n, kp_deliver_stats *stats, kp_error *e)
{
    *n = 0;
    endpoint_cache cache;
    memset(&cache, 0, sizeof cache);
    int timeout = channel_timeout(env->config, channel);
    /* This pass's share of the channel: of the batch and of the rate. */
    int workers = rate->workers < 1 ? 1 : rate->workers;
    size_t limit = KP_DELIVER_BATCH / (size_t)workers;
    if (limit < KP_DELIVER_BATCH_MIN) limit = KP_DELIVER_BATCH_MIN;
    double share = rate->rate / workers;
    if (share > 0 && share * 2 < (double)limit) limit = share * 2 < 1 ? 1 : (size_t)(share * 2);
    kp_time lease_until = now + 2 * timeout + 1 +
                          (share > 0 ? (kp_time)((double)limit / share) + 1 : 0);
    kp_message *msgs = calloc(limit, sizeof *msgs);
    kp_message_result *results = calloc(limit, sizeof *results);
    size_t got = 0, pending = 0;
    kp_err err = KP_OK;
    if (msgs == NULL || results == NULL) {
        err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory for a delivery pass");
        goto out;
    }
    if ((err = io->claim(io->ctx, now, lease_until, channel, msgs, limit, &got, e))) goto out;
    uint64_t start = mono_ns(), last_settle = start;
    for (size_t i = 0; i < got; i++) {
        const kp_message *m = &msgs[i];
        bool stop = wait_rate(io, rate);
        kp_time t = now + (kp_time)((mono_ns() - start) / 1000000000u);
        kp_message_result *r = &results[pending];
        /* A message cancelled in flight is settled untried too (the store
         * keeps it cancelled). */
        bool gone = !stop && t + timeout < lease_until && !still_pending(rd, m);
        if (gone || stop || t + timeout >= lease_until) {
            /* Handed back untried: due at once, for this worker's next pass
             * or another's. */
            memset(r, 0, sizeof *r);
            r->id = m->id;
            r->state = KP_MSG_PENDING;
            r->attempts = m->attempts;
            r->next_at = t;
            memcpy(r->last_error, m->last_error, sizeof r->last_error);
            r->last_error[sizeof r->last_error - 1] = '\0';
            if (!gone) stats->handed_back[channel]++;
        } else {
            attempt(rd, env, sender, m, t, r, stats, &cache);
            (*n)++;
        }
        pending++;
        uint64_t now_ns = mono_ns();
        if (pending >= KP_SETTLE_BATCH || now_ns - last_settle >= SETTLE_EVERY_MS * 1000000ull) {
            if ((err = settle(io, results, &pending, e))) goto out;
            last_settle = now_ns;
        }
    }
    err = settle(io, results, &pending, e);
out:
    endpoint_cache_drop(&cache);
    for (size_t i = 0; msgs && i < got; i++) kp_message_release(&msgs[i]);
    free(results);
    free(msgs);
    return err;
}

kp_err kp_notify_deliver_direct(kp_store *rd, const kp_notify_env *env, const kp_notify_io *io,
                                kp_sender *sender, kp_channel channel, kp_rate *rate,
                                kp_time now, size_t *n, kp_deliver_stats *stats, kp_error *e)
{
    *n = 0;
    endpoint_cache cache;
    memset(&cache, 0, sizeof cache);
    if (io->direct_take == NULL || io->direct_done == NULL) return KP_OK;
    int workers = rate->workers < 1 ? 1 : rate->workers;
    size_t limit = KP_DELIVER_BATCH / (size_t)workers;
    if (limit < KP_DELIVER_BATCH_MIN) limit = KP_DELIVER_BATCH_MIN;
    kp_message *msgs = calloc(limit, sizeof *msgs);
    void **tokens = calloc(limit, sizeof *tokens);
    if (msgs == NULL || tokens == NULL) {
        free(msgs);
        free(tokens);
        return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory for a delivery pass");
    }
    size_t got = io->direct_take(io->ctx, channel, msgs, tokens, limit);
    uint64_t start = mono_ns();
    for (size_t i = 0; i < got; i++) {
        const kp_message *m = &msgs[i];
        bool stop = wait_rate(io, rate);
        kp_time t = now + (kp_time)((mono_ns() - start) / 1000000000u);
        kp_message_result r;
        if (stop) {
            /* Untried: written pending, due at once, when the io writes
             * its event. */
            memset(&r, 0, sizeof r);
            r.id = m->id;
            r.state = KP_MSG_PENDING;
            r.attempts = m->attempts;
            r.next_at = t;
            stats->handed_back[channel]++;
        } else {
            attempt(rd, env, sender, m, t, &r, stats, &cache);
        }
        io->direct_done(io->ctx, tokens[i], &r);
        (*n)++;
    }
    endpoint_cache_drop(&cache);
    free(tokens);
    free(msgs); /* copies: the sealed blobs are the io's */
    return KP_OK;
}

/* ------------------------------------------------- io on a store */

static kp_err store_failed(kp_store *st, kp_err err, const char *what, kp_error *e)
{
    kp_error_set(e, err, "database", "%s: %s", what, st->last_error);
    return err;
}

/* Runs begin, then the caller's work (err), then commit or rollback. */
static kp_err store_begin(kp_store *st, kp_error *e)
{
    kp_err err = st->ops->begin(st);
    return err ? store_failed(st, err, "cannot begin a transaction", e) : KP_OK;
}

static kp_err store_end(kp_store *st, kp_err err, const char *what, kp_error *e)
{
    if (err) {
        if (e->message[0] == '\0') store_failed(st, err, what, e);
        st->ops->rollback(st);
        return err;
    }
    if ((err = st->ops->commit(st))) return store_failed(st, err, "commit failed", e);
    return KP_OK;
}

static kp_err store_dispatch_batch(void *ctx, kp_dispatch_item *items, size_t n, kp_time now,
                                   kp_error *e)
{
    kp_store *st = ctx;
    kp_err err = store_begin(st, e);
    for (size_t i = 0; err == KP_OK && i < n; i++)
        err = st->ops->notify->event_dispatch(st, items[i].event_id, items[i].msgs, items[i].n,
                                              now);
    return store_end(st, err, "writing the messages of events", e);
}

static kp_err store_dispatch(void *ctx, int64_t event_id, kp_message *msgs, size_t n, kp_time now,
                             kp_error *e)
{
    kp_dispatch_item item = {.event_id = event_id, .msgs = msgs, .n = n};
    return store_dispatch_batch(ctx, &item, 1, now, e);
}

static kp_err store_claim(void *ctx, kp_time now, kp_time lease_until, kp_channel channel,
                          kp_message *out, size_t limit, size_t *n, kp_error *e)
{
    kp_store *st = ctx;
    *n = 0;
    kp_err err = store_begin(st, e);
    if (err) return err;
    err = st->ops->notify->messages_claim(st, now, lease_until, channel, out, limit, n);
    err = store_end(st, err, "claiming due messages", e);
    if (err) {
        for (size_t i = 0; i < *n; i++) kp_message_release(&out[i]);
        *n = 0;
    }
    return err;
}

static kp_err store_settle(void *ctx, const kp_message_result *r, size_t n, kp_error *e)
{
    kp_store *st = ctx;
    kp_err err = store_begin(st, e);
    if (err) return err;
    return store_end(st, st->ops->notify->messages_settle(st, r, n), "recording outcomes", e);
}

void kp_notify_io_store(kp_notify_io *io, kp_store *st)
{
    memset(io, 0, sizeof *io);
    io->ctx = st;
    io->dispatch = store_dispatch;
    io->dispatch_batch = store_dispatch_batch;
    io->claim = store_claim;
    io->settle = store_settle;
}
