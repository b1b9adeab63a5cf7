/*
 * cmd_simulate.c: `kopilka simulate`, the economic model from the command
 * line (src/service/simulate.c): replays a sales history under a candidate
 * program (and a baseline) and prints the month-by-month table, or --json.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopilka/clock.h>

#include "service/service.h"
#include "service/simulate.h"

static void sim_fail(const char *field, const char *message)
{
    fprintf(stderr, "kopilka simulate: %s%s%s\n", field && field[0] ? field : "",
            field && field[0] ? ": " : "", message);
}

/* A program file into *p (heap: it is large). */
static kp_program *program_file(const char *path)
{
    kp_error e = {0};
    size_t len;
    char *json = cli_read_file(path, &len, &e);
    if (!json) {
        sim_fail(path, e.message);
        return NULL;
    }
    kp_program *p = malloc(sizeof *p);
    if (!p || kp_program_parse(json, len, p, &e) != KP_OK) {
        char where[320];
        snprintf(where, sizeof where, "%s%s%s", path, e.field[0] ? " " : "", e.field);
        sim_fail(where, p ? e.message : "out of memory");
        free(p);
        p = NULL;
    }
    free(json);
    return p;
}

/* "0.6", "1", "0": a share from 0 to 1 with up to 4 decimals, in bp. */
static bool parse_share(const char *s, int32_t *bp)
{
    int64_t v = 0;
    int dec = -1;
    if (!*s) return false;
    for (const char *p = s; *p; p++) {
        if (*p == '.' && dec < 0) {
            dec = 0;
            continue;
        }
        if (*p < '0' || *p > '9' || dec == 4 || v > 10000) return false;
        v = v * 10 + (*p - '0');
        if (dec >= 0) dec++;
    }
    for (int i = dec < 0 ? 0 : dec; i < 4; i++) v *= 10;
    if (v > 10000) return false;
    *bp = (int32_t)v;
    return true;
}

/* --from/--to: RFC 3339 or YYYY-MM-DD (the start of that day in the program's zone). */
static bool parse_day(const char *s, const kp_program *p, kp_time *out)
{
    if (kp_time_parse(s, out)) return true;
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-') return false;
    int v[3] = {0, 0, 0}, k = 0;
    for (const char *c = s; *c; c++) {
        if (*c == '-') {
            k++;
            continue;
        }
        if (*c < '0' || *c > '9') return false;
        v[k] = v[k] * 10 + (*c - '0');
    }
    if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31) return false;
    *out = kp_program_date_start(p, v[0], v[1], v[2]);
    return true;
}

static void on_progress(void *ctx, int64_t done, int64_t total)
{
    cli_progress *p = ctx;
    p->total = total;
    cli_progress_update(p, done);
}

static bool is_csv(const char *path)
{
    size_t n = strlen(path);
    return strcmp(path, "-") == 0 || (n > 4 && strcmp(path + n - 4, ".csv") == 0);
}

int cmd_simulate(int argc, char **argv)
{
    static const char *const opts[] = {"--history",    "--program", "--baseline",
                                       "--redemption", "--from",    "--to",
                                       "--threads",    "--json",    NULL};
    bool json = cli_take_flag(&argc, argv, "--json");
    if (!cli_check_options(argc, argv, opts, "simulate")) return 2;
    const char *history = cli_option(argc, argv, "--history");
    const char *cand_path = cli_option(argc, argv, "--program");
    const char *base_path = cli_option(argc, argv, "--baseline");
    const char *red = cli_option(argc, argv, "--redemption");
    const char *from = cli_option(argc, argv, "--from"), *to = cli_option(argc, argv, "--to");
    const char *threads = cli_option(argc, argv, "--threads");
    if (!history || !cand_path) {
        sim_fail("", "--history FILE.csv and --program FILE.json are required");
        return 2;
    }
    kp_sim_opts o = {.redemption_bp = 0, .threads = 2};
    if (red && !parse_share(red, &o.redemption_bp)) {
        sim_fail("--redemption", "must be a share from 0 to 1 (\"0.6\"), up to 4 decimals");
        return 2;
    }
    if (threads) {
        char *end;
        long t = strtol(threads, &end, 10);
        if (*end || t < 1 || t > 64) {
            sim_fail("--threads", "must be a whole number from 1 to 64");
            return 2;
        }
        o.threads = (int)t;
    }
    bool from_db = !is_csv(history);
    if (from_db && !red) o.redemption_bp = -1; /* the burn the ledger saw */
    kp_program *cand = program_file(cand_path);
    kp_program *base = cand && base_path ? program_file(base_path) : NULL;
    int rc = 1;
    kp_sim_history *h = NULL;
    kp_sim_result rc_cand, rc_base;
    memset(&rc_cand, 0, sizeof rc_cand);
    memset(&rc_base, 0, sizeof rc_base);
    kp_buf out;
    kp_buf_init(&out, (size_t)1 << 30);
    kp_error e = {0};
    if (!cand || (base_path && !base)) goto done;
    if ((from && !parse_day(from, cand, &o.from)) || (to && !parse_day(to, cand, &o.to))) {
        sim_fail(from && !parse_day(from, cand, &o.from) ? "--from" : "--to",
                 "must be a date (YYYY-MM-DD) or an RFC 3339 time");
        rc = 2;
        goto done;
    }
    h = kp_sim_history_new();
    kp_err err;
    if (!h) {
        sim_fail("", "out of memory");
        goto done;
    }
    if (from_db) {
        kp_store *st = NULL;
        kp_birthdays *bd = NULL;
        if ((err = kp_service_open(history, false, &st, &e)) == KP_OK &&
            (err = kp_birthdays_open(history, &bd, &e)) == KP_OK)
            err = kp_sim_history_db(h, st, o.from, o.to, kp_birthdays_finder(bd), &e);
        kp_birthdays_free(bd);
        if (st) kp_store_close(st);
    } else {
        FILE *f = strcmp(history, "-") == 0 ? stdin : fopen(history, "r");
        if (!f) {
            sim_fail(history, "cannot be opened");
            goto done;
        }
        err = kp_sim_history_csv(h, f, cand, &e);
        if (f != stdin) fclose(f);
    }
    if (err) {
        char where[320];
        snprintf(where, sizeof where, "%s %s", history, e.field);
        sim_fail(where, e.message);
        goto done;
    }
    cli_progress p;
    cli_progress_start(&p, "simulate", "receipts", kp_sim_history_count(h));
    o.progress = on_progress;
    o.progress_ctx = &p;
    err = kp_sim_run(h, cand, &o, &rc_cand, &e);
    if (err == KP_OK && base) {
        cli_progress_end(&p, rc_cand.receipts, true);
        cli_progress_start(&p, "simulate baseline", "receipts", kp_sim_history_count(h));
        err = kp_sim_run(h, base, &o, &rc_base, &e);
    }
    cli_progress_end(&p, base ? rc_base.receipts : rc_cand.receipts, err == KP_OK);
    if (err) {
        sim_fail(e.field, e.message);
        goto done;
    }
    if (json) {
        kp_sim_json(&out, &rc_cand, base ? &rc_base : NULL);
        if (out.failed) {
            sim_fail("", "the result is too large");
            goto done;
        }
        fwrite(out.data, 1, out.len, stdout);
        fputc('\n', stdout);
    } else {
        kp_sim_text(stdout, &rc_cand, base ? &rc_base : NULL);
    }
    rc = 0;
done:
    kp_buf_release(&out);
    kp_sim_result_free(&rc_cand);
    kp_sim_result_free(&rc_base);
    kp_sim_history_free(h);
    free(cand);
    free(base);
    return rc;
}
