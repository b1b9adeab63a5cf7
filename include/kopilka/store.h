/*
 * store.h: the one narrow interface to storage, structs of function
 * pointers in the manner of SQLite's VFS: kp_store_ops here (with
 * kp_group_ops for the server's writer), kp_triggers_ops (triggers.h) and
 * kp_people_ops (people.h). Backends: SQLite (src/store/store_sqlite*.c,
 * the embedded default) and PostgreSQL (src/store/store_pg*.c). Nothing
 * above these headers knows SQL; nothing here knows a backend's durability
 * strategy except through kp_group_ops.
 *
 * The contract every operation keeps, unless its own comment says
 * otherwise:
 *  - Connections. A kp_store is one connection, used by one thread at a
 *    time (kp_group_ops.sync is the one exception). Several connections,
 *    in one process or several, may use one database at once.
 *  - Results. KP_OK, or an error with the backend's own message in
 *    s->last_error (NUL-terminated, truncated to fit). Out-parameters
 *    hold a result only on KP_OK (a list's *n is 0 on error). Errors any operation may return, not
 *    repeated below: KP_ERR_IO (storage failed: a disk, the connection, a
 *    damaged file), KP_ERR_NOMEM, and KP_ERR_BUSY (a lock another
 *    connection holds stayed taken past the backend's wait; or, where
 *    several connections write at once, a deadlock or serialization failure
 *    or another connection's uncommitted insert of the same key: the
 *    caller rolls back to its savepoint and may run the work again).
 *    KP_ERR_INTERNAL is a broken invariant (a bug), never bad input.
 *  - Transactions. begin() ... commit() or rollback(); inside, savepoint()
 *    ... release() or rollback_to() isolate one operation. An operation
 *    marked (write) changes the database: inside a transaction its work
 *    lands with the commit; outside one it is a transaction of its own. Reads
 *    see the connection's own uncommitted work and what other connections
 *    committed. A backend with several writers (kp_group_ops.writers > 1)
 *    orders them with row locks: account_load() inside a transaction locks
 *    the account until the transaction ends.
 *  - Lists fill at most `limit` items of the caller's array and set *n;
 *    "after" arguments page by id, exclusive (0 = from the start).
 *    Callbacks (`each`, `report`) run during the call; the rows they get
 *    are valid only then.
 *  - Ownership. Arguments are borrowed for the call. Strings a store returns
 *    through `char **` or in a row's `char *` fields are malloc'd, owned by
 *    the caller (free(), kp_op_row_release()). Arrays are fixed-size
 *    fields of the caller's structs.
 *  - NULL. No operation pointer is NULL except kp_store_ops.group and,
 *    within kp_group_ops, log, sync and upkeep, as they say. No pointer
 *    argument may be NULL unless its operation says so.
 */
#ifndef KOPILKA_STORE_H
#define KOPILKA_STORE_H

#include "ledger.h"
#include "triggers.h"

typedef enum kp_card_state {
    KP_CARD_ISSUED = 0,   /* printed and handed out, not registered yet */
    KP_CARD_ACTIVE = 1,   /* registered to a customer */
    KP_CARD_BLOCKED = 2,  /* lost or stolen: cannot earn or burn */
    KP_CARD_REPLACED = 3, /* another card took over its account */
} kp_card_state;
const char *kp_card_state_name(kp_card_state state);

typedef struct kp_card {
    char number[KP_STR_MAX];
    int64_t account_id;
    kp_card_state state;
    bool registered;
} kp_card;

/* A till's key: only its hash is stored. Times are 0 when they have not
 * happened. last_used_at is coalesced by the server (it keeps it in memory
 * and writes it now and then), so it lags the true last use. */
typedef struct kp_terminal {
    int64_t id;
    char store[KP_STR_MAX];
    kp_time created_at;
    kp_time rotated_at;   /* the key was last replaced */
    kp_time last_used_at;
    kp_time revoked_at;   /* refused from then on */
} kp_terminal;

/* One operation row: a purchase, a return, an adjustment... `detail` is the
 * operation's lines and lot takes in the service layer's own text format;
 * `response` is the answer given, replayed on an idempotent retry. */
typedef struct kp_op_row {
    int64_t id;
    kp_op_type type;
    int64_t account_id;
    char card[KP_STR_MAX];
    char store[KP_STR_MAX];
    char receipt[KP_STR_MAX];
    uint8_t request_hash[16];
    int64_t program_version;
    kp_time at;
    int64_t amount_minor;
    int64_t paid_minor;
    int64_t earned;
    int64_t burned;
    int64_t points;        /* net change of the customer's balance */
    int64_t original_op_id;
    char *detail;
    char *response;
    /* In, for op_insert and op_insert_apply: a notification event to write
     * with the operation (NULL = none). The store sets its op_id to the
     * operation's id and its key to "op:<id>", and writes it as
     * notify->event_insert does, in the same call, so a backend can send
     * both in one round trip. Never filled by reads. */
    struct kp_notify_event *notify;
} kp_op_row;
void kp_op_row_release(kp_op_row *row);

typedef struct kp_history_item {
    int64_t op_id;
    kp_op_type type;
    char store[KP_STR_MAX];
    char receipt[KP_STR_MAX];
    kp_time at;
    int64_t points;       /* net change of the balance */
    int64_t amount_minor;
    char currency[4];     /* the account's currency: "" = the program's own */
} kp_history_item;

/* One of a card's accounts in a currency other than the program's
 * (docs/coalition.md "Currencies"): a receipt in `currency` earns and
 * burns there. The card's own account is in the program's currency. */
typedef struct kp_currency_account {
    char currency[4];   /* ISO 4217, three capital letters */
    int64_t account_id; /* the sub-account: an account without a card */
    int64_t balance;
} kp_currency_account;

/* Currencies a program may accept besides its own, and so currency
 * accounts a card may have. */
enum { KP_CURRENCY_ACCOUNTS_MAX = 16 };

/* What a purchase at a till reads (kp_store_ops.till_load). */
typedef struct kp_till_read {
    bool op_found;      /* an operation is stored under (store, receipt): `op` */
    kp_op_row op;       /* as op_find() gives it; kp_op_row_release() frees it */
    bool card_found;    /* the card exists: `card` */
    kp_card card;
    /* The card is found and neither blocked nor replaced, and its account
     * was loaded: KP_OK, the account in the caller's kp_account; otherwise
     * the error account_load() gives (KP_ERR_LIMIT with its sentence in
     * last_error), or KP_ERR_NOT_FOUND when nothing was loaded. */
    kp_err account;
    kp_account_rules rules; /* with KP_TILL_RULES and `account` KP_OK; else zero */
    bool may_burn;          /* with KP_TILL_MAY_BURN: card_info's may_burn (true when none) */
    /* When no operation is stored under (store, receipt): the id of a
     * till's sale without a card stored under them (kopilka/sales.h: kind
     * purchase, source till, card ""), 0 when none. A card purchase may not
     * take an anonymous sale's receipt. */
    int64_t anonymous_sale_id;
} kp_till_read;

/* What till_load() reads beyond the operation, the card and the account. */
enum {
    KP_TILL_RULES = 1u,    /* the account's rule state (triggers->account_rules_get) */
    KP_TILL_MAY_BURN = 2u, /* whether the card may spend (people->card_info_get) */
};

/* A program version as the store keeps it, without its text. A version
 * runs from its activation (activates_at, or its load when that is 0) until
 * a later version's activation; at any instant the running version is the
 * highest one not cancelled whose activates_at is 0 or not after that
 * instant (docs/rules.md, "Program versions"). */
typedef struct kp_program_version {
    int64_t version;
    char name[128];
    char loaded_by[96];   /* the actor: "staff:anna", "cli:root" */
    kp_time loaded_at;
    kp_time activates_at; /* 0: at once, on load */
    kp_time cancelled_at; /* 0: not cancelled (only a version that has not run can be) */
} kp_program_version;

typedef struct kp_store kp_store;

/* Replays one record that kp_group_ops.log() was given by an earlier run of
 * the server (the service layer's own encoding, src/service/durable.c), on
 * `s`, inside the backend's recovery transaction. KP_OK: the record's work
 * is in that transaction. An error stops the recovery, which then changes
 * nothing; the message says why (the backend prefixes where the record was). */
typedef kp_err (*kp_redo_fn)(void *ctx, kp_store *s, const void *record, size_t len,
                             kp_error *e);

/* Group commit: how a backend makes the server writer's work durable
 * (src/server/writer.c). The writer runs a group of jobs on a connection,
 * each job in its own savepoint, and tells nobody "done" before the group is
 * durable. Everything that depends on a backend's costs lives behind these
 * operations: SQLite's operation log and the database transaction it keeps
 * open across groups (src/store/store_sqlite_group.c), PostgreSQL's commits.
 *
 * The life of a connection that writes groups:
 *
 *     open(s, location, redo, ...)        once; recovers what a crash left
 *     begin(s); job savepoints...; log(s, record) per job; end(s, publish, &ticket, &published)
 *     ... more groups ...
 *     sync(s, ticket) from another thread before answering the group's jobs
 *     close(s)
 *
 * A connection is a group writer from open() to close() and uses nothing of
 * kp_store_ops to end a transaction meanwhile (no commit() or rollback():
 * close() drops a group not yet ended). Reads and writes of kp_store_ops
 * run inside a group between begin() and end(). A CLI command that is not a long job uses kp_store_ops'
 * begin()/commit() and no group at all.
 *
 * A backend without group commit leaves kp_store_ops.group NULL: the writer
 * then runs each group as begin() ... commit(), durable when commit()
 * returns, one writer connection. */
typedef struct kp_group_ops {
    /* Writer connections that may run groups at the same time, each on a
     * thread of its own, taking groups from one queue: 1 for SQLite (one
     * writer per file); more for PostgreSQL, whose row locks order them.
     * From 1 to 32. */
    int writers;
    /* How long a writer whose groups are ended but not published (end()
     * gave *published false) waits for more work before it publishes them:
     * then it runs an empty group, begin() and end(publish = true). 0 when
     * end() always publishes. */
    uint64_t publish_idle_ns;
    /* Makes `s` a group writer for the database at `location` (the one `s`
     * was opened on).
     * With `redo`: the server's writer. Takes what keeps other writers of
     * this kind off the database (SQLite: the operation log's lock), then
     * replays through redo(redo_ctx, s, record, ...) every record that a
     * crash left logged but not in the database, commits them durably and
     * counts them in *recovered (0 for a backend that logs nothing).
     * Without `redo` (NULL; redo_ctx and recovered unused, may be NULL): a
     * long CLI job beside a running server (src/service/chunks.c). Takes no
     * lock, recovers nothing; every end() publishes.
     * Errors: KP_ERR_BUSY when another process holds the writer's lock
     * (a running server); KP_ERR_IO when the log cannot be read or is
     * damaged in its middle (field "oplog"; nothing was changed); the
     * error of redo, which stopped the recovery; KP_ERR_NOMEM. On error
     * `s` is not a group writer, and close() must not be called. */
    kp_err (*open)(kp_store *s, const char *location, kp_redo_fn redo, void *redo_ctx,
                   size_t *recovered, kp_error *e);
    /* Starts a group: a transaction, or goes on with the one left open by
     * an unpublished group. KP_ERR_BUSY when the database's write lock
     * stays taken by another process past the backend's wait; KP_ERR_IO. */
    kp_err (*begin)(kp_store *s);
    /* A job of the open group succeeded (its savepoint released) and wrote
     * something: `record` (len bytes, the caller's, read during the call)
     * redoes it after a crash; the backend copies it. record NULL (len 0):
     * the job has no record (not a purchase or return), and end() must make
     * the group durable without the log (SQLite: a database commit).
     * KP_ERR_LIMIT: the backend cannot log this record (too large, too many
     * waiting); end() then makes the group durable the other way. The job
     * is not failed by it either way. NULL when the backend keeps no log:
     * the writer then encodes no records. */
    kp_err (*log)(kp_store *s, const void *record, size_t len);
    /* Ends the open group. With `publish`, the group's work (and that of
     * every earlier group of this connection) is visible to other
     * connections when end() returns. *published says whether it is (a
     * backend may publish without being asked: SQLite every 500 ms, at a
     * job without a record, past 200 000 logged jobs in one transaction).
     * *ticket is what sync() must reach before any job of this group is
     * acknowledged; tickets of a connection only grow.
     * Errors: KP_ERR_IO when the connection cannot take more groups: the
     * connection is lost, or acknowledged work of earlier groups is no
     * longer in the database (SQLite: a failed log write, or a failed
     * commit of logged work, which the next open() replays from the log);
     * the writer refuses writes until a restart.
     * Any other error: this group was rolled back, earlier groups stay
     * durable, and the next begin() starts afresh (KP_ERR_BUSY: a
     * serialization failure or a deadlock at commit). Either way no job of
     * this group may be told it succeeded. */
    kp_err (*end)(kp_store *s, bool publish, uint64_t *ticket, bool *published);
    /* Makes every group of `s` up to `ticket` durable (and any later one
     * already ended). Runs on one other thread at a time while the
     * connection goes on with its next groups: it touches only what end()
     * hands over under the backend's own lock, never last_error (the
     * message goes to *e). KP_ERR_IO: a sync failed; what was acknowledged
     * before is unaffected, the groups it covers are of unknown outcome.
     * NULL: end() is durable when it returns. */
    kp_err (*sync)(kp_store *s, uint64_t ticket, kp_error *e);
    /* Housekeeping the backend wants done beside the writer, called every
     * 200 ms on a connection of its own that is not a group writer and has
     * no transaction open (SQLite: a passive checkpoint of the WAL into the
     * database file, so commits do not pay for it). KP_OK or the failure,
     * which the caller reports and otherwise ignores. NULL: none. */
    kp_err (*upkeep)(kp_store *s);
    /* For a long CLI job (a group writer opened without redo), called
     * after each begin(): true when nobody else has written to the database
     * since the previous call, so the job may hold the lock longer (its
     * chunks grow, src/service/chunks.c). SQLite: no other connection
     * committed, as its data version tells; false at the first call and
     * whenever another connection committed meanwhile (a server's writer,
     * another job). PostgreSQL: no server serves the database (g_open's
     * serving lock) and no other connection is in a writing transaction.
     * NULL: never (the job keeps its shortest chunks). */
    bool (*alone)(kp_store *s);
    /* Releases what open() took (the log, its lock). Work of groups ended
     * but not published is dropped from the database, as a crash would
     * drop it; a logging backend keeps it in the log for the next open().
     * The writer publishes before it closes. */
    void (*close)(kp_store *s);
} kp_group_ops;

typedef struct kp_store_ops {
    /* Closes the connection; an open transaction is rolled back. */
    void (*close)(kp_store *s);
    /* Starts a transaction that writes (SQLite: BEGIN IMMEDIATE, taking
     * the database's write lock; KP_ERR_BUSY after the backend's wait,
     * 10 s). Not nested: begin() inside a transaction is the caller's bug
     * and fails. */
    kp_err (*begin)(kp_store *s);
    /* Ends the transaction, its work durable when commit() returns (a
     * server's group writer uses kp_group_ops.end instead). On error the
     * caller calls rollback(): nothing of the transaction stays. */
    kp_err (*commit)(kp_store *s);
    /* Undoes the open transaction. KP_OK when none is open (after a
     * failed commit, say). */
    kp_err (*rollback)(kp_store *s);
    /* One savepoint at a time, inside a transaction: savepoint() marks the
     * point, release() keeps the work since and drops the mark,
     * rollback_to() undoes the work since and drops the mark (the
     * transaction goes on, usable again whatever error an operation inside
     * the savepoint returned). */
    kp_err (*savepoint)(kp_store *s);
    kp_err (*release)(kp_store *s);
    kp_err (*rollback_to)(kp_store *s);

    /* (write) A new program version: the file's text, and of `meta` its
     * name, loaded_by, loaded_at (the caller's now) and activates_at (0 =
     * at once; else not before loaded_at: the caller checks its range).
     * Sets *version (1, 2, ... in load order). KP_ERR_CONFLICT, nothing
     * written, when a version not cancelled activates at or after this
     * one's activation (activates_at, or loaded_at for 0): this version
     * would keep that one from ever running; last_error names it. The check
     * and the insert are one step against concurrent loads (PostgreSQL
     * locks the table against writers until the transaction ends). */
    kp_err (*program_insert)(kp_store *s, const char *json, const kp_program_version *meta,
                             int64_t *version);
    /* The text of program `version` in *json (malloc'd, the caller frees
     * it), and its version in *version_out; version 0: the one running at
     * `at` (unused otherwise). KP_ERR_NOT_FOUND when there is no such
     * version (or none runs at `at`). A cancelled version is still found
     * by its number. */
    kp_err (*program_get)(kp_store *s, int64_t version, kp_time at, char **json,
                          int64_t *version_out);
    /* Versions below `before` (0 = from the newest), newest first, at most
     * `limit`. */
    kp_err (*program_list)(kp_store *s, int64_t before, kp_program_version *out, size_t limit,
                           size_t *n);
    /* The version running at `at` in *running (0: none), and in *next the
     * version that takes over after `at`: of the versions above *running,
     * not cancelled, with activates_at after `at`, the one activating
     * first (next->version 0: none). */
    kp_err (*program_schedule)(kp_store *s, kp_time at, int64_t *running,
                               kp_program_version *next);
    /* (write) Cancels version `version` (cancelled_at = now). KP_ERR_NOT_FOUND
     * when there is no such version; KP_ERR_CONFLICT when it took effect
     * (activates_at 0, or not after now) or is cancelled already, with the
     * reason in last_error. */
    kp_err (*program_cancel)(kp_store *s, int64_t version, kp_time now);

    /* (write) A till's terminal of `store` with the hash of its key; sets
     * *id. KP_ERR_CONFLICT when a terminal has that hash already. */
    kp_err (*terminal_insert)(kp_store *s, const char *store, const uint8_t key_hash[32], int64_t *id);
    /* The terminal of a key that is not revoked; KP_ERR_NOT_FOUND otherwise. */
    kp_err (*terminal_find)(kp_store *s, const uint8_t key_hash[32], kp_terminal *out);
    /* By id, revoked or not; KP_ERR_NOT_FOUND when there is no such id. */
    kp_err (*terminal_get)(kp_store *s, int64_t id, kp_terminal *out);
    /* Terminals with id > after_id in id order, at most `limit`. */
    kp_err (*terminal_list)(kp_store *s, int64_t after_id, kp_terminal *out, size_t limit,
                            size_t *n);
    /* (write) Revokes terminal `id` (new_hash NULL) or replaces its key with
     * new_hash (rotated_at = now), and bumps terminal_generation in the
     * same transaction. KP_ERR_NOT_FOUND when there is no such terminal;
     * KP_ERR_CONFLICT when another terminal has new_hash. */
    kp_err (*terminal_change)(kp_store *s, int64_t id, const uint8_t *new_hash, kp_time now);
    /* (write) Raises last_used_at to used_at (never lowers it). An unknown
     * id changes nothing and is KP_OK. */
    kp_err (*terminal_touch)(kp_store *s, int64_t id, kp_time used_at);
    /* A number that grows whenever a key is revoked or rotated: a server
     * that caches keys polls it to forget them (0 before the first). */
    kp_err (*terminal_generation)(kp_store *s, int64_t *generation);

    /* (write) Creates an account (created_at = now) and its card `number`
     * in `state`, not registered; sets *account_id. KP_ERR_CONFLICT when
     * the number exists (nothing is written then). */
    kp_err (*card_create)(kp_store *s, const char *number, kp_card_state state, kp_time now,
                          int64_t *account_id);
    /* The card `number` (copied into out->number). KP_ERR_NOT_FOUND. */
    kp_err (*card_find)(kp_store *s, const char *number, kp_card *out);

    /* Loads the account (balance, debt, purchases, spend; `registered`
     * false: the caller knows the card) and all its open lots in burn order
     * (earliest expiry first, never-expiring last, then oldest).
     * KP_ERR_NOT_FOUND for no such account. The ledger keeps an account at
     * KP_LOTS_MAX open lots at most; one with more (written by an older
     * version) is refused with KP_ERR_LIMIT and a sentence in last_error,
     * never cut short: `kopilka lots merge` repairs it. Inside a
     * transaction the account stays locked against other writers until it
     * ends (see the top of this file). */
    kp_err (*account_load)(kp_store *s, int64_t account_id, kp_account *out);
    /* (write) The repair: merges the open lots of every account that has
     * more than `max` (kp_lots_merge_plan() at `now`), inside the caller's
     * transaction; report(ctx, account, lots before, lots after) for each
     * (report may be NULL). */
    kp_err (*lots_merge)(kp_store *s, size_t max, kp_time now,
                         void (*report)(void *ctx, int64_t account_id, size_t before, size_t after),
                         void *ctx);

    /* Idempotency: the operation stored under (store, receipt). Zeroes *out
     * first; out->detail and out->response are malloc'd (NULL when not
     * stored): kp_op_row_release() frees them. KP_ERR_NOT_FOUND. */
    kp_err (*op_find)(kp_store *s, const char *store, const char *receipt, kp_op_row *out);
    /* (write) Stores the operation; sets row->id. An empty receipt stores
     * none (no idempotency key); detail and response may be NULL. With
     * row->notify, also its event (see kp_op_row).
     * KP_ERR_CONFLICT when (store, receipt) is stored already;
     * KP_ERR_BUSY when another writer inserted it and has not committed
     * yet (a request sent to two servers at once; run again, op_find then
     * finds it). */
    kp_err (*op_insert)(kp_store *s, kp_op_row *row);
    /* (write) Replaces the detail of operation op_id. An unknown id
     * changes nothing and is KP_OK. */
    kp_err (*op_set_detail)(kp_store *s, int64_t op_id, const char *detail);
    /* (write) Applies a ledger plan of operation op_id: its postings, lot
     * changes, new or merged lot and the account's new balance and debt
     * (absolute values from the plan, which account_load() read in this
     * transaction) and totals; the system accounts' balances by the
     * postings' sums (a backend may hold those sums until commit()). A plan
     * that does not balance is refused with kp_ledger_plan_check()'s error
     * and nothing is written; a lot of another account or one missing is
     * KP_ERR_INTERNAL; KP_ERR_LIMIT when a plan's lots_merge cannot bring
     * the account down to KP_LOTS_MAX open lots. On error the caller rolls
     * back (to its savepoint): part of the plan may be written. */
    kp_err (*plan_apply)(kp_store *s, int64_t op_id, const kp_ledger_plan *plan, kp_time now);
    /* A purchase's reads in one call, as these operations would give them
     * one after the other: op_find(store, receipt); card_find(card); when
     * the card is found, neither blocked nor replaced: account_load() of
     * its account into *account (inside a transaction locked as
     * account_load() locks it, before its lots are read) and, with
     * KP_TILL_RULES in `want`, triggers->account_rules_get(); with
     * KP_TILL_MAY_BURN and the card found, people->card_info_get()'s
     * may_burn. When an operation is found the rest may be left unread
     * (SQLite reads nothing more; PostgreSQL sends every statement in one
     * round trip and may lock the account). Zeroes *out first. The error
     * is a failure of the storage; what was not found is in *out. */
    kp_err (*till_load)(kp_store *s, const char *store, const char *receipt, const char *card,
                        unsigned want, kp_account *account, kp_till_read *out);
    /* (write) op_insert(row) then plan_apply(row->id, plan, now) in one
     * call, with their results and errors (row->id set on KP_OK). On error
     * the caller rolls back (to its savepoint), as after either. */
    kp_err (*op_insert_apply)(kp_store *s, kp_op_row *row, const kp_ledger_plan *plan,
                              kp_time now);

    /* An account's operations and those of its currency accounts
     * (account_currency), newest first, at most `limit`; each item says
     * its account's currency. */
    kp_err (*history)(kp_store *s, int64_t account_id, kp_history_item *items, size_t limit,
                      size_t *n);
    /* (write) The account of currency `currency` beside the card's own
     * account `account_id` (an account in the program's currency): the one
     * linked to it (table account_currencies), or a new one (an account with
     * that currency and no card, created_at = now, and its link) made now.
     * *sub_id is its id. Inside a transaction it locks the own account's
     * row first (as account_load() does), so two writers make one.
     * KP_ERR_NOT_FOUND when account_id does not exist; KP_ERR_INVALID when
     * currency is not three capital letters or account_id is itself a
     * currency account. */
    kp_err (*account_currency)(kp_store *s, int64_t account_id, const char *currency,
                               kp_time now, int64_t *sub_id);
    /* (read) The currency accounts of the card's own account `account_id`
     * (none for an unknown id), in currency order, at most `limit`. */
    kp_err (*account_currencies)(kp_store *s, int64_t account_id, kp_currency_account *out,
                                 size_t limit, size_t *n);
    /* (read) Whose account `account_id` is: for a currency account, the
     * card's own account it belongs to in *own_id and its currency in
     * currency[4]; for any other id (an own account, an unknown one),
     * account_id itself and "". */
    kp_err (*account_owner)(kp_store *s, int64_t account_id, int64_t *own_id, char currency[4]);
    /* (read) The purchases and returns with from <= at < to (to = 0: no
     * end), in (at, id) order: fn(ctx, row) for each, its id, type,
     * account, card, store, receipt, at, figures, original_op_id, detail
     * and response set (request_hash not); false from fn stops the scan
     * (KP_OK). The economic model's history (src/service/simulate.c). */
    kp_err (*ops_scan)(kp_store *s, kp_time from, kp_time to,
                       bool (*fn)(void *ctx, const kp_op_row *row), void *ctx);
    /* Checks the database's structure (integrity(false)) unless this
     * connection just did, then every invariant of the ledger (stated once
     * for every backend in src/store/store_invariants.c) and the audit
     * chain: report(ctx, line) for each problem, the first 100 of them, and
     * *problems counts all. KP_OK with *problems > 0 for a ledger that
     * does not hold; an error only when the checks could not run. */
    kp_err (*verify)(kp_store *s, void (*report)(void *ctx, const char *line), void *ctx,
                     int64_t *problems);
    /* Checks the database's structure (SQLite: PRAGMA quick_check, or
     * integrity_check when full; PostgreSQL: amcheck on Kopilka's indexes
     * where the extension is available): one line per problem to
     * report(ctx, line), *problems counted; KP_OK with *problems > 0 for a
     * damaged database; a check the backend cannot make is one report line
     * saying so, not a problem. The quick one reads every page (time grows
     * with the database); the full one also matches every index with its
     * table. */
    kp_err (*integrity)(kp_store *s, bool full, void (*report)(void *ctx, const char *line),
                        void *ctx, int64_t *problems);
    /* Called from another thread while integrity() runs on s: makes it
     * return soon (an error; what it reported so far stands). Nothing else
     * may be called on s at the same time. NULL: the backend's check cannot
     * be cut short (the caller waits for it). */
    void (*interrupt)(kp_store *s);
    /* The database's random identity, made (a write) at the first call and
     * the same ever after, also in a copy (`kopilka backup`, `migrate`).
     * Keys what must not be read against another database (SQLite's
     * operation log). */
    kp_err (*identity)(kp_store *s, uint8_t id[16]);
    /* Rule state, events, grant keys and the scheduler (triggers.h). */
    const kp_triggers_ops *triggers;
    /* Customers, cards' details and events, staff, sessions, the audit
     * chain, families (people.h). */
    const struct kp_people_ops *people;
    /* The outbox: notification events, messages, preferences, templates,
     * webhook endpoints, login codes (notify.h). */
    const struct kp_notify_ops *notify;
    /* The sales history for analytics: receipts with or without a card
     * (sales.h). */
    const struct kp_sales_ops *sales;
    /* The rewards catalog: items, images, stock per store, orders
     * (catalog.h). */
    const struct kp_catalog_ops *catalog;
    /* Prize draws: their commitments, frozen entries and winners
     * (draws.h). */
    const struct kp_draws_ops *draws;
    /* The back office's reports, each read in one snapshot (report.h). */
    const struct kp_report_ops *report;
    /* Coalition settlement entries, periods and statements (coalition.h). */
    const struct kp_settle_ops *settle;
    /* Segments and campaigns (marketing.h). */
    const struct kp_marketing_ops *marketing;
    /* Group commit for the server's writer; NULL: a backend without it
     * (the writer then runs groups as begin() ... commit()). */
    const kp_group_ops *group;
} kp_store_ops;

struct kp_store {
    const kp_store_ops *ops;
    /* The backend's own message for the last failure of an operation of
     * this connection (never written by kp_group_ops.sync). */
    char last_error[256];
};

/* Opens a store from a location: a file path (SQLite) or
 * "postgresql://..." / "postgres://..." (PostgreSQL). `create` makes a new
 * database and its schema; without it, a missing database is
 * KP_ERR_NOT_FOUND. Errors are described in *e (field "database"); *out is
 * NULL on error. */
kp_err kp_store_open(const char *location, bool create, kp_store **out, kp_error *e);
/* Whether a location names a file (SQLite) rather than a database server
 * ("postgresql://..."): the one test every layer uses before it treats a
 * location as a path (stat, the key file beside it, the operation log). */
bool kp_store_is_file(const char *location);
/* Closes s (s->ops->close); NULL is ignored. */
void kp_store_close(kp_store *s);

#endif
