#!/usr/bin/env bash
# deploy/prometheus and deploy/grafana: promtool accepts the rules and the
# config, every alert has a unit test that fires it, and every metric the
# rules and the dashboard use is exposed by a real manager or agent.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
command -v promtool >/dev/null || it_bail "promtool on PATH" "install Debian's prometheus (./dev deps)"
it_setup
cd "$ds_root" || it_bail "cd $ds_root"
P=deploy/prometheus
DASH=deploy/grafana/devsys-dashboard.json

ok "promtool check rules $P/devsys-alerts.yml" promtool check rules "$P/devsys-alerts.yml"
ok "promtool check config $P/prometheus.yml" promtool check config "$P/prometheus.yml"
ok "promtool test rules $P/tests/*.yml" promtool test rules "$P"/tests/*.yml

# Each alert of the rule file is fired (non-empty exp_alerts) by some unit test.
untested=$(python3 - "$P/devsys-alerts.yml" "$P"/tests/*.yml <<'PY'
import sys, yaml
alerts = {r["alert"] for g in yaml.safe_load(open(sys.argv[1]))["groups"] for r in g["rules"] if "alert" in r}
fired = set()
for t in sys.argv[2:]:
    for case in yaml.safe_load(open(t))["tests"]:
        for a in case.get("alert_rule_test", []):
            if a.get("exp_alerts"):
                fired.add(a["alertname"])
print(" ".join(sorted(alerts - fired)) or "none")
PY
)
is "$untested" none "every alert has a unit test in which it fires"
for a in DevsysQueueStalled DevsysDLQGrowth DevsysNoLiveAgents DevsysTaskErrorRate \
         DevsysReconcilerRepublishing DevsysPostgresUnreachable DevsysRedisUnreachable; do
    ok "the rules define $a" grep -q "alert: $a\$" "$P/devsys-alerts.yml"
done
# Each alert's runbook annotation points at its own section of docs/runbook.md.
while IFS=' ' read -r alert link; do
    ok "docs/runbook.md explains $alert" grep -qx "### $alert" docs/runbook.md
    is "$link" "docs/runbook.md#${alert,,}" "$alert links to its runbook section"
done < <(python3 -c '
import sys, yaml
for g in yaml.safe_load(open(sys.argv[1]))["groups"]:
    for r in g["rules"]:
        print(r["alert"], r["annotations"].get("runbook", "none"))' "$P/devsys-alerts.yml")
ok "the dashboard is valid JSON with panels" jq -e '.panels | length > 5' "$DASH"

# The names the rules and the dashboard use, against a real scrape of both processes.
it_start_manager || it_bail "start the manager"
it_start_agent a1 DEVSYS_QUEUES=exec,noop DEVSYS_METRICS_LISTEN=127.0.0.1:0 || it_bail "start the agent"
ok "the agent is ready" ds_wait_http "${AGENT_METRICS[a1]}/readyz" 20
ctl submit - <<<'{"kind":"noop"}' >/dev/null
ctl submit - <<<'{"kind":"exec","command":["true"]}' >/dev/null
ok "the agent has run a handler (its run-time histogram)" it_wait_for 20 \
    'curl -sf "${AGENT_METRICS[a1]}/metrics" | grep -q "^devsys_task_run_seconds_count"'
# the per-queue gauges exist once the manager published to a queue; the
# HTTP histogram once a route answered
ok "the manager exports the queue gauges" it_wait_for 10 \
    'curl -sf "$DEVSYS_URL/metrics" | grep -q "^devsys_queue_oldest_waiting_age_seconds{queue=\"noop\"}"'
{ curl -sf "$DEVSYS_URL/metrics"; curl -sf "${AGENT_METRICS[a1]}/metrics"; } >"$IT_DIR/scrape.txt"
# A histogram NAME is queried as NAME_bucket, NAME_sum and NAME_count.
exposed=$( { sed -n 's/^# TYPE \([a-zA-Z_:][a-zA-Z0-9_:]*\) .*/\1/p' "$IT_DIR/scrape.txt"
             sed -n 's/^# TYPE \([a-zA-Z_:][a-zA-Z0-9_:]*\) histogram$/\1_bucket\n\1_sum\n\1_count/p' "$IT_DIR/scrape.txt"
             echo up; } | sort -u)
used=$(python3 tests/tools/promql_names.py "$P/devsys-alerts.yml" "$DASH")
like "$used" 'devsys_tasks_done_total' "the metric names of the expressions are extracted"
missing=$(comm -23 <(printf '%s\n' "$used") <(printf '%s\n' "$exposed") | tr '\n' ' ')
is "$missing" "" "every metric the rules and the dashboard use is exposed (or is Prometheus' up)"

# The check sees a name that is not exposed (it is not vacuous).
printf '{"panels":[{"targets":[{"expr":"sum by (queue) (rate(devsys_no_such_total{job=\\"x\\"}[5m]))"}]}]}\n' \
    >"$IT_DIR/bad.json"
bad=$(python3 tests/tools/promql_names.py "$IT_DIR/bad.json")
is "$(comm -23 <(printf '%s\n' "$bad") <(printf '%s\n' "$exposed"))" devsys_no_such_total \
    "a dashboard naming an unexposed metric is caught"
it_done
