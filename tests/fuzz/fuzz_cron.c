/* fuzz_cron: libFuzzer target for cron_parse. Input: a time zone name, a
 * newline, an expression. An accepted expression's ticks must move forward,
 * and cron_walk must agree with cron_next. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cron.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char buf[CRON_EXPR_MAX + CRON_TZ_MAX + 2];
    if (size >= sizeof buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    if (strlen(buf) != size)
        return 0;
    char *expr = strchr(buf, '\n'), *tz = buf;
    if (expr)
        *expr++ = '\0';
    else
        expr = buf, tz = NULL;
    char err[CRON_ERR_MAX];
    err[0] = '\0';
    cron_t *c = cron_parse(expr, tz, err, sizeof err);
    if (!c) {
        if (!err[0])
            abort();
        return 0;
    }
    static const time_t starts[] = {0, 1711846800 /* 2024-03-31, a DST night in Europe */, 1730000000};
    for (size_t i = 0; i < sizeof starts / sizeof *starts; i++) {
        time_t t = cron_next(c, starts[i]);
        if (t >= 0 && t <= starts[i])
            abort();
        time_t u = t >= 0 ? cron_next(c, t) : -1;
        if (u >= 0 && u <= t)
            abort();
        if (t < 0 || u < 0)
            continue;
        time_t out[4], next;
        long count;
        int trunc;
        int n = cron_walk(c, t, u, out, 4, &count, &trunc, &next);
        if (n != 2 || count != 2 || out[0] != t || out[1] != u || (next >= 0 && next <= u))
            abort();
    }
    cron_free(c);
    return 0;
}
