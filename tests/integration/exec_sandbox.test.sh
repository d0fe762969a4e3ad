#!/usr/bin/env bash
# What an exec task can reach: its environment (an allow-list, never the
# agent's credentials, read here from a *_FILE), loader variables refused,
# no descendant outliving the task (cgroup and subreaper), bounded checkpoints.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
it_start_manager || it_bail "start manager"

# a1: credentials from a file (as Docker secrets), default containment (a
# cgroup where the agent may create one). a2: credentials in its environment,
# DEVSYS_CGROUP=off (the subreaper sweep alone). Both carry a canary.
printf '%s\n' "$DEVSYS_DATABASE_URL" >"$IT_DIR/db_url"
canary=(TEST_SANDBOX_CANARY=canary-7f3a)
it_start_agent a1 DEVSYS_QUEUES=exec DEVSYS_DATABASE_URL= DEVSYS_DATABASE_URL_FILE="$IT_DIR/db_url" \
    DEVSYS_KILL_GRACE_S=0.5 "${canary[@]}"
it_start_agent a2 DEVSYS_QUEUES=coding DEVSYS_CGROUP=off DEVSYS_KILL_GRACE_S=0.5 \
    DEVSYS_CHECKPOINT_INTERVAL_S=0 DEVSYS_CHECKPOINT_KEEP=10 "${canary[@]}"

# ---- the environment a task sees
for kind in exec coding; do
    id=$(ctl submit - <<<"{\"kind\":\"$kind\",\"command\":[\"env\"],\"env\":{\"SPEC_VAR\":\"from-spec\"}}")
    ok "$kind: a task running env succeeds" it_wait_state 20 "$id" succeeded
    out=$(it_psql "SELECT output_tail FROM tasks WHERE id='$id'")
    is "$(grep -cE '^(DEVSYS_DATABASE_URL|DEVSYS_DATABASE_URL_FILE|DEVSYS_REDIS_URL|DEVSYS_ADMIN_TOKEN|TEST_SANDBOX_CANARY)=' <<<"$out")" 0 \
        "$kind: a task that prints its environment shows none of the agent's secrets"
    is "$(grep -cF -e "$DEVSYS_DATABASE_URL" -e "$DEVSYS_REDIS_URL" -e "$DEVSYS_ADMIN_TOKEN" -e canary-7f3a <<<"$out")" 0 \
        "$kind: nor their values under another name"
    is "$(grep -cx "DEVSYS_TASK_ID=$id" <<<"$out")" 1 "$kind: it shows DEVSYS_TASK_ID"
    is "$(grep -cx "SPEC_VAR=from-spec" <<<"$out")" 1 "$kind: and the spec's env"
done

# ---- loader variables are refused
code=$(curl -s -o "$IT_DIR/body" -w '%{http_code}' -H "Authorization: Bearer $DEVSYS_TOKEN" \
    --data-binary '{"kind":"exec","command":["true"],"env":{"LD_PRELOAD":"/tmp/evil.so"}}' "$DEVSYS_URL/v1/tasks")
is "$code" 400 "a spec setting LD_PRELOAD is refused with 400"
like "$(cat "$IT_DIR/body")" 'env\.LD_PRELOAD: loader variables may not be set' "the error names the field"
entry=$(it_redis XADD 'devsys:{exec}:stream' '*' spec '{"kind":"exec","command":["true"],"env":{"LD_PRELOAD":"/tmp/evil.so"}}')
ok "the same spec pushed by hand ends dead" it_wait_sql 20 "SELECT state FROM tasks WHERE source='$entry'" dead
like "$(it_psql "SELECT last_error FROM tasks WHERE source='$entry'")" 'env\.LD_PRELOAD: loader variables may not be set' \
    "its last_error names the field"

# ---- no descendant survives its task
like "$(cat "$IT_DIR/agent-a1.log")" 'task containment: (a cgroup per task|subreaper)' "a1 logs its containment"
like "$(cat "$IT_DIR/agent-a2.log")" 'task containment: subreaper \(DEVSYS_CGROUP=off\)' "a2 logs the subreaper sweep"

# Three `sleep 1000` leave the task's process group: under a setsid'd shell
# that stays, double-forked (re-parented to the agent at once), and (a1 only,
# with a cgroup) one that also drops its environment.
daemonize() { # DIR END
    cat <<EOF
cd $1
setsid sh -c 'sleep 1000 & echo \$! > p1; wait' &
( setsid sh -c 'sleep 1000 & echo \$! > p2' & )
while [ ! -s p1 ] || [ ! -s p2 ]; do sleep 0.05; done
$2
EOF
}
survivors() { # DIR: pids of the sleeps still alive (not zombies)
    local p pid
    for p in "$1"/p*; do
        pid=$(cat "$p")
        [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null && echo "$pid"
    done
}
for kind in exec coding; do
    for end in "exit 0" "sleep 100"; do
        d=$(mktemp -d "$IT_DIR/daemon.XXXXXX")
        script=$(daemonize "$d" "$end")
        spec=$(jq -nc --arg k "$kind" --arg s "$script" '{kind: $k, command: ["sh", "-c", $s], timeout_s: 3,
            retry_policy: {max_attempts: 1}}')
        id=$(ctl submit - <<<"$spec")
        want=succeeded
        [[ $end == "exit 0" ]] || want=dead
        ok "$kind, $end: the task ends $want" it_wait_state 30 "$id" "$want"
        it_wait_for 3 "[[ -z \$(survivors $d) ]]" >/dev/null 2>&1
        is "$(survivors "$d" | wc -l)" 0 "$kind, $end: none of its daemonized sleeps survives ($(ls "$d" | wc -l) started)"
        for p in $(survivors "$d"); do kill -9 "$p"; done
    done
done

# ---- checkpoints are bounded
# 20,000 lines in a few seconds: a handful of rows, the last one saved.
script='i=0; while [ $i -lt 20000 ]; do echo "{\"i\":$i}" >&3; i=$((i+1)); [ $((i % 4000)) -eq 0 ] && sleep 0.4; done; exit 0'
id=$(ctl submit - <<<"$(jq -nc --arg s "$script" '{kind: "exec", command: ["sh", "-c", $s]}')")
ok "a task writing 20,000 checkpoints succeeds" it_wait_state 60 "$id" succeeded
rows=$(it_psql "SELECT count(*) FROM checkpoints WHERE task_id='$id'")
it_diag "20,000 checkpoint lines -> $rows rows"
ok "only a handful of checkpoint rows were written ($rows)" test "$rows" -le 20
is "$(it_psql "SELECT checkpoint->>'i' FROM tasks WHERE id='$id'")" 19999 "tasks.checkpoint is the last line"
is "$(it_psql "SELECT data->>'i' FROM checkpoints WHERE task_id='$id' ORDER BY id DESC LIMIT 1")" 19999 \
    "so is the newest checkpoint row"

# An oversized line is refused, the ones around it are saved, nothing crashes.
script='echo "{\"n\":1}" >&3; printf "{\"big\":\"%070000d\"}\n" 0 >&3; head -c 200000 /dev/zero >&3; echo >&3; echo "{\"n\":2}" >&3'
id=$(ctl submit - <<<"$(jq -nc --arg s "$script" '{kind: "exec", command: ["sh", "-c", $s]}')")
ok "a task writing oversized checkpoint lines succeeds" it_wait_state 20 "$id" succeeded
is "$(it_psql "SELECT string_agg(data::text, ' ' ORDER BY id) FROM checkpoints WHERE task_id='$id'")" '{"n": 1} {"n": 2}' \
    "the oversized lines are refused, the others saved"
like "$(cat "$IT_DIR/agent-a1.log")" 'checkpoint line over 65536 bytes refused' "the agent logs the refusal"

# Rows kept per task: a2 writes every checkpoint (interval 0) and keeps 10.
script='i=1; while [ $i -le 50 ]; do echo "{\"i\":$i}" >&3; i=$((i+1)); sleep 0.01; done'
id=$(ctl submit - <<<"$(jq -nc --arg s "$script" '{kind: "coding", command: ["sh", "-c", $s]}')")
ok "a task writing 50 checkpoints succeeds" it_wait_state 20 "$id" succeeded
is "$(it_psql "SELECT string_agg(data->>'i', ' ' ORDER BY id) FROM checkpoints WHERE task_id='$id'")" \
    "$(seq -s ' ' 41 50)" "only the newest 10 rows are kept (DEVSYS_CHECKPOINT_KEEP=10)"

# ---- credentials from files: a clear error when both forms are set
ok "agent a1 (database URL from a file) is still running" kill -0 "${AGENT_PIDS[a1]}"
out=$(DEVSYS_DATABASE_URL_FILE="$IT_DIR/db_url" timeout 10 "$BIN/agents/devsys-agent" 2>&1 </dev/null 7>&-)
st=$?
is "$st" 2 "an agent with DEVSYS_DATABASE_URL and DEVSYS_DATABASE_URL_FILE both set exits 2"
like "$out" 'DEVSYS_DATABASE_URL and DEVSYS_DATABASE_URL_FILE are both set' "and says so"
out=$(DEVSYS_ADMIN_TOKEN_FILE="$IT_DIR/db_url" timeout 10 "$BIN/manager/devsys-manager" 2>&1 </dev/null 7>&-)
like "$out" 'DEVSYS_ADMIN_TOKEN and DEVSYS_ADMIN_TOKEN_FILE are both set' "the manager too"
out=$(DEVSYS_REDIS_URL='' DEVSYS_REDIS_URL_FILE="$IT_DIR/missing" timeout 10 "$BIN/agents/devsys-agent" 2>&1 </dev/null 7>&-)
like "$out" "DEVSYS_REDIS_URL_FILE: cannot read $IT_DIR/missing: No such file" "an unreadable file is named"
it_done
