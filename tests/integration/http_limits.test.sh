#!/usr/bin/env bash
# The manager's HTTP edge under abuse: unauthenticated bodies and slow clients
# do not grow its memory or starve a normal client; bad heads get clear
# errors before any body is read; slow heads are cut; the connection cap and
# the descriptor limit hold without flooding the log.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
CLIENTS=$(dirname "$0")/http_clients.py
T=test-admin-token
# a DEVSYS_LISTEN that is not host:port (a port past 65535 or overflowing,
# trailing junk, none) stops the manager with a message naming it
for bad in 127.0.0.1:65536 127.0.0.1:99999999999999999999 127.0.0.1:80x 127.0.0.1: localhost; do
    DEVSYS_LISTEN=$bad timeout 20 "$BIN/manager/devsys-manager" </dev/null >"$IT_DIR/listen.out" 2>&1 7>&-
    st=$?
    is "$((st != 0 && st != 124)) $(grep -c 'DEVSYS_LISTEN: expected host:port' "$IT_DIR/listen.out")" "1 1" \
        "DEVSYS_LISTEN=$bad: the manager stops at once naming DEVSYS_LISTEN"
done

DEVSYS_HTTP_HEADER_TIMEOUT_S=2 it_start_manager || it_bail "start manager"
port=${DEVSYS_URL##*:}

# rss_kb PID: the process's peak resident set (VmHWM), in kB
rss_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

# --- 64 clients sending 15 MiB bodies without a valid token, 300 slow heads
python3 "$CLIENTS" flood 127.0.0.1 "$port" 12 64 15 >"$IT_DIR/flood.out" 2>&1 &
flood=$!
it_track_pid "$flood"
python3 "$CLIENTS" slow 127.0.0.1 "$port" 12 300 >"$IT_DIR/slow.out" 2>&1 &
slow=$!
it_track_pid "$slow"
sleep 1
worst=0 fails=0 n=0
while kill -0 "$flood" 2>/dev/null && (( n < 20 )); do
    n=$((n + 1))
    out=$(curl -s -o /dev/null -m 1 -w '%{http_code} %{time_total}' -H "Authorization: Bearer $T" \
        "$DEVSYS_URL/v1/tasks?limit=1")
    [[ ${out%% *} == 200 ]] || { fails=$((fails + 1)); it_diag "GET /v1/tasks during the flood: $out"; }
    worst=$(awk -v a="$worst" -v b="${out#* }" 'BEGIN {print (b > a) ? b : a}')
    sleep 0.4
done
wait "$flood" "$slow"
it_diag "$(cat "$IT_DIR/flood.out" "$IT_DIR/slow.out")"
it_diag "slowest GET /v1/tasks during the flood: ${worst}s over $n requests"
is "$fails" 0 "a normal client is answered 200 within 1 s throughout ($n requests)"
ok "the flood clients were cut off under their bodies" grep -Eq 'cut=[1-9]' "$IT_DIR/flood.out"
ok "no 15 MiB body was taken in full" grep -q 'completed=0' "$IT_DIR/flood.out"
hwm=$(rss_kb "$MANAGER_PID")
it_diag "manager peak RSS (VmHWM): $((hwm / 1024)) MB"
if [[ ${DS_SANITIZE:-0} == 1 ]]; then # ASan's shadow memory and quarantine are not the manager's
    _it_result 0 "manager peak RSS stays under 100 MB # SKIP under the sanitizer build"
else
    ok "manager peak RSS stays under 100 MB (was $((hwm / 1024)) MB)" test "$hwm" -lt 102400
fi
ok "slow heads were cut off" grep -Eq 'cut=[1-9]' "$IT_DIR/slow.out"

# --- bad heads get an answer that names the problem, before any body
spec='{"kind":"noop"}'
is "$(printf 'POST /v1/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\nContent-Length: %d\r\n\r\n%s' \
    "$T" ${#spec} ${#spec} "$spec" | python3 "$CLIENTS" raw 127.0.0.1 "$port")" \
    "HTTP/1.1 400 Bad Request" "two Content-Length headers: 400"
big=$(head -c 20000 /dev/zero | tr '\0' 'a')
is "$(curl -s -o "$IT_DIR/body" -w '%{http_code}' -H "Authorization: Bearer $T" -H "X-Big: $big" \
    "$DEVSYS_URL/v1/tasks")" 431 "20 kB of headers: 431"
like "$(cat "$IT_DIR/body")" 'DEVSYS_HTTP_MAX_HEADER_BYTES' "the 431 names the setting"
is "$(printf 'POST /v1/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 999999999\r\n\r\n' "$T" \
    | python3 "$CLIENTS" raw 127.0.0.1 "$port")" "HTTP/1.1 413 Payload Too Large" \
    "a declared body over DEVSYS_MAX_BODY: 413 without sending it"
is "$(printf 'POST /v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Length: 15000000\r\n\r\n' \
    | python3 "$CLIENTS" raw 127.0.0.1 "$port")" "HTTP/1.1 401 Unauthorized" "no token: 401 before the body is sent"
is "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $T" -H 'Transfer-Encoding: chunked' \
    --data-binary "$spec" "$DEVSYS_URL/v1/tasks")" 201 "a chunked body passes"
is "$(curl -s -o /dev/null -o /dev/null -w '%{http_code}/%{num_connects} ' -H "Authorization: Bearer $T" \
    "$DEVSYS_URL/v1/tasks?limit=1" "$DEVSYS_URL/v1/tasks?limit=2")" "200/1 200/0 " \
    "keep-alive: a second request on the same connection"
is "$(python3 "$CLIENTS" pipeline 127.0.0.1 "$port" "$T")" "200 200 200" "three pipelined requests are all answered"

# --- a head trickled in is cut after DEVSYS_HTTP_HEADER_TIMEOUT_S (2 s here)
t=$(python3 "$CLIENTS" slowone 127.0.0.1 "$port" 8)
it_diag "slow head cut after: $t s"
ok "a slow head is disconnected after the header timeout ($t s)" \
    awk -v t="$t" 'BEGIN {exit !(t != "never" && t >= 1.5 && t <= 4)}'
it_stop_manager

# --- connection cap: the cap+1th connection waits, and is served once one closes
lines0=$(wc -l <"$IT_DIR/manager.log")
DEVSYS_HTTP_MAX_CONNS=4 it_start_manager || it_bail "start manager with a cap of 4"
port=${DEVSYS_URL##*:}
python3 "$CLIENTS" hold 127.0.0.1 "$port" 4 >"$IT_DIR/hold.out" 2>&1 &
hold=$!
it_track_pid "$hold"
it_wait_for 5 "grep -q ready '$IT_DIR/hold.out'" || it_bail "hold 4 connections"
sleep 0.3
is "$(curl -s -o /dev/null -m 1 -w '%{http_code}' "$DEVSYS_URL/healthz")" 000 \
    "over the cap of 4: the 5th connection is not served"
kill "$hold"
wait "$hold" 2>/dev/null
is "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$DEVSYS_URL/healthz")" 200 "once they close, it is"
it_stop_manager

# --- out of file descriptors: accept() fails, the log stays short, service resumes
(ulimit -n 40 && exec env DEVSYS_LISTEN=127.0.0.1:0 "$BIN/manager/devsys-manager") \
    </dev/null >>"$IT_DIR/manager-emfile.log" 2>&1 7>&- &
MANAGER_PID=$!
maddr=$(ds_bound_addr "$IT_DIR/manager-emfile.log" "$MANAGER_PID" listening) \
    || it_bail "start manager with 40 descriptors"
mport=${maddr##*:}
ds_wait_http "http://127.0.0.1:$mport/healthz" 20 || it_bail "start manager with 40 descriptors"
python3 "$CLIENTS" hold 127.0.0.1 "$mport" 60 >"$IT_DIR/hold.out" 2>&1 &
hold=$!
it_track_pid "$hold"
it_wait_for 5 "grep -q ready '$IT_DIR/hold.out'" || it_bail "hold 60 connections"
sleep 3
lines=$(grep -c 'accept' "$IT_DIR/manager-emfile.log")
it_diag "accept lines logged in 3 s at the descriptor limit: $lines"
ok "at the descriptor limit the log grows by at most a few lines ($lines)" test "$lines" -le 5
kill "$hold"
wait "$hold" 2>/dev/null
ok "the manager serves again once descriptors are free" ds_wait_http "http://127.0.0.1:$mport/healthz" 5
ok "the manager log after the cap test stays short" test $(( $(wc -l <"$IT_DIR/manager.log") - lines0 )) -le 20
it_done
