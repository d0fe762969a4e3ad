/* test_cron: cron expressions and intervals, their next ticks in UTC and
 * across DST in Europe/Berlin and America/New_York, Feb 29, the Vixie
 * day-of-month/day-of-week rule, and errors that name the field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cron.h"

/* "2026-03-29T01:00:00Z" -> time_t */
static time_t at(const char *iso)
{
    struct tm tm = {0};
    if (!strptime(iso, "%Y-%m-%dT%H:%M:%SZ", &tm))
        fail_msg("bad time %s", iso);
    return timegm(&tm);
}

static const char *iso(time_t t, char *buf)
{
    struct tm tm;
    if (t < 0)
        return "none";
    gmtime_r(&t, &tm);
    strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

/* Asserts that expr in tz, after `after`, ticks at each of the times given
 * (NULL-terminated), one after the other. */
static void ticks(const char *expr, const char *tz, const char *after, ...)
{
    char err[CRON_ERR_MAX], a[32], b[32];
    cron_t *c = cron_parse(expr, tz, err, sizeof err);
    if (!c)
        fail_msg("%s: %s", expr, err);
    time_t t = at(after);
    va_list ap;
    va_start(ap, after);
    for (const char *want; (want = va_arg(ap, const char *));) {
        t = cron_next(c, t);
        if (strcmp(iso(t, a), want) != 0)
            fail_msg("%s (%s) after %s: got %s, want %s", expr, tz ? tz : "UTC", after, a, want);
        iso(t, b);
    }
    va_end(ap);
    cron_free(c);
}

/* Asserts that parsing fails with a message starting with want. */
static void bad(const char *expr, const char *tz, const char *want)
{
    char err[CRON_ERR_MAX];
    cron_t *c = cron_parse(expr, tz, err, sizeof err);
    if (c)
        fail_msg("\"%s\" parsed, expected: %s", expr, want);
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("\"%s\": got \"%s\", want \"%s...\"", expr, err, want);
}

static void test_fields(void **state)
{
    (void)state;
    ticks("*/15 * * * *", NULL, "2026-01-01T00:07:00Z", "2026-01-01T00:15:00Z", "2026-01-01T00:30:00Z", NULL);
    ticks("0 8-18/4 * * *", NULL, "2026-01-01T09:00:00Z", "2026-01-01T12:00:00Z", "2026-01-01T16:00:00Z",
          "2026-01-02T08:00:00Z", NULL);
    ticks("5,10-12 0 * * *", NULL, "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z", "2026-01-01T00:10:00Z",
          "2026-01-01T00:11:00Z", "2026-01-01T00:12:00Z", "2026-01-02T00:05:00Z", NULL);
    /* names, any case; 2026-01-01 is a Thursday */
    ticks("0 9 * jan,Mar MON-fri", NULL, "2026-01-01T10:00:00Z", "2026-01-02T09:00:00Z", "2026-01-05T09:00:00Z",
          NULL);
    ticks("0 9 * FEB *", NULL, "2026-01-01T00:00:00Z", "2026-02-01T09:00:00Z", NULL);
    /* "A/S": from A to the end of the field; day-of-week 7 is Sunday */
    ticks("50/5 0 * * *", NULL, "2026-01-01T00:00:00Z", "2026-01-01T00:50:00Z", "2026-01-01T00:55:00Z",
          "2026-01-02T00:50:00Z", NULL);
    ticks("0 0 * * 7", NULL, "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z", NULL);
    /* six fields: seconds first */
    ticks("*/20 * * * * *", NULL, "2026-01-01T00:00:05Z", "2026-01-01T00:00:20Z", "2026-01-01T00:00:40Z",
          "2026-01-01T00:01:00Z", NULL);
    ticks("30 0 12 * * *", NULL, "2026-01-01T12:00:30Z", "2026-01-02T12:00:30Z", NULL);
    /* at a tick, the next is strictly after it */
    ticks("0 * * * *", NULL, "2026-01-01T05:00:00Z", "2026-01-01T06:00:00Z", NULL);
}

static void test_macros_and_intervals(void **state)
{
    (void)state;
    ticks("@hourly", NULL, "2026-01-01T00:30:00Z", "2026-01-01T01:00:00Z", NULL);
    ticks("@daily", NULL, "2026-01-01T00:30:00Z", "2026-01-02T00:00:00Z", NULL);
    ticks("@midnight", NULL, "2026-01-01T00:30:00Z", "2026-01-02T00:00:00Z", NULL);
    ticks("@weekly", NULL, "2026-01-01T00:30:00Z", "2026-01-04T00:00:00Z", NULL);
    ticks("@monthly", NULL, "2026-01-15T00:00:00Z", "2026-02-01T00:00:00Z", NULL);
    ticks("@yearly", NULL, "2026-01-15T00:00:00Z", "2027-01-01T00:00:00Z", NULL);
    ticks("@annually", NULL, "2026-01-15T00:00:00Z", "2027-01-01T00:00:00Z", NULL);
    /* a macro in a zone: midnight local */
    ticks("@daily", "America/New_York", "2026-01-01T00:00:00Z", "2026-01-01T05:00:00Z", NULL);
    /* intervals: multiples of the interval since the epoch, whatever the zone */
    ticks("@every 1s", NULL, "2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z", "2026-01-01T00:00:02Z", NULL);
    ticks("@every 90s", "Europe/Berlin", "2026-01-01T00:00:00Z", "2026-01-01T00:01:30Z", "2026-01-01T00:03:00Z",
          NULL);
    ticks("@every 1h30m", NULL, "2026-01-01T00:00:01Z", "2026-01-01T01:30:00Z", "2026-01-01T03:00:00Z", NULL);
    char err[CRON_ERR_MAX];
    assert_int_equal(cron_parse_every("2d", err, sizeof err), 172800);
    assert_int_equal(cron_parse_every("1h1m1s", err, sizeof err), 3661);
    cron_t *c = cron_parse("@every 5m", NULL, err, sizeof err);
    assert_non_null(c);
    assert_int_equal(cron_interval(c), 300);
    cron_free(c);
}

/* Feb 29 comes in leap years only; 2100 is not one. */
static void test_feb29(void **state)
{
    (void)state;
    ticks("0 0 29 2 *", NULL, "2026-03-01T00:00:00Z", "2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z", NULL);
    ticks("0 0 29 2 *", NULL, "2096-03-01T00:00:00Z", "2104-02-29T00:00:00Z", NULL);
}

/* Vixie cron: both day fields restricted -> either matches; one of them
 * starting with '*' -> both must. 2026-02-01 is a Sunday, the 13th a Friday. */
static void test_dom_dow(void **state)
{
    (void)state;
    ticks("0 0 13 * FRI", NULL, "2026-02-01T12:00:00Z", "2026-02-06T00:00:00Z", "2026-02-13T00:00:00Z",
          "2026-02-20T00:00:00Z", NULL);
    ticks("0 0 13 * *", NULL, "2026-02-01T12:00:00Z", "2026-02-13T00:00:00Z", "2026-03-13T00:00:00Z", NULL);
    ticks("0 0 */2 * FRI", NULL, "2026-02-01T12:00:00Z", "2026-02-13T00:00:00Z", "2026-02-27T00:00:00Z", NULL);
    ticks("0 0 * * MON", NULL, "2026-02-01T12:00:00Z", "2026-02-02T00:00:00Z", NULL);
    /* day 31 in a month without it is skipped */
    ticks("0 0 31 * *", NULL, "2026-01-31T12:00:00Z", "2026-03-31T00:00:00Z", NULL);
}

/* Europe/Berlin 2026: 02:00 CET -> 03:00 CEST on 03-29 (01:00Z); 03:00 CEST
 * -> 02:00 CET on 10-25 (01:00Z). */
static void test_dst_berlin(void **state)
{
    (void)state;
    const char *z = "Europe/Berlin";
    /* 02:30 does not exist on 03-29: it fires at the jump, then 02:30 CEST */
    ticks("30 2 * * *", z, "2026-03-28T02:00:00Z", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z", NULL);
    /* every 15 min: the skipped hour collapses into one tick at the jump */
    ticks("*/15 * * * *", z, "2026-03-29T00:30:00Z", "2026-03-29T00:45:00Z", "2026-03-29T01:00:00Z",
          "2026-03-29T01:15:00Z", NULL);
    ticks("0 3 * * *", z, "2026-03-28T12:00:00Z", "2026-03-29T01:00:00Z", "2026-03-30T01:00:00Z", NULL);
    /* 02:30 happens twice on 10-25: once, at the first (CEST, 00:30Z) */
    ticks("30 2 * * *", z, "2026-10-24T12:00:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z", NULL);
    /* hourly: the repeated 02:00 (01:00Z) does not fire again */
    ticks("0 * * * *", z, "2026-10-24T23:30:00Z", "2026-10-25T00:00:00Z", "2026-10-25T02:00:00Z", NULL);
    /* asked from inside the second pass: the next is after it */
    ticks("30 2 * * *", z, "2026-10-25T01:10:00Z", "2026-10-26T01:30:00Z", NULL);
    /* midnight local, winter and summer */
    ticks("0 0 * * *", z, "2026-01-10T12:00:00Z", "2026-01-10T23:00:00Z", NULL);
    ticks("0 0 * * *", z, "2026-07-10T12:00:00Z", "2026-07-10T22:00:00Z", NULL);
}

/* America/New_York 2026: 02:00 EST -> 03:00 EDT on 03-08 (07:00Z); 02:00 EDT
 * -> 01:00 EST on 11-01 (06:00Z). */
static void test_dst_new_york(void **state)
{
    (void)state;
    const char *z = "America/New_York";
    ticks("30 2 * * *", z, "2026-03-07T12:00:00Z", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z", NULL);
    ticks("30 1 * * *", z, "2026-10-31T12:00:00Z", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z", NULL);
    ticks("0 9 * * MON-FRI", z, "2026-03-06T15:00:00Z", "2026-03-09T13:00:00Z", NULL);

    /* a walk over the fall-back night: 01:00 and 01:30 EST are not ticks */
    char err[CRON_ERR_MAX], a[32];
    cron_t *c = cron_parse("*/30 * * * *", z, err, sizeof err);
    assert_non_null(c);
    time_t out[10], next;
    long count;
    int trunc;
    int n = cron_walk(c, at("2026-11-01T04:30:00Z"), at("2026-11-01T07:30:00Z"), out, 10, &count, &trunc, &next);
    assert_int_equal(n, 5);
    assert_int_equal(count, 5);
    assert_int_equal(trunc, 0);
    const char *want[] = {"2026-11-01T04:30:00Z", "2026-11-01T05:00:00Z", "2026-11-01T05:30:00Z",
                          "2026-11-01T07:00:00Z", "2026-11-01T07:30:00Z"};
    for (int i = 0; i < 5; i++)
        assert_string_equal(iso(out[i], a), want[i]);
    assert_string_equal(iso(next, a), "2026-11-01T08:00:00Z");
    cron_free(c);
}

static void test_walk_bounds(void **state)
{
    (void)state;
    char err[CRON_ERR_MAX], a[32];
    cron_t *c = cron_parse("@every 1s", NULL, err, sizeof err);
    time_t t0 = at("2026-01-01T00:00:00Z"), out[100], next;
    long count;
    int trunc;
    /* 1000 ticks, the last 100 kept */
    int n = cron_walk(c, t0, t0 + 999, out, 100, &count, &trunc, &next);
    assert_int_equal(n, 100);
    assert_int_equal(count, 1000);
    assert_int_equal(trunc, 0);
    assert_true(out[0] == t0 + 900 && out[99] == t0 + 999 && next == t0 + 1000);
    /* a dense span past CRON_WALK_MAX ticks: its start, then its end */
    n = cron_walk(c, t0, t0 + 10 * CRON_WALK_MAX, out, 100, &count, &trunc, &next);
    assert_int_equal(trunc, 1);
    assert_int_equal(count, 2 * CRON_WALK_MAX);
    assert_true(out[0] == t0 + 10 * CRON_WALK_MAX - 99 && out[99] == t0 + 10 * CRON_WALK_MAX);
    cron_free(c);
    /* a sparse one over a long span: walked whole (a yearly tick 11 months late) */
    c = cron_parse("0 0 1 1 *", NULL, err, sizeof err);
    n = cron_walk(c, at("2026-01-01T00:00:00Z"), at("2026-12-02T00:00:00Z"), out, 100, &count, &trunc, &next);
    assert_int_equal(n, 1);
    assert_int_equal(count, 1);
    assert_int_equal(trunc, 0);
    assert_string_equal(iso(out[0], a), "2026-01-01T00:00:00Z");
    assert_string_equal(iso(next, a), "2027-01-01T00:00:00Z");
    /* from after until: nothing */
    n = cron_walk(c, t0 + 5, t0, out, 100, &count, &trunc, &next);
    assert_int_equal(n, 0);
    assert_int_equal(count, 0);
    assert_string_equal(iso(next, a), "2026-01-01T00:00:05Z");
    cron_free(c);
}

static void test_errors(void **state)
{
    (void)state;
    bad("61 * * * *", NULL, "minute: 61 is out of range 0-59");
    bad("* 24 * * *", NULL, "hour: 24 is out of range 0-23");
    bad("* * 0 * *", NULL, "day-of-month: 0 is out of range 1-31");
    bad("* * * 13 *", NULL, "month: 13 is out of range 1-12");
    bad("* * * * 8", NULL, "day-of-week: 8 is out of range 0-7");
    bad("60 * * * * *", NULL, "second: 60 is out of range 0-59");
    bad("* * * FOO *", NULL, "month: unknown name \"FOO\"");
    bad("* * * * FRIDAY", NULL, "day-of-week: unknown name \"FRIDAY\"");
    bad("* * * * FRI-MON", NULL, "day-of-week: range FRI-MON starts after it ends");
    bad("*/0 * * * *", NULL, "minute: step \"0\" must be from 1 to 60");
    bad("* */x * * *", NULL, "hour: step");
    bad("1,,2 * * * *", NULL, "minute: empty item");
    bad("5- * * * *", NULL, "minute: expected a number");
    bad("0 12 L * *", NULL, "day-of-month: \"L\" is not a number");
    bad("a * * * *", NULL, "minute: \"a\" is not a number");
    bad("5x * * * *", NULL, "minute: unexpected \"x\"");
    bad("* * * *", NULL, "cron: expected 5 fields");
    bad("* * * * * * *", NULL, "cron: expected 5 fields");
    bad("", NULL, "cron: must be 1 to");
    bad("@reboot", NULL, "cron: unknown macro \"@reboot\"");
    bad("@daily extra", NULL, "cron: unknown macro");
    bad("0 0 30 2 *", NULL, "day-of-month: no selected month");
    bad("0 0 31 4,6 *", NULL, "day-of-month: no selected month");
    bad("@every 0s", NULL, "every: the interval must be at least 1s");
    bad("@every 5", NULL, "every: \"5\": a number needs a unit");
    bad("@every 5x", NULL, "every: \"5x\": a number needs a unit");
    bad("@every 400d", NULL, "every: \"400d\" is longer than 366 days");
    bad("@every h", NULL, "every: expected a number");
    bad("* * * * *", "Mars/Olympus", "tz: unknown time zone \"Mars/Olympus\"");
    bad("* * * * *", "../../etc/passwd", "tz: \"../../etc/passwd\" is not a time zone name");
    bad("* * * * *", "/etc/localtime", "tz: \"/etc/localtime\" is not a time zone name");
    /* Feb 30 with a day of week restricted too: either matches, so it fires */
    char err[CRON_ERR_MAX];
    cron_t *c = cron_parse("0 0 30 2 MON", NULL, err, sizeof err);
    assert_non_null(c);
    cron_free(c);
}

/* The zone is applied around the computation only. */
static void test_tz_restored(void **state)
{
    (void)state;
    char err[CRON_ERR_MAX];
    cron_t *c = cron_parse("0 0 * * *", "Asia/Tokyo", err, sizeof err);
    assert_non_null(c);
    setenv("TZ", "America/New_York", 1);
    (void)cron_next(c, 0);
    assert_string_equal(getenv("TZ"), "America/New_York");
    unsetenv("TZ");
    (void)cron_next(c, 0);
    assert_null(getenv("TZ"));
    cron_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields),     cmocka_unit_test(test_macros_and_intervals),
        cmocka_unit_test(test_feb29),      cmocka_unit_test(test_dom_dow),
        cmocka_unit_test(test_dst_berlin), cmocka_unit_test(test_dst_new_york),
        cmocka_unit_test(test_walk_bounds), cmocka_unit_test(test_errors),
        cmocka_unit_test(test_tz_restored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
