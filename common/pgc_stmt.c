/* pgc_stmt: the prepared-statement cache of one pgc connection (see
 * pgc_stmt.h): a hash table of SQL texts, chained, doubled as it fills. */
#include "pgc_stmt.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

/* Past this many distinct SQL texts on one connection, new ones run
 * unprepared (unnamed statement) instead of growing server memory forever. */
#define PGC_MAX_STATEMENTS 4096

/* SQL text -> statement id ("s<id>") for the current connection. */
struct pgc_stmt {
    struct pgc_stmt *next;
    char *sql;
    uint32_t hash;
    int id;
};

struct pgc_stmt_cache {
    struct pgc_stmt **buckets;
    size_t nbuckets, nstmts;
    int next_id;
};

pgc_stmt_cache_t *pgc_stmt_cache_new(void)
{
    pgc_stmt_cache_t *c = xcalloc(1, sizeof *c);
    c->next_id = 1;
    return c;
}

void pgc_stmt_cache_free(pgc_stmt_cache_t *c)
{
    if (!c)
        return;
    pgc_stmt_clear(c);
    free(c);
}

static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static struct pgc_stmt *stmt_find(pgc_stmt_cache_t *c, const char *sql, uint32_t hash)
{
    if (!c->nbuckets)
        return NULL;
    for (struct pgc_stmt *s = c->buckets[hash & (c->nbuckets - 1)]; s; s = s->next)
        if (s->hash == hash && strcmp(s->sql, sql) == 0)
            return s;
    return NULL;
}

static struct pgc_stmt *stmt_add(pgc_stmt_cache_t *c, const char *sql, uint32_t hash)
{
    if (c->nstmts >= c->nbuckets) {
        size_t nb = c->nbuckets ? c->nbuckets * 2 : 64;
        struct pgc_stmt **b = xcalloc(nb, sizeof *b);
        for (size_t i = 0; i < c->nbuckets; i++) {
            struct pgc_stmt *s = c->buckets[i];
            while (s) {
                struct pgc_stmt *next = s->next;
                s->next = b[s->hash & (nb - 1)];
                b[s->hash & (nb - 1)] = s;
                s = next;
            }
        }
        free(c->buckets);
        c->buckets = b;
        c->nbuckets = nb;
    }
    struct pgc_stmt *s = xcalloc(1, sizeof *s);
    s->sql = xstrdup(sql);
    s->hash = hash;
    s->id = c->next_id++;
    s->next = c->buckets[hash & (c->nbuckets - 1)];
    c->buckets[hash & (c->nbuckets - 1)] = s;
    c->nstmts++;
    return s;
}

void pgc_stmt_forget(pgc_stmt_cache_t *c, int id)
{
    for (size_t i = 0; i < c->nbuckets; i++) {
        for (struct pgc_stmt **sp = &c->buckets[i]; *sp; sp = &(*sp)->next) {
            if ((*sp)->id == id) {
                struct pgc_stmt *s = *sp;
                *sp = s->next;
                free(s->sql);
                free(s);
                c->nstmts--;
                return;
            }
        }
    }
}

void pgc_stmt_clear(pgc_stmt_cache_t *c)
{
    for (size_t i = 0; i < c->nbuckets; i++) {
        struct pgc_stmt *s = c->buckets[i];
        while (s) {
            struct pgc_stmt *next = s->next;
            free(s->sql);
            free(s);
            s = next;
        }
    }
    free(c->buckets);
    c->buckets = NULL;
    c->nbuckets = c->nstmts = 0;
    c->next_id = 1;
}

int pgc_stmt_get(pgc_stmt_cache_t *c, const char *sql, int *prepare)
{
    uint32_t hash = fnv1a(sql);
    struct pgc_stmt *s = stmt_find(c, sql, hash);
    *prepare = 0;
    if (s)
        return s->id;
    if (c->nstmts >= PGC_MAX_STATEMENTS)
        return 0;
    *prepare = 1;
    return stmt_add(c, sql, hash)->id;
}
