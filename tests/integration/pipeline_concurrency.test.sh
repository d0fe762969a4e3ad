#!/usr/bin/env bash
# Concurrency groups (README "Pipelines"): three pipelines of one group
# submitted at once run one after another in submit order (no overlap of
# their tasks' started/finished times, with an agent free to run them all);
# the later ones answer "queued" and get their tasks from the transaction that
# ends the one before (published at once: the reconciler would wait 300 s).
# With cancel_in_progress the newest wins: the running one is cancelled (its
# task signalled), the queued one between is cancelled without a task, and
# the newest runs after the running one stopped.
# The same on a step (migrations/017): deploy steps of one group never overlap
# across pipelines and run oldest first (waiting_group meanwhile); with
# cancel_in_progress the newest step cancels the running and the waiting
# ones (their pipelines end cancelled, what needs them is skipped); a bad
# step concurrency is refused naming the field.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
export DEVSYS_RECONCILE_S=1 DEVSYS_REPUBLISH_AFTER_S=300 DEVSYS_RATE_MUTATING_PER_S=0
it_start_manager || it_bail "start manager"
it_start_agent a1 DEVSYS_QUEUES=exec DEVSYS_CONCURRENCY=8

submit() { # submit NAME GROUP CANCEL_IN_PROGRESS 'shell command': prints the answer
    jq -nc --arg n "$1" --arg g "$2" --argjson c "$3" --arg cmd "$4" \
        '{name: $n, concurrency: {group: $g, cancel_in_progress: $c},
          steps: {build: {spec: {kind: "exec", command: ["sh", "-c", $cmd], retry_policy: {max_attempts: 1}}},
                  ship: {needs: ["build"], spec: {kind: "exec", command: ["sh", "-c", $cmd], retry_policy: {max_attempts: 1}}}}}' \
        | curl -s -X POST -H "Authorization: Bearer $DEVSYS_TOKEN" --data-binary @- "$DEVSYS_URL/v1/pipelines"
}
state() { it_psql "SELECT state FROM pipelines WHERE id = '$1'"; }

# ---- three in one group, oldest first
declare -a ids states
for i in 1 2 3; do
    r=$(submit "line-$i" line false 'sleep 0.7')
    ids+=("$(jq -r .id <<<"$r")")
    states+=("$(jq -r .state <<<"$r")")
done
is "${states[*]}" "running queued queued" "the first runs; the others answer queued"
g=$(curl -s -H "Authorization: Bearer $DEVSYS_TOKEN" "$DEVSYS_URL/v1/pipelines/${ids[2]}")
is "$(jq -r '"\(.state) \(.concurrency.group) \(.concurrency.cancel_in_progress)"' <<<"$g")" "queued line false" \
    "GET shows a queued pipeline with its group"
# one snapshot: the ones still queued (a loaded machine may have moved on) have no task
is "$(it_psql "SELECT count(*) FROM tasks t JOIN pipelines p ON p.id = t.pipeline_id
               WHERE p.id IN ('${ids[1]}', '${ids[2]}') AND p.state = 'queued'")" 0 \
    "a queued pipeline has no task yet"
for i in 0 1 2; do
    ok "line-$((i + 1)) succeeds" it_wait_sql 40 "SELECT state FROM pipelines WHERE id = '${ids[$i]}'" succeeded
done
# each pipeline's span of task times, in start order
spans=$(it_psql "SELECT p.name || ' ' || min(t.started_at) || ' ' || max(t.finished_at) FROM pipelines p
                 JOIN tasks t ON t.pipeline_id = p.id WHERE p.cgroup = 'line' GROUP BY p.name ORDER BY min(t.started_at)")
is "$(cut -d' ' -f1 <<<"$spans" | paste -sd' ')" "line-1 line-2 line-3" "they ran in submit order"
is "$(it_psql "SELECT count(*) FROM (SELECT p.id, min(t.started_at) s, max(t.finished_at) f FROM pipelines p
               JOIN tasks t ON t.pipeline_id = p.id WHERE p.cgroup = 'line' GROUP BY p.id) a,
               (SELECT p.id, min(t.started_at) s, max(t.finished_at) f FROM pipelines p
               JOIN tasks t ON t.pipeline_id = p.id WHERE p.cgroup = 'line' GROUP BY p.id) b
               WHERE a.id < b.id AND a.s < b.f AND b.s < a.f")" 0 "no two overlapped (task started_at/finished_at)"
is "$(it_psql "SELECT string_agg(coalesce(woken_by::text, '-'), ' ' ORDER BY group_seq) FROM pipelines WHERE cgroup = 'line'")" \
    "- ${ids[0]} ${ids[1]}" "each was started by the end of the one before"

# ---- cancel_in_progress: the newest wins
long="sleep 29.$$" # its process is looked for by this unique command line
old=$(submit "preview-1" preview false "$long" | jq -r .id)
ok "the first preview runs" it_wait_sql 20 "SELECT state FROM tasks WHERE pipeline_id = '$old'" running
mid=$(submit "preview-2" preview false "$long" | jq -r .id)
is "$(state "$mid")" queued "a second one (no cancel_in_progress) waits"
r=$(submit "preview-3" preview true 'true')
new=$(jq -r .id <<<"$r")
is "$(jq -r .state <<<"$r")" queued "the newest with cancel_in_progress is queued until the running one stops"
ok "the newest runs to the end" it_wait_sql 30 "SELECT state FROM pipelines WHERE id = '$new'" succeeded
is "$(state "$old") $(state "$mid")" "cancelled cancelled" "the running and the waiting one were cancelled"
is "$(it_psql "SELECT string_agg(superseded_by::text, ' ' ORDER BY group_seq) FROM pipelines
               WHERE id IN ('$old', '$mid')")" "$new $new" "both superseded by the newest"
is "$(it_psql "SELECT state FROM tasks WHERE pipeline_id = '$old'")" cancelled "the running task was cancelled"
is "$(it_psql "SELECT count(*) FROM tasks WHERE pipeline_id = '$mid'")" 0 "the waiting one never got a task"
is "$(it_psql "SELECT count(*) FROM tasks o, tasks n WHERE o.pipeline_id = '$old' AND n.pipeline_id = '$new'
               AND n.started_at < o.finished_at")" 0 "the newest started after the old one stopped"
ok "the old task's process was stopped, not left running" \
    it_wait_for 10 "! pgrep -fx '$long' >/dev/null"
g=$(curl -s -H "Authorization: Bearer $DEVSYS_TOKEN" "$DEVSYS_URL/v1/pipelines/$old")
is "$(jq -r .concurrency.superseded_by <<<"$g")" "$new" "GET says which pipeline superseded it"

# ---- step-level groups: one deploy at a time across pipelines
step_submit() { # step_submit NAME CANCEL_IN_PROGRESS 'deploy command': prints the answer
    jq -nc --arg n "$1" --argjson c "$2" --arg cmd "$3" \
        '{name: $n, steps: {
            build: {spec: {kind: "exec", command: ["true"], retry_policy: {max_attempts: 1}}},
            deploy: {needs: ["build"], concurrency: {group: "env-prod", cancel_in_progress: $c},
                     spec: {kind: "exec", command: ["sh", "-c", $cmd], retry_policy: {max_attempts: 1}}},
            verify: {needs: ["deploy"], spec: {kind: "exec", command: ["true"], retry_policy: {max_attempts: 1}}}}}' \
        | curl -s -X POST -H "Authorization: Bearer $DEVSYS_TOKEN" --data-binary @- "$DEVSYS_URL/v1/pipelines"
}
step_state() { it_psql "SELECT state FROM pipeline_steps WHERE pipeline_id = '$1' AND step = '$2'"; }
declare -a sids
for i in 1 2 3; do
    sids+=("$(step_submit "deploy-$i" false 'sleep 0.7' | jq -r .id)")
done
ok "a deploy waits in its group's line while another runs" \
    it_wait_sql 20 "SELECT count(*) > 0 FROM pipeline_steps WHERE cgroup = 'env-prod' AND state = 'waiting_group'" t
g=$(curl -s -H "Authorization: Bearer $DEVSYS_TOKEN" "$DEVSYS_URL/v1/pipelines/${sids[2]}")
is "$(jq -r '.steps[1].concurrency | "\(.group) \(.cancel_in_progress)"' <<<"$g")" "env-prod false" \
    "GET shows the step's group"
for i in 0 1 2; do
    ok "deploy-$((i + 1)) succeeds" it_wait_sql 40 "SELECT state FROM pipelines WHERE id = '${sids[$i]}'" succeeded
done
deploys="SELECT s.group_seq, t.started_at s, t.finished_at f FROM pipeline_steps s
         JOIN pipeline_nodes n ON n.pipeline_id = s.pipeline_id AND n.step = s.step JOIN tasks t ON t.id = n.task_id
         WHERE s.cgroup = 'env-prod' AND s.pipeline_id IN ('${sids[0]}', '${sids[1]}', '${sids[2]}')"
is "$(it_psql "SELECT count(*) FROM ($deploys) a, ($deploys) b WHERE a.group_seq < b.group_seq AND a.s < b.f AND b.s < a.f")" \
    0 "no two deploy steps overlapped (task started_at/finished_at)"
is "$(it_psql "SELECT bool_and(ordered) FROM (SELECT s <= lead(s) OVER (ORDER BY group_seq) OR lead(s) OVER (ORDER BY group_seq) IS NULL
               AS ordered FROM ($deploys) d) x")" t "they ran in their line's order (oldest first)"

# ---- step-level cancel_in_progress: the newest deploy wins
slong="sleep 28.$$"
sold=$(step_submit "deploy-old" false "$slong" | jq -r .id)
ok "the old deploy runs" it_wait_sql 20 "SELECT t.state FROM pipeline_nodes n JOIN tasks t ON t.id = n.task_id
    WHERE n.pipeline_id = '$sold' AND n.step = 'deploy'" running
smid=$(step_submit "deploy-mid" false "$slong" | jq -r .id)
ok "a second deploy (no cancel_in_progress) waits" it_wait_sql 20 "$(printf "SELECT state FROM pipeline_steps
    WHERE pipeline_id = '%s' AND step = 'deploy'" "$smid")" waiting_group
snew=$(step_submit "deploy-new" true 'true' | jq -r .id)
ok "the newest deploy's pipeline succeeds" it_wait_sql 30 "SELECT state FROM pipelines WHERE id = '$snew'" succeeded
is "$(step_state "$sold" deploy) $(step_state "$sold" verify) $(state "$sold")" "cancelled skipped cancelled" \
    "the running deploy was cancelled, its verify skipped, its pipeline cancelled"
is "$(step_state "$smid" deploy) $(it_psql "SELECT count(*) FROM pipeline_nodes n JOIN tasks t ON t.id = n.task_id
    WHERE n.pipeline_id = '$smid' AND n.step = 'deploy'")" "cancelled 0" "the waiting deploy was cancelled without a task"
is "$(it_psql "SELECT string_agg(superseded_by::text, ' ' ORDER BY group_seq) FROM pipeline_steps
               WHERE pipeline_id IN ('$sold', '$smid') AND step = 'deploy'")" "$snew $snew" "both superseded by the newest"
is "$(it_psql "SELECT count(*) FROM pipeline_nodes o JOIN tasks ot ON ot.id = o.task_id, pipeline_nodes n
               JOIN tasks nt ON nt.id = n.task_id WHERE o.pipeline_id = '$sold' AND o.step = 'deploy'
               AND n.pipeline_id = '$snew' AND n.step = 'deploy' AND nt.started_at < ot.finished_at")" 0 \
    "the newest deploy started after the old one stopped"
ok "the old deploy's process was stopped" it_wait_for 10 "! pgrep -fx '$slong' >/dev/null"

# ---- a bad step concurrency is refused, naming the field
bad() { # bad CONCURRENCY-JSON: prints "status error"
    local r
    r=$(jq -nc --argjson c "$1" '{name: "bad", steps: {a: {concurrency: $c, spec: {kind: "noop"}}}}' \
        | curl -s -w '\n%{http_code}' -X POST -H "Authorization: Bearer $DEVSYS_TOKEN" --data-binary @- \
            "$DEVSYS_URL/v1/pipelines")
    echo "${r##*$'\n'} $(jq -r .error <<<"${r%$'\n'*}")"
}
like "$(bad '{"cancel_in_progress": true}')" '^400 steps\.a\.concurrency\.group: required' "a step group is required"
like "$(bad '{"group": "x", "cancel_in_progress": 1}')" '^400 steps\.a\.concurrency\.cancel_in_progress: must be true or false' \
    "cancel_in_progress must be a boolean"
like "$(bad '{"group": "x", "queue": 1}')" '^400 steps\.a\.concurrency\.queue: unknown field' "an unknown field is named"
like "$(bad '"x"')" '^400 steps\.a\.concurrency: must be an object' "it must be an object"
it_done
