/* http_approvals: the approval gates of pipeline steps: list them and decide
 * one (approve or reject). The decision and what it makes due (the approved
 * step's tasks, or the steps after a rejected one) are one statement
 * (common/approvaldb.h); the tasks it created are then published. */
#include "http_internal.h"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "approvaldb.h"
#include "log.h"
#include "pipelinedb.h"
#include "uuid.h"
#include "xalloc.h"

#define APPROVALS_LIST_MAX 200
#define APPROVAL_COMMENT_MAX 1000

/* ------------------------------------------------------------------- list */

static void list_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct req *q = arg;
    if (!res || err[0]) {
        reply_db_unavailable(q, err, NULL);
        return;
    }
    json_t *list = json_array();
    for (int i = 0; i < PQntuples(res); i++)
        json_array_append_new(list, json_loads(PQgetvalue(res, i, 0), 0, NULL));
    reply_json(q, 200, json_pack("{s:o}", "approvals", list));
}

static int no_cursor(const char *s)
{
    (void)s;
    return 0;
}

void approvals_list(struct req *q, const struct route_args *a)
{
    (void)a;
    struct op_page pg;
    if (op_parse_page(q->query, 50, APPROVALS_LIST_MAX, no_cursor, &pg) != 0) {
        reply_error(q, 400, pg.why);
        return;
    }
    struct evkeyvalq args;
    TAILQ_INIT(&args);
    evhttp_parse_query_str(q->query ? q->query : "", &args);
    const char *state = evhttp_find_header(&args, "state");
    int pending = !state || strcmp(state, "pending") == 0;
    if (!pending && strcmp(state, "all") != 0) {
        evhttp_clear_headers(&args);
        reply_error(q, 400, "state: must be pending (the default) or all");
        return;
    }
    evhttp_clear_headers(&args);
    approvaldb_list(q->api->pg, pending ? "pending" : "all", pg.limit, scope_sql_queues(q), scope_sql_apps(q),
                    list_done, q);
}

/* ----------------------------------------------------------------- decide */

struct decision {
    struct req *q;
    char id[40];
    char pipeline[40];
    json_t *answer; /* the reply once the tasks are published */
};

static void decided_published(void *arg, const json_t *tasks, int failed)
{
    struct decision *d = arg;
    json_object_set(d->answer, "tasks", (json_t *)tasks);
    if (failed)
        json_object_set_new(d->answer, "note", json_string("some tasks could not be published now; the reconciler"
                                                           " publishes them"));
    reply_json(d->q, 200, d->answer);
    free(d);
}

static void decided(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct decision *d = arg;
    struct req *q = d->q;
    if (!res || err[0]) {
        reply_db_unavailable(q, err, NULL);
        free(d);
        return;
    }
    json_t *r = PQgetisnull(res, 0, 0) ? NULL : json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    const char *step = json_string_value(json_object_get(r, "step"));
    const char *state = json_string_value(json_object_get(r, "state"));
    const char *role = json_string_value(json_object_get(r, "role"));
    if (!r || !step || !state || !role) {
        reply_error(q, 404, "approval not found");
    } else if (json_is_true(json_object_get(r, "refused"))) {
        char msg[200];
        snprintf(msg, sizeof msg, "deciding the approval of step %.64s needs the %s role", step, role);
        reply_error(q, 403, msg);
    } else if (!json_is_true(json_object_get(r, "decided"))) {
        reply_json(q, 409, json_pack("{s:s,s:s,s:s}", "error", "the approval has already been decided", "id", d->id,
                                     "state", state));
    } else {
        snprintf(d->pipeline, sizeof d->pipeline, "%s", json_string_value(json_object_get(r, "pipeline")));
        json_object_set_new(q->audit_detail, "pipeline", json_string(d->pipeline));
        json_object_set_new(q->audit_detail, "step", json_string(step));
        d->answer = json_pack("{s:s,s:s,s:s,s:s,s:s}", "id", d->id, "state", state, "pipeline", d->pipeline,
                              "step", step, "decided_by", q->actor);
        const char *ids[1] = {d->pipeline};
        json_decref(r);
        pipelinedb_publish(q->api->pg, q->api->rc, q->api->prefix, ids, 1, decided_published, d);
        return;
    }
    json_decref(r);
    free(d);
}

void approvals_decide(struct req *q, const struct route_args *a)
{
    if (!uuid_valid(a->id, strlen(a->id))) {
        reply_error(q, 404, "approval not found (not an approval id)");
        return;
    }
    json_t *body = req_body_json(q);
    if (!body)
        return;
    char why[160] = "";
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v) {
        if (strcmp(k, "decision") && strcmp(k, "comment") && !why[0]) {
            char pk[64];
            snprintf(why, sizeof why, "%s: unknown field (allowed: decision, comment)",
                     spec_printable(k, strlen(k), pk));
        }
    }
    const char *decision = json_string_value(json_object_get(body, "decision"));
    const json_t *comment = json_object_get(body, "comment");
    if (!json_is_object(body))
        snprintf(why, sizeof why, "body: must be a JSON object {\"decision\": \"approve\"|\"reject\", \"comment\"}");
    else if (!why[0] && (!decision || (strcmp(decision, "approve") && strcmp(decision, "reject"))))
        snprintf(why, sizeof why, "decision: required, \"approve\" or \"reject\"");
    else if (!why[0] && comment && (!json_is_string(comment) || json_string_length(comment) > APPROVAL_COMMENT_MAX ||
                                    strlen(json_string_value(comment)) != json_string_length(comment)))
        snprintf(why, sizeof why, "comment: must be a string of at most %d bytes", APPROVAL_COMMENT_MAX);
    if (why[0]) {
        reply_error(q, 400, why);
        json_decref(body);
        return;
    }
    int approve = strcmp(decision, "approve") == 0; /* NOLINT(clang-analyzer-core.NonNullParamChecker): why[0] else */
    /* one route, two audited actions: approval.approve, approval.reject */
    q->audit_action = approve ? "approval.approve" : "approval.reject";
    req_audit_note(q, a->id, json_pack("{s:s,s:s?}", "decision", decision, "comment", json_string_value(comment)));
    struct decision *d = xcalloc(1, sizeof *d);
    d->q = q;
    snprintf(d->id, sizeof d->id, "%s", a->id);
    approvaldb_decide(q->api->pg, a->id, approve ? "approved" : "rejected", q->actor, auth_role_name(q->role),
                      json_string_value(comment), decided, d);
    json_decref(body);
}
