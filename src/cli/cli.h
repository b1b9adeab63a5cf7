/* cli.h: the command-line commands of `kopilka`, shared by main.c. */
#ifndef KOPILKA_CLI_H
#define KOPILKA_CLI_H

#include <stdbool.h>
#include <stdint.h>

typedef struct kp_command {
    const char *name;    /* "init", "program load", ... */
    const char *usage;   /* one line */
    const char *help;    /* a paragraph */
    int (*run)(int argc, char **argv); /* argv[0] is the first argument after the name */
} kp_command;

int cmd_init(int argc, char **argv);
int cmd_program_load(int argc, char **argv);
int cmd_terminal_add(int argc, char **argv);
int cmd_cards_issue(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_demo(int argc, char **argv);
/* cmd_rules.c */
int cmd_tick(int argc, char **argv);
int cmd_event(int argc, char **argv);
int cmd_discount_set(int argc, char **argv);
int cmd_discount_clear(int argc, char **argv);
int cmd_jobs(int argc, char **argv);
int cmd_birthday_set(int argc, char **argv);

/* cmd_people.c */
int cmd_staff_add(int argc, char **argv);
int cmd_cards_export(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_export(int argc, char **argv);
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
