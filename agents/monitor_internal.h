/* monitor_internal: what the monitor kind's files share (handler_monitor.c
 * the probe's life and result, monitor_http.c, monitor_net.c tcp and dns,
 * monitor_log.c): one probe per task, each type started on the loop, never
 * blocking it, each bounded by the spec's timeout_s. */
#ifndef DEVSYS_MONITOR_INTERNAL_H
#define DEVSYS_MONITOR_INTERNAL_H

#include <jansson.h>

#include "handler.h"
#include "kind.h"

struct curlev;
struct offload;
typedef struct probe probe_t;

struct probe {
    task_run_t *run;
    const struct spec_monitor *m;
    double t0_ms;           /* monotonic clock at start */
    /* The type's own state and how to stop it (cancel, shutdown): stop
     * releases everything the type holds; the probe is then reported
     * "cancelled" and the type never calls back. NULL once it finished. */
    void *impl;
    void (*stop)(probe_t *p);
    /* private to handler_monitor.c */
    struct event *report;   /* done() from a fresh loop pass */
    handler_result_t res;
    probe_t *next, **prevp; /* live probes, for shutdown */
};

/* The probe was carried out: ok or not, the task succeeds with the result
 * {"ok", "latency_ms", "error", "type", ...details}. error: one line, taken
 * (NULL when ok); details: an object whose members are added, reference
 * stolen (may be NULL); latency_ms < 0: the time since the probe started.
 * The type must have released its own state (impl) first. done() comes on
 * the next loop pass, never from inside this call. */
void probe_finish(probe_t *p, int ok, char *error, json_t *details, double latency_ms);
/* The probe could not be attempted: the task fails with error (taken). */
void probe_fail(probe_t *p, int retryable, char *error);
/* Milliseconds since the probe started. */
double probe_elapsed_ms(const probe_t *p);
/* "2s", "0.5s": the timeout for messages. */
void probe_timeout_text(const probe_t *p, char out[32]);

/* The monitor's libcurl multi and worker pool on the agent's loop (made by
 * the first probe that needs them, freed by monitor_handler_shutdown). */
struct curlev *monitor_curl(struct event_base *base);
struct offload *monitor_pool(struct event_base *base);

/* Each type's start: 0 once started (it calls probe_finish or probe_fail
 * later and sets p->impl and p->stop meanwhile), or -1 with a message in
 * err: the probe cannot be attempted (the task fails permanently). */
int monitor_http_start(probe_t *p, char *err, size_t errlen);
int monitor_tcp_start(probe_t *p, char *err, size_t errlen);
int monitor_dns_start(probe_t *p, char *err, size_t errlen);
int monitor_log_start(probe_t *p, char *err, size_t errlen);

#endif
