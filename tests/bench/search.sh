# shellcheck shell=bash
# tests/bench/search.sh: `tests/bench/run search` (`./dev bench search`), sourced
# by run once the servers, the manager and the agents are up. Fills the task
# tables to SEARCH_ROWS finished tasks with scale.sh's fill (up to SEARCH_HOT in
# `tasks`, the rest in tasks_history), adds one task with a rare word through
# the API, then times the console's search box — GET /v1/tasks?q= (full text over
# spec and last error, migrations/016_task_text.sql) — for words matching one
# task, 0.1 %, 1 %, 2 % (last_error) and every task, and one no task matches:
# the median of 5 answers each, and whether the slowest is under 200 ms.
# Environment: SEARCH_ROWS=1000000 SEARCH_HOT=800000 SCALE_CHUNK=1000000

SEARCH_ROWS=${SEARCH_ROWS:-1000000}
SCALE_HOT=${SEARCH_HOT:-800000}
# shellcheck source=tests/bench/scale.sh
source "$(dirname "${BASH_SOURCE[0]}")/scale.sh"

search_run() {
    local t0 fill_s q ms max=0 line n
    scale_sql "SELECT devsys_history_maintain(90, 2, current_date - 10)" >/dev/null || fail "history partitions"
    t0=$(ds_now_ms)
    scale_fill_to "$SEARCH_ROWS" || { log_tails; fail "fill to $SEARCH_ROWS failed"; }
    curl -s -o /dev/null -H "Authorization: Bearer $DEVSYS_TOKEN" -d '{"kind":"noop","name":"bench axolotl needle"}' \
        "$MANAGER_URL/v1/tasks" || fail "submit"
    scale_sql "VACUUM ANALYZE" >/dev/null && scale_sql "CHECKPOINT" >/dev/null || fail "VACUUM ANALYZE"
    fill_s=$(( ($(ds_now_ms) - t0) / 1000 ))
    echo "== search: $(scale_sql "SELECT count(*) FROM tasks") tasks + $(scale_sql "SELECT count(*) FROM tasks_history")" \
         "in history, filled in ${fill_s}s; database $(scale_sql "SELECT pg_size_pretty(pg_database_size(current_database()))")," \
         "text indexes $(scale_sql "SELECT pg_size_pretty(sum(pg_relation_size(indexrelid))) FROM pg_index
                                   WHERE indexrelid::regclass::text ~ '^tasks(_history)?_text'")"
    printf '%-28s %9s %9s\n' query matches median_ms
    for q in axolotl job-42 t7 'scale%20fill' noop nosuchword; do
        n=$(scale_sql "SELECT (SELECT count(*) FROM tasks WHERE devsys_task_text(spec, last_error) @@ websearch_to_tsquery('simple', '${q//%20/ }'))
                            + (SELECT count(*) FROM tasks_history WHERE devsys_task_text(spec, last_error) @@ websearch_to_tsquery('simple', '${q//%20/ }'))")
        ms=$(scale_http_ms "/v1/tasks?q=$q&limit=50")
        printf '%-28s %9s %9s\n' "q=$q" "$n" "$ms"
        max=$(awk -v a="$max" -v b="$ms" 'BEGIN { print (b > a ? b : a) }')
    done
    line="SEARCH rows=$SEARCH_ROWS slowest_ms=$max under_200ms=$(awk -v m="$max" 'BEGIN { print (m < 200 ? "yes" : "no") }')"
    echo "$line"
}
