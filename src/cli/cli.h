/* cli.h: the command-line commands of `kopilka`, shared by main.c. */
#ifndef KOPILKA_CLI_H
#define KOPILKA_CLI_H

#include <stdbool.h>

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
int cmd_phones_migrate(int argc, char **argv);
/* `kopilka cards issue DB --count N --batch NAME`: issues a named batch. */
int cli_cards_issue_batch(const char *db, long long count, const char *batch);

/* Returns the value of `--name VALUE` (or `--name=VALUE`) in argv, or NULL. */
const char *cli_option(int argc, char **argv, const char *name);
/* Returns the n-th argument that is not an option or an option's value. */
const char *cli_positional(int argc, char **argv, int n);
/* Fails with a message when argv holds an option not in `allowed` (NULL-terminated). */
bool cli_check_options(int argc, char **argv, const char *const *allowed, const char *command);

/* Parses "HOST:PORT". */
bool cli_parse_listen(const char *text, char *host, unsigned long host_size, unsigned *port);

#endif
