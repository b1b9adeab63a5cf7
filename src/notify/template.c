/*
 * template.c: message templates ({{field}}, {{#field}}...{{/field}},
 * {{^field}}...{{/field}}): compiling with the fields a kind offers,
 * rendering (HTML-escaped for the HTML part), and the values: an event's
 * figures formatted for the customer's language and calendar.
 */
#include "notify/notify.h"

#include <kopilka/clock.h>

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the fields */

enum field {
    F_FIRST_NAME, F_CARD, F_CARD_LAST4, F_PROGRAM, F_BALANCE, F_BALANCES,
    F_EARNED, F_BURNT, F_POINTS, F_CHANGE, F_EXPIRY_POINTS, F_EXPIRY_DATE,
    F_AMOUNT, F_STORE, F_RECEIPT, F_TIER, F_TIER_BEFORE, F_OTHER_CARD,
    F_REASON, F_CODE, F_UNSUBSCRIBE_URL, F_SUBJECT, F_TEXT, F_ITEM, F_ORDER, F_QTY,
    F__COUNT
};

static const char *const field_names[F__COUNT] = {
    [F_FIRST_NAME] = "first_name", [F_CARD] = "card", [F_CARD_LAST4] = "card_last4",
    [F_PROGRAM] = "program", [F_BALANCE] = "balance", [F_BALANCES] = "balances",
    [F_EARNED] = "earned", [F_BURNT] = "burnt", [F_POINTS] = "points", [F_CHANGE] = "change",
    [F_EXPIRY_POINTS] = "expiry_points", [F_EXPIRY_DATE] = "expiry_date",
    [F_AMOUNT] = "amount", [F_STORE] = "store", [F_RECEIPT] = "receipt", [F_TIER] = "tier",
    [F_TIER_BEFORE] = "tier_before", [F_OTHER_CARD] = "other_card", [F_REASON] = "reason",
    [F_CODE] = "code", [F_UNSUBSCRIBE_URL] = "unsubscribe_url", [F_SUBJECT] = "subject",
    [F_TEXT] = "text", [F_ITEM] = "item", [F_ORDER] = "order", [F_QTY] = "qty",
};

#define B(f) (1u << (f))
#define COMMON (B(F_FIRST_NAME) | B(F_CARD) | B(F_CARD_LAST4) | B(F_PROGRAM) | B(F_BALANCE) | B(F_BALANCES))
#define EXPIRY (B(F_EXPIRY_POINTS) | B(F_EXPIRY_DATE))
#define RECEIPT (B(F_AMOUNT) | B(F_STORE) | B(F_RECEIPT))
#define ORDER (B(F_ITEM) | B(F_ORDER) | B(F_QTY) | B(F_POINTS) | B(F_STORE))

/* What each kind's figures hold (payload.c, emit.c). */
static const uint32_t kind_fields[KP_NOTIFY__COUNT] = {
    [KP_NOTIFY_EARNED] = COMMON | B(F_EARNED) | B(F_POINTS) | RECEIPT | EXPIRY,
    [KP_NOTIFY_BURNT] = COMMON | B(F_EARNED) | B(F_BURNT) | B(F_POINTS) | RECEIPT | EXPIRY,
    [KP_NOTIFY_RETURNED] = COMMON | B(F_EARNED) | B(F_BURNT) | B(F_POINTS) | RECEIPT,
    [KP_NOTIFY_EXPIRING] = COMMON | EXPIRY,
    [KP_NOTIFY_EXPIRED] = COMMON | B(F_POINTS) | EXPIRY,
    [KP_NOTIFY_BIRTHDAY] = COMMON | B(F_EARNED) | B(F_POINTS) | EXPIRY | B(F_UNSUBSCRIBE_URL),
    [KP_NOTIFY_GRANTED] = COMMON | B(F_EARNED) | B(F_POINTS) | B(F_REASON) | EXPIRY,
    [KP_NOTIFY_ADJUSTED] = COMMON | B(F_POINTS) | B(F_CHANGE) | B(F_REASON),
    [KP_NOTIFY_WELCOME] = COMMON,
    [KP_NOTIFY_TIER] = COMMON | B(F_TIER) | B(F_TIER_BEFORE),
    [KP_NOTIFY_TRANSFER_IN] = COMMON | B(F_POINTS) | B(F_OTHER_CARD),
    [KP_NOTIFY_TRANSFER_OUT] = COMMON | B(F_POINTS) | B(F_OTHER_CARD),
    [KP_NOTIFY_CARD_BLOCKED] = COMMON | B(F_REASON),
    [KP_NOTIFY_CARD_REPLACED] = COMMON | B(F_OTHER_CARD),
    [KP_NOTIFY_LOGIN_CODE] = B(F_FIRST_NAME) | B(F_PROGRAM) | B(F_CODE),
    [KP_NOTIFY_CAMPAIGN] = COMMON | B(F_SUBJECT) | B(F_TEXT) | B(F_UNSUBSCRIBE_URL),
    [KP_NOTIFY_FAMILY_INVITE] = B(F_FIRST_NAME) | B(F_PROGRAM),
    [KP_NOTIFY_ORDER_PLACED] = COMMON | ORDER,
    [KP_NOTIFY_ORDER_READY] = COMMON | ORDER,
    [KP_NOTIFY_ORDER_CANCELLED] = COMMON | ORDER,
};

static const char *kind_lists[KP_NOTIFY__COUNT][F__COUNT + 1];
static pthread_once_t lists_once = PTHREAD_ONCE_INIT;

static void lists_init(void)
{
    for (int k = 0; k < KP_NOTIFY__COUNT; k++) {
        size_t n = 0;
        for (int f = 0; f < F__COUNT; f++)
            if (kind_fields[k] & B(f)) kind_lists[k][n++] = field_names[f];
        kind_lists[k][n] = NULL;
    }
}

const char *const *kp_template_fields(kp_notify_kind kind)
{
    pthread_once(&lists_once, lists_init);
    return kind > 0 && kind < KP_NOTIFY__COUNT ? kind_lists[kind] : kind_lists[0];
}

static int field_find(const char *name, size_t len)
{
    for (int f = 0; f < F__COUNT; f++)
        if (strlen(field_names[f]) == len && memcmp(field_names[f], name, len) == 0) return f;
    return -1;
}

/* ---- values */

bool kp_vars_set(kp_vars *vars, const char *name, const char *value)
{
    int f = field_find(name, strlen(name));
    if (f < 0) return false; /* no template can name it */
    size_t i = 0;
    while (i < vars->n && strcmp(vars->v[i].name, field_names[f]) != 0) i++;
    if (i == vars->n) {
        if (vars->n == sizeof vars->v / sizeof vars->v[0]) return false;
        vars->v[vars->n++].name = field_names[f];
    }
    size_t len = strlen(value);
    if (len >= sizeof vars->v[i].value) {
        vars->v[i].value[0] = '\0';
        return false;
    }
    memcpy(vars->v[i].value, value, len + 1);
    return true;
}

const char *kp_vars_get(const kp_vars *vars, const char *name)
{
    for (size_t i = 0; i < vars->n; i++)
        if (strcmp(vars->v[i].name, name) == 0) return vars->v[i].value;
    return NULL;
}

/* ---- compiling */

enum node_type { N_TEXT, N_VAR, N_OPEN, N_OPEN_NOT, N_CLOSE };

typedef struct node {
    enum node_type type;
    int field;
    size_t off, len; /* N_TEXT: the bytes of the source; a tag: where it starts */
    size_t close;    /* N_OPEN*: the index of its N_CLOSE */
} node;

struct kp_template {
    char *src;
    size_t n;
    node nodes[];
};

/* Line and column (in characters) of byte `at` of text. */
static void where(const char *text, size_t at, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < at; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else if (((unsigned char)text[i] & 0xC0) != 0x80) {
            (*col)++;
        }
    }
}

static kp_err compile_error(const char *text, size_t at, const char *field, kp_notify_kind kind,
                            kp_error *e, const char *what, const char *name, size_t name_len)
{
    int line, col;
    where(text, at, &line, &col);
    char allowed[200] = "";
    size_t used = 0;
    const char *const *list = kp_template_fields(kind);
    for (size_t i = 0; list[i] && used < sizeof allowed; i++)
        used += (size_t)snprintf(allowed + used, sizeof allowed - used, "%s%s", i ? ", " : "",
                                 list[i]);
    return kp_error_set(e, KP_ERR_INVALID, field, "line %d:%d: %s \"%.*s\"; fields: %s", line,
                        col, what, (int)(name_len > 40 ? 40 : name_len), name, allowed);
}

kp_err kp_template_compile(kp_notify_kind kind, const char *text, const char *field,
                           kp_template **out, kp_error *e)
{
    *out = NULL;
    if (kind <= 0 || kind >= KP_NOTIFY__COUNT)
        return kp_error_set(e, KP_ERR_INVALID, "kind", "unknown notification kind");
    size_t len = strlen(text);
    /* Each tag makes at most two nodes (text before it, itself). */
    size_t max_nodes = 1;
    for (const char *p = text; (p = strstr(p, "{{")) != NULL; p += 2) max_nodes += 2;
    kp_template *t = calloc(1, sizeof *t + max_nodes * sizeof(node));
    if (t == NULL || (t->src = strdup(text)) == NULL) {
        free(t);
        return kp_error_set(e, KP_ERR_NOMEM, field, "out of memory");
    }
    size_t stack[16], depth = 0;
    size_t pos = 0;
    kp_err err = KP_OK;
    while (pos < len) {
        const char *open = strstr(text + pos, "{{");
        size_t at = open ? (size_t)(open - text) : len;
        if (at > pos) t->nodes[t->n++] = (node){.type = N_TEXT, .off = pos, .len = at - pos};
        if (open == NULL) break;
        const char *close = strstr(open + 2, "}}");
        if (close == NULL) {
            err = compile_error(text, at, field, kind, e, "unclosed tag (no }})", "{{", 2);
            break;
        }
        const char *name = open + 2;
        enum node_type type = N_VAR;
        if (*name == '#' || *name == '^' || *name == '/') {
            type = *name == '#' ? N_OPEN : *name == '^' ? N_OPEN_NOT : N_CLOSE;
            name++;
        }
        const char *name_end = close;
        while (name < name_end && *name == ' ') name++;
        while (name_end > name && name_end[-1] == ' ') name_end--;
        size_t nlen = (size_t)(name_end - name);
        int f = field_find(name, nlen);
        if (f < 0 || !(kind_fields[kind] & B(f))) {
            err = compile_error(text, at, field, kind, e, "unknown field", name, nlen);
            break;
        }
        node nd = {.type = type, .field = f, .off = at};
        if (type == N_OPEN || type == N_OPEN_NOT) {
            if (depth == sizeof stack / sizeof stack[0]) {
                err = compile_error(text, at, field, kind, e, "sections nested too deep at", name,
                                    nlen);
                break;
            }
            stack[depth++] = t->n;
        } else if (type == N_CLOSE) {
            if (depth == 0 || t->nodes[stack[depth - 1]].field != f) {
                err = compile_error(text, at, field, kind, e,
                                    depth ? "section closed out of order:" :
                                            "section closed but never opened:",
                                    name, nlen);
                break;
            }
            t->nodes[stack[--depth]].close = t->n;
        }
        t->nodes[t->n++] = nd;
        pos = (size_t)(close - text) + 2;
    }
    if (err == KP_OK && depth > 0) {
        const node *o = &t->nodes[stack[depth - 1]]; /* the innermost one left open */
        err = compile_error(text, o->off, field, kind, e, "section never closed:",
                            field_names[o->field], strlen(field_names[o->field]));
    }
    if (err) {
        kp_template_free(t);
        return err;
    }
    *out = t;
    return KP_OK;
}

void kp_template_free(kp_template *t)
{
    if (t == NULL) return;
    free(t->src);
    free(t);
}

/* ---- rendering */

static bool is_set(const char *v)
{
    return v && v[0] != '\0' && strcmp(v, "0") != 0;
}

static void put_escaped(kp_buf *out, const char *s)
{
    for (const char *p = s; *p; p++) {
        switch (*p) {
        case '&': kp_buf_puts(out, "&amp;"); break;
        case '<': kp_buf_puts(out, "&lt;"); break;
        case '>': kp_buf_puts(out, "&gt;"); break;
        case '"': kp_buf_puts(out, "&quot;"); break;
        case '\'': kp_buf_puts(out, "&#39;"); break;
        default: kp_buf_append(out, p, 1);
        }
    }
}

kp_err kp_template_render(const kp_template *t, const kp_vars *vars, bool html, kp_buf *out)
{
    kp_buf_reset(out);
    kp_buf_puts(out, ""); /* an empty template still gives a string */
    for (size_t i = 0; i < t->n; i++) {
        const node *nd = &t->nodes[i];
        const char *v = nd->type == N_TEXT ? NULL : kp_vars_get(vars, field_names[nd->field]);
        switch (nd->type) {
        case N_TEXT: kp_buf_append(out, t->src + nd->off, nd->len); break;
        case N_VAR:
            if (v == NULL) break;
            if (html)
                put_escaped(out, v);
            else
                kp_buf_puts(out, v);
            break;
        case N_OPEN:
            if (!is_set(v)) i = nd->close;
            break;
        case N_OPEN_NOT:
            if (is_set(v)) i = nd->close;
            break;
        case N_CLOSE: break;
        }
    }
    return out->failed ? KP_ERR_LIMIT : KP_OK;
}

/* ---- formatting */

static bool russian(const char *language)
{
    return language && strcmp(language, "ru") == 0;
}

void kp_notify_format_number(int64_t v, const char *language, char *out, size_t size)
{
    const char *sep = russian(language) ? "\xC2\xA0" : ",";
    char digits[24];
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    int n = snprintf(digits, sizeof digits, "%llu", (unsigned long long)u);
    size_t used = 0;
    if (v < 0 && used + 1 < size) out[used++] = '-';
    for (int i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            for (const char *s = sep; *s && used + 1 < size; s++) out[used++] = *s;
        if (used + 1 < size) out[used++] = digits[i];
    }
    if (size) out[used < size ? used : size - 1] = '\0';
}

void kp_notify_format_date(kp_time t, int32_t utc_offset_minutes, const char *language, char *out,
                           size_t size)
{
    static const char *const ru[] = {"января", "февраля", "марта",    "апреля",
                                     "мая",    "июня",    "июля",     "августа",
                                     "сентября", "октября", "ноября", "декабря"};
    static const char *const en[] = {"January", "February", "March",     "April",
                                     "May",     "June",     "July",      "August",
                                     "September", "October", "November", "December"};
    int y, m, d;
    kp_time_to_civil(t + (kp_time)utc_offset_minutes * 60, &y, &m, &d);
    snprintf(out, size, "%d %s %d", d, (russian(language) ? ru : en)[m - 1], y);
}

void kp_notify_format_money(int64_t minor, const char *currency, const char *language, char *out,
                            size_t size)
{
    char whole[40];
    int64_t units = minor / 100, cents = minor % 100;
    if (cents < 0) cents = -cents;
    kp_notify_format_number(units, language, whole, sizeof whole);
    const char *sign = minor < 0 && units == 0 ? "-" : "";
    const char *cur = currency && currency[0] ? currency : "RUB";
    if (russian(language))
        snprintf(out, size, "%s%s,%02lld\xC2\xA0%s", sign, whole, (long long)cents,
                 strcmp(cur, "RUB") == 0 ? "₽" : cur);
    else
        snprintf(out, size, "%s %s%s.%02lld", cur, sign, whole, (long long)cents);
}

/* ---- an event's values */

static int64_t member_int(const json_t *payload, const char *key, bool *present)
{
    json_t *v = payload ? json_object_get(payload, key) : NULL;
    if (present) *present = json_is_integer(v);
    return json_is_integer(v) ? json_integer_value(v) : 0;
}

static void set_number(kp_vars *vars, const char *name, int64_t v, const char *language)
{
    char s[48];
    kp_notify_format_number(v, language, s, sizeof s);
    kp_vars_set(vars, name, s);
}

static void set_string(kp_vars *vars, const json_t *payload, const char *key, const char *name)
{
    json_t *v = payload ? json_object_get(payload, key) : NULL;
    if (json_is_string(v)) kp_vars_set(vars, name, json_string_value(v));
}

kp_err kp_vars_from_event_in(const kp_notify_event *ev, const json_t *payload,
                             const char *language, int32_t utc_offset_minutes,
                             const char *currency, const char *first_name,
                             const char *program_name, kp_vars *vars, kp_error *e)
{
    memset(vars, 0, sizeof *vars);
    if (payload && !json_is_object(payload))
        return kp_error_set(e, KP_ERR_INVALID, "payload", "an event's payload must be an object");
    kp_vars_set(vars, "first_name", first_name ? first_name : "");
    kp_vars_set(vars, "program", program_name ? program_name : "");
    kp_vars_set(vars, "card", ev->card);
    size_t cl = strlen(ev->card);
    kp_vars_set(vars, "card_last4", cl > 4 ? ev->card + cl - 4 : ev->card);

    bool has;
    int64_t v;
    static const char *const numbers[] = {"earned", "burnt", "expiry_points", NULL};
    for (size_t i = 0; numbers[i]; i++)
        if ((v = member_int(payload, numbers[i], &has)), has)
            set_number(vars, numbers[i], v, language);
    if ((v = member_int(payload, "balance", &has)), has) set_number(vars, "balance", v, language);
    if ((v = member_int(payload, "points", &has)), has) {
        set_number(vars, "points", v < 0 ? -v : v, language);
        char s[48], n[40];
        kp_notify_format_number(v < 0 ? -v : v, language, n, sizeof n);
        snprintf(s, sizeof s, "%s%s", v < 0 ? "-" : "+", n);
        kp_vars_set(vars, "change", s);
    }
    json_t *kinds = payload ? json_object_get(payload, "balances") : NULL;
    if (json_is_object(kinds)) {
        char list[512] = "";
        size_t used = 0;
        const char *k;
        json_t *pts;
        json_object_foreach(kinds, k, pts)
        {
            char n[40];
            kp_notify_format_number(json_integer_value(pts), language, n, sizeof n);
            if (used < sizeof list)
                used += (size_t)snprintf(list + used, sizeof list - used, "%s%s %s",
                                         used ? ", " : "", k, n);
        }
        if (used >= sizeof list || !kp_vars_set(vars, "balances", list))
            return kp_error_set(e, KP_ERR_LIMIT, "payload.balances",
                                "the balance by kind does not fit %zu bytes", sizeof list - 1);
    }
    json_t *exp = payload ? json_object_get(payload, "expiry_at") : NULL;
    kp_time at;
    if (json_is_string(exp) && kp_time_parse(json_string_value(exp), &at)) {
        char d[64];
        kp_notify_format_date(at, utc_offset_minutes, language, d, sizeof d);
        kp_vars_set(vars, "expiry_date", d);
    }
    if ((v = member_int(payload, "amount_minor", &has)), has) {
        json_t *c = json_object_get(payload, "currency");
        char m[64];
        kp_notify_format_money(v, json_is_string(c) ? json_string_value(c) : currency, language,
                               m, sizeof m);
        kp_vars_set(vars, "amount", m);
    }
    static const char *const strings[] = {"store", "receipt", "tier", "tier_before",
                                          "other_card", "reason", "code", "item", NULL};
    for (size_t i = 0; strings[i]; i++) set_string(vars, payload, strings[i], strings[i]);
    /* A catalog order's number is written as it is ("№ 1042", not "1 042"). */
    if ((v = member_int(payload, "order", &has)), has) {
        char s[24];
        snprintf(s, sizeof s, "%lld", (long long)v);
        kp_vars_set(vars, "order", s);
    }
    if ((v = member_int(payload, "qty", &has)), has) set_number(vars, "qty", v, language);
    return KP_OK;
}

kp_err kp_vars_from_event(const kp_notify_event *ev, const json_t *payload, const char *language,
                          const char *first_name, const char *program_name, kp_vars *vars,
                          kp_error *e)
{
    return kp_vars_from_event_in(ev, payload, language, 0, "", first_name, program_name, vars, e);
}
