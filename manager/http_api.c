/* http_api: the manager's HTTP API object (see http_api.h) and the entry of
 * every request: the guard's verdict, the token check, then the route. */
#include "http_api.h"
#include "http_internal.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "artifact_gc.h"
#include "artifact_store.h"
#include "auth.h"
#include "metrics.h"
#include "xalloc.h"

/* ---------------------------------------------------------------- requests */

static void on_authenticated(const struct auth_result *res, void *arg)
{
    struct req *q = arg;
    q->role = res->role;
    snprintf(q->actor, sizeof q->actor, "%s", res->actor);
    q->queues = res->queues ? xstrdup(res->queues) : NULL;
    q->apps = res->apps ? xstrdup(res->apps) : NULL;
    q->bootstrap = res->bootstrap;
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
    route_dispatch(q);
}

/* The peer's address, and the request id: the client's X-Request-Id when it
 * is 1..64 of [A-Za-z0-9._-], else 16 random hex digits. */
static void request_identify(struct req *q)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(q->r);
    char *addr = NULL;
    ev_uint16_t port = 0;
    if (evcon)
        evhttp_connection_get_peer(evcon, &addr, &port);
    snprintf(q->remote, sizeof q->remote, "%s", addr ? addr : "");
    const char *id = evhttp_find_header(evhttp_request_get_input_headers(q->r), "X-Request-Id");
    size_t n = id ? strlen(id) : 0;
    if (n >= 1 && n <= 64 && strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n) {
        memcpy(q->request_id, id, n + 1);
        return;
    }
    unsigned char raw[8];
    randombytes_buf(raw, sizeof raw);
    for (int i = 0; i < 8; i++)
        snprintf(q->request_id + 2 * i, 3, "%02x", raw[i]);
}

static void on_request(struct evhttp_request *r, void *arg)
{
    api_t *api = arg;
    struct req *q = xcalloc(1, sizeof *q);
    q->api = api;
    q->r = r;
    q->method = evhttp_request_get_command(r);
    api->inflight++;
    q->t0 = metric_now();
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
    snprintf(q->path, sizeof q->path, "%s", path && *path ? path : "/");
    q->query = query ? xstrdup(query) : NULL;
    size_t plen = strlen(q->path);
    if (plen > 1 && q->path[plen - 1] == '/')
        q->path[plen - 1] = '\0';
    request_identify(q);
    const struct guard_verdict *v = guard_request(api->guard, r);
    if (v) { /* refused by the guard before its body was read */
        snprintf(q->path, sizeof q->path, "%s", v->path[0] ? v->path : "/");
        reply_refused(q, v->status, v->reason, v->message);
        return;
    }

    if (route_is_public(q->path)) {
        route_dispatch(q);
        return;
    }
    struct evkeyvalq *in = evhttp_request_get_input_headers(r);
    const char *authz = evhttp_find_header(in, "Authorization");
    const char *cookie = evhttp_find_header(in, "Cookie");
    char value[UISESS_VALUE_MAX];
    struct uisess_open so;
    if (!authz && cookie && uisess_cookie_value(cookie, value, sizeof value) == 0 &&
        uisess_open(api->sessions, value, &so) == 0) {
        /* a console session: its token, and a mutating call needs its CSRF token */
        const char *csrf = evhttp_find_header(in, "X-CSRF-Token");
        q->session = 1;
        q->csrf_ok = csrf && uisess_equal(csrf, so.csrf);
        memcpy(q->csrf, so.csrf, sizeof q->csrf);
        q->session_expires = so.expires;
        authz = so.bearer;
    }
    auth_check(api->auth, authz, on_authenticated, q);
}

api_t *api_new(struct event_base *base, rc_t *rc, pgc_t *pg, const struct api_config *cfg, char *err,
               size_t errlen)
{
    char host[256];
    const char *colon = strrchr(cfg->listen, ':');
    char *end = NULL;
    errno = 0;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || end == colon + 1 || *end || errno || port < 0 || port > 65535 ||
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
    if (cfg->search_db_url) {
        /* A search runs one at a time on its own connection, bounded by
         * statement_timeout, so a broad one holds neither the other
         * requests' pipeline nor more than one backend. */
        char opts[64];
        snprintf(opts, sizeof opts, "-c statement_timeout=%ld", cfg->search_timeout_ms);
        api->pg_search = pgc_new_opts(base, cfg->search_db_url, "devsys-manager-search", opts);
        if (api->pg_search)
            pgc_set_timeout(api->pg_search, (int)cfg->search_timeout_ms + 2000);
        api->search_timeout_ms = cfg->search_timeout_ms;
    }
    struct auth_config authc = {cfg->admin_token, cfg->auth_cache_ms, cfg->auth_lookups_per_s};
    api->auth = auth_new(pg, &authc);
    api->policy = policy_new();
    api->secrets = cfg->secrets;
    api->qmetrics = cfg->qmetrics;
    api->sessions = uisess_new(err, errlen);
    if (!api->sessions) {
        api_free(api);
        return NULL;
    }
    api->http = evhttp_new(base);
    /* libevent answers 413 itself past this; our own check gives JSON below it */
    api->artifact_max = cfg->artifact_max;
    /* evhttp's bound is one for all routes: the larger one; the guard holds
     * every other route to max_body before a byte of the body is read. */
    size_t evhttp_max = cfg->max_body > cfg->artifact_max ? cfg->max_body : cfg->artifact_max;
    evhttp_set_max_body_size(api->http, (ev_ssize_t)evhttp_max + 1);
    evhttp_set_allowed_methods(api->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH |
                                              EVHTTP_REQ_PUT | EVHTTP_REQ_HEAD);
    evhttp_set_gencb(api->http, on_request, api);
    struct guard_limits lim = cfg->edge;
    lim.max_body = cfg->max_body;
    lim.max_artifact_body = cfg->artifact_max;
    api->store = astore_new(base, cfg->artifact_dir ? cfg->artifact_dir : astore_dir_from_env(), err, errlen);
    if (!api->store) {
        api_free(api);
        return NULL;
    }
    api->agc = agc_new(base, pg, api->store);
    api->guard = guard_new(base, api->http, api->auth, &lim, route_public_paths(), host, (unsigned)port, err, errlen);
    if (!api->guard) {
        api_free(api);
        return NULL;
    }
    guard_set_sessions(api->guard, api->sessions);
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
    agc_free(api->agc);
    astore_free(api->store);
    pgc_free(api->pg_search);
    policy_free(api->policy);
    uisess_free(api->sessions);
    free(api->prefix);
    free(api);
}
