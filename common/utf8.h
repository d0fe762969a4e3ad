/* utf8: make arbitrary bytes safe for a PostgreSQL text column (valid UTF-8,
 * no NUL), e.g. a process's output tail or a garbage field pushed by hand. */
#ifndef DEVSYS_UTF8_H
#define DEVSYS_UTF8_H

#include <stddef.h>

/* Returns a new NUL-terminated copy of s[0..len) where every invalid or
 * truncated sequence and every NUL byte becomes U+FFFD. Caller frees. */
char *utf8_sanitize(const char *s, size_t len);

/* A printable one-line ASCII preview of at most max bytes of s: other bytes
 * are written as \xNN. Caller frees. */
char *utf8_preview(const char *s, size_t len, size_t max);

#endif
