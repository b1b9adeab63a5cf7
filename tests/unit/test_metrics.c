/*
 * test_metrics.c: the metrics' own code (server/metrics.h): histogram
 * buckets at their bounds, the text format of a histogram and of the
 * request series, routes reduced to bounded labels (no card number, id or
 * unknown path becomes one), and the --metrics access words.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "server/metrics.h"

/* An observation equal to a bound falls in that bound's bucket (le means
 * "less than or equal"); past the last bound, in +Inf. */
static void histogram_bounds_are_inclusive(void **state)
{
    (void)state;
    static const uint64_t bounds[] = {500, 1000, 2500};
    kp_histogram h;
    kp_histogram_init(&h, bounds, 3);
    kp_histogram_observe(&h, 0);
    kp_histogram_observe(&h, 500);
    kp_histogram_observe(&h, 501);
    kp_histogram_observe(&h, 2500);
    kp_histogram_observe(&h, 2501);
    assert_int_equal(h.counts[0], 2);
    assert_int_equal(h.counts[1], 1);
    assert_int_equal(h.counts[2], 1);
    assert_int_equal(h.counts[3], 1);
    assert_int_equal(h.sum, 0 + 500 + 501 + 2500 + 2501);
}

/* Cumulative buckets with le in seconds (microseconds / 1e6, no trailing
 * zeros), then _sum and _count = +Inf. */
static void histogram_writes_cumulative_buckets_in_seconds(void **state)
{
    (void)state;
    static const uint64_t bounds[] = {500, 1000, 10000000};
    kp_histogram h;
    kp_histogram_init(&h, bounds, 3);
    kp_histogram_observe(&h, 400);
    kp_histogram_observe(&h, 900);
    kp_histogram_observe(&h, 20000000);
    kp_buf out;
    kp_buf_init(&out, 1 << 16);
    kp_histogram_write(&out, "x_seconds", "route=\"/v1/quote\"", &h, 1000000);
    assert_string_equal(out.data, "x_seconds_bucket{route=\"/v1/quote\",le=\"0.0005\"} 1\n"
                                  "x_seconds_bucket{route=\"/v1/quote\",le=\"0.001\"} 2\n"
                                  "x_seconds_bucket{route=\"/v1/quote\",le=\"10\"} 2\n"
                                  "x_seconds_bucket{route=\"/v1/quote\",le=\"+Inf\"} 3\n"
                                  "x_seconds_sum{route=\"/v1/quote\"} 20.0013\n"
                                  "x_seconds_count{route=\"/v1/quote\"} 3\n");
    kp_buf_reset(&out);
    kp_histogram_write(&out, "x_size", "", &h, 1);
    assert_non_null(strstr(out.data, "x_size_bucket{le=\"500\"} 1\n"));
    assert_non_null(strstr(out.data, "x_size_sum 20001300\nx_size_count 3\n"));
    kp_buf_release(&out);
}

static void routes_are_bounded_labels(void **state)
{
    (void)state;
    assert_string_equal(kp_metrics_route_label("/v1/purchases"), "/v1/purchases");
    assert_string_equal(kp_metrics_route_label("/v1/cards/2000000000018"), "/v1/cards/{}");
    assert_string_equal(kp_metrics_route_label("/v1/cards/2000000000018/qr.png"),
                        "/v1/cards/{}/qr.png");
    assert_string_equal(kp_metrics_route_label("/v1/admin/customers/17/history"),
                        "/v1/admin/customers/{}/history");
    assert_string_equal(kp_metrics_route_label("/v1/admin/families/3/members/9/leave"),
                        "/v1/admin/families/{}/members/{}/leave");
    assert_string_equal(kp_metrics_route_label("/v1/me/family/invitations/12/accept"),
                        "/v1/me/family/invitations/{}/accept");
    assert_string_equal(kp_metrics_route_label("/v1/me/cards/2000000000018/block"),
                        "/v1/me/cards/{}/block");
    assert_string_equal(kp_metrics_route_label("/metrics"), "/metrics");
    /* Anything else is one label, however many distinct paths come. */
    assert_string_equal(kp_metrics_route_label("/v1/cards"), "other");
    assert_string_equal(kp_metrics_route_label("/wp-login.php"), "other");
    assert_string_equal(kp_metrics_route_label("/v1/purchases/4111111111111111"), "other");
    assert_string_equal(kp_metrics_route_label("relative"), "other");
    assert_string_equal(kp_metrics_route_label(""), "other");
}

/* The request series: exact lines for what was counted; unknown methods
 * and statuses fold into "other"; nothing counted prints no series. */
static void requests_are_counted_by_route_method_status(void **state)
{
    (void)state;
    kp_metrics *m = kp_metrics_new(KP_METRICS_LOCAL);
    assert_non_null(m);
    kp_metrics_request(m, "POST", "/v1/purchases", 201, 1500);
    kp_metrics_request(m, "POST", "/v1/purchases", 201, 800);
    kp_metrics_request(m, "GET", "/v1/cards/2000000000018", 404, 300);
    kp_metrics_request(m, "BREW", "/coffee/42", 418, 100);
    kp_metrics_scheduler_run(m, KP_METRICS_JOB_EXPIRE, false);
    kp_metrics_connection_opened(m);
    kp_metrics_connection_opened(m);
    kp_metrics_connection_closed(m);
    kp_metrics_connection_refused(m);
    kp_metrics_connections_timed_out(m, 4);
    kp_metrics_sample s = {
        .db_path = "/nonexistent/kopilka.db", .version = "9.9.9", .program_version = 3};
    kp_buf out;
    kp_buf_init(&out, KP_METRICS_ANSWER_MAX);
    kp_metrics_write(m, &s, &out);
    const char *want[] = {
        "kopilka_build_info{version=\"9.9.9\"} 1\n",
        "\nkopilka_program_version 3\n",
        "\nkopilka_http_requests_total{route=\"/v1/purchases\",method=\"POST\",status=\"201\"} "
        "2\n",
        "\nkopilka_http_requests_total{route=\"/v1/cards/{}\",method=\"GET\",status=\"404\"} 1\n",
        "\nkopilka_http_requests_total{route=\"other\",method=\"other\",status=\"other\"} 1\n",
        "\nkopilka_http_request_duration_seconds_sum{route=\"/v1/purchases\"} 0.0023\n",
        "\nkopilka_http_request_duration_seconds_bucket{route=\"/v1/purchases\",le=\"0.001\"} "
        "1\n",
        "\nkopilka_http_connections_open 1\n",
        "\nkopilka_http_connections_total 2\n",
        "\nkopilka_http_connections_refused_total 1\n",
        "\nkopilka_http_connections_timed_out_total 4\n",
        "\nkopilka_scheduler_runs_total{job=\"expire\",outcome=\"error\"} 1\n",
        "\nkopilka_scheduler_runs_total{job=\"tick\",outcome=\"ok\"} 0\n",
        "\nkopilka_database_size_bytes 0\n",
        "# TYPE kopilka_http_requests_total counter\n",
        "# TYPE kopilka_http_request_duration_seconds histogram\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (strstr(out.data, want[i]) == NULL) fail_msg("missing: %s\nin:\n%s", want[i], out.data);
    assert_null(strstr(out.data, "2000000000018"));
    assert_null(strstr(out.data, "coffee"));
    assert_null(strstr(out.data, "route=\"/v1/quote\"")); /* never asked: no series */
    kp_buf_release(&out);
    kp_metrics_free(m);
}

static void access_words_are_checked(void **state)
{
    (void)state;
    kp_metrics_access a = KP_METRICS_OFF;
    assert_true(kp_metrics_access_parse(NULL, &a));
    assert_int_equal(a, KP_METRICS_LOCAL);
    assert_true(kp_metrics_access_parse("on", &a));
    assert_int_equal(a, KP_METRICS_ON);
    assert_true(kp_metrics_access_parse("off", &a));
    assert_int_equal(a, KP_METRICS_OFF);
    assert_true(kp_metrics_access_parse("local", &a));
    assert_int_equal(a, KP_METRICS_LOCAL);
    assert_false(kp_metrics_access_parse("yes", &a));
    assert_false(kp_metrics_access_parse("", &a));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(histogram_bounds_are_inclusive),
        cmocka_unit_test(histogram_writes_cumulative_buckets_in_seconds),
        cmocka_unit_test(routes_are_bounded_labels),
        cmocka_unit_test(requests_are_counted_by_route_method_status),
        cmocka_unit_test(access_words_are_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
