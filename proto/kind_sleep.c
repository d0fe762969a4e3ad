/* kind_sleep: the "sleep" section of kinds sleep and noop (benchmarks and
 * tests): {"ms": 0..86400000, "fail_first": N (attempts 1..N fail),
 * "fail_always": bool}. */
#include "kind.h"
#include "spec.h"

#include <stdio.h>
#include <string.h>

#define SLEEP_MS_MAX 86400000
#define FAIL_FIRST_MAX 1000

static int int_in(const json_t *v, long max)
{
    return json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= max;
}

int kind_sleep_section(const json_t *sec, struct spec *out, char *err, size_t errlen)
{
    const char *k;
    size_t klen;
    json_t *f;
    json_object_keylen_foreach((json_t *)sec, k, klen, f)
    {
        int known = strlen(k) == klen;
        if (known && strcmp(k, "ms") == 0) {
            if (!int_in(f, SLEEP_MS_MAX)) {
                snprintf(err, errlen, "ms: must be an integer from 0 to %d", SLEEP_MS_MAX);
                return -1;
            }
            out->sleep_ms = (long)json_integer_value(f);
        } else if (known && strcmp(k, "fail_first") == 0) {
            if (!int_in(f, FAIL_FIRST_MAX)) {
                snprintf(err, errlen, "fail_first: must be an integer from 0 to %d", FAIL_FIRST_MAX);
                return -1;
            }
            out->fail_first = (int)json_integer_value(f);
        } else if (known && strcmp(k, "fail_always") == 0) {
            if (!json_is_boolean(f)) {
                snprintf(err, errlen, "fail_always: must be true or false");
                return -1;
            }
            out->fail_always = json_is_true(f);
        } else {
            char buf[64];
            snprintf(err, errlen, "%s: unknown field", spec_printable(k, klen, buf));
            return -1;
        }
    }
    return 0;
}
