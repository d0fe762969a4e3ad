/* pipelinedb: the pipeline tables in PostgreSQL (migrations/006_pipelines.sql:
 * record, read, cancel, rerun) and the publishing of the tasks a pipeline's
 * steps get, shared by the manager and the agents. */
#ifndef DEVSYS_PIPELINEDB_H
#define DEVSYS_PIPELINEDB_H

#include <jansson.h>

#include "pgc.h"
#include "pipeline.h"
#include "rc.h"

/* Record p (validated, id its UUID) with its steps and nodes, create its
 * root steps' tasks and take them for publishing (taskdb_pipeline_take), in
 * one statement. Result: created on every row (tasks; -2 when p waits in its
 * concurrency group's line: no task yet) and the columns of the take, one row
 * per task (a single row with NULL id when none): hand it to
 * pipelinedb_publish_taken. A pipeline with cancel_in_progress then calls
 * pipelinedb_supersede. */
void pipelinedb_submit(pgc_t *pg, const pipeline_t *p, const char *id, const char *actor, pgc_result_fn *fn,
                       void *arg);

/* Take the pipelines' unpublished step tasks (taskdb_pipeline_take) and
 * publish each to its queue; a publish that fails marks the task unpublished
 * (the reconciler republishes it); then the running steps that a newer step
 * of those pipelines with concurrency.cancel_in_progress supersedes are
 * cancelled (migrations/017), each in a statement of its own. ids: n
 * pipeline ids (copied). done (may be
 * NULL) is called once with the tasks taken, [{"id", "step", "index"}]
 * (borrowed), and how many publishes failed (-1: the statement failed). */
typedef void pipelinedb_published_fn(void *arg, const json_t *tasks, int failed);
void pipelinedb_publish(pgc_t *pg, rc_t *rc, const char *prefix, const char *const *ids, size_t n,
                        pipelinedb_published_fn *done, void *arg);

/* pipelinedb_publish for the rows pipelinedb_submit took (res, borrowed:
 * read before this returns); supersede: pipeline id has a step with
 * concurrency.cancel_in_progress (its running elders are cancelled). */
void pipelinedb_publish_taken(pgc_t *pg, rc_t *rc, const char *prefix, PGresult *res, int supersede,
                              const char *id, pipelinedb_published_fn *done, void *arg);

/* One pipeline as JSON (one text column): steps in order with their nodes,
 * each node's state, task, attempts, duration and links. No row: absent. */
void pipelinedb_get(pgc_t *pg, const char *id, pgc_result_fn *fn, void *arg);

/* Recent pipelines, newest first, name NULL for all; keyset paged after
 * (after_us, after_id) (both NULL: from the newest); with queues or apps
 * (PostgreSQL text[] literals, NULL: any) only pipelines whose every node is
 * in them (devsys_spec_in_scope). Result rows: json, cursor
 * ("<created_at µs>_<id>"). */
void pipelinedb_list(pgc_t *pg, const char *name, const char *after_us, const char *after_id, const char *limit,
                     const char *queues, const char *apps, pgc_result_fn *fn, void *arg);

/* Cancel p's unfinished tasks, and the steps not started. Result: one row,
 * result: JSON {"state": p's state now (null: absent), "cancelled": this
 * call cancelled it, "tasks": [{"id", "was"}] of the tasks cancelled}. */
void pipelinedb_cancel(pgc_t *pg, const char *id, pgc_result_fn *fn, void *arg);

/* Rerun a finished p from its failures. Result: created (tasks; NULL when p
 * is absent, -1 while it runs or is queued, -2 when it is queued now behind
 * its concurrency group's running pipeline). */
void pipelinedb_rerun(pgc_t *pg, const char *id, pgc_result_fn *fn, void *arg);

/* Tells the agents running the cancelled tasks [{"id", "was"}] (as
 * pipelinedb_cancel returns them) to stop the running ones (fire and forget). */
void pipelinedb_signal_cancelled(rc_t *rc, const char *prefix, const json_t *tasks);

/* Concurrency groups (migrations/014): cancels the running pipelines that a
 * newer queued one of their group with cancel_in_progress supersedes (of id's
 * group; id NULL: of every group), each in its own statement, signals their
 * running tasks and publishes what their end started; id NULL: superseded
 * running steps too (migrations/017). Fire and forget. */
void pipelinedb_supersede(pgc_t *pg, rc_t *rc, const char *prefix, const char *id);

/* The periodic pass (the reconciler's tick): approvals past their deadline
 * fail their steps (at most PIPELINEDB_SWEEP_BATCH pipelines per pass; safe
 * with several managers), what that made due is published, step concurrency
 * groups whose next in line nobody started are woken, and superseded
 * pipelines and steps are cancelled (pipelinedb_supersede). Fire and forget. */
#define PIPELINEDB_SWEEP_BATCH "100"
void pipelinedb_sweep(pgc_t *pg, rc_t *rc, const char *prefix);

#endif
