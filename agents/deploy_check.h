/* deploy_check: the acceptance check of a deploy, after its switch: an HTTP
 * GET through libcurl's multi interface driven by the agent's loop (expected
 * status, optional body pattern, retries at an interval), or a command run
 * through the exec handler in the deployed revision. Never blocks the loop. */
#ifndef DEVSYS_DEPLOY_CHECK_H
#define DEVSYS_DEPLOY_CHECK_H

#include "handler.h"

#define DEPLOY_CHECK_BODY_MAX (64 * 1024) /* bytes of a response the body pattern sees */
#define DEPLOY_CHECK_COMMAND_TIMEOUT_S 600.0 /* a check command's limit when the task has none */

typedef struct deploy_check deploy_check_t;

/* ok 1: passed. Else why says what failed, one line ("GET http://x/ answered
 * 500, expected 200"); it is the callback's (free it). The check is already
 * freed. */
typedef void deploy_check_fn(int ok, char *why, void *arg);

/* Starts the check of run's deploy section on the revision in dir (named
 * revision). Returns NULL when the section has no check (fn is not called). */
deploy_check_t *deploy_check_start(task_run_t *run, const char *dir, const char *revision, deploy_check_fn *fn,
                                   void *arg);
/* Stops it; fn still comes (not from inside this call), with why "cancelled". */
void deploy_check_cancel(deploy_check_t *c);

#endif
