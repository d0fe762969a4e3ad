#!/usr/bin/env bash
# Access policy, driven by the route table (`devsys-manager routes`): for every
# route a token one role below the row's least role gets 403 naming the role
# (no token at all below viewer: 401); for every scoped route a token scoped
# to queues a,monitor / app a1 gets 403 naming the scope on a target in queue
# b / app b1 (a task, pipeline, approval, schedule, check or body spec there)
# and gets past the check on a / a1; a list "filtered to the scope" shows it
# nothing of b that an unscoped token sees; an expired and a revoked token
# get 401 on every route. Tokens are made with devsysctl token create; README
# shows the table.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
export DEVSYS_RATE_MUTATING_PER_S=0 # the matrix makes hundreds of changes per token
DEVSYS_SECRET_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
export DEVSYS_SECRET_KEY
it_start_manager || it_bail "start manager"

routes=$("$BIN/manager/devsys-manager" routes)
readme=$(sed -n '/^<!-- routes: begin/,/^<!-- routes: end/p' "$ds_root/README.md" | grep '^|')
is "$readme" "$routes" "README's policy table is what devsys-manager routes prints"

# mint NAME ROLE [OPTIONS...]: creates a token with devsysctl, prints its secret
mint() {
    local name=$1 role=$2
    shift 2
    ctl --json token create --name "$name" --role "$role" "$@" | jq -r .token
}
declare -A TOK
for role in viewer operator admin; do
    TOK[$role]=$(mint "$role" "$role")
    TOK[${role}_a]=$(mint "${role}-a" "$role" --queues a,monitor --apps a1)
done
like "${TOK[viewer]}" '^dvs_[A-Za-z0-9_-]{43}$' "token create prints a 256-bit secret once"
list=$(ctl --json token list)
is "$(jq '.tokens | length' <<<"$list")" 6 "token list shows the six tokens"
ok "token list never shows a secret or its hash" it_not grep -q -e "${TOK[viewer]}" -e token_hash -e '"token"' <<<"$list"
is "$(it_psql "SELECT count(*) FROM api_tokens WHERE token_hash = encode(sha256(convert_to('${TOK[viewer]}', 'UTF8')), 'hex')")" 1 \
    "only the SHA-256 of the secret is stored"
is "$(jq -c '.tokens[] | select(.name == "operator-a") | [.queues, .apps]' <<<"$list")" '[["a","monitor"],["a1"]]' "the scopes are listed"
EXPIRED=$(mint expiring operator --expires 1s)
REVOKED=$(mint revoked operator)
ctl token revoke revoked >/dev/null || it_bail "revoke"
sleep 1.5

# tasks to aim at: one in queue a, one in queue b
task_in() { curl -s -H "Authorization: Bearer $DEVSYS_TOKEN" -d "{\"kind\":\"noop\",\"queue\":\"$1\"}" "$DEVSYS_URL/v1/tasks" | jq -r '.tasks[0].id'; }
TASK_A=$(task_in a) TASK_B=$(task_in b)
[[ $TASK_A =~ ^[0-9a-f-]{36}$ && $TASK_B =~ ^[0-9a-f-]{36}$ ]] || it_bail "tasks in queues a and b ($TASK_A $TASK_B)"
# and on each side: a dead letter, queue settings, a pipeline gated by an
# approval, a schedule, a check whose follow-up goes there, an incident of it,
# and notification events of each (task.dead and approval.requested from their
# triggers; a destination that waits an hour before sending anything)
it_psql "INSERT INTO notify_destinations (name, url, events, group_wait_s) VALUES ('scope-d', 'http://127.0.0.1:9/',
         '{task.dead,approval.requested,pipeline.failed,deploy.failed,incident.opened}', 3600)" >/dev/null
admin() { curl -s -H "Authorization: Bearer $DEVSYS_TOKEN" -X "$1" -d "$3" "$DEVSYS_URL$2"; }
declare -A PIPE APPR SCHED
for s in a b; do
    it_psql "UPDATE tasks SET state = 'dead' WHERE id = '$(task_in "$s")'" >/dev/null
    rep=$(curl -s -H "Authorization: Bearer $DEVSYS_TOKEN" -d "{\"kind\":\"noop\",\"queue\":\"$s\",\"name\":\"rep\"}" \
        "$DEVSYS_URL/v1/tasks" | jq -r '.tasks[0].id') # a test report of a task named rep (b's the newest)
    it_psql "INSERT INTO task_reports (task_id, attempt, summary) VALUES ('$rep', 1, '{}')" >/dev/null
    [[ $s == b ]] && REP_B=$rep
    # test history of scope tscope: test t-<side> last run by that task, two runs of t1
    it_psql "INSERT INTO test_stats (scope, test, last, runs, last_at, last_task) VALUES ('name:tscope', 't-$s', 'P', 1, now(), '$rep');
             INSERT INTO test_runs (scope, test, input, task_id, attempt, outcome) VALUES ('name:tscope', 't1', '', '$rep', 1, 'passed')" \
        >/dev/null
    admin PATCH "/v1/queues/$s/settings" '{"concurrency":5}' >/dev/null
    out=$(admin POST /v1/pipelines "{\"name\":\"pipe-$s\",\"steps\":{\"gate\":{\"approval\":{\"role\":\"operator\"},
        \"spec\":{\"kind\":\"deploy\",\"queue\":\"$s\",\"deploy\":{\"app\":\"${s}1\",\"env\":\"e\",\"source\":\"/nonexistent\"}}}}}")
    PIPE[$s]=$(jq -r .id <<<"$out")
    it_wait_sql 20 "SELECT count(*) FROM approvals WHERE pipeline_id = '${PIPE[$s]}'" 1 || it_bail "approval of pipe-$s ($out)"
    APPR[$s]=$(it_psql "SELECT id FROM approvals WHERE pipeline_id = '${PIPE[$s]}'")
    SCHED[$s]=$(admin POST /v1/schedules "{\"name\":\"sched-$s\",\"every\":\"1h\",\"spec\":{\"kind\":\"noop\",\"queue\":\"$s\"}}" | jq -r .id)
    [[ $(admin POST /v1/monitors "{\"name\":\"chk-$s\",\"interval_s\":86400,\"monitor\":{\"type\":\"tcp\",\"host\":\"127.0.0.1\",
        \"port\":9},\"follow_up\":{\"kind\":\"noop\",\"queue\":\"$s\"}}" | jq -r .name) == "chk-$s" ]] || it_bail "check chk-$s"
    it_psql "INSERT INTO incidents (check_name, failures, resolved_at, resolution) VALUES ('chk-$s', 3, now(), 'recovered');
             SELECT notify_event('incident.opened', 'chk-$s', 'monitor', '{}');
             SELECT notify_event('pipeline.failed', '${PIPE[$s]}', NULL, '{}');
             SELECT notify_event('deploy.failed', '${s}1/e', 'a', '{\"app\": \"${s}1\"}')" >/dev/null
done
[[ ${PIPE[b]} =~ ^[0-9a-f-]{36}$ && ${SCHED[b]} =~ ^[0-9a-f-]{36}$ ]] || it_bail "pipelines and schedules (${PIPE[b]} ${SCHED[b]})"

H=$IT_DIR/headers B=$IT_DIR/body
# call METHOD PATH TOKEN [BODY]: prints the status; body in $B
call() {
    local auth=() body_args=()
    [[ -n $3 ]] && auth=(-H "Authorization: Bearer $3")
    [[ -n ${4:-} ]] && body_args=(-d "$4")
    curl -g -s -D "$H" -o "$B" -w '%{http_code}' -X "$1" "${auth[@]}" "${body_args[@]}" "$DEVSYS_URL$2"
}
# example PATTERN SIDE: the pattern filled with targets in scope (a) or out of it (b)
example() {
    local p=$1 id=$TASK_A
    [[ $2 == b ]] && id=$TASK_B
    case $p in
        /v1/pipelines/*) id=${PIPE[$2]} ;;
        /v1/approvals/*) id=${APPR[$2]} ;;
        /v1/schedules/*) id=${SCHED[$2]} ;;
        /v1/monitors/*) p=${p//\{name\}/chk-$2} ;;
    esac
    p=${p//\{id\}/$id}
    p=${p//\{queue\}/$2}
    p=${p//\{app\}/${2}1}
    p=${p//\{name\}/nobody}
    p=${p//\{entry\}/1-1}
    sed -E 's/\{[a-z_]+\}/x1/g' <<<"$p" # parameters of routes added later: any value
}
# body METHOD SIDE [PATTERN]: the body of a write (the target of body-scoped rows)
body() {
    local spec
    [[ $1 == GET ]] && return
    spec=$(printf '{"kind":"noop","queue":"%s","deploy":{"app":"%s1"}}' "$2" "$2")
    case ${3:-} in
        /v1/pipelines) printf '{"name":"p-%s","steps":{"one":{"spec":%s}}}' "$2" "$spec" ;;
        /v1/schedules) printf '{"name":"s-%s","every":"1h","spec":%s}' "$2" "$spec" ;;
        /v1/monitors) printf '{"name":"chk-%s","interval_s":86400,"monitor":{"type":"tcp","host":"127.0.0.1","port":9},"follow_up":%s}' "$2" "$spec" ;;
        *) printf '%s' "$spec" ;;
    esac
}
# what of side b a list shows: its queue, ids and names (chk-b, b1/e: only in the
# lists of checks, incidents and events; a probe task in queue monitor names its check)
B_SEEN="\"queue\": ?\"b\"|$TASK_B|$REP_B|${PIPE[b]}|${APPR[b]}|${SCHED[b]}|pipe-b|sched-b"
past() { test "$1" != 403 -a "$1" != 401 -a "$1" != 405 -a "$1" != 429; }
declare -A below=([viewer]='' [operator]=viewer [admin]=operator)

rows=0 scoped=0 filtered=0
while IFS='|' read -r _ method pattern role scope _ _; do
    method=$(tr -d ' `' <<<"$method") pattern=$(tr -d ' `' <<<"$pattern") role=${role# } scope=${scope# }
    role=${role%% *} scope=${scope% }
    [[ $method == method || $method == ---* ]] && continue
    [[ $role == none ]] && continue
    rows=$((rows + 1))
    path=$(example "$pattern" a) data=$(body "$method" a "$pattern")
    # one role below the least role: 403 naming the role (below viewer: no token, 401)
    if [[ -z ${below[$role]} ]]; then
        is "$(call "$method" "$path" '' "$data")" 401 "$method $pattern: no token: 401"
    else
        is "$(call "$method" "$path" "${TOK[${below[$role]}]}" "$data")" 403 "$method $pattern: a ${below[$role]} token: 403"
        like "$(jq -r .error "$B")" "needs the $role role" "$method $pattern: the 403 names the $role role"
    fi
    own=0 # signing in to or out of the console: any token may, scoped or not
    [[ $scope == own* ]] && own=1
    if [[ $method != GET && $method != HEAD && ${below[$role]} != viewer && $own == 0 ]]; then
        is "$(call "$method" "$path" "${TOK[viewer]}" "$data")" 403 "$method $pattern: a viewer changes nothing: 403"
    fi
    st=$(call "$method" "$path" "${TOK[$role]}" "$data")
    ok "$method $pattern: a $role token gets past the checks ($st $(head -c 80 "$B"))" past "$st"
    # expired and revoked: 401 everywhere
    is "$(call "$method" "$path" "$EXPIRED" "$data")" 401 "$method $pattern: an expired token: 401"
    is "$(call "$method" "$path" "$REVOKED" "$data")" 401 "$method $pattern: a revoked token: 401"
    # scope: out of it 403 naming it, in it past the check
    if [[ $own == 1 ]]; then
        st=$(call "$method" "$path" "${TOK[viewer_a]}" "$data")
        ok "$method $pattern: a scoped viewer token gets past the checks ($st)" past "$st"
    elif [[ $scope == filtered* ]]; then
        filtered=$((filtered + 1))
        q='?limit=200' seen=$B_SEEN mine=''
        case $pattern in
            /v1/monitors | /v1/notifications/events) seen="$B_SEEN|\"chk-b\"|b1/e" mine='"chk-a"' ;;
            /v1/incidents) seen="$B_SEEN|\"chk-b\"" ;; # chk-a is deleted by then: see below
            /v1/overview) seen="$B_SEEN|\"queue\" : \"b\"" mine='"queue" : "a"' ;;
            /v1/reports/latest) q='?name=rep&format=summary' ;;
            /v1/tests) q='?name=tscope' ;;
            /v1/tests/history) q='?name=tscope&test=t1' ;;
        esac
        call "$method" "$path$q" "$DEVSYS_TOKEN" >/dev/null
        ok "$method $pattern: an unscoped token sees side b ($(grep -oE "$seen" "$B" | head -1))" grep -qE "$seen" "$B"
        is "$(call "$method" "$path$q" "${TOK[${role}_a]}")" 200 "$method $pattern: a scoped token: 200"
        ok "$method $pattern: ... and nothing of side b ($(grep -oE "$seen" "$B" | head -1))" it_not grep -qE "$seen" "$B"
        [[ -n $mine ]] && ok "$method $pattern: ... but side a" grep -qF "$mine" "$B"
    elif [[ $scope != - ]]; then
        scoped=$((scoped + 1))
        is "$(call "$method" "$(example "$pattern" b)" "${TOK[${role}_a]}" "$(body "$method" b "$pattern")")" 403 \
            "$method $pattern: a $role token scoped to a/a1 on b/b1: 403"
        like "$(jq -r .error "$B")" 'outside this token.s scope \((queues: a,monitor|apps: a1)\)' "$method $pattern: the 403 names the scope"
        st=$(call "$method" "$path" "${TOK[${role}_a]}" "$data")
        ok "$method $pattern: the scoped token gets past the checks on a/a1 ($st $(head -c 80 "$B"))" past "$st"
    elif [[ $method != GET && $method != HEAD ]]; then
        is "$(call "$method" "$path" "${TOK[${role}_a]}" "$data")" 403 "$method $pattern: a scoped token may not change an unscoped target"
    fi
done <<<"$routes"
ok "the table has rows with a role ($rows), scoped rows ($scoped), filtered lists ($filtered)" \
    test "$rows" -ge 20 -a "$scoped" -ge 20 -a "$filtered" -ge 13

# an incident follows its check: chk-a's, its check deleted by the matrix, only
# unscoped tokens see; once chk-a is back, the scoped token sees it again
is "$(call GET /v1/incidents?check=chk-a "${TOK[viewer_a]}")$(jq '.incidents | length' "$B")" 2000 \
    "an incident of a deleted check: a scoped token does not see it"
is "$(call GET /v1/incidents?check=chk-a "$DEVSYS_TOKEN")$(jq '.incidents | length' "$B")" 2001 "... an unscoped one does"
admin POST /v1/monitors '{"name":"chk-a","interval_s":86400,"monitor":{"type":"tcp","host":"127.0.0.1","port":9},
    "follow_up":{"kind":"noop","queue":"a"}}' >/dev/null
is "$(call GET /v1/incidents?check=chk-a "${TOK[viewer_a]}")$(jq '.incidents | length' "$B")" 2001 \
    "the check back in scope: the scoped token sees its incident"

# an array of specs is checked spec by spec
is "$(call POST /v1/tasks "${TOK[operator_a]}" '[{"kind":"noop","queue":"a"},{"kind":"noop","queue":"b"}]')" 403 \
    "a batch with one spec outside the scope: 403"
is "$(call POST /v1/tasks "${TOK[operator_a]}" '[{"kind":"noop","queue":"a"},{"kind":"noop","queue":"a"}]')" 201 \
    "a batch inside the scope: 201"
is "$(call POST /v1/tasks "${TOK[operator_a]}" '{"kind":"noop"}')" 403 "a spec without queue goes to its kind's queue: out of scope"
is "$(call POST /v1/tasks "${TOK[operator_a]}" '{"kind":"noop","queue":"a","next":[{"kind":"noop","queue":"a"},{"kind":"noop","queue":"a","next":[{"kind":"deploy","queue":"a","deploy":{"app":"b1","revision":"r"}}]}]}')" 403 \
    "a spec whose nested next deploys an app outside the scope: 403"
like "$(jq -r .error "$B")" 'app "b1" is outside' "... naming the app"
is "$(call POST /v1/schedules "${TOK[operator_a]}" '{"name":"s-next","every":"1h","spec":{"kind":"noop","queue":"a","next":[{"kind":"noop","queue":"b"}]}}')" 403 \
    "a schedule whose spec's next goes to queue b: 403"
is "$(call DELETE /v1/schedules/sched-b "${TOK[operator_a]}")" 403 "a schedule outside the scope named by its name, not its id: 403"
is "$(call GET "/v1/tasks?queue=b" "${TOK[viewer_a]}")" 200 "a scoped token asking for queue b's tasks: 200 ..."
is "$(jq '.tasks | length' "$B")" 0 "... and none"
# paging a filtered list: every page holds only the scope's tasks
for _ in 1 2 3; do task_in a >/dev/null; task_in b >/dev/null; done
seen=0 cursor=''
for _ in 1 2 3 4 5 6 7 8 9 10; do
    call GET "/v1/tasks?limit=2${cursor:+&after=$cursor}" "${TOK[viewer_a]}" >/dev/null
    seen=$((seen + $(jq '[.tasks[] | select(.queue != "a" and .queue != "monitor")] | length' "$B")))
    cursor=$(jq -r '.next // empty' "$B")
    [[ -z $cursor ]] && break
done
is "$seen" 0 "paging GET /v1/tasks with a scoped token: no page holds another queue's task"

# rotation: the new secret works, the old one for the grace period only
rot=$(ctl --json token rotate operator --grace 2s)
NEW=$(jq -r .token <<<"$rot")
ok "rotate prints a new secret" test -n "$NEW" -a "$NEW" != "${TOK[operator]}"
is "$(call GET /v1/tasks?limit=1 "$NEW")" 200 "the new secret works"
is "$(call GET /v1/tasks?limit=1 "${TOK[operator]}")" 200 "the old one still works during the grace period"
sleep 2.5
is "$(call GET /v1/tasks?limit=1 "${TOK[operator]}")" 401 "and not after it"
is "$(call GET /v1/tasks?limit=1 "$NEW")" 200 "the new one still does"
is "$(ctl token create --name x --role boss 2>&1 >/dev/null | grep -c 'role: must be viewer, operator or admin')" 1 \
    "a bad role is refused, naming the field"
is "$(call GET /v1/tokens "$DEVSYS_TOKEN")" 200 "DEVSYS_ADMIN_TOKEN stays the bootstrap admin"
it_done
