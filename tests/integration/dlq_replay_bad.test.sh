#!/usr/bin/env bash
# "Replay all" with one dead letter whose spec cannot be replayed (a hand-pushed
# entry with a string retry_policy.max_attempts, buried by the agent): the good
# ones are replayed and run, the bad one is reported with its reason and stays
# in the DLQ; replaying it alone answers 422 naming the field.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
DEVSYS_RECONCILE_S=0 it_start_manager || it_bail "start manager"
it_start_agent a1 DEVSYS_QUEUES=exec DEVSYS_CLAIM_PERIOD_S=1
B=$IT_DIR/body
call() { curl -s -o "$B" -w '%{http_code}' -X "$1" -H "Authorization: Bearer $DEVSYS_TOKEN" "$DEVSYS_URL$2"; }
DLQ='devsys:{exec}:dlq'
flag=$IT_DIR/flag

# Three tasks that fail once (no flag yet) with one attempt allowed: dead.
good=()
for i in 1 2 3; do
    good+=("$(ctl submit - <<<"{\"kind\":\"exec\",\"name\":\"good-$i\",\"command\":[\"test\",\"-f\",\"$flag\"],
                               \"retry_policy\":{\"max_attempts\":1}}")")
done
for id in "${good[@]}"; do ok "good task $id dies" it_wait_state 30 "$id" dead; done
# Pushed by hand with a bad spec: the agent records it dead, with a dead letter.
src=$(it_redis XADD 'devsys:{exec}:stream' '*' spec \
    '{"kind":"exec","command":["true"],"retry_policy":{"max_attempts":"three"}}')
ok "the hand-pushed entry becomes a dead task" it_wait_sql 30 \
    "SELECT count(*) FROM tasks WHERE source='$src' AND state='dead' AND dlq_entry IS NOT NULL" 1
bad=$(it_psql "SELECT id FROM tasks WHERE source='$src'")
bad_entry=$(it_psql "SELECT dlq_entry FROM tasks WHERE id='$bad'")
is "$(it_redis XLEN "$DLQ")" 4 "four dead letters"

touch "$flag"
is "$(call POST /v1/dlq/exec/replay)" 200 "replay all: 200 although one entry is bad"
is "$(jq -r '[.replayed, .failed_count] | join(" ")' "$B")" "3 1" "3 replayed, 1 failed"
is "$(jq -r '.failed | length' "$B")" 1 "the failed one is listed"
is "$(jq -r '.failed[0] | [.entry, .task] | join(" ")' "$B")" "$bad_entry $bad" "it names the DLQ entry and the task"
like "$(jq -r '.failed[0].error' "$B")" '^retry_policy\.max_attempts: ' "it says why (names the field)"
for id in "${good[@]}"; do ok "replayed task $id runs and succeeds" it_wait_state 30 "$id" succeeded; done
is "$(it_psql "SELECT state FROM tasks WHERE id='$bad'")" dead "the bad one stays dead"
is "$(it_dlq exec | jq -r '[.[] | .id] | join(" ")')" "$bad" "only the bad one is left in the DLQ"
is "$(it_dlq exec | jq -r '.[0].entry_id')" "$bad_entry" "under the same entry id"

is "$(call POST "/v1/dlq/exec/$bad/replay")" 422 "replaying the bad one alone: 422"
like "$(jq -r .reason "$B")" '^retry_policy\.max_attempts: ' "422 names the field"
is "$(call POST "/v1/dlq/exec/$bad_entry/replay")" 422 "by its entry id too: 422"
is "$(it_psql "SELECT state || ' ' || replays FROM tasks WHERE id='$bad'")" "dead 0" "still dead, never replayed"
is "$(it_redis XLEN "$DLQ")" 1 "its dead letter is still there"
is "$(call POST /v1/dlq/exec/replay)/$(jq -r '[.replayed, .failed_count] | join(" ")' "$B")" "200/0 1" \
    "replay all again: nothing to replay, the bad one reported again"
it_done
