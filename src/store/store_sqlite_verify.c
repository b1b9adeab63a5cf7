/*
 * store_sqlite_verify.c: the ledger's invariants (store_invariants.c, the
 * first STORE_INVARIANTS_LEDGER) for SQLite in one streaming pass per
 * table instead of their SQL, whose GROUP BYs over the whole postings
 * table sort it (hours at 100 million rows). What each pass reads, in
 * primary-key order (no sort):
 *
 *   thread 1, the store's connection: postings (rowid order, which is
 *     operation order: a writer inserts an operation, then its postings),
 *     merged with ops and the settlement entries summed by operation; it
 *     checks each operation's postings (double entry, the recorded change,
 *     issue/burn/expire entries) as its group ends, and sums the postings
 *     by account into an array indexed by account id;
 *   thread 2, a second read-only connection: lots (bounds, summed by
 *     account), then accounts (balance against lots less debt, debt);
 *   then, joined: balances against the postings' sums, the system
 *     accounts, the ledger's total.
 *
 * The two connections must read the same ledger: each opens a read
 * transaction and reads the largest posting, operation, lot and account
 * ids; if they differ (a commit in between) or the store's connection has
 * a transaction of its own open, the thread-2 part runs after thread 1 on
 * the store's connection instead. Where the data does not fit the pass
 * (postings out of operation order, account ids not in 1..ARRAY_MAX, a
 * system account below -SYS_SPAN) the invariants concerned run as SQL,
 * so every check holds for any file; the fast path is the common one.
 */
#include "store_sqlite_verify.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "store_invariants.h"
#include "store_sqlite_int.h"

enum {
    INV_OP_SUM = 0,     /* an operation's postings net to zero */
    INV_BALANCE = 1,    /* balance = its postings */
    INV_LOTS = 2,       /* balance = open lots less debt */
    INV_LOT_BOUNDS = 3, /* 0 <= remaining <= amount */
    INV_DEBT = 4,       /* debt >= 0 */
    INV_SYS = 5,        /* a system account = its postings */
    INV_TOTAL = 6,      /* all balances sum to zero */
    INV_OP_POINTS = 7,  /* an operation's recorded change = its customer postings */
    INV_ISSUE = 8,      /* settlement entries against the postings, by kind */
    INV_BURN = 9,
    INV_EXPIRE = 10,
};

_Static_assert(STORE_INVARIANTS_LEDGER == 11, "store_sqlite_verify.c checks the first eleven");

/* Account ids held in arrays: up to this many (16 bytes each). */
#define ARRAY_MAX ((int64_t)64 * 1000 * 1000)
/* System accounts -1 .. -SYS_SPAN summed in an array. */
#define SYS_SPAN 4096

typedef struct finding {
    int64_t id, amount;
} finding;

/* One invariant's broken rows: all counted, the first kept for lines. */
typedef struct findings {
    int64_t count;
    finding first[STORE_INVARIANT_LINES_MAX];
} findings;

static void found(findings *f, int64_t id, int64_t amount)
{
    if (f->count < STORE_INVARIANT_LINES_MAX) f->first[f->count] = (finding){id, amount};
    f->count++;
}

/* Sums wrap instead of overflowing (a damaged file may hold anything). */
static inline int64_t add(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a + (uint64_t)b);
}

typedef struct pass {
    int64_t max_id;   /* accounts' ids are 1..max_id */
    int64_t *post;    /* [max_id + 1]: postings summed by customer account (thread 1) */
    int64_t *bal;     /* [max_id + 1]: open lots by account, then the balance (thread 2) */
    uint8_t *exists;  /* bit per id: an accounts row (thread 2) */
    int64_t sys_post[SYS_SPAN + 1]; /* [-id]: postings of system account id */
    bool sys_odd;      /* a posting to a system account below -SYS_SPAN */
    bool out_of_order; /* postings not in operation order */
    int64_t account_total; /* the sum of accounts' balances */
    findings f[STORE_INVARIANTS_LEDGER];
} pass;

/* One thread's connection and its outcome. */
typedef struct worker {
    pass *p;
    sqlite3 *db;
    int rc;          /* SQLite's code of a failure, SQLITE_OK otherwise */
    char err[256];
} worker;

static int prepare(worker *w, const char *sql, sqlite3_stmt **st)
{
    int rc = sqlite3_prepare_v2(w->db, sql, -1, st, NULL);
    if (rc != SQLITE_OK) {
        snprintf(w->err, sizeof w->err, "%s", sqlite3_errmsg(w->db));
        w->rc = rc;
    }
    return rc;
}

static void failed(worker *w, int rc)
{
    if (w->rc == SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW && rc != SQLITE_OK) {
        snprintf(w->err, sizeof w->err, "%s", sqlite3_errmsg(w->db));
        w->rc = rc;
    }
}

/* Runs invariant c's own SQL into f[c] (the fallback). */
static void run_sql(worker *w, int c)
{
    sqlite3_stmt *st;
    memset(&w->p->f[c], 0, sizeof w->p->f[c]);
    if (prepare(w, store_invariants[c].sql, &st) != SQLITE_OK) return;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        found(&w->p->f[c], sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1));
    failed(w, rc);
    sqlite3_finalize(st);
}

/* A cursor over rows (id, v0, v1, v2) in ascending id. */
typedef struct cursor {
    sqlite3_stmt *st;
    bool has;
    int64_t id, v[3];
} cursor;

static void next(worker *w, cursor *c)
{
    int rc = sqlite3_step(c->st);
    c->has = rc == SQLITE_ROW;
    if (!c->has) {
        failed(w, rc);
        return;
    }
    c->id = sqlite3_column_int64(c->st, 0);
    for (int i = 0; i < 3 && i + 1 < sqlite3_column_count(c->st); i++)
        c->v[i] = sqlite3_column_int64(c->st, i + 1);
}

/* An operation's postings, summed: all, the customers' part, and as the
 * settlement invariants count issued, redeemed and expired points. */
typedef struct op_sums {
    int64_t all, customer, issued, redeemed, expired;
    bool any;
} op_sums;

/* Checks operation `op` (in ascending order) against the ops row and the
 * settlement entries the cursors stand on, advancing them past it. */
static void check_op(worker *w, cursor *ops, cursor *settle, int64_t op, const op_sums *s)
{
    pass *p = w->p;
    if (s->any && s->all != 0) found(&p->f[INV_OP_SUM], op, s->all);
    if (ops->has && ops->id == op) {
        if (ops->v[0] != s->customer) found(&p->f[INV_OP_POINTS], op, ops->v[0] - s->customer);
        next(w, ops);
    }
    if (settle->has && settle->id == op) {
        if (settle->v[0] != s->issued) found(&p->f[INV_ISSUE], op, settle->v[0] - s->issued);
        if (settle->v[1] != s->redeemed) found(&p->f[INV_BURN], op, settle->v[1] - s->redeemed);
        if (settle->v[2] != s->expired) found(&p->f[INV_EXPIRE], op, settle->v[2] - s->expired);
        next(w, settle);
    }
}

/* Operations below `op` that have no postings: checked with zero sums. */
static void check_before(worker *w, cursor *ops, cursor *settle, int64_t op)
{
    static const op_sums none = {0};
    while (w->rc == SQLITE_OK && ((ops->has && ops->id < op) || (settle->has && settle->id < op))) {
        int64_t id = ops->has && ops->id < op ? ops->id : settle->id;
        if (settle->has && settle->id < id) id = settle->id;
        check_op(w, ops, settle, id, &none);
    }
}

/* Thread 1: postings merged with ops and settlement entries. */
static void *postings_pass(void *arg)
{
    worker *w = arg;
    pass *p = w->p;
    cursor ops = {0}, settle = {0};
    sqlite3_stmt *post = NULL;
    if (prepare(w, "SELECT op_id, account_id, points FROM postings ORDER BY rowid", &post) ||
        prepare(w, "SELECT id, points FROM ops ORDER BY id", &ops.st) ||
        prepare(w,
                "SELECT op_id, SUM(CASE WHEN kind = 1 THEN points ELSE 0 END), "
                "SUM(CASE WHEN kind = 2 THEN points ELSE 0 END), "
                "SUM(CASE WHEN kind = 3 THEN points ELSE 0 END) FROM settle_entries "
                "GROUP BY op_id ORDER BY op_id",
                &settle.st))
        goto out;
    next(w, &ops);
    next(w, &settle);
    op_sums s = {0};
    int64_t op = INT64_MIN;
    int rc;
    while ((rc = sqlite3_step(post)) == SQLITE_ROW) {
        int64_t o = sqlite3_column_int64(post, 0);
        int64_t account = sqlite3_column_int64(post, 1);
        int64_t points = sqlite3_column_int64(post, 2);
        if (account > 0) {
            if (account <= p->max_id) p->post[account] = add(p->post[account], points);
        } else if (account < 0) {
            if (account >= -SYS_SPAN) p->sys_post[-account] = add(p->sys_post[-account], points);
            else p->sys_odd = true;
        }
        if (p->out_of_order) continue;
        if (o != op) {
            if (o < op) {
                p->out_of_order = true; /* the per-operation checks go to SQL */
                continue;
            }
            if (s.any) check_op(w, &ops, &settle, op, &s);
            check_before(w, &ops, &settle, o);
            op = o;
            s = (op_sums){0};
            s.any = true;
        }
        s.all = add(s.all, points);
        if (account > 0) s.customer = add(s.customer, points);
        if (account == -1 || (account == -6 && points < 0)) s.issued = add(s.issued, -points);
        if (account == -2 || (account == -6 && points > 0)) s.redeemed = add(s.redeemed, points);
        if (account == -3) s.expired = add(s.expired, points);
    }
    failed(w, rc);
    if (w->rc == SQLITE_OK && !p->out_of_order) {
        if (s.any) check_op(w, &ops, &settle, op, &s);
        check_before(w, &ops, &settle, INT64_MAX);
        /* An operation numbered INT64_MAX without postings. */
        if (ops.has || settle.has) check_op(w, &ops, &settle, INT64_MAX, &(op_sums){0});
    }
out:
    sqlite3_finalize(post);
    sqlite3_finalize(ops.st);
    sqlite3_finalize(settle.st);
    if (w->rc == SQLITE_OK && p->out_of_order) {
        static const int per_op[] = {INV_OP_SUM, INV_OP_POINTS, INV_ISSUE, INV_BURN, INV_EXPIRE};
        for (size_t i = 0; i < sizeof per_op / sizeof per_op[0]; i++) run_sql(w, per_op[i]);
    }
    return NULL;
}

/* Thread 2: lots, then accounts. */
static void *accounts_pass(void *arg)
{
    worker *w = arg;
    pass *p = w->p;
    sqlite3_stmt *st = NULL;
    int rc;
    if (prepare(w, "SELECT id, account_id, amount, remaining FROM lots ORDER BY id", &st)) return NULL;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t account = sqlite3_column_int64(st, 1);
        int64_t amount = sqlite3_column_int64(st, 2), remaining = sqlite3_column_int64(st, 3);
        if (remaining < 0 || remaining > amount)
            found(&p->f[INV_LOT_BOUNDS], sqlite3_column_int64(st, 0), remaining);
        if (account >= 1 && account <= p->max_id) p->bal[account] = add(p->bal[account], remaining);
    }
    failed(w, rc);
    sqlite3_finalize(st);
    if (w->rc != SQLITE_OK ||
        prepare(w, "SELECT id, balance, debt FROM accounts ORDER BY id", &st))
        return NULL;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        int64_t balance = sqlite3_column_int64(st, 1), debt = sqlite3_column_int64(st, 2);
        /* ids are within 1..max_id: the caller read min and max */
        int64_t open = add(p->bal[id], -debt);
        if (balance != open) found(&p->f[INV_LOTS], id, balance - open);
        if (debt < 0) found(&p->f[INV_DEBT], id, debt);
        p->bal[id] = balance;
        p->exists[id >> 3] |= (uint8_t)(1u << (id & 7));
        p->account_total = add(p->account_total, balance);
    }
    failed(w, rc);
    sqlite3_finalize(st);
    return NULL;
}

/* Reads what tells two connections' snapshots apart (rows are appended
 * to these tables by every change of a balance) into v[4]. */
static int probe(sqlite3 *db, int64_t v[4])
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT (SELECT max(rowid) FROM postings), (SELECT max(id) FROM ops), "
                                "(SELECT max(id) FROM lots), (SELECT max(id) FROM accounts)",
                                -1, &st, NULL);
    if (rc != SQLITE_OK) return rc;
    rc = sqlite3_step(st);
    for (int i = 0; i < 4; i++) v[i] = rc == SQLITE_ROW ? sqlite3_column_int64(st, i) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* A second connection reading the same ledger as `db` (whose read
 * transaction is open), in a read transaction; NULL if none can. */
static sqlite3 *open_reader(sqlite3 *db, const char *vfs)
{
    const char *path = sqlite3_db_filename(db, "main");
    if (path == NULL || path[0] == '\0') return NULL;
    sqlite3 *db2 = NULL;
    if (sqlite3_open_v2(path, &db2, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, vfs) != SQLITE_OK) {
        sqlite3_close(db2);
        return NULL;
    }
    sqlite3_busy_timeout(db2, 10000);
    return db2;
}

static sqlite3 *second_reader(sqlite3 *db, const char *vfs)
{
    sqlite3 *db2 = open_reader(db, vfs);
    if (db2 == NULL) return NULL;
    int64_t mine[4], theirs[4];
    if (sqlite3_exec(db2, "PRAGMA cache_size=-65536; BEGIN", NULL, NULL, NULL) == SQLITE_OK &&
        probe(db, mine) == SQLITE_OK && probe(db2, theirs) == SQLITE_OK &&
        memcmp(mine, theirs, sizeof mine) == 0)
        return db2;
    sqlite3_close(db2); /* rolls its read transaction back */
    return NULL;
}

int store_sqlite_file_check(sqlite3 *db, bool full, void (*report)(void *ctx, const char *line),
                            void *ctx, int64_t *problems)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, full ? "PRAGMA integrity_check(100)" : "PRAGMA quick_check(100)",
                                -1, &st, NULL);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *row = (const char *)sqlite3_column_text(st, 0);
        if (row == NULL || strcmp(row, "ok") == 0) continue;
        /* A row may hold several problems, one a line, after a heading. */
        for (const char *p = row, *end; *p; p = *end ? end + 1 : end) {
            end = strchr(p, '\n');
            if (end == NULL) end = p + strlen(p);
            int n = (int)(end - p);
            if (n == 0 || strncmp(p, "*** in database", 15) == 0) continue;
            char line[512];
            snprintf(line, sizeof line, "the database file is damaged: %.*s", n > 450 ? 450 : n, p);
            report(ctx, line);
            (*problems)++;
        }
    }
    if (rc == SQLITE_ROW || rc == SQLITE_OK) rc = SQLITE_DONE;
    int code = rc & 0xff;
    if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB) {
        char line[512];
        snprintf(line, sizeof line, "the database file is damaged: %.450s", sqlite3_errmsg(db));
        report(ctx, line);
        (*problems)++;
        rc = SQLITE_DONE;
    }
    sqlite3_finalize(st);
    return rc;
}

/* The file check beside the pass: its lines held until it is known
 * whether the ledger's are reported at all. */
typedef struct file_check {
    sqlite3 *db;
    int rc;
    int64_t problems;
    int n;
    char *lines[2 * STORE_INVARIANT_LINES_MAX];
    char err[256];
} file_check;

static void hold(void *ctx, const char *line)
{
    file_check *fc = ctx;
    if (fc->n < (int)(sizeof fc->lines / sizeof fc->lines[0]) &&
        (fc->lines[fc->n] = strdup(line)) != NULL)
        fc->n++;
}

static void *file_check_run(void *arg)
{
    file_check *fc = arg;
    fc->rc = store_sqlite_file_check(fc->db, false, hold, fc, &fc->problems);
    if (fc->rc != SQLITE_DONE) snprintf(fc->err, sizeof fc->err, "%s", sqlite3_errmsg(fc->db));
    return NULL;
}

static void report_all(pass *p, void (*report)(void *ctx, const char *line), void *ctx,
                       int64_t *problems)
{
    for (int c = 0; c < STORE_INVARIANTS_LEDGER; c++) {
        findings *f = &p->f[c];
        int64_t kept = f->count < STORE_INVARIANT_LINES_MAX ? f->count : STORE_INVARIANT_LINES_MAX;
        for (int64_t i = 0; i < kept; i++) {
            if (*problems < STORE_INVARIANT_LINES_MAX) {
                char line[256];
                snprintf(line, sizeof line, store_invariants[c].what, (long long)f->first[i].id,
                         (long long)f->first[i].amount);
                report(ctx, line);
            }
            (*problems)++;
        }
        *problems += f->count - kept;
    }
}

/* The accounts' id range: *ok false when not within 1..ARRAY_MAX. */
static int id_range(sqlite3 *db, int64_t *max_id, bool *ok)
{
    sqlite3_stmt *st;
    /* min and max of the rowid are two lookups, not a scan */
    int rc = sqlite3_prepare_v2(db, "SELECT min(id), max(id) FROM accounts", -1, &st, NULL);
    if (rc != SQLITE_OK) return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        bool empty = sqlite3_column_type(st, 1) == SQLITE_NULL;
        int64_t lo = sqlite3_column_int64(st, 0);
        *max_id = empty ? 0 : sqlite3_column_int64(st, 1);
        *ok = empty || (lo >= 1 && *max_id <= ARRAY_MAX);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

kp_err store_sqlite_verify_ledger(sqlite3 *db, const char *vfs, bool file_check_too, char *err,
                                  size_t errsize, void (*report)(void *ctx, const char *line),
                                  void *ctx, int64_t *problems, bool *file_ok)
{
    *file_ok = true;
    file_check *fc = file_check_too ? calloc(1, sizeof *fc) : NULL;
    pass *p = calloc(1, sizeof *p);
    if (p == NULL || (file_check_too && fc == NULL)) {
        free(p);
        free(fc);
        snprintf(err, errsize, "out of memory");
        return KP_ERR_NOMEM;
    }
    /* The file check on a connection of its own, beside the pass; where
     * none opens, first, on the store's (the pass then only if it is
     * whole, as it cannot read a damaged file). */
    worker w1 = {.p = p, .db = db}, w2 = {.p = p, .db = NULL};
    bool own = false;
    pthread_t fc_thread;
    bool fc_threaded = false;
    if (fc) {
        fc->db = open_reader(db, vfs);
        fc_threaded = fc->db && pthread_create(&fc_thread, NULL, file_check_run, fc) == 0;
        if (!fc_threaded) {
            if (fc->db) sqlite3_close(fc->db);
            fc->db = db;
            file_check_run(fc);
            fc->db = NULL;
            if (fc->rc != SQLITE_DONE || fc->problems > 0) goto file_done;
        }
    }
    own = sqlite3_get_autocommit(db) != 0;
    if (own && sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) own = false;
    bool fits = false;
    w1.rc = id_range(db, &p->max_id, &fits);
    if (w1.rc == SQLITE_OK && fits) {
        size_t n = (size_t)p->max_id + 1;
        p->post = calloc(n, sizeof *p->post);
        p->bal = calloc(n, sizeof *p->bal);
        p->exists = calloc(n / 8 + 1, 1);
        fits = p->post && p->bal && p->exists;
    }
    if (w1.rc != SQLITE_OK) {
        snprintf(w1.err, sizeof w1.err, "%s", sqlite3_errmsg(db));
    } else if (!fits) {
        /* Sparse or huge account ids (or no memory): the SQL, as before. */
        for (int c = 0; c < STORE_INVARIANTS_LEDGER && w1.rc == SQLITE_OK; c++) run_sql(&w1, c);
    } else {
        w2.db = own ? second_reader(db, vfs) : NULL;
        pthread_t t;
        bool threaded = w2.db != NULL && pthread_create(&t, NULL, accounts_pass, &w2) == 0;
        if (!threaded && w2.db) {
            sqlite3_close(w2.db);
            w2.db = NULL;
        }
        postings_pass(&w1);
        if (threaded) pthread_join(t, NULL);
        else if (w1.rc == SQLITE_OK) {
            w2.db = db;
            accounts_pass(&w2);
            w2.db = NULL;
        }
        if (w2.db) sqlite3_close(w2.db);
        if (w1.rc == SQLITE_OK && w2.rc != SQLITE_OK) {
            w1.rc = w2.rc;
            memcpy(w1.err, w2.err, sizeof w1.err);
        }
        /* Joined: balances against postings, system accounts, the total. */
        for (int64_t id = 1; w1.rc == SQLITE_OK && id <= p->max_id; id++)
            if ((p->exists[id >> 3] >> (id & 7)) & 1 && p->bal[id] != p->post[id])
                found(&p->f[INV_BALANCE], id, p->bal[id] - p->post[id]);
        sqlite3_stmt *st = NULL;
        int64_t sys_total = 0;
        if (w1.rc == SQLITE_OK &&
            prepare(&w1, "SELECT id, balance FROM sys_accounts ORDER BY id", &st) == SQLITE_OK) {
            int rc;
            while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                int64_t id = sqlite3_column_int64(st, 0), balance = sqlite3_column_int64(st, 1);
                int64_t sum = id < 0 && id >= -SYS_SPAN ? p->sys_post[-id] : 0;
                if (balance != sum && !p->sys_odd) found(&p->f[INV_SYS], id, balance - sum);
                sys_total = add(sys_total, balance);
            }
            failed(&w1, rc);
            sqlite3_finalize(st);
        }
        if (w1.rc == SQLITE_OK && p->sys_odd) run_sql(&w1, INV_SYS);
        int64_t total = add(p->account_total, sys_total);
        if (w1.rc == SQLITE_OK && total != 0) found(&p->f[INV_TOTAL], 0, total);
    }
    if (own) sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (fc_threaded) {
        pthread_join(fc_thread, NULL);
        sqlite3_close(fc->db);
    }
file_done:;
    kp_err e = KP_OK;
    if (fc && fc->rc != SQLITE_DONE) {
        snprintf(err, errsize, "%s", fc->err);
        e = store_sqlite_fail(db, err, 0, fc->rc); /* the code only: err keeps its message */
    } else if (fc && fc->problems > 0) {
        /* A damaged file: its lines, not what the ledger's read of it says. */
        for (int i = 0; i < fc->n; i++) report(ctx, fc->lines[i]);
        *problems += fc->problems;
        *file_ok = false;
    } else if (w1.rc != SQLITE_OK) {
        snprintf(err, errsize, "%s", w1.err);
        e = store_sqlite_fail(db, err, 0, w1.rc);
    } else {
        report_all(p, report, ctx, problems);
    }
    if (fc)
        for (int i = 0; i < fc->n; i++) free(fc->lines[i]);
    free(fc);
    free(p->post);
    free(p->bal);
    free(p->exists);
    free(p);
    return e;
}
