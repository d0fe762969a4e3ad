/* agent_claim: the agent's PostgreSQL side (claims, outcomes, rejects,
 * leases, checkpoints, DLQ entries) through common/taskdb. It never calls
 * the agent core: every answer goes back through the callback given. */
#ifndef DEVSYS_AGENT_CLAIM_H
#define DEVSYS_AGENT_CLAIM_H

#include <stddef.h>

struct agent;
struct task;

/* The answer for a list of tasks (linked by next): ok 0 when PostgreSQL
 * could not be reached (nothing is known, the list is handed back as sent);
 * ok 1 with each task's fields set as the call says. done owns the list. */
typedef void agent_claim_done_fn(struct agent *ag, struct task *list, int ok);
/* A running task found cancelled in PostgreSQL. */
typedef void agent_claim_cancel_fn(struct agent *ag, const char *task_id);

/* Send the claim for a batch of decoded entries (those with phase CLAIMING);
 * done(ag, list, ok) when PostgreSQL answered: claimed tasks have attempt > 0
 * and after AFTER_NONE; a poison task has final_state "dead" and after
 * AFTER_BURY; others have after AFTER_ACK or AFTER_LEAVE, or phase REJECTING
 * with the reason in reject. Parts of the batch may come back separately.
 * While AGENT_CLAIMS_IN_FLIGHT claim statements are unanswered, the batch
 * waits and goes with the next (its done is the answered statement's). */
#define AGENT_CLAIMS_IN_FLIGHT 2 /* claim statements unanswered; more claims wait and batch */
void agent_claim_batch(struct agent *ag, struct task *batch, agent_claim_done_fn *done);
/* Write the outcomes of the list; done gets each task's `after` set from
 * what PostgreSQL recorded. */
void agent_claim_complete(struct agent *ag, struct task *list, agent_claim_done_fn *done);
/* Record rejected entries (bad envelope or invalid spec) as dead tasks; done
 * gets each task's `after` set (AFTER_BURY, or AFTER_ACK when the task had
 * already ended). */
void agent_claim_reject(struct agent *ag, struct task *list, agent_claim_done_fn *done);
/* Extend the PostgreSQL lease of every held task; cancelled(ag, id) for each
 * task found cancelled. */
void agent_claim_lease_renew(struct agent *ag, agent_claim_cancel_fn *cancelled);
/* At start: expire the leases a previous process under this agent name
 * still holds, so its tasks (found again in our pending entries) are claimable now. */
void agent_claim_lease_release_previous(struct agent *ag);
/* Remember the DLQ entry of a buried task (tasks.dlq_entry). */
void agent_claim_dlq_entry_write(struct agent *ag, const char *task_id, const char *dlq_entry);
/* Save a checkpoint of a running task; keep its newest `keep` rows. */
void agent_claim_checkpoint_write(struct agent *ag, struct task *t, const char *json, size_t len, int keep);

#endif
