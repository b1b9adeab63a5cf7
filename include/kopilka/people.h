/*
 * people.h: customers, cards, families, staff and the audit log, as the
 * library sees them: staff roles and what each may do, the program's
 * "customers" section (what an unregistered card gets, transfer limits,
 * custom attributes), the rows the store keeps, the audit chain's hash, and
 * kp_people_ops, the store's operations for all of it (store.h reaches them
 * through kp_store_ops.people).
 *
 * Personal data (name, phone, e-mail, birthday, attributes) crosses this
 * interface only sealed (src/crypto/pii.h): a store never sees a plaintext,
 * and finds a customer by a keyed hash ("blind index") of a phone, an e-mail
 * or a word of the name.
 *
 * Ownership: every struct here is plain data with fixed-size arrays; the
 * caller owns it. Callbacks get pointers valid only during the call.
 */
#ifndef KOPILKA_PEOPLE_H
#define KOPILKA_PEOPLE_H

#include "store.h"

/* ---------------------------------------------------------------- roles */

typedef enum kp_role {
    KP_ROLE_CASHIER = 1,
    KP_ROLE_MANAGER,
    KP_ROLE_CALL_CENTRE,
    KP_ROLE_MARKETER,
    KP_ROLE_ADMIN,
    KP_ROLE_AUDITOR,
    KP_ROLE_PARTNER,
    KP_ROLE__COUNT
} kp_role;

const char *kp_role_name(kp_role role);
/* Parses "cashier", "manager", "call_centre", ..., "partner"; false when
 * unknown. A "partner" staff member is bound to one partner of the running
 * coalition program (kp_staff.partner) and holds no permission of this
 * table: it reaches only the /v1/partner/ routes (docs/coalition.md,
 * "Partner staff and isolation"). */
bool kp_role_parse(const char *text, kp_role *out);

/* What a staff member can be allowed to do; docs/api.md has the table. */
typedef enum kp_permission {
    KP_PERM_CUSTOMER_REGISTER = 1, /* register a card to a customer */
    KP_PERM_CUSTOMER_READ,         /* search customers, see personal data */
    KP_PERM_CUSTOMER_EDIT,         /* change personal data and attributes */
    KP_PERM_CUSTOMER_ERASE,        /* erase a customer on request */
    KP_PERM_CARD_READ,             /* a card's state, events, barcode */
    KP_PERM_CARD_ISSUE,            /* issue batches of cards, export them */
    KP_PERM_CARD_MANAGE,           /* block, unblock, replace a card */
    KP_PERM_ADJUST,                /* manual adjustment (within kp_role_adjust_limit) */
    KP_PERM_FAMILY,                /* create families, add and remove members */
    KP_PERM_TRANSFER,              /* move points between customers */
    KP_PERM_EXPORT_BALANCES,       /* CSV of cards and balances (no personal data) */
    KP_PERM_EXPORT_CUSTOMERS,      /* CSV of customers with personal data */
    KP_PERM_STAFF,                 /* add staff, change roles, disable */
    KP_PERM_AUDIT_READ,            /* read the audit log */
    KP_PERM_TERMINALS,             /* list, add, revoke and rotate terminal keys */
    KP_PERM_DISCOUNT,              /* set or clear a card's individual discount */
    KP_PERM_NOTIFY_READ,           /* see messages, webhook endpoints, templates */
    KP_PERM_NOTIFY_MANAGE,         /* templates, endpoints, retry/replay, campaigns */
    KP_PERM_PROGRAM_READ,          /* program versions, their diff, the sandbox quote */
    KP_PERM_PROGRAM_MANAGE,        /* load a program version, schedule its activation */
    KP_PERM_REPORT_READ,           /* the dashboard's figures */
    KP_PERM_IMPORT,                /* CSV imports of cards, customers, balances */
    KP_PERM_CAMPAIGN_MANAGE,       /* segments and campaigns that grant points */
    KP_PERM_CATALOG_MANAGE,        /* the rewards catalog: items, images, stock, orders */
    KP_PERM_DRAW_MANAGE,           /* prize draws: create, close, list, export */
    KP_PERM_SETTLEMENT_READ,       /* coalition periods, statements, the matrix */
    KP_PERM_SETTLEMENT_MANAGE,     /* close a coalition period */
    KP_PERM__COUNT
} kp_permission;

const char *kp_permission_name(kp_permission perm);
bool kp_role_may(kp_role role, kp_permission perm);
/* False for a value that is not a role. Every role can be given to a staff
 * member; "partner" only with a partner code (kp_staff.partner) the running
 * program knows, and no other role with one (src/service/staff.c). */
bool kp_role_assignable(kp_role role);
/* The largest |points| one manual adjustment by `role` may move (0: none). */
int64_t kp_role_adjust_limit(kp_role role);

/* --------------------------------------------- the program's customers section */

typedef enum kp_attr_type {
    KP_ATTR_STRING = 1,
    KP_ATTR_INTEGER,
    KP_ATTR_DATE, /* "YYYY-MM-DD" */
    KP_ATTR_BOOLEAN,
} kp_attr_type;
const char *kp_attr_type_name(kp_attr_type type);

enum {
    KP_ATTRS_MAX = 32, /* declared attributes per program */
    KP_ATTR_NAME_MAX = 48,
    KP_TRANSFER_KINDS_MAX = 8,
};

typedef struct kp_attr_decl {
    char name[KP_ATTR_NAME_MAX];
    kp_attr_type type;
    bool required;
    int64_t min, max; /* integer: bounds; string: length bounds in bytes */
} kp_attr_decl;

/* The "customers" section of a program file (docs/rules.md, "Customers"). */
typedef struct kp_people_policy {
    /* What a card that is not registered yet gets at the till. Seed 003:
     * {"earn": true, "burn": false} plus no discount; the default is the
     * core issue's behaviour: both true. The engine also sees
     * kp_account.registered, for rules that depend on it. */
    struct {
        bool earn;
        bool burn;
    } unregistered;
    /* Transfers of points between customers (seed 004). Off unless the
     * program turns them on. 0 = no limit. kinds: which kinds of points may
     * move ("regular", ...); none listed = every kind. */
    struct {
        bool enabled;
        int64_t max_points;
        int64_t daily_max_points;
        size_t n_kinds;
        char kinds[KP_TRANSFER_KINDS_MAX][16];
    } transfers;
    /* The consent text version registrations must accept ("" = any). */
    char consent_version[64];
    size_t n_attributes;
    kp_attr_decl attributes[KP_ATTRS_MAX];
} kp_people_policy;

/* The defaults above. */
void kp_people_policy_default(kp_people_policy *out);
/* Reads the optional "customers" object of a program file's text (the rest
 * of the file is kp_program_parse's). Errors name the field
 * ("customers.attributes[1].type"). */
kp_err kp_people_policy_parse(const char *json, size_t len, kp_people_policy *out, kp_error *e);

/* ------------------------------------------------------------ store rows */

enum {
    KP_NAME_MAX = 200, /* bytes of a full name */
    KP_PHONE_MAX = 16, /* "+" and up to 15 digits (E.164) */
    KP_EMAIL_MAX = 254,
    KP_ATTRS_JSON_MAX = 4096, /* the attributes object, as JSON */
    KP_NAME_WORDS_MAX = 8,    /* words of a name that are indexed */
    KP_SEALED_SMALL = 256 + 40,
    KP_SEALED_ATTRS = 4096 + 40,
    KP_LOGIN_MAX = 64,
    KP_REASON_MAX = 257,
};

typedef enum kp_customer_state {
    KP_CUSTOMER_ACTIVE = 0,
    KP_CUSTOMER_ERASED = 1, /* personal data removed on request; id and ledger kept */
} kp_customer_state;

/* A sealed value: len 0 = absent. */
typedef struct kp_sealed {
    size_t len;
    uint8_t data[KP_SEALED_SMALL];
} kp_sealed;

typedef struct kp_customer_row {
    int64_t id;
    int64_t account_id; /* the pot the customer's cards earn into */
    kp_customer_state state;
    kp_sealed name, phone, email, birthday;
    size_t attributes_len;
    uint8_t attributes[KP_SEALED_ATTRS];
    bool has_phone_ix, has_email_ix;
    uint8_t phone_ix[32], email_ix[32];
    size_t n_name_ix;
    uint8_t name_ix[KP_NAME_WORDS_MAX][32];
    char receipt[KP_STR_MAX]; /* the receipt shown at registration */
    kp_time consent_at;
    char consent_version[64];
    char external_id[KP_STR_MAX]; /* id in the system it was imported from, "" if none */
    kp_time created_at, updated_at, erased_at;
} kp_customer_row;

/* What Kopilka keeps of a card beyond store.h's kp_card. */
typedef struct kp_card_info {
    char number[KP_STR_MAX];
    int64_t account_id;
    kp_card_state state;
    bool registered;
    int64_t batch_id;             /* 0 = none */
    int64_t customer_id;          /* the holder, 0 = nobody yet */
    bool may_burn;                /* false: a family member the owner has not let spend */
    char reason[KP_REASON_MAX];   /* of the last block */
    char replaced_by[KP_STR_MAX]; /* the card that took over, "" if none */
} kp_card_info;

typedef struct kp_card_event {
    int64_t id;
    char card[KP_STR_MAX];
    kp_time at;
    kp_card_state from_state, to_state;
    char actor[96];
    char reason[KP_REASON_MAX];
    char other_card[KP_STR_MAX]; /* replace: the other card of the pair */
} kp_card_event;

typedef struct kp_card_batch {
    int64_t id;
    char name[KP_STR_MAX];
    int64_t count;
    kp_time created_at;
    char actor[96];
} kp_card_batch;

typedef struct kp_staff {
    int64_t id;
    char login[KP_LOGIN_MAX];
    kp_role role;
    bool active;
    char password_hash[128];
    kp_time created_at;
    /* The partner a "partner" staff member works for (a code of the
     * program's partners[]); "" for every other role. */
    char partner[KP_PARTNER_CODE_MAX];
} kp_staff;

/* One entry of the audit log. hash = BLAKE2b-256 of prev_hash and the
 * entry's fields (kp_audit_hash); the first entry's prev_hash is all zero.
 * The chain alone shows a changed or missing entry, but whoever can write
 * the database can also compute a whole new chain; so each entry written
 * with the database's key file at hand also carries mac, a keyed hash of
 * its hash (kp_audit_mac), which nobody without DB.key can forge.
 * Details never hold personal data, so erasing a customer never has to
 * change the log. */
enum { KP_AUDIT_KEY_BYTES = 32 };

typedef struct kp_audit_entry {
    int64_t seq;
    kp_time at;
    char actor[96];  /* "staff:anna", "terminal:main", "cli" */
    char role[24];   /* the actor's role, "" for terminals and the CLI */
    char action[48]; /* "customer.register", "card.block", ... */
    char target[96]; /* "customer:12", "card:2000000000017", ... */
    char detail[512];
    uint8_t prev_hash[32];
    uint8_t hash[32];
    bool has_mac;
    uint8_t mac[32];
    /* In, for audit_append: the key to make mac with; NULL = none. */
    const uint8_t *mac_key;
} kp_audit_entry;

/* Which entries audit_list() answers. Every criterion is optional: a zero,
 * NULL or "" one does not filter. Borrowed for the call. */
typedef struct kp_audit_filter {
    int64_t after_seq;  /* seq > after_seq */
    int64_t before_seq; /* seq < before_seq */
    bool newest_first;  /* in descending seq order (else ascending) */
    const char *actor;  /* exactly this actor ("staff:anna") */
    const char *action; /* actions that begin with this ("card." matches "card.block") */
    const char *target; /* exactly this target ("customer:12") */
    kp_time from;       /* at >= from */
    kp_time to;         /* at < to */
} kp_audit_filter;

/* The chain hash of `entry` after `prev_hash`: fixed field order, each field
 * length-prefixed, so no two different entries hash alike. */
void kp_audit_hash(const uint8_t prev_hash[32], const kp_audit_entry *entry, uint8_t out[32]);
/* The entry's MAC: BLAKE2b-256 keyed with `key` over its chain hash. */
void kp_audit_mac(const uint8_t key[KP_AUDIT_KEY_BYTES], const uint8_t hash[32], uint8_t out[32]);

typedef struct kp_family {
    int64_t id;
    int64_t owner_id;   /* customer */
    int64_t account_id; /* the shared pot: the owner's account */
    kp_time created_at;
} kp_family;

typedef struct kp_family_member {
    int64_t customer_id;
    int64_t family_id;
    bool may_spend;
    int64_t own_account_id; /* the account the member's cards return to on leaving */
    kp_time joined_at;
} kp_family_member;

/* An owner's invitation into their family, made out to whoever holds a
 * phone (by its blind index: the phone need not be a customer's yet). The
 * invitee sees it in their cabinet while it is pending and not expired,
 * and accepts (joins the family) or declines it. */
typedef enum kp_invitation_state {
    KP_INVITATION_PENDING = 0,
    KP_INVITATION_ACCEPTED = 1,
    KP_INVITATION_DECLINED = 2,
    KP_INVITATION_CANCELLED = 3, /* by the owner, or the family closed */
} kp_invitation_state;

typedef struct kp_family_invitation {
    int64_t id;
    int64_t family_id;
    int64_t inviter_id;   /* the customer who owned the family and invited */
    uint8_t phone_ix[32]; /* the invitee's phone's blind index */
    kp_sealed phone;      /* the invitee's phone, sealed: the owner's list shows it */
    kp_invitation_state state;
    int64_t invitee_id; /* the customer who answered; 0 while pending */
    kp_time created_at, expires_at, answered_at;
} kp_family_invitation;

/* One operation of an account's history, with the card that made it. */
typedef struct kp_history_entry {
    int64_t op_id;
    kp_op_type type;
    char card[KP_STR_MAX];
    char store[KP_STR_MAX];
    char receipt[KP_STR_MAX];
    kp_time at;
    int64_t points;
    int64_t amount_minor;
    int64_t earned, burned;
} kp_history_entry;

/* One card of the balances export. */
typedef struct kp_balance_row {
    char card[KP_STR_MAX];
    kp_card_state state;
    bool registered;
    int64_t account_id;
    int64_t customer_id;
    int64_t balance;
    int64_t debt;
} kp_balance_row;

typedef enum kp_contact { KP_CONTACT_PHONE = 1, KP_CONTACT_EMAIL = 2 } kp_contact;

/* ------------------------------------------------------------ the dashboard */

/* Calendar months one dashboard may cover: a period of 36 months that does
 * not start on the 1st touches 37. */
enum { KP_DASHBOARD_MONTHS_MAX = 37 };

/* What the dashboard is asked (kp_people_ops.dashboard). Times are
 * instants; the period is from <= at < to. */
typedef struct kp_dashboard_query {
    kp_time from, to;
    /* members_active: a purchase at or after this instant, before `to`. */
    kp_time active_since;
    /* Months are calendar months of the program's clock: an instant t
     * belongs to the UTC month of t + utc_offset_minutes. */
    int32_t utc_offset_minutes;
    /* Only operations recorded under this store (kp_op_row.store) count in
     * the operation figures; NULL or "" = every store. */
    const char *store;
} kp_dashboard_query;

/* One calendar month's figures, of the operations (and registrations) in
 * the period that fall in it. */
typedef struct kp_dashboard_month {
    char month[8];       /* "2026-10" */
    int64_t issued;      /* points given by the program, net of returns' take-backs */
    int64_t burnt;       /* points spent at tills, net of returns' refunds */
    int64_t expired;     /* points that expired */
    int64_t new_members; /* customers registered (never filtered by store) */
    int64_t purchases;   /* purchase operations */
    int64_t revenue_minor; /* receipts' amounts before discounts, net of returns */
} kp_dashboard_month;

typedef struct kp_dashboard {
    /* Customers registered before `to` and not erased by then (never
     * filtered by store), and those of them whose cards made a purchase in
     * [active_since, to) (at the store, with one). */
    int64_t members, members_active;
    /* The period's totals, as the months': issued, burnt, expired; adjusted
     * = points manual adjustments gave (less those they took). */
    int64_t issued, burnt, expired, adjusted;
    /* The customers' balances at `to`: every posting to a customer's
     * account before it (never filtered by store). */
    int64_t outstanding;
    /* The months that have any figure, in order; months without one are
     * left out (the caller fills them in). */
    size_t n_months;
    kp_dashboard_month months[KP_DASHBOARD_MONTHS_MAX];
} kp_dashboard;

/* The store's people operations. The general contract of store.h holds
 * (errors, transactions, lists, ownership); each says what it adds. Writes
 * (write) run inside the caller's transaction, or are one of their own
 * outside one. "after" arguments page by id, exclusive (0 = from the
 * start). A single item asked for that does not exist is KP_ERR_NOT_FOUND.
 * An `each` calls fn(ctx, row) for every row in the order it says, the row
 * valid during the call only, and stops early when fn returns false (still
 * KP_OK). None of these pointers is NULL. */
typedef struct kp_people_ops {
    /* ---- customers */
    /* (write) Stores a new customer with its name-word indexes; sets
     * row->id. KP_ERR_CONFLICT when another customer has the same phone
     * or e-mail index or external_id. */
    kp_err (*customer_insert)(kp_store *s, kp_customer_row *row);
    /* (write) Rewrites every field and the name index of row->id.
     * KP_ERR_NOT_FOUND for no such customer; KP_ERR_CONFLICT as for
     * customer_insert. */
    kp_err (*customer_update)(kp_store *s, const kp_customer_row *row);
    /* The customer `id`, erased or not. KP_ERR_NOT_FOUND. */
    kp_err (*customer_get)(kp_store *s, int64_t id, kp_customer_row *out);
    /* The customer whose phone (or e-mail) has this blind index.
     * KP_ERR_NOT_FOUND. */
    kp_err (*customer_by_index)(kp_store *s, kp_contact contact, const uint8_t ix[32], int64_t *id);
    /* The customer imported with this external id. KP_ERR_NOT_FOUND. */
    kp_err (*customer_by_external)(kp_store *s, const char *external_id, int64_t *id);
    /* Customers having every one of the n_ix name-word indexes, in id
     * order. KP_ERR_INVALID when n_ix is 0 or over KP_NAME_WORDS_MAX. */
    kp_err (*customers_by_name)(kp_store *s, const uint8_t (*ix)[32], size_t n_ix, int64_t *ids,
                                size_t limit, size_t *n);
    /* Customers whose cards earn into the account, in id order. */
    kp_err (*customers_of_account)(kp_store *s, int64_t account_id, int64_t *ids, size_t limit,
                                   size_t *n);
    /* Every customer, in id order. */
    kp_err (*customers_each)(kp_store *s, bool (*fn)(void *ctx, const kp_customer_row *row),
                             void *ctx);

    /* ---- cards */
    /* The card with what Kopilka keeps beyond kp_card (zero and "" where
     * nothing was recorded). KP_ERR_NOT_FOUND for no such card. */
    kp_err (*card_info_get)(kp_store *s, const char *number, kp_card_info *out);
    /* (write) Writes the card's state, registered flag and account, and
     * every card_info field of info (batch_id and customer_id 0 = none).
     * KP_ERR_NOT_FOUND for no such card (card_create makes cards). */
    kp_err (*card_info_put)(kp_store *s, const kp_card_info *info, kp_time now);
    /* The customer's cards, oldest first. */
    kp_err (*cards_of_customer)(kp_store *s, int64_t customer_id, kp_card_info *out, size_t limit,
                                size_t *n);
    /* (write) Appends an event of a card's life; sets event->id. */
    kp_err (*card_event_insert)(kp_store *s, kp_card_event *event);
    /* A card's events, oldest first. */
    kp_err (*card_events)(kp_store *s, const char *number, kp_card_event *out, size_t limit,
                          size_t *n);
    /* (write) A new batch of cards; sets batch->id. KP_ERR_CONFLICT when a
     * batch has that name. */
    kp_err (*batch_insert)(kp_store *s, kp_card_batch *batch);
    /* By id, or by name when id is 0. KP_ERR_NOT_FOUND. */
    kp_err (*batch_get)(kp_store *s, int64_t id, const char *name, kp_card_batch *out);
    /* The batch's cards, in number order. */
    kp_err (*batch_cards_each)(kp_store *s, int64_t batch_id,
                               bool (*fn)(void *ctx, const kp_card_info *card), void *ctx);
    /* Every card with its balance, in card number order. */
    kp_err (*balances_each)(kp_store *s, bool (*fn)(void *ctx, const kp_balance_row *row),
                            void *ctx);
    /* *empty: the account has no balance, debt, operation or lot (a fresh
     * card's); false for no such account. */
    kp_err (*account_is_empty)(kp_store *s, int64_t account_id, bool *empty);
    /* (write) A new empty account (created_at = now); sets *id. */
    kp_err (*account_create)(kp_store *s, kp_time now, int64_t *id);
    /* (write) Forgets the birthday index of an account (triggers.h
     * birthday_set writes it): an erased customer's month-day is personal
     * data too. None stored is KP_OK. */
    kp_err (*birthday_forget)(kp_store *s, int64_t account_id);

    /* ---- staff and sessions */
    /* (write) Sets staff->id. KP_ERR_CONFLICT when the login is taken. */
    kp_err (*staff_insert)(kp_store *s, kp_staff *staff);
    /* (write) Rewrites staff->id's row. KP_ERR_NOT_FOUND; KP_ERR_CONFLICT
     * for a login another member has. */
    kp_err (*staff_update)(kp_store *s, const kp_staff *staff);
    /* By id, or by login when id is 0 (active or not). KP_ERR_NOT_FOUND. */
    kp_err (*staff_get)(kp_store *s, int64_t id, const char *login, kp_staff *out);
    /* Staff in id order. */
    kp_err (*staff_list)(kp_store *s, kp_staff *out, size_t limit, size_t *n);
    /* (write) Stores a session by the hash of its token (the token itself
     * is never stored). KP_ERR_CONFLICT for a hash stored already. */
    kp_err (*session_insert)(kp_store *s, const uint8_t token_hash[32], int64_t staff_id,
                             kp_time now, kp_time expires_at);
    /* The active staff member of a session that expires after `now`, and
     * when it expires. KP_ERR_NOT_FOUND for an unknown or expired session
     * or a disabled member. */
    kp_err (*session_find)(kp_store *s, const uint8_t token_hash[32], kp_time now, kp_staff *out,
                           kp_time *expires_at);
    /* (write) Ends a session; an unknown one is KP_OK. */
    kp_err (*session_delete)(kp_store *s, const uint8_t token_hash[32]);
    /* (write) Ends every session of a staff member (disabled, password
     * changed); none is KP_OK. */
    kp_err (*sessions_delete_staff)(kp_store *s, int64_t staff_id);

    /* ---- the audit log: append-only, hash-chained */
    /* (write) Appends the entry after the chain's current head: fills
     * entry->seq (head + 1, 1 for the first), prev_hash and hash, and mac
     * when entry->mac_key is set (has_mac says which). KP_ERR_BUSY when
     * another connection appended at the same time (run again). */
    kp_err (*audit_append)(kp_store *s, kp_audit_entry *entry);
    /* The entries `filter` selects, in seq order (descending with
     * newest_first), at most `limit`: each criterion is part of the query,
     * never applied to a page after it was read. filter NULL: every entry. */
    kp_err (*audit_list)(kp_store *s, const kp_audit_filter *filter, kp_audit_entry *out,
                         size_t limit, size_t *n);

    /* ---- families */
    /* (write) Sets family->id. KP_ERR_CONFLICT when the owner has a family. */
    kp_err (*family_insert)(kp_store *s, kp_family *family);
    /* By id, or by owner when id is 0. KP_ERR_NOT_FOUND. */
    kp_err (*family_get)(kp_store *s, int64_t id, int64_t owner_id, kp_family *out);
    /* (write) Creates or replaces the customer's membership. */
    kp_err (*member_put)(kp_store *s, const kp_family_member *member);
    /* The customer's membership. KP_ERR_NOT_FOUND for none. */
    kp_err (*member_get)(kp_store *s, int64_t customer_id, kp_family_member *out);
    /* (write) Ends the customer's membership; none is KP_OK. */
    kp_err (*member_delete)(kp_store *s, int64_t customer_id);
    /* The family's members, in the order they joined. */
    kp_err (*members_of_family)(kp_store *s, int64_t family_id, kp_family_member *out, size_t limit,
                                size_t *n);

    /* ---- family invitations */
    /* (write) Stores a new invitation; sets inv->id. */
    kp_err (*invitation_insert)(kp_store *s, kp_family_invitation *inv);
    /* The invitation `id`. KP_ERR_NOT_FOUND. */
    kp_err (*invitation_get)(kp_store *s, int64_t id, kp_family_invitation *out);
    /* (write) Rewrites the state, invitee_id and answered_at of inv->id.
     * KP_ERR_NOT_FOUND. */
    kp_err (*invitation_update)(kp_store *s, const kp_family_invitation *inv);
    /* The pending invitations that expire after `now`, newest first: of
     * family `family_id` when phone_ix is NULL, else to that phone (any
     * family). */
    kp_err (*invitations_pending)(kp_store *s, int64_t family_id, const uint8_t *phone_ix,
                                  kp_time now, kp_family_invitation *out, size_t limit,
                                  size_t *n);
    /* (write) Deletes every invitation (any state) that customer
     * inviter_id made, or that names phone_ix (NULL: none): an erased
     * customer's phone and index go with them. None is KP_OK. */
    kp_err (*invitations_forget)(kp_store *s, int64_t inviter_id, const uint8_t *phone_ix);

    /* ---- operations */
    /* Sum of the `points` of an account's operations of `type` made under
     * the idempotency store `store` at or after `since` (daily limits); 0
     * when none. */
    kp_err (*ops_points_since)(kp_store *s, int64_t account_id, kp_op_type type, const char *store,
                               kp_time since, int64_t *sum);
    /* (write) Replaces the stored answer of the operation (store, receipt),
     * replayed on an idempotent retry. KP_ERR_NOT_FOUND. */
    kp_err (*op_response_set)(kp_store *s, const char *store, const char *receipt,
                              const char *response);
    /* An account's operations, newest first, before op id `before` (0 =
     * from the newest). */
    kp_err (*history_cards)(kp_store *s, int64_t account_id, int64_t before, kp_history_entry *out,
                            size_t limit, size_t *n);
    /* Operations recorded under the store `prefix` (exact) or under every
     * store whose code starts with `prefix` (!exact; "" = every store), that
     * have a receipt (the tills' and the back office's: expiries have
     * none), at from <= at < to, id < before (0 = from the newest), newest
     * first, at most `limit`. A partner's store patterns ("FUEL-*") are
     * such prefixes (docs/coalition.md, "Partner staff and isolation"). */
    kp_err (*ops_of_stores)(kp_store *s, const char *prefix, bool exact, int64_t before,
                            kp_time from, kp_time to, kp_history_entry *out, size_t limit,
                            size_t *n);
    /* How many values the database holds that only its key file opens or
     * checks: customers with sealed personal data, birthday indexes, audit
     * MACs, and the outbox's: events with a sealed payload, messages with
     * a sealed text (an erased one has none), webhook endpoints (their
     * secrets are sealed), login codes (keyed hashes) and family
     * invitations (a sealed phone and its blind index). Customers'
     * sessions are not counted: their tokens are hashed without the key.
     * Not 0: a new key file must never be made for it. */
    kp_err (*sealed_count)(kp_store *s, int64_t *n);

    /* ---- reports */
    /* The dashboard's figures for q (see kp_dashboard), read from the
     * ledger (postings and operations) and the customers, all in one
     * consistent snapshot: outside a transaction the call reads in a
     * read-only transaction of its own (SQLite: a deferred one; PostgreSQL:
     * REPEATABLE READ), so a purchase committed meanwhile is in every
     * figure or in none; inside one, what that transaction sees. Writes
     * nothing. Fills *out (zeroed first). KP_ERR_LIMIT when the figures
     * fall in more than KP_DASHBOARD_MONTHS_MAX months. */
    kp_err (*dashboard)(kp_store *s, const kp_dashboard_query *q, kp_dashboard *out);
} kp_people_ops;

#endif
