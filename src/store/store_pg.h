/* store_pg.h: the PostgreSQL backend of kp_store (store.h). */
#ifndef KOPILKA_STORE_PG_H
#define KOPILKA_STORE_PG_H

#include <stdbool.h>

#include <kopilka/store.h>

/* True when `location` names a PostgreSQL database (postgresql:// or
 * postgres://), not a SQLite file. */
bool store_pg_location(const char *location);

/* Opens a connection to `location` (a postgresql:// URI). `create` creates
 * the schema on an empty database; without it, a database without
 * Kopilka's schema is KP_ERR_NOT_FOUND ("run kopilka init"). Pending
 * migrations run at open under an advisory lock, so several servers
 * starting at once migrate once. Errors name the location with its
 * password elided. */
kp_err store_pg_open(const char *location, bool create, kp_store **out, kp_error *e);

/* For a command that must run with every server stopped (lots merge,
 * phones migrate), as the operation log's lock is for SQLite: takes the
 * exclusive side of the session advisory lock whose shared side every
 * serving writer connection holds (kp_group_ops.open). KP_ERR_BUSY, with a
 * sentence in e, while a server serves. Held until the store closes. */
kp_err store_pg_hold_stopped(kp_store *s, const char *command, kp_error *e);

#endif
