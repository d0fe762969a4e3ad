#!/usr/bin/env bash
# release: every binary tells the release it was built from (git describe at
# build time) in --version, the manager in /healthz and in the metric
# devsys_build_info{version}, the agent in its metrics too; CHANGELOG.md is
# what tests/tools/changelog.sh makes of the history up to the last tag.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"

if git -C "$ds_root" rev-parse --git-dir >/dev/null 2>&1; then
    WANT=$(git -C "$ds_root" describe --tags --always --dirty)
else
    WANT=0.0.0-unknown
fi
for b in manager/devsys-manager agents/devsys-agent manager/devsysctl; do
    is "$("$BIN/$b" --version)" "$(basename "$b") $WANT" "$(basename "$b") --version"
done
like "$("$BIN/manager/devsys-manager" --help)" '--version' "--help lists --version"

it_setup
it_start_manager || it_bail "manager starts"
is "$(curl -s "$DEVSYS_URL/healthz" | jq -r .version)" "$WANT" "/healthz has the version"
like "$(curl -s "$DEVSYS_URL/metrics")" "devsys_build_info\\{version=\"$WANT\"\\} 1" \
    "the manager's metrics have devsys_build_info"
it_start_agent a1 DEVSYS_QUEUES=noop DEVSYS_METRICS_LISTEN=127.0.0.1:0 || it_bail "agent starts"
like "$(curl -s "${AGENT_METRICS[a1]}/metrics")" "devsys_build_info\\{version=\"$WANT\"\\} 1" \
    "the agent's metrics have devsys_build_info"

# The committed changelog covers the history up to the last tag, and only
# that: commits after it do not make it stale.
if last=$(git -C "$ds_root" describe --tags --abbrev=0 --match 'v*' 2>/dev/null); then
    "$ds_root/tests/tools/changelog.sh" >"$IT_DIR/CHANGELOG.md" 2>"$IT_DIR/changelog.err"
    ok "CHANGELOG.md is up to date with git log up to $last (tests/tools/changelog.sh >CHANGELOG.md)" \
        diff -u "$ds_root/CHANGELOG.md" "$IT_DIR/CHANGELOG.md"
    like "$(sed -n 's/^## //p' "$ds_root/CHANGELOG.md" | head -n 1)" "^$last " "its first section is $last"
    is "$(grep -c '^- ' "$ds_root/CHANGELOG.md")" "$(git -C "$ds_root" rev-list --first-parent --count "$last")" \
        "one line per first-parent commit up to $last"
else
    printf 'ok %d # skip no v* tag in this clone (shallow? fetch-depth: 0)\n' $((IT_N += 1)) >&7
fi

it_done
