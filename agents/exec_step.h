/* exec_step: handler_exec (kinds exec and coding; testing runs through it
 * too): the process (exec_process) in the task's workspace (workspace.h),
 * with its inputs downloaded before it starts and its $DEVSYS_RESULT
 * document and expected artifacts (step_output.h) collected, hashed in a
 * thread and uploaded (step_transfer.h) after it succeeded. */
#ifndef DEVSYS_EXEC_STEP_H
#define DEVSYS_EXEC_STEP_H

/* Steps that are downloading, hashing or uploading are reported cancelled
 * (their process, if any, has ended). Called by exec_handler_shutdown first. */
void exec_step_stop_all(void);
/* Frees the globals (workspace sweep, transfers); last in exec_handler_shutdown. */
void exec_step_shutdown(void);

#endif
