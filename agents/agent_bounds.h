/* agent_bounds: what a task writes is bounded. offer: a checkpoint from the
 * handler (refused over CHECKPOINT_MAX, coalesced to one write per interval,
 * written through agent_claim); flush: write the pending one now (before the
 * outcome); forget: free its state (when the task is freed). outcome: cap
 * the output and result of t->res. */
#ifndef DEVSYS_AGENT_BOUNDS_H
#define DEVSYS_AGENT_BOUNDS_H

#include <stddef.h>

struct agent;
struct task;

void bounds_checkpoint_offer(struct agent *ag, struct task *t, const char *json, size_t len);
void bounds_checkpoint_flush(struct task *t);
void bounds_checkpoint_forget(struct task *t);
void bounds_outcome(struct task *t);

#endif
