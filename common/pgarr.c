/* pgarr: PostgreSQL array literals (see pgarr.h). */
#include "pgarr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

struct pgarr {
    char *buf;
    size_t len, cap;
    size_t n;
};

static void put(pgarr_t *a, const char *s, size_t n)
{
    if (a->len + n + 2 > a->cap) {
        while (a->len + n + 2 > a->cap)
            a->cap *= 2;
        a->buf = xrealloc(a->buf, a->cap);
    }
    memcpy(a->buf + a->len, s, n);
    a->len += n;
}

pgarr_t *pgarr_new(void)
{
    pgarr_t *a = xcalloc(1, sizeof *a);
    a->cap = 256;
    a->buf = xmalloc(a->cap);
    put(a, "{", 1);
    return a;
}

void pgarr_addn(pgarr_t *a, const char *s, size_t len)
{
    if (a->n++)
        put(a, ",", 1);
    if (!s) {
        put(a, "NULL", 4);
        return;
    }
    put(a, "\"", 1);
    const char *end = s + len;
    while (s < end) {
        const char *p = s;
        while (p < end && *p != '"' && *p != '\\')
            p++;
        put(a, s, (size_t)(p - s));
        if (p < end) {
            char esc[2] = {'\\', *p++};
            put(a, esc, 2);
        }
        s = p;
    }
    put(a, "\"", 1);
}

void pgarr_add(pgarr_t *a, const char *s)
{
    pgarr_addn(a, s, s ? strlen(s) : 0);
}

void pgarr_add_long(pgarr_t *a, long long v)
{
    char num[24];
    int n = snprintf(num, sizeof num, "%lld", v);
    if (a->n++)
        put(a, ",", 1);
    put(a, num, (size_t)n);
}

char *pgarr_finish(pgarr_t *a)
{
    put(a, "}", 2); /* brace and NUL */
    char *s = a->buf;
    free(a);
    return s;
}
