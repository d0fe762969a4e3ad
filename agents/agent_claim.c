/* agent_claim: the agent's side of the task state machine (the statements
 * are common/taskdb.c's): batches across tasks, because PostgreSQL CPU per
 * task is the system's bottleneck, and what each answer means for the stream
 * entry. A batch that PostgreSQL rejects as a whole is split into single
 * tasks, so one bad row never blocks a queue. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_claim.h"

#include "agent_internal.h"
#include "kind.h"
#include "log.h"
#include "pipelinedb.h"
#include "taskdb.h"
#include "utf8.h"
#include "xalloc.h"

struct batch_op {
    struct agent *ag;
    struct task *list;
    agent_claim_done_fn *done; /* the caller's: where the answer goes */
    int split;                 /* already a single task after a failed batch */
};

static struct batch_op *op_new(struct agent *ag, struct task *list, agent_claim_done_fn *done)
{
    struct batch_op *op = xcalloc(1, sizeof *op);
    op->ag = ag;
    op->list = list;
    op->done = done;
    return op;
}

static int list_len(const struct task *t)
{
    int n = 0;
    for (; t; t = t->next)
        n++;
    return n;
}

static long long tv_us(const struct timeval *tv)
{
    return (long long)tv->tv_sec * 1000000 + tv->tv_usec;
}

/* Task id -> task for one batch (open addressing, at most half full), so
 * matching a statement's rows to its tasks stays linear in the batch size. */
struct idmap {
    struct task **slot;
    size_t mask;
};

static void idmap_init(struct idmap *m, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    m->slot = xcalloc(cap, sizeof *m->slot);
    m->mask = cap - 1;
}

static size_t idmap_hash(const char *id)
{
    size_t h = 14695981039346656037ULL; /* FNV-1a */
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 1099511628211ULL;
    return h;
}

static struct task *idmap_get(const struct idmap *m, const char *id)
{
    for (size_t i = idmap_hash(id) & m->mask; m->slot[i]; i = (i + 1) & m->mask)
        if (strcmp(m->slot[i]->env.id, id) == 0)
            return m->slot[i];
    return NULL;
}

/* Adds t unless a task with its id is there already; returns that one, or NULL. */
static struct task *idmap_put(struct idmap *m, struct task *t)
{
    size_t i = idmap_hash(t->env.id) & m->mask;
    for (; m->slot[i]; i = (i + 1) & m->mask)
        if (strcmp(m->slot[i]->env.id, t->env.id) == 0)
            return m->slot[i];
    m->slot[i] = t;
    return NULL;
}

/* A map of list; with duplicate ids the first task wins. */
static void idmap_of_list(struct idmap *m, struct task *list)
{
    idmap_init(m, (size_t)list_len(list));
    for (struct task *t = list; t; t = t->next)
        idmap_put(m, t);
}

/* Is the error about the data of a row (SQLSTATE class 22 data exception or
 * 23 integrity violation)? Only then is one task to blame; anything else
 * (an outage, a server restarting, a bug of ours) is retried later rather
 * than turning good tasks into dead ones. */
static int error_is_data(const PGresult *res)
{
    const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return st && (strncmp(st, "22", 2) == 0 || strncmp(st, "23", 2) == 0);
}

/* Runs fn on every task of list as a batch of one, after PostgreSQL refused
 * the whole batch with an error that is about the data, not the connection. */
static void split_batch(struct agent *ag, struct task *list, agent_claim_done_fn *done,
                        void (*fn)(struct agent *, struct task *, agent_claim_done_fn *))
{
    while (list) {
        struct task *t = list;
        list = t->next;
        t->next = NULL;
        fn(ag, t, done);
    }
}

/* ------------------------------------------------------------- pipelines */

/* Tasks of pipelines whose final outcome this agent just recorded: that
 * transaction may have created later steps' tasks (migrations/006), which
 * we publish at once (the reconciler does it if we die first). */
struct pl_due {
    const char **ids;
    size_t n;
};

static void pl_due_init(struct pl_due *d, struct task *list)
{
    d->ids = xcalloc((size_t)list_len(list), sizeof *d->ids);
    d->n = 0;
}

static void pl_due_add(struct pl_due *d, const struct task *t)
{
    const char *id = t->spec && t->spec->pipeline ? json_string_value(json_object_get(t->spec->pipeline, "id")) : NULL;
    if (!id)
        return;
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->ids[i], id) == 0)
            return;
    d->ids[d->n++] = id;
}

/* Publishes and frees d; before the tasks (whose specs hold the ids) go. */
static void pl_due_publish(struct agent *ag, struct pl_due *d)
{
    if (d->n)
        pipelinedb_publish(ag->pg, ag->rc, ag->prefix, d->ids, d->n, NULL, NULL);
    free(d->ids);
}

/* ------------------------------------------------------------------- claim */

/* An instant kind (a plain noop) has nothing to run, so its claim records its
 * success; asked to fail (its "sleep" section), it runs like any other. */
static int is_instant(const struct task *t)
{
    return t->spec && (t->spec->kind_def->flags & KIND_INSTANT) && !t->spec->fail_first &&
           !t->spec->fail_always;
}

static void claim_one_kind(struct agent *ag, struct task *list, int hand_pushed, int instant,
                           agent_claim_done_fn *done);

/* What to do with an entry whose task was not claimed, from the task's state. */
static enum task_after unclaimed_after(const char *was)
{
    if (!strcmp(was, "running") || !strcmp(was, "retrying") || !strcmp(was, "queued"))
        return AFTER_LEAVE; /* alive elsewhere, or its retry is not due: keep it pending */
    return AFTER_ACK;       /* final: this delivery is a duplicate */
}

static void claim_answered(pgc_t *pg, PGresult *res, const char *err, struct batch_op *op);

/* A claim statement was answered: handle it, then send the claims that
 * waited meanwhile (agent_claim_batch) as one batch. */
static void claim_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    struct batch_op *op = arg;
    struct agent *ag = op->ag;
    agent_claim_done_fn *done = op->done;
    ag->claims_in_flight--;
    claim_answered(pg, res, err, op);
    if (ag->claim_wait && ag->claims_in_flight < AGENT_CLAIMS_IN_FLIGHT && !ag->abandoning) {
        struct task *w = ag->claim_wait;
        ag->claim_wait = NULL;
        agent_claim_batch(ag, w, done);
    }
}

static void claim_answered(pgc_t *pg, PGresult *res, const char *err, struct batch_op *op)
{
    (void)pg;
    struct agent *ag = op->ag;
    struct task *list = op->list;
    agent_claim_done_fn *done = op->done;
    int hand = list->env.hand_pushed, instant = is_instant(list);
    free(op);
    if (!res) { /* connection lost: nothing was claimed for sure; try again later */
        done(ag, list, 0);
        return;
    }
    if (err[0]) {
        if (list->next) {
            log_warn("claim of %d tasks refused (%s); claiming them one by one", list_len(list), err);
            while (list) {
                struct task *t = list;
                list = t->next;
                t->next = NULL;
                claim_one_kind(ag, t, hand, instant, done);
            }
            return;
        }
        if (!error_is_data(res)) {
            log_error("claim of task %s failed (%s); trying again", list->env.id, err);
            done(ag, list, 0);
            return;
        }
        snprintf(list->reject, sizeof list->reject, "the database refused the task: %s", err);
        list->phase = PHASE_REJECTING;
        done(ag, list, 1);
        return;
    }
    for (struct task *t = list; t; t = t->next)
        t->after = AFTER_ACK;
    struct idmap map;
    idmap_of_list(&map, list);
    struct pl_due due;
    pl_due_init(&due, list);
    int c_id = taskdb_col(res, "id"), c_state = taskdb_col(res, "state"), c_was = taskdb_col(res, "was"),
        c_attempt = taskdb_col(res, "attempt"), c_max = taskdb_col(res, "max_attempts"),
        c_error = taskdb_col(res, "last_error"), c_checkpoint = taskdb_col(res, "checkpoint");
    for (int i = 0; i < PQntuples(res); i++) {
        struct task *t = idmap_get(&map, PQgetvalue(res, i, c_id));
        if (!t)
            continue;
        if (PQgetisnull(res, i, c_state)) { /* not claimed */
            if (PQgetisnull(res, i, c_was)) { /* no row at all: the manager never recorded it */
                snprintf(t->reject, sizeof t->reject, "unknown task %s: no row in PostgreSQL", t->env.id);
                t->phase = PHASE_REJECTING;
            } else {
                t->after = unclaimed_after(PQgetvalue(res, i, c_was));
            }
            continue;
        }
        const char *state = PQgetvalue(res, i, c_state);
        t->attempt = strtol(PQgetvalue(res, i, c_attempt), NULL, 10);
        t->max_attempts = strtol(PQgetvalue(res, i, c_max), NULL, 10);
        if (strcmp(state, "succeeded") == 0) { /* an instant kind, done */
            t->final_state = "succeeded";
            t->after = AFTER_ACK;
            pl_due_add(&due, t);
            continue;
        }
        if (strcmp(state, "dead") == 0) { /* poison */
            pl_due_add(&due, t);
            t->final_state = "dead";
            t->after = AFTER_BURY;
            t->res.error = xstrdup(PQgetvalue(res, i, c_error));
            continue;
        }
        t->after = AFTER_NONE;
        if (!PQgetisnull(res, i, c_checkpoint))
            t->checkpoint = xstrdup(PQgetvalue(res, i, c_checkpoint));
    }
    free(map.slot);
    pl_due_publish(ag, &due);
    done(ag, list, 1);
}

/* Entries pushed by hand have no row yet: the claim inserts it. */
static void claim_one_kind(struct agent *ag, struct task *list, int hand_pushed, int instant,
                           agent_claim_done_fn *done)
{
    taskdb_rows_t *rows = taskdb_rows_new();
    for (struct task *t = list; t; t = t->next) {
        if (hand_pushed)
            taskdb_claim_add_new(rows, t->env.id, t->q->name, t->spec->kind, t->spec_text,
                                 t->spec->retry.max_attempts, t->spec->priority, t->entry_ms, t->entry_id);
        else
            taskdb_claim_add(rows, t->env.id);
    }
    ag->claims_in_flight++;
    taskdb_claim(ag->pg, rows, ag->name, ag->lease_s, instant, claim_done, op_new(ag, list, done));
}

void agent_claim_batch(struct agent *ag, struct task *batch, agent_claim_done_fn *done)
{
    if (ag->claims_in_flight >= AGENT_CLAIMS_IN_FLIGHT) {
        /* answered soon: then these go with whatever else arrived */
        while (batch) {
            struct task *t = batch;
            batch = t->next;
            t->next = ag->claim_wait;
            ag->claim_wait = t;
        }
        return;
    }
    /* One statement per kind of claim: [hand_pushed][instant]. */
    struct task *parts[2][2] = {{NULL, NULL}, {NULL, NULL}};
    struct idmap seen;
    idmap_init(&seen, (size_t)list_len(batch));
    while (batch) {
        struct task *t = batch;
        batch = t->next;
        struct task **l = &parts[t->env.hand_pushed ? 1 : 0][is_instant(t)];
        /* the same task twice in one batch: keep one, leave the other pending */
        if (idmap_put(&seen, t)) {
            t->next = NULL;
            t->after = AFTER_LEAVE;
            done(ag, t, 1);
            continue;
        }
        t->next = *l;
        *l = t;
    }
    free(seen.slot);
    for (int h = 0; h < 2; h++)
        for (int k = 0; k < 2; k++)
            if (parts[h][k])
                claim_one_kind(ag, parts[h][k], h, k, done);
}

/* ---------------------------------------------------------------- complete */

static void log_error_result(pgc_t *pg, PGresult *res, const char *err, void *arg);

/* The attempt a cancel stopped still gets its row. */
static void cancelled_attempt_write(struct agent *ag, struct task *t)
{
    taskdb_attempt_cancelled(ag->pg, t->env.id, t->attempt, ag->name, tv_us(&t->started),
                             t->res.error ? t->res.error : "cancelled", log_error_result,
                             "recording a cancelled attempt failed");
}

static void complete_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct batch_op *op = arg;
    struct agent *ag = op->ag;
    struct task *list = op->list;
    agent_claim_done_fn *done = op->done;
    int split = op->split;
    free(op);
    if (!res) {
        done(ag, list, 0);
        return;
    }
    if (err[0]) {
        if (list->next) {
            log_warn("outcome batch of %d refused (%s); writing them one by one", list_len(list), err);
            split_batch(ag, list, done, agent_claim_complete);
            return;
        }
        if (!error_is_data(res)) {
            log_error("outcome of task %s not written (%s); trying again", list->env.id, err);
            done(ag, list, 0);
            return;
        }
        if (!split && (list->res.output || list->res.result || list->res.report_xml || list->res.report_history)) {
            /* the output or result is what PostgreSQL refused: keep the outcome, drop them */
            log_warn("outcome of task %s refused (%s); recording it without output", list->env.id, err);
            free(list->res.output);
            list->res.output = NULL;
            json_decref(list->res.result);
            list->res.result = NULL;
            free(list->res.report_xml);
            list->res.report_xml = NULL;
            json_decref(list->res.report_history);
            list->res.report_history = NULL;
            agent_claim_complete(ag, list, done);
            return;
        }
        log_error("outcome of task %s could not be recorded: %s", list->env.id, err);
        list->after = AFTER_NONE;
        done(ag, list, 1);
        return;
    }
    for (struct task *t = list; t; t = t->next)
        t->after = AFTER_NONE;
    struct idmap map;
    idmap_of_list(&map, list);
    struct pl_due due;
    pl_due_init(&due, list);
    int c_id = taskdb_col(res, "id"), c_recorded = taskdb_col(res, "recorded"),
        c_now = taskdb_col(res, "state_attempt");
    for (int i = 0; i < PQntuples(res); i++) {
        struct task *t = idmap_get(&map, PQgetvalue(res, i, c_id));
        if (!t)
            continue;
        char now[16] = "";
        long now_attempt = -1;
        sscanf(PQgetvalue(res, i, c_now), "%15s %ld", now, &now_attempt);
        int recorded = PQgetvalue(res, i, c_recorded)[0] == 't' ||
                       /* our own commit whose answer was lost with the connection */
                       (now_attempt == t->attempt && strcmp(now, t->final_state) == 0);
        if (recorded) {
            if (strcmp(t->final_state, "retrying") != 0)
                pl_due_add(&due, t);
            t->after = !strcmp(t->final_state, "retrying") ? AFTER_RETRY
                     : !strcmp(t->final_state, "dead")     ? AFTER_BURY
                                                           : AFTER_ACK;
        } else if (!strcmp(now, "cancelled")) {
            t->after = AFTER_ACK;
            if (now_attempt == t->attempt)
                cancelled_attempt_write(ag, t);
        } else {
            log_warn("task %s attempt %ld: outcome not recorded, the task is now %s (attempt %ld) "
                     "under another agent",
                     t->env.id, t->attempt, now, now_attempt);
        }
    }
    free(map.slot);
    pl_due_publish(ag, &due);
    done(ag, list, 1);
}

void agent_claim_complete(struct agent *ag, struct task *list, agent_claim_done_fn *done)
{
    taskdb_rows_t *rows = taskdb_rows_new();
    for (struct task *t = list; t; t = t->next) {
        char *result = t->res.result ? json_dumps(t->res.result, JSON_COMPACT) : NULL;
        char *output = t->res.output ? utf8_sanitize(t->res.output, t->res.output_len) : NULL;
        taskdb_outcome_add(rows, t->env.id, t->attempt, t->final_state, t->res.error, result, output,
                           tv_us(&t->started), t->retry_ms);
        if (t->res.report_summary) {
            char *summary = json_dumps(t->res.report_summary, JSON_COMPACT);
            char *history = t->res.report_history ? json_dumps(t->res.report_history, JSON_COMPACT) : NULL;
            taskdb_outcome_report(rows, t->env.id, t->attempt, t->res.report_xml, summary, history);
            free(summary);
            free(history);
        }
        free(result);
        free(output);
    }
    struct batch_op *op = op_new(ag, list, done);
    op->split = list->next == NULL; /* NOLINT(clang-analyzer-core.NullDereference): list is never empty */
    taskdb_complete(ag->pg, rows, ag->name, complete_done, op);
}

/* ------------------------------------------------------------------ reject */

static void reject_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct batch_op *op = arg;
    struct agent *ag = op->ag;
    struct task *list = op->list;
    agent_claim_done_fn *done = op->done;
    free(op);
    if (!res) {
        done(ag, list, 0);
        return;
    }
    if (err[0] && list->next) {
        split_batch(ag, list, done, agent_claim_reject);
        return;
    }
    if (err[0] && list->spec_text && !strstr(list->spec_text, "unreadable_spec")) {
        /* the spec text itself was refused (e.g. \u0000 in jsonb): keep a preview */
        log_warn("rejected entry %s: spec refused by the database (%s)", list->entry_id, err);
        char *preview = utf8_preview(list->spec_text, strlen(list->spec_text), 1024);
        json_t *j = json_pack("{s:s}", "unreadable_spec", preview);
        free(preview);
        free(list->spec_text);
        list->spec_text = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        agent_claim_reject(ag, list, done);
        return;
    }
    for (struct task *t = list; t; t = t->next)
        t->after = err[0] ? AFTER_BURY : AFTER_ACK; /* unrecordable: the DLQ still tells */
    if (err[0])
        log_error("entry %s of queue %s could not be recorded in PostgreSQL (%s): %s", list->entry_id,
                  list->q->name, err, list->reject);
    int c_id = err[0] ? -1 : taskdb_col(res, "id");
    struct pl_due due;
    pl_due_init(&due, list);
    for (int i = 0; !err[0] && i < PQntuples(res); i++)
        for (struct task *t = list; t; t = t->next)
            if (strcmp(t->env.id, PQgetvalue(res, i, c_id)) == 0) {
                t->after = AFTER_BURY;
                pl_due_add(&due, t);
            }
    pl_due_publish(ag, &due);
    done(ag, list, 1);
}

/* An entry that cannot run becomes a dead task (and a dead letter). */
void agent_claim_reject(struct agent *ag, struct task *list, agent_claim_done_fn *done)
{
    taskdb_rows_t *rows = taskdb_rows_new();
    for (struct task *t = list; t; t = t->next)
        taskdb_reject_add(rows, t->env.id, t->q->name, t->env.kind[0] ? t->env.kind : "unknown",
                          t->spec_text ? t->spec_text : "{}", t->reject, t->entry_ms, t->entry_id);
    taskdb_reject(ag->pg, rows, reject_done, op_new(ag, list, done));
}

/* ------------------------------------------------------- lease, checkpoint */

static void log_error_result(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    (void)res;
    if (err[0])
        log_warn("%s: %s", (const char *)arg, err);
}

struct lease_op {
    struct agent *ag;
    agent_claim_cancel_fn *cancelled;
};

static void lease_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct lease_op op = *(struct lease_op *)arg;
    free(arg);
    if (err[0]) {
        log_warn("lease renewal failed: %s", err);
        return;
    }
    int c_id = res ? taskdb_col(res, "id") : -1;
    for (int i = 0; res && i < PQntuples(res); i++)
        op.cancelled(op.ag, PQgetvalue(res, i, c_id));
}

void agent_claim_lease_renew(struct agent *ag, agent_claim_cancel_fn *cancelled)
{
    taskdb_rows_t *rows = taskdb_rows_new();
    for (struct task *t = ag->held; t; t = t->hnext)
        if (t->attempt > 0 && (t->phase == PHASE_RUNNING || t->phase == PHASE_COMPLETING))
            taskdb_lease_add(rows, t->env.id, t->attempt);
    if (taskdb_rows_count(rows)) {
        struct lease_op *op = xmalloc(sizeof *op);
        *op = (struct lease_op){ag, cancelled};
        taskdb_lease_renew(ag->pg, rows, ag->name, ag->lease_s, lease_done, op);
    } else
        taskdb_rows_free(rows);
}

void agent_claim_lease_release_previous(struct agent *ag)
{
    taskdb_lease_release(ag->pg, ag->name, log_error_result, "releasing the previous incarnation's leases failed");
}

void agent_claim_dlq_entry_write(struct agent *ag, const char *task_id, const char *dlq_entry)
{
    taskdb_rows_t *rows = taskdb_rows_new();
    taskdb_dlq_entry_add(rows, task_id, dlq_entry);
    taskdb_dlq_entries(ag->pg, rows, 0, log_error_result, "recording the DLQ entry failed");
}

void agent_claim_checkpoint_write(struct agent *ag, struct task *t, const char *json, size_t len, int keep)
{
    char *data = utf8_sanitize(json, len);
    taskdb_checkpoint(ag->pg, t->env.id, t->attempt, ag->name, data, keep, log_error_result,
                      "checkpoint write failed");
    free(data);
}
