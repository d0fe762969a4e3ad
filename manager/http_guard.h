/* http_guard: the manager's HTTP edge, in front of evhttp (which reads a whole
 * body before it calls a handler). It owns the listening socket (connection
 * cap, accept errors paused with backoff and logged at a bounded rate) and
 * filters every connection: each request head is read first, and its size,
 * framing (duplicate Content-Length), declared body size and bearer token are
 * checked before one body byte reaches evhttp. Slow clients are cut off. */
#ifndef DEVSYS_HTTP_GUARD_H
#define DEVSYS_HTTP_GUARD_H

#include <stddef.h>

#include "auth.h"
#include "ui_session.h"

struct event_base;
struct evhttp;
struct evhttp_request;
typedef struct guard guard_t;

struct guard_limits {
    int max_conns;            /* open connections; at it the oldest unfinished head is cut for a newcomer, else accept() waits */
    size_t max_header;        /* request line + headers, bytes (431 past it) */
    size_t max_body;          /* declared or chunked body, bytes (413 past it) */
    size_t max_artifact_body; /* the same for PUT /v1/artifacts/... (authenticated) */
    double header_timeout_s;  /* from connection or first byte to end of head */
    double request_timeout_s; /* from first byte of a request to end of its body */
    double idle_timeout_s;    /* keep-alive idle and stalled reads/writes (evhttp's timeout) */
};

/* A request the guard stopped; evhttp hands it to the handler as usual, which
 * must answer status with message (and close: the request says so). */
struct guard_verdict {
    int status;          /* 400, 401, 413, 429, 431, 503 */
    const char *reason;  /* static: auth outcome name or limit name, for metrics */
    char message[200];
    char path[128];      /* the path the client asked for (for the audit row) */
};

/* Binds host:port, takes over evhttp's connections (bevcb, timeouts).
 * public_paths (NULL-terminated, kept by reference) need no token. Returns
 * NULL with a message in err. */
guard_t *guard_new(struct event_base *base, struct evhttp *http, auth_t *auth, const struct guard_limits *lim,
                   const char *const *public_paths, const char *host, unsigned port, char *err, size_t errlen);
/* Console session cookies (kept by reference) authenticate as their token
 * when a request has no Authorization header. */
void guard_set_sessions(guard_t *g, const uisess_t *sessions);
/* Call first thing for each request: the verdict if the guard stopped it (valid
 * until the handler returns to the loop), else NULL. */
const struct guard_verdict *guard_request(guard_t *g, struct evhttp_request *r);
/* Closes the listening socket; connections go on. */
void guard_stop_accepting(guard_t *g);
int guard_conns(const guard_t *g);
/* The listening socket (for a test or fuzzer that connects to it), or -1. */
int guard_listen_fd(const guard_t *g);
/* Before evhttp_free (it closes the listener) and auth_free. */
void guard_free(guard_t *g);

#endif
