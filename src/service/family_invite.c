/*
 * family_invite.c: the customer's side of a family (docs/api.md, "The
 * customer's own API"): an owner invites a phone into the family from the
 * cabinet, and whoever holds that phone sees the invitation in their own
 * cabinet and accepts (joins, through family.c's join: the same move of
 * points as the back office's) or declines it. Invitations are stored by
 * the phone's blind index, so the owner learns nothing of whether the phone
 * is a customer's, and they expire after KP_INVITATION_TTL_SECONDS.
 *
 * Every operation here is a customer's own session's (kp_office_is_self):
 * staff add members directly (kp_family_join).
 */
#include "people_int.h"
#include "notify/notify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Only a customer's own session makes and answers invitations. */
static kp_err self_only(const kp_office *o, kp_error *e)
{
    kp_err err = kp_office_require(o, KP_PERM_FAMILY, e);
    if (err == KP_OK && !kp_office_is_self(o))
        err = kp_error_set(e, KP_ERR_FORBIDDEN, "",
                           "family invitations are made and answered in the customer's cabinet; "
                           "staff add members at POST /v1/admin/families/{id}/members");
    return err;
}

static kp_err load_self(kp_office *o, kp_customer_row *row, kp_error *e)
{
    kp_err err = o->st->ops->people->customer_get(o->st, o->actor.customer_id, row);
    if (err == KP_OK && row->state == KP_CUSTOMER_ERASED) err = KP_ERR_NOT_FOUND;
    if (err == KP_ERR_NOT_FOUND) return kp_error_set(e, err, "customer", "no such customer");
    return err ? people_storage(o->st, err, e) : KP_OK;
}

/* The family the actor owns (*f); 409 when they have none, 403 when they
 * are a member of someone else's. */
static kp_err owned_family(kp_office *o, kp_family *f, kp_error *e)
{
    kp_family_member m;
    kp_err err = o->st->ops->people->member_get(o->st, o->actor.customer_id, &m);
    if (err == KP_ERR_NOT_FOUND)
        return kp_error_set(e, KP_ERR_CONFLICT, "family",
                            "you have no family yet: create one first (POST /v1/me/family)");
    if (err == KP_OK) err = o->st->ops->people->family_get(o->st, m.family_id, 0, f);
    if (err) return people_storage(o->st, err, e);
    if (f->owner_id != o->actor.customer_id)
        return kp_error_set(e, KP_ERR_FORBIDDEN, "family",
                            "only the family's owner invites (a member may leave)");
    return KP_OK;
}

static const char *state_name(kp_invitation_state s)
{
    switch (s) {
    case KP_INVITATION_PENDING: return "pending";
    case KP_INVITATION_ACCEPTED: return "accepted";
    case KP_INVITATION_DECLINED: return "declined";
    default: return "cancelled";
    }
}

/* An invitation as JSON; `phone` is the invitee's, opened (NULL: left out,
 * the invitee's own view), `inviter` the owner's name (NULL: left out). */
static void invitation_json(kp_buf *out, const kp_family_invitation *inv, const char *phone,
                            const char *inviter, kp_time now)
{
    kp_buf_puts(out, "{");
    kp_buf_json_kv_i64(out, "id", inv->id, false);
    kp_buf_json_kv_i64(out, "family", inv->family_id, true);
    bool expired = inv->state == KP_INVITATION_PENDING && inv->expires_at <= now;
    kp_buf_json_kv_str(out, "state", expired ? "expired" : state_name(inv->state), true);
    if (phone) kp_buf_json_kv_str(out, "phone", phone, true);
    if (inviter) kp_buf_json_kv_str(out, "inviter_name", inviter, true);
    people_time_kv(out, "created_at", inv->created_at);
    people_time_kv(out, "expires_at", inv->expires_at);
    people_time_kv(out, "answered_at", inv->answered_at);
    kp_buf_puts(out, "}");
}

static void open_small(const kp_office *o, kp_pii_field field, const kp_sealed *s, char *out,
                       size_t cap)
{
    out[0] = '\0';
    if (s->len == 0 || kp_pii_open(o->pii, field, s->data, s->len, out, cap, NULL) != KP_OK)
        out[0] = '\0';
}

kp_err kp_family_invite(kp_office *o, const char *phone, kp_buf *out, bool *replayed, kp_error *e)
{
    *replayed = false;
    kp_err err = self_only(o, e);
    if (err == KP_OK) err = people_need_key(o, e);
    if (err) return err;
    kp_family f;
    char norm[KP_PHONE_MAX + 1];
    const char *why;
    if ((err = owned_family(o, &f, e))) return err;
    if (!kp_norm_phone_in(phone, kp_phone_region_of(o->program), norm, &why))
        return kp_error_set(e, KP_ERR_INVALID, "phone", "%s", why);
    kp_family_invitation *inv = calloc(KP_FAMILY_INVITATIONS_MAX + 1, sizeof *inv);
    kp_customer_row *row = malloc(sizeof *row);
    if (inv == NULL || row == NULL) {
        err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
        goto out;
    }
    uint8_t ix[32];
    kp_pii_index(o->pii, KP_PII_PHONE, norm, ix);
    const kp_people_ops *pp = o->st->ops->people;
    int64_t invitee = 0;
    err = pp->customer_by_index(o->st, KP_CONTACT_PHONE, ix, &invitee);
    if (err == KP_ERR_NOT_FOUND) {
        invitee = 0;
        err = KP_OK;
    }
    if (err) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    kp_family_member m;
    if (invitee == o->actor.customer_id) {
        err = kp_error_set(e, KP_ERR_INVALID, "phone", "is your own phone: invite someone else");
        goto out;
    }
    if (invitee && (err = pp->member_get(o->st, invitee, &m)) == KP_OK && m.family_id == f.id) {
        err = kp_error_set(e, KP_ERR_CONFLICT, "phone", "is a member of your family already");
        goto out;
    }
    if (err != KP_OK && err != KP_ERR_NOT_FOUND) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    size_t n = 0;
    if ((err = pp->invitations_pending(o->st, f.id, NULL, o->now, inv,
                                       KP_FAMILY_INVITATIONS_MAX + 1, &n))) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    kp_buf_reset(out);
    for (size_t i = 0; i < n; i++)
        if (memcmp(inv[i].phone_ix, ix, 32) == 0) {
            /* Asked again: the same invitation, not a second one. */
            invitation_json(out, &inv[i], norm, NULL, o->now);
            *replayed = true;
            goto out;
        }
    if (n >= KP_FAMILY_INVITATIONS_MAX) {
        err = kp_error_set(e, KP_ERR_LIMIT, "phone",
                           "the family has %d invitations waiting for an answer, the most it may "
                           "have: wait for answers or for them to expire",
                           KP_FAMILY_INVITATIONS_MAX);
        goto out;
    }
    kp_family_invitation *x = &inv[0];
    memset(x, 0, sizeof *x);
    x->family_id = f.id;
    x->inviter_id = o->actor.customer_id;
    memcpy(x->phone_ix, ix, 32);
    if ((err = kp_pii_seal(o->pii, KP_PII_PHONE, norm, strlen(norm), x->phone.data,
                           sizeof x->phone.data, &x->phone.len))) {
        err = kp_error_set(e, err, "", "personal data could not be sealed");
        goto out;
    }
    x->state = KP_INVITATION_PENDING;
    x->created_at = o->now;
    x->expires_at = o->now + KP_INVITATION_TTL_SECONDS;
    if ((err = pp->invitation_insert(o->st, x))) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    /* A customer holding the phone hears of it (family_invite); anyone
     * else sees it in the cabinet once they sign up with that phone. */
    if (invitee && (err = pp->customer_get(o->st, invitee, row)) == KP_OK &&
        row->state == KP_CUSTOMER_ACTIVE) {
        char key[KP_NOTIFY_KEY_MAX];
        snprintf(key, sizeof key, "family-invite:%lld", (long long)x->id);
        if ((err = kp_notify_emit(o->st, KP_NOTIFY_FAMILY_INVITE, key, row->account_id, invitee, "",
                                  0, o->now, NULL, e)))
            goto out;
    } else if (err) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    char target[48];
    snprintf(target, sizeof target, "family:%lld", (long long)f.id);
    if ((err = kp_office_audit(o, "family.invite", target, "invitation=%lld", (long long)x->id))) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    invitation_json(out, x, norm, NULL, o->now);
out:
    free(row);
    free(inv);
    return err;
}

kp_err kp_family_invitations(kp_office *o, kp_buf *out, kp_error *e)
{
    kp_err err = self_only(o, e);
    if (err == KP_OK) err = people_need_key(o, e);
    if (err) return err;
    const kp_people_ops *pp = o->st->ops->people;
    kp_customer_row *row = malloc(sizeof *row), *inviter = malloc(sizeof *inviter);
    kp_family_invitation *inv = calloc(KP_FAMILY_INVITATIONS_MAX, sizeof *inv);
    size_t n = 0;
    char text[KP_NAME_MAX + 1];
    if (row == NULL || inviter == NULL || inv == NULL) {
        err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
        goto out;
    }
    if ((err = load_self(o, row, e))) goto out;
    kp_buf_reset(out);
    kp_buf_puts(out, "{\"received\":[");
    if (row->has_phone_ix && (err = pp->invitations_pending(o->st, 0, row->phone_ix, o->now, inv,
                                                            KP_FAMILY_INVITATIONS_MAX, &n))) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        /* Who invited: the owner's name, which they share by inviting. */
        text[0] = '\0';
        if (pp->customer_get(o->st, inv[i].inviter_id, inviter) == KP_OK &&
            inviter->state == KP_CUSTOMER_ACTIVE)
            open_small(o, KP_PII_NAME, &inviter->name, text, sizeof text);
        if (i) kp_buf_puts(out, ",");
        invitation_json(out, &inv[i], NULL, text, o->now);
    }
    kp_buf_puts(out, "],\"sent\":[");
    kp_family f;
    kp_family_member m;
    n = 0;
    err = pp->member_get(o->st, o->actor.customer_id, &m);
    if (err == KP_OK && (err = pp->family_get(o->st, m.family_id, 0, &f)) == KP_OK &&
        f.owner_id == o->actor.customer_id)
        err =
            pp->invitations_pending(o->st, f.id, NULL, o->now, inv, KP_FAMILY_INVITATIONS_MAX, &n);
    if (err == KP_ERR_NOT_FOUND) err = KP_OK;
    if (err) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        open_small(o, KP_PII_PHONE, &inv[i].phone, text, sizeof text);
        if (i) kp_buf_puts(out, ",");
        invitation_json(out, &inv[i], text, NULL, o->now);
    }
    kp_buf_puts(out, "]}");
    if (out->failed) err = kp_error_set(e, KP_ERR_NOMEM, "", "the answer is too large");
out:
    free(inv);
    free(inviter);
    free(row);
    return err;
}

kp_err kp_family_invitation_answer(kp_office *o, int64_t id, bool accept, kp_buf *out, kp_error *e)
{
    kp_err err = self_only(o, e);
    if (err) return err;
    const kp_people_ops *pp = o->st->ops->people;
    kp_customer_row *row = malloc(sizeof *row);
    kp_family_invitation inv;
    if (row == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    if ((err = load_self(o, row, e))) goto out;
    /* Someone else's invitation is as unknown as one never made. */
    err = pp->invitation_get(o->st, id, &inv);
    if (err == KP_OK && (!row->has_phone_ix || memcmp(inv.phone_ix, row->phone_ix, 32) != 0))
        err = KP_ERR_NOT_FOUND;
    if (err == KP_ERR_NOT_FOUND) {
        err = kp_error_set(e, err, "invitation", "no invitation %lld", (long long)id);
        goto out;
    }
    if (err) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    if (inv.state != KP_INVITATION_PENDING || inv.expires_at <= o->now) {
        err = kp_error_set(e, KP_ERR_CONFLICT, "invitation",
                           "invitation %lld is %s: only a pending one can be answered (ask the "
                           "family's owner for a new one)",
                           (long long)id,
                           inv.state == KP_INVITATION_PENDING ? "expired" : state_name(inv.state));
        goto out;
    }
    inv.state = accept ? KP_INVITATION_ACCEPTED : KP_INVITATION_DECLINED;
    inv.invitee_id = o->actor.customer_id;
    inv.answered_at = o->now;
    if ((err = pp->invitation_update(o->st, &inv))) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    /* Joining moves the invitee's points into the pot; the owner decides
     * later whether they may spend from it. */
    if (accept && (err = people_family_join(o, inv.family_id, o->actor.customer_id, false, out, e)))
        goto out;
    char target[48];
    snprintf(target, sizeof target, "family:%lld", (long long)inv.family_id);
    if ((err = kp_office_audit(o, accept ? "family.invitation.accept" : "family.invitation.decline",
                               target, "invitation=%lld", (long long)id))) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    if (!accept) {
        kp_buf_reset(out);
        invitation_json(out, &inv, NULL, NULL, o->now);
    }
out:
    free(row);
    return err;
}
