/* agent_obs: task metrics and log context (see agent_obs.h). Labels come
 * from bounded sets: the agent's own queues (DEVSYS_QUEUES, at most 64) and
 * the kinds of the registry ("unknown" for an entry whose kind is not one). */
#include "agent_obs.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "kind.h"
#include "metrics.h"

static const char *task_kind(const struct task *t)
{
    const char *k = t->spec ? t->spec->kind : t->env.kind;
    return k && kind_find(k) ? k : "unknown";
}

struct log_ctx agent_obs_ctx(const struct task *t)
{
    const json_t *p = t->spec ? t->spec->pipeline : NULL;
    return (struct log_ctx){
        .task_id = t->env.id[0] ? t->env.id : NULL,
        .attempt = t->attempt,
        .pipeline_id = p ? json_string_value(json_object_get(p, "id")) : NULL,
        .queue = t->q ? t->q->name : NULL,
    };
}

void agent_obs_started(const struct task *t)
{
    if (!log_enabled(LOG_INFO))
        return;
    struct log_ctx c = agent_obs_ctx(t);
    log_task(LOG_INFO, &c, "task started: kind %s", task_kind(t));
}

void agent_obs_ran(const struct task *t)
{
    struct timeval now;
    gettimeofday(&now, NULL);
    double s = (double)(now.tv_sec - t->started.tv_sec) + (double)(now.tv_usec - t->started.tv_usec) / 1e6;
    char labels[96];
    snprintf(labels, sizeof labels, "kind=\"%s\"", task_kind(t));
    metric_observe(metric_histogram("devsys_task_run_seconds", labels, "Handler run time of an attempt",
                                    metric_buckets_run, metric_buckets_run_n),
                   s < 0 ? 0 : s);
}

void agent_obs_outcome(const struct task *t)
{
    const char *outcome = t->after == AFTER_BURY    ? "dead"
                        : t->after == AFTER_RETRY   ? "retried"
                        : t->after == AFTER_ACK && t->final_state && !strcmp(t->final_state, "succeeded")
                            ? "succeeded"
                        : t->after == AFTER_NONE && t->final_state ? "fenced"
                                                                   : NULL; /* duplicate, not claimable now */
    if (!outcome)
        return;
    const char *kind = task_kind(t);
    char labels[256];
    snprintf(labels, sizeof labels, "queue=\"%s\",kind=\"%s\",outcome=\"%s\"", t->q->name, kind, outcome);
    metric_add(metric_counter("devsys_tasks_total", labels,
                              "Task outcomes recorded by this agent: succeeded, retried (a retry scheduled), "
                              "dead (to the DLQ), fenced (another agent owned the task)"),
               1);
    if (!strcmp(outcome, "succeeded") || !strcmp(outcome, "dead")) {
        snprintf(labels, sizeof labels, "kind=\"%s\"", kind);
        metric_observe(metric_histogram("devsys_task_attempts", labels, "Attempts a finished task took",
                                        metric_buckets_attempts, metric_buckets_attempts_n),
                       (double)t->attempt);
    }
    if (log_enabled(LOG_INFO)) {
        struct log_ctx c = agent_obs_ctx(t);
        const char *err = strcmp(outcome, "succeeded") ? t->reject[0] ? t->reject : t->res.error : NULL;
        log_task(LOG_INFO, &c, "task %s%s%s", outcome, err ? ": " : "", err ? err : "");
    }
}

void agent_obs_buried(const char *queue)
{
    char labels[128];
    snprintf(labels, sizeof labels, "queue=\"%s\"", queue);
    metric_add(metric_counter("devsys_dead_letters_total", labels, "Dead letters this agent wrote to a DLQ"), 1);
}
