/* test_offload: work runs off the event loop. A job that blocks until the
 * loop itself releases it still lets the loop run its timers, and its done
 * callback comes back on the loop after that; jobs come back in order; free
 * hands back jobs that never started. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/event.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "offload.h"

static char order[64];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int released;
static struct event_base *base;

static void note(const char *what)
{
    strncat(order, what, sizeof order - strlen(order) - 1);
}

/* Blocks until the loop's timer releases it: were the loop stalled by the
 * job, the timer could never fire. */
static void blocking_work(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    while (!released)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
}

static void quick_work(void *arg)
{
    (void)arg;
}

static void on_done(void *arg, int ran)
{
    note(ran ? arg : "!");
    if (strcmp(arg, "B") == 0)
        event_base_loopbreak(base);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    note("t");
    pthread_mutex_lock(&mu);
    released = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static void test_loop_runs_while_work_blocks(void **state)
{
    (void)state;
    base = event_base_new();
    offload_t *o = offload_new(base, 1);
    offload_submit(o, blocking_work, on_done, "A");
    offload_submit(o, quick_work, on_done, "B");
    assert_int_equal(offload_pending(o), 2);
    struct event *t = evtimer_new(base, on_timer, NULL);
    struct timeval tv = {0, 20000};
    evtimer_add(t, &tv);
    event_base_dispatch(base);
    assert_string_equal(order, "tAB"); /* the timer first, then the jobs in order */
    assert_int_equal(offload_pending(o), 0);
    offload_free(o);
    event_free(t);
    event_base_free(base);
}

static void test_free_hands_back_unstarted(void **state)
{
    (void)state;
    order[0] = '\0';
    released = 0;
    base = event_base_new();
    offload_t *o = offload_new(base, 1);
    offload_submit(o, blocking_work, on_done, "A");
    offload_submit(o, quick_work, on_done, "C");
    /* let the worker take A, then release it from here */
    usleep(20000);
    pthread_mutex_lock(&mu);
    released = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    offload_free(o); /* A ran (or never started), C is handed back either way */
    assert_int_equal((int)strlen(order), 2);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loop_runs_while_work_blocks),
        cmocka_unit_test(test_free_hands_back_unstarted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
