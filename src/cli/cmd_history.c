/*
 * cmd_history.c: `kopilka history generate`, the command around the
 * synthetic sales history of src/service/history_gen.c: reads the options,
 * writes the sales CSV (and the members' cards), shows progress on stderr
 * and prints what it wrote and the four figures measured on it.
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/history_gen.h"

/* A whole number option into *out; false after saying why. */
static bool int_option(int argc, char **argv, const char *name, int64_t lo, int64_t hi,
                       int64_t *out)
{
    const char *text = cli_option(argc, argv, name);
    if (text == NULL) return true;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (*text == '\0' || *end != '\0' || errno != 0 || v < lo || v > hi) {
        fprintf(stderr, "kopilka history generate: %s is \"%s\": it is a whole number from %lld "
                        "to %lld\n",
                name, text, (long long)lo, (long long)hi);
        return false;
    }
    *out = v;
    return true;
}

static bool parse_options(int argc, char **argv, kp_history_params *p)
{
    int64_t seed = 0, months = p->months, stores = p->stores;
    if (!int_option(argc, argv, "--seed", 0, INT64_MAX, &seed) ||
        !int_option(argc, argv, "--members", 10, KP_HISTORY_MEMBERS_MAX, &p->members) ||
        !int_option(argc, argv, "--non-members", 10, KP_HISTORY_NON_MEMBERS_MAX,
                    &p->non_members) ||
        !int_option(argc, argv, "--months", 13, KP_HISTORY_MONTHS_MAX, &months) ||
        !int_option(argc, argv, "--stores", 1, KP_HISTORY_STORES_MAX, &stores))
        return false;
    p->seed = (uint64_t)seed;
    p->months = (int)months;
    p->stores = (int)stores;
    const char *start = cli_option(argc, argv, "--start");
    if (start) {
        int y = 0, m = 0, d = 0;
        bool ok = strlen(start) == 10 && start[4] == '-' && start[7] == '-';
        for (int i = 0; ok && i < 10; i++)
            if (i != 4 && i != 7) ok = start[i] >= '0' && start[i] <= '9';
        if (ok) {
            y = (int)strtol(start, NULL, 10);
            m = (int)strtol(start + 5, NULL, 10);
            d = (int)strtol(start + 8, NULL, 10);
        }
        if (!ok) {
            fprintf(stderr, "kopilka history generate: --start is \"%s\": it is a date "
                            "YYYY-MM-DD\n", start);
            return false;
        }
        p->start_year = y;
        p->start_month = m;
        p->start_day = d;
    }
    const char *returns = cli_option(argc, argv, "--returns");
    if (returns) {
        char *end = NULL;
        double v = strtod(returns, &end);
        if (end != returns && *end == '%' && end[1] == '\0') {
            v /= 100;
            end++;
        }
        if (end == returns || *end != '\0' || !(v >= 0 && v <= 0.5)) {
            fprintf(stderr, "kopilka history generate: --returns is \"%s\": it is a share from "
                            "0 to 0.5 (0.02) or a percent from 0%% to 50%% (2%%)\n", returns);
            return false;
        }
        p->returns = v;
    }
    kp_error e = {0};
    if (kp_history_check(p, &e) != KP_OK) {
        fprintf(stderr, "kopilka history generate: %s\n", e.message);
        return false;
    }
    return true;
}

static void show_progress(void *ctx, int64_t done, int64_t total)
{
    cli_progress *pr = ctx;
    pr->total = total;
    cli_progress_update(pr, done);
}

int cmd_history_generate(int argc, char **argv)
{
    kp_history_params p;
    kp_history_defaults(&p);
    if (!parse_options(argc, argv, &p)) return 2;
    const char *out = cli_option(argc, argv, "--out");
    const char *cards_out = cli_option(argc, argv, "--cards-out");
    FILE *f = fopen(out, "w");
    if (f == NULL) {
        fprintf(stderr, "kopilka history generate: cannot write %s: %s\n", out, strerror(errno));
        return 1;
    }
    FILE *cf = NULL;
    if (cards_out && (cf = fopen(cards_out, "w")) == NULL) {
        fprintf(stderr, "kopilka history generate: cannot write %s: %s\n", cards_out,
                strerror(errno));
        fclose(f);
        return 1;
    }
    static char buf[1 << 20];
    setvbuf(f, buf, _IOFBF, sizeof buf);
    cli_progress pr;
    cli_progress_start(&pr, "history generate", "receipts", 0);
    kp_history_stats st;
    kp_error e = {0};
    kp_err err = kp_history_generate(&p, f, cf, show_progress, &pr, &st, &e);
    bool ok = err == KP_OK;
    if (fclose(f) != 0) ok = false;
    if (cf && fclose(cf) != 0) ok = false;
    cli_progress_end(&pr, st.receipts + st.returns, ok);
    if (!ok) {
        fprintf(stderr, "kopilka history generate: %s\n",
                err != KP_OK ? e.message : "writing the output failed");
        return 1;
    }
    printf("wrote %s: %lld rows, %lld receipts, %lld returns", out, (long long)st.rows,
           (long long)st.receipts, (long long)st.returns);
    if (cards_out) printf("; %s: %lld cards", cards_out, (long long)st.cards);
    printf("\nmembers' average receipt / non-members': %.3f (target %.2f)\n"
           "top %.0f%% of non-members by spend: %.2f%% of their revenue (target %.0f%%)\n"
           "members who bought almost nothing: %.2f%% of members (target %.0f%%), %.2f%% of "
           "members' revenue (target %.0f%%)\n"
           "members who bought in the last 12 months: %.2f%% (target %.0f%%)\n",
           st.member_ratio, KP_HISTORY_MEMBER_RATIO, KP_HISTORY_TOP_SHARE * 100,
           st.top_revenue * 100, KP_HISTORY_TOP_REVENUE * 100, st.idle_share * 100,
           KP_HISTORY_IDLE_SHARE * 100, st.idle_revenue * 100, KP_HISTORY_IDLE_REVENUE * 100,
           st.recent_share * 100, KP_HISTORY_RECENT_SHARE * 100);
    return 0;
}
