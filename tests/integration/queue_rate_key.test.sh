#!/usr/bin/env bash
# Per-key rate limit (queue setting rate.per_key, spec field rate_key): queue
# limited to 5 starts per second per key, two agents. Key a has 15 s of
# backlog, queued before key b's 2 s. From task_attempts.started_at: each key
# starts at most 5 per second (counted per 2 s window, with the claims that
# may be in flight at once, 2 agents x 8 slots, as tolerance), about 5/s
# overall, and key b's tasks all start within a few seconds: a's backlog does
# not hold them back (agents/agent_limits.c: a per-key gate reads past the
# agent's concurrency and asks for other keys' tasks behind a's).
source "$(dirname "$0")/itest.sh"
it_setup
it_start_manager || it_bail "start manager"
api() { curl -sf -X "$1" -H "Authorization: Bearer $DEVSYS_TOKEN" "$DEVSYS_URL$2" ${3:+-d "$3"}; }
api PATCH /v1/queues/pk/settings '{"rate":{"n":5,"period_s":1,"per_key":true}}' >/dev/null || it_bail "set rate"
is "$(api GET /v1/queues/pk | jq -c '.rate')" '{"n":5,"per_key":true,"period_s":1}' "the per-key rate is set"
for a in k1 k2; do it_start_agent $a DEVSYS_QUEUES=pk DEVSYS_CONCURRENCY=8; done
sleep 1
api POST /v1/tasks "$(jq -nc '[range(0;75) | {kind:"noop", queue:"pk", rate_key:"a"}]')" >/dev/null
api POST /v1/tasks "$(jq -nc '[range(0;10) | {kind:"noop", queue:"pk", rate_key:"b"}]')" >/dev/null
b_at=$(it_psql "SELECT max(created_at) FROM tasks WHERE spec->>'rate_key' = 'b'")
ok "key b's 10 tasks finish within 8 s of their submit (2 s at 5/s)" \
    it_wait_sql 8 "SELECT count(*) FROM tasks WHERE spec->>'rate_key' = 'b' AND state = 'succeeded'" 10
a_left=$(it_psql "SELECT count(*) FROM tasks WHERE spec->>'rate_key' = 'a' AND state <> 'succeeded'")
ok "meanwhile key a still has a backlog ($a_left of 75 not done)" test "$a_left" -gt 0
ok "key a's 75 finish" it_wait_sql 40 "SELECT count(*) FROM tasks WHERE spec->>'rate_key' = 'a' AND state = 'succeeded'" 75

# starts of key K in the 2 s window opened by each start of K: the worst
worst() {
    it_psql "WITH s AS (SELECT a.started_at AS t FROM task_attempts a JOIN tasks t ON t.id = a.task_id
                        WHERE t.spec->>'rate_key' = '$1')
             SELECT max((SELECT count(*) FROM s s2 WHERE s2.t >= s1.t AND s2.t < s1.t + interval '2 s')) FROM s s1"
}
wa=$(worst a) wb=$(worst b)
ok "key a: no 2 s window holds more than 10 + 16 starts (worst $wa)" test "$wa" -le 26
ok "key b: no 2 s window holds more than 10 + 16 starts (worst $wb)" test "$wb" -le 26
span=$(it_psql "SELECT extract(epoch FROM max(a.started_at) - min(a.started_at)) FROM task_attempts a
                JOIN tasks t ON t.id = a.task_id WHERE t.spec->>'rate_key' = 'a'")
ok "key a's 75 starts span at least 12 s (75 at 5/s is 15 s, less the first full window): ${span}s" \
    awk -v s="$span" 'BEGIN { exit !(s >= 12) }'
b_last=$(it_psql "SELECT extract(epoch FROM max(a.started_at) - '$b_at'::timestamptz) FROM task_attempts a
                  JOIN tasks t ON t.id = a.task_id WHERE t.spec->>'rate_key' = 'b'")
ok "key b's last start came ${b_last}s after its submit (under 6 s), not after a's backlog" \
    awk -v s="$b_last" 'BEGIN { exit !(s < 6) }'
it_done
