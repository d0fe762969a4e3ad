/* http_head: the request-head parser of the manager's HTTP edge (see http_head.h). */
#include "http_head.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static int name_is(const char *name, size_t len, const char *want)
{
    return strlen(want) == len && strncasecmp(name, want, len) == 0;
}

/* METHOD SP target SP version: keeps the path of the target. */
static void request_line(const char *line, size_t len, struct http_head *out)
{
    const char *sp = memchr(line, ' ', len);
    const char *t = sp ? sp + 1 : line + len, *te = t;
    while (te < line + len && *te != ' ' && *te != '?')
        te++;
    size_t skip = te - t > 8 && strncasecmp(t, "https://", 8) == 0 ? 8
                : te - t > 7 && strncasecmp(t, "http://", 7) == 0  ? 7
                                                                    : 0;
    if (skip) { /* absolute-form: the path starts after the authority */
        const char *slash = memchr(t + skip, '/', (size_t)(te - t) - skip);
        t = slash ? slash : te;
    }
    snprintf(out->path, sizeof out->path, "%.*s", (int)(te - t), t);
}

static void content_length(const char *v, size_t len, struct http_head *out)
{
    unsigned long long n = 0;
    int ok = len > 0 && len <= 18;
    for (size_t i = 0; ok && i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            ok = 0;
        else
            n = n * 10 + (unsigned long long)(v[i] - '0');
    }
    out->n_content_length++;
    out->bad_content_length |= !ok;
    out->content_length = n;
}

static void header_line(const char *line, size_t len, struct http_head *out)
{
    if (line[0] == ' ' || line[0] == '\t') {
        out->folded = 1;
        return;
    }
    const char *colon = memchr(line, ':', len);
    if (!colon) {
        out->no_colon = 1;
        return;
    }
    size_t nlen = (size_t)(colon - line);
    const char *v = colon + 1, *ve = line + len;
    while (v < ve && (*v == ' ' || *v == '\t'))
        v++;
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
        ve--;
    size_t vlen = (size_t)(ve - v);
    if (name_is(line, nlen, "Content-Length")) {
        content_length(v, vlen, out);
    } else if (name_is(line, nlen, "Transfer-Encoding")) {
        out->n_transfer_encoding++;
        out->chunked = vlen == 7 && strncasecmp(v, "chunked", 7) == 0;
    } else if (name_is(line, nlen, "Authorization")) {
        out->n_authorization++;
        out->auth_too_long = vlen > HTTP_HEAD_AUTH_MAX;
        if (!out->auth_too_long)
            snprintf(out->authorization, sizeof out->authorization, "%.*s", (int)vlen, v);
    } else if (name_is(line, nlen, "Cookie") && !out->session[0] && vlen < 8192) {
        char cookie[8192];
        snprintf(cookie, sizeof cookie, "%.*s", (int)vlen, v);
        if (uisess_cookie_value(cookie, out->session, sizeof out->session) != 0)
            out->session[0] = '\0';
    }
}

void http_head_parse(const char *h, size_t len, struct http_head *out)
{
    memset(out, 0, sizeof *out);
    const char *end = h + len;
    for (const char *line = h; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t ll = (size_t)((nl ? nl : end) - line);
        if (ll > 0 && line[ll - 1] == '\r')
            ll--;
        if (line == h)
            request_line(line, ll, out);
        else if (ll > 0)
            header_line(line, ll, out);
        line = nl ? nl + 1 : end;
    }
}

int http_path_is_public(const char *const *paths, const char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    for (const char *const *p = paths; p && *p; p++) {
        if (strlen(*p) == n && strncmp(*p, path, n) == 0)
            return 1;
        /* "/ui/{name}": the literal part, then one segment */
        const char *brace = strchr(*p, '{');
        size_t lit = brace ? (size_t)(brace - *p) : 0;
        if (brace && n > lit && strncmp(*p, path, lit) == 0 && !memchr(path + lit, '/', n - lit))
            return 1;
    }
    return 0;
}
