/*
 * pg_round_trips.c: how many round trips to PostgreSQL one purchase costs
 * (issue 15: plan_apply's writes go out as one pipeline). Runs `count`
 * purchases through the service layer on a database made by `kopilka init`
 * (one card it issues itself), each in its own transaction as the CLI does,
 * and prints the round trips a purchase and the time it took.
 *
 *     build/pg_round_trips postgresql://... [count]
 *     KOPILKA_PG_PIPELINE=off build/pg_round_trips postgresql://... [count]
 *
 * The second runs every pipelined statement as its own round trip: the
 * difference is what pipelining saves.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <kopilka/clock.h>
#include <kopilka/program.h>
#include <kopilka/store.h>

#include "core/buf.h"
#include "service/service.h"
#include "store/store_pg_int.h"

static double seconds_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(const char *what, kp_store *st, const kp_error *e)
{
    fprintf(stderr, "pg_round_trips: %s: %s\n", what,
            e && e->message[0] ? e->message : st ? st->last_error : "");
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !store_pg_location(argv[1])) {
        fprintf(stderr, "usage: pg_round_trips postgresql://... [count]\n");
        return 2;
    }
    int count = argc > 2 ? atoi(argv[2]) : 1000;
    kp_error e = {0};
    kp_store *st = NULL;
    if (kp_store_open(argv[1], false, &st, &e)) return fail("open", NULL, &e);
    char *json = NULL;
    int64_t version = 0;
    kp_program *program = calloc(1, sizeof *program);
    if (program == NULL || st->ops->program_get(st, 0, kp_clock_now(NULL), &json, &version) ||
        kp_program_parse(json, strlen(json), program, &e))
        return fail("program", st, &e);
    free(json);
    char card[32];
    snprintf(card, sizeof card, "RT-%lld", (long long)kp_clock_now(NULL));
    int64_t account = 0;
    if (st->ops->begin(st) || st->ops->card_create(st, card, KP_CARD_ISSUED, kp_clock_now(NULL),
                                                   &account) ||
        st->ops->commit(st))
        return fail("card", st, NULL);
    kp_scratch *sc = kp_scratch_new();
    kp_buf out;
    kp_buf_init(&out, 1 << 20);
    uint64_t trips_before = pg_round_trips();
    double t0 = seconds_now();
    for (int i = 0; i < count; i++) {
        char body[512];
        /* Every third purchase burns points too: a lot change beside the
         * new lot, as at a till. */
        int n = snprintf(body, sizeof body,
                         "{\"card\":\"%s\",\"receipt\":\"%s-%d\",\"burn\":%d,\"lines\":[{\"sku\":"
                         "\"s\",\"category\":\"labor\",\"amount\":%d}]}",
                         card, card, i, i % 3 == 2 ? 10 : 0, 100000 + i);
        kp_purchase_req req;
        bool replayed = false;
        kp_buf_reset(&out);
        if (kp_purchase_req_parse(body, (size_t)n, true, &req, &e)) return fail("parse", st, &e);
        if (st->ops->begin(st)) return fail("begin", st, NULL);
        kp_err err = kp_service_purchase(st, program, "bench", &req, kp_clock_now(NULL), sc, &out,
                                         &replayed, &e);
        if (err) return fail("purchase", st, &e);
        if (st->ops->commit(st)) return fail("commit", st, NULL);
    }
    double t = seconds_now() - t0;
    uint64_t trips = pg_round_trips() - trips_before;
    printf("%d purchases: %.2f round trips a purchase (BEGIN and COMMIT included), "
           "%.0f µs a purchase; pipelines %s\n",
           count, (double)trips / count, t / count * 1e6,
           getenv("KOPILKA_PG_PIPELINE") && strcmp(getenv("KOPILKA_PG_PIPELINE"), "off") == 0
               ? "off"
               : "on");
    kp_buf_release(&out);
    kp_scratch_free(sc);
    free(program);
    kp_store_close(st);
    return 0;
}
