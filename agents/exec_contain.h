/* exec_contain: no descendant of a task outlives it. Where the agent may
 * create cgroups (cgroup v2, delegated), each task runs in its own cgroup,
 * killed whole (cgroup.kill) and removed when the task ends. Always, as the
 * child subreaper it is, the agent also kills the orphans re-parented to it
 * that carry the task's DEVSYS_TASK_ID in their environment. */
#ifndef DEVSYS_EXEC_CONTAIN_H
#define DEVSYS_EXEC_CONTAIN_H

#include <stddef.h>
#include <sys/types.h>

typedef struct contain contain_t;

/* Reads DEVSYS_CGROUP: "auto" (default: a cgroup per task if the agent may
 * create one, else the subreaper sweep alone), "off", or the path of a
 * cgroup2 directory to create the agent's cgroups under (exits 2 if it
 * cannot be used). Creates <parent>/devsys-agent-<pid>, removes what agents
 * that died left there, and logs the mechanism. Idempotent until shutdown. */
void contain_init(void);
/* Removes the agent's cgroup directory (its tasks' cgroups are gone by then). */
void contain_shutdown(void);
/* "cgroup <dir>" or "subreaper" */
const char *contain_mechanism(void);

/* Before fork: the containment of one task. In cgroup mode, its cgroup is
 * created; if that fails the task runs with the sweep alone (logged). Never
 * NULL; freed by contain_free. */
contain_t *contain_new(const char *task_id);
/* The fd the child writes "0" to (contain_join) to enter the cgroup, or -1. */
int contain_join_fd(const contain_t *c);
/* In the forked child before exec; async-signal-safe. 0 or -1 with errno. */
int contain_join(int fd);
/* In the parent after fork: the join fd is no longer needed. */
void contain_forked(contain_t *c);

/* After the task's leader (process group pgid) was reaped: SIGKILLs what is
 * left of the group, of the cgroup, and the orphans re-parented to the agent
 * that carry the task's id (with idle set, also orphans that carry no task id
 * at all: no other task runs that they could belong to). is_leader(pid) tells
 * the agent's running task leaders, which are never touched. Returns 1 when
 * nothing of the task is left (the cgroup is removed), 0 when processes were
 * signalled or are still dying: call again after their SIGCHLD was handled. */
int contain_sweep(contain_t *c, pid_t pgid, int idle, int (*is_leader)(pid_t));
/* Closes the join fd and removes the cgroup if still there. */
void contain_free(contain_t *c);

#endif
