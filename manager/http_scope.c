/* http_scope: what a token scoped to queues and apps may reach. A write is
 * checked against every spec it would create (a submit's specs and their
 * "next", a pipeline's steps, a schedule's spec, a check's probe and
 * follow-up); a route on an existing object against the specs of that object
 * (one PostgreSQL lookup); lists filter in their SQL (scope_sql_queues). */
#include "http_internal.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uuid.h"
#include "xalloc.h"

#define SCOPE_DEPTH_MAX 32 /* nested "next" followed; a deeper spec is refused */

/* 403 naming the scope when the token's scope (a list, NULL: all) does not
 * hold item, a "queue" or an "app"; 1 if answered. */
static int refuse_item(struct req *q, const struct route *r, const char *what, const char *scope, const char *item)
{
    if (!scope || auth_scope_has(scope, item))
        return 0;
    char msg[400];
    snprintf(msg, sizeof msg, "%s: %s \"%.64s\" is outside this token's scope (%ss: %.200s)", r->what, what, item,
             what, scope[0] ? scope : "none");
    reply_error(q, 403, msg);
    return 1;
}

/* One spec: its queue (the kind when none), its deploy.app, then each spec
 * of its "next", depth first. Not a spec (not an object): left to the
 * handler's 400. 1 if answered 403. */
static int refuse_spec(struct req *q, const struct route *r, const json_t *spec, int depth)
{
    if (!json_is_object(spec))
        return 0;
    if (depth > SCOPE_DEPTH_MAX) {
        reply_error(q, 403, "next: nested too deep to check against this token's scope");
        return 1;
    }
    const char *queue = json_string_value(json_object_get(spec, "queue"));
    if (!queue)
        queue = json_string_value(json_object_get(spec, "kind"));
    const char *app = json_string_value(json_object_get(json_object_get(spec, "deploy"), "app"));
    if ((queue && refuse_item(q, r, "queue", q->queues, queue)) || (app && refuse_item(q, r, "app", q->apps, app)))
        return 1;
    const json_t *next = json_object_get(spec, "next");
    for (size_t i = 0; json_is_array(next) && i < json_array_size(next); i++)
        if (refuse_spec(q, r, json_array_get(next, i), depth + 1))
            return 1;
    return 0;
}

/* The specs a body would create, by the row's target. */
static int refuse_body_specs(struct req *q, const struct route *r, const json_t *body)
{
    switch (route_target_of(r)) {
    case TARGET_SPEC_BODY: /* one spec or an array of them */
        for (size_t i = 0; i < (json_is_array(body) ? json_array_size(body) : 1); i++)
            if (refuse_spec(q, r, json_is_array(body) ? json_array_get(body, i) : body, 0))
                return 1;
        return 0;
    case TARGET_PIPELINE_BODY: { /* {"steps": {"<step>": {"spec": ...}}} */
        const char *k;
        const json_t *step;
        json_object_foreach((json_t *)json_object_get(body, "steps"), k, step)
            if (refuse_spec(q, r, json_object_get(step, "spec"), 0))
                return 1;
        return 0;
    }
    case TARGET_SCHEDULE_BODY:
        return refuse_spec(q, r, json_object_get(body, "spec"), 0);
    case TARGET_CHECK_BODY: /* its probes run in queue monitor */
        return refuse_item(q, r, "queue", q->queues, "monitor") ||
               refuse_spec(q, r, json_object_get(body, "follow_up"), 0);
    default:
        return 0;
    }
}

/* ---------------------------------------------------------------- lookups */

/* The statement that finds the specs of an existing target, one per row and
 * column (NULL columns skipped); $1 is the path's {id} (a UUID) or {name}. */
static const char *lookup_sql(enum route_target t)
{
    switch (t) {
    case TARGET_TASK:
        return "SELECT jsonb_build_object('queue', queue, 'deploy', spec->'deploy') FROM tasks WHERE id = $1::uuid"
               " UNION ALL SELECT jsonb_build_object('queue', queue, 'deploy', spec->'deploy') FROM tasks_history"
               " WHERE id = $1::uuid LIMIT 1";
    case TARGET_PIPELINE:
        return "SELECT jsonb_build_object('queue', queue, 'deploy', spec->'deploy') FROM pipeline_nodes"
               " WHERE pipeline_id = $1::uuid";
    case TARGET_APPROVAL: /* the nodes of the step it gates */
        return "SELECT jsonb_build_object('queue', n.queue, 'deploy', n.spec->'deploy') FROM approvals a"
               " JOIN pipeline_nodes n ON n.pipeline_id = a.pipeline_id AND n.step = a.step WHERE a.id = $1::uuid";
    case TARGET_SCHEDULE: /* by id or name, as the schedule routes take it */
        return "SELECT spec FROM schedules WHERE name = $1 OR id::text = lower($1)";
    case TARGET_CHECK:
    case TARGET_CHECK_BODY: /* replacing a check: the one it replaces too */
        return "SELECT follow_up FROM checks WHERE name = $1";
    default:
        return NULL;
    }
}

struct lookup {
    struct req *q;
    const struct route *r;
    struct route_args a;
};

static void lookup_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct lookup *l = arg;
    struct req *q = l->q;
    int refused = 0;
    if (!res || err[0]) {
        reply_db_unavailable(q, err, NULL);
        free(l);
        return;
    }
    for (int i = 0; i < PQntuples(res) && !refused; i++)
        for (int c = 0; c < PQnfields(res) && !refused; c++) {
            if (PQgetisnull(res, i, c))
                continue;
            json_t *spec = json_loadb(PQgetvalue(res, i, c), (size_t)PQgetlength(res, i, c), 0, NULL);
            refused = refuse_spec(q, l->r, spec, 0);
            json_decref(spec);
        }
    if (!refused)
        l->r->handler(q, &l->a); /* no such object: the handler's 404 */
    free(l);
}

int scope_check(struct req *q, const struct route *r, const struct route_args *a)
{
    enum route_target t = route_target_of(r);
    const char *key = NULL;
    char name[128];
    switch (t) {
    case TARGET_QUEUE_PATH:
        return refuse_item(q, r, "queue", q->queues, a->queue);
    case TARGET_APP_PATH:
        return refuse_item(q, r, "app", q->apps, a->app);
    case TARGET_OWN:
        return 0;
    case TARGET_SPEC_BODY:
    case TARGET_PIPELINE_BODY:
    case TARGET_SCHEDULE_BODY:
    case TARGET_CHECK_BODY: {
        struct evbuffer *in = evhttp_request_get_input_buffer(q->r);
        json_t *body = json_loadb((const char *)evbuffer_pullup(in, -1), evbuffer_get_length(in), 0, NULL);
        int refused = refuse_body_specs(q, r, body);
        const char *nm = t == TARGET_CHECK_BODY ? json_string_value(json_object_get(body, "name")) : NULL;
        snprintf(name, sizeof name, "%s", nm ? nm : "");
        json_decref(body);
        if (refused || !name[0])
            return refused;
        key = name; /* and the check it would replace */
        break;
    }
    case TARGET_CHECK:
        if (refuse_item(q, r, "queue", q->queues, "monitor"))
            return 1;
        key = a->name;
        break;
    case TARGET_SCHEDULE:
        key = a->id;
        break;
    case TARGET_TASK:
    case TARGET_PIPELINE:
    case TARGET_APPROVAL:
        if (!uuid_valid(a->id, strlen(a->id)))
            return 0; /* no such object: the handler's 404 */
        key = a->id;
        break;
    default: /* a scoped token changes nothing whose target is not scoped */
        if (r->method != EVHTTP_REQ_GET && r->method != EVHTTP_REQ_HEAD) {
            char msg[200];
            snprintf(msg, sizeof msg, "%s: a token scoped to queues or apps may not do this", r->what);
            reply_error(q, 403, msg);
            return 1;
        }
        return 0;
    }
    struct lookup *l = xcalloc(1, sizeof *l);
    l->q = q;
    l->r = r;
    l->a = *a;
    const char *params[1] = {key};
    pgc_query(q->api->pg, lookup_sql(t), 1, params, lookup_done, l);
    return 2;
}

/* ------------------------------------------------------------------ lists */

/* "a,b" as the PostgreSQL array literal "{a,b}" (names are [A-Za-z0-9_.-]:
 * nothing to quote); NULL for NULL. Caller frees. */
static char *pg_array(const char *list)
{
    if (!list)
        return NULL;
    size_t n = strlen(list);
    char *s = xmalloc(n + 3);
    snprintf(s, n + 3, "{%s}", list);
    return s;
}

const char *scope_sql_queues(struct req *q)
{
    if (q->queues && !q->queues_pg)
        q->queues_pg = pg_array(q->queues);
    return q->queues_pg;
}

const char *scope_sql_apps(struct req *q)
{
    if (q->apps && !q->apps_pg)
        q->apps_pg = pg_array(q->apps);
    return q->apps_pg;
}
