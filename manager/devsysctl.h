/* devsysctl: what the CLI's files share (devsysctl.c: main, the HTTP client,
 * printing and the task and DLQ commands; devsysctl_queues.c: the queue
 * commands; devsysctl_report.c: the report command): one blocking request per
 * call, the exit codes, the printing helpers. */
#ifndef DEVSYS_DEVSYSCTL_H
#define DEVSYS_DEVSYSCTL_H

#include <jansson.h>
#include <stddef.h>

enum { EXIT_OTHER = 1, EXIT_USAGE = 2, EXIT_UNREACHABLE = 3, EXIT_REFUSED = 4 };

struct ctl {
    const char *url;       /* base URL as given, for messages */
    char *host;            /* owned */
    int port;
    char *prefix;          /* owned; path prefix without trailing '/', may be "" */
    const char *token;     /* NULL: no Authorization header */
    int timeout_s;
    int json;              /* --json: print raw bodies */
    int quiet;             /* no error line when unreachable (optional calls) */
};

struct reply {
    int done;
    int status;            /* 0: no HTTP answer */
    char *body;            /* owned, NUL-terminated */
    size_t len;
    int error_kind;        /* from the error callback, -1 if none */
    int timed_out;
};

/* Sends one request and waits for the answer. path starts with '/' and is
 * appended to the URL's prefix. body may be NULL. On return 0, *out holds the
 * status and the body (caller frees out->body); on -1 the manager could not
 * be reached and the error line has been printed. */
int ctl_request(const struct ctl *ctl, const char *method, const char *path,
                const char *body, size_t body_len, struct reply *out);
/* Runs a request and interprets it: prints the raw body with --json, reports
 * a refusal (non-2xx). Returns the parsed body (caller json_decref's; may be
 * NULL with --json on an empty body) or NULL with *code set to the exit code. */
json_t *ctl_call(const struct ctl *ctl, const char *method, const char *path,
                 const char *body, size_t body_len, int *code);
/* Percent-encodes one path segment or query value; caller frees. */
char *enc(const char *s);
/* A scalar as text for tables and listings: strings bare, null as "-",
 * objects and arrays as compact JSON. Caller frees. */
char *show(const json_t *v);
/* Prints rows (array of objects) as a table of the given columns; a column
 * header "ATTEMPT" shows attempt/max_attempts. */
void print_table(const json_t *rows, const char *const *heads, const char *const *keys, size_t ncol);

/* devsysctl_report.c: `report ID [--xml]`; returns the exit code. */
int cmd_report(const struct ctl *ctl, const char *id, int xml);
/* devsysctl_tests.c: `tests [--flaky] [--name] PIPELINE [TEST]`. */
enum { TESTS_FLAKY = 1, TESTS_BY_NAME = 2 };
int cmd_tests(const struct ctl *ctl, const char *scope, const char *test, int opts);

/* Prints "devsysctl: <fmt with arg> (see devsysctl --help)" and exits 2. */
_Noreturn void die_usage(const char *fmt, const char *arg);
/* key: value for every member of obj, the keys of order first. */
void print_object(const json_t *obj, const char *const *order, const char *const *blocks);
/* A request whose answer is printed as the verdict line, then its scalar fields. */
int cmd_action(const struct ctl *ctl, const char *method, const char *path, const char *done);

/* ---- devsysctl_queues.c */
struct queue_set_opts {
    const char *concurrency; /* "N" or "none"; NULL: unchanged */
    const char *rate;        /* "N/PERIOD" or "none"; NULL: unchanged */
    int per_key;             /* --per-key */
};
int cmd_queues(const struct ctl *ctl);
/* queue show|pause|resume|set Q */
int cmd_queue(const struct ctl *ctl, const char *sub, const char *queue, const struct queue_set_opts *o);

/* Fills host/port/prefix from ctl->url; -1 on anything but http://host[:port][/path]. */
int ctl_parse_url(struct ctl *ctl);

/* ---- devsysctl_access.c: token, secret, audit */
#define ACCESS_USAGE                                                                                      \
    "  token create --name N --role viewer|operator|admin [--expires 30d] [--queues q1,q2]\n"            \
    "               [--apps a1]      a new token; its secret is printed once\n"                         \
    "  token list | revoke NAME | rotate NAME [--grace 1h]\n"                                           \
    "                                tokens (never their secret); rotate prints a new secret,\n"        \
    "                                the old one works for the grace period (1h)\n"                     \
    "  secret set NAME | list | rm NAME | rekey\n"                                                      \
    "                                task secrets (set reads the value from stdin; never shown);\n"    \
    "                                rekey re-encrypts old-key values under the current key\n"         \
    "  audit [--actor A] [--action X] [--target T] [--since TIME] [--limit N] [--after ID]\n"          \
    "                                the audit trail, newest first\n"
/* Runs argv when its command is token, secret or audit (returns the exit
 * code); -1 for any other command. */
int access_main(int argc, char **argv);

#endif
