/*
 * store_pg_people.c: PLACEHOLDER, owned by the helper pg-people, whose
 * branch replaces this whole file with the people part of the PostgreSQL
 * backend (kp_people_ops, people.h). It exists only so that the backend
 * links before that lands: no tables, every operation NULL.
 */
#include "store_pg_int.h"

#include <kopilka/people.h>

const char store_pg_people_schema[] = "";

kp_err store_pg_people_open(pg_store *s)
{
    (void)s;
    return KP_OK;
}

void store_pg_people_close(pg_store *s) { (void)s; }

const struct kp_people_ops store_pg_people_ops = {0};
