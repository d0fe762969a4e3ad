/* handler_sleep: kinds noop and sleep, in-process benchmark handlers. One
 * libevent timer per run and nothing else: they must keep up with 25k tasks/s.
 * Outcome: success, unless spec fail_always or attempt <= spec fail_first. */
#include "handler.h"

#include <stdlib.h>

#include <event2/event.h>

#include "xalloc.h"

/* Fills res with the outcome the spec asks for. */
static void sleep_outcome(const task_run_t *run, handler_result_t *res)
{
    const spec_t *spec = run->spec;
    if (spec->fail_always) {
        res->retryable = 1;
        res->error = xstrdup("fail_always");
    } else if (spec->fail_first > 0 && run->attempt <= spec->fail_first) {
        res->retryable = 1;
        res->error = xasprintf("fail_first: attempt %ld of %d", run->attempt, spec->fail_first);
    } else {
        res->ok = 1;
    }
}

/* Frees the run's timer and reports. libevent copies what it needs before
 * calling a non-persistent event's callback and touches the event no more
 * afterwards (event_base_once frees its own event the same way), so freeing
 * the event here is safe. */
static void sleep_report(task_run_t *run, handler_result_t *res)
{
    struct event *ev = run->handler_data;
    run->handler_data = NULL;
    event_free(ev);
    run->done(run, res);
}

static void noop_fire(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    task_run_t *run = arg;
    handler_result_t res = {0};
    sleep_outcome(run, &res);
    sleep_report(run, &res);
}

static void sleep_fire(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    task_run_t *run = arg;
    handler_result_t res = {0};
    sleep_outcome(run, &res);
    res.result = json_pack("{s:I}", "slept_ms", (json_int_t)run->spec->sleep_ms);
    sleep_report(run, &res);
}

static void cancelled_fire(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    task_run_t *run = arg;
    handler_result_t res = {0};
    res.error = xstrdup("cancelled");
    sleep_report(run, &res);
}

static int timer_start(task_run_t *run, handler_result_t *res, event_callback_fn fire, long ms)
{
    struct event *ev = evtimer_new(run->base, fire, run);
    if (!ev) {
        res->ok = 0;
        res->retryable = 1;
        res->error = xstrdup("out of libevent resources");
        return -1;
    }
    run->handler_data = ev;
    if (ms <= 0) {
        /* straight onto the active queue: no timer heap, and still never
         * reported from inside start() */
        event_active(ev, EV_TIMEOUT, 1);
    } else {
        struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
        evtimer_add(ev, &tv);
    }
    return 0;
}

static int noop_start(task_run_t *run, handler_result_t *res)
{
    return timer_start(run, res, noop_fire, 0);
}

static int sleep_start(task_run_t *run, handler_result_t *res)
{
    return timer_start(run, res, sleep_fire, run->spec->sleep_ms);
}

/* Re-points the run's one event at the cancelled report and fires it on
 * the next loop pass: done() is not called from inside cancel(), whose
 * caller may still use run. */
static void timer_cancel(task_run_t *run)
{
    struct event *ev = run->handler_data;
    if (!ev)
        return;
    event_del(ev);
    event_assign(ev, event_get_base(ev), -1, 0, cancelled_fire, run);
    event_active(ev, EV_TIMEOUT, 1);
}

const handler_ops_t handler_noop = {
    .kinds = (const char *const[]){"noop", NULL},
    .start = noop_start,
    .cancel = timer_cancel,
};

const handler_ops_t handler_sleep = {
    .kinds = (const char *const[]){"sleep", NULL},
    .start = sleep_start,
    .cancel = timer_cancel,
};
