/* offload: run blocking work (reading and parsing large files) on a small
 * pool of worker threads and hand each job back on the event loop, so the
 * loop keeps serving heartbeats, claims and other tasks meanwhile. */
#ifndef DEVSYS_OFFLOAD_H
#define DEVSYS_OFFLOAD_H

struct event_base;
typedef struct offload offload_t;

/* Runs on a worker thread: must not touch the event loop or anything the
 * loop thread changes while the job is out. */
typedef void offload_work_fn(void *arg);
/* Runs on the loop thread once the job is back: ran = 1 after work(arg)
 * returned, 0 when offload_free dropped the job before it started. */
typedef void offload_done_fn(void *arg, int ran);

/* A pool of at most threads (1..64) workers on base, started lazily by the
 * first submit. Jobs run in submit order; with one thread, one at a time,
 * which is what bounds the memory they use. */
offload_t *offload_new(struct event_base *base, int threads);

/* Queues a job; done(arg, ...) is called exactly once, on the loop, never
 * from inside offload_submit. arg stays the caller's. */
void offload_submit(offload_t *o, offload_work_fn *work, offload_done_fn *done, void *arg);

/* Jobs submitted and not yet handed back. */
int offload_pending(const offload_t *o);

/* Waits for the jobs running now, calls done of every job not yet handed
 * back (ran 1 for those that ran, 0 for those never started) and frees o.
 * Call it from the loop thread, not from a done callback; NULL is a no-op. */
void offload_free(offload_t *o);

#endif
