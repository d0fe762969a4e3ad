/* kind_monitor: the "monitor" section of kind monitor, one probe: a "type"
 * (http, tcp, dns, script, log), its timeout, the check it belongs to and
 * the type's own fields, all at one level (see kind.h for each rule). */
#include "kind.h"
#include "regex_bound.h"
#include "spec.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

static const char *const type_names[] = {NULL, "http", "tcp", "dns", "script", "log"};

const char *kind_monitor_type_name(int type)
{
    return type > 0 && type <= MONITOR_LOG ? type_names[type] : "?";
}

static int int_in(const json_t *v, long long min, long long max)
{
    return json_is_integer(v) && json_integer_value(v) >= min && json_integer_value(v) <= max;
}

/* Compiles p as a POSIX extended regular expression: a bad one is refused
 * here, at submit, with the regex library's reason. */
static int regex_check(const char *field, const json_t *v, char *err, size_t errlen)
{
    const char *p = kind_str_in(v, KIND_MONITOR_REGEX_MAX);
    if (!p) {
        snprintf(err, errlen, "%s: must be a POSIX extended regular expression of 1 to %d bytes", field,
                 KIND_MONITOR_REGEX_MAX);
        return -1;
    }
    char why[128], shown[64];
    if (regex_check_ere(p, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s: invalid regular expression /%s/: %s", field, spec_printable(p, strlen(p), shown),
                 why);
        return -1;
    }
    return 0;
}

/* A host name or address literal: 1..253 of [A-Za-z0-9.:_-]. */
static int host_ok(const json_t *v)
{
    const char *s = kind_str_in(v, 253);
    return s && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.:_-") == strlen(s);
}

static int expect_status_ok(const json_t *f)
{
    if (int_in(f, 100, 599))
        return 1;
    if (!json_is_array(f) || json_array_size(f) == 0 || json_array_size(f) > KIND_MONITOR_STATUSES_MAX)
        return 0;
    size_t i;
    json_t *e;
    json_array_foreach(f, i, e) if (!int_in(e, 100, 599)) return 0;
    return 1;
}

static int http_field(const char *k, const json_t *f, struct spec_monitor *m, char *err, size_t errlen)
{
    if (strcmp(k, "url") == 0) {
        if (!kind_notify_url_ok(f))
            return kind_bad(err, errlen, k, "must be an http:// or https:// URL of at most 2048 bytes");
        m->url = json_string_value(f);
    } else if (strcmp(k, "method") == 0) {
        const char *s = json_string_value(f);
        if (!s || (strcmp(s, "GET") != 0 && strcmp(s, "HEAD") != 0))
            return kind_bad(err, errlen, k, "must be \"GET\" or \"HEAD\"");
        m->head = strcmp(s, "HEAD") == 0;
    } else if (strcmp(k, "expect_status") == 0) {
        if (!expect_status_ok(f))
            return kind_bad(err, errlen, k, "must be a status from 100 to 599 or an array of 1 to 32 of them");
        m->expect_status = f;
    } else if (strcmp(k, "body_regex") == 0) {
        if (regex_check(k, f, err, errlen) < 0)
            return -1;
        m->body_regex = json_string_value(f);
    } else if (strcmp(k, "max_latency_ms") == 0) {
        if (!int_in(f, 1, 60000))
            return kind_bad(err, errlen, k, "must be an integer from 1 to 60000");
        m->max_latency_ms = (long)json_integer_value(f);
    } else if (strcmp(k, "cert_min_days") == 0) {
        if (!int_in(f, 0, 3650))
            return kind_bad(err, errlen, k, "must be an integer from 0 to 3650");
        m->cert_min_days = (int)json_integer_value(f);
        m->has_cert_min_days = 1;
    } else if (strcmp(k, "max_body_bytes") == 0) {
        if (!int_in(f, 1, KIND_MONITOR_BODY_MAX))
            return kind_bad(err, errlen, k, "must be an integer from 1 to 16777216");
        m->max_body_bytes = (long)json_integer_value(f);
    } else if (strcmp(k, "ca_file") == 0) {
        const char *s = kind_str_in(f, KIND_MONITOR_PATH_MAX);
        if (!s || s[0] != '/')
            return kind_bad(err, errlen, k, "must be an absolute path (the CA certificates to verify the server with)");
        m->ca_file = s;
    } else {
        return 1;
    }
    return 0;
}

static int tcp_field(const char *k, const json_t *f, struct spec_monitor *m, char *err, size_t errlen)
{
    if (strcmp(k, "host") == 0) {
        if (!host_ok(f))
            return kind_bad(err, errlen, k, "must be a host name or address: 1 to 253 of [A-Za-z0-9.:_-]");
        m->host = json_string_value(f);
    } else if (strcmp(k, "port") == 0) {
        if (!int_in(f, 1, 65535))
            return kind_bad(err, errlen, k, "must be an integer from 1 to 65535");
        m->port = (int)json_integer_value(f);
    } else {
        return 1;
    }
    return 0;
}

static int dns_field(const char *k, const json_t *f, struct spec_monitor *m, char *err, size_t errlen)
{
    if (strcmp(k, "name") == 0) {
        if (!host_ok(f))
            return kind_bad(err, errlen, k, "must be a host name: 1 to 253 of [A-Za-z0-9.:_-]");
        m->dns_name = json_string_value(f);
    } else if (strcmp(k, "expect") == 0) {
        if (!json_is_array(f) || json_array_size(f) == 0 || json_array_size(f) > KIND_MONITOR_ADDRESSES_MAX)
            return kind_bad(err, errlen, k, "must be an array of 1 to 32 IPv4 or IPv6 addresses");
        size_t i;
        json_t *e;
        json_array_foreach(f, i, e)
        {
            unsigned char buf[16];
            const char *s = kind_str_in(e, 64);
            if (!s || (inet_pton(AF_INET, s, buf) != 1 && inet_pton(AF_INET6, s, buf) != 1)) {
                snprintf(err, errlen, "expect[%zu]: must be an IPv4 or IPv6 address", i);
                return -1;
            }
        }
        m->dns_expect = f;
    } else {
        return 1;
    }
    return 0;
}

static int script_field(const char *k, const json_t *f, struct spec_monitor *m, char *err, size_t errlen)
{
    if (strcmp(k, "command") != 0)
        return 1;
    if (!json_is_array(f) || json_array_size(f) == 0 || json_array_size(f) > 256)
        return kind_bad(err, errlen, k, "must be an array of 1 to 256 strings (argv)");
    size_t i;
    json_t *e;
    json_array_foreach(f, i, e)
    {
        if (!json_is_string(e) || json_string_length(e) > 4096 ||
            strlen(json_string_value(e)) != json_string_length(e) || (i == 0 && json_string_length(e) == 0)) {
            snprintf(err, errlen, "command[%zu]: must be a string of at most 4096 bytes%s", i,
                     i == 0 ? ", not empty" : "");
            return -1;
        }
    }
    m->command = f;
    return 0;
}

static int log_field(const char *k, const json_t *f, struct spec_monitor *m, char *err, size_t errlen)
{
    if (strcmp(k, "path") == 0) {
        const char *s = kind_str_in(f, KIND_MONITOR_PATH_MAX);
        if (!s || s[0] != '/')
            return kind_bad(err, errlen, k, "must be an absolute path of at most 4096 bytes");
        m->log_path = s;
    } else if (strcmp(k, "pattern") == 0) {
        if (regex_check(k, f, err, errlen) < 0)
            return -1;
        m->log_pattern = json_string_value(f);
    } else if (strcmp(k, "offset") == 0) {
        if (!int_in(f, 0, (long long)1 << 53))
            return kind_bad(err, errlen, k, "must be a byte offset: an integer from 0 to 2^53");
        m->log_offset = (long long)json_integer_value(f);
        m->has_log_offset = 1;
    } else {
        return 1;
    }
    return 0;
}

typedef int field_fn(const char *k, const json_t *f, struct spec_monitor *m, char *err, size_t errlen);
static field_fn *const type_fields[] = {NULL, http_field, tcp_field, dns_field, script_field, log_field};

/* What the type needs that the section lacks, checked after every field. */
static int type_complete(const struct spec_monitor *m, char *err, size_t errlen)
{
    switch (m->type) {
    case MONITOR_HTTP:
        if (!m->url)
            return kind_bad(err, errlen, "url", "required for type http");
        if (strncmp(m->url, "https://", 8) != 0 && m->has_cert_min_days)
            return kind_bad(err, errlen, "cert_min_days", "only for https:// URLs");
        if (strncmp(m->url, "https://", 8) != 0 && m->ca_file)
            return kind_bad(err, errlen, "ca_file", "only for https:// URLs");
        if (m->head && m->body_regex)
            return kind_bad(err, errlen, "body_regex", "needs method GET (a HEAD answer has no body)");
        return 0;
    case MONITOR_TCP:
        if (!m->host)
            return kind_bad(err, errlen, "host", "required for type tcp");
        return m->port ? 0 : kind_bad(err, errlen, "port", "required for type tcp");
    case MONITOR_DNS:
        return m->dns_name ? 0 : kind_bad(err, errlen, "name", "required for type dns");
    case MONITOR_SCRIPT:
        return m->command ? 0 : kind_bad(err, errlen, "command", "required for type script");
    default:
        if (!m->log_path)
            return kind_bad(err, errlen, "path", "required for type log");
        return m->log_pattern ? 0 : kind_bad(err, errlen, "pattern", "required for type log");
    }
}

int kind_monitor_section(const json_t *sec, struct spec *out, char *err, size_t errlen)
{
    struct spec_monitor *m = &out->monitor;
    const char *type = json_string_value(json_object_get(sec, "type"));
    for (int t = MONITOR_HTTP; type && t <= MONITOR_LOG; t++)
        if (strcmp(type, type_names[t]) == 0)
            m->type = t;
    if (!m->type)
        return kind_bad(err, errlen, "type", "required: one of http, tcp, dns, script, log");
    m->timeout_s = KIND_MONITOR_TIMEOUT_DEFAULT;
    const char *k;
    size_t klen;
    json_t *f;
    json_object_keylen_foreach((json_t *)sec, k, klen, f)
    {
        int r = 1;
        if (strlen(k) != klen || strcmp(k, "type") == 0) {
            r = strlen(k) == klen ? 0 : 1;
        } else if (strcmp(k, "timeout_s") == 0) {
            if (!json_is_number(f) || json_number_value(f) < 0.1 || json_number_value(f) > KIND_MONITOR_TIMEOUT_MAX)
                return kind_bad(err, errlen, k, "must be a number from 0.1 to 60");
            m->timeout_s = json_number_value(f);
            r = 0;
        } else if (strcmp(k, "check") == 0) {
            if (!kind_notify_name_ok(f, 128))
                return kind_bad(err, errlen, k, "must be a check name: 1 to 128 characters of [A-Za-z0-9_.-]");
            m->check = json_string_value(f);
            r = 0;
        } else {
            r = type_fields[m->type](k, f, m, err, errlen);
        }
        if (r < 0)
            return -1;
        if (r > 0) {
            char buf[64];
            snprintf(err, errlen, "%s: unknown field for type %s", spec_printable(k, klen, buf), type);
            return -1;
        }
    }
    return type_complete(m, err, errlen);
}
