/* step_transfer: artifact uploads and downloads (see step_transfer.h). A
 * download is hashed as it arrives (in pieces, on the loop) and written to a
 * temp file next to its final name. */
#include "step_transfer.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "curlev.h"
#include "log.h"
#include "xalloc.h"

#define REPLY_KEEP 512           /* bytes of an error reply quoted */
#define LOW_SPEED_TIME_S 60L     /* a transfer under 1 byte/s this long fails */
#define CONNECT_TIMEOUT_S 10L

struct xfer {
    CURL *easy;
    struct curl_slist *headers;
    xfer_done_fn *fn;
    void *arg;
    char *shown;
    FILE *in;                /* upload */
    int dirfd, out_fd;       /* download */
    char tmpname[64], *name;
    char want_sha[65];
    long long want_size, got;
    crypto_hash_sha256_state st;
    int too_long, write_err;
    char reply[REPLY_KEEP + 1];
    size_t reply_len;
};

static curlev_t *xf_curl;
static const char *xf_url;
static const char *xf_token;

void xfer_init(struct event_base *base)
{
    if (xf_curl)
        return;
    xf_curl = curlev_new(base);
    xf_url = cfg_str("DEVSYS_MANAGER_URL", NULL);
    xf_token = cfg_secret("DEVSYS_AGENT_TOKEN", NULL);
}

void xfer_shutdown(void)
{
    curlev_free(xf_curl);
    xf_curl = NULL;
}

static void xfer_free(xfer_t *x)
{
    if (x->easy)
        curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->headers);
    if (x->in)
        fclose(x->in);
    if (x->out_fd >= 0) {
        close(x->out_fd);
        unlinkat(x->dirfd, x->tmpname, 0);
    }
    free(x->name);
    free(x->shown);
    free(x);
}

static size_t keep_reply(char *p, size_t size, size_t n, void *arg)
{
    xfer_t *x = arg;
    size_t len = size * n, room = REPLY_KEEP - x->reply_len;
    size_t take = len < room ? len : room;
    memcpy(x->reply + x->reply_len, p, take);
    x->reply_len += take;
    x->reply[x->reply_len] = '\0';
    return len;
}

/* A download's bytes: hashed and written; past the expected size it stops. */
static size_t write_body(char *p, size_t size, size_t n, void *arg)
{
    xfer_t *x = arg;
    size_t len = size * n;
    long status = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200)
        return keep_reply(p, size, n, arg);
    if (x->got + (long long)len > x->want_size) {
        x->too_long = 1;
        return 0;
    }
    crypto_hash_sha256_update(&x->st, (const unsigned char *)p, len);
    for (size_t off = 0; off < len;) {
        ssize_t w = write(x->out_fd, p + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            x->write_err = errno;
            return 0;
        }
        off += (size_t)w;
    }
    x->got += (long long)len;
    return len;
}

static void finish(xfer_t *x, int ok, const char *err)
{
    x->fn(ok, err, x->arg);
    xfer_free(x);
}

static int http_failed(xfer_t *x, CURLcode rc, const char *verb, char *err, size_t errlen)
{
    long status = 0;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK && !x->too_long && !x->write_err) {
        snprintf(err, errlen, "%s %s: %s", verb, x->shown, curl_easy_strerror(rc));
        return 1;
    }
    if (status != 200 && status != 201) {
        for (size_t i = 0; i < x->reply_len; i++)
            if (x->reply[i] == '\n' || x->reply[i] == '\r')
                x->reply[i] = ' ';
        while (x->reply_len > 0 && x->reply[x->reply_len - 1] == ' ')
            x->reply[--x->reply_len] = '\0';
        snprintf(err, errlen, "%s %s: HTTP %ld from the manager%s%s%s", verb, x->shown, status,
                 status == 404 ? " (not in the artifact store)" : "", x->reply_len ? ": " : "", x->reply);
        return 1;
    }
    return 0;
}

static void upload_done(CURL *easy, CURLcode rc, void *arg)
{
    (void)easy;
    xfer_t *x = arg;
    char err[900];
    finish(x, !http_failed(x, rc, "artifact upload", err, sizeof err), err);
}

static void download_done(CURL *easy, CURLcode rc, void *arg)
{
    (void)easy;
    xfer_t *x = arg;
    char err[900];
    if (http_failed(x, rc, "input", err, sizeof err)) {
        finish(x, 0, err);
        return;
    }
    unsigned char h[crypto_hash_sha256_BYTES];
    char got[65];
    crypto_hash_sha256_final(&x->st, h);
    sodium_bin2hex(got, sizeof got, h, sizeof h);
    if (x->write_err) {
        snprintf(err, sizeof err, "input %s: writing: %s", x->shown, strerror(x->write_err));
    } else if (x->too_long || x->got != x->want_size) {
        snprintf(err, sizeof err, "input %s: size mismatch: %s%lld bytes, expected %lld", x->shown,
                 x->too_long ? "more than " : "", x->too_long ? x->want_size : x->got, x->want_size);
    } else if (strcmp(got, x->want_sha) != 0) {
        snprintf(err, sizeof err, "input %s: sha256 mismatch: got %s, expected %s", x->shown, got, x->want_sha);
    } else if (fsync(x->out_fd) < 0 || renameat(x->dirfd, x->tmpname, x->dirfd, x->name) < 0) {
        snprintf(err, sizeof err, "input %s: %s", x->shown, strerror(errno));
    } else {
        close(x->out_fd);
        x->out_fd = -1;
        finish(x, 1, "");
        return;
    }
    finish(x, 0, err);
}

/* A transfer of sha with the common options; NULL with err. */
static xfer_t *xfer_new(const char *sha, const char *shown, xfer_done_fn *fn, void *arg, char *err, size_t errlen)
{
    if (!xf_url || !xf_token) {
        snprintf(err, errlen, "artifacts: DEVSYS_MANAGER_URL and DEVSYS_AGENT_TOKEN must be set on the agent");
        return NULL;
    }
    xfer_t *x = xcalloc(1, sizeof *x);
    x->out_fd = -1;
    x->fn = fn;
    x->arg = arg;
    x->shown = xstrdup(shown);
    snprintf(x->want_sha, sizeof x->want_sha, "%s", sha);
    x->easy = curl_easy_init();
    char *url = xasprintf("%s/v1/artifacts/%s", xf_url, sha);
    char *auth = xasprintf("Authorization: Bearer %s", xf_token);
    x->headers = curl_slist_append(NULL, auth);
    x->headers = curl_slist_append(x->headers, "Expect:");
    free(auth);
    curl_easy_setopt(x->easy, CURLOPT_URL, url);
    free(url);
    curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(x->easy, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
    curl_easy_setopt(x->easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(x->easy, CURLOPT_LOW_SPEED_TIME, LOW_SPEED_TIME_S);
    curl_easy_setopt(x->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    return x;
}

static xfer_t *xfer_start(xfer_t *x, curlev_done_fn *done, char *err, size_t errlen)
{
    if (curlev_add(xf_curl, x->easy, done, x) < 0) {
        snprintf(err, errlen, "%s: curl refused the transfer", x->shown);
        xfer_free(x);
        return NULL;
    }
    return x;
}

xfer_t *xfer_upload(const char *path, const char *shown, const char *sha, long long size, xfer_done_fn *fn, void *arg,
                    char *err, size_t errlen)
{
    xfer_t *x = xfer_new(sha, shown, fn, arg, err, errlen);
    if (!x)
        return NULL;
    x->in = fopen(path, "rbe");
    if (!x->in) {
        snprintf(err, errlen, "artifact upload %s: %s", shown, strerror(errno));
        xfer_free(x);
        return NULL;
    }
    curl_easy_setopt(x->easy, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(x->easy, CURLOPT_READDATA, x->in);
    curl_easy_setopt(x->easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
    curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, keep_reply);
    curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
    return xfer_start(x, upload_done, err, errlen);
}

xfer_t *xfer_download(int dirfd, const char *name, const char *shown, const char *sha, long long size,
                      xfer_done_fn *fn, void *arg, char *err, size_t errlen)
{
    xfer_t *x = xfer_new(sha, shown, fn, arg, err, errlen);
    if (!x)
        return NULL;
    x->dirfd = dirfd;
    x->name = xstrdup(name);
    x->want_size = size;
    snprintf(x->tmpname, sizeof x->tmpname, ".devsys-input-%d-%p", (int)getpid(), (void *)x);
    x->out_fd = openat(dirfd, x->tmpname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (x->out_fd < 0) {
        snprintf(err, errlen, "input %s: %s", shown, strerror(errno));
        xfer_free(x);
        return NULL;
    }
    crypto_hash_sha256_init(&x->st);
    curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, write_body);
    curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
    return xfer_start(x, download_done, err, errlen);
}

void xfer_cancel(xfer_t *x)
{
    if (!x)
        return;
    curlev_remove(xf_curl, x->easy);
    xfer_free(x);
}
