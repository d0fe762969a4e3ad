/* pgarr: build PostgreSQL array literals ({"a","b",NULL}) as text parameters,
 * so a batch of N rows travels as a few parameters of one statement and is
 * expanded with unnest() server-side. */
#ifndef DEVSYS_PGARR_H
#define DEVSYS_PGARR_H

#include <stddef.h>

typedef struct pgarr pgarr_t;

pgarr_t *pgarr_new(void);
/* Appends one element; s NULL appends SQL NULL. */
void pgarr_add(pgarr_t *a, const char *s);
void pgarr_addn(pgarr_t *a, const char *s, size_t len);
void pgarr_add_long(pgarr_t *a, long long v);
/* Frees a and returns the literal; caller frees. */
char *pgarr_finish(pgarr_t *a);

#endif
