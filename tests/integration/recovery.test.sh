#!/usr/bin/env bash
# Crash recovery: an agent killed with SIGKILL while holding 20 long tasks; a
# second agent takes every one of them over once their lease expired, and each
# task is recorded exactly once. A live agent keeps its tasks past the lease.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
it_start_manager || it_bail "start manager"
common=(DEVSYS_QUEUES=sleep DEVSYS_CONCURRENCY=20 DEVSYS_LEASE_S=3 DEVSYS_CLAIM_PERIOD_S=1)
it_start_agent a1 "${common[@]}"

ids=$(ctl submit - <<<"$(jq -nc '[range(0; 20) | {kind: "sleep", sleep: {ms: 8000}}]')")
is "$(wc -l <<<"$ids")" 20 "20 sleep tasks of 8 s submitted"
ok "a1 runs all 20 at once" \
    it_wait_sql 20 "SELECT count(*) FROM tasks WHERE state='running' AND lease_owner='a1'" 20

it_start_agent a2 "${common[@]}"
sleep 0.5   # (Redis 7.0 lists a consumer only once it was given an entry)
ok "a2 is up" kill -0 "${AGENT_PIDS[a2]}"
# Past the lease (3 s) plus a claim period while a2 watches: a1 is alive and
# renews its leases, so nothing may move.
sleep 4
is "$(it_psql "SELECT count(*) FROM tasks WHERE state='running' AND lease_owner='a1' AND attempt=1")" 20 \
    "4.5 s after a2 started (lease 3 s), a live a1 still holds all 20 (keep-alive)"
is "$(it_psql "SELECT count(*) FROM task_attempts WHERE agent='a2'")" 0 "a2 has started none of them"

kill_ms=$(ds_now_ms)
it_stop_agent a1 KILL
is "${AGENT_STATUS[a1]}" 137 "a1 killed with SIGKILL"

ok "all 20 tasks succeed after a1's death" \
    it_wait_sql 60 "SELECT count(*) FROM tasks WHERE state='succeeded'" 20
is "$(it_psql "SELECT count(*) FROM task_attempts WHERE outcome='succeeded'")" 20 \
    "20 succeeded attempt rows in all"
is "$(it_psql "SELECT count(*) FROM (SELECT task_id FROM task_attempts WHERE outcome='succeeded'
                                GROUP BY task_id HAVING count(*) = 1) x")" 20 \
    "each task has exactly one succeeded attempt row"
is "$(it_psql "SELECT count(*) FROM task_attempts WHERE outcome='succeeded' AND agent='a2' AND attempt=2")" 20 \
    "every success was recorded by a2, as attempt 2"
is "$(it_psql "SELECT count(*) FROM task_attempts WHERE agent='a1' AND attempt=1 AND outcome='lost'")" 20 \
    "a1's vanished attempts are recorded as lost"
is "$(it_psql "SELECT count(*) FROM tasks WHERE attempt=2 AND lease_owner IS DISTINCT FROM 'a1'")" 20 \
    "each task was claimed twice, last by a2"
first=$(it_psql "SELECT (extract(epoch FROM min(started_at)) * 1000)::bigint FROM task_attempts WHERE agent='a2'")
last=$(it_psql "SELECT (extract(epoch FROM max(started_at)) * 1000)::bigint FROM task_attempts WHERE agent='a2'")
if [[ $first =~ ^[0-9]+$ && $last =~ ^[0-9]+$ ]]; then
    it_diag "takeover delay: first start on a2 $((first - kill_ms)) ms after the kill," \
        "last $((last - kill_ms)) ms (lease 3 s, claim period 1 s)"
    ok "a2 started nothing before a1 died" test "$first" -ge "$kill_ms"
else
    ok "a2 started the tasks" false
fi
pending=$(it_redis XPENDING 'devsys:{sleep}:stream' agents | head -n 1)
is "$pending" 0 "nothing left pending in the consumer group"
ok "a2 still running" kill -0 "${AGENT_PIDS[a2]}"
it_done
