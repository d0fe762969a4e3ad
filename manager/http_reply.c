/* http_reply: the plumbing every manager route shares: answering a request
 * (JSON replies, errors, the "database unavailable" 503, refusals of the
 * guard and the token check) and freeing it (audit rows: http_policy.c). */
#include "http_internal.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "log.h"
#include "metrics.h"
#include "spec.h"
#include "utf8.h"

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
        http_audit(q->api, q->actor[0] ? q->actor : "anonymous", "auth.denied", q->path,
              json_pack("{s:s,s:s}", "reason", reason, "remote", addr ? addr : ""));
}

void req_observe(struct req *q, int status)
{
    double s = metric_now() - q->t0;
    const char *route = q->route ? q->route : "unmatched";
    const char *method = route_method_name(q->method);
    char labels[256];
    snprintf(labels, sizeof labels, "route=\"%s\",method=\"%s\",status=\"%d\"", route, method, status);
    metric_add(metric_counter("devsys_http_requests_total", labels,
                              "HTTP requests answered, by route pattern, method and status"),
               1);
    snprintf(labels, sizeof labels, "route=\"%s\",method=\"%s\"", route, method);
    metric_observe(metric_histogram("devsys_http_request_duration_seconds", labels,
                                    "HTTP request latency (arrival to answer), by route pattern and method",
                                    metric_buckets_latency, metric_buckets_latency_n),
                   s);
    if (!log_enabled(LOG_INFO))
        return; /* warn and above: no request lines (and no route lookup for them) */
    enum log_level lv = q->route && route_is_public(q->route) ? LOG_DEBUG : LOG_INFO;
    if (log_enabled(lv)) {
        struct log_ctx c = {.request_id = q->request_id};
        log_task(lv, &c, "%s %s %d %.1f ms (%s, %s)", method, q->path, status, s * 1000, route,
                 q->actor[0] ? q->actor : "anonymous");
    }
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
    free(q->queues);
    free(q->apps);
    free(q->queues_pg);
    free(q->apps_pg);
    json_decref(q->audit_detail);
    free(q);
}

json_t *req_body_json(struct req *q)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(q->r);
    size_t len = evbuffer_get_length(in);
    if (len > q->api->max_body) {
        char msg[128];
        snprintf(msg, sizeof msg, "body of %zu bytes exceeds the limit of %zu", len, q->api->max_body);
        reply_error(q, 413, msg);
        return NULL;
    }
    json_error_t jerr;
    json_t *body = json_loadb((const char *)evbuffer_pullup(in, -1), len, JSON_REJECT_DUPLICATES, &jerr);
    if (!body) {
        char msg[300];
        snprintf(msg, sizeof msg, "invalid JSON at line %d column %d: %s", jerr.line, jerr.column, jerr.text);
        reply_error(q, 400, msg);
    }
    return body;
}

void reply_raw(struct req *q, int status, const char *body, size_t len)
{
    reply_typed(q, status, "application/json", body, len);
}

void reply_typed(struct req *q, int status, const char *content_type, const char *body, size_t len)
{
    struct evhttp_request *r = q->r;
    struct evkeyvalq *h = evhttp_request_get_output_headers(r);
    evhttp_add_header(h, "Content-Type", content_type);
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, body, len);
    evbuffer_add(b, "\n", 1);
    const char *reason = status == 200 ? "OK" : status == 201 ? "Created" : status == 400 ? "Bad Request"
                       : status == 401 ? "Unauthorized" : status == 403 ? "Forbidden"
                       : status == 404 ? "Not Found" : status == 409 ? "Conflict"
                       : status == 413 ? "Payload Too Large" : status == 503 ? "Service Unavailable"
                       : status == 429 ? "Too Many Requests"
                       : status == 431 ? "Request Header Fields Too Large"
                       : status == 507 ? "Insufficient Storage"
                       : "Error";
    if (status == 403 && !q->audit_action) /* an audited route's 403 has its own row */
        auth_denied(q, "forbidden");
    if (q->request_id[0])
        evhttp_add_header(h, "X-Request-Id", q->request_id);
    policy_audit_finish(q, status);
    req_observe(q, status);
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

/* ---------------------------------------------------------------- refusals */

/* Answers a request refused by the token check (see auth_outcome) or by the
 * HTTP guard (a verdict: 400, 401, 413, 429, 431, 503). */
void reply_refused(struct req *q, int status, const char *reason, const char *msg)
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

void reply_field_error(struct req *q, const char *msg)
{
    const char *colon = strstr(msg, ": ");
    reply_json(q, 400, json_pack("{s:s,s:s%}", "error", msg, "field", msg, colon ? (size_t)(colon - msg) : strlen(msg)));
}
