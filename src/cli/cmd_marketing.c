/*
 * cmd_marketing.c: `kopilka segment count` and `kopilka campaign list |
 * show | results`, the segments and campaigns of docs/marketing.md read
 * from the command line (src/service/marketing.c): each prints the JSON
 * the matching route answers. Campaigns are drafted, started and run by a
 * server (its scheduler), not here.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/marketing.h"

static int finish(cli_office *c, const char *command, kp_err err, kp_error *e, kp_buf *out)
{
    if (err == KP_OK) {
        fwrite(out->data, 1, out->len, stdout);
        fputc('\n', stdout);
    } else {
        fprintf(stderr, "kopilka %s: %s%s%s\n", command, e->field[0] ? e->field : "",
                e->field[0] ? ": " : "", e->message);
    }
    kp_buf_release(out);
    cli_office_close(c);
    return err ? 1 : 0;
}

/* A positive id, or 0. */
static int64_t id_of(const char *s)
{
    char *end = NULL;
    long long v = s ? strtoll(s, &end, 10) : 0;
    return s && *end == '\0' && v > 0 ? v : 0;
}

int cmd_segment_count(int argc, char **argv)
{
    static const char *const opts[] = {NULL};
    if (!cli_check_options(argc, argv, opts, "segment count")) return 2;
    const char *db = cli_positional(argc, argv, 0);
    const char *filter = cli_positional(argc, argv, 1);
    if (db == NULL || filter == NULL) {
        fprintf(stderr, "usage: kopilka segment count DB FILTER_JSON\n");
        return 2;
    }
    cli_office c;
    if (!cli_office_open(&c, "segment count", db, false)) return 1;
    kp_buf body, out;
    kp_buf_init(&body, 1 << 20);
    kp_buf_init(&out, 1 << 20);
    kp_buf_puts(&body, "{\"filter\":");
    kp_buf_puts(&body, filter);
    kp_buf_puts(&body, "}");
    kp_error e = {0};
    kp_err err = kp_segment_preview(&c.office, body.data, body.len, &out, &e);
    kp_buf_release(&body);
    return finish(&c, "segment count", err, &e, &out);
}

/* `campaign list|show|results`: which one, its database and id. */
static int campaign_read(int argc, char **argv, const char *command, int which)
{
    static const char *const opts[] = {"--window-days", NULL};
    if (!cli_check_options(argc, argv, opts, command)) return 2;
    const char *db = cli_positional(argc, argv, 0);
    int64_t id = id_of(cli_positional(argc, argv, 1));
    const char *window = cli_option(argc, argv, "--window-days");
    int64_t days = window ? id_of(window) : 30;
    if (db == NULL || (which > 0 && id == 0) || days == 0) {
        fprintf(stderr, "usage: kopilka campaign list DB | show DB ID | results DB ID "
                        "[--window-days N]\n");
        return 2;
    }
    cli_office c;
    if (!cli_office_open(&c, command, db, false)) return 1;
    kp_buf out;
    kp_buf_init(&out, 16 << 20);
    kp_error e = {0};
    kp_err err = which == 0   ? kp_campaigns_list(&c.office, &out, &e)
                 : which == 1 ? kp_campaign_show(&c.office, id, &out, &e)
                              : kp_campaign_results(&c.office, id, days, &out, &e);
    return finish(&c, command, err, &e, &out);
}

int cmd_campaign_list(int argc, char **argv)
{
    return campaign_read(argc, argv, "campaign list", 0);
}

int cmd_campaign_show(int argc, char **argv)
{
    return campaign_read(argc, argv, "campaign show", 1);
}

int cmd_campaign_results(int argc, char **argv)
{
    return campaign_read(argc, argv, "campaign results", 2);
}
