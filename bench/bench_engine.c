/*
 * bench_engine.c: how many quotes a second one core prices, in process, with
 * programs of 1, 10 and 50 rules and a 20-line basket (issue 3's
 * performance note). No storage, no HTTP: kp_engine_price_opts() alone, on
 * an account with 16 open lots of two kinds and a burn request, so every
 * step (discounts, kinds and caps, earn rule choice, ladders, bonuses) runs.
 * Each program is priced three times: scanning every rule (no index, as
 * callers that do not compile), compiled (kp_engine_compile, as the server
 * does) and compiled with the explanations' sentences deferred
 * (kp_price_opts.defer_text: figures only, as the simulation prices; the
 * text is written by kp_quote_render where an answer is rendered); the
 * last lines give the 50-rule figures against issue 16's goal of
 * 1 000 000 quotes/s.
 *
 *     cmake --build build --target bench_engine && build/bench_engine [seconds [rules]]
 *
 * (`rules`, 1, 10 or 50: that program only, compiled with text deferred only:
 * for perf.)
 *
 * Build it Release (-DCMAKE_BUILD_TYPE=Release) for figures worth quoting.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <kopilka/engine.h>
#include <kopilka/program.h>

#define LINES 20
#define CATEGORIES 10

/* CPU time of this thread: the machine is shared, and "on one core" means
 * per second of one core's time, not of the wall clock (which counts the
 * time other processes hold the core). */
static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Appends `text` to buf at *len (bounded). */
static void put(char *buf, size_t size, size_t *len, const char *text)
{
    int n = snprintf(buf + *len, size - *len, "%s", text);
    if (n > 0) *len += (size_t)n < size - *len ? (size_t)n : size - *len - 1;
}

/* A program of exactly `n_rules` rules of the kinds a real program mixes:
 * earn by category (some per store or tier, some with a promotional window
 * or a ladder), burn caps per kind, discounts, first-purchase minimum,
 * annual bonus, minimum balance, and grants (which pricing skips). */
static void make_program(int n_rules, char *buf, size_t size)
{
    size_t len = 0;
    char rule[512];
    put(buf, size, &len,
        "{\"name\":\"bench\",\"point_kinds\":[{\"name\":\"regular\"},"
        "{\"name\":\"premium\",\"ttl_months\":3}],"
        "\"tiers\":{\"levels\":[{\"name\":\"Silver\",\"min_spend\":0},"
        "{\"name\":\"Gold\",\"min_spend\":100000,\"earn_multiplier\":\"1.5\","
        "\"discount_percent\":2,\"privileges\":[\"personal master\"]}]},\"rules\":[");
    if (n_rules == 1) {
        put(buf, size, &len, "{\"id\":\"r0\",\"kind\":\"earn_percent\",\"percent\":5}]}");
        return;
    }
    for (int i = 0; i < n_rules; i++) {
        int c = i % CATEGORIES;
        switch (i % 10) {
        case 0:
            snprintf(rule, sizeof rule,
                     "{\"id\":\"r%d\",\"kind\":\"earn_percent\",\"category\":\"cat%d\","
                     "\"percent\":\"%d.5\"}",
                     i, c, 2 + c);
            break;
        case 1:
            snprintf(rule, sizeof rule,
                     "{\"id\":\"r%d\",\"kind\":\"earn_percent\",\"steps\":[{\"min_amount\":0,"
                     "\"percent\":3},{\"min_amount\":500000,\"percent\":5},{\"min_amount\":"
                     "2000000,\"percent\":7}]}",
                     i);
            break;
        case 2:
            snprintf(rule, sizeof rule,
                     "{\"id\":\"r%d\",\"kind\":\"earn_percent\",\"category\":\"cat%d\","
                     "\"percent\":30,\"starts\":\"2020-01-01\",\"ends\":\"2099-01-01\"}",
                     i, (c + 3) % CATEGORIES);
            break;
        case 3:
            snprintf(rule, sizeof rule,
                     "{\"id\":\"r%d\",\"kind\":\"earn_percent\",\"category\":\"cat%d\","
                     "\"tier\":\"Gold\",\"percent\":8}",
                     i, (c + 5) % CATEGORIES);
            break;
        case 4:
            snprintf(rule, sizeof rule,
                     "{\"id\":\"r%d\",\"kind\":\"burn_limit\",\"category\":\"cat%d\","
                     "\"point_kind\":\"%s\",\"percent\":%d}",
                     i, i / 10 % CATEGORIES, (i / 10) % 2 ? "premium" : "regular",
                     10 + 10 * ((i / 10) % 4));
            break;
        case 5:
            snprintf(rule, sizeof rule,
                     "{\"id\":\"r%d\",\"kind\":\"discount_fixed\",\"category\":\"cat%d\","
                     "\"percent\":3,\"store\":\"main\"}",
                     i, (c + 1) % CATEGORIES);
            break;
        case 6:
            snprintf(rule, sizeof rule,
                     "{\"id\":\"r%d\",\"kind\":\"discount_cumulative\",\"registered_only\":true,"
                     "\"steps\":[{\"min_spend\":500000,\"percent\":3},{\"min_spend\":1500000,"
                     "\"percent\":5}]}",
                     i);
            break;
        case 7:
            snprintf(rule, sizeof rule,
                     "{\"id\":\"r%d\",\"kind\":\"earn_percent\",\"category\":\"cat%d\","
                     "\"store\":\"main\",\"percent\":4}",
                     i, (c + 7) % CATEGORIES);
            break;
        case 8:
            snprintf(rule, sizeof rule,
                     i < 10   ? "{\"id\":\"r%d\",\"kind\":\"first_purchase_min\",\"points\":1000}"
                     : i < 20 ? "{\"id\":\"r%d\",\"kind\":\"annual_spend_bonus\","
                                "\"spend_over\":100000000,\"points\":50}"
                     : i < 30 ? "{\"id\":\"r%d\",\"kind\":\"burn_min_balance\",\"points\":10}"
                              : "{\"id\":\"r%d\",\"kind\":\"grant\",\"on\":\"survey\","
                                "\"points\":5}",
                     i);
            break;
        default:
            snprintf(rule, sizeof rule,
                     "{\"id\":\"r%d\",\"kind\":\"grant\",\"on\":\"birthday\",\"points\":200,"
                     "\"point_kind\":\"premium\"}",
                     i);
            break;
        }
        put(buf, size, &len, i ? "," : "");
        put(buf, size, &len, rule);
    }
    put(buf, size, &len, "]}");
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? strtod(argv[1], NULL) : 1.0;
    if (seconds <= 0 || seconds > 600) seconds = 1.0;
    int only = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 0;
    kp_program *program = malloc(sizeof *program);
    kp_account *account = calloc(1, sizeof *account);
    kp_basket *basket = calloc(1, sizeof *basket);
    kp_quote *quote = malloc(sizeof *quote);
    kp_engine_index *index = malloc(sizeof *index);
    char *json = malloc(1 << 16);
    if (!program || !account || !basket || !quote || !index || !json) return 1;

    account->id = 1;
    account->purchases = 12;
    account->spend_minor = 2000000;
    account->registered = true;
    snprintf(account->tier, sizeof account->tier, "Gold");
    for (int i = 0; i < 16; i++) {
        kp_lot *l = &account->lots[account->n_lots++];
        l->id = i + 1;
        snprintf(l->kind, sizeof l->kind, "%s", i < 4 ? "premium" : "regular");
        l->amount = l->remaining = 500;
        l->expires_at = i < 4 ? 2000000000 + i : KP_TIME_NEVER;
        account->balance += 500;
    }
    for (int i = 0; i < LINES; i++) {
        kp_line *l = &basket->lines[basket->n_lines++];
        snprintf(l->sku, sizeof l->sku, "SKU-%04d", i);
        snprintf(l->category, sizeof l->category, "cat%d", i % CATEGORIES);
        l->amount_minor = 12345 + 1000 * i;
        l->qty = 1 + i % 3;
        l->promo = i % 7 == 6;
    }
    basket->burn_request = 3000;
    kp_price_opts opts = {.store = "main", .burn_max = -1};
    const kp_time now = 1800000000;

    printf("engine: quotes/s on one core, %d-line basket, 16 lots of 2 kinds, burn requested\n",
           LINES);
    static const int sizes[] = {1, 10, 50};
    double goal_rate = 0, text_rate = 0;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        kp_error e;
        if (only && sizes[s] != only) continue;
        make_program(sizes[s], json, 1 << 16);
        if (kp_program_parse(json, strlen(json), program, &e) != KP_OK) {
            fprintf(stderr, "bench_engine: program of %d rules refused: %s: %s\n", sizes[s],
                    e.field, e.message);
            return 1;
        }
        kp_engine_compile(program, index);
        for (int compiled = only ? 2 : 0; compiled <= 2; compiled++) {
            opts.index = compiled ? index : NULL;
            opts.defer_text = compiled == 2;
            /* Warm up, then count quotes for `seconds` of CPU time. */
            for (int i = 0; i < 1000; i++)
                kp_engine_price_opts(program, account, basket, &opts, now, quote, &e);
            long long n = 0;
            int64_t checksum = 0;
            double t0 = seconds_now(), t1 = t0;
            while (t1 - t0 < seconds) {
                for (int i = 0; i < 256; i++) {
                    if (kp_engine_price_opts(program, account, basket, &opts, now, quote, &e) !=
                        KP_OK) {
                        fprintf(stderr, "bench_engine: %s\n", e.message);
                        return 1;
                    }
                    checksum += quote->earned + quote->burned + quote->discount_minor;
                }
                n += 256;
                t1 = seconds_now();
            }
            double rate = (double)n / (t1 - t0);
            if (sizes[s] == 50 && compiled == 1) text_rate = rate;
            if (sizes[s] == 50 && compiled == 2) goal_rate = rate;
            printf("  %2d rules, %-8s %10.0f quotes/s  (%.2f us a quote; earned %lld, burned %lld, "
                   "discount %lld, %zu explanations; checksum per quote %lld)\n",
                   sizes[s], compiled == 2 ? "deferred" : compiled ? "compiled" : "scan", rate,
                   1e6 / rate,
                   (long long)quote->earned, (long long)quote->burned,
                   (long long)quote->discount_minor, quote->n_explain,
                   (long long)(checksum / n));
        }
    }
    if (!only)
        printf("50 rules compiled, explanations written: %.0f quotes/s = %.2f of 1 000 000\n",
               text_rate, text_rate / 1e6);
    printf("goal (issue 16): 50 rules compiled, text deferred, %.0f quotes/s = %.2f of 1 000 000\n",
           goal_rate, goal_rate / 1e6);
    free(json);
    free(index);
    free(quote);
    free(basket);
    free(account);
    free(program);
    return 0;
}
