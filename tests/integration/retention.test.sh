#!/usr/bin/env bash
# Retention (migrations/003_history.sql, manager/retention.c): finished tasks
# leave `tasks` after their state's period into history, with their attempts
# and checkpoints, and are still found by id and by list; live tasks and dead
# letters still in the DLQ stay; history days past the keep are dropped; old
# audit rows go; two managers never move a task twice.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
export DEVSYS_RETENTION_S=0.5 DEVSYS_RETENTION_SUCCEEDED_S=2 DEVSYS_RETENTION_CANCELLED_S=2 \
    DEVSYS_RETENTION_FAILED_S=3600 DEVSYS_RETENTION_DEAD_S=2 DEVSYS_RETENTION_AUDIT_S=600 \
    DEVSYS_HISTORY_KEEP_DAYS=30 DEVSYS_RETENTION_BATCH=7 DEVSYS_RECONCILE_S=0

# task N STATE FINISHED_AGO [EXTRA_COLS EXTRA_VALS]: a task row with id ...N, one
# attempt row and two checkpoint rows; FINISHED_AGO an interval or NULL.
task() {
    local id
    id=$(printf '00000000-0000-7000-8000-%012d' "$1")
    it_psql "INSERT INTO tasks (id, queue, kind, spec, state, attempt, created_at, finished_at${4:+, $4})
             VALUES ('$id', 'exec', 'exec', '{\"kind\":\"exec\",\"command\":[\"true\"]}', '$2', 1,
                     now() - interval '41 days', now() - $3${5:+, $5});
             INSERT INTO task_attempts (task_id, attempt, agent, started_at, finished_at, outcome)
             VALUES ('$id', 1, 'a0', now() - interval '41 days', now() - interval '41 days',
                     CASE WHEN '$2' IN ('queued', 'running', 'retrying') THEN 'lost' ELSE '$2' END);
             INSERT INTO checkpoints (task_id, attempt, data) VALUES ('$id', 1, '{\"n\":1}'), ('$id', 1, '{\"n\":2}')" \
        >/dev/null || it_bail "insert task $1"
    printf '%s\n' "$id"
}
# 20 of each moving kind, so the batches (7 rows per state) take several rounds
for i in $(seq 1 20); do
    task "$i" succeeded "interval '10 seconds'" >/dev/null
    task "$((100 + i))" cancelled "interval '10 seconds'" >/dev/null
    task "$((200 + i))" dead "interval '10 seconds'" dlq_purged_at "now() - interval '5 seconds'" >/dev/null
done
s1=$(printf '00000000-0000-7000-8000-%012d' 1)
dead_kept=$(task 300 dead "interval '10 seconds'" dlq_entry "'1-1'")
failed_kept=$(task 301 failed "interval '10 seconds'")
failed_old=$(task 302 failed "interval '2 hours'")
queued=$(task 303 queued NULL::interval)
running=$(task 304 running NULL::interval lease_owner "'a0'")
retrying=$(task 305 retrying NULL::interval)
ten_days=$(task 306 succeeded "interval '10 days'")
forty_days=$(task 307 succeeded "interval '40 days'")
it_psql "INSERT INTO audit_log (at, actor, action) VALUES (now() - interval '1 hour', 't', 'old'), (now(), 't', 'new')" \
    >/dev/null

# two managers at once: one moves each batch (advisory lock), none twice
it_start_manager || it_bail "start manager"
first=$MANAGER_PID
first_url=$DEVSYS_URL
it_start_manager || it_bail "start second manager"
moved_ids="'$failed_old', '$ten_days'"
ok "succeeded, cancelled and purged dead tasks past their period leave tasks" \
    it_wait_sql 20 "SELECT count(*) FROM tasks WHERE state IN ('succeeded', 'cancelled')
                    OR state = 'dead' AND dlq_purged_at IS NOT NULL OR id IN ($moved_ids)" 0
is "$(it_psql "SELECT string_agg(state, ',' ORDER BY state) FROM tasks")" \
    'dead,failed,queued,retrying,running' \
    "what stays: the dead task whose letter is in the DLQ, the failed one within its period, live tasks"
is "$(it_psql "SELECT state || ':' || count(*) FROM tasks_history GROUP BY state ORDER BY state" | paste -sd' ')" \
    'cancelled:20 dead:20 failed:1 succeeded:21' "history holds each moved task once"
is "$(it_psql "SELECT count(*) - count(DISTINCT id) FROM tasks_history")" 0 "no task moved twice by the two managers"
is "$(it_psql "SELECT count(*) FROM tasks_history WHERE id = '$forty_days'")" 0 \
    "a task that finished before the history keep (30 days) is not moved"
is "$(it_psql "SELECT count(*) FROM task_attempts_history")/$(it_psql "SELECT count(*) FROM checkpoints_history")" \
    62/124 "the attempts and checkpoints of the moved tasks went with them"
is "$(it_psql "SELECT count(*) FROM task_attempts WHERE task_id IN (SELECT id FROM tasks_history)
               OR task_id = '$forty_days'")/$(it_psql "SELECT count(*) FROM checkpoints WHERE task_id = '$forty_days'")" \
    0/0 "and left the hot tables (the 40-day-old task's are deleted)"
is "$(it_psql "SELECT count(*) FROM task_attempts")/$(it_psql "SELECT count(*) FROM checkpoints")" 5/10 \
    "the staying tasks keep theirs"
moved_total=0
for url in "$first_url" "$DEVSYS_URL"; do
    n=$(curl -s "$url/metrics" | awk '$1 == "devsys_retention_moved_total" { print $2 + 0 }')
    moved_total=$((moved_total + ${n:-0}))
done
is "$moved_total" 62 "the managers' devsys_retention_moved_total add up to the tasks moved"
ok "old audit rows are deleted, new ones stay" \
    it_wait_sql 10 "SELECT string_agg(action, ',') FROM audit_log WHERE actor = 't'" new

# ---- reads find moved tasks
get() { curl -s -H "Authorization: Bearer $DEVSYS_TOKEN" "$DEVSYS_URL$1"; }
is "$(get "/v1/tasks/$s1" | jq -c '[.id, .state, (.attempts | map(.outcome))]')" \
    "[\"$s1\",\"succeeded\",[\"succeeded\"]]" "GET /v1/tasks/{id} finds a moved task, with its attempts"
is "$(get "/v1/tasks/$queued" | jq -c '[.state, (.attempts | length)]')" '["queued",1]' \
    "and a task still in tasks"
is "$(get "/v1/tasks/$s1/checkpoints" | jq -c '[.checkpoints[].data.n]')" '[1,2]' \
    "a moved task's checkpoints are still listed"
is "$(get '/v1/tasks?state=succeeded&limit=100' | jq '.tasks | length')" 21 "list ?state=succeeded shows moved ones"
is "$(get '/v1/tasks?state=dead&limit=100' | jq -c '[.tasks | length, (map(.id) | index("'"$dead_kept"'") != null)]')" \
    '[21,true]' "list ?state=dead merges history and tasks"
p1=$(get '/v1/tasks?limit=40')
p2=$(get "/v1/tasks?limit=40&after=$(jq -r .next <<<"$p1")")
is "$(jq -n --argjson a "$p1" --argjson b "$p2" '[$a.tasks[], $b.tasks[]] | map(.id) | unique | length')" 67 \
    "paging the whole list visits each of the 67 tasks once, across both tables"

# ---- a shorter keep drops the old days, and their rows with them
part="tasks_history_p$(it_psql "SELECT to_char((now() AT TIME ZONE 'UTC')::date - 10, 'YYYYMMDD')")"
is "$(it_psql "SELECT to_regclass('$part') IS NOT NULL")" t "the task that finished 10 days ago has its day partition"
it_stop_manager
MANAGER_PID=$first
it_stop_manager
DEVSYS_HISTORY_KEEP_DAYS=5 it_start_manager || it_bail "restart manager with a 5-day keep"
ok "its partition is dropped once the keep is 5 days" \
    it_wait_sql 10 "SELECT to_regclass('$part') IS NULL" t
is "$(it_psql "SELECT count(*) FROM tasks_history WHERE id = '$ten_days'")/$(it_psql \
    "SELECT count(*) FROM task_attempts_history WHERE task_id = '$ten_days'")" 0/0 "the task and its attempts are gone"
is "$(get "/v1/tasks/$ten_days" | jq -r .error)" "task not found" "GET answers 404 for it"
is "$(it_psql "SELECT count(*) FROM tasks_history")" 61 "the other moved tasks stay"
ok "the drop of the three tables' partitions is logged" \
    it_wait_for 5 "grep -qE 'retention: history partitions created [0-9]+ dropped [1-9]' '$IT_DIR/manager.log'"
it_done
