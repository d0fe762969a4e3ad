#!/usr/bin/env bash
# The edge: per-token rate limits on mutating routes (429 with Retry-After,
# per token, reads and the bootstrap admin token exempt), and 200 connections
# trickling a request head one byte a second do not keep a normal client from
# being served within a second (curl --max-time 1) while they are still open,
# nor at a connection cap below their number (the oldest unfinished heads are
# cut for newcomers).
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

# --- 200 slow clients: a normal client is still served within a second.
# Each normal request is a fresh connection bounded by curl --max-time, so a
# late answer is a failure (000), not a slow pass. The bound is the issue's
# 1 s (DS_EDGE_BOUND_S may widen it for a run on a loaded machine).
BOUND=${DS_EDGE_BOUND_S:-1}
python3 "$CLIENTS" trickle 127.0.0.1 "$port" 200 9 >"$IT_DIR/trickle.out" 2>&1 &
trickle=$!
it_track_pid "$trickle"
it_wait_for 10 "grep -q '^open' '$IT_DIR/trickle.out'" || it_bail "the slow clients never connected"
sleep 2 # they have each sent a few bytes
codes="" times=""
for _ in 1 2 3 4 5; do
    out=$(curl -s -o /dev/null -m "$BOUND" -w '%{http_code} %{time_total}' -H "Authorization: Bearer $B" \
        "$DEVSYS_URL/v1/tasks?limit=1")
    codes+="${out%% *} " times+="${out#* } "
    sleep 0.2
done
open=$(tail -n 1 "$IT_DIR/trickle.out")
it_diag "5 normal GETs with 200 slow clients: status $codes; seconds $times(${open})"
is "$codes" "200 200 200 200 200 " "a normal client is served within ${BOUND} s (curl --max-time), 5 times of 5, while 200 slow clients trickle their heads (took: ${times}s)"
is "$open" "open 200" "the slow clients were all still open at that point"
wait "$trickle"

# --- the same at the connection cap (50): the oldest unfinished heads are cut
# for newcomers, so the cap is no door the slow clients can hold shut
it_stop_manager
DEVSYS_HTTP_MAX_CONNS=50 it_start_manager || it_bail "restart the manager with a cap of 50 connections"
port=${DEVSYS_URL##*:}
python3 "$CLIENTS" trickle 127.0.0.1 "$port" 200 7 >"$IT_DIR/trickle.out" 2>&1 &
trickle=$!
it_track_pid "$trickle"
it_wait_for 10 "grep -q '^open' '$IT_DIR/trickle.out'" || it_bail "the slow clients never connected"
sleep 2
codes="" times=""
for _ in 1 2 3 4 5; do
    out=$(curl -s -o /dev/null -m "$BOUND" -w '%{http_code} %{time_total}' -H "Authorization: Bearer $B" \
        "$DEVSYS_URL/v1/tasks?limit=1")
    codes+="${out%% *} " times+="${out#* } "
    sleep 0.2
done
is "$codes" "200 200 200 200 200 " "at a cap of 50 connections, 200 slow clients: a normal client is still served within ${BOUND} s, 5 times of 5 (took: ${times}s)"
like "$(curl -s "$DEVSYS_URL/metrics")" 'devsys_http_slow_heads_cut_total [1-9]' "slow heads were cut for newcomers"
ok "the manager holds at most 50 + 16 connections ($(curl -s "$DEVSYS_URL/metrics" | grep '^devsys_http_connections '))" \
    awk '/^devsys_http_connections / {exit !($2 <= 66)}' <<<"$(curl -s "$DEVSYS_URL/metrics")"
wait "$trickle"
it_done
