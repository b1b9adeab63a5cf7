/*
 * http_office.c: the back office's reports and imports (docs/api.md,
 * "Dashboard" and "Imports"): the dashboard's figures, read on a reader in
 * one snapshot, and CSV imports of cards, customers and balances, through
 * the same code as `kopilka import` (src/service/import.c). Each route is
 * one function in the table at the end; http_people.c authenticates and
 * dispatches.
 */
#include "http_people.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/chunks.h"

/* ---- the dashboard */

static kp_err do_dashboard(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                           bool *replayed, kp_field_errors *fe, kp_error *e)
{
    kp_dashboard_report *d = arg;
    return kp_dashboard_read(o, kp_http_arg("from"), kp_http_arg("to"), kp_http_arg("store"), d, e);
}

static void dashboard_json(kp_buf *out, const kp_dashboard_report *d)
{
    const kp_dashboard *f = &d->figures;
    kp_buf_reset(out);
    kp_buf_puts(out, "{");
    kp_buf_json_kv_str(out, "from", d->from, false);
    kp_buf_json_kv_str(out, "to", d->to, true);
    if (d->store[0])
        kp_buf_json_kv_str(out, "store", d->store, true);
    else
        kp_buf_puts(out, ",\"store\":null");
    kp_buf_json_kv_i64(out, "members", f->members, true);
    kp_buf_json_kv_i64(out, "members_active", f->members_active, true);
    kp_buf_printf(out, ",\"active_share\":%d.%04d", (int)(d->active_share_bp / 10000),
                  (int)(d->active_share_bp % 10000));
    kp_buf_puts(out, ",\"points\":{");
    kp_buf_json_kv_i64(out, "issued", f->issued, false);
    kp_buf_json_kv_i64(out, "burnt", f->burnt, true);
    kp_buf_json_kv_i64(out, "expired", f->expired, true);
    kp_buf_json_kv_i64(out, "adjusted", f->adjusted, true);
    kp_buf_json_kv_i64(out, "outstanding", f->outstanding, true);
    kp_buf_puts(out, "}");
    kp_buf_json_kv_i64(out, "minor_per_point", d->minor_per_point, true);
    kp_buf_json_kv_i64(out, "liability_minor", d->liability_minor, true);
    kp_buf_puts(out, ",\"by_month\":[");
    for (size_t i = 0; i < f->n_months; i++) {
        const kp_dashboard_month *m = &f->months[i];
        kp_buf_puts(out, i ? ",{" : "{");
        kp_buf_json_kv_str(out, "month", m->month, false);
        kp_buf_json_kv_i64(out, "issued", m->issued, true);
        kp_buf_json_kv_i64(out, "burnt", m->burnt, true);
        kp_buf_json_kv_i64(out, "expired", m->expired, true);
        kp_buf_json_kv_i64(out, "new_members", m->new_members, true);
        kp_buf_json_kv_i64(out, "purchases", m->purchases, true);
        kp_buf_json_kv_i64(out, "revenue_minor", m->revenue_minor, true);
        kp_buf_puts(out, "}");
    }
    kp_buf_puts(out, "]}");
}

/* On a reader: never the writer, whose groups the tills wait for. */
static unsigned route_dashboard(const http_request *r, kp_http_answer *a)
{
    kp_dashboard_report *d = malloc(sizeof *d);
    if (d == NULL) {
        kp_error e;
        kp_error_set(&e, KP_ERR_NOMEM, "", "out of memory");
        return kp_http_error_answer(a->body, &e, NULL);
    }
    unsigned status = http_office_read(r, do_dashboard, d, a);
    if (status == 200) dashboard_json(a->body, d);
    free(d);
    return status;
}

/* ---- CSV imports */

/* The problems of an import as the answer's "errors" array. */
typedef struct import_answer {
    kp_buf errors;
    int64_t reported;
} import_answer;

static void keep_problem(void *ctx, const kp_import_problem *p)
{
    import_answer *x = ctx;
    kp_buf_puts(&x->errors, x->reported ? ",{" : "{");
    kp_buf_json_kv_i64(&x->errors, "line", p->line, false);
    kp_buf_json_kv_str(&x->errors, "field", p->field, true);
    kp_buf_json_kv_str(&x->errors, "message", p->message, true);
    kp_buf_puts(&x->errors, "}");
    x->reported++;
}

/* One import at a time per server: two at once would only contend for the
 * write lock, and a second copy of the same file would report its rows as
 * conflicts of the first's. */
static pthread_mutex_t import_lock = PTHREAD_MUTEX_INITIALIZER;

/* Runs the import on its own connection to the database, in chunks of a few
 * milliseconds, as `kopilka import` does beside a running server: the
 * writer's tills wait at most about one chunk, never for the whole file. */
static kp_err import_in_chunks(const http_request *r, const kp_import_files *files,
                               const kp_program *program, import_answer *x, kp_import_stats *stats,
                               kp_error *e)
{
    kp_store *st = NULL;
    kp_scratch *sc = kp_scratch_new();
    kp_err err = sc ? kp_store_open(r->srv->config.db_path, false, &st, e)
                    : kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    if (err == KP_OK) {
        kp_office o;
        kp_office_init(&o, st, r->srv->pii, program, r->now, &r->caller->actor, sc);
        kp_chunks ch;
        kp_chunks_init(&ch, st, 0, NULL, NULL);
        err = kp_import_chunks(&o, files, keep_problem, x, &ch, stats, e);
        err = kp_chunks_end(&ch, err, e);
    }
    kp_store_close(st);
    kp_scratch_free(sc);
    return err;
}

/* A dry run only reads: on a reader, like the dashboard. */
static kp_err import_dry(const http_request *r, const kp_import_files *files,
                         const kp_program *program, import_answer *x, kp_import_stats *stats,
                         kp_error *e)
{
    kp_reader *rd = kp_reader_acquire(r->srv->readers);
    kp_office o;
    kp_office_init(&o, rd->store, r->srv->pii, program, r->now, &r->caller->actor, rd->scratch);
    kp_err err = kp_import_chunks(&o, files, keep_problem, x, NULL, stats, e);
    kp_reader_release(r->srv->readers, rd);
    return err;
}

/* Which file the body is: ?kind=cards|customers|balances|sales. */
static kp_import_file *import_kind(kp_import_files *files, const char *kind)
{
    if (kind == NULL) return NULL;
    if (strcmp(kind, "cards") == 0) return &files->cards;
    if (strcmp(kind, "customers") == 0) return &files->customers;
    if (strcmp(kind, "balances") == 0) return &files->balances;
    if (strcmp(kind, "sales") == 0) return &files->sales;
    return NULL;
}

static void import_json(kp_buf *out, const char *kind, bool dry_run, const kp_import_stats *s,
                        const import_answer *x, const kp_error *failure)
{
    kp_buf_reset(out);
    kp_buf_puts(out, "{");
    if (failure) {
        kp_buf_puts(out, "\"error\":{\"code\":\"bad_field\"");
        kp_buf_json_kv_str(out, "message", failure->message, true);
        kp_buf_json_kv_str(out, "field", "body", true);
        kp_buf_puts(out, "},");
    }
    kp_buf_json_kv_str(out, "kind", kind, false);
    kp_buf_json_kv_i64(out, "rows", s->rows, true);
    kp_buf_json_kv_i64(out, "inserted",
                       failure ? 0
                               : s->cards_created + s->customers_created + s->balances_posted +
                                     s->sales_inserted,
                       true);
    kp_buf_json_kv_i64(out, "updated", failure ? 0 : s->customers_updated, true);
    kp_buf_json_kv_i64(
        out, "skipped",
        failure ? 0
                : s->cards_unchanged + s->customers_unchanged + s->balances_unchanged +
                      s->sales_unchanged,
        true);
    kp_buf_puts(out, dry_run ? ",\"dry_run\":true" : ",\"dry_run\":false");
    kp_buf_puts(out, ",\"errors\":[");
    kp_buf_append(out, x->errors.data ? x->errors.data : "", x->errors.len);
    kp_buf_puts(out, "]");
    kp_buf_json_kv_i64(out, "errors_more", s->bad_rows - x->reported, true);
    kp_buf_puts(out, "}");
}

/* POST /v1/admin/imports?kind=cards|customers|balances|sales[&dry_run=1], the body
 * the CSV file. Every row is checked first; one bad row and nothing is
 * written: 400 with every problem (the first KP_IMPORT_REPORT_MAX). */
static unsigned route_import(const http_request *r, kp_http_answer *a)
{
    kp_error e = {0};
    /* The role first: a cashier's upload is refused before any work. */
    kp_office who;
    memset(&who, 0, sizeof who);
    who.actor = r->caller->actor;
    if (kp_office_require(&who, KP_PERM_IMPORT, &e)) return kp_http_error_answer(a->body, &e, NULL);
    const char *kind = kp_http_arg("kind");
    kp_import_files files;
    memset(&files, 0, sizeof files);
    kp_import_file *file = import_kind(&files, kind);
    if (file == NULL) {
        kp_error_set(&e, KP_ERR_INVALID, "kind",
                     "is required: cards, customers, balances or sales (the file the body is)");
        return kp_http_error_answer(a->body, &e, NULL);
    }
    const char *dry = kp_http_arg("dry_run");
    if (dry && strcmp(dry, "1") != 0 && strcmp(dry, "true") != 0 && strcmp(dry, "0") != 0 &&
        strcmp(dry, "false") != 0 && dry[0] != '\0') {
        kp_error_set(&e, KP_ERR_INVALID, "dry_run",
                     "must be 1 or true (check and count, write nothing), or 0 or false");
        return kp_http_error_answer(a->body, &e, NULL);
    }
    files.dry_run = dry && (strcmp(dry, "1") == 0 || strcmp(dry, "true") == 0);
    static const char *const names[] = {"cards.csv", "customers.csv", "balances.csv",
                                        "sales.csv"};
    file->path = names[file == &files.cards       ? 0
                       : file == &files.customers ? 1
                       : file == &files.balances  ? 2
                                                  : 3];
    file->data = r->body;
    file->len = r->body_len;

    if (!files.dry_run && pthread_mutex_trylock(&import_lock) != 0) {
        kp_error_set(&e, KP_ERR_CONFLICT, "",
                     "another import is running on this server; send "
                     "this one again when it has been answered");
        return kp_http_error_answer(a->body, &e, NULL);
    }
    import_answer x = {.reported = 0};
    kp_buf_init(&x.errors, 4 * 1024 * 1024);
    kp_import_stats stats;
    memset(&stats, 0, sizeof stats);
    const kp_program *program = kp_programs_hold(r->srv->programs);
    kp_err err = files.dry_run ? import_dry(r, &files, program, &x, &stats, &e)
                               : import_in_chunks(r, &files, program, &x, &stats, &e);
    kp_programs_drop(r->srv->programs, program);
    if (!files.dry_run) pthread_mutex_unlock(&import_lock);
    unsigned status;
    if (err == KP_ERR_INVALID && stats.bad_rows > 0) {
        import_json(a->body, kind, files.dry_run, &stats, &x, &e);
        status = 400;
    } else if (err) {
        status = kp_http_error_answer(a->body, &e, NULL);
    } else {
        import_json(a->body, kind, files.dry_run, &stats, &x, NULL);
        status = 200;
    }
    if (a->body->failed) {
        kp_buf_reset(a->body);
        kp_error_set(&e, KP_ERR_NOMEM, "", "out of memory while writing the answer");
        status = kp_http_error_answer(a->body, &e, NULL);
    }
    kp_buf_release(&x.errors);
    return status;
}

const http_route http_office_routes[] = {
    {"GET", "/v1/admin/dashboard", HTTP_STAFF, route_dashboard},
    {"POST", "/v1/admin/imports", HTTP_STAFF, route_import},
};
const size_t http_office_routes_count = sizeof http_office_routes / sizeof http_office_routes[0];
