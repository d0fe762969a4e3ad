#!/usr/bin/env bash
# What an operator reads off /metrics and the logs, with real processes: the
# per-queue gauges move when tasks wait (agent stopped) and when one dies,
# HTTP metrics carry route patterns (never raw ids), devsys_postgres_up and
# devsys_redis_up go to 0 while a store is down and back after, promtool
# accepts both endpoints, a task's log lines in the manager and the agent
# share its task id (the manager's also the request id), and
# DEVSYS_LOG_FORMAT=text prints lines for humans.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
command -v promtool >/dev/null || it_bail "promtool on PATH" "install Debian's prometheus (./dev deps)"
it_setup
it_private_postgres || it_bail "private PostgreSQL cluster"
export DEVSYS_QUEUE_METRICS_S=0.3 DEVSYS_QUEUE_METRICS_DISCOVER_S=0.3
it_start_manager || it_bail "start the manager"
start_agent() {
    it_start_agent a1 DEVSYS_QUEUES=mq DEVSYS_CONCURRENCY=4 DEVSYS_METRICS_LISTEN=127.0.0.1:0 \
        DEVSYS_RETRY_JITTER=0 || it_bail "start the agent"
    ds_wait_http "${AGENT_METRICS[a1]}/readyz" 20 || it_bail "the agent is not ready"
}
start_agent
AM=${AGENT_METRICS[a1]}

# value URL SERIES: the value of the series written exactly as SERIES ("" when absent).
value() { curl -sf "$1/metrics" | awk -v s="$2" '$1 == s { print $2 }'; }
# at_least URL SERIES N: the series is there with a value >= N.
at_least() { local v; v=$(value "$1" "$2"); [[ -n $v ]] && awk -v v="$v" -v n="$3" 'BEGIN { exit !(v >= n) }'; }
check_metrics() {
    local body out
    body=$(curl -sf "$1/metrics") || { echo "cannot GET $1/metrics"; return 1; }
    out=$(promtool check metrics <<<"$body" 2>&1) || { echo "$out"; return 1; }
    [[ -z $out ]] || { echo "$out"; return 1; }
}
submit() { curl -sf -H "Authorization: Bearer $DEVSYS_TOKEN" -H "X-Request-Id: $1" -d "$2" "$DEVSYS_URL/v1/tasks" | jq -r '.tasks[0].id'; }

# ---- one task, followed through both logs by its id
id=$(submit req-follow-1 '{"kind":"sleep","queue":"mq","sleep":{"ms":10}}')
[[ $id =~ ^[0-9a-f-]{36}$ ]] || it_bail "submit" "got '$id'"
it_wait_state 20 "$id" succeeded || it_bail "the task does not finish"
# lines LOG FILTER: the JSON log lines of LOG that FILTER selects, compact.
lines() { jq -cR "fromjson? | select($2)" "$IT_DIR/$1"; }
m=$(lines manager.log ".task_id == \"$id\"")
like "$m" '"request_id":"req-follow-1"' "the manager's line about the task carries the request id"
like "$m" '"component":"manager"' "it names its component"
like "$m" '"level":"info","component":"manager"' "with level and time"
like "$(lines manager.log '.request_id == "req-follow-1"' | jq -r .msg | grep '^POST')" '^POST /v1/tasks 201 ' \
    "the manager's request line carries the request id too"
a=$(lines agent-a1.log ".task_id == \"$id\"")
like "$a" 'task started' "the agent's start line carries the task id"
like "$a" '"attempt":1,.*task succeeded' "its outcome line too, with the attempt"
is "$(jq -rs 'map(.component) | unique | join(",")' <<<"$m"$'\n'"$a")" "agent,manager" \
    "jq finds the task in the logs of both processes by its task_id"
is "$(jq -cR 'fromjson? // "not json"' "$IT_DIR/manager.log" "$IT_DIR/agent-a1.log" | grep -c '"not json"')" 0 \
    "every log line is JSON"

# ---- HTTP metrics: route patterns, not raw paths
curl -sf -o /dev/null -H "Authorization: Bearer $DEVSYS_TOKEN" "$DEVSYS_URL/v1/tasks/$id" || it_bail "GET task"
curl -s -o /dev/null -H "Authorization: Bearer $DEVSYS_TOKEN" "$DEVSYS_URL/v1/nothing/$id"
body=$(curl -sf "$DEVSYS_URL/metrics")
like "$body" 'devsys_http_requests_total\{route="/v1/tasks/\{id\}",method="GET",status="200"\} 1' \
    "GET /v1/tasks/<id> is counted under its route pattern"
like "$body" 'devsys_http_request_duration_seconds_count\{route="/v1/tasks/\{id\}",method="GET"\} 1' \
    "and its latency in the histogram of the pattern"
like "$body" 'devsys_http_requests_total\{route="unmatched",method="GET",status="404"\} 1' \
    "an unknown path is counted as route=\"unmatched\""
is "$(grep -c -- "$id" <<<"$body")" 0 "no series carries the task id"

# ---- tasks wait while no agent reads: depth, lag, age
it_stop_agent a1
for n in 1 2 3; do submit "req-wait-$n" '{"kind":"sleep","queue":"mq","sleep":{"ms":10}}' >/dev/null; done
ok "devsys_queue_lag of mq is 3" it_wait_for 10 '[[ $(value "$DEVSYS_URL" "devsys_queue_lag{queue=\"mq\"}") == 3 ]]'
ok "devsys_queue_stream_length counts them" at_least "$DEVSYS_URL" 'devsys_queue_stream_length{queue="mq"}' 3
ok "devsys_tasks_live counts 3 queued in PostgreSQL" \
    it_wait_for 10 '[[ $(value "$DEVSYS_URL" "devsys_tasks_live{queue=\"mq\",state=\"queued\"}") == 3 ]]'
ok "the oldest waiting entry ages past 1 s" it_wait_for 10 \
    'at_least "$DEVSYS_URL" "devsys_queue_oldest_waiting_age_seconds{queue=\"mq\"}" 1'
ok "so does the oldest entry" at_least "$DEVSYS_URL" 'devsys_queue_oldest_age_seconds{queue="mq"}' 1
is "$(value "$DEVSYS_URL" 'devsys_queue_dlq{queue="mq"}')" 0 "the DLQ of mq is empty"

# ---- one task dies (a retry, then dead); the agent drains the queue
dead=$(submit req-dead '{"kind":"sleep","queue":"mq","sleep":{"fail_always":true},"retry_policy":{"max_attempts":2,"initial_s":0.1}}')
start_agent
AM=${AGENT_METRICS[a1]}
it_wait_state 30 "$dead" dead || it_bail "the failing task does not die"
ok "devsys_queue_dlq of mq is 1" it_wait_for 10 '[[ $(value "$DEVSYS_URL" "devsys_queue_dlq{queue=\"mq\"}") == 1 ]]'
ok "the lag is back to 0" it_wait_for 10 '[[ $(value "$DEVSYS_URL" "devsys_queue_lag{queue=\"mq\"}") == 0 ]]'
ok "nothing waits: oldest waiting age 0" it_wait_for 10 \
    '[[ $(value "$DEVSYS_URL" "devsys_queue_oldest_waiting_age_seconds{queue=\"mq\"}") == 0 ]]'
ok "devsys_tasks_dead counts it" it_wait_for 10 '[[ $(value "$DEVSYS_URL" "devsys_tasks_dead{queue=\"mq\"}") == 1 ]]'
it_wait_all_final 20 10 || it_bail "tasks do not finish"
is "$(value "$AM" 'devsys_tasks_total{queue="mq",kind="sleep",outcome="dead"}')" 1 "the agent counts the dead task"
is "$(value "$AM" 'devsys_tasks_total{queue="mq",kind="sleep",outcome="retried"}')" 1 "and its retry"
is "$(value "$AM" 'devsys_tasks_total{queue="mq",kind="sleep",outcome="succeeded"}')" 3 "and the 3 that waited"
is "$(value "$AM" 'devsys_dead_letters_total{queue="mq"}')" 1 "and the dead letter it wrote"
is "$(value "$AM" 'devsys_task_attempts_bucket{kind="sleep",le="1"}')" 3 "3 finished tasks took 1 attempt"
is "$(value "$AM" 'devsys_task_attempts_count{kind="sleep"}')" 4 "4 finished tasks in the attempts histogram"
ok "run times are in the histogram" at_least "$AM" 'devsys_task_run_seconds_count{kind="sleep"}' 5
ok "Redis round trips are measured" at_least "$AM" 'devsys_redis_command_seconds_count{conn="redis"}' 1
ok "PostgreSQL round trips too" at_least "$DEVSYS_URL" 'devsys_postgres_query_seconds_count{conn="devsys-manager"}' 1
like "$(lines agent-a1.log ".task_id == \"$dead\"" | jq -r .msg)" 'task retried: .*task dead: ' \
    "the agent logs the retry and the death under the task id"

ok "promtool check metrics: the manager" check_metrics "$DEVSYS_URL"
ok "promtool check metrics: the agent" check_metrics "$AM"

# ---- a store goes away and comes back
is "$(value "$DEVSYS_URL" devsys_postgres_up)/$(value "$AM" devsys_postgres_up)" 1/1 "postgres_up is 1 on both"
it_private_postgres_ctl stop || it_bail "stop PostgreSQL"
ok "the manager's devsys_postgres_up goes to 0" it_wait_for 15 '[[ $(value "$DEVSYS_URL" devsys_postgres_up) == 0 ]]'
ok "the agent's too" it_wait_for 15 '[[ $(value "$AM" devsys_postgres_up) == 0 ]]'
it_private_postgres_ctl start || it_bail "start PostgreSQL"
ok "the manager's devsys_postgres_up is back to 1" it_wait_for 20 '[[ $(value "$DEVSYS_URL" devsys_postgres_up) == 1 ]]'
ok "the agent's too" it_wait_for 20 '[[ $(value "$AM" devsys_postgres_up) == 1 ]]'
ok "the manager counts the reconnect" at_least "$DEVSYS_URL" 'devsys_postgres_reconnects_total{conn="devsys-manager"}' 1

is "$(value "$DEVSYS_URL" devsys_redis_up)/$(value "$AM" devsys_redis_up)" 1/1 "redis_up is 1 on both"
ds_stop_redis "$REDIS_PID"
ok "the manager's devsys_redis_up goes to 0" it_wait_for 10 '[[ $(value "$DEVSYS_URL" devsys_redis_up) == 0 ]]'
ok "the agent's too" it_wait_for 10 '[[ $(value "$AM" devsys_redis_up) == 0 ]]'
ds_start_redis "$IT_DIR/redis" "$REDIS_PORT" 2>>"$IT_DIR/setup.log" || it_bail "start redis"
ok "the manager's devsys_redis_up is back to 1" it_wait_for 15 '[[ $(value "$DEVSYS_URL" devsys_redis_up) == 1 ]]'
ok "the agent's too" it_wait_for 15 '[[ $(value "$AM" devsys_redis_up) == 1 ]]'
ok "the manager counts the reconnect" at_least "$DEVSYS_URL" 'devsys_redis_reconnects_total{conn="redis"}' 1

# ---- text logs for humans
it_start_agent t1 DEVSYS_QUEUES=tq DEVSYS_LOG_FORMAT=text || it_bail "start the text agent"
tid=$(submit req-text '{"kind":"sleep","queue":"tq","sleep":{"ms":10}}')
it_wait_state 20 "$tid" succeeded || it_bail "the text agent's task does not finish"
ok "the text log has its outcome line" it_wait_for 5 "grep -q 'task_id=$tid attempt=1 task succeeded' \"\$IT_DIR/agent-t1.log\""
like "$(grep "task_id=$tid" "$IT_DIR/agent-t1.log" | tail -n 1)" \
    '^20[0-9-]+T[0-9:.]+Z info +agent\[[0-9]+\] queue=tq task_id=' "a text line: time, level, component[pid], fields, message"
is "$(grep -c '^{' "$IT_DIR/agent-t1.log")" 0 "no JSON line in the text log"
it_done
