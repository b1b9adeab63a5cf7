/*
 * http_people.h: what the back office's route files share (http_people.c):
 * the caller (a staff session or a terminal key), route tables with {}
 * path parameters, running an operation on a reader or through the writer,
 * and answering errors (http_error.h). http_admin.c (staff, audit, adjustments,
 * cards, exports), http_customers.c (customers, families, transfers),
 * http_notify.c (notifications, the cabinet's login), http_self.c (the
 * customer's own API), http_programs.c (program versions) and http_office.c
 * (the dashboard, CSV imports) each register one table.
 */
#ifndef KOPILKA_HTTP_PEOPLE_H
#define KOPILKA_HTTP_PEOPLE_H

#include "server.h"
#include "service/people.h"

typedef struct http_caller {
    kp_actor actor;
    bool is_staff;
    char token[72];     /* the staff session's token (for logout) */
    kp_time expires_at; /* of the session */
    int64_t customer_id; /* a customer's session (HTTP_CUSTOMER), else 0 */
} http_caller;

enum { HTTP_PARAMS_MAX = 3 };

struct json_t;

/* One request as a route sees it. */
typedef struct http_request {
    kp_server *srv;
    const http_caller *caller;                /* NULL on routes without authentication */
    char params[HTTP_PARAMS_MAX][KP_STR_MAX]; /* the {} segments of the path, in order */
    const char *body;
    size_t body_len;
    kp_time now;
    const char *client; /* the client's address (kp_http_client_address), "" if unknown */
} http_request;

typedef unsigned (*http_route_fn)(const http_request *r, kp_http_answer *a);

typedef enum http_access {
    HTTP_STAFF = 0, /* a staff session */
    HTTP_STAFF_OR_TERMINAL,
    HTTP_PUBLIC,   /* no credentials (login, unsubscribe links): the caller is an
                    * anonymous customer actor, with no permission */
    HTTP_CUSTOMER, /* a customer's session "kpc_..." (POST /v1/login) */
} http_access;

typedef struct http_route {
    const char *method;
    const char *pattern; /* "/v1/admin/customers/{}/erase" */
    http_access access;
    http_route_fn fn;
} http_route;

extern const http_route http_admin_routes[];
extern const size_t http_admin_routes_count;
extern const http_route http_customer_routes[];
extern const size_t http_customer_routes_count;
extern const http_route http_notify_routes[];
extern const size_t http_notify_routes_count;
extern const http_route http_office_routes[];
extern const size_t http_office_routes_count;
extern const http_route http_reports_routes[];
extern const size_t http_reports_routes_count;
extern const http_route http_self_routes[];
extern const size_t http_self_routes_count;

struct kp_prefs_req;
/* The body of PUT .../notifications (http_notify.c) into req; errors name
 * the field. */
kp_err http_prefs_parse(const http_request *r, struct kp_prefs_req *req, kp_error *e);

/* GET .../barcode.svg and .../qr.svg of a card (http_admin.c), for the back
 * office's routes and the customer's own (kp_card_picture checks whose). */
unsigned http_route_barcode_svg(const http_request *r, kp_http_answer *a);
unsigned http_route_qr_svg(const http_request *r, kp_http_answer *a);

/* The per-address limit of the cabinet's logins (http_notify.c; docs/api.md,
 * "Login limits"): takes one attempt of the request's client address; false
 * with the 429 answered into a (and *status) when it has none left. A route
 * gives the attempt back when it was not a failure (a good code, a refusal
 * before any check). */
bool http_login_address_take(const http_request *r, kp_http_answer *a, unsigned *status);
void http_login_address_give_back(const http_request *r);

/* The answer of a new customer's session (POST /v1/login, POST
 * /v1/signup): {"token", "expires_at", "customer"} into out (reset). */
void http_customer_session_json(kp_buf *out, const char *token, kp_time expires_at,
                                int64_t customer_id);

extern const http_route http_program_routes[];
/* Segments and campaigns (http_marketing.c); POST /v1/admin/campaigns with
 * a "segment" is a campaign that grants points, made there. */
extern const http_route http_marketing_routes[];
extern const size_t http_marketing_routes_count;
unsigned http_marketing_campaign_create(const http_request *r, kp_http_answer *a);
extern const size_t http_program_routes_count;
extern const http_route http_simulate_routes[];
extern const size_t http_simulate_routes_count;
extern const http_route http_catalog_routes[];
extern const size_t http_catalog_routes_count;
extern const http_route http_draws_routes[];
extern const size_t http_draws_routes_count;
/* A partner's staff's routes, /v1/partner/... (http_partner.c). */
extern const http_route http_partner_routes[];
extern const size_t http_partner_routes_count;
/* Coalition settlement: periods, statements, the close (http_settlement.c). */
extern const http_route http_settlement_routes[];
extern const size_t http_settlement_routes_count;

/* An operation on the back office. Read-only ones may run on a reader;
 * everything that writes, and every read of personal data (it is audited),
 * runs through the writer in a savepoint of a group commit. */
typedef kp_err (*http_office_fn)(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                                 bool *replayed, kp_field_errors *fe, kp_error *e);

/* Runs fn through the writer; answers `ok_status` (or 200 on a replay). */
unsigned http_office_write(const http_request *r, http_office_fn fn, void *arg, unsigned ok_status,
                           kp_http_answer *a);
/* Runs fn on a reader connection (fn must not write). */
unsigned http_office_read(const http_request *r, http_office_fn fn, void *arg, kp_http_answer *a);

/* An audit entry written after an answer read on a reader (an export). */
typedef struct http_audit_note {
    const char *action;
    char target[64];
    char detail[128];
} http_audit_note;
/* Records the note through the writer; on failure the answer becomes the
 * error (an export that cannot be audited is not given out). */
unsigned http_audited(const http_request *r, http_audit_note *note, kp_http_answer *a);

/* The request's body as a JSON object ("" = {}), refusing members not in
 * `allowed` (NULL-terminated) with the allowed ones named; NULL with e set. */
struct json_t *http_body_object(const http_request *r, const char *const *allowed, kp_error *e);

/* Refuses a member of obj not in `allowed` (NULL-terminated), naming it
 * (prefix + its key) and the allowed ones. */
kp_err http_keys_check(struct json_t *obj, const char *prefix, const char *const *allowed,
                       kp_error *e);

/* Parses a positive id path parameter; 0 when it is not one. */
int64_t http_param_id(const char *text);
/* A query argument as a whole number >= 0 (absent or empty: dflt); -1
 * when it is malformed or negative. */
int64_t http_query_int(const char *name, int64_t dflt);
/* ?before=&limit= of a history page (limit 1..KP_HISTORY_PAGE_MAX, default
 * the most); KP_ERR_INVALID naming the argument. */
kp_err http_history_page(int64_t *before, int64_t *limit, kp_error *e);

/* The query argument `name` as an integer >= 0; `dflt` when absent, -1 when
 * it is not one. */
int64_t http_query_int(const char *name, int64_t dflt);

#endif
