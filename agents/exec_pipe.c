/* exec_pipe: what a task's pipes carry. stdout+stderr go into a ring of
 * the last OUTPUT_TAIL_MAX bytes; the checkpoint pipe carries JSON lines of
 * at most CHECKPOINT_MAX bytes, each handed to run->checkpoint_save. */
#include "exec_pipe.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "xalloc.h"

/* Reads into the ring; only the newest OUTPUT_TAIL_MAX bytes survive. */
void exec_pipe_tail_read(exec_tail_t *o, int fd, int max_reads)
{
    for (int i = 0; i < max_reads && !o->eof; i++) {
        if (!o->ring)
            o->ring = xmalloc(OUTPUT_TAIL_MAX + 1);
        ssize_t n = read(fd, o->ring + o->pos, OUTPUT_TAIL_MAX - o->pos);
        if (n > 0) {
            o->pos = (o->pos + (size_t)n) % OUTPUT_TAIL_MAX;
            o->total += (unsigned long long)n;
        } else if (n == 0) {
            o->eof = 1;
        } else if (errno == EINTR) {
            continue;
        } else {
            if (errno != EAGAIN)
                o->eof = 1;
            break;
        }
    }
}

static void checkpoint_line(exec_cplines_t *c, task_run_t *run)
{
    size_t len = c->len;
    while (len > 0 && (c->buf[len - 1] == '\r' || c->buf[len - 1] == ' '))
        len--;
    if (len == 0)
        return;
    c->buf[len] = '\0';
    json_error_t jerr;
    json_t *j = json_loadb(c->buf, len, JSON_DECODE_ANY, &jerr);
    if (!j) {
        log_warn("task %s: checkpoint line ignored, not JSON: %s", run->id, jerr.text);
        return;
    }
    json_decref(j);
    if (run->checkpoint_save)
        run->checkpoint_save(run, c->buf, len);
}

static void checkpoint_feed(exec_cplines_t *c, task_run_t *run, const char *p, size_t n)
{
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        if (!c->dropping) {
            if (c->len + take > CHECKPOINT_MAX) {
                log_warn("task %s: checkpoint line over %d bytes refused", run->id,
                         CHECKPOINT_MAX);
                c->dropping = 1;
                c->len = 0;
            } else {
                if (c->len + take + 1 > c->cap) {
                    size_t cap = c->cap ? c->cap : 256;
                    while (cap < c->len + take + 1)
                        cap *= 2;
                    c->buf = xrealloc(c->buf, cap);
                    c->cap = cap;
                }
                memcpy(c->buf + c->len, p, take);
                c->len += take;
            }
        }
        if (!nl)
            return;
        if (!c->dropping)
            checkpoint_line(c, run);
        c->dropping = 0;
        c->len = 0;
        p = nl + 1;
        n -= take + 1;
    }
}

void exec_pipe_cp_read(exec_cplines_t *c, int fd, int max_reads, task_run_t *run)
{
    char chunk[16384];
    for (int i = 0; i < max_reads && !c->eof; i++) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n > 0) {
            checkpoint_feed(c, run, chunk, (size_t)n);
        } else if (n == 0) {
            c->eof = 1;
            /* the writer closed cleanly: an unterminated last line counts */
            if (c->len > 0 && !c->dropping)
                checkpoint_line(c, run);
            c->len = 0;
        } else if (errno == EINTR) {
            continue;
        } else {
            if (errno != EAGAIN)
                c->eof = 1;
            break;
        }
    }
}

/* Hands the ring over as one linear, NUL-terminated buffer. */
void exec_pipe_tail_take(exec_tail_t *o, handler_result_t *res)
{
    if (o->total == 0)
        return;
    if (o->total < OUTPUT_TAIL_MAX) {
        res->output = o->ring;
        res->output_len = o->pos;
    } else {
        char *lin = xmalloc(OUTPUT_TAIL_MAX + 1);
        size_t older = OUTPUT_TAIL_MAX - o->pos;
        memcpy(lin, o->ring + o->pos, older);
        memcpy(lin + older, o->ring, o->pos);
        free(o->ring);
        res->output = lin;
        res->output_len = OUTPUT_TAIL_MAX;
    }
    res->output[res->output_len] = '\0';
    o->ring = NULL;
}

void exec_pipe_tail_clear(exec_tail_t *o)
{
    free(o->ring);
    o->ring = NULL;
}

void exec_pipe_cp_clear(exec_cplines_t *c)
{
    free(c->buf);
    c->buf = NULL;
    c->len = c->cap = 0;
}
