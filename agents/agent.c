/* devsys-agent: the consumer runtime. One libevent loop reads the queues'
 * streams through the consumer group (agent_read.c), claims the entries in
 * PostgreSQL in batches (agent_claim.c), runs each task's handler, writes
 * outcomes in batches, then XACKs, retries or buries.
 * A slot is held from delivery until the outcome is committed, so outcomes
 * waiting for PostgreSQL are bounded by DEVSYS_CONCURRENCY and never dropped. */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_internal.h"
#include "agent_bounds.h"
#include "agent_claim.h"
#include "agent_read.h"
#include "agent_limits.h"
#include "agent_obs.h"
#include "agent_secrets.h"
#include "backoff.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "netaddr.h"
#include "queue.h"
#include "secretdb.h"
#include "version.h"
#include "xalloc.h"

#define RETRY_DELAY_MS 500

static const char usage[] =
    "usage: devsys-agent [flags]\n"
    "environment: DEVSYS_REDIS_URL, DEVSYS_DATABASE_URL, DEVSYS_QUEUES (exec,coding,noop,sleep,testing),\n"
    "  DEVSYS_CONCURRENCY (16), DEVSYS_AGENT_NAME (host-pid), DEVSYS_PREFIX (devsys),\n"
    "  DEVSYS_LEASE_S (15), DEVSYS_CLAIM_PERIOD_S (2), DEVSYS_KILL_GRACE_S (5),\n"
    "  DEVSYS_SHUTDOWN_GRACE_S (30), DEVSYS_RETRY_INITIAL_S (1), DEVSYS_RETRY_FACTOR (2),\n"
    "  DEVSYS_RETRY_MAX_S (300), DEVSYS_RETRY_JITTER (1), DEVSYS_METRICS_LISTEN (off; host:port:\n"
    "  /metrics, /readyz), DEVSYS_KINDS (the kinds to run; default: the queue names that are\n"
    "  kinds, or every kind when a queue name is not one), DEVSYS_CGROUP (auto|off|<cgroup2 dir>),\n"
    "  DEVSYS_TASK_ENV_ALLOW (extra names tasks inherit); DEVSYS_REDIS_URL_FILE,\n"
    "  DEVSYS_DATABASE_URL_FILE: read the credential from a file";

static const struct cfg_flag flags[] = {
    {"redis", "DEVSYS_REDIS_URL", "redis://host:port/db"},
    {"database", "DEVSYS_DATABASE_URL", "libpq connection string or URI"},
    {"queues", "DEVSYS_QUEUES", "comma-separated queue names"},
    {"concurrency", "DEVSYS_CONCURRENCY", "tasks in flight at most"},
    {"name", "DEVSYS_AGENT_NAME", "unique consumer name"},
    {"prefix", "DEVSYS_PREFIX", "Redis key prefix"},
    {NULL, NULL, NULL},
};

static metric_t *m_done_ok, *m_done_failed, *m_rejected, *m_duplicates;

static void flush_later(struct agent *ag, int delay_ms);

/* ------------------------------------------------------------- task memory */

static int list_count(const struct task *t)
{
    int n = 0;
    for (; t; t = t->next)
        n++;
    return n;
}

static void task_free(struct task *t)
{
    envelope_clear(&t->env);
    spec_free(t->spec);
    free(t->spec_text);
    free(t->checkpoint);
    bounds_checkpoint_forget(t);
    free(t->res.error);
    free(t->res.output);
    json_decref(t->res.result);
    json_decref(t->res.report_summary);
    json_decref(t->res.report_history);
    free(t->res.report_xml);
    json_decref(t->secrets);
    free(t);
}

/* A delivered entry takes a slot until release. */
static void held_add(struct agent *ag, struct task *t)
{
    t->hprev = NULL;
    t->hnext = ag->held;
    if (ag->held)
        ag->held->hprev = t;
    ag->held = t;
    ag->slots_used++;
}

static void held_remove(struct agent *ag, struct task *t)
{
    if (t->hprev)
        t->hprev->hnext = t->hnext;
    else
        ag->held = t->hnext;
    if (t->hnext)
        t->hnext->hprev = t->hprev;
    ag->slots_used--;
}

static void release(struct agent *ag, struct task *list)
{
    while (list) {
        struct task *t = list;
        list = t->next;
        held_remove(ag, t);
        agent_limits_release(ag, t);
        task_free(t);
    }
    agent_read_more(ag);
}

/* XACK the entries of list whose `after` is AFTER_ACK, one command per stream. */
static void ack_list(struct agent *ag, struct task *list)
{
    for (int qi = 0; qi < ag->nqueues; qi++)
        for (int lv = 0; lv < QUEUE_LEVELS; lv++) {
            const char *ids[512];
            size_t n = 0;
            for (struct task *t = list; t; t = t->next) {
                if (t->q != &ag->queues[qi] || (int)t->level != lv || t->after != AFTER_ACK)
                    continue;
                ids[n++] = t->entry_id;
                if (n == sizeof ids / sizeof *ids) {
                    queue_ack_at(ag->rc, ag->prefix, t->q->name, t->level, ids, n, NULL, NULL);
                    n = 0;
                }
            }
            if (n)
                queue_ack_at(ag->rc, ag->prefix, ag->queues[qi].name, (enum queue_level)lv, ids, n, NULL, NULL);
        }
}

struct bury_ctx {
    struct agent *ag;
    char task_id[37];
    const char *queue; /* the agent's queue name: lives as long as the agent */
};

static void on_buried(void *arg, const char *err, const char *dlq_entry)
{
    struct bury_ctx *b = arg;
    if (!err[0]) {
        agent_obs_buried(b->queue);
        agent_claim_dlq_entry_write(b->ag, b->task_id, dlq_entry);
    } else
        log_warn("task %s: dead letter not written (%s); the reconciler rebuilds it from PostgreSQL",
                 b->task_id, err);
    free(b);
}

/* XADD the task's dead letter and XACK its entry, in one script. */
static void bury(struct agent *ag, struct task *t)
{
    char attempts[24], failed_at[32];
    snprintf(attempts, sizeof attempts, "%ld", t->attempt);
    queue_iso_now(failed_at, sizeof failed_at);
    char *spec = t->spec_text ? NULL : t->spec ? json_dumps(t->spec->json, JSON_COMPACT) : NULL;
    const char *error = t->reject[0] ? t->reject : t->res.error ? t->res.error : "failed";
    struct dead_letter dl = {
        .id = t->env.id,
        .kind = t->spec ? t->spec->kind : t->env.kind[0] ? t->env.kind : "unknown",
        .queue = t->q->name,
        .attempts = attempts,
        .error = error,
        .failed_at = failed_at,
        .agent = ag->name,
        .source = t->entry_id,
        .spec = t->spec_text ? t->spec_text : spec ? spec : "{}",
    };
    struct bury_ctx *b = xcalloc(1, sizeof *b);
    b->ag = ag;
    b->queue = t->q->name;
    snprintf(b->task_id, sizeof b->task_id, "%s", t->env.id);
    if (queue_bury_at(ag->rc, ag->prefix, t->q->name, t->level, t->entry_id, &dl, on_buried, b) < 0) {
        log_warn("task %s: redis not connected, dead letter left to the reconciler", t->env.id);
        free(b);
    }
    free(spec);
}

/* What the outcome means in Redis: ack, schedule the retry, or bury. Then
 * the slots are released. Entries left (fenced out, not claimable now) stay
 * pending: keep-alive no longer covers them, so XAUTOCLAIM hands them on. */
static void follow_up(struct agent *ag, struct task *list)
{
    ack_list(ag, list);
    for (struct task *t = list; t; t = t->next) {
        agent_obs_outcome(t);
        if (t->after == AFTER_BURY) {
            bury(ag, t);
        } else if (t->after == AFTER_RETRY) {
            if (queue_retry_at(ag->rc, ag->prefix, t->q->name, t->level, t->entry_id, t->retry_ms, t->env.id,
                               t->spec->kind, t->attempt + 1, t->spec->json, NULL, NULL) < 0)
                log_warn("task %s: redis not connected, its retry is left to the reconciler", t->env.id);
        }
    }
    release(ag, list);
}

/* ---------------------------------------------------------------- handlers */

static void running_remove(struct agent *ag, struct task *t)
{
    if (t->rprev)
        t->rprev->rnext = t->rnext;
    else
        ag->running = t->rnext;
    if (t->rnext)
        t->rnext->rprev = t->rprev;
    t->rprev = t->rnext = NULL;
    ag->nrunning--;
}

static void start_task(struct agent *ag, struct task *t);

static void on_handler_done(task_run_t *run, handler_result_t *res)
{
    struct task *t = run->agent_data;
    struct agent *ag = t->ag;
    t->res = *res;
    agent_secrets_redact_result(t); /* before anything stores or logs it */
    bounds_checkpoint_flush(t); /* the last checkpoint is written before the outcome */
    bounds_outcome(t);
    if (res->ok) {
        t->final_state = "succeeded";
    } else if (res->retryable && t->attempt < t->max_attempts) {
        const struct spec_retry *p = t->spec->has_retry_policy ? &t->spec->retry : &ag->retry_defaults;
        /* the attempt's place in its budget (a replay starts a new budget) */
        long nth = t->attempt - (t->max_attempts - t->spec->retry.max_attempts);
        t->final_state = "retrying";
        t->retry_ms = (long long)(backoff_delay_s(p, nth, backoff_uniform()) * 1000.0);
    } else {
        t->final_state = "dead";
    }
    running_remove(ag, t);
    metric_add(res->ok ? m_done_ok : m_done_failed, 1);
    agent_obs_ran(t);
    if (ag->abandoning) { /* past shutdown grace: leave the task to be reclaimed */
        t->next = NULL;
        release(ag, t);
    } else {
        t->phase = PHASE_COMPLETING;
        t->next = ag->done_list;
        ag->done_list = t;
        flush_later(ag, 0);
    }
    while (ag->backlog && ag->nrunning < ag->concurrency) {
        struct task *b = ag->backlog;
        ag->backlog = b->next;
        if (!ag->backlog)
            ag->backlog_tail = &ag->backlog;
        start_task(ag, b);
    }
}

static void on_checkpoint(task_run_t *run, const char *json, size_t len)
{
    struct task *t = run->agent_data;
    size_t n;
    char *redacted = agent_secrets_redact(t, json, len, &n);
    bounds_checkpoint_offer(t->ag, t, redacted ? redacted : json, redacted ? n : len);
    free(redacted);
}

static void start_task(struct agent *ag, struct task *t)
{
    if (ag->nrunning >= ag->concurrency) {
        t->next = NULL;
        *ag->backlog_tail = t;
        ag->backlog_tail = &t->next;
        return;
    }
    t->phase = PHASE_RUNNING;
    t->run = (task_run_t){
        .base = ag->base,
        .spec = t->spec,
        .id = t->env.id,
        .attempt = t->attempt,
        .checkpoint = t->checkpoint,
        .agent_name = ag->name,
        .kill_grace_s = ag->kill_grace_s,
        .pg = ag->pg,
        .done = on_handler_done,
        .checkpoint_save = on_checkpoint,
        .agent_data = t,
    };
    gettimeofday(&t->started, NULL);
    agent_obs_started(t);
    t->rnext = ag->running;
    t->rprev = NULL;
    if (ag->running)
        ag->running->rprev = t;
    ag->running = t;
    ag->nrunning++;
    handler_result_t res = {0};
    if (agent_secrets_start(t, &res) < 0)
        on_handler_done(&t->run, &res);
}

/* ------------------------------------------------------ claim and outcomes */

static void retry_timer(evutil_socket_t fd, short what, void *arg);

static void schedule_retry(struct agent *ag)
{
    struct timeval tv = {0, RETRY_DELAY_MS * 1000};
    event_add(ag->ev_claim_retry, &tv);
}

static void agent_rejected(struct agent *ag, struct task *list, int ok);

static void agent_claimed(struct agent *ag, struct task *batch, int ok)
{
    if (!ok) { /* PostgreSQL unreachable: the entries stay ours, try again */
        while (batch) {
            struct task *t = batch;
            batch = t->next;
            t->next = ag->claim_retry;
            ag->claim_retry = t;
        }
        schedule_retry(ag);
        return;
    }
    struct task *done = NULL, *rejects = NULL;
    while (batch) {
        struct task *t = batch;
        batch = t->next;
        if (t->phase == PHASE_REJECTING) {
            t->next = rejects;
            rejects = t;
        } else if (t->after != AFTER_NONE) { /* duplicate, not claimable now, or poison */
            if (t->final_state && !strcmp(t->final_state, "succeeded"))
                metric_add(m_done_ok, 1); /* an instant kind, done by its claim */
            else if (t->after != AFTER_BURY)
                metric_add(m_duplicates, 1);
            else {
                struct log_ctx c = agent_obs_ctx(t);
                log_task(LOG_WARN, &c, "task %s is poison: %s", t->env.id, t->res.error);
            }
            t->next = done;
            done = t;
        } else {
            start_task(ag, t);
        }
    }
    if (rejects)
        agent_claim_reject(ag, rejects, agent_rejected);
    if (done)
        follow_up(ag, done);
}

static void agent_completed(struct agent *ag, struct task *list, int ok)
{
    if (!ok) { /* keep the outcomes and write them once PostgreSQL is back */
        while (list) {
            struct task *t = list;
            list = t->next;
            t->next = ag->done_list;
            ag->done_list = t;
        }
        flush_later(ag, RETRY_DELAY_MS);
        return;
    }
    follow_up(ag, list);
}

static void agent_rejected(struct agent *ag, struct task *list, int ok)
{
    if (!ok) {
        while (list) {
            struct task *t = list;
            list = t->next;
            t->next = ag->reject_retry;
            ag->reject_retry = t;
        }
        schedule_retry(ag);
        return;
    }
    for (struct task *t = list; t; t = t->next) {
        struct log_ctx c = agent_obs_ctx(t);
        log_task(LOG_WARN, &c, "queue %s entry %s rejected (task %s): %s", t->q->name, t->entry_id, t->env.id,
                 t->reject);
    }
    metric_add(m_rejected, list_count(list));
    follow_up(ag, list);
}

static void agent_cancelled(struct agent *ag, const char *task_id)
{
    for (struct task *t = ag->running; t; t = t->rnext) {
        if (strcmp(t->env.id, task_id) == 0) {
            log_info("task %s cancelled: stopping it", task_id);
            t->ops->cancel(&t->run);
            return;
        }
    }
}

/* The entries agent_read took from a stream: each holds a slot until its
 * outcome is settled; the claims and the rejects go to PostgreSQL as one
 * statement each. */
static void agent_delivered(struct agent *ag, struct task *list)
{
    struct task *claims = NULL, *rejects = NULL;
    while (list) {
        struct task *t = list;
        list = t->next;
        held_add(ag, t);
        struct task **l = t->phase == PHASE_REJECTING ? &rejects : &claims;
        t->next = *l;
        *l = t;
    }
    if (rejects)
        agent_claim_reject(ag, rejects, agent_rejected);
    if (claims)
        agent_claim_batch(ag, claims, agent_claimed);
}

static const struct agent_read_cbs read_cbs = {agent_delivered, agent_cancelled};

static void retry_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct agent *ag = arg;
    struct task *c = ag->claim_retry, *r = ag->reject_retry;
    ag->claim_retry = ag->reject_retry = NULL;
    if (c)
        agent_claim_batch(ag, c, agent_claimed);
    if (r)
        agent_claim_reject(ag, r, agent_rejected);
}

static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct agent *ag = arg;
    struct task *list = ag->done_list;
    ag->done_list = NULL;
    if (list)
        agent_claim_complete(ag, list, agent_completed);
}

static void flush_later(struct agent *ag, int delay_ms)
{
    if (evtimer_pending(ag->ev_flush, NULL) && delay_ms > 0)
        return;
    struct timeval tv = {delay_ms / 1000, (delay_ms % 1000) * 1000};
    evtimer_add(ag->ev_flush, &tv);
}

/* ---------------------------------------------------------------- shutdown */

static void stop_check(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct agent *ag = arg;
    struct timeval now;
    gettimeofday(&now, NULL);
    if (ag->slots_used == 0 && !pgc_pending(ag->pg)) {
        event_base_loopexit(ag->base, NULL);
        return;
    }
    if (!ag->abandoning && timercmp(&now, &ag->stop_at, >)) {
        log_warn("shutdown grace over: stopping %d running tasks; other agents will reclaim them",
                 ag->nrunning);
        ag->abandoning = 1;
        for (struct task *t = ag->running; t; t = t->rnext)
            t->ops->cancel(&t->run);
        /* tasks claimed but not started are left to the lease as well */
        release(ag, ag->backlog);
        ag->backlog = NULL;
        ag->backlog_tail = &ag->backlog;
        ag->stop_at.tv_sec = now.tv_sec + 5;
    } else if (ag->abandoning && timercmp(&now, &ag->stop_at, >)) {
        log_error("exiting with %d tasks unaccounted for", ag->slots_used);
        event_base_loopexit(ag->base, NULL);
    }
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct agent *ag = arg;
    if (ag->stopping++) {
        log_warn("second signal: exiting now");
        event_base_loopexit(ag->base, NULL);
        return;
    }
    log_info("signal %d: no longer reading; finishing %d tasks within %.0f s", (int)sig, ag->slots_used,
             ag->shutdown_grace_s);
    /* Closing the read connection ends the blocked XREADGROUP at once;
     * anything it had delivered stays pending for other agents. */
    rc_free(ag->rc_read);
    ag->rc_read = NULL;
    rc_free(ag->rc_ctl);
    ag->rc_ctl = NULL;
    gettimeofday(&ag->stop_at, NULL);
    ag->stop_at.tv_sec += (time_t)ag->shutdown_grace_s;
    struct timeval tv = {0, 50000};
    ag->ev_stop_check = event_new(ag->base, -1, EV_PERSIST, stop_check, ag);
    event_add(ag->ev_stop_check, &tv);
}

/* ----------------------------------------------------------------- metrics */

static metric_t *m_held, *m_running;

static void on_metrics(struct evhttp_request *r, void *arg)
{
    struct agent *ag = arg;
    metric_set(m_held, ag->slots_used);
    metric_set(m_running, ag->nrunning);
    char *text = metrics_render();
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, text, strlen(text));
    free(text);
    evhttp_add_header(evhttp_request_get_output_headers(r), "Content-Type", "text/plain; version=0.0.4");
    evhttp_send_reply(r, 200, "OK", b);
    evbuffer_free(b);
}

/* 200 "ready", or 503 with the reason while the agent cannot take work
 * (Redis or PostgreSQL not connected, a queue's consumer group not ready). */
static void on_readyz(struct evhttp_request *r, void *arg)
{
    char why[256];
    const char *reason = agent_read_not_ready(arg, why, sizeof why);
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "%s%s\n", reason ? "not ready: " : "ready", reason ? reason : "");
    evhttp_add_header(evhttp_request_get_output_headers(r), "Content-Type", "text/plain");
    evhttp_send_reply(r, reason ? 503 : 200, reason ? "Service Unavailable" : "OK", b);
    evbuffer_free(b);
}

/* Serves /metrics (any path) and /readyz on DEVSYS_METRICS_LISTEN (host:port; port 0: a
 * free one, logged) when it is set. */
static struct evhttp *metrics_listen(struct agent *ag)
{
    const char *listen = cfg_str("DEVSYS_METRICS_LISTEN", NULL);
    if (!listen)
        return NULL;
    char host[256];
    unsigned port;
    const char *colon = strrchr(listen, ':');
    if (!colon || (size_t)(colon - listen) >= sizeof host || sscanf(colon + 1, "%u", &port) != 1 || port > 65535) {
        fprintf(stderr, "DEVSYS_METRICS_LISTEN: expected host:port, got \"%s\"\n", listen);
        exit(2);
    }
    snprintf(host, sizeof host, "%.*s", (int)(colon - listen), listen);
    struct evhttp *http = evhttp_new(ag->base);
    evhttp_set_gencb(http, on_metrics, ag);
    evhttp_set_cb(http, "/readyz", on_readyz, ag);
    struct evhttp_bound_socket *sock = evhttp_bind_socket_with_handle(http, host, (ev_uint16_t)port);
    if (!sock) {
        fprintf(stderr, "DEVSYS_METRICS_LISTEN: cannot listen on %s\n", listen);
        exit(1);
    }
    char addr[80]; /* port 0 binds a free port: say which one */
    netaddr_local(evhttp_bound_socket_get_fd(sock), addr, sizeof addr);
    log_info("metrics listening on %s", addr);
    m_held = metric_gauge("devsys_agent_tasks_held", NULL, "Deliveries held (claimed, running, or being recorded)");
    m_running = metric_gauge("devsys_agent_tasks_running", NULL, "Handlers running");
    return http;
}

/* -------------------------------------------------------------------- main */

static void parse_queues(struct agent *ag, const char *list)
{
    char *copy = xstrdup(list), *save = NULL;
    ag->queues = xcalloc(64, sizeof *ag->queues);
    for (char *tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        if (!spec_queue_name_ok(tok)) {
            fprintf(stderr, "DEVSYS_QUEUES: \"%s\" is not a valid queue name\n", tok);
            exit(2);
        }
        if (ag->nqueues == 64) {
            fprintf(stderr, "DEVSYS_QUEUES: at most 64 queues\n");
            exit(2);
        }
        struct queue_state *q = &ag->queues[ag->nqueues++];
        q->name = xstrdup(tok);
        q->agent = ag;
        for (int lv = 0; lv < QUEUE_LEVELS; lv++) {
            snprintf(q->autoclaim_cursor[lv], sizeof q->autoclaim_cursor[lv], "0-0");
            snprintf(q->pel_cursor[lv], sizeof q->pel_cursor[lv], "0-0");
            queue_stream_key(q->stream_key[lv], sizeof q->stream_key[lv], ag->prefix, q->name,
                             (enum queue_level)lv);
        }
    }
    free(copy);
    if (!ag->nqueues) {
        fprintf(stderr, "DEVSYS_QUEUES: no queue named\n");
        exit(2);
    }
}

int main(int argc, char **argv)
{
    int i = cfg_flags(argc, argv, flags, usage);
    if (i < argc) {
        fprintf(stderr, "devsys-agent: unexpected argument \"%s\"\n%s\n", argv[i], usage);
        return 2;
    }
    struct agent agent = {0}, *ag = &agent;
    char host[128] = "agent";
    gethostname(host, sizeof host - 1);
    char defname[192];
    snprintf(defname, sizeof defname, "%s-%d", host, (int)getpid());
    ag->name = xstrdup(cfg_str("DEVSYS_AGENT_NAME", defname));
    ag->prefix = xstrdup(cfg_str("DEVSYS_PREFIX", "devsys"));
    ag->concurrency = (int)cfg_long("DEVSYS_CONCURRENCY", 16, 1, 100000);
    ag->lease_s = (int)cfg_long("DEVSYS_LEASE_S", 15, 2, 86400);
    ag->kill_grace_s = cfg_double("DEVSYS_KILL_GRACE_S", 5, 0, 3600);
    ag->shutdown_grace_s = cfg_double("DEVSYS_SHUTDOWN_GRACE_S", 30, 0, 86400);
    ag->claim_period_s = (int)cfg_long("DEVSYS_CLAIM_PERIOD_S", 2, 1, 3600);
    ag->retry_defaults = (struct spec_retry){
        .max_attempts = SPEC_DEFAULT_MAX_ATTEMPTS,
        .initial_s = cfg_double("DEVSYS_RETRY_INITIAL_S", SPEC_DEFAULT_INITIAL_S, 0, 86400),
        .factor = cfg_double("DEVSYS_RETRY_FACTOR", SPEC_DEFAULT_FACTOR, 1, 100),
        .max_s = cfg_double("DEVSYS_RETRY_MAX_S", SPEC_DEFAULT_MAX_S, 0, 604800),
        .jitter = (int)cfg_long("DEVSYS_RETRY_JITTER", SPEC_DEFAULT_JITTER, 0, 1),
    };
    snprintf(ag->ctl_last, sizeof ag->ctl_last, "$");
    parse_queues(ag, cfg_str("DEVSYS_QUEUES", "exec,coding,noop,sleep,testing"));
    char kinds_err[256], kinds[64];
    if (agent_read_kinds_init(ag, cfg_str("DEVSYS_KINDS", NULL), kinds_err, sizeof kinds_err) < 0) {
        fprintf(stderr, "%s\n", kinds_err);
        exit(2); /* as parse_queues does: the queues stay reachable for leak checkers */
    }
    log_init("agent", ag->name);
    ag->backlog_tail = &ag->backlog;
    char kerr[256];
    if (secretbox_from_env(&ag->secrets, kerr, sizeof kerr) != 0) {
        fprintf(stderr, "%s\n", kerr);
        exit(2);
    }

    signal(SIGPIPE, SIG_IGN);
    version_metric_register();
    ag->base = event_base_new();
    const char *redis_url = cfg_secret("DEVSYS_REDIS_URL", "redis://127.0.0.1:6379/0");
    ag->rc = rc_new(ag->base, redis_url, "redis");
    ag->rc_read = rc_new(ag->base, redis_url, "redis-read");
    ag->rc_ctl = rc_new(ag->base, redis_url, "redis-control");
    /* Every agent statement reaches tasks by primary key for an array of
     * keys: an index lookup is always right. Left to costs, a cached generic
     * plan (made while the table was small) once turned one agent's claim
     * into a scan of the whole table: 20 ms instead of 0.2 ms at 150k rows,
     * and a light-load p90 of 3 s. Joins between the statement's own CTEs
     * still use hashes, so only the sequential scan is ruled out. */
    ag->pg = pgc_new_opts(ag->base, cfg_secret("DEVSYS_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/devsys"),
                          "devsys-agent", "-c enable_seqscan=off");
    if (!ag->rc || !ag->rc_read || !ag->rc_ctl || !ag->pg) {
        fprintf(stderr, "devsys-agent: bad DEVSYS_REDIS_URL or DEVSYS_DATABASE_URL\n");
        return 2;
    }
    m_done_ok = metric_counter("devsys_tasks_done_total", "outcome=\"succeeded\"", "Attempts finished");
    m_done_failed = metric_counter("devsys_tasks_done_total", "outcome=\"failed\"", "Attempts finished");
    m_rejected = metric_counter("devsys_entries_rejected_total", NULL, "Stream entries that could not run");
    m_duplicates = metric_counter("devsys_entries_duplicate_total", NULL, "Deliveries of tasks not claimable");
    exec_handler_init(ag->base);
    agent_claim_lease_release_previous(ag);
    struct evhttp *metrics_http = metrics_listen(ag);
    ag->ev_flush = evtimer_new(ag->base, flush_cb, ag);
    ag->ev_claim_retry = evtimer_new(ag->base, retry_timer, ag);
    agent_read_start(ag, &read_cbs);
    ag->ev_sigterm = evsignal_new(ag->base, SIGTERM, on_signal, ag);
    ag->ev_sigint = evsignal_new(ag->base, SIGINT, on_signal, ag);
    event_add(ag->ev_sigterm, NULL);
    event_add(ag->ev_sigint, NULL);
    log_info("agent %s consuming %d queue(s) with concurrency %d, running kinds %s", ag->name, ag->nqueues,
             ag->concurrency, agent_read_kinds_text(ag, kinds, sizeof kinds));

    event_base_dispatch(ag->base);

    /* teardown: whatever is still held stays pending in Redis for others */
    ag->abandoning = 1;
    for (struct task *t = ag->running; t; t = t->rnext)
        t->ops->cancel(&t->run);
    testing_handler_shutdown(); /* runs still parsing reports end now, while held */
    monitor_handler_shutdown();
    agent_secrets_shutdown();
    while (ag->held) { /* still pending in Redis: other agents reclaim them */
        struct task *t = ag->held;
        held_remove(ag, t); /* NOLINT(clang-analyzer-unix.Malloc): it moved ag->held on from t */
        task_free(t);
    }
    ag->claim_wait = NULL; /* those were held: freed above */
    agent_limits_stop(ag);
    exec_handler_shutdown();
    notify_handler_shutdown();
    /* No timer of ours may fire once the clients are gone (the last
     * non-blocking loop below runs whatever is due: a trim would use rc). */
    struct event *evs[] = {ag->ev_read_retry, ag->ev_flush, ag->ev_claim_retry, ag->ev_trim,
                           ag->ev_lease, ag->ev_sigterm, ag->ev_sigint, ag->ev_stop_check,
                           ag->ev_promote, ag->ev_autoclaim, ag->ev_groups_retry};
    for (size_t k = 0; k < sizeof evs / sizeof *evs; k++)
        if (evs[k])
            event_del(evs[k]);
    pgc_free(ag->pg);
    rc_free(ag->rc);
    if (ag->rc_read)
        rc_free(ag->rc_read);
    if (ag->rc_ctl)
        rc_free(ag->rc_ctl);
    if (metrics_http)
        evhttp_free(metrics_http);
    event_base_loop(ag->base, EVLOOP_NONBLOCK);
    for (size_t k = 0; k < sizeof evs / sizeof *evs; k++)
        if (evs[k])
            event_free(evs[k]);
    event_base_free(ag->base);
    for (int q = 0; q < ag->nqueues; q++)
        free(ag->queues[q].name);
    free(ag->queues);
    free(ag->name);
    free(ag->prefix);
    secretbox_free(ag->secrets);
    metrics_free();
    log_info("agent stopped");
    return 0;
}
