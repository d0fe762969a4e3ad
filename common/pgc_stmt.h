/* pgc_stmt: pgc's per-connection cache of prepared statements, SQL text ->
 * statement id (named "s<id>" on the server). Bounded: past PGC_MAX_STATEMENTS
 * distinct texts, new ones run unprepared. Used by pgc only. */
#ifndef DEVSYS_PGC_STMT_H
#define DEVSYS_PGC_STMT_H

typedef struct pgc_stmt_cache pgc_stmt_cache_t;

/* An empty cache; ids start at 1. Caller frees with pgc_stmt_cache_free. */
pgc_stmt_cache_t *pgc_stmt_cache_new(void);
void pgc_stmt_cache_free(pgc_stmt_cache_t *c);

/* The statement id for sql (> 0); *prepare is set to 1 when sql was just
 * added, so the caller must send its Parse, else 0. Returns 0 when the cache
 * is full: run sql as the unnamed statement. */
int pgc_stmt_get(pgc_stmt_cache_t *c, const char *sql, int *prepare);
/* Forgets statement id (its prepare failed) so the next use prepares anew. */
void pgc_stmt_forget(pgc_stmt_cache_t *c, int id);
/* Forgets every statement and restarts ids at 1: a new session knows none. */
void pgc_stmt_clear(pgc_stmt_cache_t *c);

#endif
