/*
 * program_diff.c: the structural difference between two program files
 * (program_diff.h), over jansson values. Recursive over the files' nesting,
 * which the JSON reader bounds.
 */
#include "program/program_diff.h"

#include <stdio.h>
#include <string.h>

typedef struct diff {
    json_t *changes;
    size_t max;
    size_t total;
    kp_err err;
} diff;

static void add(diff *d, const char *path, const char *op, json_t *from, json_t *to)
{
    d->total++;
    if (d->err || json_array_size(d->changes) >= d->max) return;
    json_t *c = json_pack("{s:s, s:s, s:O?, s:O?}", "path", path, "op", op, "from", from, "to", to);
    if (c == NULL || json_array_append_new(d->changes, c) != 0) d->err = KP_ERR_NOMEM;
}

/* out = the parts one after another, ending in "..." when they do not fit
 * (written by hand: snprintf's truncation is what -Wformat-truncation
 * refuses in a release build). */
static void path_put(char out[PROGRAM_PATH_MAX], const char *const *parts, size_t n)
{
    size_t len = 0;
    bool cut = false;
    for (size_t i = 0; i < n && !cut; i++) {
        size_t k = strlen(parts[i]);
        if (len + k >= PROGRAM_PATH_MAX) {
            k = PROGRAM_PATH_MAX - 1 - len;
            cut = true;
        }
        memcpy(out + len, parts[i], k);
        len += k;
    }
    out[len] = '\0';
    if (cut) memcpy(out + PROGRAM_PATH_MAX - 4, "...", 4);
}

/* out = base + ".key", or base + "[fmt_key=value]" when fmt_key is set. */
static void path_join(char out[PROGRAM_PATH_MAX], const char *base, const char *fmt_key,
                      const char *key, const char *value)
{
    if (fmt_key == NULL) {
        const char *parts[] = {base, base[0] ? "." : "", key};
        path_put(out, parts, 3);
    } else {
        const char *parts[] = {base, "[", fmt_key, "=", value, "]"};
        path_put(out, parts, 6);
    }
}

static void path_index(char out[PROGRAM_PATH_MAX], const char *base, size_t i)
{
    char index[32];
    snprintf(index, sizeof index, "[%zu]", i);
    const char *parts[] = {base, index};
    path_put(out, parts, 2);
}

/* The string member `key` of an array's item, or NULL. */
static const char *item_key(json_t *item, const char *key)
{
    json_t *v = json_is_object(item) ? json_object_get(item, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* True when every item of `a` is an object with a string `key` that no
 * other item of `a` has. */
static bool keyed_by(json_t *a, const char *key)
{
    size_t n = json_array_size(a);
    for (size_t i = 0; i < n; i++) {
        const char *k = item_key(json_array_get(a, i), key);
        if (k == NULL) return false;
        for (size_t j = 0; j < i; j++)
            if (strcmp(item_key(json_array_get(a, j), key), k) == 0) return false;
    }
    return true;
}

/* The key both arrays' items are matched by, or NULL (by index). */
static const char *array_key(json_t *a, json_t *b)
{
    static const char *const keys[] = {"id", "name", "type"};
    if (json_array_size(a) == 0 && json_array_size(b) == 0) return NULL;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (keyed_by(a, keys[i]) && keyed_by(b, keys[i])) return keys[i];
    return NULL;
}

/* The index of the item of `a` whose `key` is `value`, or -1. */
static long find_item(json_t *a, const char *key, const char *value)
{
    for (size_t i = 0; i < json_array_size(a); i++)
        if (strcmp(item_key(json_array_get(a, i), key), value) == 0) return (long)i;
    return -1;
}

static void walk(diff *d, const char *path, json_t *from, json_t *to);

static void walk_object(diff *d, const char *path, json_t *from, json_t *to)
{
    char sub[PROGRAM_PATH_MAX];
    const char *key;
    json_t *v;
    json_object_foreach(from, key, v)
    {
        path_join(sub, path, NULL, key, NULL);
        json_t *w = json_object_get(to, key);
        if (w == NULL)
            add(d, sub, "removed", v, NULL);
        else
            walk(d, sub, v, w);
    }
    json_object_foreach(to, key, v)
    {
        if (json_object_get(from, key)) continue;
        path_join(sub, path, NULL, key, NULL);
        add(d, sub, "added", NULL, v);
    }
}

/* Items matched by `key`; then the order of the items both have. */
static void walk_keyed(diff *d, const char *path, const char *key, json_t *from, json_t *to)
{
    char sub[PROGRAM_PATH_MAX];
    for (size_t i = 0; i < json_array_size(from); i++) {
        json_t *v = json_array_get(from, i);
        const char *k = item_key(v, key);
        path_join(sub, path, key, NULL, k);
        long j = find_item(to, key, k);
        if (j < 0)
            add(d, sub, "removed", v, NULL);
        else
            walk(d, sub, v, json_array_get(to, (size_t)j));
    }
    for (size_t j = 0; j < json_array_size(to); j++) {
        json_t *w = json_array_get(to, j);
        const char *k = item_key(w, key);
        if (find_item(from, key, k) >= 0) continue;
        path_join(sub, path, key, NULL, k);
        add(d, sub, "added", NULL, w);
    }
    json_t *order_from = json_array(), *order_to = json_array();
    if (order_from == NULL || order_to == NULL) d->err = KP_ERR_NOMEM;
    for (size_t i = 0; order_from && i < json_array_size(from); i++) {
        const char *k = item_key(json_array_get(from, i), key);
        if (find_item(to, key, k) >= 0) json_array_append_new(order_from, json_string(k));
    }
    for (size_t j = 0; order_to && j < json_array_size(to); j++) {
        const char *k = item_key(json_array_get(to, j), key);
        if (find_item(from, key, k) >= 0) json_array_append_new(order_to, json_string(k));
    }
    if (order_from && order_to && !json_equal(order_from, order_to))
        add(d, path, "changed", order_from, order_to);
    json_decref(order_from);
    json_decref(order_to);
}

static void walk_indexed(diff *d, const char *path, json_t *from, json_t *to)
{
    char sub[PROGRAM_PATH_MAX];
    size_t n_from = json_array_size(from), n_to = json_array_size(to);
    for (size_t i = 0; i < n_from || i < n_to; i++) {
        path_index(sub, path, i);
        if (i >= n_to)
            add(d, sub, "removed", json_array_get(from, i), NULL);
        else if (i >= n_from)
            add(d, sub, "added", NULL, json_array_get(to, i));
        else
            walk(d, sub, json_array_get(from, i), json_array_get(to, i));
    }
}

static void walk(diff *d, const char *path, json_t *from, json_t *to)
{
    if (d->err || json_equal(from, to)) return;
    if (json_is_object(from) && json_is_object(to)) {
        walk_object(d, path, from, to);
    } else if (json_is_array(from) && json_is_array(to)) {
        const char *key = array_key(from, to);
        if (key)
            walk_keyed(d, path, key, from, to);
        else
            walk_indexed(d, path, from, to);
    } else {
        add(d, path, "changed", from, to);
    }
}

kp_err program_diff(json_t *from, json_t *to, size_t max, json_t *changes, size_t *total)
{
    diff d = {.changes = changes, .max = max};
    walk(&d, "", from, to);
    *total = d.total;
    return d.err;
}
