/* test_loop: the event-loop harness shared by the store client tests: a base
 * with a ticking timer (so EVLOOP_ONCE never blocks for long) and helpers that
 * run the loop until a counter reaches a value or time runs out. */
#ifndef DEVSYS_TEST_LOOP_H
#define DEVSYS_TEST_LOOP_H

#include <event2/event.h>
#include <time.h>

static struct event_base *base;
static struct event *tick;

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

/* Runs the loop until *v >= want or ms pass; returns whether it got there. */
static int run_until(const int *v, int want, int ms)
{
    long deadline = now_ms() + ms;
    while (*v < want && now_ms() < deadline)
        event_base_loop(base, EVLOOP_ONCE);
    return *v >= want;
}

static void run_for(int ms)
{
    int never = 0;
    run_until(&never, 1, ms);
}

static void loop_start(void)
{
    base = event_base_new();
    tick = event_new(base, -1, EV_PERSIST, tick_cb, NULL);
    struct timeval tv = {0, 5000};
    event_add(tick, &tv);
}

static void loop_stop(void)
{
    event_free(tick);
    event_base_free(base);
}

#endif
