/* step_output: the result document and the expected artifacts of a step
 * (see step_output.h). */
#include "step_output.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xalloc.h"

#define MISSING_LINE_MAX 600 /* bytes of names in the "missing" error */

int sout_result_read(const char *path, size_t max, json_t **out, char *err, size_t errlen)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "result: $DEVSYS_RESULT: %s", strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        snprintf(err, errlen, "result: $DEVSYS_RESULT is not a regular file");
        return -1;
    }
    if ((size_t)st.st_size > max) {
        close(fd);
        snprintf(err, errlen, "result: $DEVSYS_RESULT is %lld bytes, over the %zu-byte limit", (long long)st.st_size,
                 max);
        return -1;
    }
    char *buf = xmalloc(max + 1);
    size_t len = 0;
    ssize_t n;
    while (len <= max && (n = read(fd, buf + len, max + 1 - len)) > 0)
        len += (size_t)n;
    close(fd);
    if (len > max) { /* it grew after the stat */
        free(buf);
        snprintf(err, errlen, "result: $DEVSYS_RESULT is over the %zu-byte limit", max);
        return -1;
    }
    json_error_t je;
    *out = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    free(buf);
    if (!*out) {
        snprintf(err, errlen, "result: $DEVSYS_RESULT is not valid JSON: line %d column %d: %s", je.line, je.column,
                 je.text);
        return -1;
    }
    return 1;
}

int sout_relpath_ok(const char *p)
{
    if (!p || !p[0] || p[0] == '/')
        return 0;
    for (const char *s = p;;) {
        size_t n = strcspn(s, "/");
        if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
            return 0;
        if (!s[n])
            return 1;
        s += n + 1;
    }
}

void sout_files_free(sout_file_t *files, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(files[i].rel);
        free(files[i].path);
    }
    free(files);
}

static void list_add(char **list, const char *item)
{
    char *next = *list ? xasprintf("%s, %s", *list, item) : xstrdup(item);
    free(*list);
    *list = next;
}

/* Checks one match (full path under base) and appends it; -1 with err. */
static int add_match(const char *realbase, const char *base, const char *full, long long max_bytes, sout_file_t **files,
                     size_t *n, char *err, size_t errlen)
{
    const char *rel = full + strlen(base) + 1;
    char resolved[PATH_MAX];
    struct stat st;
    if (!realpath(full, resolved)) {
        snprintf(err, errlen, "expected artifact %s: %s", rel, strerror(errno));
        return -1;
    }
    size_t bl = strlen(realbase);
    if (strncmp(resolved, realbase, bl) != 0 || resolved[bl] != '/') {
        snprintf(err, errlen, "expected artifact %s: a symlink pointing outside the workspace (%s)", rel, resolved);
        return -1;
    }
    if (stat(resolved, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "expected artifact %s: not a regular file", rel);
        return -1;
    }
    if (st.st_size > max_bytes) {
        snprintf(err, errlen, "expected artifact %s: %lld bytes, over the %lld-byte limit (DEVSYS_ARTIFACT_MAX_BYTES)",
                 rel, (long long)st.st_size, max_bytes);
        return -1;
    }
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*files)[i].rel, rel) == 0)
            return 0; /* two patterns matched it */
    if (*n >= SOUT_ARTIFACTS_MAX) {
        snprintf(err, errlen, "expected artifacts: more than %d files match", SOUT_ARTIFACTS_MAX);
        return -1;
    }
    *files = xrealloc(*files, (*n + 1) * sizeof **files);
    sout_file_t *f = &(*files)[(*n)++];
    memset(f, 0, sizeof *f);
    f->rel = xstrdup(rel);
    f->path = xstrdup(resolved);
    f->size = (long long)st.st_size;
    return 0;
}

int sout_collect(const char *base, const json_t *patterns, long long max_bytes, sout_file_t **files, size_t *n,
                 char *err, size_t errlen)
{
    *files = NULL;
    *n = 0;
    char realbase[PATH_MAX];
    if (!realpath(base, realbase)) {
        snprintf(err, errlen, "expected artifacts: %s: %s", base, strerror(errno));
        return -1;
    }
    char *missing = NULL;
    int rc = 0;
    size_t i;
    json_t *p;
    json_array_foreach(patterns, i, p)
    {
        const char *rel = json_string_value(p);
        if (!rel || !sout_relpath_ok(rel)) {
            snprintf(err, errlen, "expected_artifacts[%zu]: \"%.200s\" must be a relative path without . or ..", i,
                     rel ? rel : "");
            rc = -1;
            break;
        }
        char *full = xasprintf("%s/%s", base, rel);
        glob_t g;
        int grc = glob(full, GLOB_NOESCAPE, NULL, &g);
        free(full);
        if (grc == 0 && g.gl_pathc > 0) {
            for (size_t k = 0; k < g.gl_pathc && rc == 0; k++)
                rc = add_match(realbase, base, g.gl_pathv[k], max_bytes, files, n, err, errlen);
        } else {
            list_add(&missing, rel);
        }
        if (grc == 0)
            globfree(&g);
        if (rc < 0)
            break;
    }
    if (rc == 0 && missing) {
        snprintf(err, errlen, "expected artifacts missing: %.*s", MISSING_LINE_MAX, missing);
        rc = -1;
    }
    free(missing);
    if (rc < 0) {
        sout_files_free(*files, *n);
        *files = NULL;
        *n = 0;
    }
    return rc;
}

int sout_hash_file(const char *path, char hex[65], long long *size, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    static __thread unsigned char buf[64 * 1024];
    long long total = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        crypto_hash_sha256_update(&st, buf, (unsigned long long)n);
        total += n;
    }
    int saved = errno;
    close(fd);
    if (n < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(saved));
        return -1;
    }
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&st, h);
    sodium_bin2hex(hex, 65, h, sizeof h);
    *size = total;
    return 0;
}
