# shellcheck shell=bash
# tests/bench/scale.sh: `tests/bench/run scale`, sourced by run once the servers,
# the manager and the agents are up. Fills the task tables to each size of
# SCALE_SIZES (cumulative, finished noop tasks with one attempt each) and at each
# measures throughput (stream SCALE_STREAM_N), light load (RATE/s for RATE_SECS),
# each SCALE_REPEAT times (the median is reported),
# PostgreSQL CPU while idle (SCALE_IDLE_S) and list/search/get answer times.
# Every filled task has a name (job-<i mod 1000>) and a tag (t<i mod 100>), so
# the search indexes hold every row: a name matches 0.1 % of the rows, the
# prefix job-42* 1.1 % (job-42, job-420..429), a tag 1 %.
#
# Rows finished within the retention window stay in `tasks` (up to SCALE_HOT, the
# last 20 hours); the rest is history (finished 2-9 days ago, in tasks_history).
# Environment: SCALE_SIZES="0 1000000 10000000" SCALE_HOT=1000000
#   SCALE_STREAM_N=20000 SCALE_IDLE_S=10 SCALE_CHUNK=1000000 SCALE_REPEAT=3

SCALE_SIZES=${SCALE_SIZES:-0 1000000 10000000}
SCALE_HOT=${SCALE_HOT:-1000000}
SCALE_STREAM_N=${SCALE_STREAM_N:-20000}
SCALE_IDLE_S=${SCALE_IDLE_S:-10}
SCALE_CHUNK=${SCALE_CHUNK:-1000000}
SCALE_REPEAT=${SCALE_REPEAT:-3}
WARMUP_SECS=${WARMUP_SECS:-2}

scale_sql() { ds_psql "$DEVSYS_DATABASE_URL" "$1"; }

# scale_fill TABLE ATTEMPTS_TABLE FROM N FIRST_S SPAN_S: N rows numbered from
# FROM, created FIRST_S seconds ago and spread over SPAN_S seconds (newer as the
# number grows); 1 % dead (letter purged), 1 % failed, the rest succeeded.
scale_fill() {
    local t=$1 at=$2 from=$3 n=$4 first=$5 span=$6 extra=''
    [[ $at == task_attempts_history ]] && extra=', task_finished_at'
    scale_sql "
      WITH g AS (SELECT i, now() - ($first - $span * i::float8 / $((from + n))) * interval '1 second' AS c,
                        CASE WHEN i % 100 = 0 THEN 'dead' WHEN i % 100 = 1 THEN 'failed' ELSE 'succeeded' END AS s
                 FROM generate_series($from + 1, $from + $n) i),
      t AS (INSERT INTO $t (id, queue, kind, spec, state, attempt, created_at, started_at, finished_at,
                            published_at, dlq_purged_at, last_error)
            SELECT gen_random_uuid(), 'noop', 'noop',
                   jsonb_build_object('kind', 'noop', 'name', 'job-' || i % 1000, 'tags', jsonb_build_array('t' || i % 100)),
                   s, 1, c, c, c + interval '3 ms',
                   c, CASE WHEN s = 'dead' THEN c + interval '1 s' END,
                   CASE WHEN s <> 'succeeded' THEN 'scale fill' END FROM g
            RETURNING id, state, started_at, finished_at)
      INSERT INTO $at (task_id, attempt, agent, started_at, finished_at, outcome, error$extra)
      SELECT id, 1, 'fill', started_at, finished_at, state, NULL$( [[ -n $extra ]] && echo ', finished_at') FROM t" >/dev/null
}

# Fills to total rows: tasks first (up to SCALE_HOT), then history.
scale_fill_to() {
    local total=$1 have_hot have_hist want_hot n
    have_hot=$(scale_sql "SELECT count(*) FROM tasks WHERE attempt = 1 AND kind = 'noop' AND source IS NULL")
    have_hist=$(scale_sql "SELECT count(*) FROM tasks_history")
    want_hot=$(( total < SCALE_HOT ? total : SCALE_HOT ))
    while (( have_hot < want_hot )); do
        n=$(( want_hot - have_hot < SCALE_CHUNK ? want_hot - have_hot : SCALE_CHUNK ))
        scale_fill tasks task_attempts "$have_hot" "$n" $((20 * 3600)) $((19 * 3600)) || return 1
        have_hot=$(( have_hot + n ))
    done
    while (( have_hot + have_hist < total )); do
        n=$(( total - have_hot - have_hist < SCALE_CHUNK ? total - have_hot - have_hist : SCALE_CHUNK ))
        scale_fill tasks_history task_attempts_history "$have_hist" "$n" $((9 * 86400)) $((7 * 86400)) || return 1
        have_hist=$(( have_hist + n ))
    done
}

# CPU ticks (utime + stime) of the postmaster and all its children.
# shellcheck disable=SC2046 # the children's pids, one argument each
scale_pg_ticks() { cpu_ticks "$PG_PID" $(ps -o pid= --ppid "$PG_PID"); }

# Median of 5 answer times of GET URL, in ms.
scale_http_ms() {
    local i ts=()
    for i in 1 2 3 4 5; do
        ts+=("$(curl -s -o /dev/null -w '%{time_total}' -H "Authorization: Bearer $DEVSYS_TOKEN" "$MANAGER_URL$1")")
    done
    printf '%s\n' "${ts[@]}" | sort -n | sed -n 3p | awk '{ printf "%.1f", $1 * 1000 }'
}

# scale_bench ARGS...: one devsys-bench run; prints its RESULT line.
scale_bench() {
    "$BIN/tests/bench/devsys-bench" --agent-pids "$PIDS" --wait "$BENCH_WAIT" "$@" \
        2>"$DIR/scale-$1.err" >"$DIR/scale-$1.out" || { cat "$DIR/scale-$1.err" >&2; return 1; }
    grep '^RESULT ' "$DIR/scale-$1.out"
}

# scale_field LINE NAME: the value of NAME=... in a RESULT line.
scale_field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

scale_median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# scale_explain NOW_S: EXPLAIN ANALYZE of the page query manager/http_search.c
# builds for ?name=job-42, ?name=job-42*, ?tag=t7 and ?name=job-42&since&until (same text,
# without the JSON around it), planned for its values as the manager does
# (pgc_query_once: the unnamed statement, a custom plan each time).
scale_explain() {
    local since=$(( ($1 - 5 * 86400) * 1000000 )) until=$(( ($1 - 4 * 86400) * 1000000 )) w
    for w in "spec ? 'name' AND (spec->>'name') = \$1 ;; 'job-42'" \
             "spec ? 'name' AND (spec->>'name') ~>=~ \$1 AND (spec->>'name') ~<~ (\$1 || chr(1114111)) ;; 'job-42'" \
             "spec ? 'tags' AND spec->'tags' @> \$1::jsonb ;; '[\"t7\"]'" \
             "spec ? 'name' AND (spec->>'name') = \$1 AND created_at >= ('epoch'::timestamptz + \$2::bigint * interval '1 microsecond') AND created_at < ('epoch'::timestamptz + \$3::bigint * interval '1 microsecond') ;; 'job-42', $since, $until"; do
        local cond=${w%% ;; *} args=${w#* ;; } hist=''
        [[ $cond == *'$2'* ]] && hist=" AND finished_at >= ('epoch'::timestamptz + \$2::bigint * interval '1 microsecond') - interval '1 day'"
        echo "== WHERE $cond ($args)"
        psql "$DEVSYS_DATABASE_URL" -XAtq -v ON_ERROR_STOP=1 <<SQL
PREPARE s AS (SELECT * FROM tasks WHERE true AND $cond ORDER BY created_at DESC, id DESC LIMIT 50)
  UNION ALL (SELECT * FROM tasks_history WHERE true AND $cond$hist ORDER BY created_at DESC, id DESC LIMIT 50)
  ORDER BY created_at DESC, id DESC LIMIT 50;
SET plan_cache_mode = force_custom_plan;
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) EXECUTE s($args);
SQL
    done 2>&1 | grep -v '^[0-9a-f]\{8\}-.*|' 
}

scale_run() {
    local size rows=() t0 fill_s a b hz res_s res_r hist_id k tps p50 p99
    hz=$(getconf CLK_TCK)
    scale_sql "SELECT devsys_history_maintain(90, 2, current_date - 10)" >/dev/null || fail "history partitions"
    for size in $SCALE_SIZES; do
        echo
        echo "== scale: $size finished tasks"
        t0=$(ds_now_ms)
        scale_fill_to "$size" || { log_tails; fail "fill to $size failed"; }
        # the bulk load's own writes are not what is measured: flushed before
        scale_sql "VACUUM ANALYZE" >/dev/null && scale_sql "CHECKPOINT" >/dev/null || fail "VACUUM ANALYZE"
        fill_s=$(( ($(ds_now_ms) - t0) / 1000 ))
        echo "filled in ${fill_s}s (with VACUUM ANALYZE and CHECKPOINT): tasks $(scale_sql "SELECT count(*) FROM tasks"),"\
             "history $(scale_sql "SELECT count(*) FROM tasks_history"), database $(scale_sql \
             "SELECT pg_size_pretty(pg_database_size(current_database()))")"
        # the machine may be shared: each run SCALE_REPEAT times, the median reported
        tps=() p50=() p99=()
        for ((k = 0; k < SCALE_REPEAT; k++)); do
            res_s=$(scale_bench stream "$SCALE_STREAM_N") || fail "stream"
            # warm-up: the light-load figures measure the steady state, not cold caches
            (( WARMUP_SECS > 0 )) && { scale_bench rate "$RATE" "$WARMUP_SECS" >/dev/null || fail "warm-up"; }
            res_r=$(scale_bench rate "$RATE" "$RATE_SECS") || fail "rate"
            tps+=("$(scale_field "$res_s" tasks_per_s)")
            p50+=("$(scale_field "$res_r" p50_ms)")
            p99+=("$(scale_field "$res_r" p99_ms)")
        done
        echo "runs: tasks/s ${tps[*]}; light-load p50 ${p50[*]} ms; p99 ${p99[*]} ms; load average $(cut -d" " -f1-3 /proc/loadavg)"
        agents_alive
        sleep 2
        a=$(scale_pg_ticks)
        sleep "$SCALE_IDLE_S"
        b=$(scale_pg_ticks)
        now_s=$(date +%s)
        hist_id=$(scale_sql "SELECT id FROM tasks_history LIMIT 1")
        [[ -n $hist_id ]] || hist_id=$(scale_sql "SELECT id FROM tasks LIMIT 1")
        rows+=("$(printf '%-10s %8s %9s %7s %7s %7s %9s %9s %9s %9s %9s %9s %9s %9s %9s' "$size" "$fill_s" "$(scale_median "${tps[@]}")" \
            "$(scale_median "${p50[@]}")" "$(scale_median "${p99[@]}")" \
            "$(awk -v d=$((b - a)) -v hz="$hz" -v s="$SCALE_IDLE_S" 'BEGIN { printf "%.2f", 100 * d / hz / s }')" \
            "$(scale_http_ms '/v1/tasks?state=dead&limit=50')" \
            "$(scale_http_ms '/v1/tasks?state=succeeded&limit=50')" \
            "$(scale_http_ms '/v1/tasks?limit=50')" \
            "$(scale_http_ms "/v1/tasks/$hist_id")" \
            "$(scale_http_ms '/v1/tasks?name=job-42&limit=50')" \
            "$(scale_http_ms '/v1/tasks?name=job-42*&limit=50')" \
            "$(scale_http_ms '/v1/tasks?tag=t7&limit=50')" \
            "$(scale_http_ms "/v1/tasks?name=job-42&since=$((now_s - 5 * 86400))&until=$((now_s - 4 * 86400))&limit=50")" \
            "$(scale_http_ms "/v1/tasks?tag=t7&state=dead&since=$((now_s - 3600))&limit=50")")")
        echo "${rows[-1]}"
        # how the searches reach their rows, for BENCHMARKS.md
        [[ -n ${SCALE_EXPLAIN:-} ]] && scale_explain "$now_s" >"$DIR/explain-$size.txt" \
            && echo "plans: $DIR/explain-$size.txt"
    done
    echo
    printf '%-10s %8s %9s %7s %7s %7s %9s %9s %9s %9s %9s %9s %9s %9s %9s\n' rows fill_s tasks/s p50_ms p99_ms pg_idle% \
        dead_ms succ_ms all_ms get_ms name_ms prefix_ms tag_ms name_t_ms tag_d_ms
    printf '%s\n' "${rows[@]}"
}
