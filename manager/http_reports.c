/* http_reports: the test reports of testing tasks (task_reports, written by
 * the agents with the outcome): a task's latest report as the JUnit XML
 * stored or, with ?format=summary, its summary JSON; and the latest report
 * of the testing tasks of one pipeline name (?pipeline=, the spec's
 * pipeline.name) or task name (?name=). */
#include "http_internal.h"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "uuid.h"
#include "xalloc.h"

#define REPORT_NAME_MAX 256 /* a task's name (proto/spec.c) */

/* One row: the task (NULL columns when it has no report) and its latest
 * report; the summary JSON is built by PostgreSQL. */
#define REPORT_COLUMNS                                                                              \
    "SELECT t.id::text, t.kind, r.attempt, r.xml,"                                                  \
    " CASE WHEN r.attempt IS NOT NULL THEN jsonb_build_object('task_id', t.id, 'name', t.spec->>'name'," \
    "  'pipeline', t.spec->'pipeline',"                                                              \
    "  'attempt', r.attempt, 'state', t.state, 'created_at', r.created_at, 'summary', r.summary)::text END AS doc"

struct report_req {
    struct req *q;
    int summary;         /* ?format=summary */
    char not_found[320]; /* the 404 when no row comes back */
    char subject[64];    /* "task <id>" for the 404 of a task without a report */
};

static struct report_req *report_req_new(struct req *q)
{
    struct report_req *rr = xcalloc(1, sizeof *rr);
    rr->q = q;
    return rr;
}

/* Reads ?format= (xml or summary) and, when want_name, ?pipeline= or ?name=
 * into name (*by_pipeline tells which). Returns 0, or -1 once q is answered
 * 400. */
static int report_query(struct req *q, int *summary, int want_name, char *name, size_t cap, int *by_pipeline)
{
    struct evkeyvalq args;
    TAILQ_INIT(&args);
    const char *why = NULL;
    if (q->query && evhttp_parse_query_str(q->query, &args) < 0) {
        why = "query string does not parse";
    } else {
        const char *f = evhttp_find_header(&args, "format");
        const char *pl = evhttp_find_header(&args, "pipeline");
        const char *n = pl ? pl : evhttp_find_header(&args, "name");
        *summary = f && strcmp(f, "summary") == 0;
        if (f && !*summary && strcmp(f, "xml") != 0)
            why = "format: must be xml (the default) or summary";
        else if (want_name && pl && evhttp_find_header(&args, "name"))
            why = "pipeline, name: give one of them, not both";
        else if (want_name && (!n || !*n))
            why = "pipeline or name: required (the pipeline name, or the task name, whose latest report to show)";
        else if (want_name && strlen(n) > REPORT_NAME_MAX)
            why = pl ? "pipeline: must be 1 to 256 bytes" : "name: must be 1 to 256 bytes";
        else if (want_name) {
            snprintf(name, cap, "%s", n);
            *by_pipeline = pl != NULL;
        }
    }
    evhttp_clear_headers(&args);
    if (why) {
        reply_error(q, 400, why);
        return -1;
    }
    return 0;
}

static void report_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct report_req *rr = arg;
    struct req *q = rr->q;
    if (!res || err[0]) {
        reply_db_unavailable(q, err, NULL);
    } else if (PQntuples(res) == 0) {
        reply_error(q, 404, rr->not_found);
    } else {
        int c_attempt = PQfnumber(res, "attempt"), c_xml = PQfnumber(res, "xml"), c_doc = PQfnumber(res, "doc"),
            c_kind = PQfnumber(res, "kind");
        char msg[400];
        if (PQgetisnull(res, 0, c_attempt)) {
            snprintf(msg, sizeof msg, "%s has no test report (kind %s; testing tasks have one once an attempt ends)",
                     rr->subject, PQgetvalue(res, 0, c_kind));
            reply_error(q, 404, msg);
        } else if (rr->summary) {
            reply_raw(q, 200, PQgetvalue(res, 0, c_doc), (size_t)PQgetlength(res, 0, c_doc));
        } else if (PQgetisnull(res, 0, c_xml)) {
            reply_error(q, 404, "the report's XML was not stored (over 8 MiB); ?format=summary has its summary");
        } else {
            reply_typed(q, 200, "application/xml", PQgetvalue(res, 0, c_xml), (size_t)PQgetlength(res, 0, c_xml));
        }
    }
    free(rr);
}

void reports_task(struct req *q, const struct route_args *a)
{
    struct report_req *rr = report_req_new(q);
    if (!uuid_valid(a->id, strlen(a->id))) {
        free(rr);
        reply_error(q, 404, "task not found (not a task id)");
        return;
    }
    if (report_query(q, &rr->summary, 0, NULL, 0, NULL) < 0) {
        free(rr);
        return;
    }
    snprintf(rr->not_found, sizeof rr->not_found, "task not found");
    snprintf(rr->subject, sizeof rr->subject, "task %s", a->id);
    const char *params[1] = {a->id};
    pgc_query(q->api->pg,
              /* the task and its reports may have moved to history (retention) */
              REPORT_COLUMNS " FROM (SELECT id, kind, state, spec FROM tasks WHERE id = $1::uuid"
              "  UNION ALL SELECT id, kind, state, spec FROM tasks_history WHERE id = $1::uuid LIMIT 1) t"
              " LEFT JOIN LATERAL (SELECT * FROM (SELECT attempt, xml, summary, created_at FROM task_reports"
              "  WHERE task_id = t.id UNION ALL SELECT attempt, xml, summary, created_at FROM task_reports_history"
              "  WHERE task_id = t.id) a ORDER BY attempt DESC LIMIT 1) r ON true",
              1, params, report_done, rr);
}

/* A report's task in a scoped token's queues ($2: NULL for any). */
#define IN_SCOPE "($2::text[] IS NULL OR t.queue = ANY($2::text[]))"

void reports_latest(struct req *q, const struct route_args *a)
{
    (void)a;
    struct report_req *rr = report_req_new(q);
    char name[REPORT_NAME_MAX + 1];
    int by_pipeline = 0;
    if (report_query(q, &rr->summary, 1, name, sizeof name, &by_pipeline) < 0) {
        free(rr);
        return;
    }
    snprintf(rr->not_found, sizeof rr->not_found, "no test report for %s \"%.256s\"",
             by_pipeline ? "the pipeline" : "tasks named", name);
    const char *params[2] = {name, scope_sql_queues(q)};
    /* newest reports first (their created_at index), the first of that
     * name (in a scoped token's queues), in the hot tables and then in
     * history (retention moved it) */
    pgc_query(q->api->pg,
              by_pipeline
                  ? "SELECT * FROM ((" REPORT_COLUMNS ", r.created_at AS at FROM task_reports r JOIN tasks t ON t.id = r.task_id"
                    "  WHERE t.spec->'pipeline'->>'name' = $1 AND " IN_SCOPE " ORDER BY r.created_at DESC, r.attempt DESC LIMIT 1)"
                    " UNION ALL (" REPORT_COLUMNS ", r.created_at AS at FROM task_reports_history r"
                    "  JOIN tasks_history t ON t.id = r.task_id"
                    "  WHERE t.spec->'pipeline'->>'name' = $1 AND " IN_SCOPE " ORDER BY r.created_at DESC, r.attempt DESC LIMIT 1)) x"
                    " ORDER BY at DESC LIMIT 1"
                  : "SELECT * FROM ((" REPORT_COLUMNS ", r.created_at AS at FROM task_reports r JOIN tasks t ON t.id = r.task_id"
                    "  WHERE t.spec->>'name' = $1 AND " IN_SCOPE " ORDER BY r.created_at DESC, r.attempt DESC LIMIT 1)"
                    " UNION ALL (" REPORT_COLUMNS ", r.created_at AS at FROM task_reports_history r"
                    "  JOIN tasks_history t ON t.id = r.task_id"
                    "  WHERE t.spec->>'name' = $1 AND " IN_SCOPE " ORDER BY r.created_at DESC, r.attempt DESC LIMIT 1)) x"
                    " ORDER BY at DESC LIMIT 1",
              2, params, report_done, rr);
}
