/* http_ui: the web console at /ui/ — its embedded files (ui_assets.h) and
 * the routes that open, read and close a console session (ui_session.h). A
 * session is opened with a bearer token and then stands for it on every /v1
 * route, with the CSRF check of route_dispatch on each change. */
#include "http_internal.h"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ui_assets.h"

/* The console loads nothing from elsewhere and runs no inline script. */
#define UI_CSP                                                                                               \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " \
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

/* /ui and /ui/<name>: the file of that name; a name without a '.' is a page
 * of the console (its pages are #/... fragments), so it gets index.html. */
void ui_asset(struct req *q, const struct route_args *a)
{
    const char *name = a->name[0] && strchr(a->name, '.') ? a->name : "index.html";
    for (int i = 0; i < ui_assets_count; i++) {
        if (strcmp(ui_assets[i].name, name) != 0)
            continue;
        struct evkeyvalq *h = evhttp_request_get_output_headers(q->r);
        evhttp_add_header(h, "Content-Security-Policy", UI_CSP);
        evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
        evhttp_add_header(h, "X-Frame-Options", "DENY");
        evhttp_add_header(h, "Referrer-Policy", "no-referrer");
        evhttp_add_header(h, "Cache-Control", "no-cache");
        reply_typed(q, 200, ui_assets[i].type, (const char *)ui_assets[i].data, ui_assets[i].len);
        return;
    }
    reply_error(q, 404, "no such file in the web console");
}

/* The caller's session as JSON: who, role, scopes, the CSRF token (a session
 * only), its expiry, and "can": the audit actions of the mutating routes its
 * role reaches (the console shows only those buttons; the API still decides). */
static json_t *session_json(struct req *q, const char *csrf, long long expires)
{
    json_t *can = json_array();
    for (size_t i = 0; i < routes_count; i++) {
        const struct route *r = &routes[i];
        char buf[160];
        if (r->method == EVHTTP_REQ_GET || r->method == EVHTTP_REQ_HEAD || r->min_role == ROLE_NONE ||
            q->role < r->min_role)
            continue;
        const char *act = route_action_of(r, buf, sizeof buf);
        int seen = 0;
        for (size_t j = 0; j < json_array_size(can) && !seen; j++)
            seen = strcmp(json_string_value(json_array_get(can, j)), act) == 0;
        if (!seen)
            json_array_append_new(can, json_string(act));
    }
    return json_pack("{s:s,s:s,s:o,s:o,s:o,s:o,s:o}", "actor", q->actor, "role", auth_role_name(q->role),
                     "queues", q->queues ? json_string(q->queues) : json_null(),
                     "apps", q->apps ? json_string(q->apps) : json_null(),
                     "csrf", csrf ? json_string(csrf) : json_null(),
                     "expires_at", expires ? json_integer(expires) : json_null(), "can", can);
}

static void set_cookie(struct req *q, const char *value, long max_age)
{
    const char *proto = evhttp_find_header(evhttp_request_get_input_headers(q->r), "X-Forwarded-Proto");
    int secure = uisess_secure(q->api->sessions) || (proto && strcmp(proto, "https") == 0);
    char c[UISESS_VALUE_MAX + 160];
    snprintf(c, sizeof c, UISESS_COOKIE "=%s; Path=/; Max-Age=%ld; HttpOnly; SameSite=Strict%s", value, max_age,
             secure ? "; Secure" : "");
    evhttp_add_header(evhttp_request_get_output_headers(q->r), "Set-Cookie", c);
}

void session_create(struct req *q, const struct route_args *a)
{
    (void)a;
    const char *authz = evhttp_find_header(evhttp_request_get_input_headers(q->r), "Authorization");
    if (q->session || !authz || strncmp(authz, "Bearer ", 7) != 0) {
        reply_error(q, 400, "sign in with the token in \"Authorization: Bearer <token>\"");
        return;
    }
    char csrf[UISESS_CSRF_LEN + 1];
    long long expires = 0;
    char *value = uisess_seal(q->api->sessions, authz + 7, csrf, &expires);
    if (!value || strlen(value) >= UISESS_VALUE_MAX) {
        free(value);
        reply_error(q, 400, "token: too long for a console session");
        return;
    }
    set_cookie(q, value, uisess_ttl_s(q->api->sessions));
    free(value);
    req_audit_note(q, q->actor, NULL);
    reply_json(q, 201, session_json(q, csrf, expires));
}

void session_get(struct req *q, const struct route_args *a)
{
    (void)a;
    reply_json(q, 200, session_json(q, q->session ? q->csrf : NULL, q->session_expires));
}

void session_delete(struct req *q, const struct route_args *a)
{
    (void)a;
    const char *cookie = evhttp_find_header(evhttp_request_get_input_headers(q->r), "Cookie");
    char value[UISESS_VALUE_MAX];
    if (q->session && cookie && uisess_cookie_value(cookie, value, sizeof value) == 0)
        uisess_revoke(q->api->sessions, value);
    set_cookie(q, "", 0);
    req_audit_note(q, q->actor, NULL);
    reply_json(q, 200, json_pack("{s:b}", "signed_out", q->session));
}

/* ---------------------------------------------------------------- overview */

/* One statement per refresh of the console's overview: tasks submitted per
 * minute over the last hour with how many of them succeeded or failed so far
 * (tasks_created_at_id), what is live per queue and state with its oldest
 * (tasks_live), agents holding a running task, dead letters per queue
 * (tasks_dlq). Every figure counts only the tasks of the token's queues ($1,
 * NULL: all). */
#define IN_QUEUES "($1::text[] IS NULL OR queue = ANY ($1::text[]))"
#define OVERVIEW_SQL                                                                                               \
    "SELECT json_build_object('at', now(),"                                                                        \
    " 'minutes', coalesce((SELECT json_agg(json_build_object('t', m, 'submitted', s, 'succeeded', ok,"             \
    "   'failed', bad) ORDER BY m) FROM (SELECT date_trunc('minute', created_at) m, count(*) s,"                   \
    "   count(*) FILTER (WHERE state = 'succeeded') ok, count(*) FILTER (WHERE state IN ('failed', 'dead')) bad"   \
    "   FROM tasks WHERE created_at > now() - interval '1 hour' AND " IN_QUEUES " GROUP BY 1) b), '[]'),"          \
    " 'live', coalesce((SELECT json_agg(json_build_object('queue', queue, 'state', state, 'count', n,"             \
    "   'oldest', oldest) ORDER BY queue, state) FROM (SELECT queue, state, count(*) n, min(created_at) oldest"    \
    "   FROM tasks WHERE state IN ('queued', 'running', 'retrying') AND " IN_QUEUES " GROUP BY queue, state) l),"  \
    "   '[]'),"                                                                                                    \
    " 'agents', (SELECT count(DISTINCT lease_owner) FROM tasks WHERE state = 'running'"                            \
    "   AND state IN ('queued', 'running', 'retrying') AND " IN_QUEUES "),"                                        \
    " 'dead', coalesce((SELECT json_object_agg(queue, n) FROM (SELECT queue, count(*) n FROM tasks"                \
    "   WHERE state = 'dead' AND dlq_purged_at IS NULL AND " IN_QUEUES " GROUP BY queue) d), '{}'))::text"

static void overview_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct req *q = arg;
    if (err[0]) {
        reply_db_unavailable(q, err, NULL);
        return;
    }
    const char *v = PQgetvalue(res, 0, 0);
    reply_typed(q, 200, "application/json", v, strlen(v));
}

void overview_get(struct req *q, const struct route_args *a)
{
    (void)a;
    const char *p[1] = {scope_sql_queues(q)};
    pgc_query(q->api->pg, OVERVIEW_SQL, 1, p, overview_done, q);
}
