/*
 * store_pg_util.c: what the files of the PostgreSQL backend share
 * (store_pg_int.h): named statements prepared once per connection,
 * parameters, column readers, pipelines, and the one mapping of SQLSTATE to
 * kp_err.
 */
#include "store_pg_int.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static atomic_int next_slot = 1;
static atomic_uint_least64_t round_trips;

uint64_t pg_round_trips(void) { return atomic_load_explicit(&round_trips, memory_order_relaxed); }

static void count_trip(void) { atomic_fetch_add_explicit(&round_trips, 1, memory_order_relaxed); }

/* ---- parameters ---- */

static bool p_room(pg_params *p)
{
    /* A statement with more parameters than PG_PARAMS_MAX is a bug of this
     * backend: pg_run() refuses it (p->n goes past the limit). */
    if (p->n < PG_PARAMS_MAX) return true;
    p->n = PG_PARAMS_MAX + 1;
    return false;
}

void pg_p_int(pg_params *p, int64_t v)
{
    if (!p_room(p)) return;
    snprintf(p->numbers[p->n], sizeof p->numbers[p->n], "%lld", (long long)v);
    p->values[p->n] = p->numbers[p->n];
    p->lengths[p->n] = 0;
    p->formats[p->n] = 0;
    p->n++;
}

void pg_p_text(pg_params *p, const char *v)
{
    if (!p_room(p)) return;
    p->values[p->n] = v;
    p->lengths[p->n] = 0;
    p->formats[p->n] = 0;
    p->n++;
}

void pg_p_bytes(pg_params *p, const void *v, size_t n)
{
    if (!p_room(p)) return;
    p->values[p->n] = v;
    p->lengths[p->n] = v ? (int)n : 0;
    p->formats[p->n] = 1;
    p->n++;
}

void pg_p_null(pg_params *p) { pg_p_text(p, NULL); }

/* ---- failures ---- */

kp_err pg_fail(pg_store *s, const PGresult *r)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (msg == NULL) msg = PQerrorMessage(s->conn);
    if (msg == NULL || *msg == '\0') msg = "the connection to PostgreSQL failed";
    snprintf(s->sqlstate, sizeof s->sqlstate, "%s", state ? state : "");
    const char *constraint = r ? PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME) : NULL;
    snprintf(s->constraint, sizeof s->constraint, "%s", constraint ? constraint : "");
    /* libpq's own messages end with a newline. */
    int len = (int)strcspn(msg, "\n");
    if (state)
        snprintf(s->base.last_error, sizeof s->base.last_error, "%s: %.*s", state, len, msg);
    else
        snprintf(s->base.last_error, sizeof s->base.last_error, "%.*s", len, msg);
    if (state == NULL) return KP_ERR_IO;
    if (strncmp(state, "23", 2) == 0) return KP_ERR_CONFLICT;
    if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 || strcmp(state, "55P03") == 0)
        return KP_ERR_BUSY;
    if (strncmp(state, "53", 2) == 0) return KP_ERR_IO;
    return KP_ERR_IO;
}

const char *pg_last_sqlstate(const pg_store *s) { return s->sqlstate; }

/* PostgreSQL answers COMMIT of a transaction that had failed with the tag
 * ROLLBACK and no error: for Kopilka that is a failed commit. */
static bool commit_rolled_back(const char *sql, PGresult *r)
{
    return strcmp(sql, "COMMIT") == 0 && strcmp(PQcmdStatus(r), "ROLLBACK") == 0;
}

static kp_err commit_failed(pg_store *s)
{
    snprintf(s->base.last_error, sizeof s->base.last_error,
             "the transaction had failed and was rolled back, not committed");
    snprintf(s->sqlstate, sizeof s->sqlstate, "25P02");
    s->constraint[0] = '\0';
    return KP_ERR_IO;
}

static kp_err check_result(pg_store *s, const char *sql, PGresult *r, PGresult **out)
{
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if ((st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) && commit_rolled_back(sql, r)) {
        PQclear(r);
        return commit_failed(s);
    }
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        if (out) *out = r;
        else PQclear(r);
        return KP_OK;
    }
    kp_err err = pg_fail(s, r);
    PQclear(r);
    return err;
}

/* ---- statements ---- */

static int stmt_slot(pg_store *s, pg_stmt *stmt)
{
    int slot = atomic_load_explicit((_Atomic int *)&stmt->slot, memory_order_acquire);
    if (slot > 0) return slot;
    int mine = atomic_fetch_add(&next_slot, 1);
    int expected = 0;
    if (!atomic_compare_exchange_strong((_Atomic int *)&stmt->slot, &expected, mine))
        mine = expected; /* another thread gave it a slot first; ours is wasted */
    if (mine >= PG_STMTS_MAX) {
        snprintf(s->base.last_error, sizeof s->base.last_error,
                 "more than %d distinct statements: raise PG_STMTS_MAX (store_pg_int.h)",
                 PG_STMTS_MAX - 1);
        return -1;
    }
    return mine;
}

static void stmt_name(int slot, char name[16]) { snprintf(name, 16, "kp%d", slot); }

static kp_err check_params(pg_store *s, const pg_stmt *stmt, const pg_params *p)
{
    int n = p ? p->n : 0;
    if (n == stmt->n_params) return KP_OK;
    snprintf(s->base.last_error, sizeof s->base.last_error,
             "statement given %d parameters, it takes %d: %.120s", n, stmt->n_params, stmt->sql);
    return KP_ERR_INTERNAL;
}

kp_err pg_run(pg_store *s, pg_stmt *stmt, const pg_params *p, PGresult **out)
{
    if (out) *out = NULL;
    s->sqlstate[0] = '\0';
    kp_err err = check_params(s, stmt, p);
    if (err) return err;
    if (s->n_deferred) { /* one round trip for them and this */
        PGresult *r = NULL;
        if ((err = pg_pipe_begin(s, s->pipe))) return err;
        pg_pipe_query(s, s->pipe, stmt, p, &r);
        if ((err = pg_pipe_end(s, s->pipe))) return err;
        if (out) *out = r;
        else PQclear(r);
        return KP_OK;
    }
    int slot = stmt_slot(s, stmt);
    if (slot < 0) return KP_ERR_INTERNAL;
    char name[16];
    stmt_name(slot, name);
    if (!s->prepared[slot]) {
        count_trip();
        err = check_result(s, "", PQprepare(s->conn, name, stmt->sql, stmt->n_params, NULL),
                           NULL);
        if (err) return err;
        s->prepared[slot] = true;
    }
    count_trip();
    PGresult *r = PQexecPrepared(s->conn, name, stmt->n_params, p ? p->values : NULL,
                                 p ? p->lengths : NULL, p ? p->formats : NULL, 0);
    return check_result(s, stmt->sql, r, out);
}

kp_err pg_exec(pg_store *s, const char *sql)
{
    kp_err err = pg_flush(s);
    if (err) return err;
    s->sqlstate[0] = '\0';
    count_trip();
    return check_result(s, sql, PQexec(s->conn, sql), NULL);
}

int64_t pg_changes(const PGresult *r)
{
    const char *n = PQcmdTuples((PGresult *)r);
    return n && *n ? strtoll(n, NULL, 10) : 0;
}

kp_err pg_run_one(pg_store *s, pg_stmt *stmt, const pg_params *p)
{
    PGresult *r;
    kp_err err = pg_run(s, stmt, p, &r);
    if (err) return err;
    int64_t n = pg_changes(r);
    PQclear(r);
    return n == 0 ? KP_ERR_NOT_FOUND : KP_OK;
}

/* ---- pipelines ---- */

/* KOPILKA_PG_PIPELINE=off runs a pipeline's statements one by one, each
 * its own round trip, with the same results: to measure what the pipeline
 * saves, or to rule it out when chasing a problem. Read once. */
static bool pipelines_off(void)
{
    static atomic_int off = -1;
    int v = atomic_load_explicit(&off, memory_order_relaxed);
    if (v < 0) {
        const char *env = getenv("KOPILKA_PG_PIPELINE");
        v = env != NULL && strcmp(env, "off") == 0;
        atomic_store_explicit(&off, v, memory_order_relaxed);
    }
    return v;
}

kp_err pg_pipe_begin(pg_store *s, pg_pipe *pp)
{
    pp->n = 0;
    pp->err = KP_OK;
    pp->one_by_one = pipelines_off();
    s->sqlstate[0] = '\0';
    /* The deferred statements lead; taken off first, as sending them in
     * one-by-one mode runs pg_run(). */
    pg_stmt *lead[4];
    int n_lead = s->n_deferred;
    memcpy(lead, s->deferred, sizeof lead);
    s->n_deferred = 0;
    if (!pp->one_by_one && PQenterPipelineMode(s->conn) != 1) return pg_fail(s, NULL);
    for (int i = 0; i < n_lead; i++) pg_pipe_send(s, pp, lead[i], NULL, -1, NULL);
    return KP_OK;
}

void pg_defer(pg_store *s, pg_stmt *stmt)
{
    enum { MAX = sizeof s->deferred / sizeof s->deferred[0] };
    /* A failure of the flush leaves the transaction aborted: the server
     * says so to whatever runs next, which fails with it. */
    if (s->n_deferred == MAX) (void)pg_flush(s);
    if (s->n_deferred < MAX) s->deferred[s->n_deferred++] = stmt;
}

kp_err pg_flush(pg_store *s)
{
    if (s->n_deferred == 0) return KP_OK;
    kp_err err = pg_pipe_begin(s, s->pipe);
    return err ? err : pg_pipe_end(s, s->pipe);
}

bool pg_undefer(pg_store *s, const pg_stmt *stmt)
{
    if (s->n_deferred == 0 || s->deferred[s->n_deferred - 1] != stmt) return false;
    s->n_deferred--;
    return true;
}

bool pg_deferred(const pg_store *s, const pg_stmt *stmt)
{
    for (int i = 0; i < s->n_deferred; i++)
        if (s->deferred[i] == stmt) return true;
    return false;
}

void pg_forget_deferred(pg_store *s) { s->n_deferred = 0; }

/* pipe_queue() without a pipeline: runs the statement now. The first
 * failure is kept and what follows is skipped, as the server would. */
static void run_now(pg_store *s, pg_pipe *pp, pg_stmt *stmt, const pg_params *p, int want_rows,
                    const char *what, PGresult **out)
{
    PGresult *r = NULL;
    kp_err err = pg_run(s, stmt, p, &r);
    if (err == KP_OK && want_rows >= 0 && pg_changes(r) != want_rows) {
        snprintf(s->base.last_error, sizeof s->base.last_error, "%s: touched %lld rows, not %d",
                 what ? what : "a statement", (long long)pg_changes(r), want_rows);
        err = KP_ERR_INTERNAL;
    }
    if (err == KP_OK && out) {
        *out = r;
        pp->items[pp->n < PG_PIPE_MAX ? pp->n++ : pp->n - 1] =
            (typeof(pp->items[0])){.want_rows = -1, .out = out};
        return;
    }
    PQclear(r);
    pp->err = err;
}

static bool pipe_room(pg_store *s, pg_pipe *pp)
{
    if (pp->n < PG_PIPE_MAX) return true;
    if (pp->err == KP_OK) {
        snprintf(s->base.last_error, sizeof s->base.last_error,
                 "more than %d statements in one pipeline", PG_PIPE_MAX);
        pp->err = KP_ERR_INTERNAL;
    }
    return false;
}

static void pipe_queue(pg_store *s, pg_pipe *pp, pg_stmt *stmt, const pg_params *p,
                       int want_rows, const char *what, PGresult **out);

void pg_pipe_send(pg_store *s, pg_pipe *pp, pg_stmt *stmt, const pg_params *p, int want_rows,
                  const char *what)
{
    pipe_queue(s, pp, stmt, p, want_rows, what, NULL);
}

void pg_pipe_query(pg_store *s, pg_pipe *pp, pg_stmt *stmt, const pg_params *p, PGresult **out)
{
    *out = NULL;
    pipe_queue(s, pp, stmt, p, -1, NULL, out);
}

static void pipe_queue(pg_store *s, pg_pipe *pp, pg_stmt *stmt, const pg_params *p,
                       int want_rows, const char *what, PGresult **out)
{
    if (pp->err) return; /* after a failed send nothing more is queued */
    if (pp->one_by_one) {
        run_now(s, pp, stmt, p, want_rows, what, out);
        return;
    }
    kp_err err = check_params(s, stmt, p);
    int slot = err ? -1 : stmt_slot(s, stmt);
    if (slot < 0) {
        pp->err = err ? err : KP_ERR_INTERNAL;
        return;
    }
    char name[16];
    stmt_name(slot, name);
    if (!s->prepared[slot]) {
        if (!pipe_room(s, pp)) return;
        if (PQsendPrepare(s->conn, name, stmt->sql, stmt->n_params, NULL) != 1) {
            pp->err = pg_fail(s, NULL);
            return;
        }
        /* Assumed prepared from here on; pg_pipe_end() takes it back if the
         * server refused it. */
        s->prepared[slot] = true;
        pp->items[pp->n] = (typeof(pp->items[0])){.prepared_slot = slot, .want_rows = -1};
        pp->n++;
    }
    if (!pipe_room(s, pp)) return;
    if (PQsendQueryPrepared(s->conn, name, stmt->n_params, p ? p->values : NULL,
                            p ? p->lengths : NULL, p ? p->formats : NULL, 0) != 1) {
        pp->err = pg_fail(s, NULL);
        return;
    }
    pp->items[pp->n] = (typeof(pp->items[0])){.want_rows = want_rows, .what = what, .out = out,
                                               .commit = strcmp(stmt->sql, "COMMIT") == 0};
    pp->n++;
}

kp_err pg_pipe_end(pg_store *s, pg_pipe *pp)
{
    kp_err err = pp->err;
    if (pp->one_by_one) {
        if (err) /* results kept before the failure go back */
            for (int k = 0; k < pp->n; k++) {
                PQclear(*pp->items[k].out);
                *pp->items[k].out = NULL;
            }
        return err;
    }
    char first_error[sizeof s->base.last_error];
    char first_state[sizeof s->sqlstate], first_constraint[sizeof s->constraint];
    snprintf(first_error, sizeof first_error, "%s", err ? s->base.last_error : "");
    snprintf(first_state, sizeof first_state, "%s", err ? s->sqlstate : "");
    snprintf(first_constraint, sizeof first_constraint, "%s", err ? s->constraint : "");
    count_trip();
    if (PQpipelineSync(s->conn) != 1) {
        kp_err e = pg_fail(s, NULL);
        PQexitPipelineMode(s->conn);
        return err ? err : e;
    }
    /* Each queued entry gives one result and then NULL; the sync gives
     * PGRES_PIPELINE_SYNC, not followed by NULL. */
    int i = 0;
    bool broken = false;
    for (;;) {
        PGresult *r = PQgetResult(s->conn);
        if (r == NULL) {
            if (PQstatus(s->conn) == CONNECTION_BAD || i >= pp->n) {
                broken = true;
                break;
            }
            i++;
            continue;
        }
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            break;
        }
        if (i < pp->n) {
            bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
            if (!ok && pp->items[i].prepared_slot > 0)
                s->prepared[pp->items[i].prepared_slot] = false;
            if (!ok && st != PGRES_PIPELINE_ABORTED && err == KP_OK) {
                err = pg_fail(s, r);
                snprintf(first_error, sizeof first_error, "%s", s->base.last_error);
                snprintf(first_state, sizeof first_state, "%s", s->sqlstate);
                snprintf(first_constraint, sizeof first_constraint, "%s", s->constraint);
            } else if (ok && err == KP_OK && pp->items[i].commit &&
                       strcmp(PQcmdStatus(r), "ROLLBACK") == 0) {
                err = commit_failed(s);
                snprintf(first_error, sizeof first_error, "%s", s->base.last_error);
                snprintf(first_state, sizeof first_state, "%s", s->sqlstate);
            } else if (ok && err == KP_OK && pp->items[i].out) {
                *pp->items[i].out = r; /* the caller's now */
                r = NULL;
            } else if (ok && err == KP_OK && pp->items[i].want_rows >= 0 &&
                       pg_changes(r) != pp->items[i].want_rows) {
                snprintf(first_error, sizeof first_error, "%s: touched %lld rows, not %d",
                         pp->items[i].what ? pp->items[i].what : "a statement",
                         (long long)pg_changes(r), pp->items[i].want_rows);
                err = KP_ERR_INTERNAL;
            } else if (st == PGRES_PIPELINE_ABORTED && pp->items[i].prepared_slot > 0) {
                s->prepared[pp->items[i].prepared_slot] = false;
            }
        }
        PQclear(r);
    }
    if (broken) {
        kp_err e = pg_fail(s, NULL);
        if (err == KP_OK) {
            err = e;
            snprintf(first_error, sizeof first_error, "%s", s->base.last_error);
        }
        /* Nothing sent in this pipeline can be trusted to be prepared. */
        for (int k = 0; k < pp->n; k++)
            if (pp->items[k].prepared_slot > 0) s->prepared[pp->items[k].prepared_slot] = false;
    }
    PQexitPipelineMode(s->conn);
    if (err)
        for (int k = 0; k < pp->n; k++)
            if (pp->items[k].out) {
                PQclear(*pp->items[k].out);
                *pp->items[k].out = NULL;
            }
    if (err) {
        snprintf(s->base.last_error, sizeof s->base.last_error, "%s", first_error);
        snprintf(s->sqlstate, sizeof s->sqlstate, "%s", first_state);
        snprintf(s->constraint, sizeof s->constraint, "%s", first_constraint);
    }
    return err;
}

/* ---- columns ---- */

bool pg_is_null(const PGresult *r, int row, int col) { return PQgetisnull(r, row, col) != 0; }

int64_t pg_int(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col)) return 0;
    const char *v = PQgetvalue(r, row, col);
    if (*v == 't') return 1; /* a boolean column */
    if (*v == 'f') return 0;
    return strtoll(v, NULL, 10);
}

void pg_text(const PGresult *r, int row, int col, char *out, size_t size)
{
    snprintf(out, size, "%s", PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col));
}

char *pg_text_dup(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : strdup(PQgetvalue(r, row, col));
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

size_t pg_bytes(const PGresult *r, int row, int col, void *out, size_t cap)
{
    if (PQgetisnull(r, row, col)) return 0;
    const char *v = PQgetvalue(r, row, col);
    uint8_t *o = out;
    if (v[0] == '\\' && v[1] == 'x') { /* bytea_output = hex, the default */
        size_t len = (size_t)PQgetlength(r, row, col) - 2;
        if (len % 2 || len / 2 > cap) return (size_t)-1;
        for (size_t i = 0; i < len / 2; i++) {
            int hi = hex_digit(v[2 + 2 * i]), lo = hex_digit(v[3 + 2 * i]);
            if (hi < 0 || lo < 0) return (size_t)-1;
            o[i] = (uint8_t)(hi << 4 | lo);
        }
        return len / 2;
    }
    size_t len = 0; /* bytea_output = escape */
    unsigned char *raw = PQunescapeBytea((const unsigned char *)v, &len);
    if (raw == NULL || len > cap) {
        PQfreemem(raw);
        return (size_t)-1;
    }
    memcpy(out, raw, len);
    PQfreemem(raw);
    return len;
}

/* ---- locations ---- */

void pg_location_safe(const char *location, char *out, size_t size)
{
    /* postgresql://user:secret@host/db?password=secret&... and the
     * key=value form "host=... password=secret". */
    const char *scheme = strstr(location, "://");
    const char *rest = scheme ? scheme + 3 : NULL;
    const char *at = rest ? strchr(rest, '@') : NULL;
    const char *slash = rest ? strchr(rest, '/') : NULL;
    const char *colon = NULL;
    if (at && (slash == NULL || at < slash)) colon = memchr(rest, ':', (size_t)(at - rest));
    size_t o = 0;
    for (const char *p = location; *p && o + 1 < size;) {
        if (colon && p == colon + 1) {
            int n = snprintf(out + o, size - o, "***");
            o += (size_t)n < size - o ? (size_t)n : size - o - 1;
            p = at;
            continue;
        }
        bool starts = (p == location || p[-1] == '?' || p[-1] == '&' || p[-1] == ' ');
        if (starts && strncmp(p, "password=", 9) == 0) {
            int n = snprintf(out + o, size - o, "password=***");
            o += (size_t)n < size - o ? (size_t)n : size - o - 1;
            p += 9;
            while (*p && *p != '&' && *p != ' ') p++;
            continue;
        }
        out[o++] = *p++;
    }
    if (size) out[o < size ? o : size - 1] = '\0';
}
