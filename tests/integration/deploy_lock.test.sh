#!/usr/bin/env bash
# The deploy lock of an app+env (deploy_lock_try, migrations/007_deployments.sql):
# deploys submitted at once to two agents switch one after the other (their
# lock-to-finish intervals from the deployments table never overlap), in the
# order the tasks were submitted on one agent; other apps are not held up;
# a holder whose agent is killed stops blocking once its lease expires.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
it_start_manager || it_bail "start manager"
ROOT=$IT_DIR/root
common=(DEVSYS_QUEUES=deploy DEVSYS_DEPLOY_ROOT="$ROOT" DEVSYS_LEASE_S=3 DEVSYS_CLAIM_PERIOD_S=1 DEVSYS_KILL_GRACE_S=1)
it_start_agent a1 "${common[@]}"
it_start_agent a2 "${common[@]}"
mkdir -p "$IT_DIR/site" && echo hi >"$IT_DIR/site/index.html"

# spec APP REV CHECK-SECONDS: a deploy whose command check sleeps
spec() {
    jq -nc --arg s "$IT_DIR/site" --arg a "$1" --arg r "$2" --arg t "$3" \
        '{kind: "deploy", deploy: {app: $a, env: "prod", source: $s, revision: $r, check: {command: ["sleep", $t]}}}'
}
# no_overlap APP: the [locked_at, finished_at] intervals of APP's deployments are disjoint
no_overlap() {
    local n
    n=$(it_psql "SELECT count(*) FROM deployments a JOIN deployments b ON a.id < b.id AND a.app = b.app AND a.env = b.env
                 WHERE a.app = '$1' AND tstzrange(a.locked_at, a.finished_at) && tstzrange(b.locked_at, b.finished_at)")
    [[ $n == 0 ]] || { it_psql "SELECT revision, locked_at, switched_at, finished_at FROM deployments WHERE app='$1' ORDER BY locked_at"; return 1; }
}

# ---- four at once on two agents, plus one of another app
batch=$(jq -sc . <(spec web r1 1) <(spec web r2 1) <(spec web r3 1) <(spec web r4 1) <(spec api a1 1))
mapfile -t ids < <(ctl submit - <<<"$batch")
is "${#ids[@]}" 5 "five deploys submitted in one batch"
for id in "${ids[@]}"; do it_wait_state 90 "$id" succeeded || break; done
is "$(it_psql "SELECT count(*) FROM deployments WHERE outcome = 'succeeded'")" 5 "all five succeed"
ok "the four web deploys never held the lock at the same time" no_overlap web
ok "the four web deploys took at least 4 s in all (one 1 s check after the other)" \
    test "$(it_psql "SELECT extract(epoch FROM max(finished_at) - min(locked_at)) >= 4 FROM deployments WHERE app = 'web'")" = t
ok "the api deploy did not wait for web's lock" \
    test "$(it_psql "SELECT (SELECT locked_at FROM deployments WHERE app = 'api') < (SELECT max(locked_at) FROM deployments WHERE app = 'web')")" = t
is "$(readlink "$ROOT/prod/web/current")" "revisions/$(it_psql "SELECT revision FROM deployments WHERE app = 'web' ORDER BY switched_at DESC LIMIT 1")" \
    "current is the revision of the last switch"

# ---- oldest first on one agent
it_stop_agent a2
batch=$(jq -sc . <(spec web s1 0.5) <(spec web s2 0.5) <(spec web s3 0.5))
mapfile -t ids < <(ctl submit - <<<"$batch")
for id in "${ids[@]}"; do it_wait_state 60 "$id" succeeded || break; done
is "$(it_psql "SELECT string_agg(revision, ' ' ORDER BY locked_at) FROM deployments WHERE revision LIKE 's%'")" "s1 s2 s3" \
    "submitted s1, s2, s3: they took the lock in that order"
ok "and never at the same time" no_overlap web

# ---- a deploy cancelled while it waits for the lock
hold=$(ctl submit - <<<"$(spec web c1 3)")
ok "c1 holds the lock" it_wait_sql 30 "SELECT state FROM deployments WHERE task_id = '$hold'" holding
waiter=$(ctl submit - <<<"$(spec web c2 0)")
ok "c2 waits for it" it_wait_sql 30 "SELECT state FROM deployments WHERE task_id = '$waiter'" waiting
ok "c2 is cancelled" ctl cancel "$waiter"
ok "its row ends failed: cancelled" it_wait_sql 30 \
    "SELECT outcome || ' ' || error || ' ' || (switched_at IS NULL) FROM deployments WHERE task_id = '$waiter'" "failed cancelled true"
ok "c1 goes on and succeeds" it_wait_state 60 "$hold" succeeded
is "$(readlink "$ROOT/prod/web/current")" "revisions/c1" "current -> c1"

# ---- a holder killed with its agent stops blocking once its lease expires
# (k1 has one attempt: nobody runs it again, its row stays unfinished)
hold=$(ctl submit - <<<"$(spec web k1 60 | jq -c '.retry_policy = {max_attempts: 1}')")
ok "k1 holds the lock (its check runs)" it_wait_sql 30 "SELECT state FROM deployments WHERE task_id = '$hold'" holding
it_stop_agent a1 KILL
it_start_agent a3 "${common[@]}"
next=$(ctl submit - <<<"$(spec web k2 0)")
ok "k2 is deployed although k1's holder died holding the lock" it_wait_state 60 "$next" succeeded
ok "k2 got the lock after k1's lease ran out" \
    test "$(it_psql "SELECT (SELECT locked_at FROM deployments WHERE task_id = '$next') >= (SELECT locked_at FROM deployments WHERE task_id = '$hold') + interval '2 s'")" = t
is "$(it_psql "SELECT state || ' ' || (finished_at IS NULL) FROM deployments WHERE task_id = '$hold'")" "holding true" \
    "k1's row is left as its dead holder left it"
it_done
