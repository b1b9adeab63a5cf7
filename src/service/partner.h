/*
 * partner.h: what a partner's staff sees of a coalition program
 * (docs/coalition.md, "Partner staff and isolation"; docs/api.md,
 * "Partners"): its partner as the running program describes it, the
 * operations recorded at its stores, and the program's rules that name it.
 * Each operation runs for an actor of role "partner" bound to a partner the
 * running program knows (kp_actor.partner), and reads only that partner's
 * data; anyone else is refused. The routes (src/server/http_partner.c)
 * only render the answers.
 */
#ifndef KOPILKA_SERVICE_PARTNER_H
#define KOPILKA_SERVICE_PARTNER_H

#include "people.h"

#include <kopilka/coalition.h>

enum {
    /* Operations one page of GET /v1/partner/operations holds at most. */
    KP_PARTNER_OPS_PAGE_MAX = 500,
    /* Closed periods one page of GET /v1/partner/statements covers. */
    KP_PARTNER_PERIODS_PAGE = 12,
};

/* The partner of o's actor in the running program: KP_ERR_FORBIDDEN for an
 * actor that is not a partner's staff, or whose partner the running
 * program no longer has (the message says which). */
kp_err kp_partner_of_actor(const kp_office *o, const kp_partner **out, kp_error *e);

/* GET /v1/partner/me: {"partner": {"code", "name", "stores": [{"match",
 * "currency"}], "fees": {"per_operation", "per_point_percent"},
 * "breakage_to_operator", "bank": null | {"cashback_percent",
 * "point_kind"}}, "program_version", "currency"}. */
kp_err kp_partner_me_json(kp_office *o, kp_buf *out, kp_error *e);

/* GET /v1/partner/operations: the operations recorded at the partner's
 * stores (kp_program_partner_of_store: a store another partner's earlier
 * pattern takes is not this partner's) in the period from..to (dates as
 * the reports take them, kp_period_read), newest first, with id < before
 * (0 = from the newest), at most `limit` (1..KP_PARTNER_OPS_PAGE_MAX).
 * Of the customer only the card number, masked but its last 4 digits.
 * KP_ERR_INVALID naming "limit", "from" or "to". */
kp_err kp_partner_operations_json(kp_office *o, const char *from, const char *to, int64_t before,
                                  int64_t limit, kp_buf *out, kp_error *e);

/* GET /v1/partner/rules: the running program's rules whose "partner" or
 * "at_partner" is the partner, each as the program file has it (as GET
 * /v1/admin/programs/{version} shows the file): {"program_version",
 * "partner", "rules": [...]}. */
kp_err kp_partner_rules_json(kp_office *o, kp_buf *out, kp_error *e);

/* GET /v1/partner/statements?before=YYYY-MM: the partner's own statements
 * (one per closed period and currency, docs/coalition.md "Periods and
 * statements"), each as stored, of the KP_PARTNER_PERIODS_PAGE closed
 * periods before `before` (NULL or "": from the newest), newest first:
 * {"partner", "statements": [...], "next_before": "YYYY-MM" | null}.
 * KP_ERR_INVALID on "before" for a text that is no month. */
kp_err kp_partner_statements_json(kp_office *o, const char *before, kp_buf *out, kp_error *e);

/* GET /v1/partner/statements/{number}: the statement as stored when it is
 * the partner's own; KP_ERR_NOT_FOUND (field "number") for another party's
 * as for none, so a number tells nothing of other partners. */
kp_err kp_partner_statement_json(kp_office *o, int64_t number, kp_buf *out, kp_error *e);

#endif
