/*
 * payload.c: an event's figures as the JSON object it carries (and the
 * webhooks' "data" repeat): only what is known, 0 and "" left out.
 */
#include "notify/notify.h"

#include <kopilka/clock.h>

kp_err kp_notify_payload(const kp_notify_figures *f, kp_buf *out)
{
    kp_buf_reset(out);
    kp_buf_puts(out, "{");
    bool comma = false;
#define INT(name, value)                                                                          \
    if ((value) != 0) {                                                                           \
        kp_buf_json_kv_i64(out, name, value, comma);                                              \
        comma = true;                                                                             \
    }
#define STR(name, value)                                                                          \
    if ((value)[0] != '\0') {                                                                     \
        kp_buf_json_kv_str(out, name, value, comma);                                              \
        comma = true;                                                                             \
    }
    INT("earned", f->earned);
    INT("burnt", f->burnt);
    INT("points", f->points);
    if (f->has_balance) {
        kp_buf_json_kv_i64(out, "balance", f->balance, comma);
        comma = true;
    }
    if (f->n_kinds > sizeof f->by_kind / sizeof f->by_kind[0]) return KP_ERR_LIMIT;
    if (f->n_kinds > 0) {
        if (comma) kp_buf_puts(out, ",");
        kp_buf_json_key(out, "balances");
        kp_buf_puts(out, "{");
        for (size_t i = 0; i < f->n_kinds; i++)
            kp_buf_json_kv_i64(out, f->by_kind[i].kind, f->by_kind[i].points, i > 0);
        kp_buf_puts(out, "}");
        comma = true;
    }
    INT("expiry_points", f->expiry_points);
    if (f->expiry_at != 0 && f->expiry_at != KP_TIME_NEVER) {
        char at[32];
        kp_time_format(f->expiry_at, at, sizeof at);
        kp_buf_json_kv_str(out, "expiry_at", at, comma);
        comma = true;
    }
    INT("amount_minor", f->amount_minor);
    STR("currency", f->currency);
    STR("store", f->store);
    STR("receipt", f->receipt);
    STR("tier", f->tier);
    STR("tier_before", f->tier_before);
    STR("other_card", f->other_card);
    STR("reason", f->reason);
    STR("rule", f->rule);
#undef INT
#undef STR
    kp_buf_puts(out, "}");
    return out->failed ? KP_ERR_LIMIT : KP_OK;
}
