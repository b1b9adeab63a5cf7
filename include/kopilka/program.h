/*
 * program.h: a loyalty program, as the engine sees it. A program is written
 * as a JSON file (docs/rules.md); kp_program_parse() validates it and turns
 * it into this plain struct, which holds no pointers and can be copied.
 * Loading a program file into a database creates a new immutable version;
 * every purchase records the version that priced it.
 */
#ifndef KOPILKA_PROGRAM_H
#define KOPILKA_PROGRAM_H

#include "kopilka.h"
#include "money.h"

typedef enum kp_rule_kind {
    KP_RULE_EARN_PERCENT = 1,   /* earn rate_bp of what is paid in money */
    KP_RULE_FIRST_PURCHASE_MIN, /* the first purchase earns at least `points` */
    KP_RULE_BURN_LIMIT,         /* points pay at most rate_bp of a category/basket */
} kp_rule_kind;

typedef struct kp_rule {
    char id[48];             /* unique within the program, shown in explanations */
    kp_rule_kind kind;
    char category[KP_STR_MAX]; /* "" = every line */
    int32_t rate_bp;         /* earn_percent, burn_limit */
    int64_t points;          /* first_purchase_min */
} kp_rule;

typedef struct kp_program {
    int64_t version;          /* set by the store; 0 until loaded */
    char name[128];
    char currency[4];         /* ISO 4217, "RUB" */
    int64_t minor_per_point;  /* minor units one point pays: 100 = 1 point per rouble */
    kp_rounding rounding;     /* of earned points; burn caps always round down */
    char point_kind[16];      /* kind of the points purchases earn: "regular" */
    int64_t earn_pending_days; /* earned points become spendable after this */
    int64_t earn_ttl_days;    /* 0 = never expire */
    size_t n_rules;
    kp_rule rules[KP_RULES_MAX];
} kp_program;

/* Parses and validates a program file's text. On failure returns
 * KP_ERR_INVALID with e->field naming the rule and field ("rules[2].percent")
 * and *out left zeroed. `out` is caller-owned (it is large: keep it off small
 * stacks). */
kp_err kp_program_parse(const char *json, size_t len, kp_program *out, kp_error *e);

const char *kp_rule_kind_name(kp_rule_kind kind);

#endif
