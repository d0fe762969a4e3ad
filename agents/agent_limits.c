/* agent_limits: pause, concurrency cap and rate limit on the agent. Settings
 * come from <prefix>:{Q}:settings (reloaded on a "settings Q" control
 * message and every few seconds). Tasks of a capped or rate-limited queue
 * wait in the queue's gate, highest level first, until one admit script
 * (queue_admit) grants them a slot and a start; a refused gate waits for a
 * "slot Q" message or the rate's next start, never polls. */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_limits.h"

#include "agent_internal.h"
#include "log.h"
#include "metrics.h"
#include "queue.h"
#include "xalloc.h"

#define SETTINGS_PERIOD_S 5
#define SLOT_BACKSTOP_MS 2000 /* a lost "slot" message or a crashed agent's expired slot */
#define ADMIT_BATCH 64
#define GATE_SLOT_WAIT_MS 50 /* keyed tasks admitted but no slot free: the next look */

static void pump(struct queue_state *q);

/* agent_read_more, given at start (agent_read calls this module, not back) */
static void (*read_more)(struct agent *ag);
/* the core's delivered callback, also given at start */
static void (*deliver)(struct agent *ag, struct task *list);

/* --------------------------------------------------------------- settings */

/* Field by field: the struct has padding, which memcmp would compare too. */
static int settings_differ(const struct queue_settings *a, const struct queue_settings *b)
{
    return a->paused != b->paused || a->concurrency != b->concurrency || a->rate_n != b->rate_n ||
           a->rate_period_ms != b->rate_period_ms || a->rate_per_key != b->rate_per_key ||
           a->updated_at_ms != b->updated_at_ms;
}

static void on_settings(void *arg, const char *err, const struct queue_settings *s, int found)
{
    struct queue_state *q = arg;
    struct agent *ag = q->agent;
    if (err[0]) {
        if (!queue_disconnected(err))
            log_warn("queue %s: reading its settings failed: %s", q->name, err);
        return;
    }
    int first = !q->settings_known;
    q->settings_known = 1;
    if (!found) { /* not mirrored yet (a flushed Redis): keep what was read last */
        if (first) /* the queue was not read until now: start */
            read_more(ag);
        return;
    }
    if (first || settings_differ(&q->set, s))
        log_info("queue %s: paused %d, concurrency %ld, rate %ld per %ld ms%s", q->name, s->paused,
                 s->concurrency, s->rate_n, s->rate_period_ms, s->rate_per_key ? " per key" : "");
    q->set = *s;
    metric_set(q->m_paused, s->paused);
    if (!s->paused) {
        /* Whatever changed (first answer, resume, a cap raised or cleared),
         * the queue may be readable now: read_more is a no-op while a read
         * is in flight, and the next round includes this queue. */
        read_more(ag);
        pump(q);
    }
}

static void load(struct queue_state *q)
{
    queue_settings_read(q->agent->rc, q->agent->prefix, q->name, on_settings, q);
}

static void settings_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct agent *ag = arg;
    int all = 1;
    for (int i = 0; i < ag->nqueues; i++) {
        all &= ag->queues[i].settings_known;
        load(&ag->queues[i]);
    }
    /* until the first answer (Redis not up yet), soon; then as a backstop */
    struct timeval tv = {all ? SETTINGS_PERIOD_S : 0, all ? 0 : 200000};
    evtimer_add(ag->ev_settings, &tv);
}

static struct queue_state *queue_named(struct agent *ag, const char *name)
{
    for (int i = 0; i < ag->nqueues; i++)
        if (strcmp(ag->queues[i].name, name) == 0)
            return &ag->queues[i];
    return NULL;
}

void agent_limits_reload(struct agent *ag, const char *queue)
{
    struct queue_state *q = queue_named(ag, queue);
    if (q)
        load(q);
}

static void gate_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pump(arg);
}

void agent_limits_start(struct agent *ag, void (*more)(struct agent *ag),
                        void (*delivered)(struct agent *ag, struct task *list))
{
    read_more = more;
    deliver = delivered;
    for (int i = 0; i < ag->nqueues; i++) {
        struct queue_state *q = &ag->queues[i];
        char labels[128];
        snprintf(labels, sizeof labels, "queue=\"%s\"", q->name);
        q->m_paused = metric_gauge("devsys_agent_queue_paused", labels,
                                   "1 while the queue is paused (the agent takes no new entry from it)");
        q->ev_gate = evtimer_new(ag->base, gate_cb, q);
    }
    ag->ev_settings = evtimer_new(ag->base, settings_cb, ag);
    struct timeval now = {0, 0};
    evtimer_add(ag->ev_settings, &now);
}

/* -------------------------------------------------------------------- gate */

int agent_limits_gated(const struct queue_state *q)
{
    return q->set.concurrency > 0 || (q->set.rate_n > 0 && q->set.rate_period_ms > 0);
}

static int keyed(const struct queue_state *q)
{
    return q->set.rate_per_key && q->set.rate_n > 0 && q->set.rate_period_ms > 0;
}

int agent_limits_keyed_budget(const struct queue_state *q)
{
    if (!keyed(q))
        return -1;
    return q->ngate < GATE_KEYED_MAX ? GATE_KEYED_MAX - q->ngate : 0;
}

static void gate_insert(struct queue_state *q, struct task *t)
{
    struct task **p = &q->gate;
    while (*p && (*p)->level <= t->level)
        p = &(*p)->next;
    t->next = *p;
    *p = t;
    q->ngate++;
    t->keyed = keyed(q);
    t->asked = 0;
    if (!t->keyed)
        q->agent->ngated++;
}

/* Takes t (at *p) out of the gate. */
static void gate_remove(struct queue_state *q, struct task **p)
{
    struct task *t = *p;
    *p = t->next;
    t->next = NULL;
    q->ngate--;
    if (!t->keyed)
        q->agent->ngated--;
}

static void on_admit(void *arg, const char *err, const unsigned char *granted, size_t n, long long wait_ms)
{
    struct queue_state *q = arg;
    struct agent *ag = q->agent;
    q->admitting = 0;
    if (err[0]) {
        if (!queue_disconnected(err))
            log_warn("queue %s: admit failed: %s", q->name, err);
        for (struct task *t = q->gate; t; t = t->next)
            t->asked = 0;
        struct timeval tv = {1, 0};
        evtimer_add(q->ev_gate, &tv);
        return;
    }
    /* the answers follow the order of the tasks asked (tasks offered since
     * may sit between them in the gate) */
    struct task *go = NULL, **go_tail = &go, **p = &q->gate;
    size_t i = 0;
    while (*p) {
        struct task *t = *p;
        if (!t->asked || i >= n || !granted[i++]) {
            t->asked = 0;
            p = &t->next;
            continue;
        }
        t->asked = 0;
        gate_remove(q, p);
        t->has_slot = q->set.concurrency > 0;
        *go_tail = t;
        go_tail = &t->next;
    }
    if (go)
        deliver(ag, go);
    if (q->gate) {
        if (wait_ms == 0) {
            pump(q); /* more than one batch */
        } else {
            long long ms = wait_ms > 0 ? wait_ms : SLOT_BACKSTOP_MS;
            struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
            evtimer_add(q->ev_gate, &tv);
        }
    }
    read_more(ag);
}

/* Ask for slots and starts for the first ADMIT_BATCH gated tasks. */
static void pump(struct queue_state *q)
{
    struct agent *ag = q->agent;
    if (q->admitting || !q->gate || q->set.paused || ag->stopping)
        return;
    evtimer_del(q->ev_gate);
    if (!agent_limits_gated(q)) { /* the limits were lifted */
        struct task *list = q->gate;
        for (struct task *t = list; t; t = t->next)
            ag->ngated -= !t->keyed;
        q->gate = NULL;
        q->ngate = 0;
        deliver(ag, list);
        return;
    }
    /* Asked: the first ADMIT_BATCH tasks, but a keyed one only while a slot
     * is free for it, and no more per key than its rate can grant, so the
     * tasks of other keys behind a key's backlog are asked too. */
    const char *members[ADMIT_BATCH], *keys[ADMIT_BATCH];
    size_t n = 0, nkeyed = 0;
    long exec_free = ag->concurrency - ag->slots_used - ag->ngated;
    for (struct task *t = q->gate; t && n < ADMIT_BATCH; t = t->next) {
        const char *key = q->set.rate_per_key && t->spec ? t->spec->rate_key : NULL;
        if (t->keyed) {
            if (exec_free <= 0) {
                nkeyed++;
                continue;
            }
            long same = 0;
            for (size_t j = 0; j < n; j++)
                same += keys[j] == key || (keys[j] && key && strcmp(keys[j], key) == 0);
            if (same >= q->set.rate_n)
                continue;
            exec_free--;
        }
        t->asked = 1;
        members[n] = t->slot;
        keys[n++] = key;
    }
    if (n == 0) { /* keyed tasks wait for a slot of this agent */
        struct timeval tv = {0, GATE_SLOT_WAIT_MS * 1000};
        if (nkeyed)
            evtimer_add(q->ev_gate, &tv);
        return;
    }
    long rate_n = q->set.rate_period_ms > 0 ? q->set.rate_n : 0;
    if (queue_admit(ag->rc, ag->prefix, q->name, members, keys, n, q->set.concurrency, rate_n,
                    q->set.rate_period_ms, (long)ag->lease_s * 1000, on_admit, q) == 0) {
        q->admitting = 1;
    } else {
        for (struct task *t = q->gate; t; t = t->next)
            t->asked = 0;
        struct timeval tv = {1, 0};
        evtimer_add(q->ev_gate, &tv);
    }
}

void agent_limits_offer(struct agent *ag, struct queue_state *q, struct task *list)
{
    while (list) {
        struct task *t = list;
        list = t->next;
        snprintf(t->slot, sizeof t->slot, "%s/%s/%s", ag->name, queue_level_name(t->level), t->entry_id);
        gate_insert(q, t);
    }
    pump(q);
}

void agent_limits_slot_freed(struct agent *ag, const char *queue)
{
    struct queue_state *q = queue_named(ag, queue);
    if (q && q->gate && !q->admitting)
        pump(q);
}


static void on_released(void *arg, const char *err, long long n)
{
    struct queue_state *q = arg;
    if (err[0] || n == 0)
        return;
    queue_control_slot(q->agent->rc, q->agent->prefix, q->name, NULL, NULL);
    pump(q); /* our own gate first, without waiting for the message */
}

void agent_limits_release(struct agent *ag, struct task *t)
{
    if (!t->has_slot)
        return;
    t->has_slot = 0;
    queue_slot_release(ag->rc, ag->prefix, t->q->name, t->slot, on_released, t->q);
}

void agent_limits_keepalive(struct agent *ag)
{
    long lease_ms = (long)ag->lease_s * 1000;
    for (int qi = 0; qi < ag->nqueues; qi++) {
        struct queue_state *q = &ag->queues[qi];
        const char *ids[256];
        for (int lv = 0; lv < QUEUE_LEVELS; lv++) {
            size_t n = 0;
            for (struct task *t = q->gate; t; t = t->next) {
                if ((int)t->level == lv)
                    ids[n++] = t->entry_id;
                if (n == sizeof ids / sizeof *ids || (n && !t->next)) { /* a keyed gate holds more */
                    queue_keepalive_at(ag->rc, ag->prefix, q->name, (enum queue_level)lv, ag->name, ids, n,
                                       NULL, NULL);
                    n = 0;
                }
            }
        }
        size_t n = 0;
        for (struct task *t = ag->held; t; t = t->hnext)
            if (t->q == q && t->has_slot && n < sizeof ids / sizeof *ids)
                ids[n++] = t->slot;
        if (n)
            queue_slot_extend(ag->rc, ag->prefix, q->name, ids, n, lease_ms, NULL, NULL);
    }
}

void agent_limits_stop(struct agent *ag)
{
    for (int i = 0; i < ag->nqueues; i++) {
        struct queue_state *q = &ag->queues[i];
        while (q->gate) { /* pending under our name: reclaimed after the lease */
            struct task *t = q->gate;
            q->gate = t->next;
            envelope_clear(&t->env);
            spec_free(t->spec);
            free(t->spec_text);
            free(t);
        }
        if (q->ev_gate)
            event_free(q->ev_gate);
        q->ev_gate = NULL;
    }
    if (ag->ev_settings)
        event_free(ag->ev_settings);
    ag->ev_settings = NULL;
}
