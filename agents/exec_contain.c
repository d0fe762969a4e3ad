/* exec_contain: a cgroup per task where possible, and the subreaper sweep of
 * marked orphans always (see exec_contain.h for the contract). */
#include "exec_contain.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "xalloc.h"

#define ENVIRON_READ_MAX (1024 * 1024) /* a longer environment is not searched past this */

struct contain {
    char marker[96];   /* "DEVSYS_TASK_ID=<id>" */
    char *cg_dir;      /* the task's cgroup, NULL without one */
    int join_fd;       /* its cgroup.procs, for the child */
};

static char *agent_cg;        /* <parent>/devsys-agent-<pid>, NULL in subreaper mode */
static char mechanism[512] = "subreaper";
static unsigned long cg_seq;
static int contain_ready;

/* ---- small file helpers ---- */

/* Reads at most max bytes of path into a malloc'd buffer (caller frees);
 * NULL if it cannot be opened. */
static char *read_small(const char *path, size_t max, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = xmalloc(cap + 1);
    for (;;) {
        if (n == cap) {
            if (cap >= max)
                break;
            cap *= 2;
            buf = xrealloc(buf, cap + 1);
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static int write_word(const char *dir, const char *file, const char *word)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, word, strlen(word));
    int saved = errno;
    close(fd);
    errno = saved;
    return n == (ssize_t)strlen(word) ? 0 : -1;
}

/* The next number of a whitespace-separated pid list at *p (advanced past
 * it), or -1 at its end. */
static long next_pid(char **p)
{
    char *end;
    long pid = *p ? strtol(*p, &end, 10) : 0;
    if (!*p || end == *p)
        return -1;
    *p = end;
    return pid;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- cgroups ---- */

/* Kills every process of the cgroup dir: cgroup.kill (Linux >= 5.14), else
 * each pid listed in cgroup.procs. */
static void cgroup_kill(const char *dir)
{
    if (write_word(dir, "cgroup.kill", "1") == 0)
        return;
    char path[4096];
    snprintf(path, sizeof path, "%s/cgroup.procs", dir);
    size_t len;
    char *procs = read_small(path, 1 << 20, &len);
    long pid;
    for (char *p = procs; (pid = next_pid(&p)) >= 0;)
        if (pid > 0)
            kill((pid_t)pid, SIGKILL);
    free(procs);
}

/* Kills and removes dir and its child cgroups (what a dead agent left). */
static void cgroup_remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (de->d_type != DT_DIR || de->d_name[0] == '.')
            continue;
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", dir, de->d_name);
        for (int i = 0; i < 50 && rmdir(sub) < 0 && errno == EBUSY; i++) {
            cgroup_kill(sub);
            sleep_ms(10);
        }
    }
    if (d)
        closedir(d);
    cgroup_kill(dir);
    if (rmdir(dir) < 0 && errno != ENOENT)
        log_warn("contain: cannot remove stale cgroup %s: %s", dir, strerror(errno));
}

/* Removes devsys-agent-<pid> directories of agents that no longer run. */
static void cgroup_sweep_stale(const char *parent)
{
    DIR *d = opendir(parent);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        long pid;
        char tail;
        if (sscanf(de->d_name, "devsys-agent-%ld%c", &pid, &tail) != 1 || pid <= 0)
            continue;
        if (pid != (long)getpid() && (kill((pid_t)pid, 0) == 0 || errno != ESRCH))
            continue; /* that agent is alive */
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s", parent, de->d_name);
        log_info("contain: removing %s, left by an agent that is gone", dir);
        cgroup_remove_tree(dir);
    }
    if (d)
        closedir(d);
}

/* The cgroup2 directory this process is in, from /proc/self/cgroup ("0::/x")
 * and the cgroup2 mount in /proc/self/mountinfo; NULL if there is none. */
static char *cgroup_own_dir(void)
{
    size_t len;
    char *cg = read_small("/proc/self/cgroup", 1 << 16, &len);
    char *rel = cg ? strstr(cg, "0::") : NULL;
    if (rel && rel != cg && rel[-1] != '\n')
        rel = NULL;
    char *mi = rel ? read_small("/proc/self/mountinfo", 1 << 20, &len) : NULL;
    char *dir = NULL;
    if (rel) {
        rel += 3;
        rel[strcspn(rel, "\n")] = '\0';
    }
    for (char *line = mi, *next; line && *line && !dir; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char root[1024], mnt[1024];
        const char *sep = strstr(line, " - ");
        if (!sep || strncmp(sep + 3, "cgroup2 ", 8) != 0 ||
            sscanf(line, "%*s %*s %*s %1023s %1023s", root, mnt) != 2)
            continue;
        /* with a cgroup namespace or a bind mount, the mount shows a subtree */
        size_t rl = strcmp(root, "/") == 0 ? 0 : strlen(root);
        if (rl && strncmp(rel, root, rl) != 0)
            continue;
        dir = xasprintf("%s%s", mnt, strcmp(rel + rl, "/") == 0 ? "" : rel + rl);
    }
    free(mi);
    free(cg);
    return dir;
}

/* Can a child be moved into a cgroup under dir? Probed once with a child
 * that joins and exits (delegation can allow mkdir but not the move). */
static int cgroup_probe(const char *dir, char *why, size_t whylen)
{
    char probe[4096];
    snprintf(probe, sizeof probe, "%s/probe", dir);
    if (mkdir(probe, 0755) < 0 && errno != EEXIST) {
        snprintf(why, whylen, "mkdir %s: %s", probe, strerror(errno));
        return -1;
    }
    char procs[4200];
    snprintf(procs, sizeof procs, "%s/cgroup.procs", probe);
    int fd = open(procs, O_WRONLY | O_CLOEXEC);
    int ok = 0, err = errno;
    if (fd >= 0) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(contain_join(fd) == 0 ? 0 : 1);
        int status = 0;
        while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        ok = pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
        err = pid < 0 ? errno : EACCES;
        close(fd);
    }
    for (int i = 0; i < 50 && rmdir(probe) < 0 && errno == EBUSY; i++)
        sleep_ms(2);
    if (!ok)
        snprintf(why, whylen, "cannot move a process into %s: %s", probe, strerror(err));
    return ok ? 0 : -1;
}

void contain_init(void)
{
    if (contain_ready)
        return;
    contain_ready = 1;
    const char *want = cfg_str("DEVSYS_CGROUP", "auto");
    int explicit = strcmp(want, "auto") != 0;
    snprintf(mechanism, sizeof mechanism, "subreaper");
    if (strcmp(want, "off") == 0) {
        log_info("task containment: subreaper (DEVSYS_CGROUP=off): orphans marked with a task's id are "
                 "killed when it ends");
        return;
    }
    char *parent = explicit ? xstrdup(want) : cgroup_own_dir();
    char why[4400] = "no cgroup2 mount";
    struct statfs sf;
    if (parent && (statfs(parent, &sf) < 0 || sf.f_type != CGROUP2_SUPER_MAGIC)) {
        snprintf(why, sizeof why, "%s is not a cgroup2 directory", parent);
    } else if (parent) {
        cgroup_sweep_stale(parent);
        char *dir = xasprintf("%s/devsys-agent-%d", parent, (int)getpid());
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
            snprintf(why, sizeof why, "mkdir %s: %s", dir, strerror(errno));
        else if (cgroup_probe(dir, why, sizeof why) == 0)
            agent_cg = dir;
        if (!agent_cg) {
            rmdir(dir);
            free(dir);
        }
    }
    free(parent);
    if (!agent_cg && explicit) {
        fprintf(stderr, "DEVSYS_CGROUP=%s: %s\n", want, why);
        exit(2);
    }
    if (agent_cg) {
        snprintf(mechanism, sizeof mechanism, "cgroup %s", agent_cg);
        log_info("task containment: a cgroup per task under %s (and the subreaper sweep)", agent_cg);
    } else {
        log_info("task containment: subreaper (no cgroup: %s): orphans marked with a task's id are "
                 "killed when it ends", why);
    }
}

void contain_shutdown(void)
{
    if (agent_cg)
        cgroup_remove_tree(agent_cg);
    free(agent_cg);
    agent_cg = NULL;
    contain_ready = 0;
}

const char *contain_mechanism(void)
{
    return mechanism;
}

/* ---- one task ---- */

contain_t *contain_new(const char *task_id)
{
    contain_t *c = xcalloc(1, sizeof *c);
    snprintf(c->marker, sizeof c->marker, "DEVSYS_TASK_ID=%s", task_id ? task_id : "");
    c->join_fd = -1;
    if (!agent_cg)
        return c;
    c->cg_dir = xasprintf("%s/task-%lu", agent_cg, ++cg_seq);
    char procs[4096];
    snprintf(procs, sizeof procs, "%s/cgroup.procs", c->cg_dir);
    if (mkdir(c->cg_dir, 0755) < 0 || (c->join_fd = open(procs, O_WRONLY | O_CLOEXEC)) < 0) {
        log_warn("task %s: no cgroup (%s: %s); its orphans are swept as subreaper only", task_id,
                 c->cg_dir, strerror(errno));
        rmdir(c->cg_dir);
        free(c->cg_dir);
        c->cg_dir = NULL;
    }
    return c;
}

int contain_join_fd(const contain_t *c)
{
    return c->join_fd;
}

int contain_join(int fd)
{
    return write(fd, "0", 1) == 1 ? 0 : -1;
}

void contain_forked(contain_t *c)
{
    if (c->join_fd >= 0)
        close(c->join_fd);
    c->join_fd = -1;
}

/* Does the environment block (NUL-separated) of pid hold marker? 1 yes,
 * 0 it holds another DEVSYS_TASK_ID, -1 none at all (or it is a zombie). */
static int environ_mark(pid_t pid, const char *marker)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
    size_t len;
    char *env = read_small(path, ENVIRON_READ_MAX, &len);
    if (!env)
        return -1;
    int found = -1;
    for (size_t i = 0; i < len && found != 1; i += strlen(env + i) + 1) {
        if (strcmp(env + i, marker) == 0)
            found = 1;
        else if (strncmp(env + i, "DEVSYS_TASK_ID=", 15) == 0)
            found = 0;
    }
    free(env);
    return found;
}

/* SIGKILLs the agent's children (orphans re-parented to it) that belong to
 * the task; returns how many. */
static int sweep_orphans(const contain_t *c, int idle, int (*is_leader)(pid_t))
{
    int killed = 0;
    DIR *d = opendir("/proc/self/task");
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char path[300];
        snprintf(path, sizeof path, "/proc/self/task/%s/children", de->d_name);
        size_t len;
        char *kids = read_small(path, 1 << 20, &len);
        long pid;
        for (char *p = kids; (pid = next_pid(&p)) >= 0;) {
            if (pid <= 0 || (is_leader && is_leader((pid_t)pid)))
                continue;
            int status;
            if (waitpid((pid_t)pid, &status, WNOHANG) == (pid_t)pid)
                continue; /* a zombie, now reaped: it was dead already */
            int mark = environ_mark((pid_t)pid, c->marker);
            if (mark == 1 || (idle && mark == -1 && kill((pid_t)pid, 0) == 0)) {
                /* a setsid'd orphan leads its own group: take the group too */
                if (getpgid((pid_t)pid) == (pid_t)pid)
                    kill(-(pid_t)pid, SIGKILL);
                if (kill((pid_t)pid, SIGKILL) == 0) {
                    killed++;
                    if (mark == 1)
                        log_info("task %s: killed its orphan %ld", c->marker + 15, pid);
                    else /* often one already dying, whose environment is gone */
                        log_debug("killed unmarked orphan %ld (no task running)", pid);
                }
            }
        }
        free(kids);
    }
    if (d)
        closedir(d);
    return killed;
}

int contain_sweep(contain_t *c, pid_t pgid, int idle, int (*is_leader)(pid_t))
{
    int clean = 1;
    if (pgid > 0 && kill(-pgid, SIGKILL) == 0)
        clean = 0;
    if (sweep_orphans(c, idle, is_leader) > 0)
        clean = 0;
    if (c->cg_dir) {
        if (rmdir(c->cg_dir) == 0 || errno == ENOENT) {
            free(c->cg_dir);
            c->cg_dir = NULL;
        } else {
            cgroup_kill(c->cg_dir);
            clean = 0;
        }
    }
    return clean;
}

void contain_free(contain_t *c)
{
    if (!c)
        return;
    if (c->join_fd >= 0)
        close(c->join_fd);
    if (c->cg_dir && rmdir(c->cg_dir) < 0 && errno != ENOENT)
        log_warn("contain: %s left behind: %s", c->cg_dir, strerror(errno));
    free(c->cg_dir);
    free(c);
}
