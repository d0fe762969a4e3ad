/* http_tasks: the routes on one task beyond GET /v1/tasks/{id} (which is
 * http_api.c's): POST .../cancel (PostgreSQL first, then the agents' control
 * stream) and GET .../checkpoints (paged). */
#include "http_internal.h"

#include <event2/http.h>
#include <stdio.h>
#include <string.h>

#include "envelope.h"
#include "uuid.h"
#include "log.h"
#include "queue.h"
#include "taskdb.h"

#define CHECKPOINTS_MAX 1000

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
    if (!res || err[0]) {
        op_db_error(o, err);
        return;
    }
    if (PQntuples(res) == 0) {
        op_error(o, 404, "task not found");
        return;
    }
    snprintf(o->state, sizeof o->state, "%s", PQgetvalue(res, 0, taskdb_col(res, "was")));
    if (strcmp(PQgetvalue(res, 0, taskdb_col(res, "cancelled")), "1") != 0) {
        op_conflict(o, "the task has already finished");
        return;
    }
    audit(o->q->api, o->q->actor, "task.cancel", o->task, json_pack("{s:s}", "previous_state", o->state));
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

/* The state the task had tells running (signal the agent) from
 * queued/retrying (the agent skips it on delivery), and 409 from 404. */
static void handle_cancel(struct req *q, const char *id)
{
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

static void handle_checkpoints(struct req *q, const char *id)
{
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
              "   WHERE task_id = $1::uuid AND id > $2::bigint ORDER BY id LIMIT $3::int)"
              " SELECT jsonb_build_object('task_id', t.id, 'last', t.checkpoint,"
              "   'checkpoints', coalesce((SELECT jsonb_agg(jsonb_build_object('id', p.id, 'attempt', p.attempt,"
              "       'data', p.data, 'created_at', p.created_at) ORDER BY p.id) FROM page p), '[]'::jsonb),"
              "   'next', CASE WHEN (SELECT count(*) FROM page) = $3::int"
              "               THEN (SELECT max(id) FROM page)::text END)::text"
              " FROM tasks t WHERE t.id = $1::uuid",
              3, params, reply_task_row, q);
}

/* ------------------------------------------------------------------ routes */

int tasks_route(struct req *q, const char *rest)
{
    const char *slash = strchr(rest, '/');
    if (!slash || strchr(slash + 1, '/'))
        return 0;
    char id[64];
    snprintf(id, sizeof id, "%.*s", (int)(slash - rest), rest);
    if (strcmp(slash + 1, "cancel") == 0) {
        if (q->method != EVHTTP_REQ_POST)
            op_method_not_allowed(q);
        else if (op_need_role(q, ROLE_OPERATOR, "cancelling a task"))
            handle_cancel(q, id);
        return 1;
    }
    if (strcmp(slash + 1, "checkpoints") == 0) {
        if (q->method != EVHTTP_REQ_GET)
            op_method_not_allowed(q);
        else
            handle_checkpoints(q, id);
        return 1;
    }
    return 0;
}
