/* agent_internal: the consumer runtime's shared types, private to agents/.
 * The core (agent.c: dispatch, ack, retry, bury, shutdown) drives agent_read.c
 * (Redis), agent_claim.c (PostgreSQL) and agent_bounds.c, which answer it only
 * through callbacks. */
#ifndef DEVSYS_AGENT_INTERNAL_H
#define DEVSYS_AGENT_INTERNAL_H

#include <sys/time.h>

#include "envelope.h"
#include "handler.h"
#include "pgc.h"
#include "queue.h"
#include "rc.h"
#include "spec.h"

struct event;
struct agent;
struct metric;
struct agent_read_cbs;

struct queue_state {
    char *name;
    char stream_key[QUEUE_LEVELS][256]; /* one stream per priority level */
    int group_ready;             /* its consumer group exists: reads may start */
    char group_error[160];       /* why it is not ready (last XGROUP CREATE error) */
    struct metric *m_readable;   /* devsys_agent_queue_readable{queue=...} */
    struct metric *m_group_errors; /* devsys_agent_group_create_errors_total{queue=...} */
    struct metric *m_set_aside;  /* devsys_agent_delayed_set_aside_total{queue=...} */
    long long promote_err_at;    /* when a promote error was last logged (s) */
    int group_failed;            /* a level's XGROUP CREATE failed in this round */
    char pel_cursor[QUEUE_LEVELS][48]; /* while re-reading our own pending entries at start */
    char autoclaim_cursor[QUEUE_LEVELS][48];
    int autoclaiming[QUEUE_LEVELS];
    struct agent *agent;
    /* controls (agent_limits.c) */
    struct queue_settings set;   /* as last read from <prefix>:{Q}:settings */
    int settings_known;          /* read once (found or not): reads may start */
    struct task *gate;           /* read, waiting for a cap slot or a rate start; by level */
    int ngate;
    int admitting;
    struct event *ev_gate;       /* the next admit try (rate wait, or backstop for a slot) */
    struct metric *m_paused;     /* devsys_agent_queue_paused{queue=...} */
};

enum task_phase { PHASE_CLAIMING, PHASE_RUNNING, PHASE_COMPLETING, PHASE_REJECTING };

/* One delivered stream entry, from XREADGROUP to XACK. */
struct task {
    struct agent *ag;
    struct queue_state *q;
    enum queue_level level;      /* the stream it was read from */
    char entry_id[48];
    char slot[128];              /* its member in <prefix>:{Q}:running */
    int has_slot;                /* holds a cap slot until release */
    int keyed;                   /* waits in a per-key rate gate: not counted in agent.ngated */
    int asked;                   /* in the admit request under way */
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
    json_t *secrets;             /* {"<secret name>": value} its env refers to, or NULL (agent_secrets.c) */
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
    int rd_qi, rd_level, rd_left, rd_got; /* the read round: queue, level, budget, entries read */
    int ngated;                  /* tasks in the queues' gates, but for per-key rate gates */
    struct event *ev_settings;
    int pel_done;                /* own pending entries (a previous incarnation's) re-read */
    int stopping;
    struct task *backlog, **backlog_tail; /* claimed, waiting for a free slot */
    struct task *done_list;      /* finished, outcome not yet written */
    struct task *claim_retry;    /* claims that could not reach PostgreSQL */
    struct task *reject_retry;
    /* Claims wait here while AGENT_CLAIMS_IN_FLIGHT claim statements are
     * unanswered, and go as one statement when one is answered: entries that
     * trickle in one by one (a pipeline's next steps) share a commit. */
    struct task *claim_wait;
    int claims_in_flight;
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
    const struct agent_read_cbs *read_cbs; /* the core's, given to agent_read_start */
    struct secretbox *secrets;   /* DEVSYS_SECRET_KEY(S_OLD), NULL: none (tasks with secrets fail) */
};

#endif
