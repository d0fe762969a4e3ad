/* queue_mirror: queue_settings statements and their mirror into Redis and
 * /metrics (see queue_mirror.h). */
#include "queue_mirror.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "taskdb.h"
#include "xalloc.h"

#define QMIRROR_COLS                                                                                         \
    " queue, paused::int AS paused, coalesce(concurrency, 0) AS concurrency, coalesce(rate_n, 0) AS rate_n," \
    " coalesce(rate_period_ms, 0) AS rate_period_ms, rate_per_key::int AS rate_per_key,"                    \
    " (extract(epoch FROM updated_at) * 1000)::bigint AS updated_ms,"                                        \
    " jsonb_build_object('queue', queue, 'paused', paused, 'concurrency', concurrency, 'rate',"             \
    "  CASE WHEN rate_n IS NOT NULL THEN jsonb_build_object('n', rate_n, 'period_s',"                       \
    "   rate_period_ms / 1000.0, 'per_key', rate_per_key) END,"                                            \
    "  'updated_at', updated_at, 'updated_by', updated_by)::text AS settings"

void qmirror_select(pgc_t *pg, const char *queue, const char *scope, pgc_result_fn *fn, void *arg)
{
    const char *p[2] = {queue, scope};
    pgc_query(pg, "SELECT" QMIRROR_COLS " FROM queue_settings WHERE ($1::text IS NULL OR queue = $1)"
                  " AND ($2::text[] IS NULL OR queue = ANY($2::text[])) ORDER BY queue LIMIT 1000",
              2, p, fn, arg);
}

void qmirror_update(pgc_t *pg, const char *queue, const struct qmirror_change *c, const char *actor,
                    pgc_result_fn *fn, void *arg)
{
    char conc[24], rn[24], rp[24];
    snprintf(conc, sizeof conc, "%ld", c->concurrency);
    snprintf(rn, sizeof rn, "%ld", c->rate_n);
    snprintf(rp, sizeof rp, "%ld", c->rate_period_ms);
    const char *p[9] = {queue,
                        c->set_paused ? (c->paused ? "true" : "false") : NULL,
                        c->set_concurrency ? "true" : "false",
                        c->set_concurrency && c->concurrency > 0 ? conc : NULL,
                        c->set_rate ? "true" : "false",
                        c->set_rate && c->rate_n > 0 ? rn : NULL,
                        c->set_rate && c->rate_n > 0 ? rp : NULL,
                        c->set_rate && c->rate_n > 0 && c->rate_per_key ? "true" : "false",
                        actor};
    pgc_query(pg,
              "INSERT INTO queue_settings AS s (queue, paused, concurrency, rate_n, rate_period_ms, rate_per_key,"
              "  updated_by) VALUES ($1, coalesce($2::bool, false), $4::int, $6::int, $7::int, $8::bool, $9)"
              " ON CONFLICT (queue) DO UPDATE SET paused = coalesce($2::bool, s.paused),"
              "  concurrency = CASE WHEN $3::bool THEN $4::int ELSE s.concurrency END,"
              "  rate_n = CASE WHEN $5::bool THEN $6::int ELSE s.rate_n END,"
              "  rate_period_ms = CASE WHEN $5::bool THEN $7::int ELSE s.rate_period_ms END,"
              "  rate_per_key = CASE WHEN $5::bool THEN $8::bool ELSE s.rate_per_key END,"
              "  updated_at = now(), updated_by = $9"
              " RETURNING" QMIRROR_COLS,
              9, p, fn, arg);
}

void qmirror_parse(const PGresult *res, int i, struct queue_settings *s)
{
    memset(s, 0, sizeof *s);
    s->paused = strcmp(PQgetvalue(res, i, taskdb_col(res, "paused")), "1") == 0;
    s->concurrency = strtol(PQgetvalue(res, i, taskdb_col(res, "concurrency")), NULL, 10);
    s->rate_n = strtol(PQgetvalue(res, i, taskdb_col(res, "rate_n")), NULL, 10);
    s->rate_period_ms = strtol(PQgetvalue(res, i, taskdb_col(res, "rate_period_ms")), NULL, 10);
    s->rate_per_key = strcmp(PQgetvalue(res, i, taskdb_col(res, "rate_per_key")), "1") == 0;
    s->updated_at_ms = strtoll(PQgetvalue(res, i, taskdb_col(res, "updated_ms")), NULL, 10);
}

json_t *qmirror_default_json(const char *queue)
{
    return json_pack("{s:s,s:b,s:n,s:n,s:n,s:n}", "queue", queue, "paused", 0, "concurrency", "rate", "updated_at",
                     "updated_by");
}

void qmirror_metrics(const char *queue, const struct queue_settings *s)
{
    char labels[96];
    snprintf(labels, sizeof labels, "queue=\"%s\"", queue); /* queue names have no quote (spec_queue_name_ok) */
    metric_set(metric_gauge("devsys_queue_paused", labels, "1 while the queue is paused (agents take no new work)"),
               s->paused ? 1 : 0);
    metric_set(metric_gauge("devsys_queue_concurrency_limit", labels,
                            "Cap on the queue's tasks running at once across agents (0: none)"),
               (double)s->concurrency);
    metric_set(metric_gauge("devsys_queue_rate_limit", labels,
                            "The queue's rate limit in task starts per second (0: none)"),
               s->rate_n && s->rate_period_ms ? (double)s->rate_n * 1000.0 / (double)s->rate_period_ms : 0);
}

struct mirror_pass {
    rc_t *rc;
    char *prefix;
};

static void mirror_written(void *arg, const char *err)
{
    (void)arg;
    if (err[0] && !queue_disconnected(err))
        log_warn("queue settings mirror: %s", err);
}

static void mirror_rows(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct mirror_pass *m = arg;
    if (!res || err[0]) {
        log_warn("queue settings mirror: %s", err[0] ? err : "connection lost");
    } else {
        int c_queue = taskdb_col(res, "queue");
        for (int i = 0; i < PQntuples(res); i++) {
            struct queue_settings s;
            qmirror_parse(res, i, &s);
            qmirror_metrics(PQgetvalue(res, i, c_queue), &s);
            queue_settings_write(m->rc, m->prefix, PQgetvalue(res, i, c_queue), &s, mirror_written, NULL);
        }
    }
    free(m->prefix);
    free(m);
}

/* The rc outlives the pass: both belong to the manager, freed after the loop. */
void qmirror_all(pgc_t *pg, rc_t *rc, const char *prefix)
{
    struct mirror_pass *m = xmalloc(sizeof *m);
    m->rc = rc;
    m->prefix = xstrdup(prefix);
    qmirror_select(pg, NULL, NULL, mirror_rows, m);
}
