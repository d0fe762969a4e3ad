#!/usr/bin/env bash
# Kind testing end to end: a real `meson test` on a tiny meson project made
# here (one C test passes, one fails, one skips) fails its task naming the
# failing test; fixed, the task succeeds with the right counts. Real
# `ctest --output-junit` and `pytest --junitxml` runs too (when installed). The reports are read back through the API
# (XML and summary, latest by name) and devsysctl report; missing and hostile
# reports fail with a clear error; a bad testing section is a 400 at submit.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
it_start_manager || it_bail "start manager"
it_start_agent a1 DEVSYS_QUEUES=testing,exec
T=test-admin-token
# get PATH BODY-FILE HEADERS-FILE: prints the HTTP status
get() { curl -s -o "$2" -D "$3" -w '%{http_code}' -H "Authorization: Bearer $T" "$DEVSYS_URL$1"; }
B=$IT_DIR/body H=$IT_DIR/headers

# ---- a meson project: adds passes, subtracts fails, skips skips (exit 77)
P=$IT_DIR/proj
mkdir -p "$P"
cat >"$P/meson.build" <<'EOF'
project('tiny', 'c')
test('adds', executable('adds', 'adds.c'))
test('subtracts', executable('subtracts', 'subtracts.c'))
test('skips', executable('skips', 'skips.c'))
EOF
echo 'int main(void) { return 1 + 1 == 2 ? 0 : 1; }' >"$P/adds.c"
printf '#include <stdio.h>\nint main(void) { puts("2 - 1 != 3"); return 2 - 1 == 3 ? 0 : 1; }\n' >"$P/subtracts.c"
echo 'int main(void) { return 77; }' >"$P/skips.c"
spec=$(jq -nc --arg w "$P" '{kind: "testing", name: "tiny-unit", workdir: $w,
    command: ["sh", "-c", "[ -d build ] || meson setup build >/dev/null; meson test -C build"],
    testing: {junit: ["build/meson-logs/testlog.junit.xml"]}}')

id1=$(ctl submit - <<<"$spec")
like "$id1" '^[0-9a-f-]{36}$' "the testing task is accepted"
ok "with a failing test the task ends dead" it_wait_state 180 "$id1" dead
is "$(it_psql "SELECT attempt || ' ' || last_error FROM tasks WHERE id='$id1'")" \
    "1 exit status 1; 1 test failed: tiny.subtracts" \
    "not retried (failing tests are permanent), and the error names the failing test"
is "$(it_psql "SELECT concat_ws(' ', result->'report'->>'tests', result->'report'->>'failures',
                   result->'report'->>'skipped', result->'report'->>'passed', result->>'exit_code')
               FROM tasks WHERE id='$id1'")" "3 1 1 1 1" "the task's result carries the summary: 3 tests, 1 failed, 1 skipped"

is "$(get "/v1/tasks/$id1/report?format=summary" "$B" "$H")" 200 "GET report?format=summary: 200"
is "$(jq -r '[.summary.tests, .summary.failures, .summary.errors, .summary.skipped, .attempt] | join(" ")' "$B")" \
    "3 1 0 1 1" "the summary counts the meson run"
is "$(jq -r '.summary.failed[0] | "\(.classname) \(.name): \(.message)"' "$B")" "tiny subtracts: 2 - 1 != 3" \
    "the failed test with its message (meson's output line)"
is "$(get "/v1/tasks/$id1/report" "$B" "$H")" 200 "GET report: 200"
like "$(grep -i '^content-type' "$H")" 'application/xml' "the report is served as application/xml"
ok "the XML is well-formed" xmllint --noout "$B"
is "$(xmllint --xpath 'count(//testcase[failure])' "$B")" 1 "the stored XML has the one failed testcase"
is "$(xmllint --xpath 'string(//testcase[failure]/@name)' "$B")" subtracts "named subtracts"

out=$(ctl report "$id1")
like "$out" 'tests: +3  passed 1  failed 1  errors 0  skipped 1  flaky 0' "devsysctl report prints the counts"
like "$out" 'tiny +subtracts +2 - 1 != 3' "devsysctl report lists the failed test with its message"
like "$(ctl report --xml "$id1")" '<testcase name="subtracts"' "devsysctl report --xml prints the XML"

# ---- fixed: the same spec succeeds
printf '#include <stdio.h>\nint main(void) { return 2 - 1 == 1 ? 0 : 1; }\n' >"$P/subtracts.c"
id2=$(ctl submit - <<<"$spec")
ok "fixed, the testing task succeeds" it_wait_state 180 "$id2" succeeded
is "$(get "/v1/tasks/$id2/report?format=summary" "$B" "$H")" 200 "its report: 200"
is "$(jq -r '[.summary.tests, .summary.failures, .summary.skipped, .summary.passed, (.summary.failed | length)] | join(" ")' "$B")" \
    "3 0 1 2 0" "3 tests, none failed, 1 skipped, 2 passed"
is "$(get "/v1/reports/latest?name=tiny-unit&format=summary" "$B" "$H")" 200 "GET reports/latest?name=: 200"
is "$(jq -r '.task_id + " " + (.summary.failures | tostring)' "$B")" "$id2 0" "the latest report of the name is the fixed run"
is "$(get "/v1/reports/latest?name=tiny-unit" "$B" "$H")" 200 "latest as XML: 200"
is "$(xmllint --xpath 'count(//testcase)' "$B")" 3 "with its 3 testcases"
is "$(get "/v1/reports/latest?name=nobody" "$B" "$H")" 404 "no report of that name: 404"
is "$(get "/v1/reports/latest" "$B" "$H")" 400 "no name: 400"
is "$(jq -r .error "$B")" "pipeline or name: required (the pipeline name, or the task name, whose latest report to show)" \
    "the 400 says what is missing"
is "$(get "/v1/tasks/$id2/report?format=yaml" "$B" "$H")" 400 "an unknown format: 400"
is "$(it_psql "SELECT count(*) FROM task_reports")" 2 "one report row per attempt that read a report"

# ---- ctest --output-junit
if command -v ctest >/dev/null && command -v cmake >/dev/null; then
    C=$IT_DIR/cmake
    mkdir -p "$C"
    cat >"$C/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.18)
project(tiny C)
enable_testing()
add_executable(ok ok.c)
add_executable(bad bad.c)
add_test(NAME math.ok COMMAND ok)
add_test(NAME math.bad COMMAND bad)
add_test(NAME math.skip COMMAND ok)
set_tests_properties(math.skip PROPERTIES DISABLED TRUE)
EOF
    echo 'int main(void) { return 0; }' >"$C/ok.c"
    printf '#include <stdio.h>\nint main(void) { puts("expected 3, got 4"); return 2; }\n' >"$C/bad.c"
    id=$(ctl submit - <<<"$(jq -nc --arg w "$C" '{kind: "testing", workdir: $w,
        command: ["sh", "-c", "cmake -S . -B b >/dev/null && cmake --build b >/dev/null && cd b && ctest --output-junit junit.xml"],
        testing: {junit: ["b/*.xml"]}}')")
    ok "a failing ctest run ends dead" it_wait_state 180 "$id" dead
    like "$(it_psql "SELECT last_error FROM tasks WHERE id='$id'")" '1 test failed: math.bad.math.bad$' \
        "the error names the ctest test"
    is "$(get "/v1/tasks/$id/report?format=summary" "$B" "$H")" 200 "its report: 200"
    is "$(jq -r '[.summary.tests, .summary.failures, .summary.skipped, .summary.passed] | join(" ")' "$B")" "3 1 1 1" \
        "ctest's counts: the disabled test is skipped"
else
    it_diag "ctest not installed: ctest part skipped"
fi

# ---- pytest --junitxml (xunit2)
if python3 -c 'import pytest' 2>/dev/null; then
    Y=$IT_DIR/pyproj
    mkdir -p "$Y"
    cat >"$Y/test_calc.py" <<'EOF'
import pytest

def test_adds():
    assert 1 + 1 == 2

def test_divides():
    assert 7 // 2 == 4, "7 // 2 is 3"

@pytest.mark.skip(reason="not today")
def test_later():
    pass

@pytest.mark.parametrize("n", [1, 2])
def test_positive(n):
    assert n > 0
EOF
    id=$(ctl submit - <<<"$(jq -nc --arg w "$Y" '{kind: "testing", name: "py", workdir: $w,
        command: ["python3", "-m", "pytest", "-q", "-p", "no:cacheprovider", "--junitxml=out/report.xml",
                  "-o", "junit_family=xunit2"],
        testing: {junit: ["out/report.xml"]}}')")
    ok "a failing pytest run ends dead" it_wait_state 120 "$id" dead
    like "$(it_psql "SELECT last_error FROM tasks WHERE id='$id'")" \
        '^exit status 1; 1 test failed: test_calc.test_divides$' "the error names the pytest test"
    is "$(get "/v1/tasks/$id/report?format=summary" "$B" "$H")" 200 "its report: 200"
    is "$(jq -r '[.summary.tests, .summary.failures, .summary.errors, .summary.skipped, .summary.passed] | join(" ")' "$B")" \
        "5 1 0 1 3" "pytest's counts: 5 tests (a parametrized one twice), 1 failed, 1 skipped"
    like "$(jq -r '.summary.failed[0].message' "$B")" '7 // 2 is 3' "with pytest's assertion message"
else
    it_diag "pytest not installed (apt-get install python3-pytest): pytest part skipped"
fi

# ---- missing and hostile reports
id=$(ctl submit - <<<'{"kind":"testing","command":["true"],"testing":{"junit":["nope.xml","out/*.xml"]}}')
ok "missing reports: dead" it_wait_state 60 "$id" dead
is "$(it_psql "SELECT attempt || ' ' || last_error FROM tasks WHERE id='$id'")" \
    "1 JUnit reports: nope.xml: missing; out/*.xml: missing (no file matches)" \
    "the error lists what is missing, not retried"
is "$(get "/v1/tasks/$id/report" "$B" "$H")" 404 "no report was stored: 404"
like "$(jq -r .error "$B")" "has no test report" "the 404 says so"

W=$IT_DIR/hostile
mkdir -p "$W"
# hostile FILE: submits a testing task whose report is tests/data/junit/FILE
# (copied into $W, its command does nothing); prints the task id.
hostile() {
    cp "$ds_root/tests/data/junit/$1" "$W/$1"
    ctl submit - <<<"$(jq -nc --arg w "$W" --arg f "$1" '{kind: "testing", workdir: $w, command: ["true"],
        testing: {junit: [$f]}}')"
}
for f in billion-laughs.xml external-entity.xml; do
    id=$(hostile "$f")
    ok "$f (entity expansion, external entity): dead" it_wait_state 60 "$id" dead
    is "$(it_psql "SELECT last_error FROM tasks WHERE id='$id'")" \
        "JUnit report: $f: line 2: a DOCTYPE is not allowed in a JUnit report (no DTDs or entities)" \
        "refused with a clear error, before any entity is declared or read"
done
ok "nothing of /etc/passwd was stored" \
    it_not grep -q root: <<<"$(it_psql "SELECT coalesce(result::text, '') FROM tasks WHERE id='$id'")"
id=$(hostile truncated.xml)
ok "a truncated report: dead" it_wait_state 60 "$id" dead
like "$(it_psql "SELECT last_error FROM tasks WHERE id='$id'")" \
    '^JUnit report: truncated.xml: line [0-9]+: malformed XML: .+' "refused as malformed XML with libxml2's reason"
id=$(ctl submit - <<<"$(jq -nc --arg w "$W" '{kind: "testing", workdir: $w,
    command: ["sh", "-c", "head -c 52428800 /dev/zero > huge.xml"], testing: {junit: ["huge.xml"]}}')")
ok "a 50 MB report over the default limit: dead" it_wait_state 60 "$id" dead
is "$(it_psql "SELECT last_error FROM tasks WHERE id='$id'")" \
    "JUnit report: huge.xml: 52428800 bytes exceeds the limit of 16777216 bytes" "refused by the 16 MiB default"
rm -f "$W/huge.xml"
id=$(ctl submit - <<<"$(jq -nc --arg w "$W" '{kind: "testing", workdir: $w,
    command: ["sh", "-c", "head -c 20000000 /dev/zero > big.xml"],
    testing: {junit: ["big.xml"], max_report_bytes: 1048576}}')")
ok "an over-size report: dead" it_wait_state 60 "$id" dead
is "$(it_psql "SELECT last_error FROM tasks WHERE id='$id'")" \
    "JUnit report: big.xml: 20000000 bytes exceeds the limit of 1048576 bytes" "refused by the byte cap"
id=$(ctl submit - <<<"$(jq -nc --arg w "$W" '{kind: "testing", workdir: $w,
    command: ["sh", "-c", "for i in 1 2 3 4 5; do head -c 15000000 /dev/zero > many-$i.xml; done"],
    testing: {junit: ["many-*.xml"]}}')")
ok "five 15 MB reports: dead" it_wait_state 60 "$id" dead
like "$(it_psql "SELECT last_error FROM tasks WHERE id='$id'")" \
    'many-1.xml: line 1: malformed XML.*; many-5.xml: the reports exceed 67108864 bytes in total$' \
    "past 64 MiB in total the files are not read at all"
rm -f "$W"/many-*.xml
ok "the agent is still running" kill -0 "${AGENT_PIDS[a1]}"

# ---- a bad testing section: 400 at submit, naming the field
code=$(curl -s -o "$B" -w '%{http_code}' -X POST -H "Authorization: Bearer $T" "$DEVSYS_URL/v1/tasks" \
    -d '{"kind":"testing","command":["true"],"testing":{"junit":["../x.xml"]}}')
is "$code" 400 "a junit path with .. : 400"
is "$(jq -r '.errors[0].field' "$B")" 'testing.junit[0]' "the 400 names the field"
is "$(jq -r '.errors[0].message' "$B")" 'testing.junit[0]: must not contain a ".." segment' "and the rule"
code=$(curl -s -o "$B" -w '%{http_code}' -X POST -H "Authorization: Bearer $T" "$DEVSYS_URL/v1/tasks" \
    -d '{"kind":"testing","command":["true"]}')
is "$code/$(jq -r '.errors[0].message' "$B")" "400/testing: required for kind testing" "the section is required"

# ---- a task of another kind has no report
id=$(ctl submit - <<<'{"kind":"exec","command":["true"]}')
ok "an exec task succeeds" it_wait_state 60 "$id" succeeded
is "$(get "/v1/tasks/$id/report" "$B" "$H")" 404 "an exec task has no report: 404"
is "$(get "/v1/tasks/00000000-0000-0000-0000-000000000000/report" "$B" "$H")/$(jq -r .error "$B")" \
    "404/task not found" "an unknown task: 404"
it_done
