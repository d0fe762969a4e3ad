/* http_notify: the notification routes: destinations (create or replace,
 * list, delete) and the events each destination sees with their state
 * (pending, queued in a delivery, sent, dead). Statements in common/notifydb.c,
 * a destination's rules in notify_dest.c. */
#include "http_internal.h"

#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "kind.h"
#include "notify_dest.h"
#include "notifydb.h"
#include "taskdb.h"

static void dest_put_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct op *o = arg;
    if (!op_have_row(o, res, err, "not recorded"))
        return;
    int created = strcmp(PQgetvalue(res, 0, taskdb_col(res, "created")), "t") == 0;
    json_t *dest = json_loads(PQgetvalue(res, 0, taskdb_col(res, "destination")), 0, NULL);
    req_audit_note(o->q, json_string_value(json_object_get(dest, "name")),
               json_incref(dest));
    op_reply(o, created ? 201 : 200, dest);
}

void notify_dest_put(struct req *q, const struct route_args *a)
{
    (void)a;
    json_t *body = req_body_json(q);
    if (!body)
        return;
    char why[256];
    json_t *d = notify_dest_parse(body, why, sizeof why);
    json_decref(body);
    if (!d) {
        reply_error(q, 400, why);
        return;
    }
    char *text = json_dumps(d, JSON_COMPACT);
    json_decref(d);
    notifydb_dest_put(q->api->pg, text, dest_put_done, op_new(q, NULL));
    free(text);
}

static void dest_list_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct op *o = arg;
    if (!res || err[0]) {
        op_db_error(o, err);
        return;
    }
    json_t *list = json_array();
    int c = taskdb_col(res, "destination");
    for (int i = 0; i < PQntuples(res); i++)
        json_array_append_new(list, json_loads(PQgetvalue(res, i, c), 0, NULL));
    op_reply(o, 200, json_pack("{s:o}", "destinations", list));
}

void notify_dest_list(struct req *q, const struct route_args *a)
{
    (void)a;
    notifydb_dest_list(q->api->pg, dest_list_done, op_new(q, NULL));
}

static void dest_delete_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct op *o = arg;
    if (!op_have_row(o, res, err, "no destination named %s", o->queue))
        return;
    long pending = strtol(PQgetvalue(res, 0, taskdb_col(res, "pending")), NULL, 10);
    req_audit_note(o->q, o->queue,
               json_pack("{s:I}", "pending_dropped", (json_int_t)pending));
    op_reply(o, 200, json_pack("{s:s,s:b,s:I}", "name", o->queue, "deleted", 1, "pending_dropped", (json_int_t)pending));
}

void notify_dest_delete(struct req *q, const struct route_args *a)
{
    json_t *n = json_string(a->name);
    int ok = kind_notify_name_ok(n, 64);
    json_decref(n);
    if (!ok) {
        reply_error(q, 400, "name: must be 1 to 64 characters of [A-Za-z0-9_.-]");
        return;
    }
    struct op *o = op_new(q, a->name); /* o->queue holds the name (<= 64 bytes, checked) */
    notifydb_dest_delete(q->api->pg, o->queue, dest_delete_done, o);
}

static int event_cursor_ok(const char *s)
{
    return *s && strspn(s, "0123456789") == strlen(s) && strlen(s) < 19;
}

static void events_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct op *o = arg;
    if (!op_have_row(o, res, err, "no answer"))
        return;
    json_t *j = json_loads(PQgetvalue(res, 0, taskdb_col(res, "answer")), 0, NULL);
    json_t *events = json_object_get(j, "events");
    size_t n = json_array_size(events);
    json_object_set_new(j, "next_after",
                        n && (long)n == o->count ? json_sprintf("%" JSON_INTEGER_FORMAT,
                                                                json_integer_value(json_object_get(
                                                                    json_array_get(events, n - 1), "event_id")))
                                                 : json_null());
    op_reply(o, 200, j);
}

void notify_events_list(struct req *q, const struct route_args *a)
{
    (void)a;
    struct op_page page;
    if (op_parse_page(q->query, 100, 1000, event_cursor_ok, &page) < 0) {
        reply_error(q, 400, page.why);
        return;
    }
    struct evkeyvalq args;
    TAILQ_INIT(&args);
    if (q->query)
        evhttp_parse_query_str(q->query, &args);
    const char *dest = evhttp_find_header(&args, "destination"), *state = evhttp_find_header(&args, "state");
    json_t *dj = dest ? json_string(dest) : NULL;
    int dest_ok = !dest || kind_notify_name_ok(dj, 64);
    json_decref(dj);
    const char *why = !dest_ok ? "destination: must be 1 to 64 characters of [A-Za-z0-9_.-]"
                      : state && !notify_dest_one_of((const char *const[]){"pending", "queued", "sent", "dead", NULL}, state)
                          ? "state: must be one of pending, queued, sent, dead"
                          : NULL;
    if (why) {
        evhttp_clear_headers(&args);
        reply_error(q, 400, why);
        return;
    }
    struct op *o = op_new(q, NULL);
    o->count = strtol(page.limit, NULL, 10);
    notifydb_events(q->api->pg, dest, state, page.after[0] ? page.after : NULL, page.limit, scope_sql_queues(q),
                    scope_sql_apps(q), events_done, o);
    evhttp_clear_headers(&args);
}
