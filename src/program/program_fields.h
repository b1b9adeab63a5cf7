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
#include <kopilka/program.h>

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

/* One parse of a program file that goes on past errors and reports every
 * one (program_json.c): the parts of the file read in other files note
 * their errors through it. */
typedef struct parse parse;
/* Notes err (the reader's error is in *program_parse_error(x)); true when
 * err is KP_OK. */
bool program_ok(parse *x, kp_err err);
/* Notes an error found by the parser itself; always false. */
bool program_fail(parse *x, kp_err code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Every key of obj not in allowed is one error; true when there is none. */
bool program_keys(parse *x, json_t *obj, const char *const *allowed, const char *path);
/* Where a field reader called with this parse writes its error. */
kp_error *program_parse_error(parse *x);
/* A string of at most out_size - 1 bytes. */
kp_err program_get_string(json_t *obj, const char *key, const char *path, bool required, char *out,
                          size_t out_size, kp_error *e);
/* A percentage (12 or "12.5") into basis points, at most max_bp. */
kp_err program_get_percent(json_t *obj, const char *key, const char *path, bool required,
                           int32_t max_bp, int32_t *bp, kp_error *e);

/* program_coalition.c: the "partners", "stores", "currencies" and
 * "currency_rules" sections, and a rule's "partner", "at_partner" and
 * "currency" (read before the rules, checked after them). */
void program_parse_coalition(parse *x, json_t *root, kp_program *p);
void program_parse_rule_coalition(parse *x, json_t *r, const char *path, kp_program *p,
                                  kp_rule *rule);
void program_check_rules_coalition(parse *x, kp_program *p);

#endif
