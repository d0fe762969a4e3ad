/* http_apps: the deployed apps (kind deploy; rows of the deployments table,
 * common/deploydb.h): an app's revisions per environment with the current
 * one, and a rollback, which is a deploy task with action "rollback". */
#include "http_internal.h"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "deploydb.h"
#include "kind.h"
#include "xalloc.h"

#define REVISIONS_DEFAULT 50
#define REVISIONS_MAX 1000
#define NAME_RULE "must be 1 to 64 characters of [A-Za-z0-9_.-] (not \".\" or \"..\")"

/* ------------------------------------------------------------- revisions */

/* The history as deploydb_history gives it, each row marked "current" when
 * it is the newest row of the revision its env's `current` points at. */
static void revisions_done(const char *text, const char *err, void *arg)
{
    struct req *q = arg;
    if (err[0] || !text) {
        reply_db_unavailable(q, err[0] ? err : "no answer", NULL);
        return;
    }
    json_t *doc = json_loads(text, 0, NULL);
    json_t *current = json_object_get(doc, "current");
    json_t *rows = json_object_get(doc, "deployments");
    if (!json_is_object(current) || !json_is_array(rows)) {
        json_decref(doc);
        reply_error(q, 500, "deployments: unexpected answer");
        return;
    }
    json_t *marked = json_object();
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        const char *env = json_string_value(json_object_get(row, "env"));
        const char *rev = json_string_value(json_object_get(row, "revision"));
        const char *cur = env ? json_string_value(json_object_get(current, env)) : NULL;
        int is_cur = cur && rev && strcmp(cur, rev) == 0 && !json_object_get(marked, env) &&
                     json_object_get(row, "switched_at") && !json_is_null(json_object_get(row, "switched_at"));
        if (is_cur)
            json_object_set_new(marked, env, json_true());
        json_object_set_new(row, "current", json_boolean(is_cur));
    }
    json_decref(marked);
    json_object_set_new(doc, "revisions", json_incref(rows));
    json_object_del(doc, "deployments");
    reply_json(q, 200, doc);
}

/* Reads ?env= (optional) and ?limit= into env/limit. -1 once q is answered. */
static int revisions_query(struct req *q, char *env, size_t cap, long *limit)
{
    struct evkeyvalq args;
    TAILQ_INIT(&args);
    const char *why = NULL;
    *limit = REVISIONS_DEFAULT;
    env[0] = '\0';
    if (q->query && evhttp_parse_query_str(q->query, &args) < 0) {
        why = "query string does not parse";
    } else {
        const char *e = evhttp_find_header(&args, "env"), *l = evhttp_find_header(&args, "limit");
        char *end = NULL;
        if (e && !kind_deploy_name_ok(e))
            why = "env: " NAME_RULE;
        else if (l && ((*limit = strtol(l, &end, 10)) < 1 || *limit > REVISIONS_MAX || !*l || *end))
            why = "limit: must be an integer from 1 to 1000";
        else if (e)
            snprintf(env, cap, "%s", e);
    }
    evhttp_clear_headers(&args);
    if (why) {
        reply_error(q, 400, why);
        return -1;
    }
    return 0;
}

void apps_revisions(struct req *q, const struct route_args *a)
{
    char env[72];
    long limit;
    if (!kind_deploy_name_ok(a->app)) {
        reply_error(q, 400, "app: " NAME_RULE);
        return;
    }
    if (revisions_query(q, env, sizeof env, &limit) < 0)
        return;
    deploydb_history(q->api->pg, a->app, env[0] ? env : NULL, limit, revisions_done, q);
}

/* -------------------------------------------------------------- rollback */

/* {"env", "revision" (optional: the previous one)} -> a deploy task with
 * action rollback, answered 202 {"task_id", "state"}. */
void apps_rollback(struct req *q, const struct route_args *a)
{
    if (!kind_deploy_name_ok(a->app)) {
        reply_error(q, 400, "app: " NAME_RULE);
        return;
    }
    json_t *body = req_body_json(q);
    if (!body)
        return;
    const char *k, *why = NULL;
    json_t *v, *env = NULL, *rev = NULL;
    if (!json_is_object(body))
        why = "the body must be an object {\"env\", \"revision\"}";
    json_object_foreach(json_is_object(body) ? body : NULL, k, v)
    {
        if (strcmp(k, "env") == 0)
            env = v;
        else if (strcmp(k, "revision") == 0)
            rev = v;
        else if (!why)
            why = "unknown field (the body has \"env\" and optionally \"revision\")";
    }
    if (!why && (!json_is_string(env) || !kind_deploy_name_ok(json_string_value(env))))
        why = env ? "env: " NAME_RULE : "env: required";
    else if (!why && rev && (!json_is_string(rev) || !kind_deploy_name_ok(json_string_value(rev))))
        why = "revision: " NAME_RULE;
    if (why) {
        json_decref(body);
        reply_error(q, 400, why);
        return;
    }
    json_t *section = json_pack("{s:s,s:O,s:s}", "app", a->app, "env", env, "action", "rollback");
    if (rev)
        json_object_set(section, "to", rev);
    json_t *spec = json_pack("{s:s,s:s,s:o}", "kind", "deploy", "name", "rollback", "deploy", section);
    json_decref(body);
    tasks_submit_json(q, spec, 1);
}
