/* kind: the registry of task kinds — what exists, its spec section and the
 * section's validator, and how the runtime treats it. One table in kind.c;
 * a kind's section validator lives in its own file (kind_sleep.c). */
#ifndef DEVSYS_KIND_H
#define DEVSYS_KIND_H

#include <jansson.h>
#include <stddef.h>

struct spec;

#define KIND_NEEDS_COMMAND 0x1u /* the spec must carry a non-empty "command" */
#define KIND_INSTANT 0x2u       /* nothing to run: the claim records the success */
#define KIND_NEEDS_SECTION 0x4u /* the spec must carry the kind's section */

typedef struct kind_def {
    const char *name;
    /* The spec field holding this kind's own settings, or NULL. Several kinds
     * may share one section (noop and sleep both read "sleep"); a spec may
     * carry a section only when its kind owns it. */
    const char *section;
    /* Checks the section (always a JSON object here) and fills its part of
     * out. On error writes "<field inside the section>: <rule>" into err
     * (e.g. "ms: must be an integer ...") and returns -1; the caller puts
     * the path in front ("next[1].sleep.ms: ..."). NULL = any object. */
    int (*validate_section)(const json_t *sec, struct spec *out, char *err, size_t errlen);
    unsigned flags; /* KIND_* */
} kind_def_t;

/* The kind called name, or NULL when there is none (name may be NULL). */
const kind_def_t *kind_find(const char *name);

/* The i-th kind in registry order, or NULL past the end. */
const kind_def_t *kind_at(size_t i);

/* Writes the kind names, ", "-separated in registry order, into buf
 * ("exec, coding, noop, sleep"), truncated to len. Returns buf. */
char *kind_names(char *buf, size_t len);

/* Is name the section of some kind? */
int kind_section_known(const char *name);

/* Writes the kinds that own section name into buf for "only allowed for
 * kinds ..." ("sleep and noop": the kind named like the section first).
 * Returns buf. */
char *kind_section_owners(const char *section, char *buf, size_t len);

/* For the section validators: writes "<field>: <rule>" into err and
 * returns -1; a string field of 1..max bytes without NUL, its value or NULL. */
int kind_bad(char *err, size_t errlen, const char *field, const char *rule);
const char *kind_str_in(const json_t *v, size_t max);

/* Section validators, one file each (kind_<name>.c). */
int kind_sleep_section(const json_t *sec, struct spec *out, char *err, size_t errlen);
/* kind_testing.c; max_report_bytes is bounded by these (default 16 MiB, JUNIT_FILE_MAX_DEFAULT) */
#define KIND_TESTING_REPORT_MIN 1024
#define KIND_TESTING_REPORT_MAX (64 * 1024 * 1024)
int kind_testing_section(const json_t *sec, struct spec *out, char *err, size_t errlen);
/* kind_deploy.c */
int kind_deploy_section(const json_t *sec, struct spec *out, char *err, size_t errlen);
/* Is s an app, env or revision name: 1..64 of [A-Za-z0-9_.-], not "." or ".."? */
int kind_deploy_name_ok(const char *s);
/* kind_notify.c: one webhook delivery. url: http(s), at most KIND_NOTIFY_URL_MAX
 * bytes; body: the exact bytes POSTed (a string, at most KIND_NOTIFY_BODY_MAX);
 * content_type (application/json); webhook_id ([A-Za-z0-9_.-]{1,128}, default
 * "msg_<task id>": the same on every attempt, so receivers dedupe); secret: the
 * NAME of a secret set in the agents' DEVSYS_NOTIFY_SECRETS_FILE (a raw whsec_
 * value is refused: it would be stored); destination (a name, for messages);
 * timeout_s per attempt (0.1..KIND_NOTIFY_TIMEOUT_MAX, default 10). */
#define KIND_NOTIFY_URL_MAX 2048
#define KIND_NOTIFY_BODY_MAX (256 * 1024)
#define KIND_NOTIFY_TIMEOUT_MAX 300
int kind_notify_section(const json_t *sec, struct spec *out, char *err, size_t errlen);
/* The rules of notify.url and of the names (secret, destination), for the
 * API that stores destinations: an absolute http(s) URL of at most
 * KIND_NOTIFY_URL_MAX bytes without spaces; [A-Za-z0-9_.-]{1,max}. */
int kind_notify_url_ok(const json_t *v);
int kind_notify_name_ok(const json_t *v, size_t max);
/* kind_monitor.c: one probe (spec_t.monitor, spec.h). All fields at one level:
 *   "type": "http" | "tcp" | "dns" | "script" | "log" (required);
 *   "timeout_s": 0.1..60 (default 10): the probe's own bound;
 *   "check": the check it is for, 1..128 of [A-Za-z0-9_.-] (optional);
 *   http: "url" (http/https, required), "method" GET (default) | HEAD,
 *     "expect_status" (100..599 or an array of 1..32; default any 2xx or 3xx,
 *     redirects are not followed), "body_regex" (POSIX ERE, compiled here:
 *     a bad one is refused at submit; GET only), "max_latency_ms" (1..60000),
 *     "cert_min_days" (0..3650, https only), "max_body_bytes" (1..16 MiB,
 *     default 1 MiB: a longer body is not read, the probe fails), "ca_file"
 *     (absolute path, https only: the CA bundle to verify with);
 *   tcp: "host" (name or address), "port" (1..65535), both required;
 *   dns: "name" (required), "expect": 1..32 IPv4/IPv6 addresses that must
 *     all be among the answers;
 *   script: "command": argv, 1..256 strings (required); exit 0 = ok;
 *   log: "path" (absolute, required), "pattern" (POSIX ERE, required),
 *     "offset": the byte offset to read from (default: the end of the file
 *     at this probe, which then only reports that offset).
 * A field of another type is refused ("port: unknown field for type http"). */
enum { MONITOR_HTTP = 1, MONITOR_TCP, MONITOR_DNS, MONITOR_SCRIPT, MONITOR_LOG };
#define KIND_MONITOR_TIMEOUT_DEFAULT 10.0
#define KIND_MONITOR_TIMEOUT_MAX 60
#define KIND_MONITOR_BODY_DEFAULT (1024L * 1024)
#define KIND_MONITOR_BODY_MAX (16L * 1024 * 1024)
#define KIND_MONITOR_REGEX_MAX 1024
#define KIND_MONITOR_PATH_MAX 4096
#define KIND_MONITOR_STATUSES_MAX 32
#define KIND_MONITOR_ADDRESSES_MAX 32
int kind_monitor_section(const json_t *sec, struct spec *out, char *err, size_t errlen);
/* "http", "tcp", ... for a MONITOR_* type ("?" for anything else). */
const char *kind_monitor_type_name(int type);

#endif
