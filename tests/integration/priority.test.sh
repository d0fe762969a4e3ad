#!/usr/bin/env bash
# Priorities on the agent: 10 high tasks submitted behind 10,000 low ones (the
# queue paused while they are pushed) all start before the 50th low one, judged
# from task_attempts.started_at; a retried high task goes back to the high stream.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
it_start_manager || it_bail "start manager"
api() { curl -sf -X "$1" -H "Authorization: Bearer $DEVSYS_TOKEN" "$DEVSYS_URL$2" ${3:+-d "$3"}; }
it_start_agent a1 DEVSYS_QUEUES=pri DEVSYS_CONCURRENCY=4
api POST /v1/queues/pri/pause >/dev/null || it_bail "pause"
jq -nc '[range(0;1000) | {kind:"sleep", queue:"pri", priority:-5, sleep:{ms:20}}]' >"$IT_DIR/low.json"
for _ in $(seq 10); do api POST /v1/tasks "@$IT_DIR/low.json" >/dev/null || it_bail "submit low"; done
high=$(jq -nc '[range(0;10) | {kind:"sleep", queue:"pri", priority:5, sleep:{ms:20}}]')
api POST /v1/tasks "$high" >/dev/null || it_bail "submit high"
is "$(it_redis XLEN 'devsys:{pri}:stream:low') $(it_redis XLEN 'devsys:{pri}:stream:high')" "10000 10" \
    "10,000 low and 10 high queued"
api POST /v1/queues/pri/resume >/dev/null
ok "the 10 high tasks succeed" it_wait_sql 60 "SELECT count(*) FROM tasks WHERE priority > 0 AND state='succeeded'" 10
ok "50 low tasks started" it_wait_sql 60 "SELECT (count(*) >= 50)::int FROM task_attempts a JOIN tasks t ON t.id = a.task_id WHERE t.priority < 0" 1
api POST /v1/queues/pri/pause >/dev/null
before=$(it_psql "SELECT count(*) FROM task_attempts a JOIN tasks t ON t.id = a.task_id WHERE t.priority > 0
                  AND a.started_at < (SELECT a2.started_at FROM task_attempts a2 JOIN tasks t2 ON t2.id = a2.task_id
                                      WHERE t2.priority < 0 ORDER BY a2.started_at OFFSET 49 LIMIT 1)")
is "$before" 10 "all 10 high tasks started before the 50th low one"

# ---- a retried high task stays high (the promote script reads the level off the spec)
it_start_agent a2 DEVSYS_QUEUES=prr DEVSYS_CONCURRENCY=2 DEVSYS_RETRY_INITIAL_S=0.5 DEVSYS_RETRY_JITTER=0
id=$(api POST /v1/tasks '{"kind":"sleep","queue":"prr","priority":9,"sleep":{"ms":0,"fail_first":1}}' | jq -r '.tasks[0].id')
ok "the high task fails once and then succeeds" it_wait_state 30 "$id" succeeded
is "$(it_psql "SELECT attempt FROM tasks WHERE id='$id'")" 2 "on attempt 2"
is "$(it_redis XRANGE 'devsys:{prr}:stream:high' - + | grep -c "^$id\$")" 2 \
    "both attempts came from the high stream (the retry was promoted there)"
is "$(it_redis XLEN 'devsys:{prr}:stream')" 0 "nothing landed on the normal stream"
it_done
