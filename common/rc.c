/* rc: async Redis client on the shared libevent loop (see rc.h). hiredis does
 * the protocol; this file adds URL parsing, AUTH/SELECT, reconnect with
 * exponential backoff, and a free that is safe from inside callbacks. */
#include "rc.h"

#include "log.h"
#include "metrics.h"
#include "xalloc.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libevent.h>

#define RC_BACKOFF_MIN_MS 100
#define RC_BACKOFF_MAX_MS 5000
/* hiredis 0.14 has no connect timeout: a SYN into a black hole would hang
 * for the kernel's ~2 minutes, so connect + AUTH/SELECT get this long. */
#ifndef RC_CONNECT_TIMEOUT_MS
#define RC_CONNECT_TIMEOUT_MS 10000
#endif

enum rc_state {
    RC_WAITING,    /* no context; retry_ev is armed (or we are freeing) */
    RC_CONNECTING, /* context exists, TCP connect in progress */
    RC_HANDSHAKE,  /* connected, AUTH/SELECT replies outstanding */
    RC_READY,      /* rc_command works */
    RC_LOST,       /* hiredis is failing pending commands; onDisconnect follows */
};

/* One per command handed to hiredis (the privdata). hiredis calls every
 * callback exactly once, with NULL when the context goes away, so a request
 * is freed only in rc_reply_cb, never by rc_free (which only cancels it). */
struct rc_req {
    struct rc_req *prev, *next;
    rc_t *rc;
    rc_reply_fn *fn;
    void *arg;
    int handshake; /* internal AUTH/SELECT, not counted in rc_pending */
    double sent;   /* metric_now() when sent: its round trip */
    int cancelled; /* already answered with NULL by rc_free */
};

struct rc_hook {
    struct rc_hook *next;
    rc_event_fn *fn;
    void *arg;
};

struct rc {
    struct event_base *base;
    char *name;
    char *host;
    char *user;     /* NULL unless the URL names one */
    char *password; /* NULL when no AUTH */
    int port;
    int db;

    redisAsyncContext *ac;
    enum rc_state state;
    int backoff_ms;
    int failures; /* consecutive failed attempts, to keep logs quiet */
    int handshake_left;
    int established; /* this connection reached RC_READY */

    struct event *retry_ev;
    struct event *timeout_ev;
    struct event *free_ev;

    struct rc_req *reqs; /* outstanding requests, newest first */
    int pending;         /* user commands among reqs */
    struct rc_hook *on_connect, *on_disconnect;

    int depth;   /* > 0 while user code runs from inside hiredis */
    int freeing; /* rc_free was called */

    /* metrics: devsys_redis_*{conn="<name>"}; round trips only on
     * connections that do not block (rc_mark_blocking) */
    metric_t *m_rtt, *m_reconnects;
    int ever_ready;
    int counted_down; /* counted in rc_down below */
};

/* Clients of this process not ready: devsys_redis_up is 1 when none is. */
static int rc_down;
static metric_t *m_up;

static void rc_set_down(rc_t *rc, int down)
{
    if (rc->counted_down == down)
        return;
    rc->counted_down = down;
    rc_down += down ? 1 : -1;
    if (!m_up)
        m_up = metric_gauge("devsys_redis_up", NULL, "1 when every Redis connection of this process is ready");
    metric_set(m_up, rc_down == 0);
}

static void rc_connect(rc_t *rc);
static void rc_free_cb(evutil_socket_t fd, short what, void *arg);

/* ---------------------------------------------------------------- URL */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Percent-decodes s[0..n) into a new string; caller frees. NULL on a bad escape. */
static char *percent_decode(const char *s, size_t n)
{
    char *out = xmalloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            out[o++] = s[i];
            continue;
        }
        int hi = i + 2 < n ? hexval((unsigned char)s[i + 1]) : -1;
        int lo = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
        if (hi < 0 || lo < 0) {
            free(out);
            return NULL;
        }
        out[o++] = (char)(hi * 16 + lo);
        i += 2;
    }
    out[o] = '\0';
    return out;
}

/* Parses redis://[[user]:password@]host[:port][/db] into rc. Returns 0, or -1
 * with a reason in err. A userinfo without ':' is the password, as in redis-cli. */
static int rc_parse_url(rc_t *rc, const char *url, char *err, size_t errlen)
{
    static const char scheme[] = "redis://";
    if (strncasecmp(url, scheme, sizeof scheme - 1) != 0) {
        snprintf(err, errlen, "URL must start with redis:// (rediss:// is not supported)");
        return -1;
    }
    const char *p = url + sizeof scheme - 1;
    const char *end = p + strcspn(p, "/?#");
    const char *at = NULL;
    for (const char *s = p; s < end; s++)
        if (*s == '@')
            at = s;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon) {
            if (colon > p)
                rc->user = percent_decode(p, (size_t)(colon - p));
            rc->password = percent_decode(colon + 1, (size_t)(at - colon - 1));
            if ((colon > p && !rc->user) || !rc->password) {
                snprintf(err, errlen, "bad %%-escape in user or password");
                return -1;
            }
        } else {
            rc->password = percent_decode(p, (size_t)(at - p));
            if (!rc->password) {
                snprintf(err, errlen, "bad %%-escape in password");
                return -1;
            }
        }
        p = at + 1;
    }

    const char *host_end;
    const char *port_at;
    if (*p == '[') {
        host_end = memchr(p, ']', (size_t)(end - p));
        if (!host_end) {
            snprintf(err, errlen, "unterminated [ in host");
            return -1;
        }
        rc->host = xstrndup(p + 1, (size_t)(host_end - p - 1));
        port_at = host_end + 1;
    } else {
        host_end = memchr(p, ':', (size_t)(end - p));
        if (!host_end)
            host_end = end;
        rc->host = xstrndup(p, (size_t)(host_end - p));
        port_at = host_end;
    }
    if (!rc->host[0]) {
        snprintf(err, errlen, "missing host");
        return -1;
    }

    rc->port = 6379;
    if (port_at < end) {
        if (*port_at != ':' || port_at + 1 == end) {
            snprintf(err, errlen, "bad port");
            return -1;
        }
        long port = 0;
        for (const char *s = port_at + 1; s < end; s++) {
            if (!isdigit((unsigned char)*s) || (port = port * 10 + (*s - '0')) > 65535) {
                snprintf(err, errlen, "bad port");
                return -1;
            }
        }
        if (port == 0) {
            snprintf(err, errlen, "bad port");
            return -1;
        }
        rc->port = (int)port;
    }

    rc->db = 0;
    if (*end == '/') {
        const char *s = end + 1;
        long db = 0;
        for (; *s && *s != '?' && *s != '#'; s++) {
            if (!isdigit((unsigned char)*s) || (db = db * 10 + (*s - '0')) > 1000000) {
                snprintf(err, errlen, "database must be a number");
                return -1;
            }
        }
        rc->db = (int)db;
    }
    return 0;
}

/* ------------------------------------------------------------ helpers */

static void ms_to_tv(int ms, struct timeval *tv)
{
    tv->tv_sec = ms / 1000;
    tv->tv_usec = (ms % 1000) * 1000;
}

static void rc_run_hooks(rc_t *rc, struct rc_hook *hooks)
{
    rc->depth++;
    for (struct rc_hook *h = hooks; h && !rc->freeing; h = h->next)
        h->fn(rc, h->arg);
    rc->depth--;
}

static void rc_schedule_retry(rc_t *rc)
{
    if (rc->freeing)
        return;
    struct timeval tv;
    ms_to_tv(rc->backoff_ms, &tv);
    evtimer_add(rc->retry_ev, &tv);
    rc->backoff_ms = rc->backoff_ms * 2 > RC_BACKOFF_MAX_MS ? RC_BACKOFF_MAX_MS : rc->backoff_ms * 2;
}

/* Logs a failed attempt: every one at first, then about once a minute while
 * the server stays away, so a dead Redis does not flood the log. */
static void rc_log_failure(rc_t *rc, const char *what, const char *why)
{
    rc->failures++;
    if (rc->failures <= 3 || rc->failures % 12 == 0)
        log_warn("redis %s: %s %s:%d failed (attempt %d): %s", rc->name, what, rc->host, rc->port,
                 rc->failures, why);
}

static struct rc_req *rc_req_new(rc_t *rc, rc_reply_fn *fn, void *arg, int handshake)
{
    struct rc_req *req = xcalloc(1, sizeof *req);
    req->rc = rc;
    req->fn = fn;
    req->arg = arg;
    req->handshake = handshake;
    req->next = rc->reqs;
    if (rc->reqs)
        rc->reqs->prev = req;
    rc->reqs = req;
    return req;
}

static void rc_req_unlink(rc_t *rc, struct rc_req *req)
{
    if (req->prev)
        req->prev->next = req->next;
    else
        rc->reqs = req->next;
    if (req->next)
        req->next->prev = req->prev;
    req->prev = req->next = NULL;
    if (!req->handshake)
        rc->pending--;
}

/* -------------------------------------------------- hiredis callbacks */

static void rc_ready(rc_t *rc)
{
    evtimer_del(rc->timeout_ev);
    rc->state = RC_READY;
    rc->established = 1;
    rc->backoff_ms = RC_BACKOFF_MIN_MS;
    rc->failures = 0;
    if (rc->ever_ready++)
        metric_add(rc->m_reconnects, 1);
    rc_set_down(rc, 0);
    log_info("redis %s: connected to %s:%d db %d", rc->name, rc->host, rc->port, rc->db);
    rc_run_hooks(rc, rc->on_connect);
}

static void rc_handshake_reply(rc_t *rc, redisReply *reply)
{
    if (!reply || rc->state != RC_HANDSHAKE)
        return; /* the context is going away; onDisconnect will retry */
    if (reply->type == REDIS_REPLY_ERROR) {
        rc->state = RC_LOST;
        rc_log_failure(rc, "AUTH/SELECT on", reply->str);
        /* We are inside a hiredis reply callback (REDIS_IN_CALLBACK), so
         * hiredis defers this free until the callback returns; the pending
         * SELECT gets NULL and onDisconnect schedules the retry. */
        redisAsyncFree(rc->ac);
        return;
    }
    if (--rc->handshake_left == 0)
        rc_ready(rc);
}

static void rc_reply_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    (void)ac;
    struct rc_req *req = privdata;
    if (req->cancelled) {
        free(req);
        return;
    }
    rc_t *rc = req->rc;
    redisReply *reply = r;
    rc_req_unlink(rc, req);
    /* hiredis hands NULL only while tearing the context down: stop taking
     * commands now, before any user callback can try to send one. */
    if (!reply && rc->state == RC_READY)
        rc->state = RC_LOST;
    if (req->handshake) {
        rc_handshake_reply(rc, reply);
    } else if (req->fn) {
        if (reply && rc->m_rtt)
            metric_observe(rc->m_rtt, metric_now() - req->sent);
        rc->depth++;
        req->fn(rc, reply, req->arg);
        rc->depth--;
    }
    free(req);
}

static int rc_send_handshake(rc_t *rc, int argc, const char **argv)
{
    struct rc_req *req = rc_req_new(rc, NULL, NULL, 1);
    if (redisAsyncCommandArgv(rc->ac, rc_reply_cb, req, argc, argv, NULL) != REDIS_OK) {
        rc_req_unlink(rc, req);
        free(req);
        return -1;
    }
    rc->handshake_left++;
    return 0;
}

static void rc_connected_cb(const redisAsyncContext *cac, int status)
{
    rc_t *rc = cac->data;
    if (status != REDIS_OK) {
        /* hiredis frees the context as soon as we return. */
        evtimer_del(rc->timeout_ev);
        rc->ac = NULL;
        rc->state = RC_WAITING;
        rc_log_failure(rc, "connect to", cac->errstr);
        rc_schedule_retry(rc);
        return;
    }
    redisEnableKeepAlive(&rc->ac->c);
    rc->state = RC_HANDSHAKE;
    rc->handshake_left = 0;
    int rv = 0;
    if (rc->password) {
        /* Redis 6+ ACLs: AUTH user pass; a bare password logs in as "default". */
        const char *argv[3] = {"AUTH", rc->user ? rc->user : rc->password, rc->password};
        rv = rc_send_handshake(rc, rc->user ? 3 : 2, argv);
    }
    if (rv == 0 && rc->db != 0) {
        char db[16];
        snprintf(db, sizeof db, "%d", rc->db);
        const char *argv[2] = {"SELECT", db};
        rv = rc_send_handshake(rc, 2, argv);
    }
    if (rv != 0) {
        /* Only possible when hiredis is already tearing the context down. */
        rc->state = RC_LOST;
        return;
    }
    if (rc->handshake_left == 0)
        rc_ready(rc);
}

static void rc_disconnected_cb(const redisAsyncContext *cac, int status)
{
    (void)status;
    rc_t *rc = cac->data;
    int established = rc->established;
    /* RC_LOST before RC_READY means we dropped it ourselves and logged why. */
    int dropped_by_us = rc->state == RC_LOST && !established;
    evtimer_del(rc->timeout_ev);
    rc->ac = NULL;
    rc->state = RC_WAITING;
    rc->established = 0;
    if (rc->freeing)
        return;
    if (established) {
        rc_set_down(rc, 1);
        log_warn("redis %s: connection to %s:%d lost: %s", rc->name, rc->host, rc->port,
                 cac->err ? cac->errstr : "closed");
        rc_run_hooks(rc, rc->on_disconnect);
    } else if (!dropped_by_us) {
        rc_log_failure(rc, "handshake with", cac->err ? cac->errstr : "connection closed");
    }
    rc_schedule_retry(rc);
}

/* ------------------------------------------------------ timers, connect */

static void rc_connect(rc_t *rc)
{
    redisAsyncContext *ac = redisAsyncConnect(rc->host, rc->port);
    if (!ac) {
        rc_log_failure(rc, "connect to", "cannot allocate context");
        rc_schedule_retry(rc);
        return;
    }
    if (ac->err) {
        rc_log_failure(rc, "connect to", ac->errstr);
        redisAsyncFree(ac); /* no callbacks set yet, none can fire */
        rc_schedule_retry(rc);
        return;
    }
    ac->data = rc;
    if (redisLibeventAttach(ac, rc->base) != REDIS_OK) {
        rc_log_failure(rc, "connect to", "cannot attach to the event loop");
        redisAsyncFree(ac);
        rc_schedule_retry(rc);
        return;
    }
    redisAsyncSetConnectCallback(ac, rc_connected_cb);
    redisAsyncSetDisconnectCallback(ac, rc_disconnected_cb);
    rc->ac = ac;
    rc->state = RC_CONNECTING;
    struct timeval tv;
    ms_to_tv(RC_CONNECT_TIMEOUT_MS, &tv);
    evtimer_add(rc->timeout_ev, &tv);
}

static void rc_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rc_t *rc = arg;
    if (!rc->freeing && rc->state == RC_WAITING)
        rc_connect(rc);
}

/* Runs from the loop, outside any hiredis stack, so freeing is safe here. */
static void rc_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rc_t *rc = arg;
    if (rc->state != RC_CONNECTING && rc->state != RC_HANDSHAKE)
        return;
    enum rc_state was = rc->state;
    redisAsyncContext *ac = rc->ac;
    rc_log_failure(rc, "connect to", "timed out");
    if (was == RC_HANDSHAKE) {
        /* Connected: hiredis calls onDisconnect, which schedules the retry. */
        rc->state = RC_LOST;
        redisAsyncFree(ac);
        return;
    }
    /* Not connected yet: hiredis calls no callback at all. */
    rc->ac = NULL;
    rc->state = RC_WAITING;
    redisAsyncFree(ac);
    rc_schedule_retry(rc);
}

/* ------------------------------------------------------------ lifecycle */

rc_t *rc_new(struct event_base *base, const char *url, const char *name)
{
    rc_t *rc = xcalloc(1, sizeof *rc);
    char err[128];
    rc->base = base;
    rc->name = xstrdup(name ? name : "redis");
    if (rc_parse_url(rc, url, err, sizeof err) != 0) {
        log_error("redis %s: cannot parse URL: %s", rc->name, err);
        goto fail;
    }
    rc->backoff_ms = RC_BACKOFF_MIN_MS;
    rc->retry_ev = evtimer_new(base, rc_retry_cb, rc);
    rc->timeout_ev = evtimer_new(base, rc_timeout_cb, rc);
    rc->free_ev = evtimer_new(base, rc_free_cb, rc);
    if (!rc->retry_ev || !rc->timeout_ev || !rc->free_ev) {
        log_error("redis %s: cannot create timers", rc->name);
        goto fail;
    }
    rc->state = RC_WAITING;
    char labels[96];
    snprintf(labels, sizeof labels, "conn=\"%s\"", rc->name);
    rc->m_reconnects = metric_counter("devsys_redis_reconnects_total", labels,
                                      "Redis connections established again after one was lost");
    rc->m_rtt = metric_histogram("devsys_redis_command_seconds", labels, "Redis command round trips",
                                 metric_buckets_latency, metric_buckets_latency_n);
    rc_set_down(rc, 1);
    rc_connect(rc);
    return rc;

fail:
    if (rc->retry_ev)
        event_free(rc->retry_ev);
    if (rc->timeout_ev)
        event_free(rc->timeout_ev);
    if (rc->free_ev)
        event_free(rc->free_ev);
    free(rc->name);
    free(rc->host);
    free(rc->user);
    free(rc->password);
    free(rc);
    return NULL;
}

static void rc_destroy(rc_t *rc)
{
    if (rc->ac) {
        /* Outside hiredis's stack: frees now. Cancelled requests are freed
         * by rc_reply_cb; rc_disconnected_cb sees freeing and returns. */
        redisAsyncContext *ac = rc->ac;
        rc->ac = NULL;
        redisAsyncFree(ac);
    }
    event_free(rc->retry_ev);
    event_free(rc->timeout_ev);
    event_free(rc->free_ev);
    for (int i = 0; i < 2; i++) {
        struct rc_hook *h = i ? rc->on_connect : rc->on_disconnect;
        while (h) {
            struct rc_hook *next = h->next;
            free(h);
            h = next;
        }
    }
    free(rc->name);
    free(rc->host);
    free(rc->user);
    free(rc->password);
    free(rc);
}

static void rc_free_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rc_destroy(arg);
}

void rc_free(rc_t *rc)
{
    if (!rc || rc->freeing)
        return;
    rc->freeing = 1;
    rc_set_down(rc, 0);
    evtimer_del(rc->retry_ev);
    evtimer_del(rc->timeout_ev);

    /* Answer every pending command now, so the caller knows all its
     * callbacks have run when rc_free returns; hiredis still owns the
     * requests and frees them through rc_reply_cb later. */
    rc->depth++;
    while (rc->reqs) {
        struct rc_req *req = rc->reqs;
        rc_req_unlink(rc, req);
        req->cancelled = 1;
        if (!req->handshake && req->fn)
            req->fn(rc, NULL, req->arg);
    }
    rc->depth--;

    if (rc->depth > 0) {
        /* Called from a callback that hiredis is running: free from the loop. */
        static const struct timeval zero = {0, 0};
        evtimer_add(rc->free_ev, &zero);
        return;
    }
    rc_destroy(rc);
}

int rc_connected(const rc_t *rc)
{
    return rc && rc->state == RC_READY && !rc->freeing && rc->ac;
}

static void rc_add_hook(struct rc_hook **list, rc_event_fn *fn, void *arg)
{
    struct rc_hook *h = xcalloc(1, sizeof *h);
    h->fn = fn;
    h->arg = arg;
    while (*list)
        list = &(*list)->next;
    *list = h;
}

void rc_on_connect(rc_t *rc, rc_event_fn *fn, void *arg)
{
    rc_add_hook(&rc->on_connect, fn, arg);
}

void rc_on_disconnect(rc_t *rc, rc_event_fn *fn, void *arg)
{
    rc_add_hook(&rc->on_disconnect, fn, arg);
}

/* ------------------------------------------------------------ commands */

int rc_command(rc_t *rc, rc_reply_fn *fn, void *arg, const char *fmt, ...)
{
    if (!rc_connected(rc))
        return -1;
    struct rc_req *req = rc_req_new(rc, fn, arg, 0);
    if (rc->m_rtt)
        req->sent = metric_now();
    rc->pending++;
    va_list ap;
    va_start(ap, fmt);
    int rv = redisvAsyncCommand(rc->ac, rc_reply_cb, req, fmt, ap);
    va_end(ap);
    if (rv != REDIS_OK) {
        rc_req_unlink(rc, req);
        free(req);
        return -1;
    }
    return 0;
}

int rc_command_argv(rc_t *rc, rc_reply_fn *fn, void *arg, int argc, const char **argv,
                    const size_t *argvlen)
{
    if (!rc_connected(rc))
        return -1;
    struct rc_req *req = rc_req_new(rc, fn, arg, 0);
    if (rc->m_rtt)
        req->sent = metric_now();
    rc->pending++;
    if (redisAsyncCommandArgv(rc->ac, rc_reply_cb, req, argc, argv, argvlen) != REDIS_OK) {
        rc_req_unlink(rc, req);
        free(req);
        return -1;
    }
    return 0;
}

int rc_pending(const rc_t *rc)
{
    return rc ? rc->pending : 0;
}

void rc_mark_blocking(rc_t *rc)
{
    rc->m_rtt = NULL;
}
