/*
 * progress.c: the progress line of a long CLI job (cards issue, cards
 * export, import) on stderr, so stdout stays the job's output.
 *
 * On a terminal (isatty(2)) one line is rewritten in place at most five
 * times a second: "cards issue: 120000/1000000 cards (12%), 45210/s, 0:19
 * left". Otherwise (a log file, a pipe) a plain line like that every
 * CLI_PROGRESS_PLAIN_EVERY_S seconds. Either way the job ends with one line
 * "cards issue: 1000000 cards in 22.1 s (45210/s)".
 */
#include "cli.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

enum {
    TTY_EVERY_NS = 200 * 1000 * 1000,
    CLI_PROGRESS_PLAIN_EVERY_S = 5,
};

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void cli_progress_start(cli_progress *p, const char *what, const char *unit, int64_t total)
{
    p->what = what;
    p->unit = unit;
    p->total = total;
    p->tty = isatty(STDERR_FILENO) == 1;
    p->start_ns = p->last_ns = mono_ns();
    p->shown = false;
    p->note[0] = '\0';
}

static void print_line(const cli_progress *p, int64_t done, uint64_t now)
{
    double seconds = (double)(now - p->start_ns) / 1e9;
    double rate = seconds > 0 ? (double)done / seconds : 0;
    char left[32] = "?";
    if (rate > 0 && p->total >= done) {
        long long s = (long long)((double)(p->total - done) / rate + 0.5);
        snprintf(left, sizeof left, "%lld:%02lld", s / 60, s % 60);
    }
    int percent = p->total > 0 ? (int)(done * 100 / p->total) : 0;
    fprintf(stderr, "%s%s: %lld/%lld %s (%d%%), %.0f/s, %s left%s", p->tty ? "\r" : "", p->what,
            (long long)done, (long long)p->total, p->unit, percent, rate, left,
            p->tty ? "\033[K" : "\n");
    fflush(stderr);
}

void cli_progress_update(cli_progress *p, int64_t done)
{
    uint64_t now = mono_ns();
    uint64_t every =
        p->tty ? (uint64_t)TTY_EVERY_NS : (uint64_t)CLI_PROGRESS_PLAIN_EVERY_S * 1000000000u;
    if (now - p->last_ns < every) return;
    p->last_ns = now;
    p->shown = true;
    print_line(p, done, now);
}

void cli_progress_end(cli_progress *p, int64_t done, bool ok)
{
    uint64_t now = mono_ns();
    double seconds = (double)(now - p->start_ns) / 1e9;
    if (p->tty && p->shown) fputs("\r\033[K", stderr);
    if (ok)
        fprintf(stderr, "%s: %lld %s in %.1f s (%.0f/s%s%s)\n", p->what, (long long)done, p->unit,
                seconds, seconds > 0 ? (double)done / seconds : 0, p->note[0] ? ", " : "", p->note);
    else if (done > 0)
        fprintf(stderr, "%s: stopped after %lld of %lld %s (%.1f s)\n", p->what, (long long)done,
                (long long)p->total, p->unit, seconds);
    fflush(stderr);
}
