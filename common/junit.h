/* junit: read JUnit XML reports (pytest xunit2, meson, ctest --output-junit,
 * Maven Surefire, go-junit-report) with libxml2 into one summary of counts and
 * failed tests, refusing hostile input (DOCTYPE/entities, over-size files). */
#ifndef DEVSYS_JUNIT_H
#define DEVSYS_JUNIT_H

#include <jansson.h>
#include <stddef.h>

#define JUNIT_FILE_MAX_DEFAULT (16 * 1024 * 1024) /* bytes of one report file */
#define JUNIT_CASES_MAX 100000    /* testcases in one summary (all its files) */
#define JUNIT_FAILED_LIST_MAX 100 /* failed tests named in the summary */
#define JUNIT_NAME_MAX 200        /* bytes of a name or classname in the summary */
#define JUNIT_MESSAGE_MAX 240     /* bytes of a failure message in the summary */
#define JUNIT_XML_MAX (8 * 1024 * 1024) /* the combined XML kept by junit_summary_xml */
#define JUNIT_HISTORY_MAX 20000   /* testcases of one summary kept for the test history */

/* The tests of one or more reports. Counts come from the testcases, never
 * from the tests=/failures= attributes. A testcase is exactly one of:
 * failed (<failure>, or Surefire's <rerunFailure> alone), error (<error>,
 * <rerunError>), skipped (<skipped>, or ctest's status="disabled" or
 * "notrun"), passed; a passed one that carries
 * Surefire's <flakyFailure>/<flakyError> (it failed, then passed on a rerun)
 * is also counted flaky. */
typedef struct junit_summary junit_summary_t;

/* New empty summary; free with junit_summary_free. */
junit_summary_t *junit_summary_new(void);
void junit_summary_free(junit_summary_t *s);

/* Parses one JUnit document (len bytes) and adds its testcases to s. The root
 * is <testsuites> or a bare <testsuite>; suites may nest. Refused, with a
 * message in err ("line 4: ..."): malformed XML, any DOCTYPE (so no entity is
 * ever declared or expanded, and no external file or URL is read), another
 * root, more than JUNIT_CASES_MAX testcases in s. On error s is unchanged. */
int junit_parse(junit_summary_t *s, const char *xml, size_t len, char *err, size_t errlen);

/* Reads the file at path (at most max_bytes: a larger file is refused before
 * any parsing, "N bytes exceeds the limit of M") and junit_parse's it. */
int junit_parse_file(junit_summary_t *s, const char *path, size_t max_bytes, char *err, size_t errlen);

/* Counts so far. */
long junit_tests(const junit_summary_t *s);
long junit_failed_count(const junit_summary_t *s); /* failures + errors */

/* The summary as JSON (new reference): {"tests","failures","errors",
 * "skipped","flaky","passed","time_s","failed":[{"name","classname",
 * "message"}] (at most JUNIT_FAILED_LIST_MAX), "failed_unlisted": N}. */
json_t *junit_summary_json(const junit_summary_t *s);

/* "3 tests failed: a.b.test_x, a.b.test_y, c.test_z" (names capped to about
 * max bytes, then ", ..."). Caller frees. NULL when nothing failed. */
char *junit_failed_line(const junit_summary_t *s, size_t max);

/* The testcases for the test history (new reference), the first
 * JUNIT_HISTORY_MAX in document order: [{"test": "classname::name" (each
 * part at most JUNIT_NAME_MAX bytes), "outcome": "passed" | "failed" |
 * "error" | "skipped" | "flaky" (passed after a Surefire rerun), "time_s",
 * "message" (failed and error only, at most JUNIT_MESSAGE_MAX bytes)}]. */
json_t *junit_cases_json(const junit_summary_t *s);
/* Testcases past JUNIT_HISTORY_MAX, not in junit_cases_json. */
long junit_cases_unrecorded(const junit_summary_t *s);

/* The parsed reports as one UTF-8 XML document: the one document as parsed
 * when there was one, else a <testsuites> holding each one's suites. NULL
 * (and *len 0) when there is none or it would exceed JUNIT_XML_MAX.
 * Caller frees. */
char *junit_summary_xml(const junit_summary_t *s, size_t *len);

#endif
