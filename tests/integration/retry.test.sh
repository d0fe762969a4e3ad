#!/usr/bin/env bash
# Retries and dead letters: the delays between attempts follow retry_policy (and
# the agent's defaults), exhausted and non-retryable tasks land in the DLQ with
# readable fields, and an operator can replay or purge them.
# Timing is judged from task_attempts.started_at, never from the wall clock.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
DEVSYS_RECONCILE_S=1 DEVSYS_REPUBLISH_AFTER_S=2 it_start_manager || it_bail "start manager"
it_start_agent a1 DEVSYS_QUEUES=sleep,exec DEVSYS_CONCURRENCY=8 DEVSYS_LEASE_S=3 DEVSYS_CLAIM_PERIOD_S=1 \
    DEVSYS_RETRY_INITIAL_S=0.3 DEVSYS_RETRY_FACTOR=2 DEVSYS_RETRY_MAX_S=300 DEVSYS_RETRY_JITTER=0
submit() { ctl submit - <<<"$1"; }
outcomes() { it_psql "SELECT string_agg(outcome, ',' ORDER BY attempt) FROM task_attempts WHERE task_id='$1'"; }
SLACK=2   # seconds a retry may start after it is due (promotion every ~0.5 s, claim)
ISO_UTC='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$'

# check_gaps ID INITIAL FACTOR MAX_S JITTER: the gap between the starts of
# attempts n and n+1 against d(n) = min(MAX_S, INITIAL * FACTOR^(n-1)):
# without jitter d <= gap < d + SLACK, with jitter gap <= d + SLACK.
# Prints one line per gap.
check_gaps() {
    local rows
    rows=$(it_psql "SELECT attempt, extract(epoch FROM started_at - lag(started_at) OVER (ORDER BY attempt))
                    FROM task_attempts WHERE task_id='$1' ORDER BY attempt")
    awk -F'|' -v i="$2" -v f="$3" -v m="$4" -v j="$5" -v s="$SLACK" '
        NR == 1 { next }
        {
            n = $1 - 1; d = i * f ^ (n - 1); if (d > m) d = m; g = $2 + 0
            good = (j == "true") ? (g <= d + s) : (g >= d && g < d + s)
            printf "attempt %d -> %d: gap %.3fs, policy delay %s%.3fs: %s\n", n, $1, g,
                (j == "true") ? "<= " : "", d, good ? "ok" : "OUT OF RANGE"
            if (!good) bad = 1
            cnt++
        }
        END { if (cnt == 0) { print "no gaps: fewer than 2 attempts recorded"; exit 1 } exit bad }' <<<"$rows"
}

# ------------------------------------------------ backoff follows the policy
fixed=$(submit '{"kind":"sleep","sleep":{"ms":0,"fail_always":true},
  "retry_policy":{"max_attempts":4,"initial_s":1,"factor":2,"max_s":60,"jitter":false}}')
jit=$(submit '{"kind":"sleep","sleep":{"ms":0,"fail_always":true},
  "retry_policy":{"max_attempts":4,"initial_s":1,"factor":2,"max_s":60,"jitter":true}}')
capped=$(submit '{"kind":"sleep","sleep":{"ms":0,"fail_always":true},
  "retry_policy":{"max_attempts":4,"initial_s":0.5,"factor":4,"max_s":1,"jitter":false}}')
ff=$(submit '{"kind":"sleep","sleep":{"ms":10,"fail_first":2},
  "retry_policy":{"max_attempts":3,"initial_s":0.2,"factor":1,"max_s":1,"jitter":false}}')
dflt=$(submit '{"kind":"sleep","sleep":{"ms":0,"fail_first":2}}')
like "$fixed$jit$capped$ff$dflt" '^([0-9a-f-]{36}){5}$' "five sleep tasks submitted"

ok "sleep fail_first=2 succeeds" it_wait_state 30 "$ff" succeeded
is "$(it_psql "SELECT attempt FROM tasks WHERE id='$ff'")" 3 "fail_first=2 succeeded on attempt 3"
is "$(outcomes "$ff")" failed,failed,succeeded "fail_first=2: attempt rows failed, failed, succeeded"
like "$(it_psql "SELECT error FROM task_attempts WHERE task_id='$ff' AND attempt=1")" 'fail_first' \
    "failed attempt row keeps the error"
ok "without retry_policy the agent defaults apply (task succeeds)" \
    it_wait_state 30 "$dflt" succeeded
out=$(check_gaps "$dflt" 0.3 2 300 false); st=$?
it_diag "default policy (DEVSYS_RETRY_INITIAL_S=0.3, factor 2, no jitter):"$'\n'"$out"
ok "without retry_policy the gaps follow the agent's defaults" test "$st" = 0

for t in fixed jit capped; do
    ok "fail_always task ($t) ends dead" it_wait_state 40 "${!t}" dead
    is "$(outcomes "${!t}")" failed,failed,failed,dead "$t: 4 attempts (max_attempts), the last one dead"
done
out=$(check_gaps "$fixed" 1 2 60 false); st=$?
it_diag "initial_s 1, factor 2, no jitter:"$'\n'"$out"
ok "no jitter: every gap is at least the policy delay (1, 2, 4 s) and at most ${SLACK}s more" test "$st" = 0
out=$(check_gaps "$jit" 1 2 60 true); st=$?
it_diag "initial_s 1, factor 2, jitter:"$'\n'"$out"
ok "full jitter: no gap exceeds the policy delay by more than ${SLACK}s" test "$st" = 0
out=$(check_gaps "$capped" 0.5 4 1 false); st=$?
it_diag "initial_s 0.5, factor 4, max_s 1:"$'\n'"$out"
ok "max_s caps the delay (0.5, 1, 1 s instead of 0.5, 2, 8 s)" test "$st" = 0

# ------------------------------------------------ the dead letter is readable
dlq=$(it_dlq sleep)
e=$(jq -c --arg id "$fixed" '[.[] | select(.id == $id)]' <<<"$dlq")
is "$(jq length <<<"$e")" 1 "XRANGE 'devsys:{sleep}:dlq' holds the dead task exactly once"
e=$(jq -c '.[0] // {}' <<<"$e")
f() { jq -r --arg k "$1" '.[$k] // "(missing)"' <<<"$e"; }
is "$(f kind)/$(f queue)/$(f attempts)/$(f agent)" sleep/sleep/4/a1 "DLQ kind, queue, attempts and agent"
like "$(f error)" 'fail_always' "DLQ error is the last failure"
err=$(jq -r '.error // ""' <<<"$e")
ok "DLQ error is one non-empty line" test -n "$err" -a "$(printf '%s\n' "$err" | wc -l)" = 1
like "$(f failed_at)" "$ISO_UTC" "DLQ failed_at is ISO 8601 UTC"
like "$(f source)" '^[0-9]+-[0-9]+$' "DLQ source is a stream entry id"
is "$(f spec | jq -c '[.kind, .sleep.fail_always, .retry_policy.max_attempts]' 2>&1)" '["sleep",true,4]' \
    "DLQ spec is the task's spec as JSON text"
is "$(it_psql "SELECT dlq_entry FROM tasks WHERE id='$fixed'")" "$(f entry_id)" "tasks.dlq_entry names the DLQ entry"
is "$(jq --arg a "$jit" --arg b "$capped" '[.[] | select(.id == $a or .id == $b)] | length' <<<"$dlq")" 2 \
    "the other exhausted tasks are in the DLQ too"
like "$(ctl dlq show sleep "$fixed" 2>&1)" 'fail_always' "devsysctl dlq show prints the dead letter"
like "$(ctl dlq ls sleep 2>&1)" "$fixed" "devsysctl dlq ls lists it"

# A hand-pushed entry that dies names its stream entry as the source.
entry=$(it_redis XADD 'devsys:{sleep}:stream' '*' spec \
    '{"kind":"sleep","sleep":{"ms":0,"fail_always":true},"retry_policy":{"max_attempts":1}}')
ok "hand-pushed failing entry reaches a final state" it_wait_sql 20 \
    "SELECT count(*) FROM tasks WHERE source='$entry' AND state IN ('succeeded','failed','dead','cancelled')" 1
is "$(it_psql "SELECT state FROM tasks WHERE source='$entry'")" dead "hand-pushed failing entry ends dead"
is "$(it_dlq sleep | jq -r --arg s "$entry" '[.[] | select(.source == $s)] | length')" 1 \
    "its DLQ entry has source = the pushed entry id ($entry)"

# ------------------------------------------------ exec failures
ex=$(submit '{"kind":"exec","command":["sh","-c","exit 3"],
  "retry_policy":{"max_attempts":2,"initial_s":0.2,"factor":1,"max_s":1,"jitter":false}}')
ok "exec exit 3 with max_attempts 2 ends dead" it_wait_state 20 "$ex" dead
is "$(outcomes "$ex")" failed,dead "exec: 2 attempts, failed then dead"
e=$(it_dlq exec | jq -c --arg id "$ex" '[.[] | select(.id == $id)] | .[0] // {}')
is "$(f kind)/$(f queue)/$(f attempts)/$(f error)" "exec/exec/2/exit status 3" \
    "XRANGE 'devsys:{exec}:dlq': kind, queue, attempts, error"
nf=$(submit '{"kind":"exec","command":["no-such-command-xyz"],"retry_policy":{"max_attempts":5}}')
ok "command not found ends dead" it_wait_state 20 "$nf" dead
is "$(outcomes "$nf")" dead "command not found is not retried (one attempt, dead)"
e=$(it_dlq exec | jq -c --arg id "$nf" '[.[] | select(.id == $id)] | .[0] // {}')
like "$(f error)" 'no-such-command-xyz' "its dead letter names the command"

# ------------------------------------------------ replay and purge
fixfile=$IT_DIR/fixed
rp=$(submit "$(jq -nc --arg f "$fixfile" '{kind:"exec", command:["sh","-c","test -e \"$0\" && echo repaired", $f],
    retry_policy:{max_attempts:1}}')")
ok "task failing until an operator fixes its cause ends dead" \
    it_wait_state 20 "$rp" dead
is "$(it_dlq exec | jq --arg id "$rp" '[.[] | select(.id == $id)] | length')" 1 "it is in the exec DLQ"
touch "$fixfile"
ok "devsysctl dlq replay exec ID" ctl dlq replay exec "$rp"
ok "the replayed task runs again and succeeds" it_wait_state 20 "$rp" succeeded
is "$(it_psql "SELECT output_tail FROM tasks WHERE id='$rp'")" repaired "the replayed run's output is recorded"
is "$(it_psql "SELECT replays FROM tasks WHERE id='$rp'")" 1 "tasks.replays counts the replay"
is "$(it_psql "SELECT count(*) FROM task_attempts WHERE task_id='$rp' AND outcome='succeeded'")" 1 \
    "one succeeded attempt row after the replay"
is "$(it_dlq exec | jq --arg id "$rp" '[.[] | select(.id == $id)] | length')" 0 "replay removed it from the DLQ"
is "$(it_psql "SELECT count(*) FROM audit_log WHERE action='dlq.replay'
                 AND coalesce(target, '') || coalesce(detail::text, '') LIKE '%$rp%'")" 1 \
    "the replay is in the audit log"

ok "devsysctl dlq purge exec ID" ctl dlq purge exec "$nf"
is "$(it_dlq exec | jq --arg id "$nf" '[.[] | select(.id == $id)] | length')" 0 "purge removed it from the DLQ"
is "$(it_psql "SELECT state, dlq_purged_at IS NOT NULL FROM tasks WHERE id='$nf'")" 'dead|t' \
    "the purged task stays dead with dlq_purged_at set"
is "$(it_psql "SELECT count(*) FROM audit_log WHERE action='dlq.purge'")" 1 "the purge is in the audit log"
sleep 3   # three reconciler periods: a purged dead letter must not come back
is "$(it_dlq exec | jq --arg id "$nf" '[.[] | select(.id == $id)] | length')" 0 \
    "the reconciler does not re-add a purged dead letter"
is "$(it_dlq exec | jq --arg id "$ex" '[.[] | select(.id == $id)] | length')" 1 "the other exec dead letter stays"

ok "devsysctl dlq purge sleep --all" ctl dlq purge sleep --all
is "$(it_redis XLEN 'devsys:{sleep}:dlq')" 0 "the sleep DLQ is empty"
is "$(it_psql "SELECT count(*) FROM tasks WHERE queue='sleep' AND state='dead' AND dlq_purged_at IS NULL")" 0 \
    "every dead sleep task is marked purged"
ok "agent still running" kill -0 "${AGENT_PIDS[a1]}"
it_done
