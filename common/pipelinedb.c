/* pipelinedb: the statements on the pipeline tables (see pipelinedb.h); the
 * state machine itself is SQL (migrations/006_pipelines.sql), so whichever
 * transaction finalizes a task advances its pipeline. */
#include "pipelinedb.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pgarr.h"
#include "queue.h"
#include "taskdb.h"
#include "xalloc.h"

/* ------------------------------------------------------------------ submit */

void pipelinedb_submit(pgc_t *pg, const pipeline_t *p, const char *id, const char *actor, pgc_result_fn *fn,
                       void *arg)
{
    json_t *steps = json_array(), *nodes = json_array();
    for (size_t i = 0; i < p->nsteps; i++) {
        const pipeline_step_t *st = &p->steps[i];
        json_t *needs = json_array();
        for (size_t m = 0; m < st->nneeds; m++)
            json_array_append_new(needs, json_string(p->steps[st->needs[m]].name));
        json_t *row = json_pack("{s:s,s:i,s:o,s:s}", "step", st->name, "pos", (int)i, "needs", needs, "cond",
                                pipeline_if_name(st->cond));
        if (st->approval != PIPELINE_APPROVAL_NONE) {
            json_object_set_new(row, "approval_role", json_string(pipeline_approval_name(st->approval)));
            json_object_set_new(row, "approval_timeout_s", json_integer(st->approval_timeout_s));
        }
        if (st->group[0]) {
            json_object_set_new(row, "cgroup", json_string(st->group));
            json_object_set_new(row, "cancel_in_progress", json_boolean(st->cancel_in_progress));
        }
        json_array_append_new(steps, row);
        for (size_t j = 0; j < st->nnodes; j++) {
            const pipeline_node_t *nd = &st->nodes[j];
            json_array_append_new(nodes, json_pack("{s:s,s:i,s:s,s:s,s:s,s:i,s:i,s:O}", "step", st->name, "idx",
                                                   nd->index, "name", nd->name, "queue", nd->queue, "kind",
                                                   nd->kind, "priority", nd->priority, "max_attempts",
                                                   nd->max_attempts, "spec", nd->spec));
        }
    }
    char *doc = json_dumps(p->doc, JSON_COMPACT);
    char *s = json_dumps(steps, JSON_COMPACT), *n = json_dumps(nodes, JSON_COMPACT);
    const char *params[6] = {id, p->name, doc, actor, s, n};
    pgc_query(pg,
              "SELECT * FROM devsys_pipeline_submit_take($1::uuid, $2, $3::jsonb, $4, $5::jsonb, $6::jsonb)", 6,
              params, fn, arg);
    free(doc);
    free(s);
    free(n);
    json_decref(steps);
    json_decref(nodes);
}

/* ----------------------------------------------------------------- publish */

struct publish {
    pgc_t *pg;
    rc_t *rc;
    char *prefix;
    pipelinedb_published_fn *done;
    void *arg;
    json_t *tasks;
    int pending, failed;
};

static void publish_unmarked(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    (void)res;
    (void)arg;
    if (err[0])
        log_error("pipeline: could not mark a task unpublished: %s", err);
}

static void publish_release(struct publish *pb)
{
    if (--pb->pending > 0)
        return;
    if (pb->done)
        pb->done(pb->arg, pb->tasks, pb->failed);
    json_decref(pb->tasks);
    free(pb->prefix);
    free(pb);
}

struct publish_one {
    struct publish *pb;
    char id[40];
};

static void published_one(void *arg, const char *err, const char *entry)
{
    (void)entry;
    struct publish_one *po = arg;
    struct publish *pb = po->pb;
    if (err[0]) {
        log_warn("pipeline: publish of task %s failed (%s); the reconciler republishes it", po->id, err);
        pb->failed++;
        taskdb_mark_unpublished(pb->pg, po->id, publish_unmarked, NULL);
    }
    free(po);
    publish_release(pb);
}

static void taken(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct publish *pb = arg;
    if (!res || err[0]) {
        /* taken or not, the reconciler finds them (published_at NULL) */
        log_warn("pipeline: taking new step tasks failed (%s); the reconciler publishes them", err);
        pb->failed = -1;
        publish_release(pb);
        return;
    }
    int c_id = taskdb_col(res, "id"), c_queue = taskdb_col(res, "queue"), c_kind = taskdb_col(res, "kind"),
        c_attempt = taskdb_col(res, "attempt"), c_spec = taskdb_col(res, "spec"), c_step = taskdb_col(res, "step"),
        c_idx = taskdb_col(res, "idx");
    for (int i = 0; i < PQntuples(res); i++) {
        if (PQgetisnull(res, i, c_id)) /* pipelinedb_submit's row when it took none */
            continue;
        const char *id = PQgetvalue(res, i, c_id);
        json_array_append_new(pb->tasks, json_pack("{s:s,s:s,s:i}", "id", id, "step", PQgetvalue(res, i, c_step),
                                                   "index", atoi(PQgetvalue(res, i, c_idx))));
        struct publish_one *po = xcalloc(1, sizeof *po);
        po->pb = pb;
        snprintf(po->id, sizeof po->id, "%s", id);
        pb->pending++;
        json_t *spec = json_loads(PQgetvalue(res, i, c_spec), 0, NULL);
        if (!spec || queue_publish(pb->rc, pb->prefix, PQgetvalue(res, i, c_queue), id, PQgetvalue(res, i, c_kind),
                                   strtol(PQgetvalue(res, i, c_attempt), NULL, 10), 0, spec, published_one, po) != 0)
            published_one(po, QUEUE_DISCONNECTED, NULL);
        json_decref(spec);
    }
    publish_release(pb);
}

static void step_supersede(pgc_t *pg, rc_t *rc, const char *prefix, const char *ids);

void pipelinedb_publish_taken(pgc_t *pg, rc_t *rc, const char *prefix, PGresult *res, int supersede,
                              const char *id, pipelinedb_published_fn *done, void *arg)
{
    struct publish *pb = xcalloc(1, sizeof *pb);
    *pb = (struct publish){pg, rc, xstrdup(prefix), done, arg, json_array(), 1, 0};
    if (supersede) {
        char lit[48];
        snprintf(lit, sizeof lit, "{%s}", id);
        step_supersede(pg, rc, prefix, lit);
    }
    taken(pg, res, "", pb);
}

void pipelinedb_publish(pgc_t *pg, rc_t *rc, const char *prefix, const char *const *ids, size_t n,
                        pipelinedb_published_fn *done, void *arg)
{
    struct publish *pb = xcalloc(1, sizeof *pb);
    *pb = (struct publish){pg, rc, xstrdup(prefix), done, arg, json_array(), 1, 0};
    pgarr_t *a = pgarr_new();
    for (size_t i = 0; i < n; i++)
        pgarr_add(a, ids[i]);
    char *lit = pgarr_finish(a);
    taskdb_pipeline_take(pg, lit, taken, pb);
    /* a step of theirs that entered its group's line may supersede a running one */
    step_supersede(pg, rc, prefix, lit);
    free(lit);
}

/* ------------------------------------------------------------------- reads */

/* A node's live state is its task's while it runs; the task may have aged
 * out into history (retention), then the node's own record answers. */
#define NODE_JSON                                                                                          \
    "jsonb_build_object('name', n.name, 'index', n.idx, 'state',"                                          \
    "  CASE WHEN n.state = 'queued' THEN coalesce(t.state, 'queued') ELSE n.state END,"                    \
    "  'task_id', n.task_id, 'runs', n.attempts, 'attempt', t.attempt, 'started_at', t.started_at,"        \
    "  'finished_at', t.finished_at, 'duration_s', extract(epoch FROM t.finished_at - t.started_at),"     \
    "  'error', t.last_error, 'links', CASE WHEN n.task_id IS NOT NULL THEN jsonb_build_object("          \
    "    'task', '/v1/tasks/' || n.task_id, 'report', '/v1/tasks/' || n.task_id || '/report') END)"

#define PIPELINE_HEAD                                                                                      \
    "'id', p.id, 'name', p.name, 'state', p.state, 'runs', p.runs, 'created_by', p.created_by,"            \
    " 'created_at', p.created_at, 'finished_at', p.finished_at, 'concurrency', CASE WHEN p.cgroup IS NOT"  \
    " NULL THEN jsonb_build_object('group', p.cgroup, 'cancel_in_progress', p.cancel_in_progress,"         \
    " 'superseded_by', p.superseded_by) END"

/* A gated step's approval of the pipeline's current run (the latest one;
 * lateral "ap"), and what a refusal says on its step. */
#define STEP_APPROVAL_JOIN                                                                                 \
    " LEFT JOIN LATERAL (SELECT a.* FROM approvals a WHERE a.pipeline_id = s.pipeline_id AND a.step = s.step" \
    "   ORDER BY a.run DESC LIMIT 1) ap ON true"
#define STEP_APPROVAL                                                                                      \
    "'approval', CASE WHEN ap.id IS NOT NULL THEN jsonb_build_object('id', ap.id, 'state',"                \
    "   coalesce(ap.decision, 'pending'), 'role', ap.role, 'timeout_s', ap.timeout_s, 'requested_at',"     \
    "   ap.requested_at, 'deadline', ap.deadline, 'decided_by', ap.decided_by, 'decided_at', ap.decided_at," \
    "   'comment', ap.comment, 'link', '/v1/approvals/' || ap.id) END,"                                    \
    " 'error', CASE ap.decision WHEN 'timed_out' THEN ap.comment WHEN 'rejected' THEN 'approval rejected by '" \
    "   || ap.decided_by || coalesce(': ' || ap.comment, '') END,"

void pipelinedb_get(pgc_t *pg, const char *id, pgc_result_fn *fn, void *arg)
{
    const char *p[1] = {id};
    pgc_query(pg,
              "SELECT jsonb_build_object(" PIPELINE_HEAD ", 'steps', (SELECT jsonb_agg(jsonb_build_object("
              "   'step', s.step, 'needs', to_jsonb(s.needs), 'if', s.cond, 'state', s.state,"
              "   'concurrency', CASE WHEN s.cgroup IS NOT NULL THEN jsonb_build_object('group', s.cgroup,"
              "     'cancel_in_progress', s.cancel_in_progress, 'superseded_by', s.superseded_by) END,"
              "   " STEP_APPROVAL
              "   'started_at', x.started_at, 'finished_at', x.finished_at,"
              "   'duration_s', extract(epoch FROM x.finished_at - x.started_at), 'nodes', x.nodes) ORDER BY s.pos)"
              "  FROM pipeline_steps s" STEP_APPROVAL_JOIN ", LATERAL (SELECT jsonb_agg(" NODE_JSON " ORDER BY n.idx) AS nodes,"
              "    min(t.started_at) AS started_at,"
              "    CASE WHEN s.state NOT IN ('waiting', 'running') THEN max(t.finished_at) END AS finished_at"
              "    FROM pipeline_nodes n LEFT JOIN LATERAL (SELECT h.state, h.attempt, h.started_at,"
              "      h.finished_at, h.last_error FROM tasks h WHERE h.id = n.task_id"
              "      UNION ALL SELECT h.state, h.attempt, h.started_at, h.finished_at, h.last_error"
              "      FROM tasks_history h WHERE h.id = n.task_id LIMIT 1) t ON true"
              "    WHERE n.pipeline_id = s.pipeline_id AND n.step = s.step) x"
              "  WHERE s.pipeline_id = p.id))::text"
              " FROM pipelines p WHERE p.id = $1::uuid",
              1, p, fn, arg);
}

void pipelinedb_list(pgc_t *pg, const char *name, const char *after_us, const char *after_id, const char *limit,
                     const char *queues, const char *apps, pgc_result_fn *fn, void *arg)
{
    const char *p[6] = {name, after_us, after_id, limit, queues, apps};
    pgc_query(pg,
              "SELECT jsonb_build_object(" PIPELINE_HEAD ", 'steps', (SELECT jsonb_object_agg(s.state, s.n)"
              "   FROM (SELECT state, count(*) AS n FROM pipeline_steps WHERE pipeline_id = p.id GROUP BY state) s)"
              "  )::text AS json,"
              " (extract(epoch FROM p.created_at) * 1000000)::bigint || '_' || p.id AS cursor"
              " FROM pipelines p WHERE ($1::text IS NULL OR p.name = $1)"
              " AND ($2::bigint IS NULL OR (p.created_at, p.id) <"
              "   ('epoch'::timestamptz + $2::bigint * interval '1 microsecond', $3::uuid))"
              " AND (($5::text[] IS NULL AND $6::text[] IS NULL) OR NOT EXISTS (SELECT 1 FROM pipeline_nodes n"
              "   WHERE n.pipeline_id = p.id AND NOT devsys_spec_in_scope(n.spec || jsonb_build_object('queue',"
              "     n.queue), $5::text[], $6::text[])))"
              " ORDER BY p.created_at DESC, p.id DESC LIMIT $4::int",
              6, p, fn, arg);
}

/* ------------------------------------------------------- cancel, rerun */

void pipelinedb_cancel(pgc_t *pg, const char *id, pgc_result_fn *fn, void *arg)
{
    const char *p[1] = {id};
    pgc_query(pg, "SELECT devsys_pipeline_cancel($1::uuid)::text AS result", 1, p, fn, arg);
}

void pipelinedb_rerun(pgc_t *pg, const char *id, pgc_result_fn *fn, void *arg)
{
    const char *p[1] = {id};
    pgc_query(pg, "SELECT devsys_pipeline_rerun($1::uuid) AS created", 1, p, fn, arg);
}

/* ------------------------------------------- signals, concurrency groups */

static void signalled(void *arg, const char *err, const char *entry)
{
    (void)entry;
    char *task = arg;
    if (err[0])
        log_warn("pipeline cancel: control message for %s failed (%s); its agent stops it at its next lease"
                 " renewal", task, queue_disconnected(err) ? "redis unavailable" : err);
    free(task);
}

void pipelinedb_signal_cancelled(rc_t *rc, const char *prefix, const json_t *tasks)
{
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t) {
        /* running tasks: their agents are told at once (else at lease renewal) */
        if (strcmp(json_string_value(json_object_get(t, "was")), "running") != 0)
            continue;
        char *task = xstrdup(json_string_value(json_object_get(t, "id")));
        if (queue_control_cancel(rc, prefix, task, signalled, task) != 0)
            signalled(task, QUEUE_DISCONNECTED, NULL);
    }
}

/* One pass's shared context: every statement in flight holds a reference. */
struct sweep {
    pgc_t *pg;
    rc_t *rc;
    char *prefix;
    int refs;
};

static struct sweep *sweep_new(pgc_t *pg, rc_t *rc, const char *prefix)
{
    struct sweep *sw = xcalloc(1, sizeof *sw);
    *sw = (struct sweep){pg, rc, xstrdup(prefix), 1};
    return sw;
}

static struct sweep *sweep_ref(struct sweep *sw)
{
    sw->refs++;
    return sw;
}

static void sweep_unref(struct sweep *sw)
{
    if (--sw->refs > 0)
        return;
    free(sw->prefix);
    free(sw);
}

struct superseding {
    struct sweep *sw;
    char id[40];
};

static void superseded_one(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    struct superseding *su = arg;
    struct sweep *sw = su->sw;
    if (!res || err[0]) {
        log_warn("pipeline %s: cancelling it for a newer one of its concurrency group failed (%s); the"
                 " reconciler tries again", su->id, err);
    } else if (!PQgetisnull(res, 0, 0)) {
        json_t *r = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
        log_info("pipeline %s: cancelled, superseded by a newer one of its concurrency group", su->id);
        pipelinedb_signal_cancelled(sw->rc, sw->prefix, json_object_get(r, "tasks"));
        json_decref(r);
        /* its end started the group's next pipeline (woken_by): publish it */
        const char *ids[1] = {su->id};
        pipelinedb_publish(pg, sw->rc, sw->prefix, ids, 1, NULL, NULL);
    }
    sweep_unref(sw);
    free(su);
}

static void superseded_found(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    struct sweep *sw = arg;
    if (!res || err[0]) {
        log_warn("pipelines: finding superseded pipelines failed: %s", err);
    } else {
        /* one statement (one transaction) each: a cancel's lock order */
        for (int i = 0; i < PQntuples(res); i++) {
            struct superseding *su = xcalloc(1, sizeof *su);
            su->sw = sweep_ref(sw);
            snprintf(su->id, sizeof su->id, "%s", PQgetvalue(res, i, 0));
            const char *p[1] = {su->id};
            pgc_query(pg, "SELECT devsys_pipeline_supersede($1::uuid)::text", 1, p, superseded_one, su);
        }
    }
    sweep_unref(sw);
}

/* Step concurrency groups (migrations/017): the running steps that a newer
 * step of their group with cancel_in_progress supersedes, each cancelled in a
 * statement of its own (task rows first), as pipelines are above. */
struct step_superseding {
    struct sweep *sw;
    char id[40];
    char step[80];
};

static void step_superseded_one(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    struct step_superseding *su = arg;
    struct sweep *sw = su->sw;
    if (!res || err[0]) {
        log_warn("pipeline %s: cancelling step %s for a newer one of its concurrency group failed (%s); the"
                 " reconciler tries again", su->id, su->step, err);
    } else if (!PQgetisnull(res, 0, 0)) {
        json_t *r = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
        log_info("pipeline %s: step %s cancelled, superseded by a newer one of its concurrency group", su->id,
                 su->step);
        pipelinedb_signal_cancelled(sw->rc, sw->prefix, json_object_get(r, "tasks"));
        json_decref(r);
        /* its end started its group's next step (woken_by): publish it */
        const char *ids[1] = {su->id};
        pipelinedb_publish(pg, sw->rc, sw->prefix, ids, 1, NULL, NULL);
    }
    sweep_unref(sw);
    free(su);
}

static void step_superseded_found(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    struct sweep *sw = arg;
    if (!res || err[0]) {
        log_warn("pipelines: finding superseded steps failed: %s", err);
    } else {
        for (int i = 0; i < PQntuples(res); i++) {
            struct step_superseding *su = xcalloc(1, sizeof *su);
            su->sw = sweep_ref(sw);
            snprintf(su->id, sizeof su->id, "%s", PQgetvalue(res, i, 0));
            snprintf(su->step, sizeof su->step, "%s", PQgetvalue(res, i, 1));
            const char *p[2] = {su->id, su->step};
            pgc_query(pg, "SELECT devsys_step_supersede($1::uuid, $2)::text", 2, p, step_superseded_one, su);
        }
    }
    sweep_unref(sw);
}

/* ids: a uuid[] literal of pipelines whose steps may supersede, NULL: all. */
static void step_supersede(pgc_t *pg, rc_t *rc, const char *prefix, const char *ids)
{
    const char *p[1] = {ids};
    pgc_query(pg, "SELECT pipeline_id, step FROM devsys_step_superseded($1::uuid[])", 1, p, step_superseded_found,
              sweep_new(pg, rc, prefix));
}

void pipelinedb_supersede(pgc_t *pg, rc_t *rc, const char *prefix, const char *id)
{
    struct sweep *sw = sweep_new(pg, rc, prefix);
    const char *p[1] = {id};
    pgc_query(pg, "SELECT devsys_pipeline_superseded($1::uuid)", 1, p, superseded_found, sw);
    if (!id)
        step_supersede(pg, rc, prefix, NULL); /* with an id: its publish does it */
}

/* A pass's answer: a JSON array of pipelines with new tasks, to publish. */
static void swept(pgc_t *pg, PGresult *res, const char *err, const char *what, struct sweep *sw)
{
    if (!res || err[0]) {
        log_warn("pipelines: the %s pass failed: %s", what, err);
    } else {
        json_t *ids = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
        size_t n = json_array_size(ids);
        const char **v = xcalloc(n + 1, sizeof *v);
        for (size_t i = 0; i < n; i++)
            v[i] = json_string_value(json_array_get(ids, i));
        if (n) {
            log_info("pipelines: the %s pass advanced %zu pipeline(s)", what, n);
            pipelinedb_publish(pg, sw->rc, sw->prefix, v, n, NULL, NULL);
        }
        free(v);
        json_decref(ids);
    }
    sweep_unref(sw);
}

/* the failed steps may have made others due (if: failure, always) */
static void expired(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    swept(pg, res, err, "approval timeout", arg);
}

/* step groups whose next in line nobody started (its pipeline was busy) */
static void woken(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    swept(pg, res, err, "step group", arg);
}

void pipelinedb_sweep(pgc_t *pg, rc_t *rc, const char *prefix)
{
    pgc_query(pg, "SELECT to_jsonb(devsys_approvals_expire(" PIPELINEDB_SWEEP_BATCH "))::text", 0, NULL, expired,
              sweep_new(pg, rc, prefix));
    pgc_query(pg, "SELECT to_jsonb(devsys_step_groups_sweep(" PIPELINEDB_SWEEP_BATCH "))::text", 0, NULL, woken,
              sweep_new(pg, rc, prefix));
    pipelinedb_supersede(pg, rc, prefix, NULL);
}
