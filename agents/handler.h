/* handler: the contract between the agent runtime and one handler per kind.
 * A handler starts work for one task on the agent's event loop and reports
 * the outcome exactly once through run->done. It must never block the loop. */
#ifndef DEVSYS_HANDLER_H
#define DEVSYS_HANDLER_H

#include <jansson.h>
#include <stddef.h>

#include "spec.h"

struct event_base;
struct pgc;
typedef struct task_run task_run_t;

#define OUTPUT_TAIL_MAX (64 * 1024)
#define CHECKPOINT_MAX (64 * 1024)   /* one checkpoint's JSON text; longer ones are refused */
/* A result's JSON text; the agent drops a longer one. Room for a 64 KiB
 * $DEVSYS_RESULT document and the list of artifacts (step_output.h). */
#define RESULT_MAX (128 * 1024)

/* The outcome of one attempt. The agent takes ownership of error, output and
 * result when done() is called. */
typedef struct handler_result {
    int ok;           /* 1 = succeeded */
    int retryable;    /* on failure: 1 = may be retried, 0 = permanent */
    char *error;      /* one line, human ("timeout", "exit status 2", ...); malloc'd or NULL */
    char *output;     /* the last OUTPUT_TAIL_MAX bytes of stdout+stderr; malloc'd or NULL */
    size_t output_len;
    json_t *result;   /* JSON object (e.g. {"exit_code":0}); reference owned by the agent, or NULL */
    /* kind testing: the report stored with the outcome (task_reports) */
    json_t *report_summary; /* junit_summary_json; reference owned by the agent, or NULL: no report */
    char *report_xml;       /* its JUnit XML (UTF-8); malloc'd or NULL */
    json_t *report_history; /* {"scope","input","cases"} for the test history (taskdb.h); owned, or NULL */
} handler_result_t;

struct task_run {
    /* set by the agent, read-only for the handler */
    struct event_base *base;
    const spec_t *spec;
    const char *id;           /* task UUID */
    long attempt;             /* 1-based */
    const char *checkpoint;   /* last checkpoint as JSON text, or NULL */
    const char *agent_name;
    double kill_grace_s;      /* SIGTERM -> SIGKILL grace on timeout/cancel */
    /* set by the exec step (exec_step.c) for the process it starts; NULL otherwise */
    const char *workdir;      /* where the command runs; NULL: spec->workdir */
    char *const *env_extra;   /* "NAME=value" entries added last to its environment, NULL-terminated */
    struct pgc *pg;           /* the agent's PostgreSQL client (kind deploy keeps its rows and lock there) */
    const json_t *secrets;    /* {"<secret name>": value} the spec's env refers to, or NULL; for the
                               * child's environment only, never to be logged or stored */

    /* The handler reports the outcome exactly once. Calling done() may free
     * the run: the handler must not touch run (or its own state reachable
     * from it) afterwards. res contents are taken over by the agent. */
    void (*done)(task_run_t *run, handler_result_t *res);
    /* Save progress (a JSON text of len <= CHECKPOINT_MAX bytes) at any time
     * before done(). The agent keeps the latest: it writes at most one per
     * task per second, and always the last one before the outcome. */
    void (*checkpoint_save)(task_run_t *run, const char *json, size_t len);
    void *agent_data;         /* the agent's own */

    void *handler_data;       /* the handler's own */
};

typedef struct handler_ops {
    const char *const *kinds; /* the kinds (kind.h) it runs, NULL-terminated */
    /* Start the work. Returns 0 if started (done() comes later, possibly
     * from a zero-delay timer but never from inside start), or -1 after
     * filling *res with the failure (done() is then not called). */
    int (*start)(task_run_t *run, handler_result_t *res);
    /* Stop the work early (cancel, agent shutdown past grace). The handler
     * still calls done() once its work has ended, with error "cancelled". */
    void (*cancel)(task_run_t *run);
} handler_ops_t;

extern const handler_ops_t handler_exec;   /* kinds exec, coding */
extern const handler_ops_t handler_noop;   /* kind noop */
extern const handler_ops_t handler_sleep;  /* kind sleep */
extern const handler_ops_t handler_testing; /* kind testing */
/* The bare process of exec, coding and testing (handler_exec.c), without the
 * workspace, inputs, result and artifacts that handler_exec (exec_step.c)
 * adds around it; in no table. */
extern const handler_ops_t exec_process;
extern const handler_ops_t handler_deploy;  /* kind deploy */
extern const handler_ops_t handler_notify;  /* kind notify (handler_notify.c) */
extern const handler_ops_t handler_monitor; /* kind monitor (handler_monitor.c) */

/* The handler table (handlers.c): the handler that runs kind, or NULL. */
const handler_ops_t *handler_find(const char *kind);
/* The i-th handler of the table, or NULL past the end. */
const handler_ops_t *handler_at(size_t i);

/* handler_exec runs spec->argv in its own process group with stdin from
 * /dev/null and an environment built from scratch (exec_env.h): the agent's
 * PATH, HOME, USER, LOGNAME, LANG, LANGUAGE, LC_*, TZ, TMPDIR and the names
 * in DEVSYS_TASK_ENV_ALLOW, then spec->env, then DEVSYS_TASK_ID,
 * DEVSYS_TASK_ATTEMPT (and its older name DEVSYS_ATTEMPT), DEVSYS_CHECKPOINT
 * (only when run->checkpoint is set) and DEVSYS_CHECKPOINT_FD=3 (always fd 3,
 * so `echo '{..}' >&3` works in any sh): each newline-terminated JSON line of
 * at most CHECKPOINT_MAX bytes written there goes to checkpoint_save. Nothing
 * else of the agent's environment (its credentials) reaches the task.
 * When the leader exits, whatever is left of the task is killed — its process
 * group, its cgroup where the agent can make one, and orphans re-parented to
 * the agent that carry its DEVSYS_TASK_ID (exec_contain.h) — and done() comes
 * once none of it is left.
 *
 * The exec handler owns SIGCHLD on base: it reaps every child of the process
 * (waitpid(-1)), so no other code in the agent may wait for its own children.
 * It also makes the process a child subreaper, so orphaned grandchildren are
 * reaped here and never linger as zombies; and it makes the process not
 * dumpable, so a task cannot read the agent's /proc/<pid>/environ or memory.
 * init reads DEVSYS_CGROUP and DEVSYS_TASK_ENV_ALLOW (exits 2 on a bad value),
 * logs the containment mechanism, is idempotent and is called
 * lazily by the first exec start() if the agent did not call it.
 * shutdown SIGKILLs the process group of every run still active, waits for
 * it and reports it through done() ("cancelled"); then frees the global
 * state. Call it before event_base_free, never from a handler callback. */
void exec_handler_init(struct event_base *base);
void exec_handler_shutdown(void);

/* handler_testing parses reports on worker threads. shutdown waits for the
 * parse under way and reports every run still parsing through done()
 * ("cancelled"). Call it while the agent still holds those tasks, before
 * event_base_free, never from a handler callback. */
void testing_handler_shutdown(void);
/* Frees the notify handler's libcurl loop once its runs are cancelled; call
 * before event_base_free, never from a handler callback. */
void notify_handler_shutdown(void);
/* Reports every monitor probe still live ("cancelled"), then frees the
 * monitor's libcurl loop and worker pool (waiting for the lookups and log
 * reads under way). Call it while the agent still holds those tasks, before
 * event_base_free, never from a handler callback. */
void monitor_handler_shutdown(void);

#endif
