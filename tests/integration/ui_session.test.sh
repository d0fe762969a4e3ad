#!/usr/bin/env bash
# The web console's sessions and files without a browser: /ui/ is served
# without a token with a strict CSP; POST /v1/session with a bearer token sets
# an HttpOnly SameSite=Strict cookie (Secure behind https) that stands for the
# token on every /v1 route (role, scopes, audit actor); a change made with it
# needs its X-CSRF-Token (403 and audited without), a viewer's change is 403
# even with it; a tampered cookie or one signed out is 401. Also the task
# search over spec and last error (GET /v1/tasks?q=, migration 016).
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
it_start_manager || it_bail "start manager"
it_start_agent a1 DEVSYS_QUEUES=exec,noop

H=$IT_DIR/headers
B=$IT_DIR/body
# req METHOD PATH [curl args...]: prints the status; headers in $H, body in $B
req() { local m=$1 p=$2; shift 2; curl -s -o "$B" -D "$H" -w '%{http_code}' -X "$m" "$@" "$DEVSYS_URL$p"; }
cookie_of() { grep -i '^Set-Cookie: devsys_session=' "$H" | sed 's/^[^:]*: //; s/;.*//' | tr -d '\r'; }

is "$(req GET /ui/)" 200 "/ui/ is served without a token"
like "$(cat "$H")" "Content-Type: text/html" "as HTML"
like "$(cat "$H")" "Content-Security-Policy: default-src 'none'; script-src 'self'" "with a CSP allowing only its own scripts"
like "$(grep -o 'src="/ui/[a-z]*\.js"' "$B" | tr '\n' ' ')" "app.js.*pages.js" "the page loads its scripts from /ui/"
is "$(req GET /ui/app.js)" 200 "/ui/app.js is served"
like "$(cat "$H")" "Content-Type: text/javascript" "as JavaScript"
is "$(req GET /ui/nope.js)" 404 "an unknown console file is 404"

VIEWER=$(ctl token create --name ui-viewer --role viewer | sed -n 's/^token: //p')
SCOPED=$(ctl token create --name ui-team --role operator --queues noop | sed -n 's/^token: //p')

is "$(req POST /v1/session)" 401 "signing in without a token is 401"
is "$(req POST /v1/session -H "Authorization: Bearer nope")" 401 "signing in with a wrong token is 401"
is "$(req POST /v1/session -H "Authorization: Bearer $DEVSYS_TOKEN")" 201 "signing in with a token is 201"
set_cookie=$(grep -i '^Set-Cookie:' "$H" | tr -d '\r')
like "$set_cookie" "HttpOnly" "the session cookie is HttpOnly"
like "$set_cookie" "SameSite=Strict" "and SameSite=Strict"
like "$set_cookie" "Path=/; Max-Age=28800" "for the whole origin, 8 hours"
ok "and not Secure over plain http" it_not grep -q Secure <<<"$set_cookie"
ADMIN_C=$(cookie_of)
CSRF=$(jq -r .csrf "$B")
like "$CSRF" '^[0-9a-f]{32}$' "the answer carries the session's CSRF token"
ok "the cookie does not hold the token in clear" it_not grep -q "$DEVSYS_TOKEN" <<<"$ADMIN_C"
is "$(jq -c '[.actor, .role, (.can | index("dlq.purge") != null)]' "$B")" '["admin","admin",true]' \
    "the session names the actor, role and the actions it can take"

is "$(req GET /v1/session -H "Cookie: a=b; $ADMIN_C")" 200 "the cookie alone authenticates (among other cookies)"
is "$(jq -r .csrf "$B")" "$CSRF" "GET /v1/session gives the same CSRF token"
is "$(req GET /v1/tasks -H "Cookie: $ADMIN_C")" 200 "a /v1 read with the session cookie"

spec='{"kind":"exec","name":"ui-search","command":["sh","-c","echo quokka; exit 0"]}'
is "$(req POST /v1/tasks -H "Cookie: $ADMIN_C" -d "$spec")" 403 "a change with the cookie and no X-CSRF-Token is 403"
like "$(jq -r .error "$B")" "X-CSRF-Token" "naming the missing CSRF token"
# a wrong token: the real one with its last digit changed (never equal to it)
wrong_csrf=${CSRF%?}0
[[ $wrong_csrf == "$CSRF" ]] && wrong_csrf=${CSRF%?}1
is "$(req POST /v1/tasks -H "Cookie: $ADMIN_C" -H "X-CSRF-Token: $wrong_csrf" -d "$spec")" 403 \
    "a wrong X-CSRF-Token is 403"
is "$(req POST /v1/tasks -H "Cookie: $ADMIN_C" -H "X-CSRF-Token: $CSRF" -d "$spec")" 201 \
    "with the session's X-CSRF-Token it is accepted"
TASK=$(jq -r '.tasks[0].id' "$B")
is "$(it_psql "SELECT string_agg(outcome::text, ',' ORDER BY id) FROM audit_log WHERE action='task.submit' AND actor='admin'")" \
    "403,403,201" "the refused and the accepted submits are audited under the token's actor"

# another session of the same token has its own CSRF token
req POST /v1/session -H "Authorization: Bearer $DEVSYS_TOKEN" >/dev/null
OTHER_CSRF=$(jq -r .csrf "$B")
ok "each session has its own CSRF token" test "$OTHER_CSRF" != "$CSRF"
is "$(req POST /v1/tasks -H "Cookie: $ADMIN_C" -H "X-CSRF-Token: $OTHER_CSRF" -d '{"kind":"noop"}')" 403 \
    "another session's CSRF token is refused"

is "$(req POST /v1/session -H "Authorization: Bearer $VIEWER")" 201 "a viewer signs in"
VIEWER_C=$(cookie_of)
VCSRF=$(jq -r .csrf "$B")
is "$(jq -c '[.role, .can]' "$B")" '["viewer",["session.create","session.delete"]]' "a viewer's session can change nothing"
is "$(req POST "/v1/tasks/$TASK/cancel" -H "Cookie: $VIEWER_C" -H "X-CSRF-Token: $VCSRF")" 403 \
    "a viewer's change is refused by the API even with its CSRF token"
like "$(jq -r .error "$B")" "needs the operator role" "naming the role it needs"

is "$(req POST /v1/session -H "Authorization: Bearer $SCOPED")" 201 "a token scoped to queue noop may sign in"
SC=$(cookie_of)
SCSRF=$(jq -r .csrf "$B")
is "$(req POST /v1/tasks -H "Cookie: $SC" -H "X-CSRF-Token: $SCSRF" -d '{"kind":"noop"}')" 201 \
    "its session submits to its queue"
is "$(req POST /v1/tasks -H "Cookie: $SC" -H "X-CSRF-Token: $SCSRF" -d '{"kind":"exec","command":["true"]}')" 403 \
    "and is refused outside its scope"
is "$(it_psql "SELECT count(*) FROM audit_log WHERE actor='token:ui-team' AND action='task.submit'")" 2 \
    "both under the scoped token's name"

tampered=${ADMIN_C%?}A
[[ $tampered == "$ADMIN_C" ]] && tampered=${ADMIN_C%?}B
is "$(req GET /v1/session -H "Cookie: $tampered")" 401 "a tampered cookie is 401"
is "$(req GET /v1/session -H "Cookie: devsys_session=$(head -c 90 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d =)")" \
    401 "a made-up cookie is 401"
is "$(req DELETE /v1/session -H "Cookie: $VIEWER_C")" 403 "signing out needs the CSRF token too"
is "$(req DELETE /v1/session -H "Cookie: $VIEWER_C" -H "X-CSRF-Token: $VCSRF")" 200 "signing out"
like "$(grep -i '^Set-Cookie:' "$H" | tr -d '\r')" "devsys_session=; Path=/; Max-Age=0" "clears the cookie"
is "$(req GET /v1/session -H "Cookie: $VIEWER_C")" 401 "the signed-out cookie is refused afterwards"
is "$(req GET /v1/tasks -H "Cookie: $VIEWER_C")" 401 "on every route"
is "$(req POST /v1/session -H "Authorization: Bearer $DEVSYS_TOKEN" -H "X-Forwarded-Proto: https")" 201 "behind an https proxy"
like "$(grep -i '^Set-Cookie:' "$H" | tr -d '\r')" "SameSite=Strict; Secure" "the cookie is Secure"

# search over the words of the spec and the last error
ok "the searched task succeeds" it_wait_sql 10 "SELECT state FROM tasks WHERE id='$TASK'" succeeded
FAIL=$(ctl submit - <<<'{"kind":"exec","command":["sh","-c","echo wombat-trouble >&2; exit 2"],"retry_policy":{"max_attempts":1}}')
ok "a failing task goes dead" it_wait_sql 10 "SELECT state FROM tasks WHERE id='$FAIL'" dead
it_psql "SELECT last_error FROM tasks WHERE id='$FAIL'" >"$IT_DIR/err"
search() { req GET "/v1/tasks?$1" -H "Authorization: Bearer $DEVSYS_TOKEN" >/dev/null; jq -r '[.tasks[].id] | join(",")' "$B"; }
is "$(search 'q=quokka')" "$TASK" "q finds a task by a word of its command"
is "$(search 'q=ui-search')" "$TASK" "and by its name"
is "$(search 'q=quokka&state=dead')" "" "combined with the other filters"
is "$(search 'q=exit%202')" "$FAIL" "q finds a task by words of its spec (both words)"
is "$(search 'q=%22exit%202%22%20-wombat')" "" "web search syntax: a phrase and an excluded word"
is "$(search 'q=nosuchwordanywhere')" "" "a word in no task finds nothing"
is "$(req GET "/v1/tasks?q=" -H "Authorization: Bearer $DEVSYS_TOKEN")" 400 "an empty q is 400"
like "$(jq -r .error "$B")" "^q: " "naming q"
it_psql "SET enable_seqscan = off; EXPLAIN SELECT id FROM tasks WHERE devsys_task_text(spec, last_error) @@ websearch_to_tsquery('simple', 'quokka')" \
    >"$IT_DIR/plan"
like "$(cat "$IT_DIR/plan")" "tasks_text" "the text search can use the GIN index tasks_text"
it_done
