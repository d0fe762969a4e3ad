/* xalloc: allocation that aborts on out-of-memory.
 * Daemons decide once (as redis's zmalloc does): callers never check for NULL. */
#ifndef DEVSYS_XALLOC_H
#define DEVSYS_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
/* Returns a new copy; caller frees. xstrdup(NULL) returns NULL. */
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a new string; caller frees. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
