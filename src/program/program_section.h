/*
 * program_section.h: a section of a program file ("customers",
 * "notifications", ...) parsed once per program version and kept. Program
 * versions are few and never change, so a parsed section lives until the
 * process ends (a request may hold it); past PROGRAM_SECTIONS_MAX versions
 * the oldest slot is reused and its section leaked: a few KiB per 64
 * program loads, bounded by the loads.
 */
#ifndef KOPILKA_PROGRAM_SECTION_H
#define KOPILKA_PROGRAM_SECTION_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <kopilka/program.h>
#include <kopilka/store.h>

enum { PROGRAM_SECTIONS_MAX = 64 };

/* One kind of section: how to parse it and its defaults. Define it static
 * with PROGRAM_SECTION_CACHE(...); the rest is the cache's. */
typedef struct program_section_cache {
    size_t size; /* of the parsed struct */
    /* Reads the section from the whole program file's text into out. */
    kp_err (*parse)(const char *json, size_t len, void *out, kp_error *e);
    void (*defaults)(void *out);
    pthread_mutex_t lock;
    pthread_once_t once;
    void *default_value; /* the defaults, made once */
    struct {
        int64_t version;
        const void *section;
    } slot[PROGRAM_SECTIONS_MAX];
    size_t next; /* the slot to fill next, round robin */
} program_section_cache;

/* parse_fn and defaults_fn take void * (thin wrappers of the section's
 * own functions). */
#define PROGRAM_SECTION_CACHE(type, parse_fn, defaults_fn)                                        \
    {.size = sizeof(type),                                                                        \
     .parse = (parse_fn),                                                                         \
     .defaults = (defaults_fn),                                                                   \
     .lock = PTHREAD_MUTEX_INITIALIZER,                                                           \
     .once = PTHREAD_ONCE_INIT}

/* The section of `program`, parsed from the stored text of its version the
 * first time; the defaults for no program (NULL or version 0), no store, or
 * when it cannot be read (it was checked at load: only a storage failure or
 * no memory lands there). Never NULL. */
const void *program_section_of(program_section_cache *c, kp_store *st,
                               const kp_program *program);

#endif
