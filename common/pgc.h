/* pgc: async PostgreSQL client on the shared libevent loop (libpq nonblocking,
 * pipeline mode), with automatic reconnect and backoff. Each query is its own
 * implicit transaction (a pipeline sync follows it); many queries may be in
 * flight on one connection, results come back in order. Statements are
 * prepared automatically on first use per connection, keyed by SQL text.
 * Agent and manager logic talk to PostgreSQL only through this. */
#ifndef DEVSYS_PGC_H
#define DEVSYS_PGC_H

#include <libpq-fe.h>

struct event_base;
typedef struct pgc pgc_t;

/* res is the query's result, owned by pgc and freed after the callback
 * returns; NULL when the query could not run (connection lost before its
 * result, or not connected and queue full). err is never NULL: "" on success,
 * otherwise a one-line message (the server's primary message or the
 * connection error). Success means PQresultStatus is PGRES_TUPLES_OK or
 * PGRES_COMMAND_OK; callers test `err[0]`. */
typedef void pgc_result_fn(pgc_t *pg, PGresult *res, const char *err, void *arg);
typedef void pgc_event_fn(pgc_t *pg, void *arg);

/* conninfo: any libpq connection string or URI. Connects at once, reconnects
 * with backoff (100 ms .. 5 s). Returns NULL only on a conninfo that does not parse. */
pgc_t *pgc_new(struct event_base *base, const char *conninfo, const char *name);
/* The same, with libpq "options" for the session (e.g. "-c enable_hashjoin=off");
 * settings in conninfo still win. */
pgc_t *pgc_new_opts(struct event_base *base, const char *conninfo, const char *name, const char *options);
/* Callbacks of queries not yet answered are called with res NULL. */
void pgc_free(pgc_t *pg);
int pgc_ready(const pgc_t *pg);
void pgc_on_connect(pgc_t *pg, pgc_event_fn *fn, void *arg);

/* Queue a query with text-format parameters (NULL entry = SQL NULL). sql and
 * params are copied. While disconnected, queries wait in the queue (up to
 * 100000, then fail at once with res NULL) and are sent after reconnecting.
 * A query that was sent and whose connection died is failed (res NULL), not
 * resent: the caller decides whether it is safe to repeat. */
void pgc_query(pgc_t *pg, const char *sql, int nparams, const char *const *params,
               pgc_result_fn *fn, void *arg);

/* pgc_query as the unnamed statement, never prepared: PostgreSQL plans it
 * for these parameter values each time (a custom plan), where a cached
 * generic plan cannot know how selective a value is (searches). */
void pgc_query_once(pgc_t *pg, const char *sql, int nparams, const char *const *params, pgc_result_fn *fn,
                    void *arg);

/* Queries queued or in flight. */
int pgc_pending(const pgc_t *pg);

/* Opt-in deadline (0 = none, the default; agents rely on queries waiting out
 * a PostgreSQL restart). With timeout_ms > 0, for queries queued from then on:
 * - a query not answered within timeout_ms of pgc_query fails (res NULL). One
 *   never sent fails with err "not sent: timeout: ..." and is dropped from the
 *   queue: it never reaches the server. One sent and unanswered fails with
 *   "timeout: no answer within N ms"; it may have run. Its connection is then
 *   closed (the server rolls back what it has not committed; libpq's cancel
 *   blocks) and reopened, and the other queries in flight on it fail with
 *   "connection lost: ...".
 * - while PostgreSQL is known unreachable (the last connect attempt failed or
 *   timed out) nothing waits: queued queries and new ones fail on the next loop
 *   iteration with "not sent: postgres unavailable: <why>".
 * - a connect attempt gives up after timeout_ms (else 10 s).
 * Callbacks never run inside pgc_query. */
void pgc_set_timeout(pgc_t *pg, int timeout_ms);

/* Does err (as given to a result callback) say the query never reached the
 * server, so it certainly did not run? ("not sent: ..." above.) */
int pgc_err_not_sent(const char *err);

/* 1 while PostgreSQL is known unreachable: the last connect attempt failed
 * and none succeeded since. */
int pgc_down(const pgc_t *pg);

#endif
