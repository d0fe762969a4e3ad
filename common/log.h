/* log: one line per event on stderr. JSON by default, so Loki or ELK can
 * follow a task across processes by its fields:
 * {"time":"2026-11-21T16:19:16.123Z","level":"info","component":"agent","pid":7,
 *  "instance":"a1","task_id":"...","attempt":2,"pipeline_id":"...","msg":"..."}
 * DEVSYS_LOG_FORMAT=text prints the same for humans:
 * 2026-11-21T16:19:16.123Z info  agent[7] task_id=... attempt=2 msg */
#ifndef DEVSYS_LOG_H
#define DEVSYS_LOG_H

#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* The context of a line: what it is about. Every member may be NULL (or
 * attempt 0): left out of the line. */
struct log_ctx {
    const char *task_id;
    long attempt;
    const char *pipeline_id;
    const char *request_id;
    const char *queue;
};

/* proc names the process ("agent", "manager"): the line's "component";
 * instance (may be NULL) is added as "instance" to every line. Both are
 * copied. DEVSYS_LOG_LEVEL (debug|info|warn|error) sets the threshold,
 * DEVSYS_LOG_FORMAT (json|text) the format. */
void log_init(const char *proc, const char *instance);
/* Would a line of this level be written? (Skip building costly context.) */
int log_enabled(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A line with its context's fields (ctx may be NULL). */
void log_task(enum log_level level, const struct log_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* Appends s as a JSON string body (no quotes) to buf of size cap, starting at
 * *len; truncates safely. Shared with other JSON writers. */
void log_json_escape(char *buf, size_t cap, size_t *len, const char *s);

#endif
