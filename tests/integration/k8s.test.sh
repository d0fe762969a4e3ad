#!/usr/bin/env bash
# deploy/k8s: each overlay renders with `kubectl kustomize`, every rendered
# object validates against the Kubernetes and KEDA JSON schemas (npm
# kubernetes-models + @kubernetes-models/keda), and the operational rules a
# schema cannot see hold (tests/tools/k8s_check.py): probes, limits, non-root,
# drain grace, one lag-mode redis-streams ScaledObject per agent Deployment on
# the real stream keys and consumer group. Needs no store.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
cd "$ds_root" || it_bail "cd $ds_root"
# skip DESC REASON: a TAP skip (counted as passed-with-skip by tests/run).
skip() { IT_N=$((IT_N + 1)); printf 'ok %d - %s # SKIP %s\n' "$IT_N" "$1" "$2" >&7; }

# kubectl is not a Debian package (pkgs.k8s.io; .github/workflows/ci.yml
# installs it): without it nothing here can render, so say so and stop.
if ! command -v kubectl >/dev/null; then
    skip "deploy/k8s overlays render and validate" "kubectl not installed (pkgs.k8s.io, see .github/workflows/ci.yml)"
    it_done
    exit 0
fi

to_json() { python3 -c 'import sys, yaml, json; json.dump([d for d in yaml.safe_load_all(sys.stdin) if d], sys.stdout)'; }

group=$(sed -n 's/^#define QUEUE_GROUP "\(.*\)"$/\1/p' common/queue.h)
levels=$(grep -A1 'level_suffix\[QUEUE_LEVELS\] = {' common/queue.c | grep -o '"stream[^"]*"' | tr -d '"' | paste -sd,)
is "$group" agents "the consumer group the agents read (common/queue.h)"
like "$levels" '^stream[^,]*,stream[^,]*,stream[^,]*$' "the three priority streams of a queue (common/queue.c): $levels"

npm_dir=''
if npm_dir=$(tests/tools/npm-tools 2>"$IT_DIR/npm-tools.err"); then :; else
    npm_dir=''
    it_diag "npm-tools: $(tail -n 3 "$IT_DIR/npm-tools.err")"
fi
validate() { node tests/tools/k8s_validate.js "$npm_dir" "$1"; }

namespaces=()
for overlay in staging production; do
    out=$IT_DIR/$overlay
    ok "kubectl kustomize deploy/k8s/overlays/$overlay renders" \
        sh -c "kubectl kustomize deploy/k8s/overlays/$overlay >'$out.yaml'" || continue
    to_json <"$out.yaml" >"$out.json" || it_bail "$overlay: rendered YAML parses"
    namespaces+=("$(jq -r '[.[].metadata.namespace // empty] | unique | join(",")' "$out.json")")
    if [[ -n $npm_dir ]]; then
        ok "$overlay: every object validates against the Kubernetes and KEDA schemas" validate "$out.json"
    else
        skip "$overlay: schema validation" "npm registry unreachable (tests/tools/npm-tools failed)"
    fi
    ok "$overlay: probes, limits, non-root, drain grace, PDBs, ScaledObjects" \
        python3 tests/tools/k8s_check.py "$out.json" "$group" "$levels"
    is "$(jq '[.[] | select(.kind == "ScaledObject")] | length' "$out.json")" \
        "$(jq '[.[] | select(.kind == "Deployment" and .spec.template.metadata.labels["app.kubernetes.io/component"] == "agent")] | length' "$out.json")" \
        "$overlay: one ScaledObject per agent Deployment"
done
is "${namespaces[*]}" "devsys-staging devsys" "each overlay has its own namespace"

# The checks see what they must refuse (they are not vacuous).
bad=$IT_DIR/bad.json
jq '(.[] | select(.kind == "ScaledObject") | .spec.triggers[0].metadata.lagCount) |= 10' \
    "$IT_DIR/production.json" >"$bad"
if [[ -n $npm_dir ]]; then
    like "$(validate "$bad")" 'invalid ScaledObject devsys-agent-build' \
        "the schema check refuses a ScaledObject with a number where KEDA wants a string"
    jq '(.[] | select(.kind == "Deployment") | .spec.replicas) |= "two"' "$IT_DIR/production.json" >"$bad"
    like "$(validate "$bad")" 'invalid Deployment' "the schema check refuses a Deployment with replicas \"two\""
else
    skip "the schema check refuses broken objects" "npm registry unreachable"
fi
jq '(.[] | select(.kind == "ScaledObject") | .spec.triggers[1].metadata.consumerGroup) |= "workers"
    | (.[] | select(.kind == "Deployment" and .metadata.name == "devsys-agent-ops")
       | .spec.template.spec.terminationGracePeriodSeconds) |= 30
    | (.[] | select(.kind == "Deployment" and .metadata.name == "devsys-manager")
       | .spec.template.spec.securityContext.runAsNonRoot) |= false' \
    "$IT_DIR/production.json" >"$bad"
got=$(python3 tests/tools/k8s_check.py "$bad" "$group" "$levels")
like "$got" 'consumerGroup workers is not agents' "the rule check sees a wrong consumer group"
like "$got" 'devsys-agent-ops: terminationGracePeriodSeconds 30 < ' "the rule check sees a grace period shorter than the drain"
like "$got" 'Deployment devsys-manager: pod securityContext.runAsNonRoot is not true' "the rule check sees a root pod"
it_done
