/*
 * program_section.c: a program file's section parsed once per program
 * version (program_section.h), shared by the "customers" and
 * "notifications" sections.
 */
#include "program/program_section.h"

#include <stdlib.h>
#include <string.h>

/* pthread_once takes no argument: the cache being initialised is passed
 * through this thread's variable. */
static _Thread_local program_section_cache *initialising;

static void make_defaults(void)
{
    program_section_cache *c = initialising;
    c->default_value = calloc(1, c->size);
    if (c->default_value) c->defaults(c->default_value);
}

static const void *cached(const program_section_cache *c, int64_t version)
{
    for (size_t i = 0; i < PROGRAM_SECTIONS_MAX; i++)
        if (c->slot[i].version == version) return c->slot[i].section;
    return NULL;
}

const void *program_section_of(program_section_cache *c, kp_store *st,
                               const kp_program *program)
{
    initialising = c;
    pthread_once(&c->once, make_defaults);
    if (c->default_value == NULL) abort(); /* no memory for a few hundred bytes at start */
    if (program == NULL || program->version == 0 || st == NULL) return c->default_value;

    pthread_mutex_lock(&c->lock);
    const void *found = cached(c, program->version);
    pthread_mutex_unlock(&c->lock);
    if (found) return found;

    void *section = malloc(c->size);
    if (section == NULL) return c->default_value;
    char *json = NULL;
    int64_t version = 0;
    kp_error e = {0};
    if (st->ops->program_get(st, program->version, 0, &json, &version) != KP_OK ||
        c->parse(json, strlen(json), section, &e) != KP_OK)
        c->defaults(section); /* checked at load: only a storage failure lands here */
    free(json);

    pthread_mutex_lock(&c->lock);
    found = cached(c, program->version);
    if (found == NULL) {
        c->slot[c->next].version = program->version;
        c->slot[c->next].section = section;
        c->next = (c->next + 1) % PROGRAM_SECTIONS_MAX;
        found = section;
        section = NULL;
    }
    pthread_mutex_unlock(&c->lock);
    free(section);
    return found;
}
