/* kind_deploy: the "deploy" section of kind deploy: {"app", "env", "source",
 * "revision", "keep", "check": {"http": {...}} | {"command": [argv]},
 * "action": "deploy" | "rollback", "to"} (README "Deploy"). */
#include "kind.h"
#include "regex_bound.h"
#include "spec.h"

#include <stdio.h>
#include <string.h>

#define DEPLOY_NAME_MAX 64
#define DEPLOY_SOURCE_MAX 4096
#define DEPLOY_URL_MAX 2048
#define DEPLOY_PATTERN_MAX 1024
#define DEPLOY_CHECK_ARGV_MAX 256
#define DEPLOY_CHECK_ARG_MAX 4096
#define DEPLOY_CHECK_TIMEOUT_MAX 600.0
#define DEPLOY_CHECK_RETRIES_MAX 100
#define DEPLOY_CHECK_INTERVAL_MAX 600.0

/* An app, env or revision name: 1..64 bytes of [A-Za-z0-9_.-], not "." or
 * ".." (it becomes a directory name). */
int kind_deploy_name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > DEPLOY_NAME_MAX || strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                                    "0123456789_.-") != n)
        return 0;
    return strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

static int name_field(const json_t *v, const char **out, const char *field, char *err, size_t errlen)
{
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
        !kind_deploy_name_ok(json_string_value(v)))
        return kind_bad(err, errlen, field, "must be 1 to 64 characters of [A-Za-z0-9_.-] (not \".\" or \"..\")");
    *out = json_string_value(v);
    return 0;
}

static int number_in(const json_t *v, double lo, double hi, double *out)
{
    if (!json_is_number(v) || json_number_value(v) < lo || json_number_value(v) > hi)
        return 0;
    *out = json_number_value(v);
    return 1;
}

/* source: a path (absolute, or relative to the workdir) or
 * "input:<node>/<path>" (an artifact of a needed step, in the inputs). */
static int check_source(const json_t *v, struct spec_deploy *d, char *err, size_t errlen)
{
    const char *s = kind_str_in(v, DEPLOY_SOURCE_MAX);
    if (!s)
        return kind_bad(err, errlen, "source", "must be a path of 1 to 4096 bytes");
    if (strncmp(s, "input:", 6) == 0) {
        const char *rest = s + 6, *slash = strchr(rest, '/');
        if (!slash || slash == rest || !slash[1] || rest[0] == '/')
            return kind_bad(err, errlen, "source", "\"input:\" must be followed by <node>/<path>");
        for (const char *p = rest; *p; p += strcspn(p, "/"), p += *p == '/')
            if (strcspn(p, "/") == 2 && p[0] == '.' && p[1] == '.')
                return kind_bad(err, errlen, "source", "an input path must not contain a \"..\" segment");
    }
    d->source = s;
    return 0;
}

static int check_http(const json_t *h, struct spec_deploy *d, char *err, size_t errlen)
{
    if (!json_is_object(h))
        return kind_bad(err, errlen, "check.http", "must be an object");
    const char *k;
    size_t klen;
    json_t *f;
    d->check_status = 200;
    d->check_timeout_s = 10;
    d->check_interval_s = 1;
    json_object_keylen_foreach((json_t *)h, k, klen, f)
    {
        double x;
        int known = strlen(k) == klen;
        if (known && strcmp(k, "url") == 0) {
            const char *u = kind_str_in(f, DEPLOY_URL_MAX);
            if (!u || (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0))
                return kind_bad(err, errlen, "check.http.url", "must be an http:// or https:// URL of at most 2048 bytes");
            d->check_url = u;
        } else if (known && strcmp(k, "expect_status") == 0) {
            if (!json_is_integer(f) || json_integer_value(f) < 100 || json_integer_value(f) > 599)
                return kind_bad(err, errlen, "check.http.expect_status", "must be an integer from 100 to 599");
            d->check_status = (int)json_integer_value(f);
        } else if (known && strcmp(k, "body_pattern") == 0) {
            const char *p = kind_str_in(f, DEPLOY_PATTERN_MAX);
            char why[128];
            if (!p)
                return kind_bad(err, errlen, "check.http.body_pattern", "must be a string of 1 to 1024 bytes");
            if (regex_check_ere(p, why, sizeof why) != 0)
                return kind_bad(err, errlen, "check.http.body_pattern", "must be a POSIX extended regular expression");
            d->check_body = p;
        } else if (known && strcmp(k, "timeout_s") == 0) {
            if (!number_in(f, 0.001, DEPLOY_CHECK_TIMEOUT_MAX, &x) || x <= 0)
                return kind_bad(err, errlen, "check.http.timeout_s", "must be a number above 0, at most 600");
            d->check_timeout_s = x;
        } else if (known && strcmp(k, "retries") == 0) {
            if (!json_is_integer(f) || json_integer_value(f) < 0 ||
                json_integer_value(f) > DEPLOY_CHECK_RETRIES_MAX)
                return kind_bad(err, errlen, "check.http.retries", "must be an integer from 0 to 100");
            d->check_retries = (int)json_integer_value(f);
        } else if (known && strcmp(k, "interval_s") == 0) {
            if (!number_in(f, 0, DEPLOY_CHECK_INTERVAL_MAX, &x))
                return kind_bad(err, errlen, "check.http.interval_s", "must be a number from 0 to 600");
            d->check_interval_s = x;
        } else {
            char buf[64];
            snprintf(err, errlen, "check.http.%s: unknown field", spec_printable(k, klen, buf));
            return -1;
        }
    }
    if (!d->check_url)
        return kind_bad(err, errlen, "check.http.url", "required");
    return 0;
}

static int check_command(const json_t *c, struct spec_deploy *d, char *err, size_t errlen)
{
    if (!json_is_array(c) || json_array_size(c) == 0 || json_array_size(c) > DEPLOY_CHECK_ARGV_MAX)
        return kind_bad(err, errlen, "check.command", "must be an array of 1 to 256 strings");
    size_t i;
    json_t *a;
    json_array_foreach(c, i, a)
    {
        if (!json_is_string(a) || json_string_length(a) > DEPLOY_CHECK_ARG_MAX ||
            strlen(json_string_value(a)) != json_string_length(a) || (i == 0 && !json_string_length(a))) {
            snprintf(err, errlen, "check.command[%zu]: must be a%s string of at most 4096 bytes without NUL", i,
                     i == 0 ? " non-empty" : "");
            return -1;
        }
    }
    d->check_command = c;
    return 0;
}

static int check_check(const json_t *c, struct spec_deploy *d, char *err, size_t errlen)
{
    if (!json_is_object(c) || json_object_size(c) != 1)
        return kind_bad(err, errlen, "check", "must be {\"http\": {...}} or {\"command\": [argv]}");
    if (json_object_get(c, "http"))
        return check_http(json_object_get(c, "http"), d, err, errlen);
    if (json_object_get(c, "command"))
        return check_command(json_object_get(c, "command"), d, err, errlen);
    return kind_bad(err, errlen, "check", "must be {\"http\": {...}} or {\"command\": [argv]}");
}

int kind_deploy_section(const json_t *sec, struct spec *out, char *err, size_t errlen)
{
    struct spec_deploy *d = &out->deploy;
    const char *k;
    size_t klen;
    json_t *f;
    d->keep = 5;
    json_object_keylen_foreach((json_t *)sec, k, klen, f)
    {
        int known = strlen(k) == klen;
        if (known && strcmp(k, "app") == 0) {
            if (name_field(f, &d->app, "app", err, errlen) < 0)
                return -1;
        } else if (known && strcmp(k, "env") == 0) {
            if (name_field(f, &d->env, "env", err, errlen) < 0)
                return -1;
        } else if (known && strcmp(k, "revision") == 0) {
            if (name_field(f, &d->revision, "revision", err, errlen) < 0)
                return -1;
        } else if (known && strcmp(k, "to") == 0) {
            if (name_field(f, &d->to, "to", err, errlen) < 0)
                return -1;
        } else if (known && strcmp(k, "source") == 0) {
            if (check_source(f, d, err, errlen) < 0)
                return -1;
        } else if (known && strcmp(k, "keep") == 0) {
            if (!json_is_integer(f) || json_integer_value(f) < 2 || json_integer_value(f) > 100)
                return kind_bad(err, errlen, "keep", "must be an integer from 2 to 100");
            d->keep = (int)json_integer_value(f);
        } else if (known && strcmp(k, "check") == 0) {
            if (check_check(f, d, err, errlen) < 0)
                return -1;
        } else if (known && strcmp(k, "action") == 0) {
            const char *a = json_is_string(f) ? json_string_value(f) : "";
            if (strcmp(a, "deploy") != 0 && strcmp(a, "rollback") != 0)
                return kind_bad(err, errlen, "action", "must be \"deploy\" or \"rollback\"");
            d->rollback = strcmp(a, "rollback") == 0;
        } else {
            char buf[64];
            snprintf(err, errlen, "%s: unknown field", spec_printable(k, klen, buf));
            return -1;
        }
    }
    if (!d->app)
        return kind_bad(err, errlen, "app", "required");
    if (!d->env)
        return kind_bad(err, errlen, "env", "required");
    if (d->rollback && (d->source || d->revision))
        return kind_bad(err, errlen, d->source ? "source" : "revision",
                   "not allowed with action \"rollback\" (name the revision in \"to\")");
    if (!d->rollback && d->to)
        return kind_bad(err, errlen, "to", "only allowed with action \"rollback\"");
    if (!d->rollback && !d->source)
        return kind_bad(err, errlen, "source", "required (a directory or a .tar/.tar.gz/.tgz to deploy)");
    return 0;
}
