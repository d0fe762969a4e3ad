#!/usr/bin/env bash
# Malformed members of devsys:{Q}:delayed (garbage bytes, an odd field list,
# a non-string field) due alongside a real retry: the retry is promoted and
# runs at once, and each bad member is moved to the DLQ with a readable
# reason instead of stopping the queue's promotions.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
# the reconciler would republish a stuck retry only after a minute
DEVSYS_REPUBLISH_AFTER_S=60 it_start_manager || it_bail "start manager"
it_start_agent a1 DEVSYS_QUEUES=sleep DEVSYS_METRICS_LISTEN=127.0.0.1:0 || it_bail "start agent"
D='devsys:{sleep}:delayed'
bad_id=11111111-2222-4333-8444-555555555555

id=$(ctl submit - <<<'{"kind":"sleep","sleep":{"ms":1,"fail_first":1},
  "retry_policy":{"max_attempts":3,"initial_s":3,"factor":2,"max_s":10,"jitter":false}}')
ok "the task fails once and waits in delayed" it_wait_for 10 '[[ $(it_redis ZCARD "$D") == 1 ]]'
due=$(it_redis ZRANGE "$D" 0 0 WITHSCORES | tail -n 1)
# due just before the real retry, so one promote run meets them all
printf '\xc1\x00garbage' | it_redis -x ZADD "$D" $((due - 3)) >/dev/null
# msgpack ["v","1","id",<uuid>,"kind"]: valid msgpack, odd field list
printf '\x95\xa1v\xa11\xa2id\xd9\x24%s\xa4kind' "$bad_id" | it_redis -x ZADD "$D" $((due - 2)) >/dev/null
# msgpack ["v","1","id",{"a":"b"}]: a field value that is not a string
printf '\x94\xa1v\xa11\xa2id\x81\xa1a\xa1b' | it_redis -x ZADD "$D" $((due - 1)) >/dev/null
is "$(it_redis ZCARD "$D")" 4 "three malformed members sit in delayed next to the retry"

ok "the real retry is promoted and succeeds without waiting for the reconciler" it_wait_state 15 "$id" succeeded
is "$(it_psql "SELECT string_agg(outcome, ',' ORDER BY attempt) FROM task_attempts WHERE task_id='$id'")" \
    "failed,succeeded" "it ran twice: failed, then succeeded"
ok "delayed is empty" it_wait_for 5 '[[ $(it_redis ZCARD "$D") == 0 ]]'

dlq=$(it_dlq sleep)
is "$(jq '[.[] | select(.source == "delayed")] | length' <<<"$dlq")" 3 "the three bad members are dead letters (source delayed)"
is "$(jq -r '[.[] | select(.source == "delayed") | .error | startswith("delayed member: ")] | all' <<<"$dlq")" true \
    "each dead letter's error starts with \"delayed member: \""
like "$(jq -r '.[] | select(.source == "delayed") | .error' <<<"$dlq" | sort | tr '\n' '|')" \
    'a msgpack.*not an array of fields|.*element 4 is a table, not a string|.*got 5' "each error says what is wrong"
odd=$(jq -c --arg id "$bad_id" '.[] | select(.id == $id)' <<<"$dlq")
is "$(jq -r '[.queue, .agent, .kind] | join(" ")' <<<"$odd")" "sleep a1 unknown" \
    "the odd member's dead letter keeps the id it could read, with queue and agent"
like "$(jq -r .failed_at <<<"$odd")" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$' \
    "failed_at is ISO 8601"
like "$(jq -r .spec <<<"$odd")" '"unreadable_member":"95a176' "its spec field shows the member's bytes (hex)"
like "$(cat "$IT_DIR/agent-a1.log")" 'malformed member of devsys:\{sleep\}:delayed was moved to its DLQ: element 4' \
    "the agent logs a warning per member set aside"
like "$(curl -s "${AGENT_METRICS[a1]}/metrics")" 'devsys_agent_delayed_set_aside_total\{queue="sleep"\} 3' \
    "the agent's /metrics counts them"

id=$(ctl submit - <<<'{"kind":"sleep","sleep":{"ms":1,"fail_first":1},
  "retry_policy":{"max_attempts":3,"initial_s":0.2,"factor":2,"max_s":10,"jitter":false}}')
ok "later retries on the queue are promoted too" it_wait_state 15 "$id" succeeded
is "$(it_psql "SELECT count(*) FROM tasks WHERE state <> 'succeeded'")" 0 "no task is left behind"
it_done
