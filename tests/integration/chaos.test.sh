#!/usr/bin/env bash
# The chaos run (tests/chaos/run) at CI size, as TAP: kill -9s of agents,
# Redis restarts with AOF (3 M filler keys: seconds of LOADING) and without
# persistence, a FLUSHALL and a PostgreSQL restart while mixed tasks flow; every task must end in its one final state, none succeeds twice, and
# the DLQ holds exactly the always-failing tasks. Size: CHAOS_TASKS (2000).
# tests/chaos/run starts its own servers; the runner's shared ones are not used.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
export DS_BUILD=${DS_BUILD:-$root/build}
export CHAOS_TASKS=${CHAOS_TASKS:-2000}
export CHAOS_SUBMIT_S=${CHAOS_SUBMIT_S:-30}
export CHAOS_DRAIN_S=${CHAOS_DRAIN_S:-120}

n=0
failed=0
while IFS= read -r line; do
    case $line in
        'ok - '*) n=$((n + 1)); printf 'ok %d - %s\n' "$n" "${line#ok - }" ;;
        'not ok - '*) n=$((n + 1)); failed=$((failed + 1)); printf 'not ok %d - %s\n' "$n" "${line#not ok - }" ;;
        '#'*) printf '%s\n' "$line" ;;
        *) printf '# %s\n' "$line" ;;
    esac
done < <("$root/tests/chaos/run" 2>&1)
wait $!
st=$?
if (( st != 0 && failed == 0 )); then
    n=$((n + 1))
    printf 'not ok %d - tests/chaos/run exited with status %d\n' "$n" "$st"
    failed=1
fi
if (( n == 0 )); then
    n=1
    printf 'not ok 1 - tests/chaos/run printed no result\n'
    failed=1
fi
printf '1..%d\n' "$n"
(( failed == 0 ))
