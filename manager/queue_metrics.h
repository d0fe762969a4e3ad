/* queue_metrics: the manager's per-queue gauges (stream length, consumer-group
 * lag, in flight, oldest entry age, delayed, DLQ; live tasks by state) and a
 * few cheap counts (schedules, open deployments, running pipelines), collected
 * on timers — never per scrape — for a bounded set of queues. */
#ifndef DEVSYS_QUEUE_METRICS_H
#define DEVSYS_QUEUE_METRICS_H

#include "pgc.h"
#include "rc.h"

struct event_base;
typedef struct qmetrics qmetrics_t;

/* Every DEVSYS_QUEUE_METRICS_S (5 s) one Redis script per tracked queue;
 * every DEVSYS_QUEUE_METRICS_DISCOVER_S (30 s) one PostgreSQL statement finds
 * the queues (those with live or dead tasks, or settings) and the counts.
 * At most DEVSYS_QUEUE_METRICS_MAX (64) queues are tracked, first come; the
 * others are counted in devsys_queue_metrics_omitted. */
qmetrics_t *qmetrics_new(struct event_base *base, rc_t *rc, pgc_t *pg, const char *prefix);
void qmetrics_free(qmetrics_t *qm);
/* A task was published to queue: track it from now on (if the cap allows),
 * so a queue whose tasks finish between two discoveries still gets its
 * gauges. qm may be NULL (nothing). */
void qmetrics_note(qmetrics_t *qm, const char *queue);

#endif
