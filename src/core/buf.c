/* buf.c: the capped growable buffer and its JSON writers. */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void kp_buf_init(kp_buf *b, size_t max)
{
    memset(b, 0, sizeof *b);
    b->max = max;
}

void kp_buf_release(kp_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

void kp_buf_reset(kp_buf *b)
{
    b->len = 0;
    b->failed = false;
    if (b->data) b->data[0] = '\0';
}

char *kp_buf_steal(kp_buf *b)
{
    char *d = b->data;
    if (d == NULL) d = calloc(1, 1);
    b->data = NULL;
    b->len = b->cap = 0;
    return d;
}

static bool grow(kp_buf *b, size_t need)
{
    if (b->failed) return false;
    if (need + 1 > b->max) {
        b->failed = true;
        return false;
    }
    if (need + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need + 1) cap *= 2;
    if (cap > b->max) cap = b->max;
    char *d = realloc(b->data, cap);
    if (d == NULL) {
        b->failed = true;
        return false;
    }
    b->data = d;
    b->cap = cap;
    return true;
}

bool kp_buf_reserve(kp_buf *b, size_t n) { return grow(b, n); }

bool kp_buf_append(kp_buf *b, const void *data, size_t len)
{
    if (!grow(b, b->len + len)) return false;
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return true;
}

bool kp_buf_puts(kp_buf *b, const char *s) { return kp_buf_append(b, s, strlen(s)); }

bool kp_buf_printf(kp_buf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return false;
    if ((size_t)n < sizeof small) return kp_buf_append(b, small, (size_t)n);
    if (!grow(b, b->len + (size_t)n)) return false;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return true;
}

bool kp_buf_i64(kp_buf *b, int64_t v)
{
    char tmp[24];
    char *p = tmp + sizeof tmp;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) *--p = '-';
    return kp_buf_append(b, p, (size_t)(tmp + sizeof tmp - p));
}

bool kp_buf_json_str(kp_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    if (!kp_buf_append(b, "\"", 1)) return false;
    const char *run = s;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        kp_buf_append(b, run, (size_t)(p - run));
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t n = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            esc[1] = 'u'; esc[2] = '0'; esc[3] = '0';
            esc[4] = hex[c >> 4]; esc[5] = hex[c & 15];
            n = 6;
        }
        kp_buf_append(b, esc, n);
        run = p + 1;
    }
    kp_buf_puts(b, run);
    return kp_buf_append(b, "\"", 1);
}

bool kp_buf_json_key(kp_buf *b, const char *key)
{
    kp_buf_json_str(b, key);
    return kp_buf_append(b, ":", 1);
}

bool kp_buf_json_kv_str(kp_buf *b, const char *key, const char *value, bool comma)
{
    if (comma) kp_buf_append(b, ",", 1);
    kp_buf_json_key(b, key);
    return kp_buf_json_str(b, value);
}

bool kp_buf_json_kv_i64(kp_buf *b, const char *key, int64_t value, bool comma)
{
    if (comma) kp_buf_append(b, ",", 1);
    kp_buf_json_key(b, key);
    return kp_buf_i64(b, value);
}
