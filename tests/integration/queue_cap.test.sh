#!/usr/bin/env bash
# Concurrency cap across agents: queue capped at 3, three agents of
# concurrency 4, 30 sleep tasks of 300 ms. From the recorded attempt
# intervals (not the wall clock): never more than 3 at once, and 3 reached.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
it_start_manager || it_bail "start manager"
api() { curl -sf -X "$1" -H "Authorization: Bearer $DEVSYS_TOKEN" "$DEVSYS_URL$2" ${3:+-d "$3"}; }
api PATCH /v1/queues/cq/settings '{"concurrency":3}' >/dev/null || it_bail "set cap"
for a in c1 c2 c3; do it_start_agent $a DEVSYS_QUEUES=cq DEVSYS_CONCURRENCY=4; done
sleep 1
api POST /v1/tasks "$(jq -nc '[range(0;30) | {kind:"sleep", queue:"cq", sleep:{ms:300}}]')" >/dev/null
ok "all 30 succeed" it_wait_sql 60 "SELECT count(*) FROM tasks WHERE queue='cq' AND state='succeeded'" 30
peak=$(it_psql "WITH ev AS (SELECT started_at AS t, 1 AS d FROM task_attempts
                UNION ALL SELECT finished_at, -1 FROM task_attempts)
                SELECT max(c) FROM (SELECT sum(d) OVER (ORDER BY t, d) AS c FROM ev) x")
is "$peak" 3 "at most 3 ran at once, and 3 did (peak $peak)"
is "$(it_psql "SELECT count(DISTINCT agent) FROM task_attempts")" 3 "all three agents took part"
is "$(it_redis ZCARD 'devsys:{cq}:running')" 0 "every slot was given back"
it_done
