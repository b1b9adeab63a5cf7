/*
 * cards.c: batches of cards for the printer, and a card's lifecycle:
 * issued -> active (registered) -> blocked (lost, stolen: with a reason) ->
 * replaced (a new card takes over the account, its whole balance and
 * history; the old number never earns or burns again). Every transition is a
 * card event (who, when, why) and an audit entry.
 */
#include "people_int.h"
#include "currency.h"
#include "service.h"
#include "notify/notify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopilka/card_number.h>

#include "chunks.h"

kp_err kp_card_event_record(kp_office *o, const char *number, kp_card_state from, kp_card_state to,
                            const char *reason, const char *other, kp_error *e)
{
    int64_t id;
    return kp_card_event_record_id(o, number, from, to, reason, other, &id, e);
}

kp_err kp_card_event_record_id(kp_office *o, const char *number, kp_card_state from,
                               kp_card_state to, const char *reason, const char *other,
                               int64_t *id, kp_error *e)
{
    kp_card_event ev;
    memset(&ev, 0, sizeof ev);
    snprintf(ev.card, sizeof ev.card, "%s", number);
    ev.at = o->now;
    ev.from_state = from;
    ev.to_state = to;
    snprintf(ev.actor, sizeof ev.actor, "%s", o->actor.name);
    snprintf(ev.reason, sizeof ev.reason, "%s", reason ? reason : "");
    snprintf(ev.other_card, sizeof ev.other_card, "%s", other ? other : "");
    kp_err err = o->st->ops->people->card_event_insert(o->st, &ev);
    if (err) return people_storage(o->st, err, e);
    *id = ev.id;
    return KP_OK;
}

/* CARD_BLOCKED / CARD_REPLACED for card event `event_id`, key
 * "card-event:<id>", with the reason and the other card. */
static kp_err card_notify(kp_office *o, kp_notify_kind kind, const kp_card_info *c,
                          int64_t event_id, const char *reason, const char *other, kp_error *e)
{
    kp_notify_figures f;
    memset(&f, 0, sizeof f);
    snprintf(f.reason, sizeof f.reason, "%s", reason);
    snprintf(f.other_card, sizeof f.other_card, "%s", other);
    char key[KP_NOTIFY_KEY_MAX];
    snprintf(key, sizeof key, "card-event:%lld", (long long)event_id);
    return kp_notify_emit(o->st, kind, key, c->account_id, c->customer_id, c->number, 0, o->now,
                          &f, e);
}

/* ---- batches */

typedef struct issue_ctx {
    kp_office *o;
    int64_t batch_id;
    void (*emit)(void *ctx, const char *number);
    void *ctx;
    kp_err err;
} issue_ctx;

static void issue_one(void *arg, const char *number)
{
    issue_ctx *ic = arg;
    if (ic->err) return;
    if (ic->batch_id) {
        kp_card_info c;
        kp_err err = ic->o->st->ops->people->card_info_get(ic->o->st, number, &c);
        if (err == KP_OK) {
            c.batch_id = ic->batch_id;
            err = ic->o->st->ops->people->card_info_put(ic->o->st, &c, ic->o->now);
        }
        if (err) {
            ic->err = err;
            return;
        }
    }
    if (ic->emit) ic->emit(ic->ctx, number);
}

kp_err kp_cards_issue_batch(kp_office *o, const char *name, int64_t count,
                            void (*emit)(void *ctx, const char *number), void *ctx,
                            int64_t *batch_id, kp_error *e)
{
    return kp_cards_issue_batch_chunks(o, name, count, emit, ctx, NULL, batch_id, e);
}

kp_err kp_cards_issue_batch_chunks(kp_office *o, const char *name, int64_t count,
                                   void (*emit)(void *ctx, const char *number), void *ctx,
                                   struct kp_chunks *ch, int64_t *batch_id, kp_error *e)
{
    *batch_id = 0;
    kp_err err = kp_office_require(o, KP_PERM_CARD_ISSUE, e);
    if (err) return err;
    if (strlen(name) >= KP_STR_MAX)
        return kp_error_set(e, KP_ERR_INVALID, "name", "must be at most %d bytes", KP_STR_MAX - 1);
    for (const char *p = name; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == ',' || *p == '"')
            return kp_error_set(e, KP_ERR_INVALID, "name",
                                "must not contain control characters, commas or quotes");
    issue_ctx ic = {.o = o, .emit = emit, .ctx = ctx};
    kp_card_batch b;
    memset(&b, 0, sizeof b);
    if (name[0]) {
        err = o->st->ops->people->batch_get(o->st, 0, name, &b);
        if (err == KP_OK)
            return kp_error_set(e, KP_ERR_CONFLICT, "name",
                                "batch \"%s\" exists already (issued at %lld with %lld cards)",
                                name, (long long)b.created_at, (long long)b.count);
        if (err != KP_ERR_NOT_FOUND) return people_storage(o->st, err, e);
        snprintf(b.name, sizeof b.name, "%s", name);
        b.count = count;
        b.created_at = o->now;
        snprintf(b.actor, sizeof b.actor, "%s", o->actor.name);
        if (count >= 1 && (err = o->st->ops->people->batch_insert(o->st, &b)))
            return people_storage(o->st, err, e);
        ic.batch_id = b.id;
    }
    if ((err = kp_service_cards_issue_chunks(o->st, count, o->now, issue_one, &ic, ch, e)))
        return ic.err ? people_storage(o->st, ic.err, e) : err;
    if (ic.err) return people_storage(o->st, ic.err, e);
    char target[48];
    snprintf(target, sizeof target, "batch:%lld", (long long)b.id);
    if ((err = kp_office_audit(o, "card.issue", target, "count=%lld batch=%s", (long long)count,
                               name)))
        return people_storage(o->st, err, e);
    *batch_id = b.id;
    return KP_OK;
}

static void collect_number(void *ctx, const char *number)
{
    kp_buf *b = ctx;
    if (b->len > 1) kp_buf_puts(b, ",");
    kp_buf_json_str(b, number);
}

kp_err kp_cards_batch_http(kp_office *o, const char *body, size_t len, kp_buf *out, kp_error *e)
{
    kp_err err = kp_office_require(o, KP_PERM_CARD_ISSUE, e);
    if (err) return err;
    json_t *root = people_json_load(body, len, e);
    if (root == NULL) return KP_ERR_INVALID;
    static const char *const keys[] = {"name", "count", NULL};
    char name[KP_STR_MAX];
    int64_t count = 0, id = 0;
    kp_buf numbers;
    kp_buf_init(&numbers, 32 * 10000 + 64);
    if ((err = people_json_keys(root, keys, e)) ||
        (err = people_json_str(root, "name", true, name, KP_STR_MAX - 1, e)) ||
        (err = people_json_int(root, "count", true, 1, 10000, &count, e)))
        goto out;
    kp_buf_puts(&numbers, "[");
    if ((err = kp_cards_issue_batch(o, name, count, collect_number, &numbers, &id, e))) goto out;
    kp_buf_puts(&numbers, "]");
    kp_buf_reset(out);
    kp_buf_puts(out, "{\"batch\":{");
    kp_buf_json_kv_i64(out, "id", id, false);
    kp_buf_json_kv_str(out, "name", name, true);
    kp_buf_json_kv_i64(out, "count", count, true);
    people_time_kv(out, "created_at", o->now);
    kp_buf_printf(
        out, ",\"export\":\"/v1/admin/card-batches/%lld/cards.csv\"},\"cards\":", (long long)id);
    kp_buf_append(out, numbers.data, numbers.len);
    kp_buf_puts(out, "}");
    if (out->failed || numbers.failed)
        err = kp_error_set(e, KP_ERR_NOMEM, "", "the answer is too large");
out:
    kp_buf_release(&numbers);
    json_decref(root);
    return err;
}

kp_err kp_cards_batch_each(kp_office *o, const char *name,
                           bool (*each)(void *ctx, const kp_card_info *card), void *ctx,
                           kp_card_batch *batch, kp_error *e)
{
    kp_err err = kp_office_require(o, KP_PERM_CARD_ISSUE, e);
    if (err) return err;
    err = o->st->ops->people->batch_get(o->st, 0, name, batch);
    if (err == KP_ERR_NOT_FOUND)
        return kp_error_set(e, err, "batch", "no batch of cards named \"%s\"", name);
    if (err) return people_storage(o->st, err, e);
    if ((err = o->st->ops->people->batch_cards_each(o->st, batch->id, each, ctx)))
        return people_storage(o->st, err, e);
    return KP_OK;
}

typedef struct csv_ctx {
    kp_buf *out;
    const char *batch;
} csv_ctx;

static bool csv_card(void *arg, const kp_card_info *c)
{
    csv_ctx *cc = arg;
    kp_buf_printf(cc->out, "%s,%s,%s,/v1/cards/%s/barcode.svg,/v1/cards/%s/qr.svg\n", c->number,
                  cc->batch, kp_card_state_name(c->state), c->number, c->number);
    return !cc->out->failed;
}

kp_err kp_cards_batch_csv(kp_office *o, int64_t id, const char *name, kp_buf *out,
                          int64_t *batch_id_out, kp_error *e)
{
    kp_err err = kp_office_require(o, KP_PERM_CARD_ISSUE, e);
    if (err) return err;
    kp_card_batch b;
    err = o->st->ops->people->batch_get(o->st, id, name, &b);
    if (err == KP_ERR_NOT_FOUND) return kp_error_set(e, err, "batch", "no such batch of cards");
    if (err) return people_storage(o->st, err, e);
    kp_buf_reset(out);
    kp_buf_puts(out, "number,batch,state,barcode,qr\n");
    csv_ctx cc = {out, b.name};
    if ((err = o->st->ops->people->batch_cards_each(o->st, b.id, csv_card, &cc)))
        return people_storage(o->st, err, e);
    if (out->failed) return kp_error_set(e, KP_ERR_NOMEM, "", "the batch is too large to export");
    if (batch_id_out) *batch_id_out = b.id;
    return KP_OK;
}

/* ---- one card */

/* The card `number`; a customer's own session finds only their own cards:
 * anyone else's is as unknown as a number never issued. */
static kp_err find_card(kp_office *o, const char *number, kp_card_info *c, kp_error *e)
{
    kp_err err = o->st->ops->people->card_info_get(o->st, number, c);
    if (err == KP_OK && kp_office_is_self(o) && c->customer_id != o->actor.customer_id)
        err = KP_ERR_NOT_FOUND;
    if (err == KP_ERR_NOT_FOUND)
        return kp_card_unknown(number, "card", e);
    return err ? people_storage(o->st, err, e) : KP_OK;
}

kp_err kp_card_picture(kp_office *o, kp_barcode_kind kind, bool png, const char *number,
                       kp_buf *out, kp_error *e)
{
    kp_err err = kp_office_require(o, KP_PERM_CARD_READ, e);
    kp_card_info c;
    if (err || (err = find_card(o, number, &c, e))) return err;
    return png ? kp_barcode_png(kind, number, out, e) : kp_barcode_svg(kind, number, out, e);
}

kp_err kp_card_detail(kp_office *o, const char *number, kp_buf *out, kp_error *e)
{
    kp_err err = kp_office_require(o, KP_PERM_CARD_READ, e);
    kp_card_info c;
    if (err || (err = find_card(o, number, &c, e))) return err;
    kp_card_event ev[64];
    size_t n = 0;
    if ((err = o->st->ops->people->card_events(o->st, number, ev, 64, &n)))
        return people_storage(o->st, err, e);
    kp_buf_reset(out);
    kp_buf_puts(out, "{");
    kp_buf_json_kv_str(out, "card", c.number, false);
    kp_buf_json_kv_str(out, "state", kp_card_state_name(c.state), true);
    kp_buf_puts(out, c.registered ? ",\"registered\":true" : ",\"registered\":false");
    kp_buf_json_kv_i64(out, "account_id", c.account_id, true);
    kp_buf_puts(out, ",\"customer\":");
    if (c.customer_id)
        kp_buf_i64(out, c.customer_id);
    else
        kp_buf_puts(out, "null");
    kp_buf_puts(out, ",\"batch\":");
    kp_card_batch b;
    if (c.batch_id && o->st->ops->people->batch_get(o->st, c.batch_id, NULL, &b) == KP_OK) {
        kp_buf_puts(out, "{");
        kp_buf_json_kv_i64(out, "id", b.id, false);
        kp_buf_json_kv_str(out, "name", b.name, true);
        kp_buf_puts(out, "}");
    } else {
        kp_buf_puts(out, "null");
    }
    kp_buf_puts(out, c.may_burn ? ",\"may_spend\":true" : ",\"may_spend\":false");
    kp_buf_json_kv_str(out, "block_reason", c.reason, true);
    kp_buf_json_kv_str(out, "replaced_by", c.replaced_by, true);
    if (o->sc && o->st->ops->account_load(o->st, c.account_id, &o->sc->account) == KP_OK) {
        /* What the till would show beside the balance: spendable points,
         * the individual discount and the lots they come from. */
        const kp_account *a = &o->sc->account;
        kp_buf_json_kv_i64(out, "balance", a->balance, true);
        kp_buf_json_kv_i64(out, "available", kp_account_spendable(a, o->now), true);
        if ((err = kp_service_balances_json(o->st, o->program ? o->program->currency : "", a,
                                            o->now, out, e)))
            return err;
        kp_account_rules rules;
        if ((err = o->st->ops->triggers->account_rules_get(o->st, c.account_id, &rules)))
            return people_storage(o->st, err, e);
        kp_buf_puts(out, ",\"personal_discount\":");
        if (rules.has_personal_discount) {
            char rate[16];
            kp_percent_format(rules.personal_discount_bp, rate, sizeof rate);
            kp_buf_json_str(out, rate);
        } else {
            kp_buf_puts(out, "null");
        }
        kp_service_lots_json(out, a);
    }
    kp_buf_puts(out, ",\"events\":[");
    for (size_t i = 0; i < n; i++) {
        kp_buf_puts(out, i ? ",{" : "{");
        kp_buf_json_kv_i64(out, "id", ev[i].id, false);
        people_time_kv(out, "at", ev[i].at);
        kp_buf_json_kv_str(out, "from", kp_card_state_name(ev[i].from_state), true);
        kp_buf_json_kv_str(out, "to", kp_card_state_name(ev[i].to_state), true);
        kp_buf_json_kv_str(out, "actor", ev[i].actor, true);
        kp_buf_json_kv_str(out, "reason", ev[i].reason, true);
        kp_buf_json_kv_str(out, "other_card", ev[i].other_card, true);
        kp_buf_puts(out, "}");
    }
    kp_buf_puts(out, "]}");
    return out->failed ? kp_error_set(e, KP_ERR_NOMEM, "", "the answer is too large") : KP_OK;
}

static kp_err reason_of(const char *body, size_t len, bool required, char *reason, char *new_card,
                        kp_error *e)
{
    json_t *root = people_json_load(body, len, e);
    if (root == NULL) return KP_ERR_INVALID;
    static const char *const keys[] = {"reason", "new_card", NULL};
    static const char *const keys_no_card[] = {"reason", NULL};
    kp_err err = people_json_keys(root, new_card ? keys : keys_no_card, e);
    if (err == KP_OK) err = people_json_str(root, "reason", required, reason, KP_REASON_MAX - 1, e);
    if (err == KP_OK && new_card)
        err = people_json_str(root, "new_card", false, new_card, KP_STR_MAX - 1, e);
    json_decref(root);
    return err;
}

static kp_err audit_card(kp_office *o, const char *action, const char *number, const char *fmt,
                         const char *a, const char *b, kp_error *e)
{
    char target[KP_STR_MAX + 8];
    snprintf(target, sizeof target, "card:%s", number);
    kp_err err = kp_office_audit(o, action, target, fmt, a, b);
    return err ? people_storage(o->st, err, e) : KP_OK;
}

kp_err kp_card_block(kp_office *o, const char *number, const char *body, size_t len, kp_buf *out,
                     kp_error *e)
{
    kp_err err = kp_office_require(o, KP_PERM_CARD_MANAGE, e);
    char reason[KP_REASON_MAX];
    kp_card_info c;
    if (err || (err = reason_of(body, len, true, reason, NULL, e)) ||
        (err = find_card(o, number, &c, e)))
        return err;
    if (c.state == KP_CARD_BLOCKED || c.state == KP_CARD_REPLACED)
        return kp_error_setr(e, KP_ERR_CONFLICT, KP_REASON_CARD_CONFLICT, "card",
                             "card %s is already %s", number, kp_card_state_name(c.state));
    kp_card_state from = c.state;
    c.state = KP_CARD_BLOCKED;
    snprintf(c.reason, sizeof c.reason, "%s", reason);
    if ((err = o->st->ops->people->card_info_put(o->st, &c, o->now)))
        return people_storage(o->st, err, e);
    int64_t event_id = 0;
    if ((err = kp_card_event_record_id(o, number, from, KP_CARD_BLOCKED, reason, "", &event_id,
                                       e)) ||
        (err = card_notify(o, KP_NOTIFY_CARD_BLOCKED, &c, event_id, reason, "", e)) ||
        (err = audit_card(o, "card.block", number, "reason=%s%s", reason, "", e)))
        return err;
    return kp_card_detail(o, number, out, e);
}

kp_err kp_card_unblock(kp_office *o, const char *number, const char *body, size_t len, kp_buf *out,
                       kp_error *e)
{
    kp_err err = kp_office_require(o, KP_PERM_CARD_MANAGE, e);
    char reason[KP_REASON_MAX];
    kp_card_info c;
    if (err || (err = reason_of(body, len, false, reason, NULL, e)) ||
        (err = find_card(o, number, &c, e)))
        return err;
    if (c.state != KP_CARD_BLOCKED)
        return kp_error_setr(e, KP_ERR_CONFLICT, KP_REASON_CARD_CONFLICT, "card",
                             "card %s is %s, not blocked", number, kp_card_state_name(c.state));
    if (c.customer_id) {
        kp_customer_row *row = malloc(sizeof *row);
        if (row == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
        err = o->st->ops->people->customer_get(o->st, c.customer_id, row);
        bool erased = err == KP_OK && row->state == KP_CUSTOMER_ERASED;
        free(row);
        if (erased)
            return kp_error_setr(e, KP_ERR_CONFLICT, KP_REASON_CARD_CONFLICT, "card",
                                 "card %s belonged to an erased customer and stays blocked",
                                 number);
    }
    kp_card_state to = c.registered ? KP_CARD_ACTIVE : KP_CARD_ISSUED;
    c.state = to;
    c.reason[0] = '\0';
    if ((err = o->st->ops->people->card_info_put(o->st, &c, o->now)))
        return people_storage(o->st, err, e);
    if ((err = kp_card_event_record(o, number, KP_CARD_BLOCKED, to, reason, "", e)) ||
        (err = audit_card(o, "card.unblock", number, "reason=%s%s", reason, "", e)))
        return err;
    return kp_card_detail(o, number, out, e);
}

static void keep_number(void *ctx, const char *number)
{
    snprintf(ctx, KP_STR_MAX, "%s", number);
}

kp_err kp_card_replace(kp_office *o, const char *number, const char *body, size_t len, kp_buf *out,
                       kp_error *e)
{
    kp_err err = kp_office_require(o, KP_PERM_CARD_MANAGE, e);
    char reason[KP_REASON_MAX], new_number[KP_STR_MAX];
    kp_card_info old, fresh;
    const kp_people_ops *pp = o->st->ops->people;
    if (err || (err = reason_of(body, len, true, reason, new_number, e)) ||
        (err = find_card(o, number, &old, e)))
        return err;
    if (old.state == KP_CARD_REPLACED)
        return kp_error_setr(e, KP_ERR_CONFLICT, KP_REASON_CARD_CONFLICT, "card",
                             "card %s was already replaced by %s", number, old.replaced_by);
    if (new_number[0] == '\0') {
        /* A new number from the card issuer, with an empty account. */
        if ((err = kp_service_cards_issue(o->st, 1, o->now, keep_number, new_number, e)))
            return err;
    }
    if (strcmp(new_number, number) == 0)
        return kp_error_set(e, KP_ERR_INVALID, "new_card", "must be another card");
    err = pp->card_info_get(o->st, new_number, &fresh);
    if (err == KP_ERR_NOT_FOUND)
        return kp_card_unknown(new_number, "new_card", e);
    bool empty = false;
    if (err == KP_OK) err = pp->account_is_empty(o->st, fresh.account_id, &empty);
    if (err) return people_storage(o->st, err, e);
    if (fresh.state != KP_CARD_ISSUED || fresh.registered || fresh.customer_id || !empty)
        return kp_error_setr(e, KP_ERR_CONFLICT, KP_REASON_CARD_CONFLICT, "new_card",
                             "card %s is not a fresh card: a replacement must be issued, "
                             "unregistered and unused",
                             new_number);
    /* The new card takes over the account: balance, lots, history. */
    fresh.account_id = old.account_id;
    fresh.registered = old.registered;
    fresh.state = old.registered ? KP_CARD_ACTIVE : KP_CARD_ISSUED;
    fresh.customer_id = old.customer_id;
    fresh.may_burn = old.may_burn;
    kp_card_state from = old.state;
    old.state = KP_CARD_REPLACED;
    snprintf(old.replaced_by, sizeof old.replaced_by, "%s", new_number);
    if (old.reason[0] == '\0') snprintf(old.reason, sizeof old.reason, "%s", reason);
    if ((err = pp->card_info_put(o->st, &old, o->now)) ||
        (err = pp->card_info_put(o->st, &fresh, o->now)))
        return people_storage(o->st, err, e);
    int64_t event_id = 0;
    if ((err = kp_card_event_record_id(o, number, from, KP_CARD_REPLACED, reason, new_number,
                                       &event_id, e)) ||
        (err = card_notify(o, KP_NOTIFY_CARD_REPLACED, &old, event_id, reason, new_number, e)) ||
        (err = kp_card_event_record(o, new_number, KP_CARD_ISSUED, fresh.state, "replacement",
                                    number, e)) ||
        (err =
             audit_card(o, "card.replace", number, "new_card=%s reason=%s", new_number, reason, e)))
        return err;
    return kp_card_detail(o, new_number, out, e);
}
