#!/usr/bin/env bash
# exec tasks end to end: devsysctl submit, redis-cli XADD by hand, timeouts.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
it_start_manager || it_bail "start manager"
it_start_agent a1 DEVSYS_QUEUES=exec DEVSYS_KILL_GRACE_S=1

id=$(ctl submit - <<<'{"kind":"exec","command":["sh","-c","echo out; echo err >&2"]}')
like "$id" '^[0-9a-f-]{36}$' "devsysctl submit prints the task id"
ok "submitted exec task succeeds" it_wait_sql 20 "SELECT state FROM tasks WHERE id='$id'" succeeded
is "$(it_psql "SELECT output_tail FROM tasks WHERE id='$id'")" $'out\nerr' "stdout and stderr kept in output_tail"
is "$(it_psql "SELECT result->>'exit_code' FROM tasks WHERE id='$id'")" 0 "exit status recorded in result"
is "$(it_psql "SELECT count(*) FROM task_attempts WHERE task_id='$id' AND outcome='succeeded' AND agent='a1'")" 1 \
    "one attempt row, from agent a1"
like "$(ctl get "$id")" 'succeeded' "devsysctl get shows the state"

entry=$(it_redis XADD 'devsys:{exec}:stream' '*' spec '{"kind":"exec","command":["sh","-c","echo hi"]}')
ok "hand-pushed task succeeds" it_wait_sql 20 "SELECT state FROM tasks WHERE source='$entry'" succeeded
is "$(it_psql "SELECT output_tail FROM tasks WHERE source='$entry'")" hi "hand-pushed output is hi"

id=$(ctl submit - <<<'{"kind":"exec","command":["sh","-c","exit 3"],"retry_policy":{"max_attempts":1}}')
ok "non-zero exit on the last attempt ends dead" it_wait_sql 20 "SELECT state FROM tasks WHERE id='$id'" dead
is "$(it_psql "SELECT last_error FROM tasks WHERE id='$id'")" "exit status 3" "reason names the exit status"

# The child and a grandchild write their pids; after the timeout neither may be alive.
pids=$IT_DIR/pids
id=$(ctl submit - <<EOF2
{"kind":"exec","timeout_s":1,"retry_policy":{"max_attempts":1},"command":["sh","-c","echo \$\$ >> $pids; sleep 100 & echo \$! >> $pids; wait"]}
EOF2
)
ok "task over its timeout ends dead (its only attempt)" it_wait_sql 20 "SELECT state FROM tasks WHERE id='$id'" dead
is "$(it_psql "SELECT last_error FROM tasks WHERE id='$id'")" timeout "reason is timeout"
alive=0
while read -r p; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done <"$pids"
is "$(wc -l <"$pids")/$alive" "2/0" "no process of the timed-out task is left (2 written, 0 alive)"

id=$(ctl submit - <<<'{"kind":"exec","command":["no-such-command-xyz"]}')
ok "unknown command ends dead at once (not retryable)" it_wait_sql 20 "SELECT state FROM tasks WHERE id='$id'" dead
is "$(it_psql "SELECT attempt FROM tasks WHERE id='$id'")" 1 "a permanent failure is not retried"
like "$(it_psql "SELECT last_error FROM tasks WHERE id='$id'")" 'no-such-command-xyz' "reason names the command"
id=$(ctl submit - <<<'{"kind":"exec","command":["sh","-c","exit 64"],
  "retry_policy":{"max_attempts":5,"initial_s":0,"permanent_exit_codes":[64,65]}}')
ok "an exit code the spec calls permanent ends dead" it_wait_sql 20 "SELECT state FROM tasks WHERE id='$id'" dead
is "$(it_psql "SELECT attempt || ' ' || last_error FROM tasks WHERE id='$id'")" \
    "1 exit status 64 (permanent: in retry_policy.permanent_exit_codes)" "it is not retried, and says why"
id=$(ctl submit - <<<'{"kind":"exec","command":["sh","-c","exit 3"],
  "retry_policy":{"max_attempts":2,"initial_s":0,"permanent_exit_codes":[64]}}')
ok "another exit code is retried up to max_attempts" it_wait_sql 20 "SELECT state || ' ' || attempt FROM tasks WHERE id='$id'" "dead 2"
ok "agent still running" kill -0 "${AGENT_PIDS[a1]}"
it_done
