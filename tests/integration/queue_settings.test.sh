#!/usr/bin/env bash
# Queue controls, manager side: pause/resume, concurrency cap and rate limit
# over the API and devsysctl; PostgreSQL holds them, the Redis hash
# devsys:{Q}:settings mirrors them (healed by the reconciler after a flush),
# agents are told on the control stream; metrics, audit and roles.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
DEVSYS_RECONCILE_S=1 it_start_manager || it_bail "start manager"
B=$IT_DIR/body
V=viewer-token O=operator-token
it_psql "INSERT INTO api_tokens (name, role, token_hash) VALUES
         ('v', 'viewer', encode(sha256('viewer-token'), 'hex')),
         ('o', 'operator', encode(sha256('operator-token'), 'hex'))" >/dev/null
# call TOKEN METHOD PATH [BODY]: prints the status; the body lands in $B
call() {
    curl -s -o "$B" -w '%{http_code}' -X "$2" -H "Authorization: Bearer $1" "$DEVSYS_URL$3" ${4:+-d "$4"}
}
K='devsys:{qs}:settings'
hash() { it_redis HMGET "$K" paused concurrency rate_n rate_period_ms rate_per_key | tr '\n' ' '; }
metric() { curl -s "$DEVSYS_URL/metrics" | awk -v m="$1{queue=\"qs\"}" '$1 == m {print $2}'; }

curl -sf -X POST -H "Authorization: Bearer $O" "$DEVSYS_URL/v1/tasks" \
    -d '[{"kind":"noop","queue":"qs"},{"kind":"noop","queue":"qs","priority":3}]' >/dev/null

# ---- reading
is "$(call $V GET /v1/queues)" 200 "a viewer lists the queues"
is "$(jq -c '.queues[] | select(.queue == "qs") | [.paused, .concurrency, .rate, .stats.depth, .stats.levels.high.depth, .stats.dlq]' "$B")" \
    '[false,null,null,2,1,0]' "a queue submitted to is listed: defaults, depth 2 (1 of them high), empty DLQ"
is "$(call $V GET /v1/queues/never-used)/$(jq -c '[.queue, .paused, .concurrency, .stats.depth]' "$B")" \
    '200/["never-used",false,null,0]' "an unknown queue reads as defaults"
is "$(call $V GET '/v1/queues/bad%20name')" 400 "an invalid queue name: 400"

# ---- roles
is "$(call $V POST /v1/queues/qs/pause)/$(jq -r .error "$B")" "403/pausing a queue needs the operator role" \
    "a viewer cannot pause: 403"
is "$(call $V PATCH /v1/queues/qs/settings '{"concurrency":3}')" 403 "nor change settings"
is "$(it_redis EXISTS "$K")" 0 "nothing mirrored by refused calls"

# ---- pause / resume
control_before=$(it_redis XLEN devsys:control)
out=$(DEVSYS_TOKEN=$O ctl queue pause qs)
like "$out" 'paused qs' "devsysctl queue pause"
like "$out" 'paused: +yes' "it prints the new state"
is "$(it_psql "SELECT paused FROM queue_settings WHERE queue = 'qs'")" t "postgres: paused"
is "$(hash)" "1 0 0 0 0 " "redis hash: paused=1, no limits"
is "$(it_redis XLEN devsys:control)" $((control_before + 1)) "one control message"
is "$(it_redis XREVRANGE devsys:control + - COUNT 1 | tail -2 | tr '\n' ' ')" "settings qs " \
    "the control message is: settings qs"
is "$(metric devsys_queue_paused)" 1 "metric devsys_queue_paused{queue=\"qs\"} 1"
is "$(it_psql "SELECT actor || ' ' || action || ' ' || target || ' ' || (detail->>'paused') FROM audit_log WHERE action LIKE 'queue.%' AND outcome = 200")" \
    "token:o queue.pause qs true" "audited with the caller"
is "$(call $O POST /v1/queues/qs/resume)/$(jq -c '[.paused, .mirrored, .notified]' "$B")" "200/[false,true,true]" \
    "resume over the API: mirrored and notified"
is "$(hash)" "0 0 0 0 0 " "redis hash: paused=0"
is "$(metric devsys_queue_paused)" 0 "metric back to 0"

# ---- concurrency cap and rate limit
out=$(DEVSYS_TOKEN=$O ctl queue set qs --concurrency 3 --rate 10/1s)
like "$out" 'concurrency: +3' "devsysctl queue set: concurrency"
like "$out" 'rate: +10/1s' "and rate"
is "$(hash)" "0 3 10 1000 0 " "redis hash: concurrency 3, 10 per 1000 ms"
is "$(it_psql "SELECT concat_ws(' ', paused, concurrency, rate_n, rate_period_ms) FROM queue_settings WHERE queue = 'qs'")" \
    "f 3 10 1000" "postgres holds the truth"
is "$(metric devsys_queue_concurrency_limit) $(metric devsys_queue_rate_limit)" "3 10" "metrics: cap 3, 10 starts/s"
is "$(call $O PATCH /v1/queues/qs/settings '{"rate":{"n":600,"period_s":60,"per_key":true}}')/$(jq -c '[.concurrency, .rate]' "$B")" \
    '200/[3,{"n":600,"per_key":true,"period_s":60}]' "PATCH the rate alone keeps the cap"
is "$(hash)" "0 3 600 60000 1 " "redis: 600 per minute, per key"
is "$(call $O PATCH /v1/queues/qs/settings '{"concurrency":null}')/$(jq -c .concurrency "$B")" "200/null" "null clears the cap"
is "$(it_redis HGET "$K" concurrency)" 0 "redis: concurrency 0 (none)"
like "$(DEVSYS_TOKEN=$V ctl queues)" 'qs +no +- +600/60s per key +2 +0 +0 +0' "devsysctl queues: one line per queue"

# ---- bad input names the field
bad() { call $O PATCH /v1/queues/qs/settings "$1" >/dev/null; jq -r .error "$B"; }
is "$(bad '{"concurrency":0}')" "concurrency: must be an integer from 1 to 100000, or null for no cap" "concurrency 0: 400"
is "$(bad '{"concurrency":"3"}')" "concurrency: must be an integer from 1 to 100000, or null for no cap" "a string: 400"
is "$(bad '{"rate":{"n":0,"period_s":1}}')" "rate.n: must be an integer from 1 to 1000000" "rate.n 0: 400"
is "$(bad '{"rate":{"n":5}}')" "rate.period_s: required" "rate without a period: 400"
is "$(bad '{"rate":{"n":5,"period_s":-1}}')" "rate.period_s: must be a number from 0.001 to 86400" "negative period: 400"
is "$(bad '{"rate":5}')" 'rate: must be an object {"n": N, "period_s": S} or null' "rate not an object: 400"
is "$(bad '{"cap":3}')" "cap: unknown field (expected concurrency, rate, paused)" "an unknown field is named"
is "$(bad '{}')" "body: nothing to change (give concurrency, rate or paused)" "an empty change: 400"
is "$(call $O PATCH /v1/queues/qs/settings '[1]')" 400 "not an object: 400"
is "$(call $O POST /v1/queues/qs/settings '{}')/$(jq -r .error "$B")" "405/method not allowed (allowed: PATCH)" \
    "POST on settings: 405 naming PATCH"
DEVSYS_TOKEN=$O ctl queue set qs --rate 10/fortnight 2>"$IT_DIR/err"
is "$?/$(cat "$IT_DIR/err")" \
    "2/devsysctl: --rate must be N/PERIOD like 10/1s, 600/1m or 5/500ms (or none), not '10/fortnight' (see devsysctl --help)" \
    "devsysctl checks --rate before calling"

# ---- Redis loses everything: the reconciler writes the hash again
call $O POST /v1/queues/qs/pause >/dev/null
it_redis FLUSHALL >/dev/null
ok "after FLUSHALL the reconciler mirrors the settings again" \
    it_wait_for 10 '[[ $(hash) == "1 0 600 60000 1 " ]]'

# ---- Redis down: recorded, the answer says it is not mirrored yet
ds_stop_redis "$REDIS_PID"
is "$(call $O POST /v1/queues/qs/resume)/$(jq -c '[.paused, .mirrored]' "$B")" "200/[false,false]" \
    "resume with redis down: recorded in postgres, not mirrored"
ds_start_redis "$IT_DIR/redis" "$REDIS_PORT" || it_bail "restart redis"
ok "once redis is back the reconciler mirrors the resume" it_wait_for 15 '[[ $(hash) == "0 0 600 60000 1 " ]]'
it_done
