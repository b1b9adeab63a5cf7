/*
 * emit.c: writing a notification event beside the change that causes it
 * (kp_notify_emit), filling one for kp_op_row.notify (kp_notify_event_fill),
 * and the figures of an account after a ledger plan, computed in memory so
 * the till's path reads nothing more (kp_notify_figures_after).
 */
#include <stdio.h>
#include <string.h>

#include "notify/notify.h"

enum { PAYLOAD_MAX = 16 * 1024 };

kp_err kp_notify_event_fill(kp_notify_event *ev, kp_notify_kind kind, const char *key,
                            int64_t account_id, int64_t customer_id, const char *card,
                            int64_t op_id, kp_time at, const kp_notify_figures *f,
                            kp_buf *payload, kp_error *e)
{
    memset(ev, 0, sizeof *ev);
    if (kp_notify_kind_name(kind) == NULL)
        return kp_error_set(e, KP_ERR_INTERNAL, "kind", "unknown notification kind %d", (int)kind);
    if (key && strlen(key) >= sizeof ev->key)
        return kp_error_set(e, KP_ERR_INVALID, "key",
                            "a notification's key must be under %d bytes, got %zu",
                            KP_NOTIFY_KEY_MAX, strlen(key));
    if (card && strlen(card) >= sizeof ev->card)
        return kp_error_set(e, KP_ERR_INVALID, "card", "must be under %d bytes", KP_STR_MAX);
    snprintf(ev->key, sizeof ev->key, "%s", key ? key : "");
    ev->kind = kind;
    ev->account_id = account_id;
    ev->customer_id = customer_id;
    snprintf(ev->card, sizeof ev->card, "%s", card ? card : "");
    ev->op_id = op_id;
    ev->at = at;
    kp_notify_figures none;
    if (f == NULL) {
        memset(&none, 0, sizeof none);
        f = &none;
    }
    kp_err err = kp_notify_payload(f, payload);
    if (err == KP_ERR_NOMEM)
        return kp_error_set(e, err, "", "the figures of a %s notification are too large",
                            kp_notify_kind_name(kind));
    if (err)
        return kp_error_set(e, err, "", "the figures of a %s notification are malformed",
                            kp_notify_kind_name(kind));
    ev->sealed = false;
    ev->payload = (uint8_t *)payload->data;
    ev->payload_len = payload->len;
    return KP_OK;
}

kp_err kp_notify_emit(kp_store *st, kp_notify_kind kind, const char *key, int64_t account_id,
                      int64_t customer_id, const char *card, int64_t op_id, kp_time at,
                      const kp_notify_figures *f, kp_error *e)
{
    if (key == NULL || key[0] == '\0')
        return kp_error_set(e, KP_ERR_INTERNAL, "key", "a notification event needs a key");
    kp_buf payload;
    kp_buf_init(&payload, PAYLOAD_MAX);
    kp_notify_event ev;
    kp_err err = kp_notify_event_fill(&ev, kind, key, account_id, customer_id, card, op_id, at, f,
                                      &payload, e);
    if (err == KP_OK && (err = st->ops->notify->event_insert(st, &ev)))
        kp_error_set(e, err, "", "storage failed: %s", st->last_error);
    kp_buf_release(&payload);
    return err;
}

/* ---- figures after a plan */

typedef struct lot_after {
    const char *kind;
    int64_t id, remaining;
    kp_time expires_at;
} lot_after;

static void kind_add(kp_notify_figures *f, const char *kind, int64_t points)
{
    size_t cap = sizeof f->by_kind / sizeof f->by_kind[0];
    for (size_t i = 0; i < f->n_kinds; i++)
        if (strcmp(f->by_kind[i].kind, kind) == 0) {
            f->by_kind[i].points += points;
            return;
        }
    /* A program has at most KP_POINT_KINDS_MAX (8) kinds, the array's size. */
    if (f->n_kinds == cap) return;
    snprintf(f->by_kind[f->n_kinds].kind, sizeof f->by_kind[0].kind, "%s", kind);
    f->by_kind[f->n_kinds].points = points;
    f->n_kinds++;
}

void kp_notify_figures_after(const kp_account *a, const kp_ledger_plan *plan, kp_time now,
                             kp_notify_figures *f)
{
    static _Thread_local lot_after lots[KP_LOTS_MAX + 1];
    size_t n = 0;
    bool unknown = false;
    for (size_t i = 0; i < a->n_lots && n < KP_LOTS_MAX; i++)
        lots[n++] = (lot_after){a->lots[i].kind, a->lots[i].id, a->lots[i].remaining,
                                a->lots[i].expires_at};
    f->has_balance = true;
    f->balance = a->balance;
    if (plan) {
        f->balance = plan->balance_after;
        for (size_t c = 0; c < plan->n_changes; c++) {
            bool found = false;
            for (size_t i = 0; i < n && !found; i++)
                if (lots[i].id == plan->changes[c].lot_id) {
                    lots[i].remaining += plan->changes[c].delta;
                    found = true;
                }
            /* A return refills spent lots the account did not load: their
             * kinds and expiries are not known here. */
            if (!found && plan->changes[c].delta > 0) unknown = true;
        }
        if (plan->has_new_lot) {
            const kp_lot *nl = &plan->new_lot;
            bool joined = false;
            for (size_t i = 0; nl->id != 0 && i < n && !joined; i++)
                if (lots[i].id == nl->id) {
                    lots[i].remaining += nl->amount;
                    if (nl->expires_at > lots[i].expires_at) lots[i].expires_at = nl->expires_at;
                    joined = true;
                }
            if (!joined) lots[n++] = (lot_after){nl->kind, 0, nl->amount, nl->expires_at};
        }
    }
    f->n_kinds = 0;
    f->expiry_at = 0;
    f->expiry_points = 0;
    for (size_t i = 0; i < n && !unknown; i++) {
        if (lots[i].remaining <= 0) continue;
        kind_add(f, lots[i].kind, lots[i].remaining);
        kp_time x = lots[i].expires_at;
        if (x == KP_TIME_NEVER || x <= now) continue;
        if (f->expiry_at == 0 || x < f->expiry_at) {
            f->expiry_at = x;
            f->expiry_points = 0;
        }
        if (x == f->expiry_at) f->expiry_points += lots[i].remaining;
    }
}
