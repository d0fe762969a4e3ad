#!/usr/bin/env bash
# Poison: a task that kills its agent (kill -9 $PPID) on every delivery. Two
# supervised agents are restarted whenever they die (as a container runtime
# would). After max_attempts deliveries the task is dead in the DLQ with an
# error starting "poison:", and the other tasks of the queue keep succeeding.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
it_start_manager || it_bail "start manager"
common=(DEVSYS_QUEUES=exec DEVSYS_CONCURRENCY=4 DEVSYS_LEASE_S=3 DEVSYS_CLAIM_PERIOD_S=1 DEVSYS_SHUTDOWN_GRACE_S=5)

# supervise NAME: runs devsys-agent NAME in a loop, restarting it 0.3 s after it
# dies; each death is a line "NAME STATUS" in $IT_DIR/deaths. Stopping the loop
# (SIGTERM, from the harness on exit) stops its agent.
supervise() {
    local name=$1
    (
        child=''
        trap '[[ -n $child ]] && kill -TERM "$child" 2>/dev/null; wait "$child"; exit 0' TERM
        while :; do
            env DEVSYS_AGENT_NAME="$name" "${common[@]}" "$BIN/agents/devsys-agent" \
                </dev/null >>"$IT_DIR/agent-$name.log" 2>&1 &
            child=$!
            { wait "$child"; } 2>/dev/null
            st=$?
            printf '%s %s\n' "$name" "$st" >>"$IT_DIR/deaths"
            sleep 0.3
        done
    ) 7>&- &
    it_track_pid $!
}
supervise a1
supervise a2
deaths() { if [[ -f $IT_DIR/deaths ]]; then grep -c . "$IT_DIR/deaths"; else echo 0; fi; }

runs=$IT_DIR/runs
poison=$(ctl submit - <<<"$(jq -nc --arg r "$runs" '{kind: "exec",
    command: ["sh", "-c", "echo \"attempt $DEVSYS_ATTEMPT\" >>\"$0\"; kill -9 $PPID; sleep 5", $r],
    retry_policy: {max_attempts: 2, initial_s: 0.2, jitter: false}}')")
like "$poison" '^[0-9a-f-]{36}$' "poison task submitted"

# Meanwhile ordinary tasks keep coming on the same queue.
others=()
for round in 1 2 3 4 5 6; do
    while IFS= read -r id; do others+=("$id"); done < <(
        jq -nc '[range(0; 5) | {kind: "exec", command: ["sh", "-c", "sleep 0.2; echo ok"],
                               retry_policy: {max_attempts: 5, initial_s: 0.2}}]' | ctl submit -)
    sleep 2
done
is "${#others[@]}" 30 "30 ordinary tasks submitted in 6 rounds over 12 s"

ok "the poison task ends dead" it_wait_state 40 "$poison" dead
like "$(it_psql "SELECT last_error FROM tasks WHERE id='$poison'")" '^poison:' "its last_error starts with \"poison:\""
is "$(grep -c . "$runs")" 2 "its command was delivered exactly max_attempts (2) times"
it_diag "runs: $(tr '\n' ' ' <"$runs"); agent deaths: $(tr '\n' ' ' <"$IT_DIR/deaths" 2>/dev/null)"
ok "each delivery killed an agent (>= 2 deaths)" test "$(deaths)" -ge 2
is "$(it_psql "SELECT count(*) FROM task_attempts WHERE task_id='$poison' AND outcome IN ('succeeded','failed')")" 0 \
    "no attempt of it is recorded as succeeded or failed"
e=$(it_dlq exec | jq -c --arg id "$poison" '[.[] | select(.id == $id)]')
is "$(jq length <<<"$e")" 1 "XRANGE 'devsys:{exec}:dlq' holds it exactly once"
like "$(jq -r '.[0].error // ""' <<<"$e")" '^poison:' "the dead letter's error starts with \"poison:\""
like "$(jq -r '.[0].attempts // ""' <<<"$e")" '^[0-9]+$' "the dead letter counts the attempts"
ok "the ordinary tasks all succeed" it_wait_sql 60 \
    "SELECT count(*) FROM tasks WHERE id <> '$poison' AND state <> 'succeeded'" 0
is "$(it_psql "SELECT count(*) FROM tasks t WHERE id <> '$poison' AND
          (SELECT count(*) FROM task_attempts a WHERE a.task_id=t.id AND outcome='succeeded') <> 1")" 0 \
    "each ordinary task has exactly one succeeded attempt row"
d=$(deaths)
sleep 5   # more than a lease: nothing may deliver the poison task again
is "$(grep -c . "$runs")" 2 "the dead task is not delivered again"
is "$(deaths)" "$d" "no agent died after the task went dead"
it_done
