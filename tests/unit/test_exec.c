/* test_exec: the exec, noop and sleep handlers against real processes on a
 * real event_base. A fake agent (fake_run_t) records what done() reports. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "exec_contain.h"
#include "handler.h"
#include "xalloc.h"

typedef struct fake_run {
    task_run_t run;
    spec_t spec;
    const char *argv[8];
    char id[40];
    int in_start;
    int done_calls;
    handler_result_t res;
    json_t *checkpoints;   /* array of the texts checkpoint_save received */
} fake_run_t;

static struct event_base *base;
static struct event *tick;
static int done_total;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fake_done(task_run_t *run, handler_result_t *res)
{
    fake_run_t *fr = (fake_run_t *)run;
    assert_false(fr->in_start);
    fr->done_calls++;
    done_total++;
    fr->res = *res;
}

static void fake_checkpoint_save(task_run_t *run, const char *json, size_t len)
{
    fake_run_t *fr = (fake_run_t *)run;
    assert_int_equal(strlen(json), len);
    json_array_append_new(fr->checkpoints, json_stringn(json, len));
}

/* argv: up to 7 words, NULL-terminated. */
static fake_run_t *fake_new(const char *kind, ...)
{
    static int seq;
    fake_run_t *fr = xcalloc(1, sizeof *fr);
    va_list ap;
    va_start(ap, kind);
    size_t n = 0;
    for (const char *w; n < 7 && (w = va_arg(ap, const char *)) != NULL;)
        fr->argv[n++] = w;
    va_end(ap);
    fr->argv[n] = NULL;
    fr->spec.kind = kind;
    fr->spec.queue = kind;
    fr->spec.argc = n;
    fr->spec.argv = fr->argv;
    snprintf(fr->id, sizeof fr->id, "00000000-0000-4000-8000-%012d", ++seq);
    fr->checkpoints = json_array();
    fr->run.base = base;
    fr->run.spec = &fr->spec;
    fr->run.id = fr->id;
    fr->run.attempt = 1;
    fr->run.agent_name = "test";
    fr->run.kill_grace_s = 0.3;
    fr->run.done = fake_done;
    fr->run.checkpoint_save = fake_checkpoint_save;
    return fr;
}

static fake_run_t *sh_new(const char *script)
{
    return fake_new("exec", "sh", "-c", script, NULL);
}

static void fake_free(fake_run_t *fr)
{
    free(fr->res.error);
    free(fr->res.output);
    json_decref(fr->res.result);
    json_decref(fr->checkpoints);
    json_decref(fr->spec.env);
    free(fr);
}

static int fake_start(const handler_ops_t *ops, fake_run_t *fr)
{
    fr->in_start = 1;
    int rc = ops->start(&fr->run, &fr->res);
    fr->in_start = 0;
    assert_int_equal(fr->done_calls, 0);
    return rc;
}

/* Runs the loop until done_total reaches target or limit_s passes. */
static void loop_until(int target, double limit_s)
{
    double deadline = now_s() + limit_s;
    while (done_total < target && now_s() < deadline)
        event_base_loop(base, EVLOOP_ONCE);
}

/* Waits for this run only, so a failed earlier test cannot end the wait. */
static void wait_run(fake_run_t *fr, double limit_s)
{
    double deadline = now_s() + limit_s;
    while (fr->done_calls == 0 && now_s() < deadline)
        event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(fr->done_calls, 1);
}

static void run_to_end(const handler_ops_t *ops, fake_run_t *fr, double limit_s)
{
    assert_int_equal(fake_start(ops, fr), 0);
    wait_run(fr, limit_s);
}

static json_int_t result_int(const fake_run_t *fr, const char *key)
{
    json_t *v = json_object_get(fr->res.result, key);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

/* Waits until no process of group pgid exists (zombies count until they are
 * reaped by our SIGCHLD loop as subreaper). */
static int group_gone(pid_t pgid, double limit_s)
{
    double deadline = now_s() + limit_s;
    for (;;) {
        if (kill(-pgid, 0) == -1 && errno == ESRCH)
            return 1;
        if (now_s() > deadline)
            return 0;
        event_base_loop(base, EVLOOP_ONCE);
    }
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static int group_setup(void **state)
{
    (void)state;
    base = event_base_new();
    exec_handler_init(base);
    /* keeps EVLOOP_ONCE returning so the waits above can give up */
    tick = event_new(base, -1, EV_PERSIST, tick_cb, NULL);
    struct timeval tv = {0, 20000};
    event_add(tick, &tv);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    exec_handler_shutdown();
    event_free(tick);
    event_base_free(base);
    return 0;
}

/* ---- exec ---- */

static void test_echo_output(void **state)
{
    (void)state;
    fake_run_t *fr = sh_new("echo hello; echo oops >&2");
    run_to_end(&handler_exec, fr, 5);
    assert_true(fr->res.ok);
    assert_null(fr->res.error);
    assert_int_equal(fr->res.output_len, strlen("hello\noops\n"));
    assert_memory_equal(fr->res.output, "hello\noops\n", fr->res.output_len);
    assert_int_equal(result_int(fr, "exit_code"), 0);
    /* {"exit_code": 0, "output": null, "artifacts": []}: no $DEVSYS_RESULT, no expected_artifacts */
    assert_int_equal(json_object_size(fr->res.result), 3);
    assert_true(json_is_null(json_object_get(fr->res.result, "output")));
    assert_int_equal(json_array_size(json_object_get(fr->res.result, "artifacts")), 0);
    fake_free(fr);
}

static void test_no_output(void **state)
{
    (void)state;
    fake_run_t *fr = fake_new("exec", "true", NULL);
    run_to_end(&handler_exec, fr, 5);
    assert_true(fr->res.ok);
    assert_null(fr->res.output);
    assert_int_equal(fr->res.output_len, 0);
    fake_free(fr);
}

static void test_output_tail_bounded(void **state)
{
    (void)state;
    fake_run_t *fr = sh_new("echo START; head -c 10485760 /dev/zero | tr '\\0' x; printf END");
    run_to_end(&handler_exec, fr, 20);
    assert_true(fr->res.ok);
    assert_int_equal(fr->res.output_len, OUTPUT_TAIL_MAX);
    assert_memory_equal(fr->res.output + OUTPUT_TAIL_MAX - 3, "END", 3);
    for (size_t i = 0; i < OUTPUT_TAIL_MAX - 3; i++)
        if (fr->res.output[i] != 'x')
            fail_msg("byte %zu is 0x%02x, expected 'x'", i, (unsigned char)fr->res.output[i]);
    assert_null(strstr(fr->res.output, "START"));
    fake_free(fr);
}

static void test_output_exactly_at_limit(void **state)
{
    (void)state;
    char script[128];
    snprintf(script, sizeof script, "head -c %d /dev/zero | tr '\\0' y", OUTPUT_TAIL_MAX);
    fake_run_t *fr = sh_new(script);
    run_to_end(&handler_exec, fr, 10);
    assert_true(fr->res.ok);
    assert_int_equal(fr->res.output_len, OUTPUT_TAIL_MAX);
    assert_int_equal(fr->res.output[0], 'y');
    assert_int_equal(fr->res.output[OUTPUT_TAIL_MAX - 1], 'y');
    fake_free(fr);
}

static void test_exit_code(void **state)
{
    (void)state;
    fake_run_t *fr = sh_new("echo before; exit 3");
    run_to_end(&handler_exec, fr, 5);
    assert_false(fr->res.ok);
    assert_true(fr->res.retryable);
    assert_string_equal(fr->res.error, "exit status 3");
    assert_int_equal(result_int(fr, "exit_code"), 3);
    assert_memory_equal(fr->res.output, "before\n", 7);
    fake_free(fr);
}

/* retry_policy.permanent_exit_codes is an exec rule, applied by the exec
 * handler: a listed exit status is a permanent failure, others still retry. */
static void test_permanent_exit_code(void **state)
{
    (void)state;
    fake_run_t *fr = sh_new("exit 3");
    fr->spec.retry.permanent_exit[3 / 8] |= 1u << (3 % 8);
    run_to_end(&handler_exec, fr, 5);
    assert_false(fr->res.ok);
    assert_false(fr->res.retryable);
    assert_string_equal(fr->res.error, "exit status 3 (permanent: in retry_policy.permanent_exit_codes)");
    assert_int_equal(result_int(fr, "exit_code"), 3);
    fake_free(fr);
    fr = sh_new("exit 4");
    fr->spec.retry.permanent_exit[3 / 8] |= 1u << (3 % 8);
    run_to_end(&handler_exec, fr, 5);
    assert_true(fr->res.retryable);
    assert_string_equal(fr->res.error, "exit status 4");
    fake_free(fr);
}

static void test_killed_by_signal(void **state)
{
    (void)state;
    fake_run_t *fr = sh_new("kill -9 $$");
    run_to_end(&handler_exec, fr, 5);
    assert_false(fr->res.ok);
    assert_true(fr->res.retryable);
    assert_string_equal(fr->res.error, "killed by signal 9 (SIGKILL)");
    assert_int_equal(result_int(fr, "signal"), 9);
    assert_true(json_is_null(json_object_get(fr->res.result, "exit_code")));
    fake_free(fr);
}

/* The agent may ignore SIGPIPE; its tasks must not inherit that. */
static void test_signals_reset_in_child(void **state)
{
    (void)state;
    struct sigaction ign = {0}, old;
    ign.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ign, &old);
    fake_run_t *fr = sh_new("kill -PIPE $$; echo survived");
    run_to_end(&handler_exec, fr, 5);
    sigaction(SIGPIPE, &old, NULL);
    assert_string_equal(fr->res.error, "killed by signal 13 (SIGPIPE)");
    assert_null(fr->res.output);
    fake_free(fr);
}

/* An fd the agent opened without O_CLOEXEC must not reach the task. */
static void test_agent_fds_not_leaked(void **state)
{
    (void)state;
    int fd = open("/dev/null", O_RDONLY);
    assert_true(fd > 2);
    char script[128];
    snprintf(script, sizeof script, "if [ -e /proc/self/fd/%d ]; then echo leaked; else echo closed; fi", fd);
    fake_run_t *fr = sh_new(script);
    run_to_end(&handler_exec, fr, 5);
    close(fd);
    assert_true(fr->res.ok);
    assert_string_equal(fr->res.output, "closed\n");
    fake_free(fr);
}

static void test_stdin_is_dev_null(void **state)
{
    (void)state;
    fake_run_t *fr = fake_new("exec", "cat", NULL);
    run_to_end(&handler_exec, fr, 5);
    assert_true(fr->res.ok);
    assert_null(fr->res.output);
    fake_free(fr);
}

static void test_command_not_found(void **state)
{
    (void)state;
    fake_run_t *fr = fake_new("exec", "sh2-no-such-command", "-c", "true", NULL);
    assert_int_equal(fake_start(&handler_exec, fr), -1);
    assert_false(fr->res.ok);
    assert_false(fr->res.retryable);
    assert_string_equal(fr->res.error, "command: sh2-no-such-command: No such file or directory");
    /* nothing reported later either */
    int before = done_total;
    for (int i = 0; i < 5; i++)
        event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(done_total, before);
    assert_int_equal(fr->done_calls, 0);
    fake_free(fr);
}

static void test_command_not_executable(void **state)
{
    (void)state;
    char path[] = "/tmp/test_exec_noexecXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "#!/bin/sh\n", 10), 10);
    close(fd);
    chmod(path, 0644);
    fake_run_t *fr = fake_new("exec", path, NULL);
    int rc = fake_start(&handler_exec, fr);
    unlink(path);
    assert_int_equal(rc, -1);
    assert_false(fr->res.retryable);
    char want[96];
    snprintf(want, sizeof want, "command: %s: Permission denied", path);
    assert_string_equal(fr->res.error, want);
    fake_free(fr);
}

static void test_empty_command(void **state)
{
    (void)state;
    fake_run_t *fr = fake_new("exec", NULL);
    assert_int_equal(fake_start(&handler_exec, fr), -1);
    assert_false(fr->res.retryable);
    assert_string_equal(fr->res.error, "command: empty");
    fake_free(fr);
}

static void test_workdir(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_exec_wdXXXXXX";
    assert_non_null(mkdtemp(dir));
    fake_run_t *fr = fake_new("exec", "pwd", NULL);
    fr->spec.workdir = dir;
    run_to_end(&handler_exec, fr, 5);
    assert_true(fr->res.ok);
    char want[64];
    snprintf(want, sizeof want, "%s\n", dir);
    assert_string_equal(fr->res.output, want);
    fake_free(fr);
    rmdir(dir);
}

static void test_workdir_missing(void **state)
{
    (void)state;
    fake_run_t *fr = fake_new("exec", "pwd", NULL);
    fr->spec.workdir = "/nonexistent/test_exec";
    assert_int_equal(fake_start(&handler_exec, fr), -1);
    assert_false(fr->res.retryable);
    assert_string_equal(fr->res.error, "workdir: /nonexistent/test_exec: No such file or directory");
    fake_free(fr);
}

/* A task's environment is an allow-list of the agent's, the spec's env and
 * the task variables: none of the agent's credentials or other variables. */
static void test_env(void **state)
{
    (void)state;
    setenv("TEST_EXEC_INHERITED", "inh", 1);
    setenv("DEVSYS_DATABASE_URL", "postgresql://secret@db/devsys", 1);
    setenv("DEVSYS_CHECKPOINT", "stale-from-agent", 1);
    setenv("TZ", "Europe/Paris", 1);
    fake_run_t *fr = sh_new("echo \"${TEST_EXEC_INHERITED-unset} $TEST_EXEC_NEW $TZ "
                            "${DEVSYS_DATABASE_URL-unset} $DEVSYS_TASK_ID $DEVSYS_TASK_ATTEMPT $DEVSYS_ATTEMPT "
                            "${DEVSYS_CHECKPOINT-unset} $DEVSYS_CHECKPOINT_FD\"");
    /* DEVSYS_CHECKPOINT_FD is refused at validation; the handler skips it too */
    fr->spec.env = json_pack("{s:s,s:s}", "TEST_EXEC_NEW", "a b=c", "DEVSYS_CHECKPOINT_FD", "1");
    fr->run.attempt = 4;
    run_to_end(&handler_exec, fr, 5);
    unsetenv("TEST_EXEC_INHERITED");
    unsetenv("DEVSYS_DATABASE_URL");
    unsetenv("DEVSYS_CHECKPOINT");
    unsetenv("TZ");
    assert_true(fr->res.ok);
    char want[256];
    snprintf(want, sizeof want, "unset a b=c Europe/Paris unset %s 4 4 unset 3\n", fr->id);
    assert_string_equal(fr->res.output, want);
    fake_free(fr);
}

static int env_has(const char *out, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = out; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, name, n) == 0 && p[n] == '=')
            return 1;
    return 0;
}

/* What `env` prints in a task: the allow-list, the spec's env and ours, and
 * none of the agent's secrets; an operator adds names with DEVSYS_TASK_ENV_ALLOW. */
static void test_env_allow_list(void **state)
{
    (void)state;
    const char *secrets[] = {"DEVSYS_DATABASE_URL", "DEVSYS_REDIS_URL", "DEVSYS_ADMIN_TOKEN",
                             "DEVSYS_DATABASE_URL_FILE", "TEST_EXEC_CANARY"};
    for (size_t i = 0; i < sizeof secrets / sizeof *secrets; i++)
        setenv(secrets[i], "canary-secret-value", 1);
    setenv("TEST_EXEC_PASSED", "yes", 1);
    exec_handler_shutdown();
    setenv("DEVSYS_TASK_ENV_ALLOW", "TEST_EXEC_PASSED, TEST_EXEC_ABSENT", 1);
    exec_handler_init(base);
    fake_run_t *fr = fake_new("exec", "env", NULL);
    fr->spec.env = json_pack("{s:s,s:s}", "SPEC_VAR", "from-spec", "PATH", "/usr/bin:/bin");
    run_to_end(&handler_exec, fr, 5);
    exec_handler_shutdown();
    unsetenv("DEVSYS_TASK_ENV_ALLOW");
    exec_handler_init(base);
    for (size_t i = 0; i < sizeof secrets / sizeof *secrets; i++)
        unsetenv(secrets[i]);
    unsetenv("TEST_EXEC_PASSED");
    assert_true(fr->res.ok);
    assert_null(strstr(fr->res.output, "canary-secret-value"));
    for (size_t i = 0; i < sizeof secrets / sizeof *secrets; i++)
        assert_false(env_has(fr->res.output, secrets[i]));
    assert_non_null(strstr(fr->res.output, "\nTEST_EXEC_PASSED=yes\n"));
    assert_false(env_has(fr->res.output, "TEST_EXEC_ABSENT"));
    assert_non_null(strstr(fr->res.output, "SPEC_VAR=from-spec\n"));
    assert_non_null(strstr(fr->res.output, "PATH=/usr/bin:/bin\n"));
    assert_true(env_has(fr->res.output, "DEVSYS_TASK_ID"));
    assert_true(env_has(fr->res.output, "DEVSYS_CHECKPOINT_FD"));
    fake_free(fr);
}

/* A spec env that names a loader variable never reaches the loader, even if
 * a caller skipped validation. */
static void test_env_loader_vars_skipped(void **state)
{
    (void)state;
    fake_run_t *fr = sh_new("echo \"${LD_PRELOAD-unset} ${GLIBC_TUNABLES-unset} ${BASH_ENV-unset}\"");
    fr->spec.env = json_pack("{s:s,s:s,s:s}", "LD_PRELOAD", "/nonexistent.so", "GLIBC_TUNABLES", "x",
                             "BASH_ENV", "/tmp/x");
    run_to_end(&handler_exec, fr, 5);
    assert_true(fr->res.ok);
    assert_string_equal(fr->res.output, "unset unset unset\n");
    fake_free(fr);
}

static void test_checkpoint_env_visible(void **state)
{
    (void)state;
    fake_run_t *fr = sh_new("printf '%s' \"$DEVSYS_CHECKPOINT\"");
    fr->run.checkpoint = "{\"step\": 7, \"note\": \"it's here\"}";
    run_to_end(&handler_exec, fr, 5);
    assert_true(fr->res.ok);
    assert_string_equal(fr->res.output, fr->run.checkpoint);
    fake_free(fr);
}

static void test_checkpoint_lines(void **state)
{
    (void)state;
    fake_run_t *fr = sh_new(
        "fd=$DEVSYS_CHECKPOINT_FD;"
        "echo '{\"step\":1}' >&$fd;"
        "echo 'not json' >&$fd;"
        "printf '{\"step\":' >&$fd; sleep 0.1; printf '2}\\r\\n\\n' >&$fd;"
        "{ printf '\"'; head -c 1100000 /dev/zero | tr '\\0' a; echo '\"'; } >&$fd;"
        "echo '[3]' >&$fd;"
        "printf '{\"last\":true}' >&$fd");
    run_to_end(&handler_exec, fr, 10);
    assert_true(fr->res.ok);
    json_t *want = json_pack("[s,s,s,s]", "{\"step\":1}", "{\"step\":2}", "[3]", "{\"last\":true}");
    if (!json_equal(want, fr->checkpoints)) {
        char *got = json_dumps(fr->checkpoints, 0);
        fail_msg("checkpoints: %.300s", got);
    }
    json_decref(want);
    fake_free(fr);
}

/* A checkpoint written just before exit is delivered before done(). */
static void test_checkpoint_before_done(void **state)
{
    (void)state;
    fake_run_t *fr = sh_new("echo '{\"final\":1}' >&$DEVSYS_CHECKPOINT_FD; exit 2");
    run_to_end(&handler_exec, fr, 5);
    assert_string_equal(fr->res.error, "exit status 2");
    assert_int_equal(json_array_size(fr->checkpoints), 1);
    assert_string_equal(json_string_value(json_array_get(fr->checkpoints, 0)), "{\"final\":1}");
    fake_free(fr);
}

static pid_t first_line_pid(const fake_run_t *fr)
{
    assert_non_null(fr->res.output);
    long pid = strtol(fr->res.output, NULL, 10);
    assert_true(pid > 1);
    return (pid_t)pid;
}

static void test_timeout_kills_group(void **state)
{
    (void)state;
    fake_run_t *fr = sh_new("echo $$; sleep 100 & sleep 100");
    fr->spec.timeout_s = 0.3;
    double t0 = now_s();
    run_to_end(&handler_exec, fr, 10);
    double took = now_s() - t0;
    assert_true(took >= 0.25 && took < 3);   /* coarse clock: a few ms early */
    assert_false(fr->res.ok);
    assert_true(fr->res.retryable);
    assert_string_equal(fr->res.error, "timeout");
    assert_int_equal(result_int(fr, "signal"), SIGTERM);
    pid_t pgid = first_line_pid(fr);
    assert_true(group_gone(pgid, 3));
    assert_int_equal(kill(-pgid, 0), -1);
    assert_int_equal(errno, ESRCH);
    fake_free(fr);
}

/* A group that ignores SIGTERM is SIGKILLed after the grace period. */
static void test_timeout_escalates_to_sigkill(void **state)
{
    (void)state;
    fake_run_t *fr = sh_new("trap '' TERM; echo $$; sleep 100 & sleep 100");
    fr->spec.timeout_s = 0.2;
    fr->run.kill_grace_s = 0.3;
    double t0 = now_s();
    run_to_end(&handler_exec, fr, 10);
    double took = now_s() - t0;
    assert_true(took >= 0.45 && took < 3);   /* coarse clock: a few ms early */
    assert_string_equal(fr->res.error, "timeout");
    assert_true(fr->res.retryable);
    assert_int_equal(result_int(fr, "signal"), SIGKILL);
    pid_t pgid = first_line_pid(fr);
    assert_true(group_gone(pgid, 3));
    fake_free(fr);
}

/* The leader exits while a background job still holds stdout: the task ends
 * with the leader and the job is killed, not left behind. */
static void test_leader_exit_kills_leftovers(void **state)
{
    (void)state;
    fake_run_t *fr = sh_new("echo $$; sleep 100 & exit 0");
    double t0 = now_s();
    run_to_end(&handler_exec, fr, 10);
    assert_true(now_s() - t0 < 3);
    assert_true(fr->res.ok);
    pid_t pgid = first_line_pid(fr);
    assert_true(group_gone(pgid, 3));
    fake_free(fr);
}

static void test_cancel(void **state)
{
    (void)state;
    fake_run_t *fr = sh_new("echo $$; sleep 100 & sleep 100");
    assert_int_equal(fake_start(&handler_exec, fr), 0);
    double t0 = now_s();
    while (now_s() - t0 < 0.2)
        event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(fr->done_calls, 0);
    handler_exec.cancel(&fr->run);
    assert_int_equal(fr->done_calls, 0);
    handler_exec.cancel(&fr->run);   /* idempotent */
    wait_run(fr, 5);
    assert_false(fr->res.ok);
    assert_false(fr->res.retryable);
    assert_string_equal(fr->res.error, "cancelled");
    pid_t pgid = first_line_pid(fr);
    assert_true(group_gone(pgid, 3));
    fake_free(fr);
}

/* cancel wins over a timeout already in progress */
static void test_cancel_during_timeout(void **state)
{
    (void)state;
    fake_run_t *fr = sh_new("trap '' TERM; sleep 100");
    fr->spec.timeout_s = 0.1;
    fr->run.kill_grace_s = 0.5;
    assert_int_equal(fake_start(&handler_exec, fr), 0);
    double t0 = now_s();
    while (now_s() - t0 < 0.3)
        event_base_loop(base, EVLOOP_ONCE);
    handler_exec.cancel(&fr->run);
    wait_run(fr, 5);
    assert_string_equal(fr->res.error, "cancelled");
    assert_false(fr->res.retryable);
    fake_free(fr);
}

/* ---- no descendant survives its task ---- */

static pid_t read_pid_file(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    long pid = 0;
    if (f) {
        if (fscanf(f, "%ld", &pid) != 1)
            pid = 0;
        fclose(f);
    }
    return (pid_t)pid;
}

/* The pid is gone (not even a zombie: the loop reaps what comes to us). */
static int pid_gone(pid_t pid, double limit_s)
{
    double deadline = now_s() + limit_s;
    while (kill(pid, 0) == 0 || errno != ESRCH) {
        if (now_s() > deadline)
            return 0;
        event_base_loop(base, EVLOOP_ONCE);
    }
    return 1;
}

static int cgroup_children(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL)
        n += de->d_type == DT_DIR && de->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

/* A task starts three `sleep 1000`s that leave its process group: under a
 * setsid'd shell that stays, double-forked under setsid (re-parented to the
 * agent at once), and one that also drops its environment (env -i). When the
 * task ends — by exiting, or by its timeout — none of them is left. */
static void run_daemonizer(int timeout)
{
    char dir[] = "/tmp/test_exec_daemon.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char script[1024];
    snprintf(script, sizeof script,
             "cd %s; cat /proc/self/cgroup > cg;"
             "setsid sh -c 'sleep 1000 & echo $! > p1; wait' &"
             "( setsid sh -c 'sleep 1000 & echo $! > p2' & );"
             "( env -i setsid sh -c 'sleep 1000 & echo $! > p3' & );"
             "while [ ! -s p1 ] || [ ! -s p2 ] || [ ! -s p3 ]; do sleep 0.01; done; %s",
             dir, timeout ? "sleep 100" : "exit 0");
    fake_run_t *fr = sh_new(script);
    if (timeout)
        fr->spec.timeout_s = 0.5;
    run_to_end(&handler_exec, fr, 10);
    assert_true(timeout ? !fr->res.ok && strcmp(fr->res.error, "timeout") == 0 : fr->res.ok);
    const char *names[] = {"p1", "p2", "p3"};
    for (int i = 0; i < 3; i++) {
        pid_t pid = read_pid_file(dir, names[i]);
        assert_true(pid > 1);
        if (!pid_gone(pid, 3)) {
            kill(pid, SIGKILL);
            fail_msg("%s (%s, pid %d) outlived its task (%s)", names[i], contain_mechanism(), (int)pid,
                     timeout ? "timeout" : "exit 0");
        }
    }
    const char *mech = contain_mechanism();
    char path[512];
    snprintf(path, sizeof path, "%s/cg", dir);
    FILE *f = fopen(path, "r");
    char cg[2048] = "";
    assert_non_null(f);
    assert_true(fread(cg, 1, sizeof cg - 1, f) > 0);
    fclose(f);
    if (strncmp(mech, "cgroup ", 7) == 0) { /* the task ran in its own cgroup, now removed */
        assert_non_null(strstr(cg, "/devsys-agent-"));
        assert_int_equal(cgroup_children(mech + 7), 0);
    }
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    fake_free(fr);
}

static void test_daemonized_children_die(void **state)
{
    (void)state;
    run_daemonizer(0);
    run_daemonizer(1);
}

/* The same with DEVSYS_CGROUP=off: the subreaper sweep alone. */
static void test_daemonized_children_die_subreaper(void **state)
{
    (void)state;
    exec_handler_shutdown();
    setenv("DEVSYS_CGROUP", "off", 1);
    exec_handler_init(base);
    assert_string_equal(contain_mechanism(), "subreaper");
    run_daemonizer(0);
    run_daemonizer(1);
    exec_handler_shutdown();
    unsetenv("DEVSYS_CGROUP");
    exec_handler_init(base);
}

/* A process that dropped its environment cannot be attributed: with another
 * task still running, the subreaper sweep leaves it (the documented limit;
 * a cgroup has no such gap); it dies once no task runs. */
static void test_unmarked_orphan_waits_for_idle(void **state)
{
    (void)state;
    exec_handler_shutdown();
    setenv("DEVSYS_CGROUP", "off", 1);
    exec_handler_init(base);
    char dir[] = "/tmp/test_exec_daemon.XXXXXX";
    assert_non_null(mkdtemp(dir));
    fake_run_t *other = sh_new("sleep 1");
    assert_int_equal(fake_start(&handler_exec, other), 0);
    char script[512];
    snprintf(script, sizeof script,
             "cd %s; ( env -i setsid sh -c 'sleep 1000 & echo $! > p3' & );"
             "while [ ! -s p3 ]; do sleep 0.01; done",
             dir);
    fake_run_t *fr = sh_new(script);
    run_to_end(&handler_exec, fr, 10);
    pid_t pid = read_pid_file(dir, "p3");
    assert_true(pid > 1);
    assert_int_equal(kill(pid, 0), 0);   /* unattributable while `other` runs */
    wait_run(other, 5);
    assert_true(pid_gone(pid, 3));       /* swept when `other` ended: no task runs */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    fake_free(fr);
    fake_free(other);
    exec_handler_shutdown();
    unsetenv("DEVSYS_CGROUP");
    exec_handler_init(base);
}

#define N_CONCURRENT 100

static void test_concurrent_runs(void **state)
{
    (void)state;
    fake_run_t *frs[N_CONCURRENT];
    char scripts[N_CONCURRENT][96];
    int target = done_total + N_CONCURRENT;
    for (int i = 0; i < N_CONCURRENT; i++) {
        snprintf(scripts[i], sizeof scripts[i],
                 "echo run %d; echo '{\"i\":%d}' >&$DEVSYS_CHECKPOINT_FD; sleep 0.%d; exit %d", i, i,
                 i % 3, i % 4);
        frs[i] = sh_new(scripts[i]);
        assert_int_equal(fake_start(&handler_exec, frs[i]), 0);
    }
    loop_until(target, 30);
    for (int i = 0; i < N_CONCURRENT; i++) {
        fake_run_t *fr = frs[i];
        assert_int_equal(fr->done_calls, 1);
        char want[32];
        snprintf(want, sizeof want, "run %d\n", i);
        assert_string_equal(fr->res.output, want);
        assert_int_equal(result_int(fr, "exit_code"), i % 4);
        assert_int_equal(fr->res.ok, i % 4 == 0);
        assert_int_equal(json_array_size(fr->checkpoints), 1);
        fake_free(fr);
    }
}

/* ---- noop and sleep ---- */

static void test_noop(void **state)
{
    (void)state;
    fake_run_t *fr = fake_new("noop", NULL);
    run_to_end(&handler_noop, fr, 2);
    assert_true(fr->res.ok);
    assert_null(fr->res.error);
    assert_null(fr->res.result);
    assert_null(fr->run.handler_data);
    fake_free(fr);
}

static void test_noop_fail_first(void **state)
{
    (void)state;
    for (long attempt = 1; attempt <= 3; attempt++) {
        fake_run_t *fr = fake_new("noop", NULL);
        fr->spec.fail_first = 2;
        fr->run.attempt = attempt;
        run_to_end(&handler_noop, fr, 2);
        if (attempt <= 2) {
            char want[64];
            snprintf(want, sizeof want, "fail_first: attempt %ld of 2", attempt);
            assert_false(fr->res.ok);
            assert_true(fr->res.retryable);
            assert_string_equal(fr->res.error, want);
        } else {
            assert_true(fr->res.ok);
            assert_null(fr->res.error);
        }
        fake_free(fr);
    }
}

static void test_noop_fail_always(void **state)
{
    (void)state;
    fake_run_t *fr = fake_new("noop", NULL);
    fr->spec.fail_always = 1;
    fr->run.attempt = 50;
    run_to_end(&handler_noop, fr, 2);
    assert_false(fr->res.ok);
    assert_true(fr->res.retryable);
    assert_string_equal(fr->res.error, "fail_always");
    fake_free(fr);
}

static void test_noop_cancel(void **state)
{
    (void)state;
    fake_run_t *fr = fake_new("noop", NULL);
    assert_int_equal(fake_start(&handler_noop, fr), 0);
    handler_noop.cancel(&fr->run);
    assert_int_equal(fr->done_calls, 0);
    wait_run(fr, 2);
    assert_string_equal(fr->res.error, "cancelled");
    assert_false(fr->res.retryable);
    fake_free(fr);
}

static void test_sleep(void **state)
{
    (void)state;
    fake_run_t *fr = fake_new("sleep", NULL);
    fr->spec.sleep_ms = 80;
    double t0 = now_s();
    run_to_end(&handler_sleep, fr, 5);
    double took = now_s() - t0;
    /* libevent may use CLOCK_MONOTONIC_COARSE: a few ms early is fine */
    assert_true(took >= 0.070 && took < 2);
    assert_true(fr->res.ok);
    assert_int_equal(result_int(fr, "slept_ms"), 80);
    fake_free(fr);
}

static void test_sleep_fail_first(void **state)
{
    (void)state;
    fake_run_t *fr = fake_new("sleep", NULL);
    fr->spec.sleep_ms = 10;
    fr->spec.fail_first = 1;
    run_to_end(&handler_sleep, fr, 5);
    assert_false(fr->res.ok);
    assert_true(fr->res.retryable);
    assert_string_equal(fr->res.error, "fail_first: attempt 1 of 1");
    fake_free(fr);
}

static void test_sleep_cancel(void **state)
{
    (void)state;
    fake_run_t *fr = fake_new("sleep", NULL);
    fr->spec.sleep_ms = 60000;
    assert_int_equal(fake_start(&handler_sleep, fr), 0);
    event_base_loop(base, EVLOOP_ONCE);
    double t0 = now_s();
    handler_sleep.cancel(&fr->run);
    assert_int_equal(fr->done_calls, 0);
    wait_run(fr, 2);
    assert_true(now_s() - t0 < 1);
    assert_string_equal(fr->res.error, "cancelled");
    assert_false(fr->res.retryable);
    fake_free(fr);
}

static void test_sleep_many(void **state)
{
    (void)state;
    enum { N = 5000 };
    fake_run_t **frs = xcalloc(N, sizeof *frs);
    int target = done_total + N;
    for (int i = 0; i < N; i++) {
        frs[i] = fake_new(i % 2 ? "sleep" : "noop", NULL);
        frs[i]->spec.sleep_ms = i % 20;
        assert_int_equal(fake_start(i % 2 ? &handler_sleep : &handler_noop, frs[i]), 0);
    }
    loop_until(target, 10);
    for (int i = 0; i < N; i++) {
        assert_int_equal(frs[i]->done_calls, 1);
        assert_true(frs[i]->res.ok);
        fake_free(frs[i]);
    }
    free(frs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_output),
        cmocka_unit_test(test_no_output),
        cmocka_unit_test(test_output_tail_bounded),
        cmocka_unit_test(test_permanent_exit_code),
        cmocka_unit_test(test_output_exactly_at_limit),
        cmocka_unit_test(test_exit_code),
        cmocka_unit_test(test_killed_by_signal),
        cmocka_unit_test(test_signals_reset_in_child),
        cmocka_unit_test(test_agent_fds_not_leaked),
        cmocka_unit_test(test_stdin_is_dev_null),
        cmocka_unit_test(test_command_not_found),
        cmocka_unit_test(test_command_not_executable),
        cmocka_unit_test(test_empty_command),
        cmocka_unit_test(test_workdir),
        cmocka_unit_test(test_workdir_missing),
        cmocka_unit_test(test_env),
        cmocka_unit_test(test_env_allow_list),
        cmocka_unit_test(test_env_loader_vars_skipped),
        cmocka_unit_test(test_checkpoint_env_visible),
        cmocka_unit_test(test_checkpoint_lines),
        cmocka_unit_test(test_checkpoint_before_done),
        cmocka_unit_test(test_timeout_kills_group),
        cmocka_unit_test(test_timeout_escalates_to_sigkill),
        cmocka_unit_test(test_leader_exit_kills_leftovers),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_daemonized_children_die),
        cmocka_unit_test(test_daemonized_children_die_subreaper),
        cmocka_unit_test(test_unmarked_orphan_waits_for_idle),
        cmocka_unit_test(test_cancel_during_timeout),
        cmocka_unit_test(test_concurrent_runs),
        cmocka_unit_test(test_noop),
        cmocka_unit_test(test_noop_fail_first),
        cmocka_unit_test(test_noop_fail_always),
        cmocka_unit_test(test_noop_cancel),
        cmocka_unit_test(test_sleep),
        cmocka_unit_test(test_sleep_fail_first),
        cmocka_unit_test(test_sleep_cancel),
        cmocka_unit_test(test_sleep_many),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
