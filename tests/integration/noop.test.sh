#!/usr/bin/env bash
# noop tasks (the benchmark's kind): done in their claim statement, through the
# API and by hand, each recorded once with one attempt row.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
it_start_manager || it_bail "start manager"
it_start_agent a1 DEVSYS_QUEUES=noop DEVSYS_CONCURRENCY=64 DEVSYS_METRICS_LISTEN=127.0.0.1:0 || it_bail "start agent"
batch=$(jq -nc '[range(0;300) | {kind:"noop"}]')
curl -sf -X POST -H "Authorization: Bearer $DEVSYS_TOKEN" "$DEVSYS_URL/v1/tasks" -d "$batch" >/dev/null
for i in $(seq 1 200); do echo "XADD devsys:{noop}:stream * spec '{\"kind\":\"noop\"}'"; done | it_redis >/dev/null
ok "500 noop tasks succeed" it_wait_sql 30 "SELECT count(*) FROM tasks WHERE state='succeeded'" 500
is "$(it_psql "SELECT count(*) FROM task_attempts WHERE outcome='succeeded' AND agent='a1'")" 500 \
    "one succeeded attempt row each"
is "$(it_psql "SELECT count(*) FROM tasks WHERE attempt <> 1 OR finished_at IS NULL OR started_at IS NULL")" 0 \
    "each ran once, with start and finish recorded"
is "$(it_psql "SELECT count(*) FROM tasks WHERE source IS NOT NULL")" 200 "the hand-pushed ones have their source entry"
ok "the stream drains (nothing pending)" it_wait_for 10 '[[ $(it_redis XPENDING "devsys:{noop}:stream" agents | head -1) == 0 ]]'
id=$(it_psql "SELECT id FROM tasks LIMIT 1")
src=$(it_psql "SELECT source FROM tasks WHERE source IS NOT NULL LIMIT 1")
# a redelivery of a finished hand-pushed entry is a duplicate, not a second run
it_redis XADD 'devsys:{noop}:stream' '*' v 1 id "$id" kind noop spec '{"kind":"noop"}' >/dev/null
sleep 1
is "$(it_psql "SELECT count(*) FROM task_attempts WHERE task_id='$id'")" 1 "a duplicate delivery does not run it again"
ok "agent still running" kill -0 "${AGENT_PIDS[a1]}"
like "$(curl -s "${AGENT_METRICS[a1]}/metrics")" 'devsys_tasks_done_total\{outcome="succeeded"\} 500' \
    "the agent's /metrics counts the 500 successes"
like "$(curl -s "$DEVSYS_URL/metrics")" 'devsys_tasks_submitted_total 300' "the manager's /metrics counts submits"
it_done
