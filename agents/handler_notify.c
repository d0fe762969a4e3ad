/* handler_notify: kind notify, one webhook delivery per attempt: a POST of
 * the spec's body, signed per Standard Webhooks (common/whsig.h) with the
 * secrets the agent holds under the spec's secret name, sent through libcurl's
 * multi interface on the agent's loop (common/curlev.h). 2xx delivers;
 * 4xx other than 408 and 429 is permanent; anything else is retried. */
#include "handler.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "curlev.h"
#include "notify_secrets.h"
#include "utf8.h"
#include "whsig.h"
#include "xalloc.h"

#define BODY_READ_MAX (64 * 1024) /* response bytes read; the transfer stops past it */
#define BODY_HEAD_MAX 200         /* response bytes quoted in an error */
#define DEFAULT_TIMEOUT_S 10.0

static curlev_t *notify_curl; /* on the agent's loop, made by the first delivery */

struct delivery {
    task_run_t *run;
    CURL *easy;
    struct curl_slist *headers;
    struct event *report;     /* cancel: done() on the next loop pass */
    char id[160];             /* webhook-id */
    char origin[160];         /* scheme://host[:port] for messages: never the path or query */
    char head[BODY_HEAD_MAX + 1];
    size_t head_len, body_len;
    int overflow;
    double timeout_s;
    char errbuf[CURL_ERROR_SIZE];
};

/* scheme://host[:port] of url without user info, path or query (those may
 * carry tokens, e.g. a Slack webhook's path). */
static void url_origin(const char *url, char *out, size_t cap)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    size_t scheme = (size_t)(p - url), host = strcspn(p, "/?#");
    const char *at = memchr(p, '@', host);
    if (at) {
        host -= (size_t)(at + 1 - p);
        p = at + 1;
    }
    snprintf(out, cap, "%.*s%.*s", (int)scheme, url, (int)host, p);
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct delivery *d = arg;
    size_t len = size * n;
    if (d->head_len < BODY_HEAD_MAX) {
        size_t take = BODY_HEAD_MAX - d->head_len < len ? BODY_HEAD_MAX - d->head_len : len;
        memcpy(d->head + d->head_len, data, take);
        d->head_len += take;
    }
    d->body_len += len;
    if (d->body_len > BODY_READ_MAX) {
        d->overflow = 1;
        return 0; /* stop reading: the status is known, the rest is dropped */
    }
    return len;
}

static void delivery_free(struct delivery *d)
{
    if (d->easy)
        curl_easy_cleanup(d->easy); /* its transfer ended or was removed */
    curl_slist_free_all(d->headers);
    if (d->report)
        event_free(d->report);
    free(d);
}

static void report(struct delivery *d, handler_result_t *res)
{
    task_run_t *run = d->run;
    run->handler_data = NULL;
    delivery_free(d);
    run->done(run, res);
}

/* "HTTP 503 from http://h:p: <body head>" */
static char *status_error(struct delivery *d, long status)
{
    char *head = utf8_preview(d->head, d->head_len, BODY_HEAD_MAX);
    char *e = xasprintf("HTTP %ld from %s%s%s", status, d->origin, d->head_len ? ": " : "", head);
    free(head);
    return e;
}

static void on_done(CURL *easy, CURLcode code, void *arg)
{
    struct delivery *d = arg;
    handler_result_t res = {0};
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    if (code == CURLE_OK || (code == CURLE_WRITE_ERROR && d->overflow && status > 0)) {
        if (status >= 200 && status < 300) {
            double total = 0;
            curl_easy_getinfo(easy, CURLINFO_TOTAL_TIME, &total);
            res.ok = 1;
            res.result = json_pack("{s:i,s:s,s:f}", "status", (int)status, "webhook_id", d->id, "seconds", total);
            if (d->run->spec->notify_destination)
                json_object_set_new(res.result, "destination", json_string(d->run->spec->notify_destination));
        } else {
            res.retryable = !(status >= 400 && status < 500 && status != 408 && status != 429);
            res.error = status_error(d, status);
        }
    } else if (code == CURLE_OPERATION_TIMEDOUT) {
        res.retryable = 1;
        res.error = xasprintf("timeout: no answer from %s within %gs", d->origin, d->timeout_s);
    } else {
        res.retryable = 1;
        char *why = utf8_preview(d->errbuf[0] ? d->errbuf : curl_easy_strerror(code),
                                 strlen(d->errbuf[0] ? d->errbuf : curl_easy_strerror(code)), 300);
        res.error = xasprintf("%s: %s", d->origin, why);
        free(why);
    }
    report(d, &res);
}

static void on_cancelled(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    handler_result_t res = {0};
    res.error = xstrdup("cancelled");
    report(arg, &res);
}

static void add_header(struct delivery *d, const char *name, const char *value)
{
    char *h = xasprintf("%s: %s", name, value);
    d->headers = curl_slist_append(d->headers, h);
    free(h);
}

/* The headers of this attempt: a fresh timestamp, the same id every time. */
static int sign(struct delivery *d, const spec_t *s, handler_result_t *res)
{
    char ts[24];
    long long now = (long long)time(NULL);
    snprintf(ts, sizeof ts, "%lld", now);
    add_header(d, "Content-Type", s->notify_content_type ? s->notify_content_type : "application/json");
    add_header(d, "User-Agent", "devsys-notify");
    d->headers = curl_slist_append(d->headers, "Expect:"); /* no 100-continue round trip */
    add_header(d, "webhook-id", d->id);
    add_header(d, "webhook-timestamp", ts);
    if (!s->notify_secret)
        return 0;
    char why[256];
    notify_secrets_t *sec = notify_secrets_get(s->notify_secret, why, sizeof why);
    if (!sec) {
        res->retryable = 1; /* the agents' file may be fixed, or another agent has it */
        res->error = xstrdup(why);
        return -1;
    }
    char *sig = whsig_header(notify_secrets_values(sec), notify_secrets_count(sec), d->id, now, s->notify_body,
                             s->notify_body_len);
    notify_secrets_free(sec);
    add_header(d, "webhook-signature", sig);
    free(sig);
    return 0;
}

static int notify_start(task_run_t *run, handler_result_t *res)
{
    const spec_t *s = run->spec;
    struct delivery *d = xcalloc(1, sizeof *d);
    d->run = run;
    if (s->notify_webhook_id)
        snprintf(d->id, sizeof d->id, "%s", s->notify_webhook_id);
    else {
        size_t j = (size_t)snprintf(d->id, sizeof d->id, "msg_");
        for (const char *c = run->id; *c && j + 1 < sizeof d->id; c++)
            if (*c != '-')
                d->id[j++] = *c;
        d->id[j] = '\0';
    }
    url_origin(s->notify_url, d->origin, sizeof d->origin);
    d->timeout_s = s->notify_timeout_s > 0 ? s->notify_timeout_s : s->timeout_s > 0 ? s->timeout_s : DEFAULT_TIMEOUT_S;
    if (sign(d, s, res) < 0)
        goto fail;
    d->easy = curl_easy_init();
    if (!d->easy) {
        res->retryable = 1;
        res->error = xstrdup("curl_easy_init failed");
        goto fail;
    }
    long ms = (long)(d->timeout_s * 1000);
    curl_easy_setopt(d->easy, CURLOPT_URL, s->notify_url);
    curl_easy_setopt(d->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(d->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(d->easy, CURLOPT_POST, 1L);
    curl_easy_setopt(d->easy, CURLOPT_POSTFIELDS, s->notify_body);
    curl_easy_setopt(d->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)s->notify_body_len);
    curl_easy_setopt(d->easy, CURLOPT_HTTPHEADER, d->headers);
    curl_easy_setopt(d->easy, CURLOPT_TIMEOUT_MS, ms);
    curl_easy_setopt(d->easy, CURLOPT_CONNECTTIMEOUT_MS, ms < 10000 ? ms : 10000L);
    curl_easy_setopt(d->easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(d->easy, CURLOPT_WRITEDATA, d);
    curl_easy_setopt(d->easy, CURLOPT_ERRORBUFFER, d->errbuf);
    if (!notify_curl)
        notify_curl = curlev_new(run->base);
    if (curlev_add(notify_curl, d->easy, on_done, d) != 0) {
        res->retryable = 1;
        res->error = xstrdup("curl refused the transfer");
        goto fail;
    }
    run->handler_data = d;
    return 0;
fail:
    res->ok = 0;
    delivery_free(d);
    return -1;
}

static void notify_cancel(task_run_t *run)
{
    struct delivery *d = run->handler_data;
    if (!d || d->report)
        return;
    curlev_remove(notify_curl, d->easy);
    curl_easy_cleanup(d->easy);
    d->easy = NULL;
    d->report = evtimer_new(run->base, on_cancelled, d);
    event_active(d->report, EV_TIMEOUT, 1);
}

void notify_handler_shutdown(void)
{
    curlev_free(notify_curl);
    notify_curl = NULL;
}

const handler_ops_t handler_notify = {
    .kinds = (const char *const[]){"notify", NULL},
    .start = notify_start,
    .cancel = notify_cancel,
};
