#!/usr/bin/env bash
# compose.test.sh: compose.yaml is valid for docker-compose 1.29 and keeps its
# promises: agents scale (no container_name, no host ports), redis persists
# with AOF, migrations gate the manager and agents, every store has a health
# check; the Dockerfile has the targets compose builds; the systemd units parse.
# No default secret (no token, no config) and the API on loopback by default.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"

cd "$ds_root" || it_bail "cd $ds_root"
command -v docker-compose >/dev/null || it_bail "docker-compose installed" "apt-get install docker-compose"

# No default secret: without DEVSYS_ADMIN_TOKEN compose refuses, saying what to set.
out=$(env -u DEVSYS_ADMIN_TOKEN docker-compose -f compose.yaml config -q 2>&1)
is "$?" 1 "docker-compose config without DEVSYS_ADMIN_TOKEN fails"
like "$out" 'set DEVSYS_ADMIN_TOKEN' "  and says to set DEVSYS_ADMIN_TOKEN"
ok "compose.yaml ships no default token" it_not grep -qi 'change-me' compose.yaml
export DEVSYS_ADMIN_TOKEN=compose-test-token
ok "docker-compose config -q accepts compose.yaml" docker-compose -f compose.yaml config -q
docker-compose -f compose.yaml config >"$IT_DIR/config.yaml" 2>"$IT_DIR/config.err" \
    || it_bail "docker-compose config" "$(cat "$IT_DIR/config.err")"

# q PYTHON-EXPR: evaluates EXPR with `s` = the normalized services mapping.
q() {
    python3 -c '
import sys, yaml
s = yaml.safe_load(open(sys.argv[1]))["services"]
print(eval(sys.argv[2]))' "$IT_DIR/config.yaml" "$1" 2>&1
}

is "$(q 'sorted(s)')" "['agent', 'manager', 'migrate', 'postgres', 'redis']" "services"
is "$(q '"container_name" in s["agent"]')" False "agent has no container_name"
is "$(q 's["agent"].get("ports", [])')" "[]" "agent publishes no host ports"
is "$(q 's["agent"].get("network_mode", "")')" "" "agent uses the default network"
like "$(q '" ".join(s["redis"]["command"]) if isinstance(s["redis"]["command"], list) else s["redis"]["command"]')" \
    '--appendonly yes' "redis runs with appendonly yes"
like "$(q 's["redis"].get("volumes")')" '/data' "redis keeps /data on a volume"
like "$(q 's["postgres"].get("volumes")')" '/var/lib/postgresql/data' "postgres keeps its data on a volume"
for svc in redis postgres manager; do
    is "$(q "'test' in s['$svc'].get('healthcheck', {})")" True "$svc has a healthcheck"
done
is "$(q 's["migrate"]["depends_on"]["postgres"]["condition"]')" service_healthy \
    "migrate waits for a healthy postgres"
like "$(q 's["migrate"]["command"]')" 'migrate' "migrate runs devsys-manager migrate"
for svc in manager agent; do
    is "$(q "s['$svc']['depends_on']['migrate']['condition']")" service_completed_successfully \
        "$svc waits for migrations to complete"
done
like "$(q 's["manager"]["ports"]')" "^\\['127\\.0\\.0\\.1:8080:8080(/tcp)?'\\]$" \
    "manager publishes 8080 on the loopback interface only"
is "$(q 's["manager"]["environment"]["DEVSYS_ADMIN_TOKEN"]')" compose-test-token "the manager gets the token set"

like "$(q 's["agent"]["environment"]["DEVSYS_QUEUES"]')" 'exec' "agent has DEVSYS_QUEUES"
# pipelines: the artifact store on the manager, artifacts settings and a deploy root on the agents
is "$(q 's["agent"]["environment"]["DEVSYS_DEPLOY_ROOT"]')" /var/lib/devsys/deploy "agent has DEVSYS_DEPLOY_ROOT"
like "$(q 's["agent"].get("volumes")')" '/var/lib/devsys/deploy' "  on a volume"
is "$(q 's["agent"]["environment"]["DEVSYS_MANAGER_URL"]')" http://manager:8080 "agent fetches artifacts from the manager"
is "$(q '"DEVSYS_AGENT_TOKEN" in s["agent"]["environment"]')" True "  with DEVSYS_AGENT_TOKEN"
is "$(q 's["manager"]["environment"]["DEVSYS_ARTIFACT_DIR"]')" /var/lib/devsys/artifacts "manager has DEVSYS_ARTIFACT_DIR"
like "$(q 's["manager"].get("volumes")')" '/var/lib/devsys/artifacts' "  on a volume"
# the libraries the build links (meson.build's dependencies) and their runtime packages
for pkg in libcurl4-openssl-dev libsodium-dev libxml2-dev libcmocka-dev libcurl4 libsodium23 libxml2; do
    ok "deploy/Dockerfile installs $pkg" grep -qE "(^| )$pkg( |$)" deploy/Dockerfile
done

# The build targets compose names exist in the Dockerfile.
for target in $(q '" ".join(sorted({v["build"]["target"] for v in s.values() if "build" in v}))'); do
    ok "deploy/Dockerfile has target $target" grep -qiE "^FROM .* AS $target\$" deploy/Dockerfile
done
ok "the runtime image runs as a non-root user" grep -qE '^USER devsys' deploy/Dockerfile

# systemd units: no syntax problem other than the binaries not being installed here.
if command -v systemd-analyze >/dev/null; then
    for u in deploy/systemd/devsys-manager.service deploy/systemd/devsys-agent@.service; do
        cp "$u" "$IT_DIR/$(basename "${u/@./@1.}")"
        out=$(systemd-analyze verify "$IT_DIR/$(basename "${u/@./@1.}")" 2>&1 \
            | grep -v 'is not executable' | grep -v '^$')
        is "$out" "" "systemd-analyze verify $(basename "$u")"
    done
fi

it_done
