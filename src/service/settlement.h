/*
 * settlement.h: a coalition's monthly periods and statements
 * (docs/coalition.md "Periods and statements"), over the settlement entries
 * the store keeps (kp_settle_ops, kopilka/coalition.h).
 *
 * A period (yyyymm, the program's calendar) may be closed once its month
 * has ended. Closing reads the period's entries under the settlement
 * state's lock, sums them into one statement per party (the operator, every
 * partner of the program and every party of the entries) and currency (the
 * program's own and every currency of the entries), and the period's matrix
 * (who owes whom), numbers the statements and stores them as JSON text that
 * never changes. A statement's figures are a function of its period's
 * entries, its number and the period's closing time alone, so
 * kp_settlement_verify() recomputes every closed period and compares.
 *
 * The office operations check settlement.read or settlement.manage; a close
 * writes an audit entry.
 */
#ifndef KOPILKA_SERVICE_SETTLEMENT_H
#define KOPILKA_SERVICE_SETTLEMENT_H

#include <kopilka/coalition.h>

#include "core/buf.h"
#include "people.h"

enum {
    KP_SETTLE_PERIODS_LIST_MAX = 120, /* closed periods one list answers */
    KP_SETTLE_MATRIX_CELLS_MAX = 8192, /* (currency, payer, payee) sums of one period */
};

/* What one party is in one currency over a period: the figures of its
 * statement (docs/coalition.md). Points are points, *_minor the currency's
 * minor units; net_position_minor = owed_to_minor - owed_by_minor,
 * positive when the party is owed. */
typedef struct kp_settle_figures {
    char party[KP_PARTNER_CODE_MAX]; /* "" = the operator */
    char currency[4];
    int64_t entries;
    int64_t issued;
    int64_t burnt_own;              /* own points burnt at own stores */
    int64_t burnt_others;           /* other parties' points burnt at own stores */
    int64_t burnt_others_minor;     /* ... what their issuers owe for them */
    int64_t burnt_elsewhere;        /* own points burnt at other parties' stores */
    int64_t burnt_elsewhere_minor;  /* ... what the party owes for them */
    int64_t expired;                /* own points expired */
    int64_t breakage_paid_minor;    /* ... the operator's share of their value */
    int64_t breakage_received_minor; /* the operator: its share of others' expiries */
    int64_t promotions_paid;
    int64_t promotions_paid_minor;
    int64_t promotions_received;
    int64_t promotions_received_minor;
    int64_t fees_paid_minor;
    int64_t fees_received_minor;
    int64_t owed_to_minor;          /* every amount owed to the party by another */
    int64_t owed_by_minor;          /* every amount the party owes another */
    int64_t net_position_minor;
} kp_settle_figures;

/* One cell of a period's matrix: the sum of amounts `payer` owes `payee`
 * (payer != payee) in `currency`. */
typedef struct kp_settle_cell {
    char currency[4];
    char payer[KP_PARTNER_CODE_MAX];
    char payee[KP_PARTNER_CODE_MAX];
    int64_t amount_minor;
} kp_settle_cell;

/* The sums of one period's entries. */
typedef struct kp_settle_sums {
    size_t n;
    kp_settle_figures figures[KP_SETTLE_STATEMENTS_MAX];
    size_t n_cells;
    kp_settle_cell cells[KP_SETTLE_MATRIX_CELLS_MAX];
    int64_t entries;
} kp_settle_sums;

/* Adds entry `e` to s (zeroed by the caller first). KP_ERR_OVERFLOW when a
 * sum would not fit, KP_ERR_LIMIT past KP_SETTLE_STATEMENTS_MAX figures or
 * KP_SETTLE_MATRIX_CELLS_MAX cells; e gets the sentence. */
kp_err kp_settle_sums_add(kp_settle_sums *s, const kp_settle_entry *entry, kp_error *e);

/* Makes sure s has the figures of every statement a period gives: the
 * operator and each partner of `program` (may be NULL) in the program's
 * currency and in every currency of the entries; then orders them
 * (currency: the program's first, then by code; party: the operator, the
 * program's partners in file order, then the others by code). */
kp_err kp_settle_sums_finish(kp_settle_sums *s, const kp_program *program, kp_error *e);

/* A statement's stored JSON text: its number (0: an open period's preview,
 * "number": null, "state": "open"), period, party, currency, the closing
 * time (0: none) and the figures. */
void kp_settle_statement_json(kp_buf *out, int64_t number, int32_t period,
                              const kp_settle_figures *f, kp_time closed_at);
/* The period's matrix as JSON text: {"currencies":[{"currency", "parties":
 * [...], "amounts_minor": [[owed by parties[i] to parties[j]]]}]}. */
void kp_settle_matrix_json(kp_buf *out, const kp_settle_sums *s);

/* "2026-11" into *period (202611); false when it is no such month. */
bool kp_settle_period_parse(const char *text, int32_t *period);
/* 202611 as "2026-11" into out[8]. */
void kp_settle_period_format(int32_t period, char out[8]);

/* (settlement.read) The periods: {"current", "closed_through",
 * "periods":[{"period", "state": "open"|"closed", "closable", closed ones'
 * "closed_at", "closed_by", "first_number", "statements_count"}]}, open
 * ones (those with entries, the last month and the current one) first,
 * newest first. */
kp_err kp_settlement_periods(kp_office *o, kp_buf *out, kp_error *e);

/* (settlement.read) One period: {"period", "state", "closed_at",
 * "closed_by", "statements":[...], "matrix":{...}}: a closed one as
 * stored, an open one computed now ("state": "open", statements without
 * numbers). With csv: one line per statement, its figures as columns; with
 * csv and matrix: the matrix, one line per (currency, payer, payee). */
kp_err kp_settlement_period(kp_office *o, int32_t period, bool csv, bool matrix, kp_buf *out,
                            kp_error *e);

/* (settlement.read) Statement `number` as stored, or with csv as lines
 * "field,value". KP_ERR_NOT_FOUND (field "number"). */
kp_err kp_settlement_statement(kp_office *o, int64_t number, bool csv, kp_buf *out, kp_error *e);

/* (settlement.manage, a write) Closes `period`: refused (KP_ERR_CONFLICT,
 * field "period") before its month has ended in the program's calendar, or
 * while an earlier period with entries is open (naming it). A closed period
 * answers its statements as kp_settlement_period() does, *replayed set.
 * Runs in the caller's transaction (the writer's savepoint, or the CLI's
 * own), which on PostgreSQL then holds the settlement state until it ends. */
kp_err kp_settlement_close(kp_office *o, int32_t period, kp_buf *out, bool *replayed,
                           kp_error *e);

/* Every closed period's stored statements and matrix against what its
 * entries give now: report(ctx, line) for each difference, counted in
 * *problems. An error only when the check could not run. */
kp_err kp_settlement_verify(kp_store *st, void (*report)(void *ctx, const char *line), void *ctx,
                            int64_t *problems);

#endif
