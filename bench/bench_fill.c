/*
 * bench_fill.c: the bulk path to a big ledger (issue 16, "At scale" in
 * bench/README.md). Runs `--purchases M` purchases through the service's
 * own purchase function (kp_service_purchase, the function the server's
 * writer runs for POST /v1/purchases) on a database made by `kopilka init`
 * whose cards were issued by `kopilka cards issue` (their numbers in
 * CARDS, one a line), in transactions of `--batch` purchases: no HTTP, no
 * operation log, nothing else differs. Every row a purchase writes
 * (operation, postings, lot, account, idempotency key, counters, sales
 * history) is written by the same code as at a till, so `kopilka verify`
 * checks the result as it checks a served database.
 *
 *     build-bench/bench_fill DB CARDS --purchases M [--seed S] [--batch N]
 *
 * The body of each purchase is bench/loadgen's: a random card of CARDS, a
 * labour line of 10000..2000000 minor units, a parts line of 0..5000000, a
 * burn request of 0..500 points, receipt "f<seed>-<n>" at store "bench".
 * The same seed gives the same purchases. Prints progress and the rate
 * after each transaction, and the totals at the end. Stop it with Ctrl-C:
 * what was committed stays (a whole number of transactions).
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <kopilka/clock.h>
#include <kopilka/program.h>
#include <kopilka/store.h>

#include "bench_rng.h"
#include "core/buf.h"
#include "service/service.h"

static volatile sig_atomic_t stop_asked;
static void on_signal(int sig)
{
    (void)sig;
    stop_asked = 1;
}

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(const char *what, kp_store *st, const kp_error *e)
{
    fprintf(stderr, "bench_fill: %s: %s\n", what,
            e && e->message[0] ? e->message : st ? st->last_error : "");
    return 1;
}

static bool number_arg(const char *text, long long lo, long long hi, long long *out)
{
    char *end = NULL;
    long long v = strtoll(text, &end, 10);
    if (end == text || *end != '\0' || v < lo || v > hi) return false;
    *out = v;
    return true;
}

/* The card numbers of CARDS: one allocation for the text, one for the
 * pointers into it. */
typedef struct cards {
    char *text;
    char **numbers;
    size_t count;
} cards;

static bool cards_load(const char *path, cards *c)
{
    memset(c, 0, sizeof *c);
    FILE *f = fopen(path, "rb");
    if (f == NULL) return false;
    size_t cap = 1 << 20, len = 0;
    c->text = malloc(cap + 1);
    size_t n;
    while (c->text && (n = fread(c->text + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            char *bigger = realloc(c->text, cap * 2 + 1);
            if (bigger == NULL) {
                free(c->text);
                c->text = NULL;
                break;
            }
            c->text = bigger;
            cap *= 2;
        }
    }
    fclose(f);
    if (c->text == NULL) return false;
    c->text[len] = '\0';
    size_t lines = 0;
    for (size_t i = 0; i < len; i++) lines += c->text[i] == '\n';
    c->numbers = malloc((lines + 1) * sizeof *c->numbers);
    if (c->numbers == NULL) return false;
    for (char *p = c->text, *nl; *p; p = nl + 1) {
        nl = strchr(p, '\n');
        if (nl == NULL) nl = p + strlen(p) - 1;
        else *nl = '\0';
        if (*p) c->numbers[c->count++] = p;
        if (nl[1] == '\0') break;
    }
    return c->count > 0;
}

int main(int argc, char **argv)
{
    const char *db = NULL, *cards_path = NULL;
    long long purchases = -1, seed = 1, batch = 100000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (strcmp(a, "--purchases") == 0 && v) ok = number_arg(v, 0, 1000000000000LL, &purchases), i++;
        else if (strcmp(a, "--seed") == 0 && v) ok = number_arg(v, 1, INT64_MAX, &seed), i++;
        else if (strcmp(a, "--batch") == 0 && v) ok = number_arg(v, 1, 10000000, &batch), i++;
        else if (a[0] != '-' && db == NULL) db = a;
        else if (a[0] != '-' && cards_path == NULL) cards_path = a;
        else ok = false;
        if (!ok) db = NULL, i = argc;
    }
    if (db == NULL || cards_path == NULL || purchases < 0) {
        fprintf(stderr, "usage: bench_fill DB CARDS --purchases M [--seed S] [--batch N]\n"
                        "  CARDS: the numbers `kopilka cards issue DB --count N` printed\n");
        return 2;
    }
    cards c;
    if (!cards_load(cards_path, &c)) {
        fprintf(stderr, "bench_fill: cannot read card numbers from %s\n", cards_path);
        return 1;
    }
    kp_error e = {0};
    kp_store *st = NULL;
    if (kp_service_open(db, false, &st, &e)) return fail("open", NULL, &e);
    char *json = NULL;
    int64_t version = 0;
    kp_program *program = calloc(1, sizeof *program);
    if (program == NULL || st->ops->program_get(st, 0, kp_clock_now(NULL), &json, &version) ||
        kp_program_parse(json, strlen(json), program, &e))
        return fail("program", st, &e);
    free(json);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    kp_scratch *sc = kp_scratch_new();
    kp_buf out;
    kp_buf_init(&out, 1 << 20);
    uint64_t rng = (uint64_t)seed * 0x9E3779B97F4A7C15ULL | 1;
    double t0 = seconds_now(), last = t0;
    long long done = 0, replays = 0, since = 0;
    fprintf(stderr, "bench_fill: %lld purchases over %zu cards, %lld a transaction\n", purchases,
            c.count, batch);
    while (done < purchases && !stop_asked) {
        if (st->ops->begin(st)) return fail("begin", st, NULL);
        long long end = done + batch < purchases ? done + batch : purchases;
        kp_time now = kp_clock_now(NULL);
        for (; done < end; done++) {
            const char *card = c.numbers[rng_next(&rng) % c.count];
            uint64_t burn = rng_range(&rng, 0, 500);
            uint64_t labor = rng_range(&rng, 10000, 2000000);
            uint64_t parts = rng_range(&rng, 0, 5000000);
            char body[512];
            int n = snprintf(body, sizeof body,
                             "{\"card\":\"%s\",\"receipt\":\"f%lld-%lld\",\"burn\":%" PRIu64
                             ",\"lines\":[{\"sku\":\"L\",\"category\":\"labor\",\"amount\":%" PRIu64
                             "},{\"sku\":\"P\",\"category\":\"parts\",\"amount\":%" PRIu64 "}]}",
                             card, seed, done, burn, labor, parts);
            kp_purchase_req req;
            bool replayed = false;
            kp_buf_reset(&out);
            if (n < 0 || (size_t)n >= sizeof body ||
                kp_purchase_req_parse(body, (size_t)n, true, &req, &e))
                return fail("parse", st, &e);
            if (kp_service_purchase(st, program, "bench", &req, now, sc, &out, &replayed, &e))
                return fail("purchase", st, &e);
            replays += replayed;
        }
        if (st->ops->commit(st)) return fail("commit", st, NULL);
        double t = seconds_now();
        fprintf(stderr, "bench_fill: %lld/%lld purchases, %.0f/s now, %.0f/s overall\n", done,
                purchases, (double)(done - since) / (t - last), (double)done / (t - t0));
        since = done;
        last = t;
    }
    double t = seconds_now() - t0;
    printf("purchases: %lld\nreplayed: %lld\nseconds: %.1f\npurchases/s: %.0f\n", done, replays, t,
           t > 0 ? (double)done / t : 0.0);
    kp_buf_release(&out);
    kp_scratch_free(sc);
    free(program);
    kp_store_close(st);
    free(c.numbers);
    free(c.text);
    return stop_asked ? 1 : 0;
}
