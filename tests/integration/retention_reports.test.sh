#!/usr/bin/env bash
# Test reports follow their task into history (common/taskdb.c retention,
# migrations/010_search.sql): a testing task run by a real agent keeps its
# report readable through GET /v1/tasks/{id}/report and /v1/reports/latest
# after retention moved it, and the report is dropped with its day partition.
source "$(dirname "$0")/itest.sh"
it_setup
export DEVSYS_RETENTION_S=0.5 DEVSYS_RETENTION_SUCCEEDED_S=2 DEVSYS_RECONCILE_S=0 DEVSYS_HISTORY_KEEP_DAYS=30
it_start_manager || it_bail "start manager"
it_start_agent a1 DEVSYS_QUEUES=testing
B=$IT_DIR/body
get() { curl -s -o "$B" -w '%{http_code}' -H "Authorization: Bearer $DEVSYS_TOKEN" "$DEVSYS_URL$1"; }

W=$IT_DIR/w
mkdir -p "$W"
cat >"$W/report.xml" <<'XML'
<testsuite name="s" tests="2" failures="0"><testcase classname="s" name="one"/><testcase classname="s" name="two"/></testsuite>
XML
spec=$(jq -nc --arg w "$W" '{kind: "testing", name: "kept-report", workdir: $w, command: ["true"],
    testing: {junit: ["report.xml"]}}')
id=$(ctl submit - <<<"$spec")
ok "the testing task succeeds" it_wait_state 60 "$id" succeeded
is "$(it_psql "SELECT count(*) FROM task_reports WHERE task_id = '$id'")" 1 "its report is in task_reports"

ok "retention moves the task to history" it_wait_sql 20 "SELECT count(*) FROM tasks_history WHERE id = '$id'" 1
is "$(it_psql "SELECT count(*) FROM tasks WHERE id = '$id'")" 0 "  it left tasks"
is "$(it_psql "SELECT count(*) FROM task_reports")/$(it_psql "SELECT count(*) FROM task_reports_history
    WHERE task_id = '$id'")" 0/1 "its report went with it, into task_reports_history"
is "$(get "/v1/tasks/$id/report?format=summary")" 200 "GET /v1/tasks/{id}/report?format=summary after the move: 200"
is "$(jq -r '"\(.task_id) \(.name) \(.summary.tests) \(.state)"' "$B")" "$id kept-report 2 succeeded" \
    "  the summary of the moved task"
is "$(get "/v1/tasks/$id/report")" 200 "GET /v1/tasks/{id}/report (XML) after the move: 200"
is "$(xmllint --xpath 'count(//testcase)' "$B")" 2 "  the stored XML"
is "$(get "/v1/reports/latest?name=kept-report&format=summary")/$(jq -r .task_id "$B")" "200/$id" \
    "GET /v1/reports/latest?name= finds it in history"
like "$(ctl report "$id")" 'tests: +2' "devsysctl report reads it"

# ---- dropped with its day: a report of a task that finished 10 days ago
old=00000000-0000-7000-8000-000000000001
it_psql "INSERT INTO tasks (id, queue, kind, spec, state, attempt, created_at, finished_at)
         VALUES ('$old', 'testing', 'testing', '{\"kind\":\"testing\",\"name\":\"old-report\"}', 'succeeded', 1,
                 now() - interval '10 days', now() - interval '10 days');
         INSERT INTO task_reports (task_id, attempt, xml, summary, created_at)
         VALUES ('$old', 1, '<testsuite/>', '{\"tests\":0}', now() - interval '10 days')" >/dev/null
ok "the 10-day-old task and its report move to history" \
    it_wait_sql 20 "SELECT count(*) FROM task_reports_history WHERE task_id = '$old'" 1
part="task_reports_history_p$(it_psql "SELECT to_char((now() AT TIME ZONE 'UTC')::date - 10, 'YYYYMMDD')")"
is "$(it_psql "SELECT count(*) FROM $part")" 1 "  into the partition of its day ($part)"
is "$(get "/v1/tasks/$old/report?format=summary")" 200 "  and is readable there"
it_stop_manager
DEVSYS_HISTORY_KEEP_DAYS=5 it_start_manager || it_bail "restart manager with a 5-day keep"
ok "with a 5-day keep its partition is dropped" it_wait_sql 10 "SELECT to_regclass('$part') IS NULL" t
is "$(it_psql "SELECT count(*) FROM task_reports_history WHERE task_id = '$old'")" 0 "  the report is gone"
is "$(get "/v1/tasks/$old/report")/$(jq -r .error "$B")" "404/task not found" "  GET report answers 404"
is "$(get "/v1/tasks/$id/report?format=summary")" 200 "the recent task's report stays"
it_done
