/* metrics: counters and gauges in Prometheus text format (see metrics.h). */
#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

struct metric {
    char *name;
    char *labels;
    char *help;
    const char *type;
    double value;
    struct metric *next;
};

static struct metric *registry;

static metric_t *metric_get(const char *name, const char *labels, const char *help, const char *type)
{
    struct metric **tail = &registry;
    for (struct metric *m = registry; m; m = m->next) {
        if (strcmp(m->name, name) == 0 && strcmp(m->labels, labels ? labels : "") == 0)
            return m;
        tail = &m->next;
    }
    struct metric *m = xcalloc(1, sizeof *m);
    m->name = xstrdup(name);
    m->labels = xstrdup(labels ? labels : "");
    m->help = xstrdup(help);
    m->type = type;
    *tail = m;
    return m;
}

metric_t *metric_counter(const char *name, const char *labels, const char *help)
{
    return metric_get(name, labels, help, "counter");
}

metric_t *metric_gauge(const char *name, const char *labels, const char *help)
{
    return metric_get(name, labels, help, "gauge");
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

char *metrics_render(void)
{
    size_t cap = 4096, len = 0;
    char *out = xmalloc(cap);
    out[0] = '\0';
    for (struct metric *m = registry; m; m = m->next) {
        int first = 1;
        for (struct metric *p = registry; p != m; p = p->next)
            if (strcmp(p->name, m->name) == 0)
                first = 0;
        char line[1024];
        int n = 0;
        if (first)
            n = snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help, m->name,
                         m->type);
        n += snprintf(line + n, sizeof line - (size_t)n, "%s%s%s%s %.17g\n", m->name,
                      m->labels[0] ? "{" : "", m->labels, m->labels[0] ? "}" : "", m->value);
        if (n >= (int)sizeof line)
            n = (int)sizeof line - 1;
        while (len + (size_t)n + 1 > cap)
            out = xrealloc(out, cap *= 2);
        memcpy(out + len, line, (size_t)n + 1);
        len += (size_t)n;
    }
    return out;
}

void metrics_free(void)
{
    while (registry) {
        struct metric *m = registry;
        registry = m->next;
        free(m->name);
        free(m->labels);
        free(m->help);
        free(m);
    }
}
