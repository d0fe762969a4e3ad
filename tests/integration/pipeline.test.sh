#!/usr/bin/env bash
# Pipelines (README "Pipelines"): a diamond runs in dependency order; a failing
# step skips what needs it while `if: always` and `if: failure` steps run;
# rerun after the fix runs only the failed step and what depends on it;
# cancel stops a running pipeline; `next` is a linear pipeline; hostile
# documents are 400s that name the problem.
source "$(dirname "$0")/itest.sh"
it_setup
it_start_manager || it_bail "start manager"
it_start_agent a1 DEVSYS_QUEUES=exec DEVSYS_CONCURRENCY=4

api() { # api METHOD PATH [BODY]: prints the body, then the status on the last line
    [[ -n ${3:-} ]] && printf '%s' "$3" >"$IT_DIR/body.json"
    curl -s -w '\n%{http_code}' -X "$1" -H "Authorization: Bearer $DEVSYS_TOKEN" \
        -H 'Content-Type: application/json' ${3:+--data-binary "@$IT_DIR/body.json"} "$DEVSYS_URL$2"
}
body() { sed '$d' <<<"$1"; }
code() { tail -n 1 <<<"$1"; }
wait_pipeline() { # wait_pipeline ID STATE
    it_wait_sql 60 "SELECT state FROM pipelines WHERE id = '$1'" "$2"
}
# tasks created per node of pipeline $1: "node=count ..." in node order
rows_per_node() {
    it_psql "SELECT string_agg(n.name || '=' || (SELECT count(*) FROM tasks t WHERE t.pipeline_id = n.pipeline_id
                                     AND t.spec->'pipeline'->>'step' = n.step
                                     AND (t.spec->'pipeline'->>'index')::int = n.idx), ' ' ORDER BY n.step, n.idx)
             FROM pipeline_nodes n WHERE n.pipeline_id = '$1'"
}
exec_step() { # exec_step 'shell command' [needs-json] [if]: a step object
    jq -nc --arg c "$1" --argjson n "${2:-[]}" --arg i "${3:-success}" \
        '{needs: $n, if: $i, spec: {kind: "exec", command: ["sh", "-c", $c], retry_policy: {max_attempts: 1}}}'
}

# ---- a diamond: a -> (b with 3 shards, c) -> d
doc=$(jq -nc --argjson a "$(exec_step 'sleep 0.2')" --argjson b "$(exec_step 'sleep 0.3' '["a"]')" \
            --argjson c "$(exec_step 'sleep 0.1' '["a"]')" --argjson d "$(exec_step 'true' '["b","c"]')" \
    '{name: "diamond", steps: {d: $d, b: ($b + {shards: 3}), c: $c, a: $a}}')
r=$(api POST /v1/pipelines "$doc")
is "$(code "$r")" 201 "a diamond pipeline is accepted"
pid=$(body "$r" | jq -r .id)
is "$(body "$r" | jq -r '[.tasks[].step] | join(",")')" "a" "only the root step's task is created at submit"
ok "the diamond succeeds" wait_pipeline "$pid" succeeded
# every edge: the needing node started after each needed node finished
bad=$(it_psql "SELECT count(*) FROM pipeline_steps s, unnest(s.needs) need,
                      pipeline_nodes dn JOIN tasks dt ON dt.id = dn.task_id,
                      pipeline_nodes un JOIN tasks ut ON ut.id = un.task_id
               WHERE s.pipeline_id = '$pid' AND dn.pipeline_id = s.pipeline_id AND dn.step = s.step
                 AND un.pipeline_id = s.pipeline_id AND un.step = need AND dt.started_at < ut.finished_at")
is "$bad" 0 "no node started before a node it needs had finished (task started_at/finished_at)"
is "$(rows_per_node "$pid")" "a=1 b[0]=1 b[1]=1 b[2]=1 c=1 d=1" "one task per node"
is "$(it_psql "SELECT spec->'env'->>'DEVSYS_SHARD' || '/' || (spec->'env'->>'DEVSYS_SHARDS')
               FROM tasks WHERE pipeline_id = '$pid' AND spec->'pipeline'->>'step' = 'b' ORDER BY 1" | paste -sd' ')" \
    "0/3 1/3 2/3" "each shard sees DEVSYS_SHARD/DEVSYS_SHARDS"
is "$(it_psql "SELECT string_agg(k, ',' ORDER BY k) FROM tasks, jsonb_object_keys(spec->'inputs') k
               WHERE pipeline_id = '$pid' AND spec->'pipeline'->>'step' = 'd'")" "b[0],b[1],b[2],c" \
    "the fan-in's inputs name every node it needs"
g=$(body "$(api GET "/v1/pipelines/$pid")")
is "$(jq -r '[.steps[] | .step + ":" + .state] | join(" ")' <<<"$g")" \
    "a:succeeded b:succeeded c:succeeded d:succeeded" "GET shows the steps in dependency order with states"
is "$(jq -r '.steps[1].nodes | length' <<<"$g")/$(jq -r '.steps[0].nodes[0].links.report' <<<"$g")" \
    "3//v1/tasks/$(jq -r '.steps[0].nodes[0].task_id' <<<"$g")/report" "nodes carry their task and report links"
like "$(jq -r '.steps[0].nodes[0] | "\(.attempt) \(.duration_s)"' <<<"$g")" '^1 0?\.[0-9]+' "attempt and duration"

# ---- a failing step: deploy skipped; cleanup (if: failure) and report (if: always) run
flag=$IT_DIR/fixed
doc=$(jq -nc --argjson build "$(exec_step 'true')" --argjson test "$(exec_step "test -f $flag" '["build"]')" \
            --argjson deploy "$(exec_step 'true' '["test"]')" \
            --argjson cleanup "$(exec_step 'true' '["test"]' failure)" \
            --argjson report "$(exec_step 'true' '["deploy"]' always)" \
    '{name: "ship", steps: {build: $build, test: $test, deploy: $deploy, cleanup: $cleanup, report: $report}}')
r=$(api POST /v1/pipelines "$doc")
is "$(code "$r")" 201 "a pipeline with a failing step is accepted"
pid=$(body "$r" | jq -r .id)
ok "it ends failed" wait_pipeline "$pid" failed
steps() { it_psql "SELECT string_agg(step || ':' || state, ' ' ORDER BY pos) FROM pipeline_steps WHERE pipeline_id = '$1'"; }
is "$(steps "$pid")" "build:succeeded test:failed deploy:skipped cleanup:succeeded report:succeeded" \
    "test failed; deploy skipped; cleanup (if: failure) and report (if: always) ran"
is "$(rows_per_node "$pid")" "build=1 cleanup=1 deploy=0 report=1 test=1" "no task for the skipped step"

# ---- rerun after the fix: only test and what depends on it run again
touch "$flag"
r=$(api POST "/v1/pipelines/$pid/rerun")
is "$(code "$r")" 200 "rerun is accepted"
is "$(body "$r" | jq -r '[.tasks[].step] | join(",")')" "test" "it creates the failed step's task first"
ok "the rerun succeeds" wait_pipeline "$pid" succeeded
is "$(steps "$pid")" "build:succeeded test:succeeded deploy:succeeded cleanup:skipped report:succeeded" \
    "test and deploy succeeded; cleanup (if: failure) is now skipped"
is "$(rows_per_node "$pid")" "build=1 cleanup=1 deploy=1 report=2 test=2" \
    "build kept its one task; test and report ran again, deploy for the first time"
is "$(it_psql "SELECT runs FROM pipelines WHERE id = '$pid'")/$(it_psql "SELECT attempts FROM pipeline_nodes
    WHERE pipeline_id = '$pid' AND step = 'test'")" "2/2" "the pipeline's runs and the node's task count"
r=$(api POST "/v1/pipelines/$pid/rerun")
is "$(code "$r")/$(body "$r" | jq -r '.tasks | length')" "200/0" "rerunning a succeeded pipeline creates nothing"

# ---- a dead step replayed from the DLQ reopens the pipeline: what it skipped runs
flag2=$IT_DIR/fixed2
doc=$(jq -nc --argjson a "$(exec_step "test -f $flag2")" --argjson b "$(exec_step 'true' '["a"]')" \
    '{name: "replay", steps: {a: $a, b: $b}}')
pid=$(body "$(api POST /v1/pipelines "$doc")" | jq -r .id)
ok "step a goes dead, the pipeline fails" wait_pipeline "$pid" failed
dead=$(it_psql "SELECT task_id FROM pipeline_nodes WHERE pipeline_id = '$pid' AND step = 'a'")
is "$(it_psql "SELECT state FROM tasks WHERE id = '$dead'")/$(steps "$pid")" "dead/a:failed b:skipped" \
    "a is dead (in the DLQ), b skipped"
touch "$flag2"
is "$(code "$(api POST "/v1/dlq/exec/$dead/replay")")" 200 "the dead task is replayed from the DLQ"
ok "the pipeline reopens and succeeds" wait_pipeline "$pid" succeeded
is "$(steps "$pid")/$(rows_per_node "$pid")" "a:succeeded b:succeeded/a=1 b=1" \
    "a succeeded on replay (same task), then b ran once"

# ---- cancel a running pipeline: the running task stops, nothing after it starts
doc=$(jq -nc --argjson slow "$(exec_step 'sleep 60')" --argjson after "$(exec_step 'true' '["slow"]' always)" \
    '{name: "cancel-me", steps: {slow: $slow, after: $after}}')
pid=$(body "$(api POST /v1/pipelines "$doc")" | jq -r .id)
ok "the slow step runs" it_wait_sql 20 "SELECT t.state FROM pipeline_nodes n JOIN tasks t ON t.id = n.task_id
                                         WHERE n.pipeline_id = '$pid' AND n.step = 'slow'" running
r=$(api POST "/v1/pipelines/$pid/cancel")
is "$(code "$r")/$(body "$r" | jq -r '.cancelled_tasks[0].was')" "200/running" "cancel answers with the running task"
is "$(steps "$pid")" "slow:cancelled after:cancelled" "steps not started are cancelled, even if: always"
is "$(it_psql "SELECT state FROM pipelines WHERE id = '$pid'")" cancelled "the pipeline is cancelled"
is "$(code "$(api POST "/v1/pipelines/$pid/cancel")")" 409 "cancelling it again: 409"
ok "the agent stopped the command" it_wait_sql 20 \
    "SELECT count(*) FROM task_attempts a JOIN tasks t ON t.id = a.task_id WHERE t.pipeline_id = '$pid'" 1

# ---- next: sugar for a linear pipeline
r=$(api POST /v1/tasks '{"kind":"exec","name":"chain","command":["true"],
                         "next":[{"kind":"exec","command":["true"]},{"kind":"exec","command":["true"]}]}')
is "$(code "$r")" 201 "a task with next is accepted"
pid=$(body "$r" | jq -r .pipeline.id)
main=$(body "$r" | jq -r '.tasks[0].id')
ok "its pipeline succeeds" wait_pipeline "$pid" succeeded
is "$(it_psql "SELECT spec->'pipeline'->>'step' FROM tasks WHERE id = '$main'")" main "the answered task is step main"
is "$(it_psql "SELECT string_agg(spec->'pipeline'->>'step', ' ' ORDER BY started_at) FROM tasks
               WHERE pipeline_id = '$pid'")" "main next-1 next-2" "main, then next-1, then next-2"

# ---- hostile documents: 400s naming the problem
cycle=$(jq -nc --argjson a "$(exec_step true '["c"]')" --argjson b "$(exec_step true '["a"]')" \
               --argjson c "$(exec_step true '["b"]')" '{name: "x", steps: {a: $a, b: $b, c: $c}}')
r=$(api POST /v1/pipelines "$cycle")
is "$(code "$r")" 400 "a cycle is refused"
like "$(body "$r" | jq -r .error)" '^steps: cycle a -> c -> b -> a' "the cycle is named"
many=$(jq -nc '{name: "many", steps: ([range(0; 10000) | {key: "s\(.)", value: {spec: {kind: "noop"}}}]
                                     | from_entries)}')
r=$(api POST /v1/pipelines "$many")
is "$(code "$r")/$(body "$r" | jq -r .error)" "400/steps: 10000 steps exceeds the limit of 100" "10k steps: 400"
deep=$(printf '{"name":"deep","steps":%s%s}' "$(printf '[%.0s' $(seq 5000))" "$(printf ']%.0s' $(seq 5000))")
r=$(api POST /v1/pipelines "$deep")
is "$(code "$r")" 400 "deep nesting is refused"
like "$(body "$r" | jq -r .error)" 'nesting deeper than' "... saying so"
typo=$(jq -nc --argjson t "$(exec_step true)" --argjson d "$(exec_step true '["tset"]')" \
    '{name: "typo", steps: {test: $t, deploy: $d}}')
r=$(api POST /v1/pipelines "$typo")
is "$(code "$r")/$(body "$r" | jq -r .error)" '400/steps.deploy.needs[0]: unknown step "tset"' "an unknown need"
r=$(api POST /v1/pipelines '{"name":"x","steps":{"a":{"spec":{"kind":"noop"},"shards":300}}}')
is "$(code "$r")/$(body "$r" | jq -r .error)" "400/steps.a.shards: must be an integer from 1 to 256" "too many shards"
r=$(api POST /v1/pipelines '{"name":"x","steps":{"a":{"spec":{"kind":"exec"}}}}')
like "$(code "$r") $(body "$r" | jq -r .error)" '^400 steps\.a\.spec\.command: ' "a bad step spec names the step"
is "$(it_psql "SELECT count(*) FROM pipelines WHERE name IN ('x', 'many', 'deep', 'typo')")" 0 "none was recorded"
r=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer nope" "$DEVSYS_URL/v1/pipelines" -d '{}')
is "$r" 401 "submitting needs a token"

# ---- list, newest first, paged
r=$(body "$(api GET '/v1/pipelines?limit=2')")
is "$(jq -r '[.pipelines[].name] | join(",")' <<<"$r")" "chain,cancel-me" "the list is newest first"
r=$(body "$(api GET "/v1/pipelines?limit=2&after=$(jq -r .next <<<"$r")")")
is "$(jq -r '[.pipelines[].name] | join(",")' <<<"$r")" "replay,ship" "the next page continues"
is "$(body "$(api GET '/v1/pipelines?name=ship')" | jq -r '.pipelines[0].state')" succeeded "filter by name"

# ---- devsysctl pipeline submit | ID --watch | ID | rerun | cancel
jq -nc --argjson a "$(exec_step 'sleep 1')" --argjson b "$(exec_step 'sleep 3; test -f "$F"' '["a"]')" \
    '{name: "cli", steps: {a: $a, b: ($b + {matrix: {os: ["linux", "bsd"]}})}}' >"$IT_DIR/cli.json"
pid=$(ctl pipeline submit "$IT_DIR/cli.json")
like "$pid" '^[0-9a-f-]{36}$' "devsysctl pipeline submit prints the id"
ctl pipeline "$pid" --watch >"$IT_DIR/watch.out"
st=$?
is "$st" 1 "--watch follows until the end, exit 1: it failed (no \$F)"
like "$(cat "$IT_DIR/watch.out")" 'state running' "--watch showed it running"
like "$(tail -n 5 "$IT_DIR/watch.out" | paste -sd"|")" 'pipeline: .* cli  state failed.*b <- \["a"\] +b\[0\] +(failed|dead)' \
    "... then failed, with a table of steps and nodes"
is "$(it_psql "SELECT string_agg(spec->'env'->>'DEVSYS_MATRIX_OS', ',' ORDER BY spec->'pipeline'->>'index')
               FROM tasks WHERE pipeline_id = '$pid' AND spec->'pipeline'->>'step' = 'b'")" "linux,bsd" \
    "each matrix node sees DEVSYS_MATRIX_OS"
like "$(ctl pipeline rerun "$pid")" "re-running $pid" "devsysctl pipeline rerun"
like "$(ctl pipeline cancel "$pid")" "cancelled $pid" "devsysctl pipeline cancel"
like "$(ctl pipeline "$pid")" 'state cancelled' "devsysctl pipeline ID shows it cancelled"
ctl pipeline cancel "$pid" >/dev/null 2>&1
is "$?" 4 "cancelling a finished pipeline: refused (exit 4)"
it_done
