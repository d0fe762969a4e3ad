#!/usr/bin/env bash
# The audit trail of a scripted session: token create, submit, cancel, replay,
# deploy, rollback, pipeline submit and approve, secret set, token revoke — each recorded once by the route dispatch with its
# caller, role, target, source address, request id and outcome, listed in
# order by devsysctl audit; filters and cursor paging; no route deletes it.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
DEVSYS_SECRET_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export DEVSYS_SECRET_KEY
it_start_manager || it_bail "start manager"
it_start_agent a1 DEVSYS_QUEUES=exec

ALICE=$(ctl --json token create --name alice --role operator | jq -r .token)
[[ $ALICE == dvs_* ]] || it_bail "token create"
failing=$(DEVSYS_TOKEN=$ALICE ctl submit - <<<'{"kind":"exec","command":["sh","-c","exit 3"],"retry_policy":{"max_attempts":1}}')
parked=$(DEVSYS_TOKEN=$ALICE ctl submit - <<<'{"kind":"noop","queue":"parked"}')
st=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $ALICE" -H 'X-Request-Id: session-cancel-1' \
    "$DEVSYS_URL/v1/tasks/$parked/cancel")
is "$st" 200 "alice cancels the parked task"
it_wait_state 20 "$failing" dead || it_bail "the failing task never went dead"
it_wait_for 10 "test \$(it_redis XLEN 'devsys:{exec}:dlq') -ge 1" || it_bail "no dead letter"
DEVSYS_TOKEN=$ALICE ctl dlq replay exec "$failing" >/dev/null || it_bail "replay"
deploy=$(DEVSYS_TOKEN=$ALICE ctl submit - <<<'{"kind":"deploy","queue":"parked","deploy":{"app":"site","env":"staging","source":"/nonexistent"}}')
rollback=$(curl -s -X POST -H "Authorization: Bearer $ALICE" -d '{"env":"staging"}' "$DEVSYS_URL/v1/apps/site/rollback" | jq -r .task_id)
[[ $rollback =~ ^[0-9a-f-]{36}$ ]] || it_bail "rollback"
gate=$(DEVSYS_TOKEN=$ALICE ctl pipeline submit - <<<'{"name":"gate","steps":{"prod":{"approval":{"role":"operator"},"spec":{"kind":"noop","queue":"parked"}}}}')
it_wait_for 10 "[[ -n \$(it_psql \"SELECT id FROM approvals WHERE pipeline_id = '$gate'\") ]]" || it_bail "no approval requested"
approval=$(it_psql "SELECT id FROM approvals WHERE pipeline_id = '$gate'")
DEVSYS_TOKEN=$ALICE ctl approve "$approval" >/dev/null || it_bail "approve"
printf 'v\n' | ctl secret set k >/dev/null || it_bail "secret set"
ctl token revoke alice >/dev/null || it_bail "token revoke"

trail=$(ctl --json audit)
is "$(jq -r '.entries | reverse | .[] | "\(.actor) \(.role) \(.action) \(.target) \(.outcome)"' <<<"$trail")" \
"admin admin token.create alice 201
token:alice operator task.submit $failing 201
token:alice operator task.submit $parked 201
token:alice operator task.cancel $parked 200
token:alice operator dlq.replay $failing 200
token:alice operator task.submit $deploy 201
token:alice operator app.rollback $rollback 202
token:alice operator pipeline.submit $gate 201
token:alice operator approval.approve $approval 200
admin admin secret.set k 200
admin admin token.revoke alice 200" "the trail lists exactly the session's actions, in order, with their callers"
is "$(jq -r '[.entries[].remote] | unique | join(",")' <<<"$trail")" 127.0.0.1 "each with the source address"
is "$(jq -r '.entries[] | select(.action == "task.cancel") | .request_id' <<<"$trail")" session-cancel-1 \
    "the request id the client sent is kept (and sent back)"
is "$(jq -r '[.entries[].request_id | test("^[0-9a-f]{16}$|^session")] | all' <<<"$trail")" true "others get a made-up one"
ok "the secret's value is not in the trail" it_not grep -q '"v"' <<<"$(jq -c '.entries[].detail' <<<"$trail")"

# human output, filters, paging
like "$(ctl audit)" 'token:alice +operator +task\.cancel' "devsysctl audit prints a table"
is "$(ctl --json audit --actor token:alice | jq '.entries | length')" 8 "--actor filters"
is "$(ctl --json audit --action task.submit | jq -r '[.entries[].target] | reverse | join(" ")')" "$failing $parked $deploy" "--action filters"
is "$(ctl --json audit --target alice | jq -r '[.entries[].action] | reverse | join(" ")')" "token.create token.revoke" "--target filters"
is "$(ctl --json audit --since 2000-01-01T00:00:00Z | jq '.entries | length')" 11 "--since filters"
is "$(ctl --json audit --since 2999-01-01T00:00:00Z | jq '.entries | length')" 0 "--since in the future: none"
page1=$(ctl --json audit --limit 6)
next=$(jq -r .next <<<"$page1")
page2=$(ctl --json audit --limit 6 --after "$next")
is "$(jq -s -r '[.[].entries[].action] | reverse | join(" ")' <<<"$page1$page2")" \
    "token.create task.submit task.submit task.cancel dlq.replay task.submit app.rollback pipeline.submit approval.approve secret.set token.revoke" "two pages hold the trail once, in order"
is "$(jq -r .next <<<"$page2")" null "the last page has no next"
is "$(curl -s -o /dev/null -w '%{http_code}' "$DEVSYS_URL/v1/audit?after=x" -H "Authorization: Bearer $DEVSYS_TOKEN")" 400 "a bad cursor: 400"
is "$(curl -s -o /dev/null -w '%{http_code}' "$DEVSYS_URL/v1/audit?since=2026-13-45" -H "Authorization: Bearer $DEVSYS_TOKEN")" 400 "a bad since: 400"
is "$(curl -s -o /dev/null -w '%{http_code}' "$DEVSYS_URL/v1/audit?since=yesterday%3B" -H "Authorization: Bearer $DEVSYS_TOKEN")" 400 "a since that is no time: 400"
is "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$DEVSYS_URL/v1/audit" -H "Authorization: Bearer $DEVSYS_TOKEN")" 405 \
    "no route deletes the trail"

# a refused change is recorded with its outcome
is "$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $ALICE" -d '{"kind":"noop"}' "$DEVSYS_URL/v1/tasks")" 401 \
    "alice's revoked token: 401"
VIEW=$(ctl --json token create --name viewer-bob --role viewer | jq -r .token)
curl -s -o /dev/null -X POST -H "Authorization: Bearer $VIEW" "$DEVSYS_URL/v1/tasks/$parked/cancel"
is "$(ctl --json audit --actor token:viewer-bob | jq -r '.entries[0] | "\(.action) \(.outcome)"')" "task.cancel 403" \
    "a viewer's attempt to cancel is audited with its 403"
it_done
