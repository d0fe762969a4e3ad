/* handler_monitor: kind monitor, one probe per task (http, tcp, dns, script,
 * log; the types in monitor_*.c, scripts here through the exec handler).
 * The task succeeds whenever the probe was carried out, healthy target or
 * not; its result says which. It fails only when the probe cannot be tried. */
#include "monitor_internal.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "curlev.h"
#include "deploy_run.h"
#include "log.h"
#include "offload.h"
#include "xalloc.h"

#define POOL_THREADS_DEFAULT 8 /* DEVSYS_MONITOR_THREADS: dns lookups and log reads at once */
#define POOL_THREADS_MAX 64
#define SCRIPT_LINE_MAX 200    /* bytes of the script's last output line in an error */

static curlev_t *mon_curl;
static offload_t *mon_pool;
static probe_t *live; /* every probe not yet reported */

struct curlev *monitor_curl(struct event_base *base)
{
    if (!mon_curl)
        mon_curl = curlev_new(base);
    return mon_curl;
}

struct offload *monitor_pool(struct event_base *base)
{
    if (!mon_pool) {
        int n = (int)cfg_long("DEVSYS_MONITOR_THREADS", POOL_THREADS_DEFAULT, 1, POOL_THREADS_MAX);
        mon_pool = offload_new(base, n);
    }
    return mon_pool;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

double probe_elapsed_ms(const probe_t *p)
{
    return now_ms() - p->t0_ms;
}

void probe_timeout_text(const probe_t *p, char out[32])
{
    snprintf(out, 32, "%gs", p->m->timeout_s);
}

/* ---------------------------------------------------------------- reporting */

static void live_remove(probe_t *p)
{
    *p->prevp = p->next;
    if (p->next)
        p->next->prevp = p->prevp;
}

static void report_now(probe_t *p)
{
    task_run_t *run = p->run;
    handler_result_t res = p->res;
    live_remove(p);
    if (p->report)
        event_free(p->report);
    free(p);
    run->handler_data = NULL;
    run->done(run, &res);
}

static void on_report(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    report_now(arg);
}

static void report_later(probe_t *p)
{
    p->impl = NULL;
    p->stop = NULL;
    p->report = evtimer_new(p->run->base, on_report, p);
    event_active(p->report, EV_TIMEOUT, 1);
}

void probe_finish(probe_t *p, int ok, char *error, json_t *details, double latency_ms)
{
    if (latency_ms < 0)
        latency_ms = probe_elapsed_ms(p);
    json_t *r = json_object();
    json_object_set_new(r, "ok", json_boolean(ok));
    json_object_set_new(r, "latency_ms", json_real((double)(long long)(latency_ms * 1000.0) / 1000.0));
    json_object_set_new(r, "error", error ? json_string(error) : json_null());
    json_object_set_new(r, "type", json_string(kind_monitor_type_name(p->m->type)));
    if (details)
        json_object_update(r, details);
    json_decref(details);
    free(error);
    p->res.ok = 1;
    p->res.result = r;
    report_later(p);
}

void probe_fail(probe_t *p, int retryable, char *error)
{
    p->res.ok = 0;
    p->res.retryable = retryable;
    p->res.error = error;
    report_later(p);
}

/* ---------------------------------------------------------------- script */

/* A script probe: the command through the exec handler (deploy_run.h:
 * process group, environment allow-list, containment, timeout). */
struct script {
    probe_t *p;
    deploy_run_t *r;
};

static void script_done(handler_result_t *res, void *arg)
{
    struct script *s = arg;
    probe_t *p = s->p;
    free(s);
    if (!p) { /* shut down meanwhile */
        deploy_run_result_clear(res);
        return;
    }
    json_t *code = json_object_get(res->result, "exit_code");
    char limit[32];
    probe_timeout_text(p, limit);
    if (res->error && strcmp(res->error, "cancelled") == 0) {
        probe_fail(p, 1, xstrdup("cancelled"));
    } else if (res->error && strcmp(res->error, "timeout") == 0) {
        probe_finish(p, 0, xasprintf("script timed out after %s", limit), json_pack("{s:n}", "exit_code"), -1);
    } else if (json_is_integer(code) || json_object_get(res->result, "signal")) {
        int ok = json_is_integer(code) && json_integer_value(code) == 0;
        char *why = NULL;
        if (!ok) {
            char *line = deploy_run_last_line(res);
            why = json_is_integer(code)
                      ? xasprintf("script exited %d%s%.*s", (int)json_integer_value(code), line ? ": " : "",
                                  SCRIPT_LINE_MAX, line ? line : "")
                      : xasprintf("script %s", res->error ? res->error : "killed");
            free(line);
        }
        probe_finish(p, ok, why, json_pack("{s:O}", "exit_code", code ? code : json_null()), -1);
    } else { /* never ran: command not found, workspace, spawn */
        probe_fail(p, res->retryable, xasprintf("script: %s", res->error ? res->error : "did not run"));
    }
    deploy_run_result_clear(res);
}

static void script_stop(probe_t *p)
{
    struct script *s = p->impl;
    deploy_run_cancel(s->r); /* script_done comes with "cancelled" */
}

static int script_start(probe_t *p, handler_result_t *res)
{
    const json_t *cmd = p->m->command;
    size_t n = json_array_size(cmd);
    const char **argv = xcalloc(n + 1, sizeof *argv);
    for (size_t i = 0; i < n; i++)
        argv[i] = json_string_value(json_array_get(cmd, i));
    struct script *s = xcalloc(1, sizeof *s);
    s->p = p;
    json_t *env = p->run->spec->env ? json_incref(p->run->spec->env) : NULL;
    s->r = deploy_run_start(p->run, argv, NULL, env, p->m->timeout_s, script_done, s, res);
    free(argv);
    if (!s->r) {
        free(s);
        char *why = xasprintf("script: %s", res->error ? res->error : "did not start");
        free(res->error);
        res->error = why;
        return -1;
    }
    p->impl = s;
    p->stop = script_stop;
    return 0;
}

/* ---------------------------------------------------------------- handler */

static int monitor_start(task_run_t *run, handler_result_t *res)
{
    const struct spec_monitor *m = &run->spec->monitor;
    memset(res, 0, sizeof *res);
    if (!m->type) { /* the validator requires it: a spec from elsewhere */
        res->error = xstrdup("monitor: required");
        return -1;
    }
    probe_t *p = xcalloc(1, sizeof *p);
    p->run = run;
    p->m = m;
    p->t0_ms = now_ms();
    char err[512] = "";
    int rc;
    switch (m->type) {
    case MONITOR_HTTP: rc = monitor_http_start(p, err, sizeof err); break;
    case MONITOR_TCP: rc = monitor_tcp_start(p, err, sizeof err); break;
    case MONITOR_DNS: rc = monitor_dns_start(p, err, sizeof err); break;
    case MONITOR_LOG: rc = monitor_log_start(p, err, sizeof err); break;
    default: rc = script_start(p, res); break;
    }
    if (rc < 0) {
        if (!res->error)
            res->error = xstrdup(err);
        free(p);
        return -1;
    }
    p->next = live;
    if (live)
        live->prevp = &p->next;
    p->prevp = &live;
    live = p;
    run->handler_data = p;
    return 0;
}

static void monitor_cancel(task_run_t *run)
{
    probe_t *p = run->handler_data;
    if (!p || !p->stop)
        return; /* already reported or about to be */
    if (p->m->type == MONITOR_SCRIPT) {
        p->stop(p); /* reported when the exec handler says it ended */
        return;
    }
    p->stop(p);
    probe_fail(p, 1, xstrdup("cancelled"));
}

void monitor_handler_shutdown(void)
{
    /* Every probe still live ends now, "cancelled", while the agent holds
     * its task. A script's process is stopped by the exec handler, whose
     * report then finds the probe gone (s->p NULL). */
    for (probe_t *p = live, *next; p; p = next) {
        next = p->next;
        if (p->stop) {
            if (p->m->type == MONITOR_SCRIPT)
                ((struct script *)p->impl)->p = NULL;
            p->stop(p);
            p->res.error = xstrdup("cancelled");
            p->res.retryable = 1;
        }
        report_now(p);
    }
    offload_free(mon_pool); /* the jobs still out were detached by stop */
    mon_pool = NULL;
    curlev_free(mon_curl);
    mon_curl = NULL;
}

const handler_ops_t handler_monitor = {
    .kinds = (const char *const[]){"monitor", NULL},
    .start = monitor_start,
    .cancel = monitor_cancel,
};
