/*
 * cmd_settlement.c: `kopilka settlement periods|show|close|statement`
 * (docs/coalition.md "Periods and statements"): a coalition's monthly
 * periods, their statements and matrix over src/service/settlement.c, the
 * close audited as the operating-system user. --now TIME sets the clock
 * (tests).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopilka/clock.h>

#include "cli.h"
#include "service/settlement.h"

static int fail(const char *command, const kp_error *e)
{
    fprintf(stderr, "kopilka %s: %s%s%s\n", command, e->field, e->field[0] ? ": " : "",
            e->message);
    return 1;
}

static bool period_arg(const char *command, int argc, char **argv, int32_t *period)
{
    const char *text = cli_option(argc, argv, "--period");
    if (text && kp_settle_period_parse(text, period)) return true;
    fprintf(stderr, "kopilka %s: --period must be a month YYYY-MM, got %s\n", command,
            text ? text : "nothing");
    return false;
}

static int print(kp_err err, const char *command, const kp_error *e, const kp_buf *out, bool csv)
{
    if (err) return fail(command, e);
    fwrite(out->data, 1, out->len, stdout);
    if (!csv) fputc('\n', stdout);
    return 0;
}

int cmd_settlement_periods(int argc, char **argv)
{
    static const char *const opts[] = {"--now", NULL};
    if (!cli_check_options(argc, argv, opts, "settlement periods")) return 2;
    const char *db = cli_positional(argc, argv, 0);
    if (db == NULL) {
        fprintf(stderr, "usage: kopilka settlement periods DB\n");
        return 2;
    }
    cli_office c;
    int rc = cli_office_open_at(&c, "settlement periods", db, argc, argv);
    if (rc) return rc;
    kp_error e = {0};
    kp_buf out;
    kp_buf_init(&out, (size_t)1 << 24);
    rc = print(kp_settlement_periods(&c.office, &out, &e), "settlement periods", &e, &out, false);
    kp_buf_release(&out);
    cli_office_close(&c);
    return rc;
}

int cmd_settlement_show(int argc, char **argv)
{
    static const char *const opts[] = {"--period", "--now", NULL};
    bool csv = cli_take_flag(&argc, argv, "--csv");
    bool matrix = cli_take_flag(&argc, argv, "--matrix");
    if (!cli_check_options(argc, argv, opts, "settlement show")) return 2;
    const char *db = cli_positional(argc, argv, 0);
    int32_t period = 0;
    if (db == NULL) {
        fprintf(stderr, "usage: kopilka settlement show DB --period YYYY-MM [--csv [--matrix]]\n");
        return 2;
    }
    if (!period_arg("settlement show", argc, argv, &period)) return 2;
    cli_office c;
    int rc = cli_office_open_at(&c, "settlement show", db, argc, argv);
    if (rc) return rc;
    kp_error e = {0};
    kp_buf out;
    kp_buf_init(&out, (size_t)1 << 30);
    rc = print(kp_settlement_period(&c.office, period, csv, csv && matrix, &out, &e),
               "settlement show", &e, &out, csv);
    kp_buf_release(&out);
    cli_office_close(&c);
    return rc;
}

int cmd_settlement_close(int argc, char **argv)
{
    static const char *const opts[] = {"--period", "--now", NULL};
    if (!cli_check_options(argc, argv, opts, "settlement close")) return 2;
    const char *db = cli_positional(argc, argv, 0);
    int32_t period = 0;
    if (db == NULL) {
        fprintf(stderr, "usage: kopilka settlement close DB --period YYYY-MM\n");
        return 2;
    }
    if (!period_arg("settlement close", argc, argv, &period)) return 2;
    cli_office c;
    int rc = cli_office_open_at(&c, "settlement close", db, argc, argv);
    if (rc) return rc;
    kp_error e = {0};
    kp_buf out;
    kp_buf_init(&out, (size_t)1 << 30);
    bool replayed = false;
    kp_err err = c.st->ops->begin(c.st);
    if (err)
        kp_error_set(&e, err, "database", "%s", c.st->last_error);
    else
        err = kp_settlement_close(&c.office, period, &out, &replayed, &e);
    err = cli_office_finish(&c, err, &e);
    if (err == KP_OK && replayed)
        fprintf(stderr, "kopilka settlement close: %s was closed already: its statements as "
                "stored\n", cli_option(argc, argv, "--period"));
    rc = print(err, "settlement close", &e, &out, false);
    kp_buf_release(&out);
    cli_office_close(&c);
    return rc;
}

int cmd_settlement_statement(int argc, char **argv)
{
    static const char *const opts[] = {NULL};
    bool csv = cli_take_flag(&argc, argv, "--csv");
    if (!cli_check_options(argc, argv, opts, "settlement statement")) return 2;
    const char *db = cli_positional(argc, argv, 0), *text = cli_positional(argc, argv, 1);
    char *end = NULL;
    long long number = text ? strtoll(text, &end, 10) : 0;
    if (db == NULL || text == NULL || *end || number <= 0) {
        fprintf(stderr, "usage: kopilka settlement statement DB NUMBER [--csv]\n");
        return 2;
    }
    cli_office c;
    if (!cli_office_open(&c, "settlement statement", db, false)) return 1;
    kp_error e = {0};
    kp_buf out;
    kp_buf_init(&out, (size_t)1 << 24);
    int rc = print(kp_settlement_statement(&c.office, number, csv, &out, &e),
                   "settlement statement", &e, &out, csv);
    kp_buf_release(&out);
    cli_office_close(&c);
    return rc;
}
