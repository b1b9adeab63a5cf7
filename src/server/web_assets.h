/*
 * web_assets.h: the pages (web/), embedded in the binary at build time by
 * web/build.mjs: the customer cabinet at "/", the cashier page at "/till",
 * the back office at "/office" and their files under "/assets/". A build
 * with -DKOPILKA_WEB=OFF has none, and the pages answer 404 saying so.
 */
#ifndef KOPILKA_WEB_ASSETS_H
#define KOPILKA_WEB_ASSETS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct kp_web_asset {
    const char *path;         /* "/", "/till", "/assets/office-7566WOLT.js" */
    const char *type;         /* Content-Type */
    const unsigned char *data;
    size_t len;
    const unsigned char *gz;  /* gzip'd bytes, or NULL when they would not save */
    size_t gz_len;
    const char *etag;         /* "\"<16 hex of SHA-256>\"" */
    bool immutable;           /* a hashed asset name: cached for a year */
} kp_web_asset;

extern const kp_web_asset kp_web_assets[];
extern const size_t kp_web_assets_count;

#endif
