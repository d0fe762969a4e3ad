/* queue_metrics: per-queue gauges on timers (see queue_metrics.h). A queue,
 * once tracked, stays tracked for the life of the process (the set only
 * grows, up to its cap), so a scrape always finds the same series. */
#include "queue_metrics.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "metrics.h"
#include "queue.h"
#include "taskdb.h"
#include "xalloc.h"

static const char *const live_states[] = {"queued", "running", "retrying"};
#define NLIVE 3

struct tracked {
    struct qmetrics *qm;
    char name[72];
    int asking; /* a stats script is under way */
    metric_t *length, *lag, *pending, *oldest, *waiting, *delayed, *dlq, *live[NLIVE], *dead;
};

struct qmetrics {
    struct event_base *base;
    rc_t *rc;
    pgc_t *pg;
    char *prefix;
    struct tracked *q;
    int n, max;
    struct event *ev_stats, *ev_discover;
    int discovering;
    struct tracked *last; /* the last queue noted: a batch is mostly one queue */
    metric_t *m_omitted, *m_errors, *m_pipelines;
};

static struct tracked *track(struct qmetrics *qm, const char *name)
{
    for (int i = 0; i < qm->n; i++)
        if (strcmp(qm->q[i].name, name) == 0)
            return &qm->q[i];
    if (qm->n == qm->max || strlen(name) >= sizeof qm->q[0].name)
        return NULL;
    struct tracked *t = &qm->q[qm->n++];
    memset(t, 0, sizeof *t);
    t->qm = qm;
    snprintf(t->name, sizeof t->name, "%s", name);
    char l[160];
    snprintf(l, sizeof l, "queue=\"%s\"", name);
    t->length = metric_gauge("devsys_queue_stream_length", l, "XLEN summed over the priority streams");
    t->lag = metric_gauge("devsys_queue_lag", l, "Entries not yet delivered to the consumer group (XINFO GROUPS lag)");
    t->pending = metric_gauge("devsys_queue_in_flight", l, "Entries delivered and not acked (XPENDING)");
    t->oldest = metric_gauge("devsys_queue_oldest_age_seconds", l,
                             "Age of the oldest entry pending or not yet delivered (0: none)");
    t->waiting = metric_gauge("devsys_queue_oldest_waiting_age_seconds", l,
                              "Age of the oldest entry not yet delivered to any agent (0: none)");
    t->delayed = metric_gauge("devsys_queue_delayed", l, "Retries waiting for their time (ZCARD delayed)");
    t->dlq = metric_gauge("devsys_queue_dlq", l, "Dead letters in the queue's DLQ (XLEN dlq)");
    for (int s = 0; s < NLIVE; s++) {
        snprintf(l, sizeof l, "queue=\"%s\",state=\"%s\"", name, live_states[s]);
        t->live[s] = metric_gauge("devsys_tasks_live", l, "Tasks in PostgreSQL by queue and live state");
    }
    snprintf(l, sizeof l, "queue=\"%s\"", name);
    t->dead = metric_gauge("devsys_tasks_dead", l, "Dead tasks in PostgreSQL whose dead letter is not purged");
    return t;
}

void qmetrics_note(qmetrics_t *qm, const char *queue)
{
    if (!qm || (qm->last && strcmp(qm->last->name, queue) == 0))
        return;
    struct tracked *t = track(qm, queue);
    if (t)
        qm->last = t;
}

/* ------------------------------------------------------------------ Redis */

static void stats_done(void *arg, const char *err, const struct queue_stats *st)
{
    struct tracked *t = arg;
    t->asking = 0;
    if (err[0]) {
        metric_add(t->qm->m_errors, 1);
        return;
    }
    long long len = 0, lag = 0, pending = 0, oldest = -1, waiting = -1;
    for (int l = 0; l < QUEUE_LEVELS; l++) {
        len += st->length[l];
        lag += st->lag[l] > 0 ? st->lag[l] : 0;
        pending += st->pending[l];
        if (st->oldest_ms[l] > oldest)
            oldest = st->oldest_ms[l];
        if (st->waiting_ms[l] > waiting)
            waiting = st->waiting_ms[l];
    }
    metric_set(t->length, (double)len);
    metric_set(t->lag, (double)lag);
    metric_set(t->pending, (double)pending);
    metric_set(t->oldest, oldest > 0 ? (double)oldest / 1000.0 : 0);
    metric_set(t->waiting, waiting > 0 ? (double)waiting / 1000.0 : 0);
    metric_set(t->delayed, (double)st->delayed);
    metric_set(t->dlq, (double)st->dlq);
}

static void stats_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct qmetrics *qm = arg;
    for (int i = 0; i < qm->n; i++) {
        struct tracked *t = &qm->q[i];
        if (t->asking) /* Redis slower than the period: skip, never pile up */
            continue;
        if (queue_stats(qm->rc, qm->prefix, t->name, stats_done, t) == 0)
            t->asking = 1;
    }
}

/* ------------------------------------------------------------- PostgreSQL */

/* Each part reaches its rows through a small index or table: tasks_live and
 * tasks_dlq (live and dead rows only), queue_settings, schedules, and the
 * open deployments (deployments_open). */
static const char discover_sql[] =
    "SELECT 'live' AS what, queue AS label, state, count(*) AS n FROM tasks"
    " WHERE state IN ('queued', 'running', 'retrying') GROUP BY queue, state"
    " UNION ALL SELECT 'dead', queue, 'dead', count(*) FROM tasks"
    " WHERE state = 'dead' AND dlq_purged_at IS NULL GROUP BY queue"
    " UNION ALL SELECT 'queue', queue, '', 0 FROM queue_settings"
    " UNION ALL SELECT 'schedules', '', CASE WHEN paused THEN 'paused' ELSE 'active' END, count(*)"
    " FROM schedules GROUP BY paused"
    " UNION ALL SELECT 'deployments', '', state, count(*) FROM deployments WHERE finished_at IS NULL"
    " GROUP BY state"
    " UNION ALL SELECT 'pipelines', '', 'running', count(DISTINCT pipeline_id) FROM tasks"
    " WHERE state IN ('queued', 'running', 'retrying') AND pipeline_id IS NOT NULL";

static void discovered(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct qmetrics *qm = arg;
    qm->discovering = 0;
    if (!res || err[0]) {
        metric_add(qm->m_errors, 1);
        return;
    }
    int c_what = taskdb_col(res, "what"), c_label = taskdb_col(res, "label"), c_state = taskdb_col(res, "state"),
        c_n = taskdb_col(res, "n");
    if (c_what < 0 || c_label < 0 || c_state < 0 || c_n < 0)
        return;
    for (int i = 0; i < qm->n; i++) { /* a state no row names has none */
        for (int s = 0; s < NLIVE; s++)
            metric_set(qm->q[i].live[s], 0);
        metric_set(qm->q[i].dead, 0);
    }
    static const char *const dstates[] = {"waiting", "holding"};
    for (size_t s = 0; s < 2; s++) {
        char l[64];
        snprintf(l, sizeof l, "state=\"%s\"", dstates[s]);
        metric_set(metric_gauge("devsys_deployments_open", l, "Deployments not finished, by state"), 0);
    }
    int omitted = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *what = PQgetvalue(res, i, c_what), *label = PQgetvalue(res, i, c_label),
                   *state = PQgetvalue(res, i, c_state);
        double n = strtod(PQgetvalue(res, i, c_n), NULL);
        if (!strcmp(what, "schedules") || !strcmp(what, "deployments")) {
            char l[64];
            if ((strcmp(state, "active") && strcmp(state, "paused") && strcmp(state, "waiting") &&
                 strcmp(state, "holding")))
                continue; /* labels only from known values */
            snprintf(l, sizeof l, "state=\"%s\"", state);
            metric_set(what[0] == 's' ? metric_gauge("devsys_schedules", l, "Schedules by state")
                                      : metric_gauge("devsys_deployments_open", l, "Deployments not finished, by state"),
                       n);
            continue;
        }
        if (!strcmp(what, "pipelines")) {
            metric_set(qm->m_pipelines, n);
            continue;
        }
        struct tracked *t = track(qm, label);
        if (!t) {
            omitted += !strcmp(what, "queue") || !strcmp(what, "dead") || !strcmp(state, "queued");
            continue;
        }
        if (!strcmp(what, "dead"))
            metric_set(t->dead, n);
        for (int s = 0; !strcmp(what, "live") && s < NLIVE; s++)
            if (!strcmp(state, live_states[s]))
                metric_set(t->live[s], n);
    }
    metric_set(qm->m_omitted, omitted);
}

static void discover_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct qmetrics *qm = arg;
    if (qm->discovering)
        return;
    qm->discovering = 1;
    pgc_query(qm->pg, discover_sql, 0, NULL, discovered, qm);
}

/* -------------------------------------------------------------- lifecycle */

qmetrics_t *qmetrics_new(struct event_base *base, rc_t *rc, pgc_t *pg, const char *prefix)
{
    struct qmetrics *qm = xcalloc(1, sizeof *qm);
    qm->base = base;
    qm->rc = rc;
    qm->pg = pg;
    qm->prefix = xstrdup(prefix);
    qm->max = (int)cfg_long("DEVSYS_QUEUE_METRICS_MAX", 64, 0, 10000);
    qm->q = xcalloc(qm->max ? (size_t)qm->max : 1, sizeof *qm->q);
    double stats_s = cfg_double("DEVSYS_QUEUE_METRICS_S", 5, 0.1, 3600);
    double discover_s = cfg_double("DEVSYS_QUEUE_METRICS_DISCOVER_S", 30, 0.1, 86400);
    qm->m_omitted = metric_gauge("devsys_queue_metrics_omitted", NULL,
                                 "Queues found but not tracked: past DEVSYS_QUEUE_METRICS_MAX");
    qm->m_errors = metric_counter("devsys_queue_metrics_errors_total", NULL,
                                  "Queue metric collections that failed (Redis or PostgreSQL unavailable)");
    qm->m_pipelines = metric_gauge("devsys_pipelines_running", NULL, "Pipelines with live tasks");
    metric_set(metric_gauge("devsys_queue_metrics_max", NULL, "At most this many queues get per-queue gauges"),
               qm->max);
    qm->ev_stats = event_new(base, -1, EV_PERSIST, stats_cb, qm);
    qm->ev_discover = event_new(base, -1, EV_PERSIST, discover_cb, qm);
    struct timeval st = {(time_t)stats_s, (suseconds_t)((stats_s - (double)(time_t)stats_s) * 1e6)};
    struct timeval dt = {(time_t)discover_s, (suseconds_t)((discover_s - (double)(time_t)discover_s) * 1e6)};
    event_add(qm->ev_stats, &st);
    event_add(qm->ev_discover, &dt);
    discover_cb(-1, 0, qm); /* at start: the gauges exist from the first scrape on */
    return qm;
}

void qmetrics_free(qmetrics_t *qm)
{
    if (!qm)
        return;
    event_free(qm->ev_stats);
    event_free(qm->ev_discover);
    free(qm->q);
    free(qm->prefix);
    free(qm);
}
