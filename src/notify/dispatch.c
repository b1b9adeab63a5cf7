/*
 * dispatch.c: one event into its messages (kp_notify_plan): who hears of
 * it (the customer of the event, of its card or of its account), on which
 * channels (preferences, consent, what is configured, what contact the
 * customer has), in which language, when (quiet hours), with which texts
 * (the store's templates, else Kopilka's), sealed; plus one delivery per
 * webhook endpoint subscribed to the kind. Also opening a message for
 * sending (kp_notify_open) and the unsubscribe links' tokens.
 */
#include "notify/notify.h"

#include <kopilka/clock.h>

#include "crypto/pii.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    ENDPOINTS_MAX = 256,      /* webhook endpoints read per event */
    TEXT_MAX = 64 * 1024,     /* a rendered text */
    TOKEN_MAC_BYTES = 16,
    TOKEN_RAW = 8 + 1 + TOKEN_MAC_BYTES,
};

/* The path of the unsubscribe route below config->public_url. */
#define UNSUBSCRIBE_PATH "/v1/unsubscribe/"

/* A webhook's blob is its body as it is (it holds no personal data), which
 * begins {"type":"earned",...; a sealed blob begins with a random nonce. */
static const char WEBHOOK_BODY[] = "{\"type\":";

/* ---- unsubscribe tokens */

static bool link_key(const kp_notify_env *env, uint8_t key[32])
{
    if (env->has_link_key) {
        memcpy(key, env->link_key, 32);
        return true;
    }
    if (env->pii == NULL) return false;
    /* As kp_notify_env_init derives it. */
    static const char ctx[] = "kopilka unsubscribe links";
    kp_pii_mac(env->pii, KP_PII_LINK, ctx, sizeof ctx - 1, key);
    return true;
}

static bool token_mac(const kp_notify_env *env, const uint8_t *data, size_t len,
                      uint8_t mac[TOKEN_MAC_BYTES])
{
    uint8_t key[32];
    if (!link_key(env, key)) return false;
    crypto_generichash(mac, TOKEN_MAC_BYTES, data, len, key, sizeof key);
    sodium_memzero(key, sizeof key);
    return true;
}

void kp_unsubscribe_token(const kp_notify_env *env, int64_t customer_id, kp_channel channel,
                          char *out, size_t out_size)
{
    uint8_t raw[TOKEN_RAW];
    for (int i = 0; i < 8; i++) raw[i] = (uint8_t)((uint64_t)customer_id >> (56 - 8 * i));
    raw[8] = (uint8_t)channel;
    if (out_size == 0) return;
    out[0] = '\0';
    if (!token_mac(env, raw, 9, raw + 9)) return;
    if (out_size < sodium_base64_ENCODED_LEN(TOKEN_RAW,
                                             sodium_base64_VARIANT_URLSAFE_NO_PADDING))
        return;
    sodium_bin2base64(out, out_size, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

bool kp_unsubscribe_check(const kp_notify_env *env, const char *token, int64_t *customer_id,
                          kp_channel *channel)
{
    uint8_t raw[TOKEN_RAW + 1], mac[TOKEN_MAC_BYTES];
    size_t len = 0;
    if (sodium_base642bin(raw, sizeof raw, token, strlen(token), NULL, &len, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        len != TOKEN_RAW)
        return false;
    if (!token_mac(env, raw, 9, mac) || sodium_memcmp(mac, raw + 9, TOKEN_MAC_BYTES) != 0)
        return false;
    uint64_t id = 0;
    for (int i = 0; i < 8; i++) id = id << 8 | raw[i];
    if (raw[8] != KP_CHANNEL_EMAIL && raw[8] != KP_CHANNEL_SMS) return false;
    *customer_id = (int64_t)id;
    *channel = (kp_channel)raw[8];
    return true;
}

/* ---- planning */

/* What one plan needs on the way. */
typedef struct plan {
    kp_store *st;
    const kp_notify_env *env;
    const kp_notify_policy *policy;
    const kp_notify_event *ev;
    kp_time now;
    json_t *payload; /* the figures (opened when sealed); NULL when none or unreadable */
    int64_t customer_id;
    kp_message *out;
    size_t cap, *n;
    kp_error *e;
} plan;

static kp_err store_error(kp_store *st, kp_err err, const char *what, kp_error *e)
{
    return kp_error_set(e, err, "", "reading %s failed: %s", what, st->last_error);
}

/* Seals blob into a new message of the plan. */
static kp_err add_message(plan *p, kp_channel channel, int64_t endpoint_id, int64_t customer_id,
                          kp_time next_at, const char *blob, bool seal)
{
    if (*p->n == p->cap)
        return kp_error_set(p->e, KP_ERR_LIMIT, "", "event %lld makes more than %zu messages",
                            (long long)p->ev->id, p->cap);
    kp_message *m = &p->out[*p->n];
    memset(m, 0, sizeof *m);
    if (endpoint_id)
        snprintf(m->key, sizeof m->key, "%lld/webhook/%lld", (long long)p->ev->id,
                 (long long)endpoint_id);
    else
        snprintf(m->key, sizeof m->key, "%lld/%s", (long long)p->ev->id, kp_channel_name(channel));
    m->event_id = p->ev->id;
    m->kind = p->ev->kind;
    m->channel = channel;
    m->customer_id = customer_id;
    m->endpoint_id = endpoint_id;
    m->state = KP_MSG_PENDING;
    m->created_at = p->now;
    m->next_at = next_at;
    size_t len = strlen(blob);
    m->sealed = malloc(len + KP_PII_OVERHEAD);
    if (m->sealed == NULL) return kp_error_set(p->e, KP_ERR_NOMEM, "", "out of memory");
    if (seal) {
        if (kp_pii_seal(p->env->pii, KP_PII_MESSAGE, blob, len, m->sealed, len + KP_PII_OVERHEAD,
                        &m->sealed_len) != KP_OK) {
            kp_message_release(m);
            return kp_error_set(p->e, KP_ERR_INTERNAL, "", "sealing a message failed");
        }
    } else {
        memcpy(m->sealed, blob, len);
        m->sealed_len = len;
    }
    (*p->n)++;
    return KP_OK;
}

kp_err kp_notify_endpoints_read(kp_store *st, kp_webhook_endpoint **out, size_t *n, kp_error *e)
{
    *out = NULL;
    *n = 0;
    kp_webhook_endpoint *eps = malloc(ENDPOINTS_MAX * sizeof *eps);
    if (eps == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    kp_err err = st->ops->notify->endpoints_list(st, eps, ENDPOINTS_MAX, n);
    if (err) {
        free(eps);
        *n = 0;
        return store_error(st, err, "webhook endpoints", e);
    }
    *out = eps;
    return KP_OK;
}

static kp_err plan_webhooks(plan *p)
{
    const kp_notify_config *cfg = p->env->config;
    if (cfg && !cfg->webhook.on) return KP_OK;
    kp_webhook_endpoint *own = NULL;
    const kp_webhook_endpoint *eps = p->env->endpoints;
    size_t n = p->env->n_endpoints;
    kp_err err = KP_OK;
    if (eps == NULL) {
        if ((err = kp_notify_endpoints_read(p->st, &own, &n, p->e))) return err;
        eps = own;
    }
    const kp_notify_event *ev = p->ev;
    json_t *body = NULL;
    char *text = NULL;
    for (size_t i = 0; i < n && err == KP_OK; i++) {
        if (!eps[i].active || (eps[i].kinds && !(eps[i].kinds & (1u << ev->kind)))) continue;
        if (body == NULL) {
            char at[32]; /* the event's time: data.at and the body's timestamp */
            kp_time_format(ev->at, at, sizeof at);
            json_t *data = json_pack("{s:I,s:s,s:I,s:I,s:s,s:I,s:s}", "event_id",
                                     (json_int_t)ev->id, "key", ev->key, "account_id",
                                     (json_int_t)ev->account_id, "customer_id",
                                     (json_int_t)p->customer_id, "card", ev->card, "op_id",
                                     (json_int_t)ev->op_id, "at", at);
            /* The figures; a sealed payload (a login code, a campaign's
             * texts) never leaves in a webhook. */
            if (data && p->payload && !ev->sealed) json_object_update_missing(data, p->payload);
            body = data ? json_pack("{s:s,s:s,s:o}", "type", kp_notify_kind_name(ev->kind),
                                    "timestamp", at, "data", data)
                        : NULL;
            if (body == NULL) err = kp_error_set(p->e, KP_ERR_NOMEM, "", "out of memory");
            if (err) break;
        }
        /* The body is the blob, as it is: it holds no personal data (no
         * name, phone or e-mail; a sealed payload never goes), so it is
         * not sealed, and it is written once for every endpoint. */
        if (text == NULL) text = json_dumps(body, JSON_COMPACT);
        if (text == NULL)
            err = kp_error_set(p->e, KP_ERR_NOMEM, "", "out of memory");
        else
            err = add_message(p, KP_CHANNEL_WEBHOOK, eps[i].id, 0, p->now, text, false);
    }
    free(text);
    json_decref(body);
    free(own);
    return err;
}

/* The customer the event is about: its own, the card's holder, or the
 * account's first customer; 0 when none. */
static kp_err find_customer(plan *p)
{
    const kp_notify_event *ev = p->ev;
    p->customer_id = ev->customer_id;
    if (p->customer_id == 0 && ev->card[0]) {
        kp_card_info info;
        kp_err err = p->st->ops->people->card_info_get(p->st, ev->card, &info);
        if (err == KP_OK)
            p->customer_id = info.customer_id;
        else if (err != KP_ERR_NOT_FOUND)
            return store_error(p->st, err, "the event's card", p->e);
    }
    if (p->customer_id == 0 && ev->account_id) {
        size_t n = 0;
        kp_err err = p->st->ops->people->customers_of_account(p->st, ev->account_id,
                                                              &p->customer_id, 1, &n);
        if (err) return store_error(p->st, err, "the account's customers", p->e);
        if (n == 0) p->customer_id = 0;
    }
    return KP_OK;
}

/* Opens a sealed field of a customer into out ("" when absent). */
static bool unseal(const kp_pii *pii, kp_pii_field field, const kp_sealed *s, char *out,
                   size_t cap)
{
    out[0] = '\0';
    size_t len;
    return s->len == 0 || kp_pii_open(pii, field, s->data, s->len, out, cap, &len) == KP_OK;
}

/* The name to greet with: of "Surname Given Patronymic" the given name,
 * else the first word. */
static void first_name_of(const char *name, char *out, size_t size)
{
    const char *words[3];
    size_t lens[3], n = 0;
    for (const char *s = name; *s && n < 3;) {
        while (*s == ' ') s++;
        if (!*s) break;
        const char *w = s;
        while (*s && *s != ' ') s++;
        words[n] = w;
        lens[n++] = (size_t)(s - w);
    }
    size_t i = n == 3 ? 1 : 0;
    snprintf(out, size, "%.*s", n ? (int)lens[i] : 0, n ? words[i] : "");
}

/* A campaign's text of one part in `lang` (else the policy's language,
 * else Russian, else any); NULL when the payload has none. */
static const char *campaign_part(const json_t *payload, const char *part, const char *lang,
                                 const char *policy_lang)
{
    json_t *o = payload ? json_object_get(payload, part) : NULL;
    if (json_is_string(o)) return json_string_value(o);
    if (!json_is_object(o)) return NULL;
    const char *tries[] = {lang, policy_lang, "ru"};
    for (size_t i = 0; i < 3; i++) {
        json_t *v = json_object_get(o, tries[i]);
        if (json_is_string(v)) return json_string_value(v);
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v) if (json_is_string(v)) return json_string_value(v);
    return NULL;
}

/* The texts of a kind and channel: store's in lang, else Kopilka's in
 * lang, the policy's language, Russian. *used_lang says which language
 * the texts are in. */
typedef struct texts {
    kp_template_row row; /* the store's, when found */
    bool from_store;
    const char *subject, *text, *html;
    char lang[KP_LANGUAGE_MAX];
} texts;

static kp_err find_texts(plan *p, kp_channel channel, const char *lang, texts *t)
{
    memset(t, 0, sizeof *t);
    kp_err err = p->st->ops->notify->template_get(p->st, p->ev->kind, channel, lang, &t->row);
    if (err == KP_OK) {
        t->from_store = true;
        t->subject = t->row.subject;
        t->text = t->row.text;
        t->html = t->row.html;
        snprintf(t->lang, sizeof t->lang, "%s", lang);
        return KP_OK;
    }
    if (err != KP_ERR_NOT_FOUND) return store_error(p->st, err, "a template", p->e);
    const char *tries[] = {lang, p->policy->language, "ru"};
    for (size_t i = 0; i < 3; i++) {
        const kp_template_text *b = kp_template_builtin(p->ev->kind, channel, tries[i]);
        if (b) {
            t->subject = b->subject;
            t->text = b->text;
            t->html = b->html;
            snprintf(t->lang, sizeof t->lang, "%s", tries[i]);
            return KP_OK;
        }
    }
    return kp_error_set(p->e, KP_ERR_INTERNAL, "", "no built-in template for %s",
                        kp_notify_kind_name(p->ev->kind));
}

/* Compiles and renders one part into out ("" for an empty source). */
static kp_err render_part(plan *p, const char *src, const char *part, const kp_vars *vars,
                          bool html, kp_buf *out)
{
    kp_buf_reset(out);
    kp_buf_puts(out, "");
    if (src == NULL || src[0] == '\0') return KP_OK;
    kp_template *t;
    kp_err err = kp_template_compile(p->ev->kind, src, part, &t, p->e);
    if (err) return err;
    err = kp_template_render(t, vars, html, out);
    kp_template_free(t);
    if (err)
        return kp_error_set(p->e, err, part, "the rendered %s is over %zu bytes", part,
                            (size_t)TEXT_MAX);
    return KP_OK;
}

static kp_err plan_channel(plan *p, kp_channel channel, const char *to, const char *lang,
                           const kp_notify_prefs *prefs, const char *first_name)
{
    const kp_notify_env *env = p->env;
    const kp_notify_event *ev = p->ev;
    texts t;
    kp_err err = find_texts(p, channel, lang, &t);
    if (err) return err;

    kp_vars vars;
    int32_t program_offset = env->program ? env->program->utc_offset_minutes : 0;
    int32_t offset = prefs->has_utc_offset ? prefs->utc_offset_minutes : program_offset;
    err = kp_vars_from_event_in(ev, p->payload, t.lang, offset,
                                env->program ? env->program->currency : "", first_name,
                                env->program ? env->program->name : "", &vars, p->e);
    char unsubscribe[KP_URL_MAX] = "";
    if (err == KP_OK && kp_notify_marketing(ev->kind) && env->config &&
        env->config->public_url[0]) {
        char token[64];
        kp_unsubscribe_token(env, p->customer_id, channel, token, sizeof token);
        size_t base = strlen(env->config->public_url);
        while (base > 0 && env->config->public_url[base - 1] == '/') base--;
        int w = snprintf(unsubscribe, sizeof unsubscribe, "%.*s%s%s", (int)base,
                         env->config->public_url, UNSUBSCRIBE_PATH, token);
        if (token[0] == '\0' || w < 0 || (size_t)w >= sizeof unsubscribe) unsubscribe[0] = '\0';
        kp_vars_set(&vars, "unsubscribe_url", unsubscribe);
    }
    kp_buf subject, text, html;
    kp_buf_init(&subject, TEXT_MAX);
    kp_buf_init(&text, TEXT_MAX);
    kp_buf_init(&html, TEXT_MAX);
    bool email = channel == KP_CHANNEL_EMAIL;
    /* A campaign's own texts are templates too: rendered first, they
     * become the fields subject and text of the kind's template (which
     * adds the greeting and the unsubscribe link); one too long for a
     * field, or the campaign's own HTML, is the part itself. */
    bool done[3] = {false, false, false};
    if (err == KP_OK && ev->kind == KP_NOTIFY_CAMPAIGN) {
        static const char *const parts[] = {"subject", "text", "html"};
        kp_buf *bufs[] = {&subject, &text, &html};
        for (size_t i = 0; i < 3 && err == KP_OK; i++) {
            if (i != 1 && !email) continue;
            const char *src = campaign_part(p->payload, parts[i], t.lang, p->policy->language);
            if (src == NULL) continue;
            err = render_part(p, src, parts[i], &vars, i == 2, bufs[i]);
            if (err == KP_OK && (i == 2 || !kp_vars_set(&vars, parts[i], bufs[i]->data)))
                done[i] = true;
        }
    }
    if (err == KP_OK && email && !done[0])
        err = render_part(p, t.subject, "subject", &vars, false, &subject);
    if (err == KP_OK && !done[1]) err = render_part(p, t.text, "text", &vars, false, &text);
    if (err == KP_OK && email && !done[2])
        err = render_part(p, t.html, "html", &vars, true, &html);
    if (err == KP_OK) {
        json_t *blob = json_pack("{s:s,s:s,s:s,s:s,s:s}", "to", to, "subject",
                                 subject.data ? subject.data : "", "text",
                                 text.data ? text.data : "", "html", html.data ? html.data : "",
                                 "unsubscribe_url", unsubscribe);
        char *s = blob ? json_dumps(blob, JSON_COMPACT) : NULL;
        if (s == NULL) {
            err = kp_error_set(p->e, KP_ERR_NOMEM, "", "out of memory");
        } else {
            kp_time next = kp_notify_urgent(ev->kind)
                               ? p->now
                               : kp_notify_quiet_next(p->policy, prefs, program_offset, p->now);
            err = add_message(p, channel, 0, p->customer_id, next, s, true);
        }
        if (s) sodium_memzero(s, strlen(s));
        free(s);
        json_decref(blob);
    }
    kp_buf_release(&subject);
    kp_buf_release(&text);
    kp_buf_release(&html);
    if (t.from_store) kp_template_row_release(&t.row);
    return err;
}

/* A sign-up's code (kp_office_signup_code): nobody's yet, so it goes to
 * the phone its sealed payload names, in the program's language. */
static kp_err plan_signup(plan *p)
{
    json_t *to = json_object_get(p->payload, "to"), *ch = json_object_get(p->payload, "channel");
    kp_channel want;
    if (!json_is_string(to) || !json_is_string(ch) ||
        !kp_channel_parse(json_string_value(ch), &want) || want == KP_CHANNEL_WEBHOOK)
        return KP_OK;
    const kp_notify_config *cfg = p->env->config;
    if (cfg == NULL || (want == KP_CHANNEL_SMS && !cfg->sms.on) ||
        (want == KP_CHANNEL_EMAIL && !cfg->email.on))
        return KP_OK;
    kp_notify_prefs prefs;
    memset(&prefs, 0, sizeof prefs);
    return plan_channel(p, want, json_string_value(to), p->policy->language, &prefs, "");
}

static kp_err plan_customer(plan *p)
{
    const kp_notify_env *env = p->env;
    const kp_notify_event *ev = p->ev;
    bool login = ev->kind == KP_NOTIFY_LOGIN_CODE;
    if (login && p->customer_id == 0 && ev->account_id == 0 && env->pii && p->payload)
        return plan_signup(p);
    if (p->customer_id == 0 || env->pii == NULL) return KP_OK;
    if (!login && !(p->policy->kinds & (1u << ev->kind))) return KP_OK;
    if (ev->sealed && p->payload == NULL) return KP_OK; /* nothing readable to send */

    kp_customer_row *c = malloc(sizeof *c);
    if (c == NULL) return kp_error_set(p->e, KP_ERR_NOMEM, "", "out of memory");
    kp_err err = p->st->ops->people->customer_get(p->st, p->customer_id, c);
    if (err == KP_ERR_NOT_FOUND || (err == KP_OK && c->state == KP_CUSTOMER_ERASED)) {
        free(c);
        return KP_OK;
    }
    if (err) {
        free(c);
        return store_error(p->st, err, "the customer", p->e);
    }

    kp_notify_prefs prefs;
    err = p->st->ops->notify->prefs_get(p->st, p->customer_id, &prefs);
    if (err == KP_ERR_NOT_FOUND) {
        memset(&prefs, 0, sizeof prefs);
        prefs.customer_id = p->customer_id;
        prefs.transactional = p->policy->transactional_default;
        prefs.marketing = p->policy->marketing_default;
        err = KP_OK;
    }
    if (err) {
        free(c);
        return store_error(p->st, err, "notification preferences", p->e);
    }

    uint32_t channels;
    if (login) {
        /* The customer asked for the code, on this channel. */
        json_t *ch = json_object_get(p->payload, "channel");
        kp_channel want;
        channels = json_is_string(ch) && kp_channel_parse(json_string_value(ch), &want) &&
                           want != KP_CHANNEL_WEBHOOK
                       ? 1u << want
                       : 0;
    } else if (kp_notify_marketing(ev->kind)) {
        channels = prefs.marketing_consent_at > 0 ? prefs.marketing : 0;
    } else {
        channels = prefs.transactional;
    }
    const kp_notify_config *cfg = env->config;
    if (cfg == NULL || !cfg->email.on) channels &= ~(1u << KP_CHANNEL_EMAIL);
    if (cfg == NULL || !cfg->sms.on) channels &= ~(1u << KP_CHANNEL_SMS);

    char name[KP_NAME_MAX + 1], first[KP_NAME_MAX + 1], to[KP_EMAIL_MAX + 1];
    const char *lang = prefs.language[0] ? prefs.language : p->policy->language;
    if (channels && !unseal(env->pii, KP_PII_NAME, &c->name, name, sizeof name)) name[0] = '\0';
    first_name_of(name, first, sizeof first);
    static const kp_channel order[] = {KP_CHANNEL_EMAIL, KP_CHANNEL_SMS};
    for (size_t i = 0; i < 2 && err == KP_OK; i++) {
        kp_channel ch = order[i];
        if (!(channels & (1u << ch))) continue;
        bool ok = ch == KP_CHANNEL_EMAIL
                      ? unseal(env->pii, KP_PII_EMAIL, &c->email, to, sizeof to)
                      : unseal(env->pii, KP_PII_PHONE, &c->phone, to, sizeof to);
        if (!ok || to[0] == '\0') continue; /* no such contact (or another key file) */
        err = plan_channel(p, ch, to, lang, &prefs, first);
    }
    sodium_memzero(name, sizeof name);
    sodium_memzero(c, sizeof *c);
    free(c);
    return err;
}

/* Whether a message of `kind` could go anywhere: e-mail or SMS configured
 * (with the key file to read contacts) for a kind the program tells
 * customers of, or an active webhook endpoint subscribed to it (unknown
 * when the caller gave no endpoints: then yes). */
static bool anyone_listens(const kp_notify_env *env, const kp_notify_policy *policy,
                           kp_notify_kind kind)
{
    const kp_notify_config *cfg = env->config;
    bool channel = cfg && (cfg->email.on || cfg->sms.on);
    bool told = kind == KP_NOTIFY_LOGIN_CODE || (policy->kinds & (1u << kind));
    if (env->pii && channel && told) return true;
    if (cfg && !cfg->webhook.on) return false;
    if (env->endpoints == NULL) return true;
    for (size_t i = 0; i < env->n_endpoints; i++)
        if (env->endpoints[i].active &&
            (env->endpoints[i].kinds == 0 || (env->endpoints[i].kinds & (1u << kind))))
            return true;
    return false;
}

kp_err kp_notify_plan(kp_store *st, const kp_notify_env *env, const kp_notify_event *ev,
                      kp_time now, kp_message *out, size_t cap, size_t *n, kp_error *e)
{
    *n = 0;
    if (ev->kind <= 0 || ev->kind >= KP_NOTIFY__COUNT)
        return kp_error_set(e, KP_ERR_INVALID, "kind", "event %lld has an unknown kind %d",
                            (long long)ev->id, (int)ev->kind);
    plan p = {.st = st, .env = env, .ev = ev, .now = now, .out = out, .cap = cap, .n = n, .e = e};
    p.policy = env->policy ? env->policy : kp_notify_policy_of(st, env->program);
    if (!anyone_listens(env, p.policy, ev->kind)) return KP_OK; /* nobody to tell: no reads */

    /* The figures: sealed ones only with the key file. */
    if (ev->payload_len > 0) {
        char *plain = NULL;
        size_t len = ev->payload_len;
        if (ev->sealed && env->pii && ev->payload_len > KP_PII_OVERHEAD) {
            plain = malloc(ev->payload_len);
            if (plain && kp_pii_open(env->pii, KP_PII_MESSAGE, ev->payload, ev->payload_len,
                                     plain, ev->payload_len, &len) != KP_OK) {
                free(plain);
                plain = NULL;
            }
        }
        const char *text = ev->sealed ? plain : (const char *)ev->payload;
        if (text) p.payload = json_loadb(text, len, 0, NULL);
        if (plain) {
            sodium_memzero(plain, ev->payload_len);
            free(plain);
        }
        if (text && !json_is_object(p.payload)) {
            json_decref(p.payload);
            return kp_error_set(e, KP_ERR_INVALID, "payload",
                                "event %lld's payload is not a JSON object", (long long)ev->id);
        }
    }

    kp_err err = find_customer(&p);
    if (err == KP_OK) err = plan_customer(&p);
    if (err == KP_OK) err = plan_webhooks(&p);
    json_decref(p.payload);
    if (err) {
        for (size_t i = 0; i < *n; i++) kp_message_release(&out[i]);
        *n = 0;
    }
    return err;
}

/* ---- opening */

static char *dup_member(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return strdup(json_is_string(v) ? json_string_value(v) : "");
}

kp_err kp_notify_open(const kp_notify_env *env, const kp_message *m, kp_outgoing *out,
                      kp_error *e)
{
    memset(out, 0, sizeof *out);
    out->m = m;
    size_t plain_len = 0;
    /* A webhook's body stored as it is (plan_webhooks). */
    if (m->channel == KP_CHANNEL_WEBHOOK && m->sealed_len >= sizeof WEBHOOK_BODY - 1 &&
        memcmp(m->sealed, WEBHOOK_BODY, sizeof WEBHOOK_BODY - 1) == 0) {
        out->body = malloc(m->sealed_len + 1);
        if (out->body == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
        memcpy(out->body, m->sealed, m->sealed_len);
        out->body[m->sealed_len] = '\0';
        return KP_OK;
    }
    if (m->sealed_len == 0)
        return kp_error_set(e, KP_ERR_NOT_FOUND, "message",
                            "message %lld has no text (erased)", (long long)m->id);
    if (m->channel == KP_CHANNEL_WEBHOOK)
        return kp_error_set(e, KP_ERR_INVALID, "message",
                            "message %lld's webhook body is malformed", (long long)m->id);
    if (env->pii == NULL)
        return kp_error_set(e, KP_ERR_UNAUTHORIZED, "key",
                            "message %lld is sealed and no key file is loaded", (long long)m->id);
    char *plain = malloc(m->sealed_len);
    if (plain && kp_pii_open(env->pii, KP_PII_MESSAGE, m->sealed, m->sealed_len, plain,
                             m->sealed_len, &plain_len) != KP_OK) {
        free(plain);
        return kp_error_set(e, KP_ERR_INVALID, "key",
                            "message %lld cannot be opened with this key file", (long long)m->id);
    }
    if (plain == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    json_t *o = json_loadb(plain, plain_len, 0, NULL);
    sodium_memzero(plain, plain_len);
    free(plain);
    if (!json_is_object(o)) {
        json_decref(o);
        return kp_error_set(e, KP_ERR_INVALID, "message", "message %lld's blob is malformed",
                            (long long)m->id);
    }
    kp_err err = KP_OK;
    json_t *to = json_object_get(o, "to");
    json_t *u = json_object_get(o, "unsubscribe_url");
    if (!json_is_string(to) || json_string_length(to) >= sizeof out->to)
        err = kp_error_set(e, KP_ERR_INVALID, "message",
                           "message %lld has no recipient", (long long)m->id);
    else
        snprintf(out->to, sizeof out->to, "%s", json_string_value(to));
    if (json_is_string(u) && json_string_length(u) < sizeof out->unsubscribe_url)
        snprintf(out->unsubscribe_url, sizeof out->unsubscribe_url, "%s",
                 json_string_value(u));
    out->subject = dup_member(o, "subject");
    out->text = dup_member(o, "text");
    out->html = dup_member(o, "html");
    if (err == KP_OK && (!out->subject || !out->text || !out->html)) err = KP_ERR_NOMEM;
    json_decref(o);
    if (err == KP_ERR_NOMEM) kp_error_set(e, err, "", "out of memory");
    if (err) {
        free(out->subject);
        free(out->text);
        free(out->html);
        free(out->body);
        memset(out, 0, sizeof *out);
    }
    return err;
}
