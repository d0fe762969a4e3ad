/* monitor_log: the log probe: counts the lines matching a POSIX ERE that
 * were appended to a file since a byte offset, read on the monitor's worker
 * threads (common/offload.h), never on the loop. The result's offset is where
 * the next probe starts: past the last complete line read. */
#include "monitor_internal.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <regex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "offload.h"
#include "utf8.h"
#include "xalloc.h"

#define LOG_READ_MAX (64LL * 1024 * 1024) /* bytes one probe reads; the next goes on from there */
#define LOG_LINE_MAX (64 * 1024)          /* bytes of one line matched; the rest of it is skipped */
#define LOG_CHUNK (64 * 1024)
#define LAST_SHOWN 200                    /* bytes of the last matching line in the error */

/* One read on a worker; p is NULL once the probe stopped waiting (timeout,
 * cancel): the loop then just frees the job when it is back. */
struct log_job {
    probe_t *p;
    struct event *timer;
    atomic_int stop;   /* the worker ends its read early */
    char *path, *pattern;
    long long from;    /* -1: the end of the file */
    /* filled by the worker */
    long long start, end, matches;
    char *why;         /* the file could not be read */
    char last[LAST_SHOWN + 1];
};

static void match_line(struct log_job *j, regex_t *re, char *line, size_t len)
{
    line[len] = '\0';
    if (regexec(re, line, 0, NULL, 0) != 0)
        return;
    j->matches++;
    char *shown = utf8_preview(line, len, LAST_SHOWN);
    snprintf(j->last, sizeof j->last, "%s", shown);
    free(shown);
}

static void log_work(void *arg)
{
    struct log_job *j = arg;
    int fd = open(j->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        j->why = xasprintf("open %s: %s", j->path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        j->why = xasprintf("%s: not a regular file", j->path);
        close(fd);
        return;
    }
    /* a file shorter than the offset was truncated or rotated: read it all */
    j->start = j->from < 0 ? st.st_size : j->from > st.st_size ? 0 : j->from;
    j->end = j->start;
    if (j->from < 0) {
        close(fd);
        return;
    }
    regex_t re;
    if (regcomp(&re, j->pattern, REG_EXTENDED | REG_NOSUB) != 0) { /* validated at submit */
        j->why = xasprintf("pattern /%s/ does not compile", j->pattern);
        close(fd);
        return;
    }
    char *chunk = xmalloc(LOG_CHUNK), *line = xmalloc(LOG_LINE_MAX + 1);
    size_t line_len = 0;
    int skipping = 0; /* inside a line longer than LOG_LINE_MAX, already matched */
    long long pos = j->start;
    while (pos - j->start < LOG_READ_MAX && !atomic_load(&j->stop)) {
        ssize_t n = pread(fd, chunk, LOG_CHUNK, (off_t)pos);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n; i++) {
            if (chunk[i] == '\n') {
                if (!skipping)
                    match_line(j, &re, line, line_len);
                line_len = 0;
                skipping = 0;
                j->end = pos + i + 1;
            } else if (!skipping && line_len == LOG_LINE_MAX) {
                match_line(j, &re, line, line_len);
                skipping = 1;
            } else if (!skipping) {
                line[line_len++] = chunk[i];
            }
        }
        pos += n;
    }
    free(chunk);
    free(line);
    regfree(&re);
    close(fd);
}

static void log_job_free(struct log_job *j)
{
    if (j->timer)
        event_free(j->timer);
    free(j->path);
    free(j->pattern);
    free(j->why);
    free(j);
}

/* The probe no longer waits for the job; the pool hands it back later. */
static void log_stop(probe_t *p)
{
    struct log_job *j = p->impl;
    j->p = NULL;
    atomic_store(&j->stop, 1);
    if (j->timer) {
        event_free(j->timer);
        j->timer = NULL;
    }
}

static void log_back(void *arg, int ran)
{
    struct log_job *j = arg;
    probe_t *p = j->p;
    if (!p || !ran) {
        log_job_free(j);
        return;
    }
    json_t *d = json_pack("{s:I,s:I}", "offset", (json_int_t)(j->why ? (j->from < 0 ? 0 : j->from) : j->end),
                          "matches", (json_int_t)j->matches);
    char *why = NULL;
    if (j->why) {
        why = j->why;
        j->why = NULL;
    } else if (j->matches) {
        char *re = utf8_preview(j->pattern, strlen(j->pattern), 200);
        why = xasprintf("pattern /%s/ found %lld time%s since offset %lld; last: %s", re, j->matches,
                        j->matches == 1 ? "" : "s", j->start, j->last);
        free(re);
    }
    log_job_free(j);
    probe_finish(p, why == NULL, why, d, -1);
}

static void log_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct log_job *j = arg;
    probe_t *p = j->p;
    char limit[32];
    probe_timeout_text(p, limit);
    char *why = xasprintf("reading %s timed out after %s", j->path, limit);
    json_t *d = json_pack("{s:I,s:i}", "offset", (json_int_t)(j->from < 0 ? 0 : j->from), "matches", 0);
    log_stop(p);
    probe_finish(p, 0, why, d, -1);
}

int monitor_log_start(probe_t *p, char *err, size_t errlen)
{
    const struct spec_monitor *m = p->m;
    if (!m->log_path || m->log_path[0] != '/' || !m->log_pattern) {
        snprintf(err, errlen, "monitor.path: must be an absolute path (the probe cannot be attempted)");
        return -1;
    }
    struct log_job *j = xcalloc(1, sizeof *j);
    j->p = p;
    j->path = xstrdup(m->log_path);
    j->pattern = xstrdup(m->log_pattern);
    j->from = m->has_log_offset ? m->log_offset : -1;
    atomic_init(&j->stop, 0);
    j->timer = evtimer_new(p->run->base, log_timeout, j);
    struct timeval tv = {(time_t)m->timeout_s, (suseconds_t)((m->timeout_s - (double)(time_t)m->timeout_s) * 1e6)};
    evtimer_add(j->timer, &tv);
    p->impl = j;
    p->stop = log_stop;
    offload_submit(monitor_pool(p->run->base), log_work, log_back, j);
    return 0;
}
