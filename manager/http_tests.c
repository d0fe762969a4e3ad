/* http_tests: the test history of testing tasks (test_stats and test_runs,
 * migrations/009, written with each report): the tests of one pipeline name
 * (or task name) with their last outcomes, failure rate and flaky flag, and
 * one test's runs. Both pages are bounded and keyset-paginated. */
#include "http_internal.h"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "xalloc.h"

#define TESTS_SCOPE_MAX 256  /* a pipeline or task name (proto/spec.c) */
#define TESTS_KEY_MAX 410    /* "classname::name", each part at most JUNIT_NAME_MAX (200) */
#define TESTS_LIMIT_DEFAULT 100
#define TESTS_LIMIT_MAX 1000

/* What a request asked: scope ("pipeline:NAME" or "name:NAME"), the page. */
struct tests_query {
    char scope[TESTS_SCOPE_MAX + 16];
    char test[TESTS_KEY_MAX + 1]; /* history: the test */
    char after[TESTS_KEY_MAX + 1]; /* "" = from the start */
    char limit[16];
    int flaky;
};

/* Parses ?pipeline= | ?name=, ?limit=, ?after= (a test key for the list, a
 * run id for the history), ?flaky= (list) and ?test= (history, required).
 * Returns NULL with the 400's text in why. */
static const char *tests_parse(const char *query, int history, struct tests_query *t)
{
    struct evkeyvalq args;
    TAILQ_INIT(&args);
    const char *why = NULL;
    memset(t, 0, sizeof *t);
    snprintf(t->limit, sizeof t->limit, "%d", history ? 50 : TESTS_LIMIT_DEFAULT);
    if (query && evhttp_parse_query_str(query, &args) < 0) {
        evhttp_clear_headers(&args);
        return "query string does not parse";
    }
    const char *pl = evhttp_find_header(&args, "pipeline"), *nm = evhttp_find_header(&args, "name");
    const char *lim = evhttp_find_header(&args, "limit"), *after = evhttp_find_header(&args, "after");
    const char *fl = evhttp_find_header(&args, "flaky"), *test = evhttp_find_header(&args, "test");
    const char *scope = pl ? pl : nm;
    char *end = NULL;
    long n = lim ? strtol(lim, &end, 10) : 0;
    if (pl && nm)
        why = "pipeline, name: give one of them, not both";
    else if (!scope || !*scope)
        why = "pipeline or name: required (the pipeline name, or the task name outside pipelines)";
    else if (strlen(scope) > TESTS_SCOPE_MAX)
        why = pl ? "pipeline: must be 1 to 256 bytes" : "name: must be 1 to 256 bytes";
    else if (lim && (!*lim || *end || n < 1 || n > TESTS_LIMIT_MAX))
        why = "limit: must be an integer from 1 to 1000";
    else if (!history && fl && strcmp(fl, "1") != 0 && strcmp(fl, "0") != 0 && strcmp(fl, "true") != 0 &&
             strcmp(fl, "false") != 0)
        why = "flaky: must be 1 or 0";
    else if (history && (!test || !*test || strlen(test) > TESTS_KEY_MAX))
        why = "test: required, CLASSNAME::NAME as listed by GET /v1/tests (at most 410 bytes)";
    else if (after && (!*after || strlen(after) > TESTS_KEY_MAX))
        why = "after: must be the \"next\" of the previous page";
    else if (history && after && (strspn(after, "0123456789") != strlen(after) || strlen(after) > 18))
        why = "after: must be the \"next\" of the previous page (a run id)";
    if (!why) {
        snprintf(t->scope, sizeof t->scope, "%s:%s", pl ? "pipeline" : "name", scope);
        if (lim)
            snprintf(t->limit, sizeof t->limit, "%ld", n);
        if (after)
            snprintf(t->after, sizeof t->after, "%s", after);
        if (test)
            snprintf(t->test, sizeof t->test, "%s", test);
        t->flaky = fl && (strcmp(fl, "1") == 0 || strcmp(fl, "true") == 0);
    }
    evhttp_clear_headers(&args);
    return why;
}

static void tests_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct req *q = arg;
    if (!res || err[0]) {
        reply_db_unavailable(q, err, NULL);
        return;
    }
    int c = PQfnumber(res, "doc");
    if (PQntuples(res) == 0 || PQgetisnull(res, 0, c)) {
        reply_error(q, 404, "no history of that test (tests are recorded with each testing task's report)");
        return;
    }
    reply_raw(q, 200, PQgetvalue(res, 0, c), (size_t)PQgetlength(res, 0, c));
}

/* The outcome letters of test_stats.last as words, newest first. */
#define LAST_WORDS                                                                                      \
    "(SELECT coalesce(jsonb_agg(CASE l WHEN 'P' THEN 'passed' WHEN 'F' THEN 'failed' WHEN 'E' THEN 'error'" \
    "  WHEN 'S' THEN 'skipped' ELSE 'flaky' END ORDER BY o), '[]')"                                     \
    "  FROM unnest(string_to_array(s.last, NULL)) WITH ORDINALITY AS x(l, o))"
/* failed or error among the last outcomes that ran (not skipped); null when none ran */
#define FAILURE_RATE                                                                                    \
    "round((length(s.last) - length(replace(replace(s.last, 'F', ''), 'E', '')))::numeric"              \
    " / nullif(length(replace(s.last, 'S', '')), 0), 3)"

/* A scoped token ($5: its queues, NULL: any) sees the tests whose task (col)
 * ran in its queues; the task is looked up by id, hot or in history. */
#define TASK_IN_SCOPE(col)                                                                                    \
    " AND ($5::text[] IS NULL OR EXISTS (SELECT 1 FROM tasks t WHERE t.id = " col " AND t.queue = ANY($5::text[]))" \
    "  OR EXISTS (SELECT 1 FROM tasks_history t WHERE t.id = " col " AND t.queue = ANY($5::text[])))"

/* $1 scope, $2 flaky only, $3 after (test key), $4 limit. Through the
 * primary key (or test_stats_flaky), from the cursor on: a page reads what
 * it returns. */
void tests_list(struct req *q, const struct route_args *a)
{
    (void)a;
    struct tests_query t;
    const char *why = tests_parse(q->query, 0, &t);
    if (why) {
        reply_error(q, 400, why);
        return;
    }
    const char *p[5] = {t.scope, t.flaky ? "true" : "false", t.after[0] ? t.after : NULL, t.limit,
                        scope_sql_queues(q)};
    pgc_query(q->api->pg,
              "SELECT jsonb_build_object('scope', $1::text, 'tests', coalesce(jsonb_agg(jsonb_build_object("
              "  'test', s.test, 'last', " LAST_WORDS ", 'runs', s.runs, 'failure_rate', " FAILURE_RATE ","
              "  'flaky', s.flaky_at IS NOT NULL, 'flaky_at', s.flaky_at, 'last_at', s.last_at,"
              "  'last_task', s.last_task, 'last_failure', s.last_failure) ORDER BY s.test), '[]'),"
              "  'next', CASE WHEN count(*) = $4::int THEN max(s.test) END)::text AS doc"
              " FROM (SELECT * FROM test_stats WHERE scope = $1 AND (NOT $2::bool OR flaky_at IS NOT NULL)"
              "  AND ($3::text IS NULL OR test > $3)" TASK_IN_SCOPE("test_stats.last_task") " ORDER BY test LIMIT $4::int) s",
              5, p, tests_done, q);
}

/* $1 scope, $2 test, $3 after (run id), $4 limit: newest first through
 * test_runs_test. No row at all (first page): 404. */
void tests_history(struct req *q, const struct route_args *a)
{
    (void)a;
    struct tests_query t;
    const char *why = tests_parse(q->query, 1, &t);
    if (why) {
        reply_error(q, 400, why);
        return;
    }
    const char *p[5] = {t.scope, t.test, t.after[0] ? t.after : NULL, t.limit, scope_sql_queues(q)};
    pgc_query(q->api->pg,
              "SELECT CASE WHEN count(*) > 0 OR $3::bigint IS NOT NULL THEN jsonb_build_object('scope', $1::text,"
              "  'test', $2::text, 'runs', coalesce(jsonb_agg(jsonb_build_object('id', r.id, 'at', r.at,"
              "  'task_id', r.task_id, 'attempt', r.attempt, 'input', r.input, 'outcome', r.outcome,"
              "  'flaky', r.flaky, 'message', r.message, 'time_s', r.time_s) ORDER BY r.id DESC), '[]'),"
              "  'next', CASE WHEN count(*) = $4::int THEN min(r.id)::text END)::text END AS doc"
              " FROM (SELECT * FROM test_runs WHERE scope = $1 AND test = $2"
              "  AND ($3::bigint IS NULL OR id < $3::bigint)" TASK_IN_SCOPE("test_runs.task_id")
              " ORDER BY id DESC LIMIT $4::int) r",
              5, p, tests_done, q);
}
