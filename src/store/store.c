/* store.c: opening a store by location, and helpers shared by backends. */
#include <kopilka/store.h>

#include <stdlib.h>
#include <string.h>

#include "store_pg.h"
#include "store_sqlite.h"

const char *kp_card_state_name(kp_card_state state)
{
    switch (state) {
    case KP_CARD_ISSUED: return "issued";
    case KP_CARD_ACTIVE: return "active";
    case KP_CARD_BLOCKED: return "blocked";
    case KP_CARD_REPLACED: return "replaced";
    }
    return "unknown";
}

void kp_op_row_release(kp_op_row *row)
{
    free(row->detail);
    free(row->response);
    row->detail = row->response = NULL;
}

kp_err kp_store_open(const char *location, bool create, kp_store **out, kp_error *e)
{
    *out = NULL;
    if (store_pg_location(location)) return store_pg_open(location, create, out, e);
    return store_sqlite_open(location, create, out, e);
}

bool kp_store_is_file(const char *location) { return !store_pg_location(location); }

void kp_store_close(kp_store *s)
{
    if (s) s->ops->close(s);
}
