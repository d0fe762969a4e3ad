# shellcheck shell=bash
# tests/bench/probes.sh: `tests/bench/run probes` (`./dev bench probes`), sourced
# by run once the servers are up. One agent on queue monitor (concurrency
# DEVSYS_CONCURRENCY) runs PROBES_ROUNDS rounds of PROBES_N HTTP checks against
# a local target (tests/integration/monitor_server.py --fast, asyncio), each
# round submitted as one batch. Prints, per round, the probes/s the agent
# sustained (tasks / (last finished_at - first started_at)) and its RSS from
# /proc (VmRSS after the round, VmHWM: the peak so far).
# Environment: PROBES_N=1000 PROBES_ROUNDS=3

PROBES_N=${PROBES_N:-1000}
PROBES_ROUNDS=${PROBES_ROUNDS:-3}

probes_rss() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

probes_run() {
    local target_pid port agent r i spec t0 rate ok rss hwm rates=()
    [[ $PROBES_N =~ ^[1-9][0-9]*$ ]] && (( PROBES_N <= 10000 )) || fail "PROBES_N must be from 1 to 10000"
    stop_agents
    ds_spawn "$DIR/target.log" python3 "$(dirname "${BASH_SOURCE[0]}")/../integration/monitor_server.py" --fast
    target_pid=$DS_BG_PID
    AGENT_PIDS+=("$target_pid") # stopped on exit with the agents
    for ((i = 0; i < 100; i++)); do
        port=$(sed -n 's/^listening on //p' "$DIR/target.log")
        [[ -n $port ]] && break
        sleep 0.1
    done
    [[ -n $port ]] || fail "the probe target did not start"
    DEVSYS_AGENT_NAME=bench-probes DEVSYS_QUEUES=monitor ds_spawn "$DIR/agent-probes.log" "$BIN/agents/devsys-agent"
    agent=$DS_BG_PID
    AGENT_PIDS+=("$agent")
    STREAM_KEY="${DEVSYS_PREFIX:-devsys}:{monitor}:stream"
    wait_group
    printf 'devsys bench probes: 1 agent x concurrency %s, %s HTTP checks per round against 127.0.0.1:%s\n' \
        "$DEVSYS_CONCURRENCY" "$PROBES_N" "$port"
    printf 'agent RSS at start: %s kB\n' "$(probes_rss "$agent" VmRSS)"
    spec="{\"kind\":\"monitor\",\"name\":\"probe-ROUND\",\"monitor\":{\"type\":\"http\",\"url\":\"http://127.0.0.1:$port/health\",\"body_regex\":\"ready\",\"timeout_s\":10}}"
    for ((r = 1; r <= PROBES_ROUNDS; r++)); do
        { printf '['; for ((i = 1; i <= PROBES_N; i++)); do
            ((i > 1)) && printf ','
            printf '%s' "${spec/ROUND/$r}"
          done; printf ']'; } >"$DIR/probes-$r.json"
        t0=$(ds_now_ms)
        curl -sf -o /dev/null -X POST -H "Authorization: Bearer $DEVSYS_TOKEN" -H 'Content-Type: application/json' \
            --data-binary "@$DIR/probes-$r.json" "$MANAGER_URL/v1/tasks" || fail "submitting round $r failed"
        until [[ $(ds_psql "$DEVSYS_DATABASE_URL" "SELECT count(*) FROM tasks WHERE spec->>'name'='probe-$r'
                  AND state IN ('succeeded','failed','dead')") == "$PROBES_N" ]]; do
            (( $(ds_now_ms) - t0 < BENCH_WAIT * 1000 )) || { log_tails; fail "round $r did not finish in ${BENCH_WAIT}s"; }
            agents_alive
            sleep 0.2
        done
        read -r rate ok < <(ds_psql "$DEVSYS_DATABASE_URL" "SELECT round(count(*) / greatest(extract(epoch FROM
            max(finished_at) - min(started_at)), 0.001)), count(*) FILTER (WHERE (result->>'ok')::boolean)
            FROM tasks WHERE spec->>'name'='probe-$r'" | tr '|' ' ')
        rss=$(probes_rss "$agent" VmRSS)
        hwm=$(probes_rss "$agent" VmHWM)
        printf 'round %d: %s probes/s (%s of %s ok), agent RSS %s kB, peak %s kB\n' "$r" "$rate" "$ok" "$PROBES_N" "$rss" "$hwm"
        [[ $ok == "$PROBES_N" ]] || { log_tails; fail "round $r: only $ok of $PROBES_N probes ok"; }
        rates+=("$rate")
    done
    printf 'RESULT probes probes_per_s=%s rss_kb=%s peak_rss_kb=%s\n' \
        "$(printf '%s\n' "${rates[@]}" | sort -n | tail -n 1)" "$rss" "$hwm"
}
