/* testdb: the statements that trim the test history (test_runs, test_stats,
 * migrations/009_test_history.sql); its rows are written with the report they
 * come from, in taskdb's outcome statement. */
#ifndef DEVSYS_TESTDB_H
#define DEVSYS_TESTDB_H

#include "pgc.h"

/* One batch of retention: deletes up to batch test_runs rows older than
 * period_s seconds (text), oldest first, and up to batch test_stats rows of
 * tests not run within it; a test last seen flaky before it is flaky no more.
 * Result, one row: runs, tests (rows deleted), unflagged. */
void testdb_retain(pgc_t *pg, const char *period_s, int batch, pgc_result_fn *fn, void *arg);

#endif
