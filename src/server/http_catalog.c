/*
 * http_catalog.c: the rewards catalog's routes (docs/api.md, "Rewards
 * catalog"): the items with their stock and images (the back office
 * changes them, anyone authenticated reads the offered ones, an image is
 * public and cached by its ETag), and orders from a customer's session
 * (/v1/me/...), a till (its terminal's store) and the back office
 * (/v1/orders). Bodies and queries are read here into the operations of
 * src/service/catalog.h; http_people.c authenticates and dispatches.
 */
#include "http_people.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/catalog.h"

/* Where the caller orders from: a terminal's store for a till. */
static kp_catalog_caller caller_of(const http_request *r)
{
    kp_catalog_caller c = {.source = "office", .store = NULL};
    const kp_actor *a = &r->caller->actor;
    if (a->kind == KP_ACTOR_TERMINAL && strncmp(a->name, "terminal:", 9) == 0) {
        c.source = "till";
        c.store = a->name + 9;
    } else if (a->kind == KP_ACTOR_CUSTOMER) {
        c.source = "cabinet";
    }
    return c;
}

/* ---- items */

static kp_err do_items(kp_office *o, const http_request *r, void *arg, kp_buf *out, bool *replayed,
                       kp_field_errors *fe, kp_error *e)
{
    kp_catalog_caller c = caller_of(r);
    const char *all = kp_http_arg("all");
    bool every = arg == NULL && all && strcmp(all, "1") == 0;
    return kp_catalog_items_json(o, every, &c, out, e);
}

static unsigned route_items(const http_request *r, kp_http_answer *a)
{
    return http_office_read(r, do_items, NULL, a);
}

static unsigned route_my_catalog(const http_request *r, kp_http_answer *a)
{
    return http_office_read(r, do_items, (void *)"self", a);
}

static kp_err do_item_save(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                           bool *replayed, kp_field_errors *fe, kp_error *e)
{
    int64_t id = arg ? http_param_id(r->params[0]) : 0;
    if (arg && id == 0) return kp_error_set(e, KP_ERR_NOT_FOUND, "id", "no such catalog item");
    return kp_catalog_item_save(o, id, r->body, r->body_len, out, fe, e);
}

static unsigned route_item_add(const http_request *r, kp_http_answer *a)
{
    return http_office_write(r, do_item_save, NULL, 201, a);
}

static unsigned route_item_change(const http_request *r, kp_http_answer *a)
{
    return http_office_write(r, do_item_save, (void *)"change", 200, a);
}

static kp_err do_stock(kp_office *o, const http_request *r, void *arg, kp_buf *out, bool *replayed,
                       kp_field_errors *fe, kp_error *e)
{
    int64_t id = http_param_id(r->params[0]);
    if (id == 0) return kp_error_set(e, KP_ERR_NOT_FOUND, "id", "no such catalog item");
    return kp_catalog_stock_put(o, id, r->body, r->body_len, out, e);
}

static unsigned route_stock(const http_request *r, kp_http_answer *a)
{
    return http_office_write(r, do_stock, NULL, 200, a);
}

static kp_err do_image_put(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                           bool *replayed, kp_field_errors *fe, kp_error *e)
{
    int64_t id = http_param_id(r->params[0]);
    if (id == 0) return kp_error_set(e, KP_ERR_NOT_FOUND, "id", "no such catalog item");
    return kp_catalog_image_put(o, id, (const char *)arg, r->body, r->body_len, out, e);
}

static unsigned route_image_put(const http_request *r, kp_http_answer *a)
{
    const char *type = kp_http_header("Content-Type");
    return http_office_write(r, do_image_put, (void *)(type ? type : ""), 200, a);
}

/* GET /v1/catalog/items/{id}/image: public, from a reader; 304 when the
 * client's If-None-Match holds its ETag. */
static unsigned route_image_get(const http_request *r, kp_http_answer *a)
{
    int64_t id = http_param_id(r->params[0]);
    kp_error e = {0};
    char type[32] = "", etag[40] = "";
    void *data = NULL;
    size_t len = 0;
    kp_err err = KP_ERR_NOT_FOUND;
    if (id) {
        kp_reader *rd = kp_reader_acquire(r->srv->readers);
        err = rd->store->ops->catalog->image_get(rd->store, id, type, &data, &len, etag);
        if (err && err != KP_ERR_NOT_FOUND)
            kp_error_set(&e, err, "", "storage failed: %s", rd->store->last_error);
        kp_reader_release(r->srv->readers, rd);
    }
    if (err == KP_ERR_NOT_FOUND) kp_error_set(&e, err, "id", "catalog item %s has no image",
                                              r->params[0]);
    if (err) return kp_http_error_answer(a->body, &e, NULL);
    static const char *const types[] = {"image/png", "image/jpeg", "image/webp"};
    a->content_type = "application/octet-stream";
    for (size_t i = 0; i < 3; i++)
        if (strcmp(type, types[i]) == 0) a->content_type = types[i];
    snprintf(a->etag, sizeof a->etag, "\"%.32s\"", etag);
    a->cache_control = "public, max-age=300, must-revalidate";
    const char *inm = kp_http_header("If-None-Match");
    kp_buf_reset(a->body);
    unsigned status = 200;
    if (inm && strstr(inm, a->etag)) status = 304;
    else kp_buf_append(a->body, data, len);
    free(data);
    return status;
}

/* ---- orders */

static kp_err do_order(kp_office *o, const http_request *r, void *arg, kp_buf *out, bool *replayed,
                       kp_field_errors *fe, kp_error *e)
{
    kp_catalog_caller c = caller_of(r);
    return kp_catalog_order_create(o, &c, r->body, r->body_len, out, replayed, e);
}

static unsigned route_order(const http_request *r, kp_http_answer *a)
{
    return http_office_write(r, do_order, NULL, 201, a);
}

static kp_err do_orders(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                        bool *replayed, kp_field_errors *fe, kp_error *e)
{
    kp_catalog_caller c = caller_of(r);
    int64_t before = http_query_int("before", 0), limit = http_query_int("limit", 50);
    return kp_catalog_orders_json(o, &c, kp_http_arg("state"), kp_http_arg("store"),
                                  kp_http_arg("card"), before, limit, out, e);
}

static unsigned route_orders(const http_request *r, kp_http_answer *a)
{
    return http_office_read(r, do_orders, NULL, a);
}

static kp_err do_move(kp_office *o, const http_request *r, void *arg, kp_buf *out, bool *replayed,
                      kp_field_errors *fe, kp_error *e)
{
    kp_catalog_caller c = caller_of(r);
    int64_t id = http_param_id(r->params[0]);
    if (id == 0) return kp_error_set(e, KP_ERR_NOT_FOUND, "id", "no such order");
    if (!(r->body_len == 0 || (r->body_len == 2 && memcmp(r->body, "{}", 2) == 0)))
        return kp_error_set(e, KP_ERR_INVALID, "", "this route takes no body (or {})");
    return kp_catalog_order_move(o, &c, id, *(const kp_order_state *)arg, out, e);
}

static const kp_order_state to_ready = KP_ORDER_READY, to_handed = KP_ORDER_HANDED_OVER,
                            to_cancelled = KP_ORDER_CANCELLED;

static unsigned route_ready(const http_request *r, kp_http_answer *a)
{
    return http_office_write(r, do_move, (void *)&to_ready, 200, a);
}

static unsigned route_hand_over(const http_request *r, kp_http_answer *a)
{
    return http_office_write(r, do_move, (void *)&to_handed, 200, a);
}

static unsigned route_cancel(const http_request *r, kp_http_answer *a)
{
    return http_office_write(r, do_move, (void *)&to_cancelled, 200, a);
}

const http_route http_catalog_routes[] = {
    {"GET", "/v1/catalog", HTTP_STAFF_OR_TERMINAL, route_items},
    {"GET", "/v1/catalog/items/{}/image", HTTP_PUBLIC, route_image_get},
    {"POST", "/v1/admin/catalog/items", HTTP_STAFF, route_item_add},
    {"PATCH", "/v1/admin/catalog/items/{}", HTTP_STAFF, route_item_change},
    {"PUT", "/v1/admin/catalog/items/{}/stock", HTTP_STAFF, route_stock},
    {"PUT", "/v1/admin/catalog/items/{}/image", HTTP_STAFF, route_image_put},
    {"POST", "/v1/orders", HTTP_STAFF_OR_TERMINAL, route_order},
    {"GET", "/v1/orders", HTTP_STAFF_OR_TERMINAL, route_orders},
    {"POST", "/v1/orders/{}/ready", HTTP_STAFF_OR_TERMINAL, route_ready},
    {"POST", "/v1/orders/{}/hand-over", HTTP_STAFF_OR_TERMINAL, route_hand_over},
    {"POST", "/v1/orders/{}/cancel", HTTP_STAFF_OR_TERMINAL, route_cancel},
    {"GET", "/v1/me/catalog", HTTP_CUSTOMER, route_my_catalog},
    {"POST", "/v1/me/orders", HTTP_CUSTOMER, route_order},
    {"GET", "/v1/me/orders", HTTP_CUSTOMER, route_orders},
    {"POST", "/v1/me/orders/{}/cancel", HTTP_CUSTOMER, route_cancel},
};
const size_t http_catalog_routes_count = sizeof http_catalog_routes / sizeof http_catalog_routes[0];
