#!/usr/bin/env bash
# devsys-manager migrate: twice in a row, and twice at once, under the advisory lock.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup   # it_setup has migrated once already
n=$(it_psql "SELECT count(*) FROM schema_migrations")
ok "a second run succeeds" "$BIN/manager/devsys-manager" migrate
is "$(it_psql "SELECT count(*) FROM schema_migrations")" "$n" "the second run applied nothing"

fresh=${IT_DB}_x
it_psql "CREATE DATABASE $fresh" >/dev/null
url=$(ds_pg_url "$IT_PG_PORT" "$fresh")
DEVSYS_DATABASE_URL=$url "$BIN/manager/devsys-manager" migrate >"$IT_DIR/m1" 2>&1 7>&- &
p1=$!
DEVSYS_DATABASE_URL=$url "$BIN/manager/devsys-manager" migrate >"$IT_DIR/m2" 2>&1 7>&- &
p2=$!
wait $p1; s1=$?
wait $p2; s2=$?
is "$s1/$s2" "0/0" "two concurrent runs both succeed"
is "$(psql "$url" -XAtq -c "SELECT count(*) FROM schema_migrations")" "$n" "each migration recorded once"
is "$(psql "$url" -XAtq -c "SELECT to_regclass('tasks') IS NOT NULL")" t "tasks table exists"
like "$(cat "$IT_DIR/m1" "$IT_DIR/m2")" '0 applied' "one of the runs found nothing to do"
it_psql "DROP DATABASE $fresh" >/dev/null
it_done
