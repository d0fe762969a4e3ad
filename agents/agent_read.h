/* agent_read: the agent's Redis side (reads, recovery, keep-alive, promote,
 * trim, control stream). What it takes from Redis reaches the agent core
 * through the callbacks given to agent_read_start; it never calls the core. */
#ifndef DEVSYS_AGENT_READ_H
#define DEVSYS_AGENT_READ_H

#include <stddef.h>

struct agent;
struct task;

struct agent_read_cbs {
    /* Entries taken from one stream (XREADGROUP or XAUTOCLAIM), decoded into
     * tasks linked by next in delivery order: phase CLAIMING, or REJECTING
     * with the reason in reject. The callee owns the list. */
    void (*delivered)(struct agent *ag, struct task *list);
    /* A task cancelled (control stream, or found so when renewing leases). */
    void (*cancelled)(struct agent *ag, const char *task_id);
};

/* Set up the reading side (hooks, timers) before the loop runs. cbs must
 * outlive the agent. */
void agent_read_start(struct agent *ag, const struct agent_read_cbs *cbs);
/* Ask for more entries if there are free slots and no read is waiting. */
void agent_read_more(struct agent *ag);
/* Sets ag->kinds from DEVSYS_KINDS (list: comma-separated handler kinds; NULL:
 * the queue names that are handler kinds, plus every handler kind when some
 * queue name is not a kind, since such a queue may carry any kind).
 * Returns 0, or -1 with the reason in err. */
int agent_read_kinds_init(struct agent *ag, const char *list, char *err, size_t errlen);
/* The kinds this agent runs, comma-separated, into buf; returns buf. */
char *agent_read_kinds_text(const struct agent *ag, char *buf, size_t cap);
/* Why the agent cannot take work now (into buf), or NULL when it can. */
const char *agent_read_not_ready(const struct agent *ag, char *buf, size_t cap);

#endif
