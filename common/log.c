/* log: JSON lines on stderr (see log.h). */
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
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_init(const char *proc, const char *instance)
{
    snprintf(log_proc, sizeof log_proc, "%s", proc);
    snprintf(log_instance, sizeof log_instance, "%s", instance ? instance : "");
    const char *lv = getenv("DEVSYS_LOG_LEVEL");
    for (int i = 0; lv && i < 4; i++)
        if (strcmp(lv, level_names[i]) == 0)
            log_threshold = (enum log_level)i;
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

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (level < log_threshold)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char line[4096];
    size_t len = (size_t)snprintf(line, sizeof line,
                                  "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\",\"level\":\"%s\","
                                  "\"proc\":\"%s\",\"pid\":%d,",
                                  tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                                  tm.tm_sec, (int)(tv.tv_usec / 1000), level_names[level], log_proc,
                                  (int)getpid());
    if (log_instance[0]) {
        len += (size_t)snprintf(line + len, sizeof line - len, "\"instance\":\"");
        log_json_escape(line, sizeof line - 8, &len, log_instance);
        len += (size_t)snprintf(line + len, sizeof line - len, "\",");
    }
    len += (size_t)snprintf(line + len, sizeof line - len, "\"msg\":\"");
    log_json_escape(line, sizeof line - 4, &len, msg);
    len += (size_t)snprintf(line + len, sizeof line - len, "\"}\n");
    fwrite(line, 1, len, stderr);
}
