/*
 * store_pg_triggers.c: PLACEHOLDER, owned by the helper pg-triggers, whose
 * branch replaces this whole file with the rules part of the PostgreSQL
 * backend (kp_triggers_ops, triggers.h). It exists only so that the backend
 * links before that lands: no tables, every operation NULL.
 */
#include "store_pg_int.h"

const char store_pg_triggers_schema[] = "";

kp_err store_pg_triggers_open(pg_store *s)
{
    (void)s;
    return KP_OK;
}

void store_pg_triggers_close(pg_store *s) { (void)s; }

const kp_triggers_ops store_pg_triggers_ops = {0};
