/* exec_step: the exec handler seen from the agent (see exec_step.h). Phases
 * of one attempt: inputs (downloads, one at a time) -> process -> result
 * document -> artifacts hashed in a thread -> uploads (one at a time) ->
 * done. Everything but the hashing runs on the loop without blocking. */
#include "exec_step.h"
#include "handler.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "log.h"
#include "step_output.h"
#include "step_transfer.h"
#include "workspace.h"
#include "xalloc.h"

#define ARTIFACT_REL_MAX 256 /* bytes of an artifact's path in the result */

enum step_phase { PH_INPUTS, PH_PROCESS, PH_HASH, PH_UPLOAD, PH_DONE };

typedef struct step {
    task_run_t inner;          /* the process's run; first, so &inner is the step */
    task_run_t *outer;
    const handler_ops_t *work; /* what runs in the workspace: exec_process, or a kind's own work */
    ws_t *ws;
    char *workdir;
    char *env_extra[4];
    enum step_phase phase;
    int stopped;               /* cancelled while not in the process phase */
    handler_result_t res;      /* the outcome being built */
    struct event *defer;       /* reports from a fresh loop callback */
    struct step *next;         /* all steps in flight */
    /* inputs */
    json_t *inputs_doc;        /* what DEVSYS_INPUTS names */
    const char *in_node;
    void *in_iter;
    size_t in_index;
    int in_dirfd;
    /* artifacts */
    sout_file_t *files;
    size_t nfiles, next_file;
    pthread_t hasher;
    int hashing;
    int hash_pipe[2];
    struct event *hash_ev;
    atomic_int hash_stop;
    char hash_err[600];
    xfer_t *xfer;
} step_t;

static step_t *steps;
static long long artifact_max = -1;

static void steps_remove(step_t *s)
{
    for (step_t **pp = &steps; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            return;
        }
}

static void set_failure(handler_result_t *res, int retryable, const char *why)
{
    if (res->ok || !res->error) {
        free(res->error);
        res->error = xstrdup(why);
        res->retryable = retryable;
    } else { /* "exit status 1; result: ..." */
        char *both = xasprintf("%s; %s", res->error, why);
        free(res->error);
        res->error = both;
        res->retryable = res->retryable && retryable;
    }
    res->ok = 0;
}

/* Reports the outcome and frees s. From a loop callback, never from start. */
static void step_report(step_t *s)
{
    task_run_t *outer = s->outer;
    handler_result_t res = s->res;
    if (s->stopped && res.ok == 0 && !res.error)
        res.error = xstrdup("cancelled");
    steps_remove(s);
    ws_close(s->ws);
    if (s->hash_ev)
        event_free(s->hash_ev);
    if (s->hash_pipe[0] > 0) {
        close(s->hash_pipe[0]);
        close(s->hash_pipe[1]);
    }
    if (s->in_dirfd > 0)
        close(s->in_dirfd);
    event_free(s->defer);
    sout_files_free(s->files, s->nfiles);
    json_decref(s->inputs_doc);
    for (int i = 0; s->env_extra[i]; i++)
        free(s->env_extra[i]);
    /* The caller's run learns where the command ran for the length of its
     * done() (a wrapping handler, testing, reads its reports there). */
    char *workdir = s->workdir;
    free(s);
    outer->handler_data = NULL;
    outer->workdir = workdir;
    outer->done(outer, &res);
    free(workdir);
}

static void on_defer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    step_report(arg);
}

/* Fails the attempt (retryable) and reports from a fresh callback. */
static void step_fail_later(step_t *s, int retryable, const char *why)
{
    set_failure(&s->res, retryable, why);
    s->phase = PH_DONE;
    event_active(s->defer, EV_TIMEOUT, 0);
}

/* ---------------------------------------------------------------- uploads */

static void upload_next(step_t *s);

static void on_uploaded(int ok, const char *err, void *arg)
{
    step_t *s = arg;
    s->xfer = NULL;
    if (!ok) {
        set_failure(&s->res, 1, err);
        step_report(s);
        return;
    }
    s->next_file++;
    upload_next(s);
}

static json_t *artifacts_json(const step_t *s)
{
    json_t *a = json_array();
    for (size_t i = 0; i < s->nfiles; i++)
        json_array_append_new(a, json_pack("{s:s,s:s,s:I}", "path", s->files[i].rel, "sha256", s->files[i].sha256,
                                           "size", (json_int_t)s->files[i].size));
    return a;
}

/* Called from a loop callback (hash done or the last upload). */
static void upload_next(step_t *s)
{
    if (s->next_file == s->nfiles) {
        json_object_set_new(s->res.result, "artifacts", artifacts_json(s));
        step_report(s);
        return;
    }
    const sout_file_t *f = &s->files[s->next_file];
    char err[600];
    s->xfer = xfer_upload(f->path, f->rel, f->sha256, f->size, on_uploaded, s, err, sizeof err);
    if (!s->xfer) {
        set_failure(&s->res, 1, err);
        step_report(s);
    }
}

/* ---------------------------------------------------------------- hashing */

static void *hash_thread(void *arg)
{
    step_t *s = arg;
    for (size_t i = 0; i < s->nfiles && !atomic_load(&s->hash_stop); i++) {
        sout_file_t *f = &s->files[i];
        long long size;
        char err[500];
        if (sout_hash_file(f->path, f->sha256, &size, err, sizeof err) < 0) {
            snprintf(s->hash_err, sizeof s->hash_err, "expected artifact %s: %s", f->rel, err);
            break;
        }
        f->size = size; /* what was hashed, whatever the stat said */
    }
    char c = 1;
    (void)!write(s->hash_pipe[1], &c, 1);
    return NULL;
}

static void on_hashed(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    step_t *s = arg;
    pthread_join(s->hasher, NULL);
    s->hashing = 0;
    if (s->stopped) {
        step_report(s);
        return;
    }
    if (s->hash_err[0]) {
        set_failure(&s->res, 1, s->hash_err);
        step_report(s);
        return;
    }
    s->phase = PH_UPLOAD;
    upload_next(s);
}

static void artifacts_start(step_t *s, const json_t *patterns)
{
    char err[800];
    for (size_t i = 0; i < json_array_size(patterns); i++)
        if (json_string_length(json_array_get(patterns, i)) > ARTIFACT_REL_MAX) {
            snprintf(err, sizeof err, "expected_artifacts[%zu]: longer than %d bytes", i, ARTIFACT_REL_MAX);
            step_fail_later(s, 0, err);
            return;
        }
    if (sout_collect(s->workdir, patterns, artifact_max, &s->files, &s->nfiles, err, sizeof err) < 0) {
        step_fail_later(s, 0, err); /* the command succeeded without what it promised */
        return;
    }
    if (pipe2(s->hash_pipe, O_CLOEXEC) < 0) {
        s->hash_pipe[0] = s->hash_pipe[1] = 0;
        step_fail_later(s, 1, "artifacts: pipe failed");
        return;
    }
    s->hash_ev = event_new(s->outer->base, s->hash_pipe[0], EV_READ, on_hashed, s);
    event_add(s->hash_ev, NULL);
    s->phase = PH_HASH;
    if (pthread_create(&s->hasher, NULL, hash_thread, s) != 0) {
        event_del(s->hash_ev);
        step_fail_later(s, 1, "artifacts: cannot start the hashing thread");
        return;
    }
    s->hashing = 1;
}

/* ---------------------------------------------------------------- process */

/* The work ended; for the process: its result document, then the artifacts. */
static void step_process_done(task_run_t *inner, handler_result_t *res)
{
    step_t *s = (step_t *)inner;
    s->res = *res;
    s->phase = PH_DONE;
    if (s->work != &exec_process) { /* no command of the spec's: no result document, no artifacts */
        step_report(s);
        return;
    }
    int stopped = !res->ok && res->error && (!strcmp(res->error, "cancelled") || !strcmp(res->error, "timeout"));
    if (!s->res.result)
        s->res.result = json_object();
    json_t *out = NULL;
    char err[600];
    char *path = xasprintf("%s/result.json", s->ws->meta);
    int rc = stopped ? 0 : sout_result_read(path, SOUT_RESULT_MAX, &out, err, sizeof err);
    free(path);
    json_object_set_new(s->res.result, "output", out ? out : json_null());
    json_object_set_new(s->res.result, "artifacts", json_array());
    if (rc < 0)
        set_failure(&s->res, 0, err); /* the step wrote a bad document: running it again rarely helps */
    const json_t *patterns = json_object_get(s->outer->spec->json, "expected_artifacts");
    if (s->res.ok && json_array_size(patterns) > 0) {
        artifacts_start(s, patterns);
        return;
    }
    step_report(s);
}

static void step_checkpoint(task_run_t *inner, const char *json, size_t len)
{
    task_run_t *outer = ((step_t *)inner)->outer;
    if (outer->checkpoint_save)
        outer->checkpoint_save(outer, json, len);
}

/* Starts the process; on failure its result goes to s->res (0/-1). */
static int process_start(step_t *s)
{
    s->phase = PH_PROCESS;
    handler_result_t res;
    if (s->work->start(&s->inner, &res) == 0)
        return 0;
    s->res = res;
    return -1;
}

/* ----------------------------------------------------------------- inputs */

static void inputs_next(step_t *s);

/* Opens (creating) each component of rel's directory below dirfd without
 * following symlinks; the fd of the last, or -1. rel was checked with
 * sout_relpath_ok; leaf gets its file name. */
static int open_dirs(int dirfd, const char *rel, const char **leaf)
{
    int fd = dup(dirfd);
    const char *s = rel;
    for (;;) {
        size_t n = strcspn(s, "/");
        if (!s[n]) {
            *leaf = s;
            return fd;
        }
        char part[256];
        if (n >= sizeof part) {
            close(fd);
            errno = ENAMETOOLONG;
            return -1;
        }
        memcpy(part, s, n);
        part[n] = '\0';
        if (mkdirat(fd, part, 0700) < 0 && errno != EEXIST) {
            close(fd);
            return -1;
        }
        int next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        close(fd);
        if (next < 0)
            return -1;
        fd = next;
        s += n + 1;
    }
}

static void on_downloaded(int ok, const char *err, void *arg)
{
    step_t *s = arg;
    s->xfer = NULL;
    if (s->in_dirfd > 0) {
        close(s->in_dirfd);
        s->in_dirfd = 0;
    }
    if (!ok) {
        set_failure(&s->res, 1, err);
        step_report(s);
        return;
    }
    s->in_index++;
    inputs_next(s);
}

/* The next artifact to fetch, or the process once all are there. From a
 * loop callback or from start (then a failure is reported later). */
static void inputs_next(step_t *s)
{
    char err[800];
    while (s->in_iter) {
        json_t *node = json_object_iter_value(s->in_iter);
        const char *name = json_object_iter_key(s->in_iter);
        json_t *arts = json_object_get(node, "artifacts");
        if (s->in_index >= json_array_size(arts)) {
            s->in_iter = json_object_iter_next(s->inputs_doc, s->in_iter);
            s->in_index = 0;
            continue;
        }
        json_t *a = json_array_get(arts, s->in_index);
        const char *rel = json_string_value(json_object_get(a, "path"));
        const char *sha = json_string_value(json_object_get(a, "sha256"));
        char *shown = xasprintf("%s/%s", name, rel ? rel : "");
        /* validated at submit; checked again where it is written */
        if (!sout_relpath_ok(name) || strchr(name, '/') || !rel || !sout_relpath_ok(rel) || !sha) {
            snprintf(err, sizeof err, "inputs: %.300s: not a relative path inside inputs/", shown);
            free(shown);
            step_fail_later(s, 0, err);
            return;
        }
        char *dir = xasprintf("%s/inputs", s->ws->dir);
        mkdir(dir, 0700);
        int base = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        free(dir);
        const char *leaf = NULL;
        char *full = xasprintf("%s/%s", name, rel);
        int dfd = base < 0 ? -1 : open_dirs(base, full, &leaf);
        if (base >= 0)
            close(base);
        json_object_set_new(a, "file", json_sprintf("%s/inputs/%s", s->ws->dir, full));
        if (dfd < 0) {
            snprintf(err, sizeof err, "input %.300s: %s", shown, strerror(errno));
            free(full);
            free(shown);
            step_fail_later(s, 1, err);
            return;
        }
        s->in_dirfd = dfd;
        s->xfer = xfer_download(dfd, leaf, shown, sha, json_integer_value(json_object_get(a, "size")), on_downloaded,
                                s, err, sizeof err);
        free(full); /* leaf points into it */
        free(shown);
        if (!s->xfer)
            step_fail_later(s, 1, err);
        return;
    }
    /* all there: the list the command reads, then the command */
    char *path = xasprintf("%s/inputs.json", s->ws->meta);
    int rc = json_dump_file(s->inputs_doc, path, JSON_COMPACT);
    free(path);
    if (rc < 0) {
        step_fail_later(s, 1, "inputs: cannot write $DEVSYS_INPUTS");
        return;
    }
    if (process_start(s) < 0) {
        s->phase = PH_DONE;
        event_active(s->defer, EV_TIMEOUT, 0);
    }
}

/* ------------------------------------------------------------------ start */

int exec_step_start(task_run_t *run, handler_result_t *res, const handler_ops_t *work)
{
    memset(res, 0, sizeof *res);
    if (artifact_max < 0) {
        artifact_max = cfg_long("DEVSYS_ARTIFACT_MAX_BYTES", SOUT_ARTIFACT_MAX_DEFAULT, 1, 1L << 40);
        ws_init(run->base);
        xfer_init(run->base);
    }
    char err[600];
    ws_t *ws = ws_open(run->id, err, sizeof err);
    if (!ws) {
        res->retryable = 1;
        res->error = xstrdup(err);
        return -1;
    }
    step_t *s = xcalloc(1, sizeof *s);
    s->outer = run;
    s->work = work;
    s->ws = ws;
    s->workdir = xstrdup(run->spec->workdir ? run->spec->workdir : ws->dir);
    s->env_extra[0] = xasprintf("DEVSYS_WORKSPACE=%s", ws->dir);
    s->env_extra[1] = xasprintf("DEVSYS_RESULT=%s/result.json", ws->meta);
    char *result = xasprintf("%s/result.json", ws->meta);
    unlink(result); /* an earlier attempt's */
    free(result);
    s->inner = *run;
    s->inner.done = step_process_done;
    s->inner.checkpoint_save = step_checkpoint;
    s->inner.handler_data = NULL;
    s->inner.workdir = s->workdir;
    s->inner.env_extra = s->env_extra;
    s->defer = event_new(run->base, -1, 0, on_defer, s);
    s->next = steps;
    steps = s;
    run->handler_data = s;
    if (run->spec->inputs && json_object_size(run->spec->inputs) > 0) {
        s->env_extra[2] = xasprintf("DEVSYS_INPUTS=%s/inputs.json", ws->meta);
        s->inputs_doc = json_deep_copy(run->spec->inputs);
        s->in_iter = json_object_iter(s->inputs_doc);
        s->phase = PH_INPUTS;
        inputs_next(s);
        return 0;
    }
    if (process_start(s) == 0)
        return 0;
    *res = s->res;
    memset(&s->res, 0, sizeof s->res);
    steps_remove(s);
    run->handler_data = NULL;
    ws_close(s->ws);
    event_free(s->defer);
    for (int i = 0; s->env_extra[i]; i++)
        free(s->env_extra[i]);
    free(s->workdir);
    free(s);
    return -1;
}

/* Stops what runs on the loop now; the report comes from a fresh callback
 * (or, while hashing, when the thread has seen the flag). */
static void step_stop(step_t *s)
{
    s->stopped = 1;
    set_failure(&s->res, 0, "cancelled");
    if (s->xfer) {
        xfer_cancel(s->xfer);
        s->xfer = NULL;
    }
    if (s->hashing) {
        atomic_store(&s->hash_stop, 1);
        return; /* on_hashed reports */
    }
    event_active(s->defer, EV_TIMEOUT, 0);
}

void exec_step_cancel(task_run_t *run)
{
    step_t *s = run->handler_data;
    if (!s || s->stopped)
        return;
    if (s->phase == PH_PROCESS) {
        s->work->cancel(&s->inner);
        return;
    }
    if (s->phase == PH_DONE && !s->xfer && !s->hashing)
        return; /* its report is already on its way */
    step_stop(s);
}

void exec_step_stop_all(void)
{
    for (step_t *s = steps, *next; s; s = next) {
        next = s->next;
        if (s->phase == PH_PROCESS)
            continue; /* exec_handler_shutdown ends the process (other work was cancelled): its done reports */
        if (s->hashing) {
            atomic_store(&s->hash_stop, 1);
            pthread_join(s->hasher, NULL);
            s->hashing = 0;
        }
        if (s->xfer) {
            xfer_cancel(s->xfer);
            s->xfer = NULL;
        }
        if (!s->res.error)
            set_failure(&s->res, 0, "cancelled");
        s->stopped = 1;
        step_report(s);
    }
}

void exec_step_shutdown(void)
{
    exec_step_stop_all();
    xfer_shutdown();
    ws_shutdown();
    artifact_max = -1;
}

static int step_start(task_run_t *run, handler_result_t *res)
{
    return exec_step_start(run, res, &exec_process);
}

const handler_ops_t handler_exec = {
    .kinds = (const char *const[]){"exec", "coding", NULL},
    .start = step_start,
    .cancel = exec_step_cancel,
};
