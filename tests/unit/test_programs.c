/*
 * test_programs.c: program versions. The structural diff of two program
 * files (src/program/program_diff.c): rules matched by id, tiers by name,
 * ladders by index, a change of the rules' order, the limit. Every error of
 * a file in one parse (kp_program_parse_each, kp_service_program_check).
 * On the backend under test (KOPILKA_TEST_STORE, fixture.h): versions
 * loaded from a date through the back office (src/service/programs.c),
 * their states as time passes, cancellation and its limits, and the
 * server's program cache (src/server/writer.c, compiled in) switching to a
 * scheduled version at its instant on its clock, without a query; a
 * database from before scheduled versions migrated on open.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <kopilka/clock.h>

#include "fixture.h"
#include "program/program_diff.h"
#include "server/server.h"
#include "service/programs.h"

#define T0 ((kp_time)1780000000) /* 2026-05-28T20:26:40Z */
#define HOUR ((kp_time)3600)

static const char base_json[] =
    "{\"name\": \"base\", \"rules\": ["
    " {\"id\": \"labor\", \"kind\": \"earn_percent\", \"category\": \"labor\", \"percent\": 4},"
    " {\"id\": \"parts\", \"kind\": \"earn_percent\", \"category\": \"parts\", \"percent\": 12}"
    "]}";

static const char next_json[] =
    "{\"name\": \"next\", \"rules\": ["
    " {\"id\": \"labor\", \"kind\": \"earn_percent\", \"category\": \"labor\", \"percent\": 5},"
    " {\"id\": \"parts\", \"kind\": \"earn_percent\", \"category\": \"parts\", \"percent\": 12}"
    "]}";

/* ------------------------------------------------------------------ diff */

/* The changes from `from` to `to` (JSON texts), compact, as one string. */
static char *diff_text(const char *from, const char *to, size_t max, size_t *total)
{
    json_t *a = json_loads(from, 0, NULL), *b = json_loads(to, 0, NULL);
    assert_non_null(a);
    assert_non_null(b);
    json_t *changes = json_array();
    assert_int_equal(program_diff(a, b, max, changes, total), KP_OK);
    char *text = json_dumps(changes, JSON_COMPACT);
    json_decref(a);
    json_decref(b);
    json_decref(changes);
    return text;
}

static void expect_diff(const char *from, const char *to, const char *want)
{
    size_t total = 0;
    char *got = diff_text(from, to, PROGRAM_CHANGES_MAX, &total);
    if (strcmp(got, want) != 0) print_error("got  %s\nwant %s\n", got, want);
    assert_string_equal(got, want);
    free(got);
}

static void test_equal_files_have_no_changes(void **state)
{
    (void)state;
    expect_diff(base_json, base_json, "[]");
}

static void test_a_rule_inserted_before_others_is_one_addition(void **state)
{
    (void)state;
    expect_diff("{\"rules\":[{\"id\":\"a\",\"percent\":1},{\"id\":\"b\",\"percent\":2}]}",
                "{\"rules\":[{\"id\":\"new\",\"points\":5},{\"id\":\"a\",\"percent\":1},"
                "{\"id\":\"b\",\"percent\":3}]}",
                "[{\"path\":\"rules[id=b].percent\",\"op\":\"changed\",\"from\":2,\"to\":3},"
                "{\"path\":\"rules[id=new]\",\"op\":\"added\",\"from\":null,"
                "\"to\":{\"id\":\"new\",\"points\":5}}]");
}

static void test_members_added_removed_and_changed_by_path(void **state)
{
    (void)state;
    expect_diff("{\"name\":\"x\",\"till\":{\"offline_days\":3},\"rounding\":\"down\"}",
                "{\"name\":\"y\",\"till\":{\"offline_days\":3,\"identify_by_phone\":true}}",
                "[{\"path\":\"name\",\"op\":\"changed\",\"from\":\"x\",\"to\":\"y\"},"
                "{\"path\":\"till.identify_by_phone\",\"op\":\"added\",\"from\":null,"
                "\"to\":true},"
                "{\"path\":\"rounding\",\"op\":\"removed\",\"from\":\"down\",\"to\":null}]");
}

/* The order of the rules matters (docs/rules.md): a new order is one change
 * of "rules", its ids in order. */
static void test_rules_in_another_order_are_one_change(void **state)
{
    (void)state;
    expect_diff("{\"rules\":[{\"id\":\"a\"},{\"id\":\"b\"},{\"id\":\"c\"}]}",
                "{\"rules\":[{\"id\":\"b\"},{\"id\":\"a\"},{\"id\":\"c\"}]}",
                "[{\"path\":\"rules\",\"op\":\"changed\",\"from\":[\"a\",\"b\",\"c\"],"
                "\"to\":[\"b\",\"a\",\"c\"]}]");
}

static void test_tiers_by_name_and_ladders_by_index(void **state)
{
    (void)state;
    expect_diff("{\"tiers\":{\"levels\":[{\"name\":\"silver\",\"min_spend\":0},"
                "{\"name\":\"gold\",\"min_spend\":100}]},"
                "\"rules\":[{\"id\":\"r\",\"steps\":[{\"min_amount\":0,\"percent\":1}]}]}",
                "{\"tiers\":{\"levels\":[{\"name\":\"silver\",\"min_spend\":0},"
                "{\"name\":\"gold\",\"min_spend\":200}]},"
                "\"rules\":[{\"id\":\"r\",\"steps\":[{\"min_amount\":0,\"percent\":2},"
                "{\"min_amount\":10,\"percent\":3}]}]}",
                "[{\"path\":\"tiers.levels[name=gold].min_spend\",\"op\":\"changed\","
                "\"from\":100,\"to\":200},"
                "{\"path\":\"rules[id=r].steps[0].percent\",\"op\":\"changed\",\"from\":1,"
                "\"to\":2},"
                "{\"path\":\"rules[id=r].steps[1]\",\"op\":\"added\",\"from\":null,"
                "\"to\":{\"min_amount\":10,\"percent\":3}}]");
}

/* Rules without unique ids are compared by position; a value of another
 * type is changed whole. */
static void test_arrays_without_keys_and_changed_types(void **state)
{
    (void)state;
    expect_diff("{\"rules\":[{\"id\":\"a\"},{\"id\":\"a\"}],\"script\":{\"source\":\"x\"}}",
                "{\"rules\":[{\"id\":\"a\"}],\"script\":{\"source\":[\"x\"]}}",
                "[{\"path\":\"rules[1]\",\"op\":\"removed\",\"from\":{\"id\":\"a\"},\"to\":null},"
                "{\"path\":\"script.source\",\"op\":\"changed\",\"from\":\"x\",\"to\":[\"x\"]}]");
}

static void test_changes_past_the_limit_are_counted_not_listed(void **state)
{
    (void)state;
    size_t total = 0;
    char *got = diff_text("{\"a\":1,\"b\":2,\"c\":3}", "{\"a\":4,\"b\":5,\"c\":6}", 2, &total);
    assert_int_equal(total, 3);
    assert_string_equal(got, "[{\"path\":\"a\",\"op\":\"changed\",\"from\":1,\"to\":4},"
                             "{\"path\":\"b\",\"op\":\"changed\",\"from\":2,\"to\":5}]");
    free(got);
}

/* ------------------------------------------------------ every error of a file */

typedef struct errors {
    size_t n;
    char fields[16][64];
} errors;

static void collect(void *ctx, const kp_error *e)
{
    errors *x = ctx;
    if (x->n < 16) snprintf(x->fields[x->n], sizeof x->fields[0], "%s", e->field);
    x->n++;
}

static void test_every_error_of_a_file_is_reported_in_its_order(void **state)
{
    (void)state;
    static const char bad[] =
        "{\"name\": \"bad\", \"rounding\": \"sideways\", \"rules\": ["
        " {\"id\": \"a\", \"kind\": \"earn_percent\", \"percent\": \"x\", \"colour\": 1},"
        " {\"id\": \"a\", \"kind\": \"first_purchase_min\", \"points\": 0},"
        " 7,"
        " {\"id\": \"b\", \"kind\": \"nope\"}],"
        " \"till\": {\"offline_days\": 999}}";
    kp_program *p = malloc(sizeof *p);
    errors x = {0};
    kp_error e = {0};
    assert_int_equal(kp_program_parse_each(bad, strlen(bad), p, collect, &x, &e), KP_ERR_INVALID);
    static const char *const want[] = {"rounding",      "rules[0].colour",  "rules[0].percent",
                                       "rules[1].id",   "rules[1].points",  "rules[2]",
                                       "rules[3].kind", "till.offline_days"};
    assert_int_equal(x.n, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < x.n; i++) assert_string_equal(x.fields[i], want[i]);
    assert_string_equal(e.field, "rounding");
    /* The first-error parse names the same first error and zeroes. */
    kp_error first = {0};
    assert_int_equal(kp_program_parse(bad, strlen(bad), p, &first), KP_ERR_INVALID);
    assert_string_equal(first.field, "rounding");
    assert_int_equal(p->n_rules, 0);
    free(p);
}

/* A load's check adds the script (compiled) and the customers and
 * notifications sections to the file's own errors. */
static void test_a_load_check_reports_the_script_and_the_sections_too(void **state)
{
    (void)state;
    static const char bad[] =
        "{\"name\": \"bad\", \"rules\": [{\"id\": \"r\", \"kind\": \"nope\"}],"
        " \"script\": {\"source\": \"function earn( end\", \"earn\": \"earn\"},"
        " \"customers\": {\"transfers\": {\"enabled\": 1}},"
        " \"notifications\": {\"unknown\": true}}";
    kp_program *p = malloc(sizeof *p);
    errors x = {0};
    kp_error e = {0};
    assert_int_equal(kp_service_program_check(bad, strlen(bad), p, collect, &x, &e),
                     KP_ERR_INVALID);
    assert_int_equal(x.n, 4);
    assert_string_equal(x.fields[0], "rules[0].kind");
    assert_string_equal(x.fields[1], "script.source");
    assert_string_equal(x.fields[2], "customers.transfers.enabled");
    assert_string_equal(x.fields[3], "notifications.unknown");
    /* Not JSON: one error, nothing else is read. */
    memset(&x, 0, sizeof x);
    assert_int_equal(kp_service_program_check("{", 1, p, collect, &x, &e), KP_ERR_INVALID);
    assert_int_equal(x.n, 1);
    free(p);
}

/* ------------------------------------------------------ versions in a store */

typedef struct fx {
    char location[FIXTURE_LOCATION_MAX];
    kp_store *st;
    kp_scratch *sc;
    kp_office office;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    fixture_location(f->location, "programs");
    kp_error e = {0};
    if (kp_store_open(f->location, true, &f->st, &e)) {
        fprintf(stderr, "cannot open %s: %s\n", f->location, e.message);
        return -1;
    }
    f->sc = kp_scratch_new();
    kp_actor actor;
    memset(&actor, 0, sizeof actor);
    actor.kind = KP_ACTOR_STAFF;
    actor.role = KP_ROLE_ADMIN;
    snprintf(actor.name, sizeof actor.name, "staff:test");
    kp_office_init(&f->office, f->st, NULL, NULL, T0, &actor, f->sc);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    kp_scratch_free(f->sc);
    kp_store_close(f->st);
    fixture_remove(f->location);
    free(f);
    return 0;
}

/* Loads `json` at o->now = now, activating at `at` (0: at once). */
static kp_err load(fx *f, const char *json, kp_time now, kp_time at, int64_t *version, kp_error *e)
{
    f->office.now = now;
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    kp_err err = kp_program_load(&f->office, json, strlen(json), "", "test", at, version, NULL, e);
    if (err)
        f->st->ops->rollback(f->st);
    else
        assert_int_equal(f->st->ops->commit(f->st), KP_OK);
    return err;
}

/* The states of every version at `now`, newest first: "scheduled running". */
static void states_at(fx *f, kp_time now, char *out, size_t size)
{
    kp_program_version rows[8];
    size_t n = 0;
    int64_t running = 0;
    kp_error e = {0};
    f->office.now = now;
    assert_int_equal(kp_program_versions(&f->office, 0, rows, 8, &n, &running, &e), KP_OK);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(out);
        snprintf(out + len, size - len, "%s%s", i ? " " : "",
                 kp_program_state_name(kp_program_state_of(&rows[i], running, now)));
    }
}

static void test_versions_change_state_as_time_passes(void **state)
{
    fx *f = *state;
    int64_t v1 = 0, v2 = 0;
    kp_error e = {0};
    char states[128];
    assert_int_equal(load(f, base_json, T0, 0, &v1, &e), KP_OK);
    assert_int_equal(load(f, next_json, T0, T0 + HOUR, &v2, &e), KP_OK);
    states_at(f, T0, states, sizeof states);
    assert_string_equal(states, "scheduled running");
    states_at(f, T0 + HOUR - 1, states, sizeof states);
    assert_string_equal(states, "scheduled running");
    states_at(f, T0 + HOUR, states, sizeof states);
    assert_string_equal(states, "running past");
    /* The program each instant runs with. */
    kp_program *p = malloc(sizeof *p);
    assert_int_equal(kp_service_program_running(f->st, 0, T0 + HOUR - 1, p, &e), KP_OK);
    assert_int_equal(p->version, v1);
    assert_int_equal(p->rules[0].rate_bp, 400);
    assert_int_equal(kp_service_program_running(f->st, 0, T0 + HOUR, p, &e), KP_OK);
    assert_int_equal(p->version, v2);
    assert_int_equal(p->rules[0].rate_bp, 500);
    free(p);
}

static void test_an_activation_outside_its_range_is_refused(void **state)
{
    fx *f = *state;
    int64_t v = 0;
    kp_error e = {0};
    static const kp_time bad[] = {T0 - 1, T0, T0 + KP_PROGRAM_NOTICE_SECONDS - 1,
                                  T0 + KP_PROGRAM_AHEAD_SECONDS_MAX + 1};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(load(f, base_json, T0, bad[i], &v, &e), KP_ERR_INVALID);
        assert_string_equal(e.field, "activates_at");
        assert_non_null(strstr(e.message, "must be from 2026-05-28T20:26:45Z"));
    }
    assert_int_equal(load(f, base_json, T0, T0 + KP_PROGRAM_NOTICE_SECONDS, &v, &e), KP_OK);
}

static void test_cancelling_is_refused_once_the_version_is_about_to_run(void **state)
{
    fx *f = *state;
    int64_t v1 = 0, v2 = 0;
    kp_error e = {0};
    kp_program_version row;
    assert_int_equal(load(f, base_json, T0, 0, &v1, &e), KP_OK);
    assert_int_equal(load(f, next_json, T0, T0 + HOUR, &v2, &e), KP_OK);
    f->office.now = T0 + HOUR - KP_PROGRAM_NOTICE_SECONDS + 1;
    assert_int_equal(kp_program_cancel(&f->office, v2, &row, &e), KP_ERR_CONFLICT);
    assert_non_null(strstr(e.message, "too late"));
    f->office.now = T0 + HOUR;
    assert_int_equal(kp_program_cancel(&f->office, v2, &row, &e), KP_ERR_CONFLICT);
    assert_non_null(strstr(e.message, "took effect"));
    f->office.now = T0 + HOUR - KP_PROGRAM_NOTICE_SECONDS;
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(kp_program_cancel(&f->office, v2, &row, &e), KP_OK);
    assert_int_equal(f->st->ops->commit(f->st), KP_OK);
    assert_int_equal(row.cancelled_at, T0 + HOUR - KP_PROGRAM_NOTICE_SECONDS);
    assert_int_equal(kp_program_cancel(&f->office, v2 + 1, &row, &e), KP_ERR_NOT_FOUND);
    assert_string_equal(e.field, "version");
    char states[128];
    states_at(f, T0 + 2 * HOUR, states, sizeof states);
    assert_string_equal(states, "cancelled running");
}

static void test_a_role_without_program_manage_may_not_load_or_cancel(void **state)
{
    fx *f = *state;
    int64_t v = 0;
    kp_error e = {0};
    kp_program_version row;
    f->office.actor.role = KP_ROLE_AUDITOR;
    assert_int_equal(load(f, base_json, T0, 0, &v, &e), KP_ERR_FORBIDDEN);
    assert_int_equal(kp_program_cancel(&f->office, 1, &row, &e), KP_ERR_FORBIDDEN);
    size_t n = 0;
    int64_t running = 0;
    assert_int_equal(kp_program_versions(&f->office, 0, &row, 1, &n, &running, &e), KP_OK);
    f->office.actor.role = KP_ROLE_CASHIER;
    assert_int_equal(kp_program_versions(&f->office, 0, &row, 1, &n, &running, &e),
                     KP_ERR_FORBIDDEN);
}

/* The cache reads the next version ahead and every reader switches to it
 * at its instant on the cache's clock, with no refresh in between. */
static void test_the_cache_switches_at_the_activation_instant(void **state)
{
    fx *f = *state;
    int64_t v1 = 0, v2 = 0;
    kp_error e = {0};
    assert_int_equal(load(f, base_json, T0, 0, &v1, &e), KP_OK);
    assert_int_equal(load(f, next_json, T0, T0 + HOUR, &v2, &e), KP_OK);
    kp_clock clock = {.fixed = T0};
    kp_programs *programs = kp_programs_new(&clock);
    assert_int_equal(kp_programs_refresh(programs, f->st, &e), KP_OK);
    const kp_program *held = kp_programs_hold(programs);
    assert_int_equal(held->version, v1);
    clock.fixed = T0 + HOUR - 1;
    assert_int_equal(kp_programs_current(programs)->version, v1);
    clock.fixed = T0 + HOUR;
    const kp_program *now = kp_programs_hold(programs);
    assert_int_equal(now->version, v2);
    assert_int_equal(now->rules[0].rate_bp, 500);
    /* The request that held version 1 still has it whole. */
    assert_int_equal(held->version, v1);
    assert_int_equal(held->rules[0].rate_bp, 400);
    kp_programs_drop(programs, held);
    kp_programs_drop(programs, now);
    /* A refresh after the switch keeps it. */
    assert_int_equal(kp_programs_refresh(programs, f->st, &e), KP_OK);
    assert_int_equal(kp_programs_current(programs)->version, v2);
    kp_programs_free(programs);
}

/* A version cancelled before its time is dropped from the cache at the
 * next refresh and never taken. */
static void test_the_cache_forgets_a_cancelled_version(void **state)
{
    fx *f = *state;
    int64_t v1 = 0, v2 = 0;
    kp_error e = {0};
    kp_program_version row;
    assert_int_equal(load(f, base_json, T0, 0, &v1, &e), KP_OK);
    assert_int_equal(load(f, next_json, T0, T0 + HOUR, &v2, &e), KP_OK);
    kp_clock clock = {.fixed = T0};
    kp_programs *programs = kp_programs_new(&clock);
    assert_int_equal(kp_programs_refresh(programs, f->st, &e), KP_OK);
    f->office.now = T0;
    assert_int_equal(f->st->ops->begin(f->st), KP_OK);
    assert_int_equal(kp_program_cancel(&f->office, v2, &row, &e), KP_OK);
    assert_int_equal(f->st->ops->commit(f->st), KP_OK);
    assert_int_equal(kp_programs_refresh(programs, f->st, &e), KP_OK);
    clock.fixed = T0 + 2 * HOUR;
    assert_int_equal(kp_programs_current(programs)->version, v1);
    kp_programs_free(programs);
}

/* A database made before versions could be scheduled (its programs table
 * without loaded_by, activates_at, cancelled_at) gains them when it is
 * opened, keeps its versions, and schedules from then on. */
static void test_a_database_from_before_gains_scheduled_versions_on_open(void **state)
{
    fx *f = *state;
    int64_t v1 = 0, v2 = 0;
    kp_error e = {0};
    assert_int_equal(load(f, base_json, T0, 0, &v1, &e), KP_OK);
    kp_store_close(f->st);
    f->st = NULL;
    char why[256] = "";
    const char *old =
        fixture_is_pg()
            ? "BEGIN; ALTER TABLE programs DROP COLUMN loaded_by, DROP COLUMN activates_at, "
              "DROP COLUMN cancelled_at; DELETE FROM kopilka_schema WHERE version > 2; COMMIT"
            : "BEGIN; ALTER TABLE programs DROP COLUMN loaded_by; ALTER TABLE programs DROP "
              "COLUMN activates_at; ALTER TABLE programs DROP COLUMN cancelled_at; DELETE FROM "
              "meta WHERE key = 'programs_schema'; COMMIT";
    if (fixture_exec(f->location, old, why, sizeof why) != 0) fail_msg("%s", why);
    assert_int_equal(kp_store_open(f->location, false, &f->st, &e), KP_OK);
    f->office.st = f->st;
    assert_int_equal(load(f, next_json, T0, T0 + HOUR, &v2, &e), KP_OK);
    char states[128];
    states_at(f, T0, states, sizeof states);
    assert_string_equal(states, "scheduled running");
    kp_program_version row;
    int64_t running = 0;
    char *json = NULL;
    assert_int_equal(kp_program_version_get(&f->office, v1, &row, &running, &json, &e), KP_OK);
    assert_string_equal(row.loaded_by, ""); /* not recorded before */
    assert_string_equal(json, base_json);
    free(json);
}

int main(void)
{
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(test_equal_files_have_no_changes),
        cmocka_unit_test(test_a_rule_inserted_before_others_is_one_addition),
        cmocka_unit_test(test_members_added_removed_and_changed_by_path),
        cmocka_unit_test(test_rules_in_another_order_are_one_change),
        cmocka_unit_test(test_tiers_by_name_and_ladders_by_index),
        cmocka_unit_test(test_arrays_without_keys_and_changed_types),
        cmocka_unit_test(test_changes_past_the_limit_are_counted_not_listed),
        cmocka_unit_test(test_every_error_of_a_file_is_reported_in_its_order),
        cmocka_unit_test(test_a_load_check_reports_the_script_and_the_sections_too),
    };
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest stored[] = {
        T(test_versions_change_state_as_time_passes),
        T(test_an_activation_outside_its_range_is_refused),
        T(test_cancelling_is_refused_once_the_version_is_about_to_run),
        T(test_a_role_without_program_manage_may_not_load_or_cancel),
        T(test_the_cache_switches_at_the_activation_instant),
        T(test_the_cache_forgets_a_cancelled_version),
        T(test_a_database_from_before_gains_scheduled_versions_on_open),
    };
    int failed = 0;
    /* The pure tests once, on the SQLite run; the stored ones on each backend. */
    if (!fixture_is_pg())
        failed += cmocka_run_group_tests_name("diff and errors", pure, NULL, NULL);
    failed += cmocka_run_group_tests_name("versions", stored, NULL, NULL);
    return failed;
}
