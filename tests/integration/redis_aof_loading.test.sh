#!/usr/bin/env bash
# Redis restarts with AOF and takes seconds to load it: agents that reconnect
# meanwhile get LOADING when they create their consumer groups. They must keep
# retrying, say "not ready" on /readyz and in devsys_agent_queue_readable
# while they cannot read, and consume again once Redis is loaded, without
# being restarted.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
KEYS=${AOF_LOADING_KEYS:-2500000}   # ~2.5 s of loading here (~500 MB in memory)
redis_args=(--appendonly yes --enable-debug-command local)
it_restart_redis "${redis_args[@]}" || it_bail "restart redis with AOF"
# filler outside the devsys keys, written in one step, then into the AOF base
it_redis DEBUG POPULATE "$KEYS" aof-filler 100 >/dev/null
it_redis BGREWRITEAOF >/dev/null
ok "the filler is in the AOF" it_wait_for 60 \
    '[[ $(it_redis INFO persistence | tr -d "\r" | grep -cE "^aof_rewrite_(in_progress|scheduled):1") == 0 ]]'

it_start_manager || it_bail "start manager"
for a in a1 a2; do
    it_start_agent "$a" DEVSYS_QUEUES=noop,exec DEVSYS_METRICS_LISTEN=127.0.0.1:0 || it_bail "start agent $a"
done
readyz() { curl -s -w ' %{http_code}' "${AGENT_METRICS[$1]}/readyz"; }
metrics() { curl -s "${AGENT_METRICS[$1]}/metrics"; }
submit_batch() { # submit_batch N: N tasks, half noop, half exec; prints the ids
    jq -nc --argjson n "$1" '[range(0; $n) | if . % 2 == 0 then {kind: "noop"}
                              else {kind: "exec", command: ["true"]} end]' \
        | curl -sf -X POST -H "Authorization: Bearer $DEVSYS_TOKEN" "$DEVSYS_URL/v1/tasks" -d @- \
        | jq -r '.tasks[].id'
}
all_done() { it_wait_sql "$1" "SELECT count(*) FROM tasks WHERE state <> 'succeeded'" 0; }

for a in a1 a2; do
    ok "$a: /readyz answers 200 once it reads" it_wait_for 10 '[[ $(readyz '"$a"') == "ready"*" 200" ]]'
done
submit_batch 20 >/dev/null
ok "tasks run before the restart" all_done 20

t0=$(ds_now_ms)
ds_stop_redis "$REDIS_PID"
DS_REDIS_ACCEPT_LOADING=1 it_restart_redis "${redis_args[@]}" || it_bail "start redis again"
like "$(it_redis PING)" '^LOADING' "Redis is loading its AOF after the restart"
ok "a1: /readyz answers 503 naming LOADING while Redis loads" \
    it_wait_for 20 '[[ $(readyz a1) =~ ^"not ready: queue "(noop|exec)" not readable: LOADING".*" 503"$ ]]'
like "$(metrics a1)" 'devsys_agent_queue_readable\{queue="(noop|exec)"\} 0' \
    "a1: devsys_agent_queue_readable is 0 meanwhile"
ok "Redis finishes loading" it_wait_for 60 '[[ $(it_redis PING) == PONG ]]'
it_diag "Redis was down and loading for $(( $(ds_now_ms) - t0 )) ms ($(it_redis DBSIZE) keys)"

submit_batch 200 >/dev/null
ok "all 220 tasks succeed without restarting the agents" all_done 30
for a in a1 a2; do
    ok "$a: still the same process" kill -0 "${AGENT_PIDS[$a]}"
    like "$(readyz $a)" '^ready.* 200$' "$a: /readyz answers 200 again"
    m=$(metrics $a)
    like "$m" 'devsys_agent_queue_readable\{queue="noop"\} 1' "$a: queue noop readable again"
    like "$m" 'devsys_agent_queue_readable\{queue="exec"\} 1' "$a: queue exec readable again"
    like "$(grep -c 'cannot create consumer group.*LOADING' "$IT_DIR/agent-$a.log")" '^[1-9]' \
        "$a: its log shows the LOADING answers it retried"
done
like "$(metrics a1)" 'devsys_agent_group_create_errors_total\{queue="noop"\} [1-9]' \
    "a1: the group-create errors are counted"
it_done
