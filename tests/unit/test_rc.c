/* test_rc: the async Redis client against real redis-servers: the one named
 * by DEVSYS_TEST_REDIS_URL, plus private ones this test starts (to restart
 * them and to test AUTH/SELECT). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "rc.h"
#include "test_loop.h"

/* Private servers still running; teardown kills them if a test failed midway. */
static pid_t private_pids[4];

/* ------------------------------------------------------------ harness */

static const char *redis_url(void)
{
    const char *url = getenv("DEVSYS_TEST_REDIS_URL");
    if (!url || !*url)
        fail_msg("DEVSYS_TEST_REDIS_URL is not set: point it at a disposable redis-server, "
                 "e.g. redis://127.0.0.1:6379/0");
    return url;
}

static int setup(void **state)
{
    (void)state;
    loop_start();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof private_pids / sizeof private_pids[0]; i++) {
        if (private_pids[i] > 0) {
            kill(private_pids[i], SIGKILL);
            waitpid(private_pids[i], NULL, 0);
            private_pids[i] = 0;
        }
    }
    loop_stop();
    return 0;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

/* Starts a private redis-server (DEVSYS_TEST_REDIS_SERVER or redis-server
 * from PATH) on port; waits until it answers TCP. Returns its pid. */
static pid_t start_redis(int port, const char *password)
{
    const char *bin = getenv("DEVSYS_TEST_REDIS_SERVER");
    if (!bin || !*bin)
        bin = "redis-server";
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        const char *argv[16];
        int n = 0;
        argv[n++] = bin;
        argv[n++] = "--port";
        argv[n++] = portstr;
        argv[n++] = "--bind";
        argv[n++] = "127.0.0.1";
        argv[n++] = "--save";
        argv[n++] = "";
        argv[n++] = "--logfile";
        argv[n++] = "/dev/null";
        if (password) {
            argv[n++] = "--requirepass";
            argv[n++] = password;
        }
        argv[n] = NULL;
        execvp(bin, (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) {
        redisContext *c = redisConnect("127.0.0.1", port);
        int ok = c && !c->err;
        redisFree(c);
        if (ok) {
            for (size_t j = 0; j < sizeof private_pids / sizeof private_pids[0]; j++) {
                if (private_pids[j] == 0) {
                    private_pids[j] = pid;
                    break;
                }
            }
            return pid;
        }
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid)
            fail_msg("%s exited at start (status %d); set DEVSYS_TEST_REDIS_SERVER", bin, status);
        usleep(20000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    fail_msg("%s did not come up on port %d", bin, port);
    return -1;
}

static void stop_redis(pid_t pid)
{
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    for (size_t i = 0; i < sizeof private_pids / sizeof private_pids[0]; i++)
        if (private_pids[i] == pid)
            private_pids[i] = 0;
}

/* ------------------------------------------------------- collectors */

struct counts {
    int connects;
    int disconnects;
};

static void count_connect(rc_t *rc, void *arg)
{
    (void)rc;
    ((struct counts *)arg)->connects++;
}

static void count_disconnect(rc_t *rc, void *arg)
{
    (void)rc;
    ((struct counts *)arg)->disconnects++;
}

struct reply {
    int done;
    int null;
    int type;
    long long integer;
    char str[256];
    size_t len;
};

static void reply_cb(rc_t *rc, struct redisReply *r, void *arg)
{
    (void)rc;
    struct reply *out = arg;
    out->done++;
    out->null = r == NULL;
    if (!r)
        return;
    out->type = r->type;
    out->integer = r->integer;
    if (r->str) {
        out->len = r->len < sizeof out->str ? r->len : sizeof out->str - 1;
        memcpy(out->str, r->str, out->len);
        out->str[out->len] = '\0';
    }
}

static rc_t *connect_rc(const char *url, const char *name, struct counts *counts)
{
    rc_t *rc = rc_new(base, url, name);
    assert_non_null(rc);
    rc_on_connect(rc, count_connect, counts);
    rc_on_disconnect(rc, count_disconnect, counts);
    if (!run_until(&counts->connects, 1, 5000))
        fail_msg("could not connect to %s within 5 s", url);
    assert_true(rc_connected(rc));
    return rc;
}

/* -------------------------------------------------------------- tests */

static void test_url_parsing(void **state)
{
    (void)state;
    const char *bad[] = {"http://127.0.0.1", "redis://", "redis://:pw@", "redis://h:0",
                         "redis://h:70000", "redis://h:12x", "redis://h/abc", "redis://%zz@h",
                         "redis://[::1", "rediss://h"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rc_t *rc = rc_new(base, bad[i], "bad");
        if (rc)
            fail_msg("URL %s was accepted", bad[i]);
    }
    const char *good[] = {"redis://127.0.0.1:1", "redis://:p%40ss@127.0.0.1:1/2",
                          "redis://user:pw@127.0.0.1:1/0", "redis://[::1]:1/3", "redis://localhost:1"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        rc_t *rc = rc_new(base, good[i], "good");
        if (!rc)
            fail_msg("URL %s was rejected", good[i]);
        run_for(20); /* nothing listens on port 1: connect fails, retry is armed */
        assert_false(rc_connected(rc));
        rc_free(rc);
    }
}

static void test_commands_and_replies(void **state)
{
    (void)state;
    const char *url = redis_url();
    struct counts counts = {0, 0};
    rc_t *rc = rc_new(base, url, "test-basic");
    assert_non_null(rc);
    rc_on_connect(rc, count_connect, &counts);

    /* Still connecting: refused, and the callback must not run. */
    struct reply early = {0};
    assert_int_equal(rc_command(rc, reply_cb, &early, "PING"), -1);
    assert_int_equal(rc_pending(rc), 0);
    assert_true(run_until(&counts.connects, 1, 5000));
    assert_int_equal(early.done, 0);

    struct reply del = {0}, set = {0}, get = {0}, incr = {0}, bset = {0}, bget = {0};
    assert_int_equal(rc_command(rc, reply_cb, &del, "DEL %s %s", "rc:test:k", "rc:test:b"), 0);
    assert_int_equal(rc_command(rc, reply_cb, &set, "SET %s %s", "rc:test:k", "hello world"), 0);
    assert_int_equal(rc_command(rc, reply_cb, &get, "GET %s", "rc:test:k"), 0);
    assert_int_equal(rc_command(rc, reply_cb, &incr, "INCR %s", "rc:test:k"), 0);
    const char *argv[] = {"SET", "rc:test:b", "a\0b"};
    const size_t argvlen[] = {3, 9, 3};
    assert_int_equal(rc_command_argv(rc, reply_cb, &bset, 3, argv, argvlen), 0);
    const char *gargv[] = {"GET", "rc:test:b"};
    assert_int_equal(rc_command_argv(rc, reply_cb, &bget, 2, gargv, NULL), 0);
    assert_int_equal(rc_command(rc, NULL, NULL, "DEL %s", "rc:test:b"), 0); /* fire and forget */
    assert_int_equal(rc_pending(rc), 7);

    assert_true(run_until(&bget.done, 1, 5000));
    run_for(50);
    assert_int_equal(rc_pending(rc), 0);
    assert_int_equal(del.type, REDIS_REPLY_INTEGER);
    assert_int_equal(set.type, REDIS_REPLY_STATUS);
    assert_string_equal(set.str, "OK");
    assert_int_equal(get.type, REDIS_REPLY_STRING);
    assert_string_equal(get.str, "hello world");
    /* An error reply is delivered as is, not as NULL. */
    assert_int_equal(incr.done, 1);
    assert_false(incr.null);
    assert_int_equal(incr.type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(incr.str, "not an integer"));
    assert_int_equal(bget.len, 3);
    assert_memory_equal(bget.str, "a\0b", 3);
    assert_int_equal(counts.connects, 1);
    rc_free(rc);
}

struct seq {
    int next;
    int wrong;
};

static void seq_cb(rc_t *rc, struct redisReply *r, void *arg)
{
    (void)rc;
    struct seq *s = arg;
    s->next++;
    if (!r || r->type != REDIS_REPLY_INTEGER || r->integer != s->next)
        s->wrong++;
}

static void test_pipelined_commands(void **state)
{
    (void)state;
    struct counts counts = {0, 0};
    rc_t *rc = connect_rc(redis_url(), "test-pipeline", &counts);
    assert_int_equal(rc_command(rc, NULL, NULL, "DEL rc:test:seq"), 0);
    struct seq s = {0, 0};
    for (int i = 0; i < 10000; i++)
        assert_int_equal(rc_command(rc, seq_cb, &s, "INCR rc:test:seq"), 0);
    assert_int_equal(rc_pending(rc), 10001);
    assert_true(run_until(&s.next, 10000, 10000));
    assert_int_equal(s.wrong, 0);
    assert_int_equal(rc_pending(rc), 0);
    rc_free(rc);
}

struct killed {
    rc_t *rc;
    int done;
    int null;
    int connected_in_cb;
    int command_in_cb;
};

static void killed_cb(rc_t *rc, struct redisReply *r, void *arg)
{
    struct killed *k = arg;
    k->done++;
    k->null = r == NULL;
    k->connected_in_cb = rc_connected(rc);
    k->command_in_cb = rc_command(rc, NULL, NULL, "PING");
}

static void test_reconnect_after_client_kill(void **state)
{
    (void)state;
    const char *url = redis_url();
    struct counts a = {0, 0}, b = {0, 0};
    rc_t *victim = connect_rc(url, "test-victim", &a);
    rc_t *killer = connect_rc(url, "test-killer", &b);

    struct reply id = {0};
    assert_int_equal(rc_command(victim, reply_cb, &id, "CLIENT ID"), 0);
    assert_true(run_until(&id.done, 1, 5000));
    assert_int_equal(id.type, REDIS_REPLY_INTEGER);

    /* A blocked command is pending when the connection dies. */
    struct killed k = {victim, 0, 0, -1, 0};
    assert_int_equal(rc_command(victim, killed_cb, &k, "BLPOP rc:test:nothing 30"), 0);
    run_for(50);
    assert_int_equal(rc_pending(victim), 1);
    /* By id, not TYPE normal: the shared server may serve other tests. */
    struct reply kill = {0};
    assert_int_equal(rc_command(killer, reply_cb, &kill, "CLIENT KILL ID %lld", id.integer), 0);
    assert_true(run_until(&k.done, 1, 5000));
    assert_true(run_until(&kill.done, 1, 5000));
    assert_true(k.null);
    assert_int_equal(k.connected_in_cb, 0);
    assert_int_equal(k.command_in_cb, -1);
    assert_int_equal(kill.type, REDIS_REPLY_INTEGER);
    assert_int_equal(kill.integer, 1);
    assert_int_equal(rc_pending(victim), 0);

    assert_true(run_until(&a.connects, 2, 5000));
    assert_int_equal(a.disconnects, 1);
    struct reply ping = {0};
    assert_int_equal(rc_command(victim, reply_cb, &ping, "PING"), 0);
    assert_true(run_until(&ping.done, 1, 5000));
    assert_string_equal(ping.str, "PONG");
    assert_int_equal(b.disconnects, 0);
    rc_free(victim);
    rc_free(killer);
}

static void test_auth_select_restart(void **state)
{
    (void)state;
    redis_url(); /* the suite needs a configured server; fail early and clearly */
    int port = free_port();
    pid_t pid = start_redis(port, "s3cr@t");
    char url[128], url_user[128], url_bad[128];
    snprintf(url, sizeof url, "redis://:s3cr%%40t@127.0.0.1:%d/3", port);
    snprintf(url_user, sizeof url_user, "redis://default:s3cr%%40t@127.0.0.1:%d", port);
    snprintf(url_bad, sizeof url_bad, "redis://:wrong@127.0.0.1:%d/3", port);

    struct counts a = {0, 0}, b = {0, 0}, bad = {0, 0};
    rc_t *rc = connect_rc(url, "test-auth", &a);
    rc_t *admin = connect_rc(url_user, "test-admin", &b);
    rc_t *wrong = rc_new(base, url_bad, "test-wrong-password");
    assert_non_null(wrong);
    rc_on_connect(wrong, count_connect, &bad);

    struct reply info = {0};
    assert_int_equal(rc_command(rc, reply_cb, &info, "CLIENT INFO"), 0);
    assert_true(run_until(&info.done, 1, 5000));
    assert_non_null(strstr(info.str, " db=3 "));

    /* Every normal client dropped at once (this server is ours alone). */
    struct reply kill = {0};
    assert_int_equal(rc_command(admin, reply_cb, &kill, "CLIENT KILL TYPE normal"), 0);
    assert_true(run_until(&a.connects, 2, 5000));
    assert_int_equal(a.disconnects, 1);
    assert_true(kill.integer >= 1);

    /* Server gone: commands are refused while it is away. */
    stop_redis(pid);
    assert_true(run_until(&a.disconnects, 2, 5000));
    assert_false(rc_connected(rc));
    struct reply refused = {0};
    assert_int_equal(rc_command(rc, reply_cb, &refused, "PING"), -1);
    run_for(700); /* a few failed attempts, backing off */
    assert_int_equal(a.connects, 2);

    pid = start_redis(port, "s3cr@t");
    assert_true(run_until(&a.connects, 3, 8000));
    assert_true(run_until(&b.connects, 2, 8000)); /* CLIENT KILL skipped the killer itself */
    assert_int_equal(b.disconnects, 1);
    memset(&info, 0, sizeof info);
    assert_int_equal(rc_command(rc, reply_cb, &info, "CLIENT INFO"), 0);
    assert_true(run_until(&info.done, 1, 5000));
    assert_non_null(strstr(info.str, " db=3 "));

    /* A wrong password never reaches on_connect and is retried quietly. */
    assert_int_equal(bad.connects, 0);
    assert_false(rc_connected(wrong));

    rc_free(wrong);
    rc_free(admin);
    rc_free(rc);
    stop_redis(pid);
}

struct freer {
    rc_t *rc;
    int replies;
    int nulls;
    int free_at;
};

static void freer_cb(rc_t *rc, struct redisReply *r, void *arg)
{
    struct freer *f = arg;
    if (r)
        f->replies++;
    else
        f->nulls++;
    if (f->replies + f->nulls == f->free_at)
        rc_free(rc);
}

static void test_free_from_callback(void **state)
{
    (void)state;
    struct counts c = {0, 0};
    rc_t *rc = connect_rc(redis_url(), "test-free-cb", &c);
    struct freer f = {rc, 0, 0, 1};
    for (int i = 0; i < 100; i++)
        assert_int_equal(rc_command(rc, freer_cb, &f, "PING"), 0);
    int total = 0;
    long deadline = now_ms() + 5000;
    while ((total = f.replies + f.nulls) < 100 && now_ms() < deadline)
        event_base_loop(base, EVLOOP_ONCE);
    /* Every callback ran exactly once: one reply, the rest NULL from rc_free. */
    assert_int_equal(f.replies, 1);
    assert_int_equal(f.nulls, 99);
    run_for(50); /* the deferred free runs here; ASan checks the rest */
}

static void test_free_with_pending(void **state)
{
    (void)state;
    struct counts c = {0, 0};
    rc_t *rc = connect_rc(redis_url(), "test-free-pending", &c);
    struct freer f = {rc, 0, 0, -1};
    for (int i = 0; i < 1000; i++)
        assert_int_equal(rc_command(rc, freer_cb, &f, "PING"), 0);
    assert_int_equal(rc_pending(rc), 1000);
    rc_free(rc);
    assert_int_equal(f.nulls, 1000);
    assert_int_equal(f.replies, 0);
    run_for(20);
}

static void free_on_disconnect(rc_t *rc, void *arg)
{
    (void)arg;
    rc_free(rc);
}

static void test_free_from_disconnect_hook(void **state)
{
    (void)state;
    redis_url();
    int port = free_port();
    pid_t pid = start_redis(port, NULL);
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
    struct counts c = {0, 0};
    rc_t *rc = connect_rc(url, "test-free-hook", &c);
    rc_on_disconnect(rc, free_on_disconnect, NULL);
    struct freer f = {rc, 0, 0, -1};
    assert_int_equal(rc_command(rc, freer_cb, &f, "BLPOP rc:test:nothing 30"), 0);
    run_for(50);
    stop_redis(pid);
    assert_true(run_until(&c.disconnects, 1, 5000));
    assert_int_equal(f.nulls, 1);
    run_for(300); /* no reconnect attempt may touch the freed client */
}

static void free_on_connect(rc_t *rc, void *arg)
{
    (*(int *)arg)++;
    rc_command(rc, NULL, NULL, "PING"); /* pending when the free lands */
    rc_free(rc);
}

static void test_free_while_connecting_and_from_hook(void **state)
{
    (void)state;
    const char *url = redis_url();
    rc_t *rc = rc_new(base, url, "test-free-early");
    assert_non_null(rc);
    rc_free(rc); /* TCP connect still in progress */
    run_for(20);

    int hooked = 0;
    rc = rc_new(base, url, "test-free-hook");
    assert_non_null(rc);
    rc_on_connect(rc, free_on_connect, &hooked);
    assert_true(run_until(&hooked, 1, 5000));
    run_for(50); /* the deferred free runs here */
    assert_int_equal(hooked, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_url_parsing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commands_and_replies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pipelined_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconnect_after_client_kill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_select_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_from_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_with_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_from_disconnect_hook, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_while_connecting_and_from_hook, setup, teardown),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
