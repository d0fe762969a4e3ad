/* metrics: a process-wide registry of counters, gauges and histograms,
 * rendered in the Prometheus text exposition format for /metrics.
 * Single-threaded (the loop). */
#ifndef DEVSYS_METRICS_H
#define DEVSYS_METRICS_H

typedef struct metric metric_t;

/* Returns the metric named name with these labels (e.g. "queue=\"exec\"", or
 * NULL for none), creating it on first use. The pointer stays valid for the
 * life of the process. help and type are taken from the first call per name.
 * A lookup is one hash probe, so hot paths may look a series up per event;
 * label values must come from bounded sets (queue names of the configured
 * queues, kinds of the registry, route patterns), never from raw input. */
metric_t *metric_counter(const char *name, const char *labels, const char *help);
metric_t *metric_gauge(const char *name, const char *labels, const char *help);
/* A histogram with these upper bounds (ascending, +Inf implied; copied on
 * first use per name+labels). */
metric_t *metric_histogram(const char *name, const char *labels, const char *help, const double *bounds,
                           int nbounds);

/* Bucket sets shared by the callers: round trips to a store or an HTTP
 * answer (1 ms .. 10 s), a task's run (10 ms .. 1 h), attempts (1 .. 20). */
extern const double metric_buckets_latency[];
extern const int metric_buckets_latency_n;
extern const double metric_buckets_run[];
extern const int metric_buckets_run_n;
extern const double metric_buckets_attempts[];
extern const int metric_buckets_attempts_n;

void metric_add(metric_t *m, double v);
void metric_set(metric_t *m, double v);
double metric_value(const metric_t *m);
/* Counts v into a histogram. */
void metric_observe(metric_t *m, double v);

/* Seconds on the monotonic clock (for durations). */
double metric_now(void);

/* The whole registry as Prometheus text, each family's series together;
 * caller frees. */
char *metrics_render(void);
/* Frees the registry (at exit, so leak checkers stay quiet). */
void metrics_free(void);

#endif
