/*
 * group_writer.h: the server writer's side of the storage seam in unit
 * tests (kp_group_ops, store.h): a connection made a group writer with the
 * service's redo (recovering what an earlier "crash" left), groups whose
 * records are made durable without publishing their work, and the "crash"
 * itself: closing the group writer without publishing, which drops the
 * open transaction while the log keeps its records. Header-only, static
 * functions; a test calls them through cmocka's asserts.
 */
#ifndef KOPILKA_TEST_GROUP_WRITER_H
#define KOPILKA_TEST_GROUP_WRITER_H

#include <kopilka/store.h>

#include "service/service.h"

typedef struct group_writer {
    kp_store *st;
    const kp_group_ops *g;
    kp_durable_replay *replay;
    size_t recovered; /* what open() replayed */
} group_writer;

/* Makes st a group writer of the database at path, as the server's writer
 * does at start. */
static inline void group_writer_open(group_writer *w, kp_store *st, const char *path)
{
    kp_error e = {0};
    w->st = st;
    w->g = st->ops->group;
    assert_non_null(w->g);
    w->replay = kp_durable_replay_new();
    assert_non_null(w->replay);
    w->recovered = 99;
    assert_int_equal(w->g->open(st, path, kp_durable_redo, w->replay, &w->recovered, &e), KP_OK);
}

static inline void group_writer_begin(group_writer *w)
{
    assert_int_equal(w->g->begin(w->st), KP_OK);
}

/* Hands the group's log one record (a buffer kp_durable_purchase/return
 * or a test wrote). */
static inline void group_writer_log(group_writer *w, const kp_buf *record)
{
    assert_int_equal(w->g->log(w->st, record->data, record->len), KP_OK);
}

/* Ends the group without publishing it (the server's usual group) and
 * makes it durable; asserts that the backend did not publish it. */
static inline void group_writer_end_durable(group_writer *w)
{
    uint64_t ticket = 0;
    bool published = true;
    kp_error e = {0};
    assert_int_equal(w->g->end(w->st, false, &ticket, &published), KP_OK);
    assert_false(published);
    assert_int_equal(w->g->sync(w->st, ticket, &e), KP_OK);
}

/* Ends the open group with publish: every group's work is in the database. */
static inline void group_writer_publish(group_writer *w)
{
    uint64_t ticket = 0;
    bool published = false;
    kp_error e = {0};
    assert_int_equal(w->g->end(w->st, true, &ticket, &published), KP_OK);
    assert_true(published);
    assert_int_equal(w->g->sync(w->st, ticket, &e), KP_OK);
}

/* Stops being a group writer; unpublished work is dropped from the
 * database as a crash drops it. */
static inline void group_writer_close(group_writer *w)
{
    w->g->close(w->st);
    kp_durable_replay_free(w->replay);
    w->replay = NULL;
}

#endif
