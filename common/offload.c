/* offload: a worker-thread pool whose results come back on the libevent
 * loop through a pipe (see offload.h). libevent is not told about threads:
 * the workers never touch it, they only write one byte to the pipe. */
#include "offload.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "xalloc.h"

struct job {
    offload_work_fn *work;
    offload_done_fn *done;
    void *arg;
    struct job *next;
};

struct offload {
    struct event_base *base;
    struct event *ev;      /* the pipe's read end: jobs are back */
    int pipe[2];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct job *todo, **todo_tail; /* FIFO of jobs not started */
    struct job *back, **back_tail; /* FIFO of jobs that ran */
    int stopping;
    int nthreads, max_threads;
    pthread_t *threads;
    int pending;
};

static struct job *list_take(struct job **head, struct job ***tail)
{
    struct job *j = *head;
    *head = NULL;
    *tail = head;
    return j;
}

static void *worker(void *arg)
{
    offload_t *o = arg;
    pthread_mutex_lock(&o->mu);
    for (;;) {
        while (!o->todo && !o->stopping)
            pthread_cond_wait(&o->cv, &o->mu);
        if (o->stopping)
            break;
        struct job *j = o->todo;
        o->todo = j->next;
        if (!o->todo)
            o->todo_tail = &o->todo;
        pthread_mutex_unlock(&o->mu);
        j->work(j->arg);
        pthread_mutex_lock(&o->mu);
        j->next = NULL;
        *o->back_tail = j;
        o->back_tail = &j->next;
        /* one byte per job; a full pipe already holds a wake-up */
        ssize_t n;
        do
            n = write(o->pipe[1], "j", 1);
        while (n < 0 && errno == EINTR);
    }
    pthread_mutex_unlock(&o->mu);
    return NULL;
}

static void hand_back(offload_t *o, struct job *list, int ran)
{
    while (list) {
        struct job *next = list->next;
        o->pending--;
        list->done(list->arg, ran);
        free(list);
        list = next;
    }
}

static void on_back(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    offload_t *o = arg;
    char buf[256];
    while (read(fd, buf, sizeof buf) > 0)
        ;
    pthread_mutex_lock(&o->mu);
    struct job *list = list_take(&o->back, &o->back_tail);
    pthread_mutex_unlock(&o->mu);
    hand_back(o, list, 1);
}

offload_t *offload_new(struct event_base *base, int threads)
{
    offload_t *o = xcalloc(1, sizeof *o);
    o->base = base;
    o->max_threads = threads < 1 ? 1 : threads > 64 ? 64 : threads;
    /* close-on-exec: the commands tasks run must not inherit it */
    if (pipe2(o->pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        log_error("offload: pipe: %s", strerror(errno));
        abort();
    }
    pthread_mutex_init(&o->mu, NULL);
    pthread_cond_init(&o->cv, NULL);
    o->todo_tail = &o->todo;
    o->back_tail = &o->back;
    o->ev = event_new(base, o->pipe[0], EV_READ | EV_PERSIST, on_back, o);
    event_add(o->ev, NULL);
    return o;
}

/* Workers block every signal: the loop thread handles them (SIGCHLD of the
 * exec handler, SIGTERM). */
static void start_threads(offload_t *o)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    o->threads = xcalloc((size_t)o->max_threads, sizeof *o->threads);
    for (; o->nthreads < o->max_threads; o->nthreads++) {
        int rc = pthread_create(&o->threads[o->nthreads], NULL, worker, o);
        if (rc != 0) {
            log_error("offload: pthread_create: %s", strerror(rc));
            abort();
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void offload_submit(offload_t *o, offload_work_fn *work, offload_done_fn *done, void *arg)
{
    struct job *j = xcalloc(1, sizeof *j);
    j->work = work;
    j->done = done;
    j->arg = arg;
    if (!o->threads)
        start_threads(o);
    o->pending++;
    pthread_mutex_lock(&o->mu);
    *o->todo_tail = j;
    o->todo_tail = &j->next;
    pthread_cond_signal(&o->cv);
    pthread_mutex_unlock(&o->mu);
}

int offload_pending(const offload_t *o)
{
    return o->pending;
}

void offload_free(offload_t *o)
{
    if (!o)
        return;
    pthread_mutex_lock(&o->mu);
    o->stopping = 1;
    pthread_cond_broadcast(&o->cv);
    pthread_mutex_unlock(&o->mu);
    for (int i = 0; i < o->nthreads; i++)
        pthread_join(o->threads[i], NULL);
    hand_back(o, list_take(&o->back, &o->back_tail), 1);
    hand_back(o, list_take(&o->todo, &o->todo_tail), 0);
    event_free(o->ev);
    close(o->pipe[0]);
    close(o->pipe[1]);
    pthread_mutex_destroy(&o->mu);
    pthread_cond_destroy(&o->cv);
    free(o->threads);
    free(o);
}
