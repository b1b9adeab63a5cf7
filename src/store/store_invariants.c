/*
 * store_invariants.c: the ledger's invariants (store_invariants.h), each
 * with why it must hold. Points move only by double entry: every operation
 * writes postings that sum to zero, one for the customer's account and one
 * for a system account (issued, redeemed, expired...); the balances and
 * lots are caches of what the postings say, kept so a purchase need not
 * replay them. A row of any query below means a cache and the postings
 * disagree, or an operation created or destroyed points. The outbox's
 * rows (notify.h) follow: messages belong to dispatched events, and their
 * states and times agree; then the rewards catalog's (catalog.h): stock
 * never below 0, each order paid and, when cancelled, paid back by the
 * ledger.
 *
 * Portable SQL only: no backend's functions (SQLite's max() of two values,
 * PostgreSQL's casts), `!=` and COALESCE, CTEs, and a SELECT with a WHERE and
 * no FROM, which both accept. Sums are of 64-bit integers (PostgreSQL gives
 * them as numeric; the backends read them as text or integer).
 */
#include "store_invariants.h"

#include <stdio.h>
#include <string.h>

const store_invariant store_invariants[] = {
    /* Double entry: an operation moves points from one account to another,
     * never makes or loses them; each operation's postings net to zero. */
    {"SELECT op_id, SUM(points) FROM postings GROUP BY op_id HAVING SUM(points) != 0",
     "operation %lld: its postings sum to %lld, not 0"},
    /* A customer's balance is the sum of their postings: the cached figure a
     * till shows is what replaying the ledger gives. */
    {"WITH s AS (SELECT account_id, SUM(points) t FROM postings WHERE account_id > 0 "
     "GROUP BY account_id) SELECT a.id, a.balance - COALESCE(s.t, 0) FROM accounts a "
     "LEFT JOIN s ON s.account_id = a.id WHERE a.balance != COALESCE(s.t, 0)",
     "account %lld: balance differs from the replay of its postings by %lld"},
    /* Points are spent from lots (for expiry and returns): the open lots,
     * less any debt a return left, are exactly the balance. */
    {"WITH l AS (SELECT account_id, SUM(remaining) r FROM lots GROUP BY account_id) "
     "SELECT a.id, a.balance - (COALESCE(l.r, 0) - a.debt) FROM accounts a "
     "LEFT JOIN l ON l.account_id = a.id WHERE a.balance != COALESCE(l.r, 0) - a.debt",
     "account %lld: balance differs from its lots less debt by %lld"},
    /* A lot can be spent down to zero and given back up to what it was
     * earned with, no further (the schema's CHECK says the same). */
    {"SELECT id, remaining FROM lots WHERE remaining < 0 OR remaining > amount",
     "lot %lld: remaining %lld is outside 0..amount"},
    /* Debt is what a return could not take back: owed by the customer,
     * never owed to them. */
    {"SELECT id, debt FROM accounts WHERE debt < 0", "account %lld: negative debt %lld"},
    /* The program's side of the ledger (issued, redeemed, expired...) is a
     * cache of its postings too; backends sum these per transaction, so a
     * lost flush shows here. */
    {"WITH s AS (SELECT account_id, SUM(points) t FROM postings WHERE account_id < 0 "
     "GROUP BY account_id) SELECT y.id, y.balance - COALESCE(s.t, 0) FROM sys_accounts y "
     "LEFT JOIN s ON s.account_id = y.id WHERE y.balance != COALESCE(s.t, 0)",
     "system account %lld: balance differs from the replay of its postings by %lld"},
    /* Customers' and system balances together are zero: every point a
     * customer holds is a point the program issued and owes. */
    {"SELECT 0, (SELECT COALESCE(SUM(balance),0) FROM accounts) + "
     "(SELECT COALESCE(SUM(balance),0) FROM sys_accounts) WHERE "
     "(SELECT COALESCE(SUM(balance),0) FROM accounts) + "
     "(SELECT COALESCE(SUM(balance),0) FROM sys_accounts) != 0",
     "ledger %lld: all balances sum to %lld, not 0"},
    /* The change an operation reports (in its answer, in history) is what
     * its postings did to the customer's accounts. */
    {"WITH p AS (SELECT op_id, SUM(points) t FROM postings WHERE account_id > 0 GROUP BY op_id) "
     "SELECT o.id, o.points - COALESCE(p.t, 0) FROM ops o LEFT JOIN p ON p.op_id = o.id "
     "WHERE o.points != COALESCE(p.t, 0)",
     "operation %lld: its recorded change differs from its postings by %lld"},

    /* Coalition settlement (kopilka/coalition.h): an operation's entries
     * are written with its postings, in one transaction, so for each
     * operation that booked entries, the points its `issue` entries say
     * its issuers issued are the points it credited from the program's
     * issued account (or, a transfer's receiving side, from the transfer
     * account); its `burn` entries' points are those it moved to the
     * redeemed account (or the sender's to the transfer account); its
     * `expire` entries' those moved to the expired account. Kinds: 1 issue,
     * 2 burn, 3 expire; accounts: -1 issued, -2 redeemed, -3 expired, -6
     * transfer (ledger.h). */
    {"WITH e AS (SELECT op_id, SUM(points) t FROM settle_entries WHERE kind = 1 GROUP BY op_id "
     "UNION ALL SELECT DISTINCT op_id, 0 FROM settle_entries), "
     "s AS (SELECT op_id, SUM(t) t FROM e GROUP BY op_id), "
     "p AS (SELECT op_id, SUM(CASE WHEN account_id = -1 OR (account_id = -6 AND points < 0) "
     "THEN -points ELSE 0 END) t FROM postings GROUP BY op_id) "
     "SELECT s.op_id, s.t - COALESCE(p.t, 0) FROM s LEFT JOIN p ON p.op_id = s.op_id "
     "WHERE s.t != COALESCE(p.t, 0)",
     "operation %lld: its issue entries differ from the points it issued by %lld"},
    {"WITH e AS (SELECT op_id, SUM(points) t FROM settle_entries WHERE kind = 2 GROUP BY op_id "
     "UNION ALL SELECT DISTINCT op_id, 0 FROM settle_entries), "
     "s AS (SELECT op_id, SUM(t) t FROM e GROUP BY op_id), "
     "p AS (SELECT op_id, SUM(CASE WHEN account_id = -2 OR (account_id = -6 AND points > 0) "
     "THEN points ELSE 0 END) t FROM postings GROUP BY op_id) "
     "SELECT s.op_id, s.t - COALESCE(p.t, 0) FROM s LEFT JOIN p ON p.op_id = s.op_id "
     "WHERE s.t != COALESCE(p.t, 0)",
     "operation %lld: its burn entries differ from the points it redeemed by %lld"},
    {"WITH e AS (SELECT op_id, SUM(points) t FROM settle_entries WHERE kind = 3 GROUP BY op_id "
     "UNION ALL SELECT DISTINCT op_id, 0 FROM settle_entries), "
     "s AS (SELECT op_id, SUM(t) t FROM e GROUP BY op_id), "
     "p AS (SELECT op_id, SUM(CASE WHEN account_id = -3 THEN points ELSE 0 END) t "
     "FROM postings GROUP BY op_id) "
     "SELECT s.op_id, s.t - COALESCE(p.t, 0) FROM s LEFT JOIN p ON p.op_id = s.op_id "
     "WHERE s.t != COALESCE(p.t, 0)",
     "operation %lld: its expire entries differ from the points it let expire by %lld"},

    /* What the expiry took from a lot (lots.expired, written by the
     * expiry's plan only) is points the lot no longer holds, and an
     * account's lots never record more expired than its expiry operations
     * (type 4) took from it: less only for expiries before the column,
     * which recorded nothing per lot. */
    {"SELECT id, expired FROM lots WHERE expired < 0 OR expired + remaining > amount",
     "lot %lld: expired %lld is negative or more than the lot no longer holds"},
    {"WITH x AS (SELECT p.account_id, -SUM(p.points) t FROM postings p JOIN ops o "
     "ON o.id = p.op_id WHERE o.type = 4 AND p.account_id > 0 GROUP BY p.account_id), "
     "l AS (SELECT account_id, SUM(expired) e FROM lots GROUP BY account_id) "
     "SELECT l.account_id, l.e - COALESCE(x.t, 0) FROM l LEFT JOIN x "
     "ON x.account_id = l.account_id WHERE l.e > COALESCE(x.t, 0)",
     "account %lld: its lots record %lld points more expired than its expiry operations took"},

    /* The outbox (kopilka/notify.h). A message is planned from its event
     * and written by the event's dispatch, in one transaction with the
     * mark: its event exists and is dispatched. Events and messages are
     * never deleted (an erasure drops only the sealed text). */
    {"SELECT m.id, m.event_id FROM messages m WHERE NOT EXISTS "
     "(SELECT 1 FROM notify_events e WHERE e.id = m.event_id)",
     "message %lld: its event %lld does not exist"},
    {"SELECT m.id, m.event_id FROM messages m JOIN notify_events e ON e.id = m.event_id "
     "WHERE e.dispatched_at IS NULL",
     "message %lld: its event %lld is not marked dispatched, yet the dispatch wrote it"},
    /* A message is pending, sent, dead or cancelled (kp_message_state; the
     * schema's CHECK says the same, for a file whose CHECK was bypassed). */
    {"SELECT id, state FROM messages WHERE state < 0 OR state > 3",
     "message %lld: state %lld is not one of pending, sent, dead, cancelled (0..3)"},
    /* A sent message records when: the delivery settles it with the time
     * the provider took it, and a replay keeps it. */
    {"SELECT id, sent_at FROM messages WHERE state = 1 AND sent_at <= 0",
     "message %lld: sent, but its sent_at is %lld"},

    /* The rewards catalog (kopilka/catalog.h). A store's stock is what is
     * left to order: never below 0 (the schema's CHECK says the same). */
    {"SELECT item_id, qty FROM catalog_stock WHERE qty < 0",
     "catalog item %lld: its stock at a store is %lld, below 0"},
    /* An order's points left the account as one operation of the order
     * (reward, receipt order:<id>) taking exactly its price. */
    {"SELECT o.id, o.points FROM catalog_orders o WHERE NOT EXISTS (SELECT 1 FROM ops p "
     "WHERE p.store = '#catalog' AND p.receipt = 'order:' || o.id AND p.type = 8 "
     "AND p.points = -o.points)",
     "catalog order %lld: no ledger operation of it took its %lld points"},
    /* A cancelled order, and only a cancelled one, has had its points given
     * back (reward_cancel, receipt order:<id>:cancel), all of them. */
    {"SELECT o.id, o.state FROM catalog_orders o WHERE (o.state = 4) != EXISTS (SELECT 1 "
     "FROM ops p WHERE p.store = '#catalog' AND p.receipt = 'order:' || o.id || ':cancel' "
     "AND p.type = 9 AND p.points = o.points)",
     "catalog order %lld: in state %lld, yet its points given back say otherwise "
     "(4 = cancelled: given back; any other: not)"},
};

const size_t store_invariants_count = sizeof store_invariants / sizeof store_invariants[0];

/* Every value here needs the key file: customers' sealed fields, birthday
 * indexes, audit MACs, sealed event payloads, messages' sealed texts (NULL
 * once erased), webhook secrets (always sealed), login codes (keyed
 * hashes). Customers' sessions are not counted: their tokens are unkeyed
 * hashes, which a new key leaves valid. */
const char store_sealed_count_sql[] =
    "SELECT (SELECT count(*) FROM customers WHERE name IS NOT NULL OR "
    "phone IS NOT NULL OR email IS NOT NULL OR birthday IS NOT NULL OR "
    "attributes IS NOT NULL) + (SELECT count(*) FROM account_birthdays) + "
    "(SELECT count(*) FROM audit WHERE mac IS NOT NULL) + "
    "(SELECT count(*) FROM notify_events WHERE sealed = 1) + "
    "(SELECT count(*) FROM messages WHERE sealed IS NOT NULL) + "
    "(SELECT count(*) FROM webhook_endpoints) + (SELECT count(*) FROM login_codes) + "
    "(SELECT count(*) FROM family_invitations)";

void store_audit_step(store_audit_walk *w, const kp_audit_entry *a,
                      void (*report)(void *ctx, const char *line), void *ctx, int64_t *problems)
{
    const char *what = NULL;
    uint8_t expect[32];
    if (a->seq != w->seq + 1) what = "entries before it are missing";
    else if (memcmp(a->prev_hash, w->prev, 32) != 0)
        what = "it does not link to the entry before it";
    kp_audit_hash(a->prev_hash, a, expect);
    if (what == NULL && memcmp(expect, a->hash, 32) != 0)
        what = "its content does not match its hash (changed after it was written)";
    if (what) {
        char line[256];
        snprintf(line, sizeof line, "audit entry %lld: %s", (long long)a->seq, what);
        if (*problems < STORE_INVARIANT_LINES_MAX) report(ctx, line);
        (*problems)++;
    }
    w->seq = a->seq;
    memcpy(w->prev, a->hash, 32);
}
