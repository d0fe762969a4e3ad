#!/usr/bin/env bash
# backup_restore: `devsys-manager backup` taken while tasks run, restored with
# `devsys-manager restore` into a new database with an empty Redis, finishes
# every task accepted before it: none lost, none that had finished runs again
# (each run writes a journal line). The archive carries the artifact store and
# a deploy root too; restore refuses a database that is not empty, a deploy
# root that is not, a schema newer than the binary's and a damaged part.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"

N=300
JOURNAL=$IT_DIR/journal
export DEVSYS_ARTIFACT_DIR=$IT_DIR/artifacts DEVSYS_DEPLOY_ROOT=$IT_DIR/deploy
mgr() { "$BIN/manager/devsys-manager" "$@" 7>&-; }

it_setup
it_start_manager || it_bail "manager starts"
for a in a1 a2; do
    it_start_agent "$a" DEVSYS_QUEUES=exec DEVSYS_CONCURRENCY=8 || it_bail "agent $a starts"
done

# An artifact in the store, and a deploy root as an agent leaves it.
printf 'artifact body %s\n' "$$" >"$IT_DIR/art.txt"
SHA=$(sha256sum "$IT_DIR/art.txt" | cut -d' ' -f1)
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT --data-binary @"$IT_DIR/art.txt" \
    -H "Authorization: Bearer $DEVSYS_TOKEN" "$DEVSYS_URL/v1/artifacts/$SHA")
is "$code" 201 "an artifact is stored"
mkdir -p "$DEVSYS_DEPLOY_ROOT/prod/web/revisions/r1" "$DEVSYS_DEPLOY_ROOT/prod/web/revisions/r2"
echo r2 >"$DEVSYS_DEPLOY_ROOT/prod/web/revisions/r2/index.html"
ln -s revisions/r2 "$DEVSYS_DEPLOY_ROOT/prod/web/current"

# N slow tasks; each run appends "<task id> <attempt>" to the journal.
jq -nc --arg j "$JOURNAL" --argjson n "$N" '[range($n) | {kind: "exec", name: "br-\(.)",
    command: ["sh", "-c", "echo \"$DEVSYS_TASK_ID $DEVSYS_TASK_ATTEMPT\" >>\"$0\"; sleep 0.3", $j]}]' \
    >"$IT_DIR/specs.json"
ctl submit "$IT_DIR/specs.json" >"$IT_DIR/ids" || it_bail "submit $N tasks"
is "$(wc -l <"$IT_DIR/ids")" "$N" "$N tasks accepted"

# The backup, mid-run.
ok "some tasks finish before the backup" \
    it_wait_sql 30 "SELECT count(*) >= 40 FROM tasks WHERE state = 'succeeded'" t
t0=$(ds_now_ms)
ok "backup while tasks run" mgr backup "$IT_DIR/b1.tar"
it_diag "backup took $(( $(ds_now_ms) - t0 )) ms"
ok "a backup never replaces a file" it_not mgr backup "$IT_DIR/b1.tar"
before=$(it_psql "SELECT count(*) FILTER (WHERE state = 'succeeded') || ' of ' || count(*) FROM tasks")
it_diag "just after the backup: $before tasks succeeded"
OLD_URL=$DEVSYS_DATABASE_URL
SCHEMA=$(it_psql "SELECT max(version) FROM schema_migrations")

is "$(tar -tf "$IT_DIR/b1.tar" | tr '\n' ' ')" "manifest.json db.dump artifacts.tar deploy.tar " \
    "the archive holds the manifest and three parts"
mkdir -p "$IT_DIR/x"
tar -xf "$IT_DIR/b1.tar" -C "$IT_DIR/x"
M=$IT_DIR/x/manifest.json
is "$(jq -r '.format + " " + (.schema_version | tostring) + " " + .version' "$M")" \
    "devsys-backup $SCHEMA $(mgr --version | cut -d' ' -f2)" "manifest: format, schema version, version"
like "$(jq -r .created_at "$M")" '^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$' "manifest: time"
is "$(jq -r '.parts[] | select(.name == "db") | "\(.size) \(.sha256)"' "$M")" \
    "$(stat -c %s "$IT_DIR/x/db.dump") $(sha256sum "$IT_DIR/x/db.dump" | cut -d' ' -f1)" \
    "manifest: the dump's size and sha256"

# Stop everything; the new world: a new database, an empty Redis.
it_stop_agent a1
it_stop_agent a2
it_stop_manager
mv "$JOURNAL" "$JOURNAL.before"
it_restart_redis || it_bail "redis-server restarts"
is "$(it_redis DBSIZE)" 0 "Redis is empty"
NEWDB=${IT_DB}_restored
psql "$(ds_pg_url "$IT_PG_PORT" postgres)" -XAtq -c "CREATE DATABASE \"$NEWDB\"" >/dev/null \
    || it_bail "createdb $NEWDB"
it_on_exit "psql '$(ds_pg_url "$IT_PG_PORT" postgres)' -XAtq -c 'DROP DATABASE IF EXISTS \"$NEWDB\" WITH (FORCE)'"
NEW_URL=$(ds_pg_url "$IT_PG_PORT" "$NEWDB")
export DEVSYS_DEPLOY_ROOT=$IT_DIR/deploy2 DEVSYS_ARTIFACT_DIR=$IT_DIR/artifacts2

# Refusals, each before anything changes.
out=$(DEVSYS_DATABASE_URL=$OLD_URL mgr restore "$IT_DIR/b1.tar" 2>&1)
like "$out" 'is not empty.*createdb' "restore refuses a database that is not empty"
out=$(DEVSYS_DEPLOY_ROOT=$IT_DIR/deploy DEVSYS_DATABASE_URL=$NEW_URL mgr restore "$IT_DIR/b1.tar" 2>&1)
like "$out" "deploy: $IT_DIR/deploy is not empty" "restore refuses a deploy root that is not empty"
mkdir -p "$IT_DIR/newer" "$IT_DIR/bad"
jq '.schema_version = 999' "$M" >"$IT_DIR/newer/manifest.json"
tar -cf "$IT_DIR/newer.tar" -C "$IT_DIR/newer" manifest.json
out=$(DEVSYS_DATABASE_URL=$NEW_URL mgr restore "$IT_DIR/newer.tar" 2>&1)
like "$out" "schema version is 999, newer than the $SCHEMA this devsys-manager knows" \
    "restore refuses a schema newer than the binary's"
cp "$M" "$IT_DIR/x/db.dump" "$IT_DIR/bad/"
printf 'X' | dd of="$IT_DIR/bad/db.dump" bs=1 seek=100 conv=notrunc status=none
tar -cf "$IT_DIR/bad.tar" -C "$IT_DIR/bad" manifest.json db.dump
out=$(DEVSYS_DATABASE_URL=$NEW_URL mgr restore "$IT_DIR/bad.tar" db 2>&1)
like "$out" 'db.dump is damaged' "restore refuses a part whose sha256 differs"
export DEVSYS_DATABASE_URL=$NEW_URL
is "$(it_psql "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")" 0 \
    "the refused restores left the new database empty"

t0=$(ds_now_ms)
ok "restore into the new database" mgr restore "$IT_DIR/b1.tar"
it_diag "restore took $(( $(ds_now_ms) - t0 )) ms"
is "$(it_psql "SELECT count(*) FROM tasks")" "$N" "every accepted task is in the restored database"
is "$(it_psql "SELECT id FROM tasks ORDER BY id" | sort)" "$(sort "$IT_DIR/ids")" "... the same ids"
it_psql "SELECT id FROM tasks WHERE state = 'succeeded'" | sort >"$IT_DIR/done_before"
ND=$(wc -l <"$IT_DIR/done_before")
it_diag "succeeded at backup time: $ND of $N; by state: $(it_psql "SELECT string_agg(state || '=' || n, ' ')
    FROM (SELECT state, count(*) n FROM tasks GROUP BY 1 ORDER BY 1) s")"
ok "the backup was taken mid-run (some tasks had finished, some had not)" test "$ND" -gt 0 -a "$ND" -lt "$N"
is "$(readlink "$IT_DIR/deploy2/prod/web/current")" revisions/r2 "the deploy root is back, current included"
is "$(cat "$IT_DIR/deploy2/prod/web/current/index.html")" r2 "... with its files"
ok "the artifact store is back" cmp "$IT_DIR/art.txt" "$IT_DIR/artifacts2/${SHA:0:2}/${SHA:2:2}/$SHA"

# A republish after 60 s would be too late for the bound below: the restore
# itself marked the unfinished tasks lost, so the first reconciler pass sends them.
DEVSYS_RECONCILE_S=1 DEVSYS_REPUBLISH_AFTER_S=60 it_start_manager || it_bail "restored manager starts"
for a in b1 b2; do
    it_start_agent "$a" DEVSYS_QUEUES=exec DEVSYS_CONCURRENCY=8 || it_bail "agent $a starts"
done
t0=$(ds_now_ms)
ok "every task finishes after the restore" it_wait_all_final 40 15
it_diag "the rest ran in $(( $(ds_now_ms) - t0 )) ms"
is "$(it_psql "SELECT state || ' ' || count(*) FROM tasks GROUP BY state")" "succeeded $N" \
    "rows per state: all $N succeeded, none lost"
cut -d' ' -f1 "$JOURNAL" | sort -u >"$IT_DIR/ran_after"
is "$(comm -12 "$IT_DIR/done_before" "$IT_DIR/ran_after" | wc -l)" 0 \
    "no task that had finished before the backup ran again"
is "$(comm -3 <(sort "$IT_DIR/ids") "$IT_DIR/done_before" | tr -d '\t' | sort)" "$(cat "$IT_DIR/ran_after")" \
    "every task unfinished at backup time ran after the restore"
ok "the restored manager serves the artifact" \
    cmp "$IT_DIR/art.txt" <(curl -sf -H "Authorization: Bearer $DEVSYS_TOKEN" "$DEVSYS_URL/v1/artifacts/$SHA")

it_done
