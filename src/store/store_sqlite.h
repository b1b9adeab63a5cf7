/* store_sqlite.h: the SQLite backend of kp_store (store.h). */
#ifndef KOPILKA_STORE_SQLITE_H
#define KOPILKA_STORE_SQLITE_H

#include <kopilka/store.h>

/* Opens (and with `create`, creates) a SQLite database at `path` in WAL mode
 * with synchronous=FULL: a committed transaction survives a crash. */
kp_err store_sqlite_open(const char *path, bool create, kp_store **out, kp_error *e);

#endif
