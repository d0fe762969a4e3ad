#!/usr/bin/env bash
# The layout rules a grep can check (README, "What is in the box"): only
# common/taskdb.c writes tasks, a task's defaults have one home, and the
# include graph has no cycle, points one way and has no oversized file.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
cd "$ds_root" || it_bail "cd $ds_root"

# The statements that move a task between states: one module.
writes='(UPDATE|INSERT INTO|DELETE FROM) +(tasks|task_attempts|checkpoints|task_reports)\b'
outside=$(grep -rnEi "$writes" agents manager common | grep -v '^common/taskdb[a-z_]*\.c:')
is "$outside" "" "no file outside common/taskdb*.c writes tasks, task_attempts, checkpoints or task_reports"
ok "the pattern finds taskdb.c's statements (it is not vacuous)" \
    test "$(cat common/taskdb*.c | grep -cEi "$writes")" -ge 10

# Defaults: proto/spec.h, and the column default a row inserted by hand gets.
def=$(sed -n 's/^#define SPEC_DEFAULT_MAX_ATTEMPTS \([0-9][0-9]*\)$/\1/p' proto/spec.h)
like "$def" '^[0-9]+$' "proto/spec.h defines SPEC_DEFAULT_MAX_ATTEMPTS"
is "$(it_psql "SELECT column_default FROM information_schema.columns
               WHERE table_name = 'tasks' AND column_name = 'max_attempts'")" "$def" \
    "the migrated column default of tasks.max_attempts is SPEC_DEFAULT_MAX_ATTEMPTS"
literal=$(grep -rnE 'max_attempts *= *[0-9]' agents manager common proto)
is "$literal" "" "no other code spells a default max_attempts"
# Includes (tests/tools/include_graph.py): first on a made-up tree that breaks
# each rule, so the check is known to see them, then on the real one.
fake=$IT_DIR/fake-tree
mkdir -p "$fake"/{proto,common,agents,manager}
printf '#include "b.h"\n' >"$fake/proto/a.h"
printf '#include "a.h"\n' >"$fake/proto/b.h"
printf '#include "queue.h"\n' >"$fake/proto/spec.c"
printf '#include "spec.h"\n' >"$fake/common/queue.h"
printf '#include "agent.h"\n' >"$fake/manager/api.c"
: >"$fake/agents/agent.h"
seq 900 >"$fake/common/big.c"
fake_out=$(python3 tests/tools/include_graph.py "$fake")
like "$fake_out" 'header cycle: a.h -> b.h -> a.h' "the include check sees a header cycle"
like "$fake_out" 'module cycle: ' "the include check sees a module cycle"
like "$fake_out" 'proto/spec.c includes common/queue.h' "the include check sees an upward dependency"
like "$fake_out" 'manager/api.c includes agents/agent.h' "the include check sees manager -> agents"
like "$fake_out" 'common/big.c: 900 lines' "the include check sees an oversized file"
real_out=$(python3 tests/tools/include_graph.py "$ds_root")
is "$real_out" "" "no include cycle, dependencies point one way, no source file over 800 lines"
it_done
