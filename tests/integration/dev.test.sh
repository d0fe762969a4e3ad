#!/usr/bin/env bash
# dev.test.sh: `./dev up` on free ports with a temporary state dir starts the
# whole system and runs the sample pipeline to final states; `./dev down`
# stops exactly what up started and frees the ports; --purge deletes the state.
# The sample pipeline ends with the check `site` on the served production site,
# ok when up returns.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"

for b in manager/devsys-manager manager/devsysctl agents/devsys-agent; do
    [[ -x $BIN/$b ]] || it_bail "binaries present" "no $BIN/$b (build first)"
done

# Four distinct free ports.
ports=()
while (( ${#ports[@]} < 4 )); do
    p=$(ds_free_port) || it_bail "free ports"
    [[ " ${ports[*]} " == *" $p "* ]] || ports+=("$p")
done
export DEVSYS_DEV_REDIS_PORT=${ports[0]} DEVSYS_DEV_PG_PORT=${ports[1]} DEVSYS_DEV_HTTP_PORT=${ports[2]} DEVSYS_DEV_SITE_PORT=${ports[3]}
export DEVSYS_DEV_DIR=$IT_DIR/devstate
export DS_BUILD=$BIN DEVSYS_SKIP_APT=1 DEVSYS_SKIP_BUILD=1 DEVSYS_DEV_TOKEN=dev-test-token
unset DEVSYS_URL DEVSYS_TOKEN DEVSYS_DATABASE_URL DEVSYS_REDIS_URL
dev=$ds_root/dev
# Whatever happens below, nothing that up started may outlive this script.
it_on_exit "'$dev' down"

# A port taken by something else: up refuses clearly and starts nothing.
ds_start_redis "$IT_DIR/blocker" "$DEVSYS_DEV_HTTP_PORT" >/dev/null 2>&1 \
    || it_bail "start a process blocking the HTTP port"
blocker=$REDIS_PID
REDIS_PID=''
"$dev" up >"$IT_DIR/dev-up-blocked.out" 2>&1
st=$?
isnt_zero=$(( st != 0 ))
is "$isnt_zero" 1 "up fails when the HTTP port is taken (exit $st)"
like "$(cat "$IT_DIR/dev-up-blocked.out")" "port $DEVSYS_DEV_HTTP_PORT is already in use.*DEVSYS_DEV_HTTP_PORT" \
    "the message names the port and the variable"
is "$(find "$DEVSYS_DEV_DIR/pids" -name '*.pid' 2>/dev/null | wc -l)" 0 "nothing was started"
ds_stop_redis "$blocker"

# up
"$dev" up >"$IT_DIR/dev-up.log" 2>&1
is "$?" 0 "./dev up exits 0"
up_out=$(cat "$IT_DIR/dev-up.log")

names=(postgres redis manager agent-1 agent-2 site)
declare -A pids=()
for n in "${names[@]}"; do
    pids[$n]=$(cat "$DEVSYS_DEV_DIR/pids/$n.pid" 2>/dev/null)
    ok "$n is running (pid ${pids[$n]:-none})" ds_pid_alive "${pids[$n]:-}"
done

dburl=$(ds_pg_url "$DEVSYS_DEV_PG_PORT" devsys)
q() { psql "$dburl" -XAtq -v ON_ERROR_STOP=1 -c "$1" 2>&1; }
final="'succeeded','failed','dead','cancelled'"

is "$(q "SELECT count(*) FILTER (WHERE state IN ($final)) || '/' || count(*) FROM tasks WHERE pipeline_id IS NULL AND kind <> 'monitor'")" "5/5" \
    "the five sample tasks reached a final state"
is "$(q "SELECT state FROM tasks WHERE spec->>'name' = 'hello'")" succeeded "the echo task succeeded"
like "$(q "SELECT output_tail FROM tasks WHERE spec->>'name' = 'hello'")" "hello from devsys" \
    "its output_tail holds the echo"
like "$(q "SELECT state FROM tasks WHERE spec->>'name' = 'fails-with-3'")" '^(failed|dead)$' \
    "the failing exec task failed"
like "$(q "SELECT last_error FROM tasks WHERE spec->>'name' = 'fails-with-3'")" '3' \
    "its last_error mentions the exit status"
is "$(q "SELECT state FROM tasks WHERE spec->>'name' = 'pushed-with-redis-cli'")" succeeded \
    "the task pushed with redis-cli XADD succeeded"
is "$(q "SELECT string_agg(state, ',' ORDER BY state) FROM tasks WHERE kind IN ('sleep', 'noop')")" \
    "succeeded,succeeded" "the sleep and noop tasks succeeded"
# the sample site pipeline: build -> test -> staging -> production
site=$(q "SELECT id FROM pipelines WHERE name = 'site'")
is "$(q "SELECT state FROM pipelines WHERE name = 'site'")" succeeded "the sample site pipeline succeeded"
is "$(q "SELECT string_agg(step || ':' || state, ' ' ORDER BY pos) FROM pipeline_steps WHERE pipeline_id = '$site'")" \
    "build:succeeded test:succeeded staging:succeeded production:succeeded" "each of its four steps succeeded"
for e in staging production; do
    ok "$e: .devsys/deploy/$e/site/current serves version 1.0.0" \
        grep -qF 'version: 1.0.0<' "$DEVSYS_DEV_DIR/deploy/$e/site/current/index.html"
done
like "$up_out" "pipeline: $site  site  state succeeded" "up prints the pipeline's graph"
ok "the production site is served on port $DEVSYS_DEV_SITE_PORT" \
    grep -qF 'version: 1.0.0<' <(curl -s "http://127.0.0.1:$DEVSYS_DEV_SITE_PORT/")
is "$(q "SELECT state || ' ' || (probe->>'url') FROM checks WHERE name = 'site'")" \
    "ok http://127.0.0.1:$DEVSYS_DEV_SITE_PORT/" "the pipeline ends with the check site on it, ok"
like "$up_out" $'\nsite +http +ok ' "up prints devsysctl monitors with the check ok"
like "$up_out" "tests: +[1-9][0-9]* +passed" "up prints the test report"
like "$up_out" "devsysctl pipeline $site" "up says how to look at the pipeline again"
like "$up_out" "devsysctl revisions site" "up says where the deployed revisions are"
like "$up_out" "devsysctl rollback site production" "up says how to roll back"
like "$up_out" "export DEVSYS_URL=http://127.0.0.1:$DEVSYS_DEV_HTTP_PORT" "up prints DEVSYS_URL to export"
like "$up_out" "export DEVSYS_TOKEN=dev-test-token" "up prints DEVSYS_TOKEN to export"
like "$up_out" "dev down" "up tells how to stop"
ok "devsysctl list works with the printed env" \
    env DEVSYS_URL="http://127.0.0.1:$DEVSYS_DEV_HTTP_PORT" DEVSYS_TOKEN=dev-test-token \
    "$BIN/manager/devsysctl" list

# A second up while up: says so, starts nothing new.
"$dev" up >"$IT_DIR/dev-up-again.out" 2>&1
is "$?" 0 "a second up exits 0"
like "$(cat "$IT_DIR/dev-up-again.out")" "already up" "a second up says devsys is already up"
same=1
for n in "${names[@]}"; do
    [[ $(cat "$DEVSYS_DEV_DIR/pids/$n.pid" 2>/dev/null) == "${pids[$n]}" ]] || same=0
done
is "$same" 1 "a second up keeps the same processes"

# down
"$dev" down >"$IT_DIR/dev-down.out" 2>&1
is "$?" 0 "./dev down exits 0"
for n in "${names[@]}"; do
    ok "$n (pid ${pids[$n]:-none}) is gone" it_not ds_pid_alive "${pids[$n]:-}"
done
for p in "${ports[@]}"; do
    ok "nothing listens on port $p" it_not ds_port_listening "$p"
done
is "$(find "$DEVSYS_DEV_DIR/pids" -name '*.pid' | wc -l)" 0 "the pid files are removed"
ok "the data is kept" test -f "$DEVSYS_DEV_DIR/pg/data/PG_VERSION"

# Keep the logs for the diagnostics before --purge deletes them.
cp -rL "$DEVSYS_DEV_DIR/log" "$IT_DIR/dev-logs" 2>/dev/null
"$dev" down --purge >"$IT_DIR/dev-purge.out" 2>&1
is "$?" 0 "./dev down --purge exits 0"
ok "--purge deletes the state dir" it_not test -e "$DEVSYS_DEV_DIR"

it_done
