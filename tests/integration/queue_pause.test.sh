#!/usr/bin/env bash
# Pause on the agent: a paused queue's tasks stay queued while another queue
# served by the same agent runs; resume runs them at once; the agent's
# devsys_agent_queue_paused gauge follows.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
it_start_manager || it_bail "start manager"
api() { curl -sf -X "$1" -H "Authorization: Bearer $DEVSYS_TOKEN" "$DEVSYS_URL$2" ${3:+-d "$3"}; }
it_start_agent a1 DEVSYS_QUEUES=pa,pb DEVSYS_CONCURRENCY=4 DEVSYS_METRICS_LISTEN=127.0.0.1:0 || it_bail "agent"
gauge() { curl -s "${AGENT_METRICS[a1]}/metrics" | awk -v m="devsys_agent_queue_paused{queue=\"$1\"}" '$1 == m {print $2}'; }
api POST /v1/queues/pa/pause >/dev/null || it_bail "pause"
ok "the agent reports pa paused" it_wait_for 10 '[[ $(gauge pa) == 1 ]]'
is "$(gauge pb)" 0 "and pb not paused"
api POST /v1/tasks '[{"kind":"noop","queue":"pa"},{"kind":"noop","queue":"pa","priority":3},{"kind":"noop","queue":"pa","priority":-3}]' >/dev/null
api POST /v1/tasks '[{"kind":"noop","queue":"pb"},{"kind":"noop","queue":"pb"}]' >/dev/null
ok "the other queue's tasks run" it_wait_sql 10 "SELECT count(*) FROM tasks WHERE queue='pb' AND state='succeeded'" 2
sleep 3
is "$(it_psql "SELECT string_agg(DISTINCT state, ',') || ' ' || count(*) FROM tasks WHERE queue='pa'")" "queued 3" \
    "3 s later the paused queue's tasks (every level) are still queued"
is "$(it_psql "SELECT count(*) FROM task_attempts a JOIN tasks t ON t.id = a.task_id WHERE t.queue='pa'")" 0 \
    "and none was started"
api POST /v1/queues/pa/resume >/dev/null
ok "resumed: they run at once" it_wait_sql 5 "SELECT count(*) FROM tasks WHERE queue='pa' AND state='succeeded'" 3
is "$(gauge pa)" 0 "the gauge says running again"
it_done
