/*
 * http_health.c: GET /live, /ready and /health (docs/api.md "Health"),
 * answered in the event loop without a database connection, so they
 * answer even when every reader is busy.
 *
 *   /live   200 while the process answers HTTP. A load balancer or
 *           supervisor restarts the server only when this fails.
 *   /ready  200 when tills can be served: a program is loaded and storage
 *           has not failed; else 503. Route tills' traffic by this one.
 *   /health 200 only when nothing is wrong: ready, and the personal-data
 *           key file is loaded; else 503 with every problem found.
 *
 * Each answers {"status": "ok" | "degraded" | "failed", "problems":
 * [{"check": ..., "reason": ...}]}; "failed" when tills cannot be served,
 * "degraded" when they can but something else is wrong. Recovery from the
 * operation log runs before the server listens, so while it runs (or when
 * the database or log is damaged and the server refused to start) /live
 * itself does not answer.
 */
#include "server.h"

#include <stdio.h>
#include <string.h>

enum { PROBLEMS_MAX = 4 };

typedef struct health {
    bool failed, degraded;
    size_t n;
    struct {
        const char *check;
        char reason[512];
    } problem[PROBLEMS_MAX];
} health;

/* Records a problem; fatal ones mean tills cannot be served. */
static char *problem(health *h, bool fatal, const char *check)
{
    if (fatal) h->failed = true;
    else h->degraded = true;
    h->problem[h->n].check = check;
    return h->problem[h->n++].reason;
}

bool kp_http_health(kp_server *srv, const char *url, kp_http_answer *answer)
{
    bool live = strcmp(url, "/live") == 0, ready = strcmp(url, "/ready") == 0,
         full = strcmp(url, "/health") == 0;
    if (!live && !ready && !full) return false;
    health h = {0};
    char why[256];
    if (!live && srv->writer && kp_writer_failed(srv->writer, why, sizeof why))
        snprintf(problem(&h, true, "storage"), sizeof h.problem[0].reason,
                 "storage failed (%s); purchases and returns are refused and reads could miss "
                 "acknowledged work: restart the server, which recovers every acknowledged "
                 "operation from the operation log",
                 why);
    if (!live && kp_programs_current(srv->programs) == NULL)
        snprintf(problem(&h, true, "program"), sizeof h.problem[0].reason, "%s",
                 "no program is loaded: purchases are refused until `kopilka program load`");
    if (full && srv->pii == NULL)
        snprintf(problem(&h, false, "key"), sizeof h.problem[0].reason,
                 "%s: customers' personal data cannot be stored or read; put the key file "
                 "back and restart the server",
                 srv->pii_problem[0] ? srv->pii_problem : "the key file is not loaded");
    kp_buf *out = answer->body;
    kp_buf_reset(out);
    kp_buf_puts(out, "{");
    kp_buf_json_kv_str(out, "status", h.failed ? "failed" : h.degraded ? "degraded" : "ok",
                       false);
    kp_buf_puts(out, ",\"problems\":[");
    for (size_t i = 0; i < h.n; i++) {
        kp_buf_puts(out, i ? ",{" : "{");
        kp_buf_json_kv_str(out, "check", h.problem[i].check, false);
        kp_buf_json_kv_str(out, "reason", h.problem[i].reason, true);
        kp_buf_puts(out, "}");
    }
    kp_buf_puts(out, "]}");
    answer->status = h.n ? 503 : 200;
    return true;
}
