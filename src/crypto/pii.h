/*
 * pii.h: keeping personal data confidential (MISSION §8, seed 001). A
 * customer's name, phone, e-mail, birthday and custom attributes are sealed
 * with XChaCha20-Poly1305 (libsodium) before they reach the database; the key
 * lives in a file beside the database, never inside it, so a copied database
 * file reveals nothing. Lookups (phone, e-mail, words of the name, the
 * birthday's month-day) go through keyed hashes, "blind indexes": equal
 * inputs give equal hashes, and without the key a hash cannot be tested
 * against a guess.
 *
 * Also here, because they are the same kind of secret handling: staff
 * password hashing (Argon2id) and session tokens (random, stored as a hash).
 *
 * The key file is created by `kopilka init` as DB + ".key", mode 0600: 64 hex
 * digits of a 256-bit master key and a newline. Two subkeys are derived
 * from it (crypto_kdf): one seals, one makes blind indexes. Lose the file
 * and the personal data is lost; back it up apart from the database.
 *
 * Ownership: a kp_pii lives in guarded memory (sodium_malloc); free it with
 * kp_pii_free(). Nothing here logs, and no function puts a plaintext in an
 * error message.
 */
#ifndef KOPILKA_PII_H
#define KOPILKA_PII_H

#include <kopilka/kopilka.h>
#include <kopilka/people.h>

/* Bytes a sealed value has on top of its plaintext (nonce + tag). */
#define KP_PII_OVERHEAD 40
#define KP_PII_INDEX_BYTES 32

typedef struct kp_pii kp_pii;

/* The fields that are sealed. The field is bound to the ciphertext (as
 * associated data), so a sealed phone cannot be passed off as a name. */
typedef enum kp_pii_field {
    KP_PII_NAME = 1,
    KP_PII_PHONE,
    KP_PII_EMAIL,
    KP_PII_BIRTHDAY,
    KP_PII_ATTRIBUTES,
    KP_PII_NAME_WORD,   /* blind index only: one word of the name */
    KP_PII_BIRTHDAY_MD, /* blind index only: "MM-DD" of the birthday */
    KP_PII_MESSAGE,     /* a message's recipient and text, an event's secret payload (outbox) */
    KP_PII_SECRET,      /* a webhook endpoint's signing secret */
    KP_PII_LINK,        /* MAC key of unsubscribe links (kp_pii_mac) */
    KP_PII_LOGIN_CODE,  /* keyed hash of a one-time login code (kp_pii_index) */
    KP_PII_DRAW_SEED,   /* a prize draw's seed until the draw is closed (draws.c) */
    KP_PII_DRAW_ANON,   /* MAC key of a draw's anonymised participant ids (kp_pii_mac) */
} kp_pii_field;

/* Writes the key file path of a database into out: "DB.key" beside a SQLite
 * file; for a PostgreSQL location (postgresql://, postgres://) the value of
 * $KOPILKA_KEY_FILE, since the key must not live in the database it
 * protects. KP_ERR_NOT_FOUND (field "key") when that variable is unset or
 * empty, KP_ERR_INVALID when the path does not fit; e says which, with what
 * to do. */
kp_err kp_pii_key_locate(const char *db_path, char *out, size_t out_size, kp_error *e);
/* The same, as a yes or no (false for either failure). */
bool kp_pii_key_path(const char *db_path, char *out, size_t out_size);

/* Creates a new random key file at `path` with mode 0600. Fails with
 * KP_ERR_CONFLICT when the file exists: a key is never overwritten. */
kp_err kp_pii_create(const char *path, kp_error *e);

/* Loads the key file at `path` into *out. KP_ERR_NOT_FOUND when it is
 * missing; KP_ERR_INVALID when it is malformed or readable by others. */
kp_err kp_pii_load(const char *path, kp_pii **out, kp_error *e);

/* A key from 32 bytes of key material (tests). */
kp_err kp_pii_from_bytes(const uint8_t master[32], kp_pii **out);

void kp_pii_free(kp_pii *k);

/* Seals `len` bytes of `plain` for `field` into out (cap bytes, at least
 * len + KP_PII_OVERHEAD); sets *out_len. KP_ERR_LIMIT when out is too small. */
kp_err kp_pii_seal(const kp_pii *k, kp_pii_field field, const void *plain, size_t len, uint8_t *out,
                   size_t cap, size_t *out_len);

/* Opens a sealed value into out (cap bytes; the plaintext is NUL-terminated,
 * so cap must be at least len - KP_PII_OVERHEAD + 1). KP_ERR_INVALID when it
 * was changed, sealed for another field or with another key. */
kp_err kp_pii_open(const kp_pii *k, kp_pii_field field, const uint8_t *sealed, size_t len,
                   char *out, size_t cap, size_t *out_len);

/* The key that authenticates the audit log's entries (kp_audit_mac in
 * kopilka/people.h): KP_AUDIT_KEY_BYTES bytes, valid while k lives. */
const uint8_t *kp_pii_audit_key(const kp_pii *k);

/* The blind index of an already normalised value (see people_norm.c). */
void kp_pii_index(const kp_pii *k, kp_pii_field field, const char *value,
                  uint8_t out[KP_PII_INDEX_BYTES]);

/* A keyed MAC (BLAKE2b-256) of `len` bytes for a purpose (`field`, e.g.
 * KP_PII_LINK): the same input and key give the same MAC. */
void kp_pii_mac(const kp_pii *k, kp_pii_field field, const void *data, size_t len,
                uint8_t out[KP_PII_INDEX_BYTES]);
/* The blind index of a month-day, for "whose birthday is today?". */
void kp_pii_birthday_index(const kp_pii *k, int month, int day, uint8_t out[KP_PII_INDEX_BYTES]);

/* ---- staff passwords and session tokens */

/* Hashes a password with Argon2id (libsodium's interactive limits) into
 * out (crypto_pwhash_STRBYTES = 128 bytes, NUL-terminated). */
kp_err kp_password_hash(const char *password, char out[128]);
/* True when `password` matches `hash` (constant time in the password). */
bool kp_password_verify(const char *hash, const char *password);

/* A new session token "kps_" + 64 hex digits into token[69], and its hash. */
void kp_token_new(char token[69], uint8_t hash[32]);
/* The stored hash of a token (BLAKE2b-256). */
void kp_token_hash(const char *token, uint8_t hash[32]);

#endif
