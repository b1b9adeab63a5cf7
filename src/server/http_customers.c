/*
 * http_customers.c: the customer routes (docs/api.md, "Customers"):
 * registration (web form backend, call centre, till), search, view, edit,
 * erase, more cards, history; families; transfers between customers. Every
 * read of personal data is audited, so it too runs through the writer.
 */
#include "http_people.h"

#include <stdio.h>
#include <string.h>

typedef kp_err (*id_op)(kp_office *o, int64_t id, const char *body, size_t len, kp_buf *out,
                        kp_error *e);

static kp_err do_register(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                          bool *replayed, kp_field_errors *fe, kp_error *e)
{
    return kp_customer_register(o, r->body, r->body_len, out, fe, e);
}

static unsigned route_register(const http_request *r, kp_http_answer *a)
{
    return http_office_write(r, do_register, NULL, 201, a);
}

static kp_err do_search(kp_office *o, const http_request *r, void *arg, kp_buf *out, bool *replayed,
                        kp_field_errors *fe, kp_error *e)
{
    return kp_customer_search(o, r->body, r->body_len, out, e);
}

static unsigned route_search(const http_request *r, kp_http_answer *a)
{
    return http_office_write(r, do_search, NULL, 200, a);
}

static kp_err do_get(kp_office *o, const http_request *r, void *arg, kp_buf *out, bool *replayed,
                     kp_field_errors *fe, kp_error *e)
{
    int64_t id = http_param_id(r->params[0]);
    if (id == 0) return kp_error_set(e, KP_ERR_NOT_FOUND, "customer", "no such customer");
    kp_err err = kp_customer_get(o, id, out, e);
    if (err) return err;
    char target[48];
    snprintf(target, sizeof target, "customer:%lld", (long long)id);
    err = kp_office_audit(o, "customer.view", target, "%s", "");
    return err ? people_storage(o->st, err, e) : KP_OK;
}

static unsigned route_get(const http_request *r, kp_http_answer *a)
{
    return http_office_write(r, do_get, NULL, 200, a);
}

static kp_err do_update(kp_office *o, const http_request *r, void *arg, kp_buf *out, bool *replayed,
                        kp_field_errors *fe, kp_error *e)
{
    int64_t id = http_param_id(r->params[0]);
    if (id == 0) return kp_error_set(e, KP_ERR_NOT_FOUND, "customer", "no such customer");
    return kp_customer_update(o, id, r->body, r->body_len, out, fe, e);
}

static unsigned route_update(const http_request *r, kp_http_answer *a)
{
    return http_office_write(r, do_update, NULL, 200, a);
}

static kp_err do_id_op(kp_office *o, const http_request *r, void *arg, kp_buf *out, bool *replayed,
                       kp_field_errors *fe, kp_error *e)
{
    int64_t id = http_param_id(r->params[0]);
    if (id == 0) return kp_error_set(e, KP_ERR_NOT_FOUND, "customer", "no such customer");
    id_op op = *(id_op *)arg;
    return op(o, id, r->body, r->body_len, out, e);
}

static unsigned route_erase(const http_request *r, kp_http_answer *a)
{
    id_op op = kp_customer_erase;
    return http_office_write(r, do_id_op, &op, 200, a);
}

static unsigned route_add_card(const http_request *r, kp_http_answer *a)
{
    id_op op = kp_customer_add_card;
    return http_office_write(r, do_id_op, &op, 200, a);
}

static kp_err do_history(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                         bool *replayed, kp_field_errors *fe, kp_error *e)
{
    int64_t id = http_param_id(r->params[0]), before, limit;
    if (id == 0) return kp_error_set(e, KP_ERR_NOT_FOUND, "customer", "no such customer");
    kp_err err = http_history_page(&before, &limit, e);
    return err ? err : kp_customer_history(o, id, before, limit, out, e);
}

static unsigned route_history(const http_request *r, kp_http_answer *a)
{
    return http_office_read(r, do_history, NULL, a);
}

/* ---- families */

static kp_err do_family_create(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                               bool *replayed, kp_field_errors *fe, kp_error *e)
{
    return kp_family_create(o, r->body, r->body_len, out, e);
}

static unsigned route_family_create(const http_request *r, kp_http_answer *a)
{
    return http_office_write(r, do_family_create, NULL, 201, a);
}

static kp_err do_family_get(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                            bool *replayed, kp_field_errors *fe, kp_error *e)
{
    int64_t id = http_param_id(r->params[0]);
    if (id == 0) return kp_error_set(e, KP_ERR_NOT_FOUND, "family", "no such family");
    kp_err err = kp_family_get(o, id, out, e);
    if (err) return err;
    char target[48];
    snprintf(target, sizeof target, "family:%lld", (long long)id);
    err = kp_office_audit(o, "family.view", target, "%s", "");
    return err ? people_storage(o->st, err, e) : KP_OK;
}

static unsigned route_family_get(const http_request *r, kp_http_answer *a)
{
    return http_office_write(r, do_family_get, NULL, 200, a);
}

static kp_err do_family_join(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                             bool *replayed, kp_field_errors *fe, kp_error *e)
{
    int64_t id = http_param_id(r->params[0]);
    if (id == 0) return kp_error_set(e, KP_ERR_NOT_FOUND, "family", "no such family");
    return kp_family_join(o, id, r->body, r->body_len, out, e);
}

static unsigned route_family_join(const http_request *r, kp_http_answer *a)
{
    return http_office_write(r, do_family_join, NULL, 201, a);
}

static kp_err do_family_member(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                               bool *replayed, kp_field_errors *fe, kp_error *e)
{
    int64_t id = http_param_id(r->params[0]), cid = http_param_id(r->params[1]);
    if (id == 0 || cid == 0)
        return kp_error_set(e, KP_ERR_NOT_FOUND, "family", "no such family member");
    if (*(bool *)arg) return kp_family_leave(o, id, cid, out, e);
    return kp_family_set(o, id, cid, r->body, r->body_len, out, e);
}

static unsigned route_family_set(const http_request *r, kp_http_answer *a)
{
    bool leave = false;
    return http_office_write(r, do_family_member, &leave, 200, a);
}

static unsigned route_family_leave(const http_request *r, kp_http_answer *a)
{
    bool leave = true;
    return http_office_write(r, do_family_member, &leave, 200, a);
}

/* ---- transfers */

static kp_err do_transfer(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                          bool *replayed, kp_field_errors *fe, kp_error *e)
{
    return kp_transfer(o, r->body, r->body_len, out, replayed, e);
}

static unsigned route_transfer(const http_request *r, kp_http_answer *a)
{
    return http_office_write(r, do_transfer, NULL, 201, a);
}

const http_route http_customer_routes[] = {
    {"POST", "/v1/customers", HTTP_STAFF_OR_TERMINAL, route_register},
    {"POST", "/v1/admin/customers/search", HTTP_STAFF, route_search},
    {"GET", "/v1/admin/customers/{}", HTTP_STAFF, route_get},
    {"PATCH", "/v1/admin/customers/{}", HTTP_STAFF, route_update},
    {"POST", "/v1/admin/customers/{}/erase", HTTP_STAFF, route_erase},
    {"POST", "/v1/admin/customers/{}/cards", HTTP_STAFF, route_add_card},
    {"GET", "/v1/admin/customers/{}/history", HTTP_STAFF, route_history},
    {"POST", "/v1/admin/families", HTTP_STAFF, route_family_create},
    {"GET", "/v1/admin/families/{}", HTTP_STAFF, route_family_get},
    {"POST", "/v1/admin/families/{}/members", HTTP_STAFF, route_family_join},
    {"PATCH", "/v1/admin/families/{}/members/{}", HTTP_STAFF, route_family_set},
    {"POST", "/v1/admin/families/{}/members/{}/leave", HTTP_STAFF, route_family_leave},
    {"POST", "/v1/transfers", HTTP_STAFF, route_transfer},
};
const size_t http_customer_routes_count =
    sizeof http_customer_routes / sizeof http_customer_routes[0];
