/*
 * test_caps_ndebug.c: the money invariants stay checked in a release build.
 * This file and the core's ledger.c, money.c, error.c, check.c, clock.c and
 * program.c are compiled with -DNDEBUG (tests/CMakeLists.txt), as a shipped
 * build is, where every assert() is gone:
 *  - an unbalanced plan is still refused with KP_ERR_INTERNAL, naming the
 *    invariant;
 *  - kp_muldiv() still refuses an overflow: it logs the invariant's name
 *    and aborts (in a child process) instead of returning a wrong amount.
 */
#ifndef NDEBUG
#error "test_caps_ndebug.c must be compiled with -DNDEBUG: it proves the checks outlive it"
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kopilka/ledger.h>
#include <kopilka/money.h>

static void test_unbalanced_plan_is_refused_under_ndebug(void **state)
{
    (void)state;
    static kp_ledger_plan plan;
    memset(&plan, 0, sizeof plan);
    plan.account_id = 7;
    plan.n_postings = 2;
    plan.postings[0] = (kp_posting){7, 100};
    plan.postings[1] = (kp_posting){KP_SYS_ISSUED, -99};
    kp_error e = {0};
    assert_int_equal(kp_ledger_plan_check(&plan, &e), KP_ERR_INTERNAL);
    assert_string_equal(e.message, "internal error: the invariant \"ledger: the postings of one "
                                   "operation sum to zero\" did not hold; the operation was "
                                   "refused and nothing was written");
    plan.postings[1].points = -100;
    assert_int_equal(kp_ledger_plan_check(&plan, &e), KP_OK);
}

/* Runs kp_muldiv(value, num, den) in a child; returns its stderr in out and
 * whether it died of SIGABRT. */
static bool muldiv_aborts(int64_t value, int64_t num, int64_t den, char *out, size_t size)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        int64_t r = kp_muldiv(value, num, den, KP_ROUND_DOWN);
        printf("%lld\n", (long long)r);
        _exit(0);
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t got;
    while (n + 1 < size && (got = read(fds[0], out + n, size - 1 - n)) > 0) n += (size_t)got;
    out[n] = '\0';
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

static void test_muldiv_overflow_aborts_under_ndebug(void **state)
{
    (void)state;
    char err[512];
    assert_true(muldiv_aborts(INT64_MAX, 3, 2, err, sizeof err));
    assert_non_null(
        strstr(err, "kopilka: invariant failed: kp_muldiv: the result fits in 64 bits"));
    assert_true(muldiv_aborts(-5, 1, 1, err, sizeof err));
    assert_non_null(strstr(err, "kp_muldiv: value >= 0, num >= 0 and den > 0"));
    assert_false(muldiv_aborts(1000, 3, 2, err, sizeof err));
    assert_int_equal(kp_muldiv(1000, 3, 2, KP_ROUND_DOWN), 1500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unbalanced_plan_is_refused_under_ndebug),
        cmocka_unit_test(test_muldiv_overflow_aborts_under_ndebug),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
