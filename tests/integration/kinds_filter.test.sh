#!/usr/bin/env bash
# An agent runs only the kinds it is configured for (DEVSYS_KINDS; by default
# the queue names that are kinds): a task of another kind routed to its queue
# ends dead with a dead letter saying why, and its command never runs. A
# hand-pushed entry of an unknown kind ends dead too, not queued forever.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
it_start_manager || it_bail "start manager"
it_start_agent noop-agent DEVSYS_QUEUES=noop
dl_of() { it_dlq "$1" | jq -r --arg id "$2" '.[] | select(.id == $id) | .error'; }

ran=$IT_DIR/exec-ran
id=$(ctl submit - <<<"{\"kind\":\"exec\",\"queue\":\"noop\",\"command\":[\"touch\",\"$ran\"]}")
ok "an exec task routed to a noop-only agent ends dead" it_wait_state 20 "$id" dead
msg='kind exec: this agent \(noop-agent\) runs only noop; set DEVSYS_KINDS or route the task to a queue served by an exec agent'
like "$(it_psql "SELECT last_error FROM tasks WHERE id='$id'")" "$msg" "its last_error says why and what to do"
like "$(dl_of noop "$id")" "$msg" "its dead letter in devsys:{noop}:dlq says the same"
ok "its command did not run" it_not test -e "$ran"
is "$(it_psql "SELECT count(*) FROM task_attempts WHERE task_id='$id' AND outcome='succeeded'")" 0 \
    "no succeeded attempt is recorded"

id=$(ctl submit - <<<'{"kind":"noop"}')
ok "a noop task on the same queue still succeeds" it_wait_state 20 "$id" succeeded

# unknown kind pushed by hand to a served queue
e=$(it_redis XADD 'devsys:{noop}:stream' '*' spec '{"kind":"bogus"}')
ok "a hand-pushed entry of kind bogus ends dead" \
    it_wait_sql 20 "SELECT state FROM tasks WHERE source='$e'" dead
like "$(it_psql "SELECT last_error FROM tasks WHERE source='$e'")" 'bogus' "its last_error names the kind"
bid=$(it_psql "SELECT id FROM tasks WHERE source='$e'")
like "$(dl_of noop "$bid")" 'bogus' "its dead letter names the kind"
ok "nothing is left pending on the queue" \
    it_wait_for 10 '[[ $(it_redis XPENDING "devsys:{noop}:stream" agents | head -1) == 0 ]]'

# DEVSYS_KINDS widens it; a queue that is not a kind runs every kind by default
it_start_agent both DEVSYS_QUEUES=both DEVSYS_KINDS=exec,noop
it_start_agent routed DEVSYS_QUEUES=routed
for q in both routed; do
    id=$(ctl submit - <<<"{\"kind\":\"exec\",\"queue\":\"$q\",\"command\":[\"touch\",\"$ran-$q\"]}")
    ok "an exec task on queue $q runs" it_wait_state 20 "$id" succeeded
    ok "its command ran" test -e "$ran-$q"
done
id=$(ctl submit - <<<'{"kind":"sleep","queue":"both","sleep":{"ms":1}}')
ok "a sleep task on queue both (DEVSYS_KINDS=exec,noop) ends dead" it_wait_state 20 "$id" dead
like "$(it_psql "SELECT last_error FROM tasks WHERE id='$id'")" 'runs only exec,noop' "its reason lists the kinds"

out=$(DEVSYS_KINDS=exec,nonesuch timeout 10 "$BIN/agents/devsys-agent" 2>&1 </dev/null)
like "$?/$out" '^2/DEVSYS_KINDS: "nonesuch" is not a kind' "an unknown name in DEVSYS_KINDS stops the agent at start"
it_done
