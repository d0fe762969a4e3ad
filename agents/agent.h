/* agent: the consumer runtime's shared state, split between agent.c (the loop:
 * read, dispatch, ack, trim, shutdown) and agent_claim.c (batches of claims,
 * outcomes, rejects, leases and checkpoints, sent through common/taskdb). */
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
struct metric;

struct queue_state {
    char *name;
    char stream_key[256];
    int group_ready;             /* its consumer group exists: reads may start */
    char group_error[160];       /* why it is not ready (last XGROUP CREATE error) */
    struct metric *m_readable;   /* devsys_agent_queue_readable{queue=...} */
    struct metric *m_group_errors; /* devsys_agent_group_create_errors_total{queue=...} */
    struct metric *m_set_aside;  /* devsys_agent_delayed_set_aside_total{queue=...} */
    long long promote_err_at;    /* when a promote error was last logged (s) */
    char pel_cursor[48];         /* while re-reading our own pending entries at start */
    char autoclaim_cursor[48];
    int autoclaiming;
    struct agent *agent;
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
    long max_attempts;           /* from the row: a replay moves it up */
    char *checkpoint;
    struct timeval started;
    const handler_ops_t *ops;
    task_run_t run;
    handler_result_t res;
    const char *final_state;     /* succeeded | retrying | dead (what this agent decided) */
    long long retry_ms;          /* retrying: the backoff delay */
    enum task_after {            /* what the outcome write found, i.e. what to do in Redis */
        AFTER_NONE,              /* fenced out: another agent owns the task, leave the entry */
        AFTER_ACK,               /* done or not ours to run: XACK */
        AFTER_RETRY,             /* ZADD delayed + XACK */
        AFTER_BURY,              /* XADD dlq + XACK */
        AFTER_LEAVE,             /* not claimable now (leased elsewhere, retry not due): keep pending */
    } after;
    struct task *next;           /* in whichever batch or list holds it */
    struct task *rprev, *rnext;  /* in agent.running while the handler runs */
    struct task *hprev, *hnext;  /* in agent.held from delivery until release */
    char *cp_pending;            /* the latest checkpoint, not yet written (agent_bounds.c) */
    size_t cp_pending_len;
    struct timeval cp_written;   /* when a checkpoint was last written */
    struct event *cp_timer;
};

struct agent {
    struct event_base *base;
    rc_t *rc;        /* commands */
    rc_t *rc_read;   /* dedicated to the blocking XREADGROUP */
    pgc_t *pg;
    char *name;
    char *prefix;
    struct queue_state *queues;   /* each with its XAUTOCLAIM cursor */
    int nqueues;
    int concurrency;
    int lease_s;
    double kill_grace_s;
    double shutdown_grace_s;

    int slots_used;              /* tasks held from delivery until their XACK */
    int nrunning;
    int reading;
    int pel_done;                /* own pending entries (a previous incarnation's) re-read */
    int stopping;
    struct task *backlog, **backlog_tail; /* claimed, waiting for a free slot */
    struct task *done_list;      /* finished, outcome not yet written */
    struct task *claim_retry;    /* claims that could not reach PostgreSQL */
    struct task *reject_retry;
    struct task *running;        /* for cancel and shutdown */
    struct task *held;           /* every task from delivery to release: keep-alive, lease */
    rc_t *rc_ctl;                /* dedicated to the blocking XREAD of the control stream */
    char ctl_last[48];
    int ctl_reading;
    struct spec_retry retry_defaults;
    int claim_period_s;
    struct event *ev_read_retry, *ev_flush, *ev_trim, *ev_lease, *ev_claim_retry;
    struct event *ev_promote, *ev_autoclaim;
    struct event *ev_groups_retry;
    int groups_backoff_ms;       /* next wait before creating the groups again */
    unsigned kinds;              /* bit i: this agent runs kind_at(i) of the registry (DEVSYS_KINDS) */
    struct event *ev_sigterm, *ev_sigint, *ev_stop_check;
    int abandoning;              /* past the shutdown grace: outcomes are not recorded */
    struct timeval stop_at;
};

/* agent_claim.c: send the claim for a batch of decoded entries (those with
 * phase CLAIMING); calls agent_claimed(ag, batch, ok) when PostgreSQL answered:
 * claimed tasks have attempt > 0; a poison task has final_state "dead" and
 * after AFTER_BURY; others have after AFTER_ACK or AFTER_LEAVE. */
void claim_batch(struct agent *ag, struct task *batch);
/* Write the outcomes of the list (linked by next); calls agent_completed(ag,
 * list, ok) with each task's `after` set from what PostgreSQL recorded. */
void complete_batch(struct agent *ag, struct task *list);
/* Record rejected entries (bad envelope or invalid spec) as dead tasks; calls
 * agent_rejected with each task's `after` set (AFTER_BURY, or AFTER_ACK when
 * the task had already ended). */
void reject_batch(struct agent *ag, struct task *list);
/* Extend the PostgreSQL lease of every held task; calls agent_cancelled for
 * each running task found cancelled. */
void lease_renew(struct agent *ag);
void agent_cancelled(struct agent *ag, const char *task_id);
/* At start: expire the leases a previous process under this agent name
 * still holds, so its tasks (found again in our pending entries) are claimable now. */
void lease_release_previous(struct agent *ag);
/* Remember the DLQ entry of a buried task (tasks.dlq_entry). */
void dlq_entry_write(struct agent *ag, const char *task_id, const char *dlq_entry);
/* Save a checkpoint of a running task; keep its newest `keep` rows. */
void checkpoint_write(struct agent *ag, struct task *t, const char *json, size_t len, int keep);

/* agent_bounds.c: what a task writes is bounded. offer: a checkpoint from the
 * handler (refused over CHECKPOINT_MAX, coalesced to one write per interval);
 * flush: write the pending one now (before the outcome); forget: free its
 * state (task_free). outcome_bound: cap the output and result of t->res. */
void checkpoint_offer(struct agent *ag, struct task *t, const char *json, size_t len);
void checkpoint_flush(struct task *t);
void checkpoint_forget(struct task *t);
void outcome_bound(struct task *t);

/* agent_read.c: set up the reading side (hooks, timers) before the loop runs. */
void agent_read_start(struct agent *ag);
/* Sets ag->kinds from DEVSYS_KINDS (list: comma-separated handler kinds; NULL:
 * the queue names that are handler kinds, plus every handler kind when some
 * queue name is not a kind, since such a queue may carry any kind).
 * Returns 0, or -1 with the reason in err. */
int agent_kinds_init(struct agent *ag, const char *list, char *err, size_t errlen);
/* The kinds this agent runs, comma-separated, into buf; returns buf. */
char *agent_kinds_text(const struct agent *ag, char *buf, size_t cap);
/* Why the agent cannot take work now (into buf), or NULL when it can. */
const char *agent_not_ready(const struct agent *ag, char *buf, size_t cap);
/* Ask for more entries if there are free slots and no read is waiting. */
void read_more(struct agent *ag);

/* agent.c */
/* A delivered entry takes a slot until release. */
void held_add(struct agent *ag, struct task *t);
void agent_claimed(struct agent *ag, struct task *batch, int ok);
void agent_completed(struct agent *ag, struct task *list, int ok);
void agent_rejected(struct agent *ag, struct task *list, int ok);

void task_free(struct task *t);

#endif
