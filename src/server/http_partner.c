/*
 * http_partner.c: the routes of a partner's staff (docs/api.md, "Partners";
 * docs/coalition.md, "Partner staff and isolation"): its partner, its
 * stores' operations, the rules that name it and its settlement statements,
 * each read on a reader,
 * and a bank's card transactions (cobrand.c), through the writer
 * (src/service/partner.c says what each holds and checks that the caller is
 * the partner's). http_people.c authenticates, keeps a partner's session
 * out of every other route, and dispatches.
 */
#include "http_people.h"
#include "service/cobrand.h"
#include "service/partner.h"

static kp_err do_me(kp_office *o, const http_request *r, void *arg, kp_buf *out, bool *replayed,
                    kp_field_errors *fe, kp_error *e)
{
    return kp_partner_me_json(o, out, e);
}

static unsigned route_me(const http_request *r, kp_http_answer *a)
{
    return http_office_read(r, do_me, NULL, a);
}

static kp_err do_operations(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                            bool *replayed, kp_field_errors *fe, kp_error *e)
{
    int64_t before = http_query_int("before", 0);
    int64_t limit = http_query_int("limit", 100);
    return kp_partner_operations_json(o, kp_http_arg("from"), kp_http_arg("to"), before, limit, out,
                                      e);
}

static unsigned route_operations(const http_request *r, kp_http_answer *a)
{
    return http_office_read(r, do_operations, NULL, a);
}

static kp_err do_rules(kp_office *o, const http_request *r, void *arg, kp_buf *out, bool *replayed,
                       kp_field_errors *fe, kp_error *e)
{
    return kp_partner_rules_json(o, out, e);
}

static unsigned route_rules(const http_request *r, kp_http_answer *a)
{
    return http_office_read(r, do_rules, NULL, a);
}

static kp_err do_statements(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                            bool *replayed, kp_field_errors *fe, kp_error *e)
{
    return kp_partner_statements_json(o, kp_http_arg("before"), out, e);
}

static unsigned route_statements(const http_request *r, kp_http_answer *a)
{
    return http_office_read(r, do_statements, NULL, a);
}

static kp_err do_statement(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                           bool *replayed, kp_field_errors *fe, kp_error *e)
{
    return kp_partner_statement_json(o, http_param_id(r->params[0]), out, e);
}

static unsigned route_statement(const http_request *r, kp_http_answer *a)
{
    return http_office_read(r, do_statement, NULL, a);
}

static kp_err do_card_txns(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                           bool *replayed, kp_field_errors *fe, kp_error *e)
{
    return kp_card_txns_http(o, r->body, r->body_len, out, replayed, e);
}

/* The bank's card transactions: written through the writer. */
static unsigned route_card_txns(const http_request *r, kp_http_answer *a)
{
    return http_office_write(r, do_card_txns, NULL, 201, a);
}

const http_route http_partner_routes[] = {
    {"GET", "/v1/partner/me", HTTP_STAFF, route_me},
    {"GET", "/v1/partner/operations", HTTP_STAFF, route_operations},
    {"GET", "/v1/partner/rules", HTTP_STAFF, route_rules},
    {"GET", "/v1/partner/statements", HTTP_STAFF, route_statements},
    {"GET", "/v1/partner/statements/{}", HTTP_STAFF, route_statement},
    {"POST", "/v1/partner/card-transactions", HTTP_STAFF, route_card_txns},
};
const size_t http_partner_routes_count = sizeof http_partner_routes / sizeof http_partner_routes[0];
