/*
 * notifier.c: the server's notification threads: dispatch and delivery
 * through the writer.
 *
 * The dispatch thread wakes every DISPATCH_EVERY_MS, or sooner after a
 * purchase or return committed (kp_notifier_poke, at most every
 * DISPATCH_GAP_MS so a busy till floor does not turn every purchase into a
 * pass), reads pending events on its own read connection and plans them
 * (kp_notify_dispatch_pass); the messages are written by one writer job per
 * page of events. After a poke it first asks the writer to publish
 * (kp_writer_barrier), so it sees the purchase that poked it at once
 * instead of after the writer's next commit.
 * When it made messages it wakes the delivery threads.
 *
 * First attempts without a row (kp_notify_io.direct): an event whose
 * messages are all webhooks due at once is held in memory (a
 * direct_event), its deliveries queued on the webhook lane; the workers
 * take them before claiming rows and report each outcome; the next pass
 * writes the events whose deliveries were all tried (event_dispatch with
 * the messages in their outcome's state) before it reads. The event stays
 * pending in the store until then, so a crash re-plans it. A pass reads
 * after a cursor (every event up to it was handed over or written); every
 * RESCAN_EVERY_MS it reads from the first, after a barrier (what it wrote
 * is then visible as dispatched), skipping the ids it holds: an event is
 * never planned twice while the server runs. Stopping writes every held
 * event, its untried deliveries pending.
 *
 * A lane per channel that can send: e-mail and SMS when the --notify file
 * configures them and the key file is loaded (their recipients are
 * sealed), webhooks unless the file turns them off. A lane runs the
 * channel's "concurrency" delivery threads (workers), which share its
 * token bucket (kp_rate_share: the rate is the channel's, not each
 * worker's); each worker has its own read connection (endpoints) and its
 * own kp_sender (a curl handle kept between messages), and runs
 * kp_notify_deliver_pass: claim its share of the due messages (a writer
 * job; the leases keep two workers off one message), send, settle (writer
 * jobs in batches). So a channel has up to "concurrency" sends in flight,
 * each waiting for its provider. With nothing due a worker sleeps
 * IDLE_POLL_MS (a retry's backoff comes due without anyone waking it) or
 * until the dispatcher wakes the lanes.
 *
 * Every write is a KP_JOB_CALL job on the writer, so the notifier never
 * competes with purchases for SQLite's lock. The jobs are lazy (server.h):
 * they force no commit of their own but ride the writer's next one, so
 * the outbox does not turn SQLite's long transaction into a commit per
 * job; a crash may lose the last half second of bookkeeping, which only
 * re-dispatches events (same keys) and re-sends what was in flight.
 *
 * Stopping: the threads see the flag between messages (io.stopping), so a
 * send in flight finishes or times out, claimed messages not yet sent are
 * handed back, and outcomes are settled while the writer still runs.
 */
#define _GNU_SOURCE /* pthread_setname_np */
#include "server.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto/pii.h"
#include "notify/notify.h"

enum {
    DIRECT_QUEUE = 4096,     /* first attempts waiting in a lane, at most */
    DIRECT_WRITE_PAGE = 64,  /* events of first attempts written per writer job */
    RESCAN_EVERY_MS = 2000,  /* a dispatch pass reads from the first pending event */
    CLAIM_EVERY_MS = 1000,   /* a busy lane still claims due rows (retries) this often */
    DISPATCH_EVERY_MS = 150, /* the dispatcher's poll */
    DISPATCH_GAP_MS = 100,   /* a poke runs a pass at most this often */
    IDLE_POLL_MS = 1000,     /* a delivery thread with nothing due looks again */
    STATS_EVERY_MS = 1000,   /* the outbox's figures for /metrics, while scraped */
};

typedef struct worker {
    struct lane *lane;
    kp_store *rd;
    kp_sender *sender;
    pthread_t thread;
    bool started;
    kp_buf out; /* the writer jobs' output, unused but required */
    uint64_t last_claim_ms;
} worker;

/* An event whose messages (webhooks due at once) go to their first
 * attempt straight from the dispatcher, without a row: written, in the
 * state the attempts left them, with the event's dispatch once every one
 * was tried (or handed back at a stop). */
typedef struct direct_event direct_event;

/* One message of a direct_event: what a lane's queue holds, and the token
 * of its attempt. */
typedef struct direct_ref {
    direct_event *ev;
    size_t i;
} direct_ref;

struct direct_event {
    direct_event *prev, *next; /* in the notifier's held list, or (next) its done list */
    int64_t event_id;
    kp_time planned_at; /* the messages' created_at */
    size_t n, left;     /* messages; those not yet tried */
    kp_message *msgs;   /* owned, with their sealed blobs */
    direct_ref *refs;   /* one a message */
};

typedef struct lane {
    struct kp_notifier *nt;
    kp_channel channel;
    bool on;
    direct_ref **queue; /* a ring of DIRECT_QUEUE, under nt->lock */
    size_t q_head, q_len;
    kp_rate rate; /* shared by the workers */
    int n_workers;
    worker *workers;
    char last_problem[512]; /* under nt->lock */
} lane;

struct kp_notifier {
    kp_server *srv;
    kp_notify_config config;
    kp_store *rd; /* the dispatcher's read connection */
    kp_buf out;
    pthread_t thread;
    bool started;
    lane lanes[KP_CHANNEL__COUNT];
    atomic_bool stop;
    atomic_bool poked;
    atomic_bool stats_wanted;
    pthread_mutex_t lock;
    pthread_cond_t wake;       /* the dispatcher: a poke or stop */
    pthread_cond_t lanes_wake; /* the delivery threads: messages made, or stop */
    uint64_t lanes_gen;        /* bumped with lanes_wake, under lock */
    bool has_outbox;           /* outbox and outbox_at under lock */
    kp_outbox_stats outbox;
    char last_problem[512];
    /* First attempts without a row (under lock): the events held (until
     * written), the messages held by state and channel (for the
     * metrics). */
    direct_event *held, *done; /* being tried; tried, to be written (no prev) */
    size_t n_held;             /* of both */
    int64_t held_by_state[4][KP_CHANNEL__COUNT];
    /* The dispatcher's own (no lock): every pending event up to the cursor
     * was taken or written, so a pass reads after it; a rescan pass reads
     * from the first, after a barrier, skipping the held ids (a sorted
     * snapshot). */
    int64_t cursor;
    bool rescan;
    uint64_t last_rescan_ms;
    int64_t *held_ids;
    size_t n_held_ids, cap_held_ids;
    bool direct_off; /* KOPILKA_NOTIFY_DIRECT=0: every delivery gets its row first */
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void deadline_in_ms(struct timespec *until, uint64_t ms)
{
    clock_gettime(CLOCK_REALTIME, until);
    until->tv_sec += (time_t)(ms / 1000);
    until->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until->tv_nsec >= 1000000000L) {
        until->tv_sec++;
        until->tv_nsec -= 1000000000L;
    }
}

/* Prints a problem once, not at every pass while it lasts. */
static void report(char *last, size_t size, const char *who, const kp_error *e)
{
    char text[512];
    snprintf(text, sizeof text, "%s%s%s", e->field, e->field[0] ? ": " : "", e->message);
    if (strncmp(text, last, size - 1) == 0) return;
    fprintf(stderr, "kopilka: notifier: %s: %s\n", who, text);
    snprintf(last, size, "%s", text);
}

/* ---- the io: each call one KP_JOB_CALL job on the writer */

typedef struct io_ctx {
    kp_notifier *nt;
    kp_buf *out;
} io_ctx;

typedef struct dispatch_call {
    kp_dispatch_item *items;
    size_t n;
    kp_time now;
} dispatch_call;

static kp_err run_dispatch(void *ctx, kp_store *st, const kp_program *program, kp_scratch *sc,
                           kp_buf *out, bool *replayed, kp_error *e)
{
    dispatch_call *c = ctx;
    (void)program, (void)sc, (void)out, (void)replayed;
    for (size_t i = 0; i < c->n; i++) {
        kp_err err = st->ops->notify->event_dispatch(st, c->items[i].event_id, c->items[i].msgs,
                                                     c->items[i].n, c->now);
        if (err)
            return kp_error_set(e, err, "database", "writing the messages of event %lld: %s",
                                (long long)c->items[i].event_id, st->last_error);
    }
    return KP_OK;
}

typedef struct claim_call {
    kp_time now, lease_until;
    kp_channel channel;
    kp_message *out;
    size_t limit, n;
} claim_call;

static kp_err run_claim(void *ctx, kp_store *st, const kp_program *program, kp_scratch *sc,
                        kp_buf *out, bool *replayed, kp_error *e)
{
    claim_call *c = ctx;
    (void)program, (void)sc, (void)out, (void)replayed;
    /* A retry of the job (KP_ERR_BUSY) starts again: let go of the first
     * try's messages. */
    for (size_t i = 0; i < c->n; i++) kp_message_release(&c->out[i]);
    c->n = 0;
    kp_err err = st->ops->notify->messages_claim(st, c->now, c->lease_until, c->channel, c->out,
                                                 c->limit, &c->n);
    if (err) {
        for (size_t i = 0; i < c->n; i++) kp_message_release(&c->out[i]);
        c->n = 0;
        return kp_error_set(e, err, "database", "claiming due messages: %s", st->last_error);
    }
    return KP_OK;
}

typedef struct settle_call {
    const kp_message_result *r;
    size_t n;
} settle_call;

static kp_err run_settle(void *ctx, kp_store *st, const kp_program *program, kp_scratch *sc,
                         kp_buf *out, bool *replayed, kp_error *e)
{
    settle_call *c = ctx;
    (void)program, (void)sc, (void)out, (void)replayed;
    kp_err err = st->ops->notify->messages_settle(st, c->r, c->n);
    if (err)
        return kp_error_set(e, err, "database", "recording delivery outcomes: %s", st->last_error);
    return KP_OK;
}

static kp_err submit(io_ctx *io, kp_err (*call)(void *, kp_store *, const kp_program *,
                                                kp_scratch *, kp_buf *, bool *, kp_error *),
                     void *ctx, kp_time now, kp_error *e)
{
    kp_job job;
    memset(&job, 0, sizeof job);
    job.type = KP_JOB_CALL;
    job.lazy = true; /* bookkeeping: rides the writer's next commit (server.h) */
    job.store = "";
    job.call = call;
    job.ctx = ctx;
    job.out = io->out;
    job.now = now;
    kp_buf_reset(io->out);
    kp_writer_submit(io->nt->srv->writer, &job);
    if (job.err) *e = job.error;
    return job.err;
}

static kp_err io_dispatch_batch(void *ctx, kp_dispatch_item *items, size_t n, kp_time now,
                                kp_error *e)
{
    dispatch_call c = {.items = items, .n = n, .now = now};
    return submit(ctx, run_dispatch, &c, now, e);
}

static kp_err io_dispatch(void *ctx, int64_t event_id, kp_message *msgs, size_t n, kp_time now,
                          kp_error *e)
{
    kp_dispatch_item item = {.event_id = event_id, .msgs = msgs, .n = n};
    return io_dispatch_batch(ctx, &item, 1, now, e);
}

static kp_err io_claim(void *ctx, kp_time now, kp_time lease_until, kp_channel channel,
                       kp_message *out, size_t limit, size_t *n, kp_error *e)
{
    claim_call c = {.now = now, .lease_until = lease_until, .channel = channel, .out = out,
                    .limit = limit};
    kp_err err = submit(ctx, run_claim, &c, now, e);
    if (err) {
        for (size_t i = 0; i < c.n; i++) kp_message_release(&out[i]);
        c.n = 0;
    }
    *n = c.n;
    return err;
}

static kp_err io_settle(void *ctx, const kp_message_result *r, size_t n, kp_error *e)
{
    settle_call c = {.r = r, .n = n};
    return submit(ctx, run_settle, &c, 0, e);
}

static bool io_stopping(void *ctx)
{
    io_ctx *io = ctx;
    return atomic_load(&io->nt->stop);
}

static void io_note(void *ctx, const char *text)
{
    (void)ctx;
    fprintf(stderr, "kopilka: notifier: %s\n", text);
}

/* ---- first attempts without a row (kp_notify_io.direct) */

static void direct_free(direct_event *ev)
{
    for (size_t i = 0; i < ev->n; i++) kp_message_release(&ev->msgs[i]);
    free(ev->msgs);
    free(ev->refs);
    free(ev);
}

static bool io_direct(void *ctx, kp_dispatch_item *it, kp_time now)
{
    io_ctx *io = ctx;
    kp_notifier *nt = io->nt;
    lane *l = &nt->lanes[KP_CHANNEL_WEBHOOK];
    if (nt->direct_off || !l->on || l->queue == NULL || it->n == 0) return false;
    direct_event *ev = calloc(1, sizeof *ev);
    if (ev) ev->msgs = malloc(it->n * sizeof *ev->msgs);
    if (ev) ev->refs = malloc(it->n * sizeof *ev->refs);
    if (ev == NULL || ev->msgs == NULL || ev->refs == NULL) {
        if (ev) free(ev->msgs);
        free(ev);
        return false;
    }
    pthread_mutex_lock(&nt->lock);
    if (l->q_len + it->n > DIRECT_QUEUE) {
        /* The workers are behind: written with rows, claimed as before. */
        pthread_mutex_unlock(&nt->lock);
        free(ev->msgs);
        free(ev->refs);
        free(ev);
        return false;
    }
    ev->event_id = it->event_id;
    ev->planned_at = now;
    ev->n = ev->left = it->n;
    memcpy(ev->msgs, it->msgs, it->n * sizeof *ev->msgs);
    for (size_t i = 0; i < ev->n; i++) {
        ev->refs[i] = (direct_ref){ev, i};
        l->queue[(l->q_head + l->q_len++) % DIRECT_QUEUE] = &ev->refs[i];
        nt->held_by_state[KP_MSG_PENDING][ev->msgs[i].channel]++;
    }
    ev->prev = NULL;
    ev->next = nt->held;
    if (nt->held) nt->held->prev = ev;
    nt->held = ev;
    nt->n_held++;
    pthread_mutex_unlock(&nt->lock);
    it->n = 0; /* the messages (and their blobs) are ev's now */
    if (ev->event_id > nt->cursor) nt->cursor = ev->event_id;
    return true;
}

static int by_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static bool io_in_flight(void *ctx, int64_t event_id)
{
    kp_notifier *nt = ((io_ctx *)ctx)->nt;
    return nt->n_held_ids &&
           bsearch(&event_id, nt->held_ids, nt->n_held_ids, sizeof event_id, by_id) != NULL;
}

static int64_t io_resume_after(void *ctx)
{
    kp_notifier *nt = ((io_ctx *)ctx)->nt;
    return nt->rescan ? 0 : nt->cursor;
}

static size_t io_direct_take(void *ctx, kp_channel channel, kp_message *out, void **tokens,
                             size_t limit)
{
    kp_notifier *nt = ((io_ctx *)ctx)->nt;
    lane *l = &nt->lanes[channel];
    size_t n = 0;
    pthread_mutex_lock(&nt->lock);
    while (l->queue && n < limit && l->q_len > 0) {
        direct_ref *r = l->queue[l->q_head];
        l->q_head = (l->q_head + 1) % DIRECT_QUEUE;
        l->q_len--;
        out[n] = r->ev->msgs[r->i]; /* a copy: the blob stays the event's */
        tokens[n++] = r;
    }
    pthread_mutex_unlock(&nt->lock);
    return n;
}

static void io_direct_done(void *ctx, void *token, const kp_message_result *r)
{
    kp_notifier *nt = ((io_ctx *)ctx)->nt;
    direct_ref *ref = token;
    kp_message *m = &ref->ev->msgs[ref->i];
    pthread_mutex_lock(&nt->lock);
    nt->held_by_state[m->state][m->channel]--;
    m->state = r->state;
    m->attempts = r->attempts;
    if (r->state == KP_MSG_PENDING) m->next_at = r->next_at;
    m->sent_at = r->sent_at;
    memcpy(m->provider_id, r->provider_id, sizeof m->provider_id);
    memcpy(m->last_error, r->last_error, sizeof m->last_error);
    nt->held_by_state[m->state][m->channel]++;
    direct_event *ev = ref->ev;
    if (--ev->left == 0) { /* every message tried: to the done list */
        if (ev->prev) ev->prev->next = ev->next;
        else nt->held = ev->next;
        if (ev->next) ev->next->prev = ev->prev;
        ev->prev = NULL;
        ev->next = nt->done;
        nt->done = ev;
    }
    pthread_mutex_unlock(&nt->lock);
}

typedef struct direct_write_call {
    direct_event **evs;
    size_t n;
} direct_write_call;

static kp_err run_direct_write(void *ctx, kp_store *st, const kp_program *program,
                               kp_scratch *sc, kp_buf *out, bool *replayed, kp_error *e)
{
    direct_write_call *c = ctx;
    (void)program, (void)sc, (void)out, (void)replayed;
    for (size_t i = 0; i < c->n; i++) {
        direct_event *ev = c->evs[i];
        kp_err err = st->ops->notify->event_dispatch(st, ev->event_id, ev->msgs, ev->n,
                                                     ev->planned_at);
        if (err)
            return kp_error_set(e, err, "database", "writing the deliveries of event %lld: %s",
                                (long long)ev->event_id, st->last_error);
    }
    return KP_OK;
}

static kp_err submit(io_ctx *io, kp_err (*call)(void *, kp_store *, const kp_program *,
                                                kp_scratch *, kp_buf *, bool *, kp_error *),
                     void *ctx, kp_time now, kp_error *e);

/* Writes the held events whose messages were all tried (`all`: every held
 * one, untried messages pending as planned: at a stop), DIRECT_WRITE_PAGE
 * a writer job. One that fails stays held for the next pass. */
static kp_err direct_write(kp_notifier *nt, io_ctx *io, bool all, kp_error *e)
{
    pthread_mutex_lock(&nt->lock);
    direct_event *ready = nt->done;
    nt->done = NULL;
    if (all) { /* the held ones after the done ones */
        direct_event **tail = &ready;
        while (*tail) tail = &(*tail)->next;
        *tail = nt->held;
        nt->held = NULL;
    }
    pthread_mutex_unlock(&nt->lock);
    kp_err err = KP_OK;
    direct_event *page[DIRECT_WRITE_PAGE];
    while (ready && err == KP_OK) {
        size_t n = 0;
        for (direct_event *ev = ready; ev && n < DIRECT_WRITE_PAGE; ev = ev->next) page[n++] = ev;
        direct_write_call c = {.evs = page, .n = n};
        kp_time now = page[0]->planned_at;
        if ((err = submit(io, run_direct_write, &c, now, e))) break;
        ready = page[n - 1]->next;
        pthread_mutex_lock(&nt->lock);
        nt->n_held -= n;
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < page[i]->n; j++)
                nt->held_by_state[page[i]->msgs[j].state][page[i]->msgs[j].channel]--;
        pthread_mutex_unlock(&nt->lock);
        for (size_t i = 0; i < n; i++) direct_free(page[i]);
    }
    if (ready) { /* done again, for the next pass */
        pthread_mutex_lock(&nt->lock);
        direct_event **tail = &ready;
        while (*tail) tail = &(*tail)->next;
        *tail = nt->done;
        nt->done = ready;
        pthread_mutex_unlock(&nt->lock);
    }
    return err;
}

/* The sorted ids of the held events, for a rescan pass (io_in_flight).
 * False when they do not fit (no memory): no rescan then. */
static bool snapshot_held(kp_notifier *nt)
{
    pthread_mutex_lock(&nt->lock);
    if (nt->n_held > nt->cap_held_ids) {
        int64_t *ids = realloc(nt->held_ids, nt->n_held * sizeof *ids);
        if (ids) {
            nt->held_ids = ids;
            nt->cap_held_ids = nt->n_held;
        }
    }
    size_t n = 0;
    for (direct_event *ev = nt->held; ev && n < nt->cap_held_ids; ev = ev->next)
        nt->held_ids[n++] = ev->event_id;
    for (direct_event *ev = nt->done; ev && n < nt->cap_held_ids; ev = ev->next)
        nt->held_ids[n++] = ev->event_id;
    bool all = n == nt->n_held;
    nt->n_held_ids = n;
    pthread_mutex_unlock(&nt->lock);
    if (n) qsort(nt->held_ids, n, sizeof *nt->held_ids, by_id);
    return all;
}

static void io_init(kp_notify_io *io, io_ctx *ctx)
{
    memset(io, 0, sizeof *io);
    io->ctx = ctx;
    io->dispatch = io_dispatch;
    io->dispatch_batch = io_dispatch_batch;
    io->claim = io_claim;
    io->settle = io_settle;
    io->stopping = io_stopping;
    io->note = io_note;
    io->direct = io_direct;
    io->in_flight = io_in_flight;
    io->resume_after = io_resume_after;
    io->direct_take = io_direct_take;
    io->direct_done = io_direct_done;
}

/* ---- the delivery threads */

static void wake_lanes(kp_notifier *nt)
{
    pthread_mutex_lock(&nt->lock);
    nt->lanes_gen++;
    pthread_cond_broadcast(&nt->lanes_wake);
    pthread_mutex_unlock(&nt->lock);
}

static void *lane_main(void *arg)
{
    worker *w = arg;
    lane *l = w->lane;
    kp_notifier *nt = l->nt;
    kp_server *srv = nt->srv;
    io_ctx ctx = {.nt = nt, .out = &w->out};
    char name[16];
    snprintf(name, sizeof name, "kp-%s", kp_channel_name(l->channel));
    pthread_setname_np(pthread_self(), name);
    kp_notify_io io;
    io_init(&io, &ctx);
    char who[64];
    snprintf(who, sizeof who, "delivering %s", kp_channel_name(l->channel));
    while (!atomic_load(&nt->stop)) {
        pthread_mutex_lock(&nt->lock);
        uint64_t gen = nt->lanes_gen;
        pthread_mutex_unlock(&nt->lock);
        const kp_program *program = kp_programs_hold(srv->programs);
        kp_notify_env env;
        kp_notify_env_init(&env, w->rd, srv->pii, program, &nt->config);
        kp_deliver_stats stats;
        memset(&stats, 0, sizeof stats);
        kp_error e = {0};
        size_t n = 0;
        /* First attempts the dispatcher handed over, then due rows (retries,
         * what was written first): those at least every CLAIM_EVERY_MS
         * however busy the first attempts keep the lane. */
        size_t n_direct = 0;
        kp_err err = kp_notify_deliver_direct(w->rd, &env, &io, w->sender, l->channel, &l->rate,
                                              kp_clock_now(&srv->config.clock), &n_direct,
                                              &stats, &e);
        uint64_t now_ms = mono_ms();
        if (err == KP_OK && (n_direct == 0 || now_ms - w->last_claim_ms >= CLAIM_EVERY_MS)) {
            w->last_claim_ms = now_ms;
            err = kp_notify_deliver_pass(w->rd, &env, &io, w->sender, l->channel, &l->rate,
                                         kp_clock_now(&srv->config.clock), &n, &stats, &e);
        }
        n += n_direct;
        kp_programs_drop(srv->programs, program);
        kp_metrics_outbox_delivered(srv->metrics, l->channel, stats.sent[l->channel],
                                    stats.failed[l->channel], stats.dead[l->channel]);
        if (err != KP_ERR_BUSY) {
            /* The lane's workers share one line of report: a problem is
             * printed once, not once per worker. */
            pthread_mutex_lock(&nt->lock);
            if (err) report(l->last_problem, sizeof l->last_problem, who, &e);
            else l->last_problem[0] = '\0';
            pthread_mutex_unlock(&nt->lock);
        }
        if (err == KP_OK && n > 0) continue; /* more may be due */
        pthread_mutex_lock(&nt->lock);
        struct timespec until;
        deadline_in_ms(&until, IDLE_POLL_MS);
        while (!atomic_load(&nt->stop) && nt->lanes_gen == gen)
            if (pthread_cond_timedwait(&nt->lanes_wake, &nt->lock, &until) == ETIMEDOUT) break;
        pthread_mutex_unlock(&nt->lock);
    }
    return NULL;
}

/* ---- the dispatch thread */

static void refresh_stats(kp_notifier *nt)
{
    kp_outbox_stats o;
    memset(&o, 0, sizeof o);
    if (nt->rd->ops->notify->outbox_stats(nt->rd, &o) != KP_OK) return;
    pthread_mutex_lock(&nt->lock);
    /* The deliveries held in memory (no row yet) count by the state their
     * first attempt left them in; their events count as pending (they are,
     * in the store). */
    for (int st = 0; st < 4; st++)
        for (int c = 1; c < KP_CHANNEL__COUNT; c++) o.by_state[st][c] += nt->held_by_state[st][c];
    for (direct_event *ev = nt->held; ev; ev = ev->next)
        if (ev->left > 0 && (o.oldest_pending_at == 0 || ev->planned_at < o.oldest_pending_at))
            o.oldest_pending_at = ev->planned_at;
    nt->outbox = o;
    nt->has_outbox = true;
    pthread_mutex_unlock(&nt->lock);
}

static void *dispatch_main(void *arg)
{
    kp_notifier *nt = arg;
    kp_server *srv = nt->srv;
    io_ctx ctx = {.nt = nt, .out = &nt->out};
    pthread_setname_np(pthread_self(), "kp-dispatch");
    kp_notify_io io;
    io_init(&io, &ctx);
    uint64_t last_stats = 0;
    refresh_stats(nt);
    while (!atomic_load(&nt->stop)) {
        uint64_t started = mono_ms();
        /* The first attempts done are written before the pass, so that
         * after a barrier a rescan sees them dispatched. */
        kp_error we = {0};
        kp_err werr = direct_write(nt, &ctx, false, &we);
        if (werr && werr != KP_ERR_BUSY)
            report(nt->last_problem, sizeof nt->last_problem, "writing deliveries", &we);
        nt->rescan = werr == KP_OK && started - nt->last_rescan_ms >= RESCAN_EVERY_MS &&
                     snapshot_held(nt);
        bool poked = atomic_exchange(&nt->poked, false);
        if (poked || nt->rescan) kp_writer_barrier(srv->writer);
        const kp_program *program = kp_programs_hold(srv->programs);
        kp_notify_env env;
        kp_notify_env_init(&env, nt->rd, srv->pii, program, &nt->config);
        kp_deliver_stats stats;
        memset(&stats, 0, sizeof stats);
        kp_error e = {0};
        size_t n = 0;
        kp_err err = kp_notify_dispatch_pass(nt->rd, &env, &io, kp_clock_now(&srv->config.clock),
                                             &n, &stats, &e);
        if (nt->rescan && err == KP_OK) nt->last_rescan_ms = started;
        nt->rescan = false;
        if (stats.last_event_id > nt->cursor) nt->cursor = stats.last_event_id;
        kp_programs_drop(srv->programs, program);
        kp_metrics_outbox_dispatched(srv->metrics, stats.dispatched_events);
        if (stats.planned_messages) wake_lanes(nt);
        if (err && err != KP_ERR_BUSY)
            report(nt->last_problem, sizeof nt->last_problem, "dispatching", &e);
        if (err == KP_OK) nt->last_problem[0] = '\0';
        if (atomic_load(&nt->stats_wanted) && mono_ms() - last_stats >= STATS_EVERY_MS) {
            atomic_store(&nt->stats_wanted, false);
            refresh_stats(nt);
            last_stats = mono_ms();
        }
        /* Sleep until the next poll, or a poke once the gap has passed. */
        pthread_mutex_lock(&nt->lock);
        for (;;) {
            uint64_t now = mono_ms(), since = now - started;
            if (atomic_load(&nt->stop) || since >= DISPATCH_EVERY_MS) break;
            if (atomic_load(&nt->poked) && since >= DISPATCH_GAP_MS) break;
            uint64_t wait = atomic_load(&nt->poked) ? DISPATCH_GAP_MS - since
                                                    : DISPATCH_EVERY_MS - since;
            struct timespec until;
            deadline_in_ms(&until, wait);
            pthread_cond_timedwait(&nt->wake, &nt->lock, &until);
        }
        pthread_mutex_unlock(&nt->lock);
    }
    return NULL;
}

/* ---- start, poke, stop */

void kp_notifier_poke(kp_notifier *nt)
{
    if (nt == NULL || atomic_load_explicit(&nt->poked, memory_order_relaxed)) return;
    atomic_store(&nt->poked, true);
    pthread_mutex_lock(&nt->lock);
    pthread_cond_signal(&nt->wake);
    pthread_mutex_unlock(&nt->lock);
}

bool kp_notifier_outbox(kp_notifier *nt, kp_outbox_stats *out)
{
    if (nt == NULL) return false;
    atomic_store(&nt->stats_wanted, true);
    pthread_mutex_lock(&nt->lock);
    bool has = nt->has_outbox;
    if (has) *out = nt->outbox;
    pthread_mutex_unlock(&nt->lock);
    return has;
}

/* Which channels get a delivery thread, and why not (for the start-up
 * line). */
static bool lane_wanted(const kp_notifier *nt, kp_channel c, const char **why)
{
    const kp_notify_config *cfg = &nt->config;
    bool on = c == KP_CHANNEL_EMAIL ? cfg->email.on
              : c == KP_CHANNEL_SMS ? cfg->sms.on
                                    : cfg->webhook.on;
    *why = "";
    if (!on) {
        *why = c == KP_CHANNEL_WEBHOOK ? "off in the --notify file" : "not configured";
        return false;
    }
    if (c != KP_CHANNEL_WEBHOOK && nt->srv->pii == NULL) {
        *why = "no key file, so recipients cannot be opened";
        return false;
    }
    return true;
}

void kp_notifier_stop(kp_notifier *nt)
{
    if (nt == NULL) return;
    atomic_store(&nt->stop, true);
    pthread_mutex_lock(&nt->lock);
    pthread_cond_broadcast(&nt->wake);
    pthread_cond_broadcast(&nt->lanes_wake);
    pthread_mutex_unlock(&nt->lock);
    if (nt->started) pthread_join(nt->thread, NULL);
    for (int c = 1; c < KP_CHANNEL__COUNT; c++) {
        lane *l = &nt->lanes[c];
        for (int i = 0; l->workers && i < l->n_workers; i++)
            if (l->workers[i].started) pthread_join(l->workers[i].thread, NULL);
    }
    /* Every held event is written now (its untried messages pending, due
     * as planned), while the writer still runs; one that cannot be is
     * left pending in the store, planned again at the next start. */
    if (nt->held || nt->done) {
        io_ctx ctx = {.nt = nt, .out = &nt->out};
        kp_error e = {0};
        if (direct_write(nt, &ctx, true, &e) != KP_OK)
            report(nt->last_problem, sizeof nt->last_problem, "writing deliveries", &e);
        for (direct_event **list = &nt->held; list; list = list == &nt->held ? &nt->done : NULL)
            while (*list) {
                direct_event *ev = *list;
                *list = ev->next;
                direct_free(ev);
            }
    }
    free(nt->held_ids);
    for (int c = 1; c < KP_CHANNEL__COUNT; c++) {
        lane *l = &nt->lanes[c];
        free(l->queue);
        for (int i = 0; l->workers && i < l->n_workers; i++) {
            worker *w = &l->workers[i];
            kp_sender_free(w->sender);
            if (w->rd) kp_store_close(w->rd);
            kp_buf_release(&w->out);
        }
        free(l->workers);
        if (l->on) kp_rate_release(&l->rate);
    }
    if (nt->rd) kp_store_close(nt->rd);
    kp_buf_release(&nt->out);
    pthread_mutex_destroy(&nt->lock);
    pthread_cond_destroy(&nt->wake);
    pthread_cond_destroy(&nt->lanes_wake);
    free(nt);
}

kp_err kp_notifier_start(kp_server *srv, const kp_notify_config *config, kp_notifier **out,
                         kp_error *e)
{
    *out = NULL;
    kp_notifier *nt = calloc(1, sizeof *nt);
    if (nt == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    nt->srv = srv;
    if (config) nt->config = *config;
    else kp_notify_config_default(&nt->config);
    atomic_init(&nt->stop, false);
    atomic_init(&nt->poked, false);
    atomic_init(&nt->stats_wanted, true);
    pthread_mutex_init(&nt->lock, NULL);
    pthread_cond_init(&nt->wake, NULL);
    pthread_cond_init(&nt->lanes_wake, NULL);
    kp_buf_init(&nt->out, 4096);
    const char *direct = getenv("KOPILKA_NOTIFY_DIRECT");
    nt->direct_off = direct && strcmp(direct, "0") == 0;
    kp_err err = kp_store_open(srv->config.db_path, false, &nt->rd, e);
    char lanes_line[256] = "";
    for (int c = 1; err == KP_OK && c < KP_CHANNEL__COUNT; c++) {
        lane *l = &nt->lanes[c];
        l->nt = nt;
        l->channel = c;
        const char *why;
        size_t used = strlen(lanes_line);
        if (!lane_wanted(nt, c, &why)) {
            snprintf(lanes_line + used, sizeof lanes_line - used, "%s%s: %s", used ? "; " : "",
                     kp_channel_name(c), why);
            continue;
        }
        double rate = c == KP_CHANNEL_EMAIL ? nt->config.email.rate_per_second
                      : c == KP_CHANNEL_SMS ? nt->config.sms.rate_per_second
                                            : nt->config.webhook.rate_per_second;
        int n = c == KP_CHANNEL_EMAIL ? nt->config.email.concurrency
                : c == KP_CHANNEL_SMS ? nt->config.sms.concurrency
                                      : nt->config.webhook.concurrency;
        if (n < 1 || n > KP_CONCURRENCY_MAX) {
            err = kp_error_set(e, KP_ERR_INVALID, "concurrency",
                               "%s: %d delivery workers; allowed 1 to %d", kp_channel_name(c), n,
                               KP_CONCURRENCY_MAX);
            break;
        }
        kp_rate_init(&l->rate, rate);
        kp_rate_share(&l->rate, n);
        l->on = true;
        if (c == KP_CHANNEL_WEBHOOK && !nt->direct_off &&
            (l->queue = calloc(DIRECT_QUEUE, sizeof *l->queue)) == NULL) {
            err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
            break;
        }
        if ((l->workers = calloc((size_t)n, sizeof *l->workers)) == NULL) {
            err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
            break;
        }
        l->n_workers = n;
        for (int i = 0; err == KP_OK && i < n; i++) {
            worker *w = &l->workers[i];
            w->lane = l;
            kp_buf_init(&w->out, 4096);
            if ((err = kp_store_open(srv->config.db_path, false, &w->rd, e))) break;
            if ((w->sender = kp_sender_new(&nt->config, c)) == NULL)
                err = kp_error_set(e, KP_ERR_NOMEM, "", "cannot make the %s sender",
                                   kp_channel_name(c));
        }
        if (err) break;
        if (rate > 0)
            snprintf(lanes_line + used, sizeof lanes_line - used,
                     "%s%s: on, %d at once, %g a second", used ? "; " : "", kp_channel_name(c), n,
                     rate);
        else
            snprintf(lanes_line + used, sizeof lanes_line - used, "%s%s: on, %d at once",
                     used ? "; " : "", kp_channel_name(c), n);
    }
    if (err == KP_OK) {
        if (pthread_create(&nt->thread, NULL, dispatch_main, nt) != 0)
            err = kp_error_set(e, KP_ERR_NOMEM, "", "cannot start the notifier's thread");
        else
            nt->started = true;
    }
    for (int c = 1; err == KP_OK && c < KP_CHANNEL__COUNT; c++) {
        lane *l = &nt->lanes[c];
        for (int i = 0; err == KP_OK && i < l->n_workers; i++) {
            worker *w = &l->workers[i];
            if (pthread_create(&w->thread, NULL, lane_main, w) != 0)
                err = kp_error_set(e, KP_ERR_NOMEM, "", "cannot start %s delivery thread %d",
                                   kp_channel_name(c), i + 1);
            else
                w->started = true;
        }
    }
    if (err) {
        kp_notifier_stop(nt);
        return err;
    }
    fprintf(stderr, "kopilka: notifications: %s\n", lanes_line);
    *out = nt;
    return KP_OK;
}
