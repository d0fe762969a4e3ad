#!/usr/bin/env bash
# Kind monitor, one probe per task, against real targets on loopback: the task
# succeeds whenever the probe was carried out and its result says how the
# target is ({"ok", "latency_ms", "error", "type", ...}); http status, body
# regex, latency bound, a 100 MB body (bounded memory), TLS days left; a port
# that accepts and never answers does not delay 50 probes sent with it; tcp,
# dns, script and log probes; bad specs are refused at submit naming the field.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
it_start_manager || it_bail "start manager"
it_start_agent m1 DEVSYS_QUEUES=monitor DEVSYS_CONCURRENCY=64

# start_target NAME [--tls CERT KEY]: tests/integration/monitor_server.py; sets
# PORT[NAME] (http), HANG[NAME] (accepts, never answers) and FULL[NAME] (a full
# backlog: a connect gets no answer).
declare -A PORT=() HANG=() FULL=()
start_target() {
    local name=$1 line
    shift
    python3 "$ds_root/tests/integration/monitor_server.py" "$@" </dev/null \
        >"$IT_DIR/target-$name.out" 2>"$IT_DIR/target-$name.log" 7>&- &
    it_track_pid $!
    it_wait_for 10 "grep -q 'listening on' '$IT_DIR/target-$name.out'" || return 1
    line=$(grep -o 'listening on .*' "$IT_DIR/target-$name.out")
    read -r _ _ PORT[$name] HANG[$name] FULL[$name] <<<"$line"
}
start_target t || it_bail "start the target server"
U=http://127.0.0.1:${PORT[t]}

# probe SECTION: submits a monitor task, waits for it to end, prints its result.
probe() {
    local id
    id=$(ctl submit - <<<"{\"kind\":\"monitor\",\"monitor\":$1}") || return 1
    it_wait_state 30 "$id" succeeded >/dev/null || { it_psql "SELECT state, error FROM tasks WHERE id='$id'" >&2; return 1; }
    it_psql "SELECT result FROM tasks WHERE id='$id'"
}
# submit_status BODY: the HTTP status of POST /v1/tasks, its answer in $IT_DIR/body
submit_status() {
    curl -s -o "$IT_DIR/body" -w '%{http_code}' -X POST -H "Authorization: Bearer $DEVSYS_TOKEN" \
        "$DEVSYS_URL/v1/tasks" -d "$1"
}
rss_kb() { awk '/^VmHWM:/ {print $2}' "/proc/${AGENT_PIDS[m1]}/status"; }

# ------------------------------------------------ http
r=$(probe "{\"type\":\"http\",\"url\":\"$U/ok\",\"body_regex\":\"^rea\"}")
it_diag "$r"
is "$(jq -c '[.ok, .error, .type, .status, .bytes, .cert_days_left]' <<<"$r")" '[true,null,"http",200,5,null]' \
    "http 200 with a matching body: ok, status, bytes"
is "$(jq -r '.latency_ms | type' <<<"$r")" number "latency_ms is a number"
is "$(jq -r 'keys | join(",")' <<<"$r")" "bytes,cert_days_left,error,latency_ms,ok,status,type" \
    "the result holds exactly the documented fields"

r=$(probe "{\"type\":\"http\",\"url\":\"$U/status/500\",\"timeout_s\":5}")
is "$(jq -c '[.ok, .status]' <<<"$r")" '[false,500]' "http 500: the task succeeds, the probe is not ok"
is "$(jq -r .error <<<"$r")" "GET $U/status/500 answered 500, expected 2xx or 3xx" "the error names the status and what was expected"
r=$(probe "{\"type\":\"http\",\"url\":\"$U/status/204\",\"expect_status\":[200,201]}")
is "$(jq -r .error <<<"$r")" "GET $U/status/204 answered 204, expected one of 200, 201" "expect_status as a list"
r=$(probe "{\"type\":\"http\",\"url\":\"$U/ok\",\"method\":\"HEAD\",\"expect_status\":200}")
is "$(jq -c '[.ok, .bytes]' <<<"$r")" '[true,0]' "HEAD: ok, no body read"

r=$(probe "{\"type\":\"http\",\"url\":\"$U/ok\",\"body_regex\":\"^nope\"}")
is "$(jq -c '[.ok, .error]' <<<"$r")" '[false,"body does not match /^nope/"]' "a body regex miss"

r=$(probe "{\"type\":\"http\",\"url\":\"$U/slow/400\",\"max_latency_ms\":100}")
like "$(jq -r .error <<<"$r")" "^GET $U/slow/400 took [0-9]+ ms \\(> max_latency_ms 100\\)$" "latency over the bound"
ok "its latency_ms is the time it took" jq -e '.latency_ms >= 400 and .ok == false' <<<"$r"

closed=$(ds_free_port)
r=$(probe "{\"type\":\"http\",\"url\":\"http://127.0.0.1:$closed/\",\"timeout_s\":2}")
like "$(jq -r .error <<<"$r")" "^GET http://127.0.0.1:$closed/: .*(refused|connect)" "a refused http connection names the URL"
is "$(jq -c .status <<<"$r")" null "and has no status"

r=$(probe "{\"type\":\"http\",\"url\":\"http://127.0.0.1:${FULL[t]}/\",\"timeout_s\":1}")
like "$(jq -r .error <<<"$r")" "^(connect to 127\\.0\\.0\\.1:${FULL[t]} timed out after 1s|GET http://127\\.0\\.0\\.1:${FULL[t]}/: no connection within 1s)\$" \
    "an http connect that never completes: timed out, named"

# ------------------------------------------------ 100 MB bodies: bounded memory
hwm0=$(rss_kb)
r=$(probe "{\"type\":\"http\",\"url\":\"$U/big/100\",\"body_regex\":\"y\"}")
is "$(jq -c '[.ok, .error]' <<<"$r")" '[false,"body larger than 1048576 bytes (max_body_bytes)"]' \
    "a 100 MB body without Content-Length: a clear error"
ok "  the transfer stopped at the bound" jq -e '.bytes <= 1048576' <<<"$r"
r=$(probe "{\"type\":\"http\",\"url\":\"$U/bigcl/100\",\"max_body_bytes\":4096}")
is "$(jq -r .error <<<"$r")" "body larger than 4096 bytes (max_body_bytes)" "a 100 MB Content-Length: refused before reading"
hwm1=$(rss_kb)
it_diag "agent peak RSS ${hwm0} kB -> ${hwm1} kB"
ok "the agent's peak RSS grew by less than 20 MB (it is $(( (hwm1 - hwm0) / 1024 )) MB)" test $((hwm1 - hwm0)) -lt 20480

# ------------------------------------------------ a hung port delays no other probe
hung_body="{\"kind\":\"monitor\",\"monitor\":{\"type\":\"http\",\"url\":\"http://127.0.0.1:${HANG[t]}/\",\"timeout_s\":3}}"
batch="[$hung_body"
for _ in $(seq 50); do batch+=",{\"kind\":\"monitor\",\"monitor\":{\"type\":\"http\",\"url\":\"$U/slow/100\",\"timeout_s\":10}}"; done
batch+="]"
is "$(submit_status "$batch")" 201 "51 probes submitted at once: one hung port, 50 answering after 100 ms"
hung=$(jq -r '.tasks[0].id // .[0].id // empty' "$IT_DIR/body")
ids=$(jq -r '(.tasks // .)[1:][] | .id' "$IT_DIR/body" | sed "s/.*/'&'/" | paste -sd, -)
ok "all 51 end" it_wait_sql 30 "SELECT count(*) FROM tasks WHERE state='succeeded' AND id IN ('$hung',$ids)" 51
r=$(it_psql "SELECT result FROM tasks WHERE id='$hung'")
is "$(jq -r .error <<<"$r")" "GET http://127.0.0.1:${HANG[t]}/ timed out after 3s (connected, no complete answer)" \
    "the hung port times out after its own 3 s"
is "$(it_psql "SELECT count(*) FROM tasks WHERE id IN ($ids) AND (result->>'ok')::boolean")" 50 "the 50 others are ok"
spread=$(it_psql "SELECT round(1000 * extract(epoch FROM max(o.finished_at) - h.started_at)) FROM tasks o, tasks h
                  WHERE o.id IN ($ids) AND h.id = '$hung' GROUP BY h.started_at")
hung_ms=$(it_psql "SELECT round(1000 * extract(epoch FROM finished_at - started_at)) FROM tasks WHERE id='$hung'")
it_diag "the last of the 50 finished ${spread} ms after the hung probe started; the hung one took ${hung_ms} ms"
ok "the 50 finished within 2 s of the hung probe's start, not behind its 3 s timeout" test "$spread" -lt 2000
ok "their probes took under 1.5 s each" \
    test "$(it_psql "SELECT count(*) FROM tasks WHERE id IN ($ids) AND (result->>'latency_ms')::float > 1500")" = 0

# ------------------------------------------------ tcp
r=$(probe "{\"type\":\"tcp\",\"host\":\"127.0.0.1\",\"port\":${PORT[t]}}")
is "$(jq -c '[.ok, .error, .type]' <<<"$r")" '[true,null,"tcp"]' "tcp to a listening port: ok"
is "$(jq -r 'keys | join(",")' <<<"$r")" "error,latency_ms,ok,type" "a tcp result has no other fields"
r=$(probe "{\"type\":\"tcp\",\"host\":\"127.0.0.1\",\"port\":$closed,\"timeout_s\":2}")
is "$(jq -c '[.ok, .error]' <<<"$r")" "[false,\"connect to 127.0.0.1:$closed: Connection refused\"]" "tcp refused"
r=$(probe "{\"type\":\"tcp\",\"host\":\"127.0.0.1\",\"port\":${FULL[t]},\"timeout_s\":1}")
is "$(jq -c '[.ok, .error]' <<<"$r")" "[false,\"connect to 127.0.0.1:${FULL[t]} timed out after 1s\"]" \
    "tcp to a port that never completes the handshake times out after its own 1 s"
ok "  its latency_ms is about the timeout" jq -e '.latency_ms >= 900 and .latency_ms < 3000' <<<"$r"
r=$(probe "{\"type\":\"tcp\",\"host\":\"localhost\",\"port\":${PORT[t]}}")
is "$(jq -c .ok <<<"$r")" true "tcp to a name (resolved off the loop)"

# ------------------------------------------------ dns
r=$(probe '{"type":"dns","name":"localhost","expect":["127.0.0.1"]}')
it_diag "$r"
is "$(jq -c '[.ok, .error, .type]' <<<"$r")" '[true,null,"dns"]' "dns of localhost with the expected address"
ok "  its addresses include 127.0.0.1" jq -e '.addresses | index("127.0.0.1")' <<<"$r"
r=$(probe '{"type":"dns","name":"localhost","expect":["10.9.9.9"]}')
like "$(jq -r .error <<<"$r")" '^localhost resolved to \[.*"127\.0\.0\.1".*\], without the expected 10\.9\.9\.9$' \
    "an expected address missing is named"

# ------------------------------------------------ script
r=$(probe '{"type":"script","command":["sh","-c","exit 0"]}')
is "$(jq -c '[.ok, .error, .type, .exit_code]' <<<"$r")" '[true,null,"script",0]' "script exit 0: ok"
r=$(probe '{"type":"script","command":["sh","-c","echo disk full; exit 3"]}')
is "$(jq -c '[.ok, .error, .exit_code]' <<<"$r")" '[false,"script exited 3: disk full",3]' "script exit 3: not ok, its last line"
r=$(probe '{"type":"script","command":["sleep","5"],"timeout_s":0.5}')
is "$(jq -c '[.ok, .error, .exit_code]' <<<"$r")" '[false,"script timed out after 0.5s",null]' "a script past its timeout"
id=$(ctl submit - <<<'{"kind":"monitor","monitor":{"type":"script","command":["/nonexistent/probe"]},"retry_policy":{"max_attempts":1}}')
ok "a script that cannot run: the task fails (the probe was not carried out)" it_wait_state 20 "$id" dead
like "$(it_psql "SELECT last_error FROM tasks WHERE id='$id'")" '^script: command: /nonexistent/probe: No such file' "  and says why"

# ------------------------------------------------ log pattern since an offset
LOG=$IT_DIR/app.log
printf 'start\nERROR old\n' >"$LOG"
r=$(probe "{\"type\":\"log\",\"path\":\"$LOG\",\"pattern\":\"ERROR\"}")
is "$(jq -c '[.ok, .matches, .offset, .type]' <<<"$r")" "[true,0,$(stat -c %s "$LOG"),\"log\"]" \
    "a first probe without offset starts at the end of the file"
off=$(jq .offset <<<"$r")
printf 'ERROR one\nfine\nERROR two\npartial' >>"$LOG"
r=$(probe "{\"type\":\"log\",\"path\":\"$LOG\",\"pattern\":\"ERROR\",\"offset\":$off}")
is "$(jq -c '[.ok, .matches]' <<<"$r")" '[false,2]' "two matching lines appended since"
is "$(jq -r .error <<<"$r")" "pattern /ERROR/ found 2 times since offset $off; last: ERROR two" "the error counts and shows the last"
off2=$(jq .offset <<<"$r")
is "$off2" $(( $(stat -c %s "$LOG") - 7 )) "the new offset stops before the unfinished last line"
printf ' ERROR three\n' >>"$LOG"
r=$(probe "{\"type\":\"log\",\"path\":\"$LOG\",\"pattern\":\"ERROR\",\"offset\":$off2}")
is "$(jq -c '[.matches, .offset]' <<<"$r")" "[1,$(stat -c %s "$LOG")]" "the line finished later is read whole"
r=$(probe "{\"type\":\"log\",\"path\":\"$IT_DIR/nope.log\",\"pattern\":\"E\",\"offset\":0}")
like "$(jq -r .error <<<"$r")" "^open $IT_DIR/nope.log: No such file or directory$" "a missing log file: not ok, named"

# ------------------------------------------------ TLS certificate days left
if openssl req -x509 -newkey rsa:2048 -nodes -days 3 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$IT_DIR/key.pem" -out "$IT_DIR/cert.pem" >"$IT_DIR/openssl.out" 2>&1; then
    start_target tls --tls "$IT_DIR/cert.pem" "$IT_DIR/key.pem" || it_bail "start the TLS target"
    S=https://127.0.0.1:${PORT[tls]}
    r=$(probe "{\"type\":\"http\",\"url\":\"$S/ok\",\"ca_file\":\"$IT_DIR/cert.pem\",\"cert_min_days\":14}")
    it_diag "$r"
    # 3 days from the second it was made: 2 full days left, or 3 within that second
    like "$(jq -c '[.ok, .status, .cert_days_left]' <<<"$r")" '^\[false,200,[23]\]$' "https: a certificate valid 3 more days"
    like "$(jq -r .error <<<"$r")" '^certificate expires in [23] days \(< 14\)$' "  fails cert_min_days 14, named"
    r=$(probe "{\"type\":\"http\",\"url\":\"$S/ok\",\"ca_file\":\"$IT_DIR/cert.pem\",\"cert_min_days\":1}")
    like "$(jq -c '[.ok, .cert_days_left]' <<<"$r")" '^\[true,[23]\]$' "  passes cert_min_days 1"
    r=$(probe "{\"type\":\"http\",\"url\":\"$S/ok\",\"timeout_s\":3}")
    like "$(jq -r .error <<<"$r")" "^GET $S/ok: .*certificate" "an unknown CA fails verification, named"
else
    it_diag "openssl cannot make a certificate: TLS checks skipped ($(tail -n 1 "$IT_DIR/openssl.out"))"
fi

# ------------------------------------------------ refused at submit
is "$(submit_status '{"kind":"monitor","monitor":{"type":"http","url":"http://h/","body_regex":"(unclosed"}}')" 400 \
    "a bad body regex: 400"
is "$(jq -r '.errors[0].field' "$IT_DIR/body")" monitor.body_regex "  naming monitor.body_regex"
like "$(jq -r '.errors[0].message' "$IT_DIR/body")" 'invalid regular expression /\(unclosed/' "  and the regex"
is "$(submit_status '{"kind":"monitor","monitor":{"type":"http","url":"gopher://h/"}}')" 400 "a bad URL: 400"
is "$(jq -r '.errors[0].field' "$IT_DIR/body")" monitor.url "  naming monitor.url"
is "$(submit_status '{"kind":"monitor","monitor":{"type":"log","path":"rel.log","pattern":"E"}}')" 400 "a relative log path: 400"
is "$(jq -r '.errors[0].field' "$IT_DIR/body")" monitor.path "  naming monitor.path"
ok "the agent is still running" ds_pid_alive "${AGENT_PIDS[m1]}"
it_done
