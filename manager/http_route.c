/* http_route: the route table (see http_route.h). Roles: a viewer reads; an
 * operator also submits, cancels, replays, approves, deploys, rolls back and
 * controls queues; an admin also manages tokens and secrets, purges and reads
 * the audit trail. */
#include "http_route.h"
#include "http_internal.h"

#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec.h"

#define GET EVHTTP_REQ_GET
#define POST EVHTTP_REQ_POST
#define DELETE EVHTTP_REQ_DELETE
#define PATCH EVHTTP_REQ_PATCH
#define PUT EVHTTP_REQ_PUT
#define HEAD EVHTTP_REQ_HEAD

/* Rows may leave the optional trailing columns (target, action) out. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
const struct route routes[] = {
    /* method pattern                            least role     what                               handler  [target, audit action] */
    {GET,    "/healthz",                         ROLE_NONE,     "checking PostgreSQL and Redis",   health_check},
    {GET,    "/readyz",                          ROLE_NONE,     "checking PostgreSQL and Redis",   health_check},
    {GET,    "/metrics",                         ROLE_NONE,     "reading Prometheus metrics",      health_metrics},
    {POST,   "/v1/tasks",                        ROLE_OPERATOR, "submitting tasks",                tasks_submit, TARGET_SPEC_BODY, "task.submit"},
    {GET,    "/v1/tasks",                        ROLE_VIEWER,   "listing tasks", tasks_list, TARGET_FILTERED},
    {GET,    "/v1/tasks/{id}",                   ROLE_VIEWER,   "reading a task",                  tasks_get},
    {POST,   "/v1/tasks/{id}/cancel",            ROLE_OPERATOR, "cancelling a task",               tasks_cancel, 0, "task.cancel"},
    {POST,   "/v1/tasks/{id}/retry",             ROLE_OPERATOR, "retrying a task",                 tasks_retry, 0, "task.retry"},
    {GET,    "/v1/tasks/{id}/checkpoints",       ROLE_VIEWER,   "reading a task's checkpoints",    tasks_checkpoints},
    {GET,    "/v1/tasks/{id}/report",            ROLE_VIEWER,   "reading a test report",           reports_task},
    {GET,    "/v1/reports/latest",               ROLE_VIEWER,   "reading a test report",           reports_latest, TARGET_FILTERED},
    {GET,    "/v1/tests",                        ROLE_VIEWER,   "reading test history",            tests_list, TARGET_FILTERED},
    {GET,    "/v1/tests/history",                ROLE_VIEWER,   "reading test history",            tests_history, TARGET_FILTERED},
    {GET,    "/v1/dlq",                          ROLE_VIEWER,   "listing queues with dead letters", dlq_queues, TARGET_FILTERED},
    {GET,    "/v1/dlq/{queue}",                  ROLE_VIEWER,   "listing dead letters",            dlq_list},
    {DELETE, "/v1/dlq/{queue}",                  ROLE_ADMIN,    "purging dead letters",            dlq_purge_all, 0, "dlq.purge"},
    {POST,   "/v1/dlq/{queue}/replay",           ROLE_OPERATOR, "replaying dead letters",          replay_all, 0, "dlq.replay"},
    {GET,    "/v1/dlq/{queue}/groups",           ROLE_VIEWER,   "listing dead letters",            dlq_groups},
    {GET,    "/v1/dlq/{queue}/{entry}",          ROLE_VIEWER,   "reading a dead letter",           dlq_show},
    {DELETE, "/v1/dlq/{queue}/{entry}",          ROLE_ADMIN,    "purging dead letters",            dlq_purge, 0, "dlq.purge"},
    {POST,   "/v1/dlq/{queue}/{entry}/replay",   ROLE_OPERATOR, "replaying dead letters",          dlq_replay, 0, "dlq.replay"},
    {GET,    "/v1/queues",                       ROLE_VIEWER,   "listing queues", queues_list, TARGET_FILTERED},
    {GET,    "/v1/queues/{queue}",               ROLE_VIEWER,   "reading a queue",                 queues_get},
    {POST,   "/v1/queues/{queue}/pause",         ROLE_OPERATOR, "pausing a queue",                 queues_pause, 0, "queue.pause"},
    {POST,   "/v1/queues/{queue}/resume",        ROLE_OPERATOR, "resuming a queue",                queues_resume, 0, "queue.resume"},
    {PATCH,  "/v1/queues/{queue}/settings",      ROLE_OPERATOR, "changing a queue's settings",     queues_settings, 0, "queue.settings"},
    {PUT,    "/v1/artifacts/{sha256}",           ROLE_OPERATOR, "uploading an artifact", artifacts_put, 0, "artifact.put"},
    {GET,    "/v1/artifacts/{sha256}",           ROLE_VIEWER,   "reading an artifact",             artifacts_get},
    {HEAD,   "/v1/artifacts/{sha256}",           ROLE_VIEWER,   "reading an artifact",             artifacts_head},
    {GET,    "/v1/apps/{app}/revisions",         ROLE_VIEWER,   "listing an app's revisions",      apps_revisions},
    {POST,   "/v1/apps/{app}/rollback",          ROLE_OPERATOR, "rolling an app back", apps_rollback, 0, "app.rollback"},
    {POST,   "/v1/pipelines",                    ROLE_OPERATOR, "submitting pipelines", pipelines_submit, TARGET_PIPELINE_BODY, "pipeline.submit"},
    {GET,    "/v1/pipelines",                    ROLE_VIEWER,   "listing pipelines", pipelines_list, TARGET_FILTERED},
    {GET,    "/v1/pipelines/{id}",               ROLE_VIEWER,   "reading a pipeline", pipelines_get, TARGET_PIPELINE},
    {POST,   "/v1/pipelines/{id}/cancel",        ROLE_OPERATOR, "cancelling a pipeline", pipelines_cancel, TARGET_PIPELINE, "pipeline.cancel"},
    {POST,   "/v1/pipelines/{id}/rerun",         ROLE_OPERATOR, "re-running a pipeline", pipelines_rerun, TARGET_PIPELINE, "pipeline.rerun"},
    {GET,    "/v1/approvals",                    ROLE_VIEWER,   "listing approvals", approvals_list, TARGET_FILTERED},
    {POST,   "/v1/approvals/{id}",               ROLE_OPERATOR, "deciding approvals", approvals_decide, TARGET_APPROVAL, "approval.decide"},
    {POST,   "/v1/schedules",                    ROLE_OPERATOR, "creating a schedule", schedules_create, TARGET_SCHEDULE_BODY, "schedule.create"},
    {GET,    "/v1/schedules",                    ROLE_VIEWER,   "listing schedules", schedules_list, TARGET_FILTERED},
    {GET,    "/v1/schedules/{id}",               ROLE_VIEWER,   "reading a schedule", schedules_get, TARGET_SCHEDULE},
    {DELETE, "/v1/schedules/{id}",               ROLE_OPERATOR, "deleting a schedule", schedules_delete, TARGET_SCHEDULE, "schedule.delete"},
    {POST,   "/v1/schedules/{id}/pause",         ROLE_OPERATOR, "pausing a schedule", schedules_pause, TARGET_SCHEDULE, "schedule.pause"},
    {POST,   "/v1/schedules/{id}/resume",        ROLE_OPERATOR, "resuming a schedule", schedules_resume, TARGET_SCHEDULE, "schedule.resume"},
    {POST,   "/v1/notifications/destinations",   ROLE_OPERATOR, "changing notification destinations", notify_dest_put, 0, "notify.destination.put"},
    {GET,    "/v1/notifications/destinations",   ROLE_VIEWER,   "listing notification destinations", notify_dest_list},
    {DELETE, "/v1/notifications/destinations/{name}", ROLE_OPERATOR, "changing notification destinations", notify_dest_delete, 0, "notify.destination.delete"},
    {GET,    "/v1/notifications/events",         ROLE_VIEWER,   "listing notification events", notify_events_list, TARGET_FILTERED},
    {POST,   "/v1/tokens",                       ROLE_ADMIN,    "creating tokens",                 tokens_create, 0, "token.create"},
    {GET,    "/v1/tokens",                       ROLE_ADMIN,    "listing tokens",                  tokens_list},
    {DELETE, "/v1/tokens/{name}",                ROLE_ADMIN,    "revoking tokens",                 tokens_revoke, 0, "token.revoke"},
    {POST,   "/v1/tokens/{name}/rotate",         ROLE_ADMIN,    "rotating tokens",                 tokens_rotate, 0, "token.rotate"},
    {POST,   "/v1/secrets",                      ROLE_ADMIN,    "setting secrets",                 secrets_set, 0, "secret.set"},
    {GET,    "/v1/secrets",                      ROLE_ADMIN,    "listing secrets",                 secrets_list},
    {POST,   "/v1/secrets/rekey",                ROLE_ADMIN,    "re-encrypting secrets",           secrets_rekey, 0, "secret.rekey"},
    {DELETE, "/v1/secrets/{name}",               ROLE_ADMIN,    "removing secrets",                secrets_delete, 0, "secret.rm"},
    {GET,    "/v1/audit",                        ROLE_ADMIN,    "reading the audit trail",         audit_list},
    {POST,   "/v1/monitors",                     ROLE_OPERATOR, "changing checks", monitors_put, TARGET_CHECK_BODY, "monitor.put"},
    {GET,    "/v1/monitors",                     ROLE_VIEWER,   "listing checks", monitors_list, TARGET_FILTERED},
    {GET,    "/v1/monitors/{name}",              ROLE_VIEWER,   "reading a check", monitors_get, TARGET_CHECK},
    {DELETE, "/v1/monitors/{name}",              ROLE_OPERATOR, "changing checks", monitors_delete, TARGET_CHECK, "monitor.delete"},
    {POST,   "/v1/monitors/{name}/silence",      ROLE_OPERATOR, "silencing checks", monitors_silence, TARGET_CHECK, "monitor.silence"},
    {DELETE, "/v1/monitors/{name}/silence",      ROLE_OPERATOR, "silencing checks", monitors_unsilence, TARGET_CHECK, "monitor.unsilence"},
    {GET,    "/v1/incidents",                    ROLE_VIEWER,   "listing incidents", incidents_list, TARGET_FILTERED},
    {POST,   "/v1/session",                       ROLE_VIEWER,   "signing in to the console",       session_create, TARGET_OWN, "session.create"},
    {GET,    "/v1/session",                      ROLE_VIEWER,   "reading one's console session",   session_get},
    {DELETE, "/v1/session",                       ROLE_VIEWER,   "signing out of the console",      session_delete, TARGET_OWN, "session.delete"},
    {GET,    "/v1/overview",                     ROLE_VIEWER,   "reading the console's overview", overview_get, TARGET_FILTERED},
    {GET,    "/ui",                              ROLE_NONE,     "loading the web console",         ui_asset},
    {GET,    "/ui/{name}",                       ROLE_NONE,     "loading the web console",         ui_asset},
};
#pragma GCC diagnostic pop
const size_t routes_count = sizeof routes / sizeof *routes;

const char *route_method_name(enum evhttp_cmd_type m)
{
    return m == GET ? "GET" : m == POST ? "POST" : m == DELETE ? "DELETE" : m == PATCH ? "PATCH"
         : m == PUT ? "PUT" : m == HEAD ? "HEAD" : "?";
}

/* Percent-decodes one path segment of n bytes into dst (cap bytes). 0 for an
 * empty or long segment, a bad escape or an encoded NUL. */
static int param_decode(const char *s, size_t n, char *dst, size_t cap)
{
    if (n == 0 || n >= cap)
        return 0;
    char raw[128];
    memcpy(raw, s, n);
    raw[n] = '\0';
    size_t dlen;
    char *d = evhttp_uridecode(raw, 0, &dlen);
    int ok = d && dlen < cap && strlen(d) == dlen;
    if (ok)
        memcpy(dst, d, dlen + 1);
    free(d);
    return ok;
}

static char *param_slot(struct route_args *a, const char *name, size_t n)
{
    if (n == 4 && memcmp(name, "{id}", 4) == 0)
        return a->id;
    if (n == 7 && memcmp(name, "{queue}", 7) == 0)
        return a->queue;
    if (n == 7 && memcmp(name, "{entry}", 7) == 0)
        return a->entry;
    if (n == 8 && memcmp(name, "{sha256}", 8) == 0)
        return a->sha256;
    if (n == 5 && memcmp(name, "{app}", 5) == 0)
        return a->app;
    if (n == 6 && memcmp(name, "{name}", 6) == 0)
        return a->name;
    return NULL;
}

/* Does path match pattern segment by segment? Fills a with its parameters. */
static int route_match(const char *pat, const char *path, struct route_args *a)
{
    memset(a, 0, sizeof *a);
    while (*pat && *path) {
        if (*pat++ != '/' || *path++ != '/')
            return 0;
        size_t pn = strcspn(pat, "/"), sn = strcspn(path, "/");
        if (*pat == '{') {
            char *dst = param_slot(a, pat, pn);
            if (!dst || !param_decode(path, sn, dst, sizeof a->id))
                return 0;
        } else if (pn != sn || memcmp(pat, path, pn) != 0) {
            return 0;
        }
        pat += pn;
        path += sn;
    }
    return !*pat && !*path;
}

static const struct route *route_find(const char *path, struct route_args *a)
{
    for (size_t i = 0; i < routes_count; i++)
        if (route_match(routes[i].pattern, path, a))
            return &routes[i];
    return NULL;
}

void route_dispatch(struct req *q)
{
    struct route_args a;
    const struct route *first = route_find(q->path, &a);
    if (!first) {
        reply_error(q, 404, "no such endpoint");
        return;
    }
    q->route = first->pattern;
    if (strstr(first->pattern, "{queue}") && !spec_queue_name_ok(a.queue)) {
        reply_error(q, 400, "queue: must be 1 to 64 characters of [A-Za-z0-9_.-]");
        return;
    }
    const struct route *r = NULL;
    char allow[64] = "";
    for (size_t i = 0; i < routes_count; i++) {
        if (strcmp(routes[i].pattern, first->pattern) != 0)
            continue;
        if (routes[i].method == q->method)
            r = &routes[i];
        snprintf(allow + strlen(allow), sizeof allow - strlen(allow), "%s%s", allow[0] ? ", " : "",
                 route_method_name(routes[i].method));
    }
    if (!r) {
        evhttp_add_header(evhttp_request_get_output_headers(q->r), "Allow", allow);
        char msg[96];
        snprintf(msg, sizeof msg, "method not allowed (allowed: %s)", allow);
        reply_error(q, 405, msg);
        return;
    }
    policy_audit_start(q, r, &a);
    if (q->session && !q->csrf_ok && r->method != GET && r->method != HEAD) {
        reply_error(q, 403, "missing or wrong X-CSRF-Token: a change made with a console session needs the csrf of"
                            " GET /v1/session");
        return;
    }
    if (q->role < r->min_role) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s needs the %s role", r->what, auth_role_name(r->min_role));
        reply_error(q, 403, msg);
        return;
    }
    policy_enter(q, r, &a);
}

enum route_target route_target_of(const struct route *r)
{
    if (r->target != TARGET_AUTO)
        return r->target;
    if (strstr(r->pattern, "{queue}"))
        return TARGET_QUEUE_PATH;
    if (strstr(r->pattern, "{app}"))
        return TARGET_APP_PATH;
    if (strncmp(r->pattern, "/v1/tasks/{id}", 14) == 0)
        return TARGET_TASK;
    return TARGET_NONE;
}

const char *route_action_of(const struct route *r, char *buf, size_t len)
{
    if (r->action)
        return r->action;
    snprintf(buf, len, "%s %s", route_method_name(r->method), r->pattern);
    return buf;
}

int route_is_public(const char *path)
{
    struct route_args a;
    for (size_t i = 0; i < routes_count; i++)
        if (routes[i].min_role == ROLE_NONE && route_match(routes[i].pattern, path, &a))
            return 1;
    return 0;
}

const char *const *route_public_paths(void)
{
    static const char *paths[sizeof routes / sizeof *routes + 1];
    size_t n = 0;
    for (size_t i = 0; i < routes_count; i++)
        if (routes[i].min_role == ROLE_NONE)
            paths[n++] = routes[i].pattern;
    paths[n] = NULL;
    return paths;
}

void route_print(FILE *f)
{
    static const char *const targets[] = {
        [TARGET_NONE] = "-",
        [TARGET_QUEUE_PATH] = "queue (path)",
        [TARGET_APP_PATH] = "app (path)",
        [TARGET_TASK] = "queue, deploy.app (of the task)",
        [TARGET_SPEC_BODY] = "queue, deploy.app, next (body specs)",
        [TARGET_OWN] = "own session (any token)",
        [TARGET_PIPELINE] = "queue, deploy.app (every step)",
        [TARGET_APPROVAL] = "queue, deploy.app (the gated step)",
        [TARGET_SCHEDULE] = "queue, deploy.app, next (its spec)",
        [TARGET_CHECK] = "queue monitor, follow-up's queue, deploy.app",
        [TARGET_PIPELINE_BODY] = "queue, deploy.app (body steps)",
        [TARGET_SCHEDULE_BODY] = "queue, deploy.app, next (body spec)",
        [TARGET_CHECK_BODY] = "queue monitor, follow_up (body; and the check it replaces)",
        [TARGET_FILTERED] = "filtered to the scope",
    };
    fprintf(f, "| method | path | least role | scoped by | audited as | action |\n|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < routes_count; i++) {
        const struct route *r = &routes[i];
        char buf[160];
        fprintf(f, "| `%s` | `%s` | %s | %s | %s | %s |\n", route_method_name(r->method), r->pattern,
                r->min_role == ROLE_NONE ? "none (no token)" : auth_role_name(r->min_role),
                targets[route_target_of(r)],
                r->method == GET || r->method == HEAD ? "-" : route_action_of(r, buf, sizeof buf), r->what);
    }
}
