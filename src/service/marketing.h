/*
 * marketing.h: segments and campaigns in the back office
 * (docs/marketing.md "Segments and campaigns"), over the store's
 * kp_marketing_ops, the ledger and the outbox. Every operation needs
 * `campaign.manage` and writes one audit entry with its change; answers
 * are JSON into a kp_buf. The HTTP routes (src/server/http_marketing.c)
 * and the scheduler (src/server/scheduler.c) are thin layers over these.
 */
#ifndef KOPILKA_SERVICE_MARKETING_H
#define KOPILKA_SERVICE_MARKETING_H

#include <kopilka/marketing.h>

#include "people.h"

enum {
    KP_SEGMENT_SAMPLE = 20,            /* customers a segment's answer shows */
    KP_CAMPAIGN_MEMBERS_MAX = 1000000, /* customers one campaign's list may hold */
    KP_CAMPAIGN_STEP = 200,            /* members one run step grants, by default */
    KP_CAMPAIGN_STEP_MAX = 10000,
};

/* ---- segments */
/* (read) {"count", "sample": [...]} of {"filter": {...}}: the live count
 * while a filter is edited. Errors name the field ("filter.spend.min"),
 * the problem and what is allowed. */
kp_err kp_segment_preview(kp_office *o, const char *body, size_t len, kp_buf *out, kp_error *e);
/* (write) {"name", "filter"}: a new segment; answers it with its count. */
kp_err kp_segment_create(kp_office *o, const char *body, size_t len, kp_buf *out, kp_error *e);
/* (write) A new name and/or filter. */
kp_err kp_segment_update(kp_office *o, int64_t id, const char *body, size_t len, kp_buf *out,
                         kp_error *e);
kp_err kp_segment_delete(kp_office *o, int64_t id, kp_buf *out, kp_error *e);
/* (read) The segment, its count and sample now. */
kp_err kp_segment_show(kp_office *o, int64_t id, kp_buf *out, kp_error *e);
kp_err kp_segments_list(kp_office *o, kp_buf *out, kp_error *e);

/* ---- campaigns */
/* (write) A draft from {"name", "segment", "grant": {"kind", "points",
 * "validity_days"}, "budget", "control_share", "message": {"subject":
 * {lang: text}, "text": {...}, "html": {...}}, "every_months"}. */
kp_err kp_campaign_create(kp_office *o, const char *body, size_t len, kp_buf *out, kp_error *e);
/* (write) The same fields, while a draft. */
kp_err kp_campaign_update(kp_office *o, int64_t id, const char *body, size_t len, kp_buf *out,
                          kp_error *e);
/* (read) The campaign and its progress. */
kp_err kp_campaign_show(kp_office *o, int64_t id, kp_buf *out, kp_error *e);
kp_err kp_campaigns_list(kp_office *o, kp_buf *out, kp_error *e);
/* (read) Who (count, sample), how much (points, cost at the program's
 * rate, what the budget allows), the message as each channel shows it. */
kp_err kp_campaign_preview(kp_office *o, int64_t id, kp_buf *out, kp_error *e);
/* (write) {"at": time} (absent: now): a draft becomes scheduled; the
 * scheduler starts it at `at`. */
kp_err kp_campaign_start(kp_office *o, int64_t id, const char *body, size_t len, kp_buf *out,
                         kp_error *e);
/* (write) A draft, scheduled or running campaign stops where it is. */
kp_err kp_campaign_cancel(kp_office *o, int64_t id, kp_buf *out, kp_error *e);
/* (read) Grants, messages, points used, and the members' revenue in the
 * `window_days` before and after the start, targeted vs control. */
kp_err kp_campaign_results(kp_office *o, int64_t id, int64_t window_days, kp_buf *out, kp_error *e);

/* (write) One step of campaign `id`'s run at o->now, in the caller's
 * transaction: a scheduled one that is due takes its list (the segment
 * evaluated once, the control group held out) and starts, and the next
 * run of a recurring one is scheduled; a running one grants up to `step`
 * pending members (0: KP_CAMPAIGN_STEP) (a ledger grant each, keyed
 * "campaign/<id>/<customer>", and its message) and finishes when none is
 * left. *more: call again. Nothing to do (another step did it) is KP_OK. */
kp_err kp_campaign_step(kp_office *o, int64_t id, size_t step, bool *more, kp_error *e);

/* A start's list taken outside the writer (kp_campaign_prepare): the
 * campaign, the filter text the list was taken with and its members
 * (control group marked), or, when its segment is gone or its filter no
 * longer holds, why it is not started. */
typedef struct kp_campaign_list {
    int64_t id;
    bool refused;
    char why[320];
    char filter[KP_SEGMENT_FILTER_MAX];
    size_t n, cap;
    kp_campaign_member *members;
} kp_campaign_list;

/* (read) When campaign `id` is scheduled and due at o->now (or STARTING:
 * a start cut short, redone from scratch), evaluates its
 * segment on o->st (a reader: the server's scheduler connection, never
 * the writer, so the tills do not wait for the evaluation) into *out
 * (NULL when there is nothing to start); kp_campaign_list_free() it. */
kp_err kp_campaign_prepare(kp_office *o, int64_t id, kp_campaign_list **out, kp_error *e);
void kp_campaign_list_free(kp_campaign_list *s);

/* kp_campaign_step with the list prepared outside the writer: a due start
 * writes `start`'s members (when start->id is the campaign's) instead of
 * evaluating the segment in the writer's transaction; NULL = as
 * kp_campaign_step. A campaign no longer scheduled (cancelled, started by
 * another server) ignores it. */
kp_err kp_campaign_step_with(kp_office *o, int64_t id, size_t step, const kp_campaign_list *start,
                             bool *more, kp_error *e);

/* Where a start written in chunks stands: whether the first job has run
 * (the list of a start cut short removed, the campaign made STARTING, this
 * attempt numbered), the members written so far and the attempt's number
 * (kept in the job state "campaign:<id>", so a job of an older attempt
 * finds it changed and writes nothing). */
typedef struct kp_campaign_start_pos {
    bool begun;
    size_t written;
    int64_t attempt;
} kp_campaign_start_pos;

/* (write) One writer job of a start whose list was prepared outside the
 * writer (kp_campaign_prepare), in the caller's transaction: the first
 * removes up to `chunk` members left by a start cut short (again while any
 * is left), then makes the campaign STARTING under a new attempt; each
 * writes the next `chunk` members of `start` (0: all of them); the one
 * that writes the last makes it RUNNING (started_at, the next run of a
 * recurring one, the audit entry "campaign.run" with "evaluated=reader").
 * A campaign no longer due or STARTING under this attempt (cancelled,
 * taken over) is left as it is. *next is where the start stands after
 * this job (valid when it commits); *more: call again with it. */
kp_err kp_campaign_start_chunk(kp_office *o, const kp_campaign_list *start, size_t chunk,
                               const kp_campaign_start_pos *at, kp_campaign_start_pos *next,
                               bool *more, kp_error *e);

/* Whether customer `customer_id` of campaign `campaign_id` is held out
 * with `control_bp` in 10 000: a fixed hash of the two ids, so the same
 * campaign always holds out the same customers. */
bool kp_campaign_is_control(int64_t campaign_id, int64_t customer_id, int32_t control_bp);

#endif
