/* agent: the consumer runtime's shared state, split between agent.c (the loop:
 * read, dispatch, ack, trim, shutdown) and agent_claim.c (the batched
 * PostgreSQL statements: claim, complete, reject, lease, checkpoint). */
#ifndef DEVSYS_AGENT_H
#define DEVSYS_AGENT_H

#include <sys/time.h>

#include "envelope.h"
#include "handler.h"
#include "pgc.h"
#include "rc.h"
#include "spec.h"

struct event;
struct agent;

struct queue_state {
    char *name;
    char stream_key[256];
    int group_ready;
};

enum task_phase { PHASE_CLAIMING, PHASE_RUNNING, PHASE_COMPLETING, PHASE_REJECTING };

/* One delivered stream entry, from XREADGROUP to XACK. */
struct task {
    struct agent *ag;
    struct queue_state *q;
    char entry_id[48];
    long long entry_ms;          /* ms part of the entry id: submit time of a hand-pushed entry */
    envelope_t env;
    spec_t *spec;                /* NULL when the entry was rejected */
    char *spec_text;             /* JSON text of the spec (hand-pushed entries and rejects) */
    char reject[SPEC_ERR_MAX + 64]; /* why the entry cannot run */
    enum task_phase phase;
    long attempt;
    char *checkpoint;
    struct timeval started;
    const handler_ops_t *ops;
    task_run_t run;
    handler_result_t res;
    const char *final_state;     /* succeeded | failed */
    struct task *next;           /* in whichever batch or list holds it */
    struct task *rprev, *rnext;  /* in agent.running while the handler runs */
};

struct agent {
    struct event_base *base;
    rc_t *rc;        /* commands */
    rc_t *rc_read;   /* dedicated to the blocking XREADGROUP */
    pgc_t *pg;
    char *name;
    char *prefix;
    struct queue_state *queues;
    int nqueues;
    int concurrency;
    int lease_s;
    double kill_grace_s;
    double shutdown_grace_s;

    int slots_used;              /* tasks held from delivery until their XACK */
    int nrunning;
    int reading;
    int stopping;
    struct task *backlog, **backlog_tail; /* claimed, waiting for a free slot */
    struct task *done_list;      /* finished, outcome not yet written */
    struct task *claim_retry;    /* claims that could not reach PostgreSQL */
    struct task *reject_retry;
    struct task *running;        /* for lease renewal and shutdown */
    struct event *ev_read_retry, *ev_flush, *ev_trim, *ev_lease, *ev_claim_retry;
    struct event *ev_sigterm, *ev_sigint, *ev_stop_check;
    int abandoning;              /* past the shutdown grace: outcomes are not recorded */
    struct timeval stop_at;
};

/* agent_claim.c: send the claim for a batch of decoded entries (those with
 * phase CLAIMING); calls agent_claimed(ag, batch, ok) when PostgreSQL answered. */
void claim_batch(struct agent *ag, struct task *batch);
/* Write the outcomes of the list (linked by next); calls agent_completed(ag,
 * list, recorded_ok) with the list, each task's `final_state` set to NULL if
 * the guarded update did not take (fenced out). */
void complete_batch(struct agent *ag, struct task *list);
/* Record rejected entries (bad envelope or invalid spec) as failed tasks. */
void reject_batch(struct agent *ag, struct task *list);
/* Extend the lease of every running task. */
void lease_renew(struct agent *ag);
/* Save a checkpoint of a running task. */
void checkpoint_write(struct agent *ag, struct task *t, const char *json, size_t len);

/* agent.c callbacks */
void agent_claimed(struct agent *ag, struct task *batch, int ok);
void agent_completed(struct agent *ag, struct task *list, int ok);
void agent_rejected(struct agent *ag, struct task *list, int ok);

void task_free(struct task *t);

#endif
