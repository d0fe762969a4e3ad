/* pgc_pipe: pgc's pipeline (see pgc_internal.h). Sends queued queries, each a
 * Parse on first use of its SQL, Bind/Execute and a sync, up to
 * PGC_MAX_IN_FLIGHT; reads results and matches them to queries in order. */
#include "pgc_internal.h"

#include "log.h"
#include "xalloc.h"

#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>

#define PGC_MAX_IN_FLIGHT 1000
/* Rounds of read-then-send per wakeup before yielding to other events. */
#define PGC_IO_ROUNDS 64


/* ------------------------------------------------------------- sending */

/* Sends q: Parse (first use of its SQL on this connection), Bind/Execute,
 * Sync. Returns 0 when q went out as far as libpq is concerned; 1 when the
 * Execute could not be queued (q was never run, put it back); -1 when the
 * connection failed after the Execute was queued (q counts as sent). */
static int pgc_send(pgc_t *pg, struct pgc_query *q)
{
    int prepare = 0;
    int id = q->once ? 0 : pgc_stmt_get(pg->stmts, q->sql, &prepare);
    const char *const *params = (const char *const *)q->params;
    if (id) {
        char name[24];
        snprintf(name, sizeof name, "s%d", id);
        if (prepare && !PQsendPrepare(pg->conn, name, q->sql, 0, NULL)) {
            pgc_stmt_forget(pg->stmts, id);
            return 1;
        }
        if (!PQsendQueryPrepared(pg->conn, name, q->nparams, params, NULL, NULL, 0)) {
            if (prepare)
                pgc_stmt_forget(pg->stmts, id);
            return 1;
        }
        q->stmt = id;
    } else if (!PQsendQueryParams(pg->conn, q->sql, q->nparams, NULL, params, NULL, NULL, 0)) {
        return 1;
    }
    q->stage = prepare ? STAGE_PREPARE : STAGE_EXECUTE;
    return PQpipelineSync(pg->conn) ? 0 : -1;
}

int pgc_flush(pgc_t *pg)
{
    int rv = PQflush(pg->conn);
    if (rv < 0) {
        pgc_lost(pg, PQerrorMessage(pg->conn));
        return -1;
    }
    pg->want_write = rv == 1;
    pgc_watch(pg, pg->want_write ? EV_READ | EV_WRITE : EV_READ, 0);
    return 0;
}

/* Sends queued queries up to the in-flight cap. Returns how many were sent. */
static int pgc_pump(pgc_t *pg)
{
    int nsent = 0;
    while (pg->state == PGC_READY && !pg->freeing && pg->unsent.head &&
           pg->sent.n < PGC_MAX_IN_FLIGHT) {
        struct pgc_query *q = pgc_list_pop(&pg->unsent);
        int rv = pgc_send(pg, q);
        if (rv > 0) {
            pgc_list_push_front(&pg->unsent, q);
            pgc_lost(pg, PQerrorMessage(pg->conn));
            return nsent;
        }
        q->sent = metric_now();
        pgc_list_push(&pg->sent, q);
        nsent++;
        if (rv < 0) {
            pgc_lost(pg, PQerrorMessage(pg->conn));
            return nsent;
        }
    }
    if ((nsent > 0 || pg->want_write) && pg->state == PGC_READY)
        pgc_flush(pg);
    return nsent;
}

/* ------------------------------------------------------------- reading */

/* Completes the head of the sent list: the sync arrived. */
static void pgc_complete_head(pgc_t *pg)
{
    struct pgc_query *q = pgc_list_pop(&pg->sent);
    char *owned = NULL;
    const char *err = "";
    if (q->err) {
        err = q->err;
    } else if (!q->res) {
        err = owned = pgc_one_line("no result for query");
    } else {
        ExecStatusType st = PQresultStatus(q->res);
        if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
            err = owned = pgc_result_error(pg->conn, q->res);
    }
    PGresult *res = q->res;
    q->res = NULL; /* freed below, after the callback */
    pgc_query_finish(pg, q, res, err);
    PQclear(res);
    free(owned);
}

/* A Parse failed: every already-sent query that meant to use the same
 * statement will fail with "prepared statement does not exist"; give them
 * the real reason instead, and forget the statement so later queries
 * prepare it again. */
static void pgc_prepare_failed(pgc_t *pg, struct pgc_query *q)
{
    char *msg = pgc_result_error(pg->conn, q->res);
    for (struct pgc_query *o = q->next; o; o = o->next)
        if (o->stmt == q->stmt && !o->err)
            o->err = xstrdup(msg);
    free(msg);
    pgc_stmt_forget(pg->stmts, q->stmt);
}

static void pgc_handle_result(pgc_t *pg, PGresult *r)
{
    struct pgc_query *q = pg->sent.head;
    ExecStatusType st = PQresultStatus(r);
    if (!q) {
        log_warn("postgres %s: unexpected %s result with no query in flight", pg->name,
                 PQresStatus(st));
        PQclear(r);
        return;
    }
    if (st == PGRES_PIPELINE_SYNC) {
        PQclear(r);
        pgc_complete_head(pg);
        return;
    }
    switch (q->stage) {
    case STAGE_PREPARE:
        q->stage = STAGE_EXECUTE;
        if (st == PGRES_COMMAND_OK) {
            PQclear(r);
        } else {
            /* The prepare's error is the query's error; its Execute then
             * comes back PGRES_PIPELINE_ABORTED and is dropped below. */
            q->res = r;
            pgc_prepare_failed(pg, q);
        }
        break;
    case STAGE_EXECUTE:
        q->stage = STAGE_SYNC;
        if (q->res)
            PQclear(r);
        else
            q->res = r;
        break;
    case STAGE_SYNC:
        /* A second result for one statement (cannot happen with a single
         * statement, but the sync must stay the only thing that advances). */
        PQclear(r);
        break;
    }
}

/* Reads what the socket has and dispatches every complete result. Returns
 * the number of results handled, or -1 after the connection was lost. */
static int pgc_read(pgc_t *pg)
{
    if (!PQconsumeInput(pg->conn)) {
        pgc_lost(pg, PQerrorMessage(pg->conn));
        return -1;
    }
    int handled = 0;
    int nulls = 0;
    while (pg->state == PGC_READY && !pg->freeing && !PQisBusy(pg->conn)) {
        PGresult *r = PQgetResult(pg->conn);
        if (!r) {
            /* One NULL ends each statement's results; two in a row mean
             * libpq has nothing more for us right now. */
            if (!pg->sent.head || ++nulls >= 2)
                break;
            continue;
        }
        nulls = 0;
        pgc_handle_result(pg, r);
        handled++;
    }
    if (pg->state != PGC_READY || pg->freeing)
        return handled;
    PGnotify *n;
    while ((n = PQnotifies(pg->conn)))
        PQfreemem(n);
    if (PQstatus(pg->conn) == CONNECTION_BAD) {
        pgc_lost(pg, PQerrorMessage(pg->conn));
        return -1;
    }
    return handled;
}

/* Alternates reading and sending until neither makes progress: result
 * callbacks may queue more queries, and a partial flush may have pulled
 * input into libpq's buffer where the socket no longer signals it. */
void pgc_io(pgc_t *pg)
{
    for (int round = 0; round < PGC_IO_ROUNDS; round++) {
        if (pg->state != PGC_READY || pg->freeing)
            return;
        int nread = pgc_read(pg);
        if (nread < 0)
            return;
        int nsent = pgc_pump(pg);
        if (nread == 0 && nsent == 0)
            return;
    }
    pgc_kick(pg); /* more to do: continue on the next loop iteration */
}
