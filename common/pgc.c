/* pgc: async PostgreSQL client on the shared libevent loop (see pgc.h).
 * This file: the connection (connect, reconnect with exponential backoff),
 * the query queue and its deadlines, and the public calls; the pipeline that
 * sends queries and matches results is pgc_pipe.c, statements pgc_stmt.c. */
#include "pgc_internal.h"

#include "log.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#define PGC_BACKOFF_MIN_MS 100
#define PGC_BACKOFF_MAX_MS 5000
/* libpq's connect_timeout is not enforced for PQconnectPoll callers. */
#ifndef PGC_CONNECT_TIMEOUT_MS
#define PGC_CONNECT_TIMEOUT_MS 10000
#endif
#define PGC_MAX_QUEUED 100000

static void pgc_connect(pgc_t *pg);
static void deadline_arm(pgc_t *pg);

/* ------------------------------------------------------------- helpers */

static void ms_to_tv(long long ms, struct timeval *tv)
{
    tv->tv_sec = (time_t)(ms / 1000);
    tv->tv_usec = (suseconds_t)((ms % 1000) * 1000);
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *pgc_one_line(const char *msg)
{
    if (!msg || !*msg)
        msg = "unknown error";
    char *s = xmalloc(strlen(msg) + 1);
    size_t n = 0;
    for (const char *p = msg; *p; p++) {
        int space = *p == ' ' || *p == '\n' || *p == '\r' || *p == '\t';
        if (!space)
            s[n++] = *p;
        else if (n > 0 && s[n - 1] != ' ')
            s[n++] = ' ';
    }
    while (n > 0 && s[n - 1] == ' ')
        n--;
    s[n] = '\0';
    return s;
}

char *pgc_result_error(PGconn *conn, const PGresult *res)
{
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!msg && res)
        msg = PQresultErrorMessage(res);
    if ((!msg || !*msg) && res && PQresultStatus(res) == PGRES_PIPELINE_ABORTED)
        msg = "pipeline aborted by an earlier error";
    if ((!msg || !*msg) && res && PQresultStatus(res) == PGRES_EMPTY_QUERY)
        msg = "empty query";
    if ((!msg || !*msg) && conn)
        msg = PQerrorMessage(conn);
    return pgc_one_line(msg);
}

void pgc_list_push(struct pgc_list *l, struct pgc_query *q)
{
    q->next = NULL;
    if (l->tail)
        l->tail->next = q;
    else
        l->head = q;
    l->tail = q;
    l->n++;
}

void pgc_list_push_front(struct pgc_list *l, struct pgc_query *q)
{
    q->next = l->head;
    l->head = q;
    if (!l->tail)
        l->tail = q;
    l->n++;
}

struct pgc_query *pgc_list_pop(struct pgc_list *l)
{
    struct pgc_query *q = l->head;
    if (!q)
        return NULL;
    l->head = q->next;
    if (!l->head)
        l->tail = NULL;
    l->n--;
    q->next = NULL;
    return q;
}

static void query_free(struct pgc_query *q)
{
    for (int i = 0; i < q->nparams; i++)
        free(q->params[i]);
    free(q->params);
    free(q->sql);
    free(q->err);
    PQclear(q->res);
    free(q);
}

void pgc_query_finish(pgc_t *pg, struct pgc_query *q, PGresult *res, const char *err)
{
    if (res && q->sent > 0)
        metric_observe(pg->m_rtt, metric_now() - q->sent);
    if (q->fn) {
        pg->depth++;
        q->fn(pg, res, err, q->arg);
        pg->depth--;
    }
    query_free(q);
}

/* Fails every query of list l (detached first, so callbacks that queue or
 * free see consistent lists) with res NULL and err. */
static void fail_list(pgc_t *pg, struct pgc_list *l, const char *err)
{
    struct pgc_list doomed = *l;
    memset(l, 0, sizeof *l);
    struct pgc_query *q;
    while ((q = pgc_list_pop(&doomed)))
        pgc_query_finish(pg, q, NULL, err);
}

/* ------------------------------------------------------ socket, timers */

static void pgc_sock_cb(evutil_socket_t fd, short what, void *arg);

/* (Re)registers the socket for what. During connect the fd may be closed
 * and a new socket may get the same number, which epoll would silently stop
 * reporting, so `force` recreates the event even when nothing seems changed. */
void pgc_watch(pgc_t *pg, short what, int force)
{
    if (pg->sock_ev && !force && pg->sock_what == what)
        return;
    if (pg->sock_ev) {
        event_free(pg->sock_ev);
        pg->sock_ev = NULL;
    }
    int fd = pg->conn ? PQsocket(pg->conn) : -1;
    if (fd < 0)
        return;
    pg->sock_ev = event_new(pg->base, fd, (short)(what | EV_PERSIST), pgc_sock_cb, pg);
    pg->sock_what = what;
    if (!pg->sock_ev || event_add(pg->sock_ev, NULL) != 0)
        log_error("postgres %s: cannot watch socket %d", pg->name, fd);
}

static void pgc_schedule_retry(pgc_t *pg)
{
    if (pg->freeing)
        return;
    struct timeval tv;
    ms_to_tv(pg->backoff_ms, &tv);
    evtimer_add(pg->retry_ev, &tv);
    pg->backoff_ms = pg->backoff_ms * 2 > PGC_BACKOFF_MAX_MS ? PGC_BACKOFF_MAX_MS : pg->backoff_ms * 2;
}

/* Wakes the io path from the loop: pgc_query only queues, so that a burst
 * of queries goes out in one pipeline and no send runs inside a callback. */
void pgc_kick(pgc_t *pg)
{
    if (pg->state == PGC_READY && !pg->freeing)
        event_active(pg->kick_ev, EV_TIMEOUT, 0);
}

/* Clients of this process not ready: devsys_postgres_up is 1 when none is. */
static int pgc_down_count;
static metric_t *m_up;

static void pgc_set_down(pgc_t *pg, int down)
{
    if (pg->counted_down == down)
        return;
    pg->counted_down = down;
    pgc_down_count += down ? 1 : -1;
    if (!m_up)
        m_up = metric_gauge("devsys_postgres_up", NULL,
                            "1 when every PostgreSQL connection of this process is ready");
    metric_set(m_up, pgc_down_count == 0);
}

static void pgc_close(pgc_t *pg)
{
    pgc_set_down(pg, !pg->freeing);
    if (pg->sock_ev) {
        event_free(pg->sock_ev);
        pg->sock_ev = NULL;
    }
    if (pg->conn) {
        PQfinish(pg->conn);
        pg->conn = NULL;
    }
    evtimer_del(pg->timeout_ev);
    pg->state = PGC_WAITING;
    pg->want_write = 0;
    pgc_stmt_clear(pg->stmts);
}

static void pgc_connect_failed(pgc_t *pg, const char *why)
{
    char *msg = pgc_one_line(why);
    pg->failures++;
    if (pg->failures <= 3 || pg->failures % 12 == 0)
        log_warn("postgres %s: connect failed (attempt %d): %s", pg->name, pg->failures, msg);
    free(pg->down_why);
    pg->down_why = msg;
    pg->down = 1;
    pgc_close(pg);
    pgc_schedule_retry(pg);
    deadline_arm(pg); /* with a deadline set, what waits fails now */
}

/* The connection broke: every sent query fails (it may or may not have run;
 * the caller decides whether repeating it is safe), unsent ones stay queued. */
void pgc_lost(pgc_t *pg, const char *why)
{
    /* A server that ends the session (pg_terminate_backend, shutdown) says
     * why in a FATAL result just before the EOF; that beats libpq's generic
     * "server closed the connection unexpectedly". */
    struct pgc_query *head = pg->sent.head;
    const char *sev = head && head->res ? PQresultErrorField(head->res, PG_DIAG_SEVERITY_NONLOCALIZED)
                                        : NULL;
    char *reason = sev && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0)
                       ? pgc_result_error(pg->conn, head->res)
                       : pgc_one_line(why);
    char *err = xasprintf("connection lost: %s", reason);
    free(reason);
    log_warn("postgres %s: %s (%d sent queries failed, %d queued)", pg->name, err, pg->sent.n,
             pg->unsent.n);
    pgc_close(pg);
    pgc_schedule_retry(pg);
    fail_list(pg, &pg->sent, err);
    free(err);
}

/* ------------------------------------------------------------ lifecycle */

static void pgc_destroy(pgc_t *pg)
{
    pgc_close(pg);
    pgc_stmt_cache_free(pg->stmts);
    event_free(pg->retry_ev);
    event_free(pg->timeout_ev);
    event_free(pg->kick_ev);
    event_free(pg->deadline_ev);
    free(pg->down_why);
    struct pgc_hook *h = pg->on_connect;
    while (h) {
        struct pgc_hook *next = h->next;
        free(h);
        h = next;
    }
    free(pg->conninfo);
    free(pg->options);
    free(pg->name);
    free(pg);
}

/* Every entry point from the loop or the caller brackets its work with
 * enter/leave; pgc_free inside a callback only marks, the outermost leave
 * destroys. Returns 1 when pg is gone. */
static void pgc_enter(pgc_t *pg)
{
    pg->depth++;
}

static int pgc_leave(pgc_t *pg)
{
    if (--pg->depth > 0 || !pg->freeing)
        return 0;
    pgc_destroy(pg);
    return 1;
}

static void pgc_notice(void *arg, const PGresult *res)
{
    pgc_t *pg = arg;
    const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    char *msg = pgc_one_line(PQresultErrorMessage(res));
    if (sev && strcmp(sev, "WARNING") == 0)
        log_warn("postgres %s: %s", pg->name, msg);
    else
        log_debug("postgres %s: %s", pg->name, msg);
    free(msg);
}

static void pgc_connected(pgc_t *pg)
{
    evtimer_del(pg->timeout_ev);
    if (PQsetnonblocking(pg->conn, 1) != 0 || PQenterPipelineMode(pg->conn) != 1) {
        pgc_connect_failed(pg, PQerrorMessage(pg->conn));
        return;
    }
    PQsetNoticeReceiver(pg->conn, pgc_notice, pg);
    pg->state = PGC_READY;
    pgc_set_down(pg, 0);
    if (pg->ever_ready++)
        metric_add(pg->m_reconnects, 1);
    pg->backoff_ms = PGC_BACKOFF_MIN_MS;
    pg->failures = 0;
    pg->down = 0;
    pgc_stmt_clear(pg->stmts);
    pgc_watch(pg, EV_READ, 1);
    log_info("postgres %s: connected to %s:%s db %s (backend pid %d, %d queued)", pg->name,
             PQhost(pg->conn), PQport(pg->conn), PQdb(pg->conn), PQbackendPID(pg->conn),
             pg->unsent.n);
    pg->depth++;
    for (struct pgc_hook *h = pg->on_connect; h && !pg->freeing && pg->state == PGC_READY;
         h = h->next)
        h->fn(pg, h->arg);
    pg->depth--;
    pgc_io(pg);
}

static void pgc_connect_poll(pgc_t *pg)
{
    switch (PQconnectPoll(pg->conn)) {
    case PGRES_POLLING_READING:
        pgc_watch(pg, EV_READ, 1);
        break;
    case PGRES_POLLING_WRITING:
        pgc_watch(pg, EV_WRITE, 1);
        break;
    case PGRES_POLLING_OK:
        pgc_connected(pg);
        break;
    default:
        pgc_connect_failed(pg, PQerrorMessage(pg->conn));
        break;
    }
}

static void pgc_sock_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    pgc_t *pg = arg;
    pgc_enter(pg);
    if (pg->state == PGC_CONNECTING) {
        pgc_connect_poll(pg);
    } else if (pg->state == PGC_READY) {
        if ((what & EV_WRITE) && pg->want_write)
            pgc_flush(pg);
        pgc_io(pg);
    }
    pgc_leave(pg);
}

static void pgc_kick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pgc_t *pg = arg;
    pgc_enter(pg);
    pgc_io(pg);
    pgc_leave(pg);
}

static void pgc_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pgc_t *pg = arg;
    pgc_enter(pg);
    if (pg->state == PGC_WAITING && !pg->freeing)
        pgc_connect(pg);
    pgc_leave(pg);
}

static void pgc_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pgc_t *pg = arg;
    pgc_enter(pg);
    if (pg->state == PGC_CONNECTING)
        pgc_connect_failed(pg, "timed out");
    pgc_leave(pg);
}

/* ------------------------------------------------------------ deadlines */

/* Arms deadline_ev for the earliest deadline: the head of sent (sent in
 * order, so older than any unsent), else of unsent; at once while down.
 * One timer for the client: it fires, fails what is due, re-arms. */
static void deadline_arm(pgc_t *pg)
{
    if (pg->timeout_ms <= 0 || pg->freeing)
        return;
    long long due = 0;
    if (pg->down && pg->unsent.head)
        due = mono_ms();
    else if (pg->sent.head && pg->sent.head->deadline)
        due = pg->sent.head->deadline;
    else if (pg->unsent.head && pg->unsent.head->deadline)
        due = pg->unsent.head->deadline;
    if (!due || (evtimer_pending(pg->deadline_ev, NULL) && pg->deadline_armed <= due))
        return;
    long long wait = due - mono_ms();
    struct timeval tv;
    ms_to_tv(wait > 0 ? wait : 0, &tv);
    pg->deadline_armed = due;
    evtimer_add(pg->deadline_ev, &tv);
}

static void pgc_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pgc_t *pg = arg;
    pgc_enter(pg);
    long long now = mono_ms();
    struct pgc_query *h = pg->sent.head;
    if (h && h->deadline && h->deadline <= now) {
        /* No answer in time. Cancelling would block (PQcancel), so the
         * connection goes: the server rolls back what it has not committed. */
        pgc_list_pop(&pg->sent);
        char *why = xasprintf("closed after a query got no answer within %d ms", pg->timeout_ms);
        pgc_lost(pg, why);
        free(why);
        char *err = xasprintf("timeout: no answer within %d ms", pg->timeout_ms);
        pgc_query_finish(pg, h, NULL, err);
        free(err);
    }
    /* Detached first: a callback that queues again is served next round. */
    struct pgc_list due = {0};
    struct pgc_query *q;
    while (!pg->freeing && (q = pg->unsent.head) &&
           (pg->down || (q->deadline && q->deadline <= now)))
        pgc_list_push(&due, pgc_list_pop(&pg->unsent));
    if (due.head) {
        char *err = pg->down ? xasprintf("not sent: postgres unavailable: %s", pg->down_why)
                    : pg->state == PGC_READY
                        ? xasprintf("not sent: timeout: waited %d ms for a slot in the pipeline", pg->timeout_ms)
                        : xasprintf("not sent: timeout: no connection to postgres within %d ms", pg->timeout_ms);
        fail_list(pg, &due, err);
        free(err);
    }
    if (!pg->freeing)
        deadline_arm(pg);
    pgc_leave(pg);
}

static void pgc_connect(pgc_t *pg)
{
    /* application_name and options come before dbname so that ones set in
     * conninfo win. */
    const char *keys[] = {"application_name", "options", "dbname", NULL};
    const char *vals[] = {pg->name, pg->options ? pg->options : "", pg->conninfo, NULL};
    pg->conn = PQconnectStartParams(keys, vals, 1);
    if (!pg->conn) {
        pgc_connect_failed(pg, "out of memory");
        return;
    }
    if (PQstatus(pg->conn) == CONNECTION_BAD) {
        pgc_connect_failed(pg, PQerrorMessage(pg->conn));
        return;
    }
    pg->state = PGC_CONNECTING;
    struct timeval tv;
    ms_to_tv(pg->timeout_ms > 0 ? (pg->timeout_ms < 1000 ? 1000 : pg->timeout_ms) : PGC_CONNECT_TIMEOUT_MS, &tv);
    evtimer_add(pg->timeout_ev, &tv);
    /* Per libpq's contract, polling starts as if PQconnectPoll had said WRITING. */
    pgc_watch(pg, EV_WRITE, 1);
}

pgc_t *pgc_new(struct event_base *base, const char *conninfo, const char *name)
{
    return pgc_new_opts(base, conninfo, name, NULL);
}

pgc_t *pgc_new_opts(struct event_base *base, const char *conninfo, const char *name, const char *options)
{
    const char *nm = name ? name : "postgres";
    char *errmsg = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo ? conninfo : "", &errmsg);
    if (!opts) {
        char *msg = pgc_one_line(errmsg ? errmsg : "out of memory");
        log_error("postgres %s: cannot parse connection string: %s", nm, msg);
        free(msg);
        PQfreemem(errmsg);
        return NULL;
    }
    PQconninfoFree(opts);

    pgc_t *pg = xcalloc(1, sizeof *pg);
    pg->base = base;
    pg->conninfo = xstrdup(conninfo);
    pg->options = options ? xstrdup(options) : NULL;
    pg->name = xstrdup(nm);
    pg->backoff_ms = PGC_BACKOFF_MIN_MS;
    pg->stmts = pgc_stmt_cache_new();
    pg->state = PGC_WAITING;
    pg->retry_ev = evtimer_new(base, pgc_retry_cb, pg);
    pg->timeout_ev = evtimer_new(base, pgc_timeout_cb, pg);
    pg->kick_ev = event_new(base, -1, 0, pgc_kick_cb, pg);
    pg->deadline_ev = evtimer_new(base, pgc_deadline_cb, pg);
    if (!pg->retry_ev || !pg->timeout_ev || !pg->kick_ev || !pg->deadline_ev) {
        log_error("postgres %s: cannot create events", pg->name);
        goto fail;
    }
    char labels[160];
    snprintf(labels, sizeof labels, "conn=\"%s\"", pg->name);
    pg->m_reconnects = metric_counter("devsys_postgres_reconnects_total", labels,
                                      "PostgreSQL connections established again after one was lost");
    pg->m_rtt = metric_histogram("devsys_postgres_query_seconds", labels,
                                 "PostgreSQL query round trips (sent to result)", metric_buckets_latency,
                                 metric_buckets_latency_n);
    pgc_set_down(pg, 1);
    pgc_connect(pg);
    return pg;

fail:
    if (pg->retry_ev)
        event_free(pg->retry_ev);
    if (pg->timeout_ev)
        event_free(pg->timeout_ev);
    if (pg->kick_ev)
        event_free(pg->kick_ev);
    if (pg->deadline_ev)
        event_free(pg->deadline_ev);
    pgc_stmt_cache_free(pg->stmts);
    free(pg->conninfo);
    free(pg->options);
    free(pg->name);
    free(pg);
    return NULL;
}

void pgc_free(pgc_t *pg)
{
    if (!pg || pg->freeing)
        return;
    pgc_enter(pg);
    pg->freeing = 1;
    pgc_set_down(pg, 0);
    evtimer_del(pg->retry_ev);
    evtimer_del(pg->timeout_ev);
    evtimer_del(pg->deadline_ev);
    event_del(pg->kick_ev);
    fail_list(pg, &pg->sent, "client closed");
    fail_list(pg, &pg->unsent, "client closed");
    pgc_leave(pg);
}

int pgc_ready(const pgc_t *pg)
{
    return pg && pg->state == PGC_READY && !pg->freeing;
}

void pgc_on_connect(pgc_t *pg, pgc_event_fn *fn, void *arg)
{
    struct pgc_hook *h = xcalloc(1, sizeof *h);
    h->fn = fn;
    h->arg = arg;
    struct pgc_hook **list = &pg->on_connect;
    while (*list)
        list = &(*list)->next;
    *list = h;
}

static void query_add(pgc_t *pg, const char *sql, int nparams, const char *const *params, pgc_result_fn *fn,
                      void *arg, int once)
{
    if (pg->freeing || pg->unsent.n + pg->sent.n >= PGC_MAX_QUEUED) {
        if (fn) {
            pgc_enter(pg);
            fn(pg, NULL, pg->freeing ? "client closed" : "query queue full", arg);
            pgc_leave(pg);
        }
        return;
    }
    struct pgc_query *q = xcalloc(1, sizeof *q);
    q->sql = xstrdup(sql);
    q->nparams = nparams > 0 ? nparams : 0;
    if (q->nparams) {
        q->params = xcalloc((size_t)q->nparams, sizeof *q->params);
        for (int i = 0; i < q->nparams; i++)
            q->params[i] = xstrdup(params[i]);
    }
    q->fn = fn;
    q->arg = arg;
    q->once = once;
    if (pg->timeout_ms > 0)
        q->deadline = mono_ms() + pg->timeout_ms;
    pgc_list_push(&pg->unsent, q);
    deadline_arm(pg);
    pgc_kick(pg);
}

void pgc_query(pgc_t *pg, const char *sql, int nparams, const char *const *params,
               pgc_result_fn *fn, void *arg)
{
    query_add(pg, sql, nparams, params, fn, arg, 0);
}

void pgc_query_once(pgc_t *pg, const char *sql, int nparams, const char *const *params, pgc_result_fn *fn,
                    void *arg)
{
    query_add(pg, sql, nparams, params, fn, arg, 1);
}

int pgc_pending(const pgc_t *pg)
{
    return pg ? pg->unsent.n + pg->sent.n : 0;
}

void pgc_set_timeout(pgc_t *pg, int timeout_ms)
{
    pg->timeout_ms = timeout_ms > 0 ? timeout_ms : 0;
}

int pgc_err_not_sent(const char *err)
{
    return strncmp(err, "not sent: ", 10) == 0 || strcmp(err, "query queue full") == 0;
}

int pgc_down(const pgc_t *pg)
{
    return pg && pg->down;
}
