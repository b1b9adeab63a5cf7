/*
 * store_report.c: the dashboard's queries and the folding of their rows
 * (store_report.h). Points are read from the postings of the program's
 * side of the ledger, so each figure is what the double entry says, not a
 * cache: program:issued is debited when points are given (a return's
 * take-back credits it), program:redeemed credited when they are spent,
 * program:expired when they expire, program:adjustment debited by a
 * manual credit. Portable SQL only, as in store_invariants.c: integer
 * arithmetic, COALESCE, ordinal GROUP BY, a SELECT without FROM.
 */
#include "store_report.h"

#include <stdio.h>
#include <string.h>

#include <kopilka/clock.h>
#include <kopilka/ledger.h>

const store_dashboard_sql store_dashboard_queries[STORE_DASHBOARD_PARTS] = {
    [STORE_DASHBOARD_POINTS] =
        {"SELECT (o.at + $3) / 86400, p.account_id, SUM(p.points) FROM postings p "
         "JOIN ops o ON o.id = p.op_id WHERE p.account_id IN (-1, -2, -3, -4) "
         "AND o.at >= $1 AND o.at < $2 AND ($4 = '' OR o.store = $4) GROUP BY 1, 2",
         3, true},
    [STORE_DASHBOARD_OPS] =
        {"SELECT (at + $3) / 86400, SUM(CASE WHEN type = 1 THEN 1 ELSE 0 END), SUM(amount) "
         "FROM ops WHERE type IN (1, 2) AND at >= $1 AND at < $2 "
         "AND ($4 = '' OR store = $4) GROUP BY 1",
         3, true},
    [STORE_DASHBOARD_MEMBERS] = {"SELECT (created_at + $3) / 86400, COUNT(*), 0 FROM customers "
                                 "WHERE created_at >= $1 AND created_at < $2 GROUP BY 1",
                                 3, false},
    /* A member at `to`: registered before it, not erased by then. Active:
     * one of the member's cards (card_info names its holder) made a
     * purchase in [active_since, to). */
    [STORE_DASHBOARD_TOTALS] =
        {"SELECT (SELECT COALESCE(SUM(p.points), 0) FROM postings p "
         "JOIN ops o ON o.id = p.op_id WHERE p.account_id > 0 AND o.at < $1), "
         "(SELECT COUNT(*) FROM customers WHERE created_at < $1 "
         "AND (erased_at IS NULL OR erased_at >= $1)), "
         "(SELECT COUNT(DISTINCT c.id) FROM ops o JOIN card_info i ON i.number = o.card "
         "JOIN customers c ON c.id = i.customer_id WHERE o.type = 1 AND o.at >= $2 "
         "AND o.at < $1 AND ($3 = '' OR o.store = $3) AND c.created_at < $1 "
         "AND (c.erased_at IS NULL OR c.erased_at >= $1))",
         2, true},
};

void store_dashboard_params(const kp_dashboard_query *q, store_dashboard_part part, int64_t ints[3])
{
    if (part == STORE_DASHBOARD_TOTALS) {
        ints[0] = q->to;
        ints[1] = q->active_since;
        ints[2] = 0;
        return;
    }
    ints[0] = q->from;
    ints[1] = q->to;
    ints[2] = (int64_t)q->utc_offset_minutes * 60;
}

const char *store_dashboard_store(const kp_dashboard_query *q)
{
    return q->store ? q->store : "";
}

/* The month of a day (days since 1970-01-01 on the program's clock): its
 * entry in d, added in order when new; NULL when d holds the most. */
static kp_dashboard_month *month_of(kp_dashboard *d, int64_t day)
{
    int year, month, mday;
    kp_time_to_civil(day * KP_DAY_SECONDS, &year, &month, &mday);
    char key[16];
    snprintf(key, sizeof key, "%04d-%02d", year, month);
    size_t at = 0;
    while (at < d->n_months && strcmp(d->months[at].month, key) < 0) at++;
    if (at < d->n_months && strcmp(d->months[at].month, key) == 0) return &d->months[at];
    if (d->n_months == KP_DASHBOARD_MONTHS_MAX) return NULL;
    memmove(&d->months[at + 1], &d->months[at], (d->n_months - at) * sizeof d->months[0]);
    d->n_months++;
    kp_dashboard_month *m = &d->months[at];
    memset(m, 0, sizeof *m);
    snprintf(m->month, sizeof m->month, "%.7s", key);
    return m;
}

static bool add(int64_t *to, int64_t v)
{
    return !__builtin_add_overflow(*to, v, to);
}

/* Points of a system account's postings: program:issued is debited when
 * points are given, the others credited when points leave a customer. */
static bool fold_points(kp_dashboard *d, kp_dashboard_month *m, int64_t account, int64_t points)
{
    switch (account) {
    case KP_SYS_ISSUED: return add(&d->issued, -points) && add(&m->issued, -points);
    case KP_SYS_REDEEMED: return add(&d->burnt, points) && add(&m->burnt, points);
    case KP_SYS_EXPIRED: return add(&d->expired, points) && add(&m->expired, points);
    case KP_SYS_ADJUSTMENT: return add(&d->adjusted, -points);
    default: return true;
    }
}

kp_err store_dashboard_fold(kp_dashboard *d, store_dashboard_part part, int64_t a, int64_t b,
                            int64_t c, char *why, size_t why_size)
{
    if (part == STORE_DASHBOARD_TOTALS) {
        d->outstanding = a;
        d->members = b;
        d->members_active = c;
        return KP_OK;
    }
    kp_dashboard_month *m = month_of(d, a);
    if (m == NULL) {
        if (why)
            snprintf(why, why_size, "the figures fall in more than %d months",
                     KP_DASHBOARD_MONTHS_MAX);
        return KP_ERR_LIMIT;
    }
    bool ok = part == STORE_DASHBOARD_POINTS ? fold_points(d, m, b, c)
              : part == STORE_DASHBOARD_OPS  ? add(&m->purchases, b) && add(&m->revenue_minor, c)
                                             : add(&m->new_members, b);
    if (ok) return KP_OK;
    if (why) snprintf(why, why_size, "a sum of the dashboard does not fit in 64 bits");
    return KP_ERR_OVERFLOW;
}

/* ---- the points report */

/* The currency of a customer account `acc`: "" for a card's own account
 * (the program's currency), the code for a card's account of another
 * (account_currencies): every part of the report keeps to one currency,
 * the parameter 'c'. */
#define ACCOUNT_CURRENCY(acc)                                                                  \
    "COALESCE((SELECT x.currency FROM account_currencies x WHERE x.sub_account_id = " acc      \
    "), '')"

const store_points_sql store_points_queries[STORE_POINTS_PARTS] = {
    /* Expiries carry no store: they count at every store. */
    [STORE_POINTS_POSTINGS] =
        {"SELECT '', p.account_id, SUM(p.points), 0 FROM postings p "
         "JOIN ops o ON o.id = p.op_id WHERE p.account_id IN (-1, -2, -3, -4) "
         "AND o.at >= $1 AND o.at < $2 AND ($3 = '' OR o.store = $3 OR p.account_id = -3) "
         "AND " ACCOUNT_CURRENCY("o.account_id") " = $4 GROUP BY p.account_id",
         "ftsc"},
    [STORE_POINTS_REVENUE] = {"SELECT '', COALESCE(SUM(amount), 0), 0, 0 FROM ops o "
                              "WHERE type IN (1, 2) AND at >= $1 AND at < $2 "
                              "AND ($3 = '' OR store = $3) "
                              "AND " ACCOUNT_CURRENCY("o.account_id") " = $4",
                              "ftsc"},
    [STORE_POINTS_OUTSTANDING] = {"SELECT '', COALESCE(SUM(p.points), 0), 0, 0 FROM postings p "
                                  "JOIN ops o ON o.id = p.op_id "
                                  "WHERE p.account_id > 0 AND o.at < $1 "
                                  "AND " ACCOUNT_CURRENCY("p.account_id") " = $2",
                                  "tc"},
    /* Each account that bought in the period at the store, with the time of
     * its first purchase anywhere: before `from` = retained. */
    [STORE_POINTS_RETAINED] =
        {"SELECT '', COUNT(*), COALESCE(SUM(CASE WHEN f.first_at < $1 THEN 1 ELSE 0 END), 0), 0 "
         "FROM (SELECT account_id, MIN(at) AS first_at FROM ops WHERE type = 1 AND at < $2 "
         "GROUP BY account_id) f WHERE EXISTS (SELECT 1 FROM ops o "
         "WHERE o.account_id = f.account_id AND o.type = 1 AND o.at >= $1 AND o.at < $2 "
         "AND ($3 = '' OR o.store = $3)) AND " ACCOUNT_CURRENCY("f.account_id") " = $4",
         "ftsc"},
    /* Lots that never expire (KP_TIME_NEVER, past the year 9999) as day -1. */
    [STORE_POINTS_SCHEDULE] = {"SELECT kind, CASE WHEN expires_at >= 253402300800 THEN -1 "
                               "ELSE (expires_at + $1) / 86400 END, SUM(remaining), COUNT(*) "
                               "FROM lots l WHERE remaining > 0 "
                               "AND " ACCOUNT_CURRENCY("l.account_id") " = $2 GROUP BY 1, 2",
                               "oc"},
    /* Sales without a card carry no currency: counted in the program's own
     * only (docs/coalition.md). */
    [STORE_POINTS_SALES] = {"SELECT '', COALESCE(SUM(CASE WHEN kind = 1 THEN amount ELSE -amount "
                            "END), 0), 0, 0 FROM sales WHERE card = '' AND at >= $1 AND at < $2 "
                            "AND ($3 = '' OR store = $3) AND CAST($4 AS TEXT) = ''",
                            "ftsc"},
};

const char *store_points_param(const kp_report_query *q, char p, int64_t *v)
{
    *v = 0;
    switch (p) {
    case 'f': *v = q->from; return NULL;
    case 't': *v = q->to; return NULL;
    case 'o': *v = (int64_t)q->utc_offset_minutes * 60; return NULL;
    case 'c': return q->currency ? q->currency : "";
    default: return q->store ? q->store : "";
    }
}

/* The schedule's row of (kind, month of `day`), added in order when new;
 * NULL when full. */
static kp_report_schedule_row *schedule_row(kp_report_points *r, const char *kind, int64_t day)
{
    char key[16] = "never";
    if (day >= 0) {
        int year, month, mday;
        kp_time_to_civil(day * KP_DAY_SECONDS, &year, &month, &mday);
        snprintf(key, sizeof key, "%04d-%02d", year, month);
    }
    size_t at = 0;
    int c = 1;
    for (; at < r->n_schedule; at++) {
        c = strcmp(r->schedule[at].kind, kind);
        if (c == 0) c = strcmp(r->schedule[at].month, key);
        if (c >= 0) break;
    }
    if (at < r->n_schedule && c == 0) return &r->schedule[at];
    if (r->n_schedule == KP_REPORT_SCHEDULE_MAX) return NULL;
    memmove(&r->schedule[at + 1], &r->schedule[at], (r->n_schedule - at) * sizeof r->schedule[0]);
    r->n_schedule++;
    kp_report_schedule_row *row = &r->schedule[at];
    memset(row, 0, sizeof *row);
    snprintf(row->kind, sizeof row->kind, "%s", kind);
    snprintf(row->month, sizeof row->month, "%.7s", key);
    return row;
}

kp_err store_points_fold(kp_report_points *r, store_points_part part, const char *text, int64_t a,
                         int64_t b, int64_t c, char *why, size_t why_size)
{
    bool ok = true;
    switch (part) {
    case STORE_POINTS_POSTINGS:
        switch (a) {
        case KP_SYS_ISSUED: ok = add(&r->issued, -b); break;
        case KP_SYS_REDEEMED: ok = add(&r->burnt, b); break;
        case KP_SYS_EXPIRED: ok = add(&r->expired, b); break;
        case KP_SYS_ADJUSTMENT: ok = add(&r->adjusted, -b); break;
        default: break;
        }
        break;
    case STORE_POINTS_REVENUE: r->members_revenue_minor = a; break;
    case STORE_POINTS_SALES: r->nonmembers_revenue_minor = a; break;
    case STORE_POINTS_OUTSTANDING: r->outstanding = a; break;
    case STORE_POINTS_RETAINED:
        r->buyers = a;
        r->retained = b;
        break;
    case STORE_POINTS_SCHEDULE: {
        kp_report_schedule_row *row = schedule_row(r, text ? text : "", a);
        if (row == NULL) {
            if (why)
                snprintf(why, why_size, "the liability schedule has more than %d rows",
                         KP_REPORT_SCHEDULE_MAX);
            return KP_ERR_LIMIT;
        }
        ok = add(&row->points, b) && add(&row->lots, c);
        break;
    }
    default: break;
    }
    if (ok) return KP_OK;
    if (why) snprintf(why, why_size, "a sum of the points report does not fit in 64 bits");
    return KP_ERR_OVERFLOW;
}

/* ---- the members report */

/* Every member's receipt before `to` at the store, of the tier: the
 * ledger's purchases (the account is the member) and the imported sales
 * with a card (the card's account when the cards table knows it, else the
 * card alone, account 0). $1 from, $2 to, $3 store, $4 tier ('' = all).
 * "+s.at": the sales are read in one pass, not through their index by
 * time, which costs a lookup a row (eight times slower over a history). */
#define MEMBER_RECEIPTS                                                                        \
    "WITH m AS (SELECT o.account_id AS acc, '' AS card, o.at AS at, o.amount AS amount "       \
    "FROM ops o WHERE o.type = 1 AND o.at < $2 AND ($3 = '' OR o.store = $3) "                 \
    "AND ($4 = '' OR o.account_id IN (SELECT account_id FROM account_rules WHERE tier = $4)) " \
    "UNION ALL SELECT COALESCE(c.account_id, 0), CASE WHEN c.account_id IS NULL THEN s.card "  \
    "ELSE '' END, s.at, s.amount FROM sales s LEFT JOIN cards c ON c.number = s.card "         \
    "WHERE s.kind = 1 AND s.card <> '' AND +s.at < $2 AND ($3 = '' OR s.store = $3) "          \
    "AND ($4 = '' OR c.account_id IN (SELECT account_id FROM account_rules WHERE tier = $4))) "

const store_points_sql store_members_queries[STORE_MEMBERS_PARTS] = {
    /* g: one row a member (before `to`): the last receipt, the receipts
     * and their sum in the period; a: their totals, whose quotient (the
     * average receipt, rounded down: amounts are whole) bounds an idle
     * member's receipt. $5 recent_since. */
    [STORE_MEMBERS_MEMBERS] =
        {MEMBER_RECEIPTS
         ", g AS MATERIALIZED (SELECT acc, card, MAX(at) AS last_at, "
         "SUM(CASE WHEN at >= $1 THEN 1 ELSE 0 END) AS n, "
         "SUM(CASE WHEN at >= $1 THEN amount ELSE 0 END) AS v FROM m GROUP BY acc, card), "
         "a AS MATERIALIZED (SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) AS rc, "
         "CAST(COALESCE(SUM(v), 0) AS BIGINT) AS rv FROM g) "
         "SELECT a.rc, a.rv, b.* FROM a, (SELECT COUNT(*) AS k, "
         "COALESCE(SUM(CASE WHEN last_at >= $5 THEN 1 ELSE 0 END), 0) AS r, "
         "COALESCE(SUM(CASE WHEN n > 0 THEN 1 ELSE 0 END), 0) AS p, "
         "COALESCE(SUM(CASE WHEN n = 1 AND v <= (SELECT CASE WHEN rc > 0 THEN rv / rc "
         "ELSE -1 END FROM a) THEN 1 ELSE 0 END), 0) AS i, "
         "COALESCE(SUM(CASE WHEN n = 1 AND v <= (SELECT CASE WHEN rc > 0 THEN rv / rc "
         "ELSE -1 END FROM a) THEN v ELSE 0 END), 0) AS iv FROM g) b",
         "ftsgr"},
    /* h: one row a customer key ('' = the receipts without one) of the
     * sales without a card in the period; t: the followed customers ranked
     * by spend, the first round(n / 10) of them the top. */
    [STORE_MEMBERS_SALES] =
        {"WITH h AS MATERIALIZED (SELECT customer, COUNT(*) AS c, SUM(amount) AS v FROM sales "
         "WHERE kind = 1 AND card = '' AND +at >= $1 AND +at < $2 AND ($3 = '' OR store = $3) "
         "GROUP BY customer), "
         "t AS (SELECT v, ROW_NUMBER() OVER (ORDER BY v DESC) AS rn, COUNT(*) OVER () AS n "
         "FROM h WHERE customer <> '') "
         "SELECT a.*, b.* FROM (SELECT COALESCE(SUM(c), 0) AS c, COALESCE(SUM(v), 0) AS v, "
         "COALESCE(SUM(CASE WHEN customer <> '' THEN c ELSE 0 END), 0) AS fc, "
         "COALESCE(SUM(CASE WHEN customer <> '' THEN v ELSE 0 END), 0) AS fv, "
         "COALESCE(SUM(CASE WHEN customer <> '' THEN 1 ELSE 0 END), 0) AS fn FROM h) a, "
         "(SELECT COUNT(*) AS k, COALESCE(SUM(v), 0) AS kv, COALESCE(MIN(v), 0) AS kmin "
         "FROM t WHERE rn <= (n + 5) / 10) b",
         "fts"},
};

const char *store_members_param(const kp_report_members_query *q, char p, int64_t *v)
{
    *v = 0;
    switch (p) {
    case 'f': *v = q->period.from; return NULL;
    case 't': *v = q->period.to; return NULL;
    case 'r': *v = q->recent_since; return NULL;
    case 'g': return q->tier ? q->tier : "";
    default: return q->period.store ? q->period.store : "";
    }
}

void store_members_fold(kp_report_members *r, store_members_part part,
                        const int64_t v[STORE_MEMBERS_COLS])
{
    switch (part) {
    case STORE_MEMBERS_MEMBERS:
        r->member_receipts = v[0];
        r->member_revenue_minor = v[1];
        r->members_before = v[2];
        r->members_recent = v[3];
        r->members = v[4];
        r->idle_members = v[5];
        r->idle_revenue_minor = v[6];
        break;
    case STORE_MEMBERS_SALES:
        r->nonmember_receipts = v[0];
        r->nonmember_revenue_minor = v[1];
        r->followed_receipts = v[2];
        r->followed_revenue_minor = v[3];
        r->followed_customers = v[4];
        r->top_customers = v[5];
        r->top_revenue_minor = v[6];
        r->top_threshold_minor = v[7];
        break;
    default: break;
    }
}

/* ---- the customers report */

/* The month number of an instant column `t` on the program's clock, offset
 * parameter `o`: the days since 1970-01-01 made a civil date by H.
 * Hinnant's days_from_civil inverse in integer arithmetic (eras of 400
 * years, years starting in March), the result era * 4800 + year of era *
 * 12 + month from March: consecutive calendar months differ by one.
 * store_month_number() is the same in C. Times before 1970 are not
 * expected (the divisions truncate). */
#define M_Z(t, o) "((" t " + " o ") / 86400 + 719468)"
#define M_DOE(t, o) "(" M_Z(t, o) " % 146097)"
#define M_YOE(t, o)                                                                                \
    "((" M_DOE(t, o) " - " M_DOE(t, o) " / 1460 + " M_DOE(t, o) " / 36524 - " M_DOE(t, o)          \
    " / 146096) / 365)"
#define M_DOY(t, o) "(" M_DOE(t, o) " - (365 * " M_YOE(t, o) " + " M_YOE(t, o) " / 4 - " M_YOE(t, o) " / 100))"
#define M_MP(t, o) "((5 * " M_DOY(t, o) " + 2) / 153)"
#define MONTH_NO(t, o) "(" M_Z(t, o) " / 146097 * 4800 + " M_YOE(t, o) " * 12 + " M_MP(t, o) ")"

int64_t store_month_number(kp_time at, int64_t offset_seconds)
{
    int64_t z = (at + offset_seconds) / 86400 + 719468;
    int64_t doe = z % 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    return z / 146097 * 4800 + yoe * 12 + mp;
}

/* A member's receipts: purchases at the tills with a card (ops, the
 * account known) and imported sales with a card (the card's account when
 * the card is known, else the card), before `to` ($T). The casts give the
 * member's key (acc, card) one type everywhere, so SQLite can index it
 * when it joins these sets. */
#define RECEIPTS(T)                                                                                \
    "r AS (SELECT account_id AS acc, CAST('' AS TEXT) AS card, at, amount, "                      \
    "COALESCE(store, '') AS store "                                                                \
    "FROM ops WHERE type = 1 AND account_id > 0 AND at < " T " UNION ALL "                         \
    "SELECT CAST(COALESCE(k.account_id, 0) AS BIGINT), "                                          \
    "CAST(CASE WHEN k.account_id IS NULL THEN s.card ELSE '' END AS TEXT), "                       \
    "s.at, s.amount, s.store FROM sales s LEFT JOIN cards k ON k.number = s.card "                 \
    "WHERE s.card <> '' AND s.kind = 1 AND s.at < " T ")"

/* Members who joined in [$F, $T): an account's customers' first
 * registration; a member without a customer, the first receipt. */
#define JOINED(F, T)                                                                               \
    "j AS (SELECT account_id AS acc, CAST('' AS TEXT) AS card, MIN(created_at) AS join_at "        \
    "FROM customers "                                                                              \
    "GROUP BY account_id HAVING MIN(created_at) >= " F " AND MIN(created_at) < " T " UNION ALL "   \
    "SELECT acc, card, MIN(at) FROM r WHERE NOT EXISTS (SELECT 1 FROM customers c "               \
    "WHERE c.account_id = r.acc) GROUP BY acc, card HAVING MIN(at) >= " F ")"

/* The member of account column `acc` holds tier $R ('' = any). */
#define OF_TIER(acc, R)                                                                            \
    "(" R " = '' OR EXISTS (SELECT 1 FROM account_rules a WHERE a.account_id = " acc             \
    " AND a.tier = " R "))"

const store_customers_sql store_customers_queries[STORE_CUSTOMERS_PARTS] = {
    [STORE_CUSTOMERS_TIERS] = {"SELECT COALESCE(a.tier, ''), '', COUNT(*), 0, 0, 0, 0, 0 "
                               "FROM accounts x LEFT JOIN account_rules a ON a.account_id = x.id "
                               "WHERE x.id > 0 GROUP BY 1",
                               ""},
    [STORE_CUSTOMERS_MOVES] = {"SELECT from_tier, to_tier, COUNT(*), 0, 0, 0, 0, 0 "
                               "FROM tier_changes WHERE at >= $1 AND at < $2 GROUP BY 1, 2",
                               "ft"},
    [STORE_CUSTOMERS_COHORTS] = {"WITH " RECEIPTS("$2") ", " JOINED("$1", "$2")
                                 " SELECT '', '', " MONTH_NO("j.join_at", "$3")
                                 ", COUNT(*), 0, 0, 0, 0 FROM j WHERE " OF_TIER("j.acc", "$4")
                                 " GROUP BY 3",
                                 "ftor"},
    [STORE_CUSTOMERS_ACTIVE] =
        {"WITH " RECEIPTS("$2") ", " JOINED("$1", "$2")
         " SELECT '', '', x.jm, x.am, COUNT(*), 0, 0, 0 FROM (SELECT DISTINCT "
         MONTH_NO("j.join_at", "$3") " AS jm, " MONTH_NO("r.at", "$3")
         " AS am, j.acc, j.card FROM r CROSS JOIN j WHERE j.acc = r.acc AND j.card = r.card "
         "AND r.at >= j.join_at AND ($4 = '' OR r.store = $4) AND " OF_TIER("j.acc", "$5")
         ") x GROUP BY x.jm, x.am",
         "ftosr"},
    /* k: the customer keys on sales with a member's card; m: members whose
     * window after joining ends by `to`; f: those of them with a key; fk:
     * their keys; p: their receipts in the windows, with their card and,
     * without a card, under one of their keys. CROSS JOIN puts the big side
     * outside and lets SQLite index the small one (PostgreSQL plans it as
     * any join): a member's row is found, never scanned for. */
    [STORE_CUSTOMERS_BEFORE_AFTER] =
        {"WITH " RECEIPTS("$2") ", " JOINED("$1", "$2") ", "
         "k AS (SELECT DISTINCT CAST(COALESCE(c.account_id, 0) AS BIGINT) AS acc, "
         "CAST(CASE WHEN c.account_id IS NULL THEN s.card ELSE '' END AS TEXT) AS card, "
         "s.customer AS ckey FROM sales s LEFT JOIN cards c "
         "ON c.number = s.card WHERE s.card <> '' AND s.customer <> ''), "
         "m AS (SELECT acc, card, join_at FROM j WHERE join_at + $3 <= $2 AND " OF_TIER("j.acc", "$5")
         "), f AS (SELECT DISTINCT m.acc AS acc, m.card AS card, m.join_at AS join_at "
         "FROM m CROSS JOIN k WHERE k.acc = m.acc AND k.card = m.card), "
         "fk AS (SELECT f.join_at AS join_at, k.ckey AS ckey FROM f CROSS JOIN k "
         "WHERE k.acc = f.acc AND k.card = f.card), "
         "p AS (SELECT f.join_at AS join_at, r.at AS at, r.amount AS amount FROM r CROSS JOIN f "
         "WHERE f.acc = r.acc AND f.card = r.card AND r.at >= f.join_at - $3 "
         "AND r.at < f.join_at + $3 AND ($4 = '' OR r.store = $4) UNION ALL "
         "SELECT fk.join_at, s.at, s.amount FROM fk CROSS JOIN sales s WHERE s.customer = fk.ckey "
         "AND s.card = '' AND s.customer <> '' AND s.kind = 1 AND s.at >= fk.join_at - $3 "
         "AND s.at < fk.join_at + $3 AND ($4 = '' OR s.store = $4)) "
         "SELECT '', '', (SELECT COUNT(*) FROM m), (SELECT COUNT(*) FROM f), "
         "COALESCE(SUM(CASE WHEN at < join_at THEN 1 ELSE 0 END), 0), "
         "COALESCE(SUM(CASE WHEN at < join_at THEN amount ELSE 0 END), 0), "
         "COALESCE(SUM(CASE WHEN at >= join_at THEN 1 ELSE 0 END), 0), "
         "COALESCE(SUM(CASE WHEN at >= join_at THEN amount ELSE 0 END), 0) FROM p",
         "ftwsr"},
    [STORE_CUSTOMERS_MEMBERS] = {"WITH " RECEIPTS("$2") " SELECT card, '', acc, MAX(at), COUNT(*), "
                                 "SUM(amount), 0, 0 FROM r WHERE at >= $1 "
                                 "AND ($3 = '' OR store = $3) AND " OF_TIER("r.acc", "$4")
                                 " GROUP BY acc, card",
                                 "ftsr"},
};

const char *store_customers_param(const kp_customers_query *q, char p, int64_t *v)
{
    *v = 0;
    switch (p) {
    case 'f': *v = q->period.from; return NULL;
    case 't': *v = q->period.to; return NULL;
    case 'o': *v = (int64_t)q->period.utc_offset_minutes * 60; return NULL;
    case 'w': *v = q->window; return NULL;
    case 'r': return q->tier ? q->tier : "";
    default: return q->period.store ? q->period.store : "";
    }
}

static kp_err customers_limit(char *why, size_t why_size, const char *what, int max)
{
    if (why) snprintf(why, why_size, "the customers report has more than %d %s", max, what);
    return KP_ERR_LIMIT;
}

kp_err store_customers_fold(const kp_customers_query *q, kp_report_customers *r,
                            store_customers_part part, const char *t1, const char *t2,
                            const int64_t v[6], char *why, size_t why_size)
{
    int64_t off = (int64_t)q->period.utc_offset_minutes * 60;
    int64_t base = store_month_number(q->period.from, off);
    if (r->n_months == 0) {
        int64_t n = store_month_number(q->period.to - 1, off) - base + 1;
        r->n_months = n < 1 ? 1 : n > KP_REPORT_COHORT_MONTHS ? KP_REPORT_COHORT_MONTHS : (size_t)n;
    }
    bool ok = true;
    switch (part) {
    case STORE_CUSTOMERS_TIERS:
        if (r->n_tiers == KP_REPORT_TIERS_MAX)
            return customers_limit(why, why_size, "tiers", KP_REPORT_TIERS_MAX);
        snprintf(r->tiers[r->n_tiers].tier, sizeof r->tiers[0].tier, "%s", t1);
        r->tiers[r->n_tiers++].accounts = v[0];
        break;
    case STORE_CUSTOMERS_MOVES:
        if (r->n_moves == KP_REPORT_MOVES_MAX)
            return customers_limit(why, why_size, "kinds of tier moves", KP_REPORT_MOVES_MAX);
        snprintf(r->moves[r->n_moves].from, sizeof r->moves[0].from, "%s", t1);
        snprintf(r->moves[r->n_moves].to, sizeof r->moves[0].to, "%s", t2);
        r->moves[r->n_moves++].moves = v[0];
        break;
    case STORE_CUSTOMERS_COHORTS: {
        int64_t j = v[0] - base;
        if (j >= 0 && j < (int64_t)r->n_months) ok = add(&r->cohort[j], v[1]);
        break;
    }
    case STORE_CUSTOMERS_ACTIVE: {
        int64_t j = v[0] - base, k = v[1] - v[0];
        if (j >= 0 && k >= 0 && j + k < (int64_t)r->n_months) ok = add(&r->active[j][k], v[2]);
        break;
    }
    case STORE_CUSTOMERS_BEFORE_AFTER:
        r->ba_members = v[0];
        r->ba_followed = v[1];
        r->before_receipts = v[2];
        r->before_minor = v[3];
        r->after_receipts = v[4];
        r->after_minor = v[5];
        break;
    default: break;
    }
    if (ok) return KP_OK;
    if (why) snprintf(why, why_size, "a sum of the customers report does not fit in 64 bits");
    return KP_ERR_OVERFLOW;
}

kp_err store_customers_member(const char *card, const int64_t v[6], kp_report_member_fn fn,
                              void *ctx)
{
    kp_report_member m;
    memset(&m, 0, sizeof m);
    m.account_id = v[0];
    snprintf(m.card, sizeof m.card, "%s", card ? card : "");
    m.last_at = v[1];
    m.receipts = v[2];
    m.spend_minor = v[3];
    return fn(ctx, &m);
}
