/* scheduledb: the statements on schedules and schedule_ticks
 * (migrations/011_schedules.sql). Firing a tick inserts tasks, so that one
 * statement is taskdb_schedule_fire (taskdb.c writes every task row). */
#ifndef DEVSYS_SCHEDULEDB_H
#define DEVSYS_SCHEDULEDB_H

#include "pgc.h"

#define SCHEDULES_MAX 10000     /* schedules one system holds */
#define SCHEDULE_NAME_MAX 100   /* bytes of a name (a path segment) */
#define SCHEDULE_TICKS_SHOWN 20 /* recent ticks a GET shows */

/* A `key` names a schedule by id or by name. */

/* Insert a schedule (next_due: epoch s). Result, one row: id (NULL when not
 * inserted), taken (t: the name exists), total (schedules before). */
struct scheduledb_new {
    const char *id, *name, *cron, *tz, *spec_json, *catch_up, *created_by;
    long long next_due;
    int paused; /* created paused: resuming computes its next tick */
};
void scheduledb_create(pgc_t *pg, const struct scheduledb_new *s, pgc_result_fn *fn, void *arg);

/* All schedules (up to SCHEDULES_MAX), by name; with queues or apps
 * (PostgreSQL text[] literals, NULL: any) those whose spec is in them
 * (devsys_spec_in_scope). Result, one row: doc (a JSON array of schedule
 * objects). */
void scheduledb_list(pgc_t *pg, const char *queues, const char *apps, pgc_result_fn *fn, void *arg);

/* One schedule with its recent ticks (newest first, each with its task's
 * state). Result: no row when absent; else id, cron, tz, paused, doc (the
 * JSON object). */
void scheduledb_get(pgc_t *pg, const char *key, pgc_result_fn *fn, void *arg);

/* Pause, or resume with next_due (epoch s; -1: NULL) as its next tick:
 * ticks of the paused time are not caught up. Result: no row when absent;
 * else id, was ("t" when it was paused before). */
void scheduledb_set_paused(pgc_t *pg, const char *key, int paused, long long next_due, pgc_result_fn *fn,
                           void *arg);

/* Delete (its tick rows go with it; tasks stay). Result: id, name of the
 * deleted one, no row when absent. */
void scheduledb_delete(pgc_t *pg, const char *key, pgc_result_fn *fn, void *arg);

/* The tick's read: one row with now (epoch s, fraction included) and wake
 * (the earliest next_due_at of an unpaused schedule, epoch s; NULL: none),
 * and with it up to limit due schedules, earliest first: id, name, cron,
 * tz, spec, catch_up, due (epoch s); those NULL when none is due. */
void scheduledb_due(pgc_t *pg, int limit, pgc_result_fn *fn, void *arg);

/* A tick that fires no task (catch-up "skip", or a spec that no longer
 * validates): next_due_at due -> next (-1: NULL), if still due. Result: id
 * when moved. */
void scheduledb_advance(pgc_t *pg, const char *id, long long due, long long next, pgc_result_fn *fn, void *arg);

#endif
