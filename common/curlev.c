/* curlev: curl_multi_socket_action on libevent (see curlev.h): curl names
 * the sockets and the timeout it wants, this file turns them into events. */
#include "curlev.h"

#include <stdlib.h>

#include <event2/event.h>

#include "log.h"
#include "xalloc.h"

struct curlev {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    struct sock *socks; /* every watched socket, so that curlev_free leaves none behind */
    int running;
};

struct xfer {
    curlev_done_fn *fn;
    void *arg;
};

struct sock {
    struct event *ev;
    struct sock *next, **prevp;
};

static void sock_free(struct sock *sk)
{
    event_free(sk->ev);
    *sk->prevp = sk->next;
    if (sk->next)
        sk->next->prevp = sk->prevp;
    free(sk);
}

static void check_done(curlev_t *cv)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(cv->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURL *easy = m->easy_handle;
        CURLcode rc = m->data.result;
        struct xfer *x = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
        curl_multi_remove_handle(cv->multi, easy);
        curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
        if (x) {
            curlev_done_fn *fn = x->fn;
            void *arg = x->arg;
            free(x);
            fn(easy, rc, arg);
        }
    }
}

static void on_socket(evutil_socket_t fd, short what, void *arg)
{
    curlev_t *cv = arg;
    int action = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    curl_multi_socket_action(cv->multi, fd, action, &cv->running);
    check_done(cv);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    curlev_t *cv = arg;
    curl_multi_socket_action(cv->multi, CURL_SOCKET_TIMEOUT, 0, &cv->running);
    check_done(cv);
}

static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy;
    curlev_t *cv = userp;
    struct sock *sk = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (sk) {
            sock_free(sk);
            curl_multi_assign(cv->multi, s, NULL);
        }
        return 0;
    }
    short kind = (short)((what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0) | EV_PERSIST);
    if (!sk) {
        sk = xcalloc(1, sizeof *sk);
        sk->next = cv->socks;
        if (sk->next)
            sk->next->prevp = &sk->next;
        sk->prevp = &cv->socks;
        cv->socks = sk;
        curl_multi_assign(cv->multi, s, sk);
    } else {
        event_free(sk->ev);
    }
    sk->ev = event_new(cv->base, s, kind, on_socket, cv);
    if (!sk->ev) {
        log_error("curl: out of libevent resources");
        abort();
    }
    event_add(sk->ev, NULL);
    return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    curlev_t *cv = userp;
    if (timeout_ms < 0) {
        evtimer_del(cv->timer);
        return 0;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(cv->timer, &tv);
    return 0;
}

curlev_t *curlev_new(struct event_base *base)
{
    static int global_done;
    if (!global_done) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        global_done = 1;
    }
    curlev_t *cv = xcalloc(1, sizeof *cv);
    cv->base = base;
    cv->multi = curl_multi_init();
    cv->timer = evtimer_new(base, on_timeout, cv);
    if (!cv->multi || !cv->timer) {
        log_error("curl: cannot create a multi handle");
        abort();
    }
    curl_multi_setopt(cv->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(cv->multi, CURLMOPT_SOCKETDATA, cv);
    curl_multi_setopt(cv->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(cv->multi, CURLMOPT_TIMERDATA, cv);
    return cv;
}

int curlev_add(curlev_t *cv, CURL *easy, curlev_done_fn *fn, void *arg)
{
    struct xfer *x = xcalloc(1, sizeof *x);
    x->fn = fn;
    x->arg = arg;
    curl_easy_setopt(easy, CURLOPT_PRIVATE, (char *)x);
    if (curl_multi_add_handle(cv->multi, easy) != CURLM_OK) {
        curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
        free(x);
        return -1;
    }
    return 0;
}

void curlev_remove(curlev_t *cv, CURL *easy)
{
    struct xfer *x = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&x);
    curl_multi_remove_handle(cv->multi, easy);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
    free(x);
}

void curlev_free(curlev_t *cv)
{
    if (!cv)
        return;
    curl_multi_cleanup(cv->multi); /* closes cached connections (REMOVE for their sockets) */
    while (cv->socks)
        sock_free(cv->socks); /* NOLINT(clang-analyzer-unix.Malloc): sock_free unlinks it through prevp */
    event_free(cv->timer);
    free(cv);
}
