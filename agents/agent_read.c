/* agent_read: the agent's Redis side. Reads the streams through the consumer
 * group (first its own pending entries, then new ones), decodes entries into
 * tasks, recovers entries idle past the lease (XAUTOCLAIM), keeps its own
 * entries and leases alive, promotes due retries, trims the streams, and
 * follows the control stream for cancels. */
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "kind.h"
#include "log.h"
#include "metrics.h"
#include "queue.h"
#include "utf8.h"
#include "xalloc.h"

#define READ_BLOCK_MS 2000
#define TRIM_PERIOD_S 5
#define GROUPS_BACKOFF_MIN_MS 100
#define GROUPS_BACKOFF_MAX_MS 5000

/* ------------------------------------------------------------------- kinds */

/* DEVSYS_KINDS: bit i of ag->kinds is the registry's kind_at(i). */
static int nkinds(void)
{
    int n = 0;
    while (kind_at((size_t)n))
        n++;
    return n;
}

static int kind_index(const char *name, size_t len)
{
    const kind_def_t *k;
    for (int i = 0; (k = kind_at((size_t)i)) != NULL; i++)
        if (strlen(k->name) == len && memcmp(k->name, name, len) == 0)
            return i;
    return -1;
}

int agent_kinds_init(struct agent *ag, const char *list, char *err, size_t errlen)
{
    ag->kinds = 0;
    if (!list) {
        for (int q = 0; q < ag->nqueues; q++) {
            int k = kind_index(ag->queues[q].name, strlen(ag->queues[q].name));
            ag->kinds |= k < 0 ? (1u << nkinds()) - 1 : 1u << k;
        }
        return 0;
    }
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ", ");
        if (len) {
            int k = kind_index(p, len);
            if (k < 0) {
                char names[256];
                snprintf(err, errlen, "DEVSYS_KINDS: \"%.*s\" is not a kind this agent has a handler for (%s)",
                         (int)(len > 64 ? 64 : len), p, kind_names(names, sizeof names));
                return -1;
            }
            ag->kinds |= 1u << k;
        }
        p += len;
        p += strspn(p, ", ");
    }
    if (!ag->kinds) {
        snprintf(err, errlen, "DEVSYS_KINDS: no kind named");
        return -1;
    }
    return 0;
}

char *agent_kinds_text(const struct agent *ag, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    const kind_def_t *k;
    for (int i = 0; (k = kind_at((size_t)i)) != NULL && n < cap; i++)
        if (ag->kinds & (1u << i))
            n += (size_t)snprintf(buf + n, cap - n, "%s%s", n ? "," : "", k->name);
    return buf;
}

static int kind_allowed(const struct agent *ag, const char *kind)
{
    int k = kind_index(kind, strlen(kind));
    return k >= 0 && (ag->kinds & (1u << k));
}

/* ------------------------------------------------------------------ decode */

/* Builds a task from one stream entry. A task that cannot run gets phase
 * PHASE_REJECTING and a reason; it is recorded, not dropped. */
static struct task *task_from_entry(struct agent *ag, struct queue_state *q, const redisReply *e)
{
    struct task *t = xcalloc(1, sizeof *t);
    t->ag = ag;
    t->q = q;
    t->phase = PHASE_CLAIMING;
    const redisReply *id = e->element[0], *fields = e->element[1];
    snprintf(t->entry_id, sizeof t->entry_id, "%.*s", (int)id->len, id->str);
    t->entry_ms = strtoll(t->entry_id, NULL, 10);

    envelope_field_t f[64];
    size_t nf = 0;
    int too_many = 0;
    if (fields && fields->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i + 1 < fields->elements; i += 2) {
            if (nf == sizeof f / sizeof *f) {
                too_many = 1;
                break;
            }
            f[nf++] = (envelope_field_t){fields->element[i]->str, fields->element[i]->len,
                                         fields->element[i + 1]->str, fields->element[i + 1]->len};
        }
    }
    char err[SPEC_ERR_MAX];
    if (envelope_decode(q->name, t->entry_id, f, nf, &t->env, err, sizeof err) < 0 || too_many) {
        if (too_many)
            snprintf(err, sizeof err, "entry: more than 64 fields");
        snprintf(t->reject, sizeof t->reject, "%s", err);
        t->phase = PHASE_REJECTING;
        /* keep what can be kept of the spec for the operator */
        if (t->env.spec) {
            t->spec_text = json_dumps(t->env.spec, JSON_COMPACT);
        } else {
            const char *raw = NULL;
            size_t rawlen = 0;
            for (size_t i = 0; i < nf; i++)
                if (f[i].name_len == 4 && memcmp(f[i].name, "spec", 4) == 0) {
                    raw = f[i].val;
                    rawlen = f[i].val_len;
                }
            char *preview = utf8_preview(raw ? raw : "", rawlen, 1024);
            json_t *j = json_pack("{s:s,s:I}", "unreadable_spec", preview, "bytes", (json_int_t)rawlen);
            t->spec_text = json_dumps(j, JSON_COMPACT);
            json_decref(j);
            free(preview);
        }
        return t;
    }
    t->spec = spec_from_json(t->env.spec, err, sizeof err);
    if (!t->spec) {
        snprintf(t->reject, sizeof t->reject, "invalid spec: %s", err);
        t->phase = PHASE_REJECTING;
        t->spec_text = json_dumps(t->env.spec, JSON_COMPACT);
        return t;
    }
    if (strcmp(t->spec->queue, q->name) != 0)
        log_debug("entry %s: spec names queue %s, read from %s", t->entry_id, t->spec->queue, q->name);
    t->ops = handler_find(t->spec->kind);
    if (!t->ops) {
        snprintf(t->reject, sizeof t->reject, "kind %s: this agent has no handler for it", t->spec->kind);
        t->phase = PHASE_REJECTING;
    } else if (!kind_allowed(ag, t->spec->kind)) {
        char kinds[64];
        snprintf(t->reject, sizeof t->reject,
                 "kind %s: this agent (%s) runs only %s; set DEVSYS_KINDS or route the task to a queue "
                 "served by %s %s agent",
                 t->spec->kind, ag->name, agent_kinds_text(ag, kinds, sizeof kinds),
                 strchr("aeiou", t->spec->kind[0]) ? "an" : "a", t->spec->kind);
        t->phase = PHASE_REJECTING;
    }
    if (t->env.hand_pushed || t->phase == PHASE_REJECTING)
        t->spec_text = json_dumps(t->spec->json, JSON_COMPACT);
    return t;
}

/* -------------------------------------------------------------------- read */

static struct queue_state *queue_by_key(struct agent *ag, const char *key, size_t len)
{
    for (int i = 0; i < ag->nqueues; i++)
        if (strlen(ag->queues[i].stream_key) == len && memcmp(ag->queues[i].stream_key, key, len) == 0)
            return &ag->queues[i];
    return NULL;
}

static void ensure_groups(struct agent *ag);

/* Takes on the entries of one stream (from XREADGROUP or XAUTOCLAIM): every
 * one holds a slot until its outcome is settled; the batch is claimed (or
 * rejected) in PostgreSQL with one statement. */
static void accept_entries(struct agent *ag, struct queue_state *q, const redisReply *entries)
{
    struct task *claims = NULL, *rejects = NULL;
    for (size_t i = 0; entries->type == REDIS_REPLY_ARRAY && i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        /* a nil field list is an entry deleted while pending: nothing to run */
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[1]->type != REDIS_REPLY_ARRAY)
            continue;
        struct task *t = task_from_entry(ag, q, e);
        held_add(ag, t);
        struct task **l = t->phase == PHASE_REJECTING ? &rejects : &claims;
        t->next = *l;
        *l = t;
    }
    if (rejects)
        reject_batch(ag, rejects);
    if (claims)
        claim_batch(ag, claims);
}

/* Our own pending entries that were deleted from the stream come back with
 * no fields: nothing to run from them (the reconciler finds their tasks in
 * PostgreSQL), so they leave the pending list. */
static void ack_deleted(struct agent *ag, struct queue_state *q, const redisReply *entries)
{
    for (size_t i = 0; i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        if (e->type == REDIS_REPLY_ARRAY && e->elements == 2 && e->element[1]->type != REDIS_REPLY_ARRAY) {
            const char *id = e->element[0]->str;
            queue_ack(ag->rc, ag->prefix, q->name, &id, 1, NULL, NULL);
        }
    }
}

static void read_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    read_more(arg);
}

static void on_read(rc_t *rc, redisReply *reply, void *arg)
{
    (void)rc;
    struct agent *ag = arg;
    ag->reading = 0;
    if (!reply) /* disconnected: reading resumes on reconnect */
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        if (strncmp(reply->str, "NOGROUP", 7) == 0) {
            log_warn("consumer group missing (%s); creating it again", reply->str);
            ensure_groups(ag);
        } else {
            log_error("XREADGROUP failed: %s", reply->str);
            struct timeval tv = {1, 0};
            evtimer_add(ag->ev_read_retry, &tv);
        }
        return;
    }
    size_t got = 0;
    for (size_t s = 0; reply->type == REDIS_REPLY_ARRAY && s < reply->elements; s++) {
        redisReply *st = reply->element[s];
        if (st->type != REDIS_REPLY_ARRAY || st->elements != 2)
            continue;
        struct queue_state *q = queue_by_key(ag, st->element[0]->str, st->element[0]->len);
        redisReply *entries = st->element[1];
        if (!q || entries->type != REDIS_REPLY_ARRAY)
            continue;
        got += entries->elements;
        if (!ag->pel_done && entries->elements) {
            redisReply *last = entries->element[entries->elements - 1];
            snprintf(q->pel_cursor, sizeof q->pel_cursor, "%s", last->element[0]->str);
            ack_deleted(ag, q, entries);
        }
        accept_entries(ag, q, entries);
    }
    if (!ag->pel_done && got == 0) {
        ag->pel_done = 1;
        log_info("own pending entries re-read; now reading new entries");
    }
    read_more(ag);
}

void read_more(struct agent *ag)
{
    if (ag->reading || ag->stopping || !rc_connected(ag->rc_read))
        return;
    int free_slots = ag->concurrency - ag->slots_used;
    if (free_slots <= 0)
        return;
    for (int i = 0; i < ag->nqueues; i++)
        if (!ag->queues[i].group_ready)
            return;
    int argc = 0;
    const char *argv[16 + 2 * 64];
    char count[16], block[16];
    snprintf(count, sizeof count, "%d", free_slots);
    snprintf(block, sizeof block, "%d", READ_BLOCK_MS);
    const char *head[] = {"XREADGROUP", "GROUP", QUEUE_GROUP, ag->name, "COUNT", count, "BLOCK", block, "STREAMS"};
    for (size_t i = 0; i < sizeof head / sizeof *head; i++)
        argv[argc++] = head[i];
    for (int i = 0; i < ag->nqueues; i++)
        argv[argc++] = ag->queues[i].stream_key;
    /* First our own pending entries (left by a previous process with this
     * name: Redis keeps them under the consumer name), then new ones. */
    for (int i = 0; i < ag->nqueues; i++)
        argv[argc++] = ag->pel_done ? ">" : ag->queues[i].pel_cursor;
    if (rc_command_argv(ag->rc_read, on_read, ag, argc, argv, NULL) == 0)
        ag->reading = 1;
}

/* ---------------------------------------------------------- consumer groups */

/* Whether the queue can be read, as the gauge and /readyz show it. */
static void group_state(struct queue_state *q, int ready, const char *why)
{
    q->group_ready = ready;
    snprintf(q->group_error, sizeof q->group_error, "%s", ready ? "" : why);
    metric_set(q->m_readable, ready);
}

static void on_group(rc_t *rc, redisReply *reply, void *arg)
{
    (void)rc;
    struct queue_state *q = arg;
    if (!reply) { /* disconnected: the connect hook creates the groups again */
        group_state(q, 0, "redis disconnected");
    } else if (reply->type != REDIS_REPLY_ERROR || strncmp(reply->str, "BUSYGROUP", 9) == 0) {
        group_state(q, 1, NULL);
    } else {
        /* e.g. LOADING while Redis reads its AOF after a restart: retried
         * with backoff until it works (on_groups_done), never given up on */
        metric_add(q->m_group_errors, 1);
        group_state(q, 0, reply->str);
        log_warn("queue %s: cannot create consumer group on %s: %s; retrying", q->name, q->stream_key,
                 reply->str);
    }
}

static void on_groups_done(rc_t *rc, redisReply *reply, void *arg)
{
    (void)rc;
    struct agent *ag = arg;
    if (!reply) /* disconnected: on_read_connect starts again */
        return;
    int all = 1;
    for (int i = 0; i < ag->nqueues; i++)
        all &= ag->queues[i].group_ready;
    if (all) {
        if (ag->groups_backoff_ms) /* after at least one failed round */
            log_info("consumer groups ready on every queue: reading again");
        ag->groups_backoff_ms = 0;
        read_more(ag);
        return;
    }
    ag->groups_backoff_ms = ag->groups_backoff_ms ? ag->groups_backoff_ms * 2 : GROUPS_BACKOFF_MIN_MS;
    if (ag->groups_backoff_ms > GROUPS_BACKOFF_MAX_MS)
        ag->groups_backoff_ms = GROUPS_BACKOFF_MAX_MS;
    struct timeval tv = {ag->groups_backoff_ms / 1000, (ag->groups_backoff_ms % 1000) * 1000};
    evtimer_add(ag->ev_groups_retry, &tv);
}

/* XGROUP CREATE for every queue whose group is not known to exist (all = 1:
 * every queue), then a PING whose reply tells that all answers are in. On
 * the read connection itself, so the groups exist before its first read. */
static void create_groups(struct agent *ag, int all)
{
    if (ag->stopping || !ag->rc_read || !rc_connected(ag->rc_read))
        return; /* on_read_connect calls again */
    evtimer_del(ag->ev_groups_retry);
    for (int i = 0; i < ag->nqueues; i++) {
        struct queue_state *q = &ag->queues[i];
        if (!all && q->group_ready)
            continue;
        if (all)
            group_state(q, 0, "consumer group being created");
        queue_ensure_group(ag->rc_read, ag->prefix, q->name, on_group, q);
    }
    rc_command(ag->rc_read, on_groups_done, ag, "PING");
}

static void ensure_groups(struct agent *ag)
{
    create_groups(ag, 1);
}

static void groups_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    create_groups(arg, 0);
}

static void on_read_connect(rc_t *rc, void *arg)
{
    (void)rc;
    struct agent *ag = arg;
    ag->reading = 0;
    ensure_groups(ag);
}

static void on_read_disconnect(rc_t *rc, void *arg)
{
    (void)rc;
    struct agent *ag = arg;
    for (int i = 0; i < ag->nqueues; i++)
        group_state(&ag->queues[i], 0, "redis disconnected");
}

const char *agent_not_ready(const struct agent *ag, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (ag->stopping)
        snprintf(buf, cap, "shutting down");
    /* the queue's reason first: it is the most precise (e.g. LOADING) */
    for (int i = 0; i < ag->nqueues && !buf[0]; i++)
        if (!ag->queues[i].group_ready)
            snprintf(buf, cap, "queue %s not readable: %s", ag->queues[i].name, ag->queues[i].group_error);
    if (!buf[0] && (!rc_connected(ag->rc) || !ag->rc_read || !rc_connected(ag->rc_read)))
        snprintf(buf, cap, "redis not connected");
    if (!buf[0] && !pgc_ready(ag->pg))
        snprintf(buf, cap, "postgresql not connected");
    return buf[0] ? buf : NULL;
}

/* --------------------------------------------------------- periodic chores */

static void trim_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct agent *ag = arg;
    for (int i = 0; i < ag->nqueues; i++)
        queue_trim(ag->rc, ag->prefix, ag->queues[i].name, NULL, NULL);
}

/* Keep-alive of every held entry in Redis (only those still ours) and of
 * their leases in PostgreSQL, independent of how long the tasks run. */
static void lease_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct agent *ag = arg;
    lease_renew(ag);
    for (int qi = 0; qi < ag->nqueues; qi++) {
        const char *ids[1024];
        size_t n = 0;
        for (struct task *t = ag->held; t; t = t->hnext) {
            if (t->q != &ag->queues[qi])
                continue;
            ids[n++] = t->entry_id;
            if (n == sizeof ids / sizeof *ids) {
                queue_keepalive(ag->rc, ag->prefix, t->q->name, ag->name, ids, n, NULL, NULL);
                n = 0;
            }
        }
        if (n)
            queue_keepalive(ag->rc, ag->prefix, ag->queues[qi].name, ag->name, ids, n, NULL, NULL);
    }
}

/* The promote script answers {moved, set_aside, reason...}: each reason is
 * that of one malformed member it moved to the DLQ instead of the stream. */
static void on_promote(rc_t *rc, redisReply *reply, void *arg)
{
    (void)rc;
    struct queue_state *q = arg;
    if (!reply)
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        /* not one member's fault (those are set aside): say so, at most once a minute */
        time_t now = time(NULL);
        if (now - q->promote_err_at >= 60) {
            q->promote_err_at = now;
            log_error("queue %s: promoting due retries failed: %s", q->name, reply->str);
        }
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 || reply->element[1]->integer == 0)
        return;
    metric_add(q->m_set_aside, (double)reply->element[1]->integer);
    for (size_t i = 2; i < reply->elements; i++)
        if (reply->element[i]->type == REDIS_REPLY_STRING)
            log_warn("queue %s: a malformed member of %s:{%s}:delayed was moved to its DLQ: %s", q->name,
                     q->agent->prefix, q->name, reply->element[i]->str);
}

static void promote_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct agent *ag = arg;
    if (ag->stopping)
        return;
    for (int i = 0; i < ag->nqueues; i++)
        queue_promote(ag->rc, ag->prefix, ag->queues[i].name, 1000, ag->name, on_promote, &ag->queues[i]);
}

static void on_autoclaim(rc_t *rc, redisReply *reply, void *arg)
{
    (void)rc;
    struct queue_state *q = arg;
    struct agent *ag = q->agent;
    q->autoclaiming = 0;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 2) {
        if (reply && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOGROUP", 7) != 0)
            log_warn("XAUTOCLAIM on %s: %s", q->stream_key, reply->str);
        return;
    }
    snprintf(q->autoclaim_cursor, sizeof q->autoclaim_cursor, "%s", reply->element[0]->str);
    if (reply->element[1]->elements)
        log_info("recovered %zu entries of %s idle past the lease", reply->element[1]->elements, q->name);
    if (reply->elements > 2 && reply->element[2]->type == REDIS_REPLY_ARRAY && reply->element[2]->elements)
        /* Gone from the stream while pending: their tasks are in PostgreSQL,
         * where the reconciler finds them by their expired lease. */
        log_warn("%zu pending entries of %s were deleted from the stream", reply->element[2]->elements,
                 q->name);
    if (!ag->stopping)
        accept_entries(ag, q, reply->element[1]);
}

static void autoclaim_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct agent *ag = arg;
    int free_slots = ag->concurrency - ag->slots_used;
    for (int i = 0; i < ag->nqueues && !ag->stopping && free_slots > 0; i++) {
        struct queue_state *q = &ag->queues[i];
        if (q->autoclaiming || !q->group_ready)
            continue;
        if (queue_autoclaim(ag->rc, ag->prefix, q->name, ag->name, (long long)ag->lease_s * 1000,
                            q->autoclaim_cursor, free_slots, on_autoclaim, q) == 0)
            q->autoclaiming = 1;
    }
}

/* The control stream carries "cancel <task-id>"; read with a blocking XREAD
 * on a connection of its own, from the newest entry on. */
static void read_control(struct agent *ag);

static void on_control(rc_t *rc, redisReply *reply, void *arg)
{
    (void)rc;
    struct agent *ag = arg;
    ag->ctl_reading = 0;
    if (!reply)
        return;
    for (size_t s = 0; reply->type == REDIS_REPLY_ARRAY && s < reply->elements; s++) {
        redisReply *entries = reply->element[s]->element[1];
        for (size_t i = 0; i < entries->elements; i++) {
            redisReply *e = entries->element[i];
            snprintf(ag->ctl_last, sizeof ag->ctl_last, "%s", e->element[0]->str);
            redisReply *f = e->element[1];
            for (size_t k = 0; f->type == REDIS_REPLY_ARRAY && k + 1 < f->elements; k += 2)
                if (strcmp(f->element[k]->str, "cancel") == 0)
                    agent_cancelled(ag, f->element[k + 1]->str);
        }
    }
    read_control(ag);
}

static void read_control(struct agent *ag)
{
    if (ag->ctl_reading || !ag->rc_ctl || !rc_connected(ag->rc_ctl))
        return;
    char chan[256];
    if (rc_command(ag->rc_ctl, on_control, ag, "XREAD BLOCK 5000 STREAMS %s %s",
                   queue_control_channel(chan, sizeof chan, ag->prefix), ag->ctl_last) == 0)
        ag->ctl_reading = 1;
}

static void on_control_connect(rc_t *rc, void *arg)
{
    (void)rc;
    struct agent *ag = arg;
    ag->ctl_reading = 0;
    read_control(ag);
}

/* ------------------------------------------------------------------- start */

void agent_read_start(struct agent *ag)
{
    for (int i = 0; i < ag->nqueues; i++) {
        struct queue_state *q = &ag->queues[i];
        char labels[128];
        snprintf(labels, sizeof labels, "queue=\"%s\"", q->name);
        q->m_readable = metric_gauge("devsys_agent_queue_readable", labels,
                                     "1 while the agent can read the queue (its consumer group exists)");
        q->m_group_errors = metric_counter("devsys_agent_group_create_errors_total", labels,
                                           "XGROUP CREATE errors (e.g. LOADING after a Redis restart); retried");
        q->m_set_aside = metric_counter("devsys_agent_delayed_set_aside_total", labels,
                                        "Malformed retry envelopes moved from delayed to the DLQ");
        group_state(q, 0, "not connected to redis yet");
    }
    ag->ev_groups_retry = evtimer_new(ag->base, groups_retry_cb, ag);
    rc_on_connect(ag->rc_read, on_read_connect, ag);
    rc_on_disconnect(ag->rc_read, on_read_disconnect, ag);
    rc_on_connect(ag->rc_ctl, on_control_connect, ag);
    ag->ev_read_retry = evtimer_new(ag->base, read_retry_cb, ag);
    ag->ev_trim = event_new(ag->base, -1, EV_PERSIST, trim_cb, ag);
    ag->ev_lease = event_new(ag->base, -1, EV_PERSIST, lease_cb, ag);
    ag->ev_promote = event_new(ag->base, -1, EV_PERSIST, promote_cb, ag);
    ag->ev_autoclaim = event_new(ag->base, -1, EV_PERSIST, autoclaim_cb, ag);
    struct timeval promote_tv = {0, 500000}, autoclaim_tv = {ag->claim_period_s, 0};
    struct timeval trim_tv = {TRIM_PERIOD_S, 0};
    struct timeval lease_tv = {ag->lease_s / 3, (ag->lease_s % 3) * 333333};
    event_add(ag->ev_promote, &promote_tv);
    event_add(ag->ev_autoclaim, &autoclaim_tv);
    event_add(ag->ev_trim, &trim_tv);
    event_add(ag->ev_lease, &lease_tv);
}
