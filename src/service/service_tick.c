/*
 * service_tick.c: the time-driven work of a program, run by the server's
 * scheduler thread and by `kopilka tick DB --now TIME`:
 *
 *  - expiry: lots past their expiry lose what is left (KP_OP_EXPIRE, to
 *    program:expired); exactly once because the lot is emptied;
 *  - birthday and tenure: once a day (the program's calendar), the grant
 *    rules on "birthday" and "tenure" for the customers whose day it is;
 *  - tier_review: on the 1st of every review_months-th month, each
 *    account's tier from its spend over the window (a TIER notification
 *    per change);
 *  - remind_expiry: once a day, an EXPIRING notification for each account
 *    with points expiring in remind_days days (the program's
 *    "notifications" section; 0 = none).
 *
 * Expiries and grants write their notification events with their
 * operations (kp_op_row.notify).
 *
 * Exactly once per due item: each job keeps in job_state the last due item
 * it finished and, inside a long item, the last account it did; that state
 * is written in the same transaction as the work, so a crash repeats
 * nothing and loses nothing; with several servers on one database, the
 * job's state is held by one of them at a time (job_state_get) and the
 * others skip the job. Grants also carry their once-keys. A job that
 * was down catches up item by item (at most a year of days). Every finished
 * item is recorded in job_runs.
 */
#include "service_rules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopilka/clock.h>

#include "notify/notify.h"
#include "settle_book.h"

enum { PAGE_MAX = 256, CATCH_UP_DAYS = 366 };

static kp_err storage(kp_store *st, kp_err err, kp_error *e)
{
    /* A limit of the store (an account with too many open lots) is no
     * failure of the storage: its own sentence says what is wrong. */
    return kp_error_set(e, err, "", "%s%s",
                        err == KP_ERR_LIMIT ? "" : "storage failed: ", st->last_error);
}

static bool has_grant_on(const kp_program *p, const char *type)
{
    for (size_t r = 0; r < p->n_rules; r++)
        if (p->rules[r].kind == KP_RULE_GRANT && strcmp(p->rules[r].on, type) == 0) return true;
    return false;
}

static kp_err record_run(kp_store *st, const char *job, kp_time due, kp_time now, int64_t items,
                         const char *detail, kp_tick_report *rep, kp_error *e)
{
    kp_job_run run;
    memset(&run, 0, sizeof run);
    snprintf(run.job, sizeof run.job, "%s", job);
    run.due_at = due;
    run.ran_at = now;
    run.items = items;
    snprintf(run.detail, sizeof run.detail, "%s", detail);
    kp_err err = st->ops->triggers->job_run_insert(st, &run);
    if (err) return storage(st, err, e);
    rep->runs++;
    return KP_OK;
}

/* job_state_get answered that another server holds the job (several
 * servers on one PostgreSQL database): that server does the job's due items
 * and commits them with its state, so this one skips the job quietly, with
 * nothing written, and looks again at its next tick. */
static kp_err job_busy(kp_tick_report *rep)
{
    rep->busy++;
    return KP_OK;
}

/* ---------------------------------------------------------------- expiry */

kp_err kp_service_expire(kp_store *st, const kp_program *p, kp_time now, const int64_t *ids,
                         size_t n, kp_scratch *sc, kp_tick_report *rep, kp_error *e)
{
    int64_t points = 0, accounts = 0;
    for (size_t i = 0; i < n; i++) {
        kp_account *a = &sc->account;
        /* A plan expires at most KP_LOTS_MAX lots: an account with more
         * expired lots gets one expiry operation per KP_LOTS_MAX of them. */
        bool counted = false;
        for (;;) {
            kp_err err = st->ops->account_load(st, ids[i], a);
            if (err == KP_ERR_NOT_FOUND) break;
            if (err) return storage(st, err, e);
            int64_t expired = 0;
            if ((err = kp_ledger_plan_expire(a, now, &sc->plan, &expired)))
                return kp_error_set(e, err, "",
                                    "the expiry of account %lld was refused: an internal "
                                    "invariant did not hold (logged)",
                                    (long long)a->id);
            if (sc->plan.n_changes == 0) break;
            kp_op_row row;
            memset(&row, 0, sizeof row);
            row.type = KP_OP_EXPIRE;
            row.account_id = a->id;
            row.program_version = p->version;
            row.at = now;
            row.points = -expired;
            kp_notify_figures f;
            memset(&f, 0, sizeof f);
            f.points = -expired;
            kp_notify_figures_after(a, &sc->plan, now, &f);
            /* A card's account in another currency: its customer is the
             * own account's, told in that currency. */
            int64_t owner;
            if ((err = st->ops->account_owner(st, a->id, &owner, f.currency)))
                return storage(st, err, e);
            kp_notify_event ev;
            if ((err = kp_notify_event_fill(&ev, KP_NOTIFY_EXPIRED, NULL, owner, 0, "", 0, now, &f,
                                            &sc->notify, e)))
                return err;
            row.notify = &ev;
            if ((err = st->ops->op_insert(st, &row))) return storage(st, err, e);
            if ((err = st->ops->plan_apply(st, row.id, &sc->plan, now))) return storage(st, err, e);
            if ((err = kp_book_expire(st, p, f.currency, a, &sc->plan, row.id, now, e))) return err;
            points += expired;
            if (!counted) accounts++;
            counted = true;
            if (sc->plan.n_changes < KP_LOTS_MAX) break;
        }
    }
    rep->expired_accounts += accounts;
    rep->expired_points += points;
    if (accounts == 0) return KP_OK;
    char detail[128];
    snprintf(detail, sizeof detail, "%lld points of %lld accounts expired", (long long)points,
             (long long)accounts);
    return record_run(st, "expiry", now, now, accounts, detail, rep, e);
}

static kp_err job_expiry(kp_store *st, const kp_program *p, kp_time now, int64_t *budget,
                         kp_scratch *sc, kp_tick_report *rep, kp_error *e)
{
    int64_t ids[PAGE_MAX];
    size_t limit = *budget < PAGE_MAX ? (size_t)*budget : PAGE_MAX, n = 0;
    if (limit == 0) {
        rep->more = true;
        return KP_OK;
    }
    kp_err err = st->ops->triggers->accounts_expiring(st, now, ids, limit, &n);
    if (err) return storage(st, err, e);
    *budget -= (int64_t)n;
    if (n == limit) rep->more = true;
    return kp_service_expire(st, p, now, ids, n, sc, rep, e);
}

/* ---------------------------------------------------------- daily jobs */

typedef struct daily {
    const char *job;
    const char *event; /* the grant rules' event type */
    const kp_birthday_finder *birthdays;
} daily;

/* Accounts whose day (month, day) it is, after `after`. */
static kp_err daily_list(kp_store *st, const kp_program *p, const daily *d, int month, int day,
                         kp_time day_start, int64_t after, int64_t *ids, kp_time *created,
                         size_t limit, size_t *n)
{
    if (strcmp(d->event, "tenure") == 0)
        return st->ops->triggers->accounts_created_on(st, month, day, p->utc_offset_minutes,
                                                      day_start, after, ids, created, limit, n);
    for (size_t i = 0; i < limit; i++) created[i] = 0;
    return d->birthdays->find(d->birthdays->ctx, st, month, day, after, ids, limit, n);
}

static kp_err daily_item(kp_store *st, const kp_program *p, const daily *d, int64_t account,
                         kp_time created, kp_time day_start, kp_scratch *sc, int64_t *given,
                         kp_error *e)
{
    kp_grant_ctx g = {.card = "", .store = "", .event_id = "", .token = "", .at = day_start};
    if (created) {
        int cy, cm, cd, y, m, dd;
        kp_program_date(p, created, &cy, &cm, &cd);
        kp_program_date(p, day_start, &y, &m, &dd);
        g.years = y - cy;
    }
    *given = 0;
    for (size_t r = 0; r < p->n_rules; r++) {
        const kp_rule *rule = &p->rules[r];
        if (rule->kind != KP_RULE_GRANT || strcmp(rule->on, d->event) != 0) continue;
        int64_t points;
        kp_time expires;
        char why[192];
        kp_err err =
            kp_service_grant(st, p, rule, account, &g, sc, &points, &expires, why, sizeof why, e);
        if (err) return err;
        *given += points;
    }
    return KP_OK;
}

static bool leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* A daily job's state: the start of today in the program's calendar, the
 * last day done and the cursor in the day after it. A job never run starts
 * with today. KP_ERR_BUSY: another server holds it. */
static kp_err day_job_state(kp_store *st, const kp_program *p, const char *job, kp_time now,
                            kp_time *today, kp_time *done, int64_t *cursor)
{
    int y, m, d;
    kp_program_date(p, now, &y, &m, &d);
    *today = kp_program_date_start(p, y, m, d);
    *done = 0;
    *cursor = 0;
    kp_err err = st->ops->triggers->job_state_get(st, job, done, cursor);
    if (err == KP_ERR_NOT_FOUND) {
        *done = *today - KP_DAY_SECONDS;
        *cursor = 0;
        return KP_OK;
    }
    return err;
}

/* Runs the days after the job's last finished day up to today. The cursor
 * holds the last account done in the current day: >= 0 in the day's own
 * list, -(id + 1) in the list of Feb 29 that Feb 28 takes in other years. */
static kp_err job_daily(kp_store *st, const kp_program *p, const daily *d, kp_time now,
                        int64_t *budget, kp_scratch *sc, kp_tick_report *rep, int64_t *grants,
                        kp_error *e)
{
    const kp_triggers_ops *t = st->ops->triggers;
    kp_time today, done;
    int64_t cursor;
    kp_err err = day_job_state(st, p, d->job, now, &today, &done, &cursor);
    if (err == KP_ERR_BUSY) return job_busy(rep);
    if (err) return storage(st, err, e);
    if (done < today - CATCH_UP_DAYS * KP_DAY_SECONDS) {
        done = today - CATCH_UP_DAYS * KP_DAY_SECONDS;
        cursor = 0;
        snprintf(rep->note, sizeof rep->note, "%s: more than %d days behind; older days skipped",
                 d->job, CATCH_UP_DAYS);
    }
    int64_t ids[PAGE_MAX];
    kp_time created[PAGE_MAX];
    while (done < today) {
        kp_time day = done + KP_DAY_SECONDS;
        int dy, dm, dday;
        kp_program_date(p, day, &dy, &dm, &dday);
        bool extra = dm == 2 && dday == 28 && !leap(dy);
        int64_t items = 0, given_day = 0;
        for (;;) {
            bool second = cursor < 0;
            int64_t after = second ? -cursor - 1 : cursor;
            size_t limit = *budget < PAGE_MAX ? (size_t)*budget : PAGE_MAX, n = 0;
            if (limit == 0) {
                rep->more = true;
                goto save;
            }
            err = daily_list(st, p, d, second ? 2 : dm, second ? 29 : dday, day, after, ids,
                             created, limit, &n);
            if (err) return storage(st, err, e);
            for (size_t i = 0; i < n; i++) {
                int64_t given = 0;
                if ((err = daily_item(st, p, d, ids[i], created[i], day, sc, &given, e)))
                    return err;
                (*budget)--;
                items++;
                given_day += given;
                if (given > 0) (*grants)++;
                cursor = second ? -ids[i] - 1 : ids[i];
            }
            if (n == limit) continue;
            if (!second && extra) {
                cursor = -1;
                continue;
            }
            break;
        }
        char detail[128];
        snprintf(detail, sizeof detail, "%lld accounts, %lld points granted", (long long)items,
                 (long long)given_day);
        if ((err = record_run(st, d->job, day, now, items, detail, rep, e))) return err;
        done = day;
        cursor = 0;
    }
save:
    if ((err = t->job_state_set(st, d->job, done, cursor))) return storage(st, err, e);
    return KP_OK;
}

/* ---------------------------------------------------------- tier review */

kp_time kp_tier_review_at_or_before(const kp_program *p, kp_time t)
{
    int y, m, d;
    kp_program_date(p, t, &y, &m, &d);
    int64_t index = (int64_t)y * 12 + (m - 1);
    index -= index % p->tier_review_months;
    return kp_program_date_start(p, (int)(index / 12), (int)(index % 12) + 1, 1);
}

kp_time kp_tier_review_next(const kp_program *p, kp_time t)
{
    int y, m, d;
    kp_program_date(p, t, &y, &m, &d);
    int64_t index = (int64_t)y * 12 + (m - 1) + p->tier_review_months;
    index -= index % p->tier_review_months;
    return kp_program_date_start(p, (int)(index / 12), (int)(index % 12) + 1, 1);
}

int kp_tier_reviewed(const kp_program *p, int current, int qualified)
{
    if (qualified >= current) return qualified;
    switch (p->tier_downgrade) {
    case KP_DOWNGRADE_TO_QUALIFIED: return qualified;
    case KP_DOWNGRADE_ONE_LEVEL: return current - 1 > qualified ? current - 1 : qualified;
    case KP_DOWNGRADE_NEVER: return current;
    }
    return qualified;
}

/* The tier changed: a TIER event, key "tier:<account>:<at>". */
static kp_err tier_notify(kp_store *st, int64_t account_id, const char *tier, const char *before,
                          kp_time at, kp_error *e)
{
    kp_notify_figures f;
    memset(&f, 0, sizeof f);
    snprintf(f.tier, sizeof f.tier, "%s", tier);
    snprintf(f.tier_before, sizeof f.tier_before, "%s", before);
    char key[KP_NOTIFY_KEY_MAX];
    snprintf(key, sizeof key, "tier:%lld:%lld", (long long)account_id, (long long)at);
    return kp_notify_emit(st, KP_NOTIFY_TIER, key, account_id, 0, "", 0, at, &f, e);
}

static kp_err job_tier_review(kp_store *st, const kp_program *p, kp_time now, int64_t *budget,
                              kp_tick_report *rep, kp_error *e)
{
    const kp_triggers_ops *t = st->ops->triggers;
    kp_time done = 0;
    int64_t cursor = 0;
    kp_err err = t->job_state_get(st, "tier_review", &done, &cursor);
    if (err == KP_ERR_BUSY) return job_busy(rep);
    kp_time due;
    if (err == KP_ERR_NOT_FOUND)
        due = kp_tier_review_at_or_before(p, now);
    else if (err)
        return storage(st, err, e);
    else
        due = kp_tier_review_next(p, done);
    if (err == KP_OK &&
        due < kp_tier_review_at_or_before(p, now) - (kp_time)CATCH_UP_DAYS * KP_DAY_SECONDS) {
        due = kp_tier_review_at_or_before(p, now);
        cursor = 0;
    }
    static _Thread_local kp_review_row rows[PAGE_MAX];
    while (due <= now) {
        int64_t items = 0, changes = 0;
        for (;;) {
            size_t limit = *budget < PAGE_MAX ? (size_t)*budget : PAGE_MAX, n = 0;
            if (limit == 0) {
                rep->more = true;
                if ((err = t->job_state_set(st, "tier_review", done, cursor)))
                    return storage(st, err, e);
                return KP_OK;
            }
            err = t->review_page(st, cursor, due - p->tier_window_days * KP_DAY_SECONDS, due, rows,
                                 limit, &n);
            if (err) return storage(st, err, e);
            for (size_t i = 0; i < n; i++) {
                const kp_review_row *r = &rows[i];
                int current = -1;
                kp_program_tier(p, r->tier, &current);
                int next = kp_tier_reviewed(p, current, kp_program_tier_for_spend(p, r->spend_minor));
                (*budget)--;
                items++;
                cursor = r->account_id;
                if (next == current) continue;
                const char *name = next >= 0 ? p->tiers[next].name : "";
                char reason[96];
                snprintf(reason, sizeof reason, "review: spend over %lld days",
                         (long long)p->tier_window_days);
                if ((err =
                         t->account_tier_set(st, r->account_id, name, r->spend_minor, due, reason)))
                    return storage(st, err, e);
                if ((err = tier_notify(st, r->account_id, name, r->tier, due, e))) return err;
                changes++;
            }
            if (n < limit) break;
        }
        rep->tier_changes += changes;
        char detail[128];
        snprintf(detail, sizeof detail, "%lld accounts reviewed, %lld tiers changed",
                 (long long)items, (long long)changes);
        if ((err = record_run(st, "tier_review", due, now, items, detail, rep, e))) return err;
        done = due;
        cursor = 0;
        due = kp_tier_review_next(p, due);
    }
    if ((err = t->job_state_set(st, "tier_review", done, cursor))) return storage(st, err, e);
    return KP_OK;
}

/* ------------------------------------------------------- expiry reminder */

/* One EXPIRING event for an account with points expiring on the reminded
 * day, key "expiring:<account>:<YYYY-MM-DD>" (the expiry's day in the
 * program's calendar), with the balance as it stands. */
static kp_err remind_one(kp_store *st, const kp_program *p, const kp_expiring_row *r, kp_time now,
                         kp_scratch *sc, kp_error *e)
{
    kp_err err = st->ops->account_load(st, r->account_id, &sc->account);
    if (err == KP_ERR_NOT_FOUND) return KP_OK;
    if (err) return storage(st, err, e);
    kp_notify_figures f;
    memset(&f, 0, sizeof f);
    f.has_balance = true;
    f.balance = sc->account.balance;
    f.expiry_points = r->points;
    f.expiry_at = r->first_at;
    /* The key stays the account's; the customer is its card's (currency.h). */
    int64_t owner;
    if ((err = st->ops->account_owner(st, r->account_id, &owner, f.currency)))
        return storage(st, err, e);
    int y, m, d;
    kp_program_date(p, r->first_at, &y, &m, &d);
    char key[KP_NOTIFY_KEY_MAX];
    snprintf(key, sizeof key, "expiring:%lld:%04d-%02d-%02d", (long long)r->account_id, y, m, d);
    return kp_notify_emit(st, KP_NOTIFY_EXPIRING, key, owner, 0, "", 0, now, &f, e);
}

/* Each day D of the program's calendar, once: EXPIRING for the accounts
 * with points that expire in [D + remind_days, D + remind_days + 1 day).
 * The cursor is the last account done in the current day. A day whose
 * window has already passed is not caught up: it would remind of nothing. */
static kp_err job_remind(kp_store *st, const kp_program *p, kp_time now, int64_t *budget,
                         kp_scratch *sc, kp_tick_report *rep, kp_error *e)
{
    const kp_notify_policy *np = kp_notify_policy_of(st, p);
    if (np->remind_days <= 0) return KP_OK;
    const kp_time ahead = (kp_time)np->remind_days * KP_DAY_SECONDS;
    const kp_triggers_ops *t = st->ops->triggers;
    kp_time today, done;
    int64_t cursor;
    kp_err err = day_job_state(st, p, "remind_expiry", now, &today, &done, &cursor);
    if (err == KP_ERR_BUSY) return job_busy(rep);
    if (err) return storage(st, err, e);
    if (done < today - ahead - KP_DAY_SECONDS) {
        done = today - ahead - KP_DAY_SECONDS;
        cursor = 0;
    }
    static _Thread_local kp_expiring_row rows[PAGE_MAX];
    while (done < today) {
        kp_time day = done + KP_DAY_SECONDS, from = day + ahead, to = from + KP_DAY_SECONDS;
        int64_t items = 0, points = 0;
        for (;;) {
            size_t limit = *budget < PAGE_MAX ? (size_t)*budget : PAGE_MAX, n = 0;
            if (limit == 0) {
                rep->more = true;
                goto save;
            }
            if ((err = st->ops->notify->expiring_between(st, from, to, cursor, rows, limit, &n)))
                return storage(st, err, e);
            for (size_t i = 0; i < n; i++) {
                (*budget)--;
                cursor = rows[i].account_id;
                /* A late day's window may have begun: what expired is gone. */
                if (rows[i].first_at <= now) continue;
                if ((err = remind_one(st, p, &rows[i], now, sc, e))) return err;
                items++;
                points += rows[i].points;
            }
            if (n < limit) break;
        }
        rep->reminders += items;
        /* Recorded when it reminded somebody, as expiry is: most days of
         * most programs remind nobody. */
        char detail[128];
        snprintf(detail, sizeof detail, "%lld accounts reminded of %lld points expiring",
                 (long long)items, (long long)points);
        if (items > 0 && (err = record_run(st, "remind_expiry", day, now, items, detail, rep, e)))
            return err;
        done = day;
        cursor = 0;
    }
save:
    if ((err = t->job_state_set(st, "remind_expiry", done, cursor))) return storage(st, err, e);
    return KP_OK;
}

/* ------------------------------------------------------------------ tick */

kp_err kp_service_tick(kp_store *st, const kp_program *p, const kp_tick_opts *opts, kp_time now,
                       int64_t budget, kp_scratch *sc, kp_tick_report *rep, kp_error *e)
{
    rep->more = false;
    const kp_birthday_finder *birthdays = opts ? opts->birthdays : NULL;
    kp_err err;
    if ((opts == NULL || !opts->skip_expiry) && (err = job_expiry(st, p, now, &budget, sc, rep, e)))
        return err;
    if (has_grant_on(p, "birthday")) {
        if (birthdays == NULL || birthdays->find == NULL) {
            snprintf(rep->note, sizeof rep->note,
                     "birthday: no way to find customers' birthdays; birthday grants wait");
        } else {
            daily d = {"birthday", "birthday", birthdays};
            if ((err = job_daily(st, p, &d, now, &budget, sc, rep, &rep->birthday_grants, e)))
                return err;
        }
    }
    if (has_grant_on(p, "tenure")) {
        daily d = {"tenure", "tenure", NULL};
        if ((err = job_daily(st, p, &d, now, &budget, sc, rep, &rep->tenure_grants, e))) return err;
    }
    if (p->n_tiers > 0 && p->tier_review_months > 0)
        if ((err = job_tier_review(st, p, now, &budget, rep, e))) return err;
    if ((err = job_remind(st, p, now, &budget, sc, rep, e))) return err;
    return KP_OK;
}
