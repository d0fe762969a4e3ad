#!/usr/bin/env bash
# Cancel and graceful shutdown: a cancelled queued task never runs; cancelling
# a running command ends its whole process group and the task stays
# cancelled; SIGTERM lets an agent finish and record its in-flight tasks,
# take no new ones, and exit 0.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
it_start_manager || it_bail "start manager"
submit() { ctl submit - <<<"$1"; }
common=(DEVSYS_QUEUES=exec DEVSYS_LEASE_S=3 DEVSYS_CLAIM_PERIOD_S=1 DEVSYS_KILL_GRACE_S=1)
# group_alive PGID: some process of the group is alive (zombies do not count).
group_alive() { ps -e -o pgid=,stat= | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { f = 1 } END { exit !f }'; }

# ------------------------------------------------ cancel while still queued
marker=$IT_DIR/cancelled-task-ran
c1=$(submit "$(jq -nc --arg m "$marker" '{kind: "exec", command: ["sh", "-c", "touch \"$0\"", $m]}')")
like "$c1" '^[0-9a-f-]{36}$' "task submitted while no agent runs"
ok "devsysctl cancel of the queued task" ctl cancel "$c1"
ok "it is cancelled" it_wait_state 5 "$c1" cancelled
it_start_agent a1 "${common[@]}" DEVSYS_CONCURRENCY=4
after=$(submit '{"kind":"exec","command":["true"]}')
ok "a task queued after it runs" it_wait_state 20 "$after" succeeded
sleep 1
ok "the cancelled task never ran" test ! -e "$marker"
is "$(it_psql "SELECT state FROM tasks WHERE id='$c1'")" cancelled "it is still cancelled"
is "$(it_psql "SELECT count(*) FROM task_attempts WHERE task_id='$c1'")" 0 "it was never claimed (no attempt row)"
ok "cancelling a finished task is refused" it_not ctl cancel "$after"
is "$(it_psql "SELECT state FROM tasks WHERE id='$after'")" succeeded "the finished task stays succeeded"

# ------------------------------------------------ cancel while running
pids=$IT_DIR/pids
c2=$(submit "$(jq -nc --arg p "$pids" '{kind: "exec",
    command: ["sh", "-c", "echo $$ >>\"$0\"; sleep 100 & echo $! >>\"$0\"; wait", $p]}')")
ok "sleep 100 task runs" it_wait_state 20 "$c2" running
ok "its shell and its sleep started" it_wait_for 10 "[[ -f '$pids' && \$(grep -c . '$pids') == 2 ]]"
pgid=$(ps -o pgid= -p "$(head -n 1 "$pids")" | tr -d ' ')
like "$pgid" '^[0-9]+$' "the command runs in process group $pgid"
t0=$(ds_now_ms)
ok "devsysctl cancel of the running task" ctl cancel "$c2"
ok "its process group is gone within 5 s" it_wait_for 5 "! group_alive '$pgid'" &&
    it_diag "process group gone $(( $(ds_now_ms) - t0 )) ms after the cancel"
alive=0
while read -r p; do ds_pid_alive "$p" && alive=$((alive + 1)); done <"$pids"
is "$alive" 0 "neither the shell nor its background sleep is alive"
ok "the task ends cancelled" it_wait_state 10 "$c2" cancelled
sleep 4   # past the lease: nothing may retry or re-deliver it
is "$(it_psql "SELECT state FROM tasks WHERE id='$c2'")" cancelled "it stays cancelled"
is "$(it_psql "SELECT count(*) FROM task_attempts WHERE task_id='$c2'")" 1 "it ran once (one attempt row)"
like "$(it_psql "SELECT outcome FROM task_attempts WHERE task_id='$c2'")" '^cancelled$' "that attempt is recorded as cancelled"
ok "the agent survived the cancel" kill -0 "${AGENT_PIDS[a1]}"

# ------------------------------------------------ SIGTERM drains
it_stop_agent a1
is "${AGENT_STATUS[a1]}" 0 "an idle agent exits 0 on SIGTERM"
it_start_agent a2 "${common[@]}" DEVSYS_CONCURRENCY=10 DEVSYS_SHUTDOWN_GRACE_S=30
ids=$(jq -nc '[range(0; 10) | {kind: "exec", name: "inflight", command: ["sh", "-c", "sleep 2; echo fine"]}]' \
    | ctl submit -)
is "$(grep -c . <<<"$ids")" 10 "10 tasks of 2 s submitted"
ok "a2 runs all 10" it_wait_sql 20 \
    "SELECT count(*) FROM tasks WHERE spec->>'name'='inflight' AND state='running' AND lease_owner='a2'" 10
pid=${AGENT_PIDS[a2]}
t0=$(ds_now_ms)
kill -TERM "$pid"
sleep 0.3
late=$(jq -nc '[range(0; 5) | {kind: "exec", name: "late", command: ["true"]}]' | ctl submit -)
is "$(grep -c . <<<"$late")" 5 "5 more tasks submitted after the SIGTERM"
ds_wait_pid_gone "$pid" 40
{ wait "$pid"; } 2>/dev/null
st=$?
unset 'AGENT_PIDS[a2]'
it_diag "a2 exited $(( $(ds_now_ms) - t0 )) ms after SIGTERM"
is "$st" 0 "a2 exits 0 after draining"
is "$(it_psql "SELECT count(*) FROM tasks WHERE spec->>'name'='inflight' AND state='succeeded'")" 10 \
    "its 10 in-flight tasks succeeded"
is "$(it_psql "SELECT count(*) FROM task_attempts a JOIN tasks t ON t.id=a.task_id
          WHERE spec->>'name'='inflight' AND a.outcome='succeeded' AND a.agent='a2' AND a.attempt=1")" 10 \
    "each recorded once, by a2 itself, in its first attempt"
is "$(it_psql "SELECT count(*) FROM tasks WHERE spec->>'name'='late' AND state='queued'")" 5 \
    "a draining agent takes no new task"
it_start_agent a3 "${common[@]}" DEVSYS_CONCURRENCY=4
ok "the late tasks run on the next agent" it_wait_sql 20 \
    "SELECT count(*) FROM tasks t JOIN task_attempts a ON a.task_id=t.id
     WHERE spec->>'name'='late' AND t.state='succeeded' AND a.agent='a3' AND a.outcome='succeeded'" 5
it_done
