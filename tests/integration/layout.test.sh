#!/usr/bin/env bash
# The layout rules a grep can check (README, "What is in the box"): only
# common/taskdb.c writes tasks, and a task's defaults have one home.
source "$(dirname "$0")/itest.sh"
it_setup
cd "$ds_root" || it_bail "cd $ds_root"

# The statements that move a task between states: one module.
writes='(UPDATE|INSERT INTO|DELETE FROM) +(tasks|task_attempts|checkpoints)\b'
outside=$(grep -rnEi "$writes" agents manager common | grep -v '^common/taskdb\.c:')
is "$outside" "" "no file outside common/taskdb.c writes tasks, task_attempts or checkpoints"
ok "the pattern finds taskdb.c's statements (it is not vacuous)" \
    test "$(grep -cEi "$writes" common/taskdb.c)" -ge 10

# Defaults: proto/spec.h, and the column default a row inserted by hand gets.
def=$(sed -n 's/^#define SPEC_DEFAULT_MAX_ATTEMPTS \([0-9][0-9]*\)$/\1/p' proto/spec.h)
like "$def" '^[0-9]+$' "proto/spec.h defines SPEC_DEFAULT_MAX_ATTEMPTS"
is "$(it_psql "SELECT column_default FROM information_schema.columns
               WHERE table_name = 'tasks' AND column_name = 'max_attempts'")" "$def" \
    "the migrated column default of tasks.max_attempts is SPEC_DEFAULT_MAX_ATTEMPTS"
literal=$(grep -rnE 'max_attempts *= *[0-9]' agents manager common proto)
is "$literal" "" "no other code spells a default max_attempts"
it_done
