/* fuzz_http: libFuzzer target for the manager's HTTP request path. The real
 * api (evhttp server, auth, routes, submit validation) runs on a real event
 * loop; the input is the raw bytes a client sends over a loopback TCP
 * connection to it. Redis and PostgreSQL clients point
 * at a closed port, so a valid submit ends in 503 after validation. */
#include <errno.h>
#include <event2/event.h>
#include <event2/http.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_api.h"
#include "http_internal.h" /* struct api: the bound socket to connect to */
#include "log.h"
#include "metrics.h"
#include "pgc.h"
#include "rc.h"

#define FUZZ_ADMIN_TOKEN "fuzz-admin-token"
#define FUZZ_MAX_BODY (64 * 1024)
#define FUZZ_LOOP_STEPS 16 /* loop turns per phase; each input is bounded */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct event_base *base;
static rc_t *rc;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* The manager logs JSON lines through stdio's stderr; thousands per second
     * would drown libFuzzer's own lines. Sanitizer reports write to fd 2
     * directly and libFuzzer keeps its own handle, so both still show. */
    FILE *devnull = fopen("/dev/null", "w");
    if (devnull)
        stderr = devnull;
    log_init("fuzz", NULL);
    signal(SIGPIPE, SIG_IGN);
    base = event_base_new();
    /* Not connected, ever: rc_command fails at once, so nothing stays pending. */
    rc = rc_new(base, "redis://127.0.0.1:1/0", "redis");
    return 0;
}

/* Case-insensitive search for needle in the first n bytes of s. */
static int has_header(const uint8_t *s, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (strncasecmp((const char *)s + i, needle, k) == 0)
            return 1;
    return 0;
}

/* The bytes to send: the input as is, except that when its head (up to the
 * first blank line) names neither Content-Length nor Transfer-Encoding, a
 * Content-Length for the rest is added, so mutated bodies keep reaching the
 * handlers instead of stalling on a stale length. Caller frees. */
static uint8_t *build_request(const uint8_t *data, size_t size, size_t *out_len)
{
    const uint8_t *end = NULL;
    for (size_t i = 0; i + 4 <= size; i++)
        if (memcmp(data + i, "\r\n\r\n", 4) == 0) {
            end = data + i;
            break;
        }
    uint8_t *out = malloc(size + 64);
    if (!end || has_header(data, (size_t)(end - data), "content-length:") ||
        has_header(data, (size_t)(end - data), "transfer-encoding:")) {
        memcpy(out, data, size);
        *out_len = size;
        return out;
    }
    size_t head = (size_t)(end - data), body = size - head - 4;
    memcpy(out, data, head);
    int n = snprintf((char *)out + head, 64, "\r\nContent-Length: %zu\r\n\r\n", body);
    memcpy(out + head + (size_t)n, end + 4, body);
    *out_len = head + (size_t)n + body;
    return out;
}

/* What the server wrote back: the first bytes are kept for checking, the
 * rest is read and dropped so the server never blocks on a full socket. */
struct response {
    char head[16];
    size_t len;
};

/* Runs the loop a few turns, reading what the server wrote to fd. */
static void pump(int fd, struct response *r)
{
    char buf[16384];
    for (int i = 0; i < FUZZ_LOOP_STEPS; i++) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0) {
            for (ssize_t k = 0; k < n && r->len < sizeof r->head - 1; k++)
                r->head[r->len++] = buf[k];
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pgc_t *pg = pgc_new(base, "host=127.0.0.1 port=1 connect_timeout=1", "fuzz");
    struct api_config cfg = {.listen = "127.0.0.1:0", .prefix = "devsys", .admin_token = FUZZ_ADMIN_TOKEN,
                             .max_body = FUZZ_MAX_BODY,
                             .edge = {.max_conns = 64, .max_header = 16384, .header_timeout_s = 10,
                                      .request_timeout_s = 60, .idle_timeout_s = 60},
                             .auth_cache_ms = 900, .auth_lookups_per_s = 1000};
    char err[256];
    api_t *api = api_new(base, rc, pg, &cfg, err, sizeof err);
    if (!api)
        abort();

    /* A real TCP connection to the api's own listener (bound to port 0), so
     * the accept path is the one the manager serves. */
    struct sockaddr_in addr;
    socklen_t alen = sizeof addr;
    int lfd = guard_listen_fd(api->guard);
    int cfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (cfd < 0 || getsockname(lfd, (struct sockaddr *)&addr, &alen) < 0 ||
        (connect(cfd, (struct sockaddr *)&addr, alen) < 0 && errno != EINPROGRESS))
        abort();
    size_t len;
    uint8_t *req = build_request(data, size, &len);
    struct response resp = {{0}, 0};
    size_t off = 0;
    for (int tries = 0; off < len && tries < 64; tries++) {
        ssize_t w = write(cfd, req + off, len - off);
        if (w > 0)
            off += (size_t)w;
        else if (w < 0 && errno != EAGAIN)
            break;
        pump(cfd, &resp);
    }
    free(req);
    pump(cfd, &resp);
    if (resp.len > 0 && strncmp(resp.head, "HTTP/", resp.len < 5 ? resp.len : 5) != 0)
        abort(); /* whatever went back must be an HTTP response */

    /* PostgreSQL "fails": every query still queued (auth lookups, inserts)
     * gets its error callback, so every request in flight must be answered
     * now. The loop does not turn again before the teardown: a pipelined
     * request read next would find the client freed. */
    pgc_free(pg);
    if (api_inflight(api) != 0)
        abort(); /* a request the server never answered */
    /* Reset, not FIN: a normal close leaves the client port in TIME_WAIT, and
     * thousands of those per second slow every connect on the machine. */
    struct linger reset = {1, 0};
    setsockopt(cfd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    close(cfd);
    api_free(api); /* closes the server end */
    event_base_loop(base, EVLOOP_NONBLOCK); /* deferred frees */
    return 0;
}
