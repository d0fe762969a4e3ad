/* http_internal: what the manager's HTTP modules share (http_api.c serves the
 * task routes; http_dlq.c the dead-letter, cancel and checkpoint routes).
 * Not part of any public contract. */
#ifndef DEVSYS_HTTP_INTERNAL_H
#define DEVSYS_HTTP_INTERNAL_H

#include <event2/http.h>
#include <jansson.h>

#include "auth.h"
#include "http_api.h"
#include "http_guard.h"
#include "metrics.h"
#include "spec.h"

struct api {
    struct event_base *base;
    struct evhttp *http;
    rc_t *rc;
    pgc_t *pg;
    auth_t *auth;
    char *prefix;
    size_t max_body;
    int inflight;
    metric_t *m_requests, *m_submitted, *m_errors;
    guard_t *guard; /* the HTTP edge: connection cap, head checks before bodies */
};

/* One request being served. Freed by reply(). */
struct req {
    api_t *api;
    struct evhttp_request *r;
    enum evhttp_cmd_type method;
    char path[512];
    char *query;
    enum role role;
    char actor[160];
    /* submit */
    size_t n;
    spec_t **specs;
    char (*ids)[37];
    int *created;
    char (*states)[16];
    int publishing;
    int any_created;
};

/* Each reply_* answers the request and frees q (and decrements inflight). */
void reply_raw(struct req *q, int status, const char *body, size_t len);
/* Takes the reference to j. */
void reply_json(struct req *q, int status, json_t *j);
void reply_error(struct req *q, int status, const char *msg);
void req_free(struct req *q);
/* pgc callback (arg: the req) for a query about one task that returns its
 * answer as one JSON text column: 200 with it, 404 when no row, 503 when
 * PostgreSQL failed. */
void reply_task_row(pgc_t *pg, PGresult *res, const char *err, void *arg);
/* Writes one audit_log row (async, fire and forget). Takes the reference to detail. */
void audit(api_t *api, const char *actor, const char *action, const char *target, json_t *detail);

/* http_dlq.c: routes under /v1/dlq and /v1/tasks/{id}/cancel|checkpoints.
 * Returns 1 if it took the request (and will reply), 0 if the path is not its. */
int dlq_route(struct req *q);

#endif
