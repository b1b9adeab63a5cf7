/*
 * cmd_programs.c: the program versions' commands: `program load` (at once
 * or from a date), `program list` and `program cancel`, over
 * src/service/programs.h. Loads and cancellations are audited as the
 * operating-system user (cli.h). `kopilka init` loads its first version
 * through cli_program_load too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopilka/clock.h>

#include "cli.h"
#include "service/programs.h"

/* Opens db for `command` with the office's clock at --now TIME (tests). */
static int office_open(const char *command, const char *db, int argc, char **argv, cli_office *c)
{
    return cli_office_open_at(c, command, db, argc, argv);
}

static void print_error(const char *command, const char *field, const char *message)
{
    fprintf(stderr, "kopilka %s: %s%s%s\n", command, field, field[0] ? ": " : "", message);
}

/* Prints every error of a failed load: the list when there is one, else e. */
static void print_errors(const char *command, const kp_field_errors *fe, const kp_error *e)
{
    if (fe->n == 0) {
        print_error(command, e->field, e->message);
        return;
    }
    for (size_t i = 0; i < fe->n; i++)
        print_error(command, fe->items[i].field, fe->items[i].message);
    if (fe->more) fprintf(stderr, "kopilka %s: and %zu more errors\n", command, fe->more);
}

int cli_program_load(cli_office *c, const char *command, const char *json, size_t len,
                     const char *file, kp_time activates_at, int64_t *version)
{
    kp_field_errors *fe = calloc(1, sizeof *fe);
    kp_error e = {0};
    char source[512];
    snprintf(source, sizeof source, "file=%s", file);
    kp_err err = fe ? c->st->ops->begin(c->st) : KP_ERR_NOMEM;
    if (err == KP_OK)
        err = cli_office_finish(
            c, kp_program_load(&c->office, json, len, "", source, activates_at, version, fe, &e),
            &e);
    if (err && e.message[0] == '\0') kp_error_set(&e, err, "database", "%s", c->st->last_error);
    if (err && fe)
        print_errors(command, fe, &e);
    else if (err)
        print_error(command, "", "out of memory");
    free(fe);
    return err ? 1 : 0;
}

int cmd_program_load(int argc, char **argv)
{
    static const char *const opts[] = {"--activate-at", "--now", NULL};
    if (!cli_check_options(argc, argv, opts, "program load")) return 2;
    const char *db = cli_positional(argc, argv, 0);
    const char *file = cli_positional(argc, argv, 1);
    const char *at_text = cli_option(argc, argv, "--activate-at");
    if (db == NULL || file == NULL) {
        fprintf(stderr, "usage: kopilka program load DB FILE [--activate-at TIME] [--now TIME]\n");
        return 2;
    }
    kp_time activates_at = 0;
    if (at_text && !kp_time_parse(at_text, &activates_at)) {
        fprintf(stderr,
                "kopilka program load: --activate-at must be an RFC 3339 time "
                "(\"2027-01-01T00:00:00+03:00\"), got %s\n",
                at_text);
        return 2;
    }
    kp_error e = {0};
    size_t len;
    char *json = cli_read_file(file, &len, &e);
    if (json == NULL) {
        print_error("program load", e.field, e.message);
        return 1;
    }
    cli_office c;
    int64_t version = 0;
    int rc = office_open("program load", db, argc, argv, &c);
    if (rc == 0) {
        rc = cli_program_load(&c, "program load", json, len, file, activates_at, &version);
        cli_office_close(&c);
    }
    free(json);
    if (rc) return rc;
    if (activates_at) {
        char at[32];
        kp_time_format(activates_at, at, sizeof at);
        printf("program version %lld, scheduled for %s\n", (long long)version, at);
    } else {
        printf("program version %lld\n", (long long)version);
    }
    return 0;
}

int cmd_program_list(int argc, char **argv)
{
    static const char *const opts[] = {"--now", NULL};
    if (!cli_check_options(argc, argv, opts, "program list")) return 2;
    const char *db = cli_positional(argc, argv, 0);
    if (db == NULL) {
        fprintf(stderr, "usage: kopilka program list DB [--now TIME]\n");
        return 2;
    }
    cli_office c;
    int rc = office_open("program list", db, argc, argv, &c);
    if (rc) return rc;
    kp_error e = {0};
    kp_program_version *page = calloc(KP_PROGRAM_VERSIONS_PAGE_MAX, sizeof *page);
    kp_err err = page ? KP_OK : kp_error_set(&e, KP_ERR_NOMEM, "", "out of memory");
    if (err == KP_OK) printf("version\tname\tloaded at\tloaded by\tactivates at\tstate\n");
    int64_t before = 0, running = 0;
    for (size_t n = KP_PROGRAM_VERSIONS_PAGE_MAX;
         err == KP_OK && n == KP_PROGRAM_VERSIONS_PAGE_MAX;) {
        err = kp_program_versions(&c.office, before, page, KP_PROGRAM_VERSIONS_PAGE_MAX, &n,
                                  &running, &e);
        for (size_t i = 0; err == KP_OK && i < n; i++) {
            const kp_program_version *v = &page[i];
            char loaded[32], activates[32];
            cli_time_or_dash(v->loaded_at, loaded);
            cli_time_or_dash(v->activates_at, activates);
            printf("%lld\t%s\t%s\t%s\t%s\t%s\n", (long long)v->version, v->name, loaded,
                   v->loaded_by[0] ? v->loaded_by : "-", activates,
                   kp_program_state_name(kp_program_state_of(v, running, c.office.now)));
            before = v->version;
        }
    }
    free(page);
    cli_office_close(&c);
    if (err) print_error("program list", e.field, e.message);
    return err ? 1 : 0;
}

int cmd_program_cancel(int argc, char **argv)
{
    static const char *const opts[] = {"--version", "--now", NULL};
    if (!cli_check_options(argc, argv, opts, "program cancel")) return 2;
    const char *db = cli_positional(argc, argv, 0);
    const char *text = cli_option(argc, argv, "--version");
    char *end = NULL;
    long long version = text ? strtoll(text, &end, 10) : 0;
    if (db == NULL || text == NULL) {
        fprintf(stderr, "usage: kopilka program cancel DB --version N [--now TIME]\n");
        return 2;
    }
    if (*end != '\0' || version <= 0) {
        fprintf(stderr, "kopilka program cancel: --version must be a version number, got %s\n",
                text);
        return 2;
    }
    cli_office c;
    int rc = office_open("program cancel", db, argc, argv, &c);
    if (rc) return rc;
    kp_error e = {0};
    kp_program_version row;
    kp_err err = c.st->ops->begin(c.st);
    if (err == KP_OK)
        err = cli_office_finish(&c, kp_program_cancel(&c.office, version, &row, &e), &e);
    if (err && e.message[0] == '\0') kp_error_set(&e, err, "database", "%s", c.st->last_error);
    cli_office_close(&c);
    if (err) {
        print_error("program cancel", e.field, e.message);
        return 1;
    }
    char at[32];
    kp_time_format(row.activates_at, at, sizeof at);
    printf("program version %lld, scheduled for %s, is cancelled\n", version, at);
    return 0;
}
