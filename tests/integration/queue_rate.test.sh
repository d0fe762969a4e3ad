#!/usr/bin/env bash
# Rate limit across agents: 10 starts per second on one queue, two agents, 30 s
# of work queued up front. From task_attempts.started_at: about 300 starts in
# the first 30 s (within 10 %), and no 3 s window holds more than 30 + 16: the
# limit admits a start, and started_at is PostgreSQL's later claim time, so the
# claims in flight (at most the two agents' 2 x 8 slots) may land together.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
it_start_manager || it_bail "start manager"
api() { curl -sf -X "$1" -H "Authorization: Bearer $DEVSYS_TOKEN" "$DEVSYS_URL$2" ${3:+-d "$3"}; }
api PATCH /v1/queues/rq/settings '{"rate":{"n":10,"period_s":1}}' >/dev/null || it_bail "set rate"
for a in r1 r2; do it_start_agent $a DEVSYS_QUEUES=rq DEVSYS_CONCURRENCY=8; done
sleep 1
api POST /v1/tasks "$(jq -nc '[range(0;400) | {kind:"noop", queue:"rq"}]')" >/dev/null
sleep 31
first=$(it_psql "SELECT min(started_at) FROM task_attempts")
n=$(it_psql "SELECT count(*) FROM task_attempts WHERE started_at < '$first'::timestamptz + interval '30 s'")
ok "starts in the first 30 s: $n (300 +- 10 %)" test "$n" -ge 270 -a "$n" -le 330
worst=$(it_psql "SELECT max(c) FROM (SELECT (SELECT count(*) FROM task_attempts b WHERE b.started_at >= a.started_at
                 AND b.started_at < a.started_at + interval '3 s') AS c FROM task_attempts a) x")
ok "no 3 s window holds more than 46 starts (worst $worst)" test "$worst" -le 46
is "$(it_psql "SELECT count(DISTINCT agent) FROM task_attempts")" 2 "both agents started tasks"
it_done
