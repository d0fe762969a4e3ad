#!/usr/bin/env bash
# Fencing: an agent frozen (SIGSTOP) while its task runs loses the lease; a
# second agent runs and completes the task; when the first one wakes up, its
# late outcome is neither recorded nor able to re-run the task.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
it_start_manager || it_bail "start manager"
common=(DEVSYS_QUEUES=exec DEVSYS_CONCURRENCY=4 DEVSYS_LEASE_S=3 DEVSYS_CLAIM_PERIOD_S=1)
it_start_agent a1 "${common[@]}"

# Each run appends "start N" and "end N" (N = $DEVSYS_ATTEMPT) to a journal, so
# the test sees every run, including the one whose agent is frozen.
journal=$IT_DIR/journal
script='echo "start $DEVSYS_ATTEMPT" >>"$0"; sleep 5; echo "end $DEVSYS_ATTEMPT" >>"$0"; echo "finished by attempt $DEVSYS_ATTEMPT"'
id=$(ctl submit - <<<"$(jq -nc --arg s "$script" --arg j "$journal" '{kind: "exec", command: ["sh", "-c", $s, $j]}')")
like "$id" '^[0-9a-f-]{36}$' "task submitted"
ok "a1 starts it" it_wait_sql 20 "SELECT state || ' ' || lease_owner FROM tasks WHERE id='$id'" 'running a1'
ok "its command runs" it_wait_for 10 "grep -qx 'start 1' '$journal'"

it_start_agent a2 "${common[@]}"
it_stop_agent a1 STOP
stop_ms=$(ds_now_ms)
# a1's child keeps running (only the agent is frozen) and writes "end 1" at 5 s.
ok "a2 takes the task over once a1's lease expired" \
    it_wait_sql 30 "SELECT lease_owner || ' ' || attempt FROM tasks WHERE id='$id'" 'a2 2'
ok "a2's run completes the task" it_wait_state 30 "$id" succeeded
took=$(it_psql "SELECT (extract(epoch FROM started_at) * 1000)::bigint FROM task_attempts
           WHERE task_id='$id' AND agent='a2'")
[[ $took =~ ^[0-9]+$ ]] && it_diag "takeover: a2 started the task $((took - stop_ms)) ms after a1 froze (lease 3 s)"
ok "a1's frozen run finished too (its child was not frozen)" it_wait_for 10 "grep -qx 'end 1' '$journal'"

it_stop_agent a1 CONT
wake_ms=$(ds_now_ms)
# a1 now sees its child's exit and tries to report attempt 1. Give it time to
# do so (and anything to re-deliver the entry), then look at what was recorded.
sleep 6
ok "a1 survived its wake-up" kill -0 "${AGENT_PIDS[a1]}"
is "$(it_psql "SELECT state FROM tasks WHERE id='$id'")" succeeded "the task is still succeeded"
is "$(it_psql "SELECT attempt FROM tasks WHERE id='$id'")" 2 "tasks.attempt is a2's attempt 2"
is "$(it_psql "SELECT output_tail FROM tasks WHERE id='$id'")" "finished by attempt 2" \
    "tasks.output_tail is a2's output, not a1's"
is "$(it_psql "SELECT result->>'exit_code' FROM tasks WHERE id='$id'")" 0 "tasks.result is a2's"
is "$(it_psql "SELECT count(*) FROM task_attempts WHERE task_id='$id' AND outcome='succeeded'")" 1 \
    "exactly one succeeded attempt row"
is "$(it_psql "SELECT agent || ' ' || attempt FROM task_attempts WHERE task_id='$id' AND outcome='succeeded'")" "a2 2" \
    "the succeeded row is a2's attempt 2"
is "$(it_psql "SELECT coalesce(string_agg(outcome, ','), 'none') FROM task_attempts
          WHERE task_id='$id' AND agent='a1'")" lost "a1's attempt is recorded as lost, never as its late outcome"
is "$(it_psql "SELECT count(*) FROM task_attempts WHERE task_id='$id' AND finished_at >= to_timestamp($wake_ms / 1000.0)")" 0 \
    "nothing was recorded for the task after a1 woke up"
is "$(grep -c '^start' "$journal")" 2 "the command ran twice in all (a1, then a2), never again after the wake-up"
is "$(it_redis XPENDING 'devsys:{exec}:stream' agents | head -n 1)" 0 "nothing left pending in the consumer group"

# a1 is fenced out for that task only: it keeps working.
it_stop_agent a2
id2=$(ctl submit - <<<'{"kind":"exec","command":["true"]}')
id3=$(ctl submit - <<<'{"kind":"exec","command":["true"]}')
ok "after the wake-up a1 still runs new tasks" it_wait_state 20 "$id2" succeeded
ok "and another one" it_wait_state 20 "$id3" succeeded
it_done
