#!/usr/bin/env bash
# upgrade: a rolling upgrade keeps old agents working. An agent built from an
# older release (the last commit before migrations 006-013, schema 5) runs
# against the migrated schema and the new manager: it claims and completes
# plain exec tasks, retries and buries a failing one, and shares a queue with
# a new agent. The old agent is built once per build directory (git archive of
# that commit, devsys-agent only, ~10 s) and kept in $BIN/old-agent-<commit>.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"

# Schema 5: the last first-parent commit before the migrations of wave 2.
OLD=89b53773a31ff84bb9325e9c1922fff4cab84b19
OLD_DIR=$BIN/old-agent-${OLD:0:12}

if ! git -C "$ds_root" cat-file -e "$OLD^{commit}" 2>/dev/null; then
    printf 'ok 1 # skip commit %s is not in this clone (shallow? fetch-depth: 0)\n1..1\n' "${OLD:0:12}" >&7
    IT_DONE=1
    exit 0
fi

# build_old_agent: the old devsys-agent into $OLD_DIR/devsys-agent, once
# (a lock serializes concurrent runs; the binary appears whole or not at all).
build_old_agent() {
    local tmp
    [[ -x $OLD_DIR/devsys-agent ]] && return 0
    mkdir -p "$OLD_DIR"
    (
        flock 9
        [[ -x $OLD_DIR/devsys-agent ]] && exit 0
        tmp=$(mktemp -d "$OLD_DIR/tmp.XXXXXX") || exit 1
        trap 'rm -rf "$tmp"' EXIT
        mkdir "$tmp/src"
        git -C "$ds_root" archive "$OLD" | tar -x -C "$tmp/src" || exit 1
        # the old tree's own options; no -Werror (a newer compiler may warn)
        timeout 300 meson setup "$tmp/build" "$tmp/src" -Dbuildtype=debugoptimized >"$tmp/setup.log" 2>&1 \
            && timeout 300 ninja -C "$tmp/build" agents/devsys-agent >"$tmp/ninja.log" 2>&1 \
            || { tail -n 30 "$tmp/setup.log" "$tmp/ninja.log" 2>/dev/null; exit 1; }
        mv "$tmp/build/agents/devsys-agent" "$OLD_DIR/devsys-agent"
    ) 9>"$OLD_DIR/lock" 7>&-
}

t0=$(ds_now_ms)
ok "the agent of ${OLD:0:12} builds" build_old_agent || it_bail "old agent build"
it_diag "old agent ready in $(( $(ds_now_ms) - t0 )) ms"
OLD_BIN=$IT_DIR/old
mkdir -p "$OLD_BIN/agents"
ln -s "$OLD_DIR/devsys-agent" "$OLD_BIN/agents/devsys-agent"

it_setup
is "$(it_psql "SELECT max(version) FROM schema_migrations")" \
    "$(git -C "$ds_root" ls-files migrations | sed -n 's|^migrations/0*\([0-9]*\)_.*|\1|p' | sort -n | tail -n 1)" \
    "the database has the new schema"
it_start_manager || it_bail "manager starts"
BIN=$OLD_BIN it_start_agent old1 DEVSYS_QUEUES=exec DEVSYS_CONCURRENCY=2 || it_bail "old agent starts"

# submit FILE: ids of the specs in FILE, one per line, into FILE.ids
submit() { ctl submit "$1" >"$1.ids"; }

jq -nc '[range(10) | {kind: "exec", name: "old-\(.)", command: ["sh", "-c", "echo ran \(.)"]}]' \
    >"$IT_DIR/plain.json"
submit "$IT_DIR/plain.json" || it_bail "submit"
echo '{"kind":"exec","name":"fails","command":["sh","-c","exit 3"],
       "retry_policy":{"max_attempts":2,"initial_s":0.1,"max_s":0.2}}' >"$IT_DIR/fail.json"
submit "$IT_DIR/fail.json" || it_bail "submit"
FAIL=$(cat "$IT_DIR/fail.json.ids")

ok "the old agent completes tasks submitted through the new manager" \
    it_wait_all_final 30 10 "spec->>'name' LIKE 'old-%'"
is "$(it_psql "SELECT state || ' ' || count(*) FROM tasks WHERE spec->>'name' LIKE 'old-%' GROUP BY state")" \
    "succeeded 10" "... all 10 succeeded"
is "$(it_psql "SELECT DISTINCT agent FROM task_attempts a JOIN tasks t ON t.id = a.task_id
               WHERE t.spec->>'name' LIKE 'old-%'")" old1 "... each attempt recorded by the old agent"
id1=$(head -n 1 "$IT_DIR/plain.json.ids")
like "$(ctl get "$id1")" 'ran 0' "... with its output, readable through the new manager"
ok "a failing task is retried, then dead" it_wait_state 30 "$FAIL" dead
is "$(it_psql "SELECT count(*) FROM task_attempts WHERE task_id = '$FAIL'")" 2 "... after 2 attempts"
is "$(it_dlq exec | jq -r '.[0].id')" "$FAIL" "... with its dead letter in the DLQ"

# Mid-upgrade: an old and a new agent on one queue.
it_start_agent new1 DEVSYS_QUEUES=exec DEVSYS_CONCURRENCY=2 || it_bail "new agent starts"
jq -nc '[range(20) | {kind: "exec", name: "mix-\(.)", command: ["sleep", "0.2"]}]' >"$IT_DIR/mix.json"
submit "$IT_DIR/mix.json" || it_bail "submit"
ok "old and new agents together complete a batch" it_wait_all_final 30 10 "spec->>'name' LIKE 'mix-%'"
is "$(it_psql "SELECT state || ' ' || count(*) FROM tasks WHERE spec->>'name' LIKE 'mix-%' GROUP BY state")" \
    "succeeded 20" "... all 20 succeeded"
by_agent=$(it_psql "SELECT agent || '=' || n FROM (SELECT a.agent, count(*) AS n FROM task_attempts a
                    JOIN tasks t ON t.id = a.task_id WHERE t.spec->>'name' LIKE 'mix-%' GROUP BY 1) s ORDER BY 1" \
    | tr '\n' ' ')
it_diag "attempts by agent: $by_agent"
like "$by_agent" '^new1=[0-9]+ old1=[0-9]+ $' "... both agents took some"
is "$(it_psql "SELECT count(*) FROM task_attempts a JOIN tasks t ON t.id = a.task_id WHERE t.spec->>'name' LIKE 'mix-%'")" \
    20 "... each task ran once"

it_done
