#!/usr/bin/env bash
# The dead-letter API (ls, show, replay, purge), cancel and checkpoints, over
# HTTP and devsysctl, checked against redis-cli and PostgreSQL after each step.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
DEVSYS_RECONCILE_S=0 it_start_manager || it_bail "start manager" # reconciler: last section only
B=$IT_DIR/body
V=viewer-token O=operator-token A=admin-token
it_psql "INSERT INTO api_tokens (name, role, token_hash) VALUES
         ('v', 'viewer', encode(sha256('viewer-token'), 'hex')),
         ('o', 'operator', encode(sha256('operator-token'), 'hex')),
         ('a', 'admin', encode(sha256('admin-token'), 'hex'))" >/dev/null
# call TOKEN METHOD PATH: prints the status; the body lands in $B
call() {
    local auth=()
    [[ -n $1 ]] && auth=(-H "Authorization: Bearer $1")
    curl -s -o "$B" -w '%{http_code}' -X "$2" "${auth[@]}" "$DEVSYS_URL$3"
}
S='devsys:{exec}:stream'
DLQ='devsys:{exec}:dlq'
# mkdead N [ERROR [AGE]]: a dead task and its DLQ entry, as an agent's bury
# leaves them (error "exit status 1", died now - AGE); prints "TASK ENTRY"
mkdead() {
    local spec id entry err=${2:-exit status 1}
    spec="{\"kind\":\"exec\",\"command\":[\"sh\",\"-c\",\"echo replayed-$1\"]}"
    id=$(it_psql "INSERT INTO tasks (id, queue, kind, spec, state, attempt, max_attempts, last_error,
                                     started_at, finished_at, lease_owner)
                  VALUES (gen_random_uuid(), 'exec', 'exec', '$spec', 'dead', 1, 1, '$err',
                          now(), now() - interval '${3:-0 s}', 'a9') RETURNING id")
    entry=$(it_redis XADD "$DLQ" '*' id "$id" kind exec queue exec attempts 1 error "$err" \
        failed_at "$(date -u +%FT%TZ)" agent a9 source '' spec "$spec")
    it_psql "UPDATE tasks SET dlq_entry = '$entry' WHERE id = '$id'" >/dev/null
    printf '%s %s\n' "$id" "$entry"
}
read -r d1 e1 < <(mkdead 1)
read -r d2 e2 < <(mkdead 2)
read -r d3 e3 < <(mkdead 3)

# ---- reading
is "$(call '' GET /v1/dlq)" 401 "no token: 401"
is "$(call $V GET /v1/dlq)" 200 "viewer lists the queues"
is "$(jq -c .queues "$B")" '[{"queue":"exec","length":3,"dead":3}]' "GET /v1/dlq: length from redis, dead from postgres"
like "$(DEVSYS_TOKEN=$V ctl dlq ls)" 'exec +3' "devsysctl dlq ls"
is "$(call $V GET /v1/dlq/exec)" 200 "list one queue's entries"
is "$(jq -r '.entries | length' "$B")" 3 "three entries"
is "$(jq -r '.entries[0] | keys_unsorted | join(",")' "$B")" \
    entry_id,id,kind,queue,attempts,error,failed_at,agent,source,spec "an entry carries every DLQ field"
is "$(jq -r '.entries[0] | [.entry_id, .id, .error, (.spec | type)] | join(" ")' "$B")" \
    "$e1 $d1 exit status 1 string" "fields are the stream's values; spec stays a JSON string"
is "$(call $V GET '/v1/dlq/exec?limit=2')/$(jq -r '[(.entries | length), .next] | join(" ")' "$B")" "200/2 $e2" \
    "limit=2: two entries and a cursor"
is "$(call $V GET "/v1/dlq/exec?limit=2&after=$e2")/$(jq -r '[(.entries[].id), .next] | tostring' "$B")" \
    "200/[\"$d3\",null]" "after=cursor: the last one, no further cursor"
is "$(call $V GET '/v1/dlq/exec?limit=0')" 400 "limit=0: 400"
is "$(call $V GET '/v1/dlq/exec?after=bogus')" 400 "bad cursor: 400"
is "$(call $V GET '/v1/dlq/bad%20queue')" 400 "invalid queue name: 400"
is "$(call $V GET /v1/dlq/nothing-here)/$(jq -c .entries "$B")" "200/[]" "a queue without a DLQ lists nothing"
# A DLQ id that is not UTF-8 (raw bytes in the request line) is quoted in the
# 404; it used to make the error reply NULL and crash the manager (fuzz_http).
hostport=${DEVSYS_URL#http://}
exec 3<>"/dev/tcp/${hostport%:*}/${hostport##*:}"
printf 'GET /v1/dlq/exec/01\xfe\xff HTTP/1.0\r\nAuthorization: Bearer %s\r\n\r\n' "$V" >&3
like "$(head -n 1 <&3)" '^HTTP/1.[01] 404' "a DLQ id that is not UTF-8: 404"
exec 3<&-
is "$(call $V GET /v1/dlq)" 200 "and the manager still answers"
like "$(DEVSYS_TOKEN=$V ctl dlq ls exec)" "$e3 +$d3" "devsysctl dlq ls QUEUE"

is "$(call $V GET "/v1/dlq/exec/$e2")/$(jq -r .id "$B")" "200/$d2" "show by entry id"
is "$(call $V GET "/v1/dlq/exec/$d2")/$(jq -r .entry_id "$B")" "200/$e2" "show by task id (via tasks.dlq_entry)"
it_psql "UPDATE tasks SET dlq_entry = NULL WHERE id = '$d3'" >/dev/null
is "$(call $V GET "/v1/dlq/exec/$d3")" 404 \
    "show by task id with dlq_entry NULL: 404 (a show never scans the DLQ)"
it_psql "UPDATE tasks SET dlq_entry = '$e3' WHERE id = '$d3'" >/dev/null
is "$(call $V GET /v1/dlq/exec/1-1)" 404 "unknown entry id: 404"
is "$(call $V GET /v1/dlq/exec/00000000-0000-0000-0000-000000000000)" 404 "unknown task id: 404"
is "$(call $V GET /v1/dlq/exec/xyz)" 404 "neither an entry nor a task id: 404"
is "$(call $V GET "/v1/dlq/other/$e2")" 404 "an entry of another queue: 404"
like "$(DEVSYS_TOKEN=$V ctl dlq show exec "$d1")" 'exit status 1' "devsysctl dlq show"

# ---- roles and methods
is "$(call $V POST "/v1/dlq/exec/$e1/replay")" 403 "viewer cannot replay: 403"
is "$(call $V DELETE "/v1/dlq/exec/$e1")" 403 "viewer cannot purge: 403"
is "$(call $V POST /v1/dlq/exec/replay)" 403 "viewer cannot replay all: 403"
is "$(call $V DELETE /v1/dlq/exec)" 403 "viewer cannot purge all: 403"
is "$(call $V POST "/v1/tasks/$d1/cancel")" 403 "viewer cannot cancel: 403"
is "$(call $O GET "/v1/dlq/exec/$e1/replay")" 405 "GET on replay: 405"
is "$(it_redis XLEN "$DLQ")/$(it_psql "SELECT count(*) FROM tasks WHERE state='dead'")" 3/3 "refusals changed nothing"

# ---- replay one
is "$(call $O POST "/v1/dlq/exec/$e1/replay")" 200 "operator replays by entry id"
is "$(jq -c '[.id, .entry_id, .state, .published]' "$B")" "[\"$d1\",\"$e1\",\"queued\",true]" "reply says queued and published"
is "$(it_psql "SELECT state, attempt, max_attempts, replays, dlq_entry IS NULL,
                      published_at > now() - interval '1 minute' FROM tasks WHERE id='$d1'")" 'queued|1|4|1|t|t' \
    "postgres: queued, a fresh budget of 3 attempts after attempt 1, replays 1, published now"
is "$(it_redis XLEN "$DLQ")" 2 "the entry left the DLQ"
like "$(it_redis XRANGE "$S" - + | paste -sd' ')" "id $d1 " "the task is back on its stream"
is "$(call $O POST "/v1/dlq/exec/$e1/replay")" 404 "the same entry again: 404"
is "$(call $O POST "/v1/dlq/exec/$d1/replay")/$(jq -r .state "$B")" 409/queued "replaying a task that is not dead: 409 with its state"
is "$(it_psql "SELECT actor || ' ' || target || ' ' || (detail->>'entry_id') FROM audit_log WHERE action='dlq.replay' AND outcome BETWEEN 200 AND 299")" \
    "token:o $d1 $e1" "audit row for the replay, with the caller"

# ---- purge one
DEVSYS_TOKEN=$A ctl dlq purge exec "$d2" >"$IT_DIR/out" 2>&1
is "$?" 0 "devsysctl dlq purge QUEUE TASK-ID"
is "$(it_redis XLEN "$DLQ")/$(it_redis XRANGE "$DLQ" - + | grep -c "$d2")" 1/0 "the entry left the DLQ"
is "$(it_psql "SELECT state, dlq_purged_at IS NOT NULL FROM tasks WHERE id='$d2'")" 'dead|t' \
    "postgres: still dead, marked purged"
is "$(it_psql "SELECT count(*) FROM audit_log WHERE action='dlq.purge' AND target='$d2' AND actor='token:a' AND outcome = 200")" 1 \
    "audit row for the purge"
is "$(call $A DELETE "/v1/dlq/exec/$d2")" 404 "purging it again: 404"
is "$(call $V GET /v1/dlq)/$(jq -c .queues "$B")" '200/[{"queue":"exec","length":1,"dead":1}]' \
    "purged tasks no longer count as dead letters"

# ---- replay all, purge all
read -r d4 e4 < <(mkdead 4)
read -r d5 e5 < <(mkdead 5)
like "$(DEVSYS_TOKEN=$O ctl dlq replay exec --all)" 'replayed: +3' "devsysctl dlq replay QUEUE --all: 3 replayed"
is "$(it_redis XLEN "$DLQ")" 0 "the DLQ is empty"
is "$(it_psql "SELECT count(*) FROM tasks WHERE id IN ('$d3','$d4','$d5') AND state='queued' AND replays=1
               AND published_at > now() - interval '1 minute'")" 3 "postgres: all three queued"
is "$(it_redis XRANGE "$S" - + | grep -a -c -E "^($d3|$d4|$d5)\$")" 3 "all three are on the stream"
is "$(it_psql "SELECT detail->>'count' FROM audit_log WHERE action='dlq.replay' AND target='exec' AND outcome = 200")" 3 \
    "one audit row for replay all"
read -r d6 e6 < <(mkdead 6)
read -r d7 e7 < <(mkdead 7)
is "$(call $A DELETE /v1/dlq/exec)/$(jq -c '[.purged, .entries_removed]' "$B")" '200/[2,2]' "purge all"
is "$(it_redis XLEN "$DLQ")/$(it_psql "SELECT count(*) FROM tasks WHERE state='dead' AND dlq_purged_at IS NULL")" \
    0/0 "redis and postgres agree: nothing left"
is "$(it_psql "SELECT detail->>'tasks' FROM audit_log WHERE action='dlq.purge' AND target='exec' AND outcome = 200")" 2 \
    "audit row for purge all"

# ---- bulk actions over a filter: groups by error, replay and purge by error / kind / since, bounded
for i in 1 2 3; do read -r _ _ < <(mkdead "b$i" 'disk full'); done
read -r bt _ < <(mkdead b4 timeout)
read -r bold eold < <(mkdead b5 'disk full' '2 days')
is "$(call $V GET /v1/dlq/exec/groups)" 200 "viewer reads the groups"
is "$(jq -c '[.groups[] | [.error, .kind, .count]]' "$B")" '[["disk full","exec",4],["timeout","exec",1]]' \
    "groups by error from postgres, largest first"
since=$(( $(date +%s) - 86400 ))
is "$(call $V GET "/v1/dlq/exec/groups?since=$since")/$(jq -c '[.groups[].count]' "$B")" '200/[3,1]' \
    "since= leaves out the letter of two days ago"
is "$(call $O POST '/v1/dlq/exec/replay?colour=red')/$(jq -r .error "$B")" \
    '400/colour: unknown parameter (a dead-letter filter takes error, kind, since, limit)' "an unknown filter: 400 naming it"
like "$(call $O POST '/v1/dlq/exec/replay?since=yesterday')/$(jq -r .error "$B")" '^400/since: ' "a bad since: 400"
like "$(call $O POST '/v1/dlq/exec/replay?limit=10001')/$(jq -r .error "$B")" '^400/limit: .* 1 to 10000' \
    "limit over the bound: 400"
is "$(call $V POST '/v1/dlq/exec/replay?error=disk%20full')" 403 "viewer cannot bulk replay: 403"
is "$(call $O POST "/v1/dlq/exec/replay?error=disk%20full&limit=2&since=$since")" 200 \
    "replay a group failed since yesterday, two at a time"
is "$(jq -c '[.replayed, .published, .failed_count, .more, .filter.error, .filter.limit]' "$B")" \
    '[2,2,0,true,"disk full",2]' "two replayed and published; more remain"
is "$(call $O POST "/v1/dlq/exec/replay?error=disk%20full&since=$since")/$(jq -c '[.replayed, .more]' "$B")" \
    '200/[1,false]' "the rest of the group since yesterday: one, no more"
is "$(it_psql "SELECT string_agg(last_error || ':' || state, ',' ORDER BY last_error, state) FROM tasks
               WHERE last_error IN ('disk full', 'timeout')")" 'disk full:dead,disk full:queued,disk full:queued,disk full:queued,timeout:dead' \
    "postgres: the three recent ones queued, the old one and the timeout still dead"
is "$(it_redis XLEN "$DLQ")" 2 "their letters left the DLQ; two remain"
is "$(it_psql "SELECT detail->'filter'->>'error' || ' ' || (detail->>'count') FROM audit_log WHERE action='dlq.replay'
               AND target='exec' AND detail->'filter'->>'error' IS NOT NULL ORDER BY id LIMIT 1")" 'disk full 2' \
    "the audit row carries the filter and the count"
is "$(call $O DELETE '/v1/dlq/exec?error=timeout')" 403 "an operator cannot purge: 403"
is "$(call $A DELETE '/v1/dlq/exec?kind=exec&error=timeout')" 200 "purge a group by error and kind"
is "$(jq -c '[.purged, .entries_removed, .more]' "$B")" '[1,1,false]' "one task purged, its letter removed"
is "$(it_psql "SELECT dlq_purged_at IS NOT NULL FROM tasks WHERE id='$bt'")/$(it_redis XRANGE "$DLQ" - + | grep -c "$bt")" \
    't/0' "postgres marks it purged, redis lost its letter"
is "$(call $A DELETE '/v1/dlq/exec?since=2999-01-01')/$(jq -c '[.purged, .entries_removed]' "$B")" '200/[0,0]' \
    "a filter that matches nothing purges nothing"
is "$(call $A DELETE '/v1/dlq/exec?limit=1')/$(jq -c '[.purged, .more]' "$B")" '200/[1,false]' \
    "limit=1 purges the old letter, the last one"
is "$(it_redis XLEN "$DLQ")/$(it_psql "SELECT count(*) FROM tasks WHERE state='dead' AND dlq_purged_at IS NULL")" \
    0/0 "redis and postgres agree: nothing left"
is "$(it_psql "SELECT detail->'filter'->>'error' || ' ' || (detail->>'tasks') FROM audit_log WHERE action='dlq.purge'
               AND target='exec' AND outcome = 200 AND detail->'filter'->>'error' IS NOT NULL ORDER BY id LIMIT 1")" 'timeout 1' \
    "audit row for the filtered purge"

# ---- the same from devsysctl: dlq groups, replay|purge --all with --error/--kind/--since/--limit
read -r o1 _ < <(mkdead o1 'out of memory')
read -r o2 _ < <(mkdead o2 'out of memory')
read -r sg _ < <(mkdead s1 'segmentation fault')
g=$(DEVSYS_TOKEN=$V ctl dlq groups exec)
like "$g" '^COUNT +KIND +FIRST_FAILED +LAST_FAILED +ERROR' "devsysctl dlq groups: a table with a header"
like "$(grep 'out of memory' <<<"$g")" '^2 +exec ' "devsysctl dlq groups: out of memory, 2 letters of kind exec"
is "$(DEVSYS_TOKEN=$V ctl --json dlq groups exec --error 'segmentation fault' | jq -c '[.groups[].count]')" '[1]' \
    "devsysctl --json dlq groups with --error: that group only"
like "$(DEVSYS_TOKEN=$O ctl dlq replay exec --all --error 'out of memory' --kind exec --since 1h --limit 5)" \
    'replayed: +2' "devsysctl dlq replay --all --error ... --since 1h: two replayed"
is "$(it_psql "SELECT string_agg(state, ',' ORDER BY id = '$sg', id) FROM tasks WHERE id IN ('$o1','$o2','$sg')")" \
    'queued,queued,dead' "postgres: only the matching letters were replayed; the other error stays dead"
like "$(DEVSYS_TOKEN=$A ctl dlq purge exec --all --error 'segmentation fault')" 'purged: +1' \
    "devsysctl dlq purge --all --error: that group purged"
is "$(it_psql "SELECT dlq_purged_at IS NOT NULL FROM tasks WHERE id='$sg'")" t "postgres: marked purged"
for bad in '--limit 0' '--limit 10001' '--kind a/b' '--since yesterday' '--error='; do
    read -ra args <<<"$bad"
    err=$(DEVSYS_TOKEN=$O ctl dlq replay exec --all "${args[@]}" 2>&1)
    is "$?/$(grep -c -- "${bad%%[ =]*} must" <<<"$err")" 2/1 "devsysctl dlq replay --all $bad: exit 2, the error names ${bad%%[ =]*}"
done
# DEVSYS_TIMEOUT is read alike by every subcommand: a bad one is a usage error
for sub in 'dlq ls' 'approvals' 'token list' 'list'; do
    read -ra args <<<"$sub"
    err=$(DEVSYS_TIMEOUT=soon ctl "${args[@]}" 2>&1)
    is "$?/$(grep -c "DEVSYS_TIMEOUT must be" <<<"$err")" 2/1 "devsysctl $sub with DEVSYS_TIMEOUT=soon: exit 2 naming it"
done
like "$(DEVSYS_TOKEN=$O ctl dlq replay exec "$o1" --error x 2>&1)" 'go with dlq groups and dlq replay.purge QUEUE --all' \
    "a filter flag without --all: refused"

# ---- retry: a cancelled or dead task queued again, same id, attempts kept
c2=$(ctl submit - <<<'{"kind":"exec","command":["sh","-c","echo retried"]}')
call $O POST "/v1/tasks/$c2/cancel" >/dev/null
is "$(call $V POST "/v1/tasks/$c2/retry")" 403 "viewer cannot retry: 403"
is "$(call $O POST "/v1/tasks/$c2/retry")" 200 "operator retries a cancelled task"
is "$(jq -c '[.id, .state, .was, .published]' "$B")" "[\"$c2\",\"queued\",\"cancelled\",true]" \
    "reply: queued again, it was cancelled, published"
is "$(call $O POST "/v1/tasks/$c2/retry")/$(jq -r .state "$B")" 409/queued "retrying a queued task: 409 with its state"
is "$(call $O POST /v1/tasks/00000000-0000-0000-0000-000000000000/retry)" 404 "retry an unknown task: 404"
# a task cancelled while queued (its first stream entry is still there) and retried runs once
runs=$IT_DIR/runs
is "$(call $O POST /v1/queues/exec/pause)" 200 "pause exec: the task stays queued"
c3=$(ctl submit - <<<"{\"kind\":\"exec\",\"command\":[\"sh\",\"-c\",\"echo run >> $runs\"]}")
is "$(call $O POST "/v1/tasks/$c3/cancel")/$(call $O POST "/v1/tasks/$c3/retry")" 200/200 "cancel it while queued, retry it"
is "$(it_redis XRANGE "$S" - + | grep -c "$c3")" 2 "its stream holds two entries: the first and the retry's"
c3last=$(it_redis XREVRANGE "$S" + - COUNT 1 | head -1) # the retry's entry, the newest
is "$(call $O POST /v1/queues/exec/resume)" 200 "resume exec"
read -r d9 e9 < <(mkdead 9 'exit status 2')
it_psql "INSERT INTO task_attempts (task_id, attempt, agent, started_at, outcome, error)
         VALUES ('$d9', 1, 'a9', now(), 'dead', 'exit status 2')" >/dev/null
like "$(DEVSYS_TOKEN=$O ctl retry "$d9")" "retrying $d9" "devsysctl retry ID"
is "$(it_psql "SELECT state, attempt, max_attempts, replays, dlq_entry IS NULL FROM tasks WHERE id='$d9'")" 'queued|1|4|1|t' \
    "postgres: the dead task is queued with a fresh budget, replays 1"
is "$(it_redis XRANGE "$DLQ" - + | grep -c "$d9")" 0 "its letter left the DLQ"
is "$(it_psql "SELECT count(*) FROM audit_log WHERE action='task.retry' AND target IN ('$c2','$d9') AND outcome = 200")" 2 \
    "audit rows task.retry"
p1=$(curl -s -H "Authorization: Bearer $O" -H 'Content-Type: application/json' -d '{"name":"retry-pipe","steps":{"a":{"spec":{"kind":"exec","command":["false"],"retry_policy":{"max_attempts":1}}}}}' "$DEVSYS_URL/v1/pipelines" | jq -r .id)
pt=$(it_psql "SELECT id FROM tasks WHERE pipeline_id='$p1'")
it_psql "UPDATE tasks SET state='dead' WHERE id='$pt'" >/dev/null
like "$(call $O POST "/v1/tasks/$pt/retry")/$(jq -r .error "$B")" '^409/.*re-run the pipeline' \
    "a pipeline step's task: 409, re-run the pipeline instead"

# ---- cancel a queued task: it never runs
c1=$(ctl submit - <<<'{"kind":"exec","command":["sh","-c","echo ran"]}')
is "$(call $O POST "/v1/tasks/$c1/cancel")" 200 "cancel a queued task"
is "$(jq -c '[.state, .previous_state, .signalled]' "$B")" '["cancelled","queued",false]' "reply names the prior state"
is "$(it_psql "SELECT state, finished_at IS NOT NULL FROM tasks WHERE id='$c1'")" 'cancelled|t' "postgres: cancelled"
is "$(call $O POST "/v1/tasks/$c1/cancel")/$(jq -r .state "$B")" 409/cancelled "cancel again: 409 with the state"
is "$(call $O POST /v1/tasks/00000000-0000-0000-0000-000000000000/cancel)" 404 "cancel an unknown task: 404"
is "$(call $O POST /v1/tasks/nope/cancel)" 404 "cancel a non-id: 404"
is "$(call $O GET "/v1/tasks/$c1/cancel")" 405 "GET on cancel: 405"
like "$(DEVSYS_TOKEN=$O ctl cancel "$c1" 2>&1)" '409' "devsysctl cancel reports the conflict"
is "$(it_psql "SELECT count(*) FROM audit_log WHERE action='task.cancel' AND target='$c1' AND outcome = 200")" 1 "one audit row"

# ---- checkpoints
it_psql "INSERT INTO checkpoints (task_id, attempt, data) VALUES
         ('$d1', 1, '{\"step\":1}'), ('$d1', 1, '{\"step\":2}'), ('$d1', 2, '{\"step\":3}');
         UPDATE tasks SET checkpoint = '{\"step\":3}' WHERE id = '$d1'" >/dev/null
is "$(call $V GET "/v1/tasks/$d1/checkpoints")" 200 "viewer reads checkpoints"
is "$(jq -c '[[.checkpoints[] | [.attempt, .data.step]], .last.step, .next]' "$B")" '[[[1,1],[1,2],[2,3]],3,null]' \
    "all three in order, the last one, no cursor"
is "$(call $V GET "/v1/tasks/$d1/checkpoints?limit=2")/$(jq -r '.checkpoints | length' "$B")" 200/2 "limit=2"
next=$(jq -r .next "$B")
is "$(call $V GET "/v1/tasks/$d1/checkpoints?after=$next")/$(jq -c '[.checkpoints[].data.step]' "$B")" '200/[3]' \
    "after=cursor: the rest"
is "$(call $V GET /v1/tasks/00000000-0000-0000-0000-000000000000/checkpoints)" 404 "unknown task: 404"
like "$(ctl get "$d1")" 'checkpoints: +3' "devsysctl get shows the checkpoints"

# ---- an agent runs the replayed tasks and skips the cancelled one
it_start_agent a1 DEVSYS_QUEUES=exec
ok "the four replayed tasks succeed" it_wait_sql 30 \
    "SELECT count(*) FROM tasks WHERE id IN ('$d1','$d3','$d4','$d5') AND state='succeeded'" 4
is "$(it_psql "SELECT output_tail FROM tasks WHERE id='$d4'")" replayed-4 "a replayed task ran its spec"
ok "the retried tasks succeed" it_wait_sql 30 "SELECT count(*) FROM tasks WHERE id IN ('$c2','$d9') AND state='succeeded'" 2
is "$(it_psql "SELECT string_agg(attempt || ':' || outcome, ',' ORDER BY attempt) FROM task_attempts WHERE task_id='$d9'")" \
    '1:dead,2:succeeded' "the retried task kept its first attempt; the retry is attempt 2"
# the agent's group went past the retry's entry and nothing is pending: the second entry was seen
# shellcheck disable=SC2317 # called through it_wait_for
delivered_past() {
    local last pend
    last=$(it_redis XINFO GROUPS "$S" | grep -A1 -x last-delivered-id | tail -1)
    pend=$(it_redis XPENDING "$S" agents | head -1)
    [[ $pend == 0 && ( ${last%-*} -gt ${1%-*} || ( ${last%-*} -eq ${1%-*} && ${last#*-} -ge ${1#*-} ) ) ]]
}
ok "the agents read both entries of the cancelled-and-retried task" it_wait_for 30 "delivered_past '$c3last'"
is "$(it_psql "SELECT state || ' ' || (SELECT string_agg(outcome, ',') FROM task_attempts WHERE task_id='$c3')
               FROM tasks WHERE id='$c3'")/$(wc -l <"$runs")" 'succeeded succeeded/1' \
    "the cancelled-then-retried task ran exactly once: one attempt, one line"
sleep 1
is "$(it_psql "SELECT state || ' ' || (SELECT count(*) FROM task_attempts WHERE task_id='$c1')
               FROM tasks WHERE id='$c1'")" 'cancelled 0' "the cancelled task never ran"

# ---- cancel a running task: agents are told on the control channel
pidf=$IT_DIR/sleeper.pid
r1=$(ctl submit - <<EOF
{"kind":"exec","command":["sh","-c","echo \$\$ > $pidf; exec sleep 30"],"retry_policy":{"max_attempts":1}}
EOF
)
ok "the sleeper is running" it_wait_sql 20 "SELECT state FROM tasks WHERE id='$r1'" running
is "$(call $O POST "/v1/tasks/$r1/cancel")" 200 "cancel a running task"
is "$(jq -c '[.previous_state, .signalled]' "$B")" '["running",true]' \
    "reply: it was running, the agents were told"
like "$(it_redis XRANGE devsys:control - +)" "$r1" "the control stream carried 'cancel <id>'"
ok "the agent stops its process" it_wait_for 15 "[[ -s $pidf ]] && ! kill -0 \$(cat $pidf) 2>/dev/null"
sleep 1
is "$(it_psql "SELECT state FROM tasks WHERE id='$r1'")" cancelled "the task stays cancelled"

# ---- replay while redis is down: the reconciler publishes it later
it_stop_manager
DEVSYS_RECONCILE_S=1 DEVSYS_REPUBLISH_AFTER_S=1 it_start_manager || it_bail "restart manager"
it_stop_agent a1
read -r d8 e8 < <(mkdead 8)
ds_stop_redis "$REDIS_PID"
is "$(call $O POST "/v1/dlq/exec/$d8/replay")" 200 "replay with redis down: accepted"
is "$(jq -c '[.state, .published, (.note | test("reconciler"))]' "$B")" '["queued",false,true]' \
    "the reply says it is not published yet and who will publish it"
is "$(it_psql "SELECT state || ' ' || extract(epoch FROM published_at)::bigint FROM tasks WHERE id='$d8'")" 'queued 0' \
    "postgres: queued, published_at at the epoch (due for the reconciler)"
is "$(call $V GET /v1/dlq/exec)" 503 "listing needs redis: 503"
is "$(call $A DELETE /v1/dlq/exec)" 503 "purge all with redis down: 503, nothing purged"
ds_start_redis "$IT_DIR/redis" "$REDIS_PORT" || it_bail "restart redis"
it_start_agent a2 DEVSYS_QUEUES=exec
ok "once redis is back the task runs" it_wait_sql 30 "SELECT state FROM tasks WHERE id='$d8'" succeeded
it_done
