#!/usr/bin/env bash
# Test history across runs of kind testing: each report's tests are recorded
# per pipeline name (or task name); a test that fails and then passes on the
# same input (a retry of the task, a rerun of the pipeline run, the same
# testing.input) is flaky, as is one Surefire reran. GET /v1/tests (flaky
# filter, paging), /v1/tests/history, /v1/reports/latest?pipeline=, devsysctl
# tests; retention deletes old history; a 60 MB report is parsed off the
# agent's loop, which meanwhile runs another task.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
it_start_manager || it_bail "start manager"
it_start_agent a1 DEVSYS_QUEUES=testing,exec DEVSYS_CONCURRENCY=4 DEVSYS_METRICS_LISTEN=127.0.0.1:0
T=test-admin-token
# get PATH: the body to $B, prints the HTTP status
get() { curl -s -o "$B" -w '%{http_code}' -H "Authorization: Bearer $T" "$DEVSYS_URL$1"; }
B=$IT_DIR/body
W=$IT_DIR/work
mkdir -p "$W"

# A suite of two tests written as JUnit by a shell script: t_stable always
# passes; t_flaky fails while the marker file named by $1 is missing, and
# creates it (so it passes on the next run).
cat >"$W/suite.sh" <<'EOF2'
#!/bin/sh
marker=$1
if [ -e "$marker" ]; then flaky='<testcase classname="suite" name="t_flaky" time="0.01"/>'
else flaky='<testcase classname="suite" name="t_flaky" time="0.01"><failure message="timing: 3 != 4"/></testcase>'
     touch "$marker"; fi
cat >out.xml <<EOX
<?xml version="1.0" encoding="UTF-8"?>
<testsuite name="suite"><testcase classname="suite" name="t_stable" time="0.02"/>$flaky</testsuite>
EOX
EOF2
chmod +x "$W/suite.sh"
# spec NAME MARKER [extra jq object merged in]
spec() {
    jq -nc --arg w "$W" --arg n "$1" --arg m "$2" --argjson x "${3:-{\}}" '{kind: "testing", name: $n, workdir: $w,
        command: ["sh", "suite.sh", $m], testing: {junit: ["out.xml"]}} * $x'
}

# ---- a retry that passes: the same input (the task), so t_flaky is flaky
id=$(ctl submit - <<<"$(spec retry-suite m-retry '{"retry_policy": {"max_attempts": 3, "initial_s": 0.1, "max_s": 0.2}}')")
ok "failing on attempt 1, the task passes on attempt 2" it_wait_state 60 "$id" succeeded
is "$(it_psql "SELECT attempt FROM tasks WHERE id='$id'")" 2 "two attempts"
is "$(get '/v1/tests?name=retry-suite')" 200 "GET /v1/tests?name=: 200"
is "$(jq -c '[.tests[] | [.test, .last, .failure_rate, .flaky, .runs]]' "$B")" \
    '[["suite::t_flaky",["passed","failed"],0.5,true,2],["suite::t_stable",["passed","passed"],0,false,2]]' \
    "each test with its last outcomes (newest first), failure rate and flaky flag"
is "$(jq -r '.tests[0].last_failure' "$B")" "timing: 3 != 4" "the last failure's message"
is "$(get '/v1/tests?name=retry-suite&flaky=1')" 200 "GET /v1/tests?flaky=1: 200"
is "$(jq -c '[.tests[].test]' "$B")" '["suite::t_flaky"]' "only the flaky test"
is "$(get '/v1/tests/history?name=retry-suite&test=suite::t_flaky')" 200 "GET /v1/tests/history: 200"
is "$(jq -c '[.runs[] | [.attempt, .outcome, .flaky, .message, .input]]' "$B")" \
    "[[2,\"passed\",true,null,\"task:$id\"],[1,\"failed\",false,\"timing: 3 != 4\",\"task:$id\"]]" \
    "its runs newest first: the pass on the same input shows it flaky"
out=$(ctl tests --by-name --flaky retry-suite)
like "$out" 'suite::t_flaky +PF +50% +flaky +timing: 3 != 4' "devsysctl tests --by-name --flaky lists it"
ok "and not the stable one" it_not grep -q t_stable <<<"$out"
like "$(ctl tests --by-name retry-suite suite::t_flaky)" 'passed +true' "devsysctl tests NAME TEST prints its runs"

# ---- two runs of a suite on different inputs: failed then passed is no flake
id=$(ctl submit - <<<"$(spec fixed-suite m-fixed)")
ok "run 1 fails" it_wait_state 60 "$id" dead
id=$(ctl submit - <<<"$(spec fixed-suite m-fixed)")
ok "run 2 (a new task, another input) passes" it_wait_state 60 "$id" succeeded
get '/v1/tests?name=fixed-suite' >/dev/null
is "$(jq -c '[.tests[] | select(.test == "suite::t_flaky") | .last, .flaky]' "$B")" '[["passed","failed"],false]' \
    "failed then passed on two inputs: not flaky"

# ---- testing.input: two tasks on the same commit disagree -> flaky
x='{"testing": {"input": "sha-1234"}}'
id=$(ctl submit - <<<"$(spec input-suite m-input "$x")")
ok "commit sha-1234, run 1 fails" it_wait_state 60 "$id" dead
id=$(ctl submit - <<<"$(spec input-suite m-input "$x")")
ok "commit sha-1234, run 2 passes" it_wait_state 60 "$id" succeeded
get '/v1/tests?name=input-suite&flaky=1' >/dev/null
is "$(jq -c '[.tests[].test]' "$B")" '["suite::t_flaky"]' "the same testing.input makes it flaky"

# ---- pipeline scope: runs of pipeline "web"; a rerun of run 1 is its input
p1=11111111-1111-4111-8111-111111111111 p2=22222222-2222-4222-8222-222222222222
pl() { jq -nc --arg id "$1" '{pipeline: {id: $id, name: "web", step: "test", index: 0}}'; }
id=$(ctl submit - <<<"$(spec web-test m-web "$(pl $p1)")")
ok "pipeline web run 1: fails" it_wait_state 60 "$id" dead
id=$(ctl submit - <<<"$(spec web-test m-web "$(pl $p2)")")
ok "pipeline web run 2: passes" it_wait_state 60 "$id" succeeded
get '/v1/tests?pipeline=web&flaky=1' >/dev/null
is "$(jq -c '.tests' "$B")" '[]' "run 1 failed, run 2 passed: no flaky test yet"
rm -f "$W/m-web-2"
id3=$(ctl submit - <<<"$(spec web-test m-web "$(pl $p1)")")
ok "a rerun of run 1 passes" it_wait_state 60 "$id3" succeeded
is "$(get '/v1/tests?pipeline=web&flaky=1')" 200 "GET /v1/tests?pipeline=&flaky=1: 200"
is "$(jq -c '[.scope, [.tests[] | .test, .last]]' "$B")" '["pipeline:web",["suite::t_flaky",["passed","passed","failed"]]]' \
    "failed, then passed on a rerun of the same pipeline run: flaky"
is "$(get '/v1/reports/latest?pipeline=web&format=summary')" 200 "GET /v1/reports/latest?pipeline=: 200"
is "$(jq -r '.task_id + " " + .pipeline.name + " " + (.summary.tests | tostring)' "$B")" "$id3 web 2" \
    "the newest report of the pipeline"
is "$(get '/v1/reports/latest?pipeline=nope')" 404 "a pipeline without reports: 404"
is "$(get '/v1/tests?name=web-test')" 200 "the pipeline's tasks are not under their task name"
is "$(jq -c .tests "$B")" '[]' "(empty)"

# ---- Surefire's flakyFailure marks a test flaky on its own
cp "$ds_root/tests/data/junit/surefire-flaky.xml" "$W/surefire.xml"
id=$(ctl submit - <<<"$(jq -nc --arg w "$W" '{kind: "testing", name: "billing", workdir: $w, command: ["true"],
    testing: {junit: ["surefire.xml"]}}')")
ok "a Surefire report with failures: dead" it_wait_state 60 "$id" dead
get '/v1/tests?name=billing&flaky=1' >/dev/null
is "$(jq -c '[.tests[] | [.test, .last]]' "$B")" \
    '[["com.example.billing.InvoiceServiceTest::appliesDiscount",["flaky"]],["com.example.billing.InvoiceServiceTest::talksToLedger",["flaky"]]]' \
    "its flakyFailure and flakyError tests are flaky"

# ---- paging and refusals
is "$(get '/v1/tests?name=billing&limit=2')" 200 "page 1 of 2 tests"
n1=$(jq -r '.next' "$B")
first=$(jq -c '[.tests[].test]' "$B")
is "$(get "/v1/tests?name=billing&limit=2&after=$(jq -rn --arg a "$n1" '$a|@uri')")" 200 "page 2"
is "$(jq -r '[.tests[].test] | length' "$B")" 2 "2 more tests"
ok "pages do not overlap" it_not grep -qF "$(jq -r '.tests[0].test' "$B")" <<<"$first"
is "$(get "/v1/tests?name=billing&limit=8")" 200 "a page of up to 8 holds all 7"
is "$(jq -r '.next' "$B")" "null" "no next page after the last test"
is "$(get '/v1/tests')" 400 "no pipeline or name: 400"
is "$(jq -r .error "$B")" "pipeline or name: required (the pipeline name, or the task name outside pipelines)" \
    "the 400 says what is missing"
is "$(get '/v1/tests?name=billing&limit=5000')/$(jq -r .error "$B")" "400/limit: must be an integer from 1 to 1000" \
    "a limit past 1000: 400"
is "$(get '/v1/tests/history?name=billing')" 400 "history without test: 400"
is "$(get '/v1/tests/history?name=billing&test=no::such')" 404 "history of an unknown test: 404"
code=$(curl -s -o "$B" -w '%{http_code}' -X POST -H "Authorization: Bearer $T" "$DEVSYS_URL/v1/tasks" \
    -d '{"kind":"testing","command":["true"],"testing":{"junit":["x.xml"],"input":""}}')
is "$code/$(jq -r '.errors[0].message' "$B")" "400/testing.input: must be a string of 1 to 256 bytes" \
    "an empty testing.input: 400 naming it"
is "$(it_psql "SELECT count(*) FROM test_runs WHERE scope = 'name:billing'")" 7 "one run row per testcase (7)"

# ---- the report is parsed off the loop: a 60 MB report does not stop the agent
cat >"$W/big.py" <<'EOF2'
import os
prop = ''.join('<property name="p%d" value="v"/>' % i for i in range(12))
with open('big.xml.tmp', 'w') as f:
    f.write('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites><testsuite name="big">\n')
    for i in range(99000):
        f.write('<testcase classname="big.c%d" name="t%d" time="0.001"><properties>%s</properties>'
                '<system-out>%s</system-out></testcase>\n' % (i % 100, i, prop, 'x' * 120))
    f.write('</testsuite></testsuites>\n')
os.rename('big.xml.tmp', 'big.xml')
open('big.done', 'w').close()
EOF2
big=$(ctl submit - <<<"$(jq -nc --arg w "$W" '{kind: "testing", name: "big", workdir: $w, command: ["python3", "big.py"],
    testing: {junit: ["big.xml"], max_report_bytes: 67108864}}')")
ok "the 60 MB report is written" it_wait_for 120 "[ -e '$W/big.done' ]"
quick=$(ctl submit - <<<'{"kind":"exec","command":["true"]}')
ok "an exec task submitted after the command ended succeeds" it_wait_state 60 "$quick" succeeded
is "$(it_psql "SELECT state FROM tasks WHERE id='$big'")" running \
    "while the testing task is still parsing its report (its outcome is not yet recorded)"
ok "the agent's /readyz answers meanwhile" curl -sf "${AGENT_METRICS[a1]}/readyz"
ok "then the big report's task succeeds" it_wait_state 120 "$big" succeeded
is "$(it_psql "SELECT summary->>'tests' || ' ' || coalesce(summary->>'xml_omitted', '') FROM task_reports WHERE task_id='$big'")" \
    "99000 the reports exceed 8 MiB" "all 99000 testcases counted; the XML is too large to keep"
is "$(it_psql "SELECT count(*) FROM test_runs WHERE task_id='$big'")" 20000 \
    "history keeps the first 20000 testcases of a report"
is "$(it_psql "SELECT result->'report'->>'history_unrecorded' FROM tasks WHERE id='$big'")" 79000 \
    "the summary counts the rest"
rm -f "$W"/big.xml

# ---- retention: history older than DEVSYS_RETENTION_TEST_HISTORY_S goes, in bounded passes
it_psql "UPDATE test_runs SET at = at - interval '2 hours' WHERE scope = 'name:retry-suite';
         UPDATE test_stats SET last_at = last_at - interval '2 hours', flaky_at = flaky_at - interval '2 hours'
          WHERE scope = 'name:retry-suite';
         UPDATE test_stats SET flaky_at = flaky_at - interval '2 hours' WHERE scope = 'name:input-suite'" >/dev/null
kept=$(it_psql "SELECT count(*) FROM test_runs WHERE scope <> 'name:retry-suite'")
it_stop_manager
export DEVSYS_RETENTION_S=1 DEVSYS_RETENTION_TEST_HISTORY_S=3600 DEVSYS_RETENTION_BATCH=1
it_start_manager || it_bail "restart manager with a 1 h test history"
ok "the runs older than 1 h are deleted, one row per pass" \
    it_wait_sql 60 "SELECT count(*) FROM test_runs WHERE scope = 'name:retry-suite'" 0
is "$(get '/v1/tests?name=retry-suite')/$(jq -c .tests "$B")" "200/[]" "its tests are gone from GET /v1/tests"
is "$(it_psql "SELECT count(*) FROM test_runs WHERE scope <> 'name:retry-suite'")" "$kept" "newer history is kept"
ok "a test flaky more than 1 h ago is flaky no more" \
    it_wait_sql 30 "SELECT count(*) FROM test_stats WHERE scope = 'name:input-suite' AND flaky_at IS NOT NULL" 0
like "$(cat "$IT_DIR/manager.log")" 'retention: test history: 1 runs and 0 tests deleted' "the passes are logged"
it_done
