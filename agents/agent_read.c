/* agent_read: the agent's Redis side. Reads the streams through the consumer
 * group (first its own pending entries, then new ones), decodes entries into
 * tasks, recovers entries idle past the lease (XAUTOCLAIM), keeps its own
 * entries and leases alive, promotes due retries, trims the streams, and
 * follows the control stream for cancels. */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent_read.h"

#include "agent_internal.h"
#include "agent_claim.h"
#include "agent_limits.h"
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

int agent_read_kinds_init(struct agent *ag, const char *list, char *err, size_t errlen)
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

char *agent_read_kinds_text(const struct agent *ag, char *buf, size_t cap)
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
static struct task *task_from_entry(struct agent *ag, struct queue_state *q, const queue_entry_t *e)
{
    struct task *t = xcalloc(1, sizeof *t);
    t->ag = ag;
    t->q = q;
    t->phase = PHASE_CLAIMING;
    snprintf(t->entry_id, sizeof t->entry_id, "%.*s", (int)e->id_len, e->id);
    t->entry_ms = strtoll(t->entry_id, NULL, 10);

    /* the fields point into the reply: envelope_decode copies what it keeps */
    const envelope_field_t *f = e->fields;
    int too_many = e->nfields > 64;
    size_t nf = too_many ? 64 : e->nfields;
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
                 t->spec->kind, ag->name, agent_read_kinds_text(ag, kinds, sizeof kinds),
                 strchr("aeiou", t->spec->kind[0]) ? "an" : "a", t->spec->kind);
        t->phase = PHASE_REJECTING;
    }
    if (t->env.hand_pushed || t->phase == PHASE_REJECTING)
        t->spec_text = json_dumps(t->spec->json, JSON_COMPACT);
    return t;
}

/* -------------------------------------------------------------------- read */

/* The queue and level of a stream key. */
static struct queue_state *queue_by_key(struct agent *ag, const char *key, enum queue_level *level)
{
    for (int i = 0; i < ag->nqueues; i++)
        for (int lv = 0; lv < QUEUE_LEVELS; lv++)
            if (strcmp(ag->queues[i].stream_key[lv], key) == 0) {
                *level = (enum queue_level)lv;
                return &ag->queues[i];
            }
    return NULL;
}

static void ensure_groups(struct agent *ag);

/* Hands the entries of one stream (from XREADGROUP or XAUTOCLAIM) to the
 * core as one list of tasks, in delivery order; those of a capped,
 * rate-limited or paused queue go through its gate first (rejects need no
 * slot). */
static void accept_entries(struct agent *ag, struct queue_state *q, enum queue_level level,
                           const queue_entry_t *entries, size_t n)
{
    struct task *list = NULL, **tail = &list, *gated = NULL, **gtail = &gated;
    /* paused: a blocking read under way when the pause came may still
     * deliver; such entries wait in the gate until the resume */
    int gate = agent_limits_gated(q) || q->set.paused;
    for (size_t i = 0; i < n; i++) {
        const queue_entry_t *e = &entries[i];
        /* an entry deleted while pending has no fields: nothing to run */
        if (e->deleted)
            continue;
        struct task *t = task_from_entry(ag, q, e);
        t->level = level;
        if (gate && t->phase == PHASE_CLAIMING) {
            *gtail = t;
            gtail = &t->next;
        } else {
            *tail = t;
            tail = &t->next;
        }
    }
    if (list)
        ag->read_cbs->delivered(ag, list);
    if (gated)
        agent_limits_offer(ag, q, gated);
}

/* Our own pending entries that were deleted from the stream come back with
 * no fields: nothing to run from them (the reconciler finds their tasks in
 * PostgreSQL), so they leave the pending list. */
static void ack_deleted(struct agent *ag, struct queue_state *q, enum queue_level level,
                        const queue_entry_t *entries, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (entries[i].deleted)
            queue_ack_at(ag->rc, ag->prefix, q->name, level, &entries[i].id, 1, NULL, NULL);
}

static void read_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    agent_read_more(arg);
}

/* A failed read: 1 when it was (reading resumes later), 0 when it was not. */
static int read_failed(struct agent *ag, const char *err)
{
    if (!err[0])
        return 0;
    ag->reading = 0;
    if (queue_disconnected(err)) /* reading resumes on reconnect */
        return 1;
    if (strncmp(err, "NOGROUP", 7) == 0) {
        log_warn("consumer group missing (%s); creating it again", err);
        ensure_groups(ag);
    } else {
        log_error("XREADGROUP failed: %s", err);
        struct timeval tv = {1, 0};
        evtimer_add(ag->ev_read_retry, &tv);
    }
    return 1;
}

/* The own pending entries, or the blocking wake-up read: the entries of
 * every stream read, those of one stream adjacent. */
static void on_read(void *arg, const char *err, const queue_entry_t *entries, size_t n)
{
    struct agent *ag = arg;
    if (read_failed(ag, err))
        return;
    ag->reading = 0;
    size_t got = 0;
    for (size_t i = 0, k; i < n; i = k) {
        for (k = i + 1; k < n && strcmp(entries[k].stream, entries[i].stream) == 0; k++)
            ;
        enum queue_level level;
        struct queue_state *q = queue_by_key(ag, entries[i].stream, &level);
        if (!q)
            continue;
        got += k - i;
        if (!ag->pel_done) {
            snprintf(q->pel_cursor[level], sizeof q->pel_cursor[level], "%s", entries[k - 1].id);
            ack_deleted(ag, q, level, entries + i, k - i);
        }
        accept_entries(ag, q, level, entries + i, k - i);
    }
    if (!ag->pel_done && got == 0) {
        ag->pel_done = 1;
        log_info("own pending entries re-read; now reading new entries");
    }
    agent_read_more(ag);
}

/* How many new entries of q this agent may read now: none while its
 * settings are unknown or it is paused; with a cap, no more than the cap
 * minus those already waiting in its gate; with a per-key rate, what its
 * gate has room for. */
static int read_budget(const struct agent *ag, const struct queue_state *q)
{
    if (!q->group_ready || !q->settings_known || q->set.paused)
        return 0;
    int keyed = agent_limits_keyed_budget(q);
    if (keyed >= 0)
        return keyed;
    long free_slots = ag->concurrency - ag->slots_used - ag->ngated;
    if (q->set.concurrency > 0 && q->set.concurrency - q->ngate < free_slots)
        free_slots = q->set.concurrency - q->ngate;
    return (int)free_slots;
}

static void read_step(struct agent *ag);

static void on_level_read(void *arg, const char *err, const queue_entry_t *entries, size_t n)
{
    struct agent *ag = arg;
    if (read_failed(ag, err))
        return;
    struct queue_state *q = &ag->queues[ag->rd_qi];
    accept_entries(ag, q, (enum queue_level)ag->rd_level, entries, n);
    ag->rd_got += (int)n;
    ag->rd_left -= (int)n;
    ag->rd_level++;
    if (ag->stopping) {
        ag->reading = 0;
        return;
    }
    read_step(ag);
}

/* One round: for each queue, new entries of high, then (with budget left)
 * normal, then low, each a read that answers at once; a round that found
 * nothing blocks on every level of the readable queues (COUNT 1 each) to
 * wake up on the next entry, then drains in order again. */
static void read_step(struct agent *ag)
{
    while (ag->rd_qi < ag->nqueues) {
        struct queue_state *q = &ag->queues[ag->rd_qi];
        if (ag->rd_left < 0)
            ag->rd_left = read_budget(ag, q);
        if (ag->rd_left > 0 && ag->rd_level < QUEUE_LEVELS) {
            const char *name = q->name, *from = ">";
            enum queue_level level = (enum queue_level)ag->rd_level;
            if (queue_read_levels(ag->rc_read, ag->prefix, &name, &level, &from, 1, ag->name, ag->rd_left, -1,
                                  on_level_read, ag) < 0)
                ag->reading = 0;
            return;
        }
        ag->rd_qi++;
        ag->rd_level = QUEUE_HIGH;
        ag->rd_left = -1;
    }
    if (ag->rd_got) {
        ag->reading = 0;
        agent_read_more(ag);
        return;
    }
    const char *names[64 * QUEUE_LEVELS], *from[64 * QUEUE_LEVELS];
    enum queue_level levels[64 * QUEUE_LEVELS];
    size_t n = 0;
    for (int i = 0; i < ag->nqueues; i++) {
        if (read_budget(ag, &ag->queues[i]) <= 0)
            continue;
        for (int lv = 0; lv < QUEUE_LEVELS; lv++) {
            names[n] = ag->queues[i].name;
            levels[n] = (enum queue_level)lv;
            from[n++] = ">";
        }
    }
    /* nothing readable (paused, gate full): a resume, an admit or a release reads again */
    if (n == 0 || queue_read_levels(ag->rc_read, ag->prefix, names, levels, from, n, ag->name, 1, READ_BLOCK_MS,
                                    on_read, ag) < 0)
        ag->reading = 0;
}

void agent_read_more(struct agent *ag)
{
    if (ag->reading || ag->stopping || !rc_connected(ag->rc_read))
        return;
    int free_slots = ag->concurrency - ag->slots_used - ag->ngated;
    if (free_slots <= 0)
        return;
    for (int i = 0; i < ag->nqueues; i++)
        if (!ag->queues[i].group_ready)
            return;
    if (!ag->pel_done) {
        /* First our own pending entries (left by a previous process with
         * this name: Redis keeps them under the consumer name), every level. */
        const char *names[64 * QUEUE_LEVELS], *from[64 * QUEUE_LEVELS];
        enum queue_level levels[64 * QUEUE_LEVELS];
        size_t n = 0;
        for (int i = 0; i < ag->nqueues; i++)
            for (int lv = 0; lv < QUEUE_LEVELS; lv++) {
                names[n] = ag->queues[i].name;
                levels[n] = (enum queue_level)lv;
                from[n++] = ag->queues[i].pel_cursor[lv];
            }
        if (queue_read_levels(ag->rc_read, ag->prefix, names, levels, from, n, ag->name, free_slots,
                              READ_BLOCK_MS, on_read, ag) == 0)
            ag->reading = 1;
        return;
    }
    ag->rd_qi = 0;
    ag->rd_level = QUEUE_HIGH;
    ag->rd_left = -1;
    ag->rd_got = 0;
    ag->reading = 1;
    read_step(ag);
}

/* ---------------------------------------------------------- consumer groups */

/* Whether the queue can be read, as the gauge and /readyz show it. */
static void group_state(struct queue_state *q, int ready, const char *why)
{
    q->group_ready = ready;
    snprintf(q->group_error, sizeof q->group_error, "%s", ready ? "" : why);
    metric_set(q->m_readable, ready);
}

/* One level's XGROUP CREATE; the queue is readable once all three exist
 * (on_groups_done decides). */
static void on_group(void *arg, const char *err)
{
    struct queue_state *q = arg;
    if (queue_disconnected(err)) { /* the connect hook creates the groups again */
        q->group_failed = 1;
        group_state(q, 0, "redis disconnected");
    } else if (!err[0]) { /* created, or BUSYGROUP: it exists */
    } else {
        int first = !q->group_failed; /* one line per queue and round, not per level */
        q->group_failed = 1;
        /* e.g. LOADING while Redis reads its AOF after a restart: retried
         * with backoff until it works (on_groups_done), never given up on */
        metric_add(q->m_group_errors, 1);
        group_state(q, 0, err);
        if (first)
            log_warn("queue %s: cannot create consumer group: %s; retrying", q->name, err);
    }
}

static void on_groups_done(void *arg, const char *err)
{
    struct agent *ag = arg;
    if (queue_disconnected(err)) /* on_read_connect starts again */
        return;
    for (int i = 0; i < ag->nqueues; i++)
        if (!ag->queues[i].group_ready && !ag->queues[i].group_failed)
            group_state(&ag->queues[i], 1, NULL);
    int all = 1;
    for (int i = 0; i < ag->nqueues; i++)
        all &= ag->queues[i].group_ready;
    if (all) {
        if (ag->groups_backoff_ms) /* after at least one failed round */
            log_info("consumer groups ready on every queue: reading again");
        ag->groups_backoff_ms = 0;
        agent_read_more(ag);
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
        q->group_failed = 0;
        for (int lv = 0; lv < QUEUE_LEVELS; lv++)
            queue_ensure_group_at(ag->rc_read, ag->prefix, q->name, (enum queue_level)lv, on_group, q);
    }
    queue_ping(ag->rc_read, on_groups_done, ag);
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

const char *agent_read_not_ready(const struct agent *ag, char *buf, size_t cap)
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
        for (int lv = 0; lv < QUEUE_LEVELS; lv++)
            queue_trim_at(ag->rc, ag->prefix, ag->queues[i].name, (enum queue_level)lv, NULL, NULL);
}

/* Keep-alive of every held entry in Redis (only those still ours) and of
 * their leases in PostgreSQL, independent of how long the tasks run. */
static void lease_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct agent *ag = arg;
    agent_claim_lease_renew(ag, ag->read_cbs->cancelled);
    agent_limits_keepalive(ag);
    for (int qi = 0; qi < ag->nqueues; qi++)
        for (int lv = 0; lv < QUEUE_LEVELS; lv++) {
            const char *ids[1024];
            size_t n = 0;
            for (struct task *t = ag->held; t; t = t->hnext) {
                if (t->q != &ag->queues[qi] || (int)t->level != lv)
                    continue;
                ids[n++] = t->entry_id;
                if (n == sizeof ids / sizeof *ids) {
                    queue_keepalive_at(ag->rc, ag->prefix, t->q->name, t->level, ag->name, ids, n, NULL, NULL);
                    n = 0;
                }
            }
            if (n)
                queue_keepalive_at(ag->rc, ag->prefix, ag->queues[qi].name, (enum queue_level)lv, ag->name, ids,
                                   n, NULL, NULL);
        }
}

/* The promote script answers {moved, set_aside, reason...}: each reason is
 * that of one malformed member it moved to the DLQ instead of the stream. */
static void on_promote(void *arg, const char *err, long long moved, long long set_aside, const char *const *why,
                       size_t nwhy)
{
    (void)moved;
    struct queue_state *q = arg;
    if (queue_disconnected(err))
        return;
    if (err[0]) {
        /* not one member's fault (those are set aside): say so, at most once a minute */
        time_t now = time(NULL);
        if (now - q->promote_err_at >= 60) {
            q->promote_err_at = now;
            log_error("queue %s: promoting due retries failed: %s", q->name, err);
        }
        return;
    }
    if (set_aside == 0)
        return;
    metric_add(q->m_set_aside, (double)set_aside);
    for (size_t i = 0; i < nwhy; i++)
        log_warn("queue %s: a malformed member of %s:{%s}:delayed was moved to its DLQ: %s", q->name,
                 q->agent->prefix, q->name, why[i]);
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

/* What an XAUTOCLAIM of one level answers to. */
struct autoclaim_ctx {
    struct queue_state *q;
    enum queue_level lv;
};

static void on_autoclaim(void *arg, const char *err, const char *cursor, const queue_entry_t *entries, size_t n,
                         size_t ndeleted)
{
    struct autoclaim_ctx c = *(struct autoclaim_ctx *)arg;
    free(arg);
    struct queue_state *q = c.q;
    enum queue_level lv = c.lv;
    q->autoclaiming[lv] = 0;
    struct agent *ag = q->agent;
    if (err[0]) {
        if (!queue_disconnected(err) && strncmp(err, "NOGROUP", 7) != 0)
            log_warn("XAUTOCLAIM on %s: %s", q->stream_key[lv], err);
        return;
    }
    snprintf(q->autoclaim_cursor[lv], sizeof q->autoclaim_cursor[lv], "%s", cursor);
    if (n) {
        log_info("recovered %zu entries of %s idle past the lease", n, q->name);
        char labels[128];
        snprintf(labels, sizeof labels, "queue=\"%s\"", q->name);
        metric_add(metric_counter("devsys_agent_reclaimed_total", labels,
                                  "Entries taken over from a consumer that held them past the lease (crashed or hung)"),
                   (double)n);
    }
    if (ndeleted)
        /* Gone from the stream while pending: their tasks are in PostgreSQL,
         * where the reconciler finds them by their expired lease. */
        log_warn("%zu pending entries of %s were deleted from the stream", ndeleted, q->name);
    if (!ag->stopping)
        accept_entries(ag, q, lv, entries, n);
}

static void autoclaim_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct agent *ag = arg;
    int free_slots = ag->concurrency - ag->slots_used;
    for (int i = 0; i < ag->nqueues && !ag->stopping && free_slots > 0; i++) {
        struct queue_state *q = &ag->queues[i];
        for (int lv = 0; lv < QUEUE_LEVELS && q->group_ready; lv++) {
            if (q->autoclaiming[lv])
                continue;
            struct autoclaim_ctx *c = xmalloc(sizeof *c);
            *c = (struct autoclaim_ctx){q, (enum queue_level)lv};
            if (queue_autoclaim_at(ag->rc, ag->prefix, q->name, (enum queue_level)lv, ag->name,
                                   (long long)ag->lease_s * 1000, q->autoclaim_cursor[lv], free_slots,
                                   on_autoclaim, c) == 0)
                q->autoclaiming[lv] = 1;
            else
                free(c);
        }
    }
}

/* The control stream carries "cancel <task-id>"; read with a blocking XREAD
 * on a connection of its own, from the newest entry on. */
static void read_control(struct agent *ag);

static void on_control(void *arg, const char *err, const char *last_id, const struct queue_control_msgs *m)
{
    struct agent *ag = arg;
    ag->ctl_reading = 0;
    if (queue_disconnected(err))
        return;
    if (last_id)
        snprintf(ag->ctl_last, sizeof ag->ctl_last, "%s", last_id);
    for (size_t i = 0; i < m->ncancel; i++)
        ag->read_cbs->cancelled(ag, m->cancel[i]);
    for (size_t i = 0; i < m->nsettings; i++)
        agent_limits_reload(ag, m->settings[i]);
    for (size_t i = 0; i < m->nslot; i++)
        agent_limits_slot_freed(ag, m->slot[i]);
    read_control(ag);
}

static void read_control(struct agent *ag)
{
    if (ag->ctl_reading || !ag->rc_ctl || !rc_connected(ag->rc_ctl))
        return;
    if (queue_control_read(ag->rc_ctl, ag->prefix, ag->ctl_last, 5000, on_control, ag) == 0)
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

void agent_read_start(struct agent *ag, const struct agent_read_cbs *cbs)
{
    ag->read_cbs = cbs;
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
    agent_limits_start(ag, agent_read_more, cbs->delivered);
    ag->ev_groups_retry = evtimer_new(ag->base, groups_retry_cb, ag);
    rc_mark_blocking(ag->rc_read); /* XREADGROUP BLOCK, XREAD BLOCK: not round trips */
    rc_mark_blocking(ag->rc_ctl);
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
