#!/usr/bin/env bash
# Unique tasks: a spec's `unique` key is enforced by PostgreSQL at submit
# (task_unique); a second submit of a held key is answered (200) with the task
# that holds it. Held for a period (for_s) or while the task is unfinished.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
it_start_manager || it_bail "start manager"
B=$IT_DIR/body
# submit JSON: prints the status; the body lands in $B
submit() {
    curl -s -o "$B" -w '%{http_code}' -X POST -H "Authorization: Bearer $DEVSYS_TOKEN" "$DEVSYS_URL/v1/tasks" -d "$1"
}

# ---- 100 concurrent submits of one key: one task, one id for all
spec='{"kind":"noop","queue":"uq","unique":{"key":"deploy-app-1","while":"unfinished"}}'
mkdir -p "$IT_DIR/race"
seq 1 100 | xargs -P 100 -I{} curl -s -o "$IT_DIR/race/{}" -w '%{http_code}\n' -X POST \
    -H "Authorization: Bearer $DEVSYS_TOKEN" "$DEVSYS_URL/v1/tasks" -d "$spec" >"$IT_DIR/codes"
is "$(it_psql "SELECT count(*) FROM tasks WHERE queue = 'uq'")" 1 "100 concurrent submits of one key: one task row"
is "$(sort "$IT_DIR/codes" | uniq -c | awk '{print $2 "x" $1}' | tr '\n' ' ')" "200x99 201x1 " \
    "one 201 (created), 99 answers 200"
first=$(it_psql "SELECT id FROM tasks WHERE queue = 'uq'")
is "$(cat "$IT_DIR"/race/* | jq -r '.tasks[0].id' | sort -u)" "$first" "every answer names the same task"
is "$(cat "$IT_DIR"/race/* | jq -r 'select(.tasks[0].created == false) | .tasks[0].state' | sort -u)" queued \
    "the 99 answers say the existing task is queued"
is "$(it_redis XLEN 'devsys:{uq}:stream')" 1 "one entry published"
is "$(it_psql "SELECT key || ' ' || task_id || ' ' || (expires_at IS NULL) FROM task_unique")" "deploy-app-1 $first true" \
    "task_unique holds the key for that task, with no expiry"

# ---- while unfinished: free again once the task finished
it_start_agent a1 DEVSYS_QUEUES=uq || it_bail "start agent"
ok "the task runs" it_wait_state 20 "$first" succeeded
is "$(submit "$spec")" 201 "the key is free once its task finished: a new task"
second=$(jq -r '.tasks[0].id' "$B")
ok "the new task is another one" test "$second" != "$first"
ok "and it runs" it_wait_state 20 "$second" succeeded
it_stop_agent a1
s3=$(submit "$spec")
third=$(jq -r '.tasks[0].id' "$B")
is "$s3/$(submit "$spec")/$(jq -r '.tasks[0] | [.id == "'"$third"'", .created, .state] | join(" ")' "$B")" \
    "201/200/true false queued" "while the new one is queued, a submit gets it back (200, created false)"
curl -sf -X POST -H "Authorization: Bearer $DEVSYS_TOKEN" "$DEVSYS_URL/v1/tasks/$third/cancel" >/dev/null
is "$(submit "$spec")" 201 "a cancelled holder frees the key too"

# ---- for_s: held for the period, whatever the task's state
pspec='{"kind":"noop","queue":"up","unique":{"key":"nightly","for_s":2}}'
is "$(submit "$pspec")" 201 "for_s=2: first submit creates"
p1=$(jq -r '.tasks[0].id' "$B")
is "$(submit "$pspec")/$(jq -r '.tasks[0].id' "$B")" "200/$p1" "a second submit within the period gets it back"
sleep 3
is "$(submit "$pspec")" 201 "after 3 s the period is over: a new task"
ok "another task" test "$(jq -r '.tasks[0].id' "$B")" != "$p1"
is "$(it_psql "SELECT count(*) FROM tasks WHERE queue = 'up'")" 2 "two rows for the key over two periods"

# ---- in one batch: the first position takes the key, the others share it
is "$(submit '[{"kind":"noop","queue":"ub","unique":{"key":"b","for_s":60}},
               {"kind":"noop","queue":"ub","unique":{"key":"b","for_s":60}},
               {"kind":"noop","queue":"ub"}]')" 201 "a batch with a key twice"
is "$(jq -r '[.tasks[] | .created] | map(tostring) | join(" ")' "$B")" "true false true" "created: first and the keyless one"
is "$(jq -r '(.tasks[0].id == .tasks[1].id)' "$B")" true "the repeat names the first task"

# ---- validation names the field
is "$(submit '{"kind":"noop","unique":{"key":"k"}}')/$(jq -r '.errors[0].message' "$B")" \
    '400/unique: needs exactly one of for_s (a period in seconds) and while ("unfinished")' "unique without a rule: 400"
is "$(submit '{"kind":"noop","unique":{"key":"k","for_s":0}}')/$(jq -r '.errors[0].message' "$B")" \
    '400/unique.for_s: must be a number greater than 0 and at most 2592000' "for_s=0: 400"
is "$(submit '{"kind":"noop","unique":{"key":"k","while":"running"}}')/$(jq -r '.errors[0].field' "$B")" \
    '400/unique.while' "while must be \"unfinished\""
is "$(submit '{"kind":"noop","unique":{"for_s":5}}')/$(jq -r '.errors[0].message' "$B")" \
    '400/unique.key: required' "key is required"
is "$(submit '{"kind":"noop","unique":{"key":"k","for_s":5,"x":1}}')/$(jq -r '.errors[0].message' "$B")" \
    '400/unique.x: unknown field' "unknown field inside unique"

# ---- hand-pushed entries: the agent runs them; unique is not checked there
it_start_agent a2 DEVSYS_QUEUES=uh || it_bail "start agent"
for _ in 1 2; do
    it_redis XADD 'devsys:{uh}:stream' '*' spec '{"kind":"noop","queue":"uh","unique":{"key":"h","while":"unfinished"}}' >/dev/null
done
ok "both hand-pushed entries run (unique applies to API submits only)" \
    it_wait_sql 20 "SELECT count(*) FROM tasks WHERE queue = 'uh' AND state = 'succeeded'" 2
it_done
