#!/usr/bin/env bash
# deploy/systemd: `systemd-analyze verify` accepts both units without a single
# warning (it exits 0 on unknown keys and bad values, so any output fails),
# the sandboxing directives are there, and `systemd-analyze security` rates
# the exposure. The units name /usr/local/bin binaries, which verify wants
# to exist: it checks temp copies pointing at this build's binaries.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
cd "$ds_root" || it_bail "cd $ds_root"
command -v systemd-analyze >/dev/null || it_bail "systemd-analyze on PATH" "install systemd (./dev deps)"
[[ -x $BIN/manager/devsys-manager && -x $BIN/agents/devsys-agent ]] || it_bail "built binaries in $BIN"

units=$IT_DIR/units
mkdir -p "$units"
sed -e "s#/usr/local/bin/devsys-manager#$BIN/manager/devsys-manager#g" \
    deploy/systemd/devsys-manager.service >"$units/devsys-manager.service"
sed -e "s#/usr/local/bin/devsys-agent#$BIN/agents/devsys-agent#g" \
    deploy/systemd/devsys-agent@.service >"$units/devsys-agent@.service"
ln -s devsys-agent@.service "$units/devsys-agent@1.service"
is "$(grep -c "$BIN" "$units/devsys-manager.service") $(grep -c "$BIN" "$units/devsys-agent@.service")" "2 1" \
    "the copies run this build's binaries"

# verify UNIT: exit 0 and not a line of output.
verify() {
    local out st
    out=$(cd "$units" && systemd-analyze verify --man=no "./$1" 2>&1)
    st=$?
    [[ -n $out ]] && printf '%s\n' "$out"
    [[ $st == 0 && -z $out ]]
}
ok "systemd-analyze verify devsys-manager.service" verify devsys-manager.service
ok "systemd-analyze verify devsys-agent@1.service" verify devsys-agent@1.service

# The sandbox each unit must keep (systemd.exec(5)).
has() { grep -qx "$2" "deploy/systemd/$1" || { echo "no '$2' in $1"; return 1; }; }
for u in devsys-manager.service devsys-agent@.service; do
    for line in NoNewPrivileges=yes PrivateTmp=yes ProtectSystem=strict ProtectHome=yes \
                Restart=on-failure RestartSec=2 CapabilityBoundingSet=; do
        ok "$u: $line" has "$u" "$line"
    done
done
ok "devsys-manager.service runs as a transient user" has devsys-manager.service DynamicUser=yes
ok "devsys-agent@.service runs as the dedicated user devsys" has devsys-agent@.service User=devsys
ok "devsys-agent@.service keeps workspaces in its state directory" has devsys-agent@.service 'StateDirectory=devsys-agent/%i'
# The stop timeout covers the agent's drain (DEVSYS_SHUTDOWN_GRACE_S + DEVSYS_KILL_GRACE_S defaults).
drain=$(( $(sed -n 's/.*DEVSYS_SHUTDOWN_GRACE_S (\([0-9]*\)).*/\1/p' agents/agent.c) \
        + $(sed -n 's/.*DEVSYS_KILL_GRACE_S (\([0-9]*\)).*/\1/p' agents/agent.c) ))
stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)$/\1/p' deploy/systemd/devsys-agent@.service)
ok "devsys-agent@ TimeoutStopSec ($stop s) exceeds the agent's drain ($drain s)" test "$stop" -gt "$drain"

# Exposure as systemd rates it (0 = locked down, 10 = unprotected).
security() { (cd "$units" && systemd-analyze security --offline=true --threshold="$2" "./$1"); }
ok "systemd-analyze security: devsys-manager exposure at most 2.0" security devsys-manager.service 20
ok "systemd-analyze security: devsys-agent exposure at most 5.0" security devsys-agent@1.service 50

# The check sees a bad unit (verify alone would exit 0 on it).
sed 's/^ProtectSystem=strict/ProtectSystem=bogus/' "$units/devsys-manager.service" >"$units/bad.service"
ok "a unit with an invalid value fails the check" it_not verify bad.service
it_done
