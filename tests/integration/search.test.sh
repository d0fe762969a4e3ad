#!/usr/bin/env bash
# Task search (GET /v1/tasks?name=&tag=&since=&until=, manager/http_search.c):
# by name (exact, or a prefix with a trailing *), tag, queue, state and creation time, newest first, in keyset
# pages over `tasks` and history: tasks submitted now and tasks retention moved
# to history are both found. Bad parameters are a 400 naming the parameter.
# devsysctl list takes the same filters. The searches read the partial
# indexes of migrations/010_search.sql.
source "$(dirname "$0")/itest.sh"
it_setup
export DEVSYS_RETENTION_S=0.5 DEVSYS_RETENTION_SUCCEEDED_S=2 DEVSYS_RECONCILE_S=0
B=$IT_DIR/body
call() { curl -s -o "$B" -w '%{http_code}' -H "Authorization: Bearer $DEVSYS_TOKEN" "$DEVSYS_URL$1"; }
# ids PATH: the ids of the answer, sorted, space-separated
ids() { call "$1" >/dev/null; jq -r '[.tasks[].id] | sort | join(" ")' "$B"; }
set_of() { printf '%s\n' "$@" | sort | paste -sd' '; }

# 20,000 failed tasks without name or tags: a whole-table scan would be the
# costly plan, and these have no entry in the search indexes
it_psql "INSERT INTO tasks (id, queue, kind, spec, state, attempt, created_at, finished_at)
         SELECT gen_random_uuid(), 'noop', 'noop', '{\"kind\":\"noop\"}', 'failed', 1,
                now() - interval '5 hours', now() - interval '5 hours' FROM generate_series(1, 20000)" >/dev/null
# old: succeeded tasks created 1 to 3 days ago; retention moves them to history
old() { # old N NAME TAGS_JSON AGE
    local id
    id=$(printf '00000000-0000-7000-8000-%012d' "$1")
    it_psql "INSERT INTO tasks (id, queue, kind, spec, state, attempt, created_at, finished_at)
             VALUES ('$id', 'noop', 'noop', jsonb_build_object('kind', 'noop', 'name', '$2', 'tags', '$3'::jsonb),
                     'succeeded', 1, now() - interval '$4', now() - interval '$4' + interval '1 minute')" >/dev/null \
        || it_bail "insert $1"
    printf '%s\n' "$id"
}
o1=$(old 1 build-api '["team-a"]' '3 days')
o2=$(old 2 build-api '["team-b"]' '2 days')
o3=$(old 3 build-x '[]' '47 hours')
o4=$(old 4 deploy-api '["team-a"]' '1 day')
it_psql "ANALYZE tasks" >/dev/null

it_start_manager || it_bail "start manager"
ok "retention moves the four old tasks to history" \
    it_wait_sql 20 "SELECT count(*) FROM tasks_history WHERE id::text LIKE '00000000-%'" 4
is "$(it_psql "SELECT count(*) FROM tasks WHERE id::text LIKE '00000000-%'")" 0 "  and they left tasks"

# new: queued tasks submitted now (no agent runs them)
mapfile -t new < <(ctl submit - <<<'[
  {"kind":"noop","name":"build-api","tags":["team-a","nightly"]},
  {"kind":"noop","name":"build-web","tags":["team-b"]},
  {"kind":"noop","name":"deploy-api","tags":["team-a"]},
  {"kind":"noop","queue":"other","name":"build-api","tags":["team-a"]},
  {"kind":"noop","name":"Build-api"}]')
is "${#new[@]}" 5 "five tasks submitted"
h1=${new[0]} h2=${new[1]} h3=${new[2]} h4=${new[3]} h5=${new[4]}

# ---- filters
is "$(ids '/v1/tasks?name=build*')" "$(set_of "$h1" "$h2" "$h4" "$o1" "$o2" "$o3")" \
    "name=build*: the tasks whose name starts with build, new and in history (case-sensitive)"
is "$(jq -r '[.tasks[].created_at] | . == (sort | reverse)' "$B")" true "  newest first"
is "$(jq -r '.tasks[] | select(.id == "'"$o1"'") | "\(.name) \(.tags | join(",")) \(.state)"' "$B")" \
    "build-api team-a succeeded" "  each with its name and tags"
is "$(ids '/v1/tasks?name=build-api')" "$(set_of "$h1" "$h4" "$o1" "$o2")" "name=build-api: that name exactly"
is "$(ids '/v1/tasks?name=build')" "" "name=build: no task has that name"
is "$(ids '/v1/tasks?name=build-api&queue=other')" "$h4" "name and queue"
is "$(ids '/v1/tasks?tag=team-a')" "$(set_of "$h1" "$h3" "$h4" "$o1" "$o4")" "tag=team-a, new and in history"
is "$(ids '/v1/tasks?name=build*&tag=team-b')" "$(set_of "$h2" "$o2")" "name and tag"
is "$(ids '/v1/tasks?tag=nightly&state=queued')" "$h1" "tag and a live state"
is "$(ids '/v1/tasks?name=build*&state=succeeded')" "$(set_of "$o1" "$o2" "$o3")" "name and a final state: history"
now=$(date +%s)
is "$(ids "/v1/tasks?name=b*&since=$((now - 216000))&until=$((now - 43200))")" "$(set_of "$o2" "$o3")" \
    "since/until as epoch seconds: created 2.5 days to 12 hours ago"
since=$(date -u -d "@$((now - 216000))" +%Y-%m-%dT%H:%M:%SZ)
is "$(ids "/v1/tasks?since=$since&until=$(date -u -d "@$((now - 43200))" +%Y-%m-%dT%H:%M:%S)%2B00:00")" \
    "$(set_of "$o2" "$o3" "$o4")" "since/until as RFC 3339"
is "$(ids "/v1/tasks?tag=team-a&since=$((now - 60))")" "$(set_of "$h1" "$h3" "$h4")" "tag and since: only the new ones"

# ---- keyset pages across both tables
seen=() after='' pages=0
while :; do
    call "/v1/tasks?name=build*&limit=2${after:+&after=$after}" >/dev/null
    mapfile -t -O "${#seen[@]}" seen < <(jq -r '.tasks[].id' "$B")
    pages=$((pages + 1))
    after=$(jq -r '.next // empty' "$B")
    [[ -n $after && $pages -lt 10 ]] || break
done
is "$(set_of "${seen[@]}")" "$(set_of "$h1" "$h2" "$h4" "$o1" "$o2" "$o3")" \
    "pages of 2 visit the six build tasks once each ($pages pages)"
is "$(printf '%s\n' "${seen[@]}" | sort | uniq -d | wc -l)" 0 "  none twice"

# ---- the searches read the partial indexes (no scan of the 20,000 others)
idx() { it_psql "SELECT coalesce(sum(idx_scan), 0) FROM pg_stat_user_indexes WHERE indexrelid IN
                 (SELECT '$1'::regclass UNION ALL SELECT inhrelid FROM pg_inherits WHERE inhparent = '$1'::regclass)"; }
ok "name searches read tasks_name and the history partitions' name index" \
    it_wait_for 15 "(( \$(idx tasks_name) > 0 && \$(idx tasks_history_name) > 0 ))"
ok "tag searches read tasks_tags and tasks_history_tags" \
    it_wait_for 15 "(( \$(idx tasks_tags) > 0 && \$(idx tasks_history_tags) > 0 ))"
# without the retention job, whose statements would be counted too
it_stop_manager
DEVSYS_RETENTION_S=0 it_start_manager || it_bail "restart manager"
seq0=$(it_psql "SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'tasks'")
for i in 1 2 3 4 5 6 7; do # past 5 runs a prepared statement may switch to its generic plan
    call '/v1/tasks?name=build-web' >/dev/null
    call '/v1/tasks?tag=team-b' >/dev/null
done
sleep 1.5
call '/v1/tasks?name=zzz' >/dev/null
is "$(jq -c .tasks "$B")" '[]' "an unknown name: nothing"
ok "14 more searches make no sequential scan of tasks" \
    it_wait_sql 15 "SELECT seq_scan - $seq0 FROM pg_stat_user_tables WHERE relname = 'tasks'" 0

# ---- bad parameters: 400 naming the parameter
long=$(printf 'x%.0s' $(seq 1 300))
for q in 'name=' 'name=*' "name=$long" 'name=%FF%FE' 'tag=' "tag=$long" 'since=yesterday' 'since=2026-13-01' \
         'since=2026-02-30' 'since=2026-12-02T25:00:00Z' 'until=abc' 'until=1e9' "since=$now&until=$((now - 1))" \
         'state=done' 'queue=a%20b' 'limit=0' 'after=x' 'nmae=build'; do
    is "$(call "/v1/tasks?$q")" 400 "?$q: 400"
    want=${q%%=*}
    [[ $q == since=*until=* ]] && want=until
    like "$(jq -r .error "$B")" "^$want: " "  the error names $want"
done

# ---- a search is bounded by DEVSYS_SEARCH_TIMEOUT_MS (here: blocked by a lock)
it_stop_manager
DEVSYS_RETENTION_S=0 DEVSYS_SEARCH_TIMEOUT_MS=1500 it_start_manager || it_bail "restart manager"
psql "$DEVSYS_DATABASE_URL" -XAtq -c "BEGIN; LOCK TABLE tasks_history IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(4); COMMIT" \
    >/dev/null 2>&1 &
locker=$!
it_wait_sql 5 "SELECT count(*) FROM pg_locks WHERE relation = 'tasks_history'::regclass AND mode = 'AccessExclusiveLock'" 1 \
    >/dev/null 2>&1 || true
curl -s -o "$IT_DIR/slow" -w '%{http_code}' -H "Authorization: Bearer $DEVSYS_TOKEN" "$DEVSYS_URL/v1/tasks?name=build*" \
    >"$IT_DIR/slow.code" &
slow=$!
sleep 0.3
is "$(curl -s -m 1 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $DEVSYS_TOKEN" \
    "$DEVSYS_URL/v1/tasks?state=queued&limit=1")" 200 \
    "while a search waits, a list answers within 1 s (searches have a connection of their own)"
wait "$slow"
is "$(cat "$IT_DIR/slow.code")" 422 "the search past DEVSYS_SEARCH_TIMEOUT_MS (1500 ms): 422"
like "$(jq -r .error "$IT_DIR/slow")" '^search took longer than 1500 ms .*narrow it with since/until' \
    "  saying how to narrow it"
wait "$locker"
is "$(ids '/v1/tasks?name=build-web')" "$h2" "once the lock is gone the search answers"

# ---- devsysctl
out=$(ctl list --name 'build*' --tag team-a --since 4d)
for id in "$h1" "$h4" "$o1"; do like "$out" "$id" "devsysctl list --name 'build*' --tag team-a --since 4d shows $id"; done
like "$out" 'NAME' "  with a NAME column"
is "$(grep -c -e "$h3" -e "$o4" -e "$h2" <<<"$out")" 0 "  and not the others"
is "$(ctl --json list --name 'build*' --since 30m | jq -r '[.tasks[].id] | sort | join(" ")')" \
    "$(set_of "$h1" "$h2" "$h4")" "devsysctl list --since 30m: an age"
is "$(ctl list --since 2026-99-01 >/dev/null 2>"$IT_DIR/err"; echo $?)" 4 "devsysctl list with a bad time: refused"
like "$(cat "$IT_DIR/err")" 'since: ' "  the manager's error names since"
it_done
