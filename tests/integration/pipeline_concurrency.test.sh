#!/usr/bin/env bash
# Concurrency groups (README "Pipelines"): three pipelines of one group
# submitted at once run one after another in submit order (no overlap of
# their tasks' started/finished times, with an agent free to run them all);
# the later ones answer "queued" and get their tasks from the transaction that
# ends the one before (published at once: the reconciler would wait 300 s).
# With cancel_in_progress the newest wins: the running one is cancelled (its
# task signalled), the queued one between is cancelled without a task, and
# the newest runs after the running one stopped.
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
is "$(it_psql "SELECT count(*) FROM tasks WHERE pipeline_id IN ('${ids[1]}', '${ids[2]}')")" 0 \
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
it_done
