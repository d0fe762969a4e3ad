/* test_pipeline: proto/pipeline.c: the document's rules with the exact
 * messages, the dependency order, the expansion of matrix x shards into
 * nodes (names, env, "pipeline"), and next as a linear pipeline. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pipeline.h"

#define PID "0190a0b0-c0d0-7e0f-8a0b-0c0d0e0f1011"

static char err[PIPELINE_ERR_MAX];

static pipeline_t *parse(const char *text)
{
    err[0] = '\0';
    return pipeline_parse(text, strlen(text), PID, err, sizeof err);
}

static void expect_error(const char *text, const char *msg)
{
    pipeline_t *p = parse(text);
    if (p) {
        pipeline_free(p);
        fail_msg("accepted: %s", text);
    }
    assert_string_equal(err, msg);
}

#define NOOP "{\"spec\":{\"kind\":\"noop\"}}"

static void test_diamond_order(void **state)
{
    (void)state;
    pipeline_t *p = parse("{\"name\":\"d\",\"steps\":{"
                          "\"d\":{\"needs\":[\"b\",\"c\"],\"spec\":{\"kind\":\"noop\"}},"
                          "\"b\":{\"needs\":[\"a\"],\"if\":\"always\",\"spec\":{\"kind\":\"noop\"}},"
                          "\"c\":{\"needs\":[\"a\"],\"if\":\"failure\",\"spec\":{\"kind\":\"noop\"}},"
                          "\"a\":" NOOP "}}");
    assert_non_null(p);
    assert_string_equal(p->name, "d");
    assert_int_equal(p->nsteps, 4);
    assert_int_equal(p->nnodes, 4);
    /* every step after all it needs */
    for (size_t i = 0; i < p->nsteps; i++)
        for (size_t m = 0; m < p->steps[i].nneeds; m++)
            assert_true((size_t)p->steps[i].needs[m] < i);
    assert_string_equal(p->steps[0].name, "a");
    assert_string_equal(p->steps[3].name, "d");
    for (size_t i = 0; i < p->nsteps; i++) {
        if (!strcmp(p->steps[i].name, "b"))
            assert_int_equal(p->steps[i].cond, PIPELINE_IF_ALWAYS);
        if (!strcmp(p->steps[i].name, "c"))
            assert_int_equal(p->steps[i].cond, PIPELINE_IF_FAILURE);
        if (!strcmp(p->steps[i].name, "a"))
            assert_int_equal(p->steps[i].cond, PIPELINE_IF_SUCCESS);
    }
    const pipeline_node_t *n = &p->steps[0].nodes[0];
    assert_string_equal(n->name, "a");
    assert_string_equal(n->kind, "noop");
    assert_string_equal(n->queue, "noop");
    assert_int_equal(n->max_attempts, SPEC_DEFAULT_MAX_ATTEMPTS);
    json_t *pl = json_object_get(n->spec, "pipeline");
    assert_string_equal(json_string_value(json_object_get(pl, "id")), PID);
    assert_string_equal(json_string_value(json_object_get(pl, "step")), "a");
    assert_string_equal(json_string_value(json_object_get(pl, "name")), "d");
    pipeline_free(p);
}

static void test_matrix_and_shards(void **state)
{
    (void)state;
    pipeline_t *p = parse("{\"name\":\"m\",\"steps\":{\"t\":{\"shards\":2,"
                          "\"matrix\":{\"os\":[\"linux\",\"bsd\"],\"py\":[3,true,1.5]},"
                          "\"spec\":{\"kind\":\"exec\",\"command\":[\"true\"],\"queue\":\"q1\",\"priority\":5,"
                          "\"env\":{\"A\":\"b\"},\"retry_policy\":{\"max_attempts\":7}}}}}");
    assert_non_null(p);
    const pipeline_step_t *st = &p->steps[0];
    assert_int_equal(st->nnodes, 12);
    /* node i: combo i / shards (last variable fastest), shard i % shards */
    const pipeline_node_t *n = &st->nodes[7];
    assert_string_equal(n->name, "t[7]");
    assert_int_equal(n->index, 7);
    json_t *env = json_object_get(n->spec, "env");
    assert_string_equal(json_string_value(json_object_get(env, "DEVSYS_SHARD")), "1");
    assert_string_equal(json_string_value(json_object_get(env, "DEVSYS_SHARDS")), "2");
    assert_string_equal(json_string_value(json_object_get(env, "DEVSYS_MATRIX_OS")), "bsd");
    assert_string_equal(json_string_value(json_object_get(env, "DEVSYS_MATRIX_PY")), "3");
    assert_string_equal(json_string_value(json_object_get(env, "A")), "b");
    env = json_object_get(st->nodes[3].spec, "env");
    assert_string_equal(json_string_value(json_object_get(env, "DEVSYS_MATRIX_OS")), "linux");
    assert_string_equal(json_string_value(json_object_get(env, "DEVSYS_MATRIX_PY")), "true");
    env = json_object_get(st->nodes[5].spec, "env");
    assert_string_equal(json_string_value(json_object_get(env, "DEVSYS_MATRIX_PY")), "1.5");
    assert_string_equal(n->queue, "q1");
    assert_int_equal(n->priority, 5);
    assert_int_equal(n->max_attempts, 7);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(n->spec, "pipeline"), "index")), 7);
    pipeline_free(p);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("[]", "pipeline: must be a JSON object");
    expect_error("{\"name\":", "pipeline: invalid JSON at line 1 column 8: unexpected token near end of file");
    expect_error("{\"name\":\"x\",\"steps\":{},\"extra\":1}", "extra: unknown field (allowed: name, concurrency, steps)");
    expect_error("{\"steps\":{\"a\":" NOOP "}}", "name: required, a string of 1 to 128 bytes");
    expect_error("{\"name\":\"x\",\"steps\":{}}", "steps: required, an object of 1 to 100 steps");
    expect_error("{\"name\":\"x\",\"steps\":{\"a b\":" NOOP "}}",
                 "steps.a b: a step name is 1 to 64 of [A-Za-z0-9_-]");
    expect_error("{\"name\":\"x\",\"steps\":{\"a\":{\"spec\":{\"kind\":\"noop\"},\"when\":1}}}",
                 "steps.a.when: unknown field (allowed: needs, if, matrix, shards, approval, concurrency, spec)");
    expect_error("{\"name\":\"x\",\"steps\":{\"a\":{}}}", "steps.a.spec: required, must be a task spec object");
    expect_error("{\"name\":\"x\",\"steps\":{\"test\":" NOOP ",\"deploy\":{\"needs\":[\"tset\"],"
                 "\"spec\":{\"kind\":\"noop\"}}}}",
                 "steps.deploy.needs[0]: unknown step \"tset\"");
    expect_error("{\"name\":\"x\",\"steps\":{\"a\":{\"needs\":[\"a\"],\"spec\":{\"kind\":\"noop\"}}}}",
                 "steps.a.needs[0]: a step cannot need itself");
    expect_error("{\"name\":\"x\",\"steps\":{\"a\":" NOOP ",\"b\":{\"needs\":[\"a\",\"a\"],"
                 "\"spec\":{\"kind\":\"noop\"}}}}",
                 "steps.b.needs[1]: \"a\" is listed twice");
    expect_error("{\"name\":\"x\",\"steps\":{\"a\":{\"if\":\"sometimes\",\"spec\":{\"kind\":\"noop\"}}}}",
                 "steps.a.if: must be \"success\", \"failure\" or \"always\"");
    expect_error("{\"name\":\"x\",\"steps\":{\"a\":{\"shards\":0,\"spec\":{\"kind\":\"noop\"}}}}",
                 "steps.a.shards: must be an integer from 1 to 256");
    expect_error("{\"name\":\"x\",\"steps\":{\"a\":{\"shards\":100,\"matrix\":{\"v\":[1,2,3]},"
                 "\"spec\":{\"kind\":\"noop\"}}}}",
                 "steps.a: matrix x shards makes more than 256 tasks");
    expect_error("{\"name\":\"x\",\"steps\":{\"a\":{\"matrix\":{\"v\":[[1]]},\"spec\":{\"kind\":\"noop\"}}}}",
                 "steps.a.matrix.v[0]: must be a string, number or boolean");
    expect_error("{\"name\":\"x\",\"steps\":{\"a\":{\"spec\":{\"kind\":\"exec\"}}}}",
                 "steps.a.spec.command: must be a non-empty array of strings");
    expect_error("{\"name\":\"x\",\"steps\":{\"a\":{\"spec\":{\"kind\":\"noop\",\"next\":[]}}}}",
                 "steps.a.spec.next: not allowed in a pipeline step (the manager sets it; use needs)");
    expect_error("{\"name\":\"x\",\"steps\":{\"a\":{\"spec\":{\"kind\":\"noop\",\"idempotency_key\":\"k\"}}}}",
                 "steps.a.spec.idempotency_key: not allowed in a pipeline step");
}

static void test_cycle_named(void **state)
{
    (void)state;
    expect_error("{\"name\":\"x\",\"steps\":{\"a\":{\"needs\":[\"c\"],\"spec\":{\"kind\":\"noop\"}},"
                 "\"b\":{\"needs\":[\"a\"],\"spec\":{\"kind\":\"noop\"}},"
                 "\"c\":{\"needs\":[\"b\"],\"spec\":{\"kind\":\"noop\"}},\"d\":" NOOP "}}",
                 "steps: cycle a -> c -> b -> a (each needs the next)");
}

/* Builds a document of n steps s0..s(n-1) of `shards` each, s(i) needing s(i-1) when chain. */
static char *steps_doc(int n, int shards, int chain)
{
    size_t cap = (size_t)n * 120 + 64, len = 0;
    char *b = malloc(cap);
    len += (size_t)snprintf(b + len, cap - len, "{\"name\":\"big\",\"steps\":{");
    for (int i = 0; i < n; i++) {
        len += (size_t)snprintf(b + len, cap - len, "%s\"s%d\":{\"shards\":%d,", i ? "," : "", i, shards);
        if (chain && i)
            len += (size_t)snprintf(b + len, cap - len, "\"needs\":[\"s%d\"],", i - 1);
        len += (size_t)snprintf(b + len, cap - len, "\"spec\":{\"kind\":\"noop\"}}");
    }
    snprintf(b + len, cap - len, "}}");
    return b;
}

static void test_bounds(void **state)
{
    (void)state;
    char *d = steps_doc(100, 10, 1);
    pipeline_t *p = parse(d);
    assert_non_null(p);
    assert_int_equal(p->nnodes, 1000);
    pipeline_free(p);
    free(d);
    d = steps_doc(101, 1, 0);
    expect_error(d, "steps: 101 steps exceeds the limit of 100");
    free(d);
    d = steps_doc(5, 201, 0);
    expect_error(d, "steps: 1005 tasks in all exceeds the limit of 1000");
    free(d);
    expect_error("{\"name\":\"x\",\"steps\":{\"a\":{\"shards\":256,\"spec\":{\"kind\":\"noop\"}},"
                 "\"b\":{\"shards\":256,\"spec\":{\"kind\":\"noop\"}},\"x\":" NOOP ","
                 "\"c\":{\"needs\":[\"a\",\"b\",\"x\"],\"spec\":{\"kind\":\"noop\"}}}}",
                 "steps.c.needs: 513 tasks to take inputs from exceeds the limit of 512");
}

static void test_next_sugar(void **state)
{
    (void)state;
    json_t *spec = json_loads("{\"kind\":\"noop\",\"name\":\"chain\",\"next\":[{\"kind\":\"noop\",\"next\":"
                              "[{\"kind\":\"noop\"}]},{\"kind\":\"noop\"}]}",
                              0, NULL);
    pipeline_t *p = pipeline_from_next(spec, PID, err, sizeof err);
    assert_non_null(p);
    assert_string_equal(p->name, "chain");
    assert_int_equal(p->nsteps, 4);
    static const char *const names[] = {"main", "next-1", "next-2", "next-3"};
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(p->steps[i].name, names[i]);
        assert_int_equal(p->steps[i].nneeds, i ? 1 : 0);
        if (i)
            assert_int_equal(p->steps[i].needs[0], (int)i - 1);
        assert_null(json_object_get(p->steps[i].nodes[0].spec, "next"));
    }
    pipeline_free(p);
    json_decref(spec);
    spec = json_loads("{\"kind\":\"noop\"}", 0, NULL);
    assert_null(pipeline_from_next(spec, PID, err, sizeof err));
    assert_string_equal(err, "next: must be an array of specs");
    json_decref(spec);
}

/* approval gates and concurrency groups: defaults, values, exact refusals */
static void test_approval_and_concurrency(void **state)
{
    (void)state;
    pipeline_t *p = parse("{\"name\":\"g\",\"concurrency\":{\"group\":\"prod deploy\",\"cancel_in_progress\":true},"
                          "\"steps\":{\"a\":" NOOP ",\"b\":{\"needs\":[\"a\"],\"approval\":{\"role\":\"admin\","
                          "\"timeout_s\":60},\"spec\":{\"kind\":\"noop\"}},\"c\":{\"approval\":{},"
                          "\"spec\":{\"kind\":\"noop\"}}}}");
    assert_non_null(p);
    assert_string_equal(p->group, "prod deploy");
    assert_int_equal(p->cancel_in_progress, 1);
    for (size_t i = 0; i < p->nsteps; i++) {
        const pipeline_step_t *st = &p->steps[i];
        if (!strcmp(st->name, "a"))
            assert_int_equal(st->approval, PIPELINE_APPROVAL_NONE);
        if (!strcmp(st->name, "b")) {
            assert_int_equal(st->approval, PIPELINE_APPROVAL_ADMIN);
            assert_int_equal(st->approval_timeout_s, 60);
            assert_string_equal(pipeline_approval_name(st->approval), "admin");
        }
        if (!strcmp(st->name, "c")) {
            assert_int_equal(st->approval, PIPELINE_APPROVAL_OPERATOR);
            assert_int_equal(st->approval_timeout_s, PIPELINE_APPROVAL_TIMEOUT_DEFAULT);
        }
    }
    pipeline_free(p);
    p = parse("{\"name\":\"g\",\"concurrency\":{\"group\":\"x\"},\"steps\":{\"a\":" NOOP "}}");
    assert_non_null(p);
    assert_string_equal(p->group, "x");
    assert_int_equal(p->cancel_in_progress, 0);
    pipeline_free(p);
    p = parse("{\"name\":\"g\",\"steps\":{\"a\":" NOOP "}}");
    assert_string_equal(p->group, "");
    pipeline_free(p);

#define STEP_WITH(a) "{\"name\":\"x\",\"steps\":{\"a\":{\"approval\":" a ",\"spec\":{\"kind\":\"noop\"}}}}"
    expect_error(STEP_WITH("true"), "steps.a.approval: must be an object {\"role\", \"timeout_s\"}");
    expect_error(STEP_WITH("{\"role\":\"viewer\"}"),
                 "steps.a.approval.role: must be \"operator\" or \"admin\" (who may approve)");
    expect_error(STEP_WITH("{\"role\":1}"), "steps.a.approval.role: must be \"operator\" or \"admin\" (who may approve)");
    expect_error(STEP_WITH("{\"timeout_s\":0}"), "steps.a.approval.timeout_s: must be an integer from 1 to 2592000 (seconds)");
    expect_error(STEP_WITH("{\"timeout_s\":2592001}"),
                 "steps.a.approval.timeout_s: must be an integer from 1 to 2592000 (seconds)");
    expect_error(STEP_WITH("{\"timeout_s\":1.5}"), "steps.a.approval.timeout_s: must be an integer from 1 to 2592000 (seconds)");
    expect_error(STEP_WITH("{\"roles\":\"admin\"}"), "steps.a.approval.roles: unknown field (allowed: role, timeout_s)");
#define GROUP(c) "{\"name\":\"x\",\"concurrency\":" c ",\"steps\":{\"a\":" NOOP "}}"
    expect_error(GROUP("\"g\""), "concurrency: must be an object {\"group\", \"cancel_in_progress\"}");
    expect_error(GROUP("{}"), "concurrency.group: required, a string of 1 to 128 bytes without control characters");
    expect_error(GROUP("{\"group\":\"\"}"), "concurrency.group: required, a string of 1 to 128 bytes without control characters");
    expect_error(GROUP("{\"group\":\"a\\nb\"}"),
                 "concurrency.group: required, a string of 1 to 128 bytes without control characters");
    expect_error(GROUP("{\"group\":\"a\",\"cancel_in_progress\":\"yes\"}"),
                 "concurrency.cancel_in_progress: must be true or false");
    expect_error(GROUP("{\"group\":\"a\",\"queue\":1}"),
                 "concurrency.queue: unknown field (allowed: group, cancel_in_progress)");
    char big[400];
    snprintf(big, sizeof big, GROUP("{\"group\":\"%0129d\"}"), 0);
    expect_error(big, "concurrency.group: required, a string of 1 to 128 bytes without control characters");
#define SGROUP(c) "{\"name\":\"x\",\"steps\":{\"a\":" NOOP ",\"d\":{\"needs\":[\"a\"],\"concurrency\":" c \
                  ",\"spec\":{\"kind\":\"noop\"}}}}"
    p = parse(SGROUP("{\"group\":\"env-prod\",\"cancel_in_progress\":true}"));
    assert_non_null(p);
    assert_string_equal(p->group, "");
    assert_string_equal(p->steps[1].name, "d");
    assert_string_equal(p->steps[1].group, "env-prod");
    assert_int_equal(p->steps[1].cancel_in_progress, 1);
    assert_string_equal(p->steps[0].group, "");
    pipeline_free(p);
    expect_error(SGROUP("[]"), "steps.d.concurrency: must be an object {\"group\", \"cancel_in_progress\"}");
    expect_error(SGROUP("{\"cancel_in_progress\":true}"),
                 "steps.d.concurrency.group: required, a string of 1 to 128 bytes without control characters");
    expect_error(SGROUP("{\"group\":\"a\",\"cancel_in_progress\":0}"),
                 "steps.d.concurrency.cancel_in_progress: must be true or false");
    expect_error(SGROUP("{\"group\":\"a\",\"max\":1}"),
                 "steps.d.concurrency.max: unknown field (allowed: group, cancel_in_progress)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_diamond_order), cmocka_unit_test(test_matrix_and_shards),
        cmocka_unit_test(test_errors),        cmocka_unit_test(test_cycle_named),
        cmocka_unit_test(test_bounds),        cmocka_unit_test(test_next_sugar),
        cmocka_unit_test(test_approval_and_concurrency),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
