# shellcheck shell=bash
# tests/lib.sh: shell helpers shared by tests/run, the integration tests and ./dev:
# free ports, throwaway redis-server and PostgreSQL instances, process stopping.
# Sourced, never executed; safe under `set -u`. Functions are prefixed ds_.

# Repository root (the directory above this file).
ds_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DS_PG_BIN=${DS_PG_BIN:-/usr/lib/postgresql/15/bin}
# Set DS_DETACH=1 to start servers in their own session (setsid), so they
# outlive the calling shell and its terminal (./dev up). Tests leave it 0 so
# that `timeout` in tests/run can kill the whole process group.
DS_DETACH=${DS_DETACH:-0}

ds_log() { printf '%s\n' "$*" >&2; }

# Current time in milliseconds.
ds_now_ms() {
    local t=${EPOCHREALTIME/./}
    printf '%s\n' "$(( t / 1000 ))"
}

# "1.5" -> 1500 (seconds as integer or decimal to milliseconds).
ds_secs_to_ms() {
    local s=$1 int frac
    int=${s%%.*}
    if [[ $s == *.* ]]; then frac=${s#*.}; else frac=0; fi
    frac=${frac}000
    frac=${frac:0:3}
    printf '%s\n' "$(( 10#${int:-0} * 1000 + 10#$frac ))"
}

# Is TCP PORT in use on this host: listening, or the local port of any
# socket at all (a connection's or one in TIME_WAIT also makes bind() fail)?
ds_port_in_use() {
    local port=$1
    if command -v ss >/dev/null 2>&1; then
        [[ -n $(ss -Htan "( sport = :$port )" 2>/dev/null) ]]
        return
    fi
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

# Is something listening on TCP PORT (any address)?
ds_port_listening() {
    local port=$1
    if command -v ss >/dev/null 2>&1; then
        [[ -n $(ss -Htln "( sport = :$port )" 2>/dev/null) ]]
        return
    fi
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

# Prints a free TCP port on 127.0.0.1, chosen at random below the kernel's
# ephemeral range (so that no outgoing connection can be holding it) so that
# parallel users rarely collide; checked with ss (or a connect attempt).
ds_free_port() {
    local i port lo=10000 hi=32767 eph_lo eph_hi
    if read -r eph_lo eph_hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null \
            && (( eph_lo > lo + 1000 )); then
        hi=$(( eph_lo - 1 ))
    fi
    for ((i = 0; i < 200; i++)); do
        port=$(( lo + (RANDOM * 32768 + RANDOM) % (hi - lo + 1) ))
        if ! ds_port_in_use "$port"; then
            printf '%s\n' "$port"
            return 0
        fi
    done
    ds_log "ds_free_port: no free port found"
    return 1
}

# True while PID names a live process (a zombie counts as gone).
ds_pid_alive() {
    local pid=${1:-} state
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    if [[ -r /proc/$pid/stat ]]; then
        state=$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$pid/stat" 2>/dev/null) || return 1
        [[ $state == Z || $state == X ]] && return 1
    fi
    return 0
}

# ds_wait_pid_gone PID TIMEOUT_S: waits until PID is gone; 1 on timeout.
ds_wait_pid_gone() {
    local pid=$1 deadline
    deadline=$(( $(ds_now_ms) + $(ds_secs_to_ms "$2") ))
    while ds_pid_alive "$pid"; do
        (( $(ds_now_ms) >= deadline )) && return 1
        sleep 0.05
    done
    return 0
}

# ds_kill_pid PID [TIMEOUT_S=5]: SIGTERM, wait up to TIMEOUT_S, then SIGKILL.
# Reaps the process when it is a child of this shell. Returns 0 when the
# process is gone (or was never there).
ds_kill_pid() {
    local pid=${1:-} timeout=${2:-5}
    [[ $pid =~ ^[0-9]+$ ]] || return 0
    if ds_pid_alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null
        if ! ds_wait_pid_gone "$pid" "$timeout"; then
            ds_log "ds_kill_pid: $pid still alive after ${timeout}s, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null
            ds_wait_pid_gone "$pid" 5 || { ds_log "ds_kill_pid: $pid survived SIGKILL"; return 1; }
        fi
    fi
    { wait "$pid"; } 2>/dev/null
    return 0
}

# Starts "$@" in the background (in its own session when DS_DETACH=1),
# stdin from /dev/null, stdout+stderr appended to LOG. Sets DS_BG_PID.
# setsid execs in place here (a background child is never a group leader),
# so $! is the server's own pid.
ds_spawn() {
    local log=$1; shift
    if [[ $DS_DETACH == 1 ]]; then
        setsid "$@" </dev/null >>"$log" 2>&1 7>&- &
    else
        "$@" </dev/null >>"$log" 2>&1 7>&- &
    fi
    DS_BG_PID=$!
}

# ds_bound_addr LOG PID WHAT [TIMEOUT_S]: waits (20 s) for process PID to log
# "WHAT on HOST:PORT" in LOG (a listener on port 0 says which port it got) and
# prints HOST:PORT. 1 if PID exits or the line does not come in time.
ds_bound_addr() {
    local log=$1 pid=$2 what=$3 deadline line
    deadline=$(( $(ds_now_ms) + $(ds_secs_to_ms "${4:-20}") ))
    while :; do
        line=$(grep -o "\"pid\":$pid,.*\"msg\":\"$what on [^\"]*\"" "$log" 2>/dev/null | tail -n 1)
        if [[ -n $line ]]; then
            line=${line##* on }
            printf '%s\n' "${line%\"}"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            printf 'ds_bound_addr: process %s exited before logging "%s on ..." in %s\n' "$pid" "$what" "$log" >&2
            return 1
        fi
        if (( $(ds_now_ms) >= deadline )); then
            printf 'ds_bound_addr: process %s did not log "%s on ..." in %s\n' "$pid" "$what" "$log" >&2
            return 1
        fi
        sleep 0.05
    done
}

# ---------------------------------------------------------------- redis

# ds_start_redis DIR PORT [extra redis-server args...]
# Starts redis-server on 127.0.0.1:PORT with no persistence (extra args may
# override, e.g. --appendonly yes), files in DIR. Waits for PING. Sets REDIS_PID.
# DS_REDIS_ACCEPT_LOADING=1: returns once it answers at all, even -LOADING
# (still reading its AOF/RDB).
ds_start_redis() {
    local dir=$1 port=$2 deadline up=PONG
    shift 2
    [[ ${DS_REDIS_ACCEPT_LOADING:-0} == 1 ]] && up='@(PONG|LOADING*)'

    mkdir -p "$dir" || return 1
    ds_spawn "$dir/redis.log" redis-server --bind 127.0.0.1 --port "$port" \
        --save '' --appendonly no --daemonize no \
        --dir "$dir" --pidfile "$dir/redis.pid" "$@"
    REDIS_PID=$DS_BG_PID
    deadline=$(( $(ds_now_ms) + 10000 ))
    # shellcheck disable=SC2053 # $up is a pattern
    while [[ $(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null) != $up ]]; do
        if ! ds_pid_alive "$REDIS_PID" || (( $(ds_now_ms) >= deadline )); then
            ds_log "ds_start_redis: redis-server on port $port did not start; log:"
            tail -n 20 "$dir/redis.log" >&2
            ds_kill_pid "$REDIS_PID"
            return 1
        fi
        sleep 0.05
    done
    return 0
}

# ds_stop_redis [PID=$REDIS_PID]
ds_stop_redis() {
    local pid=${1:-${REDIS_PID:-}}
    ds_kill_pid "$pid" 10
}

# ---------------------------------------------------------------- postgres

# Runs a PostgreSQL server binary as the postgres user when we are root
# (initdb and postgres refuse to run as root).
ds_pg_run() {
    local bin=$1; shift
    if [[ $(id -u) == 0 ]]; then
        runuser -u postgres -- "$DS_PG_BIN/$bin" "$@"
    else
        "$DS_PG_BIN/$bin" "$@"
    fi
}

# As root, the postgres user must be able to reach DIR: make each ancestor
# it cannot traverse traversable (o+x only, no read).
ds_pg_prepare_dir() {
    local dir=$1 d
    mkdir -p "$dir" || return 1
    [[ $(id -u) == 0 ]] || return 0
    chmod 755 "$dir"
    chown postgres: "$dir" || return 1
    d=$(dirname "$dir")
    while [[ $d != / ]]; do
        if ! runuser -u postgres -- test -x "$d"; then
            ds_log "note: chmod o+x $d so that the postgres user can reach $dir"
            chmod o+x "$d" || return 1
        fi
        d=$(dirname "$d")
    done
    return 0
}

# ds_pg_url PORT DB -> postgresql://postgres@127.0.0.1:PORT/DB
ds_pg_url() {
    printf 'postgresql://postgres@127.0.0.1:%s/%s\n' "$1" "$2"
}

# ds_start_postgres DIR PORT
# A cluster in DIR/data (initdb'd on first use, trust auth, superuser
# postgres), listening on 127.0.0.1:PORT only, unix socket in DIR, log in
# DIR/postgres.log. fsync and synchronous_commit keep their defaults (on):
# tests must see the durability the product relies on. Sets PG_PID and PG_DIR.
ds_start_postgres() {
    local dir=$1 port=$2 sockdir
    ds_pg_prepare_dir "$dir" || { ds_log "ds_start_postgres: cannot prepare $dir"; return 1; }
    dir=$(cd "$dir" && pwd)
    # A unix socket path is limited to 107 bytes; fall back to no socket (we use TCP).
    sockdir=$dir
    (( ${#sockdir} > 80 )) && sockdir=''
    if [[ ! -f $dir/data/PG_VERSION ]]; then
        if ! ds_pg_run initdb -D "$dir/data" -U postgres --auth=trust -E UTF8 \
                --no-locale --no-sync >"$dir/initdb.log" 2>&1; then
            ds_log "ds_start_postgres: initdb failed:"
            tail -n 20 "$dir/initdb.log" >&2
            return 1
        fi
    fi
    if ! ds_pg_run pg_ctl start -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories='$sockdir' \
-c shared_buffers=256MB -c max_connections=200 -c max_wal_size=1GB \
-c checkpoint_timeout=15min -c log_min_messages=warning \
-c log_line_prefix='%m [%p] %d '" >"$dir/pg_ctl.log" 2>&1; then
        ds_log "ds_start_postgres: pg_ctl start failed:"
        tail -n 20 "$dir/pg_ctl.log" "$dir/postgres.log" >&2 2>/dev/null
        return 1
    fi
    PG_PID=$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null)
    PG_DIR=$dir
    local i
    for ((i = 0; i < 100; i++)); do
        "$DS_PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres && return 0
        sleep 0.1
    done
    ds_log "ds_start_postgres: server on port $port not ready"
    tail -n 20 "$dir/postgres.log" >&2
    return 1
}

# ds_stop_postgres [DIR=$PG_DIR] [PID=$PG_PID]: fast shutdown, then make sure
# the postmaster is gone.
ds_stop_postgres() {
    local dir=${1:-${PG_DIR:-}} pid=${2:-${PG_PID:-}}
    if [[ -z $pid && -n $dir && -f $dir/data/postmaster.pid ]]; then
        pid=$(head -n 1 "$dir/data/postmaster.pid")
    fi
    if [[ -n $dir && -d $dir/data ]] && ds_pid_alive "$pid"; then
        ds_pg_run pg_ctl stop -D "$dir/data" -m fast -w -t 30 >/dev/null 2>&1
    fi
    ds_kill_pid "$pid" 10
}

# ds_psql URL SQL: one statement, unaligned tuples-only output.
ds_psql() {
    psql "$1" -XAtq -v ON_ERROR_STOP=1 -c "$2"
}

# ---------------------------------------------------------------- http

# ds_wait_http URL TIMEOUT_S: polls until URL answers 2xx; 1 on timeout.
ds_wait_http() {
    local url=$1 deadline
    deadline=$(( $(ds_now_ms) + $(ds_secs_to_ms "${2:-10}") ))
    until curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
        (( $(ds_now_ms) >= deadline )) && return 1
        sleep 0.1
    done
    return 0
}
