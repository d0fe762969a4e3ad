/* deploy_fs: the layout of one app in one environment under
 * DEVSYS_DEPLOY_ROOT: <root>/<env>/<app>/revisions/<rev>/ and the symlink
 * <root>/<env>/<app>/current -> revisions/<rev>, switched atomically. Only
 * quick metadata calls here (a few syscalls): copying, extracting and
 * removing trees run as child processes (deploy_run.h). */
#ifndef DEVSYS_DEPLOY_FS_H
#define DEVSYS_DEPLOY_FS_H

#include <stddef.h>

/* Creates <dir>/revisions (and parents). -1 with err on failure. */
int deploy_fs_prepare(const char *dir, char *err, size_t errlen);

/* The revision <dir>/current points at, or NULL (none, or not one of ours).
 * Caller frees. */
char *deploy_fs_current(const char *dir);

/* Is <dir>/revisions/<rev> a directory? */
int deploy_fs_has(const char *dir, const char *rev);

/* Points <dir>/current at revisions/<rev> atomically: a new symlink under a
 * temporary name (tag makes it unique), rename(2) over current, then fsync
 * of dir so the switch survives a crash. rev NULL removes current. -1 with
 * err on failure (current is then unchanged). */
int deploy_fs_switch(const char *dir, const char *rev, const char *tag, char *err, size_t errlen);

/* Marks rev as the latest used (its mtime orders the revisions for pruning). */
void deploy_fs_touch(const char *dir, const char *rev);

/* The paths to remove so that only the keep most recently used revisions
 * remain, never current nor previous (either may be NULL), plus staging
 * leftovers of interrupted deploys (".staging-*"). NULL-terminated; NULL when
 * there is nothing to remove. Caller frees each and the array. */
char **deploy_fs_prune_list(const char *dir, int keep, const char *current, const char *previous);

#endif
