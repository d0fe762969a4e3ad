/* devsys-bench: end-to-end throughput and latency of noop tasks. Pushes tasks
 * (raw XADD, HTTP batches, or a steady rate), waits until PostgreSQL shows them
 * finished, and reports figures computed by PostgreSQL from the task rows. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "xalloc.h"

#define STREAM_BATCH 1000   /* XADDs per pipelined round trip */
#define HTTP_BATCH 500      /* specs per POST /v1/tasks */
#define HTTP_CONNS 4        /* keep-alive connections, one request in flight each */
#define MAX_PIDS 64

static const char usage_text[] =
    "usage: devsys-bench [options] stream N        XADD N hand-pushed noop entries, pipelined\n"
    "       devsys-bench [options] http N          POST N noop specs, 500 per request, 4 in flight\n"
    "       devsys-bench [options] rate R SECONDS  XADD one noop every 1/R s for SECONDS\n"
    "Then waits until PostgreSQL shows every task finished and prints tasks, elapsed time,\n"
    "tasks/s (first submit to last finished_at), submit rate, p50/p90/p99/max latency\n"
    "(created_at to finished_at) and the agents' peak RSS.\n"
    "options:\n"
    "  --agent-pids P1,P2  agents whose peak RSS (VmHWM) to report; reset at start when allowed\n"
    "  --queue Q           queue to push to (default noop)\n"
    "  --prefix P          Redis key prefix (default $DEVSYS_PREFIX or devsys)\n"
    "  --wait S            give up waiting for completion after S seconds (default 300)\n"
    "environment: DEVSYS_REDIS_URL (redis://127.0.0.1:6379/0), DEVSYS_DATABASE_URL,\n"
    "  DEVSYS_URL (http://127.0.0.1:8080; several managers: comma-separated, the http\n"
    "  mode's connections go to them in turn), DEVSYS_TOKEN\n"
    "The last line is machine-readable: RESULT mode=... tasks=... tasks_per_s=... p99_ms=...\n";

struct bench {
    const char *mode;
    long n;                 /* tasks to submit */
    double rate;            /* rate mode: tasks per second */
    const char *queue;
    const char *prefix;
    double wait_s;
    int pids[MAX_PIDS];
    int npids;
    int hwm_reset;          /* VmHWM was reset for every pid */
    PGconn *pg;
    char start[64];         /* PostgreSQL now() truncated to ms, timestamptz text */
    double submit_t0, submit_t1;  /* wall clock, seconds since the epoch */
};

static _Noreturn void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static _Noreturn void die(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* libpq messages end in a newline; one error, one line. */
    for (size_t n = strlen(msg); n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '); n--)
        msg[n - 1] = '\0';
    fprintf(stderr, "devsys-bench: %s\n", msg);
    exit(1);
}

static double now_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && *v ? v : def;
}

/* ---- PostgreSQL --------------------------------------------------------- */

/* Runs a query expected to return rows; caller PQclear's. Dies on error. */
static PGresult *pg_query(PGconn *pg, const char *sql, int nparams, const char *const *params)
{
    PGresult *res = PQexecParams(pg, sql, nparams, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        die("query failed: %s (%s)", PQerrorMessage(pg), sql);
    return res;
}

static long count_finished(struct bench *b)
{
    const char *params[] = { b->start };
    PGresult *res = pg_query(b->pg,
        "SELECT count(*) FROM tasks WHERE kind = 'noop' AND created_at >= $1::timestamptz"
        " AND state IN ('succeeded', 'failed', 'dead')", 1, params);
    long n = atol(PQgetvalue(res, 0, 0));
    PQclear(res);
    return n;
}

/* On a timeout the state breakdown says where the tasks got stuck. */
static void print_states(struct bench *b)
{
    const char *params[] = { b->start };
    PGresult *res = pg_query(b->pg,
        "SELECT state, count(*) FROM tasks WHERE kind = 'noop' AND created_at >= $1::timestamptz"
        " GROUP BY state ORDER BY state", 1, params);
    fputs("devsys-bench: task states since the start:", stderr);
    for (int i = 0; i < PQntuples(res); i++)
        fprintf(stderr, " %s %s", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
    fputs(PQntuples(res) ? "\n" : " no rows (is an agent consuming the queue?)\n", stderr);
    PQclear(res);
}

static void wait_done(struct bench *b)
{
    double t0 = now_wall(), last_report = t0;
    long done;
    while ((done = count_finished(b)) < b->n) {
        double t = now_wall();
        if (t - t0 > b->wait_s) {
            fprintf(stderr, "devsys-bench: gave up after %.0f s: %ld of %ld tasks finished\n",
                    b->wait_s, done, b->n);
            print_states(b);
            exit(1);
        }
        if (t - last_report >= 5) {
            fprintf(stderr, "devsys-bench: waiting: %ld of %ld tasks finished\n", done, b->n);
            last_report = t;
        }
        struct timespec ts = { 0, 50 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
}

/* ---- Redis -------------------------------------------------------------- */

/* Connects to redis://[[user]:password@]host[:port][/db]; dies on failure. */
static redisContext *redis_open(const char *url)
{
    const char *p = url;
    if (strncmp(p, "redis://", 8) == 0)
        p += 8;
    else
        die("DEVSYS_REDIS_URL must start with redis://, not '%s'", url);
    char *rest = xstrdup(p), *host = rest, *pass = NULL;
    char *at = strrchr(rest, '@');
    if (at) {
        *at = '\0';
        host = at + 1;
        char *colon = strchr(rest, ':');
        pass = colon ? colon + 1 : rest;
    }
    int db = 0, port = 6379;
    char *slash = strchr(host, '/');
    if (slash) {
        *slash = '\0';
        db = atoi(slash + 1);
    }
    char *colon = strrchr(host, ':');
    if (colon) {
        *colon = '\0';
        port = atoi(colon + 1);
    }
    redisContext *c = redisConnect(*host ? host : "127.0.0.1", port);
    if (!c || c->err)
        die("cannot connect to Redis at %s: %s", url, c ? c->errstr : "out of memory");
    redisReply *r = NULL;
    if (pass && *pass && (!(r = redisCommand(c, "AUTH %s", pass)) || r->type == REDIS_REPLY_ERROR))
        die("Redis AUTH failed: %s", r ? r->str : c->errstr);
    freeReplyObject(r);
    r = NULL;
    if (db && (!(r = redisCommand(c, "SELECT %d", db)) || r->type == REDIS_REPLY_ERROR))
        die("Redis SELECT %d failed: %s", db, r ? r->str : c->errstr);
    freeReplyObject(r);
    free(rest);
    return c;
}

static void stream_reply(redisContext *c)
{
    redisReply *r;
    if (redisGetReply(c, (void **)&r) != REDIS_OK)
        die("XADD: %s", c->errstr);
    if (r->type == REDIS_REPLY_ERROR)
        die("XADD: %s", r->str);
    freeReplyObject(r);
}

static void submit_stream(struct bench *b, redisContext *c, const char *key, const char *spec)
{
    b->submit_t0 = now_wall();
    for (long sent = 0; sent < b->n;) {
        long batch = b->n - sent < STREAM_BATCH ? b->n - sent : STREAM_BATCH;
        for (long i = 0; i < batch; i++)
            redisAppendCommand(c, "XADD %s * spec %s", key, spec);
        for (long i = 0; i < batch; i++)
            stream_reply(c);
        sent += batch;
    }
    b->submit_t1 = now_wall();
}

/* One XADD per tick on absolute deadlines, so a slow call does not shift
 * every later one. */
static void submit_rate(struct bench *b, redisContext *c, const char *key, const char *spec)
{
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    long step_ns = (long)(1e9 / b->rate);
    b->submit_t0 = now_wall();
    for (long i = 0; i < b->n; i++) {
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
        redisAppendCommand(c, "XADD %s * spec %s", key, spec);
        stream_reply(c);
        next.tv_nsec += step_ns;
        while (next.tv_nsec >= 1000000000L) {
            next.tv_nsec -= 1000000000L;
            next.tv_sec++;
        }
    }
    b->submit_t1 = now_wall();
}

/* ---- HTTP --------------------------------------------------------------- */

struct http_run {
    struct event_base *base;
    char *path, *auth, *spec;
    long left;              /* specs not yet sent */
    int inflight;
    int failed;
};

struct http_slot {
    struct http_run *run;
    struct evhttp_connection *conn;
    char *host;             /* this connection's manager (DEVSYS_URL may list several) */
    long n;                 /* specs in the request in flight */
};

static void http_send(struct http_slot *s);

static void on_http_done(struct evhttp_request *req, void *arg)
{
    struct http_slot *s = arg;
    struct http_run *run = s->run;
    run->inflight--;
    int code = req ? evhttp_request_get_response_code(req) : 0;
    if (code != 201 && code != 200) {
        char body[512] = "";
        if (req && code) {
            struct evbuffer *in = evhttp_request_get_input_buffer(req);
            int got = evbuffer_remove(in, body, sizeof(body) - 1);
            body[got > 0 ? got : 0] = '\0';
        }
        if (code)
            fprintf(stderr, "devsys-bench: POST %s failed: %d %s\n", run->path, code, body);
        else
            fprintf(stderr, "devsys-bench: POST %s failed: no answer from the manager\n", run->path);
        run->failed = 1;
        event_base_loopbreak(run->base);
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    json_t *doc = json_loadb((const char *)evbuffer_pullup(in, -1), len, 0, NULL);
    size_t got = json_array_size(json_object_get(doc, "tasks"));
    json_decref(doc);
    if ((long)got != s->n) {
        fprintf(stderr, "devsys-bench: POST %s: %zu tasks in the answer, %ld sent\n", run->path, got, s->n);
        run->failed = 1;
        event_base_loopbreak(run->base);
        return;
    }
    if (run->left > 0)
        http_send(s);
    else if (run->inflight == 0)
        event_base_loopexit(run->base, NULL);
}

static void http_send(struct http_slot *s)
{
    struct http_run *run = s->run;
    s->n = run->left < HTTP_BATCH ? run->left : HTTP_BATCH;
    run->left -= s->n;
    struct evhttp_request *req = evhttp_request_new(on_http_done, s);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", s->host);
    evhttp_add_header(h, "Content-Type", "application/json");
    if (run->auth)
        evhttp_add_header(h, "Authorization", run->auth);
    struct evbuffer *out = evhttp_request_get_output_buffer(req);
    evbuffer_add(out, "[", 1);
    for (long i = 0; i < s->n; i++) {
        if (i)
            evbuffer_add(out, ",", 1);
        evbuffer_add(out, run->spec, strlen(run->spec));
    }
    evbuffer_add(out, "]", 1);
    if (evhttp_make_request(s->conn, req, EVHTTP_REQ_POST, run->path) != 0)
        die("cannot send POST %s", run->path);
    run->inflight++;
}

static struct evhttp_uri *http_url(const char *url)
{
    struct evhttp_uri *uri = evhttp_uri_parse(url);
    if (!uri || !evhttp_uri_get_host(uri) || strcmp(evhttp_uri_get_scheme(uri) ? evhttp_uri_get_scheme(uri) : "", "http"))
        die("DEVSYS_URL must be http://HOST[:PORT][/PATH] (several: comma-separated), not '%s'", url);
    return uri;
}

/* DEVSYS_URL may name several managers, comma-separated: the connections
 * go to them in turn (HTTP_CONNS is rounded up to a multiple of them). */
static void submit_http(struct bench *b, const char *spec)
{
    char *urls = xstrdup(env_or("DEVSYS_URL", "http://127.0.0.1:8080"));
    char *list[HTTP_CONNS * 4];
    int nurls = 0;
    for (char *save = NULL, *u = strtok_r(urls, ",", &save); u && nurls < HTTP_CONNS * 4;
         u = strtok_r(NULL, ",", &save))
        list[nurls++] = u;
    if (nurls == 0)
        die("DEVSYS_URL is empty");
    int nconns = (HTTP_CONNS + nurls - 1) / nurls * nurls;
    const char *url = list[0];
    struct evhttp_uri *uri = http_url(url);
    const char *token = getenv("DEVSYS_TOKEN");
    const char *prefix = evhttp_uri_get_path(uri) ? evhttp_uri_get_path(uri) : "";
    struct http_run run = {
        .base = event_base_new(),
        .path = xasprintf("%.*s/v1/tasks", (int)(strlen(prefix) - (*prefix && prefix[strlen(prefix) - 1] == '/')), prefix),
        .auth = token && *token ? xasprintf("Bearer %s", token) : NULL,
        .spec = xstrdup(spec),
        .left = b->n,
    };
    evhttp_uri_free(uri);
    struct http_slot *slots = xcalloc((size_t)nconns, sizeof *slots);
    b->submit_t0 = now_wall();
    for (int i = 0; i < nconns; i++) {
        struct evhttp_uri *u = http_url(list[i % nurls]);
        slots[i].run = &run;
        slots[i].host = xstrdup(evhttp_uri_get_host(u));
        int port = evhttp_uri_get_port(u) > 0 ? evhttp_uri_get_port(u) : 80;
        evhttp_uri_free(u);
        slots[i].conn = evhttp_connection_base_new(run.base, NULL, slots[i].host, (unsigned short)port);
        evhttp_connection_set_timeout(slots[i].conn, 120);
        evhttp_connection_set_retries(slots[i].conn, 0);
        if (run.left > 0)
            http_send(&slots[i]);
    }
    event_base_dispatch(run.base);
    b->submit_t1 = now_wall();
    for (int i = 0; i < nconns; i++) {
        evhttp_connection_free(slots[i].conn);
        free(slots[i].host);
    }
    free(slots);
    free(urls);
    event_base_free(run.base);
    int failed = run.failed || run.left > 0 || run.inflight > 0;
    free(run.path);
    free(run.auth);
    free(run.spec);
    if (failed)
        die("HTTP submission failed (is the manager up at %s and DEVSYS_TOKEN right?)", url);
}

/* ---- agents' memory ----------------------------------------------------- */

/* VmHWM is the peak since start; writing 5 to clear_refs resets it (Linux
 * >= 4.0, needs the right to ptrace the pid), so each run reports its own. */
static void reset_hwm(struct bench *b)
{
    b->hwm_reset = b->npids > 0;
    for (int i = 0; i < b->npids; i++) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/clear_refs", b->pids[i]);
        FILE *f = fopen(path, "w");
        if (!f || fputs("5", f) < 0)
            b->hwm_reset = 0;
        if (f && fclose(f) != 0)
            b->hwm_reset = 0;
    }
}

/* Peak resident set in kB, -1 if the process is gone. */
static long read_hwm_kb(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "VmHWM:", 6) == 0)
            kb = atol(line + 6);
    fclose(f);
    return kb;
}

static void parse_pids(struct bench *b, const char *list)
{
    char *copy = xstrdup(list), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *end;
        long pid = strtol(t, &end, 10);
        if (*end || pid <= 0 || b->npids == MAX_PIDS) {
            fprintf(stderr, "devsys-bench: --agent-pids wants up to %d comma-separated pids, not '%s'\n",
                    MAX_PIDS, list);
            exit(2);
        }
        b->pids[b->npids++] = (int)pid;
    }
    free(copy);
}

/* ---- report ------------------------------------------------------------- */

static void report(struct bench *b)
{
    char t0[32];
    snprintf(t0, sizeof(t0), "%.6f", b->submit_t0);
    const char *params[] = { b->start, t0 };
    PGresult *res = pg_query(b->pg,
        "WITH t AS (SELECT state, finished_at,"
        "  extract(epoch FROM finished_at - created_at) * 1000 AS ms"
        "  FROM tasks WHERE kind = 'noop' AND created_at >= $1::timestamptz"
        "  AND state IN ('succeeded', 'failed', 'dead'))"
        " SELECT count(*),"
        "  count(*) FILTER (WHERE state = 'succeeded'),"
        "  count(*) FILTER (WHERE state = 'failed'),"
        "  count(*) FILTER (WHERE state = 'dead'),"
        "  extract(epoch FROM max(finished_at)) - $2::float8,"
        "  percentile_cont(0.5) WITHIN GROUP (ORDER BY ms),"
        "  percentile_cont(0.9) WITHIN GROUP (ORDER BY ms),"
        "  percentile_cont(0.99) WITHIN GROUP (ORDER BY ms),"
        "  max(ms)"
        " FROM t", 2, params);
    long tasks = atol(PQgetvalue(res, 0, 0));
    double elapsed = atof(PQgetvalue(res, 0, 4));
    double submit_s = b->submit_t1 - b->submit_t0;
    double p50 = atof(PQgetvalue(res, 0, 5)), p90 = atof(PQgetvalue(res, 0, 6));
    double p99 = atof(PQgetvalue(res, 0, 7)), pmax = atof(PQgetvalue(res, 0, 8));
    printf("devsys-bench %s: %ld noop tasks\n", b->mode, b->n);
    printf("  finished      %ld (succeeded %s, failed %s, dead %s)\n", tasks, PQgetvalue(res, 0, 1),
           PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3));
    printf("  submit        %.3f s, %.0f tasks/s\n", submit_s, submit_s > 0 ? (double)b->n / submit_s : 0.0);
    printf("  end to end    %.3f s, %.0f tasks/s (first submit to last finished_at)\n", elapsed,
           elapsed > 0 ? (double)tasks / elapsed : 0.0);
    printf("  latency ms    p50 %.1f  p90 %.1f  p99 %.1f  max %.1f (created_at to finished_at)\n", p50, p90,
           p99, pmax);
    long rss_total = 0, rss_max = 0;
    if (b->npids) {
        printf("  agent peak RSS%s", b->hwm_reset ? "" : " (since agent start)");
        for (int i = 0; i < b->npids; i++) {
            long kb = read_hwm_kb(b->pids[i]);
            if (kb < 0)
                printf("%s pid %d gone", i ? "," : "", b->pids[i]);
            else
                printf("%s pid %d %.1f MiB", i ? "," : "", b->pids[i], (double)kb / 1024);
            rss_total += kb > 0 ? kb : 0;
            rss_max = kb > rss_max ? kb : rss_max;
        }
        putchar('\n');
    }
    printf("RESULT mode=%s tasks=%ld elapsed_s=%.3f tasks_per_s=%.0f submit_per_s=%.0f p50_ms=%.1f "
           "p90_ms=%.1f p99_ms=%.1f max_ms=%.1f agent_rss_max_kb=%ld agent_rss_total_kb=%ld\n",
           b->mode, tasks, elapsed, elapsed > 0 ? (double)tasks / elapsed : 0.0,
           submit_s > 0 ? (double)b->n / submit_s : 0.0, p50, p90, p99, pmax, rss_max, rss_total);
    PQclear(res);
}

/* ---- main --------------------------------------------------------------- */

static long parse_count(const char *s, const char *what, long max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < 1 || v > max) {
        fprintf(stderr, "devsys-bench: %s must be an integer from 1 to %ld, not '%s'\n", what, max, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "agent-pids", required_argument, NULL, 'p' }, { "queue", required_argument, NULL, 'q' },
        { "prefix", required_argument, NULL, 'x' },     { "wait", required_argument, NULL, 'w' },
        { "help", no_argument, NULL, 'h' },             { NULL, 0, NULL, 0 },
    };
    struct bench b = { .queue = "noop", .prefix = env_or("DEVSYS_PREFIX", "devsys"), .wait_s = 300 };
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'p': parse_pids(&b, optarg); break;
        case 'q': b.queue = optarg; break;
        case 'x': b.prefix = optarg; break;
        case 'w': b.wait_s = (double)parse_count(optarg, "--wait", 86400); break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: fputs(usage_text, stderr); return 2;
        }
    }
    int nargs = argc - optind;
    char **args = argv + optind;
    if (nargs == 2 && (strcmp(args[0], "stream") == 0 || strcmp(args[0], "http") == 0)) {
        b.n = parse_count(args[1], "N", 100000000);
    } else if (nargs == 3 && strcmp(args[0], "rate") == 0) {
        b.rate = (double)parse_count(args[1], "R", 1000000);
        b.n = (long)llround(b.rate * (double)parse_count(args[2], "SECONDS", 86400));
    } else {
        fputs(usage_text, stderr);
        return 2;
    }
    b.mode = args[0];

    b.pg = PQconnectdb(env_or("DEVSYS_DATABASE_URL", ""));
    if (PQstatus(b.pg) != CONNECTION_OK)
        die("cannot connect to PostgreSQL (DEVSYS_DATABASE_URL): %s", PQerrorMessage(b.pg));
    /* Truncated to ms: the agent dates a hand-pushed entry by its stream id's
     * ms, which may fall in the same ms as now() but before it. */
    PGresult *res = pg_query(b.pg, "SELECT date_trunc('milliseconds', now())::text", 0, NULL);
    snprintf(b.start, sizeof(b.start), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    reset_hwm(&b);

    char *spec = xstrdup("{\"kind\":\"noop\"}");
    if (strcmp(b.queue, "noop") != 0) {
        json_t *js = json_pack("{s:s, s:s}", "kind", "noop", "queue", b.queue);
        free(spec);
        spec = json_dumps(js, JSON_COMPACT);
        json_decref(js);
    }
    if (strcmp(b.mode, "http") == 0) {
        submit_http(&b, spec);
    } else {
        redisContext *c = redis_open(env_or("DEVSYS_REDIS_URL", "redis://127.0.0.1:6379/0"));
        char *key = xasprintf("%s:{%s}:stream", b.prefix, b.queue);
        if (b.rate > 0)
            submit_rate(&b, c, key, spec);
        else
            submit_stream(&b, c, key, spec);
        free(key);
        redisFree(c);
    }
    free(spec);
    wait_done(&b);
    report(&b);
    PQfinish(b.pg);
    return 0;
}
