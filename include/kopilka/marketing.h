/*
 * marketing.h: segments and campaigns as the store keeps them
 * (kp_store_ops.marketing, docs/marketing.md "Segments and campaigns"):
 * saved, named filters over customers; the store's part of evaluating one
 * (everything a filter says that is not sealed personal data: tier, spend
 * and visits in a period, recency, stores, card state, marketing consent);
 * campaigns that grant points to a segment and send it a message, with the
 * list of customers taken when the campaign starts and each one's outcome.
 *
 * Attributes and birthdays are sealed (people.h): the service filters on
 * them after the store's scan (src/service/marketing.c), never the store.
 *
 * The general contract of store.h holds (errors, transactions, lists,
 * ownership): writes (write) run inside the caller's transaction, or are one
 * of their own outside one. Every struct is plain data with fixed arrays,
 * owned by the caller. None of these pointers is NULL.
 */
#ifndef KOPILKA_MARKETING_H
#define KOPILKA_MARKETING_H

#include "store.h"

enum {
    KP_SEGMENT_NAME_MAX = 64,       /* bytes of a segment's or a campaign's name, with NUL */
    KP_SEGMENT_FILTER_MAX = 4096,   /* bytes of a filter's JSON, with NUL */
    KP_CAMPAIGN_MESSAGE_MAX = 8192, /* bytes of a campaign's texts as JSON, with NUL */
    KP_SEGMENT_LIST_MAX = 1024,     /* bytes of a ",a,b," list of tiers or stores, with NUL */
};

/* A saved filter (its grammar: docs/marketing.md, src/service/marketing.c). */
typedef struct kp_segment {
    int64_t id;
    char name[KP_SEGMENT_NAME_MAX];
    char filter[KP_SEGMENT_FILTER_MAX]; /* the filter, as JSON */
    kp_time created_at, updated_at;
    char actor[96]; /* who saved it last */
} kp_segment;

/* What the store checks of a filter. A criterion left at its "any" value
 * does not filter. Instants are seconds (kopilka.h). */
typedef struct kp_segment_query {
    /* Spend (receipt amounts of purchases less returns, minor units) and
     * visits (purchases) in [from, to), and the stores bought at in it. */
    kp_time from, to;
    int64_t spend_min, spend_max;   /* any: INT64_MIN / INT64_MAX */
    int64_t visits_min, visits_max; /* any: 0 / INT64_MAX */
    /* The last purchase ever: at or before last_before, at or after
     * last_after (any: INT64_MAX / INT64_MIN). A customer who never bought
     * is before every instant and after none. */
    kp_time last_before, last_after;
    /* ",gold,silver," ("," + names + ","; a customer with no tier has the
     * name ""): the tier is one of them. "" = any. */
    char tiers[KP_SEGMENT_LIST_MAX];
    /* ",north,south,": a purchase in [from, to) at one of them. "" = any. */
    char stores[KP_SEGMENT_LIST_MAX];
    /* Bit set of 1u << kp_card_state: one of the customer's cards is in one
     * of these states. 0 = any. */
    uint32_t card_states;
    /* Bit set of 1u << kp_channel: marketing consent given
     * (notify prefs' marketing_consent_at > 0) and marketing on one of
     * these channels. 0 = any. */
    uint32_t consent_channels;
} kp_segment_query;

/* Sets every criterion of q to "any". */
void kp_segment_query_any(kp_segment_query *q);

/* One customer a scan found. */
typedef struct kp_segment_hit {
    int64_t customer_id;
    int64_t account_id;
} kp_segment_hit;

typedef enum kp_campaign_state {
    KP_CAMPAIGN_DRAFT = 0,     /* being written; preview only */
    KP_CAMPAIGN_SCHEDULED = 1, /* to start at start_at (the scheduler starts it) */
    KP_CAMPAIGN_RUNNING = 2,   /* its list is taken; grants under way */
    KP_CAMPAIGN_DONE = 3,      /* every member settled */
    KP_CAMPAIGN_CANCELLED = 4, /* stopped by staff before the end */
    /* its list being written, a chunk a writer job; never granted from:
     * a start cut short is redone from scratch (docs/marketing.md) */
    KP_CAMPAIGN_STARTING = 5,
} kp_campaign_state;
const char *kp_campaign_state_name(kp_campaign_state s); /* "draft", ... */

/* A campaign: points of `kind` to every member of a segment but those
 * held out as the control group, and a message through the outbox. */
typedef struct kp_campaign {
    int64_t id;
    char name[KP_SEGMENT_NAME_MAX];
    int64_t segment_id;
    /* The segment's filter as the campaign started (its list is this
     * filter's result at started_at); "" before. */
    char filter[KP_SEGMENT_FILTER_MAX];
    char kind[32];                         /* the program's point kind granted */
    int64_t points;                        /* per member (0: a message only) */
    int32_t validity_days;                 /* 0: the kind's own validity */
    int64_t budget;                        /* points in all; 0 = no cap */
    int32_t control_bp;                    /* share held out, in 1/10000 */
    char message[KP_CAMPAIGN_MESSAGE_MAX]; /* {"subject":{"ru":..},"text":{..},"html":{..}}, "" =
                                              none */
    kp_campaign_state state;
    kp_time start_at;     /* scheduled: when to start */
    int32_t every_months; /* recurring: a copy starts this many months after each start; 0 = once */
    int64_t parent_id;    /* a recurring campaign's run: the campaign it repeats; else 0 */
    kp_time created_at, started_at, finished_at;
    char actor[96];
    char note[256];  /* why it ended as it did ("budget reached after ..."), "" */
    int64_t granted; /* points granted so far (kept with each grant) */
    /* A grant by a program rule (a grant rule on "campaign"), "" = the
     * fixed `points` of `kind`; the program version the campaign's start
     * pinned (0 before), whose rule gives every member's points. */
    char rule[48];
    int64_t program_version;
} kp_campaign;

/* A member's outcome. */
typedef enum kp_member_state {
    KP_MEMBER_PENDING = 0, /* not granted yet */
    KP_MEMBER_GRANTED = 1, /* the grant (and message) made */
    KP_MEMBER_BUDGET = 2,  /* not granted: the budget ran out */
    KP_MEMBER_CONTROL = 3, /* held out: no grant, no message */
    KP_MEMBER_SKIPPED = 4, /* erased, or the account gone, before its turn */
} kp_member_state;

typedef struct kp_campaign_member {
    int64_t customer_id;
    int64_t account_id;
    kp_member_state state;
    int64_t op_id;  /* the grant's operation, 0 = none */
    int64_t points; /* granted */
} kp_campaign_member;

/* A campaign's figures, counted from its members and the outbox. */
typedef struct kp_campaign_stats {
    int64_t members;       /* every member, control included */
    int64_t by_state[5];   /* members by kp_member_state */
    int64_t points;        /* granted */
    int64_t used;          /* of the granted lots' points, no longer on them: spent + expired */
    int64_t expired;       /* of those, taken by the expiry (lots.expired) */
    int64_t messages_sent; /* the campaign's messages the provider accepted */
    int64_t messages_pending; /* still to be sent */
    /* Revenue (purchases less returns, minor units) of the members in the
     * `window` before and after started_at, for the targeted and the
     * control group (campaign_stats' window; 0 = not asked). */
    int64_t revenue_before[2], revenue_after[2]; /* [0] targeted, [1] control */
} kp_campaign_stats;

typedef struct kp_marketing_ops {
    /* ---- segments */
    /* (write) Stores seg (created_at/updated_at/actor as given); sets
     * seg->id. KP_ERR_CONFLICT when another segment has the name. */
    kp_err (*segment_insert)(kp_store *s, kp_segment *seg);
    /* (write) Rewrites seg->id's name, filter, updated_at and actor.
     * KP_ERR_NOT_FOUND; KP_ERR_CONFLICT for another segment's name. */
    kp_err (*segment_update)(kp_store *s, const kp_segment *seg);
    kp_err (*segment_get)(kp_store *s, int64_t id, kp_segment *out);
    /* Segments by name. */
    kp_err (*segment_list)(kp_store *s, kp_segment *out, size_t limit, size_t *n);
    /* (write) KP_ERR_NOT_FOUND. */
    kp_err (*segment_delete)(kp_store *s, int64_t id);
    /* Customers not erased, with id > after, in id order, meeting q: at
     * most `limit` of them. */
    kp_err (*segment_scan)(kp_store *s, const kp_segment_query *q, int64_t after,
                           kp_segment_hit *out, size_t limit, size_t *n);

    /* ---- campaigns */
    /* (write) Sets c->id. */
    kp_err (*campaign_insert)(kp_store *s, kp_campaign *c);
    /* (write) Rewrites every field of c->id's row. KP_ERR_NOT_FOUND. */
    kp_err (*campaign_update)(kp_store *s, const kp_campaign *c);
    kp_err (*campaign_get)(kp_store *s, int64_t id, kp_campaign *out);
    /* Campaigns with id < before (0 = from the newest), newest first. */
    kp_err (*campaign_list)(kp_store *s, int64_t before, kp_campaign *out, size_t limit, size_t *n);
    /* Ids of the campaigns with work to do at `now`: RUNNING, STARTING,
     * or SCHEDULED with start_at <= now; in id order. */
    kp_err (*campaigns_due)(kp_store *s, kp_time now, int64_t *ids, size_t limit, size_t *n);

    /* ---- a campaign's members */
    /* (write) Adds the members (a customer there already is skipped). */
    kp_err (*members_add)(kp_store *s, int64_t campaign_id, const kp_campaign_member *m, size_t n);
    /* Members with customer_id > after, in customer order, of one state
     * (-1 = any). */
    kp_err (*members_list)(kp_store *s, int64_t campaign_id, int state, int64_t after,
                           kp_campaign_member *out, size_t limit, size_t *n);
    /* (write) Removes up to `limit` members of the campaign (the lowest
     * customer ids); *n the number removed (fewer than `limit`: none is
     * left). */
    kp_err (*members_delete)(kp_store *s, int64_t campaign_id, size_t limit, size_t *n);
    /* (write) Records a member's outcome (state, op_id, points) and keeps
     * with it the lot its grant made: the open lot of m->account_id whose
     * operation is m->op_id, if any (what campaign_stats' `used` reads).
     * KP_ERR_NOT_FOUND. */
    kp_err (*member_settle)(kp_store *s, int64_t campaign_id, const kp_campaign_member *m);
    /* The figures of campaign c (its id, started_at and key prefix of its
     * messages, "campaign:#<id>:"), with revenue over `window` seconds
     * either side of started_at (0: revenue not read). */
    kp_err (*campaign_stats)(kp_store *s, const kp_campaign *c, kp_time window,
                             kp_campaign_stats *out);
} kp_marketing_ops;

#endif
