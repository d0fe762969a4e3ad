/* devsysctl: what the CLI's files share (devsysctl.c: main, printing and the
 * task commands; devsysctl_dlq.c: the DLQ commands; devsysctl_http.c: the HTTP client; devsysctl_queues.c: the queue
 * commands; devsysctl_report.c: the report command; devsysctl_list.c: list and search): one blocking request per
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

/* devsysctl_http.c: the HTTP client. Fills host/port/prefix from ctl->url;
 * -1 on anything but http://host[:port][/path]. */
int ctl_parse_url(struct ctl *ctl);
/* After a subcommand's getopt: the default URL, DEVSYS_TIMEOUT, the URL
 * parsed; dies with a usage error naming a bad one. */
void ctl_finish_opts(struct ctl *ctl);
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
/* GET path (takes ownership of it) through ctl_call: the document to print,
 * or NULL when there is nothing more to do (refused, unreachable, or --json
 * printed it) with the exit code in *code. Caller json_decref's. */
json_t *ctl_get_doc(const struct ctl *ctl, char *path, int *code);
/* "a,b" as a JSON array of strings ["a","b"] (new reference). */
json_t *ctl_csv(const char *s);
/* The command of argv: the first argument that is neither an option nor the
 * value of --url (NULL: none), for the commands that parse their own options. */
const char *ctl_command(int argc, char **argv);
/* Percent-encodes one path segment or query value; caller frees. */
char *enc(const char *s);
/* A scalar as text for tables and listings: strings bare, null as "-",
 * objects and arrays as compact JSON. Caller frees. */
char *show(const json_t *v);
/* Prints rows (array of objects) as a table of the given columns; a column
 * header "ATTEMPT" shows attempt/max_attempts. */
void print_table(const json_t *rows, const char *const *heads, const char *const *keys, size_t ncol);

/* Reads all of path ("-" is stdin); caller frees; NULL after printing why. */
char *ctl_read_all(const char *path, size_t *len);
/* devsysctl_list.c: `list` with its filters, in the order of the API's
 * parameters state, queue, limit, after, name, tag, since, until (NULL: not
 * given); returns the exit code. */
#define LIST_NQ 8
int cmd_list(const struct ctl *ctl, const char *const q[LIST_NQ]);

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

/* ---- devsysctl_deploy.c: deploy APP ENV SOURCE [--check-url URL] | rollback
 * APP ENV [REV] | revisions APP [ENV] (args[0] is the command). */
int cmd_deploy_family(const struct ctl *ctl, int nargs, char **args, const char *check_url);

/* ---- devsysctl_queues.c */
struct queue_set_opts {
    const char *concurrency; /* "N" or "none"; NULL: unchanged */
    const char *rate;        /* "N/PERIOD" or "none"; NULL: unchanged */
    int per_key;             /* --per-key */
};
int cmd_queues(const struct ctl *ctl);
/* queue show|pause|resume|set Q */
int cmd_queue(const struct ctl *ctl, const char *sub, const char *queue, const struct queue_set_opts *o);

/* ---- devsysctl_pipeline.c: pipeline submit FILE | ID [--watch] | rerun ID | cancel ID */
int cmd_pipeline(const struct ctl *ctl, int argc, char **argv, int watch);
/* ---- devsysctl_schedule.c */
struct schedule_opts {
    const char *tz;       /* --tz ZONE; NULL: the API's default (UTC) */
    const char *catch_up; /* --catch-up once|all|skip; NULL: once */
};
/* schedule add NAME CRON SPEC_FILE | list | show | pause | resume | rm NAME */
int cmd_schedule(const struct ctl *ctl, int argc, char **argv, const struct schedule_opts *o);
/* ---- devsysctl_notify.c: notify add|list|rm|events (argv[0] is the subcommand) */
int cmd_notify(const struct ctl *ctl, int argc, char **argv);
/* Fills host/port/prefix from ctl->url; -1 on anything but http://host[:port][/path]. */
int ctl_parse_url(struct ctl *ctl);

/* ---- devsysctl_retry.c: retry ID (a dead or cancelled task, queued again) */
int cmd_retry(const struct ctl *ctl, const char *id);
/* ---- devsysctl_monitor.c: monitors | monitor NAME|add|rm|silence|unsilence |
 * incidents (argv[0] is the command) */
int cmd_monitor(const struct ctl *ctl, int argc, char **argv);

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

/* ---- devsysctl_approval.c: approve ID [--reject] [--comment C] | approvals
 * [--all]; -1 for any other command. */
#define APPROVAL_USAGE                                                                                    \
    "  approve ID [--reject] [--comment C]\n"                                                            \
    "                                approve (or reject) a pipeline step's approval gate\n"              \
    "  approvals [--all]             pending approvals (--all: decided ones too)\n"
int approval_main(int argc, char **argv);

/* ---- devsysctl_dlq.c: dlq ls|show|groups|replay|purge with its filter
 * flags; -1 for any other command. */
int dlq_main(int argc, char **argv);

#endif
