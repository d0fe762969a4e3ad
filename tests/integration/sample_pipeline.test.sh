#!/usr/bin/env bash
# The sample pipeline (deploy/examples/site-pipeline.json, README "The sample
# pipeline") on real binaries: build (coding) -> test (testing) -> staging ->
# production (deploy), with the artifact going through the manager's store to
# an agent on another workspace. Every step succeeds, the report lists the
# site's tests, `current` points at the new revision in both environments
# and serves the version. A required page missing fails the testing step
# naming the test and skips both deploys; `rerun` after the fix runs only
# the testing step and the deploys. Then the pipeline's last stage, as README
# "Break the sample site and watch" tells it: the check `site`
# (deploy/examples/site-check.json) on the served production site is ok;
# breaking the site opens one incident whose follow-up rolls production back,
# the check resolves, and a webhook receiver gets incident.opened,
# deploy.rolled_back and incident.resolved.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
# shellcheck source=tests/integration/notify_lib.sh
source "$(dirname "$0")/notify_lib.sh"
it_setup
export DEVSYS_ARTIFACT_DIR=$IT_DIR/store
DEVSYS_CHECK_TICK_S=0.2 DEVSYS_NOTIFY_TICK_S=0.2 it_start_manager || it_bail "start manager"
# the agents' token: an operator token made with the token API
AGENT_TOKEN=$(ctl --json token create --name agents --role operator | jq -r .token)
[[ $AGENT_TOKEN =~ ^[A-Za-z0-9_.-]{16,}$ ]] || it_bail "devsysctl token create" "got '$AGENT_TOKEN'"
ROOT=$IT_DIR/deploy
mkdir -p "$ROOT"
agent_env=(DEVSYS_MANAGER_URL="$DEVSYS_URL" DEVSYS_AGENT_TOKEN="$AGENT_TOKEN" DEVSYS_DEPLOY_ROOT="$ROOT")
# two agents with workspaces of their own: the deploys receive the tarball from the store
it_start_agent builder "${agent_env[@]}" DEVSYS_QUEUES=coding,testing DEVSYS_WORKSPACE="$IT_DIR/ws-builder"
it_start_agent deployer "${agent_env[@]}" DEVSYS_QUEUES=deploy DEVSYS_WORKSPACE="$IT_DIR/ws-deployer"

SITE=$IT_DIR/site
cp -R "$ds_root/deploy/examples/site" "$SITE"
submit() { "$ds_root/deploy/examples/site-pipeline.sh" "$1" "$SITE" | ctl pipeline submit -; }
steps() { it_psql "SELECT string_agg(step || ':' || state, ' ' ORDER BY pos) FROM pipeline_steps WHERE pipeline_id = '$1'"; }
task_of() { it_psql "SELECT task_id FROM pipeline_nodes WHERE pipeline_id = '$1' AND step = '$2'"; }
rows_per_node() { # task rows per node of pipeline $1, "node=count ..." by node name
    it_psql "SELECT string_agg(n.name || '=' || (SELECT count(*) FROM tasks t WHERE t.pipeline_id = n.pipeline_id
                                     AND t.spec->'pipeline'->>'step' = n.step), ' ' ORDER BY n.name)
             FROM pipeline_nodes n WHERE n.pipeline_id = '$1'"
}
revision_of() { it_psql "SELECT result->>'revision' FROM tasks WHERE id = '$(task_of "$1" "$2")'"; }
current_of() { readlink "$ROOT/$1/site/current"; }
approval_of() { it_psql "SELECT id FROM approvals WHERE pipeline_id = '$1' AND decision IS NULL"; }
# approve_ready ID: production waits for an operator once staging is deployed
approve_ready() { it_wait_for 60 "[[ -n \$(it_psql \"SELECT id FROM approvals WHERE pipeline_id = '$1' AND decision IS NULL\") ]]"; }
wait_pipeline() { # wait_pipeline ID STATE: until it has finished, then compares (a wrong end fails at once)
    it_wait_for 60 "[[ \$(it_psql \"SELECT state FROM pipelines WHERE id = '$1'\") != running ]]" || return 1
    [[ $(it_psql "SELECT state FROM pipelines WHERE id = '$1'") == "$2" ]] || {
        it_psql "SELECT step, state FROM pipeline_steps WHERE pipeline_id = '$1' ORDER BY pos"
        it_psql "SELECT kind, state, last_error FROM tasks WHERE pipeline_id = '$1' ORDER BY created_at"
        return 1
    }
}

# the site's own count of tests, from its script on a tarball built here
sh "$SITE/build.sh" "$SITE/src" "$IT_DIR/local/site.tar.gz" 0.0.0 >/dev/null
ntests=$(sh "$SITE/tests/run-tests.sh" "$IT_DIR/local/site.tar.gz" "$IT_DIR/local/junit.xml" | sed -n 's/ tests,.*//p')
[[ $ntests =~ ^[0-9]+$ ]] || it_bail "run the site's tests locally" "got '$ntests'"

# ---- the sample pipeline end to end
pid=$(submit 1.0.1)
ok "the sample pipeline is accepted" test -n "$pid"
ok "production waits for an approval once staging is deployed" approve_ready "$pid"
is "$(steps "$pid")" "build:succeeded test:succeeded staging:succeeded production:waiting_approval" \
    "before the approval: staging deployed, production waiting"
ok "an operator approves production" ctl approve "$(approval_of "$pid")" --comment "staging looks good"
ok "it succeeds" wait_pipeline "$pid" succeeded
is "$(steps "$pid")" "build:succeeded test:succeeded staging:succeeded production:succeeded" \
    "every step succeeded, in order"
test_task=$(task_of "$pid" test)
rep=$(ctl report "$test_task")
like "$rep" "tests: +$ntests +passed $ntests +failed 0" "devsysctl report lists the site's $ntests tests, all passed"
sum=$(curl -s -H "Authorization: Bearer $DEVSYS_TOKEN" "$DEVSYS_URL/v1/tasks/$test_task/report?format=summary")
is "$(jq -r .summary.tests <<<"$sum")" "$ntests" "the report summary counts the same tests as the site's script"
ok "the stored XML names the site's testcases" \
    grep -q 'about.html links to index.html' <(ctl report --xml "$test_task")
r1s=$(revision_of "$pid" staging)
r1p=$(revision_of "$pid" production)
is "$(current_of staging)" "revisions/$r1s" "staging: current points at the new revision"
is "$(current_of production)" "revisions/$r1p" "production: current points at the new revision"
ok "the deployed index.html carries the version (production)" grep -qF 'version: 1.0.1<' "$ROOT/production/site/current/index.html"
is "$(ctl --json revisions site | jq -r '.current | "\(.staging) \(.production)"')" "$r1s $r1p" \
    "devsysctl revisions site shows both as current"
build_sha=$(it_psql "SELECT result->'artifacts'->0->>'sha256' FROM tasks WHERE id = '$(task_of "$pid" build)'")
got_sha=$(sha256sum "$IT_DIR/ws-deployer/$(task_of "$pid" staging)/inputs/build/dist/site.tar.gz" | cut -d' ' -f1)
is "$got_sha" "$build_sha" "the staging deploy got the build's artifact in its own workspace (inputs/build/dist/site.tar.gz)"

# ---- a required page missing: the testing step fails naming it; the deploys are skipped
cp "$SITE/tests/required-pages" "$IT_DIR/required-pages.good"
echo contact.html >>"$SITE/tests/required-pages"
pid2=$(submit 1.0.2)
ok "the pipeline with a missing page ends failed" wait_pipeline "$pid2" failed
is "$(steps "$pid2")" "build:succeeded test:failed staging:skipped production:skipped" \
    "the testing step failed and both deploys were skipped"
t2=$(task_of "$pid2" test)
sum=$(curl -s -H "Authorization: Bearer $DEVSYS_TOKEN" "$DEVSYS_URL/v1/tasks/$t2/report?format=summary")
is "$(jq -c '[.summary.tests, .summary.failures, [.summary.failed[].name]]' <<<"$sum")" \
    "[$((ntests + 1)),1,[\"contact.html exists\"]]" "the summary names the failed test"
like "$(it_psql "SELECT last_error FROM tasks WHERE id = '$t2'")" '^exit status 1; 1 test failed: site\.pages\.contact\.html exists$' \
    "the step's error names it too"
is "$(current_of staging)" "revisions/$r1s" "staging still runs the first revision"

# ---- fixed: rerun runs the testing step and the deploys, not the build
cp "$IT_DIR/required-pages.good" "$SITE/tests/required-pages"
ok "devsysctl pipeline rerun" ctl pipeline rerun "$pid2"
ok "the rerun asks for the production approval again" approve_ready "$pid2"
ok "approved" ctl approve "$(approval_of "$pid2")"
ok "the rerun succeeds" wait_pipeline "$pid2" succeeded
is "$(rows_per_node "$pid2")" "build=1 production=1 staging=1 test=2" \
    "task rows per node: the build ran once, the testing step twice, each deploy once"
r2s=$(revision_of "$pid2" staging)
r2p=$(revision_of "$pid2" production)
is "$(current_of staging) $(current_of production)" "revisions/$r2s revisions/$r2p" \
    "current points at the rerun's revisions in staging and production"
ok "and serves version 1.0.2" grep -qF 'version: 1.0.2<' "$ROOT/production/site/current/index.html"

# ---- the last stage: the check site on the served production site
SECRET=$(new_secret)
printf '{"ops": "%s"}\n' "$SECRET" >"$IT_DIR/secrets.json"
it_start_agent watcher DEVSYS_QUEUES=monitor,notify DEVSYS_NOTIFY_SECRETS_FILE="$IT_DIR/secrets.json"
start_receiver ops 0 --secret "$SECRET" || it_bail "start the webhook receiver"
ok "a destination for incidents and rollbacks" ctl notify add ops "${RECV_URL[ops]}" \
    incident.opened,incident.resolved,deploy.rolled_back secret_ref=ops group_wait_s=0 group_interval_s=0
site_port=$(ds_free_port) || it_bail "a free port"
python3 -m http.server "$site_port" --bind 127.0.0.1 --directory "$ROOT/production/site/current" \
    </dev/null >>"$IT_DIR/site-server.log" 2>&1 7>&- &
it_track_pid $!
it_wait_for 10 "ds_port_listening $site_port" || it_bail "serve the production site"
# the example check, probing every second on this port
jq --arg u "http://127.0.0.1:$site_port/" '.monitor.url = $u | .interval_s = 1' \
    "$ds_root/deploy/examples/site-check.json" >"$IT_DIR/site-check.json"
ok "devsysctl monitor add deploy/examples/site-check.json" ctl monitor add "$IT_DIR/site-check.json"
ok "the check site is ok" it_wait_sql 30 "SELECT state FROM checks WHERE name = 'site'" ok
rm "$ROOT/production/site/current/index.html"   # break it: / is now a directory listing
ok "broken: the check goes failing and opens an incident" \
    it_wait_sql 30 "SELECT count(*) FROM incidents WHERE check_name = 'site'" 1
is "$(it_psql "SELECT error FROM incidents")" "body does not match /devsys sample site/" "the incident names the failure"
fix=$(it_psql "SELECT follow_up_task FROM incidents")
ok "its follow-up (a rollback of production) succeeds" it_wait_state 60 "$fix" succeeded
is "$(current_of production)" "revisions/$r1p" "production is back on the previous revision"
ok "the check resolves the incident" it_wait_sql 30 "SELECT resolution FROM incidents" recovered
is "$(it_psql "SELECT count(*) FROM incidents")" 1 "exactly one incident"
types() { [[ -f $IT_DIR/recv-ops.jsonl ]] && jq -r '.body | if .type == "summary" then .data.events[] else . end | .type' \
    "$IT_DIR/recv-ops.jsonl" | sort | tr '\n' ' '; }
ok "the receiver verified incident.opened, deploy.rolled_back and incident.resolved" \
    it_wait_for 20 '[[ $(types) == "deploy.rolled_back incident.opened incident.resolved " ]]'
is "$(jq -r '.body | select(.type == "deploy.rolled_back") | .data | "\(.app)/\(.env) \(.reason) \(.task)"' \
    "$IT_DIR/recv-ops.jsonl")" "site/production rollback $fix" "deploy.rolled_back names the follow-up's rollback"
it_done
