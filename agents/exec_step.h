/* exec_step: handler_exec (kinds exec and coding; testing runs through it
 * too): the process (exec_process) in the task's workspace (workspace.h),
 * with its inputs downloaded before it starts and its $DEVSYS_RESULT
 * document and expected artifacts (step_output.h) collected, hashed in a
 * thread and uploaded (step_transfer.h) after it succeeded. */
#ifndef DEVSYS_EXEC_STEP_H
#define DEVSYS_EXEC_STEP_H

#include "handler.h"

/* Runs work (a handler in no table: exec_process, or a kind's own work such
 * as deploy's) as a step of run: in the task's workspace, locked for the
 * attempt (a sibling "<id>.2"... when another attempt holds it), after the
 * spec's inputs were downloaded into <workspace>/inputs/<node>/<path>. work
 * gets a copy of run whose workdir is the spec's workdir, else that
 * workspace, and whose env_extra has DEVSYS_WORKSPACE, DEVSYS_RESULT and
 * DEVSYS_INPUTS. Only exec_process gets the result document and the
 * expected artifacts. The start and cancel contracts of handler_ops_t. */
int exec_step_start(task_run_t *run, handler_result_t *res, const handler_ops_t *work);
void exec_step_cancel(task_run_t *run);

/* Steps that are downloading, hashing or uploading are reported cancelled
 * (their process, if any, has ended). Called by exec_handler_shutdown first. */
void exec_step_stop_all(void);
/* Frees the globals (workspace sweep, transfers); last in exec_handler_shutdown. */
void exec_step_shutdown(void);

#endif
