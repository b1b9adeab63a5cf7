/*
 * people.c: staff roles and what each may do, and the hash that chains the
 * audit log. Pure: no storage, no HTTP.
 */
#include <kopilka/people.h>

#include <sodium.h>
#include <string.h>

static const char *const role_names[KP_ROLE__COUNT] = {
    [KP_ROLE_CASHIER] = "cashier",
    [KP_ROLE_MANAGER] = "manager",
    [KP_ROLE_CALL_CENTRE] = "call_centre",
    [KP_ROLE_MARKETER] = "marketer",
    [KP_ROLE_ADMIN] = "admin",
    [KP_ROLE_AUDITOR] = "auditor",
    [KP_ROLE_PARTNER] = "partner",
};

const char *kp_role_name(kp_role role)
{
    if ((int)role <= 0 || role >= KP_ROLE__COUNT) return "unknown";
    return role_names[role];
}

bool kp_role_parse(const char *text, kp_role *out)
{
    for (int r = 1; r < KP_ROLE__COUNT; r++)
        if (strcmp(text, role_names[r]) == 0) {
            *out = (kp_role)r;
            return true;
        }
    return false;
}

static const char *const perm_names[KP_PERM__COUNT] = {
    [KP_PERM_CUSTOMER_REGISTER] = "customer.register",
    [KP_PERM_CUSTOMER_READ] = "customer.read",
    [KP_PERM_CUSTOMER_EDIT] = "customer.edit",
    [KP_PERM_CUSTOMER_ERASE] = "customer.erase",
    [KP_PERM_CARD_READ] = "card.read",
    [KP_PERM_CARD_ISSUE] = "card.issue",
    [KP_PERM_CARD_MANAGE] = "card.manage",
    [KP_PERM_ADJUST] = "adjust",
    [KP_PERM_FAMILY] = "family",
    [KP_PERM_TRANSFER] = "transfer",
    [KP_PERM_EXPORT_BALANCES] = "export.balances",
    [KP_PERM_EXPORT_CUSTOMERS] = "export.customers",
    [KP_PERM_STAFF] = "staff",
    [KP_PERM_AUDIT_READ] = "audit.read",
    [KP_PERM_TERMINALS] = "terminals",
    [KP_PERM_DISCOUNT] = "discount",
    [KP_PERM_NOTIFY_READ] = "notify.read",
    [KP_PERM_NOTIFY_MANAGE] = "notify.manage",
    [KP_PERM_PROGRAM_READ] = "program.read",
    [KP_PERM_PROGRAM_MANAGE] = "program.manage",
    [KP_PERM_REPORT_READ] = "report.read",
    [KP_PERM_IMPORT] = "import",
    [KP_PERM_CAMPAIGN_MANAGE] = "campaign.manage",
    [KP_PERM_CATALOG_MANAGE] = "catalog.manage",
    [KP_PERM_DRAW_MANAGE] = "draw.manage",
    [KP_PERM_SETTLEMENT_READ] = "settlement.read",
    [KP_PERM_SETTLEMENT_MANAGE] = "settlement.manage",
};

const char *kp_permission_name(kp_permission perm)
{
    if ((int)perm <= 0 || perm >= KP_PERM__COUNT) return "unknown";
    return perm_names[perm];
}

#define P(x) (1u << (x))

/* The permission table (docs/api.md, "Roles"). Least privilege: a cashier
 * registers cards and nothing else of the back office; the auditor reads
 * and never writes; a partner has none of these (it reads only its own
 * partner's routes, /v1/partner/..., checked by the server). Only the admin manages staff and terminal keys; an
 * individual discount (seed 003) is a manager's or an admin's decision. */
static const unsigned role_perms[KP_ROLE__COUNT] = {
    [KP_ROLE_CASHIER] = P(KP_PERM_CUSTOMER_REGISTER) | P(KP_PERM_CARD_READ),
    [KP_ROLE_CALL_CENTRE] = P(KP_PERM_CUSTOMER_REGISTER) | P(KP_PERM_CUSTOMER_READ) |
                            P(KP_PERM_CUSTOMER_EDIT) | P(KP_PERM_CARD_READ) |
                            P(KP_PERM_CARD_MANAGE) | P(KP_PERM_ADJUST) | P(KP_PERM_FAMILY) |
                            P(KP_PERM_TRANSFER) | P(KP_PERM_NOTIFY_READ),
    [KP_ROLE_MANAGER] = P(KP_PERM_CUSTOMER_REGISTER) | P(KP_PERM_CUSTOMER_READ) |
                        P(KP_PERM_CUSTOMER_EDIT) | P(KP_PERM_CUSTOMER_ERASE) |
                        P(KP_PERM_CARD_READ) | P(KP_PERM_CARD_ISSUE) | P(KP_PERM_CARD_MANAGE) |
                        P(KP_PERM_ADJUST) | P(KP_PERM_FAMILY) | P(KP_PERM_TRANSFER) |
                        P(KP_PERM_EXPORT_BALANCES) | P(KP_PERM_EXPORT_CUSTOMERS) |
                        P(KP_PERM_DISCOUNT) | P(KP_PERM_NOTIFY_READ) |
                        P(KP_PERM_PROGRAM_READ) | P(KP_PERM_REPORT_READ) | P(KP_PERM_IMPORT) |
                        P(KP_PERM_SETTLEMENT_READ),
    [KP_ROLE_MARKETER] = P(KP_PERM_CARD_READ) | P(KP_PERM_CARD_ISSUE) | P(KP_PERM_EXPORT_BALANCES) |
                         P(KP_PERM_NOTIFY_READ) | P(KP_PERM_NOTIFY_MANAGE) |
                         P(KP_PERM_PROGRAM_READ) | P(KP_PERM_REPORT_READ) |
                         P(KP_PERM_CAMPAIGN_MANAGE) |
                         P(KP_PERM_CATALOG_MANAGE) |
                         P(KP_PERM_DRAW_MANAGE),
    [KP_ROLE_ADMIN] = P(KP_PERM_CUSTOMER_REGISTER) | P(KP_PERM_CUSTOMER_READ) |
                      P(KP_PERM_CUSTOMER_EDIT) | P(KP_PERM_CUSTOMER_ERASE) | P(KP_PERM_CARD_READ) |
                      P(KP_PERM_CARD_ISSUE) | P(KP_PERM_CARD_MANAGE) | P(KP_PERM_ADJUST) |
                      P(KP_PERM_FAMILY) | P(KP_PERM_TRANSFER) | P(KP_PERM_EXPORT_BALANCES) |
                      P(KP_PERM_EXPORT_CUSTOMERS) | P(KP_PERM_STAFF) | P(KP_PERM_AUDIT_READ) |
                      P(KP_PERM_TERMINALS) | P(KP_PERM_DISCOUNT) | P(KP_PERM_NOTIFY_READ) |
                      P(KP_PERM_NOTIFY_MANAGE) | P(KP_PERM_PROGRAM_READ) |
                      P(KP_PERM_PROGRAM_MANAGE) | P(KP_PERM_REPORT_READ) | P(KP_PERM_IMPORT) |
                      P(KP_PERM_CAMPAIGN_MANAGE) |
                      P(KP_PERM_CATALOG_MANAGE) |
                      P(KP_PERM_DRAW_MANAGE) |
                      P(KP_PERM_SETTLEMENT_READ) | P(KP_PERM_SETTLEMENT_MANAGE),
    [KP_ROLE_AUDITOR] = P(KP_PERM_CUSTOMER_READ) | P(KP_PERM_CARD_READ) | P(KP_PERM_AUDIT_READ) |
                        P(KP_PERM_NOTIFY_READ) | P(KP_PERM_PROGRAM_READ) | P(KP_PERM_REPORT_READ) |
                        P(KP_PERM_SETTLEMENT_READ),
    [KP_ROLE_PARTNER] = 0,
};

_Static_assert(KP_PERM__COUNT <= 32, "permissions fit in an unsigned");

bool kp_role_may(kp_role role, kp_permission perm)
{
    if ((int)role <= 0 || role >= KP_ROLE__COUNT || (int)perm <= 0 || perm >= KP_PERM__COUNT)
        return false;
    return (role_perms[role] & P(perm)) != 0;
}

bool kp_role_assignable(kp_role role)
{
    return (int)role > 0 && role < KP_ROLE__COUNT;
}

int64_t kp_role_adjust_limit(kp_role role)
{
    switch (role) {
    case KP_ROLE_CALL_CENTRE: return 1000;
    case KP_ROLE_MANAGER: return 100000;
    case KP_ROLE_ADMIN: return 1000000000;
    default: return 0;
    }
}

const char *kp_attr_type_name(kp_attr_type type)
{
    switch (type) {
    case KP_ATTR_STRING: return "string";
    case KP_ATTR_INTEGER: return "integer";
    case KP_ATTR_DATE: return "date";
    case KP_ATTR_BOOLEAN: return "boolean";
    }
    return "unknown";
}

/* ---- the audit chain */

static void hash_field(crypto_generichash_state *h, const void *data, size_t len)
{
    uint8_t n[8];
    for (int i = 0; i < 8; i++) n[i] = (uint8_t)((uint64_t)len >> (8 * i));
    crypto_generichash_update(h, n, sizeof n);
    crypto_generichash_update(h, data, len);
}

static void hash_int(crypto_generichash_state *h, int64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)v >> (8 * i));
    hash_field(h, b, sizeof b);
}

void kp_audit_hash(const uint8_t prev_hash[32], const kp_audit_entry *entry, uint8_t out[32])
{
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, 32);
    hash_field(&h, "kopilka-audit-1", 15);
    hash_field(&h, prev_hash, 32);
    hash_int(&h, entry->seq);
    hash_int(&h, entry->at);
    hash_field(&h, entry->actor, strlen(entry->actor));
    hash_field(&h, entry->role, strlen(entry->role));
    hash_field(&h, entry->action, strlen(entry->action));
    hash_field(&h, entry->target, strlen(entry->target));
    hash_field(&h, entry->detail, strlen(entry->detail));
    crypto_generichash_final(&h, out, 32);
}

void kp_audit_mac(const uint8_t key[KP_AUDIT_KEY_BYTES], const uint8_t hash[32], uint8_t out[32])
{
    crypto_generichash_state h;
    crypto_generichash_init(&h, key, KP_AUDIT_KEY_BYTES, 32);
    hash_field(&h, "kopilka-audit-mac-1", 19);
    hash_field(&h, hash, 32);
    crypto_generichash_final(&h, out, 32);
}
