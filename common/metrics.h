/* metrics: a process-wide registry of counters and gauges, rendered in the
 * Prometheus text exposition format for /metrics. Single-threaded (the loop). */
#ifndef DEVSYS_METRICS_H
#define DEVSYS_METRICS_H

typedef struct metric metric_t;

/* Returns the metric named name with these labels (e.g. "queue=\"exec\"", or
 * NULL for none), creating it on first use. The pointer stays valid for the
 * life of the process. help and type are taken from the first call per name. */
metric_t *metric_counter(const char *name, const char *labels, const char *help);
metric_t *metric_gauge(const char *name, const char *labels, const char *help);

void metric_add(metric_t *m, double v);
void metric_set(metric_t *m, double v);
double metric_value(const metric_t *m);

/* The whole registry as Prometheus text; caller frees. */
char *metrics_render(void);
/* Frees the registry (at exit, so leak checkers stay quiet). */
void metrics_free(void);

#endif
