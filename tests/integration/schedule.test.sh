#!/usr/bin/env bash
# Schedules: POST /v1/schedules validates the cron or interval, the zone and
# the spec (400 naming the field); a schedule's ticks submit its spec, each
# tick once; pause stops the ticks and resume restarts them from now (no
# catch-up of the paused time); devsysctl schedule add/list/show/pause/
# resume/rm; missed ticks follow the catch-up policy (once, all, skip).
source "$(dirname "$0")/itest.sh"
it_setup
it_start_manager || it_bail "start manager"
B=$IT_DIR/body
# api METHOD PATH [JSON]: prints the status; the body lands in $B
api() {
    curl -s -o "$B" -w '%{http_code}' -X "$1" -H "Authorization: Bearer $DEVSYS_TOKEN" \
        ${3:+-d "$3"} "$DEVSYS_URL$2"
}
# tasks NAME: task rows the schedule of that name made
tasks() {
    it_psql "SELECT count(*) FROM tasks t JOIN schedules s ON t.idempotency_key LIKE 'schedule:' || s.id || ':%'
             WHERE s.name = '$1'"
}

# ---- bad input: 400 naming the field
noop='{"kind":"noop","queue":"sched"}'
bad() { # bad FIELD MESSAGE_REGEX JSON DESC
    is "$(api POST /v1/schedules "$3")" 400 "$4: 400"
    is "$(jq -r .field "$B")" "$1" "$4: the field is $1"
    like "$(jq -r .error "$B")" "$2" "$4: the message says why"
}
bad cron '^cron: minute: 61 is out of range 0-59$' '{"name":"b1","cron":"61 * * * *","spec":'"$noop"'}' "minute 61"
bad cron '^cron: day-of-week: unknown name "FUN"' '{"name":"b2","cron":"0 0 * * FUN","spec":'"$noop"'}' "day FUN"
bad cron '^cron: expected 5 fields' '{"name":"b3","cron":"* * *","spec":'"$noop"'}' "three fields"
bad cron '^cron: day-of-month: no selected month' '{"name":"b4","cron":"0 0 30 2 *","spec":'"$noop"'}' "Feb 30"
bad tz '^tz: unknown time zone "Mars/Olympus"' '{"name":"b5","cron":"@daily","tz":"Mars/Olympus","spec":'"$noop"'}' "unknown zone"
bad tz '^tz: .* is not a time zone name' '{"name":"b6","cron":"@daily","tz":"../../etc/passwd","spec":'"$noop"'}' "zone as a path"
bad every '^every: .*a number needs a unit' '{"name":"b7","every":"5","spec":'"$noop"'}' "interval without unit"
bad spec.kind '^spec.kind: ' '{"name":"b8","cron":"@daily","spec":{"kind":"nope"}}' "unknown kind"
bad spec.command '^spec.command: ' '{"name":"b9","cron":"@daily","spec":{"kind":"exec"}}' "exec without command"
bad spec '^spec: required' '{"name":"b10","cron":"@daily"}' "no spec"
bad spec.idempotency_key '^spec.idempotency_key: not allowed' \
    '{"name":"b11","cron":"@daily","spec":{"kind":"noop","idempotency_key":"k"}}' "a spec with its own key"
bad catch_up '^catch_up: must be' '{"name":"b12","cron":"@daily","catch_up":"sometimes","spec":'"$noop"'}' "catch_up"
bad name '^name: required' '{"cron":"@daily","spec":'"$noop"'}' "no name"
bad cron '^cron: give either cron' '{"name":"b13","cron":"@daily","every":"1s","spec":'"$noop"'}' "cron and every"
bad bogus '^bogus: unknown field' '{"name":"b14","cron":"@daily","bogus":1,"spec":'"$noop"'}' "unknown field"
is "$(it_psql "SELECT count(*) FROM schedules")" 0 "no bad schedule was stored"

# ---- a schedule every second: each tick once, with its task
is "$(api POST /v1/schedules '{"name":"every-second","every":"1s","spec":'"$noop"'}')" 201 "create: 201"
sid=$(jq -r .id "$B")
is "$(jq -r '.next_runs | length' "$B")" 5 "the answer shows the next 5 runs"
is "$(jq -r '.cron + " " + .tz + " " + .catch_up' "$B")" "@every 1s UTC once" "defaults: UTC, catch_up once"
is "$(api POST /v1/schedules '{"name":"every-second","every":"5s","spec":'"$noop"'}')" 409 "the same name again: 409"
ok "ticks make tasks" it_wait_for 10 '(( $(tasks every-second) >= 3 ))'
is "$(it_psql "SELECT count(*) FROM (SELECT idempotency_key FROM tasks WHERE idempotency_key LIKE 'schedule:%'
               GROUP BY 1 HAVING count(*) > 1) d")" 0 "no tick has two tasks"
is "$(api GET /v1/schedules/every-second)" 200 "GET by name"
is "$(jq -r .id "$B")" "$sid" "names the schedule"
tick_task=$(jq -r '.recent_ticks[0].task_id' "$B")
is "$(it_psql "SELECT idempotency_key FROM tasks WHERE id = '$tick_task'")" \
    "schedule:$sid:$(jq -r '.recent_ticks[0].tick_at' "$B" | xargs -I{} date -d {} +%s)" \
    "a recent tick names its task, whose key is schedule:<id>:<tick>"
is "$(api GET "/v1/schedules/$sid")" 200 "GET by id"
is "$(it_redis XLEN 'devsys:{sched}:stream')" "$(tasks every-second)" "every task was published once"

# ---- pause / resume
is "$(api POST /v1/schedules/every-second/pause)" 200 "pause: 200"
is "$(jq -r '.paused, .changed' "$B" | tr '\n' ' ')" "true true " "paused, changed"
sleep 1.2
n=$(tasks every-second)
sleep 3
is "$(tasks every-second)" "$n" "paused: no tick for 3 s"
is "$(api POST /v1/schedules/every-second/pause)" 200 "pause again: 200"
is "$(jq -r .changed "$B")" false "pausing a paused schedule changes nothing"
resumed_at=$(date +%s)
is "$(api POST /v1/schedules/every-second/resume)" 200 "resume: 200"
ok "ticks again after resume" it_wait_for 5 '(( $(tasks every-second) > n ))'
is "$(it_psql "SELECT count(*) FROM tasks WHERE idempotency_key LIKE 'schedule:$sid:%'
               AND split_part(idempotency_key, ':', 3)::bigint < $resumed_at - 1
               AND created_at > to_timestamp($resumed_at)")" 0 "the paused ticks were not caught up"

# ---- devsysctl
printf '%s\n' "$noop" >"$IT_DIR/spec.json"
out=$(ctl schedule add nightly '30 2 * * *' "$IT_DIR/spec.json" --tz Europe/Berlin 2>&1)
like "$out" 'created schedule nightly' "devsysctl schedule add"
like "$out" 'tz: +Europe/Berlin' "with its zone"
out=$(ctl schedule add broken '30 25 * * *' "$IT_DIR/spec.json" 2>&1)
like "$out" 'cron: hour: 25 is out of range 0-23' "devsysctl prints the field that is wrong"
out=$(ctl schedule list)
like "$out" 'nightly +30 2 \* \* \* +Europe/Berlin +false +once' "schedule list shows it"
like "$out" 'every-second +@every 1s +UTC' "and the other"
like "$(ctl schedule show nightly)" 'next_runs' "schedule show: next runs"
like "$(ctl schedule pause nightly)" 'paused schedule nightly' "schedule pause"
like "$(ctl schedule resume nightly)" 'resumed schedule nightly' "schedule resume"
like "$(ctl schedule rm nightly)" 'deleted schedule nightly' "schedule rm"
is "$(api GET /v1/schedules/nightly)" 404 "gone: 404"
is "$(api DELETE "/v1/schedules/$sid")" 200 "DELETE by id"
n=$(it_psql "SELECT count(*) FROM tasks WHERE idempotency_key LIKE 'schedule:$sid:%'")
sleep 2
is "$(it_psql "SELECT count(*) FROM tasks WHERE idempotency_key LIKE 'schedule:$sid:%'")" "$n" \
    "a deleted schedule ticks no more (its tasks stay)"

# ---- catch-up: the manager stopped while ticks were due
is "$(api POST /v1/schedules '{"name":"gap","every":"1s","spec":'"$noop"'}')" 201 "create gap (every 1s, catch_up once)"
gid=$(jq -r .id "$B")
ok "gap ticks" it_wait_for 10 '(( $(tasks gap) >= 2 ))'
it_stop_manager
sleep 4 # four or five ticks pass with no manager
for p in once all skip; do
    it_psql "INSERT INTO schedules (id, name, cron, spec, catch_up, created_by, next_due_at)
             VALUES (gen_random_uuid(), 'c-$p', '@every 1s', '$noop', '$p', 'test',
                     date_trunc('second', now()) - interval '300 seconds')" >/dev/null
    # a yearly schedule whose tick is months late
    it_psql "INSERT INTO schedules (id, name, cron, spec, catch_up, created_by, next_due_at)
             VALUES (gen_random_uuid(), 'y-$p', '0 0 1 1 *', '$noop', '$p', 'test',
                     date_trunc('year', now()))" >/dev/null
done
it_start_manager || it_bail "restart manager"
ok "the late schedules fired" it_wait_sql 10 "SELECT count(*) FROM schedules WHERE next_due_at < now() - interval '5 s'" 0
sleep 1
# first_fire NAME: "<tasks the first fire after the restart made> <ticks it recorded missed>"
# (the rows of one statement share their created_at)
first_fire() {
    it_psql "WITH s AS (SELECT id, 'schedule:' || id || ':%' AS k FROM schedules WHERE name = '$1')
             SELECT (SELECT count(*) FROM tasks t WHERE t.idempotency_key LIKE s.k
                      AND t.created_at = (SELECT min(created_at) FROM tasks WHERE idempotency_key LIKE s.k))
                    || ' ' || (SELECT max(missed) FROM schedule_ticks WHERE schedule_id = s.id) FROM s"
}
like "$(first_fire c-once)" '^1 (29[0-9]|3[01][0-9])$' "once: 300 s of missed ticks -> one task, ~300 recorded missed"
like "$(first_fire c-all)" '^100 (19[0-9]|2[01][0-9])$' "all: the newest 100 ticks -> 100 tasks, the ~200 before missed"
like "$(first_fire c-skip)" '^1 (29[0-9]|3[01][0-9])$' "skip: the current tick runs (it is on time), the ~300 missed do not"
ok "gap: ticks again after the restart" it_wait_for 5 '(( $(it_psql "SELECT max(missed) FROM schedule_ticks
                                                                   WHERE schedule_id = '"'$gid'"'") >= 3 ))'
is "$(it_psql "SELECT count(*) FROM (SELECT missed, tick_at - lag(tick_at) OVER (ORDER BY tick_at) AS step
               FROM schedule_ticks WHERE schedule_id = '$gid') k
               WHERE step IS NOT NULL AND extract(epoch FROM step)::int - 1 <> missed")" 0 \
    "gap: every step between ticks is one second, or the ticks it skips are recorded missed (catch_up once)"
is "$(it_psql "SELECT count(*) FROM schedule_ticks WHERE schedule_id = '$gid' AND missed > 0")" 1 \
    "gap: one catch-up task for the whole outage"
is "$(it_psql "SELECT count(*) FROM schedule_ticks k JOIN schedules s ON s.id = k.schedule_id
               WHERE s.name = 'y-once' AND k.created")" 1 "once: a yearly tick months late runs once"
is "$(it_psql "SELECT count(*) FROM schedule_ticks k JOIN schedules s ON s.id = k.schedule_id
               WHERE s.name = 'y-skip'")" 0 "skip: a yearly tick months late does not run"
is "$(it_psql "SELECT next_due_at = date_trunc('year', now()) + interval '1 year' FROM schedules
               WHERE name = 'y-skip'")" t "skip: the next tick is next year's"
is "$(it_psql "SELECT count(*) FROM (SELECT idempotency_key FROM tasks WHERE idempotency_key LIKE 'schedule:%'
               GROUP BY 1 HAVING count(*) > 1) d")" 0 "no tick has two tasks"
it_done
