/* http_api: the manager's HTTP API (see http_api.h). Routes:
 *   GET /healthz /readyz /metrics (no auth)
 *   POST /v1/tasks, GET /v1/tasks, GET /v1/tasks/{id}
 * PostgreSQL builds the JSON of task rows itself (jsonb_build_object), so the
 * read paths are one query and one copy. */
#include "http_api.h"
#include "http_internal.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <sys/queue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "auth.h"
#include "envelope.h"
#include "uuid.h"
#include "log.h"
#include "metrics.h"
#include "queue.h"
#include "spec.h"
#include "taskdb.h"
#include "utf8.h"
#include "xalloc.h"

#define SUBMIT_MAX_BATCH 10000
#define LIST_MAX_LIMIT 1000

/* ---------------------------------------------------------------- replies */

/* A 401/403/429: counted per reason, and an audit row for the first one per
 * remote address per minute (sampled, so a flood cannot flood the table). */
static void auth_denied(struct req *q, const char *reason)
{
    char labels[64];
    snprintf(labels, sizeof labels, "reason=\"%s\"", reason);
    metric_add(metric_counter("devsys_http_auth_failures_total", labels,
                              "Requests refused for a missing, invalid or insufficient token"),
               1);
    struct evhttp_connection *evcon = evhttp_request_get_connection(q->r);
    char *addr = NULL;
    ev_uint16_t port = 0;
    if (evcon)
        evhttp_connection_get_peer(evcon, &addr, &port);
    if (auth_sample_failure(q->api->auth, addr))
        audit(q->api, q->actor[0] ? q->actor : "anonymous", "auth.denied", q->path,
              json_pack("{s:s,s:s}", "reason", reason, "remote", addr ? addr : ""));
}

void req_free(struct req *q)
{
    for (size_t i = 0; q->specs && i < q->n; i++)
        spec_free(q->specs[i]);
    free(q->specs);
    free(q->ids);
    free(q->created);
    free(q->states);
    free(q->query);
    free(q);
}

void reply_raw(struct req *q, int status, const char *body, size_t len)
{
    struct evhttp_request *r = q->r;
    struct evkeyvalq *h = evhttp_request_get_output_headers(r);
    evhttp_add_header(h, "Content-Type", "application/json");
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, body, len);
    evbuffer_add(b, "\n", 1);
    const char *reason = status == 200 ? "OK" : status == 201 ? "Created" : status == 400 ? "Bad Request"
                       : status == 401 ? "Unauthorized" : status == 403 ? "Forbidden"
                       : status == 404 ? "Not Found" : status == 409 ? "Conflict"
                       : status == 413 ? "Payload Too Large" : status == 503 ? "Service Unavailable"
                       : status == 429 ? "Too Many Requests"
                       : status == 431 ? "Request Header Fields Too Large"
                       : "Error";
    if (status == 403)
        auth_denied(q, "forbidden");
    evhttp_send_reply(r, status, reason, b);
    evbuffer_free(b);
    if (status >= 500)
        metric_add(q->api->m_errors, 1);
    q->api->inflight--;
    req_free(q);
}

/* Takes the reference to j. j NULL (a json_pack that failed) is answered 500
 * rather than crashing on it. */
void reply_json(struct req *q, int status, json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!s) {
        static const char fallback[] = "{\"error\":\"internal error: reply could not be encoded\"}";
        reply_raw(q, 500, fallback, sizeof fallback - 1);
        return;
    }
    reply_raw(q, status, s, strlen(s));
    free(s);
}

void reply_error(struct req *q, int status, const char *msg)
{
    /* msg may quote the client's bytes (a path segment); jansson refuses
     * invalid UTF-8, which left json_pack NULL (found by fuzz_http). */
    char *safe = utf8_sanitize(msg, strlen(msg));
    reply_json(q, status, json_pack("{s:s}", "error", safe));
    free(safe);
}

void reply_db_unavailable(struct req *q, const char *err, const char *note)
{
    evhttp_add_header(evhttp_request_get_output_headers(q->r), "Retry-After", DB_RETRY_AFTER_S);
    char msg[640];
    snprintf(msg, sizeof msg, "database unavailable: %s", err && err[0] ? err : "connection lost");
    reply_json(q, 503, json_pack("{s:s,s:s?}", "error", msg, "note", note));
}

/* ------------------------------------------------------------------ submit */

static void mark_unpublished_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    (void)res;
    (void)arg;
    if (err[0])
        log_error("could not mark tasks unpublished: %s", err);
}

/* A publish that failed: the reconciler republishes the task. */
static void mark_unpublished(api_t *api, const char *id)
{
    taskdb_mark_unpublished(api->pg, id, mark_unpublished_done, NULL);
}

struct publish_ctx {
    struct req *q;
    char id[37];
};

static void publish_settled(struct req *q);

static void publish_one_done(void *arg, const char *err, const char *entry)
{
    (void)entry;
    struct publish_ctx *pc = arg;
    if (err[0]) {
        log_warn("publish of %s failed (%s); the reconciler will republish it from PostgreSQL", pc->id, err);
        mark_unpublished(pc->q->api, pc->id);
    }
    struct req *q = pc->q;
    free(pc);
    publish_settled(q);
}

/* One XADD answered (or the submit's own hold released): the reply goes out
 * when the last one is in. */
static void publish_settled(struct req *q)
{
    if (--q->publishing > 0)
        return;
    json_t *tasks = json_array();
    for (size_t i = 0; i < q->n; i++)
        json_array_append_new(tasks, json_pack("{s:s,s:s,s:b}", "id", q->ids[i], "state", q->states[i],
                                               "created", q->created[i]));
    reply_json(q, q->any_created ? 201 : 200, json_pack("{s:o}", "tasks", tasks));
}

static void insert_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct req *q = arg;
    if (!res || err[0]) {
        log_error("submit: insert failed: %s", err);
        /* Not sent or refused by the server: nothing was recorded. No answer
         * (timeout, connection lost): the insert may have committed. */
        reply_db_unavailable(q, err,
                             res || pgc_err_not_sent(err)
                                 ? "the tasks were not recorded; retry"
                                 : "the outcome is unknown: the tasks may have been recorded; retry with the same"
                                   " idempotency_key to get the existing task (200) instead of a new one");
        return;
    }
    int rows = PQntuples(res);
    int c_ord = taskdb_col(res, "ord"), c_id = taskdb_col(res, "id"), c_created = taskdb_col(res, "created"),
        c_state = taskdb_col(res, "state");
    for (int i = 0; i < rows; i++) {
        long ord = strtol(PQgetvalue(res, i, c_ord), NULL, 10) - 1;
        if (ord < 0 || (size_t)ord >= q->n)
            continue;
        if (PQgetisnull(res, i, c_id)) {
            reply_error(q, 409, "a task with the same idempotency_key is being submitted concurrently; retry");
            return;
        }
        snprintf(q->ids[ord], sizeof q->ids[ord], "%s", PQgetvalue(res, i, c_id));
        q->created[ord] = PQgetvalue(res, i, c_created)[0] == 't';
        snprintf(q->states[ord], sizeof q->states[ord], "%s", PQgetvalue(res, i, c_state));
    }
    /* later duplicates of a key inside the batch share the first one's task */
    for (size_t i = 0; i < q->n; i++) {
        if (q->ids[i][0] || !q->specs[i]->idempotency_key)
            continue;
        for (size_t j = 0; j < i; j++)
            if (q->specs[j]->idempotency_key &&
                strcmp(q->specs[j]->idempotency_key, q->specs[i]->idempotency_key) == 0) {
                memcpy(q->ids[i], q->ids[j], sizeof q->ids[i]);
                memcpy(q->states[i], q->states[j], sizeof q->states[i]);
                q->created[i] = 0;
                break;
            }
    }
    struct timeval tv;
    gettimeofday(&tv, NULL);
    long long now_ms = (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
    json_t *ids = json_array();
    q->publishing = 1; /* held until every XADD is queued */
    for (size_t i = 0; i < q->n; i++) {
        if (!q->created[i])
            continue;
        q->any_created = 1;
        json_array_append_new(ids, json_string(q->ids[i]));
        const spec_t *s = q->specs[i];
        struct publish_ctx *pc = xcalloc(1, sizeof *pc);
        pc->q = q;
        memcpy(pc->id, q->ids[i], sizeof pc->id);
        if (queue_publish(q->api->rc, q->api->prefix, s->queue, q->ids[i], s->kind, 0, now_ms, s->json,
                          publish_one_done, pc) == 0) {
            q->publishing++;
        } else {
            free(pc);
            log_warn("submit: redis not connected; task %s stays queued in PostgreSQL", q->ids[i]);
            mark_unpublished(q->api, q->ids[i]);
        }
    }
    metric_add(q->api->m_submitted, (double)json_array_size(ids));
    if (json_array_size(ids))
        audit(q->api, q->actor, "task.submit", json_string_value(json_array_get(ids, 0)),
              json_pack("{s:I,s:o}", "count", (json_int_t)json_array_size(ids), "ids", ids));
    else
        json_decref(ids);
    publish_settled(q);
}

static void handle_submit(struct req *q)
{
    if (q->role < ROLE_OPERATOR) {
        reply_error(q, 403, "submitting tasks needs the operator role");
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(q->r);
    size_t len = evbuffer_get_length(in);
    if (len > q->api->max_body) {
        char msg[128];
        snprintf(msg, sizeof msg, "body of %zu bytes exceeds the limit of %zu", len, q->api->max_body);
        reply_error(q, 413, msg);
        return;
    }
    json_error_t jerr;
    json_t *body = json_loadb((const char *)evbuffer_pullup(in, -1), len, JSON_REJECT_DUPLICATES, &jerr);
    if (!body) {
        char msg[300];
        snprintf(msg, sizeof msg, "invalid JSON at line %d column %d: %s", jerr.line, jerr.column, jerr.text);
        reply_error(q, 400, msg);
        return;
    }
    size_t n = json_is_array(body) ? json_array_size(body) : 1;
    if (n == 0 || n > SUBMIT_MAX_BATCH) {
        json_decref(body);
        reply_error(q, n ? 413 : 400, n ? "a batch holds at most 10000 specs" : "empty batch: no specs");
        return;
    }
    q->n = n;
    q->specs = xcalloc(n, sizeof *q->specs);
    q->ids = xcalloc(n, sizeof *q->ids);
    q->created = xcalloc(n, sizeof *q->created);
    q->states = xcalloc(n, sizeof *q->states);
    json_t *errors = json_array();
    int too_large = 0;
    taskdb_rows_t *rows = taskdb_rows_new();
    for (size_t i = 0; i < n; i++) {
        json_t *j = json_is_array(body) ? json_array_get(body, i) : body;
        char err[SPEC_ERR_MAX];
        char *text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
        size_t tlen = text ? strlen(text) : 0;
        if (tlen > SPEC_MAX_BYTES) {
            snprintf(err, sizeof err, "spec: %zu bytes exceeds the limit of %d", tlen, SPEC_MAX_BYTES);
            too_large = 1;
        } else if ((q->specs[i] = spec_from_json(j, err, sizeof err))) {
            const spec_t *s = q->specs[i];
            uuid_v7(q->ids[i]);
            taskdb_submit_add(rows, q->ids[i], s->queue, s->kind, text, s->retry.max_attempts, s->priority,
                              s->idempotency_key);
            q->ids[i][0] = '\0'; /* filled from the insert's answer */
            free(text);
            continue;
        }
        free(text);
        const char *colon = strchr(err, ':');
        json_array_append_new(errors, json_pack("{s:I,s:s%,s:s}", "index", (json_int_t)i, "field", err,
                                                colon ? (size_t)(colon - err) : strlen(err), "message",
                                                err));
    }
    json_decref(body);
    if (json_array_size(errors)) {
        taskdb_rows_free(rows);
        reply_json(q, too_large ? 413 : 400,
                   json_pack("{s:s,s:o}", "error", too_large ? "spec too large" : "invalid spec", "errors",
                             errors));
    } else {
        json_decref(errors);
        /* ids are generated here, so the rows map back by ordinality */
        taskdb_submit(q->api->pg, rows, insert_done, q);
    }
}

/* ------------------------------------------------------------------- reads */

#define TASK_JSON_FIELDS                                                                            \
    "'id', id, 'queue', queue, 'kind', kind, 'state', state, 'attempt', attempt, 'max_attempts', " \
    "max_attempts, 'priority', priority, 'idempotency_key', idempotency_key, 'lease_owner', "      \
    "lease_owner, 'lease_expires_at', lease_expires_at, 'created_at', created_at, 'started_at', "   \
    "started_at, 'finished_at', finished_at, 'next_attempt_at', next_attempt_at, 'last_error', "    \
    "last_error, 'result', result"

void reply_task_row(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct req *q = arg;
    if (!res || err[0])
        reply_db_unavailable(q, err, NULL);
    else if (PQntuples(res) == 0)
        reply_error(q, 404, "task not found");
    else
        reply_raw(q, 200, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
}

static void handle_get(struct req *q, const char *id)
{
    if (!uuid_valid(id, strlen(id))) {
        reply_error(q, 404, "task not found (not a task id)");
        return;
    }
    const char *params[1] = {id};
    pgc_query(q->api->pg,
              "SELECT jsonb_build_object(" TASK_JSON_FIELDS
              ", 'output_tail', output_tail, 'source', source, 'spec', spec)::text"
              " FROM tasks WHERE id = $1::uuid",
              1, params, reply_task_row, q);
}

static void list_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct req *q = arg;
    if (!res || err[0]) {
        reply_db_unavailable(q, err, NULL);
        return;
    }
    int rows = PQntuples(res);
    long limit = strtol(PQgetvalue(res, 0, 2), NULL, 10);
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "{\"tasks\":[");
    int n = 0, last = -1;
    for (int i = 0; i < rows; i++) {
        if (PQgetisnull(res, i, 0))
            continue;
        evbuffer_add_printf(b, "%s%s", n++ ? "," : "", PQgetvalue(res, i, 0));
        last = i;
    }
    if (n == limit && last >= 0)
        evbuffer_add_printf(b, "],\"next\":\"%s\"}", PQgetvalue(res, last, 1));
    else
        evbuffer_add_printf(b, "],\"next\":null}");
    size_t len = evbuffer_get_length(b);
    reply_raw(q, 200, (const char *)evbuffer_pullup(b, -1), len);
    evbuffer_free(b);
}

/* A list cursor is "<created_at in µs since the epoch>_<id>", opaque to
 * clients. Whole string checked and the time kept inside PostgreSQL's range
 * (up to year 9999), so a forged one is a 400, not a failed query. */
#define LIST_CURSOR_MAX_US 253402300799999999LL

static int list_cursor_parse(const char *s, char *us, size_t us_cap, char *id, size_t id_cap)
{
    size_t n = strspn(s, "0123456789");
    if (n == 0 || n > 18 || s[n] != '_' || strlen(s + n + 1) != 36 || !uuid_valid(s + n + 1, 36) ||
        us_cap <= n || id_cap <= 36)
        return 0;
    if (strtoll(s, NULL, 10) > LIST_CURSOR_MAX_US)
        return 0;
    snprintf(us, us_cap, "%.*s", (int)n, s);
    snprintf(id, id_cap, "%s", s + n + 1);
    return 1;
}

static void handle_list(struct req *q)
{
    struct evkeyvalq args;
    TAILQ_INIT(&args);
    if (q->query && evhttp_parse_query_str(q->query, &args) < 0) {
        reply_error(q, 400, "query string does not parse");
        return;
    }
    const char *state = evhttp_find_header(&args, "state");
    const char *queue = evhttp_find_header(&args, "queue");
    const char *limit_s = evhttp_find_header(&args, "limit");
    const char *after = evhttp_find_header(&args, "after");
    char limit[16] = "50", after_us[24] = "", after_id[40] = "";
    const char *bad = NULL;
    if (limit_s) {
        char *end;
        long l = strtol(limit_s, &end, 10);
        if (!*limit_s || *end || l < 1 || l > LIST_MAX_LIMIT)
            bad = "limit: must be an integer from 1 to 1000";
        snprintf(limit, sizeof limit, "%ld", l);
    }
    if (after && !list_cursor_parse(after, after_us, sizeof after_us, after_id, sizeof after_id))
        bad = "after: not a cursor returned by this API";
    static const char *const states[] = {"queued", "running",   "retrying", "succeeded",
                                         "failed", "dead",      "cancelled"};
    if (state) {
        int ok = 0;
        for (size_t i = 0; i < sizeof states / sizeof *states; i++)
            ok |= strcmp(state, states[i]) == 0;
        if (!ok)
            bad = "state: must be one of queued, running, retrying, succeeded, failed, dead, cancelled";
    }
    if (queue && !spec_queue_name_ok(queue))
        bad = "queue: not a valid queue name";
    const char *params[5] = {state, queue, after ? after_us : NULL, after ? after_id : NULL, limit};
    if (bad) {
        evhttp_clear_headers(&args);
        reply_error(q, 400, bad);
        return;
    }
    /* The extra row (limit echoed) keeps the answer non-empty so list_done can read the limit. */
    pgc_query(q->api->pg,
              "WITH page AS (SELECT * FROM tasks"
              "  WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR queue = $2)"
              "    AND ($3::bigint IS NULL OR (created_at, id) <"
              "         ('epoch'::timestamptz + $3::bigint * interval '1 microsecond', $4::uuid))"
              "  ORDER BY created_at DESC, id DESC LIMIT $5::int)"
              " SELECT jsonb_build_object(" TASK_JSON_FIELDS ")::text,"
              "   (extract(epoch FROM created_at) * 1000000)::bigint || '_' || id, $5::int"
              " FROM (SELECT * FROM page ORDER BY created_at DESC, id DESC) p"
              " UNION ALL SELECT NULL, NULL, $5::int",
              5, params, list_done, q);
    evhttp_clear_headers(&args);
}

/* ------------------------------------------------------------------ health */

static void health_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct req *q = arg;
    int pg_ok = res && !err[0];
    int redis_ok = rc_connected(q->api->rc);
    reply_json(q, pg_ok && redis_ok ? 200 : 503,
               json_pack("{s:s,s:s}", "redis", redis_ok ? "ok" : "unreachable", "postgres",
                         pg_ok ? "ok" : err));
}

static void handle_metrics(struct req *q)
{
    char *text = metrics_render();
    struct evkeyvalq *h = evhttp_request_get_output_headers(q->r);
    evhttp_add_header(h, "Content-Type", "text/plain; version=0.0.4");
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, text, strlen(text));
    free(text);
    evhttp_send_reply(q->r, 200, "OK", b);
    evbuffer_free(b);
    q->api->inflight--;
    req_free(q);
}

/* ------------------------------------------------------------------- audit */

static void audit_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    (void)res;
    (void)arg;
    if (err[0])
        log_error("audit log write failed: %s", err);
}

/* Takes the reference to detail. */
void audit(api_t *api, const char *actor, const char *action, const char *target, json_t *detail)
{
    char *d = json_dumps(detail, JSON_COMPACT);
    const char *params[4] = {actor, action, target, d};
    pgc_query(api->pg, "INSERT INTO audit_log (actor, action, target, detail) VALUES ($1, $2, $3, $4::jsonb)",
              4, params, audit_done, NULL);
    free(d);
    json_decref(detail); /* last: target may point into it */
}

/* ------------------------------------------------------------------ routes */

/* Answers a request refused by the token check (see auth_outcome) or by the
 * HTTP guard (a verdict: 400, 401, 413, 429, 431, 503). */
static void reply_refused(struct req *q, int status, const char *reason, const char *msg)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(q->r);
    if (status == 401) {
        evhttp_add_header(h, "WWW-Authenticate", "Bearer realm=\"devsys\"");
        auth_denied(q, reason);
    } else if (status == 429) {
        evhttp_add_header(h, "Retry-After", "1");
        auth_denied(q, reason);
    } else if (status == 503) {
        evhttp_add_header(h, "Retry-After", "1");
    }
    reply_error(q, status, msg);
}

static void route(const struct auth_result *res, void *arg)
{
    struct req *q = arg;
    q->role = res->role;
    snprintf(q->actor, sizeof q->actor, "%s", res->actor);
    switch (res->outcome) {
    case AUTH_OK:
        break;
    case AUTH_LIMITED:
        reply_refused(q, 429, auth_outcome_name(res->outcome),
                              "too many requests with unknown tokens; retry in a second");
        return;
    case AUTH_UNAVAILABLE:
        reply_refused(q, 503, auth_outcome_name(res->outcome), "cannot check the token: database unavailable");
        return;
    default:
        reply_refused(q, 401, auth_outcome_name(res->outcome), "missing or invalid bearer token");
        return;
    }
    const char *p = q->path;
    if (strcmp(p, "/v1/tasks") == 0) {
        if (q->method == EVHTTP_REQ_POST)
            handle_submit(q);
        else if (q->method == EVHTTP_REQ_GET)
            handle_list(q);
        else
            reply_error(q, 405, "method not allowed");
        return;
    }
    if (strncmp(p, "/v1/tasks/", 10) == 0 && !strchr(p + 10, '/')) {
        if (q->method == EVHTTP_REQ_GET)
            handle_get(q, p + 10);
        else
            reply_error(q, 405, "method not allowed");
        return;
    }
    if (dlq_route(q))
        return;
    reply_error(q, 404, "no such endpoint");
}

static void on_request(struct evhttp_request *r, void *arg)
{
    api_t *api = arg;
    struct req *q = xcalloc(1, sizeof *q);
    q->api = api;
    q->r = r;
    q->method = evhttp_request_get_command(r);
    api->inflight++;
    metric_add(api->m_requests, 1);
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
    snprintf(q->path, sizeof q->path, "%s", path && *path ? path : "/");
    q->query = query ? xstrdup(query) : NULL;
    size_t plen = strlen(q->path);
    if (plen > 1 && q->path[plen - 1] == '/')
        q->path[plen - 1] = '\0';
    const struct guard_verdict *v = guard_request(api->guard, r);
    if (v) { /* refused by the guard before its body was read */
        snprintf(q->path, sizeof q->path, "%s", v->path[0] ? v->path : "/");
        reply_refused(q, v->status, v->reason, v->message);
        return;
    }

    if (strcmp(q->path, "/healthz") == 0 || strcmp(q->path, "/readyz") == 0) {
        pgc_query(api->pg, "SELECT 1", 0, NULL, health_done, q);
        return;
    }
    if (strcmp(q->path, "/metrics") == 0) {
        handle_metrics(q);
        return;
    }
    const char *authz = evhttp_find_header(evhttp_request_get_input_headers(r), "Authorization");
    auth_check(api->auth, authz, route, q);
}

api_t *api_new(struct event_base *base, rc_t *rc, pgc_t *pg, const struct api_config *cfg, char *err,
               size_t errlen)
{
    char host[256];
    unsigned port = 0;
    const char *colon = strrchr(cfg->listen, ':');
    if (!colon || sscanf(colon + 1, "%u", &port) != 1 || port > 65535 ||
        (size_t)(colon - cfg->listen) >= sizeof host) {
        snprintf(err, errlen, "DEVSYS_LISTEN: expected host:port, got \"%s\"", cfg->listen);
        return NULL;
    }
    snprintf(host, sizeof host, "%.*s", (int)(colon - cfg->listen), cfg->listen);
    api_t *api = xcalloc(1, sizeof *api);
    api->base = base;
    api->rc = rc;
    api->pg = pg;
    api->prefix = xstrdup(cfg->prefix);
    api->max_body = cfg->max_body;
    struct auth_config authc = {cfg->admin_token, cfg->auth_cache_ms, cfg->auth_lookups_per_s};
    api->auth = auth_new(pg, &authc);
    api->http = evhttp_new(base);
    /* libevent answers 413 itself past this; our own check gives JSON below it */
    evhttp_set_max_body_size(api->http, (ev_ssize_t)cfg->max_body + 1);
    evhttp_set_allowed_methods(api->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE);
    evhttp_set_gencb(api->http, on_request, api);
    static const char *const public_paths[] = {"/healthz", "/readyz", "/metrics", NULL};
    struct guard_limits lim = cfg->edge;
    lim.max_body = cfg->max_body;
    api->guard = guard_new(base, api->http, api->auth, &lim, public_paths, host, port, err, errlen);
    if (!api->guard) {
        api_free(api);
        return NULL;
    }
    api->m_requests = metric_counter("devsys_http_requests_total", NULL, "HTTP requests received");
    api->m_errors = metric_counter("devsys_http_errors_total", NULL, "HTTP requests answered 5xx");
    api->m_submitted = metric_counter("devsys_tasks_submitted_total", NULL, "Tasks accepted");
    return api;
}

void api_stop_accepting(api_t *api)
{
    guard_stop_accepting(api->guard);
}

int api_inflight(const api_t *api)
{
    return api->inflight;
}

void api_free(api_t *api)
{
    if (!api)
        return;
    guard_free(api->guard); /* before evhttp_free: it lets go of the listener and connections */
    if (api->http)
        evhttp_free(api->http);
    auth_free(api->auth);
    free(api->prefix);
    free(api);
}
