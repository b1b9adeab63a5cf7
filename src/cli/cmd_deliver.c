/*
 * cmd_deliver.c: kopilka deliver DB: dispatch and deliver the outbox from
 * the command line, on one connection (kp_notify_io_store: each step a
 * transaction of its own), until nothing is due, once (--once), or until
 * SIGINT/SIGTERM. `kopilka deliver --help` tells how it lives beside a
 * running server.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopilka/clock.h>

#include "cli.h"
#include "crypto/pii.h"
#include "notify/notify.h"
#include "service/service.h"

/* Passes of a run without --once: a bound, so a provider that fails every
 * message at once (with retries due at once) cannot keep it going forever. */
enum { PASSES_MAX = 100000 };

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) { stop_signal = sig; }

static bool stopping(void *ctx)
{
    (void)ctx;
    return stop_signal != 0;
}

static void note(void *ctx, const char *text)
{
    (void)ctx;
    fprintf(stderr, "kopilka deliver: %s\n", text);
}

static int fail(const kp_error *e)
{
    fprintf(stderr, "kopilka deliver: %s%s%s\n", e->field, e->field[0] ? ": " : "", e->message);
    return 1;
}

/* Which channels this run sends on, and why not (printed once). */
static bool channel_on(const kp_notify_config *cfg, const kp_pii *pii, kp_channel c)
{
    const char *name = kp_channel_name(c);
    bool on = c == KP_CHANNEL_EMAIL ? cfg->email.on
              : c == KP_CHANNEL_SMS ? cfg->sms.on
                                    : cfg->webhook.on;
    if (!on) {
        if (c != KP_CHANNEL_WEBHOOK)
            printf("%s: not configured (give --notify FILE); its messages wait\n", name);
        else
            printf("%s: off in the --notify file; its messages wait\n", name);
        return false;
    }
    if (c != KP_CHANNEL_WEBHOOK && pii == NULL) {
        printf("%s: the key file is missing, so recipients cannot be opened; its messages "
               "wait\n", name);
        return false;
    }
    return true;
}

static double channel_rate(const kp_notify_config *cfg, kp_channel c)
{
    return c == KP_CHANNEL_EMAIL ? cfg->email.rate_per_second
           : c == KP_CHANNEL_SMS ? cfg->sms.rate_per_second
                                 : cfg->webhook.rate_per_second;
}

int cmd_deliver(int argc, char **argv)
{
    static const char *const opts[] = {"--notify", "--once", "--now", NULL};
    bool once = cli_take_flag(&argc, argv, "--once");
    if (!cli_check_options(argc, argv, opts, "deliver")) return 2;
    const char *db = cli_positional(argc, argv, 0);
    if (db == NULL) {
        fprintf(stderr, "usage: kopilka deliver DB [--notify FILE] [--once] [--now TIME]\n");
        return 2;
    }
    kp_time fixed = 0;
    const char *now_text = cli_option(argc, argv, "--now");
    if (now_text && !kp_time_parse(now_text, &fixed)) {
        fprintf(stderr, "kopilka deliver: --now must be an RFC 3339 time, got %s\n", now_text);
        return 2;
    }
    kp_error e = {0};
    kp_notify_config config;
    const char *notify = cli_option(argc, argv, "--notify");
    if (notify == NULL)
        kp_notify_config_default(&config);
    else if (kp_notify_config_load(notify, &config, &e) != KP_OK) {
        fprintf(stderr, "kopilka deliver: --notify %s: %s%s%s\n", notify, e.field,
                e.field[0] ? ": " : "", e.message);
        return 2;
    }

    int rc = 1;
    kp_store *st = NULL;
    kp_pii *pii = NULL;
    kp_program *program = calloc(1, sizeof *program);
    bool has_program = false;
    kp_sender *senders[KP_CHANNEL__COUNT] = {0};
    kp_rate rates[KP_CHANNEL__COUNT];
    if (program == NULL) {
        kp_error_set(&e, KP_ERR_NOMEM, "", "out of memory");
        goto out;
    }
    if (kp_service_open(db, false, &st, &e)) goto out;
    char key_path[4096];
    kp_error key_error = {0};
    if (kp_pii_key_locate(db, key_path, sizeof key_path, &key_error) == KP_OK)
        kp_pii_load(key_path, &pii, &key_error);
    /* The version running at the command's time (--now, else the clock's). */
    kp_time at = fixed ? fixed : kp_clock_now(NULL);
    kp_err err = kp_service_program_running(st, 0, at, program, &e);
    if (err == KP_OK) has_program = true;
    else if (err != KP_ERR_NOT_FOUND) goto out;
    kp_error_clear(&e);
    for (int c = 1; c < KP_CHANNEL__COUNT; c++) {
        if (!channel_on(&config, pii, c)) continue;
        kp_rate_init(&rates[c], channel_rate(&config, c));
        if ((senders[c] = kp_sender_new(&config, c)) == NULL) {
            kp_rate_release(&rates[c]);
            kp_error_set(&e, KP_ERR_NOMEM, "", "cannot make the %s sender", kp_channel_name(c));
            goto out;
        }
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    kp_notify_io io;
    kp_notify_io_store(&io, st);
    io.stopping = stopping;
    io.note = note;
    kp_notify_env env;
    kp_notify_env_init(&env, st, pii, has_program ? program : NULL, &config);
    kp_deliver_stats stats;
    memset(&stats, 0, sizeof stats);
    err = KP_OK;
    for (int pass = 0; err == KP_OK && pass < PASSES_MAX && !stop_signal; pass++) {
        kp_time now = fixed ? fixed : kp_clock_now(NULL);
        size_t events = 0, attempted = 0;
        if ((err = kp_notify_dispatch_pass(st, &env, &io, now, &events, &stats, &e))) break;
        for (int c = 1; c < KP_CHANNEL__COUNT && err == KP_OK && !stop_signal; c++) {
            if (senders[c] == NULL) continue;
            size_t n = 0;
            uint64_t back = stats.handed_back[c];
            err = kp_notify_deliver_pass(st, &env, &io, senders[c], c, &rates[c],
                                         fixed ? fixed : kp_clock_now(NULL), &n, &stats, &e);
            attempted += n + (stats.handed_back[c] - back);
        }
        if (once || (events == 0 && attempted == 0)) break;
    }
    printf("dispatched %llu events into %llu messages",
           (unsigned long long)stats.dispatched_events,
           (unsigned long long)stats.planned_messages);
    if (stats.unplanned_events)
        printf(" (%llu events could not be planned: see above)",
               (unsigned long long)stats.unplanned_events);
    printf("\n");
    for (int c = 1; c < KP_CHANNEL__COUNT; c++) {
        if (senders[c] == NULL) continue;
        printf("%s: sent %llu, failed %llu (of which dead %llu)", kp_channel_name(c),
               (unsigned long long)stats.sent[c], (unsigned long long)stats.failed[c],
               (unsigned long long)stats.dead[c]);
        if (stats.handed_back[c])
            printf(", handed back untried %llu", (unsigned long long)stats.handed_back[c]);
        printf("\n");
    }
    if (stop_signal) fprintf(stderr, "kopilka deliver: stopped by signal %d\n", (int)stop_signal);
    if (err == KP_OK) rc = 0;
out:
    if (rc) fail(&e);
    for (int c = 1; c < KP_CHANNEL__COUNT; c++) {
        if (senders[c]) kp_rate_release(&rates[c]);
        kp_sender_free(senders[c]);
    }
    free(program);
    kp_pii_free(pii);
    if (st) kp_store_close(st);
    return rc;
}
