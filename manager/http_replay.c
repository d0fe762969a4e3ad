/* http_replay: replaying dead letters (POST /v1/dlq/{queue}/{id}/replay and
 * /v1/dlq/{queue}/replay, that one over a filter, http_dlq_bulk.c) and
 * retrying a task (POST /v1/tasks/{id}/retry: dead or cancelled): each stored
 * spec is validated on its own, then the task goes back to queued in
 * PostgreSQL (same id, attempts kept) and is published to Redis. */
#include "http_internal.h"

#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "queue.h"
#include "taskdb.h"
#include "uuid.h"
#include "xalloc.h"

#define REPLAY_BATCH 500   /* tasks moved per statement by "replay all" */
#define REPLAY_FAILED_MAX 100 /* dead letters "replay all" could not replay, listed one by one */
#define RETRY_STATES "only a dead or cancelled task can be retried"

/* -------------------------------------------------------------- replay one */

static void mark_published(api_t *api, const char *ids_literal, int ok);

static void replay_published(void *arg, const char *err, const char *stream_entry)
{
    struct op *o = arg;
    int ok = !err[0];
    if (!ok)
        log_warn("replay %s: publish failed (%s); the reconciler will publish it", o->task, op_redis_why(err));
    pgarr_t *a = pgarr_new();
    pgarr_add(a, o->task);
    char *lit = pgarr_finish(a);
    mark_published(o->q->api, lit, ok);
    free(lit);
    req_audit_note(o->q, o->task,
          json_pack("{s:s,s:s?,s:b}", "queue", o->queue, "entry_id", o->entry[0] ? o->entry : NULL, "published",
                    ok));
    json_t *j = json_pack("{s:s,s:s,s:s?,s:s,s:s,s:b}", "id", o->task, "queue", o->queue, "entry_id",
                          o->entry[0] ? o->entry : NULL, "state", "queued", "was", o->state, "published", ok);
    if (ok)
        json_object_set_new(j, "stream_entry", json_string(stream_entry));
    else
        json_object_set_new(j, "note", json_string("redis unavailable: the task is queued in PostgreSQL and the"
                                                   " reconciler will publish it once redis is back"));
    op_reply(o, 200, j);
}

static void replay_updated(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct op *o = arg;
    if (!op_have_row(o, res, err, "task %s of this dead letter is not in queue %s", o->task, o->queue))
        return;
    int c_kind = taskdb_col(res, "kind"), c_entry = taskdb_col(res, "dlq_entry");
    snprintf(o->state, sizeof o->state, "%s", PQgetvalue(res, 0, taskdb_col(res, "was")));
    if (PQgetisnull(res, 0, c_kind)) {
        op_conflict(o, o->kind == OP_RETRY ? RETRY_STATES : "only a dead task can be replayed");
        return;
    }
    if (o->kind == OP_RETRY && !PQgetisnull(res, 0, c_entry)) /* a dead task's letter goes with it */
        snprintf(o->entry, sizeof o->entry, "%s", PQgetvalue(res, 0, c_entry));
    json_t *spec = json_loads(PQgetvalue(res, 0, taskdb_col(res, "spec")), 0, NULL);
    if (!spec || queue_replay(o->q->api->rc, o->q->api->prefix, o->queue, o->entry[0] ? o->entry : NULL, o->task,
                              PQgetvalue(res, 0, c_kind), spec, replay_published, o) != 0)
        replay_published(o, QUEUE_DISCONNECTED, NULL);
    json_decref(spec);
}

/* Validates a stored spec as a submit would; returns its budget of attempts,
 * or 0 with the reason in err. */
static int replay_budget(const char *spec_text, char *err, size_t errlen)
{
    spec_t *s = spec_parse(spec_text, strlen(spec_text), err, errlen);
    if (!s)
        return 0;
    int budget = s->retry.max_attempts;
    spec_free(s);
    return budget;
}

static void replay_checked(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct op *o = arg;
    if (!op_have_row(o, res, err, "task %s of this dead letter is not in queue %s", o->task, o->queue))
        return;
    snprintf(o->state, sizeof o->state, "%s", PQgetvalue(res, 0, 0));
    if (strcmp(o->state, "dead") != 0) {
        op_conflict(o, "only a dead task can be replayed");
        return;
    }
    char why[SPEC_ERR_MAX];
    int budget = replay_budget(PQgetvalue(res, 0, 1), why, sizeof why);
    if (!budget) {
        op_reply(o, 422, json_pack("{s:s,s:s,s:s?,s:s}", "error", "the dead letter's spec is not valid: it stays in the DLQ",
                                   "id", o->task, "entry_id", o->entry[0] ? o->entry : NULL, "reason", why));
        return;
    }
    /* any state: the answer tells 409 (not dead any more) from 404 */
    taskdb_rows_t *rows = taskdb_rows_new();
    taskdb_replay_add(rows, o->task, budget);
    taskdb_replay(o->q->api->pg, rows, o->queue, 1, replay_updated, o);
}

void replay_one(struct op *o)
{
    if (!o->task[0]) {
        op_error(o, 409, "dead letter %s carries no valid task id; purge it instead", o->entry);
        return;
    }
    const char *params[2] = {o->task, o->queue};
    pgc_query(o->q->api->pg, "SELECT state, spec::text FROM tasks WHERE id = $1::uuid AND queue = $2", 2, params,
              replay_checked, o);
}

/* -------------------------------------------------------------- replay all */

/* ok: the XADD happened. Otherwise the reconciler publishes the task once
 * Redis answers, whatever the stream holds. */
static void mark_published(api_t *api, const char *ids_literal, int ok)
{
    taskdb_mark_published(api->pg, ids_literal, ok, NULL, NULL);
}

struct replay_ctx {
    struct op *o;
    char id[40];
};

static void replay_all_batch(struct op *o);

static void replay_all_sent(void *arg, const char *err, const char *stream_entry)
{
    (void)stream_entry;
    struct replay_ctx *c = arg;
    struct op *o = c->o;
    if (c->id[0]) {
        int ok = !err[0];
        pgarr_add(ok ? o->ok_ids : o->lost_ids, c->id);
        o->published += ok;
        o->count++;
    }
    free(c);
    if (--o->pending > 0)
        return;
    char *ok_lit = pgarr_finish(o->ok_ids), *lost_lit = pgarr_finish(o->lost_ids);
    o->ok_ids = o->lost_ids = NULL;
    if (strcmp(ok_lit, "{}") != 0)
        mark_published(o->q->api, ok_lit, 1);
    if (strcmp(lost_lit, "{}") != 0)
        mark_published(o->q->api, lost_lit, 0);
    free(ok_lit);
    free(lost_lit);
    replay_all_batch(o);
}

static void replay_all_finish(struct op *o, const char *err)
{
    if (o->count || !err)
        req_audit_note(o->q, o->queue,
              json_pack("{s:b,s:o,s:I,s:I,s:I,s:b}", "all", 1, "filter", dlq_filter_json(o->filter), "count",
                        (json_int_t)o->count, "published", (json_int_t)o->published, "failed",
                        (json_int_t)o->failed, "more", o->more));
    json_t *j = json_pack("{s:s,s:o,s:I,s:I,s:I,s:O,s:b}", "queue", o->queue, "filter", dlq_filter_json(o->filter),
                          "replayed", (json_int_t)o->count, "published", (json_int_t)o->published, "failed_count",
                          (json_int_t)o->failed, "failed", o->acc, "more", o->more);
    if (o->failed > REPLAY_FAILED_MAX)
        json_object_set_new(j, "failed_truncated", json_true());
    if (err) {
        json_object_set_new(j, "error", json_sprintf("database unavailable after %ld tasks: %s", o->count, err));
        evhttp_add_header(evhttp_request_get_output_headers(o->q->r), "Retry-After", DB_RETRY_AFTER_S);
        op_reply(o, 503, j);
        return;
    }
    if (o->published < o->count)
        json_object_set_new(j, "note", json_string("redis unavailable for some tasks: they are queued in"
                                                   " PostgreSQL and the reconciler will publish them"));
    op_reply(o, 200, j);
}

static void replay_all_rows(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct op *o = arg;
    if (!res || err[0]) {
        replay_all_finish(o, err[0] ? err : "connection lost");
        return;
    }
    int rows = PQntuples(res);
    if (rows == 0) { /* all of them changed meanwhile */
        replay_all_batch(o);
        return;
    }
    o->ok_ids = pgarr_new();
    o->lost_ids = pgarr_new();
    o->pending = 1; /* held while queueing */
    int c_id = taskdb_col(res, "id"), c_kind = taskdb_col(res, "kind"), c_spec = taskdb_col(res, "spec"),
        c_entry = taskdb_col(res, "dlq_entry");
    for (int i = 0; i < rows; i++) {
        const char *id = PQgetvalue(res, i, c_id);
        if (PQgetisnull(res, i, c_kind))
            continue;
        struct replay_ctx *c = xcalloc(1, sizeof *c);
        c->o = o;
        snprintf(c->id, sizeof c->id, "%s", id);
        o->pending++;
        json_t *spec = json_loads(PQgetvalue(res, i, c_spec), 0, NULL);
        if (!spec || queue_replay(o->q->api->rc, o->q->api->prefix, o->queue,
                                  PQgetisnull(res, i, c_entry) ? NULL : PQgetvalue(res, i, c_entry), id,
                                  PQgetvalue(res, i, c_kind), spec, replay_all_sent, c) != 0)
            replay_all_sent(c, QUEUE_DISCONNECTED, NULL);
        json_decref(spec);
    }
    struct replay_ctx *hold = xcalloc(1, sizeof *hold);
    hold->o = o;
    replay_all_sent(hold, QUEUE_DISCONNECTED, NULL);
}

/* Dead letters this call may still handle (replayed or reported bad). */
static long replay_left(const struct op *o)
{
    return o->filter->limit - o->count - o->failed;
}

/* One batch of dead tasks read: each spec is validated on its own; the bad
 * ones stay dead and are reported, the rest are replayed in one statement.
 * With none left to handle, the batch was the probe for "more". */
static void replay_all_checked(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct op *o = arg;
    if (!res || err[0]) {
        replay_all_finish(o, err[0] ? err : "connection lost");
        return;
    }
    int rows = PQntuples(res);
    if (rows == 0 || replay_left(o) <= 0) {
        o->more = rows > 0;
        replay_all_finish(o, NULL);
        return;
    }
    taskdb_rows_t *good = taskdb_rows_new();
    for (int i = 0; i < rows; i++) {
        const char *id = PQgetvalue(res, i, 0);
        snprintf(o->cursor, sizeof o->cursor, "%s", id);
        char why[SPEC_ERR_MAX];
        int budget = replay_budget(PQgetvalue(res, i, 1), why, sizeof why);
        if (budget) {
            taskdb_replay_add(good, id, budget);
        } else if (++o->failed <= REPLAY_FAILED_MAX) {
            json_array_append_new(o->acc, json_pack("{s:s?,s:s,s:s}", "entry",
                                                    PQgetisnull(res, i, 2) ? NULL : PQgetvalue(res, i, 2),
                                                    "task", id, "error", why));
        }
    }
    if (taskdb_rows_count(good)) {
        taskdb_replay(o->q->api->pg, good, o->queue, 0, replay_all_rows, o);
    } else {
        taskdb_rows_free(good);
        replay_all_batch(o);
    }
}

/* Batches in task-id order with a cursor, so a task that dies again while
 * this runs is not replayed twice by the same call, nor a bad one reported
 * twice; it stops on an empty batch. */
static void replay_all_batch(struct op *o)
{
    long left = replay_left(o);
    taskdb_dead_page(o->q->api->pg, o->queue, &o->filter->db, o->cursor,
                     left <= 0 ? 1 : left < REPLAY_BATCH ? left : REPLAY_BATCH, replay_all_checked, o);
}

/* At most the filter's limit (DLQ_BULK_DEFAULT) per call; "more" says
 * whether matching dead letters remain. */
void replay_all(struct req *q, const struct route_args *a)
{
    struct dlq_filter *f = dlq_filter_of(q);
    if (!f)
        return;
    struct op *o = op_new(q, a->queue);
    o->filter = f;
    o->acc = json_array();
    replay_all_batch(o);
}

/* -------------------------------------------------------------- retry */

static void retry_checked(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct op *o = arg;
    if (!op_have_row(o, res, err, "task %s not found (or moved to history: only live tasks can be retried)",
                     o->task))
        return;
    snprintf(o->state, sizeof o->state, "%s", PQgetvalue(res, 0, taskdb_col(res, "state")));
    snprintf(o->queue, sizeof o->queue, "%s", PQgetvalue(res, 0, taskdb_col(res, "queue")));
    if (strcmp(o->state, "dead") != 0 && strcmp(o->state, "cancelled") != 0) {
        op_conflict(o, RETRY_STATES);
        return;
    }
    int c_pipe = taskdb_col(res, "pipeline_id");
    if (!PQgetisnull(res, 0, c_pipe)) {
        op_error(o, 409, "task %s is a step of pipeline %s: re-run the pipeline instead"
                         " (POST /v1/pipelines/{id}/rerun)", o->task, PQgetvalue(res, 0, c_pipe));
        return;
    }
    char why[SPEC_ERR_MAX];
    int budget = replay_budget(PQgetvalue(res, 0, taskdb_col(res, "spec")), why, sizeof why);
    if (!budget) {
        op_reply(o, 422, json_pack("{s:s,s:s,s:s}", "error", "the task's spec is not valid any more: not retried",
                                   "id", o->task, "reason", why));
        return;
    }
    taskdb_retry(o->q->api->pg, o->task, budget, o->queue, replay_updated, o);
}

/* POST /v1/tasks/{id}/retry: a dead or cancelled task queued again, as a
 * replay does (taskdb_retry: same id, its attempts kept, a fresh budget);
 * a dead one's letter leaves the DLQ in the same script that publishes it. */
void tasks_retry(struct req *q, const struct route_args *a)
{
    if (!uuid_valid(a->id, strlen(a->id))) {
        reply_error(q, 404, "task not found (not a task id)");
        return;
    }
    struct op *o = op_new(q, NULL);
    o->kind = OP_RETRY;
    snprintf(o->task, sizeof o->task, "%s", a->id);
    const char *params[1] = {o->task};
    pgc_query(q->api->pg, "SELECT state, queue, spec::text AS spec, pipeline_id FROM tasks WHERE id = $1::uuid", 1,
              params, retry_checked, o);
}
