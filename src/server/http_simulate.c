/*
 * http_simulate.c: the economic model over HTTP (docs/api.md,
 * "Simulations"): POST /v1/admin/simulations starts a replay of the
 * database's history under a candidate program (and a baseline) on a
 * thread of its own with a database connection of its own, and answers 202
 * {"id"}; GET /v1/admin/simulations/{id} answers its state, progress and,
 * once done, the result (kopilka simulate --json's). One run at a time per
 * server process (409 otherwise); finished runs are kept in memory for an
 * hour.
 */
#include "http_people.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>
#include <kopilka/clock.h>

#include "service/programs.h"
#include "service/simulate.h"

enum { SIM_RUNS_MAX = 16, SIM_KEEP_SECONDS = 3600 };

typedef enum sim_state { SIM_RUNNING = 1, SIM_DONE, SIM_FAILED } sim_state;

typedef struct sim_run {
    char id[33];
    sim_state state;
    int64_t done, total;
    kp_time finished_at;
    char *result;    /* JSON, when done */
    char error[256]; /* when failed */
    /* the run's input, owned until it ends */
    char db[1024];
    kp_program *program, *baseline;
    kp_sim_opts opts;
} sim_run;

static pthread_mutex_t sim_lock = PTHREAD_MUTEX_INITIALIZER;
static sim_run *sim_runs[SIM_RUNS_MAX];

/* Drops finished runs older than an hour (sim_lock held). */
static void runs_expire(kp_time now)
{
    for (int i = 0; i < SIM_RUNS_MAX; i++) {
        sim_run *s = sim_runs[i];
        if (s && s->state != SIM_RUNNING && now - s->finished_at >= SIM_KEEP_SECONDS) {
            free(s->result);
            free(s);
            sim_runs[i] = NULL;
        }
    }
}

static void on_progress(void *ctx, int64_t done, int64_t total)
{
    sim_run *s = ctx;
    pthread_mutex_lock(&sim_lock);
    s->done = done;
    s->total = total;
    pthread_mutex_unlock(&sim_lock);
}

static void *sim_thread(void *arg)
{
    sim_run *s = arg;
    kp_error e = {0};
    kp_store *st = NULL;
    kp_sim_history *h = kp_sim_history_new();
    kp_sim_result cand, base;
    memset(&cand, 0, sizeof cand);
    memset(&base, 0, sizeof base);
    kp_buf out;
    kp_buf_init(&out, (size_t)256 << 20);
    kp_err err = h ? kp_service_open(s->db, false, &st, &e)
                   : kp_error_set(&e, KP_ERR_NOMEM, "", "out of memory");
    kp_birthdays *bd = NULL;
    if (err == KP_OK) err = kp_birthdays_open(s->db, &bd, &e);
    if (err == KP_OK)
        err = kp_sim_history_db(h, st, s->opts.from, s->opts.to, kp_birthdays_finder(bd), &e);
    kp_birthdays_free(bd);
    if (st) kp_store_close(st);
    s->opts.progress = on_progress;
    s->opts.progress_ctx = s;
    if (err == KP_OK) err = kp_sim_run(h, s->program, &s->opts, &cand, &e);
    if (err == KP_OK && s->baseline) err = kp_sim_run(h, s->baseline, &s->opts, &base, &e);
    if (err == KP_OK) {
        kp_sim_json(&out, &cand, s->baseline ? &base : NULL);
        if (out.failed) err = kp_error_set(&e, KP_ERR_NOMEM, "", "the result is too large");
    }
    char *result = err == KP_OK ? kp_buf_steal(&out) : NULL;
    kp_buf_release(&out);
    kp_sim_result_free(&cand);
    kp_sim_result_free(&base);
    kp_sim_history_free(h);
    free(s->program);
    free(s->baseline);
    pthread_mutex_lock(&sim_lock);
    s->program = s->baseline = NULL;
    s->finished_at = kp_clock_now(NULL);
    if (err == KP_OK && result) {
        s->result = result;
        s->state = SIM_DONE;
        s->done = s->total;
    } else {
        free(result);
        snprintf(s->error, sizeof s->error, "%s", e.message[0] ? e.message : "failed");
        s->state = SIM_FAILED;
    }
    pthread_mutex_unlock(&sim_lock);
    return NULL;
}

/* ---- POST /v1/admin/simulations */

typedef struct start_call {
    kp_program *program, *baseline;
    kp_sim_opts opts;
} start_call;

/* A program member ("program", "baseline") checked with every error named. */
static kp_err program_of(json_t *root, const char *key, bool required, kp_program **out,
                         kp_field_errors *fe, kp_error *e)
{
    json_t *v = json_object_get(root, key);
    *out = NULL;
    if (!v || json_is_null(v)) {
        if (!required) return KP_OK;
        return kp_error_set(e, KP_ERR_INVALID, key,
                            "is required: the program file, as a JSON object (docs/rules.md)");
    }
    if (!json_is_object(v))
        return kp_error_set(e, KP_ERR_INVALID, key,
                            "must be a program file, as a JSON object (docs/rules.md)");
    char *text = json_dumps(v, 0);
    *out = malloc(sizeof **out);
    kp_err err = text && *out ? kp_program_validate(text, strlen(text), *out, fe, e)
                              : kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    free(text);
    if (err) {
        free(*out);
        *out = NULL;
        if (e->field[0] == '\0' || strncmp(e->field, key, strlen(key)) != 0) {
            /* key + "." + the file's field, cut to the field's room (joined
             * by hand: snprintf's truncation fails a release build). */
            char field[sizeof e->field];
            size_t k = strlen(key), f = strlen(e->field), room = sizeof field - 1;
            if (k > room) k = room;
            memcpy(field, key, k);
            size_t n = k;
            if (f && n < room) field[n++] = '.';
            if (f > room - n) f = room - n;
            memcpy(field + n, e->field, f);
            field[n + f] = '\0';
            memcpy(e->field, field, n + f + 1);
        }
    }
    return err;
}

static kp_err date_member(json_t *root, const char *key, const kp_program *p, kp_time *out,
                          kp_error *e)
{
    json_t *v = json_object_get(root, key);
    *out = 0;
    if (!v || json_is_null(v)) return KP_OK;
    const char *s = json_string_value(v);
    if (s && kp_time_parse(s, out)) return KP_OK;
    if (s && strlen(s) == 10 && s[4] == '-' && s[7] == '-') {
        int y = 0, m = 0, d = 0, i;
        bool ok = true;
        for (i = 0; i < 4; i++) ok &= s[i] >= '0' && s[i] <= '9', y = y * 10 + (s[i] - '0');
        for (i = 5; i < 7; i++) ok &= s[i] >= '0' && s[i] <= '9', m = m * 10 + (s[i] - '0');
        for (i = 8; i < 10; i++) ok &= s[i] >= '0' && s[i] <= '9', d = d * 10 + (s[i] - '0');
        if (ok && m >= 1 && m <= 12 && d >= 1 && d <= 31) {
            *out = kp_program_date_start(p, y, m, d);
            return KP_OK;
        }
    }
    return kp_error_set(e, KP_ERR_INVALID, key,
                        "must be a date \"YYYY-MM-DD\" (in the program's time zone) or an RFC "
                        "3339 time, or absent");
}

static kp_err do_start_check(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                             bool *replayed, kp_field_errors *fe, kp_error *e)
{
    static const char *const keys[] = {"program", "baseline", "redemption", "from", "to", NULL};
    start_call *c = arg;
    kp_err err = kp_office_require(o, KP_PERM_PROGRAM_READ, e);
    if (err) return err;
    json_t *root = http_body_object(r, keys, e);
    if (!root) return e->code ? e->code : KP_ERR_INVALID;
    c->opts.threads = 1; /* the tills keep the other cores */
    c->opts.redemption_bp = -1;
    if ((err = program_of(root, "program", true, &c->program, fe, e)) == KP_OK)
        err = program_of(root, "baseline", false, &c->baseline, fe, e);
    json_t *red = json_object_get(root, "redemption");
    if (err == KP_OK && red && !json_is_null(red)) {
        double v = json_number_value(red);
        if (!json_is_number(red) || v < 0 || v > 1)
            err = kp_error_set(e, KP_ERR_INVALID, "redemption",
                               "must be a share from 0 to 1 (0.6: each member burns 60%% of "
                               "what the rules allow), or absent for the ledger's own burn");
        else
            c->opts.redemption_bp = (int32_t)(v * 10000 + 0.5);
    }
    if (err == KP_OK) err = date_member(root, "from", c->program, &c->opts.from, e);
    if (err == KP_OK) err = date_member(root, "to", c->program, &c->opts.to, e);
    if (err == KP_OK && c->opts.from && c->opts.to && c->opts.to <= c->opts.from)
        err = kp_error_set(e, KP_ERR_INVALID, "to", "must be after from");
    json_decref(root);
    return err;
}

static unsigned route_start(const http_request *r, kp_http_answer *a)
{
    start_call c;
    memset(&c, 0, sizeof c);
    unsigned status = http_office_read(r, do_start_check, &c, a);
    if (status != 200) {
        free(c.program);
        free(c.baseline);
        return status;
    }
    kp_error e = {0};
    sim_run *s = calloc(1, sizeof *s);
    pthread_mutex_lock(&sim_lock);
    runs_expire(r->now);
    int slot = -1;
    bool busy = false;
    for (int i = 0; i < SIM_RUNS_MAX; i++) {
        if (sim_runs[i] && sim_runs[i]->state == SIM_RUNNING) busy = true;
        if (!sim_runs[i] && slot < 0) slot = i;
    }
    kp_err err = KP_OK;
    if (!s)
        err = kp_error_set(&e, KP_ERR_NOMEM, "", "out of memory");
    else if (busy)
        err = kp_error_set(&e, KP_ERR_CONFLICT, "",
                           "a simulation is running on this server: wait for it (GET "
                           "/v1/admin/simulations/{id}), one runs at a time");
    else if (slot < 0)
        err = kp_error_set(&e, KP_ERR_CONFLICT, "",
                           "this server keeps at most %d finished simulations for an hour: try "
                           "again later",
                           SIM_RUNS_MAX);
    if (err == KP_OK) {
        uint8_t raw[16];
        randombytes_buf(raw, sizeof raw);
        sodium_bin2hex(s->id, sizeof s->id, raw, sizeof raw);
        s->state = SIM_RUNNING;
        snprintf(s->db, sizeof s->db, "%s", r->srv->config.db_path);
        s->program = c.program;
        s->baseline = c.baseline;
        s->opts = c.opts;
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, sim_thread, s)) {
            err = kp_error_set(&e, KP_ERR_NOMEM, "", "cannot start the simulation's thread");
        } else {
            sim_runs[slot] = s;
            c.program = c.baseline = NULL; /* the thread's now */
        }
        pthread_attr_destroy(&attr);
    }
    char id[33] = "";
    if (err == KP_OK) memcpy(id, s->id, sizeof id);
    pthread_mutex_unlock(&sim_lock);
    if (err) {
        free(s);
        free(c.program);
        free(c.baseline);
        return kp_http_error_answer(a->body, &e, NULL);
    }
    kp_buf_reset(a->body);
    kp_buf_puts(a->body, "{");
    kp_buf_json_kv_str(a->body, "id", id, false);
    kp_buf_json_kv_str(a->body, "state", "running", true);
    kp_buf_puts(a->body, "}");
    return 202;
}

/* ---- GET /v1/admin/simulations/{id} */

static kp_err do_get_check(kp_office *o, const http_request *r, void *arg, kp_buf *out,
                           bool *replayed, kp_field_errors *fe, kp_error *e)
{
    return kp_office_require(o, KP_PERM_PROGRAM_READ, e);
}

static unsigned route_get(const http_request *r, kp_http_answer *a)
{
    unsigned status = http_office_read(r, do_get_check, NULL, a);
    if (status != 200) return status;
    kp_buf *out = a->body;
    kp_buf_reset(out);
    pthread_mutex_lock(&sim_lock);
    runs_expire(r->now);
    const sim_run *s = NULL;
    for (int i = 0; i < SIM_RUNS_MAX && !s; i++)
        if (sim_runs[i] && strcmp(sim_runs[i]->id, r->params[0]) == 0) s = sim_runs[i];
    if (s) {
        kp_buf_puts(out, "{");
        kp_buf_json_kv_str(out, "id", s->id, false);
        kp_buf_json_kv_str(out, "state",
                           s->state == SIM_RUNNING ? "running"
                           : s->state == SIM_DONE  ? "done"
                                                   : "failed",
                           true);
        kp_buf_printf(out, ",\"progress\":{\"done\":%lld,\"total\":%lld}", (long long)s->done,
                      (long long)s->total);
        if (s->state == SIM_FAILED) kp_buf_json_kv_str(out, "error", s->error, true);
        kp_buf_puts(out, ",\"result\":");
        kp_buf_puts(out, s->state == SIM_DONE ? s->result : "null");
        kp_buf_puts(out, "}");
    }
    pthread_mutex_unlock(&sim_lock);
    if (!s) {
        kp_error e = {0};
        kp_error_set(&e, KP_ERR_NOT_FOUND, "id",
                     "no such simulation on this server (results are kept for an hour)");
        return kp_http_error_answer(out, &e, NULL);
    }
    return out->failed ? 500 : 200;
}

const http_route http_simulate_routes[] = {
    {"POST", "/v1/admin/simulations", HTTP_STAFF, route_start},
    {"GET", "/v1/admin/simulations/{}", HTTP_STAFF, route_get},
};
const size_t http_simulate_routes_count =
    sizeof http_simulate_routes / sizeof http_simulate_routes[0];
