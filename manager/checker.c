/* checker: the check timer (see checker.h). A pass that inserted tasks
 * publishes them at once; one whose publish fails leaves its task marked lost
 * for the reconciler, as a submit does. */
#include "checker.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "check_file.h"
#include "checkdb.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "pgarr.h"
#include "pgc.h"
#include "queue.h"
#include "taskdb.h"
#include "xalloc.h"

struct checker {
    rc_t *rc;
    pgc_t *pg;
    struct event *tick;
    char *prefix;
    char batch[16];
    long batch_n;
    int running; /* a pass is in flight */
    int closing;
    int refs;    /* the owner's, plus one per statement or publish in flight */
    metric_t *m_probes, *m_follow_ups, *m_errors;
};

struct published {
    checker_t *c;
    char id[40];
};

static void checker_unref(checker_t *c)
{
    if (--c->refs > 0)
        return;
    free(c->prefix);
    free(c);
}

static void unpublished_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    (void)res;
    checker_t *c = arg;
    if (err[0] && !c->closing)
        log_error("checks: could not mark a task unpublished: %s", err);
    checker_unref(c);
}

static void publish_done(void *arg, const char *err, const char *entry)
{
    (void)entry;
    struct published *p = arg;
    checker_t *c = p->c;
    if (err[0] && !c->closing) {
        log_warn("checks: task %s not published (%s): the reconciler republishes it", p->id, err);
        c->refs++;
        taskdb_mark_unpublished(c->pg, p->id, unpublished_done, c);
    }
    free(p);
    checker_unref(c);
}

static void ticked(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    checker_t *c = arg;
    c->running = 0;
    if (c->closing) {
        checker_unref(c);
        return;
    }
    if (!res || err[0]) {
        metric_add(c->m_errors, 1);
        log_warn("checks: pass failed: %s", err[0] ? err : "connection lost");
        checker_unref(c);
        return;
    }
    int c_id = taskdb_col(res, "id"), c_queue = taskdb_col(res, "queue"), c_kind = taskdb_col(res, "kind"),
        c_spec = taskdb_col(res, "spec"), c_check = taskdb_col(res, "check_name"), c_what = taskdb_col(res, "what");
    struct timeval tv;
    gettimeofday(&tv, NULL);
    long long now_ms = (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
    long probes = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        struct published *p = xcalloc(1, sizeof *p);
        p->c = c;
        c->refs++;
        snprintf(p->id, sizeof p->id, "%s", PQgetvalue(res, i, c_id));
        if (strcmp(PQgetvalue(res, i, c_what), "probe") == 0) {
            probes++;
        } else {
            metric_add(c->m_follow_ups, 1);
            log_info("check %s: follow-up task %s published", PQgetvalue(res, i, c_check), p->id);
        }
        json_t *spec = json_loads(PQgetvalue(res, i, c_spec), 0, NULL);
        if (!spec || queue_publish(c->rc, c->prefix, PQgetvalue(res, i, c_queue), p->id, PQgetvalue(res, i, c_kind),
                                   0, now_ms, spec, publish_done, p) != 0)
            publish_done(p, QUEUE_DISCONNECTED, NULL);
        json_decref(spec);
    }
    metric_add(c->m_probes, (double)probes);
    /* a full batch: more checks may be due now */
    if (probes >= c->batch_n)
        event_active(c->tick, EV_TIMEOUT, 0);
    checker_unref(c);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    checker_t *c = arg;
    if (c->running || !pgc_ready(c->pg))
        return;
    c->running = 1;
    c->refs++;
    checkdb_tick(c->pg, c->batch, ticked, c);
}

/* ------------------------------------------------------------ the file */

static void file_check_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    checker_t *c = arg;
    if (!c->closing && (err[0] || !res))
        log_error("checks: a check of DEVSYS_MONITOR_CHECKS not recorded: %s", err[0] ? err : "connection lost");
    else if (!c->closing && PQntuples(res) == 0)
        log_error("checks: a check of DEVSYS_MONITOR_CHECKS not recorded: the limit of %d checks is reached",
                  CHECKS_MAX);
    checker_unref(c);
}

static void file_pruned(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    checker_t *c = arg;
    if (!c->closing && (err[0] || !res))
        log_error("checks: removing checks no longer in DEVSYS_MONITOR_CHECKS: %s", err[0] ? err : "connection lost");
    else if (!c->closing && strcmp(PQgetvalue(res, 0, taskdb_col(res, "deleted")), "0") != 0)
        log_info("checks: %s checks no longer in DEVSYS_MONITOR_CHECKS deleted",
                 PQgetvalue(res, 0, taskdb_col(res, "deleted")));
    checker_unref(c);
}

/* The parsed file (exits 2 when bad), or NULL when none is set. */
static json_t *file_read(void)
{
    const char *path = getenv("DEVSYS_MONITOR_CHECKS");
    if (!path || !*path)
        return NULL;
    char why[768];
    json_t *checks = check_file_load(path, why, sizeof why);
    if (!checks) {
        fprintf(stderr, "DEVSYS_MONITOR_CHECKS %s\n", why);
        exit(2);
    }
    return checks;
}

static void file_store(checker_t *c, json_t *checks)
{
    pgarr_t *names = pgarr_new();
    size_t i;
    json_t *d;
    json_array_foreach(checks, i, d) {
        char *text = json_dumps(d, JSON_COMPACT);
        c->refs++;
        checkdb_put(c->pg, text, "file", "file:DEVSYS_MONITOR_CHECKS", file_check_done, c);
        free(text);
        pgarr_add(names, json_string_value(json_object_get(d, "name")));
    }
    char *arr = pgarr_finish(names);
    c->refs++;
    checkdb_prune_file(c->pg, arr, file_pruned, c);
    free(arr);
    log_info("checks: %zu checks from %s", json_array_size(checks), getenv("DEVSYS_MONITOR_CHECKS"));
}

checker_t *checker_new(struct event_base *base, rc_t *rc, const char *db_url, const char *prefix)
{
    json_t *checks = file_read();
    double every = cfg_double("DEVSYS_CHECK_TICK_S", 1, 0, 3600);
    if (every <= 0) {
        log_info("checks: off (DEVSYS_CHECK_TICK_S=0): this manager makes no probes");
        json_decref(checks);
        return NULL;
    }
    pgc_t *pg = pgc_new(base, db_url, "devsys-manager-checks");
    if (!pg) {
        json_decref(checks);
        return NULL;
    }
    checker_t *c = xcalloc(1, sizeof *c);
    c->rc = rc;
    c->pg = pg;
    c->refs = 1;
    c->prefix = xstrdup(prefix);
    c->batch_n = cfg_long("DEVSYS_CHECK_BATCH", 1000, 1, 100000);
    snprintf(c->batch, sizeof c->batch, "%ld", c->batch_n);
    c->m_probes = metric_counter("devsys_check_probes_total", NULL, "Probe tasks (kind monitor) this manager created");
    c->m_follow_ups = metric_counter("devsys_check_follow_ups_total", NULL,
                                     "Incident follow-up tasks this manager published");
    c->m_errors = metric_counter("devsys_check_errors_total", NULL, "Check timer passes that failed");
    if (checks)
        file_store(c, checks);
    json_decref(checks);
    struct timeval tv = {(time_t)every, (suseconds_t)((every - (double)(time_t)every) * 1e6)};
    c->tick = event_new(base, -1, EV_PERSIST, on_tick, c);
    event_add(c->tick, &tv);
    log_info("checks: a pass every %gs, at most %s checks each", every, c->batch);
    return c;
}

void checker_free(checker_t *c)
{
    if (!c)
        return;
    c->closing = 1;
    event_free(c->tick);
    pgc_t *pg = c->pg;
    checker_unref(c);
    pgc_free(pg); /* fails the statements in flight: their callbacks drop their refs */
}
