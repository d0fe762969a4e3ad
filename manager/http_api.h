/* http_api: the manager's HTTP API (/v1, /healthz, /metrics) on evhttp.
 * Every handler is asynchronous: no blocking call on a request path. */
#ifndef DEVSYS_HTTP_API_H
#define DEVSYS_HTTP_API_H

#include <stddef.h>

#include "http_guard.h"
#include "pgc.h"
#include "rc.h"

struct event_base;
typedef struct api api_t;

struct api_config {
    const char *listen;       /* host:port */
    const char *prefix;       /* Redis key prefix */
    const char *admin_token;  /* may be NULL */
    size_t max_body;          /* bytes; larger bodies get 413 */
    struct guard_limits edge; /* connection cap, header cap, timeouts (max_body is copied in) */
    long auth_cache_ms;       /* a valid token's answer is reused this long (revocation delay) */
    double auth_lookups_per_s; /* PostgreSQL lookups/s for tokens not known valid */
    const char *artifact_dir;  /* the artifact store's directory */
    size_t artifact_max;       /* bytes of one artifact; PUT /v1/artifacts/ bodies only */
    const char *search_db_url; /* task searches get a connection of their own; NULL: they share pg */
    long search_timeout_ms;   /* their statement_timeout */
    struct secretbox *secrets; /* keys of secrets at rest (kept by reference, may be NULL) */
    struct qmetrics *qmetrics; /* told the queues submits publish to (queue_metrics.h); may be NULL */
};

/* Binds and starts serving. Returns NULL with a message in err. */
api_t *api_new(struct event_base *base, rc_t *rc, pgc_t *pg, const struct api_config *cfg, char *err,
               size_t errlen);
/* Stops accepting connections; requests in flight go on. */
void api_stop_accepting(api_t *api);
/* Requests accepted and not yet answered. */
int api_inflight(const api_t *api);
void api_free(api_t *api);

#endif
