/* testdb: retention of the test history (see testdb.h). Each part reaches its
 * rows through an index on their age (test_runs_at, test_stats_last_at,
 * test_stats_flaky), so a pass costs what it deletes. */
#include "testdb.h"

#include <stdio.h>

void testdb_retain(pgc_t *pg, const char *period_s, int batch, pgc_result_fn *fn, void *arg)
{
    char b[16];
    snprintf(b, sizeof b, "%d", batch);
    const char *p[2] = {period_s, b};
    pgc_query(pg,
              "WITH cut AS (SELECT now() - $1::float8 * interval '1 second' AS t),"
              " r AS (DELETE FROM test_runs WHERE id IN (SELECT id FROM test_runs"
              "   WHERE at < (SELECT t FROM cut) ORDER BY at LIMIT $2::int) RETURNING 1),"
              " s AS (DELETE FROM test_stats x USING (SELECT scope, test FROM test_stats"
              "   WHERE last_at < (SELECT t FROM cut) ORDER BY last_at LIMIT $2::int) o"
              "   WHERE x.scope = o.scope AND x.test = o.test RETURNING 1),"
              " f AS (UPDATE test_stats x SET flaky_at = NULL FROM (SELECT scope, test FROM test_stats"
              "   WHERE flaky_at IS NOT NULL AND flaky_at < (SELECT t FROM cut) LIMIT $2::int) o"
              "   WHERE x.scope = o.scope AND x.test = o.test RETURNING 1)"
              " SELECT (SELECT count(*) FROM r) AS runs, (SELECT count(*) FROM s) AS tests,"
              "  (SELECT count(*) FROM f) AS unflagged",
              2, p, fn, arg);
}
