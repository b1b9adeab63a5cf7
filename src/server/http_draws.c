/*
 * http_draws.c: prize draws over HTTP (docs/api.md "Prize draws",
 * docs/marketing.md): the public answer of a draw (no credentials: its
 * commitment, and once closed its entries, seed and winners), the back
 * office's list, creation and closing (draw.manage), and the customer's own
 * view in the cabinet. One function a route, in the table at the end;
 * http_people.c authenticates and dispatches.
 */
#include "http_people.h"
#include "service/draws.h"

static kp_err do_public(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                        bool *replayed, kp_field_errors *fe, kp_error *e)
{
    int64_t id = http_param_id(r->params[0]);
    if (id == 0) return kp_error_set(e, KP_ERR_NOT_FOUND, "id", "no draw %.40s", r->params[0]);
    return kp_draw_public(o, id, out, e);
}

/* On a reader: anyone may ask, as often as they like. */
static unsigned route_public(const http_request *r, kp_http_answer *a)
{
    return http_office_read(r, do_public, NULL, a);
}

static kp_err do_list(kp_office *o, const http_request *r, void *arg, kp_buf *out, bool *replayed,
                      kp_field_errors *fe, kp_error *e)
{
    int64_t before = http_query_int("before", 0);
    if (before < 0)
        return kp_error_set(e, KP_ERR_INVALID, "before", "must be a draw id (a whole number "
                            ">= 0; 0 = from the newest)");
    return kp_draw_list(o, before, out, e);
}

static unsigned route_list(const http_request *r, kp_http_answer *a)
{
    return http_office_read(r, do_list, NULL, a);
}

static kp_err do_create(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                        bool *replayed, kp_field_errors *fe, kp_error *e)
{
    return kp_draw_create_json(o, r->body, r->body_len, out, e);
}

static unsigned route_create(const http_request *r, kp_http_answer *a)
{
    return http_office_write(r, do_create, NULL, 201, a);
}

static kp_err do_close_read(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                            bool *replayed, kp_field_errors *fe, kp_error *e)
{
    int64_t id = http_param_id(r->params[0]);
    if (id == 0) return kp_error_set(e, KP_ERR_NOT_FOUND, "id", "no draw %.40s", r->params[0]);
    return kp_draw_close_read(o, id, arg, out, e);
}

static kp_err do_close_write(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                             bool *replayed, kp_field_errors *fe, kp_error *e)
{
    return kp_draw_close_write(o, http_param_id(r->params[0]), arg, out, replayed, e);
}

/* The entries are read on a reader (the writer and the tills are not held
 * while the period's purchases are read), then frozen through the writer
 * in a short transaction that closes the draw only if nobody closed it
 * meanwhile. A second close answers the frozen result (200 either way). */
static unsigned route_close(const http_request *r, kp_http_answer *a)
{
    kp_draw_closing cl = {0};
    unsigned status = http_office_read(r, do_close_read, &cl, a);
    if (status == 200 && !cl.closed) status = http_office_write(r, do_close_write, &cl, 200, a);
    kp_draw_closing_release(&cl);
    return status;
}

static kp_err do_mine(kp_office *o, const http_request *r, void *arg, kp_buf *out, bool *replayed,
                      kp_field_errors *fe, kp_error *e)
{
    return kp_draw_mine(o, r->caller->customer_id, out, e);
}

static unsigned route_mine(const http_request *r, kp_http_answer *a)
{
    return http_office_read(r, do_mine, NULL, a);
}

const http_route http_draws_routes[] = {
    {"GET", "/v1/draws/{}", HTTP_PUBLIC, route_public},
    {"GET", "/v1/admin/draws", HTTP_STAFF, route_list},
    {"POST", "/v1/admin/draws", HTTP_STAFF, route_create},
    {"POST", "/v1/admin/draws/{}/close", HTTP_STAFF, route_close},
    {"GET", "/v1/me/draws", HTTP_CUSTOMER, route_mine},
};
const size_t http_draws_routes_count = sizeof http_draws_routes / sizeof http_draws_routes[0];
