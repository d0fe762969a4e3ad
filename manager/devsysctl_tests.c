/* devsysctl_tests: `devsysctl tests [--flaky] [--by-name] PIPELINE [CLASS::NAME]`,
 * the test history (GET /v1/tests, every page): each test's last outcomes
 * (newest first: P passed, F failed, E error, S skipped, K flaky rerun),
 * failure rate and flaky flag; with a test, its runs (GET /v1/tests/history). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devsysctl.h"
#include "xalloc.h"

#define TESTS_PAGES_MAX 100 /* of 1000 tests: what one listing prints at most */

/* The last outcomes as letters, newest first. */
static char *letters(const json_t *last)
{
    size_t i, n = json_array_size(last);
    char *out = xcalloc(n + 2, 1);
    json_t *v;
    json_array_foreach(last, i, v)
    {
        const char *w = json_string_value(v);
        out[i] = !w ? '?' : !strcmp(w, "error") ? 'E' : !strcmp(w, "flaky") ? 'K' : (char)(w[0] - 'a' + 'A');
    }
    if (n == 0)
        out[0] = '-';
    return out;
}

/* The rows of one page, as printable objects, appended to rows. */
static void tests_rows(json_t *rows, const json_t *tests)
{
    size_t i;
    json_t *t;
    json_array_foreach(tests, i, t)
    {
        char *last = letters(json_object_get(t, "last"));
        const json_t *rate = json_object_get(t, "failure_rate");
        char r[32] = "-";
        if (json_is_number(rate))
            snprintf(r, sizeof r, "%.0f%%", json_number_value(rate) * 100);
        json_array_append_new(rows, json_pack("{s:O,s:s,s:s,s:s,s:O}", "test", json_object_get(t, "test"),
                                              "last", last, "rate", r, "flaky",
                                              json_is_true(json_object_get(t, "flaky")) ? "flaky" : "",
                                              "failure", json_object_get(t, "last_failure")));
        free(last);
    }
}

static int tests_history(const struct ctl *ctl, const char *scope_q, const char *test)
{
    char *et = enc(test);
    char *path = xasprintf("/v1/tests/history?%s&test=%s&limit=1000", scope_q, et);
    free(et);
    int code = 0;
    json_t *doc = ctl_call(ctl, "GET", path, NULL, 0, &code);
    free(path);
    if (doc && !ctl->json) {
        static const char *const heads[] = {"AT", "OUTCOME", "FLAKY", "TASK", "ATTEMPT", "INPUT", "MESSAGE"};
        static const char *const keys[] = {"at", "outcome", "flaky", "task_id", "attempt", "input", "message"};
        printf("test: %s\n", test);
        print_table(json_object_get(doc, "runs"), heads, keys, 7);
    }
    json_decref(doc);
    return code;
}

int cmd_tests(const struct ctl *ctl, const char *scope, const char *test, int opts)
{
    char *es = enc(scope);
    char *scope_q = xasprintf("%s=%s", opts & TESTS_BY_NAME ? "name" : "pipeline", es);
    free(es);
    if (test) {
        int code = tests_history(ctl, scope_q, test);
        free(scope_q);
        return code;
    }
    json_t *rows = json_array();
    char *after = NULL;
    int code = 0;
    for (int page = 0; page < TESTS_PAGES_MAX; page++) {
        char *ea = after ? enc(after) : NULL;
        char *path = xasprintf("/v1/tests?%s&limit=1000%s%s%s", scope_q, opts & TESTS_FLAKY ? "&flaky=1" : "",
                               ea ? "&after=" : "", ea ? ea : "");
        free(ea);
        json_t *doc = ctl_call(ctl, "GET", path, NULL, 0, &code);
        free(path);
        free(after);
        after = NULL;
        if (!doc)
            break;
        tests_rows(rows, json_object_get(doc, "tests"));
        const char *next = json_string_value(json_object_get(doc, "next"));
        after = next ? xstrdup(next) : NULL;
        json_decref(doc);
        if (!after || ctl->json)
            break;
    }
    if (!code && !ctl->json) {
        static const char *const heads[] = {"TEST", "LAST (newest first)", "FAILING", "FLAKY", "LAST FAILURE"};
        static const char *const keys[] = {"test", "last", "rate", "flaky", "failure"};
        if (json_array_size(rows))
            print_table(rows, heads, keys, 5);
        else
            printf("no %stests recorded for %s\n", opts & TESTS_FLAKY ? "flaky " : "", scope_q);
    }
    free(after);
    free(scope_q);
    json_decref(rows);
    return code;
}
