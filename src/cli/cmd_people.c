/*
 * cmd_people.c: the back office on the command line: staff accounts, card
 * batches and their printer export (CSV, barcode and QR images), CSV import
 * of cards, customers and balances, and CSV exports. Each command runs as
 * the actor "cli:USER" (the operating-system user) and leaves an audit
 * entry; most in one transaction, the long ones (cards issue, import) in
 * chunks of a few milliseconds (service/chunks.h) with a progress line on
 * stderr (progress.c). Also the helpers every audited command shares
 * (cli_office_*, cli.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <kopilka/clock.h>

#include <kopilka/oplog.h>

#include "cli.h"
#include "service/cobrand.h"
#include "crypto/pii.h"
#include "service/chunks.h"
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

int cli_office_open_at(cli_office *c, const char *command, const char *db, int argc, char **argv)
{
    if (!cli_office_open(c, command, db, false)) return 1;
    const char *text = cli_option(argc, argv, "--now");
    if (text == NULL || kp_time_parse(text, &c->office.now)) return 0;
    fprintf(stderr, "kopilka %s: --now must be an RFC 3339 time, got %s\n", command, text);
    cli_office_close(c);
    return 2;
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
    kp_err err = kp_pii_key_locate(db, key_path, sizeof key_path, &e);
    if (err == KP_OK) err = kp_pii_load(key_path, &c->pii, &e);
    if (err && (need_key || err != KP_ERR_NOT_FOUND)) {
        fail(command, &e);
        cli_office_close(c);
        return false;
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
    kp_error e = {0};
    if (kp_pii_key_locate(db, key_path, sizeof key_path, &e)) {
        fail(command, &e);
        return false;
    }
    if (access(key_path, F_OK) == 0) return true;
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
                "made with a key (customers' personal data, birthday indexes, audit MACs, "
                "notifications' texts, webhook secrets, login codes). "
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
    static const char *const opts[] = {"--login", "--role", "--partner", "--password-file", NULL};
    if (!cli_check_options(argc, argv, opts, "staff add")) return 2;
    const char *db = cli_positional(argc, argv, 0);
    const char *login = cli_option(argc, argv, "--login");
    const char *role = cli_option(argc, argv, "--role");
    const char *partner = cli_option(argc, argv, "--partner");
    const char *file = cli_option(argc, argv, "--password-file");
    if (db == NULL || login == NULL || role == NULL) {
        fprintf(stderr, "usage: kopilka staff add DB --login L --role R [--partner CODE] "
                        "[--password-file F]\n");
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
        err = finish(&c, kp_staff_add(&c.office, login, role, partner, password, &id, &e), &e);
    else
        kp_error_set(&e, err, "database", "%s", c.st->last_error);
    memset(password, 0, sizeof password);
    cli_office_close(&c);
    if (err) return fail("staff add", &e);
    if (partner)
        printf("staff %lld: %s (%s of %s)\n", (long long)id, login, role, partner);
    else
        printf("staff %lld: %s (%s)\n", (long long)id, login, role);
    return 0;
}

/* ---- cards issue (called by cmd_cards_issue) */

/* The numbers wait here and are printed once their chunk is committed and
 * its journal synced (kp_chunks' `committed` callback), so stdout never
 * names a card that a failure rolled back or a crash could lose. */
typedef struct issue_out {
    kp_buf pending;  /* numbers not yet printed, one a line */
    int64_t printed; /* numbers printed */
    cli_progress progress;
    bool write_failed;
} issue_out;

static void print_number(void *ctx, const char *number)
{
    issue_out *io = ctx;
    kp_buf_puts(&io->pending, number);
    kp_buf_puts(&io->pending, "\n");
}

static void issue_committed(void *ctx, int64_t done, int64_t total)
{
    (void)total;
    issue_out *io = ctx;
    /* The first done - printed lines are durable; the rest (an open chunk
     * of a failed job) may be rolled back. */
    size_t len = 0;
    for (; io->printed < done && len < io->pending.len; io->printed++) {
        const char *nl = memchr(io->pending.data + len, '\n', io->pending.len - len);
        if (nl == NULL) break;
        len = (size_t)(nl - io->pending.data) + 1;
    }
    if (len > 0) {
        if (fwrite(io->pending.data, 1, len, stdout) != len || fflush(stdout) != 0)
            io->write_failed = true;
        /* ... with the buffer's terminating NUL */
        memmove(io->pending.data, io->pending.data + len, io->pending.len - len + 1);
        io->pending.len -= len;
    }
    cli_progress_update(&io->progress, done);
}

int cli_cards_issue_batch(const char *db, long long count, const char *batch)
{
    cli_office c;
    if (!cli_office_open(&c, "cards issue", db, false)) return 1;
    kp_error e = {0};
    int64_t id = 0;
    issue_out io;
    memset(&io, 0, sizeof io);
    /* Numbers of 13 digits wait for at most KP_CHUNK_SYNC_EVERY_NS of work
     * (about 30 000 at full speed): far below this cap. */
    kp_buf_init(&io.pending, 64 * 1024 * 1024);
    cli_progress_start(&io.progress, "cards issue", "cards", count);
    kp_chunks ch;
    kp_chunks_init(&ch, c.st, count, issue_committed, &io);
    kp_err err = kp_chunks_begin(&ch, &e);
    if (err == KP_OK)
        err = batch ? kp_cards_issue_batch_chunks(&c.office, batch, count, print_number, &io, &ch,
                                                  &id, &e)
                    : kp_service_cards_issue_chunks(c.st, count, c.office.now, print_number, &io,
                                                    &ch, &e);
    /* A batch's issue is audited by the service; cards without a batch here,
     * in the last chunk's transaction. */
    if (err == KP_OK && batch == NULL)
        err = kp_office_audit(&c.office, "card.issue", "cards", "count=%lld batch=-", count);
    if (err == KP_OK && io.pending.failed)
        err = kp_error_set(&e, KP_ERR_NOMEM, "", "out of memory for the numbers of a chunk");
    err = kp_chunks_end(&ch, err, &e);
    if (err == KP_OK && io.write_failed)
        err = kp_error_set(&e, KP_ERR_IO, "stdout", "cannot write the card numbers");
    snprintf(io.progress.note, sizeof io.progress.note,
             "%lld commits, the longest held the database %.1f ms", (long long)ch.commits,
             (double)ch.hold_ns_max / 1e6);
    cli_progress_end(&io.progress, ch.done, err == KP_OK);
    kp_buf_release(&io.pending);
    cli_office_close(&c);
    return err ? fail("cards issue", &e) : 0;
}

/* ---- cards export */

/* Writes data to dir/name; false (errno set) when it cannot. */
static bool write_file(const char *dir, const char *name, const void *data, size_t len)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path) {
        errno = ENAMETOOLONG;
        return false;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return false;
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int saved = errno ? errno : EIO;
            close(fd);
            errno = saved;
            return false;
        }
        p += n;
        len -= (size_t)n;
    }
    return close(fd) == 0;
}

/* One CSV field: quoted when it holds a comma, a quote or a line break. */
static void csv_put(FILE *f, const char *s, bool last)
{
    if (strpbrk(s, ",\"\r\n") == NULL) {
        fputs(s, f);
    } else {
        fputc('"', f);
        for (; *s; s++) {
            if (*s == '"') fputc('"', f);
            fputc(*s, f);
        }
        fputc('"', f);
    }
    fputc(last ? '\n' : ',', f);
}

/* The batch's cards as "NUMBER\0STATE\0" pairs. */
typedef struct export_list {
    kp_buf cards;
    int64_t n;
} export_list;

static bool collect_card(void *ctx, const kp_card_info *c)
{
    export_list *l = ctx;
    kp_buf_append(&l->cards, c->number, strlen(c->number) + 1);
    const char *state = kp_card_state_name(c->state);
    kp_buf_append(&l->cards, state, strlen(state) + 1);
    l->n++;
    return !l->cards.failed;
}

/* The pictures of a card, in the CSV's order: each symbol is drawn once
 * for its PNG and its SVG. */
static const struct {
    kp_barcode_kind kind;
    const char *png, *svg;
} export_pictures[] = {{KP_BARCODE_CODE128, "barcode.png", "barcode.svg"},
                       {KP_BARCODE_QR, "qr.png", "qr.svg"}};

enum { EXPORT_THREADS_MAX = 8 };

/* The pictures of a batch, drawn by one thread per processor (drawing and
 * PNG encoding are CPU work, one card independent of the next). */
typedef struct export_job {
    const char *dir;
    const char **numbers;   /* n */
    unsigned char *written; /* n: the card's four files exist */
    int64_t n;
    atomic_llong next;  /* the next card a thread takes */
    atomic_llong done;  /* cards whose files are written */
    atomic_int running; /* threads not yet finished */
    atomic_bool failed;
    pthread_mutex_t lock; /* guards error */
    char error[600];      /* the first failure, for stderr */
} export_job;

static void export_failed(export_job *j, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void export_failed(export_job *j, const char *fmt, ...)
{
    pthread_mutex_lock(&j->lock);
    if (!atomic_load(&j->failed)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(j->error, sizeof j->error, fmt, ap);
        va_end(ap);
        atomic_store(&j->failed, true);
    }
    pthread_mutex_unlock(&j->lock);
}

static void *export_worker(void *arg)
{
    export_job *j = arg;
    kp_buf img, svg;
    kp_buf_init(&img, 16 * 1024 * 1024);
    kp_buf_init(&svg, 16 * 1024 * 1024);
    kp_error e = {0};
    while (!atomic_load(&j->failed)) {
        long long i = atomic_fetch_add(&j->next, 1);
        if (i >= j->n) break;
        const char *number = j->numbers[i];
        bool ok = true;
        for (size_t k = 0; k < 2 && ok; k++) {
            char png_name[KP_STR_MAX + 16], svg_name[KP_STR_MAX + 16];
            snprintf(png_name, sizeof png_name, "%s-%s", number, export_pictures[k].png);
            snprintf(svg_name, sizeof svg_name, "%s-%s", number, export_pictures[k].svg);
            const char *bad = NULL;
            if (kp_barcode_pictures(export_pictures[k].kind, number, &svg, &img, &e)) {
                export_failed(j, "card %s: %s", number, e.message);
                ok = false;
            } else if (!write_file(j->dir, png_name, img.data, img.len)) {
                bad = png_name;
            } else if (!write_file(j->dir, svg_name, svg.data, svg.len)) {
                bad = svg_name;
            }
            if (bad) {
                export_failed(j, "cannot write %s/%s: %s", j->dir, bad, strerror(errno));
                ok = false;
            }
        }
        if (!ok) break;
        j->written[i] = 1;
        atomic_fetch_add(&j->done, 1);
    }
    kp_buf_release(&img);
    kp_buf_release(&svg);
    atomic_fetch_sub(&j->running, 1);
    return NULL;
}

/* Draws every card's pictures on `threads` threads, showing the progress;
 * false (the reason on stderr) when one failed. j->written tells which
 * cards are complete. */
static bool export_draw(export_job *j, int threads)
{
    cli_progress progress;
    cli_progress_start(&progress, "cards export", "cards", j->n);
    pthread_t tid[EXPORT_THREADS_MAX];
    int started = 0;
    atomic_store(&j->running, threads);
    for (; started < threads; started++)
        if (pthread_create(&tid[started], NULL, export_worker, j) != 0) break;
    atomic_fetch_sub(&j->running, threads - started);
    if (started == 0) export_worker(j); /* no thread to be had: draw here */
    while (atomic_load(&j->running) > 0) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
        cli_progress_update(&progress, atomic_load(&j->done));
    }
    for (int i = 0; i < started; i++) pthread_join(tid[i], NULL);
    bool ok = !atomic_load(&j->failed);
    snprintf(progress.note, sizeof progress.note, "%d thread(s), 4 pictures a card",
             started ? started : 1);
    cli_progress_end(&progress, atomic_load(&j->done), ok);
    if (!ok) fprintf(stderr, "kopilka cards export: %s\n", j->error);
    return ok;
}

int cmd_cards_export(int argc, char **argv)
{
    static const char *const opts[] = {"--batch", "--out", NULL};
    if (!cli_check_options(argc, argv, opts, "cards export")) return 2;
    const char *db = cli_positional(argc, argv, 0);
    const char *batch = cli_option(argc, argv, "--batch");
    const char *dir = cli_option(argc, argv, "--out");
    if (db == NULL || batch == NULL || dir == NULL) {
        fprintf(stderr, "usage: kopilka cards export DB --batch NAME --out DIR\n");
        return 2;
    }
    /* libzint allocates each picture's bitmap (about 400 KB) and frees it:
     * above glibc's mmap threshold that is an mmap, a munmap and a page
     * fault per 4 KiB for every picture. Keep such blocks on the heap. */
    mallopt(M_MMAP_THRESHOLD, 64 * 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024);
    cli_office c;
    if (!cli_office_open(&c, "cards export", db, false)) return 1;
    kp_error e = {0};
    export_list list = {.n = 0};
    kp_buf_init(&list.cards, 512 * 1024 * 1024);
    kp_card_batch b;
    export_job job;
    memset(&job, 0, sizeof job);
    pthread_mutex_init(&job.lock, NULL);
    const char **states = NULL;
    FILE *csv = NULL;
    int rc = 0;
    /* The cards are read outside any write transaction (one statement, one
     * snapshot), and only the audit entry takes the write lock, briefly: a
     * big export never holds the tills back. */
    kp_err err = kp_cards_batch_each(&c.office, batch, collect_card, &list, &b, &e);
    if (err == KP_OK && list.cards.failed)
        err = kp_error_set(&e, KP_ERR_NOMEM, "batch", "the batch is too large to export");
    /* The folder once the batch is known: an unknown batch leaves none. */
    if (err == KP_OK && mkdir(dir, 0755) != 0 && errno != EEXIST)
        err = kp_error_set(&e, KP_ERR_IO, "--out", "cannot create %s: %s", dir, strerror(errno));
    if (err == KP_OK && (err = c.st->ops->begin(c.st)) != KP_OK)
        kp_error_set(&e, err, "database", "%s", c.st->last_error);
    else if (err == KP_OK) {
        char target[48];
        snprintf(target, sizeof target, "batch:%lld", (long long)b.id);
        if ((err = kp_office_audit(&c.office, "card.export", target, "batch=%s cards=%lld", batch,
                                   (long long)list.n)))
            kp_error_set(&e, err, "database", "%s", c.st->last_error);
        err = finish(&c, err, &e);
    }
    if (err) {
        rc = fail("cards export", &e);
        goto out;
    }
    job.dir = dir;
    job.n = list.n;
    job.numbers = calloc((size_t)list.n + 1, sizeof *job.numbers);
    states = calloc((size_t)list.n + 1, sizeof *states);
    job.written = calloc((size_t)list.n + 1, 1);
    if (job.numbers == NULL || states == NULL || job.written == NULL) {
        fprintf(stderr, "kopilka cards export: out of memory\n");
        rc = 1;
        goto out;
    }
    const char *p = list.cards.data;
    for (int64_t i = 0; i < list.n; i++) {
        job.numbers[i] = p;
        states[i] = p + strlen(p) + 1;
        p = states[i] + strlen(states[i]) + 1;
    }
    {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        int threads = cpus < 1 ? 1 : cpus > EXPORT_THREADS_MAX ? EXPORT_THREADS_MAX : (int)cpus;
        if (!export_draw(&job, threads)) rc = 1;
    }
    /* The CSV names only files that exist: after a failure it lists the
     * cards whose pictures were all written. */
    char path[4096];
    snprintf(path, sizeof path, "%s/cards.csv", dir);
    csv = fopen(path, "w");
    if (csv == NULL) {
        fprintf(stderr, "kopilka cards export: cannot write %s: %s\n", path, strerror(errno));
        rc = 1;
        goto out;
    }
    fputs("number,batch,state,barcode_png,barcode_svg,qr_png,qr_svg\n", csv);
    int64_t rows = 0;
    for (int64_t i = 0; i < list.n; i++) {
        if (!job.written[i]) continue;
        csv_put(csv, job.numbers[i], false);
        csv_put(csv, b.name, false);
        csv_put(csv, states[i], false);
        for (size_t k = 0; k < 2; k++) {
            char name[KP_STR_MAX + 16];
            snprintf(name, sizeof name, "%s-%s", job.numbers[i], export_pictures[k].png);
            csv_put(csv, name, false);
            snprintf(name, sizeof name, "%s-%s", job.numbers[i], export_pictures[k].svg);
            csv_put(csv, name, k == 1);
        }
        rows++;
    }
    if (fclose(csv) != 0 && rc == 0) {
        fprintf(stderr, "kopilka cards export: cannot write %s: %s\n", path, strerror(errno));
        rc = 1;
    }
    if (rc == 0)
        printf("wrote %s/cards.csv (%lld cards) and %lld images\n", dir, (long long)rows,
               (long long)rows * 4);
out:
    free(job.numbers);
    free(job.written);
    free(states);
    pthread_mutex_destroy(&job.lock);
    kp_buf_release(&list.cards);
    cli_office_close(&c);
    return rc;
}

/* ---- import, export */

static void print_bad_row(void *ctx, const kp_import_problem *problem)
{
    (void)ctx;
    fprintf(stderr, "%s\n", problem->text);
}

static void print_line(void *ctx, const char *line)
{
    (void)ctx;
    fprintf(stderr, "%s\n", line);
}

static void import_committed(void *ctx, int64_t done, int64_t total)
{
    cli_progress *p = ctx;
    p->total = total;
    if (total > 0) cli_progress_update(p, done); /* 0: still checking the files */
}

/* `kopilka import DB --card-transactions F.csv [--bank CODE]`: a
 * co-branded card's cashback (src/service/cobrand.c), in one transaction. */
static int import_card_transactions(const char *db, const char *path, const char *bank)
{
    cli_office c;
    if (!cli_office_open(&c, "import", db, false)) return 1;
    kp_error e = {0};
    int64_t credited = 0, replayed = 0, points = 0;
    kp_err err = c.st->ops->begin(c.st);
    if (err == KP_OK)
        err = finish(&c, kp_card_txns_import(&c.office, bank, path, print_line, NULL, &credited,
                                             &replayed, &points, &e),
                     &e);
    else
        kp_error_set(&e, err, "database", "%s", c.st->last_error);
    cli_office_close(&c);
    if (err) return fail("import", &e);
    printf("card transactions: %lld credited (%lld points), %lld credited before\n",
           (long long)credited, (long long)points, (long long)replayed);
    return 0;
}

int cmd_import(int argc, char **argv)
{
    static const char *const opts[] = {"--customers", "--cards", "--balances", "--sales",
                                       "--card-transactions", "--bank", NULL};
    if (!cli_check_options(argc, argv, opts, "import")) return 2;
    const char *db = cli_positional(argc, argv, 0);
    const char *card_txns = cli_option(argc, argv, "--card-transactions");
    if (db && card_txns) {
        if (cli_option(argc, argv, "--customers") || cli_option(argc, argv, "--cards") ||
            cli_option(argc, argv, "--balances") || cli_option(argc, argv, "--sales")) {
            fprintf(stderr, "kopilka import: --card-transactions goes alone\n");
            return 2;
        }
        return import_card_transactions(db, card_txns, cli_option(argc, argv, "--bank"));
    }
    kp_import_files files = {.customers = {cli_option(argc, argv, "--customers")},
                             .cards = {cli_option(argc, argv, "--cards")},
                             .balances = {cli_option(argc, argv, "--balances")},
                             .sales = {cli_option(argc, argv, "--sales")}};
    if (db == NULL ||
        (!files.customers.path && !files.cards.path && !files.balances.path && !files.sales.path)) {
        fprintf(stderr, "usage: kopilka import DB [--cards F.csv] [--customers F.csv] "
                        "[--balances F.csv] [--sales F.csv] | --card-transactions F.csv "
                        "[--bank CODE]\n");
        return 2;
    }
    cli_office c;
    if (!cli_office_open(&c, "import", db, files.customers.path != NULL)) return 1;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    kp_error e = {0};
    kp_import_stats stats;
    memset(&stats, 0, sizeof stats);
    /* The rows are checked, then written, in chunks of a few milliseconds,
     * so a running server's tills are not held. */
    cli_progress progress;
    cli_progress_start(&progress, "import", "rows", 0);
    kp_chunks ch;
    kp_chunks_init(&ch, c.st, 0, import_committed, &progress);
    kp_err err = kp_import_chunks(&c.office, &files, print_bad_row, NULL, &ch, &stats, &e);
    err = kp_chunks_end(&ch, err, &e);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (ch.commits) {
        snprintf(progress.note, sizeof progress.note,
                 "%lld commits, the longest held the database %.1f ms", (long long)ch.commits,
                 (double)ch.hold_ns_max / 1e6);
        cli_progress_end(&progress, ch.done, err == KP_OK);
    }
    cli_office_close(&c);
    if (err) return fail("import", &e);
    double seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    /* "N updated" only when some were: scripts that read the older line still do. */
    if (files.sales.path) {
        printf("imported in %.2f s: %lld rows, %.0f rows/s; sales %lld new, %lld unchanged\n",
               seconds, (long long)stats.rows, seconds > 0 ? (double)stats.rows / seconds : 0.0,
               (long long)stats.sales_inserted, (long long)stats.sales_unchanged);
        return 0;
    }
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
    bool dry_run = cli_take_flag(&argc, argv, "--dry-run");
    static const char *const opts[] = {NULL};
    if (!cli_check_options(argc, argv, opts, "phones migrate")) return 2;
    const char *db = cli_positional(argc, argv, 0);
    if (db == NULL) {
        fprintf(stderr, "usage: kopilka phones migrate DB [--dry-run]\n");
        return 2;
    }
    cli_office c;
    if (!cli_office_open(&c, "phones migrate", db, true)) return 1;
    /* One transaction over every customer: the tills would wait for it. */
    struct kp_oplog *held = NULL;
    if (!cli_stop_servers("phones migrate", c.st, db, &held)) {
        cli_office_close(&c);
        return 1;
    }
    kp_error e = {0};
    kp_phones_migration m;
    memset(&m, 0, sizeof m);
    kp_err err = c.st->ops->begin(c.st);
    if (err == KP_OK) {
        err = kp_customers_phones_migrate(&c.office, dry_run, print_line, NULL, &m, &e);
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
    kp_oplog_close(held);
    cli_office_close(&c);
    if (err) return fail("phones migrate", &e);
    printf("phones%s: %lld checked, %lld %s E.164, %lld unreadable, %lld conflicts "
           "(numbers without + read in country %s), %lld ambiguous\n",
           dry_run ? " (dry run, nothing written)" : "", (long long)m.checked, (long long)m.changed,
           dry_run ? "to rewrite in" : "rewritten in", (long long)m.unreadable,
           (long long)m.conflicts, region, (long long)m.ambiguous);
    return 0;
}
