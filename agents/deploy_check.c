/* deploy_check: a deploy's acceptance check (deploy_check.h). The HTTP check
 * is a transfer on libcurl's multi interface on the agent's loop
 * (common/curlev.h); the command check runs through the exec handler. */
#include "deploy_check.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "curlev.h"
#include "deploy_run.h"
#include "log.h"
#include "xalloc.h"

struct deploy_check {
    task_run_t *run;
    const struct spec_deploy *d;
    deploy_check_fn *fn;
    void *arg;
    CURL *easy;              /* the request in flight, or NULL */
    char *body;              /* the first DEPLOY_CHECK_BODY_MAX bytes of the answer */
    size_t body_len;
    char curl_err[CURL_ERROR_SIZE];
    int tries;               /* made so far */
    char *why;               /* the last try's failure */
    struct event *timer;     /* the next try, or the report of a cancel */
    deploy_run_t *cmd;       /* the check command, while it runs */
    int cancelled;
};

/* The checks' libcurl multi on the agent's loop (common/curlev.h), made by
 * the first HTTP check and kept for the process's life. */
static curlev_t *check_curl;

/* ----------------------------------------------------------- the HTTP check */

static void try_http(deploy_check_t *c);

/* The check is over: report and free (fn may start anything, c is gone). */
static void check_end(deploy_check_t *c, int ok)
{
    deploy_check_fn *fn = c->fn;
    void *arg = c->arg;
    char *why = ok ? NULL : (c->why ? c->why : xstrdup("cancelled"));
    if (ok)
        free(c->why);
    event_free(c->timer);
    free(c->body);
    free(c);
    fn(ok, why, arg);
}

static void on_check_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    deploy_check_t *c = arg;
    if (c->cancelled)
        check_end(c, 0);
    else
        try_http(c);
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    deploy_check_t *c = arg;
    size_t len = size * n, room = DEPLOY_CHECK_BODY_MAX - c->body_len;
    size_t take = len < room ? len : room;
    if (take) {
        memcpy(c->body + c->body_len, data, take);
        c->body_len += take;
        c->body[c->body_len] = '\0';
    }
    return len; /* the rest is read and dropped */
}

/* Does the body contain the pattern, as a substring or as a POSIX extended
 * regular expression? (Bytes after a NUL are not seen by the regex.) */
static int body_matches(const deploy_check_t *c)
{
    const char *p = c->d->check_body;
    if (memmem(c->body, c->body_len, p, strlen(p)))
        return 1;
    regex_t re;
    if (regcomp(&re, p, REG_EXTENDED | REG_NOSUB) != 0)
        return 0;
    int m = regexec(&re, c->body, 0, NULL, 0) == 0;
    regfree(&re);
    return m;
}

/* One try ended (res: libcurl's code). Judge it; retry or report. */
static void http_try_done(deploy_check_t *c, CURLcode code)
{
    long status = 0;
    curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c->easy);
    c->easy = NULL;
    free(c->why);
    c->why = NULL;
    const char *url = c->d->check_url;
    if (code != CURLE_OK)
        c->why = xasprintf("GET %s failed: %s", url, c->curl_err[0] ? c->curl_err : curl_easy_strerror(code));
    else if (status != c->d->check_status)
        c->why = xasprintf("GET %s answered %ld, expected %d", url, status, c->d->check_status);
    else if (c->d->check_body && !body_matches(c))
        c->why = xasprintf("GET %s answered %ld but the body does not match \"%s\"", url, status,
                           c->d->check_body);
    if (!c->why) {
        check_end(c, 1);
        return;
    }
    if (c->cancelled || c->tries > c->d->check_retries) {
        if (c->tries > 1) {
            char *more = xasprintf("%s (%d tries)", c->why, c->tries);
            free(c->why);
            c->why = more;
        }
        check_end(c, 0);
        return;
    }
    double s = c->d->check_interval_s;
    struct timeval tv = {(time_t)s, (suseconds_t)((s - (double)(time_t)s) * 1e6)};
    evtimer_add(c->timer, &tv);
}

static void on_http_done(CURL *easy, CURLcode code, void *arg)
{
    (void)easy;
    http_try_done(arg, code);
}

static void try_http(deploy_check_t *c)
{
    c->tries++;
    c->body_len = 0;
    c->body[0] = '\0';
    c->curl_err[0] = '\0';
    CURL *e = c->easy = curl_easy_init();
    if (!e) {
        log_error("deploy check: curl_easy_init failed");
        abort();
    }
    curl_easy_setopt(e, CURLOPT_URL, c->d->check_url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->curl_err);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(c->d->check_timeout_s * 1000.0));
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "devsys-agent deploy check");
    if (curlev_add(check_curl, e, on_http_done, c) != 0) {
        log_error("deploy check: curl refused the transfer");
        abort();
    }
}

/* --------------------------------------------------------- the command check */

static void on_command_done(handler_result_t *res, void *arg)
{
    deploy_check_t *c = arg;
    c->cmd = NULL;
    if (!res->ok) {
        char *line = deploy_run_last_line(res);
        char *argv0 = xstrdup(json_string_value(json_array_get(c->d->check_command, 0)));
        c->why = line ? xasprintf("%s: %s (last output: %s)", argv0, res->error ? res->error : "failed", line)
                      : xasprintf("%s: %s", argv0, res->error ? res->error : "failed");
        free(argv0);
        free(line);
    }
    int ok = res->ok;
    deploy_run_result_clear(res);
    check_end(c, ok);
}

/* ------------------------------------------------------------------ public */

deploy_check_t *deploy_check_start(task_run_t *run, const char *dir, const char *revision, deploy_check_fn *fn,
                                   void *arg)
{
    const struct spec_deploy *d = &run->spec->deploy;
    if (!d->check_url && !d->check_command)
        return NULL;
    deploy_check_t *c = xcalloc(1, sizeof *c);
    c->run = run;
    c->d = d;
    c->fn = fn;
    c->arg = arg;
    c->timer = evtimer_new(run->base, on_check_timer, c);
    if (!c->timer) {
        log_error("deploy check: out of libevent resources");
        abort();
    }
    if (d->check_url) {
        if (!check_curl)
            check_curl = curlev_new(run->base);
        c->body = xmalloc(DEPLOY_CHECK_BODY_MAX + 1);
        try_http(c);
        return c;
    }
    size_t n = json_array_size(d->check_command);
    const char **argv = xcalloc(n + 1, sizeof *argv);
    for (size_t i = 0; i < n; i++)
        argv[i] = json_string_value(json_array_get(d->check_command, i));
    json_t *env = json_pack("{s:s,s:s,s:s,s:s}", "DEVSYS_DEPLOY_DIR", dir, "DEVSYS_DEPLOY_REVISION", revision,
                            "DEVSYS_DEPLOY_APP", d->app, "DEVSYS_DEPLOY_ENV", d->env);
    double timeout = run->spec->timeout_s > 0 ? run->spec->timeout_s : DEPLOY_CHECK_COMMAND_TIMEOUT_S;
    handler_result_t res = {0};
    c->cmd = deploy_run_start(run, argv, dir, env, timeout, on_command_done, c, &res);
    free(argv);
    if (!c->cmd) {
        /* report from the loop, as for any other outcome */
        c->why = xasprintf("%s", res.error ? res.error : "the check command did not start");
        deploy_run_result_clear(&res);
        c->cancelled = 1; /* the timer reports the failure (why) from the loop */
        struct timeval now = {0, 0};
        evtimer_add(c->timer, &now);
    }
    return c;
}

void deploy_check_cancel(deploy_check_t *c)
{
    if (c->cmd) {
        c->cancelled = 1;
        deploy_run_cancel(c->cmd);
        return;
    }
    c->cancelled = 1;
    free(c->why);
    c->why = xstrdup("cancelled");
    if (c->easy) {
        curlev_remove(check_curl, c->easy);
        curl_easy_cleanup(c->easy);
        c->easy = NULL;
    }
    evtimer_del(c->timer);
    struct timeval now = {0, 0};
    evtimer_add(c->timer, &now);
}
