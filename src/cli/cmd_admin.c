/*
 * cmd_admin.c: the administrative commands: init, terminal
 * add|list|revoke|rotate, cards issue, verify, and demo; plus the small argv
 * helpers and reading a file. Terminal changes are audited (cli.h); the
 * program commands are cmd_programs.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <kopilka/clock.h>
#include <sodium.h>

#include <kopilka/oplog.h>

#include "cli.h"
#include "crypto/pii.h"
#include "service/people.h"
#include "service/settlement.h"
#include "service/service.h"
#include "store/store_invariants.h"
#include "store/store_pg.h"

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

char *cli_read_file(const char *path, size_t *len, kp_error *e)
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

/* ---- init */

/* Creates the personal-data key file DB.key (mode 0600) beside a new
 * database; one left from an earlier database of that name is kept, as it
 * may be the only way to read a backup. */
static bool create_key_file(const char *db, kp_error *e)
{
    char path[4096];
    if (kp_pii_key_locate(db, path, sizeof path, e)) return false;
    kp_err err = kp_pii_create(path, e);
    if (err == KP_ERR_CONFLICT) {
        fprintf(stderr, "kopilka: note: keeping the existing key file %s\n", path);
        return true;
    }
    return err == KP_OK;
}

/* True when db names no database yet: no file, or a PostgreSQL database
 * without Kopilka's schema. False after saying why not (it exists), or
 * with e set when it could not be told. */
static bool database_absent(const char *command, const char *db, kp_error *e)
{
    if (!store_pg_location(db)) {
        if (access(db, F_OK) != 0) return true;
    } else {
        kp_store *st = NULL;
        kp_err err = kp_store_open(db, false, &st, e);
        if (err == KP_ERR_NOT_FOUND) {
            kp_error_clear(e);
            return true;
        }
        kp_store_close(st);
        if (err) return false;
    }
    fprintf(stderr, "kopilka %s: %s already holds a Kopilka database; use `kopilka program "
                    "load` to change its program\n", command, db);
    return false;
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
    kp_error e = {0};
    if (!database_absent("init", db, &e)) return e.message[0] ? fail("init", &e) : 1;
    size_t len;
    char *json = cli_read_file(program, &len, &e);
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
    kp_store_close(st);
    /* The key first, so that the first audit entry has its MAC. */
    cli_office c;
    if (!create_key_file(db, &e) || !cli_office_open(&c, "init", db, true)) {
        free(json);
        return e.message[0] ? fail("init", &e) : 1;
    }
    int64_t version = 0;
    int rc = cli_program_load(&c, "init", json, len, program, 0, &version);
    free(json);
    cli_office_close(&c);
    if (rc) return rc;
    printf("created %s with program version %lld\n", db, (long long)version);
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
    cli_office c;
    if (!cli_office_open(&c, "terminal add", db, false)) return 1;
    kp_error e = {0};
    char key[65];
    kp_terminal t;
    kp_err err = c.st->ops->begin(c.st);
    if (err == KP_OK)
        err = cli_office_finish(&c, kp_terminal_add(&c.office, store, key, &t, &e), &e);
    if (err && e.message[0] == '\0') kp_error_set(&e, err, "database", "%s", c.st->last_error);
    cli_office_close(&c);
    if (err) return fail("terminal add", &e);
    printf("%s\n", key);
    sodium_memzero(key, sizeof key);
    return 0;
}

void cli_time_or_dash(kp_time t, char out[32])
{
    if (t == 0)
        snprintf(out, 32, "-");
    else
        kp_time_format(t, out, 32);
}

int cmd_terminal_list(int argc, char **argv)
{
    static const char *const opts[] = {NULL};
    if (!cli_check_options(argc, argv, opts, "terminal list")) return 2;
    const char *db = cli_positional(argc, argv, 0);
    if (db == NULL) {
        fprintf(stderr, "usage: kopilka terminal list DB\n");
        return 2;
    }
    cli_office c;
    if (!cli_office_open(&c, "terminal list", db, false)) return 1;
    kp_error e = {0};
    kp_terminal *page = calloc(KP_TERMINALS_PAGE_MAX, sizeof *page);
    kp_err err = page ? KP_OK : kp_error_set(&e, KP_ERR_NOMEM, "", "out of memory");
    if (err == KP_OK) printf("id\tstore\tstate\tcreated\trotated\tlast used\trevoked\n");
    int64_t after = 0;
    for (size_t n = KP_TERMINALS_PAGE_MAX; err == KP_OK && n == KP_TERMINALS_PAGE_MAX;) {
        err = kp_terminal_list(&c.office, after, page, KP_TERMINALS_PAGE_MAX, &n, &e);
        for (size_t i = 0; err == KP_OK && i < n; i++) {
            const kp_terminal *t = &page[i];
            char created[32], rotated[32], used[32], revoked[32];
            cli_time_or_dash(t->created_at, created);
            cli_time_or_dash(t->rotated_at, rotated);
            cli_time_or_dash(t->last_used_at, used);
            cli_time_or_dash(t->revoked_at, revoked);
            printf("%lld\t%s\t%s\t%s\t%s\t%s\t%s\n", (long long)t->id, t->store,
                   t->revoked_at ? "revoked" : "active", created, rotated, used, revoked);
            after = t->id;
        }
    }
    free(page);
    cli_office_close(&c);
    return err ? fail("terminal list", &e) : 0;
}

/* terminal revoke / rotate DB --id N */
static int terminal_change(int argc, char **argv, bool rotate)
{
    const char *command = rotate ? "terminal rotate" : "terminal revoke";
    static const char *const opts[] = {"--id", NULL};
    if (!cli_check_options(argc, argv, opts, command)) return 2;
    const char *db = cli_positional(argc, argv, 0);
    const char *id_text = cli_option(argc, argv, "--id");
    char *end = NULL;
    long long id = id_text ? strtoll(id_text, &end, 10) : 0;
    if (db == NULL || id_text == NULL) {
        fprintf(stderr, "usage: kopilka %s DB --id N\n", command);
        return 2;
    }
    if (*end != '\0' || id <= 0) {
        fprintf(stderr, "kopilka %s: --id must be a terminal id (a positive integer, see "
                        "`kopilka terminal list`), got %s\n", command, id_text);
        return 2;
    }
    cli_office c;
    if (!cli_office_open(&c, command, db, false)) return 1;
    kp_error e = {0};
    char key[65] = "";
    kp_terminal t;
    kp_err err = c.st->ops->begin(c.st);
    if (err == KP_OK)
        err = cli_office_finish(&c, rotate ? kp_terminal_rotate(&c.office, id, key, &t, &e)
                                           : kp_terminal_revoke(&c.office, id, &t, &e), &e);
    if (err && e.message[0] == '\0') kp_error_set(&e, err, "database", "%s", c.st->last_error);
    cli_office_close(&c);
    if (err) return fail(command, &e);
    if (rotate) {
        printf("%s\n", key);
        fprintf(stderr, "kopilka terminal rotate: terminal %lld (store %s) has a new key; the "
                        "old one is refused from now on, also by a running server\n",
                id, t.store);
    } else {
        printf("terminal %lld (store %s) revoked: its key is refused from now on, also by a "
               "running server\n", id, t.store);
    }
    sodium_memzero(key, sizeof key);
    return 0;
}

int cmd_terminal_revoke(int argc, char **argv)
{
    return terminal_change(argc, argv, false);
}

int cmd_terminal_rotate(int argc, char **argv)
{
    return terminal_change(argc, argv, true);
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

/* The file check's lines, held until its count says whether they are
 * problems ("FAIL") or a note with none (PostgreSQL without amcheck says
 * what it could not check). */
typedef struct held_lines {
    char *lines[STORE_INVARIANT_LINES_MAX];
    size_t n;
} held_lines;

static void hold_line(void *ctx, const char *line)
{
    held_lines *h = ctx;
    if (h->n < STORE_INVARIANT_LINES_MAX && (h->lines[h->n] = strdup(line)) != NULL) h->n++;
}

static void print_held(held_lines *h, bool problems)
{
    for (size_t i = 0; i < h->n; i++) {
        printf("%s %s\n", problems ? "FAIL" : "note:", h->lines[i]);
        free(h->lines[i]);
    }
    h->n = 0;
}

int cmd_verify(int argc, char **argv)
{
    static const char *const opts[] = {NULL};
    bool full = cli_take_flag(&argc, argv, "--full");
    if (!cli_check_options(argc, argv, opts, "verify")) return 2;
    const char *db = cli_positional(argc, argv, 0);
    if (db == NULL) {
        open_db("verify", db, false); /* says the path is missing */
        return 2;
    }
    kp_store *st = NULL;
    kp_error oe = {0};
    if (kp_service_open(db, false, &st, &oe)) {
        /* A file too damaged to open is a finding of the check, not a
         * failure to run it. */
        if (strncmp(oe.message, "the database file is damaged", 28) == 0) {
            printf("FAIL %s\n", oe.message);
            return 1;
        }
        fail("verify", &oe);
        return 2;
    }
    int64_t problems = 0;
    /* --full: SQLite's integrity_check first (indexes against tables too). */
    held_lines held = {0};
    kp_err err = full ? st->ops->integrity(st, true, hold_line, &held, &problems) : KP_OK;
    print_held(&held, problems > 0);
    if (err == KP_OK && problems == 0) err = st->ops->verify(st, print_problem, NULL, &problems);
    /* Closed settlement periods against their entries (docs/coalition.md). */
    if (err == KP_OK) err = kp_settlement_verify(st, print_problem, NULL, &problems);
    if (err) {
        fprintf(stderr, "kopilka verify: cannot check %s: %s\n", db, st->last_error);
        kp_store_close(st);
        return 2;
    }
    /* The audit log's MACs, with the key file when there is one. */
    char key_path[4096], macs[160] = "its MACs not checked: no key file";
    kp_pii *pii = NULL;
    kp_error ke = {0};
    kp_err located = kp_pii_key_locate(db, key_path, sizeof key_path, &ke);
    if (located == KP_ERR_NOT_FOUND && store_pg_location(db))
        snprintf(macs, sizeof macs, "its MACs not checked: KOPILKA_KEY_FILE is not set");
    if (located == KP_OK && access(key_path, F_OK) == 0) {
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

/* ---- lots merge */

bool cli_stop_servers(const char *command, kp_store *st, const char *db, struct kp_oplog **held)
{
    *held = NULL;
    if (!store_pg_location(db)) return (*held = cli_hold_stopped(command, st, db)) != NULL;
    kp_error e = {0};
    if (store_pg_hold_stopped(st, command, &e) == KP_OK) return true;
    fprintf(stderr, "kopilka %s: %s\n", command, e.message);
    return false;
}

static void print_merged(void *ctx, int64_t account_id, size_t before, size_t after)
{
    int *accounts = ctx;
    (*accounts)++;
    printf("account %lld: %zu open lots, %zu after merging%s\n", (long long)account_id, before,
           after,
           after > (size_t)KP_LOTS_MAX ? " (still over the limit: lots of too many "
                                         "kinds or pending states to merge)"
                                       : "");
}

int cmd_lots_merge(int argc, char **argv)
{
    static const char *const opts[] = {"--now", NULL};
    if (!cli_check_options(argc, argv, opts, "lots merge")) return 2;
    const char *db = cli_positional(argc, argv, 0);
    const char *now_text = cli_option(argc, argv, "--now");
    kp_time now = kp_clock_now(&(kp_clock){0});
    if (now_text && !kp_time_parse(now_text, &now)) {
        fprintf(stderr, "kopilka lots merge: --now must be an RFC 3339 time, got %s\n", now_text);
        return 2;
    }
    kp_store *st = open_db("lots merge", db, false);
    if (st == NULL) return 2;
    struct kp_oplog *held = NULL;
    if (!cli_stop_servers("lots merge", st, db, &held)) {
        kp_store_close(st);
        return 1;
    }
    int accounts = 0;
    kp_err err = st->ops->begin(st);
    if (err == KP_OK)
        err =
            in_transaction(st, st->ops->lots_merge(st, KP_LOTS_MAX, now, print_merged, &accounts));
    if (err) {
        fprintf(stderr, "kopilka lots merge: %s: %s; nothing was changed\n", db, st->last_error);
        kp_oplog_close(held);
        kp_store_close(st);
        return 1;
    }
    kp_oplog_close(held);
    kp_store_close(st);
    printf("%s: %d account(s) had more than %d open lots\n", db, accounts, KP_LOTS_MAX);
    return 0;
}

/* ---- demo
 *
 * The demo keeps its terminal key and its five cards in DEMO.db.demo (mode
 * 0600, one key line then one card a line) beside the database: only a hash
 * of a key is stored in the database, so this file is the only way a second
 * run can print a curl command that works. A second run reuses the
 * database, the terminal and the cards from that file, and prints a curl
 * with a receipt number of its own (the time), so the command works again
 * instead of replaying the first answer. Without the file (a database from
 * an older demo, or the file removed) the demo adds one terminal and five
 * cards, once, and writes the file. */

enum { DEMO_CARDS = 5 };

typedef struct demo_state {
    char key[65];
    char cards[DEMO_CARDS][KP_STR_MAX];
} demo_state;

static void collect_number(void *ctx, const char *number)
{
    demo_state *d = ctx;
    for (int i = 0; i < DEMO_CARDS; i++)
        if (d->cards[i][0] == '\0') {
            snprintf(d->cards[i], KP_STR_MAX, "%s", number);
            return;
        }
}

static bool demo_file_path(const char *db, char *path, size_t size)
{
    return (size_t)snprintf(path, size, "%s.demo", db) < size;
}

/* Reads the demo's key and cards; false when the file is missing or not
 * whole (then the demo makes new ones). */
static bool demo_state_load(const char *path, demo_state *d)
{
    memset(d, 0, sizeof *d);
    FILE *f = fopen(path, "r");
    if (f == NULL) return false;
    char line[128];
    int n = 0;
    while (n <= DEMO_CARDS && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0') continue;
        size_t len = strlen(line);
        if (len >= (n == 0 ? sizeof d->key : (size_t)KP_STR_MAX)) break; /* not ours */
        memcpy(n == 0 ? d->key : d->cards[n - 1], line, len + 1);
        n++;
    }
    fclose(f);
    return n == DEMO_CARDS + 1 && strlen(d->key) > 0;
}

/* Opens path for writing, readable by its owner only; NULL with e set. */
static FILE *demo_file_create(const char *path, kp_error *e)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (f == NULL) {
        if (fd >= 0) close(fd);
        kp_error_set(e, KP_ERR_IO, "demo", "cannot write %s: %s", path, strerror(errno));
        return NULL;
    }
    fchmod(fd, 0600);
    return f;
}

/* Closes a file of demo_file_create(); false with e set when the writes
 * failed. */
static bool demo_file_close(FILE *f, const char *path, kp_error *e)
{
    if (fclose(f) != 0) {
        kp_error_set(e, KP_ERR_IO, "demo", "cannot write %s: %s", path, strerror(errno));
        return false;
    }
    return true;
}

/* Writes the demo's key and cards to path, readable by its owner only. */
static bool demo_state_save(const char *path, const demo_state *d, kp_error *e)
{
    FILE *f = demo_file_create(path, e);
    if (f == NULL) return false;
    fprintf(f, "%s\n", d->key);
    for (int i = 0; i < DEMO_CARDS; i++) fprintf(f, "%s\n", d->cards[i]);
    return demo_file_close(f, path, e);
}

/* The demo's staff, for the pages: an admin (the back office) and a
 * cashier (the till), with random passwords kept in DEMO.db.demo-staff
 * (mode 0600, "login password" a line) so every run can print them. Made
 * once; a database whose file is gone keeps its accounts and gets no new
 * ones (the passwords cannot be shown again: only their hashes are kept). */
static const char *const demo_staff[][2] = {{"admin", "admin"}, {"cashier", "cashier"}};
enum { DEMO_STAFF = 2 };

static bool demo_staff_load(const char *path, char passwords[DEMO_STAFF][32])
{
    FILE *f = fopen(path, "r");
    if (f == NULL) return false;
    char line[96];
    int n = 0;
    while (n < DEMO_STAFF && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        size_t login = strlen(demo_staff[n][0]);
        if (strncmp(line, demo_staff[n][0], login) != 0 || line[login] != ' ' ||
            strlen(line + login + 1) >= 32)
            break;
        memcpy(passwords[n], line + login + 1, strlen(line + login + 1) + 1);
        n++;
    }
    fclose(f);
    return n == DEMO_STAFF;
}

static bool demo_staff_make(const char *db, const char *path, char passwords[DEMO_STAFF][32],
                            kp_error *e)
{
    cli_office c;
    if (!cli_office_open(&c, "demo", db, false)) {
        kp_error_set(e, KP_ERR_IO, "demo", "cannot open %s to add the demo's staff", db);
        return false;
    }
    kp_err err = c.st->ops->begin(c.st);
    for (int i = 0; i < DEMO_STAFF && err == KP_OK; i++) {
        unsigned char raw[12];
        randombytes_buf(raw, sizeof raw);
        sodium_bin2base64(passwords[i], 32, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        int64_t id = 0;
        err = kp_staff_add(&c.office, demo_staff[i][0], demo_staff[i][1], NULL, passwords[i], &id,
                           e);
    }
    if (err == KP_OK) {
        err = c.st->ops->commit(c.st);
        if (err) kp_error_set(e, err, "database", "%s", c.st->last_error);
    } else {
        c.st->ops->rollback(c.st);
    }
    cli_office_close(&c);
    if (err) return false;
    FILE *f = demo_file_create(path, e);
    if (f == NULL) return false;
    for (int i = 0; i < DEMO_STAFF; i++) fprintf(f, "%s %s\n", demo_staff[i][0], passwords[i]);
    return demo_file_close(f, path, e);
}

int cmd_demo(int argc, char **argv)
{
    static const char *const opts[] = {"--db", "--listen", NULL};
    if (!cli_check_options(argc, argv, opts, "demo")) return 2;
    const char *db = cli_option(argc, argv, "--db");
    const char *listen = cli_option(argc, argv, "--listen");
    if (db == NULL) db = "kopilka-demo.db";
    if (listen == NULL) listen = "127.0.0.1:8080";
    char host[64];
    unsigned port;
    if (!cli_parse_listen(listen, host, sizeof host, &port)) {
        fprintf(stderr, "kopilka demo: --listen must be HOST:PORT, got %s\n", listen);
        return 2;
    }
    if (store_pg_location(db)) {
        fprintf(stderr, "kopilka demo: --db must be a SQLite file (the demo keeps its key and "
                        "cards beside it); on PostgreSQL run `kopilka init`, `terminal add`, "
                        "`cards issue` and `serve` (README.md)\n");
        return 2;
    }
    char state_path[4096];
    if (!demo_file_path(db, state_path, sizeof state_path)) {
        fprintf(stderr, "kopilka demo: the database path is too long\n");
        return 2;
    }
    bool fresh = access(db, F_OK) != 0;
    demo_state d;
    bool reused = !fresh && demo_state_load(state_path, &d);
    kp_error e = {0};
    kp_err err = KP_OK;
    if (!reused) {
        memset(&d, 0, sizeof d);
        kp_store *st = open_db("demo", db, fresh);
        if (st == NULL) return 1;
        int64_t version = 0;
        if (fresh)
            err = load_program_text(st, kp_demo_program_json, kp_demo_program_json_len,
                                    &version, &e);
        if (err == KP_OK && fresh && !create_key_file(db, &e)) err = e.code;
        if (err == KP_OK && (err = st->ops->begin(st)) == KP_OK) {
            err = kp_service_terminal_add(st, "demo-store", d.key, &e);
            if (err == KP_OK)
                err = kp_service_cards_issue(st, DEMO_CARDS, kp_clock_now(NULL), collect_number,
                                             &d, &e);
            err = in_transaction(st, err);
        }
        if (err && e.message[0] == '\0') kp_error_set(&e, err, "database", "%s", st->last_error);
        kp_store_close(st);
        if (err == KP_OK && !demo_state_save(state_path, &d, &e)) err = e.code;
        if (err) return fail("demo", &e);
    }
    char staff_path[4200];
    char passwords[DEMO_STAFF][32] = {{0}};
    snprintf(staff_path, sizeof staff_path, "%s-staff", state_path);
    bool have_staff = demo_staff_load(staff_path, passwords);
    if (!have_staff && (fresh || !reused)) {
        if (!demo_staff_make(db, staff_path, passwords, &e)) return fail("demo", &e);
        have_staff = true;
    }
    /* A receipt number of this run's own (the time and the process), so the
     * printed purchase is a new one, not a replay of the last run's. */
    char receipt[48];
    snprintf(receipt, sizeof receipt, "R-%lld-%ld", (long long)time(NULL), (long)getpid());
    printf("Kopilka demo\n  database:  %s%s\n  program:   seed 004 case 1 (4%% of labour, 12%% of "
           "parts, points pay <= 10%% of labour, first visit >= 1000 points)\n"
           "  terminal key (store demo-store): %s\n  (kept, with the cards, in %s, mode 0600)\n"
           "  cards:",
           db, fresh ? " (new)" : " (reused)", d.key, state_path);
    for (int i = 0; i < DEMO_CARDS; i++) printf(" %s", d.cards[i]);
    printf("\n\nTry a purchase:\n  curl -s http://%s:%u/v1/purchases -H 'Authorization: Bearer %s' "
           "-d '{\"card\":\"%s\",\"receipt\":\"%s\",\"lines\":[{\"sku\":\"oil change\","
           "\"category\":\"labor\",\"amount\":500000},{\"sku\":\"filter\",\"category\":\"parts\","
           "\"amount\":200000}]}'\n  curl -s http://%s:%u/v1/cards/%s -H 'Authorization: Bearer "
           "%s'\n\n",
           host, port, d.key, d.cards[0], receipt, host, port, d.cards[0], d.key);
    printf("Pages:\n  back office   http://%s:%u/office\n  cashier page  http://%s:%u/till "
           "(pair it with the terminal key above, then log in as the cashier)\n  customers     "
           "http://%s:%u/ (log-in codes need a channel: kopilka serve --notify FILE, "
           "docs/notifications.md)\n",
           host, port, host, port, host, port);
    if (have_staff)
        printf("  staff: admin / %s, cashier / %s (kept in %s, mode 0600)\n", passwords[0],
               passwords[1], staff_path);
    printf("\n");
    fflush(stdout);
    char *serve_argv[] = {(char *)db, (char *)"--listen", (char *)listen};
    return cmd_serve(3, serve_argv);
}
