/*
 * http_openapi.c: GET /v1/openapi.json (docs/api.md "OpenAPI"): the OpenAPI
 * 3 description of every route, docs/openapi.json as it was at build time
 * (CMakeLists.txt compiles it into the binary, as it does the demo
 * program), so the server never reads it from disk. No credentials.
 */
#include "server.h"

#include <string.h>

extern const char kp_openapi_json[];
extern const size_t kp_openapi_json_len;

bool kp_http_openapi(const char *method, const char *url, kp_http_answer *answer)
{
    if (strcmp(url, "/v1/openapi.json") != 0) return false;
    kp_buf *out = answer->body;
    if (strcmp(method, "GET") != 0) {
        kp_error e;
        kp_error_set(&e, KP_ERR_INVALID, "", "use GET for this route");
        answer->status = kp_http_error(out, 405, "method_not_allowed", &e);
        return true;
    }
    kp_buf_reset(out);
    if (!kp_buf_append(out, kp_openapi_json, kp_openapi_json_len)) {
        kp_error e;
        kp_error_set(&e, KP_ERR_NOMEM, "", "out of memory");
        answer->status = kp_http_error(out, 503, "unavailable", &e);
        return true;
    }
    answer->status = 200;
    return true;
}
