/*
 * http_marketing.c: segments and campaigns (docs/api.md "Segments and
 * campaigns", docs/marketing.md): saved filters with their live count and
 * sample, campaign drafts, their preview, start, cancel, progress and
 * results. Reads (a count, a preview, progress) run on a reader; every
 * change through the writer. A started campaign wakes the scheduler, which
 * runs it (scheduler.c). One function a route, in the table at the end;
 * http_people.c authenticates and dispatches.
 */
#include "http_people.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "service/marketing.h"

static int64_t path_id(const http_request *r)
{
    return http_param_id(r->params[0]);
}

static kp_err bad_id(const char *what, kp_error *e)
{
    return kp_error_set(e, KP_ERR_NOT_FOUND, what, "no %s has this id", what);
}

/* ---- segments */

static kp_err do_segments(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                          bool *replayed, kp_field_errors *fe, kp_error *e)
{
    (void)r, (void)arg, (void)replayed, (void)fe;
    return kp_segments_list(o, out, e);
}

static kp_err do_segment_preview(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                                 bool *replayed, kp_field_errors *fe, kp_error *e)
{
    (void)arg, (void)replayed, (void)fe;
    return kp_segment_preview(o, r->body, r->body_len, out, e);
}

static kp_err do_segment_create(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                                bool *replayed, kp_field_errors *fe, kp_error *e)
{
    (void)arg, (void)replayed, (void)fe;
    return kp_segment_create(o, r->body, r->body_len, out, e);
}

static kp_err do_segment_show(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                              bool *replayed, kp_field_errors *fe, kp_error *e)
{
    (void)arg, (void)replayed, (void)fe;
    int64_t id = path_id(r);
    return id ? kp_segment_show(o, id, out, e) : bad_id("segment", e);
}

static kp_err do_segment_update(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                                bool *replayed, kp_field_errors *fe, kp_error *e)
{
    (void)arg, (void)replayed, (void)fe;
    int64_t id = path_id(r);
    return id ? kp_segment_update(o, id, r->body, r->body_len, out, e) : bad_id("segment", e);
}

static kp_err do_segment_delete(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                                bool *replayed, kp_field_errors *fe, kp_error *e)
{
    (void)arg, (void)replayed, (void)fe;
    int64_t id = path_id(r);
    return id ? kp_segment_delete(o, id, out, e) : bad_id("segment", e);
}

static unsigned route_segments(const http_request *r, kp_http_answer *a)
{
    return http_office_read(r, do_segments, NULL, a);
}

static unsigned route_segment_preview(const http_request *r, kp_http_answer *a)
{
    return http_office_read(r, do_segment_preview, NULL, a);
}

static unsigned route_segment_create(const http_request *r, kp_http_answer *a)
{
    return http_office_write(r, do_segment_create, NULL, 201, a);
}

static unsigned route_segment_show(const http_request *r, kp_http_answer *a)
{
    return http_office_read(r, do_segment_show, NULL, a);
}

static unsigned route_segment_update(const http_request *r, kp_http_answer *a)
{
    return http_office_write(r, do_segment_update, NULL, 200, a);
}

static unsigned route_segment_delete(const http_request *r, kp_http_answer *a)
{
    return http_office_write(r, do_segment_delete, NULL, 200, a);
}

/* ---- campaigns */

static kp_err do_campaigns(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                           bool *replayed, kp_field_errors *fe, kp_error *e)
{
    (void)r, (void)arg, (void)replayed, (void)fe;
    return kp_campaigns_list(o, out, e);
}

static kp_err do_campaign_create(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                                 bool *replayed, kp_field_errors *fe, kp_error *e)
{
    (void)arg, (void)replayed, (void)fe;
    return kp_campaign_create(o, r->body, r->body_len, out, e);
}

static kp_err do_campaign_show(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                               bool *replayed, kp_field_errors *fe, kp_error *e)
{
    (void)arg, (void)replayed, (void)fe;
    int64_t id = path_id(r);
    return id ? kp_campaign_show(o, id, out, e) : bad_id("campaign", e);
}

static kp_err do_campaign_update(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                                 bool *replayed, kp_field_errors *fe, kp_error *e)
{
    (void)arg, (void)replayed, (void)fe;
    int64_t id = path_id(r);
    return id ? kp_campaign_update(o, id, r->body, r->body_len, out, e) : bad_id("campaign", e);
}

static kp_err do_campaign_preview(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                                  bool *replayed, kp_field_errors *fe, kp_error *e)
{
    (void)arg, (void)replayed, (void)fe;
    int64_t id = path_id(r);
    return id ? kp_campaign_preview(o, id, out, e) : bad_id("campaign", e);
}

static kp_err do_campaign_start(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                                bool *replayed, kp_field_errors *fe, kp_error *e)
{
    (void)arg, (void)replayed, (void)fe;
    int64_t id = path_id(r);
    return id ? kp_campaign_start(o, id, r->body, r->body_len, out, e) : bad_id("campaign", e);
}

static kp_err do_campaign_cancel(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                                 bool *replayed, kp_field_errors *fe, kp_error *e)
{
    (void)arg, (void)replayed, (void)fe;
    int64_t id = path_id(r);
    return id ? kp_campaign_cancel(o, id, out, e) : bad_id("campaign", e);
}

static kp_err do_campaign_results(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                                  bool *replayed, kp_field_errors *fe, kp_error *e)
{
    (void)arg, (void)replayed, (void)fe;
    int64_t id = path_id(r);
    int64_t window = http_query_int("window_days", 30);
    if (window < 0)
        return kp_error_set(e, KP_ERR_INVALID, "window_days",
                            "must be whole days before and after the start, 1 to 366");
    return id ? kp_campaign_results(o, id, window, out, e) : bad_id("campaign", e);
}

static unsigned route_campaigns(const http_request *r, kp_http_answer *a)
{
    return http_office_read(r, do_campaigns, NULL, a);
}

unsigned http_marketing_campaign_create(const http_request *r, kp_http_answer *a)
{
    return http_office_write(r, do_campaign_create, NULL, 201, a);
}

static unsigned route_campaign_show(const http_request *r, kp_http_answer *a)
{
    return http_office_read(r, do_campaign_show, NULL, a);
}

static unsigned route_campaign_update(const http_request *r, kp_http_answer *a)
{
    return http_office_write(r, do_campaign_update, NULL, 200, a);
}

static unsigned route_campaign_preview(const http_request *r, kp_http_answer *a)
{
    kp_buf_reserve(a->body, 512 * 1024);
    return http_office_read(r, do_campaign_preview, NULL, a);
}

static unsigned route_campaign_start(const http_request *r, kp_http_answer *a)
{
    unsigned status = http_office_write(r, do_campaign_start, NULL, 200, a);
    if (status == 200) kp_scheduler_wake(r->srv->scheduler);
    return status;
}

static unsigned route_campaign_cancel(const http_request *r, kp_http_answer *a)
{
    return http_office_write(r, do_campaign_cancel, NULL, 200, a);
}

static unsigned route_campaign_results(const http_request *r, kp_http_answer *a)
{
    return http_office_read(r, do_campaign_results, NULL, a);
}

const http_route http_marketing_routes[] = {
    {"GET", "/v1/admin/segments", HTTP_STAFF, route_segments},
    {"POST", "/v1/admin/segments", HTTP_STAFF, route_segment_create},
    {"POST", "/v1/admin/segments/preview", HTTP_STAFF, route_segment_preview},
    {"GET", "/v1/admin/segments/{}", HTTP_STAFF, route_segment_show},
    {"PATCH", "/v1/admin/segments/{}", HTTP_STAFF, route_segment_update},
    {"DELETE", "/v1/admin/segments/{}", HTTP_STAFF, route_segment_delete},
    {"GET", "/v1/admin/campaigns", HTTP_STAFF, route_campaigns},
    {"GET", "/v1/admin/campaigns/{}", HTTP_STAFF, route_campaign_show},
    {"PATCH", "/v1/admin/campaigns/{}", HTTP_STAFF, route_campaign_update},
    {"POST", "/v1/admin/campaigns/{}/preview", HTTP_STAFF, route_campaign_preview},
    {"POST", "/v1/admin/campaigns/{}/start", HTTP_STAFF, route_campaign_start},
    {"POST", "/v1/admin/campaigns/{}/cancel", HTTP_STAFF, route_campaign_cancel},
    {"GET", "/v1/admin/campaigns/{}/results", HTTP_STAFF, route_campaign_results},
};
const size_t http_marketing_routes_count =
    sizeof http_marketing_routes / sizeof http_marketing_routes[0];
