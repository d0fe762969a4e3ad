/* checker: the manager's check timer. Every DEVSYS_CHECK_TICK_S it runs one
 * pass (checkdb_tick: a monitor task per due check, the follow-ups incidents
 * inserted) and publishes the tasks the pass inserted. Two managers share the
 * checks through row locks (FOR UPDATE SKIP LOCKED), so each interval of a
 * check gets one probe. At start it loads DEVSYS_MONITOR_CHECKS. */
#ifndef DEVSYS_CHECKER_H
#define DEVSYS_CHECKER_H

#include "rc.h"

struct event_base;
typedef struct checker checker_t;

/* Reads DEVSYS_CHECK_TICK_S (1; 0 = off: this manager probes nothing),
 * DEVSYS_CHECK_BATCH (1000 checks per pass) and DEVSYS_MONITOR_CHECKS (a
 * YAML file of checks, created or replaced at start; the file's checks no
 * longer in it are deleted; a bad file exits 2 naming the file, line and
 * field, also when the timer is off); opens its own PostgreSQL connection to
 * db_url. base and rc must outlive it. NULL when off. */
checker_t *checker_new(struct event_base *base, rc_t *rc, const char *db_url, const char *prefix);
void checker_free(checker_t *c);

#endif
