/*
 * cmd_catalog.c: `kopilka catalog list | orders | order-state`, the rewards
 * catalog (docs/marketing.md "Rewards catalog") for operators, thin over
 * src/service/catalog.c as the back office (catalog.manage, audited as the
 * operating-system user): each prints the JSON the matching route answers.
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/catalog.h"

static const kp_catalog_caller OFFICE = {"office", NULL};

/* Prints out (or the error) and closes c: 0, or 1 after printing why. */
static int finish(cli_office *c, const char *command, kp_err err, kp_error *e, kp_buf *out)
{
    if (err == KP_OK) {
        fwrite(out->data, 1, out->len, stdout);
        fputc('\n', stdout);
    } else {
        fprintf(stderr, "kopilka %s: %s%s%s\n", command, e->field, e->field[0] ? ": " : "",
                e->message);
    }
    kp_buf_release(out);
    cli_office_close(c);
    return err ? 1 : 0;
}

/* A positive whole number, or 0. */
static int64_t number_of(const char *s)
{
    char *end = NULL;
    long long v = s ? strtoll(s, &end, 10) : 0;
    return s && end != s && *end == '\0' && v > 0 ? v : 0;
}

int cmd_catalog_list(int argc, char **argv)
{
    static const char *const opts[] = {NULL};
    if (!cli_check_options(argc, argv, opts, "catalog list")) return 2;
    const char *db = cli_positional(argc, argv, 0);
    if (db == NULL) {
        fprintf(stderr, "usage: kopilka catalog list DB\n");
        return 2;
    }
    cli_office c;
    if (!cli_office_open(&c, "catalog list", db, false)) return 1;
    kp_buf out;
    kp_buf_init(&out, 16 << 20);
    kp_error e = {0};
    kp_err err = kp_catalog_items_json(&c.office, true, &OFFICE, &out, &e);
    return finish(&c, "catalog list", err, &e, &out);
}

int cmd_catalog_orders(int argc, char **argv)
{
    static const char *const opts[] = {"--state", "--store", "--card", "--before", "--limit",
                                       NULL};
    if (!cli_check_options(argc, argv, opts, "catalog orders")) return 2;
    const char *db = cli_positional(argc, argv, 0);
    const char *before = cli_option(argc, argv, "--before");
    const char *limit = cli_option(argc, argv, "--limit");
    int64_t before_id = before ? number_of(before) : 0;
    int64_t n = limit ? number_of(limit) : 50;
    if (db == NULL || (before && before_id == 0) || n == 0) {
        fprintf(stderr, "usage: kopilka catalog orders DB [--state ordered|ready|handed_over|"
                        "cancelled] [--store S] [--card C] [--before ID] [--limit N (1-%d)]\n",
                KP_CATALOG_PAGE_MAX);
        return 2;
    }
    const char *state = cli_option(argc, argv, "--state");
    const char *store = cli_option(argc, argv, "--store");
    const char *card = cli_option(argc, argv, "--card");
    cli_office c;
    if (!cli_office_open(&c, "catalog orders", db, false)) return 1;
    kp_buf out;
    kp_buf_init(&out, 16 << 20);
    kp_error e = {0};
    kp_err err = kp_catalog_orders_json(&c.office, &OFFICE, state ? state : "",
                                        store ? store : "", card ? card : "", before_id, n, &out,
                                        &e);
    return finish(&c, "catalog orders", err, &e, &out);
}

int cmd_catalog_order_state(int argc, char **argv)
{
    static const char *const opts[] = {NULL};
    if (!cli_check_options(argc, argv, opts, "catalog order-state")) return 2;
    const char *db = cli_positional(argc, argv, 0);
    int64_t id = number_of(cli_positional(argc, argv, 1));
    const char *to_name = cli_positional(argc, argv, 2);
    kp_order_state to = KP_ORDER_ORDERED;
    if (to_name && strcmp(to_name, "ready") == 0) to = KP_ORDER_READY;
    else if (to_name && strcmp(to_name, "handed-over") == 0) to = KP_ORDER_HANDED_OVER;
    else if (to_name && strcmp(to_name, "cancel") == 0) to = KP_ORDER_CANCELLED;
    if (db == NULL || id == 0 || to == KP_ORDER_ORDERED) {
        fprintf(stderr, "usage: kopilka catalog order-state DB ORDER ready|handed-over|cancel\n");
        return 2;
    }
    cli_office c;
    if (!cli_office_open(&c, "catalog order-state", db, false)) return 1;
    kp_buf out;
    kp_buf_init(&out, 1 << 20);
    kp_error e = {0};
    kp_err err = c.st->ops->begin(c.st);
    if (err) kp_error_set(&e, err, "database", "%s", c.st->last_error);
    else err = kp_catalog_order_move(&c.office, &OFFICE, id, to, &out, &e);
    err = cli_office_finish(&c, err, &e);
    return finish(&c, "catalog order-state", err, &e, &out);
}
