/*
 * store_sqlite_people.h: the SQLite side of kp_people_ops (people.h):
 * customers, card details and events, batches, staff and sessions, the audit
 * chain, families. Lives beside store_sqlite.c on the same connection; its
 * tables are created at open when missing, so a database made before them
 * gains them on its next open.
 */
#ifndef KOPILKA_STORE_SQLITE_PEOPLE_H
#define KOPILKA_STORE_SQLITE_PEOPLE_H

#include <sqlite3.h>

#include <kopilka/people.h>
#include <kopilka/report.h>
#include <kopilka/store.h>

typedef struct sqlite_people sqlite_people;

/* Creates the people tables when missing and prepares their statements on
 * `db`. Failures are described in last_error (the store's buffer, which must
 * outlive *out). */
kp_err store_sqlite_people_open(sqlite3 *db, char *last_error, size_t last_error_size,
                                sqlite_people **out);
void store_sqlite_people_close(sqlite_people *p);

/* The audit chain's part of `kopilka verify`: every entry's hash recomputed,
 * each linked to the one before, no number missing. Adds to *problems. */
kp_err store_sqlite_people_verify(sqlite_people *p, void (*report)(void *ctx, const char *line),
                                  void *ctx, int64_t *problems);

extern const kp_people_ops store_sqlite_people_ops;
/* The reports (report.h), on the same connection. */
extern const kp_report_ops store_sqlite_report_ops;

/* Defined in store_sqlite.c: the people half of a SQLite store. */
sqlite_people *store_sqlite_people_of(kp_store *s);

#endif
