#!/usr/bin/env bash
# Bad paging input is a 400 naming the parameter, never a 503: malformed or
# out-of-range `after` and `limit` on the task list and the DLQ list. A show of
# a task that is not dead is answered from PostgreSQL without reading the DLQ
# (checked on Redis' command statistics against a DLQ of 20,000 entries).
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
DEVSYS_RECONCILE_S=0 it_start_manager || it_bail "start manager"
B=$IT_DIR/body
call() { curl -s -o "$B" -w '%{http_code}' -H "Authorization: Bearer $DEVSYS_TOKEN" "$DEVSYS_URL$1"; }
U=0190e6a8-0000-7000-8000-000000000000

# ---- task list
ctl submit - <<<'[{"kind":"noop"},{"kind":"noop"},{"kind":"noop"}]' >/dev/null
is "$(call '/v1/tasks?limit=2')" 200 "a page of two"
next=$(jq -r .next "$B")
is "$(call "/v1/tasks?limit=2&after=$next")/$(jq -r '.tasks | length' "$B")" 200/1 "the cursor it gave works"
for after in "99999999999999999999_$U" "999999999999999999_$U" "1_$U-tail" "1_${U}x" "_$U" "12" "-5_$U"; do
    is "$(call "/v1/tasks?after=$after")" 400 "task list after=$after: 400"
    like "$(jq -r .error "$B")" '^after: ' "  the error names after"
done
for limit in 0 1001 -1 abc 99999999999999999999 ''; do
    is "$(call "/v1/tasks?limit=$limit")" 400 "task list limit='$limit': 400"
    like "$(jq -r .error "$B")" '^limit: ' "  the error names limit"
done

# ---- DLQ list
DLQ='devsys:{exec}:dlq'
it_redis XADD "$DLQ" '*' id "$U" kind exec queue exec error x spec '{}' >/dev/null
for after in 99999999999999999999-0 0-99999999999999999999 18446744073709551616-0 1-2-3 abc; do
    is "$(call "/v1/dlq/exec?after=$after")" 400 "DLQ list after=$after: 400"
    like "$(jq -r .error "$B")" '^after: ' "  the error names after"
done
is "$(call '/v1/dlq/exec?after=18446744073709551615-18446744073709551615')/$(jq -c .entries "$B")" "200/[]" \
    "DLQ list after the largest id: 200, nothing"
is "$(call '/v1/dlq/exec?after=0-0')/$(jq -r '.entries | length' "$B")" 200/1 "DLQ list after=0-0: everything"
for limit in 0 1001 x; do
    is "$(call "/v1/dlq/exec?limit=$limit")" 400 "DLQ list limit=$limit: 400"
done

# ---- show by task id: a lookup, not a scan
awk -v key="$DLQ" 'BEGIN {
    for (i = 0; i < 20000; i++) {
        id = sprintf("00000000-0000-4000-8000-%012d", i)
        printf "*11\r\n$4\r\nXADD\r\n$%d\r\n%s\r\n$1\r\n*\r\n$2\r\nid\r\n$36\r\n%s\r\n", length(key), key, id
        printf "$4\r\nkind\r\n$4\r\nexec\r\n$5\r\nerror\r\n$1\r\nx\r\n$4\r\nspec\r\n$2\r\n{}\r\n"
    } }' | it_redis --pipe >"$IT_DIR/pipe.out" 2>&1
is "$(it_redis XLEN "$DLQ")" 20001 "a DLQ of 20,001 entries"
live=$(ctl submit - <<<'{"kind":"exec","command":["true"]}')
dead=$(it_psql "INSERT INTO tasks (id, queue, kind, spec, state) VALUES (gen_random_uuid(), 'exec', 'exec', '{}', 'dead')
                RETURNING id")
entry=$(it_redis XADD "$DLQ" '*' id "$dead" kind exec queue exec error boom spec '{}')
it_psql "UPDATE tasks SET dlq_entry = '$entry' WHERE id = '$dead'" >/dev/null

# xrange_calls: XRANGE + XREVRANGE calls since the last CONFIG RESETSTAT
xrange_calls() {
    it_redis INFO commandstats | tr -d '\r' \
        | awk -F'[=:,]' '/^cmdstat_(xrange|xrevrange):/ { n += $3 } END { print n + 0 }'
}
it_redis CONFIG RESETSTAT >/dev/null
is "$(call "/v1/dlq/exec/$live")" 404 "show of a queued task: 404"
like "$(jq -r .error "$B")" 'queued' "  the error says the task is queued"
is "$(xrange_calls)" 0 "  answered without reading the DLQ"
dlq_null=$(it_psql "INSERT INTO tasks (id, queue, kind, spec, state) VALUES (gen_random_uuid(), 'exec', 'exec', '{}', 'dead')
                    RETURNING id")
is "$(call "/v1/dlq/exec/$dlq_null")" 404 "show of a dead task without a recorded entry: 404"
is "$(xrange_calls)" 0 "  answered without reading the DLQ"
is "$(call "/v1/dlq/exec/$dead")/$(jq -r .error "$B")" 200/boom "show of a dead task: its letter"
is "$(xrange_calls)" 1 "  one XRANGE of that one entry"
it_done
