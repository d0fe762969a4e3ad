/* http_audit: GET /v1/audit (admin): the audit trail, newest first, filtered
 * by actor, action, target and since (ISO 8601), paged by the row id
 * (?after=ID from "next"). No route changes or deletes it; retention.c drops
 * rows older than DEVSYS_RETENTION_AUDIT_S. */
#include "http_internal.h"

#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AUDIT_PAGE_DEFAULT 100
#define AUDIT_PAGE_MAX 1000

static int after_ok(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= 18 && strspn(s, "0123456789") == n;
}

static void listed(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct op *o = arg;
    if (err[0] && (strstr(err, "timestamp") || strstr(err, "time zone") || strstr(err, "out of range"))) {
        op_error(o, 400, "since: not a time PostgreSQL reads (%.200s)", err);
        return;
    }
    if (!op_have_row(o, res, err, "no rows"))
        return;
    json_t *rows = json_loads(PQgetvalue(res, 0, 0), 0, NULL);
    size_t n = json_array_size(rows);
    json_t *next = json_null();
    if (n > 0 && (long)n >= atol(o->arg))
        next = json_sprintf("%lld", (long long)json_integer_value(json_object_get(json_array_get(rows, n - 1), "id")));
    op_reply(o, 200, json_pack("{s:o,s:o}", "entries", rows, "next", next));
}

void audit_list(struct req *q, const struct route_args *a)
{
    (void)a;
    struct op_page pg;
    if (op_parse_page(q->query, AUDIT_PAGE_DEFAULT, AUDIT_PAGE_MAX, after_ok, &pg) != 0) {
        reply_error(q, 400, pg.why);
        return;
    }
    struct evkeyvalq qs = {0};
    if (q->query)
        evhttp_parse_query_str(q->query, &qs);
    const char *p[6] = {evhttp_find_header(&qs, "actor"), evhttp_find_header(&qs, "action"),
                        evhttp_find_header(&qs, "target"), evhttp_find_header(&qs, "since"),
                        pg.after[0] ? pg.after : NULL, pg.limit};
    struct op *o = op_new(q, NULL);
    snprintf(o->arg, sizeof o->arg, "%s", pg.limit);
    /* since is cast by PostgreSQL: its characters are checked here, its value there (400 above) */
    if (p[3] && strspn(p[3], "0123456789-:TZ.+ ") != strlen(p[3])) {
        evhttp_clear_headers(&qs);
        op_error(o, 400, "since: must be an ISO 8601 time such as 2026-01-31T12:00:00Z");
        return;
    }
    pgc_query(q->api->pg,
              "SELECT coalesce(json_agg(json_build_object('id', id, 'at', at, 'actor', actor, 'role', role,"
              " 'action', action, 'target', target, 'remote', remote, 'request_id', request_id,"
              " 'outcome', outcome, 'detail', detail) ORDER BY id DESC), '[]')::text FROM"
              " (SELECT * FROM audit_log WHERE ($1::text IS NULL OR actor = $1)"
              " AND ($2::text IS NULL OR action = $2) AND ($3::text IS NULL OR target = $3)"
              " AND ($4::timestamptz IS NULL OR at >= $4::timestamptz) AND ($5::bigint IS NULL OR id < $5::bigint)"
              " ORDER BY id DESC LIMIT $6::int) a",
              6, p, listed, o);
    evhttp_clear_headers(&qs);
}
