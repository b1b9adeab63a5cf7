/*
 * kinds.c: the names of notification kinds, channels and message states,
 * as the API, the webhooks and the templates spell them (kopilka/notify.h).
 */
#include <stdlib.h>
#include <string.h>

#include "notify/notify.h"

static const char *const kind_names[KP_NOTIFY__COUNT] = {
    [KP_NOTIFY_EARNED] = "earned",
    [KP_NOTIFY_BURNT] = "burnt",
    [KP_NOTIFY_RETURNED] = "returned",
    [KP_NOTIFY_EXPIRING] = "expiring",
    [KP_NOTIFY_EXPIRED] = "expired",
    [KP_NOTIFY_BIRTHDAY] = "birthday",
    [KP_NOTIFY_GRANTED] = "granted",
    [KP_NOTIFY_ADJUSTED] = "adjusted",
    [KP_NOTIFY_WELCOME] = "welcome",
    [KP_NOTIFY_TIER] = "tier",
    [KP_NOTIFY_TRANSFER_IN] = "transfer_in",
    [KP_NOTIFY_TRANSFER_OUT] = "transfer_out",
    [KP_NOTIFY_CARD_BLOCKED] = "card_blocked",
    [KP_NOTIFY_CARD_REPLACED] = "card_replaced",
    [KP_NOTIFY_LOGIN_CODE] = "login_code",
    [KP_NOTIFY_CAMPAIGN] = "campaign",
    [KP_NOTIFY_FAMILY_INVITE] = "family_invite",
    [KP_NOTIFY_ORDER_PLACED] = "order_placed",
    [KP_NOTIFY_ORDER_READY] = "order_ready",
    [KP_NOTIFY_ORDER_CANCELLED] = "order_cancelled",
};

static const char *const channel_names[KP_CHANNEL__COUNT] = {
    [KP_CHANNEL_EMAIL] = "email",
    [KP_CHANNEL_SMS] = "sms",
    [KP_CHANNEL_WEBHOOK] = "webhook",
};

static const char *const state_names[] = {
    [KP_MSG_PENDING] = "pending",
    [KP_MSG_SENT] = "sent",
    [KP_MSG_DEAD] = "dead",
    [KP_MSG_CANCELLED] = "cancelled",
};

/* The index of `name` in names[1..n), or 0. */
static int lookup(const char *const *names, int n, const char *name, int first)
{
    for (int i = first; i < n; i++)
        if (names[i] && strcmp(names[i], name) == 0) return i;
    return -1;
}

const char *kp_notify_kind_name(kp_notify_kind kind)
{
    return kind > 0 && kind < KP_NOTIFY__COUNT ? kind_names[kind] : NULL;
}

bool kp_notify_kind_parse(const char *name, kp_notify_kind *out)
{
    int i = lookup(kind_names, KP_NOTIFY__COUNT, name, 1);
    if (i < 0) return false;
    *out = (kp_notify_kind)i;
    return true;
}

const char *kp_channel_name(kp_channel channel)
{
    return channel > 0 && channel < KP_CHANNEL__COUNT ? channel_names[channel] : NULL;
}

bool kp_channel_parse(const char *name, kp_channel *out)
{
    int i = lookup(channel_names, KP_CHANNEL__COUNT, name, 1);
    if (i < 0) return false;
    *out = (kp_channel)i;
    return true;
}

const char *kp_message_state_name(kp_message_state state)
{
    return (unsigned)state <= KP_MSG_CANCELLED ? state_names[state] : NULL;
}

bool kp_message_state_parse(const char *name, kp_message_state *out)
{
    int i = lookup(state_names, KP_MSG_CANCELLED + 1, name, 0);
    if (i < 0) return false;
    *out = (kp_message_state)i;
    return true;
}

void kp_notify_event_release(kp_notify_event *ev)
{
    free(ev->payload);
    ev->payload = NULL;
    ev->payload_len = 0;
}

void kp_message_release(kp_message *m)
{
    free(m->sealed);
    m->sealed = NULL;
    m->sealed_len = 0;
}

void kp_template_row_release(kp_template_row *t)
{
    free(t->subject);
    free(t->text);
    free(t->html);
    t->subject = t->text = t->html = NULL;
}
