/* check_def: a check's fields and their rules (see check_def.h). The probe
 * rules follow the monitor kind's contract; once the kind is in the registry
 * (proto/kind.c) its own validator has the last word, on the probe task spec
 * the check timer will submit. */
#include "check_def.h"

#include <regex.h>
#include <stdio.h>
#include <string.h>

#include "kind.h"
#include "spec.h"

#define PROBE_STR_MAX 253      /* a host or a DNS name */
#define PROBE_PATTERN_MAX 1024 /* a regex */
#define PROBE_PATH_MAX 4096
#define PROBE_ARGV_MAX 256
#define PROBE_DNS_EXPECT_MAX 32

static int bad(char *why, size_t cap, const char *field, const char *rule)
{
    snprintf(why, cap, "%s: %s", field, rule);
    return -1;
}

int check_def_name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return n > 0 && n <= 64 &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

/* Unknown keys of o: the first one, or NULL. */
static const char *unknown_key(const json_t *o, const char *const *known)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v) {
        int ok = 0;
        for (const char *const *p = known; *p; p++)
            ok |= strcmp(*p, k) == 0;
        if (!ok)
            return k;
    }
    return NULL;
}

static int str_ok(const json_t *v, size_t max)
{
    return json_is_string(v) && json_string_length(v) > 0 && json_string_length(v) <= max &&
           strlen(json_string_value(v)) == json_string_length(v);
}

static int int_in(const json_t *v, long long lo, long long hi)
{
    return json_is_integer(v) && json_integer_value(v) >= lo && json_integer_value(v) <= hi;
}

/* A POSIX extended regular expression, as the agent will compile it. */
static int regex_field(const json_t *v, const char *field, char *why, size_t cap)
{
    if (!str_ok(v, PROBE_PATTERN_MAX))
        return bad(why, cap, field, "must be a POSIX extended regular expression of 1 to 1024 bytes");
    regex_t re;
    int rc = regcomp(&re, json_string_value(v), REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char msg[128], buf[64];
        regerror(rc, &re, msg, sizeof msg);
        snprintf(why, cap, "%s: not a valid POSIX extended regular expression (%s): \"%s\"", field, msg,
                 spec_printable(json_string_value(v), json_string_length(v), buf));
        return -1;
    }
    regfree(&re);
    return 0;
}

/* An argv: an array of 1..256 strings. */
static int argv_field(const json_t *v, const char *field, char *why, size_t cap)
{
    if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > PROBE_ARGV_MAX)
        return bad(why, cap, field, "must be an array of 1 to 256 strings (argv)");
    size_t i;
    json_t *a;
    json_array_foreach(v, i, a) if (!str_ok(a, PROBE_PATH_MAX)) return bad(why, cap, field,
                                                                          "must be an array of 1 to 256 strings"
                                                                          " of 1 to 4096 bytes (argv)");
    return 0;
}

/* One type's section: its known fields and the check of each. */
static int http_section(const json_t *s, char *why, size_t cap)
{
    static const char *const known[] = {"url", "method", "expect_status", "body_regex", "max_latency_ms",
                                        "cert_min_days", "max_body_bytes", NULL};
    static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", NULL};
    const char *k = unknown_key(s, known);
    char field[96];
    if (k) {
        snprintf(field, sizeof field, "monitor.http.%.60s", k);
        return bad(why, cap, field, "unknown field (url, method, expect_status, body_regex, max_latency_ms,"
                                    " cert_min_days, max_body_bytes)");
    }
    const json_t *v;
    if (!kind_notify_url_ok(json_object_get(s, "url")))
        return bad(why, cap, "monitor.http.url", "required, an http:// or https:// URL of at most 2048 bytes");
    if ((v = json_object_get(s, "method"))) {
        int ok = 0;
        for (const char *const *m = methods; json_is_string(v) && *m; m++)
            ok |= strcmp(*m, json_string_value(v)) == 0;
        if (!ok)
            return bad(why, cap, "monitor.http.method", "must be GET, HEAD, POST, PUT, DELETE, OPTIONS or PATCH");
    }
    if ((v = json_object_get(s, "expect_status")) && !int_in(v, 100, 599))
        return bad(why, cap, "monitor.http.expect_status", "must be an integer from 100 to 599");
    if ((v = json_object_get(s, "body_regex")) && regex_field(v, "monitor.http.body_regex", why, cap) < 0)
        return -1;
    if ((v = json_object_get(s, "max_latency_ms")) &&
        !(json_is_number(v) && json_number_value(v) > 0 && json_number_value(v) <= 3600000))
        return bad(why, cap, "monitor.http.max_latency_ms", "must be a number above 0, at most 3600000");
    if ((v = json_object_get(s, "cert_min_days")) && !int_in(v, 0, 3650))
        return bad(why, cap, "monitor.http.cert_min_days", "must be an integer from 0 to 3650");
    if ((v = json_object_get(s, "max_body_bytes")) && !int_in(v, 1, 1LL << 30))
        return bad(why, cap, "monitor.http.max_body_bytes", "must be an integer from 1 to 1073741824");
    return 0;
}

static int tcp_section(const json_t *s, char *why, size_t cap)
{
    static const char *const known[] = {"host", "port", NULL};
    const char *k = unknown_key(s, known);
    char field[96];
    if (k) {
        snprintf(field, sizeof field, "monitor.tcp.%.60s", k);
        return bad(why, cap, field, "unknown field (host, port)");
    }
    if (!str_ok(json_object_get(s, "host"), PROBE_STR_MAX))
        return bad(why, cap, "monitor.tcp.host", "required, a host name or address of 1 to 253 bytes");
    if (!int_in(json_object_get(s, "port"), 1, 65535))
        return bad(why, cap, "monitor.tcp.port", "required, an integer from 1 to 65535");
    return 0;
}

static int dns_section(const json_t *s, char *why, size_t cap)
{
    static const char *const known[] = {"name", "expect", NULL};
    const char *k = unknown_key(s, known);
    char field[96];
    if (k) {
        snprintf(field, sizeof field, "monitor.dns.%.60s", k);
        return bad(why, cap, field, "unknown field (name, expect)");
    }
    if (!str_ok(json_object_get(s, "name"), PROBE_STR_MAX))
        return bad(why, cap, "monitor.dns.name", "required, a DNS name of 1 to 253 bytes");
    const json_t *e = json_object_get(s, "expect");
    int ok = !e || str_ok(e, PROBE_STR_MAX);
    if (json_is_array(e) && json_array_size(e) > 0 && json_array_size(e) <= PROBE_DNS_EXPECT_MAX) {
        size_t i;
        json_t *a;
        ok = 1;
        json_array_foreach(e, i, a) ok &= str_ok(a, PROBE_STR_MAX);
    }
    if (!ok)
        return bad(why, cap, "monitor.dns.expect", "must be an address, or an array of 1 to 32 addresses");
    return 0;
}

static int script_section(const json_t *s, char *why, size_t cap)
{
    static const char *const known[] = {"command", NULL};
    const char *k = unknown_key(s, known);
    char field[96];
    if (k) {
        snprintf(field, sizeof field, "monitor.script.%.60s", k);
        return bad(why, cap, field, "unknown field (command)");
    }
    if (!json_object_get(s, "command"))
        return bad(why, cap, "monitor.script.command", "required, an array of 1 to 256 strings (argv)");
    return argv_field(json_object_get(s, "command"), "monitor.script.command", why, cap);
}

static int log_section(const json_t *s, char *why, size_t cap)
{
    static const char *const known[] = {"path", "pattern", NULL};
    if (json_object_get(s, "offset"))
        return bad(why, cap, "monitor.log.offset", "set by the manager (where the last probe stopped reading)");
    const char *k = unknown_key(s, known);
    char field[96];
    if (k) {
        snprintf(field, sizeof field, "monitor.log.%.60s", k);
        return bad(why, cap, field, "unknown field (path, pattern)");
    }
    const json_t *p = json_object_get(s, "path");
    if (!str_ok(p, PROBE_PATH_MAX) || json_string_value(p)[0] != '/')
        return bad(why, cap, "monitor.log.path", "required, an absolute path of at most 4096 bytes");
    if (!json_object_get(s, "pattern"))
        return bad(why, cap, "monitor.log.pattern", "required, a POSIX extended regular expression");
    return regex_field(json_object_get(s, "pattern"), "monitor.log.pattern", why, cap);
}

static const struct probe_type {
    const char *name;
    int (*section)(const json_t *s, char *why, size_t cap);
} types[] = {
    {"http", http_section}, {"tcp", tcp_section}, {"dns", dns_section},
    {"script", script_section}, {"log", log_section},
};
#define NTYPES (sizeof types / sizeof types[0])

/* The monitor section of a check (without "check": the manager sets it). */
static int probe_valid(const json_t *m, char *why, size_t cap)
{
    static const char *const known[] = {"type", "timeout_s", "http", "tcp", "dns", "script", "log", NULL};
    if (!json_is_object(m))
        return bad(why, cap, "monitor", "required, an object {\"type\": \"http\"|\"tcp\"|\"dns\"|\"script\"|\"log\","
                                        " \"timeout_s\", \"<type>\": {...}}");
    if (json_object_get(m, "check"))
        return bad(why, cap, "monitor.check", "set by the manager (the check's name)");
    const char *k = unknown_key(m, known);
    char field[96];
    if (k) {
        snprintf(field, sizeof field, "monitor.%.60s", k);
        return bad(why, cap, field, "unknown field (type, timeout_s, http, tcp, dns, script, log)");
    }
    const json_t *t = json_object_get(m, "type"), *to = json_object_get(m, "timeout_s");
    const struct probe_type *pt = NULL;
    for (size_t i = 0; json_is_string(t) && i < NTYPES; i++)
        if (strcmp(types[i].name, json_string_value(t)) == 0)
            pt = &types[i];
    if (!pt)
        return bad(why, cap, "monitor.type", "required, one of http, tcp, dns, script, log");
    if (to && !(json_is_number(to) && json_number_value(to) >= 0.1 && json_number_value(to) <= CHECK_TIMEOUT_MAX))
        return bad(why, cap, "monitor.timeout_s", "must be a number from 0.1 to 300");
    for (size_t i = 0; i < NTYPES; i++) {
        if (&types[i] == pt || !json_object_get(m, types[i].name))
            continue;
        snprintf(field, sizeof field, "monitor.%s", types[i].name);
        snprintf(why, cap, "%s: only allowed with type %s (this probe's type is %s)", field, types[i].name,
                 pt->name);
        return -1;
    }
    const json_t *sec = json_object_get(m, pt->name);
    if (!json_is_object(sec)) {
        snprintf(why, cap, "monitor.%s: required with type %s, an object", pt->name, pt->name);
        return -1;
    }
    return pt->section(sec, why, cap);
}

/* When the monitor kind exists, its validator sees the probe task as the
 * check timer will submit it. */
static int probe_kind_valid(const json_t *m, const char *name, char *why, size_t cap)
{
    if (!kind_find("monitor"))
        return 0;
    json_t *sec = json_deep_copy(m);
    json_object_set_new(sec, "check", json_string(name));
    json_t *task = json_pack("{s:s,s:s,s:o}", "kind", "monitor", "queue", "monitor", "monitor", sec);
    char err[SPEC_ERR_MAX];
    spec_t *s = spec_from_json(task, err, sizeof err);
    json_decref(task);
    if (!s) {
        snprintf(why, cap, "%s", err);
        return -1;
    }
    spec_free(s);
    return 0;
}

/* The follow-up: one task spec, inserted as is by the incident. */
static int follow_up_valid(const json_t *f, json_t *out, char *why, size_t cap)
{
    static const char *const refused[][2] = {
        {"idempotency_key", "not allowed (each incident submits its follow-up once)"},
        {"unique", "not allowed (each incident submits its follow-up once)"},
        {"next", "not supported: a follow-up is one task (a pipeline can be started by it)"},
    };
    if (!json_is_object(f))
        return bad(why, cap, "follow_up", "must be a task spec (a JSON object) or null");
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (json_object_get(f, refused[i][0])) {
            char field[64];
            snprintf(field, sizeof field, "follow_up.%s", refused[i][0]);
            return bad(why, cap, field, refused[i][1]);
        }
    char err[SPEC_ERR_MAX];
    spec_t *s = spec_from_json((json_t *)f, err, sizeof err);
    if (!s) {
        snprintf(why, cap, "follow_up.%s", err);
        return -1;
    }
    if (strcmp(s->kind, "monitor") == 0) {
        spec_free(s);
        return bad(why, cap, "follow_up.kind", "must not be monitor (a check's probes are its own)");
    }
    json_object_set_new(out, "follow_up_queue", json_string(s->queue));
    json_object_set_new(out, "follow_up_max_attempts", json_integer(s->retry.max_attempts));
    json_object_set_new(out, "follow_up_priority", json_integer(s->priority));
    spec_free(s);
    return 0;
}

json_t *check_def_parse(const json_t *body, char *why, size_t cap)
{
    static const char *const known[] = {"name", "monitor", "interval_s", "failure_threshold",
                                        "success_threshold", "follow_up", NULL};
    if (!json_is_object(body)) {
        bad(why, cap, "check", "must be an object {\"name\", \"monitor\", \"interval_s\", \"failure_threshold\","
                               " \"success_threshold\", \"follow_up\"}");
        return NULL;
    }
    const char *k = unknown_key(body, known);
    if (k) {
        char buf[64];
        snprintf(why, cap, "%s: unknown field (name, monitor, interval_s, failure_threshold, success_threshold,"
                           " follow_up)", spec_printable(k, strlen(k), buf));
        return NULL;
    }
    const json_t *name = json_object_get(body, "name"), *m = json_object_get(body, "monitor"),
                 *iv = json_object_get(body, "interval_s"), *ft = json_object_get(body, "failure_threshold"),
                 *st = json_object_get(body, "success_threshold"), *fu = json_object_get(body, "follow_up");
    if (!json_is_string(name) || !check_def_name_ok(json_string_value(name))) {
        bad(why, cap, "name", "required, 1 to 64 characters of [A-Za-z0-9_.-]");
        return NULL;
    }
    if (probe_valid(m, why, cap) < 0 || probe_kind_valid(m, json_string_value(name), why, cap) < 0)
        return NULL;
    if (iv && !(json_is_number(iv) && json_number_value(iv) >= 1 && json_number_value(iv) <= 86400)) {
        bad(why, cap, "interval_s", "must be a number of seconds from 1 to 86400");
        return NULL;
    }
    if ((ft && !int_in(ft, 1, 1000)) || (st && !int_in(st, 1, 1000))) {
        bad(why, cap, ft && !int_in(ft, 1, 1000) ? "failure_threshold" : "success_threshold",
            "must be an integer from 1 to 1000");
        return NULL;
    }
    json_t *d = json_pack("{s:O,s:O,s:f,s:I,s:I}", "name", name, "monitor", m, "interval_s",
                          iv ? json_number_value(iv) : CHECK_INTERVAL_DEFAULT, "failure_threshold",
                          (json_int_t)(ft ? json_integer_value(ft) : CHECK_FAILURE_THRESHOLD_DEFAULT),
                          "success_threshold",
                          (json_int_t)(st ? json_integer_value(st) : CHECK_SUCCESS_THRESHOLD_DEFAULT));
    if (fu && !json_is_null(fu)) {
        if (follow_up_valid(fu, d, why, cap) < 0) {
            json_decref(d);
            return NULL;
        }
        json_object_set(d, "follow_up", (json_t *)fu);
    } else {
        json_object_set_new(d, "follow_up", json_null());
    }
    return d;
}
