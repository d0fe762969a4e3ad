/* taskdb_submit: the statements that insert tasks for the manager (taskdb.h:
 * submit, a schedule's tick) and mark their publication, with the unique-key
 * sweep. Part of the taskdb module: task writes live in common/taskdb*.c. */
#include "taskdb.h"
#include "taskdb_internal.h"

#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "pgarr.h"
#include "spec.h"
#include "xalloc.h"

/* ----------------------------------------------------------------- submit */

/* A unique key (task_unique) is taken before the task is inserted, one row
 * per distinct key of the batch (its first position), with ON CONFLICT DO
 * UPDATE: that waits for a concurrent submit of the key to commit and locks
 * its row, then either takes the key (devsys_unique_free, migrations/004) or
 * keeps the holder, and RETURNING answers with whichever task holds it, so
 * every concurrent submit gets the one id. Only the tasks that took their
 * key (or have none) are inserted. $8 unique key, $9 its period in seconds
 * (NULL: while unfinished). */
#define SUBMIT_INPUT                                                                              \
    "SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::int[], $6::int[],"  \
    "                     $7::text[], $8::text[], $9::float8[]) WITH ORDINALITY"                   \
    "  AS t(id, queue, kind, spec, max_attempts, priority, ikey, ukey, ufor, ord)"
#define SUBMIT_WRITE                                                                              \
    " uq AS ("                                                                                    \
    "  INSERT INTO task_unique AS u (key, task_id, expires_at)"                                   \
    "  SELECT DISTINCT ON (ukey) ukey, id, now() + ufor * interval '1 second' FROM input"         \
    "   WHERE ukey IS NOT NULL ORDER BY ukey, ord"                                                \
    "  ON CONFLICT (key) DO UPDATE SET (task_id, expires_at) = (SELECT"                           \
    "    CASE WHEN f.free THEN EXCLUDED.task_id ELSE u.task_id END,"                              \
    "    CASE WHEN f.free THEN EXCLUDED.expires_at ELSE u.expires_at END"                         \
    "   FROM (SELECT devsys_unique_free(u.task_id, u.expires_at) AS free) f)"                     \
    "  RETURNING u.key, u.task_id),"                                                              \
    /* every queue submitted to gets a queue_settings row (defaults), so                          \
     * GET /v1/queues lists it without scanning tasks */                                          \
    " reg AS (INSERT INTO queue_settings (queue) SELECT DISTINCT queue FROM input ON CONFLICT DO NOTHING)," \
    " ins AS ("                                                                                   \
    "  INSERT INTO tasks (id, queue, kind, spec, max_attempts, priority, idempotency_key, published_at)" \
    "  SELECT id, queue, kind, spec, max_attempts, priority, ikey, now() FROM input"              \
    "   WHERE ukey IS NULL OR id IN (SELECT task_id FROM uq) ORDER BY ord"                        \
    "  ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING RETURNING id)"
#define SUBMIT_ANSWER                                                                             \
    " SELECT i.ord, COALESCE(ins.id, t.id, CASE WHEN uq.task_id <> i.id THEN uq.task_id END) AS id," \
    "  ins.id IS NOT NULL AS created,"                                                            \
    "  COALESCE(t.state, (SELECT h.state FROM tasks h WHERE h.id = uq.task_id AND ins.id IS NULL)," \
    "   'queued') AS state"                                                                       \
    " FROM input i LEFT JOIN ins ON ins.id = i.id"                                                \
    " LEFT JOIN tasks t ON ins.id IS NULL AND t.idempotency_key = i.ikey"                         \
    " LEFT JOIN uq ON uq.key = i.ukey"                                                            \
    " WHERE (i.ikey IS NULL OR i.ord = (SELECT min(i2.ord) FROM input i2 WHERE i2.ikey = i.ikey))"
static const char submit_sql[] = "WITH input AS (" SUBMIT_INPUT ")," SUBMIT_WRITE SUBMIT_ANSWER " ORDER BY i.ord";

void taskdb_submit_add(taskdb_rows_t *r, const char *id, const char *queue, const char *kind,
                       const char *spec_json, long max_attempts, long priority, const char *idempotency_key,
                       const char *unique_key, double unique_for_s)
{
    pgarr_t **c = tdb_row(r, ROWS_SUBMIT, 9);
    tdb_add_task(c, id, queue, kind, spec_json);
    pgarr_add_long(c[4], max_attempts);
    pgarr_add_long(c[5], priority);
    pgarr_add(c[6], idempotency_key);
    pgarr_add(c[7], unique_key);
    char f[32];
    snprintf(f, sizeof f, "%.17g", unique_for_s);
    pgarr_add(c[8], unique_key && unique_for_s > 0 ? f : NULL);
}

void taskdb_submit(pgc_t *pg, taskdb_rows_t *r, pgc_result_fn *fn, void *arg)
{
    tdb_rows_send(pg, submit_sql, r, ROWS_SUBMIT, fn, arg);
}

/* A schedule's tick (migrations/011_schedules.sql): its tasks go in only
 * when this statement moves the schedule's next_due_at from the value the
 * caller read ($11) to the next one ($12), so of two managers firing one
 * tick, the one that waits on the row lock finds it moved and inserts
 * nothing. The tick rows (primary key schedule, tick) remember which task
 * each tick made; a schedule keeps its newest 100. $10 schedule id, $13 the
 * tick times (epoch s, one per task row), $14 ticks missed. */
static const char fire_sql[] =
    "WITH fire AS (UPDATE schedules SET next_due_at = to_timestamp($12::bigint),"
    "  last_tick_at = to_timestamp(($13::bigint[])[array_upper($13::bigint[], 1)]), updated_at = now()"
    "  WHERE id = $10::uuid AND next_due_at = to_timestamp($11::bigint) AND NOT paused RETURNING id),"
    " input AS (" SUBMIT_INPUT " WHERE EXISTS (SELECT 1 FROM fire)),"
    SUBMIT_WRITE ","
    " answer AS (" SUBMIT_ANSWER "),"
    " tick AS (INSERT INTO schedule_ticks (schedule_id, tick_at, task_id, created, missed)"
    "  SELECT $10::uuid, to_timestamp(($13::bigint[])[a.ord]), a.id, a.created,"
    "   CASE WHEN a.ord = array_upper($13::bigint[], 1) THEN $14::int ELSE 0 END FROM answer a"
    "  ON CONFLICT DO NOTHING),"
    " trim AS (DELETE FROM schedule_ticks WHERE schedule_id = $10::uuid AND EXISTS (SELECT 1 FROM fire)"
    "  AND tick_at < (SELECT tick_at FROM schedule_ticks WHERE schedule_id = $10::uuid"
    "   ORDER BY tick_at DESC OFFSET 99 LIMIT 1))"
    " SELECT * FROM answer ORDER BY ord";

void taskdb_schedule_fire(pgc_t *pg, taskdb_rows_t *r, const struct taskdb_tick *t, pgc_result_fn *fn, void *arg)
{
    char *p[14] = {0};
    tdb_rows_take(r, ROWS_SUBMIT, p);
    char due[24], next[24], missed[24];
    snprintf(due, sizeof due, "%lld", t->due);
    snprintf(next, sizeof next, "%lld", t->next);
    snprintf(missed, sizeof missed, "%ld", t->missed);
    const char *q[14];
    for (int i = 0; i < 9; i++)
        q[i] = p[i];
    q[9] = t->schedule_id;
    q[10] = due;
    q[11] = t->next < 0 ? NULL : next;
    q[12] = t->ticks;
    q[13] = missed;
    pgc_query(pg, fire_sql, 14, q, fn, arg);
    tdb_params_free(p, 9);
}

static void unique_swept(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    (void)res;
    (void)arg;
    if (err[0])
        log_warn("task_unique sweep: %s", err);
}

/* Keys whose hold is over, so task_unique follows the live keys, not every
 * key ever used. A submit taking the key meanwhile locks the row; the DELETE
 * re-checks the new holder after that lock and keeps it. */
void taskdb_unique_sweep(pgc_t *pg)
{
    pgc_query(pg,
              "DELETE FROM task_unique WHERE key IN (SELECT key FROM task_unique"
              " WHERE devsys_unique_free(task_id, expires_at) LIMIT 10000)",
              0, NULL, unique_swept, NULL);
}

/* Only while still queued: a task an agent already claimed has its entry. */
void taskdb_mark_unpublished(pgc_t *pg, const char *id, pgc_result_fn *fn, void *arg)
{
    const char *p[1] = {id};
    pgc_query(pg, "UPDATE tasks SET published_at = " PUBLISH_LOST " WHERE id = $1::uuid AND state = 'queued'", 1,
              p, fn, arg);
}

void taskdb_mark_published(pgc_t *pg, const char *ids, int ok, pgc_result_fn *fn, void *arg)
{
    const char *p[2] = {ids, ok ? "true" : "false"};
    pgc_query(pg,
              "UPDATE tasks SET published_at = CASE WHEN $2::bool THEN now() ELSE " PUBLISH_LOST " END"
              " WHERE id = ANY($1::uuid[])",
              2, p, fn, arg);
}

