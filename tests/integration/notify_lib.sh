# shellcheck shell=bash
# tests/integration/notify_lib.sh: what the notify*.test.sh share: the example
# receiver (deploy/examples/webhook_receiver.py, python3 stdlib) on a loopback
# port, and reading what it accepted. Sourced after itest.sh.
# shellcheck disable=SC2154 # ds_root: set by itest.sh, sourced first
RECEIVER=$ds_root/deploy/examples/webhook_receiver.py
declare -gA RECV_PID=() RECV_URL=()

# new_secret: a fresh "whsec_<base64 of 24 random bytes>".
new_secret() { printf 'whsec_%s\n' "$(head -c 24 /dev/urandom | base64)"; }

# notify_setup [AGENT_VAR=VAL...]: a database, the manager (grouping every
# 0.2 s) and agent n1 on queues notify and sleep holding one secret, $SECRET,
# under the name "ops".
notify_setup() {
    it_setup
    SECRET=$(new_secret)
    printf '{"ops": "%s"}\n' "$SECRET" >"$IT_DIR/secrets.json"
    DEVSYS_NOTIFY_TICK_S=0.2 it_start_manager || it_bail "start manager"
    it_start_agent n1 DEVSYS_QUEUES=notify,sleep DEVSYS_NOTIFY_SECRETS_FILE="$IT_DIR/secrets.json" "$@"
}

# start_receiver NAME PORT ARGS...: the receiver on 127.0.0.1:PORT (0: a free
# one), accepted deliveries in $IT_DIR/recv-NAME.jsonl; sets RECV_URL[NAME].
start_receiver() {
    local name=$1 port=$2 line
    shift 2
    python3 "$RECEIVER" --port "$port" --log "$IT_DIR/recv-$name.jsonl" "$@" \
        </dev/null >"$IT_DIR/recv-$name.out" 2>>"$IT_DIR/recv-$name.log" 7>&- &
    RECV_PID[$name]=$!
    it_track_pid "${RECV_PID[$name]}"
    it_wait_for 10 "grep -q 'listening on' '$IT_DIR/recv-$name.out'" || return 1
    line=$(grep -o 'listening on .*' "$IT_DIR/recv-$name.out" | tail -n 1)
    RECV_URL[$name]=http://${line#listening on }/hook
}

stop_receiver() {
    kill "${RECV_PID[$1]}" 2>/dev/null
    ds_wait_pid_gone "${RECV_PID[$1]}" 10
}

# received NAME: deliveries accepted so far.
received() { [[ -f $IT_DIR/recv-$1.jsonl ]] && wc -l <"$IT_DIR/recv-$1.jsonl" | tr -d ' ' || echo 0; }

# events_covered NAME: the events the accepted deliveries carry (a summary
# counts data.count, a single event 1).
events_covered() {
    [[ -f $IT_DIR/recv-$1.jsonl ]] || { echo 0; return; }
    jq -s 'map(if .body.type == "summary" then .body.data.count else 1 end) | add // 0' "$IT_DIR/recv-$1.jsonl"
}

# api GET|POST|DELETE PATH [BODY]: the manager's answer (status on the last line).
api() {
    curl -s -X "$1" -H "Authorization: Bearer $DEVSYS_TOKEN" -H 'Content-Type: application/json' \
        ${3:+--data-binary "$3"} -w '\n%{http_code}' "$DEVSYS_URL$2"
}
