/* reconcile: the periodic pass that republishes from PostgreSQL what Redis has
 * lost (see reconcile.h). One pass at a time; each rule takes at most
 * RECONCILE_BATCH rows per pass, so a large backlog is worked off over passes. */
#include "reconcile.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "metrics.h"
#include "pgarr.h"
#include "pipelinedb.h"
#include "queue.h"
#include "queue_mirror.h"
#include "taskdb.h"
#include "xalloc.h"

#define RECONCILE_BATCH 1000
/* Redis and PostgreSQL clocks may differ; a publish this close to the
 * stream's first entry is not taken as lost. */
#define CLOCK_SLACK_MS 2000

/* The rules, their SQL and their reasons: taskdb.h (taskdb_republish_claim). */
enum rule { RULE_QUEUED = TASKDB_REPUBLISH_QUEUED, RULE_RETRYING = TASKDB_REPUBLISH_RETRYING,
            RULE_RUNNING = TASKDB_REPUBLISH_RUNNING, RULE_N = TASKDB_REPUBLISH_N };
static const char *const rule_name[RULE_N] = {"queued", "retrying", "running"};

struct dlq_cursor {
    char queue[72];
    char after[40]; /* last task id checked; "" = from the start */
};

struct reconcile {
    struct event_base *base;
    rc_t *rc;
    pgc_t *pg;
    char *prefix;
    char after_s[32]; /* DEVSYS_REPUBLISH_AFTER_S as an SQL parameter */
    struct event *tick;
    struct pass *pass; /* the pass in flight, or NULL */
    struct dlq_cursor *cursors;
    size_t ncursors;
    metric_t *m_republished[RULE_N], *m_restored, *m_passes, *m_skipped, *m_errors;
};

/* One pass; every outstanding callback holds a reference. */
struct pass {
    reconcile_t *r; /* NULL once reconcile_free ran: callbacks only release */
    size_t refs;
    long republished[RULE_N];
    long restored;
    long errors;
    long unsent; /* publishes and buries that failed (counted, logged once) */
};

/* One queue's share of a pass (the queued-tasks probe or the DLQ check). */
struct qwork {
    struct pass *p;
    char queue[72];
    enum queue_level level; /* the priority level whose stream is probed */
    int gone;            /* stream missing or empty */
    long long first_ms;  /* ms of the stream's first entry */
    int failed;
    long dead;           /* dead, not purged tasks of this queue */
    taskdb_rows_t *restored; /* task id, new DLQ entry id */
    size_t nbury;
};

/* A publish or bury in flight. */
struct sent {
    struct qwork *w; /* bury only */
    struct pass *p;
    enum rule rule;
    char id[40];
};

/* ------------------------------------------------------------------ passes */

static struct pass *pass_ref(struct pass *p)
{
    p->refs++;
    return p;
}

static void pass_unref(struct pass *p)
{
    if (--p->refs > 0)
        return;
    reconcile_t *r = p->r;
    if (r) {
        r->pass = NULL;
        metric_add(r->m_passes, 1);
        metric_add(r->m_restored, (double)p->restored);
        long total = p->restored;
        for (int i = 0; i < RULE_N; i++) {
            metric_add(r->m_republished[i], (double)p->republished[i]);
            total += p->republished[i];
        }
        metric_add(r->m_errors, (double)(p->errors + p->unsent));
        if (p->unsent)
            log_warn("reconciler: %ld tasks could not be written to redis; they are tried again after"
                     " DEVSYS_REPUBLISH_AFTER_S (%ss)", p->unsent, r->after_s);
        if (total)
            log_info("reconciler: republished %ld queued (stream entry gone), %ld retrying (overdue),"
                     " %ld running (lease expired); restored %ld dead letters to their DLQ",
                     p->republished[RULE_QUEUED], p->republished[RULE_RETRYING], p->republished[RULE_RUNNING],
                     p->restored);
    }
    free(p);
}

/* Is the pass still wanted (reconcile_free has not run)? */
static int pass_live(const struct pass *p)
{
    return p->r != NULL;
}

static int sql_failed(struct pass *p, PGresult *res, const char *err, const char *what)
{
    if (res && !err[0])
        return 0;
    if (pass_live(p)) {
        p->errors++;
        log_warn("reconciler: %s: %s", what, err[0] ? err : "connection lost");
    }
    return 1;
}

/* err as a queue operation's callback gets it. */
static int redis_failed(struct pass *p, const char *err, const char *what)
{
    if (!err[0])
        return 0;
    if (pass_live(p)) {
        p->errors++;
        log_warn("reconciler: %s: %s", what, queue_disconnected(err) ? "redis connection lost" : err);
    }
    return 1;
}

static struct qwork *qwork_new(struct pass *p, const char *queue)
{
    struct qwork *w = xcalloc(1, sizeof *w);
    w->p = pass_ref(p);
    snprintf(w->queue, sizeof w->queue, "%s", queue);
    return w;
}

static void qwork_free(struct qwork *w)
{
    taskdb_rows_free(w->restored);
    pass_unref(w->p);
    free(w);
}

/* -------------------------------------------------------------- republish */

static void publish_done(void *arg, const char *err, const char *entry)
{
    (void)entry;
    struct sent *s = arg;
    if (!err[0])
        s->p->republished[s->rule]++;
    else
        s->p->unsent++;
    pass_unref(s->p);
    free(s);
}

/* published_at was set by the statement that returned the rows, so no
 * other manager publishes them too. */
static void publish_rows(struct pass *p, enum rule rule, PGresult *res)
{
    int c_id = taskdb_col(res, "id"), c_queue = taskdb_col(res, "queue"), c_kind = taskdb_col(res, "kind"),
        c_attempt = taskdb_col(res, "attempt"), c_spec = taskdb_col(res, "spec");
    for (int i = 0; i < PQntuples(res) && pass_live(p); i++) {
        struct sent *s = xcalloc(1, sizeof *s);
        s->p = pass_ref(p);
        s->rule = rule;
        snprintf(s->id, sizeof s->id, "%s", PQgetvalue(res, i, c_id));
        json_t *spec = json_loads(PQgetvalue(res, i, c_spec), 0, NULL);
        if (!spec || queue_publish(p->r->rc, p->r->prefix, PQgetvalue(res, i, c_queue), s->id,
                                   PQgetvalue(res, i, c_kind), strtol(PQgetvalue(res, i, c_attempt), NULL, 10), 0,
                                   spec, publish_done, s) != 0)
            publish_done(s, QUEUE_DISCONNECTED, NULL);
        json_decref(spec);
    }
}

struct claim_ctx {
    struct pass *p;
    enum rule rule;
};

static void claimed(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct claim_ctx *c = arg;
    if (!sql_failed(c->p, res, err, rule_name[c->rule]))
        publish_rows(c->p, c->rule, res);
    pass_unref(c->p);
    free(c);
}

static void claim(struct pass *p, enum rule rule, const char *queue, enum queue_level level, const char *first_ms)
{
    struct claim_ctx *c = xmalloc(sizeof *c);
    *c = (struct claim_ctx){pass_ref(p), rule};
    static const char *const sign[QUEUE_LEVELS] = {[QUEUE_HIGH] = "1", [QUEUE_NORMAL] = "0", [QUEUE_LOW] = "-1"};
    taskdb_republish_claim(p->r->pg, (enum taskdb_republish)rule, p->r->after_s, queue, sign[level], first_ms,
                           claimed, c);
}

/* ------------------------------------------- probe: is a task's entry gone?
 * Entries only leave a stream in id order (XTRIM MINID; never XDEL), so a
 * task published before the stream's first entry has lost its entry.
 *
 * A missing or empty stream has lost every entry. A stream without the
 * agents group has not: agents create the group at id 0 (queue_ensure_group),
 * so they still receive every entry; taking it as lost would publish each
 * queued task again every interval while no agent has run yet. */
static void probe_decide(struct qwork *w)
{
    if (!w->failed && pass_live(w->p)) {
        char first[32];
        snprintf(first, sizeof first, "%lld", w->first_ms - CLOCK_SLACK_MS);
        for (int rule = 0; rule < RULE_N; rule++)
            claim(w->p, (enum rule)rule, w->queue, w->level, w->gone ? NULL : first);
    }
    qwork_free(w);
}

/* first: the stream's first entry id, NULL when it is missing or empty. */
static void probe_first(void *arg, const char *err, const char *first)
{
    struct qwork *w = arg;
    if (redis_failed(w->p, err, "XRANGE"))
        w->failed = 1;
    else if (!first)
        w->gone = 1;
    else
        w->first_ms = strtoll(first, NULL, 10);
    probe_decide(w);
}

static void due_queues(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct pass *p = arg;
    if (!sql_failed(p, res, err, "queues with due tasks") && pass_live(p)) {
        int c_queue = taskdb_col(res, "queue");
        /* each priority level is a stream of its own (queue.h), probed apart */
        for (int i = 0; i < PQntuples(res); i++)
            for (int l = 0; l < QUEUE_LEVELS; l++) {
                struct qwork *w = qwork_new(p, PQgetvalue(res, i, c_queue));
                w->level = (enum queue_level)l;
                if (queue_stream_first_at(p->r->rc, p->r->prefix, w->queue, w->level, probe_first, w) != 0)
                    probe_first(w, QUEUE_DISCONNECTED, NULL);
            }
    }
    pass_unref(p);
}

/* ------------------------------------------- dead letters missing from DLQ */

static struct dlq_cursor *cursor_for(reconcile_t *r, const char *queue)
{
    for (size_t i = 0; i < r->ncursors; i++)
        if (strcmp(r->cursors[i].queue, queue) == 0)
            return &r->cursors[i];
    r->cursors = xrealloc(r->cursors, (r->ncursors + 1) * sizeof *r->cursors);
    struct dlq_cursor *c = &r->cursors[r->ncursors++];
    snprintf(c->queue, sizeof c->queue, "%s", queue);
    c->after[0] = '\0';
    return c;
}

static void restored_recorded(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct pass *p = arg;
    sql_failed(p, res, err, "recording restored DLQ entries");
    pass_unref(p);
}

/* dlq_entry: the letter's entry id, NULL when it was not written (or for
 * the hold of dead_claimed, whose id is ""). */
static void bury_done(void *arg, const char *err, const char *dlq_entry)
{
    (void)err;
    struct sent *s = arg;
    struct qwork *w = s->w;
    if (dlq_entry) {
        taskdb_dlq_entry_add(w->restored, s->id, dlq_entry);
        s->p->restored++;
    } else if (s->id[0]) {
        s->p->unsent++;
    }
    pass_unref(s->p);
    free(s);
    if (--w->nbury > 0)
        return;
    if (taskdb_rows_count(w->restored) && pass_live(w->p)) {
        taskdb_dlq_entries(w->p->r->pg, w->restored, 0, restored_recorded, pass_ref(w->p));
        w->restored = NULL;
    }
    qwork_free(w);
}

static void dead_claimed(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct qwork *w = arg;
    if (sql_failed(w->p, res, err, "claiming dead tasks") || !pass_live(w->p) || PQntuples(res) == 0) {
        qwork_free(w);
        return;
    }
    w->restored = taskdb_rows_new();
    w->nbury = 1; /* held while queueing */
    int c_id = taskdb_col(res, "id"), c_kind = taskdb_col(res, "kind"), c_queue = taskdb_col(res, "queue"),
        c_attempts = taskdb_col(res, "attempts"), c_error = taskdb_col(res, "error"),
        c_failed_at = taskdb_col(res, "failed_at"), c_agent = taskdb_col(res, "agent"),
        c_source = taskdb_col(res, "source"), c_spec = taskdb_col(res, "spec");
    for (int i = 0; i < PQntuples(res); i++) {
        /* the DLQ holds compact JSON, as the agents write it */
        const char *stored = PQgetvalue(res, i, c_spec);
        json_t *spec = json_loads(stored, 0, NULL);
        char *text = spec ? json_dumps(spec, JSON_COMPACT) : xstrdup(stored);
        json_decref(spec);
        struct dead_letter dl = {
            .id = PQgetvalue(res, i, c_id),
            .kind = PQgetvalue(res, i, c_kind),
            .queue = PQgetvalue(res, i, c_queue),
            .attempts = PQgetvalue(res, i, c_attempts),
            .error = PQgetvalue(res, i, c_error),
            .failed_at = PQgetvalue(res, i, c_failed_at),
            .agent = PQgetvalue(res, i, c_agent),
            .source = PQgetvalue(res, i, c_source),
            .spec = text,
        };
        struct sent *s = xcalloc(1, sizeof *s);
        s->w = w;
        s->p = pass_ref(w->p);
        snprintf(s->id, sizeof s->id, "%s", dl.id);
        w->nbury++;
        if (queue_bury(w->p->r->rc, w->p->r->prefix, w->queue, NULL, &dl, bury_done, s) != 0)
            bury_done(s, QUEUE_DISCONNECTED, NULL);
        free(text);
    }
    struct sent *hold = xcalloc(1, sizeof *hold);
    hold->w = w;
    hold->p = pass_ref(w->p);
    bury_done(hold, "", NULL);
}

/* ids: the tasks whose recorded entry is not in the DLQ. */
static void dead_absent(void *arg, const char *err, const char *const *ids_absent, size_t n)
{
    struct qwork *w = arg;
    if (redis_failed(w->p, err, "DLQ check") || n == 0 || !pass_live(w->p)) {
        qwork_free(w);
        return;
    }
    pgarr_t *a = pgarr_new();
    for (size_t i = 0; i < n; i++)
        pgarr_add(a, ids_absent[i]);
    char *ids = pgarr_finish(a);
    taskdb_dead_claim(w->p->r->pg, ids, w->p->r->after_s, dead_claimed, w);
    free(ids);
}

static void dead_candidates(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct qwork *w = arg;
    if (sql_failed(w->p, res, err, "dead tasks") || !pass_live(w->p)) {
        qwork_free(w);
        return;
    }
    int rows = PQntuples(res);
    struct dlq_cursor *c = cursor_for(w->p->r, w->queue);
    /* a short page means the end: the next pass starts over */
    snprintf(c->after, sizeof c->after, "%s", rows == RECONCILE_BATCH ? PQgetvalue(res, rows - 1, 0) : "");
    if (rows == 0) {
        qwork_free(w);
        return;
    }
    const char **pairs = xmalloc((size_t)(2 * rows) * sizeof *pairs);
    for (int i = 0; i < rows; i++) {
        pairs[2 * i] = PQgetvalue(res, i, 0);
        pairs[2 * i + 1] = PQgetvalue(res, i, 1);
    }
    if (queue_dlq_absent(w->p->r->rc, w->p->r->prefix, w->queue, pairs, (size_t)rows, dead_absent, w) != 0)
        dead_absent(w, QUEUE_DISCONNECTED, NULL, 0);
    free(pairs);
}

static void dlq_length(void *arg, const char *err, long long len)
{
    struct qwork *w = arg;
    if (redis_failed(w->p, err, "XLEN") || !pass_live(w->p) || len >= w->dead) {
        qwork_free(w);
        return;
    }
    /* Fewer entries than dead tasks: check a page of them. A task with no
     * recorded entry gets the interval to record it (its agent may be
     * between the bury and the UPDATE) before it counts as missing. */
    struct dlq_cursor *c = cursor_for(w->p->r, w->queue);
    const char *params[3] = {w->queue, c->after[0] ? c->after : NULL, w->p->r->after_s};
    pgc_query(w->p->r->pg,
              "SELECT id, coalesce(dlq_entry, '') FROM tasks WHERE state = 'dead' AND dlq_purged_at IS NULL"
              "   AND queue = $1 AND ($2::uuid IS NULL OR id > $2::uuid)"
              "   AND (dlq_entry IS NOT NULL OR coalesce(finished_at, created_at)"
              "        < now() - $3::float8 * interval '1 second')"
              "   AND coalesce(published_at, created_at) < now() - $3::float8 * interval '1 second'"
              " ORDER BY id LIMIT 1000",
              3, params, dead_candidates, w);
}

static void dead_queues(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct pass *p = arg;
    if (!sql_failed(p, res, err, "dead tasks per queue") && pass_live(p)) {
        for (int i = 0; i < PQntuples(res); i++) {
            struct qwork *w = qwork_new(p, PQgetvalue(res, i, 0));
            w->dead = strtol(PQgetvalue(res, i, 1), NULL, 10);
            if (queue_dlq_len(p->r->rc, p->r->prefix, w->queue, dlq_length, w) != 0)
                dlq_length(w, QUEUE_DISCONNECTED, 0);
        }
    }
    pass_unref(p);
}

/* -------------------------------------------------------------------- tick */

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    reconcile_t *r = arg;
    if (r->pass) {
        metric_add(r->m_skipped, 1);
        log_debug("reconciler: previous pass still running, tick skipped");
        return;
    }
    /* Nothing can be republished without Redis; the clients log outages. */
    if (!rc_connected(r->rc) || !pgc_ready(r->pg))
        return;
    struct pass *p = xcalloc(1, sizeof *p);
    p->r = r;
    p->refs = 1;
    r->pass = p;
    taskdb_republish_queues(r->pg, r->after_s, due_queues, pass_ref(p));
    pgc_query(r->pg,
              "SELECT queue, count(*) FROM tasks WHERE state = 'dead' AND dlq_purged_at IS NULL GROUP BY queue",
              0, NULL, dead_queues, pass_ref(p));
    qmirror_all(r->pg, r->rc, r->prefix); /* queue settings into Redis again: a flush heals */
    taskdb_unique_sweep(r->pg);
    pipelinedb_sweep(r->pg, r->rc, r->prefix); /* approval timeouts, superseded pipelines */
    pass_unref(p);
}

reconcile_t *reconcile_new(struct event_base *base, rc_t *rc, pgc_t *pg, const char *prefix)
{
    reconcile_t *r = xcalloc(1, sizeof *r);
    r->base = base;
    r->rc = rc;
    r->pg = pg;
    r->prefix = xstrdup(prefix);
    double period = cfg_double("DEVSYS_RECONCILE_S", 5, 0, 86400);
    snprintf(r->after_s, sizeof r->after_s, "%g", cfg_double("DEVSYS_REPUBLISH_AFTER_S", 30, 0, 86400 * 7));
    for (int i = 0; i < RULE_N; i++) {
        char labels[32];
        snprintf(labels, sizeof labels, "reason=\"%s\"", rule_name[i]);
        r->m_republished[i] = metric_counter("devsys_reconciler_republished_total", labels,
                                             "Tasks the reconciler published again, by the state they were in");
    }
    r->m_restored = metric_counter("devsys_reconciler_dlq_restored_total", NULL,
                                   "Dead letters the reconciler put back into their DLQ stream");
    r->m_passes = metric_counter("devsys_reconciler_passes_total", NULL, "Reconciler passes completed");
    r->m_skipped = metric_counter("devsys_reconciler_passes_skipped_total", NULL,
                                  "Reconciler ticks skipped because the previous pass was still running");
    r->m_errors = metric_counter("devsys_reconciler_errors_total", NULL,
                                 "Reconciler statements or Redis commands that failed");
    if (period > 0) {
        struct timeval tv = {(time_t)period, (suseconds_t)((period - (double)(time_t)period) * 1e6)};
        r->tick = event_new(base, -1, EV_PERSIST, on_tick, r);
        event_add(r->tick, &tv);
        log_info("reconciler: every %gs, republishing after %ss", period, r->after_s);
    } else {
        log_info("reconciler: off (DEVSYS_RECONCILE_S=0)");
    }
    return r;
}

void reconcile_free(reconcile_t *r)
{
    if (!r)
        return;
    if (r->tick)
        event_free(r->tick);
    if (r->pass)
        r->pass->r = NULL;
    free(r->cursors);
    free(r->prefix);
    free(r);
}
