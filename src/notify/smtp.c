/*
 * smtp.c: e-mail over SMTP with libcurl: STARTTLS and auth as configured,
 * MIME made with curl_mime (multipart/alternative of text/plain and
 * text/html, UTF-8, quoted-printable), the Subject and a non-ASCII sender
 * name as RFC 2047 encoded words, Message-ID "<message key@host of from>"
 * (the idempotency key), List-Unsubscribe with one-click (RFC 8058) when
 * the message has an unsubscribe link. A 5xx answer to RCPT or DATA is
 * permanent; 4xx, connection and timeouts are temporary.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "notify/send_int.h"

enum { SMTP_HEADER_MAX = 990 }; /* RFC 5322 2.1.1: lines of at most 998 bytes */

static bool is_ascii_printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e) return false;
    return true;
}

/* RFC 2047 "B" encoded words for a UTF-8 text, space-separated, each at
 * most 75 characters and never splitting a character. */
static bool encode_words(kp_buf *out, const char *text)
{
    const unsigned char *p = (const unsigned char *)text;
    size_t len = strlen(text);
    while (len > 0) {
        size_t take = len < 45 ? len : 45; /* 45 bytes -> 60 base64 characters */
        while (take < len && take > 0 && (p[take] & 0xC0) == 0x80) take--;
        char b64[64];
        sodium_bin2base64(b64, sizeof b64, p, take, sodium_base64_VARIANT_ORIGINAL);
        kp_buf_printf(out, "%s=?UTF-8?B?%s?=", (const char *)p == text ? "" : " ", b64);
        p += take;
        len -= take;
    }
    return !out->failed;
}

/* The address inside "Name <addr>", or the whole text. */
static void address_of(const char *from, char *out, size_t size)
{
    const char *lt = strrchr(from, '<'), *gt = lt ? strchr(lt, '>') : NULL;
    if (lt && gt)
        snprintf(out, size, "%.*s", (int)(gt - lt - 1), lt + 1);
    else
        snprintf(out, size, "%s", from);
}

/* "From:"-style value: the display name encoded when it is not ASCII. */
static bool mailbox_header(struct curl_slist **h, const char *name, const char *mailbox)
{
    const char *lt = strrchr(mailbox, '<');
    if (lt == NULL || is_ascii_printable(mailbox)) return send_header(h, "%s: %s", name, mailbox);
    char display[256];
    size_t n = (size_t)(lt - mailbox);
    while (n > 0 && mailbox[n - 1] == ' ') n--;
    snprintf(display, sizeof display, "%.*s", (int)n, mailbox);
    kp_buf b;
    kp_buf_init(&b, SMTP_HEADER_MAX);
    bool ok = encode_words(&b, display) && send_header(h, "%s: %s %s", name, b.data, lt);
    kp_buf_release(&b);
    return ok;
}

/* RFC 5322 date of t, in UTC, without the locale. */
static void rfc5322_date(kp_time t, char *out, size_t size)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    snprintf(out, size, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* The headers of the message; false when one cannot be made. */
static bool build_headers(kp_sender *s, const kp_outgoing *o, const char *message_id,
                          struct curl_slist **h)
{
    const kp_notify_config *c = &s->cfg;
    char date[64];
    rfc5322_date(s->now, date, sizeof date);
    kp_buf subject;
    kp_buf_init(&subject, SMTP_HEADER_MAX);
    const char *subj = o->subject ? o->subject : "";
    bool ok = is_ascii_printable(subj) ? kp_buf_puts(&subject, subj) : encode_words(&subject, subj);
    if (subject.data == NULL) kp_buf_puts(&subject, "");
    ok = ok && send_header(h, "Date: %s", date) && mailbox_header(h, "From", c->email.from) &&
         send_header(h, "To: <%s>", o->to) &&
         (c->email.reply_to[0] == '\0' || mailbox_header(h, "Reply-To", c->email.reply_to)) &&
         send_header(h, "Subject: %s", subject.data) &&
         send_header(h, "Message-ID: %s", message_id);
    if (ok && o->unsubscribe_url[0]) {
        ok = send_header(h, "List-Unsubscribe: <%s>", o->unsubscribe_url) &&
             send_header(h, "List-Unsubscribe-Post: List-Unsubscribe=One-Click");
    }
    kp_buf_release(&subject);
    return ok;
}

static bool add_text_part(curl_mime *mime, const char *text, const char *type)
{
    curl_mimepart *part = curl_mime_addpart(mime);
    return part && curl_mime_data(part, text, CURL_ZERO_TERMINATED) == CURLE_OK &&
           curl_mime_type(part, type) == CURLE_OK &&
           curl_mime_encoder(part, "quoted-printable") == CURLE_OK;
}

/* The body: multipart/alternative of the text and the HTML (the text alone
 * when there is no HTML), inside the top multipart curl makes. */
static curl_mime *build_body(CURL *curl, const kp_outgoing *o)
{
    curl_mime *top = curl_mime_init(curl);
    if (top == NULL) return NULL;
    const char *text = o->text ? o->text : "";
    bool ok;
    if (o->html == NULL || o->html[0] == '\0') {
        ok = add_text_part(top, text, "text/plain; charset=UTF-8");
    } else {
        curl_mime *alt = curl_mime_init(curl);
        curl_mimepart *part = curl_mime_addpart(top);
        ok = alt && part && add_text_part(alt, text, "text/plain; charset=UTF-8") &&
             add_text_part(alt, o->html, "text/html; charset=UTF-8");
        if (ok && curl_mime_subparts(part, alt) == CURLE_OK) {
            ok = curl_mime_type(part, "multipart/alternative") == CURLE_OK;
        } else {
            curl_mime_free(alt);
            ok = false;
        }
    }
    if (!ok) {
        curl_mime_free(top);
        return NULL;
    }
    return top;
}

void send_smtp(kp_sender *s, const kp_outgoing *o, kp_send_result *r)
{
    const kp_notify_config *c = &s->cfg;
    CURL *curl = s->curl;
    char from_addr[256], host[256] = "localhost", envelope_from[260], rcpt[KP_EMAIL_MAX + 3];
    char message_id[KP_NOTIFY_KEY_MAX + 260];
    if (o->to[0] == '\0' || strchr(o->to, '@') == NULL || strpbrk(o->to, "<>\r\n \t,") ||
        !is_ascii_printable(o->to)) {
        send_fail(r, true, "the recipient is not one e-mail address");
        return;
    }
    address_of(c->email.from, from_addr, sizeof from_addr);
    const char *at = strrchr(from_addr, '@');
    if (at && at[1]) snprintf(host, sizeof host, "%s", at + 1);
    snprintf(envelope_from, sizeof envelope_from, "<%s>", from_addr);
    snprintf(rcpt, sizeof rcpt, "<%s>", o->to);
    snprintf(message_id, sizeof message_id, "<%s@%s>", o->m->key, host);

    struct curl_slist *headers = NULL, *rcpts = NULL;
    curl_mime *mime = NULL;
    if (!build_headers(s, o, message_id, &headers) || !send_header(&rcpts, "%s", rcpt) ||
        (mime = build_body(curl, o)) == NULL) {
        send_fail(r, true, "the message's headers or body cannot be made (too long?)");
        goto out;
    }
    s->errbuf[0] = '\0';
    curl_easy_setopt(curl, CURLOPT_URL, c->email.url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, (long)c->email.timeout_seconds);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, (long)c->email.timeout_seconds);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, s->errbuf);
    curl_easy_setopt(curl, CURLOPT_USE_SSL,
                     c->email.starttls == 2   ? (long)CURLUSESSL_ALL
                     : c->email.starttls == 1 ? (long)CURLUSESSL_TRY
                                              : (long)CURLUSESSL_NONE);
    if (c->email.username[0]) {
        curl_easy_setopt(curl, CURLOPT_USERNAME, c->email.username);
        curl_easy_setopt(curl, CURLOPT_PASSWORD, c->email.password);
    }
    curl_easy_setopt(curl, CURLOPT_MAIL_FROM, envelope_from);
    curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, rcpts);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_MIMEPOST, mime);
    CURLcode rc = curl_easy_perform(curl);
    long code = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, NULL);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(curl, CURLOPT_MIMEPOST, NULL);
    if (rc == CURLE_OK) {
        r->ok = true;
        /* The Message-ID is the provider's id, when it fits the column. */
        if (strlen(message_id) < sizeof r->provider_id)
            memcpy(r->provider_id, message_id, strlen(message_id) + 1);
        goto out;
    }
    /* A refused login or sender is the configuration's fault, not the
     * recipient's: retried, so fixing the file lets the message go. */
    bool sender_side = rc == CURLE_LOGIN_DENIED || strncmp(s->errbuf, "MAIL failed", 11) == 0;
    bool permanent = !sender_side && code >= 500 && code < 600;
    send_fail(r, permanent, "SMTP %ld: %s%s%s", code, curl_easy_strerror(rc),
              s->errbuf[0] ? ": " : "", s->errbuf);
out:
    curl_mime_free(mime);
    curl_slist_free_all(headers);
    curl_slist_free_all(rcpts);
}
