/*
 * family.c: shared accounts and transfers of points between customers.
 *
 * A family is an owner's account used as a shared pot (seed 000): members
 * keep their own cards, which point at the pot while they belong to it, so
 * every member's purchases earn into it; the owner decides who may spend
 * (a member who may not has burns refused at the till, till.c). Joining
 * moves the member's points into the pot; leaving points the member's cards
 * back at their own account (the points earned meanwhile stay in the pot).
 *
 * Points move between accounts as two operations of type transfer, one per
 * side, each balanced against the transit account KP_SYS_TRANSFER, so both
 * histories show the move and `verify` still holds. The receiving side gets
 * lots with the same kind and expiry (and, for a family, the same pending
 * period) as the lots the points came from.
 */
#include "people_int.h"
#include "currency.h"
#include "notify/notify.h"
#include "settle_book.h"

#include <kopilka/card_number.h>
#include <kopilka/check.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- moving points */

typedef struct move {
    const char *tag;      /* idempotency store: "#transfer", "#family" */
    char key[KP_STR_MAX]; /* idempotency key of the sending side */
    uint8_t hash[16];
    kp_card_info from, to;
    int64_t points; /* > 0; 0 with all_lots: everything */
    bool all_lots;  /* family join: every open lot, pending ones too */
    const kp_people_policy *policy;
    /* results */
    int64_t from_balance, to_balance, moved;
    size_t n_groups;
    struct {
        char kind[16];
        kp_time active_from, expires_at;
        int64_t points;
    } groups[KP_LOTS_MAX];
} move;

static bool kind_allowed(const kp_people_policy *p, const char *kind)
{
    if (p == NULL || p->transfers.n_kinds == 0) return true;
    for (size_t i = 0; i < p->transfers.n_kinds; i++)
        if (strcmp(p->transfers.kinds[i], kind) == 0) return true;
    return false;
}

static void group_add(move *m, const kp_lot *lot, int64_t points, bool keep_pending, kp_time now)
{
    kp_time active = keep_pending && lot->active_from > now ? lot->active_from : now;
    for (size_t i = 0; i < m->n_groups; i++)
        if (strcmp(m->groups[i].kind, lot->kind) == 0 &&
            m->groups[i].expires_at == lot->expires_at && m->groups[i].active_from == active) {
            m->groups[i].points += points;
            return;
        }
    /* Never full: a group per lot change, and a plan changes at most
     * KP_LOTS_MAX lots (kp_ledger_plan_check). */
    KP_CHECK_ABORT(m->n_groups < KP_LOTS_MAX, "family: a move's groups fit its lot changes");
    snprintf(m->groups[m->n_groups].kind, sizeof m->groups[0].kind, "%s", lot->kind);
    m->groups[m->n_groups].active_from = active;
    m->groups[m->n_groups].expires_at = lot->expires_at;
    m->groups[m->n_groups].points = points;
    m->n_groups++;
}

static kp_err insert_op(kp_office *o, const move *m, const kp_card_info *card, const char *receipt,
                        int64_t points, const char *response, int64_t *op_id, kp_error *e)
{
    kp_op_row row;
    memset(&row, 0, sizeof row);
    row.type = KP_OP_TRANSFER;
    row.account_id = card->account_id;
    snprintf(row.card, sizeof row.card, "%s", card->number);
    snprintf(row.store, sizeof row.store, "%s", m->tag);
    snprintf(row.receipt, sizeof row.receipt, "%s", receipt);
    memcpy(row.request_hash, m->hash, 16);
    row.program_version = o->program ? o->program->version : 0;
    row.at = o->now;
    row.points = points;
    row.response = (char *)response;
    kp_err err = o->st->ops->op_insert(o->st, &row);
    if (err) return people_storage(o->st, err, e);
    *op_id = row.id;
    return KP_OK;
}

/* TRANSFER_OUT on the giver's operation, TRANSFER_IN on the receiver's
 * (`to` is the receiver's account as it stands after the move). */
static kp_err transfer_notify(kp_office *o, const move *m, const kp_account *to, int64_t op_from,
                              int64_t op_to, kp_error *e)
{
    kp_notify_figures f;
    memset(&f, 0, sizeof f);
    f.points = -m->moved;
    f.burnt = m->moved;
    f.has_balance = true;
    f.balance = m->from_balance;
    snprintf(f.other_card, sizeof f.other_card, "%s", m->to.number);
    char key[KP_NOTIFY_KEY_MAX];
    snprintf(key, sizeof key, "op:%lld", (long long)op_from);
    kp_err err = kp_notify_emit(o->st, KP_NOTIFY_TRANSFER_OUT, key, m->from.account_id, 0,
                                m->from.number, op_from, o->now, &f, e);
    if (err) return err;
    memset(&f, 0, sizeof f);
    f.points = m->moved;
    f.earned = m->moved;
    kp_notify_figures_after(to, NULL, o->now, &f);
    snprintf(f.other_card, sizeof f.other_card, "%s", m->from.number);
    snprintf(key, sizeof key, "op:%lld", (long long)op_to);
    return kp_notify_emit(o->st, KP_NOTIFY_TRANSFER_IN, key, m->to.account_id, 0, m->to.number,
                          op_to, o->now, &f, e);
}

/* Moves the points of m from m->from's account to m->to's: the sending op
 * (receipt = key) and the receiving op (receipt = key + "#in"). Their stored
 * answer is "{}" until the caller sets the real one (op_response_set). */
static kp_err move_points(kp_office *o, move *m, kp_buf *out, kp_error *e)
{
    kp_account *a = &o->sc->account;
    kp_err err = o->st->ops->account_load(o->st, m->from.account_id, a);
    if (err) return people_storage(o->st, err, e);
    kp_account *eligible = malloc(sizeof *eligible);
    if (eligible == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    *eligible = *a;
    eligible->n_lots = 0;
    int64_t have = 0;
    for (size_t i = 0; i < a->n_lots; i++) {
        const kp_lot *l = &a->lots[i];
        bool ok = m->all_lots || (l->active_from <= o->now && l->expires_at > o->now &&
                                  kind_allowed(m->policy, l->kind));
        if (!ok) continue;
        eligible->lots[eligible->n_lots++] = *l;
        have += l->remaining;
    }
    if (m->all_lots) {
        if (a->debt > 0) {
            free(eligible);
            return kp_error_set(e, KP_ERR_CONFLICT, "customer",
                                "the account owes %lld points after a return; it can join a "
                                "family once the debt is repaid",
                                (long long)a->debt);
        }
        m->points = have;
        if (have == 0) {
            free(eligible);
            m->moved = 0;
            m->from_balance = a->balance;
            return KP_OK;
        }
    }
    if (m->points > have || m->points > a->balance) {
        free(eligible);
        return kp_error_set(e, KP_ERR_INVALID, "points",
                            "the card has %lld points that may be transferred now, not %lld",
                            (long long)(have < a->balance ? have : a->balance),
                            (long long)m->points);
    }
    m->moved = m->points;
    m->n_groups = 0;
    m->from_balance = a->balance;
    int64_t op_from = 0, op_to = 0;
    /* A coalition program: the sender's points are burnt at the operator,
     * each issuer's (coalition.h); planned while the lots are at hand. */
    kp_settle_plan *burnt = NULL;
    char receipt_in[KP_STR_MAX + 4];
    snprintf(receipt_in, sizeof receipt_in, "%s#in", m->key);
    if (m->points > 0) {
        if ((err = kp_ledger_plan_move(eligible, KP_OP_TRANSFER, KP_SYS_TRANSFER, -m->points, NULL,
                                       o->now, &o->sc->plan, e))) {
            free(eligible);
            return err;
        }
        for (size_t c = 0; c < o->sc->plan.n_changes; c++)
            for (size_t i = 0; i < eligible->n_lots; i++)
                if (eligible->lots[i].id == o->sc->plan.changes[c].lot_id)
                    group_add(m, &eligible->lots[i], -o->sc->plan.changes[c].delta, m->all_lots,
                              o->now);
        m->from_balance = o->sc->plan.balance_after;
        if (o->program && kp_program_is_coalition(o->program)) {
            static _Thread_local kp_lot_take takes[KP_LOTS_MAX];
            size_t n = 0;
            for (size_t c = 0; c < o->sc->plan.n_changes; c++)
                takes[n++] = (kp_lot_take){o->sc->plan.changes[c].lot_id,
                                           -o->sc->plan.changes[c].delta};
            if ((burnt = malloc(sizeof *burnt)) == NULL)
                err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
            else
                err = kp_settle_burn(o->program, KP_OPERATOR, "", eligible, takes, n, burnt, e);
            if (err) {
                free(burnt);
                free(eligible);
                return err;
            }
        }
    }
    free(eligible);
    kp_buf_reset(out);
    if ((err = insert_op(o, m, &m->from, m->key, -m->points, "{}", &op_from, e)) ||
        (m->points > 0 && (err = o->st->ops->plan_apply(o->st, op_from, &o->sc->plan, o->now)) &&
         (err = people_storage(o->st, err, e))) ||
        (burnt && (err = kp_book_put(o->st, o->program, op_from, o->now, burnt, e)))) {
        free(burnt);
        return err;
    }
    free(burnt);
    if ((err = insert_op(o, m, &m->to, receipt_in, m->points, "{}", &op_to, e))) return err;
    for (size_t g = 0; g < m->n_groups; g++) {
        if ((err = o->st->ops->account_load(o->st, m->to.account_id, a)))
            return people_storage(o->st, err, e);
        kp_lot lot;
        memset(&lot, 0, sizeof lot);
        snprintf(lot.kind, sizeof lot.kind, "%s", m->groups[g].kind);
        lot.earned_at = o->now;
        lot.active_from = m->groups[g].active_from;
        lot.expires_at = m->groups[g].expires_at;
        if ((err = kp_ledger_plan_move(a, KP_OP_TRANSFER, KP_SYS_TRANSFER, m->groups[g].points,
                                       &lot, o->now, &o->sc->plan, e)))
            return err;
        if ((err = o->st->ops->plan_apply(o->st, op_to, &o->sc->plan, o->now)))
            return people_storage(o->st, err, e);
    }
    /* The receiver's lots are the operator's: it issues them. */
    if (m->points > 0 && o->program &&
        (err = kp_book_credit(o->st, o->program, KP_OPERATOR, m->points, op_to, o->now, e)))
        return err;
    if ((err = o->st->ops->account_load(o->st, m->to.account_id, a)))
        return people_storage(o->st, err, e);
    m->to_balance = a->balance;
    if (m->moved > 0) return transfer_notify(o, m, a, op_from, op_to, e);
    return KP_OK;
}

static void transfer_json(kp_buf *out, const move *m)
{
    kp_buf_puts(out, "{");
    kp_buf_json_kv_str(out, "key", m->key, false);
    kp_buf_json_kv_str(out, "from_card", m->from.number, true);
    kp_buf_json_kv_str(out, "to_card", m->to.number, true);
    kp_buf_json_kv_i64(out, "points", m->moved, true);
    kp_buf_json_kv_i64(out, "from_balance", m->from_balance, true);
    kp_buf_json_kv_i64(out, "to_balance", m->to_balance, true);
    kp_buf_puts(out, ",\"lots\":[");
    for (size_t g = 0; g < m->n_groups; g++) {
        kp_buf_puts(out, g ? ",{" : "{");
        kp_buf_json_kv_str(out, "kind", m->groups[g].kind, false);
        kp_buf_json_kv_i64(out, "points", m->groups[g].points, true);
        people_time_kv(out, "expires_at", m->groups[g].expires_at);
        kp_buf_puts(out, "}");
    }
    kp_buf_puts(out, "]}");
}

static void transfer_hash(const char *from, const char *to, int64_t points, uint8_t out[16])
{
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, 16);
    crypto_generichash_update(&h, (const uint8_t *)"transfer", 9);
    crypto_generichash_update(&h, (const uint8_t *)from, strlen(from) + 1);
    crypto_generichash_update(&h, (const uint8_t *)to, strlen(to) + 1);
    crypto_generichash_update(&h, (const uint8_t *)&points, sizeof points);
    crypto_generichash_final(&h, out, 16);
}

/* The start of the program's calendar day containing `t`. */
static kp_time day_start(const kp_office *o, kp_time t)
{
    int64_t off = o->program ? (int64_t)o->program->utc_offset_minutes * 60 : 0;
    int64_t local = t + off;
    int64_t day =
        local >= 0 ? local / KP_DAY_SECONDS : (local - KP_DAY_SECONDS + 1) / KP_DAY_SECONDS;
    return day * KP_DAY_SECONDS - off;
}

kp_err kp_transfer(kp_office *o, const char *body, size_t len, kp_buf *out, bool *replayed,
                   kp_error *e)
{
    *replayed = false;
    kp_err err = kp_office_require(o, KP_PERM_TRANSFER, e);
    if (err) return err;
    json_t *root = people_json_load(body, len, e);
    if (root == NULL) return KP_ERR_INVALID;
    static const char *const keys[] = {"from_card", "to_card", "points", "key", "currency", NULL};
    move *m = calloc(1, sizeof *m);
    char from[KP_STR_MAX], to[KP_STR_MAX];
    if (m == NULL) {
        err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
        goto out;
    }
    m->tag = "#transfer";
    m->policy = o->policy;
    if ((err = people_json_keys(root, keys, e)) ||
        (err = kp_service_own_currency_only(root, o->program, "transfers", e)) ||
        (err = people_json_str(root, "from_card", true, from, KP_STR_MAX - 1, e)) ||
        (err = people_json_str(root, "to_card", true, to, KP_STR_MAX - 1, e)) ||
        (err = people_json_int(root, "points", true, 1, 1000000000000LL, &m->points, e)) ||
        (err = people_json_str(root, "key", true, m->key, KP_STR_MAX - 5, e)))
        goto out;
    if (strchr(m->key, '#')) {
        err = kp_error_set(e, KP_ERR_INVALID, "key", "must not contain '#'");
        goto out;
    }
    const kp_people_policy *p = o->policy;
    if (!p->transfers.enabled) {
        err = kp_error_set(e, KP_ERR_FORBIDDEN, "",
                           "the program does not allow transfers between customers "
                           "(customers.transfers in the program file)");
        goto out;
    }
    if (p->transfers.max_points && m->points > p->transfers.max_points) {
        err = kp_error_set(e, KP_ERR_INVALID, "points",
                           "at most %lld points may move in one transfer",
                           (long long)p->transfers.max_points);
        goto out;
    }
    transfer_hash(from, to, m->points, m->hash);
    kp_op_row prior;
    err = o->st->ops->op_find(o->st, m->tag, m->key, &prior);
    if (err == KP_OK) {
        bool same = prior.type == KP_OP_TRANSFER && memcmp(prior.request_hash, m->hash, 16) == 0;
        if (same) {
            kp_buf_reset(out);
            kp_buf_puts(out, "{\"replayed\":true,");
            kp_buf_puts(out, prior.response && prior.response[0] == '{' ? prior.response + 1 : "}");
            *replayed = true;
            err = KP_OK;
        } else {
            err = kp_error_setr(e, KP_ERR_CONFLICT, KP_REASON_KEY_CONFLICT, "key",
                                "transfer key %s was already used for another transfer", m->key);
        }
        kp_op_row_release(&prior);
        goto out;
    }
    if (err != KP_ERR_NOT_FOUND) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    if ((err = people_card_account(o, from, &m->from, e))) goto out;
    if (kp_office_is_self(o) && m->from.customer_id != o->actor.customer_id) {
        /* A customer's session gives only from a card of their own. */
        err = kp_card_unknown(from, "from_card", e);
        goto out;
    }
    if ((err = people_card_account(o, to, &m->to, e))) {
        if (strcmp(e->field, "card") == 0) snprintf(e->field, sizeof e->field, "to_card");
        goto out;
    }
    if (!m->from.customer_id || !m->to.customer_id) {
        err = kp_error_set(e, KP_ERR_INVALID, m->from.customer_id ? "to_card" : "from_card",
                           "transfers are between registered customers: register the card first");
        goto out;
    }
    if (m->from.account_id == m->to.account_id) {
        err = kp_error_set(e, KP_ERR_INVALID, "to_card",
                           "both cards share one account (a family pot): nothing to move");
        goto out;
    }
    if (!m->from.may_burn) {
        err = kp_error_set(e, KP_ERR_FORBIDDEN, "from_card",
                           "the family's owner has not allowed this card to spend its points");
        goto out;
    }
    if (p->transfers.daily_max_points) {
        int64_t today = 0;
        if ((err = o->st->ops->people->ops_points_since(o->st, m->from.account_id, KP_OP_TRANSFER,
                                                        m->tag, day_start(o, o->now), &today))) {
            err = people_storage(o->st, err, e);
            goto out;
        }
        if (-today + m->points > p->transfers.daily_max_points) {
            err = kp_error_set(e, KP_ERR_INVALID, "points",
                               "at most %lld points a day may be transferred from this account; "
                               "%lld were already today",
                               (long long)p->transfers.daily_max_points, (long long)-today);
            goto out;
        }
    }
    if ((err = move_points(o, m, out, e))) goto out;
    kp_buf_reset(out);
    transfer_json(out, m);
    if ((err = o->st->ops->people->op_response_set(o->st, m->tag, m->key, out->data))) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    char target[48];
    snprintf(target, sizeof target, "account:%lld", (long long)m->from.account_id);
    if ((err = kp_office_audit(o, "ledger.transfer", target, "from=%s to=%s points=%lld key=%s",
                               from, to, (long long)m->points, m->key)))
        err = people_storage(o->st, err, e);
out:
    free(m);
    json_decref(root);
    return err;
}

/* ---- families */

static kp_err load_active_customer(kp_office *o, int64_t id, kp_customer_row *row,
                                   const char *field, kp_error *e)
{
    kp_err err = o->st->ops->people->customer_get(o->st, id, row);
    if (err == KP_ERR_NOT_FOUND)
        return kp_error_set(e, err, field, "no customer %lld", (long long)id);
    if (err) return people_storage(o->st, err, e);
    if (row->state == KP_CUSTOMER_ERASED)
        return kp_error_set(e, KP_ERR_CONFLICT, field, "customer %lld was erased", (long long)id);
    return KP_OK;
}

/* Points a customer's cards at `account_id` with spending allowed or not. */
static kp_err repoint_cards(kp_office *o, int64_t customer_id, int64_t account_id, bool may_burn,
                            kp_error *e)
{
    kp_card_info *cards;
    size_t n = 0;
    kp_err err = people_cards_all(o->st, customer_id, &cards, &n, e);
    if (err) return err;
    for (size_t i = 0; i < n && err == KP_OK; i++) {
        if (cards[i].state == KP_CARD_REPLACED) continue;
        cards[i].account_id = account_id;
        cards[i].may_burn = may_burn;
        err = o->st->ops->people->card_info_put(o->st, &cards[i], o->now);
    }
    free(cards);
    return err ? people_storage(o->st, err, e) : KP_OK;
}

/* The family `id`, whoever asks (an invitation accepted: the invitee is no
 * member yet). */
static kp_err family_load_any(kp_office *o, int64_t id, kp_family *f, kp_error *e)
{
    kp_err err = o->st->ops->people->family_get(o->st, id, 0, f);
    if (err == KP_ERR_NOT_FOUND)
        return kp_error_set(e, err, "family", "no family %lld", (long long)id);
    return err ? people_storage(o->st, err, e) : KP_OK;
}

/* The family `id`; a customer's own session finds only the family they
 * belong to: any other is as unknown as an id never made. */
static kp_err family_load(kp_office *o, int64_t id, kp_family *f, kp_error *e)
{
    kp_err err = KP_OK;
    if (kp_office_is_self(o)) {
        kp_family_member m;
        err = o->st->ops->people->member_get(o->st, o->actor.customer_id, &m);
        if (err == KP_OK && m.family_id != id) err = KP_ERR_NOT_FOUND;
    }
    if (err == KP_OK) err = o->st->ops->people->family_get(o->st, id, 0, f);
    if (err == KP_ERR_NOT_FOUND)
        return kp_error_set(e, err, "family", "no family %lld", (long long)id);
    return err ? people_storage(o->st, err, e) : KP_OK;
}

/* A customer's own session changes a family only as its owner. */
static kp_err self_owner(const kp_office *o, const kp_family *f, kp_error *e)
{
    if (!kp_office_is_self(o) || f->owner_id == o->actor.customer_id) return KP_OK;
    return kp_error_set(e, KP_ERR_FORBIDDEN, "family",
                        "only the family's owner may do this (a member may leave)");
}

/* ,"name": a member's full name, opened with the key (null without it, or
 * for an erased member): the family's members see whom they share with. */
static void member_name_kv(kp_office *o, int64_t customer_id, kp_customer_row *row, kp_buf *out)
{
    char name[KP_NAME_MAX + 1] = "";
    if (o->pii && o->st->ops->people->customer_get(o->st, customer_id, row) == KP_OK &&
        row->state == KP_CUSTOMER_ACTIVE && row->name.len > 0 &&
        kp_pii_open(o->pii, KP_PII_NAME, row->name.data, row->name.len, name, sizeof name,
                    NULL) != KP_OK)
        name[0] = '\0';
    if (name[0])
        kp_buf_json_kv_str(out, "name", name, true);
    else
        kp_buf_puts(out, ",\"name\":null");
    sodium_memzero(name, sizeof name);
}

kp_err kp_family_get(kp_office *o, int64_t id, kp_buf *out, kp_error *e)
{
    kp_err err = kp_office_require(o, KP_PERM_CUSTOMER_READ, e);
    kp_family f;
    if (err || (err = family_load(o, id, &f, e))) return err;
    /* A join past KP_FAMILY_MEMBERS_MAX is refused: a page holds them all. */
    kp_family_member members[KP_FAMILY_MEMBERS_MAX];
    size_t n = 0;
    kp_history_entry *h = calloc(100, sizeof *h);
    kp_customer_row *row = malloc(sizeof *row);
    size_t nh = 0;
    if (h == NULL || row == NULL) {
        free(h);
        free(row);
        return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    }
    if ((err = o->st->ops->people->members_of_family(o->st, id, members, KP_FAMILY_MEMBERS_MAX,
                                                     &n)) ||
        (err = o->st->ops->people->history_cards(o->st, f.account_id, 0, h, 100, &nh)) ||
        (err = o->st->ops->account_load(o->st, f.account_id, &o->sc->account))) {
        free(h);
        free(row);
        return people_storage(o->st, err, e);
    }
    kp_buf_reset(out);
    kp_buf_puts(out, "{");
    kp_buf_json_kv_i64(out, "id", f.id, false);
    kp_buf_json_kv_i64(out, "owner", f.owner_id, true);
    kp_buf_json_kv_i64(out, "account_id", f.account_id, true);
    kp_buf_json_kv_i64(out, "balance", o->sc->account.balance, true);
    kp_buf_json_kv_i64(out, "available", kp_account_spendable(&o->sc->account, o->now), true);
    kp_buf_puts(out, ",\"members\":[");
    for (size_t i = 0; i < n; i++) {
        kp_buf_puts(out, i ? ",{" : "{");
        kp_buf_json_kv_i64(out, "customer", members[i].customer_id, false);
        kp_buf_puts(out,
                    members[i].customer_id == f.owner_id ? ",\"owner\":true" : ",\"owner\":false");
        kp_buf_puts(out, members[i].may_spend ? ",\"may_spend\":true" : ",\"may_spend\":false");
        people_time_kv(out, "joined_at", members[i].joined_at);
        member_name_kv(o, members[i].customer_id, row, out);
        kp_buf_puts(out, "}");
    }
    free(row);
    kp_buf_puts(out, "],\"history\":[");
    for (size_t i = 0; i < nh; i++) {
        kp_card_info c;
        int64_t who = 0;
        if (h[i].card[0] && o->st->ops->people->card_info_get(o->st, h[i].card, &c) == KP_OK)
            who = c.customer_id;
        kp_buf_puts(out, i ? ",{" : "{");
        kp_buf_json_kv_str(out, "type", kp_op_type_name(h[i].type), false);
        kp_buf_json_kv_str(out, "card", h[i].card, true);
        kp_buf_puts(out, ",\"customer\":");
        if (who)
            kp_buf_i64(out, who);
        else
            kp_buf_puts(out, "null");
        kp_buf_json_kv_str(out, "receipt", h[i].receipt, true);
        people_time_kv(out, "at", h[i].at);
        kp_buf_json_kv_i64(out, "earned", h[i].earned, true);
        kp_buf_json_kv_i64(out, "spent", h[i].burned, true);
        kp_buf_json_kv_i64(out, "points", h[i].points, true);
        kp_buf_puts(out, "}");
    }
    kp_buf_puts(out, "]}");
    free(h);
    return out->failed ? kp_error_set(e, KP_ERR_NOMEM, "", "the answer is too large") : KP_OK;
}

kp_err kp_family_create(kp_office *o, const char *body, size_t len, kp_buf *out, kp_error *e)
{
    kp_err err = kp_office_require(o, KP_PERM_FAMILY, e);
    if (err) return err;
    json_t *root = people_json_load(body, len, e);
    if (root == NULL) return KP_ERR_INVALID;
    static const char *const keys[] = {"owner", NULL};
    int64_t owner = 0;
    kp_customer_row *row = malloc(sizeof *row);
    kp_family f;
    kp_family_member m;
    memset(&f, 0, sizeof f);
    if (row == NULL) {
        err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
        goto out;
    }
    if ((err = people_json_keys(root, keys, e)) ||
        (err = people_json_int(root, "owner", true, 1, INT64_MAX, &owner, e)) ||
        (err = kp_office_require_customer(o, KP_PERM_FAMILY, owner, e)) ||
        (err = load_active_customer(o, owner, row, "owner", e)))
        goto out;
    err = o->st->ops->people->member_get(o->st, owner, &m);
    if (err == KP_OK) {
        err = kp_error_set(e, KP_ERR_CONFLICT, "owner", "customer %lld is already in family %lld",
                           (long long)owner, (long long)m.family_id);
        goto out;
    }
    if (err != KP_ERR_NOT_FOUND) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    err = o->st->ops->people->family_get(o->st, 0, owner, &f);
    if (err == KP_ERR_NOT_FOUND) {
        /* A family owned by this customer that was emptied is reused. */
        f.owner_id = owner;
        f.account_id = row->account_id;
        f.created_at = o->now;
        err = o->st->ops->people->family_insert(o->st, &f);
    }
    if (err) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    m = (kp_family_member){.customer_id = owner,
                           .family_id = f.id,
                           .may_spend = true,
                           .own_account_id = row->account_id,
                           .joined_at = o->now};
    if ((err = o->st->ops->people->member_put(o->st, &m))) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    char target[48];
    snprintf(target, sizeof target, "family:%lld", (long long)f.id);
    if ((err = kp_office_audit(o, "family.create", target, "owner=%lld", (long long)owner))) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    err = kp_family_get(o, f.id, out, e);
out:
    free(row);
    json_decref(root);
    return err;
}

kp_err kp_family_join(kp_office *o, int64_t family_id, const char *body, size_t len, kp_buf *out,
                      kp_error *e)
{
    kp_err err = kp_office_require(o, KP_PERM_FAMILY, e);
    if (err) return err;
    if (kp_office_is_self(o))
        return kp_error_set(e, KP_ERR_FORBIDDEN, "family",
                            "a customer joins a family by accepting its owner's invitation");
    json_t *root = people_json_load(body, len, e);
    if (root == NULL) return KP_ERR_INVALID;
    static const char *const keys[] = {"customer", "may_spend", NULL};
    int64_t cid = 0;
    bool may_spend = false;
    if ((err = people_json_keys(root, keys, e)) ||
        (err = people_json_int(root, "customer", true, 1, INT64_MAX, &cid, e)) ||
        (err = people_json_bool(root, "may_spend", &may_spend, NULL, e)))
        goto out;
    err = people_family_join(o, family_id, cid, may_spend, out, e);
out:
    json_decref(root);
    return err;
}

kp_err people_family_join(kp_office *o, int64_t family_id, int64_t cid, bool may_spend,
                          kp_buf *out, kp_error *e)
{
    kp_err err;
    kp_customer_row *row = malloc(sizeof *row);
    move *mv = calloc(1, sizeof *mv);
    kp_card_info *cards = NULL, *owner_cards = NULL;
    kp_family f;
    kp_family_member m;
    if (row == NULL || mv == NULL) {
        err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
        goto out;
    }
    if ((err = family_load_any(o, family_id, &f, e)) ||
        (err = load_active_customer(o, cid, row, "customer", e)))
        goto out;
    err = o->st->ops->people->member_get(o->st, cid, &m);
    if (err == KP_OK) {
        err =
            kp_error_set(e, KP_ERR_CONFLICT, "customer", "customer %lld is already in family %lld",
                         (long long)cid, (long long)m.family_id);
        goto out;
    }
    if (err != KP_ERR_NOT_FOUND) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    err = o->st->ops->people->member_get(o->st, f.owner_id, &m);
    if (err == KP_ERR_NOT_FOUND) {
        err = kp_error_set(e, KP_ERR_CONFLICT, "family", "family %lld has no owner any more",
                           (long long)family_id);
        goto out;
    }
    /* A family lists all its members in one answer: their number is
     * bounded, and a join past the bound is refused, never dropped. */
    kp_family_member *present = calloc(KP_FAMILY_MEMBERS_MAX + 1, sizeof *present);
    size_t n_present = 0;
    if (present == NULL) {
        err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
        goto out;
    }
    err = o->st->ops->people->members_of_family(o->st, family_id, present,
                                                KP_FAMILY_MEMBERS_MAX + 1, &n_present);
    free(present);
    if (err) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    if (n_present >= KP_FAMILY_MEMBERS_MAX) {
        err = kp_error_set(e, KP_ERR_LIMIT, "family",
                           "family %lld has %d members, the most a family may have",
                           (long long)family_id, KP_FAMILY_MEMBERS_MAX);
        goto out;
    }
    /* The member's points go into the pot, lot by lot, expiry kept. */
    size_t n = 0;
    if ((err = people_cards_all(o->st, cid, &cards, &n, e))) goto out;
    size_t n_owner = 0, owner_first = 0;
    if ((err = people_cards_all(o->st, f.owner_id, &owner_cards, &n_owner, e))) goto out;
    while (owner_first < n_owner && owner_cards[owner_first].state == KP_CARD_REPLACED)
        owner_first++;
    size_t first = 0;
    while (first < n && cards[first].state == KP_CARD_REPLACED) first++;
    if (first < n && owner_first < n_owner) {
        mv->tag = "#family";
        mv->all_lots = true;
        mv->from = cards[first];
        mv->from.account_id = row->account_id;
        mv->to = owner_cards[owner_first];
        mv->to.account_id = f.account_id;
        uint8_t nonce[6];
        char hex[13];
        randombytes_buf(nonce, sizeof nonce);
        sodium_bin2hex(hex, sizeof hex, nonce, sizeof nonce);
        snprintf(mv->key, sizeof mv->key, "join:%lld:%lld:%s", (long long)family_id, (long long)cid,
                 hex);
        transfer_hash(mv->from.number, mv->to.number, 0, mv->hash);
        if ((err = move_points(o, mv, out, e))) goto out;
    }
    if ((err = repoint_cards(o, cid, f.account_id, may_spend, e))) goto out;
    m = (kp_family_member){.customer_id = cid,
                           .family_id = f.id,
                           .may_spend = may_spend,
                           .own_account_id = row->account_id,
                           .joined_at = o->now};
    row->account_id = f.account_id;
    row->updated_at = o->now;
    if ((err = o->st->ops->people->member_put(o->st, &m)) ||
        (err = o->st->ops->people->customer_update(o->st, row))) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    char target[48];
    snprintf(target, sizeof target, "family:%lld", (long long)f.id);
    if ((err = kp_office_audit(o, "family.join", target,
                               "customer=%lld may_spend=%s points_moved=%lld", (long long)cid,
                               may_spend ? "yes" : "no", (long long)mv->moved))) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    err = kp_family_get(o, f.id, out, e);
out:
    free(owner_cards);
    free(cards);
    free(mv);
    free(row);
    return err;
}

static kp_err member_of(kp_office *o, int64_t family_id, int64_t cid, kp_family *f,
                        kp_family_member *m, kp_error *e)
{
    kp_err err = family_load(o, family_id, f, e);
    if (err) return err;
    err = o->st->ops->people->member_get(o->st, cid, m);
    if (err == KP_ERR_NOT_FOUND || (err == KP_OK && m->family_id != family_id))
        return kp_error_set(e, KP_ERR_NOT_FOUND, "customer",
                            "customer %lld is not a member of family %lld", (long long)cid,
                            (long long)family_id);
    return err ? people_storage(o->st, err, e) : KP_OK;
}

kp_err kp_family_set(kp_office *o, int64_t family_id, int64_t cid, const char *body, size_t len,
                     kp_buf *out, kp_error *e)
{
    kp_err err = kp_office_require(o, KP_PERM_FAMILY, e);
    if (err) return err;
    json_t *root = people_json_load(body, len, e);
    if (root == NULL) return KP_ERR_INVALID;
    static const char *const keys[] = {"may_spend", NULL};
    bool may_spend = false, given = false;
    kp_family f;
    kp_family_member m;
    if ((err = people_json_keys(root, keys, e)) ||
        (err = people_json_bool(root, "may_spend", &may_spend, &given, e)) ||
        (err = member_of(o, family_id, cid, &f, &m, e)) || (err = self_owner(o, &f, e)))
        goto out;
    if (!given) {
        err = kp_error_set(e, KP_ERR_INVALID, "may_spend", "is required (true or false)");
        goto out;
    }
    if (cid == f.owner_id && !may_spend) {
        err = kp_error_set(e, KP_ERR_INVALID, "may_spend", "the owner always may spend");
        goto out;
    }
    m.may_spend = may_spend;
    if ((err = o->st->ops->people->member_put(o->st, &m))) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    if ((err = repoint_cards(o, cid, f.account_id, may_spend, e))) goto out;
    char target[48];
    snprintf(target, sizeof target, "family:%lld", (long long)f.id);
    if ((err = kp_office_audit(o, "family.set", target, "customer=%lld may_spend=%s",
                               (long long)cid, may_spend ? "yes" : "no"))) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    err = kp_family_get(o, f.id, out, e);
out:
    json_decref(root);
    return err;
}

/* The member leaves: cards back to their own account. */
static kp_err leave(kp_office *o, const kp_family *f, const kp_family_member *m, kp_error *e)
{
    kp_customer_row *row = malloc(sizeof *row);
    if (row == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    kp_err err = o->st->ops->people->customer_get(o->st, m->customer_id, row);
    if (err == KP_OK) {
        row->account_id = m->own_account_id;
        row->updated_at = o->now;
        err = o->st->ops->people->customer_update(o->st, row);
    }
    if (err == KP_OK) err = o->st->ops->people->member_delete(o->st, m->customer_id);
    free(row);
    if (err) return people_storage(o->st, err, e);
    if ((err = repoint_cards(o, m->customer_id, m->own_account_id, true, e))) return err;
    char target[48];
    snprintf(target, sizeof target, "family:%lld", (long long)f->id);
    if ((err = kp_office_audit(o, "family.leave", target, "customer=%lld",
                               (long long)m->customer_id)))
        return people_storage(o->st, err, e);
    return KP_OK;
}

kp_err kp_family_leave(kp_office *o, int64_t family_id, int64_t cid, kp_buf *out, kp_error *e)
{
    kp_err err = kp_office_require(o, KP_PERM_FAMILY, e);
    kp_family f;
    kp_family_member m;
    if (err || (err = member_of(o, family_id, cid, &f, &m, e))) return err;
    if (cid != o->actor.customer_id && (err = self_owner(o, &f, e))) return err;
    if (cid == f.owner_id) {
        kp_family_member all[2];
        size_t n = 0;
        if ((err = o->st->ops->people->members_of_family(o->st, family_id, all, 2, &n)))
            return people_storage(o->st, err, e);
        if (n > 1)
            return kp_error_set(e, KP_ERR_CONFLICT, "customer",
                                "the owner leaves last: the pot is the owner's account");
        if ((err = o->st->ops->people->member_delete(o->st, cid)))
            return people_storage(o->st, err, e);
        char target[48];
        snprintf(target, sizeof target, "family:%lld", (long long)f.id);
        if ((err = kp_office_audit(o, "family.close", target, "owner=%lld", (long long)cid)))
            return people_storage(o->st, err, e);
    } else if ((err = leave(o, &f, &m, e))) {
        return err;
    }
    if (kp_office_is_self(o) && cid == o->actor.customer_id) {
        /* The family is none of theirs any more: nothing of it to show. */
        kp_buf_reset(out);
        kp_buf_printf(out, "{\"left\":true,\"family\":%lld}", (long long)family_id);
        return KP_OK;
    }
    return kp_family_get(o, family_id, out, e);
}

kp_err people_family_detach(kp_office *o, int64_t customer_id, kp_error *e)
{
    kp_family_member m;
    kp_err err = o->st->ops->people->member_get(o->st, customer_id, &m);
    if (err == KP_ERR_NOT_FOUND) return KP_OK;
    if (err) return people_storage(o->st, err, e);
    kp_family f;
    if ((err = family_load(o, m.family_id, &f, e))) return err;
    if (f.owner_id != customer_id) return leave(o, &f, &m, e);
    kp_family_member all[2];
    size_t n = 0;
    if ((err = o->st->ops->people->members_of_family(o->st, f.id, all, 2, &n)))
        return people_storage(o->st, err, e);
    if (n > 1)
        return kp_error_set(e, KP_ERR_CONFLICT, "customer",
                            "customer %lld owns family %lld with other members: they leave first",
                            (long long)customer_id, (long long)f.id);
    err = o->st->ops->people->member_delete(o->st, customer_id);
    return err ? people_storage(o->st, err, e) : KP_OK;
}

kp_err kp_family_of_customer(kp_office *o, int64_t customer_id, int64_t *family_id, kp_error *e)
{
    *family_id = 0;
    kp_err err = kp_office_require_customer(o, KP_PERM_FAMILY, customer_id, e);
    if (err) return err;
    kp_family_member m;
    err = o->st->ops->people->member_get(o->st, customer_id, &m);
    if (err == KP_ERR_NOT_FOUND)
        return kp_error_set(e, err, "family",
                            "you are in no family: create one (POST /v1/me/family) or accept an "
                            "invitation");
    if (err) return people_storage(o->st, err, e);
    *family_id = m.family_id;
    return KP_OK;
}

/* ---- a transfer from the customer's own cabinet */

/* The first active card of a customer (number into out); KP_ERR_NOT_FOUND
 * when they have none. */
static kp_err active_card(kp_office *o, int64_t customer_id, char out[KP_STR_MAX], kp_error *e)
{
    kp_card_info *cards = NULL;
    size_t n = 0;
    kp_err err = people_cards_all(o->st, customer_id, &cards, &n, e);
    if (err) return err;
    out[0] = '\0';
    for (size_t i = 0; i < n && out[0] == '\0'; i++)
        if (cards[i].state == KP_CARD_ACTIVE) snprintf(out, KP_STR_MAX, "%s", cards[i].number);
    free(cards);
    return out[0] ? KP_OK : KP_ERR_NOT_FOUND;
}

/* The staff answer of a transfer as the giver may see it: the receiver's
 * card only by its last four digits, and not their balance. */
static kp_err self_answer(kp_buf *out, kp_error *e)
{
    json_t *a = json_loadb(out->data, out->len, 0, NULL);
    json_t *to = a ? json_object_get(a, "to_card") : NULL;
    if (!json_is_string(to)) {
        json_decref(a);
        return kp_error_set(e, KP_ERR_INTERNAL, "", "the transfer's answer is unreadable");
    }
    const char *card = json_string_value(to);
    size_t len = strlen(card);
    json_object_set_new(a, "to_card_last4", json_string(card + (len > 4 ? len - 4 : 0)));
    json_object_del(a, "to_card");
    json_object_del(a, "to_balance");
    json_t *from = json_object_get(a, "from_balance");
    if (from) json_object_set(a, "balance", from);
    json_object_del(a, "from_balance");
    char *text = json_dumps(a, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(a);
    if (text == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    kp_buf_reset(out);
    kp_buf_puts(out, text);
    free(text);
    return out->failed ? kp_error_set(e, KP_ERR_NOMEM, "", "the answer is too large") : KP_OK;
}

kp_err kp_transfer_from_self(kp_office *o, const char *body, size_t len, kp_buf *out,
                             bool *replayed, kp_error *e)
{
    *replayed = false;
    kp_err err = kp_office_require(o, KP_PERM_TRANSFER, e);
    if (err == KP_OK && !kp_office_is_self(o))
        err = kp_error_set(e, KP_ERR_FORBIDDEN, "", "this is a customer's own transfer: staff "
                           "use POST /v1/transfers");
    if (err) return err;
    json_t *root = people_json_load(body, len, e);
    if (root == NULL) return KP_ERR_INVALID;
    static const char *const keys[] = {"to_phone", "to_card", "points", "key", "currency", NULL};
    char phone[64], to[KP_STR_MAX], from[KP_STR_MAX], key[KP_STR_MAX];
    int64_t points = 0;
    json_t *req = NULL;
    char *text = NULL;
    if ((err = people_json_keys(root, keys, e)) ||
        (err = kp_service_own_currency_only(root, o->program, "transfers", e)) ||
        (err = people_json_str(root, "to_phone", false, phone, sizeof phone - 1, e)) ||
        (err = people_json_str(root, "to_card", false, to, KP_STR_MAX - 1, e)) ||
        (err = people_json_int(root, "points", true, 1, 1000000000000LL, &points, e)) ||
        (err = people_json_str(root, "key", true, key, KP_STR_MAX - 5, e)))
        goto out;
    if ((phone[0] != '\0') == (to[0] != '\0')) {
        err = kp_error_set(e, KP_ERR_INVALID, "to_phone",
                           "give exactly one of to_phone, to_card: whom the points go to");
        goto out;
    }
    if (!o->policy->transfers.enabled) {
        err = kp_error_set(e, KP_ERR_FORBIDDEN, "",
                           "the program does not allow transfers between customers");
        goto out;
    }
    err = active_card(o, o->actor.customer_id, from, e);
    if (err == KP_ERR_NOT_FOUND) {
        err = kp_error_set(e, KP_ERR_CONFLICT, "from_card",
                           "you have no active card to give points from");
        goto out;
    }
    if (err) goto out;
    if (phone[0]) {
        int64_t other = 0;
        char norm[KP_PHONE_MAX + 1];
        uint8_t ix[32];
        const char *why;
        if ((err = people_need_key(o, e))) goto out;
        if (!kp_norm_phone_in(phone, kp_phone_region_of(o->program), norm, &why)) {
            err = kp_error_set(e, KP_ERR_INVALID, "to_phone", "%s", why);
            goto out;
        }
        kp_pii_index(o->pii, KP_PII_PHONE, norm, ix);
        err = o->st->ops->people->customer_by_index(o->st, KP_CONTACT_PHONE, ix, &other);
        if (err == KP_OK && other == o->actor.customer_id) {
            err = kp_error_set(e, KP_ERR_INVALID, "to_phone", "is your own phone");
            goto out;
        }
        if (err == KP_OK) err = active_card(o, other, to, e);
        if (err == KP_ERR_NOT_FOUND) {
            err = kp_error_set(e, err, "to_phone",
                               "no customer with an active card has this phone");
            goto out;
        }
        if (err) {
            err = people_storage(o->st, err, e);
            goto out;
        }
    }
    req = json_pack("{s:s,s:s,s:I,s:s}", "from_card", from, "to_card", to, "points",
                    (json_int_t)points, "key", key);
    text = req ? json_dumps(req, JSON_COMPACT) : NULL;
    if (text == NULL) {
        err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
        goto out;
    }
    if ((err = kp_transfer(o, text, strlen(text), out, replayed, e))) {
        /* Said of the card looked up for the phone: say it of the phone. */
        if (phone[0] && strcmp(e->field, "to_card") == 0)
            snprintf(e->field, sizeof e->field, "to_phone");
        goto out;
    }
    err = self_answer(out, e);
out:
    free(text);
    json_decref(req);
    json_decref(root);
    return err;
}
