#!/usr/bin/env bash
# PostgreSQL goes away mid-run — a fast restart, then an outage longer than the
# lease — on a private cluster (the runner's shared one must never restart):
# agents keep running their tasks, hold the outcomes and write them when the
# server is back. No outcome is lost, none is written twice.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
it_private_postgres || it_bail "private PostgreSQL cluster"
DEVSYS_RECONCILE_S=1 DEVSYS_REPUBLISH_AFTER_S=2 it_start_manager || it_bail "start manager"
common=(DEVSYS_QUEUES=sleep DEVSYS_CONCURRENCY=25 DEVSYS_LEASE_S=3 DEVSYS_CLAIM_PERIOD_S=1)
it_start_agent a1 "${common[@]}"
it_start_agent a2 "${common[@]}"
FINAL="('succeeded','failed','dead','cancelled')"

# run_phase NAME OUTAGE: 200 sleeps of 1.5 s on 50 slots (about 6 s of work);
# once 40 are done, PostgreSQL restarts (OUTAGE=restart) or is down for
# OUTAGE seconds. Then every task must succeed with one success row.
run_phase() {
    local n=$1 outage=$2 w="spec->>'name'='$1'" ids left inflight t0 t1
    ids=$(jq -nc --arg n "$n" '[range(0; 200) | {kind: "sleep", name: $n, sleep: {ms: 1500}}]' | ctl submit -)
    is "$(grep -c . <<<"$ids")" 200 "$n: 200 tasks accepted"
    ok "$n: 40 done before the outage" \
        it_wait_sql 30 "SELECT count(*) >= 40 FROM tasks WHERE $w AND state='succeeded'" t
    left=$(it_psql "SELECT count(*) FROM tasks WHERE $w AND state NOT IN $FINAL")
    inflight=$(it_psql "SELECT count(*) FROM tasks WHERE $w AND state='running'")
    t0=$(ds_now_ms)
    if [[ $outage == restart ]]; then
        ok "$n: pg_ctl restart -m fast" it_private_postgres_ctl restart
    else
        ok "$n: pg_ctl stop -m fast" it_private_postgres_ctl stop
        sleep "$outage"
        ok "$n: PostgreSQL started again" it_private_postgres_ctl start
    fi
    t1=$(ds_now_ms)
    it_diag "$n: server away for $((t1 - t0)) ms; $left tasks not final, $inflight running when it went"
    ok "$n: the outage hit a run in progress" test "$left" -gt 0
    ok "$n: every task reaches a final state" it_wait_all_final 90 20 "$w"
    is "$(it_psql "SELECT count(*) FROM tasks WHERE $w AND state='succeeded'")" 200 "$n: all 200 succeeded"
    is "$(it_psql "SELECT count(*) FROM tasks t WHERE $w AND
              (SELECT count(*) FROM task_attempts a WHERE a.task_id=t.id AND outcome='succeeded') <> 1")" 0 \
        "$n: every task has exactly one succeeded attempt row"
    is "$(it_psql "SELECT count(*) FROM tasks WHERE $w AND (result IS NULL OR finished_at IS NULL)")" 0 \
        "$n: every task has its result and finish time"
    it_diag "$n: $(it_psql "SELECT count(*) FROM task_attempts a JOIN tasks t ON t.id=a.task_id WHERE $w") attempt rows," \
        "$(it_psql "SELECT count(*) FROM task_attempts a JOIN tasks t ON t.id=a.task_id WHERE $w AND outcome='lost'") lost," \
        "$(it_psql "SELECT count(*) FROM tasks WHERE $w AND attempt > 1") tasks ran more than once"
}

run_phase restart restart
run_phase outage 7     # over twice the 3 s lease

ok "agents survived both outages" kill -0 "${AGENT_PIDS[a1]}" "${AGENT_PIDS[a2]}"
ok "manager survived both outages" kill -0 "$MANAGER_PID"
ids=$(jq -nc '[range(0; 10) | {kind: "sleep", name: "after", sleep: {ms: 10}}]' | ctl submit -)
ok "new tasks afterwards succeed" it_wait_sql 30 \
    "SELECT count(*) FROM tasks WHERE spec->>'name'='after' AND state='succeeded'" 10
is "$(it_psql "SELECT count(*) FROM (SELECT task_id FROM task_attempts WHERE outcome='succeeded'
                                GROUP BY task_id HAVING count(*) > 1) x")" 0 "no task succeeded twice"
is "$(it_redis XPENDING 'devsys:{sleep}:stream' agents | head -n 1)" 0 "nothing left pending in the consumer group"
it_done
