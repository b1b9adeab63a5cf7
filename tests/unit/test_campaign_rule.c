/*
 * test_campaign_rule.c: grant rules on "campaign" whose points depend on
 * the member (docs/rules.md "grant", docs/marketing.md "A campaign"): the
 * program file's points_by_tier, percent_of_spend, spend_days and
 * points_max read and refused, and kp_grant_prepare's amounts from a
 * member's tier and spend (rounded down, capped, 0 refused with why).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopilka/program.h>

#include "service/service_rules.h"

#define HEAD                                                                                       \
    "{\"name\":\"t\",\"minor_per_point\":100,\"point_kinds\":[{\"name\":\"premium\","              \
    "\"ttl_months\":3}],\"tiers\":{\"levels\":[{\"name\":\"Silver\",\"min_spend\":100000},"        \
    "{\"name\":\"Gold\",\"min_spend\":500000}]},\"rules\":["

static kp_program *parse(const char *rules, kp_error *e)
{
    char text[4096];
    snprintf(text, sizeof text, HEAD "%s]}", rules);
    kp_program *p = calloc(1, sizeof *p);
    memset(e, 0, sizeof *e);
    if (kp_program_parse(text, strlen(text), p, e) != KP_OK) {
        free(p);
        return NULL;
    }
    return p;
}

static void refused(const char *rules, const char *field, const char *text)
{
    kp_error e;
    kp_program *p = parse(rules, &e);
    if (p) fail_msg("accepted: %s", rules);
    assert_string_equal(e.field, field);
    if (strstr(e.message, text) == NULL) fail_msg("%s: %s", e.field, e.message);
}

static void fields_are_read(void **state)
{
    (void)state;
    kp_error e;
    kp_program *p = parse(
        "{\"id\":\"vip\",\"kind\":\"grant\",\"on\":\"campaign\",\"point_kind\":\"premium\","
        "\"points_by_tier\":{\"Gold\":1000,\"Silver\":500}},"
        "{\"id\":\"back\",\"kind\":\"grant\",\"on\":\"campaign\",\"percent_of_spend\":\"2.5\","
        "\"spend_days\":90,\"points_max\":120}",
        &e);
    if (p == NULL) fail_msg("%s: %s", e.field, e.message);
    const kp_rule *vip = &p->rules[0], *back = &p->rules[1];
    assert_true(vip->has_tier_points);
    assert_true(vip->tier_points_set[1] && vip->tier_points_set[0]);
    assert_int_equal(vip->tier_points[1], 1000); /* Gold is the second level */
    assert_int_equal(vip->tier_points[0], 500);
    assert_int_equal(vip->points, 0);
    assert_int_equal(back->spend_bp, 250);
    assert_int_equal(back->spend_days, 90);
    assert_int_equal(back->points_max, 120);
    assert_true(kp_grant_rule_by_member(vip) && kp_grant_rule_by_member(back));
    /* "campaign" is granted only by a campaign's run, never from outside. */
    assert_true(kp_event_type_internal("campaign"));
    assert_int_equal(kp_program_event_from(p, "campaign"), 0);
    free(p);
}

static void refusals_name_the_field(void **state)
{
    (void)state;
    refused("{\"id\":\"x\",\"kind\":\"grant\",\"on\":\"survey\",\"points_by_tier\":{\"Gold\":1}}",
            "rules[0].points_by_tier", "only a grant on \"campaign\"");
    refused("{\"id\":\"x\",\"kind\":\"grant\",\"on\":\"campaign\",\"points_by_tier\":{\"Gold\":1},"
            "\"percent_of_spend\":1}",
            "rules[0].percent_of_spend", "not both");
    refused(
        "{\"id\":\"x\",\"kind\":\"grant\",\"on\":\"campaign\",\"points_by_tier\":{\"Bronze\":1}}",
        "rules[0].points_by_tier", "Silver, Gold");
    refused(
        "{\"id\":\"x\",\"kind\":\"grant\",\"on\":\"campaign\",\"points_by_tier\":{\"Gold\":-1}}",
        "rules[0].points_by_tier", "0 to 1000000000");
    refused("{\"id\":\"x\",\"kind\":\"grant\",\"on\":\"campaign\",\"points\":5,\"spend_days\":9}",
            "rules[0].spend_days", "percent_of_spend only");
    refused("{\"id\":\"x\",\"kind\":\"grant\",\"on\":\"campaign\",\"percent_of_spend\":2,"
            "\"spend_days\":2000}",
            "rules[0].spend_days", "1 to 1095");
    refused("{\"id\":\"x\",\"kind\":\"grant\",\"on\":\"campaign\",\"percent_of_spend\":0}",
            "rules[0].percent_of_spend", "over 0");
    /* A rule with neither still needs its points. */
    refused("{\"id\":\"x\",\"kind\":\"grant\",\"on\":\"campaign\"}", "rules[0].points", "required");
}

static int64_t amount(const kp_program *p, const kp_rule *r, bool member, int tier, int64_t spend,
                      char *why)
{
    kp_grant_ctx g = {.card = "",
                      .store = "",
                      .event_id = "",
                      .token = "",
                      .at = 1780000000,
                      .member = member,
                      .tier = tier,
                      .spend_minor = spend};
    kp_grant_plan gp;
    why[0] = '\0';
    if (!kp_grant_prepare(p, r, 7, &g, &gp, why, 192)) return -1;
    assert_string_equal(gp.lot.kind, "premium");
    return gp.amount;
}

static void amounts_by_member(void **state)
{
    (void)state;
    kp_error e;
    kp_program *p =
        parse("{\"id\":\"vip\",\"kind\":\"grant\",\"on\":\"campaign\",\"point_kind\":\"premium\","
              "\"points_by_tier\":{\"Gold\":1000}, \"points\":50},"
              "{\"id\":\"vip0\",\"kind\":\"grant\",\"on\":\"campaign\",\"point_kind\":\"premium\","
              "\"points_by_tier\":{\"Gold\":1000}},"
              "{\"id\":\"back\",\"kind\":\"grant\",\"on\":\"campaign\",\"point_kind\":\"premium\","
              "\"percent_of_spend\":\"2.5\",\"points_max\":120}",
              &e);
    if (p == NULL) fail_msg("%s: %s", e.field, e.message);
    char why[192];
    /* By tier: listed, else `points` (the default), else 0 refused. */
    assert_int_equal(amount(p, &p->rules[0], true, 1, 0, why), 1000);
    assert_int_equal(amount(p, &p->rules[0], true, 0, 0, why), 50);
    assert_int_equal(amount(p, &p->rules[0], true, -1, 0, why), 50);
    assert_int_equal(amount(p, &p->rules[1], true, 0, 0, why), -1);
    assert_non_null(strstr(why, "rule vip0 gives 0 points to tier Silver"));
    assert_int_equal(amount(p, &p->rules[1], true, -1, 0, why), -1);
    assert_non_null(strstr(why, "tier none"));
    /* By spend: 2.5 % of the minor units, in points of 100 minor, down. */
    assert_int_equal(amount(p, &p->rules[2], true, -1, 150000, why), 37); /* 37.5 */
    assert_int_equal(amount(p, &p->rules[2], true, -1, 200000, why), 50);
    assert_int_equal(amount(p, &p->rules[2], true, -1, 600000, why), 120); /* 150, capped */
    assert_int_equal(amount(p, &p->rules[2], true, -1, 3999, why), -1);    /* 0.99 */
    assert_non_null(strstr(why, "gives 0 points"));
    assert_int_equal(amount(p, &p->rules[2], true, -1, -50000, why), -1); /* returns > buys */
    assert_int_equal(amount(p, &p->rules[2], true, -1, INT64_MAX, why), 120);
    /* Outside a campaign (no member figures) such a rule gives nothing. */
    assert_int_equal(amount(p, &p->rules[0], false, 1, 0, why), -1);
    assert_non_null(strstr(why, "only a campaign grants it"));
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fields_are_read),
        cmocka_unit_test(refusals_name_the_field),
        cmocka_unit_test(amounts_by_member),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
