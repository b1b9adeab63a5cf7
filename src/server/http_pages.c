/*
 * http_pages.c: serves the pages embedded from web/ (web_assets.h): the
 * customer cabinet at "/", the cashier page at "/till", the back office at
 * "/office" and their files under "/assets/". Answered in the event loop
 * from memory: no copy, no thread. Every page carries a strict
 * Content-Security-Policy (no inline script or style, nothing from another
 * origin), assets with hashed names are cached for a year, the index pages
 * revalidate by ETag, and a browser that takes gzip gets the compressed
 * bytes made at build time.
 */
#include "server.h"
#include "web_assets.h"

#include <string.h>
#include <strings.h>

const char kp_page_csp[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'";

/* The pages, each also with a trailing slash; described in docs/openapi.json. */
static const char *const pages[] = {"/", "/till", "/office"};

bool kp_http_is_page(const char *url)
{
    if (strncmp(url, "/assets/", 8) == 0) return true;
    size_t n = strlen(url);
    if (n > 1 && url[n - 1] == '/') n--;
    for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++)
        if (strlen(pages[i]) == n && strncmp(pages[i], url, n) == 0) return true;
    return false;
}

const kp_web_asset *kp_http_page_find(const char *url)
{
    char path[256];
    size_t n = strlen(url);
    if (n == 0 || n >= sizeof path) return NULL;
    memcpy(path, url, n + 1);
    if (n > 1 && path[n - 1] == '/' && strncmp(path, "/assets/", 8) != 0) path[n - 1] = '\0';
    for (size_t i = 0; i < kp_web_assets_count; i++)
        if (strcmp(kp_web_assets[i].path, path) == 0) return &kp_web_assets[i];
    return NULL;
}

size_t kp_http_pages_count(void)
{
    return kp_web_assets_count;
}

/* True when an Accept-Encoding header takes gzip (and does not refuse it
 * with q=0). */
bool kp_http_accepts_gzip(const char *accept_encoding)
{
    if (accept_encoding == NULL) return false;
    const char *p = accept_encoding;
    while (*p) {
        while (*p == ' ' || *p == ',') p++;
        const char *start = p;
        while (*p && *p != ',' && *p != ';' && *p != ' ') p++;
        size_t len = (size_t)(p - start);
        bool gzip = (len == 4 && strncasecmp(start, "gzip", 4) == 0) ||
                    (len == 1 && *start == '*');
        bool refused = false;
        while (*p && *p != ',') {
            if (*p == 'q' && p[1] == '=' && p[2] == '0' &&
                (p[3] == '\0' || p[3] == ',' || p[3] == ' ' ||
                 (p[3] == '.' && strspn(p + 4, "0") == strcspn(p + 4, ", "))))
                refused = true;
            p++;
        }
        if (gzip) return !refused;
    }
    return false;
}
