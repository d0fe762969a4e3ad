/* kind_testing: the "testing" section of kind testing: {"junit": [paths or
 * glob patterns of the JUnit XML files the command writes, 1..32, relative to
 * workdir, no ".." segment], "max_report_bytes": bytes per file (optional),
 * "input": what the tests ran on, e.g. a commit (optional, 1..256 bytes; runs
 * of one input whose outcomes differ make a test flaky)}. */
#include "kind.h"
#include "spec.h"

#include <stdio.h>
#include <string.h>

#define JUNIT_PATHS_MAX 32
#define JUNIT_PATH_MAX 1024
#define TESTING_INPUT_MAX 256

/* Is p (n bytes) a path relative to the workdir that stays inside it? */
static const char *path_why(const char *p, size_t n)
{
    if (n == 0 || n > JUNIT_PATH_MAX || strlen(p) != n)
        return "must be a string of 1 to 1024 bytes";
    if (p[0] == '/')
        return "must be relative to the workdir, not absolute";
    for (const char *s = p; *s; s += strcspn(s, "/"), s += *s == '/') {
        size_t seg = strcspn(s, "/");
        if (seg == 2 && s[0] == '.' && s[1] == '.')
            return "must not contain a \"..\" segment";
    }
    return NULL;
}

static int check_junit(const json_t *v, struct spec *out, char *err, size_t errlen)
{
    if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > JUNIT_PATHS_MAX) {
        snprintf(err, errlen, "junit: must be an array of 1 to %d paths", JUNIT_PATHS_MAX);
        return -1;
    }
    size_t i;
    json_t *p;
    json_array_foreach(v, i, p)
    {
        const char *why = json_is_string(p) ? path_why(json_string_value(p), json_string_length(p))
                                            : "must be a string of 1 to 1024 bytes";
        if (why) {
            snprintf(err, errlen, "junit[%zu]: %s", i, why);
            return -1;
        }
    }
    out->junit = v;
    return 0;
}

int kind_testing_section(const json_t *sec, struct spec *out, char *err, size_t errlen)
{
    const char *k;
    size_t klen;
    json_t *f;
    json_object_keylen_foreach((json_t *)sec, k, klen, f)
    {
        int known = strlen(k) == klen;
        if (known && strcmp(k, "junit") == 0) {
            if (check_junit(f, out, err, errlen) < 0)
                return -1;
        } else if (known && strcmp(k, "max_report_bytes") == 0) {
            if (!json_is_integer(f) || json_integer_value(f) < KIND_TESTING_REPORT_MIN ||
                json_integer_value(f) > KIND_TESTING_REPORT_MAX) {
                snprintf(err, errlen, "max_report_bytes: must be an integer from %d to %d",
                         KIND_TESTING_REPORT_MIN, KIND_TESTING_REPORT_MAX);
                return -1;
            }
            out->max_report_bytes = (long)json_integer_value(f);
        } else if (known && strcmp(k, "input") == 0) {
            if (!json_is_string(f) || json_string_length(f) == 0 || json_string_length(f) > TESTING_INPUT_MAX ||
                strlen(json_string_value(f)) != json_string_length(f)) {
                snprintf(err, errlen, "input: must be a string of 1 to %d bytes", TESTING_INPUT_MAX);
                return -1;
            }
        } else {
            char buf[64];
            snprintf(err, errlen, "%s: unknown field", spec_printable(k, klen, buf));
            return -1;
        }
    }
    if (!out->junit) {
        snprintf(err, errlen, "junit: required (the JUnit XML files the command writes)");
        return -1;
    }
    return 0;
}
