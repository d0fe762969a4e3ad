#!/usr/bin/env bash
# No flooding, from real failing probes: 1,000 checks (DEVSYS_MONITOR_CHECKS,
# failure_threshold 1) probing a closed loopback port fail at once, open 1,000
# incidents and record 1,000 incident.opened events; a destination limited to
# 0.5 messages/s (burst 1) gets them as a few summaries whose counts add up to
# exactly 1,000 (printed), at least 2 s apart, no incident in two messages.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
# shellcheck source=tests/integration/notify_lib.sh
source "$(dirname "$0")/notify_lib.sh"
it_setup
N=1000
SECRET=$(new_secret)
printf '{"ops": "%s"}\n' "$SECRET" >"$IT_DIR/secrets.json"
closed=$(ds_free_port) || it_bail "a free port"
# the checks file: N tcp checks on a port nobody listens on
{
    echo "checks:"
    for ((i = 0; i < N; i++)); do
        printf '  - {name: down-%d, interval_s: 3600, failure_threshold: 1, monitor: {type: tcp, host: 127.0.0.1, port: %d, timeout_s: 2}}\n' \
            "$i" "$closed"
    done
} >"$IT_DIR/checks.yaml"
DEVSYS_MONITOR_CHECKS=$IT_DIR/checks.yaml DEVSYS_CHECK_TICK_S=0.2 DEVSYS_NOTIFY_TICK_S=0.2 it_start_manager \
    || it_bail "start manager"
ok "the manager loads the $N checks" it_wait_sql 30 "SELECT count(*) FROM checks" $N
start_receiver storm 0 --secret "$SECRET" || it_bail "start receiver"
ok "destination storm (0.5 msg/s, burst 1)" ctl notify add storm "${RECV_URL[storm]}" incident.opened \
    secret_ref=ops rate.per_s=0.5 rate.burst=1 group_wait_s=1 group_interval_s=1 max_listed=10
# the probes wait in the queue until an agent reads it: the burst starts here
it_start_agent a1 DEVSYS_QUEUES=monitor,notify DEVSYS_CONCURRENCY=200 DEVSYS_NOTIFY_SECRETS_FILE="$IT_DIR/secrets.json"

ok "$N probes fail and open $N incidents" it_wait_sql 60 "SELECT count(*) FROM incidents WHERE resolved_at IS NULL" $N
is "$(it_psql "SELECT count(*) FROM probe_results WHERE NOT ok")" $N "one failed probe per check"
like "$(it_psql "SELECT error FROM probe_results LIMIT 1")" "127\.0\.0\.1:$closed.*(refused|Connection)" \
    "  the probe's error: the port refuses"
is "$(it_psql "SELECT count(*) FROM notify_events WHERE type = 'incident.opened'")" $N "$N incident.opened events"
ok "every event is sent to storm" it_wait_sql 60 \
    "SELECT count(*) FROM notify_event_dest WHERE destination = 'storm' AND state = 'sent'" $N

counts=$(jq -r 'if .body.type == "summary" then .body.data.count else 1 end' "$IT_DIR/recv-storm.jsonl" | tr '\n' ' ')
msgs=$(received storm)
sum=$(events_covered storm)
it_diag "$N failing probes -> $N incident.opened events -> $msgs messages, counts: $counts= $sum"
is "$sum" $N "the summaries' counts add up to exactly $N"
span=$(it_psql "SELECT ceil(extract(epoch FROM max(at) - min(at))) FROM notify_events WHERE type = 'incident.opened'")
most=$(( 2 + ${span%.*} / 2 ))
it_diag "the events span ${span}s: at most $most messages"
ok "a burst of ${span}s becomes a few messages (1 to $most), not one per event" test "$msgs" -ge 1 -a "$msgs" -le "$most"
is "$(jq -r '.body | if .type == "summary" then .data.events[].data.incident else .data.incident end' \
    "$IT_DIR/recv-storm.jsonl" | sort | uniq -d | wc -l | tr -d ' ')" 0 "no incident is listed in two messages"
is "$(jq -s '[.[].body | select(.type == "summary") | select(.data.listed > 10 or .data.more != .data.count - .data.listed)] | length' \
    "$IT_DIR/recv-storm.jsonl")" 0 "each summary lists at most 10 incidents and counts the rest in more"
gaps=$(it_psql "SELECT string_agg(round(extract(epoch FROM g)::numeric, 2)::text, ' ') FROM (
    SELECT created_at - lag(created_at) OVER (ORDER BY created_at) AS g FROM notify_deliveries
    WHERE destination = 'storm') x WHERE g IS NOT NULL")
it_diag "seconds between messages: ${gaps:-none}"
ok "messages are at least 2 s apart (token bucket 0.5/s, burst 1)" \
    awk -v g="$gaps" 'BEGIN { n = split(g, a, " "); for (i = 1; i <= n; i++) if (a[i] < 1.95) exit 1 }'
it_done
