/* store_sqlite_vfs.h: the "kopilka" SQLite VFS (unix, with batched WAL writes). */
#ifndef KOPILKA_STORE_SQLITE_VFS_H
#define KOPILKA_STORE_SQLITE_VFS_H

#include <stdbool.h>

#define STORE_SQLITE_VFS_NAME "kopilka"

/* Registers the VFS on first use; returns its name, or NULL when it could
 * not be registered (callers then use SQLite's default VFS). */
const char *store_sqlite_vfs(void);

#endif
