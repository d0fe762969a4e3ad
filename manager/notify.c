/* notify: the grouping timer (see notify.h). A pass that inserted tasks
 * publishes them at once; one whose publish fails leaves its task marked lost
 * for the reconciler, as a submit does. */
#include "notify.h"

#include <event2/event.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "config.h"
#include "log.h"
#include "metrics.h"
#include "notify_dest.h"
#include "notifydb.h"
#include "queue.h"
#include "taskdb.h"
#include "xalloc.h"

struct notifier {
    struct event_base *base;
    rc_t *rc;
    pgc_t *pg;
    struct event *tick;
    char *prefix;
    char batch[16], keep_s[32];
    int running; /* a pass is in flight */
    int closing;
    int refs;    /* the owner's, plus one per publish in flight */
    metric_t *m_deliveries, *m_errors;
};

struct published {
    notifier_t *n;
    char id[40];
};

static void notifier_unref(notifier_t *n)
{
    if (--n->refs > 0)
        return;
    free(n->prefix);
    free(n);
}

static void unpublished_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    (void)res;
    notifier_t *n = arg;
    if (err[0] && !n->closing)
        log_error("notify: could not mark a delivery unpublished: %s", err);
    notifier_unref(n);
}

static void publish_done(void *arg, const char *err, const char *entry)
{
    (void)entry;
    struct published *p = arg;
    notifier_t *n = p->n;
    if (err[0] && !n->closing) {
        log_warn("notify: delivery %s not published (%s): the reconciler republishes it", p->id, err);
        n->refs++;
        taskdb_mark_unpublished(n->pg, p->id, unpublished_done, n);
    }
    free(p);
    notifier_unref(n);
}

static void flushed(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    notifier_t *n = arg;
    n->running = 0;
    if (n->closing) {
        notifier_unref(n);
        return;
    }
    if (!res || err[0]) {
        metric_add(n->m_errors, 1);
        log_warn("notify: grouping pass failed: %s", err[0] ? err : "connection lost");
        notifier_unref(n);
        return;
    }
    int c_id = taskdb_col(res, "id"), c_queue = taskdb_col(res, "queue"), c_kind = taskdb_col(res, "kind"),
        c_spec = taskdb_col(res, "spec");
    struct timeval tv;
    gettimeofday(&tv, NULL);
    long long now_ms = (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
    for (int i = 0; i < PQntuples(res); i++) {
        struct published *p = xcalloc(1, sizeof *p);
        p->n = n;
        n->refs++;
        snprintf(p->id, sizeof p->id, "%s", PQgetvalue(res, i, c_id));
        json_t *spec = json_loads(PQgetvalue(res, i, c_spec), 0, NULL);
        if (!spec || queue_publish(n->rc, n->prefix, PQgetvalue(res, i, c_queue), p->id,
                                   PQgetvalue(res, i, c_kind), 0, now_ms, spec, publish_done, p) != 0)
            publish_done(p, QUEUE_DISCONNECTED, NULL);
        json_decref(spec);
    }
    if (PQntuples(res) > 0)
        log_info("notify: %d deliveries queued", PQntuples(res));
    metric_add(n->m_deliveries, PQntuples(res));
    notifier_unref(n);
}

static void file_dest_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    (void)res;
    notifier_t *n = arg;
    if (err[0] && !n->closing)
        log_error("notify: a destination of DEVSYS_NOTIFY_DESTINATIONS_FILE not recorded: %s", err);
    notifier_unref(n);
}

/* DEVSYS_NOTIFY_DESTINATIONS_FILE: a JSON array of destinations (the API's
 * fields), each created or replaced at start. A bad file is a bad setting:
 * the manager says what is wrong and exits 2, as for any other. */
static void load_file(notifier_t *n)
{
    const char *path = getenv("DEVSYS_NOTIFY_DESTINATIONS_FILE");
    if (!path || !*path)
        return;
    json_error_t jerr;
    json_t *all = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_array(all)) {
        fprintf(stderr, "DEVSYS_NOTIFY_DESTINATIONS_FILE %s: %s\n", path,
                all ? "must be a JSON array of destinations" : jerr.text);
        exit(2);
    }
    size_t i;
    json_t *d;
    json_array_foreach(all, i, d) {
        char why[256];
        json_t *flat = notify_dest_parse(d, why, sizeof why);
        if (!flat) {
            fprintf(stderr, "DEVSYS_NOTIFY_DESTINATIONS_FILE %s: [%zu].%s\n", path, i, why);
            exit(2);
        }
        char *text = json_dumps(flat, JSON_COMPACT);
        n->refs++;
        notifydb_dest_put(n->pg, text, file_dest_done, n);
        free(text);
        json_decref(flat);
    }
    log_info("notify: %zu destinations from %s", json_array_size(all), path);
    json_decref(all);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    notifier_t *n = arg;
    if (n->running || !pgc_ready(n->pg))
        return;
    n->running = 1;
    n->refs++;
    notifydb_flush(n->pg, n->batch, n->keep_s, flushed, n);
}

notifier_t *notify_new(struct event_base *base, rc_t *rc, const char *db_url, const char *prefix)
{
    double every = cfg_double("DEVSYS_NOTIFY_TICK_S", 1, 0, 3600);
    if (every <= 0) {
        log_info("notify: off (DEVSYS_NOTIFY_TICK_S=0): events stay pending");
        return NULL;
    }
    pgc_t *pg = pgc_new(base, db_url, "devsys-manager-notify");
    if (!pg)
        return NULL;
    notifier_t *n = xcalloc(1, sizeof *n);
    n->base = base;
    n->rc = rc;
    n->pg = pg;
    n->refs = 1;
    n->prefix = xstrdup(prefix);
    snprintf(n->batch, sizeof n->batch, "%ld", cfg_long("DEVSYS_NOTIFY_BATCH", 10000, 1, 1000000));
    snprintf(n->keep_s, sizeof n->keep_s, "%g", cfg_double("DEVSYS_NOTIFY_KEEP_S", 7 * 86400.0, 60, 3650.0 * 86400));
    n->m_deliveries = metric_counter("devsys_notify_deliveries_total", NULL,
                                     "Webhook deliveries (notify tasks) created from events");
    n->m_errors = metric_counter("devsys_notify_errors_total", NULL, "Notification grouping passes that failed");
    struct timeval tv = {(time_t)every, (suseconds_t)((every - (double)(time_t)every) * 1e6)};
    load_file(n);
    n->tick = event_new(base, -1, EV_PERSIST, on_tick, n);
    event_add(n->tick, &tv);
    log_info("notify: grouping pass every %gs, at most %s events per delivery", every, n->batch);
    return n;
}

void notify_free(notifier_t *n)
{
    if (!n)
        return;
    n->closing = 1;
    event_free(n->tick);
    pgc_t *pg = n->pg;
    notifier_unref(n);
    pgc_free(pg); /* fails the statements in flight: their callbacks drop their refs */
}
