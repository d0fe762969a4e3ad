/* http_dlq_bulk: dead-letter actions over a filter (like Oban Web's bulk
 * actions): the filter of ?error=&kind=&since=&limit= that "replay all"
 * (http_replay.c) and a filtered purge share, the groups by error a console
 * picks from (GET /v1/dlq/{queue}/groups), and the filtered purge itself
 * (DELETE /v1/dlq/{queue}?...). PostgreSQL picks, Redis follows. */
#include "http_internal.h"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "queue.h"
#include "taskdb.h"
#include "xalloc.h"

#define DLQ_ERROR_MAX 4096  /* bytes of an error filter (last_error is matched exactly) */
#define DLQ_GROUPS_MAX 100  /* groups answered */

struct dlq_filter *dlq_filter_of(struct req *q)
{
    char why[160];
    struct dlq_filter *f = dlq_filter_parse(q->query, why, sizeof why);
    if (!f)
        reply_error(q, 400, why);
    return f;
}

void dlq_filter_free(struct dlq_filter *f)
{
    if (!f)
        return;
    free(f->error);
    free(f);
}

static int kind_ok(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= 64 && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

struct dlq_filter *dlq_filter_parse(const char *query, char *why, size_t len)
{
    struct evkeyvalq args;
    TAILQ_INIT(&args);
    why[0] = '\0';
    if (query && evhttp_parse_query_str(query, &args) < 0) {
        snprintf(why, len, "query string does not parse");
        return NULL;
    }
    struct dlq_filter *f = xcalloc(1, sizeof *f);
    f->limit = DLQ_BULK_DEFAULT;
    struct evkeyval *kv;
    TAILQ_FOREACH(kv, &args, next) {
        const char *k = kv->key, *v = kv->value;
        if (strcmp(k, "error") == 0) {
            if (!v[0] || strlen(v) > DLQ_ERROR_MAX) {
                snprintf(why, len, "error: must be 1 to %d bytes (a group's error, matched exactly)", DLQ_ERROR_MAX);
                break;
            }
            free(f->error);
            f->error = xstrdup(v);
            f->narrowed = 1;
        } else if (strcmp(k, "kind") == 0) {
            if (!kind_ok(v)) {
                snprintf(why, len, "kind: must be 1 to 64 characters of [A-Za-z0-9_.-]");
                break;
            }
            snprintf(f->kind, sizeof f->kind, "%s", v);
            f->narrowed = 1;
        } else if (strcmp(k, "since") == 0) {
            long long us;
            if (!time_parse(v, &us)) {
                snprintf(why, len, "since: must be a time: RFC 3339 (2026-12-02T05:30:00Z), a date (2026-12-02)"
                                   " or epoch seconds");
                break;
            }
            snprintf(f->since_us, sizeof f->since_us, "%lld", us);
            f->narrowed = 1;
        } else if (strcmp(k, "limit") == 0) {
            char *end;
            f->limit = strtol(v, &end, 10);
            if (!v[0] || *end || f->limit < 1 || f->limit > DLQ_BULK_MAX) {
                snprintf(why, len, "limit: must be an integer from 1 to %d", DLQ_BULK_MAX);
                break;
            }
            f->limited = 1;
        } else {
            snprintf(why, len, "%.64s: unknown parameter (a dead-letter filter takes error, kind, since, limit)", k);
            break;
        }
    }
    evhttp_clear_headers(&args);
    if (why[0]) {
        dlq_filter_free(f);
        return NULL;
    }
    f->db.error = f->error;
    f->db.kind = f->kind[0] ? f->kind : NULL;
    f->db.since_us = f->since_us[0] ? f->since_us : NULL;
    return f;
}

/* The filter as the answer and the audit row show it. */
json_t *dlq_filter_json(const struct dlq_filter *f)
{
    json_t *j = json_pack("{s:s?,s:s?,s:I}", "error", f->error, "kind", f->db.kind, "limit", (json_int_t)f->limit);
    if (f->db.since_us)
        json_object_set_new(j, "since_us", json_integer(strtoll(f->db.since_us, NULL, 10)));
    return j;
}

/* ------------------------------------------------------------ groups */

static void groups_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct op *o = arg;
    if (!op_have_row(o, res, err, "no groups"))
        return;
    json_t *groups = json_loads(PQgetvalue(res, 0, taskdb_col(res, "groups")), 0, NULL);
    op_reply(o, 200, json_pack("{s:s,s:o,s:b}", "queue", o->queue, "groups", groups ? groups : json_array(),
                               "truncated", json_array_size(groups) >= DLQ_GROUPS_MAX));
}

/* GET /v1/dlq/{queue}/groups: the queue's dead letters by (error, kind) from
 * PostgreSQL, so a group covers every letter, not the page a list shows. */
void dlq_groups(struct req *q, const struct route_args *a)
{
    struct dlq_filter *f = dlq_filter_of(q);
    if (!f)
        return;
    struct op *o = op_new(q, a->queue);
    o->filter = f;
    taskdb_dead_groups(q->api->pg, o->queue, &f->db, DLQ_GROUPS_MAX, groups_done, o);
}

/* ------------------------------------------------------ filtered purge */

static void purge_filtered_xdel(void *arg, const char *err, long long removed)
{
    struct op *o = arg;
    if (err[0]) {
        op_error(o, 503, "redis: %s (%ld tasks are marked purged in PostgreSQL; their letters stay in Redis)",
                 op_redis_why(err), o->count);
        return;
    }
    req_audit_note(o->q, o->queue,
                   json_pack("{s:o,s:I,s:I}", "filter", dlq_filter_json(o->filter), "tasks", (json_int_t)o->count,
                             "entries", (json_int_t)removed));
    op_reply(o, 200, json_pack("{s:s,s:o,s:I,s:I,s:b}", "queue", o->queue, "filter", dlq_filter_json(o->filter),
                               "purged", (json_int_t)o->count, "entries_removed", (json_int_t)removed, "more",
                               o->more));
}

static void purge_filtered_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct op *o = arg;
    if (!res || err[0]) {
        op_db_error(o, err);
        return;
    }
    int rows = PQntuples(res), c_entry = taskdb_col(res, "dlq_entry"), c_more = taskdb_col(res, "more");
    o->count = rows;
    o->more = rows > 0 && strcmp(PQgetvalue(res, 0, c_more), "t") == 0;
    const char **ids = xmalloc((size_t)(rows + 1) * sizeof *ids);
    size_t n = 0;
    for (int i = 0; i < rows; i++)
        if (!PQgetisnull(res, i, c_entry))
            ids[n++] = PQgetvalue(res, i, c_entry);
    if (n == 0)
        purge_filtered_xdel(o, "", 0);
    else if (queue_dlq_delete_many(o->q->api->rc, o->q->api->prefix, o->queue, ids, n, purge_filtered_xdel, o) != 0)
        purge_filtered_xdel(o, QUEUE_DISCONNECTED, 0);
    free(ids);
}

/* DELETE /v1/dlq/{queue} with a filter or a limit: up to limit matching
 * dead letters, PostgreSQL first (as a purge of one), then one XDEL. */
void dlq_purge_filtered(struct req *q, const char *queue, struct dlq_filter *f)
{
    struct op *o = op_new(q, queue);
    o->filter = f;
    taskdb_purge_filtered(q->api->pg, o->queue, &f->db, f->limit, purge_filtered_done, o);
}
