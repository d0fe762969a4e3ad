/* log: JSON lines on stderr, one object per event:
 * {"ts":"2026-11-21T16:19:16.123Z","level":"info","proc":"agent","msg":"..."} */
#ifndef DEVSYS_LOG_H
#define DEVSYS_LOG_H

#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* proc names the process ("agent", "manager"); instance (may be NULL) is
 * added as "instance" to every line. Both are copied. DEVSYS_LOG_LEVEL
 * (debug|info|warn|error) sets the threshold. */
void log_init(const char *proc, const char *instance);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* Appends s as a JSON string body (no quotes) to buf of size cap, starting at
 * *len; truncates safely. Shared with other JSON writers. */
void log_json_escape(char *buf, size_t cap, size_t *len, const char *s);

#endif
