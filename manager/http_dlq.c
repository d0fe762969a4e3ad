/* http_dlq: the dead-letter routes (/v1/dlq...): overview, list, show, purge,
 * and the lookup of one dead letter that show, purge and replay (http_replay.c)
 * share. Asynchronous; PostgreSQL is changed first, Redis after. */
#include "http_internal.h"

#include <event2/http.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "entry_check.h"
#include "envelope.h"
#include "uuid.h"
#include "queue.h"
#include "taskdb.h"
#include "xalloc.h"

#define DLQ_LIST_DEFAULT 100
#define DLQ_LIST_MAX 1000
#define DLQ_SCAN_PAGE 1000 /* entries read per XRANGE when looking a task id up */

/* One part of a stream id: 1..20 digits that fit in 64 bits. */
static int id_part(const char *s, size_t n, unsigned long long *v)
{
    if (n == 0 || n > 20)
        return 0;
    char buf[24];
    memcpy(buf, s, n);
    buf[n] = '\0';
    errno = 0;
    *v = strtoull(buf, NULL, 10);
    return errno == 0;
}

/* A stream entry id "ms-seq" as Redis accepts it (each part < 2^64); the
 * parts go to *ms and *seq. */
static int entry_id_parse(const char *s, unsigned long long *ms, unsigned long long *seq)
{
    size_t n = strspn(s, "0123456789");
    if (s[n] != '-' || !id_part(s, n, ms))
        return 0;
    size_t m = strspn(s + n + 1, "0123456789");
    return s[n + 1 + m] == '\0' && id_part(s + n + 1, m, seq);
}

static int entry_id_valid(const char *s)
{
    unsigned long long ms, seq;
    return entry_id_parse(s, &ms, &seq);
}

/* --------------------------------------------------------- DLQ: overview */

struct xlen_ctx {
    struct op *o;
    size_t idx;
};

static void queues_xlen(void *arg, const char *err, long long len)
{
    struct xlen_ctx *c = arg;
    struct op *o = c->o;
    if (!err[0])
        json_object_set_new(json_array_get(o->acc, c->idx), "length", json_integer(len));
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
        op_db_error(o, err);
        return;
    }
    o->acc = json_array();
    o->pending = 1; /* held while queueing */
    for (int i = 0; i < PQntuples(res); i++) {
        const char *queue = PQgetvalue(res, i, 0);
        json_array_append_new(o->acc, json_pack("{s:s,s:n,s:I}", "queue", queue, "length", "dead",
                                                (json_int_t)strtoll(PQgetvalue(res, i, 1), NULL, 10)));
        struct xlen_ctx *c = xmalloc(sizeof *c);
        *c = (struct xlen_ctx){o, (size_t)i};
        if (queue_dlq_len(o->q->api->rc, o->q->api->prefix, queue, queues_xlen, c) == 0)
            o->pending++;
        else
            free(c); /* length stays null: Redis is not connected */
    }
    struct xlen_ctx *c = xmalloc(sizeof *c);
    *c = (struct xlen_ctx){o, 0};
    queues_xlen(c, QUEUE_DISCONNECTED, 0);
}

/* The queues come from PostgreSQL (the truth); "length" is what Redis holds
 * now (null when Redis is unreachable), "dead" what it should hold. */
void dlq_queues(struct req *q, const struct route_args *a)
{
    (void)a;
    const char *p[1] = {scope_sql_queues(q)};
    pgc_query(q->api->pg,
              "SELECT queue, count(*) FROM tasks WHERE state = 'dead' AND dlq_purged_at IS NULL"
              " AND ($1::text[] IS NULL OR queue = ANY($1::text[])) GROUP BY queue ORDER BY queue",
              1, p, queues_done, op_new(q, NULL));
}

/* ------------------------------------------------------------ DLQ: list */

/* "redis: <why>" of a 503. */
static const char *redis_why(const char *err)
{
    return queue_disconnected(err) ? "unavailable" : err;
}

static void list_done(void *arg, const char *err, const queue_entry_t *letters, size_t n)
{
    struct op *o = arg;
    if (err[0]) {
        op_error(o, 503, "redis: %s", redis_why(err));
        return;
    }
    json_t *entries = json_array();
    const char *last = NULL;
    for (size_t i = 0; i < n; i++) {
        json_t *e = entry_dlq_json(&letters[i]);
        if (!e)
            continue;
        last = letters[i].id;
        json_array_append_new(entries, e);
    }
    json_t *j = json_pack("{s:s,s:o}", "queue", o->queue, "entries", entries);
    json_object_set_new(j, "next", (long)n == o->count && last ? json_string(last) : json_null());
    op_reply(o, 200, j);
}

void dlq_list(struct req *q, const struct route_args *a)
{
    const char *queue = a->queue;
    struct op_page pg;
    if (op_parse_page(q->query, DLQ_LIST_DEFAULT, DLQ_LIST_MAX, entry_id_valid, &pg) != 0) {
        reply_error(q, 400, pg.why);
        return;
    }
    const char *limit = pg.limit, *after = pg.after;
    struct op *o = op_new(q, queue);
    o->count = strtol(limit, NULL, 10);
    unsigned long long ms, seq;
    if (after[0] && entry_id_parse(after, &ms, &seq) && ms == ULLONG_MAX && seq == ULLONG_MAX) {
        /* nothing comes after the largest id; Redis refuses "(" before it */
        op_reply(o, 200, json_pack("{s:s,s:[],s:n}", "queue", o->queue, "entries", "next"));
        return;
    }
    if (queue_dlq_range(q->api->rc, q->api->prefix, o->queue, after, o->count, list_done, o) != 0)
        op_error(o, 503, "redis unavailable");
}

/* ------------------------------------- DLQ: find one dead letter (by ID) */

static void op_found(struct op *o);

/* Redis cannot be asked where the dead letter is. A replay by task id goes
 * on without it (PostgreSQL decides; the reconciler publishes later and the
 * old entry, if Redis kept it, is left for a purge); the rest cannot. */
static void find_without_redis(struct op *o, const char *err)
{
    if (o->kind == OP_REPLAY && o->by_task && (queue_disconnected(err) || !rc_connected(o->q->api->rc))) {
        op_found(o);
        return;
    }
    op_error(o, 503, "redis: %s", redis_why(err));
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

static void scan_page(void *arg, const char *err, const queue_entry_t *letters, size_t n);

/* after NULL: from the start */
static int scan_from(struct op *o, const char *after)
{
    return queue_dlq_range(o->q->api->rc, o->q->api->prefix, o->queue, after, DLQ_SCAN_PAGE, scan_page, o);
}

/* A dead letter whose id PostgreSQL does not know (an agent that died between
 * the bury and recording it): read the DLQ page by page for its task id. */
static void scan_page(void *arg, const char *err, const queue_entry_t *letters, size_t n)
{
    struct op *o = arg;
    if (err[0]) {
        find_without_redis(o, err);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *e = entry_dlq_json(&letters[i]);
        const char *id = json_string_value(json_object_get(e, "id"));
        if (id && strcmp(id, o->task) == 0) {
            take_entry(o, e);
            /* remember it, so the next lookup (and "replay all") is direct */
            taskdb_rows_t *rows = taskdb_rows_new();
            taskdb_dlq_entry_add(rows, o->task, o->entry);
            taskdb_dlq_entries(o->q->api->pg, rows, 1, NULL, NULL);
            op_found(o);
            return;
        }
        json_decref(e);
    }
    if (n < DLQ_SCAN_PAGE) {
        op_found(o);
        return;
    }
    if (scan_from(o, letters[n - 1].id) != 0)
        find_without_redis(o, QUEUE_DISCONNECTED);
}

/* Whether a lookup by task id may read the whole DLQ for the task's letter:
 * only for a dead task whose entry id PostgreSQL does not hold (an agent that
 * died between the bury and recording it), and only to replay or purge it.
 * A show, or a task that is not dead, is answered from PostgreSQL alone, so a
 * viewer cannot make the manager scan a long DLQ. */
static int may_scan(const struct op *o)
{
    return o->by_task && o->kind != OP_SHOW && strcmp(o->state, "dead") == 0;
}

static void one_entry(void *arg, const char *err, const queue_entry_t *letters, size_t n)
{
    struct op *o = arg;
    if (err[0]) {
        find_without_redis(o, err);
        return;
    }
    json_t *e = n == 1 ? entry_dlq_json(&letters[0]) : NULL;
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
    } else if (may_scan(o)) {
        if (scan_from(o, NULL) != 0)
            find_without_redis(o, QUEUE_DISCONNECTED);
    } else {
        op_found(o);
    }
}

static int fetch_entry(struct op *o, const char *entry)
{
    return queue_dlq_entry(o->q->api->rc, o->q->api->prefix, o->queue, entry, one_entry, o);
}

static void task_row(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct op *o = arg;
    if (!op_have_row(o, res, err, "task %s is not in queue %s", o->task, o->queue))
        return;
    snprintf(o->state, sizeof o->state, "%s", PQgetvalue(res, 0, 0));
    if (PQgetisnull(res, 0, 1) && !may_scan(o)) {
        op_found(o);
        return;
    }
    int rv = PQgetisnull(res, 0, 1) ? scan_from(o, NULL) : fetch_entry(o, PQgetvalue(res, 0, 1));
    if (rv != 0)
        find_without_redis(o, QUEUE_DISCONNECTED);
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

/* --------------------------------------------------- DLQ: purge one */

static void purge_xdel(void *arg, const char *err, long long removed)
{
    (void)removed;
    struct op *o = arg;
    if (err[0]) {
        op_error(o, 503, "redis: %s (the task is marked purged in PostgreSQL; repeat the purge)", op_redis_why(err));
        return;
    }
    req_audit_note(o->q, o->task[0] ? o->task : o->entry,
          json_pack("{s:s,s:s?,s:s?}", "queue", o->queue, "entry_id", o->entry[0] ? o->entry : NULL, "id",
                    o->task[0] ? o->task : NULL));
    op_reply(o, 200, json_pack("{s:s,s:s?,s:s?,s:b}", "queue", o->queue, "id", o->task[0] ? o->task : NULL,
                               "entry_id", o->entry[0] ? o->entry : NULL, "purged", 1));
}

static void purge_redis(struct op *o)
{
    if (queue_dlq_delete(o->q->api->rc, o->q->api->prefix, o->queue, o->entry, purge_xdel, o) != 0)
        purge_xdel(o, QUEUE_DISCONNECTED, 0);
}

static void purge_updated(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct op *o = arg;
    if (!res || err[0]) {
        op_db_error(o, err);
        return;
    }
    int marked = PQntuples(res) > 0 && strcmp(PQgetvalue(res, 0, taskdb_col(res, "purged")), "1") == 0;
    if (PQntuples(res) > 0)
        snprintf(o->state, sizeof o->state, "%s", PQgetvalue(res, 0, taskdb_col(res, "was")));
    if (!o->entry[0]) {
        /* nothing in Redis: only the row could change */
        if (marked)
            purge_xdel(o, "", 0);
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
    taskdb_purge(o->q->api->pg, o->task, o->queue, purge_updated, o);
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
    case OP_RETRY: /* http_replay.c, never through a lookup */
        break;
    }
}

/* ---------------------------------------------------- DLQ: purge all */

static void purge_all_trimmed(void *arg, const char *err, long long removed)
{
    struct op *o = arg;
    if (err[0]) {
        op_error(o, 503, "redis: %s (%ld tasks are marked purged in PostgreSQL; repeat the purge)", op_redis_why(err),
                 o->count);
        return;
    }
    req_audit_note(o->q, o->queue,
          json_pack("{s:b,s:I,s:I}", "all", 1, "tasks", (json_int_t)o->count, "entries", (json_int_t)removed));
    op_reply(o, 200, json_pack("{s:s,s:I,s:I}", "queue", o->queue, "purged", (json_int_t)o->count,
                               "entries_removed", (json_int_t)removed));
}

static void purge_all_updated(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct op *o = arg;
    if (!res || err[0]) {
        op_db_error(o, err);
        return;
    }
    o->count = strtol(PQgetvalue(res, 0, taskdb_col(res, "purged")), NULL, 10);
    /* XTRIM, not DEL: the stream keeps its last id, so new ids stay above
     * every purged one. A letter buried between the UPDATE and the trim is
     * removed too, but its row is not purged: the reconciler restores it. */
    if (queue_dlq_clear(o->q->api->rc, o->q->api->prefix, o->queue, purge_all_trimmed, o) != 0)
        purge_all_trimmed(o, QUEUE_DISCONNECTED, 0);
}

void dlq_purge_all(struct req *q, const struct route_args *a)
{
    const char *queue = a->queue;
    if (!rc_connected(q->api->rc)) {
        reply_error(q, 503, "redis unavailable: nothing purged");
        return;
    }
    struct dlq_filter *f = dlq_filter_of(q);
    if (!f)
        return;
    if (f->narrowed || f->limited) {
        dlq_purge_filtered(q, queue, f);
        return;
    }
    dlq_filter_free(f);
    struct op *o = op_new(q, queue);
    taskdb_purge_queue(q->api->pg, o->queue, purge_all_updated, o);
}

/* ------------------------------------------------------- DLQ: one letter */

void dlq_show(struct req *q, const struct route_args *a)
{
    find_entry(q, OP_SHOW, a->queue, a->entry);
}

void dlq_purge(struct req *q, const struct route_args *a)
{
    if (!rc_connected(q->api->rc))
        reply_error(q, 503, "redis unavailable: nothing purged");
    else
        find_entry(q, OP_PURGE, a->queue, a->entry);
}

void dlq_replay(struct req *q, const struct route_args *a)
{
    find_entry(q, OP_REPLAY, a->queue, a->entry);
}
