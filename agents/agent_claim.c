/* agent_claim: the agent's PostgreSQL statements, each batched across tasks
 * (one statement per batch, arrays expanded with unnest) because PostgreSQL
 * CPU per task is the system's bottleneck. A batch that PostgreSQL rejects as
 * a whole is split into single tasks, so one bad row never blocks a queue. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "kind.h"
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
 * only for a task that is queued, due for its retry, or running on an expired
 * lease. Re-claiming an expired lease records the vanished attempt as 'lost';
 * if that attempt was the last one allowed, the task is poison: it goes dead
 * instead of running again. */
#define CLAIMABLE                                                                      \
    "(t.state = 'queued' OR (t.state = 'retrying' AND (t.next_attempt_at IS NULL"     \
    " OR t.next_attempt_at <= now() + interval '1 second'))"                          \
    " OR (t.state = 'running' AND t.lease_expires_at < now()))"
#define POISON "(t.state = 'running' AND t.attempt >= t.max_attempts)"
#define POISON_SET                                                                      \
    " attempt = CASE WHEN " POISON " THEN t.attempt ELSE t.attempt + 1 END,"            \
    " started_at = now(), next_attempt_at = NULL,"                                      \
    " last_error = CASE WHEN " POISON " THEN 'poison: delivered ' || t.attempt ||"      \
    "   ' times without a recorded outcome (its agent died or was lost each time)'"     \
    "   ELSE t.last_error END"
#define CLAIM_SET                                                                       \
    " state = CASE WHEN " POISON " THEN 'dead' ELSE 'running' END,"                     \
    " lease_owner = CASE WHEN " POISON " THEN NULL ELSE $2 END,"                        \
    " lease_expires_at = CASE WHEN " POISON " THEN NULL"                                \
    "   ELSE now() + $3::int * interval '1 second' END,"                                \
    " finished_at = CASE WHEN " POISON " THEN now() END," POISON_SET
/* Instant kinds (a plain noop) have nothing to run: the claim records the
 * success itself, one transaction from queued to succeeded, attempt row included. */
#define DONE_SET                                                                        \
    " state = CASE WHEN " POISON " THEN 'dead' ELSE 'succeeded' END,"                   \
    " lease_owner = NULL, lease_expires_at = CASE WHEN $3::int IS NULL THEN NULL::timestamptz END,"  \
    " finished_at = now(), result = NULL,"                                              \
    POISON_SET
#define CLAIM_TAIL                                                                      \
    " lost AS (INSERT INTO task_attempts (task_id, attempt, agent, started_at, outcome, error)" \
    "  SELECT o.id, o.attempt, o.lease_owner, coalesce(o.started_at, now()), 'lost',"   \
    "   'lease expired: agent ' || o.lease_owner || ' stopped renewing it'"            \
    "  FROM old o JOIN u ON u.id = o.id WHERE o.state = 'running' AND o.attempt > 0"    \
    "  AND o.lease_owner IS NOT NULL ON CONFLICT DO NOTHING),"                          \
    " done AS (INSERT INTO task_attempts (task_id, attempt, agent, started_at, outcome)" \
    "  SELECT u.id, u.attempt, $2, now(), 'succeeded' FROM u WHERE u.state = 'succeeded')" \
    " SELECT i.id, u.state, u.attempt, u.checkpoint, o.state, u.last_error, u.max_attempts" \
    " FROM i LEFT JOIN u ON u.id = i.id LEFT JOIN old o ON o.id = i.id"

#define UPDATE_SQL(SET)                                                                 \
    "WITH i AS (SELECT DISTINCT id FROM unnest($1::uuid[]) AS i(id)),"                  \
    " old AS (SELECT t.id, t.state, t.attempt, t.lease_owner, t.started_at FROM tasks t JOIN i USING (id))," \
    " u AS (UPDATE tasks t SET" SET " FROM i WHERE t.id = i.id AND " CLAIMABLE          \
    "  RETURNING t.id, t.state, t.attempt, t.checkpoint::text, t.last_error, t.max_attempts),"          \
    CLAIM_TAIL

/* Entries pushed by hand have no row yet: insert it already claimed (or
 * done), or claim the existing one (a redelivery of the same entry is the
 * same task). */
#define UPSERT_SQL(STATE, OWNER, LEASE, FINISHED, SET)                                  \
    "WITH i AS (SELECT * FROM unnest($1::uuid[], $4::text[], $5::text[], $6::jsonb[], $7::int[]," \
    "  $8::int[], $9::bigint[], $10::text[]) AS i(id, queue, kind, spec, max_attempts, priority, ms, source))," \
    " old AS (SELECT t.id, t.state, t.attempt, t.lease_owner, t.started_at FROM tasks t JOIN i USING (id))," \
    " u AS (INSERT INTO tasks AS t (id, queue, kind, spec, max_attempts, priority, created_at, source," \
    "  state, attempt, lease_owner, lease_expires_at, started_at, finished_at)"          \
    "  SELECT i.id, i.queue, i.kind, i.spec, i.max_attempts, i.priority,"                \
    "   'epoch'::timestamptz + i.ms * interval '1 millisecond', i.source, " STATE ", 1, " \
    OWNER ", " LEASE ", now(), " FINISHED " FROM i"                                      \
    "  ON CONFLICT (id) DO UPDATE SET" SET " WHERE " CLAIMABLE                          \
    "  RETURNING t.id, t.state, t.attempt, t.checkpoint::text, t.last_error, t.max_attempts),"          \
    CLAIM_TAIL

static const char *const claim_sql[2][2] = {
    /* [hand_pushed][instant] */
    {UPDATE_SQL(CLAIM_SET), UPDATE_SQL(DONE_SET)},
    {UPSERT_SQL("'running'", "$2", "now() + $3::int * interval '1 second'", "NULL", CLAIM_SET),
     UPSERT_SQL("'succeeded'", "NULL", "NULL::timestamptz", "now()", DONE_SET)},
};

/* An instant kind (a plain noop) has nothing to run, so its claim records its
 * success; asked to fail (its "sleep" section), it runs like any other. */
static int is_instant(const struct task *t)
{
    return t->spec && (t->spec->kind_def->flags & KIND_INSTANT) && !t->spec->fail_first &&
           !t->spec->fail_always;
}

static void claim_one_kind(struct agent *ag, struct task *list, int hand_pushed, int instant);

/* What to do with an entry whose task was not claimed, from the task's state. */
static enum task_after unclaimed_after(const char *was)
{
    if (!strcmp(was, "running") || !strcmp(was, "retrying") || !strcmp(was, "queued"))
        return AFTER_LEAVE; /* alive elsewhere, or its retry is not due: keep it pending */
    return AFTER_ACK;       /* final: this delivery is a duplicate */
}

static void claim_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct batch_op *op = arg;
    struct agent *ag = op->ag;
    struct task *list = op->list;
    int hand = list->env.hand_pushed, instant = is_instant(list);
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
                claim_one_kind(ag, t, hand, instant);
            }
            return;
        }
        if (!error_is_data(res)) {
            log_error("claim of task %s failed (%s); trying again", list->env.id, err);
            agent_claimed(ag, list, 0);
            return;
        }
        snprintf(list->reject, sizeof list->reject, "the database refused the task: %s", err);
        list->phase = PHASE_REJECTING;
        agent_claimed(ag, list, 1);
        return;
    }
    for (struct task *t = list; t; t = t->next)
        t->after = AFTER_ACK;
    struct idmap map;
    idmap_of_list(&map, list);
    for (int i = 0; i < PQntuples(res); i++) {
        struct task *t = idmap_get(&map, PQgetvalue(res, i, 0));
        if (!t)
            continue;
        if (PQgetisnull(res, i, 1)) { /* not claimed */
            if (PQgetisnull(res, i, 4)) { /* no row at all: the manager never recorded it */
                snprintf(t->reject, sizeof t->reject, "unknown task %s: no row in PostgreSQL", t->env.id);
                t->phase = PHASE_REJECTING;
            } else {
                t->after = unclaimed_after(PQgetvalue(res, i, 4));
            }
            continue;
        }
        t->attempt = strtol(PQgetvalue(res, i, 2), NULL, 10);
        t->max_attempts = strtol(PQgetvalue(res, i, 6), NULL, 10);
        if (strcmp(PQgetvalue(res, i, 1), "succeeded") == 0) { /* an instant kind, done */
            t->final_state = "succeeded";
            t->after = AFTER_ACK;
            continue;
        }
        if (strcmp(PQgetvalue(res, i, 1), "dead") == 0) { /* poison */
            t->final_state = "dead";
            t->after = AFTER_BURY;
            t->res.error = xstrdup(PQgetvalue(res, i, 5));
            continue;
        }
        t->after = AFTER_NONE;
        if (!PQgetisnull(res, i, 3))
            t->checkpoint = xstrdup(PQgetvalue(res, i, 3));
    }
    free(map.slot);
    agent_claimed(ag, list, 1);
}

static void claim_one_kind(struct agent *ag, struct task *list, int hand_pushed, int instant)
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
        pgc_query(ag->pg, claim_sql[0][instant], 3, params, claim_done, op);
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
    p[0] = pgarr_finish(a[0]);
    p[1] = ag->name;
    p[2] = lease;
    for (int i = 1; i < 8; i++)
        p[i + 2] = pgarr_finish(a[i]);
    pgc_query(ag->pg, claim_sql[1][instant], 10, (const char *const *)p, claim_done, op);
    free(p[0]);
    for (int i = 3; i < 10; i++)
        free(p[i]);
}

void claim_batch(struct agent *ag, struct task *batch)
{
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
            agent_claimed(ag, t, 1);
            continue;
        }
        t->next = *l;
        *l = t;
    }
    free(seen.slot);
    for (int h = 0; h < 2; h++)
        for (int k = 0; k < 2; k++)
            if (parts[h][k])
                claim_one_kind(ag, parts[h][k], h, k);
}

/* ---------------------------------------------------------------- complete */

/* Guarded by attempt and lease owner (the fencing token): an agent whose
 * lease expired and was taken over cannot overwrite the newer outcome. The
 * attempt row is written in the same statement, once. The last columns tell,
 * for a row that did not change, what state the task is in, so the agent
 * knows whether its entry is done with (final, or our own earlier commit
 * whose answer was lost) or belongs to whoever runs the task now. */
static const char complete_sql[] =
    "WITH r AS (SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::jsonb[],"
    "  $6::text[], $7::bigint[], $8::bigint[])"
    "  AS r(id, attempt, state, err, result, output, started_us, retry_ms)),"
    " u AS (UPDATE tasks t SET state = r.state,"
    "  finished_at = CASE WHEN r.state = 'retrying' THEN NULL ELSE now() END,"
    "  next_attempt_at = CASE WHEN r.state = 'retrying'"
    "   THEN now() + r.retry_ms * interval '1 millisecond' END,"
    "  last_error = r.err, result = r.result, output_tail = r.output,"
    "  lease_owner = NULL, lease_expires_at = NULL"
    "  FROM r WHERE t.id = r.id AND t.attempt = r.attempt AND t.lease_owner = $9"
    "  AND t.state = 'running' RETURNING t.id),"
    " a AS (INSERT INTO task_attempts (task_id, attempt, agent, started_at, outcome, error)"
    "  SELECT r.id, r.attempt, $9, 'epoch'::timestamptz + r.started_us * interval '1 microsecond',"
    "  CASE WHEN r.state = 'retrying' THEN 'failed' ELSE r.state END, r.err"
    "  FROM r WHERE r.id IN (SELECT id FROM u))"
    /* CASE: the row is looked up again only where the update did not take */
    " SELECT r.id, u.id IS NOT NULL, CASE WHEN u.id IS NULL THEN"
    "  (SELECT t.state || ' ' || t.attempt FROM tasks t WHERE t.id = r.id) END"
    " FROM r LEFT JOIN u ON u.id = r.id";

static void log_error_result(pgc_t *pg, PGresult *res, const char *err, void *arg);

/* The attempt a cancel stopped still gets its row (rare: one statement each). */
static void cancelled_attempt_write(struct agent *ag, struct task *t)
{
    char attempt[24], started[32];
    snprintf(attempt, sizeof attempt, "%ld", t->attempt);
    snprintf(started, sizeof started, "%lld", tv_us(&t->started));
    const char *p[5] = {t->env.id, attempt, ag->name, started, t->res.error ? t->res.error : "cancelled"};
    pgc_query(ag->pg,
              "INSERT INTO task_attempts (task_id, attempt, agent, started_at, outcome, error)"
              " SELECT $1::uuid, $2::int, $3, 'epoch'::timestamptz + $4::bigint * interval '1 microsecond',"
              "  'cancelled', $5 WHERE EXISTS (SELECT 1 FROM tasks WHERE id = $1::uuid AND state = 'cancelled'"
              "  AND attempt = $2::int) ON CONFLICT DO NOTHING",
              5, p, log_error_result, "recording a cancelled attempt failed");
}

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
        if (!error_is_data(res)) {
            log_error("outcome of task %s not written (%s); trying again", list->env.id, err);
            agent_completed(ag, list, 0);
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
        list->after = AFTER_NONE;
        agent_completed(ag, list, 1);
        return;
    }
    for (struct task *t = list; t; t = t->next)
        t->after = AFTER_NONE;
    struct idmap map;
    idmap_of_list(&map, list);
    for (int i = 0; i < PQntuples(res); i++) {
        struct task *t = idmap_get(&map, PQgetvalue(res, i, 0));
        if (!t)
            continue;
        char now[16] = "";
        long now_attempt = -1;
        sscanf(PQgetvalue(res, i, 2), "%15s %ld", now, &now_attempt);
        int recorded = PQgetvalue(res, i, 1)[0] == 't' ||
                       /* our own commit whose answer was lost with the connection */
                       (now_attempt == t->attempt && strcmp(now, t->final_state) == 0);
        if (recorded) {
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
    agent_completed(ag, list, 1);
}

void complete_batch(struct agent *ag, struct task *list)
{
    pgarr_t *a[8];
    for (int i = 0; i < 8; i++)
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
        pgarr_add_long(a[7], t->retry_ms);
    }
    char *p[9];
    for (int i = 0; i < 8; i++)
        p[i] = pgarr_finish(a[i]);
    p[8] = ag->name;
    struct batch_op *op = op_new(ag, list);
    op->split = list->next == NULL;
    pgc_query(ag->pg, complete_sql, 9, (const char *const *)p, complete_done, op);
    for (int i = 0; i < 8; i++)
        free(p[i]);
}

/* ------------------------------------------------------------------ reject */

/* An entry that cannot run becomes a dead task (and a dead letter). A task
 * that had already ended keeps its outcome: that delivery was a duplicate. */
static const char reject_sql[] =
    "WITH i AS (SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[], $5::text[],"
    "  $6::bigint[], $7::text[]) AS i(id, queue, kind, spec, err, ms, source)),"
    " u AS (INSERT INTO tasks AS t (id, queue, kind, spec, state, attempt, created_at, finished_at,"
    "  last_error, source)"
    "  SELECT i.id, i.queue, i.kind, i.spec, 'dead', 0,"
    "   'epoch'::timestamptz + i.ms * interval '1 millisecond', now(), i.err, i.source FROM i"
    "  ON CONFLICT (id) DO UPDATE SET state = 'dead', finished_at = now(),"
    "   last_error = EXCLUDED.last_error, lease_owner = NULL, lease_expires_at = NULL"
    "  WHERE t.state IN ('queued', 'retrying', 'running') RETURNING t.id)"
    " SELECT id FROM u";

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
    if (err[0] && list->spec_text && !strstr(list->spec_text, "unreadable_spec")) {
        /* the spec text itself was refused (e.g. \u0000 in jsonb): keep a preview */
        log_warn("rejected entry %s: spec refused by the database (%s)", list->entry_id, err);
        char *preview = utf8_preview(list->spec_text, strlen(list->spec_text), 1024);
        json_t *j = json_pack("{s:s}", "unreadable_spec", preview);
        free(preview);
        free(list->spec_text);
        list->spec_text = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        reject_batch(ag, list);
        return;
    }
    for (struct task *t = list; t; t = t->next)
        t->after = err[0] ? AFTER_BURY : AFTER_ACK; /* unrecordable: the DLQ still tells */
    if (err[0])
        log_error("entry %s of queue %s could not be recorded in PostgreSQL (%s): %s", list->entry_id,
                  list->q->name, err, list->reject);
    for (int i = 0; !err[0] && i < PQntuples(res); i++)
        for (struct task *t = list; t; t = t->next)
            if (strcmp(t->env.id, PQgetvalue(res, i, 0)) == 0)
                t->after = AFTER_BURY;
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

static void lease_done(pgc_t *pg, PGresult *res, const char *err, void *arg)
{
    (void)pg;
    struct agent *ag = arg;
    if (err[0]) {
        log_warn("lease renewal failed: %s", err);
        return;
    }
    for (int i = 0; res && i < PQntuples(res); i++)
        agent_cancelled(ag, PQgetvalue(res, i, 0));
}

void lease_renew(struct agent *ag)
{
    pgarr_t *ids = pgarr_new(), *attempts = pgarr_new();
    int n = 0;
    for (struct task *t = ag->held; t; t = t->hnext) {
        if (t->attempt <= 0 || (t->phase != PHASE_RUNNING && t->phase != PHASE_COMPLETING))
            continue;
        pgarr_add(ids, t->env.id);
        pgarr_add_long(attempts, t->attempt);
        n++;
    }
    char lease[16];
    snprintf(lease, sizeof lease, "%d", ag->lease_s);
    char *p[4] = {pgarr_finish(ids), pgarr_finish(attempts), lease, ag->name};
    /* The answer lists the tasks cancelled meanwhile: a backstop for a lost
     * cancel message on the control stream. */
    if (n)
        pgc_query(ag->pg,
                  "WITH i AS (SELECT * FROM unnest($1::uuid[], $2::int[]) AS i(id, attempt)),"
                  " u AS (UPDATE tasks t SET lease_expires_at = now() + $3::int * interval '1 second'"
                  "  FROM i WHERE t.id = i.id AND t.attempt = i.attempt AND t.lease_owner = $4"
                  "  AND t.state = 'running' RETURNING t.id)"
                  " SELECT t.id FROM tasks t JOIN i ON t.id = i.id WHERE t.state = 'cancelled'",
                  4, (const char *const *)p, lease_done, ag);
    free(p[0]);
    free(p[1]);
}

void lease_release_previous(struct agent *ag)
{
    const char *p[1] = {ag->name};
    pgc_query(ag->pg,
              "UPDATE tasks SET lease_expires_at = now() - interval '1 millisecond'"
              " WHERE lease_owner = $1 AND state = 'running'",
              1, p, log_error_result, "releasing the previous incarnation's leases failed");
}

void dlq_entry_write(struct agent *ag, const char *task_id, const char *dlq_entry)
{
    const char *p[2] = {task_id, dlq_entry};
    pgc_query(ag->pg, "UPDATE tasks SET dlq_entry = $2 WHERE id = $1::uuid AND state = 'dead'", 2, p,
              log_error_result, "recording the DLQ entry failed");
}

/* The newest `keep` rows of the task stay: the DELETE sees the rows from
 * before this INSERT, so keep-1 of them plus the new one. */
void checkpoint_write(struct agent *ag, struct task *t, const char *json, size_t len, int keep)
{
    char attempt[24], offset[24];
    snprintf(attempt, sizeof attempt, "%ld", t->attempt);
    snprintf(offset, sizeof offset, "%d", keep - 1);
    char *data = utf8_sanitize(json, len);
    const char *p[5] = {t->env.id, attempt, data, ag->name, offset};
    pgc_query(ag->pg,
              "WITH u AS (UPDATE tasks SET checkpoint = $3::jsonb WHERE id = $1::uuid"
              " AND attempt = $2::int AND lease_owner = $4 AND state = 'running' RETURNING id),"
              " i AS (INSERT INTO checkpoints (task_id, attempt, data) SELECT id, $2::int, $3::jsonb FROM u)"
              " DELETE FROM checkpoints c WHERE c.task_id = $1::uuid AND EXISTS (SELECT 1 FROM u)"
              " AND c.id <= (SELECT id FROM checkpoints WHERE task_id = $1::uuid"
              "  ORDER BY id DESC OFFSET $5::int LIMIT 1)",
              5, p, log_error_result, "checkpoint write failed");
    free(data);
}
