/*
 * program_diff.h: what changes between two program files, read as JSON
 * values: the structural difference the back office shows before a version
 * is loaded (POST /v1/admin/programs/diff, docs/api.md "Program versions").
 *
 * A change is {"path", "op", "from", "to"}: op "added" (from null),
 * "removed" (to null) or "changed". Paths are JSON paths from the file's
 * root ("tiers.window_days", "rules[id=parts-12].percent"). Arrays whose
 * items are objects that all carry a unique string "id" (the rules), else
 * "name" (point kinds, tier levels, attributes), else "type" (event
 * sources), are matched by that key, not by position, so a rule inserted
 * before another does not read as every later rule changed; when the
 * matched items come in another order, that is one more change of the
 * array's own path whose from and to are their keys in order (the order of
 * the rules matters: docs/rules.md). Other arrays are compared by index.
 * Objects keep the order of `from`, then the members only `to` has.
 */
#ifndef KOPILKA_PROGRAM_DIFF_H
#define KOPILKA_PROGRAM_DIFF_H

#include <jansson.h>
#include <stddef.h>

#include <kopilka/kopilka.h>

enum {
    PROGRAM_CHANGES_MAX = 1000, /* changes one answer lists; the rest are counted */
    PROGRAM_PATH_MAX = 512,     /* bytes of a change's path; a longer one ends in "..." */
};

/* Appends the changes from `from` to `to` to the array `changes`, at most
 * `max` of them; *total counts every change, listed or not. The values are
 * borrowed; the changes hold references of their own. KP_ERR_NOMEM (the
 * array then holds part of the changes). */
kp_err program_diff(json_t *from, json_t *to, size_t max, json_t *changes, size_t *total);

#endif
