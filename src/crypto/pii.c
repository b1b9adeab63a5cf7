/*
 * pii.c: the key file, sealing and opening personal data, blind indexes,
 * staff password hashes and session tokens (pii.h). libsodium only.
 */
#include "pii.h"

#include <kopilka/store.h>

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct kp_pii {
    uint8_t seal_key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
    uint8_t index_key[crypto_generichash_KEYBYTES];
    uint8_t audit_key[KP_AUDIT_KEY_BYTES];
};

/* Context of crypto_kdf: exactly 8 bytes, fixed forever (changing it would
 * make every sealed value unreadable). */
static const char kdf_context[crypto_kdf_CONTEXTBYTES] = {'k', 'o', 'p', 'i', 'l', 'k', 'a', 'P'};
enum { SUBKEY_SEAL = 1, SUBKEY_INDEX = 2, SUBKEY_AUDIT = 3 };

_Static_assert(KP_PII_OVERHEAD == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES +
                                      crypto_aead_xchacha20poly1305_ietf_ABYTES,
               "KP_PII_OVERHEAD is nonce + tag");

static const char *field_name(kp_pii_field field)
{
    switch (field) {
    case KP_PII_NAME: return "name";
    case KP_PII_PHONE: return "phone";
    case KP_PII_EMAIL: return "email";
    case KP_PII_BIRTHDAY: return "birthday";
    case KP_PII_ATTRIBUTES: return "attributes";
    case KP_PII_NAME_WORD: return "name-word";
    case KP_PII_BIRTHDAY_MD: return "birthday-md";
    case KP_PII_MESSAGE: return "message";
    case KP_PII_SECRET: return "secret";
    case KP_PII_LINK: return "link";
    case KP_PII_LOGIN_CODE: return "login-code";
    case KP_PII_DRAW_SEED: return "draw-seed";
    case KP_PII_DRAW_ANON: return "draw-anon";
    }
    return "?";
}

kp_err kp_pii_key_locate(const char *db_path, char *out, size_t out_size, kp_error *e)
{
    int n;
    if (!kp_store_is_file(db_path)) {
        const char *env = getenv("KOPILKA_KEY_FILE");
        if (env == NULL || *env == '\0') {
            if (out_size) out[0] = '\0';
            return kp_error_set(e, KP_ERR_NOT_FOUND, "key",
                                "a PostgreSQL database keeps no key file beside it: set "
                                "KOPILKA_KEY_FILE to the path of its key file (`kopilka init` "
                                "creates it there; keep it off the database server)");
        }
        n = snprintf(out, out_size, "%s", env);
    } else {
        n = snprintf(out, out_size, "%s.key", db_path);
    }
    if (n > 0 && (size_t)n < out_size) return KP_OK;
    if (out_size) out[0] = '\0';
    return kp_error_set(e, KP_ERR_INVALID, "key", "the key file's path is over %zu bytes",
                        out_size ? out_size - 1 : 0);
}

bool kp_pii_key_path(const char *db_path, char *out, size_t out_size)
{
    kp_error e;
    return kp_pii_key_locate(db_path, out, out_size, &e) == KP_OK;
}

kp_err kp_pii_create(const char *path, kp_error *e)
{
    if (sodium_init() < 0) return kp_error_set(e, KP_ERR_INTERNAL, "key", "libsodium failed");
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return kp_error_setr(e, KP_ERR_CONFLICT, KP_REASON_KEY_CONFLICT, "key",
                                 "%s exists; a key file is never overwritten", path);
        return kp_error_set(e, KP_ERR_IO, "key", "cannot create %s: %s", path, strerror(errno));
    }
    uint8_t master[crypto_kdf_KEYBYTES];
    char hex[2 * crypto_kdf_KEYBYTES + 2];
    crypto_kdf_keygen(master);
    sodium_bin2hex(hex, sizeof hex - 1, master, sizeof master);
    size_t n = strlen(hex);
    hex[n] = '\n';
    kp_err err = KP_OK;
    if (write(fd, hex, n + 1) != (ssize_t)(n + 1) || fsync(fd) != 0)
        err = kp_error_set(e, KP_ERR_IO, "key", "cannot write %s: %s", path, strerror(errno));
    close(fd);
    sodium_memzero(master, sizeof master);
    sodium_memzero(hex, sizeof hex);
    if (err) unlink(path);
    return err;
}

kp_err kp_pii_from_bytes(const uint8_t master[32], kp_pii **out)
{
    *out = NULL;
    if (sodium_init() < 0) return KP_ERR_INTERNAL;
    kp_pii *k = sodium_malloc(sizeof *k);
    if (k == NULL) return KP_ERR_NOMEM;
    crypto_kdf_derive_from_key(k->seal_key, sizeof k->seal_key, SUBKEY_SEAL, kdf_context, master);
    crypto_kdf_derive_from_key(k->index_key, sizeof k->index_key, SUBKEY_INDEX, kdf_context,
                               master);
    crypto_kdf_derive_from_key(k->audit_key, sizeof k->audit_key, SUBKEY_AUDIT, kdf_context,
                               master);
    sodium_mprotect_readonly(k);
    *out = k;
    return KP_OK;
}

kp_err kp_pii_load(const char *path, kp_pii **out, kp_error *e)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return kp_error_set(e, KP_ERR_NOT_FOUND, "key",
                                "no key file %s (it is created by `kopilka init`)", path);
        return kp_error_set(e, KP_ERR_IO, "key", "cannot read %s: %s", path, strerror(errno));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || (sb.st_mode & 077) != 0) {
        close(fd);
        return kp_error_set(e, KP_ERR_INVALID, "key",
                            "%s must be readable by its owner only (chmod 600)", path);
    }
    char hex[2 * crypto_kdf_KEYBYTES + 8];
    ssize_t n = read(fd, hex, sizeof hex - 1);
    close(fd);
    uint8_t master[crypto_kdf_KEYBYTES];
    size_t bin_len = 0;
    kp_err err = KP_OK;
    if (n < 2 * crypto_kdf_KEYBYTES ||
        sodium_hex2bin(master, sizeof master, hex, (size_t)n, "\n", &bin_len, NULL) != 0 ||
        bin_len != sizeof master)
        err = kp_error_set(e, KP_ERR_INVALID, "key", "%s is not a Kopilka key file", path);
    if (err == KP_OK && kp_pii_from_bytes(master, out) != KP_OK)
        err = kp_error_set(e, KP_ERR_NOMEM, "key", "out of memory for the key");
    sodium_memzero(master, sizeof master);
    sodium_memzero(hex, sizeof hex);
    return err;
}

void kp_pii_free(kp_pii *k)
{
    if (k) sodium_free(k);
}

const uint8_t *kp_pii_audit_key(const kp_pii *k) { return k->audit_key; }

kp_err kp_pii_seal(const kp_pii *k, kp_pii_field field, const void *plain, size_t len, uint8_t *out,
                   size_t cap, size_t *out_len)
{
    *out_len = 0;
    if (cap < len + KP_PII_OVERHEAD) return KP_ERR_LIMIT;
    const char *ad = field_name(field);
    uint8_t *nonce = out;
    randombytes_buf(nonce, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
                                               &clen, plain, len, (const uint8_t *)ad, strlen(ad),
                                               NULL, nonce, k->seal_key);
    *out_len = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + (size_t)clen;
    return KP_OK;
}

kp_err kp_pii_open(const kp_pii *k, kp_pii_field field, const uint8_t *sealed, size_t len,
                   char *out, size_t cap, size_t *out_len)
{
    if (out_len) *out_len = 0;
    if (cap > 0) out[0] = '\0';
    if (len < KP_PII_OVERHEAD) return KP_ERR_INVALID;
    size_t plain_len = len - KP_PII_OVERHEAD;
    if (cap < plain_len + 1) return KP_ERR_LIMIT;
    const char *ad = field_name(field);
    unsigned long long mlen = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            (uint8_t *)out, &mlen, NULL, sealed + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
            len - crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, (const uint8_t *)ad, strlen(ad),
            sealed, k->seal_key) != 0)
        return KP_ERR_INVALID;
    out[mlen] = '\0';
    if (out_len) *out_len = (size_t)mlen;
    return KP_OK;
}

void kp_pii_index(const kp_pii *k, kp_pii_field field, const char *value,
                  uint8_t out[KP_PII_INDEX_BYTES])
{
    crypto_generichash_state h;
    const char *name = field_name(field);
    crypto_generichash_init(&h, k->index_key, sizeof k->index_key, KP_PII_INDEX_BYTES);
    crypto_generichash_update(&h, (const uint8_t *)name, strlen(name) + 1);
    crypto_generichash_update(&h, (const uint8_t *)value, strlen(value));
    crypto_generichash_final(&h, out, KP_PII_INDEX_BYTES);
}

void kp_pii_mac(const kp_pii *k, kp_pii_field field, const void *data, size_t len,
                uint8_t out[KP_PII_INDEX_BYTES])
{
    crypto_generichash_state h;
    const char *name = field_name(field);
    crypto_generichash_init(&h, k->index_key, sizeof k->index_key, KP_PII_INDEX_BYTES);
    crypto_generichash_update(&h, (const uint8_t *)name, strlen(name) + 1);
    crypto_generichash_update(&h, (const uint8_t *)data, len);
    crypto_generichash_final(&h, out, KP_PII_INDEX_BYTES);
}

void kp_pii_birthday_index(const kp_pii *k, int month, int day, uint8_t out[KP_PII_INDEX_BYTES])
{
    char md[8];
    snprintf(md, sizeof md, "%02d-%02d", month, day);
    kp_pii_index(k, KP_PII_BIRTHDAY_MD, md, out);
}

/* ---- staff passwords and session tokens */

kp_err kp_password_hash(const char *password, char out[128])
{
    _Static_assert(crypto_pwhash_STRBYTES == 128, "pwhash string size");
    if (sodium_init() < 0) return KP_ERR_INTERNAL;
    if (crypto_pwhash_str_alg(out, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE,
                              crypto_pwhash_ALG_ARGON2ID13) != 0)
        return KP_ERR_NOMEM;
    return KP_OK;
}

bool kp_password_verify(const char *hash, const char *password)
{
    if (sodium_init() < 0) return false;
    return crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
}

void kp_token_hash(const char *token, uint8_t hash[32])
{
    crypto_generichash(hash, 32, (const uint8_t *)token, strlen(token), NULL, 0);
}

void kp_token_new(char token[69], uint8_t hash[32])
{
    uint8_t raw[32];
    randombytes_buf(raw, sizeof raw);
    memcpy(token, "kps_", 4);
    sodium_bin2hex(token + 4, 65, raw, sizeof raw);
    sodium_memzero(raw, sizeof raw);
    kp_token_hash(token, hash);
}
