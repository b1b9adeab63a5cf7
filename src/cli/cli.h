/* cli.h: the command-line commands of `kopilka`, shared by main.c. */
#ifndef KOPILKA_CLI_H
#define KOPILKA_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "service/people.h"

typedef struct kp_command {
    const char *name;    /* "init", "program load", ... */
    const char *usage;   /* one line */
    const char *help;    /* a paragraph */
    int (*run)(int argc, char **argv); /* argv[0] is the first argument after the name */
} kp_command;

int cmd_init(int argc, char **argv);
/* cmd_programs.c */
int cmd_program_load(int argc, char **argv);
int cmd_program_list(int argc, char **argv);
int cmd_program_cancel(int argc, char **argv);
int cmd_terminal_add(int argc, char **argv);
int cmd_terminal_list(int argc, char **argv);
int cmd_terminal_revoke(int argc, char **argv);
int cmd_terminal_rotate(int argc, char **argv);
int cmd_cards_issue(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_lots_merge(int argc, char **argv);
int cmd_serve(int argc, char **argv);
/* cmd_deliver.c */
int cmd_deliver(int argc, char **argv);
int cmd_demo(int argc, char **argv);
/* cmd_backup.c */
int cmd_backup(int argc, char **argv);
/* cmd_rules.c */
int cmd_tick(int argc, char **argv);
int cmd_event(int argc, char **argv);
int cmd_discount_set(int argc, char **argv);
int cmd_discount_clear(int argc, char **argv);
int cmd_jobs(int argc, char **argv);
int cmd_birthday_set(int argc, char **argv);

/* cmd_history.c */
int cmd_history_generate(int argc, char **argv);

/* cmd_migrate.c */
int cmd_migrate(int argc, char **argv);

/* cmd_marketing.c */
int cmd_segment_count(int argc, char **argv);
int cmd_campaign_list(int argc, char **argv);
int cmd_campaign_show(int argc, char **argv);
int cmd_campaign_results(int argc, char **argv);
/* cmd_simulate.c */
int cmd_simulate(int argc, char **argv);

/* cmd_catalog.c */
int cmd_catalog_list(int argc, char **argv);
int cmd_catalog_orders(int argc, char **argv);
int cmd_catalog_order_state(int argc, char **argv);

/* cmd_draw.c */
int cmd_draw_create(int argc, char **argv);
int cmd_draw_close(int argc, char **argv);
int cmd_draw_show(int argc, char **argv);
int cmd_draw_list(int argc, char **argv);
int cmd_draw_verify(int argc, char **argv);
/* cmd_settlement.c */
int cmd_settlement_periods(int argc, char **argv);
int cmd_settlement_show(int argc, char **argv);
int cmd_settlement_close(int argc, char **argv);
int cmd_settlement_statement(int argc, char **argv);

/* cmd_recover.c */
int cmd_recover(int argc, char **argv);
/* Removes every `name` (an option without a value, "--accept-loss") from
 * argv, shortening *argc; true when there was one. */
bool cli_take_flag(int *argc, char **argv, const char *name);
/* For a command that must run with the server stopped (lots merge, phones
 * migrate): takes the operation log's lock of db, as a server holds it
 * while it serves. NULL after printing why (a running server); the caller
 * closes the log (kp_oplog_close) when done. */
struct kp_oplog *cli_hold_stopped(const char *command, kp_store *st, const char *db);
/* The same for any location (cmd_admin.c): a SQLite file's operation log
 * lock in *held (the caller closes it), or for PostgreSQL the exclusive
 * serving lock, held by st's connection until it closes (*held NULL).
 * False after printing why (a server is running). */
bool cli_stop_servers(const char *command, kp_store *st, const char *db, struct kp_oplog **held);

/* cmd_people.c */
int cmd_staff_add(int argc, char **argv);
int cmd_cards_export(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_phones_migrate(int argc, char **argv);

/* ---- audited commands (cmd_people.c): every manual change from the
 * command line runs through a kp_office whose actor is the operating-system
 * user, and leaves an audit entry in the transaction of the change. */

/* The store, the key (when the database has one), the program and the
 * scratch of one command. */
typedef struct cli_office {
    kp_store *st;
    kp_pii *pii;
    kp_program *program; /* the latest version; office.program is NULL without one */
    kp_scratch *sc;
    kp_office office;
} cli_office;

/* Opens db with its key file (required when need_key; else loaded when it
 * is there) as actor "cli:USER". False after printing why. */
bool cli_office_open(cli_office *c, const char *command, const char *db, bool need_key);
/* cli_office_open(c, command, db, false) with the office's clock at --now
 * TIME of argv when given (tests). 0, or the exit status after printing
 * why (1: cannot open, 2: a bad --now). */
int cli_office_open_at(cli_office *c, const char *command, const char *db, int argc, char **argv);
void cli_office_close(cli_office *c);
/* Commits when err is KP_OK (a failed commit sets e), rolls back otherwise. */
kp_err cli_office_finish(cli_office *c, kp_err err, kp_error *e);
/* "cli:" and the operating-system user of the effective uid. */
void cli_actor_name(char *out, size_t size);
/* Loads a program file as a new version for c's actor, in a transaction of
 * its own (activates_at 0: at once), audited with the file's name; every
 * error of the file is printed on stderr. 0, or 1 after printing. */
int cli_program_load(cli_office *c, const char *command, const char *json, size_t len,
                     const char *file, kp_time activates_at, int64_t *version);
/* t as RFC 3339 into out, or "-" for 0 (never). */
void cli_time_or_dash(kp_time t, char out[32]);
/* The whole file at path (malloc'd, NUL-terminated, its length in *len; at
 * most 16 MiB); NULL with e set. */
char *cli_read_file(const char *path, size_t *len, kp_error *e);
/* Makes sure db has its key file: true when it is there or was just made
 * (with a note on stderr). Never makes one for a database that holds
 * values sealed with a key (kp_people_ops.sealed_count): it refuses and
 * says how to restore the key. */
bool cli_key_ensure(const char *command, const char *db);

/* `kopilka cards issue DB --count N [--batch NAME]`: issues cards (a named
 * batch when batch is not NULL) in chunks, printing the numbers of each
 * committed chunk on stdout and the progress on stderr. */
int cli_cards_issue_batch(const char *db, long long count, const char *batch);

/* progress.c: the progress line of a long job on stderr (a terminal: one
 * line rewritten in place; otherwise a plain line every 5 s), and a last
 * line with the count, time and rate. */
typedef struct cli_progress {
    const char *what; /* "cards issue" */
    const char *unit; /* "cards" */
    int64_t total;
    bool tty;
    bool shown;
    uint64_t start_ns, last_ns;
    char note[96]; /* added to the last line when not empty */
} cli_progress;
void cli_progress_start(cli_progress *p, const char *what, const char *unit, int64_t total);
/* Prints `done` of the total when the last print is old enough. */
void cli_progress_update(cli_progress *p, int64_t done);
/* The last line: "WHAT: N UNIT in S s (R/s)", or how far a failed job got. */
void cli_progress_end(cli_progress *p, int64_t done, bool ok);

/* Returns the value of `--name VALUE` (or `--name=VALUE`) in argv, or NULL. */
const char *cli_option(int argc, char **argv, const char *name);
/* Returns the n-th argument that is not an option or an option's value. */
const char *cli_positional(int argc, char **argv, int n);
/* Fails with a message when argv holds an option not in `allowed` (NULL-terminated). */
bool cli_check_options(int argc, char **argv, const char *const *allowed, const char *command);

/* Parses "HOST:PORT". */
bool cli_parse_listen(const char *text, char *host, unsigned long host_size, unsigned *port);

#endif
