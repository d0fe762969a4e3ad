/* agent_limits: a queue's controls on the agent: its settings (pause, cap,
 * rate) read from Redis, and the gate where tasks read from a capped or
 * rate-limited queue wait for a slot and a start before they are delivered. */
#ifndef DEVSYS_AGENT_LIMITS_H
#define DEVSYS_AGENT_LIMITS_H

struct agent;
struct queue_state;
struct task;

/* Metrics and the settings timer; settings are read at once. more: called
 * when more entries may be read (a resume, an admit); delivered: the
 * core's callback for admitted tasks. */
void agent_limits_start(struct agent *ag, void (*more)(struct agent *ag),
                        void (*delivered)(struct agent *ag, struct task *list));
/* Read the settings of one queue again (control message "settings Q"). */
void agent_limits_reload(struct agent *ag, const char *queue);
/* A slot of queue was released somewhere (control message "slot Q"). */
void agent_limits_slot_freed(struct agent *ag, const char *queue);
/* Whether tasks of q must pass the gate (cap or rate set). */
int agent_limits_gated(const struct queue_state *q);
/* Entries of q the agent may read now for a per-key rate gate, or -1 when
 * q has no per-key rate (the concurrency then bounds the read). A key over
 * its rate must not hold back the others, so such a gate reads past the
 * agent's concurrency, up to GATE_KEYED_MAX tasks; admitted ones still take
 * a slot each. */
#define GATE_KEYED_MAX 1024
int agent_limits_keyed_budget(const struct queue_state *q);
/* Takes the list (tasks of q, linked by next): delivers through the core's
 * delivered callback what may start, keeps the rest until it may. */
void agent_limits_offer(struct agent *ag, struct queue_state *q, struct task *list);
/* The task leaves the agent: give back its cap slot. */
void agent_limits_release(struct agent *ag, struct task *t);
/* Keep-alive of the gated entries (still pending under our name) and of
 * the slots of held tasks. */
void agent_limits_keepalive(struct agent *ag);
/* Free the gated tasks (they stay pending in Redis) and the timers. */
void agent_limits_stop(struct agent *ag);

#endif
