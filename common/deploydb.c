/* deploydb: the statements on the deployments table (deploydb.h). The lock
 * itself is the SQL function deploy_lock_try of migrations/007_deployments.sql. */
#include "deploydb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "xalloc.h"

/* The callback of one statement (one of the three) and its argument. */
struct call {
    deploydb_row_fn *row_fn;
    deploydb_lock_fn *lock_fn;
    deploydb_text_fn *text_fn;
    void *arg;
};

static struct call *call_new(deploydb_row_fn *row_fn, deploydb_lock_fn *lock_fn, deploydb_text_fn *text_fn,
                             void *arg)
{
    struct call *c = xmalloc(sizeof *c);
    *c = (struct call){row_fn, lock_fn, text_fn, arg};
    return c;
}

/* The value of column name in row 0, or NULL (SQL NULL, no row). */
static const char *value(const PGresult *res, const char *name)
{
    if (!res || PQntuples(res) < 1)
        return NULL;
    int c = PQfnumber(res, name);
    if (c < 0) {
        log_error("deploydb: the statement returns no column %s", name);
        abort();
    }
    return PQgetisnull(res, 0, c) ? NULL : PQgetvalue(res, 0, c);
}

/* ------------------------------------------------------------------ begin */

static const char *const sql_begin =
    "INSERT INTO deployments (app, env, action, revision, task_id, attempt, pipeline_id, deployed_by, queued_at) "
    "VALUES ($1, $2, $3, CASE WHEN $3 = 'rollback' THEN NULL ELSE COALESCE($4, "
    "  to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD\"T\"HH24MISS') || '-' || right(replace($5::text, '-', ''), 8)) END, "
    "  $5::text::uuid, $6::integer, $7, "
    "  COALESCE((SELECT actor FROM audit_log WHERE target = $5::text ORDER BY id DESC LIMIT 1), $8), "
    "  COALESCE((SELECT created_at FROM tasks WHERE id = $5::text::uuid), now())) "
    "ON CONFLICT (task_id) DO UPDATE SET attempt = EXCLUDED.attempt, state = 'waiting', locked_at = NULL, "
    "  finished_at = NULL, outcome = NULL, error = NULL "
    "RETURNING revision, previous_revision, switched_at IS NOT NULL AS switched";

static void begin_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct call *c = arg;
    deploydb_row_t row = {0};
    if (!err[0] && (!res || PQntuples(res) != 1))
        err = "deployments: the insert returned no row";
    if (!err[0]) {
        row.revision = value(res, "revision");
        row.previous_revision = value(res, "previous_revision");
        const char *sw = value(res, "switched");
        row.switched = sw && sw[0] == 't';
    }
    c->row_fn(&row, err, c->arg);
    free(c);
}

void deploydb_begin(pgc_t *pg, const char *task_id, long attempt, const char *app, const char *env,
                    int rollback, const char *revision, const char *pipeline_id, const char *agent,
                    deploydb_row_fn *fn, void *arg)
{
    char att[24];
    snprintf(att, sizeof att, "%ld", attempt);
    const char *p[] = {app, env, rollback ? "rollback" : "deploy", revision, task_id, att, pipeline_id, agent};
    pgc_query(pg, sql_begin, 8, p, begin_done, call_new(fn, NULL, NULL, arg));
}

/* ------------------------------------------------------------------- lock */

static void lock_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct call *c = arg;
    const char *g = err[0] ? NULL : value(res, "granted");
    c->lock_fn(g && g[0] == 't', err[0] ? NULL : value(res, "blocker"), err, c->arg);
    free(c);
}

void deploydb_lock_try(pgc_t *pg, const char *task_id, deploydb_lock_fn *fn, void *arg)
{
    const char *p[] = {task_id};
    pgc_query(pg, "SELECT granted, blocker FROM deploy_lock_try($1::uuid)", 1, p, lock_done,
              call_new(NULL, fn, NULL, arg));
}

/* ------------------------------------------------------------ text answers */

static void text_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct call *c = arg;
    c->text_fn(err[0] ? NULL : value(res, "v"), err, c->arg);
    free(c);
}

static void text_query(pgc_t *pg, const char *sql, int n, const char *const *p, deploydb_text_fn *fn, void *arg)
{
    pgc_query(pg, sql, n, p, text_done, call_new(NULL, NULL, fn, arg));
}

void deploydb_revision_taken(pgc_t *pg, const char *app, const char *env, const char *revision,
                             const char *task_id, deploydb_text_fn *fn, void *arg)
{
    const char *p[] = {app, env, revision, task_id};
    text_query(pg,
               "SELECT task_id::text AS v FROM deployments WHERE app = $1 AND env = $2 AND revision = $3 "
               "AND task_id <> $4::uuid AND switched_at IS NOT NULL ORDER BY id DESC LIMIT 1",
               4, p, fn, arg);
}

void deploydb_previous(pgc_t *pg, const char *app, const char *env, const char *current, deploydb_text_fn *fn,
                       void *arg)
{
    const char *p[] = {app, env, current};
    text_query(pg,
               "SELECT previous_revision AS v FROM deployments WHERE app = $1 AND env = $2 AND revision = $3 "
               "AND outcome = 'succeeded' ORDER BY switched_at DESC LIMIT 1",
               3, p, fn, arg);
}

/* ----------------------------------------------------------- switch, finish */

static void logged(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    (void)res;
    if (err[0])
        log_warn("deployments: %s: %s", (const char *)arg, err);
}

void deploydb_switched(pgc_t *pg, const char *task_id, long attempt, const char *revision, const char *previous,
                       pgc_result_fn *fn, void *arg)
{
    char att[24];
    snprintf(att, sizeof att, "%ld", attempt);
    const char *p[] = {task_id, att, revision, previous};
    pgc_query(pg,
              "UPDATE deployments SET revision = $3, previous_revision = $4, switched_at = now() "
              "WHERE task_id = $1::uuid AND attempt = $2::integer",
              4, p, fn ? fn : logged, fn ? arg : (void *)"recording the switch");
}

void deploydb_finish(pgc_t *pg, const char *task_id, long attempt, const char *outcome, const char *error,
                     pgc_result_fn *fn, void *arg)
{
    char att[24];
    snprintf(att, sizeof att, "%ld", attempt);
    const char *p[] = {task_id, att, outcome, error};
    /* the submitter's audit row is written after the insert, so it is looked
     * up again here, when it has surely landed */
    pgc_query(pg,
              "UPDATE deployments SET state = 'done', finished_at = now(), outcome = $3, error = $4, "
              "deployed_by = COALESCE((SELECT actor FROM audit_log WHERE target = $1::text ORDER BY id DESC LIMIT 1), "
              "deployed_by) WHERE task_id = $1::text::uuid AND attempt = $2::integer",
              4, p, fn ? fn : logged, fn ? arg : (void *)"recording the outcome");
}

/* ----------------------------------------------------------------- history */

void deploydb_history(pgc_t *pg, const char *app, const char *env, long limit, deploydb_text_fn *fn, void *arg)
{
    char lim[24];
    snprintf(lim, sizeof lim, "%ld", limit);
    const char *p[] = {app, env, lim};
    /* current per env: the revision the last switch left, i.e. the previous
     * one when that deploy was rolled back, none when it failed without one */
    text_query(pg,
               "SELECT json_build_object("
               " 'deployments', COALESCE((SELECT json_agg(x ORDER BY x.id DESC) FROM ("
               "   SELECT d.id, d.env, d.action, d.revision, d.previous_revision, d.task_id, d.pipeline_id,"
               "          d.deployed_by, d.state, d.started_at, d.switched_at, d.finished_at, d.outcome, d.error,"
               "          t.state AS task_state"
               "   FROM deployments d LEFT JOIN tasks t ON t.id = d.task_id"
               "   WHERE d.app = $1 AND ($2::text IS NULL OR d.env = $2)"
               "   ORDER BY d.id DESC LIMIT $3::integer) x), '[]'::json),"
               " 'current', COALESCE((SELECT json_object_agg(c.env, c.cur) FROM ("
               "   SELECT DISTINCT ON (env) env,"
               "          CASE WHEN outcome = 'rolled_back' THEN previous_revision"
               "               WHEN outcome = 'failed' THEN NULL ELSE revision END AS cur"
               "   FROM deployments WHERE app = $1 AND ($2::text IS NULL OR env = $2) AND switched_at IS NOT NULL"
               "   ORDER BY env, switched_at DESC) c), '{}'::json))::text AS v",
               3, p, fn, arg);
}
