#!/usr/bin/env bash
# The manager's HTTP API: auth, validation, size limit, idempotency, reads, paging.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
it_start_manager || it_bail "start manager"
T=test-admin-token
# status BODY-FILE ARGS...: prints the HTTP status, body into the file
status() { local f=$1; shift; curl -s -o "$f" -w '%{http_code}' "$@"; }
B=$IT_DIR/body

is "$(status "$B" -X POST "$DEVSYS_URL/v1/tasks" -d '{"kind":"noop"}')" 401 "no token: 401"
is "$(status "$B" -X POST -H "Authorization: Bearer wrong" "$DEVSYS_URL/v1/tasks" -d '{"kind":"noop"}')" 401 \
    "wrong token: 401"
is "$(status "$B" -H "Authorization: Bearer $T" "$DEVSYS_URL/v1/tasks/00000000-0000-0000-0000-000000000000")" \
    404 "unknown task: 404"

is "$(status "$B" -X POST -H "Authorization: Bearer $T" "$DEVSYS_URL/v1/tasks" \
    -d '{"kind":"exec","command":["true"],"retry_policy":{"max_attempts":0}}')" 400 "invalid spec: 400"
is "$(jq -r '.errors[0].field' "$B")" retry_policy.max_attempts "400 names the field"
like "$(jq -r '.errors[0].message' "$B")" 'must be an integer from 1 to 1000' "400 says the rule"

is "$(status "$B" -X POST -H "Authorization: Bearer $T" "$DEVSYS_URL/v1/tasks" \
    -d '[{"kind":"noop"},{"kind":"exec","frobnicate":1,"command":["true"]}]')" 400 "one bad spec in a batch: 400"
is "$(jq -r '.errors[0].index' "$B")" 1 "the error names the index"
is "$(it_psql "SELECT count(*) FROM tasks")" 0 "all or nothing: no task was created"

is "$(status "$B" -X POST -H "Authorization: Bearer $T" "$DEVSYS_URL/v1/tasks" -d '{"kind":')" 400 "bad JSON: 400"

big=$IT_DIR/big.json
{ printf '{"kind":"noop","name":"'; head -c 2000000 /dev/zero | tr '\0' 'a'; printf '"}'; } >"$big"
is "$(status "$B" -X POST -H "Authorization: Bearer $T" "$DEVSYS_URL/v1/tasks" --data-binary @"$big")" 413 \
    "spec over 1 MiB: 413"
head -c 20000000 /dev/zero | tr '\0' ' ' >"$big"
is "$(status "$B" -X POST -H "Authorization: Bearer $T" "$DEVSYS_URL/v1/tasks" --data-binary @"$big")" 413 \
    "body over the limit: 413"

spec='{"kind":"noop","idempotency_key":"deploy-42"}'
is "$(status "$B" -X POST -H "Authorization: Bearer $T" "$DEVSYS_URL/v1/tasks" -d "$spec")" 201 "first submit: 201"
first=$(jq -r '.tasks[0].id' "$B")
is "$(status "$B" -X POST -H "Authorization: Bearer $T" "$DEVSYS_URL/v1/tasks" -d "$spec")" 200 \
    "same idempotency_key again: 200"
is "$(jq -r '.tasks[0].id' "$B")/$(jq -r '.tasks[0].created' "$B")" "$first/false" "returns the existing task"
is "$(it_psql "SELECT count(*) FROM tasks WHERE idempotency_key='deploy-42'")" 1 "never a second task"

is "$(status "$B" -H "Authorization: Bearer $T" "$DEVSYS_URL/v1/tasks/$first")" 200 "get: 200"
is "$(jq -r '.state + " " + .kind + " " + .queue' "$B")" "queued noop noop" "get returns the task"
is "$(it_redis XLEN 'devsys:{noop}:stream')" 1 "the task was published to its stream"

batch=$(jq -nc '[range(0;25) | {kind:"noop", name:("t" + tostring)}]')
is "$(status "$B" -X POST -H "Authorization: Bearer $T" "$DEVSYS_URL/v1/tasks" -d "$batch")" 201 "batch: 201"
is "$(jq '.tasks | length' "$B")" 25 "batch returns 25 ids"

seen=0 after='' pages=0
while :; do
    status "$B" -H "Authorization: Bearer $T" "$DEVSYS_URL/v1/tasks?queue=noop&limit=10${after:+&after=$after}" >/dev/null
    seen=$((seen + $(jq '.tasks | length' "$B")))
    pages=$((pages + 1))
    after=$(jq -r '.next // empty' "$B")
    [[ -n $after && $pages -lt 10 ]] || break
done
is "$seen/$pages" "26/3" "cursor paging lists all 26 tasks in 3 pages"
is "$(status "$B" -H "Authorization: Bearer $T" "$DEVSYS_URL/v1/tasks?state=bogus")" 400 "bad filter: 400"
is "$(curl -s "$DEVSYS_URL/healthz" | jq -r '.redis + " " + .postgres')" "ok ok" "healthz reports both stores"
is "$(it_psql "SELECT count(*) > 0 FROM audit_log WHERE actor='admin' AND action='task.submit'")" t \
    "submits are in the audit log"
like "$("$BIN/manager/devsysctl" list --queue noop)" 'queued' "devsysctl list shows the tasks"
DEVSYS_URL=http://127.0.0.1:1 "$BIN/manager/devsysctl" list >/dev/null 2>"$IT_DIR/err"
like "$(cat "$IT_DIR/err")" 'cannot reach the manager' "devsysctl: clear error when the manager is unreachable"
it_done
