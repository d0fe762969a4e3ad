#!/usr/bin/env bash
# The web console in a real browser: Debian's chromium, headless, driven by
# puppeteer-core (build/npm-ui, tests/tools/npm-tools npm-ui) through
# tests/integration/ui_browser.js: sign in (HttpOnly SameSite=Strict session
# cookie), a submitted task turns succeeded without a reload, search finds it by
# a word of its spec, a dead letter is replayed, a deploy rolled back after a
# confirmation, a pipeline's DAG drawn, a step approved (SKIP without the
# approvals route), a group of dead letters replayed and another purged over a
# filter, a dead task retried from its page, the monitors page (checks, uptime,
# probes, incidents; silence and unsilence), a viewer sees no action buttons
# and the API refuses it, a forged POST without the CSRF token is refused, sign
# out; any console error or failed request fails it. Screenshots (1280x800) go
# to build/ui-screenshots.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
skip() { IT_N=$((IT_N + 1)); printf 'ok %d - %s # SKIP %s\n' "$IT_N" "$1" "$2" >&7; }

CHROMIUM=${DEVSYS_CHROMIUM:-/usr/bin/chromium}
if [[ ! -x $CHROMIUM ]]; then
    skip "the web console in a browser" "no $CHROMIUM (apt-get install chromium; ./dev PACKAGES has it)"
    it_done
fi
if ! npm_dir=$(tests/tools/npm-tools npm-ui 2>"$IT_DIR/npm-tools.err"); then
    it_diag "npm-tools: $(tail -n 3 "$IT_DIR/npm-tools.err")"
    skip "the web console in a browser" "npm registry unreachable (tests/tools/npm-tools npm-ui failed)"
    it_done
fi

it_setup
it_start_manager || it_bail "start manager"
ROOT=$IT_DIR/deploy-root
it_start_agent a1 DEVSYS_QUEUES=exec,noop,deploy DEVSYS_DEPLOY_ROOT="$ROOT" DEVSYS_CONCURRENCY=4

token() { ctl token create --name "$1" --role "$2" | sed -n 's/^token: //p'; }
OP=$(token ui-operator operator)
VIEWER=$(token ui-viewer viewer)
ok "an operator and a viewer token" test -n "$OP" -a -n "$VIEWER"

# a dead task whose command works once FIX exists (the browser creates it before replaying)
FIX=$IT_DIR/fixed
DEAD=$(ctl submit - <<<"{\"kind\":\"exec\",\"command\":[\"test\",\"-e\",\"$FIX\"],\"retry_policy\":{\"max_attempts\":1}}")
ok "a task goes dead" it_wait_sql 15 "SELECT state FROM tasks WHERE id='$DEAD'" dead
dlq_len() { curl -s -H "Authorization: Bearer $DEVSYS_TOKEN" "$DEVSYS_URL/v1/dlq/exec" | jq '.entries | length'; }
# more dead tasks: three with DEAD's error (a group replayed at once), one the
# task page retries (exit 3 until FIX exists), two purged as a group (exit 5)
dead() { ctl submit - <<<"{\"kind\":\"exec\",\"command\":[\"sh\",\"-c\",\"$1\"],\"retry_policy\":{\"max_attempts\":1}}"; }
BULK=()
for _ in 1 2 3; do BULK+=("$(dead "test -e $FIX")"); done
RETRY=$(dead "test -e $FIX || exit 3")
PURGE=("$(dead 'exit 5')" "$(dead 'exit 5')")
ok "they all go dead" it_wait_sql 20 "SELECT count(*) FROM tasks WHERE state='dead'" 7
ok "their dead letters are in the DLQ" it_wait_for 10 '[[ $(dlq_len) -ge 7 ]]'

# two checks and their probes, as the agents' outcomes record them: web fails
# (an incident opens), api is fine
for c in web api; do
    curl -s -o /dev/null -H "Authorization: Bearer $DEVSYS_TOKEN" -H 'Content-Type: application/json' \
        -d "{\"name\":\"$c\",\"interval_s\":3600,\"monitor\":{\"type\":\"http\",\"url\":\"http://127.0.0.1:9/$c\"}}" \
        "$DEVSYS_URL/v1/monitors"
done
probe() { # probe CHECK ok|fail
    local result='{"ok": true, "latency_ms": 12, "error": null, "type": "http"}'
    [[ $2 == fail ]] && result='{"ok": false, "latency_ms": 31, "error": "HTTP 503 from http://127.0.0.1:9/web", "type": "http"}'
    it_psql "INSERT INTO tasks (id, queue, kind, spec, state, attempt, result, started_at, finished_at)
             VALUES (gen_random_uuid(), 'monitor', 'monitor',
                     '{\"kind\": \"monitor\", \"queue\": \"monitor\", \"monitor\": {\"type\": \"http\", \"check\": \"$1\"}}',
                     'succeeded', 1, '$result', now(), now())" >/dev/null
}
for o in ok ok fail fail fail; do probe web "$o"; done
for o in ok ok ok; do probe api "$o"; done
is "$(it_psql "SELECT state || ' ' || (SELECT count(*) FROM incidents WHERE check_name = 'web' AND resolved_at IS NULL)
               FROM checks WHERE name = 'web'")" 'failing 1' "check web is failing with an open incident"

# two deploys of web/staging: the browser rolls back to the first
mkdir -p "$IT_DIR/site"
revs=()
for v in 1 2; do
    echo "v$v" >"$IT_DIR/site/index.html"
    id=$(ctl deploy web staging "$IT_DIR/site")
    it_wait_sql 20 "SELECT state FROM tasks WHERE id='$id'" succeeded >/dev/null || it_bail "deploy $v"
    revs+=("$(it_psql "SELECT revision FROM deployments WHERE task_id='$id'")")
done
is "$(readlink "$ROOT/staging/web/current")" "revisions/${revs[1]}" "the second deploy is current"

mkdir -p "$BIN/ui-screenshots"
start=$(date +%s)
NODE_PATH=$npm_dir/node_modules UI_URL=$DEVSYS_URL OP_TOKEN=$OP VIEWER_TOKEN=$VIEWER ADMIN_TOKEN=$DEVSYS_TOKEN \
    DEAD_TASK=$DEAD DEAD_QUEUE=exec FIX_FILE=$FIX APP=web BULK_TASKS="${BULK[*]}" RETRY_TASK=$RETRY \
    PURGE_TASKS="${PURGE[*]}" ENV=staging PREV_REV=${revs[0]} \
    SHOTS=$BIN/ui-screenshots CHROMIUM=$CHROMIUM PROFILE=$IT_DIR/chromium-profile \
    timeout 120 node "$ds_root/tests/integration/ui_browser.js" >"$IT_DIR/browser.out" 2>"$IT_DIR/browser.err" 7>&-
st=$?
while IFS= read -r line; do
    case $line in
        PASS\ *) _it_result 0 "${line#PASS }" ;;
        SKIP\ *) desc=${line#SKIP }; skip "${desc%%: *}" "${desc#*: }" ;;
        FAIL\ *) _it_result 1 "${line#FAIL }"; _it_fail_tails ;;
    esac
done <"$IT_DIR/browser.out"
[[ $st == 0 ]] || it_diag "browser run exit $st: $(tail -n 20 "$IT_DIR/browser.err")"
ok "the browser run exits 0 (within $(( $(date +%s) - start )) s)" test "$st" = 0

is "$(readlink "$ROOT/staging/web/current")" "revisions/${revs[0]}" "the rollback switched current on disk"
is "$(it_psql "SELECT count(*) FROM audit_log WHERE actor='token:ui-operator' AND action='task.submit' AND outcome=403")" 1 \
    "the forged POST is in the audit log, refused, under the token's name"
for a in session.create dlq.replay task.retry monitor.silence monitor.unsilence app.rollback session.delete; do
    is "$(it_psql "SELECT count(*) > 0 FROM audit_log WHERE actor='token:ui-operator' AND action='$a' AND outcome < 300")" t \
        "the console's $a is audited under the operator token's name"
done
is "$(it_psql "SELECT detail->'filter'->>'error' FROM audit_log WHERE action='dlq.replay' AND outcome = 200
               AND detail->'filter'->>'error' IS NOT NULL")" 'exit status 1' "the group replay is audited with its filter"
is "$(it_psql "SELECT string_agg(DISTINCT state || ' ' || (dlq_purged_at IS NOT NULL), ',') FROM tasks
               WHERE id IN ('${PURGE[0]}', '${PURGE[1]}')")" 'dead true' "the purged group: dead, letters purged"
is "$(it_psql "SELECT string_agg(attempt || ':' || outcome, ',' ORDER BY attempt) FROM task_attempts WHERE task_id='$RETRY'")" \
    '1:dead,2:succeeded' "the retried task kept its first attempt; the retry was attempt 2"
for s in overview tasks task dead-letters deployments pipeline pipelines audit queues monitors monitor; do
    ok "screenshot $s.png is 1280x800" python3 -c "
import struct, sys
b = open(sys.argv[1], 'rb').read(24)
sys.exit(0 if b[:8] == b'\x89PNG\r\n\x1a\n' and struct.unpack('>II', b[16:24]) == (1280, 800) else 1)" "$BIN/ui-screenshots/$s.png"
done
it_done
