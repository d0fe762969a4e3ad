/* http_schedules: the schedule routes: create (the cron or interval, zone
 * and spec validated here, the first tick computed), list, get (with its
 * next runs and recent ticks), pause, resume (from now: the paused ticks are
 * not caught up) and delete. The ticks themselves are scheduler.c's. */
#include "http_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cron.h"
#include "scheduledb.h"
#include "uuid.h"
#include "xalloc.h"

#define NEXT_RUNS_SHOWN 5

/* One request in progress. */
struct sreq {
    struct req *q;
    char id[37];
    char key[SCHEDULE_NAME_MAX + 40]; /* the {id} of the path: an id or a name */
    json_t *doc;                      /* create: the answer, missing its id */
};

static struct sreq *sreq_new(struct req *q, const char *key)
{
    struct sreq *r = xcalloc(1, sizeof *r);
    r->q = q;
    snprintf(r->key, sizeof r->key, "%s", key ? key : "");
    return r;
}

static void sreq_free(struct sreq *r)
{
    json_decref(r->doc);
    free(r);
}

static json_t *iso_time(time_t t)
{
    if (t < 0)
        return json_null();
    struct tm tm;
    char buf[32];
    gmtime_r(&t, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(buf);
}

/* The next NEXT_RUNS_SHOWN ticks of c after now. */
static json_t *next_runs(const cron_t *c, time_t now)
{
    json_t *a = json_array();
    time_t t = now;
    for (int i = 0; i < NEXT_RUNS_SHOWN && (t = cron_next(c, t)) >= 0; i++)
        json_array_append_new(a, iso_time(t));
    return a;
}

static int db_failed(struct sreq *r, const PGresult *res, const char *err)
{
    if (res && !err[0])
        return 0;
    reply_db_unavailable(r->q, err, NULL);
    sreq_free(r);
    return 1;
}

/* ----------------------------------------------------------------- create */

/* Checks the body of a create; fills the fields. Returns the parsed
 * schedule, or NULL with the 400's message in err. */
static cron_t *check_body(json_t *body, const char **name, char *expr, size_t exprlen, const char **tz,
                          const char **catch_up, int *paused, json_t **spec, char *err, size_t errlen)
{
    static const char *const known[] = {"name", "cron", "every", "tz", "spec", "catch_up", "paused", NULL};
    if (!json_is_object(body)) {
        snprintf(err, errlen, "body: must be a JSON object {name, cron or every, tz, spec, catch_up}");
        return NULL;
    }
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v) {
        int ok = 0;
        for (int i = 0; known[i]; i++)
            ok |= strcmp(k, known[i]) == 0;
        if (!ok) {
            snprintf(err, errlen, "%.64s: unknown field (name, cron, every, tz, spec, catch_up, paused)", k);
            return NULL;
        }
    }
    json_t *jn = json_object_get(body, "name"), *jc = json_object_get(body, "cron"),
           *je = json_object_get(body, "every"), *jt = json_object_get(body, "tz"),
           *ju = json_object_get(body, "catch_up"), *jp = json_object_get(body, "paused");
    *name = json_string_value(jn);
    size_t nlen = *name ? strlen(*name) : 0;
    if (!*name || nlen == 0 || nlen > SCHEDULE_NAME_MAX ||
        strspn(*name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-") != nlen) {
        snprintf(err, errlen, "name: required, 1 to %d characters of [A-Za-z0-9_.:-]", SCHEDULE_NAME_MAX);
        return NULL;
    }
    if (uuid_valid(*name, nlen)) {
        snprintf(err, errlen, "name: must not be a uuid (a path names a schedule by id or by name)");
        return NULL;
    }
    if ((jc && je) || (!jc && !je)) {
        snprintf(err, errlen, "cron: give either cron (an expression) or every (an interval like \"30s\")");
        return NULL;
    }
    if ((jc && !json_is_string(jc)) || (je && !json_is_string(je))) {
        snprintf(err, errlen, "%s: must be a string", jc ? "cron" : "every");
        return NULL;
    }
    if (je && cron_parse_every(json_string_value(je), err, errlen) < 0)
        return NULL;
    snprintf(expr, exprlen, "%s%.*s", je ? "@every " : "", CRON_EXPR_MAX, json_string_value(jc ? jc : je));
    *tz = jt ? json_string_value(jt) : "UTC";
    if (!*tz) {
        snprintf(err, errlen, "tz: must be a string (an IANA time zone like \"Europe/Berlin\")");
        return NULL;
    }
    *catch_up = ju ? json_string_value(ju) : "once";
    if (!*catch_up || (strcmp(*catch_up, "once") && strcmp(*catch_up, "all") && strcmp(*catch_up, "skip"))) {
        snprintf(err, errlen, "catch_up: must be \"once\" (the default), \"all\" or \"skip\"");
        return NULL;
    }
    if (jp && !json_is_boolean(jp)) {
        snprintf(err, errlen, "paused: must be true or false");
        return NULL;
    }
    *paused = jp && json_is_true(jp);
    *spec = json_object_get(body, "spec");
    if (!json_is_object(*spec)) {
        snprintf(err, errlen, "spec: required, the task spec each tick submits (a JSON object)");
        return NULL;
    }
    if (json_object_get(*spec, "idempotency_key")) {
        snprintf(err, errlen, "spec.idempotency_key: not allowed in a schedule (each tick's task gets its own key, "
                              "schedule:<id>:<tick>)");
        return NULL;
    }
    char serr[SPEC_ERR_MAX];
    spec_t *s = spec_from_json(*spec, serr, sizeof serr);
    if (!s) {
        snprintf(err, errlen, "spec.%s", serr);
        return NULL;
    }
    spec_free(s);
    char cerr[CRON_ERR_MAX];
    cron_t *c = cron_parse(expr, *tz, cerr, sizeof cerr);
    if (!c) {
        int own = strncmp(cerr, "tz:", 3) == 0 || strncmp(cerr, "every:", 6) == 0 || strncmp(cerr, "cron:", 5) == 0;
        snprintf(err, errlen, "%s%s", own ? "" : "cron: ", cerr);
    }
    return c;
}

static void created(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct sreq *r = arg;
    if (db_failed(r, res, err))
        return;
    if (PQgetisnull(res, 0, PQfnumber(res, "id"))) {
        /* a name taken by a concurrent create is not in this statement's
         * snapshot: below the limit, a conflict can only be the name */
        int taken = PQgetvalue(res, 0, PQfnumber(res, "taken"))[0] == 't' ||
                    strtol(PQgetvalue(res, 0, PQfnumber(res, "total")), NULL, 10) < SCHEDULES_MAX;
        char msg[96];
        snprintf(msg, sizeof msg, "schedules: the limit of %d schedules is reached", SCHEDULES_MAX);
        reply_error(r->q, 409, taken ? "name: a schedule of that name exists" : msg);
        sreq_free(r);
        return;
    }
    json_object_set_new(r->doc, "id", json_string(r->id));
    req_audit_note(r->q, r->id, json_incref(r->doc));
    reply_json(r->q, 201, json_incref(r->doc));
    sreq_free(r);
}

void schedules_create(struct req *q, const struct route_args *a)
{
    (void)a;
    json_t *body = req_body_json(q);
    if (!body)
        return;
    const char *name, *tz, *catch_up;
    char expr[CRON_EXPR_MAX + 8], err[SPEC_ERR_MAX + 16];
    int paused;
    json_t *spec;
    cron_t *c = check_body(body, &name, expr, sizeof expr, &tz, &catch_up, &paused, &spec, err, sizeof err);
    if (!c) {
        json_decref(body);
        reply_field_error(q, err);
        return;
    }
    time_t now = time(NULL), next = cron_next(c, now);
    char *spec_text = json_dumps(spec, JSON_COMPACT);
    struct sreq *r = sreq_new(q, NULL);
    uuid_v7(r->id);
    r->doc = json_pack("{s:s,s:s,s:s,s:O,s:s,s:b,s:o,s:o}", "name", name, "cron", expr, "tz", tz, "spec", spec,
                       "catch_up", catch_up, "paused", paused, "next_due_at", iso_time(paused ? -1 : next),
                       "next_runs", next_runs(c, now));
    struct scheduledb_new s = {.id = r->id, .name = name, .cron = expr, .tz = tz, .spec_json = spec_text,
                               .catch_up = catch_up, .created_by = q->actor, .next_due = next,
                               .paused = paused};
    scheduledb_create(q->api->pg, &s, created, r);
    free(spec_text);
    cron_free(c);
    json_decref(body);
}

/* ------------------------------------------------------------- list, get */

static void listed(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct sreq *r = arg;
    if (db_failed(r, res, err))
        return;
    json_t *list = json_loads(PQgetvalue(res, 0, PQfnumber(res, "doc")), 0, NULL);
    reply_json(r->q, 200, json_pack("{s:o}", "schedules", list ? list : json_array()));
    sreq_free(r);
}

void schedules_list(struct req *q, const struct route_args *a)
{
    (void)a;
    scheduledb_list(q->api->pg, scope_sql_queues(q), scope_sql_apps(q), listed, sreq_new(q, NULL));
}

static int have_row(struct sreq *r, const PGresult *res, const char *err)
{
    if (db_failed(r, res, err))
        return 0;
    if (PQntuples(res) > 0)
        return 1;
    char msg[SCHEDULE_NAME_MAX + 80];
    snprintf(msg, sizeof msg, "schedule not found (no id or name \"%s\")", r->key);
    reply_error(r->q, 404, msg);
    sreq_free(r);
    return 0;
}

static void got(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct sreq *r = arg;
    if (!have_row(r, res, err))
        return;
    json_t *doc = json_loads(PQgetvalue(res, 0, PQfnumber(res, "doc")), 0, NULL);
    char cerr[CRON_ERR_MAX];
    cron_t *c = cron_parse(PQgetvalue(res, 0, PQfnumber(res, "cron")), PQgetvalue(res, 0, PQfnumber(res, "tz")),
                           cerr, sizeof cerr);
    if (!doc)
        doc = json_object();
    json_object_set_new(doc, "next_runs", c ? next_runs(c, time(NULL)) : json_string(cerr));
    cron_free(c);
    reply_json(r->q, 200, doc);
    sreq_free(r);
}

void schedules_get(struct req *q, const struct route_args *a)
{
    scheduledb_get(q->api->pg, a->id, got, sreq_new(q, a->id));
}

/* ---------------------------------------------------- pause, resume, delete */

static void paused_set(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct sreq *r = arg;
    if (!have_row(r, res, err))
        return;
    const char *id = PQgetvalue(res, 0, PQfnumber(res, "id"));
    int was = PQgetvalue(res, 0, PQfnumber(res, "was"))[0] == 't';
    int pausing = r->doc == NULL;
    json_t *j = json_pack("{s:s,s:b,s:b}", "id", id, "paused", pausing, "changed", was != pausing);
    if (r->doc)
        json_object_set(j, "next_due_at", json_object_get(r->doc, "next_due_at"));
    if (was != pausing)
        req_audit_note(r->q, id, NULL);
    reply_json(r->q, 200, j);
    sreq_free(r);
}

void schedules_pause(struct req *q, const struct route_args *a)
{
    scheduledb_set_paused(q->api->pg, a->id, 1, -1, paused_set, sreq_new(q, a->id));
}

/* Resume reads the schedule first: its next tick is computed from now. */
static void resume_read(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    struct sreq *r = arg;
    if (!have_row(r, res, err))
        return;
    char cerr[CRON_ERR_MAX];
    cron_t *c = cron_parse(PQgetvalue(res, 0, PQfnumber(res, "cron")), PQgetvalue(res, 0, PQfnumber(res, "tz")),
                           cerr, sizeof cerr);
    if (!c) {
        reply_error(r->q, 409, cerr);
        sreq_free(r);
        return;
    }
    time_t next = cron_next(c, time(NULL));
    cron_free(c);
    r->doc = json_pack("{s:o}", "next_due_at", iso_time(next));
    scheduledb_set_paused(pg, PQgetvalue(res, 0, PQfnumber(res, "id")), 0, next, paused_set, r);
}

void schedules_resume(struct req *q, const struct route_args *a)
{
    scheduledb_get(q->api->pg, a->id, resume_read, sreq_new(q, a->id));
}

static void deleted(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct sreq *r = arg;
    if (!have_row(r, res, err))
        return;
    const char *id = PQgetvalue(res, 0, PQfnumber(res, "id")), *name = PQgetvalue(res, 0, PQfnumber(res, "name"));
    req_audit_note(r->q, id, json_pack("{s:s}", "name", name));
    reply_json(r->q, 200, json_pack("{s:s,s:s,s:b}", "id", id, "name", name, "deleted", 1));
    sreq_free(r);
}

void schedules_delete(struct req *q, const struct route_args *a)
{
    scheduledb_delete(q->api->pg, a->id, deleted, sreq_new(q, a->id));
}
