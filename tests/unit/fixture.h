/*
 * fixture.h: what the unit tests' fixtures share: a fresh store location on
 * the backend under test (KOPILKA_TEST_STORE: unset or "sqlite" = a
 * temporary SQLite file, "pg" = a new PostgreSQL database on the cluster
 * $KOPILKA_TEST_PG names, see scripts/pg.sh), its removal, and a second
 * connection for the few tests that must reach under the store (tamper with
 * a row, count rows). Header-only, static functions; a set-up that cannot
 * be done prints why and aborts the test program.
 */
#ifndef KOPILKA_TEST_FIXTURE_H
#define KOPILKA_TEST_FIXTURE_H

#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Room for any location fixture_location() makes. */
#define FIXTURE_LOCATION_MAX 512

/* Unlinks path and its companions; a file that is not there is no error. */
static inline void fixture_remove_db(const char *path)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", ".oplog-0", ".oplog-1", ".key"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char p[4096];
        if ((size_t)snprintf(p, sizeof p, "%s%s", path, suffixes[i]) < sizeof p) unlink(p);
    }
}

/* True when the tests run on PostgreSQL (KOPILKA_TEST_STORE=pg). Any value
 * but "", "sqlite" and "pg" aborts: a typo must not test SQLite silently. */
static inline bool fixture_is_pg(void)
{
    const char *v = getenv("KOPILKA_TEST_STORE");
    if (v == NULL || v[0] == '\0' || strcmp(v, "sqlite") == 0) return false;
    if (strcmp(v, "pg") == 0) return true;
    fprintf(stderr, "fixture: KOPILKA_TEST_STORE=%s: expected sqlite or pg\n", v);
    abort();
}

static inline void fixture_pg_quiet(void *ctx, const char *message)
{
    (void)ctx;
    (void)message;
}

/* Connects to `location` or aborts with libpq's reason. Notices ("does not
 * exist, skipping") are not printed. */
static inline PGconn *fixture_pg_connect(const char *location)
{
    PGconn *c = PQconnectdb(location);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "fixture: cannot connect to %s: %s", location, PQerrorMessage(c));
        abort();
    }
    PQsetNoticeProcessor(c, fixture_pg_quiet, NULL);
    return c;
}

/* Runs one administrative statement on the cluster's "postgres" database. */
static inline void fixture_pg_admin(const char *sql)
{
    const char *base = getenv("KOPILKA_TEST_PG");
    if (base == NULL || base[0] == '\0') {
        fprintf(stderr, "fixture: KOPILKA_TEST_STORE=pg needs KOPILKA_TEST_PG, the base URL "
                        "of a cluster (scripts/pg.sh start prints one)\n");
        abort();
    }
    char url[FIXTURE_LOCATION_MAX];
    if ((size_t)snprintf(url, sizeof url, "%s/postgres", base) >= sizeof url) {
        fprintf(stderr, "fixture: KOPILKA_TEST_PG is longer than %d bytes\n",
                FIXTURE_LOCATION_MAX - 16);
        abort();
    }
    PGconn *c = fixture_pg_connect(url);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fprintf(stderr, "fixture: %s: %s", sql, PQerrorMessage(c));
        abort();
    }
    PQclear(r);
    PQfinish(c);
}

/* The database name a PostgreSQL location ends with (after the last '/'). */
static inline const char *fixture_pg_dbname(const char *location)
{
    const char *slash = strrchr(location, '/');
    return slash ? slash + 1 : location;
}

/*
 * A fresh, empty store location for the test program `name` (letters,
 * digits, '_' and '-'), written into out (FIXTURE_LOCATION_MAX bytes):
 *  - SQLite: /tmp/kp-test-NAME-PID.db, with any file a crashed earlier run
 *    left there removed;
 *  - PostgreSQL: BASE/kp_t_NAME_PID_N, a database created for this call,
 *    and KOPILKA_KEY_FILE pointed at /tmp/kp-test-NAME-PID.key (the PII key
 *    of a PostgreSQL location lives outside the database).
 * Each call gives a new location; fixture_remove() removes it.
 */
static inline const char *fixture_location(char *out, const char *name)
{
    if (!fixture_is_pg()) {
        snprintf(out, FIXTURE_LOCATION_MAX, "/tmp/kp-test-%s-%d.db", name, (int)getpid());
        fixture_remove_db(out);
        return out;
    }
    static unsigned serial;
    char db[64];
    int n = snprintf(db, sizeof db, "kp_t_%s_%d_%u", name, (int)getpid(), ++serial);
    if (n < 0 || (size_t)n >= sizeof db) {
        fprintf(stderr, "fixture: test name %s is too long for a database name\n", name);
        abort();
    }
    for (char *p = db; *p; p++)
        if (*p == '-') *p = '_';
    char sql[160];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", db);
    fixture_pg_admin(sql);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", db);
    fixture_pg_admin(sql);
    snprintf(out, FIXTURE_LOCATION_MAX, "%s/%s", getenv("KOPILKA_TEST_PG"), db);
    char key[128];
    snprintf(key, sizeof key, "/tmp/kp-test-%s-%d.key", name, (int)getpid());
    unlink(key);
    setenv("KOPILKA_KEY_FILE", key, 1);
    return out;
}

/* Removes what fixture_location() made: the SQLite file and its companions,
 * or the PostgreSQL database (connections still open to it are ended) and
 * the key file. */
static inline void fixture_remove(const char *location)
{
    if (!fixture_is_pg()) {
        fixture_remove_db(location);
        return;
    }
    char sql[640]; /* a database name is at most 511 bytes (fixture_pg_dbname) */
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)",
             fixture_pg_dbname(location));
    fixture_pg_admin(sql);
    const char *key = getenv("KOPILKA_KEY_FILE");
    if (key != NULL) unlink(key);
}

/* Runs `sql` (one or more statements) on a connection of its own to the
 * store. Returns 0, or -1 with the database's reason in `why` (may be NULL,
 * `why_size` bytes), e.g. when a guard of the schema refuses the change. */
static inline int fixture_exec(const char *location, const char *sql, char *why, size_t why_size)
{
    if (fixture_is_pg()) {
        PGconn *c = fixture_pg_connect(location);
        PGresult *r = PQexec(c, sql);
        ExecStatusType st = PQresultStatus(r);
        int rc = (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) ? 0 : -1;
        if (rc != 0 && why != NULL) snprintf(why, why_size, "%s", PQerrorMessage(c));
        PQclear(r);
        PQfinish(c);
        return rc;
    }
    sqlite3 *db;
    if (sqlite3_open_v2(location, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        fprintf(stderr, "fixture: cannot open %s: %s\n", location, sqlite3_errmsg(db));
        abort();
    }
    sqlite3_busy_timeout(db, 5000);
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK ? 0 : -1;
    if (rc != 0 && why != NULL) snprintf(why, why_size, "%s", msg ? msg : "?");
    sqlite3_free(msg);
    sqlite3_close(db);
    return rc;
}

/* The first column of the first row `sql` returns, as an integer; aborts
 * when the query fails or returns no row. */
static inline int64_t fixture_query_int64(const char *location, const char *sql)
{
    int64_t v = 0;
    if (fixture_is_pg()) {
        PGconn *c = fixture_pg_connect(location);
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1) {
            fprintf(stderr, "fixture: %s: %s", sql, PQerrorMessage(c));
            abort();
        }
        v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        PQfinish(c);
        return v;
    }
    sqlite3 *db;
    sqlite3_stmt *st = NULL;
    if (sqlite3_open_v2(location, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
        fprintf(stderr, "fixture: %s on %s: %s\n", sql, location, sqlite3_errmsg(db));
        abort();
    }
    v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* For a test about SQLite itself (its files, its journal, its older
 * schemas): on PostgreSQL, says why and skips it. Use inside a cmocka test. */
#define FIXTURE_SQLITE_ONLY(why)                                                              \
    do {                                                                                      \
        if (fixture_is_pg()) {                                                                \
            fprintf(stderr, "skipped on PostgreSQL: %s\n", why);                              \
            skip();                                                                           \
        }                                                                                     \
    } while (0)

#endif
