/* http_policy: what the route dispatch applies to every row after the role
 * check — per-token rate limits of mutating routes, the queue/app scope of a
 * token checked against the target the row declares (http_scope.c) — and the audit row of
 * every mutating call, written with its outcome when it is answered. */
#include "http_internal.h"

#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "log.h"
#include "xalloc.h"

#define POLICY_BUCKETS 1024 /* tokens remembered for rate limits; the least recently used goes */

struct bucket {
    char actor[160];
    double tokens;
    long long refill_ms, used_ms;
};

struct policy {
    double rate, burst; /* per second; rate 0: no limit */
    struct bucket b[POLICY_BUCKETS];
    int n;
    metric_t *m_limited;
};

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

policy_t *policy_new(void)
{
    policy_t *p = xcalloc(1, sizeof *p);
    p->rate = cfg_double("DEVSYS_RATE_MUTATING_PER_S", 10, 0, 1e6);
    p->burst = cfg_double("DEVSYS_RATE_MUTATING_BURST", 50, 1, 1e6);
    if (p->burst < 1)
        p->burst = 1;
    p->m_limited = metric_counter("devsys_http_rate_limited_total", NULL,
                                  "Mutating requests refused by a token's rate limit (429)");
    return p;
}

void policy_free(policy_t *p)
{
    free(p);
}

/* 0 when actor may make one more mutating call now; else the seconds until it may. */
static int rate_wait_s(policy_t *p, const char *actor)
{
    long long now = mono_ms();
    struct bucket *b = NULL, *lru = &p->b[0];
    for (int i = 0; i < p->n && !b; i++) {
        if (strcmp(p->b[i].actor, actor) == 0)
            b = &p->b[i];
        else if (p->b[i].used_ms < lru->used_ms)
            lru = &p->b[i];
    }
    if (!b) {
        b = p->n < POLICY_BUCKETS ? &p->b[p->n++] : lru;
        snprintf(b->actor, sizeof b->actor, "%s", actor);
        b->tokens = p->burst;
        b->refill_ms = now;
    }
    b->used_ms = now;
    b->tokens += (double)(now - b->refill_ms) * p->rate / 1000.0;
    b->refill_ms = now;
    if (b->tokens > p->burst)
        b->tokens = p->burst;
    if (b->tokens >= 1) {
        b->tokens -= 1;
        return 0;
    }
    int s = (int)((1 - b->tokens) / p->rate) + 1;
    return s;
}

void policy_enter(struct req *q, const struct route *r, const struct route_args *a)
{
    policy_t *p = q->api->policy;
    if (r->method != EVHTTP_REQ_GET && r->method != EVHTTP_REQ_HEAD && !q->bootstrap && p->rate > 0) {
        int wait = rate_wait_s(p, q->actor);
        if (wait) {
            char secs[16], msg[160];
            snprintf(secs, sizeof secs, "%d", wait);
            snprintf(msg, sizeof msg, "rate limit of this token: %g changes/s (burst %g); retry in %d s", p->rate,
                     p->burst, wait);
            evhttp_add_header(evhttp_request_get_output_headers(q->r), "Retry-After", secs);
            metric_add(p->m_limited, 1);
            reply_error(q, 429, msg);
            return;
        }
    }
    if ((q->queues || q->apps) && scope_check(q, r, a))
        return; /* answered, or answered when the lookup of the target returns */
    r->handler(q, a);
}

/* ------------------------------------------------------------------ audit */

void policy_audit_start(struct req *q, const struct route *r, const struct route_args *a)
{
    if (r->method == EVHTTP_REQ_GET || r->method == EVHTTP_REQ_HEAD)
        return;
    q->audit_action = route_action_of(r, q->audit_buf, sizeof q->audit_buf);
    const char *t = a->id[0] ? a->id : a->name[0] ? a->name : a->app[0] ? a->app : NULL;
    if (t)
        snprintf(q->audit_target, sizeof q->audit_target, "%s", t);
    else if (a->entry[0])
        snprintf(q->audit_target, sizeof q->audit_target, "%s/%s", a->queue, a->entry);
    else
        snprintf(q->audit_target, sizeof q->audit_target, "%s", a->queue);
}

void req_audit_note(struct req *q, const char *target, json_t *detail)
{
    if (target)
        snprintf(q->audit_target, sizeof q->audit_target, "%s", target);
    json_decref(q->audit_detail);
    q->audit_detail = detail;
}

static void audit_written(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    (void)res;
    (void)arg;
    if (err[0])
        log_error("audit log write failed: %s", err);
}

/* One audit_log row, fire and forget. role, target, remote, request_id may be NULL. */
static void audit_insert(pgc_t *pg, const char *actor, const char *role, const char *action, const char *target,
                         const char *remote, const char *request_id, int outcome, const json_t *detail)
{
    char *d = detail ? json_dumps(detail, JSON_COMPACT) : NULL;
    char st[16];
    snprintf(st, sizeof st, "%d", outcome);
    const char *params[8] = {actor, role, action, target, remote, request_id, st, d};
    pgc_query(pg,
              "INSERT INTO audit_log (actor, role, action, target, remote, request_id, outcome, detail)"
              " VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)",
              8, params, audit_written, NULL);
    free(d);
}

void policy_audit_finish(struct req *q, int status)
{
    if (!q->audit_action)
        return;
    audit_insert(q->api->pg, q->actor[0] ? q->actor : "anonymous", auth_role_name(q->role), q->audit_action,
                 q->audit_target[0] ? q->audit_target : NULL, q->remote, q->request_id, status, q->audit_detail);
    q->audit_action = NULL;
}

/* Takes the reference to detail. */
void http_audit(api_t *api, const char *actor, const char *action, const char *target, json_t *detail)
{
    audit_insert(api->pg, actor, NULL, action, target, NULL, NULL, 0, detail);
    json_decref(detail); /* last: target may point into it */
}
