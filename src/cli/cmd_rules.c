/*
 * cmd_rules.c: the commands of program rules and time: `tick` (run due
 * time-driven work at a given instant), `event` (an external event for a
 * card), `discount set|clear` (a customer's individual discount), `birthday
 * set` and `jobs` (the scheduler's record of runs). Event, discount and
 * birthday are manual changes: each is audited as the operating-system user
 * (cli.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopilka/clock.h>
#include <kopilka/money.h>

#include "cli.h"
#include "service/service_rules.h"

static int fail(const char *command, const kp_error *e)
{
    fprintf(stderr, "kopilka %s: %s%s%s\n", command, e->field, e->field[0] ? ": " : "", e->message);
    return 1;
}

static kp_store *open_db(const char *command, const char *path)
{
    kp_error e = {0};
    kp_store *st = NULL;
    if (path == NULL) {
        fprintf(stderr, "kopilka %s: the database path is missing (see --help)\n", command);
        return NULL;
    }
    if (kp_service_open(path, false, &st, &e)) {
        fail(command, &e);
        return NULL;
    }
    return st;
}

/* --now TIME, or the system clock. */
static bool now_option(const char *command, int argc, char **argv, kp_time *now)
{
    const char *text = cli_option(argc, argv, "--now");
    if (text == NULL) {
        *now = kp_clock_now(NULL);
        return true;
    }
    if (kp_time_parse(text, now)) return true;
    fprintf(stderr, "kopilka %s: --now must be an RFC 3339 time, got %s\n", command, text);
    return false;
}

/* Ends the transaction: commit when err is KP_OK, else roll back. */
static kp_err finish(kp_store *st, kp_err err)
{
    if (err) {
        st->ops->rollback(st);
        return err;
    }
    return st->ops->commit(st);
}

int cmd_tick(int argc, char **argv)
{
    static const char *const opts[] = {"--now", NULL};
    if (!cli_check_options(argc, argv, opts, "tick")) return 2;
    const char *db = cli_positional(argc, argv, 0);
    kp_time now;
    if (!now_option("tick", argc, argv, &now)) return 2;
    kp_store *st = open_db("tick", db);
    if (st == NULL) return 1;
    kp_error e = {0};
    kp_program *program = malloc(sizeof *program);
    kp_scratch *sc = kp_scratch_new();
    kp_tick_report total;
    memset(&total, 0, sizeof total);
    kp_err err = program && sc ? kp_service_program_running(st, 0, now, program, &e) : KP_ERR_NOMEM;
    kp_birthdays *birthdays = NULL;
    if (err == KP_OK) err = kp_birthdays_open(db, &birthdays, &e);
    kp_tick_opts tick_opts = {.birthdays = kp_birthdays_finder(birthdays)};
    /* One transaction per bounded step, as the server's scheduler does. */
    for (int i = 0; err == KP_OK && i < 1000000; i++) {
        kp_tick_report step;
        memset(&step, 0, sizeof step);
        if ((err = st->ops->begin(st))) {
            kp_error_set(&e, err, "database", "%s", st->last_error);
            break;
        }
        err = finish(st, kp_service_tick(st, program, &tick_opts, now, 1000, sc, &step, &e));
        if (err && e.message[0] == '\0') kp_error_set(&e, err, "database", "%s", st->last_error);
        total.expired_accounts += step.expired_accounts;
        total.expired_points += step.expired_points;
        total.birthday_grants += step.birthday_grants;
        total.tenure_grants += step.tenure_grants;
        total.tier_changes += step.tier_changes;
        total.reminders += step.reminders;
        total.runs += step.runs;
        if (step.note[0]) memcpy(total.note, step.note, sizeof total.note);
        if (!step.more) break;
    }
    kp_birthdays_free(birthdays);
    kp_scratch_free(sc);
    free(program);
    kp_store_close(st);
    if (err) return fail("tick", &e);
    char at[32];
    kp_time_format(now, at, sizeof at);
    printf("tick at %s: %lld job runs; expired %lld points of %lld accounts; %lld birthday "
           "grants, %lld tenure grants, %lld tier changes, %lld expiry reminders\n",
           at, (long long)total.runs, (long long)total.expired_points,
           (long long)total.expired_accounts, (long long)total.birthday_grants,
           (long long)total.tenure_grants, (long long)total.tier_changes,
           (long long)total.reminders);
    if (total.note[0]) printf("note: %s\n", total.note);
    return 0;
}

int cmd_event(int argc, char **argv)
{
    static const char *const opts[] = {"--store", "--card",  "--type", "--id",
                                       "--value", "--token", "--now",  NULL};
    if (!cli_check_options(argc, argv, opts, "event")) return 2;
    const char *db = cli_positional(argc, argv, 0);
    const char *card = cli_option(argc, argv, "--card");
    const char *type = cli_option(argc, argv, "--type");
    const char *id = cli_option(argc, argv, "--id");
    const char *store = cli_option(argc, argv, "--store");
    const char *value = cli_option(argc, argv, "--value");
    const char *token = cli_option(argc, argv, "--token");
    if (db == NULL || card == NULL || type == NULL || id == NULL) {
        fprintf(stderr, "usage: kopilka event DB --card N --type T --id ID [--store S] "
                        "[--value V] [--token X] [--now TIME]\n");
        return 2;
    }
    kp_time now;
    if (!now_option("event", argc, argv, &now)) return 2;
    /* The same validation as POST /v1/events: build the body and parse it. */
    kp_buf body;
    kp_buf_init(&body, 8192);
    kp_buf_puts(&body, "{");
    kp_buf_json_kv_str(&body, "id", id, false);
    kp_buf_json_kv_str(&body, "card", card, true);
    kp_buf_json_kv_str(&body, "type", type, true);
    if (token) kp_buf_json_kv_str(&body, "token", token, true);
    if (value) {
        char *end;
        long long v = strtoll(value, &end, 10);
        if (*end != '\0' || end == value) {
            fprintf(stderr, "kopilka event: --value must be an integer, got %s\n", value);
            kp_buf_release(&body);
            return 2;
        }
        kp_buf_json_kv_i64(&body, "value", v, true);
    }
    kp_buf_puts(&body, "}");
    kp_error e = {0};
    kp_event_req req;
    kp_err err = body.failed ? KP_ERR_LIMIT : kp_event_req_parse(body.data, body.len, &req, &e);
    kp_buf_release(&body);
    if (err) return fail("event", &e);
    cli_office c;
    if (!cli_office_open(&c, "event", db, false)) return 1;
    kp_buf out;
    kp_buf_init(&out, 1 << 20);
    bool replayed = false;
    err = c.office.program ? KP_OK
                           : kp_error_set(&e, KP_ERR_NOT_FOUND, "program",
                                          "no program is loaded (use `kopilka program load`)");
    if (err == KP_OK && (err = c.st->ops->begin(c.st)) == KP_OK) {
        err = kp_service_event(c.st, c.program, KP_FROM_BACK_OFFICE, store ? store : "cli", &req,
                               now, c.sc, &out, &replayed, &e);
        /* The answer names the points granted; the entry names the event. */
        if (err == KP_OK && !replayed) {
            char target[KP_STR_MAX + 8];
            snprintf(target, sizeof target, "card:%s", card);
            err = kp_office_audit(&c.office, "event.apply", target, "type=%s id=%s store=%s", type,
                                  id, store ? store : "cli");
        }
        err = cli_office_finish(&c, err, &e);
    }
    if (err && e.message[0] == '\0') kp_error_set(&e, err, "database", "%s", c.st->last_error);
    cli_office_close(&c);
    if (err == KP_OK) printf("%s\n", out.data);
    kp_buf_release(&out);
    return err ? fail("event", &e) : 0;
}

static int discount(int argc, char **argv, bool set)
{
    const char *command = set ? "discount set" : "discount clear";
    static const char *const set_opts[] = {"--card", "--percent", NULL};
    static const char *const clear_opts[] = {"--card", NULL};
    if (!cli_check_options(argc, argv, set ? set_opts : clear_opts, command)) return 2;
    const char *db = cli_positional(argc, argv, 0);
    const char *card = cli_option(argc, argv, "--card");
    const char *percent = cli_option(argc, argv, "--percent");
    int32_t bp = 0;
    if (db == NULL || card == NULL || (set && percent == NULL)) {
        fprintf(stderr, "usage: kopilka %s DB --card N%s\n", command, set ? " --percent P" : "");
        return 2;
    }
    if (set && (!kp_percent_parse(percent, &bp) || bp > 10000)) {
        fprintf(stderr, "kopilka %s: --percent must be from 0 to 100 with at most 2 decimals\n",
                command);
        return 2;
    }
    cli_office c;
    if (!cli_office_open(&c, command, db, false)) return 1;
    kp_error e = {0};
    kp_err err = c.st->ops->begin(c.st);
    if (err == KP_OK) err = cli_office_finish(&c, kp_discount_set(&c.office, card, set, bp, &e), &e);
    if (err && e.message[0] == '\0') kp_error_set(&e, err, "database", "%s", c.st->last_error);
    cli_office_close(&c);
    if (err) return fail(command, &e);
    char rate[16];
    kp_percent_format(bp, rate, sizeof rate);
    if (set)
        printf("card %s: individual discount %s\n", card, rate);
    else
        printf("card %s: no individual discount\n", card);
    return 0;
}

int cmd_discount_set(int argc, char **argv)
{
    return discount(argc, argv, true);
}
int cmd_discount_clear(int argc, char **argv)
{
    return discount(argc, argv, false);
}

int cmd_jobs(int argc, char **argv)
{
    static const char *const opts[] = {"--limit", NULL};
    if (!cli_check_options(argc, argv, opts, "jobs")) return 2;
    const char *db = cli_positional(argc, argv, 0);
    const char *limit_text = cli_option(argc, argv, "--limit");
    long limit = 50;
    if (limit_text) {
        char *end;
        limit = strtol(limit_text, &end, 10);
        if (*end != '\0' || limit < 1 || limit > 1000) {
            fprintf(stderr, "kopilka jobs: --limit must be from 1 to 1000\n");
            return 2;
        }
    }
    kp_store *st = open_db("jobs", db);
    if (st == NULL) return 1;
    kp_job_run *runs = calloc((size_t)limit, sizeof *runs);
    size_t n = 0;
    kp_err err = runs ? st->ops->triggers->job_runs(st, runs, (size_t)limit, &n) : KP_ERR_NOMEM;
    if (err) fprintf(stderr, "kopilka jobs: %s\n", st->last_error);
    for (size_t i = 0; i < n && err == KP_OK; i++) {
        char due[32], ran[32];
        kp_time_format(runs[i].due_at, due, sizeof due);
        kp_time_format(runs[i].ran_at, ran, sizeof ran);
        printf("%lld\t%s\tdue %s\tran %s\t%lld\t%s\n", (long long)runs[i].id, runs[i].job, due, ran,
               (long long)runs[i].items, runs[i].detail);
    }
    free(runs);
    kp_store_close(st);
    return err ? 1 : 0;
}

int cmd_birthday_set(int argc, char **argv)
{
    static const char *const opts[] = {"--card", "--date", NULL};
    if (!cli_check_options(argc, argv, opts, "birthday set")) return 2;
    const char *db = cli_positional(argc, argv, 0);
    const char *card = cli_option(argc, argv, "--card");
    const char *date = cli_option(argc, argv, "--date");
    if (db == NULL || card == NULL || date == NULL) {
        fprintf(stderr, "usage: kopilka birthday set DB --card N --date YYYY-MM-DD\n");
        return 2;
    }
    if (!cli_key_ensure("birthday set", db)) return 1;
    cli_office c;
    if (!cli_office_open(&c, "birthday set", db, true)) return 1;
    kp_error e = {0};
    int64_t customer = 0;
    kp_err err = c.st->ops->begin(c.st);
    if (err == KP_OK)
        err = cli_office_finish(&c, kp_birthday_set(&c.office, card, date, &customer, &e), &e);
    if (err && e.message[0] == '\0') kp_error_set(&e, err, "database", "%s", c.st->last_error);
    cli_office_close(&c);
    if (err) return fail("birthday set", &e);
    if (customer)
        printf("card %s: birthday %s recorded in customer %lld's record\n", card, date,
               (long long)customer);
    else
        printf("card %s: birthday recorded for the birthday grants (the card has no customer "
               "record yet; its registration's birthday, or none, will decide)\n", card);
    return 0;
}
