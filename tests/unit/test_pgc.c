/* test_pgc: the async PostgreSQL client against the real server named by
 * DEVSYS_TEST_DATABASE_URL: pipelining, errors inside the pipeline,
 * prepared-statement reuse (and pgc_query_once, never prepared), reconnect after pg_terminate_backend, free,
 * per-query deadlines and failing fast while the server is unreachable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "pgc.h"
#include "test_loop.h"


/* ------------------------------------------------------------ harness */

static const char *db_url(void)
{
    const char *url = getenv("DEVSYS_TEST_DATABASE_URL");
    if (!url || !*url)
        fail_msg("DEVSYS_TEST_DATABASE_URL is not set: point it at a disposable PostgreSQL "
                 "database, e.g. postgresql://postgres@127.0.0.1:5432/postgres");
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
    loop_stop();
    return 0;
}

/* ------------------------------------------------------- collectors */

struct result {
    int done;
    int null;
    int status;
    char val[128];
    char err[512];
};

static void result_cb(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct result *r = arg;
    r->done++;
    r->null = res == NULL;
    r->status = res ? (int)PQresultStatus(res) : -1;
    assert_non_null(err);
    snprintf(r->err, sizeof r->err, "%s", err);
    r->val[0] = '\0';
    if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0) {
        for (int c = 0; c < PQnfields(res); c++) {
            size_t n = strlen(r->val);
            snprintf(r->val + n, sizeof r->val - n, "%s%s", c ? "|" : "",
                     PQgetisnull(res, 0, c) ? "NULL" : PQgetvalue(res, 0, c));
        }
    }
}

static void count_connect(pgc_t *pg, void *arg)
{
    (void)pg;
    (*(int *)arg)++;
}

static pgc_t *connect_pg(const char *name, int *connects)
{
    pgc_t *pg = pgc_new(base, db_url(), name);
    assert_non_null(pg);
    pgc_on_connect(pg, count_connect, connects);
    if (!run_until(connects, 1, 5000))
        fail_msg("could not connect to %s within 5 s", db_url());
    assert_true(pgc_ready(pg));
    return pg;
}

/* Runs one query to completion and returns its result. */
static struct result query1(pgc_t *pg, const char *sql, int n, const char *const *params)
{
    struct result r;
    memset(&r, 0, sizeof r);
    pgc_query(pg, sql, n, params, result_cb, &r);
    if (!run_until(&r.done, 1, 10000))
        fail_msg("no result within 10 s for %s", sql);
    return r;
}

/* -------------------------------------------------------------- tests */

static void test_bad_conninfo(void **state)
{
    (void)state;
    assert_null(pgc_new(base, "host='unterminated", "bad"));
    assert_null(pgc_new(base, "no equals sign", "bad"));
    assert_null(pgc_new(base, "postgresql://h/db?nosuchoption=1", "bad"));
}

static void test_queries_and_params(void **state)
{
    (void)state;
    int connects = 0;
    pgc_t *pg = pgc_new(base, db_url(), "pgc-test-basic");
    assert_non_null(pg);
    pgc_on_connect(pg, count_connect, &connects);

    /* Queued before the connection is up; runs once it is. */
    struct result early = {0};
    const char *p1[] = {"41", NULL};
    pgc_query(pg, "SELECT $1::int + 1, $2::text IS NULL", 2, p1, result_cb, &early);
    assert_false(pgc_ready(pg));
    assert_int_equal(pgc_pending(pg), 1);
    assert_true(run_until(&early.done, 1, 5000));
    assert_int_equal(connects, 1);
    assert_string_equal(early.err, "");
    assert_string_equal(early.val, "42|t");
    assert_int_equal(pgc_pending(pg), 0);

    struct result r = query1(pg, "SELECT current_setting('application_name')", 0, NULL);
    assert_string_equal(r.val, "pgc-test-basic");

    /* DDL and DML through the same prepared path. */
    r = query1(pg, "CREATE TEMP TABLE pgc_t (id int PRIMARY KEY, s text)", 0, NULL);
    assert_string_equal(r.err, "");
    assert_int_equal(r.status, PGRES_COMMAND_OK);
    const char *p2[] = {"7", "it's \"quoted\"\n"};
    r = query1(pg, "INSERT INTO pgc_t VALUES ($1, $2) RETURNING s", 2, p2);
    assert_string_equal(r.err, "");
    assert_string_equal(r.val, p2[1]);
    /* Each query is its own transaction: a failed one leaves no trace. */
    r = query1(pg, "INSERT INTO pgc_t VALUES ($1, $2)", 2, p2);
    assert_non_null(strstr(r.err, "duplicate key"));
    assert_int_equal(r.status, PGRES_FATAL_ERROR);
    assert_null(strchr(r.err, '\n'));
    r = query1(pg, "SELECT count(*) FROM pgc_t", 0, NULL);
    assert_string_equal(r.val, "1");
    pgc_free(pg);
}

static void test_errors_do_not_break_pipeline(void **state)
{
    (void)state;
    int connects = 0;
    pgc_t *pg = connect_pg("pgc-test-errors", &connects);
    struct result r[8];
    memset(r, 0, sizeof r);
    const char *zero[] = {"0"};
    const char *abc[] = {"abc"};
    const char *three[] = {"3"};
    /* All sent back to back in one pipeline. */
    pgc_query(pg, "SELECT 1", 0, NULL, result_cb, &r[0]);
    pgc_query(pg, "SELEC 2", 0, NULL, result_cb, &r[1]);          /* prepare fails */
    pgc_query(pg, "SELECT $1::int", 1, three, result_cb, &r[2]);
    pgc_query(pg, "SELECT 10 / $1::int", 1, zero, result_cb, &r[3]); /* execute fails */
    pgc_query(pg, "SELECT $1::int", 1, abc, result_cb, &r[4]);       /* bind fails */
    pgc_query(pg, "SELEC 2", 0, NULL, result_cb, &r[5]);          /* same bad SQL, in flight */
    pgc_query(pg, "", 0, NULL, result_cb, &r[6]);                 /* empty query */
    pgc_query(pg, "SELECT 'after'", 0, NULL, result_cb, &r[7]);
    assert_true(run_until(&r[7].done, 1, 5000));
    for (int i = 0; i < 8; i++) {
        assert_int_equal(r[i].done, 1);
        assert_false(r[i].null);
        assert_null(strchr(r[i].err, '\n'));
    }
    assert_string_equal(r[0].val, "1");
    assert_non_null(strstr(r[1].err, "syntax error"));
    assert_int_equal(r[1].status, PGRES_FATAL_ERROR);
    assert_string_equal(r[2].val, "3");
    assert_string_equal(r[2].err, "");
    assert_string_equal(r[3].err, "division by zero");
    assert_non_null(strstr(r[4].err, "invalid input syntax"));
    assert_non_null(strstr(r[5].err, "syntax error"));
    assert_true(r[6].err[0] != '\0');
    assert_string_equal(r[7].val, "after");
    assert_string_equal(r[7].err, "");

    /* The failed statement is prepared afresh (and fails the same way). */
    struct result again = query1(pg, "SELEC 2", 0, NULL);
    assert_non_null(strstr(again.err, "syntax error"));
    pgc_free(pg);
}

struct seq {
    int next;
    int wrong;
};

static void seq_cb(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct seq *s = arg;
    if (!res || err[0] || atoi(PQgetvalue(res, 0, 0)) != s->next)
        s->wrong++;
    s->next++;
}

static void test_ten_thousand_in_flight(void **state)
{
    (void)state;
    int connects = 0;
    pgc_t *pg = connect_pg("pgc-test-many", &connects);
    struct seq s = {0, 0};
    char buf[16];
    for (int i = 0; i < 10000; i++) {
        snprintf(buf, sizeof buf, "%d", i);
        const char *p[] = {buf}; /* copied by pgc_query */
        pgc_query(pg, "SELECT $1::int", 1, p, seq_cb, &s);
    }
    assert_int_equal(pgc_pending(pg), 10000);
    assert_true(run_until(&s.next, 10000, 30000));
    assert_int_equal(s.wrong, 0);
    assert_int_equal(pgc_pending(pg), 0);
    pgc_free(pg);
}

static void test_prepared_statement_reuse(void **state)
{
    (void)state;
    int connects = 0;
    pgc_t *pg = connect_pg("pgc-test-prepared", &connects);
    const char *probe = "SELECT 42 AS reuse_probe";
    for (int i = 0; i < 3; i++)
        assert_string_equal(query1(pg, probe, 0, NULL).val, "42");
    struct result burst[3];
    memset(burst, 0, sizeof burst);
    for (int i = 0; i < 3; i++)
        pgc_query(pg, probe, 0, NULL, result_cb, &burst[i]);
    assert_true(run_until(&burst[2].done, 1, 5000));
    const char *p[] = {probe};
    struct result r = query1(pg,
                             "SELECT count(*), min(name) FROM pg_prepared_statements "
                             "WHERE statement = $1",
                             1, p);
    assert_string_equal(r.err, "");
    assert_string_equal(r.val, "1|s1");
    pgc_free(pg);
}

/* pgc_query_once runs the unnamed statement: planned for its parameters each
 * time, never prepared, and it leaves the prepared ones alone. */
static void test_query_once_not_prepared(void **state)
{
    (void)state;
    int connects = 0;
    pgc_t *pg = connect_pg("pgc-test-once", &connects);
    const char *probe = "SELECT $1::int + 1 AS once_probe";
    const char *v[] = {"41"};
    struct result r[3];
    memset(r, 0, sizeof r);
    for (int i = 0; i < 3; i++)
        pgc_query_once(pg, probe, 1, v, result_cb, &r[i]);
    assert_true(run_until(&r[2].done, 1, 5000));
    for (int i = 0; i < 3; i++)
        assert_string_equal(r[i].val, "42");
    const char *p[] = {probe};
    struct result n = query1(pg, "SELECT count(*) FROM pg_prepared_statements WHERE statement = $1", 1, p);
    assert_string_equal(n.err, "");
    assert_string_equal(n.val, "0");
    pgc_free(pg);
}

struct chain {
    int done;
    int limit;
    int wrong;
};

static void chain_cb(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    struct chain *c = arg;
    if (!res || err[0] || atoi(PQgetvalue(res, 0, 0)) != c->done)
        c->wrong++;
    c->done++;
    if (c->done < c->limit) {
        char buf[16];
        snprintf(buf, sizeof buf, "%d", c->done);
        const char *p[] = {buf};
        pgc_query(pg, "SELECT $1::int", 1, p, chain_cb, c);
    }
}

static void test_reentrant_query_from_callback(void **state)
{
    (void)state;
    int connects = 0;
    pgc_t *pg = connect_pg("pgc-test-reentrant", &connects);
    struct chain c = {0, 300, 0};
    const char *p[] = {"0"};
    pgc_query(pg, "SELECT $1::int", 1, p, chain_cb, &c);
    assert_true(run_until(&c.done, 300, 10000));
    assert_int_equal(c.wrong, 0);
    run_for(20);
    assert_int_equal(c.done, 300);
    assert_int_equal(pgc_pending(pg), 0);
    pgc_free(pg);
}

struct victim {
    int done;
    int null;
    int ready_in_cb;
    char err[512];
    struct result after[3];
};

/* The in-flight query's callback queues more work while disconnected. */
static void victim_cb(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    struct victim *v = arg;
    v->done++;
    v->null = res == NULL;
    v->ready_in_cb = pgc_ready(pg);
    snprintf(v->err, sizeof v->err, "%s", err);
    static const char *p[] = {"21"};
    pgc_query(pg, "SELECT 42 AS reuse_probe", 0, NULL, result_cb, &v->after[0]);
    pgc_query(pg, "SELECT $1::int * 2", 1, p, result_cb, &v->after[1]);
    pgc_query(pg, "SELECT pg_backend_pid()", 0, NULL, result_cb, &v->after[2]);
}

static void test_reconnect_after_terminate(void **state)
{
    (void)state;
    int connects = 0, admin_connects = 0;
    pgc_t *pg = connect_pg("pgc-test-victim", &connects);
    pgc_t *admin = connect_pg("pgc-test-admin", &admin_connects);

    struct result pid = query1(pg, "SELECT pg_backend_pid()", 0, NULL);
    assert_string_equal(query1(pg, "SELECT 42 AS reuse_probe", 0, NULL).val, "42");

    struct victim v;
    memset(&v, 0, sizeof v);
    pgc_query(pg, "SELECT pg_sleep(30)", 0, NULL, victim_cb, &v);
    run_for(200);
    assert_int_equal(v.done, 0);
    const char *p[] = {pid.val};
    struct result kill = query1(admin, "SELECT pg_terminate_backend($1::int)", 1, p);
    assert_string_equal(kill.val, "t");

    assert_true(run_until(&v.done, 1, 5000));
    assert_true(v.null);
    assert_int_equal(v.ready_in_cb, 0);
    assert_memory_equal(v.err, "connection lost: ", strlen("connection lost: "));
    assert_null(strchr(v.err, '\n'));

    /* Queued while down; sent after the reconnect, statements re-prepared. */
    assert_true(run_until(&v.after[2].done, 1, 8000));
    assert_int_equal(connects, 2);
    assert_string_equal(v.after[0].err, "");
    assert_string_equal(v.after[0].val, "42");
    assert_string_equal(v.after[1].val, "42");
    assert_true(v.after[2].val[0] != '\0');
    assert_string_not_equal(v.after[2].val, pid.val);
    assert_int_equal(admin_connects, 1);
    pgc_free(admin);
    pgc_free(pg);
}

struct tally {
    int results;
    int nulls;
    int free_at; /* call pgc_free from the callback that makes this total */
    pgc_t *pg;
    char last_err[128];
};

static void tally_cb(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    struct tally *t = arg;
    if (res)
        t->results++;
    else
        t->nulls++;
    snprintf(t->last_err, sizeof t->last_err, "%s", err);
    if (t->results + t->nulls == t->free_at)
        pgc_free(pg);
}

static void test_free_with_pending(void **state)
{
    (void)state;
    int connects = 0;
    pgc_t *pg = connect_pg("pgc-test-free", &connects);
    struct tally t = {0, 0, -1, pg, ""};
    for (int i = 0; i < 3000; i++)
        pgc_query(pg, "SELECT pg_sleep(0.0001)", 0, NULL, tally_cb, &t);
    run_until(&t.results, 1, 5000);
    assert_true(t.results > 0);
    assert_true(pgc_pending(pg) > 0); /* some sent, some still queued */
    pgc_free(pg);
    assert_int_equal(t.results + t.nulls, 3000);
    assert_true(t.nulls > 0);
    assert_string_equal(t.last_err, "client closed");
    run_for(50);
}

static void test_free_from_callback(void **state)
{
    (void)state;
    int connects = 0;
    pgc_t *pg = connect_pg("pgc-test-free-cb", &connects);
    struct tally t = {0, 0, 10, pg, ""};
    for (int i = 0; i < 100; i++)
        pgc_query(pg, "SELECT 1", 0, NULL, tally_cb, &t);
    int total = 0;
    long deadline = now_ms() + 5000;
    while ((total = t.results + t.nulls) < 100 && now_ms() < deadline)
        event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(t.results, 10);
    assert_int_equal(t.nulls, 90);
    run_for(50); /* the loop must not touch the freed client; ASan checks */
}

static void test_never_connected_and_queue_bound(void **state)
{
    (void)state;
    db_url();
    /* Nothing listens on port 1: queries wait, bounded, and fail on free. */
    pgc_t *pg = pgc_new(base, "postgresql://postgres@127.0.0.1:1/postgres", "pgc-test-down");
    assert_non_null(pg);
    struct tally t = {0, 0, -1, pg, ""};
    for (int i = 0; i < 100000; i++)
        pgc_query(pg, "SELECT 1", 0, NULL, tally_cb, &t);
    assert_int_equal(t.nulls, 0);
    pgc_query(pg, "SELECT 1", 0, NULL, tally_cb, &t);
    assert_int_equal(t.nulls, 1);
    assert_string_equal(t.last_err, "query queue full");
    run_for(400); /* several failed attempts with backoff */
    assert_false(pgc_ready(pg));
    assert_int_equal(pgc_pending(pg), 100000);
    assert_int_equal(t.results, 0);
    pgc_free(pg);
    assert_int_equal(t.nulls, 100001);
    assert_string_equal(t.last_err, "client closed");
}

struct big {
    int done;
    int wrong;
};

static void big_cb(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct big *b = arg;
    b->done++;
    if (!res || err[0] || strcmp(PQgetvalue(res, 0, 0), "262144") != 0)
        b->wrong++;
}

/* 300 x 256 KiB parameters overrun the socket buffers, so libpq's flush
 * comes back partial and the rest must go out on EV_WRITE. */
static void test_large_params_backpressure(void **state)
{
    (void)state;
    int connects = 0;
    pgc_t *pg = connect_pg("pgc-test-big", &connects);
    char *payload = malloc(262145);
    assert_non_null(payload);
    memset(payload, 'x', 262144);
    payload[262144] = '\0';
    struct big b = {0, 0};
    const char *p[] = {payload};
    for (int i = 0; i < 300; i++)
        pgc_query(pg, "SELECT length($1)", 1, p, big_cb, &b);
    free(payload);
    assert_true(run_until(&b.done, 300, 30000));
    assert_int_equal(b.wrong, 0);
    pgc_free(pg);
}

static void free_on_connect(pgc_t *pg, void *arg)
{
    (*(int *)arg)++;
    pgc_free(pg);
}

static void test_free_while_connecting_and_from_hook(void **state)
{
    (void)state;
    struct result r = {0};
    pgc_t *pg = pgc_new(base, db_url(), "pgc-test-free-early");
    assert_non_null(pg);
    pgc_query(pg, "SELECT 1", 0, NULL, result_cb, &r);
    pgc_free(pg); /* still connecting */
    assert_int_equal(r.done, 1);
    assert_true(r.null);
    assert_string_equal(r.err, "client closed");

    int hooked = 0;
    memset(&r, 0, sizeof r);
    pg = pgc_new(base, db_url(), "pgc-test-free-hook");
    assert_non_null(pg);
    pgc_on_connect(pg, free_on_connect, &hooked);
    pgc_query(pg, "SELECT 1", 0, NULL, result_cb, &r);
    assert_true(run_until(&hooked, 1, 5000));
    assert_int_equal(r.done, 1);
    assert_true(r.null);
    run_for(50);
}

/* ------------------------------------------------------------ deadlines */

/* A TCP listener that never accepts: connects succeed (the kernel's
 * backlog) and the startup packet is never answered, like a SIGSTOPped
 * server. Returns the socket; *port gets its port. */
static int blackhole(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 16), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* A query that waits for a connection past its deadline is dropped from the
 * queue and failed; it never reaches the server. */
static void test_deadline_unsent_query_dropped(void **state)
{
    (void)state;
    int port;
    int lfd = blackhole(&port);
    char url[128];
    snprintf(url, sizeof url, "postgresql://postgres@127.0.0.1:%d/postgres?sslmode=disable", port);
    pgc_t *pg = pgc_new(base, url, "pgc-test-blackhole");
    assert_non_null(pg);
    pgc_set_timeout(pg, 300);
    struct result r = {0};
    long t0 = now_ms();
    pgc_query(pg, "INSERT INTO never_sent_marker VALUES (1)", 0, NULL, result_cb, &r);
    assert_int_equal(r.done, 0); /* never inside pgc_query */
    assert_true(run_until(&r.done, 1, 3000));
    long took = now_ms() - t0;
    assert_true(took >= 250 && took < 1500);
    assert_true(r.null);
    assert_true(pgc_err_not_sent(r.err));
    assert_non_null(strstr(r.err, "timeout"));
    assert_int_equal(pgc_pending(pg), 0);
    /* What the client wrote: a startup packet, never the query. */
    int cfd = accept(lfd, NULL, NULL);
    assert_true(cfd >= 0);
    fcntl(cfd, F_SETFL, O_NONBLOCK);
    char buf[4096];
    ssize_t n = read(cfd, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = '\0';
    assert_true(n > 0);
    assert_null(memmem(buf, (size_t)n, "never_sent_marker", 17));
    close(cfd);
    pgc_free(pg);
    close(lfd);
    run_for(20);
}

/* Once a connect attempt has failed, queries fail on the next loop
 * iteration instead of waiting for the deadline. */
static void test_deadline_fail_fast_while_down(void **state)
{
    (void)state;
    db_url();
    pgc_t *pg = pgc_new(base, "postgresql://postgres@127.0.0.1:1/postgres", "pgc-test-refused");
    assert_non_null(pg);
    pgc_set_timeout(pg, 5000);
    long deadline = now_ms() + 3000;
    while (!pgc_down(pg) && now_ms() < deadline)
        event_base_loop(base, EVLOOP_ONCE);
    assert_true(pgc_down(pg));
    struct result r = {0};
    long t0 = now_ms();
    pgc_query(pg, "SELECT 1", 0, NULL, result_cb, &r);
    assert_int_equal(r.done, 0);
    assert_true(run_until(&r.done, 1, 1000));
    assert_true(now_ms() - t0 < 200);
    assert_true(r.null);
    assert_true(pgc_err_not_sent(r.err));
    assert_non_null(strstr(r.err, "postgres unavailable: "));
    assert_null(strchr(r.err, '\n'));
    assert_int_equal(pgc_pending(pg), 0);
    pgc_free(pg);
}

/* A sent query without an answer by its deadline fails; the connection is
 * replaced (the statement is not cancelled in place) and later queries run. */
static void test_deadline_sent_query_times_out(void **state)
{
    (void)state;
    int connects = 0;
    pgc_t *pg = connect_pg("pgc-test-deadline", &connects);
    pgc_set_timeout(pg, 400);
    struct result pid = query1(pg, "SELECT pg_backend_pid()", 0, NULL);
    assert_string_equal(pid.err, "");
    struct result slow = {0}, behind = {0};
    long t0 = now_ms();
    pgc_query(pg, "SELECT pg_sleep(5)", 0, NULL, result_cb, &slow);
    pgc_query(pg, "SELECT 2", 0, NULL, result_cb, &behind);
    assert_true(run_until(&slow.done, 1, 3000));
    long took = now_ms() - t0;
    assert_true(took >= 350 && took < 1500);
    assert_true(slow.null);
    assert_false(pgc_err_not_sent(slow.err));
    assert_string_equal(slow.err, "timeout: no answer within 400 ms");
    assert_int_equal(behind.done, 1); /* in flight on the same connection */
    assert_true(behind.null);
    assert_memory_equal(behind.err, "connection lost: ", strlen("connection lost: "));
    assert_false(pgc_down(pg));
    struct result again = query1(pg, "SELECT pg_backend_pid()", 0, NULL);
    assert_string_equal(again.err, "");
    assert_string_not_equal(again.val, pid.val);
    assert_int_equal(connects, 2);
    pgc_free(pg);
}

/* Without pgc_set_timeout nothing changes: queries wait for the server. */
static void test_no_deadline_by_default(void **state)
{
    (void)state;
    int port;
    int lfd = blackhole(&port);
    char url[128];
    snprintf(url, sizeof url, "postgresql://postgres@127.0.0.1:%d/postgres?sslmode=disable", port);
    pgc_t *pg = pgc_new(base, url, "pgc-test-nodeadline");
    assert_non_null(pg);
    struct result r = {0};
    pgc_query(pg, "SELECT 1", 0, NULL, result_cb, &r);
    run_for(600);
    assert_int_equal(r.done, 0);
    assert_int_equal(pgc_pending(pg), 1);
    pgc_free(pg);
    assert_int_equal(r.done, 1);
    assert_string_equal(r.err, "client closed");
    close(lfd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bad_conninfo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queries_and_params, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors_do_not_break_pipeline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ten_thousand_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prepared_statement_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_once_not_prepared, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reentrant_query_from_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconnect_after_terminate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_with_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_from_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_never_connected_and_queue_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_params_backpressure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_while_connecting_and_from_hook, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline_unsent_query_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline_fail_fast_while_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline_sent_query_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_deadline_by_default, setup, teardown),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
