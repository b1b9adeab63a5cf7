/*
 * coalition.c: the pure lookups of a coalition program (coalition.h): whose
 * store a store is, a partner by code, a point's value in a currency, and
 * the settlement period of an instant. The settlement arithmetic itself is
 * in settle.c.
 */
#include <kopilka/coalition.h>

#include <string.h>

#include <kopilka/clock.h>

/* "WASH-*" matches every code starting "WASH-"; anything else is exact. */
static bool pattern_matches(const char *pattern, const char *store)
{
    size_t n = strlen(pattern);
    if (n > 0 && pattern[n - 1] == '*') return strncmp(pattern, store, n - 1) == 0;
    return strcmp(pattern, store) == 0;
}

const char *kp_program_partner_of_store(const kp_program *p, const char *store)
{
    if (store == NULL) return KP_OPERATOR;
    for (size_t i = 0; i < p->n_partners; i++)
        for (size_t j = 0; j < p->partners[i].n_stores; j++)
            if (pattern_matches(p->partners[i].stores[j].match, store))
                return p->partners[i].code;
    return KP_OPERATOR;
}

const char *kp_program_store_currency(const kp_program *p, const char *store)
{
    if (store == NULL) return "";
    for (size_t i = 0; i < p->n_partners; i++)
        for (size_t j = 0; j < p->partners[i].n_stores; j++) {
            const kp_store_pattern *sp = &p->partners[i].stores[j];
            if (sp->currency[0] && pattern_matches(sp->match, store)) return sp->currency;
        }
    for (size_t j = 0; j < p->n_store_currencies; j++)
        if (pattern_matches(p->store_currencies[j].match, store))
            return p->store_currencies[j].currency;
    return "";
}

const kp_partner *kp_program_partner(const kp_program *p, const char *code)
{
    if (code == NULL || code[0] == '\0') return NULL;
    for (size_t i = 0; i < p->n_partners; i++)
        if (strcmp(p->partners[i].code, code) == 0) return &p->partners[i];
    return NULL;
}

bool kp_program_is_coalition(const kp_program *p) { return p->n_partners > 0; }

int64_t kp_program_minor_per_point(const kp_program *p, const char *currency)
{
    if (currency == NULL || currency[0] == '\0' || strcmp(currency, p->currency) == 0)
        return p->minor_per_point;
    for (size_t i = 0; i < p->n_currencies; i++)
        if (strcmp(p->currencies[i].code, currency) == 0) return p->currencies[i].minor_per_point;
    return 0;
}

bool kp_rule_fits_store(const kp_program *p, const kp_rule *rule, const char *store,
                        const char *store_partner, const char *currency)
{
    if (rule->store[0] && strcmp(rule->store, store ? store : "") != 0) return false;
    if (rule->currency[0]) {
        const char *c = currency && currency[0] ? currency : p->currency;
        if (strcmp(rule->currency, c) != 0) return false;
    }
    const char *at = rule->at_partner[0] ? rule->at_partner : rule->partner;
    if (at[0] && strcmp(at, store_partner ? store_partner : KP_OPERATOR) != 0) return false;
    return true;
}

int32_t kp_settle_period_of(kp_time at, int32_t utc_offset_minutes)
{
    int y, m, d;
    kp_time_to_civil(at + (kp_time)utc_offset_minutes * 60, &y, &m, &d);
    return (int32_t)(y * 100 + m);
}
