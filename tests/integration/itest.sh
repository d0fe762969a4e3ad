# shellcheck shell=bash
# tests/integration/itest.sh: harness sourced by every tests/integration/*.test.sh.
# Gives each script a fresh database in the runner's shared PostgreSQL cluster,
# its own redis-server, the manager and agents as real processes, and TAP
# helpers. Everything started here is stopped by PID on exit and the database
# is dropped.
#
#   source "$(dirname "$0")/itest.sh"
#   it_setup; it_start_manager; it_start_agent a1 DEVSYS_QUEUES=exec
#   id=$(devsysctl submit - <<<'{"kind":"exec","command":["true"]}')
#   ok "task succeeds" it_wait_sql 10 "select state from tasks where id='$id'" succeeded
#   it_done

# shellcheck source=tests/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/lib.sh"

IT_NAME=$(basename "$0" .sh)
IT_NAME=${IT_NAME%.test}
IT_N=0              # checks run so far
IT_FAILED=0         # checks failed so far
IT_DONE=0           # it_done was called
IT_DIR=''
IT_DB=''
IT_PG_PORT=''
IT_LAST=''          # last output seen by it_wait_sql
MANAGER_PID=''
REDIS_PID=''
declare -gA AGENT_PIDS=()
declare -gA AGENT_STATUS=()
declare -gA AGENT_METRICS=()    # NAME -> http://HOST:PORT of its metrics listener (see it_start_agent)
declare -ga IT_PIDS=()          # extra processes a test asks us to stop
declare -ga IT_CLEANUP=()       # extra shell commands run on exit, last first
BIN=${DS_BUILD:-$ds_root/build}
[[ $BIN == /* ]] || BIN=$ds_root/$BIN
export BIN

# TAP goes to fd 7, a copy of the original stdout, so that results printed
# while `ok` captures a command's output (or from the exit trap) still reach
# the runner. Processes we start get 7>&- so they do not hold it open.
exec 7>&1

# IT_DIR exists from the start so that tests without it_setup can use it.
IT_DIR=$(mktemp -d "${TMPDIR:-/tmp}/devsys-it-$IT_NAME.XXXXXX")
chmod 755 "$IT_DIR"
export IT_DIR

# ---------------------------------------------------------------- TAP

# Prints the tail of every process log under IT_DIR as TAP diagnostics
# (redis-server's own logs stay in IT_DIR: they are rarely the story).
it_log_tails() {
    local f lines=${1:-25}
    while IFS= read -r f; do
        [[ -s $f ]] || continue
        printf '# --- %s (last %s lines)\n' "${f#"$IT_DIR"/}" "$lines"
        tail -n "$lines" "$f" | sed 's/^/#   /'
    done >&7 < <(find "$IT_DIR" -maxdepth 3 -name '*.log' -type f -not -name 'redis.log' \
                    2>/dev/null | sort)
}

# Log tails once per script at the first failure; it_done shows them again.
_it_fail_tails() {
    if [[ ${IT_TAILS_SHOWN:-0} == 0 ]]; then
        IT_TAILS_SHOWN=1
        it_log_tails
    fi
}

_it_result() { # _it_result STATUS DESC
    IT_N=$((IT_N + 1))
    if [[ $1 == 0 ]]; then
        printf 'ok %d - %s\n' "$IT_N" "$2" >&7
    else
        IT_FAILED=$((IT_FAILED + 1))
        printf 'not ok %d - %s\n' "$IT_N" "$2" >&7
    fi
}

# Diagnostics: each line of the text prefixed with "# ".
it_diag() {
    local line
    while IFS= read -r line; do printf '# %s\n' "$line"; done <<<"$*" >&7
}

# ok DESC CMD...: runs CMD in this shell (so exports persist), passes on exit 0.
ok() {
    local desc=$1 out st
    shift
    out=$(mktemp "$IT_DIR/.ok.XXXXXX")
    "$@" >"$out" 2>&1
    st=$?
    _it_result "$st" "$desc"
    if [[ $st != 0 ]]; then
        it_diag "command: $* (exit $st)"
        if [[ -s $out ]]; then
            printf '# got:\n' >&7
            tail -n 40 "$out" | sed 's/^/#   /' >&7
        fi
        _it_fail_tails
    fi
    rm -f "$out"
    return "$st"
}

# it_not CMD...: succeeds when CMD fails (for `ok "desc" it_not cmd`).
it_not() { ! "$@"; }

# is GOT EXPECTED DESC
is() {
    local st=0
    [[ $1 == "$2" ]] || st=1
    _it_result "$st" "$3"
    if [[ $st != 0 ]]; then
        it_diag "got: '$1'"
        it_diag "expected: '$2'"
        _it_fail_tails
    fi
    return "$st"
}

# like GOT REGEX DESC (bash extended regex)
like() {
    local st=0
    [[ $1 =~ $2 ]] || st=1
    _it_result "$st" "$3"
    if [[ $st != 0 ]]; then
        it_diag "got: '$1'"
        it_diag "expected to match: $2"
        _it_fail_tails
    fi
    return "$st"
}

# Sanitizer reports in our logs are failures even when every check passed.
_it_sanitizer_check() {
    local hits=''
    [[ -n $IT_DIR && -d $IT_DIR ]] || return 0
    hits=$(grep -rlE --include='*.log' \
        'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$IT_DIR" 2>/dev/null)
    if [[ -n $hits || ${DS_SANITIZE:-0} == 1 ]]; then
        if [[ -n $hits ]]; then
            _it_result 1 "no sanitizer reports in process logs"
            local f
            for f in $hits; do
                it_diag "--- $f"
                grep -E -A 30 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$f" \
                    | head -n 60 | sed 's/^/#   /' >&7
            done
        else
            _it_result 0 "no sanitizer reports in process logs"
        fi
    fi
}

# it_done: stops the processes (so leak reports get written), checks the logs
# for sanitizer reports, prints the plan and exits 0 or 1.
it_done() {
    _it_stop_all
    _it_sanitizer_check
    printf '1..%d\n' "$IT_N" >&7
    IT_DONE=1
    if (( IT_FAILED > 0 )); then
        printf '# logs at the end:\n' >&7
        it_log_tails
        printf '# %d of %d checks failed; logs kept in %s\n' "$IT_FAILED" "$IT_N" "$IT_DIR" >&7
        exit 1
    fi
    exit 0
}

# A setup step failed: report it as a failed check and stop the script.
it_bail() {
    _it_result 1 "$1"
    [[ $# -gt 1 ]] && it_diag "${*:2}"
    it_log_tails 40
    printf '1..%d\n' "$IT_N" >&7
    IT_DONE=1
    exit 1
}

# ---------------------------------------------------------------- waiting

# it_wait_for TIMEOUT_S 'shell condition': polls every 0.1 s; 1 on timeout.
it_wait_for() {
    local deadline
    deadline=$(( $(ds_now_ms) + $(ds_secs_to_ms "$1") ))
    until eval "$2"; do
        if (( $(ds_now_ms) >= deadline )); then
            printf 'it_wait_for: timed out after %ss waiting for: %s\n' "$1" "$2" >&2
            return 1
        fi
        sleep 0.1
    done
    return 0
}

# it_wait_sql TIMEOUT_S "SQL" EXPECTED: polls until the query prints EXPECTED.
# IT_LAST holds the last output.
it_wait_sql() {
    local deadline
    deadline=$(( $(ds_now_ms) + $(ds_secs_to_ms "$1") ))
    while :; do
        IT_LAST=$(it_psql "$2" 2>&1)
        [[ $IT_LAST == "$3" ]] && return 0
        if (( $(ds_now_ms) >= deadline )); then
            printf 'it_wait_sql: timed out after %ss\n  query: %s\n  expected: %s\n  last got: %s\n' \
                "$1" "$2" "$3" "$IT_LAST" >&2
            return 1
        fi
        sleep 0.1
    done
}

# it_wait_state TIMEOUT_S TASK_ID STATE: waits until the task is in STATE and
# gives up at once when it reaches another final state (succeeded, failed,
# dead, cancelled), so a wrong outcome fails fast. IT_LAST holds the last state.
it_wait_state() {
    local deadline
    deadline=$(( $(ds_now_ms) + $(ds_secs_to_ms "$1") ))
    while :; do
        IT_LAST=$(it_psql "SELECT state FROM tasks WHERE id='$2'" 2>&1)
        [[ $IT_LAST == "$3" ]] && return 0
        case $IT_LAST in
            succeeded|failed|dead|cancelled)
                printf 'it_wait_state: task %s ended %s, expected %s\n' "$2" "$IT_LAST" "$3" >&2
                it_psql "SELECT attempt, outcome, agent, error FROM task_attempts
                         WHERE task_id='$2' ORDER BY attempt" >&2
                return 1 ;;
        esac
        if (( $(ds_now_ms) >= deadline )); then
            printf 'it_wait_state: task %s still %s after %ss, expected %s\n' "$2" "$IT_LAST" "$1" "$3" >&2
            return 1
        fi
        sleep 0.1
    done
}

# it_wait_all_final TIMEOUT_S STALL_S [SQL_CONDITION]: waits until every task
# (matching the condition on tasks) is in a final state; gives up after
# TIMEOUT_S, or sooner when nothing moved (same unfinished count, same number
# of attempt rows, same sum of attempts) for STALL_S. IT_LAST: unfinished count.
it_wait_all_final() {
    local cond=${3:-true} deadline last='' now stall_until
    deadline=$(( $(ds_now_ms) + $(ds_secs_to_ms "$1") ))
    stall_until=$(( $(ds_now_ms) + $(ds_secs_to_ms "$2") ))
    while :; do
        now=$(it_psql "SELECT count(*) FILTER (WHERE state NOT IN ('succeeded','failed','dead','cancelled'))
                              || ' ' || coalesce(sum(attempt), 0)
                              || ' ' || (SELECT count(*) FROM task_attempts)
                       FROM tasks WHERE $cond" 2>&1)
        IT_LAST=${now%% *}
        [[ $IT_LAST == 0 ]] && return 0
        if [[ $now != "$last" ]]; then
            last=$now
            stall_until=$(( $(ds_now_ms) + $(ds_secs_to_ms "$2") ))
        fi
        if (( $(ds_now_ms) >= deadline || $(ds_now_ms) >= stall_until )); then
            printf 'it_wait_all_final: %s tasks not final (%s); by state:\n' "$IT_LAST" \
                "$( (( $(ds_now_ms) >= deadline )) && echo "timed out after $1 s" || echo "no progress for $2 s")" >&2
            it_psql "SELECT state, count(*) FROM tasks WHERE $cond GROUP BY state ORDER BY state" >&2
            return 1
        fi
        sleep 0.2
    done
}

# ---------------------------------------------------------------- stores

# ctl ARGS...: the devsysctl of this build (DEVSYS_URL and DEVSYS_TOKEN from the env).
ctl() { "$BIN/manager/devsysctl" "$@"; }

# it_psql "SQL": runs SQL against the test database, prints the result.
it_psql() {
    psql "$DEVSYS_DATABASE_URL" -XAtq -v ON_ERROR_STOP=1 -c "$1"
}

# it_redis ARGS...: redis-cli against this script's redis-server.
it_redis() {
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"
}

# it_restart_redis [extra args]: stops and starts this script's redis-server on
# the same port (data is lost unless extra args turn persistence on).
it_restart_redis() {
    ds_stop_redis "$REDIS_PID"
    ds_start_redis "$IT_DIR/redis" "$REDIS_PORT" "$@"
}

# it_dlq QUEUE: the dead letters of QUEUE as read with
# `redis-cli XRANGE 'devsys:{QUEUE}:dlq' - +`, printed as one JSON array of
# objects {entry_id, <field>: <value>...} for jq.
it_dlq() {
    it_redis -2 --json XRANGE "${DEVSYS_PREFIX:-devsys}:{$1}:dlq" - + \
        | jq -c '[.[] | {entry_id: .[0]} + (.[1] as $f | [range(0; $f | length; 2)
                  | {($f[.]): $f[. + 1]}] | add // {})]'
}

# it_private_postgres: moves this script to a PostgreSQL cluster of its own
# (free port, database devsys, migrated), for tests that stop or restart the
# server; the runner's shared cluster must never be. Re-exports
# DEVSYS_DATABASE_URL; call after it_setup, before starting processes. The
# cluster is stopped on exit after every process.
IT_PRIV_PG_DIR=''
IT_PRIV_PG_PORT=''
it_private_postgres() {
    IT_PRIV_PG_PORT=$(ds_free_port) || return 1
    IT_PRIV_PG_DIR=$IT_DIR/pg
    ds_start_postgres "$IT_PRIV_PG_DIR" "$IT_PRIV_PG_PORT" 2>>"$IT_DIR/setup.log" 7>&- || return 1
    ds_psql "$(ds_pg_url "$IT_PRIV_PG_PORT" postgres)" "CREATE DATABASE devsys" >/dev/null || return 1
    DEVSYS_DATABASE_URL=$(ds_pg_url "$IT_PRIV_PG_PORT" devsys)
    export DEVSYS_DATABASE_URL
    "$BIN/manager/devsys-manager" migrate </dev/null >>"$IT_DIR/migrate.log" 2>&1 7>&-
}

# it_private_postgres_ctl restart|stop|start: the private cluster through
# pg_ctl (restart and stop use fast shutdown: clients are disconnected).
it_private_postgres_ctl() {
    case $1 in
        restart)
            ds_pg_run pg_ctl restart -D "$IT_PRIV_PG_DIR/data" -l "$IT_PRIV_PG_DIR/postgres.log" \
                -m fast -w -t 60 >>"$IT_DIR/pg_ctl.out" 2>&1 7>&- ;;
        stop)
            ds_pg_run pg_ctl stop -D "$IT_PRIV_PG_DIR/data" -m fast -w -t 60 \
                >>"$IT_DIR/pg_ctl.out" 2>&1 7>&- ;;
        start)
            ds_start_postgres "$IT_PRIV_PG_DIR" "$IT_PRIV_PG_PORT" 7>&- ;;
        *) return 2 ;;
    esac
}

# it_setup: fresh database + own redis + migrations; exports the DEVSYS_* env.
it_setup() {
    IT_PG_PORT=${DEVSYS_TEST_PG_PORT:-}
    [[ -n $IT_PG_PORT ]] || it_bail "it_setup" "DEVSYS_TEST_PG_PORT is not set (run through tests/run)"
    [[ -x $BIN/manager/devsys-manager ]] || it_bail "it_setup" "no $BIN/manager/devsys-manager (build first)"

    IT_DB=$(printf 'it_%s_%s' "$IT_NAME" "$$" | tr -c 'a-zA-Z0-9_\n' '_' | tr '[:upper:]' '[:lower:]')
    psql "$(ds_pg_url "$IT_PG_PORT" postgres)" -XAtq -v ON_ERROR_STOP=1 \
        -c "CREATE DATABASE \"$IT_DB\"" >"$IT_DIR/createdb.log" 2>&1 \
        || it_bail "it_setup: create database $IT_DB" "$(cat "$IT_DIR/createdb.log")"
    export DEVSYS_DATABASE_URL
    DEVSYS_DATABASE_URL=$(ds_pg_url "$IT_PG_PORT" "$IT_DB")

    REDIS_PORT=$(ds_free_port) || it_bail "it_setup: free port"
    export REDIS_PORT
    ds_start_redis "$IT_DIR/redis" "$REDIS_PORT" 2>>"$IT_DIR/setup.log" \
        || it_bail "it_setup: start redis-server"
    export DEVSYS_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
    export DEVSYS_ADMIN_TOKEN=test-admin-token
    export DEVSYS_TOKEN=test-admin-token

    "$BIN/manager/devsys-manager" migrate </dev/null >"$IT_DIR/migrate.log" 2>&1 7>&- \
        || it_bail "it_setup: devsys-manager migrate" "exit $?"
    return 0
}

# ---------------------------------------------------------------- processes

# it_start_manager: starts the manager on port 0 (the kernel picks a free
# one, the manager logs it), waits for /healthz. Exports DEVSYS_URL and
# MANAGER_PID. Returns 1 if it does not come up.
it_start_manager() {
    local addr
    DEVSYS_LISTEN=127.0.0.1:0 "$BIN/manager/devsys-manager" \
        </dev/null >>"$IT_DIR/manager.log" 2>&1 7>&- &
    MANAGER_PID=$!
    export MANAGER_PID
    addr=$(ds_bound_addr "$IT_DIR/manager.log" "$MANAGER_PID" listening) || return 1
    export DEVSYS_URL=http://$addr
    if ! ds_wait_http "$DEVSYS_URL/healthz" 20; then
        printf 'it_start_manager: %s/healthz not answering after 20 s\n' "$DEVSYS_URL" >&2
        tail -n 20 "$IT_DIR/manager.log" >&2
        return 1
    fi
    return 0
}

# it_stop_manager [SIGNAL]: TERM (then KILL after 10 s), or send SIGNAL and wait.
it_stop_manager() {
    if [[ -n ${1:-} ]]; then
        kill -s "$1" "$MANAGER_PID" 2>/dev/null
        ds_wait_pid_gone "$MANAGER_PID" 30
    fi
    ds_kill_pid "$MANAGER_PID" 10
    MANAGER_PID=''
}

# it_start_agent NAME [VAR=VAL ...]: starts devsys-agent named NAME with the
# extra environment; log in $IT_DIR/agent-NAME.log; pid in AGENT_PIDS[NAME].
# With DEVSYS_METRICS_LISTEN=HOST:0 among them, waits for the port the agent
# got and sets AGENT_METRICS[NAME] to http://HOST:PORT (1 if it never says).
it_start_agent() {
    local name=$1 arg addr
    shift
    env DEVSYS_AGENT_NAME="$name" "$@" "$BIN/agents/devsys-agent" \
        </dev/null >>"$IT_DIR/agent-$name.log" 2>&1 7>&- &
    AGENT_PIDS[$name]=$!
    unset 'AGENT_METRICS[$name]'
    for arg in "$@"; do
        [[ $arg == DEVSYS_METRICS_LISTEN=*:0 ]] || continue
        addr=$(ds_bound_addr "$IT_DIR/agent-$name.log" "${AGENT_PIDS[$name]}" "metrics listening") || return 1
        AGENT_METRICS[$name]=http://$addr
    done
    return 0
}

# it_stop_agent NAME [SIGNAL]: without SIGNAL, SIGTERM then SIGKILL after 15 s.
# With SIGNAL: STOP/CONT/HUP/USR1/USR2 are only sent; any other signal is sent
# and the agent is waited for (30 s, then SIGKILL). The exit status of a
# stopped agent is left in AGENT_STATUS[NAME] (143 = SIGTERM, 137 = SIGKILL).
it_stop_agent() {
    local name=$1 sig=${2:-} pid st
    pid=${AGENT_PIDS[$name]:-}
    [[ -n $pid ]] || { printf 'it_stop_agent: no agent %s\n' "$name" >&2; return 1; }
    case ${sig#SIG} in
        STOP|CONT|HUP|USR1|USR2)
            kill -s "${sig#SIG}" "$pid"
            return
            ;;
        '')
            kill -TERM "$pid" 2>/dev/null
            ds_wait_pid_gone "$pid" 15 || kill -KILL "$pid" 2>/dev/null
            ;;
        *)
            kill -s "${sig#SIG}" "$pid" 2>/dev/null
            ds_wait_pid_gone "$pid" 30 || kill -KILL "$pid" 2>/dev/null
            ;;
    esac
    { wait "$pid"; } 2>/dev/null
    st=$?
    AGENT_STATUS[$name]=$st
    unset 'AGENT_PIDS[$name]'
    return 0
}

# it_track_pid PID: stop this process on exit too.
it_track_pid() { IT_PIDS+=("$1"); }

# it_on_exit 'shell command': run on exit (before the processes are stopped).
it_on_exit() { IT_CLEANUP+=("$1"); }

_it_stop_all() {
    local i name pid
    for ((i = ${#IT_CLEANUP[@]} - 1; i >= 0; i--)); do
        eval "${IT_CLEANUP[i]}" >>"$IT_DIR/cleanup.log" 2>&1
    done
    IT_CLEANUP=()
    for pid in "${IT_PIDS[@]}"; do
        kill -CONT "$pid" 2>/dev/null
        ds_kill_pid "$pid" 10
    done
    IT_PIDS=()
    for name in "${!AGENT_PIDS[@]}"; do
        kill -CONT "${AGENT_PIDS[$name]}" 2>/dev/null
        kill -TERM "${AGENT_PIDS[$name]}" 2>/dev/null
    done
    # one SIGTERM each (sent above): a second would skip the agents' drain path
    for name in "${!AGENT_PIDS[@]}"; do
        pid=${AGENT_PIDS[$name]}
        if ! ds_wait_pid_gone "$pid" 15; then
            kill -KILL "$pid" 2>/dev/null
            ds_wait_pid_gone "$pid" 5
        fi
        { wait "$pid"; } 2>/dev/null
        unset 'AGENT_PIDS[$name]'
    done
    if [[ -n $MANAGER_PID ]]; then
        ds_kill_pid "$MANAGER_PID" 10
        MANAGER_PID=''
    fi
}

_it_exit() {
    local st=$?
    trap - EXIT
    if [[ $IT_DONE != 1 ]]; then
        # The script ended without it_done (crash, `exit`, set -e): never a pass.
        _it_stop_all
        _it_result 1 "$IT_NAME ended before it_done (exit $st)"
        it_log_tails
        printf '1..%d\n' "$IT_N" >&7
        st=1
    fi
    _it_stop_all
    if [[ -n $REDIS_PID ]]; then ds_stop_redis "$REDIS_PID"; fi
    if [[ -n $IT_PRIV_PG_DIR && -f $IT_PRIV_PG_DIR/data/postmaster.pid ]]; then
        ds_stop_postgres "$IT_PRIV_PG_DIR" "$(head -n 1 "$IT_PRIV_PG_DIR/data/postmaster.pid")"
    fi
    if [[ -n $IT_DB && -n $IT_PG_PORT ]]; then
        psql "$(ds_pg_url "$IT_PG_PORT" postgres)" -XAtq \
            -c "DROP DATABASE IF EXISTS \"$IT_DB\" WITH (FORCE)" >/dev/null 2>&1
    fi
    if [[ $st == 0 && ${DS_KEEP:-0} != 1 && -n $IT_DIR ]]; then
        rm -rf "$IT_DIR"
    fi
    exit "$st"
}
trap _it_exit EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
