/* spec: parse and validate a task spec (JSON at the edges). No I/O.
 * Strict: unknown fields and wrong types are rejected with a message that
 * names the field and the rule, e.g.
 *   "retry_policy.max_attempts: must be an integer from 1 to 1000". */
#ifndef DEVSYS_SPEC_H
#define DEVSYS_SPEC_H

#include <jansson.h>
#include <stddef.h>

#define SPEC_MAX_BYTES (1024 * 1024)   /* one spec, as JSON text or msgpack */
#define SPEC_MAX_DEPTH 32              /* nesting of objects/arrays */
#define SPEC_ERR_MAX 256
#define SPEC_UNIQUE_KEY_MAX 256        /* bytes of unique.key */
#define SPEC_UNIQUE_FOR_MAX 2592000    /* unique.for_s: 30 days */
#define SPEC_RATE_KEY_MAX 128          /* bytes of rate_key */
#define SPEC_FANOUT_MAX 256            /* tasks one pipeline step fans out to (matrix x shards) */
#define SPEC_INPUTS_MAX 512            /* entries of "inputs" (nodes a step needs) */
#define SPEC_INPUT_ARTIFACTS_MAX 64    /* artifacts of one input */

/* The one home of a task's retry defaults: a spec without retry_policy gets
 * them, and so does the agent without DEVSYS_RETRY_*. A row inserted without
 * max_attempts gets SPEC_DEFAULT_MAX_ATTEMPTS from the column default of
 * migrations/001_init.sql (tests/integration/layout.test.sh checks they agree). */
#define SPEC_DEFAULT_MAX_ATTEMPTS 3
#define SPEC_DEFAULT_INITIAL_S 1.0
#define SPEC_DEFAULT_FACTOR 2.0
#define SPEC_DEFAULT_MAX_S 300.0
#define SPEC_DEFAULT_JITTER 1

struct spec_retry {
    int max_attempts;   /* 1..1000 */
    double initial_s;   /* 0..86400 */
    double factor;      /* 1..100 */
    double max_s;       /* 0..604800 */
    int jitter;         /* bool (1: full jitter) */
    /* permanent_exit_codes: exit statuses that mean "do not retry" (bitmap) */
    unsigned char permanent_exit[32];
};

/* A validated spec. Every pointer points into `json`, which the spec owns. */
typedef struct spec {
    json_t *json;                /* the whole spec object */
    const char *kind;            /* a kind of the registry (kind.h) */
    const struct kind_def *kind_def; /* its registry entry */
    const char *queue;           /* "queue" or, when absent, kind */
    const char *name;            /* may be NULL */
    size_t argc;                 /* command: argv array (required for exec/coding) */
    const char **argv;           /* argc entries + NULL; owned by the spec */
    const char *workdir;         /* may be NULL */
    json_t *env;                 /* object of string->string, may be NULL */
    double timeout_s;            /* 0 = none; else 0 < t <= 604800 */
    int priority;                /* -100..100, default 0 */
    const char *idempotency_key; /* may be NULL, 1..256 bytes */
    /* unique: at most one task per key, enforced by PostgreSQL at submit:
     * created within unique_for_s seconds (> 0), or, when unique_for_s is
     * 0, not yet finished. unique_key NULL: no such rule. Priority levels
     * (queue.h): > 0 high, 0 normal, < 0 low. */
    const char *unique_key;
    double unique_for_s;
    /* rate_key: the bucket of a queue's per-key rate limit (a tenant, an
     * app); NULL: the shared bucket. */
    const char *rate_key;
    /* Set by the manager on a pipeline step's tasks (see README "Pipelines"):
     * pipeline {"id", "name", "step", "index"}; inputs {"<node>": {"result":
     * any, "artifacts": [{"path", "sha256", "size"}]}} of the steps it
     * needs ("build", or "test[3]" for a node of a fanned-out step). NULL
     * when absent. */
    const json_t *pipeline;
    const json_t *inputs;
    struct spec_retry retry;     /* defaults filled in */
    int has_retry_policy;        /* retry_policy was given in the spec */
    /* kinds "sleep" and "noop": section "sleep" (kind_sleep.c): {"ms": 0..86400000,
     * "fail_first": N (fail attempts 1..N, then succeed), "fail_always": bool} */
    long sleep_ms;
    int fail_first;
    int fail_always;
    /* kind "testing": section "testing" (kind_testing.c) */
    const json_t *junit;         /* array of 1..32 relative paths or glob patterns */
    long max_report_bytes;       /* per report file; 0 = the default */
    /* kind "deploy": section "deploy" (kind_deploy.c); all NULL/0 otherwise */
    struct spec_deploy {
        const char *app, *env;   /* 1..64 of [A-Za-z0-9_.-] */
        const char *source;      /* deploy: a path, or "input:<node>/<path>" */
        const char *revision;    /* NULL: derived from the task (id, time) */
        const char *to;          /* rollback: the revision, NULL: the previous one */
        int rollback;            /* action "rollback" (else "deploy") */
        int keep;                /* revisions kept, 2..100 (default 5) */
        /* check: http (check_url set) or command (check_command set), or neither */
        const char *check_url;
        int check_status;        /* expected HTTP status (default 200) */
        const char *check_body;  /* substring or POSIX extended regex, or NULL */
        double check_timeout_s;  /* per try (default 10) */
        int check_retries;       /* tries after the first (default 0) */
        double check_interval_s; /* between tries (default 1) */
        const json_t *check_command; /* argv: array of 1..256 strings */
    } deploy;
    /* kind "notify": section "notify" (kind_notify.c); NULL / 0 when absent */
    const char *notify_url;
    const char *notify_body;     /* the exact bytes POSTed and signed */
    size_t notify_body_len;
    const char *notify_content_type;
    const char *notify_webhook_id;
    const char *notify_secret;   /* the name of a secret set, never the secret */
    const char *notify_destination;
    double notify_timeout_s;
    /* kind "monitor": section "monitor" (kind_monitor.c; rules in kind.h);
     * all zero/NULL when absent. */
    struct spec_monitor {
        int type;                    /* MONITOR_* (kind.h) */
        double timeout_s;            /* the probe's bound (default 10) */
        const char *check;           /* the check it is for, or NULL */
        /* http */
        const char *url;
        int head;                    /* method HEAD, else GET */
        const json_t *expect_status; /* integer or array of them; NULL: 2xx and 3xx */
        const char *body_regex;      /* POSIX ERE, or NULL */
        long max_latency_ms;         /* 0: no bound */
        int cert_min_days, has_cert_min_days;
        long max_body_bytes;         /* 0: KIND_MONITOR_BODY_DEFAULT */
        const char *ca_file;         /* NULL: the system's CAs */
        /* tcp */
        const char *host;
        int port;
        /* dns */
        const char *dns_name;
        const json_t *dns_expect;    /* array of address strings, or NULL */
        /* script */
        const json_t *command;       /* array of strings (argv) */
        /* log */
        const char *log_path, *log_pattern;
        long long log_offset;
        int has_log_offset;          /* 0: start at the end of the file */
    } monitor;
} spec_t;

/* Parse JSON text (len bytes, need not be NUL-terminated) and validate it.
 * Returns the new spec (caller frees with spec_free) or NULL with a message in err. */
spec_t *spec_parse(const char *text, size_t len, char *err, size_t errlen);

/* Load JSON text (len bytes, need not be NUL-terminated) without validating
 * the fields: enforces SPEC_MAX_BYTES, SPEC_MAX_DEPTH, rejects duplicate keys
 * and "\u0000", and requires an object. Returns a new reference or NULL with
 * e.g. "spec: invalid JSON at line 1 column 9: ..." in err. Shared by
 * spec_parse and envelope_decode (hand-pushed JSON specs). */
json_t *spec_json_load(const char *text, size_t len, char *err, size_t errlen);

/* Validate an already parsed JSON value. Takes a new reference to j (the
 * caller keeps its own). Returns NULL with a message in err. Also refuses a
 * spec whose msgpack form would exceed MPACK_MAX_BYTES or MPACK_MAX_ITEMS,
 * so every accepted spec can be published and decoded by an agent. */
spec_t *spec_from_json(json_t *j, char *err, size_t errlen);

void spec_free(spec_t *s);

/* Copies untrusted text (len bytes) into out for quoting in a message: at
 * most 48 bytes, control bytes and quotes replaced by '?'. Returns out. For
 * the section validators (kind_*.c), whose messages follow spec's rules. */
const char *spec_printable(const char *s, size_t len, char out[64]);

/* Why a task may not set the environment variable name (len bytes), or NULL
 * when it may. Refused: what the dynamic loader and libc read to load code or
 * redirect files (LD_*, MALLOC_*, and glibc's list of variables it drops for
 * setuid programs: GCONV_PATH, GETCONF_DIR, GLIBC_TUNABLES, HOSTALIASES,
 * LOCALDOMAIN, LOCPATH, NIS_PATH, NLSPATH, RESOLV_HOST_CONF, RES_OPTIONS,
 * TZDIR), what a shell runs at startup (BASH_ENV, ENV, SHELLOPTS, BASHOPTS),
 * and the variables the agent sets itself (DEVSYS_TASK_*, DEVSYS_ATTEMPT,
 * DEVSYS_CHECKPOINT, DEVSYS_CHECKPOINT_FD). */
const char *spec_env_refused(const char *name, size_t len);


/* Is s a valid queue name: 1..64 bytes of [A-Za-z0-9_.-]? (no braces, so the
 * hash tag {Q} stays intact) */
int spec_queue_name_ok(const char *s);

#endif
