/* deploy_fs: the revisions directory and the `current` symlink of one
 * app+env (deploy_fs.h). */
#include "deploy_fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xalloc.h"

#define PRUNE_SCAN_MAX 10000 /* entries of revisions/ looked at */

static int mkdir_p(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int rc = mkdir(path, 0755);
        *p = '/';
        if (rc < 0 && errno != EEXIST)
            return -1;
    }
    return mkdir(path, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

int deploy_fs_prepare(const char *dir, char *err, size_t errlen)
{
    char *rev = xasprintf("%s/revisions", dir);
    int rc = mkdir_p(rev);
    if (rc < 0)
        snprintf(err, errlen, "cannot create %s: %s", rev, strerror(errno));
    free(rev);
    return rc;
}

char *deploy_fs_current(const char *dir)
{
    char *link = xasprintf("%s/current", dir);
    char target[512];
    ssize_t n = readlink(link, target, sizeof target - 1);
    free(link);
    if (n <= 0)
        return NULL;
    target[n] = '\0';
    if (strncmp(target, "revisions/", 10) != 0 || strchr(target + 10, '/') || !target[10])
        return NULL;
    return xstrdup(target + 10);
}

int deploy_fs_has(const char *dir, const char *rev)
{
    char *p = xasprintf("%s/revisions/%s", dir, rev);
    struct stat st;
    int has = lstat(p, &st) == 0 && S_ISDIR(st.st_mode);
    free(p);
    return has;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int deploy_fs_switch(const char *dir, const char *rev, const char *tag, char *err, size_t errlen)
{
    char *cur = xasprintf("%s/current", dir);
    int rc = -1;
    if (!rev) {
        if (unlink(cur) < 0 && errno != ENOENT)
            snprintf(err, errlen, "removing %s: %s", cur, strerror(errno));
        else
            rc = 0;
    } else {
        char *tmp = xasprintf("%s/.current-%s", dir, tag);
        char *target = xasprintf("revisions/%s", rev);
        unlink(tmp); /* a leftover of an interrupted attempt */
        if (symlink(target, tmp) < 0) {
            snprintf(err, errlen, "symlink %s: %s", tmp, strerror(errno));
        } else if (rename(tmp, cur) < 0) {
            snprintf(err, errlen, "rename %s over %s: %s", tmp, cur, strerror(errno));
            unlink(tmp);
        } else {
            rc = 0;
        }
        free(tmp);
        free(target);
    }
    if (rc == 0 && fsync_dir(dir) < 0) {
        snprintf(err, errlen, "fsync %s: %s", dir, strerror(errno));
        rc = -1;
    }
    free(cur);
    return rc;
}

void deploy_fs_touch(const char *dir, const char *rev)
{
    char *p = xasprintf("%s/revisions/%s", dir, rev);
    (void)utimensat(AT_FDCWD, p, NULL, 0);
    free(p);
}

struct rev_entry {
    char *name;
    struct timespec mtime;
};

static int newest_first(const void *a, const void *b)
{
    const struct rev_entry *x = a, *y = b;
    if (x->mtime.tv_sec != y->mtime.tv_sec)
        return x->mtime.tv_sec < y->mtime.tv_sec ? 1 : -1;
    if (x->mtime.tv_nsec != y->mtime.tv_nsec)
        return x->mtime.tv_nsec < y->mtime.tv_nsec ? 1 : -1;
    return strcmp(y->name, x->name);
}

char **deploy_fs_prune_list(const char *dir, int keep, const char *current, const char *previous)
{
    char *revdir = xasprintf("%s/revisions", dir);
    DIR *d = opendir(revdir);
    if (!d) {
        free(revdir);
        return NULL;
    }
    struct rev_entry *revs = NULL;
    size_t n = 0, cap = 0, nout = 0;
    char **out = NULL;
    struct dirent *e;
    size_t scanned = 0;
    while ((e = readdir(d)) && scanned++ < PRUNE_SCAN_MAX) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char *path = xasprintf("%s/%s", revdir, e->d_name);
        struct stat st;
        if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
            free(path);
            continue;
        }
        if (strncmp(e->d_name, ".staging-", 9) == 0) {
            out = xrealloc(out, (nout + 2) * sizeof *out);
            out[nout++] = path;
            continue;
        }
        free(path);
        if (n == cap)
            revs = xrealloc(revs, (cap = cap ? cap * 2 : 16) * sizeof *revs);
        revs[n].name = xstrdup(e->d_name);
        revs[n++].mtime = st.st_mtim;
    }
    closedir(d);
    if (n > 1) /* revs is NULL when there is none, and qsort's base must not be */
        qsort(revs, n, sizeof *revs, newest_first);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        int pinned = (current && strcmp(revs[i].name, current) == 0) ||
                     (previous && strcmp(revs[i].name, previous) == 0);
        if (pinned || kept < (size_t)keep) {
            kept++;
        } else {
            out = xrealloc(out, (nout + 2) * sizeof *out);
            out[nout++] = xasprintf("%s/%s", revdir, revs[i].name);
        }
        free(revs[i].name);
    }
    free(revs);
    free(revdir);
    if (out)
        out[nout] = NULL;
    return out;
}
