#!/usr/bin/env bash
# The manager's artifact store: PUT /v1/artifacts/{sha256} stores a file under
# its hash (on disk as aa/bb/<sha256>), GET streams the same bytes back, HEAD
# gives the size; a wrong hash is a 400, a body over DEVSYS_ARTIFACT_MAX_BYTES
# a 413 (declared or chunked), a viewer 403, no token 401; a repeated PUT is
# idempotent. An artifact body may be larger than DEVSYS_MAX_BODY, other
# routes still not.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
export DEVSYS_ARTIFACT_DIR=$IT_DIR/store
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
it_done
