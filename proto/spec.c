/* spec: parse and validate task specs (see spec.h). One pass over the keys of
 * the object checks the known fields and rejects the unknown ones; messages
 * name the field path ("next[2].retry_policy.factor") and the rule. */
#include "spec.h"

#include "uuid.h"
#include "kind.h"
#include "mpack.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPEC_NAME_MAX 256
#define SPEC_ARGV_MAX 4096
#define SPEC_ARG_MAX (128 * 1024)
#define SPEC_WORKDIR_MAX 4096
#define SPEC_ENV_MAX 1024
#define SPEC_TAGS_MAX 64
#define SPEC_TAG_MAX 128
#define SPEC_LIST_MAX 1000
#define SPEC_ARTIFACT_MAX 4096
#define SPEC_NEXT_MAX 100
#define SPEC_TIMEOUT_MAX 604800.0

/* ---- messages ----------------------------------------------------------- */

/* Writes "<prefix><field>: <why>" into err and returns -1. prefix is "" at
 * the top level and e.g. "next[2]." inside a pipeline step. */
__attribute__((format(printf, 5, 6))) static int fail(char *err, size_t errlen, const char *prefix,
                                                      const char *field, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return -1;
    int n = snprintf(err, errlen, "%s%s: ", prefix, field);
    if (n >= 0 && (size_t)n < errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Copies untrusted text (a key, a kind) into out for quoting in a message:
 * at most 48 bytes, control bytes and quotes replaced, so the message stays
 * one short line whatever the input was. */
static const char *printable(const char *s, size_t len, char out[64])
{
    size_t n = 0;
    for (size_t i = 0; i < len && n < 48; i++) {
        unsigned char c = (unsigned char)s[i];
        out[n++] = (c < 0x20 || c == 0x7f || c == '"' || c == '\\') ? '?' : (char)c;
    }
    if (len > 48) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
    return out;
}

const char *spec_printable(const char *s, size_t len, char out[64])
{
    return printable(s, len, out);
}

/* ---- small type checks ---------------------------------------------------- */

/* A string of lo..hi bytes without an embedded NUL (a NUL would silently cut
 * an argv entry or a path when handed to C APIs). */
static int str_ok(const json_t *v, size_t lo, size_t hi)
{
    if (!json_is_string(v))
        return 0;
    size_t n = json_string_length(v);
    return n >= lo && n <= hi && strlen(json_string_value(v)) == n;
}

/* JSON reals (3.0) are not integers: json_is_integer only holds for values
 * written without a fraction or exponent. */
static int int_ok(const json_t *v, long long lo, long long hi)
{
    return json_is_integer(v) && json_integer_value(v) >= lo && json_integer_value(v) <= hi;
}

static int num_ok(const json_t *v, double lo, double hi)
{
    if (!json_is_number(v))
        return 0;
    double d = json_number_value(v);
    return d >= lo && d <= hi;
}

static int env_name_ok(const char *s, size_t len)
{
    if (len == 0 || !((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
        return 0;
    for (size_t i = 1; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return 0;
    }
    return 1;
}

static int name_is(const char *name, size_t len, const char *word)
{
    return strlen(word) == len && memcmp(name, word, len) == 0;
}

static int name_starts(const char *name, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(name, prefix, n) == 0;
}

const char *spec_env_refused(const char *name, size_t len)
{
    static const char *const loader[] = {"GCONV_PATH", "GETCONF_DIR", "GLIBC_TUNABLES", "HOSTALIASES",
                                         "LOCALDOMAIN", "LOCPATH", "NIS_PATH", "NLSPATH",
                                         "RESOLV_HOST_CONF", "RES_OPTIONS", "TZDIR"};
    static const char *const shell[] = {"BASH_ENV", "ENV", "SHELLOPTS", "BASHOPTS"};
    static const char *const agent[] = {"DEVSYS_ATTEMPT", "DEVSYS_CHECKPOINT", "DEVSYS_CHECKPOINT_FD",
                                        "DEVSYS_WORKSPACE", "DEVSYS_RESULT", "DEVSYS_INPUTS"};
    if (name_starts(name, len, "LD_") || name_starts(name, len, "MALLOC_"))
        return "loader variables may not be set";
    for (size_t i = 0; i < sizeof loader / sizeof *loader; i++)
        if (name_is(name, len, loader[i]))
            return "loader variables may not be set";
    for (size_t i = 0; i < sizeof shell / sizeof *shell; i++)
        if (name_is(name, len, shell[i]))
            return "shell startup variables may not be set";
    if (name_starts(name, len, "DEVSYS_TASK_"))
        return "set by the agent";
    for (size_t i = 0; i < sizeof agent / sizeof *agent; i++)
        if (name_is(name, len, agent[i]))
            return "set by the agent";
    return NULL;
}

int spec_queue_name_ok(const char *s)
{
    if (!s)
        return 0;
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (n >= 64 || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                         (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return n >= 1;
}

/* ---- nesting -------------------------------------------------------------- */

/* Depth of containers in JSON text, counted before jansson sees it so that a
 * deeply nested text gets a clear message (jansson's own limit is 2048). The
 * scan only has to be right for valid JSON: anything else fails to parse. */
static int text_depth_ok(const char *text, size_t len)
{
    int depth = 0, in_str = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '{' || c == '[') {
            if (++depth > SPEC_MAX_DEPTH)
                return 0;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return 1;
}

/* depth counts the containers enclosing j, so the top object is at depth 1. */
static int json_depth_ok(const json_t *j, int depth)
{
    if (!json_is_object(j) && !json_is_array(j))
        return 1;
    if (depth > SPEC_MAX_DEPTH)
        return 0;
    if (json_is_object(j)) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)j, k, v)
        {
            if (!json_depth_ok(v, depth + 1))
                return 0;
        }
    } else {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v)
        {
            if (!json_depth_ok(v, depth + 1))
                return 0;
        }
    }
    return 1;
}

json_t *spec_json_load(const char *text, size_t len, char *err, size_t errlen)
{
    if (len > SPEC_MAX_BYTES) {
        fail(err, errlen, "", "spec", "%zu bytes exceeds the limit of %d", len, SPEC_MAX_BYTES);
        return NULL;
    }
    if (!text_depth_ok(text, len)) {
        fail(err, errlen, "", "spec", "nesting deeper than %d levels", SPEC_MAX_DEPTH);
        return NULL;
    }
    json_error_t jerr;
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!j) {
        fail(err, errlen, "", "spec", "invalid JSON at line %d column %d: %s", jerr.line,
             jerr.column, jerr.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        fail(err, errlen, "", "spec", "must be a JSON object");
        return NULL;
    }
    return j;
}

/* ---- sections --------------------------------------------------------------- */

static int check_command(const json_t *v, const char *pre, spec_t *s, char *err, size_t errlen)
{
    if (!json_is_array(v) || json_array_size(v) == 0)
        return fail(err, errlen, pre, "command", "must be a non-empty array of strings");
    size_t n = json_array_size(v);
    if (n > SPEC_ARGV_MAX)
        return fail(err, errlen, pre, "command", "%zu entries exceeds the limit of %d", n,
                    SPEC_ARGV_MAX);
    for (size_t i = 0; i < n; i++) {
        const json_t *a = json_array_get(v, i);
        char field[32];
        snprintf(field, sizeof field, "command[%zu]", i);
        if (!json_is_string(a))
            return fail(err, errlen, pre, field, "must be a string");
        if (json_string_length(a) > SPEC_ARG_MAX)
            return fail(err, errlen, pre, field, "%zu bytes exceeds the limit of %d",
                        json_string_length(a), SPEC_ARG_MAX);
        if (!str_ok(a, i == 0 ? 1 : 0, SPEC_ARG_MAX))
            return fail(err, errlen, pre, field,
                        i == 0 ? "must be a non-empty string without NUL bytes"
                               : "must not contain NUL bytes");
    }
    if (s) {
        s->argc = n;
        s->argv = calloc(n + 1, sizeof *s->argv);
        if (!s->argv)
            abort(); /* out of memory: same policy as xalloc, without the dependency */
        for (size_t i = 0; i < n; i++)
            s->argv[i] = json_string_value(json_array_get(v, i));
    }
    return 0;
}

static int check_env(const json_t *v, const char *pre, char *err, size_t errlen)
{
    if (!json_is_object(v))
        return fail(err, errlen, pre, "env", "must be an object of strings");
    if (json_object_size(v) > SPEC_ENV_MAX)
        return fail(err, errlen, pre, "env", "%zu entries exceeds the limit of %d",
                    json_object_size(v), SPEC_ENV_MAX);
    const char *k;
    size_t klen;
    json_t *val;
    char buf[64];
    json_object_keylen_foreach((json_t *)v, k, klen, val)
    {
        if (!env_name_ok(k, klen))
            return fail(err, errlen, pre, "env", "name \"%s\" must match [A-Za-z_][A-Za-z0-9_]*",
                        printable(k, klen, buf));
        if (json_is_object(val)) { /* {"secret": "<name>"}: a secret the agent fetches (common/secretdb.h) */
            const json_t *name = json_object_get(val, "secret");
            if (json_object_size(val) != 1 || !json_is_string(name) || !spec_queue_name_ok(json_string_value(name)))
                return fail(err, errlen, pre, "env", "value of %s must be a string or {\"secret\": \"<name>\"} with"
                            " a name of 1 to 64 characters of [A-Za-z0-9_.-]", printable(k, klen, buf));
        } else if (!str_ok(val, 0, SPEC_MAX_BYTES)) {
            return fail(err, errlen, pre, "env", "value of %s must be a string without NUL bytes, or {\"secret\": \"<name>\"}",
                        printable(k, klen, buf));
        }
        const char *why = spec_env_refused(k, klen);
        if (why) {
            char field[80];
            snprintf(field, sizeof field, "env.%s", printable(k, klen, buf));
            return fail(err, errlen, pre, field, "%s", why);
        }
    }
    return 0;
}

/* Arrays of strings (tags, expected_artifacts, related_tasks). */
static int check_str_list(const json_t *v, const char *pre, const char *field, size_t max_items,
                          size_t lo, size_t hi, int uuids, char *err, size_t errlen)
{
    if (!json_is_array(v))
        return fail(err, errlen, pre, field, "must be an array of strings");
    size_t n = json_array_size(v);
    if (n > max_items)
        return fail(err, errlen, pre, field, "%zu entries exceeds the limit of %zu", n, max_items);
    for (size_t i = 0; i < n; i++) {
        const json_t *a = json_array_get(v, i);
        char item[64];
        snprintf(item, sizeof item, "%s[%zu]", field, i);
        if (uuids) {
            if (!json_is_string(a) || !uuid_valid(json_string_value(a), json_string_length(a)))
                return fail(err, errlen, pre, item, "must be a UUID string");
        } else if (!str_ok(a, lo, hi)) {
            return fail(err, errlen, pre, item, "must be a string of %zu to %zu bytes", lo, hi);
        }
    }
    return 0;
}

/* A step name of a pipeline: 1..64 of [A-Za-z0-9_-]; a node of a fanned-out
 * step adds "[i]" (inputs keys name nodes). */
static int step_name_ok(const char *s, size_t n, int node)
{
    size_t i = 0;
    for (; i < n && i < 64; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            break;
    }
    if (i == 0)
        return 0;
    if (i == n)
        return 1;
    if (!node || s[i] != '[' || s[n - 1] != ']' || n - i < 3 || n - i > 8)
        return 0;
    for (size_t j = i + 1; j < n - 1; j++)
        if (s[j] < '0' || s[j] > '9')
            return 0;
    return 1;
}

/* "pipeline": {"id": uuid, "name": str, "step": step name, "index": 0..}, set
 * by the manager on the tasks of a pipeline's steps. */
static int check_pipeline(const json_t *v, const char *pre, spec_t *s, char *err, size_t errlen)
{
    if (!json_is_object(v))
        return fail(err, errlen, pre, "pipeline", "must be an object");
    const char *k;
    size_t klen;
    json_t *f;
    char buf[64], field[96];
    json_object_keylen_foreach((json_t *)v, k, klen, f)
    {
        snprintf(field, sizeof field, "pipeline.%s", printable(k, klen, buf));
        if (strlen(k) != klen)
            return fail(err, errlen, pre, field, "unknown field");
        if (strcmp(k, "id") == 0) {
            if (!json_is_string(f) || !uuid_valid(json_string_value(f), json_string_length(f)))
                return fail(err, errlen, pre, field, "must be a UUID string");
        } else if (strcmp(k, "name") == 0) {
            if (!str_ok(f, 1, SPEC_NAME_MAX))
                return fail(err, errlen, pre, field, "must be a string of 1 to %d bytes", SPEC_NAME_MAX);
        } else if (strcmp(k, "step") == 0) {
            if (!json_is_string(f) || !step_name_ok(json_string_value(f), json_string_length(f), 0))
                return fail(err, errlen, pre, field, "must be 1 to 64 characters of [A-Za-z0-9_-]");
        } else if (strcmp(k, "index") == 0) {
            if (!int_ok(f, 0, SPEC_FANOUT_MAX - 1))
                return fail(err, errlen, pre, field, "must be an integer from 0 to %d", SPEC_FANOUT_MAX - 1);
        } else {
            return fail(err, errlen, pre, field, "unknown field");
        }
    }
    if (!json_object_get(v, "id") || !json_object_get(v, "step"))
        return fail(err, errlen, pre, "pipeline", "must have \"id\" and \"step\"");
    s->pipeline = v;
    return 0;
}

static int sha256_hex_ok(const json_t *v)
{
    if (!json_is_string(v) || json_string_length(v) != 64)
        return 0;
    const char *h = json_string_value(v);
    for (int i = 0; i < 64; i++)
        if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
            return 0;
    return 1;
}

/* "inputs": {"<node>": {"result": any JSON, "artifacts": [{"path", "sha256",
 * "size"}]}}: what the steps this one needs published, filled in by the
 * manager when the step falls due. */
static int check_inputs(const json_t *v, const char *pre, spec_t *s, char *err, size_t errlen)
{
    if (!json_is_object(v))
        return fail(err, errlen, pre, "inputs", "must be an object");
    if (json_object_size(v) > SPEC_INPUTS_MAX)
        return fail(err, errlen, pre, "inputs", "%zu entries exceeds the limit of %d", json_object_size(v),
                    SPEC_INPUTS_MAX);
    const char *k;
    size_t klen;
    json_t *in;
    char buf[64], field[160];
    json_object_keylen_foreach((json_t *)v, k, klen, in)
    {
        snprintf(field, sizeof field, "inputs.%s", printable(k, klen, buf));
        if (!step_name_ok(k, klen, 1))
            return fail(err, errlen, pre, field, "a step name is 1 to 64 characters of [A-Za-z0-9_-], then [index]");
        if (!json_is_object(in))
            return fail(err, errlen, pre, field, "must be an object");
        const char *ik;
        json_t *iv;
        json_object_foreach(in, ik, iv)
        {
            if (strcmp(ik, "result") == 0)
                continue;
            if (strcmp(ik, "artifacts") != 0)
                return fail(err, errlen, pre, field, "unknown field \"%s\"", printable(ik, strlen(ik), buf));
            if (!json_is_array(iv) || json_array_size(iv) > SPEC_INPUT_ARTIFACTS_MAX)
                return fail(err, errlen, pre, field, "artifacts: must be an array of at most %d",
                            SPEC_INPUT_ARTIFACTS_MAX);
            size_t i;
            json_t *a;
            json_array_foreach(iv, i, a)
            {
                const json_t *path = json_object_get(a, "path");
                if (!json_is_object(a) || json_object_size(a) != 3 || !str_ok(path, 1, SPEC_ARTIFACT_MAX) ||
                    json_string_value(path)[0] == '/' || !sha256_hex_ok(json_object_get(a, "sha256")) ||
                    !int_ok(json_object_get(a, "size"), 0, INT64_MAX))
                    return fail(err, errlen, pre, field,
                                "artifacts[%zu]: must be {\"path\": relative path, \"sha256\": 64 hex digits,"
                                " \"size\": bytes}",
                                i);
            }
        }
    }
    s->inputs = v;
    return 0;
}

static int check_retry(const json_t *v, const char *pre, struct spec_retry *r, char *err,
                       size_t errlen)
{
    if (!json_is_object(v))
        return fail(err, errlen, pre, "retry_policy", "must be an object");
    const char *k;
    size_t klen;
    json_t *f;
    char buf[64], field[96];
    json_object_keylen_foreach((json_t *)v, k, klen, f)
    {
        snprintf(field, sizeof field, "retry_policy.%s", printable(k, klen, buf));
        int known = strlen(k) == klen;
        if (known && strcmp(k, "max_attempts") == 0) {
            if (!int_ok(f, 1, 1000))
                return fail(err, errlen, pre, field, "must be an integer from 1 to 1000");
            r->max_attempts = (int)json_integer_value(f);
        } else if (known && strcmp(k, "initial_s") == 0) {
            if (!num_ok(f, 0, 86400))
                return fail(err, errlen, pre, field, "must be a number from 0 to 86400");
            r->initial_s = json_number_value(f);
        } else if (known && strcmp(k, "factor") == 0) {
            if (!num_ok(f, 1, 100))
                return fail(err, errlen, pre, field, "must be a number from 1 to 100");
            r->factor = json_number_value(f);
        } else if (known && strcmp(k, "max_s") == 0) {
            if (!num_ok(f, 0, 604800))
                return fail(err, errlen, pre, field, "must be a number from 0 to 604800");
            r->max_s = json_number_value(f);
        } else if (known && strcmp(k, "jitter") == 0) {
            if (!json_is_boolean(f))
                return fail(err, errlen, pre, field, "must be true or false");
            r->jitter = json_is_true(f);
        } else if (known && strcmp(k, "permanent_exit_codes") == 0) {
            if (!json_is_array(f) || json_array_size(f) > 256)
                return fail(err, errlen, pre, field, "must be an array of at most 256 exit codes");
            size_t i;
            json_t *c;
            json_array_foreach(f, i, c)
            {
                if (!int_ok(c, 0, 255))
                    return fail(err, errlen, pre, field, "must hold integers from 0 to 255");
                int code = (int)json_integer_value(c);
                r->permanent_exit[code / 8] |= (unsigned char)(1u << (code % 8));
            }
        } else {
            return fail(err, errlen, pre, field, "unknown field");
        }
    }
    return 0;
}

/* unique: {"key": "...", "for_s": N} (one task per key created within N
 * seconds) or {"key": "...", "while": "unfinished"} (one queued, running or
 * retrying task per key). PostgreSQL enforces it at submit (task_unique). */
static int check_unique(const json_t *v, const char *pre, spec_t *s, char *err, size_t errlen)
{
    if (!json_is_object(v))
        return fail(err, errlen, pre, "unique", "must be an object {\"key\": ..., \"for_s\": N} or"
                                                 " {\"key\": ..., \"while\": \"unfinished\"}");
    const char *k;
    size_t klen;
    json_t *f;
    char buf[64], field[96];
    int has_for = 0, has_while = 0;
    json_object_keylen_foreach((json_t *)v, k, klen, f)
    {
        snprintf(field, sizeof field, "unique.%s", printable(k, klen, buf));
        int known = strlen(k) == klen;
        if (known && strcmp(k, "key") == 0) {
            if (!str_ok(f, 1, SPEC_UNIQUE_KEY_MAX))
                return fail(err, errlen, pre, field, "must be a string of 1 to %d bytes", SPEC_UNIQUE_KEY_MAX);
            s->unique_key = json_string_value(f);
        } else if (known && strcmp(k, "for_s") == 0) {
            if (!num_ok(f, 0, SPEC_UNIQUE_FOR_MAX) || json_number_value(f) <= 0)
                return fail(err, errlen, pre, field, "must be a number greater than 0 and at most %d",
                            SPEC_UNIQUE_FOR_MAX);
            s->unique_for_s = json_number_value(f);
            has_for = 1;
        } else if (known && strcmp(k, "while") == 0) {
            if (!json_is_string(f) || strcmp(json_string_value(f), "unfinished") != 0)
                return fail(err, errlen, pre, field, "must be \"unfinished\"");
            has_while = 1;
        } else {
            return fail(err, errlen, pre, field, "unknown field");
        }
    }
    if (!s->unique_key)
        return fail(err, errlen, pre, "unique.key", "required");
    if (has_for == has_while)
        return fail(err, errlen, pre, "unique", "needs exactly one of for_s (a period in seconds) and"
                                                 " while (\"unfinished\")");
    return 0;
}

/* A kind's own section (kind.h): an object, allowed only on the kinds that
 * own it, its contents checked by the kind's validator. */
static int check_section(const json_t *v, const char *name, const char *pre, spec_t *s, char *err,
                         size_t errlen)
{
    if (!json_is_object(v))
        return fail(err, errlen, pre, name, "must be an object");
    const kind_def_t *kd = s->kind_def;
    if (!kd->section || strcmp(kd->section, name) != 0) {
        char owners[128];
        return fail(err, errlen, pre, name, "only allowed for kinds %s",
                    kind_section_owners(name, owners, sizeof owners));
    }
    char why[SPEC_ERR_MAX];
    if (kd->validate_section && kd->validate_section(v, s, why, sizeof why) < 0) {
        if (err && errlen)
            snprintf(err, errlen, "%s%s.%s", pre, name, why);
        return -1;
    }
    return 0;
}

/* ---- the spec ----------------------------------------------------------------- */

static int check_spec(json_t *o, const char *self, const char *pre, spec_t *s, char *err,
                      size_t errlen);

static int check_next(const json_t *v, const char *pre, char *err, size_t errlen)
{
    if (!json_is_array(v))
        return fail(err, errlen, pre, "next", "must be an array of specs");
    size_t n = json_array_size(v);
    if (n > SPEC_NEXT_MAX)
        return fail(err, errlen, pre, "next", "%zu entries exceeds the limit of %d", n,
                    SPEC_NEXT_MAX);
    for (size_t i = 0; i < n; i++) {
        /* Nesting is bounded by SPEC_MAX_DEPTH (checked first), so the
         * path stays well under the buffer. */
        char self[256], sub[260];
        snprintf(self, sizeof self, "%snext[%zu]", pre, i);
        snprintf(sub, sizeof sub, "%s.", self);
        spec_t step;
        int rc = check_spec(json_array_get(v, i), self, sub, &step, err, errlen);
        free(step.argv);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* Validates object o into s (which it zeroes and fills with defaults).
 * self names the whole object in messages ("spec", "next[2]"), pre is the
 * prefix of its fields ("", "next[2]."). s->argv is allocated even on error. */
static int check_spec(json_t *o, const char *self, const char *pre, spec_t *s, char *err,
                      size_t errlen)
{
    memset(s, 0, sizeof *s);
    s->retry = (struct spec_retry){.max_attempts = SPEC_DEFAULT_MAX_ATTEMPTS, .initial_s = SPEC_DEFAULT_INITIAL_S,
                                   .factor = SPEC_DEFAULT_FACTOR, .max_s = SPEC_DEFAULT_MAX_S,
                                   .jitter = SPEC_DEFAULT_JITTER};
    if (!json_is_object(o))
        return fail(err, errlen, "", self, "must be a JSON object");

    char buf[64];
    json_t *kind = json_object_get(o, "kind");
    if (!kind)
        return fail(err, errlen, pre, "kind", "required");
    if (!str_ok(kind, 1, 64) || !(s->kind_def = kind_find(json_string_value(kind)))) {
        if (!json_is_string(kind))
            return fail(err, errlen, pre, "kind", "must be a string");
        char names[SPEC_ERR_MAX];
        return fail(err, errlen, pre, "kind", "unknown kind \"%s\" (expected one of %s)",
                    printable(json_string_value(kind), json_string_length(kind), buf),
                    kind_names(names, sizeof names));
    }
    s->kind = json_string_value(kind);
    s->queue = s->kind;

    const char *k;
    size_t klen;
    json_t *v;
    json_object_keylen_foreach(o, k, klen, v)
    {
        if (strlen(k) != klen)
            return fail(err, errlen, pre, printable(k, klen, buf), "unknown field");
        if (strcmp(k, "kind") == 0) {
            continue;
        } else if (strcmp(k, "queue") == 0) {
            if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
                !spec_queue_name_ok(json_string_value(v)))
                return fail(err, errlen, pre, k, "must be 1 to 64 characters of [A-Za-z0-9_.-]");
            s->queue = json_string_value(v);
        } else if (strcmp(k, "name") == 0) {
            if (!str_ok(v, 1, SPEC_NAME_MAX))
                return fail(err, errlen, pre, k, "must be a string of 1 to %d bytes", SPEC_NAME_MAX);
            s->name = json_string_value(v);
        } else if (strcmp(k, "command") == 0) {
            if (check_command(v, pre, s, err, errlen) < 0)
                return -1;
        } else if (strcmp(k, "workdir") == 0) {
            if (!str_ok(v, 1, SPEC_WORKDIR_MAX))
                return fail(err, errlen, pre, k, "must be a string of 1 to %d bytes",
                            SPEC_WORKDIR_MAX);
            s->workdir = json_string_value(v);
        } else if (strcmp(k, "env") == 0) {
            if (check_env(v, pre, err, errlen) < 0)
                return -1;
            s->env = v;
        } else if (strcmp(k, "timeout_s") == 0) {
            if (!num_ok(v, 0, SPEC_TIMEOUT_MAX) || json_number_value(v) <= 0)
                return fail(err, errlen, pre, k, "must be a number greater than 0 and at most 604800");
            s->timeout_s = json_number_value(v);
        } else if (strcmp(k, "priority") == 0) {
            if (!int_ok(v, -100, 100))
                return fail(err, errlen, pre, k, "must be an integer from -100 to 100");
            s->priority = (int)json_integer_value(v);
        } else if (strcmp(k, "tags") == 0) {
            if (check_str_list(v, pre, k, SPEC_TAGS_MAX, 1, SPEC_TAG_MAX, 0, err, errlen) < 0)
                return -1;
        } else if (strcmp(k, "resource_requirements") == 0) {
            if (!json_is_object(v))
                return fail(err, errlen, pre, k, "must be an object");
        } else if (strcmp(k, "related_tasks") == 0) {
            if (check_str_list(v, pre, k, SPEC_LIST_MAX, 36, 36, 1, err, errlen) < 0)
                return -1;
        } else if (strcmp(k, "expected_artifacts") == 0) {
            if (check_str_list(v, pre, k, SPEC_LIST_MAX, 1, SPEC_ARTIFACT_MAX, 0, err, errlen) < 0)
                return -1;
        } else if (strcmp(k, "retry_policy") == 0) {
            if (check_retry(v, pre, &s->retry, err, errlen) < 0)
                return -1;
            s->has_retry_policy = 1;
        } else if (strcmp(k, "idempotency_key") == 0) {
            if (!str_ok(v, 1, 256))
                return fail(err, errlen, pre, k, "must be a string of 1 to 256 bytes");
            s->idempotency_key = json_string_value(v);
        } else if (strcmp(k, "rate_key") == 0) {
            if (!str_ok(v, 1, SPEC_RATE_KEY_MAX))
                return fail(err, errlen, pre, k, "must be a string of 1 to %d bytes", SPEC_RATE_KEY_MAX);
            s->rate_key = json_string_value(v);
        } else if (strcmp(k, "unique") == 0) {
            if (check_unique(v, pre, s, err, errlen) < 0)
                return -1;
        } else if (strcmp(k, "pipeline") == 0) {
            if (check_pipeline(v, pre, s, err, errlen) < 0)
                return -1;
        } else if (strcmp(k, "inputs") == 0) {
            if (check_inputs(v, pre, s, err, errlen) < 0)
                return -1;
        } else if (strcmp(k, "next") == 0) {
            if (check_next(v, pre, err, errlen) < 0)
                return -1;
        } else if (kind_section_known(k)) {
            if (check_section(v, k, pre, s, err, errlen) < 0)
                return -1;
        } else {
            return fail(err, errlen, pre, printable(k, klen, buf), "unknown field");
        }
    }
    if (!s->argv && (s->kind_def->flags & KIND_NEEDS_COMMAND))
        return fail(err, errlen, pre, "command", "must be a non-empty array of strings");
    if ((s->kind_def->flags & KIND_NEEDS_SECTION) && !json_object_get(o, s->kind_def->section))
        return fail(err, errlen, pre, s->kind_def->section, "required for kind %s", s->kind);
    return 0;
}

spec_t *spec_from_json(json_t *j, char *err, size_t errlen)
{
    if (!json_is_object(j)) {
        fail(err, errlen, "", "spec", "must be a JSON object");
        return NULL;
    }
    if (!json_depth_ok(j, 1)) {
        fail(err, errlen, "", "spec", "nesting deeper than %d levels", SPEC_MAX_DEPTH);
        return NULL;
    }
    /* Every accepted spec must survive the trip through the stream: its
     * msgpack form has to fit the decoder's limits too. */
    size_t bytes, items;
    if (mpack_measure(j, &bytes, &items) < 0 || bytes > MPACK_MAX_BYTES) {
        fail(err, errlen, "", "spec", "%zu bytes as msgpack exceeds the limit of %d", bytes,
             MPACK_MAX_BYTES);
        return NULL;
    }
    if (items > MPACK_MAX_ITEMS) {
        fail(err, errlen, "", "spec", "%zu values exceeds the limit of %d", items, MPACK_MAX_ITEMS);
        return NULL;
    }
    spec_t *s = malloc(sizeof *s);
    if (!s)
        abort();
    if (check_spec(j, "spec", "", s, err, errlen) < 0) {
        free(s->argv);
        free(s);
        return NULL;
    }
    s->json = json_incref(j);
    return s;
}

spec_t *spec_parse(const char *text, size_t len, char *err, size_t errlen)
{
    json_t *j = spec_json_load(text, len, err, errlen);
    if (!j)
        return NULL;
    spec_t *s = spec_from_json(j, err, errlen);
    json_decref(j);
    return s;
}

void spec_free(spec_t *s)
{
    if (!s)
        return;
    free(s->argv);
    json_decref(s->json);
    free(s);
}
