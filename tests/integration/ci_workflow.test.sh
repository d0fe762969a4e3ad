#!/usr/bin/env bash
# .github/workflows/ci.yml: parses as YAML, validates against the GitHub
# workflow JSON schema (SchemaStore's, vendored in tests/data/schemas) with
# ajv-cli, and runs the same `bash .ci/run` as a local CI run.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
cd "$ds_root" || it_bail "cd $ds_root"
WF=.github/workflows/ci.yml
SCHEMA=tests/data/schemas/github-workflow.json

# skip DESC REASON: a TAP skip (counted as passed-with-skip by tests/run).
skip() { IT_N=$((IT_N + 1)); printf 'ok %d - %s # SKIP %s\n' "$IT_N" "$1" "$2" >&7; }

ok "$WF parses as YAML" python3 -c 'import sys, yaml; yaml.safe_load(open(sys.argv[1]))' "$WF"
steps=$(python3 -c 'import sys, json, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))["jobs"]["ci"]["steps"]))' "$WF")
like "$(jq -r '.[].run // empty' <<<"$steps")" '(^|
)bash \.ci/run($|
)' "the ci job runs bash .ci/run"
ok "the ci job checks the code out first" test "$(jq -r '[.[] | .uses // "" | startswith("actions/checkout@")] | index(true)' <<<"$steps")" -lt \
    "$(jq -r '[.[] | .run // "" | test("bash \\.ci/run")] | index(true)' <<<"$steps")"

validate() {
    "$npm_dir/node_modules/.bin/ajv" validate --spec=draft7 --strict=false -c ajv-formats \
        -s "$SCHEMA" -d "$1" 2>&1
}
if npm_dir=$(tests/tools/npm-tools 2>"$IT_DIR/npm-tools.err"); then
    ok "$WF validates against the GitHub workflow schema" validate "$WF"
    # a workflow GitHub would refuse: a job without runs-on, a step key that does not exist
    sed -e '/runs-on:/d' -e 's/^      - uses: actions\/checkout@v4$/      - usez: actions\/checkout@v4/' \
        "$WF" >"$IT_DIR/bad.yml"
    ok "the schema check refuses a broken workflow" it_not validate "$IT_DIR/bad.yml"
else
    it_diag "npm-tools: $(tail -n 3 "$IT_DIR/npm-tools.err")"
    skip "$WF validates against the GitHub workflow schema" "npm registry unreachable (tests/tools/npm-tools failed)"
fi
it_done
