/*
 * scheduler.c: the server's clock-driven work. A thread wakes at start (to
 * catch up after downtime) and then every `tick_seconds`, and hands the
 * writer tick jobs (kp_service_tick, a bounded number of accounts each)
 * until no due work is left. The work runs on the writer's connection like
 * any purchase, so it never competes with it for the database lock, and
 * each job commits its effects together with the job state that makes
 * every due item run exactly once.
 *
 * Several servers on one PostgreSQL database each run this scheduler, and
 * each job still runs exactly once: a tick job takes its jobs' state with
 * job_state_get, which on PostgreSQL holds a transaction-scoped advisory
 * lock per job until the job's group commits, so another server's tick
 * skips that job (kp_tick_report.busy) and looks again at its next wake-up.
 * Expiry needs no lock: it empties the lots it expires, under the account's
 * row lock, so a second server finds nothing left to expire. A job the
 * writer answers KP_ERR_BUSY (contention with another server, after the
 * writer's own retries, or a full queue) is no failure either: that work
 * waits quietly for the next wake-up.
 *
 * Finding the accounts with expired lots scans every open lot; that scan
 * runs here, on the scheduler's own read connection, and only the accounts
 * found go to the writer, so the scan never holds up purchases.
 *
 * Campaigns (src/service/marketing.c) run here too: the due ones found on
 * the read connection; a start's segment evaluated on the read connection
 * too, its list written by writer jobs of KOPILKA_CAMPAIGN_START_CHUNK
 * members (default 1000) under a hold of the start (job_hold: on
 * PostgreSQL one server at a time); then writer jobs of up to
 * KOPILKA_CAMPAIGN_STEP members' grants (default 200), with
 * KOPILKA_CAMPAIGN_PAUSE_MS milliseconds between steps (default 0) to
 * throttle a large one. A started campaign wakes the scheduler at once
 * (kp_scheduler_wake). One wake-up gives each due campaign at most
 * KOPILKA_CAMPAIGN_WAKE_STEPS steps (default 50: 10 000 members at the
 * default step); a campaign with more to do makes the next wake-up come at
 * once, after the expiry scan and the tick jobs of that wake-up, so a long
 * campaign never makes expiry, birthdays, reviews or reminders wait for its
 * end, and several running campaigns advance side by side.
 */
#include "server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "service/marketing.h"
#include "service/service_rules.h"

/* Accounts one tick job may touch: small enough that purchases queued
 * behind it wait a few milliseconds, not seconds. */
#define TICK_BUDGET 500
/* Jobs one wake-up may submit before sleeping again. */
#define TICK_JOBS_MAX 10000

struct kp_scheduler {
    kp_server *srv;
    kp_store *scan;              /* read connection for the expiry scan */
    kp_birthdays *own_birthdays; /* when the server gives no finder */
    int interval_seconds;
    const kp_birthday_finder *birthdays;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop;
    bool woken;             /* kp_scheduler_wake since the last wake-up */
    size_t campaign_step;   /* KOPILKA_CAMPAIGN_STEP; 0 = the default */
    size_t start_chunk;     /* KOPILKA_CAMPAIGN_START_CHUNK: members a start's job */
    long campaign_pause_ms; /* KOPILKA_CAMPAIGN_PAUSE_MS */
    int campaign_wake_steps; /* KOPILKA_CAMPAIGN_WAKE_STEPS: steps a campaign a wake-up */
    char last_note[256];    /* printed once, not at every wake-up */
};

typedef struct tick_call {
    kp_time now;
    const kp_birthday_finder *birthdays;
    kp_tick_report report;
} tick_call;

static kp_err run_tick(void *ctx, kp_store *st, const kp_program *program, kp_scratch *sc,
                       kp_buf *out, bool *replayed, kp_error *e)
{
    tick_call *c = ctx;
    (void)out;
    (void)replayed;
    memset(&c->report, 0, sizeof c->report);
    if (program == NULL) return KP_OK;
    kp_tick_opts opts = {.birthdays = c->birthdays, .skip_expiry = true};
    return kp_service_tick(st, program, &opts, c->now, TICK_BUDGET, sc, &c->report, e);
}

typedef struct expire_call {
    kp_time now;
    const int64_t *ids;
    size_t n;
    kp_tick_report report;
} expire_call;

static kp_err run_expire(void *ctx, kp_store *st, const kp_program *program, kp_scratch *sc,
                         kp_buf *out, bool *replayed, kp_error *e)
{
    expire_call *c = ctx;
    (void)out;
    (void)replayed;
    memset(&c->report, 0, sizeof c->report);
    if (program == NULL) return KP_OK;
    return kp_service_expire(st, program, c->now, c->ids, c->n, sc, &c->report, e);
}

/* Runs one job on the writer and counts it for /metrics under `kind`. */
static bool submit(kp_scheduler *s, kp_metrics_job kind, kp_job *job, kp_buf *out, kp_time now)
{
    job->type = KP_JOB_CALL;
    job->store = "";
    job->out = out;
    job->now = now;
    kp_writer_submit(s->srv->writer, job);
    /* Busy: not run now, nothing written; neither a run nor a failure. */
    if (job->err == KP_ERR_BUSY) return false;
    if (s->srv->metrics) kp_metrics_scheduler_run(s->srv->metrics, kind, job->err == KP_OK);
    if (job->err == KP_OK) return true;
    fprintf(stderr, "kopilka: scheduler: %s%s%s\n", job->error.field,
            job->error.field[0] ? ": " : "", job->error.message);
    return false;
}

/* Expires what is due: accounts found on the read connection, a page at a
 * time, expired by the writer. */
static void expire_all(kp_scheduler *s, kp_buf *out)
{
    int64_t ids[256];
    for (int i = 0; i < TICK_JOBS_MAX; i++) {
        kp_time now = kp_clock_now(&s->srv->config.clock);
        size_t n = 0;
        if (s->scan->ops->triggers->accounts_expiring(s->scan, now, ids, 256, &n) != KP_OK) {
            fprintf(stderr, "kopilka: scheduler: expiry scan failed: %s\n", s->scan->last_error);
            return;
        }
        if (n == 0) return;
        expire_call call = {.now = now, .ids = ids, .n = n};
        kp_job job;
        memset(&job, 0, sizeof job);
        job.call = run_expire;
        job.ctx = &call;
        /* No progress (no program yet): stop rather than scan again. */
        if (!submit(s, KP_METRICS_JOB_EXPIRE, &job, out, now) || n < 256 ||
            call.report.expired_accounts == 0)
            return;
    }
}

typedef struct campaign_call {
    kp_server *srv;
    int64_t id;
    size_t step; /* a grant step's members */
    kp_time now;
    /* A start's chunk: its list, taken on the scan connection (NULL: a
     * grant step), the chunk's size, where the start stands before the
     * job and after it (valid once the job committed). */
    const kp_campaign_list *start;
    size_t chunk;
    kp_campaign_start_pos at, next;
    bool more;
} campaign_call;

/* The back office as the scheduler acts in it, on `st`. */
static void scheduler_office(kp_office *o, kp_actor *actor, kp_server *srv, kp_store *st,
                             const kp_program *program, kp_time now, kp_scratch *sc)
{
    memset(actor, 0, sizeof *actor);
    actor->kind = KP_ACTOR_CLI;
    snprintf(actor->name, sizeof actor->name, "scheduler");
    kp_office_init(o, st, srv->pii, program, now, actor, sc);
}

static kp_err run_campaign(void *ctx, kp_store *st, const kp_program *program, kp_scratch *sc,
                           kp_buf *out, bool *replayed, kp_error *e)
{
    campaign_call *c = ctx;
    (void)out;
    (void)replayed;
    kp_actor actor;
    kp_office o;
    scheduler_office(&o, &actor, c->srv, st, program, c->now, sc);
    if (c->start)
        return kp_campaign_start_chunk(&o, c->start, c->chunk, &c->at, &c->next, &c->more, e);
    return kp_campaign_step_with(&o, c->id, c->step, NULL, &c->more, e);
}

static bool stopping(kp_scheduler *s)
{
    pthread_mutex_lock(&s->lock);
    bool stop = s->stop;
    pthread_mutex_unlock(&s->lock);
    return stop;
}

static void pause_between(const kp_scheduler *s)
{
    if (s->campaign_pause_ms <= 0) return;
    struct timespec pause = {s->campaign_pause_ms / 1000, (s->campaign_pause_ms % 1000) * 1000000L};
    nanosleep(&pause, NULL);
}

typedef enum start_end { START_STOPPED, START_WRITTEN, START_LEFT } start_end;

/* A start prepared on the read connection, written by writer jobs of
 * start_chunk members each (the tills' purchases go between them):
 * START_WRITTEN when its last job committed (the campaign runs),
 * START_STOPPED when the server stops first, START_LEFT otherwise (a
 * failure, or nothing to start: cancelled, refused, another server's).
 * A start cut short leaves the campaign STARTING: the next wake-up
 * prepares it again and redoes it from scratch. The whole start runs in
 * this wake-up (the list is not kept across wake-ups). */
static start_end campaign_start(kp_scheduler *s, const kp_campaign_list *start, kp_buf *out)
{
    campaign_call call = {.srv = s->srv, .id = start->id, .start = start, .chunk = s->start_chunk};
    for (;;) {
        if (stopping(s)) return START_STOPPED;
        call.now = kp_clock_now(&s->srv->config.clock);
        call.more = false;
        kp_job job;
        memset(&job, 0, sizeof job);
        job.call = run_campaign;
        job.ctx = &call;
        if (!submit(s, KP_METRICS_JOB_TICK, &job, out, call.now)) return START_LEFT;
        call.at = call.next;
        if (!call.more)
            return call.at.begun && call.at.written == start->n ? START_WRITTEN : START_LEFT;
        pause_between(s);
    }
}

/* A due campaign's list, evaluated on the scheduler's own read connection
 * before its start's writer job, so the tills never wait for a segment's
 * evaluation (only for its members' rows being written). NULL when it is
 * not starting now or the evaluation failed (the writer job then
 * evaluates it as before, and says why it fails). */
static kp_campaign_list *campaign_prepare(kp_scheduler *s, int64_t id, kp_time now)
{
    const kp_program *program = kp_programs_hold(s->srv->programs);
    kp_scratch *sc = kp_scratch_new();
    kp_campaign_list *start = NULL;
    if (sc) {
        kp_actor actor;
        kp_office o;
        scheduler_office(&o, &actor, s->srv, s->scan, program, now, sc);
        kp_error e = {0};
        if (kp_campaign_prepare(&o, id, &start, &e) != KP_OK)
            fprintf(stderr, "kopilka: scheduler: campaign %lld: %s\n", (long long)id, e.message);
        kp_scratch_free(sc);
    }
    kp_programs_drop(s->srv->programs, program);
    return start;
}

/* The due campaigns, each stepped at most campaign_wake_steps times; true
 * when one of them has more to do (the next wake-up comes at once). */
static bool campaigns_all(kp_scheduler *s, kp_buf *out)
{
    int64_t ids[64];
    size_t n = 0;
    bool left = false;
    kp_time now = kp_clock_now(&s->srv->config.clock);
    if (s->scan->ops->marketing->campaigns_due(s->scan, now, ids, 64, &n) != KP_OK) {
        fprintf(stderr, "kopilka: scheduler: campaigns: %s\n", s->scan->last_error);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        /* On PostgreSQL, one server at a time prepares and writes a start
         * (a session-level hold across its writer jobs, released by a
         * crash); another skips the campaign until then. */
        char hold[48];
        bool held = false;
        snprintf(hold, sizeof hold, "campaign-start:%lld", (long long)ids[i]);
        if (s->scan->ops->triggers->job_hold(s->scan, hold, &held) != KP_OK) {
            fprintf(stderr, "kopilka: scheduler: campaign %lld: %s\n", (long long)ids[i],
                    s->scan->last_error);
            continue;
        }
        if (!held) continue;
        kp_campaign_list *start = campaign_prepare(s, ids[i], now);
        start_end end = start ? campaign_start(s, start, out) : START_WRITTEN;
        kp_campaign_list_free(start);
        s->scan->ops->triggers->job_release(s->scan, hold);
        if (end == START_STOPPED) return false;
        /* (A start left unwritten is not granted from: the next wake-up
         * redoes it.) */
        if (end == START_LEFT) continue;
        for (int steps = 0;; steps++) {
            if (stopping(s)) return false;
            if (steps >= s->campaign_wake_steps) {
                left = true;
                break;
            }
            campaign_call call = {.srv = s->srv,
                                  .id = ids[i],
                                  .step = s->campaign_step,
                                  .now = kp_clock_now(&s->srv->config.clock)};
            kp_job job;
            memset(&job, 0, sizeof job);
            job.call = run_campaign;
            job.ctx = &call;
            if (!submit(s, KP_METRICS_JOB_TICK, &job, out, call.now) || !call.more) break;
            pause_between(s);
        }
    }
    return left;
}

/* One wake-up: tick jobs until no work is left, then a bounded slice of
 * each due campaign; true when a campaign has more to do. */
static bool tick_all(kp_scheduler *s)
{
    kp_buf out;
    kp_buf_init(&out, 4096);
    kp_buf_reserve(&out, 1024);
    expire_all(s, &out);
    for (int i = 0; i < TICK_JOBS_MAX; i++) {
        tick_call call = {.now = kp_clock_now(&s->srv->config.clock), .birthdays = s->birthdays};
        kp_job job;
        memset(&job, 0, sizeof job);
        job.call = run_tick;
        job.ctx = &call;
        if (!submit(s, KP_METRICS_JOB_TICK, &job, &out, call.now)) break;
        if (call.report.note[0] && strcmp(call.report.note, s->last_note) != 0) {
            fprintf(stderr, "kopilka: scheduler: %s\n", call.report.note);
            snprintf(s->last_note, sizeof s->last_note, "%s", call.report.note);
        }
        if (!call.report.more) break;
    }
    bool left = campaigns_all(s, &out);
    kp_buf_release(&out);
    return left;
}

static void *scheduler_main(void *arg)
{
    kp_scheduler *s = arg;
    for (;;) {
        bool left = tick_all(s);
        pthread_mutex_lock(&s->lock);
        if (left) {
            /* A campaign has more: the next slice now, after the rest. */
            bool stop = s->stop;
            s->woken = false;
            pthread_mutex_unlock(&s->lock);
            if (stop) break;
            continue;
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += s->interval_seconds;
        while (!s->stop && !s->woken)
            if (pthread_cond_timedwait(&s->wake, &s->lock, &until) == ETIMEDOUT) break;
        s->woken = false;
        bool stop = s->stop;
        pthread_mutex_unlock(&s->lock);
        if (stop) break;
    }
    return NULL;
}

kp_err kp_scheduler_start(kp_server *srv, int interval_seconds, const kp_birthday_finder *birthdays,
                          kp_scheduler **out, kp_error *e)
{
    *out = NULL;
    kp_scheduler *s = calloc(1, sizeof *s);
    if (s == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    s->srv = srv;
    s->interval_seconds = interval_seconds;
    s->birthdays = birthdays;
    const char *env = getenv("KOPILKA_CAMPAIGN_STEP");
    char *end;
    long long v = env ? strtoll(env, &end, 10) : 0;
    if (env && *end == '\0' && v > 0 && v <= KP_CAMPAIGN_STEP_MAX) s->campaign_step = (size_t)v;
    env = getenv("KOPILKA_CAMPAIGN_PAUSE_MS");
    v = env ? strtoll(env, &end, 10) : 0;
    if (env && *end == '\0' && v > 0 && v <= 60000) s->campaign_pause_ms = (long)v;
    s->start_chunk = 1000;
    env = getenv("KOPILKA_CAMPAIGN_START_CHUNK");
    v = env ? strtoll(env, &end, 10) : 0;
    if (env && *end == '\0' && v > 0 && v <= KP_CAMPAIGN_MEMBERS_MAX) s->start_chunk = (size_t)v;
    s->campaign_wake_steps = 50;
    env = getenv("KOPILKA_CAMPAIGN_WAKE_STEPS");
    v = env ? strtoll(env, &end, 10) : 0;
    if (env && *end == '\0' && v > 0 && v <= TICK_JOBS_MAX) s->campaign_wake_steps = (int)v;
    kp_err err = kp_store_open(srv->config.db_path, false, &s->scan, e);
    if (err) {
        free(s);
        return err;
    }
    if (birthdays == NULL) {
        if ((err = kp_birthdays_open(srv->config.db_path, &s->own_birthdays, e))) {
            kp_store_close(s->scan);
            free(s);
            return err;
        }
        s->birthdays = kp_birthdays_finder(s->own_birthdays);
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    if (pthread_create(&s->thread, NULL, scheduler_main, s) != 0) {
        kp_store_close(s->scan);
        kp_birthdays_free(s->own_birthdays);
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->wake);
        free(s);
        return kp_error_set(e, KP_ERR_NOMEM, "", "cannot start the scheduler thread");
    }
    *out = s;
    return KP_OK;
}

void kp_scheduler_stop(kp_scheduler *s)
{
    if (s == NULL) return;
    pthread_mutex_lock(&s->lock);
    s->stop = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    kp_store_close(s->scan);
    kp_birthdays_free(s->own_birthdays);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->wake);
    free(s);
}

void kp_scheduler_wake(kp_scheduler *s)
{
    if (s == NULL) return;
    pthread_mutex_lock(&s->lock);
    s->woken = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
}
