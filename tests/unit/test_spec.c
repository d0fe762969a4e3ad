/* test_spec: every validation rule of proto/spec.c, with the exact messages
 * operators will read ("retry_policy.max_attempts: must be ..."). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kind.h"
#include "spec.h"

static char err[SPEC_ERR_MAX];

static spec_t *parse(const char *text)
{
    err[0] = '\0';
    return spec_parse(text, strlen(text), err, sizeof err);
}

/* Parses text, expects a rejection with exactly msg. */
static void expect_error(const char *text, const char *msg)
{
    spec_t *s = parse(text);
    if (s) {
        spec_free(s);
        fail_msg("accepted: %s", text);
    }
    assert_string_equal(err, msg);
}

static void expect_error_prefix(const char *text, const char *prefix)
{
    spec_t *s = parse(text);
    if (s) {
        spec_free(s);
        fail_msg("accepted: %s", text);
    }
    if (strncmp(err, prefix, strlen(prefix)) != 0)
        fail_msg("error \"%s\" does not start with \"%s\"", err, prefix);
}

static void expect_ok(const char *text)
{
    spec_t *s = parse(text);
    if (!s)
        fail_msg("rejected: %s: %s", text, err);
    spec_free(s);
}

/* Builds {"kind":"noop","<field>":<value>} in a static buffer. */
static const char *noop_with(const char *field, const char *value)
{
    static char buf[16384];
    snprintf(buf, sizeof buf, "{\"kind\":\"noop\",\"%s\":%s}", field, value);
    return buf;
}

static void test_minimal_exec(void **state)
{
    (void)state;
    spec_t *s = parse("{\"kind\":\"exec\",\"command\":[\"echo\",\"hi\"]}");
    assert_non_null(s);
    assert_string_equal(s->kind, "exec");
    assert_string_equal(s->queue, "exec");
    assert_int_equal(s->argc, 2);
    assert_string_equal(s->argv[0], "echo");
    assert_string_equal(s->argv[1], "hi");
    assert_null(s->argv[2]);
    assert_null(s->name);
    assert_null(s->workdir);
    assert_null(s->env);
    assert_null(s->idempotency_key);
    assert_true(s->timeout_s == 0);
    assert_int_equal(s->priority, 0);
    assert_int_equal(s->has_retry_policy, 0);
    assert_int_equal(s->retry.max_attempts, 3);
    assert_true(s->retry.initial_s == 1 && s->retry.factor == 2 && s->retry.max_s == 300);
    assert_int_equal(s->retry.jitter, 1);
    spec_free(s);
}

static void test_full_spec(void **state)
{
    (void)state;
    const char *text =
        "{\"kind\":\"coding\",\"queue\":\"gpu.high-1\",\"name\":\"build it\","
        "\"command\":[\"make\",\"\",\"-j4\"],\"workdir\":\"/src\",\"env\":{\"CC\":\"gcc\",\"_X1\":\"\"},"
        "\"timeout_s\":0.5,\"priority\":-100,\"tags\":[\"a\",\"b\"],"
        "\"resource_requirements\":{\"cpu\":2},"
        "\"related_tasks\":[\"0190a5e4-7a3b-7c2d-8e4f-0123456789AB\"],"
        "\"expected_artifacts\":[\"out/app\"],"
        "\"retry_policy\":{\"max_attempts\":5,\"initial_s\":0,\"factor\":1.5,\"max_s\":60,\"jitter\":false},"
        "\"idempotency_key\":\"k1\","
        "\"next\":[{\"kind\":\"noop\"},{\"kind\":\"exec\",\"command\":[\"true\"]}]}";
    spec_t *s = parse(text);
    if (!s)
        fail_msg("%s", err);
    assert_string_equal(s->kind, "coding");
    assert_string_equal(s->queue, "gpu.high-1");
    assert_string_equal(s->name, "build it");
    assert_int_equal(s->argc, 3);
    assert_string_equal(s->argv[1], "");
    assert_string_equal(s->workdir, "/src");
    assert_string_equal(json_string_value(json_object_get(s->env, "CC")), "gcc");
    assert_true(s->timeout_s == 0.5);
    assert_int_equal(s->priority, -100);
    assert_int_equal(s->has_retry_policy, 1);
    assert_int_equal(s->retry.max_attempts, 5);
    assert_true(s->retry.initial_s == 0 && s->retry.factor == 1.5 && s->retry.max_s == 60);
    assert_int_equal(s->retry.jitter, 0);
    assert_string_equal(s->idempotency_key, "k1");
    spec_free(s);
}

static void test_not_object_and_syntax(void **state)
{
    (void)state;
    expect_error("[]", "spec: must be a JSON object");
    expect_error("5", "spec: must be a JSON object");
    expect_error("\"kind\"", "spec: must be a JSON object");
    expect_error_prefix("{\"kind\":", "spec: invalid JSON at line 1 column ");
    expect_error_prefix("{\"kind\":\"exec\",\n \"kind\":\"noop\"}", "spec: invalid JSON at line 2 column ");
    expect_error_prefix("", "spec: invalid JSON at line ");
    expect_error_prefix("{\"kind\":\"noop\"} x", "spec: invalid JSON at line 1 column ");
    /* NUL is not allowed inside strings (it would cut argv entries). */
    expect_error_prefix("{\"kind\":\"exec\",\"command\":[\"a\\u0000b\"]}", "spec: invalid JSON");

    /* spec_from_json on non-objects */
    json_t *a = json_array();
    assert_null(spec_from_json(a, err, sizeof err));
    assert_string_equal(err, "spec: must be a JSON object");
    json_decref(a);
    assert_null(spec_from_json(NULL, err, sizeof err));
}

static void test_size_and_depth(void **state)
{
    (void)state;
    size_t n = SPEC_MAX_BYTES + 1;
    char *big = malloc(n);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    assert_null(spec_parse(big, n, err, sizeof err));
    assert_string_equal(err, "spec: 1048577 bytes exceeds the limit of 1048576");
    /* exactly the limit is parsed (and then validated) */
    big[n - 2] = '}';
    memcpy(big + 1, "\"kind\":\"noop\"", 13); /* NOLINT(bugprone-not-null-terminated-result): inside big */
    spec_t *s = spec_parse(big, n - 1, err, sizeof err);
    assert_non_null(s);
    spec_free(s);

    /* 32 levels of containers pass, 33 do not */
    char text[512];
    for (int depth = 32; depth <= 33; depth++) {
        int o = snprintf(text, sizeof text, "{\"kind\":\"noop\",\"resource_requirements\":");
        for (int i = 1; i < depth; i++)
            o += snprintf(text + o, sizeof text - (size_t)o, "{\"a\":");
        o += snprintf(text + o, sizeof text - (size_t)o, "1");
        for (int i = 0; i < depth; i++)
            text[o++] = '}';
        text[o] = '\0';
        if (depth == 32)
            expect_ok(text);
        else
            expect_error(text, "spec: nesting deeper than 32 levels");
    }
    /* brackets inside strings do not count */
    expect_ok("{\"kind\":\"noop\",\"name\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{\"}");

    /* a huge nesting is refused before jansson recurses into it */
    size_t deep = 200000;
    char *d = malloc(deep);
    memset(d, '[', deep);
    assert_null(spec_parse(d, deep, err, sizeof err));
    assert_string_equal(err, "spec: nesting deeper than 32 levels");
    free(d);
    free(big);

    /* spec_from_json checks depth on values built in memory too */
    json_t *root = json_pack("{s:s}", "kind", "noop");
    json_t *cur = json_object();
    json_object_set_new(root, "resource_requirements", cur);
    for (int i = 0; i < 40; i++) {
        json_t *next = json_object();
        json_object_set_new(cur, "a", next);
        cur = next;
    }
    assert_null(spec_from_json(root, err, sizeof err));
    assert_string_equal(err, "spec: nesting deeper than 32 levels");
    json_decref(root);
}

/* A JSON text within SPEC_MAX_BYTES whose msgpack form would not be
 * decodable (reals take 9 bytes) is refused at the edge, not by the agent. */
static void test_msgpack_limits(void **state)
{
    (void)state;
    size_t n = 150000, cap = n * 4 + 128;
    char *t = malloc(cap);
    int o = snprintf(t, cap, "{\"kind\":\"noop\",\"resource_requirements\":{\"a\":[");
    for (size_t i = 0; i < n; i++)
        o += snprintf(t + (size_t)o, cap - (size_t)o, "%s1.5", i ? "," : "");
    snprintf(t + (size_t)o, cap - (size_t)o, "]}}");
    expect_error(t, "spec: 1350041 bytes as msgpack exceeds the limit of 1048576");

    n = 110000;
    o = snprintf(t, cap, "{\"kind\":\"noop\",\"resource_requirements\":{\"a\":[");
    for (size_t i = 0; i < n; i++)
        o += snprintf(t + (size_t)o, cap - (size_t)o, "%s0", i ? "," : "");
    snprintf(t + (size_t)o, cap - (size_t)o, "]}}");
    expect_error(t, "spec: 110007 values exceeds the limit of 100000");
    free(t);
}

/* The fields the manager sets on a pipeline step's tasks. */
static void test_pipeline_fields(void **state)
{
    (void)state;
    const char *uuid = "\"0190a0b0-1111-7222-8333-444455556666\"";
    char buf[512];
    snprintf(buf, sizeof buf, "{\"id\":%s,\"name\":\"site\",\"step\":\"test\",\"index\":3}", uuid);
    expect_ok(noop_with("pipeline", buf));
    expect_error(noop_with("pipeline", "{\"id\":\"x\",\"step\":\"a\"}"), "pipeline.id: must be a UUID string");
    snprintf(buf, sizeof buf, "{\"id\":%s,\"step\":\"a b\"}", uuid);
    expect_error(noop_with("pipeline", buf), "pipeline.step: must be 1 to 64 characters of [A-Za-z0-9_-]");
    snprintf(buf, sizeof buf, "{\"id\":%s}", uuid);
    expect_error(noop_with("pipeline", buf), "pipeline: must have \"id\" and \"step\"");
    snprintf(buf, sizeof buf, "{\"id\":%s,\"step\":\"a\",\"index\":256}", uuid);
    expect_error(noop_with("pipeline", buf), "pipeline.index: must be an integer from 0 to 255");
    snprintf(buf, sizeof buf, "{\"id\":%s,\"step\":\"a\",\"x\":1}", uuid);
    expect_error(noop_with("pipeline", buf), "pipeline.x: unknown field");

    const char *sha = "\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"";
    snprintf(buf, sizeof buf,
             "{\"build\":{\"result\":{\"v\":[1,2]},\"artifacts\":[{\"path\":\"dist/site.tgz\",\"sha256\":%s,\"size\":"
             "12}]},\"test[19]\":{}}",
             sha);
    expect_ok(noop_with("inputs", buf));
    expect_error(noop_with("inputs", "{\"a\":1}"), "inputs.a: must be an object");
    expect_error(noop_with("inputs", "{\"a[x]\":{}}"),
                 "inputs.a[x]: a step name is 1 to 64 characters of [A-Za-z0-9_-], then [index]");
    expect_error(noop_with("inputs", "{\"a\":{\"other\":1}}"), "inputs.a: unknown field \"other\"");
    snprintf(buf, sizeof buf, "{\"a\":{\"artifacts\":[{\"path\":\"/etc/passwd\",\"sha256\":%s,\"size\":1}]}}", sha);
    expect_error_prefix(noop_with("inputs", buf), "inputs.a: artifacts[0]: must be {\"path\": relative path");
    expect_error_prefix(noop_with("inputs", "{\"a\":{\"artifacts\":[{\"path\":\"x\",\"sha256\":\"AB\",\"size\":1}]}}"),
                        "inputs.a: artifacts[0]: must be");
}

static void test_kind(void **state)
{
    (void)state;
    expect_error("{}", "kind: required");
    expect_error("{\"command\":[\"x\"]}", "kind: required");
    expect_error("{\"kind\":5}", "kind: must be a string");
    expect_error("{\"kind\":\"foo\"}",
                 "kind: unknown kind \"foo\" (expected one of exec, coding, noop, sleep, testing, deploy, notify, monitor)");
    /* untrusted text in messages is shortened and made printable */
    expect_error("{\"kind\":\"a\\nb\\\"c\"}",
                 "kind: unknown kind \"a?b?c\" (expected one of exec, coding, noop, sleep, testing, deploy, notify, monitor)");
    const char *kinds[] = {"exec", "coding", "noop", "sleep", "testing", "deploy", "notify", "monitor"};
    for (size_t i = 0; i < 8; i++)
        assert_non_null(kind_find(kinds[i]));
    assert_null(kind_find("EXEC"));
    assert_null(kind_find(""));
    assert_null(kind_find(NULL));
    /* kinds without a handler yet are not in the registry: refused up front */
    const char *gone[] = {"webhook", "probe"};
    for (size_t i = 0; i < 2; i++) {
        char text[64], want[128];
        snprintf(text, sizeof text, "{\"kind\":\"%s\"}", gone[i]);
        snprintf(want, sizeof want, "kind: unknown kind \"%s\" (expected one of exec, coding, noop, sleep, testing, deploy, notify, monitor)",
                 gone[i]);
        expect_error(text, want);
        assert_null(kind_find(gone[i]));
    }
}

static void test_unknown_field(void **state)
{
    (void)state;
    expect_error("{\"kind\":\"noop\",\"frobnicate\":1}", "frobnicate: unknown field");
    expect_error("{\"kind\":\"noop\",\"Kind\":1}", "Kind: unknown field");
    expect_error("{\"kind\":\"noop\",\"a\\tb\":1}", "a?b: unknown field");
}

static void test_queue(void **state)
{
    (void)state;
    assert_true(spec_queue_name_ok("a"));
    assert_true(spec_queue_name_ok("Gpu_high.2-x"));
    char q[66];
    memset(q, 'q', 65);
    q[64] = '\0';
    assert_true(spec_queue_name_ok(q));
    q[64] = 'q';
    q[65] = '\0';
    assert_false(spec_queue_name_ok(q));
    assert_false(spec_queue_name_ok(""));
    assert_false(spec_queue_name_ok("a{b}"));
    assert_false(spec_queue_name_ok("a b"));
    assert_false(spec_queue_name_ok("a:b"));
    assert_false(spec_queue_name_ok(NULL));
    const char *msg = "queue: must be 1 to 64 characters of [A-Za-z0-9_.-]";
    expect_error(noop_with("queue", "\"{x}\""), msg);
    expect_error(noop_with("queue", "\"\""), msg);
    expect_error(noop_with("queue", "7"), msg);
    spec_t *s = parse(noop_with("queue", "\"fast\""));
    assert_non_null(s);
    assert_string_equal(s->queue, "fast");
    spec_free(s);
}

static void test_strings(void **state)
{
    (void)state;
    char v[300];
    v[0] = '"';
    memset(v + 1, 'n', 256);
    strcpy(v + 257, "\"");
    expect_ok(noop_with("name", v));
    expect_ok(noop_with("idempotency_key", v));
    strcpy(v + 257, "n\"");
    expect_error(noop_with("name", v), "name: must be a string of 1 to 256 bytes");
    expect_error(noop_with("idempotency_key", v), "idempotency_key: must be a string of 1 to 256 bytes");
    expect_error(noop_with("name", "\"\""), "name: must be a string of 1 to 256 bytes");
    expect_error(noop_with("name", "null"), "name: must be a string of 1 to 256 bytes");
    expect_error(noop_with("idempotency_key", "\"\""), "idempotency_key: must be a string of 1 to 256 bytes");
    expect_error(noop_with("workdir", "\"\""), "workdir: must be a string of 1 to 4096 bytes");
    expect_error(noop_with("workdir", "[]"), "workdir: must be a string of 1 to 4096 bytes");
}

static void test_command(void **state)
{
    (void)state;
    const char *msg = "command: must be a non-empty array of strings";
    expect_error("{\"kind\":\"exec\"}", msg);
    expect_error("{\"kind\":\"coding\"}", msg);
    expect_error("{\"kind\":\"exec\",\"command\":[]}", msg);
    expect_error("{\"kind\":\"exec\",\"command\":\"ls -l\"}", msg);
    expect_error("{\"kind\":\"exec\",\"command\":[\"ls\",1]}", "command[1]: must be a string");
    expect_error("{\"kind\":\"exec\",\"command\":[\"\"]}",
                 "command[0]: must be a non-empty string without NUL bytes");
    expect_ok("{\"kind\":\"noop\",\"command\":[\"pytest\"]}");

    /* 4096 entries pass, 4097 do not */
    size_t cap = 4097 * 4 + 64;
    char *t = malloc(cap);
    for (int n = 4096; n <= 4097; n++) {
        int o = snprintf(t, cap, "{\"kind\":\"exec\",\"command\":[");
        for (int i = 0; i < n; i++)
            o += snprintf(t + o, cap - (size_t)o, "%s\"x\"", i ? "," : "");
        snprintf(t + o, cap - (size_t)o, "]}");
        if (n == 4096) {
            spec_t *s = parse(t);
            assert_non_null(s);
            assert_int_equal(s->argc, 4096);
            assert_null(s->argv[4096]);
            spec_free(s);
        } else {
            expect_error(t, "command: 4097 entries exceeds the limit of 4096");
        }
    }
    free(t);

    /* one argument of 128 KiB passes, one byte more does not */
    size_t arg = 128 * 1024 + 1;
    cap = arg + 64;
    t = malloc(cap);
    int o = snprintf(t, cap, "{\"kind\":\"exec\",\"command\":[\"x\",\"");
    memset(t + o, 'a', arg);
    strcpy(t + o + arg, "\"]}");
    expect_error(t, "command[1]: 131073 bytes exceeds the limit of 131072");
    strcpy(t + o + arg - 1, "\"]}");
    expect_ok(t);
    free(t);

    /* a NUL inside a command built in memory (e.g. from msgpack) */
    json_t *j = json_pack("{s:s,s:[s]}", "kind", "exec", "command", "ok");
    json_array_append_new(json_object_get(j, "command"), json_stringn("a\0b", 3));
    assert_null(spec_from_json(j, err, sizeof err));
    assert_string_equal(err, "command[1]: must not contain NUL bytes");
    json_decref(j);
}

static void test_env(void **state)
{
    (void)state;
    expect_ok(noop_with("env", "{\"A\":\"1\",\"_b9\":\"\",\"PATH\":\"/bin\"}"));
    expect_error(noop_with("env", "[]"), "env: must be an object of strings");
    expect_error(noop_with("env", "{\"1X\":\"a\"}"), "env: name \"1X\" must match [A-Za-z_][A-Za-z0-9_]*");
    expect_error(noop_with("env", "{\"A-B\":\"a\"}"), "env: name \"A-B\" must match [A-Za-z_][A-Za-z0-9_]*");
    expect_error(noop_with("env", "{\"\":\"a\"}"), "env: name \"\" must match [A-Za-z_][A-Za-z0-9_]*");
    expect_error(noop_with("env", "{\"A\":1}"),
                 "env: value of A must be a string without NUL bytes, or {\"secret\": \"<name>\"}");
    /* a secret by reference: the agent fetches it */
    expect_ok(noop_with("env", "{\"DEPLOY_KEY\":{\"secret\":\"deploy-key\"}}"));
    expect_error(noop_with("env", "{\"K\":{\"secret\":\"a b\"}}"),
                 "env: value of K must be a string or {\"secret\": \"<name>\"} with a name of 1 to 64 characters"
                 " of [A-Za-z0-9_.-]");
    expect_error(noop_with("env", "{\"K\":{\"secret\":\"k\",\"x\":1}}"),
                 "env: value of K must be a string or {\"secret\": \"<name>\"} with a name of 1 to 64 characters"
                 " of [A-Za-z0-9_.-]");
    expect_error(noop_with("env", "{\"LD_PRELOAD\":{\"secret\":\"k\"}}"), "env.LD_PRELOAD: loader variables may not be set");

    /* what a task may not set: loader, shell startup, the agent's own */
    expect_error(noop_with("env", "{\"A\":\"1\",\"LD_PRELOAD\":\"/tmp/x.so\"}"),
                 "env.LD_PRELOAD: loader variables may not be set");
    expect_error(noop_with("env", "{\"LD_LIBRARY_PATH\":\"/tmp\"}"),
                 "env.LD_LIBRARY_PATH: loader variables may not be set");
    expect_error(noop_with("env", "{\"GCONV_PATH\":\".\"}"), "env.GCONV_PATH: loader variables may not be set");
    expect_error(noop_with("env", "{\"GLIBC_TUNABLES\":\"x\"}"),
                 "env.GLIBC_TUNABLES: loader variables may not be set");
    expect_error(noop_with("env", "{\"MALLOC_CHECK_\":\"3\"}"), "env.MALLOC_CHECK_: loader variables may not be set");
    expect_error(noop_with("env", "{\"BASH_ENV\":\"/tmp/x\"}"), "env.BASH_ENV: shell startup variables may not be set");
    expect_error(noop_with("env", "{\"ENV\":\"/tmp/x\"}"), "env.ENV: shell startup variables may not be set");
    expect_error(noop_with("env", "{\"DEVSYS_TASK_ID\":\"x\"}"), "env.DEVSYS_TASK_ID: set by the agent");
    expect_error(noop_with("env", "{\"DEVSYS_CHECKPOINT_FD\":\"1\"}"), "env.DEVSYS_CHECKPOINT_FD: set by the agent");
    /* names that merely look alike are fine: ld.so reads exact, case-sensitive names */
    expect_ok(noop_with("env", "{\"ld_preload\":\"x\",\"LDFLAGS\":\"-O2\",\"ENVIRONMENT\":\"prod\",\"TZ\":\"UTC\"}"));

    size_t cap = 1025 * 24 + 64;
    char *t = malloc(cap);
    for (int n = 1024; n <= 1025; n++) {
        int o = snprintf(t, cap, "{\"kind\":\"noop\",\"env\":{");
        for (int i = 0; i < n; i++)
            o += snprintf(t + o, cap - (size_t)o, "%s\"V%d\":\"x\"", i ? "," : "", i);
        snprintf(t + o, cap - (size_t)o, "}}");
        if (n == 1024)
            expect_ok(t);
        else
            expect_error(t, "env: 1025 entries exceeds the limit of 1024");
    }
    free(t);
}

static void test_numbers(void **state)
{
    (void)state;
    const char *tmsg = "timeout_s: must be a number greater than 0 and at most 604800";
    expect_ok(noop_with("timeout_s", "0.5"));
    expect_ok(noop_with("timeout_s", "604800"));
    expect_ok(noop_with("timeout_s", "1e2"));
    expect_error(noop_with("timeout_s", "0"), tmsg);
    expect_error(noop_with("timeout_s", "-1"), tmsg);
    expect_error(noop_with("timeout_s", "604800.5"), tmsg);
    expect_error(noop_with("timeout_s", "\"10\""), tmsg);

    const char *pmsg = "priority: must be an integer from -100 to 100";
    expect_ok(noop_with("priority", "100"));
    expect_ok(noop_with("priority", "-100"));
    expect_error(noop_with("priority", "101"), pmsg);
    expect_error(noop_with("priority", "-101"), pmsg);
    expect_error(noop_with("priority", "3.0"), pmsg); /* a real is not an integer */
    expect_error(noop_with("priority", "true"), pmsg);
    expect_error(noop_with("priority", "99999999999999999999"), "spec: invalid JSON at line 1 column 46: too big integer near '99999999999999999999'");
}

static void test_lists(void **state)
{
    (void)state;
    expect_error(noop_with("tags", "\"a\""), "tags: must be an array of strings");
    expect_error(noop_with("tags", "[\"\"]"), "tags[0]: must be a string of 1 to 128 bytes");
    expect_error(noop_with("tags", "[\"a\",2]"), "tags[1]: must be a string of 1 to 128 bytes");
    char v[200];
    v[0] = '[';
    v[1] = '"';
    memset(v + 2, 't', 129);
    strcpy(v + 131, "\"]");
    expect_error(noop_with("tags", v), "tags[0]: must be a string of 1 to 128 bytes");
    strcpy(v + 130, "\"]");
    expect_ok(noop_with("tags", v));

    char list[8192];
    for (int n = 64; n <= 65; n++) {
        int o = snprintf(list, sizeof list, "[");
        for (int i = 0; i < n; i++)
            o += snprintf(list + o, sizeof list - (size_t)o, "%s\"t\"", i ? "," : "");
        snprintf(list + o, sizeof list - (size_t)o, "]");
        if (n == 64)
            expect_ok(noop_with("tags", list));
        else
            expect_error(noop_with("tags", list), "tags: 65 entries exceeds the limit of 64");
    }

    expect_ok(noop_with("related_tasks", "[]"));
    expect_ok(noop_with("related_tasks", "[\"01234567-89ab-cdef-0123-456789abcdef\"]"));
    expect_error(noop_with("related_tasks", "[\"01234567-89ab-cdef-0123-456789abcde\"]"),
                 "related_tasks[0]: must be a UUID string");
    expect_error(noop_with("related_tasks", "[\"0123456789ab-cdef-0123-456789abcdef-\"]"),
                 "related_tasks[0]: must be a UUID string");
    expect_error(noop_with("related_tasks", "[\"01234567-89ab-cdef-0123-456789abcdeg\"]"),
                 "related_tasks[0]: must be a UUID string");
    expect_error(noop_with("related_tasks", "{}"), "related_tasks: must be an array of strings");

    expect_ok(noop_with("expected_artifacts", "[\"a/b\",\"c\"]"));
    expect_error(noop_with("expected_artifacts", "[\"\"]"),
                 "expected_artifacts[0]: must be a string of 1 to 4096 bytes");

    /* 1000 entries pass, 1001 do not (for both lists) */
    const char *item[2] = {"\"01234567-89ab-cdef-0123-456789abcdef\"", "\"f\""};
    const char *field[2] = {"related_tasks", "expected_artifacts"};
    size_t cap = 1001 * 40 + 128;
    char *t = malloc(cap);
    for (int f = 0; f < 2; f++) {
        for (int n = 1000; n <= 1001; n++) {
            int o = snprintf(t, cap, "{\"kind\":\"noop\",\"%s\":[", field[f]);
            for (int i = 0; i < n; i++)
                o += snprintf(t + o, cap - (size_t)o, "%s%s", i ? "," : "", item[f]);
            snprintf(t + o, cap - (size_t)o, "]}");
            if (n == 1000) {
                expect_ok(t);
            } else {
                char want[128];
                snprintf(want, sizeof want, "%s: 1001 entries exceeds the limit of 1000", field[f]);
                expect_error(t, want);
            }
        }
    }
    free(t);
}

static void test_objects(void **state)
{
    (void)state;
    expect_ok(noop_with("resource_requirements", "{\"anything\":[1,2,{}]}"));
    expect_error(noop_with("resource_requirements", "[]"), "resource_requirements: must be an object");
    expect_error(noop_with("resource_requirements", "null"), "resource_requirements: must be an object");
    /* the sections of kinds that left the registry left with them */
    const char *gone[] = {"webhook", "probe"};
    for (size_t i = 0; i < 2; i++) {
        char want[64];
        snprintf(want, sizeof want, "%s: unknown field", gone[i]);
        expect_error(noop_with(gone[i], "{\"anything\":[1,2,{}]}"), want);
    }
}

static void test_unique_and_rate_key(void **state)
{
    (void)state;
    spec_t *s = parse("{\"kind\":\"noop\",\"unique\":{\"key\":\"k1\",\"for_s\":2.5},\"rate_key\":\"tenant-a\"}");
    assert_non_null(s);
    assert_string_equal(s->unique_key, "k1");
    assert_true(s->unique_for_s == 2.5);
    assert_string_equal(s->rate_key, "tenant-a");
    spec_free(s);
    s = parse("{\"kind\":\"noop\",\"unique\":{\"while\":\"unfinished\",\"key\":\"k2\"}}");
    assert_non_null(s);
    assert_string_equal(s->unique_key, "k2");
    assert_true(s->unique_for_s == 0);
    spec_free(s);
    expect_error(noop_with("unique", "\"k\""), "unique: must be an object {\"key\": ..., \"for_s\": N} or"
                                                 " {\"key\": ..., \"while\": \"unfinished\"}");
    expect_error(noop_with("unique", "{\"for_s\":1}"), "unique.key: required");
    expect_error(noop_with("unique", "{\"key\":\"\",\"for_s\":1}"), "unique.key: must be a string of 1 to 256 bytes");
    expect_error(noop_with("unique", "{\"key\":\"k\",\"for_s\":-1}"),
                 "unique.for_s: must be a number greater than 0 and at most 2592000");
    expect_error(noop_with("unique", "{\"key\":\"k\",\"while\":\"running\"}"), "unique.while: must be \"unfinished\"");
    expect_error(noop_with("unique", "{\"key\":\"k\",\"for_s\":1,\"while\":\"unfinished\"}"),
                 "unique: needs exactly one of for_s (a period in seconds) and while (\"unfinished\")");
    expect_error(noop_with("unique", "{\"key\":\"k\",\"for_s\":1,\"tenant\":1}"), "unique.tenant: unknown field");
    expect_error(noop_with("rate_key", "7"), "rate_key: must be a string of 1 to 128 bytes");
}

static void test_retry_policy(void **state)
{
    (void)state;
    expect_ok(noop_with("retry_policy", "{}"));
    expect_ok(noop_with("retry_policy", "{\"max_attempts\":1000,\"initial_s\":86400,\"factor\":100,\"max_s\":604800,\"jitter\":true}"));
    expect_ok(noop_with("retry_policy", "{\"max_attempts\":1,\"initial_s\":0,\"factor\":1,\"max_s\":0}"));
    expect_ok(noop_with("retry_policy", "{\"permanent_exit_codes\":[0,64,255]}"));
    expect_error(noop_with("retry_policy", "{\"permanent_exit_codes\":[256]}"),
                 "retry_policy.permanent_exit_codes: must hold integers from 0 to 255");
    expect_error(noop_with("retry_policy", "{\"permanent_exit_codes\":64}"),
                 "retry_policy.permanent_exit_codes: must be an array of at most 256 exit codes");
    const char *ma = "retry_policy.max_attempts: must be an integer from 1 to 1000";
    expect_error(noop_with("retry_policy", "{\"max_attempts\":0}"), ma);
    expect_error(noop_with("retry_policy", "{\"max_attempts\":1001}"), ma);
    expect_error(noop_with("retry_policy", "{\"max_attempts\":3.0}"), ma);
    expect_error(noop_with("retry_policy", "{\"max_attempts\":\"3\"}"), ma);
    expect_error(noop_with("retry_policy", "{\"initial_s\":-0.1}"),
                 "retry_policy.initial_s: must be a number from 0 to 86400");
    expect_error(noop_with("retry_policy", "{\"initial_s\":86401}"),
                 "retry_policy.initial_s: must be a number from 0 to 86400");
    expect_error(noop_with("retry_policy", "{\"factor\":0.5}"),
                 "retry_policy.factor: must be a number from 1 to 100");
    expect_error(noop_with("retry_policy", "{\"factor\":101}"),
                 "retry_policy.factor: must be a number from 1 to 100");
    expect_error(noop_with("retry_policy", "{\"max_s\":604801}"),
                 "retry_policy.max_s: must be a number from 0 to 604800");
    expect_error(noop_with("retry_policy", "{\"jitter\":1}"), "retry_policy.jitter: must be true or false");
    expect_error(noop_with("retry_policy", "{\"foo\":1}"), "retry_policy.foo: unknown field");
    expect_error(noop_with("retry_policy", "[]"), "retry_policy: must be an object");

    spec_t *s = parse(noop_with("retry_policy", "{\"factor\":3}"));
    assert_non_null(s);
    assert_int_equal(s->has_retry_policy, 1);
    assert_true(s->retry.factor == 3);
    assert_int_equal(s->retry.max_attempts, 3); /* others keep their defaults */
    assert_true(s->retry.max_s == 300);
    spec_free(s);
}

static void test_next(void **state)
{
    (void)state;
    expect_ok("{\"kind\":\"noop\",\"next\":[]}");
    expect_ok("{\"kind\":\"coding\",\"command\":[\"x\"],\"next\":[{\"kind\":\"noop\",\"next\":[{\"kind\":\"sleep\"}]}]}");
    expect_error("{\"kind\":\"coding\",\"command\":[\"x\"],\"next\":[{\"kind\":\"noop\",\"next\":[{\"kind\":\"probe\"}]}]}",
                 "next[0].next[0].kind: unknown kind \"probe\" (expected one of exec, coding, noop, sleep, testing, deploy, notify, monitor)");
    expect_error("{\"kind\":\"noop\",\"next\":{}}", "next: must be an array of specs");
    expect_error("{\"kind\":\"noop\",\"next\":[{\"kind\":\"noop\"},{\"kind\":\"noop\"},{\"kind\":\"exec\"}]}",
                 "next[2].command: must be a non-empty array of strings");
    expect_error("{\"kind\":\"noop\",\"next\":[{\"kind\":\"noop\"},5]}", "next[1]: must be a JSON object");
    expect_error("{\"kind\":\"noop\",\"next\":[{\"kind\":\"noop\",\"next\":[{\"kind\":\"noop\"},{}]}]}",
                 "next[0].next[1].kind: required");
    expect_error("{\"kind\":\"noop\",\"next\":[{\"kind\":\"noop\",\"retry_policy\":{\"factor\":0}}]}",
                 "next[0].retry_policy.factor: must be a number from 1 to 100");
    expect_error("{\"kind\":\"noop\",\"next\":[{\"kind\":\"noop\",\"bogus\":0}]}", "next[0].bogus: unknown field");
    /* a step whose command was accepted before a later error must not leak */
    expect_error("{\"kind\":\"noop\",\"next\":[{\"kind\":\"exec\",\"command\":[\"a\"],\"priority\":1000}]}",
                 "next[0].priority: must be an integer from -100 to 100");
    expect_error("{\"kind\":\"exec\",\"command\":[\"a\"],\"priority\":1000}",
                 "priority: must be an integer from -100 to 100");

    size_t cap = 101 * 20 + 64;
    char *t = malloc(cap);
    for (int n = 100; n <= 101; n++) {
        int o = snprintf(t, cap, "{\"kind\":\"noop\",\"next\":[");
        for (int i = 0; i < n; i++)
            o += snprintf(t + o, cap - (size_t)o, "%s{\"kind\":\"noop\"}", i ? "," : "");
        snprintf(t + o, cap - (size_t)o, "]}");
        if (n == 100)
            expect_ok(t);
        else
            expect_error(t, "next: 101 entries exceeds the limit of 100");
    }
    free(t);
}

/* kind testing: its section is required and names the JUnit files. */
static void test_testing_section(void **state)
{
    (void)state;
    spec_t *s = parse("{\"kind\":\"testing\",\"command\":[\"meson\",\"test\"],"
                      "\"testing\":{\"junit\":[\"build/meson-logs/testlog.junit.xml\",\"out/*.xml\"],"
                      "\"max_report_bytes\":1048576}}");
    assert_non_null(s);
    assert_int_equal(json_array_size(s->junit), 2);
    assert_int_equal(s->max_report_bytes, 1048576);
    spec_free(s);
    expect_error("{\"kind\":\"testing\",\"command\":[\"true\"]}", "testing: required for kind testing");
    expect_error("{\"kind\":\"testing\",\"testing\":{\"junit\":[\"a.xml\"]}}",
                 "command: must be a non-empty array of strings");
    expect_error("{\"kind\":\"testing\",\"command\":[\"true\"],\"testing\":{}}",
                 "testing.junit: required (the JUnit XML files the command writes)");
    expect_error("{\"kind\":\"testing\",\"command\":[\"true\"],\"testing\":{\"junit\":[]}}",
                 "testing.junit: must be an array of 1 to 32 paths");
    expect_error("{\"kind\":\"testing\",\"command\":[\"true\"],\"testing\":{\"junit\":\"a.xml\"}}",
                 "testing.junit: must be an array of 1 to 32 paths");
    expect_error("{\"kind\":\"testing\",\"command\":[\"true\"],\"testing\":{\"junit\":[\"a.xml\",\"../etc/x.xml\"]}}",
                 "testing.junit[1]: must not contain a \"..\" segment");
    expect_error("{\"kind\":\"testing\",\"command\":[\"true\"],\"testing\":{\"junit\":[\"a/../../b\"]}}",
                 "testing.junit[0]: must not contain a \"..\" segment");
    expect_ok("{\"kind\":\"testing\",\"command\":[\"true\"],\"testing\":{\"junit\":[\"a..b/..c.xml\"]}}");
    expect_error("{\"kind\":\"testing\",\"command\":[\"true\"],\"testing\":{\"junit\":[\"/etc/passwd\"]}}",
                 "testing.junit[0]: must be relative to the workdir, not absolute");
    expect_error("{\"kind\":\"testing\",\"command\":[\"true\"],\"testing\":{\"junit\":[5]}}",
                 "testing.junit[0]: must be a string of 1 to 1024 bytes");
    expect_error("{\"kind\":\"testing\",\"command\":[\"true\"],\"testing\":{\"junit\":[\"\"]}}",
                 "testing.junit[0]: must be a string of 1 to 1024 bytes");
    expect_error("{\"kind\":\"testing\",\"command\":[\"true\"],\"testing\":{\"junit\":[\"a\"],\"max_report_bytes\":1}}",
                 "testing.max_report_bytes: must be an integer from 1024 to 67108864");
    expect_error("{\"kind\":\"testing\",\"command\":[\"true\"],\"testing\":{\"junit\":[\"a\"],\"paths\":1}}",
                 "testing.paths: unknown field");
    expect_error("{\"kind\":\"exec\",\"command\":[\"true\"],\"testing\":{\"junit\":[\"a\"]}}",
                 "testing: only allowed for kinds testing");
    expect_error("{\"kind\":\"noop\",\"next\":[{\"kind\":\"testing\",\"command\":[\"true\"]}]}",
                 "next[0].testing: required for kind testing");
}

/* kind deploy: its section (proto/kind_deploy.c). */
#define DEPLOY(sec) "{\"kind\":\"deploy\",\"deploy\":" sec "}"
static void test_deploy_section(void **state)
{
    (void)state;
    spec_t *s = parse(DEPLOY("{\"app\":\"web\",\"env\":\"staging\",\"source\":\"dist\","
                             "\"check\":{\"http\":{\"url\":\"http://127.0.0.1:8080/health\",\"body_pattern\":\"ok|up\","
                             "\"retries\":3,\"interval_s\":0.5}}}"));
    assert_non_null(s);
    assert_string_equal(s->deploy.app, "web");
    assert_string_equal(s->deploy.env, "staging");
    assert_string_equal(s->deploy.source, "dist");
    assert_null(s->deploy.revision);
    assert_int_equal(s->deploy.keep, 5);
    assert_int_equal(s->deploy.rollback, 0);
    assert_string_equal(s->deploy.check_url, "http://127.0.0.1:8080/health");
    assert_int_equal(s->deploy.check_status, 200);
    assert_string_equal(s->deploy.check_body, "ok|up");
    assert_int_equal(s->deploy.check_retries, 3);
    assert_true(s->deploy.check_interval_s == 0.5 && s->deploy.check_timeout_s == 10);
    spec_free(s);
    s = parse(DEPLOY("{\"app\":\"web\",\"env\":\"prod\",\"action\":\"rollback\",\"to\":\"v1.2\"}"));
    assert_non_null(s);
    assert_int_equal(s->deploy.rollback, 1);
    assert_string_equal(s->deploy.to, "v1.2");
    assert_null(s->deploy.source);
    spec_free(s);
    s = parse(DEPLOY("{\"app\":\"a\",\"env\":\"e\",\"source\":\"input:build/site.tgz\",\"revision\":\"r-1\","
                     "\"keep\":2,\"check\":{\"command\":[\"test\",\"-f\",\"index.html\"]}}"));
    assert_non_null(s);
    assert_int_equal(json_array_size(s->deploy.check_command), 3);
    assert_null(s->deploy.check_url);
    spec_free(s);
    expect_ok(DEPLOY("{\"app\":\"a\",\"env\":\"e\",\"source\":\"/srv/x.tar.gz\",\"keep\":100}"));

    expect_error("{\"kind\":\"deploy\"}", "deploy: required for kind deploy");
    expect_error(DEPLOY("{\"env\":\"e\",\"source\":\"d\"}"), "deploy.app: required");
    expect_error(DEPLOY("{\"app\":\"a\",\"source\":\"d\"}"), "deploy.env: required");
    expect_error(DEPLOY("{\"app\":\"a\",\"env\":\"e\"}"),
                 "deploy.source: required (a directory or a .tar/.tar.gz/.tgz to deploy)");
    const char *names[] = {"\"a/b\"", "\"..\"", "\".\"", "\"\"", "5", "\"a b\"",
                           "\"0123456789012345678901234567890123456789012345678901234567890123456789\""};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char text[256];
        snprintf(text, sizeof text, DEPLOY("{\"app\":%s,\"env\":\"e\",\"source\":\"d\"}"), names[i]);
        expect_error(text, "deploy.app: must be 1 to 64 characters of [A-Za-z0-9_.-] (not \".\" or \"..\")");
    }
    expect_error(DEPLOY("{\"app\":\"a\",\"env\":\"e/../x\",\"source\":\"d\"}"),
                 "deploy.env: must be 1 to 64 characters of [A-Za-z0-9_.-] (not \".\" or \"..\")");
    expect_error(DEPLOY("{\"app\":\"a\",\"env\":\"e\",\"source\":\"d\",\"revision\":\"../x\"}"),
                 "deploy.revision: must be 1 to 64 characters of [A-Za-z0-9_.-] (not \".\" or \"..\")");
    expect_error(DEPLOY("{\"app\":\"a\",\"env\":\"e\",\"source\":\"d\",\"keep\":1}"),
                 "deploy.keep: must be an integer from 2 to 100");
    expect_error(DEPLOY("{\"app\":\"a\",\"env\":\"e\",\"source\":\"d\",\"keep\":101}"),
                 "deploy.keep: must be an integer from 2 to 100");
    expect_error(DEPLOY("{\"app\":\"a\",\"env\":\"e\",\"source\":\"input:build\"}"),
                 "deploy.source: \"input:\" must be followed by <node>/<path>");
    expect_error(DEPLOY("{\"app\":\"a\",\"env\":\"e\",\"source\":\"input:b/../../etc\"}"),
                 "deploy.source: an input path must not contain a \"..\" segment");
    expect_error(DEPLOY("{\"app\":\"a\",\"env\":\"e\",\"source\":\"\"}"),
                 "deploy.source: must be a path of 1 to 4096 bytes");
    expect_error(DEPLOY("{\"app\":\"a\",\"env\":\"e\",\"source\":\"d\",\"action\":\"undo\"}"),
                 "deploy.action: must be \"deploy\" or \"rollback\"");
    expect_error(DEPLOY("{\"app\":\"a\",\"env\":\"e\",\"source\":\"d\",\"action\":\"rollback\"}"),
                 "deploy.source: not allowed with action \"rollback\" (name the revision in \"to\")");
    expect_error(DEPLOY("{\"app\":\"a\",\"env\":\"e\",\"source\":\"d\",\"to\":\"r1\"}"),
                 "deploy.to: only allowed with action \"rollback\"");
    expect_error(DEPLOY("{\"app\":\"a\",\"env\":\"e\",\"source\":\"d\",\"check\":{}}"),
                 "deploy.check: must be {\"http\": {...}} or {\"command\": [argv]}");
    expect_error(DEPLOY("{\"app\":\"a\",\"env\":\"e\",\"source\":\"d\",\"check\":{\"http\":{}}}"),
                 "deploy.check.http.url: required");
    expect_error(DEPLOY("{\"app\":\"a\",\"env\":\"e\",\"source\":\"d\",\"check\":{\"http\":{\"url\":\"file:///etc/passwd\"}}}"),
                 "deploy.check.http.url: must be an http:// or https:// URL of at most 2048 bytes");
    expect_error(DEPLOY("{\"app\":\"a\",\"env\":\"e\",\"source\":\"d\",\"check\":{\"http\":{\"url\":\"http://x\","
                        "\"expect_status\":600}}}"),
                 "deploy.check.http.expect_status: must be an integer from 100 to 599");
    expect_error(DEPLOY("{\"app\":\"a\",\"env\":\"e\",\"source\":\"d\",\"check\":{\"http\":{\"url\":\"http://x\","
                        "\"body_pattern\":\"(unclosed\"}}}"),
                 "deploy.check.http.body_pattern: must be a POSIX extended regular expression");
    expect_error(DEPLOY("{\"app\":\"a\",\"env\":\"e\",\"source\":\"d\",\"check\":{\"http\":{\"url\":\"http://x\","
                        "\"timeout_s\":0}}}"),
                 "deploy.check.http.timeout_s: must be a number above 0, at most 600");
    expect_error(DEPLOY("{\"app\":\"a\",\"env\":\"e\",\"source\":\"d\",\"check\":{\"http\":{\"url\":\"http://x\","
                        "\"retries\":101}}}"),
                 "deploy.check.http.retries: must be an integer from 0 to 100");
    expect_error(DEPLOY("{\"app\":\"a\",\"env\":\"e\",\"source\":\"d\",\"check\":{\"http\":{\"url\":\"http://x\","
                        "\"method\":\"POST\"}}}"),
                 "deploy.check.http.method: unknown field");
    expect_error(DEPLOY("{\"app\":\"a\",\"env\":\"e\",\"source\":\"d\",\"check\":{\"command\":[]}}"),
                 "deploy.check.command: must be an array of 1 to 256 strings");
    expect_error(DEPLOY("{\"app\":\"a\",\"env\":\"e\",\"source\":\"d\",\"check\":{\"command\":[\"\"]}}"),
                 "deploy.check.command[0]: must be a non-empty string of at most 4096 bytes without NUL");
    expect_error(DEPLOY("{\"app\":\"a\",\"env\":\"e\",\"source\":\"d\",\"target\":1}"), "deploy.target: unknown field");
    expect_error("{\"kind\":\"exec\",\"command\":[\"x\"],\"deploy\":{\"app\":\"a\"}}",
                 "deploy: only allowed for kinds deploy");
    expect_error("{\"kind\":\"noop\",\"next\":[" DEPLOY("{\"app\":\"a\",\"env\":\"e\",\"keep\":0}") "]}",
                 "next[0].deploy.keep: must be an integer from 2 to 100");
}

static void test_sleep(void **state)
{
    (void)state;
    spec_t *s = parse("{\"kind\":\"sleep\",\"sleep\":{\"ms\":250,\"fail_first\":2,\"fail_always\":true}}");
    assert_non_null(s);
    assert_int_equal(s->sleep_ms, 250);
    assert_int_equal(s->fail_first, 2);
    assert_int_equal(s->fail_always, 1);
    spec_free(s);
    expect_ok("{\"kind\":\"noop\",\"sleep\":{\"ms\":86400000,\"fail_first\":1000}}");
    expect_error("{\"kind\":\"exec\",\"command\":[\"x\"],\"sleep\":{\"ms\":1}}",
                 "sleep: only allowed for kinds sleep and noop");
    expect_error("{\"kind\":\"sleep\",\"sleep\":{\"ms\":86400001}}",
                 "sleep.ms: must be an integer from 0 to 86400000");
    expect_error("{\"kind\":\"sleep\",\"sleep\":{\"ms\":1.5}}", "sleep.ms: must be an integer from 0 to 86400000");
    expect_error("{\"kind\":\"sleep\",\"sleep\":{\"fail_first\":-1}}",
                 "sleep.fail_first: must be an integer from 0 to 1000");
    expect_error("{\"kind\":\"sleep\",\"sleep\":{\"fail_always\":\"no\"}}",
                 "sleep.fail_always: must be true or false");
    expect_error("{\"kind\":\"sleep\",\"sleep\":{\"seconds\":1}}", "sleep.seconds: unknown field");
    expect_error("{\"kind\":\"sleep\",\"sleep\":5}", "sleep: must be an object");
    /* a section inside a pipeline step is named by its path */
    expect_error("{\"kind\":\"noop\",\"next\":[{\"kind\":\"sleep\",\"sleep\":{\"ms\":\"5\"}}]}",
                 "next[0].sleep.ms: must be an integer from 0 to 86400000");
    expect_error("{\"kind\":\"noop\",\"next\":[{\"kind\":\"exec\",\"command\":[\"x\"],\"sleep\":{}}]}",
                 "next[0].sleep: only allowed for kinds sleep and noop");
    expect_error("{\"kind\":\"sleep\",\"sleep\":{\"a\\tb\":1}}", "sleep.a?b: unknown field");
    s = parse("{\"kind\":\"noop\",\"sleep\":{\"fail_first\":1}}");
    assert_non_null(s);
    assert_true(s->kind_def == kind_find("noop") && (s->kind_def->flags & KIND_INSTANT));
    assert_int_equal(s->fail_first, 1);
    spec_free(s);
}

static void test_from_json_reference(void **state)
{
    (void)state;
    json_t *j = json_pack("{s:s,s:[s,s]}", "kind", "exec", "command", "echo", "x");
    spec_t *s = spec_from_json(j, err, sizeof err);
    assert_non_null(s);
    assert_ptr_equal(s->json, j);
    assert_int_equal(j->refcount, 2);
    json_decref(j); /* the spec keeps its own reference: argv still valid */
    assert_string_equal(s->argv[1], "x");
    spec_free(s);
    spec_free(NULL);
}

static void test_small_error_buffer(void **state)
{
    (void)state;
    char small[8];
    memset(small, 'Z', sizeof small);
    const char *t = "{\"kind\":\"noop\",\"frobnicate\":1}";
    assert_null(spec_parse(t, strlen(t), small, sizeof small));
    assert_string_equal(small, "frobnic");
    assert_null(spec_parse(t, strlen(t), NULL, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_exec),      cmocka_unit_test(test_full_spec),
        cmocka_unit_test(test_not_object_and_syntax), cmocka_unit_test(test_size_and_depth),
        cmocka_unit_test(test_kind), cmocka_unit_test(test_pipeline_fields), cmocka_unit_test(test_msgpack_limits),             cmocka_unit_test(test_unknown_field),
        cmocka_unit_test(test_queue),             cmocka_unit_test(test_strings),
        cmocka_unit_test(test_command),           cmocka_unit_test(test_env),
        cmocka_unit_test(test_numbers),           cmocka_unit_test(test_lists),
        cmocka_unit_test(test_objects),           cmocka_unit_test(test_retry_policy),
        cmocka_unit_test(test_unique_and_rate_key),
        cmocka_unit_test(test_next),              cmocka_unit_test(test_sleep),
        cmocka_unit_test(test_testing_section),
        cmocka_unit_test(test_deploy_section),
        cmocka_unit_test(test_from_json_reference), cmocka_unit_test(test_small_error_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
