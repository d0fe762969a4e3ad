/* http_tasks: the task routes: submit (one spec or a batch: recorded in
 * PostgreSQL, then published to Redis), get (list and search: http_search.c), cancel
 * (PostgreSQL first, then the agents' control stream) and checkpoints (paged).
 * PostgreSQL builds the JSON of task rows itself (jsonb_build_object), so the
 * read paths are one query and one copy. Reads of finished tasks look in the
 * history tables too (retention moved them there). */
#include "http_internal.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/time.h>

#include "envelope.h"
#include "uuid.h"
#include "log.h"
#include "queue_metrics.h"
#include "metrics.h"
#include "pipelinedb.h"
#include "queue.h"
#include "spec.h"
#include "taskdb.h"
#include "xalloc.h"

#define CHECKPOINTS_MAX 1000
#define SUBMIT_MAX_BATCH 10000

/* ------------------------------------------------------------------ submit */

static void mark_unpublished_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    (void)res;
    (void)arg;
    if (err[0])
        log_error("could not mark tasks unpublished: %s", err);
}

/* A publish that failed: the reconciler republishes the task. */
static void mark_unpublished(api_t *api, const char *id)
{
    taskdb_mark_unpublished(api->pg, id, mark_unpublished_done, NULL);
}

struct publish_ctx {
    struct req *q;
    char id[37];
};

static void publish_settled(struct req *q);

static void publish_one_done(void *arg, const char *err, const char *entry)
{
    (void)entry;
    struct publish_ctx *pc = arg;
    if (err[0]) {
        log_warn("publish of %s failed (%s); the reconciler will republish it from PostgreSQL", pc->id, err);
        mark_unpublished(pc->q->api, pc->id);
    }
    struct req *q = pc->q;
    free(pc);
    publish_settled(q);
}

/* One XADD answered (or the submit's own hold released): the reply goes out
 * when the last one is in. */
static void publish_settled(struct req *q)
{
    if (--q->publishing > 0)
        return;
    if (q->accepted && q->n == 1 && q->ids[0][0]) {
        reply_json(q, 202, json_pack("{s:s,s:s}", "task_id", q->ids[0], "state", q->states[0]));
        return;
    }
    json_t *tasks = json_array();
    for (size_t i = 0; i < q->n; i++)
        json_array_append_new(tasks, json_pack("{s:s,s:s,s:b}", "id", q->ids[i], "state", q->states[i],
                                               "created", q->created[i]));
    reply_json(q, q->any_created ? 201 : 200, json_pack("{s:o}", "tasks", tasks));
}

static void insert_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct req *q = arg;
    if (!res || err[0]) {
        log_error("submit: insert failed: %s", err);
        /* Not sent or refused by the server: nothing was recorded. No answer
         * (timeout, connection lost): the insert may have committed. */
        reply_db_unavailable(q, err,
                             res || pgc_err_not_sent(err)
                                 ? "the tasks were not recorded; retry"
                                 : "the outcome is unknown: the tasks may have been recorded; retry with the same"
                                   " idempotency_key to get the existing task (200) instead of a new one");
        return;
    }
    int rows = PQntuples(res);
    int c_ord = taskdb_col(res, "ord"), c_id = taskdb_col(res, "id"), c_created = taskdb_col(res, "created"),
        c_state = taskdb_col(res, "state");
    for (int i = 0; i < rows; i++) {
        long ord = strtol(PQgetvalue(res, i, c_ord), NULL, 10) - 1;
        if (ord < 0 || (size_t)ord >= q->n)
            continue;
        if (PQgetisnull(res, i, c_id)) {
            reply_error(q, 409, "a task with the same idempotency_key is being submitted concurrently; retry");
            return;
        }
        snprintf(q->ids[ord], sizeof q->ids[ord], "%s", PQgetvalue(res, i, c_id));
        q->created[ord] = PQgetvalue(res, i, c_created)[0] == 't';
        snprintf(q->states[ord], sizeof q->states[ord], "%s", PQgetvalue(res, i, c_state));
    }
    /* later duplicates of a key inside the batch share the first one's task */
    for (size_t i = 0; i < q->n; i++) {
        if (q->ids[i][0] || !q->specs[i]->idempotency_key)
            continue;
        for (size_t j = 0; j < i; j++)
            if (q->specs[j]->idempotency_key &&
                strcmp(q->specs[j]->idempotency_key, q->specs[i]->idempotency_key) == 0) {
                memcpy(q->ids[i], q->ids[j], sizeof q->ids[i]);
                memcpy(q->states[i], q->states[j], sizeof q->states[i]);
                q->created[i] = 0;
                break;
            }
    }
    struct timeval tv;
    gettimeofday(&tv, NULL);
    long long now_ms = (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
    json_t *ids = json_array();
    q->publishing = 1; /* held until every XADD is queued */
    for (size_t i = 0; i < q->n; i++) {
        if (!q->created[i])
            continue;
        q->any_created = 1;
        json_array_append_new(ids, json_string(q->ids[i]));
        const spec_t *s = q->specs[i];
        if (log_enabled(LOG_INFO)) {
            struct log_ctx c = {.task_id = q->ids[i], .request_id = q->request_id, .queue = s->queue,
                                .pipeline_id = s->pipeline ? json_string_value(json_object_get(s->pipeline, "id"))
                                                           : NULL};
            log_task(LOG_INFO, &c, "task accepted: kind %s", s->kind);
        }
        qmetrics_note(q->api->qmetrics, s->queue);
        struct publish_ctx *pc = xcalloc(1, sizeof *pc);
        pc->q = q;
        memcpy(pc->id, q->ids[i], sizeof pc->id);
        if (queue_publish(q->api->rc, q->api->prefix, s->queue, q->ids[i], s->kind, 0, now_ms, s->json,
                          publish_one_done, pc) == 0) {
            q->publishing++;
        } else {
            free(pc);
            log_warn("submit: redis not connected; task %s stays queued in PostgreSQL", q->ids[i]);
            mark_unpublished(q->api, q->ids[i]);
        }
    }
    metric_add(q->api->m_submitted, (double)json_array_size(ids));
    if (json_array_size(ids))
        req_audit_note(q, json_string_value(json_array_get(ids, 0)),
              json_pack("{s:I,s:o}", "count", (json_int_t)json_array_size(ids), "ids", ids));
    else
        json_decref(ids);
    publish_settled(q);
}

void tasks_submit(struct req *q, const struct route_args *a)
{
    (void)a;
    json_t *body = req_body_json(q);
    if (!body)
        return;
    if (json_is_object(body) && json_object_get(body, "next")) {
        pipelines_submit_next(q, body); /* "next" is sugar for a linear pipeline */
        return;
    }
    tasks_submit_json(q, body, 0);
}

void tasks_submit_json(struct req *q, json_t *body, int accepted)
{
    q->accepted = accepted;
    size_t n = json_is_array(body) ? json_array_size(body) : 1;
    if (n == 0 || n > SUBMIT_MAX_BATCH) {
        json_decref(body);
        reply_error(q, n ? 413 : 400, n ? "a batch holds at most 10000 specs" : "empty batch: no specs");
        return;
    }
    q->n = n;
    q->specs = xcalloc(n, sizeof *q->specs);
    q->ids = xcalloc(n, sizeof *q->ids);
    q->created = xcalloc(n, sizeof *q->created);
    q->states = xcalloc(n, sizeof *q->states);
    json_t *errors = json_array();
    int too_large = 0;
    taskdb_rows_t *rows = taskdb_rows_new();
    for (size_t i = 0; i < n; i++) {
        json_t *j = json_is_array(body) ? json_array_get(body, i) : body;
        char err[SPEC_ERR_MAX];
        char *text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
        size_t tlen = text ? strlen(text) : 0;
        if (tlen > SPEC_MAX_BYTES) {
            snprintf(err, sizeof err, "spec: %zu bytes exceeds the limit of %d", tlen, SPEC_MAX_BYTES);
            too_large = 1;
        } else if ((q->specs[i] = spec_from_json(j, err, sizeof err)) && json_object_get(j, "next")) {
            snprintf(err, sizeof err, "next: submit a spec with next alone, not in a batch (it becomes a pipeline)");
        } else if (q->specs[i]) {
            const spec_t *s = q->specs[i];
            uuid_v7(q->ids[i]);
            taskdb_submit_add(rows, q->ids[i], s->queue, s->kind, text, s->retry.max_attempts, s->priority,
                              s->idempotency_key, s->unique_key, s->unique_for_s);
            q->ids[i][0] = '\0'; /* filled from the insert's answer */
            free(text);
            continue;
        }
        free(text);
        const char *colon = strchr(err, ':');
        json_array_append_new(errors, json_pack("{s:I,s:s%,s:s}", "index", (json_int_t)i, "field", err,
                                                colon ? (size_t)(colon - err) : strlen(err), "message",
                                                err));
    }
    json_decref(body);
    if (json_array_size(errors)) {
        taskdb_rows_free(rows);
        reply_json(q, too_large ? 413 : 400,
                   json_pack("{s:s,s:o}", "error", too_large ? "spec too large" : "invalid spec", "errors",
                             errors));
    } else {
        json_decref(errors);
        /* ids are generated here, so the rows map back by ordinality */
        taskdb_submit(q->api->pg, rows, insert_done, q);
    }
}

/* ------------------------------------------------------------------- reads */

/* The attempts of task t, oldest first, wherever retention put them. */
#define TASK_ATTEMPTS                                                                               \
    "SELECT coalesce(jsonb_agg(jsonb_build_object('attempt', a.attempt, 'agent', a.agent, "         \
    "'started_at', a.started_at, 'finished_at', a.finished_at, 'outcome', a.outcome, 'error', "     \
    "a.error) ORDER BY a.attempt), '[]'::jsonb) FROM (SELECT attempt, agent, started_at, "          \
    "finished_at, outcome, error FROM task_attempts WHERE task_id = t.id UNION ALL SELECT attempt, " \
    "agent, started_at, finished_at, outcome, error FROM task_attempts_history WHERE task_id = t.id) a"

/* pgc callback (arg: the req) for a query about one task that returns its
 * answer as one JSON text column: 200 with it, 404 when no row, 503 when
 * PostgreSQL failed. */
static void reply_task_row(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct req *q = arg;
    if (!res || err[0])
        reply_db_unavailable(q, err, NULL);
    else if (PQntuples(res) == 0)
        reply_error(q, 404, "task not found");
    else
        reply_raw(q, 200, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
}

void tasks_get(struct req *q, const struct route_args *a)
{
    const char *id = a->id;
    if (!uuid_valid(id, strlen(id))) {
        reply_error(q, 404, "task not found (not a task id)");
        return;
    }
    const char *params[1] = {id};
    /* A finished task may have moved to history (retention): the LIMIT stops
     * at the hot table's row when there is one. */
    pgc_query(q->api->pg,
              "SELECT jsonb_build_object(" TASK_JSON_FIELDS
              ", 'output_tail', output_tail, 'source', source, 'spec', spec, 'attempts', (" TASK_ATTEMPTS "))::text"
              " FROM (SELECT * FROM tasks WHERE id = $1::uuid"
              "  UNION ALL SELECT * FROM tasks_history WHERE id = $1::uuid LIMIT 1) t",
              1, params, reply_task_row, q);
}

/* ------------------------------------------------------------------ cancel */

static void cancel_published(void *arg, const char *err, const char *entry)
{
    (void)entry;
    struct op *o = arg;
    int ok = !err[0];
    if (!ok)
        log_warn("cancel %s: control message failed (%s); the agent stops it at its next lease renewal",
                 o->task, op_redis_why(err));
    json_t *j = json_pack("{s:s,s:s,s:s,s:b}", "id", o->task, "state", "cancelled", "previous_state", "running",
                          "signalled", ok);
    if (!ok)
        json_object_set_new(j, "note", json_string("redis unavailable: the agent running it stops it at its next"
                                                   " lease renewal; the task stays cancelled in PostgreSQL"));
    op_reply(o, 200, j);
}

static void cancel_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct op *o = arg;
    if (!op_have_row(o, res, err, "task not found"))
        return;
    snprintf(o->state, sizeof o->state, "%s", PQgetvalue(res, 0, taskdb_col(res, "was")));
    if (strcmp(PQgetvalue(res, 0, taskdb_col(res, "cancelled")), "1") != 0) {
        op_conflict(o, "the task has already finished");
        return;
    }
    req_audit_note(o->q, o->task, json_pack("{s:s}", "previous_state", o->state));
    int c_pl = taskdb_col(res, "pipeline_id");
    if (!PQgetisnull(res, 0, c_pl)) {
        /* a pipeline node: the cancel may have made later steps due (if: always) */
        const char *pl[1] = {PQgetvalue(res, 0, c_pl)};
        pipelinedb_publish(o->q->api->pg, o->q->api->rc, o->q->api->prefix, pl, 1, NULL, NULL);
    }
    if (strcmp(o->state, "running") == 0) {
        /* Agents follow the capped control stream with a blocking XREAD;
         * each also finds cancelled tasks when it renews its leases. */
        if (queue_control_cancel(o->q->api->rc, o->q->api->prefix, o->task, cancel_published, o) != 0)
            cancel_published(o, QUEUE_DISCONNECTED, NULL);
        return;
    }
    op_reply(o, 200, json_pack("{s:s,s:s,s:s,s:b}", "id", o->task, "state", "cancelled", "previous_state",
                               o->state, "signalled", 0));
}

/* One statement: lock the row, cancel it if it has not finished, and return
 * the state it had, so the answer tells running (signal the agent) from
 * queued/retrying (the agent skips it on delivery) and 409 from 404. */
void tasks_cancel(struct req *q, const struct route_args *a)
{
    const char *id = a->id;
    if (!uuid_valid(id, strlen(id))) {
        reply_error(q, 404, "task not found (not a task id)");
        return;
    }
    struct op *o = op_new(q, NULL);
    snprintf(o->task, sizeof o->task, "%s", id);
    taskdb_cancel(q->api->pg, o->task, cancel_done, o);
}

/* ------------------------------------------------------------- checkpoints */

static int checkpoint_cursor_ok(const char *s)
{
    size_t n = strspn(s, "0123456789");
    return n > 0 && n < 19 && s[n] == '\0';
}

void tasks_checkpoints(struct req *q, const struct route_args *a)
{
    const char *id = a->id;
    if (!uuid_valid(id, strlen(id))) {
        reply_error(q, 404, "task not found (not a task id)");
        return;
    }
    struct op_page pg;
    if (op_parse_page(q->query, CHECKPOINTS_MAX, CHECKPOINTS_MAX, checkpoint_cursor_ok, &pg) != 0) {
        reply_error(q, 400, pg.why);
        return;
    }
    const char *params[3] = {id, pg.after[0] ? pg.after : "0", pg.limit};
    pgc_query(q->api->pg,
              "WITH page AS (SELECT id, attempt, data, created_at FROM checkpoints"
              "   WHERE task_id = $1::uuid AND id > $2::bigint"
              "  UNION ALL SELECT id, attempt, data, created_at FROM checkpoints_history"
              "   WHERE task_id = $1::uuid AND id > $2::bigint ORDER BY id LIMIT $3::int)"
              " SELECT jsonb_build_object('task_id', t.id, 'last', t.checkpoint,"
              "   'checkpoints', coalesce((SELECT jsonb_agg(jsonb_build_object('id', p.id, 'attempt', p.attempt,"
              "       'data', p.data, 'created_at', p.created_at) ORDER BY p.id) FROM page p), '[]'::jsonb),"
              "   'next', CASE WHEN (SELECT count(*) FROM page) = $3::int"
              "               THEN (SELECT max(id) FROM page)::text END)::text"
              " FROM (SELECT id, checkpoint FROM tasks WHERE id = $1::uuid"
              "  UNION ALL SELECT id, checkpoint FROM tasks_history WHERE id = $1::uuid LIMIT 1) t",
              3, params, reply_task_row, q);
}
