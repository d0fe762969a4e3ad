/* reconcile: the manager's periodic repair pass. PostgreSQL is the truth; what
 * it says should be in Redis and is not (a queued task whose stream entry is
 * gone, an overdue retry, a task whose agent died, a dead letter missing from
 * its DLQ) is put back. Safe with several managers: rows are taken with
 * UPDATE ... FOR UPDATE SKIP LOCKED, and published_at spaces the republishes. */
#ifndef DEVSYS_RECONCILE_H
#define DEVSYS_RECONCILE_H

#include "pgc.h"
#include "rc.h"

struct event_base;
typedef struct reconcile reconcile_t;

/* Reads DEVSYS_RECONCILE_S (period, default 5; 0 turns it off) and
 * DEVSYS_REPUBLISH_AFTER_S (default 30) itself. prefix is copied; base, rc and
 * pg are borrowed and must outlive the reconciler. The first pass runs one
 * period after this call; a tick that finds the previous pass still running
 * is skipped. */
reconcile_t *reconcile_new(struct event_base *base, rc_t *rc, pgc_t *pg, const char *prefix);

/* Stops the timer. Call before pgc_free / rc_free: a pass still in flight is
 * then released by the callbacks those frees fail, and issues nothing more. */
void reconcile_free(reconcile_t *r);

#endif
