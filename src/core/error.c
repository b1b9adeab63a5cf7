/* error.c: error names and the user-facing error detail. */
#include <kopilka/kopilka.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const err_names[KP_ERR__COUNT] = {
    [KP_OK] = "ok",
    [KP_ERR_INVALID] = "invalid",
    [KP_ERR_NOT_FOUND] = "not_found",
    [KP_ERR_CONFLICT] = "conflict",
    [KP_ERR_LIMIT] = "limit",
    [KP_ERR_OVERFLOW] = "overflow",
    [KP_ERR_NOMEM] = "nomem",
    [KP_ERR_IO] = "io",
    [KP_ERR_BUSY] = "busy",
    [KP_ERR_UNAUTHORIZED] = "unauthorized",
    [KP_ERR_INTERNAL] = "internal",
    [KP_ERR_FORBIDDEN] = "forbidden",
};

const char *kp_err_name(kp_err err)
{
    if ((int)err < 0 || err >= KP_ERR__COUNT) return "unknown";
    return err_names[err];
}

kp_err kp_error_set(kp_error *e, kp_err code, const char *field, const char *fmt, ...)
{
    if (e == NULL) return code;
    e->code = code;
    snprintf(e->field, sizeof e->field, "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return code;
}

void kp_error_clear(kp_error *e)
{
    if (e) memset(e, 0, sizeof *e);
}
