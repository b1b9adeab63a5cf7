/*
 * ledger.c: plans of ledger changes for purchases, returns and moves. Pure:
 * the store applies a plan in one transaction. Every plan's postings sum to
 * zero: checked here in every build, NDEBUG or not (check.h), and again by
 * the store before it applies a plan; `kopilka verify` re-checks everything
 * on disk.
 */
#include <kopilka/ledger.h>

#include <stdio.h>
#include <string.h>

#include <kopilka/check.h>
#include <kopilka/clock.h>
#include <kopilka/money.h>

const char *kp_op_type_name(kp_op_type type)
{
    switch (type) {
    case KP_OP_PURCHASE: return "purchase";
    case KP_OP_RETURN: return "return";
    case KP_OP_ADJUST: return "adjustment";
    case KP_OP_EXPIRE: return "expiry";
    case KP_OP_OPENING: return "opening_balance";
    case KP_OP_GRANT: return "grant";
    case KP_OP_TRANSFER: return "transfer";
    case KP_OP_REWARD: return "reward";
    case KP_OP_REWARD_CANCEL: return "reward_cancel";
    }
    return "unknown";
}

const char *kp_sys_account_name(int64_t id)
{
    switch (id) {
    case KP_SYS_ISSUED: return "program:issued";
    case KP_SYS_REDEEMED: return "program:redeemed";
    case KP_SYS_EXPIRED: return "program:expired";
    case KP_SYS_ADJUSTMENT: return "program:adjustment";
    case KP_SYS_OPENING: return "program:opening";
    case KP_SYS_TRANSFER: return "program:transfer";
    }
    return "customer";
}

static void plan_init(kp_ledger_plan *plan, kp_op_type type, const kp_account *account)
{
    plan->type = type;
    plan->account_id = account->id;
    plan->n_postings = 0;
    plan->n_changes = 0;
    plan->has_new_lot = false;
    memset(&plan->new_lot, 0, sizeof plan->new_lot);
    plan->balance_after = account->balance;
    plan->debt_after = account->debt;
    plan->purchases_delta = 0;
    plan->spend_delta_minor = 0;
    plan->too_many_changes = false;
    plan->lots_full = false;
    plan->lots_merge = false;
    plan->lots_merge_at = 0;
}

/* A movement of `points` between the customer's account and a system account. */
static void post_pair(kp_ledger_plan *plan, int64_t sys_account, int64_t points)
{
    if (points == 0) return;
    KP_CHECK_ABORT(plan->n_postings + 2 <= sizeof plan->postings / sizeof plan->postings[0],
                   "ledger: at most 4 posting pairs per operation");
    plan->postings[plan->n_postings++] = (kp_posting){plan->account_id, points};
    plan->postings[plan->n_postings++] = (kp_posting){sys_account, -points};
}

kp_err kp_ledger_plan_check(const kp_ledger_plan *plan, kp_error *e)
{
    if (plan->too_many_changes)
        return kp_error_set(e, KP_ERR_LIMIT, "",
                            "the operation would change more than %d lots of one account; "
                            "split it into smaller ones",
                            KP_LOTS_MAX);
    if (plan->lots_full)
        return kp_error_set(e, KP_ERR_LIMIT, "",
                            "the account has %d open lots, the most it may have, each of a "
                            "different kind or pending state, so none can join or merge with "
                            "another: spend or expire some first",
                            KP_LOTS_MAX);
    int64_t sum = 0;
    bool overflow = false;
    for (size_t i = 0; i < plan->n_postings; i++)
        overflow |= !kp_add_checked(&sum, plan->postings[i].points);
    KP_CHECK(!overflow, "ledger: the postings of one operation sum without overflow", e);
    KP_CHECK(sum == 0, "ledger: the postings of one operation sum to zero", e);
    KP_CHECK(plan->debt_after >= 0, "ledger: debt is never negative", e);
    return KP_OK;
}

static void change_add(kp_ledger_plan *plan, int64_t lot_id, int64_t delta)
{
    if (delta == 0) return;
    for (size_t i = 0; i < plan->n_changes; i++)
        if (plan->changes[i].lot_id == lot_id) {
            plan->changes[i].delta += delta;
            return;
        }
    if (plan->n_changes == KP_LOTS_MAX) {
        plan->too_many_changes = true; /* kp_ledger_plan_check() refuses the plan */
        return;
    }
    plan->changes[plan->n_changes++] = (kp_lot_change){lot_id, delta};
}

/* The open lot of `account` that a credit like `proto` joins when the
 * account already has KP_LOTS_MAX open lots: the same kind and the same
 * pending state (a pending credit never joins a spendable lot, so points
 * never become spendable early), the expiry nearest to the credit's. NULL
 * when the account has no such lot. */
static const kp_lot *lot_to_join(const kp_account *account, const kp_lot *proto, kp_time now)
{
    const kp_lot *best = NULL;
    uint64_t best_gap = UINT64_MAX;
    bool pending = proto->active_from > now;
    for (size_t i = 0; i < account->n_lots; i++) {
        const kp_lot *l = &account->lots[i];
        if (strcmp(l->kind, proto->kind) != 0 || (l->active_from > now) != pending ||
            strcmp(l->partner, proto->partner) != 0)
            continue;
        uint64_t gap = l->expires_at > proto->expires_at
                           ? (uint64_t)l->expires_at - (uint64_t)proto->expires_at
                           : (uint64_t)proto->expires_at - (uint64_t)l->expires_at;
        if (gap < best_gap) {
            best = l;
            best_gap = gap;
        }
    }
    return best;
}

/* Whether two open lots of `account` may merge (kp_lots_merge_plan()'s
 * rule at `now`: the same kind and pending state), to make room for one
 * more. Only called at the cap: copies the lots, O(n^2) at worst. */
static bool lots_can_merge(const kp_account *account, kp_time now)
{
    static _Thread_local kp_lot copy[KP_LOTS_MAX];
    static _Thread_local kp_lot_merge merges[KP_LOTS_MAX];
    size_t n = account->n_lots;
    if (n < 2) return false;
    memcpy(copy, account->lots, n * sizeof copy[0]);
    return kp_lots_merge_plan(copy, &n, n - 1, now, merges) == 1;
}

/* Credits `points` to the account: repays debt first, the rest becomes the
 * new lot described by `proto` (merged into an open lot of the same kind that
 * never expires and is already active, to keep the number of lots small).
 *
 * An account never has more than KP_LOTS_MAX open lots, so one operation
 * always sees all of them (kp_account.lots). When it has that many, the
 * credit joins the open lot that lot_to_join() picks instead of opening
 * one; the joined lot keeps the later expiry and the later start of the two,
 * so the customer never loses a day of validity and pending points never
 * become spendable early (docs/architecture.md, "Lots"). With none to join,
 * the credit opens its own lot and the plan asks the store to merge the
 * nearest pair (kp_ledger_plan.lots_merge); only an account whose lots are
 * all of different kinds and pending states is refused (lots_full). */
static void credit(kp_ledger_plan *plan, const kp_account *account, int64_t points,
                   const kp_lot *proto, kp_time now)
{
    int64_t repay = points < plan->debt_after ? points : plan->debt_after;
    plan->debt_after -= repay;
    points -= repay;
    if (points == 0) return;
    plan->has_new_lot = true;
    plan->new_lot = *proto;
    plan->new_lot.id = 0;
    plan->new_lot.amount = points;
    plan->new_lot.remaining = points;
    if (proto->expires_at == KP_TIME_NEVER && proto->active_from <= now) {
        for (size_t i = 0; i < account->n_lots; i++) {
            const kp_lot *l = &account->lots[i];
            if (l->expires_at == KP_TIME_NEVER && l->active_from <= now &&
                strcmp(l->kind, proto->kind) == 0 && strcmp(l->partner, proto->partner) == 0) {
                plan->new_lot.id = l->id;
                plan->new_lot.active_from = l->active_from;
                return;
            }
        }
    }
    if (account->n_lots < KP_LOTS_MAX) return;
    const kp_lot *join = lot_to_join(account, proto, now);
    if (join == NULL) {
        /* Nothing to join (a pending credit among spendable lots, say): a
         * lot this plan spends to 0 leaves room; otherwise the store merges
         * the nearest pair of lots that may merge, in the same transaction,
         * so the new lot keeps its own start and expiry. */
        for (size_t c = 0; c < plan->n_changes; c++)
            for (size_t i = 0; i < account->n_lots; i++)
                if (account->lots[i].id == plan->changes[c].lot_id &&
                    account->lots[i].remaining + plan->changes[c].delta == 0)
                    return;
        if (!lots_can_merge(account, now)) {
            plan->lots_full = true; /* kp_ledger_plan_check() refuses the plan */
            return;
        }
        plan->lots_merge = true;
        plan->lots_merge_at = now;
        return;
    }
    plan->new_lot.id = join->id;
    if (join->active_from > plan->new_lot.active_from)
        plan->new_lot.active_from = join->active_from;
    if (join->expires_at > plan->new_lot.expires_at) plan->new_lot.expires_at = join->expires_at;
}

kp_err kp_ledger_plan_purchase(const kp_program *program, const kp_account *account,
                               const kp_basket *basket, const kp_quote *quote, kp_time now,
                               kp_ledger_plan *plan)
{
    return kp_ledger_plan_purchase_issued(program, account, basket, quote, "", now, plan);
}

kp_err kp_ledger_plan_purchase_issued(const kp_program *program, const kp_account *account,
                                      const kp_basket *basket, const kp_quote *quote,
                                      const char *issuer, kp_time now, kp_ledger_plan *plan)
{
    (void)basket;
    plan_init(plan, KP_OP_PURCHASE, account);
    for (size_t i = 0; i < quote->n_takes; i++)
        change_add(plan, quote->takes[i].lot_id, -quote->takes[i].points);
    post_pair(plan, KP_SYS_REDEEMED, -quote->burned);
    post_pair(plan, KP_SYS_ISSUED, quote->earned);
    if (quote->earned > 0) {
        kp_lot proto = {0};
        snprintf(proto.kind, sizeof proto.kind, "%s", program->point_kind);
        snprintf(proto.partner, sizeof proto.partner, "%s", issuer ? issuer : "");
        proto.earned_at = now;
        kp_validity_apply(&program->earn_validity, now, &proto.active_from, &proto.expires_at);
        credit(plan, account, quote->earned, &proto, now);
    }
    plan->balance_after = account->balance - quote->burned + quote->earned;
    /* A purchase under the joining minimum is recorded but does not make
     * the card a member: it neither counts as a purchase nor adds spend. */
    plan->purchases_delta = quote->joined ? 1 : 0;
    plan->spend_delta_minor = quote->joined ? quote->amount_minor - quote->discount_minor : 0;
    return kp_ledger_plan_check(plan, NULL);
}

/* floor(value * num / den) for the pro-rata parts of a partly returned line. */
static int64_t part(int64_t value, int64_t num, int64_t den)
{
    return den == 0 ? 0 : kp_muldiv(value, num, den, KP_ROUND_DOWN);
}

typedef struct work_lot {
    int64_t id;
    int64_t remaining;
    kp_time expires_at;
} work_lot;

kp_err kp_ledger_plan_return(const kp_account *account, kp_purchase_record *record,
                             const kp_return_request *request, kp_return_result *result,
                             kp_time now, kp_ledger_plan *plan, kp_error *e)
{
    memset(result, 0, offsetof(kp_return_result, lines));
    int64_t back[KP_LINES_MAX];
    for (size_t i = 0; i < record->n_lines; i++) back[i] = 0;

    if (request->whole) {
        for (size_t i = 0; i < record->n_lines; i++)
            back[i] = record->lines[i].line.qty - record->lines[i].returned_qty;
    } else {
        for (size_t k = 0; k < request->n_lines; k++) {
            char field[64];
            int64_t want = request->lines[k].qty;
            bool found = false;
            for (size_t i = 0; i < record->n_lines && (want > 0 || !found); i++) {
                const kp_op_line *ol = &record->lines[i];
                if (strcmp(ol->line.sku, request->lines[k].sku) != 0) continue;
                found = true;
                int64_t left = ol->line.qty - ol->returned_qty - back[i];
                if (left <= 0) continue;
                int64_t take = want == 0 ? left : (want < left ? want : left);
                back[i] += take;
                if (want > 0) want -= take;
            }
            if (!found) {
                snprintf(field, sizeof field, "lines[%zu].sku", k);
                return kp_error_set(e, KP_ERR_INVALID, field,
                                    "the original purchase has no line with sku \"%s\"",
                                    request->lines[k].sku);
            }
            if (want > 0) {
                snprintf(field, sizeof field, "lines[%zu].qty", k);
                return kp_error_set(e, KP_ERR_INVALID, field,
                                    "more than is left to return of sku \"%s\" (%lld too many)",
                                    request->lines[k].sku, (long long)want);
            }
        }
    }

    int64_t pm_before = 0, pm_after = 0;
    for (size_t i = 0; i < record->n_lines; i++) {
        const kp_op_line *ol = &record->lines[i];
        int64_t q = ol->line.qty, r = ol->returned_qty, b = back[i];
        int64_t net = ol->line.amount_minor - ol->result.discount_minor;
        pm_before += part(ol->result.points_minor, r, q);
        pm_after += part(ol->result.points_minor, r + b, q);
        if (b == 0) continue;
        int64_t er = part(ol->result.earned, r + b, q) - part(ol->result.earned, r, q);
        int64_t pr = part(ol->result.points_minor, r + b, q) - part(ol->result.points_minor, r, q);
        int64_t sr = part(net, r + b, q) - part(net, r, q);
        int64_t ar = part(ol->line.amount_minor, r + b, q) - part(ol->line.amount_minor, r, q);
        result->earned_reversed += er;
        result->spend_reversed_minor += sr;
        result->amount_reversed_minor += ar;
        result->lines[result->n_lines].index = i;
        result->lines[result->n_lines].qty = b;
        result->lines[result->n_lines].earned_reversed = er;
        result->lines[result->n_lines].points_minor = pr;
        result->n_lines++;
    }
    if (result->n_lines == 0)
        return kp_error_set(e, KP_ERR_INVALID, "lines",
                            "nothing is left to return of this purchase");
    int64_t refunded_before = part(record->burned, pm_before, record->points_minor);
    int64_t refunded_after = part(record->burned, pm_after, record->points_minor);
    result->burned_refunded = refunded_after - refunded_before;
    for (size_t i = 0; i < record->n_lines; i++) record->lines[i].returned_qty += back[i];

    plan_init(plan, KP_OP_RETURN, account);
    post_pair(plan, KP_SYS_REDEEMED, result->burned_refunded);
    post_pair(plan, KP_SYS_ISSUED, -result->earned_reversed);

    /* Work on a copy of the lots: refunds go back to the lots the points came
     * from (the part of the takes, in reverse, not refunded before), then the
     * claw-back takes the most durable points first; what is missing is debt. */
    static _Thread_local work_lot work[2 * KP_LOTS_MAX];
    size_t n_work = 0;
    for (size_t i = 0; i < account->n_lots; i++)
        work[n_work++] = (work_lot){account->lots[i].id, account->lots[i].remaining,
                                    account->lots[i].expires_at};
    int64_t refund = result->burned_refunded;
    int64_t repay = refund < plan->debt_after ? refund : plan->debt_after;
    plan->debt_after -= repay;
    refund -= repay;
    int64_t skip = refunded_before;
    for (size_t t = record->n_takes; t-- > 0 && refund > 0;) {
        int64_t avail = record->takes[t].points;
        int64_t s = skip < avail ? skip : avail;
        skip -= s;
        avail -= s;
        if (avail == 0) continue;
        int64_t give = avail < refund ? avail : refund;
        refund -= give;
        size_t w = 0;
        while (w < n_work && work[w].id != record->takes[t].lot_id) w++;
        if (w == n_work) {
            KP_CHECK_ABORT(n_work < 2 * KP_LOTS_MAX, "ledger: a return's work lots fit");
            work[n_work++] = (work_lot){record->takes[t].lot_id, 0, KP_TIME_NEVER};
        }
        work[w].remaining += give;
        change_add(plan, work[w].id, give);
    }
    KP_CHECK(refund == 0, "ledger: a return refunds every burnt point it gives back", e);
    int64_t claw = result->earned_reversed;
    for (size_t pass = 0; pass < 2 && claw > 0; pass++) {
        /* Never-expiring lots first, then the rest latest expiry first. */
        for (size_t w = n_work; w-- > 0 && claw > 0;) {
            bool never = work[w].expires_at == KP_TIME_NEVER;
            if ((pass == 0) != never || work[w].remaining == 0) continue;
            int64_t take = work[w].remaining < claw ? work[w].remaining : claw;
            work[w].remaining -= take;
            claw -= take;
            change_add(plan, work[w].id, -take);
        }
    }
    plan->debt_after += claw;
    /* Refunds reopen spent lots: past the cap, the store merges the nearest
     * pairs back down to it in the same transaction (kp_ledger_plan.lots_merge).
     * Under the cap (n_work <= KP_LOTS_MAX) nothing is counted. */
    if (n_work > KP_LOTS_MAX) {
        size_t open = 0;
        for (size_t w = 0; w < n_work; w++) open += work[w].remaining > 0;
        if (open > KP_LOTS_MAX) {
            plan->lots_merge = true;
            plan->lots_merge_at = now;
        }
    }
    plan->balance_after = account->balance + result->burned_refunded - result->earned_reversed;
    plan->spend_delta_minor = record->not_joined ? 0 : -result->spend_reversed_minor;
    return kp_ledger_plan_check(plan, e);
}

kp_err kp_ledger_plan_move(const kp_account *account, kp_op_type type, int64_t source,
                           int64_t points, const kp_lot *lot, kp_time now,
                           kp_ledger_plan *plan, kp_error *e)
{
    KP_CHECK(source < 0, "ledger: a move's source is a system account", e);
    plan_init(plan, type, account);
    if (points == 0) return kp_error_set(e, KP_ERR_INVALID, "points", "must not be zero");
    if (points > 0) {
        post_pair(plan, source, points);
        credit(plan, account, points, lot, now);
    } else {
        int64_t need = -points;
        int64_t have = 0;
        for (size_t i = 0; i < account->n_lots; i++) have += account->lots[i].remaining;
        if (need > have || need > account->balance)
            return kp_error_set(e, KP_ERR_INVALID, "points",
                                "the account has %lld points, cannot take %lld",
                                (long long)account->balance, (long long)need);
        for (size_t i = 0; i < account->n_lots && need > 0; i++) {
            int64_t take = account->lots[i].remaining < need ? account->lots[i].remaining : need;
            change_add(plan, account->lots[i].id, -take);
            need -= take;
        }
        post_pair(plan, source, points);
    }
    plan->balance_after = account->balance + points;
    return kp_ledger_plan_check(plan, e);
}

kp_err kp_ledger_plan_reward(const kp_account *account, const char *kind, int64_t points,
                             kp_time now, kp_ledger_plan *plan, kp_lot_take *takes,
                             size_t *n_takes, kp_error *e)
{
    plan_init(plan, KP_OP_REWARD, account);
    *n_takes = 0;
    if (points <= 0) return kp_error_set(e, KP_ERR_INVALID, "points", "must be > 0");
    int64_t have = 0;
    for (size_t i = 0; i < account->n_lots; i++) {
        const kp_lot *l = &account->lots[i];
        if (l->active_from <= now && l->expires_at > now && (!kind[0] || strcmp(l->kind, kind) == 0))
            have += l->remaining;
    }
    if (have > account->balance) have = account->balance < 0 ? 0 : account->balance;
    if (points > have)
        return kp_error_set(e, KP_ERR_LIMIT, "points",
                            "not enough points: the order costs %lld%s%s points, the account "
                            "has %lld of them to spend",
                            (long long)points, kind[0] ? " " : "", kind, (long long)have);
    int64_t need = points;
    for (size_t i = 0; i < account->n_lots && need > 0; i++) {
        const kp_lot *l = &account->lots[i];
        if (l->active_from > now || l->expires_at <= now || (kind[0] && strcmp(l->kind, kind) != 0))
            continue;
        int64_t take = l->remaining < need ? l->remaining : need;
        if (take <= 0) continue;
        change_add(plan, l->id, -take);
        takes[(*n_takes)++] = (kp_lot_take){l->id, take};
        need -= take;
    }
    KP_CHECK(need == 0, "ledger: a reward takes every point it costs", e);
    post_pair(plan, KP_SYS_REDEEMED, -points);
    plan->balance_after = account->balance - points;
    return kp_ledger_plan_check(plan, e);
}

kp_err kp_ledger_plan_reward_cancel(const kp_account *account, const kp_lot_take *takes,
                                    size_t n, kp_time now, kp_ledger_plan *plan, kp_error *e)
{
    plan_init(plan, KP_OP_REWARD_CANCEL, account);
    int64_t total = 0;
    for (size_t t = 0; t < n; t++) {
        KP_CHECK(takes[t].points > 0, "ledger: a reward's takes are positive", e);
        total += takes[t].points;
    }
    if (total == 0) return kp_error_set(e, KP_ERR_INVALID, "points", "nothing to give back");
    post_pair(plan, KP_SYS_REDEEMED, total);
    int64_t refund = total;
    int64_t repay = refund < plan->debt_after ? refund : plan->debt_after;
    plan->debt_after -= repay;
    /* Debt repaid first: the rest goes back to the lots, the last taken
     * first (as a return's refund). */
    size_t reopened = 0;
    for (size_t t = n; t-- > 0;) {
        int64_t give = takes[t].points;
        if (repay > 0) {
            int64_t r = repay < give ? repay : give;
            repay -= r;
            give -= r;
        }
        if (give == 0) continue;
        bool open = false;
        for (size_t i = 0; i < account->n_lots && !open; i++)
            open = account->lots[i].id == takes[t].lot_id;
        reopened += !open;
        change_add(plan, takes[t].lot_id, give);
    }
    if (account->n_lots + reopened > KP_LOTS_MAX) {
        plan->lots_merge = true;
        plan->lots_merge_at = now;
    }
    plan->balance_after = account->balance + total;
    return kp_ledger_plan_check(plan, e);
}

kp_err kp_ledger_plan_expire(const kp_account *account, kp_time now, kp_ledger_plan *plan,
                             int64_t *expired)
{
    plan_init(plan, KP_OP_EXPIRE, account);
    int64_t total = 0;
    /* At most KP_LOTS_MAX lots a plan: the caller plans again for the rest. */
    for (size_t i = 0; i < account->n_lots && plan->n_changes < KP_LOTS_MAX; i++) {
        const kp_lot *l = &account->lots[i];
        if (l->remaining <= 0 || l->expires_at > now) continue;
        change_add(plan, l->id, -l->remaining);
        total += l->remaining;
    }
    post_pair(plan, KP_SYS_EXPIRED, -total);
    plan->balance_after = account->balance - total;
    *expired = total;
    return kp_ledger_plan_check(plan, NULL);
}

size_t kp_lots_merge_plan(kp_lot *lots, size_t *n, size_t max, kp_time now, kp_lot_merge *merges)
{
    size_t n_merges = 0;
    while (*n > max) {
        /* The nearest pair (i, j), j the next lot after i that i may join. */
        size_t best_i = SIZE_MAX, best_j = 0;
        uint64_t best_gap = UINT64_MAX;
        for (size_t i = 0; i < *n; i++) {
            bool pending = lots[i].active_from > now;
            for (size_t j = i + 1; j < *n; j++) {
                if (strcmp(lots[j].kind, lots[i].kind) != 0 ||
                    (lots[j].active_from > now) != pending ||
                    strcmp(lots[j].partner, lots[i].partner) != 0)
                    continue;
                uint64_t gap = (uint64_t)lots[j].expires_at - (uint64_t)lots[i].expires_at;
                if (gap < best_gap) {
                    best_gap = gap;
                    best_i = i;
                    best_j = j;
                }
                break;
            }
        }
        if (best_i == SIZE_MAX) break;
        kp_lot *from = &lots[best_i], *into = &lots[best_j];
        if (from->active_from > into->active_from) into->active_from = from->active_from;
        if (from->expires_at > into->expires_at) into->expires_at = from->expires_at;
        into->amount += from->remaining;
        into->remaining += from->remaining;
        merges[n_merges++] = (kp_lot_merge){into->id, from->id, from->remaining, into->active_from,
                                            into->expires_at};
        memmove(from, from + 1, (*n - best_i - 1) * sizeof *from);
        (*n)--;
    }
    return n_merges;
}
