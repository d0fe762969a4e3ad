/* handler_deploy: kind deploy. Waits for the app+env's deploy lock in
 * PostgreSQL (common/deploydb.h), copies or extracts the source into a new
 * revision (a child process, deploy_run.h), switches `current` atomically
 * (deploy_fs.h), runs the acceptance check (deploy_check.h) and switches back
 * when it fails; prunes old revisions; records every step in deployments. */
#include "handler.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deploy_check.h"
#include "deploy_fs.h"
#include "deploy_run.h"
#include "deploydb.h"
#include "exec_step.h"
#include "log.h"
#include "xalloc.h"

#define LOCK_WAIT_FIRST_MS 100   /* the first retry of a refused lock */
#define LOCK_WAIT_MAX_MS 2000    /* backoff cap: a waiter costs PostgreSQL one call per 2 s */
#define ERR_MAX 512

/* Copies (dir) or checks and extracts (tar) $2 into the staging dir $3,
 * refuses archive members with an absolute path or a ".." segment, hard
 * links, devices, fifos and symlinks to absolute paths before extracting,
 * an archive tar cannot extract cleanly, and any symlink that resolves
 * outside the revision after; then moves the staging dir to $4 (rename(2)).
 * GNU tar never writes through a symlink it extracted with an absolute or
 * ".." target (it delays them), so nothing lands outside even before the
 * symlink check. Exit 3: refused (the reason is the last output line). */
static const char prepare_script[] =
    "set -eu\n"
    "mode=$1 src=$2 stage=$3 final=$4\n"
    "trap 'rm -rf -- \"$stage\"' EXIT\n"
    "rm -rf -- \"$stage\"\n"
    "mkdir -p -- \"$stage\"\n"
    "if [ \"$mode\" = dir ]; then\n"
    "  cp -a -- \"$src/.\" \"$stage/\"\n"
    "else\n"
    "  if ! out=$(tar -tf \"$src\" 2>&1 >/dev/null); then\n"
    "    echo \"refused: not a readable archive: $(printf '%s' \"$out\" | head -n 1)\"; exit 3\n"
    "  fi\n"
    "  bad=$(tar -tf \"$src\" | grep -m1 -E '^/|(^|/)\\.\\.(/|$)') || true\n"
    "  if [ -n \"$bad\" ]; then\n"
    "    echo \"refused: the archive member \\\"$bad\\\" has an absolute path or a \\\"..\\\" segment\"; exit 3\n"
    "  fi\n"
    "  bad=$(tar -tvf \"$src\" | grep -m1 -E '^[hcbp]') || true\n"
    "  if [ -n \"$bad\" ]; then\n"
    "    echo \"refused: the archive holds a hard link, device or fifo: $bad\"; exit 3\n"
    "  fi\n"
    "  bad=$(tar -tvf \"$src\" | grep -m1 -E '^l.* -> /') || true\n"
    "  if [ -n \"$bad\" ]; then\n"
    "    echo \"refused: the archive holds a symlink to an absolute path: $bad\"; exit 3\n"
    "  fi\n"
    "  if ! out=$(tar -xf \"$src\" -C \"$stage\" --no-same-owner 2>&1); then\n"
    "    echo \"refused: tar cannot extract it safely: $(printf '%s' \"$out\" | head -n 1)\"; exit 3\n"
    "  fi\n"
    "fi\n"
    "root=$(cd -- \"$stage\" && pwd -P)\n"
    "bad=$(find \"$stage\" -type l | while IFS= read -r l; do\n"
    "  t=$(readlink -m -- \"$l\")\n"
    "  case $t in \"$root\"|\"$root\"/*) ;; *) printf '%s -> %s' \"${l#\"$stage\"/}\" \"$(readlink -- \"$l\")\"; break;; esac\n"
    "done) || true\n"
    "if [ -n \"$bad\" ]; then\n"
    "  echo \"refused: a symlink points outside the revision: $bad\"; exit 3\n"
    "fi\n"
    "touch -- \"$stage\"\n"
    "rm -rf -- \"$final\"\n"
    "mv -T -- \"$stage\" \"$final\"\n";

enum deploy_step { STEP_DB, STEP_LOCK_WAIT, STEP_CHILD, STEP_CHECK, STEP_FINISH };

typedef struct deploy {
    task_run_t *run;
    const struct spec_deploy *d;
    enum deploy_step step;
    char *dir;           /* <root>/<env>/<app> */
    char *source;        /* deploy: the resolved source path */
    int source_tar;
    char *revision;      /* deploy: ours; rollback: the target */
    char *previous;      /* what current pointed at before our switch */
    char *row_previous;  /* an earlier attempt's switch: its previous */
    int row_switched;
    int switched;        /* current points at revision now */
    int lock_wait_ms;
    int lock_logged;
    struct event *timer; /* lock retries; a cancel's report */
    deploy_run_t *child;
    deploy_check_t *check;
    int cancelled;
    /* the outcome, once known */
    int ok, retryable;
    const char *outcome; /* succeeded | failed | rolled_back */
    char *error;
} deploy_t;

static void lock_try(deploy_t *dp);
static void after_switch(deploy_t *dp);

/* ------------------------------------------------------------- finishing */

static void deploy_free(deploy_t *dp)
{
    if (dp->timer)
        event_free(dp->timer);
    free(dp->dir);
    free(dp->source);
    free(dp->revision);
    free(dp->previous);
    free(dp->row_previous);
    free(dp->error);
    free(dp);
}

/* The row is written: report the outcome. */
static void on_finished(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    (void)res;
    deploy_t *dp = arg;
    task_run_t *run = dp->run;
    if (err[0])
        log_warn("task %s: recording the deployment's outcome: %s", run->id, err);
    handler_result_t r = {0};
    r.ok = dp->ok;
    r.retryable = dp->retryable;
    if (!dp->ok)
        r.error = xstrdup(dp->error ? dp->error : "failed");
    r.result = json_pack("{s:s,s:s,s:s,s:s?,s:s?,s:s?}", "app", dp->d->app, "env", dp->d->env, "action",
                         dp->d->rollback ? "rollback" : "deploy", "revision", dp->revision, "previous_revision",
                         dp->previous, "outcome", dp->outcome);
    run->handler_data = NULL;
    deploy_free(dp);
    run->done(run, &r);
}

/* Records the outcome (which releases the lock), then reports it. error is
 * taken over. */
static void finish(deploy_t *dp, int ok, int retryable, const char *outcome, char *error)
{
    dp->step = STEP_FINISH;
    dp->ok = ok;
    dp->retryable = retryable;
    dp->outcome = outcome;
    free(dp->error);
    dp->error = error;
    if (error)
        log_info("task %s: deploy %s/%s: %s", dp->run->id, dp->d->env, dp->d->app, error);
    deploydb_finish(dp->run->pg, dp->run->id, dp->run->attempt, outcome, error, on_finished, dp);
}

/* A failure before the switch: nothing changed on the live side. */
static void fail(deploy_t *dp, int retryable, char *error)
{
    finish(dp, 0, retryable, "failed", error);
}

static int stop_if_cancelled(deploy_t *dp)
{
    if (!dp->cancelled)
        return 0;
    fail(dp, 0, xstrdup("cancelled"));
    return 1;
}

/* The start of a deployments answer's callback: 1 to go on; 0 when the task
 * was cancelled meanwhile or the statement failed (the task then fails). */
static int db_answered(deploy_t *dp, const char *err)
{
    if (stop_if_cancelled(dp))
        return 0;
    if (err[0]) {
        fail(dp, 1, xasprintf("deployments: %s", err));
        return 0;
    }
    return 1;
}

/* ------------------------------------------------------- prune, rollback */

static void on_pruned(handler_result_t *res, void *arg)
{
    deploy_t *dp = arg;
    dp->child = NULL;
    if (!res->ok) {
        char *line = deploy_run_last_line(res);
        log_warn("task %s: pruning old revisions: %s%s%s", dp->run->id, res->error ? res->error : "failed",
                 line ? ": " : "", line ? line : "");
        free(line);
    }
    deploy_run_result_clear(res);
    finish(dp, 1, 0, "succeeded", NULL);
}

/* Keeps the last keep revisions (never current nor the one before). */
static void prune(deploy_t *dp)
{
    char **paths = deploy_fs_prune_list(dp->dir, dp->d->keep, dp->revision, dp->previous);
    if (!paths) {
        finish(dp, 1, 0, "succeeded", NULL);
        return;
    }
    size_t n = 0;
    while (paths[n])
        n++;
    const char **argv = xcalloc(n + 4, sizeof *argv);
    argv[0] = "rm";
    argv[1] = "-rf";
    argv[2] = "--";
    for (size_t i = 0; i < n; i++)
        argv[3 + i] = paths[i];
    handler_result_t res = {0};
    dp->step = STEP_CHILD;
    dp->child = deploy_run_start(dp->run, argv, NULL, NULL, 0, on_pruned, dp, &res);
    for (size_t i = 0; i < n; i++)
        free(paths[i]);
    free(paths);
    free(argv);
    if (!dp->child) {
        log_warn("task %s: pruning old revisions: %s", dp->run->id, res.error ? res.error : "cannot start rm");
        deploy_run_result_clear(&res);
        finish(dp, 1, 0, "succeeded", NULL);
    }
}

/* The check failed (why taken over): back to the previous revision. */
static void roll_back(deploy_t *dp, char *why)
{
    char err[ERR_MAX];
    if (dp->previous && deploy_fs_has(dp->dir, dp->previous)) {
        if (deploy_fs_switch(dp->dir, dp->previous, dp->run->id, err, sizeof err) == 0) {
            deploy_fs_touch(dp->dir, dp->previous);
            char *msg = xasprintf("acceptance check failed: %s; rolled back to %s", why, dp->previous);
            free(why);
            finish(dp, 0, 0, "rolled_back", msg);
            return;
        }
        char *msg = xasprintf("acceptance check failed: %s; rolling back to %s failed: %s", why, dp->previous, err);
        free(why);
        finish(dp, 0, 0, "failed", msg);
        return;
    }
    /* nothing to go back to: a failing first revision is not left live */
    int removed = deploy_fs_switch(dp->dir, NULL, dp->run->id, err, sizeof err) == 0;
    char *msg = xasprintf("acceptance check failed: %s; no previous revision to roll back to, %s", why,
                          removed ? "current removed" : err);
    free(why);
    finish(dp, 0, 0, "failed", msg);
}

static void on_checked(int ok, char *why, void *arg)
{
    deploy_t *dp = arg;
    dp->check = NULL;
    if (ok) {
        if (dp->cancelled) { /* too late to matter: the revision is live and good */
            log_info("task %s: cancelled after its check passed; keeping %s", dp->run->id, dp->revision);
        }
        prune(dp);
        return;
    }
    roll_back(dp, why);
}

/* ---------------------------------------------------------------- switch */

static void do_switch(deploy_t *dp)
{
    char err[ERR_MAX];
    if (stop_if_cancelled(dp))
        return;
    if (deploy_fs_switch(dp->dir, dp->revision, dp->run->id, err, sizeof err) < 0) {
        fail(dp, 1, xasprintf("switching current to %s: %s", dp->revision, err));
        return;
    }
    dp->switched = 1;
    deploy_fs_touch(dp->dir, dp->revision);
    log_info("task %s: %s/%s: current -> %s (was %s)", dp->run->id, dp->d->env, dp->d->app, dp->revision,
             dp->previous ? dp->previous : "none");
    deploydb_switched(dp->run->pg, dp->run->id, dp->run->attempt, dp->revision, dp->previous, NULL, NULL);
    after_switch(dp);
}

static void after_switch(deploy_t *dp)
{
    char *cur = xasprintf("%s/current", dp->dir);
    dp->step = STEP_CHECK;
    dp->check = deploy_check_start(dp->run, cur, dp->revision, on_checked, dp);
    free(cur);
    if (!dp->check)
        prune(dp);
}

/* -------------------------------------------------------------- prepare */

static void on_prepared(handler_result_t *res, void *arg)
{
    deploy_t *dp = arg;
    dp->child = NULL;
    if (!res->ok) {
        char *line = deploy_run_last_line(res);
        json_t *code = json_object_get(res->result, "exit_code");
        int refused = json_is_integer(code) && json_integer_value(code) == 3;
        char *msg = refused && line ? xasprintf("source %s %s", dp->d->source, line)
                                    : xasprintf("preparing revision %s from %s: %s%s%s", dp->revision,
                                                dp->d->source, res->error ? res->error : "failed",
                                                line ? ": " : "", line ? line : "");
        int retryable = !refused && !dp->cancelled && res->retryable;
        free(line);
        deploy_run_result_clear(res);
        fail(dp, retryable, msg);
        return;
    }
    deploy_run_result_clear(res);
    do_switch(dp);
}

static void prepare(deploy_t *dp)
{
    char *stage = xasprintf("%s/revisions/.staging-%s", dp->dir, dp->revision);
    char *final = xasprintf("%s/revisions/%s", dp->dir, dp->revision);
    const char *argv[] = {"/bin/sh", "-c", prepare_script, "deploy-prepare", dp->source_tar ? "tar" : "dir",
                          dp->source, stage, final, NULL};
    handler_result_t res = {0};
    dp->step = STEP_CHILD;
    dp->child = deploy_run_start(dp->run, argv, NULL, NULL, dp->run->spec->timeout_s, on_prepared, dp, &res);
    free(stage);
    free(final);
    if (!dp->child) {
        char *msg = xasprintf("preparing revision %s: %s", dp->revision, res.error ? res.error : "cannot start");
        deploy_run_result_clear(&res);
        fail(dp, 1, msg);
    }
}

static void on_revision_taken(const char *other, const char *err, void *arg)
{
    deploy_t *dp = arg;
    if (!db_answered(dp, err))
        return;
    if (other) {
        fail(dp, 0, xasprintf("revision %s of %s/%s was already deployed by task %s: choose another revision "
                              "name (or roll back to it)",
                              dp->revision, dp->d->env, dp->d->app, other));
        return;
    }
    if (dp->row_switched && dp->previous && strcmp(dp->previous, dp->revision) == 0) {
        /* an earlier attempt of ours switched and then died: the revision is
         * complete (it was renamed into place whole) and live; check it */
        free(dp->previous);
        dp->previous = dp->row_previous ? xstrdup(dp->row_previous) : NULL;
        dp->switched = 1;
        after_switch(dp);
        return;
    }
    prepare(dp);
}

/* ------------------------------------------------------------- rollback */

static void rollback_to(deploy_t *dp, const char *target)
{
    if (!target) {
        fail(dp, 0, xasprintf("rollback of %s/%s: no previous revision is recorded for %s; name one in \"to\"",
                              dp->d->env, dp->d->app, dp->previous));
        return;
    }
    if (!deploy_fs_has(dp->dir, target)) {
        fail(dp, 0, xasprintf("rollback of %s/%s: revision %s is not kept under %s/revisions", dp->d->env,
                              dp->d->app, target, dp->dir));
        return;
    }
    free(dp->revision);
    dp->revision = xstrdup(target);
    do_switch(dp);
}

static void on_previous(const char *prev, const char *err, void *arg)
{
    deploy_t *dp = arg;
    if (!db_answered(dp, err))
        return;
    rollback_to(dp, prev);
}

/* ----------------------------------------------------------------- lock */

static void on_locked(deploy_t *dp)
{
    dp->step = STEP_DB;
    dp->previous = deploy_fs_current(dp->dir);
    log_info("task %s: holds the deploy lock of %s/%s (current: %s)", dp->run->id, dp->d->env, dp->d->app,
             dp->previous ? dp->previous : "none");
    if (!dp->d->rollback) {
        deploydb_revision_taken(dp->run->pg, dp->d->app, dp->d->env, dp->revision, dp->run->id, on_revision_taken,
                                dp);
    } else if (dp->d->to) {
        rollback_to(dp, dp->d->to);
    } else if (!dp->previous) {
        fail(dp, 0, xasprintf("rollback of %s/%s: nothing is deployed (no current revision)", dp->d->env,
                              dp->d->app));
    } else {
        deploydb_previous(dp->run->pg, dp->d->app, dp->d->env, dp->previous, on_previous, dp);
    }
}

static void on_lock(int granted, const char *blocker, const char *err, void *arg)
{
    deploy_t *dp = arg;
    if (stop_if_cancelled(dp))
        return;
    if (err[0] && !pgc_err_not_sent(err) && strstr(err, "connection") == NULL) {
        fail(dp, 1, xasprintf("deploy lock: %s", err));
        return;
    }
    if (granted) {
        on_locked(dp);
        return;
    }
    if (!dp->lock_logged) {
        dp->lock_logged = 1;
        log_info("task %s: waiting for the deploy lock of %s/%s (%s %s)", dp->run->id, dp->d->env, dp->d->app,
                 err[0] ? "postgres:" : "held or preceded by task", err[0] ? err : blocker ? blocker : "?");
    }
    dp->step = STEP_LOCK_WAIT;
    dp->lock_wait_ms = dp->lock_wait_ms ? dp->lock_wait_ms * 2 : LOCK_WAIT_FIRST_MS;
    if (dp->lock_wait_ms > LOCK_WAIT_MAX_MS)
        dp->lock_wait_ms = LOCK_WAIT_MAX_MS;
    struct timeval tv = {dp->lock_wait_ms / 1000, (dp->lock_wait_ms % 1000) * 1000};
    evtimer_add(dp->timer, &tv);
}

static void lock_try(deploy_t *dp)
{
    dp->step = STEP_DB;
    deploydb_lock_try(dp->run->pg, dp->run->id, on_lock, dp);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    deploy_t *dp = arg;
    if (stop_if_cancelled(dp))
        return;
    lock_try(dp);
}

static void on_begun(const deploydb_row_t *row, const char *err, void *arg)
{
    deploy_t *dp = arg;
    if (!db_answered(dp, err))
        return;
    dp->revision = row->revision ? xstrdup(row->revision) : NULL;
    dp->row_previous = row->previous_revision ? xstrdup(row->previous_revision) : NULL;
    dp->row_switched = row->switched;
    lock_try(dp);
}

/* ---------------------------------------------------------------- start */

static int has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

/* The source's path: absolute as given; relative to the directory the
 * step runs in (run->workdir: the spec's workdir, else the task's workspace
 * as exec_step opened it, which may be a sibling "<id>.2"); "input:<node>/<path>"
 * is <workspace>/inputs/<node>/<path>, where exec_step downloaded the
 * artifacts the step received. */
static char *source_path(const task_run_t *run, const char *src)
{
    const char *base = run->workdir ? run->workdir : run->spec->workdir ? run->spec->workdir : ".";
    if (strncmp(src, "input:", 6) == 0)
        return xasprintf("%s/inputs/%s", base, src + 6);
    if (src[0] == '/')
        return xstrdup(src);
    return xasprintf("%s/%s", base, src);
}

/* Fills res with a permanent failure; returns -1 (start's answer). */
static int refuse(handler_result_t *res, char *error)
{
    memset(res, 0, sizeof *res);
    res->error = error;
    return -1;
}

static int deploy_start(task_run_t *run, handler_result_t *res)
{
    const struct spec_deploy *d = &run->spec->deploy;
    const char *root = getenv("DEVSYS_DEPLOY_ROOT");
    if (!d->app || !d->env)
        return refuse(res, xstrdup("deploy: the section with app and env is required"));
    if (!root || !root[0])
        return refuse(res, xstrdup("DEVSYS_DEPLOY_ROOT is not set on agent: it cannot run deploy tasks "
                                   "(set it to the directory that holds <env>/<app>/revisions)"));
    if (root[0] != '/')
        return refuse(res, xasprintf("DEVSYS_DEPLOY_ROOT must be an absolute path, not %s", root));
    if (!run->pg)
        return refuse(res, xstrdup("deploy: no PostgreSQL client (the lock and the deployments rows need one)"));
    char *source = NULL;
    int tar = 0;
    if (!d->rollback) {
        source = source_path(run, d->source);
        struct stat st;
        if (stat(source, &st) < 0) {
            char *msg = xasprintf("source %s: %s", source, strerror(errno));
            free(source);
            return refuse(res, msg);
        }
        tar = S_ISREG(st.st_mode);
        if (tar && !has_suffix(source, ".tar") && !has_suffix(source, ".tar.gz") && !has_suffix(source, ".tgz")) {
            char *msg = xasprintf("source %s: must be a directory or a .tar, .tar.gz or .tgz file", d->source);
            free(source);
            return refuse(res, msg);
        }
        if (!tar && !S_ISDIR(st.st_mode)) {
            char *msg = xasprintf("source %s: must be a directory or a .tar, .tar.gz or .tgz file", d->source);
            free(source);
            return refuse(res, msg);
        }
    }
    char err[ERR_MAX];
    char *dir = xasprintf("%s/%s/%s", root, d->env, d->app);
    if (deploy_fs_prepare(dir, err, sizeof err) < 0) {
        free(dir);
        free(source);
        return refuse(res, xasprintf("deploy root: %s", err));
    }
    deploy_t *dp = xcalloc(1, sizeof *dp);
    dp->run = run;
    dp->d = d;
    dp->dir = dir;
    dp->source = source;
    dp->source_tar = tar;
    dp->timer = evtimer_new(run->base, on_timer, dp);
    if (!dp->timer) {
        log_error("task %s: out of libevent resources", run->id);
        abort();
    }
    const json_t *pid = json_object_get(run->spec->pipeline, "id");
    dp->step = STEP_DB;
    run->handler_data = dp;
    deploydb_begin(run->pg, run->id, run->attempt, d->app, d->env, d->rollback, d->revision,
                   json_is_string(pid) ? json_string_value(pid) : NULL, run->agent_name, on_begun, dp);
    return 0;
}

static void deploy_cancel(task_run_t *run)
{
    deploy_t *dp = run->handler_data;
    if (!dp || dp->cancelled)
        return;
    dp->cancelled = 1;
    if (dp->child) {
        deploy_run_cancel(dp->child);
    } else if (dp->check) {
        deploy_check_cancel(dp->check);
    } else if (dp->step == STEP_LOCK_WAIT) {
        /* report from the loop, not from inside cancel */
        struct timeval now = {0, 0};
        evtimer_del(dp->timer);
        evtimer_add(dp->timer, &now);
    }
    /* STEP_DB: the answer's callback sees cancelled */
}

/* The deploy itself, run by exec_step once the workspace is locked and the
 * inputs are in it. */
static const handler_ops_t deploy_work = {
    .kinds = (const char *const[]){NULL},
    .start = deploy_start,
    .cancel = deploy_cancel,
};

static int deploy_step_start(task_run_t *run, handler_result_t *res)
{
    return exec_step_start(run, res, &deploy_work);
}

const handler_ops_t handler_deploy = {
    .kinds = (const char *const[]){"deploy", NULL},
    .start = deploy_step_start,
    .cancel = exec_step_cancel,
};
