/* notifydb: the notification statements (see notifydb.h). The grouping and
 * the notify tasks it inserts are one SQL function (notify_flush in
 * migrations/012_notifications.sql), so a delivery and its events' state
 * change commit together. */
#include "notifydb.h"

#include <string.h>

const char *const notifydb_event_types[] = {
    "task.dead",        "pipeline.failed",   "deploy.failed",    "deploy.rolled_back",
    "approval.requested", "incident.opened", "incident.resolved", NULL,
};

int notifydb_event_type_ok(const char *type)
{
    for (const char *const *t = notifydb_event_types; *t; t++)
        if (strcmp(*t, type) == 0)
            return 1;
    return 0;
}

/* A destination as the API shows it (the bucket's state stays inside). */
#define DEST_JSON                                                                                               \
    "jsonb_build_object('name', d.name, 'url', d.url, 'events', to_jsonb(d.events), 'format', d.format,"       \
    " 'secret_ref', d.secret_ref, 'rate', jsonb_build_object('per_s', d.rate_per_s, 'burst', d.burst),"        \
    " 'group_by', to_jsonb(d.group_by), 'group_wait_s', d.group_wait_s, 'group_interval_s', d.group_interval_s," \
    " 'repeat_interval_s', d.repeat_interval_s, 'max_listed', d.max_listed, 'max_attempts', d.max_attempts,"   \
    " 'retry', jsonb_build_object('initial_s', d.retry_initial_s, 'max_s', d.retry_max_s),"                    \
    " 'timeout_s', d.timeout_s, 'created_at', d.created_at, 'updated_at', d.updated_at)::text AS destination"

#define DEST_COLS                                                                                         \
    "name, url, events, format, secret_ref, rate_per_s, burst, group_by, group_wait_s, group_interval_s," \
    " repeat_interval_s, max_listed, max_attempts, retry_initial_s, retry_max_s, timeout_s"

void notifydb_dest_put(pgc_t *pg, const char *dest_json, pgc_result_fn *fn, void *arg)
{
    const char *p[1] = {dest_json};
    pgc_query(pg,
              "INSERT INTO notify_destinations AS d (" DEST_COLS ")"
              " SELECT " DEST_COLS " FROM jsonb_populate_record(NULL::notify_destinations, $1::jsonb)"
              " ON CONFLICT (name) DO UPDATE SET url = EXCLUDED.url, events = EXCLUDED.events,"
              "  format = EXCLUDED.format, secret_ref = EXCLUDED.secret_ref, rate_per_s = EXCLUDED.rate_per_s,"
              "  burst = EXCLUDED.burst, group_by = EXCLUDED.group_by, group_wait_s = EXCLUDED.group_wait_s,"
              "  group_interval_s = EXCLUDED.group_interval_s, repeat_interval_s = EXCLUDED.repeat_interval_s,"
              "  max_listed = EXCLUDED.max_listed, max_attempts = EXCLUDED.max_attempts,"
              "  retry_initial_s = EXCLUDED.retry_initial_s, retry_max_s = EXCLUDED.retry_max_s,"
              "  timeout_s = EXCLUDED.timeout_s, updated_at = now()"
              " RETURNING (xmax = 0) AS created, " DEST_JSON,
              1, p, fn, arg);
}

void notifydb_dest_list(pgc_t *pg, pgc_result_fn *fn, void *arg)
{
    pgc_query(pg, "SELECT " DEST_JSON " FROM notify_destinations d ORDER BY d.name", 0, NULL, fn, arg);
}

void notifydb_dest_delete(pgc_t *pg, const char *name, pgc_result_fn *fn, void *arg)
{
    const char *p[1] = {name};
    pgc_query(pg,
              "WITH pend AS (SELECT count(*) AS n FROM notify_event_dest"
              "  WHERE destination = $1 AND state = 'pending')"
              " DELETE FROM notify_destinations WHERE name = $1 RETURNING name, (SELECT n FROM pend) AS pending",
              1, p, fn, arg);
}

/* The event of p in the scope of $5 queues and $6 apps (both NULL: no lookup). */
#define EVENT_IN_SCOPE                                                                                      \
    "(($5::text[] IS NULL AND $6::text[] IS NULL) OR EXISTS (SELECT 1 FROM notify_events se"              \
    " WHERE se.id = p.event_id AND devsys_event_in_scope(se, $5::text[], $6::text[])))"

void notifydb_events(pgc_t *pg, const char *destination, const char *state, const char *after,
                     const char *limit, const char *queues, const char *apps, pgc_result_fn *fn, void *arg)
{
    const char *p[6] = {destination, state, after, limit, queues, apps};
    pgc_query(pg,
              "SELECT jsonb_build_object("
              " 'events', coalesce((SELECT jsonb_agg(x.j ORDER BY x.event_id DESC, x.destination) FROM ("
              "   SELECT p.event_id, p.destination, jsonb_build_object('event_id', e.id, 'type', e.type, 'at', e.at,"
              "    'subject', e.subject, 'queue', e.queue, 'data', e.data, 'destination', p.destination,"
              "    'state', p.state, 'delivery', CASE WHEN p.delivery IS NOT NULL THEN jsonb_build_object("
              "     'id', p.delivery, 'webhook_id', 'msg_' || replace(p.delivery::text, '-', ''),"
              "     'events', dl.events, 'state', dl.state, 'error', dl.error) END) AS j"
              "   FROM notify_event_dest p JOIN notify_events e ON e.id = p.event_id"
              "   LEFT JOIN notify_deliveries dl ON dl.id = p.delivery"
              "   WHERE ($1::text IS NULL OR p.destination = $1) AND ($2::text IS NULL OR p.state = $2)"
              "    AND ($3::bigint IS NULL OR p.event_id < $3) AND " EVENT_IN_SCOPE
              "   ORDER BY p.event_id DESC, p.destination LIMIT $4::int) x), '[]'),"
              " 'counts', coalesce((SELECT jsonb_object_agg(s.state, s.n) FROM (SELECT p.state, count(*) AS n"
              "   FROM notify_event_dest p WHERE ($1::text IS NULL OR p.destination = $1) AND " EVENT_IN_SCOPE
              "   GROUP BY p.state) s), '{}')"
              ")::text AS answer",
              6, p, fn, arg);
}

void notifydb_flush(pgc_t *pg, const char *batch, const char *keep_s, pgc_result_fn *fn, void *arg)
{
    const char *p[2] = {batch, keep_s};
    pgc_query(pg,
              "SELECT out_id AS id, out_queue AS queue, out_kind AS kind, 0 AS attempt, out_spec::text AS spec"
              " FROM notify_flush($1::int, $2::float8)",
              2, p, fn, arg);
}
