/*
 * export.c: everything Kopilka keeps about one customer, as one JSON
 * document (GET /v1/me/export, docs/api.md "The customer's own API"): the
 * personal data and consents, the cards with their events, the
 * notification preferences, the whole history with why every point moved,
 * the family invitations, and the messages sent to them with their texts.
 * Written from the same operations the back office and the cabinet use;
 * it only reads (the caller audits it).
 */
#include "notify/office.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/people_int.h"

enum {
    EXPORT_HISTORY_MAX = 100000, /* operations; past it "history_complete" is false */
    EXPORT_MESSAGES_MAX = 10000, /* messages; past it "messages_complete" is false */
    EXPORT_PAGE = 100,
    EXPORT_CARD_EVENTS_MAX = 256, /* events of one card */
};

static kp_err cards_json(kp_office *o, int64_t customer_id, kp_buf *out, kp_error *e)
{
    kp_card_info *cards = NULL;
    size_t n = 0;
    kp_err err = people_cards_all(o->st, customer_id, &cards, &n, e);
    kp_card_event *ev = calloc(EXPORT_CARD_EVENTS_MAX, sizeof *ev);
    if (err == KP_OK && ev == NULL) err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    kp_buf_puts(out, ",\"cards\":[");
    for (size_t i = 0; i < n && err == KP_OK; i++) {
        size_t ne = 0;
        if ((err = o->st->ops->people->card_events(o->st, cards[i].number, ev,
                                                   EXPORT_CARD_EVENTS_MAX, &ne))) {
            err = people_storage(o->st, err, e);
            break;
        }
        kp_buf_puts(out, i ? ",{" : "{");
        kp_buf_json_kv_str(out, "number", cards[i].number, false);
        kp_buf_json_kv_str(out, "state", kp_card_state_name(cards[i].state), true);
        kp_buf_puts(out, cards[i].may_burn ? ",\"may_spend\":true" : ",\"may_spend\":false");
        kp_buf_json_kv_str(out, "block_reason", cards[i].reason, true);
        kp_buf_json_kv_str(out, "replaced_by", cards[i].replaced_by, true);
        /* What happened to the card, not which member of staff did it. */
        kp_buf_puts(out, ",\"events\":[");
        for (size_t k = 0; k < ne; k++) {
            kp_buf_puts(out, k ? ",{" : "{");
            kp_buf_json_kv_str(out, "from", kp_card_state_name(ev[k].from_state), false);
            kp_buf_json_kv_str(out, "to", kp_card_state_name(ev[k].to_state), true);
            people_time_kv(out, "at", ev[k].at);
            kp_buf_json_kv_str(out, "reason", ev[k].reason, true);
            kp_buf_puts(out, "}");
        }
        kp_buf_puts(out, "]}");
    }
    kp_buf_puts(out, "]");
    free(ev);
    free(cards);
    return err;
}

static kp_err history_json(kp_office *o, int64_t account_id, kp_buf *out, kp_error *e)
{
    kp_buf_puts(out, ",\"history\":[");
    int64_t before = 0, total = 0;
    size_t n = EXPORT_PAGE;
    kp_err err = KP_OK;
    while (err == KP_OK && n == EXPORT_PAGE && total < EXPORT_HISTORY_MAX) {
        int64_t last = 0;
        err =
            people_history_items(o, account_id, before, EXPORT_PAGE, total > 0, out, &n, &last, e);
        total += (int64_t)n;
        before = last;
    }
    kp_buf_puts(out, "]");
    kp_buf_puts(out,
                n == EXPORT_PAGE ? ",\"history_complete\":false" : ",\"history_complete\":true");
    return err;
}

static void str_or_null(kp_buf *out, const char *key, const char *v)
{
    kp_buf_puts(out, ",");
    kp_buf_json_key(out, key);
    if (v && v[0])
        kp_buf_json_str(out, v);
    else
        kp_buf_puts(out, "null");
}

static kp_err messages_json(kp_office *o, const kp_notify_env *env, int64_t customer_id,
                            kp_buf *out, kp_error *e)
{
    kp_message *list = calloc(EXPORT_PAGE, sizeof *list);
    if (list == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    kp_message_filter f = {.customer_id = customer_id, .state = -1};
    int64_t before = 0, total = 0;
    size_t n = EXPORT_PAGE;
    kp_err err = KP_OK;
    kp_buf_puts(out, ",\"messages\":[");
    while (err == KP_OK && n == EXPORT_PAGE && total < EXPORT_MESSAGES_MAX) {
        n = 0;
        if ((err = o->st->ops->notify->messages_list(o->st, &f, before, list, EXPORT_PAGE, &n))) {
            err = people_storage(o->st, err, e);
            break;
        }
        for (size_t i = 0; i < n; i++) {
            const kp_message *m = &list[i];
            kp_buf_puts(out, total + (int64_t)i ? ",{" : "{");
            kp_buf_json_kv_i64(out, "id", m->id, false);
            kp_buf_json_kv_str(out, "kind", kp_notify_kind_name(m->kind), true);
            kp_buf_json_kv_str(out, "channel", kp_channel_name(m->channel), true);
            kp_buf_json_kv_str(out, "state", kp_message_state_name(m->state), true);
            people_time_kv(out, "created_at", m->created_at);
            people_time_kv(out, "sent_at", m->sent_at);
            /* The texts, opened; a login code's is left out (a secret,
             * used up or expired, that should not travel again). */
            kp_outgoing og;
            memset(&og, 0, sizeof og);
            kp_error oe;
            bool open = m->kind != KP_NOTIFY_LOGIN_CODE && m->channel != KP_CHANNEL_WEBHOOK &&
                        m->sealed_len > 0 && kp_notify_open(env, m, &og, &oe) == KP_OK;
            str_or_null(out, "to", open ? og.to : "");
            str_or_null(out, "subject", open ? og.subject : "");
            str_or_null(out, "text", open ? og.text : "");
            kp_outgoing_release(&og);
            kp_buf_puts(out, "}");
            before = m->id;
        }
        total += (int64_t)n;
        for (size_t i = 0; i < n; i++) kp_message_release(&list[i]);
    }
    free(list);
    kp_buf_puts(out, "]");
    kp_buf_puts(out,
                n == EXPORT_PAGE ? ",\"messages_complete\":false" : ",\"messages_complete\":true");
    return err;
}

kp_err kp_office_export(kp_office *o, const kp_notify_env *env, int64_t customer_id, kp_buf *out,
                        kp_error *e)
{
    kp_err err = kp_office_require_customer(o, KP_PERM_CUSTOMER_READ, customer_id, e);
    if (err == KP_OK) err = people_need_key(o, e);
    if (err) return err;
    kp_customer_row *row = malloc(sizeof *row);
    kp_buf part;
    kp_buf_init(&part, 1 << 20);
    if (row == NULL) {
        err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
        goto out;
    }
    err = o->st->ops->people->customer_get(o->st, customer_id, row);
    if (err == KP_ERR_NOT_FOUND) {
        err = kp_error_set(e, err, "customer", "no customer %lld", (long long)customer_id);
        goto out;
    }
    if (err) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    kp_buf_reset(out);
    kp_buf_puts(out, "{");
    kp_buf_json_kv_str(out, "format", "kopilka-customer-export/1", false);
    people_time_kv(out, "exported_at", o->now);
    kp_buf_puts(out, ",\"customer\":");
    if ((err = kp_customer_json(o, row, out, e)) || (err = cards_json(o, customer_id, out, e)))
        goto out;
    kp_buf_puts(out, ",\"notifications\":{");
    if ((err = kp_prefs_json(o, customer_id, out, e))) goto out;
    kp_buf_puts(out, "}");
    if ((err = history_json(o, row->account_id, out, e))) goto out;
    if (kp_office_is_self(o)) {
        if ((err = kp_family_invitations(o, &part, e))) goto out;
        kp_buf_puts(out, ",\"invitations\":");
        kp_buf_append(out, part.data, part.len);
    }
    if ((err = messages_json(o, env, customer_id, out, e))) goto out;
    kp_buf_puts(out, "}");
    if (out->failed) err = kp_error_set(e, KP_ERR_NOMEM, "", "the export is too large");
out:
    kp_buf_release(&part);
    free(row);
    return err;
}
