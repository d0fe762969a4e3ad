/* monitor_http: the http probe: one GET or HEAD through libcurl's multi
 * interface on the agent's loop (common/curlev.h), on a fresh connection,
 * judged on status, body regex, latency and the TLS certificate's days left.
 * The body is read up to max_body_bytes and no further. */
#include "monitor_internal.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "curlev.h"
#include "utf8.h"
#include "xalloc.h"

struct http_probe {
    probe_t *p;
    CURL *easy;
    char *body;           /* kept only with body_regex, at most max + 1 bytes */
    size_t body_len;      /* bytes received (kept or not) */
    size_t body_cap;      /* bytes allocated for body */
    size_t max;
    int too_large;
    char shown[256];      /* the URL without user info, for messages */
    char errbuf[CURL_ERROR_SIZE];
};

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct http_probe *h = arg;
    size_t len = size * n;
    if (h->body_len + len > h->max) {
        h->too_large = 1;
        return 0; /* stop the transfer: the rest is never read */
    }
    if (h->p->m->body_regex) {
        if (h->body_len + len + 1 > h->body_cap) { /* doubling: few reallocs up to max */
            size_t cap = h->body_cap ? h->body_cap : 4096;
            while (cap < h->body_len + len + 1)
                cap *= 2;
            h->body_cap = cap < h->max + 1 ? cap : h->max + 1;
            h->body = xrealloc(h->body, h->body_cap);
        }
        memcpy(h->body + h->body_len, data, len);
        h->body[h->body_len + len] = '\0'; /* regexec's interceptors read it as a string */
    }
    h->body_len += len;
    return len;
}

static void http_free(struct http_probe *h)
{
    if (h->easy)
        curl_easy_cleanup(h->easy);
    free(h->body);
    free(h);
}

static void http_stop(probe_t *p)
{
    struct http_probe *h = p->impl;
    curlev_remove(monitor_curl(p->run->base), h->easy);
    http_free(h);
}

/* The URL for messages: user info (a password) is dropped, the rest kept. */
static void url_shown(const char *url, char *out, size_t cap)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    size_t host = strcspn(p, "/?#");
    const char *at = memchr(p, '@', host);
    if (at)
        snprintf(out, cap, "%.*s%s", (int)(p - url), url, at + 1);
    else
        snprintf(out, cap, "%s", url);
}

/* Is status expected? (expect_status: an integer, an array, or NULL = 2xx/3xx) */
static int status_expected(const json_t *want, long status, char *text, size_t cap)
{
    if (!want) {
        snprintf(text, cap, "2xx or 3xx");
        return status >= 200 && status < 400;
    }
    if (json_is_integer(want)) {
        snprintf(text, cap, "%lld", (long long)json_integer_value(want));
        return json_integer_value(want) == status;
    }
    size_t i, used = (size_t)snprintf(text, cap, "%s", json_array_size(want) > 1 ? "one of " : "");
    json_t *e;
    int hit = 0;
    json_array_foreach(want, i, e)
    {
        hit |= json_integer_value(e) == status;
        if (used < cap)
            used += (size_t)snprintf(text + used, cap - used, "%s%lld", i ? ", " : "", (long long)json_integer_value(e));
    }
    return hit;
}

/* Days until the server certificate's notAfter (CURLINFO_CERTINFO, which
 * libcurl fills from the handshake of this fresh connection), or -100000
 * when unknown. "Expire date" reads like "Jan  1 00:00:00 2030 GMT". */
static long cert_days_left(CURL *easy)
{
    struct curl_certinfo *ci = NULL;
    if (curl_easy_getinfo(easy, CURLINFO_CERTINFO, &ci) != CURLE_OK || !ci || ci->num_of_certs < 1)
        return -100000;
    for (struct curl_slist *f = ci->certinfo[0]; f; f = f->next) {
        if (strncmp(f->data, "Expire date:", 12) != 0)
            continue;
        struct tm tm = {0};
        const char *end = strptime(f->data + 12, " %b %d %H:%M:%S %Y", &tm);
        if (!end)
            return -100000;
        double secs = difftime(timegm(&tm), time(NULL));
        return (long)(secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400));
    }
    return -100000;
}

static int body_matches(struct http_probe *h)
{
    regex_t re;
    if (regcomp(&re, h->p->m->body_regex, REG_EXTENDED | REG_NOSUB) != 0)
        return 0; /* the validator compiled it: not reached */
    int m;
#ifdef REG_STARTEND
    regmatch_t range = {.rm_so = 0, .rm_eo = (regoff_t)h->body_len};
    m = regexec(&re, h->body ? h->body : "", 0, &range, REG_STARTEND) == 0;
#else
    m = regexec(&re, h->body ? h->body : "", 0, NULL, 0) == 0;
#endif
    regfree(&re);
    return m;
}

/* Why the transfer itself failed, one line. */
static char *transfer_error(struct http_probe *h, CURLcode rc, const char *method)
{
    char limit[32];
    probe_timeout_text(h->p, limit);
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        curl_off_t connected = 0;
        curl_easy_getinfo(h->easy, CURLINFO_CONNECT_TIME_T, &connected);
        if (!connected) {
            char *ip = NULL;
            long port = 0;
            curl_easy_getinfo(h->easy, CURLINFO_PRIMARY_IP, &ip);
            curl_easy_getinfo(h->easy, CURLINFO_PRIMARY_PORT, &port);
            if (ip && *ip && port)
                return xasprintf("connect to %s:%ld timed out after %s", ip, port, limit);
            return xasprintf("%s %s: no connection within %s", method, h->shown, limit);
        }
        return xasprintf("%s %s timed out after %s (connected, no complete answer)", method, h->shown, limit);
    }
    const char *why = h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc);
    char *line = utf8_preview(why, strlen(why), 300);
    char *e = xasprintf("%s %s: %s", method, h->shown, line);
    free(line);
    return e;
}

static void on_done(CURL *easy, CURLcode rc, void *arg)
{
    struct http_probe *h = arg;
    probe_t *p = h->p;
    const struct spec_monitor *m = p->m;
    const char *method = m->head ? "HEAD" : "GET";
    long status = 0;
    curl_off_t total_us = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(easy, CURLINFO_TOTAL_TIME_T, &total_us);
    double ms = (double)total_us / 1000.0;
    long days = strncmp(m->url, "https://", 8) == 0 ? cert_days_left(easy) : -100000;
    char *why = NULL;
    char want[200];
    long max = (long)h->max;
    if (h->too_large || rc == CURLE_FILESIZE_EXCEEDED)
        why = xasprintf("body larger than %ld bytes (max_body_bytes)", max);
    else if (rc != CURLE_OK)
        why = transfer_error(h, rc, method);
    else if (!status_expected(m->expect_status, status, want, sizeof want))
        why = xasprintf("%s %s answered %ld, expected %s", method, h->shown, status, want);
    else if (m->body_regex && !body_matches(h)) {
        char *re = utf8_preview(m->body_regex, strlen(m->body_regex), 200);
        why = xasprintf("body does not match /%s/", re);
        free(re);
    }
    else if (m->max_latency_ms && ms > (double)m->max_latency_ms)
        why = xasprintf("%s %s took %.0f ms (> max_latency_ms %ld)", method, h->shown, ms, m->max_latency_ms);
    else if (m->has_cert_min_days && days == -100000)
        why = xasprintf("certificate expiry unknown (no certificate information from %s)", h->shown);
    else if (m->has_cert_min_days && days < m->cert_min_days)
        why = days < 0 ? xasprintf("certificate expired %ld days ago", -days)
                       : xasprintf("certificate expires in %ld days (< %d)", days, m->cert_min_days);
    json_t *d = json_pack("{s:o,s:I,s:o}", "status", status ? json_integer(status) : json_null(), "bytes",
                          (json_int_t)h->body_len, "cert_days_left", days != -100000 ? json_integer(days) : json_null());
    http_free(h);
    probe_finish(p, why == NULL, why, d, total_us > 0 ? ms : -1);
}

int monitor_http_start(probe_t *p, char *err, size_t errlen)
{
    const struct spec_monitor *m = p->m;
    struct http_probe *h = xcalloc(1, sizeof *h);
    h->p = p;
    h->max = (size_t)(m->max_body_bytes > 0 ? m->max_body_bytes : KIND_MONITOR_BODY_DEFAULT);
    url_shown(m->url, h->shown, sizeof h->shown);
    h->easy = curl_easy_init();
    if (!h->easy) {
        snprintf(err, errlen, "curl_easy_init failed");
        http_free(h);
        return -1;
    }
    long ms = (long)(m->timeout_s * 1000.0);
    CURL *e = h->easy;
    curl_easy_setopt(e, CURLOPT_URL, m->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_NOBODY, m->head ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, ms);
    /* Each probe measures a connection of its own, TLS handshake included:
     * that is also what makes CERTINFO present on every https probe. */
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_SESSIONID_CACHE, 0L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "devsys-monitor");
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)h->max);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, h);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, h->errbuf);
    if (strncmp(m->url, "https://", 8) == 0)
        curl_easy_setopt(e, CURLOPT_CERTINFO, 1L);
    if (m->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, m->ca_file);
    if (curlev_add(monitor_curl(p->run->base), e, on_done, h) != 0) {
        snprintf(err, errlen, "curl refused the transfer of %s", h->shown);
        http_free(h);
        return -1;
    }
    p->impl = h;
    p->stop = http_stop;
    return 0;
}
