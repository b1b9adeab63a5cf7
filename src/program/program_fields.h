/*
 * program_fields.h: the strict-JSON field readers the program file's
 * parsers share (program_json.c defines them; program_people.c and
 * src/notify/policy.c use them). A field is named by its JSON path
 * ("path.key", or "key" at the top level) in every error, which says what
 * was wrong and what is allowed; an absent optional field leaves *out.
 */
#ifndef KOPILKA_PROGRAM_FIELDS_H
#define KOPILKA_PROGRAM_FIELDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <kopilka/kopilka.h>

/* "path.key", or "key" when path is "". */
void program_field_name(char *out, size_t size, const char *path, const char *key);
/* Refuses a key of obj not in allowed (NULL-terminated): "unknown field;
 * allowed: a, b, c". */
kp_err program_only_keys(json_t *obj, const char *const *allowed, const char *path, kp_error *e);
/* An integer in [min, max]. */
kp_err program_get_int(json_t *obj, const char *key, const char *path, bool required, int64_t min,
                       int64_t max, int64_t *out, kp_error *e);
/* true or false. */
kp_err program_get_bool(json_t *obj, const char *key, const char *path, bool *out, kp_error *e);

#endif
