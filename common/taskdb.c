/* taskdb: every statement that writes tasks, grouped by who runs it (see
 * taskdb.h). Hot statements (claim, complete, submit) take a batch as arrays
 * and do their work in one round trip: PostgreSQL CPU per task is the
 * system's bottleneck, so each change here is measured with ./dev bench. */
#include "taskdb.h"
#include "taskdb_internal.h"

#include <stdio.h>
#include <stdlib.h>

#include "junit.h"
#include "log.h"
#include "pgarr.h"
#include "spec.h"
#include "xalloc.h"

int taskdb_col(const PGresult *res, const char *name)
{
    int c = PQfnumber(res, name);
    if (c < 0) {
        log_error("taskdb: the statement returned no column \"%s\"", name);
        abort();
    }
    return c;
}

/* ------------------------------------------------------------------ rows */

taskdb_rows_t *taskdb_rows_new(void)
{
    return xcalloc(1, sizeof(taskdb_rows_t));
}

void taskdb_rows_free(taskdb_rows_t *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->ncols; i++)
        free(pgarr_finish(r->col[i]));
    for (int i = 0; i < REPORT_COLS; i++)
        free(r->report[i] ? pgarr_finish(r->report[i]) : NULL);
    free(r);
}

int taskdb_rows_count(const taskdb_rows_t *r)
{
    return r->n;
}

/* Starts a row of kind; returns the columns to fill, in statement order. */
pgarr_t **tdb_row(taskdb_rows_t *r, enum rows_kind kind, int ncols)
{
    if (r->kind == ROWS_EMPTY) {
        r->kind = kind;
        r->ncols = ncols;
        for (int i = 0; i < ncols; i++)
            r->col[i] = pgarr_new();
    } else if (r->kind != kind) {
        log_error("taskdb: rows of two statements mixed in one batch");
        abort();
    }
    r->n++;
    return r->col;
}

/* Finishes r's columns into p[0..ncols-1] (caller frees each) and frees r.
 * Rows of another statement, or none, are a bug of the caller's. */
void tdb_rows_take(taskdb_rows_t *r, enum rows_kind want, char **p)
{
    if (r->kind != want || r->n == 0) {
        log_error("taskdb: a statement sent with %s", r->n ? "another statement's rows" : "no rows");
        abort();
    }
    for (int i = 0; i < r->ncols; i++)
        p[i] = pgarr_finish(r->col[i]);
    free(r);
}

void tdb_params_free(char **p, int n)
{
    for (int i = 0; i < n; i++)
        free(p[i]);
}

/* Sends sql with r's columns as its parameters $1..$n; frees r. */
void tdb_rows_send(pgc_t *pg, const char *sql, taskdb_rows_t *r, enum rows_kind want, pgc_result_fn *fn,
                      void *arg)
{
    int n = r->ncols;
    char *p[ROWS_MAX_COLS] = {0};
    tdb_rows_take(r, want, p);
    pgc_query(pg, sql, n, (const char *const *)p, fn, arg);
    tdb_params_free(p, n);
}

/* The first columns of every statement that may insert a task row. */
void tdb_add_task(pgarr_t **c, const char *id, const char *queue, const char *kind, const char *spec_json)
{
    pgarr_add(c[0], id);
    pgarr_add(c[1], queue);
    pgarr_add(c[2], kind);
    pgarr_add(c[3], spec_json);
}

/* ------------------------------------------------------------------ claim */

/* The conditional UPDATE is the de-duplication of execution: a row changes
 * only for a task that is queued, due for its retry, or running on an expired
 * lease. Re-claiming an expired lease records the vanished attempt as 'lost';
 * if that attempt was the last one allowed, the task is poison: it goes dead
 * instead of running again. $1 ids, $2 owner, $3 lease (s). */
#define CLAIMABLE                                                                      \
    "(t.state = 'queued' OR (t.state = 'retrying' AND (t.next_attempt_at IS NULL"     \
    " OR t.next_attempt_at <= now() + interval '1 second'))"                          \
    " OR (t.state = 'running' AND t.lease_expires_at < now()))"
#define POISON "(t.state = 'running' AND t.attempt >= t.max_attempts)"
#define POISON_SET                                                                      \
    " attempt = CASE WHEN " POISON " THEN t.attempt ELSE t.attempt + 1 END,"            \
    " started_at = now(), next_attempt_at = NULL,"                                      \
    " last_error = CASE WHEN " POISON " THEN 'poison: delivered ' || t.attempt ||"      \
    "   ' times without a recorded outcome (its agent died or was lost each time)'"     \
    "   ELSE t.last_error END"
#define CLAIM_SET                                                                       \
    " state = CASE WHEN " POISON " THEN 'dead' ELSE 'running' END,"                     \
    " lease_owner = CASE WHEN " POISON " THEN NULL ELSE $2 END,"                        \
    " lease_expires_at = CASE WHEN " POISON " THEN NULL"                                \
    "   ELSE now() + $3::int * interval '1 second' END,"                                \
    " finished_at = CASE WHEN " POISON " THEN now() END," POISON_SET
/* Instant kinds (a plain noop) have nothing to run: the claim records the
 * success itself, one transaction from queued to succeeded, attempt row included. */
#define DONE_SET                                                                        \
    " state = CASE WHEN " POISON " THEN 'dead' ELSE 'succeeded' END,"                   \
    " lease_owner = NULL, lease_expires_at = CASE WHEN $3::int IS NULL THEN NULL::timestamptz END,"  \
    " finished_at = now(), result = NULL,"                                              \
    POISON_SET
#define CLAIM_TAIL                                                                      \
    " lost AS (INSERT INTO task_attempts (task_id, attempt, agent, started_at, outcome, error)" \
    "  SELECT o.id, o.attempt, o.lease_owner, coalesce(o.started_at, now()), 'lost',"   \
    "   'lease expired: agent ' || o.lease_owner || ' stopped renewing it'"            \
    "  FROM old o JOIN u ON u.id = o.id WHERE o.state = 'running' AND o.attempt > 0"    \
    "  AND o.lease_owner IS NOT NULL ON CONFLICT DO NOTHING),"                          \
    " done AS (INSERT INTO task_attempts (task_id, attempt, agent, started_at, outcome)" \
    "  SELECT u.id, u.attempt, $2, now(), 'succeeded' FROM u WHERE u.state = 'succeeded')" \
    " SELECT i.id, u.state, u.attempt, u.checkpoint, o.state AS was, u.last_error, u.max_attempts" \
    " FROM i LEFT JOIN u ON u.id = i.id LEFT JOIN old o ON o.id = i.id"

#define UPDATE_SQL(SET)                                                                 \
    "WITH i AS (SELECT DISTINCT id FROM unnest($1::uuid[]) AS i(id)),"                  \
    " old AS (SELECT t.id, t.state, t.attempt, t.lease_owner, t.started_at FROM tasks t JOIN i USING (id))," \
    " u AS (UPDATE tasks t SET" SET " FROM i WHERE t.id = i.id AND " CLAIMABLE          \
    "  RETURNING t.id, t.state, t.attempt, t.checkpoint::text, t.last_error, t.max_attempts),"          \
    CLAIM_TAIL

/* Entries pushed by hand have no row yet: insert it already claimed (or
 * done), or claim the existing one (a redelivery of the same entry is the
 * same task). $4.. the new rows' columns, as taskdb_claim_add_new. */
#define UPSERT_SQL(STATE, OWNER, LEASE, FINISHED, SET)                                  \
    "WITH i AS (SELECT * FROM unnest($1::uuid[], $4::text[], $5::text[], $6::jsonb[], $7::int[]," \
    "  $8::int[], $9::bigint[], $10::text[]) AS i(id, queue, kind, spec, max_attempts, priority, ms, source))," \
    " old AS (SELECT t.id, t.state, t.attempt, t.lease_owner, t.started_at FROM tasks t JOIN i USING (id))," \
    " u AS (INSERT INTO tasks AS t (id, queue, kind, spec, max_attempts, priority, created_at, source," \
    "  state, attempt, lease_owner, lease_expires_at, started_at, finished_at)"          \
    "  SELECT i.id, i.queue, i.kind, i.spec, i.max_attempts, i.priority,"                \
    "   'epoch'::timestamptz + i.ms * interval '1 millisecond', i.source, " STATE ", 1, " \
    OWNER ", " LEASE ", now(), " FINISHED " FROM i"                                      \
    "  ON CONFLICT (id) DO UPDATE SET" SET " WHERE " CLAIMABLE                          \
    "  RETURNING t.id, t.state, t.attempt, t.checkpoint::text, t.last_error, t.max_attempts),"          \
    CLAIM_TAIL

static const char *const claim_sql[2][2] = {
    /* [new rows][instant] */
    {UPDATE_SQL(CLAIM_SET), UPDATE_SQL(DONE_SET)},
    {UPSERT_SQL("'running'", "$2", "now() + $3::int * interval '1 second'", "NULL", CLAIM_SET),
     UPSERT_SQL("'succeeded'", "NULL", "NULL::timestamptz", "now()", DONE_SET)},
};

void taskdb_claim_add(taskdb_rows_t *r, const char *id)
{
    pgarr_add(tdb_row(r, ROWS_CLAIM, 1)[0], id);
}

void taskdb_claim_add_new(taskdb_rows_t *r, const char *id, const char *queue, const char *kind,
                          const char *spec_json, long max_attempts, long priority, long long created_ms,
                          const char *source)
{
    pgarr_t **c = tdb_row(r, ROWS_CLAIM_NEW, 8);
    tdb_add_task(c, id, queue, kind, spec_json);
    pgarr_add_long(c[4], max_attempts);
    pgarr_add_long(c[5], priority);
    pgarr_add_long(c[6], created_ms);
    pgarr_add(c[7], source);
}

void taskdb_claim(pgc_t *pg, taskdb_rows_t *r, const char *owner, int lease_s, int instant, pgc_result_fn *fn,
                  void *arg)
{
    int is_new = r->kind == ROWS_CLAIM_NEW, ncols = r->ncols;
    char lease[16], *cols[ROWS_MAX_COLS];
    snprintf(lease, sizeof lease, "%d", lease_s);
    tdb_rows_take(r, is_new ? ROWS_CLAIM_NEW : ROWS_CLAIM, cols);
    const char *p[10] = {cols[0], owner, lease};
    for (int i = 1; i < ncols; i++)
        p[i + 2] = cols[i];
    pgc_query(pg, claim_sql[is_new][instant ? 1 : 0], ncols + 2, p, fn, arg);
    tdb_params_free(cols, ncols);
}

/* --------------------------------------------------------------- outcomes */

/* Guarded by attempt and lease owner (the fencing token): an agent whose
 * lease expired and was taken over cannot overwrite the newer outcome. The
 * attempt row is written in the same statement, once. state_attempt tells,
 * for a row that did not change, what state the task is in, so the agent
 * knows whether its entry is done with (final, or our own earlier commit
 * whose answer was lost) or belongs to whoever runs the task now. $9 owner. */
static const char complete_sql[] =
    "WITH r AS (SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::jsonb[],"
    "  $6::text[], $7::bigint[], $8::bigint[])"
    "  AS r(id, attempt, state, err, result, output, started_us, retry_ms)),"
    " u AS (UPDATE tasks t SET state = r.state,"
    "  finished_at = CASE WHEN r.state = 'retrying' THEN NULL ELSE now() END,"
    "  next_attempt_at = CASE WHEN r.state = 'retrying'"
    "   THEN now() + r.retry_ms * interval '1 millisecond' END,"
    "  last_error = r.err, result = r.result, output_tail = r.output,"
    "  lease_owner = NULL, lease_expires_at = NULL"
    "  FROM r WHERE t.id = r.id AND t.attempt = r.attempt AND t.lease_owner = $9"
    "  AND t.state = 'running' RETURNING t.id),"
    " a AS (INSERT INTO task_attempts (task_id, attempt, agent, started_at, outcome, error)"
    "  SELECT r.id, r.attempt, $9, 'epoch'::timestamptz + r.started_us * interval '1 microsecond',"
    "  CASE WHEN r.state = 'retrying' THEN 'failed' ELSE r.state END, r.err"
    "  FROM r WHERE r.id IN (SELECT id FROM u)),"
    /* test reports (kind testing): only with an outcome that was recorded */
    " rep AS (INSERT INTO task_reports (task_id, attempt, xml, summary)"
    "  SELECT x.id, x.attempt, x.xml, x.summary"
    "  FROM unnest($10::uuid[], $11::int[], $12::text[], $13::jsonb[]) AS x(id, attempt, xml, summary)"
    "  WHERE x.id IN (SELECT id FROM u) ON CONFLICT (task_id, attempt) DO NOTHING RETURNING task_id, attempt),"
    /* test history (migrations/009), only with a report that was stored. A run
     * is flaky when the test was failed (or error) on the same input before and
     * is not now, or the other way round, or when Surefire reran it (flaky). */
    " hc AS (SELECT h.h->>'scope' AS scope, c.test, h.h->>'input' AS input, h.id, h.attempt, c.outcome,"
    "  left(c.message, " XSTR(JUNIT_MESSAGE_MAX) ") AS message, c.time_s, c.outcome = 'flaky' OR c.outcome <> 'skipped'"
    "   AND EXISTS (SELECT 1 FROM test_runs o WHERE o.scope = h.h->>'scope' AND o.input = h.h->>'input'"
    "    AND o.test = c.test AND o.outcome <> 'skipped'"
    "    AND (o.outcome IN ('failed', 'error')) <> (c.outcome IN ('failed', 'error'))) AS flaky"
    "  FROM unnest($10::uuid[], $11::int[], $14::jsonb[]) AS h(id, attempt, h)"
    "  JOIN rep ON rep.task_id = h.id AND rep.attempt = h.attempt,"
    "  jsonb_to_recordset(h.h->'cases') AS c(test text, outcome text, message text, time_s float8)"
    "  WHERE h.h IS NOT NULL),"
    " hist AS (INSERT INTO test_runs (scope, test, input, task_id, attempt, outcome, message, time_s, flaky)"
    "  SELECT scope, test, input, id, attempt, outcome, message, time_s, flaky FROM hc),"
    /* one row per test, locked in (scope, test) order so that two agents'
     * statements never wait on each other in a cycle */
    " st AS (INSERT INTO test_stats AS s (scope, test, last, runs, last_at, last_task, last_failure, flaky_at)"
    "  SELECT scope, test, left(string_agg(CASE outcome WHEN 'passed' THEN 'P' WHEN 'failed' THEN 'F'"
    "   WHEN 'error' THEN 'E' WHEN 'skipped' THEN 'S' ELSE 'K' END, '' ORDER BY attempt DESC, id), "
    XSTR(TASKDB_TEST_LAST) "), count(*), now(), (array_agg(id ORDER BY attempt DESC, id))[1],"
    "   (array_agg(message ORDER BY attempt DESC, id) FILTER (WHERE message IS NOT NULL))[1],"
    "   CASE WHEN bool_or(flaky) THEN now() END"
    "  FROM hc GROUP BY scope, test ORDER BY scope, test"
    "  ON CONFLICT (scope, test) DO UPDATE SET last = left(EXCLUDED.last || s.last, " XSTR(TASKDB_TEST_LAST) "),"
    "   runs = s.runs + EXCLUDED.runs, last_at = EXCLUDED.last_at, last_task = EXCLUDED.last_task,"
    "   last_failure = coalesce(EXCLUDED.last_failure, s.last_failure),"
    "   flaky_at = coalesce(EXCLUDED.flaky_at, s.flaky_at))"
    /* CASE: the row is looked up again only where the update did not take */
    " SELECT r.id, u.id IS NOT NULL AS recorded, CASE WHEN u.id IS NULL THEN"
    "  (SELECT t.state || ' ' || t.attempt FROM tasks t WHERE t.id = r.id) END AS state_attempt"
    " FROM r LEFT JOIN u ON u.id = r.id";

void taskdb_outcome_add(taskdb_rows_t *r, const char *id, long attempt, const char *state, const char *error,
                        const char *result_json, const char *output, long long started_us, long long retry_ms)
{
    pgarr_t **c = tdb_row(r, ROWS_OUTCOME, 8);
    pgarr_add(c[0], id);
    pgarr_add_long(c[1], attempt);
    pgarr_add(c[2], state);
    pgarr_add(c[3], error);
    pgarr_add(c[4], result_json);
    pgarr_add(c[5], output);
    pgarr_add_long(c[6], started_us);
    pgarr_add_long(c[7], retry_ms);
}

void taskdb_outcome_report(taskdb_rows_t *r, const char *id, long attempt, const char *xml,
                           const char *summary_json, const char *history_json)
{
    if (r->kind != ROWS_OUTCOME || r->n == 0) {
        log_error("taskdb: a report added before its outcome");
        abort();
    }
    if (!r->report[0])
        for (int i = 0; i < REPORT_COLS; i++)
            r->report[i] = pgarr_new();
    pgarr_add(r->report[0], id);
    pgarr_add_long(r->report[1], attempt);
    pgarr_add(r->report[2], xml);
    pgarr_add(r->report[3], summary_json);
    pgarr_add(r->report[4], history_json);
}

void taskdb_complete(pgc_t *pg, taskdb_rows_t *r, const char *owner, pgc_result_fn *fn, void *arg)
{
    char *c[8], *rep[REPORT_COLS];
    for (int i = 0; i < REPORT_COLS; i++)
        rep[i] = r->report[i] ? pgarr_finish(r->report[i]) : xstrdup("{}");
    tdb_rows_take(r, ROWS_OUTCOME, c);
    const char *p[14] = {c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], owner, rep[0], rep[1], rep[2], rep[3],
                         rep[4]};
    pgc_query(pg, complete_sql, 14, p, fn, arg);
    tdb_params_free(c, 8);
    tdb_params_free(rep, REPORT_COLS);
}

/* A task that ended keeps its outcome: that delivery was a duplicate. A new
 * row gets the default max_attempts (it never runs). */
static const char reject_sql[] =
    "WITH i AS (SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::text[],"
    "  $6::bigint[], $7::text[]) AS i(id, queue, kind, spec, err, ms, source)),"
    " u AS (INSERT INTO tasks AS t (id, queue, kind, spec, state, attempt, max_attempts, created_at,"
    "  finished_at, last_error, source)"
    "  SELECT i.id, i.queue, i.kind, i.spec, 'dead', 0, " XSTR(SPEC_DEFAULT_MAX_ATTEMPTS) ","
    "   'epoch'::timestamptz + i.ms * interval '1 millisecond', now(), i.err, i.source FROM i"
    "  ON CONFLICT (id) DO UPDATE SET state = 'dead', finished_at = now(),"
    "   last_error = EXCLUDED.last_error, lease_owner = NULL, lease_expires_at = NULL"
    "  WHERE t.state IN ('queued', 'retrying', 'running') RETURNING t.id)"
    " SELECT id FROM u";

void taskdb_reject_add(taskdb_rows_t *r, const char *id, const char *queue, const char *kind,
                       const char *spec_json, const char *error, long long created_ms, const char *source)
{
    pgarr_t **c = tdb_row(r, ROWS_REJECT, 7);
    tdb_add_task(c, id, queue, kind, spec_json);
    pgarr_add(c[4], error);
    pgarr_add_long(c[5], created_ms);
    pgarr_add(c[6], source);
}

void taskdb_reject(pgc_t *pg, taskdb_rows_t *r, pgc_result_fn *fn, void *arg)
{
    tdb_rows_send(pg, reject_sql, r, ROWS_REJECT, fn, arg);
}

/* Only while the task is still cancelled at that attempt (rare: one
 * statement per task). */
void taskdb_attempt_cancelled(pgc_t *pg, const char *id, long attempt, const char *agent, long long started_us,
                              const char *error, pgc_result_fn *fn, void *arg)
{
    char a[24], started[32];
    snprintf(a, sizeof a, "%ld", attempt);
    snprintf(started, sizeof started, "%lld", started_us);
    const char *p[5] = {id, a, agent, started, error};
    pgc_query(pg,
              "INSERT INTO task_attempts (task_id, attempt, agent, started_at, outcome, error)"
              " SELECT $1::uuid, $2::int, $3, 'epoch'::timestamptz + $4::bigint * interval '1 microsecond',"
              "  'cancelled', $5 WHERE EXISTS (SELECT 1 FROM tasks WHERE id = $1::uuid AND state = 'cancelled'"
              "  AND attempt = $2::int) ON CONFLICT DO NOTHING",
              5, p, fn, arg);
}

/* ------------------------------------------------------ lease, checkpoint */

void taskdb_lease_add(taskdb_rows_t *r, const char *id, long attempt)
{
    pgarr_t **c = tdb_row(r, ROWS_LEASE, 2);
    pgarr_add(c[0], id);
    pgarr_add_long(c[1], attempt);
}

/* The answer lists the tasks cancelled meanwhile: a backstop for a lost
 * cancel message on the control stream. */
void taskdb_lease_renew(pgc_t *pg, taskdb_rows_t *r, const char *owner, int lease_s, pgc_result_fn *fn, void *arg)
{
    char lease[16], *c[2];
    snprintf(lease, sizeof lease, "%d", lease_s);
    tdb_rows_take(r, ROWS_LEASE, c);
    const char *p[4] = {c[0], c[1], lease, owner};
    pgc_query(pg,
              "WITH i AS (SELECT * FROM unnest($1::uuid[], $2::int[]) AS i(id, attempt)),"
              " u AS (UPDATE tasks t SET lease_expires_at = now() + $3::int * interval '1 second'"
              "  FROM i WHERE t.id = i.id AND t.attempt = i.attempt AND t.lease_owner = $4"
              "  AND t.state = 'running' RETURNING t.id)"
              " SELECT t.id FROM tasks t JOIN i ON t.id = i.id WHERE t.state = 'cancelled'",
              4, p, fn, arg);
    tdb_params_free(c, 2);
}

void taskdb_lease_release(pgc_t *pg, const char *owner, pgc_result_fn *fn, void *arg)
{
    const char *p[1] = {owner};
    pgc_query(pg,
              "UPDATE tasks SET lease_expires_at = now() - interval '1 millisecond'"
              " WHERE lease_owner = $1 AND state = 'running'",
              1, p, fn, arg);
}

/* The newest `keep` rows of the task stay: the DELETE sees the rows from
 * before this INSERT, so keep-1 of them plus the new one. */
void taskdb_checkpoint(pgc_t *pg, const char *id, long attempt, const char *owner, const char *json, int keep,
                       pgc_result_fn *fn, void *arg)
{
    char a[24], offset[24];
    snprintf(a, sizeof a, "%ld", attempt);
    snprintf(offset, sizeof offset, "%d", keep - 1);
    const char *p[5] = {id, a, json, owner, offset};
    pgc_query(pg,
              "WITH u AS (UPDATE tasks SET checkpoint = $3::jsonb WHERE id = $1::uuid"
              " AND attempt = $2::int AND lease_owner = $4 AND state = 'running' RETURNING id),"
              " i AS (INSERT INTO checkpoints (task_id, attempt, data) SELECT id, $2::int, $3::jsonb FROM u)"
              " DELETE FROM checkpoints c WHERE c.task_id = $1::uuid AND EXISTS (SELECT 1 FROM u)"
              " AND c.id <= (SELECT id FROM checkpoints WHERE task_id = $1::uuid"
              "  ORDER BY id DESC OFFSET $5::int LIMIT 1)",
              5, p, fn, arg);
}

void taskdb_dlq_entry_add(taskdb_rows_t *r, const char *id, const char *entry)
{
    pgarr_t **c = tdb_row(r, ROWS_DLQ_ENTRY, 2);
    pgarr_add(c[0], id);
    pgarr_add(c[1], entry);
}

void taskdb_dlq_entries(pgc_t *pg, taskdb_rows_t *r, int only_if_unset, pgc_result_fn *fn, void *arg)
{
    tdb_rows_send(pg,
              only_if_unset ? "UPDATE tasks t SET dlq_entry = u.e FROM unnest($1::uuid[], $2::text[]) AS u(id, e)"
                              " WHERE t.id = u.id AND t.state = 'dead' AND t.dlq_entry IS NULL"
                            : "UPDATE tasks t SET dlq_entry = u.e FROM unnest($1::uuid[], $2::text[]) AS u(id, e)"
                              " WHERE t.id = u.id AND t.state = 'dead'",
              r, ROWS_DLQ_ENTRY, fn, arg);
}

/* ---------------------------------------------------- replay, cancel, purge */

/* The attempt counter goes on rather than restarting at 0: attempt numbers
 * stay unique per task (task_attempts' key, and the fencing token), and
 * max_attempts moves up by the budget ($2, one per id, from each spec as the
 * caller validated it, so one bad spec fails alone, not the batch). */
static const char replay_sql[] =
    "WITH i AS (SELECT * FROM unnest($1::uuid[], $2::int[]) AS i(id, budget)),"
    " prev AS (SELECT t.id, t.state, t.dlq_entry, i.budget FROM tasks t JOIN i ON t.id = i.id"
    "   WHERE t.queue = $3 AND ($4::bool OR t.state = 'dead' AND t.dlq_purged_at IS NULL)"
    "   ORDER BY t.id FOR UPDATE OF t),"
    " upd AS (UPDATE tasks t SET state = 'queued', replays = t.replays + 1, dlq_entry = NULL,"
    "     max_attempts = t.attempt + prev.budget,"
    "     dlq_purged_at = NULL, finished_at = NULL, next_attempt_at = NULL, lease_owner = NULL,"
    "     lease_expires_at = NULL"
    "   FROM prev WHERE t.id = prev.id AND prev.state = ANY($5::text[]) RETURNING t.id, t.kind, t.spec)"
    " SELECT prev.state AS was, upd.kind, upd.spec::text AS spec, prev.id, prev.dlq_entry"
    " FROM prev LEFT JOIN upd ON upd.id = prev.id ORDER BY prev.id";

void taskdb_replay_add(taskdb_rows_t *r, const char *id, long budget)
{
    pgarr_t **c = tdb_row(r, ROWS_REPLAY, 2);
    pgarr_add(c[0], id);
    pgarr_add_long(c[1], budget);
}

static void replay_states(pgc_t *pg, taskdb_rows_t *r, const char *queue, int any_state, const char *states,
                          pgc_result_fn *fn, void *arg)
{
    char *c[2] = {0};
    tdb_rows_take(r, ROWS_REPLAY, c);
    const char *p[5] = {c[0], c[1], queue, any_state ? "true" : "false", states};
    pgc_query(pg, replay_sql, 5, p, fn, arg);
    tdb_params_free(c, 2);
}

void taskdb_replay(pgc_t *pg, taskdb_rows_t *r, const char *queue, int any_state, pgc_result_fn *fn, void *arg)
{
    replay_states(pg, r, queue, any_state, "{dead}", fn, arg);
}

void taskdb_retry(pgc_t *pg, const char *id, long budget, const char *queue, pgc_result_fn *fn, void *arg)
{
    taskdb_rows_t *r = taskdb_rows_new();
    taskdb_replay_add(r, id, budget);
    replay_states(pg, r, queue, 1, "{dead,cancelled}", fn, arg);
}

/* One statement: lock the row, cancel it if it has not finished, and return
 * the state it had (running: signal the agent; queued/retrying: the agent
 * skips it on delivery). */
void taskdb_cancel(pgc_t *pg, const char *id, pgc_result_fn *fn, void *arg)
{
    const char *p[1] = {id};
    pgc_query(pg,
              "WITH prev AS (SELECT id, state, pipeline_id FROM tasks WHERE id = $1::uuid FOR UPDATE),"
              " upd AS (UPDATE tasks t SET state = 'cancelled', finished_at = now(), next_attempt_at = NULL"
              "   FROM prev WHERE t.id = prev.id AND prev.state IN ('queued', 'running', 'retrying')"
              "   RETURNING t.id)"
              " SELECT prev.state AS was, (SELECT count(*) FROM upd) AS cancelled, prev.pipeline_id FROM prev",
              1, p, fn, arg);
}

void taskdb_purge(pgc_t *pg, const char *id, const char *queue, pgc_result_fn *fn, void *arg)
{
    const char *p[2] = {id, queue};
    pgc_query(pg,
              "WITH prev AS (SELECT id, state FROM tasks WHERE id = $1::uuid AND queue = $2 FOR UPDATE),"
              " upd AS (UPDATE tasks t SET dlq_purged_at = now() FROM prev"
              "   WHERE t.id = prev.id AND prev.state = 'dead' AND t.dlq_purged_at IS NULL RETURNING t.id)"
              " SELECT prev.state AS was, (SELECT count(*) FROM upd) AS purged FROM prev",
              2, p, fn, arg);
}

void taskdb_purge_queue(pgc_t *pg, const char *queue, pgc_result_fn *fn, void *arg)
{
    const char *p[1] = {queue};
    pgc_query(pg,
              "WITH u AS (UPDATE tasks SET dlq_purged_at = now()"
              "   WHERE queue = $1 AND state = 'dead' AND dlq_purged_at IS NULL RETURNING 1)"
              " SELECT count(*) AS purged FROM u",
              1, p, fn, arg);
}

/* The dead letters of a queue a bulk action picks (TASKDB_DLQ_FILTER's
 * parameters $2 error, $3 kind, $4 since in µs). */
#define DLQ_PICK                                                                                         \
    " FROM tasks WHERE queue = $1 AND state = 'dead' AND dlq_purged_at IS NULL"                         \
    "   AND ($2::text IS NULL OR last_error = $2) AND ($3::text IS NULL OR kind = $3)"                  \
    "   AND ($4::bigint IS NULL OR finished_at >= to_timestamp($4::bigint / 1e6))"

static void filter_params(const char **p, const char *queue, const struct taskdb_dlq_filter *f)
{
    p[0] = queue;
    p[1] = f->error;
    p[2] = f->kind;
    p[3] = f->since_us;
}

void taskdb_dead_page(pgc_t *pg, const char *queue, const struct taskdb_dlq_filter *f, const char *after,
                      long limit, pgc_result_fn *fn, void *arg)
{
    char lim[24];
    snprintf(lim, sizeof lim, "%ld", limit);
    const char *p[6];
    filter_params(p, queue, f);
    p[4] = after && after[0] ? after : NULL;
    p[5] = lim;
    pgc_query(pg,
              "SELECT id, spec::text AS spec, dlq_entry" DLQ_PICK
              " AND ($5::uuid IS NULL OR id > $5::uuid) ORDER BY id LIMIT $6::int",
              6, p, fn, arg);
}

void taskdb_purge_filtered(pgc_t *pg, const char *queue, const struct taskdb_dlq_filter *f, long limit,
                           pgc_result_fn *fn, void *arg)
{
    char lim[24];
    snprintf(lim, sizeof lim, "%ld", limit);
    const char *p[5];
    filter_params(p, queue, f);
    p[4] = lim;
    pgc_query(pg,
              "WITH c AS (SELECT id" DLQ_PICK " ORDER BY id LIMIT $5::int + 1 FOR UPDATE),"
              " pick AS (SELECT id FROM c ORDER BY id LIMIT $5::int),"
              " upd AS (UPDATE tasks t SET dlq_purged_at = now() FROM pick WHERE t.id = pick.id"
              "   RETURNING t.id, t.dlq_entry)"
              " SELECT upd.id, upd.dlq_entry, (SELECT count(*) FROM c) > $5::int AS more FROM upd",
              5, p, fn, arg);
}

void taskdb_dead_groups(pgc_t *pg, const char *queue, const struct taskdb_dlq_filter *f, long limit,
                        pgc_result_fn *fn, void *arg)
{
    char lim[24];
    snprintf(lim, sizeof lim, "%ld", limit);
    const char *p[5];
    filter_params(p, queue, f);
    p[4] = lim;
    pgc_query(pg,
              "SELECT coalesce(json_agg(g ORDER BY g.count DESC, g.error), '[]')::text AS groups FROM"
              " (SELECT last_error AS error, kind, count(*) AS count, min(finished_at) AS first_failed_at,"
              "   max(finished_at) AS last_failed_at" DLQ_PICK
              "   GROUP BY last_error, kind ORDER BY count(*) DESC, last_error LIMIT $5::int) g",
              5, p, fn, arg);
}

/* A concurrent take of the same pipeline waits on the row locks and then
 * finds published_at set: each task is taken once. Through tasks_pipeline.
 * The pipelines woken by those (the next of a concurrency group, started by
 * their end: migrations/014) are taken too. */
void taskdb_pipeline_take(pgc_t *pg, const char *ids, pgc_result_fn *fn, void *arg)
{
    const char *p[1] = {ids};
    pgc_query(pg,
              "UPDATE tasks t SET published_at = now() WHERE t.pipeline_id IN (SELECT unnest($1::uuid[])"
              "   UNION SELECT w.id FROM pipelines w WHERE w.woken_by = ANY($1::uuid[]))"
              " AND t.state = 'queued' AND t.published_at IS NULL"
              " RETURNING t.id, t.queue, t.kind, t.attempt, t.spec::text AS spec,"
              "   t.spec->'pipeline'->>'step' AS step, t.spec->'pipeline'->>'index' AS idx",
              1, p, fn, arg);
}

/* ------------------------------------------------------------- reconciler */

#define REPUBLISH_RETURNING " RETURNING t.id, t.queue, t.kind, t.attempt, t.spec::text AS spec"

/* Every rule works on one queue after its stream was probed. $1: the interval
 * (s); $2: the queue; $3: the stream's first entry in ms minus the slack, NULL
 * when the stream is missing or empty (then every entry of it is lost).
 *   queued: the task's last publish (the submit's, or ours) is older than
 *     the first entry, so its entry is gone (PUBLISH_LOST always is), or it
 *     was never published (a pipeline step's task whose creator died before
 *     publishing it, migrations/006_pipelines.sql).
 *   retrying: overdue by more than the interval (its delayed envelope was
 *     lost, or no agent promotes it); running: lease expired that long ago
 *     (the entry was lost with its agent). Their envelopes were written by
 *     agents, which do not record it, so the first republish happens blind;
 *     a later one only if that republish is gone from the stream too, so a
 *     queue without agents does not collect a copy per interval. */
#define STALE(col) "coalesce(" col ", created_at) < now() - $1::float8 * interval '1 second'"
#define GONE(col) "($3::float8 IS NULL OR " col " < to_timestamp($3::float8 / 1000))"
/* $4: the priority level probed (sign of priority: 1 high, 0 normal, -1 low;
 * each level has its own stream, queue.h), NULL for all. */
#define LEVEL " AND ($4::int IS NULL OR sign(priority) = $4::int)"
static const char *const republish_sql[TASKDB_REPUBLISH_N] = {
    [TASKDB_REPUBLISH_QUEUED] =
        "WITH c AS (SELECT id FROM tasks WHERE state = 'queued' AND queue = $2" LEVEL
        "   AND " STALE("published_at") " AND (published_at IS NULL OR " GONE("published_at") ")"
        "   ORDER BY created_at LIMIT 1000 FOR UPDATE SKIP LOCKED)"
        " UPDATE tasks t SET published_at = now() FROM c WHERE t.id = c.id" REPUBLISH_RETURNING,
    [TASKDB_REPUBLISH_RETRYING] =
        "WITH c AS (SELECT id FROM tasks WHERE state = 'retrying' AND queue = $2" LEVEL
        "   AND next_attempt_at < now() - $1::float8 * interval '1 second'"
        "   AND " STALE("published_at") " AND (published_at IS NULL OR " GONE("published_at") ")"
        "   ORDER BY next_attempt_at LIMIT 1000 FOR UPDATE SKIP LOCKED)"
        " UPDATE tasks t SET published_at = now() FROM c WHERE t.id = c.id" REPUBLISH_RETURNING,
    [TASKDB_REPUBLISH_RUNNING] =
        "WITH c AS (SELECT id FROM tasks WHERE state = 'running' AND queue = $2" LEVEL
        "   AND lease_expires_at < now() - $1::float8 * interval '1 second'"
        "   AND " STALE("published_at") " AND (published_at IS NULL OR " GONE("published_at") ")"
        "   ORDER BY lease_expires_at LIMIT 1000 FOR UPDATE SKIP LOCKED)"
        " UPDATE tasks t SET published_at = now() FROM c WHERE t.id = c.id" REPUBLISH_RETURNING,
};

void taskdb_republish_queues(pgc_t *pg, const char *after_s, pgc_result_fn *fn, void *arg)
{
    const char *p[1] = {after_s};
    pgc_query(pg,
              /* the IN list matches tasks_live's predicate: the scan reads live rows only */
              "SELECT DISTINCT queue FROM tasks WHERE state IN ('queued', 'running', 'retrying')"
              "   AND " STALE("published_at") " AND (state = 'queued'"
              "   OR state = 'retrying' AND next_attempt_at < now() - $1::float8 * interval '1 second'"
              "   OR state = 'running' AND lease_expires_at < now() - $1::float8 * interval '1 second')",
              1, p, fn, arg);
}

void taskdb_republish_claim(pgc_t *pg, enum taskdb_republish rule, const char *after_s, const char *queue,
                            const char *level, const char *first_ms, pgc_result_fn *fn, void *arg)
{
    const char *p[4] = {after_s, queue, first_ms, level};
    pgc_query(pg, republish_sql[rule], 4, p, fn, arg);
}

void taskdb_dead_claim(pgc_t *pg, const char *ids, const char *after_s, pgc_result_fn *fn, void *arg)
{
    const char *p[2] = {ids, after_s};
    pgc_query(pg,
              "WITH c AS (SELECT id FROM tasks WHERE id = ANY($1::uuid[]) AND state = 'dead'"
              "   AND dlq_purged_at IS NULL"
              "   AND coalesce(published_at, created_at) < now() - $2::float8 * interval '1 second'"
              "   FOR UPDATE SKIP LOCKED)"
              " UPDATE tasks t SET published_at = now() FROM c WHERE t.id = c.id"
              " RETURNING t.id, t.kind, t.queue, t.attempt::text AS attempts,"
              "   coalesce(t.last_error, 'unknown error') AS error,"
              "   to_char(coalesce(t.finished_at, now()) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
              "     AS failed_at,"
              "   coalesce((SELECT a.agent FROM task_attempts a WHERE a.task_id = t.id"
              "             ORDER BY a.attempt DESC LIMIT 1), t.lease_owner, '') AS agent,"
              "   coalesce(t.source, '') AS source, t.spec::text AS spec",
              2, p, fn, arg);
}

const char taskdb_restore_lost_sql[] =
    "WITH u AS (UPDATE tasks SET published_at = " PUBLISH_LOST ","
    "   lease_expires_at = CASE WHEN state = 'running' THEN " PUBLISH_LOST " ELSE lease_expires_at END,"
    "   next_attempt_at = CASE WHEN state = 'retrying' THEN " PUBLISH_LOST " ELSE next_attempt_at END"
    " WHERE state IN ('queued', 'retrying', 'running') OR (state = 'dead' AND dlq_purged_at IS NULL)"
    " RETURNING state)"
    " SELECT state::text AS state, count(*) AS n FROM u GROUP BY state ORDER BY state";

/* -------------------------------------------------------------- retention */

/* The oldest finished rows of one state whose period ($n seconds, NULL: the
 * state stays) has passed. created_at bounds the index scan (a task finishes
 * after it was created), so a batch reads what it takes, not the retention
 * window: tasks_final_other for failed, dead and cancelled (GROUP, the index's
 * predicate, for a generic plan), tasks_created_at_id for succeeded. */
#define RETAIN_STATE(STATE, GROUP, N, EXTRA)                                           \
    "(SELECT id FROM tasks WHERE state = '" STATE "' AND state IN (" GROUP ")"         \
    "   AND $" N "::float8 IS NOT NULL"                                                \
    "   AND created_at < now() - $" N "::float8 * interval '1 second'"                \
    "   AND finished_at < now() - $" N "::float8 * interval '1 second'" EXTRA          \
    "   AND (SELECT ok FROM l) ORDER BY created_at LIMIT $6::int)"

#define OTHER_FINAL "'failed', 'dead', 'cancelled'"

/* The first instant history keeps: midnight UTC, $5 (keep days) days ago. */
#define KEEP_FROM "(((now() AT TIME ZONE 'UTC')::date - $5::int)::timestamp AT TIME ZONE 'UTC')"

/* $1..$4 periods of succeeded, failed, cancelled, dead; $5 keep days; $6
 * batch; $7 lock key. Final rows do not change state any more (only a dead
 * task whose letter is still in the DLQ can be replayed, and those stay), so
 * no row lock is needed beyond the DELETE's own; the advisory lock keeps a
 * second manager from working on the same batch. */
static const char retain_sql[] =
    "WITH l AS (SELECT pg_try_advisory_xact_lock($7::bigint) AS ok),"
    " c AS (" RETAIN_STATE("succeeded", "'succeeded'", "1", "")
    "   UNION ALL " RETAIN_STATE("failed", OTHER_FINAL, "2", "")
    "   UNION ALL " RETAIN_STATE("cancelled", OTHER_FINAL, "3", "")
    "   UNION ALL " RETAIN_STATE("dead", OTHER_FINAL, "4", " AND dlq_purged_at IS NOT NULL") "),"
    " m AS (DELETE FROM tasks t USING c WHERE t.id = c.id"
    "   AND t.state IN ('succeeded', 'failed', 'cancelled', 'dead') RETURNING t.*),"
    " h AS (INSERT INTO tasks_history SELECT * FROM m WHERE m.finished_at >= " KEEP_FROM "),"
    " a AS (DELETE FROM task_attempts a USING m WHERE a.task_id = m.id RETURNING a.*, m.finished_at AS f),"
    " ah AS (INSERT INTO task_attempts_history SELECT * FROM a WHERE a.f >= " KEEP_FROM "),"
    " k AS (DELETE FROM checkpoints k USING m WHERE k.task_id = m.id RETURNING k.*, m.finished_at AS f),"
    " kh AS (INSERT INTO checkpoints_history SELECT * FROM k WHERE k.f >= " KEEP_FROM "),"
    " r AS (DELETE FROM task_reports r USING m WHERE r.task_id = m.id RETURNING r.*, m.finished_at AS f),"
    " rh AS (INSERT INTO task_reports_history SELECT * FROM r WHERE r.f >= " KEEP_FROM ")"
    " SELECT (SELECT ok FROM l) AS leader, count(*) AS taken,"
    "  count(*) FILTER (WHERE m.finished_at >= " KEEP_FROM ") AS moved FROM m";

void taskdb_retain(pgc_t *pg, const struct taskdb_retention *r, pgc_result_fn *fn, void *arg)
{
    char keep[24], batch[16], key[24];
    snprintf(keep, sizeof keep, "%ld", r->keep_days);
    snprintf(batch, sizeof batch, "%d", r->batch);
    snprintf(key, sizeof key, "%lld", r->lock_key);
    const char *p[7] = {r->succeeded_s, r->failed_s, r->cancelled_s, r->dead_s, keep, batch, key};
    pgc_query(pg, retain_sql, 7, p, fn, arg);
}
