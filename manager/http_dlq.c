/* http_dlq: the dead-letter routes (/v1/dlq...), task cancel and the checkpoint
 * listing. All asynchronous: a handler chains pgc and rc callbacks through one
 * struct op, which dies with the reply. PostgreSQL is changed first, Redis after. */
#include "http_internal.h"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "entry_check.h"
#include "envelope.h"
#include "log.h"
#include "pgarr.h"
#include "queue.h"
#include "xalloc.h"

#define DLQ_LIST_DEFAULT 100
#define DLQ_LIST_MAX 1000
#define DLQ_SCAN_PAGE 1000 /* entries read per XRANGE when looking a task id up */
#define REPLAY_BATCH 500   /* tasks moved per statement by "replay all" */
#define CHECKPOINTS_MAX 1000

enum op_kind { OP_SHOW, OP_REPLAY, OP_PURGE };

/* One request in progress. */
struct op {
    struct req *q;
    enum op_kind kind;
    char queue[72];
    char key[320];   /* devsys:{Q}:dlq */
    char task[40];   /* task id ("" while unknown) */
    char entry[48];  /* DLQ entry id ("" when not in Redis) */
    char state[16];  /* task state seen by the last statement */
    char arg[64];    /* the ID as given in the path */
    json_t *found;   /* the dead letter as JSON, NULL while not found */
    int by_task;     /* the ID in the path was a task id */
    /* lists and batches */
    json_t *acc;
    size_t pending;
    long count, published;
    char cursor[40];
    pgarr_t *ok_ids, *lost_ids;
};

static struct op *op_new(struct req *q, const char *queue)
{
    struct op *o = xcalloc(1, sizeof *o);
    o->q = q;
    if (queue) {
        snprintf(o->queue, sizeof o->queue, "%s", queue);
        queue_key(o->key, sizeof o->key, q->api->prefix, queue, "dlq");
    }
    return o;
}

static void op_free(struct op *o)
{
    json_decref(o->found);
    json_decref(o->acc);
    free(o->ok_ids ? pgarr_finish(o->ok_ids) : NULL);
    free(o->lost_ids ? pgarr_finish(o->lost_ids) : NULL);
    free(o);
}

/* Takes the reference to j; answers and frees o (and its request). */
static void op_reply(struct op *o, int status, json_t *j)
{
    reply_json(o->q, status, j);
    op_free(o);
}

static void op_error(struct op *o, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void op_error(struct op *o, int status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    reply_error(o->q, status, msg);
    op_free(o);
}

/* 409 with the task's current state next to the message. */
static void op_conflict(struct op *o, const char *msg)
{
    op_reply(o, 409, json_pack("{s:s,s:s,s:s}", "error", msg, "id", o->task, "state", o->state));
}

static int entry_id_valid(const char *s)
{
    size_t n = strspn(s, "0123456789");
    if (n == 0 || n > 20 || s[n] != '-')
        return 0;
    size_t m = strspn(s + n + 1, "0123456789");
    return m > 0 && m <= 20 && s[n + 1 + m] == '\0';
}

static int redis_failed(const redisReply *r)
{
    return !r || r->type == REDIS_REPLY_ERROR;
}

static const char *redis_why(const redisReply *r)
{
    return r ? r->str : "redis unavailable";
}

/* ------------------------------------------------------------------ cancel */

static void cancel_published(rc_t *rc, redisReply *r, void *arg)
{
    (void)rc;
    struct op *o = arg;
    int ok = !redis_failed(r);
    if (!ok)
        log_warn("cancel %s: control message failed (%s); the agent stops it at its next lease renewal",
                 o->task, redis_why(r));
    json_t *j = json_pack("{s:s,s:s,s:s,s:b}", "id", o->task, "state", "cancelled", "previous_state", "running",
                          "signalled", ok);
    if (!ok)
        json_object_set_new(j, "note", json_string("redis unavailable: the agent running it stops it at its next"
                                                   " lease renewal; the task stays cancelled in PostgreSQL"));
    op_reply(o, 200, j);
}

static void cancel_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct op *o = arg;
    if (!res || err[0]) {
        op_error(o, 503, "database unavailable: %s", err);
        return;
    }
    if (PQntuples(res) == 0) {
        op_error(o, 404, "task not found");
        return;
    }
    snprintf(o->state, sizeof o->state, "%s", PQgetvalue(res, 0, 0));
    if (strcmp(PQgetvalue(res, 0, 1), "1") != 0) {
        op_conflict(o, "the task has already finished");
        return;
    }
    audit(o->q->api, o->q->actor, "task.cancel", o->task, json_pack("{s:s}", "previous_state", o->state));
    if (strcmp(o->state, "running") == 0) {
        char chan[256];
        queue_control_channel(chan, sizeof chan, o->q->api->prefix);
        /* Agents follow the capped control stream with a blocking XREAD;
         * each also finds cancelled tasks when it renews its leases. */
        const char *xadd[8] = {"XADD", chan, "MAXLEN", "~", "1000", "*", "cancel", o->task};
        if (rc_command_argv(o->q->api->rc, cancel_published, o, 8, xadd, NULL) != 0)
            cancel_published(NULL, NULL, o);
        return;
    }
    op_reply(o, 200, json_pack("{s:s,s:s,s:s,s:b}", "id", o->task, "state", "cancelled", "previous_state",
                               o->state, "signalled", 0));
}

/* One statement: lock the row, cancel it if it has not finished, and return
 * the state it had, so the answer tells running (signal the agent) from
 * queued/retrying (the agent skips it on delivery) and 409 from 404. */
static void handle_cancel(struct req *q, const char *id)
{
    if (!uuid_valid(id, strlen(id))) {
        reply_error(q, 404, "task not found (not a task id)");
        return;
    }
    struct op *o = op_new(q, NULL);
    snprintf(o->task, sizeof o->task, "%s", id);
    const char *params[1] = {o->task};
    pgc_query(q->api->pg,
              "WITH prev AS (SELECT id, state FROM tasks WHERE id = $1::uuid FOR UPDATE),"
              " upd AS (UPDATE tasks t SET state = 'cancelled', finished_at = now(), next_attempt_at = NULL"
              "   FROM prev WHERE t.id = prev.id AND prev.state IN ('queued', 'running', 'retrying')"
              "   RETURNING t.id)"
              " SELECT prev.state, (SELECT count(*) FROM upd) FROM prev",
              1, params, cancel_done, o);
}

/* ------------------------------------------------------------- checkpoints */

/* Parses ?limit= (1..max, default def) and ?after= into the buffers; returns
 * an error message or NULL. after_ok says whether a cursor is well formed. */
static const char *parse_page(const char *query, long def, long max, char *limit, size_t limit_cap, char *after,
                              size_t after_cap, int (*after_ok)(const char *))
{
    struct evkeyvalq args;
    TAILQ_INIT(&args);
    if (query && evhttp_parse_query_str(query, &args) < 0)
        return "query string does not parse";
    const char *bad = NULL;
    const char *l = evhttp_find_header(&args, "limit"), *a = evhttp_find_header(&args, "after");
    long n = def;
    if (l) {
        char *end;
        n = strtol(l, &end, 10);
        if (!*l || *end || n < 1 || n > max)
            bad = max == DLQ_LIST_MAX ? "limit: must be an integer from 1 to 1000" : "limit: out of range";
    }
    snprintf(limit, limit_cap, "%ld", n);
    after[0] = '\0';
    if (a) {
        if (strlen(a) >= after_cap || !after_ok(a))
            bad = "after: not a cursor returned by this API";
        else
            snprintf(after, after_cap, "%s", a);
    }
    evhttp_clear_headers(&args);
    return bad;
}

static int checkpoint_cursor_ok(const char *s)
{
    size_t n = strspn(s, "0123456789");
    return n > 0 && n < 19 && s[n] == '\0';
}

static void handle_checkpoints(struct req *q, const char *id)
{
    if (!uuid_valid(id, strlen(id))) {
        reply_error(q, 404, "task not found (not a task id)");
        return;
    }
    char limit[16], after[24];
    const char *bad = parse_page(q->query, CHECKPOINTS_MAX, CHECKPOINTS_MAX, limit, sizeof limit, after,
                                 sizeof after, checkpoint_cursor_ok);
    if (bad) {
        reply_error(q, 400, bad);
        return;
    }
    const char *params[3] = {id, after[0] ? after : "0", limit};
    pgc_query(q->api->pg,
              "WITH page AS (SELECT id, attempt, data, created_at FROM checkpoints"
              "   WHERE task_id = $1::uuid AND id > $2::bigint ORDER BY id LIMIT $3::int)"
              " SELECT jsonb_build_object('task_id', t.id, 'last', t.checkpoint,"
              "   'checkpoints', coalesce((SELECT jsonb_agg(jsonb_build_object('id', p.id, 'attempt', p.attempt,"
              "       'data', p.data, 'created_at', p.created_at) ORDER BY p.id) FROM page p), '[]'::jsonb),"
              "   'next', CASE WHEN (SELECT count(*) FROM page) = $3::int"
              "               THEN (SELECT max(id) FROM page)::text END)::text"
              " FROM tasks t WHERE t.id = $1::uuid",
              3, params, reply_task_row, q);
}

/* --------------------------------------------------------- DLQ: overview */

struct xlen_ctx {
    struct op *o;
    size_t idx;
};

static void queues_xlen(rc_t *rc, redisReply *r, void *arg)
{
    (void)rc;
    struct xlen_ctx *c = arg;
    struct op *o = c->o;
    if (r && r->type == REDIS_REPLY_INTEGER)
        json_object_set_new(json_array_get(o->acc, c->idx), "length", json_integer(r->integer));
    free(c);
    if (--o->pending == 0) {
        json_t *j = json_pack("{s:O}", "queues", o->acc);
        op_reply(o, 200, j);
    }
}

static void queues_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct op *o = arg;
    if (!res || err[0]) {
        op_error(o, 503, "database unavailable: %s", err);
        return;
    }
    o->acc = json_array();
    o->pending = 1; /* held while queueing */
    for (int i = 0; i < PQntuples(res); i++) {
        const char *queue = PQgetvalue(res, i, 0);
        json_array_append_new(o->acc, json_pack("{s:s,s:n,s:I}", "queue", queue, "length", "dead",
                                                (json_int_t)strtoll(PQgetvalue(res, i, 1), NULL, 10)));
        char key[320];
        struct xlen_ctx *c = xmalloc(sizeof *c);
        *c = (struct xlen_ctx){o, (size_t)i};
        const char *argv[2] = {"XLEN", queue_key(key, sizeof key, o->q->api->prefix, queue, "dlq")};
        if (rc_command_argv(o->q->api->rc, queues_xlen, c, 2, argv, NULL) == 0)
            o->pending++;
        else
            free(c); /* length stays null: Redis is not connected */
    }
    struct xlen_ctx *c = xmalloc(sizeof *c);
    *c = (struct xlen_ctx){o, 0};
    queues_xlen(NULL, NULL, c);
}

/* The queues come from PostgreSQL (the truth); "length" is what Redis holds
 * now (null when Redis is unreachable), "dead" what it should hold. */
static void handle_queues(struct req *q)
{
    pgc_query(q->api->pg,
              "SELECT queue, count(*) FROM tasks WHERE state = 'dead' AND dlq_purged_at IS NULL"
              " GROUP BY queue ORDER BY queue",
              0, NULL, queues_done, op_new(q, NULL));
}

/* ------------------------------------------------------------ DLQ: list */

static void list_done(rc_t *rc, redisReply *r, void *arg)
{
    (void)rc;
    struct op *o = arg;
    if (redis_failed(r) || r->type != REDIS_REPLY_ARRAY) {
        op_error(o, 503, "redis: %s", r && r->str ? r->str : "unavailable");
        return;
    }
    json_t *entries = json_array();
    const char *last = NULL;
    for (size_t i = 0; i < r->elements; i++) {
        json_t *e = entry_dlq_json(r->element[i]);
        if (!e)
            continue;
        last = r->element[i]->element[0]->str;
        json_array_append_new(entries, e);
    }
    json_t *j = json_pack("{s:s,s:o}", "queue", o->queue, "entries", entries);
    json_object_set_new(j, "next", (long)r->elements == o->count && last ? json_string(last) : json_null());
    op_reply(o, 200, j);
}

static void handle_list(struct req *q, const char *queue)
{
    char limit[16], after[48], start[50];
    const char *bad = parse_page(q->query, DLQ_LIST_DEFAULT, DLQ_LIST_MAX, limit, sizeof limit, after,
                                 sizeof after, entry_id_valid);
    if (bad) {
        reply_error(q, 400, bad);
        return;
    }
    struct op *o = op_new(q, queue);
    o->count = strtol(limit, NULL, 10);
    snprintf(start, sizeof start, "%s%s", after[0] ? "(" : "", after[0] ? after : "-");
    const char *argv[6] = {"XRANGE", o->key, start, "+", "COUNT", limit};
    if (rc_command_argv(q->api->rc, list_done, o, 6, argv, NULL) != 0)
        op_error(o, 503, "redis unavailable");
}

/* ------------------------------------- DLQ: find one dead letter (by ID) */

static void op_found(struct op *o);

/* Redis cannot be asked where the dead letter is. A replay by task id goes
 * on without it (PostgreSQL decides; the reconciler publishes later and the
 * old entry, if Redis kept it, is left for a purge); the rest cannot. */
static void find_without_redis(struct op *o, const redisReply *r)
{
    if (o->kind == OP_REPLAY && o->by_task && (!r || !rc_connected(o->q->api->rc))) {
        op_found(o);
        return;
    }
    op_error(o, 503, "redis: %s", r && r->str ? r->str : "unavailable");
}

static void take_entry(struct op *o, json_t *e)
{
    o->found = e;
    snprintf(o->entry, sizeof o->entry, "%s", json_string_value(json_object_get(e, "entry_id")));
    if (!o->by_task) {
        const char *id = json_string_value(json_object_get(e, "id"));
        snprintf(o->task, sizeof o->task, "%s", id && uuid_valid(id, strlen(id)) ? id : "");
    }
}

static void scan_page(rc_t *rc, redisReply *r, void *arg);

static int scan_from(struct op *o, const char *start)
{
    const char *argv[6] = {"XRANGE", o->key, start, "+", "COUNT", "1000"};
    return rc_command_argv(o->q->api->rc, scan_page, o, 6, argv, NULL);
}

/* A dead letter whose id PostgreSQL does not know (an agent that died between
 * the bury and recording it): read the DLQ page by page for its task id. */
static void scan_page(rc_t *rc, redisReply *r, void *arg)
{
    (void)rc;
    struct op *o = arg;
    if (redis_failed(r) || r->type != REDIS_REPLY_ARRAY) {
        find_without_redis(o, r);
        return;
    }
    for (size_t i = 0; i < r->elements; i++) {
        json_t *e = entry_dlq_json(r->element[i]);
        const char *id = json_string_value(json_object_get(e, "id"));
        if (id && strcmp(id, o->task) == 0) {
            take_entry(o, e);
            /* remember it, so the next lookup (and "replay all") is direct */
            const char *params[2] = {o->task, o->entry};
            pgc_query(o->q->api->pg,
                      "UPDATE tasks SET dlq_entry = $2 WHERE id = $1::uuid AND state = 'dead' AND dlq_entry IS NULL",
                      2, params, NULL, NULL);
            op_found(o);
            return;
        }
        json_decref(e);
    }
    if (r->elements < DLQ_SCAN_PAGE) {
        op_found(o);
        return;
    }
    char start[64];
    snprintf(start, sizeof start, "(%s", r->element[r->elements - 1]->element[0]->str);
    if (scan_from(o, start) != 0)
        find_without_redis(o, NULL);
}

static void one_entry(rc_t *rc, redisReply *r, void *arg)
{
    (void)rc;
    struct op *o = arg;
    if (redis_failed(r) || r->type != REDIS_REPLY_ARRAY) {
        find_without_redis(o, r);
        return;
    }
    json_t *e = r->elements == 1 ? entry_dlq_json(r->element[0]) : NULL;
    if (e && o->by_task) {
        const char *id = json_string_value(json_object_get(e, "id"));
        if (!id || strcmp(id, o->task) != 0) {
            json_decref(e);
            e = NULL;
        }
    }
    if (e) {
        take_entry(o, e);
        op_found(o);
    } else if (o->by_task) {
        if (scan_from(o, "-") != 0)
            find_without_redis(o, NULL);
    } else {
        op_found(o);
    }
}

static int fetch_entry(struct op *o, const char *entry)
{
    const char *argv[4] = {"XRANGE", o->key, entry, entry};
    return rc_command_argv(o->q->api->rc, one_entry, o, 4, argv, NULL);
}

static void task_row(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct op *o = arg;
    if (!res || err[0]) {
        op_error(o, 503, "database unavailable: %s", err);
        return;
    }
    if (PQntuples(res) == 0) {
        op_error(o, 404, "task %s is not in queue %s", o->task, o->queue);
        return;
    }
    snprintf(o->state, sizeof o->state, "%s", PQgetvalue(res, 0, 0));
    int rv = PQgetisnull(res, 0, 1) ? scan_from(o, "-") : fetch_entry(o, PQgetvalue(res, 0, 1));
    if (rv != 0)
        find_without_redis(o, NULL);
}

/* Finds the dead letter named by id (a DLQ entry id, or a task id looked up
 * through tasks.dlq_entry, else by scanning the DLQ), then calls op_found
 * with o->found set (or NULL) and o->task / o->entry filled in. */
static void find_entry(struct req *q, enum op_kind kind, const char *queue, const char *id)
{
    struct op *o = op_new(q, queue);
    o->kind = kind;
    snprintf(o->arg, sizeof o->arg, "%s", id);
    if (uuid_valid(id, strlen(id))) {
        o->by_task = 1;
        snprintf(o->task, sizeof o->task, "%s", id);
        const char *params[2] = {o->task, o->queue};
        pgc_query(q->api->pg, "SELECT state, dlq_entry FROM tasks WHERE id = $1::uuid AND queue = $2", 2,
                  params, task_row, o);
    } else if (entry_id_valid(id)) {
        if (fetch_entry(o, id) != 0)
            op_error(o, 503, "redis unavailable");
    } else {
        op_error(o, 404, "\"%s\" is neither a DLQ entry id (ms-seq) nor a task id", id);
    }
}

/* --------------------------------------------------- DLQ: replay one */

static void mark_published(api_t *api, const char *ids_literal, int ok);

static void replay_published(rc_t *rc, redisReply *r, void *arg)
{
    (void)rc;
    struct op *o = arg;
    int ok = !redis_failed(r) && r->type == REDIS_REPLY_STRING;
    if (!ok)
        log_warn("replay %s: publish failed (%s); the reconciler will publish it", o->task, redis_why(r));
    pgarr_t *a = pgarr_new();
    pgarr_add(a, o->task);
    char *lit = pgarr_finish(a);
    mark_published(o->q->api, lit, ok);
    free(lit);
    audit(o->q->api, o->q->actor, "dlq.replay", o->task,
          json_pack("{s:s,s:s?,s:b}", "queue", o->queue, "entry_id", o->entry[0] ? o->entry : NULL, "published",
                    ok));
    json_t *j = json_pack("{s:s,s:s,s:s?,s:s,s:b}", "id", o->task, "queue", o->queue, "entry_id",
                          o->entry[0] ? o->entry : NULL, "state", "queued", "published", ok);
    if (ok)
        json_object_set_new(j, "stream_entry", json_string(r->str));
    else
        json_object_set_new(j, "note", json_string("redis unavailable: the task is queued in PostgreSQL and the"
                                                   " reconciler will publish it once redis is back"));
    op_reply(o, 200, j);
}

static void replay_updated(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct op *o = arg;
    if (!res || err[0]) {
        op_error(o, 503, "database unavailable: %s", err);
        return;
    }
    if (PQntuples(res) == 0) {
        op_error(o, 404, "task %s of this dead letter is not in queue %s", o->task, o->queue);
        return;
    }
    snprintf(o->state, sizeof o->state, "%s", PQgetvalue(res, 0, 0));
    if (PQgetisnull(res, 0, 1)) {
        op_conflict(o, "only a dead task can be replayed");
        return;
    }
    json_t *spec = json_loads(PQgetvalue(res, 0, 2), 0, NULL);
    if (!spec || queue_replay(o->q->api->rc, o->q->api->prefix, o->queue, o->entry[0] ? o->entry : NULL, o->task,
                              PQgetvalue(res, 0, 1), spec, replay_published, o) != 0)
        replay_published(NULL, NULL, o);
    json_decref(spec);
}

/* Dead -> queued with a fresh budget of attempts, replays + 1; returns the
 * state it had so that 409 can name it. The attempt counter goes on rather
 * than restarting at 0: attempt numbers stay unique per task (task_attempts'
 * key, and the fencing token), and max_attempts moves up by the spec's budget. */
static const char replay_sql[] =
    "WITH prev AS (SELECT id, state, dlq_entry FROM tasks"
    "   WHERE ($1::uuid[] IS NULL OR id = ANY($1::uuid[])) AND queue = $2"
    "   AND ($3::uuid IS NULL OR id > $3::uuid) AND ($4::bool OR state = 'dead' AND dlq_purged_at IS NULL)"
    "   ORDER BY id LIMIT $5::int FOR UPDATE),"
    " upd AS (UPDATE tasks t SET state = 'queued', replays = t.replays + 1, dlq_entry = NULL,"
    "     max_attempts = t.attempt + coalesce((t.spec->'retry_policy'->>'max_attempts')::int, 3),"
    "     dlq_purged_at = NULL, finished_at = NULL, next_attempt_at = NULL, lease_owner = NULL,"
    "     lease_expires_at = NULL"
    "   FROM prev WHERE t.id = prev.id AND prev.state = 'dead' RETURNING t.id, t.kind, t.spec)"
    " SELECT prev.state, upd.kind, upd.spec::text, prev.id, prev.dlq_entry"
    " FROM prev LEFT JOIN upd ON upd.id = prev.id ORDER BY prev.id";

static void replay_one(struct op *o)
{
    if (!o->task[0]) {
        op_error(o, 409, "dead letter %s carries no valid task id; purge it instead", o->entry);
        return;
    }
    pgarr_t *a = pgarr_new();
    pgarr_add(a, o->task);
    char *ids = pgarr_finish(a);
    const char *params[5] = {ids, o->queue, NULL, "true", "1"};
    pgc_query(o->q->api->pg, replay_sql, 5, params, replay_updated, o);
    free(ids);
}

/* --------------------------------------------------- DLQ: purge one */

static void purge_xdel(rc_t *rc, redisReply *r, void *arg)
{
    (void)rc;
    struct op *o = arg;
    if (redis_failed(r)) {
        op_error(o, 503, "redis: %s (the task is marked purged in PostgreSQL; repeat the purge)", redis_why(r));
        return;
    }
    audit(o->q->api, o->q->actor, "dlq.purge", o->task[0] ? o->task : o->entry,
          json_pack("{s:s,s:s?,s:s?}", "queue", o->queue, "entry_id", o->entry[0] ? o->entry : NULL, "id",
                    o->task[0] ? o->task : NULL));
    op_reply(o, 200, json_pack("{s:s,s:s?,s:s?,s:b}", "queue", o->queue, "id", o->task[0] ? o->task : NULL,
                               "entry_id", o->entry[0] ? o->entry : NULL, "purged", 1));
}

static void purge_redis(struct op *o)
{
    const char *argv[3] = {"XDEL", o->key, o->entry};
    if (rc_command_argv(o->q->api->rc, purge_xdel, o, 3, argv, NULL) != 0)
        purge_xdel(NULL, NULL, o);
}

static void purge_updated(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct op *o = arg;
    if (!res || err[0]) {
        op_error(o, 503, "database unavailable: %s", err);
        return;
    }
    int marked = PQntuples(res) > 0 && strcmp(PQgetvalue(res, 0, 1), "1") == 0;
    if (PQntuples(res) > 0)
        snprintf(o->state, sizeof o->state, "%s", PQgetvalue(res, 0, 0));
    if (!o->entry[0]) {
        /* nothing in Redis: only the row could change */
        if (marked)
            purge_xdel(NULL, &(redisReply){.type = REDIS_REPLY_INTEGER}, o);
        else if (PQntuples(res) > 0 && strcmp(o->state, "dead") != 0)
            op_conflict(o, "only a dead task can be purged");
        else
            op_error(o, 404, "no dead letter for task %s in queue %s", o->task, o->queue);
        return;
    }
    purge_redis(o);
}

/* PostgreSQL first: should the XDEL then fail, the entry merely stays visible
 * (purge again), whereas the other order would let the reconciler restore it. */
static void purge_one(struct op *o)
{
    if (!o->found && !o->by_task) {
        op_error(o, 404, "no dead letter %s in queue %s", o->arg, o->queue);
        return;
    }
    if (!o->task[0]) { /* a dead letter with no task behind it: only Redis */
        purge_redis(o);
        return;
    }
    const char *params[2] = {o->task, o->queue};
    pgc_query(o->q->api->pg,
              "WITH prev AS (SELECT id, state FROM tasks WHERE id = $1::uuid AND queue = $2 FOR UPDATE),"
              " upd AS (UPDATE tasks t SET dlq_purged_at = now() FROM prev"
              "   WHERE t.id = prev.id AND prev.state = 'dead' AND t.dlq_purged_at IS NULL RETURNING t.id)"
              " SELECT prev.state, (SELECT count(*) FROM upd) FROM prev",
              2, params, purge_updated, o);
}

static void op_found(struct op *o)
{
    switch (o->kind) {
    case OP_SHOW:
        if (!o->found) {
            if (o->by_task)
                op_error(o, 404, "task %s (%s) has no entry in the DLQ of %s", o->task, o->state, o->queue);
            else
                op_error(o, 404, "no dead letter %s in queue %s", o->arg, o->queue);
            return;
        }
        op_reply(o, 200, json_incref(o->found));
        return;
    case OP_REPLAY:
        if (!o->found && !o->by_task) {
            op_error(o, 404, "no dead letter %s in queue %s", o->arg, o->queue);
            return;
        }
        replay_one(o);
        return;
    case OP_PURGE:
        purge_one(o);
        return;
    }
}

/* --------------------------------------------------- DLQ: replay all */

/* ok: the XADD happened (published_at = now). Otherwise published_at goes to
 * the epoch, which the reconciler reads as "entry gone": the task is then
 * published once Redis answers, whatever the stream holds. */
static void mark_published(api_t *api, const char *ids_literal, int ok)
{
    const char *params[2] = {ids_literal, ok ? "true" : "false"};
    pgc_query(api->pg,
              "UPDATE tasks SET published_at = CASE WHEN $2::bool THEN now() ELSE 'epoch'::timestamptz END"
              " WHERE id = ANY($1::uuid[])",
              2, params, NULL, NULL);
}

struct replay_ctx {
    struct op *o;
    char id[40];
};

static void replay_all_batch(struct op *o);

static void replay_all_sent(rc_t *rc, redisReply *r, void *arg)
{
    (void)rc;
    struct replay_ctx *c = arg;
    struct op *o = c->o;
    if (c->id[0]) {
        int ok = !redis_failed(r) && r->type == REDIS_REPLY_STRING;
        pgarr_add(ok ? o->ok_ids : o->lost_ids, c->id);
        o->published += ok;
        o->count++;
    }
    free(c);
    if (--o->pending > 0)
        return;
    char *ok_lit = pgarr_finish(o->ok_ids), *lost_lit = pgarr_finish(o->lost_ids);
    o->ok_ids = o->lost_ids = NULL;
    if (strcmp(ok_lit, "{}") != 0)
        mark_published(o->q->api, ok_lit, 1);
    if (strcmp(lost_lit, "{}") != 0)
        mark_published(o->q->api, lost_lit, 0);
    free(ok_lit);
    free(lost_lit);
    replay_all_batch(o);
}

static void replay_all_finish(struct op *o, const char *err)
{
    if (o->count || !err)
        audit(o->q->api, o->q->actor, "dlq.replay", o->queue,
              json_pack("{s:b,s:I,s:I}", "all", 1, "count", (json_int_t)o->count, "published",
                        (json_int_t)o->published));
    json_t *j = json_pack("{s:s,s:I,s:I}", "queue", o->queue, "replayed", (json_int_t)o->count, "published",
                          (json_int_t)o->published);
    if (err) {
        json_object_set_new(j, "error", json_sprintf("database unavailable after %ld tasks: %s", o->count, err));
        op_reply(o, 503, j);
        return;
    }
    if (o->published < o->count)
        json_object_set_new(j, "note", json_string("redis unavailable for some tasks: they are queued in"
                                                   " PostgreSQL and the reconciler will publish them"));
    op_reply(o, 200, j);
}

static void replay_all_rows(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct op *o = arg;
    if (!res || err[0]) {
        replay_all_finish(o, err[0] ? err : "connection lost");
        return;
    }
    int rows = PQntuples(res);
    if (rows == 0) {
        replay_all_finish(o, NULL);
        return;
    }
    o->ok_ids = pgarr_new();
    o->lost_ids = pgarr_new();
    o->pending = 1; /* held while queueing */
    for (int i = 0; i < rows; i++) {
        const char *id = PQgetvalue(res, i, 3);
        snprintf(o->cursor, sizeof o->cursor, "%s", id);
        if (PQgetisnull(res, i, 1))
            continue;
        struct replay_ctx *c = xcalloc(1, sizeof *c);
        c->o = o;
        snprintf(c->id, sizeof c->id, "%s", id);
        o->pending++;
        json_t *spec = json_loads(PQgetvalue(res, i, 2), 0, NULL);
        if (!spec || queue_replay(o->q->api->rc, o->q->api->prefix, o->queue,
                                  PQgetisnull(res, i, 4) ? NULL : PQgetvalue(res, i, 4), id, PQgetvalue(res, i, 1),
                                  spec, replay_all_sent, c) != 0)
            replay_all_sent(NULL, NULL, c);
        json_decref(spec);
    }
    struct replay_ctx *hold = xcalloc(1, sizeof *hold);
    hold->o = o;
    replay_all_sent(NULL, NULL, hold);
}

/* Batches in task-id order with a cursor, so a task that dies again while
 * this runs is not replayed twice by the same call; it stops on an empty batch
 * (a short one may only mean rows were locked by a concurrent replay). */
static void replay_all_batch(struct op *o)
{
    char lim[16];
    snprintf(lim, sizeof lim, "%d", REPLAY_BATCH);
    const char *params[5] = {NULL, o->queue, o->cursor[0] ? o->cursor : NULL, "false", lim};
    pgc_query(o->q->api->pg, replay_sql, 5, params, replay_all_rows, o);
}

/* ---------------------------------------------------- DLQ: purge all */

static void purge_all_trimmed(rc_t *rc, redisReply *r, void *arg)
{
    (void)rc;
    struct op *o = arg;
    if (redis_failed(r)) {
        op_error(o, 503, "redis: %s (%ld tasks are marked purged in PostgreSQL; repeat the purge)", redis_why(r),
                 o->count);
        return;
    }
    long long removed = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
    audit(o->q->api, o->q->actor, "dlq.purge", o->queue,
          json_pack("{s:b,s:I,s:I}", "all", 1, "tasks", (json_int_t)o->count, "entries", (json_int_t)removed));
    op_reply(o, 200, json_pack("{s:s,s:I,s:I}", "queue", o->queue, "purged", (json_int_t)o->count,
                               "entries_removed", (json_int_t)removed));
}

static void purge_all_updated(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct op *o = arg;
    if (!res || err[0]) {
        op_error(o, 503, "database unavailable: %s", err);
        return;
    }
    o->count = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    /* XTRIM, not DEL: the stream keeps its last id, so new ids stay above
     * every purged one. A letter buried between the UPDATE and the trim is
     * removed too, but its row is not purged: the reconciler restores it. */
    const char *argv[4] = {"XTRIM", o->key, "MAXLEN", "0"};
    if (rc_command_argv(o->q->api->rc, purge_all_trimmed, o, 4, argv, NULL) != 0)
        purge_all_trimmed(NULL, NULL, o);
}

static void handle_purge_all(struct req *q, const char *queue)
{
    if (!rc_connected(q->api->rc)) {
        reply_error(q, 503, "redis unavailable: nothing purged");
        return;
    }
    struct op *o = op_new(q, queue);
    const char *params[1] = {o->queue};
    pgc_query(q->api->pg,
              "WITH u AS (UPDATE tasks SET dlq_purged_at = now()"
              "   WHERE queue = $1 AND state = 'dead' AND dlq_purged_at IS NULL RETURNING 1)"
              " SELECT count(*) FROM u",
              1, params, purge_all_updated, o);
}

/* ------------------------------------------------------------------ routes */

static int need(struct req *q, enum role role, const char *what)
{
    if (q->role >= role)
        return 1;
    char msg[160];
    snprintf(msg, sizeof msg, "%s needs the %s role", what, auth_role_name(role));
    reply_error(q, 403, msg);
    return 0;
}

static void method_not_allowed(struct req *q)
{
    reply_error(q, 405, "method not allowed");
}

static int route_task(struct req *q, const char *rest)
{
    const char *slash = strchr(rest, '/');
    if (!slash || strchr(slash + 1, '/'))
        return 0;
    char id[64];
    snprintf(id, sizeof id, "%.*s", (int)(slash - rest), rest);
    if (strcmp(slash + 1, "cancel") == 0) {
        if (q->method != EVHTTP_REQ_POST)
            method_not_allowed(q);
        else if (need(q, ROLE_OPERATOR, "cancelling a task"))
            handle_cancel(q, id);
        return 1;
    }
    if (strcmp(slash + 1, "checkpoints") == 0) {
        if (q->method != EVHTTP_REQ_GET)
            method_not_allowed(q);
        else
            handle_checkpoints(q, id);
        return 1;
    }
    return 0;
}

/* /v1/dlq/Q, /v1/dlq/Q/replay, /v1/dlq/Q/ID, /v1/dlq/Q/ID/replay
 * (segments are percent-decoded; seg holds up to 3). */
static int route_dlq(struct req *q, char seg[3][128], int n)
{
    const char *queue = seg[0];
    int is_get = q->method == EVHTTP_REQ_GET, is_post = q->method == EVHTTP_REQ_POST,
        is_del = q->method == EVHTTP_REQ_DELETE;
    if (n == 3 && strcmp(seg[2], "replay") != 0)
        return 0;
    if (!spec_queue_name_ok(queue)) {
        reply_error(q, 400, "queue: must be 1 to 64 characters of [A-Za-z0-9_.-]");
        return 1;
    }
    if (n == 1) {
        if (is_get)
            handle_list(q, queue);
        else if (!is_del)
            method_not_allowed(q);
        else if (need(q, ROLE_OPERATOR, "purging dead letters"))
            handle_purge_all(q, queue);
    } else if (n == 2 && strcmp(seg[1], "replay") == 0) {
        if (!is_post)
            method_not_allowed(q);
        else if (need(q, ROLE_OPERATOR, "replaying dead letters")) {
            struct op *o = op_new(q, queue);
            replay_all_batch(o);
        }
    } else if (n == 2) {
        if (is_get)
            find_entry(q, OP_SHOW, queue, seg[1]);
        else if (!is_del)
            method_not_allowed(q);
        else if (need(q, ROLE_OPERATOR, "purging dead letters")) {
            if (!rc_connected(q->api->rc))
                reply_error(q, 503, "redis unavailable: nothing purged");
            else
                find_entry(q, OP_PURGE, queue, seg[1]);
        }
    } else {
        if (!is_post)
            method_not_allowed(q);
        else if (need(q, ROLE_OPERATOR, "replaying dead letters"))
            find_entry(q, OP_REPLAY, queue, seg[1]);
    }
    return 1;
}

int dlq_route(struct req *q)
{
    const char *p = q->path;
    if (strncmp(p, "/v1/tasks/", 10) == 0)
        return route_task(q, p + 10);
    if (strcmp(p, "/v1/dlq") == 0) {
        if (q->method == EVHTTP_REQ_GET)
            handle_queues(q);
        else
            method_not_allowed(q);
        return 1;
    }
    if (strncmp(p, "/v1/dlq/", 8) != 0)
        return 0;
    char seg[3][128];
    int n = 0;
    for (const char *s = p + 8; *s; n++) {
        const char *e = strchr(s, '/');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (n == 3 || len == 0 || len >= sizeof seg[0])
            return 0;
        char raw[128];
        memcpy(raw, s, len);
        raw[len] = '\0';
        size_t dlen;
        char *d = evhttp_uridecode(raw, 0, &dlen);
        if (!d || dlen >= sizeof seg[0] || strlen(d) != dlen) {
            free(d);
            return 0;
        }
        memcpy(seg[n], d, dlen + 1);
        free(d);
        s += len + (e ? 1 : 0);
    }
    return n ? route_dlq(q, seg, n) : 0;
}
