/* http_pipelines: the pipeline routes: submit (validated by proto/pipeline.c,
 * recorded whole in one statement with its root steps' tasks, which are then
 * published), get (the graph), list (keyset paged), cancel and rerun. The
 * state machine is SQL (migrations/006_pipelines.sql); each route that may
 * create tasks publishes what it created (common/pipelinedb.h). */
#include "http_internal.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "log.h"
#include "pipeline.h"
#include "pipelinedb.h"
#include "queue.h"
#include "taskdb.h"
#include "uuid.h"
#include "xalloc.h"

#define PIPELINES_LIST_MAX 200

/* One pipeline request in progress; dies with its reply. */
struct preq {
    struct req *q;
    char id[40];
    int next_sugar; /* answer as a task submit (POST /v1/tasks with "next") */
    int supersede;  /* its concurrency group's older running pipeline is to be cancelled */
    int step_supersede; /* a step's concurrency group may have an older running step to cancel */
    long created;   /* tasks; -2: queued for its concurrency group */
};

static struct preq *preq_new(struct req *q, const char *id)
{
    struct preq *pr = xcalloc(1, sizeof *pr);
    pr->q = q;
    size_t n = strnlen(id, sizeof pr->id - 1); /* ids are checked before; cut, never overrun */
    memcpy(pr->id, id, n);
    pr->id[n] = '\0';
    return pr;
}

/* A statement that failed: answers 503 and frees pr; returns 1. */
static int db_failed(struct preq *pr, const PGresult *res, const char *err)
{
    if (res && !err[0])
        return 0;
    reply_db_unavailable(pr->q, err, NULL);
    free(pr);
    return 1;
}

/* A route's {id}: 0 once q is answered 404 (not a UUID, so no pipeline). */
static int id_ok(struct req *q, const char *id)
{
    if (uuid_valid(id, strlen(id)))
        return 1;
    reply_error(q, 404, "pipeline not found (not a pipeline id)");
    return 0;
}

static void publish(struct preq *pr, pipelinedb_published_fn *done)
{
    const char *ids[1] = {pr->id};
    api_t *api = pr->q->api;
    pipelinedb_publish(api->pg, api->rc, api->prefix, ids, 1, done, pr);
}

/* ------------------------------------------------------------------ submit */

static void submit_published(void *arg, const json_t *tasks, int failed)
{
    struct preq *pr = arg;
    struct req *q = pr->q;
    json_t *j;
    if (pr->next_sugar) {
        /* the first step's task is the one the client submitted */
        const char *main_id = json_string_value(json_object_get(json_array_get(tasks, 0), "id"));
        j = json_pack("{s:[{s:s?,s:s,s:b}],s:{s:s,s:s}}", "tasks", "id", main_id, "state", "queued", "created", 1,
                      "pipeline", "id", pr->id, "link", "");
        char link[80];
        snprintf(link, sizeof link, "/v1/pipelines/%s", pr->id);
        json_object_set_new(json_object_get(j, "pipeline"), "link", json_string(link));
    } else {
        char link[80];
        snprintf(link, sizeof link, "/v1/pipelines/%s", pr->id);
        j = json_pack("{s:s,s:s,s:O,s:s}", "id", pr->id, "state", pr->created == -2 ? "queued" : "running",
                      "tasks", tasks, "link", link);
    }
    if (failed)
        json_object_set_new(j, "note", json_string("some tasks could not be published now (redis unavailable?);"
                                                   " they are recorded and the reconciler publishes them"));
    reply_json(q, 201, j);
    free(pr);
}

static void submit_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct preq *pr = arg;
    if (!res || err[0]) {
        log_error("pipeline submit: %s", err);
        reply_db_unavailable(pr->q, err,
                             res || pgc_err_not_sent(err) ? "the pipeline was not recorded; retry"
                                                          : "the outcome is unknown: the pipeline may have been"
                                                            " recorded; check GET /v1/pipelines?name=");
        free(pr);
        return;
    }
    req_audit_note(pr->q, pr->id,
               json_pack("{s:s}", "created_tasks", PQgetvalue(res, 0, 0)));
    pr->created = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    api_t *api = pr->q->api;
    if (pr->supersede)
        pipelinedb_supersede(api->pg, api->rc, api->prefix, pr->id);
    pipelinedb_publish_taken(api->pg, api->rc, api->prefix, res, pr->step_supersede, pr->id, submit_published, pr);
}

/* Validates and records p (takes it). */
static void submit(struct req *q, pipeline_t *p, const char *id, int next_sugar)
{
    struct preq *pr = preq_new(q, id);
    pr->next_sugar = next_sugar;
    pr->supersede = p->group[0] && p->cancel_in_progress;
    for (size_t i = 0; i < p->nsteps; i++)
        pr->step_supersede |= p->steps[i].group[0] && p->steps[i].cancel_in_progress;
    pipelinedb_submit(q->api->pg, p, id, q->actor, submit_done, pr);
    pipeline_free(p);
}

void pipelines_submit(struct req *q, const struct route_args *a)
{
    (void)a;
    struct evbuffer *in = evhttp_request_get_input_buffer(q->r);
    size_t len = evbuffer_get_length(in);
    if (len > q->api->max_body || len > SPEC_MAX_BYTES) {
        char msg[128];
        snprintf(msg, sizeof msg, "pipeline: body of %zu bytes exceeds the limit of %zu", len,
                 q->api->max_body < SPEC_MAX_BYTES ? q->api->max_body : (size_t)SPEC_MAX_BYTES);
        reply_error(q, 413, msg);
        return;
    }
    char id[37], err[PIPELINE_ERR_MAX];
    uuid_v7(id);
    pipeline_t *p = pipeline_parse((const char *)evbuffer_pullup(in, -1), len, id, err, sizeof err);
    if (!p) {
        reply_json(q, 400, json_pack("{s:s,s:s}", "error", err, "doc", "README.md, \"Pipelines\""));
        return;
    }
    submit(q, p, id, 0);
}

void pipelines_submit_next(struct req *q, json_t *spec)
{
    char id[37], err[PIPELINE_ERR_MAX];
    uuid_v7(id);
    pipeline_t *p = pipeline_from_next(spec, id, err, sizeof err);
    json_decref(spec);
    if (!p) {
        reply_json(q, 400, json_pack("{s:s,s:s}", "error", err, "note",
                                     "a spec with next is a linear pipeline: step main, then next-1, next-2, ..."));
        return;
    }
    submit(q, p, id, 1);
}

/* ------------------------------------------------------------------- reads */

static void get_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct req *q = arg;
    if (!res || err[0])
        reply_db_unavailable(q, err, NULL);
    else if (PQntuples(res) == 0)
        reply_error(q, 404, "pipeline not found");
    else
        reply_raw(q, 200, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
}

void pipelines_get(struct req *q, const struct route_args *a)
{
    if (!id_ok(q, a->id))
        return;
    pipelinedb_get(q->api->pg, a->id, get_done, q);
}

static void list_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct preq *pr = arg;
    struct req *q = pr->q;
    long limit = pr->created;
    free(pr);
    if (!res || err[0]) {
        reply_db_unavailable(q, err, NULL);
        return;
    }
    int n = PQntuples(res);
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "{\"pipelines\":[");
    for (int i = 0; i < n; i++)
        evbuffer_add_printf(b, "%s%s", i ? "," : "", PQgetvalue(res, i, taskdb_col(res, "json")));
    if (n == limit && n > 0)
        evbuffer_add_printf(b, "],\"next\":\"%s\"}", PQgetvalue(res, n - 1, taskdb_col(res, "cursor")));
    else
        evbuffer_add_printf(b, "],\"next\":null}");
    size_t len = evbuffer_get_length(b);
    reply_raw(q, 200, (const char *)evbuffer_pullup(b, -1), len);
    evbuffer_free(b);
}

static int cursor_ok(const char *s)
{
    char us[24], id[40];
    return op_cursor_parse(s, us, sizeof us, id, sizeof id);
}

void pipelines_list(struct req *q, const struct route_args *a)
{
    (void)a;
    struct op_page pg;
    if (op_parse_page(q->query, 50, PIPELINES_LIST_MAX, cursor_ok, &pg) != 0) {
        reply_error(q, 400, pg.why);
        return;
    }
    struct evkeyvalq args;
    TAILQ_INIT(&args);
    evhttp_parse_query_str(q->query ? q->query : "", &args);
    const char *name = evhttp_find_header(&args, "name");
    if (name && (!*name || strlen(name) > PIPELINE_NAME_MAX)) {
        evhttp_clear_headers(&args);
        reply_error(q, 400, "name: must be 1 to 128 bytes");
        return;
    }
    char us[24] = "", id[40] = "";
    if (pg.after[0])
        op_cursor_parse(pg.after, us, sizeof us, id, sizeof id);
    struct preq *pr = preq_new(q, "");
    pr->created = strtol(pg.limit, NULL, 10);
    pipelinedb_list(q->api->pg, name, pg.after[0] ? us : NULL, pg.after[0] ? id : NULL, pg.limit, scope_sql_queues(q),
                    scope_sql_apps(q), list_done, pr);
    evhttp_clear_headers(&args);
}

/* ------------------------------------------------------- cancel, rerun */

static void cancel_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct preq *pr = arg;
    struct req *q = pr->q;
    if (db_failed(pr, res, err))
        return;
    json_t *r = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    const char *state = json_string_value(json_object_get(r, "state"));
    json_t *tasks = json_object_get(r, "tasks");
    if (!state) {
        reply_error(q, 404, "pipeline not found");
    } else if (!json_is_true(json_object_get(r, "cancelled"))) {
        reply_json(q, 409, json_pack("{s:s,s:s,s:s}", "error", "the pipeline has already finished", "id", pr->id,
                                     "state", state));
    } else {
        pipelinedb_signal_cancelled(q->api->rc, q->api->prefix, tasks);
        /* its end may have started the next pipeline of its concurrency group */
        const char *ids[1] = {pr->id};
        pipelinedb_publish(q->api->pg, q->api->rc, q->api->prefix, ids, 1, NULL, NULL);
        req_audit_note(q, pr->id,
                   json_pack("{s:I}", "cancelled_tasks", (json_int_t)json_array_size(tasks)));
        reply_json(q, 200, json_pack("{s:s,s:s,s:O}", "id", pr->id, "state", state, "cancelled_tasks", tasks));
    }
    json_decref(r);
    free(pr);
}

void pipelines_cancel(struct req *q, const struct route_args *a)
{
    if (!id_ok(q, a->id))
        return;
    pipelinedb_cancel(q->api->pg, a->id, cancel_done, preq_new(q, a->id));
}

static void rerun_published(void *arg, const json_t *tasks, int failed)
{
    struct preq *pr = arg;
    json_t *j = json_pack("{s:s,s:s,s:O}", "id", pr->id, "state", "running", "tasks", tasks);
    if (failed)
        json_object_set_new(j, "note", json_string("some tasks could not be published now; the reconciler"
                                                   " publishes them"));
    reply_json(pr->q, 200, j);
    free(pr);
}

static void rerun_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct preq *pr = arg;
    struct req *q = pr->q;
    if (db_failed(pr, res, err))
        return;
    if (PQgetisnull(res, 0, 0)) {
        reply_error(q, 404, "pipeline not found");
        free(pr);
        return;
    }
    pr->created = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    if (pr->created == -2) {
        req_audit_note(q, pr->id, json_pack("{s:s}", "state", "queued"));
        reply_json(q, 200, json_pack("{s:s,s:s,s:[]}", "id", pr->id, "state", "queued", "tasks"));
        free(pr);
        return;
    }
    if (pr->created < 0) {
        reply_json(q, 409, json_pack("{s:s,s:s,s:s}", "error",
                                     "the pipeline is still running; wait for it or cancel it first", "id", pr->id,
                                     "state", "running"));
        free(pr);
        return;
    }
    req_audit_note(q, pr->id, json_pack("{s:I}", "created_tasks",
                                                                     (json_int_t)pr->created));
    publish(pr, rerun_published);
}

void pipelines_rerun(struct req *q, const struct route_args *a)
{
    if (!id_ok(q, a->id))
        return;
    pipelinedb_rerun(q->api->pg, a->id, rerun_done, preq_new(q, a->id));
}
