/* agent_obs: what the agent tells operators about each task: the metrics of
 * its attempts and outcomes, and log lines carrying its task id, attempt and
 * pipeline id (so a task is followed across the manager's and agents' logs). */
#ifndef DEVSYS_AGENT_OBS_H
#define DEVSYS_AGENT_OBS_H

#include "agent_internal.h"
#include "log.h"

/* The log context of t (pointers into t: valid while t lives). */
struct log_ctx agent_obs_ctx(const struct task *t);
/* Its handler starts: an info line (DEVSYS_LOG_LEVEL=warn drops the per-task lines). */
void agent_obs_started(const struct task *t);
/* Its handler ended: the run-time histogram of its kind, and a line. */
void agent_obs_ran(const struct task *t);
/* Its outcome is recorded in PostgreSQL and about to be settled in Redis
 * (t->after says how): devsys_tasks_total{queue,kind,outcome} and the
 * attempts histogram of finished tasks. */
void agent_obs_outcome(const struct task *t);
/* A dead letter was written to the queue's DLQ. */
void agent_obs_buried(const char *queue);

#endif
