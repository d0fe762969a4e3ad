/* retention: every DEVSYS_RETENTION_S, one elected manager (a transaction
 * advisory lock per statement) creates the history partitions ahead, drops
 * those past the keep, moves finished tasks in batches until none is due
 * (RETENTION_MAX_BATCHES per tick, the next tick at once while more are due)
 * and deletes old audit rows. */
#include "retention.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkdb.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "pgc.h"
#include "taskdb.h"
#include "testdb.h"
#include "xalloc.h"

/* Its pg_advisory lock key ("devr"; migrations use another). */
#define RETENTION_LOCK_KEY 0x64657672LL
#define RETENTION_MAX_BATCHES 100
#define HISTORY_AHEAD_DAYS 2

struct retention {
    struct event_base *base;
    pgc_t *pg;
    struct event *tick;
    int running; /* a tick's statements are in flight */
    int closing; /* retention_free runs: callbacks only release */
    int batches;
    long taken, moved;
    char period[4][32]; /* succeeded, failed, cancelled, dead; "" = that state stays */
    long keep_days;
    char audit_s[32];   /* "" = audit rows stay */
    char tests_s[32];   /* test history period; "" = kept */
    int tests_more;     /* the last test history batch was full */
    char probes_s[32], incidents_s[32]; /* probe results, resolved incidents; "" = kept */
    int probes_more;    /* the last probe results batch was full */
    int batch;
    metric_t *m_moved, *m_dropped, *m_errors;
};

static const char *const state_env[4] = {"DEVSYS_RETENTION_SUCCEEDED_S", "DEVSYS_RETENTION_FAILED_S",
                                         "DEVSYS_RETENTION_CANCELLED_S", "DEVSYS_RETENTION_DEAD_S"};
static const double state_default[4] = {86400, 7 * 86400, 7 * 86400, 7 * 86400};

static int failed(retention_t *r, PGresult *res, const char *err, const char *what)
{
    if (res && !err[0])
        return 0;
    if (r->closing)
        return 1;
    metric_add(r->m_errors, 1);
    log_warn("retention: %s: %s", what, err[0] ? err : "connection lost");
    return 1;
}

static void tick_done(retention_t *r)
{
    if (r->taken)
        log_info("retention: %ld finished tasks left the tasks table, %ld of them into history", r->taken,
                 r->moved);
    metric_add(r->m_moved, (double)r->moved);
    metric_add(r->m_dropped, (double)(r->taken - r->moved));
    r->running = 0;
    /* a tick that ended on its batch cap has more due: the next one starts now */
    if ((r->batches >= RETENTION_MAX_BATCHES || r->tests_more || r->probes_more) && !r->closing)
        event_active(r->tick, EV_TIMEOUT, 0);
}

static void probes_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    retention_t *r = arg;
    if (!failed(r, res, err, "deleting old probe results")) {
        const char *probes = PQgetvalue(res, 0, taskdb_col(res, "probes")),
                   *incidents = PQgetvalue(res, 0, taskdb_col(res, "incidents"));
        r->probes_more = strtol(probes, NULL, 10) >= r->batch || strtol(incidents, NULL, 10) >= r->batch;
        if (strcmp(probes, "0") != 0 || strcmp(incidents, "0") != 0)
            log_info("retention: checks: %s probe results and %s resolved incidents deleted", probes, incidents);
    }
    tick_done(r);
}

/* One batch of each per tick (migrations/015_checks.sql, check_retain). */
static void probes_delete(retention_t *r)
{
    char batch[16];
    snprintf(batch, sizeof batch, "%d", r->batch);
    if (!r->probes_s[0] && !r->incidents_s[0])
        tick_done(r);
    else
        checkdb_retain(r->pg, r->probes_s[0] ? r->probes_s : NULL, r->incidents_s[0] ? r->incidents_s : NULL, batch,
                       probes_done, r);
}

static void tests_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    retention_t *r = arg;
    if (!failed(r, res, err, "deleting old test history")) {
        const char *runs = PQgetvalue(res, 0, taskdb_col(res, "runs")),
                   *tests = PQgetvalue(res, 0, taskdb_col(res, "tests"));
        r->tests_more = strtol(runs, NULL, 10) >= r->batch || strtol(tests, NULL, 10) >= r->batch;
        if (strcmp(runs, "0") != 0 || strcmp(tests, "0") != 0)
            log_info("retention: test history: %s runs and %s tests deleted", runs, tests);
    }
    probes_delete(r);
}

/* One batch per tick (a batch of test_runs is about one report's tests). */
static void tests_delete(retention_t *r)
{
    if (!r->tests_s[0])
        probes_delete(r);
    else
        testdb_retain(r->pg, r->tests_s, r->batch, tests_done, r);
}

static void audit_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    retention_t *r = arg;
    failed(r, res, err, "deleting old audit rows");
    tests_delete(r);
}

/* Oldest first through the primary key (ids grow with `at`), one batch per
 * tick: audit rows come at API speed, far below the batch rate. */
static void audit_delete(retention_t *r)
{
    if (!r->audit_s[0]) {
        tests_delete(r);
        return;
    }
    char batch[16];
    snprintf(batch, sizeof batch, "%d", r->batch);
    const char *p[2] = {r->audit_s, batch};
    pgc_query(r->pg,
              "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log"
              " WHERE at < now() - $1::float8 * interval '1 second' ORDER BY id LIMIT $2::int)",
              2, p, audit_done, r);
}

static void move_batch(retention_t *r);

static void moved(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    retention_t *r = arg;
    if (failed(r, res, err, "moving finished tasks")) {
        tick_done(r);
        return;
    }
    if (strcmp(PQgetvalue(res, 0, taskdb_col(res, "leader")), "t") != 0) {
        log_debug("retention: another manager is moving tasks");
        tick_done(r);
        return;
    }
    long taken = strtol(PQgetvalue(res, 0, taskdb_col(res, "taken")), NULL, 10);
    r->taken += taken;
    r->moved += strtol(PQgetvalue(res, 0, taskdb_col(res, "moved")), NULL, 10);
    /* each state takes up to batch rows: fewer in all means every state is done */
    if (taken >= r->batch && ++r->batches < RETENTION_MAX_BATCHES)
        move_batch(r);
    else
        audit_delete(r);
}

static void move_batch(retention_t *r)
{
    struct taskdb_retention t = {
        .succeeded_s = r->period[0][0] ? r->period[0] : NULL,
        .failed_s = r->period[1][0] ? r->period[1] : NULL,
        .cancelled_s = r->period[2][0] ? r->period[2] : NULL,
        .dead_s = r->period[3][0] ? r->period[3] : NULL,
        .keep_days = r->keep_days,
        .batch = r->batch,
        .lock_key = RETENTION_LOCK_KEY,
    };
    taskdb_retain(r->pg, &t, moved, r);
}

static void maintained(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    retention_t *r = arg;
    if (failed(r, res, err, "history partitions")) {
        tick_done(r);
        return;
    }
    if (PQgetisnull(res, 0, 0)) { /* not the leader this time */
        tick_done(r);
        return;
    }
    const char *what = PQgetvalue(res, 0, 0);
    if (strcmp(what, "created 0 dropped 0") != 0)
        log_info("retention: history partitions %s", what);
    move_batch(r);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    retention_t *r = arg;
    if (r->running || !pgc_ready(r->pg))
        return;
    r->running = 1;
    r->batches = 0;
    r->tests_more = 0;
    r->probes_more = 0;
    r->taken = r->moved = 0;
    char keep[24], ahead[16], key[24];
    snprintf(keep, sizeof keep, "%ld", r->keep_days);
    snprintf(ahead, sizeof ahead, "%d", HISTORY_AHEAD_DAYS);
    snprintf(key, sizeof key, "%lld", RETENTION_LOCK_KEY);
    const char *p[3] = {key, keep, ahead};
    pgc_query(r->pg,
              "SELECT CASE WHEN pg_try_advisory_xact_lock($1::bigint)"
              " THEN devsys_history_maintain($2::int, $3::int) END",
              3, p, maintained, r);
}

/* A period setting as an SQL parameter: "" when 0 (off). */
static void period(char *buf, size_t cap, const char *env, double def)
{
    double v = cfg_double(env, def, 0, 3650.0 * 86400);
    if (v > 0)
        snprintf(buf, cap, "%g", v);
    else
        buf[0] = '\0';
}

retention_t *retention_new(struct event_base *base, const char *db_url)
{
    double every = cfg_double("DEVSYS_RETENTION_S", 10, 0, 86400);
    if (every <= 0) {
        log_info("retention: off (DEVSYS_RETENTION_S=0): finished tasks stay in the tasks table");
        return NULL;
    }
    pgc_t *pg = pgc_new(base, db_url, "devsys-manager-retention");
    if (!pg)
        return NULL;
    retention_t *r = xcalloc(1, sizeof *r);
    r->base = base;
    r->pg = pg;
    for (int i = 0; i < 4; i++)
        period(r->period[i], sizeof r->period[i], state_env[i], state_default[i]);
    period(r->audit_s, sizeof r->audit_s, "DEVSYS_RETENTION_AUDIT_S", 90.0 * 86400);
    period(r->tests_s, sizeof r->tests_s, "DEVSYS_RETENTION_TEST_HISTORY_S", 14.0 * 86400);
    period(r->probes_s, sizeof r->probes_s, "DEVSYS_RETENTION_PROBES_S", 8.0 * 86400);
    period(r->incidents_s, sizeof r->incidents_s, "DEVSYS_RETENTION_INCIDENTS_S", 90.0 * 86400);
    r->keep_days = cfg_long("DEVSYS_HISTORY_KEEP_DAYS", 90, 1, 3650);
    r->batch = (int)cfg_long("DEVSYS_RETENTION_BATCH", 1000, 1, 100000);
    r->m_moved = metric_counter("devsys_retention_moved_total", NULL,
                                "Finished tasks moved from tasks to tasks_history");
    r->m_dropped = metric_counter("devsys_retention_deleted_total", NULL,
                                  "Finished tasks deleted from tasks because they finished before the history keep");
    r->m_errors = metric_counter("devsys_retention_errors_total", NULL, "Retention statements that failed");
    struct timeval tv = {(time_t)every, (suseconds_t)((every - (double)(time_t)every) * 1e6)};
    r->tick = event_new(base, -1, EV_PERSIST, on_tick, r);
    event_add(r->tick, &tv);
    log_info("retention: every %gs; succeeded after %ss, failed %ss, cancelled %ss, dead (purged) %ss;"
             " history keeps %ld days; audit %ss", every, r->period[0][0] ? r->period[0] : "never",
             r->period[1][0] ? r->period[1] : "never", r->period[2][0] ? r->period[2] : "never",
             r->period[3][0] ? r->period[3] : "never", r->keep_days, r->audit_s[0] ? r->audit_s : "never");
    return r;
}

void retention_free(retention_t *r)
{
    if (!r)
        return;
    r->closing = 1;
    pgc_free(r->pg); /* fails the statement in flight: its callback ends the tick */
    event_free(r->tick);
    free(r);
}
