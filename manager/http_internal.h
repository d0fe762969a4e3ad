/* http_internal: what the manager's HTTP modules share: the api and one
 * request (http_api.c), the replies (http_reply.c), the helpers of the route
 * handlers (http_op.c) and the route table (http_route.h). Not public. */
#ifndef DEVSYS_HTTP_INTERNAL_H
#define DEVSYS_HTTP_INTERNAL_H

#include <event2/http.h>
#include <jansson.h>

#include "auth.h"
#include "http_api.h"
#include "http_guard.h"
#include "http_route.h"
#include "metrics.h"
#include "pgarr.h"
#include "spec.h"
#include "secretdb.h"
#include "taskdb.h"
#include "ui_session.h"

typedef struct policy policy_t;

struct api {
    struct event_base *base;
    struct evhttp *http;
    rc_t *rc;
    pgc_t *pg;
    auth_t *auth;
    char *prefix;
    size_t max_body;
    int inflight;
    metric_t *m_submitted, *m_errors;
    guard_t *guard; /* the HTTP edge: connection cap, head checks before bodies */
    struct astore *store; /* artifacts (artifact_store.h) */
    struct agc *agc;      /* their garbage collection (artifact_gc.h); NULL: off */
    size_t artifact_max;  /* bytes of one artifact (PUT body) */
    pgc_t *pg_search; /* task searches (http_search.c); NULL: they use pg */
    long search_timeout_ms;
    policy_t *policy; /* per-token rate limits of mutating routes (http_policy.c) */
    secretbox_t *secrets; /* the keys of secrets at rest; NULL: DEVSYS_SECRET_KEY not set */
    struct qmetrics *qmetrics; /* per-queue gauges: told each queue a submit publishes to; may be NULL */
    uisess_t *sessions;   /* the console's session cookies (ui_session.h) */
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
    char *queues, *apps;   /* the token's scopes (owned; NULL: unscoped) */
    char *queues_pg, *apps_pg; /* the same as PostgreSQL arrays (http_scope.c; owned, made when asked) */
    int bootstrap;         /* the DEVSYS_ADMIN_TOKEN */
    char remote[64];       /* the peer's address */
    char request_id[68];   /* X-Request-Id as given (if sane) or made up; sent back */
    const char *route;     /* the matched row's pattern (static), NULL: none matched */
    double t0;             /* metric_now() when it arrived */
    int session;           /* authenticated by a console session cookie, not a bearer header */
    int csrf_ok;           /* ... and its X-CSRF-Token is the session's */
    char csrf[UISESS_CSRF_LEN + 1];
    long long session_expires;
    /* the audit row of a mutating route, written when it is answered */
    const char *audit_action; /* NULL: not audited */
    char audit_buf[160];
    char audit_target[300];
    json_t *audit_detail;
    /* submit */
    size_t n;
    spec_t **specs;
    char (*ids)[37];
    int *created;
    char (*states)[16];
    int publishing;
    int any_created;
    int accepted;    /* answer 202 {"task_id", "state"} (one spec submitted for another resource) */
};

/* ------------------------------------------------------------ http_reply.c */

/* Each reply_* answers the request and frees q (and decrements inflight). */
void reply_raw(struct req *q, int status, const char *body, size_t len);
/* reply_raw with another Content-Type (the XML of a test report). */
void reply_typed(struct req *q, int status, const char *content_type, const char *body, size_t len);
/* Takes the reference to j. */
void reply_json(struct req *q, int status, json_t *j);
void reply_error(struct req *q, int status, const char *msg);
/* 400 {"error": msg, "field": the text before msg's first ": "} for a
 * "field: rule" message of a validator. */
void reply_field_error(struct req *q, const char *msg);
/* 503 for a PostgreSQL failure (err as given to a pgc callback), with
 * Retry-After and an optional note on what became of the request. */
#define DB_RETRY_AFTER_S "2"
void reply_db_unavailable(struct req *q, const char *err, const char *note);
/* A request refused by the token check or by the HTTP guard (a verdict: 400,
 * 401, 413, 429, 431, 503): with WWW-Authenticate or Retry-After as fits, and
 * counted as an auth failure under reason when it is one. */
void reply_refused(struct req *q, int status, const char *reason, const char *msg);
void req_free(struct req *q);
/* q is answered with status: counts it in devsys_http_requests_total{route,
 * method,status} and its latency in devsys_http_request_duration_seconds{route,
 * method} (route: the table's pattern, never the raw path, so the label set
 * is bounded), and writes the request log line (debug for /metrics and the
 * probes). Every reply path calls it once. */
void req_observe(struct req *q, int status);
/* The request's body parsed as JSON (caller owns it), or NULL once q is
 * answered: 413 past the body limit, 400 naming where the JSON is wrong. */
json_t *req_body_json(struct req *q);
/* Writes one audit_log row (async, fire and forget). Takes the reference to detail. */
void http_audit(api_t *api, const char *actor, const char *action, const char *target, json_t *detail);
/* What the audit row of q (a mutating route) names as its target (NULL: keep
 * the path's) and its detail (takes the reference; replaces an earlier one). */
void req_audit_note(struct req *q, const char *target, json_t *detail);

/* ------------------------------------------------------------ http_policy.c */

/* Configured from the environment: DEVSYS_RATE_MUTATING_PER_S (10; 0: off)
 * and DEVSYS_RATE_MUTATING_BURST (50), per token and manager. */
policy_t *policy_new(void);
void policy_free(policy_t *p);
/* Marks q for its audit row when r is a mutating route (target from a). */
void policy_audit_start(struct req *q, const struct route *r, const struct route_args *a);
/* After the role check: the rate limit (429 with Retry-After), the scope
 * check (403 naming the scope; may wait for one PostgreSQL lookup), then the
 * row's handler. */
void policy_enter(struct req *q, const struct route *r, const struct route_args *a);
/* Writes q's audit row with its answer's status (from reply_typed). */
void policy_audit_finish(struct req *q, int status);

/* ------------------------------------------------------------ http_scope.c */

/* A scoped token's check of r's target (route_target_of): 0 when in scope
 * (or unscoped), 1 when q is answered (403 naming the scope, or 503), 2
 * when a PostgreSQL lookup of the target's specs is under way: its callback
 * answers 403 or calls r's handler. Only for a token with q->queues or q->apps. */
int scope_check(struct req *q, const struct route *r, const struct route_args *a);
/* The token's queues and apps as PostgreSQL text[] parameters ("{a,b}"),
 * NULL when it is not scoped by them: lists filter with
 * "($N::text[] IS NULL OR queue = ANY($N::text[]))" in their SQL, so a
 * cursor pages through exactly what the token may see. Owned by q. */
const char *scope_sql_queues(struct req *q);
const char *scope_sql_apps(struct req *q);

/* ------------------------------------------------------------- http_op.c */

enum op_kind { OP_SHOW, OP_REPLAY, OP_PURGE, OP_RETRY };

/* ---------------------------------------------------------- http_dlq_bulk.c */

#define DLQ_BULK_DEFAULT 1000 /* dead letters a bulk replay or filtered purge handles per call */
#define DLQ_BULK_MAX 10000

/* ?error=&kind=&since=&limit= of a bulk dead-letter action. */
struct dlq_filter {
    char *error;
    char kind[72], since_us[24];
    long limit;
    int narrowed, limited;       /* error, kind or since given; limit given */
    struct taskdb_dlq_filter db; /* the same, for taskdb (NULL fields: any) */
};
/* NULL with the message for a 400 in why. Caller frees with dlq_filter_free. */
struct dlq_filter *dlq_filter_parse(const char *query, char *why, size_t len);
void dlq_filter_free(struct dlq_filter *f);
/* q's filter, or NULL when q has been answered 400 naming what is wrong. */
struct dlq_filter *dlq_filter_of(struct req *q);
/* New reference: the filter as answers and audit rows show it. */
json_t *dlq_filter_json(const struct dlq_filter *f);
/* Purge up to f->limit dead letters of queue that match f; takes f. */
void dlq_purge_filtered(struct req *q, const char *queue, struct dlq_filter *f);

/* One request in progress: the handler's pgc and rc callbacks pass it along;
 * it dies with the reply. */
struct op {
    struct req *q;
    enum op_kind kind;
    char queue[72];
    char task[40];   /* task id ("" while unknown) */
    char entry[48];  /* DLQ entry id ("" when not in Redis) */
    char state[16];  /* task state seen by the last statement */
    char arg[64];    /* the ID as given in the path */
    char secret[64]; /* a new token's secret until it is answered (http_tokens.c) */
    json_t *found;   /* the dead letter as JSON, NULL while not found */
    int by_task;     /* the ID in the path was a task id */
    /* lists and batches */
    json_t *acc;
    size_t pending;
    long count, published, failed;
    char cursor[40];
    pgarr_t *ok_ids, *lost_ids;
    struct dlq_filter *filter; /* a bulk dead-letter action's (http_dlq_bulk.c); freed with o */
    int more;                  /* it stopped at its limit with more matching */
};

/* A new op for q; with a queue, o->queue is set. */
struct op *op_new(struct req *q, const char *queue);
void op_free(struct op *o);
/* Each of these answers the request and frees o (and its request).
 * op_reply takes the reference to j; op_db_error is the 503 of reply_db_unavailable;
 * op_conflict is a 409 with the task's current state next to msg. */
void op_reply(struct op *o, int status, json_t *j);
void op_error(struct op *o, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void op_db_error(struct op *o, const char *err);
/* The start of most statement callbacks on an op: a failed statement answers
 * 503 (op_db_error), no row answers 404 with the message; both free o and
 * return 0. Returns 1 when there is a row to read (o still owned by the caller). */
int op_have_row(struct op *o, const PGresult *res, const char *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void op_conflict(struct op *o, const char *msg);
/* Why a queue operation failed, in words (err as given to its callback). */
const char *op_redis_why(const char *err);

/* ?limit= and ?after= of a paged GET. */
struct op_page {
    char limit[16]; /* the limit as text (def when not given) */
    char after[64]; /* the cursor, "" when not given */
    char why[80];   /* what is wrong, when op_parse_page returns -1 */
};
/* Parses query (may be NULL): limit 1..max, default def; after must satisfy
 * after_ok. Returns 0, or -1 with the message for a 400 in p->why. */
int op_parse_page(const char *query, long def, long max, int (*after_ok)(const char *), struct op_page *p);
/* A list cursor "<created_at in µs since the epoch>_<id>" (opaque to
 * clients) into its parts; 0 when s is not one. */
int op_cursor_parse(const char *s, char *us, size_t us_cap, char *id, size_t id_cap);
/* ------------------------------------------------------------ http_tasks.c */

/* A time given to the API (http_search.c): epoch seconds, a date or RFC 3339,
 * as µs since the epoch in *us; 0 when it is none of these. */
int time_parse(const char *s, long long *us);

/* The fields of a task row as jsonb_build_object arguments (get, list, search). */
#define TASK_JSON_FIELDS                                                                            \
    "'id', id, 'queue', queue, 'kind', kind, 'state', state, 'attempt', attempt, 'max_attempts', " \
    "max_attempts, 'priority', priority, 'idempotency_key', idempotency_key, 'lease_owner', "      \
    "lease_owner, 'lease_expires_at', lease_expires_at, 'created_at', created_at, 'started_at', "   \
    "started_at, 'finished_at', finished_at, 'next_attempt_at', next_attempt_at, 'last_error', "    \
    "last_error, 'result', result"

/* ------------------------------------------------------------ http_replay.c */

/* o (kind OP_REPLAY, from http_dlq.c) has found its dead letter (o->task,
 * o->entry filled in); replays that task alone and answers. */
void replay_one(struct op *o);

/* ---------------------------------------------------------- http_pipelines.c */

/* POST /v1/tasks with one spec holding "next": submits it as the linear
 * pipeline it stands for (proto/pipeline.h, pipeline_from_next) and answers
 * as a task submit does, plus "pipeline". Takes the reference to spec. */
void pipelines_submit_next(struct req *q, json_t *spec);

#endif
