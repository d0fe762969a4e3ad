/* http_monitors: the check and incident routes: create or replace a check,
 * list (state, last probe, uptime, latency), get (with its probe history,
 * keyset paged, and its incidents), delete, silence and unsilence, and the
 * incidents list. A check's rules are check_def.c's, its statements
 * common/checkdb.c's; the probes and transitions run in the check timer
 * (checker.c) and in PostgreSQL (migrations/015_checks.sql). */
#include "http_internal.h"

#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "check_def.h"
#include "checkdb.h"
#include "taskdb.h"

#define SILENCE_MAX_S (366 * 86400.0)

static int name_ok_or_400(struct req *q, const char *name)
{
    if (check_def_name_ok(name))
        return 1;
    reply_error(q, 400, "name: must be 1 to 64 characters of [A-Za-z0-9_.-]");
    return 0;
}

/* ------------------------------------------------------------ put, delete */

static void put_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct op *o = arg;
    if (!res || err[0]) {
        op_db_error(o, err);
        return;
    }
    if (PQntuples(res) == 0) {
        op_error(o, 409, "checks: the limit of %d checks is reached", CHECKS_MAX);
        return;
    }
    int created = strcmp(PQgetvalue(res, 0, taskdb_col(res, "created")), "t") == 0;
    json_t *doc = json_loads(PQgetvalue(res, 0, taskdb_col(res, "doc")), 0, NULL);
    req_audit_note(o->q, json_string_value(json_object_get(doc, "name")),
                   json_pack("{s:O,s:O}", "monitor", json_object_get(doc, "monitor"), "follow_up",
                             json_object_get(doc, "follow_up")));
    op_reply(o, created ? 201 : 200, doc ? doc : json_object());
}

void monitors_put(struct req *q, const struct route_args *a)
{
    (void)a;
    json_t *body = req_body_json(q);
    if (!body)
        return;
    char why[512];
    json_t *d = check_def_parse(body, why, sizeof why);
    json_decref(body);
    if (!d) {
        reply_field_error(q, why);
        return;
    }
    char *text = json_dumps(d, JSON_COMPACT);
    json_decref(d);
    checkdb_put(q->api->pg, text, "api", q->actor, put_done, op_new(q, NULL));
    free(text);
}

static void delete_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct op *o = arg;
    if (!op_have_row(o, res, err, "no check named %s", o->queue))
        return;
    int c_res = taskdb_col(res, "resolved");
    json_t *resolved = PQgetisnull(res, 0, c_res) ? json_null()
                                                  : json_integer(strtoll(PQgetvalue(res, 0, c_res), NULL, 10));
    req_audit_note(o->q, o->queue, json_pack("{s:O}", "incident_resolved", resolved));
    op_reply(o, 200, json_pack("{s:s,s:b,s:o}", "name", o->queue, "deleted", 1, "incident_resolved", resolved));
}

void monitors_delete(struct req *q, const struct route_args *a)
{
    if (!name_ok_or_400(q, a->name))
        return;
    struct op *o = op_new(q, a->name); /* o->queue holds the name (<= 64 bytes, checked) */
    checkdb_delete(q->api->pg, o->queue, delete_done, o);
}

/* ---------------------------------------------------------------- silence */

/* "2025-06-01T12:00:00Z" (or with +hh:mm / -hh:mm) as epoch seconds; -1 when
 * it is not one. */
static double iso_epoch(const char *s)
{
    struct tm tm = {0};
    const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!rest)
        return -1;
    double t = (double)timegm(&tm);
    if (strcmp(rest, "Z") == 0 || strcmp(rest, "+00:00") == 0)
        return t;
    int hh, mm;
    char sign, end;
    if (sscanf(rest, "%c%2d:%2d%c", &sign, &hh, &mm, &end) != 3 || (sign != '+' && sign != '-') || strlen(rest) != 6 ||
        hh > 23 || mm > 59)
        return -1;
    return t - (sign == '+' ? 1 : -1) * (hh * 3600.0 + mm * 60.0);
}

static void silence_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct op *o = arg;
    if (!op_have_row(o, res, err, "no check named %s", o->queue))
        return;
    int c_until = taskdb_col(res, "silenced_until");
    json_t *until = PQgetisnull(res, 0, c_until) ? json_null() : json_string(PQgetvalue(res, 0, c_until));
    req_audit_note(o->q, o->queue, json_pack("{s:O}", "silenced_until", until));
    json_decref(until);
    json_t *doc = json_loads(PQgetvalue(res, 0, taskdb_col(res, "doc")), 0, NULL);
    op_reply(o, 200, doc ? doc : json_object());
}

/* Body {"until": "<ISO 8601 time>"} or {"for_s": seconds}, with an optional
 * "reason". */
void monitors_silence(struct req *q, const struct route_args *a)
{
    if (!name_ok_or_400(q, a->name))
        return;
    json_t *body = req_body_json(q);
    if (!body)
        return;
    const json_t *until = json_object_get(body, "until"), *for_s = json_object_get(body, "for_s"),
                 *reason = json_object_get(body, "reason");
    const char *k;
    json_t *v;
    const char *why = NULL;
    json_object_foreach(body, k, v) if (strcmp(k, "until") && strcmp(k, "for_s") && strcmp(k, "reason")) why =
        "body: unknown field (until, for_s, reason)";
    double now = (double)time(NULL), t = -1;
    if (!json_is_object(body))
        why = "body: must be a JSON object {\"until\": \"<ISO 8601 time>\"} or {\"for_s\": seconds}";
    else if (!why && (!until) == (!for_s))
        why = "until: give either until (an ISO 8601 time like 2025-06-01T12:00:00Z) or for_s (seconds)";
    else if (!why && for_s)
        t = json_is_number(for_s) && json_number_value(for_s) > 0 && json_number_value(for_s) <= SILENCE_MAX_S
                ? now + json_number_value(for_s)
                : -1;
    else if (!why)
        t = json_is_string(until) ? iso_epoch(json_string_value(until)) : -1;
    if (!why && t < 0)
        why = for_s ? "for_s: must be a number of seconds above 0, at most 366 days"
                    : "until: must be an ISO 8601 time like 2025-06-01T12:00:00Z (or +02:00)";
    else if (!why && (t <= now || t > now + SILENCE_MAX_S))
        why = "until: must be in the future, at most 366 days ahead";
    else if (!why && reason && !(json_is_string(reason) && json_string_length(reason) <= 500))
        why = "reason: must be a string of at most 500 bytes";
    if (why) {
        json_decref(body);
        reply_error(q, 400, why);
        return;
    }
    char ts[32];
    snprintf(ts, sizeof ts, "%.3f", t);
    struct op *o = op_new(q, a->name);
    checkdb_silence(q->api->pg, o->queue, ts, json_string_value(reason), silence_done, o);
    json_decref(body);
}

void monitors_unsilence(struct req *q, const struct route_args *a)
{
    if (!name_ok_or_400(q, a->name))
        return;
    struct op *o = op_new(q, a->name);
    checkdb_silence(q->api->pg, o->queue, NULL, NULL, silence_done, o);
}

/* ------------------------------------------------------------------ reads */

static int id_cursor_ok(const char *s)
{
    return *s && strspn(s, "0123456789") == strlen(s) && strlen(s) < 19;
}

/* Replies {key: [docs], "next_after": the cursor column of the last row when
 * the page is full}. */
static void page_done(struct op *o, PGresult *res, const char *key, const char *cursor_col)
{
    json_t *list = json_array();
    int c_doc = taskdb_col(res, "doc"), c_cur = taskdb_col(res, cursor_col), n = PQntuples(res);
    for (int i = 0; i < n; i++) {
        json_t *d = json_loads(PQgetvalue(res, i, c_doc), 0, NULL);
        json_array_append_new(list, d ? d : json_null());
    }
    json_t *next = n > 0 && n == o->count ? json_string(PQgetvalue(res, n - 1, c_cur)) : json_null();
    op_reply(o, 200, json_pack("{s:o,s:o}", key, list, "next_after", next));
}

static void list_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct op *o = arg;
    if (!res || err[0]) {
        op_db_error(o, err);
        return;
    }
    page_done(o, res, "monitors", "name");
}

void monitors_list(struct req *q, const struct route_args *a)
{
    (void)a;
    struct op_page page;
    if (op_parse_page(q->query, 100, CHECK_LIST_MAX, check_def_name_ok, &page) < 0) {
        reply_error(q, 400, page.why);
        return;
    }
    struct op *o = op_new(q, NULL);
    o->count = strtol(page.limit, NULL, 10);
    checkdb_list(q->api->pg, page.limit, page.after[0] ? page.after : NULL, scope_sql_queues(q), scope_sql_apps(q),
                 list_done, o);
}

static void get_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct op *o = arg;
    if (!op_have_row(o, res, err, "no check named %s", o->queue))
        return;
    json_t *doc = json_loads(PQgetvalue(res, 0, taskdb_col(res, "doc")), 0, NULL);
    if (!doc)
        doc = json_object();
    json_t *probes = json_object_get(doc, "probes");
    size_t n = json_array_size(probes);
    json_object_set_new(doc, "next_after",
                        n && (long)n == o->count
                            ? json_sprintf("%" JSON_INTEGER_FORMAT,
                                           json_integer_value(json_object_get(json_array_get(probes, n - 1), "id")))
                            : json_null());
    op_reply(o, 200, doc);
}

/* ?limit= probes (50, at most 1000), ?after= the next_after of the page before. */
void monitors_get(struct req *q, const struct route_args *a)
{
    if (!name_ok_or_400(q, a->name))
        return;
    struct op_page page;
    if (op_parse_page(q->query, CHECK_HISTORY_DEFAULT, CHECK_HISTORY_MAX, id_cursor_ok, &page) < 0) {
        reply_error(q, 400, page.why);
        return;
    }
    struct op *o = op_new(q, a->name);
    o->count = strtol(page.limit, NULL, 10);
    checkdb_get(q->api->pg, o->queue, page.limit, page.after[0] ? page.after : NULL, get_done, o);
}

static void incidents_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct op *o = arg;
    if (!res || err[0]) {
        op_db_error(o, err);
        return;
    }
    page_done(o, res, "incidents", "id");
}

/* ?state=open|resolved, ?check=NAME, ?limit= (100, at most 1000), ?after=. */
void incidents_list(struct req *q, const struct route_args *a)
{
    (void)a;
    struct op_page page;
    if (op_parse_page(q->query, 100, CHECK_LIST_MAX, id_cursor_ok, &page) < 0) {
        reply_error(q, 400, page.why);
        return;
    }
    struct evkeyvalq args;
    TAILQ_INIT(&args);
    if (q->query)
        evhttp_parse_query_str(q->query, &args);
    const char *state = evhttp_find_header(&args, "state"), *check = evhttp_find_header(&args, "check");
    const char *why = state && strcmp(state, "open") && strcmp(state, "resolved")
                          ? "state: must be open or resolved"
                      : check && !check_def_name_ok(check) ? "check: must be 1 to 64 characters of [A-Za-z0-9_.-]"
                                                           : NULL;
    if (why) {
        evhttp_clear_headers(&args);
        reply_error(q, 400, why);
        return;
    }
    struct op *o = op_new(q, NULL);
    o->count = strtol(page.limit, NULL, 10);
    checkdb_incidents(q->api->pg, state, check, page.limit, page.after[0] ? page.after : NULL, scope_sql_queues(q),
                      scope_sql_apps(q), incidents_done, o);
    evhttp_clear_headers(&args);
}
