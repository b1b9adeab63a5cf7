/*
 * cmd_draw.c: `kopilka draw create|close|list|show|verify` (docs/marketing.md
 * "Prize draws"): the operators' side of prize draws over
 * src/service/draws.c, audited as the operating-system user, and the
 * verification of a published draw from its JSON file alone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "service/draws.h"

static int fail(const char *command, const kp_error *e)
{
    fprintf(stderr, "kopilka %s: %s%s%s\n", command, e->field, e->field[0] ? ": " : "",
            e->message);
    return 1;
}

/* Runs op in a transaction of c's store; prints out on success. */
static int run_write(cli_office *c, const char *command, kp_err err, kp_error *e, kp_buf *out)
{
    err = cli_office_finish(c, err, e);
    if (err) return fail(command, e);
    fwrite(out->data, 1, out->len, stdout);
    fputc('\n', stdout);
    return 0;
}

int cmd_draw_create(int argc, char **argv)
{
    static const char *const opts[] = {"--name", "--from", "--to", "--rule", "--per-minor",
                                       "--store", "--tier", "--prize", NULL};
    if (!cli_check_options(argc, argv, opts, "draw create")) return 2;
    const char *db = cli_positional(argc, argv, 0);
    kp_draw_spec *s = calloc(1, sizeof *s);
    if (s == NULL) return 1;
    const char *v;
    snprintf(s->name, sizeof s->name, "%s", (v = cli_option(argc, argv, "--name")) ? v : "");
    snprintf(s->from, sizeof s->from, "%s", (v = cli_option(argc, argv, "--from")) ? v : "");
    snprintf(s->to, sizeof s->to, "%s", (v = cli_option(argc, argv, "--to")) ? v : "");
    snprintf(s->rule, sizeof s->rule, "%s", (v = cli_option(argc, argv, "--rule")) ? v : "spend");
    snprintf(s->store, sizeof s->store, "%s", (v = cli_option(argc, argv, "--store")) ? v : "");
    snprintf(s->tier, sizeof s->tier, "%s", (v = cli_option(argc, argv, "--tier")) ? v : "");
    if ((v = cli_option(argc, argv, "--per-minor"))) {
        char *end;
        s->per_minor = strtoll(v, &end, 10);
        if (*end || end == v) s->per_minor = -1;
    }
    /* every --prize NAME:COUNT, in order */
    for (int i = 0; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--prize") != 0) continue;
        const char *p = argv[++i], *colon = strrchr(p, ':');
        char *end = NULL;
        long long count = colon ? strtoll(colon + 1, &end, 10) : 0;
        if (colon == NULL || end == colon + 1 || *end || s->n_prizes >= KP_DRAW_PRIZES_MAX) {
            fprintf(stderr, "kopilka draw create: --prize: \"%s\" must be NAME:COUNT (at most %d "
                    "prizes)\n", p, KP_DRAW_PRIZES_MAX);
            free(s);
            return 2;
        }
        kp_draw_prize *x = &s->prizes[s->n_prizes++];
        snprintf(x->name, sizeof x->name, "%.*s", (int)(colon - p), p);
        x->count = count;
    }
    if (db == NULL) {
        fprintf(stderr, "usage: kopilka draw create DB --name N --from T --to T [--rule spend "
                "--per-minor M | --rule visit] [--store S] [--tier T] --prize NAME:COUNT...\n");
        free(s);
        return 2;
    }
    cli_office c;
    if (!cli_key_ensure("draw create", db) || !cli_office_open(&c, "draw create", db, true)) {
        free(s);
        return 1;
    }
    kp_error e = {0};
    kp_buf out;
    kp_buf_init(&out, 1 << 20);
    kp_err err = c.st->ops->begin(c.st);
    if (err) kp_error_set(&e, err, "database", "%s", c.st->last_error);
    else err = kp_draw_create(&c.office, s, &out, &e);
    int rc = run_write(&c, "draw create", err, &e, &out);
    kp_buf_release(&out);
    cli_office_close(&c);
    free(s);
    return rc;
}

static int64_t draw_id(const char *text)
{
    char *end;
    long long id = text ? strtoll(text, &end, 10) : 0;
    return text && *end == '\0' && id > 0 ? id : 0;
}

int cmd_draw_close(int argc, char **argv)
{
    static const char *const opts[] = {NULL};
    if (!cli_check_options(argc, argv, opts, "draw close")) return 2;
    const char *db = cli_positional(argc, argv, 0);
    int64_t id = draw_id(cli_positional(argc, argv, 1));
    if (db == NULL || id == 0) {
        fprintf(stderr, "usage: kopilka draw close DB ID\n");
        return 2;
    }
    cli_office c;
    if (!cli_office_open(&c, "draw close", db, true)) return 1;
    kp_error e = {0};
    kp_buf out;
    kp_buf_init(&out, (size_t)1 << 30);
    bool replayed = false;
    kp_err err = c.st->ops->begin(c.st);
    if (err) kp_error_set(&e, err, "database", "%s", c.st->last_error);
    else err = kp_draw_close(&c.office, id, &out, &replayed, &e);
    if (err == KP_OK && replayed)
        fprintf(stderr, "kopilka draw close: draw %lld was closed already: its result as "
                "published\n", (long long)id);
    int rc = run_write(&c, "draw close", err, &e, &out);
    kp_buf_release(&out);
    cli_office_close(&c);
    return rc;
}

int cmd_draw_show(int argc, char **argv)
{
    static const char *const opts[] = {NULL};
    if (!cli_check_options(argc, argv, opts, "draw show")) return 2;
    const char *db = cli_positional(argc, argv, 0);
    int64_t id = draw_id(cli_positional(argc, argv, 1));
    if (db == NULL || id == 0) {
        fprintf(stderr, "usage: kopilka draw show DB ID\n");
        return 2;
    }
    cli_office c;
    if (!cli_office_open(&c, "draw show", db, false)) return 1;
    kp_error e = {0};
    kp_buf out;
    kp_buf_init(&out, (size_t)1 << 30);
    kp_err err = kp_draw_public(&c.office, id, &out, &e);
    int rc = err ? fail("draw show", &e) : 0;
    if (!err) {
        fwrite(out.data, 1, out.len, stdout);
        fputc('\n', stdout);
    }
    kp_buf_release(&out);
    cli_office_close(&c);
    return rc;
}

int cmd_draw_list(int argc, char **argv)
{
    static const char *const opts[] = {NULL};
    if (!cli_check_options(argc, argv, opts, "draw list")) return 2;
    const char *db = cli_positional(argc, argv, 0);
    if (db == NULL) {
        fprintf(stderr, "usage: kopilka draw list DB\n");
        return 2;
    }
    cli_office c;
    if (!cli_office_open(&c, "draw list", db, false)) return 1;
    kp_draw *items = calloc(KP_DRAW_LIST_MAX, sizeof *items);
    size_t n = 0;
    kp_err err = items ? c.st->ops->draws->draw_list(c.st, 0, items, KP_DRAW_LIST_MAX, &n)
                       : KP_ERR_NOMEM;
    if (err) {
        fprintf(stderr, "kopilka draw list: database: %s\n", c.st->last_error);
    } else {
        printf("id\tstate\tfrom\tto\tcommitment\tname\n");
        for (size_t i = 0; i < n; i++) {
            char from[32], to[32];
            kp_time_format(items[i].from, from, sizeof from);
            kp_time_format(items[i].to, to, sizeof to);
            printf("%lld\t%s\t%s\t%s\t%s\t%s\n", (long long)items[i].id,
                   items[i].closed_at ? "closed" : "open", from, to, items[i].commitment,
                   items[i].name);
            kp_draw_release(&items[i]);
        }
    }
    free(items);
    cli_office_close(&c);
    return err ? 1 : 0;
}

static void print_problem(void *ctx, const char *line)
{
    (void)ctx;
    printf("MISMATCH %s\n", line);
}

int cmd_draw_verify(int argc, char **argv)
{
    static const char *const opts[] = {NULL};
    if (!cli_check_options(argc, argv, opts, "draw verify")) return 2;
    const char *file = cli_positional(argc, argv, 0);
    if (file == NULL) {
        fprintf(stderr, "usage: kopilka draw verify FILE (the JSON of GET /v1/draws/{id})\n");
        return 2;
    }
    kp_error e = {0};
    size_t len = 0;
    char *text = cli_read_file(file, &len, &e);
    if (text == NULL) return fail("draw verify", &e);
    int problems = kp_draw_verify_text(text, len, print_problem, NULL, &e);
    free(text);
    if (problems < 0) return fail("draw verify", &e);
    if (problems > 0) {
        printf("NOT verified: %d mismatch%s\n", problems, problems == 1 ? "" : "es");
        return 1;
    }
    printf("verified\n");
    return 0;
}
