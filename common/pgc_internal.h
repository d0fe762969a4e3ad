/* pgc_internal: what pgc.c (connection, reconnect, deadlines, the public
 * calls) and pgc_pipe.c (sending queries and matching results in the pipeline)
 * share: the client's layout and the helpers both call. Not for other modules. */
#ifndef DEVSYS_PGC_INTERNAL_H
#define DEVSYS_PGC_INTERNAL_H

#include "pgc.h"
#include "metrics.h"
#include "pgc_stmt.h"

enum pgc_state {
    PGC_WAITING,    /* no connection; retry_ev armed (unless freeing) */
    PGC_CONNECTING, /* PQconnectPoll in progress */
    PGC_READY,      /* pipeline mode, queries flow */
};

/* Which result a sent query waits for next. Results come in order: the
 * Parse's (only when the query carried the prepare), the Execute's, then
 * the sync's PGRES_PIPELINE_SYNC, which completes the query. */
enum pgc_stage { STAGE_PREPARE, STAGE_EXECUTE, STAGE_SYNC };

struct pgc_query {
    struct pgc_query *next;
    char *sql;
    int nparams;
    char **params;
    pgc_result_fn *fn;
    void *arg;
    int stmt;             /* statement id on this connection, 0 = unnamed */
    int once;             /* never prepared: planned for its parameters each time */
    enum pgc_stage stage;
    PGresult *res;        /* the result handed to fn */
    long long deadline;   /* monotonic ms after which it fails; 0 = none */
    char *err;            /* overrides res's message (another query's prepare failed) */
    double sent;          /* metric_now() when sent: its round trip */
};

struct pgc_list {
    struct pgc_query *head, *tail;
    int n;
};

struct pgc_hook {
    struct pgc_hook *next;
    pgc_event_fn *fn;
    void *arg;
};

struct pgc {
    struct event_base *base;
    char *conninfo;
    char *options;       /* libpq "options" (session settings), may be NULL */
    char *name;

    PGconn *conn;
    enum pgc_state state;
    struct event *sock_ev;
    short sock_what;
    struct event *retry_ev, *timeout_ev, *kick_ev;
    int backoff_ms;
    int failures;

    int timeout_ms;         /* per-query deadline, 0 = none (pgc_set_timeout) */
    int down;               /* the last connect attempt failed */
    char *down_why;         /* its reason, one line */
    struct event *deadline_ev;
    long long deadline_armed; /* when deadline_ev fires, if pending */

    struct pgc_list unsent; /* waiting to be sent, in order */
    struct pgc_list sent;   /* sent, results outstanding, in order */
    int want_write;         /* PQflush left data in libpq's buffer */

    pgc_stmt_cache_t *stmts; /* of the current connection */

    struct pgc_hook *on_connect;
    int depth;   /* > 0 while pgc code or a user callback is on the stack */
    int freeing; /* pgc_free was called; destroyed when depth drops to 0 */

    /* metrics: devsys_postgres_*{conn="<name>"} */
    metric_t *m_rtt, *m_reconnects;
    int ever_ready;
    int counted_down; /* counted in devsys_postgres_up (pgc.c) */
};

/* ---------------------------------------------------------- pgc.c: helpers */

/* Copies msg into a new string on one line (whitespace runs become one
 * space, none at the ends); caller frees. libpq messages span lines. */
char *pgc_one_line(const char *msg);
/* The server's primary message for an error result; caller frees. */
char *pgc_result_error(PGconn *conn, const PGresult *res);
void pgc_list_push(struct pgc_list *l, struct pgc_query *q);
void pgc_list_push_front(struct pgc_list *l, struct pgc_query *q);
/* The head of l, taken off it; NULL when l is empty. */
struct pgc_query *pgc_list_pop(struct pgc_list *l);
/* Calls q's callback (user code) and frees q. q must be off every list. */
void pgc_query_finish(pgc_t *pg, struct pgc_query *q, PGresult *res, const char *err);
/* (Re)registers the socket for what (EV_READ, EV_WRITE); force recreates the
 * event even when nothing seems changed (a reused fd number). */
void pgc_watch(pgc_t *pg, short what, int force);
/* Wakes the io path on the next loop iteration. */
void pgc_kick(pgc_t *pg);
/* The connection broke: every sent query fails, unsent ones stay queued;
 * reconnects with backoff. */
void pgc_lost(pgc_t *pg, const char *why);

/* ----------------------------------------------------- pgc_pipe.c: the pipeline */

/* Flushes libpq's output buffer and watches for writability while data is
 * left. Returns 0, or -1 after the connection was declared lost. */
int pgc_flush(pgc_t *pg);
/* Reads results and sends queued queries until neither makes progress (or a
 * round limit: then it kicks itself to go on next iteration). */
void pgc_io(pgc_t *pg);

#endif
