/*
 * payload.c: the figures an event carries, written as its JSON payload (kp_notify_payload).
 *
 * One flat JSON object; a figure not known (0 / "", has_balance false) is
 * left out, so a template's {{#field}} section shows only what the event
 * has. Names: earned, burnt, points, balance, balances (an object of
 * kind -> points), expiry_points, expiry_at (RFC 3339), amount_minor (minor
 * units), currency, store, receipt, tier, tier_before, other_card, reason,
 * rule, item, order, qty (a catalog order's).
 */
#include <string.h>

#include <kopilka/clock.h>

#include "notify/notify.h"

static void put_i64(kp_buf *b, bool *first, const char *key, int64_t v)
{
    if (v == 0) return;
    kp_buf_json_kv_i64(b, key, v, !*first);
    *first = false;
}

static void put_str(kp_buf *b, bool *first, const char *key, const char *v)
{
    if (v[0] == '\0') return;
    kp_buf_json_kv_str(b, key, v, !*first);
    *first = false;
}

kp_err kp_notify_payload(const kp_notify_figures *f, kp_buf *out)
{
    kp_buf_reset(out);
    kp_buf_puts(out, "{");
    bool first = true;
    put_i64(out, &first, "earned", f->earned);
    put_i64(out, &first, "burnt", f->burnt);
    put_i64(out, &first, "points", f->points);
    if (f->has_balance) {
        kp_buf_json_kv_i64(out, "balance", f->balance, !first);
        first = false;
    }
    size_t n_kinds = f->n_kinds;
    if (n_kinds > sizeof f->by_kind / sizeof f->by_kind[0]) return KP_ERR_INTERNAL;
    if (n_kinds > 0) {
        if (!first) kp_buf_puts(out, ",");
        first = false;
        kp_buf_json_key(out, "balances");
        kp_buf_puts(out, "{");
        for (size_t i = 0; i < n_kinds; i++)
            kp_buf_json_kv_i64(out, f->by_kind[i].kind, f->by_kind[i].points, i > 0);
        kp_buf_puts(out, "}");
    }
    if (f->expiry_at != 0 && f->expiry_at != KP_TIME_NEVER) {
        char ts[32];
        kp_time_format(f->expiry_at, ts, sizeof ts);
        put_i64(out, &first, "expiry_points", f->expiry_points);
        put_str(out, &first, "expiry_at", ts);
    }
    put_i64(out, &first, "amount_minor", f->amount_minor);
    put_str(out, &first, "currency", f->currency);
    put_str(out, &first, "store", f->store);
    put_str(out, &first, "receipt", f->receipt);
    put_str(out, &first, "tier", f->tier);
    put_str(out, &first, "tier_before", f->tier_before);
    put_str(out, &first, "other_card", f->other_card);
    put_str(out, &first, "reason", f->reason);
    put_str(out, &first, "rule", f->rule);
    put_str(out, &first, "item", f->item);
    put_i64(out, &first, "order", f->order_id);
    put_i64(out, &first, "qty", f->qty);
    kp_buf_puts(out, "}");
    return out->failed ? KP_ERR_NOMEM : KP_OK;
}
