/* backoff: retry delays, delay = min(max, initial * factor^(attempt-1)), with full
 * jitter (a uniform draw in [0, delay]) when the policy asks for it. */
#ifndef DEVSYS_BACKOFF_H
#define DEVSYS_BACKOFF_H

#include "spec.h"

/* attempt is the 1-based attempt that just failed; u is a uniform draw in [0,1). */
double backoff_delay_s(const struct spec_retry *p, long attempt, double u);
/* A uniform draw in [0,1) from a per-process generator seeded from getrandom. */
double backoff_uniform(void);

#endif
