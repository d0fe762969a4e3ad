/* deploy_run: one helper command of a deploy (copy, extract, prune, a check
 * command) as a bare exec process (exec_process) on behalf of the deploy's task: same
 * process group rules, environment allow-list, containment and SIGCHLD
 * ownership as any exec task, so the agent's loop never blocks on the disk. */
#ifndef DEVSYS_DEPLOY_RUN_H
#define DEVSYS_DEPLOY_RUN_H

#include <jansson.h>

#include "handler.h"

typedef struct deploy_run deploy_run_t;

/* The command's outcome as the exec handler reports it (error, output tail,
 * result {"exit_code"}). The callback owns res's contents (free them with
 * deploy_run_result_clear); the run is already freed. */
typedef void deploy_run_fn(handler_result_t *res, void *arg);

/* Runs argv (NULL-terminated, copied) in workdir (NULL: the agent's) with
 * env (a JSON object of strings, reference stolen, may be NULL) under
 * outer's task id and attempt, killed after timeout_s (0: never). Returns the
 * run, or NULL with *res filled (fn is then not called). */
deploy_run_t *deploy_run_start(task_run_t *outer, const char *const *argv, const char *workdir, json_t *env,
                               double timeout_s, deploy_run_fn *fn, void *arg, handler_result_t *res);
/* Stops it (SIGTERM, then SIGKILL after the grace); fn still comes, with
 * error "cancelled". */
void deploy_run_cancel(deploy_run_t *r);

/* Frees what res holds. */
void deploy_run_result_clear(handler_result_t *res);

/* The last non-empty line of res's output (at most 300 bytes), or NULL;
 * caller frees. */
char *deploy_run_last_line(const handler_result_t *res);

#endif
