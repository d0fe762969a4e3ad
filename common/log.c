/* log: JSON (or text) lines on stderr, with a task's or a request's context (see log.h). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static char log_proc[32] = "devsys";
static char log_instance[128];
static enum log_level log_threshold = LOG_INFO;
static int log_text;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_init(const char *proc, const char *instance)
{
    snprintf(log_proc, sizeof log_proc, "%s", proc);
    snprintf(log_instance, sizeof log_instance, "%s", instance ? instance : "");
    const char *lv = getenv("DEVSYS_LOG_LEVEL");
    for (int i = 0; lv && i < 4; i++)
        if (strcmp(lv, level_names[i]) == 0)
            log_threshold = (enum log_level)i;
    const char *fmt = getenv("DEVSYS_LOG_FORMAT");
    log_text = fmt && strcmp(fmt, "text") == 0;
}

int log_enabled(enum log_level level)
{
    return level >= log_threshold;
}

void log_json_escape(char *buf, size_t cap, size_t *len, const char *s)
{
    size_t n = *len;
    for (; *s && n + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[n++] = '\\';
            buf[n++] = (char)c;
        } else if (c == '\n') {
            buf[n++] = '\\';
            buf[n++] = 'n';
        } else if (c < 0x20 || c == 0x7f) {
            n += (size_t)snprintf(buf + n, cap - n, "\\u%04x", c);
        } else {
            buf[n++] = (char)c;
        }
    }
    buf[n] = '\0';
    *len = n;
}

/* Appends printf output to line (cap bytes, at *len), truncating safely. */
static void put(char *line, size_t cap, size_t *len, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void put(char *line, size_t cap, size_t *len, const char *fmt, ...)
{
    if (*len >= cap - 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n > 0)
        *len = *len + (size_t)n < cap - 1 ? *len + (size_t)n : cap - 1;
}

/* One "key":"value" member (JSON) or key=value (text); value may be NULL. */
static void put_field(char *line, size_t cap, size_t *len, const char *key, const char *value)
{
    if (!value || !value[0])
        return;
    if (log_text) {
        put(line, cap, len, "%s=%s ", key, value);
        return;
    }
    put(line, cap, len, "\"%s\":\"", key);
    log_json_escape(line, cap - 8, len, value);
    put(line, cap, len, "\",");
}

static void log_write(enum log_level level, const struct log_ctx *ctx, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static void log_write(enum log_level level, const struct log_ctx *ctx, const char *fmt, va_list ap)
{
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);

    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[96];
    snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));
    char line[4096];
    size_t len = 0;
    if (log_text)
        put(line, sizeof line, &len, "%s %-5s %s[%d] ", ts, level_names[level], log_proc, (int)getpid());
    else
        put(line, sizeof line, &len, "{\"time\":\"%s\",\"level\":\"%s\",\"component\":\"%s\",\"pid\":%d,", ts,
            level_names[level], log_proc, (int)getpid());
    put_field(line, sizeof line, &len, "instance", log_text ? NULL : log_instance);
    if (ctx) {
        put_field(line, sizeof line, &len, "request_id", ctx->request_id);
        put_field(line, sizeof line, &len, "queue", ctx->queue);
        put_field(line, sizeof line, &len, "task_id", ctx->task_id);
        if (ctx->attempt > 0)
            put(line, sizeof line, &len, log_text ? "attempt=%ld " : "\"attempt\":%ld,", ctx->attempt);
        put_field(line, sizeof line, &len, "pipeline_id", ctx->pipeline_id);
    }
    if (log_text) {
        put(line, sizeof line, &len, "%s", msg);
        for (char *p = line; *p; p++) /* one event, one line */
            if (*p == '\n')
                *p = ' ';
        if (len > sizeof line - 2)
            len = sizeof line - 2;
        line[len++] = '\n';
    } else {
        put(line, sizeof line, &len, "\"msg\":\"");
        log_json_escape(line, sizeof line - 4, &len, msg);
        put(line, sizeof line, &len, "\"}\n");
    }
    fwrite(line, 1, len, stderr);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (level < log_threshold)
        return;
    va_list ap;
    va_start(ap, fmt);
    log_write(level, NULL, fmt, ap);
    va_end(ap);
}

void log_task(enum log_level level, const struct log_ctx *ctx, const char *fmt, ...)
{
    if (level < log_threshold)
        return;
    va_list ap;
    va_start(ap, fmt);
    log_write(level, ctx, fmt, ap);
    va_end(ap);
}
