/*
 * store_pg_int.h: what the files of the PostgreSQL backend share
 * (store_pg.c, store_pg_people.c, store_pg_triggers.c, store_pg_notify.c), as
 * store_sqlite_int.h does for SQLite: the connection, one way to prepare and
 * run a statement, one way to read a column, one mapping of SQLSTATE to
 * kp_err.
 *
 * Statements are named `static pg_stmt` objects; each is prepared on a
 * connection the first time it runs there (PQprepare) and then executed by
 * name (PQexecPrepared), so the SQL text crosses the wire once per
 * connection. Parameters are sent as text, bytea as binary; results come back
 * in text format and are read with pg_int()/pg_text()/pg_bytes().
 *
 * Ownership: a PGresult returned by pg_run() belongs to the caller, who
 * PQclear()s it. Nothing here keeps a pointer into a result.
 */
#ifndef KOPILKA_STORE_PG_INT_H
#define KOPILKA_STORE_PG_INT_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kopilka/store.h>

#include "store_pg.h"

enum { PG_PARAMS_MAX = 24, PG_STMTS_MAX = 512 };

/* One named statement, `static pg_stmt q = {"SELECT ... $1", 1, 0};`.
 * `slot` is given out once per process at the first use (an atomic
 * counter) and indexes pg_store.prepared. */
typedef struct pg_stmt {
    const char *sql;
    int n_params;
    int slot; /* 0 = not given yet; slots start at 1 */
} pg_stmt;

typedef struct pg_store {
    kp_store base;
    PGconn *conn;
    bool in_txn;              /* between begin() and commit()/rollback() */
    int savepoints;           /* open savepoint depth */
    bool prepared[PG_STMTS_MAX];
    char sqlstate[6];         /* of the last failure, "" when none */
    char constraint[64];      /* the constraint it broke, "" when none */
    char location[256];       /* the location, password elided, for messages */
    bool serving;             /* a group writer holding the serving lock (store_pg.c) */
    /* System accounts' deltas summed in memory and written right before
     * COMMIT (store_pg.c), as SQLite's backend does; `sys_saved` is the
     * state at the last savepoint. Indexed by -id (1..-KP_SYS__MIN). */
    int64_t sys_pending[1 - KP_SYS__MIN];
    int64_t sys_saved[1 - KP_SYS__MIN];
    struct pg_pipe *pipe;     /* the connection's pipeline (store_pg.c) */
    /* BEGIN, SAVEPOINT, RELEASE not sent yet: they go out in the round trip
     * of the next statement (pg_defer()). */
    struct pg_stmt *deferred[4];
    int n_deferred;
    struct pg_people *people;
    struct pg_triggers *triggers;
} pg_store;

/* Parameters of one statement, built with pg_p_*(): text for numbers and
 * strings, binary for bytea. The struct owns the text of numbers. */
typedef struct pg_params {
    int n;
    const char *values[PG_PARAMS_MAX];
    int lengths[PG_PARAMS_MAX];
    int formats[PG_PARAMS_MAX];
    char numbers[PG_PARAMS_MAX][24];
} pg_params;

void pg_p_int(pg_params *p, int64_t v);
void pg_p_text(pg_params *p, const char *v);          /* NULL binds SQL NULL */
void pg_p_bytes(pg_params *p, const void *v, size_t n); /* NULL binds SQL NULL */
void pg_p_null(pg_params *p);

/* Runs a statement. On success returns KP_OK and, when `out` is not NULL,
 * the result (PGRES_TUPLES_OK or PGRES_COMMAND_OK) in *out for the caller to
 * PQclear; with `out` NULL the result is cleared here. On failure sets
 * s->base.last_error to the server's message and maps the SQLSTATE with
 * pg_fail(); *out is NULL. */
kp_err pg_run(pg_store *s, pg_stmt *stmt, const pg_params *p, PGresult **out);
/* Runs SQL text with no parameters and no result rows (DDL, SAVEPOINT),
 * after any deferred statements (pg_flush()). */
kp_err pg_exec(pg_store *s, const char *sql);

/* Deferred statements: a statement without parameters or rows (BEGIN,
 * SAVEPOINT, RELEASE) that need not cost a round trip of its own. It is
 * sent in front of the next statement that runs (pg_run(), a pipeline, or
 * pg_flush()), in its round trip; a failure of it is that statement's
 * failure. At most four wait; a fifth flushes them first. */
void pg_defer(pg_store *s, pg_stmt *stmt);
/* Code that talks to s->conn itself (PQexec, COPY) calls pg_flush() first:
 * a transaction begun by begin() may not have reached the server yet. */
/* Sends the deferred statements now (nothing when there are none). */
kp_err pg_flush(pg_store *s);
/* When `stmt` is the last statement deferred, drops it unsent (a SAVEPOINT
 * with nothing after it has nothing to roll back to) and says true. */
bool pg_undefer(pg_store *s, const pg_stmt *stmt);
/* True when `stmt` waits unsent. */
bool pg_deferred(const pg_store *s, const pg_stmt *stmt);
/* Drops every deferred statement unsent (a rollback). */
void pg_forget_deferred(pg_store *s);
/* pg_run() for a statement that must touch exactly one row (an UPDATE of a
 * row the caller knows exists): KP_ERR_NOT_FOUND when it touched none. */
kp_err pg_run_one(pg_store *s, pg_stmt *stmt, const pg_params *p);
/* The rows a command touched (PQcmdTuples), 0 when it says nothing. */
int64_t pg_changes(const PGresult *r);

/* Pipeline mode (libpq >= 14): several statements sent at once and one
 * sync, one round trip for all. pg_pipe_begin() enters it; pg_pipe_send()
 * queues a statement (preparing it first on this connection when needed,
 * in the same pipeline); pg_pipe_end() sends the sync and reads every
 * result in order, checks that a statement queued with `want_rows` >= 0
 * touched exactly that many rows (KP_ERR_INTERNAL with `what` otherwise),
 * and leaves pipeline mode. A COMMIT in a pipeline that the server answers
 * ROLLBACK (the transaction had failed) is a failure. After a failure the server skips the rest of
 * the pipeline; pg_pipe_end() reports the first failure. At most
 * PG_PIPE_MAX statements a pipeline. With KOPILKA_PG_PIPELINE=off in the
 * environment each statement runs at once instead, its own round trip, with
 * the same results (to measure what pipelining saves). */
enum { PG_PIPE_MAX = 640 };
typedef struct pg_pipe {
    int n;       /* entries queued, prepares included */
    bool one_by_one; /* KOPILKA_PG_PIPELINE=off: each statement runs at once */
    kp_err err;  /* the first failure while sending; pg_pipe_end() reports it */
    struct {
        int prepared_slot; /* > 0: this entry is the PQsendPrepare of that slot */
        int want_rows;     /* -1: any */
        const char *what;  /* names the row in the message of a row-count mismatch */
        PGresult **out;    /* pg_pipe_query(): where its result goes */
        bool commit;       /* a COMMIT: answered ROLLBACK, it failed */
    } items[PG_PIPE_MAX];
} pg_pipe;
kp_err pg_pipe_begin(pg_store *s, pg_pipe *pp);
void pg_pipe_send(pg_store *s, pg_pipe *pp, pg_stmt *stmt, const pg_params *p, int want_rows,
                  const char *what);
/* Queues a statement whose rows the caller reads: after pg_pipe_end()
 * returns KP_OK, *out holds its result (the caller PQclear()s it); after a
 * failure *out is NULL. */
void pg_pipe_query(pg_store *s, pg_pipe *pp, pg_stmt *stmt, const pg_params *p, PGresult **out);
kp_err pg_pipe_end(pg_store *s, pg_pipe *pp);
/* Round trips to the server made by this process so far (each
 * PQexecPrepared, PQprepare, PQexec and pipeline sync counts one). */
uint64_t pg_round_trips(void);

/* Maps a failed result (or a broken connection when r is NULL):
 * 23505 unique_violation and 23xxx constraints -> KP_ERR_CONFLICT,
 * 40001 serialization_failure and 40P01 deadlock_detected, 55P03
 * lock_not_available -> KP_ERR_BUSY (the caller may retry the unit of work),
 * 53xxx insufficient resources -> KP_ERR_IO, everything else -> KP_ERR_IO.
 * Writes "SQLSTATE: message" into s->base.last_error. */
kp_err pg_fail(pg_store *s, const PGresult *r);
/* The SQLSTATE of the last failure on this connection ("" if none). */
const char *pg_last_sqlstate(const pg_store *s);

/* Column readers; a NULL column reads as 0, "" or zero bytes. */
int64_t pg_int(const PGresult *r, int row, int col);
bool pg_is_null(const PGresult *r, int row, int col);
void pg_text(const PGresult *r, int row, int col, char *out, size_t size);
char *pg_text_dup(const PGresult *r, int row, int col); /* malloc'd; NULL when NULL */
/* Decodes a bytea column into out[cap]; returns the length (0 for NULL),
 * or (size_t)-1 when it does not fit. */
size_t pg_bytes(const PGresult *r, int row, int col, void *out, size_t cap);

/* The parts' tables. store_pg.c keeps the list of versioned migrations
 * (table kopilka_schema); its first migration runs its own DDL, then these
 * two. A later change to a part's tables is a new migration in that list,
 * never an edit of these strings. */
extern const char store_pg_people_schema[];
extern const char store_pg_triggers_schema[];
/* The outbox's tables (store_pg_notify.c), created by migration 2. */
extern const char store_pg_notify_schema[];
/* The family invitations (store_pg_people.c), created by migration 3. */
extern const char store_pg_people_schema_3[];
/* Staff bound to a partner, ops by store (store_pg_people.c), migration 15. */
extern const char store_pg_people_schema_15[];

/* The parts' open and close, called by store_pg_open() and close: each may
 * keep state of its own in s->people / s->triggers. close() is called even
 * when open() was not, or failed: it must accept its pointer NULL. */
kp_err store_pg_people_open(pg_store *s);
void store_pg_people_close(pg_store *s);
kp_err store_pg_triggers_open(pg_store *s);
void store_pg_triggers_close(pg_store *s);
extern const kp_triggers_ops store_pg_triggers_ops;
/* The people part of verify (store_pg_people.c): the audit chain, every
 * entry's hash recomputed and linked to the one before, no number missing;
 * one line per problem to report(ctx, line), added to *problems. */
kp_err store_pg_people_verify(pg_store *s, void (*report)(void *ctx, const char *line), void *ctx,
                              int64_t *problems);
extern const struct kp_people_ops store_pg_people_ops;
/* The reports (report.h), in store_pg_people.c beside the dashboard. */
extern const struct kp_report_ops store_pg_report_ops;
extern const struct kp_notify_ops store_pg_notify_ops;
/* The sales history (store_pg_sales.c), its tables created by migration 5. */
extern const char store_pg_sales_schema[];
extern const char store_pg_sales_customer[];
extern const struct kp_sales_ops store_pg_sales_ops;
/* The rewards catalog (store_pg_catalog.c), its tables created by migration 8. */
extern const char store_pg_catalog_schema[];
extern const struct kp_catalog_ops store_pg_catalog_ops;
/* Prize draws (store_pg_draws.c), their table created by migration 9. */
extern const char store_pg_draws_schema[];
extern const struct kp_draws_ops store_pg_draws_ops;

/* In SQL: the id of the operation inserted earlier in the same pipeline
 * (op_insert_apply(), op_insert() with an event): its identity sequence's
 * value in this session. */
#define OP_JUST_INSERTED "currval(pg_get_serial_sequence('ops', 'id'))"

/* kp_op_row.notify (store_pg_notify.c): queues the insert of an
 * operation's event in the pipeline right after the operation's own insert
 * (its key "op:<id>" and op_id from the ops sequence's current value), so
 * both go out in one round trip; *out receives the RETURNING result. After
 * the pipeline succeeded, store_pg_notify_op_event_done() sets the event's
 * op_id, key and id (0 when the key was stored already) from the
 * operation's id and that result (r may be NULL). */
void store_pg_notify_op_event_send(pg_store *s, pg_pipe *pp, const struct kp_notify_event *ev,
                                   PGresult **out);
void store_pg_notify_op_event_done(struct kp_notify_event *ev, int64_t op_id, PGresult *r);

/* store_pg_open() is declared in store_pg.h. */
/* Writes `location` into out[size] with any password replaced by "***"
 * (in the URI's user-info and in a password= parameter). */
void pg_location_safe(const char *location, char *out, size_t size);

#endif
