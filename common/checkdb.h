/* checkdb: the statements on checks, probe_results and incidents
 * (migrations/015_checks.sql). The probe tasks and follow-up tasks are
 * inserted by SQL functions of that migration (check_tick, and the trigger
 * on tasks that records a probe's outcome); the JSON the API answers with is
 * built by PostgreSQL. */
#ifndef DEVSYS_CHECKDB_H
#define DEVSYS_CHECKDB_H

#include "pgc.h"

#define CHECKS_MAX 10000         /* checks one system holds */
#define CHECK_NAME_MAX 64        /* [A-Za-z0-9_.-]{1,64} */
#define CHECK_HISTORY_DEFAULT 50 /* probes a GET shows */
#define CHECK_HISTORY_MAX 1000
#define CHECK_LIST_MAX 1000      /* checks or incidents one page holds */
#define CHECK_INCIDENTS_SHOWN 10 /* a check's recent incidents in its GET */

/* Create or replace a check. check_json: the flat object check_def_parse
 * makes ({"name", "monitor", "interval_s", "failure_threshold",
 * "success_threshold", "follow_up", "follow_up_queue",
 * "follow_up_max_attempts", "follow_up_priority"}); source "api" or "file".
 * A replaced check keeps its state, counts and silence; its log offset only
 * when the probe is unchanged. Result: no row when CHECKS_MAX is reached;
 * else created (t/f), doc (the check as JSON). */
void checkdb_put(pgc_t *pg, const char *check_json, const char *source, const char *actor, pgc_result_fn *fn,
                 void *arg);

/* Delete the checks of source "file" not named in names (a PostgreSQL text
 * array literal): the file no longer has them. Their open incidents are
 * resolved ("check deleted", with incident.resolved). Result: deleted (count). */
void checkdb_prune_file(pgc_t *pg, const char *names, pgc_result_fn *fn, void *arg);

/* Up to limit checks after name `after` (NULL: from the first), by name,
 * with their state, last probe, uptime over 24 h and 7 d and latency p50/p95
 * over 24 h; only those in the scope of queues and apps (PostgreSQL text
 * array literals, NULL: all; devsys_check_in_scope). Result: one row per
 * check: name, doc. */
void checkdb_list(pgc_t *pg, const char *limit, const char *after, const char *queues, const char *apps,
                  pgc_result_fn *fn, void *arg);

/* One check with its stats, its open and recent incidents, and its probes
 * newest first (limit, before probe id `after`; NULL: the newest). Result:
 * no row when absent; else doc. */
void checkdb_get(pgc_t *pg, const char *name, const char *limit, const char *after, pgc_result_fn *fn, void *arg);

/* Delete a check (its probe results go with it; an open incident is resolved
 * "check deleted", with incident.resolved). Result: no row when absent; else
 * name, resolved (the incident id or NULL). */
void checkdb_delete(pgc_t *pg, const char *name, pgc_result_fn *fn, void *arg);

/* Silence a check until epoch until_s (NULL: lift the silence). Result: no
 * row when absent; else silenced_until (ISO text or NULL), doc. */
void checkdb_silence(pgc_t *pg, const char *name, const char *until_s, const char *reason, pgc_result_fn *fn,
                     void *arg);

/* Incidents newest first: state "open", "resolved" or NULL (both), of one
 * check (NULL: all), limit, before id `after` (NULL: the newest), of checks
 * in the scope of queues and apps (as checkdb_list). Result: one row per
 * incident: id, doc. */
void checkdb_incidents(pgc_t *pg, const char *state, const char *check, const char *limit, const char *after,
                       const char *queues, const char *apps, pgc_result_fn *fn, void *arg);

/* One pass of the check timer (check_tick): the probe tasks of due checks
 * and the unpublished follow-ups, at most limit of each, already marked
 * published. Result, one row per task: id, queue, kind, spec, check_name, what
 * ("probe" or "follow_up"). */
void checkdb_tick(pgc_t *pg, const char *limit, pgc_result_fn *fn, void *arg);

/* Retention (check_retain): probe results older than probes_s, incidents
 * resolved more than incidents_s ago (NULL: kept), batch of each. Result:
 * probes, incidents (deleted counts). */
void checkdb_retain(pgc_t *pg, const char *probes_s, const char *incidents_s, const char *batch,
                    pgc_result_fn *fn, void *arg);

#endif
