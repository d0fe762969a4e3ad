#!/usr/bin/env bash
# Outputs, artifacts, inputs and workspaces end to end with a real manager
# (artifact store on disk) and agent: a step writes $DEVSYS_RESULT and two
# expected artifacts -> the result has the output and both artifacts with the
# sha256 sha256sum computes, and GET /v1/artifacts/<sha> returns the bytes; a
# missing artifact fails naming it; a bad result document fails saying why;
# a task with "inputs" gets the files under inputs/<node>/ and
# $DEVSYS_INPUTS; a wrong sha256 in inputs fails clearly; workspaces go away
# after DEVSYS_WORKSPACE_RETENTION_S.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
export DEVSYS_ARTIFACT_DIR=$IT_DIR/store
it_start_manager || it_bail "start manager"
it_psql "INSERT INTO api_tokens (name, role, token_hash) VALUES
         ('agent', 'operator', encode(sha256('agent-token'), 'hex'))" >/dev/null
WS=$IT_DIR/ws
it_start_agent a1 DEVSYS_QUEUES=exec DEVSYS_MANAGER_URL="$DEVSYS_URL" DEVSYS_AGENT_TOKEN=agent-token \
    DEVSYS_WORKSPACE="$WS" DEVSYS_WORKSPACE_RETENTION_S=2
submit() { ctl submit - <<<"$1"; }
res() { it_psql "SELECT result FROM tasks WHERE id = '$1'"; }
err() { it_psql "SELECT last_error FROM tasks WHERE id = '$1'"; }

# ---- a step with a result document and two artifacts, in its own workspace
spec=$(jq -nc --arg out "$IT_DIR" '{kind: "exec", retry_policy: {max_attempts: 1},
  expected_artifacts: ["dist/*.tgz", "report.html"],
  command: ["sh", "-c", "mkdir -p dist && head -c 100000 /dev/urandom >dist/site.tgz && echo \"<p>ok</p>\" >report.html &&
    cp dist/site.tgz report.html \($out | @sh)/ &&
    jq -nc --arg pwd \"$PWD\" --arg ws \"$DEVSYS_WORKSPACE\" \"{version: \\\"1.2.3\\\", pwd: \\$pwd, ws: \\$ws}\" >\"$DEVSYS_RESULT\""]}')
id=$(submit "$spec")
ok "the step succeeds" it_wait_state 30 "$id" succeeded
r=$(res "$id")
is "$(jq -r .output.version <<<"$r")" 1.2.3 "result.output is the document the step wrote to \$DEVSYS_RESULT"
is "$(jq -r .output.ws <<<"$r")" "$WS/$id" "DEVSYS_WORKSPACE is DEVSYS_WORKSPACE/<task id>"
is "$(jq -r .output.pwd <<<"$r")" "$WS/$id" "without a workdir the command runs in its workspace"
is "$(jq -r .exit_code <<<"$r")" 0 "result.exit_code is 0"
sha1=$(sha256sum "$IT_DIR/site.tgz" | cut -d' ' -f1)
sha2=$(sha256sum "$IT_DIR/report.html" | cut -d' ' -f1)
is "$(jq -c '[.artifacts[] | [.path, .sha256, .size]]' <<<"$r")" \
    "[[\"dist/site.tgz\",\"$sha1\",100000],[\"report.html\",\"$sha2\",$(stat -c %s "$IT_DIR/report.html")]]" \
    "result.artifacts lists both files with their sha256 (as sha256sum says) and size"
curl -s -o "$IT_DIR/got" -H "Authorization: Bearer $DEVSYS_TOKEN" "$DEVSYS_URL/v1/artifacts/$sha1"
ok "GET /v1/artifacts/<sha256> returns the same bytes" cmp "$IT_DIR/site.tgz" "$IT_DIR/got"
is "$(stat -c %a "$WS/$id")" 700 "the workspace is private (0700)"

# ---- a missing expected artifact fails the step, naming it
id2=$(submit '{"kind":"exec","command":["sh","-c","touch a.txt"],
  "expected_artifacts":["a.txt","dist/site.tgz","report.html"],"retry_policy":{"max_attempts":1}}')
ok "a step missing expected artifacts ends dead" it_wait_state 30 "$id2" dead
is "$(err "$id2")" "expected artifacts missing: dist/site.tgz, report.html" "the error lists what is missing"

# ---- result documents too big or invalid
id3=$(submit '{"kind":"exec","command":["sh","-c","head -c 70000 /dev/zero | tr \"\\\\0\" 1 >\"$DEVSYS_RESULT\""],
  "retry_policy":{"max_attempts":1}}')
ok "a 70000-byte result document fails the step" it_wait_state 30 "$id3" dead
is "$(err "$id3")" "result: \$DEVSYS_RESULT is 70000 bytes, over the 65536-byte limit" "... saying how big and the limit"
id4=$(submit '{"kind":"exec","command":["sh","-c","echo \"{oops\" >\"$DEVSYS_RESULT\""],"retry_policy":{"max_attempts":1}}')
ok "an invalid result document fails the step" it_wait_state 30 "$id4" dead
like "$(err "$id4")" '^result: \$DEVSYS_RESULT is not valid JSON: line 1' "... saying where the JSON is wrong"

# ---- inputs: an uploaded artifact handed to a task by hand
in_sha=$sha1
spec=$(jq -nc --arg sha "$in_sha" '{kind: "exec", retry_policy: {max_attempts: 1},
  inputs: {build: {result: {version: "1.2.3"}, artifacts: [{path: "dist/site.tgz", sha256: $sha, size: 100000}]}},
  command: ["sh", "-c", "f=\"$DEVSYS_WORKSPACE/inputs/build/dist/site.tgz\"; test -f \"$f\" || exit 3;
    test \"$(sha256sum <\"$f\" | cut -d\" \" -f1)\" = \($sha | @sh) || exit 4;
    test \"$(jq -r .build.result.version \"$DEVSYS_INPUTS\")\" = 1.2.3 || exit 5;
    test \"$(jq -r \".build.artifacts[0].file\" \"$DEVSYS_INPUTS\")\" = \"$f\" || exit 6"]}')
id5=$(submit "$spec")
ok "a task with inputs finds the file in inputs/build/dist/site.tgz and \$DEVSYS_INPUTS (exits 0 only if right)" \
    it_wait_state 30 "$id5" succeeded
bad=$(printf '%064d' 7)
spec=$(jq -nc --arg sha "$bad" '{kind: "exec", command: ["true"], retry_policy: {max_attempts: 2, initial_s: 0},
  inputs: {build: {artifacts: [{path: "dist/site.tgz", sha256: $sha, size: 5}]}}}')
id6=$(submit "$spec")
ok "an input whose sha256 is not in the store: dead after its attempts" it_wait_state 30 "$id6" dead
is "$(err "$id6")" "input build/dist/site.tgz: HTTP 404 from the manager (not in the artifact store): {\"error\":\"artifact $bad: not in the store\"}" \
    "the error names the input and the 404"
is "$(it_psql "SELECT attempt FROM tasks WHERE id = '$id6'")" 2 "it was retried like any failure"
# the store holds a file whose declared size is wrong -> mismatch
spec=$(jq -nc --arg sha "$in_sha" '{kind: "exec", command: ["true"], retry_policy: {max_attempts: 1},
  inputs: {build: {artifacts: [{path: "x.tgz", sha256: $sha, size: 10}]}}}')
id7=$(submit "$spec")
ok "an input bigger than its declared size fails" it_wait_state 30 "$id7" dead
is "$(err "$id7")" "input build/x.tgz: size mismatch: more than 10 bytes, expected 10" "... saying so"

# ---- workspaces are removed after the retention (2 s here)
ok "the finished tasks' workspaces are removed after DEVSYS_WORKSPACE_RETENTION_S" \
    it_wait_for 30 "test ! -e '$WS/$id' -a ! -e '$WS/$id5'"
it_done
