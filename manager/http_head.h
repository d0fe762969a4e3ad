/* http_head: reads one HTTP/1.1 request head (request line and header lines,
 * up to and including the empty line) for what the manager's edge decides on
 * before any body byte is read: the path, body framing and the token. No I/O. */
#ifndef DEVSYS_HTTP_HEAD_H
#define DEVSYS_HTTP_HEAD_H

#include <stddef.h>

#include "ui_session.h"

#define HTTP_HEAD_AUTH_MAX 1024 /* longest Authorization value kept */

struct http_head {
    char path[128];          /* of the request target, without the query; absolute-form reduced */
    int n_content_length;    /* how many Content-Length headers */
    int n_transfer_encoding; /* how many Transfer-Encoding headers */
    int n_authorization;     /* how many Authorization headers */
    int bad_content_length;  /* a Content-Length that is not 1-18 decimal digits */
    int chunked;             /* Transfer-Encoding is exactly "chunked" */
    int folded;              /* an obsolete folded header line */
    int no_colon;            /* a header line without ':' */
    unsigned long long content_length;
    char authorization[HTTP_HEAD_AUTH_MAX + 1]; /* the value, trimmed */
    int auth_too_long;       /* the value was longer than HTTP_HEAD_AUTH_MAX */
    char session[UISESS_VALUE_MAX]; /* the console's session cookie (first Cookie header with one), "" if none */
};

/* h: len bytes of head, lines ended by LF or CRLF. Fills out completely. */
void http_head_parse(const char *h, size_t len, struct http_head *out);
/* Is path (trailing slashes ignored) one of paths (NULL-terminated route
 * patterns; a "{name}" segment matches any one segment)? */
int http_path_is_public(const char *const *paths, const char *path);

#endif
