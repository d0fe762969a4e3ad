#!/usr/bin/env bash
# End to end with real probes (kind monitor, run by a real agent on queue
# monitor): a monitored HTTP endpoint on loopback that goes down (500) opens
# exactly one incident and one follow-up task, which runs, and the webhook
# receiver (deploy/examples/webhook_receiver.py) gets incident.opened; when it
# is back the incident resolves (incident.resolved reaches the receiver).
# While it is open, the destination's repeat_interval_s (1 s here) reminds the
# receiver of it (incident.opened again, "repeat": 1, 2, ...); resolved, no more.
# Also, as checks: an unreachable host and a 100 MB response body each give a
# clear error on the check (GET /v1/monitors/NAME), and the agent lives on.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
# shellcheck source=tests/integration/notify_lib.sh
source "$(dirname "$0")/notify_lib.sh"
it_setup
SECRET=$(new_secret)
printf '{"ops": "%s"}\n' "$SECRET" >"$IT_DIR/secrets.json"
DEVSYS_CHECK_TICK_S=0.2 DEVSYS_NOTIFY_TICK_S=0.2 it_start_manager || it_bail "start manager"
mon() { curl -s -X "$1" -H "Authorization: Bearer $DEVSYS_TOKEN" "$DEVSYS_URL$2" ${3:+-d "$3"}; }

# A site on loopback: 200 "ok" while $IT_DIR/up exists, 500 otherwise.
touch "$IT_DIR/up"
python3 -c '
import http.server, os, sys
up = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = 200 if os.path.exists(up) else 500
        self.send_response(code); self.send_header("Content-Length", "2"); self.end_headers()
        self.wfile.write(b"ok" if code == 200 else b"no")
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()' "$IT_DIR/up" </dev/null >"$IT_DIR/site.port" 2>"$IT_DIR/site.log" 7>&- &
it_track_pid $!
# /big/100: 100 MiB of "x", no Content-Length (tests/integration/monitor_server.py)
python3 "$ds_root/tests/integration/monitor_server.py" </dev/null >"$IT_DIR/big.out" 2>"$IT_DIR/big.log" 7>&- &
it_track_pid $!
it_wait_for 10 '[[ -s $IT_DIR/site.port ]] && grep -q "listening on" "$IT_DIR/big.out"' || it_bail "start the targets"
port=$(cat "$IT_DIR/site.port")
big_port=$(grep -o 'listening on [0-9]*' "$IT_DIR/big.out" | cut -d' ' -f3)
start_receiver hook 0 --secret "$SECRET" || it_bail "start the webhook receiver"
it_start_agent a1 DEVSYS_QUEUES=monitor,fixes,notify DEVSYS_NOTIFY_SECRETS_FILE="$IT_DIR/secrets.json"
mon POST /v1/notifications/destinations "{\"name\":\"ops\",\"url\":\"${RECV_URL[hook]}\",\"secret_ref\":\"ops\",
  \"events\":[\"incident.opened\",\"incident.resolved\"],\"group_wait_s\":0,\"group_interval_s\":0,
  \"repeat_interval_s\":1}" >/dev/null

mon POST /v1/monitors "{\"name\":\"site\",\"interval_s\":1,\"failure_threshold\":3,\"success_threshold\":2,
  \"monitor\":{\"type\":\"http\",\"timeout_s\":2,\"url\":\"http://127.0.0.1:$port/\",\"body_regex\":\"^ok\"},
  \"follow_up\":{\"kind\":\"noop\",\"queue\":\"fixes\",\"name\":\"fix site\"}}" >/dev/null
# 192.0.2.1 (TEST-NET-1) is never routed: refused at once or never answered
mon POST /v1/monitors '{"name":"unreachable","interval_s":3600,
  "monitor":{"type":"http","timeout_s":1,"url":"http://192.0.2.1:81/"}}' >/dev/null
mon POST /v1/monitors "{\"name\":\"big\",\"interval_s\":3600,
  \"monitor\":{\"type\":\"http\",\"timeout_s\":10,\"url\":\"http://127.0.0.1:$big_port/big/100\"}}" >/dev/null
st() { mon GET "/v1/monitors/$1" | jq -r .state; }

ok "the site is ok" it_wait_for 20 '[[ $(st site) == ok ]]'
rm "$IT_DIR/up"
ok "down: the check goes failing" it_wait_for 20 '[[ $(st site) == failing ]]'
sleep 3 # more failed probes
is "$(it_psql "SELECT count(*) FROM incidents")" 1 "exactly one incident"
is "$(it_psql "SELECT count(*) FROM tasks WHERE queue = 'fixes'")" 1 "exactly one follow-up task"
ok "the follow-up runs" it_wait_sql 10 "SELECT state FROM tasks WHERE queue = 'fixes'" succeeded
is "$(mon GET /v1/monitors/site | jq -r .last_probe.error)" "GET http://127.0.0.1:$port/ answered 500, expected 2xx or 3xx" \
    "the failed probe's error is shown"
opened() { jq -s '[.[].body | select(.type == "incident.opened" and .data.check == "site" and .data.repeat == null)]
    | length' "$IT_DIR/recv-hook.jsonl" 2>/dev/null; }
ok "the webhook receiver got incident.opened, signed" it_wait_for 10 '[[ $(opened) == 1 ]]'
# reminders: "repeat" of each incident.opened the receiver got again, in order
repeats() { jq -r '.body | select(.type == "incident.opened" and .data.repeat != null) | .data.repeat' \
    "$IT_DIR/recv-hook.jsonl" 2>/dev/null | tr '\n' ' '; }
ok "still open after repeat_interval_s: the receiver is reminded (repeat 1, 2)" \
    it_wait_for 20 '[[ $(repeats) == "1 2 "* ]]'
is "$(jq -c 'select(.body.data.repeat == 1) | .body.data | [.incident, .check, .open_for_s >= 1, .last_error != null]' \
    "$IT_DIR/recv-hook.jsonl")" '[1,"site",true,true]' "a reminder names the incident, how long it is open and the last error"
gaps=$(it_psql "SELECT string_agg(round(extract(epoch FROM g)::numeric, 2)::text, ' ') FROM (
    SELECT at - lag(at) OVER (ORDER BY id) AS g FROM notify_events WHERE type = 'incident.opened') x WHERE g IS NOT NULL")
ok "reminders are at least repeat_interval_s apart (seconds: $gaps)" \
    awk -v g="$gaps" 'BEGIN { n = split(g, a, " "); for (i = 1; i <= n; i++) if (a[i] < 0.99) exit 1 }'
touch "$IT_DIR/up"
ok "back: the check is ok again" it_wait_for 20 '[[ $(st site) == ok ]]'
is "$(it_psql "SELECT resolution FROM incidents")" recovered "the incident is resolved"
is "$(mon GET "/v1/incidents?state=open" | jq '.incidents | length')" 0 "no open incident in the API"
resolved() { jq -s '[.[].body | select(.type == "incident.resolved" and .data.check == "site")] | length' \
    "$IT_DIR/recv-hook.jsonl" 2>/dev/null; }
ok "the webhook receiver got incident.resolved" it_wait_for 10 '[[ $(resolved) == 1 ]]'
is "$(it_psql "SELECT count(*) FROM incidents")/$(opened)" "1/1" "still one incident, one incident.opened"
nrem=$(it_psql "SELECT count(*) FROM notify_events WHERE type = 'incident.opened'")
sleep 2 # two repeat intervals
is "$(it_psql "SELECT count(*) FROM notify_events WHERE type = 'incident.opened'")" "$nrem" "resolved: no more reminders"

# ------------------------------------------------ clear errors on the check, no crash
doc=$(mon GET /v1/monitors/unreachable)
is "$(jq -c '[.last_probe.ok, .probes_24h]' <<<"$doc")" '[false,1]' "an unreachable host: the probe failed"
like "$(jq -r .last_probe.error <<<"$doc")" '^(GET http://192\.0\.2\.1:81/: |connect to 192\.0\.2\.1:81 )' \
    "  its error names the URL ($(jq -r .last_probe.error <<<"$doc"))"
doc=$(mon GET /v1/monitors/big)
is "$(jq -c '[.last_probe.ok, .last_probe.error]' <<<"$doc")" '[false,"body larger than 1048576 bytes (max_body_bytes)"]' \
    "a 100 MB body: a clear error on the check"
is "$(jq -r '.probes[0].error' <<<"$doc")" "body larger than 1048576 bytes (max_body_bytes)" "  in its probe history"
ok "the agent is still running" kill -0 "${AGENT_PIDS[a1]}"
is "$(it_psql "SELECT count(*) FROM tasks WHERE kind = 'monitor' AND state <> 'succeeded' AND finished_at IS NOT NULL")" 0 \
    "every probe task that ended succeeded (the probe ran)"
it_done
