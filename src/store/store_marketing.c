/*
 * store_marketing.c: segments and campaigns (kopilka/marketing.h) in
 * portable SQL, one text per operation for both backends
 * (store_marketing.h): integer arithmetic, COALESCE, LENGTH and REPLACE,
 * CASE, ON CONFLICT DO NOTHING and RETURNING, which SQLite and PostgreSQL
 * read alike. A list of names (",gold,silver,") contains a name when
 * removing ",name," from it makes it shorter: an exact match with no
 * pattern characters to escape.
 */
#include "store_marketing.h"

#include <stdio.h>
#include <string.h>

#define SEG_COLS "id, name, filter, created_at, updated_at, actor"
#define CAMP_COLS                                                                                  \
    "id, name, segment_id, filter, kind, points, validity_days, budget, control_bp, message, "     \
    "state, start_at, every_months, parent_id, created_at, started_at, finished_at, actor, note, " \
    "granted, rule, program_version"
/* A customer who never bought: before every instant a filter names. */
#define NEVER "(-4611686018427387904)"

const store_mk_sql store_mk_queries[MK__COUNT] = {
    [MK_SEG_INSERT] = {"INSERT INTO segments(name, filter, created_at, updated_at, actor) "
                       "VALUES ($1, $2, $3, $4, $5) RETURNING id",
                       "ttiit", "i"},
    [MK_SEG_UPDATE] = {"UPDATE segments SET name = $2, filter = $3, updated_at = $4, actor = $5 "
                       "WHERE id = $1",
                       "ittit", ""},
    [MK_SEG_GET] = {"SELECT " SEG_COLS " FROM segments WHERE id = $1", "i", "ittiit"},
    [MK_SEG_LIST] = {"SELECT " SEG_COLS " FROM segments ORDER BY name LIMIT $1", "i", "ittiit"},
    [MK_SEG_DELETE] = {"DELETE FROM segments WHERE id = $1", "i", ""},
    /* $1 after, $2 limit, $3 from, $4 to, $5..$6 spend, $7..$8 visits, $9
     * last_before, $10 last_after, $11 tiers, $12 stores, $13 card states,
     * $14 consent channels, $15 whether spend or visits filter, $16
     * whether recency does. */
    [MK_SEG_SCAN] =
        {"SELECT c.id, c.account_id FROM customers c "
         "LEFT JOIN account_rules r ON r.account_id = c.account_id "
         "WHERE c.id > $1 AND c.state = 0 "
         "AND ($11 = '' OR LENGTH(REPLACE($11, ',' || COALESCE(r.tier, '') || ',', '')) "
         "< LENGTH($11)) "
         "AND ($15 = 0 OR ((SELECT COALESCE(SUM(o.amount), 0) FROM ops o "
         "WHERE o.account_id = c.account_id AND o.type IN (1, 2) AND o.at >= $3 AND o.at < $4) "
         "BETWEEN $5 AND $6 AND (SELECT COUNT(*) FROM ops o WHERE o.account_id = c.account_id "
         "AND o.type = 1 AND o.at >= $3 AND o.at < $4) BETWEEN $7 AND $8)) "
         "AND ($16 = 0 OR (SELECT COALESCE(MAX(o.at), " NEVER ") FROM ops o "
         "WHERE o.account_id = c.account_id AND o.type = 1) BETWEEN $10 AND $9) "
         "AND ($12 = '' OR EXISTS (SELECT 1 FROM ops o WHERE o.account_id = c.account_id "
         "AND o.type = 1 AND o.at >= $3 AND o.at < $4 "
         "AND LENGTH(REPLACE($12, ',' || o.store || ',', '')) < LENGTH($12))) "
         "AND ($13 = 0 OR EXISTS (SELECT 1 FROM card_info i JOIN cards k ON k.number = i.number "
         "WHERE i.customer_id = c.id AND ((CASE k.state WHEN 0 THEN 1 WHEN 1 THEN 2 WHEN 2 THEN 4 "
         "ELSE 8 END) & $13) <> 0)) "
         "AND ($14 = 0 OR EXISTS (SELECT 1 FROM notify_prefs n WHERE n.customer_id = c.id "
         "AND n.marketing_consent_at > 0 AND (n.marketing & $14) <> 0)) "
         "ORDER BY c.id LIMIT $2",
         "iiiiiiiiiittiiii", "ii"},
    [MK_CAMP_INSERT] = {"INSERT INTO campaigns(name, segment_id, filter, kind, points, "
                        "validity_days, budget, control_bp, message, state, start_at, "
                        "every_months, parent_id, created_at, started_at, finished_at, actor, "
                        "note, granted, rule, program_version) VALUES ($1, $2, $3, $4, $5, $6, "
                        "$7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21) "
                        "RETURNING id",
                        "tittiiiitiiiiiiittiti", "i"},
    [MK_CAMP_UPDATE] = {"UPDATE campaigns SET name = $2, segment_id = $3, filter = $4, kind = $5, "
                        "points = $6, validity_days = $7, budget = $8, control_bp = $9, "
                        "message = $10, state = $11, start_at = $12, every_months = $13, "
                        "parent_id = $14, created_at = $15, started_at = $16, finished_at = $17, "
                        "actor = $18, note = $19, granted = $20, rule = $21, "
                        "program_version = $22 WHERE id = $1",
                        "itittiiiitiiiiiiittiti", ""},
    [MK_CAMP_GET] = {"SELECT " CAMP_COLS " FROM campaigns WHERE id = $1", "i",
                     "itittiiiitiiiiiiittiti"},
    [MK_CAMP_LIST] = {"SELECT " CAMP_COLS " FROM campaigns WHERE ($1 = 0 OR id < $1) "
                      "ORDER BY id DESC LIMIT $2",
                      "ii", "itittiiiitiiiiiiittiti"},
    [MK_CAMP_DUE] = {"SELECT id FROM campaigns WHERE state IN (2, 5) "
                     "OR (state = 1 AND start_at <= $1) "
                     "ORDER BY id LIMIT $2",
                     "ii", "i"},
    [MK_MEM_ADD] = {"INSERT INTO campaign_members(campaign_id, customer_id, account_id, state, "
                    "op_id, points) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                    "iiiiii", ""},
    [MK_MEM_LIST] = {"SELECT customer_id, account_id, state, op_id, points FROM campaign_members "
                     "WHERE campaign_id = $1 AND ($2 < 0 OR state = $2) AND customer_id > $3 "
                     "ORDER BY customer_id LIMIT $4",
                     "iiii", "iiiii"},
    /* The grant's lot, found among the open lots of the account granted
     * ($6) by the index lots_open, is kept with the member: the campaign's
     * "points used" then joins lots by primary key (MK_STATS_USED). */
    [MK_MEM_SETTLE] = {"UPDATE campaign_members SET state = $3, op_id = $4, points = $5, "
                       "lot_id = COALESCE((SELECT MAX(l.id) FROM lots l "
                       "WHERE l.account_id = $6 AND l.remaining > 0 AND l.op_id = $4), 0) "
                       "WHERE campaign_id = $1 AND customer_id = $2",
                       "iiiiii", ""},
    [MK_MEM_DELETE] = {"DELETE FROM campaign_members WHERE campaign_id = $1 AND customer_id IN "
                       "(SELECT customer_id FROM campaign_members WHERE campaign_id = $1 "
                       "ORDER BY customer_id LIMIT $2)",
                       "ii", ""},
    [MK_STATS_MEMBERS] = {"SELECT state, COUNT(*), COALESCE(SUM(points), 0) FROM campaign_members "
                          "WHERE campaign_id = $1 GROUP BY state",
                          "i", "iii"},
    /* Used (spent or expired) and, of it, expired: what the expiry took
     * from each lot (lots.expired, written by the expiry's plan only). */
    [MK_STATS_USED] = {"SELECT COALESCE(SUM(l.amount - l.remaining), 0), "
                       "COALESCE(SUM(l.expired), 0) FROM campaign_members m "
                       "JOIN lots l ON l.id = m.lot_id WHERE m.campaign_id = $1 AND m.lot_id > 0",
                       "i", "ii"},
    /* E-mail and SMS (not webhooks): 0 pending, 1 sent, 2 dead, 3 cancelled. */
    [MK_STATS_MESSAGES] = {"SELECT m.state, COUNT(*) FROM messages m "
                           "JOIN notify_events e ON e.id = m.event_id "
                           "WHERE e.key LIKE $1 AND m.channel IN (1, 2) GROUP BY m.state",
                           "t", "ii"},
    /* ($2 started_at, $3..$4 the window): control?, before, after. */
    [MK_STATS_REVENUE] = {"SELECT CASE WHEN m.state = 3 THEN 1 ELSE 0 END, "
                          "COALESCE(SUM(CASE WHEN o.at < $2 THEN o.amount ELSE 0 END), 0), "
                          "COALESCE(SUM(CASE WHEN o.at >= $2 THEN o.amount ELSE 0 END), 0) "
                          "FROM campaign_members m JOIN ops o ON o.account_id = m.account_id "
                          "WHERE m.campaign_id = $1 AND o.type IN (1, 2) AND o.at >= $3 "
                          "AND o.at < $4 GROUP BY 1",
                          "iiii", "iii"},
};

#define MK_TABLES(ID, INT, BLOBLESS)                                                               \
    "CREATE TABLE IF NOT EXISTS segments (id " ID ", name TEXT NOT NULL UNIQUE,"                   \
    "  filter TEXT NOT NULL, created_at " INT " NOT NULL, updated_at " INT " NOT NULL,"            \
    "  actor TEXT NOT NULL);"                                                                      \
    "CREATE TABLE IF NOT EXISTS campaigns (id " ID ", name TEXT NOT NULL,"                         \
    "  segment_id " INT " NOT NULL, filter TEXT NOT NULL, kind TEXT NOT NULL,"                     \
    "  points " INT " NOT NULL, validity_days " INT " NOT NULL, budget " INT " NOT NULL,"          \
    "  control_bp " INT " NOT NULL, message TEXT NOT NULL, state " INT " NOT NULL,"                \
    "  start_at " INT " NOT NULL, every_months " INT " NOT NULL, parent_id " INT " NOT NULL,"      \
    "  created_at " INT " NOT NULL, started_at " INT " NOT NULL, finished_at " INT " NOT NULL,"    \
    "  actor TEXT NOT NULL, note TEXT NOT NULL, granted " INT " NOT NULL);"                        \
    "CREATE INDEX IF NOT EXISTS campaigns_state ON campaigns(state, start_at);"                    \
    "CREATE TABLE IF NOT EXISTS campaign_members (campaign_id " INT " NOT NULL,"                   \
    "  customer_id " INT " NOT NULL, account_id " INT " NOT NULL, state " INT " NOT NULL,"         \
    "  op_id " INT " NOT NULL, points " INT " NOT NULL,"                                           \
    "  PRIMARY KEY (campaign_id, customer_id))" BLOBLESS ";"

const char store_sqlite_marketing_schema[] =
    MK_TABLES("INTEGER PRIMARY KEY", "INTEGER", " WITHOUT ROWID");
const char store_pg_marketing_schema[] =
    MK_TABLES("BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", "BIGINT", "");

/* campaign_members.lot_id, the lot of the member's grant (0: none), added
 * after the table (SQLite: at open when missing; PostgreSQL: migration 11,
 * with IF NOT EXISTS so a migration run again passes).
 * Members granted before it get theirs from the grant's operation in one
 * set-based UPDATE (a hash or an automatic index join, never a scan of
 * lots a member). */
const char store_mk_lot_column[] = "ALTER TABLE campaign_members ADD COLUMN lot_id BIGINT "
                                   "NOT NULL DEFAULT 0";
/* campaigns.rule and campaigns.program_version (a grant by a program
 * rule, the version its start pinned), added after the table: SQLite at
 * open when missing, PostgreSQL migration 16. */
const char store_mk_rule_columns[] =
    "ALTER TABLE campaigns ADD COLUMN rule TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE campaigns ADD COLUMN program_version BIGINT NOT NULL DEFAULT 0";
const char store_mk_lot_fill[] =
    "UPDATE campaign_members SET lot_id = l.id FROM lots l "
    "WHERE campaign_members.op_id > 0 AND l.op_id = campaign_members.op_id";

void kp_segment_query_any(kp_segment_query *q)
{
    memset(q, 0, sizeof *q);
    q->spend_min = INT64_MIN;
    q->spend_max = INT64_MAX;
    q->visits_max = INT64_MAX;
    q->last_before = INT64_MAX;
    q->last_after = INT64_MIN;
}

const char *kp_campaign_state_name(kp_campaign_state s)
{
    switch (s) {
    case KP_CAMPAIGN_DRAFT: return "draft";
    case KP_CAMPAIGN_SCHEDULED: return "scheduled";
    case KP_CAMPAIGN_RUNNING: return "running";
    case KP_CAMPAIGN_DONE: return "done";
    case KP_CAMPAIGN_CANCELLED: return "cancelled";
    case KP_CAMPAIGN_STARTING: return "starting";
    }
    return "unknown";
}

/* ---- row readers */

static void copy(char *out, size_t size, const char *t)
{
    snprintf(out, size, "%s", t ? t : "");
}

static kp_err one_id(void *ctx, const store_mk_val *c)
{
    *(int64_t *)ctx = c[0].i;
    return KP_OK;
}

static void seg_read(kp_segment *g, const store_mk_val *c)
{
    memset(g, 0, sizeof *g);
    g->id = c[0].i;
    copy(g->name, sizeof g->name, c[1].t);
    copy(g->filter, sizeof g->filter, c[2].t);
    g->created_at = c[3].i;
    g->updated_at = c[4].i;
    copy(g->actor, sizeof g->actor, c[5].t);
}

static void camp_read(kp_campaign *k, const store_mk_val *c)
{
    memset(k, 0, sizeof *k);
    k->id = c[0].i;
    copy(k->name, sizeof k->name, c[1].t);
    k->segment_id = c[2].i;
    copy(k->filter, sizeof k->filter, c[3].t);
    copy(k->kind, sizeof k->kind, c[4].t);
    k->points = c[5].i;
    k->validity_days = (int32_t)c[6].i;
    k->budget = c[7].i;
    k->control_bp = (int32_t)c[8].i;
    copy(k->message, sizeof k->message, c[9].t);
    k->state = (kp_campaign_state)c[10].i;
    k->start_at = c[11].i;
    k->every_months = (int32_t)c[12].i;
    k->parent_id = c[13].i;
    k->created_at = c[14].i;
    k->started_at = c[15].i;
    k->finished_at = c[16].i;
    copy(k->actor, sizeof k->actor, c[17].t);
    copy(k->note, sizeof k->note, c[18].t);
    k->granted = c[19].i;
    copy(k->rule, sizeof k->rule, c[20].t);
    k->program_version = c[21].i;
}

/* A page of rows into an array of `size`-byte items. */
typedef struct page {
    void *out;
    size_t size, limit, *n;
    void (*read)(void *item, const store_mk_val *c);
} page;

static kp_err page_row(void *ctx, const store_mk_val *c)
{
    page *p = ctx;
    if (*p->n >= p->limit) return KP_OK;
    p->read((char *)p->out + *p->n * p->size, c);
    ++*p->n;
    return KP_OK;
}

static void seg_item(void *item, const store_mk_val *c)
{
    seg_read(item, c);
}
static void camp_item(void *item, const store_mk_val *c)
{
    camp_read(item, c);
}

static void hit_item(void *item, const store_mk_val *c)
{
    kp_segment_hit *h = item;
    h->customer_id = c[0].i;
    h->account_id = c[1].i;
}

static void member_item(void *item, const store_mk_val *c)
{
    kp_campaign_member *m = item;
    m->customer_id = c[0].i;
    m->account_id = c[1].i;
    m->state = (kp_member_state)c[2].i;
    m->op_id = c[3].i;
    m->points = c[4].i;
}

static void id_item(void *item, const store_mk_val *c)
{
    *(int64_t *)item = c[0].i;
}

static kp_err found(kp_store *s, bool got, const char *what, int64_t id)
{
    if (got) return KP_OK;
    snprintf(s->last_error, sizeof s->last_error, "no %s has id %lld", what, (long long)id);
    return KP_ERR_NOT_FOUND;
}

/* ---- the operations over an executor */

static kp_err seg_insert(store_mk_exec_fn x, kp_store *s, kp_segment *g)
{
    store_mk_val v[5] = {{.t = g->name},
                         {.t = g->filter},
                         {.i = g->created_at},
                         {.i = g->updated_at},
                         {.t = g->actor}};
    return x(s, MK_SEG_INSERT, v, one_id, &g->id, NULL);
}

static kp_err seg_update(store_mk_exec_fn x, kp_store *s, const kp_segment *g)
{
    store_mk_val v[5] = {
        {.i = g->id}, {.t = g->name}, {.t = g->filter}, {.i = g->updated_at}, {.t = g->actor}};
    int64_t changes = 0;
    kp_err err = x(s, MK_SEG_UPDATE, v, NULL, NULL, &changes);
    return err ? err : found(s, changes > 0, "segment", g->id);
}

static kp_err seg_get(store_mk_exec_fn x, kp_store *s, int64_t id, kp_segment *out)
{
    size_t n = 0;
    page p = {out, sizeof *out, 1, &n, seg_item};
    store_mk_val v[1] = {{.i = id}};
    kp_err err = x(s, MK_SEG_GET, v, page_row, &p, NULL);
    return err ? err : found(s, n == 1, "segment", id);
}

static kp_err seg_list(store_mk_exec_fn x, kp_store *s, kp_segment *out, size_t limit, size_t *n)
{
    *n = 0;
    page p = {out, sizeof *out, limit, n, seg_item};
    store_mk_val v[1] = {{.i = (int64_t)limit}};
    return x(s, MK_SEG_LIST, v, page_row, &p, NULL);
}

static kp_err seg_delete(store_mk_exec_fn x, kp_store *s, int64_t id)
{
    store_mk_val v[1] = {{.i = id}};
    int64_t changes = 0;
    kp_err err = x(s, MK_SEG_DELETE, v, NULL, NULL, &changes);
    return err ? err : found(s, changes > 0, "segment", id);
}

static kp_err seg_scan(store_mk_exec_fn x, kp_store *s, const kp_segment_query *q, int64_t after,
                       kp_segment_hit *out, size_t limit, size_t *n)
{
    *n = 0;
    bool period = q->spend_min != INT64_MIN || q->spend_max != INT64_MAX || q->visits_min > 0 ||
                  q->visits_max != INT64_MAX;
    bool recency = q->last_before != INT64_MAX || q->last_after != INT64_MIN;
    store_mk_val v[16] = {
        {.i = after},          {.i = (int64_t)limit},
        {.i = q->from},        {.i = q->to},
        {.i = q->spend_min},   {.i = q->spend_max},
        {.i = q->visits_min},  {.i = q->visits_max},
        {.i = q->last_before}, {.i = q->last_after},
        {.t = q->tiers},       {.t = q->stores},
        {.i = q->card_states}, {.i = q->consent_channels},
        {.i = period},         {.i = recency},
    };
    page p = {out, sizeof *out, limit, n, hit_item};
    return x(s, MK_SEG_SCAN, v, page_row, &p, NULL);
}

static void camp_vals(const kp_campaign *c, store_mk_val *v)
{
    store_mk_val all[22] = {
        {.i = c->id},           {.t = c->name},      {.i = c->segment_id},    {.t = c->filter},
        {.t = c->kind},         {.i = c->points},    {.i = c->validity_days}, {.i = c->budget},
        {.i = c->control_bp},   {.t = c->message},   {.i = c->state},         {.i = c->start_at},
        {.i = c->every_months}, {.i = c->parent_id}, {.i = c->created_at},    {.i = c->started_at},
        {.i = c->finished_at},  {.t = c->actor},     {.t = c->note},          {.i = c->granted},
        {.t = c->rule},         {.i = c->program_version},
    };
    memcpy(v, all, sizeof all);
}

static kp_err camp_insert(store_mk_exec_fn x, kp_store *s, kp_campaign *c)
{
    store_mk_val v[22];
    camp_vals(c, v);
    return x(s, MK_CAMP_INSERT, v + 1, one_id, &c->id, NULL);
}

static kp_err camp_update(store_mk_exec_fn x, kp_store *s, const kp_campaign *c)
{
    store_mk_val v[22];
    camp_vals(c, v);
    int64_t changes = 0;
    kp_err err = x(s, MK_CAMP_UPDATE, v, NULL, NULL, &changes);
    return err ? err : found(s, changes > 0, "campaign", c->id);
}

static kp_err camp_get(store_mk_exec_fn x, kp_store *s, int64_t id, kp_campaign *out)
{
    size_t n = 0;
    page p = {out, sizeof *out, 1, &n, camp_item};
    store_mk_val v[1] = {{.i = id}};
    kp_err err = x(s, MK_CAMP_GET, v, page_row, &p, NULL);
    return err ? err : found(s, n == 1, "campaign", id);
}

static kp_err camp_list(store_mk_exec_fn x, kp_store *s, int64_t before, kp_campaign *out,
                        size_t limit, size_t *n)
{
    *n = 0;
    page p = {out, sizeof *out, limit, n, camp_item};
    store_mk_val v[2] = {{.i = before}, {.i = (int64_t)limit}};
    return x(s, MK_CAMP_LIST, v, page_row, &p, NULL);
}

static kp_err camp_due(store_mk_exec_fn x, kp_store *s, kp_time now, int64_t *ids, size_t limit,
                       size_t *n)
{
    *n = 0;
    page p = {ids, sizeof *ids, limit, n, id_item};
    store_mk_val v[2] = {{.i = now}, {.i = (int64_t)limit}};
    return x(s, MK_CAMP_DUE, v, page_row, &p, NULL);
}

static kp_err mem_add(store_mk_exec_fn x, kp_store *s, int64_t campaign_id,
                      const kp_campaign_member *m, size_t n)
{
    kp_err err = KP_OK;
    for (size_t i = 0; err == KP_OK && i < n; i++) {
        store_mk_val v[6] = {{.i = campaign_id}, {.i = m[i].customer_id}, {.i = m[i].account_id},
                             {.i = m[i].state},  {.i = m[i].op_id},       {.i = m[i].points}};
        err = x(s, MK_MEM_ADD, v, NULL, NULL, NULL);
    }
    return err;
}

static kp_err mem_list(store_mk_exec_fn x, kp_store *s, int64_t campaign_id, int state,
                       int64_t after, kp_campaign_member *out, size_t limit, size_t *n)
{
    *n = 0;
    page p = {out, sizeof *out, limit, n, member_item};
    store_mk_val v[4] = {{.i = campaign_id}, {.i = state}, {.i = after}, {.i = (int64_t)limit}};
    return x(s, MK_MEM_LIST, v, page_row, &p, NULL);
}

static kp_err mem_settle(store_mk_exec_fn x, kp_store *s, int64_t campaign_id,
                         const kp_campaign_member *m)
{
    store_mk_val v[6] = {{.i = campaign_id}, {.i = m->customer_id}, {.i = m->state},
                         {.i = m->op_id},    {.i = m->points},      {.i = m->account_id}};
    int64_t changes = 0;
    kp_err err = x(s, MK_MEM_SETTLE, v, NULL, NULL, &changes);
    return err ? err : found(s, changes > 0, "campaign member", m->customer_id);
}

static kp_err mem_delete(store_mk_exec_fn x, kp_store *s, int64_t campaign_id, size_t limit,
                         size_t *n)
{
    store_mk_val v[2] = {{.i = campaign_id}, {.i = limit > INT64_MAX ? INT64_MAX : (int64_t)limit}};
    int64_t changes = 0;
    kp_err err = x(s, MK_MEM_DELETE, v, NULL, NULL, &changes);
    *n = err ? 0 : (size_t)changes;
    return err;
}

static kp_err stats_used(void *ctx, const store_mk_val *c)
{
    kp_campaign_stats *out = ctx;
    out->used = c[0].i;
    out->expired = c[1].i;
    return KP_OK;
}

static kp_err stats_member(void *ctx, const store_mk_val *c)
{
    kp_campaign_stats *st = ctx;
    if (c[0].i >= 0 && c[0].i < 5) st->by_state[c[0].i] += c[1].i;
    st->members += c[1].i;
    st->points += c[2].i;
    return KP_OK;
}

static kp_err stats_message(void *ctx, const store_mk_val *c)
{
    kp_campaign_stats *st = ctx;
    if (c[0].i == 0) st->messages_pending += c[1].i;
    if (c[0].i == 1) st->messages_sent += c[1].i;
    return KP_OK;
}

static kp_err stats_revenue(void *ctx, const store_mk_val *c)
{
    kp_campaign_stats *st = ctx;
    int g = c[0].i ? 1 : 0;
    st->revenue_before[g] = c[1].i;
    st->revenue_after[g] = c[2].i;
    return KP_OK;
}

static kp_err camp_stats(store_mk_exec_fn x, kp_store *s, const kp_campaign *c, kp_time window,
                         kp_campaign_stats *out)
{
    memset(out, 0, sizeof *out);
    store_mk_val id[1] = {{.i = c->id}};
    kp_err err = x(s, MK_STATS_MEMBERS, id, stats_member, out, NULL);
    if (err == KP_OK) err = x(s, MK_STATS_USED, id, stats_used, out, NULL);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "campaign:#%lld:%%", (long long)c->id);
    store_mk_val pv[1] = {{.t = prefix}};
    if (err == KP_OK) err = x(s, MK_STATS_MESSAGES, pv, stats_message, out, NULL);
    if (err == KP_OK && window > 0 && c->started_at > 0) {
        store_mk_val rv[4] = {{.i = c->id},
                              {.i = c->started_at},
                              {.i = c->started_at - window},
                              {.i = c->started_at + window}};
        err = x(s, MK_STATS_REVENUE, rv, stats_revenue, out, NULL);
    }
    if (err) memset(out, 0, sizeof *out);
    return err;
}

/* One ops table per executor: each entry hands its executor to the shared
 * operation above. */
#define MK_OPS(NAME, X)                                                                            \
    static kp_err NAME##_si(kp_store *s, kp_segment *g)                                            \
    {                                                                                              \
        return seg_insert(X, s, g);                                                                \
    }                                                                                              \
    static kp_err NAME##_su(kp_store *s, const kp_segment *g)                                      \
    {                                                                                              \
        return seg_update(X, s, g);                                                                \
    }                                                                                              \
    static kp_err NAME##_sg(kp_store *s, int64_t id, kp_segment *o)                                \
    {                                                                                              \
        return seg_get(X, s, id, o);                                                               \
    }                                                                                              \
    static kp_err NAME##_sl(kp_store *s, kp_segment *o, size_t l, size_t *n)                       \
    {                                                                                              \
        return seg_list(X, s, o, l, n);                                                            \
    }                                                                                              \
    static kp_err NAME##_sd(kp_store *s, int64_t id)                                               \
    {                                                                                              \
        return seg_delete(X, s, id);                                                               \
    }                                                                                              \
    static kp_err NAME##_ss(kp_store *s, const kp_segment_query *q, int64_t a, kp_segment_hit *o,  \
                            size_t l, size_t *n)                                                   \
    {                                                                                              \
        return seg_scan(X, s, q, a, o, l, n);                                                      \
    }                                                                                              \
    static kp_err NAME##_ci(kp_store *s, kp_campaign *c)                                           \
    {                                                                                              \
        return camp_insert(X, s, c);                                                               \
    }                                                                                              \
    static kp_err NAME##_cu(kp_store *s, const kp_campaign *c)                                     \
    {                                                                                              \
        return camp_update(X, s, c);                                                               \
    }                                                                                              \
    static kp_err NAME##_cg(kp_store *s, int64_t id, kp_campaign *o)                               \
    {                                                                                              \
        return camp_get(X, s, id, o);                                                              \
    }                                                                                              \
    static kp_err NAME##_cl(kp_store *s, int64_t b, kp_campaign *o, size_t l, size_t *n)           \
    {                                                                                              \
        return camp_list(X, s, b, o, l, n);                                                        \
    }                                                                                              \
    static kp_err NAME##_cd(kp_store *s, kp_time now, int64_t *o, size_t l, size_t *n)             \
    {                                                                                              \
        return camp_due(X, s, now, o, l, n);                                                       \
    }                                                                                              \
    static kp_err NAME##_ma(kp_store *s, int64_t c, const kp_campaign_member *m, size_t n)         \
    {                                                                                              \
        return mem_add(X, s, c, m, n);                                                             \
    }                                                                                              \
    static kp_err NAME##_ml(kp_store *s, int64_t c, int st, int64_t a, kp_campaign_member *o,      \
                            size_t l, size_t *n)                                                   \
    {                                                                                              \
        return mem_list(X, s, c, st, a, o, l, n);                                                  \
    }                                                                                              \
    static kp_err NAME##_md(kp_store *s, int64_t c, size_t l, size_t *n)                           \
    {                                                                                              \
        return mem_delete(X, s, c, l, n);                                                          \
    }                                                                                              \
    static kp_err NAME##_ms(kp_store *s, int64_t c, const kp_campaign_member *m)                   \
    {                                                                                              \
        return mem_settle(X, s, c, m);                                                             \
    }                                                                                              \
    static kp_err NAME##_st(kp_store *s, const kp_campaign *c, kp_time w, kp_campaign_stats *o)    \
    {                                                                                              \
        return camp_stats(X, s, c, w, o);                                                          \
    }                                                                                              \
    const kp_marketing_ops NAME = {                                                                \
        .segment_insert = NAME##_si,                                                               \
        .segment_update = NAME##_su,                                                               \
        .segment_get = NAME##_sg,                                                                  \
        .segment_list = NAME##_sl,                                                                 \
        .segment_delete = NAME##_sd,                                                               \
        .segment_scan = NAME##_ss,                                                                 \
        .campaign_insert = NAME##_ci,                                                              \
        .campaign_update = NAME##_cu,                                                              \
        .campaign_get = NAME##_cg,                                                                 \
        .campaign_list = NAME##_cl,                                                                \
        .campaigns_due = NAME##_cd,                                                                \
        .members_add = NAME##_ma,                                                                  \
        .members_list = NAME##_ml,                                                                 \
        .members_delete = NAME##_md,                                                               \
        .member_settle = NAME##_ms,                                                                \
        .campaign_stats = NAME##_st,                                                               \
    };

MK_OPS(store_sqlite_marketing_ops, store_sqlite_mk_exec)
MK_OPS(store_pg_marketing_ops, store_pg_mk_exec)
