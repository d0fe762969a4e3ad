/* test_junit: the JUnit reader on reports written by real tools (meson test
 * and ctest --output-junit, generated with them; pytest xunit2, Surefire with
 * reruns and go-junit-report as those tools write them) and on hostile input:
 * entity bombs, external entities, 50 MB files, malformed and truncated XML. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "junit.h"
#include "xalloc.h"

static char err[512];

/* A summary of the file tests/data/junit/<name>; fails the test on error. */
static junit_summary_t *sample(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", JUNIT_DATA_DIR, name);
    junit_summary_t *s = junit_summary_new();
    if (junit_parse_file(s, path, JUNIT_FILE_MAX_DEFAULT, err, sizeof err) < 0)
        fail_msg("%s: %s", name, err);
    return s;
}

static long count(const json_t *j, const char *key)
{
    return (long)json_integer_value(json_object_get(j, key));
}

/* "tests failures errors skipped flaky passed" of s */
static void expect_counts(const junit_summary_t *s, const char *want)
{
    json_t *j = junit_summary_json(s);
    char got[128];
    snprintf(got, sizeof got, "%ld %ld %ld %ld %ld %ld", count(j, "tests"), count(j, "failures"),
             count(j, "errors"), count(j, "skipped"), count(j, "flaky"), count(j, "passed"));
    json_decref(j);
    assert_string_equal(got, want);
}

/* "classname.name: message" of the i-th failed test */
static const char *failed_at(const junit_summary_t *s, size_t i)
{
    static char buf[1024];
    json_t *j = junit_summary_json(s);
    json_t *f = json_array_get(json_object_get(j, "failed"), i);
    snprintf(buf, sizeof buf, "%s.%s: %s", json_string_value(json_object_get(f, "classname")),
             json_string_value(json_object_get(f, "name")), json_string_value(json_object_get(f, "message")));
    json_decref(j);
    return f ? buf : "(none)";
}

static double time_s(const junit_summary_t *s)
{
    json_t *j = junit_summary_json(s);
    double t = json_real_value(json_object_get(j, "time_s"));
    json_decref(j);
    return t;
}

/* ---- reports of real tools ---- */

static void test_meson(void **state)
{
    (void)state;
    junit_summary_t *s = sample("meson-testlog.junit.xml");
    expect_counts(s, "3 1 0 1 0 1");
    /* meson writes an empty <failure/>: the message is the test's output */
    assert_string_equal(failed_at(s, 0), "tiny.subtracts: 2-1 != 3");
    char *line = junit_failed_line(s, 400);
    assert_string_equal(line, "1 test failed: tiny.subtracts");
    free(line);
    junit_summary_free(s);
}

static void test_ctest(void **state)
{
    (void)state;
    junit_summary_t *s = sample("ctest-output-junit.xml");
    /* disabled (status only) and SKIP_RETURN_CODE (<skipped/>) are both skipped */
    expect_counts(s, "4 1 0 2 0 1");
    assert_string_equal(failed_at(s, 0), "math.bad.math.bad: expected 3, got 4");
    junit_summary_free(s);
}

static void test_pytest_xunit2(void **state)
{
    (void)state;
    junit_summary_t *s = sample("pytest-xunit2.xml");
    expect_counts(s, "8 2 1 2 0 3");
    /* the message attribute, first line only */
    assert_string_equal(failed_at(s, 0), "tests.test_api.test_submit_rejects_bad_kind: AssertionError: assert 500 == 400");
    assert_string_equal(failed_at(s, 1),
                        "tests.test_parse.test_unicode[caf\\u00e9]: UnicodeDecodeError: 'ascii' codec can't "
                        "decode byte 0xc3 \xe2\x80\x94 \xc2\xab" "caf\xc3\xa9\xc2\xbb");
    assert_string_equal(failed_at(s, 2),
                        "tests.test_parse.test_fixture_db: failed on setup with \"ConnectionRefusedError: "
                        "[Errno 111] Connection refused\"");
    assert_true(time_s(s) > 0.410 && time_s(s) < 0.412);
    char *line = junit_failed_line(s, 400);
    assert_string_equal(line, "3 tests failed: tests.test_api.test_submit_rejects_bad_kind, "
                              "tests.test_parse.test_unicode[caf\\u00e9], tests.test_parse.test_fixture_db");
    free(line);
    line = junit_failed_line(s, 60); /* names capped, the count is not */
    assert_string_equal(line, "3 tests failed: tests.test_api.test_submit_rejects_bad_kind, ...");
    free(line);
    junit_summary_free(s);
}

static void test_surefire_reruns(void **state)
{
    (void)state;
    junit_summary_t *s = sample("surefire-flaky.xml");
    /* flakyFailure/flakyError then passed: passed and flaky; failure+rerunFailure,
     * rerunFailure alone: failed; rerunError alone: error */
    expect_counts(s, "7 2 1 1 2 3");
    assert_string_equal(failed_at(s, 0),
                        "com.example.billing.InvoiceServiceTest.roundsHalfEven: expected: <2.5> but was: <3>");
    assert_string_equal(failed_at(s, 1), "com.example.billing.InvoiceServiceTest.exportsPdf: timed out after 100 ms");
    assert_string_equal(failed_at(s, 2), "com.example.billing.InvoiceServiceTest.loadsFixtures: NullPointerException");
    assert_true(time_s(s) > 2.846 && time_s(s) < 2.848); /* "1,234.567" on the suite is not trusted */
    junit_summary_free(s);
}

/* The history rows: one per testcase, outcome words, flaky for a Surefire
 * rerun that passed, the message only where it failed. */
static void test_history_cases(void **state)
{
    (void)state;
    junit_summary_t *s = sample("surefire-flaky.xml");
    json_t *c = junit_cases_json(s);
    assert_int_equal(json_array_size(c), 7);
    char got[1024] = "";
    size_t i;
    json_t *row;
    json_array_foreach(c, i, row)
    {
        const char *t = json_string_value(json_object_get(row, "test"));
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s %s%s|", strrchr(t, ':') + 1,
                 json_string_value(json_object_get(row, "outcome")), json_object_get(row, "message") ? " m" : "");
    }
    assert_string_equal(got, "computesTotal passed|appliesDiscount flaky|talksToLedger flaky|roundsHalfEven failed m|"
                             "exportsPdf failed m|loadsFixtures error m|legacyFormat skipped|");
    assert_string_equal(json_string_value(json_object_get(json_array_get(c, 0), "test")),
                        "com.example.billing.InvoiceServiceTest::computesTotal");
    assert_int_equal(junit_cases_unrecorded(s), 0);
    json_decref(c);
    junit_summary_free(s);
}

/* Past JUNIT_HISTORY_MAX testcases the rest are counted, not kept. */
static void test_history_cap(void **state)
{
    (void)state;
    size_t n = JUNIT_HISTORY_MAX + 5, cap = n * 48 + 64, len = 0;
    char *xml = xmalloc(cap);
    len += (size_t)snprintf(xml + len, cap - len, "<testsuite>");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(xml + len, cap - len, "<testcase classname=\"c\" name=\"t%zu\"/>", i);
    len += (size_t)snprintf(xml + len, cap - len, "</testsuite>");
    junit_summary_t *s = junit_summary_new();
    assert_int_equal(junit_parse(s, xml, len, err, sizeof err), 0);
    json_t *c = junit_cases_json(s);
    assert_int_equal(json_array_size(c), JUNIT_HISTORY_MAX);
    assert_int_equal(junit_cases_unrecorded(s), 5);
    assert_int_equal(junit_tests(s), (long)n);
    json_decref(c);
    junit_summary_free(s);
    free(xml);
}

static void test_go_junit_report(void **state)
{
    (void)state;
    junit_summary_t *s = sample("go-junit-report.xml");
    expect_counts(s, "5 1 0 1 0 3");
    assert_string_equal(failed_at(s, 0), "example.com/devsys/queue.TestRetry/backoff_caps: Failed");
    junit_summary_free(s);
}

/* Several files add up; their combined XML is one document that reads back
 * to the same counts. */
static void test_several_files(void **state)
{
    (void)state;
    junit_summary_t *s = sample("meson-testlog.junit.xml");
    char path[512];
    snprintf(path, sizeof path, "%s/surefire-flaky.xml", JUNIT_DATA_DIR);
    assert_int_equal(junit_parse_file(s, path, JUNIT_FILE_MAX_DEFAULT, err, sizeof err), 0);
    expect_counts(s, "10 3 1 2 2 4");
    size_t len;
    char *xml = junit_summary_xml(s, &len);
    assert_non_null(xml);
    assert_int_equal(strlen(xml), len);
    junit_summary_t *again = junit_summary_new();
    assert_int_equal(junit_parse(again, xml, len, err, sizeof err), 0);
    expect_counts(again, "10 3 1 2 2 4");
    free(xml);
    junit_summary_free(again);
    junit_summary_free(s);
}

/* ---- hostile and broken input ---- */

/* Parses text; expects a refusal whose message contains want, and s unchanged. */
static void expect_refused(const char *text, size_t len, const char *want)
{
    junit_summary_t *s = sample("go-junit-report.xml");
    err[0] = '\0';
    assert_int_equal(junit_parse(s, text, len, err, sizeof err), -1);
    if (!strstr(err, want))
        fail_msg("error \"%s\" does not contain \"%s\"", err, want);
    expect_counts(s, "5 1 0 1 0 3");
    junit_summary_free(s);
}

static char *slurp(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", JUNIT_DATA_DIR, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = xmalloc(1 << 16);
    *len = fread(buf, 1, (1 << 16) - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

static void test_entity_expansion(void **state)
{
    (void)state;
    size_t len;
    char *xml = slurp("billion-laughs.xml", &len);
    clock_t t0 = clock();
    expect_refused(xml, len, "line 2: a DOCTYPE is not allowed in a JUnit report");
    /* refused before a single entity is declared: no time spent expanding */
    assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 2.0);
    free(xml);
}

static void test_external_entity(void **state)
{
    (void)state;
    size_t len;
    char *xml = slurp("external-entity.xml", &len);
    expect_refused(xml, len, "DOCTYPE is not allowed");
    free(xml);
    /* nor through a file of the same content */
    junit_summary_t *s = junit_summary_new();
    char path[512];
    snprintf(path, sizeof path, "%s/external-entity.xml", JUNIT_DATA_DIR);
    assert_int_equal(junit_parse_file(s, path, JUNIT_FILE_MAX_DEFAULT, err, sizeof err), -1);
    assert_null(strstr(err, "root:"));
    assert_int_equal(junit_tests(s), 0);
    junit_summary_free(s);
}

static void test_malformed(void **state)
{
    (void)state;
    size_t len;
    char *xml = slurp("truncated.xml", &len);
    expect_refused(xml, len, "malformed XML");
    free(xml);
    const char *mismatched = "<testsuite>\n<testcase name=\"a\">\n</testsuite>";
    expect_refused(mismatched, strlen(mismatched), "line 3: malformed XML");
    expect_refused("", 0, "malformed XML");
    expect_refused("not xml at all", 14, "line 1: malformed XML");
    const char *html = "<html><body><testcase name=\"a\"/></body></html>";
    expect_refused(html, strlen(html), "the root element is <html>, not <testsuites> or <testsuite>");
    static const char nul[] = "<testsuite><testcase name=\"a\0b\"/></testsuite>";
    expect_refused(nul, sizeof nul - 1, "malformed XML");
}

/* libxml2's own depth limit (not HUGE) holds: no stack exhaustion. */
static void test_deep_nesting(void **state)
{
    (void)state;
    size_t depth = 100000, n = 0;
    char *xml = xmalloc(depth * 23 + 1);
    for (size_t i = 0; i < depth; i++)
        n += (size_t)sprintf(xml + n, "<testsuite>");
    for (size_t i = 0; i < depth; i++)
        n += (size_t)sprintf(xml + n, "</testsuite>");
    expect_refused(xml, n, "malformed XML");
    free(xml);
}

static void test_huge_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_junit.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/huge.xml", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    /* 50 MB of well-formed testcases */
    fputs("<?xml version=\"1.0\"?>\n<testsuite name=\"huge\">\n", f);
    static const char tc[] = "<testcase classname=\"huge\" name=\"t\" time=\"0.001\"/>\n";
    for (long i = 0; i < 50L * 1000 * 1000 / (long)(sizeof tc - 1); i++)
        fputs(tc, f);
    fputs("</testsuite>\n", f);
    long size = ftell(f);
    fclose(f);
    assert_true(size >= 50L * 1000 * 1000);
    junit_summary_t *s = junit_summary_new();
    assert_int_equal(junit_parse_file(s, path, JUNIT_FILE_MAX_DEFAULT, err, sizeof err), -1);
    char want[128];
    snprintf(want, sizeof want, "%ld bytes exceeds the limit of 16777216 bytes", size);
    assert_string_equal(err, want);
    assert_int_equal(junit_parse_file(s, dir, JUNIT_FILE_MAX_DEFAULT, err, sizeof err), -1);
    assert_string_equal(err, "not a regular file");
    snprintf(path + strlen(path), sizeof path - strlen(path), ".missing");
    assert_int_equal(junit_parse_file(s, path, JUNIT_FILE_MAX_DEFAULT, err, sizeof err), -1);
    assert_string_equal(err, "No such file or directory");
    path[strlen(path) - strlen(".missing")] = '\0';
    unlink(path);
    rmdir(dir);
    junit_summary_free(s);
}

/* Bounds of what a report can make the summary hold. */
/* What junit_summary_xml keeps parses again to the same counts, also when a
 * namespace URI holds bytes libxml2 would write unescaped (found by fuzz_junit). */
static void test_kept_xml_reparses(void **state)
{
    (void)state;
    static const char doc[] = "<testsuite xmlns:x=\"a&lt;b&amp;c&quot;d\"><testcase name=\"t\"><failure/></testcase>"
                              "<testsuite xmlns:y=\"&lt;&lt;\"><testcase name=\"u\"/></testsuite></testsuite>";
    for (int docs = 1; docs <= 2; docs++) {
        char why[256] = "";
        junit_summary_t *s = junit_summary_new();
        for (int i = 0; i < docs; i++)
            assert_int_equal(junit_parse(s, doc, sizeof doc - 1, why, sizeof why), 0);
        size_t len;
        char *xml = junit_summary_xml(s, &len);
        assert_non_null(xml);
        junit_summary_t *again = junit_summary_new();
        if (junit_parse(again, xml, len, why, sizeof why) < 0)
            fail_msg("kept XML does not parse (%s): %s", why, xml);
        assert_int_equal(junit_tests(again), 2 * docs);
        assert_int_equal(junit_failed_count(again), docs);
        junit_summary_free(again);
        junit_summary_free(s);
        free(xml);
    }
}

static void test_caps(void **state)
{
    (void)state;
    /* more testcases than JUNIT_CASES_MAX */
    static const char tc[] = "<testcase name=\"t\"/>";
    size_t n = 0, cap = (JUNIT_CASES_MAX + 1) * (sizeof tc - 1) + 64;
    char *xml = xmalloc(cap);
    n += (size_t)sprintf(xml, "<testsuite>");
    for (long i = 0; i <= JUNIT_CASES_MAX; i++)
        n += (size_t)sprintf(xml + n, "%s", tc);
    n += (size_t)sprintf(xml + n, "</testsuite>");
    expect_refused(xml, n, "more than 100000 testcases");
    free(xml);

    /* 150 failures with long multibyte messages: 100 listed, each message capped */
    size_t big = 150 * 9000 + 64;
    xml = xmalloc(big);
    n = (size_t)sprintf(xml, "<testsuites><testsuite>");
    for (int i = 0; i < 150; i++) {
        n += (size_t)sprintf(xml + n, "<testcase classname=\"c\" name=\"t%d\"><failure message=\"", i);
        for (int k = 0; k < 2000; k++)
            n += (size_t)sprintf(xml + n, "\xc3\xa9");
        n += (size_t)sprintf(xml + n, "\"/></testcase>");
    }
    n += (size_t)sprintf(xml + n, "</testsuite></testsuites>");
    junit_summary_t *s = junit_summary_new();
    assert_int_equal(junit_parse(s, xml, n, err, sizeof err), 0);
    json_t *j = junit_summary_json(s);
    assert_int_equal(json_array_size(json_object_get(j, "failed")), JUNIT_FAILED_LIST_MAX);
    assert_int_equal(count(j, "failed_unlisted"), 50);
    assert_int_equal(count(j, "failures"), 150);
    const char *m = json_string_value(json_object_get(json_array_get(json_object_get(j, "failed"), 0), "message"));
    assert_true(strlen(m) <= JUNIT_MESSAGE_MAX && strlen(m) >= JUNIT_MESSAGE_MAX - 1);
    assert_int_equal(strlen(m) % 2, 0); /* cut between characters, not inside one */
    json_decref(j);
    char *line = junit_failed_line(s, 400);
    assert_true(strlen(line) < 420);
    assert_string_equal(line + strlen(line) - 5, ", ...");
    free(line);
    junit_summary_free(s);
    free(xml);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_meson),
        cmocka_unit_test(test_ctest),
        cmocka_unit_test(test_pytest_xunit2),
        cmocka_unit_test(test_surefire_reruns),
        cmocka_unit_test(test_go_junit_report),
        cmocka_unit_test(test_history_cases),
        cmocka_unit_test(test_history_cap),
        cmocka_unit_test(test_several_files),
        cmocka_unit_test(test_entity_expansion),
        cmocka_unit_test(test_external_entity),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_huge_file),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_kept_xml_reparses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
