/* http_queues: the queue routes: list and show (settings from PostgreSQL,
 * what the queue holds from Redis), pause, resume and settings (concurrency
 * cap, rate limit). A change is written to PostgreSQL (the truth), audited,
 * mirrored into the queue's Redis settings hash and announced on the control
 * stream so agents reload it at once (queue_mirror.h, queue.h). */
#include "http_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "queue.h"
#include "queue_mirror.h"
#include "taskdb.h"
#include "xalloc.h"

/* ------------------------------------------------------------------- reads */

/* One queue of a read: its settings object gets "stats" when Redis answers. */
struct qread {
    struct op *o;
    json_t *obj; /* borrowed from o->acc */
};

static json_t *level_json(long long lag, long long pending)
{
    return json_pack("{s:o,s:I}", "depth", lag >= 0 ? json_integer(lag) : json_null(), "in_flight",
                     (json_int_t)pending);
}

static void read_settled(struct op *o)
{
    if (--o->pending > 0)
        return;
    if (o->count) /* one queue */
        op_reply(o, 200, json_incref(json_array_get(o->acc, 0)));
    else
        op_reply(o, 200, json_pack("{s:O}", "queues", o->acc));
}

static void stats_done(void *arg, const char *err, const struct queue_stats *st)
{
    struct qread *r = arg;
    if (err[0]) {
        json_object_set_new(r->obj, "stats", json_null());
        json_object_set_new(r->obj, "stats_error", json_string(op_redis_why(err)));
    } else {
        long long depth = 0, in_flight = 0;
        json_t *levels = json_object();
        for (int l = 0; l < QUEUE_LEVELS; l++) {
            depth += st->lag[l] > 0 ? st->lag[l] : 0;
            in_flight += st->pending[l];
            json_object_set_new(levels, queue_level_name((enum queue_level)l), level_json(st->lag[l], st->pending[l]));
        }
        json_object_set_new(r->obj, "stats", json_pack("{s:I,s:I,s:I,s:I,s:o}", "depth", (json_int_t)depth,
                                                       "in_flight", (json_int_t)in_flight, "delayed",
                                                       (json_int_t)st->delayed, "dlq", (json_int_t)st->dlq,
                                                       "levels", levels));
    }
    struct op *o = r->o;
    free(r);
    read_settled(o);
}

/* Takes the reference to obj; its stats are asked of Redis. */
static void read_add(struct op *o, json_t *obj)
{
    json_array_append_new(o->acc, obj);
    struct qread *r = xmalloc(sizeof *r);
    *r = (struct qread){o, obj};
    o->pending++;
    if (queue_stats(o->q->api->rc, o->q->api->prefix, json_string_value(json_object_get(obj, "queue")), stats_done,
                    r) != 0)
        stats_done(r, QUEUE_DISCONNECTED, NULL);
}

static void read_rows(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct op *o = arg;
    if (!res || err[0]) {
        op_db_error(o, err);
        return;
    }
    o->acc = json_array();
    o->pending = 1; /* held while asking */
    int c_settings = taskdb_col(res, "settings");
    for (int i = 0; i < PQntuples(res); i++)
        read_add(o, json_loads(PQgetvalue(res, i, c_settings), 0, NULL));
    if (o->count && PQntuples(res) == 0) /* never set: the defaults */
        read_add(o, qmirror_default_json(o->queue));
    read_settled(o);
}

void queues_list(struct req *q, const struct route_args *a)
{
    (void)a;
    qmirror_select(q->api->pg, NULL, scope_sql_queues(q), read_rows, op_new(q, NULL));
}

void queues_get(struct req *q, const struct route_args *a)
{
    struct op *o = op_new(q, a->queue);
    o->count = 1; /* one queue: answer with its object */
    qmirror_select(q->api->pg, o->queue, NULL, read_rows, o);
}

/* ----------------------------------------------------------------- changes */

/* A change under way: o->found holds the new settings JSON once recorded. */
static void change_replied(struct op *o, int mirrored, int notified)
{
    json_object_set_new(o->found, "mirrored", json_boolean(mirrored));
    json_object_set_new(o->found, "notified", json_boolean(notified));
    if (!mirrored)
        json_object_set_new(o->found, "note", json_string("recorded in PostgreSQL; redis unavailable: the"
                                                          " reconciler mirrors it to the agents when it is back"));
    op_reply(o, 200, json_incref(o->found));
}

static void change_notified(void *arg, const char *err, const char *entry)
{
    (void)entry;
    struct op *o = arg;
    if (err[0])
        log_warn("queue %s: settings control message failed (%s)", o->queue, op_redis_why(err));
    change_replied(o, 1, !err[0]);
}

static void change_mirrored(void *arg, const char *err)
{
    struct op *o = arg;
    if (err[0]) {
        log_warn("queue %s: settings not mirrored to redis (%s); the reconciler will", o->queue, op_redis_why(err));
        change_replied(o, 0, 0);
    } else if (queue_control_settings(o->q->api->rc, o->q->api->prefix, o->queue, change_notified, o) != 0) {
        change_notified(o, QUEUE_DISCONNECTED, NULL);
    }
}

static void change_recorded(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct op *o = arg;
    if (!res || err[0] || PQntuples(res) != 1) {
        op_db_error(o, err[0] ? err : "no row returned");
        return;
    }
    struct queue_settings s;
    qmirror_parse(res, 0, &s);
    qmirror_metrics(o->queue, &s);
    o->found = json_loads(PQgetvalue(res, 0, taskdb_col(res, "settings")), 0, NULL);
    if (!o->found)
        o->found = qmirror_default_json(o->queue);
    req_audit_note(o->q, o->queue, json_deep_copy(o->found));
    if (queue_settings_write(o->q->api->rc, o->q->api->prefix, o->queue, &s, change_mirrored, o) != 0)
        change_mirrored(o, QUEUE_DISCONNECTED);
}

static void change(struct req *q, const char *queue, const char *action, const struct qmirror_change *c)
{
    struct op *o = op_new(q, queue);
    snprintf(o->arg, sizeof o->arg, "%s", action); /* the audit action */
    qmirror_update(q->api->pg, o->queue, c, q->actor, change_recorded, o);
}

void queues_pause(struct req *q, const struct route_args *a)
{
    struct qmirror_change c = {.set_paused = 1, .paused = 1};
    change(q, a->queue, "queue.pause", &c);
}

void queues_resume(struct req *q, const struct route_args *a)
{
    struct qmirror_change c = {.set_paused = 1, .paused = 0};
    change(q, a->queue, "queue.resume", &c);
}

#define CONCURRENCY_MAX 100000
#define RATE_N_MAX 1000000
#define RATE_PERIOD_MAX_S 86400

/* rate: {"n": 1..1000000, "period_s": > 0 up to 86400 (ms granularity), "per_key": bool} or null. */
static const char *parse_rate(const json_t *v, struct qmirror_change *c)
{
    c->set_rate = 1;
    if (json_is_null(v))
        return NULL;
    if (!json_is_object(v))
        return "rate: must be an object {\"n\": N, \"period_s\": S} or null";
    const char *k;
    json_t *f;
    json_object_foreach((json_t *)v, k, f) {
        if (strcmp(k, "n") == 0) {
            if (!json_is_integer(f) || json_integer_value(f) < 1 || json_integer_value(f) > RATE_N_MAX)
                return "rate.n: must be an integer from 1 to 1000000";
            c->rate_n = (long)json_integer_value(f);
        } else if (strcmp(k, "period_s") == 0) {
            double p = json_number_value(f);
            if (!json_is_number(f) || !(p >= 0.001 && p <= RATE_PERIOD_MAX_S))
                return "rate.period_s: must be a number from 0.001 to 86400";
            c->rate_period_ms = lround(p * 1000);
        } else if (strcmp(k, "per_key") == 0) {
            if (!json_is_boolean(f))
                return "rate.per_key: must be true or false";
            c->rate_per_key = json_is_true(f);
        } else {
            return "rate: unknown field (expected n, period_s, per_key)";
        }
    }
    if (!c->rate_n)
        return "rate.n: required";
    if (!c->rate_period_ms)
        return "rate.period_s: required";
    return NULL;
}

static const char *parse_settings(const json_t *body, struct qmirror_change *c)
{
    if (!json_is_object(body))
        return "body: must be a JSON object {\"concurrency\": N|null, \"rate\": {...}|null, \"paused\": bool}";
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)body, k, v) {
        if (strcmp(k, "concurrency") == 0) {
            c->set_concurrency = 1;
            if (json_is_null(v))
                continue;
            if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > CONCURRENCY_MAX)
                return "concurrency: must be an integer from 1 to 100000, or null for no cap";
            c->concurrency = (long)json_integer_value(v);
        } else if (strcmp(k, "rate") == 0) {
            const char *why = parse_rate(v, c);
            if (why)
                return why;
        } else if (strcmp(k, "paused") == 0) {
            if (!json_is_boolean(v))
                return "paused: must be true or false";
            c->set_paused = 1;
            c->paused = json_is_true(v);
        } else {
            return "unknown field (expected concurrency, rate, paused)";
        }
    }
    if (!c->set_concurrency && !c->set_rate && !c->set_paused)
        return "body: nothing to change (give concurrency, rate or paused)";
    return NULL;
}

void queues_settings(struct req *q, const struct route_args *a)
{
    json_t *body = req_body_json(q);
    if (!body)
        return;
    struct qmirror_change c = {0};
    const char *why = parse_settings(body, &c);
    if (why && strncmp(why, "unknown field", 13) == 0) {
        const char *k;
        json_t *v;
        char msg[160] = "";
        json_object_foreach(body, k, v) {
            if (strcmp(k, "concurrency") && strcmp(k, "rate") && strcmp(k, "paused")) {
                char buf[64];
                snprintf(msg, sizeof msg, "%s: unknown field (expected concurrency, rate, paused)",
                         spec_printable(k, strlen(k), buf));
                break;
            }
        }
        json_decref(body);
        reply_error(q, 400, msg);
        return;
    }
    json_decref(body);
    if (why) {
        reply_error(q, 400, why);
        return;
    }
    change(q, a->queue, "queue.settings", &c);
}
