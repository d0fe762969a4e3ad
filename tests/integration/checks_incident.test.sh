#!/usr/bin/env bash
# A check's life, driven by probe outcomes recorded as an agent records them
# (a monitor task of the check going succeeded with its result): 3 failed
# probes make it failing and open exactly one incident, whose follow-up task
# is published and runs; more failures add none; 2 good probes resolve it
# (incident.opened and incident.resolved reach a subscribed destination); a
# silence mutes it (probes recorded, no incident, no follow-up, no event) and
# an incident opens on the first failure after the silence is lifted. Also:
# uptime, history paging, incidents in the API and the CLI, a log check's
# offset carried to its next probe.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
DEVSYS_CHECK_TICK_S=0.2 DEVSYS_NOTIFY_TICK_S=0 it_start_manager || it_bail "start manager"
it_start_agent a1 DEVSYS_QUEUES=fixes
api() { # api METHOD PATH [BODY]
    curl -s -X "$1" -H "Authorization: Bearer $DEVSYS_TOKEN" "$DEVSYS_URL$2" ${3:+-d "$3"}
}
api POST /v1/notifications/destinations \
    '{"name":"ops","url":"http://127.0.0.1:9/","events":["incident.opened","incident.resolved"]}' >/dev/null
events() { # events TYPE: how many the destination ops got
    api GET "/v1/notifications/events?destination=ops" | jq "[.events[] | select(.type == \"$1\")] | length"
}
api POST /v1/monitors '{"name":"web","interval_s":3600,"monitor":{"type":"http","url":"http://127.0.0.1:9/"},
  "follow_up":{"kind":"noop","queue":"fixes","name":"fix web"}}' >/dev/null

# probe CHECK ok|fail: a probe outcome of CHECK, recorded as a finished monitor task.
probe() {
    local result='{"ok": true, "latency_ms": 10, "error": null, "type": "http"}'
    [[ $2 == fail ]] && result='{"ok": false, "latency_ms": 30, "error": "HTTP 500 from http://127.0.0.1:9", "type": "http"}'
    it_psql "INSERT INTO tasks (id, queue, kind, spec, state, attempt, result, started_at, finished_at)
             VALUES (gen_random_uuid(), 'monitor', 'monitor',
                     '{\"kind\": \"monitor\", \"queue\": \"monitor\", \"monitor\": {\"type\": \"http\", \"check\": \"$1\"}}',
                     'succeeded', 1, '$result', now(), now())"
}
state() { api GET /v1/monitors/web | jq -r '[.state, .consecutive_failures, .consecutive_successes, .open_incident] | join(" ")'; }
follow_ups() { it_psql "SELECT count(*) FROM tasks WHERE queue = 'fixes'"; }

# the timer's first probe; its outcome recorded through an UPDATE, as an agent's is
ok "the timer creates web's first probe task" it_wait_sql 10 \
    "SELECT count(*) FROM tasks WHERE kind = 'monitor' AND spec->'monitor'->>'check' = 'web'" 1
first=$(it_psql "SELECT id FROM tasks WHERE kind = 'monitor' AND spec->'monitor'->>'check' = 'web'")
it_psql "UPDATE tasks SET state = 'succeeded', attempt = 1, finished_at = now(),
         result = '{\"ok\": false, \"latency_ms\": 30, \"error\": \"HTTP 500\", \"type\": \"http\"}' WHERE id = '$first'"
probe web fail
is "$(state)" "unknown 2 0 " "2 failed probes: not failing yet, no incident"
is "$(follow_ups)" 0 "no follow-up yet"
probe web fail
is "$(state)" "failing 3 0 1" "the 3rd failed probe: failing, incident 1 open"
is "$(it_psql "SELECT count(*) FROM incidents")" 1 "exactly one incident"
is "$(follow_ups)" 1 "exactly one follow-up task"
fid=$(it_psql "SELECT follow_up_task FROM incidents")
is "$(it_psql "SELECT id FROM tasks WHERE queue = 'fixes'")" "$fid" "the incident names its follow-up task"
ok "the follow-up is published and runs (well before the reconciler's 30 s)" it_wait_state 10 "$fid" succeeded
is "$(events incident.opened)" 1 "incident.opened reached the destination"
probe web fail
probe web fail
is "$(state)" "failing 5 0 1" "more failures: still failing, the same incident"
is "$(it_psql "SELECT count(*) FROM incidents")/$(follow_ups)/$(events incident.opened)" "1/1/1" \
    "no second incident, follow-up or event"
probe web ok
is "$(state)" "failing 0 1 1" "one good probe: still failing"
probe web ok
is "$(state)" "ok 0 2 " "the 2nd good probe: ok, no open incident"
is "$(it_psql "SELECT resolution FROM incidents WHERE resolved_at IS NOT NULL")" recovered "the incident is resolved"
is "$(events incident.resolved)" 1 "incident.resolved reached the destination"
doc=$(api GET /v1/monitors/web)
is "$(jq -c '[.uptime_24h, .probes_24h, .last_probe.ok]' <<<"$doc")" '[28.571,7,true]' \
    "uptime over 24 h: 2 of 7 probes ok"
is "$(jq -r '.latency_p50_ms_24h' <<<"$doc")" 30 "latency p50 over 24 h"

# history: newest first, keyset paging
p1=$(api GET "/v1/monitors/web?limit=4")
is "$(jq -c '[.probes[].ok]' <<<"$p1")" '[true,true,false,false]' "history, newest first"
after=$(jq -r .next_after <<<"$p1")
p2=$(api GET "/v1/monitors/web?limit=4&after=$after")
is "$(jq -c '[.probes[].ok], .next_after' <<<"$p2" | tr '\n' ' ')" '[false,false,false] null ' \
    "the next page: the 3 older probes, no further page"

# ------------------------------------------------ silence
out=$(ctl monitor silence web for=1h reason=maintenance)
like "$out" '^check web silenced until 20' "devsysctl monitor silence"
for _ in 1 2 3 4; do probe web fail; done
is "$(state)" "failing 4 0 " "silenced: the state still moves (failing) but no incident opens"
is "$(it_psql "SELECT count(*) FROM incidents")/$(follow_ups)/$(events incident.opened)" "1/1/1" \
    "no incident, follow-up or event while silenced"
is "$(it_psql "SELECT count(*) FILTER (WHERE silenced) FROM probe_results WHERE check_name = 'web'")" 4 \
    "the silenced probes are recorded, marked silenced"
is "$(api GET /v1/monitors/web | jq -r '[.silenced, .silence_reason] | join(" ")')" "true maintenance" \
    "the check shows its silence"
ctl monitor unsilence web >/dev/null
probe web fail
is "$(state)" "failing 5 0 2" "after the silence, the next failure opens an incident"
is "$(follow_ups)/$(events incident.opened)" "2/2" "with its follow-up and event"

# incidents in the API and the CLI
is "$(api GET "/v1/incidents?state=open" | jq -c '[.incidents[] | [.id, .check, .state]]')" '[[2,"web","open"]]' \
    "GET /v1/incidents?state=open"
is "$(api GET "/v1/incidents?state=resolved" | jq -c '[.incidents[] | [.id, .follow_up_state]]')" \
    '[[1,"succeeded"]]' "GET /v1/incidents?state=resolved, with the follow-up's state"
like "$(ctl incidents)" '2 +web +open .*1 +web +resolved' "devsysctl incidents"
like "$(ctl monitor web)" 'state: +failing' "devsysctl monitor NAME"
like "$(ctl monitors)" 'web +http +failing +no +' "devsysctl monitors"

# deleting the check resolves its incident (with the event)
api DELETE /v1/monitors/web >/dev/null
is "$(it_psql "SELECT resolution FROM incidents WHERE id = 2")" "check deleted" "deleting a check resolves its incident"
is "$(events incident.resolved)" 2 "with incident.resolved"
is "$(it_psql "SELECT count(*) FROM audit_log WHERE action IN ('monitor.put', 'monitor.silence', 'monitor.unsilence', 'monitor.delete')
               AND target = 'web'")" 4 "put, silence, unsilence and delete are audited"

# ------------------------------------------------ a log check's offset
api POST /v1/monitors '{"name":"logs","interval_s":1,"monitor":{"type":"log","path":"/var/log/x.log","pattern":"ERROR"}}' >/dev/null
ok "a log check gets its first probe" it_wait_sql 10 \
    "SELECT count(*) FROM tasks WHERE kind = 'monitor' AND spec->'monitor'->>'check' = 'logs'" 1
lid=$(it_psql "SELECT id FROM tasks WHERE kind = 'monitor' AND spec->'monitor'->>'check' = 'logs'")
is "$(it_psql "SELECT spec->'monitor' ? 'offset' FROM tasks WHERE id = '$lid'")" f "the first has no offset"
it_psql "UPDATE tasks SET state = 'succeeded', finished_at = now(),
         result = '{\"ok\": true, \"latency_ms\": 1, \"error\": null, \"type\": \"log\", \"offset\": 1234, \"matches\": 0}'
         WHERE id = '$lid'"
ok "the next probe starts where the last one stopped" it_wait_sql 10 \
    "SELECT spec->'monitor'->>'offset' FROM tasks WHERE kind = 'monitor'
     AND spec->'monitor'->>'check' = 'logs' AND id <> '$lid'" 1234
it_done
