#!/usr/bin/env bash
# The manager's artifact store: PUT /v1/artifacts/{sha256} stores a file under
# its hash (on disk as aa/bb/<sha256>), GET streams the same bytes back, HEAD
# gives the size; a wrong hash is a 400, a body over DEVSYS_ARTIFACT_MAX_BYTES
# a 413 (declared or chunked), a viewer 403, no token 401; a repeated PUT is
# idempotent. An artifact body may be larger than DEVSYS_MAX_BODY, other
# routes still not. The store is bounded: past DEVSYS_ARTIFACT_STORE_MAX_BYTES
# an upload gets 507; its GC removes files older than the retention that no
# task referenced within it (a spec's inputs, a result's artifacts) and keeps
# the referenced and the recent ones.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
export DEVSYS_ARTIFACT_DIR=$IT_DIR/store
export DEVSYS_ARTIFACT_STORE_MAX_BYTES=$((7 << 20)) DEVSYS_ARTIFACT_GC_S=0.2 DEVSYS_ARTIFACT_RETENTION_S=3600
DEVSYS_ARTIFACT_MAX_BYTES=$((3 << 20)) DEVSYS_MAX_BODY=$((1 << 20)) it_start_manager || it_bail "start manager"
it_psql "INSERT INTO api_tokens (name, role, token_hash) VALUES
         ('v', 'viewer', encode(sha256('viewer-token'), 'hex')),
         ('o', 'operator', encode(sha256('operator-token'), 'hex'))" >/dev/null
B=$IT_DIR/body
# put TOKEN SHA FILE [curl args]: prints the status
put() {
    local t=$1 sha=$2 f=$3 auth=()
    shift 3
    [[ -n $t ]] && auth=(-H "Authorization: Bearer $t")
    curl -s -o "$B" -w '%{http_code}' -X PUT "${auth[@]}" --data-binary "@$f" "$@" "$DEVSYS_URL/v1/artifacts/$sha"
}

f=$IT_DIR/a.bin
head -c $((2 << 20)) /dev/urandom >"$f" # 2 MiB: over DEVSYS_MAX_BODY, under the artifact limit
sha=$(sha256sum "$f" | cut -d' ' -f1)
is "$(put operator-token "$sha" "$f")" 201 "an operator uploads a 2 MiB artifact (over DEVSYS_MAX_BODY): 201"
is "$(jq -r '"\(.sha256) \(.size) \(.created)"' "$B")" "$sha $((2 << 20)) true" "the answer names its sha256 and size"
ok "it is on disk as aa/bb/<sha256>" cmp "$f" "$DEVSYS_ARTIFACT_DIR/${sha:0:2}/${sha:2:2}/$sha"
is "$(put operator-token "$sha" "$f")" 200 "the same upload again: 200 (idempotent)"
is "$(jq -r .created "$B")" false "... created: false"
is "$(curl -s -o "$IT_DIR/got" -w '%{http_code}' -H 'Authorization: Bearer viewer-token' "$DEVSYS_URL/v1/artifacts/$sha")" \
    200 "a viewer GETs it: 200"
ok "GET returns the same bytes" cmp "$f" "$IT_DIR/got"
like "$(curl -sI -H 'Authorization: Bearer viewer-token' "$DEVSYS_URL/v1/artifacts/$sha" | tr -d '\r')" \
    "Content-Length: $((2 << 20))" "HEAD gives its size"
is "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer viewer-token' \
    "$DEVSYS_URL/v1/artifacts/$(printf '%064d' 0)")" 404 "an unknown sha256: 404"
is "$(curl -s -o "$B" -w '%{http_code}' -H 'Authorization: Bearer viewer-token' "$DEVSYS_URL/v1/artifacts/XYZ")" \
    400 "a malformed sha256: 400"

# ---- hostile uploads
g=$IT_DIR/b.bin
echo "other bytes" >"$g"
is "$(put operator-token "$sha" "$g")" 400 "a body whose sha256 is not the path's: 400"
like "$(jq -r .error "$B")" "body sha256 is $(sha256sum "$g" | cut -d' ' -f1), not $sha" "the 400 names both hashes"
ok "the store still holds the right bytes" cmp "$f" "$DEVSYS_ARTIFACT_DIR/${sha:0:2}/${sha:2:2}/$sha"
gsha=$(sha256sum "$g" | cut -d' ' -f1)
is "$(put viewer-token "$gsha" "$g")" 403 "a viewer token cannot upload: 403"
is "$(put '' "$gsha" "$g")" 401 "no token: 401"
is "$(put bogus-token "$gsha" "$g")" 401 "an unknown token: 401"
ok "nothing of the refused uploads reached the store" test ! -e "$DEVSYS_ARTIFACT_DIR/${gsha:0:2}/${gsha:2:2}/$gsha"

big=$IT_DIR/big.bin
head -c $((4 << 20)) /dev/zero >"$big"
bsha=$(sha256sum "$big" | cut -d' ' -f1)
is "$(put operator-token "$bsha" "$big")" 413 "a 4 MiB artifact over DEVSYS_ARTIFACT_MAX_BYTES (3 MiB): 413"
like "$(jq -r .error "$B")" "DEVSYS_ARTIFACT_MAX_BYTES" "the 413 names the limit"
is "$(put operator-token "$bsha" "$big" -H 'Transfer-Encoding: chunked')" 413 "the same body chunked: 413"
ok "no temp file is left behind" test -z "$(ls -A "$DEVSYS_ARTIFACT_DIR/tmp")"

# other routes keep DEVSYS_MAX_BODY
is "$(curl -s -o "$B" -w '%{http_code}' -H 'Authorization: Bearer operator-token' --data-binary "@$f" \
    "$DEVSYS_URL/v1/tasks")" 413 "a 2 MiB body on POST /v1/tasks is still refused (DEVSYS_MAX_BODY 1 MiB)"
is "$(curl -s -o "$B" -w '%{http_code}' -H 'Authorization: Bearer operator-token' -H 'Transfer-Encoding: chunked' \
    --data-binary "@$f" "$DEVSYS_URL/v1/tasks")" 413 "... chunked too"
is "$(it_psql "SELECT count(*) FROM audit_log WHERE action = 'artifact.put' AND target = '$sha' AND actor LIKE '%o%'")" 1 \
    "the upload is in the audit log once, with its caller"

# ---- the bound: a total cap, and the GC of unreferenced old artifacts
file_of() { printf '%s/%s/%s/%s\n' "$DEVSYS_ARTIFACT_DIR" "${1:0:2}" "${1:2:2}" "$1"; }
mk() { head -c "$2" /dev/urandom >"$IT_DIR/$1"; sha256sum "$IT_DIR/$1" | cut -d' ' -f1; }
c1=$(mk c1 $((3 << 20))) c2=$(mk c2 $((3 << 20))) r1=$(mk r1 1000)
is "$(put operator-token "$c1" "$IT_DIR/c1")" 201 "2 + 3 MiB in the store (cap 7 MiB): 201"
is "$(put operator-token "$c2" "$IT_DIR/c2")" 507 "3 MiB more would pass the cap: 507"
like "$(jq -r .error "$B")" 'artifact store full: .*DEVSYS_ARTIFACT_STORE_MAX_BYTES' "the 507 names the cap"
is "$(put operator-token "$c1" "$IT_DIR/c1")" 200 "a file the store has is never refused: 200"
is "$(put operator-token "$r1" "$IT_DIR/r1")" 201 "a small one fits: 201"
# $sha is an input of a task, $r1 an artifact of a task's result; all three
# files are made two hours old, past the one-hour retention
curl -s -H 'Authorization: Bearer operator-token' "$DEVSYS_URL/v1/tasks" -d '{"kind":"noop","queue":"gc","inputs":{"build":
    {"artifacts":[{"path":"a.bin","sha256":"'"$sha"'","size":'$((2 << 20))'}]}}}' >/dev/null
rtask=$(curl -s -H 'Authorization: Bearer operator-token' "$DEVSYS_URL/v1/tasks" -d '{"kind":"noop","queue":"gc"}' | jq -r '.tasks[0].id')
it_psql "UPDATE tasks SET result = '{\"artifacts\":[{\"path\":\"r\",\"sha256\":\"$r1\",\"size\":1000}]}' WHERE id = '$rtask'" \
    >/dev/null # what an agent's completion writes
is "$(it_psql "SELECT count(*) FROM artifact_refs WHERE sha256 IN ('$sha', '$r1')")" 2 "both references are recorded"
touch -d '2 hours ago' "$(file_of "$sha")" "$(file_of "$c1")" "$(file_of "$r1")"
ok "the GC removes the old unreferenced file" it_wait_for 20 "test ! -e $(file_of "$c1")"
ok "... and keeps the input of a task" test -e "$(file_of "$sha")"
ok "... and the artifact of a task's result" test -e "$(file_of "$r1")"
is "$(put operator-token "$c2" "$IT_DIR/c2")" 201 "the room it freed takes the upload refused before: 201"
it_psql "UPDATE artifact_refs SET ref_at = now() - interval '2 hours' WHERE sha256 = '$sha'" >/dev/null
ok "a file whose last reference is past the retention goes too" it_wait_for 20 "test ! -e $(file_of "$sha")"
ok "... its reference row with it" it_wait_sql 20 "SELECT count(*) FROM artifact_refs WHERE sha256 = '$sha'" 0
ok "a recent unreferenced file stays" test -e "$(file_of "$c2")"
like "$(curl -s "$DEVSYS_URL/metrics")" 'devsys_artifacts_collected_total 2' "the metric counts the two removals"
it_done
