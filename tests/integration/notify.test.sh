#!/usr/bin/env bash
# Webhooks (kind notify): a delivery is signed per Standard Webhooks with every
# secret the agent holds for the destination (rotation), the example receiver
# verifies it and refuses a tampered body, an old timestamp and a replayed id;
# a dead task reaches a subscribed destination as a task.dead event; a 4xx
# answer dead-letters the delivery at once with a readable reason; secrets
# appear in no log, row or API answer.
source "$(dirname "$0")/itest.sh"
source "$(dirname "$0")/notify_lib.sh"
it_setup

OLD=$(new_secret); NEW=$(new_secret)
printf '{"ops": ["%s", "%s"]}\n' "$OLD" "$NEW" >"$IT_DIR/secrets.json"
DEVSYS_NOTIFY_TICK_S=0.2 it_start_manager || it_bail "start manager"
it_start_agent n1 DEVSYS_QUEUES=notify,sleep DEVSYS_NOTIFY_SECRETS_FILE="$IT_DIR/secrets.json"
# the receiver knows only the new secret: the agent still signs with both
start_receiver rx 0 --secret "$NEW" || it_bail "start receiver"
start_receiver gone 0 --secret "$NEW" --status 410 || it_bail "start 410 receiver"

# ------------------------------------------------ one delivery, signed
id=$(ctl submit - <<<"{\"kind\":\"notify\",\"notify\":{\"url\":\"${RECV_URL[rx]}\",
  \"body\":\"{\\\"hello\\\": 1}\",\"secret\":\"ops\",\"destination\":\"rx\"}}")
ok "a notify task is delivered" it_wait_state 20 "$id" succeeded
is "$(received rx)" 1 "the receiver verified and accepted one delivery (it knows only the new secret)"
is "$(jq -r .id "$IT_DIR/recv-rx.jsonl")" "msg_${id//-/}" "webhook-id is msg_<task id>"
is "$(jq -c .body "$IT_DIR/recv-rx.jsonl")" '{"hello":1}' "the body arrived as sent"
is "$(it_psql "SELECT result->>'status' FROM tasks WHERE id='$id'")" 204 "the task's result has the status"

# ------------------------------------------------ the receiver's checks are real
# sign BODY TS SECRET ID: a Standard Webhooks signature computed here.
sign() { python3 -c '
import base64, hashlib, hmac, sys
body, ts, secret, mid = sys.argv[1:]
key = base64.b64decode(secret[len("whsec_"):])
print("v1," + base64.b64encode(hmac.new(key, f"{mid}.{ts}.{body}".encode(), hashlib.sha256).digest()).decode())' "$@"; }
post() { # post BODY TS SIG ID -> "STATUS BODY"
    curl -s -o "$IT_DIR/post.out" -w '%{http_code}' -H "webhook-id: $4" -H "webhook-timestamp: $2" \
        -H "webhook-signature: $3" --data-binary "$1" "${RECV_URL[rx]}"
    printf ' %s\n' "$(cat "$IT_DIR/post.out")"
}
now=$(date +%s)
good=$(sign '{"a":1}' "$now" "$NEW" msg_t1)
like "$(post '{"a":1}' "$now" "$good" msg_t1)" '^204' "a correctly signed fresh delivery is accepted"
like "$(post '{"a":2}' "$now" "$good" msg_t2)" '^400 .*no valid signature' "a tampered body is rejected"
like "$(post '{"a":1}' "$now" "$(sign '{"a":1}' "$now" "$OLD" msg_t3)" msg_t3)" '^400 .*no valid signature' \
    "a signature with the retired secret alone is rejected (the agent's header carried both)"
old=$((now - 400))
like "$(post '{"a":1}' "$old" "$(sign '{"a":1}' "$old" "$NEW" msg_t4)" msg_t4)" '^400 .*too old' \
    "a delivery signed 400 s ago is rejected (replay window 5 min)"
like "$(post '{"a":1}' "$now" "$good" msg_t1)" '^200 .*duplicate' "the same delivery again (replayed id) is not processed"
is "$(received rx)" 2 "the receiver processed exactly the two genuine deliveries"

# ------------------------------------------------ destinations and task.dead
out=$(api POST /v1/notifications/destinations "{\"name\":\"ops\",\"url\":\"${RECV_URL[rx]}\",
  \"events\":[\"task.dead\"],\"secret_ref\":\"ops\",\"group_wait_s\":0,\"group_interval_s\":0}")
is "${out##*$'\n'}" 201 "POST /v1/notifications/destinations creates a destination"
ok "devsysctl notify add (format, secret_ref, rate)" \
    ctl notify add gone "${RECV_URL[gone]}" task.dead secret_ref=ops group_wait_s=0 rate.per_s=5 rate.burst=2
out=$(api POST /v1/notifications/destinations "{\"name\":\"x\",\"url\":\"http://h/\",\"events\":[\"task.dead\"],\"secret\":\"$NEW\"}")
like "$out" 'secret: not accepted: a secret is never stored' "a raw secret in the API is refused (400)"
out=$(api POST /v1/notifications/destinations '{"name":"x","url":"http://h/","events":["task.exploded"]}')
like "$out" 'events\[0\]: must be one of task.dead, pipeline.failed' "an unknown event type is named"
out=$(api POST /v1/notifications/destinations '{"name":"x","url":"http://h/","events":["task.dead"],"rate":{"per_s":0}}')
like "$out" 'rate.per_s: must be a number from 0.001 to 1000' "a bad rate is named"
list=$(ctl notify list)
it_diag "$list"
like "$list" 'gone +http://127\.0\.0\.1:[0-9]+/hook +json +task\.dead +5/s burst 2' "devsysctl notify list shows the destinations"

dead=$(ctl submit - <<<'{"kind":"sleep","name":"boom","sleep":{"ms":0,"fail_always":true},"retry_policy":{"max_attempts":1}}')
ok "a task goes dead" it_wait_state 20 "$dead" dead
ok "its task.dead event reaches ops" it_wait_for 20 '[[ $(received rx) == 3 ]]'
ev=$(tail -n 1 "$IT_DIR/recv-rx.jsonl")
is "$(jq -r '.body.type + " " + .body.data.task + " " + .body.data.name' <<<"$ev")" "task.dead $dead boom" \
    "the event names the task"
like "$(jq -r .body.data.error <<<"$ev")" 'fail_always' "and its last error"
ok "the event is sent for ops" it_wait_sql 20 \
    "SELECT state FROM notify_event_dest WHERE destination='ops'" sent

# ------------------------------------------------ 4xx: dead at once, readable
gid=$(it_psql "SELECT delivery FROM notify_event_dest WHERE destination='gone'")
ok "the delivery to the 410 receiver goes dead" it_wait_state 20 "$gid" dead
is "$(it_psql "SELECT attempt FROM tasks WHERE id='$gid'")" 1 "after one attempt (permanent)"
like "$(it_psql "SELECT last_error FROM tasks WHERE id='$gid'")" \
    '^HTTP 410 from http://127\.0\.0\.1:[0-9]+: \{"error": "told to answer 410"\}$' "with the status and the body's head"
evs=$(ctl notify events destination=gone)
it_diag "$evs"
like "$evs" 'task.dead .* gone +dead' "devsysctl notify events shows the event dead for gone"
like "$(api GET '/v1/notifications/events?destination=gone&state=dead')" '"error":"HTTP 410 from http://127' \
    "the API shows the delivery's error"
like "$(it_redis XRANGE 'devsys:{notify}:dlq' - + | tr '\n' ' ')" 'HTTP 410' "and so does the dead letter"
like "$(api GET '/v1/notifications/events?state=lost')" 'state: must be one of pending, queued, sent, dead' \
    "a bad state filter is named"

# ------------------------------------------------ a hung and a flooding endpoint
# hang: accepts and never answers; big: answers 503 with a 10 MB body
python3 -c '
import socket, sys, threading, time
def serve(s, big):
    while True:
        c, _ = s.accept()
        if big:
            c.recv(65536)
            c.sendall(b"HTTP/1.1 503 Busy\r\nContent-Length: 10485760\r\n\r\n" + b"x" * 10485760)
            c.close()
        else:
            threading.Thread(target=lambda c=c: time.sleep(600), daemon=True).start()
ports = []
for big in (0, 1):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16); ports.append(s.getsockname()[1])
    threading.Thread(target=serve, args=(s, big), daemon=True).start()
print(*ports, flush=True)
time.sleep(600)' >"$IT_DIR/hang.out" 2>&1 7>&- &
it_track_pid $!
it_wait_for 10 "[[ -s '$IT_DIR/hang.out' ]]" || it_bail "start the hanging server"
read -r HANG BIG <"$IT_DIR/hang.out"
hid=$(ctl submit - <<<"{\"kind\":\"notify\",\"retry_policy\":{\"max_attempts\":1},
  \"notify\":{\"url\":\"http://127.0.0.1:$HANG/x?token=abc\",\"body\":\"{}\",\"timeout_s\":1}}")
ok "a delivery to an endpoint that never answers times out" it_wait_state 20 "$hid" dead
is "$(it_psql "SELECT last_error FROM tasks WHERE id='$hid'")" "timeout: no answer from http://127.0.0.1:$HANG within 1s" \
    "the reason names the origin (not the path or query) and the timeout"
bid=$(ctl submit - <<<"{\"kind\":\"notify\",\"retry_policy\":{\"max_attempts\":1},
  \"notify\":{\"url\":\"http://127.0.0.1:$BIG/\",\"body\":\"{}\"}}")
ok "a 503 with a 10 MB body fails the attempt (the agent stops reading at 64 KiB)" it_wait_state 20 "$bid" dead
like "$(it_psql "SELECT last_error FROM tasks WHERE id='$bid'")" "^HTTP 503 from http://127.0.0.1:$BIG: x{200}\\.\\.\\.$" \
    "with the status and the body's first 200 bytes, marked cut"
cid=$(ctl submit - <<<"{\"kind\":\"notify\",\"notify\":{\"url\":\"http://127.0.0.1:$HANG/\",\"body\":\"{}\",\"timeout_s\":60}}")
ok "a delivery in flight is running" it_wait_state 20 "$cid" running
ctl cancel "$cid" >/dev/null
ok "and can be cancelled" it_wait_state 20 "$cid" cancelled

# ------------------------------------------------ no secret anywhere
leak=0
for s in "$OLD" "$NEW" "${OLD#whsec_}" "${NEW#whsec_}"; do
    grep -rqF -- "$s" "$IT_DIR"/manager.log "$IT_DIR"/agent-*.log && leak=1
    [[ $(it_psql "SELECT count(*) FROM tasks WHERE strpos(spec::text || coalesce(result::text,'') || coalesce(last_error,''), '$s') > 0") == 0 ]] || leak=1
    api GET /v1/notifications/destinations | grep -qF -- "$s" && leak=1
    api GET /v1/notifications/events | grep -qF -- "$s" && leak=1
done
is "$leak" 0 "no secret in the logs, the tasks' rows or the API"

out=$(ctl notify rm gone)
like "$out" 'deleted destination gone' "devsysctl notify rm"
it_done
