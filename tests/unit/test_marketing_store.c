/*
 * test_marketing_store.c: the contract suite of the segments and campaigns
 * storage seam (kopilka/marketing.h, kp_store_ops.marketing), run against
 * every backend (KOPILKA_TEST_STORE=pg: PostgreSQL; else SQLite), through
 * the seam only: segments kept with odd text, a taken name refused, a
 * missing one not found; a campaign's every field read back; the list
 * newest first; which campaigns are due; members added once, listed by
 * state in customer order, settled, counted; the scan's query with every
 * criterion switched on is one both backends read (the counts over real
 * customers are tests/integration/test_campaigns.py's).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fixture.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopilka/marketing.h>
#include <kopilka/store.h>

#define T0 ((kp_time)1780000000)

typedef struct fx {
    char location[FIXTURE_LOCATION_MAX];
    kp_store *s;
    const kp_marketing_ops *o;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    fixture_location(f->location, "marketing");
    kp_error e = {0};
    if (kp_store_open(f->location, true, &f->s, &e) != KP_OK) {
        fprintf(stderr, "cannot open %s: %s\n", f->location, e.message);
        return -1;
    }
    f->o = f->s->ops->marketing;
    *state = f;
    return f->o ? 0 : -1;
}

static int teardown(void **state)
{
    fx *f = *state;
    kp_store_close(f->s);
    fixture_remove(f->location);
    free(f);
    return 0;
}

static void test_segments(void **state)
{
    fx *f = *state;
    kp_segment g = {0}, h = {0}, got;
    snprintf(g.name, sizeof g.name, "Lada «Vesta» owners");
    snprintf(g.filter, sizeof g.filter, "{\"attributes\":{\"car_model\":{\"in\":[\"a'b\\\"c\"]}}}");
    g.created_at = g.updated_at = T0;
    snprintf(g.actor, sizeof g.actor, "staff:mia");
    assert_int_equal(f->o->segment_insert(f->s, &g), KP_OK);
    assert_true(g.id > 0);
    assert_int_equal(f->o->segment_get(f->s, g.id, &got), KP_OK);
    assert_string_equal(got.name, g.name);
    assert_string_equal(got.filter, g.filter);
    assert_string_equal(got.actor, "staff:mia");
    assert_int_equal(got.created_at, T0);
    /* A name taken: refused, nothing written. */
    h = g;
    h.id = 0;
    assert_int_equal(f->o->segment_insert(f->s, &h), KP_ERR_CONFLICT);
    snprintf(h.name, sizeof h.name, "A first");
    assert_int_equal(f->o->segment_insert(f->s, &h), KP_OK);
    kp_segment list[4];
    size_t n = 0;
    assert_int_equal(f->o->segment_list(f->s, list, 4, &n), KP_OK);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].name, "A first"); /* by name */
    /* Update: another's name refused; a missing id not found. */
    got.updated_at = T0 + 5;
    snprintf(got.name, sizeof got.name, "A first");
    assert_int_equal(f->o->segment_update(f->s, &got), KP_ERR_CONFLICT);
    snprintf(got.name, sizeof got.name, "Renamed");
    assert_int_equal(f->o->segment_update(f->s, &got), KP_OK);
    assert_int_equal(f->o->segment_get(f->s, g.id, &got), KP_OK);
    assert_string_equal(got.name, "Renamed");
    assert_int_equal(got.updated_at, T0 + 5);
    got.id = 999999;
    assert_int_equal(f->o->segment_update(f->s, &got), KP_ERR_NOT_FOUND);
    assert_int_equal(f->o->segment_delete(f->s, g.id), KP_OK);
    assert_int_equal(f->o->segment_delete(f->s, g.id), KP_ERR_NOT_FOUND);
    assert_int_equal(f->o->segment_get(f->s, g.id, &got), KP_ERR_NOT_FOUND);
}

static void test_campaigns(void **state)
{
    fx *f = *state;
    kp_campaign *c = calloc(1, sizeof *c), *got = calloc(1, sizeof *got);
    snprintf(c->name, sizeof c->name, "Spring");
    c->segment_id = 3;
    snprintf(c->filter, sizeof c->filter, "{\"tier\":[\"gold\"]}");
    snprintf(c->kind, sizeof c->kind, "premium");
    c->points = 500;
    c->validity_days = 30;
    c->budget = 10000;
    c->control_bp = 1000;
    snprintf(c->message, sizeof c->message, "{\"text\":{\"ru\":\"Привет, {{first_name}}\"}}");
    c->state = KP_CAMPAIGN_SCHEDULED;
    c->start_at = T0 + 100;
    c->every_months = 1;
    c->parent_id = 0;
    c->created_at = T0;
    snprintf(c->actor, sizeof c->actor, "staff:mia");
    assert_int_equal(f->o->campaign_insert(f->s, c), KP_OK);
    assert_true(c->id > 0);
    assert_int_equal(f->o->campaign_get(f->s, c->id, got), KP_OK);
    assert_memory_equal(got, c, sizeof *c);
    /* Due: scheduled once its time comes; running always. */
    int64_t ids[4];
    size_t n;
    assert_int_equal(f->o->campaigns_due(f->s, T0 + 99, ids, 4, &n), KP_OK);
    assert_int_equal(n, 0);
    assert_int_equal(f->o->campaigns_due(f->s, T0 + 100, ids, 4, &n), KP_OK);
    assert_int_equal(n, 1);
    kp_campaign *d = calloc(1, sizeof *d);
    *d = *c;
    d->id = 0;
    d->state = KP_CAMPAIGN_DRAFT;
    assert_int_equal(f->o->campaign_insert(f->s, d), KP_OK);
    c->state = KP_CAMPAIGN_RUNNING;
    c->started_at = T0 + 100;
    c->granted = 1500;
    snprintf(c->note, sizeof c->note, "budget reached");
    assert_int_equal(f->o->campaign_update(f->s, c), KP_OK);
    assert_int_equal(f->o->campaign_get(f->s, c->id, got), KP_OK);
    assert_memory_equal(got, c, sizeof *c);
    assert_int_equal(f->o->campaigns_due(f->s, T0, ids, 4, &n), KP_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], c->id);
    kp_campaign *list = calloc(4, sizeof *list);
    assert_int_equal(f->o->campaign_list(f->s, 0, list, 4, &n), KP_OK);
    assert_int_equal(n, 2);
    assert_int_equal(list[0].id, d->id); /* newest first */
    assert_int_equal(f->o->campaign_list(f->s, d->id, list, 4, &n), KP_OK);
    assert_int_equal(n, 1);
    /* STARTING (a start being written in chunks) is due too. */
    c->state = KP_CAMPAIGN_STARTING;
    assert_int_equal(f->o->campaign_update(f->s, c), KP_OK);
    assert_int_equal(f->o->campaigns_due(f->s, T0, ids, 4, &n), KP_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], c->id);
    assert_string_equal(kp_campaign_state_name(KP_CAMPAIGN_STARTING), "starting");
    got->id = 999999;
    assert_int_equal(f->o->campaign_update(f->s, got), KP_ERR_NOT_FOUND);
    free(c), free(got), free(d), free(list);
}

static void test_members(void **state)
{
    fx *f = *state;
    kp_campaign_member m[4] = {
        {30, 300, KP_MEMBER_PENDING, 0, 0},
        {10, 100, KP_MEMBER_PENDING, 0, 0},
        {20, 200, KP_MEMBER_CONTROL, 0, 0},
        {10, 999, KP_MEMBER_PENDING, 0, 0}, /* there already: skipped */
    };
    assert_int_equal(f->o->members_add(f->s, 7, m, 4), KP_OK);
    kp_campaign_member got[4];
    size_t n;
    assert_int_equal(f->o->members_list(f->s, 7, KP_MEMBER_PENDING, 0, got, 4, &n), KP_OK);
    assert_int_equal(n, 2);
    assert_int_equal(got[0].customer_id, 10);
    assert_int_equal(got[0].account_id, 100);
    assert_int_equal(got[1].customer_id, 30);
    assert_int_equal(f->o->members_list(f->s, 7, -1, 10, got, 4, &n), KP_OK);
    assert_int_equal(n, 2); /* after customer 10 */
    kp_campaign_member s = {10, 100, KP_MEMBER_GRANTED, 55, 500};
    assert_int_equal(f->o->member_settle(f->s, 7, &s), KP_OK);
    s.customer_id = 11;
    assert_int_equal(f->o->member_settle(f->s, 7, &s), KP_ERR_NOT_FOUND);
    assert_int_equal(f->o->members_list(f->s, 8, -1, 0, got, 4, &n), KP_OK);
    assert_int_equal(n, 0); /* another campaign's */
    kp_campaign c = {.id = 7, .started_at = T0};
    kp_campaign_stats st;
    assert_int_equal(f->o->campaign_stats(f->s, &c, 30 * 86400, &st), KP_OK);
    assert_int_equal(st.members, 3);
    assert_int_equal(st.by_state[KP_MEMBER_PENDING], 1);
    assert_int_equal(st.by_state[KP_MEMBER_GRANTED], 1);
    assert_int_equal(st.by_state[KP_MEMBER_CONTROL], 1);
    assert_int_equal(st.points, 500);
    assert_int_equal(st.messages_sent, 0);
    assert_int_equal(st.revenue_after[0], 0);
    /* Removed a chunk at a time, lowest customers first; another
     * campaign's members stay. */
    kp_campaign_member other = {10, 100, KP_MEMBER_PENDING, 0, 0};
    assert_int_equal(f->o->members_add(f->s, 8, &other, 1), KP_OK);
    assert_int_equal(f->o->members_delete(f->s, 7, 2, &n), KP_OK);
    assert_int_equal(n, 2);
    assert_int_equal(f->o->members_list(f->s, 7, -1, 0, got, 4, &n), KP_OK);
    assert_int_equal(n, 1);
    assert_int_equal(got[0].customer_id, 30);
    assert_int_equal(f->o->members_delete(f->s, 7, 2, &n), KP_OK);
    assert_int_equal(n, 1); /* fewer than asked: none left */
    assert_int_equal(f->o->members_delete(f->s, 7, 2, &n), KP_OK);
    assert_int_equal(n, 0);
    assert_int_equal(f->o->members_list(f->s, 8, -1, 0, got, 4, &n), KP_OK);
    assert_int_equal(n, 1);
}

static void test_scan_with_every_criterion(void **state)
{
    fx *f = *state;
    kp_segment_query q;
    kp_segment_query_any(&q);
    kp_segment_hit hits[4];
    size_t n = 9;
    assert_int_equal(f->o->segment_scan(f->s, &q, 0, hits, 4, &n), KP_OK);
    assert_int_equal(n, 0);
    q.from = T0 - 86400 * 90;
    q.to = T0;
    q.spend_min = 1;
    q.spend_max = 1000000;
    q.visits_min = 1;
    q.visits_max = 10;
    q.last_before = T0 - 86400;
    q.last_after = T0 - 86400 * 365;
    snprintf(q.tiers, sizeof q.tiers, ",gold,,");
    snprintf(q.stores, sizeof q.stores, ",north,");
    q.card_states = 1u << 1;
    q.consent_channels = 1u << 2;
    assert_int_equal(f->o->segment_scan(f->s, &q, 0, hits, 4, &n), KP_OK);
    assert_int_equal(n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_segments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_campaigns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_members, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_with_every_criterion, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
