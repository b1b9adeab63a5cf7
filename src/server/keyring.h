/*
 * keyring.h: the server's terminal keys (keyring.c): which store a till's
 * key belongs to, answered from memory on the hot path; a revoked or
 * rotated key refused within about a millisecond even when another process
 * (the CLI) revoked it; and each key's "last used" time, kept in memory and
 * written to the terminals table every KP_KEYRING_FLUSH_SECONDS and at a
 * clean stop, so a purchase costs no extra write.
 */
#ifndef KOPILKA_KEYRING_H
#define KOPILKA_KEYRING_H

#include "server.h"

/* How often "last used" reaches the database: `kopilka terminal list` on a
 * running server is at most this many seconds behind (exact after a clean
 * stop). */
#define KP_KEYRING_FLUSH_SECONDS 10
/* How often a server asks the database whether any key was revoked or
 * rotated since it last looked (kp_store_ops.terminal_generation). */
#define KP_KEYRING_POLL_NS 1000000

typedef struct kp_keyring kp_keyring;

/* Starts the keyring of srv (its readers and writer must be running) and
 * its flush thread. */
kp_err kp_keyring_start(kp_server *srv, kp_keyring **out, kp_error *e);
/* Writes the pending "last used" times through the writer (still running),
 * stops the thread and frees k. NULL is fine. */
void kp_keyring_stop(kp_keyring *k);

/* The terminal (id, store) of `key` if it exists and is not revoked; records
 * its use at `now`. False for anything else. Thread-safe. */
bool kp_keyring_check(kp_keyring *k, const char *key, kp_time now, kp_terminal *out);

/* Forgets every cached key: called after this server revoked or rotated
 * one, so its own answers change at once. */
void kp_keyring_forget(kp_keyring *k);

#endif
