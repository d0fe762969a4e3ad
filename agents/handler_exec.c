/* handler_exec: kinds exec and coding. Runs spec->argv as a child in its own
 * process group (and cgroup, exec_contain.c) with an environment built from an
 * allow-list (exec_env.c), keeps a bounded tail of stdout+stderr, relays
 * checkpoint lines, and enforces timeout/cancel on the whole group (handler.h). */
#include "handler.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "exec_contain.h"
#include "exec_env.h"
#include "exec_pipe.h"
#include "exec_step.h"
#include "log.h"
#include "xalloc.h"

#define READS_PER_WAKEUP 16     /* a fast writer must not starve the loop */
#define DRAIN_MAX_READS 64      /* final drain: the writers are dead or killed */
#define REGISTRY_BUCKETS 1024
#define EXEC_CHECKPOINT_FD 3    /* in the child; named by DEVSYS_CHECKPOINT_FD */
#define SWEEP_PERIOD_MS 20      /* between passes over what is left of an ended task */
#define SWEEP_MAX_PASSES 250    /* 5 s: then the outcome is reported anyway (logged) */

enum exec_stop { STOP_NONE, STOP_TIMEOUT, STOP_CANCEL };

/* What the child reports through the status pipe when it cannot exec. */
enum child_stage { STAGE_SETUP = 1, STAGE_WORKDIR, STAGE_EXEC, STAGE_CGROUP };
struct child_failure {
    int stage;
    int err;
};

typedef struct exec_run {
    task_run_t *run;
    pid_t pid;               /* the leader; also the process group id */
    struct exec_run *next;   /* registry chain, then the list of runs being swept */
    contain_t *contain;      /* its cgroup and orphan marker */
    int out_fd;              /* read end of stdout+stderr */
    int cp_fd;               /* read end of the checkpoint pipe */
    struct event *out_ev;
    struct event *cp_ev;
    struct event *timer;     /* timeout, then the SIGTERM -> SIGKILL grace */
    exec_tail_t out;         /* the tail of stdout+stderr */
    exec_cplines_t cp;       /* the checkpoint line being assembled */
    enum exec_stop stop;
    int term_sent, kill_sent;
    int reaped;
    int status;              /* the leader's wait status, once reaped */
    struct event *sweep_ev;  /* after the leader: until nothing of the task is left */
    int sweep_passes;
} exec_run_t;

static struct event_base *exec_base;
static struct event *exec_sigchld_ev;
static exec_run_t *exec_registry[REGISTRY_BUCKETS];
static size_t exec_nleaders;        /* runs in the registry */
static exec_run_t *exec_sweeping;   /* leader reaped, descendants still dying */

/* ---- registry: leader pid -> run ---- */

static size_t registry_slot(pid_t pid)
{
    return (size_t)pid % REGISTRY_BUCKETS;
}

static void registry_add(exec_run_t *er)
{
    size_t b = registry_slot(er->pid);
    er->next = exec_registry[b];
    exec_registry[b] = er;
    exec_nleaders++;
}

static exec_run_t *registry_remove(pid_t pid)
{
    exec_run_t **pp = &exec_registry[registry_slot(pid)];
    for (; *pp; pp = &(*pp)->next) {
        if ((*pp)->pid == pid) {
            exec_run_t *er = *pp;
            *pp = er->next;
            er->next = NULL;
            exec_nleaders--;
            return er;
        }
    }
    return NULL;
}

static int registry_has(pid_t pid)
{
    for (exec_run_t *er = exec_registry[registry_slot(pid)]; er; er = er->next)
        if (er->pid == pid)
            return 1;
    return 0;
}

/* ---- small helpers ---- */

static struct timeval seconds_to_tv(double s)
{
    struct timeval tv = {0, 0};
    if (s > 0) {
        tv.tv_sec = (time_t)s;
        tv.tv_usec = (suseconds_t)((s - (double)tv.tv_sec) * 1e6);
    }
    return tv;
}

/* Keeps fd away from 0..2 so the child's dup2 onto stdio cannot clobber it
 * (possible when the agent runs with a closed stdin). */
static int fd_above_stdio(int fd)
{
    if (fd > 2)
        return fd;
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int saved = errno;
    close(fd);
    errno = saved;
    return moved;
}

static int exec_pipe(int fds[2])
{
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -1;
    fds[0] = fd_above_stdio(fds[0]);
    fds[1] = fd_above_stdio(fds[1]);
    if (fds[0] < 0 || fds[1] < 0) {
        int saved = errno;
        if (fds[0] >= 0)
            close(fds[0]);
        if (fds[1] >= 0)
            close(fds[1]);
        fds[0] = fds[1] = -1;
        errno = saved;
        return -1;
    }
    return 0;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void set_nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* ---- the child, between fork and exec ---- */

/* Runs in the forked child: only plain system calls (no allocation). The
 * parent blocked all signals around fork, so no handler of the agent (whose
 * libevent signal pipe the child shares) can run here; dispositions go back
 * to default before unblocking, and ignored ones (SIGPIPE) too, because
 * SIG_IGN would otherwise survive exec and break the child's pipelines. */
static void __attribute__((noreturn))
exec_child(const spec_t *spec, const char *workdir, char **envp, int cg_fd, int devnull, int out_w, int cp_w, int st_w)
{
    struct child_failure cf = {STAGE_SETUP, 0};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    for (int s = 1; s < NSIG; s++)
        sigaction(s, &sa, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    /* first: the dup2s below may reuse cg_fd's number */
    if (cg_fd >= 0 && contain_join(cg_fd) < 0) {
        cf.stage = STAGE_CGROUP;
        goto fail;
    }
    if (setpgid(0, 0) < 0)
        goto fail;
    if (dup2(devnull, 0) < 0 || dup2(out_w, 1) < 0 || dup2(out_w, 2) < 0)
        goto fail;
    /* The checkpoint pipe is always fd 3: dash (/bin/sh here) rejects
     * `>&$fd` for fds above 9, and a fixed number is easy to document. */
    if (st_w == EXEC_CHECKPOINT_FD && (st_w = fcntl(st_w, F_DUPFD_CLOEXEC, 4)) < 0)
        goto fail;
    if (cp_w != EXEC_CHECKPOINT_FD && dup2(cp_w, EXEC_CHECKPOINT_FD) < 0)
        goto fail;
    if (fcntl(EXEC_CHECKPOINT_FD, F_SETFD, 0) < 0)
        goto fail;
    /* Sockets of the agent (Redis, PostgreSQL) may lack O_CLOEXEC: none of
     * them may leak into a task that can outlive the agent. */
    (void)close_range(EXEC_CHECKPOINT_FD + 1, ~0U, CLOSE_RANGE_CLOEXEC);
    if (workdir && chdir(workdir) < 0) {
        cf.stage = STAGE_WORKDIR;
        goto fail;
    }
    environ = envp;
    cf.stage = STAGE_EXEC;
    execvp(spec->argv[0], (char *const *)spec->argv);
fail:
    cf.err = errno;
    (void)!write(st_w, &cf, sizeof cf);
    _exit(127);
}

static int exec_errno_transient(int err)
{
    return err == EAGAIN || err == ENOMEM || err == EMFILE || err == ENFILE || err == ETXTBSY ||
           err == EINTR;
}

static void fail_with(handler_result_t *res, int retryable, char *error)
{
    res->ok = 0;
    res->retryable = retryable;
    res->error = error;
}

/* Forks and execs; on success fills er->pid/out_fd/cp_fd and returns 0. On
 * failure fills res (workdir/command errors are permanent, resource errors
 * retryable) and returns -1 with no child left behind. The read on the status
 * pipe blocks only until the child execs (CLOEXEC closes it) or reports. */
static int exec_spawn(exec_run_t *er, handler_result_t *res)
{
    const task_run_t *run = er->run;
    const spec_t *spec = run->spec;
    int out[2] = {-1, -1}, cp[2] = {-1, -1}, st[2] = {-1, -1};
    int devnull = -1;
    char **envp = NULL;

    if (exec_pipe(out) < 0 || exec_pipe(cp) < 0 || exec_pipe(st) < 0) {
        fail_with(res, 1, xasprintf("spawn: pipe: %s", strerror(errno)));
        goto fail;
    }
    devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull >= 0)
        devnull = fd_above_stdio(devnull);
    if (devnull < 0) {
        fail_with(res, 1, xasprintf("spawn: /dev/null: %s", strerror(errno)));
        goto fail;
    }
    envp = exec_env_build(run, EXEC_CHECKPOINT_FD);
    er->contain = contain_new(run->id);

    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &old);
    pid_t pid = fork();
    if (pid == 0)
        exec_child(spec, run->workdir ? run->workdir : spec->workdir, envp, contain_join_fd(er->contain), devnull, out[1], cp[1], st[1]);
    int fork_errno = errno;
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        fail_with(res, 1, xasprintf("spawn: fork: %s", strerror(fork_errno)));
        goto fail;
    }
    close_fd(&out[1]);
    close_fd(&cp[1]);
    close_fd(&st[1]);
    close_fd(&devnull);
    contain_forked(er->contain);
    exec_env_free(envp);
    envp = NULL;

    struct child_failure cf;
    ssize_t n;
    do
        n = read(st[0], &cf, sizeof cf);
    while (n < 0 && errno == EINTR);
    close_fd(&st[0]);
    if (n == (ssize_t)sizeof cf) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        if (cf.stage == STAGE_WORKDIR)
            fail_with(res, 0, xasprintf("workdir: %s: %s", run->workdir ? run->workdir : spec->workdir,
                                        strerror(cf.err)));
        else if (cf.stage == STAGE_CGROUP)
            fail_with(res, 1, xasprintf("spawn: joining the task's cgroup: %s", strerror(cf.err)));
        else if (cf.stage == STAGE_EXEC)
            fail_with(res, exec_errno_transient(cf.err),
                      xasprintf("command: %s: %s", spec->argv[0], strerror(cf.err)));
        else
            fail_with(res, 1, xasprintf("spawn: child setup: %s", strerror(cf.err)));
        goto fail;
    }
    /* n == 0: exec succeeded. A short read cannot happen for 8 bytes on a
     * pipe; a read error leaves us without news, so assume the exec worked
     * and let the exit status tell. */
    er->pid = pid;
    er->out_fd = out[0];
    er->cp_fd = cp[0];
    set_nonblocking(er->out_fd);
    set_nonblocking(er->cp_fd);
    return 0;

fail:
    close_fd(&out[0]);
    close_fd(&out[1]);
    close_fd(&cp[0]);
    close_fd(&cp[1]);
    close_fd(&st[0]);
    close_fd(&st[1]);
    close_fd(&devnull);
    exec_env_free(envp);
    contain_free(er->contain);
    er->contain = NULL;
    return -1;
}

/* ---- output and checkpoint pipes (exec_pipe.c) ---- */

static void exec_on_output(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    exec_run_t *er = arg;
    exec_pipe_tail_read(&er->out, er->out_fd, READS_PER_WAKEUP);
    if (er->out.eof)
        event_del(er->out_ev);
}

static void exec_on_checkpoint(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    exec_run_t *er = arg;
    exec_pipe_cp_read(&er->cp, er->cp_fd, READS_PER_WAKEUP, er->run);
    if (er->cp.eof)
        event_del(er->cp_ev);
}

/* ---- stopping ---- */

static void exec_signal_group(exec_run_t *er, int sig)
{
    if (kill(-er->pid, sig) < 0 && errno != ESRCH)
        log_warn("task %s: kill(-%d, %d): %s", er->run->id, (int)er->pid, sig, strerror(errno));
}

/* SIGTERM now (with SIGCONT so a stopped group sees it), SIGKILL after the
 * grace period unless the leader is reaped first. */
static void exec_terminate(exec_run_t *er)
{
    exec_signal_group(er, SIGTERM);
    exec_signal_group(er, SIGCONT);
    er->term_sent = 1;
    struct timeval tv = seconds_to_tv(er->run->kill_grace_s);
    event_del(er->timer);
    evtimer_add(er->timer, &tv);
}

static void exec_on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    exec_run_t *er = arg;
    if (!er->term_sent) {
        if (er->stop == STOP_NONE)
            er->stop = STOP_TIMEOUT;
        log_info("task %s: timeout after %gs, SIGTERM to process group %d", er->run->id,
                 er->run->spec->timeout_s, (int)er->pid);
        exec_terminate(er);
    } else if (!er->kill_sent) {
        log_info("task %s: process group %d still alive after %gs grace, SIGKILL", er->run->id,
                 (int)er->pid, er->run->kill_grace_s);
        exec_signal_group(er, SIGKILL);
        er->kill_sent = 1;
    }
}

/* ---- finishing ---- */

static json_t *exec_result_json(int status)
{
    if (WIFSIGNALED(status))
        return json_pack("{s:i,s:n}", "signal", WTERMSIG(status), "exit_code");
    return json_pack("{s:i}", "exit_code", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

static void exec_build_result(exec_run_t *er, int status, handler_result_t *res)
{
    memset(res, 0, sizeof *res);
    exec_pipe_tail_take(&er->out, res);
    res->result = exec_result_json(status);
    if (er->stop == STOP_CANCEL) {
        fail_with(res, 0, xstrdup("cancelled"));
    } else if (er->stop == STOP_TIMEOUT) {
        fail_with(res, 1, xstrdup("timeout"));
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        res->ok = 1;
    } else if (WIFEXITED(status)) {
        fail_with(res, 1, xasprintf("exit status %d", WEXITSTATUS(status)));
    } else if (WIFSIGNALED(status)) {
        const char *abbrev = sigabbrev_np(WTERMSIG(status));
        fail_with(res, 1, xasprintf("killed by signal %d (SIG%s)", WTERMSIG(status),
                                    abbrev ? abbrev : "?"));
    } else {
        fail_with(res, 1, xasprintf("unexpected wait status %d", status));
    }
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (!res->ok && code >= 0 && (er->run->spec->retry.permanent_exit[code / 8] & (1u << (code % 8)))) {
        /* the task said: retrying will not help */
        free(res->error);
        fail_with(res, 0,
                  xasprintf("exit status %d (permanent: in retry_policy.permanent_exit_codes)", code));
    }
}

static void exec_release(exec_run_t *er)
{
    event_free(er->out_ev);
    event_free(er->cp_ev);
    event_free(er->timer);
    if (er->sweep_ev)
        event_free(er->sweep_ev);
    contain_free(er->contain);
    close_fd(&er->out_fd);
    close_fd(&er->cp_fd);
    exec_pipe_tail_clear(&er->out);
    exec_pipe_cp_clear(&er->cp);
    free(er);
}

/* Nothing of the task is left: the pipes are drained and done() is called
 * last. Never from one of the run's own events (it frees them). */
static void exec_complete(exec_run_t *er)
{
    task_run_t *run = er->run;
    exec_pipe_tail_read(&er->out, er->out_fd, DRAIN_MAX_READS);
    exec_pipe_cp_read(&er->cp, er->cp_fd, DRAIN_MAX_READS, er->run);
    handler_result_t res;
    exec_build_result(er, er->status, &res);
    run->handler_data = NULL;
    exec_release(er);
    run->done(run, &res);
}

static void sweeping_remove(exec_run_t *er)
{
    for (exec_run_t **pp = &exec_sweeping; *pp; pp = &(*pp)->next) {
        if (*pp == er) {
            *pp = er->next;
            er->next = NULL;
            return;
        }
    }
}

/* One pass over what is left of the task; 1 when it is gone (or the passes
 * are used up, logged: a process in uninterruptible sleep can outlast SIGKILL). */
static int exec_sweep(exec_run_t *er)
{
    if (contain_sweep(er->contain, er->pid, exec_nleaders == 0, registry_has))
        return 1;
    if (++er->sweep_passes < SWEEP_MAX_PASSES)
        return 0;
    log_error("task %s: processes of the task still alive after %d s of SIGKILL; reporting it ended",
              er->run->id, SWEEP_MAX_PASSES * SWEEP_PERIOD_MS / 1000);
    return 1;
}

static void exec_on_sweep(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    exec_run_t *er = arg;
    exec_pipe_tail_read(&er->out, er->out_fd, READS_PER_WAKEUP);
    exec_pipe_cp_read(&er->cp, er->cp_fd, READS_PER_WAKEUP, er->run);
    if (!exec_sweep(er)) {
        struct timeval tv = {0, SWEEP_PERIOD_MS * 1000};
        evtimer_add(er->sweep_ev, &tv);
        return;
    }
    sweeping_remove(er);
    /* done() frees er and its events: leave this callback through a fresh one */
    event_free(er->sweep_ev);
    er->sweep_ev = NULL;
    exec_complete(er);
}

/* The leader has been reaped (er is already out of the registry). Whatever
 * is left of the task — its process group, its cgroup, orphans marked with
 * its id — is killed; the outcome is reported once none of it is left.
 * Runs from the SIGCHLD callback (or shutdown), never from one of the run's
 * own events. */
static void exec_finish(exec_run_t *er, int status)
{
    er->reaped = 1;
    er->status = status;
    event_del(er->timer);
    if (kill(-er->pid, SIGKILL) == 0)
        log_debug("task %s: killed what was left of process group %d", er->run->id, (int)er->pid);
    exec_pipe_tail_read(&er->out, er->out_fd, DRAIN_MAX_READS);
    exec_pipe_cp_read(&er->cp, er->cp_fd, DRAIN_MAX_READS, er->run);
    if (exec_sweep(er)) {
        exec_complete(er);
        return;
    }
    er->next = exec_sweeping;
    exec_sweeping = er;
    er->sweep_ev = evtimer_new(exec_base, exec_on_sweep, er);
    if (!er->sweep_ev) {
        log_error("task %s: out of libevent resources", er->run->id);
        abort();
    }
    struct timeval tv = {0, SWEEP_PERIOD_MS * 1000};
    evtimer_add(er->sweep_ev, &tv);
}

static void exec_on_sigchld(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    (void)arg;
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid < 0 && errno == EINTR)
            continue;
        if (pid <= 0)
            break;
        exec_run_t *er = registry_remove(pid);
        if (er)
            exec_finish(er, status);
        /* else: an orphaned grandchild handed to us as subreaper */
    }
}

/* ---- public ---- */

void exec_handler_init(struct event_base *base)
{
    if (exec_base)
        return;
    /* Orphans of a task (daemonized grandchildren) come to us rather than to
     * a PID 1 that may never reap them, and the SIGCHLD loop reaps them. */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
        log_warn("exec: PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
    /* Tasks run as the agent's user: not dumpable, the agent's memory and
     * /proc/<agent>/environ (its credentials) are closed to them (to ptrace
     * too). exec resets the flag, so the tasks themselves are unaffected. */
    if (prctl(PR_SET_DUMPABLE, 0) < 0)
        log_warn("exec: PR_SET_DUMPABLE: %s", strerror(errno));
    exec_env_init();
    contain_init();
    exec_sigchld_ev = evsignal_new(base, SIGCHLD, exec_on_sigchld, NULL);
    if (!exec_sigchld_ev || evsignal_add(exec_sigchld_ev, NULL) < 0) {
        log_error("exec: cannot watch SIGCHLD; exec tasks would never complete");
        abort();
    }
    exec_base = base;
}

/* Reaps children that are not task leaders (orphans being swept); the
 * SIGCHLD callback does it while the loop runs. */
static void reap_non_leaders(void)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        if (registry_has(pid))
            log_error("exec: leader %d reaped outside its run", (int)pid);
}

void exec_handler_shutdown(void)
{
    if (!exec_base)
        return;
    exec_step_stop_all(); /* steps downloading, hashing or uploading: cancelled */
    for (size_t b = 0; b < REGISTRY_BUCKETS; b++)
        for (exec_run_t *er = exec_registry[b]; er; er = er->next)
            exec_signal_group(er, SIGKILL);
    for (size_t b = 0; b < REGISTRY_BUCKETS; b++) {
        exec_run_t *er;
        while ((er = exec_registry[b]) != NULL) {
            registry_remove(er->pid);
            int status = 0;
            while (waitpid(er->pid, &status, 0) < 0 && errno == EINTR)
                ;
            er->stop = STOP_CANCEL;
            exec_finish(er, status);
        }
    }
    /* The loop no longer runs: sweep here until every task is gone. */
    while (exec_sweeping) {
        struct timespec ts = {0, SWEEP_PERIOD_MS * 1000000L};
        nanosleep(&ts, NULL);
        reap_non_leaders();
        for (exec_run_t *er = exec_sweeping, *next; er; er = next) {
            next = er->next;
            if (exec_sweep(er)) {
                sweeping_remove(er);
                exec_complete(er);
            }
        }
    }
    reap_non_leaders();
    exec_step_shutdown();
    contain_shutdown();
    exec_env_shutdown();
    event_free(exec_sigchld_ev);
    exec_sigchld_ev = NULL;
    exec_base = NULL;
}

static int exec_start(task_run_t *run, handler_result_t *res)
{
    memset(res, 0, sizeof *res);
    const spec_t *spec = run->spec;
    if (!spec->argv || !spec->argv[0] || !spec->argv[0][0]) {
        fail_with(res, 0, xstrdup("command: empty"));
        return -1;
    }
    if (!exec_base)
        exec_handler_init(run->base);

    exec_run_t *er = xcalloc(1, sizeof *er);
    er->run = run;
    er->out_fd = er->cp_fd = -1;
    if (exec_spawn(er, res) < 0) {
        free(er);
        return -1;
    }
    er->out_ev = event_new(run->base, er->out_fd, EV_READ | EV_PERSIST, exec_on_output, er);
    er->cp_ev = event_new(run->base, er->cp_fd, EV_READ | EV_PERSIST, exec_on_checkpoint, er);
    er->timer = evtimer_new(run->base, exec_on_timer, er);
    if (!er->out_ev || !er->cp_ev || !er->timer) {
        log_error("task %s: out of libevent resources", run->id);
        abort();
    }
    event_add(er->out_ev, NULL);
    event_add(er->cp_ev, NULL);
    if (spec->timeout_s > 0) {
        struct timeval tv = seconds_to_tv(spec->timeout_s);
        evtimer_add(er->timer, &tv);
    }
    registry_add(er);
    run->handler_data = er;
    log_debug("task %s: started %s as pid %d", run->id, spec->argv[0], (int)er->pid);
    return 0;
}

static void exec_cancel(task_run_t *run)
{
    exec_run_t *er = run->handler_data;
    /* Once the leader is reaped (a checkpoint_save may cancel while the last
     * lines drain) the outcome is known and its pid may be reused. */
    if (!er || er->reaped)
        return;
    er->stop = STOP_CANCEL;
    if (!er->term_sent)
        exec_terminate(er);
}

/* The bare process; handler_exec (exec_step.c) runs it in the task's workspace. */
const handler_ops_t exec_process = {
    .kinds = (const char *const[]){NULL},
    .start = exec_start,
    .cancel = exec_cancel,
};
