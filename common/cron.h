/* cron: schedule expressions and their next tick. Cron (5 fields, or 6 with
 * seconds first), @macros, and fixed intervals ("@every 90s"), in an IANA
 * time zone read from the system tzdata. Pure computation but for tzdata. */
#ifndef DEVSYS_CRON_H
#define DEVSYS_CRON_H

#include <stddef.h>
#include <time.h>

#define CRON_ERR_MAX 192
#define CRON_EXPR_MAX 256      /* bytes of an expression */
#define CRON_TZ_MAX 64         /* bytes of a time zone name */
#define CRON_EVERY_MAX 31622400 /* an interval: at most 366 days (seconds) */

typedef struct cron cron_t;

/* Parses expr in time zone tz (NULL or "": UTC):
 *   "MIN HOUR DOM MON DOW"         5 fields, ticks at second 0
 *   "SEC MIN HOUR DOM MON DOW"     6 fields
 *   "@yearly" "@annually" "@monthly" "@weekly" "@daily" "@midnight" "@hourly"
 *   "@every 1h30m"                 a fixed interval (s, m, h, d units)
 * Each field: "*", N, A-B, a list "A,B-C", steps "*\/S", "A-B/S", "A/S" (A to
 * the field's end); months JAN..DEC and days SUN..SAT by name (any case), day
 * of week 0-7 (0 and 7: Sunday). Day-of-month and day-of-week as Vixie cron:
 * when both are restricted (neither starts with '*'), a day matches either.
 * Returns NULL with a message naming the field in err ("minute: 61 is out of
 * range 0-59"). Caller frees with cron_free. */
cron_t *cron_parse(const char *expr, const char *tz, char *err, size_t errlen);
void cron_free(cron_t *c);

/* Is tz a time zone of the system tzdata ("UTC", "Europe/Berlin")? 0 with a
 * message in err otherwise. */
int cron_tz_valid(const char *tz, char *err, size_t errlen);

/* Seconds of an interval "90s", "5m", "1h30m", "2d" (1 .. CRON_EVERY_MAX), or
 * -1 with a message in err. */
long cron_parse_every(const char *s, char *err, size_t errlen);

/* The first tick strictly after `after`, or -1 when there is none within 10
 * years (e.g. "0 0 30 2 *"). Cron fields are wall-clock times in the zone:
 * - a wall time skipped by a DST jump forward fires at the jump (02:30 on
 *   the spring-forward night in Europe/Berlin fires at 03:00 CEST), once;
 * - a wall time that happens twice (fall back) fires once, at its first
 *   occurrence: the repeated hour fires nothing a second time.
 * Intervals ignore the zone: their ticks are the multiples of the interval
 * since the Unix epoch (UTC).
 * Not thread-safe: the zone is applied by setenv("TZ") + tzset() around
 * the computation and restored after, which is process-global. The manager
 * calls this only from its single event-loop thread. */
time_t cron_next(const cron_t *c, time_t after);

/* The ticks of c from `from` (itself a tick: the stored due time) to until,
 * both included: *count of them, the last min(count, cap) in out[], oldest
 * first (their number is returned), and *next, the first tick after until
 * (-1: none). A dense schedule over a long span is walked for its first
 * CRON_WALK_MAX ticks and then from until - CRON_WALK_MAX on: *truncated is
 * 1 and *count a lower bound. Applies the zone once. */
#define CRON_WALK_MAX 100000
int cron_walk(const cron_t *c, time_t from, time_t until, time_t *out, int cap, long *count, int *truncated,
              time_t *next);

/* The interval in seconds of an "@every" expression, 0 for cron. */
long cron_interval(const cron_t *c);

#endif
