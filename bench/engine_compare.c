/*
 * engine_compare.c: prints every quote of test_engine_index's random
 * programs (3000 programs x 8 baskets, accounts, stores, currencies and
 * instants; each priced scanning and compiled): figures, lines, the
 * explanations' sentences, burn notes and lot takes, one text line each.
 * bench/engine_compare.sh builds it against two engines (a base revision's
 * and the working tree's) and compares the outputs byte for byte: issue
 * 16's randomised comparison against the current engine. The generators
 * are the base's tests/unit/test_engine_index.c, included as they are.
 */
#define main test_main
#include "test_engine_index.c"
#undef main
static void dump(FILE *o, const kp_quote *q, kp_err r)
{
    fprintf(o, "r%d a%lld d%lld p%lld pd%lld br%lld b%lld e%lld bb%lld ba%lld j%d t%d [%s]\n", r,
            (long long)q->amount_minor, (long long)q->discount_minor, (long long)q->points_minor,
            (long long)q->paid_minor, (long long)q->burn_request, (long long)q->burned,
            (long long)q->earned, (long long)q->balance_before, (long long)q->balance_after,
            q->joined, q->tier_index, q->burn_limited_by);
    if (r) return;
    for (size_t i = 0; i < q->n_lines; i++)
        fprintf(o, " L %lld %lld %lld %lld %d %d\n", (long long)q->lines[i].discount_minor,
                (long long)q->lines[i].points_minor, (long long)q->lines[i].paid_minor,
                (long long)q->lines[i].earned, q->lines[i].earn_rule, q->lines[i].discount_rule);
    for (size_t i = 0; i < q->n_explain; i++)
        fprintf(o, " X %s %d %lld %d %lld %lld %s\n", q->explain[i].rule, q->explain[i].kind,
                (long long)q->explain[i].base_minor, q->explain[i].rate_bp,
                (long long)q->explain[i].points, (long long)q->explain[i].discount_minor,
                q->explain[i].text);
    for (size_t i = 0; i < q->n_takes; i++)
        fprintf(o, " T %lld %lld\n", (long long)q->takes[i].lot_id, (long long)q->takes[i].points);
}
int main(void)
{
    static fixture f;
    out o = {f.json, 0, sizeof f.json};
    static const char *const stores[] = {NULL, "main", "FUEL-1", "WASH-2", "other"};
    static const char *const currencies[] = {NULL, "", "RUB", "KZT", "USD"};
    int programs = 0;
    for (int attempt = 0; programs < 3000 && attempt < 20000; attempt++) {
        random_program(&o);
        kp_error e = {0};
        if (kp_program_parse(f.json, o.len, &f.program, &e) != KP_OK) continue;
        programs++;
        kp_engine_compile(&f.program, &f.index);
        for (int trial = 0; trial < 8; trial++) {
            random_account(&f.account);
            random_basket(&f.basket);
            kp_price_opts opts = {.store = stores[pick(5)],
                                  .burn_max = chance(15) ? pick(3000) : -1,
                                  .currency = currencies[pick(5)],
                                  .no_partner_promos = chance(20)};
            kp_time now = 1704067200 + (kp_time)pick(4 * 365) * 86400 + pick(86400);
            for (int c = 0; c < 2; c++) {
                opts.index = c ? &f.index : NULL;
                kp_err r = kp_engine_price_opts(&f.program, &f.account, &f.basket, &opts, now,
                                                &f.scan, &e);
                dump(stdout, &f.scan, r);
            }
        }
    }
    return 0;
}
