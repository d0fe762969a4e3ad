#!/usr/bin/env bash
# Secrets for tasks: set with devsysctl (value from stdin), stored encrypted,
# never returned by the API; an exec task gets the value in its environment
# only; every trace it leaves has "[secret:NAME]" instead: devsysctl get, the
# API, the tasks/task_attempts/checkpoints rows, the dead letter in Redis, the
# logs. A task naming a secret that does not exist goes dead saying so.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
DEVSYS_SECRET_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export DEVSYS_SECRET_KEY
it_start_manager || it_bail "start manager"
it_start_agent a1 DEVSYS_QUEUES=exec

VALUE="s3cr3t-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf '%s\n' "$VALUE" | ctl secret set deploy-key >"$IT_DIR/set.out" 2>&1
is "$?" 0 "devsysctl secret set reads the value from stdin"
like "$(ctl secret list)" 'deploy-key' "secret list names it"
ok "secret list does not show the value" it_not grep -q "$VALUE" <<<"$(ctl --json secret list)"
is "$(it_psql "SELECT count(*) FROM secrets WHERE name = 'deploy-key' AND position(convert_to('$VALUE', 'UTF8') IN ciphertext) = 0")" 1 \
    "stored encrypted: the value is not in the row"
is "$(curl -s -o /dev/null -w '%{http_code}' "$DEVSYS_URL/v1/secrets/deploy-key" -H "Authorization: Bearer $DEVSYS_TOKEN")" 405 \
    "no route reads a secret's value (GET /v1/secrets/NAME: 405)"

# the child sees it: its output says how long it is and echoes it (redacted)
ok_id=$(ctl submit - <<'EOF2'
{"kind":"exec","env":{"DEPLOY_KEY":{"secret":"deploy-key"}},
 "command":["sh","-c","echo \"len=${#DEPLOY_KEY} key=$DEPLOY_KEY\"; echo \"{\\\"k\\\":\\\"$DEPLOY_KEY\\\"}\" >&3; echo \"$DEPLOY_KEY\" >&2"]}
EOF2
)
ok "the task using the secret succeeds" it_wait_state 20 "$ok_id" succeeded
is "$(it_psql "SELECT output_tail FROM tasks WHERE id='$ok_id'")" \
    "len=${#VALUE} key=[secret:deploy-key]"$'\n'"[secret:deploy-key]" \
    "the child had the value (its length); the output tail has [secret:deploy-key]"
is "$(it_psql "SELECT data->>'k' FROM checkpoints WHERE task_id='$ok_id' ORDER BY id DESC LIMIT 1")" "[secret:deploy-key]" \
    "the checkpoint has [secret:deploy-key]"

dead_id=$(ctl submit - <<'EOF2'
{"kind":"exec","env":{"DEPLOY_KEY":{"secret":"deploy-key"}},"retry_policy":{"max_attempts":1},
 "command":["sh","-c","echo \"failing with $DEPLOY_KEY\"; exit 3"]}
EOF2
)
ok "a failing task using it goes dead" it_wait_state 20 "$dead_id" dead
ok "its dead letter is in Redis" it_wait_for 10 "test \$(it_redis XLEN 'devsys:{exec}:dlq') -ge 1"

missing=$(ctl submit - <<<'{"kind":"exec","env":{"K":{"secret":"nope"}},"command":["true"]}')
ok "a task naming a missing secret goes dead" it_wait_state 20 "$missing" dead
is "$(it_psql "SELECT last_error FROM tasks WHERE id='$missing'")" 'secret "nope": no such secret' "saying which"
is "$(curl -s -H "Authorization: Bearer $DEVSYS_TOKEN" -d '{"kind":"exec","env":{"K":{"secret":"a b"}},"command":["true"]}' "$DEVSYS_URL/v1/tasks" | jq -r '.errors[0].message')" \
    'env: value of K must be a string or {"secret": "<name>"} with a name of 1 to 64 characters of [A-Za-z0-9_.-]' \
    "a malformed reference is a 400 naming the field"

# key rotation: a new key, the old one kept for reading until rekey
OLD=$DEVSYS_SECRET_KEY
DEVSYS_SECRET_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export DEVSYS_SECRET_KEY DEVSYS_SECRET_KEYS_OLD=$OLD
it_stop_agent a1
it_stop_manager
it_start_manager || it_bail "restart the manager with a new key"
it_start_agent a1 DEVSYS_QUEUES=exec
sum=$(printf %s "$VALUE" | sha256sum | cut -c1-64) # the spec must not hold the value itself
check='{"kind":"exec","env":{"K":{"secret":"deploy-key"}},"command":["sh","-c","test \"$(printf %s \"$K\" | sha256sum | cut -c1-64)\" = '"$sum"'"]}'
id=$(ctl submit - <<<"$check")
ok "during a rotation a value under the old key still reaches the task" it_wait_state 20 "$id" succeeded
is "$(ctl --json secret rekey | jq .rekeyed)" 1 "secret rekey re-encrypts it under the new key"
is "$(it_psql "SELECT count(DISTINCT key_id) FROM secrets")/$(ctl --json secret list | jq -r '.secrets[0].key_id == .key_id')" "1/true" \
    "every value is under the current key"
unset DEVSYS_SECRET_KEYS_OLD
it_stop_agent a1
it_start_agent a1 DEVSYS_QUEUES=exec
id=$(ctl submit - <<<"$check")
ok "without the old key the value still reaches the task" it_wait_state 20 "$id" succeeded

is "$(it_psql "SELECT actor || ' ' || role || ' ' || target || ' ' || (detail->>'task') FROM audit_log WHERE action = 'secret.use' ORDER BY id LIMIT 1")" \
    "agent:a1 agent deploy-key $ok_id" "each use of a secret by an agent is in the audit trail, with its task"

# now look everywhere for the value
traces=$IT_DIR/traces
{
    for id in "$ok_id" "$dead_id"; do
        ctl get "$id"
        ctl --json get "$id"
        curl -s -H "Authorization: Bearer $DEVSYS_TOKEN" "$DEVSYS_URL/v1/tasks/$id"
        curl -s -H "Authorization: Bearer $DEVSYS_TOKEN" "$DEVSYS_URL/v1/tasks/$id/checkpoints"
    done
    curl -s -H "Authorization: Bearer $DEVSYS_TOKEN" "$DEVSYS_URL/v1/tasks?limit=100"
    curl -s -H "Authorization: Bearer $DEVSYS_TOKEN" "$DEVSYS_URL/v1/dlq/exec"
    curl -s -H "Authorization: Bearer $DEVSYS_TOKEN" "$DEVSYS_URL/v1/audit?limit=1000"
    for t in tasks task_attempts checkpoints audit_log secrets; do
        it_psql "COPY (SELECT * FROM $t) TO STDOUT"
    done
    it_redis XRANGE 'devsys:{exec}:dlq' - +
    it_redis XRANGE 'devsys:{exec}:stream' - +
} >"$traces" 2>&1
ok "the traces were gathered ($(wc -c <"$traces") bytes)" test "$(wc -c <"$traces")" -gt 2000
ok "[secret:deploy-key] is there" grep -q 'secret:deploy-key' "$traces"
is "$(grep -c -- "$VALUE" "$traces")" 0 "the value is nowhere: devsysctl get, API, tasks/task_attempts/checkpoints/audit rows, dead letter"
it_stop_agent a1
is "$(cat "$IT_DIR"/*.log | grep -c -- "$VALUE")" 0 "nor in the manager's and the agent's logs"
it_done
