/* artifact_gc: the artifact store's garbage collection (see artifact_gc.h).
 * A sweep visits the 256 aa/ directories one step at a time; a step lists up
 * to AGC_BATCH files older than the retention, asks PostgreSQL which of them
 * no task referenced within it, and removes those still old (a put since the
 * listing renews a file). */
#include "artifact_gc.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "metrics.h"
#include "xalloc.h"

/* What a PostgreSQL answer holds: g, or NULL once agc_free ran while it was
 * waited for (the answer then frees it). */
struct agc_ref {
    agc_t *g;
};

struct agc {
    struct event_base *base;
    pgc_t *pg;
    astore_t *store;
    struct event *tick;
    double period_s, retention_s;
    char retention[32];
    int cursor;    /* the aa/ directory of the last step */
    int visited;   /* directories this sweep has visited */
    int busy;      /* a step waits for PostgreSQL */
    struct agc_ref *ref; /* of the step that waits, NULL when none */
    long removed;  /* files this sweep */
    char (*shas)[65];
    metric_t *m_removed, *m_bytes, *m_errors;
};

static void step(agc_t *g);

static void sweep_end(agc_t *g)
{
    long long bytes, files, cap;
    astore_usage(g->store, &bytes, &files, &cap);
    metric_set(g->m_bytes, (double)bytes);
    if (g->removed)
        log_info("artifact gc: removed %ld unreferenced artifacts older than %s s; the store holds %lld bytes"
                 " in %lld files", g->removed, g->retention, bytes, files);
    g->removed = 0;
    g->visited = 0;
    /* and the references nothing can use any more */
    const char *p[1] = {g->retention};
    pgc_query(g->pg,
              "DELETE FROM artifact_refs WHERE sha256 IN (SELECT sha256 FROM artifact_refs"
              " WHERE ref_at < now() - $1::float8 * interval '1 second' LIMIT 10000)",
              1, p, NULL, NULL);
    struct timeval tv = {(time_t)g->period_s, (suseconds_t)((g->period_s - (double)(time_t)g->period_s) * 1e6)};
    evtimer_add(g->tick, &tv);
}

static void looked_up(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct agc_ref *ref = arg;
    agc_t *g = ref->g;
    free(ref);
    if (!g)
        return;
    g->ref = NULL;
    g->busy = 0;
    if (!res || err[0]) {
        metric_add(g->m_errors, 1);
        log_warn("artifact gc: looking up references: %s", err[0] ? err : "connection lost");
        sweep_end(g); /* the next sweep tries again */
        return;
    }
    for (int i = 0; i < PQntuples(res); i++)
        if (astore_remove_if_old(g->store, PQgetvalue(res, i, 0), g->retention_s)) {
            g->removed++;
            metric_add(g->m_removed, 1);
        }
    step(g);
}

/* One directory: its old files, looked up; the sweep ends after 256. */
static void step(agc_t *g)
{
    while (g->visited < 256) {
        int before = g->cursor;
        size_t n = astore_old_files(astore_dir(g->store), &g->cursor, g->retention_s, g->shas, AGC_BATCH);
        int moved = (g->cursor - before + 256) % 256;
        g->visited += moved ? moved : 256; /* no directory at all: the whole round */
        if (n == 0)
            continue;
        size_t len = n * 65 + 3;
        char *arr = xmalloc(len), *w = arr;
        *w++ = '{';
        for (size_t i = 0; i < n; i++)
            w += snprintf(w, len - (size_t)(w - arr), "%s%s", i ? "," : "", g->shas[i]);
        snprintf(w, len - (size_t)(w - arr), "}");
        const char *p[2] = {arr, g->retention};
        g->busy = 1;
        g->ref = xmalloc(sizeof *g->ref);
        g->ref->g = g;
        pgc_query(g->pg,
                  "SELECT s FROM unnest($1::text[]) s WHERE NOT EXISTS (SELECT 1 FROM artifact_refs r"
                  " WHERE r.sha256 = s AND r.ref_at >= now() - $2::float8 * interval '1 second')",
                  2, p, looked_up, g->ref);
        free(arr);
        return;
    }
    sweep_end(g);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    agc_t *g = arg;
    if (!g->busy)
        step(g);
}

agc_t *agc_new(struct event_base *base, pgc_t *pg, astore_t *store)
{
    double period = cfg_double("DEVSYS_ARTIFACT_GC_S", AGC_PERIOD_DEFAULT, 0, 86400);
    if (period <= 0) {
        log_info("artifact gc: off (DEVSYS_ARTIFACT_GC_S=0): artifacts stay until removed by hand");
        return NULL;
    }
    agc_t *g = xcalloc(1, sizeof *g);
    g->base = base;
    g->pg = pg;
    g->store = store;
    g->period_s = period;
    /* at least 10 minutes: a reference is renewed at most once a minute (migrations/019) */
    g->retention_s = cfg_double("DEVSYS_ARTIFACT_RETENTION_S", AGC_RETENTION_DEFAULT, 600, 3650.0 * 86400);
    snprintf(g->retention, sizeof g->retention, "%.3f", g->retention_s);
    g->cursor = -1;
    g->shas = xcalloc(AGC_BATCH, sizeof *g->shas);
    g->m_removed = metric_counter("devsys_artifacts_collected_total", NULL,
                                  "Artifacts the store's GC removed (unreferenced and older than the retention)");
    g->m_bytes = metric_gauge("devsys_artifact_store_bytes", NULL, "Bytes the artifact store holds (after a GC sweep)");
    g->m_errors = metric_counter("devsys_artifact_gc_errors_total", NULL, "Artifact GC steps that failed");
    g->tick = evtimer_new(base, on_tick, g);
    struct timeval tv = {1, 0};
    evtimer_add(g->tick, &tv);
    return g;
}

void agc_free(agc_t *g)
{
    if (!g)
        return;
    event_free(g->tick);
    free(g->shas);
    if (g->ref)
        g->ref->g = NULL; /* its answer frees the ref */
    free(g);
}
