/* curl_loop: the libcurl multi <-> libevent glue (curl's "multi_socket"
 * API): curl says which sockets to watch and when to time out, libevent
 * tells it what happened, and finished transfers are reported by callback. */
#include "curl_loop.h"

#include <event2/event.h>
#include <stdlib.h>

#include "log.h"
#include "xalloc.h"

struct watch { /* one socket curl asked us to watch */
    struct event *ev;
    struct watch *next, **prevp;
};

struct transfer { /* CURLOPT_PRIVATE of each handle */
    curl_loop_done_fn *fn;
    void *arg;
};

static struct {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    struct watch *watches;
} L;

/* Reports every finished transfer. A callback may remove its own handle
 * (curl allows it while reading messages). */
static void drain_done(void)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(L.multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct transfer *t = NULL;
        CURL *easy = m->easy_handle;
        CURLcode code = m->data.result;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
        if (t)
            t->fn(easy, code, t->arg);
    }
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    int running;
    curl_multi_socket_action(L.multi, CURL_SOCKET_TIMEOUT, 0, &running);
    drain_done();
}

static void on_socket(evutil_socket_t fd, short what, void *arg)
{
    (void)arg;
    int action = ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(L.multi, fd, action, &running);
    drain_done();
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    (void)userp;
    if (timeout_ms < 0) {
        evtimer_del(L.timer);
        return 0;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(L.timer, &tv);
    return 0;
}

static void watch_free(struct watch *w)
{
    event_free(w->ev);
    *w->prevp = w->next;
    if (w->next)
        w->next->prevp = w->prevp;
    free(w);
}

static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy;
    (void)userp;
    struct watch *w = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (w)
            watch_free(w);
        curl_multi_assign(L.multi, s, NULL);
        return 0;
    }
    short kind = (short)(((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0) | EV_PERSIST);
    if (!w) {
        w = xcalloc(1, sizeof *w);
        w->next = L.watches;
        if (w->next)
            w->next->prevp = &w->next;
        w->prevp = &L.watches;
        L.watches = w;
        curl_multi_assign(L.multi, s, w);
    } else {
        event_free(w->ev);
    }
    w->ev = event_new(L.base, s, kind, on_socket, NULL);
    event_add(w->ev, NULL);
    return 0;
}

int curl_loop_add(struct event_base *base, CURL *easy, curl_loop_done_fn *fn, void *arg)
{
    if (!L.multi) {
        L.base = base;
        L.multi = curl_multi_init();
        if (!L.multi)
            return -1;
        L.timer = evtimer_new(base, on_timer, NULL);
        curl_multi_setopt(L.multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
        curl_multi_setopt(L.multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    }
    struct transfer *t = xmalloc(sizeof *t);
    *t = (struct transfer){fn, arg};
    curl_easy_setopt(easy, CURLOPT_PRIVATE, t);
    if (curl_multi_add_handle(L.multi, easy) != CURLM_OK) {
        curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
        free(t);
        return -1;
    }
    return 0;
}

void curl_loop_remove(CURL *easy)
{
    struct transfer *t = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
    free(t);
    if (L.multi)
        curl_multi_remove_handle(L.multi, easy);
}

void curl_loop_shutdown(void)
{
    if (!L.multi)
        return;
    curl_multi_cleanup(L.multi); /* closes cached connections (REMOVE for each socket) */
    while (L.watches)
        watch_free(L.watches);
    event_free(L.timer);
    L.multi = NULL;
    L.timer = NULL;
    L.base = NULL;
}
