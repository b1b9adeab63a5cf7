/* clock.c: the injectable clock and RFC 3339 parsing/formatting (UTC). */
#include <kopilka/clock.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

kp_time kp_clock_now(const kp_clock *clock)
{
    if (clock && clock->fixed) return clock->fixed;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (kp_time)ts.tv_sec;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * algorithm), so no timezone database or timegm() is involved. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int days_in_month(int64_t y, int m)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
    return dm[m - 1];
}

static bool digits(const char *p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return false;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return true;
}

bool kp_time_parse(const char *text, kp_time *out)
{
    int y, mo, d, h, mi, s;
    size_t len = strlen(text);
    if (len < 20) return false;
    if (!digits(text, 4, &y) || text[4] != '-' || !digits(text + 5, 2, &mo) || text[7] != '-' ||
        !digits(text + 8, 2, &d) || (text[10] != 'T' && text[10] != 't' && text[10] != ' ') ||
        !digits(text + 11, 2, &h) || text[13] != ':' || !digits(text + 14, 2, &mi) ||
        text[16] != ':' || !digits(text + 17, 2, &s))
        return false;
    if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 ||
        mi > 59 || s > 60)
        return false;
    const char *p = text + 19;
    if (*p == '.') {
        p++;
        int n = 0;
        while (*p >= '0' && *p <= '9' && n < 9) { p++; n++; }
        if (n == 0) return false;
    }
    int offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om) || oh > 23 || om > 59)
            return false;
        offset = (oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return false;
    }
    if (*p != '\0') return false;
    *out = days_from_civil(y, mo, d) * KP_DAY_SECONDS + h * 3600 + mi * 60 + s - offset;
    return true;
}

void kp_time_format(kp_time t, char *out, size_t out_size)
{
    int64_t days = t >= 0 ? t / KP_DAY_SECONDS : (t - (KP_DAY_SECONDS - 1)) / KP_DAY_SECONDS;
    int64_t secs = t - days * KP_DAY_SECONDS;
    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    snprintf(out, out_size, "%04lld-%02d-%02dT%02d:%02d:%02dZ", (long long)y, m, d,
             (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60));
}

kp_time kp_time_add_months(kp_time t, int months)
{
    int64_t days = t / KP_DAY_SECONDS, secs = t % KP_DAY_SECONDS;
    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    int64_t mi = y * 12 + (m - 1) + months;
    y = mi / 12;
    m = (int)(mi % 12) + 1;
    if (d > days_in_month(y, m)) d = days_in_month(y, m);
    return days_from_civil(y, m, d) * KP_DAY_SECONDS + secs;
}

void kp_time_to_civil(kp_time t, int *year, int *month, int *day)
{
    int64_t days = t >= 0 ? t / KP_DAY_SECONDS : (t - (KP_DAY_SECONDS - 1)) / KP_DAY_SECONDS;
    int64_t y;
    civil_from_days(days, &y, month, day);
    *year = (int)y;
}

kp_time kp_time_from_civil(int year, int month, int day)
{
    if (day > days_in_month(year, month)) day = days_in_month(year, month);
    return days_from_civil(year, month, day) * KP_DAY_SECONDS;
}
