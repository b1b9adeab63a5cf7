/*
 * store_draws.c: what both backends' draws share (store_draws.h): the
 * checks of draw_insert's contract, and kp_draw_release().
 */
#include "store_draws.h"

#include <stdio.h>
#include <stdlib.h>

void kp_draw_release(kp_draw *d)
{
    free(d->prizes);
    free(d->entries);
    free(d->winners);
    d->prizes = d->entries = d->winners = NULL;
}

kp_err store_draw_check(kp_store *s, const kp_draw *d)
{
    const char *bad = NULL;
    if (d->name[0] == '\0') bad = "has no name";
    else if (d->commitment[0] == '\0' || d->sealed_seed[0] == '\0') bad = "has no commitment or sealed seed";
    else if (d->from >= d->to) bad = "has a period whose start is not before its end";
    else if (d->rule != KP_DRAW_PER_SPEND && d->rule != KP_DRAW_PER_VISIT) bad = "has an unknown rule";
    else if (d->rule == KP_DRAW_PER_SPEND && d->per_minor <= 0) bad = "has a spend rule without a positive per_minor";
    else if (d->prizes == NULL) bad = "has no prizes";
    if (bad == NULL) return KP_OK;
    snprintf(s->last_error, sizeof s->last_error, "draw %.60s %s", d->name, bad);
    return KP_ERR_INVALID;
}
