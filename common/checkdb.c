/* checkdb: checks, their probe results and incidents (see checkdb.h). The
 * documents are built by PostgreSQL (jsonb_build_object), as for tasks. */
#include "checkdb.h"

#include <stdio.h>

#define XSTR(x) STR(x)
#define STR(x) #x

/* Uptime (percent of probes ok, silenced probes left out: a maintenance
 * window is not downtime) over 24 h and 7 d, latency percentiles over 24 h,
 * of check c, from probe_results_check_at. */
#define DAY "p.at > now() - interval '24 hours'"
#define CHECK_STATS                                                                                          \
    "(SELECT jsonb_build_object("                                                                            \
    "  'uptime_24h', round(100.0 * avg(p.ok::int) FILTER (WHERE " DAY " AND NOT p.silenced), 3),"           \
    "  'uptime_7d', round(100.0 * avg(p.ok::int) FILTER (WHERE NOT p.silenced), 3),"                        \
    "  'probes_24h', count(*) FILTER (WHERE " DAY "), 'probes_7d', count(*),"                               \
    "  'latency_p50_ms_24h', percentile_cont(0.5) WITHIN GROUP (ORDER BY p.latency_ms) FILTER (WHERE " DAY "),"  \
    "  'latency_p95_ms_24h', percentile_cont(0.95) WITHIN GROUP (ORDER BY p.latency_ms) FILTER (WHERE " DAY "))" \
    " FROM probe_results p WHERE p.check_name = c.name AND p.at > now() - interval '7 days')"

#define CHECK_DOC                                                                                            \
    "(jsonb_build_object('name', c.name, 'monitor', c.probe, 'interval_s', c.interval_s,"                   \
    "  'failure_threshold', c.failure_threshold, 'success_threshold', c.success_threshold,"                 \
    "  'follow_up', c.follow_up, 'source', c.source, 'state', c.state, 'state_since', c.state_since,"       \
    "  'consecutive_failures', c.consecutive_failures, 'consecutive_successes', c.consecutive_successes,"   \
    "  'silenced', coalesce(c.silenced_until > now(), false),"                                              \
    "  'silenced_until', CASE WHEN c.silenced_until > now() THEN c.silenced_until END,"                     \
    "  'silence_reason', CASE WHEN c.silenced_until > now() THEN c.silence_reason END,"                     \
    "  'next_due_at', c.next_due_at, 'probes_skipped', c.probes_skipped, 'log_offset', c.log_offset,"       \
    "  'last_probe', CASE WHEN c.last_probe_at IS NOT NULL THEN jsonb_build_object('at', c.last_probe_at,"  \
    "    'ok', c.last_ok, 'latency_ms', c.last_latency_ms, 'error', c.last_error) END,"                     \
    "  'open_incident', (SELECT i.id FROM incidents i WHERE i.check_name = c.name AND i.resolved_at IS NULL)," \
    "  'created_by', c.created_by, 'created_at', c.created_at, 'updated_at', c.updated_at)"                \
    "  || " CHECK_STATS ")"

#define INCIDENT_DOC                                                                                         \
    "jsonb_build_object('id', i.id, 'check', i.check_name, 'state', CASE WHEN i.resolved_at IS NULL"        \
    "  THEN 'open' ELSE 'resolved' END, 'opened_at', i.opened_at, 'resolved_at', i.resolved_at,"            \
    "  'resolution', i.resolution, 'error', i.error, 'failures', i.failures,"                               \
    "  'duration_s', round(extract(epoch FROM coalesce(i.resolved_at, now()) - i.opened_at)::numeric, 3),"  \
    "  'follow_up_task', i.follow_up_task,"                                                                 \
    "  'follow_up_state', (SELECT t.state FROM tasks t WHERE t.id = i.follow_up_task))"

/* Resolving the open incidents of the checks in `gone` (a CTE of names). */
#define RESOLVE_GONE                                                                                         \
    " r AS (UPDATE incidents i SET resolved_at = now(), resolution = 'check deleted'"                       \
    "  FROM gone WHERE i.check_name = gone.name AND i.resolved_at IS NULL RETURNING i.id, i.check_name),"   \
    " ev AS (SELECT notify_event('incident.resolved', r.check_name, 'monitor', jsonb_build_object("        \
    "  'check', r.check_name, 'incident', r.id, 'resolution', 'check deleted')) FROM r)"

void checkdb_put(pgc_t *pg, const char *check_json, const char *source, const char *actor, pgc_result_fn *fn,
                 void *arg)
{
    const char *p[3] = {check_json, source, actor};
    pgc_query(pg,
              "WITH v AS (SELECT $1::jsonb AS j),"
              " n AS (SELECT count(*) AS total FROM checks),"
              " ins AS (INSERT INTO checks AS c (name, probe, interval_s, failure_threshold, success_threshold,"
              "   follow_up, follow_up_queue, follow_up_max_attempts, follow_up_priority, source, created_by)"
              "  SELECT j->>'name', j->'monitor', (j->>'interval_s')::float8, (j->>'failure_threshold')::int,"
              "   (j->>'success_threshold')::int, nullif(j->'follow_up', 'null'::jsonb), j->>'follow_up_queue',"
              "   (j->>'follow_up_max_attempts')::int, (j->>'follow_up_priority')::int, $2, $3 FROM v, n"
              "  WHERE n.total < " XSTR(CHECKS_MAX) " OR EXISTS (SELECT 1 FROM checks x WHERE x.name = v.j->>'name')"
              "  ON CONFLICT (name) DO UPDATE SET probe = EXCLUDED.probe, interval_s = EXCLUDED.interval_s,"
              "   failure_threshold = EXCLUDED.failure_threshold, success_threshold = EXCLUDED.success_threshold,"
              "   follow_up = EXCLUDED.follow_up, follow_up_queue = EXCLUDED.follow_up_queue,"
              "   follow_up_max_attempts = EXCLUDED.follow_up_max_attempts,"
              "   follow_up_priority = EXCLUDED.follow_up_priority, source = EXCLUDED.source,"
              "   log_offset = CASE WHEN c.probe = EXCLUDED.probe THEN c.log_offset END,"
              "   next_due_at = least(c.next_due_at, now() + EXCLUDED.interval_s * interval '1 second'),"
              "   updated_at = now()"
              "  RETURNING (xmax = 0) AS created, c.*)"
              " SELECT c.created, " CHECK_DOC "::text AS doc FROM ins c",
              3, p, fn, arg);
}

void checkdb_prune_file(pgc_t *pg, const char *names, pgc_result_fn *fn, void *arg)
{
    const char *p[1] = {names};
    pgc_query(pg,
              "WITH gone AS (DELETE FROM checks WHERE source = 'file' AND name <> ALL ($1::text[]) RETURNING name),"
              RESOLVE_GONE " SELECT (SELECT count(*) FROM gone) AS deleted, (SELECT count(*) FROM ev) AS resolved",
              1, p, fn, arg);
}

void checkdb_list(pgc_t *pg, const char *limit, const char *after, const char *queues, const char *apps,
                  pgc_result_fn *fn, void *arg)
{
    const char *p[4] = {limit, after, queues, apps};
    pgc_query(pg,
              "SELECT c.name, " CHECK_DOC "::text AS doc FROM checks c"
              " WHERE ($2::text IS NULL OR c.name > $2) AND devsys_check_in_scope(c.name, $3::text[], $4::text[])"
              " ORDER BY c.name LIMIT $1::int",
              4, p, fn, arg);
}

void checkdb_get(pgc_t *pg, const char *name, const char *limit, const char *after, pgc_result_fn *fn, void *arg)
{
    const char *p[3] = {name, limit, after};
    pgc_query(pg,
              "SELECT (" CHECK_DOC " || jsonb_build_object("
              "  'incidents', (SELECT coalesce(jsonb_agg(" INCIDENT_DOC " ORDER BY i.id DESC), '[]') FROM"
              "   (SELECT * FROM incidents WHERE check_name = c.name ORDER BY id DESC"
              "    LIMIT " XSTR(CHECK_INCIDENTS_SHOWN) ") i),"
              "  'probes', (SELECT coalesce(jsonb_agg(jsonb_build_object('id', p.id, 'at', p.at, 'ok', p.ok,"
              "    'latency_ms', p.latency_ms, 'error', p.error, 'task_id', p.task_id, 'silenced', p.silenced)"
              "    ORDER BY p.id DESC), '[]') FROM (SELECT * FROM probe_results WHERE check_name = c.name"
              "    AND ($3::bigint IS NULL OR id < $3::bigint) ORDER BY id DESC LIMIT $2::int) p)))::text AS doc"
              " FROM checks c WHERE c.name = $1",
              3, p, fn, arg);
}

void checkdb_delete(pgc_t *pg, const char *name, pgc_result_fn *fn, void *arg)
{
    const char *p[1] = {name};
    pgc_query(pg,
              "WITH gone AS (DELETE FROM checks WHERE name = $1 RETURNING name)," RESOLVE_GONE
              " SELECT gone.name, (SELECT r.id FROM r) AS resolved, (SELECT count(*) FROM ev) AS events FROM gone",
              1, p, fn, arg);
}

void checkdb_silence(pgc_t *pg, const char *name, const char *until_s, const char *reason, pgc_result_fn *fn,
                     void *arg)
{
    const char *p[3] = {name, until_s, reason};
    pgc_query(pg,
              "WITH u AS (UPDATE checks SET silenced_until = to_timestamp($2::float8), silence_reason = $3,"
              "  updated_at = now() WHERE name = $1 RETURNING *)"
              " SELECT to_char(c.silenced_until AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
              "  AS silenced_until, " CHECK_DOC "::text AS doc FROM u c",
              3, p, fn, arg);
}

void checkdb_incidents(pgc_t *pg, const char *state, const char *check, const char *limit, const char *after,
                       const char *queues, const char *apps, pgc_result_fn *fn, void *arg)
{
    const char *p[6] = {state, check, limit, after, queues, apps};
    pgc_query(pg,
              "SELECT i.id, " INCIDENT_DOC "::text AS doc FROM incidents i"
              " WHERE ($1::text IS NULL OR ($1 = 'open') = (i.resolved_at IS NULL))"
              "  AND ($2::text IS NULL OR i.check_name = $2)"
              "  AND ($4::bigint IS NULL OR i.id < $4::bigint)"
              "  AND devsys_check_in_scope(i.check_name, $5::text[], $6::text[])"
              " ORDER BY i.id DESC LIMIT $3::int",
              6, p, fn, arg);
}

void checkdb_tick(pgc_t *pg, const char *limit, pgc_result_fn *fn, void *arg)
{
    const char *p[1] = {limit};
    pgc_query(pg,
              "SELECT out_id AS id, out_queue AS queue, out_kind AS kind, out_spec::text AS spec,"
              " out_check AS check_name, out_what AS what FROM check_tick($1::int)",
              1, p, fn, arg);
}

void checkdb_retain(pgc_t *pg, const char *probes_s, const char *incidents_s, const char *batch,
                    pgc_result_fn *fn, void *arg)
{
    const char *p[3] = {probes_s, incidents_s, batch};
    pgc_query(pg,
              "SELECT out_probes AS probes, out_incidents AS incidents"
              " FROM check_retain($1::float8, $2::float8, $3::int)",
              3, p, fn, arg);
}
