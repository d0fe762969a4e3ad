/* handler_testing: kind testing. Runs the command through the exec handler
 * (same process group, environment, timeout, output tail and checkpoints),
 * then reads the JUnit XML files its "testing" section names (common/junit.h)
 * on a worker thread (common/offload.h), never on the agent's loop, and turns
 * them into the outcome, the report and the test history stored with it. */
#include "handler.h"

#include <glob.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "junit.h"
#include "log.h"
#include "offload.h"
#include "workspace.h"
#include "xalloc.h"

#define REPORT_FILES_MAX 64    /* files matched by all the patterns together */
/* Bytes of all the files together (parsing takes about 20-30 ms per MiB, on
 * a worker thread). */
#define REPORT_TOTAL_MAX (64L * 1024 * 1024)
/* Parser threads (DEVSYS_REPORT_PARSERS): reports are parsed one set at a
 * time per thread, so memory is bounded by threads x one set of reports
 * (a DOM of about 5x the file's bytes for the largest file, plus the XML
 * kept, at most JUNIT_XML_MAX). */
#define REPORT_PARSERS_DEFAULT 1
#define REPORT_PARSERS_MAX 8
#define FAILED_LINE_MAX 400    /* bytes of test names in the error line */
#define RESULT_ROOM (RESULT_MAX - 1024)

/* The run's handler_data is a testing_run_t while the command runs, then a
 * parse_job_t while its reports are read; both start with their phase. */
enum phase { PHASE_EXEC = 1, PHASE_PARSE };

/* The exec handler runs `inner`, a copy of the agent's run whose done and
 * checkpoint_save lead back here (RUN_OF finds the whole from it). */
typedef struct testing_run {
    enum phase phase;
    task_run_t inner;
    task_run_t *outer;
} testing_run_t;
#define RUN_OF_PHASE(p) ((testing_run_t *)(void *)(p))
#define RUN_OF(inner) ((testing_run_t *)(void *)((char *)(inner) - offsetof(testing_run_t, inner)))

/* A growing ", "-separated list of what went wrong with the report files. */
struct problems {
    char *text;
    int n;
};

/* One parse of a run's reports on the pool. The worker reads only what is
 * copied here (the spec stays the loop's); the loop reads s and p once the
 * job is back. */
typedef struct parse_job {
    enum phase phase;
    task_run_t *outer;
    handler_result_t res; /* the command's outcome, completed by judge */
    char **patterns;      /* testing.junit, copied */
    size_t npatterns;
    char *workdir;        /* the spec's, else the task's workspace */
    size_t max;           /* bytes per file */
    atomic_int cancelled; /* set by cancel: the worker skips the files left */
    junit_summary_t *s;
    struct problems p;
} parse_job_t;

static offload_t *parsers;

static void problem_add(struct problems *p, const char *fmt, const char *a, const char *b)
{
    char *item = xasprintf(fmt, a, b);
    char *next = p->text ? xasprintf("%s; %s", p->text, item) : xstrdup(item);
    free(item);
    free(p->text);
    p->text = next;
    p->n++;
}

/* Reads every file the job names into j->s; what is missing or unreadable
 * goes to j->p. Patterns are relative to the workdir (the agent's own
 * directory when the spec has none), as the command saw them. At most
 * REPORT_FILES_MAX files and REPORT_TOTAL_MAX bytes are read. Runs on a
 * worker thread. */
static void read_reports(void *arg)
{
    parse_job_t *j = arg;
    struct problems *p = &j->p;
    size_t files = 0;
    long long total = 0;
    for (size_t i = 0; i < j->npatterns && !atomic_load(&j->cancelled); i++) {
        const char *rel = j->patterns[i];
        char *full = j->workdir ? xasprintf("%s/%s", j->workdir, rel) : xstrdup(rel);
        glob_t g;
        int rc = glob(full, GLOB_NOESCAPE, NULL, &g);
        if (rc == GLOB_NOMATCH || (rc == 0 && g.gl_pathc == 0)) {
            problem_add(p, "%s: missing%s", rel, strpbrk(rel, "*?[") ? " (no file matches)" : "");
        } else if (rc != 0) {
            problem_add(p, "%s: %s", rel, "cannot be listed");
        } else {
            for (size_t k = 0; k < g.gl_pathc && !atomic_load(&j->cancelled); k++) {
                const char *shown = g.gl_pathv[k] + (j->workdir ? strlen(j->workdir) + 1 : 0);
                char why[300];
                if (++files > REPORT_FILES_MAX) {
                    snprintf(why, sizeof why, "more than %d files match", REPORT_FILES_MAX);
                    problem_add(p, "%s: %s", rel, why);
                    break;
                }
                struct stat st;
                if (stat(g.gl_pathv[k], &st) == 0 && st.st_size > 0 && (size_t)st.st_size <= j->max &&
                    (total += st.st_size) > REPORT_TOTAL_MAX) {
                    snprintf(why, sizeof why, "the reports exceed %ld bytes in total", REPORT_TOTAL_MAX);
                    problem_add(p, "%s: %s", shown, why);
                    continue;
                }
                if (junit_parse_file(j->s, g.gl_pathv[k], j->max, why, sizeof why) < 0)
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

/* The test history of this run (stored with the report, common/taskdb.h):
 * scope "pipeline:<pipeline name>", else "name:<task name>" (none: no
 * history); the input the outcomes are compared on for flakiness:
 * "input:<testing.input>" (e.g. a commit), else the pipeline run's node
 * "pipeline:<id>/<step>/<index>" (a rerun of it is the same input), else
 * "task:<id>" (its retries are). */
static json_t *history_json(const task_run_t *run, const junit_summary_t *s)
{
    const spec_t *spec = run->spec;
    const char *pname = json_string_value(json_object_get(spec->pipeline, "name"));
    char *scope = pname ? xasprintf("pipeline:%s", pname) : spec->name ? xasprintf("name:%s", spec->name) : NULL;
    if (!scope)
        return NULL;
    const char *given = json_string_value(json_object_get(json_object_get(spec->json, "testing"), "input"));
    char *input = given ? xasprintf("input:%s", given)
                  : spec->pipeline
                      ? xasprintf("pipeline:%s/%s/%lld", json_string_value(json_object_get(spec->pipeline, "id")),
                                  json_string_value(json_object_get(spec->pipeline, "step")),
                                  (long long)json_integer_value(json_object_get(spec->pipeline, "index")))
                      : xasprintf("task:%s", run->id);
    json_t *h = json_pack("{s:s,s:s,s:o}", "scope", scope, "input", input, "cases", junit_cases_json(s));
    free(scope);
    free(input);
    return h;
}

/* Turns the command's outcome (j->res, from exec) and the reports read into
 * the testing outcome: succeeded only when the command exited 0, every file
 * was read and no test failed. Failing tests are permanent (running them
 * again rarely helps) unless the spec has its own retry_policy; a report
 * problem is permanent when the command exited 0 (the command wrote no or a
 * bad report), else it follows the command's failure. */
static void judge(parse_job_t *j)
{
    const task_run_t *run = j->outer;
    const spec_t *spec = run->spec;
    handler_result_t *res = &j->res;
    json_t *code = json_object_get(res->result, "exit_code");
    int exited0 = json_is_integer(code) && json_integer_value(code) == 0;
    junit_summary_t *s = j->s;
    struct problems *p = &j->p;

    if (p->n == 0 || junit_tests(s) > 0) {
        json_t *summary = junit_summary_json(s);
        size_t xml_len;
        res->report_xml = junit_summary_xml(s, &xml_len);
        if (!res->report_xml)
            json_object_set_new(summary, "xml_omitted", json_string("the reports exceed 8 MiB"));
        if (p->n)
            json_object_set_new(summary, "report_errors", json_string(p->text));
        if (junit_cases_unrecorded(s))
            json_object_set_new(summary, "history_unrecorded", json_integer(junit_cases_unrecorded(s)));
        if (!res->result)
            res->result = json_object();
        json_object_set_new(res->result, "report", summary_fitted(summary));
        res->report_summary = summary;
        res->report_history = history_json(run, s);
    }

    char *why = NULL;
    int retryable = res->retryable;
    if (p->n) {
        why = xasprintf("JUnit report%s: %s", p->n > 1 ? "s" : "", p->text);
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
}

static void parse_job_free(parse_job_t *j)
{
    for (size_t i = 0; i < j->npatterns; i++)
        free(j->patterns[i]);
    free(j->patterns);
    free(j->workdir);
    free(j->p.text);
    junit_summary_free(j->s);
    free(j);
}

/* Back on the loop: the outcome. A run cancelled while its reports were
 * read (or an agent shutting down) ends "cancelled", as exec's do. */
static void parse_done(void *arg, int ran)
{
    parse_job_t *j = arg;
    task_run_t *outer = j->outer;
    outer->handler_data = NULL;
    if (ran && !atomic_load(&j->cancelled)) {
        judge(j);
    } else {
        free(j->res.error);
        j->res.ok = 0;
        j->res.retryable = 1;
        j->res.error = xstrdup("cancelled");
    }
    handler_result_t res = j->res;
    parse_job_free(j);
    outer->done(outer, &res);
}

static void testing_exec_done(task_run_t *inner, handler_result_t *res)
{
    testing_run_t *tr = RUN_OF(inner);
    task_run_t *outer = tr->outer;
    /* where the command ran (exec_step.c sets it for this call) */
    char *ran_in = inner->workdir ? xstrdup(inner->workdir) : NULL;
    free(tr);
    outer->handler_data = NULL;
    /* cancelled or timed out: the reports are partial at best */
    int stopped = !res->ok && res->error &&
                  (strcmp(res->error, "cancelled") == 0 || strcmp(res->error, "timeout") == 0);
    if (stopped) {
        free(ran_in);
        outer->done(outer, res);
        return;
    }
    const spec_t *spec = outer->spec;
    parse_job_t *j = xcalloc(1, sizeof *j);
    j->phase = PHASE_PARSE;
    j->outer = outer;
    j->res = *res;
    j->npatterns = json_array_size(spec->junit);
    j->patterns = xcalloc(j->npatterns, sizeof *j->patterns);
    for (size_t i = 0; i < j->npatterns; i++)
        j->patterns[i] = xstrdup(json_string_value(json_array_get(spec->junit, i)));
    j->workdir = ran_in ? ran_in : spec->workdir ? xstrdup(spec->workdir) : ws_dir_for(outer->id);
    j->max = spec->max_report_bytes > 0 ? (size_t)spec->max_report_bytes : JUNIT_FILE_MAX_DEFAULT;
    atomic_init(&j->cancelled, 0);
    j->s = junit_summary_new();
    if (!parsers) {
        int n = (int)cfg_long("DEVSYS_REPORT_PARSERS", REPORT_PARSERS_DEFAULT, 1, REPORT_PARSERS_MAX);
        parsers = offload_new(outer->base, n);
        log_info("testing: JUnit reports are parsed on %d worker thread%s", n, n == 1 ? "" : "s");
    }
    /* handler_data is the job while it is out: a cancel reaches it */
    outer->handler_data = j;
    offload_submit(parsers, read_reports, parse_done, j);
}

static void testing_checkpoint(task_run_t *inner, const char *json, size_t len)
{
    task_run_t *outer = RUN_OF(inner)->outer;
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
    tr->phase = PHASE_EXEC;
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
    enum phase *phase = run->handler_data;
    if (!phase)
        return;
    if (*phase == PHASE_EXEC)
        handler_exec.cancel(&RUN_OF_PHASE(phase)->inner);
    else
        atomic_store(&((parse_job_t *)(void *)phase)->cancelled, 1);
}

void testing_handler_shutdown(void)
{
    offload_free(parsers);
    parsers = NULL;
}

const handler_ops_t handler_testing = {
    .kinds = (const char *const[]){"testing", NULL},
    .start = testing_start,
    .cancel = testing_cancel,
};
