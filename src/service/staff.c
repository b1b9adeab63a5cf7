/*
 * staff.c: staff accounts (Argon2id password hashes), sessions (a random
 * token given once; only its hash is stored), manual adjustments of a
 * balance (back office only, with a reason, within the role's limit,
 * idempotent by key) and reading the audit log.
 */
#include "people_int.h"
#include "notify/notify.h"
#include <kopilka/card_number.h>

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What kp_role_assignable() lets a staff member hold, for errors. */
#define ROLES_ALLOWED                                                                           \
    "must be one of cashier, manager, call_centre, marketer, admin, auditor, partner (with "    \
    "\"partner\": the code of a partner of the running program)"

/* The running program's partners' codes, "a, b, c", for errors. */
static void partner_codes(const kp_program *p, char *out, size_t cap)
{
    size_t at = 0;
    out[0] = '\0';
    for (size_t i = 0; p && i < p->n_partners && at < cap; i++)
        at += (size_t)snprintf(out + at, cap - at, "%s%s", i ? ", " : "", p->partners[i].code);
}

/* A staff member's role and partner go together (docs/coalition.md,
 * "Partner staff and isolation"): the partner role needs the code of a
 * partner the running program knows, and no other role takes one. */
static kp_err partner_binding_check(const kp_office *o, kp_role role, const char *partner,
                                    kp_error *e)
{
    if (role != KP_ROLE_PARTNER) {
        if (partner[0] == '\0') return KP_OK;
        return kp_error_set(e, KP_ERR_INVALID, "partner",
                            "only the partner role is bound to a partner; a %s has none (leave "
                            "\"partner\" out)",
                            kp_role_name(role));
    }
    const kp_program *p = o->program;
    if (p == NULL || p->n_partners == 0)
        return kp_error_set(e, KP_ERR_INVALID, "partner",
                            "the running program has no partners, so nobody can be given the "
                            "partner role (docs/coalition.md, \"Partners in the program file\")");
    char codes[KP_PARTNERS_MAX * KP_PARTNER_CODE_MAX + 64];
    partner_codes(p, codes, sizeof codes);
    if (partner[0] == '\0')
        return kp_error_set(e, KP_ERR_INVALID, "partner",
                            "is required for the partner role: one of the running program's "
                            "partners (%s)",
                            codes);
    for (size_t i = 0; i < p->n_partners; i++)
        if (strcmp(p->partners[i].code, partner) == 0) return KP_OK;
    return kp_error_set(e, KP_ERR_INVALID, "partner",
                        "no partner \"%s\" in the running program (version %lld): must be one "
                        "of %s",
                        partner, (long long)p->version, codes);
}

static bool login_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= KP_LOGIN_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static kp_err check_password_rules(const char *password, kp_error *e)
{
    size_t n = strlen(password);
    if (n < KP_PASSWORD_MIN || n > KP_PASSWORD_MAX)
        return kp_error_set(e, KP_ERR_INVALID, "password", "must be %d to %d bytes long",
                            KP_PASSWORD_MIN, KP_PASSWORD_MAX);
    return KP_OK;
}

kp_err kp_staff_add(kp_office *o, const char *login, const char *role, const char *partner,
                    const char *password, int64_t *id, kp_error *e)
{
    *id = 0;
    kp_err err = kp_office_require(o, KP_PERM_STAFF, e);
    if (err) return err;
    kp_staff s;
    memset(&s, 0, sizeof s);
    if (!login_ok(login))
        return kp_error_set(e, KP_ERR_INVALID, "login",
                            "must be 1 to %d of a-z, 0-9, '.', '_', '-'", KP_LOGIN_MAX - 1);
    if (!kp_role_parse(role, &s.role) || !kp_role_assignable(s.role))
        return kp_error_set(e, KP_ERR_INVALID, "role", "%s",
                            ROLES_ALLOWED);
    if (partner == NULL) partner = "";
    if ((err = partner_binding_check(o, s.role, partner, e))) return err;
    if ((err = check_password_rules(password, e))) return err;
    err = o->st->ops->people->staff_get(o->st, 0, login, &s);
    if (err == KP_OK)
        return kp_error_setr(e, KP_ERR_CONFLICT, KP_REASON_LOGIN_IN_USE, "login",
                             "staff member %s exists already", login);
    if (err != KP_ERR_NOT_FOUND) return people_storage(o->st, err, e);
    kp_role_parse(role, &s.role);
    snprintf(s.login, sizeof s.login, "%s", login);
    snprintf(s.partner, sizeof s.partner, "%s", partner);
    s.active = true;
    s.created_at = o->now;
    if (kp_password_hash(password, s.password_hash) != KP_OK)
        return kp_error_set(e, KP_ERR_NOMEM, "", "the password could not be hashed");
    if ((err = o->st->ops->people->staff_insert(o->st, &s))) return people_storage(o->st, err, e);
    char target[KP_LOGIN_MAX + 8];
    snprintf(target, sizeof target, "staff:%s", login);
    if ((err = kp_office_audit(o, "staff.add", target, "role=%s%s%s", kp_role_name(s.role),
                               s.partner[0] ? " partner=" : "", s.partner)))
        return people_storage(o->st, err, e);
    *id = s.id;
    return KP_OK;
}

static void staff_json(kp_buf *out, const kp_staff *s)
{
    kp_buf_puts(out, "{");
    kp_buf_json_kv_i64(out, "id", s->id, false);
    kp_buf_json_kv_str(out, "login", s->login, true);
    kp_buf_json_kv_str(out, "role", kp_role_name(s->role), true);
    if (s->partner[0]) kp_buf_json_kv_str(out, "partner", s->partner, true);
    else kp_buf_puts(out, ",\"partner\":null");
    kp_buf_puts(out, s->active ? ",\"active\":true" : ",\"active\":false");
    people_time_kv(out, "created_at", s->created_at);
    kp_buf_puts(out, "}");
}

kp_err kp_staff_add_http(kp_office *o, const char *body, size_t len, kp_buf *out, kp_error *e)
{
    kp_err err = kp_office_require(o, KP_PERM_STAFF, e);
    if (err) return err;
    json_t *root = people_json_load(body, len, e);
    if (root == NULL) return KP_ERR_INVALID;
    static const char *const keys[] = {"login", "role", "partner", "password", NULL};
    char login[KP_LOGIN_MAX], role[32], partner[KP_PARTNER_CODE_MAX],
        password[KP_PASSWORD_MAX + 1];
    int64_t id = 0;
    if ((err = people_json_keys(root, keys, e)) ||
        (err = people_json_str(root, "login", true, login, KP_LOGIN_MAX - 1, e)) ||
        (err = people_json_str(root, "role", true, role, sizeof role - 1, e)) ||
        (err = people_json_str(root, "partner", false, partner, sizeof partner - 1, e)) ||
        (err = people_json_str(root, "password", true, password, KP_PASSWORD_MAX, e)) ||
        (err = kp_staff_add(o, login, role, partner, password, &id, e)))
        goto out;
    kp_staff s;
    if ((err = o->st->ops->people->staff_get(o->st, id, NULL, &s))) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    kp_buf_reset(out);
    staff_json(out, &s);
out:
    sodium_memzero(password, sizeof password);
    json_decref(root);
    return err;
}

kp_err kp_staff_update_http(kp_office *o, int64_t id, const char *body, size_t len, kp_buf *out,
                            kp_error *e)
{
    kp_err err = kp_office_require(o, KP_PERM_STAFF, e);
    if (err) return err;
    json_t *root = people_json_load(body, len, e);
    if (root == NULL) return KP_ERR_INVALID;
    static const char *const keys[] = {"role", "partner", "active", "password", NULL};
    char role[32], partner[KP_PARTNER_CODE_MAX] = "", password[KP_PASSWORD_MAX + 1];
    bool active = true, has_active = false;
    /* "partner": null unbinds, as leaving the partner role does. */
    bool has_partner = json_object_get(root, "partner") != NULL;
    kp_staff s;
    if ((err = people_json_keys(root, keys, e)) ||
        (err = people_json_str(root, "role", false, role, sizeof role - 1, e)) ||
        (err = people_json_str(root, "partner", false, partner, sizeof partner - 1, e)) ||
        (err = people_json_str(root, "password", false, password, KP_PASSWORD_MAX, e)) ||
        (err = people_json_bool(root, "active", &active, &has_active, e)))
        goto out;
    err = o->st->ops->people->staff_get(o->st, id, NULL, &s);
    if (err == KP_ERR_NOT_FOUND) {
        err = kp_error_set(e, err, "staff", "no staff member %lld", (long long)id);
        goto out;
    }
    if (err) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    if (o->actor.kind == KP_ACTOR_STAFF && o->actor.staff_id == id && has_active && !active) {
        err = kp_error_set(e, KP_ERR_INVALID, "active", "you cannot disable yourself");
        goto out;
    }
    char changes[128] = "";
    size_t n = 0;
    if (role[0]) {
        if (!kp_role_parse(role, &s.role) || !kp_role_assignable(s.role)) {
            err = kp_error_set(e, KP_ERR_INVALID, "role", "%s", ROLES_ALLOWED);
            goto out;
        }
        n += (size_t)snprintf(changes + n, sizeof changes - n, "role=%s ", role);
    }
    if (role[0] || has_partner) {
        /* Leaving the partner role unbinds; a partner given binds. */
        if (has_partner) snprintf(s.partner, sizeof s.partner, "%s", partner);
        else if (s.role != KP_ROLE_PARTNER) s.partner[0] = '\0';
        if ((err = partner_binding_check(o, s.role, s.partner, e))) goto out;
        if (has_partner)
            n += (size_t)snprintf(changes + n, sizeof changes - n, "partner=%s ",
                                  s.partner[0] ? s.partner : "none");
    }
    if (has_active) {
        s.active = active;
        n += (size_t)snprintf(changes + n, sizeof changes - n, "active=%s ", active ? "yes" : "no");
    }
    if (password[0]) {
        if ((err = check_password_rules(password, e))) goto out;
        if (kp_password_hash(password, s.password_hash) != KP_OK) {
            err = kp_error_set(e, KP_ERR_NOMEM, "", "the password could not be hashed");
            goto out;
        }
        n += (size_t)snprintf(changes + n, sizeof changes - n, "password=changed ");
    }
    if ((err = o->st->ops->people->staff_update(o->st, &s))) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    /* A changed role, password or a disabled account ends every session. */
    if (n && (err = o->st->ops->people->sessions_delete_staff(o->st, s.id))) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    char target[KP_LOGIN_MAX + 8];
    snprintf(target, sizeof target, "staff:%s", s.login);
    if ((err = kp_office_audit(o, "staff.update", target, "%s", changes))) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    kp_buf_reset(out);
    staff_json(out, &s);
out:
    sodium_memzero(password, sizeof password);
    json_decref(root);
    return err;
}

kp_err kp_staff_list_json(kp_office *o, kp_buf *out, kp_error *e)
{
    kp_err err = kp_office_require(o, KP_PERM_STAFF, e);
    if (err) return err;
    kp_staff *list = calloc(1000, sizeof *list);
    if (list == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    size_t n = 0;
    if ((err = o->st->ops->people->staff_list(o->st, list, 1000, &n))) {
        free(list);
        return people_storage(o->st, err, e);
    }
    kp_buf_reset(out);
    kp_buf_puts(out, "{\"staff\":[");
    for (size_t i = 0; i < n; i++) {
        if (i) kp_buf_puts(out, ",");
        staff_json(out, &list[i]);
    }
    kp_buf_puts(out, "]}");
    free(list);
    return KP_OK;
}

/* ---- sessions */

static char dummy_hash[128];
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;
static void dummy_init(void)
{
    kp_password_hash("not the password of anyone", dummy_hash);
}

kp_err kp_staff_check_password(kp_store *st, const char *body, size_t len, kp_staff *staff,
                               kp_error *e)
{
    json_t *root = people_json_load(body, len, e);
    if (root == NULL) return KP_ERR_INVALID;
    static const char *const keys[] = {"login", "password", NULL};
    char login[KP_LOGIN_MAX], password[KP_PASSWORD_MAX + 1];
    kp_err err;
    if ((err = people_json_keys(root, keys, e)) ||
        (err = people_json_str(root, "login", true, login, KP_LOGIN_MAX - 1, e)) ||
        (err = people_json_str(root, "password", true, password, KP_PASSWORD_MAX, e)))
        goto out;
    err = st->ops->people->staff_get(st, 0, login, staff);
    if (err != KP_OK && err != KP_ERR_NOT_FOUND) {
        err = people_storage(st, err, e);
        goto out;
    }
    /* The same work whether or not the login exists, so the answer's time
     * does not tell which logins are real. */
    bool found = err == KP_OK;
    pthread_once(&dummy_once, dummy_init);
    bool match = kp_password_verify(found ? staff->password_hash : dummy_hash, password);
    if (!found || !match || !staff->active) {
        err = kp_error_set(e, KP_ERR_UNAUTHORIZED, "", "wrong login or password");
        if (!found) snprintf(staff->login, sizeof staff->login, "%s", login);
        if (!found) staff->id = 0;
        goto out;
    }
    /* A partner account from before partners were bound (the role was
     * reserved then) belongs to nobody: it cannot log in until an admin
     * binds it to a partner or gives it another role. */
    err = staff->role != KP_ROLE_PARTNER || staff->partner[0]
              ? KP_OK
              : kp_error_set(e, KP_ERR_FORBIDDEN, "partner",
                             "this partner account is bound to no partner; an admin must set "
                             "its partner (PATCH /v1/admin/staff/{id} {\"partner\"}) or give "
                             "it another role");
out:
    sodium_memzero(password, sizeof password);
    json_decref(root);
    return err;
}

kp_err kp_session_start(kp_office *o, const kp_staff *staff, char token_out[69],
                        kp_time *expires_at, kp_error *e)
{
    uint8_t hash[32];
    kp_token_new(token_out, hash);
    *expires_at = o->now + KP_SESSION_TTL_SECONDS;
    kp_err err = o->st->ops->people->session_insert(o->st, hash, staff->id, o->now, *expires_at);
    if (err) return people_storage(o->st, err, e);
    char target[KP_LOGIN_MAX + 8];
    snprintf(target, sizeof target, "staff:%s", staff->login);
    if ((err = kp_office_audit(o, "staff.login", target, "role=%s", kp_role_name(staff->role))))
        return people_storage(o->st, err, e);
    return KP_OK;
}

kp_err kp_session_check(kp_store *st, const char *token, kp_time now, kp_staff *staff,
                        kp_time *expires_at)
{
    if (strncmp(token, "kps_", 4) != 0 || strlen(token) != 68) return KP_ERR_UNAUTHORIZED;
    uint8_t hash[32];
    kp_token_hash(token, hash);
    kp_err err = st->ops->people->session_find(st, hash, now, staff, expires_at);
    return err == KP_ERR_NOT_FOUND ? KP_ERR_UNAUTHORIZED : err;
}

kp_err kp_session_end(kp_office *o, const char *token, kp_error *e)
{
    uint8_t hash[32];
    kp_token_hash(token, hash);
    kp_err err = o->st->ops->people->session_delete(o->st, hash);
    if (err) return people_storage(o->st, err, e);
    if ((err = kp_office_audit(o, "staff.logout", o->actor.name, "%s", "")))
        return people_storage(o->st, err, e);
    return KP_OK;
}

/* ---- manual adjustments */

static void adjust_hash(const char *card, int64_t points, const char *reason, const char *kind,
                        uint8_t out[16])
{
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, 16);
    crypto_generichash_update(&h, (const uint8_t *)"adjust", 7);
    crypto_generichash_update(&h, (const uint8_t *)card, strlen(card) + 1);
    crypto_generichash_update(&h, (const uint8_t *)&points, sizeof points);
    crypto_generichash_update(&h, (const uint8_t *)reason, strlen(reason) + 1);
    crypto_generichash_update(&h, (const uint8_t *)kind, strlen(kind) + 1);
    crypto_generichash_final(&h, out, 16);
}

kp_err kp_adjust(kp_office *o, const char *body, size_t len, kp_buf *out, bool *replayed,
                 kp_error *e)
{
    *replayed = false;
    kp_err err = kp_office_require(o, KP_PERM_ADJUST, e);
    if (err) return err;
    json_t *root = people_json_load(body, len, e);
    if (root == NULL) return KP_ERR_INVALID;
    static const char *const keys[] = {"card", "points", "reason", "key", "kind", NULL};
    char card[KP_STR_MAX], reason[KP_REASON_MAX], key[KP_STR_MAX], kind[16];
    int64_t points = 0;
    kp_op_row row;
    memset(&row, 0, sizeof row);
    if ((err = people_json_keys(root, keys, e)) ||
        (err = people_json_str(root, "card", true, card, KP_STR_MAX - 1, e)) ||
        (err = people_json_int(root, "points", true, -1000000000, 1000000000, &points, e)) ||
        (err = people_json_str(root, "reason", true, reason, KP_REASON_MAX - 1, e)) ||
        (err = people_json_str(root, "key", true, key, KP_STR_MAX - 1, e)) ||
        (err = people_json_str(root, "kind", false, kind, sizeof kind - 1, e)))
        goto out;
    if (points == 0) {
        err = kp_error_set(e, KP_ERR_INVALID, "points", "must not be zero");
        goto out;
    }
    int64_t limit =
        o->actor.kind == KP_ACTOR_CLI ? 1000000000 : kp_role_adjust_limit(o->actor.role);
    if (points > limit || -points > limit) {
        err = kp_error_set(e, KP_ERR_FORBIDDEN, "points",
                           "a %s may adjust at most %lld points at once; ask a manager or admin",
                           kp_role_name(o->actor.role), (long long)limit);
        goto out;
    }
    uint8_t hash[16];
    adjust_hash(card, points, reason, kind, hash);
    kp_op_row prior;
    err = o->st->ops->op_find(o->st, "#adjust", key, &prior);
    if (err == KP_OK) {
        bool same = prior.type == KP_OP_ADJUST && memcmp(prior.request_hash, hash, 16) == 0;
        if (same) {
            kp_buf_reset(out);
            kp_buf_puts(out, "{\"replayed\":true,");
            kp_buf_puts(out, prior.response ? prior.response + 1 : "}");
            *replayed = true;
        } else {
            err = kp_error_setr(e, KP_ERR_CONFLICT, KP_REASON_KEY_CONFLICT, "key",
                                "adjustment key %s was already used for another adjustment", key);
        }
        kp_op_row_release(&prior);
        if (same) err = KP_OK;
        goto out;
    }
    if (err != KP_ERR_NOT_FOUND) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    kp_card_info c;
    err = o->st->ops->people->card_info_get(o->st, card, &c);
    if (err == KP_ERR_NOT_FOUND) {
        err = kp_card_unknown(card, "card", e);
        goto out;
    }
    if (err) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    if (c.state == KP_CARD_REPLACED) {
        err = kp_error_setr(e, KP_ERR_CONFLICT, KP_REASON_CARD_CONFLICT, "card",
                            "card %s was replaced by %s: adjust that card", card, c.replaced_by);
        goto out;
    }
    kp_account *a = &o->sc->account;
    if ((err = o->st->ops->account_load(o->st, c.account_id, a))) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    kp_lot lot;
    people_credit_lot(o, kind, &lot);
    if ((err = kp_ledger_plan_move(a, KP_OP_ADJUST, KP_SYS_ADJUSTMENT, points, &lot, o->now,
                                   &o->sc->plan, e)))
        goto out;
    kp_buf_reset(out);
    kp_buf_puts(out, "{");
    kp_buf_json_kv_str(out, "card", card, false);
    kp_buf_json_kv_str(out, "key", key, true);
    kp_buf_json_kv_i64(out, "points", points, true);
    kp_buf_json_kv_str(out, "kind", lot.kind, true);
    kp_buf_json_kv_i64(out, "balance", o->sc->plan.balance_after, true);
    kp_buf_json_kv_str(out, "reason", reason, true);
    kp_buf_json_kv_str(out, "by", o->actor.name, true);
    people_time_kv(out, "at", o->now);
    kp_buf_puts(out, "}");
    row.type = KP_OP_ADJUST;
    row.account_id = c.account_id;
    snprintf(row.card, sizeof row.card, "%s", card);
    snprintf(row.store, sizeof row.store, "#adjust");
    snprintf(row.receipt, sizeof row.receipt, "%s", key);
    memcpy(row.request_hash, hash, 16);
    row.program_version = o->program ? o->program->version : 0;
    row.at = o->now;
    row.points = points;
    row.response = out->data;
    /* ADJUSTED, with its reason, written with the operation. */
    kp_notify_figures f;
    memset(&f, 0, sizeof f);
    f.points = points;
    if (points > 0) f.earned = points;
    else f.burnt = -points;
    kp_notify_figures_after(a, &o->sc->plan, o->now, &f);
    snprintf(f.reason, sizeof f.reason, "%s", reason);
    kp_notify_event ev;
    if ((err = kp_notify_event_fill(&ev, KP_NOTIFY_ADJUSTED, NULL, c.account_id, 0, card, 0,
                                    o->now, &f, &o->sc->notify, e)))
        goto out;
    row.notify = &ev;
    if ((err = o->st->ops->op_insert(o->st, &row)) ||
        (err = o->st->ops->plan_apply(o->st, row.id, &o->sc->plan, o->now))) {
        err = people_storage(o->st, err, e);
        goto out;
    }
    char target[48];
    snprintf(target, sizeof target, "account:%lld", (long long)c.account_id);
    if ((err = kp_office_audit(o, "ledger.adjust", target, "card=%s points=%lld op=%lld reason=%s",
                               card, (long long)points, (long long)row.id, reason)))
        err = people_storage(o->st, err, e);
out:
    json_decref(root);
    return err;
}

/* ---- the audit log */

kp_err kp_audit_json(kp_office *o, const kp_audit_filter *filter, int64_t limit, kp_buf *out,
                     kp_error *e)
{
    kp_err err = kp_office_require(o, KP_PERM_AUDIT_READ, e);
    if (err) return err;
    if (limit < 1 || limit > KP_AUDIT_PAGE_MAX) limit = KP_AUDIT_PAGE_MAX;
    kp_audit_entry *a = calloc((size_t)limit, sizeof *a);
    if (a == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    size_t n = 0;
    if ((err = o->st->ops->people->audit_list(o->st, filter, a, (size_t)limit, &n))) {
        free(a);
        return people_storage(o->st, err, e);
    }
    kp_buf_reset(out);
    kp_buf_puts(out, "{\"entries\":[");
    char hex[65];
    for (size_t i = 0; i < n; i++) {
        kp_buf_puts(out, i ? ",{" : "{");
        kp_buf_json_kv_i64(out, "seq", a[i].seq, false);
        people_time_kv(out, "at", a[i].at);
        kp_buf_json_kv_str(out, "actor", a[i].actor, true);
        kp_buf_json_kv_str(out, "role", a[i].role, true);
        kp_buf_json_kv_str(out, "action", a[i].action, true);
        kp_buf_json_kv_str(out, "target", a[i].target, true);
        kp_buf_json_kv_str(out, "detail", a[i].detail, true);
        sodium_bin2hex(hex, sizeof hex, a[i].prev_hash, 32);
        kp_buf_json_kv_str(out, "prev_hash", hex, true);
        sodium_bin2hex(hex, sizeof hex, a[i].hash, 32);
        kp_buf_json_kv_str(out, "hash", hex, true);
        kp_buf_puts(out, "}");
    }
    kp_buf_puts(out, "]");
    /* The next page starts after the last entry given (before it, newest
     * first); with none, the same bound again. */
    if (filter->newest_first)
        kp_buf_json_kv_i64(out, "next_before", n ? a[n - 1].seq : filter->before_seq, true);
    else
        kp_buf_json_kv_i64(out, "next_after", n ? a[n - 1].seq : filter->after_seq, true);
    kp_buf_puts(out, "}");
    free(a);
    return out->failed ? kp_error_set(e, KP_ERR_NOMEM, "", "the answer is too large") : KP_OK;
}

kp_err kp_audit_check_macs(kp_store *st, const kp_pii *pii,
                           void (*report)(void *ctx, const char *line), void *ctx,
                           int64_t *problems, int64_t *checked, int64_t *without_mac)
{
    enum { PAGE = 256 };
    *checked = *without_mac = 0;
    kp_audit_entry *a = calloc(PAGE, sizeof *a);
    if (a == NULL) return KP_ERR_NOMEM;
    const uint8_t *key = kp_pii_audit_key(pii);
    bool seen_mac = false;
    int64_t after = 0;
    kp_err err = KP_OK;
    char line[160];
    for (;;) {
        size_t n = 0;
        kp_audit_filter page = {.after_seq = after};
        if ((err = st->ops->people->audit_list(st, &page, a, PAGE, &n)) || n == 0) break;
        for (size_t i = 0; i < n; i++) {
            const char *what = NULL;
            if (a[i].has_mac) {
                uint8_t expect[32];
                kp_audit_mac(key, a[i].hash, expect);
                seen_mac = true;
                (*checked)++;
                if (sodium_memcmp(expect, a[i].mac, 32) != 0)
                    what = "its MAC does not match (the entry or the chain before it was "
                           "rewritten without the key file)";
            } else if (seen_mac) {
                what = "it has no MAC, though earlier entries have (written without the key "
                       "file)";
            } else {
                (*without_mac)++;
            }
            if (what) {
                snprintf(line, sizeof line, "audit entry %lld: %s", (long long)a[i].seq, what);
                if (*problems < 100) report(ctx, line);
                (*problems)++;
            }
        }
        after = a[n - 1].seq;
    }
    free(a);
    return err;
}
