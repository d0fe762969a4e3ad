/* deploydb: the deployments table (migrations/007_deployments.sql): a deploy's
 * row from start to outcome, the per app+env deploy lock (oldest first, held
 * only by a live task), and the history the manager lists. Every statement on
 * deployments lives here; callers get parsed values, never column positions. */
#ifndef DEVSYS_DEPLOYDB_H
#define DEVSYS_DEPLOYDB_H

#include "pgc.h"

/* What deploydb_begin found or made. Strings are valid during the callback
 * only; NULL for SQL NULL. err is "" on success (else res fields are unset). */
typedef struct deploydb_row {
    const char *revision;          /* deploy: given or derived; rollback: NULL until known */
    const char *previous_revision; /* set when an earlier attempt of this task switched */
    int switched;                  /* an earlier attempt of this task switched `current` */
} deploydb_row_t;
typedef void deploydb_row_fn(const deploydb_row_t *row, const char *err, void *arg);

/* Inserts the task's row in state waiting (or, for a retried task, puts its
 * row back to waiting at this attempt, keeping its place in line). revision
 * NULL on a deploy: derived, "<UTC yyyymmddThhmmss>-<last 8 hex of the task
 * id>", stable across attempts. deployed_by: the actor of the audit row that
 * names the task, else agent. pipeline_id may be NULL. */
void deploydb_begin(pgc_t *pg, const char *task_id, long attempt, const char *app, const char *env,
                    int rollback, const char *revision, const char *pipeline_id, const char *agent,
                    deploydb_row_fn *fn, void *arg);

/* One try for the app+env lock (deploy_lock_try). granted 1: the task holds
 * it until deploydb_finish. Else blocker is the task holding it or ahead in
 * line (may be NULL). */
typedef void deploydb_lock_fn(int granted, const char *blocker, const char *err, void *arg);
void deploydb_lock_try(pgc_t *pg, const char *task_id, deploydb_lock_fn *fn, void *arg);

/* A text answer: value NULL when there is none. */
typedef void deploydb_text_fn(const char *value, const char *err, void *arg);
/* The task (other than task_id) whose deploy already switched to revision of
 * app+env, or NULL: a revision name is deployed once. */
void deploydb_revision_taken(pgc_t *pg, const char *app, const char *env, const char *revision,
                             const char *task_id, deploydb_text_fn *fn, void *arg);
/* The revision that was current before `current` (the previous revision of
 * the last succeeded deploy or rollback to current), or NULL. */
void deploydb_previous(pgc_t *pg, const char *app, const char *env, const char *current, deploydb_text_fn *fn,
                       void *arg);

/* `current` now points at revision (was previous, may be NULL). fn may be NULL. */
void deploydb_switched(pgc_t *pg, const char *task_id, long attempt, const char *revision, const char *previous,
                       pgc_result_fn *fn, void *arg);
/* The outcome: succeeded | failed | rolled_back, with error (may be NULL);
 * releases the lock. Guarded by attempt. fn may be NULL. */
void deploydb_finish(pgc_t *pg, const char *task_id, long attempt, const char *outcome, const char *error,
                     pgc_result_fn *fn, void *arg);

/* The history of app (env NULL: every env), newest first, at most limit rows,
 * as one JSON text: [{"id", "env", "action", "revision", "previous_revision",
 * "task_id", "pipeline_id", "deployed_by", "state", "started_at",
 * "switched_at", "finished_at", "outcome", "error", "task_state"}]. */
void deploydb_history(pgc_t *pg, const char *app, const char *env, long limit, deploydb_text_fn *fn, void *arg);

#endif
