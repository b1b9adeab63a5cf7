/*
 * store_pg_draws.c: kp_draws_ops over PostgreSQL (kopilka/draws.h): the
 * table `draws` (migration 9 of store_pg.c), one row a draw, its closing
 * columns empty (closed_at 0) until draw_close fills them once.
 */
#include "store_draws.h"
#include "store_pg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define P(st) ((pg_store *)(st))

const char store_pg_draws_schema[] =
    "CREATE TABLE IF NOT EXISTS draws (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL,"
    "  from_at BIGINT NOT NULL, to_at BIGINT NOT NULL, rule INTEGER NOT NULL,"
    "  per_minor BIGINT NOT NULL, store TEXT NOT NULL, tier TEXT NOT NULL,"
    "  prizes TEXT NOT NULL, commitment TEXT NOT NULL, sealed_seed TEXT NOT NULL,"
    "  created_at BIGINT NOT NULL, created_by TEXT NOT NULL,"
    "  closed_at BIGINT NOT NULL DEFAULT 0, closed_by TEXT NOT NULL DEFAULT '',"
    "  seed TEXT NOT NULL DEFAULT '', entries TEXT, winners TEXT);";

static pg_stmt q_insert = {
    "INSERT INTO draws(name, from_at, to_at, rule, per_minor, store, tier, prizes,"
    " commitment, sealed_seed, created_at, created_by)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
    12, 0};
static pg_stmt q_get = {
    "SELECT " STORE_DRAW_COLUMNS ", entries, winners FROM draws WHERE id = $1", 1, 0};
static pg_stmt q_list = {"SELECT " STORE_DRAW_COLUMNS " FROM draws WHERE ($1 = 0 OR id < $1)"
                         " ORDER BY id DESC LIMIT $2",
                         2, 0};
/* One statement: the update when the draw is open, and whether it exists. */
static pg_stmt q_close = {
    "WITH u AS (UPDATE draws SET closed_at = $2, closed_by = $3, seed = $4, entries = $5,"
    " winners = $6 WHERE id = $1 AND closed_at = 0 RETURNING id)"
    " SELECT (SELECT count(*) FROM u), (SELECT count(*) FROM draws WHERE id = $1)",
    6, 0};

static kp_err draw_insert(kp_store *st, kp_draw *d)
{
    kp_err err = store_draw_check(st, d);
    if (err) return err;
    pg_params p = {0};
    pg_p_text(&p, d->name);
    pg_p_int(&p, d->from);
    pg_p_int(&p, d->to);
    pg_p_int(&p, d->rule);
    pg_p_int(&p, d->per_minor);
    pg_p_text(&p, d->store);
    pg_p_text(&p, d->tier);
    pg_p_text(&p, d->prizes);
    pg_p_text(&p, d->commitment);
    pg_p_text(&p, d->sealed_seed);
    pg_p_int(&p, d->created_at);
    pg_p_text(&p, d->created_by);
    PGresult *r;
    if ((err = pg_run(P(st), &q_insert, &p, &r))) return err;
    d->id = pg_int(r, 0, 0);
    PQclear(r);
    return KP_OK;
}

/* Reads row i (STORE_DRAW_COLUMNS, then entries and winners when `texts`)
 * into *d; false when out of memory (d released). */
static bool row_read(const PGresult *r, int i, bool texts, kp_draw *d)
{
    memset(d, 0, sizeof *d);
    d->id = pg_int(r, i, 0);
    pg_text(r, i, 1, d->name, sizeof d->name);
    d->from = pg_int(r, i, 2);
    d->to = pg_int(r, i, 3);
    d->rule = (kp_draw_rule)pg_int(r, i, 4);
    d->per_minor = pg_int(r, i, 5);
    pg_text(r, i, 6, d->store, sizeof d->store);
    pg_text(r, i, 7, d->tier, sizeof d->tier);
    d->prizes = pg_text_dup(r, i, 8);
    pg_text(r, i, 9, d->commitment, sizeof d->commitment);
    pg_text(r, i, 10, d->sealed_seed, sizeof d->sealed_seed);
    d->created_at = pg_int(r, i, 11);
    pg_text(r, i, 12, d->created_by, sizeof d->created_by);
    d->closed_at = pg_int(r, i, 13);
    pg_text(r, i, 14, d->closed_by, sizeof d->closed_by);
    pg_text(r, i, 15, d->seed, sizeof d->seed);
    bool ok = d->prizes != NULL;
    if (texts) {
        d->entries = pg_text_dup(r, i, 16);
        d->winners = pg_text_dup(r, i, 17);
        if ((!pg_is_null(r, i, 16) && d->entries == NULL) ||
            (!pg_is_null(r, i, 17) && d->winners == NULL))
            ok = false;
    }
    if (!ok) kp_draw_release(d);
    return ok;
}

static kp_err draw_get(kp_store *st, int64_t id, kp_draw *out)
{
    memset(out, 0, sizeof *out);
    pg_params p = {0};
    pg_p_int(&p, id);
    PGresult *r;
    kp_err err = pg_run(P(st), &q_get, &p, &r);
    if (err) return err;
    if (PQntuples(r) == 0) err = KP_ERR_NOT_FOUND;
    else if (!row_read(r, 0, true, out)) err = KP_ERR_NOMEM;
    PQclear(r);
    return err;
}

static kp_err draw_list(kp_store *st, int64_t before, kp_draw *items, size_t limit, size_t *n)
{
    *n = 0;
    pg_params p = {0};
    pg_p_int(&p, before);
    pg_p_int(&p, (int64_t)limit);
    PGresult *r;
    kp_err err = pg_run(P(st), &q_list, &p, &r);
    if (err) return err;
    int rows = PQntuples(r);
    for (int i = 0; i < rows && *n < limit && err == KP_OK; i++) {
        if (row_read(r, i, false, &items[*n])) ++*n;
        else err = KP_ERR_NOMEM;
    }
    PQclear(r);
    if (err)
        while (*n > 0) kp_draw_release(&items[--*n]);
    return err;
}

static kp_err draw_close(kp_store *st, int64_t id, const kp_draw *d)
{
    pg_params p = {0};
    pg_p_int(&p, id);
    pg_p_int(&p, d->closed_at);
    pg_p_text(&p, d->closed_by);
    pg_p_text(&p, d->seed);
    pg_p_text(&p, d->entries ? d->entries : "");
    pg_p_text(&p, d->winners ? d->winners : "");
    PGresult *r;
    kp_err err = pg_run(P(st), &q_close, &p, &r);
    if (err) return err;
    int64_t updated = pg_int(r, 0, 0), exists = pg_int(r, 0, 1);
    PQclear(r);
    if (updated > 0) return KP_OK;
    snprintf(st->last_error, sizeof st->last_error,
             exists ? "draw %lld is closed already" : "no draw %lld", (long long)id);
    return exists ? KP_ERR_CONFLICT : KP_ERR_NOT_FOUND;
}

const kp_draws_ops store_pg_draws_ops = {
    .draw_insert = draw_insert,
    .draw_get = draw_get,
    .draw_list = draw_list,
    .draw_close = draw_close,
};
