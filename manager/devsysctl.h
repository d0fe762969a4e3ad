/* devsysctl: what the CLI's files share (devsysctl.c: plumbing, printing and
 * the task and DLQ commands; devsysctl_queues.c: the queue commands). */
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
/* Prints "devsysctl: <fmt with arg> (see devsysctl --help)" and exits 2. */
_Noreturn void die_usage(const char *fmt, const char *arg);
/* Percent-encodes one path segment or query value; caller frees. */
char *enc(const char *s);
/* Runs a request and interprets it: prints the raw body with --json, reports
 * a refusal (non-2xx). Returns the parsed body (caller json_decref's) or NULL
 * with *code set to the exit code. */
json_t *ctl_call(const struct ctl *ctl, const char *method, const char *path, const char *body, size_t body_len,
                 int *code);
/* key: value for every member of obj, the keys of order first. */
void print_object(const json_t *obj, const char *const *order, const char *const *blocks);
/* rows (array of objects) as a table of the given columns. */
void print_table(const json_t *rows, const char *const *heads, const char *const *keys, size_t ncol);
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

#endif
