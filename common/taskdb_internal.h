/* taskdb_internal: what the files of the taskdb module share (taskdb.c,
 * taskdb_submit.c): the batched rows and the helpers that send them. Not an
 * interface: use taskdb.h. */
#ifndef DEVSYS_TASKDB_INTERNAL_H
#define DEVSYS_TASKDB_INTERNAL_H

#include "pgarr.h"
#include "taskdb.h"

#define XSTR(x) STR(x)
#define STR(x) #x

/* published_at = the epoch marks a task whose stream entry is lost (its
 * XADD failed). The reconciler takes an entry as gone when the task was
 * published before the stream's first entry, which the epoch always is, so
 * the task is republished at its next pass past DEVSYS_REPUBLISH_AFTER_S,
 * whatever the stream holds. */
#define PUBLISH_LOST "'epoch'::timestamptz"

#define ROWS_MAX_COLS 9
#define REPORT_COLS 5

enum rows_kind { ROWS_EMPTY, ROWS_CLAIM, ROWS_CLAIM_NEW, ROWS_OUTCOME, ROWS_REJECT, ROWS_LEASE, ROWS_DLQ_ENTRY,
                 ROWS_SUBMIT, ROWS_REPLAY };

struct taskdb_rows {
    enum rows_kind kind;
    int ncols, n;
    pgarr_t *col[ROWS_MAX_COLS];
    pgarr_t *report[REPORT_COLS]; /* outcomes: the test reports that go with them */
};

/* Starts a row of kind; returns the columns to fill, in statement order. */
pgarr_t **tdb_row(taskdb_rows_t *r, enum rows_kind kind, int ncols);
/* Finishes r's columns into p[0..ncols-1] (caller frees each) and frees r.
 * Rows of another statement, or none, are a bug of the caller's. */
void tdb_rows_take(taskdb_rows_t *r, enum rows_kind want, char **p);
void tdb_params_free(char **p, int n);
/* Sends sql with r's columns as its parameters $1..$n; frees r. */
void tdb_rows_send(pgc_t *pg, const char *sql, taskdb_rows_t *r, enum rows_kind want, pgc_result_fn *fn,
                   void *arg);
/* The first columns of every statement that may insert a task row. */
void tdb_add_task(pgarr_t **c, const char *id, const char *queue, const char *kind, const char *spec_json);

#endif
