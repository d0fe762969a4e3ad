/* deploy_run: a deploy's helper commands as bare exec processes (see
 * deploy_run.h): the deploy's step already holds the task's workspace. */
#include "deploy_run.h"

#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

#define LAST_LINE_MAX 300

/* inner is first: the exec handler's pointer to it is one to the whole */
struct deploy_run {
    task_run_t inner;
    spec_t spec;
    const char **argv;
    char *workdir;
    deploy_run_fn *fn;
    void *arg;
};

static void run_free(deploy_run_t *r)
{
    for (size_t i = 0; r->argv[i]; i++)
        free((char *)r->argv[i]);
    free(r->argv);
    free(r->workdir);
    json_decref(r->spec.env);
    free(r);
}

static void run_done(task_run_t *inner, handler_result_t *res)
{
    deploy_run_t *r = (deploy_run_t *)inner;
    deploy_run_fn *fn = r->fn;
    void *arg = r->arg;
    run_free(r);
    fn(res, arg);
}

static void no_checkpoint(task_run_t *inner, const char *json, size_t len)
{
    (void)inner;
    (void)json;
    (void)len;
}

deploy_run_t *deploy_run_start(task_run_t *outer, const char *const *argv, const char *workdir, json_t *env,
                               double timeout_s, deploy_run_fn *fn, void *arg, handler_result_t *res)
{
    deploy_run_t *r = xcalloc(1, sizeof *r);
    size_t n = 0;
    while (argv[n])
        n++;
    r->argv = xcalloc(n + 1, sizeof *r->argv);
    for (size_t i = 0; i < n; i++)
        r->argv[i] = xstrdup(argv[i]);
    r->workdir = workdir ? xstrdup(workdir) : NULL;
    r->fn = fn;
    r->arg = arg;
    /* a spec of its own: the command, and nothing of the deploy's retry rules */
    r->spec.kind = "exec";
    r->spec.queue = outer->spec->queue;
    r->spec.argc = n;
    r->spec.argv = r->argv;
    r->spec.workdir = r->workdir;
    r->spec.env = env;
    r->spec.timeout_s = timeout_s;
    r->spec.retry = outer->spec->retry;
    memset(r->spec.retry.permanent_exit, 0, sizeof r->spec.retry.permanent_exit);
    r->inner = *outer;
    r->inner.spec = &r->spec;
    r->inner.checkpoint = NULL;
    r->inner.done = run_done;
    r->inner.checkpoint_save = no_checkpoint;
    r->inner.handler_data = NULL;
    r->inner.workdir = r->workdir;
    r->inner.env_extra = NULL;
    if (exec_process.start(&r->inner, res) < 0) {
        run_free(r);
        return NULL;
    }
    return r;
}

void deploy_run_cancel(deploy_run_t *r)
{
    exec_process.cancel(&r->inner);
}

void deploy_run_result_clear(handler_result_t *res)
{
    free(res->error);
    free(res->output);
    json_decref(res->result);
    json_decref(res->report_summary);
    free(res->report_xml);
    memset(res, 0, sizeof *res);
}

char *deploy_run_last_line(const handler_result_t *res)
{
    if (!res->output || !res->output_len)
        return NULL;
    size_t end = res->output_len;
    while (end > 0 && (res->output[end - 1] == '\n' || res->output[end - 1] == '\r'))
        end--;
    size_t start = end;
    while (start > 0 && res->output[start - 1] != '\n')
        start--;
    if (start == end)
        return NULL;
    if (end - start > LAST_LINE_MAX)
        start = end - LAST_LINE_MAX;
    return xstrndup(res->output + start, end - start);
}
