/*
 * cmd_people.c: the back office on the command line: staff accounts, card
 * batches and their printer export (CSV, barcode and QR images), CSV import
 * of cards, customers and balances, and CSV exports. Each command runs in
 * one transaction as the actor "cli:USER" (the operating-system user) and
 * leaves an audit entry. Also the helpers every audited command shares
 * (cli_office_*, cli.h).
 */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <kopilka/clock.h>

#include "cli.h"
#include "crypto/pii.h"
#include "service/people.h"

static int fail(const char *command, const kp_error *e)
{
    fprintf(stderr, "kopilka %s: %s%s%s\n", command, e->field, e->field[0] ? ": " : "", e->message);
    return 1;
}

void cli_office_close(cli_office *c)
{
    kp_store_close(c->st);
    kp_pii_free(c->pii);
    free(c->program);
    kp_scratch_free(c->sc);
    memset(c, 0, sizeof *c);
}

bool cli_office_open(cli_office *c, const char *command, const char *db, bool need_key)
{
    memset(c, 0, sizeof *c);
    kp_error e = {0};
    if (db == NULL) {
        fprintf(stderr, "kopilka %s: the database path is missing (see --help)\n", command);
        return false;
    }
    if (kp_service_open(db, false, &c->st, &e)) {
        fail(command, &e);
        return false;
    }
    char key_path[4096];
    if (kp_pii_key_path(db, key_path, sizeof key_path)) {
        kp_err err = kp_pii_load(key_path, &c->pii, &e);
        if (err && (need_key || err != KP_ERR_NOT_FOUND)) {
            fail(command, &e);
            cli_office_close(c);
            return false;
        }
    }
    c->program = malloc(sizeof *c->program);
    c->sc = kp_scratch_new();
    if (c->program == NULL || c->sc == NULL) {
        fprintf(stderr, "kopilka %s: out of memory\n", command);
        cli_office_close(c);
        return false;
    }
    kp_error pe = {0};
    bool has_program = kp_service_program_get(c->st, 0, c->program, &pe) == KP_OK;
    kp_actor actor;
    memset(&actor, 0, sizeof actor);
    actor.kind = KP_ACTOR_CLI;
    cli_actor_name(actor.name, sizeof actor.name);
    kp_office_init(&c->office, c->st, c->pii, has_program ? c->program : NULL, kp_clock_now(NULL),
                   &actor, c->sc);
    return true;
}

/* The operating-system user running the command, as the audit log names
 * it: "cli:anna". Taken from the effective uid (getpwuid), not from $USER,
 * which anyone can set; "cli:uid-1001" when the uid has no name. */
void cli_actor_name(char *out, size_t size)
{
    uid_t uid = geteuid();
    struct passwd pw, *found = NULL;
    char buf[4096];
    if (getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found && found->pw_name[0])
        snprintf(out, size, "cli:%.60s", found->pw_name);
    else
        snprintf(out, size, "cli:uid-%lu", (unsigned long)uid);
}

bool cli_key_ensure(const char *command, const char *db)
{
    char key_path[4096];
    if (!kp_pii_key_path(db, key_path, sizeof key_path)) {
        fprintf(stderr, "kopilka %s: the database path is too long\n", command);
        return false;
    }
    if (access(key_path, F_OK) == 0) return true;
    kp_error e = {0};
    kp_store *st = NULL;
    if (kp_service_open(db, false, &st, &e)) {
        fail(command, &e);
        return false;
    }
    int64_t sealed = 0;
    kp_err err = st->ops->people->sealed_count(st, &sealed);
    if (err) fprintf(stderr, "kopilka %s: database: %s\n", command, st->last_error);
    kp_store_close(st);
    if (err) return false;
    if (sealed > 0) {
        fprintf(stderr,
                "kopilka %s: key: the key file %s is missing, but %s holds %lld value(s) "
                "made with a key (customers' personal data, birthday indexes, audit MACs). "
                "A new key would not open them, so none is made: restore %s (mode 0600) "
                "from the copy you keep apart from the database backups, then run the "
                "command again\n",
                command, key_path, db, (long long)sealed, key_path);
        return false;
    }
    if (kp_pii_create(key_path, &e) != KP_OK && e.code != KP_ERR_CONFLICT) {
        fail(command, &e);
        return false;
    }
    fprintf(stderr,
            "kopilka %s: note: created the key file %s (mode 0600; %s held nothing sealed "
            "yet); back it up apart from the database\n",
            command, key_path, db);
    return true;
}

/* Commits when err is KP_OK, rolls back otherwise. */
kp_err cli_office_finish(cli_office *c, kp_err err, kp_error *e)
{
    if (err) {
        c->st->ops->rollback(c->st);
        return err;
    }
    err = c->st->ops->commit(c->st);
    if (err) kp_error_set(e, err, "database", "%s", c->st->last_error);
    return err;
}

static kp_err finish(cli_office *c, kp_err err, kp_error *e)
{
    return cli_office_finish(c, err, e);
}

/* ---- staff add */

/* Reads one line into out without its line end; false at end of input. */
static bool read_line(FILE *f, char *out, size_t size)
{
    if (fgets(out, (int)size, f) == NULL) return false;
    size_t n = strlen(out);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r')) out[--n] = '\0';
    return true;
}

/* Asks for a line on the terminal with echo off (the typed password is not
 * shown), restoring the terminal's mode after. Echo goes off before the
 * prompt appears, so nothing typed in answer to it is ever shown. */
static bool prompt_hidden(const char *prompt, char *out, size_t size)
{
    struct termios saved, quiet;
    bool tty = tcgetattr(STDIN_FILENO, &saved) == 0;
    if (tty) {
        quiet = saved;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        quiet.c_lflag |= ECHONL;
        tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    }
    fputs(prompt, stderr);
    fflush(stderr);
    bool ok = read_line(stdin, out, size);
    if (tty) tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    return ok;
}

/* The password: the first line of `file`; else, on a terminal, asked twice
 * without echo; else the first line of stdin (a pipe). */
static bool read_password(const char *file, char *out, size_t size, const char **problem)
{
    *problem = "no password (one line on stdin, or --password-file)";
    if (file || !isatty(STDIN_FILENO)) {
        FILE *f = file ? fopen(file, "r") : stdin;
        if (f == NULL) {
            *problem = "--password-file: cannot read the file";
            return false;
        }
        bool ok = read_line(f, out, size);
        if (file) fclose(f);
        return ok;
    }
    char again[KP_PASSWORD_MAX + 2];
    if (!prompt_hidden("Password: ", out, size)) return false;
    bool ok = prompt_hidden("Repeat the password: ", again, sizeof again);
    ok = ok && strcmp(out, again) == 0;
    memset(again, 0, sizeof again);
    if (!ok) *problem = "the two passwords typed differ; nothing was added";
    return ok;
}

int cmd_staff_add(int argc, char **argv)
{
    static const char *const opts[] = {"--login", "--role", "--password-file", NULL};
    if (!cli_check_options(argc, argv, opts, "staff add")) return 2;
    const char *db = cli_positional(argc, argv, 0);
    const char *login = cli_option(argc, argv, "--login");
    const char *role = cli_option(argc, argv, "--role");
    const char *file = cli_option(argc, argv, "--password-file");
    if (db == NULL || login == NULL || role == NULL) {
        fprintf(stderr, "usage: kopilka staff add DB --login L --role R [--password-file F]\n");
        return 2;
    }
    char password[KP_PASSWORD_MAX + 2];
    const char *problem = NULL;
    if (!read_password(file, password, sizeof password, &problem)) {
        memset(password, 0, sizeof password);
        fprintf(stderr, "kopilka staff add: %s\n", problem);
        return 2;
    }
    cli_office c;
    if (!cli_office_open(&c, "staff add", db, false)) return 1;
    kp_error e = {0};
    int64_t id = 0;
    kp_err err = c.st->ops->begin(c.st);
    if (err == KP_OK)
        err = finish(&c, kp_staff_add(&c.office, login, role, password, &id, &e), &e);
    else
        kp_error_set(&e, err, "database", "%s", c.st->last_error);
    memset(password, 0, sizeof password);
    cli_office_close(&c);
    if (err) return fail("staff add", &e);
    printf("staff %lld: %s (%s)\n", (long long)id, login, role);
    return 0;
}

/* ---- cards issue --batch (called by cmd_cards_issue) */

static void print_number(void *ctx, const char *number)
{
    (void)ctx;
    puts(number);
}

int cli_cards_issue_batch(const char *db, long long count, const char *batch)
{
    cli_office c;
    if (!cli_office_open(&c, "cards issue", db, false)) return 1;
    kp_error e = {0};
    int64_t id = 0;
    kp_err err = c.st->ops->begin(c.st);
    if (err == KP_OK)
        err = finish(&c, kp_cards_issue_batch(&c.office, batch, count, print_number, NULL, &id, &e),
                     &e);
    else
        kp_error_set(&e, err, "database", "%s", c.st->last_error);
    cli_office_close(&c);
    return err ? fail("cards issue", &e) : 0;
}

/* ---- cards export */

static bool write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL) return false;
    bool ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

int cmd_cards_export(int argc, char **argv)
{
    static const char *const opts[] = {"--batch", "--out", "--no-images", NULL};
    if (!cli_check_options(argc, argv, opts, "cards export")) return 2;
    const char *db = cli_positional(argc, argv, 0);
    const char *batch = cli_option(argc, argv, "--batch");
    const char *dir = cli_option(argc, argv, "--out");
    if (db == NULL || batch == NULL || dir == NULL) {
        fprintf(stderr, "usage: kopilka cards export DB --batch NAME --out DIR\n");
        return 2;
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "kopilka cards export: cannot create %s: %s\n", dir, strerror(errno));
        return 1;
    }
    cli_office c;
    if (!cli_office_open(&c, "cards export", db, false)) return 1;
    kp_error e = {0};
    kp_buf csv, img;
    kp_buf_init(&csv, 512 * 1024 * 1024);
    kp_buf_init(&img, 16 * 1024 * 1024);
    kp_err err = c.st->ops->begin(c.st);
    int64_t batch_id = 0;
    if (err)
        kp_error_set(&e, err, "database", "%s", c.st->last_error);
    else
        err = kp_cards_batch_csv(&c.office, 0, batch, &csv, &batch_id, &e);
    if (err == KP_OK) {
        char target[48];
        snprintf(target, sizeof target, "batch:%lld", (long long)batch_id);
        if ((err = kp_office_audit(&c.office, "card.export", target, "batch=%s", batch)))
            kp_error_set(&e, err, "database", "%s", c.st->last_error);
    }
    err = finish(&c, err, &e);
    int rc = 0;
    char path[4096];
    int64_t images = 0;
    if (err) {
        rc = fail("cards export", &e);
        goto out;
    }
    snprintf(path, sizeof path, "%s/cards.csv", dir);
    if (!write_file(path, csv.data, csv.len)) {
        fprintf(stderr, "kopilka cards export: cannot write %s\n", path);
        rc = 1;
        goto out;
    }
    /* One barcode and one QR code per card, PNG and SVG. */
    char *line = strchr(csv.data, '\n');
    while (line && line[1]) {
        char *number = line + 1;
        char *comma = strchr(number, ',');
        line = strchr(number, '\n');
        if (comma == NULL) break;
        *comma = '\0';
        static const struct {
            kp_barcode_kind kind;
            bool png;
            const char *suffix;
        } pictures[] = {{KP_BARCODE_CODE128, false, "barcode.svg"},
                        {KP_BARCODE_CODE128, true, "barcode.png"},
                        {KP_BARCODE_QR, false, "qr.svg"},
                        {KP_BARCODE_QR, true, "qr.png"}};
        for (size_t i = 0; i < 4 && rc == 0; i++) {
            err = pictures[i].png ? kp_barcode_png(pictures[i].kind, number, &img, &e)
                                  : kp_barcode_svg(pictures[i].kind, number, &img, &e);
            snprintf(path, sizeof path, "%s/%s-%s", dir, number, pictures[i].suffix);
            if (err)
                rc = fail("cards export", &e);
            else if (!write_file(path, img.data, img.len)) {
                fprintf(stderr, "kopilka cards export: cannot write %s\n", path);
                rc = 1;
            }
            images++;
        }
        if (rc) break;
    }
    if (rc == 0) printf("wrote %s/cards.csv and %lld images\n", dir, (long long)images);
out:
    kp_buf_release(&csv);
    kp_buf_release(&img);
    cli_office_close(&c);
    return rc;
}

/* ---- import, export */

static void print_bad_row(void *ctx, const char *line)
{
    (void)ctx;
    fprintf(stderr, "%s\n", line);
}

int cmd_import(int argc, char **argv)
{
    static const char *const opts[] = {"--customers", "--cards", "--balances", NULL};
    if (!cli_check_options(argc, argv, opts, "import")) return 2;
    const char *db = cli_positional(argc, argv, 0);
    kp_import_files files = {.customers = cli_option(argc, argv, "--customers"),
                             .cards = cli_option(argc, argv, "--cards"),
                             .balances = cli_option(argc, argv, "--balances")};
    if (db == NULL || (!files.customers && !files.cards && !files.balances)) {
        fprintf(stderr, "usage: kopilka import DB [--cards F.csv] [--customers F.csv] "
                        "[--balances F.csv]\n");
        return 2;
    }
    cli_office c;
    if (!cli_office_open(&c, "import", db, files.customers != NULL)) return 1;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    kp_error e = {0};
    kp_import_stats stats;
    memset(&stats, 0, sizeof stats);
    kp_err err = c.st->ops->begin(c.st);
    if (err == KP_OK)
        err = finish(&c, kp_import(&c.office, &files, print_bad_row, NULL, &stats, &e), &e);
    else
        kp_error_set(&e, err, "database", "%s", c.st->last_error);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cli_office_close(&c);
    if (err) return fail("import", &e);
    double seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    /* "N updated" only when some were: scripts that read the older line still do. */
    char updated[48] = "";
    if (stats.customers_updated)
        snprintf(updated, sizeof updated, "%lld updated, ", (long long)stats.customers_updated);
    printf("imported in %.2f s: cards %lld new, %lld unchanged; customers %lld new, %s%lld "
           "unchanged; balances %lld posted, %lld unchanged\n",
           seconds, (long long)stats.cards_created, (long long)stats.cards_unchanged,
           (long long)stats.customers_created, updated, (long long)stats.customers_unchanged,
           (long long)stats.balances_posted, (long long)stats.balances_unchanged);
    return 0;
}

static bool to_file(void *ctx, const char *data, size_t len)
{
    return fwrite(data, 1, len, ctx) == len;
}

int cmd_export(int argc, char **argv)
{
    static const char *const opts[] = {"--customers", "--balances", NULL};
    if (!cli_check_options(argc, argv, opts, "export")) return 2;
    const char *db = cli_positional(argc, argv, 0);
    const char *customers = cli_option(argc, argv, "--customers");
    const char *balances = cli_option(argc, argv, "--balances");
    if (db == NULL || (customers == NULL) == (balances == NULL)) {
        fprintf(stderr, "usage: kopilka export DB (--customers FILE | --balances FILE)\n");
        return 2;
    }
    const char *path = customers ? customers : balances;
    cli_office c;
    if (!cli_office_open(&c, "export", db, customers != NULL)) return 1;
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        fprintf(stderr, "kopilka export: cannot write %s: %s\n", path, strerror(errno));
        cli_office_close(&c);
        return 1;
    }
    if (customers) fchmod(fileno(f), 0600); /* personal data */
    kp_error e = {0};
    int64_t rows = 0;
    kp_err err = c.st->ops->begin(c.st);
    if (err) {
        kp_error_set(&e, err, "database", "%s", c.st->last_error);
    } else {
        err = customers ? kp_export_customers(&c.office, to_file, f, &rows, &e)
                        : kp_export_balances(&c.office, to_file, f, &rows, &e);
        if (err == KP_OK &&
            (err = kp_office_audit(&c.office, customers ? "export.customers" : "export.balances",
                                   customers ? "customers" : "balances", "rows=%lld",
                                   (long long)rows)))
            kp_error_set(&e, err, "database", "%s", c.st->last_error);
        err = finish(&c, err, &e);
    }
    if (fclose(f) != 0 && err == KP_OK)
        err = kp_error_set(&e, KP_ERR_IO, "file", "cannot write %s", path);
    cli_office_close(&c);
    if (err) return fail("export", &e);
    printf("wrote %s\n", path);
    return 0;
}

/* ---- phones migrate */

int cmd_phones_migrate(int argc, char **argv)
{
    /* --dry-run is a flag (no value): taken out before the options are checked. */
    enum { ARGS_MAX = 16 };
    char *args[ARGS_MAX];
    int n = 0;
    bool dry_run = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--dry-run") == 0) {
            dry_run = true;
        } else if (n == ARGS_MAX) {
            fprintf(stderr, "kopilka phones migrate: too many arguments (see --help)\n");
            return 2;
        } else {
            args[n++] = argv[i];
        }
    }
    static const char *const opts[] = {NULL};
    if (!cli_check_options(n, args, opts, "phones migrate")) return 2;
    const char *db = cli_positional(n, args, 0);
    if (db == NULL) {
        fprintf(stderr, "usage: kopilka phones migrate DB [--dry-run]\n");
        return 2;
    }
    cli_office c;
    if (!cli_office_open(&c, "phones migrate", db, true)) return 1;
    kp_error e = {0};
    kp_phones_migration m;
    memset(&m, 0, sizeof m);
    kp_err err = c.st->ops->begin(c.st);
    if (err == KP_OK) {
        err = kp_customers_phones_migrate(&c.office, dry_run, print_bad_row, NULL, &m, &e);
        if (dry_run && err == KP_OK) {
            c.st->ops->rollback(c.st);
        } else {
            err = finish(&c, err, &e);
        }
    } else {
        kp_error_set(&e, err, "database", "%s", c.st->last_error);
    }
    const char *country = kp_phone_region_of(c.office.program);
    char region[8];
    snprintf(region, sizeof region, "%s", country[0] ? country : "none");
    cli_office_close(&c);
    if (err) return fail("phones migrate", &e);
    printf("phones%s: %lld checked, %lld %s E.164, %lld unreadable, %lld conflicts "
           "(numbers without + read in country %s)\n",
           dry_run ? " (dry run, nothing written)" : "", (long long)m.checked, (long long)m.changed,
           dry_run ? "to rewrite in" : "rewritten in", (long long)m.unreadable,
           (long long)m.conflicts, region);
    return 0;
}
