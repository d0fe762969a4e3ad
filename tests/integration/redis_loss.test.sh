#!/usr/bin/env bash
# Redis loses everything mid-run — FLUSHALL, then a restart without persistence —
# and every accepted task still ends in its final state, recorded once: agents
# recreate the consumer group, the manager's reconciler republishes what
# PostgreSQL says is due and rebuilds the dead-letter stream.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
DEVSYS_RECONCILE_S=1 DEVSYS_REPUBLISH_AFTER_S=2 it_start_manager || it_bail "start manager"
common=(DEVSYS_QUEUES=sleep DEVSYS_CONCURRENCY=10 DEVSYS_LEASE_S=3 DEVSYS_CLAIM_PERIOD_S=1)
it_start_agent a1 "${common[@]}"
it_start_agent a2 "${common[@]}"
FINAL="('succeeded','failed','dead','cancelled')"

# batch NAME: 120 plain sleeps of 300 ms, 25 that fail once then succeed after
# 1 s (so some wait in the delayed set when Redis is lost), 5 that always
# fail (max 2 attempts). Prints the ids.
batch() {
    jq -nc --arg n "$1" '
      [range(0; 120) | {kind: "sleep", name: $n, sleep: {ms: 300}}] +
      [range(0; 25) | {kind: "sleep", name: $n, sleep: {ms: 100, fail_first: 1},
                       retry_policy: {max_attempts: 5, initial_s: 1, factor: 1, jitter: false}}] +
      [range(0; 5) | {kind: "sleep", name: $n, sleep: {ms: 100, fail_always: true},
                      retry_policy: {max_attempts: 2, initial_s: 0.5, factor: 1, jitter: false}}]' \
        | ctl submit -
}
# check_phase NAME: every task of the phase final and recorded once.
check_phase() {
    local n=$1 w="spec->>'name'='$1'"
    ok "$n: every task reaches a final state" it_wait_all_final 90 20 "$w"
    is "$(it_psql "SELECT string_agg(state || '=' || c, ' ' ORDER BY state)
              FROM (SELECT state, count(*) c FROM tasks WHERE $w GROUP BY state) x")" \
        "dead=5 succeeded=145" "$n: 145 succeeded, the 5 always-failing dead"
    is "$(it_psql "SELECT count(*) FROM tasks t WHERE $w AND state='succeeded' AND
              (SELECT count(*) FROM task_attempts a WHERE a.task_id=t.id AND outcome='succeeded') <> 1")" 0 \
        "$n: every succeeded task has exactly one succeeded attempt row"
    is "$(it_psql "SELECT count(*) FROM task_attempts a JOIN tasks t ON t.id=a.task_id
              WHERE $w AND a.outcome='succeeded' AND t.state <> 'succeeded'")" 0 \
        "$n: no succeeded attempt row for a task that did not succeed"
    it_diag "$n: $(it_psql "SELECT count(*) FROM task_attempts a JOIN tasks t ON t.id=a.task_id WHERE $w") attempt rows," \
        "$(it_psql "SELECT count(*) FROM task_attempts a JOIN tasks t ON t.id=a.task_id WHERE $w AND outcome='lost'") lost"
}
# dlq_matches: the sleep DLQ stream holds each dead task exactly once.
dlq_matches() {
    local want got
    want=$(it_psql "SELECT id FROM tasks WHERE state='dead' ORDER BY id")
    got=$(it_dlq sleep | jq -r '.[].id' | sort)
    [[ -n $want && $want == "$got" ]]
}
dlq_diff() {
    it_diag "dead in PostgreSQL: $(it_psql "SELECT count(*) FROM tasks WHERE state='dead'")," \
        "ids in the DLQ stream: $(it_dlq sleep | jq -r '.[].id' | tr '\n' ' ')"
}

# ---------------------------------------------------------------- FLUSHALL
ids=$(batch flush)
is "$(wc -l <<<"$ids")" 150 "150 tasks accepted"
ok "some tasks done before the flush" it_wait_sql 30 \
    "SELECT count(*) >= 30 FROM tasks WHERE spec->>'name'='flush' AND state='succeeded'" t
left=$(it_psql "SELECT count(*) FROM tasks WHERE spec->>'name'='flush' AND state NOT IN $FINAL")
is "$(it_redis FLUSHALL)" OK "FLUSHALL"
it_diag "$left tasks were not final at the flush"
ok "the flush hit a run in progress" test "$left" -gt 0
check_phase flush
ok "the DLQ stream lost to the flush is rebuilt from PostgreSQL" it_wait_for 15 dlq_matches || dlq_diff

# -------------------------------------------------- restart without persistence
ids=$(batch restart)
is "$(wc -l <<<"$ids")" 150 "150 more tasks accepted"
ok "some tasks done before the restart" it_wait_sql 30 \
    "SELECT count(*) >= 30 FROM tasks WHERE spec->>'name'='restart' AND state='succeeded'" t
left=$(it_psql "SELECT count(*) FROM tasks WHERE spec->>'name'='restart' AND state NOT IN $FINAL")
ds_stop_redis "$REDIS_PID"
# Submissions while Redis is down: whatever the manager accepts must run later.
down_ids=$(jq -nc '[range(0; 5) | {kind: "sleep", name: "down", sleep: {ms: 10}}]' | ctl submit - 2>"$IT_DIR/down.err")
it_diag "while Redis was down the manager accepted $(grep -c . <<<"$down_ids") of 5 tasks" \
    "$(head -c 300 "$IT_DIR/down.err")"
sleep 1
ok "redis-server restarted empty" ds_start_redis "$IT_DIR/redis" "$REDIS_PORT"
it_diag "$left tasks were not final at the restart"
is "$(it_redis DBSIZE)" 0 "the restarted Redis holds nothing"
check_phase restart
ok "the DLQ stream is rebuilt again: every dead task of both runs, once" it_wait_for 15 dlq_matches ||
    dlq_diff
if [[ -n $down_ids ]]; then
    ok "tasks accepted while Redis was down succeed" it_wait_sql 30 \
        "SELECT count(*) FROM tasks WHERE spec->>'name'='down' AND state <> 'succeeded'" 0
fi

# ---------------------------------------------------------------- afterwards
ids=$(jq -nc '[range(0; 20) | {kind: "sleep", name: "after", sleep: {ms: 10}}]' | ctl submit -)
ok "new tasks after the restart succeed" it_wait_sql 30 \
    "SELECT count(*) FROM tasks WHERE spec->>'name'='after' AND state='succeeded'" 20
is "$(it_psql "SELECT count(*) FROM (SELECT task_id FROM task_attempts WHERE outcome='succeeded'
                                GROUP BY task_id HAVING count(*) > 1) x")" 0 "no task succeeded twice"
is "$(it_psql "SELECT count(*) FROM tasks WHERE state NOT IN $FINAL")" 0 "no task left behind"
ok "agents survived" kill -0 "${AGENT_PIDS[a1]}" "${AGENT_PIDS[a2]}"
ok "manager survived" kill -0 "$MANAGER_PID"
it_done
