/* metrics: counters, gauges and histograms in Prometheus text format (see
 * metrics.h). Series are found through a hash of name+labels and rendered
 * grouped by family, in the order the families were first used. */
#include "metrics.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xalloc.h"

#define HASH_SIZE 4096

const double metric_buckets_latency[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                         0.1,    0.25,  0.5,    1,     2.5,  5,     10};
const int metric_buckets_latency_n = (int)(sizeof metric_buckets_latency / sizeof *metric_buckets_latency);
const double metric_buckets_run[] = {0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600};
const int metric_buckets_run_n = (int)(sizeof metric_buckets_run / sizeof *metric_buckets_run);
const double metric_buckets_attempts[] = {1, 2, 3, 5, 10, 20};
const int metric_buckets_attempts_n = (int)(sizeof metric_buckets_attempts / sizeof *metric_buckets_attempts);

struct family {
    char *name;
    char *help;
    const char *type;
    struct metric *first, **tail;
    struct family *next;
};

struct metric {
    struct family *fam;
    char *labels;
    double value;              /* counter, gauge; a histogram's sum */
    int nbounds;               /* histogram only: */
    double *bounds;
    unsigned long long *counts; /* per bucket (not cumulative); [nbounds] is +Inf */
    unsigned long long count;
    struct metric *next;       /* in its family */
    struct metric *hnext;      /* in its hash chain */
};

static struct family *families, **families_tail = &families;
static struct metric *table[HASH_SIZE];

static uint32_t hash_key(const char *name, const char *labels)
{
    uint32_t h = 2166136261u;
    for (const char *s = name; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    h = (h ^ '{') * 16777619u;
    for (const char *s = labels; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % HASH_SIZE;
}

static struct family *family_get(const char *name, const char *help, const char *type)
{
    for (struct family *f = families; f; f = f->next)
        if (strcmp(f->name, name) == 0)
            return f;
    struct family *f = xcalloc(1, sizeof *f);
    f->name = xstrdup(name);
    f->help = xstrdup(help);
    f->type = type;
    f->tail = &f->first;
    *families_tail = f;
    families_tail = &f->next;
    return f;
}

static metric_t *metric_get(const char *name, const char *labels, const char *help, const char *type,
                            const double *bounds, int nbounds)
{
    if (!labels)
        labels = "";
    uint32_t h = hash_key(name, labels);
    for (struct metric *m = table[h]; m; m = m->hnext)
        if (strcmp(m->labels, labels) == 0 && strcmp(m->fam->name, name) == 0)
            return m;
    struct metric *m = xcalloc(1, sizeof *m);
    m->fam = family_get(name, help, type);
    m->labels = xstrdup(labels);
    if (bounds) {
        m->nbounds = nbounds;
        m->bounds = xmalloc((size_t)nbounds * sizeof *m->bounds);
        memcpy(m->bounds, bounds, (size_t)nbounds * sizeof *m->bounds);
        m->counts = xcalloc((size_t)nbounds + 1, sizeof *m->counts);
    }
    *m->fam->tail = m;
    m->fam->tail = &m->next;
    m->hnext = table[h];
    table[h] = m;
    return m;
}

metric_t *metric_counter(const char *name, const char *labels, const char *help)
{
    return metric_get(name, labels, help, "counter", NULL, 0);
}

metric_t *metric_gauge(const char *name, const char *labels, const char *help)
{
    return metric_get(name, labels, help, "gauge", NULL, 0);
}

metric_t *metric_histogram(const char *name, const char *labels, const char *help, const double *bounds,
                           int nbounds)
{
    return metric_get(name, labels, help, "histogram", bounds, nbounds);
}

void metric_add(metric_t *m, double v)
{
    m->value += v;
}

void metric_set(metric_t *m, double v)
{
    m->value = v;
}

double metric_value(const metric_t *m)
{
    return m->value;
}

void metric_observe(metric_t *m, double v)
{
    if (!m->counts)
        return;
    int i = 0;
    while (i < m->nbounds && v > m->bounds[i])
        i++;
    m->counts[i]++;
    m->count++;
    m->value += v;
}

double metric_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------- rendering */

struct out {
    char *s;
    size_t len, cap;
};

static void out_printf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_printf(struct out *o, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->s + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        o->cap = o->cap * 2 + (n > 0 ? (size_t)n : 0);
        o->s = xrealloc(o->s, o->cap);
    }
}

static void render_histogram(struct out *o, const struct metric *m)
{
    const char *sep = m->labels[0] ? "," : "";
    unsigned long long cum = 0;
    for (int i = 0; i <= m->nbounds; i++) {
        cum += m->counts[i];
        if (i < m->nbounds)
            out_printf(o, "%s_bucket{%s%sle=\"%g\"} %llu\n", m->fam->name, m->labels, sep, m->bounds[i], cum);
        else
            out_printf(o, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", m->fam->name, m->labels, sep, cum);
    }
    const char *open = m->labels[0] ? "{" : "", *close = m->labels[0] ? "}" : "";
    out_printf(o, "%s_sum%s%s%s %.17g\n", m->fam->name, open, m->labels, close, m->value);
    out_printf(o, "%s_count%s%s%s %llu\n", m->fam->name, open, m->labels, close, m->count);
}

char *metrics_render(void)
{
    struct out o = {xmalloc(8192), 0, 8192};
    o.s[0] = '\0';
    for (struct family *f = families; f; f = f->next) {
        out_printf(&o, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, f->type);
        for (struct metric *m = f->first; m; m = m->next) {
            if (m->counts)
                render_histogram(&o, m);
            else
                out_printf(&o, "%s%s%s%s %.17g\n", f->name, m->labels[0] ? "{" : "", m->labels,
                           m->labels[0] ? "}" : "", m->value);
        }
    }
    return o.s;
}

void metrics_free(void)
{
    while (families) {
        struct family *f = families;
        families = f->next;
        while (f->first) {
            struct metric *m = f->first;
            f->first = m->next;
            free(m->labels);
            free(m->bounds);
            free(m->counts);
            free(m);
        }
        free(f->name);
        free(f->help);
        free(f);
    }
    families_tail = &families;
    memset(table, 0, sizeof table);
}
