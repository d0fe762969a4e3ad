/* monitor_net: the tcp and dns probes. A name is resolved with getaddrinfo
 * on the monitor's worker threads (common/offload.h), bounded on the loop by
 * the probe's timer; a tcp connect is a nonblocking socket watched by one
 * event with the time left as its timeout. */
#include "monitor_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "offload.h"
#include "xalloc.h"

#define ADDR_MAX 32 /* addresses kept from one lookup */

/* ---------------------------------------------------------------- lookups */

/* One getaddrinfo on a worker. The loop side owns it until submitted; then
 * the worker fills it and the loop frees it when it is back. A probe that
 * stops waiting (timeout, cancel) sets p to NULL: the answer is dropped. */
struct lookup {
    probe_t *p;
    struct event *timer;
    void (*then)(struct lookup *lk); /* on the loop, with p still waiting */
    char *name;
    int gai, err;                    /* getaddrinfo's result and errno */
    struct sockaddr_storage addr[ADDR_MAX];
    socklen_t len[ADDR_MAX];
    int n;
};

static void lookup_work(void *arg)
{
    struct lookup *lk = arg;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    lk->gai = getaddrinfo(lk->name, NULL, &hints, &res);
    lk->err = errno;
    for (struct addrinfo *a = res; a && lk->n < ADDR_MAX; a = a->ai_next) {
        if (a->ai_addrlen > sizeof lk->addr[0])
            continue;
        memcpy(&lk->addr[lk->n], a->ai_addr, a->ai_addrlen);
        lk->len[lk->n++] = a->ai_addrlen;
    }
    if (res)
        freeaddrinfo(res);
}

static void lookup_free(struct lookup *lk)
{
    if (lk->timer)
        event_free(lk->timer);
    free(lk->name);
    free(lk);
}

static void lookup_back(void *arg, int ran)
{
    struct lookup *lk = arg;
    if (!lk->p || !ran) {
        lookup_free(lk);
        return;
    }
    event_free(lk->timer);
    lk->timer = NULL;
    lk->then(lk); /* frees lk */
}

/* "resolve NAME: why" for a failed lookup; caller frees. */
static char *lookup_error(const struct lookup *lk)
{
    return xasprintf("resolve %s: %s", lk->name, lk->gai == EAI_SYSTEM ? strerror(lk->err) : gai_strerror(lk->gai));
}

/* Detaches a lookup still out: its answer will be dropped. */
static void lookup_detach(struct lookup *lk)
{
    lk->p = NULL;
    if (lk->timer) {
        event_free(lk->timer);
        lk->timer = NULL;
    }
}

static void lookup_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct lookup *lk = arg;
    probe_t *p = lk->p;
    char limit[32];
    probe_timeout_text(p, limit);
    char *why = xasprintf("resolve %s timed out after %s", lk->name, limit);
    int dns = p->m->type == MONITOR_DNS;
    /* the probe's state goes; the lookup stays with the pool until it is back */
    p->stop(p);
    probe_finish(p, 0, why, dns ? json_pack("{s:[]}", "addresses") : NULL, -1);
}

static struct lookup *lookup_start(probe_t *p, const char *name, void (*then)(struct lookup *))
{
    struct lookup *lk = xcalloc(1, sizeof *lk);
    lk->p = p;
    lk->then = then;
    lk->name = xstrdup(name);
    lk->timer = evtimer_new(p->run->base, lookup_timeout, lk);
    double left = p->m->timeout_s * 1000.0 - probe_elapsed_ms(p);
    struct timeval tv = {(time_t)(left / 1000), (suseconds_t)((long)left % 1000) * 1000};
    evtimer_add(lk->timer, &tv);
    offload_submit(monitor_pool(p->run->base), lookup_work, lookup_back, lk);
    return lk;
}

static void addr_text(const struct sockaddr_storage *sa, char *out, size_t cap)
{
    const void *a = sa->ss_family == AF_INET6 ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                                              : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;
    if (!inet_ntop(sa->ss_family, a, out, (socklen_t)cap))
        snprintf(out, cap, "?");
}

/* ---------------------------------------------------------------- dns */

static void dns_stop(probe_t *p)
{
    lookup_detach(p->impl);
}

/* The expected address e (validated text) in canonical form. */
static void canonical(const char *e, char *out, size_t cap)
{
    unsigned char buf[16];
    int fam = strchr(e, ':') ? AF_INET6 : AF_INET;
    if (inet_pton(fam, e, buf) != 1 || !inet_ntop(fam, buf, out, (socklen_t)cap))
        snprintf(out, cap, "%s", e);
}

static void dns_answered(struct lookup *lk)
{
    probe_t *p = lk->p;
    json_t *addrs = json_array();
    char text[INET6_ADDRSTRLEN], *why = NULL;
    for (int i = 0; i < lk->n; i++) {
        addr_text(&lk->addr[i], text, sizeof text);
        int seen = 0;
        for (size_t k = 0; k < json_array_size(addrs) && !seen; k++)
            seen = strcmp(json_string_value(json_array_get(addrs, k)), text) == 0;
        if (!seen)
            json_array_append_new(addrs, json_string(text));
    }
    if (lk->gai != 0) {
        why = lookup_error(lk);
    } else {
        size_t i;
        json_t *e;
        json_array_foreach(p->m->dns_expect, i, e)
        {
            canonical(json_string_value(e), text, sizeof text);
            int found = 0;
            for (size_t k = 0; k < json_array_size(addrs) && !found; k++)
                found = strcmp(json_string_value(json_array_get(addrs, k)), text) == 0;
            if (!found) {
                char *got = json_dumps(addrs, JSON_COMPACT);
                why = xasprintf("%s resolved to %s, without the expected %s", lk->name, got, text);
                free(got);
                break;
            }
        }
    }
    lookup_free(lk);
    probe_finish(p, why == NULL, why, json_pack("{s:o}", "addresses", addrs), -1);
}

int monitor_dns_start(probe_t *p, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    p->impl = lookup_start(p, p->m->dns_name, dns_answered);
    p->stop = dns_stop;
    return 0;
}

/* ---------------------------------------------------------------- tcp */

struct tcp {
    probe_t *p;
    struct lookup *lk;      /* while resolving */
    struct event *ev;       /* while connecting */
    int fd;
    struct sockaddr_storage addr[ADDR_MAX];
    socklen_t len[ADDR_MAX];
    int n, next;            /* addresses, the next one to try */
    char last[160];         /* why the last address failed */
};

static void tcp_free(struct tcp *t)
{
    if (t->lk)
        lookup_detach(t->lk);
    if (t->ev)
        event_free(t->ev);
    if (t->fd >= 0)
        close(t->fd);
    free(t);
}

static void tcp_stop(probe_t *p)
{
    tcp_free(p->impl);
}

/* "connect to HOST:PORT" plus " (ADDRESS)" when HOST is a name. */
static char *tcp_target(const struct tcp *t, int i)
{
    const struct spec_monitor *m = t->p->m;
    char ip[INET6_ADDRSTRLEN] = "";
    if (i >= 0 && i < t->n)
        addr_text(&t->addr[i], ip, sizeof ip);
    int named = ip[0] && strcmp(ip, m->host) != 0;
    return xasprintf("connect to %s:%d%s%s%s", m->host, m->port, named ? " (" : "", named ? ip : "", named ? ")" : "");
}

static void tcp_end(struct tcp *t, int ok, char *why)
{
    probe_t *p = t->p;
    tcp_free(t);
    probe_finish(p, ok, why, NULL, -1);
}

static void tcp_next(struct tcp *t);

static void on_connect(evutil_socket_t fd, short what, void *arg)
{
    struct tcp *t = arg;
    char limit[32];
    if (what & EV_TIMEOUT) {
        probe_timeout_text(t->p, limit);
        char *target = tcp_target(t, t->next - 1);
        char *why = xasprintf("%s timed out after %s", target, limit);
        free(target);
        tcp_end(t, 0, why);
        return;
    }
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
        soerr = errno;
    if (soerr == 0) {
        tcp_end(t, 1, NULL);
        return;
    }
    snprintf(t->last, sizeof t->last, "%s", strerror(soerr));
    event_free(t->ev);
    t->ev = NULL;
    close(t->fd);
    t->fd = -1;
    tcp_next(t);
}

/* Tries the addresses left in order; the first that connects ends the probe. */
static void tcp_next(struct tcp *t)
{
    while (t->next < t->n) {
        int i = t->next++;
        struct sockaddr_storage *sa = &t->addr[i];
        if (sa->ss_family == AF_INET6)
            ((struct sockaddr_in6 *)sa)->sin6_port = htons((uint16_t)t->p->m->port);
        else
            ((struct sockaddr_in *)sa)->sin_port = htons((uint16_t)t->p->m->port);
        t->fd = socket(sa->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (t->fd < 0) {
            snprintf(t->last, sizeof t->last, "socket: %s", strerror(errno));
            continue;
        }
        if (connect(t->fd, (struct sockaddr *)sa, t->len[i]) == 0) {
            tcp_end(t, 1, NULL);
            return;
        }
        if (errno == EINPROGRESS) {
            double left = t->p->m->timeout_s * 1000.0 - probe_elapsed_ms(t->p);
            if (left < 1)
                left = 1;
            struct timeval tv = {(time_t)(left / 1000), (suseconds_t)((long)left % 1000) * 1000};
            t->ev = event_new(t->p->run->base, t->fd, EV_WRITE, on_connect, t);
            event_add(t->ev, &tv);
            return;
        }
        snprintf(t->last, sizeof t->last, "%s", strerror(errno));
        close(t->fd);
        t->fd = -1;
    }
    char *target = tcp_target(t, t->n - 1);
    char *why = xasprintf("%s: %s", target, t->last[0] ? t->last : "no address");
    free(target);
    tcp_end(t, 0, why);
}

static void tcp_resolved(struct lookup *lk)
{
    struct tcp *t = lk->p->impl;
    t->lk = NULL;
    if (lk->gai != 0 || lk->n == 0) {
        char *why = lk->gai ? lookup_error(lk) : xasprintf("resolve %s: no address", lk->name);
        lookup_free(lk);
        tcp_end(t, 0, why);
        return;
    }
    memcpy(t->addr, lk->addr, sizeof t->addr);
    memcpy(t->len, lk->len, sizeof t->len);
    t->n = lk->n;
    lookup_free(lk);
    tcp_next(t);
}

int monitor_tcp_start(probe_t *p, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    struct tcp *t = xcalloc(1, sizeof *t);
    t->p = p;
    t->fd = -1;
    p->impl = t;
    p->stop = tcp_stop;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&t->addr[0];
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&t->addr[0];
    if (inet_pton(AF_INET, p->m->host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        t->len[0] = sizeof *v4;
        t->n = 1;
    } else if (inet_pton(AF_INET6, p->m->host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        t->len[0] = sizeof *v6;
        t->n = 1;
    }
    if (t->n)
        tcp_next(t); /* a literal: no lookup */
    else
        t->lk = lookup_start(p, p->m->host, tcp_resolved);
    return 0;
}
