/* agent_claim: the agent's PostgreSQL statements, each batched across tasks
 * (one statement per batch, arrays expanded with unnest) because PostgreSQL
 * CPU per task is the system's bottleneck. A batch that PostgreSQL rejects as
 * a whole is split into single tasks, so one bad row never blocks a queue. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "log.h"
#include "pgarr.h"
#include "utf8.h"
#include "xalloc.h"

struct batch_op {
    struct agent *ag;
    struct task *list;
    int split; /* already a single task after a failed batch */
};

static struct batch_op *op_new(struct agent *ag, struct task *list)
{
    struct batch_op *op = xcalloc(1, sizeof *op);
    op->ag = ag;
    op->list = list;
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

static struct task *find_by_id(struct task *list, const char *id)
{
    for (struct task *t = list; t; t = t->next)
        if (t->attempt == 0 && strcmp(t->env.id, id) == 0)
            return t;
    return NULL;
}

/* Runs fn on every task of list as a batch of one, after PostgreSQL refused
 * the whole batch with an error that is about the data, not the connection. */
static void split_batch(struct agent *ag, struct task *list, void (*fn)(struct agent *, struct task *))
{
    while (list) {
        struct task *t = list;
        list = t->next;
        t->next = NULL;
        fn(ag, t);
    }
}

/* ------------------------------------------------------------------- claim */

/* The conditional UPDATE is the de-duplication of execution: a row changes
 * only for a task that is queued, retrying, or running on an expired lease. */
#define CLAIMABLE "(t.state IN ('queued', 'retrying') OR (t.state = 'running' AND t.lease_expires_at < now()))"

static const char claim_update_sql[] =
    "UPDATE tasks t SET state = 'running', attempt = t.attempt + 1, lease_owner = $2,"
    " lease_expires_at = now() + $3::int * interval '1 second', started_at = now(),"
    " next_attempt_at = NULL"
    " FROM unnest($1::uuid[]) AS i(id)"
    " WHERE t.id = i.id AND " CLAIMABLE " RETURNING t.id, t.attempt, t.checkpoint::text";

/* Entries pushed by hand have no row yet: insert it already claimed, or claim
 * the existing one (a redelivery of the same entry is the same task). */
static const char claim_upsert_sql[] =
    "INSERT INTO tasks AS t (id, queue, kind, spec, max_attempts, priority, created_at, source,"
    " state, attempt, lease_owner, lease_expires_at, started_at)"
    " SELECT i.id, i.queue, i.kind, i.spec, i.max_attempts, i.priority,"
    "  'epoch'::timestamptz + i.ms * interval '1 millisecond', i.source, 'running', 1, $9,"
    "  now() + $10::int * interval '1 second', now()"
    " FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::int[], $6::int[], $7::bigint[],"
    "  $8::text[]) AS i(id, queue, kind, spec, max_attempts, priority, ms, source)"
    " ON CONFLICT (id) DO UPDATE SET state = 'running', attempt = t.attempt + 1,"
    "  lease_owner = EXCLUDED.lease_owner, lease_expires_at = EXCLUDED.lease_expires_at,"
    "  started_at = now(), next_attempt_at = NULL"
    " WHERE " CLAIMABLE " RETURNING t.id, t.attempt, t.checkpoint::text";

static void claim_one_kind(struct agent *ag, struct task *list, int hand_pushed);

static void claim_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct batch_op *op = arg;
    struct agent *ag = op->ag;
    struct task *list = op->list;
    int hand = list->env.hand_pushed;
    free(op);
    if (!res) { /* connection lost: nothing was claimed for sure; try again later */
        agent_claimed(ag, list, 0);
        return;
    }
    if (err[0]) {
        if (list->next) {
            log_warn("claim of %d tasks refused (%s); claiming them one by one", list_len(list), err);
            while (list) {
                struct task *t = list;
                list = t->next;
                t->next = NULL;
                claim_one_kind(ag, t, hand);
            }
            return;
        }
        snprintf(list->reject, sizeof list->reject, "the database refused the task: %s", err);
        list->phase = PHASE_REJECTING;
        agent_claimed(ag, list, 1);
        return;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        struct task *t = find_by_id(list, PQgetvalue(res, i, 0));
        if (!t)
            continue;
        t->attempt = strtol(PQgetvalue(res, i, 1), NULL, 10);
        if (!PQgetisnull(res, i, 2))
            t->checkpoint = xstrdup(PQgetvalue(res, i, 2));
    }
    agent_claimed(ag, list, 1); /* tasks left with attempt 0 were not claimable: duplicates */
}

static void claim_one_kind(struct agent *ag, struct task *list, int hand_pushed)
{
    char lease[16];
    snprintf(lease, sizeof lease, "%d", ag->lease_s);
    struct batch_op *op = op_new(ag, list);
    if (!hand_pushed) {
        pgarr_t *ids = pgarr_new();
        for (struct task *t = list; t; t = t->next)
            pgarr_add(ids, t->env.id);
        char *p1 = pgarr_finish(ids);
        const char *params[3] = {p1, ag->name, lease};
        pgc_query(ag->pg, claim_update_sql, 3, params, claim_done, op);
        free(p1);
        return;
    }
    pgarr_t *a[8];
    for (int i = 0; i < 8; i++)
        a[i] = pgarr_new();
    for (struct task *t = list; t; t = t->next) {
        pgarr_add(a[0], t->env.id);
        pgarr_add(a[1], t->q->name);
        pgarr_add(a[2], t->spec->kind);
        pgarr_add(a[3], t->spec_text);
        pgarr_add_long(a[4], t->spec->retry.max_attempts);
        pgarr_add_long(a[5], t->spec->priority);
        pgarr_add_long(a[6], t->entry_ms);
        pgarr_add(a[7], t->entry_id);
    }
    char *p[10];
    for (int i = 0; i < 8; i++)
        p[i] = pgarr_finish(a[i]);
    p[8] = ag->name;
    p[9] = lease;
    pgc_query(ag->pg, claim_upsert_sql, 10, (const char *const *)p, claim_done, op);
    for (int i = 0; i < 8; i++)
        free(p[i]);
}

void claim_batch(struct agent *ag, struct task *batch)
{
    /* Split by kind of statement; each half is claimed (and answered) alone. */
    struct task *rows = NULL, *hand = NULL;
    while (batch) {
        struct task *t = batch;
        batch = t->next;
        struct task **l = t->env.hand_pushed ? &hand : &rows;
        /* the same task twice in one upsert is an error: keep one, the other is a duplicate */
        if (t->env.hand_pushed && find_by_id(hand, t->env.id)) {
            t->next = NULL;
            t->attempt = 0;
            agent_claimed(ag, t, 1);
            continue;
        }
        t->next = *l;
        *l = t;
    }
    if (rows)
        claim_one_kind(ag, rows, 0);
    if (hand)
        claim_one_kind(ag, hand, 1);
}

/* ---------------------------------------------------------------- complete */

/* Guarded by attempt and lease owner (the fencing token): an agent whose
 * lease expired and was taken over cannot overwrite the newer outcome. The
 * attempt row is written in the same statement, once. */
static const char complete_sql[] =
    "WITH r AS (SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::jsonb[],"
    "  $6::text[], $7::bigint[]) AS r(id, attempt, state, err, result, output, started_us)),"
    " u AS (UPDATE tasks t SET state = r.state, finished_at = now(), last_error = r.err,"
    "  result = r.result, output_tail = r.output, lease_owner = NULL, lease_expires_at = NULL"
    "  FROM r WHERE t.id = r.id AND t.attempt = r.attempt AND t.lease_owner = $8"
    "  AND t.state = 'running' RETURNING t.id),"
    " a AS (INSERT INTO task_attempts (task_id, attempt, agent, started_at, outcome, error)"
    "  SELECT r.id, r.attempt, $8, 'epoch'::timestamptz + r.started_us * interval '1 microsecond',"
    "  r.state, r.err FROM r WHERE r.id IN (SELECT id FROM u))"
    " SELECT id FROM u";

static void complete_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct batch_op *op = arg;
    struct agent *ag = op->ag;
    struct task *list = op->list;
    int split = op->split;
    free(op);
    if (!res) {
        agent_completed(ag, list, 0);
        return;
    }
    if (err[0]) {
        if (list->next) {
            log_warn("outcome batch of %d refused (%s); writing them one by one", list_len(list), err);
            split_batch(ag, list, complete_batch);
            return;
        }
        if (!split && (list->res.output || list->res.result)) {
            /* the output or result is what PostgreSQL refused: keep the outcome, drop them */
            log_warn("outcome of task %s refused (%s); recording it without output", list->env.id, err);
            free(list->res.output);
            list->res.output = NULL;
            json_decref(list->res.result);
            list->res.result = NULL;
            complete_batch(ag, list);
            return;
        }
        log_error("outcome of task %s could not be recorded: %s", list->env.id, err);
        list->final_state = NULL;
        agent_completed(ag, list, 1);
        return;
    }
    for (struct task *t = list; t; t = t->next) {
        int found = 0;
        for (int i = 0; i < PQntuples(res) && !found; i++)
            found = strcmp(PQgetvalue(res, i, 0), t->env.id) == 0;
        if (!found) {
            log_warn("task %s attempt %ld: outcome not recorded, the lease was lost to another agent",
                     t->env.id, t->attempt);
            t->final_state = NULL;
        }
    }
    agent_completed(ag, list, 1);
}

void complete_batch(struct agent *ag, struct task *list)
{
    pgarr_t *a[7];
    for (int i = 0; i < 7; i++)
        a[i] = pgarr_new();
    for (struct task *t = list; t; t = t->next) {
        pgarr_add(a[0], t->env.id);
        pgarr_add_long(a[1], t->attempt);
        pgarr_add(a[2], t->final_state);
        pgarr_add(a[3], t->res.error);
        char *result = t->res.result ? json_dumps(t->res.result, JSON_COMPACT) : NULL;
        pgarr_add(a[4], result);
        free(result);
        if (t->res.output) {
            char *clean = utf8_sanitize(t->res.output, t->res.output_len);
            pgarr_add(a[5], clean);
            free(clean);
        } else {
            pgarr_add(a[5], NULL);
        }
        pgarr_add_long(a[6], tv_us(&t->started));
    }
    char *p[8];
    for (int i = 0; i < 7; i++)
        p[i] = pgarr_finish(a[i]);
    p[7] = ag->name;
    struct batch_op *op = op_new(ag, list);
    op->split = list->next == NULL;
    pgc_query(ag->pg, complete_sql, 8, (const char *const *)p, complete_done, op);
    for (int i = 0; i < 7; i++)
        free(p[i]);
}

/* ------------------------------------------------------------------ reject */

static const char reject_sql[] =
    "INSERT INTO tasks AS t (id, queue, kind, spec, state, attempt, created_at, finished_at,"
    " last_error, source)"
    " SELECT i.id, i.queue, i.kind, i.spec, 'failed', 0,"
    "  'epoch'::timestamptz + i.ms * interval '1 millisecond', now(), i.err, i.source"
    " FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::text[], $6::bigint[], $7::text[])"
    "  AS i(id, queue, kind, spec, err, ms, source)"
    " ON CONFLICT (id) DO UPDATE SET state = 'failed', finished_at = now(),"
    "  last_error = EXCLUDED.last_error"
    " WHERE t.state IN ('queued', 'retrying', 'running')";

static void reject_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct batch_op *op = arg;
    struct agent *ag = op->ag;
    struct task *list = op->list;
    free(op);
    if (!res) {
        agent_rejected(ag, list, 0);
        return;
    }
    if (err[0] && list->next) {
        split_batch(ag, list, reject_batch);
        return;
    }
    if (err[0] && list->spec_text) {
        /* the spec text itself was refused (e.g. \u0000 in jsonb): keep a preview */
        log_warn("rejected entry %s: spec refused by the database (%s)", list->entry_id, err);
        json_t *j = json_pack("{s:s}", "unreadable_spec", "refused by the database");
        free(list->spec_text);
        list->spec_text = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        reject_batch(ag, list);
        return;
    }
    if (err[0])
        log_error("entry %s of queue %s could not be recorded (%s): %s", list->entry_id, list->q->name, err,
                  list->reject);
    agent_rejected(ag, list, 1);
}

void reject_batch(struct agent *ag, struct task *list)
{
    pgarr_t *a[7];
    for (int i = 0; i < 7; i++)
        a[i] = pgarr_new();
    for (struct task *t = list; t; t = t->next) {
        pgarr_add(a[0], t->env.id);
        pgarr_add(a[1], t->q->name);
        pgarr_add(a[2], t->env.kind[0] ? t->env.kind : "unknown");
        pgarr_add(a[3], t->spec_text ? t->spec_text : "{}");
        pgarr_add(a[4], t->reject);
        pgarr_add_long(a[5], t->entry_ms);
        pgarr_add(a[6], t->entry_id);
    }
    char *p[7];
    for (int i = 0; i < 7; i++)
        p[i] = pgarr_finish(a[i]);
    pgc_query(ag->pg, reject_sql, 7, (const char *const *)p, reject_done, op_new(ag, list));
    for (int i = 0; i < 7; i++)
        free(p[i]);
}

/* ------------------------------------------------------- lease, checkpoint */

static void log_error_result(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    (void)res;
    if (err[0])
        log_warn("%s: %s", (const char *)arg, err);
}

void lease_renew(struct agent *ag)
{
    if (!ag->running)
        return;
    pgarr_t *ids = pgarr_new(), *attempts = pgarr_new();
    for (struct task *t = ag->running; t; t = t->rnext) {
        pgarr_add(ids, t->env.id);
        pgarr_add_long(attempts, t->attempt);
    }
    char lease[16];
    snprintf(lease, sizeof lease, "%d", ag->lease_s);
    char *p[4] = {pgarr_finish(ids), pgarr_finish(attempts), lease, ag->name};
    pgc_query(ag->pg,
              "UPDATE tasks t SET lease_expires_at = now() + $3::int * interval '1 second'"
              " FROM unnest($1::uuid[], $2::int[]) AS i(id, attempt)"
              " WHERE t.id = i.id AND t.attempt = i.attempt AND t.lease_owner = $4 AND t.state = 'running'",
              4, (const char *const *)p, log_error_result, "lease renewal failed");
    free(p[0]);
    free(p[1]);
}

void checkpoint_write(struct agent *ag, struct task *t, const char *json, size_t len)
{
    char attempt[24];
    snprintf(attempt, sizeof attempt, "%ld", t->attempt);
    char *data = utf8_sanitize(json, len);
    const char *p[4] = {t->env.id, attempt, data, ag->name};
    pgc_query(ag->pg,
              "WITH u AS (UPDATE tasks SET checkpoint = $3::jsonb WHERE id = $1::uuid"
              " AND attempt = $2::int AND lease_owner = $4 AND state = 'running' RETURNING id)"
              " INSERT INTO checkpoints (task_id, attempt, data) SELECT id, $2::int, $3::jsonb FROM u",
              4, p, log_error_result, "checkpoint write failed");
    free(data);
}
