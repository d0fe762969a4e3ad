/* workspace: per-task directories and their removal (see workspace.h). */
#include "workspace.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "log.h"
#include "xalloc.h"

#define SWEEP_MAX_PER_PASS 32  /* workspaces removed per pass */
#define TRASH_PREFIX ".trash-"
#define WS_SIBLINGS_MAX 8      /* directories one task may use at once (attempts of fenced-out agents) */

static char *ws_root_dir;
static double ws_retention_s;
static struct event *ws_timer;
static pthread_t ws_thread;
static int ws_thread_started;
static atomic_int ws_thread_done;

static int name_ok(const char *id)
{
    return id && id[0] && id[0] != '.' && !strchr(id, '/') && strlen(id) < 128;
}

char *ws_dir_for(const char *task_id)
{
    return xasprintf("%s/%s", ws_root_dir ? ws_root_dir : "/tmp", task_id);
}

static int mkdir_private(const char *path)
{
    if (mkdir(path, 0700) == 0)
        return 0;
    struct stat st;
    if (errno != EEXIST || lstat(path, &st) < 0)
        return -1;
    if (!S_ISDIR(st.st_mode) || st.st_uid != getuid()) {
        errno = S_ISDIR(st.st_mode) ? EPERM : ENOTDIR;
        return -1;
    }
    return 0;
}

ws_t *ws_open(const char *task_id, char *err, size_t errlen)
{
    if (!name_ok(task_id)) {
        snprintf(err, errlen, "workspace: task id \"%.64s\" cannot name a directory", task_id ? task_id : "");
        return NULL;
    }
    ws_t *w = xcalloc(1, sizeof *w);
    w->lock_fd = -1;
    /* Never wait for the lock (this runs on the agent's loop): a workspace
     * held by another attempt of the task (an agent that was fenced out but
     * still runs it, or is frozen) is left alone, and this attempt gets the
     * next free sibling "<id>.2", "<id>.3"... A sweep may rename a
     * directory away between our mkdir and our lock: then the lock is on a
     * file that left the path; try again. */
    for (int tries = 0, sibling = 1; tries < 5 + WS_SIBLINGS_MAX; tries++) {
        free(w->dir);
        free(w->meta);
        char *base = ws_dir_for(task_id);
        w->dir = sibling == 1 ? base : xasprintf("%s.%d", base, sibling);
        if (sibling != 1)
            free(base);
        w->meta = xasprintf("%s/.devsys", w->dir);
        if (mkdir_private(w->dir) < 0 || mkdir_private(w->meta) < 0) {
            snprintf(err, errlen, "workspace: %s: %s", w->dir, strerror(errno));
            goto fail;
        }
        char *lock = xasprintf("%s/lock", w->meta);
        int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        int held = fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK;
        struct stat a, b;
        int same = fd >= 0 && !held && fstat(fd, &a) == 0 && stat(lock, &b) == 0 && a.st_ino == b.st_ino &&
                   a.st_dev == b.st_dev;
        free(lock);
        if (same) {
            if (sibling != 1)
                log_warn("workspace of task %s is held by another attempt: this one runs in %s", task_id, w->dir);
            w->lock_fd = fd;
            return w;
        }
        if (fd < 0) {
            snprintf(err, errlen, "workspace: %s/lock: %s", w->meta, strerror(errno));
            goto fail;
        }
        close(fd);
        if (held && ++sibling > WS_SIBLINGS_MAX) {
            snprintf(err, errlen, "workspace: %s and %d siblings are held by other attempts", task_id,
                     WS_SIBLINGS_MAX - 1);
            goto fail;
        }
    }
    snprintf(err, errlen, "workspace: %s: removed by a sweep again and again", w->dir);
fail:
    free(w->dir);
    free(w->meta);
    free(w);
    return NULL;
}

void ws_close(ws_t *w)
{
    if (!w)
        return;
    utimensat(AT_FDCWD, w->dir, NULL, AT_SYMLINK_NOFOLLOW); /* the retention counts from here */
    if (w->lock_fd >= 0)
        close(w->lock_fd); /* releases the flock */
    free(w->dir);
    free(w->meta);
    free(w);
}

/* ------------------------------------------------------------------ sweep */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

/* Takes name (an entry of the root) if it expired and no task holds it: it
 * is renamed to a trash name under its lock, so a task opening it after
 * that makes a fresh one. */
static int take_expired(int rootfd, const char *name, time_t now)
{
    struct stat st;
    if (fstatat(rootfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode) ||
        (double)(now - st.st_mtime) <= ws_retention_s)
        return 0;
    char lock[300], trash[300];
    snprintf(lock, sizeof lock, "%s/.devsys/lock", name);
    snprintf(trash, sizeof trash, TRASH_PREFIX "%s", name);
    int fd = openat(rootfd, lock, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0) {
        close(fd); /* a task runs in it */
        return 0;
    }
    int ok = renameat(rootfd, name, rootfd, trash) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

int ws_sweep_once(int max)
{
    if (!ws_root_dir)
        return 0;
    DIR *d = opendir(ws_root_dir);
    if (!d)
        return 0;
    time_t now = time(NULL);
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d)) && removed < max) {
        const char *name = e->d_name;
        int trash = strncmp(name, TRASH_PREFIX, strlen(TRASH_PREFIX)) == 0;
        if (!trash && (name[0] == '.' || !take_expired(dirfd(d), name, now)))
            continue;
        char *path = xasprintf("%s/%s%s", ws_root_dir, trash ? "" : TRASH_PREFIX, name);
        nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(path);
        removed++;
    }
    closedir(d);
    return removed;
}

static void *sweep_thread(void *arg)
{
    (void)arg;
    int n = ws_sweep_once(SWEEP_MAX_PER_PASS);
    if (n)
        log_info("workspace: removed %d expired workspace%s", n, n == 1 ? "" : "s");
    atomic_store(&ws_thread_done, 1);
    return NULL;
}

static void on_sweep_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (ws_thread_started) {
        if (!atomic_load(&ws_thread_done))
            return; /* the last pass is still at work */
        pthread_join(ws_thread, NULL);
        ws_thread_started = 0;
    }
    atomic_store(&ws_thread_done, 0);
    if (pthread_create(&ws_thread, NULL, sweep_thread, NULL) == 0)
        ws_thread_started = 1;
}

void ws_init(struct event_base *base)
{
    if (ws_root_dir)
        return;
    char def[160];
    const char *tmp = getenv("TMPDIR");
    snprintf(def, sizeof def, "%s/devsys-workspaces-%u", tmp && tmp[0] == '/' ? tmp : "/tmp", (unsigned)getuid());
    ws_root_dir = xstrdup(cfg_str("DEVSYS_WORKSPACE", def));
    ws_retention_s = cfg_double("DEVSYS_WORKSPACE_RETENTION_S", 3600, 0, 365 * 86400.0);
    if (ws_root_dir[0] != '/' || mkdir_private(ws_root_dir) < 0) {
        fprintf(stderr, "DEVSYS_WORKSPACE: %s: %s\n", ws_root_dir,
                ws_root_dir[0] != '/' ? "must be an absolute path" : strerror(errno));
        exit(2);
    }
    double period = ws_retention_s / 4 < 1 ? 1 : ws_retention_s / 4 > 60 ? 60 : ws_retention_s / 4;
    ws_timer = event_new(base, -1, EV_PERSIST, on_sweep_timer, NULL);
    struct timeval tv = {(time_t)period, (suseconds_t)((period - (double)(time_t)period) * 1e6)};
    event_add(ws_timer, &tv);
    log_info("workspaces in %s, removed %gs after their task's last attempt", ws_root_dir, ws_retention_s);
}

void ws_shutdown(void)
{
    if (!ws_root_dir)
        return;
    if (ws_thread_started)
        pthread_join(ws_thread, NULL);
    ws_thread_started = 0;
    event_free(ws_timer);
    ws_timer = NULL;
    free(ws_root_dir);
    ws_root_dir = NULL;
}
