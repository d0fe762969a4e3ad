#!/usr/bin/env bash
# PostgreSQL unreachable, two ways, on a private cluster: stopped (connection
# refused) and SIGSTOPped (TCP connects, nothing answers). With
# DEVSYS_DB_TIMEOUT_MS=1000 the manager answers /healthz, lists and submits
# with 503 + Retry-After within a bound; a submit that never reached the
# server is never inserted later; a submit retried with the same
# idempotency_key after recovery yields exactly one task.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
it_private_postgres || it_bail "private PostgreSQL cluster"
DEVSYS_DB_TIMEOUT_MS=1000 DEVSYS_RECONCILE_S=0 it_start_manager || it_bail "start manager"
T=test-admin-token
B=$IT_DIR/body
H=$IT_DIR/headers

# req METHOD PATH [BODY]: prints "STATUS SECONDS"; body in $B, headers in $H.
# The client gives up after 10 s (status 000).
req() {
    local data=()
    [[ -n ${3:-} ]] && data=(-d "$3")
    curl -s -m 10 -o "$B" -D "$H" -w '%{http_code} %{time_total}' -X "$1" \
        -H "Authorization: Bearer $T" "${data[@]}" "$DEVSYS_URL$2"
}
# fast "STATUS SECONDS": the answer came in under 5 s
fast() { awk -v t="${1#* }" 'BEGIN { exit !(t < 5) }'; }
healthy() { [[ $(curl -s -m 5 -o /dev/null -w '%{http_code}' "$DEVSYS_URL/healthz") == 200 ]]; }
count_key() { it_psql "SELECT count(*) FROM tasks WHERE idempotency_key = '$1'"; }

# check_outage NAME: what a client sees while the server is away.
check_outage() {
    local n=$1 r
    r=$(req GET /healthz)
    is "${r%% *}" 503 "$n: /healthz answers 503"
    ok "$n: /healthz answers within 5 s ($r)" fast "$r"
    like "$(jq -r .postgres "$B")" 'unavailable|timeout|connection' "$n: /healthz names postgres"
    is "$(jq -r .redis "$B")" ok "$n: /healthz: redis ok"

    r=$(req GET '/v1/tasks?limit=5')
    is "${r%% *}" 503 "$n: list answers 503"
    ok "$n: list answers within 5 s ($r)" fast "$r"
    like "$(cat "$H")" $'Retry-After: [0-9]+\r' "$n: 503 carries Retry-After"
    like "$(jq -r .error "$B")" '^database unavailable' "$n: the error says the database is unavailable"

    r=$(req POST /v1/tasks "{\"kind\":\"noop\",\"name\":\"$n\",\"idempotency_key\":\"key-$n\"}")
    is "${r%% *}" 503 "$n: submit answers 503"
    ok "$n: submit answers within 5 s ($r)" fast "$r"
    like "$(cat "$H")" $'Retry-After: [0-9]+\r' "$n: submit's 503 carries Retry-After"
    like "$(jq -r .note "$B")" 'not recorded|idempotency_key' "$n: the 503 says what became of the tasks"
    r=$(req POST /v1/tasks "{\"kind\":\"noop\",\"name\":\"ghost-$n\"}")
    is "${r%% *}" 503 "$n: a submit without idempotency_key answers 503"
}

# after_outage NAME: recovery; the retried submit gives one task in all.
after_outage() {
    local n=$1 r
    ok "$n: /healthz is 200 again" it_wait_for 30 healthy
    r=$(req POST /v1/tasks "{\"kind\":\"noop\",\"name\":\"$n\",\"idempotency_key\":\"key-$n\"}")
    like "${r%% *}" '^20[01]$' "$n: the retried submit is accepted"
    sleep 1.5 # anything the outage held back would land now
    is "$(count_key "key-$n")" 1 "$n: exactly one task for the idempotency key"
    r=$(req POST /v1/tasks "{\"kind\":\"noop\",\"name\":\"$n\",\"idempotency_key\":\"key-$n\"}")
    is "${r%% *}" 200 "$n: submitting it again returns the existing task (200)"
    is "$(count_key "key-$n")" 1 "$n: still one task"
}

# ---- stopped: connections refused
ok "pg_ctl stop -m fast" it_private_postgres_ctl stop
sleep 0.5
check_outage stopped
ok "PostgreSQL started again" it_private_postgres_ctl start
after_outage stopped
is "$(it_psql "SELECT count(*) FROM tasks WHERE spec->>'name' = 'ghost-stopped'")" 0 \
    "stopped: a submit refused during the outage was never inserted"

# ---- SIGSTOPped: the postmaster and its backends hang, sockets stay open
pm=$(head -n 1 "$IT_PRIV_PG_DIR/data/postmaster.pid")
pids="$pm $(pgrep -P "$pm" | tr '\n' ' ')"
it_on_exit "kill -CONT $pids"
# shellcheck disable=SC2086 # $pids is a list of pids: split on purpose
ok "SIGSTOP postgres ($pids)" kill -STOP $pids
check_outage stopped-process
r=$(req GET /healthz)
ok "stopped-process: /healthz keeps answering within 5 s ($r)" fast "$r"
# shellcheck disable=SC2086 # $pids is a list of pids: split on purpose
ok "SIGCONT postgres" kill -CONT $pids
after_outage stopped-process
ghosts=$(it_psql "SELECT count(*) FROM tasks WHERE spec->>'name' = 'ghost-stopped-process'")
it_diag "stopped-process: $ghosts ghost submit(s) committed after SIGCONT (sent before the timeout: documented as possible)"

ok "manager survived" kill -0 "$MANAGER_PID"
it_done
