#!/usr/bin/env bash
# The edge: per-token rate limits on mutating routes (429 with Retry-After,
# per token, reads and the bootstrap admin token exempt), and 200 connections
# trickling a request head one byte a second do not keep a normal client from
# being served while they are still open.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
export DEVSYS_RATE_MUTATING_PER_S=1 DEVSYS_RATE_MUTATING_BURST=5
it_start_manager || it_bail "start manager"
CLIENTS=$(dirname "$0")/http_clients.py
port=${DEVSYS_URL##*:}

A=$(ctl --json token create --name ci-a --role operator | jq -r .token)
B=$(ctl --json token create --name ci-b --role operator | jq -r .token)
# submit TOKEN: the status of one submit; headers in $H
H=$IT_DIR/headers
submit() { curl -s -D "$H" -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $1" -d '{"kind":"noop","queue":"parked"}' "$DEVSYS_URL/v1/tasks"; }
codes=""
for _ in 1 2 3 4 5 6 7; do codes+="$(submit "$A") "; done
like "$codes" '^201 201 201 201 201 429 ' "token a: the burst of 5 changes passes, the next is 429 ($codes)"
like "$(grep -i '^Retry-After:' "$H" | tr -d '\r')" '^Retry-After: [1-9]' "the 429 says when to retry"
is "$(submit "$B")" 201 "token b has its own bucket"
is "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $A" "$DEVSYS_URL/v1/tasks?limit=1")" 200 \
    "reads are not limited"
is "$(submit "$DEVSYS_TOKEN")" 201 "the bootstrap admin token is not limited"
sleep 2.2
is "$(submit "$A")" 201 "token a may change again after Retry-After"
like "$(curl -s "$DEVSYS_URL/metrics")" 'devsys_http_rate_limited_total [1-9]' "refusals are counted"
is "$(ctl --json audit --actor token:ci-a --limit 1000 | jq '[.entries[] | select(.outcome == 429)] | length')" 2 \
    "each 429 is in the audit trail"

# --- 200 slow clients
python3 "$CLIENTS" trickle 127.0.0.1 "$port" 200 8 >"$IT_DIR/trickle.out" 2>&1 &
trickle=$!
it_track_pid "$trickle"
it_wait_for 10 "grep -q '^open' '$IT_DIR/trickle.out'" || it_bail "the slow clients never connected"
sleep 2 # they have each sent a few bytes
out=$(curl -s -o /dev/null -m 5 -w '%{http_code} %{time_total}' -H "Authorization: Bearer $B" "$DEVSYS_URL/v1/tasks?limit=1")
open=$(tail -n 1 "$IT_DIR/trickle.out")
it_diag "normal GET with 200 slow clients: $out (${open})"
is "${out%% *}" 200 "a normal client is served within 5 s while 200 slow clients trickle their heads"
is "$open" "open 200" "the slow clients were all still open at that point"
ok "and it took under 5 s (${out#* } s)" awk -v t="${out#* }" 'BEGIN {exit !(t < 5)}'
wait "$trickle"
it_done
