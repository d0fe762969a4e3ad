/* scheduledb: schedules and their tick rows (see scheduledb.h). The JSON the
 * API answers with is built by PostgreSQL (jsonb_build_object), as for tasks. */
#include "scheduledb.h"

#include <stdio.h>

#define XSTR(x) STR(x)
#define STR(x) #x

/* $1 names a schedule by id or name (an id compares as text: no cast error
 * on a name that is not a uuid). */
#define KEY_MATCH " (s.name = $1 OR s.id::text = lower($1))"

#define SCHEDULE_DOC                                                                                   \
    "jsonb_build_object('id', s.id, 'name', s.name, 'cron', s.cron, 'tz', s.tz, 'spec', s.spec,"      \
    " 'paused', s.paused, 'catch_up', s.catch_up, 'next_due_at', s.next_due_at,"                       \
    " 'last_tick_at', s.last_tick_at, 'created_by', s.created_by, 'created_at', s.created_at)"

static void epoch_or_null(char *buf, size_t n, long long t, const char **out)
{
    snprintf(buf, n, "%lld", t);
    *out = t < 0 ? NULL : buf;
}

void scheduledb_create(pgc_t *pg, const struct scheduledb_new *s, pgc_result_fn *fn, void *arg)
{
    char due[24];
    const char *p[9] = {s->id, s->name, s->cron, s->tz, s->spec_json, s->catch_up, s->created_by, NULL,
                        s->paused ? "t" : "f"};
    epoch_or_null(due, sizeof due, s->next_due, &p[7]);
    pgc_query(pg,
              "WITH n AS (SELECT count(*) AS total FROM schedules),"
              " ins AS (INSERT INTO schedules (id, name, cron, tz, spec, catch_up, created_by, next_due_at, paused)"
              "  SELECT $1::uuid, $2, $3, $4, $5::jsonb, $6, $7, to_timestamp($8::bigint), $9::bool FROM n"
              "   WHERE n.total < " XSTR(SCHEDULES_MAX) " ON CONFLICT (name) DO NOTHING RETURNING id)"
              " SELECT (SELECT id FROM ins) AS id, EXISTS (SELECT 1 FROM schedules WHERE name = $2) AS taken,"
              "  (SELECT total FROM n) AS total",
              9, p, fn, arg);
}

void scheduledb_list(pgc_t *pg, const char *queues, const char *apps, pgc_result_fn *fn, void *arg)
{
    const char *p[2] = {queues, apps};
    pgc_query(pg,
              "SELECT coalesce(jsonb_agg(" SCHEDULE_DOC " ORDER BY s.name), '[]')::text AS doc"
              " FROM (SELECT * FROM schedules WHERE ($1::text[] IS NULL AND $2::text[] IS NULL)"
              "  OR devsys_spec_in_scope(spec, $1::text[], $2::text[]) ORDER BY name LIMIT " XSTR(SCHEDULES_MAX) ") s",
              2, p, fn, arg);
}

void scheduledb_get(pgc_t *pg, const char *key, pgc_result_fn *fn, void *arg)
{
    const char *p[1] = {key};
    pgc_query(pg,
              "SELECT s.id, s.cron, s.tz, s.paused, (" SCHEDULE_DOC " || jsonb_build_object('recent_ticks',"
              "  (SELECT coalesce(jsonb_agg(jsonb_build_object('tick_at', k.tick_at, 'task_id', k.task_id,"
              "    'created', k.created, 'missed', k.missed, 'state', t.state) ORDER BY k.tick_at DESC), '[]')"
              "   FROM (SELECT * FROM schedule_ticks WHERE schedule_id = s.id ORDER BY tick_at DESC"
              "    LIMIT " XSTR(SCHEDULE_TICKS_SHOWN) ") k LEFT JOIN tasks t ON t.id = k.task_id)))::text AS doc"
              " FROM schedules s WHERE" KEY_MATCH,
              1, p, fn, arg);
}

void scheduledb_set_paused(pgc_t *pg, const char *key, int paused, long long next_due, pgc_result_fn *fn,
                           void *arg)
{
    char due[24];
    const char *p[3] = {key, paused ? "t" : "f", NULL};
    epoch_or_null(due, sizeof due, next_due, &p[2]);
    pgc_query(pg,
              "WITH s AS (SELECT s.id, s.paused FROM schedules s WHERE" KEY_MATCH "),"
              " u AS (UPDATE schedules x SET paused = $2::bool, updated_at = now(),"
              "  next_due_at = CASE WHEN $2::bool THEN x.next_due_at ELSE to_timestamp($3::bigint) END"
              "  FROM s WHERE x.id = s.id AND x.paused <> $2::bool RETURNING x.id)"
              " SELECT s.id, s.paused AS was FROM s",
              3, p, fn, arg);
}

void scheduledb_delete(pgc_t *pg, const char *key, pgc_result_fn *fn, void *arg)
{
    const char *p[1] = {key};
    pgc_query(pg, "DELETE FROM schedules s WHERE" KEY_MATCH " RETURNING s.id, s.name", 1, p, fn, arg);
}

void scheduledb_due(pgc_t *pg, int limit, pgc_result_fn *fn, void *arg)
{
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit);
    const char *p[1] = {lim};
    pgc_query(pg,
              "SELECT extract(epoch FROM now())::float8 AS now,"
              "  extract(epoch FROM (SELECT min(next_due_at) FROM schedules WHERE NOT paused))::float8 AS wake,"
              "  s.id, s.name, s.cron, s.tz, s.spec::text AS spec, s.catch_up,"
              "  extract(epoch FROM s.next_due_at)::bigint AS due"
              " FROM (SELECT 1) one LEFT JOIN LATERAL (SELECT * FROM schedules WHERE NOT paused"
              "  AND next_due_at <= now() ORDER BY next_due_at LIMIT $1::int) s ON true",
              1, p, fn, arg);
}

void scheduledb_advance(pgc_t *pg, const char *id, long long due, long long next, pgc_result_fn *fn, void *arg)
{
    char d[24], n[24];
    snprintf(d, sizeof d, "%lld", due);
    const char *p[3] = {id, d, NULL};
    epoch_or_null(n, sizeof n, next, &p[2]);
    pgc_query(pg,
              "UPDATE schedules SET next_due_at = to_timestamp($3::bigint), updated_at = now()"
              " WHERE id = $1::uuid AND next_due_at = to_timestamp($2::bigint) AND NOT paused RETURNING id",
              3, p, fn, arg);
}
