/*
 * buf.h: a growable byte buffer with a hard cap (curl's dynbuf idea), and
 * JSON writers on top of it. Used to build answers and stored details
 * without a DOM. Ownership: the buffer owns `data`; kp_buf_release frees it;
 * kp_buf_steal hands it to the caller (free() it).
 */
#ifndef KOPILKA_BUF_H
#define KOPILKA_BUF_H

#include <kopilka/kopilka.h>

typedef struct kp_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;  /* never grows past this */
    bool failed; /* an append failed (cap or memory): the content is cut */
} kp_buf;

void kp_buf_init(kp_buf *b, size_t max);
void kp_buf_release(kp_buf *b);
void kp_buf_reset(kp_buf *b);
char *kp_buf_steal(kp_buf *b);
/* Grows the buffer to hold at least n bytes, so later appends do not realloc. */
bool kp_buf_reserve(kp_buf *b, size_t n);
bool kp_buf_append(kp_buf *b, const void *data, size_t len);
bool kp_buf_puts(kp_buf *b, const char *s);
bool kp_buf_printf(kp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool kp_buf_i64(kp_buf *b, int64_t v);

/* JSON: a quoted, escaped string; "key": prefixes. The caller writes commas. */
bool kp_buf_json_str(kp_buf *b, const char *s);
bool kp_buf_json_key(kp_buf *b, const char *key);
bool kp_buf_json_kv_str(kp_buf *b, const char *key, const char *value, bool comma);
bool kp_buf_json_kv_i64(kp_buf *b, const char *key, int64_t value, bool comma);

#endif
