/*
 * test_keys.c: terminal keys over a real store, SQLite or PostgreSQL
 * (fixture.h): add, revoke, rotate (a refused key, the generation a running
 * server polls, "last used" never going back); who may manage keys and set a discount, the partner
 * role, and the count of sealed values that forbids making a new key file.
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
#include <unistd.h>

#include "service/people.h"

#define NOW ((kp_time)1780000000)

typedef struct fx {
    char path[FIXTURE_LOCATION_MAX]; /* the store's location (fixture.h) */
    kp_store *st;
    kp_pii *pii;
    kp_scratch *sc;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    fixture_location(f->path, "keys");
    kp_error e = {0};
    assert_int_equal(kp_store_open(f->path, true, &f->st, &e), KP_OK);
    uint8_t master[32];
    for (int i = 0; i < 32; i++) master[i] = (uint8_t)(i * 5 + 3);
    assert_int_equal(kp_pii_from_bytes(master, &f->pii), KP_OK);
    f->sc = kp_scratch_new();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    kp_store_close(f->st);
    kp_pii_free(f->pii);
    kp_scratch_free(f->sc);
    fixture_remove(f->path);
    free(f);
    return 0;
}

static void office(fx *f, kp_office *o, kp_role role)
{
    kp_actor a;
    memset(&a, 0, sizeof a);
    a.kind = KP_ACTOR_STAFF;
    a.role = role;
    snprintf(a.name, sizeof a.name, "staff:%s", kp_role_name(role));
    kp_office_init(o, f->st, f->pii, NULL, NOW, &a, f->sc);
}

static kp_err done(fx *f, kp_err err)
{
    if (err)
        f->st->ops->rollback(f->st);
    else
        assert_int_equal(f->st->ops->commit(f->st), KP_OK);
    return err;
}

static int64_t generation(fx *f)
{
    int64_t g = -1;
    assert_int_equal(f->st->ops->terminal_generation(f->st, &g), KP_OK);
    return g;
}

static kp_err find(fx *f, const char *key, kp_terminal *t)
{
    uint8_t hash[32];
    kp_service_key_hash(key, hash);
    return f->st->ops->terminal_find(f->st, hash, t);
}

static void test_revoked_key_is_not_found_and_the_generation_moves(void **state)
{
    fx *f = *state;
    kp_office o;
    office(f, &o, KP_ROLE_ADMIN);
    kp_error e = {0};
    char key[65];
    kp_terminal t;
    assert_int_equal(generation(f), 0);
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(done(f, kp_terminal_add(&o, "main", key, &t, &e)), KP_OK);
    assert_int_equal(strlen(key), 51);
    assert_int_equal(t.created_at > 0, 1);
    assert_int_equal(find(f, key, &t), KP_OK);
    assert_string_equal(t.store, "main");

    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(done(f, kp_terminal_revoke(&o, t.id, &t, &e)), KP_OK);
    assert_int_equal(t.revoked_at, NOW);
    assert_int_equal(generation(f), 1);
    assert_int_equal(find(f, key, &t), KP_ERR_NOT_FOUND);
    /* Revoked stays revoked: neither revoked again nor rotated back. */
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(done(f, kp_terminal_rotate(&o, 1, key, &t, &e)), KP_ERR_CONFLICT);
    assert_string_equal(e.field, "terminal");
    assert_string_equal(key, "");
    assert_int_equal(generation(f), 1);
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(done(f, kp_terminal_revoke(&o, 7, &t, &e)), KP_ERR_NOT_FOUND);
}

static void test_rotate_replaces_the_key_of_the_same_terminal(void **state)
{
    fx *f = *state;
    kp_office o;
    office(f, &o, KP_ROLE_ADMIN);
    kp_error e = {0};
    char old[65], new[65];
    kp_terminal t;
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(done(f, kp_terminal_add(&o, "kiosk", old, &t, &e)), KP_OK);
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(done(f, kp_terminal_rotate(&o, t.id, new, &t, &e)), KP_OK);
    assert_string_not_equal(old, new);
    assert_int_equal(t.rotated_at, NOW);
    assert_int_equal(find(f, old, &t), KP_ERR_NOT_FOUND);
    assert_int_equal(find(f, new, &t), KP_OK);
    assert_int_equal(t.id, 1);
    assert_string_equal(t.store, "kiosk");
    assert_int_equal(generation(f), 1);
}

static void test_last_used_never_goes_back(void **state)
{
    fx *f = *state;
    kp_office o;
    office(f, &o, KP_ROLE_ADMIN);
    kp_error e = {0};
    char key[65];
    kp_terminal t;
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(done(f, kp_terminal_add(&o, "main", key, &t, &e)), KP_OK);
    assert_int_equal(t.last_used_at, 0);
    assert_int_equal(f->st->ops->terminal_touch(f->st, t.id, NOW + 100), KP_OK);
    assert_int_equal(f->st->ops->terminal_touch(f->st, t.id, NOW + 50), KP_OK);
    assert_int_equal(f->st->ops->terminal_get(f->st, t.id, &t), KP_OK);
    assert_int_equal(t.last_used_at, NOW + 100);
    size_t n = 0;
    kp_terminal list[4];
    assert_int_equal(kp_terminal_list(&o, 0, list, 4, &n, &e), KP_OK);
    assert_int_equal(n, 1);
    assert_int_equal(list[0].last_used_at, NOW + 100);
}

static void test_who_may_manage_keys_and_discounts(void **state)
{
    fx *f = *state;
    kp_error e = {0};
    for (kp_role r = KP_ROLE_CASHIER; r < KP_ROLE__COUNT; r++) {
        assert_int_equal(kp_role_may(r, KP_PERM_TERMINALS), r == KP_ROLE_ADMIN);
        assert_int_equal(kp_role_may(r, KP_PERM_DISCOUNT),
                         r == KP_ROLE_ADMIN || r == KP_ROLE_MANAGER);
        assert_true(kp_role_assignable(r)); /* partner: with a partner (staff.c) */
        for (int p = 1; p < KP_PERM__COUNT; p++)
            if (r == KP_ROLE_PARTNER) assert_false(kp_role_may(r, (kp_permission)p));
    }
    kp_role parsed;
    assert_true(kp_role_parse("partner", &parsed));
    assert_string_equal(kp_permission_name(KP_PERM_TERMINALS), "terminals");
    assert_string_equal(kp_permission_name(KP_PERM_DISCOUNT), "discount");
    kp_office o;
    office(f, &o, KP_ROLE_MANAGER);
    char key[65];
    kp_terminal t;
    assert_int_equal(kp_terminal_add(&o, "main", key, &t, &e), KP_ERR_FORBIDDEN);
    assert_string_equal(key, "");
    office(f, &o, KP_ROLE_CASHIER);
    assert_int_equal(kp_discount_set(&o, "2000000000000", true, 500, &e), KP_ERR_FORBIDDEN);
}

static void test_sealed_values_are_counted(void **state)
{
    fx *f = *state;
    int64_t n = -1;
    assert_int_equal(f->st->ops->people->sealed_count(f->st, &n), KP_OK);
    assert_int_equal(n, 0);
    kp_office o;
    office(f, &o, KP_ROLE_ADMIN); /* with the key: its audit entries carry MACs */
    kp_error e = {0};
    char key[65];
    kp_terminal t;
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(done(f, kp_terminal_add(&o, "main", key, &t, &e)), KP_OK);
    assert_int_equal(f->st->ops->people->sealed_count(f->st, &n), KP_OK);
    assert_int_equal(n, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_revoked_key_is_not_found_and_the_generation_moves,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotate_replaces_the_key_of_the_same_terminal, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_last_used_never_goes_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_who_may_manage_keys_and_discounts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sealed_values_are_counted, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
