#!/usr/bin/env bash
# 200 sleep tasks at concurrency 50 on one agent run overlapped: judged from the
# recorded attempt intervals, never from the wall clock.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
it_start_manager || it_bail "start manager"
it_start_agent a1 DEVSYS_QUEUES=sleep DEVSYS_CONCURRENCY=50
batch=$(jq -nc '[range(0;200) | {kind:"sleep", sleep:{ms:300}}]')
curl -sf -X POST -H "Authorization: Bearer $DEVSYS_TOKEN" "$DEVSYS_URL/v1/tasks" -d "$batch" >/dev/null
ok "all 200 sleep tasks succeed" it_wait_sql 60 "SELECT count(*) FROM tasks WHERE state='succeeded'" 200
# the largest number of attempts running at one instant
peak=$(it_psql "WITH ev AS (SELECT started_at AS t, 1 AS d FROM task_attempts
                UNION ALL SELECT finished_at, -1 FROM task_attempts)
                SELECT max(c) FROM (SELECT sum(d) OVER (ORDER BY t, d) AS c FROM ev) x")
ok "tasks overlapped (peak $peak running at once)" test "$peak" -gt 1
ok "never more than 50 at once (peak $peak)" test "$peak" -le 50
ok "concurrency was used (peak $peak >= 40)" test "$peak" -ge 40
is "$(it_psql "SELECT count(*) FROM task_attempts WHERE outcome='succeeded'")" 200 "one attempt row per task"
it_done
