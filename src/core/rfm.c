/*
 * rfm.c: RFM scores by quintiles and the R x F segment map (rfm.h,
 * docs/analytics.md "The customers report"). Pure: members in, scores and
 * names out.
 */
#include <kopilka/rfm.h>

#include <stdlib.h>
#include <string.h>

kp_err kp_rfm_set_add(kp_rfm_set *set, kp_rfm_member m)
{
    size_t limit = set->limit ? set->limit : KP_RFM_MEMBERS_DEFAULT_LIMIT;
    if (set->n >= limit) return KP_ERR_LIMIT;
    if (set->n == set->cap) {
        size_t cap = set->cap < 1024 ? 1024 : set->cap + set->cap / 2;
        if (cap > limit) cap = limit;
        kp_rfm_member *grown = realloc(set->members, cap * sizeof *grown);
        if (grown == NULL) return KP_ERR_NOMEM;
        set->members = grown;
        set->cap = cap;
    }
    set->members[set->n++] = m;
    return KP_OK;
}

void kp_rfm_set_release(kp_rfm_set *set)
{
    free(set->members);
    set->members = NULL;
    set->n = set->cap = 0;
}

/* Each figure as a "higher is better" value: recency on -days. */
static int64_t value_r(const kp_rfm_member *m) { return -(int64_t)m->recency_days; }
static int64_t value_f(const kp_rfm_member *m) { return m->frequency; }
static int64_t value_m(const kp_rfm_member *m) { return m->monetary; }

static int cmp64(int64_t a, int64_t b) { return (a > b) - (a < b); }
static int by_r(const void *a, const void *b) { return cmp64(value_r(a), value_r(b)); }
static int by_f(const void *a, const void *b) { return cmp64(value_f(a), value_f(b)); }
static int by_m(const void *a, const void *b) { return cmp64(value_m(a), value_m(b)); }

/* The four boundaries of one figure: sorted ascending, the k-th is the
 * largest value of the first k fifths, s[ceil(k n / 5) - 1]. */
static void bounds(kp_rfm_set *set, int (*cmp)(const void *, const void *),
                   int64_t (*value)(const kp_rfm_member *), int64_t out[4])
{
    qsort(set->members, set->n, sizeof set->members[0], cmp);
    for (size_t k = 1; k <= 4; k++) {
        size_t at = (k * set->n + 4) / 5 - 1;
        out[k - 1] = value(&set->members[at]);
    }
}

void kp_rfm_cut(kp_rfm_set *set, kp_rfm_cutoffs *out)
{
    memset(out, 0, sizeof *out);
    out->n = set->n;
    if (set->n == 0) return;
    int64_t r[4];
    bounds(set, by_r, value_r, r);
    for (int k = 0; k < 4; k++) out->recency[k] = -r[k];
    bounds(set, by_f, value_f, out->frequency);
    bounds(set, by_m, value_m, out->monetary);
}

/* 1 + the boundaries the value is above. */
static int score(int64_t v, const int64_t b[4])
{
    int s = 1;
    for (int k = 0; k < 4; k++) s += v > b[k];
    return s;
}

kp_rfm_score kp_rfm_score_of(const kp_rfm_cutoffs *c, const kp_rfm_member *m)
{
    kp_rfm_score s = {1, 1, 1};
    if (c->n == 0) return s;
    int64_t r[4];
    for (int k = 0; k < 4; k++) r[k] = -c->recency[k];
    s.r = score(value_r(m), r);
    s.f = score(value_f(m), c->frequency);
    s.m = score(value_m(m), c->monetary);
    return s;
}

/* The map, rows R 5 down to 1, columns F 1 to 5 (docs/analytics.md). */
static const kp_rfm_segment MAP[5][5] = {
    /* R 5 */ {KP_RFM_NEW, KP_RFM_POTENTIAL_LOYALISTS, KP_RFM_POTENTIAL_LOYALISTS, KP_RFM_CHAMPIONS,
               KP_RFM_CHAMPIONS},
    /* R 4 */ {KP_RFM_PROMISING, KP_RFM_POTENTIAL_LOYALISTS, KP_RFM_POTENTIAL_LOYALISTS, KP_RFM_LOYAL,
               KP_RFM_LOYAL},
    /* R 3 */ {KP_RFM_ABOUT_TO_SLEEP, KP_RFM_ABOUT_TO_SLEEP, KP_RFM_NEED_ATTENTION, KP_RFM_LOYAL,
               KP_RFM_LOYAL},
    /* R 2 */ {KP_RFM_HIBERNATING, KP_RFM_HIBERNATING, KP_RFM_AT_RISK, KP_RFM_AT_RISK,
               KP_RFM_CANT_LOSE},
    /* R 1 */ {KP_RFM_LOST, KP_RFM_LOST, KP_RFM_AT_RISK, KP_RFM_AT_RISK, KP_RFM_CANT_LOSE},
};

static int clamp(int v) { return v < 1 ? 1 : v > 5 ? 5 : v; }

kp_rfm_segment kp_rfm_segment_of(int r, int f) { return MAP[5 - clamp(r)][clamp(f) - 1]; }

static const char *const NAMES[KP_RFM_SEGMENTS] = {
    [KP_RFM_CHAMPIONS] = "champions",
    [KP_RFM_LOYAL] = "loyal",
    [KP_RFM_POTENTIAL_LOYALISTS] = "potential_loyalists",
    [KP_RFM_NEW] = "new",
    [KP_RFM_PROMISING] = "promising",
    [KP_RFM_NEED_ATTENTION] = "need_attention",
    [KP_RFM_ABOUT_TO_SLEEP] = "about_to_sleep",
    [KP_RFM_AT_RISK] = "at_risk",
    [KP_RFM_CANT_LOSE] = "cant_lose",
    [KP_RFM_HIBERNATING] = "hibernating",
    [KP_RFM_LOST] = "lost",
};

const char *kp_rfm_segment_name(kp_rfm_segment s)
{
    return (int)s >= 0 && s < KP_RFM_SEGMENTS ? NAMES[s] : "";
}

kp_rfm_segment kp_rfm_segment_parse(const char *name)
{
    for (int s = 0; name && s < KP_RFM_SEGMENTS; s++)
        if (strcmp(NAMES[s], name) == 0) return (kp_rfm_segment)s;
    return KP_RFM_SEGMENTS;
}
