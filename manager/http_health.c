/* http_health: the routes without a token: GET /healthz and /readyz (PostgreSQL
 * and Redis reachable?) and GET /metrics (Prometheus text). */
#include "http_internal.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "version.h"

static void health_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct req *q = arg;
    int pg_ok = res && !err[0];
    int redis_ok = rc_connected(q->api->rc);
    reply_json(q, pg_ok && redis_ok ? 200 : 503,
               json_pack("{s:s,s:s,s:s}", "redis", redis_ok ? "ok" : "unreachable", "postgres",
                         pg_ok ? "ok" : err, "version", devsys_version()));
}

void health_metrics(struct req *q, const struct route_args *a)
{
    (void)a;
    char *text = metrics_render();
    struct evkeyvalq *h = evhttp_request_get_output_headers(q->r);
    evhttp_add_header(h, "Content-Type", "text/plain; version=0.0.4");
    req_observe(q, 200);
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, text, strlen(text));
    free(text);
    evhttp_send_reply(q->r, 200, "OK", b);
    evbuffer_free(b);
    q->api->inflight--;
    req_free(q);
}

void health_check(struct req *q, const struct route_args *a)
{
    (void)a;
    pgc_query(q->api->pg, "SELECT 1", 0, NULL, health_done, q);
}
