#!/usr/bin/env bash
# The manager's reconciler: Redis loses everything (FLUSHALL, restart) or one
# entry, and every task PostgreSQL knows still runs; dead letters come back
# into their DLQ; nothing is published twice, even by two managers.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
export DEVSYS_RECONCILE_S=1 DEVSYS_REPUBLISH_AFTER_S=2
it_start_manager || it_bail "start manager"
metric() { # metric 'name{labels}': its value on this manager, 0 if absent
    curl -s "${2:-$DEVSYS_URL}/metrics" | awk -v m="$1" '$1 == m { v = $2 } END { print v + 0 }'
}
republished() { metric 'devsys_reconciler_republished_total{reason="'"$1"'"}' "${2:-}"; }
S='devsys:{exec}:stream'
DLQ='devsys:{exec}:dlq'

# ---- FLUSHALL with 30 queued tasks and no agent yet
batch=$(jq -nc '[range(0;30) | {kind:"exec", command:["true"], name:("t" + tostring)}]')
ctl submit - <<<"$batch" >"$IT_DIR/ids" || it_bail "submit"
is "$(wc -l <"$IT_DIR/ids")" 30 "30 tasks submitted"
is "$(it_redis XLEN "$S")" 30 "all 30 are on the stream"
sleep 3 # past DEVSYS_REPUBLISH_AFTER_S: the reconciler looks, and must leave them alone
is "$(it_redis XLEN "$S")/$(republished queued)" 30/0 "entries still there: nothing republished"
it_redis FLUSHALL >/dev/null
is "$(it_redis XLEN "$S")" 0 "FLUSHALL emptied the stream"
it_start_agent a1 DEVSYS_QUEUES=exec
ok "all 30 tasks succeed after the reconciler republished them" \
    it_wait_sql 30 "SELECT count(*) FROM tasks WHERE state = 'succeeded'" 30
is "$(republished queued)" 30 "each was republished exactly once (metric)"
like "$(grep 'reconciler: republished' "$IT_DIR/manager.log" | head -1)" '30 queued' "the pass is logged"
is "$(it_psql "SELECT count(*) FROM tasks WHERE published_at IS NULL")" 0 "published_at recorded"

# ---- one lost entry in a stream that lives on: trimmed away, newer entries behind it
it_stop_agent a1
lost=$(ctl submit - <<<'{"kind":"exec","command":["true"],"name":"lost"}')
sleep 3.5
# counted before the trim: the next pass may republish it at once (slow builds)
before=$(republished queued)
it_redis XTRIM "$S" MAXLEN 0 >/dev/null
newer=$(ctl submit - <<<'{"kind":"exec","command":["true"],"name":"newer"}')
ok "the trimmed task is republished (stream's first entry is newer than its publish)" \
    it_wait_for 10 '[[ $(republished queued) -ge $((before + 1)) ]]'
sleep 3
is "$(republished queued)" $((before + 1)) "only it: the task whose entry is still there is left alone"
is "$(it_redis XLEN "$S")" 2 "stream holds 'newer' and the republished 'lost'"
it_start_agent a1 DEVSYS_QUEUES=exec
ok "both succeed" it_wait_sql 20 "SELECT count(*) FROM tasks WHERE id IN ('$lost', '$newer') AND state='succeeded'" 2

# ---- a retry whose delayed entry was lost, a running task whose agent vanished
it_stop_agent a1
it_psql "INSERT INTO tasks (id, queue, kind, spec, state, attempt, next_attempt_at)
         VALUES ('00000000-0000-7000-8000-000000000001', 'exec', 'exec',
                 '{\"kind\":\"exec\",\"command\":[\"true\"]}', 'retrying', 1, now() - interval '10 seconds');
         INSERT INTO tasks (id, queue, kind, spec, state, attempt, lease_owner, lease_expires_at, started_at)
         VALUES ('00000000-0000-7000-8000-000000000002', 'exec', 'exec',
                 '{\"kind\":\"exec\",\"command\":[\"true\"]}', 'running', 1, 'ghost',
                 now() - interval '10 seconds', now() - interval '30 seconds')" >/dev/null
ok "both are republished" it_wait_for 10 '[[ $(republished retrying)/$(republished running) == 1/1 ]]'
sleep 3
is "$(republished retrying)/$(republished running)" 1/1 \
    "no agent yet: not again while the republished entries are still on the stream"
is "$(it_redis XRANGE "$S" - + | grep -a -c -E '^00000000-0000-7000-8000-00000000000[12]$')" 2 "one entry each"
it_start_agent a1 DEVSYS_QUEUES=exec
ok "overdue retry (no delayed entry anywhere) runs" \
    it_wait_sql 20 "SELECT state FROM tasks WHERE id='00000000-0000-7000-8000-000000000001'" succeeded
ok "running task with a long-expired lease runs again" \
    it_wait_sql 20 "SELECT state FROM tasks WHERE id='00000000-0000-7000-8000-000000000002'" succeeded
is "$(republished retrying)/$(republished running)" 1/1 "counted once each by reason"

# ---- dead tasks whose DLQ entries are gone come back, with their fields
it_psql "INSERT INTO tasks (id, queue, kind, spec, state, attempt, max_attempts, last_error, finished_at,
                            lease_owner, source, dlq_purged_at)
         SELECT ('00000000-0000-7000-8000-00000000010' || n)::uuid, 'exec', 'exec',
                jsonb_build_object('kind', 'exec', 'command', jsonb_build_array('sh', '-c', 'exit ' || n)),
                'dead', 3, 3, 'exit status ' || n, '2026-01-02 03:04:05+00', 'agent-' || n,
                CASE WHEN n = 2 THEN '1700000000000-0' END,
                CASE WHEN n = 4 THEN now() END
         FROM generate_series(1, 4) n" >/dev/null
ok "three dead, not purged tasks reappear in the DLQ" it_wait_for 10 '[[ $(it_redis XLEN "$DLQ") == 3 ]]'
sleep 1
fields=$(it_redis XRANGE "$DLQ" - + | paste -sd' ')
for n in 1 2 3; do
    like "$fields" "id 00000000-0000-7000-8000-00000000010$n kind exec queue exec attempts 3 error exit status $n failed_at 2026-01-02T03:04:05Z agent agent-$n source (1700000000000-0)? spec \{\"kind\":\"exec\",\"command\":\[\"sh\",\"-c\",\"exit $n\"\]\}" \
        "dead letter $n has id, kind, queue, attempts, error, failed_at, agent, source, spec"
done
like "$fields" 'source 1700000000000-0' "the hand-pushed source entry id is kept"
is "$(it_psql "SELECT count(*) FROM tasks WHERE state='dead' AND dlq_entry IS NOT NULL")" 3 \
    "tasks.dlq_entry records the new entries"
is "$(it_psql "SELECT dlq_entry IS NULL FROM tasks WHERE id='00000000-0000-7000-8000-000000000104'")" t \
    "a purged dead letter is not restored"
middle=$(it_psql "SELECT dlq_entry FROM tasks WHERE id='00000000-0000-7000-8000-000000000102'")
it_redis XDEL "$DLQ" "$middle" >/dev/null
ok "an entry deleted by hand from the middle of the DLQ is restored" \
    it_wait_sql 10 "SELECT dlq_entry <> '$middle' FROM tasks WHERE id='00000000-0000-7000-8000-000000000102'" t
sleep 3
is "$(it_redis XLEN "$DLQ")" 3 "no duplicates after more passes"
is "$(metric devsys_reconciler_dlq_restored_total)" 4 "restored counter: 3 + 1"

# ---- Redis restarted empty while the manager runs; two managers reconcile at once
it_stop_agent a1
DEVSYS_LISTEN=127.0.0.1:0 "$BIN/manager/devsys-manager" </dev/null >>"$IT_DIR/manager2.log" 2>&1 7>&- &
it_track_pid $!
second_addr=$(ds_bound_addr "$IT_DIR/manager2.log" $! listening) || it_bail "second manager"
second_port=${second_addr##*:}
ds_wait_http "http://127.0.0.1:$second_port/healthz" 20 || it_bail "second manager"
batch=$(jq -nc '[range(0;300) | {kind:"exec", command:["true"]}]')
ctl submit - <<<"$batch" >/dev/null || it_bail "submit 300"
q0=$(( $(republished queued) + $(republished queued "http://127.0.0.1:$second_port") ))
it_restart_redis || it_bail "restart redis"
ok "both managers reconnect and the 300 come back" it_wait_for 20 '[[ $(it_redis XLEN "$S") -ge 300 ]]'
sleep 4
is "$(it_redis XLEN "$S")" 300 "exactly 300 entries: no task published by both managers"
q1=$(( $(republished queued) + $(republished queued "http://127.0.0.1:$second_port") ))
is "$((q1 - q0))" 300 "the two managers' counters add up to 300"
ok "dead letters restored after the restart too" it_wait_for 10 '[[ $(it_redis XLEN "$DLQ") == 3 ]]'
it_start_agent a2 DEVSYS_QUEUES=exec DEVSYS_CONCURRENCY=16
ok "all tasks reach succeeded" \
    it_wait_sql 60 "SELECT count(*) FROM tasks WHERE state NOT IN ('succeeded', 'dead')" 0
is "$(curl -s "$DEVSYS_URL/metrics" | grep -c '^devsys_reconciler_passes_total [1-9]')" 1 \
    "passes are counted in /metrics"
it_done
