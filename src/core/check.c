/* check.c: what a failed release-build invariant check does (check.h). */
#include <kopilka/check.h>

#include <stdio.h>
#include <stdlib.h>

_Noreturn void kp_check_abort(const char *name, const char *file, int line)
{
    fprintf(stderr, "kopilka: invariant failed: %s (%s:%d)\n", name, file, line);
    fflush(stderr);
    abort();
}

kp_err kp_check_fail(kp_error *e, const char *name, const char *file, int line)
{
    fprintf(stderr, "kopilka: invariant failed: %s (%s:%d); the operation is refused\n", name, file,
            line);
    return kp_error_set(e, KP_ERR_INTERNAL, "",
                        "internal error: the invariant \"%s\" did not hold; the operation was "
                        "refused and nothing was written",
                        name);
}
