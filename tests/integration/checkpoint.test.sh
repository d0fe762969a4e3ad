#!/usr/bin/env bash
# Checkpoints: an exec task saves {"step":N} to $DEVSYS_CHECKPOINT_FD as it
# goes; its agent is killed with SIGKILL midway; on the other agent the next
# attempt gets the last saved checkpoint in $DEVSYS_CHECKPOINT and resumes
# from there. devsysctl get shows the checkpoints.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
it_start_manager || it_bail "start manager"
common=(DEVSYS_QUEUES=exec DEVSYS_CONCURRENCY=4 DEVSYS_LEASE_S=3 DEVSYS_CLAIM_PERIOD_S=1)
it_start_agent a1 "${common[@]}"

# Counts to 8, one step every 0.7 s, saving a checkpoint after each step and
# starting from the step in $DEVSYS_CHECKPOINT. Each run notes where it
# started in the journal ($1) and on stdout.
cat >"$IT_DIR/count.sh" <<'EOF'
start=$(printf '%s' "${DEVSYS_CHECKPOINT:-}" | sed -n 's/.*"step" *: *\([0-9][0-9]*\).*/\1/p')
start=${start:-0}
echo "attempt $DEVSYS_ATTEMPT resumed at $start" >>"$1"
echo "resumed at $start (attempt $DEVSYS_ATTEMPT)"
i=$start
while [ "$i" -lt 8 ]; do
    sleep 0.7
    i=$((i + 1))
    printf '{"step":%d}\n' "$i" >&"$DEVSYS_CHECKPOINT_FD"
done
echo "done at $i"
EOF
journal=$IT_DIR/journal
id=$(ctl submit - <<<"$(jq -nc --arg s "$IT_DIR/count.sh" --arg j "$journal" \
    '{kind: "exec", command: ["sh", $s, $j], retry_policy: {max_attempts: 3, initial_s: 0.2}}')")
like "$id" '^[0-9a-f-]{36}$' "task submitted"
ok "a1 saves checkpoints up to step 3 or more" \
    it_wait_sql 20 "SELECT coalesce((checkpoint->>'step')::int >= 3, false) FROM tasks WHERE id='$id'" t
it_stop_agent a1 KILL
sleep 0.5   # (a commit already sent by a1 may still land)
s=$(it_psql "SELECT checkpoint->>'step' FROM tasks WHERE id='$id'")
it_diag "a1 killed; last checkpoint in PostgreSQL: step $s"
like "$s" '^[3-7]$' "a1 died midway (last checkpoint step $s of 8)"
is "$(it_psql "SELECT string_agg(data->>'step', ' ' ORDER BY id) FROM checkpoints WHERE task_id='$id' AND attempt=1")" \
    "$(seq -s ' ' 1 "$s")" "every checkpoint of attempt 1 is kept, in order"

it_start_agent a2 "${common[@]}"
ok "the task succeeds on a2" it_wait_state 40 "$id" succeeded
out=$(it_psql "SELECT output_tail FROM tasks WHERE id='$id'")
like "$out" "resumed at $s \\(attempt 2\\)" "attempt 2 resumed at the last checkpoint (step $s)"
like "$out" "done at 8" "and counted to the end"
is "$(cat "$journal")" "attempt 1 resumed at 0"$'\n'"attempt 2 resumed at $s" \
    "the journal shows a fresh start, then the resume at step $s"
is "$(it_psql "SELECT agent || ' ' || attempt FROM task_attempts WHERE task_id='$id' AND outcome='succeeded'")" "a2 2" \
    "one succeeded attempt row: a2, attempt 2"
is "$(it_psql "SELECT string_agg(data->>'step', ' ' ORDER BY id) FROM checkpoints WHERE task_id='$id' AND attempt=2")" \
    "$(seq -s ' ' $((s + 1)) 8)" "attempt 2 saved steps $((s + 1)) to 8"
is "$(it_psql "SELECT checkpoint::text FROM tasks WHERE id='$id'")" '{"step": 8}' "tasks.checkpoint is the last one"

got=$(ctl get "$id" 2>&1)
nl=$'\n'
like "$got" 'checkpoints: +[0-9]+' "devsysctl get counts the checkpoints"
like "$got" "attempt 1 at [^$nl]*\"step\": ?$s\\}" "devsysctl get shows attempt 1's last checkpoint"
like "$got" "attempt 2 at [^$nl]*\"step\": ?8\\}" "devsysctl get shows attempt 2's last checkpoint"
it_done
