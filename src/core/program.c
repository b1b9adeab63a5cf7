/*
 * program.c: what the engine, the ledger and the scheduler ask of a parsed
 * program: point kinds and their validity, tiers, rule windows, rate
 * ladders, the program's calendar and which outside sources may send which
 * events. Pure: no JSON (that is
 * src/program/program_json.c), no storage.
 */
#include <kopilka/program.h>

#include <assert.h>
#include <string.h>

#include <kopilka/clock.h>

const kp_point_kind *kp_program_kind(const kp_program *p, const char *name)
{
    for (size_t i = 0; i < p->n_kinds; i++)
        if (strcmp(p->kinds[i].name, name) == 0) return &p->kinds[i];
    return NULL;
}

const kp_tier *kp_program_tier(const kp_program *p, const char *name, int *index)
{
    if (index) *index = -1;
    if (name == NULL || name[0] == '\0') return NULL;
    for (size_t i = 0; i < p->n_tiers; i++)
        if (strcmp(p->tiers[i].name, name) == 0) {
            if (index) *index = (int)i;
            return &p->tiers[i];
        }
    return NULL;
}

int kp_program_tier_for_spend(const kp_program *p, int64_t spend_minor)
{
    int best = -1;
    for (size_t i = 0; i < p->n_tiers; i++)
        if (p->tiers[i].min_spend_minor <= spend_minor) best = (int)i;
    return best;
}

void kp_validity_apply(const kp_validity *v, kp_time at, kp_time *active_from, kp_time *expires_at)
{
    *active_from = at + v->pending_days * KP_DAY_SECONDS;
    if (v->ttl_days > 0)
        *expires_at = at + v->ttl_days * KP_DAY_SECONDS;
    else if (v->ttl_months > 0)
        *expires_at = kp_time_add_months(at, v->ttl_months);
    else if (v->expires_on > 0)
        *expires_at = v->expires_on;
    else
        *expires_at = KP_TIME_NEVER;
}

bool kp_rule_active(const kp_rule *r, kp_time now)
{
    if (r->starts_at && now < r->starts_at) return false;
    if (r->ends_at && now >= r->ends_at) return false;
    return true;
}

int32_t kp_steps_rate(const kp_rate_step *steps, size_t n, int64_t amount)
{
    int32_t rate = -1;
    for (size_t i = 0; i < n; i++) {
        if (i > 0) assert(steps[i - 1].min_minor < steps[i].min_minor);
        if (steps[i].min_minor <= amount) rate = steps[i].rate_bp;
    }
    return rate;
}

void kp_program_date(const kp_program *p, kp_time t, int *year, int *month, int *day)
{
    kp_time_to_civil(t + (kp_time)p->utc_offset_minutes * 60, year, month, day);
}

kp_time kp_program_date_start(const kp_program *p, int year, int month, int day)
{
    return kp_time_from_civil(year, month, day) - (kp_time)p->utc_offset_minutes * 60;
}

/* ---- outside event sources */

const char *kp_event_from_name(kp_event_from from)
{
    switch (from) {
    case KP_FROM_TILL: return "till";
    case KP_FROM_PARTNER: return "partner";
    case KP_FROM_BACK_OFFICE: return "back_office";
    }
    return "unknown";
}

bool kp_event_type_internal(const char *type)
{
    /* birthday and tenure are granted by the scheduler on the program's
     * calendar; registration by the back office's registration itself;
     * campaign by a campaign's run (docs/marketing.md). */
    static const char *const internal[] = {"birthday",     "tenure",      "registration",
                                           "annual_spend", "tier_review", "expiry",
                                           "campaign"};
    for (size_t i = 0; i < sizeof internal / sizeof internal[0]; i++)
        if (strcmp(type, internal[i]) == 0) return true;
    return false;
}

unsigned kp_program_event_from(const kp_program *p, const char *type)
{
    if (kp_event_type_internal(type)) return 0;
    if (p->event_sources_declared) {
        for (size_t i = 0; i < p->n_event_sources; i++)
            if (strcmp(p->event_sources[i].type, type) == 0) return p->event_sources[i].from;
        return 0;
    }
    /* Undeclared: the event types the program's grant rules are on, from a
     * till or the back office (a partner system must be declared). */
    for (size_t i = 0; i < p->n_rules; i++)
        if (p->rules[i].kind == KP_RULE_GRANT && strcmp(p->rules[i].on, type) == 0)
            return KP_FROM_TILL | KP_FROM_BACK_OFFICE;
    return 0;
}
