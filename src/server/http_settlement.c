/*
 * http_settlement.c: a coalition's settlement over HTTP (docs/api.md
 * "Settlement", docs/coalition.md "Periods and statements"): the periods,
 * a period's statements and matrix (JSON, or CSV with format=csv), its
 * close (settlement.manage, through the writer: the close reads the
 * period's entries under the settlement state's lock, so no operation is
 * half-counted), and one statement by number. One function a route, in the
 * table at the end; http_people.c authenticates and dispatches.
 */
#include <string.h>

#include "http_error.h"
#include "http_people.h"
#include "service/settlement.h"

/* ?format= json (default) or csv; false with e set otherwise. */
static bool wants_csv(bool *csv, kp_error *e)
{
    const char *format = kp_http_arg("format");
    *csv = format && strcmp(format, "csv") == 0;
    if (format == NULL || format[0] == '\0' || *csv || strcmp(format, "json") == 0) return true;
    kp_error_set(e, KP_ERR_INVALID, "format", "must be json or csv, got %.40s", format);
    return false;
}

static kp_err period_param(const http_request *r, int32_t *period, kp_error *e)
{
    if (kp_settle_period_parse(r->params[0], period)) return KP_OK;
    return kp_error_set(e, KP_ERR_INVALID, "period",
                        "must be a month YYYY-MM (1970-01 or later), got %.40s", r->params[0]);
}

static kp_err do_periods(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                         bool *replayed, kp_field_errors *fe, kp_error *e)
{
    return kp_settlement_periods(o, out, e);
}

static unsigned route_periods(const http_request *r, kp_http_answer *a)
{
    return http_office_read(r, do_periods, NULL, a);
}

typedef struct form {
    bool csv, matrix;
} form;

static kp_err do_period(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                        bool *replayed, kp_field_errors *fe, kp_error *e)
{
    const form *f = arg;
    int32_t period;
    kp_err err = period_param(r, &period, e);
    return err ? err : kp_settlement_period(o, period, f->csv, f->matrix, out, e);
}

/* On a reader: a closed period as stored, an open one computed now. */
static unsigned route_period(const http_request *r, kp_http_answer *a)
{
    kp_error e = {0};
    form f = {false, false};
    if (!wants_csv(&f.csv, &e)) return kp_http_error_answer(a->body, &e, NULL);
    const char *part = kp_http_arg("part");
    f.matrix = part && strcmp(part, "matrix") == 0;
    if (part && part[0] && !f.matrix && strcmp(part, "statements") != 0) {
        kp_error_set(&e, KP_ERR_INVALID, "part", "must be statements or matrix, got %.40s", part);
        return kp_http_error_answer(a->body, &e, NULL);
    }
    unsigned status = http_office_read(r, do_period, &f, a);
    if (status == 200 && f.csv) a->content_type = "text/csv; charset=utf-8";
    return status;
}

static kp_err do_close(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                       bool *replayed, kp_field_errors *fe, kp_error *e)
{
    int32_t period;
    kp_err err = period_param(r, &period, e);
    return err ? err : kp_settlement_close(o, period, out, replayed, e);
}

/* Through the writer; 201 when this request closed the period, 200 when it
 * was closed already (its statements as stored). */
static unsigned route_close(const http_request *r, kp_http_answer *a)
{
    return http_office_write(r, do_close, NULL, 201, a);
}

static kp_err do_statement(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                           bool *replayed, kp_field_errors *fe, kp_error *e)
{
    int64_t number = http_param_id(r->params[0]);
    if (number == 0)
        return kp_error_set(e, KP_ERR_NOT_FOUND, "number", "no statement %.40s", r->params[0]);
    return kp_settlement_statement(o, number, *(const bool *)arg, out, e);
}

static unsigned route_statement(const http_request *r, kp_http_answer *a)
{
    kp_error e = {0};
    bool csv;
    if (!wants_csv(&csv, &e)) return kp_http_error_answer(a->body, &e, NULL);
    unsigned status = http_office_read(r, do_statement, &csv, a);
    if (status == 200 && csv) a->content_type = "text/csv; charset=utf-8";
    return status;
}

const http_route http_settlement_routes[] = {
    {"GET", "/v1/admin/settlement/periods", HTTP_STAFF, route_periods},
    {"GET", "/v1/admin/settlement/periods/{}", HTTP_STAFF, route_period},
    {"POST", "/v1/admin/settlement/periods/{}/close", HTTP_STAFF, route_close},
    {"GET", "/v1/admin/settlement/statements/{}", HTTP_STAFF, route_statement},
};
const size_t http_settlement_routes_count =
    sizeof http_settlement_routes / sizeof http_settlement_routes[0];
