/* queue_mirror: the queue_settings table (PostgreSQL, the truth of each
 * queue's pause, concurrency cap and rate limit), its statements, and its
 * mirror into Redis (queue.h: <prefix>:{Q}:settings) and /metrics. */
#ifndef DEVSYS_QUEUE_MIRROR_H
#define DEVSYS_QUEUE_MIRROR_H

#include <jansson.h>

#include "pgc.h"
#include "queue.h"
#include "rc.h"

/* A change of one queue's settings. A field not set keeps its value;
 * set with 0 (concurrency) or rate_n 0 clears the limit. */
struct qmirror_change {
    int set_paused, paused;
    int set_concurrency;
    long concurrency;
    int set_rate;
    long rate_n, rate_period_ms;
    int rate_per_key;
};

/* Rows of queue_settings, by queue name (queue NULL: all, at most 1000;
 * else that one, no row when it was never set). Result columns: queue,
 * paused, concurrency, rate_n, rate_period_ms, rate_per_key (0 for none),
 * updated_ms, and settings (the row as the API's JSON text). */
void qmirror_select(pgc_t *pg, const char *queue, const char *scope, pgc_result_fn *fn, void *arg);
/* Upsert the change (updated_at = now, updated_by = actor); one row back, as above. */
void qmirror_update(pgc_t *pg, const char *queue, const struct qmirror_change *c, const char *actor,
                    pgc_result_fn *fn, void *arg);

/* Row i of such a result as struct queue_settings. */
void qmirror_parse(const PGresult *res, int i, struct queue_settings *s);
/* The settings JSON of a queue with no row (defaults). New reference. */
json_t *qmirror_default_json(const char *queue);
/* Sets devsys_queue_paused, devsys_queue_concurrency_limit and
 * devsys_queue_rate_limit (starts/s) of queue to s. */
void qmirror_metrics(const char *queue, const struct queue_settings *s);

/* The reconciler's share: every row written again into Redis (no control
 * message) and into /metrics, so a flushed Redis heals. Fire and forget. */
void qmirror_all(pgc_t *pg, rc_t *rc, const char *prefix);

#endif
