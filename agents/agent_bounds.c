/* agent_bounds: what a task writes is bounded whatever its handler does. A
 * checkpoint is at most CHECKPOINT_MAX bytes; checkpoints are coalesced (only
 * the latest waits, at most one write per task per DEVSYS_CHECKPOINT_INTERVAL_S,
 * the last one always before the outcome) and the newest DEVSYS_CHECKPOINT_KEEP
 * rows per task are kept; output keeps its last OUTPUT_TAIL_MAX bytes; a
 * result over RESULT_MAX is replaced by a note saying so. */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "agent_bounds.h"

#include "agent_internal.h"
#include "agent_claim.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "xalloc.h"

static double cp_interval_s = -1;
static int cp_keep;
static metric_t *m_cp_refused, *m_cp_coalesced;

static void bounds_config(void)
{
    if (cp_interval_s >= 0)
        return;
    cp_interval_s = cfg_double("DEVSYS_CHECKPOINT_INTERVAL_S", 0.5, 0, 3600);
    cp_keep = (int)cfg_long("DEVSYS_CHECKPOINT_KEEP", 100, 1, 100000);
    m_cp_refused = metric_counter("devsys_checkpoints_refused_total", NULL,
                                  "Checkpoints refused for their size");
    m_cp_coalesced = metric_counter("devsys_checkpoints_coalesced_total", NULL,
                                    "Checkpoints replaced by a newer one before they were written");
}

static double tv_s(const struct timeval *tv)
{
    return (double)tv->tv_sec + (double)tv->tv_usec / 1e6;
}

static void send_pending(struct task *t)
{
    agent_claim_checkpoint_write(t->ag, t, t->cp_pending, t->cp_pending_len, cp_keep);
    free(t->cp_pending);
    t->cp_pending = NULL;
    gettimeofday(&t->cp_written, NULL);
}

static void on_cp_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct task *t = arg;
    if (t->cp_pending)
        send_pending(t);
}

void bounds_checkpoint_offer(struct agent *ag, struct task *t, const char *json, size_t len)
{
    bounds_config();
    if (len > CHECKPOINT_MAX) {
        log_warn("task %s: checkpoint of %zu bytes refused (limit %d)", t->env.id, len, CHECKPOINT_MAX);
        metric_add(m_cp_refused, 1);
        return;
    }
    if (t->cp_pending)
        metric_add(m_cp_coalesced, 1);
    free(t->cp_pending);
    t->cp_pending = xstrndup(json, len);
    t->cp_pending_len = len;
    struct timeval now;
    gettimeofday(&now, NULL);
    double wait = tv_s(&t->cp_written) + cp_interval_s - tv_s(&now);
    if (wait <= 0 || !t->cp_written.tv_sec) {
        if (t->cp_timer)
            event_del(t->cp_timer);
        send_pending(t);
        return;
    }
    if (!t->cp_timer)
        t->cp_timer = evtimer_new(ag->base, on_cp_timer, t);
    if (!evtimer_pending(t->cp_timer, NULL)) {
        struct timeval tv = {(time_t)wait, (suseconds_t)((wait - (double)(time_t)wait) * 1e6)};
        evtimer_add(t->cp_timer, &tv);
    }
}

void bounds_checkpoint_flush(struct task *t)
{
    if (t->cp_timer)
        event_del(t->cp_timer);
    if (t->cp_pending)
        send_pending(t);
}

void bounds_checkpoint_forget(struct task *t)
{
    if (t->cp_timer)
        event_free(t->cp_timer);
    t->cp_timer = NULL;
    free(t->cp_pending);
    t->cp_pending = NULL;
}

void bounds_outcome(struct task *t)
{
    handler_result_t *res = &t->res;
    if (res->output && res->output_len > OUTPUT_TAIL_MAX) {
        memmove(res->output, res->output + res->output_len - OUTPUT_TAIL_MAX, OUTPUT_TAIL_MAX);
        res->output_len = OUTPUT_TAIL_MAX;
        res->output[OUTPUT_TAIL_MAX] = '\0';
    }
    if (!res->result)
        return;
    char *text = json_dumps(res->result, JSON_COMPACT);
    size_t len = text ? strlen(text) : 0;
    free(text);
    if (len <= RESULT_MAX)
        return;
    log_warn("task %s: result of %zu bytes dropped (limit %d)", t->env.id, len, RESULT_MAX);
    json_decref(res->result);
    res->result = json_pack("{s:s,s:I}", "dropped", "the result was over the size limit", "bytes",
                            (json_int_t)len);
}
