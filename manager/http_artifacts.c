/* http_artifacts: the artifact store's routes: PUT a file under its sha256
 * (the body is hashed while written; 400 when it is another, 413 past
 * DEVSYS_ARTIFACT_MAX_BYTES), GET it streamed from disk, HEAD its size. */
#include "http_internal.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "artifact_store.h"

static int sha_checked(struct req *q, const struct route_args *a)
{
    if (astore_sha_ok(a->sha256))
        return 1;
    reply_error(q, 400, "sha256: must be 64 lowercase hex digits");
    return 0;
}

static void put_done(int status, const char *msg, long long size, void *arg)
{
    struct req *q = arg;
    if (status != 200 && status != 201) {
        reply_error(q, status, msg);
        return;
    }
    char sha[72];
    snprintf(sha, sizeof sha, "%s", q->path + strlen("/v1/artifacts/"));
    if (status == 201)
        req_audit_note(q, sha, json_pack("{s:I}", "size", (json_int_t)size));
    reply_json(q, status, json_pack("{s:s,s:I,s:b}", "sha256", sha, "size", (json_int_t)size, "created", status == 201));
}

void artifacts_put(struct req *q, const struct route_args *a)
{
    if (!sha_checked(q, a))
        return;
    struct evbuffer *in = evhttp_request_get_input_buffer(q->r);
    size_t len = evbuffer_get_length(in);
    if (len > q->api->artifact_max) { /* the guard refuses it first from Content-Length */
        char msg[160];
        snprintf(msg, sizeof msg, "artifact of %zu bytes exceeds the limit of %zu bytes (DEVSYS_ARTIFACT_MAX_BYTES)",
                 len, q->api->artifact_max);
        reply_error(q, 413, msg);
        return;
    }
    astore_put(q->api->store, a->sha256, in, put_done, q);
}

/* GET streams the file with evbuffer_add_file (sendfile or mmap, never read
 * whole into memory); HEAD answers its size only. */
static void serve_file(struct req *q, const struct route_args *a, int head)
{
    if (!sha_checked(q, a))
        return;
    off_t size = 0;
    int fd = astore_open(q->api->store, a->sha256, &size);
    if (fd < 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "artifact %s: %s", a->sha256, errno == ENOENT ? "not in the store" : strerror(errno));
        reply_error(q, errno == ENOENT ? 404 : 500, msg);
        return;
    }
    struct evkeyvalq *h = evhttp_request_get_output_headers(q->r);
    char etag[136], clen[32];
    snprintf(etag, sizeof etag, "\"%s\"", a->sha256);
    evhttp_add_header(h, "Content-Type", "application/octet-stream");
    evhttp_add_header(h, "ETag", etag);
    evhttp_add_header(h, "Cache-Control", "public, max-age=31536000, immutable");
    struct evbuffer *b = evbuffer_new();
    if (head) {
        snprintf(clen, sizeof clen, "%lld", (long long)size);
        evhttp_add_header(h, "Content-Length", clen);
        close(fd);
    } else if (size == 0) {
        close(fd);
    } else if (evbuffer_add_file(b, fd, 0, size) < 0) { /* takes fd */
        evbuffer_free(b);
        reply_error(q, 500, "artifact store: cannot send the file");
        return;
    }
    req_observe(q, 200);
    evhttp_send_reply(q->r, 200, "OK", b);
    evbuffer_free(b);
    q->api->inflight--;
    req_free(q);
}

void artifacts_get(struct req *q, const struct route_args *a)
{
    serve_file(q, a, 0);
}

void artifacts_head(struct req *q, const struct route_args *a)
{
    serve_file(q, a, 1);
}
