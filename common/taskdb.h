/* taskdb: the task state machine in PostgreSQL. Every statement that writes
 * `tasks` (with the task_attempts and checkpoints rows that go with a
 * transition) lives in taskdb.c, each with the transition it performs and its
 * guard; callers batch, send and read results by column name through this. */
#ifndef DEVSYS_TASKDB_H
#define DEVSYS_TASKDB_H

#include "pgc.h"

/* States: queued -> running -> succeeded | retrying -> queued (by its retry
 * falling due) | dead; cancelled from any non-final state; dead -> queued by
 * a replay. Defaults of a task (max attempts...) are in proto/spec.h. */

/* The index of result column `name`, looked up once per result:
 *   int c_attempt = taskdb_col(res, "attempt");  ... PQgetvalue(res, i, c_attempt)
 * The columns of each statement are listed below. A name the statement does
 * not return is a bug of ours: logged, then abort(). */
int taskdb_col(const PGresult *res, const char *name);

/* ------------------------------------------------------------------ rows
 * A batched statement takes its rows as arrays (one per column, expanded
 * with unnest server-side). Build them with the statement's taskdb_*_add
 * function; one rows object feeds one statement (mixing aborts). The
 * statement that sends it takes ownership; an unsent one is freed with
 * taskdb_rows_free. */
typedef struct taskdb_rows taskdb_rows_t;

taskdb_rows_t *taskdb_rows_new(void);
void taskdb_rows_free(taskdb_rows_t *r);
int taskdb_rows_count(const taskdb_rows_t *r);

/* ----------------------------------------------------------------- agents */

/* Claim a batch of deliveries: queued, retrying and due, or running on an
 * expired lease -> running (lease to owner for lease_s), attempt + 1; with
 * instant, -> succeeded with its attempt row in the same statement. A task
 * whose expired lease was its last allowed attempt -> dead ("poison"); the
 * vanished attempt gets a 'lost' attempt row. Rows: taskdb_claim_add for
 * tasks with a row, or taskdb_claim_add_new for entries pushed by hand (the
 * row is inserted, already claimed; a batch holds one or the other).
 * Result, one row per distinct id: id; state, attempt, checkpoint,
 * last_error, max_attempts (all NULL when not claimed); was (the state
 * before, NULL when there was no row). */
void taskdb_claim_add(taskdb_rows_t *r, const char *id);
void taskdb_claim_add_new(taskdb_rows_t *r, const char *id, const char *queue, const char *kind,
                          const char *spec_json, long max_attempts, long priority, long long created_ms,
                          const char *source);
void taskdb_claim(pgc_t *pg, taskdb_rows_t *r, const char *owner, int lease_s, int instant, pgc_result_fn *fn,
                  void *arg);

/* Record outcomes: running -> state (succeeded | retrying, due after
 * retry_ms | dead), guarded by attempt and lease owner (the fencing token),
 * with the attempt row. output must be valid UTF-8; result is JSON text.
 * Result, one row per task: id; recorded (t/f); state_attempt ("<state>
 * <attempt>" of the row now, only where not recorded). */
void taskdb_outcome_add(taskdb_rows_t *r, const char *id, long attempt, const char *state, const char *error,
                        const char *result_json, const char *output, long long started_us, long long retry_ms);
/* The test report of the outcome just added (kind testing): a task_reports
 * row (JUnit XML, may be NULL; its summary as JSON text) written in the same
 * statement, only where the outcome is recorded; with history_json
 * ({"scope", "input", "cases": junit_cases_json}, may be NULL) also a
 * test_runs row per case and the test_stats row of each test (its last
 * TASKDB_TEST_LAST outcomes, flaky_at), only where the report row is new. */
#define TASKDB_TEST_LAST 20
void taskdb_outcome_report(taskdb_rows_t *r, const char *id, long attempt, const char *xml,
                           const char *summary_json, const char *history_json);
void taskdb_complete(pgc_t *pg, taskdb_rows_t *r, const char *owner, pgc_result_fn *fn, void *arg);

/* An entry that cannot run: no row, or queued | retrying | running -> dead
 * with error as last_error; a task already final keeps its outcome.
 * Result: id of each task that went dead. */
void taskdb_reject_add(taskdb_rows_t *r, const char *id, const char *queue, const char *kind,
                       const char *spec_json, const char *error, long long created_ms, const char *source);
void taskdb_reject(pgc_t *pg, taskdb_rows_t *r, pgc_result_fn *fn, void *arg);

/* The attempt row of an attempt a cancel stopped (the task is cancelled at
 * that attempt); no result. */
void taskdb_attempt_cancelled(pgc_t *pg, const char *id, long attempt, const char *agent, long long started_us,
                              const char *error, pgc_result_fn *fn, void *arg);

/* Extend the lease of running tasks this owner holds at these attempts.
 * Result: id of each of them found cancelled meanwhile. */
void taskdb_lease_add(taskdb_rows_t *r, const char *id, long attempt);
void taskdb_lease_renew(pgc_t *pg, taskdb_rows_t *r, const char *owner, int lease_s, pgc_result_fn *fn, void *arg);
/* Expire every lease owner holds (a restarted agent of the same name). */
void taskdb_lease_release(pgc_t *pg, const char *owner, pgc_result_fn *fn, void *arg);

/* Save a running task's checkpoint (guarded like an outcome) and keep its
 * newest `keep` checkpoint rows. json must be valid UTF-8. */
void taskdb_checkpoint(pgc_t *pg, const char *id, long attempt, const char *owner, const char *json, int keep,
                       pgc_result_fn *fn, void *arg);

/* Remember where a dead task's letter is (tasks.dlq_entry) for dead tasks;
 * with only_if_unset, only where none is recorded. No result. */
void taskdb_dlq_entry_add(taskdb_rows_t *r, const char *id, const char *entry);
void taskdb_dlq_entries(pgc_t *pg, taskdb_rows_t *r, int only_if_unset, pgc_result_fn *fn, void *arg);

/* ---------------------------------------------------------------- manager */

/* Submit: insert queued tasks (published now), in the order added; a task
 * whose idempotency_key exists is not inserted, the existing one answers;
 * so does the task holding its unique_key (NULL: none; unique_for_s > 0:
 * held that many seconds from its submit, else while it is unfinished).
 * Result, by ord (1-based position of the row added; a key repeated in the
 * batch answers once, at its first position): ord; id (NULL while another
 * submit of that key is in flight); created (t/f); state. */
void taskdb_submit_add(taskdb_rows_t *r, const char *id, const char *queue, const char *kind,
                       const char *spec_json, long max_attempts, long priority, const char *idempotency_key,
                       const char *unique_key, double unique_for_s);
void taskdb_submit(pgc_t *pg, taskdb_rows_t *r, pgc_result_fn *fn, void *arg);
/* Fire a schedule's tick: the rows (taskdb_submit_add, one per tick, with
 * the idempotency key "schedule:<id>:<tick>") are inserted as by a submit,
 * in the same statement that moves the schedule's next_due_at from due to
 * next (-1: NULL, never again), and only if it does: a tick another manager
 * fired already inserts nothing and answers no rows. ticks: the tick times
 * (epoch s) as a PostgreSQL array literal, one per row; missed: ticks left
 * out by the catch-up policy (recorded with the last). Result as submit's. */
struct taskdb_tick {
    const char *schedule_id, *ticks;
    long long due, next;
    long missed;
};
void taskdb_schedule_fire(pgc_t *pg, taskdb_rows_t *r, const struct taskdb_tick *t, pgc_result_fn *fn, void *arg);
/* Delete up to 10000 unique keys whose hold is over (reconciler). No result. */
void taskdb_unique_sweep(pgc_t *pg);

/* A submit's publish failed: mark the queued task's entry lost, so the
 * reconciler republishes it. No result. */
void taskdb_mark_unpublished(pgc_t *pg, const char *id, pgc_result_fn *fn, void *arg);
/* After replaying ids (a PostgreSQL array literal): published now (ok), or
 * the entry is lost (not ok), as above. No result. */
void taskdb_mark_published(pgc_t *pg, const char *ids, int ok, pgc_result_fn *fn, void *arg);

/* Replay: dead -> queued with a fresh budget of attempts (max_attempts =
 * attempt + budget), replays + 1, dlq_entry cleared, for tasks of queue.
 * any_state: also return tasks in other states (unchanged), so one call can
 * tell 409 from 404. Result, by id: was (the state before); kind, spec (NULL
 * when not replayed); id; dlq_entry (before). */
void taskdb_replay_add(taskdb_rows_t *r, const char *id, long budget);
void taskdb_replay(pgc_t *pg, taskdb_rows_t *r, const char *queue, int any_state, pgc_result_fn *fn, void *arg);
/* Retry (POST /v1/tasks/{id}/retry): the same statement as a replay, for one
 * task of queue that is dead (letter purged or not) or cancelled; the same
 * result (was; kind and spec NULL when it was in another state). */
void taskdb_retry(pgc_t *pg, const char *id, long budget, const char *queue, pgc_result_fn *fn, void *arg);

/* Bulk dead-letter actions pick the dead, unpurged tasks of a queue matching
 * a filter: each field NULL for any; error is last_error exactly, since_us
 * (µs since the epoch, as text) the earliest finished_at. */
struct taskdb_dlq_filter {
    const char *error, *kind, *since_us;
};
/* Up to limit of them after task id `after` (NULL: from the first), in id
 * order. Result: id, spec, dlq_entry. A read: replays go through taskdb_replay. */
void taskdb_dead_page(pgc_t *pg, const char *queue, const struct taskdb_dlq_filter *f, const char *after,
                      long limit, pgc_result_fn *fn, void *arg);
/* Purge up to limit of them (dlq_purged_at = now). Result, one row per task
 * purged: id, dlq_entry (NULL when Redis's entry id is unknown), more ("t"
 * when more matched than limit). */
void taskdb_purge_filtered(pgc_t *pg, const char *queue, const struct taskdb_dlq_filter *f, long limit,
                           pgc_result_fn *fn, void *arg);
/* Their groups by (last_error, kind), largest first, at most limit. Result:
 * one row, groups: a JSON array of {error, kind, count, first_failed_at,
 * last_failed_at}. */
void taskdb_dead_groups(pgc_t *pg, const char *queue, const struct taskdb_dlq_filter *f, long limit,
                        pgc_result_fn *fn, void *arg);

/* Cancel: queued | running | retrying -> cancelled. Result: no row when the
 * task does not exist; else was (the state before), cancelled ("1" or "0"),
 * pipeline_id (NULL unless the task is a pipeline node's: a cancel may make
 * later steps due, see taskdb_pipeline_take). */
void taskdb_cancel(pgc_t *pg, const char *id, pgc_result_fn *fn, void *arg);

/* Purge a dead task's letter (dlq_purged_at = now; the row stays dead).
 * One task of queue: no row when absent; else was, purged ("1" or "0").
 * Whole queue: purged (count). */
void taskdb_purge(pgc_t *pg, const char *id, const char *queue, pgc_result_fn *fn, void *arg);
void taskdb_purge_queue(pgc_t *pg, const char *queue, pgc_result_fn *fn, void *arg);

/* Take the tasks a pipeline's steps got (migrations/006_pipelines.sql:
 * queued, never published) of the pipelines in ids (an array literal), to
 * publish them: published_at = now, so no one else takes them too. Also
 * the tasks of the pipelines their end woke (a concurrency group's next).
 * Result: id, queue, kind, attempt, spec, step, idx. */
void taskdb_pipeline_take(pgc_t *pg, const char *ids, pgc_result_fn *fn, void *arg);

/* ------------------------------------------------------------- reconciler
 * after_s: seconds a task must be overdue (DEVSYS_REPUBLISH_AFTER_S). */
enum taskdb_republish { TASKDB_REPUBLISH_QUEUED, TASKDB_REPUBLISH_RETRYING, TASKDB_REPUBLISH_RUNNING,
                        TASKDB_REPUBLISH_N };
/* Queues holding tasks some rule may republish. Result: queue. */
void taskdb_republish_queues(pgc_t *pg, const char *after_s, pgc_result_fn *fn, void *arg);
/* Take up to 1000 tasks of queue the rule finds lost (published_at = now,
 * so no other manager takes them too). level: the priority level whose
 * stream was probed, as the sign of priority ("1", "0", "-1"; NULL: all).
 * first_ms: that stream's first entry in ms minus a slack, NULL when the
 * stream is missing or empty.
 * Result: id, queue, kind, attempt, spec. */
void taskdb_republish_claim(pgc_t *pg, enum taskdb_republish rule, const char *after_s, const char *queue,
                            const char *level, const char *first_ms, pgc_result_fn *fn, void *arg);
/* Take the dead tasks among ids (an array literal) whose letter is missing
 * from the DLQ, to bury them again (published_at = now). Result, the dead
 * letter's fields: id, kind, queue, attempts, error, failed_at, agent,
 * source, spec. */
void taskdb_dead_claim(pgc_t *pg, const char *ids, const char *after_s, pgc_result_fn *fn, void *arg);
/* After a restore from a backup (devsys-manager restore, a blocking libpq
 * caller): the old Redis and agents are gone with every stream entry, delayed
 * envelope and lease. One statement marks what they held as lost, so the
 * reconciler's rules take each task at its first pass whatever
 * DEVSYS_REPUBLISH_AFTER_S is: published_at = PUBLISH_LOST for queued,
 * retrying, running and dead (letter not purged) tasks; a running task's lease
 * and a retrying task's due time become the epoch (expired, due). No
 * parameters. Result: state, n (rows per state). */
extern const char taskdb_restore_lost_sql[];

/* -------------------------------------------------------------- retention
 * Move one batch of finished tasks out of `tasks`: each final state whose
 * period (seconds as text, NULL = that state stays) has passed since
 * finished_at; dead ones only once their letter was purged (dlq_purged_at).
 * They go, with their task_attempts, checkpoints and task_reports rows, into
 * the history tables (migrations/003_history.sql, 010_search.sql), or are deleted when they finished
 * before the oldest day history keeps (today - keep_days, UTC).
 * Up to batch rows per state. Runs only in the session that gets the
 * transaction advisory lock lock_key, so two managers never move the same
 * rows twice. Result, one row: leader (t/f), taken (rows that left tasks),
 * moved (of them, into history). */
struct taskdb_retention {
    const char *succeeded_s, *failed_s, *cancelled_s, *dead_s;
    long keep_days;
    int batch;
    long long lock_key;
};
void taskdb_retain(pgc_t *pg, const struct taskdb_retention *r, pgc_result_fn *fn, void *arg);

#endif
