#!/usr/bin/env bash
# Priority levels on the wire: the manager publishes a task to the stream of
# its priority level (high: <prefix>:{Q}:stream:high, normal: :stream, low:
# :stream:low); the reconciler's republish and a DLQ replay keep the level.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
DEVSYS_RECONCILE_S=1 DEVSYS_REPUBLISH_AFTER_S=1 it_start_manager || it_bail "start manager"
H='devsys:{pq}:stream:high' N='devsys:{pq}:stream' L='devsys:{pq}:stream:low'
submit() {
    curl -sf -X POST -H "Authorization: Bearer $DEVSYS_TOKEN" "$DEVSYS_URL/v1/tasks" -d "$1" | jq -r '.tasks[].id'
}
# ids_in KEY: the task ids of a stream's entries, space-separated
ids_in() { it_redis XRANGE "$1" - + | awk 'p {print; p=0} $0 == "id" {p=1}' | tr '\n' ' '; }

hi=$(submit '{"kind":"noop","queue":"pq","priority":5}')
no=$(submit '{"kind":"noop","queue":"pq"}')
zero=$(submit '{"kind":"noop","queue":"pq","priority":0}')
lo=$(submit '{"kind":"noop","queue":"pq","priority":-100}')
is "$(ids_in "$H")" "$hi " "priority 5: on the high stream"
is "$(ids_in "$N")" "$no $zero " "no priority and priority 0: on the normal stream, as before"
is "$(ids_in "$L")" "$lo " "priority -100: on the low stream"

# ---- Redis loses everything: the reconciler republishes each at its level
it_redis FLUSHALL >/dev/null
ok "the reconciler republishes the high task to the high stream" \
    it_wait_for 20 '[[ $(ids_in "$H") == "$hi " ]]'
ok "the low one to the low stream" it_wait_for 10 '[[ $(ids_in "$L") == "$lo " ]]'
ok "the normal ones to the normal stream" it_wait_for 10 '[[ $(ids_in "$N" | tr " " "\n" | sort | tr "\n" " ") == "$(printf "%s\n" "$no" "$zero" | sort | tr "\n" " ")" ]]'
sleep 3
is "$(it_redis XLEN "$H") $(it_redis XLEN "$N") $(it_redis XLEN "$L")" "1 2 1" \
    "no extra copies on later passes (each level's stream is probed on its own)"

# ---- replay from the DLQ keeps the level; the DLQ stays one per queue
spec='{"kind":"noop","queue":"pq","priority":7}'
d=$(it_psql "INSERT INTO tasks (id, queue, kind, spec, state, attempt, max_attempts, priority, last_error, finished_at)
             VALUES (gen_random_uuid(), 'pq', 'noop', '$spec', 'dead', 1, 1, 7, 'boom', now()) RETURNING id")
e=$(it_redis XADD 'devsys:{pq}:dlq' '*' id "$d" kind noop queue pq attempts 1 error boom \
    failed_at "$(date -u +%FT%TZ)" agent a9 source '' spec "$spec")
it_psql "UPDATE tasks SET dlq_entry = '$e' WHERE id = '$d'" >/dev/null
is "$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $DEVSYS_TOKEN" \
    "$DEVSYS_URL/v1/dlq/pq/$d/replay")" 200 "replay a dead high-priority task"
is "$(ids_in "$H")" "$hi $d " "the replayed task is on the high stream"
is "$(it_redis XLEN 'devsys:{pq}:dlq')" 0 "and gone from the queue's one DLQ"
it_done
