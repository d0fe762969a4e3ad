/* http_route: the manager's route table — every HTTP route with the least role
 * it needs, how a scoped token's target is found and the audited action — and
 * the dispatch that answers 404, 405, 403 (role, scope) and 429 (rate) for all
 * of them and audits every mutating call (http_policy.c). A new resource is one
 * file of handlers and its rows in routes[]. */
#ifndef DEVSYS_HTTP_ROUTE_H
#define DEVSYS_HTTP_ROUTE_H

#include <event2/http.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "auth.h"

struct req;

/* The path parameters of the matched route, percent-decoded; "" for those its
 * pattern does not have. */
struct route_args {
    char id[128];    /* {id}: a task id as given (the handler checks it) */
    char queue[128]; /* {queue}: a valid queue name (checked before the handler runs) */
    char entry[128]; /* {entry}: a DLQ entry id or a task id as given */
    char sha256[128]; /* {sha256}: an artifact's hash as given (the handler checks it) */
    char app[128];   /* {app}: an app name as given (the handler checks it) */
    char name[128];  /* {name}: a name as given (a notification destination, a token, a secret) */
};

/* How the dispatch finds a route's target to check a scoped token against.
 * TARGET_AUTO (a row that says nothing) derives it from the pattern: {queue}
 * -> TARGET_QUEUE_PATH, {app} -> TARGET_APP_PATH, /v1/tasks/{id}... ->
 * TARGET_TASK, anything else TARGET_NONE. */
enum route_target {
    TARGET_AUTO = 0,
    TARGET_NONE,       /* no queue or app: a scoped token may read it, not change it */
    TARGET_QUEUE_PATH, /* the {queue} of the path */
    TARGET_APP_PATH,   /* the {app} of the path */
    TARGET_TASK,       /* the queue of the task {id} (one PostgreSQL lookup, for scoped tokens only) */
    TARGET_SPEC_BODY,  /* each spec of the JSON body (one or an array): its queue (or kind), its deploy.app */
    TARGET_OWN,        /* the caller's own console session: any token may */
    TARGET_PIPELINE,   /* the queues and apps of every node of the pipeline {id} */
    TARGET_APPROVAL,   /* the queues and apps of the nodes of the step the approval {id} gates */
    TARGET_SCHEDULE,   /* the spec of the schedule {id} (and its "next") */
    TARGET_CHECK,      /* a check {name}: queue monitor (its probes) and its follow-up's queue and app */
    TARGET_PIPELINE_BODY, /* the spec of each step of the pipeline in the body */
    TARGET_SCHEDULE_BODY, /* the "spec" of the body (and its "next") */
    TARGET_CHECK_BODY, /* queue monitor, the body's follow_up, and the check of that name it replaces */
    TARGET_FILTERED,   /* a list: its SQL shows a scoped token only what is in its scope */
};

struct route {
    enum evhttp_cmd_type method;
    const char *pattern; /* "/v1/tasks/{id}/cancel": literal segments and {id}, {queue}, {entry}, {sha256}, {app}, {name} */
    enum role min_role;  /* ROLE_NONE: served without a token */
    const char *what;    /* "cancelling a task": the 403 says "<what> needs the <role> role" */
    void (*handler)(struct req *q, const struct route_args *a);
    /* Optional columns (a row may leave them out): */
    enum route_target target; /* TARGET_AUTO: from the pattern (above) */
    const char *action;       /* audit action of a mutating row ("task.cancel"); NULL: "METHOD pattern" */
};

/* Every route. The first row whose pattern matches a path decides which rows
 * serve it: those with that same pattern, one per method. */
extern const struct route routes[];
extern const size_t routes_count;

/* Answers q through the table: 404 when no pattern matches its path, 400 for
 * a {queue} that is not a queue name, 405 with Allow when no row of the
 * pattern has its method, 403 when q->role is below the row's min_role, else
 * the row's handler. */
void route_dispatch(struct req *q);
/* Is path served without a token (a ROLE_NONE row matches it)? */
int route_is_public(const char *path);
/* The paths of the ROLE_NONE rows, NULL-terminated (static; for the guard). */
const char *const *route_public_paths(void);
/* The table as the Markdown rows of README's "HTTP API" section. */
void route_print(FILE *f);
/* The row's target with TARGET_AUTO resolved; its audit action (into buf). */
enum route_target route_target_of(const struct route *r);
const char *route_action_of(const struct route *r, char *buf, size_t len);
const char *route_method_name(enum evhttp_cmd_type m);

/* ----------------------------------------------- handlers, by resource file */

/* http_health.c */
void health_check(struct req *q, const struct route_args *a);
void health_metrics(struct req *q, const struct route_args *a);
/* http_tasks.c */
void tasks_submit(struct req *q, const struct route_args *a);
/* Submits the spec or batch body (reference taken) as POST /v1/tasks does;
 * with accepted set, answers 202 {"task_id", "state"} for its one task. */
void tasks_submit_json(struct req *q, json_t *body, int accepted);
void tasks_list(struct req *q, const struct route_args *a);
void tasks_get(struct req *q, const struct route_args *a);
void tasks_cancel(struct req *q, const struct route_args *a);
/* http_replay.c */
void tasks_retry(struct req *q, const struct route_args *a);
void tasks_checkpoints(struct req *q, const struct route_args *a);
/* http_dlq.c */
void dlq_queues(struct req *q, const struct route_args *a);
void dlq_list(struct req *q, const struct route_args *a);
void dlq_purge_all(struct req *q, const struct route_args *a);
void dlq_show(struct req *q, const struct route_args *a);
void dlq_purge(struct req *q, const struct route_args *a);
void dlq_replay(struct req *q, const struct route_args *a);
/* http_replay.c */
void replay_all(struct req *q, const struct route_args *a);
/* http_dlq_bulk.c */
void dlq_groups(struct req *q, const struct route_args *a);
/* http_reports.c */
void reports_task(struct req *q, const struct route_args *a);
void reports_latest(struct req *q, const struct route_args *a);
/* http_tests.c */
void tests_list(struct req *q, const struct route_args *a);
void tests_history(struct req *q, const struct route_args *a);

/* http_apps.c */
void apps_revisions(struct req *q, const struct route_args *a);
void apps_rollback(struct req *q, const struct route_args *a);
/* http_tokens.c */
void tokens_create(struct req *q, const struct route_args *a);
void tokens_list(struct req *q, const struct route_args *a);
void tokens_revoke(struct req *q, const struct route_args *a);
void tokens_rotate(struct req *q, const struct route_args *a);
/* http_secrets.c */
void secrets_set(struct req *q, const struct route_args *a);
void secrets_list(struct req *q, const struct route_args *a);
void secrets_delete(struct req *q, const struct route_args *a);
void secrets_rekey(struct req *q, const struct route_args *a);
/* http_audit.c */
void audit_list(struct req *q, const struct route_args *a);
/* http_monitors.c */
void monitors_put(struct req *q, const struct route_args *a);
void monitors_list(struct req *q, const struct route_args *a);
void monitors_get(struct req *q, const struct route_args *a);
void monitors_delete(struct req *q, const struct route_args *a);
void monitors_silence(struct req *q, const struct route_args *a);
void monitors_unsilence(struct req *q, const struct route_args *a);
void incidents_list(struct req *q, const struct route_args *a);
/* http_ui.c: the web console's files and sessions */
void ui_asset(struct req *q, const struct route_args *a);
void session_create(struct req *q, const struct route_args *a);
void session_get(struct req *q, const struct route_args *a);
void session_delete(struct req *q, const struct route_args *a);
void overview_get(struct req *q, const struct route_args *a);

/* http_queues.c */
void queues_list(struct req *q, const struct route_args *a);
void queues_get(struct req *q, const struct route_args *a);
void queues_pause(struct req *q, const struct route_args *a);
void queues_resume(struct req *q, const struct route_args *a);
void queues_settings(struct req *q, const struct route_args *a);
/* http_artifacts.c */
void artifacts_put(struct req *q, const struct route_args *a);
void artifacts_get(struct req *q, const struct route_args *a);
void artifacts_head(struct req *q, const struct route_args *a);

void pipelines_submit(struct req *q, const struct route_args *a);
void pipelines_list(struct req *q, const struct route_args *a);
void pipelines_get(struct req *q, const struct route_args *a);
void pipelines_cancel(struct req *q, const struct route_args *a);
void pipelines_rerun(struct req *q, const struct route_args *a);
/* http_approvals.c */
void approvals_list(struct req *q, const struct route_args *a);
void approvals_decide(struct req *q, const struct route_args *a);

/* http_schedules.c */
void schedules_create(struct req *q, const struct route_args *a);
void schedules_list(struct req *q, const struct route_args *a);
void schedules_get(struct req *q, const struct route_args *a);
void schedules_delete(struct req *q, const struct route_args *a);
void schedules_pause(struct req *q, const struct route_args *a);
void schedules_resume(struct req *q, const struct route_args *a);

/* http_notify.c */
void notify_dest_put(struct req *q, const struct route_args *a);
void notify_dest_list(struct req *q, const struct route_args *a);
void notify_dest_delete(struct req *q, const struct route_args *a);
void notify_events_list(struct req *q, const struct route_args *a);

#endif
