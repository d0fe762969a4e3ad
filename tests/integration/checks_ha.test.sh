#!/usr/bin/env bash
# Two managers probing the same 20 checks (every 1 s) for about 8 s: each
# interval of a check gets one probe task, not one per manager (count per
# check against the elapsed intervals, no two probes of a check less than
# half an interval apart), and both managers made probes. Then retention:
# probe results past DEVSYS_RETENTION_PROBES_S and incidents resolved past
# DEVSYS_RETENTION_INCIDENTS_S are deleted in bounded batches, recent ones
# and open incidents stay.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
export DEVSYS_CHECK_TICK_S=0.2 DEVSYS_RETENTION_S=1 DEVSYS_RETENTION_BATCH=1000
export DEVSYS_RETENTION_PROBES_S=86400 DEVSYS_RETENTION_INCIDENTS_S=86400
it_start_manager || it_bail "start manager A"
A_URL=$DEVSYS_URL
DEVSYS_LISTEN=127.0.0.1:0 "$BIN/manager/devsys-manager" </dev/null >>"$IT_DIR/manager-b.log" 2>&1 7>&- &
B_PID=$!
it_track_pid "$B_PID"
addr=$(ds_bound_addr "$IT_DIR/manager-b.log" "$B_PID" listening) || it_bail "start manager B"
B_URL=http://$addr

for i in $(seq -w 1 20); do
    curl -s -o /dev/null -X POST -H "Authorization: Bearer $DEVSYS_TOKEN" "$A_URL/v1/monitors" \
        -d "{\"name\":\"c$i\",\"interval_s\":1,\"monitor\":{\"type\":\"tcp\",\"host\":\"127.0.0.1\",\"port\":9}}"
done
is "$(it_psql "SELECT count(*) FROM checks")" 20 "20 checks every 1 s"

# A stand-in for the agents: every 0.1 s the probes waiting are recorded ok.
start=$(it_psql "SELECT extract(epoch FROM now())")
deadline=$(( $(ds_now_ms) + 8000 ))
while (( $(ds_now_ms) < deadline )); do
    it_psql "UPDATE tasks SET state = 'succeeded', attempt = 1, finished_at = now(),
             result = '{\"ok\": true, \"latency_ms\": 1, \"error\": null, \"type\": \"tcp\"}'
             WHERE kind = 'monitor' AND state = 'queued'" >/dev/null
    sleep 0.1
done
elapsed=$(it_psql "SELECT round(extract(epoch FROM now()) - $start)::int")
it_psql "UPDATE checks SET next_due_at = now() + interval '1 day'" >/dev/null # no more probes
sleep 0.5 # a pass in flight lands
counts=$(it_psql "SELECT min(n) || ' ' || max(n) FROM (SELECT count(*) AS n FROM tasks WHERE kind = 'monitor'
                  GROUP BY spec->'monitor'->>'check') x")
it_diag "probes per check over ${elapsed}s: min/max $counts"
read -r min max <<<"$counts"
ok "no check got more probes than intervals elapsed ($max <= $((elapsed + 2)))" test "$max" -le $((elapsed + 2))
ok "each check was probed on schedule ($min >= $((elapsed - 3)))" test "$min" -ge $((elapsed - 3))
gap=$(it_psql "SELECT round(min(d)::numeric, 2) FROM (SELECT extract(epoch FROM created_at - lag(created_at)
               OVER (PARTITION BY spec->'monitor'->>'check' ORDER BY created_at)) AS d FROM tasks WHERE kind = 'monitor') x")
it_diag "smallest gap between two probes of one check: ${gap}s"
ok "no two probes of a check less than half an interval apart" awk -v g="$gap" 'BEGIN { exit !(g >= 0.5) }'
made() { curl -s "$1/metrics" | awk '$1 == "devsys_check_probes_total" { print int($2) }'; }
a=$(made "$A_URL") b=$(made "$B_URL")
it_diag "probes made by manager A: $a, by manager B: $b"
ok "both managers made probes" test "${a:-0}" -gt 0 -a "${b:-0}" -gt 0
is "$((a + b))" "$(it_psql "SELECT count(*) FROM tasks WHERE kind = 'monitor'")" "their counts add up to the probe tasks"
is "$(it_psql "SELECT count(*) FROM probe_results")" "$(it_psql "SELECT count(*) FROM tasks WHERE kind = 'monitor' AND state = 'succeeded'")" \
    "one probe result per finished probe"

# ------------------------------------------------ retention
it_psql "INSERT INTO probe_results (check_name, at, ok) SELECT 'c01', now() - interval '2 days', true
         FROM generate_series(1, 2500)" >/dev/null
it_psql "INSERT INTO incidents (check_name, opened_at, resolved_at, resolution, failures) VALUES
         ('c01', now() - interval '3 days', now() - interval '2 days', 'recovered', 3),
         ('c02', now() - interval '3 days', now() - interval '1 hour', 'recovered', 3),
         ('c03', now() - interval '3 days', NULL, NULL, 3)" >/dev/null
recent=$(it_psql "SELECT count(*) FROM probe_results WHERE at > now() - interval '1 day'")
ok "old probe results are deleted" it_wait_sql 20 \
    "SELECT count(*) FROM probe_results WHERE at < now() - interval '1 day'" 0
ok "recent ones stay" test "$(it_psql "SELECT count(*) FROM probe_results WHERE at > now() - interval '1 day'")" -ge "$recent"
is "$(it_psql "SELECT string_agg(check_name, ',' ORDER BY check_name) FROM incidents")" "c02,c03" \
    "the incident resolved 2 days ago is deleted; recent and open ones stay"
logs=$(cat "$IT_DIR/manager.log" "$IT_DIR/manager-b.log")
like "$logs" 'retention: checks: 1000 probe results' "in batches of DEVSYS_RETENTION_BATCH"
it_done
