/* exec_env: a task's environment, built from scratch: an allow-list of the
 * agent's variables, the spec's env, then the DEVSYS_TASK_* variables. Never
 * the agent's credentials or anything else of its environment. */
#ifndef DEVSYS_EXEC_ENV_H
#define DEVSYS_EXEC_ENV_H

#include "handler.h"

/* Reads DEVSYS_TASK_ENV_ALLOW (comma list of extra names tasks inherit from
 * the agent). Exits 2 naming the entry when it names a DEVSYS_* variable or
 * one that spec_env_refused refuses. Idempotent until exec_env_shutdown. */
void exec_env_init(void);
void exec_env_shutdown(void);

/* The environment of run's child, checkpoint fd cp_fd. Returns a
 * NULL-terminated array; the caller frees it with exec_env_free. */
char **exec_env_build(const task_run_t *run, int cp_fd);
void exec_env_free(char **envp);

#endif
