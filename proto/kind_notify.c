/* kind_notify: the "notify" section of kind notify, one signed webhook
 * delivery: {"url", "body", "content_type", "webhook_id", "secret",
 * "destination", "timeout_s"} (see kind.h for each rule). */
#include "kind.h"
#include "spec.h"

#include <stdio.h>
#include <string.h>

/* [A-Za-z0-9_.-]{1,max}: names that travel in headers and log lines as is */
int kind_notify_name_ok(const json_t *v, size_t max)
{
    if (!json_is_string(v))
        return 0;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n == 0 || n > max || strlen(s) != n)
        return 0;
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

/* An absolute http or https URL without spaces or control bytes. */
int kind_notify_url_ok(const json_t *v)
{
    if (!json_is_string(v))
        return 0;
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n > KIND_NOTIFY_URL_MAX || strlen(s) != n)
        return 0;
    size_t scheme = strncmp(s, "https://", 8) == 0 ? 8 : strncmp(s, "http://", 7) == 0 ? 7 : 0;
    if (!scheme || n == scheme || s[scheme] == '/')
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
            return 0;
    return 1;
}

static int notify_field(const char *k, const json_t *f, struct spec *out, char *err, size_t errlen)
{
    if (strcmp(k, "url") == 0) {
        if (!kind_notify_url_ok(f)) {
            snprintf(err, errlen, "url: must be an http:// or https:// URL of at most %d bytes", KIND_NOTIFY_URL_MAX);
            return -1;
        }
        out->notify_url = json_string_value(f);
    } else if (strcmp(k, "body") == 0) {
        if (!json_is_string(f) || json_string_length(f) > KIND_NOTIFY_BODY_MAX) {
            snprintf(err, errlen, "body: must be a string (the exact bytes sent) of at most %d bytes",
                     KIND_NOTIFY_BODY_MAX);
            return -1;
        }
        out->notify_body = json_string_value(f);
        out->notify_body_len = json_string_length(f);
    } else if (strcmp(k, "content_type") == 0) {
        if (!json_is_string(f) || json_string_length(f) == 0 || json_string_length(f) > 128 ||
            strcspn(json_string_value(f), "\r\n") != json_string_length(f)) {
            snprintf(err, errlen, "content_type: must be a string of 1 to 128 bytes on one line");
            return -1;
        }
        out->notify_content_type = json_string_value(f);
    } else if (strcmp(k, "webhook_id") == 0) {
        if (!kind_notify_name_ok(f, 128)) {
            snprintf(err, errlen, "webhook_id: must be 1 to 128 characters of [A-Za-z0-9_.-]");
            return -1;
        }
        out->notify_webhook_id = json_string_value(f);
    } else if (strcmp(k, "secret") == 0) {
        if (json_is_string(f) && strncmp(json_string_value(f), "whsec_", 6) == 0) {
            snprintf(err, errlen, "secret: names a secret of the agents' DEVSYS_NOTIFY_SECRETS_FILE;"
                                  " a raw secret (whsec_...) is refused so that it is never stored");
            return -1;
        }
        if (!kind_notify_name_ok(f, 64)) {
            snprintf(err, errlen, "secret: must name a secret: 1 to 64 characters of [A-Za-z0-9_.-]");
            return -1;
        }
        out->notify_secret = json_string_value(f);
    } else if (strcmp(k, "destination") == 0) {
        if (!kind_notify_name_ok(f, 64)) {
            snprintf(err, errlen, "destination: must be 1 to 64 characters of [A-Za-z0-9_.-]");
            return -1;
        }
        out->notify_destination = json_string_value(f);
    } else if (strcmp(k, "timeout_s") == 0) {
        if (!json_is_number(f) || json_number_value(f) < 0.1 || json_number_value(f) > KIND_NOTIFY_TIMEOUT_MAX) {
            snprintf(err, errlen, "timeout_s: must be a number from 0.1 to %d", KIND_NOTIFY_TIMEOUT_MAX);
            return -1;
        }
        out->notify_timeout_s = json_number_value(f);
    } else {
        return 1;
    }
    return 0;
}

int kind_notify_section(const json_t *sec, struct spec *out, char *err, size_t errlen)
{
    const char *k;
    size_t klen;
    json_t *f;
    json_object_keylen_foreach((json_t *)sec, k, klen, f)
    {
        int r = strlen(k) == klen ? notify_field(k, f, out, err, errlen) : 1;
        if (r < 0)
            return -1;
        if (r > 0) {
            char buf[64];
            snprintf(err, errlen, "%s: unknown field", spec_printable(k, klen, buf));
            return -1;
        }
    }
    if (!out->notify_url) {
        snprintf(err, errlen, "url: required (where the webhook is POSTed)");
        return -1;
    }
    if (!out->notify_body) {
        snprintf(err, errlen, "body: required (the bytes POSTed and signed)");
        return -1;
    }
    return 0;
}
