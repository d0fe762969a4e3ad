#!/usr/bin/env bash
# Checks from a YAML file (DEVSYS_MONITOR_CHECKS) and from the API: a bad
# file (bad YAML, a bad regex, an unknown field, a bad follow-up) stops the
# manager with exit 2 naming the file, the line and the field; a good one
# (deploy/examples/checks.yaml) is listed by the API and the CLI, and the
# probe tasks made from it run on a real agent (kind monitor accepts them,
# a log check's offset included), and so does deploy/examples/site-check.json
# (README's walkthrough); a new version of the file replaces its
# checks and drops those it no longer has, not the API's; the API refuses a
# bad check with 400 naming the field (the kind's flat section is the rule).
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup

# bad_file NAME: runs a manager on $IT_DIR/NAME.yaml; its exit status and
# output in BAD_ST and BAD_OUT.
bad_file() {
    DEVSYS_MONITOR_CHECKS=$IT_DIR/$1.yaml DEVSYS_LISTEN=127.0.0.1:0 timeout 20 "$BIN/manager/devsys-manager" \
        </dev/null >"$IT_DIR/$1.out" 2>&1 7>&-
    BAD_ST=$?
    BAD_OUT=$(cat "$IT_DIR/$1.out")
}

printf 'checks:\n  - name: web\n    monitor: {type: http\n  - name: x\n' >"$IT_DIR/syntax.yaml"
bad_file syntax
is "$BAD_ST" 2 "bad YAML: the manager exits 2"
like "$BAD_OUT" "DEVSYS_MONITOR_CHECKS $IT_DIR/syntax.yaml:[0-9]+:[0-9]+: bad YAML: " "naming the file, line and column"

cat >"$IT_DIR/regex.yaml" <<'EOF'
checks:
  - name: ok-one
    monitor: {type: tcp, host: 127.0.0.1, port: 1}
  - name: web
    monitor:
      type: http
      url: http://127.0.0.1:1/
      body_regex: "(unclosed"
EOF
bad_file regex
is "$BAD_ST" 2 "a bad regex: exit 2"
like "$BAD_OUT" "regex.yaml:8: checks\[1\]\.monitor\.body_regex: invalid regular expression /\(unclosed/: " \
    "naming line 8 and the field"

cat >"$IT_DIR/unknown.yaml" <<'EOF'
checks:
  - name: web
    interval_s: 5
    monitor: {type: tcp, host: 127.0.0.1, port: 1}
    threshold: 3
EOF
bad_file unknown
is "$BAD_ST" 2 "an unknown field: exit 2"
like "$BAD_OUT" "unknown.yaml:5: checks\[0\]\.threshold: unknown field" "naming line 5 and the field"

cat >"$IT_DIR/followup.yaml" <<'EOF'
checks:
  - name: web
    monitor: {type: tcp, host: 127.0.0.1, port: 1}
    follow_up:
      kind: deploy
      deploy: {app: web, env: prod, action: sideways}
EOF
bad_file followup
is "$BAD_ST" 2 "a bad follow-up spec: exit 2"
like "$BAD_OUT" "followup.yaml:6: checks\[0\]\.follow_up\.deploy\.action: " "naming the follow-up's field"

cat >"$IT_DIR/types.yaml" <<'EOF'
checks:
  - name: web
    interval_s: "ten"
    monitor: {type: tcp, host: 127.0.0.1, port: 1}
EOF
bad_file types
like "$BAD_OUT" "types.yaml:3: checks\[0\]\.interval_s: must be a number" "a quoted number is a string: refused"

# ------------------------------------------------ the example file loads
DEVSYS_MONITOR_CHECKS=$ds_root/deploy/examples/checks.yaml DEVSYS_CHECK_TICK_S=0.2 it_start_manager \
    || it_bail "start manager with deploy/examples/checks.yaml"
ok "the example's checks are listed" it_wait_for 10 \
    '[[ $(curl -s -H "Authorization: Bearer $DEVSYS_TOKEN" "$DEVSYS_URL/v1/monitors" | jq -r "[.monitors[].name] | join(\",\")") == app-errors,redis-port,web ]]'
web=$(curl -s -H "Authorization: Bearer $DEVSYS_TOKEN" "$DEVSYS_URL/v1/monitors/web")
is "$(jq -c '[.state, .failure_threshold, .success_threshold, .interval_s, .follow_up.deploy.action, .source]' <<<"$web")" \
    '["unknown",3,2,10,"rollback","file"]' "web: thresholds, interval, its rollback follow-up, from the file"
is "$(jq -c '.monitor | [.type, .url, .body_regex]' <<<"$web")" '["http","http://127.0.0.1:8081/health","^ok"]' \
    "the probe as written, flat"
ok "a probe task is created for each check" it_wait_sql 10 \
    "SELECT count(DISTINCT spec->'monitor'->>'check') FROM tasks WHERE kind = 'monitor'" 3
is "$(it_psql "SELECT spec->'monitor'->>'check' || ' ' || (spec->'monitor'->>'type') || ' ' || queue
               FROM tasks WHERE kind = 'monitor' AND spec->'monitor'->>'check' = 'web' LIMIT 1")" \
    "web http monitor" "the probe task: kind monitor on queue monitor, naming its check"
out=$(ctl monitors)
like "$out" 'NAME +TYPE +STATE' "devsysctl monitors prints a table"
like "$out" 'web +http +unknown' "with web's type and state"

# the probe tasks check_tick submits are what kind monitor takes: a real
# agent validates each spec (spec_from_json) and runs it; none is refused
it_start_agent m1 DEVSYS_QUEUES=monitor
ok "every example check's probe ran (its task succeeded)" it_wait_sql 20 \
    "SELECT count(DISTINCT spec->'monitor'->>'check') FROM tasks WHERE kind = 'monitor' AND state = 'succeeded'" 3
is "$(it_psql "SELECT count(*) FROM tasks WHERE kind = 'monitor' AND state IN ('failed', 'dead')")" 0 \
    "no probe task was refused (no invalid spec)"
is "$(it_psql "SELECT count(DISTINCT check_name) FROM probe_results")" 3 "each probe's outcome is recorded on its check"
it_psql "UPDATE checks SET next_due_at = now() WHERE name = 'app-errors'" >/dev/null # not 60 s from now
ok "a log check's next probe carries the offset where the last stopped (monitor.offset) and runs" it_wait_sql 20 \
    "SELECT string_agg(spec->'monitor'->>'offset' || ' ' || state, ',') FROM tasks WHERE kind = 'monitor'
     AND spec->'monitor'->>'check' = 'app-errors' AND spec->'monitor' ? 'offset'" "0 succeeded"
like "$(ctl monitor add "$ds_root/deploy/examples/site-check.json")" '^check site saved' \
    "the README walkthrough's check (deploy/examples/site-check.json) is accepted"
ok "  and its probe runs" it_wait_sql 20 \
    "SELECT state FROM tasks WHERE kind = 'monitor' AND spec->'monitor'->>'check' = 'site' LIMIT 1" succeeded

# ------------------------------------------------ the API
post() { curl -s -o "$IT_DIR/post.out" -w '%{http_code}' -X POST -H "Authorization: Bearer $DEVSYS_TOKEN" \
    "$DEVSYS_URL/v1/monitors" -d "$1"; }
is "$(post '{"name":"api1","interval_s":3600,"monitor":{"type":"tcp","host":"127.0.0.1","port":9}}')" 201 \
    "POST /v1/monitors creates a check (201)"
is "$(post '{"name":"api1","interval_s":7200,"monitor":{"type":"tcp","host":"127.0.0.1","port":9}}')" 200 \
    "and replaces it (200)"
is "$(post '{"name":"bad","monitor":{"type":"log","path":"/x","pattern":"a[b"}}')" 400 "a bad regex: 400"
is "$(jq -r .field "$IT_DIR/post.out")" "monitor.pattern" "naming the field"
is "$(post '{"name":"bad","monitor":{"type":"tcp","host":"h","port":1,"url":"http://x/"}}')" 400 \
    "a field of another type: 400"
is "$(jq -r .error "$IT_DIR/post.out")" 'monitor.url: unknown field for type tcp' "saying which"
is "$(post '{"name":"bad","monitor":{"type":"http","http":{"url":"http://x/"}}}')" 400 \
    "the nested layout ({\"http\": {...}}) is refused: 400"
is "$(post '{"name":"bad","monitor":{"type":"log","path":"/x","pattern":"E","offset":5}}')" 400 "a log offset: 400"
like "$(jq -r .error "$IT_DIR/post.out")" '^monitor.offset: set by the manager' "the manager sets it"
is "$(post '{"name":"bad","monitor":{"type":"tcp","host":"h","port":1},"follow_up":{"kind":"exec"}}')" 400 \
    "a follow-up that does not validate: 400"
like "$(jq -r .error "$IT_DIR/post.out")" '^follow_up\.' "naming follow_up"
is "$(it_psql "SELECT count(*) FROM audit_log WHERE action = 'monitor.put' AND target = 'api1'")" 2 \
    "both writes are audited as monitor.put"

# a new version of the file: web changes, redis-port and app-errors go, api1 stays
cat >"$IT_DIR/v2.yaml" <<'EOF'
checks:
  - name: web
    interval_s: 20
    monitor: {type: http, url: "http://127.0.0.1:8081/health"}
EOF
it_stop_manager
DEVSYS_MONITOR_CHECKS=$IT_DIR/v2.yaml it_start_manager || it_bail "restart manager with v2"
ok "the file's dropped checks are deleted, the API's stays" it_wait_sql 10 \
    "SELECT string_agg(name || ':' || interval_s, ',' ORDER BY name) FROM checks" "api1:7200,site:2,web:20"
it_done
