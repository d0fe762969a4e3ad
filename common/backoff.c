/* backoff: retry delays with full jitter (see backoff.h). */
#include "backoff.h"

#include <math.h>
#include <stdint.h>
#include <sys/random.h>

double backoff_delay_s(const struct spec_retry *p, long attempt, double u)
{
    if (attempt < 1)
        attempt = 1;
    /* exponent capped so pow cannot overflow to inf before the min() */
    double e = (double)(attempt - 1 > 1000 ? 1000 : attempt - 1);
    double d = p->initial_s * pow(p->factor, e);
    if (!isfinite(d) || d > p->max_s)
        d = p->max_s;
    return p->jitter ? d * u : d;
}

double backoff_uniform(void)
{
    static uint64_t s;
    if (!s) {
        if (getrandom(&s, sizeof s, 0) != (ssize_t)sizeof s || !s)
            s = 0x9e3779b97f4a7c15ULL;
    }
    /* xorshift64*: plenty for jitter */
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return (double)((s * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}
