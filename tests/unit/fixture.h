/*
 * fixture.h: what the unit tests' fixtures share: removing a test database
 * with every file SQLite and Kopilka put beside it (-wal, -shm, the
 * operation log's two files, the key file). Header-only, static functions.
 */
#ifndef KOPILKA_TEST_FIXTURE_H
#define KOPILKA_TEST_FIXTURE_H

#include <stdio.h>
#include <unistd.h>

/* Unlinks path and its companions; a file that is not there is no error. */
static inline void fixture_remove_db(const char *path)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", ".oplog-0", ".oplog-1", ".key"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char p[4096];
        if ((size_t)snprintf(p, sizeof p, "%s%s", path, suffixes[i]) < sizeof p) unlink(p);
    }
}

#endif
