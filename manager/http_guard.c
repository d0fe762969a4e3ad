/* http_guard: the HTTP edge (see http_guard.h). Each accepted connection gets
 * a bufferevent_filter between its socket and evhttp; the filter is a small
 * state machine over the request stream (head, then a Content-Length or
 * chunked body, then the next head), so it knows where each request starts
 * on a keep-alive connection. A head it refuses is replaced by a synthetic
 * "GET <reject path>, Connection: close" request, so the answer goes out
 * through evhttp and the handler in order, and the client's bytes after it
 * are discarded unread by evhttp. Checked against libevent 2.1.12 (http.c,
 * bufferevent_filter.c, listener.c). */
#include "http_guard.h"

#include <errno.h>
#include <stdarg.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include "http_head.h"
#include "log.h"
#include "metrics.h"
#include "netaddr.h"
#include "xalloc.h"

#define GUARD_REJECT_PATH "/.devsys-guard-rejected"
#define GUARD_READ_WM (64 * 1024)  /* socket bytes buffered per connection at most (plus one head) */
#define GUARD_CHUNK_LINE_MAX 1024  /* chunk-size line */
#define GUARD_LOG_EVERY_MS 10000   /* accept errors / cap: one log line per this */
#define GUARD_BACKOFF_MAX_MS 1000
#define GUARD_EVICT_SLACK 16       /* connections over the cap while those cut for newcomers close */

enum phase {
    PH_HEAD,       /* reading a request head */
    PH_AUTH_WAIT,  /* head complete, token lookup in flight: body held */
    PH_BODY,       /* passing remaining Content-Length bytes */
    PH_CHUNK_SIZE, /* chunked: expecting a chunk-size line */
    PH_CHUNK_DATA, /* chunked: passing remaining chunk bytes */
    PH_CHUNK_END,  /* chunked: expecting the CRLF after a chunk */
    PH_TRAILER,    /* chunked: trailer lines up to the empty one */
    PH_DISCARD,    /* refused or cut off: everything read is dropped */
};

struct conn {
    guard_t *g; /* NULL once guard_free ran */
    struct bufferevent *bev, *under;
    struct event *timer;
    struct event *writable; /* the socket, while a response waits to be written */
    struct evbuffer_cb_entry *out_cb;
    struct conn *prev, *next;
    enum phase phase;
    size_t scan;         /* head/trailer bytes already scanned (complete lines) */
    size_t head_len;     /* PH_AUTH_WAIT: bytes of the held head */
    int chunked;
    unsigned long long remaining, body_total, content_length;
    size_t body_max;     /* this request's bound: max_body, or max_artifact_body for an artifact PUT */
    long long request_started_ms; /* 0 = between requests */
    int auth_pending, auth_sync, auth_done;
    struct auth_result auth;
    int has_verdict;
    int flushing; /* conn_writable is running the output filter */
    struct guard_verdict verdict;
};

struct guard {
    struct event_base *base;
    struct evhttp *http;
    auth_t *auth;
    const uisess_t *sessions; /* console session cookies stand for their token (NULL: none) */
    struct guard_limits lim;
    const char *const *public_paths;
    struct evconnlistener *lev;
    struct evhttp_bound_socket *bound;
    struct event *resume;
    int listening, paused, stopped;
    int backoff_ms;
    struct conn *conns;
    int nconns;
    long long log_next_ms;
    long suppressed;
    struct guard *next_guard;
    metric_t *m_conns, *m_accept_errors, *m_timeouts, *m_refused, *m_evicted;
};

/* The accept-error callback gets evhttp's argument (evhttp_bind_listener sets
 * the listener's user data), not ours: guards are found by their evhttp. */
static guard_t *all_guards;

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timeval tv_of_ms(long long ms)
{
    if (ms < 1)
        ms = 1;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

void guard_set_sessions(guard_t *g, const uisess_t *sessions)
{
    g->sessions = sessions;
}

/* ---------------------------------------------------------------- listening */

/* At most one line per GUARD_LOG_EVERY_MS, with the count of those skipped:
 * at the descriptor limit accept() fails as fast as the loop can spin. */
static void guard_log(guard_t *g, const char *what)
{
    long long now = mono_ms();
    if (now < g->log_next_ms) {
        g->suppressed++;
        return;
    }
    log_warn("http: %s (%ld similar events in the last %d s not logged)", what, g->suppressed,
             GUARD_LOG_EVERY_MS / 1000);
    g->suppressed = 0;
    g->log_next_ms = now + GUARD_LOG_EVERY_MS;
}

/* Fair handling at the cap: the connection whose unfinished request head
 * began longest ago (a slow or stuck client: a normal head takes
 * milliseconds), to be cut for a newcomer; NULL when none is mid-head. */
static struct conn *conn_victim(const guard_t *g)
{
    struct conn *v = NULL;
    for (struct conn *c = g->conns; c; c = c->next)
        if (c->phase == PH_HEAD && c->request_started_ms && (!v || c->request_started_ms < v->request_started_ms))
            v = c;
    return v;
}

/* At the cap it goes on accepting (up to GUARD_EVICT_SLACK over, while cut
 * connections close) as long as a slow head can be cut for the newcomer. */
static void guard_update_listening(guard_t *g)
{
    if (!g->lev)
        return;
    int want = !g->stopped && !g->paused &&
               (g->nconns < g->lim.max_conns || (g->nconns < g->lim.max_conns + GUARD_EVICT_SLACK && conn_victim(g)));
    if (want && !g->listening)
        evconnlistener_enable(g->lev);
    else if (!want && g->listening)
        evconnlistener_disable(g->lev);
    g->listening = want;
}

static void guard_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    guard_t *g = arg;
    g->paused = 0;
    guard_update_listening(g);
}

/* accept() failed with something other than EAGAIN/EINTR (EMFILE, ENFILE,
 * ENOBUFS...): the socket stays readable, so stop listening for a while
 * instead of spinning, and back off while it goes on. */
static void guard_accept_error(struct evconnlistener *lev, void *arg)
{
    (void)lev;
    guard_t *g = all_guards;
    while (g && g->http != arg)
        g = g->next_guard;
    if (!g)
        return;
    int err = EVUTIL_SOCKET_ERROR();
    char what[160];
    metric_add(g->m_accept_errors, 1);
    g->backoff_ms = g->backoff_ms ? g->backoff_ms * 2 : 50;
    if (g->backoff_ms > GUARD_BACKOFF_MAX_MS)
        g->backoff_ms = GUARD_BACKOFF_MAX_MS;
    snprintf(what, sizeof what, "accept failed: %s; not accepting for %d ms", evutil_socket_error_to_string(err),
             g->backoff_ms);
    guard_log(g, what);
    g->paused = 1;
    guard_update_listening(g);
    struct timeval tv = tv_of_ms(g->backoff_ms);
    evtimer_add(g->resume, &tv);
}

/* ---------------------------------------------------------------- connection */

static void conn_arm(struct conn *c, long long ms)
{
    struct timeval tv = tv_of_ms(ms);
    evtimer_add(c->timer, &tv);
}

static size_t src_len(struct evbuffer *b)
{
    return evbuffer_get_length(b);
}

/* Has evhttp freed the connection? Its bufferevents then live on until their
 * finalizers run (conn_free), and touching them would count their references
 * up and down and free them a second time. bufferevent_free clears the
 * callbacks, and a live socket bufferevent always has the filter's. */
static int conn_closed(const struct conn *c)
{
    bufferevent_event_cb eventcb = NULL;
    bufferevent_getcb(c->under, NULL, NULL, &eventcb, NULL);
    return eventcb == NULL;
}

/* Cut the connection: evhttp sees EOF and frees it. Used when a request is
 * already partly passed on (no clean answer possible) or a deadline passed. */
static void conn_kill(struct conn *c)
{
    c->phase = PH_DISCARD;
    struct evbuffer *src = bufferevent_get_input(c->under);
    evbuffer_drain(src, src_len(src)); /* also resumes reading if it was at the watermark */
    evutil_socket_t fd = bufferevent_getfd(c->under);
    if (fd >= 0)
        shutdown(fd, SHUT_RDWR);
    evtimer_del(c->timer);
}

static void conn_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    if (conn_closed(c))
        return;
    if (c->g)
        metric_add(c->g->m_timeouts, 1);
    conn_kill(c);
}

/* Refuse the request whose head is at the start of src: drop everything the
 * client sent and queue the synthetic request that carries the verdict. */
static enum bufferevent_filter_result conn_refuse(struct conn *c, struct evbuffer *src, struct evbuffer *dst,
                                                  int status, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static enum bufferevent_filter_result conn_refuse(struct conn *c, struct evbuffer *src, struct evbuffer *dst,
                                                  int status, const char *reason, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->verdict.message, sizeof c->verdict.message, fmt, ap);
    va_end(ap);
    c->verdict.status = status;
    c->verdict.reason = reason;
    c->has_verdict = 1;
    if (c->g && status != 401 && status != 429)
        metric_add(metric_counter("devsys_http_refused_total", status == 431   ? "reason=\"header_too_large\""
                                                               : status == 413 ? "reason=\"body_too_large\""
                                                               : status == 400 ? "reason=\"bad_framing\""
                                                                               : "reason=\"other\"",
                                  "Requests the HTTP guard refused before reading their body"),
                   1);
    evbuffer_drain(src, src_len(src));
    c->phase = PH_DISCARD;
    evtimer_del(c->timer);
    evbuffer_add_printf(dst, "GET " GUARD_REJECT_PATH " HTTP/1.1\r\nConnection: close\r\n\r\n");
    return BEV_OK;
}

static void request_end(struct conn *c)
{
    c->phase = PH_HEAD;
    c->scan = 0;
    c->request_started_ms = 0;
    evtimer_del(c->timer);
}

/* Finds the next line end at or after from. Returns its offset (-1 if none)
 * and sets *eol_len (1 or 2). */
static ssize_t find_eol(struct evbuffer *b, size_t from, size_t *eol_len)
{
    struct evbuffer_ptr p;
    if (evbuffer_ptr_set(b, &p, from, EVBUFFER_PTR_SET) < 0)
        return -1;
    struct evbuffer_ptr e = evbuffer_search_eol(b, &p, eol_len, EVBUFFER_EOL_CRLF);
    return e.pos;
}

static void conn_auth_done(const struct auth_result *res, void *arg)
{
    struct conn *c = arg;
    c->auth = *res;
    c->auth.actor = NULL; /* not kept: the handler authenticates again from the cache */
    c->auth_done = 1;
    c->auth_pending = 0;
    if (!c->auth_sync && !conn_closed(c)) /* the filter returned; run it again on the held bytes */
        bufferevent_trigger(c->under, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

/* The head (c->head_len bytes at the start of src) is accepted: pass it on and
 * set up the body. */
static enum bufferevent_filter_result conn_pass_head(struct conn *c, struct evbuffer *src, struct evbuffer *dst)
{
    evbuffer_remove_buffer(src, dst, c->head_len);
    c->scan = 0;
    if (c->chunked) {
        c->phase = PH_CHUNK_SIZE;
        c->body_total = 0;
    } else if (c->content_length > 0) {
        c->phase = PH_BODY;
        c->remaining = c->content_length;
    } else {
        request_end(c);
        return BEV_OK;
    }
    long long left = c->request_started_ms + (long long)(c->g->lim.request_timeout_s * 1000) - mono_ms();
    conn_arm(c, left);
    return BEV_OK;
}

static enum bufferevent_filter_result conn_auth_decided(struct conn *c, struct evbuffer *src, struct evbuffer *dst)
{
    c->auth_done = 0;
    switch (c->auth.outcome) {
    case AUTH_OK:
        return conn_pass_head(c, src, dst);
    case AUTH_MISSING:
        return conn_refuse(c, src, dst, 401, auth_outcome_name(AUTH_MISSING), "missing bearer token");
    case AUTH_INVALID:
        return conn_refuse(c, src, dst, 401, auth_outcome_name(AUTH_INVALID), "invalid or revoked bearer token");
    case AUTH_LIMITED:
        return conn_refuse(c, src, dst, 429, auth_outcome_name(AUTH_LIMITED),
                           "too many requests with unknown tokens; retry in a second");
    case AUTH_UNAVAILABLE:
    default:
        return conn_refuse(c, src, dst, 503, auth_outcome_name(AUTH_UNAVAILABLE),
                           "cannot check the token: database unavailable");
    }
}

static enum bufferevent_filter_result conn_head(struct conn *c, struct evbuffer *src, struct evbuffer *dst)
{
    const struct guard_limits *lim = &c->g->lim;
    if (c->request_started_ms == 0) {
        /* blank lines before a request line are allowed (RFC 9112 2.2) */
        unsigned char ch;
        while (evbuffer_copyout(src, &ch, 1) == 1 && (ch == '\r' || ch == '\n'))
            evbuffer_drain(src, 1);
        if (src_len(src) == 0)
            return BEV_NEED_MORE;
        c->request_started_ms = mono_ms();
        conn_arm(c, (long long)(lim->header_timeout_s * 1000));
        guard_update_listening(c->g); /* at the cap: a head to cut for a newcomer */
    }
    size_t head_len = 0;
    for (;;) {
        size_t eol_len = 0;
        ssize_t eol = find_eol(src, c->scan, &eol_len);
        if (eol < 0)
            break;
        if ((size_t)eol == c->scan && c->scan > 0) {
            head_len = (size_t)eol + eol_len;
            break;
        }
        c->scan = (size_t)eol + eol_len;
    }
    c->verdict.path[0] = '\0';
    if (head_len == 0 ? src_len(src) > lim->max_header : head_len > lim->max_header)
        return conn_refuse(c, src, dst, 431, "header_too_large",
                           "request line and headers exceed %zu bytes (DEVSYS_HTTP_MAX_HEADER_BYTES)",
                           lim->max_header);
    if (head_len == 0)
        return BEV_NEED_MORE;

    struct http_head h;
    http_head_parse((const char *)evbuffer_pullup(src, (ev_ssize_t)head_len), head_len, &h);
    snprintf(c->verdict.path, sizeof c->verdict.path, "%s", h.path);
    if (h.n_content_length > 1)
        return conn_refuse(c, src, dst, 400, "bad_framing", "more than one Content-Length header");
    if (h.bad_content_length)
        return conn_refuse(c, src, dst, 400, "bad_framing", "Content-Length is not a decimal byte count");
    if (h.n_transfer_encoding > 1 || (h.n_transfer_encoding && !h.chunked))
        return conn_refuse(c, src, dst, 400, "bad_framing", "only \"Transfer-Encoding: chunked\" is supported");
    if (h.n_transfer_encoding && h.n_content_length)
        return conn_refuse(c, src, dst, 400, "bad_framing", "both Transfer-Encoding and Content-Length");
    if (h.folded || h.no_colon)
        return conn_refuse(c, src, dst, 400, "bad_framing", "malformed header line (folded or without ':')");
    /* an artifact's body may be larger: the route streams it to disk */
    int artifact_put = head_len > 4 && memcmp(evbuffer_pullup(src, 4), "PUT ", 4) == 0 &&
                       strncmp(h.path, "/v1/artifacts/", 14) == 0;
    c->body_max = artifact_put ? lim->max_artifact_body : lim->max_body;
    if (h.n_content_length && h.content_length > c->body_max)
        return conn_refuse(c, src, dst, 413, "body_too_large",
                           "request body of %llu bytes exceeds the limit of %zu bytes (%s)", h.content_length,
                           c->body_max, artifact_put ? "DEVSYS_ARTIFACT_MAX_BYTES" : "DEVSYS_MAX_BODY");
    if (h.n_authorization > 1)
        return conn_refuse(c, src, dst, 400, "bad_framing", "more than one Authorization header");
    c->head_len = head_len;
    c->chunked = h.chunked;
    c->content_length = h.n_content_length ? h.content_length : 0;
    if (http_path_is_public(c->g->public_paths, h.path)) {
        if (c->chunked || c->content_length > 0) /* no unauthenticated bodies */
            return conn_refuse(c, src, dst, 413, "body_too_large", "%s takes no request body", h.path);
        return conn_pass_head(c, src, dst);
    }
    if (h.auth_too_long) {
        c->auth.outcome = AUTH_INVALID;
        return conn_auth_decided(c, src, dst);
    }
    c->phase = PH_AUTH_WAIT;
    c->auth_done = 0;
    c->auth_sync = 1;
    c->auth_pending = 1;
    const char *authz = h.n_authorization ? h.authorization : NULL;
    struct uisess_open so;
    if (!authz && h.session[0] && c->g->sessions && uisess_open(c->g->sessions, h.session, &so) == 0)
        authz = so.bearer; /* a console session is its token */
    auth_check(c->g->auth, authz, conn_auth_done, c);
    c->auth_sync = 0;
    if (!c->auth_done)
        return BEV_NEED_MORE; /* conn_auth_done runs the filter again */
    c->phase = PH_HEAD;
    return conn_auth_decided(c, src, dst);
}

/* Moves up to n bytes of body on; returns the number moved. */
static size_t pass_body(struct evbuffer *src, struct evbuffer *dst, unsigned long long n)
{
    size_t have = src_len(src);
    size_t take = n < have ? (size_t)n : have;
    if (take)
        evbuffer_remove_buffer(src, dst, take);
    return take;
}

static enum bufferevent_filter_result conn_chunked(struct conn *c, struct evbuffer *src, struct evbuffer *dst)
{
    size_t eol_len = 0;
    ssize_t eol;
    switch (c->phase) {
    case PH_CHUNK_SIZE: {
        eol = find_eol(src, 0, &eol_len);
        if (eol < 0) {
            if (src_len(src) > GUARD_CHUNK_LINE_MAX)
                conn_kill(c);
            return BEV_NEED_MORE;
        }
        char line[GUARD_CHUNK_LINE_MAX + 1];
        size_t ll = (size_t)eol < GUARD_CHUNK_LINE_MAX ? (size_t)eol : GUARD_CHUNK_LINE_MAX;
        evbuffer_copyout(src, line, ll);
        line[ll] = '\0';
        char *endp;
        errno = 0;
        unsigned long long size = strtoull(line, &endp, 16);
        if (endp == line || errno || line[0] == '-') {
            conn_kill(c);
            return BEV_NEED_MORE;
        }
        c->body_total += size;
        if (c->body_total > c->body_max || size > c->body_max) {
            /* evhttp sees a size line past its own bound (the largest of all
             * routes; http_api.c sets it + 1) and answers 413 itself */
            evbuffer_drain(src, (size_t)eol + eol_len);
            const struct guard_limits *lim = &c->g->lim;
            size_t evhttp_max = lim->max_body > lim->max_artifact_body ? lim->max_body : lim->max_artifact_body;
            evbuffer_add_printf(dst, "%zx\r\n", evhttp_max + 2);
            c->phase = PH_DISCARD;
            return BEV_OK;
        }
        evbuffer_remove_buffer(src, dst, (size_t)eol + eol_len);
        c->remaining = size;
        c->phase = size ? PH_CHUNK_DATA : PH_TRAILER;
        return BEV_OK;
    }
    case PH_CHUNK_DATA:
        c->remaining -= pass_body(src, dst, c->remaining);
        if (c->remaining == 0)
            c->phase = PH_CHUNK_END;
        return BEV_OK;
    case PH_CHUNK_END:
        eol = find_eol(src, 0, &eol_len);
        if (eol != 0) {
            if (eol > 0 || src_len(src) >= 2)
                conn_kill(c); /* chunk data longer than its size line said */
            return BEV_NEED_MORE;
        }
        evbuffer_remove_buffer(src, dst, eol_len);
        c->phase = PH_CHUNK_SIZE;
        return BEV_OK;
    case PH_TRAILER:
    default:
        eol = find_eol(src, 0, &eol_len);
        if (eol < 0) {
            if (c->scan + src_len(src) > c->g->lim.max_header)
                conn_kill(c);
            return BEV_NEED_MORE;
        }
        c->scan += (size_t)eol + eol_len;
        evbuffer_remove_buffer(src, dst, (size_t)eol + eol_len);
        if (eol == 0)
            request_end(c);
        return BEV_OK;
    }
}

/* The input filter: src is what the socket delivered, dst what evhttp reads.
 * Each call makes progress or returns BEV_NEED_MORE. */
static enum bufferevent_filter_result conn_filter(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t limit,
                                                  enum bufferevent_flush_mode mode, void *ctx)
{
    (void)limit;
    (void)mode;
    struct conn *c = ctx;
    if (!c->g) { /* the server is going away */
        evbuffer_drain(src, src_len(src));
        return BEV_NEED_MORE;
    }
    if (src_len(src) == 0 && !(c->phase == PH_AUTH_WAIT && c->auth_done))
        return BEV_NEED_MORE;
    switch (c->phase) {
    case PH_HEAD:
        return conn_head(c, src, dst);
    case PH_AUTH_WAIT:
        if (!c->auth_done)
            return BEV_NEED_MORE;
        c->phase = PH_HEAD;
        return conn_auth_decided(c, src, dst);
    case PH_BODY:
        c->remaining -= pass_body(src, dst, c->remaining);
        if (c->remaining == 0)
            request_end(c);
        return BEV_OK;
    case PH_DISCARD:
        evbuffer_drain(src, src_len(src));
        return BEV_NEED_MORE;
    default:
        return conn_chunked(c, src, dst);
    }
}

/* ---------------------------------------------------------------- output */

/* The output side writes straight to the socket and reports a response sent
 * only once the kernel has all of it. Through the socket bufferevent instead,
 * evhttp would see the filter's buffer empty, close a "Connection: close"
 * connection and lose what the socket bufferevent still held. It writes only
 * from conn_writable (bufferevent_flush holds a reference on the filter):
 * run from the socket's write callback, which holds none, evhttp may free the
 * connection inside it and libevent 2.1.12 then re-arms the freed filter's
 * write timeout. */
static enum bufferevent_filter_result conn_out_filter(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t limit,
                                                      enum bufferevent_flush_mode mode, void *ctx)
{
    (void)dst;
    (void)limit;
    (void)mode;
    struct conn *c = ctx;
    if (!c->flushing)
        return BEV_NEED_MORE;
    evutil_socket_t fd = bufferevent_getfd(c->under);
    while (src_len(src) > 0) {
        int n = evbuffer_write(src, fd);
        if (n > 0)
            continue;
        int err = EVUTIL_SOCKET_ERROR();
        if (n < 0 && (err == EAGAIN || err == EWOULDBLOCK || err == EINTR))
            return BEV_NEED_MORE; /* c->writable fires when there is room */
        evbuffer_drain(src, src_len(src)); /* peer gone: reading will see it too */
        conn_kill(c);
        break;
    }
    return BEV_OK;
}

static void conn_writable(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    if (!conn_closed(c)) {
        c->flushing = 1;
        bufferevent_flush(c->bev, EV_WRITE, BEV_NORMAL);
        c->flushing = 0;
    }
    if (conn_closed(c) || src_len(bufferevent_get_output(c->bev)) == 0)
        event_del(c->writable);
}

/* evhttp adds a response to the filter's output before it enables writing,
 * and enabling a filter does not look at what is already there (2.1.12):
 * the socket's write readiness runs the output filter instead. */
static void conn_out_added(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    (void)buf;
    struct conn *c = arg;
    if (info->n_added == 0)
        return;
    if (!c->writable) {
        evutil_socket_t fd = bufferevent_getfd(c->under);
        if (fd < 0)
            return;
        c->writable = event_new(bufferevent_get_base(c->under), fd, EV_WRITE | EV_PERSIST, conn_writable, c);
    }
    event_add(c->writable, NULL);
}

/* free_context of the filter: the connection is gone (evhttp freed it). */
static void conn_free(void *arg)
{
    struct conn *c = arg;
    guard_t *g = c->g;
    if (g) {
        if (c->auth_pending)
            auth_cancel(g->auth, c);
        if (c->prev)
            c->prev->next = c->next;
        else
            g->conns = c->next;
        if (c->next)
            c->next->prev = c->prev;
        g->nconns--;
        metric_set(g->m_conns, g->nconns);
        guard_update_listening(g);
    }
    evbuffer_remove_cb_entry(bufferevent_get_output(c->bev), c->out_cb);
    if (c->writable)
        event_free(c->writable);
    event_free(c->timer);
    free(c);
}

/* evhttp's bevcb: called once per accepted connection, before evhttp sets the
 * socket on the bufferevent we return (the filter passes it to `under`). */
static struct bufferevent *guard_bevcb(struct event_base *base, void *arg)
{
    guard_t *g = arg;
    struct conn *c = xcalloc(1, sizeof *c);
    c->g = g;
    c->under = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!c->under)
        abort();
    size_t wm = g->lim.max_header + 2 > GUARD_READ_WM ? g->lim.max_header + 2 : GUARD_READ_WM;
    bufferevent_setwatermark(c->under, EV_READ, 0, wm);
    c->bev = bufferevent_filter_new(c->under, conn_filter, conn_out_filter, BEV_OPT_CLOSE_ON_FREE, conn_free, c);
    if (!c->bev)
        abort();
    c->out_cb = evbuffer_add_cb(bufferevent_get_output(c->bev), conn_out_added, c);
    c->timer = evtimer_new(base, conn_timeout, c);
    conn_arm(c, (long long)(g->lim.header_timeout_s * 1000));
    c->next = g->conns;
    if (g->conns)
        g->conns->prev = c;
    g->conns = c;
    g->nconns++;
    g->backoff_ms = 0;
    metric_set(g->m_conns, g->nconns);
    struct conn *v = g->nconns > g->lim.max_conns ? conn_victim(g) : NULL;
    if (v) {
        metric_add(g->m_evicted, 1);
        conn_kill(v);
    }
    if (g->nconns >= g->lim.max_conns) {
        metric_add(g->m_refused, 1);
        char what[128];
        snprintf(what, sizeof what, "%d connections open (DEVSYS_HTTP_MAX_CONNS): slow heads are cut for new ones, else they wait", g->nconns);
        guard_log(g, what);
    }
    guard_update_listening(g);
    return c->bev;
}

/* A response went out: a pipelined request may already wait in the socket
 * buffer, and the filter only runs again when the socket delivers more. */
static void conn_request_done(struct evhttp_request *r, void *arg)
{
    (void)r;
    struct conn *c = arg;
    if (src_len(bufferevent_get_input(c->under)) > 0)
        bufferevent_trigger(c->under, EV_READ, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

const struct guard_verdict *guard_request(guard_t *g, struct evhttp_request *r)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(r);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    struct conn *c = g->conns;
    while (c && c->bev != bev)
        c = c->next;
    if (!c)
        return NULL;
    evhttp_request_set_on_complete_cb(r, conn_request_done, c);
    const char *uri = evhttp_request_get_uri(r);
    if (c->has_verdict && uri && strcmp(uri, GUARD_REJECT_PATH) == 0)
        return &c->verdict;
    return NULL;
}

/* ---------------------------------------------------------------- lifecycle */

guard_t *guard_new(struct event_base *base, struct evhttp *http, auth_t *auth, const struct guard_limits *lim,
                   const char *const *public_paths, const char *host, unsigned port, char *err, size_t errlen)
{
    struct evutil_addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = EVUTIL_AI_PASSIVE | EVUTIL_AI_ADDRCONFIG;
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%u", port);
    int rc = evutil_getaddrinfo(*host ? host : NULL, portstr, &hints, &ai);
    if (rc != 0) {
        snprintf(err, errlen, "cannot listen on %s:%u: %s", host, port, evutil_gai_strerror(rc));
        return NULL;
    }
    guard_t *g = xcalloc(1, sizeof *g);
    g->base = base;
    g->http = http;
    g->auth = auth;
    g->lim = *lim;
    g->public_paths = public_paths;
    g->lev = evconnlistener_new_bind(base, NULL, NULL,
                                     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 511,
                                     ai->ai_addr, (int)ai->ai_addrlen);
    evutil_freeaddrinfo(ai);
    if (!g->lev) {
        snprintf(err, errlen, "cannot listen on %s:%u: %s", host, port,
                 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        free(g);
        return NULL;
    }
    g->listening = 1;
    char addr[80]; /* port 0 binds a free port: say which one */
    netaddr_local(evconnlistener_get_fd(g->lev), addr, sizeof addr);
    log_info("listening on %s", addr);
    g->bound = evhttp_bind_listener(http, g->lev); /* evhttp's accept callback; it frees the listener */
    evconnlistener_set_error_cb(g->lev, guard_accept_error);
    evhttp_set_bevcb(http, guard_bevcb, g);
    struct timeval idle = tv_of_ms((long long)(lim->idle_timeout_s * 1000));
    evhttp_set_timeout_tv(http, &idle);
    /* a backstop: the filter refuses longer heads before evhttp sees them */
    evhttp_set_max_headers_size(http, (ev_ssize_t)lim->max_header * 2 + 1024);
    g->resume = evtimer_new(base, guard_resume, g);
    g->m_conns = metric_gauge("devsys_http_connections", NULL, "Open HTTP connections");
    g->m_accept_errors = metric_counter("devsys_http_accept_errors_total", NULL,
                                        "accept() failures (e.g. out of file descriptors)");
    g->m_timeouts = metric_counter("devsys_http_timeouts_total", NULL,
                                   "Connections cut for a late request head or body");
    g->m_refused = metric_counter("devsys_http_conn_cap_reached_total", NULL,
                                  "Times the connection cap was reached");
    g->m_evicted = metric_counter("devsys_http_slow_heads_cut_total", NULL,
                                  "Connections cut at the cap for a newcomer: the oldest unfinished request head");
    g->next_guard = all_guards;
    all_guards = g;
    return g;
}

void guard_stop_accepting(guard_t *g)
{
    g->stopped = 1;
    if (g->bound) {
        evhttp_del_accept_socket(g->http, g->bound);
        g->bound = NULL;
        g->lev = NULL;
    }
}

int guard_conns(const guard_t *g)
{
    return g->nconns;
}

int guard_listen_fd(const guard_t *g)
{
    return g->lev ? evconnlistener_get_fd(g->lev) : -1;
}

void guard_free(guard_t *g)
{
    if (!g)
        return;
    guard_stop_accepting(g);
    for (guard_t **p = &all_guards; *p; p = &(*p)->next_guard)
        if (*p == g) {
            *p = g->next_guard;
            break;
        }
    /* connections are freed by evhttp_free, later: cut them loose */
    for (struct conn *c = g->conns; c; c = c->next) {
        if (c->auth_pending)
            auth_cancel(g->auth, c);
        c->auth_pending = 0;
        c->g = NULL;
    }
    event_free(g->resume);
    free(g);
}
