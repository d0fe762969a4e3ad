#!/usr/bin/env bash
# No flooding: 1,000 tasks going dead in a burst reach a destination as a few
# summaries, no faster than its token bucket (0.5 messages/s, burst 1), whose
# counts add up to exactly 1,000, each listing at most max_listed events and
# "more" for the rest; every event is counted in exactly one delivered message.
# The same storm to a Slack-format destination gives {"text": ...} summaries
# ending "… and N more". Two managers run the grouping pass at once.
source "$(dirname "$0")/itest.sh"
source "$(dirname "$0")/notify_lib.sh"
notify_setup DEVSYS_CONCURRENCY=200
# a second manager grouping the same events (row locks split the work)
DEVSYS_LISTEN=127.0.0.1:0 DEVSYS_NOTIFY_TICK_S=0.2 "$BIN/manager/devsys-manager" \
    </dev/null >>"$IT_DIR/manager-2.log" 2>&1 7>&- &
it_track_pid $!
start_receiver storm 0 --secret "$SECRET" || it_bail "start receiver"
start_receiver chat 0 --secret "$SECRET" || it_bail "start receiver"
for d in storm chat; do
    fmt=json; [[ $d == chat ]] && fmt=slack
    ok "destination $d ($fmt, 0.5 msg/s, burst 1)" ctl notify add $d "${RECV_URL[$d]}" task.dead format=$fmt \
        secret_ref=ops rate.per_s=0.5 rate.burst=1 group_wait_s=1 group_interval_s=1 max_listed=10
done

N=1000
# each task sleeps 0 to 1.8 s before it fails: with 200 at a time the storm lasts ~5 s
jq -nc --argjson n $N '[range($n) | {kind:"sleep",name:"storm-\(.)",sleep:{ms:((. % 10) * 200),fail_always:true},retry_policy:{max_attempts:1}}]' \
    | ctl submit - >"$IT_DIR/ids"
is "$(wc -l <"$IT_DIR/ids" | tr -d ' ')" $N "$N tasks submitted in one batch"
ok "$N tasks go dead" it_wait_sql 60 "SELECT count(*) FROM tasks WHERE kind='sleep' AND state='dead'" $N
ok "every event is sent to storm" it_wait_sql 60 \
    "SELECT count(*) FROM notify_event_dest WHERE destination='storm' AND state='sent'" $N
ok "every event is sent to chat" it_wait_sql 60 \
    "SELECT count(*) FROM notify_event_dest WHERE destination='chat' AND state='sent'" $N

counts=$(jq -r 'if .body.type == "summary" then .body.data.count else 1 end' "$IT_DIR/recv-storm.jsonl" | tr '\n' ' ')
msgs=$(received storm)
it_diag "storm: $N events in $msgs messages, counts: $counts"
is "$(events_covered storm)" $N "the summaries' counts add up to exactly $N"
# The bucket allows one message at once and one per 2 s after: the storm's own
# span (a loaded machine stretches it) bounds how many messages it may take.
span=$(it_psql "SELECT ceil(extract(epoch FROM max(at) - min(at))) FROM notify_events WHERE type = 'task.dead'")
most=$(( 2 + ${span%.*} / 2 ))
it_diag "the storm's events span ${span}s: at most $most messages"
ok "a storm of ${span}s becomes a few messages (2 to $most), not one per event" test "$msgs" -ge 2 -a "$msgs" -le "$most"
is "$(jq -s '[.[] | select(.body.type == "summary") | select(.body.data.listed > 10 or .body.data.more != .body.data.count - .body.data.listed or (.body.data.events | length) != .body.data.listed)] | length' "$IT_DIR/recv-storm.jsonl")" 0 \
    "each summary lists at most 10 events and counts the rest in more"
is "$(jq -r '.body.data.events[]?.data.task // empty, .body.data.task // empty' "$IT_DIR/recv-storm.jsonl" | sort | uniq -d | wc -l | tr -d ' ')" 0 \
    "no event is listed in two messages"
is "$(it_psql "SELECT count(DISTINCT delivery) FROM notify_event_dest WHERE destination='storm'")" "$msgs" \
    "every event belongs to one of the delivered messages"
gaps=$(it_psql "SELECT string_agg(round(extract(epoch FROM g)::numeric, 2)::text, ' ') FROM (
    SELECT created_at - lag(created_at) OVER (ORDER BY created_at) AS g FROM notify_deliveries
    WHERE destination='storm') x WHERE g IS NOT NULL")
it_diag "seconds between storm's messages: $gaps"
ok "messages are at least 2 s apart (token bucket 0.5/s, burst 1)" \
    awk -v g="$gaps" 'BEGIN { n = split(g, a, " "); for (i = 1; i <= n; i++) if (a[i] < 1.95) exit 1 }'

slack=$(jq -r '.body.text | if test("^devsys: [0-9]+ events") then capture("^devsys: (?<n>[0-9]+) events").n else "1" end' \
    "$IT_DIR/recv-chat.jsonl" | tr '\n' ' ')
it_diag "chat (slack): counts: $slack"
passes=$(grep -c 'deliveries queued' "$IT_DIR/manager.log" "$IT_DIR/manager-2.log" | tr '\n' ' ')
it_diag "passes that queued deliveries, per manager: $passes"
is "$(tr ' ' '\n' <<<"$slack" | awk '{ s += $1 } END { print s }')" $N "the Slack summaries count $N events too"
like "$(jq -r .body.text "$IT_DIR/recv-chat.jsonl" | tr '\n' ' ')" '• task [0-9a-f-]{36} "storm-[0-9]+" \(queue sleep\) is dead after 1 attempt\(s\): fail_always.*… and [0-9]+ more' \
    "a Slack summary lists tasks and ends with … and N more"
like "$(ctl notify events destination=storm limit=3)" 'counts: \{"sent":1000\}' "devsysctl notify events counts 1000 sent"
it_done
