/*
 * people_norm.c: the one spelling of a phone, an e-mail, a name and a date.
 * Blind indexes (pii.h) only find equal strings, so every value is
 * normalised the same way at registration, edit, import and search. Phones
 * are read by libphonenumber (phone.h) in the program's country.
 */
#include "people.h"
#include "phone.h"

#include <string.h>

/* Only what people type around the digits of a number; letters (vanity
 * numbers) and extensions ("x12") are refused before libphonenumber, which
 * would accept them. */
static bool phone_chars_ok(const char *in)
{
    const char *p = in;
    while (*p == ' ') p++;
    if (*p == '+') p++;
    for (; *p; p++) {
        char c = *p;
        if (!(c >= '0' && c <= '9') && c != ' ' && c != '-' && c != '(' && c != ')' && c != '.')
            return false;
    }
    return true;
}

bool kp_norm_phone_in(const char *in, const char *region, char out[KP_PHONE_MAX + 1],
                      const char **why)
{
    out[0] = '\0';
    if (!phone_chars_ok(in)) {
        *why = "may hold only digits, a leading +, spaces, dashes, dots and parentheses";
        return false;
    }
    return kp_phone_e164(in, region, out, KP_PHONE_MAX + 1, why);
}

bool kp_norm_phone(const char *in, char out[KP_PHONE_MAX + 1], const char **why)
{
    return kp_norm_phone_in(in, KP_PHONE_REGION_DEFAULT, out, why);
}

const char *kp_phone_region_of(const kp_program *program)
{
    return program ? program->country : KP_PHONE_REGION_DEFAULT;
}

bool kp_norm_email(const char *in, char out[KP_EMAIL_MAX + 1], const char **why)
{
    while (*in == ' ') in++;
    size_t len = strlen(in);
    while (len > 0 && in[len - 1] == ' ') len--;
    if (len == 0 || len > KP_EMAIL_MAX) {
        *why = "must be an e-mail address of 3 to 254 bytes";
        return false;
    }
    size_t at = len, ats = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c <= ' ' || c == 0x7f || c == ',' || c == ';' || c == '<' || c == '>' || c == '"') {
            *why = "must not contain spaces, control characters or , ; < > \"";
            return false;
        }
        if (c == '@') {
            ats++;
            at = i;
        }
        out[i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    out[len] = '\0';
    const char *dot = ats == 1 ? strchr(out + at + 1, '.') : NULL;
    if (ats != 1 || at == 0 || at + 1 == len || dot == NULL || dot == out + at + 1 ||
        out[len - 1] == '.') {
        *why = "must look like name@example.com";
        out[0] = '\0';
        return false;
    }
    return true;
}

/* Length of the UTF-8 sequence starting at s, 0 when it is not valid. */
static size_t utf8_len(const unsigned char *s)
{
    if (s[0] < 0x80) return 1;
    size_t n = (s[0] & 0xe0) == 0xc0   ? 2
               : (s[0] & 0xf0) == 0xe0 ? 3
               : (s[0] & 0xf8) == 0xf0 ? 4
                                       : 0;
    if (n == 0 || (n == 2 && s[0] < 0xc2)) return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    return n;
}

bool kp_norm_name(const char *in, char out[KP_NAME_MAX + 1], const char **why)
{
    size_t n = 0;
    bool space = false;
    const unsigned char *p = (const unsigned char *)in;
    while (*p == ' ' || *p == '\t') p++;
    while (*p) {
        size_t k = utf8_len(p);
        if (k == 0) {
            *why = "must be UTF-8 text";
            return false;
        }
        if (k == 1 && (*p < 0x20 || *p == 0x7f)) {
            if (*p != '\t') {
                *why = "must not contain control characters";
                return false;
            }
        }
        if (*p == ' ' || *p == '\t') {
            space = true;
            p++;
            continue;
        }
        if (n + (space ? 1 : 0) + k > KP_NAME_MAX) {
            *why = "must be at most 200 bytes";
            return false;
        }
        if (space && n > 0) out[n++] = ' ';
        space = false;
        memcpy(out + n, p, k);
        n += k;
        p += k;
    }
    out[n] = '\0';
    if (n == 0) {
        *why = "must not be empty";
        return false;
    }
    return true;
}

/* Lowercases ASCII and the Cyrillic letters of Russian and Ukrainian in
 * place (every mapping keeps the UTF-8 length). */
static void lower_utf8(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        if (*p >= 'A' && *p <= 'Z') {
            *p += 32;
        } else if (p[0] == 0xd0 && p[1] >= 0x90 && p[1] <= 0x9f) { /* А..П */
            p[1] += 0x20;
        } else if (p[0] == 0xd0 && p[1] >= 0xa0 && p[1] <= 0xaf) { /* Р..Я */
            p[0] = 0xd1;
            p[1] -= 0x20;
        } else if (p[0] == 0xd0 && p[1] >= 0x80 && p[1] <= 0x8f) { /* Ѐ..Џ: Ё Є І Ї */
            p[0] = 0xd1;
            p[1] += 0x10;
        } else if (p[0] == 0xd2 && p[1] == 0x90) { /* Ґ */
            p[1] = 0x91;
        }
        p++;
    }
}

size_t kp_name_words(const char *name, char words[KP_NAME_WORDS_MAX][KP_NAME_MAX + 1])
{
    size_t n = 0;
    const char *p = name;
    while (*p && n < KP_NAME_WORDS_MAX) {
        while (*p == ' ' || *p == ',' || *p == '.') p++;
        const char *start = p;
        while (*p && *p != ' ' && *p != ',' && *p != '.') p++;
        size_t len = (size_t)(p - start);
        if (len == 0 || len > KP_NAME_MAX) continue;
        memcpy(words[n], start, len);
        words[n][len] = '\0';
        lower_utf8(words[n]);
        bool dup = false;
        for (size_t i = 0; i < n && !dup; i++) dup = strcmp(words[i], words[n]) == 0;
        if (!dup) n++;
    }
    return n;
}

bool kp_parse_date(const char *in, int *year, int *month, int *day, const char **why)
{
    static const int mdays[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    *why = "must be a date YYYY-MM-DD";
    if (strlen(in) != 10 || in[4] != '-' || in[7] != '-') return false;
    int v[3] = {0, 0, 0};
    const int starts[3] = {0, 5, 8}, lens[3] = {4, 2, 2};
    for (int f = 0; f < 3; f++)
        for (int i = 0; i < lens[f]; i++) {
            char c = in[starts[f] + i];
            if (c < '0' || c > '9') return false;
            v[f] = v[f] * 10 + (c - '0');
        }
    bool leap = (v[0] % 4 == 0 && v[0] % 100 != 0) || v[0] % 400 == 0;
    if (v[0] < 1900 || v[1] < 1 || v[1] > 12 || v[2] < 1 ||
        v[2] > mdays[v[1]] + (v[1] == 2 && leap ? 1 : 0)) {
        *why = "must be a real day from 1900-01-01 (YYYY-MM-DD)";
        return false;
    }
    *year = v[0];
    *month = v[1];
    *day = v[2];
    return true;
}
