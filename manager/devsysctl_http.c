/* devsysctl_http: devsysctl's HTTP client (devsysctl.h): the manager's URL,
 * one blocking request per call on a libevent HTTP connection with a
 * deadline, and the reading of its answers. */
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "devsysctl.h"
#include "xalloc.h"

/* ---- URL and request plumbing ------------------------------------------- */

/* The options every subcommand's main shares, after its own getopt: the
 * manager URL (default http://127.0.0.1:8080) and DEVSYS_TIMEOUT; a bad one
 * is a usage error (exit 2) naming it. */
void ctl_finish_opts(struct ctl *ctl)
{
    const char *t = getenv("DEVSYS_TIMEOUT");
    if (t && *t) {
        char *end;
        long v = strtol(t, &end, 10);
        if (*end || v < 1 || v > 86400)
            die_usage("DEVSYS_TIMEOUT must be a number of seconds from 1 to 86400, not '%s'", t);
        ctl->timeout_s = (int)v;
    }
    if (!ctl->url || !*ctl->url)
        ctl->url = "http://127.0.0.1:8080";
    if (ctl_parse_url(ctl) != 0)
        die_usage("bad manager URL '%s' (expected http://HOST[:PORT][/PATH])", ctl->url);
}

/* Fills host/port/prefix from ctl->url; -1 on anything but http://host[:port][/path]. */
int ctl_parse_url(struct ctl *ctl)
{
    struct evhttp_uri *uri = evhttp_uri_parse(ctl->url);
    if (!uri)
        return -1;
    const char *scheme = evhttp_uri_get_scheme(uri);
    const char *host = evhttp_uri_get_host(uri);
    const char *path = evhttp_uri_get_path(uri);
    int rc = -1;
    if (!scheme || strcmp(scheme, "http") != 0 || !host || !*host)
        goto out;
    ctl->host = xstrdup(host);
    ctl->port = evhttp_uri_get_port(uri) > 0 ? evhttp_uri_get_port(uri) : 80;
    ctl->prefix = xstrdup(path ? path : "");
    for (size_t n = strlen(ctl->prefix); n > 0 && ctl->prefix[n - 1] == '/'; n--)
        ctl->prefix[n - 1] = '\0';
    rc = 0;
out:
    evhttp_uri_free(uri);
    return rc;
}

static void on_request_error(enum evhttp_request_error err, void *arg)
{
    struct reply *r = arg;
    r->error_kind = (int)err;
}

static void on_response(struct evhttp_request *req, void *arg)
{
    struct reply *r = arg;
    r->done = 1;
    if (req && evhttp_request_get_response_code(req) > 0) {
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        r->status = evhttp_request_get_response_code(req);
        r->len = evbuffer_get_length(in);
        r->body = xmalloc(r->len + 1);
        evbuffer_remove(in, r->body, r->len);
        r->body[r->len] = '\0';
    }
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct reply *r = arg;
    r->timed_out = 1;
}

/* libevent 2.1 reports a refused or failed connect without its cause (errno
 * is clobbered by then), so on failure we connect once more by hand to name
 * it. Returns a static message, or NULL if the connect works. */
static const char *probe_connect(const char *host, int port, int timeout_s)
{
    static char msg[256];
    char portstr[16];
    snprintf(portstr, sizeof(portstr), "%d", port);
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai, *a;
    int rc = getaddrinfo(host, portstr, &hints, &ai);
    if (rc != 0) {
        snprintf(msg, sizeof(msg), "cannot resolve %s: %s", host, gai_strerror(rc));
        return msg;
    }
    int err = 0;
    for (a = ai; a; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        err = connect(fd, a->ai_addr, a->ai_addrlen) == 0 ? 0 : errno;
        if (err == EINPROGRESS) {
            struct pollfd p = { .fd = fd, .events = POLLOUT };
            socklen_t len = sizeof(err);
            if (poll(&p, 1, timeout_s * 1000) == 1)
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
            else
                err = ETIMEDOUT;
        }
        close(fd);
        if (err == 0)
            break;
    }
    freeaddrinfo(ai);
    if (err == 0)
        return NULL;
    snprintf(msg, sizeof(msg), "%s", strerror(err));
    msg[0] = (char)tolower((unsigned char)msg[0]);
    return msg;
}

/* Why the request got no answer, in words for the one-line error. */
static const char *reply_failure(const struct ctl *ctl, const struct reply *r)
{
    if (r->timed_out || r->error_kind == EVREQ_HTTP_TIMEOUT)
        return "timed out";
    if (r->error_kind == EVREQ_HTTP_INVALID_HEADER)
        return "malformed HTTP answer";
    const char *why = probe_connect(ctl->host, ctl->port, ctl->timeout_s);
    return why ? why : "connection closed before an answer";
}

/* Sends one request and waits for the answer. path starts with '/' and is
 * appended to the URL's prefix. body may be NULL. On return 0, *out holds the
 * status and the body (caller frees out->body); on -1 the manager could not
 * be reached and the error line has been printed. */
int ctl_request(const struct ctl *ctl, const char *method, const char *path,
                       const char *body, size_t body_len, struct reply *out)
{
    memset(out, 0, sizeof(*out));
    out->error_kind = -1;
    struct event_base *base = event_base_new();
    struct evhttp_connection *conn = NULL;
    struct event *deadline = NULL;
    char *full = xasprintf("%s%s", ctl->prefix, path);
    enum evhttp_cmd_type cmd = EVHTTP_REQ_GET;
    if (strcmp(method, "POST") == 0)
        cmd = EVHTTP_REQ_POST;
    else if (strcmp(method, "DELETE") == 0)
        cmd = EVHTTP_REQ_DELETE;
    else if (strcmp(method, "PATCH") == 0)
        cmd = EVHTTP_REQ_PATCH;
    if (!base)
        goto fail;
    conn = evhttp_connection_base_new(base, NULL, ctl->host, (unsigned short)ctl->port);
    if (!conn)
        goto fail;
    evhttp_connection_set_timeout(conn, ctl->timeout_s);
    evhttp_connection_set_retries(conn, 0);

    struct evhttp_request *req = evhttp_request_new(on_response, out);
    evhttp_request_set_error_cb(req, on_request_error);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    char *hostport = xasprintf("%s:%d", ctl->host, ctl->port);
    evhttp_add_header(h, "Host", hostport);
    free(hostport);
    evhttp_add_header(h, "Accept", "application/json");
    evhttp_add_header(h, "User-Agent", "devsysctl/0.1");
    if (ctl->token && *ctl->token) {
        char *auth = xasprintf("Bearer %s", ctl->token);
        evhttp_add_header(h, "Authorization", auth);
        free(auth);
    }
    if (body) {
        /* libevent adds Content-Length by itself for POST and PUT only */
        char *clen = xasprintf("%zu", body_len);
        evhttp_add_header(h, "Content-Length", clen);
        free(clen);
        evhttp_add_header(h, "Content-Type", "application/json");
        evbuffer_add(evhttp_request_get_output_buffer(req), body, body_len);
    }
    if (evhttp_make_request(conn, req, cmd, full) != 0)
        goto fail;   /* libevent freed req */

    /* The connection timeout covers each read and write; this bounds the
     * whole exchange, so a server trickling bytes cannot hold us forever. */
    struct timeval tv = { .tv_sec = ctl->timeout_s, .tv_usec = 0 };
    deadline = evtimer_new(base, on_deadline, out);
    evtimer_add(deadline, &tv);
    while (!out->done && !out->timed_out)
        if (event_base_loop(base, EVLOOP_ONCE) < 0)
            break;
    if (!out->status)
        goto fail;
    event_free(deadline);
    evhttp_connection_free(conn);
    event_base_free(base);
    free(full);
    return 0;
fail:
    if (!ctl->quiet)
        fprintf(stderr, "devsysctl: cannot reach the manager at %s: %s\n", ctl->url, reply_failure(ctl, out));
    free(out->body);
    out->body = NULL;
    if (deadline)
        event_free(deadline);
    if (conn)
        evhttp_connection_free(conn);
    if (base)
        event_base_free(base);
    free(full);
    return -1;
}

/* GET path (which it frees) as a document to print; NULL after --json printed it or on failure (*code set). */
json_t *ctl_get_doc(const struct ctl *ctl, char *path, int *code)
{
    json_t *doc = ctl_call(ctl, "GET", path, NULL, 0, code);
    free(path);
    if (doc && !ctl->json)
        return doc;
    json_decref(doc);
    return NULL;
}

/* Percent-encodes one path segment or query value; caller frees. */
char *enc(const char *s)
{
    char *e = evhttp_uriencode(s, -1, 0);
    if (!e) {
        fputs("devsysctl: out of memory\n", stderr);
        exit(EXIT_OTHER);
    }
    char *copy = xstrdup(e);
    free(e);
    return copy;
}

/* Runs a request and interprets it: prints the raw body with --json, reports
 * a refusal (non-2xx). Returns the parsed body (caller json_decref's; may be
 * NULL with --json on an empty body) or NULL with *code set to the exit code. */
json_t *ctl_call(const struct ctl *ctl, const char *method, const char *path,
                 const char *body, size_t body_len, int *code)
{
    struct reply r;
    if (ctl_request(ctl, method, path, body, body_len, &r) != 0) {
        *code = EXIT_UNREACHABLE;
        return NULL;
    }
    json_error_t jerr;
    json_t *doc = r.len ? json_loadb(r.body, r.len, 0, &jerr) : NULL;
    if (ctl->json && r.len)
        printf("%s%s", r.body, r.body[r.len - 1] == '\n' ? "" : "\n");
    if (r.status < 200 || r.status > 299) {
        const char *msg = doc ? json_string_value(json_object_get(doc, "error")) : NULL;
        fprintf(stderr, "devsysctl: the manager refused %s %s: %d %s\n", method, path, r.status,
                msg ? msg : (r.len && r.len < 200 ? r.body : "(no error message)"));
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(doc, "errors"), i, e) {
            const char *m = json_string_value(json_object_get(e, "message"));
            json_t *idx = json_object_get(e, "index");
            if (json_is_integer(idx))
                fprintf(stderr, "  spec %lld: %s\n", (long long)json_integer_value(idx), m ? m : "?");
            else
                fprintf(stderr, "  %s\n", m ? m : "?");
        }
        if (r.status == 401 && !(ctl->token && *ctl->token))
            fputs("  (DEVSYS_TOKEN is not set)\n", stderr);
        json_decref(doc);
        free(r.body);
        *code = EXIT_REFUSED;
        return NULL;
    }
    if (!doc && !ctl->json) {
        fprintf(stderr, "devsysctl: the manager's answer to %s %s is not JSON%s%s\n", method, path,
                r.len ? ": " : "", r.len ? jerr.text : " (empty body)");
        free(r.body);
        *code = EXIT_OTHER;
        return NULL;
    }
    free(r.body);
    *code = 0;
    return doc ? doc : json_null();
}

json_t *ctl_csv(const char *s)
{
    json_t *a = json_array();
    char *copy = xstrdup(s), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
        json_array_append_new(a, json_string(t));
    free(copy);
    return a;
}

const char *ctl_command(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--url") == 0)
            i++;
        else if (argv[i][0] != '-')
            return argv[i];
    }
    return NULL;
}
