/* notify: the manager's notification timer. Every DEVSYS_NOTIFY_TICK_S it
 * runs one grouping pass (notifydb_flush: pending events -> deliveries under
 * each destination's group timings and token bucket) and publishes the notify
 * tasks that pass inserted. Two managers share the work through row locks
 * (FOR NO KEY UPDATE SKIP LOCKED on destinations). */
#ifndef DEVSYS_NOTIFY_H
#define DEVSYS_NOTIFY_H

#include "pgc.h"
#include "rc.h"

struct event_base;
typedef struct notifier notifier_t;

/* Reads DEVSYS_NOTIFY_TICK_S (1; 0 = off), DEVSYS_NOTIFY_BATCH (10000 events
 * per delivery at most), DEVSYS_NOTIFY_KEEP_S (7 days) and
 * DEVSYS_NOTIFY_DESTINATIONS_FILE (destinations created or replaced at start;
 * a bad file exits 2 naming the entry and field); opens its own
 * PostgreSQL connection to db_url. base and rc must outlive it. NULL when off. */
notifier_t *notify_new(struct event_base *base, rc_t *rc, const char *db_url, const char *prefix);
void notify_free(notifier_t *n);

#endif
