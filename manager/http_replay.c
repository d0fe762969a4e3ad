/* http_replay: replaying dead letters (POST /v1/dlq/{queue}/{id}/replay and
 * /v1/dlq/{queue}/replay): each stored spec is validated on its own, then the
 * task goes dead -> queued in PostgreSQL and is published to Redis. */
#include "http_internal.h"

#include <event2/http.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "queue.h"
#include "xalloc.h"

#define REPLAY_BATCH 500   /* tasks moved per statement by "replay all" */
#define REPLAY_FAILED_MAX 100 /* dead letters "replay all" could not replay, listed one by one */

/* -------------------------------------------------------------- replay one */

static void mark_published(api_t *api, const char *ids_literal, int ok);

static void replay_published(rc_t *rc, redisReply *r, void *arg)
{
    (void)rc;
    struct op *o = arg;
    int ok = !op_redis_failed(r) && r->type == REDIS_REPLY_STRING;
    if (!ok)
        log_warn("replay %s: publish failed (%s); the reconciler will publish it", o->task, op_redis_why(r));
    pgarr_t *a = pgarr_new();
    pgarr_add(a, o->task);
    char *lit = pgarr_finish(a);
    mark_published(o->q->api, lit, ok);
    free(lit);
    http_audit(o->q->api, o->q->actor, "dlq.replay", o->task,
          json_pack("{s:s,s:s?,s:b}", "queue", o->queue, "entry_id", o->entry[0] ? o->entry : NULL, "published",
                    ok));
    json_t *j = json_pack("{s:s,s:s,s:s?,s:s,s:b}", "id", o->task, "queue", o->queue, "entry_id",
                          o->entry[0] ? o->entry : NULL, "state", "queued", "published", ok);
    if (ok)
        json_object_set_new(j, "stream_entry", json_string(r->str));
    else
        json_object_set_new(j, "note", json_string("redis unavailable: the task is queued in PostgreSQL and the"
                                                   " reconciler will publish it once redis is back"));
    op_reply(o, 200, j);
}

static void replay_updated(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct op *o = arg;
    if (!res || err[0]) {
        op_db_error(o, err);
        return;
    }
    if (PQntuples(res) == 0) {
        op_error(o, 404, "task %s of this dead letter is not in queue %s", o->task, o->queue);
        return;
    }
    snprintf(o->state, sizeof o->state, "%s", PQgetvalue(res, 0, 0));
    if (PQgetisnull(res, 0, 1)) {
        op_conflict(o, "only a dead task can be replayed");
        return;
    }
    json_t *spec = json_loads(PQgetvalue(res, 0, 2), 0, NULL);
    if (!spec || queue_replay(o->q->api->rc, o->q->api->prefix, o->queue, o->entry[0] ? o->entry : NULL, o->task,
                              PQgetvalue(res, 0, 1), spec, replay_published, o) != 0)
        replay_published(NULL, NULL, o);
    json_decref(spec);
}

/* Dead -> queued with a fresh budget of attempts, replays + 1; returns the
 * state it had so that 409 can name it. The attempt counter goes on rather
 * than restarting at 0: attempt numbers stay unique per task (task_attempts'
 * key, and the fencing token), and max_attempts moves up by the budget, the
 * spec's retry_policy.max_attempts as validated here ($2, one per id): the
 * spec is checked in C first, so one bad spec fails alone, not the batch. */
static const char replay_sql[] =
    "WITH i AS (SELECT * FROM unnest($1::uuid[], $2::int[]) AS i(id, budget)),"
    " prev AS (SELECT t.id, t.state, t.dlq_entry, i.budget FROM tasks t JOIN i ON t.id = i.id"
    "   WHERE t.queue = $3 AND ($4::bool OR t.state = 'dead' AND t.dlq_purged_at IS NULL)"
    "   ORDER BY t.id FOR UPDATE OF t),"
    " upd AS (UPDATE tasks t SET state = 'queued', replays = t.replays + 1, dlq_entry = NULL,"
    "     max_attempts = t.attempt + prev.budget,"
    "     dlq_purged_at = NULL, finished_at = NULL, next_attempt_at = NULL, lease_owner = NULL,"
    "     lease_expires_at = NULL"
    "   FROM prev WHERE t.id = prev.id AND prev.state = 'dead' RETURNING t.id, t.kind, t.spec)"
    " SELECT prev.state, upd.kind, upd.spec::text, prev.id, prev.dlq_entry"
    " FROM prev LEFT JOIN upd ON upd.id = prev.id ORDER BY prev.id";

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
    if (!res || err[0]) {
        op_db_error(o, err);
        return;
    }
    if (PQntuples(res) == 0) {
        op_error(o, 404, "task %s of this dead letter is not in queue %s", o->task, o->queue);
        return;
    }
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
    pgarr_t *a = pgarr_new(), *b = pgarr_new();
    pgarr_add(a, o->task);
    pgarr_add_long(b, budget);
    char *ids = pgarr_finish(a), *budgets = pgarr_finish(b);
    const char *params[4] = {ids, budgets, o->queue, "true"};
    pgc_query(o->q->api->pg, replay_sql, 4, params, replay_updated, o);
    free(ids);
    free(budgets);
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

/* ok: the XADD happened (published_at = now). Otherwise published_at goes to
 * the epoch, which the reconciler reads as "entry gone": the task is then
 * published once Redis answers, whatever the stream holds. */
static void mark_published(api_t *api, const char *ids_literal, int ok)
{
    const char *params[2] = {ids_literal, ok ? "true" : "false"};
    pgc_query(api->pg,
              "UPDATE tasks SET published_at = CASE WHEN $2::bool THEN now() ELSE 'epoch'::timestamptz END"
              " WHERE id = ANY($1::uuid[])",
              2, params, NULL, NULL);
}

struct replay_ctx {
    struct op *o;
    char id[40];
};

static void replay_all_batch(struct op *o);

static void replay_all_sent(rc_t *rc, redisReply *r, void *arg)
{
    (void)rc;
    struct replay_ctx *c = arg;
    struct op *o = c->o;
    if (c->id[0]) {
        int ok = !op_redis_failed(r) && r->type == REDIS_REPLY_STRING;
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
        http_audit(o->q->api, o->q->actor, "dlq.replay", o->queue,
              json_pack("{s:b,s:I,s:I,s:I}", "all", 1, "count", (json_int_t)o->count, "published",
                        (json_int_t)o->published, "failed", (json_int_t)o->failed));
    json_t *j = json_pack("{s:s,s:I,s:I,s:I,s:O}", "queue", o->queue, "replayed", (json_int_t)o->count,
                          "published", (json_int_t)o->published, "failed_count", (json_int_t)o->failed, "failed",
                          o->acc);
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
    for (int i = 0; i < rows; i++) {
        const char *id = PQgetvalue(res, i, 3);
        if (PQgetisnull(res, i, 1))
            continue;
        struct replay_ctx *c = xcalloc(1, sizeof *c);
        c->o = o;
        snprintf(c->id, sizeof c->id, "%s", id);
        o->pending++;
        json_t *spec = json_loads(PQgetvalue(res, i, 2), 0, NULL);
        if (!spec || queue_replay(o->q->api->rc, o->q->api->prefix, o->queue,
                                  PQgetisnull(res, i, 4) ? NULL : PQgetvalue(res, i, 4), id, PQgetvalue(res, i, 1),
                                  spec, replay_all_sent, c) != 0)
            replay_all_sent(NULL, NULL, c);
        json_decref(spec);
    }
    struct replay_ctx *hold = xcalloc(1, sizeof *hold);
    hold->o = o;
    replay_all_sent(NULL, NULL, hold);
}

/* One batch of dead tasks read: each spec is validated on its own; the bad
 * ones stay dead and are reported, the rest are replayed in one statement. */
static void replay_all_checked(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct op *o = arg;
    if (!res || err[0]) {
        replay_all_finish(o, err[0] ? err : "connection lost");
        return;
    }
    int rows = PQntuples(res);
    if (rows == 0) {
        replay_all_finish(o, NULL);
        return;
    }
    pgarr_t *ids = pgarr_new(), *budgets = pgarr_new();
    int good = 0;
    for (int i = 0; i < rows; i++) {
        const char *id = PQgetvalue(res, i, 0);
        snprintf(o->cursor, sizeof o->cursor, "%s", id);
        char why[SPEC_ERR_MAX];
        int budget = replay_budget(PQgetvalue(res, i, 1), why, sizeof why);
        if (budget) {
            pgarr_add(ids, id);
            pgarr_add_long(budgets, budget);
            good++;
        } else if (++o->failed <= REPLAY_FAILED_MAX) {
            json_array_append_new(o->acc, json_pack("{s:s?,s:s,s:s}", "entry",
                                                    PQgetisnull(res, i, 2) ? NULL : PQgetvalue(res, i, 2),
                                                    "task", id, "error", why));
        }
    }
    char *p_ids = pgarr_finish(ids), *p_budgets = pgarr_finish(budgets);
    if (good) {
        const char *params[4] = {p_ids, p_budgets, o->queue, "false"};
        pgc_query(o->q->api->pg, replay_sql, 4, params, replay_all_rows, o);
    } else {
        replay_all_batch(o);
    }
    free(p_ids);
    free(p_budgets);
}

/* Batches in task-id order with a cursor, so a task that dies again while
 * this runs is not replayed twice by the same call, nor a bad one reported
 * twice; it stops on an empty batch. */
static void replay_all_batch(struct op *o)
{
    char lim[16];
    snprintf(lim, sizeof lim, "%d", REPLAY_BATCH);
    const char *params[3] = {o->queue, o->cursor[0] ? o->cursor : NULL, lim};
    pgc_query(o->q->api->pg,
              "SELECT id, spec::text, dlq_entry FROM tasks WHERE queue = $1 AND state = 'dead'"
              " AND dlq_purged_at IS NULL AND ($2::uuid IS NULL OR id > $2::uuid) ORDER BY id LIMIT $3::int",
              3, params, replay_all_checked, o);
}

void replay_all(struct req *q, const struct route_args *a)
{
    const char *queue = a->queue;
    struct op *o = op_new(q, queue);
    o->acc = json_array();
    replay_all_batch(o);
}
