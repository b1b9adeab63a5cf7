/* cmd_serve.c: `kopilka serve`: parses its options and runs the HTTP server. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopilka/clock.h>

#include "cli.h"
#include "notify/notify.h"
#include "server/server.h"

/* Reads `name N` into *out when given; false (with a message) when N is not
 * a whole number from min to max. `what` says what N is in the message
 * ("a whole number ", or "" where the range says enough). */
static bool int_option(int argc, char **argv, const char *name, const char *what, long min,
                       long max, int *out)
{
    const char *text = cli_option(argc, argv, name);
    if (text == NULL) return true;
    char *end;
    long n = strtol(text, &end, 10);
    if (end == text || *end != '\0' || n < min || n > max) {
        fprintf(stderr, "kopilka serve: %s must be %sfrom %ld to %ld, got %s\n", name, what, min,
                max, text);
        return false;
    }
    *out = (int)n;
    return true;
}

int cmd_serve(int argc, char **argv)
{
    static const char *const opts[] = {"--listen", "--readers", "--http-threads", "--now",
                                       "--tick", "--access-log", "--request-timeout",
                                       "--idle-timeout", "--connections-per-address", "--metrics",
                                       "--notify", NULL};
    bool trust_proxy = cli_take_flag(&argc, argv, "--trust-proxy");
    if (!cli_check_options(argc, argv, opts, "serve")) return 2;
    const char *db = cli_positional(argc, argv, 0);
    if (db == NULL) {
        fprintf(stderr, "usage: kopilka serve DB [--listen HOST:PORT] [--readers N] "
                        "[--http-threads N] [--now TIME] [--tick SECONDS] "
                        "[--access-log off|stderr|FILE] "
                        "[--request-timeout SECONDS] [--idle-timeout SECONDS] "
                        "[--connections-per-address N] [--metrics local|on|off] "
                        "[--notify FILE] [--trust-proxy]\n");
        return 2;
    }
    const char *listen = cli_option(argc, argv, "--listen");
    char host[64];
    kp_server_config config = {.db_path = db, .host = host, .port = 8080, .readers = 8,
                               .http_threads = 4, .tick_seconds = 60, .request_timeout_s = 30,
                               .idle_timeout_s = 60, .connections_per_address = 256};
    config.trust_proxy = trust_proxy;
    snprintf(host, sizeof host, "127.0.0.1");
    if (listen && !cli_parse_listen(listen, host, sizeof host, &config.port)) {
        fprintf(stderr, "kopilka serve: --listen must be HOST:PORT (like 127.0.0.1:8080), got %s\n",
                listen);
        return 2;
    }
    if (!int_option(argc, argv, "--readers", "", 1, KP_READERS_MAX, &config.readers) ||
        !int_option(argc, argv, "--http-threads", "", 1, 64, &config.http_threads) ||
        !int_option(argc, argv, "--tick", "a whole number of seconds (0: no scheduler) ", 0,
                    86400, &config.tick_seconds) ||
        !int_option(argc, argv, "--request-timeout", "a whole number ", 1, 3600,
                    &config.request_timeout_s) ||
        !int_option(argc, argv, "--idle-timeout", "a whole number ", 1, 86400,
                    &config.idle_timeout_s) ||
        !int_option(argc, argv, "--connections-per-address", "a whole number ", 1, 2048,
                    &config.connections_per_address))
        return 2;
    config.access_log = cli_option(argc, argv, "--access-log");
    if (config.access_log && config.access_log[0] == '\0') {
        fprintf(stderr, "kopilka serve: --access-log must be off, stderr or a file path\n");
        return 2;
    }
    config.metrics = cli_option(argc, argv, "--metrics");
    kp_metrics_access access;
    if (!kp_metrics_access_parse(config.metrics, &access)) {
        fprintf(stderr, "kopilka serve: --metrics must be local (GET /metrics answers loopback "
                        "clients only, the default), on (anyone) or off, got %s\n",
                config.metrics);
        return 2;
    }
    const char *now = cli_option(argc, argv, "--now");
    if (now && !kp_time_parse(now, &config.clock.fixed)) {
        fprintf(stderr, "kopilka serve: --now must be an RFC 3339 time, got %s\n", now);
        return 2;
    }
    const char *notify = cli_option(argc, argv, "--notify");
    kp_notify_config notify_config;
    if (notify) {
        kp_error e = {0};
        if (kp_notify_config_load(notify, &notify_config, &e) != KP_OK) {
            fprintf(stderr, "kopilka serve: --notify %s: %s%s%s\n", notify, e.field,
                    e.field[0] ? ": " : "", e.message);
            return 2;
        }
        config.notify = &notify_config;
    }
    return kp_server_run(&config);
}
