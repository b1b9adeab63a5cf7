/*
 * store_sqlite_group.h: SQLite's group commit (kp_group_ops, store.h), the
 * internals store_sqlite.c and store_sqlite_group.c share. The operation
 * log (oplog.h) makes groups of purchases and returns durable while the
 * database transaction stays open across them; store_sqlite_group.c holds
 * that policy, the log's marks, the WAL's deferred sync and the passive
 * checkpoint.
 */
#ifndef KOPILKA_STORE_SQLITE_GROUP_H
#define KOPILKA_STORE_SQLITE_GROUP_H

#include <sqlite3.h>

#include <kopilka/store.h>

#include "store_sqlite_cache.h"

typedef struct sqlite_group sqlite_group;

extern const kp_group_ops store_sqlite_group_ops;

/* Frees a connection's group state without touching the database (the
 * connection is closing); NULL is ignored. */
void store_sqlite_group_free(sqlite_group *g);

/* Defined in store_sqlite.c: where a connection keeps its group state
 * (NULL while it is not a group writer), its sqlite3 handle, and integers
 * of its meta table (0 when the key is absent). */
sqlite_group **store_sqlite_group_slot(kp_store *s);
sqlite3 *store_sqlite_db(kp_store *s);
kp_err store_sqlite_meta_int_get(kp_store *s, const char *key, int64_t *value);
kp_err store_sqlite_meta_int_set(kp_store *s, const char *key, int64_t value);
/* The writer's cache (store_sqlite_cache.h) on connection s: enabled by a
 * group writer with a log after its recovery, filled from the database
 * (preload: outside a transaction; an error leaves it empty) at the
 * writer's first group, so a CLI command that opens the group ops only to
 * recover reads nothing; disabled with its figures in *stats (may be NULL)
 * at close. */
kp_err store_sqlite_cache_enable(kp_store *s);
kp_err store_sqlite_cache_preload(kp_store *s);
void store_sqlite_cache_disable(kp_store *s, sqlite_cache_stats *stats);

#endif
