/*
 * cmd_admin.c: the administrative commands: init, program load, terminal
 * add, cards issue, verify, and demo; plus the small argv helpers.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kopilka/clock.h>

#include "cli.h"
#include "crypto/pii.h"
#include "service/people.h"
#include "service/service.h"

extern const char kp_demo_program_json[];
extern const size_t kp_demo_program_json_len;

/* ---- argv helpers */

static bool is_value_option(const char *arg)
{
    return strncmp(arg, "--", 2) == 0 && strchr(arg, '=') == NULL;
}

const char *cli_option(int argc, char **argv, const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], name, n) != 0) continue;
        if (argv[i][n] == '=') return argv[i] + n + 1;
        if (argv[i][n] == '\0' && i + 1 < argc) return argv[i + 1];
    }
    return NULL;
}

const char *cli_positional(int argc, char **argv, int n)
{
    for (int i = 0; i < argc; i++) {
        if (is_value_option(argv[i])) {
            i++;
            continue;
        }
        if (strncmp(argv[i], "--", 2) == 0) continue;
        if (n-- == 0) return argv[i];
    }
    return NULL;
}

bool cli_check_options(int argc, char **argv, const char *const *allowed, const char *command)
{
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) != 0) continue;
        const char *eq = strchr(argv[i], '=');
        size_t n = eq ? (size_t)(eq - argv[i]) : strlen(argv[i]);
        bool ok = false;
        for (size_t k = 0; allowed[k] && !ok; k++)
            ok = strlen(allowed[k]) == n && strncmp(argv[i], allowed[k], n) == 0;
        if (!ok) {
            fprintf(stderr, "kopilka %s: unknown option %.*s (see --help)\n", command, (int)n,
                    argv[i]);
            return false;
        }
        if (!eq) {
            if (i + 1 >= argc) {
                fprintf(stderr, "kopilka %s: option %s needs a value\n", command, argv[i]);
                return false;
            }
            i++;
        }
    }
    return true;
}

bool cli_parse_listen(const char *text, char *host, unsigned long host_size, unsigned *port)
{
    const char *colon = strrchr(text, ':');
    if (colon == NULL || (size_t)(colon - text) >= host_size) return false;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    if (host[0] == '\0' || strcmp(host, "localhost") == 0) snprintf(host, host_size, "127.0.0.1");
    char *end;
    errno = 0;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || p > 65535) return false;
    *port = (unsigned)p;
    return true;
}

static int fail(const char *command, const kp_error *e)
{
    fprintf(stderr, "kopilka %s: %s%s%s\n", command, e->field, e->field[0] ? ": " : "",
            e->message);
    return 1;
}

static char *read_file(const char *path, size_t *len, kp_error *e)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        kp_error_set(e, KP_ERR_NOT_FOUND, "file", "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    kp_buf b;
    kp_buf_init(&b, 16 * 1024 * 1024);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) kp_buf_append(&b, chunk, n);
    fclose(f);
    if (b.failed) {
        kp_buf_release(&b);
        kp_error_set(e, KP_ERR_LIMIT, "file", "%s is over 16 MiB", path);
        return NULL;
    }
    *len = b.len;
    return kp_buf_steal(&b);
}

static kp_store *open_db(const char *command, const char *path, bool create)
{
    kp_error e = {0};
    kp_store *st = NULL;
    if (path == NULL) {
        fprintf(stderr, "kopilka %s: the database path is missing (see --help)\n", command);
        return NULL;
    }
    if (kp_service_open(path, create, &st, &e)) {
        fail(command, &e);
        return NULL;
    }
    return st;
}

/* Runs fn inside one transaction; commits on success. */
static kp_err in_transaction(kp_store *st, kp_err err_of_fn)
{
    if (err_of_fn) {
        st->ops->rollback(st);
        return err_of_fn;
    }
    return st->ops->commit(st);
}

static kp_err load_program_text(kp_store *st, const char *json, size_t len, int64_t *version,
                                kp_error *e)
{
    kp_err err = st->ops->begin(st);
    if (err) return kp_error_set(e, err, "database", "%s", st->last_error);
    err = in_transaction(st, kp_service_program_load(st, json, len, version, e));
    if (err && e->message[0] == '\0') kp_error_set(e, err, "database", "%s", st->last_error);
    return err;
}

/* ---- init, program load */

/* Creates the personal-data key file DB.key (mode 0600) beside a new
 * database; one left from an earlier database of that name is kept, as it
 * may be the only way to read a backup. */
static bool create_key_file(const char *db, kp_error *e)
{
    char path[4096];
    if (!kp_pii_key_path(db, path, sizeof path)) {
        kp_error_set(e, KP_ERR_INVALID, "database", "the database path is too long");
        return false;
    }
    kp_err err = kp_pii_create(path, e);
    if (err == KP_ERR_CONFLICT) {
        fprintf(stderr, "kopilka: note: keeping the existing key file %s\n", path);
        return true;
    }
    return err == KP_OK;
}

int cmd_init(int argc, char **argv)
{
    static const char *const opts[] = {"--program", NULL};
    if (!cli_check_options(argc, argv, opts, "init")) return 2;
    const char *db = cli_positional(argc, argv, 0);
    const char *program = cli_option(argc, argv, "--program");
    if (db == NULL || program == NULL) {
        fprintf(stderr, "usage: kopilka init DB --program FILE\n");
        return 2;
    }
    if (access(db, F_OK) == 0) {
        fprintf(stderr, "kopilka init: %s already exists; use `kopilka program load` to change "
                        "its program\n", db);
        return 1;
    }
    kp_error e = {0};
    size_t len;
    char *json = read_file(program, &len, &e);
    if (json == NULL) return fail("init", &e);
    kp_program *p = malloc(sizeof *p);
    kp_err err = p ? kp_program_parse(json, len, p, &e) : KP_ERR_NOMEM;
    free(p);
    if (err) {
        free(json);
        return fail("init", &e);
    }
    kp_store *st = open_db("init", db, true);
    if (st == NULL) {
        free(json);
        return 1;
    }
    int64_t version = 0;
    err = load_program_text(st, json, len, &version, &e);
    free(json);
    kp_store_close(st);
    if (err) return fail("init", &e);
    if (!create_key_file(db, &e)) return fail("init", &e);
    printf("created %s with program version %lld\n", db, (long long)version);
    return 0;
}

int cmd_program_load(int argc, char **argv)
{
    static const char *const opts[] = {NULL};
    if (!cli_check_options(argc, argv, opts, "program load")) return 2;
    const char *db = cli_positional(argc, argv, 0);
    const char *file = cli_positional(argc, argv, 1);
    if (db == NULL || file == NULL) {
        fprintf(stderr, "usage: kopilka program load DB FILE\n");
        return 2;
    }
    kp_error e = {0};
    size_t len;
    char *json = read_file(file, &len, &e);
    if (json == NULL) return fail("program load", &e);
    kp_store *st = open_db("program load", db, false);
    if (st == NULL) {
        free(json);
        return 1;
    }
    int64_t version = 0;
    kp_err err = load_program_text(st, json, len, &version, &e);
    free(json);
    kp_store_close(st);
    if (err) return fail("program load", &e);
    printf("program version %lld\n", (long long)version);
    return 0;
}

/* ---- terminals, cards */

int cmd_terminal_add(int argc, char **argv)
{
    static const char *const opts[] = {"--store", NULL};
    if (!cli_check_options(argc, argv, opts, "terminal add")) return 2;
    const char *db = cli_positional(argc, argv, 0);
    const char *store = cli_option(argc, argv, "--store");
    if (db == NULL || store == NULL) {
        fprintf(stderr, "usage: kopilka terminal add DB --store NAME\n");
        return 2;
    }
    kp_store *st = open_db("terminal add", db, false);
    if (st == NULL) return 1;
    kp_error e = {0};
    char key[65];
    kp_err err = st->ops->begin(st);
    if (err == KP_OK) err = in_transaction(st, kp_service_terminal_add(st, store, key, &e));
    if (err && e.message[0] == '\0') kp_error_set(&e, err, "database", "%s", st->last_error);
    kp_store_close(st);
    if (err) return fail("terminal add", &e);
    printf("%s\n", key);
    return 0;
}

int cmd_cards_issue(int argc, char **argv)
{
    static const char *const opts[] = {"--count", "--batch", NULL};
    if (!cli_check_options(argc, argv, opts, "cards issue")) return 2;
    const char *db = cli_positional(argc, argv, 0);
    const char *count_text = cli_option(argc, argv, "--count");
    const char *batch = cli_option(argc, argv, "--batch");
    char *end = NULL;
    long long count = count_text ? strtoll(count_text, &end, 10) : 0;
    if (db == NULL || count_text == NULL || *end != '\0') {
        fprintf(stderr, "usage: kopilka cards issue DB --count N [--batch NAME]\n");
        return 2;
    }
    return cli_cards_issue_batch(db, count, batch);
}

/* ---- verify */

static void print_problem(void *ctx, const char *line)
{
    (void)ctx;
    printf("FAIL %s\n", line);
}

int cmd_verify(int argc, char **argv)
{
    static const char *const opts[] = {NULL};
    if (!cli_check_options(argc, argv, opts, "verify")) return 2;
    const char *db = cli_positional(argc, argv, 0);
    kp_store *st = open_db("verify", db, false);
    if (st == NULL) return 2;
    int64_t problems = 0;
    kp_err err = st->ops->verify(st, print_problem, NULL, &problems);
    if (err) {
        fprintf(stderr, "kopilka verify: cannot check %s: %s\n", db, st->last_error);
        kp_store_close(st);
        return 2;
    }
    /* The audit log's MACs, with the key file when there is one. */
    char key_path[4096], macs[160] = "its MACs not checked: no key file";
    kp_pii *pii = NULL;
    kp_error ke = {0};
    if (kp_pii_key_path(db, key_path, sizeof key_path) && access(key_path, F_OK) == 0) {
        if (kp_pii_load(key_path, &pii, &ke) != KP_OK) {
            fprintf(stderr, "kopilka verify: %s\n", ke.message);
            kp_store_close(st);
            return 2;
        }
        int64_t checked = 0, without = 0;
        err = kp_audit_check_macs(st, pii, print_problem, NULL, &problems, &checked, &without);
        kp_pii_free(pii);
        if (err) {
            fprintf(stderr, "kopilka verify: cannot check the audit log of %s: %s\n", db,
                    st->last_error);
            kp_store_close(st);
            return 2;
        }
        snprintf(macs, sizeof macs, "audit entries with a MAC of the key file: %lld%s",
                 (long long)checked, without ? ", older ones without MACs" : "");
    }
    kp_store_close(st);
    if (problems) {
        printf("%s: %lld problem(s) found\n", db, (long long)problems);
        return 1;
    }
    printf("%s: ok (postings balanced, balances replay, lots within bounds, audit chain "
           "intact, %s)\n", db, macs);
    return 0;
}

/* ---- demo */

static void collect_number(void *ctx, const char *number)
{
    char (*cards)[KP_STR_MAX] = ctx;
    for (int i = 0; i < 5; i++)
        if (cards[i][0] == '\0') {
            snprintf(cards[i], KP_STR_MAX, "%s", number);
            return;
        }
}

int cmd_demo(int argc, char **argv)
{
    static const char *const opts[] = {"--db", "--listen", NULL};
    if (!cli_check_options(argc, argv, opts, "demo")) return 2;
    const char *db = cli_option(argc, argv, "--db");
    const char *listen = cli_option(argc, argv, "--listen");
    if (db == NULL) db = "kopilka-demo.db";
    if (listen == NULL) listen = "127.0.0.1:8080";
    bool fresh = access(db, F_OK) != 0;
    kp_store *st = open_db("demo", db, fresh);
    if (st == NULL) return 1;
    kp_error e = {0};
    char key[65];
    char cards[5][KP_STR_MAX] = {{0}};
    int64_t version = 0;
    kp_err err = KP_OK;
    if (fresh)
        err = load_program_text(st, kp_demo_program_json, kp_demo_program_json_len, &version, &e);
    if (err == KP_OK && fresh && !create_key_file(db, &e)) err = e.code;
    if (err == KP_OK && (err = st->ops->begin(st)) == KP_OK) {
        err = kp_service_terminal_add(st, "demo-store", key, &e);
        if (err == KP_OK)
            err = kp_service_cards_issue(st, 5, kp_clock_now(NULL), collect_number, cards, &e);
        err = in_transaction(st, err);
    }
    if (err && e.message[0] == '\0') kp_error_set(&e, err, "database", "%s", st->last_error);
    kp_store_close(st);
    if (err) return fail("demo", &e);

    char host[64];
    unsigned port;
    if (!cli_parse_listen(listen, host, sizeof host, &port)) {
        fprintf(stderr, "kopilka demo: --listen must be HOST:PORT, got %s\n", listen);
        return 2;
    }
    printf("Kopilka demo\n  database:  %s%s\n  program:   seed 004 case 1 (4%% of labour, 12%% of "
           "parts, points pay <= 10%% of labour, first visit >= 1000 points)\n"
           "  terminal key (store demo-store): %s\n  cards:",
           db, fresh ? " (new)" : " (reused)", key);
    for (int i = 0; i < 5; i++) printf(" %s", cards[i]);
    printf("\n\nTry a purchase:\n  curl -s http://%s:%u/v1/purchases -H 'Authorization: Bearer %s' "
           "-d '{\"card\":\"%s\",\"receipt\":\"R-1\",\"lines\":[{\"sku\":\"oil change\","
           "\"category\":\"labor\",\"amount\":500000},{\"sku\":\"filter\",\"category\":\"parts\","
           "\"amount\":200000}]}'\n  curl -s http://%s:%u/v1/cards/%s -H 'Authorization: Bearer "
           "%s'\n\n",
           host, port, key, cards[0], host, port, cards[0], key);
    fflush(stdout);
    char *serve_argv[] = {(char *)db, (char *)"--listen", (char *)listen};
    return cmd_serve(3, serve_argv);
}
