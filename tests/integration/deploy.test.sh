#!/usr/bin/env bash
# Kind deploy end to end: a directory and a tarball become revisions under
# DEVSYS_DEPLOY_ROOT/<env>/<app>/revisions and `current` switches to them; a
# failing HTTP or command acceptance check switches back to the previous
# revision and fails the task saying so; a rollback through the API (and
# devsysctl) returns current to a named revision; keep=N prunes; hostile
# tarballs are refused with nothing written outside; the deployments table
# and GET /v1/apps/{app}/revisions record who deployed what and the outcome.
# Every failed deploy and every rollback (automatic or asked) reaches a
# subscribed webhook receiver as deploy.failed / deploy.rolled_back.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
# shellcheck source=tests/integration/notify_lib.sh
source "$(dirname "$0")/notify_lib.sh"
it_setup
SECRET=$(new_secret)
printf '{"ops": "%s"}\n' "$SECRET" >"$IT_DIR/secrets.json"
DEVSYS_NOTIFY_TICK_S=0.2 it_start_manager || it_bail "start manager"
ROOT=$IT_DIR/root
it_start_agent a1 DEVSYS_QUEUES=deploy,notify DEVSYS_DEPLOY_ROOT="$ROOT" DEVSYS_NOTIFY_SECRETS_FILE="$IT_DIR/secrets.json"
start_receiver ops 0 --secret "$SECRET" || it_bail "start the webhook receiver"
ctl notify add ops "${RECV_URL[ops]}" deploy.failed,deploy.rolled_back secret_ref=ops group_wait_s=0 \
    group_interval_s=0 rate.per_s=100 rate.burst=100 max_listed=100 >/dev/null || it_bail "notify add"
T=test-admin-token
B=$IT_DIR/body
APP=$ROOT/staging/web

# deploy SECTION-JSON: submits a deploy task, prints its id
deploy() { ctl submit - <<<"$(jq -nc --argjson d "$1" '{kind: "deploy", deploy: $d}')"; }
current() { readlink "$APP/current"; }
row() { it_psql "SELECT $1 FROM deployments WHERE task_id='$2'"; }
err() { it_psql "SELECT last_error FROM tasks WHERE id='$1'"; }

# A tiny HTTP server on a port the kernel picks: "dir DIR" serves DIR (a
# symlink is followed on every request), "status N" answers N to everything.
cat >"$IT_DIR/srv.py" <<'EOF'
import functools, http.server, sys
mode, arg, portfile = sys.argv[1], sys.argv[2], sys.argv[3]
class Fixed(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"failing\n"
        self.send_response(int(arg)); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
class Dir(http.server.SimpleHTTPRequestHandler):
    def translate_path(self, path):
        return http.server.SimpleHTTPRequestHandler.translate_path(self, path).replace(__import__("os").getcwd(), arg, 1)
    def log_message(self, *a): pass
h = Fixed if mode == "status" else Dir
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), h)
open(portfile + ".tmp", "w").write(str(s.server_address[1])); __import__("os").rename(portfile + ".tmp", portfile)
s.serve_forever()
EOF
# serve NAME MODE ARG: starts it, sets PORT
serve() {
    python3 "$IT_DIR/srv.py" "$2" "$3" "$IT_DIR/$1.port" </dev/null >>"$IT_DIR/srv-$1.log" 2>&1 7>&- &
    it_track_pid $!
    it_wait_for 10 "[[ -s $IT_DIR/$1.port ]]" || it_bail "start the $1 HTTP server"
    PORT=$(cat "$IT_DIR/$1.port")
}

# ---- a directory
mkdir -p "$IT_DIR/site1/css"
echo "<h1>v1</h1>" >"$IT_DIR/site1/index.html"
echo "h1{}" >"$IT_DIR/site1/css/a.css"
ln -s index.html "$IT_DIR/site1/home.html"   # a symlink inside the revision is fine
id1=$(deploy "$(jq -nc --arg s "$IT_DIR/site1" '{app: "web", env: "staging", source: $s, revision: "r1"}')")
ok "a directory deploy succeeds" it_wait_state 60 "$id1" succeeded
is "$(current)" "revisions/r1" "current -> revisions/r1"
is "$(cat "$APP/current/index.html")" "<h1>v1</h1>" "the revision holds the directory's files"
is "$(readlink "$APP/current/home.html")" "index.html" "its inner symlink is kept"
is "$(row "concat_ws(' ', app, env, action, revision, coalesce(previous_revision, '-'), outcome, state)" "$id1")" \
    "web staging deploy r1 - succeeded done" "the deployments row: r1, no previous, succeeded"
is "$(row "deployed_by" "$id1")" "admin" "deployed_by is the submitter (the token's name)"
ok "switched_at and finished_at are set" test "$(row "switched_at IS NOT NULL AND finished_at >= switched_at" "$id1")" = t
is "$(it_psql "SELECT result->>'revision' FROM tasks WHERE id='$id1'")" r1 "the task's result names the revision"

# ---- a tarball, with the derived revision name
mkdir -p "$IT_DIR/site2"
echo "<h1>v2</h1>" >"$IT_DIR/site2/index.html"
tar -czf "$IT_DIR/site2.tgz" -C "$IT_DIR/site2" .
id2=$(deploy "$(jq -nc --arg s "$IT_DIR/site2.tgz" '{app: "web", env: "staging", source: $s}')")
ok "a tarball deploy succeeds" it_wait_state 60 "$id2" succeeded
rev2=$(row revision "$id2")
like "$rev2" '^[0-9]{8}T[0-9]{6}-[0-9a-f]{8}$' "a revision without a name gets <UTC time>-<task id tail>"
is "$(current)" "revisions/$rev2" "current -> the tarball's revision"
is "$(cat "$APP/current/index.html")" "<h1>v2</h1>" "the tarball was extracted into it"
is "$(row "previous_revision" "$id2")" r1 "the row records the previous revision r1"
ok "no temporary symlink or staging dir is left" test -z "$(find "$APP" -maxdepth 2 -name '.*')"

# ---- HTTP check that fails: rolled back
serve s500 status 500
id3=$(deploy "$(jq -nc --arg s "$IT_DIR/site1" --arg u "http://127.0.0.1:$PORT/health" \
    '{app: "web", env: "staging", source: $s, revision: "r3", check: {http: {url: $u, retries: 1, interval_s: 0.2}}}')")
ok "a deploy whose HTTP check answers 500 fails" it_wait_state 60 "$id3" dead
is "$(err "$id3")" "acceptance check failed: GET http://127.0.0.1:$PORT/health answered 500, expected 200 (2 tries); rolled back to $rev2" \
    "the error says what the check got and where it rolled back to"
is "$(current)" "revisions/$rev2" "current is back on the previous revision"
is "$(row "outcome || ' ' || previous_revision" "$id3")" "rolled_back $rev2" "the row's outcome is rolled_back"
is "$(it_psql "SELECT attempt FROM tasks WHERE id='$id3'")" 1 "a rolled-back deploy is not retried"
ok "the failed revision is kept for inspection" test -f "$APP/revisions/r3/index.html"

# ---- HTTP check that passes, with a body pattern, against the deployed files
serve site dir "$APP/current"
mkdir -p "$IT_DIR/site4" && echo "<h1>v4 healthy</h1>" >"$IT_DIR/site4/index.html"
id4=$(deploy "$(jq -nc --arg s "$IT_DIR/site4" --arg u "http://127.0.0.1:$PORT/index.html" \
    '{app: "web", env: "staging", source: $s, revision: "r4", check: {http: {url: $u, body_pattern: "v[0-9] healthy"}}}')")
ok "a deploy whose check finds the new page succeeds" it_wait_state 60 "$id4" succeeded
is "$(current)" "revisions/r4" "current -> r4"
id5=$(deploy "$(jq -nc --arg s "$IT_DIR/site1" --arg u "http://127.0.0.1:$PORT/index.html" \
    '{app: "web", env: "staging", source: $s, revision: "r5", check: {http: {url: $u, body_pattern: "healthy"}}}')")
ok "a page without the pattern fails the check" it_wait_state 60 "$id5" dead
is "$(err "$id5")" "acceptance check failed: GET http://127.0.0.1:$PORT/index.html answered 200 but the body does not match \"healthy\"; rolled back to r4" \
    "the error says the body did not match"
is "$(current)" "revisions/r4" "current is back on r4"

# ---- command check
id6=$(deploy "$(jq -nc --arg s "$IT_DIR/site1" \
    '{app: "web", env: "staging", source: $s, revision: "r6", check: {command: ["sh", "-c", "echo missing app.js; test -f app.js"]}}')")
ok "a failing command check fails the deploy" it_wait_state 60 "$id6" dead
is "$(err "$id6")" "acceptance check failed: sh: exit status 1 (last output: missing app.js); rolled back to r4" \
    "the error names the command's status and last output"
is "$(current)" "revisions/r4" "current is back on r4"
id7=$(deploy "$(jq -nc --arg s "$IT_DIR/site1" \
    '{app: "web", env: "staging", source: $s, revision: "r7", check: {command: ["sh", "-c", "test -f index.html && test \"$DEVSYS_DEPLOY_REVISION\" = r7"]}}')")
ok "a passing command check (run in the new revision) succeeds" it_wait_state 60 "$id7" succeeded
is "$(current)" "revisions/r7" "current -> r7"

# ---- a revision name is deployed once
id=$(deploy "$(jq -nc --arg s "$IT_DIR/site2" '{app: "web", env: "staging", source: $s, revision: "r4"}')")
ok "reusing a revision name fails" it_wait_state 60 "$id" dead
like "$(err "$id")" "^revision r4 of staging/web was already deployed by task $id4: choose another revision name" \
    "the error names the task that deployed it"
is "$(current)" "revisions/r7" "current is untouched"
is "$(cat "$APP/revisions/r4/index.html")" "<h1>v4 healthy</h1>" "and r4's files too"

# ---- rollback through the API, to a named revision and to the previous one
code=$(curl -s -o "$B" -w '%{http_code}' -X POST -H "Authorization: Bearer $T" "$DEVSYS_URL/v1/apps/web/rollback" \
    -d '{"env":"staging","revision":"r4"}')
is "$code" 202 "POST /v1/apps/web/rollback: 202"
rid=$(jq -r .task_id "$B")
ok "the rollback task succeeds" it_wait_state 60 "$rid" succeeded
is "$(current)" "revisions/r4" "current -> r4"
is "$(row "concat_ws(' ', action, revision, previous_revision, outcome)" "$rid")" "rollback r4 r7 succeeded" \
    "the rollback's row: r7 -> r4"
ok "default keep=5 pruned the least recently used revision r1" test ! -e "$APP/revisions/r1"
rid=$(ctl rollback web staging)
ok "devsysctl rollback (to the previous revision) succeeds" it_wait_state 60 "$rid" succeeded
is "$(current)" "revisions/r7" "current -> r7 again"
rid=$(ctl rollback web staging r1)
ok "a rollback to a revision that is not kept fails" it_wait_state 60 "$rid" dead
like "$(err "$rid")" "revision r1 is not kept under" "the error says the revision is not kept"
code=$(curl -s -o "$B" -w '%{http_code}' -X POST -H "Authorization: Bearer $T" "$DEVSYS_URL/v1/apps/web/rollback" -d '{"revision":"r1"}')
is "$code/$(jq -r .error "$B")" "400/env: required" "a rollback without env: 400"
code=$(curl -s -o "$B" -w '%{http_code}' -X POST -H "Authorization: Bearer $T" "$DEVSYS_URL/v1/apps/a..b%2Fc/rollback" -d '{"env":"x"}')
is "$code" 400 "a bad app name: 400"

# ---- the revisions listing
code=$(curl -s -o "$B" -w '%{http_code}' -H "Authorization: Bearer $T" "$DEVSYS_URL/v1/apps/web/revisions?env=staging")
is "$code" 200 "GET /v1/apps/web/revisions?env=staging: 200"
is "$(jq -r '.current.staging' "$B")" r7 "it says r7 is current"
is "$(jq -r '[.revisions[] | select(.current)] | length' "$B")" 1 "one row is marked current"
is "$(jq -r '[.revisions[] | select(.revision == "r3")][0] | .outcome + " " + .deployed_by' "$B")" \
    "rolled_back admin" "each row has the outcome and who deployed"
out=$(ctl revisions web staging)
like "$out" 'ENV +REVISION +CURRENT' "devsysctl revisions prints a table"
like "$out" 'staging +r7 +true +(rollback|deploy)' "with the current revision marked"

# ---- devsysctl deploy, and a pipeline step's deploy records its pipeline
cd "$IT_DIR" || it_bail "cd"
id=$(ctl deploy web qa site4 --check-url "http://127.0.0.1:$PORT/index.html")
ok "devsysctl deploy (a relative SOURCE, an HTTP check) succeeds" it_wait_state 60 "$id" succeeded
is "$(readlink "$ROOT/qa/web/current")" "revisions/$(row revision "$id")" "qa/web/current -> its revision"
is "$(it_psql "SELECT spec->'deploy'->>'source' FROM tasks WHERE id='$id'")" "$IT_DIR/site4" "the source was sent as an absolute path"
pid=01a23540-0000-7000-8000-000000000001
id=$(ctl submit - <<<"$(jq -nc --arg s "$IT_DIR/site1" --arg p "$pid" \
    '{kind: "deploy", pipeline: {id: $p, name: "site", step: "deploy-qa", index: 0}, deploy: {app: "web", env: "qa", source: $s}}')")
ok "a deploy carrying a pipeline succeeds" it_wait_state 60 "$id" succeeded
is "$(row pipeline_id "$id")" "$pid" "its row records the pipeline id"
is "$(ctl revisions web qa | awk 'NR > 1 {print $1}' | sort -u)" qa "devsysctl revisions APP ENV lists only that env"

# ---- keep=2 prunes
for r in k1 k2 k3; do
    id=$(deploy "$(jq -nc --arg s "$IT_DIR/site1" --arg r "$r" '{app: "web", env: "staging", source: $s, revision: $r, keep: 2}')")
    it_wait_state 60 "$id" succeeded || break
done
is "$(ls "$APP/revisions" | tr '\n' ' ')" "k2 k3 " "keep=2: only the current and the previous revision remain"

# ---- hostile tarballs
python3 - "$IT_DIR" <<'EOF'
import io, sys, tarfile
d = sys.argv[1]
def tar(name, members):
    with tarfile.open(f"{d}/{name}", "w:gz") as t:
        for m, data, link in members:
            ti = tarfile.TarInfo(m)
            if link is not None:
                ti.type, ti.linkname = tarfile.SYMTYPE, link
                t.addfile(ti)
            else:
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
tar("dotdot.tgz", [("index.html", b"ok", None), ("../../../../evil-dotdot", b"x", None)])
tar("abs.tgz", [("index.html", b"ok", None), (f"{d}/evil-abs", b"x", None)])
tar("link.tgz", [("index.html", b"ok", None), ("out", b"", d), ("out/evil-link", b"x", None)])
tar("link2.tgz", [("index.html", b"ok", None), ("up", b"", "../../../../..")])
open(f"{d}/corrupt.tgz", "wb").write(b"\x1f\x8b\x08\x00not really gzip")
EOF
for t in dotdot abs link link2 corrupt; do
    id=$(deploy "$(jq -nc --arg s "$IT_DIR/$t.tgz" --arg r "h-$t" '{app: "web", env: "staging", source: $s, revision: $r}')")
    ok "hostile tarball $t: the deploy fails" it_wait_state 60 "$id" dead
    like "$(err "$id")" "^source .*$t.tgz refused: " "hostile tarball $t: the error says it was refused"
    ok "hostile tarball $t: no revision dir" test ! -e "$APP/revisions/h-$t"
done
ok "nothing was written outside the revisions" \
    test -z "$(find "$IT_DIR" "$ROOT" / -maxdepth 1 -name 'evil-*' 2>/dev/null; find "$IT_DIR" -name 'evil-*' 2>/dev/null)"
is "$(current)" "revisions/k3" "current is untouched by refused deploys"
ok "and no staging dir is left" test -z "$(find "$APP/revisions" -maxdepth 1 -name '.*')"

# ---- the deploy events: one per failed outcome and per rollback, at the receiver
want=$(it_psql "SELECT CASE WHEN outcome = 'failed' THEN 'deploy.failed' ELSE 'deploy.rolled_back' END || ' ' || task_id
    FROM deployments WHERE outcome IN ('failed', 'rolled_back') OR (action = 'rollback' AND outcome = 'succeeded')
    ORDER BY 1")
it_diag "deploy events expected: $(wc -l <<<"$want") ($(cut -d' ' -f1 <<<"$want" | sort | uniq -c | tr -s ' \n' ' '))"
# recv_events: "type task" of every event the receiver accepted (alone or in a summary)
recv_events() {
    [[ -f $IT_DIR/recv-ops.jsonl ]] || return 0
    jq -r '.body | if .type == "summary" then .data.events[] else . end | "\(.type) \(.data.task)"' \
        "$IT_DIR/recv-ops.jsonl" | sort
}
ok "the receiver got them all" it_wait_for 30 "[[ \$(recv_events | wc -l) -ge $(wc -l <<<"$want") ]]"
is "$(recv_events)" "$want" "exactly one deploy.failed per failed deploy, one deploy.rolled_back per rollback"
ev() { # ev TASK: the event about TASK, as the receiver got it
    jq -c --arg t "$1" '.body | if .type == "summary" then .data.events[] else . end | select(.data.task == $t)
        | {type, app: .data.app, env: .data.env, reason: .data.reason, revision: .data.revision,
           previous: .data.previous_revision, error: .data.error}' "$IT_DIR/recv-ops.jsonl"
}
like "$(ev "$id3")" '^\{"type":"deploy.rolled_back","app":"web","env":"staging","reason":"acceptance check failed","revision":"r3","previous":"'"$rev2"'","error":"acceptance check failed: GET .* answered 500' \
    "a failed acceptance check: deploy.rolled_back with the reason, both revisions and the error"
like "$(ev "$rid")" '^\{"type":"deploy.failed","app":"web","env":"staging","reason":null,"revision":null,"previous":null,"error":"rollback of staging/web: revision r1 is not kept' \
    "a rollback that fails: deploy.failed with its error"

# ---- no DEVSYS_DEPLOY_ROOT
it_start_agent a2 DEVSYS_QUEUES=deploy-noroot
id=$(ctl submit - <<<"$(jq -nc --arg s "$IT_DIR/site1" '{kind: "deploy", queue: "deploy-noroot", deploy: {app: "web", env: "x", source: $s}}')")
ok "an agent without DEVSYS_DEPLOY_ROOT fails the task" it_wait_state 60 "$id" dead
like "$(err "$id")" "^DEVSYS_DEPLOY_ROOT is not set on agent" "with a clear error"
it_done
