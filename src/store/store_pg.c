/*
 * store_pg.c: the PostgreSQL backend's core (kp_store_ops of store.h):
 * connection, versioned migrations, transactions, programs, terminals,
 * cards, accounts, lots, operations and the ledger. The people and rules
 * parts are store_pg_people.c and store_pg_triggers.c; what the three share
 * is store_pg_int.h.
 *
 * One kp_store is one libpq connection. Tables and columns carry the SQLite
 * backend's names with compatible types (INTEGER -> BIGINT, BLOB -> BYTEA),
 * so a table-by-table copy moves a database from one to the other.
 */
#include "store_pg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopilka/clock.h>

bool store_pg_location(const char *location)
{
    return strncmp(location, "postgresql://", 13) == 0 || strncmp(location, "postgres://", 11) == 0;
}

static void s_close(kp_store *b)
{
    pg_store *s = (pg_store *)b;
    if (s->people) store_pg_people_close(s);
    if (s->triggers) store_pg_triggers_close(s);
    PQfinish(s->conn);
    free(s);
}

static kp_err s_begin(kp_store *b)
{
    pg_store *s = (pg_store *)b;
    memset(s->sys_pending, 0, sizeof s->sys_pending);
    kp_err err = pg_exec(s, "BEGIN");
    if (err == KP_OK) s->in_txn = true;
    return err;
}

static kp_err s_commit(kp_store *b)
{
    pg_store *s = (pg_store *)b;
    kp_err err = pg_exec(s, "COMMIT");
    s->in_txn = false;
    return err;
}

static kp_err s_rollback(kp_store *b)
{
    pg_store *s = (pg_store *)b;
    memset(s->sys_pending, 0, sizeof s->sys_pending);
    s->in_txn = false;
    return pg_exec(s, "ROLLBACK");
}

static kp_err s_savepoint(kp_store *b)
{
    pg_store *s = (pg_store *)b;
    memcpy(s->sys_saved, s->sys_pending, sizeof s->sys_saved);
    return pg_exec(s, "SAVEPOINT op");
}

static kp_err s_release(kp_store *b) { return pg_exec((pg_store *)b, "RELEASE op"); }

static kp_err s_rollback_to(kp_store *b)
{
    pg_store *s = (pg_store *)b;
    memcpy(s->sys_pending, s->sys_saved, sizeof s->sys_pending);
    kp_err err = pg_exec(s, "ROLLBACK TO op");
    return err ? err : pg_exec(s, "RELEASE op");
}

static const kp_store_ops pg_ops = {
    .close = s_close,
    .begin = s_begin,
    .commit = s_commit,
    .rollback = s_rollback,
    .savepoint = s_savepoint,
    .release = s_release,
    .rollback_to = s_rollback_to,
    .triggers = &store_pg_triggers_ops,
    .people = &store_pg_people_ops,
};

kp_err store_pg_open(const char *location, bool create, kp_store **out, kp_error *e)
{
    *out = NULL;
    pg_store *s = calloc(1, sizeof *s);
    if (s == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    s->base.ops = &pg_ops;
    pg_location_safe(location, s->location, sizeof s->location);
    s->conn = PQconnectdb(location);
    if (s->conn == NULL || PQstatus(s->conn) != CONNECTION_OK) {
        const char *why = s->conn ? PQerrorMessage(s->conn) : "out of memory";
        kp_err err = kp_error_set(e, KP_ERR_IO, "database", "cannot connect to %s: %.*s",
                                  s->location, (int)strcspn(why, "\n"), why);
        s_close(&s->base);
        return err;
    }
    (void)create;
    *out = &s->base;
    return KP_OK;
}
