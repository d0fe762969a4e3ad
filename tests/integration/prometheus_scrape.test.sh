#!/usr/bin/env bash
# A real Prometheus (Debian's prometheus) on a free loopback port scrapes the
# manager and an agent: promtool accepts every endpoint's exposition, the
# alert rules load and evaluate, every dashboard query runs, and a PromQL
# query sees the finished-attempts counter rise while tasks run.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
command -v prometheus >/dev/null || it_bail "prometheus on PATH" "install Debian's prometheus (./dev deps)"
it_setup
it_start_manager || it_bail "start the manager"
it_start_agent a1 DEVSYS_QUEUES=sleep,noop DEVSYS_CONCURRENCY=2 DEVSYS_METRICS_LISTEN=127.0.0.1:0 \
    || it_bail "start the agent"
ok "the agent is ready" ds_wait_http "${AGENT_METRICS[a1]}/readyz" 20

# promtool check metrics reads the exposition on stdin and prints each problem.
check_metrics() {
    local body out
    body=$(curl -sf "$1") || { echo "cannot GET $1"; return 1; }
    [[ $body == *'# TYPE '* ]] || { echo "no metrics at $1"; return 1; }
    out=$(promtool check metrics <<<"$body" 2>&1) || { echo "$out"; return 1; }
    [[ -z $out ]] || { echo "$out"; return 1; }
}
ok "promtool check metrics: the manager's /metrics" check_metrics "$DEVSYS_URL/metrics"
ok "promtool check metrics: the agent's /metrics" check_metrics "${AGENT_METRICS[a1]}/metrics"

port=$(ds_free_port) || it_bail "free port"
prom=http://127.0.0.1:$port
mkdir -p "$IT_DIR/prom"
cp "$ds_root/deploy/prometheus/devsys-alerts.yml" "$IT_DIR/prom/"
cat >"$IT_DIR/prom/prometheus.yml" <<YML
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [devsys-alerts.yml]
scrape_configs:
  - job_name: devsys-manager
    static_configs: [{targets: ["${DEVSYS_URL#http://}"]}]
  - job_name: devsys-agent
    static_configs: [{targets: ["${AGENT_METRICS[a1]#http://}"]}]
YML
prometheus --config.file="$IT_DIR/prom/prometheus.yml" --storage.tsdb.path="$IT_DIR/prom/data" \
    --web.listen-address="127.0.0.1:$port" </dev/null >>"$IT_DIR/prometheus.log" 2>&1 7>&- &
it_track_pid $!
ok "prometheus answers /-/ready" ds_wait_http "$prom/-/ready" 30

# query PROMQL: the instant query's first value ("" when the result is empty).
query() {
    curl -sf --get "$prom/api/v1/query" --data-urlencode "query=$1" \
        | jq -r 'if .status == "success" then (.data.result[0].value[1] // "") else error("failed") end'
}
ok "both targets are scraped and up" \
    it_wait_for 20 '[[ $(query "count(up{job=~\"devsys-manager|devsys-agent\"} == 1)") == 2 ]]'
ok "the agent's counter is in Prometheus" \
    it_wait_for 10 '[[ -n $(query "sum(devsys_tasks_done_total{job=\"devsys-agent\"})") ]]'
before=$(query 'sum(devsys_tasks_done_total{job="devsys-agent"})')

# 16 tasks of 400 ms on 2 slots: about 3 s of work, scraped every second.
for _ in $(seq 16); do
    ctl submit - <<<'{"kind":"sleep","sleep":{"ms":400}}' >/dev/null || it_bail "submit"
done
rose_while_running() {
    local now left
    now=$(query 'sum(devsys_tasks_done_total{job="devsys-agent"})')
    left=$(it_psql "SELECT count(*) FROM tasks WHERE state NOT IN ('succeeded','failed','dead','cancelled')")
    [[ -n $now ]] && (( ${now%.*} > ${before%.*} && left > 0 ))
}
ok "a PromQL query sees devsys_tasks_done_total rise while tasks still run" it_wait_for 15 rose_while_running
ok "every task finishes" it_wait_all_final 30 15
ok "Prometheus counts all 16 succeeded attempts" it_wait_for 10 \
    '[[ $(query "sum(devsys_tasks_done_total{job=\"devsys-agent\",outcome=\"succeeded\"})") == $((${before%.*} + 16)) ]]'
ok "Prometheus sees the 16 submissions on the manager" it_wait_for 10 \
    '[[ $(query "sum(devsys_tasks_submitted_total{job=\"devsys-manager\"})") == 16 ]]'

# The rules loaded, evaluate without error, and none fires on this healthy system.
rules=$(curl -sf "$prom/api/v1/rules")
is "$(jq '[.data.groups[].rules[]] | length' <<<"$rules")" \
    "$(grep -c '^ *- alert:' "$ds_root/deploy/prometheus/devsys-alerts.yml")" "Prometheus loaded every alert rule"
ok "every rule evaluates with health ok" \
    it_wait_for 10 '[[ $(curl -sf "$prom/api/v1/rules" | jq "[.data.groups[].rules[] | select(.health != \"ok\")] | length") == 0 ]]'
alerts() { curl -sf "$prom/api/v1/alerts" | jq -c '[.data.alerts[].labels.alertname]'; }
ok "the PostgreSQL alert has seen reconciler passes" it_wait_for 15 \
    '[[ $(query "sum(devsys_reconciler_passes_total{job=\"devsys-manager\"})") -gt 0 ]]'
is "$(alerts)" '[]' "no alert is pending or firing on a healthy system"

# Every dashboard query parses and runs ($__rate_interval as Grafana would fill it).
bad=''
while IFS= read -r expr; do
    expr=${expr//\$__rate_interval/1m}
    st=$(curl -s --get "$prom/api/v1/query" --data-urlencode "query=$expr" | jq -r .status)
    [[ $st == success ]] || bad+="$expr; "
done < <(jq -r '.. | objects | .expr? // empty' "$ds_root/deploy/grafana/devsys-dashboard.json")
is "$bad" "" "every dashboard query runs in Prometheus"
it_done
