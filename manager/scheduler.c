/* scheduler: one pass reads the due schedules (scheduledb_due), walks each
 * one's ticks from its next_due_at to now (cron_walk), keeps those its
 * catch-up policy fires, inserts their tasks in the statement that moves
 * next_due_at (taskdb_schedule_fire), and publishes the tasks created. The
 * next pass comes at the earliest next_due_at, at most a second later. */
#include "scheduler.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "config.h"
#include "cron.h"
#include "log.h"
#include "metrics.h"
#include "pgarr.h"
#include "queue.h"
#include "scheduledb.h"
#include "spec.h"
#include "taskdb.h"
#include "uuid.h"
#include "xalloc.h"

#define DUE_BATCH 100     /* schedules one pass fires */
#define WAKE_MAX_S 1.0    /* a schedule added elsewhere is seen within this */
#define AFTER_WORK_S 0.05 /* the pass after one that fired: next_due_at moved */

struct scheduler {
    struct event_base *base;
    rc_t *rc;
    pgc_t *pg;
    char *prefix;
    struct event *timer;
    struct pass *pass; /* in flight, or NULL */
    time_t warned;     /* when a failure was last logged (one line per 10 s) */
    metric_t *m_fired, *m_missed, *m_errors, *m_lost;
};

/* One pass; lives until its last statement and publish answered. */
struct pass {
    scheduler_t *s; /* NULL once scheduler_free ran: callbacks only release */
    int refs;
    int worked, errors, more;
    double now, wake; /* wake < 0: no unpaused schedule */
};

/* One schedule's fire, then the publishes of its tasks. */
struct fire {
    struct pass *p;
    spec_t *spec;
    char id[37];
    char name[SCHEDULE_NAME_MAX + 1];
    long missed;
    int refs;
};

static void pass_release(struct pass *p);

/* Counts a failure; logs it unless one was logged in the last 10 s (a
 * PostgreSQL outage fails every pass, once a second). */
static void failure(struct pass *p, const char *what, const char *name, const char *err)
{
    scheduler_t *s = p->s;
    p->errors++;
    metric_add(s->m_errors, 1);
    time_t now = time(NULL);
    if (now - s->warned < 10)
        return;
    s->warned = now;
    log_warn("scheduler: %s%s%s: %s", what, name ? " " : "", name ? name : "", err && err[0] ? err : "connection lost");
}

static void fire_release(struct fire *f)
{
    if (--f->refs > 0)
        return;
    struct pass *p = f->p;
    spec_free(f->spec);
    free(f);
    pass_release(p);
}

/* ----------------------------------------------------------------- policy */

int scheduler_catch_up(const char *policy, const long long *out, int n, long long now, int *first)
{
    *first = n > 0 ? n - 1 : 0;
    if (n <= 0)
        return 0;
    if (strcmp(policy, "all") == 0) {
        *first = 0;
        return n;
    }
    if (strcmp(policy, "skip") == 0)
        return now - out[n - 1] <= SCHEDULE_SKIP_GRACE_S ? 1 : 0;
    return 1; /* once */
}

/* ---------------------------------------------------------------- publish */

struct sent {
    struct fire *f;
    char id[37];
};

static void unpublished_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    (void)res;
    (void)arg;
    if (err[0])
        log_error("scheduler: could not mark a task unpublished: %s", err);
}

static void published(void *arg, const char *err, const char *entry)
{
    (void)entry;
    struct sent *x = arg;
    scheduler_t *s = x->f->p->s;
    if (err[0] && s) {
        log_warn("scheduler: publish of %s failed (%s); the reconciler will republish it", x->id, err);
        taskdb_mark_unpublished(s->pg, x->id, unpublished_done, NULL);
    }
    fire_release(x->f);
    free(x);
}

static void fired(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct fire *f = arg;
    scheduler_t *s = f->p->s;
    if (!s) {
        fire_release(f);
        return;
    }
    if (!res || err[0]) {
        failure(f->p, "firing schedule", f->name, err);
        fire_release(f);
        return;
    }
    int rows = PQntuples(res);
    if (rows == 0) { /* another manager fired it first */
        metric_add(s->m_lost, 1);
        fire_release(f);
        return;
    }
    f->p->worked = 1;
    metric_add(s->m_fired, 1);
    metric_add(s->m_missed, (double)f->missed);
    int c_id = taskdb_col(res, "id"), c_created = taskdb_col(res, "created");
    struct timeval tv;
    gettimeofday(&tv, NULL);
    long long now_ms = (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
    int made = 0;
    const char *first = "-";
    for (int i = 0; i < rows; i++) {
        const char *id = PQgetvalue(res, i, c_id);
        if (PQgetisnull(res, i, c_id) || PQgetvalue(res, i, c_created)[0] != 't')
            continue; /* the holder of the spec's unique key answered: no new task */
        if (made++ == 0)
            first = id;
        struct sent *x = xcalloc(1, sizeof *x);
        x->f = f;
        snprintf(x->id, sizeof x->id, "%s", id);
        f->refs++;
        if (queue_publish(s->rc, s->prefix, f->spec->queue, id, f->spec->kind, 0, now_ms, f->spec->json, published,
                          x) != 0) {
            log_warn("scheduler: redis not connected; task %s stays queued in PostgreSQL", id);
            taskdb_mark_unpublished(s->pg, id, unpublished_done, NULL);
            f->refs--;
            free(x);
        }
    }
    log_info("schedule %s: %d tick%s fired, %d new task%s (first %s), %ld missed tick%s left out", f->name, rows,
             rows == 1 ? "" : "s", made, made == 1 ? "" : "s", first, f->missed, f->missed == 1 ? "" : "s");
    fire_release(f);
}

static void advanced(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct fire *f = arg;
    scheduler_t *s = f->p->s;
    if (s && (!res || err[0])) {
        failure(f->p, "advancing schedule", f->name, err);
    } else if (s && PQntuples(res) > 0) {
        f->p->worked = 1;
        metric_add(s->m_missed, (double)f->missed);
        if (f->missed)
            log_info("schedule %s: %ld missed ticks skipped (catch_up skip)", f->name, f->missed);
    }
    fire_release(f);
}

/* ------------------------------------------------------------------- pass */

/* Fires row i of the due read. */
static void fire_one(struct pass *p, const PGresult *res, int i)
{
    scheduler_t *s = p->s;
    const char *id = PQgetvalue(res, i, PQfnumber(res, "id")), *name = PQgetvalue(res, i, PQfnumber(res, "name"));
    const char *spec_text = PQgetvalue(res, i, PQfnumber(res, "spec"));
    const char *policy = PQgetvalue(res, i, PQfnumber(res, "catch_up"));
    long long due = strtoll(PQgetvalue(res, i, PQfnumber(res, "due")), NULL, 10);
    long long now = (long long)p->now;
    char err[SPEC_ERR_MAX];
    cron_t *c = cron_parse(PQgetvalue(res, i, PQfnumber(res, "cron")), PQgetvalue(res, i, PQfnumber(res, "tz")),
                           err, sizeof err);
    if (!c) { /* e.g. this host's tzdata lacks the zone: another manager may fire it */
        failure(p, "this host cannot compute schedule", name, err);
        return;
    }
    time_t ticks[SCHEDULE_CATCH_UP_MAX], next;
    long count;
    int truncated, first;
    int n = cron_walk(c, (time_t)due, (time_t)now, ticks, SCHEDULE_CATCH_UP_MAX, &count, &truncated, &next);
    cron_free(c);
    long long kept[SCHEDULE_CATCH_UP_MAX];
    for (int k = 0; k < n; k++)
        kept[k] = ticks[k];
    int m = scheduler_catch_up(policy, kept, n, now, &first);
    struct fire *f = xcalloc(1, sizeof *f);
    f->p = p;
    f->refs = 1;
    f->missed = count - m;
    snprintf(f->id, sizeof f->id, "%s", id);
    snprintf(f->name, sizeof f->name, "%s", name);
    p->refs++;
    if (m > 0 && !(f->spec = spec_parse(spec_text, strlen(spec_text), err, sizeof err))) {
        log_warn("scheduler: schedule %s: its spec no longer validates (%s); tick skipped", name, err);
        m = 0;
        f->missed = count;
    }
    if (m == 0) {
        scheduledb_advance(s->pg, id, due, (long long)next, advanced, f);
        return;
    }
    taskdb_rows_t *rows = taskdb_rows_new();
    pgarr_t *arr = pgarr_new();
    const spec_t *sp = f->spec;
    for (int k = first; k < first + m; k++) {
        char tid[37], ikey[96];
        uuid_v7(tid);
        snprintf(ikey, sizeof ikey, "schedule:%s:%lld", id, kept[k]);
        taskdb_submit_add(rows, tid, sp->queue, sp->kind, spec_text, sp->retry.max_attempts, sp->priority, ikey,
                          sp->unique_key, sp->unique_for_s);
        pgarr_add_long(arr, kept[k]);
    }
    char *tick_arr = pgarr_finish(arr);
    struct taskdb_tick t = {.schedule_id = id, .ticks = tick_arr, .due = due, .next = next, .missed = f->missed};
    taskdb_schedule_fire(s->pg, rows, &t, fired, f);
    free(tick_arr);
}

static void arm(scheduler_t *s, double secs)
{
    struct timeval tv = {(time_t)secs, (suseconds_t)((secs - (double)(time_t)secs) * 1e6)};
    evtimer_add(s->timer, &tv);
}

static void pass_release(struct pass *p)
{
    if (--p->refs > 0)
        return;
    scheduler_t *s = p->s;
    if (s) {
        double d = WAKE_MAX_S;
        if (p->more)
            d = 0;
        else if (p->worked)
            d = AFTER_WORK_S;
        else if (!p->errors && p->wake >= 0 && p->wake - p->now < WAKE_MAX_S)
            d = p->wake - p->now + 0.005 > 0.005 ? p->wake - p->now + 0.005 : 0.005;
        s->pass = NULL;
        arm(s, d);
    }
    free(p);
}

static void due_read(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct pass *p = arg;
    scheduler_t *s = p->s;
    if (s && (!res || err[0])) {
        failure(p, "reading due schedules", NULL, err);
    } else if (s && PQntuples(res) > 0) {
        int c_id = PQfnumber(res, "id"), c_wake = PQfnumber(res, "wake");
        p->now = strtod(PQgetvalue(res, 0, PQfnumber(res, "now")), NULL);
        p->wake = PQgetisnull(res, 0, c_wake) ? -1 : strtod(PQgetvalue(res, 0, c_wake), NULL);
        int rows = PQntuples(res);
        p->more = rows >= DUE_BATCH;
        for (int i = 0; i < rows; i++)
            if (!PQgetisnull(res, i, c_id))
                fire_one(p, res, i);
    }
    pass_release(p);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    scheduler_t *s = arg;
    if (s->pass)
        return;
    struct pass *p = xcalloc(1, sizeof *p);
    p->s = s;
    p->refs = 1;
    p->wake = -1;
    s->pass = p;
    scheduledb_due(s->pg, DUE_BATCH, due_read, p);
}

scheduler_t *scheduler_new(struct event_base *base, rc_t *rc, pgc_t *pg, const char *prefix)
{
    if (cfg_long("DEVSYS_SCHEDULES", 1, 0, 1) == 0) {
        log_info("DEVSYS_SCHEDULES=0: this manager fires no schedules");
        return NULL;
    }
    scheduler_t *s = xcalloc(1, sizeof *s);
    s->base = base;
    s->rc = rc;
    s->pg = pg;
    s->prefix = xstrdup(prefix);
    s->timer = evtimer_new(base, on_timer, s);
    s->m_fired = metric_counter("devsys_schedule_ticks_total", NULL, "Schedule ticks this manager fired");
    s->m_missed = metric_counter("devsys_schedule_missed_ticks_total", NULL,
                                 "Missed schedule ticks left out by their catch-up policy");
    s->m_lost = metric_counter("devsys_schedule_ticks_lost_total", NULL,
                               "Schedule ticks another manager fired first (this one's fire changed nothing)");
    s->m_errors = metric_counter("devsys_schedule_errors_total", NULL, "Schedule passes or fires that failed");
    arm(s, 0);
    return s;
}

void scheduler_free(scheduler_t *s)
{
    if (!s)
        return;
    if (s->pass)
        s->pass->s = NULL;
    event_free(s->timer);
    free(s->prefix);
    free(s);
}
