/* fuzz_junit: libFuzzer target for junit_parse (common/junit.c). Beyond "no
 * crash": every refusal carries a message and leaves the summary as it was,
 * counts add up, and what is accepted is kept as XML that reads back to the
 * same counts. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "junit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static long num(const json_t *j, const char *key)
{
    return (long)json_integer_value(json_object_get(j, key));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512] = "";
    junit_summary_t *s = junit_summary_new();
    if (junit_parse(s, (const char *)data, size, err, sizeof err) < 0) {
        if (err[0] == '\0' || junit_tests(s) != 0)
            abort();
        junit_summary_free(s);
        return 0;
    }
    json_t *j = junit_summary_json(s);
    long tests = num(j, "tests"), bad = num(j, "failures") + num(j, "errors");
    if (!j || tests < 0 || num(j, "passed") < 0 || num(j, "flaky") > num(j, "passed") ||
        bad != junit_failed_count(s) || (long)json_array_size(json_object_get(j, "failed")) + num(j, "failed_unlisted") != bad)
        abort();
    char *line = junit_failed_line(s, 400);
    if ((bad > 0) != (line != NULL))
        abort();
    free(line);
    size_t len;
    char *xml = junit_summary_xml(s, &len);
    if (xml) {
        junit_summary_t *again = junit_summary_new();
        if (junit_parse(again, xml, len, err, sizeof err) < 0 || junit_tests(again) != tests ||
            junit_failed_count(again) != bad)
            abort();
        junit_summary_free(again);
        free(xml);
    }
    json_decref(j);
    junit_summary_free(s);
    return 0;
}
