#!/usr/bin/env bash
# An agent killed with -9 and restarted under the same name takes its own
# pending entries back at once (no waiting for the lease), each task recorded
# once, the vanished attempts recorded as lost.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
it_start_manager || it_bail "start manager"
it_start_agent a1 DEVSYS_QUEUES=sleep DEVSYS_CONCURRENCY=10 DEVSYS_LEASE_S=60
batch=$(jq -nc '[range(0;10) | {kind:"sleep", sleep:{ms:3000}}]')
curl -sf -X POST -H "Authorization: Bearer $DEVSYS_TOKEN" "$DEVSYS_URL/v1/tasks" -d "$batch" >/dev/null
ok "10 tasks running on a1" it_wait_sql 20 "SELECT count(*) FROM tasks WHERE state='running'" 10
it_stop_agent a1 KILL
it_start_agent a1 DEVSYS_QUEUES=sleep DEVSYS_CONCURRENCY=10 DEVSYS_LEASE_S=60
# well before the 60 s lease could expire
ok "all 10 succeed after the restart" it_wait_sql 20 "SELECT count(*) FROM tasks WHERE state='succeeded'" 10
is "$(it_psql "SELECT count(*) FROM task_attempts WHERE outcome='lost'")" 10 "the killed attempts are recorded as lost"
is "$(it_psql "SELECT count(*) FROM (SELECT task_id FROM task_attempts WHERE outcome='succeeded'
               GROUP BY task_id HAVING count(*) = 1) x")" 10 "each task succeeded exactly once"
is "$(it_psql "SELECT min(attempt) || '-' || max(attempt) FROM tasks")" "2-2" "each ran a second attempt"
it_done
