#!/usr/bin/env bash
# A fan-out of 20 shards across two agents and its fan-in: the fan-in step's
# task is created exactly once, after all 20 — with instant tasks finishing
# at once in concurrent transactions, and when an agent is kill -9'd during
# the shards and Redis is flushed once (no node's task created twice, none
# missing; the reconciler republishes what Redis lost).
source "$(dirname "$0")/itest.sh"
it_setup
export DEVSYS_RECONCILE_S=1 DEVSYS_REPUBLISH_AFTER_S=2
it_start_manager || it_bail "start manager"
# shellcheck disable=SC2054 # the commas are in a value
agent_env=(DEVSYS_QUEUES=exec,noop DEVSYS_CONCURRENCY=4 DEVSYS_LEASE_S=3 DEVSYS_CLAIM_PERIOD_S=1)
it_start_agent a1 "${agent_env[@]}"
it_start_agent a2 "${agent_env[@]}"

submit() { # submit DOC: prints the pipeline id
    curl -sf -X POST -H "Authorization: Bearer $DEVSYS_TOKEN" --data-binary "$1" "$DEVSYS_URL/v1/pipelines" | jq -r .id
}
# "<nodes> <task rows> <nodes whose task count is not 1>" of pipeline $1
counts() {
    it_psql "SELECT count(*) || ' ' || sum(c) || ' ' || count(*) FILTER (WHERE c <> 1)
             FROM (SELECT (SELECT count(*) FROM tasks t WHERE t.pipeline_id = n.pipeline_id
                           AND t.spec->'pipeline'->>'step' = n.step
                           AND (t.spec->'pipeline'->>'index')::int = n.idx) AS c
                   FROM pipeline_nodes n WHERE n.pipeline_id = '$1') x"
}
# the fan-in started after every shard finished: 1, else 0
fanin_after_all() {
    it_psql "SELECT (SELECT min(t.started_at) FROM tasks t WHERE t.pipeline_id = '$1'
                     AND t.spec->'pipeline'->>'step' = 'fanin')
                  >= (SELECT max(t.finished_at) FROM tasks t WHERE t.pipeline_id = '$1'
                     AND t.spec->'pipeline'->>'step' = 'shard')"
}

# ---- 5 pipelines of 20 instant shards each: shards finish in concurrent claims of two agents
ids=()
for i in 1 2 3 4 5; do
    ids+=("$(submit '{"name":"instant","steps":{"prep":{"spec":{"kind":"noop"}},
        "shard":{"needs":["prep"],"shards":20,"spec":{"kind":"noop"}},
        "fanin":{"needs":["shard"],"spec":{"kind":"noop"}}}}')")
done
for id in "${ids[@]}"; do
    ok "instant pipeline ${id:0:8} succeeds" \
        it_wait_sql 60 "SELECT state FROM pipelines WHERE id = '$id'" succeeded
    is "$(counts "$id")" "22 22 0" "  22 nodes, 22 task rows, each node exactly one"
    is "$(fanin_after_all "$id")" t "  its fan-in started after all 20 shards finished"
done
is "$(it_psql "SELECT count(DISTINCT a.agent) FROM task_attempts a JOIN tasks t ON t.id = a.task_id
               WHERE t.pipeline_id IS NOT NULL AND t.spec->'pipeline'->>'step' = 'shard'")" 2 \
    "both agents ran shards"

# ---- 20 shards of real work; kill -9 an agent during them, flush Redis once
pid=$(submit '{"name":"chaos","steps":{
    "prep":{"spec":{"kind":"exec","command":["true"]}},
    "shard":{"needs":["prep"],"shards":20,
             "spec":{"kind":"exec","command":["sh","-c","sleep 1"],"retry_policy":{"max_attempts":10}}},
    "fanin":{"needs":["shard"],"spec":{"kind":"exec","command":["true"]}}}}')
running="SELECT count(*) FROM tasks WHERE pipeline_id = '$pid' AND state = 'running'
         AND spec->'pipeline'->>'step' = 'shard'"
ok "shards run on both agents" it_wait_for 30 '[[ $(it_psql "$running") -ge 6 ]]'
it_stop_agent a1 KILL
is "${AGENT_STATUS[a1]}" 137 "agent a1 was kill -9'd during the shards"
it_redis FLUSHALL >/dev/null
is "$(it_redis DBSIZE)" 0 "Redis flushed while shards were queued and running"
it_start_agent a1 "${agent_env[@]}"
ok "the pipeline still succeeds" it_wait_sql 120 "SELECT state FROM pipelines WHERE id = '$pid'" succeeded
is "$(counts "$pid")" "22 22 0" "22 nodes, 22 task rows: no node's task created twice, none missing"
is "$(fanin_after_all "$pid")" t "the fan-in started after all 20 shards finished"
is "$(it_psql "SELECT count(*) FROM tasks WHERE pipeline_id = '$pid' AND state <> 'succeeded'")" 0 \
    "every task of it succeeded"
lost=$(it_psql "SELECT count(*) FROM task_attempts a JOIN tasks t ON t.id = a.task_id
                WHERE t.pipeline_id = '$pid' AND a.outcome = 'lost'")
ok "the killed agent's shards were taken over (lost attempts: $lost)" test "$lost" -ge 1

# ---- step tasks committed but never published (their creator died first): the reconciler publishes them
lonely=00000000-0000-7000-8000-00000000abcd
it_psql "SELECT devsys_pipeline_submit('$lonely', 'lonely', '{}', 'test',
           '[{\"step\":\"only\",\"pos\":0,\"needs\":[],\"cond\":\"success\"}]',
           '[{\"step\":\"only\",\"idx\":0,\"name\":\"only\",\"queue\":\"noop\",\"kind\":\"noop\",
              \"priority\":0,\"max_attempts\":3,\"spec\":{\"kind\":\"noop\"}}]')" >/dev/null
is "$(it_psql "SELECT count(*) FROM tasks WHERE pipeline_id = '$lonely' AND published_at IS NULL")" 1 \
    "a step task recorded, never published"
ok "the reconciler publishes it and it runs" \
    it_wait_sql 30 "SELECT state FROM pipelines WHERE id = '$lonely'" succeeded
it_done
