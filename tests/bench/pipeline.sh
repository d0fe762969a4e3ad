# shellcheck shell=bash
# tests/bench/pipeline.sh: `tests/bench/run pipeline`, sourced by run once the
# servers, the manager and the agents (queue noop) are up. First plain noop
# tasks through the HTTP API (devsys-bench http, PIPE_STEPS x PIPE_N tasks),
# then PIPE_N pipelines of PIPE_STEPS noop steps in a chain (a -> b -> ...),
# submitted with POST /v1/pipelines by PIPE_CONNS parallel curl transfers;
# waits until every pipeline has finished and prints steps/s and pipelines/s
# (first pipeline created to last finished), the pipeline latency (created to
# finished) and the machine's load average.
# Environment: PIPE_N=1000 PIPE_STEPS=5 PIPE_CONNS=8

PIPE_N=${PIPE_N:-1000}
PIPE_STEPS=${PIPE_STEPS:-5}
PIPE_CONNS=${PIPE_CONNS:-8}

pipeline_sql() { ds_psql "$DEVSYS_DATABASE_URL" "$1"; }

# The pipeline document: PIPE_STEPS noop steps, each needing the one before.
pipeline_doc() {
    jq -nc --argjson n "$PIPE_STEPS" '{name: "bench", steps: ([range(0; $n) |
        {key: "s\(.)", value: ({spec: {kind: "noop"}} + (if . > 0 then {needs: ["s\(. - 1)"]} else {} end))}]
        | from_entries)}'
}

# POSTs the document PIPE_N times over PIPE_CONNS parallel transfers; fails
# unless every answer is 201.
pipeline_submit() {
    local cfg=$DIR/pipeline-curl.cfg i
    pipeline_doc >"$DIR/pipeline.json"
    {
        for ((i = 0; i < PIPE_N; i++)); do
            printf 'url = "%s/v1/pipelines"\nheader = "Authorization: Bearer %s"\n' "$MANAGER_URL" "$DEVSYS_TOKEN"
            printf 'header = "Content-Type: application/json"\ndata-binary = "@%s"\n' "$DIR/pipeline.json"
            printf 'output = "/dev/null"\nwrite-out = "%%{http_code}\\n"\n'
            (( i + 1 < PIPE_N )) && printf 'next\n'
        done
    } >"$cfg"
    curl -sS --no-progress-meter --parallel --parallel-max "$PIPE_CONNS" -K "$cfg" >"$DIR/pipeline-codes.txt" \
        2>"$DIR/pipeline-curl.err" || { cat "$DIR/pipeline-curl.err" >&2; fail "curl failed submitting the pipelines"; }
    local good
    good=$(grep -c '^201$' "$DIR/pipeline-codes.txt")
    (( good == PIPE_N )) || fail "$good of $PIPE_N pipeline submits answered 201: $(sort "$DIR/pipeline-codes.txt" | uniq -c | tr '\n' ' ')"
}

pipeline_run() {
    local plain t0 t1 done_n deadline res load0 load1
    printf 'devsys pipeline bench: %s pipelines x %s noop steps; %s agents x concurrency %s, managers %s\n' \
        "$PIPE_N" "$PIPE_STEPS" "$AGENTS" "$DEVSYS_CONCURRENCY" "$DEVSYS_URL"
    load0=$(cut -d' ' -f1-3 /proc/loadavg)

    # plain tasks, as many as the pipelines have steps, for comparison
    "$BIN/tests/bench/devsys-bench" --agent-pids "$PIDS" --wait "$BENCH_WAIT" http $((PIPE_N * PIPE_STEPS)) \
        >"$DIR/bench-plain.out" 2>"$DIR/bench-plain.err" \
        || { cat "$DIR/bench-plain.err" >&2; log_tails; fail "devsys-bench http failed"; }
    plain=$(grep '^RESULT ' "$DIR/bench-plain.out")
    agents_alive

    t0=$(ds_now_ms)
    pipeline_submit
    t1=$(ds_now_ms)
    deadline=$(( $(ds_now_ms) + BENCH_WAIT * 1000 ))
    while :; do
        done_n=$(pipeline_sql "SELECT count(*) FROM pipelines WHERE state <> 'running'")
        (( done_n >= PIPE_N )) && break
        (( $(ds_now_ms) < deadline )) || { log_tails; fail "only $done_n of $PIPE_N pipelines finished within ${BENCH_WAIT}s"; }
        sleep 0.2
    done
    agents_alive
    load1=$(cut -d' ' -f1-3 /proc/loadavg)
    [[ $(pipeline_sql "SELECT count(*) FROM pipelines WHERE state = 'succeeded'") == "$PIPE_N" ]] \
        || fail "not every pipeline succeeded: $(pipeline_sql "SELECT state, count(*) FROM pipelines GROUP BY 1")"
    [[ $(pipeline_sql "SELECT count(*) FROM tasks WHERE pipeline_id IS NOT NULL AND state = 'succeeded'") \
        == $((PIPE_N * PIPE_STEPS)) ]] || fail "the pipelines' tasks are not $((PIPE_N * PIPE_STEPS)) succeeded rows"
    res=$(pipeline_sql "
        WITH p AS (SELECT created_at, finished_at, extract(epoch FROM finished_at - created_at) * 1000 AS ms
                   FROM pipelines WHERE name = 'bench')
        SELECT round(extract(epoch FROM max(finished_at) - min(created_at))::numeric, 3) || ' ' ||
               round(($PIPE_N * $PIPE_STEPS / extract(epoch FROM max(finished_at) - min(created_at)))::numeric) || ' ' ||
               round(($PIPE_N / extract(epoch FROM max(finished_at) - min(created_at)))::numeric) || ' ' ||
               round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1) || ' ' ||
               round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1) FROM p")
    read -r el steps_s pipes_s p50 p99 <<<"$res"
    declare -A r=()
    for kv in ${plain#RESULT }; do
        r[${kv%%=*}]=${kv#*=}
    done
    echo
    printf '%-28s %8s %9s %10s %12s %9s %9s\n' run tasks elapsed_s tasks/s pipelines/s p50_ms p99_ms
    printf '%-28s %8s %9s %10s %12s %9s %9s\n' "plain noop (HTTP, 500/req)" "${r[tasks]}" "${r[elapsed_s]}" \
        "${r[tasks_per_s]}" - "${r[p50_ms]}" "${r[p99_ms]}"
    printf '%-28s %8s %9s %10s %12s %9s %9s\n' "pipelines ${PIPE_N}x${PIPE_STEPS} noop" "$((PIPE_N * PIPE_STEPS))" \
        "$el" "$steps_s" "$pipes_s" "$p50" "$p99"
    printf 'pipeline submits: %s in %.2f s (%s parallel); latency is pipeline created -> finished\n' \
        "$PIPE_N" "$(awk -v ms=$((t1 - t0)) 'BEGIN { print ms / 1000 }')" "$PIPE_CONNS"
    printf 'load average before: %s, after: %s (%s cores)\n' "$load0" "$load1" "$(nproc)"
    echo "RESULT mode=pipeline pipelines=$PIPE_N steps=$PIPE_STEPS elapsed_s=$el steps_per_s=$steps_s pipelines_per_s=$pipes_s p50_ms=$p50 p99_ms=$p99 plain_tasks_per_s=${r[tasks_per_s]}"
}
