/*
 * cmd_recover.c: `kopilka recover DB --accept-loss`, the way forward when
 * the operation log is damaged in its middle (oplog.h): the server and
 * every command refuse to open such a database rather than lose the
 * acknowledged operations past the damage without a word. This command
 * keeps the operations before the damage, lists the readable ones after it
 * (their tills send them again) and empties the log. Without --accept-loss
 * it only recovers as any command does, and explains the damage if any.
 */
#include <stdio.h>
#include <string.h>

#include <kopilka/oplog.h>

#include "cli.h"
#include "service/service.h"
#include "store/store_sqlite.h"

/* One line per readable record after the damage: LOST, or SALVAGED when
 * --salvage applied it; then the record and, after " -- ", how it went. */
static void print_lost(void *ctx, uint64_t seq, const char *kind, const char *store,
                       const char *card, const char *receipt, const char *outcome)
{
    size_t *listed = ctx;
    (*listed)++;
    printf("%s %llu %s store=%s card=%s receipt=%s -- %s\n",
           strncmp(outcome, "salvaged", 8) == 0 ? "SALVAGED" : "LOST", (unsigned long long)seq,
           kind, store, card, receipt, outcome);
}

bool cli_take_flag(int *argc, char **argv, const char *name)
{
    bool found = false;
    int kept = 0;
    for (int i = 0; i < *argc; i++) {
        if (strcmp(argv[i], name) == 0) found = true;
        else argv[kept++] = argv[i];
    }
    *argc = kept;
    return found;
}

struct kp_oplog *cli_hold_stopped(const char *command, kp_store *st, const char *db)
{
    uint8_t id[16];
    kp_error e = {0};
    kp_oplog *log = NULL;
    kp_err err = st->ops->identity(st, id);
    if (err)
        kp_error_set(&e, err, "database", "cannot read the database's identity: %s",
                     st->last_error);
    else
        err = kp_oplog_open(db, id, &log, &e);
    if (err) {
        fprintf(stderr, "kopilka %s: %s; run it with the server stopped\n", command, e.message);
        return NULL;
    }
    return log;
}

int cmd_recover(int argc, char **argv)
{
    static const char *const opts[] = {NULL};
    bool accept = cli_take_flag(&argc, argv, "--accept-loss");
    bool salvage = cli_take_flag(&argc, argv, "--salvage");
    if (!cli_check_options(argc, argv, opts, "recover")) return 2;
    const char *db = cli_positional(argc, argv, 0);
    if (db == NULL) {
        fprintf(stderr, "kopilka recover: the database path is missing (see --help)\n");
        return 2;
    }
    if (salvage && !accept) {
        fprintf(stderr, "kopilka recover: --salvage goes with --accept-loss (see --help)\n");
        return 2;
    }
    if (!kp_store_is_file(db)) {
        fprintf(stderr, "kopilka recover: %s is not a file: this command recovers a SQLite "
                        "database's operation log; a database server recovers on its own when "
                        "it starts\n",
                db);
        return 2;
    }
    kp_error e = {0};
    int rc = 1;
    size_t listed = 0;
    kp_durable_lost_ctx lost = {.report = print_lost, .report_ctx = &listed};
    store_sqlite_recovery r = {.redo = kp_durable_redo};
    if (accept) {
        r.lost = kp_durable_lost;
        r.lost_ctx = &lost;
    }
    kp_err err = KP_OK;
    if ((r.redo_ctx = kp_durable_replay_new()) == NULL ||
        (salvage && (lost.salvage = kp_durable_replay_new()) == NULL))
        err = kp_error_set(&e, KP_ERR_NOMEM, "", "out of memory");
    else
        err = store_sqlite_recover(db, &r, &e);
    if (err) {
        if (r.explanation[0])
            fprintf(stderr, "kopilka recover: %s\n", r.explanation);
        else
            fprintf(stderr, "kopilka recover: %s%s%s\n", e.field, e.field[0] ? ": " : "",
                    e.message);
        goto out;
    }
    kp_oplog_damage damage = r.damage;
    size_t applied = r.redone + lost.salvaged, salvaged = lost.salvaged;
    if (accept && damage.first_lost) {
        unsigned long long span = damage.last_lost - damage.first_lost + 1;
        printf("%s: recovered %zu operations before the damage; of operations %llu to %llu "
               "after it, %llu cannot be read, %zu were salvaged and %zu are lost (listed "
               "above); the operation log is now empty\n",
               db, applied - salvaged, (unsigned long long)damage.first_lost,
               (unsigned long long)damage.last_lost, span - listed, salvaged,
               listed - salvaged);
    } else {
        printf("%s: recovered %zu operations; the operation log is whole, nothing lost\n", db,
               applied);
    }
    rc = 0;
out:
    kp_durable_replay_free(r.redo_ctx);
    kp_durable_replay_free(lost.salvage);
    return rc;
}
