/*
 * test_draws_store.c: the contract suite of the prize draws' storage seam
 * (kopilka/draws.h, kp_store_ops.draws), run against every backend
 * (KOPILKA_TEST_STORE=pg: PostgreSQL; else SQLite), through the seam only:
 * insert and get with every field, refusals that write nothing, the list
 * newest first and its paging, a close written once (a second is a
 * conflict that changes nothing), a missing draw, a rolled-back close.
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

#include <kopilka/draws.h>
#include <kopilka/store.h>

#define T0 ((kp_time)1780000000)

typedef struct fx {
    char location[FIXTURE_LOCATION_MAX];
    kp_store *s;
    const kp_draws_ops *o;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    fixture_location(f->location, "draws");
    kp_error e = {0};
    if (kp_store_open(f->location, true, &f->s, &e) != KP_OK) {
        fprintf(stderr, "cannot open %s: %s\n", f->location, e.message);
        return -1;
    }
    f->o = f->s->ops->draws;
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

static kp_draw draw(const char *name, kp_draw_rule rule, int64_t per_minor)
{
    kp_draw d;
    memset(&d, 0, sizeof d);
    snprintf(d.name, sizeof d.name, "%s", name);
    d.from = T0;
    d.to = T0 + 86400;
    d.rule = rule;
    d.per_minor = per_minor;
    snprintf(d.store, sizeof d.store, "S1");
    snprintf(d.tier, sizeof d.tier, "gold");
    d.prizes = (char *)"1\tTV \"4K\"\n2\tMug, big\n";
    snprintf(d.commitment, sizeof d.commitment, "%064d", 7);
    snprintf(d.sealed_seed, sizeof d.sealed_seed, "%0144d", 9);
    d.created_at = T0 - 10;
    snprintf(d.created_by, sizeof d.created_by, "staff:anna");
    return d;
}

static kp_err insert(fx *f, kp_draw *d)
{
    assert_int_equal(f->s->ops->begin(f->s), KP_OK);
    kp_err err = f->o->draw_insert(f->s, d);
    if (err == KP_OK) assert_int_equal(f->s->ops->commit(f->s), KP_OK);
    else assert_int_equal(f->s->ops->rollback(f->s), KP_OK);
    return err;
}

static void test_insert_get(void **state)
{
    fx *f = *state;
    kp_draw d = draw("New year", KP_DRAW_PER_SPEND, 100000);
    assert_int_equal(insert(f, &d), KP_OK);
    assert_true(d.id >= 1);
    kp_draw g;
    assert_int_equal(f->o->draw_get(f->s, d.id, &g), KP_OK);
    assert_int_equal(g.id, d.id);
    assert_string_equal(g.name, "New year");
    assert_int_equal(g.from, T0);
    assert_int_equal(g.to, T0 + 86400);
    assert_int_equal(g.rule, KP_DRAW_PER_SPEND);
    assert_int_equal(g.per_minor, 100000);
    assert_string_equal(g.store, "S1");
    assert_string_equal(g.tier, "gold");
    assert_string_equal(g.prizes, d.prizes);
    assert_string_equal(g.commitment, d.commitment);
    assert_string_equal(g.sealed_seed, d.sealed_seed);
    assert_int_equal(g.created_at, T0 - 10);
    assert_string_equal(g.created_by, "staff:anna");
    assert_int_equal(g.closed_at, 0);
    assert_string_equal(g.seed, "");
    assert_null(g.entries);
    assert_null(g.winners);
    kp_draw_release(&g);
    assert_int_equal(f->o->draw_get(f->s, d.id + 100, &g), KP_ERR_NOT_FOUND);
}

static void test_refusals(void **state)
{
    fx *f = *state;
    kp_draw d = draw("", KP_DRAW_PER_VISIT, 0);
    assert_int_equal(insert(f, &d), KP_ERR_INVALID);
    d = draw("x", KP_DRAW_PER_SPEND, 0);
    assert_int_equal(insert(f, &d), KP_ERR_INVALID);
    d = draw("x", KP_DRAW_PER_VISIT, 0);
    d.to = d.from;
    assert_int_equal(insert(f, &d), KP_ERR_INVALID);
    d = draw("x", KP_DRAW_PER_VISIT, 0);
    d.commitment[0] = '\0';
    assert_int_equal(insert(f, &d), KP_ERR_INVALID);
    d = draw("x", (kp_draw_rule)9, 0);
    assert_int_equal(insert(f, &d), KP_ERR_INVALID);
    kp_draw items[4];
    size_t n = 9;
    assert_int_equal(f->o->draw_list(f->s, 0, items, 4, &n), KP_OK);
    assert_int_equal(n, 0);
}

static void test_list(void **state)
{
    fx *f = *state;
    int64_t ids[5];
    for (int i = 0; i < 5; i++) {
        char name[16];
        snprintf(name, sizeof name, "d%d", i);
        kp_draw d = draw(name, KP_DRAW_PER_VISIT, 0);
        assert_int_equal(insert(f, &d), KP_OK);
        ids[i] = d.id;
        if (i) assert_true(ids[i] > ids[i - 1]);
    }
    kp_draw items[3];
    size_t n = 0;
    assert_int_equal(f->o->draw_list(f->s, 0, items, 3, &n), KP_OK);
    assert_int_equal(n, 3);
    assert_int_equal(items[0].id, ids[4]);
    assert_int_equal(items[2].id, ids[2]);
    assert_string_equal(items[0].name, "d4");
    assert_non_null(items[0].prizes);
    assert_null(items[0].entries);
    for (size_t i = 0; i < n; i++) kp_draw_release(&items[i]);
    assert_int_equal(f->o->draw_list(f->s, ids[2], items, 3, &n), KP_OK);
    assert_int_equal(n, 2);
    assert_int_equal(items[0].id, ids[1]);
    assert_int_equal(items[1].id, ids[0]);
    for (size_t i = 0; i < n; i++) kp_draw_release(&items[i]);
}

static void test_close_once(void **state)
{
    fx *f = *state;
    kp_draw d = draw("Spring", KP_DRAW_PER_VISIT, 0);
    assert_int_equal(insert(f, &d), KP_OK);
    kp_draw c;
    memset(&c, 0, sizeof c);
    c.closed_at = T0 + 90000;
    snprintf(c.closed_by, sizeof c.closed_by, "cli");
    snprintf(c.seed, sizeof c.seed, "%064d", 5);
    c.entries = (char *)"0a00000000000001 3\n1b00000000000002 1\n";
    c.winners = (char *)"0 1b00000000000002\n";
    /* a close rolled back leaves the draw open */
    assert_int_equal(f->s->ops->begin(f->s), KP_OK);
    assert_int_equal(f->o->draw_close(f->s, d.id, &c), KP_OK);
    assert_int_equal(f->s->ops->rollback(f->s), KP_OK);
    kp_draw g;
    assert_int_equal(f->o->draw_get(f->s, d.id, &g), KP_OK);
    assert_int_equal(g.closed_at, 0);
    kp_draw_release(&g);
    assert_int_equal(f->s->ops->begin(f->s), KP_OK);
    assert_int_equal(f->o->draw_close(f->s, d.id, &c), KP_OK);
    assert_int_equal(f->s->ops->commit(f->s), KP_OK);
    assert_int_equal(f->o->draw_get(f->s, d.id, &g), KP_OK);
    assert_int_equal(g.closed_at, T0 + 90000);
    assert_string_equal(g.closed_by, "cli");
    assert_string_equal(g.seed, c.seed);
    assert_string_equal(g.entries, c.entries);
    assert_string_equal(g.winners, c.winners);
    assert_string_equal(g.commitment, d.commitment);
    kp_draw_release(&g);
    /* a second close changes nothing */
    kp_draw c2 = c;
    c2.closed_at = T0 + 99999;
    c2.winners = (char *)"0 0a00000000000001\n";
    assert_int_equal(f->o->draw_close(f->s, d.id, &c2), KP_ERR_CONFLICT);
    assert_non_null(strstr(f->s->last_error, "closed already"));
    assert_int_equal(f->o->draw_get(f->s, d.id, &g), KP_OK);
    assert_string_equal(g.winners, c.winners);
    assert_int_equal(g.closed_at, T0 + 90000);
    kp_draw_release(&g);
    assert_int_equal(f->o->draw_close(f->s, d.id + 50, &c), KP_ERR_NOT_FOUND);
    /* the list shows it closed, without its texts */
    kp_draw items[2];
    size_t n = 0;
    assert_int_equal(f->o->draw_list(f->s, 0, items, 2, &n), KP_OK);
    assert_int_equal(n, 1);
    assert_int_equal(items[0].closed_at, T0 + 90000);
    assert_string_equal(items[0].seed, c.seed);
    assert_null(items[0].entries);
    kp_draw_release(&items[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_insert_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_once, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
