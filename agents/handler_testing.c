/* handler_testing: kind testing. Runs the command through the exec handler
 * (same process group, environment, timeout, output tail and checkpoints),
 * then reads the JUnit XML files its "testing" section names (common/junit.h)
 * and turns them into the outcome and the report stored with it. */
#include "handler.h"

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "junit.h"
#include "workspace.h"
#include "xalloc.h"

#define REPORT_FILES_MAX 64    /* files matched by all the patterns together */
/* Bytes of all the files together. Parsing runs on the agent's loop (about
 * 20-30 ms per MiB measured), so this bounds how long it stalls. */
#define REPORT_TOTAL_MAX (64L * 1024 * 1024)
#define FAILED_LINE_MAX 400    /* bytes of test names in the error line */
#define RESULT_ROOM (RESULT_MAX - 1024)

/* The exec handler runs `inner`, a copy of the agent's run whose done and
 * checkpoint_save lead back here; inner is first, so a pointer to it is one
 * to the whole. */
typedef struct testing_run {
    task_run_t inner;
    task_run_t *outer;
} testing_run_t;

/* A growing ", "-separated list of what went wrong with the report files. */
struct problems {
    char *text;
    int n;
};

static void problem_add(struct problems *p, const char *fmt, const char *a, const char *b)
{
    char *item = xasprintf(fmt, a, b);
    char *next = p->text ? xasprintf("%s; %s", p->text, item) : xstrdup(item);
    free(item);
    free(p->text);
    p->text = next;
    p->n++;
}

/* Reads every file the section names into s; what is missing or unreadable
 * goes to p. Patterns are relative to workdir (the spec's, or the task's
 * workspace when it has none), as the command saw them. At most
 * REPORT_FILES_MAX files and REPORT_TOTAL_MAX bytes are read. */
static void read_reports(const spec_t *spec, const char *workdir, junit_summary_t *s, struct problems *p)
{
    size_t max = spec->max_report_bytes > 0 ? (size_t)spec->max_report_bytes : JUNIT_FILE_MAX_DEFAULT;
    size_t i, files = 0;
    long long total = 0;
    json_t *pat;
    json_array_foreach(spec->junit, i, pat)
    {
        const char *rel = json_string_value(pat);
        char *full = workdir ? xasprintf("%s/%s", workdir, rel) : xstrdup(rel);
        glob_t g;
        int rc = glob(full, GLOB_NOESCAPE, NULL, &g);
        if (rc == GLOB_NOMATCH || (rc == 0 && g.gl_pathc == 0)) {
            problem_add(p, "%s: missing%s", rel, strpbrk(rel, "*?[") ? " (no file matches)" : "");
        } else if (rc != 0) {
            problem_add(p, "%s: %s", rel, "cannot be listed");
        } else {
            for (size_t k = 0; k < g.gl_pathc; k++) {
                const char *shown = g.gl_pathv[k] + (workdir ? strlen(workdir) + 1 : 0);
                char why[300];
                if (++files > REPORT_FILES_MAX) {
                    snprintf(why, sizeof why, "more than %d files match", REPORT_FILES_MAX);
                    problem_add(p, "%s: %s", rel, why);
                    break;
                }
                struct stat st;
                if (stat(g.gl_pathv[k], &st) == 0 && st.st_size > 0 && (size_t)st.st_size <= max &&
                    (total += st.st_size) > REPORT_TOTAL_MAX) {
                    snprintf(why, sizeof why, "the reports exceed %ld bytes in total", REPORT_TOTAL_MAX);
                    problem_add(p, "%s: %s", shown, why);
                    continue;
                }
                if (junit_parse_file(s, g.gl_pathv[k], max, why, sizeof why) < 0)
                    problem_add(p, "%s: %s", shown, why);
            }
        }
        if (rc == 0)
            globfree(&g);
        free(full);
        if (files > REPORT_FILES_MAX)
            break;
    }
}

/* The summary in the task's result, shortened until it fits RESULT_MAX: the
 * list of failed tests loses entries (counted in failed_unlisted). */
static json_t *summary_fitted(json_t *summary)
{
    json_t *copy = json_deep_copy(summary);
    json_t *failed = json_object_get(copy, "failed");
    for (;;) {
        size_t len = json_dumpb(copy, NULL, 0, JSON_COMPACT);
        size_t n = json_array_size(failed);
        if (len <= RESULT_ROOM || n == 0)
            return copy;
        size_t drop = (n + 1) / 2;
        for (size_t k = 0; k < drop; k++)
            json_array_remove(failed, json_array_size(failed) - 1);
        json_int_t unlisted = json_integer_value(json_object_get(copy, "failed_unlisted"));
        json_object_set_new(copy, "failed_unlisted", json_integer(unlisted + (json_int_t)drop));
    }
}

/* Turns the command's outcome (res, from exec) into the testing outcome:
 * succeeded only when the command exited 0, every file was read and no test
 * failed. Failing tests are permanent (running them again rarely helps)
 * unless the spec has its own retry_policy; a report problem is permanent
 * when the command exited 0 (the command wrote no or a bad report), else it
 * follows the command's failure. */
static void judge(const task_run_t *run, handler_result_t *res)
{
    const spec_t *spec = run->spec;
    json_t *code = json_object_get(res->result, "exit_code");
    int exited0 = json_is_integer(code) && json_integer_value(code) == 0;
    junit_summary_t *s = junit_summary_new();
    struct problems p = {NULL, 0};
    char *workdir = spec->workdir ? xstrdup(spec->workdir) : ws_dir_for(run->id);
    read_reports(spec, workdir, s, &p);
    free(workdir);

    if (p.n == 0 || junit_tests(s) > 0) {
        json_t *summary = junit_summary_json(s);
        size_t xml_len;
        res->report_xml = junit_summary_xml(s, &xml_len);
        if (!res->report_xml)
            json_object_set_new(summary, "xml_omitted", json_string("the reports exceed 8 MiB"));
        if (p.n)
            json_object_set_new(summary, "report_errors", json_string(p.text));
        if (!res->result)
            res->result = json_object();
        json_object_set_new(res->result, "report", summary_fitted(summary));
        res->report_summary = summary;
    }

    char *why = NULL;
    int retryable = res->retryable;
    if (p.n) {
        why = xasprintf("JUnit report%s: %s", p.n > 1 ? "s" : "", p.text);
        if (exited0)
            retryable = 0;
    } else if (junit_failed_count(s) > 0) {
        why = junit_failed_line(s, FAILED_LINE_MAX);
        retryable = spec->has_retry_policy;
    }
    if (why && res->ok) {
        res->ok = 0;
        res->retryable = retryable;
        res->error = why;
    } else if (why) {
        /* "exit status 1; 2 tests failed: ..." */
        char *both = xasprintf("%s; %s", res->error, why);
        free(res->error);
        free(why);
        res->error = both;
        res->retryable = retryable && res->retryable;
    }
    free(p.text);
    junit_summary_free(s);
}

static void testing_exec_done(task_run_t *inner, handler_result_t *res)
{
    testing_run_t *tr = (testing_run_t *)inner;
    task_run_t *outer = tr->outer;
    free(tr);
    outer->handler_data = NULL;
    /* cancelled or timed out: the reports are partial at best */
    int stopped = !res->ok && res->error &&
                  (strcmp(res->error, "cancelled") == 0 || strcmp(res->error, "timeout") == 0);
    if (!stopped)
        judge(outer, res);
    outer->done(outer, res);
}

static void testing_checkpoint(task_run_t *inner, const char *json, size_t len)
{
    task_run_t *outer = ((testing_run_t *)inner)->outer;
    if (outer->checkpoint_save)
        outer->checkpoint_save(outer, json, len);
}

static int testing_start(task_run_t *run, handler_result_t *res)
{
    if (!run->spec->junit) { /* the validator requires it: a spec from elsewhere */
        memset(res, 0, sizeof *res);
        res->error = xstrdup("testing.junit: required");
        return -1;
    }
    testing_run_t *tr = xcalloc(1, sizeof *tr);
    tr->outer = run;
    tr->inner = *run;
    tr->inner.done = testing_exec_done;
    tr->inner.checkpoint_save = testing_checkpoint;
    tr->inner.handler_data = NULL;
    if (handler_exec.start(&tr->inner, res) < 0) {
        free(tr);
        return -1;
    }
    run->handler_data = tr;
    return 0;
}

static void testing_cancel(task_run_t *run)
{
    testing_run_t *tr = run->handler_data;
    if (tr)
        handler_exec.cancel(&tr->inner);
}

const handler_ops_t handler_testing = {
    .kinds = (const char *const[]){"testing", NULL},
    .start = testing_start,
    .cancel = testing_cancel,
};
