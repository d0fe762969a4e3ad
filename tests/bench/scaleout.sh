# shellcheck shell=bash
# tests/bench/scaleout.sh: `tests/bench/run scaleout`, sourced by run once the
# servers are up. For each number of managers in SCALEOUT_MANAGERS and of
# agents in SCALEOUT_AGENTS (all on this machine, agents x DEVSYS_CONCURRENCY
# on queue noop): a stream run (STREAM_N hand-pushed tasks) and an HTTP run
# (HTTP_N tasks, devsys-bench's connections round-robin over the managers),
# and, over each run, the CPU each side used (utime + stime from /proc, in %
# of one core; this machine has $(nproc)): PostgreSQL (postmaster and every
# backend), Redis, the managers, the agents. The side near 100 % x cores is
# the one that saturates.
# Environment: SCALEOUT_MANAGERS="1 2" SCALEOUT_AGENTS="1 2 4" STREAM_N HTTP_N

SCALEOUT_MANAGERS=${SCALEOUT_MANAGERS:-1 2}
SCALEOUT_AGENTS=${SCALEOUT_AGENTS:-1 2 4}

# scaleout_sample: "pg redis managers agents" ticks now.
scaleout_sample() {
    # shellcheck disable=SC2046 # the children's pids, one argument each
    echo "$(cpu_ticks "$PG_PID" $(ps -o pid= --ppid "$PG_PID")) $(cpu_ticks "$REDIS_PID")" \
         "$(cpu_ticks "${MANAGER_PIDS[@]}") $(cpu_ticks "${AGENT_PIDS[@]}")"
}

# scaleout_one MODE N: one devsys-bench run; prints "tasks/s pg% redis% mgr% agents%
# pg_us redis_us mgr_us agents_us" (CPU per task, µs).
scaleout_one() {
    local t0 t1 a b res hz
    hz=$(getconf CLK_TCK)
    a=$(scaleout_sample)
    t0=$(ds_now_ms)
    "$BIN/tests/bench/devsys-bench" --agent-pids "$PIDS" --wait "$BENCH_WAIT" "$1" "$2" \
        >"$DIR/scaleout-$1.out" 2>"$DIR/scaleout-$1.err" || { cat "$DIR/scaleout-$1.err" >&2; return 1; }
    t1=$(ds_now_ms)
    b=$(scaleout_sample)
    res=$(grep '^RESULT ' "$DIR/scaleout-$1.out" | tr ' ' '\n' | sed -n 's/^tasks_per_s=//p')
    awk -v a="$a" -v b="$b" -v ms=$((t1 - t0)) -v hz="$hz" -v r="$res" -v n="$2" 'BEGIN {
        split(a, x, " "); split(b, y, " "); printf "%s", r
        for (i = 1; i <= 4; i++) printf " %.0f", 100 * (y[i] - x[i]) / hz / (ms / 1000)
        for (i = 1; i <= 4; i++) printf " %.0f", 1e6 * (y[i] - x[i]) / hz / n }'
}

scaleout_run() {
    local m a s h rows=() us=()
    echo "scale-out: managers {$SCALEOUT_MANAGERS} x agents {$SCALEOUT_AGENTS} x $DEVSYS_CONCURRENCY;" \
         "stream $STREAM_N, http $HTTP_N; $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
    for m in $SCALEOUT_MANAGERS; do
        stop_managers
        start_managers "$m"
        for a in $SCALEOUT_AGENTS; do
            stop_agents
            start_agents "$a"
            sleep 1
            agents_alive
            s=$(scaleout_one stream "$STREAM_N") || fail "stream run ($m managers, $a agents)"
            h=$(scaleout_one http "$HTTP_N") || fail "http run ($m managers, $a agents)"
            agents_alive
            set -- $s
            local s_pct="$1 $2 $3 $4 $5" s_us="$6 $7 $8 $9"
            set -- $h
            rows+=("$(printf '%-8s %-6s %9s %5s%% %5s%% %5s%% %5s%% %9s %5s%% %5s%% %5s%% %5s%%  %s' "$m" "$a" $s_pct \
                $1 $2 $3 $4 $5 "$(cut -d' ' -f1 /proc/loadavg)")")
            us+=("$(printf '%-8s %-6s %7s %7s %7s %7s   %7s %7s %7s %7s' "$m" "$a" $s_us $6 $7 $8 $9)")
            echo "${rows[-1]}"
        done
    done
    echo
    echo "CPU: % of one core over each run (PostgreSQL = postmaster + backends); load = 1-min load average after"
    printf '%-8s %-6s %9s %6s %6s %6s %6s %9s %6s %6s %6s %6s  %s\n' managers agents stream/s pg redis mgr agents \
        http/s pg redis mgr agents load
    printf '%s\n' "${rows[@]}"
    echo
    echo "CPU per task, µs (stream | http)"
    printf '%-8s %-6s %7s %7s %7s %7s   %7s %7s %7s %7s\n' managers agents pg redis mgr agents pg redis mgr agents
    printf '%s\n' "${us[@]}"
}
