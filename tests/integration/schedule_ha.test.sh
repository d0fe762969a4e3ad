#!/usr/bin/env bash
# Schedules with two managers: a schedule every second for 20 s, with manager
# A kill -9'd mid-way and started again later, enqueues each tick exactly
# once: one task row per tick second, no duplicate, no gap, and each task
# published once. catch_up "all": a pass that comes late (a loaded machine)
# fires every tick it finds due, so a gap would be a lost tick.
source "$(dirname "$0")/itest.sh"
it_setup
it_start_manager || it_bail "start manager A"
A_PID=$MANAGER_PID
A_URL=$DEVSYS_URL

# start_b: a second manager on its own port, same stores
start_b() {
    DEVSYS_LISTEN=127.0.0.1:0 "$BIN/manager/devsys-manager" </dev/null >>"$IT_DIR/manager-b.log" 2>&1 7>&- &
    B_PID=$!
    it_track_pid "$B_PID"
    local addr
    addr=$(ds_bound_addr "$IT_DIR/manager-b.log" "$B_PID" listening) || return 1
    B_URL=http://$addr
    ds_wait_http "$B_URL/healthz" 20
}
start_b || it_bail "start manager B"

code=$(curl -s -o "$IT_DIR/body" -w '%{http_code}' -X POST -H "Authorization: Bearer $DEVSYS_TOKEN" \
    "$A_URL/v1/schedules" -d '{"name":"heartbeat","every":"1s","catch_up":"all","spec":{"kind":"noop","queue":"hb"}}')
is "$code" 201 "schedule every 1s created"
sid=$(jq -r .id "$IT_DIR/body")
key="schedule:$sid:%"

sleep 7
kill -9 "$A_PID"
ds_wait_pid_gone "$A_PID" 10
MANAGER_PID=''
it_diag "manager A kill -9'd at $(date +%T)"
sleep 6
it_start_manager || it_bail "restart manager A"
it_diag "manager A started again at $(date +%T)"
sleep 7
curl -s -o /dev/null -X POST -H "Authorization: Bearer $DEVSYS_TOKEN" "$DEVSYS_URL/v1/schedules/heartbeat/pause"
sleep 1.5 # a fire in flight when the pause came lands

# One row per tick: the tick time is the key's last part.
ticks=$(it_psql "SELECT split_part(idempotency_key, ':', 3)::bigint FROM tasks
                 WHERE idempotency_key LIKE '$key' ORDER BY 1")
n=$(wc -l <<<"$ticks")
first=$(head -n 1 <<<"$ticks") last=$(tail -n 1 <<<"$ticks")
it_diag "$n tasks for ticks $first..$last ($((last - first + 1)) seconds)"
ok "about 20 s of ticks ($n)" test "$n" -ge 18
is "$(sort -u <<<"$ticks" | wc -l)" "$n" "no tick has two tasks"
is "$((last - first + 1))" "$n" "no gap: every second from the first tick to the last has its task"
is "$(it_psql "SELECT count(*) FROM schedule_ticks WHERE schedule_id = '$sid' AND missed > 0")" 0 \
    "no tick was recorded missed"
is "$(it_psql "SELECT count(*) FROM schedule_ticks WHERE schedule_id = '$sid'")" "$n" "one tick row per task"
is "$(it_psql "SELECT count(*) FROM tasks t JOIN schedule_ticks k ON k.task_id = t.id
               WHERE k.schedule_id = '$sid'
                 AND t.idempotency_key = 'schedule:$sid:' || extract(epoch FROM k.tick_at)::bigint")" "$n" \
    "each tick row names the task of its tick"
# Published once each (a manager killed between its commit and its XADD would
# leave one for the reconciler, 30 s later: allowed one short).
xlen=$(it_redis XLEN 'devsys:{hb}:stream')
ok "each task published once ($xlen entries for $n tasks)" test "$xlen" -le "$n" -a "$xlen" -ge $((n - 1))
# fired LOG: the ticks a manager's log says it fired
fired() { grep -o '"schedule heartbeat: [0-9]* ticks\? fired' "$1" | awk '{ n += $3 } END { print n + 0 }'; }
fired_a=$(fired "$IT_DIR/manager.log")
fired_b=$(fired "$IT_DIR/manager-b.log")
it_diag "ticks fired by manager A (both runs): $fired_a, by manager B: $fired_b"
is "$((fired_a + fired_b))" "$n" "the managers' fire logs add up to the tasks"
it_diag "$(curl -s "$B_URL/metrics" | grep '^devsys_schedule_ticks_lost_total') (B's fires that A had made first)"
ok "B fired while A was down" test "$fired_b" -ge 5
it_done
