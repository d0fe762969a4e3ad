#!/usr/bin/env bash
# Webhook retries: a receiver that is down for a while gets every event once
# it is back (deliveries retried with the destination's backoff, each webhook-id
# accepted once), and a destination that stays down past max_attempts
# dead-letters its delivery like any task, its events marked dead.
source "$(dirname "$0")/itest.sh"
source "$(dirname "$0")/notify_lib.sh"
notify_setup
PORT=$(ds_free_port) || it_bail "free port"
NEVER=$(ds_free_port) || it_bail "free port"

ok "destination ops (its receiver is down)" ctl notify add ops "http://127.0.0.1:$PORT/hook" task.dead \
    secret_ref=ops group_wait_s=0 group_interval_s=0 rate.per_s=100 rate.burst=100 \
    max_attempts=50 retry.initial_s=0.3 retry.max_s=1.5
ok "destination never (nothing ever listens)" ctl notify add never "http://127.0.0.1:$NEVER/hook" task.dead \
    secret_ref=ops group_wait_s=0 group_interval_s=0 max_attempts=2 retry.initial_s=0.2 retry.max_s=0.2

N=5
specs=$(jq -nc --argjson n $N '[range($n) | {kind:"sleep",name:"down-\(.)",sleep:{ms:0,fail_always:true},retry_policy:{max_attempts:1}}]')
ctl submit - <<<"$specs" >"$IT_DIR/ids"
is "$(wc -l <"$IT_DIR/ids" | tr -d ' ')" $N "$N tasks submitted"
ok "$N tasks go dead" it_wait_sql 30 "SELECT count(*) FROM tasks WHERE kind='sleep' AND state='dead'" $N
ok "their $N events are pending or in deliveries for ops" it_wait_sql 20 \
    "SELECT count(*) FROM notify_event_dest WHERE destination='ops' AND state='queued'" $N
ok "every delivery to ops failed at least twice while the receiver is down" it_wait_sql 30 \
    "SELECT bool_and(t.attempt >= 2) FROM tasks t JOIN notify_deliveries d ON d.id = t.id WHERE d.destination='ops'" t
like "$(it_psql "SELECT DISTINCT last_error FROM tasks t JOIN notify_deliveries d ON d.id = t.id WHERE d.destination='ops' LIMIT 1")" \
    "^127\.0\.0\.1:$PORT|http://127\.0\.0\.1:$PORT: .*(onnect|refused)" "the retry reason says the connection failed"

# never: past max_attempts the delivery is dead, a dead letter, its events dead
ok "the delivery to never is dead after 2 attempts" it_wait_sql 30 \
    "SELECT string_agg(t.state || ' ' || t.attempt, ',') FROM tasks t JOIN notify_deliveries d ON d.id = t.id WHERE d.destination='never'" \
    "$(it_psql "SELECT string_agg('dead 2', ',') FROM notify_deliveries WHERE destination='never'")"
ok "never's events are marked dead" it_wait_sql 10 \
    "SELECT count(*) FROM notify_event_dest WHERE destination='never' AND state='dead'" $N
like "$(it_redis XRANGE 'devsys:{notify}:dlq' - + | tr '\n' ' ')" "http://127\.0\.0\.1:$NEVER" \
    "the dead letter names the destination's origin"
is "$(it_psql "SELECT count(*) FROM tasks WHERE state='dead' AND kind='notify'")" \
    "$(it_psql "SELECT count(*) FROM notify_deliveries WHERE destination='never'")" \
    "a dead delivery raises no task.dead event of its own (only never's deliveries are dead)"

sleep 2 # down a while longer
start_receiver rx "$PORT" --secret "$SECRET" || it_bail "start receiver on $PORT"
ok "after it is back the receiver gets every event" it_wait_for 30 "[[ \$(events_covered rx) == $N ]]"
ok "all ops events are sent" it_wait_sql 20 \
    "SELECT count(*) FROM notify_event_dest WHERE destination='ops' AND state='sent'" $N
is "$(jq -r .id "$IT_DIR/recv-rx.jsonl" | sort | uniq -d | wc -l | tr -d ' ')" 0 "each webhook-id was accepted once"
is "$(jq -r .id "$IT_DIR/recv-rx.jsonl" | LC_ALL=C sort | tr '\n' ' ')" \
    "$(it_psql "SELECT string_agg('msg_' || replace(id::text, '-', ''), ' ' ORDER BY id::text COLLATE \"C\") || ' ' FROM notify_deliveries WHERE destination='ops'")" \
    "one accepted request per delivery, under the webhook-id it had from its first attempt (msg_<delivery id>)"
is "$(jq -r '.body.data.name // empty, (.body.data.events[]?.data.name)' "$IT_DIR/recv-rx.jsonl" | sort | tr '\n' ' ')" \
    "down-0 down-1 down-2 down-3 down-4 " "the events are the $N dead tasks"
it_diag "attempts per delivery to ops: $(it_psql "SELECT string_agg(t.attempt::text, ' ') FROM tasks t JOIN notify_deliveries d ON d.id = t.id WHERE d.destination='ops'")"
it_done
