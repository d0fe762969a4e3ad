#!/usr/bin/env bash
# Approval gates (README "Pipelines"): a gated step waits in waiting_approval
# with an approval request (approval.requested event) and no task; a viewer's
# approval is refused 403 and changes nothing, an operator's runs the step; an
# admin-only gate refuses an operator (403 naming admin); a rejection fails the
# step and skips what needs it (if: failure steps run; pipeline.failed event);
# past timeout_s the step fails "approval timed out after Ns"; a cancel
# cancels a pending approval. Every decision is in audit_log with its caller.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
export DEVSYS_RECONCILE_S=0.5 DEVSYS_RATE_MUTATING_PER_S=0
it_start_manager || it_bail "start manager"
it_start_agent a1 DEVSYS_QUEUES=exec DEVSYS_CONCURRENCY=4

VIEWER=$(ctl --json token create --name vera --role viewer | jq -r .token)
OPERATOR=$(ctl --json token create --name otto --role operator | jq -r .token)
[[ $VIEWER == dvs_* && $OPERATOR == dvs_* ]] || it_bail "token create"

api() { # api TOKEN METHOD PATH [BODY]: prints the body, then the status on the last line
    [[ -n ${4:-} ]] && printf '%s' "$4" >"$IT_DIR/body.json"
    curl -s -w '\n%{http_code}' -X "$2" -H "Authorization: Bearer $1" \
        -H 'Content-Type: application/json' ${4:+--data-binary "@$IT_DIR/body.json"} "$DEVSYS_URL$3"
}
body() { sed '$d' <<<"$1"; }
code() { tail -n 1 <<<"$1"; }
step() { # step 'shell command' [needs-json] [if] [approval-json]
    jq -nc --arg c "$1" --argjson n "${2:-[]}" --arg i "${3:-success}" --argjson a "${4:-null}" \
        '{needs: $n, if: $i, spec: {kind: "exec", command: ["sh", "-c", $c], retry_policy: {max_attempts: 1}}}
         + (if $a == null then {} else {approval: $a} end)'
}
submit() { ctl pipeline submit - <<<"$1"; }
steps() { it_psql "SELECT string_agg(step || ':' || state, ' ' ORDER BY pos) FROM pipeline_steps WHERE pipeline_id = '$1'"; }
approval_of() { it_psql "SELECT id FROM approvals WHERE pipeline_id = '$1' AND step = '$2'"; }
tasks_of() { it_psql "SELECT count(*) FROM tasks WHERE pipeline_id = '$1' AND spec->'pipeline'->>'step' = '$2'"; }

# ---- an operator gate: the viewer is refused, the operator approves
doc=$(jq -nc --argjson b "$(step 'true')" --argjson d "$(step 'true' '["build"]' success '{"role":"operator","timeout_s":300}')" \
             --argjson v "$(step 'true' '["deploy"]')" '{name: "gated", steps: {build: $b, deploy: $d, verify: $v}}')
pid=$(submit "$doc")
ok "the gated step waits for its approval" \
    it_wait_sql 20 "SELECT state FROM pipeline_steps WHERE pipeline_id = '$pid' AND step = 'deploy'" waiting_approval
is "$(steps "$pid")" "build:succeeded deploy:waiting_approval verify:waiting" "build ran; deploy waits; verify after it"
is "$(tasks_of "$pid" deploy)" 0 "no task for the gated step yet"
aid=$(approval_of "$pid" deploy)
g=$(body "$(api "$DEVSYS_TOKEN" GET "/v1/pipelines/$pid")")
is "$(jq -r '.steps[1].approval | "\(.id) \(.state) \(.role) \(.timeout_s)"' <<<"$g")" "$aid pending operator 300" \
    "GET /v1/pipelines/{id} shows the approval: id, state, role"
is "$(jq -r '.steps[1].nodes[0].state' <<<"$g")" waiting_approval "and its node waits too"
is "$(it_psql "SELECT count(*) FROM notify_events WHERE type = 'approval.requested' AND subject = '$aid'
               AND data->>'pipeline' = '$pid' AND data->>'step' = 'deploy'")" 1 "approval.requested is recorded once"
like "$(ctl approvals)" "$aid +$pid +gated +deploy +operator +pending" "devsysctl approvals lists it"
is "$(body "$(api "$VIEWER" GET '/v1/approvals?state=pending')" | jq -r '.approvals[0].id')" "$aid" "a viewer may list approvals"

r=$(api "$VIEWER" POST "/v1/approvals/$aid" '{"decision":"approve"}')
is "$(code "$r")" 403 "a viewer's approval is refused"
like "$(body "$r" | jq -r .error)" 'needs the operator role' "the 403 names the role"
r=$(DEVSYS_TOKEN=$VIEWER ctl approve "$aid" 2>&1)
like "$r" 'needs the operator role' "devsysctl approve with a viewer token is refused too"
sleep 0.3
is "$(it_psql "SELECT coalesce(decision, 'pending') FROM approvals WHERE id = '$aid'")/$(tasks_of "$pid" deploy)" \
    "pending/0" "the refused approvals changed nothing"
is "$(code "$(api "$OPERATOR" POST "/v1/approvals/$aid" '{"decision":"maybe"}')")" 400 "a decision that is neither: 400"
is "$(code "$(api "$OPERATOR" POST "/v1/approvals/$aid" '{"decision":"approve","by":"me"}')")" 400 "an unknown field: 400"
is "$(code "$(api "$OPERATOR" POST /v1/approvals/00000000-0000-7000-8000-000000000001 '{"decision":"approve"}')")" 404 \
    "an unknown approval: 404"

out=$(DEVSYS_TOKEN=$OPERATOR ctl approve "$aid" --comment "ship it")
like "$out" "^approved step deploy of pipeline $pid \\(1 task\\(s\\) created\\)" "devsysctl approve by an operator"
ok "the pipeline then succeeds" it_wait_sql 30 "SELECT state FROM pipelines WHERE id = '$pid'" succeeded
is "$(it_psql "SELECT count(*) FROM tasks t, approvals a WHERE t.pipeline_id = '$pid' AND a.id = '$aid'
               AND t.spec->'pipeline'->>'step' = 'deploy' AND t.created_at >= a.decided_at")" 1 \
    "the step's task was created by the approval"
g=$(body "$(api "$DEVSYS_TOKEN" GET "/v1/pipelines/$pid")")
is "$(jq -r '.steps[1].approval | "\(.state) \(.decided_by) \(.comment)"' <<<"$g")" "approved token:otto ship it" \
    "GET shows who approved it"
r=$(api "$OPERATOR" POST "/v1/approvals/$aid" '{"decision":"reject"}')
is "$(code "$r"):$(body "$r" | jq -r .state)" "409:approved" "deciding it again: 409 with its state"

# ---- an admin gate: the operator is refused; the admin rejects
doc=$(jq -nc --argjson b "$(step 'true')" --argjson p "$(step 'true' '["build"]' success '{"role":"admin"}')" \
             --argjson s "$(step 'true' '["prod"]')" --argjson c "$(step 'true' '["prod"]' failure)" \
    '{name: "prod", steps: {build: $b, prod: $p, smoke: $s, cleanup: $c}}')
pid2=$(submit "$doc")
it_wait_sql 20 "SELECT state FROM pipeline_steps WHERE pipeline_id = '$pid2' AND step = 'prod'" waiting_approval \
    || it_bail "the admin gate never waited"
aid2=$(approval_of "$pid2" prod)
r=$(api "$OPERATOR" POST "/v1/approvals/$aid2" '{"decision":"approve"}')
is "$(code "$r")" 403 "an operator's approval of an admin gate is refused"
like "$(body "$r" | jq -r .error)" 'step prod needs the admin role' "the 403 names the admin role"
is "$(ctl approve "$aid2" --reject --comment "not today")" "rejected step prod of pipeline $pid2 (1 task(s) created)" \
    "the admin rejects it (cleanup, if: failure, gets its task)"
ok "the pipeline ends failed" it_wait_sql 30 "SELECT state FROM pipelines WHERE id = '$pid2'" failed
is "$(steps "$pid2")" "build:succeeded prod:failed smoke:skipped cleanup:succeeded" \
    "the rejected step failed; smoke skipped; cleanup (if: failure) ran"
is "$(tasks_of "$pid2" prod)/$(tasks_of "$pid2" smoke)" "0/0" "no task for the rejected step or what needs it"
is "$(body "$(api "$DEVSYS_TOKEN" GET "/v1/pipelines/$pid2")" | jq -r '.steps[1].error')" \
    "approval rejected by admin: not today" "GET says who rejected it and why"
is "$(it_psql "SELECT data->>'error' FROM notify_events WHERE type = 'pipeline.failed' AND subject = '$pid2'")" \
    "failed steps: prod" "pipeline.failed is recorded with the failed step"

# ---- a timeout: the step fails with the message
doc=$(jq -nc --argjson g "$(step 'true' '[]' success '{"timeout_s":1}')" --argjson a "$(step 'true' '["gate"]')" \
    '{name: "late", steps: {gate: $g, after: $a}}')
pid3=$(submit "$doc")
ok "past its timeout the pipeline fails" it_wait_sql 20 "SELECT state FROM pipelines WHERE id = '$pid3'" failed
is "$(steps "$pid3")" "gate:failed after:skipped" "the gate failed, what needs it skipped"
g=$(body "$(api "$DEVSYS_TOKEN" GET "/v1/pipelines/$pid3")")
is "$(jq -r '.steps[0].error' <<<"$g")" "approval timed out after 1s" "the step says why"
is "$(jq -r '.steps[0].approval | "\(.state) \(.decided_by)"' <<<"$g")" "timed_out devsys" "the approval timed out"
is "$(it_psql "SELECT count(*) FROM notify_events WHERE type = 'pipeline.failed' AND subject = '$pid3'")" 1 \
    "pipeline.failed again"

# ---- a cancel while waiting
pid4=$(submit "$(jq -nc --argjson g "$(step 'true' '[]' success '{}')" '{name: "dropped", steps: {gate: $g}}')")
it_wait_sql 20 "SELECT count(*) FROM approvals WHERE pipeline_id = '$pid4'" 1 || it_bail "no approval requested"
ctl pipeline cancel "$pid4" >/dev/null || it_bail "cancel"
is "$(it_psql "SELECT p.state || ' ' || a.decision FROM pipelines p JOIN approvals a ON a.pipeline_id = p.id
               WHERE p.id = '$pid4'")" "cancelled cancelled" "cancelling the pipeline cancels its pending approval"
r=$(api "$OPERATOR" POST "/v1/approvals/$(approval_of "$pid4" gate)" '{"decision":"approve"}')
is "$(code "$r")" 409 "and it can no longer be approved"

# ---- the audit trail: every decision with its caller
is "$(it_psql "SELECT string_agg(actor || ' ' || action || ' ' || outcome, ', ' ORDER BY id) FROM audit_log
               WHERE target IN ('$aid', '$aid2') AND action LIKE 'approval.%' AND outcome IN (200, 403)")" \
    "token:vera approval.decide 403, token:vera approval.decide 403, token:otto approval.approve 200, token:otto approval.approve 403, admin approval.reject 200" \
    "audit_log has every approval, refusal and rejection with its caller and outcome (refused by role before the body is read: approval.decide)"
is "$(it_psql "SELECT detail->>'comment' || ' / ' || (detail->>'step') FROM audit_log
               WHERE action = 'approval.reject' AND outcome = 200")" "not today / prod" "with the comment and step"
like "$(ctl audit --action approval.approve)" 'token:otto +operator +approval\.approve' "devsysctl audit shows them"
is "$(ctl --json approvals --all | jq -r '[.approvals[].state] | sort | join(",")')" \
    "approved,cancelled,rejected,timed_out" "approvals --all lists every decision"
it_done
