/*
 * import.c: moving a company's existing cards, customers and balances in
 * from CSV (docs/import.md), and the back office's CSV exports.
 *
 * An import reads each file twice. The first pass checks every row (its
 * fields, duplicates within the files, references between them, and what
 * the database already holds) and reports each bad row with its line
 * number; nothing is written if any row is bad. The second pass writes, in
 * the caller's one transaction (kp_import) or in chunks of a few
 * milliseconds (kp_import_chunks, the CLI, so a running server's tills are
 * not held), each row whole in one chunk. A row that is already in the
 * database, the same, is skipped, so running an import again changes
 * nothing (and completes one that was cut short). A known customer (by
 * external_id, or by the export's id) whose personal data differs is
 * updated, with an audit entry; any other key with different data (a card
 * in another state, another figure for an opening balance, a customer row
 * naming a card that is not theirs) is a bad row. The customers export
 * writes the columns the import reads, so it imports back. Opening balances
 * are ledger operations from the account KP_SYS_OPENING, so `verify` holds
 * after.
 */
#include "people_int.h"

#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kopilka/card_number.h>
#include <kopilka/clock.h>
#include <kopilka/sales.h>

#include "chunks.h"

enum { CSV_LINE_MAX = 65536, CSV_FIELDS_MAX = 64, PHONE_CACHE_MAX = 1 << 21 };

/* ---------------------------------------------------------------- CSV */

typedef struct csv {
    FILE *f;
    const char *name; /* the file's base name, for reports */
    int64_t line;     /* of the record just read */
    char buf[CSV_LINE_MAX];
    size_t n;
    char *field[CSV_FIELDS_MAX];
    /* columns */
    size_t n_cols;
    char cols[CSV_FIELDS_MAX][KP_ATTR_NAME_MAX + 8];
} csv;

/* Reads one record into c->field (quotes removed, "" unescaped). Returns
 * 1 on a record, 0 at the end, -1 on a malformed or too long record. */
static int csv_read(csv *c)
{
    size_t len = 0, nf = 0;
    bool in_quotes = false, at_start = true;
    int ch;
    c->n = 0;
    c->line++;
    int64_t extra_lines = 0;
    c->field[nf++] = c->buf;
    while ((ch = fgetc(c->f)) != EOF) {
        if (len + 2 >= sizeof c->buf) return -1;
        if (in_quotes) {
            if (ch == '"') {
                int next = fgetc(c->f);
                if (next == '"') {
                    c->buf[len++] = '"';
                } else {
                    in_quotes = false;
                    if (next != EOF) ungetc(next, c->f);
                }
            } else {
                if (ch == '\n') extra_lines++;
                c->buf[len++] = (char)ch;
            }
            continue;
        }
        if (ch == '"' && at_start) {
            in_quotes = true;
            at_start = false;
            continue;
        }
        if (ch == ',') {
            c->buf[len++] = '\0';
            if (nf == CSV_FIELDS_MAX) return -1;
            c->field[nf++] = c->buf + len;
            at_start = true;
            continue;
        }
        if (ch == '\r') continue;
        if (ch == '\n') break;
        c->buf[len++] = (char)ch;
        at_start = false;
    }
    if (in_quotes) return -1;
    c->buf[len] = '\0';
    c->n = nf;
    if (ch == EOF && len == 0 && nf == 1) return 0;
    /* A record spanning lines (a quoted newline) is reported at its first. */
    (void)extra_lines;
    return 1;
}

static int csv_col(const csv *c, const char *name)
{
    for (size_t i = 0; i < c->n_cols; i++)
        if (strcmp(c->cols[i], name) == 0) return (int)i;
    return -1;
}

static const char *csv_get(const csv *c, int col)
{
    if (col < 0 || (size_t)col >= c->n) return "";
    return c->field[col];
}

/* ---------------------------------------------------------------- a set */

/* An open-addressing set of strings (duplicates within the files). */
typedef struct strset {
    size_t cap, n;
    char **slot;
} strset;

static void strset_free(strset *s)
{
    for (size_t i = 0; i < s->cap; i++) free(s->slot[i]);
    free(s->slot);
    memset(s, 0, sizeof *s);
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    return h;
}

/* Adds s; false when it was there already (or out of memory: *nomem). */
static bool strset_add(strset *s, const char *str, bool *nomem)
{
    if ((s->n + 1) * 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        char **slot = calloc(cap, sizeof *slot);
        if (slot == NULL) {
            *nomem = true;
            return true;
        }
        for (size_t i = 0; i < s->cap; i++)
            if (s->slot[i]) {
                size_t j = hash_str(s->slot[i]) & (cap - 1);
                while (slot[j]) j = (j + 1) & (cap - 1);
                slot[j] = s->slot[i];
            }
        free(s->slot);
        s->slot = slot;
        s->cap = cap;
    }
    size_t j = hash_str(str) & (s->cap - 1);
    while (s->slot[j]) {
        if (strcmp(s->slot[j], str) == 0) return false;
        j = (j + 1) & (s->cap - 1);
    }
    s->slot[j] = strdup(str);
    if (s->slot[j] == NULL)
        *nomem = true;
    else
        s->n++;
    return true;
}

static bool strset_has(const strset *s, const char *str)
{
    if (s->cap == 0) return false;
    size_t j = hash_str(str) & (s->cap - 1);
    while (s->slot[j]) {
        if (strcmp(s->slot[j], str) == 0) return true;
        j = (j + 1) & (s->cap - 1);
    }
    return false;
}

/* ---------------------------------------------------------------- state */

typedef struct importer {
    kp_office *o;
    kp_import_report_fn report;
    void *ctx;
    kp_import_stats *stats;
    bool dry_run; /* the write pass only counts what it would do */
    bool nomem;
    strset card_numbers; /* cards.csv numbers */
    strset linked_cards; /* cards named by customers.csv */
    strset external_ids, phones, emails, balance_keys;
    kp_customer_row row;
    char why[320]; /* customer_find's answer */
    /* The E.164 form of each customers.csv record's phone, by record number,
     * from the check pass: the write pass reads it here instead of asking
     * libphonenumber again (tens of microseconds a number). At most
     * PHONE_CACHE_MAX records; past them the write pass normalises again. */
    char (*phone_cache)[KP_PHONE_MAX + 1];
    size_t phone_cache_n;
} importer;

static void bad(importer *im, const csv *c, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void bad(importer *im, const csv *c, const char *field, const char *fmt, ...)
{
    im->stats->bad_rows++;
    if (im->stats->bad_rows > KP_IMPORT_REPORT_MAX) return;
    char msg[320], line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (field && field[0])
        snprintf(line, sizeof line, "%s:%lld: %s: %s", c->name, (long long)c->line, field, msg);
    else
        snprintf(line, sizeof line, "%s:%lld: %s", c->name, (long long)c->line, msg);
    kp_import_problem problem = {.file = c->name,
                                 .line = c->line,
                                 .field = field ? field : "",
                                 .message = msg,
                                 .text = line};
    im->report(im->ctx, &problem);
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Opens a file (from disk, or its bytes in memory) and reads its header;
 * `allowed` lists the known columns (attrs: columns "attr.NAME" too),
 * `required` those that must be. */
static kp_err csv_open(importer *im, csv *c, const kp_import_file *file,
                       const char *const *allowed, const char *const *required, bool attrs,
                       kp_error *e)
{
    memset(c, 0, sizeof *c);
    c->name = base_name(file->path);
    if (file->data && file->len == 0) {
        c->line = 1;
        bad(im, c, "", "the file is empty: line 1 must be the header row");
        return kp_error_set(e, KP_ERR_INVALID, "file", "%s is empty", c->name);
    }
    /* fmemopen reads the caller's bytes in place (mode "r" never writes). */
    c->f = file->data ? fmemopen((void *)file->data, file->len, "r") : fopen(file->path, "rb");
    if (c->f == NULL)
        return kp_error_set(e, KP_ERR_NOT_FOUND, "file", "cannot read %s: %s", file->path,
                            strerror(errno));
    int rc = csv_read(c);
    if (rc != 1) {
        c->line = 1;
        bad(im, c, "", "line 1 must be the header row naming the columns (see docs/import.md)");
        return kp_error_set(e, KP_ERR_INVALID, "file", "%s: line 1 must be the header row",
                            c->name);
    }
    /* A UTF-8 byte order mark before the first column is ignored. */
    if ((unsigned char)c->field[0][0] == 0xef && (unsigned char)c->field[0][1] == 0xbb &&
        (unsigned char)c->field[0][2] == 0xbf)
        c->field[0] += 3;
    kp_err err = KP_OK;
    for (size_t i = 0; i < c->n; i++) {
        const char *name = c->field[i];
        bool ok = false;
        for (size_t k = 0; allowed[k] && !ok; k++) ok = strcmp(name, allowed[k]) == 0;
        if (!ok && attrs && strncmp(name, "attr.", 5) == 0) {
            for (size_t k = 0; k < im->o->policy->n_attributes && !ok; k++)
                ok = strcmp(name + 5, im->o->policy->attributes[k].name) == 0;
            if (!ok) {
                bad(im, c, name, "the program declares no such attribute");
                err = KP_ERR_INVALID;
                continue;
            }
        }
        if (!ok) {
            bad(im, c, name, "unknown column (see docs/import.md)");
            err = KP_ERR_INVALID;
            continue;
        }
        if (csv_col(c, name) >= 0) {
            bad(im, c, name, "the column is given twice");
            err = KP_ERR_INVALID;
            continue;
        }
        snprintf(c->cols[c->n_cols++], sizeof c->cols[0], "%s", name);
    }
    for (size_t k = 0; required[k]; k++)
        if (csv_col(c, required[k]) < 0) {
            bad(im, c, required[k], "the column is required");
            err = KP_ERR_INVALID;
        }
    if (err) return kp_error_set(e, KP_ERR_INVALID, "file", "%s: bad header row", c->name);
    return KP_OK;
}

static void csv_close(csv *c)
{
    if (c->f) fclose(c->f);
    c->f = NULL;
}

static bool rewind_csv(csv *c)
{
    if (fseek(c->f, 0, SEEK_SET) != 0) return false;
    c->line = 0;
    return csv_read(c) == 1; /* the header again */
}

static bool number_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 32) return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
              ch == '-'))
            return false;
    }
    return true;
}

static bool blank_row(const csv *c)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->field[i][0]) return false;
    return true;
}

/* ---------------------------------------------------------------- cards */

static const char *const card_cols[] = {"number", "state", "batch", "block_reason", NULL};
static const char *const card_required[] = {"number", NULL};

static bool parse_state(const char *s, kp_card_state *out)
{
    if (s[0] == '\0' || strcmp(s, "issued") == 0)
        *out = KP_CARD_ISSUED;
    else if (strcmp(s, "active") == 0)
        *out = KP_CARD_ACTIVE;
    else if (strcmp(s, "blocked") == 0)
        *out = KP_CARD_BLOCKED;
    else
        return false;
    return true;
}

/* Checks one row of cards.csv; *exists: the card is in the database, the same. */
static bool card_row_check(importer *im, csv *c, bool *exists)
{
    *exists = false;
    const char *number = csv_get(c, csv_col(c, "number"));
    const char *state_text = csv_get(c, csv_col(c, "state"));
    const char *batch = csv_get(c, csv_col(c, "batch"));
    kp_card_state state = KP_CARD_ISSUED;
    bool ok = true;
    if (!number_ok(number)) {
        bad(im, c, "number", "must be 1 to 32 letters, digits or dashes");
        return false;
    }
    kp_error check;
    if (kp_card_number_check(number, "number", &check)) {
        /* A number of this form is refused at the till when its check digit
         * is wrong; imported, it could never be used. */
        bad(im, c, "number",
            "%s; a number of %d digits is read as a Kopilka card number, which ends in its "
            "Luhn check digit: give old numbers of this form a prefix (OLD-...)",
            check.message, KP_CARD_DIGITS);
        return false;
    }
    if (!parse_state(state_text, &state)) {
        bad(im, c, "state", "must be issued, active or blocked");
        ok = false;
    }
    if (strlen(batch) >= KP_STR_MAX ||
        strlen(csv_get(c, csv_col(c, "block_reason"))) >= KP_REASON_MAX) {
        bad(im, c, "batch", "is too long");
        ok = false;
    }
    if (!strset_add(&im->card_numbers, number, &im->nomem)) {
        bad(im, c, "number", "card %s is listed twice", number);
        return false;
    }
    kp_card_info info;
    kp_err err = im->o->st->ops->people->card_info_get(im->o->st, number, &info);
    if (err == KP_OK) {
        if (ok && info.state != state &&
            !(state == KP_CARD_ISSUED && info.state == KP_CARD_ACTIVE)) {
            bad(im, c, "state", "card %s exists already as %s", number,
                kp_card_state_name(info.state));
            ok = false;
        }
        *exists = true;
    } else if (err != KP_ERR_NOT_FOUND) {
        bad(im, c, "", "storage failed: %s", im->o->st->last_error);
        ok = false;
    }
    return ok;
}

static kp_err card_row_write(importer *im, csv *c, int64_t *batch_id, char *batch_name, kp_error *e)
{
    kp_office *o = im->o;
    const char *number = csv_get(c, csv_col(c, "number"));
    const char *batch = csv_get(c, csv_col(c, "batch"));
    kp_card_state state = KP_CARD_ISSUED; /* rows were validated before import */
    parse_state(csv_get(c, csv_col(c, "state")), &state);
    kp_card_info info;
    kp_err err = o->st->ops->people->card_info_get(o->st, number, &info);
    if (err == KP_OK) {
        im->stats->cards_unchanged++;
        return KP_OK;
    }
    if (err != KP_ERR_NOT_FOUND) return people_storage(o->st, err, e);
    if (im->dry_run) {
        im->stats->cards_created++;
        return KP_OK;
    }
    if (batch[0] && strcmp(batch, batch_name) != 0) {
        kp_card_batch b;
        memset(&b, 0, sizeof b);
        err = o->st->ops->people->batch_get(o->st, 0, batch, &b);
        if (err == KP_ERR_NOT_FOUND) {
            snprintf(b.name, sizeof b.name, "%s", batch);
            b.created_at = o->now;
            snprintf(b.actor, sizeof b.actor, "%s", o->actor.name);
            err = o->st->ops->people->batch_insert(o->st, &b);
        }
        if (err) return people_storage(o->st, err, e);
        *batch_id = b.id;
        snprintf(batch_name, KP_STR_MAX, "%s", batch);
    }
    int64_t account_id = 0;
    if ((err = o->st->ops->card_create(o->st, number, KP_CARD_ISSUED, o->now, &account_id)))
        return people_storage(o->st, err, e);
    memset(&info, 0, sizeof info);
    snprintf(info.number, sizeof info.number, "%s", number);
    info.account_id = account_id;
    info.state = state;
    info.registered = state == KP_CARD_ACTIVE;
    info.batch_id = batch[0] ? *batch_id : 0;
    info.may_burn = true;
    snprintf(info.reason, sizeof info.reason, "%s", csv_get(c, csv_col(c, "block_reason")));
    if ((err = o->st->ops->people->card_info_put(o->st, &info, o->now)))
        return people_storage(o->st, err, e);
    if ((err = kp_card_event_record(o, number, KP_CARD_ISSUED, state, "imported", "", e)))
        return err;
    im->stats->cards_created++;
    return KP_OK;
}

/* ------------------------------------------------------------- customers */

/* The columns of `kopilka export --customers` are all accepted, so an
 * export imports back: id, state, account_id and balance are the export's
 * own (id finds the customer, state "erased" marks a row to skip; account_id
 * and balance are only read by people). */
static const char *const customer_cols[] = {
    "external_id", "cards",   "full_name",  "phone",           "email",
    "birthday",    "receipt", "consent_at", "consent_version", "registered_at",
    "id",          "state",   "account_id", "balance",         NULL};
static const char *const customer_required[] = {"cards", "full_name", "consent_version", NULL};

typedef struct customer_fields {
    int64_t id;  /* the "id" column: Kopilka's customer id, 0 = none */
    bool erased; /* the "state" column says erased: the row holds no data */
    char name[KP_NAME_MAX + 1];
    char phone[KP_PHONE_MAX + 1];
    char email[KP_EMAIL_MAX + 1];
    char birthday[11];
    int month, day;
    kp_time consent_at, registered_at;
    char attrs[KP_ATTRS_JSON_MAX + 1];
    size_t n_cards;
    char cards[8][KP_STR_MAX];
} customer_fields;

/* Remembers record `line`'s normalised phone for the write pass (a cache
 * that cannot grow is no error: the write pass then normalises again). */
static void phone_cache_put(importer *im, int64_t line, const char *phone)
{
    if (line < 0 || line >= PHONE_CACHE_MAX) return;
    size_t i = (size_t)line;
    if (i >= im->phone_cache_n) {
        size_t n = im->phone_cache_n ? im->phone_cache_n : 4096;
        while (n <= i) n *= 2;
        void *grown = realloc(im->phone_cache, n * sizeof *im->phone_cache);
        if (grown == NULL) return;
        im->phone_cache = grown;
        memset(im->phone_cache + im->phone_cache_n, 0,
               (n - im->phone_cache_n) * sizeof *im->phone_cache);
        im->phone_cache_n = n;
    }
    snprintf(im->phone_cache[i], sizeof im->phone_cache[i], "%s", phone);
}

static const char *phone_cache_get(const importer *im, int64_t line)
{
    if (line < 0 || (size_t)line >= im->phone_cache_n) return NULL;
    return im->phone_cache[line][0] ? im->phone_cache[line] : NULL;
}

/* Reads and checks the fields of a customers.csv row (no database). The
 * write pass (writing) takes the phone the check pass normalised. */
static bool customer_fields_read(importer *im, csv *c, customer_fields *f, bool writing)
{
    memset(f, 0, sizeof *f);
    bool ok = true;
    const char *why;
    const char *id = csv_get(c, csv_col(c, "id"));
    if (id[0]) {
        char *end;
        errno = 0;
        long long v = strtoll(id, &end, 10);
        if (*end != '\0' || errno || v <= 0) {
            bad(im, c, "id", "must be a customer id (a whole number from 1), or empty");
            ok = false;
        }
        f->id = v > 0 ? v : 0;
    }
    const char *state = csv_get(c, csv_col(c, "state"));
    if (strcmp(state, "erased") == 0) {
        f->erased = true;
        if (f->id == 0) {
            bad(im, c, "id", "a row of an erased customer needs its id");
            ok = false;
        }
        return ok;
    }
    if (state[0] && strcmp(state, "active") != 0) {
        bad(im, c, "state", "must be active, erased (as the export writes it) or empty");
        ok = false;
    }
    const char *ext = csv_get(c, csv_col(c, "external_id"));
    if (strlen(ext) >= KP_STR_MAX) {
        bad(im, c, "external_id", "is longer than %d bytes", KP_STR_MAX - 1);
        ok = false;
    } else if (ext[0] == '\0' && f->id == 0) {
        bad(im, c, "external_id",
            "is required (the customer's id in the old system), or id (Kopilka's customer id, "
            "as the export writes it)");
        ok = false;
    }
    if (!kp_norm_name(csv_get(c, csv_col(c, "full_name")), f->name, &why)) {
        bad(im, c, "full_name", "%s", why);
        ok = false;
    }
    const char *phone = csv_get(c, csv_col(c, "phone"));
    const char *cached = writing && phone[0] ? phone_cache_get(im, c->line) : NULL;
    if (cached) {
        snprintf(f->phone, sizeof f->phone, "%s", cached);
    } else if (phone[0] &&
               !kp_norm_phone_in(phone, kp_phone_region_of(im->o->program), f->phone, &why)) {
        bad(im, c, "phone", "%s", why);
        ok = false;
    } else if (phone[0] && !writing) {
        phone_cache_put(im, c->line, f->phone);
    }
    const char *email = csv_get(c, csv_col(c, "email"));
    if (email[0] && !kp_norm_email(email, f->email, &why)) {
        bad(im, c, "email", "%s", why);
        ok = false;
    }
    const char *birthday = csv_get(c, csv_col(c, "birthday"));
    int y;
    if (birthday[0]) {
        if (!kp_parse_date(birthday, &y, &f->month, &f->day, &why)) {
            bad(im, c, "birthday", "%s", why);
            ok = false;
        } else {
            snprintf(f->birthday, sizeof f->birthday, "%s", birthday);
        }
    }
    const char *cv = csv_get(c, csv_col(c, "consent_version"));
    if (cv[0] == '\0' || strlen(cv) >= 64) {
        bad(im, c, "consent_version",
            "is required: the version of the consent text the customer accepted");
        ok = false;
    }
    const char *ca = csv_get(c, csv_col(c, "consent_at"));
    f->consent_at = im->o->now;
    if (ca[0] && !kp_time_parse(ca, &f->consent_at)) {
        bad(im, c, "consent_at", "must be an RFC 3339 time");
        ok = false;
    }
    const char *ra = csv_get(c, csv_col(c, "registered_at"));
    f->registered_at = im->o->now;
    if (ra[0] && !kp_time_parse(ra, &f->registered_at)) {
        bad(im, c, "registered_at", "must be an RFC 3339 time");
        ok = false;
    }
    if (strlen(csv_get(c, csv_col(c, "receipt"))) >= KP_STR_MAX) {
        bad(im, c, "receipt", "is too long");
        ok = false;
    }
    /* cards: one or more numbers separated by ';' */
    const char *p = csv_get(c, csv_col(c, "cards"));
    while (*p) {
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > 0) {
            if (f->n_cards == 8 || len >= KP_STR_MAX) {
                bad(im, c, "cards", "at most 8 card numbers separated by ';'");
                ok = false;
                break;
            }
            memcpy(f->cards[f->n_cards], p, len);
            f->cards[f->n_cards][len] = '\0';
            kp_error check;
            if (kp_card_number_check(f->cards[f->n_cards], "cards", &check)) {
                bad(im, c, "cards", "%s", check.message);
                ok = false;
            }
            f->n_cards++;
        }
        p = end ? end + 1 : p + len;
    }
    if (f->n_cards == 0) {
        bad(im, c, "cards", "is required: the customer's card numbers separated by ';'");
        ok = false;
    }
    /* attributes, typed as the program declares */
    json_t *attrs = json_object();
    const kp_people_policy *pol = im->o->policy;
    for (size_t i = 0; i < pol->n_attributes; i++) {
        char col[KP_ATTR_NAME_MAX + 8];
        snprintf(col, sizeof col, "attr.%s", pol->attributes[i].name);
        const char *v = csv_get(c, csv_col(c, col));
        const kp_attr_decl *d = &pol->attributes[i];
        if (v[0] == '\0') {
            if (d->required) {
                bad(im, c, col, "is required by the program");
                ok = false;
            }
            continue;
        }
        json_t *jv = NULL;
        char *end;
        int m, dd;
        switch (d->type) {
        case KP_ATTR_STRING:
            if ((int64_t)strlen(v) >= d->min && (int64_t)strlen(v) <= d->max) jv = json_string(v);
            break;
        case KP_ATTR_INTEGER: {
            errno = 0;
            long long x = strtoll(v, &end, 10);
            if (errno == 0 && *end == '\0' && x >= d->min && x <= d->max) jv = json_integer(x);
            break;
        }
        case KP_ATTR_DATE:
            if (kp_parse_date(v, &y, &m, &dd, &why)) jv = json_string(v);
            break;
        case KP_ATTR_BOOLEAN:
            if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0 || strcmp(v, "yes") == 0)
                jv = json_true();
            else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0 || strcmp(v, "no") == 0)
                jv = json_false();
            break;
        }
        if (jv == NULL) {
            bad(im, c, col, "must be %s",
                d->type == KP_ATTR_INTEGER  ? "an integer within the attribute's bounds"
                : d->type == KP_ATTR_STRING ? "text within the attribute's length bounds"
                : d->type == KP_ATTR_DATE   ? "a date YYYY-MM-DD"
                                            : "true or false");
            ok = false;
            continue;
        }
        json_object_set_new(attrs, d->name, jv);
    }
    char *text = json_object_size(attrs)
                     ? json_dumps(attrs, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII)
                     : NULL;
    if (text && strlen(text) <= KP_ATTRS_JSON_MAX)
        snprintf(f->attrs, sizeof f->attrs, "%s", text);
    else if (text) {
        bad(im, c, "attributes", "are longer than %d bytes as JSON", KP_ATTRS_JSON_MAX);
        ok = false;
    }
    free(text);
    json_decref(attrs);
    return ok;
}

/* The customer a row is about: by external_id (the old system's id) and by
 * id (Kopilka's, as the export writes it); both given, they must name the
 * same one. *existing = 0 when the row is a new customer; *erased when the
 * one found was erased. Returns NULL, or why the row names nobody or two
 * customers (in im->why). Uses im->row. */
static const char *customer_find(importer *im, const char *ext, int64_t id, int64_t *existing,
                                 bool *erased)
{
    const kp_people_ops *pp = im->o->st->ops->people;
    *existing = 0;
    *erased = false;
    int64_t by_ext = 0;
    kp_err err = ext[0] ? pp->customer_by_external(im->o->st, ext, &by_ext) : KP_ERR_NOT_FOUND;
    if (err == KP_ERR_NOT_FOUND)
        by_ext = 0;
    else if (err) {
        snprintf(im->why, sizeof im->why, "storage failed: %s", im->o->st->last_error);
        return im->why;
    }
    if (id == 0) {
        *existing = by_ext;
        return NULL;
    }
    err = pp->customer_get(im->o->st, id, &im->row);
    if (err == KP_ERR_NOT_FOUND) {
        snprintf(im->why, sizeof im->why,
                 "there is no customer %lld in this database (leave id empty to create one)",
                 (long long)id);
        return im->why;
    }
    if (err) {
        snprintf(im->why, sizeof im->why, "storage failed: %s", im->o->st->last_error);
        return im->why;
    }
    if (ext[0] && by_ext != id) {
        snprintf(im->why, sizeof im->why,
                 "customer %lld does not have external_id %.80s%s (id and external_id must "
                 "name the same customer)",
                 (long long)id, ext, by_ext ? "; another customer has it" : "");
        return im->why;
    }
    *existing = id;
    *erased = im->row.state == KP_CUSTOMER_ERASED;
    return NULL;
}

static bool customer_row_check(importer *im, csv *c, customer_fields *f)
{
    /* The database checks run even when a field is bad, so one pass
     * reports everything wrong with the row. */
    bool ok = customer_fields_read(im, c, f, false);
    kp_office *o = im->o;
    const kp_people_ops *pp = o->st->ops->people;
    const char *ext = csv_get(c, csv_col(c, "external_id"));
    char key[KP_STR_MAX + 24];
    if (ext[0])
        snprintf(key, sizeof key, "%.*s", KP_STR_MAX - 1, ext);
    else
        snprintf(key, sizeof key, "#id:%lld", (long long)f->id);
    if ((ext[0] || f->id) && !strset_add(&im->external_ids, key, &im->nomem)) {
        bad(im, c, ext[0] ? "external_id" : "id", "%s is listed twice", ext[0] ? ext : key + 4);
        return false;
    }
    int64_t existing = 0, other = 0;
    bool existing_erased = false;
    const char *found_why = customer_find(im, ext, f->id, &existing, &existing_erased);
    if (found_why) {
        bad(im, c, f->id ? "id" : "external_id", "%s", found_why);
        return false;
    }
    if (f->erased) {
        if (!existing_erased) {
            bad(im, c, "state",
                "the row is of an erased customer, but customer %lld here is not erased "
                "(rows of erased customers are never imported: delete the row)",
                (long long)f->id);
            return false;
        }
        return ok;
    }
    if (existing_erased) {
        bad(im, c, "state", "customer %lld was erased; their personal data is not imported again",
            (long long)existing);
        return false;
    }
    kp_err err;
    uint8_t ix[32];
    if (f->phone[0]) {
        if (!strset_add(&im->phones, f->phone, &im->nomem)) {
            bad(im, c, "phone", "the same phone number is on another row");
            ok = false;
        }
        kp_pii_index(o->pii, KP_PII_PHONE, f->phone, ix);
        if (pp->customer_by_index(o->st, KP_CONTACT_PHONE, ix, &other) == KP_OK &&
            other != existing) {
            bad(im, c, "phone", "is already registered to customer %lld", (long long)other);
            ok = false;
        }
    }
    if (f->email[0]) {
        if (!strset_add(&im->emails, f->email, &im->nomem)) {
            bad(im, c, "email", "the same e-mail address is on another row");
            ok = false;
        }
        kp_pii_index(o->pii, KP_PII_EMAIL, f->email, ix);
        if (pp->customer_by_index(o->st, KP_CONTACT_EMAIL, ix, &other) == KP_OK &&
            other != existing) {
            bad(im, c, "email", "is already registered to customer %lld", (long long)other);
            ok = false;
        }
    }
    for (size_t i = 0; i < f->n_cards; i++) {
        const char *number = f->cards[i];
        if (!strset_add(&im->linked_cards, number, &im->nomem)) {
            bad(im, c, "cards", "card %s belongs to another row too", number);
            ok = false;
            continue;
        }
        kp_card_info info;
        err = pp->card_info_get(o->st, number, &info);
        if (err == KP_ERR_NOT_FOUND) {
            if (!strset_has(&im->card_numbers, number)) {
                bad(im, c, "cards", "card %s is neither in the database nor in cards.csv", number);
                ok = false;
            } else if (existing) {
                bad(im, c, "cards",
                    "card %s is new, but customer %lld is known: a re-import changes personal "
                    "data, never which cards a customer holds (add a card with POST "
                    "/v1/admin/customers/%lld/cards)",
                    number, (long long)existing, (long long)existing);
                ok = false;
            }
        } else if (err == KP_OK) {
            if (existing && info.customer_id != existing) {
                bad(im, c, "cards",
                    "card %s is not customer %lld's: a re-import changes personal data, never "
                    "which cards a customer holds (add a card with POST /v1/admin/customers/%lld/cards)",
                    number, (long long)existing, (long long)existing);
                ok = false;
            } else if (info.customer_id && info.customer_id != existing) {
                bad(im, c, "cards", "card %s is registered to customer %lld", number,
                    (long long)info.customer_id);
                ok = false;
            } else if (!info.customer_id && existing == 0 && info.state == KP_CARD_REPLACED) {
                bad(im, c, "cards", "card %s was replaced", number);
                ok = false;
            }
        } else {
            bad(im, c, "", "storage failed: %s", o->st->last_error);
            ok = false;
        }
    }
    return ok;
}

static kp_err seal_text(const kp_office *o, kp_pii_field field, const char *v, kp_sealed *out)
{
    out->len = 0;
    if (v[0] == '\0') return KP_OK;
    return kp_pii_seal(o->pii, field, v, strlen(v), out->data, sizeof out->data, &out->len);
}

/* Opens a sealed field of a stored customer into out ("" when empty). */
static bool open_text(const kp_office *o, kp_pii_field field, const uint8_t *data, size_t len,
                      char *out, size_t cap)
{
    out[0] = '\0';
    return len == 0 || kp_pii_open(o->pii, field, data, len, out, cap, NULL) == KP_OK;
}

/* The attributes a row leaves a customer with: the stored ones, each
 * declared attribute whose column the file has set from the row (an empty
 * cell removes it). The caller releases it. */
static json_t *merged_attributes(importer *im, csv *c, const char *stored, const char *row)
{
    json_t *out = stored[0] ? json_loads(stored, 0, NULL) : NULL;
    if (!json_is_object(out)) {
        json_decref(out);
        out = json_object();
    }
    json_t *given = row[0] ? json_loads(row, 0, NULL) : json_object();
    const kp_people_policy *pol = im->o->policy;
    for (size_t i = 0; i < pol->n_attributes && given && out; i++) {
        char col[KP_ATTR_NAME_MAX + 8];
        snprintf(col, sizeof col, "attr.%s", pol->attributes[i].name);
        if (csv_col(c, col) < 0) continue;
        json_t *v = json_object_get(given, pol->attributes[i].name);
        if (v)
            json_object_set(out, pol->attributes[i].name, v);
        else
            json_object_del(out, pol->attributes[i].name);
    }
    json_decref(given);
    return out;
}

/* Appends `label` to the comma-separated list of changed fields. */
static void changed(char *fields, size_t cap, size_t *n, const char *label)
{
    int k = snprintf(fields + *n, cap - *n, "%s%s", *n ? "," : "", label);
    if (k > 0 && (size_t)k < cap - *n) *n += (size_t)k;
}

/* A row of a customer the database holds already. The personal data it
 * carries replaces what is stored, field by field: a column the file does
 * not have keeps its field, an empty cell of an optional column clears it.
 * Nothing different: unchanged. Anything different: the customer is
 * updated, with an audit entry naming the fields (never their values).
 * Which cards a customer holds is never changed here (the check refused a
 * row naming a card that is not the customer's). */
static kp_err customer_row_update(importer *im, csv *c, const customer_fields *f, int64_t id,
                                  kp_error *e)
{
    kp_office *o = im->o;
    const kp_people_ops *pp = o->st->ops->people;
    kp_customer_row *row = &im->row;
    kp_err err = pp->customer_get(o->st, id, row);
    if (err) return people_storage(o->st, err, e);
    char name[KP_NAME_MAX + 1], phone[KP_PHONE_MAX + 1], email[KP_EMAIL_MAX + 1], birthday[16],
        attrs[KP_ATTRS_JSON_MAX + 1];
    if (!open_text(o, KP_PII_NAME, row->name.data, row->name.len, name, sizeof name) ||
        !open_text(o, KP_PII_PHONE, row->phone.data, row->phone.len, phone, sizeof phone) ||
        !open_text(o, KP_PII_EMAIL, row->email.data, row->email.len, email, sizeof email) ||
        !open_text(o, KP_PII_BIRTHDAY, row->birthday.data, row->birthday.len, birthday,
                   sizeof birthday) ||
        !open_text(o, KP_PII_ATTRIBUTES, row->attributes, row->attributes_len, attrs, sizeof attrs))
        return kp_error_set(e, KP_ERR_INTERNAL, "key",
                            "customer %lld's personal data cannot be opened with this key",
                            (long long)id);
    const char *receipt = csv_get(c, csv_col(c, "receipt"));
    const char *consent_at = csv_get(c, csv_col(c, "consent_at"));
    const char *consent_version = csv_get(c, csv_col(c, "consent_version"));
    bool name_changed = strcmp(name, f->name) != 0;
    bool phone_changed = csv_col(c, "phone") >= 0 && strcmp(phone, f->phone) != 0;
    bool email_changed = csv_col(c, "email") >= 0 && strcmp(email, f->email) != 0;
    bool birthday_changed = csv_col(c, "birthday") >= 0 && strcmp(birthday, f->birthday) != 0;
    json_t *old_attrs = attrs[0] ? json_loads(attrs, 0, NULL) : json_object();
    json_t *new_attrs = merged_attributes(im, c, attrs, f->attrs);
    if (old_attrs == NULL || new_attrs == NULL) {
        json_decref(old_attrs);
        json_decref(new_attrs);
        return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    }
    bool attrs_changed = !json_equal(old_attrs, new_attrs);
    char *attrs_text =
        attrs_changed && json_object_size(new_attrs)
            ? json_dumps(new_attrs, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII)
            : NULL;
    json_decref(old_attrs);
    json_decref(new_attrs);
    bool consent_changed = strcmp(row->consent_version, consent_version) != 0 ||
                           (consent_at[0] && f->consent_at != row->consent_at);
    bool receipt_changed = receipt[0] && strcmp(receipt, row->receipt) != 0;

    char fields[160] = "";
    size_t nf = 0;
    /* The store rewrites the name's index with every update. */
    const char *new_name = name_changed ? f->name : name;
    char words[KP_NAME_WORDS_MAX][KP_NAME_MAX + 1];
    row->n_name_ix = kp_name_words(new_name, words);
    for (size_t i = 0; i < row->n_name_ix; i++)
        kp_pii_index(o->pii, KP_PII_NAME_WORD, words[i], row->name_ix[i]);
    if (name_changed) {
        changed(fields, sizeof fields, &nf, "full_name");
        err = seal_text(o, KP_PII_NAME, f->name, &row->name);
    }
    if (err == KP_OK && phone_changed) {
        changed(fields, sizeof fields, &nf, "phone");
        err = seal_text(o, KP_PII_PHONE, f->phone, &row->phone);
        row->has_phone_ix = f->phone[0] != '\0';
        if (row->has_phone_ix) kp_pii_index(o->pii, KP_PII_PHONE, f->phone, row->phone_ix);
    }
    if (err == KP_OK && email_changed) {
        changed(fields, sizeof fields, &nf, "email");
        err = seal_text(o, KP_PII_EMAIL, f->email, &row->email);
        row->has_email_ix = f->email[0] != '\0';
        if (row->has_email_ix) kp_pii_index(o->pii, KP_PII_EMAIL, f->email, row->email_ix);
    }
    if (err == KP_OK && birthday_changed) {
        changed(fields, sizeof fields, &nf, "birthday");
        err = seal_text(o, KP_PII_BIRTHDAY, f->birthday, &row->birthday);
    }
    bool attrs_too_long = attrs_text && strlen(attrs_text) > KP_ATTRS_JSON_MAX;
    if (err == KP_OK && attrs_changed && !attrs_too_long) {
        changed(fields, sizeof fields, &nf, "attributes");
        row->attributes_len = 0;
        if (attrs_text)
            err = kp_pii_seal(o->pii, KP_PII_ATTRIBUTES, attrs_text, strlen(attrs_text),
                              row->attributes, sizeof row->attributes, &row->attributes_len);
    }
    free(attrs_text);
    if (consent_changed) {
        changed(fields, sizeof fields, &nf, "consent");
        snprintf(row->consent_version, sizeof row->consent_version, "%s", consent_version);
        if (consent_at[0]) row->consent_at = f->consent_at;
    }
    if (receipt_changed) {
        changed(fields, sizeof fields, &nf, "receipt");
        snprintf(row->receipt, sizeof row->receipt, "%s", receipt);
    }
    sodium_memzero(name, sizeof name);
    sodium_memzero(phone, sizeof phone);
    sodium_memzero(email, sizeof email);
    sodium_memzero(birthday, sizeof birthday);
    sodium_memzero(attrs, sizeof attrs);
    if (attrs_too_long)
        return kp_error_set(e, KP_ERR_LIMIT, "attributes",
                            "%s:%lld: are longer than %d bytes as JSON", c->name,
                            (long long)c->line, KP_ATTRS_JSON_MAX);
    if (err) return kp_error_set(e, err, "", "personal data could not be sealed");
    if (nf == 0) {
        im->stats->customers_unchanged++;
        return KP_OK;
    }
    if (im->dry_run) {
        im->stats->customers_updated++;
        return KP_OK;
    }
    row->updated_at = o->now;
    if ((err = pp->customer_update(o->st, row))) return people_storage(o->st, err, e);
    if (birthday_changed) {
        if (f->birthday[0]) {
            uint8_t ix[KP_PII_INDEX_BYTES];
            kp_pii_birthday_index(o->pii, f->month, f->day, ix);
            err = o->st->ops->triggers->birthday_set(o->st, row->account_id, ix);
        } else {
            err = pp->birthday_forget(o->st, row->account_id);
        }
        if (err) return people_storage(o->st, err, e);
    }
    char target[48];
    snprintf(target, sizeof target, "customer:%lld", (long long)id);
    if ((err = kp_office_audit(o, "customer.import_update", target, "fields=%s line=%s:%lld",
                               fields, c->name, (long long)c->line)))
        return people_storage(o->st, err, e);
    im->stats->customers_updated++;
    return KP_OK;
}

static kp_err customer_row_write(importer *im, csv *c, kp_error *e)
{
    kp_office *o = im->o;
    const kp_people_ops *pp = o->st->ops->people;
    customer_fields f;
    if (!customer_fields_read(im, c, &f, true))
        return kp_error_set(e, KP_ERR_INTERNAL, "file", "%s:%lld changed during the import",
                            c->name, (long long)c->line);
    const char *ext = csv_get(c, csv_col(c, "external_id"));
    int64_t existing = 0;
    bool erased = false;
    const char *why = customer_find(im, ext, f.id, &existing, &erased);
    if (why)
        return kp_error_set(e, KP_ERR_INTERNAL, "file", "%s:%lld: %s", c->name, (long long)c->line,
                            why);
    if (f.erased) {
        im->stats->customers_unchanged++;
        return KP_OK;
    }
    if (existing) return customer_row_update(im, c, &f, existing, e);
    if (im->dry_run) {
        im->stats->customers_created++;
        return KP_OK;
    }
    kp_err err;
    /* The first card's account is the customer's; the others join it. */
    kp_card_info cards[8];
    for (size_t i = 0; i < f.n_cards; i++)
        if ((err = pp->card_info_get(o->st, f.cards[i], &cards[i])))
            return people_storage(o->st, err, e);
    kp_customer_row *row = &im->row;
    memset(row, 0, sizeof *row);
    row->account_id = cards[0].account_id;
    row->created_at = f.registered_at;
    row->updated_at = o->now;
    snprintf(row->external_id, sizeof row->external_id, "%s", ext);
    snprintf(row->receipt, sizeof row->receipt, "%s", csv_get(c, csv_col(c, "receipt")));
    row->consent_at = f.consent_at;
    snprintf(row->consent_version, sizeof row->consent_version, "%s",
             csv_get(c, csv_col(c, "consent_version")));
    if ((err = seal_text(o, KP_PII_NAME, f.name, &row->name)) ||
        (err = seal_text(o, KP_PII_PHONE, f.phone, &row->phone)) ||
        (err = seal_text(o, KP_PII_EMAIL, f.email, &row->email)) ||
        (err = seal_text(o, KP_PII_BIRTHDAY, f.birthday, &row->birthday)))
        return kp_error_set(e, err, "", "personal data could not be sealed");
    if (f.attrs[0] &&
        (err = kp_pii_seal(o->pii, KP_PII_ATTRIBUTES, f.attrs, strlen(f.attrs), row->attributes,
                           sizeof row->attributes, &row->attributes_len)))
        return kp_error_set(e, err, "", "personal data could not be sealed");
    if (f.phone[0]) {
        kp_pii_index(o->pii, KP_PII_PHONE, f.phone, row->phone_ix);
        row->has_phone_ix = true;
    }
    if (f.email[0]) {
        kp_pii_index(o->pii, KP_PII_EMAIL, f.email, row->email_ix);
        row->has_email_ix = true;
    }
    char words[KP_NAME_WORDS_MAX][KP_NAME_MAX + 1];
    row->n_name_ix = kp_name_words(f.name, words);
    for (size_t i = 0; i < row->n_name_ix; i++)
        kp_pii_index(o->pii, KP_PII_NAME_WORD, words[i], row->name_ix[i]);
    if ((err = pp->customer_insert(o->st, row))) return people_storage(o->st, err, e);
    for (size_t i = 0; i < f.n_cards; i++) {
        kp_card_info *card = &cards[i];
        kp_card_state from = card->state;
        bool empty = true;
        if (i > 0 && card->account_id != row->account_id) {
            if ((err = pp->account_is_empty(o->st, card->account_id, &empty)))
                return people_storage(o->st, err, e);
            if (!empty)
                return kp_error_set(e, KP_ERR_CONFLICT, "cards",
                                    "%s:%lld: card %s has operations of its own; import its "
                                    "balance on the first card of the customer instead",
                                    c->name, (long long)c->line, card->number);
            card->account_id = row->account_id;
        }
        card->customer_id = row->id;
        card->registered = true;
        if (card->state == KP_CARD_ISSUED) card->state = KP_CARD_ACTIVE;
        if ((err = pp->card_info_put(o->st, card, o->now))) return people_storage(o->st, err, e);
        if (from != card->state &&
            (err = kp_card_event_record(o, card->number, from, card->state, "imported", "", e)))
            return err;
    }
    if (f.birthday[0]) {
        uint8_t ix[KP_PII_INDEX_BYTES];
        kp_pii_birthday_index(o->pii, f.month, f.day, ix);
        if ((err = o->st->ops->triggers->birthday_set(o->st, row->account_id, ix)))
            return people_storage(o->st, err, e);
    }
    im->stats->customers_created++;
    return KP_OK;
}

/* -------------------------------------------------------------- balances */

static const char *const balance_cols[] = {"card", "points", "kind", "expires_at", "key", NULL};
static const char *const balance_required[] = {"card", "points", NULL};

typedef struct balance_fields {
    char card[KP_STR_MAX];
    int64_t points;
    char kind[16];
    kp_time expires_at;
    char key[KP_STR_MAX];
    uint8_t hash[16];
} balance_fields;

/* Reads a balances.csv row; `seen` counts the card's earlier rows (the
 * default key is "CARD:N"). */
static bool balance_fields_read(importer *im, csv *c, strset *seen_rows, balance_fields *f)
{
    memset(f, 0, sizeof *f);
    bool ok = true;
    const char *card = csv_get(c, csv_col(c, "card"));
    kp_error check;
    if (!number_ok(card)) {
        bad(im, c, "card", "must be a card number");
        return false;
    }
    if (kp_card_number_check(card, "card", &check)) {
        bad(im, c, "card", "%s", check.message);
        return false;
    }
    snprintf(f->card, sizeof f->card, "%s", card);
    const char *pts = csv_get(c, csv_col(c, "points"));
    char *end;
    errno = 0;
    long long p = strtoll(pts, &end, 10);
    if (pts[0] == '\0' || *end != '\0' || errno || p <= 0 || p > 1000000000000LL) {
        bad(im, c, "points", "must be a whole number of points from 1 to 10^12");
        ok = false;
    }
    f->points = p;
    const char *kind = csv_get(c, csv_col(c, "kind"));
    if (strlen(kind) >= sizeof f->kind) {
        bad(im, c, "kind", "must be at most 15 bytes");
        ok = false;
    }
    snprintf(f->kind, sizeof f->kind, "%s",
             kind[0] ? kind : (im->o->program ? im->o->program->point_kind : "regular"));
    if (f->kind[0] == '\0') snprintf(f->kind, sizeof f->kind, "regular");
    const char *exp = csv_get(c, csv_col(c, "expires_at"));
    f->expires_at = KP_TIME_NEVER;
    if (exp[0]) {
        if (!kp_time_parse(exp, &f->expires_at)) {
            bad(im, c, "expires_at", "must be an RFC 3339 time, or empty for never");
            ok = false;
        } else if (f->expires_at <= im->o->now) {
            bad(im, c, "expires_at", "is in the past: these points expired already");
            ok = false;
        }
    }
    const char *key = csv_get(c, csv_col(c, "key"));
    if (key[0]) {
        if (strlen(key) >= KP_STR_MAX) {
            bad(im, c, "key", "is too long");
            ok = false;
        }
        snprintf(f->key, sizeof f->key, "%s", key);
    } else {
        int n = 1;
        char probe[KP_STR_MAX];
        do snprintf(probe, sizeof probe, "%.200s:%d", card, n++);
        while (strset_has(seen_rows, probe));
        snprintf(f->key, sizeof f->key, "%s", probe);
    }
    if (!strset_add(seen_rows, f->key, &im->nomem)) {
        bad(im, c, "key", "%s is on another row too", f->key);
        ok = false;
    }
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, 16);
    crypto_generichash_update(&h, (const uint8_t *)"opening", 8);
    crypto_generichash_update(&h, (const uint8_t *)f->card, strlen(f->card) + 1);
    crypto_generichash_update(&h, (const uint8_t *)&f->points, sizeof f->points);
    crypto_generichash_update(&h, (const uint8_t *)f->kind, strlen(f->kind) + 1);
    crypto_generichash_update(&h, (const uint8_t *)&f->expires_at, sizeof f->expires_at);
    crypto_generichash_final(&h, f->hash, 16);
    return ok;
}

static bool balance_row_check(importer *im, csv *c, strset *seen)
{
    balance_fields f;
    if (!balance_fields_read(im, c, seen, &f)) return false;
    kp_office *o = im->o;
    kp_card_info info;
    kp_err err = o->st->ops->people->card_info_get(o->st, f.card, &info);
    if (err == KP_ERR_NOT_FOUND && !strset_has(&im->card_numbers, f.card)) {
        bad(im, c, "card", "card %s is neither in the database nor in cards.csv", f.card);
        return false;
    }
    if (err == KP_OK && info.state == KP_CARD_REPLACED) {
        bad(im, c, "card", "card %s was replaced by %s", f.card, info.replaced_by);
        return false;
    }
    kp_op_row prior;
    err = o->st->ops->op_find(o->st, "#opening", f.key, &prior);
    if (err == KP_OK) {
        bool same = memcmp(prior.request_hash, f.hash, 16) == 0;
        kp_op_row_release(&prior);
        if (!same) {
            bad(im, c, "key", "opening balance %s was imported before with other figures", f.key);
            return false;
        }
    }
    return true;
}

static kp_err balance_row_write(importer *im, csv *c, strset *seen, kp_error *e)
{
    kp_office *o = im->o;
    balance_fields f;
    if (!balance_fields_read(im, c, seen, &f))
        return kp_error_set(e, KP_ERR_INTERNAL, "file", "%s:%lld changed during the import",
                            c->name, (long long)c->line);
    kp_op_row prior;
    kp_err err = o->st->ops->op_find(o->st, "#opening", f.key, &prior);
    if (err == KP_OK) {
        kp_op_row_release(&prior);
        im->stats->balances_unchanged++;
        return KP_OK;
    }
    if (err != KP_ERR_NOT_FOUND) return people_storage(o->st, err, e);
    if (im->dry_run) {
        im->stats->balances_posted++;
        return KP_OK;
    }
    kp_card_info info;
    if ((err = o->st->ops->people->card_info_get(o->st, f.card, &info)) ||
        (err = o->st->ops->account_load(o->st, info.account_id, &o->sc->account)))
        return people_storage(o->st, err, e);
    kp_lot lot;
    memset(&lot, 0, sizeof lot);
    snprintf(lot.kind, sizeof lot.kind, "%s", f.kind);
    lot.earned_at = o->now;
    lot.active_from = o->now;
    lot.expires_at = f.expires_at;
    if ((err = kp_ledger_plan_move(&o->sc->account, KP_OP_OPENING, KP_SYS_OPENING, f.points, &lot,
                                   o->now, &o->sc->plan, e)))
        return err;
    kp_op_row row;
    memset(&row, 0, sizeof row);
    row.type = KP_OP_OPENING;
    row.account_id = info.account_id;
    snprintf(row.card, sizeof row.card, "%s", f.card);
    snprintf(row.store, sizeof row.store, "#opening");
    snprintf(row.receipt, sizeof row.receipt, "%s", f.key);
    memcpy(row.request_hash, f.hash, 16);
    row.program_version = o->program ? o->program->version : 0;
    row.at = o->now;
    row.points = f.points;
    if ((err = o->st->ops->op_insert(o->st, &row)) ||
        (err = o->st->ops->plan_apply(o->st, row.id, &o->sc->plan, o->now)))
        return people_storage(o->st, err, e);
    im->stats->balances_posted++;
    return KP_OK;
}

/* ---------------------------------------------------------------- sales */

/* sales.csv (docs/import.md "Sales"): one row a receipt line, the rows of
 * a receipt consecutive; a receipt is (store, receipt, kind). Written
 * through kp_sales_ops.sales_put, which skips receipts it holds. */
static const char *const sale_cols[] = {"at",     "store", "receipt",  "card",
                                        "kind",   "sku",   "category", "amount",
                                        "qty",    "customer", NULL};
static const char *const sale_required[] = {"at", "store", "receipt", "amount", NULL};

enum { SALES_BATCH = 512, SALES_LINES_POOL = 8192 };

typedef struct sale_row {
    kp_time at;
    const char *store, *receipt, *card, *sku, *category, *customer; /* into the csv's buffer */
    kp_sale_kind kind;
    int64_t amount, qty;
} sale_row;

/* A set of 64-bit hashes of the receipts seen (a receipt's rows must be
 * consecutive): 8 bytes a receipt, so ten million rows fit. 0 is empty. */
typedef struct hashset {
    size_t cap, n;
    uint64_t *slot;
} hashset;

static bool hashset_add(hashset *s, uint64_t h, bool *nomem)
{
    if (h == 0) h = 1;
    if ((s->n + 1) * 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4096;
        uint64_t *slot = calloc(cap, sizeof *slot);
        if (slot == NULL) {
            *nomem = true;
            return true;
        }
        for (size_t i = 0; i < s->cap; i++)
            if (s->slot[i]) {
                size_t j = s->slot[i] & (cap - 1);
                while (slot[j]) j = (j + 1) & (cap - 1);
                slot[j] = s->slot[i];
            }
        free(s->slot);
        s->slot = slot;
        s->cap = cap;
    }
    size_t j = h & (s->cap - 1);
    while (s->slot[j]) {
        if (s->slot[j] == h) return false;
        j = (j + 1) & (s->cap - 1);
    }
    s->slot[j] = h;
    s->n++;
    return true;
}

static uint64_t receipt_hash(const char *store, const char *receipt, kp_sale_kind kind)
{
    uint64_t h = hash_str(store);
    h = (h ^ 0xff) * 1099511628211ULL;
    for (const char *p = receipt; *p; p++) h = (h ^ (uint8_t)*p) * 1099511628211ULL;
    return (h ^ (uint64_t)kind) * 1099511628211ULL;
}

/* "1250.50", "1250,5", "1250": minor units; false when not such. */
static bool money_parse(const char *s, int64_t *out)
{
    int64_t major = 0, minor = 0;
    size_t i = 0, digits = 0, decimals = 0;
    for (; s[i] >= '0' && s[i] <= '9'; i++, digits++) {
        if (major > 100000000000000LL) return false;
        major = major * 10 + (s[i] - '0');
    }
    if (digits == 0) return false;
    if (s[i] == '.' || s[i] == ',') {
        for (i++; s[i] >= '0' && s[i] <= '9'; i++, decimals++) {
            if (decimals == 2) return false;
            minor = minor * 10 + (s[i] - '0');
        }
        if (decimals == 0) return false;
        if (decimals == 1) minor *= 10;
    }
    if (s[i] != '\0') return false;
    *out = major * 100 + minor;
    return true;
}

/* Reads n digits of s at *i into *v; false when they are not digits. */
static bool digits_at(const char *s, size_t *i, int n, int *v)
{
    *v = 0;
    for (int k = 0; k < n; k++, (*i)++) {
        if (s[*i] < '0' || s[*i] > '9') return false;
        *v = *v * 10 + (s[*i] - '0');
    }
    return true;
}

/* RFC 3339, or "YYYY-MM-DD[ HH:MM[:SS]]" in the program's time zone. */
static bool sale_time_parse(const char *s, int32_t offset_minutes, kp_time *out)
{
    if (strchr(s, 'T') || strchr(s, 't')) return kp_time_parse(s, out);
    size_t i = 0;
    int y, mo, d, h = 0, mi = 0, sec = 0;
    if (!digits_at(s, &i, 4, &y) || s[i++] != '-' || !digits_at(s, &i, 2, &mo) ||
        s[i++] != '-' || !digits_at(s, &i, 2, &d))
        return false;
    if (s[i] == ' ') {
        i++;
        if (!digits_at(s, &i, 2, &h) || s[i++] != ':' || !digits_at(s, &i, 2, &mi)) return false;
        if (s[i] == ':' && (i++, !digits_at(s, &i, 2, &sec))) return false;
    }
    if (s[i] != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return false;
    kp_time day = kp_time_from_civil(y, mo, d);
    int cy, cm, cd;
    kp_time_to_civil(day, &cy, &cm, &cd);
    if (cd != d) return false; /* 31 April */
    *out = day + h * 3600 + mi * 60 + sec - (kp_time)offset_minutes * 60;
    return true;
}

/* Reads and checks one row (each problem reported); false when bad. */
static bool sale_row_read(importer *im, csv *c, const int *col, sale_row *r)
{
    bool ok = true;
    memset(r, 0, sizeof *r);
    const char *at = csv_get(c, col[0]);
    int32_t offset = im->o->program ? im->o->program->utc_offset_minutes : 0;
    if (!sale_time_parse(at, offset, &r->at)) {
        bad(im, c, "at", "must be an RFC 3339 time (2026-03-01T10:15:00+03:00), or "
                         "YYYY-MM-DD HH:MM[:SS] or YYYY-MM-DD in the program's time zone");
        ok = false;
    }
    static const char *const text_names[] = {"store", "receipt",  "card",
                                             "sku",   "category", "customer"};
    const char **text[] = {&r->store, &r->receipt, &r->card, &r->sku, &r->category, &r->customer};
    static const int text_col[] = {1, 2, 3, 5, 6, 9};
    for (int k = 0; k < 6; k++) {
        *text[k] = csv_get(c, col[text_col[k]]);
        if (strlen(*text[k]) >= KP_STR_MAX) {
            bad(im, c, text_names[k], "is longer than %d bytes", KP_STR_MAX - 1);
            ok = false;
        } else if (k < 2 && (*text[k])[0] == '\0') {
            bad(im, c, text_names[k], "is required: the store's code, the receipt's number");
            ok = false;
        }
    }
    for (const unsigned char *ch = (const unsigned char *)r->customer; *ch; ch++)
        if (*ch < 0x20 || *ch == 0x7f) {
            bad(im, c, "customer", "must be text without control characters (the shop's key of "
                                   "the customer), or empty when unknown");
            ok = false;
            break;
        }
    if (r->card[0] && !number_ok(r->card)) {
        bad(im, c, "card", "must be a card number (letters, digits, -; up to 32), or empty for "
                           "a sale without a card");
        ok = false;
    }
    const char *kind = csv_get(c, col[4]);
    if (kind[0] == '\0' || strcmp(kind, "sale") == 0) r->kind = KP_SALE_PURCHASE;
    else if (strcmp(kind, "return") == 0) r->kind = KP_SALE_RETURN;
    else {
        bad(im, c, "kind", "must be sale (or empty) or return");
        ok = false;
    }
    if (!money_parse(csv_get(c, col[7]), &r->amount)) {
        bad(im, c, "amount", "must be the line's total in major units, never negative, with "
                             "up to 2 decimals after . or , (1250.50)");
        ok = false;
    }
    const char *qty = csv_get(c, col[8]);
    r->qty = 1;
    if (qty[0]) {
        char *end;
        errno = 0;
        long long q = strtoll(qty, &end, 10);
        if (*end != '\0' || errno || q < 1 || q > 1000000000LL || qty[0] == '+' ||
            qty[0] == ' ') {
            bad(im, c, "qty", "must be a whole number from 1 to 10^9, or empty for 1");
            ok = false;
        }
        r->qty = q;
    }
    return ok;
}

/* The receipt being read: its first row's key, to tell where it ends. */
typedef struct sale_group {
    bool open;
    int64_t line;
    kp_time at;
    kp_sale_kind kind;
    char store[KP_STR_MAX], receipt[KP_STR_MAX], card[KP_STR_MAX], customer[KP_STR_MAX];
    size_t n_lines;
} sale_group;

static bool same_receipt(const sale_group *g, const sale_row *r)
{
    return g->open && g->kind == r->kind && strcmp(g->store, r->store) == 0 &&
           strcmp(g->receipt, r->receipt) == 0;
}

static void group_start(sale_group *g, const csv *c, const sale_row *r)
{
    g->open = true;
    g->line = c->line;
    g->at = r->at;
    g->kind = r->kind;
    snprintf(g->store, sizeof g->store, "%s", r->store);
    snprintf(g->receipt, sizeof g->receipt, "%s", r->receipt);
    snprintf(g->card, sizeof g->card, "%s", r->card);
    snprintf(g->customer, sizeof g->customer, "%s", r->customer);
    g->n_lines = 0;
}

/* Pass 1 for one row: its fields, and its place in its receipt. */
static void sale_row_check(importer *im, csv *c, const int *col, sale_group *g, hashset *done)
{
    sale_row r;
    if (!sale_row_read(im, c, col, &r)) return;
    if (!same_receipt(g, &r)) {
        group_start(g, c, &r);
        if (!hashset_add(done, receipt_hash(r.store, r.receipt, r.kind), &im->nomem))
            bad(im, c, "receipt", "receipt %s of store %s (%s) is also on earlier rows: the "
                                  "rows of one receipt must be consecutive",
                r.receipt, r.store, r.kind == KP_SALE_RETURN ? "return" : "sale");
    } else if (r.at != g->at || strcmp(r.card, g->card) != 0 ||
               strcmp(r.customer, g->customer) != 0) {
        bad(im, c,
            r.at != g->at                  ? "at"
            : strcmp(r.card, g->card) != 0 ? "card"
                                           : "customer",
            "differs from line %lld, the receipt's first row: a receipt has one time, one card "
            "and one customer",
            (long long)g->line);
    }
    if (++g->n_lines == KP_SALE_LINES_MAX + 1)
        bad(im, c, "receipt", "receipt %s has more than %d lines", r.receipt, KP_SALE_LINES_MAX);
}

/* Pass 2's batch: whole receipts, written with one sales_put. */
typedef struct sale_batch {
    kp_sale sale[SALES_BATCH];
    kp_sale_line line[SALES_LINES_POOL];
    size_t n, n_lines;
    int64_t rows;
} sale_batch;

static kp_err sales_flush(importer *im, sale_batch *b, kp_chunks *ch, kp_error *e)
{
    if (b->n == 0) return KP_OK;
    kp_store *st = im->o->st;
    int64_t inserted = 0, skipped = 0;
    kp_err err = KP_OK;
    if (!im->dry_run) {
        err = st->ops->sales->sales_put(st, b->sale, b->n, &inserted, &skipped);
        if (err) return people_storage(st, err, e);
    } else {
        inserted = (int64_t)b->n;
    }
    im->stats->sales_inserted += inserted;
    im->stats->sales_unchanged += skipped;
    if (ch) err = kp_chunks_step(ch, b->rows, e);
    b->n = b->n_lines = 0;
    b->rows = 0;
    return err;
}

/* Pass 2 for one row: appended to its receipt, a new receipt begun (and
 * the batch written when full). */
static kp_err sale_row_write(importer *im, csv *c, const int *col, sale_batch *b, kp_chunks *ch,
                             kp_error *e)
{
    sale_row r;
    if (!sale_row_read(im, c, col, &r))
        return kp_error_set(e, KP_ERR_INTERNAL, "file", "%s:%lld changed during the import",
                            c->name, (long long)c->line);
    kp_sale *cur = b->n ? &b->sale[b->n - 1] : NULL;
    bool same = cur && cur->kind == r.kind && strcmp(cur->store, r.store) == 0 &&
                strcmp(cur->receipt, r.receipt) == 0;
    if (!same) {
        kp_err err;
        if ((b->n == SALES_BATCH || b->n_lines + KP_SALE_LINES_MAX > SALES_LINES_POOL) &&
            (err = sales_flush(im, b, ch, e)))
            return err;
        cur = &b->sale[b->n++];
        memset(cur, 0, sizeof *cur);
        cur->at = r.at;
        snprintf(cur->store, sizeof cur->store, "%s", r.store);
        snprintf(cur->receipt, sizeof cur->receipt, "%s", r.receipt);
        snprintf(cur->card, sizeof cur->card, "%s", r.card);
        snprintf(cur->customer, sizeof cur->customer, "%s", r.customer);
        cur->kind = r.kind;
        cur->source = KP_SALE_IMPORT;
        cur->lines = &b->line[b->n_lines];
    }
    kp_sale_line *l = &b->line[b->n_lines++];
    snprintf(l->sku, sizeof l->sku, "%s", r.sku);
    snprintf(l->category, sizeof l->category, "%s", r.category);
    l->amount = r.amount;
    l->qty = r.qty;
    cur->n_lines++;
    cur->amount += r.amount;
    b->rows++;
    return KP_OK;
}

/* Both passes over sales.csv (the file opened, its header read). */
static kp_err sales_import(importer *im, csv *c, kp_chunks *ch, kp_error *e)
{
    int col[10];
    for (int k = 0; k < 10; k++) col[k] = csv_col(c, sale_cols[k]);
    if (im->o->st->ops->sales == NULL)
        return kp_error_set(e, KP_ERR_INTERNAL, "", "this store keeps no sales history");
    hashset done = {0};
    sale_group g;
    memset(&g, 0, sizeof g);
    kp_err err = KP_OK;
    int rc;
    int64_t rows = 0;
    while ((rc = csv_read(c)) != 0) {
        if (rc < 0) {
            bad(im, c, "", "malformed CSV (an unclosed quote, or a line over 64 KiB)");
            g.open = false;
        } else if (!blank_row(c)) {
            rows++;
            sale_row_check(im, c, col, &g, &done);
        }
        if (ch && (rows & 1023) == 0 && (err = kp_chunks_step(ch, 0, e))) break;
    }
    free(done.slot);
    im->stats->rows += rows;
    if (err) return err;
    if (im->nomem) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory while checking");
    if (im->stats->bad_rows)
        return kp_error_set(e, KP_ERR_INVALID, "file", "%lld bad row(s); nothing was imported",
                            (long long)im->stats->bad_rows);
    if (ch) ch->total = rows;
    if (!rewind_csv(c))
        return kp_error_set(e, KP_ERR_IO, "file", "cannot read %s again for the second pass",
                            c->name);
    sale_batch *b = calloc(1, sizeof *b);
    if (b == NULL) return kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
    while (err == KP_OK && (rc = csv_read(c)) == 1)
        if (!blank_row(c)) err = sale_row_write(im, c, col, b, ch, e);
    if (err == KP_OK) err = sales_flush(im, b, ch, e);
    free(b);
    return err;
}

/* ---------------------------------------------------------------- import */

kp_err kp_import(kp_office *o, const kp_import_files *files, kp_import_report_fn report,
                 void *ctx, kp_import_stats *stats, kp_error *e)
{
    return kp_import_chunks(o, files, report, ctx, NULL, stats, e);
}

static void importer_init(importer *im, kp_office *o, kp_import_report_fn report, void *ctx,
                          kp_import_stats *stats, bool dry_run)
{
    im->o = o;
    im->report = report;
    im->ctx = ctx;
    im->stats = stats;
    im->dry_run = dry_run;
}

/* An import of sales.csv alone (kp_import_files.sales). */
static kp_err import_sales_only(kp_office *o, const kp_import_files *files,
                                kp_import_report_fn report, void *ctx, kp_chunks *ch,
                                kp_import_stats *stats, kp_error *e)
{
    if (files->cards.path || files->customers.path || files->balances.path)
        return kp_error_set(e, KP_ERR_INVALID, "sales",
                            "is imported alone: import cards, customers and balances first, "
                            "then the sales in a run of their own");
    importer *im = calloc(1, sizeof *im);
    csv *c = calloc(1, sizeof *c);
    kp_err err;
    if (im == NULL || c == NULL) {
        err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
        goto out;
    }
    importer_init(im, o, report, ctx, stats, files->dry_run);
    if ((err = csv_open(im, c, &files->sales, sale_cols, sale_required, false, e))) {
        if (err == KP_ERR_INVALID)
            err = kp_error_set(e, KP_ERR_INVALID, "file", "%lld bad row(s); nothing was imported",
                               (long long)stats->bad_rows);
        goto out;
    }
    if (ch && (err = kp_chunks_begin(ch, e))) goto out;
    if ((err = sales_import(im, c, ch, e)) || im->dry_run) goto out;
    if ((err = kp_office_audit(o, "import", "import", "sales=%lld/%lld (created/unchanged)",
                               (long long)stats->sales_inserted,
                               (long long)stats->sales_unchanged)))
        err = people_storage(o->st, err, e);
    if (ch && err == KP_OK) err = kp_chunks_end(ch, err, e);
out:
    if (c) csv_close(c);
    free(c);
    free(im);
    return err;
}

kp_err kp_import_chunks(kp_office *o, const kp_import_files *files, kp_import_report_fn report,
                        void *ctx, struct kp_chunks *ch, kp_import_stats *stats, kp_error *e)
{
    memset(stats, 0, sizeof *stats);
    kp_err err = kp_office_require(o, KP_PERM_IMPORT, e);
    if (err) return err;
    if (files->sales.path) return import_sales_only(o, files, report, ctx, ch, stats, e);
    if (files->customers.path && (err = people_need_key(o, e))) return err;
    importer *im = calloc(1, sizeof *im);
    csv *cards = calloc(1, sizeof *cards), *customers = calloc(1, sizeof *customers),
        *balances = calloc(1, sizeof *balances);
    strset seen = {0};
    customer_fields *cf = malloc(sizeof *cf);
    if (im == NULL || cards == NULL || customers == NULL || balances == NULL || cf == NULL) {
        err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory");
        goto out;
    }
    importer_init(im, o, report, ctx, stats, files->dry_run);
    kp_err header = KP_OK;
    if (files->cards.path &&
        (err = csv_open(im, cards, &files->cards, card_cols, card_required, false, e))) {
        if (err != KP_ERR_INVALID) goto out;
        header = err;
    }
    if (files->customers.path && (err = csv_open(im, customers, &files->customers, customer_cols,
                                                 customer_required, true, e))) {
        if (err != KP_ERR_INVALID) goto out;
        header = err;
    }
    if (files->balances.path && (err = csv_open(im, balances, &files->balances, balance_cols,
                                                balance_required, false, e))) {
        if (err != KP_ERR_INVALID) goto out;
        header = err;
    }
    if (header) {
        err = kp_error_set(e, KP_ERR_INVALID, "file", "%lld bad row(s); nothing was imported",
                           (long long)stats->bad_rows);
        goto out;
    }

    /* Pass 1: check everything. It writes nothing; in chunks (the CLI) its
     * reads run in chunks too: one transaction per statement would cost a
     * lock round trip each, one for the whole pass would hold the tills. */
    int rc;
    bool exists;
    int64_t rows = 0;
    if (ch && (err = kp_chunks_begin(ch, e))) goto out;
    while (cards->f && (rc = csv_read(cards)) != 0) {
        if (rc < 0)
            bad(im, cards, "", "malformed CSV (an unclosed quote, or a line over 64 KiB)");
        else if (!blank_row(cards)) {
            rows++;
            card_row_check(im, cards, &exists);
            if (ch && (err = kp_chunks_step(ch, 0, e))) goto out;
        }
    }
    while (customers->f && (rc = csv_read(customers)) != 0) {
        if (rc < 0)
            bad(im, customers, "", "malformed CSV (an unclosed quote, or a line over 64 KiB)");
        else if (!blank_row(customers)) {
            rows++;
            customer_row_check(im, customers, cf);
            if (ch && (err = kp_chunks_step(ch, 0, e))) goto out;
        }
    }
    while (balances->f && (rc = csv_read(balances)) != 0) {
        if (rc < 0)
            bad(im, balances, "", "malformed CSV (an unclosed quote, or a line over 64 KiB)");
        else if (!blank_row(balances)) {
            rows++;
            balance_row_check(im, balances, &seen);
            if (ch && (err = kp_chunks_step(ch, 0, e))) goto out;
        }
    }
    if (im->nomem) {
        err = kp_error_set(e, KP_ERR_NOMEM, "", "out of memory while checking the files");
        goto out;
    }
    stats->rows = rows;
    if (stats->bad_rows) {
        err = kp_error_set(e, KP_ERR_INVALID, "file", "%lld bad row(s); nothing was imported",
                           (long long)stats->bad_rows);
        goto out;
    }

    /* Pass 2: write, in the caller's transaction, or in chunks: each row
     * is written whole in one chunk, and a row already in the database is
     * skipped, so a re-run after an interruption completes the import. */
    strset_free(&seen);
    if (ch) ch->total = rows;
    int64_t batch_id = 0;
    char batch_name[KP_STR_MAX] = "";
    if (cards->f && !rewind_csv(cards)) goto reread;
    while (cards->f && (rc = csv_read(cards)) == 1)
        if (!blank_row(cards) && ((err = card_row_write(im, cards, &batch_id, batch_name, e)) ||
                                  (ch && (err = kp_chunks_step(ch, 1, e)))))
            goto out;
    if (customers->f && !rewind_csv(customers)) goto reread;
    while (customers->f && (rc = csv_read(customers)) == 1)
        if (!blank_row(customers) && ((err = customer_row_write(im, customers, e)) ||
                                      (ch && (err = kp_chunks_step(ch, 1, e)))))
            goto out;
    if (balances->f && !rewind_csv(balances)) goto reread;
    while (balances->f && (rc = csv_read(balances)) == 1)
        if (!blank_row(balances) && ((err = balance_row_write(im, balances, &seen, e)) ||
                                     (ch && (err = kp_chunks_step(ch, 1, e)))))
            goto out;
    if (im->dry_run) goto out;
    if ((err = kp_office_audit(
             o, "import", "import",
             "cards=%lld/%lld customers=%lld/%lld balances=%lld/%lld "
             "(created/unchanged) customers_updated=%lld",
             (long long)stats->cards_created, (long long)stats->cards_unchanged,
             (long long)stats->customers_created, (long long)stats->customers_unchanged,
             (long long)stats->balances_posted, (long long)stats->balances_unchanged,
             (long long)stats->customers_updated)))
        err = people_storage(o->st, err, e);
    /* The last chunk commits now, not after the sets of pass 1 are freed
     * (tens of milliseconds for 100 000 rows, the lock held meanwhile). */
    if (ch && err == KP_OK) err = kp_chunks_end(ch, err, e);
    goto out;
reread:
    err = kp_error_set(e, KP_ERR_IO, "file", "cannot read a file again for the second pass");
out:
    if (cards) csv_close(cards);
    if (customers) csv_close(customers);
    if (balances) csv_close(balances);
    if (im) {
        strset_free(&im->card_numbers);
        strset_free(&im->linked_cards);
        strset_free(&im->external_ids);
        strset_free(&im->phones);
        strset_free(&im->emails);
        strset_free(&im->balance_keys);
        free(im->phone_cache);
    }
    strset_free(&seen);
    free(cf);
    free(cards);
    free(customers);
    free(balances);
    free(im);
    return err;
}

/* ---------------------------------------------------------------- export */

/* Writes one CSV field (quoted when it must be) and a comma or newline. */
static void csv_field(kp_buf *b, const char *s, bool last)
{
    bool quote = s[0] == ' ' || (s[0] && s[strlen(s) - 1] == ' ');
    for (const char *p = s; *p && !quote; p++)
        quote = *p == ',' || *p == '"' || *p == '\n' || *p == '\r';
    if (quote) {
        kp_buf_puts(b, "\"");
        for (const char *p = s; *p; p++) {
            if (*p == '"') kp_buf_puts(b, "\"");
            kp_buf_append(b, p, 1);
        }
        kp_buf_puts(b, "\"");
    } else {
        kp_buf_puts(b, s);
    }
    kp_buf_puts(b, last ? "\n" : ",");
}

static void csv_time(kp_buf *b, kp_time t, bool last)
{
    char ts[32] = "";
    if (t && t != KP_TIME_NEVER) kp_time_format(t, ts, sizeof ts);
    csv_field(b, ts, last);
}

typedef struct export_ctx {
    kp_office *o;
    bool (*write)(void *ctx, const char *data, size_t len);
    void *ctx;
    kp_buf line;
    kp_err err;
    int64_t rows;
} export_ctx;

static bool flush_line(export_ctx *x)
{
    if (x->line.failed || !x->write(x->ctx, x->line.data, x->line.len)) {
        x->err = KP_ERR_NOMEM;
        return false;
    }
    kp_buf_reset(&x->line);
    x->rows++;
    return true;
}

static bool export_customer(void *arg, const kp_customer_row *row)
{
    export_ctx *x = arg;
    kp_office *o = x->o;
    kp_buf *b = &x->line;
    char name[KP_NAME_MAX + 1] = "", phone[KP_PHONE_MAX + 1] = "", email[KP_EMAIL_MAX + 1] = "",
                            birthday[16] = "", attrs[KP_ATTRS_JSON_MAX + 1] = "";
    if ((row->name.len && kp_pii_open(o->pii, KP_PII_NAME, row->name.data, row->name.len, name,
                                      sizeof name, NULL)) ||
        (row->phone.len && kp_pii_open(o->pii, KP_PII_PHONE, row->phone.data, row->phone.len, phone,
                                       sizeof phone, NULL)) ||
        (row->email.len && kp_pii_open(o->pii, KP_PII_EMAIL, row->email.data, row->email.len, email,
                                       sizeof email, NULL)) ||
        (row->birthday.len && kp_pii_open(o->pii, KP_PII_BIRTHDAY, row->birthday.data,
                                          row->birthday.len, birthday, sizeof birthday, NULL)) ||
        (row->attributes_len && kp_pii_open(o->pii, KP_PII_ATTRIBUTES, row->attributes,
                                            row->attributes_len, attrs, sizeof attrs, NULL))) {
        x->err = KP_ERR_INTERNAL;
        return false;
    }
    kp_card_info cards[16];
    size_t n = 0;
    if (o->st->ops->people->cards_of_customer(o->st, row->id, cards, 16, &n) != KP_OK ||
        o->st->ops->account_load(o->st, row->account_id, &o->sc->account) != KP_OK) {
        x->err = KP_ERR_IO;
        return false;
    }
    char num[32];
    snprintf(num, sizeof num, "%lld", (long long)row->id);
    csv_field(b, num, false);
    csv_field(b, row->external_id, false);
    csv_field(b, row->state == KP_CUSTOMER_ERASED ? "erased" : "active", false);
    csv_field(b, name, false);
    csv_field(b, phone, false);
    csv_field(b, email, false);
    csv_field(b, birthday, false);
    char list[16 * KP_STR_MAX] = "";
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        if (cards[i].state != KP_CARD_REPLACED)
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", len ? ";" : "",
                                    cards[i].number);
    csv_field(b, list, false);
    snprintf(num, sizeof num, "%lld", (long long)row->account_id);
    csv_field(b, num, false);
    snprintf(num, sizeof num, "%lld", (long long)o->sc->account.balance);
    csv_field(b, num, false);
    csv_time(b, row->consent_at, false);
    csv_field(b, row->consent_version, false);
    csv_time(b, row->created_at, o->policy->n_attributes == 0);
    json_t *a = attrs[0] ? json_loads(attrs, 0, NULL) : NULL;
    for (size_t i = 0; i < o->policy->n_attributes; i++) {
        json_t *v = a ? json_object_get(a, o->policy->attributes[i].name) : NULL;
        char text[KP_STR_MAX] = "";
        if (json_is_string(v))
            snprintf(text, sizeof text, "%s", json_string_value(v));
        else if (json_is_integer(v))
            snprintf(text, sizeof text, "%lld", (long long)json_integer_value(v));
        else if (json_is_boolean(v))
            snprintf(text, sizeof text, "%s", json_is_true(v) ? "true" : "false");
        csv_field(b, text, i + 1 == o->policy->n_attributes);
    }
    json_decref(a);
    sodium_memzero(name, sizeof name);
    sodium_memzero(phone, sizeof phone);
    sodium_memzero(email, sizeof email);
    return flush_line(x);
}

kp_err kp_export_customers(kp_office *o, bool (*write)(void *ctx, const char *data, size_t len),
                           void *ctx, int64_t *rows, kp_error *e)
{
    *rows = 0;
    kp_err err = kp_office_require(o, KP_PERM_EXPORT_CUSTOMERS, e);
    if (err == KP_OK) err = people_need_key(o, e);
    if (err) return err;
    export_ctx x = {.o = o, .write = write, .ctx = ctx};
    kp_buf_init(&x.line, 64 * 1024);
    kp_buf_puts(&x.line, "id,external_id,state,full_name,phone,email,birthday,cards,account_id,"
                         "balance,consent_at,consent_version,registered_at");
    for (size_t i = 0; i < o->policy->n_attributes; i++)
        kp_buf_printf(&x.line, ",attr.%s", o->policy->attributes[i].name);
    kp_buf_puts(&x.line, "\n");
    if (flush_line(&x)) err = o->st->ops->people->customers_each(o->st, export_customer, &x);
    kp_buf_release(&x.line);
    if (err == KP_OK) err = x.err;
    if (err == KP_ERR_INTERNAL) /* an operating error, not a bug: 503 with the reason */
        return kp_error_set(e, KP_ERR_IO, "key",
                            "the export failed: personal data cannot be opened with the key file "
                            "DB.key (sealed with another key); put back the key file it was "
                            "written with");
    if (err) return kp_error_set(e, err, "", "the export failed: storage or memory");
    *rows = x.rows - 1;
    return KP_OK;
}

static bool export_balance(void *arg, const kp_balance_row *r)
{
    export_ctx *x = arg;
    kp_buf_printf(&x->line, "%s,%s,%s,%lld,", r->card, kp_card_state_name(r->state),
                  r->registered ? "true" : "false", (long long)r->account_id);
    if (r->customer_id) kp_buf_printf(&x->line, "%lld", (long long)r->customer_id);
    kp_buf_printf(&x->line, ",%lld,%lld\n", (long long)r->balance, (long long)r->debt);
    return flush_line(x);
}

kp_err kp_export_balances(kp_office *o, bool (*write)(void *ctx, const char *data, size_t len),
                          void *ctx, int64_t *rows, kp_error *e)
{
    *rows = 0;
    kp_err err = kp_office_require(o, KP_PERM_EXPORT_BALANCES, e);
    if (err) return err;
    export_ctx x = {.o = o, .write = write, .ctx = ctx};
    kp_buf_init(&x.line, 4096);
    kp_buf_puts(&x.line, "card,state,registered,account_id,customer_id,balance,debt\n");
    if (flush_line(&x)) err = o->st->ops->people->balances_each(o->st, export_balance, &x);
    kp_buf_release(&x.line);
    if (err == KP_OK) err = x.err;
    if (err) return kp_error_set(e, err, "", "the export failed");
    *rows = x.rows - 1;
    return KP_OK;
}
