/* scheduler: the manager's schedule tick. Every manager runs one; a tick is
 * enqueued by whichever moves the schedule's next_due_at first
 * (taskdb_schedule_fire), so two managers never enqueue it twice. */
#ifndef DEVSYS_SCHEDULER_H
#define DEVSYS_SCHEDULER_H

#include "pgc.h"
#include "rc.h"

struct event_base;
typedef struct scheduler scheduler_t;

/* Ticks share pg and rc with the API (base, rc, pg must outlive it; prefix
 * is copied). Returns NULL when DEVSYS_SCHEDULES is 0 (this manager fires
 * no schedules). */
scheduler_t *scheduler_new(struct event_base *base, rc_t *rc, pgc_t *pg, const char *prefix);
/* A pass in flight finishes without it: its callbacks only release. */
void scheduler_free(scheduler_t *s);

/* The policy for missed ticks (schedules.catch_up): which of the n due ticks
 * out[0..n-1] (oldest first; count in all, more than n when the walk kept
 * only the newest) to fire, as *first and the return value (how many).
 * once: the newest; all: every one kept (at most 100); skip: the newest if
 * it is at most SCHEDULE_SKIP_GRACE_S late at now, else none. */
#define SCHEDULE_CATCH_UP_MAX 100
#define SCHEDULE_SKIP_GRACE_S 60
int scheduler_catch_up(const char *policy, const long long *out, int n, long long now, int *first);

#endif
