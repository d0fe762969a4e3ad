#!/usr/bin/env bash
# Every periodic query is bounded by what is live: on a table of 200k finished
# tasks, the reconciler's rules (queued, overdue retry, expired lease), the
# dead-letter checks, the retention job and the list/get routes never scan
# `tasks` sequentially; they reach rows through the partial indexes of
# migrations/003_history.sql. Asserts the mechanism (PostgreSQL's own scan
# counters), not times.
# shellcheck source=tests/integration/itest.sh
source "$(dirname "$0")/itest.sh"
it_setup
it_psql "INSERT INTO tasks (id, queue, kind, spec, state, attempt, created_at, started_at, finished_at)
         SELECT gen_random_uuid(), 'exec', 'exec', '{\"kind\":\"exec\",\"command\":[\"true\"]}',
                CASE WHEN i % 100 = 0 THEN 'failed' ELSE 'succeeded' END, 1,
                now() - interval '1 hour' + i * interval '1 millisecond', now() - interval '1 hour',
                now() - interval '1 hour' + i * interval '1 millisecond'
         FROM generate_series(1, 200000) i" >/dev/null || it_bail "fill"
# live work for every rule: queued with a lost entry, overdue retries, expired
# leases, and dead tasks whose letter is missing from the DLQ
it_psql "INSERT INTO tasks (id, queue, kind, spec, state, attempt, created_at, published_at, next_attempt_at,
                            lease_owner, lease_expires_at, finished_at, dlq_entry)
         SELECT gen_random_uuid(), 'exec', 'exec', '{\"kind\":\"exec\",\"command\":[\"true\"]}', s, 1,
                now() - interval '1 minute', 'epoch', now() - interval '1 minute',
                CASE WHEN s = 'running' THEN 'ghost' END,
                CASE WHEN s = 'running' THEN now() - interval '1 minute' END,
                CASE WHEN s = 'dead' THEN now() - interval '1 minute' END,
                CASE WHEN s = 'dead' THEN '1-' || i END
         FROM unnest(ARRAY['queued', 'retrying', 'running', 'dead']) s, generate_series(1, 3) i" >/dev/null \
    || it_bail "live rows"
it_psql "VACUUM ANALYZE tasks" >/dev/null
scans() { # scans: seq_scan of tasks, then idx_scan of each partial index
    it_psql "SELECT (SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'tasks') || ' ' ||
                    string_agg(indexrelname || '=' || idx_scan, ' ' ORDER BY indexrelname)
             FROM pg_stat_user_indexes WHERE indexrelname IN ('tasks_live', 'tasks_dlq', 'tasks_final_other')"
}
read -r seq0 _ <<<"$(scans)"

export DEVSYS_RECONCILE_S=0.5 DEVSYS_REPUBLISH_AFTER_S=1 DEVSYS_RETENTION_S=0.5
it_start_manager || it_bail "start manager"
metric() { curl -s "$DEVSYS_URL/metrics" | awk -v m="$1" '$1 == m { v = $2 } END { print v + 0 }'; }
ok "the reconciler republishes the queued, retrying and running tasks and restores the 3 dead letters" \
    it_wait_for 20 '[[ $(metric "devsys_reconciler_republished_total{reason=\"queued\"}")/$(metric \
        "devsys_reconciler_republished_total{reason=\"retrying\"}")/$(metric \
        "devsys_reconciler_republished_total{reason=\"running\"}")/$(metric \
        devsys_reconciler_dlq_restored_total) == 3/3/3/3 ]]'
ok "and keeps passing" it_wait_for 20 '(( $(metric devsys_reconciler_passes_total) >= 10 ))'
get() { curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $DEVSYS_TOKEN" "$DEVSYS_URL$1"; }
for path in '/v1/tasks?state=dead&limit=50' '/v1/tasks?state=failed&limit=50' '/v1/tasks?state=queued' \
    '/v1/tasks?limit=50' '/v1/dlq'; do
    for _ in 1 2 3 4 5 6 7; do # past the 5 custom plans: the cached generic plan counts too
        [[ $(get "$path") == 200 ]] || it_diag "GET $path failed"
    done
done
it_stop_manager # its backends flush their scan counters as they exit
ok "the counters are flushed" it_wait_for 10 '[[ $(scans) != "$seq0 "* ]] || (( $(it_psql \
    "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE '\''devsys-manager%'\''") == 0 ))'
read -r seq1 idx <<<"$(scans)"
is "$((seq1 - seq0))" 0 "no sequential scan of tasks by the reconciler, the retention job or the routes"
like "$idx" '^tasks_dlq=[1-9][0-9]* tasks_final_other=[1-9][0-9]* tasks_live=[1-9][0-9]*$' \
    "the partial indexes were used: dead letters, finished tasks, live tasks ($idx)"
it_done
